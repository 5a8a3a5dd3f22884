# The sandbox's Content Posting API: creator info (and "can't post now" with
# HTTP 200), init validation including every chunk rule, the chunked upload
# with Content-Range, status progression to PUBLISH_COMPLETE with
# publicaly_available_post_id, daily cap and rate limits.

use strict;
use warnings;

use Digest::SHA;
use File::Temp qw(tempdir);
use Test::More;

use TikTokSandbox;

my $dir = tempdir('sbx-post-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_post',
                              client_secret => 'cs_post');
END { $sb->stop if $sb }

my $ME = $sb->default_open_id;

# The default user posts far more than TikTok's ~15 a day in this file; the
# cap has its own subtest below.
$sb->set_config({ daily_post_cap => 1000 });
my $MP4 = "\0\0\0\x18ftypmp42\0\0\0\0mp42isom";    # enough of an MP4 head

# Init is limited to 6 per minute per token: most checks use a fresh token.
sub token {
    my ($open_id, $scope) = @_;
    return $sb->mint_tokens({ open_id => $open_id // $ME,
                              scope => $scope // 'video.publish,video.list' })
              ->{access_token};
}

sub call {
    my ($path, $token, $body) = @_;
    return $sb->api(POST => "/v2/post/publish/$path/", token => $token,
                    defined $body ? (json => $body) : ());
}

sub post_info {
    return { privacy_level => 'PUBLIC_TO_EVERYONE', title => 'hello',
             disable_comment => JSON::PP::true, disable_duet => JSON::PP::true,
             disable_stitch => JSON::PP::true,
             brand_content_toggle => JSON::PP::false, @_ };
}

sub file_source {
    my ($size, $chunk, $count) = @_;
    return { source => 'FILE_UPLOAD', video_size => $size,
             chunk_size => $chunk, total_chunk_count => $count };
}

sub init {
    my ($token, %o) = @_;
    return call('video/init', $token, {
        post_info => $o{post_info} // post_info(),
        source_info => $o{source_info} // file_source(1000, 1000, 1) });
}

sub error_is {
    my ($res, $status, $code, $name) = @_;
    subtest $name => sub {
        is $res->{status}, $status, "HTTP $status";
        is $res->{json}{error}{code}, $code, "error.code $code";
        ok length $res->{json}{error}{message}, 'a message';
        ok !exists $res->{json}{data}{publish_id}, 'no publish_id';
    };
}

sub put_chunk {
    my ($url, $data, $first, $total, %h) = @_;
    my $last = $first + length($data) - 1;
    return $sb->api(PUT => $url, content => $data, headers => {
        'Content-Type' => 'video/mp4',
        'Content-Range' => "bytes $first-$last/$total", %h });
}

sub status_of {
    my ($token, $publish_id) = @_;
    return call('status/fetch', $token, { publish_id => $publish_id });
}

subtest 'creator info: public and private accounts' => sub {
    my $res = call('creator_info/query', token());
    is $res->{status}, 200, 'HTTP 200';
    is $res->{json}{error}{code}, 'ok', 'ok';
    my $d = $res->{json}{data};
    is_deeply $d->{privacy_level_options},
        [qw(PUBLIC_TO_EVERYONE MUTUAL_FOLLOW_FRIENDS SELF_ONLY)],
        'public account options';
    is $d->{creator_nickname}, 'Sandbox Creator', 'creator_nickname';
    is $d->{creator_username}, 'sandbox.creator', 'creator_username';
    like $d->{creator_avatar_url}, qr{^https://}, 'creator_avatar_url';
    is $d->{max_video_post_duration_sec}, 600, 'max duration default 600';
    like $res->{content}, qr/"comment_disabled":false/, 'booleans are JSON booleans';
    ok exists $d->{$_}, $_ for qw(duet_disabled stitch_disabled);

    $sb->add_user({ open_id => 'private-one', display_name => 'Private One',
                    username => 'private.one', private => JSON::PP::true,
                    comment_disabled => JSON::PP::true,
                    max_video_post_duration_sec => 180 });
    $d = call('creator_info/query', token('private-one'))->{json}{data};
    is_deeply $d->{privacy_level_options},
        [qw(FOLLOWER_OF_CREATOR MUTUAL_FOLLOW_FRIENDS SELF_ONLY)],
        'private account options';
    ok $d->{comment_disabled}, 'comment_disabled';
    is $d->{max_video_post_duration_sec}, 180, 'per-user max duration';

    $res = $sb->api(POST => '/v2/post/publish/creator_info/query/',
                    token => token(), content => '');
    is $res->{status}, 200, 'an empty body is fine';

    error_is(call('creator_info/query', token($ME, 'video.list')), 401,
             'scope_not_authorized', 'needs video.publish');
};

subtest "can't post now: HTTP 200 from creator info, 403 from init" => sub {
    for my $why (qw(spam_risk_too_many_posts
                    spam_risk_user_banned_from_posting)) {
        $sb->add_user({ open_id => "blocked-$why", can_post => $why });
        my $t = token("blocked-$why");
        my $res = call('creator_info/query', $t);
        is $res->{status}, 200, "$why: HTTP 200 (quirk)";
        is $res->{json}{error}{code}, $why, "$why: error.code";
        error_is(init($t), 403, $why, "$why: init refused");
    }
};

subtest 'init: post_info validation' => sub {
    my $t = token();
    my $bad = sub {
        my ($pi, $status, $code, $name) = @_;
        error_is(init($t, post_info => $pi), $status, $code, $name);
        $t = token();
    };
    my $pi = post_info();
    delete $pi->{privacy_level};
    $bad->($pi, 400, 'invalid_param', 'privacy_level missing');
    $bad->(post_info(privacy_level => 'FOLLOWER_OF_CREATOR'), 403,
           'privacy_level_option_mismatch', 'privacy not among the options');
    $bad->(post_info(privacy_level => 'EVERYBODY'), 403,
           'privacy_level_option_mismatch', 'unknown privacy level');
    $bad->(post_info(title => "\x{1F3AC}" x 1101), 400, 'invalid_param',
           '1101 emoji = 2202 UTF-16 units');
    $bad->(post_info(title => 'x' x 2201), 400, 'invalid_param',
           '2201 characters');
    $bad->(post_info(disable_comment => 'true'), 400, 'invalid_param',
           'a boolean as a string');
    $bad->(post_info(is_aigc => 1), 400, 'invalid_param', 'a boolean as 1');
    $pi = post_info();
    delete $pi->{brand_content_toggle};
    $bad->($pi, 400, 'invalid_param', 'brand_content_toggle missing');
    $bad->(post_info(privacy_level => 'SELF_ONLY',
                     brand_content_toggle => JSON::PP::true),
           400, 'invalid_param', 'branded content cannot be SELF_ONLY');
    $bad->(post_info(video_cover_timestamp_ms => -1), 400, 'invalid_param',
           'negative cover timestamp');

    my $res = init($t, post_info => post_info(title => "\x{1F3AC}" x 1100));
    is $res->{status}, 200, '1100 emoji = 2200 UTF-16 units: accepted';
    $res = init($t, post_info => post_info(
        privacy_level => 'SELF_ONLY', brand_organic_toggle => JSON::PP::true,
        is_aigc => JSON::PP::false, video_cover_timestamp_ms => 1000));
    is $res->{status}, 200, 'every optional field';
};

subtest 'init: request shape' => sub {
    my $t = token();
    my $body = '{"post_info":{"privacy_level":"SELF_ONLY",'
             . '"brand_content_toggle":false},"source_info":{"source":'
             . '"FILE_UPLOAD","video_size":10,"chunk_size":10,'
             . '"total_chunk_count":1}}';
    my $send = sub {
        my ($ctype, $content) = @_;
        return $sb->api(POST => '/v2/post/publish/video/init/', token => $t,
                        content => $content // $body,
                        headers => { 'Content-Type' => $ctype });
    };
    error_is($send->('text/plain'), 400, 'invalid_param', 'text/plain');
    error_is($send->('application/x-www-form-urlencoded'), 400,
             'invalid_param', 'a form');
    error_is($send->('application/json; charset=ISO-8859-1'), 400,
             'invalid_param', 'another charset');
    is $send->('application/json; charset=UTF-8')->{status}, 200,
        'application/json; charset=UTF-8';
    is $send->('Application/JSON;charset=utf-8')->{status}, 200,
        '... any case';
    is $send->('application/json')->{status}, 200, '... charset optional';
    $t = token();
    error_is($send->('application/json', '{"post_info":'), 400,
             'invalid_param', 'broken JSON');
    error_is($send->('application/json', '[]'), 400, 'invalid_param',
             'not an object');
    error_is(init($t, source_info => { source => 'CAMERA' }), 400,
             'invalid_param', 'unknown source');
    error_is(call('video/init', $t, { post_info => post_info() }), 400,
             'invalid_param', 'source_info missing');
};

subtest 'init: chunk rules' => sub {
    my @cases = (
        # video_size, chunk_size, total_chunk_count, ok?, name
        [50_000_123, 10_000_000, 5, 1, 'documented example: 5 chunks'],
        [50_000_123, 10_000_000, 4, 0, '... not 4'],
        [50_000_123, 10_000_000, 6, 0, '... nor 6 (ceil)'],
        [1_000_000, 1_000_000, 1, 1, 'under 5 MB: one chunk = video_size'],
        [1_000_000, 500_000, 2, 0, 'under 5 MB in small chunks'],
        [1_000_000, 5_242_880, 1, 0,
         'chunk_size larger than a small video'],
        [1_000_000, 1_000_000, 2, 0, 'one chunk counted as two'],
        [64_000_000, 64_000_000, 1, 1, '64,000,000 bytes in one chunk'],
        [64_000_001, 64_000_001, 1, 0, 'over 64,000,000 in one chunk'],
        [64_000_001, 64_000_000, 1, 0,
         'over 64,000,000: floor gives 1 chunk, but it needs several'],
        [100_000_000, 50_000_000, 2, 1, '100 MB in 2 chunks'],
        [100_000_000, 64_000_001, 1, 0, 'chunk over 64,000,000'],
        [10_485_760, 5_242_880, 2, 1, 'chunk_size 5,242,880'],
        [10_485_758, 5_242_879, 2, 0, 'chunk_size 5,242,879'],
        [8_000_000, 6_000_000, 1, 1,
         'one chunk whose remainder makes it 8 MB'],
        [191_999_999, 64_000_000, 2, 1, 'last chunk 127,999,999 bytes'],
        [4_000_000_000, 5_242_880, 762, 1, '4 GB in 762 chunks'],
        [4_000_000_001, 64_000_000, 62, 0, 'over 4 GB'],
        [0, 0, 0, 0, 'empty video'],
        ['1000', 1000, 1, 0, 'video_size as a string'],
        [1000, 1000.5, 1, 0, 'chunk_size not an integer'],
        [1000, 1000, JSON::PP::true, 0, 'total_chunk_count a boolean'],
    );
    my $t = token();
    my $n = 0;
    for my $c (@cases) {
        my ($size, $chunk, $count, $ok, $name) = @$c;
        $t = token() if $n++ % 6 == 5;     # 6 inits per minute per token
        my $res = init($t, source_info => file_source($size, $chunk, $count));
        if ($ok) {
            is $res->{status}, 200, "$name: accepted";
            like $res->{json}{data}{upload_url}, qr{^https://127\.0\.0\.1:},
                "$name: upload_url";
        } else {
            error_is($res, 400, 'invalid_param', "$name: refused");
        }
    }
};

subtest 'init: PULL_FROM_URL' => sub {
    my $t = token();
    my $pull = sub {
        return init($t, source_info => { source => 'PULL_FROM_URL',
                                         video_url => $_[0] });
    };
    error_is($pull->('http://media.example.com/v.mp4'), 400, 'invalid_param',
             'http URL');
    error_is($pull->('https://203.0.113.7/v.mp4'), 400, 'invalid_param',
             'IP host');
    error_is($pull->('https://[2001:db8::1]/v.mp4'), 400, 'invalid_param',
             'IPv6 host');
    error_is($pull->(undef), 400, 'invalid_param', 'video_url missing');
    $t = token();
    my $res = $pull->('https://evil.example.net/v.mp4');
    is $res->{status}, 200, 'unverified prefix: HTTP 200 (quirk)';
    is $res->{json}{error}{code}, 'url_ownership_unverified',
        '... url_ownership_unverified';
    $res = $pull->('https://media.example.com.evil.net/v.mp4');
    is $res->{json}{error}{code}, 'url_ownership_unverified',
        'a prefix is a prefix, not a substring';

    $res = $pull->('https://media.example.com/videos/v.mp4');
    is $res->{status}, 200, 'verified prefix';
    is $res->{json}{error}{code}, 'ok', '... ok';
    like $res->{json}{data}{publish_id}, qr/^v_pub_url~v2-1\.\d{19}$/,
        'publish_id';
    ok !exists $res->{json}{data}{upload_url}, 'no upload_url';

    $t = token();
    $sb->set_config({ verified_prefixes => ['https://cdn.example.org/ok/',
                                             'videos.example.net'] });
    is $pull->('https://cdn.example.org/ok/a.mp4')->{json}{error}{code}, 'ok',
        'a configured prefix';
    is $pull->('https://eu.videos.example.net/a.mp4')->{json}{error}{code},
        'ok', 'a configured domain covers subdomains';
    is $pull->('https://media.example.com/a.mp4')->{json}{error}{code},
        'url_ownership_unverified', 'the old prefix is gone';
    $sb->set_config({ verified_prefixes => ['https://media.example.com/'] });
};

my $SIZE = 11_000_000;          # 2 chunks: 5,242,880 + 5,757,120
my $CHUNK = 5_242_880;

subtest 'upload: Content-Range, order and answers' => sub {
    my $t = token();
    my $res = init($t, source_info => file_source($SIZE, $CHUNK, 2));
    is $res->{status}, 200, 'init';
    my $d = $res->{json}{data};
    like $d->{publish_id}, qr/^v_pub_file~v2-1\.\d{19}$/, 'publish_id';
    cmp_ok length $d->{publish_id}, '<=', 64, '... at most 64 characters';
    my $url = $d->{upload_url};
    like $url, qr{^https://127\.0\.0\.1:\d+/upload/\?upload_id=\d+&upload_token=[\w-]+$},
        'upload_url on another host name, with its query';
    cmp_ok length $url, '<=', 256, '... at most 256 characters';

    my $data = $MP4 . ('v' x ($SIZE - length $MP4));
    my $c1 = substr($data, 0, $CHUNK);
    my $c2 = substr($data, $CHUNK);

    (my $unknown = $url) =~ s/upload_id=\d+/upload_id=123/;
    is put_chunk($unknown, $c1, 0, $SIZE)->{status}, 404, 'unknown upload: 404';
    (my $forged = $url) =~ s/upload_token=[\w-]+/upload_token=nope/;
    is put_chunk($forged, $c1, 0, $SIZE)->{status}, 403, 'wrong token: 403';
    is put_chunk($url, $c1, 0, $SIZE, 'Content-Type' => 'video/x-flv')
        ->{status}, 400, 'Content-Type video/x-flv: 400';
    is $sb->api(PUT => $url, content => $c1,
                headers => { 'Content-Type' => 'video/mp4' })->{status}, 400,
        'no Content-Range: 400';
    is put_chunk($url, $c1, 0, $SIZE, 'Content-Range' => "bytes=0-5242879/$SIZE")
        ->{status}, 400, 'malformed Content-Range: 400';
    is put_chunk($url, $c1, 0, $SIZE + 1)->{status}, 400,
        'TOTAL other than video_size: 400';
    is put_chunk($url, $c1, 0, $SIZE, 'Content-Range' => "bytes 0-99/$SIZE")
        ->{status}, 400, 'range length other than Content-Length: 400';
    is put_chunk($url, $c2, $CHUNK, $SIZE)->{status}, 416,
        'the second chunk first: 416';
    is put_chunk($url, substr($c1, 0, 5_000_000), 0, $SIZE)->{status}, 400,
        'a first chunk of the wrong size: 400';
    is $sb->api(POST => $url, content => $c1)->{status}, 405, 'POST: 405';

    my $st = status_of($t, $d->{publish_id})->{json}{data};
    is $st->{status}, 'PROCESSING_UPLOAD', 'status: PROCESSING_UPLOAD';
    is $st->{uploaded_bytes}, 0, '... nothing uploaded';

    $res = put_chunk($url, $c1, 0, $SIZE);
    is $res->{status}, 206, 'chunk 1: 206';
    is put_chunk($url, $c1, 0, $SIZE)->{status}, 416, 'chunk 1 again: 416';
    $st = status_of($t, $d->{publish_id})->{json}{data};
    is $st->{uploaded_bytes}, $CHUNK, 'uploaded_bytes after chunk 1';
    is $st->{status}, 'PROCESSING_UPLOAD', '... still PROCESSING_UPLOAD';

    is put_chunk($url, substr($c2, 0, $CHUNK), $CHUNK, $SIZE)->{status}, 400,
        'last chunk cut to chunk_size: 400 (it takes the remainder)';
    is put_chunk($url, $c2, $CHUNK, $SIZE)->{status}, 201,
        'last chunk (5,757,120 bytes): 201';
    is put_chunk($url, $c2, $CHUNK, $SIZE)->{status}, 416,
        'after completion: 416';

    my $up = $sb->upload($d->{publish_id});
    is $up->{bytes}, $SIZE, 'control: bytes';
    is $up->{sha256}, Digest::SHA::sha256_hex($data), 'control: sha256';
    ok $up->{complete}, 'control: complete';
    my @ok = grep { $_->{status} && $_->{status} =~ /^20/ } @{ $up->{ranges} };
    is_deeply [map { $_->{range} } @ok],
        ["bytes 0-5242879/$SIZE", "bytes 5242880-10999999/$SIZE"],
        'control: the accepted ranges';
    is_deeply [map { $_->{status} } grep { $_->{status} } @{ $up->{ranges} }],
        [400, 400, 400, 400, 400, 416, 400, 206, 416, 400, 201, 416],
        'control: every Content-Range with its answer';

    my $reqs = $sb->requests('/upload/', 3);
    is $reqs->[-1]{body_bytes}, length $c2, 'requests log: body size';
    ok !exists $reqs->[-1]{body}, '... not the bytes';

    # progression: N=2 further polls see PROCESSING_UPLOAD, then complete
    my @seen = map { status_of($t, $d->{publish_id}) } 1 .. 3;
    is_deeply [map { $_->{json}{data}{status} } @seen],
        [qw(PROCESSING_UPLOAD PROCESSING_UPLOAD PUBLISH_COMPLETE)],
        'status progression';
    is $seen[0]{json}{data}{uploaded_bytes}, $SIZE, 'uploaded_bytes: all';
    my ($post_id) = $seen[2]{content} =~ /"publicaly_available_post_id":\[(\d+)\]/;
    like $post_id, qr/^\d{19}$/,
        'publicaly_available_post_id: a JSON number of 19 digits';
    is status_of($t, $d->{publish_id})->{json}{data}{status},
        'PUBLISH_COMPLETE', 'stays complete';

    my $list = $sb->api(POST => '/v2/video/list/', token => $t,
                        query => { fields => 'id,title' },
                        json => { max_count => 1 });
    is $list->{json}{data}{videos}[0]{id}, $post_id,
        'the post is the newest video in the list';
    is $list->{json}{data}{videos}[0]{title}, 'hello', '... with its title';
};

subtest 'upload: the documented 5-chunk example, streamed' => sub {
    my $t = token();
    my ($size, $chunk) = (50_000_123, 10_000_000);
    my $d = init($t, source_info => file_source($size, $chunk, 5))
        ->{json}{data};
    my $sha = Digest::SHA->new(256);
    my $block = join '', map { chr(($_ * 7) % 256) } 0 .. 65535;
    my @answers;
    for my $i (0 .. 4) {
        my $len = $i < 4 ? $chunk : $size - 4 * $chunk;
        my $piece = $i == 0 ? $MP4 : '';
        $piece .= $block x (($len - length $piece) / length($block) + 1);
        substr($piece, $len) = '';
        $sha->add($piece);
        push @answers, put_chunk($d->{upload_url}, $piece, $i * $chunk, $size)
                           ->{status};
    }
    is_deeply \@answers, [206, 206, 206, 206, 201], '206 x 4, then 201';
    my $up = $sb->upload($d->{publish_id});
    is $up->{bytes}, 50_000_123, 'all bytes';
    is $up->{sha256}, $sha->hexdigest, 'sha256 of the assembled bytes';
    like $up->{ranges}[4]{range}, qr{^bytes 40000000-50000122/50000123$},
        'last chunk 10,000,123 bytes';
};

subtest 'upload URL expiry' => sub {
    $sb->set_config({ upload_url_ttl => 0 });
    my $d = init(token())->{json}{data};
    is put_chunk($d->{upload_url}, 'x' x 1000, 0, 1000)->{status}, 403,
        'an expired upload URL: 403';
    $sb->set_config({ upload_url_ttl => 3600 });
};

subtest 'status: pull, privacy, failures, ownership' => sub {
    my $t = token();
    my $pull = { source => 'PULL_FROM_URL',
                 video_url => 'https://media.example.com/a.mp4' };
    my $id = init($t, source_info => $pull)->{json}{data}{publish_id};
    my @s = map { status_of($t, $id)->{json}{data} } 1 .. 3;
    is_deeply [map { $_->{status} } @s],
        [qw(PROCESSING_DOWNLOAD PROCESSING_DOWNLOAD PUBLISH_COMPLETE)],
        'pull: PROCESSING_DOWNLOAD, then complete';
    cmp_ok $s[1]{downloaded_bytes}, '>', $s[0]{downloaded_bytes},
        'downloaded_bytes grows';

    $id = init($t, source_info => $pull, post_info =>
               post_info(privacy_level => 'SELF_ONLY'))->{json}{data}{publish_id};
    my $r;
    $r = status_of($t, $id) for 1 .. 3;
    is $r->{json}{data}{status}, 'PUBLISH_COMPLETE', 'SELF_ONLY completes';
    like $r->{content}, qr/"publicaly_available_post_id":\[\]/,
        '... with no public post id';

    $sb->set_config({ status_polls_to_complete => 0 });
    $sb->script_outcome({ fail_reason => 'video_pull_failed',
                          source => 'PULL_FROM_URL' });
    $id = init($t, source_info => $pull)->{json}{data}{publish_id};
    $r = status_of($t, $id)->{json}{data};
    is $r->{status}, 'FAILED', 'scripted failure';
    is $r->{fail_reason}, 'video_pull_failed', '... fail_reason';

    my $d = init($t)->{json}{data};        # 1000 bytes of junk, no ftyp
    is put_chunk($d->{upload_url}, 'j' x 1000, 0, 1000)->{status}, 201,
        'junk uploaded: 201 (checks come later)';
    $r = status_of($t, $d->{publish_id})->{json}{data};
    is $r->{fail_reason}, 'file_format_check_failed',
        'not a video: FAILED file_format_check_failed';

    $t = token();
    $d = init($t)->{json}{data};
    $sb->script_post($d->{publish_id}, { fail_reason => 'duration_check_failed' });
    put_chunk($d->{upload_url}, $MP4 . ('x' x (1000 - length $MP4)), 0, 1000);
    is status_of($t, $d->{publish_id})->{json}{data}{fail_reason},
        'duration_check_failed', 'failure scripted for one publish_id';

    $id = init($t, source_info => $pull)->{json}{data}{publish_id};
    is call('cancel', $t, { publish_id => $id })->{json}{error}{code}, 'ok',
        'cancel';
    $r = status_of($t, $id)->{json}{data};
    is "$r->{status} $r->{fail_reason}", 'FAILED publish_cancelled',
        '... FAILED publish_cancelled';
    $sb->set_config({ status_polls_to_complete => 2 });

    error_is(status_of($t, 'v_pub_file~v2-1.1'), 400, 'invalid_publish_id',
             'unknown publish_id');
    error_is(call('status/fetch', $t, {}), 400, 'invalid_param',
             'publish_id missing');
    $sb->add_user({ open_id => 'stranger' });
    error_is(status_of(token('stranger'), $id), 400,
             'token_not_authorized_for_specified_publish_id',
             "another user's publish_id");
    is status_of(token(), $id)->{status}, 200,
        'the same user with another token';
    is status_of(token($ME, 'video.upload'), $id)->{status}, 200,
        'video.upload is enough for status';
};

subtest 'rate limits per user token' => sub {
    my $t = token();
    my @codes = map { init($t)->{status} } 1 .. 7;
    is_deeply \@codes, [200, 200, 200, 200, 200, 200, 429],
        'the 7th init within a minute: 429';
    my $res = init($t);
    is $res->{json}{error}{code}, 'rate_limit_exceeded', 'rate_limit_exceeded';
    like $res->{headers}{'retry-after'}, qr/^[1-9]\d*$/, 'Retry-After';
    is init(token())->{status}, 200, 'another token has its own window';

    $t = token();
    @codes = map { call('creator_info/query', $t)->{status} } 1 .. 21;
    is $codes[19], 200, '20 creator_info queries';
    is $codes[20], 429, 'the 21st: 429';

    $t = token();
    my $id = init($t, source_info => { source => 'PULL_FROM_URL',
        video_url => 'https://media.example.com/b.mp4' })->{json}{data}{publish_id};
    @codes = map { status_of($t, $id)->{status} } 1 .. 31;
    is $codes[29], 200, '30 status fetches';
    is $codes[30], 429, 'the 31st: 429';
};

subtest 'daily cap: about 15 posts per 24 hours' => sub {
    $sb->set_config({ daily_post_cap => 15 });    # TikTok's, the default
    $sb->add_user({ open_id => 'busy' });
    my $n = 0;
    for my $t (token('busy'), token('busy'), token('busy')) {
        for (1 .. 6) {
            last if $n == 15;
            $n++ if init($t)->{status} == 200;
        }
    }
    is $n, 15, '15 posts';
    error_is(init(token('busy')), 403, 'spam_risk_too_many_posts',
             'the 16th: spam_risk_too_many_posts');
    my $res = call('creator_info/query', token('busy'));
    is $res->{status}, 200, 'creator info says so with HTTP 200';
    is $res->{json}{error}{code}, 'spam_risk_too_many_posts', '... the code';
    $sb->add_user({ open_id => 'idle' });
    is init(token('idle'))->{status}, 200, 'other users can still post';
    $sb->set_config({ daily_post_cap => 1000 });
};

subtest 'unaudited client' => sub {
    $sb->set_config({ unaudited => JSON::PP::true });
    is_deeply call('creator_info/query', token('private-one'))
        ->{json}{data}{privacy_level_options}, ['SELF_ONLY'],
        'only SELF_ONLY';
    error_is(init(token(), post_info => post_info(privacy_level => 'SELF_ONLY')),
             403, 'unaudited_client_can_only_post_to_private_accounts',
             'a public account');
    is init(token('private-one'), post_info =>
            post_info(privacy_level => 'SELF_ONLY'))->{status}, 200,
        'a private account, SELF_ONLY';
    $sb->set_config({ unaudited => JSON::PP::false });
};

done_testing;
