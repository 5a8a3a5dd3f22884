# The module paces itself under TikTok's documented 600 calls a minute for
# the video list, across workers, so TikTok rarely has to say 429: the
# 601st cache miss within a minute is answered here, without a call.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;

my $sb = $TikTokTest::Sandbox;

# a zone far too small for 600 pages: the pages churn through it, and the
# pacing counters must survive that
(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_cache_zone [^;]+;/tiktok_cache_zone small:64k;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'pacing', workers => 2,
    http => $http, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

TikTokTest::connect_account('pat');

sub get {
    my ($cursor) = @_;
    return $ngx->request(GET => "/api/tiktok/videos?max_count=1&cursor=$cursor",
                         headers => { 'X-User-ID' => 'pat' });
}

my $calls = $sb->calls->{'/v2/video/list/'} // 0;
my %status;
for my $i (1 .. 600) {
    $status{ get(9000000000000 + $i)->{status} }++;
}

is_deeply(\%status, { 200 => 600 }, '600 distinct misses in a burst: all 200');
is(($sb->calls->{'/v2/video/list/'} // 0) - $calls, 600,
   '... each one call to TikTok');

my $r = get(9000000000601);
is($r->{status}, 429, 'the 601st within the minute: 429');
ok($r->{headers}{'retry-after'} >= 1 && $r->{headers}{'retry-after'} <= 10,
   '... with a Retry-After of at most one bucket');
is(decode_json($r->{content})->{error}{code}, 'rate_limited', '... as JSON');
is(($sb->calls->{'/v2/video/list/'} // 0) - $calls, 600,
   '... answered here, without calling TikTok');

$r = get(9000000000600);
is($r->{status}, 200, 'a cached page is still served');
is(decode_json($r->{content})->{cached}, JSON::PP::true, '... from the cache');

like($ngx->error_log, qr/pacing \/v2\/video\/list\/ under TikTok's limit/,
     'the pacing is logged');

$ngx->stop;

done_testing();
