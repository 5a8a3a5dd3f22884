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

# batch=5: no worker can hold all of section 9's 20 posts at once
(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms batch=5;/
    or die;

my $server = <<'CONF';
        client_max_body_size 100m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

my $ngx = TikTokTest::Nginx->new(name => 'publish', workers => 2,
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

# 5. TikTok refusing an init for now (429), then success: published after
# a back-off.  (A 5xx on a URL init is no refusal: TikTok may have acted,
# and the post fails as init_uncertain; see t/560-exactly-once.t.)
$before = inits();
$sb->fault({ endpoint => '/v2/post/publish/video/init/',
             type => 'rate_limit' });
$p = post(pia => { video_url => $url, privacy_level => 'SELF_ONLY' });
my $deadline = time + 10;
sleep 0.2 while time < $deadline
    && $psql->("SELECT attempts FROM tiktok.posts WHERE id = '$p->{post_id}'") eq '0';
is($psql->("SELECT status || ' ' || attempts || ' '"
           . " || (next_attempt_at > now() + interval '20 seconds')"
           . " FROM tiktok.posts WHERE id = '$p->{post_id}'"), 'queued 1 true',
   'a 429 on init: queued again with a back-off');
is(inits(), $before + 1, '... not retried at once');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
$done = wait_post(pia => $p->{post_id}, 'published|failed');
is($done->{status}, 'published', '... then published');
is(inits(), $before + 2, '... with one more init');

# 6. just over 64,000,000 bytes: two chunks (TikTok wants more than one
# above 64,000,000), the last with the rest
TikTokTest::connect_account('bo');
my $big = TikTokMedia::mp4(seconds => 30, mdat => 'b' x 64000001);
$p = post(bo => $big, type => 'video/mp4', query => '?privacy_level=SELF_ONLY');
is($p->{status}, 'queued', sprintf('a %d-byte upload is queued', length $big));
$done = wait_post(bo => $p->{post_id}, 'published|failed', 60);
is($done->{status}, 'published', '... and published');
$init = decode_json($sb->requests('/v2/post/publish/video/init/', 1)->[0]{body});
my $half = int(length($big) / 2);
is_deeply($init->{source_info}, { source => 'FILE_UPLOAD',
    video_size => length $big, chunk_size => $half,
    total_chunk_count => 2 }, "init: 2 chunks of $half bytes");
$up = $sb->upload($done->{publish_id});
is_deeply([ map { $_->{range} } @{ $up->{ranges} } ],
          [ sprintf('bytes 0-%d/%d', $half - 1, length $big),
            sprintf('bytes %d-%d/%d', $half, length($big) - 1, length $big) ],
          '... each chunk in order, the last one with the remainder');
is($up->{sha256}, sha256_hex($big), '... every byte');

# 7. a 5xx on a chunk: the same chunk again, then on
TikTokTest::connect_account('cy');
$sb->fault({ endpoint => '/upload/', type => 'status', status => 500 });
$p = post(cy => $video, type => 'video/mp4', query => '?privacy_level=SELF_ONLY');
$done = wait_post(cy => $p->{post_id}, 'published|failed', 30);
is($done->{status}, 'published', 'a 500 on a chunk: published after all');
$up = $sb->upload($done->{publish_id});
is($up->{sha256}, sha256_hex($video), '... with every byte once');

# 8. DELETE before it runs: never initialised
TikTokTest::connect_account('dee');
$before = inits();
$at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 4));
$p = post(dee => { video_url => $url, privacy_level => 'SELF_ONLY',
                   schedule_at => $at });
my $r = $ngx->request(DELETE => "/api/tiktok/posts/$p->{post_id}",
                      headers => { 'X-User-ID' => 'dee' });
is($r->{status}, 200, 'a scheduled post cancelled before its time');
sleep 5;
is(wait_post(dee => $p->{post_id}, 'cancelled', 1)->{status}, 'cancelled',
   '... stays cancelled');
is(inits(), $before, '... and is never initialised');

# 9. 20 scheduled posts, 2 nginx x 2 workers on one database: once each
my $other = TikTokTest::Nginx->new(name => 'publish-b', workers => 2,
    http => $http, server => $server)->start;
# the accounts first, so that a slow machine still queues every post
# before their common time comes
TikTokTest::connect_account("crowd$_") for 1 .. 20;
$at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 4));
my @posts;
for my $i (1 .. 20) {
    push @posts, [ "crowd$i", post("crowd$i" => {
        video_url => "https://media.example.com/v/$i.mp4",
        privacy_level => 'SELF_ONLY', schedule_at => $at })->{post_id} ];
}
is(scalar(grep { defined $_->[1] } @posts), 20,
   '20 posts scheduled for the same second');
my %status;
$status{ wait_post(@$_, 'published|failed', 40)->{status} }++ for @posts;
is_deeply(\%status, { published => 20 }, '20 scheduled posts: all published');
my %urls;
for my $req (@{ $sb->requests('/v2/post/publish/video/init/', 200) }) {
    my $b = eval { decode_json($req->{body}) } or next;
    my $u = $b->{source_info}{video_url} // next;
    $urls{$u}++ if $u =~ m{/v/\d+\.mp4$};
}
is(scalar(grep { $urls{"https://media.example.com/v/$_.mp4"} == 1 } 1 .. 20),
   20, '... each initialised exactly once');
my $by = $psql->("SELECT count(DISTINCT split_part(claimed_by, ':', 2))"
                 . " FROM tiktok.posts WHERE user_id LIKE 'crowd%'");
cmp_ok($by, '>=', 2, "... shared among the workers, at most 5 in flight"
                     . " each ($by claimed some)");
$other->stop;

# 10. nginx killed (SIGKILL) during an upload, then started again
TikTokTest::connect_account('kim');
$before = inits();
$sb->fault({ endpoint => '/upload/', type => 'delay', ms => 1500, count => 0 });
$p = post(kim => $big, type => 'video/mp4', query => '?privacy_level=SELF_ONLY');
$deadline = time + 30;
sleep 0.1 while time < $deadline
    && $psql->("SELECT uploaded_bytes FROM tiktok.posts"
               . " WHERE id = '$p->{post_id}'") < $half;

my $master = $ngx->pid;
my @workers = split ' ', `pgrep -P $master`;
kill 'KILL', $master, @workers;
sleep 0.5;
$ngx->{running} = 0;
$sb->clear_faults;

is($psql->("SELECT status FROM tiktok.posts WHERE id = '$p->{post_id}'"),
   'uploading', 'killed mid-upload: the post says uploading');
is(inits(), $before + 1, '... its init was made once');

# its lease would run out after 5 minutes; make that now.  And say it died
# after TikTok took a chunk but before that was recorded: our progress is
# behind TikTok's, which TikTok answers with 416
$psql->("UPDATE tiktok.posts SET claim_until = now() - interval '1 s',"
        . " uploaded_bytes = 0 WHERE id = '$p->{post_id}'");
$ngx->start;

$done = wait_post(kim => $p->{post_id}, 'published|failed', 60);
is($done->{status}, 'published', 'after the restart the post completes');
is(inits(), $before + 1, '... without a second init');
$up = $sb->upload($done->{publish_id});
is($up->{sha256}, sha256_hex($big), '... and TikTok has every byte once');
# TikTok has the chunks it took before the kill: the first, and the second
# too when it was already on its way (the sandbox's delay is before it
# keeps a chunk, and the kill does not stop that)
my ($had) = $ngx->error_log
    =~ /TikTok has (\d+) bytes, we had 0; resuming/;
ok(defined $had && $had >= $half
   && ($had % $half == 0 || $had == length $big),
   '... having resumed from the progress TikTok reported after a 416 ('
   . ($had // 'none') . ' bytes: whole chunks)');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
