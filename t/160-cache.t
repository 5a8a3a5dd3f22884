# The shared-memory cache (tiktok_cache_zone): set/get/delete, TTL with a
# stale window, purge by user, LRU eviction when the zone is full, and one
# zone shared by every worker.  Driven through the test-only companion
# module t/modules/ngx_http_tiktok_cache_test_module.c.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use File::Basename qw(dirname);
use Time::HiRes qw(sleep time);

my $test_module = dirname($ENV{TEST_NGINX_TIKTOK_MODULE})
                  . '/ngx_http_tiktok_cache_test_module.so';

ok(-f $test_module, 'the cache test module is built');

sub start_nginx {
    my (%o) = @_;

    (my $http = $TikTokTest::HttpConfig)
        =~ s/tiktok_cache_zone [^;]+;/tiktok_cache_zone $o{zone};/
        or die "no cache zone in the shared http config";

    return TikTokTest::Nginx->new(
        name => $o{name}, workers => $o{workers} || 1,
        main => $TikTokTest::MainConfig . "load_module $test_module;\n",
        http => $http,
        server => "        large_client_header_buffers 4 64k;\n"
                  . "        location /cache { tiktok_cache_test; }\n",
    )->start;
}

my $ngx = start_nginx(name => 'cache', zone => 'tiktok_cache:1m ttl=2s',
                      workers => 2);

sub op {
    my ($n, $query) = @_;
    my $r = $n->request(GET => "/cache?$query");
    die "cache op failed: $r->{status}" unless $r->{status} == 200;
    (my $body = $r->{content}) =~ s/\n\z//;
    return $body;
}

is(op($ngx, 'op=get&user=u1&key=videos'), 'MISS', 'empty cache: MISS');
is(op($ngx, 'op=set&user=u1&key=videos&value=page1'), 'stored', 'set');
is(op($ngx, 'op=get&user=u1&key=videos'), 'HIT page1', 'get: HIT');
is(op($ngx, 'op=get&user=u2&key=videos'), 'MISS',
   'the same key of another user is another entry');
is(op($ngx, 'op=set&user=u1&key=videos&value=page2'), 'stored', 'overwrite');
is(op($ngx, 'op=get&user=u1&key=videos'), 'HIT page2', '... replaces');

# "ab"+"c" and "a"+"bc" must not collide
op($ngx, 'op=set&user=ab&key=c&value=one');
is(op($ngx, 'op=get&user=a&key=bc'), 'MISS', 'user/key boundary is kept');

# every worker sees the one zone
my %seen;
for (1 .. 20) {
    $seen{ op($ngx, 'op=get&user=u1&key=videos') }++;
}
is_deeply(\%seen, { 'HIT page2' => 20 }, 'all workers read the same zone');

# TTL: fresh, then stale (still served as such), then gone.  nginx keeps
# time in whole seconds, so each step is timed from a second boundary.
sub second_boundary {
    my $t = time;
    sleep(1.05 - ($t - int $t)) if $t - int($t) > 0.5;
    return int time;
}

sub sleep_until {
    my ($when) = @_;
    my $d = $when - time;
    sleep $d if $d > 0;
}

my $base = second_boundary();
op($ngx, 'op=set&user=u3&key=k&value=v&ttl=2');
is(op($ngx, 'op=get&user=u3&key=k'), 'HIT v', 'fresh within its TTL');
sleep_until($base + 2.5);
is(op($ngx, 'op=get&user=u3&key=k'), 'STALE v', 'expired: served as stale');
sleep_until($base + 4.5);
is(op($ngx, 'op=get&user=u3&key=k'), 'MISS', 'after twice the TTL: gone');

# the zone's ttl= (2s here) is the default
$base = second_boundary();
op($ngx, 'op=set&user=u3&key=d&value=v');
is(op($ngx, 'op=get&user=u3&key=d'), 'HIT v', 'zone default TTL: fresh');
sleep_until($base + 2.5);
is(op($ngx, 'op=get&user=u3&key=d'), 'STALE v', 'zone default TTL: stale');

# delete and purge
op($ngx, 'op=set&user=u1&key=videos&value=page2&ttl=3600');
is(op($ngx, 'op=delete&user=u1&key=videos'), 'deleted', 'delete');
is(op($ngx, 'op=get&user=u1&key=videos'), 'MISS', '... is gone');
is(op($ngx, 'op=delete&user=u1&key=videos'), 'absent', 'delete again');

op($ngx, "op=set&user=u4&key=k$_&value=v$_") for 1 .. 5;
op($ngx, 'op=set&user=u5&key=k1&value=keep');
is(op($ngx, 'op=purge&user=u4'), 'purged 5', 'purge removes every entry');
is(op($ngx, 'op=get&user=u4&key=k3'), 'MISS', "... of that user");
is(op($ngx, 'op=get&user=u5&key=k1'), 'HIT keep', '... and no one else');
is(op($ngx, 'op=purge&user=u4'), 'purged 0', 'purging again finds none');

$ngx->stop;

# LRU: a zone of 8 pages holds only some 2 KB values; filling it evicts the
# least recently used, never fails, and keeps what was just read
my $small = start_nginx(name => 'cache-small', zone => 'tiny:32k ttl=1h');
my $value = 'x' x 2000;

op($small, "op=set&user=u&key=hot&value=$value");
my $stored = 0;
for my $i (1 .. 60) {
    $stored++ if op($small, "op=set&user=u&key=k$i&value=$value") eq 'stored';
    op($small, 'op=get&user=u&key=hot');          # keep "hot" recently used
}
is($stored, 60, 'a full zone evicts instead of failing');
is(op($small, 'op=get&user=u&key=k1'), 'MISS', 'the oldest entry was evicted');
like(op($small, 'op=get&user=u&key=k60'), qr/^HIT x/, 'the newest is there');
like(op($small, 'op=get&user=u&key=hot'), qr/^HIT x/,
     'a recently read entry survives eviction');
is(op($small, 'op=set&user=u&key=big&value=' . ('y' x 40000)), 'too_large',
   'a value larger than the zone is refused, not an error page');

my $log = $small->error_log;
unlike($log, qr/\[(alert|crit)\]/, 'no alert when the zone fills up');
unlike($log, qr/no memory/, 'eviction keeps "no memory" out of the log');

$small->stop;

done_testing();
