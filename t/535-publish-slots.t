# The publisher's slots (tiktok_scheduler batch=): a post in TikTok's hands,
# only polled, frees its slot for the next due post, and a slot that frees
# up after a full claim is filled at once, not at the next tick.  Without
# both, posts due together are initialised one batch per TikTok's
# processing time, or per tick.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use POSIX qw(ceil strftime);
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

# one worker, one slot; ticks far apart
(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=4s batch=1;/
    or die;

my $ngx = TikTokTest::Nginx->new(name => 'slots', workers => 1,
    http => $http, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

# TikTok takes 1 + 5 x 3 s over each post: far longer than the checks
$sb->set_config({ daily_post_cap => 1000, status_polls_to_complete => 6 });
TikTokTest::connect_account($_) for qw(sa sb sc sd se);

sub post {
    my ($user, %o) = @_;
    return $ngx->post_as($user => {
        video_url => "https://media.example.com/v/$user.mp4",
        privacy_level => 'SELF_ONLY', %o });
}

sub row {
    my ($id) = @_;
    return $psql->("SELECT status || ' ' || (publish_id IS NOT NULL)"
                   . " FROM tiktok.posts WHERE id = '$id'");
}

sub wait_for {
    my ($secs, $done) = @_;
    my $deadline = time + $secs;
    sleep 0.1 until $done->() || time > $deadline;
    return $done->();
}

# 1. a queued post while the only slot's post is being processed at TikTok
my $a = post('sa');
ok(wait_for(8, sub { row($a->{post_id}) eq 'processing true' }),
   'the first post is initialised and polled');
my $b = post('sb');
ok(wait_for(3, sub { row($b->{post_id}) =~ / true$/ }),
   'a second post is initialised while the first is still processing');
is(row($a->{post_id}), 'processing true', '... which it is');

# 2. three posts due at the same second: one claim takes the one slot; as
# that post goes to polling, the next is claimed at once, not 4 s later
my $due = ceil(time) + 2;
my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $due);
my @ids = map { post($_, schedule_at => $at)->{post_id} } qw(sc sd se);
is(scalar(grep { defined } @ids), 3, 'three posts scheduled for one second');
my $in = join ',', map { "'$_'" } @ids;
ok(wait_for(15, sub {
    $psql->("SELECT count(*) FROM tiktok.posts WHERE id IN ($in)"
            . " AND publish_id IS NOT NULL") == 3 }),
   '... all initialised');
my $spread = $psql->("SELECT extract(epoch FROM max(init_started_at)"
                     . " - min(init_started_at)) FROM tiktok.posts"
                     . " WHERE id IN ($in)");
cmp_ok($spread, '<', 2, '... within a tick of each other'
       . " (${spread} s from the first init to the last)");

my $inits = $sb->calls->{'/v2/post/publish/video/init/'} // 0;
is($inits, 5, 'one init each');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

done_testing();
