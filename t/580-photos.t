# Photo posts (DESIGN 8.3): "media_type":"PHOTO" with 1 to 35 photo_urls
# is published through TikTok's content init (DIRECT_POST), with exactly
# the body TIKTOK_API.md gives, and polled like a pulled video; TikTok's
# photo_pull_failed is tried again with a new init.  Drafts of photos are
# in t/570, the refusals in t/575.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms batch=5;/
    or die;

my $server = <<'CONF';
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

my $ngx = TikTokTest::Nginx->new(name => 'photos', workers => 2,
    http => $http, server => $server)->start;

sub post { $ngx->post_as(@_) }

sub wait_post {
    my ($user, $id, $want, $limit) = @_;
    my $deadline = time + ($limit // 20);
    my $p;
    while (time < $deadline) {
        my $r = $ngx->request(GET => "/api/tiktok/posts/$id",
                              headers => { 'X-User-ID' => $user });
        $p = decode_json($r->{content});
        return $p if $p->{status} =~ /^($want)$/;
        sleep 0.25;
    }
    return $p;
}

my $content = '/v2/post/publish/content/init/';

sub calls { $sb->calls->{$_[0]} // 0 }
# the control API's JSON is decoded already: the body is characters
sub last_body {
    JSON::PP->new->decode($sb->requests($content, 1)->[0]{body});
}
sub urls { [ map { "https://media.example.com/p/$_.jpg" } 1 .. $_[0] ] }

my ($true, $false) = (JSON::PP::true, JSON::PP::false);
my $final = 'published|failed|sent_to_inbox';

$sb->set_config({ daily_post_cap => 1000 });
TikTokTest::connect_account('phil');

# 1. one image, public, with music: published with the exact init body
my $p = post(phil => { media_type => 'PHOTO', photo_urls => urls(1),
                       title => 'One photo', description => "A caf\x{e9}",
                       privacy_level => 'PUBLIC_TO_EVERYONE',
                       auto_add_music => $true });
is($p->{status}, 'queued', 'a post of one photo is queued');
my $done = wait_post(phil => $p->{post_id}, $final);
is($done->{status}, 'published', '... and published');
like($done->{publish_id}, qr/^p_pub_url~/,
     "... with TikTok's photo publish_id");
like($done->{share_url},
     qr{^https://www\.tiktok\.com/\@sandbox\.creator/video/\d{19}$},
     '... and the share link');
is_deeply(last_body(),
          { post_info => { title => 'One photo', description => "A caf\x{e9}",
                           privacy_level => 'PUBLIC_TO_EVERYONE',
                           disable_comment => $true,
                           auto_add_music => $true,
                           brand_content_toggle => $false,
                           brand_organic_toggle => $false },
            source_info => { source => 'PULL_FROM_URL',
                             photo_cover_index => 0,
                             photo_images => urls(1) },
            post_mode => 'DIRECT_POST', media_type => 'PHOTO' },
          'the content init, exactly: DIRECT_POST, post_info, the photo');
is(calls($content), 1, '... once');
is(calls('/v2/post/publish/video/init/'), 0, '... and no video init');

# 2. 35 images, the last the cover, a 90-character title
my $title = 'p' x 90;
$p = post(phil => { media_type => 'PHOTO', photo_urls => urls(35),
                    photo_cover_index => 34, title => $title,
                    privacy_level => 'SELF_ONLY',
                    disable_comment => $false,
                    brand_organic_toggle => $true });
is($p->{status}, 'queued', 'a post of 35 photos is queued');
$done = wait_post(phil => $p->{post_id}, $final);
is($done->{status}, 'published', '... and published');
is($done->{share_url}, undef, '... with no share link (SELF_ONLY)');
is_deeply(last_body(),
          { post_info => { title => $title, description => '',
                           privacy_level => 'SELF_ONLY',
                           disable_comment => $false,
                           auto_add_music => $false,
                           brand_content_toggle => $false,
                           brand_organic_toggle => $true },
            source_info => { source => 'PULL_FROM_URL',
                             photo_cover_index => 34,
                             photo_images => urls(35) },
            post_mode => 'DIRECT_POST', media_type => 'PHOTO' },
          'the content init, exactly: 35 images in order, the cover 34');
is(calls($content), 2, '... once');

# 3. GET /posts shows media_type and photo_urls
my $r = $ngx->request(GET => '/api/tiktok/posts',
                      headers => { 'X-User-ID' => 'phil' });
my $list = decode_json($r->{content})->{posts};
is_deeply([ map { [ $_->{mode}, $_->{media_type},
                    scalar @{ $_->{photo_urls} } ] } @$list ],
          [ [ direct => 'PHOTO', 35 ], [ direct => 'PHOTO', 1 ] ],
          'GET /posts: mode, media_type and the photo_urls of each');
is($list->[0]{title}, $title, '... and the title');

# 4. photo_pull_failed: TikTok says try again; a new init after a back-off
$sb->script_outcome({ fail_reason => 'photo_pull_failed',
                      source => 'PULL_FROM_URL' });
$p = post(phil => { media_type => 'PHOTO', photo_urls => urls(2),
                    privacy_level => 'SELF_ONLY' });
my $deadline = time + 20;
sleep 0.2 while time < $deadline
    && $psql->("SELECT attempts FROM tiktok.posts"
               . " WHERE id = '$p->{post_id}'") eq '0';
is($psql->("SELECT status || ' ' || attempts || ' ' || coalesce(error, '')"
           . " FROM tiktok.posts WHERE id = '$p->{post_id}'"),
   'queued 1 photo_pull_failed',
   'photo_pull_failed: queued again, backed off');
is(calls($content), 3, '... after one init');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
$done = wait_post(phil => $p->{post_id}, $final);
is($done->{status}, 'published', '... then published');
is(calls($content), 4, '... with one more init');

done_testing();
