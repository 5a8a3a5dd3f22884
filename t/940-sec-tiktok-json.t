# Security battery: TikTok answering with hostile JSON (issue 13).  The
# sandbox reshapes its real answer (its "huge", "deep" and "confused"
# faults): 2 MB beyond tiktok_api_max_response, lists grown to 10,000
# items, 10,000 nested arrays, every value of the wrong type, the error
# envelope of the wrong type.  Each endpoint the module reads during a
# request answers with a clean JSON error (502, or the per-video "Metrics
# unavailable" the contract gives metrics), never a crash, never a
# half-read value passed on.  Each block has a user of its own, so that
# no cache entry or back-off window of an earlier block answers for it.
# The OAuth token exchange and user info behind /callback, and the
# publisher's init and status answers, take several steps: in Perl after
# the blocks.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use JSON::PP ();
use HTTP::Tiny;
use URI::Escape ();

our $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

our $Post = "POST /api/tiktok/post\n"
          . '{"video_url":"https://media.example.com/v/1.mp4",'
          . '"privacy_level":"SELF_ONLY","title":"hostile answer"}';

our %Path = (videos => '/v2/video/list/', metrics => '/v2/video/query/',
             creator => '/v2/post/publish/creator_info/query/');

TikTokTest::connect_account("u$_") for 1 .. 40;

# the fault for the next call to this endpoint
sub hostile {
    my ($endpoint, %f) = @_;
    $sb->clear_faults;
    $sb->fault({ endpoint => $Path{$endpoint}, %f });
}

our $Error = '^\{"error":\{"code":"[a-z_]+","message":"[^"]+",'
           . '"request_id":"[0-9a-f]{32}"\}\}$';

TikTokTest::defaults(
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF
    no_error_log => [qr/\[(?:alert|crit|emerg)\]|signal \d+/]);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('timeout', 10) unless defined $block->timeout;
});

no_shuffle();
run_tests();

$sb->clear_faults;

__DATA__

=== TEST 1: videos: 2 MB beyond tiktok_api_max_response: 502
--- init
::hostile(videos => type => 'huge', elements => 0, bytes => 2_000_000)
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u1
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 2: videos: 10,000 videos in one page: 502
--- init
::hostile(videos => type => 'huge', elements => 10000)
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u2
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 3: videos: 10,000 nested arrays: 502
--- init
::hostile(videos => type => 'deep')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u3
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 4: videos: every value of the wrong type: 502
--- init
::hostile(videos => type => 'confused')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u4
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 5: videos: "videos" an object: 502
--- init
::hostile(videos => type => 'confused', key => 'videos')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u5
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 6: videos: the 19-digit ids as numbers: 200, still exact strings
--- init
::hostile(videos => type => 'confused', key => 'id')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u6
--- error_code: 200
--- response_body_like: ^\{"videos":\[\{"id":"7300000000000000025",



=== TEST 7: videos: "error" a list: 502
--- init
::hostile(videos => type => 'confused', key => 'error')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u7
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 8: videos: error.code an object: 502
--- init
::hostile(videos => type => 'confused', key => 'code')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u8
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 9: videos: has_more a string: 502
--- init
::hostile(videos => type => 'confused', key => 'has_more')
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u9
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 10: metrics: 2 MB beyond tiktok_api_max_response: 502
--- init
::hostile(metrics => type => 'huge', elements => 0, bytes => 2_000_000)
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u10
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 11: metrics: 10,000 nested arrays: 502
--- init
::hostile(metrics => type => 'deep')
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u11
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 12: metrics: every value of the wrong type: Metrics unavailable
--- init
::hostile(metrics => type => 'confused')
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u12
--- error_code: 200
--- response_body_like chomp
^\{"metrics":\{"7300000000000000001":\{"error":"Metrics unavailable"\}\}



=== TEST 13: metrics: the counts strings: Metrics unavailable
--- init
::hostile(metrics => type => 'confused', key => 'view_count')
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u13
--- error_code: 200
--- response_body_like chomp
^\{"metrics":\{"7300000000000000001":\{"error":"Metrics unavailable"\}\}



=== TEST 14: metrics: the same video 10,000 times: one answer
--- init
::hostile(metrics => type => 'huge', elements => 10000)
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u14
--- error_code: 200
--- response_body_like chomp
^\{"metrics":\{"7300000000000000001":\{"view_count":\d+,[^{}]*\}\},"cached":false\}$



=== TEST 15: metrics: "error" a list: 502
--- init
::hostile(metrics => type => 'confused', key => 'error')
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u15
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 16: creator: 2 MB beyond tiktok_api_max_response: 502
--- init
::hostile(creator => type => 'huge', elements => 0, bytes => 2_000_000)
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u16
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 17: creator: 10,000 privacy levels (within the 1m limit): 200
--- init
::hostile(creator => type => 'huge', elements => 10000)
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u17
--- error_code: 200
--- response_body_like: "privacy_level_options":\["PUBLIC_TO_EVERYONE","MUTUAL_FOLLOW_FRIENDS","SELF_ONLY","PUBLIC_TO_EVERYONE",



=== TEST 18: creator: 10,000 nested arrays: 502
--- init
::hostile(creator => type => 'deep')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u18
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 19: creator: every value of the wrong type: 502
--- init
::hostile(creator => type => 'confused')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u19
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 20: creator: max_video_post_duration_sec a string: 502
--- init
::hostile(creator => type => 'confused', key => 'max_video_post_duration_sec')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u20
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 21: creator: comment_disabled a string: 502
--- init
::hostile(creator => type => 'confused', key => 'comment_disabled')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u21
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 22: creator: "error" a list: 502
--- init
::hostile(creator => type => 'confused', key => 'error')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u22
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 23: POST /post: creator info 2 MB: 502, nothing stored
--- init
::hostile(creator => type => 'huge', elements => 0, bytes => 2_000_000)
--- request eval
$::Post
--- more_headers
X-User-ID: u23
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 24: POST /post: creator info 10,000 deep: 502
--- init
::hostile(creator => type => 'deep')
--- request eval
$::Post
--- more_headers
X-User-ID: u24
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 25: POST /post: creator info all of the wrong type: 502
--- init
::hostile(creator => type => 'confused')
--- request eval
$::Post
--- more_headers
X-User-ID: u25
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 26: POST /post: stitch_disabled a string: 502
--- init
::hostile(creator => type => 'confused', key => 'stitch_disabled')
--- request eval
$::Post
--- more_headers
X-User-ID: u26
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 27: after all of that, the same users are served: 200
--- init
$::sb->clear_faults
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u4
--- error_code: 200
--- response_body_like: "videos":\[\{"id":"73\d{17}"



=== TEST 28: nothing of the refused posts was stored
--- request
GET /api/tiktok/posts
--- more_headers
X-User-ID: u23
--- error_code: 200
--- response_body_like: "posts"\s*:\s*\[\]
