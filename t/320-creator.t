# GET /api/tiktok/creator: what a posting form needs, from TikTok's creator
# info, cached per user five minutes and shared with POST /post's check.
# One request and its answer per block; the cache's life across requests
# (and across the two endpoints) in Perl on the same harness after them.

use strict;
use warnings;

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use JSON::PP;

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;
my $path = '/v2/post/publish/creator_info/query/';

$sb->add_user({ open_id => 'creator-320', display_name => "Cora \"C\" \x{dc}",
                username => 'cora.c', avatar_url => 'https://cdn.example/c.jpg',
                duet_disabled => JSON::PP::true,
                max_video_post_duration_sec => 300 });
$sb->add_user({ open_id => 'capped-320', display_name => 'Capped',
                can_post => 'spam_risk_too_many_posts' });

TikTokTest::connect_account($_, open_id => 'creator-320')
    for qw(cora rex hugo ivy lena);
TikTokTest::connect_account('nora', open_id => 'creator-320',
                            scope => 'user.info.basic,video.list');
TikTokTest::connect_account('cap', open_id => 'capped-320');

our $Location = <<"EOF_CONF";
$TikTokTest::ApiLocation
    location /api/tiktok/ {
        tiktok_user_id \$http_x_user_id;
        tiktok_api;
    }
EOF_CONF

TikTokTest::defaults();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('config', $Location) unless defined $block->config;
});

no_shuffle();
run_tests();


# ---- the cache, across requests and endpoints --------------------------

my $ngx = TikTokTest::Nginx->new(name => 'creator', workers => 2,
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub creator {
    my ($user) = @_;
    my $r = $ngx->request(GET => '/api/tiktok/creator',
                          headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub calls { $sb->calls->{$path} // 0 }

my $pull = { video_url => 'https://media.example.com/v/1.mp4',
             privacy_level => 'SELF_ONLY' };

# a miss, then a hit: TikTok asked once
my $before = calls();
my $r = creator('hugo');
is($r->{status}, 200, 'creator info: 200');
is($r->{json}{cached}, JSON::PP::false, '... asked of TikTok');
is($r->{json}{nickname}, "Cora \"C\" \x{dc}", '... the nickname');
$r = creator('hugo');
is($r->{status}, 200, 'again: 200');
is($r->{json}{cached}, JSON::PP::true, '... from the cache');
is(calls(), $before + 1, '... after one creator-info call');

# POST /post's check reads the same entry
my $p = $ngx->post_as(hugo => $pull);
is($p->{status}, 'queued', 'POST /post after GET /creator: queued');
is(calls(), $before + 1, '... without asking TikTok again');

# and GET /creator reads the entry POST /post stored
$before = calls();
$p = $ngx->post_as(ivy => $pull);
is($p->{status}, 'queued', 'POST /post first: queued');
$r = creator('ivy');
is($r->{json}{cached}, JSON::PP::true, 'GET /creator after it: cached');
is(calls(), $before + 1, '... after one creator-info call in all');

# TikTok's 429 opens a back-off window: TikTok is not asked during it
$sb->fault({ endpoint => $path, type => 'rate_limit', retry_after => 120 });
$before = calls();
$r = creator('lena');
is($r->{status}, 429, 'rate-limited by TikTok: 429');
is($r->{headers}{'retry-after'}, 120, '... with its Retry-After');
is($r->{json}{error}{code}, 'rate_limited', '... rate_limited');
$r = creator('lena');
is($r->{status}, 429, 'during the window: 429');
ok($r->{headers}{'retry-after'} > 0 && $r->{headers}{'retry-after'} <= 120,
   '... with the seconds left');
is(calls(), $before + 1, '... TikTok asked once');
is($psql->("SELECT count(*) FROM tiktok.api_errors WHERE user_id = 'lena'"
           . " AND endpoint = '$path' AND tiktok_code = 'rate_limit_exceeded'"),
   '1', '... the 429 recorded once');
$sb->clear_faults;

__DATA__

=== TEST 1: no user id: not connected
--- request
GET /api/tiktok/creator
--- error_code: 401
--- response_body_like: "code":"not_connected"



=== TEST 2: a user without an account is not connected
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: nobody
X-Request-ID: creator-2
--- error_code: 401
--- response_body chomp
{"error":{"code":"not_connected","message":"TikTok not connected","request_id":"creator-2"}}
--- no_error_log
[error]
[alert]



=== TEST 3: a connected creator: the posting form's fields, from TikTok
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
--- error_code: 200
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body chomp
{"nickname":"Cora \"C\" Ü","username":"cora.c","avatar_url":"https://cdn.example/c.jpg","privacy_level_options":["PUBLIC_TO_EVERYONE","MUTUAL_FOLLOW_FRIENDS","SELF_ONLY"],"comment_disabled":false,"duet_disabled":true,"stitch_disabled":false,"max_video_post_duration_sec":300,"cached":false}
--- no_error_log
[error]
[alert]



=== TEST 4: HEAD: the headers only
--- request
HEAD /api/tiktok/creator
--- more_headers
X-User-ID: cora
--- error_code: 200
--- response_body



=== TEST 5: without video.publish: scope_missing, TikTok not asked
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: nora
X-Request-ID: creator-5
--- error_code: 403
--- response_body chomp
{"error":{"code":"scope_missing","message":"Posting failed. Check permissions or try again.","request_id":"creator-5"}}
--- no_error_log
[error]
[alert]



=== TEST 6: a creator who cannot post now: post_failed
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cap
X-Request-ID: creator-6
--- error_code: 403
--- response_body chomp
{"error":{"code":"post_failed","message":"Posting failed. Check permissions or try again.","request_id":"creator-6"}}
--- error_log
creator info says the creator cannot post now, status 200, code "spam_risk_too_many_posts"



=== TEST 7: an account that needs reconnecting
--- sql
UPDATE tiktok.accounts SET needs_reconnect = true WHERE user_id = 'rex';
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: rex
X-Request-ID: creator-7
--- error_code: 401
--- response_body chomp
{"error":{"code":"reconnect_required","message":"Connection failed. Try reconnecting.","request_id":"creator-7"}}



=== TEST 8: TikTok failing: 502 tiktok_unavailable, recorded
--- init
$TikTokTest::Sandbox->fault({ endpoint => '/v2/post/publish/creator_info/query/',
                              type => 'status', status => 500 });
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
X-Request-ID: creator-8
--- error_code: 502
--- response_body chomp
{"error":{"code":"tiktok_unavailable","message":"TikTok is not answering. Try again shortly.","request_id":"creator-8"}}
--- error_log
tiktok: /v2/post/publish/creator_info/query/: TikTok returned an error, status 500, code "internal_error"
tiktok: 502 tiktok_unavailable, request id "creator-8"



=== TEST 9: TikTok's answer lost: 502 tiktok_unavailable
--- init
$TikTokTest::Sandbox->fault({ endpoint => '/v2/post/publish/creator_info/query/',
                              type => 'drop' });
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
--- error_code: 502
--- response_body_like: "code":"tiktok_unavailable"
--- error_log
TikTok could not be reached



=== TEST 10: TikTok's rate limit: 429 with TikTok's Retry-After
--- init
$TikTokTest::Sandbox->fault({ endpoint => '/v2/post/publish/creator_info/query/',
                              type => 'rate_limit', retry_after => 45 });
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
X-Request-ID: creator-10
--- error_code: 429
--- response_headers
Retry-After: 45
--- response_body chomp
{"error":{"code":"rate_limited","message":"TikTok's rate limit was reached. Try again later.","request_id":"creator-10"}}
--- error_log
rate limited by TikTok



=== TEST 11: a token TikTok refused: refreshed, asked again once
--- init
$TikTokTest::Sandbox->fault({ endpoint => '/v2/post/publish/creator_info/query/',
                              type => 'token_invalid' });
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
--- error_code: 200
--- response_body_like: "nickname":"Cora \\"C\\" Ü".*"cached":false
--- no_error_log
[alert]



=== TEST 12: TikTok's malformed answer: 502
--- init
$TikTokTest::Sandbox->fault({ endpoint => '/v2/post/publish/creator_info/query/',
                              type => 'malformed_json' });
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
--- error_code: 502
--- response_body_like: "code":"tiktok_unavailable"
--- error_log
malformed answer from TikTok



=== TEST 13: only GET
--- request
POST /api/tiktok/creator
--- more_headers
X-User-ID: cora
--- error_code: 405
--- response_headers
Allow: GET
--- response_body_like: "code":"method_not_allowed"



=== TEST 14: the database unreachable is a JSON 503
--- http_config
    tiktok_client_key          k;
    tiktok_client_secret_env   TIKTOK_CLIENT_SECRET;
    tiktok_token_key_env       TIKTOK_TOKEN_KEY;
    tiktok_redirect_uri        https://app.example.com/api/tiktok/callback;
    tiktok_app_return_url      https://app.example.com/settings;
    tiktok_postgres            "host=127.0.0.1 port=1 dbname=tiktok user=tiktok_app" pool=2;
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: cora
X-Request-ID: creator-14
--- error_code: 503
--- response_body chomp
{"error":{"code":"database_unavailable","message":"Service temporarily unavailable","request_id":"creator-14"}}
--- error_log
tiktok: 503 database_unavailable, request id "creator-14"
