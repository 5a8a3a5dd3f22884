# Security battery: one user probing another's posts, states, videos and
# metrics by id (issue 13).  Every probe of what is someone else's gets
# exactly the answer of an id that does not exist, byte for byte but for
# the request id: the same status, code and message, no 403, nothing
# changed.  Row-level security does the refusing; these blocks show that
# nothing above it tells the two cases apart.  Cited, not repeated: a
# malformed post id and GET of another's post (t/501), RLS itself (t/130).

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use TikTokOneNginx;

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

$sb->add_user({ open_id => 'bob-950', display_name => 'Bob',
                video_count => 3 });
our $BobVideo = $sb->user('bob-950')->{videos}[0]{id};
our $Nobody = '7399999999999999999';

TikTokTest::connect_account('bob', open_id => 'bob-950',
    scope => 'user.info.basic,video.list,video.publish,video.upload');
TikTokTest::connect_account('alice',
    scope => 'user.info.basic,video.list,video.publish,video.upload');

# bob's posts: a scheduled video, a scheduled photo post, a draft
our %Bob = (video => '0b9f2a5e-6f1c-4d38-9a43-5d2e7c1f8a61',
            photo => '0b9f2a5e-6f1c-4d38-9a43-5d2e7c1f8a62',
            draft => '0b9f2a5e-6f1c-4d38-9a43-5d2e7c1f8a63');
our $Missing = '0b9f2a5e-6f1c-4d38-9a43-5d2e7c1f8a69';

$psql->(<<"SQL");
INSERT INTO tiktok.posts (id, user_id, status, source, video_url, post_info,
                          schedule_at)
VALUES ('$Bob{video}', 'bob', 'scheduled', 'PULL_FROM_URL',
        'https://media.example.com/b.mp4', '{"title":"bob video"}',
        now() + interval '1 day');
INSERT INTO tiktok.posts (id, user_id, status, source, media_type,
                          photo_urls, post_info, schedule_at)
VALUES ('$Bob{photo}', 'bob', 'scheduled', 'PULL_FROM_URL', 'PHOTO',
        '["https://media.example.com/p/1.jpg"]', '{"title":"bob photo"}',
        now() + interval '1 day');
INSERT INTO tiktok.posts (id, user_id, status, source, mode, video_url,
                          post_info, schedule_at)
VALUES ('$Bob{draft}', 'bob', 'scheduled', 'PULL_FROM_URL', 'draft',
        'https://media.example.com/d.mp4', '{}', now() + interval '1 day');
INSERT INTO tiktok.oauth_states (state_hash, user_id, expires_at)
VALUES (sha256('bobs-own-state-950'), 'bob', now() + interval '10 minutes');
SQL

# the one answer for a post that is not the caller's
our $NotFound = '^\{"error":\{"code":"not_found","message":"Post not found",'
              . '"request_id":"[0-9a-f]{32}"\}\}$';

our $Config = $ApiLocation . <<'CONF';
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF

TikTokTest::defaults(
    more_headers => "X-User-ID: alice\n",
    no_error_log => [qr/\[(?:alert|crit|emerg)\]|signal \d+/]);

TikTokOneNginx::config($Config);

no_shuffle();
run_tests();

is($psql->("SELECT string_agg(status, ',' ORDER BY id) FROM tiktok.posts"
           . " WHERE user_id = 'bob'"), 'scheduled,scheduled,scheduled',
   "bob's posts are all still scheduled");
is($psql->("SELECT count(*) FROM tiktok.oauth_states WHERE user_id = 'bob'"),
   1, "... and bob's state still there, for bob to use");

__DATA__

=== TEST 1: GET bob's video post: 404 as for none
--- request eval
"GET /api/tiktok/posts/$::Bob{video}"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 2: GET bob's photo post: 404 as for none
--- request eval
"GET /api/tiktok/posts/$::Bob{photo}"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 3: GET bob's draft: 404 as for none
--- request eval
"GET /api/tiktok/posts/$::Bob{draft}"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 4: GET a post nobody has: the same 404
--- request eval
"GET /api/tiktok/posts/$::Missing"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 5: DELETE bob's video post: 404 as for none
--- request eval
"DELETE /api/tiktok/posts/$::Bob{video}"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 6: DELETE bob's photo post: 404 as for none
--- request eval
"DELETE /api/tiktok/posts/$::Bob{photo}"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 7: DELETE bob's draft: 404 as for none
--- request eval
"DELETE /api/tiktok/posts/$::Bob{draft}"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 8: DELETE a post nobody has: the same 404
--- request eval
"DELETE /api/tiktok/posts/$::Missing"
--- error_code: 404
--- response_body_like eval
$::NotFound



=== TEST 9: alice's list has none of bob's posts
--- request
GET /api/tiktok/posts
--- error_code: 200
--- response_body_like chomp
^\{"posts"\s*:\s*\[\],\s*"cursor"\s*:\s*null,\s*"has_more"\s*:\s*false\}$



=== TEST 10: bob still sees his video post, scheduled
--- request eval
"GET /api/tiktok/posts/$::Bob{video}"
--- more_headers
X-User-ID: bob
--- error_code: 200
--- response_body_like: "status"\s*:\s*"scheduled"



=== TEST 11: bob reads his video's metrics (now in the shared cache)
--- request eval
"GET /api/tiktok/metrics?video_id=$::BobVideo"
--- more_headers
X-User-ID: bob
--- error_code: 200
--- response_body_like eval
"^\\{\"metrics\":\\{\"$::BobVideo\":\\{\"view_count\":\\d+"



=== TEST 12: alice asks for bob's video's metrics: unavailable
--- request eval
"GET /api/tiktok/metrics?video_id=$::BobVideo"
--- error_code: 200
--- response_body_like eval
"^\\{\"metrics\":\\{\"$::BobVideo\":\\{\"error\":\"Metrics unavailable\"\\}\\},\"cached\":false\\}\$"



=== TEST 13: alice asks for a video nobody has: the same answer
--- request eval
"GET /api/tiktok/metrics?video_id=$::Nobody"
--- error_code: 200
--- response_body_like eval
"^\\{\"metrics\":\\{\"$::Nobody\":\\{\"error\":\"Metrics unavailable\"\\}\\},\"cached\":false\\}\$"



=== TEST 14: alice's video list has none of bob's videos
--- request
GET /api/tiktok/videos?max_count=20
--- error_code: 200
--- response_body_unlike eval
"\"id\":\"$::BobVideo\""



=== TEST 15: alice completes a connect with bob's state: as an unknown state
--- request
GET /api/tiktok/callback?code=abc&state=bobs-own-state-950
--- error_code: 302
--- response_headers
Location: https://app.example.com/settings/integrations?tiktok=error&reason=invalid_state



=== TEST 16: and with a state nobody has: the same redirect
--- request
GET /api/tiktok/callback?code=abc&state=nobodys-state-950
--- error_code: 302
--- response_headers
Location: https://app.example.com/settings/integrations?tiktok=error&reason=invalid_state
