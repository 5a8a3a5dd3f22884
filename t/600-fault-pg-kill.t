# Fault battery: PostgreSQL killed in the middle of a burst of concurrent
# requests over several endpoints (SIGKILL of the postmaster and its
# backends, then `pg_ctl stop -m immediate`).  Every answer comes in
# bounded time as JSON (503 database_unavailable or the endpoint's own
# answer); once PostgreSQL is back every pooled connection of both workers
# works again; no post is doubled or half-written; no worker crashes.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

# The harness runs PostgreSQL with synchronous_commit=off (fast, and safe
# against anything but a crash of PostgreSQL itself): commits answered just
# before a crash could be lost there, which is no fault of the module.
# Durable commits for this database, as in production (fsync=off is still
# safe: the kernel keeps what was written when only PostgreSQL dies).
$psql->('ALTER DATABASE tiktok SET synchronous_commit = on');

# $pid in an access log of our own: which worker answered what
my $ngx = TikTokTest::Nginx->new(name => 'pgkill', workers => 2,
    http => $TikTokTest::HttpConfig
            . "    log_format pids '\$pid \$status \$request_uri';\n",
    server => <<'CONF')->start;
        access_log logs/pids.log pids;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

TikTokTest::connect_account('kay');
my $vid = $sb->user($sb->default_open_id)->{videos}[5]{id};

# Sends every request at once on its own connection and collects the
# answers: [{ status, json, took, req }], status undef when none came
# within $limit seconds.
sub burst {
    my ($limit, @reqs) = @_;

    my (@out, %by_fh);
    my $sel = IO::Select->new;
    for my $q (@reqs) {
        push @out, { req => $q, buf => '', t0 => time };
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ngx->port) or next;
        my $body = $q->{body} // '';
        print $s "$q->{method} $q->{path} HTTP/1.0\r\nHost: localhost\r\n"
               . "X-User-ID: kay\r\n"
               . ($q->{body} ? "Content-Type: application/json\r\n" : '')
               . "Content-Length: " . length($body) . "\r\n\r\n$body";
        $s->blocking(0);
        $sel->add($s);
        $by_fh{fileno $s} = [ $s, $out[-1] ];
        $q->{after}->() if $q->{after};
    }

    my $deadline = time + $limit;
    while ($sel->count && time < $deadline) {
        for my $fh ($sel->can_read(0.2)) {
            my ($s, $o) = @{ $by_fh{fileno $fh} };
            my $n = sysread($s, my $chunk, 65536);
            next if !defined $n && $!{EAGAIN};
            if ($n) {
                $o->{buf} .= $chunk;
                next;
            }
            $o->{took} = time - $o->{t0};
            $sel->remove($s);
            close $s;
        }
    }

    for my $o (@out) {
        my ($head, $body) = split /\r\n\r\n/, $o->{buf}, 2;
        ($o->{status}) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
        $o->{json} = eval { decode_json($body // '') };
        $o->{location} = $1 if ($head // '') =~ /^Location: (\S+)/mi;
    }

    return @out;
}

my $n_post = 0;
my $waiting;            # requests waiting inside PostgreSQL at the kill

# a mix over the endpoints, each with the answers it may give
sub mix {
    my ($count, $kill) = @_;
    my @r;
    for my $i (1 .. $count) {
        my $k = $i % 6;
        my $q = $k == 0 ? { method => 'GET', path => '/api/tiktok/status',
                            ok => qr/^200$/ }
              : $k == 1 ? { method => 'GET', path => '/api/tiktok/posts',
                            ok => qr/^200$/ }
              : $k == 2 ? { method => 'GET',
                            path => '/api/tiktok/videos?max_count='
                                    . (1 + $i % 20), ok => qr/^200$/ }
              : $k == 3 ? { method => 'GET',
                            path => "/api/tiktok/metrics?video_id=$vid",
                            ok => qr/^200$/ }
              : $k == 4 ? { method => 'POST', path => '/api/tiktok/post',
                            body => encode_json({
                                video_url => 'https://media.example.com/v/b.mp4',
                                title => 'burst-' . ++$n_post,
                                privacy_level => 'SELF_ONLY' }),
                            title => "burst-$n_post", ok => qr/^202$/ }
              : { method => 'GET', path => '/api/tiktok/connect',
                  ok => qr/^302$/ };
        # half the burst answered, then the tables locked so that the next
        # requests wait inside PostgreSQL, then the kill with them in flight
        # and a few more sent to the dead database
        $q->{after} = \&lock if $i == int($count / 2);
        $q->{after} = $kill if $i == int($count * 5 / 6);
        push @r, $q;
    }
    return @r;
}

# every answer: in time, the endpoint's own, or a JSON 503
sub check_burst {
    my ($what, @out) = @_;

    my (%seen, @bad);
    for my $o (@out) {
        my $q = $o->{req};
        my $st = $o->{status} // 'none';
        $seen{$st}++;
        my $fine = defined $o->{took} && $o->{took} < 15
            && ($st =~ $q->{ok}
                ? ($st eq '302' ? ($o->{location} // '') =~ /^https:/
                                : ref $o->{json})
                : $st eq '503'
                  && (($o->{json} // {})->{error}{code} // '')
                     eq 'database_unavailable');
        push @bad, "$q->{method} $q->{path}: $st "
                   . substr($o->{buf} =~ s/.*\r\n\r\n//sr, 0, 200)
            unless $fine;
    }

    is(scalar @bad, 0, "$what: every answer in time, its own or a JSON 503"
                       . " (" . join(', ', map { "$_: $seen{$_}" }
                                      sort keys %seen) . ")")
        or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
    cmp_ok($seen{503} // 0, '>', 0, "$what: ... some met the dead database");
    cmp_ok($waiting, '>=', 4,
           "$what: ... $waiting of them were inside PostgreSQL when it died");

    return grep { $_->{req}{title} } @out;
}

# the lock comes once some of the burst's posts are in (so that there is
# something to lose); the kill when requests have piled up behind it
my $locker;

sub lock {
    my $deadline = time + 10;
    sleep 0.05 while time < $deadline
        && $psql->("SELECT count(*) FROM tiktok.posts"
                   . " WHERE post_info->>'title' LIKE 'burst-%'"
                   . " AND created_at > now() - interval '10 seconds'") < 2;
    $locker = TikTokTest::psql_session();
    $locker->send('BEGIN; LOCK TABLE tiktok.posts, tiktok.accounts,'
                  . ' tiktok.oauth_states IN ACCESS EXCLUSIVE MODE;');
    sleep 0.3;
}

sub piled_up {
    my $deadline = time + 5;
    while (time < $deadline) {
        $waiting = $psql->("SELECT count(*) FROM pg_stat_activity"
                           . " WHERE wait_event_type = 'Lock'");
        last if $waiting >= 4;
        sleep 0.05;
    }
}

sub pg_killed {
    piled_up();
    my $pidfile = "$TikTokTest::PgData/postmaster.pid";
    open my $fh, '<', $pidfile or die "$pidfile: $!";
    chomp(my $pm = <$fh>);
    close $fh;
    my @kids = split ' ', `pgrep -P $pm`;
    kill 'KILL', $pm, @kids;
    my $deadline = time + 10;
    sleep 0.05 while time < $deadline && grep { kill 0, $_ } $pm, @kids;
    # a crashed postmaster leaves its pid file: pg_ctl start copes
    unlink $pidfile;
}

sub pg_immediate {
    piled_up();
    TikTokTest::pg_stop('immediate');
}

# after PostgreSQL is back: at most 15 s until /status answers 200, then
# 48 requests, 8 at a time, every one 200, both workers among them
sub recovered {
    my ($what) = @_;

    my $t0 = time;
    my $first;
    while (time < $t0 + 15) {
        my $r = $ngx->request(GET => '/api/tiktok/status',
                              headers => { 'X-User-ID' => 'kay' });
        last if ($first = $r->{status}) == 200;
        sleep 0.2;
    }
    is($first, 200, sprintf("$what: /status answers 200 again (%.1f s)",
                            time - $t0));

    my $mark = -s $ngx->dir . '/logs/pids.log';
    my %st;
    for (1 .. 6) {
        $st{ $_->{status} // 'none' }++
            for burst(15, map { { method => 'GET', path => $_ % 2
                                  ? '/api/tiktok/status'
                                  : '/api/tiktok/posts' } } 1 .. 8);
    }
    is_deeply(\%st, { 200 => 48 },
              "$what: then 48 requests over the pool, all 200");

    open my $fh, '<', $ngx->dir . '/logs/pids.log' or die $!;
    seek $fh, $mark, 0;
    my %pids;
    while (<$fh>) {
        $pids{$1}++ if m{^(\d+) 200 /api/tiktok/(status|posts)$};
    }
    close $fh;
    is(scalar keys %pids, 2, "$what: ... answered by both workers")
        or diag explain \%pids;
}

# the posts a burst made: those answered 202 exist once, complete; none
# exists twice (a 503 may still have committed: at most once)
sub posts_intact {
    my ($what, @posts) = @_;

    my %rows = map { split / /, $_, 2 } split /\n/, $psql->(
        "SELECT post_info->>'title' || ' ' || count(*) || ' '"
        . " || bool_and(status = 'queued' AND source = 'PULL_FROM_URL'"
        . " AND video_url IS NOT NULL"
        . " AND post_info->>'privacy_level' = 'SELF_ONLY') FROM tiktok.posts"
        . " WHERE post_info->>'title' LIKE 'burst-%'"
        . " GROUP BY post_info->>'title'");

    my ($lost, $doubled, $half, $accepted) = (0, 0, 0, 0);
    for my $o (@posts) {
        my $row = $rows{ $o->{req}{title} };
        if (($o->{status} // '') eq '202') {
            $accepted++;
            $lost++ unless $row;
        }
        next unless $row;
        my ($count, $complete) = split / /, $row;
        $doubled++ if $count > 1;
        $half++ unless $complete eq 'true';
    }

    cmp_ok($accepted, '>', 0, "$what: some posts were accepted");
    is("$lost $doubled $half", '0 0 0',
       "$what: none accepted lost, none doubled, none half-written")
        or diag explain \%rows;
}


# warm up: creator info and one page cached, everything answering
is($ngx->post_as(kay => { video_url => 'https://media.example.com/v/w.mp4',
                          privacy_level => 'SELF_ONLY' })->{status}, 'queued',
   'a post before the faults');
is($ngx->request(GET => '/api/tiktok/videos?max_count=1',
                 headers => { 'X-User-ID' => 'kay' })->{status}, 200,
   'a page before the faults');


# 1. SIGKILL: the postmaster and every backend gone at once

my @posts = check_burst('SIGKILL', burst(30, mix(120, \&pg_killed)));
ok(!-e "$TikTokTest::PgData/postmaster.pid", 'PostgreSQL was killed');
TikTokTest::pg_start();
$locker->close;
recovered('after SIGKILL');
posts_intact('after SIGKILL', @posts);


# 2. pg_ctl stop -m immediate: the backends told to quit at once

@posts = check_burst('immediate stop', burst(30, mix(120, \&pg_immediate)));
TikTokTest::pg_start();
$locker->close;
recovered('after an immediate stop');
posts_intact('after an immediate stop', @posts);


my $log = $ngx->error_log;
unlike($log, qr/\[(alert|emerg)\]/, 'no alert');
unlike($log, qr/exited on signal/, 'no worker crashed');

$ngx->stop;

done_testing();
