# Drafts (DESIGN 8.2): "mode":"draft" / mode=draft sends a video (pulled or
# uploaded) or photos to the creator's TikTok inbox with the video.upload
# scope, through TikTok's inbox init (or the content init's MEDIA_UPLOAD),
# without post_info, and ends sent_to_inbox.  The creator's limit of 5
# pending shares fails the sixth with TikTok's reason after one init.
# The refusals are in t/575.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms batch=5;/
    or die;
$http .= "    tiktok_scopes user.info.basic,video.list,video.upload;\n";

my $server = <<'CONF';
        client_max_body_size 10m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

my $ngx = TikTokTest::Nginx->new(name => 'drafts', workers => 2,
    http => $http, server => $server)->start;

sub post { $ngx->post_as(@_) }

sub get_post {
    my ($user, $id) = @_;
    my $r = $ngx->request(GET => "/api/tiktok/posts/$id",
                          headers => { 'X-User-ID' => $user });
    return decode_json($r->{content});
}

sub wait_post {
    my ($user, $id, $want, $limit) = @_;
    my $deadline = time + ($limit // 20);
    my $p;
    while (time < $deadline) {
        $p = get_post($user, $id);
        return $p if $p->{status} =~ /^($want)$/;
        sleep 0.25;
    }
    return $p;
}

my $inbox = '/v2/post/publish/inbox/video/init/';
my $content = '/v2/post/publish/content/init/';
my $direct = '/v2/post/publish/video/init/';
my $creator = '/v2/post/publish/creator_info/query/';

sub calls { $sb->calls->{$_[0]} // 0 }
sub last_body { decode_json($sb->requests($_[0], 1)->[0]{body}) }

my $url = 'https://media.example.com/v/clip.mp4';
my @photos = map { "https://media.example.com/p/$_.jpg" } 1 .. 3;
my $final = 'sent_to_inbox|published|failed';

# a creator of her own: the pending shares are counted per creator
$sb->add_user({ open_id => 'open-dora' });
TikTokTest::connect_account('dora', open_id => 'open-dora',
                            scope => 'user.info.basic,video.upload');

# 0. tiktok_scopes asks for the scope a draft needs, /status shows it
my $r = $ngx->request(GET => '/api/tiktok/connect',
                      headers => { 'X-User-ID' => 'dora' });
like($r->{headers}{location},
     qr/[?&]scope=user\.info\.basic(?:,|%2C)video\.list(?:,|%2C)
        video\.upload(?:&|$)/xi,
     'connect asks for video.upload');
my $status = decode_json($ngx->request(GET => '/api/tiktok/status',
    headers => { 'X-User-ID' => 'dora' })->{content});
is_deeply($status->{scopes}, [ 'user.info.basic', 'video.upload' ],
          '/status lists video.upload');

# 1. a video draft from a URL
my $p = post(dora => { mode => 'draft', video_url => $url });
is($p->{status}, 'queued', 'a URL draft is queued');
my $done = wait_post(dora => $p->{post_id}, $final);
is($done->{status}, 'sent_to_inbox', '... and sent to the inbox');
is($done->{mode}, 'draft', '... shown as a draft');
is($done->{media_type}, 'VIDEO', '... of a video');
like($done->{publish_id}, qr/\S/, '... with its publish_id');
is_deeply(last_body($inbox),
          { source_info => { source => 'PULL_FROM_URL', video_url => $url } },
          'the inbox init: source_info only, no post_info');
is(calls($inbox), 1, '... once');
is(calls($direct) + calls($creator), 0,
   '... neither a direct post nor creator info (needs video.publish)');

# 2. a video draft uploaded
my $video = TikTokMedia::mp4(seconds => 3,
    mdat => join('', map { chr($_ % 251) } 1 .. 300000));
$p = post(dora => $video, type => 'video/mp4', query => '?mode=draft');
is($p->{status}, 'queued', 'an uploaded draft is queued');
$done = wait_post(dora => $p->{post_id}, $final);
is($done->{status}, 'sent_to_inbox', '... and sent to the inbox');
is($done->{source}, 'FILE_UPLOAD', '... as an upload');
is_deeply(last_body($inbox),
          { source_info => { source => 'FILE_UPLOAD',
                             video_size => length $video,
                             chunk_size => length $video,
                             total_chunk_count => 1 } },
          'the inbox init: the chunk plan, no post_info');
is($sb->upload($done->{publish_id})->{sha256}, sha256_hex($video),
   '... and TikTok got every byte');
my $path = $psql->("SELECT spool_path FROM tiktok.posts"
                   . " WHERE id = '$p->{post_id}'");
ok(!-e $path, '... the spool file is gone once it is in the inbox');

# 3. photos as a draft
$p = post(dora => { mode => 'draft', media_type => 'PHOTO',
                    photo_urls => \@photos, photo_cover_index => 2 });
is($p->{status}, 'queued', 'a photo draft is queued');
$done = wait_post(dora => $p->{post_id}, $final);
is($done->{status}, 'sent_to_inbox', '... and sent to the inbox');
is($done->{media_type}, 'PHOTO', '... shown as photos');
is_deeply($done->{photo_urls}, \@photos, '... with its photo_urls');
is_deeply(last_body($content),
          { post_info => {},
            source_info => { source => 'PULL_FROM_URL',
                             photo_cover_index => 2,
                             photo_images => \@photos },
            post_mode => 'MEDIA_UPLOAD', media_type => 'PHOTO' },
          'the content init: MEDIA_UPLOAD, the photos and the cover');
is(calls($content), 1, '... once');

# 4. GET /posts shows mode, media_type and photo_urls
$r = $ngx->request(GET => '/api/tiktok/posts',
                      headers => { 'X-User-ID' => 'dora' });
my @list = @{ decode_json($r->{content})->{posts} };
is_deeply([ map { [ $_->{mode}, $_->{media_type} ] } @list ],
          [ [ draft => 'PHOTO' ], [ draft => 'VIDEO' ], [ draft => 'VIDEO' ] ],
          'GET /posts: mode and media_type of each');
is_deeply($list[0]{photo_urls}, \@photos, '... and the photo_urls');
is($list[1]{photo_urls}, undef, '... none for a video');

# 5. no video.upload: 403 scope_missing, nothing stored
$sb->add_user({ open_id => 'open-vic' });
TikTokTest::connect_account('vic', open_id => 'open-vic');
$r = $ngx->request(POST => '/api/tiktok/post',
    headers => { 'X-User-ID' => 'vic', 'Content-Type' => 'application/json' },
    body => encode_json({ mode => 'draft', video_url => $url }));
is($r->{status}, 403, 'a draft without video.upload: 403');
is(decode_json($r->{content})->{error}{code}, 'scope_missing',
   '... scope_missing');
is($psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = 'vic'"), '0',
   '... and nothing stored');

# 6. the creator's 5 pending shares: two more reach the inbox, the sixth
# fails with TikTok's reason after one init, and is not tried again
for my $i (4, 5) {
    $p = post(dora => { mode => 'draft',
                        video_url => "https://media.example.com/v/$i.mp4" });
    is(wait_post(dora => $p->{post_id}, $final)->{status}, 'sent_to_inbox',
       "pending share $i reaches the inbox");
}
my $before = calls($inbox);
$p = post(dora => { mode => 'draft',
                    video_url => 'https://media.example.com/v/6.mp4' });
$done = wait_post(dora => $p->{post_id}, $final);
is($done->{status}, 'failed', 'the sixth pending share fails');
is($done->{fail_reason}, 'spam_risk_too_many_pending_share',
   "... with TikTok's reason");
is($done->{error}, 'Posting failed. Check permissions or try again.',
   '... and the message');
sleep 1.5;
is(calls($inbox), $before + 1, '... after one init, not retried');
is($psql->("SELECT attempts FROM tiktok.posts WHERE id = '$p->{post_id}'"),
   '0', '... nor backed off');
is($psql->("SELECT count(*) FROM tiktok.api_errors"
           . " WHERE tiktok_code = 'spam_risk_too_many_pending_share'"),
   '1', '... and recorded once');

done_testing();
