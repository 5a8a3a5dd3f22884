# Token refresh before use: a token expiring within 5 minutes is refreshed
# once, whatever the concurrency (2 workers x 2 nginx instances on one
# database); a rejected refresh marks the account for reconnection; an
# expired refresh token is never sent; key rotation keeps accounts working
# and re-encrypts on the next write.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use IO::Socket::INET;
use IO::Select;

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;
my $unit = $ENV{TIKTOK_UNIT_DIR} || "$TikTokTest::Root/build/unit";
my $test_module = dirname($ENV{TEST_NGINX_TIKTOK_MODULE})
                  . '/ngx_http_tiktok_cache_test_module.so';

my $server = <<'CONF';
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /token { tiktok_token_test; }
CONF

sub nginx {
    my ($name) = @_;
    return TikTokTest::Nginx->new(name => $name, workers => 2,
        main => $TikTokTest::MainConfig . "load_module $test_module;\n",
        server => $server)->start;
}

sub seal { TikTokTest::seal(@_) }
sub key_id { TikTokTest::key_id(@_) }

sub unseal {
    my ($key, $user, $column, $hex, $prev) = @_;
    my $plain = `$unit/tiktok_seal open $key $user $column $hex @{[$prev // '']} 2>/dev/null`;
    return $? ? undef : do { chomp $plain; $plain };
}

sub connect_account {
    my ($user, %o) = @_;
    return TikTokTest::connect_account($user, scope => 'user.info.basic,video.list',
                                       access => $o{access} // '4 minutes', %o);
}

sub refreshes { $sb->calls->{'/v2/oauth/token/#refresh_token'} // 0 }

# (0, token hash) when usable; else (HTTP status, error code, message)
sub token {
    my ($ngx, $user) = @_;
    my $r = $ngx->request(GET => '/token', headers => { 'X-User-ID' => $user });
    if ($r->{status} != 200) {
        my $e = eval { decode_json($r->{content})->{error} } || {};
        return ($r->{status}, $e->{code} // '', $e->{message} // '');
    }
    (my $body = $r->{content} // '') =~ s/\n\z//;
    return split / /, $body;
}

my $a = nginx('refresh-a');

my ($nst, $ncode, $nmsg) = token($a, 'nobody');
is("$nst $ncode $nmsg", '401 not_connected TikTok not connected',
   'no account: 401 not_connected');

# 1. fresh token: no refresh
my $t = connect_account('fresh', access => '2 hours');
my $before = refreshes();
my ($st, $hash) = token($a, 'fresh');
is($st, 0, 'a fresh token is usable');
is($hash, sha256_hex($t->{access_token}), '... and is the stored one');
is(refreshes(), $before, '... without a refresh');

# 2. expiring in 4 minutes: one refresh, then the call
$t = connect_account('soon');
$before = refreshes();
($st, $hash) = token($a, 'soon');
is($st, 0, 'a token expiring in 4 minutes is refreshed first');
isnt($hash, sha256_hex($t->{access_token}), '... into a new token');
is(refreshes(), $before + 1, '... with one refresh call');
is($psql->("SELECT access_expires_at > now() + interval '1 hour'"
           . " AND refresh_lock_owner IS NULL"
           . " FROM tiktok.accounts WHERE user_id = 'soon'"), 't',
   '... the new expiry stored and the lease released');

my $hex = $psql->("SELECT encode(refresh_token_enc, 'hex')"
                  . " FROM tiktok.accounts WHERE user_id = 'soon'");
my $stored_refresh = unseal($ENV{TIKTOK_TOKEN_KEY}, 'soon', 'refresh_token',
                            $hex);
ok($stored_refresh && $stored_refresh ne $t->{refresh_token},
   'the rotated refresh token replaced the old one');

# 3. 50 concurrent requests over 2 workers and a second nginx instance
my $b = nginx('refresh-b');
$t = connect_account('busy');
$before = refreshes();

my @socks;
for my $i (1 .. 50) {
    my $port = ($i % 2 ? $a : $b)->port;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "GET /token HTTP/1.0\r\nX-User-ID: busy\r\n\r\n";
    push @socks, $s;
}

my %answers;
for my $s (@socks) {
    local $/;
    my $resp = <$s> // '';
    my ($body) = $resp =~ /\r\n\r\n(.*)\n\z/s;
    $answers{$body // 'none'}++;
}

is(scalar keys %answers, 1, '50 concurrent requests got one answer')
    or diag explain \%answers;
my ($answer) = keys %answers;
like($answer, qr/^0 [0-9a-f]{64}$/, '... a usable token');
is(refreshes(), $before + 1, '... from exactly one refresh call');

# 4. a rejected refresh: reconnect needed
connect_account('revoked');
$sb->fault({ endpoint => '/v2/oauth/token/', type => 'error_code',
             code => 'invalid_grant' });
($st, my $code, my $msg) = token($a, 'revoked');
is($st, 401, 'a refresh TikTok rejects: 401');
is($code, 'reconnect_required', '... reconnect_required');
is($msg, 'Connection failed. Try reconnecting.', '... with the message');
is($psql->("SELECT needs_reconnect FROM tiktok.accounts"
           . " WHERE user_id = 'revoked'"), 't', '... the account is marked');

my $r = $a->request(GET => '/api/tiktok/status',
                    headers => { 'X-User-ID' => 'revoked' });
is(decode_json($r->{content})->{needs_reconnect}, JSON::PP::true,
   '... and /status says so');

$before = refreshes();
($st, $code) = token($a, 'revoked');
is($code, 'reconnect_required', 'a marked account stays marked');
is(refreshes(), $before, '... without calling TikTok again');
like($psql->("SELECT string_agg(endpoint, ',') FROM tiktok.api_errors"
             . " WHERE user_id = 'revoked'"), qr{/v2/oauth/token/},
     'the rejected refresh is recorded');

# 5. an expired refresh token is never sent
connect_account('stale', access => '-1 minute', refresh => '-1 second');
$before = refreshes();
($st, $code) = token($a, 'stale');
is($code, 'reconnect_required', 'an expired refresh token: reconnect');
is(refreshes(), $before, '... and it was not sent');

# 6. TikTok down during a refresh: 502, nothing marked
connect_account('down');
$sb->fault({ endpoint => '/v2/oauth/token/', type => 'status',
             status => 503 });
($st, $code) = token($a, 'down');
is("$st $code", '502 tiktok_unavailable',
   'TikTok failing the refresh: 502 tiktok_unavailable');
is($psql->("SELECT needs_reconnect::text || coalesce(refresh_lock_owner, '-')"
           . " FROM tiktok.accounts WHERE user_id = 'down'"), 'false-',
   '... the account is not marked and the lease is released');
($st) = token($a, 'down');
is($st, 0, '... and the next request refreshes');

# 7. key rotation
my $old_key = $ENV{TIKTOK_TOKEN_KEY};
connect_account('rotating', access => '2 hours');
($st, my $h1) = token($a, 'rotating');
is($st, 0, 'token under the old key');

$a->stop;
$b->stop;

my $new_key = TikTokTest::random_hex(32);
$ENV{TIKTOK_TOKEN_KEY} = $new_key;
$ENV{TIKTOK_TOKEN_KEY_PREVIOUS} = $old_key;

$a = nginx('refresh-rotated');
($st, my $h2) = token($a, 'rotating');
is($st, 0, 'after rotation the old token still decrypts');
is($h2, $h1, '... to the same token');

$psql->("UPDATE tiktok.accounts SET access_expires_at = now()"
        . " WHERE user_id = 'rotating'");
($st) = token($a, 'rotating');
is($st, 0, 'the next refresh works');
is($psql->("SELECT encode(key_id, 'hex') FROM tiktok.accounts"
           . " WHERE user_id = 'rotating'"), key_id($new_key),
   '... and the tokens are now under the new key');
$hex = $psql->("SELECT encode(access_token_enc, 'hex')"
               . " FROM tiktok.accounts WHERE user_id = 'rotating'");
ok(defined unseal($new_key, 'rotating', 'access_token', $hex),
   '... decrypting with the new key alone');
ok(!defined unseal($old_key, 'rotating', 'access_token', $hex),
   '... and no longer with the old one');

unlike($a->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

$a->stop;

done_testing();
