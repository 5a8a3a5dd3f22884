# tiktok_api dispatches on method + path: unknown path 404, wrong method 405
# with Allow, no user 401; every answer is JSON with X-Request-ID.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';

TikTokTest::defaults();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: unknown endpoint is a JSON 404
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/nope
--- more_headers
X-User-ID: u1
X-Request-ID: req-404.a_B
--- error_code: 404
--- response_headers
Content-Type: application/json
X-Request-ID: req-404.a_B
Cache-Control: no-store
--- response_body chomp
{"error":{"code":"not_found","message":"Unknown endpoint","request_id":"req-404.a_B"}}
--- no_error_log
[error]



=== TEST 2: wrong method is a 405 with Allow
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
POST /api/tiktok/status
--- more_headers
X-User-ID: u1
X-Request-ID: r405
--- error_code: 405
--- response_headers
Allow: GET
Content-Type: application/json
--- response_body chomp
{"error":{"code":"method_not_allowed","message":"Method not allowed","request_id":"r405"}}



=== TEST 3: GET on disconnect is refused, so a link cannot disconnect anyone
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/disconnect
--- more_headers
X-User-ID: u1
--- error_code: 405
--- response_headers
Allow: POST



=== TEST 4: a post's path allows GET and DELETE
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
POST /api/tiktok/posts/6d1f7d0e-0000-4000-8000-000000000000
--- more_headers
X-User-ID: u1
--- error_code: 405
--- response_headers
Allow: GET, DELETE



=== TEST 5: a deeper path under posts/ is unknown
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/posts/a/b
--- more_headers
X-User-ID: u1
--- error_code: 404



=== TEST 6: no user id is 401 not_connected
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-Request-ID: anon
--- error_code: 401
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":{"code":"not_connected","message":"TikTok not connected","request_id":"anon"}}



=== TEST 7: an unsafe X-Request-ID is replaced by nginx's request id
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/nope
--- more_headers
X-User-ID: u1
X-Request-ID: <script>alert(1)</script>
--- error_code: 404
--- response_headers_like
X-Request-ID: ^[0-9a-f]{32}$
--- response_body_like: "request_id":"[0-9a-f]{32}"



=== TEST 8: an X-Request-ID of 65 characters is replaced
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/nope
--- more_headers eval
"X-User-ID: u1\nX-Request-ID: " . ("a" x 65)
--- error_code: 404
--- response_headers_like
X-Request-ID: ^[0-9a-f]{32}$



=== TEST 9: a 128-character user id is accepted, 129 is a 400 naming user_id
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers eval
"X-User-ID: " . ("u" x 129) . "\nX-Request-ID: long"
--- error_code: 400
--- response_body chomp
{"error":{"code":"invalid_request","field":"user_id","message":"The user id is malformed","request_id":"long"}}



=== TEST 10: the user id can come from any variable
--- config
    location /api/tiktok/ {
        tiktok_user_id $arg_uid;
        tiktok_api;
    }
--- request
GET /api/tiktok/status?uid=someone
--- response_body chomp
{"connected":false}
--- no_error_log
[error]



=== TEST 11: the location prefix may lack its trailing slash
--- config
    location /api/tiktok {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: u1
--- response_body chomp
{"connected":false}



=== TEST 12: the client's body on a GET is read and dropped
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
{"ignored":true}
--- more_headers
X-User-ID: u1
--- response_body chomp
{"connected":false}



=== TEST 13: HEAD is answered like GET, without a body
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
HEAD /api/tiktok/status
--- more_headers
X-User-ID: u1
--- error_code: 200
--- response_headers
Content-Type: application/json
Content-Length: 19
--- response_body
