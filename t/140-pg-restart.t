# PostgreSQL down: the API answers 503 JSON and nginx keeps serving other
# locations; PostgreSQL back: the next request succeeds without a reload.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

TikTokTest::seed_account(user_id => 'carol', display_name => 'Carol');

my $ngx = TikTokTest::Nginx->new(name => 'restart', workers => 1,
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /plain { return 200 "plain\n"; }
CONF

sub status {
    my $r = $ngx->request(GET => '/api/tiktok/status',
                          headers => { 'X-User-ID' => 'carol' });
    return ($r->{status}, $r->{content});
}

my ($code, $body) = status();
is($code, 200, 'status before the restart');
is(decode_json($body)->{display_name}, 'Carol', '... from the database');

my $down0 = time;
TikTokTest::pg_stop('fast');

my $t0 = time;
($code, $body) = status();
my $took = time - $t0;
is($code, 503, 'PostgreSQL down: 503');
is(decode_json($body)->{error}{code}, 'database_unavailable', '... as JSON');
cmp_ok($took, '<', 2, '... without waiting for the query timeout');

my $r = $ngx->request(GET => '/plain');
is($r->{status}, 200, 'other locations keep answering');

($code) = status();
is($code, 503, 'still down: 503 again');

TikTokTest::pg_start();
my @outages = (time - $down0);

($code, $body) = status();
is($code, 200, 'PostgreSQL back: the next request succeeds, no reload');
is(decode_json($body)->{display_name}, 'Carol', '... with the data');

# an immediate shutdown kills the pooled connections under us
my $down1 = time;
TikTokTest::pg_stop('immediate');
TikTokTest::pg_start();
push @outages, time - $down1;

($code) = status();
is($code, 200, 'after a crash and restart the pool reconnects');

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');
unlike($log, qr/exited on signal/, 'no worker crashed');

# No reconnect loop while down: the pool tries once for each request made
# while PostgreSQL was down (two), the listener on its backoff (200 ms,
# doubling to 3 s) for as long as each outage lasted, one try more for the
# one racing the restart.  Counting against the schedule, not a fixed
# number, keeps the check true on a loaded machine, where a restart takes
# longer and the listener rightly tries once more.
sub backoff_tries {
    my ($secs) = @_;
    my ($t, $delay, $n) = (0, 0.2, 1);
    while ($t + $delay <= $secs) {
        $t += $delay;
        $n++;
        $delay = $delay * 2 > 3 ? 3 : $delay * 2;
    }
    return $n;
}

my $pool_refused = () = $log =~ /postgres connection closed: [^\n]*Connection refused/g;
my $listener_refused =
    () = $log =~ /listener connection closed: [^\n]*Connection refused/g;
my $allowed = 0;
$allowed += backoff_tries($_) for @outages;
cmp_ok($pool_refused, '<=', 2,
       "the pool: one try for each request while down ($pool_refused)");
cmp_ok($listener_refused, '<=', $allowed,
       "the listener: on its backoff, no loop ($listener_refused tries,"
       . sprintf(" outages of %.1f s and %.1f s)", @outages));

$ngx->stop;

done_testing();
