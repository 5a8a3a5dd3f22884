package TikTokBench;

# What bench/soak and bench/scale share: the checks before a run, a
# production-like nginx with several workers, users connected in bulk, the
# workers' RSS, the module's metrics, a sandbox log reader and parallel
# clients.  `use TikTokBench;` after setting $ENV (see check_build) starts,
# through TikTokTest, a throwaway PostgreSQL and the TikTok sandbox; its END
# blocks (and TikTokTest's) stop everything started.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use POSIX ();
use Time::HiRes qw(time sleep);

our $Root;

BEGIN {
    $Root = abs_path(dirname(__FILE__) . '/../..');

    $ENV{TEST_NGINX_TIKTOK_MODULE} ||= "$Root/build/ngx_http_tiktok_module.so";
    $ENV{TIKTOK_UNIT_DIR} ||= "$Root/build/unit";

    for my $f ($ENV{TEST_NGINX_TIKTOK_MODULE},
               "$ENV{TIKTOK_UNIT_DIR}/tiktok_seal") {
        die "bench: $f is missing; run `make` first (or `make bench`)\n"
            unless -e $f;
    }
}

use lib "$Root/t/lib";

use HTTP::Tiny;
use JSON::PP;
use TikTokTest;

use Exporter 'import';
our @EXPORT = qw(note thousands connect_users bench_nginx worker_pids
                 rss_kb metrics no_alert sandbox_log_since in_parallel
                 wait_until);

our $Start = time;
our $Sb = $TikTokTest::Sandbox;

$| = 1;
$SIG{PIPE} = 'IGNORE';

# ^C or TERM: exit through the END blocks, which stop nginx (by the pid
# files in its directory) before TikTokTest's cleanup removes that directory
$SIG{INT} = $SIG{TERM} = sub { exit 130 };

my @children;              # in_parallel's, killed at END if still running


sub note { printf STDERR "# [%6.1fs] %s\n", time - $Start, join '', @_ }


sub thousands {
    my $n = reverse sprintf '%.0f', $_[0];
    $n =~ s/(\d{3})(?=\d)/$1,/g;
    return scalar reverse $n;
}


# connect_users(@users) -> { user => access token }: an account for each,
# holding tokens the sandbox really issued (each user its own token, so
# TikTok's per-token limits are each user's own), sealed as the module
# seals them; one INSERT per 500 users
sub connect_users {
    my @users = @_;

    my $key = $ENV{TIKTOK_TOKEN_KEY};
    my $key_id = TikTokTest::key_id($key);
    my $seal = TikTokTest::unit_dir() . '/tiktok_seal';
    my $scope = 'user.info.basic,video.list,video.publish';
    my (@rows, %tokens);

    for my $u (@users) {
        my $t = $Sb->mint_tokens({ open_id => $Sb->default_open_id,
                                   scope => $scope });
        my @hex;
        for my $col ([access_token => $t->{access_token}],
                     [refresh_token => $t->{refresh_token}]) {
            open my $fh, '-|', $seal, 'seal', $key, $u, @$col
                or die "bench: $seal: $!\n";
            my $hex = <$fh>;
            close $fh or die "bench: $seal failed ($?)\n";
            chomp $hex;
            push @hex, $hex;
        }
        $tokens{$u} = $t->{access_token};
        push @rows, sprintf("('%s', '%s', string_to_array('%s', ','), "
                            . "'\\x%s', '\\x%s', now() + interval '2 hours', "
                            . "now() + interval '180 days', '\\x%s')",
                            $u, $t->{open_id}, $scope, @hex, $key_id);
    }

    while (my @part = splice @rows, 0, 500) {
        TikTokTest::psql('INSERT INTO tiktok.accounts (user_id, open_id, '
            . 'scopes, access_token_enc, refresh_token_enc, '
            . 'access_expires_at, refresh_expires_at, key_id) VALUES '
            . join(",\n", @part) . ';');
    }

    return \%tokens;
}


# bench_nginx(name => ..., workers => 2, scheduler => 'on interval=5s
# batch=20', server => ...): an nginx as conf.example configures one: a
# 10 MB cache zone, the publisher on, the internal location over kept-alive
# TLS connections to "TikTok", the metrics location, no access log
sub bench_nginx {
    my (%o) = @_;

    my $port = $Sb->port;
    my $ca = $Sb->ca_file;
    my $sched = $o{scheduler} // 'on interval=5s batch=20';

    (my $http = $TikTokTest::HttpConfig)
        =~ s/tiktok_cache_zone [^;]+;/tiktok_cache_zone $o{name}:10m ttl=1h;/
        or die "bench: no tiktok_cache_zone in TikTokTest's http config\n";
    $http =~ s/tiktok_scheduler\s+off;/tiktok_scheduler $sched;/
        or die "bench: no tiktok_scheduler in TikTokTest's http config\n";
    $http .= <<"EOF" . ($o{http} // '');
    upstream bench_tiktok_api {
        server 127.0.0.1:$port;
        keepalive 32;
        keepalive_timeout 60s;
    }
EOF

    my $api = <<"EOF";
        location /_tiktok_api/ {
            internal;
            proxy_pass https://bench_tiktok_api/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $ca;
            proxy_ssl_session_reuse on;
        }
EOF

    my $main = $TikTokTest::MainConfig . "worker_rlimit_nofile 8192;\n"
             . ($o{main} // '');

    return TikTokTest::Nginx->new(
        name => "bench-$o{name}", workers => $o{workers} // 2, main => $main,
        http => $http, api_location => $api,
        server => <<"EOF" . ($o{server} // ''))->start;
        access_log off;
        client_max_body_size @{[ $o{max_body} // "100m" ]};
        client_body_buffer_size 1m;
        location /api/tiktok/ {
            tiktok_user_id \$http_x_user_id;
            tiktok_api;
        }
        location = /tiktok_metrics {
            tiktok_metrics;
        }
EOF
}


# the workers of an nginx that are not shutting down, in pid order, once
# there are as many as configured (a reload replaces them)
sub worker_pids {
    my ($ngx) = @_;

    my $deadline = time + 10;

    while (time < $deadline) {
        my $master = $ngx->pid or die "bench: no nginx pid\n";
        my @kids;

        opendir my $d, '/proc' or die "bench: /proc: $!\n";
        for my $pid (grep { /^\d+$/ } readdir $d) {
            open my $fh, '<', "/proc/$pid/stat" or next;
            my $stat = <$fh> // next;
            my ($ppid) = $stat =~ /\) \S+ (\d+)/ or next;
            next unless $ppid == $master;
            open my $cf, '<', "/proc/$pid/cmdline" or next;
            my $cmd = <$cf> // '';
            push @kids, $pid if $cmd =~ /worker process/
                                && $cmd !~ /shutting down/;
        }
        closedir $d;

        return sort { $a <=> $b } @kids if @kids == $ngx->{workers};
        sleep 0.1;
    }

    die "bench: cannot tell the workers of nginx $ngx->{name}\n";
}


sub rss_kb {
    my ($pid) = @_;

    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (my $l = <$fh>) {
        return $1 if $l =~ /^VmRSS:\s+(\d+) kB/;
    }
    return undef;
}


# the module's metrics (Prometheus text) as { 'name{labels}' => value }
sub metrics {
    my ($ngx) = @_;

    my $r = $ngx->request(GET => '/tiktok_metrics');
    die "bench: /tiktok_metrics answered $r->{status}\n"
        unless $r->{status} == 200;

    my %m;
    for (split /\n/, $r->{content}) {
        next if /^#/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or next;
        $m{$k} = $v;
    }
    return \%m;
}


# dies when nginx logged an alert (a worker crash, a leaked connection...)
sub no_alert {
    my ($ngx) = @_;
    my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, $ngx->error_log;
    die "bench: $ngx->{name} logged:\n", join("\n", @bad), "\n" if @bad;
}


# the sandbox's log lines written since byte $at: [endpoint, status]
sub sandbox_log_since {
    my ($at) = @_;
    my @lines;

    open my $fh, '<', $Sb->log_file or die "bench: sandbox log: $!\n";
    seek $fh, $at, 0;
    while (my $l = <$fh>) {
        my ($path, $status) = $l =~ m{\s(?:GET|POST|PUT|DELETE)\s(/[^?\s]*)\S*
                                \s->\s(\S+)\s}x or next;
        push @lines, [$path, $status];
    }
    close $fh;
    return \@lines;
}


# in_parallel($n, sub { my ($i) = @_; ...; return $text }): $n children,
# each its own share of the work; the text each returned, in order
sub in_parallel {
    my ($n, $work) = @_;
    my (@out, %pipe);

    for my $i (0 .. $n - 1) {
        pipe my $r, my $w or die "bench: pipe: $!\n";
        my $pid = fork // die "bench: fork: $!\n";
        if (!$pid) {
            close $r;
            local $SIG{ALRM} = 'DEFAULT';
            local $SIG{INT} = $SIG{TERM} = sub { POSIX::_exit(130) };
            my $text = eval { $work->($i) };
            print $w defined $text ? $text : "ERROR $@";
            close $w;
            POSIX::_exit(0);      # no END blocks: they belong to the parent
        }
        close $w;
        push @children, $pid;
        $pipe{$pid} = [$i, $r];
    }

    for my $pid (keys %pipe) {
        my ($i, $r) = @{ $pipe{$pid} };
        local $/;
        $out[$i] = <$r> // '';
        close $r;
        waitpid $pid, 0;
        @children = grep { $_ != $pid } @children;
        die "bench: a client died: $out[$i]\n" if $out[$i] =~ /^ERROR /;
    }

    return @out;
}


# wait_until($seconds, $step, sub { ... true when done }) -> true if done
sub wait_until {
    my ($secs, $step, $done) = @_;
    my $deadline = time + $secs;

    while (time < $deadline) {
        return 1 if $done->();
        sleep $step;
    }
    return $done->();
}


# a JSON client of nginx on one kept-alive connection
sub client {
    return HTTP::Tiny->new(timeout => 30, max_redirect => 0,
                           keep_alive => 1);
}


END {
    local $?;
    for my $pid (@children) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
}

1;
