# The user's posts, one request and its answer each: every 400 of the list
# names its field, a user without posts gets an empty list, and a post id
# that is malformed or another user's is a 404, never a 403.  Paging,
# cancelling and what they change are in t/500.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';

TikTokTest::defaults(
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF
    more_headers => "X-User-ID: olga\n",
    no_error_log => [qr/\[(?:alert|crit|emerg)\]/]);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: posts?limit=0: 400 naming limit
--- sql
INSERT INTO tiktok.posts (user_id, status, source, video_url, post_info)
VALUES ('olga', 'published', 'PULL_FROM_URL',
        'https://media.example.com/1.mp4', '{"title":"post 1"}');
--- request
GET /api/tiktok/posts?limit=0
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"limit","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 2: posts?limit=101: 400 naming limit
--- request
GET /api/tiktok/posts?limit=101
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"limit","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 3: posts?limit=x: 400 naming limit
--- request
GET /api/tiktok/posts?limit=x
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"limit","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 4: posts?cursor=nope: 400 naming cursor
--- request
GET /api/tiktok/posts?cursor=nope
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"cursor","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 5: a user without posts: an empty list
--- request
GET /api/tiktok/posts
--- more_headers
X-User-ID: nobody
--- error_code: 200
--- response_body_like chomp
^\{"posts"\s*:\s*\[\],\s*"cursor"\s*:\s*null,\s*"has_more"\s*:\s*false\}$



=== TEST 6: another user's post: 404, not 403
--- sql
INSERT INTO tiktok.posts (id, user_id, status, source, post_info)
VALUES ('0b9f2a5e-6f1c-4d38-9a43-5d2e7c1f8a60', 'other', 'scheduled',
        'PULL_FROM_URL', '{"title":"theirs"}');
--- request
GET /api/tiktok/posts/0b9f2a5e-6f1c-4d38-9a43-5d2e7c1f8a60
--- error_code: 404
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 7: a malformed id: 404
--- request
GET /api/tiktok/posts/not-a-uuid
--- error_code: 404
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$
