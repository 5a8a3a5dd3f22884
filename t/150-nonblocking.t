# Nothing blocks the worker: with one worker and tiktok.accounts locked by
# another session, /api/tiktok/status waits for the lock while a plain
# location on the same worker answers at once.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

TikTokTest::seed_account(user_id => 'dave', display_name => 'Dave');

my $ngx = TikTokTest::Nginx->new(name => 'nonblock', workers => 1,
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /plain { return 200 "plain\n"; }
CONF

# warm the pool so the measurement is about the lock, not the connect
is($ngx->request(GET => '/api/tiktok/status',
                 headers => { 'X-User-ID' => 'dave' })->{status}, 200,
   'status answers before the lock');

my $locker = TikTokTest::psql_session();
$locker->send('BEGIN; LOCK TABLE tiktok.accounts IN ACCESS EXCLUSIVE MODE;');
$locker->send('SELECT 1;');
sleep 0.5;

# more status requests than pooled connections, none answered yet
my @waiting;
for my $i (1 .. 6) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die $!;
    print $s "GET /api/tiktok/status HTTP/1.0\r\nX-User-ID: dave\r\n\r\n";
    push @waiting, $s;
}

sleep 0.3;

my @times;
for (1 .. 5) {
    my $t0 = time;
    my $r = $ngx->request(GET => '/plain');
    push @times, time - $t0;
    is($r->{status}, 200, 'plain location answers while status waits');
}

my ($max) = sort { $b <=> $a } @times;
cmp_ok($max, '<', 0.1, sprintf('... within 100 ms (slowest %.1f ms)',
                               $max * 1000));

# the status requests really are waiting on the database
my $rin = '';
vec($rin, fileno($_), 1) = 1 for @waiting;
my $ready = select(my $rout = $rin, undef, undef, 0);
is($ready, 0, 'the status requests are still waiting on the lock');

$locker->send('COMMIT;');
$locker->close;

for my $s (@waiting) {
    local $/;
    my $resp = <$s>;
    like($resp, qr{^HTTP/1\.\d 200}, 'status answers once the lock is gone');
    like($resp, qr/"display_name":"Dave"/, '... with the data');
}

unlike($ngx->error_log, qr/\[(alert|crit)\]/, 'no alert');

$ngx->stop;

done_testing();
