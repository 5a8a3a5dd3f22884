# Fault battery: nginx reloaded, stopped and started, and its workers
# SIGKILLed, while uploads are in flight (POST /post with half the video
# sent) and while scheduled posts are mid-upload to TikTok.  Every post
# accepted is published exactly once (one init at the sandbox, every byte
# once), none is lost, an upload cut off leaves no row, no worker crashes
# by itself.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'reload', workers => 2,
    http => $http, server => <<'CONF')->start;
        client_max_body_size 100m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

$sb->set_config({ daily_post_cap => 1000, status_polls_to_complete => 1 });

my $seq = 0;
my $killed = 0;                 # workers we SIGKILLed ourselves
my $expired = 0;                # leases left by exited workers, ended

sub user {
    my $u = 'rl' . ++$seq;
    TikTokTest::connect_account($u);
    return $u;
}

sub workers { split ' ', `pgrep -P ${\ $ngx->pid }` }

sub row {
    my ($id, $cols) = @_;
    return $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

sub inits_of {
    my ($title) = @_;
    return scalar grep { ($_->{body} // '') =~ /"title":"\Q$title\E"/ }
        @{ $sb->requests('/v2/post/publish/video/init/', 500) };
}

sub at_tiktok {
    my ($title) = @_;
    return [ grep { ($_->{post_info}{title} // '') eq $title }
             @{ $sb->posts } ];
}

# A worker that exits gracefully (reload, stop) hands its posts back; one
# that is killed leaves the leases of the posts it held, which run out
# after 5 minutes (not configurable).  That expiry is modelled here: once
# the worker holding a post is gone, its claim_until is set in the past as
# superuser, nothing else.
sub expire_dead_leases {
    my (@ids) = @_;
    my $list = join ',', map { "'$_'" } @ids;
    for my $l (split /\n/, $psql->(
            "SELECT id || ' ' || claimed_by FROM tiktok.posts"
            . " WHERE id IN ($list) AND claim_until > now()"
            . " AND status NOT IN ('published', 'failed', 'cancelled')")) {
        my ($id, $by) = split ' ', $l;
        my ($pid) = $by =~ /:(\d+)$/ or next;
        next if kill 0, $pid;
        $expired += $psql->("UPDATE tiktok.posts SET claim_until = now()"
                            . " - interval '1 second' WHERE id = '$id'"
                            . " AND claimed_by = '$by' RETURNING 1") ? 1 : 0;
    }
}

sub wait_published {
    my ($limit, @ids) = @_;
    my $list = join ',', map { "'$_'" } @ids;
    my $deadline = time + $limit;
    while (time < $deadline) {
        expire_dead_leases(@ids);
        return 1 if $psql->("SELECT count(*) FROM tiktok.posts"
                            . " WHERE id IN ($list) AND status NOT IN"
                            . " ('published', 'failed', 'cancelled')") eq '0';
        sleep 0.3;
    }
    return 0;
}

sub published_once {
    my ($p, $what) = @_;
    is(row($p->{id}, "status || ' ' || coalesce(fail_reason, '')"),
       'published ', "$what: published");
    is(inits_of($p->{title}), 1, "$what: ... after one init");
    is(scalar(grep { $_->{status} eq 'PUBLISH_COMPLETE' }
                   @{ at_tiktok($p->{title}) }), 1,
       "$what: ... once at TikTok");
    my $pid = row($p->{id}, 'publish_id');
    is($pid ne '' ? $sb->upload($pid)->{sha256} : '', sha256_hex($p->{video}),
       "$what: ... every byte, once");
}


# 1. Uploads in flight: half the body sent, then nginx is reloaded, stopped
# gracefully, or its workers are killed; then the rest

my $video = TikTokMedia::mp4(seconds => 3,
                             mdat => join('', map { chr($_ % 241) } 1 .. 3_000_000));

sub upload_in_flight {
    my ($user, $title, $action) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die "connect: $!";
    local $SIG{PIPE} = 'IGNORE';
    my $half = int(length($video) / 2);
    print $s "POST /api/tiktok/post?privacy_level=SELF_ONLY&title=$title"
             . " HTTP/1.0\r\nHost: localhost\r\nX-User-ID: $user\r\n"
             . "Content-Type: video/mp4\r\n"
             . "Content-Length: " . length($video) . "\r\n\r\n"
             . substr($video, 0, $half);
    sleep 0.3;
    $action->();
    sleep 0.5;
    print $s substr($video, $half);

    my $sel = IO::Select->new($s);
    my ($resp, $deadline) = ('', time + 20);
    while (time < $deadline && $sel->can_read(0.5)) {
        my $n = sysread($s, $resp, 65536, length $resp);
        last unless $n;
    }
    close $s;

    my ($status) = $resp =~ m{^HTTP/1\.\d (\d{3})};
    my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
    return ($status // 'none', eval { decode_json($body // '') } // {});
}

my @accepted;

my $u = user();
my ($st, $j) = upload_in_flight($u, 'inflight-reload', sub { $ngx->reload });
is($st, 202, 'reload while an upload is half sent: 202');
push @accepted, { id => $j->{post_id}, title => 'inflight-reload',
                  video => $video } if $j->{post_id};

$u = user();
my $old = $ngx->pid;
($st, $j) = upload_in_flight($u, 'inflight-stop', sub { kill 'QUIT', $old });
is($st, 202, 'a graceful stop while an upload is half sent: 202');
push @accepted, { id => $j->{post_id}, title => 'inflight-stop',
                  video => $video } if $j->{post_id};
my $deadline = time + 15;
sleep 0.1 while time < $deadline && kill 0, $old;
ok(!kill(0, $old), '... then nginx exits');
$ngx->{running} = 0;
$ngx->start;

$u = user();
($st) = upload_in_flight($u, 'inflight-kill', sub {
    my @w = workers();
    $killed += kill 'KILL', @w;
});
is($st, 'none', 'workers SIGKILLed while an upload is half sent: no answer');
is($psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = '$u'"), '0',
   '... and no row');
$deadline = time + 10;
sleep 0.1 while time < $deadline && scalar(my @w = workers()) < 2;
my $p = $ngx->post_as($u => $video, type => 'video/mp4',
                      query => '?privacy_level=SELF_ONLY&title=after-kill');
is($p->{status}, 'queued', '... the respawned workers accept it again');
push @accepted, { id => $p->{post_id}, title => 'after-kill',
                  video => $video } if $p->{post_id};

ok(wait_published(40, map { $_->{id} } @accepted),
   'the accepted uploads are published');
published_once($_, $_->{title}) for @accepted;


# 2. Ten scheduled uploads due at once (for the reload, one of them in
# two chunks), every chunk held 2.5 s by TikTok (longer than the grace an
# exiting worker gives its transfers): while they are mid-upload nginx is
# reloaded, then stopped and started, then its workers are SIGKILLed

my $big = TikTokMedia::mp4(seconds => 30, mdat => 'b' x 64000001);

# Ten uploads scheduled an hour ahead, then made due at the same instant
# (as superuser: posting ten videos takes longer than a few seconds here)
sub batch {
    my ($name) = @_;

    my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600));
    my @p;
    for my $i (1 .. 10) {
        my $v = $i == 1 && $name eq 'reload'
              ? $big : TikTokMedia::mp4(seconds => 3,
                                   mdat => "$name-$i-" x 50000);
        my $title = "$name-$i";
        my $r = $ngx->post_as(user() => $v, type => 'video/mp4',
            query => "?privacy_level=SELF_ONLY&title=$title&schedule_at=$at");
        push @p, { id => $r->{post_id}, title => $title, video => $v };
    }
    @p = grep { $_->{id} } @p;
    is(scalar @p, 10, "$name: 10 uploads scheduled");
    my $list = join ',', map { "'$_->{id}'" } @p;
    $psql->("UPDATE tiktok.posts SET schedule_at = now(),"
            . " next_attempt_at = now() WHERE id IN ($list)");
    return @p;
}

# until every post is initialised and some are mid-upload
sub mid_upload {
    my ($name, @p) = @_;
    my $list = join ',', map { "'$_->{id}'" } @p;
    my $deadline = time + 30;
    my $s;
    while (time < $deadline) {
        $s = $psql->("SELECT count(publish_id) || ' ' || count(*) FILTER"
                     . " (WHERE status = 'uploading') FROM tiktok.posts"
                     . " WHERE id IN ($list)");
        my ($inited, $uploading) = split ' ', $s;
        return $s if $inited == @p && $uploading >= 3;
        sleep 0.1;
    }
    return $s;
}

for my $c (
    [ 'reload', sub { $ngx->reload } ],
    [ 'restart', sub { $ngx->stop; $ngx->start } ],
    [ 'sigkill', sub { $killed += kill 'KILL', workers() } ],
) {
    my ($name, $action) = @$c;
    my @p = batch($name);
    $sb->fault({ endpoint => '/upload/', type => 'delay', ms => 2500,
                 count => 0 });
    like(mid_upload($name, @p), qr/^10 ([3-9]|10)$/,
         "$name: every post initialised, some mid-upload");
    $expired = 0;
    my $handed = () = $ngx->error_log =~ /handed back: this worker is exiting/g;
    $action->();
    $sb->clear_faults;
    ok(wait_published(60, map { $_->{id} } @p),
       "$name: all ten published");
    $handed = (() = $ngx->error_log
                   =~ /handed back: this worker is exiting/g) - $handed;
    if ($name eq 'sigkill') {
        # a killed worker hands nothing back: its leases run out
        cmp_ok($expired, '>', 0,
               "$name: ... $expired of them resumed after the lease of a"
               . " worker that was gone");
    } else {
        # a graceful exit hands each post back as soon as its job is
        # between steps: no lease is left to run out
        is($expired, 0, "$name: ... no lease left behind by the exited"
                        . " workers");
        cmp_ok($handed, '>', 0, "$name: ... $handed handed back by them");
    }
    published_once($_, $_->{title}) for @p;
}


# 3. The quit reaches a worker with steps due in the same turn of its event
# loop: its signal handler sets ngx_quit, that turn's due timers run, and
# only then does the worker set ngx_exiting; libcurl refuses new calls from
# the moment of ngx_quit.  Here each worker is stopped (SIGSTOP) while its
# posts wait between status polls, the polls' pauses run out, a graceful
# stop is sent to each worker itself (QUIT, as nginx allows), and the
# workers go on (SIGCONT): they meet the quit and the due polls at once.
# A poll refused there must hand its post back, not end its job with the
# claim left on.  The master then starts new workers, which carry on.

{
    $sb->set_config({ status_polls_to_complete => 1000 });

    my @p;
    for my $i (1 .. 6) {
        my $v = TikTokMedia::mp4(seconds => 3, mdat => "quit-$i-" x 50000);
        my $r = $ngx->post_as(user() => $v, type => 'video/mp4',
                              query => "?privacy_level=SELF_ONLY&title=quit-$i");
        push @p, { id => $r->{post_id}, title => "quit-$i", video => $v }
            if $r->{post_id};
    }
    is(scalar @p, 6, 'quit turn: 6 uploads accepted');

    # every post polling TikTok's status, which stays PROCESSING_UPLOAD
    my $list = join ',', map { "'$_->{id}'" } @p;
    my $deadline = time + 30;
    my $polling = 0;
    while (time < $deadline) {
        $polling = $psql->("SELECT count(*) FROM tiktok.posts WHERE id IN"
                           . " ($list) AND status = 'processing'");
        last if $polling == @p;
        sleep 0.1;
    }
    is($polling, 6, 'quit turn: all six polling TikTok');

    my @old = workers();
    kill 'STOP', @old;
    my $handed = () = $ngx->error_log =~ /handed back: this worker is exiting/g;
    sleep 3.5;              # past every poll's pause (3 s at most)
    kill 'QUIT', @old;
    $expired = 0;
    kill 'CONT', @old;
    $deadline = time + 15;
    sleep 0.1 while time < $deadline && grep { kill 0, $_ } @old;
    $sb->set_config({ status_polls_to_complete => 1 });

    ok(wait_published(60, map { $_->{id} } @p), 'quit turn: all six published');
    $handed = (() = $ngx->error_log
                   =~ /handed back: this worker is exiting/g) - $handed;
    is($expired, 0, 'quit turn: ... no lease left behind by the exited workers');
    is($handed, 6, "quit turn: ... each handed back by them");
    published_once($_, $_->{title}) for @p;
}


my $log = $ngx->error_log;
# the master reports the workers we killed with [alert]: any other alert
unlike(join("\n", grep { !/exited on signal 9$/ } split /\n/, $log),
       qr/\[(alert|emerg)\]/, 'no alert');
my $signals = () = $log =~ /exited on signal 9\b/g;
is($signals, $killed, "only the $killed workers we SIGKILLed exited on a signal");
unlike($log, qr/exited on signal (?!9\b)/, 'no worker crashed');

$ngx->stop;

done_testing();
