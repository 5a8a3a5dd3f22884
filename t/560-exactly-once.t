# Exactly once, precisely (DESIGN §5): a claim carries a fencing token that
# every write for the post names, so a job whose lease ran out mid-wait (or
# whose post was cancelled) stops without calling TikTok again; leases are
# renewed while a job waits; a URL init whose answer was lost is never sent
# again (init_uncertain), a FILE_UPLOAD init may be; and a post that nothing
# was sent to TikTok for can always be cancelled.

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

my $INIT = '/v2/post/publish/video/init/';
my $CREATOR = '/v2/post/publish/creator_info/query/';

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $server = <<'CONF';
        client_max_body_size 100m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

# The module paces one user's inits at 6 a minute by itself (per nginx);
# the sandbox's own limit is lifted so that two nginx never meet a 429:
# this suite is about leases, not rate limits.
$sb->set_config({ daily_post_cap => 1000, rate_limits => {
    $INIT => 1000, $CREATOR => 1000,
    '/v2/post/publish/status/fetch/' => 1000 } });

my $ngx = TikTokTest::Nginx->new(name => 'once-a', workers => 2,
    http => $http, server => $server)->start;

sub row {
    my ($id, $cols) = @_;
    return $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

sub wait_row {
    my ($id, $want, $limit) = @_;
    my $deadline = time + ($limit // 20);
    my $s;
    while (time < $deadline) {
        $s = row($id, 'status');
        return $s if $s =~ /^($want)$/;
        sleep 0.2;
    }
    return $s;
}

sub wait_until {
    my ($limit, $cond) = @_;
    my $deadline = time + $limit;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.2;
    }
    return $cond->();
}

# the init calls the sandbox received, by the video_url they named
sub inits_by_url {
    my %n;
    for my $req (@{ $sb->requests($INIT, 1000) }) {
        my $b = eval { decode_json($req->{body}) } or next;
        my $u = $b->{source_info}{video_url} // next;
        $n{$u}++;
    }
    return \%n;
}

sub inits { $sb->calls->{$INIT} // 0 }

sub soon { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + ($_[0] // 3))) }

sub request_as {
    my ($user, $method, $path) = @_;
    my $r = $ngx->request($method => $path,
                          headers => { 'X-User-ID' => $user });
    return { status => $r->{status},
             json => eval { decode_json($r->{content}) } };
}


# 1. One user's 13 posts at once: the module paces their inits (6 a
# minute), so 7 wait.  While they wait, their leases are kept; one of them
# is cancelled; then a second nginx starts and the leases of the rest are
# made to run out (as if the wait had lasted 5 minutes), so other workers
# claim them and initialise them at once.  The first jobs must notice and
# stop: every post initialised exactly once.

TikTokTest::connect_account('una');
my %url_of;
my @una;
for my $i (1 .. 13) {
    my $u = "https://media.example.com/v/once$i.mp4";
    my $p = $ngx->post_as(una => { video_url => $u,
                                   privacy_level => 'SELF_ONLY' });
    push @una, $p->{post_id};
    $url_of{ $p->{post_id} // '' } = $u;
}
is(scalar(grep { defined } @una), 13, '13 posts of one user at once');

my $waiting_sql = "SELECT count(*) FROM tiktok.posts WHERE user_id = 'una'"
                  . " AND init_started_at IS NULL AND claim_until > now()";
my $t0 = time;
ok(wait_until(20, sub {
       my $n = inits_by_url();
       grep({ $n->{$_} } values %url_of) >= 6
           && $psql->($waiting_sql) >= 5 }),
   '... 6 initialised, the others claimed and waiting for the pace')
    or diag($psql->("SELECT status, init_started_at IS NULL, claim_until"
                    . " FROM tiktok.posts WHERE user_id = 'una'"));

# a waiting job keeps its lease: say it is about to run out
$psql->("UPDATE tiktok.posts SET claim_until = now() + interval '25 seconds'"
        . " WHERE user_id = 'una' AND init_started_at IS NULL"
        . " AND claim_until > now()");
ok(wait_until(15, sub {
       $psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = 'una'"
               . " AND init_started_at IS NULL"
               . " AND claim_until < now() + interval '4 minutes'") == 0 }),
   '... their leases renewed while they wait on the pace');

# one waiting post is cancelled: claimed, but nothing sent for it yet
my ($gone) = split /\n/, $psql->("SELECT id FROM tiktok.posts"
    . " WHERE user_id = 'una' AND init_started_at IS NULL"
    . " AND claim_until > now() ORDER BY created_at DESC LIMIT 1");
my $r = request_as(una => DELETE => "/api/tiktok/posts/$gone");
is($r->{status}, 200, 'a claimed post waiting on the pace can be cancelled');
is($r->{json}{status}, 'cancelled', '... says so');

# the rest: their leases run out while their jobs still wait, and a second
# nginx, whose pace for this user is untouched, is there to take them
my $other = TikTokTest::Nginx->new(name => 'once-b', workers => 2,
    http => $http, server => $server)->start;
my $expired = $psql->("WITH x AS (UPDATE tiktok.posts"
    . " SET claim_until = now() - interval '1 second'"
    . " WHERE user_id = 'una' AND init_started_at IS NULL"
    . " AND status IN ('queued', 'scheduled') RETURNING 1)"
    . " SELECT count(*) FROM x");
cmp_ok($expired, '>=', 2, "$expired waiting posts' leases made to run out");

my %final;
for my $id (@una) {
    next if $id eq $gone;
    $final{ wait_row($id, 'published|failed|cancelled', 150) }++;
}
is_deeply(\%final, { published => 12 }, '... all 12 others published');
# the first jobs' pace ends about 70 s after the first inits: by then a job
# that did not notice its loss would have initialised its post again
sleep 0.5 while time < $t0 + 80;
my $n = inits_by_url();
is_deeply([ map { $n->{ $url_of{$_} } // 0 } grep { $_ ne $gone } @una ],
          [ (1) x 12 ], '... each initialised exactly once')
    or diag(explain($n));
is($n->{ $url_of{$gone} } // 0, 0, 'the cancelled one: never initialised');
is(row($gone, 'status'), 'cancelled', '... and still cancelled');
like($ngx->error_log . $other->error_log, qr/no longer this job's/,
     'the jobs that lost their posts said so');

$other->stop;


# 2. A URL init that TikTok performs but whose answer is lost: a 502 from a
# gateway, a dropped connection, half an answer.  TikTok may have the post:
# never init again, fail it as init_uncertain.

my $case = 0;
for my $fault ({ type => 'status', status => 502 }, { type => 'drop' },
               { type => 'truncate' })
{
    my $user = 'lost' . ++$case;
    TikTokTest::connect_account($user);
    my $u = "https://media.example.com/v/lost$case.mp4";
    $sb->fault({ endpoint => $INIT, %$fault, after => JSON::PP::true });
    my $p = $ngx->post_as($user => { video_url => $u,
                                      privacy_level => 'SELF_ONLY' });
    ok(wait_until(20, sub { inits_by_url()->{$u} }),
       "$fault->{type} after a URL init: TikTok acted");
    # an unfixed publisher backs it off: make the back-off end now
    wait_until(10, sub { row($p->{post_id}, "status = 'failed'"
                                            . " OR attempts > 0") eq 't' });
    $psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
            . " WHERE id = '$p->{post_id}' AND status <> 'failed'");
    is(wait_row($p->{post_id}, 'published|failed', 10), 'failed',
       '... the post failed');
    is(row($p->{post_id}, 'fail_reason'), 'init_uncertain',
       '... as init_uncertain');
    sleep 2;
    is(inits_by_url()->{$u}, 1, '... after exactly one init');
    my $p2 = request_as($user => GET => "/api/tiktok/posts/$p->{post_id}");
    is($p2->{json}{error}, 'Posting failed. Check permissions or try again.',
       '... and the user sees the message');
}
is($psql->("SELECT count(*) FROM tiktok.api_errors"
           . " WHERE user_id LIKE 'lost%' AND endpoint = '$INIT'"), '3',
   'each lost answer recorded in api_errors');


# 3. A FILE_UPLOAD init whose answer is lost: TikTok publishes nothing
# without the bytes, so it is initialised again and published.

my $video = TikTokMedia::mp4(seconds => 3,
                             mdat => join('', map { chr($_ % 249) } 1 .. 400000));
for my $fault ({ type => 'status', status => 502 }, { type => 'drop' }) {
    my $user = 'file' . ++$case;
    TikTokTest::connect_account($user);
    my $before = inits();
    $sb->fault({ endpoint => $INIT, %$fault, after => JSON::PP::true });
    my $p = $ngx->post_as($user => $video, type => 'video/mp4',
                          query => '?privacy_level=SELF_ONLY');
    is($p->{status}, 'queued', "an upload, its init answered $fault->{type}");
    wait_until(20, sub { row($p->{post_id}, "status = 'failed'"
                                            . " OR attempts > 0") eq 't' });
    is(row($p->{post_id}, "status || ' ' || attempts || ' '"
                          . " || (init_started_at IS NULL)::text"),
       'queued 1 true', '... backed off, to be initialised again');
    $psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
            . " WHERE id = '$p->{post_id}'");
    is(wait_row($p->{post_id}, 'published|failed', 30), 'published',
       '... then published');
    is(inits(), $before + 2, '... after a second init');
    my $pid = row($p->{post_id}, 'publish_id');
    my $up = $pid ne '' ? $sb->upload($pid) : {};
    is($up->{sha256}, sha256_hex($video), '... with every byte');
}


# 4. Backed off before anything was sent to TikTok (creator info answered
# 503): still cancellable, by DELETE and by disconnect, and never
# initialised afterwards.  A post whose init was sent is not.

# (the 503 is for the publisher's creator info check: POST /post's own
# check has been made, and cached, when the fault is set)
TikTokTest::connect_account('cal');
my $cu = 'https://media.example.com/v/cal.mp4';
my $p = $ngx->post_as(cal => { video_url => $cu, privacy_level => 'SELF_ONLY',
                               schedule_at => soon(2) });
$sb->fault({ endpoint => $CREATOR, type => 'status', status => 503 });
is($p->{status}, 'scheduled', 'a scheduled post');
wait_until(20, sub { row($p->{post_id}, 'attempts') ne '0' });
is(row($p->{post_id}, "status || ' ' || attempts || ' '"
                      . " || (claimed_at IS NOT NULL)::text"),
   'scheduled 1 true', '... backed off after a 503 on creator info');
$r = request_as(cal => DELETE => "/api/tiktok/posts/$p->{post_id}");
is($r->{status}, 200, '... can be cancelled');
is($r->{json}{status}, 'cancelled', '... says so');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
sleep 3;
is(row($p->{post_id}, 'status'), 'cancelled', '... stays cancelled');
is(inits_by_url()->{$cu} // 0, 0, '... and is never initialised');

TikTokTest::connect_account('dot');
my $du = 'https://media.example.com/v/dot.mp4';
$p = $ngx->post_as(dot => { video_url => $du, privacy_level => 'SELF_ONLY',
                            schedule_at => soon(2) });
$sb->fault({ endpoint => $CREATOR, type => 'status', status => 503 });
wait_until(20, sub { row($p->{post_id}, 'attempts') ne '0' });
is(row($p->{post_id}, "status || ' ' || attempts"), 'scheduled 1',
   'another post backed off after a 503 on creator info');
$r = request_as(dot => POST => '/api/tiktok/disconnect');
is($r->{status}, 200, '... its user disconnects');
is(row($p->{post_id}, 'status'), 'cancelled', '... the post is cancelled');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
sleep 3;
is(row($p->{post_id}, 'status'), 'cancelled', '... stays cancelled');
is(inits_by_url()->{$du} // 0, 0, '... and is never initialised');

TikTokTest::connect_account('pam');
$sb->set_config({ status_polls_to_complete => 8 });
my $pu = 'https://media.example.com/v/pam.mp4';
$p = $ngx->post_as(pam => { video_url => $pu, privacy_level => 'SELF_ONLY' });
wait_until(20, sub { inits_by_url()->{$pu} });
$r = request_as(pam => DELETE => "/api/tiktok/posts/$p->{post_id}");
is($r->{status}, 409, 'a post whose init was sent: 409');
is($r->{json}{error}{code}, 'not_cancellable', '... not_cancellable');
is(wait_row($p->{post_id}, 'published|failed', 40), 'published',
   '... and it is published');
$sb->set_config({ status_polls_to_complete => 2 });

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
