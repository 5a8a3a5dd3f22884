# Self-test of the in-repo Test::Nginx runner (t/runner), with stock nginx
# features only.  The blocks below must pass; after them, fixture files in
# t/runner/selftest/ are run in child perl processes to show that the
# runner's checks fail when they should, that it stops nginx when a test
# dies, and that the other plan forms and settings work.

# This file tests the in-repo runner, not the module: its fixtures run with
# -It/runner and it calls that runner's Test::Nginx::Util internals.  With
# the real Test::Nginx first on the include path there is nothing to test.
BEGIN {
    use Cwd ();
    use File::Basename ();

    my $ours = Cwd::abs_path(File::Basename::dirname(__FILE__)
                             . '/runner/Test/Nginx/Socket.pm');
    my ($found) = grep { -f } map { ref $_ ? () : "$_/Test/Nginx/Socket.pm" }
                  @INC;
    my $real = defined $found ? Cwd::abs_path($found) : undef;

    if (!defined $real || !defined $ours || $real ne $ours) {
        require Test::More;
        Test::More::plan(skip_all => 'tests the in-repo runner (t/runner); '
            . 'Test::Nginx::Socket here is ' . ($found // 'not installed'));
    }
}

use Test::Nginx::Socket 'no_plan';
use File::Temp qw( tempdir );
use File::Spec ();
use BlockSections qw(hello_location);

repeat_each(2);

# a section of this file's own, read by a preprocessor (declared above)
add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->hello_location) {
        my $text = $block->hello_location;
        chomp $text;
        $block->set_value("config", <<_EOC_);
    location = /hello { return 200 "$text\\n"; }
_EOC_
    }
});

run_tests();

selftest_fixtures();

# ---------------------------------------------------------------------------

sub run_fixture {
    my ($fixture, %env) = @_;

    my $out = File::Temp->new;
    my $err = File::Temp->new;

    my $pid = fork();
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        delete @ENV{qw(TEST_NGINX_PORT TEST_NGINX_SERVER_PORT TEST_NGINX_CLIENT_PORT
                       TEST_NGINX_SERVER_ROOT TEST_NGINX_NO_CLEAN TEST_NGINX_RANDOMIZE
                       HARNESS_ACTIVE HARNESS_VERSION TAP_VERSION)};
        @ENV{keys %env} = values %env;
        open STDOUT, '>', $out->filename or die;
        open STDERR, '>', $err->filename or die;
        exec $^X, '-It/lib', '-It/runner', "t/runner/selftest/$fixture";
        die "exec: $!";
    }
    waitpid($pid, 0);
    my $status = $? >> 8;

    local $/;
    open my $o, '<', $out->filename or die;
    open my $e, '<', $err->filename or die;
    return ($status, scalar <$o>, scalar <$e>);
}

sub listen_port_of {
    my $servroot = shift;
    open my $in, '<', "$servroot/conf/nginx.conf" or return undef;
    local $/;
    my $conf = <$in>;
    return $conf =~ /listen\s+127\.0\.0\.1:(\d+)/ ? $1 : undef;
}

sub nothing_left_running {
    my ($servroot, $what) = @_;
    my $port = listen_port_of($servroot);
    ok(defined $port, "$what: nginx.conf written");
    ok(!Test::Nginx::Util::is_tcp_port_used($port), "$what: nothing listens on port "
                                                   . ($port // '?') . " any more");
    my $pid;
    if (open my $in, '<', "$servroot/logs/nginx.pid") {
        $pid = <$in>;
    }
    ok(!($pid && Test::Nginx::Util::is_running($pid =~ s/\s+//gr)),
       "$what: no nginx process left");
}

sub selftest_fixtures {
    my $tmp = tempdir('runner-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);

    # 1. everything wrong in fail.t.in must be reported as a failure
    {
        my $sr = "$tmp/fail";
        my ($status, $out, $err) = run_fixture('fail.t.in', TEST_NGINX_SERVROOT => $sr);
        my $f = 't/runner/selftest/fail.t.in';

        isnt($status, 0, "fail.t.in: the child exits with failure");

        my @expect_fail = (
            qr/TEST 1: wrong status - status code ok/,
            qr/TEST 2: wrong body - response_body - response is expected/,
            qr/TEST 3: missing error_log line - pattern "this line never appears in the log" should match a line in error\.log/,
            qr/TEST 4: unexpected no_error_log hit - pattern "\[error\]" should not match any line in error\.log/,
            qr/TEST 5: must_die on a valid config - die as expected/,
            qr/TEST 6: wrong and unexpected headers - header X-Foo ok/,
            qr/TEST 6: wrong and unexpected headers - header X-Bar not present/,
            qr/TEST 7: response_body_like mismatch - response_body_like/,
            qr/ERROR: client socket timed out - \S+ TEST 8: client timeout without abort/,
            qr/TEST 9: grep_error_log_out mismatch - grep_error_log_out/,
            qr/TEST 10: unsupported section - .*not supported/,
            qr/TEST 11: env var in request line - .*TEST_NGINX_SERVER_PORT/,
            qr/TEST 12: nginx fails to start - Cannot start nginx/,
            qr/TEST 13: explicit error_code mismatch - status code ok/,
            qr/TEST 14: nginx dies during the block - Can't connect .*is not running/,
            qr/TEST 14: nginx dies during the block - nginx \(pid \d+\) is not running any more/,
        );
        for my $re (@expect_fail) {
            like($out, qr/^not ok \d+ - .*$re/m, "fail.t.in reports failure: $re");
        }

        my @expect_ok = (
            qr/TEST 1: wrong status - response_body - response is expected/,
            qr/TEST 2: wrong body - status code ok/,
            qr/TEST 15: still runs after failures - status code ok/,
            qr/TEST 15: still runs after failures - response_body - response is expected/,
        );
        for my $re (@expect_ok) {
            like($out, qr/^ok \d+ - .*$re/m, "fail.t.in passes the right checks: $re");
        }

        like($err, qr/^# -there\n# \+world$/m, "fail.t.in: body mismatch shows a diff");
        like($err, qr/unknown directive "unknown_directive_y"/,
             "fail.t.in: nginx's startup error is shown");
        unlike($out, qr/^not ok \d+ - .*TEST 15/m, "fail.t.in: the good block passes");

        nothing_left_running($sr, 'fail.t.in');
    }

    # 2. the same failures under prove: it must report the file as failed
    {
        my $sr = "$tmp/prove";
        my $pid = fork();
        die "fork: $!" if !defined $pid;
        if ($pid == 0) {
            delete @ENV{qw(TEST_NGINX_PORT TEST_NGINX_SERVER_PORT TEST_NGINX_CLIENT_PORT
                           TEST_NGINX_SERVER_ROOT HARNESS_ACTIVE HARNESS_VERSION
                           TAP_VERSION)};
            $ENV{TEST_NGINX_SERVROOT} = $sr;
            open STDOUT, '>', '/dev/null';
            open STDERR, '>', '/dev/null';
            exec 'prove', '-It/lib', '-It/runner', 't/runner/selftest/fail.t.in';
            die "exec: $!";
        }
        waitpid($pid, 0);
        isnt($? >> 8, 0, "prove reports fail.t.in as failed");
        nothing_left_running($sr, 'prove fail.t.in');
    }

    # 3. non-default settings and the "plan tests =>" form pass
    {
        my $sr = "$tmp/pass";
        my ($status, $out, $err) = run_fixture('pass.t.in', TEST_NGINX_SERVROOT => $sr);
        is($status, 0, "pass.t.in passes") or diag($out, $err);
        like($out, qr/^1\.\.8$/m, "pass.t.in: plan of 8 tests");
        unlike($out, qr/^not ok/m, "pass.t.in: no failing test");

        open my $in, '<', "$sr/conf/nginx.conf" or die "$sr/conf/nginx.conf: $!";
        my $conf = do { local $/; <$in> };
        like($conf, qr/^master_process on;$/m, "master_on() is in nginx.conf");
        like($conf, qr/^worker_processes\s+2;$/m, "workers(2) is in nginx.conf");
        like($conf, qr/^error_log \S+ info;$/m, "log_level('info') is in nginx.conf");
        like($conf, qr/^\s*worker_connections\s+256;$/m,
             "worker_connections(256) is in nginx.conf");
        like($conf, qr/^env RUNNER_SELFTEST=1;$/m, "env_to_nginx() is in nginx.conf");
        unlike($conf, qr/location \/ \{/, "no_root_location() drops location /");

        nothing_left_running($sr, 'pass.t.in (master + 2 workers)');
    }

    # 4. "use Test::Nginx::Socket tests => 3", an explicit TEST_NGINX_PORT,
    #    and TEST_NGINX_NO_CLEAN leaving nginx running for the next run to stop
    {
        my $sr = "$tmp/plan";
        my $port = Test::Nginx::Util::gen_rand_port(1000, { server_port() => 1 });
        my ($status, $out, $err) = run_fixture('plan.t.in', TEST_NGINX_SERVROOT => $sr,
                                               TEST_NGINX_PORT => $port,
                                               TEST_NGINX_NO_CLEAN => 1);
        is($status, 0, "plan.t.in passes") or diag($out, $err);
        like($out, qr/^1\.\.3$/m, "plan.t.in: plan of 3 tests");
        is(listen_port_of($sr), $port, "TEST_NGINX_PORT is the port nginx listens on");
        ok(Test::Nginx::Util::is_tcp_port_used($port),
           "TEST_NGINX_NO_CLEAN leaves nginx running");

        ($status, $out, $err) = run_fixture('plan.t.in', TEST_NGINX_SERVROOT => $sr);
        is($status, 0, "plan.t.in passes again") or diag($out, $err);
        ok(!Test::Nginx::Util::is_tcp_port_used($port),
           "the next run stopped the nginx left running on port $port");
        nothing_left_running($sr, 'plan.t.in');
    }

    # 5. the test script dies while nginx runs: END still stops nginx
    {
        my $sr = "$tmp/die";
        my ($status, $out, $err) = run_fixture('die.t.in', TEST_NGINX_SERVROOT => $sr);
        isnt($status, 0, "die.t.in: the child fails");
        like($err, qr/deliberate death in a block preprocessor/, "die.t.in: it died");
        like($out, qr/^ok \d+ - .*TEST 1: starts nginx - response_body/m,
             "die.t.in: the first block ran");
        nothing_left_running($sr, 'die.t.in');
    }

    # 6. a section that is neither Test::Nginx's nor declared fails its
    #    block (a misspelt one would otherwise assert nothing); a declared
    #    one works
    {
        my $sr = "$tmp/sections";
        my ($status, $out, $err) = run_fixture('sections.t.in',
                                               TEST_NGINX_SERVROOT => $sr);
        isnt($status, 0, "sections.t.in: the child exits with failure");
        like($out, qr/^not ok \d+ - .*TEST 1: misspelt response_body - unknown section\(s\) --- respone_body: not a Test::Nginx::Socket section/m,
             "sections.t.in: --- respone_body fails its block");
        like($out, qr/^not ok \d+ - .*TEST 2: misspelt no_error_log - unknown section\(s\) --- no_eror_log:/m,
             "sections.t.in: --- no_eror_log fails its block");
        like($out, qr/use BlockSections qw\(no_eror_log\);/,
             "sections.t.in: the message says how to declare a section");
        unlike($out, qr/TEST [12]: .* - (?:status code|response_body)/,
               "sections.t.in: a refused block sends no request");
        like($out, qr/^ok \d+ - .*TEST 3: a declared section - response_body - response is expected/m,
             "sections.t.in: a declared section is read by the preprocessor");
        like($out, qr/^ok \d+ - .*TEST 4: still runs after a refused block - response_body - response is expected/m,
             "sections.t.in: the next block runs");
        nothing_left_running($sr, 'sections.t.in');
    }

    # 7. something the real Test::Nginx lacks fails loudly
    {
        my $sr = "$tmp/ncl";
        my ($status, $out, $err) = run_fixture('nocheckleak.t.in',
                                               TEST_NGINX_SERVROOT => $sr);
        isnt($status, 0, "nocheckleak.t.in: calling no_check_leak() fails");
        like($err, qr/no_check_leak\(\) is not a function/, "...with an explanation");
    }
}

__DATA__

=== TEST 1: sanity
--- config
    location = /t { return 200 "hello\n"; }
--- request
GET /t
--- response_body
hello
--- error_code: 200
--- no_error_log
[error]



=== TEST 2: response_headers, absent headers and response_headers_like
--- config
    location = /t {
        add_header X-Foo "bar baz";
        add_header X-Num 42;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_headers
X-Foo: bar baz
Content-Type: text/plain
!X-Absent
!Transfer-Encoding
--- response_body
ok



=== TEST 3: response_headers_like
--- config
    location = /t {
        add_header X-Num 42;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_headers_like
X-Num: \d+
Server: nginx.*



=== TEST 4: error_log from a failing location (substring lines)
--- config
    location /missing { root html; }
--- request
GET /missing/nothing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
[error]
No such file or directory
/missing/nothing.txt



=== TEST 5: error_log with a list of regexes
--- config
    location /missing { root html; }
--- request
GET /missing/nothing.txt
--- error_code: 404
--- error_log eval
[qr/\[error\] \d+#\d+: \*\d+ open\(\) "[^"]+nothing\.txt" failed/, qr/No such file/]
--- no_error_log
[alert]
[crit]



=== TEST 6: grep_error_log sees only this request (repeat_each)
--- config
    location /missing { root html; }
--- request
GET /missing/nothing.txt
--- error_code: 404
--- grep_error_log chop
No such file or directory
--- grep_error_log_out
No such file or directory



=== TEST 7: must_die with an unknown directive, the file and line in error.log
--- config
    unknown_directive_x on;
--- must_die
--- error_log eval
["unknown directive \"unknown_directive_x\"",
 qr{\[emerg\] \d+#\d+: unknown directive "unknown_directive_x" in \S+/conf/nginx\.conf:\d+$}]



=== TEST 8: must_die with an exit code
--- http_config
    unknown_directive_z;
--- config
--- must_die: 1
--- error_log eval
qr/\[emerg\] .*"unknown_directive_z"/



=== TEST 9: request body, Content-Length and $TEST_NGINX_ expansion in config
--- config
    location = /echo {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
        proxy_set_header X-Body $request_body;
    }
    location = /back {
        return 200 "len=$http_content_length body=$http_x_body\n";
    }
--- request
POST /echo
hello world
--- response_body
len=11 body=hello world



=== TEST 10: more_headers and explicit HTTP version
--- config
    location = /t {
        return 200 "foo=$http_x_foo proto=$server_protocol conn=$http_connection host=$host\n";
    }
--- more_headers
X-Foo: bar
# a comment line
--- request
GET /t HTTP/1.0
--- response_body
foo=bar proto=HTTP/1.0 conn=close host=localhost



=== TEST 11: own Host and Connection headers win
--- config
    location = /t { return 200 "host=$host conn=$http_connection\n"; }
--- more_headers
Host: example.com
Connection: close
--- request
GET /t
--- response_body
host=example.com conn=close



=== TEST 12: chunked response is decoded
--- config
    location = /t {
        sub_filter_types *;
        sub_filter "a" "b";
        sub_filter_once off;
        return 200 "aaa\nxyz\n";
    }
--- request
GET /t
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
bbb
xyz



=== TEST 13: raw_request
--- config
    location = /t { return 200 "raw $server_protocol\n"; }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
raw HTTP/1.0



=== TEST 14: raw_request in pieces
--- config
    location = /t { return 200 "pieces\n"; }
--- raw_request eval
["GET /t HT", "TP/1.1\r\nHost: local", "host\r\nConnection: close\r\n\r\n"]
--- raw_request_middle_delay: 0.01
--- response_body
pieces



=== TEST 15: pipelined_requests
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 404; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- error_code eval
[200, 404]
--- response_body_like eval
["^a\n\$", "404 Not Found"]



=== TEST 16: several requests with request eval
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 201 "b\n"; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 201]
--- response_body eval
["a\n", "b\n"]



=== TEST 17: request with comments and indentation
--- config
    location = /t { return 200 "args=$args\n"; }
--- request
    # the query string matters
    GET /t?a=1&b=2
--- response_body
args=a=1&b=2



=== TEST 18: user_files are served by the root location
--- user_files
>>> foo.html
<p>foo</p>
>>> sub/bar.txt
bar
--- config
--- request
GET /sub/bar.txt
--- response_body
bar



=== TEST 19: index.html of the default root location
--- config
--- request
GET /
--- response_body_like: It works!



=== TEST 20: timeout with abort is not a failure
--- config
    location = /slow { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back; }
    location = /back { return 200 "never\n"; }
--- raw_request eval
"POST /slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 100\r\n\r\nabc"
--- timeout: 300ms
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection



=== TEST 21: --- log_level overrides the level
--- config
    location /missing { root html; }
--- log_level: emerg
--- request
GET /missing/nothing.txt
--- error_code: 404
--- no_error_log
[error]
[debug]



=== TEST 22: debug is the default level
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- error_log
[debug]



=== TEST 23: main_config and http_config
--- main_config
    worker_rlimit_nofile 1024;
--- http_config
    map $uri $mapped {
        default "from-map";
    }
--- config
    location = /t { return 200 "$mapped\n"; }
--- request
GET /t
--- response_body
from-map



=== TEST 24: $TEST_NGINX_ and $ServerPort in response_body; server_root()
--- config
    location = /t {
        return 200 "port=$server_port root=$TEST_NGINX_SERVER_ROOT\n";
    }
--- request
GET /t
--- response_body eval
# eval runs in Test::Base::Filter, hence main::
"port=" . main::server_port() . " root=" . main::server_root() . "\n"



=== TEST 25: $ServerPort in the expected body
--- config
    location = /t { return 200 "p=$server_port e=$TEST_NGINX_SERVER_PORT\n"; }
--- request
GET /t
--- response_body
p=$ServerPort e=$TEST_NGINX_SERVER_PORT



=== TEST 26: HEAD request
--- config
    location = /t { return 200 "some body\n"; }
--- request
HEAD /t
--- response_headers
Content-Length: 10
--- response_body



=== TEST 27: response_body_unlike and error_code_like
--- config
    location = /t { return 204; }
--- request
GET /t
--- error_code_like: ^20[0-9]$
--- response_body_unlike: .



=== TEST 28: custom section through add_block_preprocessor
--- hello_location: hi from a preprocessor
--- request
GET /hello
--- response_body
hi from a preprocessor



=== TEST 29: access_log
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t?from=access
--- access_log
"GET /t?from=access HTTP/1.1" 200
--- no_access_log
/elsewhere



=== TEST 30: binary body with request eval and explicit Content-Length
--- config
    location = /echo {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
    }
    location = /back {
        return 200 "len=$http_content_length\n";
    }
--- more_headers
Content-Length: 4
--- request eval
"POST /echo\n\x00\x01\n\xff"
--- response_body
len=4



=== TEST 31: response_body_filters
--- config
    location = /t { return 200 "Hello\n"; }
--- request
GET /t
--- response_body_filters
uc
--- response_body
HELLO



=== TEST 32: SKIP is honoured
--- SKIP
--- config
    this would not even parse;
--- request
GET /t
--- response_body
never



=== TEST 33: shutdown_error_log is checked once nginx is stopped
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- shutdown_error_log eval
[qr/signal 3 \(SIGQUIT\) received/, qr/\[notice\] \d+#\d+: exit$/]
--- no_shutdown_error_log
[alert]



=== TEST 34: skip_nginx skips on a matching version
--- skip_nginx: 2: > 0.1.0
--- config
    location = /t { return 500; }
--- request
GET /t
--- response_body
never



=== TEST 35: skip_eval that does not skip
--- skip_eval: 1: 0
--- config
    location = /t { return 200 "ran\n"; }
--- request
GET /t
--- response_body
ran



=== TEST 36: todo
--- todo: 2: a known failure
--- config
    location = /t { return 500; }
--- request
GET /t
--- response_body
never



=== TEST 37: raw_response_headers_like/unlike, post_main_config
--- post_main_config
    pcre_jit off;
--- config
    location = /t { add_header X-Raw yes; return 200 "ok\n"; }
--- request
GET /t
--- raw_response_headers_like chomp
^HTTP/1\.1 200 OK\r\n.*X-Raw: yes\r\n
--- raw_response_headers_unlike
X-Other



=== TEST 38: response_body_json_sort
--- config
    location = /t { return 200 '{"b": 1, "a": [2, 3]}'; }
--- request
GET /t
--- response_body_json_sort
--- response_body
{"a":[2,3],"b":1}



=== TEST 39: post_setup_server_root and init run Perl code
--- post_setup_server_root
open my $fh, '>', "$Test::Nginx::Util::HtmlDir/setup.txt" or die $!;
print $fh "from setup\n";
close $fh;
--- init
$main::InitRan = 1;
--- config
    location = /setup.txt { root html; }
--- request
GET /setup.txt
--- response_body
from setup
