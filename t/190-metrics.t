# Operator metrics (DESIGN 8.5, issue 11).  Blocks (below __DATA__): the
# format and headers of one scrape, HEAD, POST, a refused address, and
# the directives it needs.  Then, in Perl because each takes several
# steps: known traffic over two workers, then a scrape whose counters are
# checked to the unit and whose whole text goes through Prometheus's own
# parser (python3-prometheus-client); posts by status through the
# SECURITY DEFINER aggregate, cached a few seconds; the loopback-only
# location refused from another address; nothing secret or per user in
# it; counters that go on across a reload and a crashed worker; stale
# answers and evictions; the publisher's jobs and calls.

use strict;
use warnings;

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;
my $python = '/usr/bin/python3';

my $metrics = <<'CONF';
        location = /tiktok_metrics {
            tiktok_metrics;
            allow 127.0.0.1;
            deny all;
        }
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

TikTokTest::defaults(config => $metrics);
no_shuffle();
run_tests();

# a TikTok call slower than 2 s is a timeout here
(my $api = $TikTokTest::ApiLocation)
    =~ s/(proxy_ssl_verify on;)/$1\n        proxy_read_timeout 2s;/;

my $http = $TikTokTest::HttpConfig
    . "    log_format pids '\$pid \$request \$status';\n"
    . "    access_log logs/pids.log pids;\n";

my $ngx = TikTokTest::Nginx->new(name => 'metrics', workers => 2,
    http => $http, server => $metrics, api_location => $api)->start;

sub get {
    my ($path, $user, $n) = @_;
    return $n->request(GET => $path,
                       headers => defined $user ? { 'X-User-ID' => $user }
                                                : {})
        if $n;
    return $ngx->request(GET => $path,
                         headers => defined $user ? { 'X-User-ID' => $user }
                                                  : {});
}

sub calls { $sb->calls->{$_[0]} // 0 }

# the whole text through prometheus_client's parser: name => {type, help,
# samples => [[name, {labels}, value]]}; dies on a parse error
sub parse {
    my ($text) = @_;

    my $dir = $TikTokTest::Tmp;
    open my $fh, '>', "$dir/scrape.txt" or die $!;
    print $fh $text;
    close $fh;

    my $out = `$python - "$dir/scrape.txt" 2>&1 <<'PY'
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    families[f.name] = {"type": f.type, "help": f.documentation,
                        "samples": [[s.name, s.labels, s.value]
                                    for s in f.samples]}
print(json.dumps(families))
PY
`;
    die "the Prometheus parser refused the scrape:\n$out" if $? != 0;

    return decode_json($out);
}

# one sample's value: value($families, 'tiktok_requests_total',
# endpoint => 'videos', status => 200); 0 when there is no such sample
sub value {
    my ($fam, $name, %labels) = @_;

    for my $f (values %$fam) {
        for my $s (@{ $f->{samples} }) {
            next unless $s->[0] eq $name;
            next unless keys %{ $s->[1] } == keys %labels;
            next if grep { ($s->[1]{$_} // '') ne $labels{$_} } keys %labels;
            return $s->[2];
        }
    }

    return 0;
}

# A request is counted when nginx logs it, just after its answer went out:
# a scrape on the other worker at that very moment could miss it.
sub scrape {
    my ($n) = @_;
    sleep 0.3;
    my $r = get('/tiktok_metrics', undef, $n);
    is($r->{status}, 200, 'scrape: 200') or diag $r->{content};
    return ($r, parse($r->{content}));
}

# posts of two users in several states, before the first scrape reads them
$psql->(<<'SQL');
INSERT INTO tiktok.posts (user_id, status, source, video_url)
SELECT u, s, 'PULL_FROM_URL', 'https://media.example.com/' || n || '.mp4'
FROM (VALUES ('olga', 'queued', 1), ('olga', 'queued', 2),
             ('olga', 'published', 3), ('pete', 'failed', 4),
             ('pete', 'cancelled', 5)) AS p (u, s, n);
SQL

# 1. known traffic
my $mia = TikTokTest::connect_account('mia');
my $list = calls('/v2/video/list/');
my $refresh = calls('/v2/oauth/token/');

is(get('/api/tiktok/videos', 'mia')->{status}, 200, 'a miss: 200');
is(get('/api/tiktok/videos', 'mia')->{status}, 200, 'a hit: 200');
is(get('/api/tiktok/videos', 'mia')->{status}, 200, 'another hit: 200');
is(get('/api/tiktok/nope', 'mia')->{status}, 404, 'no such route: 404');
is(get('/api/tiktok/status')->{status}, 401, 'no user: 401');
is(get('/api/tiktok/videos?max_count=abc', 'mia')->{status}, 400,
   'a bad parameter: 400, before TikTok');

$sb->fault({ endpoint => '/v2/video/list/', type => 'status',
             status => 500 });
is(get('/api/tiktok/videos?max_count=5', 'mia')->{status}, 502,
   'TikTok answering 500: 502');

$sb->fault({ endpoint => '/v2/video/list/', type => 'delay', ms => 3000 });
is(get('/api/tiktok/videos?max_count=6', 'mia')->{status}, 504,
   'TikTok slower than proxy_read_timeout: 504');
$sb->clear_faults;

# a token due for refresh: refreshed (libcurl), then the list
TikTokTest::connect_account('rex', access => '1 minute');
is(get('/api/tiktok/videos', 'rex')->{status}, 200,
   'a token due for refresh: refreshed, 200');

# a refresh TikTok rejects (in a 200, as OAuth errors come)
TikTokTest::connect_account('una', access => '1 minute');
$sb->fault({ endpoint => '/v2/oauth/token/', type => 'error_code',
             code => 'invalid_grant' });
is(get('/api/tiktok/videos', 'una')->{status}, 401,
   'a refresh TikTok rejects: 401');
$sb->clear_faults;

# rate limited: 429, no stale copy of this page
$sb->fault({ endpoint => '/v2/video/list/', type => 'rate_limit',
             retry_after => 60 });
is(get('/api/tiktok/videos?max_count=7', 'mia')->{status}, 429,
   'TikTok rate-limiting: 429');
$sb->clear_faults;

# every status request on both workers: the sum must not depend on which
my $statuses = 0;
for (1 .. 40) {
    get('/api/tiktok/status', 'mia');
    $statuses++;
}

is(calls('/v2/video/list/') - $list, 5,
   'TikTok saw 5 list calls (miss, 500, slow, rex, rate limit)')
    or diag Test::More::explain $sb->calls;
is(calls('/v2/oauth/token/') - $refresh, 2,
   '... and 2 token calls (rex refreshed, una refused)');

open my $pl, '<', $ngx->dir . '/logs/pids.log' or die $!;
my %pids;
while (<$pl>) {
    $pids{$1}++ if m{^(\d+) GET /api/tiktok/};
}
close $pl;
is(scalar keys %pids, 2, 'both workers answered API requests')
    or diag Test::More::explain \%pids;

# the other worker copies its pool's state every second
sleep 1.5;

# 2. the scrape
my ($r, $m) = scrape();
is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4',
   'Content-Type of the text exposition format');

my %want = (
    'tiktok_requests_total{endpoint="videos",status="200"}' => 4,
    'tiktok_requests_total{endpoint="videos",status="400"}' => 1,
    'tiktok_requests_total{endpoint="videos",status="502"}' => 1,
    'tiktok_requests_total{endpoint="videos",status="504"}' => 1,
    'tiktok_requests_total{endpoint="videos",status="401"}' => 1,
    'tiktok_requests_total{endpoint="videos",status="429"}' => 1,
    'tiktok_requests_total{endpoint="unknown",status="404"}' => 1,
    'tiktok_requests_total{endpoint="status",status="401"}' => 1,
    'tiktok_requests_total{endpoint="status",status="200"}' => $statuses,
    'tiktok_cache_hits_total' => 2,
    'tiktok_cache_misses_total' => 6,
    'tiktok_cache_stale_total' => 0,
    'tiktok_cache_evictions_total' => 0,
    'tiktok_api_calls_total{endpoint="/v2/video/list/",outcome="ok"}' => 2,
    'tiktok_api_calls_total{endpoint="/v2/video/list/",outcome="server_error"}'
        => 1,
    'tiktok_api_calls_total{endpoint="/v2/video/list/",outcome="timeout"}'
        => 1,
    'tiktok_api_calls_total{endpoint="/v2/video/list/",outcome="rate_limited"}'
        => 1,
    'tiktok_api_calls_total{endpoint="/v2/oauth/token/",outcome="ok"}' => 2,
    'tiktok_token_refreshes_total{outcome="ok"}' => 1,
    'tiktok_token_refreshes_total{outcome="rejected"}' => 1,
    'tiktok_token_refreshes_total{outcome="failed"}' => 0,
    'tiktok_workers' => 2,
    'tiktok_pg_connections{state="busy"}' => 0,
    'tiktok_pg_queries_waiting' => 0,
    'tiktok_publisher_jobs_in_flight' => 0,
    'tiktok_posts{status="queued"}' => 2,
    'tiktok_posts{status="published"}' => 1,
    'tiktok_posts{status="failed"}' => 1,
    'tiktok_posts{status="cancelled"}' => 1,
    'tiktok_posts{status="scheduled"}' => 0,
    'tiktok_posts{status="sent_to_inbox"}' => 0,
    'tiktok_metrics_dropped_total' => 0,
);

for my $k (sort keys %want) {
    my ($name, $labels) = $k =~ /^(\w+)(?:\{(.*)\})?$/;
    my %l = map { /^(\w+)="(.*)"$/ } split /,/, $labels // '';
    is(value($m, $name, %l), $want{$k}, "$k $want{$k}");
}

# exactly these request and call series: nothing unexpected counted
my @req = grep { $_->[0] eq 'tiktok_requests_total' }
          @{ $m->{tiktok_requests}{samples} };
is(scalar @req, 9, 'nine request series') or diag Test::More::explain \@req;
my @calls = @{ $m->{tiktok_api_calls}{samples} };
is(scalar @calls, 5, 'five call series') or diag Test::More::explain \@calls;

# the text itself: HELP and TYPE before each family, counters in _total
my $text = $r->{content};
my (%type, %help);
for my $line (split /\n/, $text) {
    if ($line =~ /^# TYPE (\S+) (\S+)$/) {
        $type{$1} = $2;
    } elsif ($line =~ /^# HELP (\S+) \S/) {
        $help{$1} = 1;
    } elsif ($line =~ /^(\w+)[{ ]/) {
        ok($type{$1} && $help{$1}, "$1: HELP and TYPE come first")
            or last;
    }
}
for my $name (sort keys %type) {
    like($name, qr/^tiktok_/, "$name: tiktok_ prefix");
    like($name, qr/_total$/, "$name: a counter ends in _total")
        if $type{$name} eq 'counter';
    ok($help{$name}, "$name: has HELP");
}
is($type{tiktok_webhook_deliveries_total}, 'counter',
   'webhook deliveries: declared');
unlike($text, qr/^tiktok_webhook_deliveries_total/m,
       '... without samples (no webhooks yet)');
for my $g (qw(tiktok_pg_connections tiktok_pg_queries_waiting
              tiktok_publisher_jobs_in_flight tiktok_posts tiktok_workers
              tiktok_cache_zone_used_bytes tiktok_cache_zone_size_bytes)) {
    is($type{$g}, 'gauge', "$g is a gauge");
}
cmp_ok(value($m, 'tiktok_cache_zone_size_bytes'), '==', 1024 * 1024,
       'zone size: tiktok_cache_zone 1m');
cmp_ok(value($m, 'tiktok_cache_zone_used_bytes'), '>', 0, 'zone used > 0');
cmp_ok(value($m, 'tiktok_cache_zone_used_bytes'), '<', 1024 * 1024,
       '... and below its size');

# the pools of both workers: as PostgreSQL sees them (each worker also has
# its listener connection)
my $backends = $psql->("SELECT count(*) FROM pg_stat_activity"
                       . " WHERE usename = 'tiktok_app'");
chomp $backends;
is(value($m, 'tiktok_pg_connections', state => 'idle'), $backends - 2,
   "idle pool connections: PostgreSQL's count less the 2 listeners")
    or diag $psql->("SELECT pid, state, query FROM pg_stat_activity"
                    . " WHERE usename = 'tiktok_app'");

# nothing secret, nothing per user
for my $secret ($ENV{TIKTOK_CLIENT_SECRET}, $ENV{TIKTOK_TOKEN_KEY},
                $mia->{access_token}, $mia->{refresh_token},
                $mia->{open_id}) {
    unlike($text, qr/\Q$secret\E/, 'no secret or open_id in the scrape');
}
for my $user (qw(mia rex una olga pete)) {
    unlike($text, qr/\b\Q$user\E\b/, "no user id ($user) in the scrape");
}

# 3. posts by status are read at most every 5 seconds
$psql->("INSERT INTO tiktok.posts (user_id, status, source, video_url)"
        . " VALUES ('olga', 'queued', 'PULL_FROM_URL',"
        . " 'https://media.example.com/f.mp4')");
(undef, $m) = scrape();
is(value($m, 'tiktok_posts', status => 'queued'), 2,
   'a new post is not read at once (cached)');
sleep 5.2;
(undef, $m) = scrape();
is(value($m, 'tiktok_posts', status => 'queued'), 3,
   '... but within 5 seconds');

# the aggregate: SECURITY DEFINER, for tiktok_app, counts only
is($psql->("SELECT prosecdef FROM pg_proc WHERE proname = 'post_counts'"),
   't', 'tiktok.post_counts() is SECURITY DEFINER');
is($psql->("SET ROLE tiktok_app; SELECT count(*) FROM tiktok.posts"),
   '0', 'tiktok_app alone sees no post');
is($psql->("SET ROLE tiktok_app;"
           . " SELECT posts FROM tiktok.post_counts()"
           . " WHERE status = 'queued'"),
   '3', '... the aggregate counts them all');
is($psql->("SELECT has_function_privilege('public', 'tiktok.post_counts()',"
           . " 'EXECUTE')"), 'f', '... and is not for PUBLIC');

# 4. the location is for the loopback only (a block cannot choose the
# address it connects from)
my $deadline;
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $ngx->port,
                              LocalAddr => '127.0.0.2', Proto => 'tcp');
SKIP: {
    skip 'cannot connect from 127.0.0.2', 1 unless $s;
    print $s "GET /tiktok_metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$s> // '';
    like($resp, qr{^HTTP/1\.1 403 }, 'from 127.0.0.2: 403');
}

is(get('/tiktok_metrics', undef)->{status}, 200, 'from 127.0.0.1: 200');

# 5. a reload keeps the zone, and the counters go on
my $before = value($m, 'tiktok_requests_total', endpoint => 'status',
                   status => 200);
$ngx->reload;
sleep 1;
is(get('/api/tiktok/status', 'mia')->{status}, 200, 'after a reload');
(undef, $m) = scrape();
is(value($m, 'tiktok_requests_total', endpoint => 'status', status => 200),
   $before + 1, '... the counters went on counting');

# wait for the old workers to be gone
$deadline = time + 10;
while (time < $deadline) {
    (undef, $m) = scrape();
    last if value($m, 'tiktok_workers') == 2;
    sleep 0.5;
}
is(value($m, 'tiktok_workers'), 2, '... and 2 workers again once the old '
   . 'ones left');

# 6. a worker killed: its gauges leave the sum, the counters stay
my @workers = grep { /^\d+$/ }
    split /\s+/, `pgrep -P @{[ $ngx->pid ]}`;
is(scalar @workers, 2, 'two workers') or diag "@workers";
kill 'KILL', $workers[0];
sleep 1.5;
(undef, $m) = scrape();
is(value($m, 'tiktok_workers'), 2, 'a worker killed: its replacement '
   . 'counts, the dead one does not');
is(value($m, 'tiktok_requests_total', endpoint => 'status', status => 200),
   $before + 1, '... and no count was lost');

# 7. stale answers and evictions, in a small zone whose entries expire in
# 3 seconds (and are dropped 3 seconds later; whole seconds, so not less),
# a zone of its own: its own counters
(my $small_http = $TikTokTest::HttpConfig)
    =~ s/tiktok_cache_zone [^;]+;/tiktok_cache_zone small:128k ttl=3s;/;
my $small = TikTokTest::Nginx->new(name => 'small', http => $small_http,
    server => $metrics)->start;

TikTokTest::connect_account('sam');
is(get('/api/tiktok/videos', 'sam', $small)->{status}, 200, 'small: a miss');
sleep 3.2;
$sb->fault({ endpoint => '/v2/video/list/', type => 'rate_limit',
             retry_after => 60 });
my $stale = get('/api/tiktok/videos', 'sam', $small);
is($stale->{status}, 200, 'expired and rate-limited: the stale page');
like($stale->{content}, qr/"stale":true/, '... marked stale');
$sb->clear_faults;

(undef, $m) = scrape($small);
is(value($m, 'tiktok_cache_stale_total'), 1, 'one stale answer');
is(value($m, 'tiktok_cache_misses_total'), 1, 'one miss');
is(value($m, 'tiktok_cache_evictions_total'), 0, 'no eviction yet');
is(value($m, 'tiktok_cache_zone_size_bytes'), 128 * 1024, 'a 128k zone');
is(value($m, 'tiktok_api_calls_total', endpoint => '/v2/video/list/',
         outcome => 'rate_limited'), 1, 'the 429 that made it stale');

# pages of 10 kB and their metrics entries for users one after the other
for my $i (1 .. 12) {
    TikTokTest::connect_account("fill$i");
    get('/api/tiktok/videos', "fill$i", $small);
}
(undef, $m) = scrape($small);
is(value($m, 'tiktok_cache_misses_total'), 13, '12 more misses');
cmp_ok(value($m, 'tiktok_cache_evictions_total'), '>', 0,
       'a full zone evicted entries');
cmp_ok(value($m, 'tiktok_cache_zone_used_bytes'), '>', 64 * 1024,
       '... and is mostly used');
$small->stop;

# 9. the publisher: a job in flight while TikTok is slow to answer its
# init; every call it and the request made counted as TikTok saw them
$psql->("UPDATE tiktok.posts SET status = 'cancelled'"
        . " WHERE status = 'queued'");
(my $pub_http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms batch=5;/
    or die;
my $pub = TikTokTest::Nginx->new(name => 'pub', workers => 2,
    http => $pub_http, server => $metrics)->start;
$sb->set_config({ daily_post_cap => 1000 });
TikTokTest::connect_account('pia');
my %seen = %{ $sb->calls };

$sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'delay',
             ms => 3000 });
my $p = $pub->post_as(pia => { video_url => 'https://media.example.com/a.mp4',
                               title => 'metrics',
                               privacy_level => 'PUBLIC_TO_EVERYONE' });
is($p->{status}, 'queued', 'a post queued');

my $jobs = 0;
$deadline = time + 3;
while (time < $deadline && !$jobs) {
    (undef, $m) = scrape($pub);
    $jobs = value($m, 'tiktok_publisher_jobs_in_flight');
}
is($jobs, 1, 'one publisher job in flight while its init waits');

my $status = '';
$deadline = time + 20;
while (time < $deadline && $status !~ /^(published|failed)$/) {
    my $g = $pub->request(GET => "/api/tiktok/posts/$p->{post_id}",
                          headers => { 'X-User-ID' => 'pia' });
    $status = eval { decode_json($g->{content})->{status} } // '';
    sleep 0.25;
}
is($status, 'published', '... published');
sleep 0.5;
(undef, $m) = scrape($pub);
is(value($m, 'tiktok_publisher_jobs_in_flight'), 0, '... and no job after');

my $now = $sb->calls;
for my $ep (qw(/v2/post/publish/creator_info/query/
               /v2/post/publish/video/init/
               /v2/post/publish/status/fetch/)) {
    my $sum = 0;
    $sum += value($m, 'tiktok_api_calls_total', endpoint => $ep,
                  outcome => $_)
        for qw(ok rate_limited client_error server_error timeout);
    is($sum, ($now->{$ep} // 0) - ($seen{$ep} // 0),
       "$ep: counted as often as TikTok saw it");
}
is(value($m, 'tiktok_api_calls_total',
         endpoint => '/v2/post/publish/creator_info/query/',
         outcome => 'ok'), 2,
   'creator info twice, ok: the request (subrequest), the publisher (libcurl)');
is(value($m, 'tiktok_api_calls_total',
         endpoint => '/v2/post/publish/video/init/', outcome => 'ok'), 1,
   'one init, ok');
$pub->stop;

my @alerts = grep { /\[(alert|emerg)\]/ && !/exited on signal 9/ }
             split /\n/, $ngx->error_log;
is(scalar @alerts, 0, 'no alert in the error log but the SIGKILL')
    or diag Test::More::explain \@alerts;


__DATA__

=== TEST 1: a scrape: Prometheus's text format, HELP and TYPE first
--- request
GET /tiktok_metrics
--- error_code: 200
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body_like chomp
\A# HELP tiktok_requests_total API requests answered, by route and HTTP status\.\n# TYPE tiktok_requests_total counter\n# HELP tiktok_cache_hits_total
--- no_error_log
[error]
[alert]



=== TEST 2: HEAD: the headers only
--- request
HEAD /tiktok_metrics
--- error_code: 200
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body
--- no_error_log
[error]
[alert]



=== TEST 3: another method: 405
--- request
POST /tiktok_metrics
x
--- error_code: 405



=== TEST 4: a client the location does not allow: 403
--- config
    location = /tiktok_metrics {
        tiktok_metrics;
        allow 127.0.0.2;
        deny all;
    }
--- request
GET /tiktok_metrics
--- error_code: 403
--- error_log
access forbidden by rule



=== TEST 5: without tiktok_cache_zone, where the counters live
--- http_config
    tiktok_postgres "host=127.0.0.1 dbname=app user=tiktok_app";
--- must_die
--- error_log
"tiktok_metrics" is used but "tiktok_cache_zone" is not set in the http block



=== TEST 6: without tiktok_postgres, which counts the posts
--- http_config
    tiktok_cache_zone metrics_only:1m;
--- must_die
--- error_log
"tiktok_metrics" is used but "tiktok_postgres" is not set in the http block



=== TEST 7: twice in one location
--- config
    location = /tiktok_metrics {
        tiktok_metrics;
        tiktok_metrics;
    }
--- must_die
--- error_log
"tiktok_metrics" directive is duplicate
