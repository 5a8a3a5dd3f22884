# Security battery: the headers the module writes from outside values
# (issue 13), in two classes.
#
# CR and LF in every value that could reach a header or a log line.  The
# headers are the callback's Location (TikTok's error, the state, the
# code) and X-Request-ID; the log lines are those naming what a client or
# TikTok sent (options, identities, TikTok's error code, message and
# log_id, webhook events).  An attacker who gets a CR or LF into either
# can forge a header (a Set-Cookie) or a log line (an [alert] that never
# happened).  Each block sends one, and checks the answer's headers and
# that no line of the error log starts with the forged text.  The
# callback's code never reaching a log at all is t/205's.
#
# Redirects only where the operator configured: /connect sends the
# browser to tiktok_authorize_url with tiktok_redirect_uri, /callback to
# tiktok_app_return_url, whatever the request says (a next=, a
# redirect_uri=, a Host or X-Forwarded-Host header), so the module cannot
# be used as an open redirector.  The successful round trip's redirect
# is t/200's.
#
# One request and its answer per block.

use TikTokTest;
use TikTokMedia;
use Test::Nginx::Socket 'no_plan';
use TikTokOneNginx;
use Digest::SHA qw(hmac_sha256_hex hmac_sha256);
use JSON::PP ();
use TikTokJwt;

our $Secret = 'sec-910-' . TikTokTest::random_hex(16);
$ENV{TIKTOK_910_JWT} = $Secret;
$TikTokTest::MainConfig .= "env TIKTOK_910_JWT;\n";

our $Video = TikTokMedia::mp4(seconds => 7, mdat => 'v' x 4000);

# a JWT with these claims, signed with the secret
sub jwt {
    my ($claims) = @_;
    my $h = TikTokJwt::b64url('{"alg":"HS256","typ":"JWT"}');
    my $p = TikTokJwt::b64url(JSON::PP->new->canonical->encode($claims));
    my $s = TikTokJwt::b64url(hmac_sha256("$h.$p", $Secret));
    return "Authorization: Bearer $h.$p.$s";
}

# a webhook delivery of this event, signed with the client secret
sub hook {
    my ($event, $content) = @_;
    my $body = JSON::PP->new->canonical->encode({
        client_key => $TikTokTest::ClientKey, event => $event,
        create_time => time, user_openid => "open\r\nFORGED-910 alert",
        content => $content // '{}' });
    my $t = time;
    return ("POST /api/tiktok/webhook\n$body",
            "Content-Type: application/json\nTikTok-Signature: t=$t,s="
            . hmac_sha256_hex("$t.$body", $ENV{TIKTOK_CLIENT_SECRET}));
}

TikTokTest::connect_account('carl');

# where a failed callback goes (Test::Nginx anchors a header's pattern)
our $Error = 'Location: https://app\.example\.com/settings/integrations'
           . '\?tiktok=error&reason=[a-z_]+';

our $Config = $ApiLocation . <<'CONF';
    location = /api/tiktok/webhook {
        tiktok_webhook;
    }
    location /jwt/api/tiktok/ {
        tiktok_jwt secret_env=TIKTOK_910_JWT;
        tiktok_user_id $tiktok_jwt_sub;
        tiktok_api;
    }
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF

# TikTok answering 500 with a CR and LF in its error code, message and
# log_id (JSON escapes: the parsed strings hold the raw bytes)
our $Stub = <<'CONF';
    location /_tiktok_api/ {
        internal;
        default_type application/json;
        return 500 '{"data":{},"error":{"code":"internal_error\\r\\nFORGED-910 alert code","message":"oops\\nFORGED-910 alert message","log_id":"l1\\r\\nFORGED-910 alert log_id"}}';
    }
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF

TikTokTest::defaults(
    more_headers => "X-User-ID: carl\n",
    no_error_log => [qr/^\s*FORGED-910|\r|\[(?:alert|crit|emerg)\]|signal \d+/]);

log_level('info');
TikTokOneNginx::config($Config);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: callback, TikTok's error with CRLF and a Set-Cookie: no header forged
--- request
GET /api/tiktok/callback?error=access_denied%0d%0aSet-Cookie:%20session=forged&error_description=x&state=s
--- error_code: 302
--- response_headers_like
Location: https://app\.example\.com/settings/integrations\?tiktok=error&reason=[a-z_]+
--- raw_response_headers_unlike: (?i)set-cookie|\r\n\s*FORGED



=== TEST 2: callback, error_description with CRLF: no header forged
--- request
GET /api/tiktok/callback?error=access_denied&error_description=a%0d%0aFORGED-910%20alert%20forged&state=s
--- error_code: 302
--- response_headers_like
Location: https://app\.example\.com/settings/integrations\?tiktok=error&reason=[a-z_]+
--- raw_response_headers_unlike: FORGED



=== TEST 3: callback, state with CRLF: to the app, nothing forged
--- request
GET /api/tiktok/callback?code=c&state=s%0d%0aFORGED-910%20alert%20state
--- error_code: 302
--- response_headers
Location: https://app.example.com/settings/integrations?tiktok=error&reason=invalid_state
--- raw_response_headers_unlike: FORGED



=== TEST 4: callback, code with CRLF: to the app, nothing forged
--- request
GET /api/tiktok/callback?code=c%0d%0aFORGED-910%20alert%20code&state=s
--- error_code: 302
--- response_headers
Location: https://app.example.com/settings/integrations?tiktok=error&reason=invalid_state
--- raw_response_headers_unlike: FORGED



=== TEST 5: an X-Request-ID with encoded CRLF: replaced by nginx's
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: carl
X-Request-ID: abc%0d%0aFORGED-910: x
--- error_code: 200
--- response_headers_like
X-Request-ID: [0-9a-f]{32}
--- raw_response_headers_unlike: FORGED



=== TEST 6: a JWT whose sub holds CRLF: 400 user_id, never a user id
--- request
GET /jwt/api/tiktok/status
--- more_headers eval
::jwt({ sub => "carl\r\nFORGED-910 alert sub", exp => time + 600 })
--- error_code: 400
--- response_body_like: "field":"user_id"



=== TEST 7: a JWT whose iss holds LF: 401, logged on one line
--- config eval
$::Config =~ s/secret_env=TIKTOK_910_JWT;/secret_env=TIKTOK_910_JWT issuer=https:\/\/i.example;/r
--- request
GET /jwt/api/tiktok/status
--- more_headers eval
::jwt({ sub => 'carl', iss => "x\nFORGED-910 alert iss", exp => time + 600 })
--- error_code: 401
--- response_body_like: "code":"unauthenticated"



=== TEST 8: an upload option name with CRLF: 400, logged on one line
--- request eval
"POST /api/tiktok/post?privacy_level=SELF_ONLY&x%0d%0aFORGED-910%20alert=1\n"
. $::Video
--- more_headers
X-User-ID: carl
Content-Type: video/mp4
--- error_code: 400
--- response_body_like: "field":"query","message":"Unknown option"



=== TEST 9: a JSON option name with CRLF: 400, logged on one line
--- request eval
"POST /api/tiktok/post\n"
. '{"privacy_level":"SELF_ONLY","x\r\nFORGED-910 alert":1}'
--- more_headers
X-User-ID: carl
Content-Type: application/json
--- error_code: 400
--- response_body_like: "field":"body","message":"Unknown option"



=== TEST 10: a title with CRLF (a caption may have lines): 202, not logged raw
--- request eval
"POST /api/tiktok/post\n" . JSON::PP->new->encode({ privacy_level => 'SELF_ONLY',
    video_url => 'https://media.example.com/v/1.mp4',
    title => "line 1\r\nFORGED-910 alert title" })
--- more_headers
X-User-ID: carl
Content-Type: application/json
--- error_code: 202



=== TEST 11: a pull URL with an encoded CRLF: 400 video_url, logged on one line
--- request eval
"POST /api/tiktok/post\n" . JSON::PP->new->encode({ privacy_level => 'SELF_ONLY',
    video_url => "https://media.example.com/v/1.mp4\r\nFORGED-910 alert url" })
--- more_headers
X-User-ID: carl
Content-Type: application/json
--- error_code: 400
--- response_body_like: "field":"video_url"



=== TEST 12: TikTok's error code, message and log_id with CRLF: 502, one line each
--- config eval
$::Stub
--- request
GET /api/tiktok/videos
--- error_code: 502
--- response_body_unlike: FORGED



=== TEST 13: the same from creator info, for POST /post: 502
--- config eval
$::Stub
--- request eval
"POST /api/tiktok/post\n" . '{"privacy_level":"SELF_ONLY","video_url":"https://media.example.com/v/1.mp4"}'
--- more_headers
X-User-ID: carl
Content-Type: application/json
--- error_code: 502
--- response_body_unlike: FORGED



=== TEST 14: a signed webhook whose event and open_id hold CRLF: 200, one line each
--- request eval
(::hook("post.publish.complete\r\nFORGED-910 alert event",
        '{"publish_id":"p\r\nFORGED-910 alert publish_id"}'))[0]
--- more_headers eval
(::hook("post.publish.complete\r\nFORGED-910 alert event",
        '{"publish_id":"p\r\nFORGED-910 alert publish_id"}'))[1]
--- error_code: 200



=== TEST 15: a signed webhook, failed, with a reason holding CRLF: 200, one line
--- request eval
(::hook("post.publish.failed",
        '{"publish_id":"p2","reason":"x\r\nFORGED-910 alert reason"}'))[0]
--- more_headers eval
(::hook("post.publish.failed",
        '{"publish_id":"p2","reason":"x\r\nFORGED-910 alert reason"}'))[1]
--- error_code: 200



=== TEST 16: connect?redirect_uri=evil: TikTok gets the configured one
--- request
GET /api/tiktok/connect?redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=x
--- error_code: 302
--- response_headers_like
Location: https://localhost:\d+/v2/auth/authorize/\?(?!.*evil).*redirect_uri=https%3A%2F%2Fapp\.example\.com%2Fapi%2Ftiktok%2Fcallback.*



=== TEST 17: connect with Host: evil.example: the configured authorize URL
--- request
GET /api/tiktok/connect
--- more_headers
X-User-ID: carl
Host: evil.example
X-Forwarded-Host: evil.example
--- error_code: 302
--- response_headers_like
Location: https://localhost:\d+/v2/auth/authorize/\?(?!.*evil).*



=== TEST 18: callback?next=evil: to the app
--- request
GET /api/tiktok/callback?code=c&state=s&next=https%3A%2F%2Fevil.example
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 19: callback?redirect_uri=evil: to the app
--- request
GET /api/tiktok/callback?code=c&state=s&redirect_uri=https://evil.example/
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 20: callback?return_url=//evil.example: to the app
--- request
GET /api/tiktok/callback?return_url=//evil.example&error=access_denied
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 21: callback with Host and X-Forwarded-Host evil.example: to the app
--- request
GET /api/tiktok/callback?code=c&state=s
--- more_headers
X-User-ID: carl
Host: evil.example
X-Forwarded-Host: evil.example
X-Forwarded-Proto: http
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 22: callback without a query: to the app
--- request
GET /api/tiktok/callback
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 23: callback with two states: to the app
--- request
GET /api/tiktok/callback?code=c&state=a&state=b
--- error_code: 302
--- response_headers_like eval
$::Error



=== TEST 24: callback without a user: 401 JSON, no redirect at all
--- request
GET /api/tiktok/callback?code=c&state=s&next=//evil.example
--- more_headers
X-Forwarded-Host: evil.example
--- error_code: 401
--- response_headers
!Location
--- response_body_like: "code":"not_connected"



=== TEST 25: callback/ with a path after it: 404 JSON, no redirect
--- request
GET /api/tiktok/callback/evil.example?code=c&state=s
--- error_code: 404
--- response_headers
!Location
--- response_body_like: "code":"not_found"



=== TEST 26: POST callback: 405 JSON, no redirect
--- request
POST /api/tiktok/callback?code=c&state=s&next=//evil.example
--- error_code: 405
--- response_headers
!Location
--- response_body_like: "code":"method_not_allowed"
