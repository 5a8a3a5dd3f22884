# The OAuth lifecycle against the TikTok sandbox and real PostgreSQL:
# connect -> authorize -> callback -> status, state attacks, disconnect, and
# no secret in any log, response or error row.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use URI::Escape qw(uri_unescape);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

use File::Basename qw(dirname);
my $test_module = dirname($ENV{TEST_NGINX_TIKTOK_MODULE})
                  . '/ngx_http_tiktok_cache_test_module.so';

my $ngx = TikTokTest::Nginx->new(name => 'oauth', workers => 2,
    log_level => 'info',
    main => $TikTokTest::MainConfig . "load_module $test_module;\n",
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /cache { tiktok_cache_test; }
CONF

my @bodies;                     # every response body, for the leak check
my @codes;                      # every authorization code the sandbox gave

sub api {
    my ($method, $path, $user, %o) = @_;
    my $r = $ngx->request($method => $path,
                          headers => { $user ? ('X-User-ID' => $user) : (),
                                       %{ $o{headers} || {} } });
    push @bodies, $r->{content} // '';
    return $r;
}

sub query_params {
    my ($url) = @_;
    my ($q) = $url =~ /\?(.*)\z/ or return {};
    return { map { my ($k, $v) = split /=/, $_, 2;
                   ($k => uri_unescape($v // '')) } split /&/, $q };
}

# GET /connect, then the sandbox's authorize page, which redirects to our
# redirect URI with a code; returns the callback query and the connect URL.
sub authorize {
    my ($user) = @_;

    my $r = api(GET => '/api/tiktok/connect', $user);
    is($r->{status}, 302, "$user: connect redirects");
    my $loc = $r->{headers}{location} // '';

    my ($path) = $loc =~ m{^https://localhost:\d+(/v2/auth/authorize/\?.*)\z}
        or return (undef, $loc);

    my $a = $sb->api(GET => $path);
    my $back = $a->{headers}{location} // '';
    my ($query) = $back =~ m{^\Q$TikTokTest::RedirectUri\E\?(.*)\z};
    my $p = query_params($back);
    push @codes, $p->{code} if $p->{code};

    return ($query, $loc);
}

sub callback {
    my ($user, $query) = @_;
    my $r = api(GET => "/api/tiktok/callback?$query", $user);
    return ($r->{status}, $r->{headers}{location} // '');
}

sub stored {
    my ($user) = @_;
    return $psql->("SELECT count(*) FROM tiktok.accounts"
                   . " WHERE user_id = '$user'");
}

sub errors_of {
    my ($user) = @_;
    return $psql->("SELECT string_agg(endpoint || ' ' || coalesce(message,''),"
                   . " '\n' ORDER BY id) FROM tiktok.api_errors"
                   . " WHERE user_id = '$user'");
}

my $return = $TikTokTest::ReturnUrl;

# 1. the whole round trip

my ($query, $connect) = authorize('alice');
ok($query, 'the sandbox redirected back with a code');

my $cp = query_params($connect);
is($cp->{client_key}, $TikTokTest::ClientKey, 'connect: client_key');
is($cp->{response_type}, 'code', 'connect: response_type=code');
is($cp->{redirect_uri}, $TikTokTest::RedirectUri,
   'connect: redirect_uri is exactly tiktok_redirect_uri');
is($cp->{scope}, 'user.info.basic,video.list,video.publish',
   'connect: the configured scopes');
like($cp->{state}, qr/^[A-Za-z0-9_-]{43}$/, 'connect: a 256-bit state');
like($cp->{code_challenge}, qr/^[0-9a-f]{64}$/,
     'connect: a hex S256 challenge');
is($cp->{code_challenge_method}, 'S256', 'connect: S256');

is($psql->("SELECT count(*) FROM tiktok.oauth_states WHERE user_id = 'alice'"
           . " AND expires_at BETWEEN now() + interval '9 minutes'"
           . " AND now() + interval '10 minutes'"),
   '1', 'the state is stored for alice, expiring in 10 minutes');
is($psql->("SELECT count(*) FROM tiktok.oauth_states WHERE"
           . " state_hash = decode('" . sha256_hex($cp->{state}) . "', 'hex')"),
   '1', '... as its SHA-256 only');

my ($st, $to) = callback('alice', $query);
is($st, 302, 'callback redirects');
is($to, "$return?tiktok=connected", '... to the app with tiktok=connected');

my $token_req = $sb->requests('/v2/oauth/token/', 1)->[0];
my $form = { map { my ($k, $v) = split /=/, $_, 2;
                   ($k => uri_unescape($v // '')) }
             split /&/, $token_req->{body} };

is($form->{grant_type}, 'authorization_code', 'token: authorization_code');
is($form->{redirect_uri}, $TikTokTest::RedirectUri,
   'token: the exact redirect_uri');
is(sha256_hex($form->{code_verifier} // ''), $cp->{code_challenge},
   'token: a verifier that matches the challenge');
is($form->{client_secret}, $ENV{TIKTOK_CLIENT_SECRET},
   'token: the client secret in the body');

my $secret = $ENV{TIKTOK_CLIENT_SECRET};
for my $ep ('/v2/oauth/token/', '/v2/user/info/') {
    for my $req (@{ $sb->requests($ep, 10) }) {
        my $hdrs = encode_json($req->{headers} // {});
        unlike($hdrs . ($req->{query} // ''), qr/\Q$secret\E/,
               "$ep: no client secret in headers or query");
        unlike($hdrs, qr/x-user-id/i, "$ep: the caller's user id stays home");
    }
}

my $r = api(GET => '/api/tiktok/status', 'alice');
my $status = decode_json($r->{content});
ok($status->{connected}, 'status: connected');
ok(length $status->{open_id}, 'status: the open_id from TikTok');
ok(defined $status->{display_name}, 'status: the display name');
is_deeply($status->{scopes}, [qw(user.info.basic video.list video.publish)],
          'status: the granted scopes');
ok(!$status->{needs_reconnect}, 'status: no reconnect needed');

is($psql->("SELECT count(*) FROM tiktok.oauth_states WHERE user_id = 'alice'"),
   '0', 'the state was consumed');

# 2. state attacks: each ends with nothing stored

($st, $to) = callback('alice', $query);
is($to, "$return?tiktok=error&reason=invalid_state", 'a reused state fails');

($query) = authorize('bob');
($st, $to) = callback('mallory', $query);
is($to, "$return?tiktok=error&reason=invalid_state",
   "another user's state fails");
is(stored('mallory'), '0', '... nothing stored for mallory');
is(stored('bob'), '0', '... nor for bob');

($query) = authorize('carol');
$psql->("UPDATE tiktok.oauth_states SET expires_at = now() - interval '1s'"
        . " WHERE user_id = 'carol'");
($st, $to) = callback('carol', $query);
is($to, "$return?tiktok=error&reason=invalid_state", 'an expired state fails');
is(stored('carol'), '0', '... nothing stored');

($query) = authorize('dave');
(my $garbled = $query) =~ s/state=[^&]+/state=garbled/;
($st, $to) = callback('dave', $garbled);
is($to, "$return?tiktok=error&reason=invalid_state", 'a garbled state fails');
(my $nostate = $query) =~ s/&?state=[^&]+//;
($st, $to) = callback('dave', $nostate);
is($to, "$return?tiktok=error&reason=invalid_state", 'a missing state fails');
is(stored('dave'), '0', '... nothing stored');

$sb->script_authorize({ deny => JSON::PP::true });
($query) = authorize('erin');
like($query, qr/error=access_denied/, 'the sandbox user declines');
($st, $to) = callback('erin', $query);
is($to, "$return?tiktok=error&reason=access_denied",
   'a declined authorization says so');
is(stored('erin'), '0', '... nothing stored');
like(errors_of('erin'), qr{/v2/auth/authorize/}, '... and it is recorded');

# a failed exchange (TikTok's OAuth error arrives with HTTP 200)
$sb->fault({ endpoint => '/v2/oauth/token/', type => 'error_code',
             code => 'invalid_grant' });
($query) = authorize('frank');
($st, $to) = callback('frank', $query);
is($to, "$return?tiktok=error&reason=oauth_failed",
   'a refused code exchange fails the connection');
is(stored('frank'), '0', '... nothing stored');
like(errors_of('frank'), qr{/v2/oauth/token/}, '... recorded with the endpoint');

# malformed JSON from user info
$sb->fault({ endpoint => '/v2/user/info/', type => 'malformed_json' });
($query) = authorize('gina');
($st, $to) = callback('gina', $query);
is($to, "$return?tiktok=error&reason=oauth_failed",
   'malformed user info fails the connection');
is(stored('gina'), '0', '... nothing stored');

# TikTok too slow: the internal location's own timeout ends the call
(my $slow_api = $TikTokTest::ApiLocation)
    =~ s/proxy_ssl_verify on;/proxy_ssl_verify on;\n        proxy_read_timeout 1s;/
    or die 'no proxy_ssl_verify in the api location';
my $slow = TikTokTest::Nginx->new(name => 'oauth-slow', log_level => 'info',
    api_location => $slow_api, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF
$sb->fault({ endpoint => '/v2/oauth/token/', type => 'delay', ms => 3000 });
($query) = authorize('ines');
my $sr = $slow->request(GET => "/api/tiktok/callback?$query",
                        headers => { 'X-User-ID' => 'ines' });
push @bodies, $sr->{content} // '';
is($sr->{headers}{location}, "$return?tiktok=error&reason=oauth_failed",
   'a timed-out code exchange fails the connection');
is(stored('ines'), '0', '... nothing stored');
like(errors_of('ines'), qr{/v2/oauth/token/}, '... and it is recorded');
$slow->stop;

# 3. disconnect: revoke, row gone, scheduled posts cancelled

$psql->("INSERT INTO tiktok.posts (user_id, status, source, schedule_at)"
        . " VALUES ('alice', 'scheduled', 'PULL_FROM_URL',"
        . " now() + interval '1 day')");

for my $k (qw(videos metrics)) {
    $ngx->request(GET => "/cache?op=set&user=alice&key=$k&value=x");
}
$ngx->request(GET => '/cache?op=set&user=zoe&key=videos&value=z');

my $revokes = $sb->calls->{'/v2/oauth/revoke/'} // 0;
$r = api(POST => '/api/tiktok/disconnect', 'alice');
is($r->{status}, 200, 'disconnect');
is($r->{content}, '{"connected":false}', '... answers connected:false');
is($sb->calls->{'/v2/oauth/revoke/'} // 0, $revokes + 1,
   '... after revoking at TikTok');
is(stored('alice'), '0', '... the account row is gone');
is($psql->("SELECT status FROM tiktok.posts WHERE user_id = 'alice'"),
   'cancelled', '... the scheduled post is cancelled');
is($ngx->request(GET => '/cache?op=get&user=alice&key=videos')->{content},
   "MISS\n", "... alice's cache entries are gone");
is($ngx->request(GET => '/cache?op=get&user=alice&key=metrics')->{content},
   "MISS\n", '... all of them');
is($ngx->request(GET => '/cache?op=get&user=zoe&key=videos')->{content},
   "HIT z\n", "... and nobody else's");

$r = api(GET => '/api/tiktok/status', 'alice');
is($r->{content}, '{"connected":false}', 'status after disconnect');

# a failed revoke still disconnects
($query) = authorize('hank');
callback('hank', $query);
is(stored('hank'), '1', 'hank is connected');
$sb->fault({ endpoint => '/v2/oauth/revoke/', type => 'status',
             status => 503 });
$r = api(POST => '/api/tiktok/disconnect', 'hank');
is($r->{status}, 200, 'disconnect with TikTok failing');
is(stored('hank'), '0', '... still removes the account');
like(errors_of('hank'), qr{/v2/oauth/revoke/}, '... and records the failure');

$r = api(GET => '/api/tiktok/disconnect', 'hank');
is($r->{status}, 405, 'a GET cannot disconnect');

# 4. no secret anywhere

my @secrets = ([client_secret => $secret]);
push @secrets, map { [code => $_] } @codes;
for my $req (@{ $sb->requests('/v2/oauth/token/', 100) }) {
    for my $kv (split /&/, $req->{body}) {
        my ($k, $v) = split /=/, $kv, 2;
        push @secrets, [$k => uri_unescape($v)]
            if $k =~ /^(refresh_token|code_verifier)$/;
    }
}
for my $req (@{ $sb->requests('/v2/user/info/', 100) }) {
    my ($tok) = (encode_json($req->{headers} // {}) =~ /Bearer ([^"]+)/);
    push @secrets, [access_token => $tok] if $tok;
}

cmp_ok(scalar @secrets, '>', 5, 'collected the secrets the sandbox saw');

my $logs = $ngx->error_log . $ngx->access_log;
my $rows = $psql->("SELECT string_agg(row_to_json(e)::text, '\n')"
                   . " FROM tiktok.api_errors e");
my $responses = join "\n", @bodies;

my $leaks = 0;
for my $s (@secrets) {
    my ($what, $value) = @$s;
    next unless length($value // '') >= 8;
    for ([logs => $logs], [responses => $responses], [api_errors => $rows]) {
        if (index($_->[1], $value) >= 0) {
            $leaks++;
            diag("a $what appears in the $_->[0]");
        }
    }
}
is($leaks, 0, 'no secret in the logs, the responses or tiktok.api_errors');

like($ngx->access_log, qr{callback\?code=REDACTED&[^ ]*state=REDACTED},
     'the access log has the callback with its values redacted');

($query) = authorize('ivan');
callback('ivan', $query);
my ($tok) = grep { $_->[0] eq 'access_token' } reverse @secrets;
is($psql->("SELECT count(*) FROM tiktok.accounts WHERE user_id = 'ivan'"
           . " AND position(convert_to(open_id, 'UTF8') in access_token_enc)"
           . " = 0"), '1', 'ivan is stored');
my $plain = $psql->("SELECT count(*) FROM tiktok.accounts a,"
    . " unnest(ARRAY[" . join(',', map { my $v = $_->[1]; $v =~ s/'/''/g;
                                     "'$v'" } @secrets) . "]) s"
    . " WHERE position(convert_to(s, 'UTF8') in a.access_token_enc) > 0"
    . " OR position(convert_to(s, 'UTF8') in a.refresh_token_enc) > 0");
is($plain, '0', 'the token columns hold no plaintext token bytes');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

$ngx->stop;

done_testing();
