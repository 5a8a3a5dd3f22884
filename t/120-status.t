# GET /api/tiktok/status from the database.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';

TikTokTest::defaults();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a user without an account is not connected
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: nobody-yet
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body chomp
{"connected":false}
--- no_error_log
[error]
[alert]



=== TEST 2: a connected user sees the stored profile and no token
--- sql
DELETE FROM tiktok.accounts;
INSERT INTO tiktok.accounts (user_id, open_id, display_name, avatar_url,
    scopes, access_token_enc, refresh_token_enc, access_expires_at,
    refresh_expires_at, key_id)
VALUES ('alice', 'open-alice', 'Alice "A" Ü', 'https://cdn.example/a.jpg',
    '{user.info.basic,video.list}', '\x01', '\x02', now(),
    '2031-05-06 07:08:09+00', '\x00');
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: alice
--- response_body chomp
{"connected":true,"display_name":"Alice \"A\" Ü","avatar_url":"https://cdn.example/a.jpg","open_id":"open-alice","scopes":["user.info.basic","video.list"],"expires_at":"2031-05-06T07:08:09Z","needs_reconnect":false}
--- no_error_log
[error]
[alert]



=== TEST 3: another user does not see alice's account
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: bob
--- response_body chomp
{"connected":false}



=== TEST 4: an account that needs reconnecting says so
--- sql
UPDATE tiktok.accounts SET needs_reconnect = true, avatar_url = NULL,
    scopes = '{}' WHERE user_id = 'alice';
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: alice
--- response_body chomp
{"connected":true,"display_name":"Alice \"A\" Ü","avatar_url":null,"open_id":"open-alice","scopes":[],"expires_at":"2031-05-06T07:08:09Z","needs_reconnect":true}



=== TEST 5: a user id that looks like SQL is only a value
--- sql
INSERT INTO tiktok.accounts (user_id, open_id, access_token_enc,
    refresh_token_enc, access_expires_at, refresh_expires_at, key_id)
VALUES ($$x' OR '1'='1$$, 'open-x', '\x01', '\x02', now(),
    '2031-01-01 00:00:00+00', '\x00');
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: x' OR '1'='1
--- response_body_like: "open_id":"open-x"



=== TEST 6: the database unreachable is a JSON 503
--- http_config
    tiktok_client_key          k;
    tiktok_client_secret_env   TIKTOK_CLIENT_SECRET;
    tiktok_token_key_env       TIKTOK_TOKEN_KEY;
    tiktok_redirect_uri        https://app.example.com/api/tiktok/callback;
    tiktok_app_return_url      https://app.example.com/settings;
    tiktok_postgres            "host=127.0.0.1 port=1 dbname=tiktok user=tiktok_app" pool=2;
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: alice
X-Request-ID: down-1
--- error_code: 503
--- response_body chomp
{"error":{"code":"database_unavailable","message":"Service temporarily unavailable","request_id":"down-1"}}
--- error_log
tiktok: postgres connection closed
tiktok: 503 database_unavailable, request id "down-1"
