# The upload spool: a file whose row may exist is never deleted (the
# INSERT's answer lost to a timeout while the row commits), the janitor
# removes orphans and the files of finished posts after a grace, and a
# full spool file system is a clean 507.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use File::Path qw(make_path);
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

$SIG{PIPE} = 'IGNORE';

my $server = <<'CONF';
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            client_max_body_size 20m;
            tiktok_api;
        }
CONF

sub wait_for {
    my ($what, $timeout) = @_;
    my $deadline = time + ($timeout || 30);
    while (time < $deadline) {
        my $v = $what->();
        return $v if $v;
        sleep 0.2;
    }
    return $what->();
}

sub files_in {
    my ($dir) = @_;
    opendir my $d, $dir or return ();
    my @f = sort grep { !/^\./ } readdir $d;
    closedir $d;
    return @f;
}

TikTokTest::connect_account('lou');

# ---- the INSERT commits but its answer is lost: the file stays ----

subtest 'an INSERT whose answer is lost keeps its file' => sub {
    (my $http = $TikTokTest::HttpConfig) =~ s/timeout=5s/timeout=2s/;
    $http =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=1s;/;

    # the row commits 4 s after the module gave up waiting (2 s)
    $psql->(<<'SQL');
CREATE OR REPLACE FUNCTION public.test_slow_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.post_info->>'title' = 'slow insert' THEN
        PERFORM pg_sleep(4);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS test_slow_insert ON tiktok.posts;
CREATE TRIGGER test_slow_insert AFTER INSERT ON tiktok.posts
    FOR EACH ROW EXECUTE FUNCTION public.test_slow_insert();
SQL

    my $ngx = TikTokTest::Nginx->new(name => 'lost', http => $http,
                                     server => $server)->start;

    my $video = TikTokMedia::mp4(seconds => 6, mdat => 'l' x 100000);
    my $r = $ngx->post_as(lou => $video, type => 'video/mp4',
                          query => '?privacy_level=SELF_ONLY&title=slow+insert');
    is($r->{error}{code}, 'database_unavailable',
       'the INSERT timed out: 503 database_unavailable');

    my $id = wait_for(sub {
        $psql->("SELECT id FROM tiktok.posts WHERE user_id = 'lou'"
                . " AND post_info->>'title' = 'slow insert'") }, 20);
    ok($id, '... yet the row committed');

    my $status = wait_for(sub {
        my $s = $psql->("SELECT status || ' ' || coalesce(fail_reason, '')"
                        . " FROM tiktok.posts WHERE id = '$id'");
        $s =~ /^(published|failed)/ ? $s : undef }, 60);
    is($status, 'published ', '... and the post published from its file');

    $psql->('DROP TRIGGER test_slow_insert ON tiktok.posts');
    unlike($ngx->error_log, qr/\[(alert|emerg)\]|signal \d+/, '... no alert');
    $ngx->stop;
};

# ---- the janitor ----

subtest 'the janitor removes orphans and finished posts\' files' => sub {
    my $ngx = TikTokTest::Nginx->new(name => 'janitor', server => $server,
                                     workers => 2);
    my $spool = $ngx->dir . '/spool';
    make_path($spool);

    my %f = map { $_ => sprintf('%s/%032x.mp4', $spool, int(rand(2**31))) }
            qw(old_orphan young_orphan old_live old_failed old_published);
    $f{foreign} = "$spool/notes.txt";

    for my $k (keys %f) {
        open my $fh, '>', $f{$k} or die "$f{$k}: $!";
        print $fh "x" x 1000;
        close $fh;
        next if $k eq 'young_orphan';
        utime(time - 7200, time - 7200, $f{$k}) or die "utime: $!";
    }

    for my $k (qw(old_live old_failed old_published)) {
        my $status = $k eq 'old_live' ? 'scheduled'
                   : $k eq 'old_failed' ? 'failed' : 'published';
        $psql->("INSERT INTO tiktok.posts (user_id, status, source,"
                . " spool_path, video_size, content_type, next_attempt_at)"
                . " VALUES ('lou', '$status', 'FILE_UPLOAD', '$f{$k}', 1000,"
                . " 'video/mp4', now() + interval '20 days')");
    }

    $ngx->start;

    ok(wait_for(sub { !-e $f{old_orphan} }, 30),
       'an orphan older than the grace is removed');
    ok(wait_for(sub { !-e $f{old_failed} && !-e $f{old_published} }, 10),
       '... and so are the files of failed and published posts');
    ok(-e $f{young_orphan}, 'a young orphan is kept (its row may come)');
    ok(-e $f{old_live}, 'the file of a scheduled post is kept');
    ok(-e $f{foreign}, 'a file the module did not name is left alone');

    like($ngx->error_log, qr/janitor removed .*\Q$f{old_orphan}\E/,
         '... each removal logged');
    unlike($ngx->error_log, qr/\[(alert|emerg)\]|signal \d+/, 'no alert');
    $ngx->stop;
};

# ---- the spool's file system is full ----

subtest 'a full spool: 507 JSON, no row, no file, then a small upload works'
=> sub {
    my $fs = "$TikTokTest::Tmp/fullfs";
    make_path($fs);
    my $out = `mount -t tmpfs -o size=2m tmpfs $fs 2>&1`;
    if ($? != 0) {
        plan skip_all => "cannot mount a tmpfs here (needs root): $out";
        return;
    }

    my $ngx = TikTokTest::Nginx->new(name => 'full', server => $server);
    make_path("$fs/body", "$fs/spool");
    # client_body_temp_path and the spool must share a file system
    symlink("$fs/body", $ngx->dir . '/body') or die "symlink: $!";
    symlink("$fs/spool", $ngx->dir . '/spool') or die "symlink: $!";
    $ngx->start;

    my $rows = $psql->("SELECT count(*) FROM tiktok.posts");

    my $big = TikTokMedia::mp4(seconds => 6, mdat => 'F' x (3 * 1024 * 1024));
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die $!;
    my $req = "POST /api/tiktok/post?privacy_level=SELF_ONLY HTTP/1.1\r\n"
            . "Host: localhost\r\nConnection: close\r\nX-User-ID: lou\r\n"
            . "Content-Type: video/mp4\r\nContent-Length: " . length($big)
            . "\r\n\r\n$big";
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite($s, $req, 65536, $off);
        last unless defined $n;
        $off += $n;
    }
    my $resp = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(20)) {
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
    }
    close $s;
    my ($status) = $resp =~ m{^HTTP/1\.1 (\d+)};
    my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
    my $j = eval { decode_json($body) } || {};

    is($status, 507, 'an upload larger than the free space: 507');
    like($resp, qr{\r\nContent-Type: application/json}i, '... as JSON');
    is($j->{error}{code}, 'insufficient_storage', '... insufficient_storage');
    like($j->{error}{message} // '', qr/spool/, '... naming the spool');
    is($psql->("SELECT count(*) FROM tiktok.posts"), $rows, '... no row');
    ok(wait_for(sub { !files_in("$fs/body") && !files_in("$fs/spool") }, 10),
       '... no file left behind');

    my $small = TikTokMedia::mp4(seconds => 5, mdat => 's' x 100000);
    my $r = $ngx->post_as(lou => $small, type => 'video/mp4',
                          query => '?privacy_level=SELF_ONLY');
    is($r->{status}, 'queued', 'a small upload afterwards: queued');
    is(scalar(files_in("$fs/spool")), 1, '... spooled');

    unlike($ngx->error_log, qr/\[(alert|emerg)\]|signal \d+/,
           'no alert, no crash');
    $ngx->stop;
    is(system('umount', $fs), 0, 'the tmpfs unmounts (nothing holds it)');
};

done_testing();

END {
    local $?;
    my $fs = $TikTokTest::Tmp && "$TikTokTest::Tmp/fullfs";
    system("mountpoint -q $fs && umount $fs") if $fs && -d $fs;
}
