# The user's posts: list (newest first, paged), one post, and cancelling a
# scheduled post; cancelling another user's post is a 404, never a 403.
# The cases that are one request and its answer are blocks in t/501.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;

my $psql = \&TikTokTest::psql;

my $ngx = TikTokTest::Nginx->new(name => 'posts', server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub api {
    my ($method, $path, $user) = @_;
    my $r = $ngx->request($method => $path, headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

# 25 posts for olga, one for other, in a known order
$psql->(<<'SQL');
INSERT INTO tiktok.posts (user_id, status, source, video_url, post_info,
    schedule_at, created_at)
SELECT 'olga', CASE WHEN i % 5 = 0 THEN 'scheduled' ELSE 'published' END,
    'PULL_FROM_URL', 'https://media.example.com/' || i || '.mp4',
    json_build_object('title', 'post ' || i,
                      'privacy_level', 'SELF_ONLY')::jsonb,
    CASE WHEN i % 5 = 0 THEN now() + interval '1 day' END,
    now() - (i || ' minutes')::interval
FROM generate_series(1, 25) i;
INSERT INTO tiktok.posts (user_id, status, source, post_info)
VALUES ('other', 'scheduled', 'PULL_FROM_URL', '{"title":"theirs"}');
UPDATE tiktok.posts SET status = 'failed', fail_reason = 'spam_risk_too_many_posts'
WHERE post_info->>'title' = 'post 2';
SQL

my $r = api(GET => '/api/tiktok/posts', 'olga');
is($r->{status}, 200, 'posts: 200');
is(scalar @{ $r->{json}{posts} }, 20, '... 20 by default');
is($r->{json}{posts}[0]{title}, 'post 1', '... newest first');
ok($r->{json}{has_more}, '... has_more');
like($r->{json}{posts}[0]{post_id}, qr/^[0-9a-f-]{36}$/, '... uuid post ids');
my ($failed) = grep { $_->{title} eq 'post 2' } @{ $r->{json}{posts} };
is($failed->{status}, 'failed', 'a failed post');
is($failed->{error}, 'Posting failed. Check permissions or try again.',
   '... with the user-facing message');

my $r2 = api(GET => "/api/tiktok/posts?cursor=$r->{json}{cursor}", 'olga');
is(scalar @{ $r2->{json}{posts} }, 5, 'the next page: the last 5');
is($r2->{json}{posts}[0]{title}, 'post 21', '... continuing in order');
ok(!$r2->{json}{has_more}, '... no more');
is($r2->{json}{cursor}, undef, '... no cursor');

$r = api(GET => '/api/tiktok/posts?limit=3', 'olga');
is(scalar @{ $r->{json}{posts} }, 3, 'limit=3');
# the list's 400s and a user without posts: blocks in t/501

my $theirs = $psql->("SELECT id FROM tiktok.posts WHERE user_id = 'other'");
my $sched = $psql->("SELECT id FROM tiktok.posts WHERE user_id = 'olga'"
                    . " AND post_info->>'title' = 'post 5'");
my $done = $psql->("SELECT id FROM tiktok.posts WHERE user_id = 'olga'"
                   . " AND post_info->>'title' = 'post 1'");

$r = api(GET => "/api/tiktok/posts/$sched", 'olga');
is($r->{json}{status}, 'scheduled', 'one post');
like($r->{json}{schedule_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     '... schedule_at in RFC 3339');

# reading another user's post or a malformed id: blocks in t/501
$r = api(DELETE => "/api/tiktok/posts/$theirs", 'olga');
is($r->{status}, 404, "cancelling another user's post: 404");
is($psql->("SELECT status FROM tiktok.posts WHERE id = '$theirs'"),
   'scheduled', '... and it is untouched');

$r = api(DELETE => "/api/tiktok/posts/$sched", 'olga');
is($r->{status}, 200, 'cancelling a scheduled post');
is_deeply($r->{json}, { post_id => $sched, status => 'cancelled' },
          '... says so');
is($psql->("SELECT status FROM tiktok.posts WHERE id = '$sched'"),
   'cancelled', '... and it is cancelled');

$r = api(DELETE => "/api/tiktok/posts/$sched", 'olga');
is($r->{status}, 409, 'cancelling it again: 409');
$r = api(DELETE => "/api/tiktok/posts/$done", 'olga');
is($r->{status}, 409, 'cancelling a published post: 409');

# claimed by a publisher, nothing sent to TikTok yet: still cancellable
$psql->("UPDATE tiktok.posts SET claimed_at = now(),"
        . " claim_until = now() + interval '5 minutes' WHERE user_id = 'olga'"
        . " AND post_info->>'title' IN ('post 15', 'post 10')");
my $claimed = $psql->("SELECT id FROM tiktok.posts WHERE user_id = 'olga'"
                      . " AND post_info->>'title' = 'post 15'");
$r = api(DELETE => "/api/tiktok/posts/$claimed", 'olga');
is($r->{status}, 200, 'a scheduled post a publisher has claimed: cancelled');
is($psql->("SELECT status || ' ' || (claim_until IS NULL)::text"
           . " FROM tiktok.posts WHERE id = '$claimed'"), 'cancelled true',
   '... and its claim released');

# its init committed: it may have reached TikTok, too late to cancel
$psql->("UPDATE tiktok.posts SET init_started_at = now() WHERE user_id = 'olga'"
        . " AND post_info->>'title' = 'post 10'");
my $started = $psql->("SELECT id FROM tiktok.posts WHERE user_id = 'olga'"
                      . " AND post_info->>'title' = 'post 10'");
$r = api(DELETE => "/api/tiktok/posts/$started", 'olga');
is($r->{status}, 409, 'a post whose init was sent: 409');
is($r->{json}{error}{code}, 'not_cancellable', '... not_cancellable');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
