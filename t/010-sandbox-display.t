# The sandbox's Display API: the envelope, token and scope errors, user info
# fields per scope, video list paging with a millisecond cursor, 19-digit
# string ids, video query limits, expiring cover URLs, rate limits.

use strict;
use warnings;

use File::Temp qw(tempdir);
use HTTP::Tiny;
use Test::More;

use TikTokSandbox;

my $dir = tempdir('sbx-display-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_display',
                              client_secret => 'cs_display');
END { $sb->stop if $sb }

my $ALL = 'user.info.basic,user.info.profile,user.info.stats,video.list';
my $tok = $sb->mint_tokens({ scope => $ALL })->{access_token};
my $basic = $sb->mint_tokens({ scope => 'user.info.basic' })->{access_token};

sub info {
    my ($token, $fields) = @_;
    return $sb->api(GET => '/v2/user/info/', token => $token,
                    defined $fields ? (query => { fields => $fields }) : ());
}

sub list {
    my ($token, $body, $fields) = @_;
    return $sb->api(POST => '/v2/video/list/', token => $token,
                    query => { fields => $fields // 'id,create_time,title' },
                    json => $body // {});
}

sub error_is {
    my ($res, $status, $code, $name) = @_;
    subtest $name => sub {
        is $res->{status}, $status, "HTTP $status";
        is $res->{json}{error}{code}, $code, "error.code $code";
        ok length $res->{json}{error}{message}, 'error.message';
        like $res->{json}{error}{log_id}, qr/^\d{14}/, 'error.log_id';
        is_deeply $res->{json}{data}, {}, 'data {}';
    };
}

subtest 'access tokens' => sub {
    error_is(info(undef, 'open_id'), 401, 'access_token_invalid',
             'no Authorization');
    error_is(info('act.bogus', 'open_id'), 401, 'access_token_invalid',
             'unknown token');
    error_is($sb->api(GET => '/v2/user/info/?fields=open_id',
                      headers => { Authorization => "Basic $tok" }),
             401, 'access_token_invalid', 'not a Bearer token');
    is info($tok, 'open_id')->{status}, 200,
        '"Bearer" works (and case does not matter:)';
    is $sb->api(GET => '/v2/user/info/?fields=open_id',
                headers => { Authorization => "bearer $tok" })->{status}, 200,
        '... "bearer"';

    my $t = $sb->mint_tokens->{access_token};
    $sb->expire_tokens({ access_token => $t });
    error_is(info($t, 'open_id'), 401, 'access_token_invalid', 'expired');

    $t = $sb->mint_tokens({ open_id => $sb->default_open_id,
                            expires_in => -1 })->{access_token};
    error_is(info($t, 'open_id'), 401, 'access_token_invalid',
             'minted already expired');

    $sb->add_user({ open_id => 'revokee' });
    $t = $sb->mint_tokens({ open_id => 'revokee' })->{access_token};
    $sb->revoke_tokens({ open_id => 'revokee' });
    error_is(info($t, 'open_id'), 401, 'access_token_invalid', 'revoked');
};

subtest 'user info: envelope and fields per scope' => sub {
    my $res = info($tok, 'open_id,union_id,avatar_url,display_name');
    is $res->{status}, 200, 'HTTP 200';
    is_deeply $res->{json}{error}{code}, 'ok', 'error.code ok';
    is $res->{json}{error}{message}, '', 'error.message empty';
    like $res->{json}{error}{log_id}, qr/^\d{14}/, 'log_id';
    my $u = $res->{json}{data}{user};
    is_deeply [sort keys %$u], [qw(avatar_url display_name open_id union_id)],
        'exactly the requested fields';
    is $u->{open_id}, $sb->default_open_id, 'open_id';
    is $u->{display_name}, 'Sandbox Creator', 'display_name';
    like $u->{avatar_url}, qr{^https://}, 'avatar_url';

    error_is(info($tok), 400, 'invalid_params', 'fields missing');
    error_is(info($tok, ''), 400, 'invalid_params', 'fields empty');
    error_is(info($tok, 'open_id,shoe_size'), 400, 'invalid_params',
             'unknown field');

    is info($basic, 'open_id,display_name')->{status}, 200,
        'basic fields with user.info.basic';
    error_is(info($basic, 'open_id,username'), 400, 'scope_permission_missed',
             'username needs user.info.profile');
    error_is(info($basic, 'follower_count'), 400, 'scope_permission_missed',
             'follower_count needs user.info.stats');

    $res = info($tok, 'username,bio_description,profile_deep_link,is_verified,'
                    . 'follower_count,following_count,likes_count,video_count');
    is $res->{status}, 200, 'profile and stats fields with their scopes';
    $u = $res->{json}{data}{user};
    is $u->{username}, 'sandbox.creator', 'username';
    like $res->{content}, qr/"is_verified":false/, 'is_verified a JSON boolean';
    like $res->{content}, qr/"likes_count":4294967297\b/,
        'likes_count beyond 2^32, a JSON integer';
    is $u->{video_count}, 25, 'video_count';

    my $novideo = $sb->mint_tokens({ scope => 'video.list' })->{access_token};
    error_is(info($novideo, 'open_id'), 401, 'scope_not_authorized',
             'the endpoint needs user.info.basic');
};

my @ids;

subtest 'video list: paging with a millisecond cursor' => sub {
    my ($cursor, $pages) = (undef, 0);
    my @sizes;
    while (1) {
        my $res = list($tok, { max_count => 10,
                               defined $cursor ? (cursor => $cursor) : () });
        is $res->{status}, 200, "page $pages: HTTP 200";
        my $d = $res->{json}{data};
        push @sizes, scalar @{ $d->{videos} };
        push @ids, map { $_->{id} } @{ $d->{videos} };
        like $d->{cursor}, qr/^\d{13}$/, 'cursor is epoch milliseconds';
        my $last = $d->{videos}[-1];
        cmp_ok $d->{cursor}, '>=', $last->{create_time} * 1000,
            '... at the last video' if $last;
        cmp_ok $d->{cursor}, '<', ($last->{create_time} + 1) * 1000,
            '... of this page' if $last;
        $cursor = $d->{cursor};
        last unless $d->{has_more};
        last if ++$pages > 5;
    }
    is_deeply \@sizes, [10, 10, 5], 'pages of 10, 10, 5';
    my %seen;
    is scalar(grep { !$seen{$_}++ } @ids), 25, 'no video twice';
    is_deeply \@ids, [sort { $b cmp $a } @ids], 'newest first (ids grow)';
    ok !grep({ !/^\d{19}$/ } @ids), 'ids are 19-digit strings';
    ok !grep({ $_ le '9007199254740992' && length($_) <= 16 } @ids),
        'ids exceed 2^53';

    my $res = list($tok, { max_count => 1 });
    like $res->{content}, qr/"id":"\d{19}"/, 'id is a JSON string';
    like $res->{content}, qr/"create_time":\d{10}[,}]/,
        'create_time is epoch seconds';

    my $newest = $res->{json}{data}{videos}[0];
    $res = list($tok, { cursor => $newest->{create_time} });
    is scalar @{ $res->{json}{data}{videos} }, 0,
        'a cursor in seconds reads as 1970 milliseconds: nothing older';
    ok !$res->{json}{data}{has_more}, '... has_more false';

    $res = list($tok, {});
    is scalar @{ $res->{json}{data}{videos} }, 10, 'max_count defaults to 10';
    $res = $sb->api(POST => '/v2/video/list/?fields=id', token => $tok);
    is scalar @{ $res->{json}{data}{videos} }, 10, '... also with no body';
};

subtest 'video list: validation and fields' => sub {
    for my $bad (0, 21, -1, '5', 2.5) {
        error_is(list($tok, { max_count => $bad }), 400, 'invalid_params',
                 "max_count $bad");
    }
    is scalar @{ list($tok, { max_count => 20 })->{json}{data}{videos} }, 20,
        'max_count 20';
    error_is(list($tok, { cursor => '1700000000000' }), 400, 'invalid_params',
             'cursor as a string');
    error_is(list($tok, { cursor => -5 }), 400, 'invalid_params',
             'negative cursor');
    error_is($sb->api(POST => '/v2/video/list/?fields=id', token => $tok,
                      json => '{"max_count":'), 400, 'invalid_params',
             'broken JSON');
    error_is(list($tok, {}, 'id,colour'), 400, 'invalid_params',
             'unknown field');
    error_is($sb->api(POST => '/v2/video/list/', token => $tok, json => {}),
             400, 'invalid_params', 'fields missing');

    my $all = join ',', qw(id create_time cover_image_url share_url
                           video_description duration height width title
                           embed_html embed_link like_count comment_count
                           share_count view_count);
    my $res = list($tok, { max_count => 20 }, $all);
    my $v = $res->{json}{data}{videos}[0];
    is_deeply [sort keys %$v], [sort split /,/, $all], 'every field';
    like $v->{share_url}, qr{^https://www\.tiktok\.com/\@sandbox\.creator/video/$v->{id}},
        'share_url';
    like $res->{content}, qr/"view_count":5\d{9}\b/,
        'some view_count beyond 2^32, a JSON integer';

    my $two = list($tok, { max_count => 1 }, 'title,id')->{json}{data}{videos}[0];
    is_deeply [sort keys %$two], ['id', 'title'], 'only the requested fields';

    my $nolist = $sb->mint_tokens({ scope => 'user.info.basic' })->{access_token};
    error_is(list($nolist, {}), 401, 'scope_not_authorized',
             'needs video.list');
};

subtest 'cover_image_url expires after 6 hours' => sub {
    my $v = list($tok, { max_count => 1 }, 'id,cover_image_url')
        ->{json}{data}{videos}[0];
    my ($exp) = $v->{cover_image_url} =~ /x-expires=(\d+)/;
    ok $exp, 'x-expires in the query string';
    cmp_ok abs($exp - (time + 6 * 3600)), '<', 10, '... 6 hours from now';
    my $img = $sb->api(GET => $v->{cover_image_url});
    is $img->{status}, 200, 'the image is served';
    is $img->{headers}{'content-type'}, 'image/png', '... a PNG';
    like $img->{content}, qr/^\x89PNG/, '... really';

    $sb->set_config({ cover_url_ttl => 0 });
    $v = list($tok, { max_count => 1 }, 'cover_image_url')->{json}{data}{videos}[0];
    is $sb->api(GET => $v->{cover_image_url})->{status}, 403,
        'an expired cover URL is refused';
    (my $forged = $v->{cover_image_url}) =~ s/x-expires=\d+/x-expires=9999999999/;
    is $sb->api(GET => $forged)->{status}, 403, 'a forged expiry too';
    $sb->set_config({ cover_url_ttl => 21600 });
};

subtest 'public videos only; video query limited to the owner' => sub {
    my $u = $sb->add_user({
        open_id => 'lister', username => 'lister',
        videos => [
            { id => '7399999999999999990', title => 'from 2020',
              create_time => 1577836800 },
            { id => '7399999999999999991', title => 'public one',
              create_time => time - 300 },
            { id => '7399999999999999992', title => 'private one',
              create_time => time - 200, public => JSON::PP::false },
            { id => '7399999999999999993', title => 'public two',
              create_time => time - 100, view_count => 9_000_000_000 },
        ] });
    my $lt = $sb->mint_tokens({ open_id => 'lister' })->{access_token};
    my $res = list($lt, {});
    my @got = @{ $res->{json}{data}{videos} };
    is_deeply [map { $_->{id} } @got],
        ['7399999999999999993', '7399999999999999991', '7399999999999999990'],
        'list: public only, newest first';
    is $got[-1]{create_time}, 1577836800, 'a given create_time is kept';
    like $res->{content}, qr/"id":"7399999999999999993"/, 'exact id string';

    my $q = sub {
        my ($token, $ids, $fields) = @_;
        return $sb->api(POST => '/v2/video/query/', token => $token,
                        query => { fields => $fields // 'id,title,view_count' },
                        json => { filters => { video_ids => $ids } });
    };
    $res = $q->($lt, ['7399999999999999993', '7399999999999999992', $ids[0],
                      '7300000000000009999']);
    is $res->{status}, 200, 'query: HTTP 200';
    is_deeply [map { $_->{id} } @{ $res->{json}{data}{videos} }],
        ['7399999999999999993'],
        'query: only the owner\'s public videos come back';
    like $res->{content}, qr/"view_count":9000000000\b/, 'int64 count';

    $res = $q->($tok, [@ids[0 .. 19]]);
    is scalar @{ $res->{json}{data}{videos} }, 20, '20 ids: all found';
    error_is($q->($tok, [@ids[0 .. 20]]), 400, 'invalid_params', '21 ids');
    error_is($q->($tok, []), 400, 'invalid_params', 'no ids');
    error_is($q->($tok, [7300000000000000001]), 400, 'invalid_params',
             'ids as numbers');
    error_is($sb->api(POST => '/v2/video/query/?fields=id', token => $tok,
                      json => {}), 400, 'invalid_params', 'filters missing');
    error_is($q->($basic, [$ids[0]]), 401, 'scope_not_authorized',
             'needs video.list');
};

subtest 'rate limit: 600 per minute per client, sliding window' => sub {
    $sb->reset;     # a fresh window: earlier subtests used this endpoint
    $tok = $sb->mint_tokens({ scope => $ALL })->{access_token};
    $sb->add_user({ open_id => 'other' });
    my $other = $sb->mint_tokens({ open_id => 'other' })->{access_token};
    my $ok = 0;
    for (1 .. 600) {
        $ok++ if $sb->api(POST => '/v2/video/query/?fields=id', token => $tok,
                          json => { filters => { video_ids => ['1'] } })
                    ->{status} == 200;
    }
    is $ok, 600, '600 requests pass';
    my $res = $sb->api(POST => '/v2/video/query/?fields=id', token => $other,
                       json => { filters => { video_ids => ['1'] } });
    error_is($res, 429, 'rate_limit_exceeded',
             'the 601st within a minute, even with another user\'s token');
    like $res->{headers}{'retry-after'}, qr/^\d+$/, 'Retry-After';
    cmp_ok $res->{headers}{'retry-after'}, '<=', 60, '... within the window';
    is list($tok, {})->{status}, 200, 'other endpoints have their own window';

    $sb->set_config({ rate_limits => { '/v2/user/info/' => 3 } });
    info($tok, 'open_id') for 1 .. 3;
    error_is(info($tok, 'open_id'), 429, 'rate_limit_exceeded',
             'a configured limit');
};

done_testing;
