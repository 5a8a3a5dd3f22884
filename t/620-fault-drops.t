# Fault battery: TikTok's connection dropped, or its answer cut short, on
# every endpoint the module calls, both before TikTok acted and after it did
# (the answer lost).  Each ends with nothing lost, nothing doubled, no crash:
# requests answer a clean JSON 502/504 (the OAuth callback its documented
# redirect), the failure lands in tiktok.api_errors, and every post is
# published once at the sandbox (a PULL_FROM_URL init whose answer was lost
# is never sent again).

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use URI::Escape qw(uri_unescape);
use POSIX ();
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;
my $return = $TikTokTest::ReturnUrl;

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'drops', workers => 2,
    http => $http, server => <<'CONF')->start;
        client_max_body_size 100m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

$sb->set_config({ daily_post_cap => 1000 });

# the four ways an answer can go missing
my @kinds = (
    [ 'drop' => { type => 'drop' } ],
    [ 'truncate' => { type => 'truncate' } ],
    [ 'drop after' => { type => 'drop', after => JSON::PP::true } ],
    [ 'truncate after' => { type => 'truncate', after => JSON::PP::true } ],
);

my $seq = 0;
sub fresh { my ($p) = @_; $seq++; return "$p$seq" }

sub calls { $sb->calls->{$_[0]} // 0 }

sub get {
    my ($path, $user, %o) = @_;
    my $r = $ngx->request($o{method} // 'GET' => $path,
                          headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub errors_of {
    my ($user, $endpoint) = @_;
    return $psql->("SELECT count(*) FROM tiktok.api_errors"
                   . " WHERE user_id = '$user' AND endpoint = '$endpoint'");
}

sub stored {
    my ($user) = @_;
    return $psql->("SELECT count(*) FROM tiktok.accounts"
                   . " WHERE user_id = '$user'");
}

# a clean JSON 502/504 tiktok_unavailable
sub unavailable {
    my ($r, $what) = @_;
    like($r->{status}, qr/^50[24]$/, "$what: 502/504 ($r->{status})");
    is(($r->{json} // {})->{error}{code}, 'tiktok_unavailable',
       "$what: ... as JSON tiktok_unavailable")
        or diag $r->{content};
}

# /connect, then the sandbox's authorize page: the callback's query string
sub authorize {
    my ($user) = @_;
    my $r = get('/api/tiktok/connect', $user);
    my ($path) = ($r->{headers}{location} // '')
        =~ m{^https://localhost:\d+(/v2/auth/authorize/\?.*)\z} or return;
    my $back = $sb->api(GET => $path)->{headers}{location} // '';
    my ($query) = $back =~ m{^\Q$TikTokTest::RedirectUri\E\?(.*)\z};
    return $query;
}


# 1. The request path: every endpoint, every way of losing the answer

my $vid = $sb->user($sb->default_open_id)->{videos}[3]{id};

for my $k (@kinds) {
    my ($kn, $f) = @$k;

    # the code exchange and the user info of the callback
    for my $ep ('/v2/oauth/token/', '/v2/user/info/') {
        my $u = fresh('cb');
        my $query = authorize($u);
        ok($query, "$kn on $ep: authorized at the sandbox");
        $sb->fault({ endpoint => $ep, %$f });
        my $r = get("/api/tiktok/callback?$query", $u);
        is($r->{status} . ' ' . ($r->{headers}{location} // ''),
           "302 $return?tiktok=error&reason=oauth_failed",
           "$kn on $ep: the callback redirects with oauth_failed");
        is(stored($u), '0', "$kn on $ep: ... nothing stored");
        is(errors_of($u, $ep), '1', "$kn on $ep: ... recorded once");
        $sb->clear_faults;
    }

    # a refresh on the request path
    my $u = fresh('rf');
    TikTokTest::connect_account($u, access => '4 minutes');
    $sb->fault({ endpoint => '/v2/oauth/token/', %$f });
    my $refreshes = calls('/v2/oauth/token/');
    unavailable(get('/api/tiktok/videos', $u), "$kn on the refresh");
    is(calls('/v2/oauth/token/'), $refreshes + 1,
       "$kn on the refresh: ... sent once");
    is(errors_of($u, '/v2/oauth/token/'), '1', "$kn on the refresh: recorded");
    is($psql->("SELECT needs_reconnect::text || ' '"
               . " || coalesce(refresh_lock_owner, '-')"
               . " FROM tiktok.accounts WHERE user_id = '$u'"), 'false -',
       "$kn on the refresh: ... the account not marked, the lease released");
    $sb->clear_faults;
    my $r = get('/api/tiktok/videos', $u);
    if ($f->{after}) {
        # TikTok rotated the refresh token and its answer was lost: the old
        # one is dead, so this account can only reconnect (documented)
        like("$r->{status} " . (($r->{json} // {})->{error}{code} // ''),
             qr/^(200 |401 reconnect_required)$/,
             "$kn on the refresh: then 200 or 401 reconnect_required"
             . " ($r->{status})");
    } else {
        is($r->{status}, 200, "$kn on the refresh: the next request refreshes");
    }

    # revoke: best effort, the disconnect goes through
    $u = fresh('rv');
    TikTokTest::connect_account($u);
    $sb->fault({ endpoint => '/v2/oauth/revoke/', %$f });
    $r = get('/api/tiktok/disconnect', $u, method => 'POST');
    is("$r->{status} $r->{content}", '200 {"connected":false}',
       "$kn on revoke: disconnected all the same");
    is(stored($u), '0', "$kn on revoke: ... the tokens are gone");
    is(errors_of($u, '/v2/oauth/revoke/'), '1', "$kn on revoke: recorded");
    $sb->clear_faults;

    # the video list
    $u = fresh('vl');
    TikTokTest::connect_account($u);
    $sb->fault({ endpoint => '/v2/video/list/', %$f });
    unavailable(get('/api/tiktok/videos?max_count=4', $u), "$kn on video list");
    is(errors_of($u, '/v2/video/list/'), '1', "$kn on video list: recorded");
    $sb->clear_faults;
    $r = get('/api/tiktok/videos?max_count=4', $u);
    is("$r->{status} " . (($r->{json} // {})->{cached} ? 'cached' : 'fresh'),
       '200 fresh',
       "$kn on video list: nothing cached, the next one asks TikTok");

    # the video query behind /metrics: what it has, the rest unavailable
    $u = fresh('vq');
    TikTokTest::connect_account($u);
    my $have = (get('/api/tiktok/videos?max_count=1', $u)->{json} // {})
        ->{videos}[0]{id} // 'none';
    $sb->fault({ endpoint => '/v2/video/query/', %$f });
    $r = get("/api/tiktok/metrics?video_id=$have,$vid", $u);
    is($r->{status}, 200, "$kn on video query: /metrics answers 200")
        or diag $r->{content};
    my $m = ($r->{json} // {})->{metrics} // {};
    ok(defined $m->{$have}{view_count},
       "$kn on video query: ... the cached video's metrics");
    is_deeply($m->{$vid}, { error => 'Metrics unavailable' },
              "$kn on video query: ... \"Metrics unavailable\" for the other");
    is(errors_of($u, '/v2/video/query/'), '1', "$kn on video query: recorded");
    $sb->clear_faults;

    # creator info: POST /post's own check (nothing stored)
    $u = fresh('ci');
    TikTokTest::connect_account($u);
    $sb->fault({ endpoint => '/v2/post/publish/creator_info/query/', %$f });
    my $inits = calls('/v2/post/publish/video/init/');
    my $p = $ngx->post_as($u => { video_url => 'https://media.example.com/v/x.mp4',
                                  privacy_level => 'SELF_ONLY' });
    is(($p->{error} // {})->{code} // $p->{status}, 'tiktok_unavailable',
       "$kn on creator info: POST /post refused as tiktok_unavailable");
    is($psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = '$u'"), '0',
       "$kn on creator info: ... no row");
    is(errors_of($u, '/v2/post/publish/creator_info/query/'), '1',
       "$kn on creator info: recorded");
    $sb->clear_faults;
}


# 2. The publisher: four posts at once per endpoint.  The sandbox applies a
# list of faults in order, one each, to whichever calls come first, so each
# post meets one of the four (which one is not known): what is asserted
# holds for every post, and the round's totals say that every fault was met.

my $url = 'https://media.example.com/v/';
my $video = TikTokMedia::mp4(seconds => 3,
                             mdat => join('', map { chr($_ % 251) } 1 .. 300000));

# one poll to completion: rounds stay short
$sb->set_config({ status_polls_to_complete => 1 });

sub row {
    my ($id, $cols) = @_;
    return $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

# Waits for every post to reach a final state.  A post backed off after a
# failure would wait 30 s or more: its back-off is ended at once (as the
# clock would, later), which is not a retry of our own making.
sub wait_final {
    my ($ids, $limit) = @_;
    my $list = join ',', map { "'$_'" } @$ids;
    my $deadline = time + ($limit // 40);
    while (time < $deadline) {
        $psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
                . " WHERE id IN ($list) AND status IN ('queued', 'scheduled')"
                . " AND attempts > 0 AND next_attempt_at > now()");
        my $left = $psql->("SELECT count(*) FROM tiktok.posts WHERE id IN ($list)"
                           . " AND status NOT IN ('published', 'failed',"
                           . " 'cancelled')");
        return 1 if $left eq '0';
        sleep 0.3;
    }
    return 0;
}

# the sandbox's publishes carrying this title
sub at_tiktok {
    my ($title) = @_;
    return [ grep { ($_->{post_info}{title} // '') eq $title }
             @{ $sb->posts } ];
}

sub faults_left { scalar @{ $sb->control(GET => '/faults')->{faults} } }

sub errors_for {
    my ($ep, @p) = @_;
    my $users = join ',', map { "'$_->{user}'" } @p;
    return $psql->("SELECT count(*) FROM tiktok.api_errors"
                   . " WHERE user_id IN ($users) AND endpoint = '$ep'");
}

sub outcome {
    my ($p) = @_;
    return row($p->{id}, "status || ' ' || coalesce(fail_reason, '')");
}

# round($endpoint, $make, later => sub, warm => 1): $make->($user, $title)
# queues one post and returns its id; later, when given, runs after the
# posts are made and before the faults are set
sub round {
    my ($ep, $make, %o) = @_;

    my @p;
    for my $k (@kinds) {
        my $u = fresh('pub');
        TikTokTest::connect_account($u);
        # creator info cached by a post refused after it was asked (a
        # privacy level only private accounts have), so that the POST /post
        # below does not ask and the publisher's call meets the fault
        if ($o{warm}) {
            my $w = $ngx->post_as($u => { video_url => "${url}w.mp4",
                                          privacy_level => 'FOLLOWER_OF_CREATOR' });
            is(($w->{error} // {})->{field}, 'privacy_level',
               "$u: creator info cached");
        }
        push @p, { user => $u, title => "t-$u" };
    }

    my $faults = sub {
        $sb->fault([ map { { endpoint => $ep, count => 1, %{ $_->[1] } } }
                     @kinds ]);
    };
    $faults->() unless $o{later};
    for my $p (@p) {
        $p->{id} = $make->($p->{user}, $p->{title});
        ok($p->{id}, "$ep: $p->{user} queued") or diag explain $p;
    }
    @p = grep { $_->{id} } @p or return;
    if ($o{later}) {
        $o{later}->(@p);
        $faults->();
        $o{due}->(@p) if $o{due};
    }

    ok(wait_final([ map { $_->{id} } @p ], 60),
       "$ep: the four posts reach a final state");
    is(faults_left(), 0, "$ep: ... every fault met");
    $sb->clear_faults;
    return @p;
}

sub pull {
    my ($u, $title) = @_;
    return $ngx->post_as($u => { video_url => "$url$title.mp4",
                                 title => $title,
                                 privacy_level => 'SELF_ONLY' })->{post_id};
}

sub upload {
    my ($u, $title) = @_;
    return $ngx->post_as($u => $video, type => 'video/mp4',
                         query => "?privacy_level=SELF_ONLY&title=$title")
        ->{post_id};
}

sub published_once {
    my ($p, $what, %o) = @_;
    is(outcome($p), 'published ', "$what: published")
        or diag $psql->("SELECT string_agg(endpoint || ' ' || coalesce("
                        . "http_status::text, '-') || ' ' || coalesce("
                        . "tiktok_code, '-') || ' ' || coalesce(message, '-'),"
                        . " E'\n' ORDER BY id) FROM tiktok.api_errors"
                        . " WHERE user_id = '$p->{user}'");
    my $tt = at_tiktok($p->{title});
    is(scalar(grep { $_->{status} eq 'PUBLISH_COMPLETE' } @$tt), 1,
       "$what: ... once at TikTok");
    if ($o{upload} && row($p->{id}, 'publish_id') ne '') {
        my $up = $sb->upload(row($p->{id}, 'publish_id'));
        is($up->{sha256}, sha256_hex($video), "$what: ... every byte, once");
    }
}

sub inits_of {
    my ($p) = @_;
    return scalar grep { ($_->{body} // '') =~ /"title":"\Q$p->{title}\E"/ }
        @{ $sb->requests('/v2/post/publish/video/init/', 200) };
}

# creator info before init: a transient failure, backed off, then published
my @p = round('/v2/post/publish/creator_info/query/', \&pull, warm => 1);
published_once($_, "creator info, $_->{user}") for @p;
# both cut answers are recorded; a drop on a connection libcurl had reused
# is sent again by libcurl itself (see the chunk below), harmless for this
# query, so the drops are recorded only when they met a fresh connection
cmp_ok(errors_for('/v2/post/publish/creator_info/query/', @p), '>=', 2,
       'creator info: the failures recorded');

# The publisher's own refresh of an expiring token: posts scheduled an hour
# ahead, their tokens then made to expire within 5 minutes, the faults set,
# and the posts made due at one instant (as superuser), so that the four
# refreshes are the publisher's, at once, one fault each.
sub pull_later {
    my ($u, $title) = @_;
    my $at = POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600));
    return $ngx->post_as($u => { video_url => "$url$title.mp4",
                                 title => $title, schedule_at => $at,
                                 privacy_level => 'SELF_ONLY' })->{post_id};
}

sub expiring {
    my $users = join ',', map { "'$_->{user}'" } @_;
    $psql->("UPDATE tiktok.accounts SET access_expires_at ="
            . " now() + interval '4 minutes' WHERE user_id IN ($users)");
}

sub due {
    my $list = join ',', map { "'$_->{id}'" } @_;
    $psql->("UPDATE tiktok.posts SET schedule_at = now(),"
            . " next_attempt_at = now() WHERE id IN ($list)");
}

@p = round('/v2/oauth/token/', \&pull_later, later => \&expiring,
          due => \&due);
my %out;
for my $p (@p) {
    my $o = outcome($p);
    $out{$o}++;
    cmp_ok(inits_of($p), '<=', 1, "refresh, $p->{user}: at most one init");
    cmp_ok(scalar(grep { $_->{status} eq 'PUBLISH_COMPLETE' }
                  @{ at_tiktok($p->{title}) }), '==',
           $o eq 'published ' ? 1 : 0, "refresh, $p->{user}: $o at TikTok too");
}
# A refresh whose answer was lost after TikTok rotated the token leaves
# only a dead refresh token: that post fails auth_removed and the account
# must reconnect (nobody can do better).  The two lost before TikTok acted
# are published after their back-off.
is_deeply(\%out, { 'published ' => 2, 'failed auth_removed' => 2 },
          'refresh: two published, two auth_removed');
is(errors_for('/v2/oauth/token/', @p), '6',
   'refresh: the four failures and the two refusals recorded');

# init, PULL_FROM_URL: an init whose answer was lost is never sent again
@p = round('/v2/post/publish/video/init/', \&pull);
for my $p (@p) {
    my $what = "pull init, $p->{user}";
    is(inits_of($p), 1, "$what: one init, never sent again");
    is(scalar(grep { $_->{status} eq 'PUBLISH_COMPLETE' }
                   @{ at_tiktok($p->{title}) }), 0,
       "$what: ... nothing published by the module's doing");
    is(outcome($p), 'failed init_uncertain', "$what: init_uncertain");
}
is(errors_for('/v2/post/publish/video/init/', @p), '4',
   'pull init: the four failures recorded');

# init, FILE_UPLOAD: may be sent again (TikTok publishes nothing without
# the bytes), so nothing is lost
@p = round('/v2/post/publish/video/init/', \&upload);
for my $p (@p) {
    published_once($p, "file init, $p->{user}", upload => 1);
    cmp_ok(inits_of($p), '<=', 2, "file init, $p->{user}: at most resent once");
}
is(errors_for('/v2/post/publish/video/init/', @p), '4',
   'file init: the four failures recorded');

# a chunk: resumed, the upload completes with every byte once
@p = round('/upload/', \&upload);
for my $p (@p) {
    published_once($p, "chunk, $p->{user}", upload => 1);
    is(inits_of($p), 1, "chunk, $p->{user}: ... one init");
}
# A chunk's answer cut short is recorded; a dropped connection that libcurl
# had reused is sent again by libcurl itself (its rule for a connection that
# died before answering), and the final chunk's answer has no body to cut.
cmp_ok(errors_for('upload_url', @p), '>=', 1, 'chunk: failures recorded');

# the status poll: polled again
@p = round('/v2/post/publish/status/fetch/', \&pull);
for my $p (@p) {
    published_once($p, "status, $p->{user}");
    is(inits_of($p), 1, "status, $p->{user}: ... one init");
}
# both cut answers recorded (a dropped reused connection: see above)
cmp_ok(errors_for('/v2/post/publish/status/fetch/', @p), '>=', 2,
       'status: failures recorded');

is($psql->("SELECT count(*) FROM tiktok.posts WHERE status IN ('queued',"
           . " 'scheduled', 'uploading', 'processing')"), '0',
   'no post left half-way');

my $log = $ngx->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');
unlike($log, qr/exited on signal/, 'no worker crashed');

$ngx->stop;

done_testing();
