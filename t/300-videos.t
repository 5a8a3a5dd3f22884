# Analytics: /videos and /metrics through subrequests, the shared cache,
# TikTok's rate limit, its failures, a token TikTok rejects, and purge on
# disconnect seen from a second nginx.

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

sub nginx {
    my (%o) = @_;
    (my $http = $TikTokTest::HttpConfig)
        =~ s/tiktok_cache_zone [^;]+;/tiktok_cache_zone $o{zone};/
        if $o{zone};
    $http .= "    log_format tt '\$request \$status \$tiktok_cache_status"
           . " \$tiktok_upstream_ms';\n    access_log logs/tiktok.log tt;\n";
    return TikTokTest::Nginx->new(name => $o{name}, workers => 2,
        http => $http, server => $server,
        $o{api_location} ? (api_location => $o{api_location}) : ())->start;
}

sub get {
    my ($ngx, $path, $user) = @_;
    my $r = $ngx->request(GET => $path, headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub calls { $sb->calls->{$_[0]} // 0 }

my $ngx = nginx(name => 'videos', zone => 'tiktok_cache:1m ttl=1h');
my $sandbox_user = $sb->user($sb->default_open_id);
my @all = @{ $sandbox_user->{videos} };

TikTokTest::connect_account('vera');

# 1. the JSON mapping, fetched from TikTok
my $list = calls('/v2/video/list/');
my $r = get($ngx, '/api/tiktok/videos', 'vera');
is($r->{status}, 200, 'videos: 200');
is($r->{headers}{'content-type'}, 'application/json', '... JSON');
my $page = $r->{json};
is(scalar @{ $page->{videos} }, 20, '... 20 videos by default');
is($page->{cached}, JSON::PP::false, '... fetched, not cached');
like($page->{fetched_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     '... fetched_at in RFC 3339');
is(calls('/v2/video/list/'), $list + 1, '... with one call to TikTok');

my ($v) = @{ $page->{videos} };
my $src = $all[0];
is($v->{id}, $src->{id}, 'ids pass through as strings');
like($r->{content}, qr/"id":"$src->{id}"/, '... quoted, never a number');
is($v->{title}, $src->{title}, 'title');
is($v->{duration}, $src->{duration}, 'duration');
is($v->{create_time}, $src->{create_time}, 'create_time in epoch seconds');
like($v->{cover_image_url}, qr{^https://}, 'cover_image_url');
like($v->{share_url}, qr{^https://}, 'share_url');
is_deeply([ @{ $v->{metrics} }{qw(view_count like_count comment_count
                                  share_count)} ],
          [ @$src{qw(view_count like_count comment_count share_count)} ],
          'the four metrics, 64-bit counts intact');
ok($page->{has_more}, 'has_more');
like($page->{cursor}, qr/^\d+$/, 'the cursor, as a string');

my $req = $sb->requests('/v2/video/list/', 1)->[0];
is($req->{method}, 'POST', 'TikTok got a POST');
like($req->{query}, qr/fields=id,title,/, '... with the fields');
is_deeply(decode_json($req->{body}), { max_count => 20 },
          '... and a JSON body');
like(encode_json($req->{headers}), qr/Bearer /, '... and the bearer token');
unlike(encode_json($req->{headers}), qr/x-user-id/i,
       "... but not the caller's headers");

# 2. paging
$r = get($ngx, "/api/tiktok/videos?cursor=$page->{cursor}&max_count=10",
         'vera');
is($r->{status}, 200, 'the next page');
is(scalar @{ $r->{json}{videos} }, 5, '... holds the last 5 of 25');
ok(!$r->{json}{has_more}, '... and says there is no more');
my %first = map { $_->{id} => 1 } @{ $page->{videos} };
is(scalar(grep { $first{$_->{id}} } @{ $r->{json}{videos} }), 0,
   '... none of the first page');

# 3. every 400 names its field: blocks in t/305

# 4. a hit needs neither TikTok nor the database
$list = calls('/v2/video/list/');
$r = get($ngx, '/api/tiktok/videos', 'vera');
is($r->{json}{cached}, JSON::PP::true, 'the same page again: cached');
is($r->{json}{fetched_at}, $page->{fetched_at}, '... fetched_at kept');
is(calls('/v2/video/list/'), $list, '... no call to TikTok');

TikTokTest::pg_stop('fast');
$r = get($ngx, '/api/tiktok/videos', 'vera');
is($r->{status}, 200, 'with PostgreSQL down, a hit is still served');
is($r->{json}{cached}, JSON::PP::true, '... from the cache');
$r = get($ngx, '/api/tiktok/videos?max_count=3', 'vera');
is($r->{status}, 503, '... while a miss is a 503');
TikTokTest::pg_start();

like($ngx->dir, qr/./, 'nginx dir');
open my $lf, '<', $ngx->dir . '/logs/tiktok.log' or die $!;
my @log = <$lf>;
close $lf;
like(join('', @log), qr{GET /api/tiktok/videos HTTP/1\.1 200 MISS \d+\n},
     '$tiktok_cache_status MISS and $tiktok_upstream_ms on a miss');
like(join('', @log), qr{GET /api/tiktok/videos HTTP/1\.1 200 HIT -\n},
     '$tiktok_cache_status HIT, no upstream time, on a hit');

# 5. metrics: from the list's entries, then from TikTok
my ($a1, $a2) = map { $_->{id} } @{ $page->{videos} };
my $query = calls('/v2/video/query/');
$r = get($ngx, "/api/tiktok/metrics?video_id=$a1,$a2", 'vera');
is($r->{status}, 200, 'metrics of listed videos');
is($r->{json}{metrics}{$a1}{view_count}, $all[0]{view_count},
   '... the right counts');
ok($r->{json}{metrics}{$a2}{fetched_at}, '... with fetched_at');
is(calls('/v2/video/query/'), $query, '... from the cache, no call');

my $old = $all[24]{id};          # on page 2 only as max_count=10
$r = get($ngx, "/api/tiktok/metrics?video_id=$a1,7399999999999999999,$old",
         'walt') ;
is($r->{status}, 401, 'metrics for a user without an account: 401');

TikTokTest::connect_account('walt');
$r = get($ngx, "/api/tiktok/metrics?video_id=$old,7399999999999999999",
         'walt');
is($r->{status}, 200, 'metrics fetched from TikTok');
is($r->{json}{metrics}{$old}{like_count}, $all[24]{like_count},
   '... the video query answer');
is_deeply($r->{json}{metrics}{'7399999999999999999'},
          { error => 'Metrics unavailable' },
          '... and "Metrics unavailable" for an id TikTok did not return');
is(calls('/v2/video/query/'), $query + 1, '... in one query call');
is_deeply(decode_json($sb->requests('/v2/video/query/', 1)->[0]{body}),
          { filters => { video_ids => [$old, '7399999999999999999'] } },
          '... asking for exactly the missing ids');

# 6. scope: video.list not granted
TikTokTest::connect_account('sam', scope => 'user.info.basic');
$r = get($ngx, '/api/tiktok/videos', 'sam');
is($r->{status}, 403, 'without video.list: 403');
is($r->{json}{error}{code}, 'scope_missing', '... scope_missing');
like($r->{json}{error}{message}, qr/reconnect/i, '... telling to reconnect');

# 7. TikTok failing: clean JSON errors, no retry
TikTokTest::connect_account('fay');
for my $f ([status => { status => 500 }, 502, 'a 5xx'],
           [malformed_json => {}, 502, 'malformed JSON'],
           [drop => { count => 2 }, 502, 'a dropped connection']) {
    my ($type, $extra, $want, $what) = @$f;
    $sb->fault({ endpoint => '/v2/video/list/', type => $type, %$extra });
    $list = calls('/v2/video/list/');
    $r = get($ngx, '/api/tiktok/videos?max_count=7', 'fay');
    is($r->{status}, $want, "$what from TikTok: $want");
    is($r->{json}{error}{code}, 'tiktok_unavailable', '... as JSON');
    cmp_ok(calls('/v2/video/list/') - $list, '<=', 2,
           '... without retrying in a loop');
    $sb->clear_faults;
}
like($psql->("SELECT string_agg(DISTINCT endpoint, ',') FROM tiktok.api_errors"
             . " WHERE user_id = 'fay'"), qr{/v2/video/list/},
     'failures are recorded in tiktok.api_errors');

(my $slow_api = $TikTokTest::ApiLocation)
    =~ s/proxy_ssl_verify on;/proxy_ssl_verify on;\n        proxy_read_timeout 1s;/;
my $slow = nginx(name => 'videos-slow', zone => 'slow:1m',
                 api_location => $slow_api);
$sb->fault({ endpoint => '/v2/video/list/', type => 'delay', ms => 2500 });
$r = get($slow, '/api/tiktok/videos', 'fay');
is($r->{status}, 504, 'TikTok too slow: 504');
is($r->{json}{error}{code}, 'tiktok_unavailable', '... as JSON');
$slow->stop;
$sb->clear_faults;

# 8. an invalid access token: one refresh, one retry, never more
TikTokTest::connect_account('ray');
my $refresh = calls('/v2/oauth/token/#refresh_token');
$list = calls('/v2/video/list/');
$sb->fault({ endpoint => '/v2/video/list/', type => 'token_invalid' });
$r = get($ngx, '/api/tiktok/videos?max_count=5', 'ray');
is($r->{status}, 200, 'access_token_invalid: refreshed and retried');
is(calls('/v2/oauth/token/#refresh_token'), $refresh + 1, '... one refresh');
is(calls('/v2/video/list/'), $list + 2, '... one retry');

$sb->fault({ endpoint => '/v2/video/list/', type => 'token_invalid',
             count => 5 });
$list = calls('/v2/video/list/');
$r = get($ngx, '/api/tiktok/videos?max_count=6', 'ray');
is($r->{status}, 401, 'still invalid after the refresh: 401');
is($r->{json}{error}{code}, 'reconnect_required', '... reconnect_required');
is(calls('/v2/video/list/'), $list + 2, '... after exactly one retry');
$sb->clear_faults;

# 9. rate limited: back-off window, Retry-After, no call during it
TikTokTest::connect_account('rita');
$sb->fault({ endpoint => '/v2/video/list/', type => 'rate_limit',
             retry_after => 3 });
$r = get($ngx, '/api/tiktok/videos', 'rita');
is($r->{status}, 429, 'rate limited by TikTok: 429');
is($r->{headers}{'retry-after'}, 3, "... with TikTok's Retry-After");
is($r->{json}{error}{code}, 'rate_limited', '... as JSON');
$list = calls('/v2/video/list/');
$r = get($ngx, '/api/tiktok/videos', 'rita');
is($r->{status}, 429, 'during the window: 429');
ok($r->{headers}{'retry-after'} >= 1 && $r->{headers}{'retry-after'} <= 3,
   '... counting down');
is(calls('/v2/video/list/'), $list, '... and TikTok is not called');
$r = get($ngx, '/api/tiktok/videos', 'vera');
is($r->{status}, 200, 'another user is not held back');
sleep 3.2;
$r = get($ngx, '/api/tiktok/videos', 'rita');
is($r->{status}, 200, 'after Retry-After: answered again');
is(calls('/v2/video/list/'), $list + 1, '... with a call');

# stale answers while limited: a short TTL, then a rate limit
my $short = nginx(name => 'videos-ttl', zone => 'short:1m ttl=2s');
$r = get($short, '/api/tiktok/videos?max_count=4', 'rita');
my $fetched = $r->{json}{fetched_at};
sleep 2.5;
$list = calls('/v2/video/list/');
$r = get($short, '/api/tiktok/videos?max_count=4', 'rita');
is($r->{json}{cached}, JSON::PP::false, 'after the TTL: fetched again');
is(calls('/v2/video/list/'), $list + 1, '... with a call');
sleep 2.5;
$sb->fault({ endpoint => '/v2/video/list/', type => 'rate_limit' });
$r = get($short, '/api/tiktok/videos?max_count=4', 'rita');
is($r->{status}, 200, 'expired and rate limited: the stale page');
is($r->{json}{stale}, JSON::PP::true, '... marked stale');
is($r->{json}{cached}, JSON::PP::true, '... and cached');
$list = calls('/v2/video/list/');
$r = get($short, '/api/tiktok/videos?max_count=4', 'rita');
is($r->{json}{stale}, JSON::PP::true, 'still stale in the window (60 s)');
is(calls('/v2/video/list/'), $list, '... without calling TikTok');
$short->stop;
$sb->clear_faults;

# 10. LRU: a tiny zone evicts, never fails
my $tiny = nginx(name => 'videos-lru', zone => 'tiny:32k');
for my $u (qw(lru1 lru2 lru3 lru4 lru5 lru6)) {
    TikTokTest::connect_account($u);
    is(get($tiny, '/api/tiktok/videos', $u)->{status}, 200,
       "$u: fetched into a tiny zone");
}
$list = calls('/v2/video/list/');
$r = get($tiny, '/api/tiktok/videos', 'lru1');
is($r->{json}{cached}, JSON::PP::false, 'the oldest page was evicted');
is(calls('/v2/video/list/'), $list + 1, '... and fetched again');
unlike($tiny->error_log, qr/\[(alert|crit)\]/, '... without an alert');
$tiny->stop;

# 11. purge on disconnect, seen from a second nginx on the same database
my $other = nginx(name => 'videos-b', zone => 'other:1m');
TikTokTest::connect_account('pia');
get($other, '/api/tiktok/videos', 'pia');
is(get($other, '/api/tiktok/videos', 'pia')->{json}{cached}, JSON::PP::true,
   'pia is cached on the second nginx');
is($ngx->request(POST => '/api/tiktok/disconnect',
                 headers => { 'X-User-ID' => 'pia' })->{status}, 200,
   'pia disconnects through the first');
sleep 0.5;
$r = get($other, '/api/tiktok/videos', 'pia');
is($r->{status}, 401, "the second nginx's cache no longer has pia");
is($r->{json}{error}{code}, 'not_connected', '... not_connected');
$other->stop;

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
