# The libcurl loop (src/ngx_http_tiktok_curl.c) in a real worker against
# the HTTPS sandbox, driven by the test-only companion module
# t/modules/ngx_http_tiktok_curl_test_module.c: GET, POST, a file region PUT
# with Content-Range to a real upload URL, TLS verification, timeouts,
# dropped connections, 5xx and 429, the response cap, keep-alive reuse,
# nothing blocking the worker (5 slow calls in flight, 50 at once),
# cancellation, detached calls, graceful and fast shutdown, and no token
# in the logs.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my $sb = $TikTokTest::Sandbox;
my $curl_module = dirname($ENV{TEST_NGINX_TIKTOK_MODULE})
                  . '/ngx_http_tiktok_curl_test_module.so';

ok(-f $curl_module, 'the curl test module is built');

# ASan slows nginx down several times; the bounds that are about libcurl's
# own timing stretch with it, the non-blocking bound does not.
my $SLOW = $ENV{TIKTOK_ASAN} ? 3 : 1;

my $server = <<'CONF';
        location /curl { tiktok_curl_test; }
        location /plain { return 200 "plain\n"; }
CONF

my $n = 0;

sub nginx {
    my (%o) = @_;
    return TikTokTest::Nginx->new(name => $o{name} // 'curl' . ++$n,
        workers => $o{workers} // 1,
        main => $TikTokTest::MainConfig . "load_module $curl_module;\n"
                . ($o{main} // ''),
        http => $o{http} // $TikTokTest::HttpConfig,
        server => $server,
        log_level => $o{log_level} // 'info')->start;
}

sub esc {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub query {
    my (%a) = @_;
    $a{bearer_hex} = unpack('H*', delete $a{bearer}) if defined $a{bearer};
    $a{url_hex} = unpack('H*', delete $a{url}) if defined $a{url};
    return join '&', map { "$_=" . esc($a{$_}) } sort keys %a;
}

# curl($ngx, path => '/v2/...', method => ..., ...) -> the JSON outcome,
# with {wall} the seconds the call took and {http} nginx's status
sub curl {
    my ($ngx, %a) = @_;
    my $t0 = time;
    my $r = $ngx->request(GET => '/curl?' . query(%a), timeout => 60);
    my $j = eval { decode_json($r->{content}) } || { raw => $r->{content} };
    $j->{http} = $r->{status};
    $j->{wall} = time - $t0;
    return $j;
}

# a request on its own socket, answered later
sub send_raw {
    my ($ngx, %a) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port)
        or die "connect: $!";
    print $s "GET /curl?" . query(%a) . " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    return $s;
}

sub read_raw {
    my ($s) = @_;
    local $/;
    my $resp = <$s> // '';
    close $s;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my $j = eval { decode_json($body // '') } || { raw => $resp };
    ($j->{http}) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    return $j;
}

sub token {
    my ($scope) = @_;
    return $sb->mint_tokens({ scope => $scope
                              // 'user.info.basic,video.publish' })
              ->{access_token};
}

sub clean_log {
    my ($ngx, $what) = @_;
    unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/,
           "$what: no alert or crit in error.log");
}

sub calls { $sb->calls->{$_[0]} // 0 }

my $INFO = '/v2/user/info/?fields=open_id,display_name';
my $tok = token();

my $ngx = nginx(name => 'curl');

# 1. GET with a bearer token
{
    my $before = calls('/v2/user/info/');
    my $j = curl($ngx, path => $INFO, bearer => $tok, id => 'get-1');
    is($j->{http}, 200, 'GET: the test location answers');
    is($j->{rc}, 'OK', 'GET: rc OK');
    is($j->{status}, 200, '... HTTP 200 from the sandbox');
    my $body = eval { decode_json($j->{body}) } || {};
    is($body->{data}{user}{display_name}, 'Sandbox Creator',
       '... the user info');
    is($j->{bytes}, length($j->{body}), '... bytes');
    is($j->{sha256}, sha256_hex($j->{body}), '... sha256 of the answer');
    is($j->{error}, '', '... no error');
    is(calls('/v2/user/info/'), $before + 1, '... one call to the sandbox');

    my $req = $sb->requests('/v2/user/info/', 1)->[0];
    is($req->{method}, 'GET', '... the sandbox got a GET');
    is($req->{headers}{authorization}, "Bearer $tok", '... with the bearer');
    is($req->{query}, 'fields=open_id,display_name', '... and the query');
    like($req->{headers}{'user-agent'}, qr/^ngx_http_tiktok_module/,
         '... our User-Agent');
    is($j->{active}, 0, '... nothing left in flight');
}

# 2. POST: empty body, then JSON
{
    my $j = curl($ngx, path => '/v2/post/publish/creator_info/query/',
                 method => 'POST', bearer => $tok);
    is("$j->{rc} $j->{status}", 'OK 200', 'POST creator_info: 200');
    my $body = eval { decode_json($j->{body}) } || {};
    is($body->{error}{code}, 'ok', '... error.code ok');
    is_deeply($body->{data}{privacy_level_options},
              [qw(PUBLIC_TO_EVERYONE MUTUAL_FOLLOW_FRIENDS SELF_ONLY)],
              '... privacy_level_options');
    my $req = $sb->requests('/v2/post/publish/creator_info/query/', 1)->[0];
    is($req->{method}, 'POST', '... a POST');
    is($req->{headers}{'content-length'}, '0', '... Content-Length: 0');
    ok(!exists $req->{headers}{'content-type'},
       '... no form Content-Type made up');
    ok(!exists $req->{headers}{expect}, '... no Expect: 100-continue');

    $j = curl($ngx, path => '/v2/post/publish/status/fetch/',
              method => 'POST', bearer => $tok,
              ctype => 'application/json; charset=UTF-8',
              body => '{"publish_id":"v_pub_file~v2-1.1"}');
    is($j->{rc}, 'OK', 'POST with a JSON body: rc OK');
    is($j->{status}, 400, '... an unknown publish_id is an answer: 400');
    like($j->{body}, qr/invalid_publish_id/, '... invalid_publish_id');
    $req = $sb->requests('/v2/post/publish/status/fetch/', 1)->[0];
    is($req->{body}, '{"publish_id":"v_pub_file~v2-1.1"}', '... body sent');
    is($req->{headers}{'content-type'}, 'application/json; charset=UTF-8',
       '... with its Content-Type');
}

# 3. no redirect is followed
{
    my $before = calls('/v2/auth/authorize/');
    my $j = curl($ngx, path => '/v2/auth/authorize/?client_key='
                 . "$TikTokTest::ClientKey&response_type=code"
                 . "&scope=user.info.basic&state=s1&redirect_uri="
                 . esc($TikTokTest::RedirectUri));
    is("$j->{rc} $j->{status}", 'OK 302', 'a 302 is the answer');
    is(calls('/v2/auth/authorize/'), $before + 1, '... not followed');
}

# 4. a file region as the body: chunked upload with Content-Range to the
#    upload_url of a real FILE_UPLOAD init
my $dir = "$TikTokTest::Tmp/curl-files";
mkdir $dir;

sub random_bytes {
    my ($len) = @_;
    open my $fh, '<:raw', '/dev/urandom' or die $!;
    read($fh, my $buf, $len) == $len or die 'short read';
    close $fh;
    return $buf;
}

my $MP4 = "\0\0\0\x18ftypmp42\0\0\0\0mp42isom";

sub init_upload {
    my ($size, $chunk, $count) = @_;
    my $body = encode_json({
        post_info => { privacy_level => 'SELF_ONLY', title => 'curl test',
                       disable_comment => JSON::PP::true,
                       disable_duet => JSON::PP::true,
                       disable_stitch => JSON::PP::true,
                       brand_content_toggle => JSON::PP::false },
        source_info => { source => 'FILE_UPLOAD', video_size => $size,
                         chunk_size => $chunk,
                         total_chunk_count => $count } });
    my $j = curl($ngx, path => '/v2/post/publish/video/init/',
                 method => 'POST', bearer => token('video.publish'),
                 ctype => 'application/json; charset=UTF-8', body => $body);
    my $d = eval { decode_json($j->{body}) } || {};
    return ($j, $d->{data} || {});
}

{
    # the video sits between other bytes in its spool file
    my $video = $MP4 . random_bytes(2_000_000 - length $MP4);
    my $file = "$dir/one.spool";
    open my $fh, '>:raw', $file or die $!;
    print $fh random_bytes(4096), $video, random_bytes(1000);
    close $fh;

    my ($j, $d) = init_upload(2_000_000, 2_000_000, 1);
    is("$j->{rc} $j->{status}", 'OK 200', 'init FILE_UPLOAD through libcurl');
    like($d->{upload_url}, qr{^https://127\.0\.0\.1:\d+/upload/\?},
         '... an upload_url');

    $j = curl($ngx, url => $d->{upload_url}, method => 'PUT',
              ctype => 'video/mp4', file => $file, offset => 4096,
              length => 2_000_000, range => 'bytes 0-1999999/2000000',
              timeout => 30000);
    is("$j->{rc} $j->{status}", 'OK 201', 'PUT of the file region: 201');

    my $up = $sb->upload($d->{publish_id});
    is($up->{bytes}, 2_000_000, '... the sandbox received 2000000 bytes');
    is($up->{sha256}, sha256_hex($video), '... exactly the region');
    ok($up->{complete}, '... the upload is complete');
    is_deeply([ map { $_->{range} } @{ $up->{ranges} } ],
              ['bytes 0-1999999/2000000'], '... with its Content-Range');
    is_deeply($up->{content_types}, ['video/mp4'], '... and Content-Type');
    my $req = $sb->requests('/upload/', 1)->[0];
    is($req->{method}, 'PUT', '... a PUT');
    is($req->{headers}{'content-length'}, '2000000', '... Content-Length');
    ok(!exists $req->{headers}{expect}, '... no Expect: 100-continue');
    ok(!exists $req->{headers}{authorization}, '... and no token');

    $j = curl($ngx, url => $d->{upload_url}, method => 'PUT',
              ctype => 'video/mp4', file => $file, offset => 4096,
              length => 2_000_000, range => 'bytes 0-1999999/2000000');
    is("$j->{rc} $j->{status}", 'OK 416',
       'the same chunk again: 416 is an answer');
}

{
    # two chunks: 5242880 bytes, then the remainder
    my $size = 11_000_000;
    my $chunk = 5_242_880;
    my $video = $MP4 . random_bytes($size - length $MP4);
    my $file = "$dir/two.spool";
    open my $fh, '>:raw', $file or die $!;
    print $fh 'x' x 777, $video;
    close $fh;

    my ($j, $d) = init_upload($size, $chunk, 2);
    is("$j->{rc} $j->{status}", 'OK 200', 'init of a two-chunk upload');

    my @st;
    for my $c ([0, $chunk], [$chunk, $size - $chunk]) {
        my ($first, $len) = @$c;
        my $last = $first + $len - 1;
        $j = curl($ngx, url => $d->{upload_url}, method => 'PUT',
                  ctype => 'video/mp4', file => $file,
                  offset => 777 + $first, length => $len,
                  range => "bytes $first-$last/$size", timeout => 30000);
        push @st, "$j->{rc} $j->{status}";
    }
    is_deeply(\@st, ['OK 206', 'OK 201'], 'two chunks: 206, then 201');
    my $up = $sb->upload($d->{publish_id});
    is($up->{sha256}, sha256_hex($video), '... the whole video arrived');
    is_deeply([ map { $_->{content_range} } @{ $sb->requests('/upload/', 2) } ],
              ["bytes 0-5242879/$size", "bytes 5242880-10999999/$size"],
              '... the recorded Content-Range of each chunk');
    my @conn = map { $_->{conn} } @{ $sb->requests('/upload/', 2) };
    is($conn[0], $conn[1], '... both on one kept-alive connection');
}

clean_log($ngx, 'GET, POST, PUT');

# 5. keep-alive: the multi handle's connection cache
{
    curl($ngx, path => $INFO, bearer => $tok) for 1 .. 2;
    my @r = @{ $sb->requests('/v2/user/info/', 2) };
    is($r[0]{conn}, $r[1]{conn}, 'two calls in a row share one connection');

    curl($ngx, path => $INFO, bearer => $tok, fresh => 1);
    my $f = $sb->requests('/v2/user/info/', 1)->[0];
    isnt($f->{conn}, $r[1]{conn}, '... unless a fresh one is asked for');
}

# 6. timeout: nothing comes back in time
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 3000 });
    my $j = curl($ngx, path => $INFO, bearer => $tok, timeout => 1000);
    is($j->{rc}, 'ERROR', 'a delayed answer after the timeout: rc ERROR');
    is($j->{status}, 0, '... no status');
    ok($j->{timed_out}, '... timed_out');
    like($j->{error}, qr/timed out/i, '... error says so');
    cmp_ok($j->{elapsed_ms}, '>=', 950, "... after the timeout"
           . " ($j->{elapsed_ms} ms)");
    cmp_ok($j->{elapsed_ms}, '<', 1000 + 500 * $SLOW, '... not much later');
    cmp_ok($j->{wall}, '<', 1.5 * $SLOW, '... and the client got it then');
    sleep 2.2;      # the sandbox's delayed answer goes nowhere
}

# 7. dropped connection (twice: libcurl retries once on a fresh connection
#    when a reused one dies before answering)
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'drop', count => 2 });
    my $j = curl($ngx, path => $INFO, bearer => $tok);
    is($j->{rc}, 'ERROR', 'a dropped connection: rc ERROR');
    is($j->{status}, 0, '... no status');
    like($j->{error}, qr/empty reply|closed|recv|reset|nothing/i,
         "... error: $j->{error}");
    $sb->clear_faults;
}

# 8. 5xx and 429 are answers
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'status',
                 status => 503 });
    my $j = curl($ngx, path => $INFO, bearer => $tok);
    is("$j->{rc} $j->{status}", 'OK 503', 'a 503: rc OK with the status');
    like($j->{body}, qr/internal_error/, '... and its body');

    $sb->fault({ endpoint => '/v2/user/info/', type => 'rate_limit',
                 retry_after => 17 });
    $j = curl($ngx, path => $INFO, bearer => $tok);
    is("$j->{rc} $j->{status}", 'OK 429', 'a 429: rc OK');
    is($j->{retry_after}, '17', '... Retry-After kept');

    $j = curl($ngx, path => $INFO, bearer => $tok);
    is($j->{retry_after}, '', '... and not carried over to the next call');
}

# 9. the response cap
{
    my $j = curl($ngx, path => $INFO, bearer => $tok);
    my $len = $j->{bytes};
    $j = curl($ngx, path => $INFO, bearer => $tok, max => $len);
    is("$j->{rc} $j->{bytes}", "OK $len", "an answer of exactly max: kept");
    $j = curl($ngx, path => $INFO, bearer => $tok, max => $len - 1);
    is($j->{rc}, 'ERROR', 'one byte above max: rc ERROR');
    ok($j->{too_large}, '... too_large');
    is($j->{bytes}, 0, '... nothing kept');
    like($j->{error}, qr/larger than the limit/, "... error: $j->{error}");
}

# 10. bad requests never start
{
    my $j = curl($ngx, url => 'http://localhost:' . $sb->port . '/',
                 timeout => 2000);
    is($j->{rc}, 'ERROR', 'plain http: refused');
    like($j->{error}, qr/protocol|not supported|disabled/i,
         "... error: $j->{error}");
    my $r = $ngx->request(GET => '/curl?' . query(path => $INFO,
                                                   method => 'PATCH'));
    is($r->{status}, 500, 'an unsupported method is not started');
    $r = $ngx->request(GET => '/curl?' . query(path => $INFO,
                                                bearer => "a\r\nX-Evil: 1"));
    is($r->{status}, 500, 'a header value with CRLF is not started');
}

clean_log($ngx, 'faults');

# 11. nothing blocks: 5 slow calls in flight, a plain location still fast
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 2000,
                 count => 0 });
    my $t0 = time;
    my @waiting = map { send_raw($ngx, path => $INFO, bearer => $tok,
                                 timeout => 10000) } 1 .. 5;
    sleep 0.3;

    my @times;
    for (1 .. 5) {
        my $t = time;
        my $r = $ngx->request(GET => '/plain');
        push @times, time - $t;
        is($r->{status}, 200, 'plain location answers while 5 calls wait');
    }
    my ($max) = sort { $b <=> $a } @times;
    cmp_ok($max, '<', 0.1, sprintf('... within 100 ms (slowest %.1f ms)',
                                   $max * 1000));

    my @j = map { read_raw($_) } @waiting;
    my $wall = time - $t0;
    is(scalar(grep { ($_->{rc} // '') eq 'OK' && $_->{status} == 200 } @j),
       5, 'the 5 slow calls all succeed');
    cmp_ok($wall, '<', 3.5 * $SLOW,
           sprintf('... together in about the delay (%.2f s)', $wall));

    # 12. 50 at once on one worker: about the delay, not 50 times it
    $t0 = time;
    my @many = map { send_raw($ngx, path => $INFO, bearer => $tok,
                              timeout => 20000) } 1 .. 50;
    my @m = map { read_raw($_) } @many;
    $wall = time - $t0;
    is(scalar(grep { ($_->{rc} // '') eq 'OK' && $_->{status} == 200 } @m),
       50, '50 concurrent delayed calls all succeed');
    cmp_ok($wall, '<', 5 * $SLOW,
           sprintf('... in about the delay: %.2f s for 50 x 2 s', $wall));
    my %conns = map { $_->{conn} => 1 }
                @{ $sb->requests('/v2/user/info/', 50) };
    cmp_ok(scalar(keys %conns), '>', 25, '... on parallel connections');
    $sb->clear_faults;
}

clean_log($ngx, 'concurrency');

# 13. cancel: the handler never runs, nothing stays in flight
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 1500 });
    my $t0 = time;
    my $r = $ngx->request(GET => '/curl?' . query(path => $INFO,
                          bearer => $tok, cancel => 300));
    my $j = eval { decode_json($r->{content}) } || {};
    ok($j->{cancelled}, 'cancelled after 300 ms');
    is($j->{active}, 0, '... nothing in flight');
    cmp_ok(time - $t0, '<', 1.0, '... at once');
    sleep 1.5;
    $j = curl($ngx, path => $INFO, bearer => $tok);
    is("$j->{rc} $j->{active}", 'OK 0', '... and the loop goes on');
}

# 14. the client goes away: the request's pool cleanup cancels
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 1500 });
    my $s = send_raw($ngx, path => $INFO, bearer => $tok);
    sleep 0.3;
    close $s;
    sleep 0.3;
    my $j = curl($ngx, path => $INFO, bearer => $tok);
    is("$j->{rc} $j->{active}", 'OK 0',
       'a client that went away left nothing in flight');
    like($ngx->access_log, qr{GET /curl\?\S+ HTTP/1\.0" 499 },
         '... its request ended with 499');
    sleep 1.2;
}

# 15. detached: answered at once, finished in the background
{
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 800 });
    my $t0 = time;
    my $r = $ngx->request(GET => '/curl?' . query(path => $INFO,
                          bearer => $tok, detach => 1, id => 'bg-1'));
    is($r->{status}, 202, 'detached: 202');
    cmp_ok(time - $t0, '<', 0.5, '... at once');
    my $seen;
    for (1 .. 60) {
        last if ($seen) = $ngx->error_log =~ /(tiktok curl test \[bg-1\]: .*)/;
        sleep 0.1;
    }
    like($seen // '', qr/rc=OK status=200 bytes=\d+ sha256=[0-9a-f]{64} /,
         '... its outcome logged when done');
}

clean_log($ngx, 'cancel and detach');

# every socket's nginx connection was given back: a gracefully exiting
# worker reports any connection still open
$ngx->stop;
unlike($ngx->error_log, qr/open socket|\[alert\]/,
       'after all that, the worker exits with no connection left open');
like($ngx->error_log, qr/worker process \d+ exited with code 0/,
     '... and exit code 0');

# 16. TLS: the sandbox's certificate against another CA, and against the
#     system trust store
{
    my $wrong = TikTokSandbox::make_ca("$TikTokTest::Tmp/wrong-ca")->{ca};
    (my $http = $TikTokTest::HttpConfig)
        =~ s/tiktok_ca_certificate\s+\S+;/tiktok_ca_certificate $wrong;/;
    my $bad = nginx(name => 'curl-wrong-ca', http => $http);
    my $before = calls('/v2/user/info/');
    my $j = curl($bad, path => $INFO, bearer => $tok);
    is("$j->{rc} $j->{status}", 'ERROR 0', 'another CA: rc ERROR');
    like($j->{error}, qr/certificate|SSL/i, "... error: $j->{error}");
    is(calls('/v2/user/info/'), $before, '... nothing reached the API');
    clean_log($bad, 'wrong CA');
    $bad->stop;

    ($http = $TikTokTest::HttpConfig) =~ s/tiktok_ca_certificate\s+\S+;//;
    $bad = nginx(name => 'curl-system-ca', http => $http);
    $j = curl($bad, path => $INFO, bearer => $tok);
    is("$j->{rc} $j->{status}", 'ERROR 0', 'the system trust store: ERROR');
    like($j->{error}, qr/certificate|SSL/i, "... error: $j->{error}");
    is(calls('/v2/user/info/'), $before, '... nothing reached the API');
    clean_log($bad, 'system CA');
    $bad->stop;
}

# 17. no token in the logs, even at debug level
{
    my $dbg = nginx(name => 'curl-debug', log_level => 'debug');
    my $secret = token('video.publish');
    my $j = curl($dbg, path => '/v2/post/publish/creator_info/query/',
                 method => 'POST', bearer => $secret);
    is("$j->{rc} $j->{status}", 'OK 200', 'debug log: a call with a token');

    my ($i, $d) = do {
        my $body = encode_json({
            post_info => { privacy_level => 'SELF_ONLY', title => 'x',
                           brand_content_toggle => JSON::PP::false },
            source_info => { source => 'FILE_UPLOAD', video_size => 1000,
                             chunk_size => 1000, total_chunk_count => 1 } });
        my $r = curl($dbg, path => '/v2/post/publish/video/init/',
                     method => 'POST', bearer => $secret,
                     ctype => 'application/json; charset=UTF-8',
                     body => $body);
        ($r, (eval { decode_json($r->{body}) } || {})->{data} || {});
    };
    my ($upload_token) = ($d->{upload_url} // '') =~ /upload_token=([^&]+)/;
    ok($upload_token, '... an upload URL with its token');
    open my $fh, '>:raw', "$dir/small.spool" or die $!;
    print $fh $MP4, 'v' x (1000 - length $MP4);
    close $fh;
    $sb->fault({ endpoint => '/upload/', type => 'delay', ms => 2000 });
    $j = curl($dbg, url => $d->{upload_url}, method => 'PUT',
              ctype => 'video/mp4', file => "$dir/small.spool",
              length => 1000, range => 'bytes 0-999/1000', timeout => 500);
    is($j->{rc}, 'ERROR', '... a failing upload');
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 1000 });
    $j = curl($dbg, path => $INFO, bearer => $secret, timeout => 300);
    is($j->{rc}, 'ERROR', '... a failing call with the token');

    my $log = $dbg->error_log;
    like($log, qr/tiktok curl \[-\]: start POST/,
         'the debug log has our lines');
    like($log,
         qr{tiktok curl \[-\]: PUT https://127\.0\.0\.1:\d+/upload/ failed},
         '... a failure names the URL without its query');
    ok(index($log, $secret) < 0, '... but never the token');
    ok(index($log, $upload_token) < 0, '... nor the upload token');
    clean_log($dbg, 'debug');
    sleep 2;
    $dbg->stop;
    $sb->clear_faults;
}

# 18. shutdown: a graceful exit lets quick calls finish, aborts slow ones.
#     Timed until the worker is gone (the master then exits at once; when
#     this container's init reaps it is no concern of ours).
sub gone {
    my ($pid) = @_;
    return 1 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $stat = <$fh> // '';
    return $stat =~ /^\d+ \(.*\) Z /;
}

sub stop_timed {
    my ($ngx, $sig) = @_;
    my $pid = $ngx->pid;
    my @workers = $ngx->error_log =~ /start worker process (\d+)/g;
    my $t0 = time;
    my $took;
    kill $sig, $pid;
    while (time - $t0 < 15) {
        $took //= time - $t0 unless grep { !gone($_) } @workers;
        last if defined $took && gone($pid);
        sleep 0.01;
    }
    $ngx->{running} = 0;
    return $took // 15;
}

{
    my $q = nginx(name => 'curl-quit-quick');
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 1000 });
    my $r = $q->request(GET => '/curl?' . query(path => $INFO,
                        bearer => $tok, detach => 1, id => 'quick'));
    is($r->{status}, 202, 'QUIT with a quick call in flight');
    sleep 0.2;
    my $took = stop_timed($q, 'QUIT');
    cmp_ok($took, '<', 2 * $SLOW, sprintf('... nginx exits in %.2f s', $took));
    like($q->error_log, qr/tiktok curl test \[quick\]: rc=OK status=200/,
         '... after the call finished');
    clean_log($q, 'QUIT, quick');
    unlike($q->error_log, qr/open socket/, '... no socket left open');

    $q = nginx(name => 'curl-quit-slow');
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay',
                 ms => 10000, count => 0 });
    $r = $q->request(GET => '/curl?' . query(path => $INFO, bearer => $tok,
                     detach => 1, id => 'slow', timeout => 30000));
    my $waiting = send_raw($q, path => $INFO, bearer => $tok,
                           timeout => 30000);
    sleep 0.3;
    $took = stop_timed($q, 'QUIT');
    cmp_ok($took, '<', 4 * $SLOW,
           sprintf('QUIT with slow calls in flight: exits in %.2f s', $took));
    cmp_ok($took, '>', 1.5, '... after the grace period');
    like($q->error_log,
         qr/tiktok curl test \[slow\]: rc=ERROR status=0 .* aborted=1/,
         '... the detached call was aborted');
    my $j = read_raw($waiting);
    is("$j->{rc} $j->{aborted}", 'ERROR 1',
       '... the waiting client got its answer: aborted');
    clean_log($q, 'QUIT, slow');
    unlike($q->error_log, qr/open socket/, '... no socket left open');

    # worker_shutdown_timeout closes our connections as well
    $q = nginx(name => 'curl-shutdown-timeout',
               main => "worker_shutdown_timeout 500ms;\n");
    $waiting = send_raw($q, path => $INFO, bearer => $tok, timeout => 30000);
    sleep 0.3;
    $took = stop_timed($q, 'QUIT');
    cmp_ok($took, '<', 1.5 * $SLOW,
           sprintf('worker_shutdown_timeout 500ms: exits in %.2f s', $took));
    clean_log($q, 'worker_shutdown_timeout');
    unlike($q->error_log, qr/open socket/, '... no socket left open');
    close $waiting;

    # fast shutdown
    $q = nginx(name => 'curl-term');
    $waiting = send_raw($q, path => $INFO, bearer => $tok, timeout => 30000);
    $q->request(GET => '/curl?' . query(path => $INFO, bearer => $tok,
                detach => 1, id => 'term', timeout => 30000));
    sleep 0.3;
    $took = stop_timed($q, 'TERM');
    cmp_ok($took, '<', 1 * $SLOW, sprintf('TERM: exits in %.2f s', $took));
    like($q->error_log, qr/tiktok curl test \[term\]: rc=ERROR .* aborted=1/,
         '... the call aborted at exit');
    clean_log($q, 'TERM');
    unlike($q->error_log, qr/exited on signal/, '... no crash');
    close $waiting;

    $sb->clear_faults;
}

done_testing();
