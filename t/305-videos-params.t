# GET /videos and /metrics: every 400 names its field.  The rest of the
# analytics path (mapping, paging, the cache, TikTok's failures) is in
# t/300.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';

TikTokTest::connect_account('vera');

TikTokTest::defaults(
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF
    no_error_log => [qr/\[(?:alert|crit|emerg)\]/]);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: videos?max_count=0: 400 naming max_count
--- request
GET /api/tiktok/videos?max_count=0
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"max_count","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 2: videos?max_count=21: 400 naming max_count
--- request
GET /api/tiktok/videos?max_count=21
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"max_count","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 3: videos?max_count=abc: 400 naming max_count
--- request
GET /api/tiktok/videos?max_count=abc
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"max_count","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 4: videos?max_count=-1: 400 naming max_count
--- request
GET /api/tiktok/videos?max_count=-1
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"max_count","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 5: videos?max_count=: 400 naming max_count
--- request
GET /api/tiktok/videos?max_count=
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"max_count","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 6: videos?cursor=abc: 400 naming cursor
--- request
GET /api/tiktok/videos?cursor=abc
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"cursor","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 7: videos?cursor=1.5: 400 naming cursor
--- request
GET /api/tiktok/videos?cursor=1.5
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"cursor","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 8: videos?cursor=-3: 400 naming cursor
--- request
GET /api/tiktok/videos?cursor=-3
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"cursor","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 9: videos?cursor=1234567890123456789: 400 naming cursor
--- request
GET /api/tiktok/videos?cursor=1234567890123456789
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"cursor","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 10: metrics?: 400 naming video_id
--- request
GET /api/tiktok/metrics?
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 11: metrics?video_id=: 400 naming video_id
--- request
GET /api/tiktok/metrics?video_id=
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 12: metrics?video_id=12a: 400 naming video_id
--- request
GET /api/tiktok/metrics?video_id=12a
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 13: metrics?video_id=1,,2: 400 naming video_id
--- request
GET /api/tiktok/metrics?video_id=1,,2
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 14: metrics?video_id=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21: 400 naming video_id
--- request
GET /api/tiktok/metrics?video_id=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 15: metrics?video_id=999999999999999999999: 400 naming video_id
--- request
GET /api/tiktok/metrics?video_id=999999999999999999999
--- more_headers
X-User-ID: vera
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$
