# The publisher's claim: tiktok.claim_posts_media() is the only cross-user
# read; concurrent claimers get disjoint posts (FOR UPDATE SKIP LOCKED), a
# claim is a lease that runs out and carries a new fencing token each time,
# and the app role still sees nothing else.

use strict;
use warnings;

use TikTokTest;
use Test::More;

my $psql = \&TikTokTest::psql;

$psql->(<<'SQL');
INSERT INTO tiktok.posts (user_id, status, source, video_url, next_attempt_at)
SELECT 'user-' || (i % 3), CASE WHEN i % 2 = 0 THEN 'queued' ELSE 'scheduled' END,
    'PULL_FROM_URL', 'https://media.example.com/' || i, now() - interval '1 s'
FROM generate_series(1, 30) i;
INSERT INTO tiktok.posts (user_id, status, source, next_attempt_at)
VALUES ('user-0', 'scheduled', 'PULL_FROM_URL', now() + interval '1 hour'),
       ('user-1', 'published', 'PULL_FROM_URL', now() - interval '1 hour'),
       ('user-2', 'cancelled', 'PULL_FROM_URL', now() - interval '1 hour');
SQL

sub claim {
    my ($worker, $n, $lease) = @_;
    $lease //= '1 minute';
    return grep { length } split /\n/, $psql->(
        "SELECT id FROM tiktok.claim_posts_media('$worker', $n, '$lease')",
        user => 'tiktok_app');
}

is($psql->("SELECT count(*) FROM tiktok.posts", user => 'tiktok_app'), '0',
   'the app role alone sees no post');

my @a = claim('a', 10);
is(scalar @a, 10, 'a claims a batch of 10');
is($psql->("SELECT count(DISTINCT user_id) FROM tiktok.posts WHERE id IN ("
           . join(',', map { "'$_'" } @a) . ")"), '3',
   '... across users');

# two claimers at once: one holds its transaction open mid-claim
my $s = TikTokTest::psql_session(user => 'tiktok_app');
$s->send("BEGIN; SELECT id FROM tiktok.claim_posts_media('b', 10,"
         . " '1 minute');");
$s->send("SELECT pg_sleep(1); COMMIT;");
select(undef, undef, undef, 0.3);
my @c = claim('c', 100);
$s->close;
my @b = split /\n/, $psql->("SELECT id FROM tiktok.posts WHERE claimed_by = 'b'");

is(scalar @b, 10, 'b claimed 10 in its transaction');
is(scalar @c, 10, 'c, meanwhile, skipped the locked rows and got the rest');
my %seen;
$seen{$_}++ for @a, @b, @c;
is(scalar(grep { $seen{$_} > 1 } keys %seen), 0, 'no post claimed twice');
is(scalar keys %seen, 30, 'every due post claimed once');

is(scalar(claim('d', 100)), 0,
   'nothing left: not the future, published or cancelled ones');

is($psql->("SELECT count(DISTINCT claim_token) FROM tiktok.posts"
           . " WHERE claim_token IS NOT NULL"), '30',
   'each claim carries its own fencing token');

# a lease that runs out: the post of a dead publisher is claimed again
my $token = $psql->("SELECT claim_token FROM tiktok.posts WHERE id = '$a[0]'");
$psql->("UPDATE tiktok.posts SET claim_until = now() - interval '1 s'"
        . " WHERE id = '$a[0]'");
my @e = claim('e', 100);
is_deeply(\@e, [$a[0]], "an expired lease's post is claimed again");
is($psql->("SELECT claimed_by FROM tiktok.posts WHERE id = '$a[0]'"), 'e',
   '... by the new claimer');
my $token2 = $psql->("SELECT claim_token FROM tiktok.posts WHERE id = '$a[0]'");
like($token2, qr/^[0-9a-f-]{36}$/, '... with a token');
isnt($token2, $token, '... a new one: the first claimer is fenced off');

# the first claimer's writes name its token and now match no row
(my $user = $psql->("SELECT user_id FROM tiktok.posts WHERE id = '$a[0]'"))
    =~ s/'/''/g;
my $fenced = "BEGIN; SELECT set_config('app.user_id', '$user', true);"
    . " WITH x AS (UPDATE tiktok.posts"
    . " SET claim_until = now() + interval '5 minutes'"
    . " WHERE id = '$a[0]' AND claim_token = '%s' RETURNING 1)"
    . " SELECT 'renewed ' || count(*) FROM x; COMMIT;";
like($psql->(sprintf($fenced, $token), user => 'tiktok_app'), qr/renewed 0$/,
     "... whose renewal matches no row");
like($psql->(sprintf($fenced, $token2), user => 'tiktok_app'), qr/renewed 1$/,
     "... while the new claimer's does");

my ($out, $rc) = $psql->("SELECT * FROM tiktok.posts", user => 'tiktok_app',
                         may_fail => 1);
is($rc, 0, 'the app role can still query posts');
is($out, '', '... and still sees none without app.user_id');

is($psql->("SELECT prosecdef FROM pg_proc"
           . " WHERE proname = 'claim_posts_media'"), 't',
   'claim_posts_media is SECURITY DEFINER');
is($psql->("SELECT has_function_privilege('public',"
           . " 'tiktok.claim_posts_media(text, integer, interval)',"
           . " 'EXECUTE')"),
   'f', '... not executable by PUBLIC');
is($psql->("SELECT count(*) FROM pg_proc WHERE proname = 'claim_posts'"), '0',
   'the unfenced claim of 004 is gone');
TikTokTest::pg_migrate();
is($psql->("SELECT count(*) FROM pg_proc WHERE proname = 'claim_posts'"), '0',
   '... also after the migrations are applied again');

done_testing();
