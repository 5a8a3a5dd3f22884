# Security battery: SQL metacharacters and NULs in every parameter (issue
# 13).  Every statement is parameterised, so a value full of quotes,
# semicolons and dollar quotes is data: it is stored and returned
# verbatim, and nothing in it runs.  A NUL cannot be stored in a text
# column at all: it is refused as a 400 naming the field before anything
# is written.  One request and its answer per block; the blocks that read
# back what earlier ones stored come after them (no_shuffle).
#
# Cited, not repeated: %00 in an upload's query string (t/515), user ids
# that are not UTF-8 (t/512), malformed post ids (t/501).

use TikTokTest;
use TikTokMedia;
use Test::Nginx::Socket 'no_plan';
use TikTokOneNginx;
use JSON::PP ();

our $Url = 'https://media.example.com/v/1.mp4';

# what a textbook injection looks like in each quoting style PostgreSQL has
our @Evil = (
    q{Robert'); DROP TABLE tiktok.posts; --},
    q{' OR '1'='1},
    q{\'; SELECT pg_sleep(10); --},
    q{$$; DROP SCHEMA tiktok CASCADE; $$},
    q{"; COMMIT; DELETE FROM tiktok.accounts; --},
    q{E'\\x00' || chr(0) || $1 || %s%n},
);

# the user whose own id is an injection, connected as /callback would
our $EvilUser = q{u'); DELETE FROM tiktok.accounts; --};

our $Video = TikTokMedia::mp4(seconds => 7, mdat => 'v' x 4000);

sub json {
    return JSON::PP->new->utf8->canonical->encode({@_});
}

# a post with its privacy level and these fields
sub post {
    return "POST /api/tiktok/post\n"
        . json(video_url => $Url, privacy_level => 'SELF_ONLY', @_);
}

# a string as JSON writes it inside a string, as a regex
sub in_json {
    my ($s) = @_;
    my $j = JSON::PP->new->encode([$s]);
    $j =~ s/^\["|"\]$//g;
    return quotemeta $j;
}

TikTokTest::connect_account('quinn',
    scope => 'user.info.basic,video.list,video.publish,video.upload');
TikTokTest::connect_account($EvilUser);

our $Config = $ApiLocation . <<'CONF';
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF

TikTokTest::defaults(
    more_headers => "X-User-ID: quinn\nContent-Type: application/json\n",
    no_error_log => [qr/\[(?:alert|crit|emerg)\]|signal \d+/]);

TikTokOneNginx::config($Config);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: title with every injection: 202, one post each
--- request eval
[ map { ::post(title => $_) } @::Evil ]
--- error_code eval
[ (202) x @::Evil ]
--- response_body_like eval
[ ('"status":"queued"') x @::Evil ]



=== TEST 2: video_url with an injection in its query: 202
--- request eval
::post(video_url => "$::Url?q=');DROP+TABLE+tiktok.posts;--")
--- error_code: 202
--- response_body_like: "status":"queued"



=== TEST 3: photo_urls with an injection in one: 202
--- request eval
"POST /api/tiktok/post\n" . ::json(media_type => 'PHOTO',
    privacy_level => 'SELF_ONLY', title => 'photos',
    photo_urls => ['https://media.example.com/p/1.jpg',
                   "https://media.example.com/p/2.jpg?';DELETE+FROM+x;--"])
--- error_code: 202
--- response_body_like: "status":"queued"



=== TEST 4: a draft whose video_url holds an injection: 202
--- request eval
"POST /api/tiktok/post\n" . ::json(mode => 'draft',
    video_url => "$::Url?x=\$\$;COMMIT;\$\$")
--- error_code: 202
--- response_body_like: "status":"queued"



=== TEST 5: an upload whose title (query string) is an injection: 202
--- request eval
"POST /api/tiktok/post?privacy_level=SELF_ONLY"
. "&title=%27%29%3B+DROP+TABLE+tiktok.posts%3B+--\n" . $::Video
--- more_headers
X-User-ID: quinn
Content-Type: video/mp4
--- error_code: 202
--- response_body_like: "status":"queued"



=== TEST 6: GET /posts: every value above, verbatim
--- request
GET /api/tiktok/posts?limit=100
--- error_code: 200
--- response_body_like eval
[ CORE::join '', map { '(?=.*"title"\s*:\s*"' . ::in_json($_) . '")' }
      @::Evil, q{'); DROP TABLE tiktok.posts; --} ]



=== TEST 7: GET /posts: the URLs verbatim too
--- request
GET /api/tiktok/posts?limit=100
--- error_code: 200
--- response_body_like eval
[ '(?=.*' . ::in_json("$::Url?q=');DROP+TABLE+tiktok.posts;--") . ')'
  . '(?=.*' . ::in_json("https://media.example.com/p/2.jpg?';DELETE+FROM+x;--")
  . ')(?=.*' . ::in_json("$::Url?x=\$\$;COMMIT;\$\$") . ')' ]



=== TEST 8: privacy_level with an injection: 400 privacy_level
--- request eval
::post(privacy_level => q{SELF_ONLY' OR '1'='1})
--- error_code: 400
--- response_body_like: "field":"privacy_level"



=== TEST 9: schedule_at with an injection: 400 schedule_at
--- request eval
::post(schedule_at => q{2031-01-01T00:00:00Z'; DROP TABLE tiktok.posts; --})
--- error_code: 400
--- response_body_like: "field":"schedule_at"



=== TEST 10: mode with an injection: 400 mode
--- request eval
::post(mode => q{draft'--})
--- error_code: 400
--- response_body_like: "field":"mode"



=== TEST 11: media_type with an injection: 400 media_type
--- request eval
::post(media_type => q{PHOTO' OR 1=1--})
--- error_code: 400
--- response_body_like: "field":"media_type"



=== TEST 12: a NUL (\u0000) in the title: 400 title
--- request eval
::post(title => "before\0after")
--- error_code: 400
--- response_body_like: "field":"title","message":"Must not contain NUL characters"



=== TEST 13: a NUL in video_url: 400 video_url
--- request eval
::post(video_url => "$::Url\0.mp4")
--- error_code: 400
--- response_body_like: "field":"video_url","message":"Must not contain NUL characters"



=== TEST 14: a NUL in a photo URL: 400 photo_urls
--- request eval
"POST /api/tiktok/post\n" . ::json(media_type => 'PHOTO',
    privacy_level => 'SELF_ONLY',
    photo_urls => ["https://media.example.com/p/1.jpg\0"])
--- error_code: 400
--- response_body_like: "field":"photo_urls","message":"Must not contain NUL characters"



=== TEST 15: a NUL in a photo post's description: 400 description
--- request eval
"POST /api/tiktok/post\n" . ::json(media_type => 'PHOTO',
    privacy_level => 'SELF_ONLY', description => "a\0b",
    photo_urls => ['https://media.example.com/p/1.jpg'])
--- error_code: 400
--- response_body_like: "field":"description","message":"Must not contain NUL characters"



=== TEST 16: a NUL in schedule_at: 400 schedule_at
--- request eval
::post(schedule_at => "2031-01-01T00:00:00Z\0")
--- error_code: 400
--- response_body_like: "field":"schedule_at","message":"Must not contain NUL characters"



=== TEST 17: a NUL in a key: 400, nothing stored
--- request eval
"POST /api/tiktok/post\n"
. '{"video_url":"' . $::Url . '","privacy_level":"SELF_ONLY",'
. '"title\u0000":"x"}'
--- error_code: 400
--- response_body_like: "field":"body","message":"A key must not contain NUL characters"



=== TEST 18: GET /posts: none of the refused ones stored
--- request
GET /api/tiktok/posts?limit=100
--- error_code: 200
--- response_body_unlike: \\u0000|OR 1=1|draft'



=== TEST 19: posts?cursor with an injection: 400 cursor
--- request
GET /api/tiktok/posts?cursor=1%27%20OR%20%271%27=%271
--- error_code: 400
--- response_body_like: "field":"cursor"



=== TEST 20: posts?limit with an injection: 400 limit
--- request
GET /api/tiktok/posts?limit=1;DELETE%20FROM%20tiktok.posts
--- error_code: 400
--- response_body_like: "field":"limit"



=== TEST 21: posts/{id} an injection: 404 Post not found
--- request
GET /api/tiktok/posts/'%20OR%20'1'='1
--- error_code: 404
--- response_body_like chomp
^\{"error":\{"code":"not_found","message":"Post not found","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 22: DELETE posts/{id} a UUID and an injection: 404 Post not found
--- request
DELETE /api/tiktok/posts/00000000-0000-0000-0000-000000000000';DELETE%20FROM%20tiktok.posts;--
--- error_code: 404
--- response_body_like chomp
^\{"error":\{"code":"not_found","message":"Post not found","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 23: videos?cursor with an injection: 400 cursor
--- request
GET /api/tiktok/videos?cursor=0%20OR%201=1
--- error_code: 400
--- response_body_like: "field":"cursor"



=== TEST 24: videos?max_count with an injection: 400 max_count
--- request
GET /api/tiktok/videos?max_count=20;--
--- error_code: 400
--- response_body_like: "field":"max_count"



=== TEST 25: metrics?video_id with an injection: 400 video_id
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001%27%20OR%20%271%27=%271
--- error_code: 400
--- response_body_like: "field":"video_id"



=== TEST 26: metrics?video_id with a NUL: 400 video_id
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001%00
--- error_code: 400
--- response_body_like: "field":"video_id"



=== TEST 27: callback's state and code injections: to the app, tiktok=error
--- request
GET /api/tiktok/callback?code=x%27%3BDROP%20TABLE%20tiktok.accounts%3B--&state=%27%20OR%20%271%27%3D%271
--- error_code: 302
--- response_headers_like
Location: https://app\.example\.com/settings/integrations\?tiktok=error&reason=[a-z_]+



=== TEST 28: an X-User-ID that is an injection: only its own (empty) posts
--- request
GET /api/tiktok/posts
--- more_headers
X-User-ID: x' OR '1'='1
--- error_code: 200
--- response_body_like chomp
^\{"posts"\s*:\s*\[\],\s*"cursor"\s*:\s*null,\s*"has_more"\s*:\s*false\}$



=== TEST 29: a user whose id is an injection: connected, as themself
--- request
GET /api/tiktok/status
--- more_headers eval
"X-User-ID: $::EvilUser"
--- error_code: 200
--- response_body_like: "connected":true



=== TEST 30: that user posts: 202
--- request eval
::post(title => 'mine')
--- more_headers eval
"X-User-ID: $::EvilUser\nContent-Type: application/json"
--- error_code: 202
--- response_body_like: "status":"queued"



=== TEST 31: and sees exactly that post
--- request
GET /api/tiktok/posts
--- more_headers eval
"X-User-ID: $::EvilUser"
--- error_code: 200
--- response_body_like: ^\{"posts"\s*:\s*\[\{[^\[\]]*"title"\s*:\s*"mine"[^\[\]]*\}\],



=== TEST 32: an X-Request-ID that is an injection: replaced by nginx's
--- request
GET /api/tiktok/status
--- more_headers
X-User-ID: quinn
X-Request-ID: 1';DROP TABLE tiktok.api_errors;--
--- error_code: 200
--- response_headers_like
X-Request-ID: [0-9a-f]{32}



=== TEST 33: the accounts are all still there
--- request
GET /api/tiktok/status
--- error_code: 200
--- response_body_like: "connected":true



=== TEST 34: disable_comment an injection: 400 disable_comment
--- request eval
::post(disable_comment => q{true'); DELETE FROM tiktok.posts; --})
--- error_code: 400
--- response_body_like: "field":"disable_comment","message":"Must be true or false"



=== TEST 35: an upload's video_cover_timestamp_ms an injection: 400
--- request eval
"POST /api/tiktok/post?privacy_level=SELF_ONLY"
. "&video_cover_timestamp_ms=1%3BDROP+TABLE+tiktok.posts\n" . $::Video
--- more_headers
X-User-ID: quinn
Content-Type: video/mp4
--- error_code: 400
--- response_body_like: "field":"video_cover_timestamp_ms"
