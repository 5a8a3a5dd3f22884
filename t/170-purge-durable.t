# Durable purges (DESIGN §5): a disconnect writes a purge record as well as
# NOTIFY tiktok_purge, so a node whose listener was away when the
# notification went out replays the record once it is back; and a page
# whose fetch started before a purge is not stored after it.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

my $server = <<'CONF';
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub nginx {
    my (%o) = @_;
    my $http = $TikTokTest::HttpConfig;
    if ($o{dsn}) {
        $http =~ s/tiktok_postgres\s+"[^"]*"/tiktok_postgres "$o{dsn}"/
            or die;
    }
    $http .= "    log_format tt '\$request \$status \$tiktok_cache_status';\n"
           . "    access_log logs/tiktok.log tt;\n";
    return TikTokTest::Nginx->new(name => $o{name}, workers => 1,
        http => $http, server => $server)->start;
}

sub get {
    my ($ngx, $path, $user) = @_;
    my $r = $ngx->request(GET => $path, headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub disconnect {
    my ($ngx, $user) = @_;
    return $ngx->request(POST => '/api/tiktok/disconnect',
                         headers => { 'X-User-ID' => $user })->{status};
}

# polls $what (a sub) until it returns true or $limit seconds pass; returns
# the seconds it took, or undef
sub within {
    my ($limit, $what) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return time - $t0 if $what->();
        sleep 0.1;
    }
    return undef;
}

# node A talks to PostgreSQL directly; node B through a forwarder this test
# can cut, which takes B's whole path to the database away (pool and
# listener alike) and gives it back
my $proxy = TikTokTest::TcpProxy->new(to => $TikTokTest::PgPort);
(my $b_dsn = $TikTokTest::PgDsn) =~ s/port=\d+/port=${\ $proxy->port }/
    or die;

my $a = nginx(name => 'node-a');
my $b = nginx(name => 'node-b', dsn => $b_dsn);


# 0. the records: tiktok_app writes only its own user's and reads them only
# through tiktok.purges_after()

{
    my $app = sub { scalar $psql->("BEGIN; SELECT set_config('app.user_id',"
                                   . " 'olga', true); $_[0]; COMMIT;",
                                   user => 'tiktok_app', may_fail => 1) };
    unlike($app->("INSERT INTO tiktok.purges (user_id) VALUES ('olga')"),
           qr/ERROR/, 'tiktok_app records a purge of its own user');
    like($app->("INSERT INTO tiktok.purges (user_id) VALUES ('pete')"),
         qr/row-level security/, '... not of another user');
    like($app->("SELECT count(*) FROM tiktok.purges"),
         qr/permission denied/, '... and cannot read the table');
    like($app->("SELECT user_id FROM tiktok.purges_after(0, 10)"),
         qr/^olga$/m, '... but reads the records through purges_after()');
    $psql->("DELETE FROM tiktok.purges");
}


# 1. B's listener is away while A disconnects the user: the notification
# is lost to B, the record is not, and B replays it once it is back.

TikTokTest::connect_account('rita');
is(get($b, '/api/tiktok/videos', 'rita')->{status}, 200, 'rita: B fetches');
is(get($b, '/api/tiktok/videos', 'rita')->{json}{cached}, JSON::PP::true,
   '... and has her page cached');

# a record older than any cache could still need: deleted by a listener
$psql->("INSERT INTO tiktok.purges (user_id, created_at)"
        . " VALUES ('ghost', now() - interval '3 days')", may_fail => 1);

$proxy->stop;
sleep 0.3;
is(disconnect($a, 'rita'), 200, 'rita disconnects through A meanwhile');
is(scalar $psql->("SELECT count(*) FROM tiktok.purges"
                  . " WHERE user_id = 'rita'", may_fail => 1), 1,
   '... which wrote one purge record');
sleep 0.5;
$proxy->start;

my $took = within(8, sub {
    get($b, '/api/tiktok/videos', 'rita')->{status} == 401 });
ok(defined $took, 'B purged rita after its listener came back (replay)');
my $r = get($b, '/api/tiktok/videos', 'rita');
is($r->{json}{error}{code}, 'not_connected', '... not_connected, not cached');
ok(within(8, sub { $psql->("SELECT count(*) FROM tiktok.purges"
                           . " WHERE user_id = 'ghost'", may_fail => 1)
                   eq '0' }),
   'the 3-day-old purge record was deleted');


# 2. A page whose fetch started before the purge is not stored after it:
# B's /videos waits at TikTok while A disconnects the user and B applies
# the purge; the page that then arrives is answered but not cached.

TikTokTest::connect_account('sam');
$sb->fault({ endpoint => '/v2/video/list/', type => 'delay', ms => 4000,
             count => 1 });
# the revoke fails (best effort): TikTok still answers the token in flight
$sb->fault({ endpoint => '/v2/oauth/revoke/', type => 'status',
             status => 503, count => 1 });

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $b->port) or die $!;
print $sock "GET /api/tiktok/videos HTTP/1.0\r\nHost: localhost\r\n"
          . "X-User-ID: sam\r\n\r\n";
sleep 1;    # the call is at TikTok now, delayed

is(disconnect($a, 'sam'), 200, 'sam disconnects through A mid-fetch');

my $answer = do { local $/; <$sock> } // '';
close $sock;
like($answer, qr{^HTTP/1\.\d 200}, "B's fetch in flight is answered");
my ($body) = $answer =~ /\r\n\r\n(.*)\z/s;
my $page = eval { decode_json($body) } || {};
my $id = $page->{videos}[0]{id} // 'none';

$r = get($b, '/api/tiktok/videos', 'sam');
is($r->{status}, 401, 'the page fetched before the purge was not stored');
is($r->{json}{error}{code}, 'not_connected', '... not_connected');
$r = get($b, "/api/tiktok/metrics?video_id=$id", 'sam');
is($r->{status}, 401, '... nor were its videos\' metrics');
like(`cat ${\ $b->dir }/logs/tiktok.log`,
     qr{GET /api/tiktok/videos HTTP/1\.1 401 MISS}, '... a MISS on B');

for my $n ($a, $b) {
    unlike($n->error_log, qr/\[(alert|crit|emerg)\]/,
           "$n->{name}: no alert");
}

$b->stop;
$a->stop;

done_testing();
