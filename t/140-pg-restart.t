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

($code, $body) = status();
is($code, 200, 'PostgreSQL back: the next request succeeds, no reload');
is(decode_json($body)->{display_name}, 'Carol', '... with the data');

# an immediate shutdown kills the pooled connections under us
TikTokTest::pg_stop('immediate');
TikTokTest::pg_start();

($code) = status();
is($code, 200, 'after a crash and restart the pool reconnects');

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');
unlike($log, qr/exited on signal/, 'no worker crashed');

my $refused = () = $log =~ /Connection refused/g;
cmp_ok($refused, '<=', 4, "no reconnect loop while down ($refused refusals)");

$ngx->stop;

done_testing();
