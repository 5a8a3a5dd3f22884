# POST /post (and the dispatcher) against hostile input, one request and
# its answer each: user ids that are not UTF-8 on every endpoint, bodies
# over client_max_body_size (plain and chunked) answered as JSON 413, and
# media types with parameters as RFC 9110 writes them.  The multi-step
# cases (what was stored, spooled, asked of TikTok) are in t/515.

use TikTokTest;
use TikTokMedia;
use Test::Nginx::Socket 'no_plan';

our $Json = '{"video_url":"https://media.example.com/v/1.mp4",'
          . '"privacy_level":"SELF_ONLY","title":"hostile"}';
our $Video = TikTokMedia::mp4(seconds => 7, mdat => 'c' x 20000);

# A request as the bytes a client sends, on its own connection:
# req(METHOD, PATH, user => U, type => CT, body => B, chunk => N)
sub req {
    my ($method, $path, %o) = @_;

    my $body = $o{body} // '';
    my $head = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\nX-User-ID: $o{user}\r\n"
             . "Content-Type: " . ($o{type} // 'application/json') . "\r\n";

    if ($o{chunk}) {
        my $out = '';
        while (length $body) {
            my $part = substr($body, 0, $o{chunk}, '');
            $out .= sprintf("%x\r\n%s\r\n", length $part, $part);
        }
        return "${head}Transfer-Encoding: chunked\r\n\r\n${out}0\r\n\r\n";
    }

    return "${head}Content-Length: " . length($body) . "\r\n\r\n$body";
}

TikTokTest::connect_account('hal');

TikTokTest::defaults(
    http => "    tiktok_upload_spool $TikTokTest::Tmp/spool;\n",
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        client_body_buffer_size 1k;
        tiktok_api;
    }
    location /small/api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        client_max_body_size 8k;
        tiktok_api;
    }
CONF
    # no alert, no crashed worker
    no_error_log => [qr/\[(?:alert|crit|emerg)\]|signal \d+/]);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: GET /api/tiktok/status, X-User-ID fffe75736572: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/status', user => "\xff\xfeuser", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 2: GET /api/tiktok/status, X-User-ID 636166c3: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/status', user => "caf\xc3", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 3: GET /api/tiktok/status, X-User-ID eda08078: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/status', user => "\xed\xa0\x80x", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 4: GET /api/tiktok/status, X-User-ID c0af78: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/status', user => "\xc0\xafx", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 5: GET /api/tiktok/videos, X-User-ID fffe75736572: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/videos', user => "\xff\xfeuser", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 6: GET /api/tiktok/videos, X-User-ID 636166c3: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/videos', user => "caf\xc3", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 7: GET /api/tiktok/videos, X-User-ID eda08078: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/videos', user => "\xed\xa0\x80x", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 8: GET /api/tiktok/videos, X-User-ID c0af78: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/videos', user => "\xc0\xafx", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 9: GET /api/tiktok/posts, X-User-ID fffe75736572: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/posts', user => "\xff\xfeuser", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 10: GET /api/tiktok/posts, X-User-ID 636166c3: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/posts', user => "caf\xc3", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 11: GET /api/tiktok/posts, X-User-ID eda08078: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/posts', user => "\xed\xa0\x80x", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 12: GET /api/tiktok/posts, X-User-ID c0af78: 400 user_id
--- raw_request eval
::req('GET', '/api/tiktok/posts', user => "\xc0\xafx", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 13: POST /api/tiktok/post, X-User-ID fffe75736572: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/post', user => "\xff\xfeuser", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 14: POST /api/tiktok/post, X-User-ID 636166c3: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/post', user => "caf\xc3", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 15: POST /api/tiktok/post, X-User-ID eda08078: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/post', user => "\xed\xa0\x80x", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 16: POST /api/tiktok/post, X-User-ID c0af78: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/post', user => "\xc0\xafx", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 17: POST /api/tiktok/disconnect, X-User-ID fffe75736572: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/disconnect', user => "\xff\xfeuser", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 18: POST /api/tiktok/disconnect, X-User-ID 636166c3: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/disconnect', user => "caf\xc3", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 19: POST /api/tiktok/disconnect, X-User-ID eda08078: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/disconnect', user => "\xed\xa0\x80x", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 20: POST /api/tiktok/disconnect, X-User-ID c0af78: 400 user_id
--- raw_request eval
::req('POST', '/api/tiktok/disconnect', user => "\xc0\xafx", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 21: DELETE /api/tiktok/posts/00000000-0000-0000-0000-000000000000, X-User-ID fffe75736572: 400 user_id
--- raw_request eval
::req('DELETE', '/api/tiktok/posts/00000000-0000-0000-0000-000000000000', user => "\xff\xfeuser", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 22: DELETE /api/tiktok/posts/00000000-0000-0000-0000-000000000000, X-User-ID 636166c3: 400 user_id
--- raw_request eval
::req('DELETE', '/api/tiktok/posts/00000000-0000-0000-0000-000000000000', user => "caf\xc3", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 23: DELETE /api/tiktok/posts/00000000-0000-0000-0000-000000000000, X-User-ID eda08078: 400 user_id
--- raw_request eval
::req('DELETE', '/api/tiktok/posts/00000000-0000-0000-0000-000000000000', user => "\xed\xa0\x80x", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 24: DELETE /api/tiktok/posts/00000000-0000-0000-0000-000000000000, X-User-ID c0af78: 400 user_id
--- raw_request eval
::req('DELETE', '/api/tiktok/posts/00000000-0000-0000-0000-000000000000', user => "\xc0\xafx", body => '{}')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"user_id","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 25: a JSON body over client_max_body_size: JSON 413 saying the limit
--- raw_request eval
::req('POST', '/small/api/tiktok/post?privacy_level=SELF_ONLY', user => 'hal',
      type => 'application/json', body => '{' . (' ' x 20000) . '}')
--- error_code: 413
--- response_headers_like
Content-Type: application/json.*
--- response_body_like chomp
^\{"error":\{"code":"body_too_large","field":"body","message":"The body is larger than client_max_body_size \(8192 bytes\)","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 26: a chunked JSON body over client_max_body_size: JSON 413 saying the limit
--- raw_request eval
::req('POST', '/small/api/tiktok/post?privacy_level=SELF_ONLY', user => 'hal',
      type => 'application/json', body => '{' . (' ' x 20000) . '}', chunk => 1000)
--- error_code: 413
--- response_headers_like
Content-Type: application/json.*
--- response_body_like chomp
^\{"error":\{"code":"body_too_large","field":"body","message":"The body is larger than client_max_body_size \(8192 bytes\)","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 27: an upload over client_max_body_size: JSON 413 saying the limit
--- raw_request eval
::req('POST', '/small/api/tiktok/post?privacy_level=SELF_ONLY', user => 'hal',
      type => 'video/mp4', body => '{' . (' ' x 20000) . '}')
--- error_code: 413
--- response_headers_like
Content-Type: application/json.*
--- response_body_like chomp
^\{"error":\{"code":"body_too_large","field":"body","message":"The body is larger than client_max_body_size \(8192 bytes\)","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 28: a chunked upload over client_max_body_size: JSON 413 saying the limit
--- raw_request eval
::req('POST', '/small/api/tiktok/post?privacy_level=SELF_ONLY', user => 'hal',
      type => 'video/mp4', body => '{' . (' ' x 20000) . '}', chunk => 4000)
--- error_code: 413
--- response_headers_like
Content-Type: application/json.*
--- response_body_like chomp
^\{"error":\{"code":"body_too_large","field":"body","message":"The body is larger than client_max_body_size \(8192 bytes\)","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 29: Content-Type 'application/json ; charset=utf-8': 202
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => "application/json ; charset=utf-8",
      body => $::Json)
--- error_code: 202
--- response_body_like chomp
"post_id":"[0-9a-f-]{36}"



=== TEST 30: Content-Type 'application/json<TAB>;<TAB>charset=UTF-8': 202
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => "application/json\t;\tcharset=UTF-8",
      body => $::Json)
--- error_code: 202
--- response_body_like chomp
"post_id":"[0-9a-f-]{36}"



=== TEST 31: Content-Type 'Application/JSON;charset=utf-8': 202
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => "Application/JSON;charset=utf-8",
      body => $::Json)
--- error_code: 202
--- response_body_like chomp
"post_id":"[0-9a-f-]{36}"



=== TEST 32: Content-Type 'application/json; charset="utf-8"': 202
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => "application/json; charset=\"utf-8\"",
      body => $::Json)
--- error_code: 202
--- response_body_like chomp
"post_id":"[0-9a-f-]{36}"



=== TEST 33: Content-Type 'video/MP4 ; codecs="avc1"': an upload, 202
--- raw_request eval
::req('POST', '/api/tiktok/post?privacy_level=SELF_ONLY', user => 'hal',
      type => 'video/MP4 ; codecs="avc1"', body => $::Video)
--- error_code: 202
--- response_body_like chomp
"post_id":"[0-9a-f-]{36}"



=== TEST 34: Content-Type 'application/jsonx': 415 Content-Type
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => 'application/jsonx', body => $::Json)
--- error_code: 415
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"Content-Type","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 35: Content-Type 'application/json x': 415 Content-Type
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => 'application/json x', body => $::Json)
--- error_code: 415
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"Content-Type","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 36: Content-Type 'application': 415 Content-Type
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => 'application', body => $::Json)
--- error_code: 415
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"Content-Type","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 37: Content-Type '; x': 415 Content-Type
--- raw_request eval
::req('POST', '/api/tiktok/post', user => 'hal', type => '; x', body => $::Json)
--- error_code: 415
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"Content-Type","message":"[^"]+","request_id":"[0-9a-f]{32}"\}\}$
