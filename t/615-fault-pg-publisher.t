# Fault battery: PostgreSQL stopped while the publisher has a post in
# flight.  The job's next write (its progress after a chunk TikTok took)
# finds the database gone and the job ends with its claim still on the
# post; once PostgreSQL is back the worker hands that claim back, and the
# post goes on at once from what is committed (TikTok's 416 tells it the
# chunk is there), instead of after the claim's five-minute lease.  The
# post is published, initialised once, every byte once.  And a reload
# while PostgreSQL is down: the exiting worker's hand-back cannot be
# written and does not hold its exit.

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
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'pgpub', workers => 1,
    http => $http, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub row {
    my ($id, $cols) = @_;
    return $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

sub inits { $sb->calls->{'/v2/post/publish/video/init/'} // 0 }

$sb->set_config({ daily_post_cap => 1000, status_polls_to_complete => 1 });
TikTokTest::connect_account('pat');

my $video = TikTokMedia::mp4(seconds => 5, mdat => 'p' x 200000);
my $before = inits();

# TikTok holds the chunk 3 s: the database goes away meanwhile
$sb->fault({ endpoint => '/upload/', type => 'delay', ms => 3000,
             count => 1 });
my $p = $ngx->post_as(pat => $video, type => 'video/mp4',
                      query => '?privacy_level=SELF_ONLY&title=pgpub');
ok($p->{post_id}, 'an upload accepted') or BAIL_OUT('no post');

my $deadline = time + 20;
sleep 0.05 while time < $deadline
    && row($p->{post_id}, "coalesce(publish_id, '')") eq '';
isnt(row($p->{post_id}, "coalesce(publish_id, '')"), '',
     '... initialised, its chunk on its way');

TikTokTest::pg_stop('fast');
sleep 5;                        # the chunk's answer comes, the write fails
TikTokTest::pg_start();
my $back = time;

# the claim is still on the post: without the hand-back it would wait for
# the lease (5 minutes)
my $status;
$deadline = time + 30;
while (time < $deadline) {
    $status = row($p->{post_id}, 'status');
    last if $status =~ /^(published|failed)$/;
    sleep 0.25;
}
is($status, 'published',
   sprintf('published %.1f s after PostgreSQL came back, not after the'
           . ' lease', time - $back));
like($ngx->error_log,
     qr/post \Q$p->{post_id}\E handed back after the database came back/,
     '... its claim handed back by the worker once the database answered');
is(inits(), $before + 1, '... initialised once');
my $up = $sb->upload(row($p->{post_id}, 'publish_id'));
is($up->{sha256}, sha256_hex($video), '... TikTok has every byte once');

# 2. nginx reloaded while PostgreSQL is down and a post is mid-upload: the
# old worker's hand-back cannot be written, so it must not hold the exit
# (the release fails at once, the job ends); the post's claim is then the
# lease's, modelled here by ending it as superuser once the worker is gone
$sb->fault({ endpoint => '/upload/', type => 'delay', ms => 3000,
             count => 1 });
$p = $ngx->post_as(pat => $video, type => 'video/mp4',
                   query => '?privacy_level=SELF_ONLY&title=pgreload');
ok($p->{post_id}, 'another upload accepted') or BAIL_OUT('no post');
$deadline = time + 20;
sleep 0.05 while time < $deadline
    && row($p->{post_id}, "coalesce(publish_id, '')") eq '';
my $by = row($p->{post_id}, 'claimed_by');
my ($old) = $by =~ /:(\d+)$/;
ok($old, "... claimed by worker $old, its chunk on its way");

TikTokTest::pg_stop('fast');
$ngx->reload;
$deadline = time + 15;
sleep 0.1 while time < $deadline && kill 0, $old;
ok(!kill(0, $old), sprintf('reloaded with the database down: the old worker'
                           . ' exited (%.1f s after the reload)',
                           time - $deadline + 15));
TikTokTest::pg_start();

$psql->("UPDATE tiktok.posts SET claim_until = now() - interval '1 second'"
        . " WHERE id = '$p->{post_id}' AND claimed_by = '$by'");
$deadline = time + 30;
while (time < $deadline) {
    $status = row($p->{post_id}, 'status');
    last if $status =~ /^(published|failed)$/;
    sleep 0.25;
}
is($status, 'published', '... and once its lease is over the post is'
                         . ' published by the new workers');
is(inits(), $before + 2, '... initialised once');
$up = $sb->upload(row($p->{post_id}, 'publish_id'));
is($up->{sha256}, sha256_hex($video), '... TikTok has every byte once');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
