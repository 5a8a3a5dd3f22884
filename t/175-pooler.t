# Behind a transaction pooler (DESIGN §5 "Poolers"), with Debian's
# PgBouncer in pool_mode = transaction in front of PostgreSQL: requests
# work, LISTEN does not.  Without listen= a purge still reaches another
# node within 5 s (purge records read every few seconds) and the module
# warns once that its listener is behind a transaction pooler; with
# listen= pointing at PostgreSQL itself a purge arrives within a second and
# a post queued through another node wakes a publisher at once.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

my $server = <<'CONF';
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

my $warning = qr/listener .*behind a transaction pooler/;

# tiktok_postgres "$dsn" pool=4 timeout=5s [$extra]; scheduler as given
sub http_conf {
    my (%o) = @_;
    my $http = $TikTokTest::HttpConfig;
    $http =~ s/tiktok_postgres\s+"[^"]*"/tiktok_postgres "$o{dsn}"/ or die;
    $http =~ s/(tiktok_postgres [^;]*);/$1 $o{extra};/ if $o{extra};
    $http =~ s/tiktok_scheduler\s+off;/tiktok_scheduler $o{scheduler};/
        if $o{scheduler};
    return $http;
}

sub nginx {
    my (%o) = @_;
    return TikTokTest::Nginx->new(name => $o{name}, workers => 1,
        http => http_conf(%o), server => $server)->start;
}

sub get {
    my ($ngx, $path, $user) = @_;
    my $r = $ngx->request(GET => $path, headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub within {
    my ($limit, $what) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return time - $t0 if $what->();
        sleep 0.05;
    }
    return undef;
}

# user cached on $node, disconnected through $from: seconds until $node
# stops serving the cached page (undef: not within $limit)
sub purge_seen {
    my ($from, $node, $user, $limit) = @_;

    TikTokTest::connect_account($user);
    get($node, '/api/tiktok/videos', $user);
    is(get($node, '/api/tiktok/videos', $user)->{json}{cached},
       JSON::PP::true, "$user is cached on $node->{name}");

    is($from->request(POST => '/api/tiktok/disconnect',
                      headers => { 'X-User-ID' => $user })->{status}, 200,
       "$user disconnects through $from->{name}");

    return within($limit, sub {
        get($node, '/api/tiktok/videos', $user)->{status} == 401 });
}

my $bouncer = TikTokTest::PgBouncer->new(mode => 'transaction');
my $direct = $TikTokTest::PgDsn;
my $pooled = $bouncer->dsn;

is($psql->("SELECT 1", may_fail => 0), 1, 'PostgreSQL is up');


# 0. listen= is checked like the conninfo itself

{
    my $t = TikTokTest::Nginx->new(name => 'bad-listen', workers => 1,
        http => http_conf(dsn => $direct,
                          extra => '"listen=host=127.0.0.1 bogus_option=1"'),
        server => $server);
    $t->write_conf;
    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $out = `$bin -t -p ${\ $t->dir }/ -c conf/nginx.conf 2>&1`;
    isnt($?, 0, 'nginx -t refuses a malformed listen= conninfo');
    like($out, qr/"tiktok_postgres" has an invalid listen= conninfo: .*bogus/,
         '... naming the directive and the problem');
}


# 1. (b) every node through PgBouncer in transaction mode, no listen=: the
# purge reaches node B within 5 s, and B says its listener is pooled

my $a = nginx(name => 'pooled-a', dsn => $pooled);
my $b = nginx(name => 'pooled-b', dsn => $pooled);

is(get($a, '/api/tiktok/status', 'nobody')->{status}, 200,
   'requests work through the pooler');

sleep 1;    # the listeners are up
my $took = purge_seen($a, $b, 'tina', 8);
ok(defined $took && $took < 5, sprintf('... and B purges her within 5 s'
                                       . ' (%s)', defined $took
                                       ? sprintf('%.1f s', $took)
                                       : 'still cached after 8 s'));


# 2. (d) the warning, once, when the listener is behind the pooler

ok(within(15, sub { $b->error_log =~ $warning }),
   'B warns that its listener is behind a transaction pooler');
sleep 1;
my @w = $b->error_log =~ /$warning/g;
is(scalar @w, 1, '... once');
like($b->error_log, qr/\[warn\].*$warning/, '... as a warning');


# 3. (c) listen= straight to PostgreSQL while requests use the pooler: the
# purge within a second; a post queued through A wakes C's publisher
# (timer 15 s) within a couple of seconds

my $c = nginx(name => 'listen-c', dsn => $pooled,
              extra => qq{"listen=$direct"},
              scheduler => 'on interval=15s');
sleep 1;

$took = purge_seen($a, $c, 'uma', 5);
ok(defined $took && $took < 1, sprintf('C purges her within a second (%s)',
                                       defined $took
                                       ? sprintf('%.2f s', $took)
                                       : 'not within 5 s'));

$sb->set_config({ daily_post_cap => 1000 });
TikTokTest::connect_account('vic');

# two posts 3 s apart: C's 15 s timer can be close to at most one of them
for my $n (1, 2) {
    my $p = $a->post_as(vic => {
        video_url => "https://media.example.com/v/clip$n.mp4",
        privacy_level => 'SELF_ONLY' });
    is($p->{status}, 'queued', "post $n queued through A (no publisher)");
    my $id = $p->{post_id} // 'none';
    my $claimed = within(8, sub {
        $psql->("SELECT claimed_at IS NOT NULL FROM tiktok.posts"
                . " WHERE id = '$id'") eq 't' });
    my $wait = $psql->("SELECT extract(epoch FROM claimed_at - created_at)"
                       . " FROM tiktok.posts WHERE id = '$id'");
    ok(defined $claimed && $wait ne '' && $wait < 2,
       "... C's publisher took it within 2 s ($wait s)");
    sleep 3;
}

unlike($c->error_log, $warning, 'C does not warn: its listener is direct');

for my $n ($a, $b, $c) {
    unlike($n->error_log, qr/\[(alert|crit|emerg)\]/, "$n->{name}: no alert");
}

$_->stop for $a, $b, $c;
$bouncer->stop;

done_testing();
