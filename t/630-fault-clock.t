# Fault battery: the clock near a token's expiry.  Access tokens that
# expire in 4m59s, 5m01s, now, or expired long ago (also at the sandbox,
# which refuses expired tokens), one at a time and 20 requests at once, on
# the request path and in the publisher; refresh tokens about to expire,
# expired in the database, expired at TikTok only.  Every TikTok call
# carries a valid token or is preceded by exactly one refresh; an expired
# token never reaches the sandbox (no access_token_invalid anywhere); a dead
# refresh token means needs_reconnect with the documented message.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'clock', workers => 2,
    http => $http, server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

$sb->set_config({ daily_post_cap => 1000, status_polls_to_complete => 1 });

my $seq = 0;
sub calls { $sb->calls->{$_[0]} // 0 }
sub refreshes { calls('/v2/oauth/token/') }

sub get {
    my ($path, $user) = @_;
    my $r = $ngx->request(GET => $path, headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub account {
    my ($expires, %o) = @_;
    my $u = 'clk' . ++$seq;
    my $t = TikTokTest::connect_account($u);
    $psql->("UPDATE tiktok.accounts SET access_expires_at = $expires"
            . ($o{refresh_expires} ? ", refresh_expires_at = $o{refresh_expires}"
                                   : '')
            . " WHERE user_id = '$u'");
    # the sandbox refuses this access token from now on
    $sb->expire_tokens({ access_token => $t->{access_token} })
        if $o{expired_at_tiktok};
    return ($u, $t);
}

sub bearers {
    my ($endpoint, $n) = @_;
    return map { $_->{headers}{authorization} // '' }
        @{ $sb->requests($endpoint, $n) };
}

sub refused {
    my ($user) = @_;
    return $psql->("SELECT count(*) FROM tiktok.api_errors"
                   . " WHERE user_id = '$user'"
                   . " AND tiktok_code = 'access_token_invalid'");
}

sub account_state {
    my ($user) = @_;
    return $psql->("SELECT needs_reconnect::text || ' '"
                   . " || (access_expires_at > now() + interval '1 hour')::text"
                   . " || ' ' || coalesce(refresh_lock_owner, '-')"
                   . " FROM tiktok.accounts WHERE user_id = '$user'");
}


# 1. One request at each point of the clock

for my $c (
    [ '4m59s left', "now() + interval '4 minutes 59 seconds'", 1 ],
    [ '5m01s left', "now() + interval '5 minutes 1 second'", 0 ],
    [ 'expiring now', 'now()', 1, expired_at_tiktok => 1 ],
    [ 'expired an hour ago', "now() - interval '1 hour'", 1,
      expired_at_tiktok => 1 ],
) {
    my ($what, $expires, $refresh, %o) = @$c;
    my ($u, $t) = account($expires, %o);
    my $before = refreshes();
    my $r = get('/api/tiktok/videos?max_count=3', $u);
    is($r->{status}, 200, "$what: /videos 200") or diag $r->{content};
    is(refreshes() - $before, $refresh, "$what: $refresh refresh");
    my ($sent) = bearers('/v2/video/list/', 1);
    if ($refresh) {
        isnt($sent, "Bearer $t->{access_token}",
             "$what: ... the list asked with the new token");
        is(account_state($u), 'false true -',
           "$what: ... stored, good for hours, the lease released");
    } else {
        is($sent, "Bearer $t->{access_token}",
           "$what: ... the list asked with the stored token");
    }
    is(refused($u), '0', "$what: no access_token_invalid");
}


# 2. Twenty requests at once, over both workers, 4m59s before expiry, the
# sandbox already refusing the token: one refresh, nobody sends the old one

my ($u, $t) = account("now() + interval '4 minutes 59 seconds'",
                      expired_at_tiktok => 1);
my ($before, $lists) = (refreshes(), calls('/v2/video/list/'));
my @socks;
for my $i (1 .. 20) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die "connect: $!";
    print $s "GET /api/tiktok/videos?max_count=" . (1 + $i % 10)
             . " HTTP/1.0\r\nX-User-ID: $u\r\n\r\n";
    push @socks, $s;
}
my %st;
for my $s (@socks) {
    local $/;
    my $resp = <$s> // '';
    $st{ $resp =~ m{^HTTP/1\.\d (\d+)} ? $1 : 'none' }++;
}
is_deeply(\%st, { 200 => 20 }, '20 at once: all 200');
is(refreshes(), $before + 1, '... after exactly one refresh');
my $n = calls('/v2/video/list/') - $lists;
is(scalar(grep { $_ eq "Bearer $t->{access_token}" }
          bearers('/v2/video/list/', $n)), 0,
   "... none of the $n list calls carried the old token");
is(refused($u), '0', '... no access_token_invalid');


# 3. Refresh tokens at their end

# about to expire (a minute left): still good for one refresh
($u) = account("now() - interval '1 minute'",
               refresh_expires => "now() + interval '1 minute'");
$before = refreshes();
is(get('/api/tiktok/videos?max_count=3', $u)->{status}, 200,
   'a refresh token with a minute left: 200');
is(refreshes(), $before + 1, '... after one refresh');

# expired in the database: never sent, the account must reconnect
($u) = account("now() - interval '1 minute'",
               refresh_expires => "now() - interval '1 second'");
$before = refreshes();
my $r = get('/api/tiktok/videos?max_count=3', $u);
is($r->{status} . ' ' . (($r->{json} // {})->{error}{code} // ''),
   '401 reconnect_required', 'an expired refresh token: 401 reconnect_required');
is(($r->{json} // {})->{error}{message}, 'Connection failed. Try reconnecting.',
   '... with the documented message');
is(refreshes(), $before, '... the refresh token not sent');
is(get('/api/tiktok/status', $u)->{json}{needs_reconnect}, JSON::PP::true,
   '... /status says needs_reconnect');

# expired at TikTok only: refused once, then marked
($u, $t) = account("now() - interval '1 minute'");
$sb->expire_tokens({ refresh_token => $t->{refresh_token} });
$before = refreshes();
$r = get('/api/tiktok/videos?max_count=3', $u);
is($r->{status} . ' ' . (($r->{json} // {})->{error}{code} // ''),
   '401 reconnect_required', 'a refresh token TikTok calls expired: 401');
is(($r->{json} // {})->{error}{message}, 'Connection failed. Try reconnecting.',
   '... with the documented message');
is(refreshes(), $before + 1, '... after the one refresh TikTok refused');
is(get('/api/tiktok/status', $u)->{json}{needs_reconnect}, JSON::PP::true,
   '... /status says needs_reconnect');
get('/api/tiktok/videos?max_count=3', $u);
is(refreshes(), $before + 1, '... and it is not sent again');


# 4. The publisher: nobody else will refresh for it

sub row {
    my ($id, $cols) = @_;
    return $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

sub wait_final {
    my ($id) = @_;
    my $deadline = time + 25;
    my $s;
    while (time < $deadline) {
        $s = row($id, "status || ' ' || coalesce(fail_reason, '')");
        return $s if $s =~ /^(published|failed)/;
        sleep 0.2;
    }
    return $s;
}

sub scheduled {
    my ($u) = @_;
    my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3));
    return $ngx->post_as($u => { video_url => 'https://media.example.com/v/c.mp4',
                                 privacy_level => 'SELF_ONLY',
                                 schedule_at => $at })->{post_id};
}

for my $c (
    [ '4m59s left', "now() + interval '4 minutes 59 seconds'" ],
    [ 'expired an hour ago', "now() - interval '1 hour'" ],
) {
    my ($what, $expires) = @$c;
    my ($pu, $pt) = account("now() + interval '2 hours'");
    my $id = scheduled($pu);
    ok($id, "publisher, $what: a post scheduled 3 s ahead");
    # the clock moves on while it waits: its token is now this near its end
    # (and refused by the sandbox)
    $psql->("UPDATE tiktok.accounts SET access_expires_at = $expires"
            . " WHERE user_id = '$pu'");
    $sb->expire_tokens({ access_token => $pt->{access_token} });
    my ($rf, $inits) = (refreshes(), calls('/v2/post/publish/video/init/'));
    is(wait_final($id), 'published ', "publisher, $what: published");
    is(refreshes(), $rf + 1, "publisher, $what: ... after one refresh");
    is(calls('/v2/post/publish/video/init/'), $inits + 1,
       "publisher, $what: ... and one init");
    my ($sent) = bearers('/v2/post/publish/video/init/', 1);
    isnt($sent, "Bearer $pt->{access_token}",
         "publisher, $what: ... with the new token");
    is(refused($pu), '0', "publisher, $what: no access_token_invalid");
}

# a refresh token expired while the post waited: auth_removed, reconnect
my ($pu) = account("now() + interval '2 hours'");
my $id = scheduled($pu);
$psql->("UPDATE tiktok.accounts SET access_expires_at = now() - interval"
        . " '1 minute', refresh_expires_at = now() - interval '1 second'"
        . " WHERE user_id = '$pu'");
my ($rf, $inits) = (refreshes(), calls('/v2/post/publish/video/init/'));
is(wait_final($id), 'failed auth_removed',
   'publisher, refresh token expired: failed auth_removed');
is(refreshes(), $rf, '... the refresh token not sent');
is(calls('/v2/post/publish/video/init/'), $inits, '... nothing initialised');
is($psql->("SELECT needs_reconnect FROM tiktok.accounts"
           . " WHERE user_id = '$pu'"), 't', '... the account must reconnect');
is(get("/api/tiktok/posts/$id", $pu)->{json}{error},
   'Posting failed. Check permissions or try again.',
   '... and the user sees the documented message');

is($psql->("SELECT count(*) FROM tiktok.api_errors"
           . " WHERE tiktok_code = 'access_token_invalid'"), '0',
   'no expired access token ever reached the sandbox');

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
unlike($log, qr/exited on signal/, 'no worker crashed');

$ngx->stop;

done_testing();
