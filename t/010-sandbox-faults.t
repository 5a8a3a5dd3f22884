# The sandbox's control API: every fault type, fault counts and scoping,
# faults on the upload host, call counts, the request log, reset, and its
# own error answers.

use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;
use Time::HiRes qw(time);

use TikTokSandbox;

my $dir = tempdir('sbx-faults-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_faults',
                              client_secret => 'cs_faults');
END { $sb->stop if $sb }

my $tok = $sb->mint_tokens->{access_token};

sub info {
    return $sb->api(GET => '/v2/user/info/', token => $tok,
                    query => { fields => 'open_id' }, @_);
}

sub list {
    return $sb->api(POST => '/v2/video/list/', token => $tok,
                    query => { fields => 'id' }, json => {});
}

subtest 'delay' => sub {
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 400 });
    my $t0 = time;
    my $res = info();
    my $took = time - $t0;
    is $res->{status}, 200, 'answered normally';
    cmp_ok $took, '>=', 0.4, sprintf('after the delay (%.2fs)', $took);
    $t0 = time;
    info();
    cmp_ok time - $t0, '<', 0.3, 'count 1: the next one is not delayed';
};

subtest 'status' => sub {
    $sb->fault({ endpoint => '/v2/user/info/', type => 'status',
                 status => 503 });
    my $res = info();
    is $res->{status}, 503, 'HTTP 503';
    is $res->{json}{error}{code}, 'internal_error', 'internal_error envelope';
    ok $res->{json}{error}{log_id}, '... with a log_id';
    $sb->fault({ endpoint => '/v2/user/info/', type => 'status' });
    is info()->{status}, 500, 'default status 500';
    is info()->{status}, 200, 'then normal again';
};

subtest 'rate_limit' => sub {
    $sb->fault({ endpoint => '/v2/video/list/', type => 'rate_limit',
                 retry_after => 7 });
    my $res = list();
    is $res->{status}, 429, 'HTTP 429';
    is $res->{json}{error}{code}, 'rate_limit_exceeded', 'rate_limit_exceeded';
    is $res->{headers}{'retry-after'}, 7, 'Retry-After 7';
};

subtest 'malformed_json' => sub {
    $sb->fault({ endpoint => '/v2/video/list/', type => 'malformed_json' });
    my $res = list();
    is $res->{status}, 200, 'HTTP 200';
    like $res->{headers}{'content-type'}, qr{^application/json}, 'says JSON';
    is $res->{headers}{'content-length'}, length $res->{content},
        'Content-Length right';
    ok !eval { decode_json($res->{content}); 1 }, 'but it does not parse';
};

subtest 'drop' => sub {
    $sb->fault({ endpoint => '/v2/video/list/', type => 'drop' });
    my $res = list();
    is $res->{status}, 599, 'the connection closes without an answer';
    my $r = $sb->requests('/v2/video/list/', 1)->[0];
    ok exists $r->{status} && !defined $r->{status},
        'the request was read (and logged without a status)';
    is list()->{status}, 200, 'the next request is fine';

    # HTTP::Tiny retries an idempotent method once after a dropped
    # connection (so does nginx): drop both attempts.
    my $before = $sb->calls->{'/v2/user/info/'};
    $sb->fault({ endpoint => '/v2/user/info/', type => 'drop', count => 2 });
    is info()->{status}, 599, 'a GET dropped twice';
    is $sb->calls->{'/v2/user/info/'} - $before, 2, '... both attempts seen';
};

subtest 'token_invalid' => sub {
    $sb->fault({ endpoint => '/v2/user/info/', type => 'token_invalid' });
    my $res = info();
    is $res->{status}, 401, 'HTTP 401';
    is $res->{json}{error}{code}, 'access_token_invalid',
        'access_token_invalid';
    is info()->{status}, 200, 'the token itself still works';

    $sb->fault({ endpoint => '/v2/oauth/token/', type => 'token_invalid' });
    $res = $sb->token(grant_type => 'refresh_token', refresh_token => 'x');
    is $res->{json}{error}, 'invalid_grant', 'on the token endpoint: flat invalid_grant';
};

subtest 'error_code' => sub {
    my $pub = $sb->mint_tokens({ scope => 'video.publish' })->{access_token};
    $sb->fault({ endpoint => '/v2/post/publish/video/init/',
                 type => 'error_code', code => 'spam_risk_user_banned_from_posting' });
    my $res = $sb->api(POST => '/v2/post/publish/video/init/', token => $pub,
                       json => {});
    is $res->{status}, 403, 'documented HTTP status (403)';
    is $res->{json}{error}{code}, 'spam_risk_user_banned_from_posting',
        'the given code';

    $sb->fault({ endpoint => '/v2/user/info/', type => 'error_code',
                 code => 'internal_error' });
    is info()->{status}, 500, 'internal_error: 500';

    $sb->fault({ endpoint => '/v2/user/info/', type => 'error_code',
                 code => 'scope_not_authorized', status => 200 });
    $res = info();
    is $res->{status}, 200, 'status overridden';
    is $res->{json}{error}{code}, 'scope_not_authorized', '... same code';

    $sb->fault({ endpoint => '/v2/oauth/token/', type => 'error_code',
                 code => 'invalid_grant' });
    $res = $sb->token(grant_type => 'authorization_code', code => 'x',
                      redirect_uri => 'https://app.example.com/api/tiktok/callback');
    is $res->{status}, 200, 'on OAuth: HTTP 200 like its real errors';
    is $res->{json}{error}, 'invalid_grant', '... flat body';
    ok !exists $res->{json}{data}, '... no envelope';
};

subtest 'count, "*", clearing' => sub {
    $sb->fault({ endpoint => '/v2/user/info/', type => 'status',
                 status => 502, count => 2 });
    is_deeply [map { info()->{status} } 1 .. 3], [502, 502, 200],
        'count 2: two requests';

    $sb->fault({ endpoint => '*', type => 'status', status => 504,
                 count => 0 });
    is_deeply [map { info()->{status} } 1 .. 3], [504, 504, 504],
        'count 0: until cleared';
    is list()->{status}, 504, '"*": every endpoint';
    $sb->clear_faults;
    is info()->{status}, 200, 'DELETE /faults clears';

    $sb->fault({ endpoint => '/v2/video/list/', type => 'status' });
    is info()->{status}, 200, 'a fault on another endpoint does not apply';
    is list()->{status}, 500, '... only on its own';

    $sb->fault([{ endpoint => '/v2/user/info/', type => 'status', status => 503 },
                { endpoint => '/v2/user/info/', type => 'rate_limit' }]);
    is_deeply [map { info()->{status} } 1 .. 3], [503, 429, 200],
        'a list of faults applies in order';
};

subtest 'faults on the upload host' => sub {
    my $pub = $sb->mint_tokens({ scope => 'video.publish' })->{access_token};
    my $d = $sb->api(POST => '/v2/post/publish/video/init/', token => $pub,
                     json => { post_info => { privacy_level => 'SELF_ONLY',
                                              brand_content_toggle => JSON::PP::false },
                               source_info => { source => 'FILE_UPLOAD',
                                                video_size => 2000,
                                                chunk_size => 2000,
                                                total_chunk_count => 1 } })
              ->{json}{data};
    my $put = sub {
        return $sb->api(PUT => $d->{upload_url}, content => 'v' x 2000,
                        headers => { 'Content-Type' => 'video/webm',
                                     'Content-Range' => 'bytes 0-1999/2000' });
    };
    $sb->fault({ endpoint => '/upload/', type => 'status', status => 503 });
    is $put->()->{status}, 503, 'a 503 for the chunk';
    is $sb->upload($d->{publish_id})->{bytes}, 0, '... which did not count';
    $sb->fault({ endpoint => '/upload/', type => 'drop', count => 2 });
    is $put->()->{status}, 599, 'a dropped chunk (and its retry)';
    is $sb->upload($d->{publish_id})->{bytes}, 0, '... did not count';
    is $put->()->{status}, 201, 'the retry is accepted';
    is $sb->upload($d->{publish_id})->{bytes}, 2000, '... once';

    my $d2 = $sb->api(POST => '/v2/post/publish/video/init/', token => $pub,
                      json => { post_info => { privacy_level => 'SELF_ONLY',
                                               brand_content_toggle => JSON::PP::false },
                                source_info => { source => 'FILE_UPLOAD',
                                                 video_size => 2000,
                                                 chunk_size => 2000,
                                                 total_chunk_count => 1 } })
               ->{json}{data};
    $sb->fault({ endpoint => '/upload/', type => 'drop', count => 2,
                 after => JSON::PP::true });
    is $sb->api(PUT => $d2->{upload_url}, content => 'v' x 2000,
                headers => { 'Content-Type' => 'video/webm',
                             'Content-Range' => 'bytes 0-1999/2000' })->{status},
        599, 'a chunk stored, its answer dropped';
    is $sb->upload($d2->{publish_id})->{bytes}, 2000, '... the bytes counted';
};

subtest 'calls and requests' => sub {
    $sb->clear_calls;
    info() for 1 .. 3;
    list();
    $sb->token(grant_type => 'refresh_token', refresh_token => 'nope');
    my $calls = $sb->calls;
    is $calls->{'/v2/user/info/'}, 3, 'user info: 3';
    is $calls->{'/v2/video/list/'}, 1, 'video list: 1';
    is $calls->{'/v2/oauth/token/'}, 1, 'token: 1';
    is $calls->{'/v2/oauth/token/#refresh_token'}, 1, '... of which refresh: 1';

    my $r = $sb->requests('/v2/video/list/', 1);
    is scalar @$r, 1, 'the last request';
    is $r->[0]{method}, 'POST', 'method';
    is $r->[0]{path}, '/v2/video/list/', 'path';
    is $r->[0]{query}, 'fields=id', 'query';
    is $r->[0]{headers}{authorization}, "Bearer $tok", 'headers';
    is $r->[0]{body}, '{}', 'body';
    is $r->[0]{status}, 200, 'the answer';

    $r = $sb->requests('/v2/user/info/', 2);
    is scalar @$r, 2, 'n limits the count';
    $r = $sb->requests('/v2/oauth/token/', 5);
    like $r->[-1]{body}, qr/grant_type=refresh_token/, 'form body as text';
};

subtest 'after: TikTok acted, the answer was lost' => sub {
    my $pub = $sb->mint_tokens({ scope => 'video.publish' })->{access_token};
    my $init = sub {
        return $sb->api(POST => '/v2/post/publish/video/init/', token => $pub,
                        json => { post_info => { privacy_level => 'SELF_ONLY',
                                  brand_content_toggle => JSON::PP::false },
                                  source_info => { source => 'PULL_FROM_URL',
                                  video_url => 'https://media.example.com/a.mp4' } });
    };
    my $before = @{ $sb->posts };
    $sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'status',
                 status => 502, after => JSON::PP::true });
    is $init->()->{status}, 502, 'a 502 after the init';
    is scalar @{ $sb->posts }, $before + 1, '... which created the publish';

    $sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'status',
                 status => 502 });
    is $init->()->{status}, 502, 'a 502 before it';
    is scalar @{ $sb->posts }, $before + 1, '... which created nothing';

    $sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'drop',
                 after => JSON::PP::true });
    is $init->()->{status}, 599, 'a dropped answer after the init';
    is scalar @{ $sb->posts }, $before + 2, '... which created the publish';

    # HTTP::Tiny resends a GET once after a broken answer: break both
    $sb->fault({ endpoint => '/v2/user/info/', type => 'truncate',
                 count => 2 });
    my $res = info();
    is $res->{status}, 599, 'truncate: the body stops short';
    $sb->fault({ endpoint => '/v2/user/info/', type => 'truncate',
                 after => JSON::PP::true, count => 2 });
    $res = info();
    is $res->{status}, 599, 'truncate after the work: the same on the wire';
    is info()->{status}, 200, 'then normal again';

    is $sb->control_raw(POST => '/faults', { type => 'delay',
                                             after => JSON::PP::true })->{status},
        400, 'a delay cannot come after';
    is $sb->control_raw(POST => '/faults', { type => 'drop', after => 'yes' })
        ->{status}, 400, 'after is a boolean';
};

subtest 'control errors' => sub {
    is $sb->control_raw(POST => '/faults', { type => 'explode' })->{status},
        400, 'unknown fault type';
    is $sb->control_raw(POST => '/faults', { type => 'delay', count => -1 })
        ->{status}, 400, 'negative count';
    is $sb->control_raw(POST => '/config', { acces_expires_in => 5 })->{status},
        400, 'misspelt config key';
    is $sb->control_raw(POST => '/config', { upload_url_ttl => 'soon' })
        ->{status}, 400, 'config value of the wrong type';
    is $sb->control_raw(POST => '/users', { open_id => 'x', privat => 1 })
        ->{status}, 400, 'misspelt user field';
    is $sb->control_raw(POST => '/users', { open_id => 'x', can_post => 'maybe' })
        ->{status}, 400, 'unknown can_post';
    is $sb->control_raw(POST => '/tokens', { open_id => 'ghost' })->{status},
        400, 'tokens for an unknown user';
    is $sb->control_raw(POST => '/authorize', { open_id => 'ghost' })->{status},
        400, 'authorization by an unknown user';
    is $sb->control_raw(GET => '/nothing')->{status}, 404, 'unknown path';
    is $sb->control_raw(GET => '/users/ghost')->{status}, 404, 'unknown user';
    is $sb->control_raw(GET => '/uploads/nope')->{status}, 404, 'unknown upload';
};

subtest 'users' => sub {
    my $u = $sb->add_user({ open_id => 'gen', video_count => 3,
                            display_name => "Zo\x{eb}" });
    is scalar @{ $u->{videos} }, 3, 'video_count generates videos';
    like $u->{videos}[0]{id}, qr/^\d{19}$/, '... with 19-digit ids';
    my $t = $sb->mint_tokens({ open_id => 'gen' })->{access_token};
    my $res = $sb->api(GET => '/v2/user/info/', token => $t,
                       query => { fields => 'display_name' });
    is $res->{json}{data}{user}{display_name}, "Zo\x{eb}", 'UTF-8 round trip';
    is $sb->user('gen')->{display_name}, "Zo\x{eb}", 'GET /users/<open_id>';
};

subtest 'reset' => sub {
    $sb->fault({ endpoint => '*', type => 'status', count => 0 });
    $sb->set_config({ access_expires_in => 5 });
    $sb->reset;
    is_deeply [keys %{ $sb->calls }], [], 'call counts are gone';
    is info()->{status}, 401, 'tokens are gone';
    is $sb->control_raw(GET => '/users/gen')->{status}, 404, 'users are gone';
    ok $sb->user($sb->default_open_id), 'the default user is back';
    is_deeply $sb->control(GET => '/faults')->{faults}, [], 'faults are gone';
    is $sb->config->{access_expires_in}, 7200, 'configuration is back';
    $tok = $sb->mint_tokens->{access_token};
    my $v = $sb->api(POST => '/v2/video/list/', token => $tok,
                     query => { fields => 'id' }, json => {})->{json}{data};
    is $v->{videos}[0]{id}, '7300000000000000025',
        'ids start again: the default user\'s newest video';
    is $sb->api(GET => '/v2/user/info/?fields=open_id', token => $tok)
        ->{json}{data}{user}{open_id}, $sb->default_open_id,
        'the client is still registered';
};

done_testing;
