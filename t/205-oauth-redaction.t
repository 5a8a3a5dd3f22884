# The OAuth callback's code never reaches a log, whatever the answer (401
# without a user, 405 for another method, 302 after a failed check), and
# TikTok's `error` parameter cannot forge error log lines.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use URI::Escape qw(uri_escape);

my $ngx = TikTokTest::Nginx->new(name => 'redact', workers => 1,
    log_level => 'info',
    http => $TikTokTest::HttpConfig . <<'CONF',
    log_format tiktok_args '$request_uri|$args|$arg_code|$query_string|'
                           '$request';
CONF
    server => <<'CONF')->start;
        access_log logs/access.log;
        access_log logs/args.log tiktok_args;
        location /api/tiktok/ {
            client_max_body_size 1k;
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

sub logs {
    return $ngx->error_log . $ngx->access_log
           . slurp($ngx->dir . '/logs/args.log');
}

sub call {
    my ($method, $query, $user, $body) = @_;
    return $ngx->request($method => "/api/tiktok/callback?$query",
                         headers => { $user ? ('X-User-ID' => $user) : () },
                         defined $body ? (body => $body) : ());
}

# 1. answers that come before the callback's own checks

my @cases = (
    [ GET => 'code=SECRET401GET&state=x', undef, 401,
      'GET without a user: 401' ],
    [ POST => 'code=SECRET401POST&state=x', undef, 405,
      'POST without a user: 405' ],
    [ POST => 'code=SECRET405POST&state=x', 'alice', 405,
      'POST with a user: 405' ],
    [ DELETE => 'state=x&code=SECRET405DELETE', 'alice', 405,
      'DELETE, the code last: 405' ],
    [ GET => 'code=SECRET302&state=x', 'alice', 302,
      'GET with a malformed state: 302' ],
    [ GET => 'code=SECRETUSER&state=x', "u" x 200, 400,
      'GET with a user id too long: 400' ],
);

# nginx's own 413, answered through the module's error page.  nginx's core
# logs "client intended to send too large body" with the request line
# before any module runs (README, Security): the access log is the module's
# to keep clean.
my @nginx_made = (
    [ POST => 'code=SECRET413&state=x', 'alice', 413,
      'POST with a body over client_max_body_size: 413', 'b' x 4096 ],
);

for my $c (@cases, @nginx_made) {
    my ($method, $query, $user, $status, $name, $body) = @$c;
    my $r = call($method, $query, $user, $body);
    is($r->{status}, $status, $name);
}

# the access log is written once the request ends: wait for every line
my $deadline = time + 10;
while (time < $deadline) {
    my @lines = split /\n/, slurp($ngx->dir . '/logs/args.log');
    last if @lines >= @cases + @nginx_made;
    select undef, undef, undef, 0.1;
}

my $logs = logs();
my @lines = split /\n/, slurp($ngx->dir . '/logs/args.log');
is(scalar @lines, @cases + @nginx_made, 'every request is in the access log');

for my $c (@cases) {
    my ($secret) = $c->[1] =~ /code=(\w+)/;
    unlike($logs, qr/\Q$secret\E/, "$c->[4]: the code is in no log");
}

my $access = $ngx->access_log . slurp($ngx->dir . '/logs/args.log');
for my $c (@nginx_made) {
    my ($secret) = $c->[1] =~ /code=(\w+)/;
    unlike($access, qr/\Q$secret\E/,
           "$c->[4]: the code is in no access log variable");
}
like($ngx->access_log,
     qr{"POST /api/tiktok/callback\?code=REDACTED&state=REDACTED HTTP/1\.1" 413 },
     'the request line of nginx\'s own 413 is redacted');

like($lines[0], qr{^/api/tiktok/callback\?code=REDACTED&state=REDACTED\|
                   code=REDACTED&state=REDACTED\|REDACTED\|}x,
     '$request_uri, $args and $arg_code are redacted');
like($ngx->access_log,
     qr{"POST /api/tiktok/callback\?code=REDACTED&state=REDACTED HTTP/1\.1"},
     'the request line of a 405 is redacted');

# 2. TikTok's error parameter: control bytes are escaped in the error log

my $before = $ngx->error_log;

my $forged = uri_escape("x\r\n2030/01/01 00:00:00 [warn] 1#1: FAKE\nFAKE2\0\e");
my $r = call(GET => "error=$forged&error_description=y&state=x", 'alice');
is($r->{status}, 302, 'a callback with an error redirects');
like($r->{headers}{location} // '', qr/tiktok=error&reason=oauth_failed/,
     '... with reason oauth_failed');

# the failure is logged (and recorded) before the redirect
my $err = substr($ngx->error_log, length $before);
like($err, qr/code "x\\x0D\\x0A2030/, 'the control bytes are escaped');
unlike($err, qr/^(2030|FAKE)/m, 'no forged line in the error log');
unlike($err, qr/[\x00-\x08\x0b-\x1f\x7f]/, 'no control byte in the error log');
unlike(logs(), qr/\x1b/, 'no escape character in any log');

$r = call(GET => 'error=access_denied&state=x', 'alice');
like($r->{headers}{location} // '', qr/reason=access_denied/,
     'access_denied is still recognised');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

done_testing();
