# Token refresh when things go wrong: a slow TikTok does not let a second
# request refresh again with the refresh token the first one is spending
# (the lease outlives the refresh call), and a client that goes away while
# its refresh is in flight does not lose the rotated tokens.

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
my $psql = \&TikTokTest::psql;
my $unit = $ENV{TIKTOK_UNIT_DIR} || "$TikTokTest::Root/build/unit";
my $test_module = dirname($ENV{TEST_NGINX_TIKTOK_MODULE})
                  . '/ngx_http_tiktok_cache_test_module.so';

my $ngx = TikTokTest::Nginx->new(name => 'refresh-faults', workers => 2,
    main => $TikTokTest::MainConfig . "load_module $test_module;\n",
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /token { tiktok_token_test; }
CONF

# refresh calls TikTok acted on (counted once the delay is over), and
# calls to the token endpoint (counted as they arrive)
sub refreshes { $sb->calls->{'/v2/oauth/token/#refresh_token'} // 0 }
sub token_calls { $sb->calls->{'/v2/oauth/token/'} // 0 }

sub connect_account {
    my ($user) = @_;
    return TikTokTest::connect_account($user,
        scope => 'user.info.basic,video.list', access => '4 minutes');
}

sub unseal {
    my ($user, $column) = @_;
    my $hex = $psql->("SELECT encode(${column}_enc, 'hex')"
                      . " FROM tiktok.accounts WHERE user_id = '$user'");
    my $plain = `$unit/tiktok_seal open $ENV{TIKTOK_TOKEN_KEY} $user $column $hex 2>/dev/null`;
    return $? ? undef : do { chomp $plain; $plain };
}

# GET /token as $user on a socket of our own, answer read later (or never)
sub start_token {
    my ($user) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die "connect: $!";
    print $s "GET /token HTTP/1.0\r\nX-User-ID: $user\r\n\r\n";
    return $s;
}

# (status, body) of an answer started with start_token
sub answer {
    my ($s) = @_;
    local $/;
    my $resp = <$s> // '';
    my ($status) = $resp =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $resp =~ /\r\n\r\n(.*?)\n?\z/s;
    return ($status // 0, $body // '');
}

sub wait_for {
    my ($what, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        return 1 if $what->();
        sleep 0.1;
    }
    return 0;
}

sub lease_free {
    my ($user) = @_;
    return $psql->("SELECT refresh_lock_owner IS NULL FROM tiktok.accounts"
                   . " WHERE user_id = '$user'") eq 't';
}


# 1. A refresh slower than the old 30 s lease: a second request that comes
#    after 31 s waits for it instead of refreshing again with the refresh
#    token the first one is spending.

my $slow = 33;

my $t = connect_account('slow');
my $before = refreshes();
my $calls = token_calls();

$sb->fault({ endpoint => '/v2/oauth/token/', type => 'delay',
             ms => $slow * 1000, count => 1 });

my $start = time;
my $first = start_token('slow');

ok(wait_for(sub { token_calls() > $calls }, 10),
   'the first request is refreshing');

my $lease = $psql->("SELECT extract(epoch FROM refresh_lock_until - now())"
                    . " FROM tiktok.accounts WHERE user_id = 'slow'");
cmp_ok($lease, '>', 60, "the lease is longer than any refresh call (${lease}s)");

sleep 31 - (time - $start);
my $second = start_token('slow');

my ($st1, $body1) = answer($first);
my ($st2, $body2) = answer($second);

is(refreshes(), $before + 1, 'exactly one refresh call for both requests');
is($st1, 200, 'the first request got a token');
is($st2, 200, 'the second one too');
like($body1, qr/^0 [0-9a-f]{64}$/, '... a usable token');
is($body2, $body1, '... the same, the refreshed one');
is($body1, '0 ' . sha256_hex(unseal('slow', 'access_token') // ''),
   '... which is the one stored');
is($psql->("SELECT needs_reconnect::text || ' '"
           . " || (access_expires_at > now() + interval '1 hour')::text"
           . " FROM tiktok.accounts WHERE user_id = 'slow'"),
   'false true', 'the account is fine, its new expiry stored');

$sb->clear_faults;


# 2. The client goes away while its refresh is in flight, after TikTok has
#    rotated the tokens: the answer is stored all the same, and the account
#    keeps working without another refresh.

$t = connect_account('gone');
$before = refreshes();
$calls = token_calls();

$sb->fault({ endpoint => '/v2/oauth/token/', type => 'delay', ms => 2000,
             count => 1 });

my $s = start_token('gone');
ok(wait_for(sub { token_calls() > $calls }, 10),
   'the request is refreshing');
sleep 0.3;
close $s;                                   # the client disconnects

ok(wait_for(sub { refreshes() > $before }, 10),
   'TikTok rotated the tokens after the client went away');
ok(wait_for(sub { lease_free('gone') }, 20), 'the lease is released');
is(refreshes(), $before + 1, 'TikTok saw one refresh');

my $stored = unseal('gone', 'refresh_token');
ok($stored && $stored ne $t->{refresh_token},
   'the rotated refresh token was stored');

my $r = $ngx->request(GET => '/token', headers => { 'X-User-ID' => 'gone' });
(my $body = $r->{content} // '') =~ s/\n\z//;
is($r->{status}, 200, 'the next request gets a token');
is($body, '0 ' . sha256_hex(unseal('gone', 'access_token') // ''),
   '... the new one, as stored');
isnt($body, '0 ' . sha256_hex($t->{access_token}), '... not the old one');
is(refreshes(), $before + 1, '... without another refresh');
is($psql->("SELECT needs_reconnect FROM tiktok.accounts"
           . " WHERE user_id = 'gone'"), 'f', 'no reconnect needed');

$r = $ngx->request(GET => '/api/tiktok/status',
                   headers => { 'X-User-ID' => 'gone' });
my $status = eval { decode_json($r->{content}) } || {};
ok($status->{connected} && !$status->{needs_reconnect},
   '/status: connected, no needs_reconnect');

$sb->clear_faults;

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
unlike($log, qr/could not be stored/, 'no token lost');

done_testing();
