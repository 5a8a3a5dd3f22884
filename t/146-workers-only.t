# Only worker processes run the module's background work (DESIGN §5): with
# a proxy_cache_path, nginx forks a cache manager and a cache loader that
# run every module's init_process too, and they must not open PostgreSQL
# connections, LISTEN, or claim posts.  With master_process off the single
# process is the worker and does all of it.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
$sb->set_config({ daily_post_cap => 1000 });
TikTokTest::connect_account('wanda');

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=300ms batch=5;/
    or die;

my $api = <<'CONF';
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

my $ngx = TikTokTest::Nginx->new(name => 'cached', workers => 2,
    http => $http . "    proxy_cache_path $TikTokTest::Tmp/cached/cache"
                  . " keys_zone=pages:1m;\n",
    server => $api . <<'CONF')->start;
        location /cached/ {
            proxy_cache pages;
            proxy_pass http://127.0.0.1:$server_port/plain/;
        }
        location /plain/ { return 200 "plain\n"; }
CONF

# pid => process title, for the master's children
sub children {
    my ($master) = @_;

    my %kids;
    opendir my $d, '/proc' or die "/proc: $!";

    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // '';
        close $fh;

        # "pid (comm) state ppid ..."
        next unless $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $master;

        open $fh, '<', "/proc/$pid/cmdline" or next;
        my $cmd = do { local $/; <$fh> } // '';
        close $fh;

        $cmd =~ s/\0+/ /g;
        $cmd =~ s/\s+\z//;
        $kids{$pid} = $cmd;
    }

    return \%kids;
}

# local TCP port => pid, for the sockets the given processes hold
sub port_owners {
    my (@pids) = @_;

    my %inode;
    for my $pid (@pids) {
        opendir my $d, "/proc/$pid/fd" or next;
        for my $fd (readdir $d) {
            my $l = readlink("/proc/$pid/fd/$fd") // next;
            $inode{$1} = $pid if $l =~ /^socket:\[(\d+)\]$/;
        }
    }

    my %owner;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        <$fh>;
        while (<$fh>) {
            my @f = split;
            my ($port) = $f[1] =~ /:([0-9A-Fa-f]{4})$/ or next;
            $owner{hex $port} = $inode{$f[9]} if exists $inode{$f[9]};
        }
    }

    return \%owner;
}

# the module's connections (client ports), as the superuser sees them
sub module_ports {
    my $out = TikTokTest::psql("SELECT client_port FROM pg_stat_activity"
        . " WHERE application_name LIKE 'ngx_http_tiktok%'"
        . " AND client_port IS NOT NULL");
    return grep { /^\d+$/ } split /\n/, $out;
}

# owner title of every module connection: { port => title }
sub connection_owners {
    my ($kids) = @_;
    my $owner = port_owners(keys %$kids);
    return { map { $_ => (defined $owner->{$_}
                          ? $kids->{ $owner->{$_} } : 'unknown') }
             module_ports() };
}

my $master = $ngx->pid;
my ($kids, $owners);

# every worker has its connection (the LISTEN one, the publisher's claim);
# then a moment more, for any other process that would connect as well
my $deadline = time + 15;
while (time < $deadline) {
    $kids = children($master);
    $owners = connection_owners($kids);
    my %has = map { $_ => 1 } values %$owners;
    my @workers = grep { /worker process/ } values %$kids;
    last if @workers == 2 && $has{'nginx: worker process'}
            && (grep { /cache manager/ } values %$kids)
            && (grep { /cache loader/ } values %$kids);
    sleep 0.2;
}

ok((grep { /cache manager/ } values %$kids), 'a cache manager runs')
    or diag explain $kids;
ok((grep { /cache loader/ } values %$kids), 'a cache loader runs');

sleep 1.5;
$kids = children($master);
$owners = connection_owners($kids);

ok(scalar(keys %$owners), 'the module is connected to PostgreSQL');
is_deeply([ grep { $owners->{$_} !~ /worker process/ } sort keys %$owners ],
          [], 'every module connection belongs to a worker')
    or diag explain $owners;

# the publisher: every post is claimed by a worker (claimed_by host:pid)

my %workers = map { $_ => 1 }
              grep { $kids->{$_} =~ /worker process/ } keys %$kids;
my @claimers;

for my $i (1 .. 6) {
    my $p = $ngx->post_as(wanda => { video_url =>
                                         'https://media.example.com/v/w.mp4',
                                     privacy_level => 'SELF_ONLY' });
    my $id = $p->{post_id} // '';
    my $by = '';
    my $until = time + 15;
    while (time < $until) {
        $by = TikTokTest::psql("SELECT claimed_by FROM tiktok.posts"
                               . " WHERE id = '$id'");
        last if $by ne '';
        sleep 0.1;
    }
    push @claimers, $by;
}

is_deeply([ grep { !/:(\d+)$/ || !$workers{$1} } @claimers ], [],
          'every post is claimed by a worker, never by the cache processes')
    or diag explain { claimers => \@claimers, processes => $kids };

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
unlike($log, qr/worker process \d+ exited/, 'no worker exited');

$ngx->stop;

# master_process off: the one process serves requests, so it runs the pool

my $single = TikTokTest::Nginx->new(name => 'single', http => $http,
                                    server => $api);
$single->write_conf;

my $conf = "$TikTokTest::Tmp/single/conf/nginx.conf";
open my $fh, '<', $conf or die $!;
my $text = do { local $/; <$fh> };
close $fh;
$text =~ s/master_process on;/master_process off;/ or die;
open $fh, '>', $conf or die $!;
print $fh $text;
close $fh;

my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $out = `$bin -p $TikTokTest::Tmp/single/ -c conf/nginx.conf 2>&1`;
is($?, 0, 'nginx starts with master_process off') or diag $out;
TikTokTest::wait_port($single->port, 10);
$single->{running} = 1;

my $r = $single->request(GET => '/api/tiktok/status',
                         headers => { 'X-User-ID' => 'wanda' });
is($r->{status}, 200, 'master_process off: /status from the database');
is(eval { decode_json($r->{content})->{connected} }, JSON::PP::true,
   '... connected');

$single->stop;

done_testing();
