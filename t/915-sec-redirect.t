# Security battery: the OAuth flow only ever redirects where the operator
# configured (issue 13).  /connect sends the browser to
# tiktok_authorize_url with tiktok_redirect_uri, whatever the request says;
# /callback sends it to tiktok_app_return_url, whatever the request says
# (a next=, a redirect_uri=, a Host or X-Forwarded-Host header), so the
# module cannot be used as an open redirector.  One request and its answer
# per block.  The successful round trip's redirect is t/200's.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';

# (Test::Nginx anchors a header's pattern at both ends)
our $Error = 'Location: https://app\.example\.com/settings/integrations'
           . '\?tiktok=error&reason=[a-z_]+';

TikTokTest::defaults(
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF
    more_headers => "X-User-ID: rita\n",
    no_error_log => [qr/\[(?:alert|crit|emerg)\]|signal \d+/]);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: connect?redirect_uri=evil: TikTok gets the configured one
--- request
GET /api/tiktok/connect?redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=x
--- error_code: 302
--- response_headers_like
Location: https://localhost:\d+/v2/auth/authorize/\?(?!.*evil).*redirect_uri=https%3A%2F%2Fapp\.example\.com%2Fapi%2Ftiktok%2Fcallback.*



=== TEST 2: connect with Host: evil.example: the configured authorize URL
--- request
GET /api/tiktok/connect
--- more_headers
X-User-ID: rita
Host: evil.example
X-Forwarded-Host: evil.example
--- error_code: 302
--- response_headers_like
Location: https://localhost:\d+/v2/auth/authorize/\?(?!.*evil).*



=== TEST 3: callback?next=evil: to the app
--- request
GET /api/tiktok/callback?code=c&state=s&next=https%3A%2F%2Fevil.example
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 4: callback?redirect_uri=evil: to the app
--- request
GET /api/tiktok/callback?code=c&state=s&redirect_uri=https://evil.example/
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 5: callback?return_url=//evil.example: to the app
--- request
GET /api/tiktok/callback?return_url=//evil.example&error=access_denied
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 6: callback with Host and X-Forwarded-Host evil.example: to the app
--- request
GET /api/tiktok/callback?code=c&state=s
--- more_headers
X-User-ID: rita
Host: evil.example
X-Forwarded-Host: evil.example
X-Forwarded-Proto: http
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 7: callback without a query: to the app
--- request
GET /api/tiktok/callback
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 8: callback with two states: to the app
--- request
GET /api/tiktok/callback?code=c&state=a&state=b
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 9: callback without a user: 401 JSON, no redirect at all
--- request
GET /api/tiktok/callback?code=c&state=s&next=//evil.example
--- more_headers
X-Forwarded-Host: evil.example
--- error_code: 401
--- response_headers
!Location
--- response_body_like: "code":"not_connected"



=== TEST 10: callback/ with a path after it: 404 JSON, no redirect
--- request
GET /api/tiktok/callback/evil.example?code=c&state=s
--- error_code: 404
--- response_headers
!Location
--- response_body_like: "code":"not_found"



=== TEST 11: POST callback: 405 JSON, no redirect
--- request
POST /api/tiktok/callback?code=c&state=s&next=//evil.example
--- error_code: 405
--- response_headers
!Location
--- response_body_like: "code":"method_not_allowed"
