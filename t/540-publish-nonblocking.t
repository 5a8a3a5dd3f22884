# The publisher never blocks its worker: with 5 uploads in flight against
# a slow TikTok on a single worker, /api/tiktok/status and a plain
# location on that worker answer within 100 ms.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'publish-nb', workers => 1,
    http => $http, server => <<'CONF')->start;
        client_max_body_size 10m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
        location /plain { return 200 "plain\n"; }
CONF

$sb->set_config({ daily_post_cap => 1000 });
# 10 s: long enough that the measurements below end before any PUT does,
# also on a loaded machine (4 s was not: one upload finished first)
$sb->fault({ endpoint => '/upload/', type => 'delay', ms => 10000,
             count => 0 });

my @ids;
for my $i (1 .. 5) {
    TikTokTest::connect_account("up$i");
    my $r = $ngx->request(POST => '/api/tiktok/post?privacy_level=SELF_ONLY',
        headers => { 'X-User-ID' => "up$i", 'Content-Type' => 'video/mp4' },
        body => TikTokMedia::mp4(seconds => 2, mdat => 'u' x 200000));
    is($r->{status}, 202, "upload $i accepted");
    push @ids, decode_json($r->{content})->{post_id};
}

# all five PUTs under way at the slow sandbox
my $deadline = time + 20;
sleep 0.1 while time < $deadline
    && ($sb->calls->{'/upload/'} // 0) < 5;
is($sb->calls->{'/upload/'} // 0, 5, 'five uploads in flight');

my (@plain, @status);
for (1 .. 5) {
    my $t0 = time;
    my $r = $ngx->request(GET => '/plain');
    push @plain, time - $t0;
    is($r->{status}, 200, 'a plain location answers meanwhile');

    $t0 = time;
    $r = $ngx->request(GET => '/api/tiktok/status',
                       headers => { 'X-User-ID' => 'up1' });
    push @status, time - $t0;
    is($r->{status}, 200, '/status answers meanwhile');
}

my ($p) = sort { $b <=> $a } @plain;
my ($s) = sort { $b <=> $a } @status;
cmp_ok($p, '<', 0.1, sprintf('... plain within 100 ms (slowest %.1f ms)',
                             $p * 1000));
cmp_ok($s, '<', 0.1, sprintf('... status within 100 ms (slowest %.1f ms)',
                             $s * 1000));
is($psql->("SELECT count(*) FROM tiktok.posts WHERE status = 'uploading'"),
   '5', 'the uploads were still in flight');

$sb->clear_faults;
$deadline = time + 40;
sleep 0.25 while time < $deadline
    && $psql->("SELECT count(*) FROM tiktok.posts"
               . " WHERE status = 'published'") < 5;
is($psql->("SELECT count(*) FROM tiktok.posts WHERE status = 'published'"),
   '5', 'then all five are published');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
