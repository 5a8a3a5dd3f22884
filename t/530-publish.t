# The publisher: queued posts go through init, the upload and status polls
# to published (with the share link) or failed, each exactly once.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'publish', workers => 2,
    http => $http, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub post {
    my ($user, $body, %o) = @_;
    my $r = $ngx->request(POST => '/api/tiktok/post' . ($o{query} // ''),
        headers => { 'X-User-ID' => $user,
                     'Content-Type' => $o{type} // 'application/json' },
        body => ref $body ? encode_json($body) : $body);
    return eval { decode_json($r->{content}) } || { status => $r->{status} };
}

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

sub inits { $sb->calls->{'/v2/post/publish/video/init/'} // 0 }

my $url = 'https://media.example.com/v/clip.mp4';
$sb->set_config({ daily_post_cap => 1000 });
TikTokTest::connect_account('pia');

# 1. from a URL, end to end
my $before = inits();
my $p = post(pia => { video_url => $url, title => 'pulled',
                      privacy_level => 'PUBLIC_TO_EVERYONE' });
is($p->{status}, 'queued', 'a URL post is queued');
my $done = wait_post(pia => $p->{post_id}, 'published|failed');
is($done->{status}, 'published', '... and published');
like($done->{publish_id}, qr/\S/, '... with the publish_id');
like($done->{share_url}, qr{^https://www\.tiktok\.com/\@sandbox\.creator/video/\d{19}$},
     '... and the share link');
is(inits(), $before + 1, '... after exactly one init');
my $init = decode_json($sb->requests('/v2/post/publish/video/init/', 1)->[0]{body});
is_deeply($init->{source_info}, { source => 'PULL_FROM_URL', video_url => $url },
          'init: source_info per TikTok');
is($init->{post_info}{title}, 'pulled', 'init: post_info as stored');
is($init->{post_info}{privacy_level}, 'PUBLIC_TO_EVERYONE', '... privacy');

# 2. an upload, one chunk
my $video = TikTokMedia::mp4(seconds => 3, mdat => join('', map { chr($_ % 251) } 1 .. 700000));
$p = post(pia => $video, type => 'video/mp4',
          query => '?privacy_level=SELF_ONLY&title=uploaded');
is($p->{status}, 'queued', 'an upload is queued');
$done = wait_post(pia => $p->{post_id}, 'published|failed');
is($done->{status}, 'published', '... and published');
my $up = $sb->upload($done->{publish_id});
is($up->{sha256}, sha256_hex($video), 'TikTok got every byte, in order');
is_deeply([ map { $_->{range} } @{ $up->{ranges} } ],
          [ sprintf('bytes 0-%d/%d', length($video) - 1, length $video) ],
          '... in one chunk with its Content-Range');
$init = decode_json($sb->requests('/v2/post/publish/video/init/', 1)->[0]{body});
is_deeply($init->{source_info}, { source => 'FILE_UPLOAD',
    video_size => length $video, chunk_size => length $video,
    total_chunk_count => 1 }, 'init: the chunk plan per TikTok');
is($psql->("SELECT count(*) FROM tiktok.posts WHERE id = '$p->{post_id}'"
           . " AND spool_path IS NOT NULL"), '1', 'the row keeps its path');
my $path = $psql->("SELECT spool_path FROM tiktok.posts WHERE id = '$p->{post_id}'");
ok(!-e $path, '... but the spool file is gone');

# 3. scheduled 2 s ahead: published after its time, once
$before = inits();
my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3));
$p = post(pia => { video_url => $url, privacy_level => 'SELF_ONLY',
                   schedule_at => $at });
is($p->{status}, 'scheduled', 'a post scheduled 3 s ahead');
sleep 1;
is(wait_post(pia => $p->{post_id}, 'scheduled', 1)->{status}, 'scheduled',
   '... waits');
is(inits(), $before, '... untouched before its time');
$done = wait_post(pia => $p->{post_id}, 'published|failed');
is($done->{status}, 'published', '... then is published');
is(inits(), $before + 1, '... once');

# 4. TikTok refusing the post: failed, not retried
$before = inits();
$sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'error_code',
             code => 'spam_risk_too_many_posts' });
$p = post(pia => { video_url => $url, privacy_level => 'SELF_ONLY' });
$done = wait_post(pia => $p->{post_id}, 'published|failed');
is($done->{status}, 'failed', 'spam_risk_too_many_posts: failed');
is($done->{fail_reason}, 'spam_risk_too_many_posts', '... with the reason');
is($done->{error}, 'Posting failed. Check permissions or try again.',
   '... and the message');
sleep 1.5;
is(inits(), $before + 1, '... and not retried');

# 5. a 5xx on init, then success: published after a back-off
$before = inits();
$sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'status',
             status => 503 });
$p = post(pia => { video_url => $url, privacy_level => 'SELF_ONLY' });
my $deadline = time + 10;
sleep 0.2 while time < $deadline
    && $psql->("SELECT attempts FROM tiktok.posts WHERE id = '$p->{post_id}'") eq '0';
is($psql->("SELECT status || ' ' || attempts || ' '"
           . " || (next_attempt_at > now() + interval '20 seconds')"
           . " FROM tiktok.posts WHERE id = '$p->{post_id}'"), 'queued 1 true',
   'a 503 on init: queued again with a back-off');
is(inits(), $before + 1, '... not retried at once');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
$done = wait_post(pia => $p->{post_id}, 'published|failed');
is($done->{status}, 'published', '... then published');
is(inits(), $before + 2, '... with one more init');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
