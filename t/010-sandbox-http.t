# The TikTok sandbox itself: process life cycle, TLS against the generated CA,
# HTTP/1.1 framing and keep-alive, envelopes on unknown paths, logging, and
# many concurrent delayed requests served concurrently.

use strict;
use warnings;

use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time);

use TikTokSandbox;

my $dir = tempdir('sbx-http-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $secret = 'sbx-secret-do-not-log-0123456789';
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_http',
                              client_secret => $secret);
END { $sb->stop if $sb }

my $port = $sb->port;

subtest 'ready file and health' => sub {
    open my $fh, '<', "$dir/sandbox.ready" or die $!;
    my $ready = decode_json(scalar <$fh>);
    is $ready->{port}, $port, 'ready file: port';
    is $ready->{control_port}, $sb->control_port, 'ready file: control_port';
    is $ready->{pid}, $sb->pid, 'ready file: pid of the sandbox';
    ok !(my @tmp = glob("$dir/sandbox.ready.tmp.*")), 'no temporary file left';
    my $h = $sb->health;
    ok $h->{ok}, 'GET /health';
    is $h->{port}, $port, 'health names the API port';
};

subtest 'the generated CA' => sub {
    my $text = `openssl x509 -in $dir/server.pem -noout -text`;
    like $text, qr/DNS:localhost/, 'SAN DNS:localhost';
    like $text, qr/IP Address:127\.0\.0\.1/, 'SAN IP:127.0.0.1';
    my $v = `openssl verify -CAfile $dir/ca.pem $dir/server.pem 2>&1`;
    like $v, qr/: OK/, 'server certificate chains to the CA';
};

subtest 'TLS verification' => sub {
    my $res = $sb->api(GET => '/v2/user/info/?fields=open_id');
    is $res->{status}, 401, 'verified against the CA (localhost)';

    $res = $sb->api(GET => "https://127.0.0.1:$port/v2/user/info/?fields=open_id");
    is $res->{status}, 401, 'verified against the CA (127.0.0.1, the upload host)';

    my $untrusting = HTTP::Tiny->new(verify_SSL => 1, timeout => 10);
    $res = $untrusting->get("https://localhost:$port/v2/user/info/");
    is $res->{status}, 599, 'without the CA the handshake fails';
    like $res->{content}, qr/certificate|SSL/i, '... on the certificate';

    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port,
        SSL_hostname => 'www.tiktok.com',
        SSL_verifycn_name => 'www.tiktok.com', SSL_verifycn_scheme => 'http',
        SSL_ca_file => $sb->ca_file, SSL_verify_mode => 1);
    ok !$sock, 'a name not in the certificate is refused';
};

subtest 'envelope on an unknown path' => sub {
    my $res = $sb->api(GET => '/v2/no/such/thing/');
    is $res->{status}, 404, 'HTTP 404';
    is $res->{headers}{'content-type'}, 'application/json; charset=UTF-8',
        'Content-Type';
    is $res->{headers}{'content-length'}, length $res->{content},
        'Content-Length';
    is $res->{json}{error}{code}, 'not_found', 'error.code';
    is_deeply $res->{json}{data}, {}, 'data is {}';
    like $res->{json}{error}{log_id}, qr/^\d{14}[0-9A-F]{20}$/, 'log_id';
    is $res->{headers}{'x-tt-logid'}, $res->{json}{error}{log_id},
        'X-Tt-Logid header carries the same log_id';

    my $again = $sb->api(GET => '/v2/no/such/thing/');
    isnt $again->{json}{error}{log_id}, $res->{json}{error}{log_id},
        'a fresh log_id per response';

    $res = $sb->api(DELETE => '/v2/user/info/');
    is $res->{status}, 405, 'a known path with the wrong method: 405';
    is $res->{headers}{allow}, 'GET', 'Allow';
};

subtest 'keep-alive: two requests on one connection' => sub {
    my $s = $sb->tls_connect;
    for my $i (1, 2) {
        print $s "GET /v2/user/info/?fields=open_id HTTP/1.1\r\n"
               . "Host: localhost\r\n\r\n";
        my $r = TikTokSandbox::read_response($s);
        is $r->{status}, 401, "request $i answered";
        ok !defined $r->{headers}{connection}, '... connection kept';
    }

    # pipelined: both requests written before reading
    print $s "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n"
           . "GET /b HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my @r = map { TikTokSandbox::read_response($s) } 1, 2;
    is_deeply [map { $_->{status} } @r], [404, 404], 'pipelined requests';
    like $r[0]{body}, qr{/a}, '... answered in order (1)';
    like $r[1]{body}, qr{/b}, '... answered in order (2)';

    my $reqs = $sb->requests('/b', 1);
    my $reqa = $sb->requests('/a', 1);
    is $reqs->[0]{conn}, $reqa->[0]{conn}, 'the sandbox saw one connection';

    # HTTP::Tiny reuses its connection too
    $sb->api(GET => '/c1');
    $sb->api(GET => '/c2');
    is $sb->requests('/c1', 1)->[0]{conn}, $sb->requests('/c2', 1)->[0]{conn},
        'HTTP::Tiny keep-alive reuses the connection';
};

subtest 'HTTP/1.0 and Connection: close' => sub {
    my $s = $sb->tls_connect;
    print $s "GET /x HTTP/1.0\r\n\r\n";
    my $r = TikTokSandbox::read_response($s);
    is $r->{status}, 404, 'HTTP/1.0 answered';
    is $r->{headers}{connection}, 'close', '... Connection: close';
    is TikTokSandbox::read_response($s), undef, '... and closed';

    $s = $sb->tls_connect;
    print $s "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    $r = TikTokSandbox::read_response($s);
    is $r->{headers}{connection}, 'keep-alive', 'HTTP/1.0 keep-alive honoured';
    print $s "GET /y HTTP/1.0\r\n\r\n";
    is TikTokSandbox::read_response($s)->{status}, 404, '... second request';

    $s = $sb->tls_connect;
    print $s "GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    $r = TikTokSandbox::read_response($s);
    is $r->{headers}{connection}, 'close', 'HTTP/1.1 Connection: close';
    is TikTokSandbox::read_response($s), undef, '... and closed';

    $s = $sb->tls_connect;
    print $s "GET /x HTTP/1.1\r\n\r\n";
    is TikTokSandbox::read_response($s)->{status}, 400,
        'HTTP/1.1 without Host: 400';
};

subtest 'request bodies: chunked and Expect: 100-continue' => sub {
    my $tok = $sb->mint_tokens({ scope => 'video.list' })->{access_token};
    my $s = $sb->tls_connect;
    my $json = '{"max_count":3}';
    print $s "POST /v2/video/list/?fields=id HTTP/1.1\r\nHost: localhost\r\n"
           . "Authorization: Bearer $tok\r\n"
           . "Content-Type: application/json\r\n"
           . "Transfer-Encoding: chunked\r\n\r\n"
           . sprintf('%x', 5) . "\r\n" . substr($json, 0, 5) . "\r\n"
           . sprintf('%x', length($json) - 5) . ";ext=1\r\n"
           . substr($json, 5) . "\r\n0\r\n\r\n";
    my $r = TikTokSandbox::read_response($s);
    is $r->{status}, 200, 'chunked body accepted';
    is scalar @{ decode_json($r->{body})->{data}{videos} }, 3,
        '... and parsed (max_count 3)';

    print $s "POST /v2/video/list/?fields=id HTTP/1.1\r\nHost: localhost\r\n"
           . "Authorization: Bearer $tok\r\nContent-Length: 15\r\n"
           . "Expect: 100-continue\r\n\r\n";
    my $cont = '';
    sysread($s, $cont, 25);
    is $cont, "HTTP/1.1 100 Continue\r\n\r\n", '100 Continue first';
    print $s $json;
    $r = TikTokSandbox::read_response($s);
    is $r->{status}, 200, '... then the answer';
};

subtest '200 concurrent delayed requests' => sub {
    my $n = 200;
    my $tok = $sb->mint_tokens->{access_token};
    $sb->fault({ endpoint => '/v2/user/info/', type => 'delay', ms => 1000,
                 count => $n });
    my @socks = map { $sb->tls_connect } 1 .. $n;
    my $t0 = time;
    for my $s (@socks) {
        print $s "GET /v2/user/info/?fields=open_id HTTP/1.1\r\n"
               . "Host: localhost\r\nAuthorization: Bearer $tok\r\n\r\n";
    }
    my $ok = grep { TikTokSandbox::read_response($_)->{status} == 200 } @socks;
    my $took = time - $t0;
    is $ok, $n, "all $n answered 200";
    cmp_ok $took, '>=', 0.95, 'each was delayed';
    cmp_ok $took, '<', 5, sprintf('... concurrently (%.2fs, not %ds)',
                                  $took, $n);
    is_deeply $sb->control(GET => '/faults')->{faults}, [],
        'the fault was used up';
};

subtest 'log lines carry no secrets' => sub {
    my $a = $sb->authorize;
    my $t = $sb->token(grant_type => 'authorization_code',
                       code => $a->{params}{code},
                       redirect_uri => ($sb->redirect_uris)[0]);
    is $t->{status}, 200, 'a token exchange to log';
    my $log = do { local (@ARGV, $/) = $sb->log_file; <> };
    like $log, qr{POST /v2/oauth/token/ -> 200}, 'one line per request';
    unlike $log, qr/\Q$secret\E/, 'client_secret not logged';
    unlike $log, qr/\Q$t->{json}{access_token}\E/, 'access token not logged';
    unlike $log, qr/\Q$t->{json}{refresh_token}\E/, 'refresh token not logged';
    unlike $log, qr/\Q$a->{params}{code}\E/, 'authorization code not logged';
    unlike $log, qr/ERROR/, 'no sandbox errors';
};

subtest 'SIGTERM: clean exit' => sub {
    my $pid = $sb->pid;
    $sb->stop;
    is $sb->exit_status, 0, 'exit status 0';
    ok !kill(0, $pid), 'process gone';
};

done_testing;
