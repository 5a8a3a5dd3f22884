# PostgreSQL refusing at once: through a Unix socket with nobody listening,
# libpq fails inside PQconnectStartParams, so a query fails before
# ngx_http_tiktok_pg_run returns.  Every endpoint that needs the database
# answers 503 JSON (the callback its error redirect), no worker crashes,
# nothing is logged at [alert]; once PostgreSQL is back the pool recovers
# and the publisher claims posts again.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $dsn = TikTokTest::pg_socket_dsn();

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_postgres\s+"[^"]*"/tiktok_postgres "$dsn"/ or die;
$http =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=300ms batch=5;/
    or die;

my $ngx = TikTokTest::Nginx->new(name => 'pgdown', workers => 2,
    http => $http, server => <<'CONF')->start;
        client_max_body_size 10m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /plain { return 200 "plain\n"; }
CONF

my $sb = $TikTokTest::Sandbox;
$sb->set_config({ daily_post_cap => 1000 });
TikTokTest::connect_account('dora');

my $url = 'https://media.example.com/v/clip.mp4';
my $video = TikTokMedia::mp4(seconds => 2, mdat => 'd' x 5000);
my $uuid = '00000000-0000-4000-8000-000000000001';
my $state = 'S' x 43;

sub req {
    my ($method, $path, %o) = @_;
    return $ngx->request($method, $path,
        headers => { 'X-User-ID' => 'dora', %{ $o{headers} || {} } },
        defined $o{body} ? (body => $o{body}) : ());
}

# every endpoint that touches the database, and what it answers without it
my @endpoints = (
    [ status => sub { req(GET => '/api/tiktok/status') } ],
    [ connect => sub { req(GET => '/api/tiktok/connect') } ],
    [ callback => sub {
          req(GET => "/api/tiktok/callback?code=c0de&state=$state") },
      'redirect' ],
    [ disconnect => sub { req(POST => '/api/tiktok/disconnect') } ],
    [ videos => sub { req(GET => '/api/tiktok/videos') } ],
    [ metrics => sub { req(GET => '/api/tiktok/metrics?video_id=7001') } ],
    [ 'post (JSON)' => sub {
          req(POST => '/api/tiktok/post',
              headers => { 'Content-Type' => 'application/json' },
              body => encode_json({ video_url => $url,
                                    privacy_level => 'SELF_ONLY' })) } ],
    [ 'post (upload)' => sub {
          req(POST => '/api/tiktok/post?privacy_level=SELF_ONLY',
              headers => { 'Content-Type' => 'video/mp4' },
              body => $video) } ],
    [ posts => sub { req(GET => '/api/tiktok/posts') } ],
    [ 'one post' => sub { req(GET => "/api/tiktok/posts/$uuid") } ],
    [ 'DELETE post' => sub { req(DELETE => "/api/tiktok/posts/$uuid") } ],
);

# a 503 database_unavailable JSON error, or for the callback the redirect
# to the app with reason=unavailable
sub refused {
    my ($r, $kind) = @_;

    if (($kind // '') eq 'redirect') {
        return $r->{status} == 302
            && ($r->{headers}{location} // '')
               =~ /[?&]tiktok=error&reason=unavailable\b/;
    }

    my $j = eval { decode_json($r->{content}) } or return 0;
    return $r->{status} == 503
        && ($r->{headers}{'content-type'} // '') =~ m{^application/json}
        && ($j->{error}{code} // '') eq 'database_unavailable';
}

my $r = req(GET => '/api/tiktok/status');
is($r->{status}, 200, 'PostgreSQL up: /status answers 200');

TikTokTest::pg_stop('fast');

# 1. PostgreSQL down: hundreds of requests, each refused cleanly

my (%bad, $n);
for my $round (1 .. 30) {
    for my $e (@endpoints) {
        my ($name, $call, $kind) = @$e;
        my $res = $call->();
        $n++;
        next if refused($res, $kind);
        $bad{$name} //= "$res->{status} "
                        . substr($res->{content} // '', 0, 120);
    }
}

is_deeply(\%bad, {}, "PostgreSQL down: $n requests over "
                     . @endpoints . ' endpoints, each a 503 JSON error '
                     . '(the callback: its error redirect)')
    or diag explain \%bad;

is($ngx->request(GET => '/plain')->{status}, 200,
   'other locations keep answering');

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no [alert] in the error log')
    or diag join "\n", grep { /\[(alert|crit|emerg)\]/ } split /\n/, $log;
unlike($log, qr/worker process \d+ exited/, 'no worker crashed');

# 2. PostgreSQL back: the pool reconnects without a reload

# every worker's publisher (a claim each 300 ms) has met the refusal too
sleep 1;

TikTokTest::pg_start();

my $deadline = time + 10;
while (1) {
    $r = req(GET => '/api/tiktok/status');
    last if $r->{status} == 200 || time > $deadline;
    sleep 0.1;
}
is($r->{status}, 200, 'PostgreSQL back: /status answers 200 again');
is(decode_json($r->{content})->{connected}, JSON::PP::true,
   '... from the database');

$r = req(GET => '/api/tiktok/posts');
is($r->{status}, 200, '/posts answers 200 again');

$r = req(GET => '/api/tiktok/videos');
is($r->{status}, 200, '/videos answers 200 again (token from the database)');

# 3. the publisher of every worker claims again: a post queued now is
# published (a worker whose claim failed at once used to stay "claiming")

my $p = $ngx->post_as(dora => { video_url => $url, title => 'after',
                                privacy_level => 'SELF_ONLY' });
is($p->{status}, 'queued', 'a post queued after PostgreSQL is back');

my $st = '';
$deadline = time + 20;
while (time < $deadline) {
    $r = req(GET => "/api/tiktok/posts/$p->{post_id}");
    $st = eval { decode_json($r->{content})->{status} } // '';
    last if $st =~ /^(published|failed)$/;
    sleep 0.25;
}
is($st, 'published', '... is published: the publisher claims again');

my $up = $ngx->post_as(dora => $video, type => 'video/mp4',
                       query => '?privacy_level=SELF_ONLY&title=up');
is($up->{status}, 'queued', 'an upload is accepted again');

$log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'still no [alert]');
unlike($log, qr/worker process \d+ exited/, 'still no crash');

$ngx->stop;

done_testing();
