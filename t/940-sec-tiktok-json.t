# Security battery: TikTok answering with hostile JSON (issue 13).  The
# sandbox reshapes its real answer (its "huge", "deep" and "confused"
# faults): 2 MB beyond tiktok_api_max_response, lists grown to 10,000
# items, 10,000 nested arrays, every value of the wrong type, the error
# envelope of the wrong type.  Each endpoint the module reads during a
# request answers with a clean JSON error (502, or the per-video "Metrics
# unavailable" the contract gives metrics), never a crash, never a
# half-read value passed on.  The size limit, the parser's depth limit and
# the error envelope are one code path for every endpoint: they are met
# on /videos and POST /post only.  Each block has a user of its own, so that
# no cache entry or back-off window of an earlier block answers for it.
# The OAuth token exchange and user info behind /callback, a refresh, and
# the publisher's creator info, init and status answers take several
# steps: in Perl after the blocks.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use TikTokOneNginx;
use JSON::PP ();

our $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

our $Post = "POST /api/tiktok/post\n"
          . '{"video_url":"https://media.example.com/v/1.mp4",'
          . '"privacy_level":"SELF_ONLY","title":"hostile answer"}';

our %Path = (videos => '/v2/video/list/', metrics => '/v2/video/query/',
             creator => '/v2/post/publish/creator_info/query/');

TikTokTest::connect_account("u$_") for 1 .. 20;

# the fault for the next call to this endpoint
sub hostile {
    my ($endpoint, %f) = @_;
    $sb->clear_faults;
    $sb->fault({ endpoint => $Path{$endpoint}, %f });
}

our $Error = '^\{"error":\{"code":"[a-z_]+","message":"[^"]+",'
           . '"request_id":"[0-9a-f]{32}"\}\}$';

our $Config = $ApiLocation . <<'CONF';
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF

TikTokTest::defaults(
    no_error_log => [qr/\[(?:alert|crit|emerg)\]|signal \d+/]);

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('timeout', 10) unless defined $block->timeout;
});

TikTokOneNginx::config($Config);

no_shuffle();
run_tests();

$sb->clear_faults;


# ---- in Perl: the callback's token exchange and user info, a refresh,
# and the publisher, each met by a hostile answer --------------------------

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=300ms batch=5;/
    or die;

my $ngx = TikTokTest::Nginx->new(name => 'hostile-answers', workers => 2,
    http => $http, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub get {
    my ($path, $user) = @_;
    return $ngx->request(GET => $path, headers => { 'X-User-ID' => $user });
}

# /connect, the sandbox's authorize page (it decides at once), then the
# fault, then /callback: where the browser is sent
sub connect_through {
    my ($user, $endpoint, %f) = @_;
    my $loc = get('/api/tiktok/connect', $user)->{headers}{location} // '';
    my ($path) = $loc =~ m{^https://localhost:\d+(/v2/auth/authorize/\?.*)\z}
        or return "no connect: $loc";
    my $back = $sb->api(GET => $path)->{headers}{location} // '';
    my ($query) = $back =~ /\?(.*)\z/ or return "no callback: $back";
    $sb->clear_faults;
    $sb->fault({ endpoint => $endpoint, %f });
    my $r = get("/api/tiktok/callback?$query", $user);
    $sb->clear_faults;
    return $r->{headers}{location} // "status $r->{status}";
}

my $return = $TikTokTest::ReturnUrl;
my $n = 0;

for my $case (['/v2/oauth/token/', type => 'huge', elements => 0,
               bytes => 2_000_000],
              ['/v2/oauth/token/', type => 'deep'],
              ['/v2/oauth/token/', type => 'confused', key => 'access_token'],
              ['/v2/user/info/', type => 'confused'],
              ['/v2/user/info/', type => 'confused', key => 'user'])
{
    my ($endpoint, %f) = @$case;
    my $user = 'cb' . ++$n;
    my $what = join ' ', map { "$_=$f{$_}" } sort keys %f;

    like(connect_through($user, $endpoint, %f),
         qr/^\Q$return\E\?tiktok=error&reason=[a-z_]+$/,
         "callback, $endpoint answering $what: to the app, tiktok=error");
    is($psql->("SELECT count(*) FROM tiktok.accounts WHERE user_id = '$user'"),
       0, '... nothing stored');
}

# a refresh answered with hostile JSON: TikTok's fault, not the grant's
for my $f ({ type => 'deep' }, { type => 'confused', key => 'refresh_token' })
{
    my $user = 'rf' . ++$n;
    my $what = join ' ', map { "$_=$f->{$_}" } sort keys %$f;

    TikTokTest::connect_account($user, access => '1 minute');
    my $before = $psql->("SELECT encode(refresh_token_enc, 'hex')"
                         . " FROM tiktok.accounts WHERE user_id = '$user'");
    $sb->clear_faults;
    $sb->fault({ endpoint => '/v2/oauth/token/', %$f });
    my $r = get('/api/tiktok/videos', $user);
    $sb->clear_faults;

    is($r->{status}, 502, "a refresh answered $what: 502");
    like($r->{content}, qr/$Error/, '... JSON');
    is($psql->("SELECT needs_reconnect::text || ' ' || (encode("
               . "refresh_token_enc, 'hex') = '$before')::text"
               . " FROM tiktok.accounts WHERE user_id = '$user'"),
       'false true', '... the account neither marked nor changed');
}

# the publisher: creator info, init and status answered with hostile JSON
sub wait_post {
    my ($user, $id, $want, $limit) = @_;
    my $t0 = time;
    my $p = {};
    while (time - $t0 < $limit) {
        $p = eval { JSON::PP::decode_json(
                 get("/api/tiktok/posts/$id", $user)->{content}) } || {};
        return $p if ($p->{status} // '') =~ /^(?:$want)$/;
        select undef, undef, undef, 0.2;
    }
    return $p;
}

sub publish_through {
    my ($user, $endpoint, %f) = @_;
    my $body = delete $f{body} // { privacy_level => 'SELF_ONLY',
        video_url => 'https://media.example.com/v/1.mp4', title => $user,
        disable_comment => JSON::PP::false };
    TikTokTest::connect_account($user, scope => 'user.info.basic,'
                                . 'video.list,video.publish,video.upload');
    my $p = $ngx->post_as($user => $body);
    $sb->fault({ endpoint => $endpoint, count => 1000, %f });
    return $p->{post_id};
}

$sb->set_config({ daily_post_cap => 1000 });
$sb->clear_faults;

my $inits = $sb->calls->{'/v2/post/publish/video/init/'} // 0;
my $id = publish_through('pub1', '/v2/post/publish/video/init/',
                         type => 'confused');
my $p = wait_post('pub1', $id, 'failed|published', 15);
is("$p->{status} " . ($p->{fail_reason} // $p->{error} // ''),
   'failed init_uncertain',
   'a pull whose init answer is all of the wrong type: failed, '
   . 'init_uncertain (never sent again)');
is(($sb->calls->{'/v2/post/publish/video/init/'} // 0) - $inits, 1,
   '... after one init');
$sb->clear_faults;

# a photo post's content init and a draft's inbox init: the same rule
for my $case (['photo', '/v2/post/publish/content/init/', { type => 'deep' },
               { media_type => 'PHOTO', privacy_level => 'SELF_ONLY',
                 photo_urls => ['https://media.example.com/p/1.jpg'] }],
              ['draft', '/v2/post/publish/inbox/video/init/',
               { type => 'confused', key => 'data' },
               { mode => 'draft',
                 video_url => 'https://media.example.com/v/1.mp4' }])
{
    my ($what, $endpoint, $f, $body) = @$case;
    $id = publish_through("pub-$what", $endpoint, %$f, body => $body);
    $p = wait_post("pub-$what", $id, 'failed|published|sent_to_inbox', 15);
    is("$p->{status} " . ($p->{fail_reason} // $p->{error} // ''),
       'failed init_uncertain',
       "a $what whose init answers $f->{type}: failed, init_uncertain");
    $sb->clear_faults;
}

$id = publish_through('pub2', '/v2/post/publish/status/fetch/',
                      type => 'deep');
$p = wait_post('pub2', $id, 'processing', 15);
is($p->{status}, 'processing',
   'status answers 10,000 deep: the post waits in processing');
$sb->clear_faults;

# a post queued as /post leaves it, for a user whose creator info is not
# cached: the publisher asks TikTok itself
TikTokTest::connect_account('pub3');
$sb->fault({ endpoint => '/v2/post/publish/creator_info/query/',
             count => 1000, type => 'confused', key => 'comment_disabled' });
$inits = $sb->calls->{'/v2/post/publish/video/init/'} // 0;
$id = $psql->("INSERT INTO tiktok.posts (user_id, status, source, video_url,"
    . " post_info) VALUES ('pub3', 'queued', 'PULL_FROM_URL',"
    . " 'https://media.example.com/v/1.mp4', '{\"privacy_level\":"
    . "\"SELF_ONLY\",\"title\":\"pub3\",\"disable_comment\":false}')"
    . " RETURNING id");
$p = wait_post('pub3', $id, 'failed|published|processing', 2);
is($p->{status}, 'queued',
   'creator info whose comment_disabled is a string: the post waits');
is(($sb->calls->{'/v2/post/publish/video/init/'} // 0) - $inits, 0,
   '... and nothing is sent to TikTok meanwhile');
$sb->clear_faults;

unlike($ngx->error_log, qr/\[(?:alert|crit|emerg)\]|signal \d+/,
       'no alert, no crashed worker');
$ngx->stop;

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



=== TEST 10: metrics: every value of the wrong type: Metrics unavailable
--- init
::hostile(metrics => type => 'confused')
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u10
--- error_code: 200
--- response_body_like chomp
^\{"metrics":\{"7300000000000000001":\{"error":"Metrics unavailable"\}\}



=== TEST 11: metrics: the counts strings: Metrics unavailable
--- init
::hostile(metrics => type => 'confused', key => 'view_count')
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u11
--- error_code: 200
--- response_body_like chomp
^\{"metrics":\{"7300000000000000001":\{"error":"Metrics unavailable"\}\}



=== TEST 12: metrics: the same video 10,000 times: one answer
--- init
::hostile(metrics => type => 'huge', elements => 10000)
--- request
GET /api/tiktok/metrics?video_id=7300000000000000001
--- more_headers
X-User-ID: u12
--- error_code: 200
--- response_body_like chomp
^\{"metrics":\{"7300000000000000001":\{"view_count":\d+,[^{}]*\}\},"cached":false\}$



=== TEST 13: creator: 10,000 privacy levels (within the 1m limit): 200
--- init
::hostile(creator => type => 'huge', elements => 10000)
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u13
--- error_code: 200
--- response_body_like: "privacy_level_options":\["PUBLIC_TO_EVERYONE","MUTUAL_FOLLOW_FRIENDS","SELF_ONLY","PUBLIC_TO_EVERYONE",



=== TEST 14: creator: every value of the wrong type: 502
--- init
::hostile(creator => type => 'confused')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u14
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 15: creator: max_video_post_duration_sec a string: 502
--- init
::hostile(creator => type => 'confused', key => 'max_video_post_duration_sec')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u15
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 16: creator: comment_disabled a string: 502
--- init
::hostile(creator => type => 'confused', key => 'comment_disabled')
--- request
GET /api/tiktok/creator
--- more_headers
X-User-ID: u16
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 17: POST /post: creator info 2 MB: 502, nothing stored
--- init
::hostile(creator => type => 'huge', elements => 0, bytes => 2_000_000)
--- request eval
$::Post
--- more_headers
X-User-ID: u17
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 18: POST /post: creator info 10,000 deep: 502
--- init
::hostile(creator => type => 'deep')
--- request eval
$::Post
--- more_headers
X-User-ID: u18
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 19: POST /post: creator info all of the wrong type: 502
--- init
::hostile(creator => type => 'confused')
--- request eval
$::Post
--- more_headers
X-User-ID: u19
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 20: POST /post: stitch_disabled a string: 502
--- init
::hostile(creator => type => 'confused', key => 'stitch_disabled')
--- request eval
$::Post
--- more_headers
X-User-ID: u20
Content-Type: application/json
--- error_code: 502
--- response_body_like eval
$::Error



=== TEST 21: after all of that, the same users are served: 200
--- init
$::sb->clear_faults
--- request
GET /api/tiktok/videos
--- more_headers
X-User-ID: u4
--- error_code: 200
--- response_body_like: "videos":\[\{"id":"73\d{17}"



=== TEST 22: nothing of the refused posts was stored
--- request
GET /api/tiktok/posts
--- more_headers
X-User-ID: u17
--- error_code: 200
--- response_body_like: "posts"\s*:\s*\[\]
