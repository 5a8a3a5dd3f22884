# Bad configuration fails `nginx -t`/start with a message naming the
# directive (DESIGN.md section 3).

use TikTokTest;
use Test::Nginx::Socket 'no_plan';

$ENV{TIKTOK_SHORT_KEY} = 'ab' x 31;               # 31 bytes
$ENV{TIKTOK_GARBAGE_KEY} = 'not a key at all!';

TikTokTest::defaults();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a complete configuration starts
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
    location /plain { return 200 "plain\n"; }
--- request
GET /plain
--- response_body
plain
--- no_error_log
[error]
[emerg]



=== TEST 2: client secret environment variable missing
--- http_config
    tiktok_client_secret_env TIKTOK_TEST_NOT_SET;
--- config
--- must_die
--- error_log
"tiktok_client_secret_env": environment variable "TIKTOK_TEST_NOT_SET" is not set or empty



=== TEST 3: token key environment variable missing
--- http_config
    tiktok_token_key_env TIKTOK_TEST_NOT_SET;
--- config
--- must_die
--- error_log
"tiktok_token_key_env": environment variable "TIKTOK_TEST_NOT_SET" is not set or empty



=== TEST 4: token key of 31 bytes
--- http_config
    tiktok_token_key_env TIKTOK_SHORT_KEY;
--- config
--- must_die
--- error_log
"tiktok_token_key_env": environment variable "TIKTOK_SHORT_KEY" must hold a 32-byte key



=== TEST 5: token key that is neither hex nor base64
--- http_config
    tiktok_token_key_env TIKTOK_GARBAGE_KEY;
--- config
--- must_die
--- error_log
"tiktok_token_key_env": environment variable "TIKTOK_GARBAGE_KEY" must hold a 32-byte key



=== TEST 6: API base URL that is not https
--- http_config
    tiktok_api_base_url http://open.tiktokapis.com;
--- config
--- must_die
--- error_log
"tiktok_api_base_url" must be an absolute https URL, not "http://open.tiktokapis.com"



=== TEST 7: cache zone without a size
--- http_config
    tiktok_cache_zone tiktok_cache;
--- config
--- must_die
--- error_log
"tiktok_cache_zone" needs a size: "tiktok_cache" should be "name:size"



=== TEST 8: unknown scope
--- http_config
    tiktok_scopes user.info.basic,video.lists;
--- config
--- must_die
--- error_log
"tiktok_scopes": unknown scope "video.lists"



=== TEST 9: tiktok_api without tiktok_user_id
--- config
    location /api/tiktok/ {
        tiktok_api;
    }
--- must_die
--- error_log
"tiktok_api" requires "tiktok_user_id"



=== TEST 10: conninfo that libpq rejects
--- http_config
    tiktok_postgres "host=127.0.0.1 bogus_option=1";
--- config
--- must_die
--- error_log
"tiktok_postgres" has an invalid conninfo: invalid connection option "bogus_option"



=== TEST 11: conninfo that does not parse
--- http_config
    tiktok_postgres "host='127.0.0.1";
--- config
--- must_die
--- error_log
"tiktok_postgres" has an invalid conninfo: unterminated quoted string



=== TEST 12: tiktok_api without tiktok_postgres
--- http_config
    tiktok_client_key k;
    tiktok_client_secret_env TIKTOK_CLIENT_SECRET;
    tiktok_token_key_env TIKTOK_TOKEN_KEY;
    tiktok_redirect_uri https://app.example.com/api/tiktok/callback;
    tiktok_app_return_url https://app.example.com/settings;
--- config
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- must_die
--- error_log
"tiktok_api" is used but "tiktok_postgres" is not set



=== TEST 13: redirect URI with a query string
--- http_config
    tiktok_redirect_uri https://app.example.com/cb?x=1;
--- config
--- must_die
--- error_log
"tiktok_redirect_uri" must not have a query string



=== TEST 14: pool size out of range
--- http_config
    tiktok_postgres "host=127.0.0.1" pool=0;
--- config
--- must_die
--- error_log
"tiktok_postgres" has an invalid "pool=0" (1..1024)



=== TEST 15: tiktok_api in a regex location
--- config
    location ~ ^/api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- must_die
--- error_log
"tiktok_api" directive needs a prefix location



=== TEST 16: pull URL prefix over http
--- http_config
    tiktok_pull_url_prefixes http://media.example.com/;
--- config
--- must_die
--- error_log
"tiktok_pull_url_prefixes": "http://media.example.com/" must be an https URL prefix



=== TEST 17: title limit above TikTok's
--- http_config
    tiktok_title_max_chars 3000;
--- config
--- must_die
--- error_log
"tiktok_title_max_chars" must be between 1 and 2200



=== TEST 18: redirect URI of 512 characters
--- http_config eval
"    tiktok_redirect_uri https://app.example.com/" . ("a" x 488) . ";\n"
--- config
--- must_die
--- error_log
"tiktok_redirect_uri" must be shorter than 512 characters



=== TEST 19: CA bundle that does not exist
--- http_config
    tiktok_ca_certificate /nonexistent/ca.pem;
--- config
--- must_die
--- error_log
"tiktok_ca_certificate": cannot read "/nonexistent/ca.pem"



=== TEST 20: scheduler interval too short
--- http_config
    tiktok_scheduler on interval=10ms;
--- config
--- must_die
--- error_log
"tiktok_scheduler" has an invalid "interval=10ms" (at least 100ms)



=== TEST 21: postgres host that cannot be resolved
--- http_config
    tiktok_postgres "host=no-such-host.invalid dbname=x";
--- config
--- must_die
--- error_log
"tiktok_postgres" cannot resolve host "no-such-host.invalid"
