# The publisher on its own: immediate pick-up through NOTIFY, refreshing a
# token nobody else will, the creator info check of the moment, TikTok's
# retryable failures, failures written to tiktok.api_errors, leases kept
# through long processing, and the single-chunk rule between 5 and 64 MB.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

my $server = <<'CONF';
        client_max_body_size 100m;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub calls { $sb->calls->{$_[0]} // 0 }
sub inits { calls('/v2/post/publish/video/init/') }
sub refreshes { calls('/v2/oauth/token/') }
sub creators { calls('/v2/post/publish/creator_info/query/') }

sub row {
    my ($id, $cols) = @_;
    return $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

sub wait_row {
    my ($id, $want, $limit) = @_;
    my $deadline = time + ($limit // 20);
    my $s;
    while (time < $deadline) {
        $s = row($id, 'status');
        return $s if $s =~ /^($want)$/;
        sleep 0.2;
    }
    return $s;
}

sub soon { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + ($_[0] // 3))) }

my $url = 'https://media.example.com/v/clip.mp4';
$sb->set_config({ daily_post_cap => 1000 });


# 1. An immediate post is picked up at once: a publisher whose timer ticks
# once an hour publishes it within seconds, woken by NOTIFY tiktok_publish
# from another nginx that does not publish at all.

(my $hourly = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=1h;/ or die;

my $publisher = TikTokTest::Nginx->new(name => 'hourly', workers => 1,
    http => $hourly, server => $server)->start;
my $front = TikTokTest::Nginx->new(name => 'front', workers => 1,
    server => $server)->start;

TikTokTest::connect_account('nora');
sleep 1;    # the hourly worker's first tick is still far away
my $t0 = time;
my $p = $front->post_as(nora => { video_url => $url,
                                   privacy_level => 'SELF_ONLY' });
is($p->{status}, 'queued', 'a post queued through a non-publishing nginx');
is(wait_row($p->{post_id}, 'published|failed', 15), 'published',
   '... is published by the hourly publisher');
cmp_ok(time - $t0, '<', 10, '... within seconds, not at its next tick');
my ($worker) = split ' ', `pgrep -P ${\ $publisher->pid }`;
like(row($p->{post_id}, 'claimed_by'), qr/:\Q$worker\E$/,
     '... by that publisher');

$front->stop;
$publisher->stop;


# every other section: one nginx, 2 workers, the timer at 500 ms
(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=500ms;/ or die;

my $ngx = TikTokTest::Nginx->new(name => 'lifecycle', workers => 2,
    http => $http, server => $server)->start;

sub post { $ngx->post_as(@_) }

sub account {
    my ($user, %spec) = @_;
    my $oid = "oid-$user";
    $sb->add_user({ open_id => $oid, %spec });
    TikTokTest::connect_account($user, open_id => $oid);
    return $oid;
}

# a post scheduled a few seconds ahead, whose user's token is then made to
# expire within 5 minutes: nobody but the publisher will refresh it
sub scheduled_with_expiring_token {
    my ($user) = @_;
    my $p = post($user => { video_url => $url, privacy_level => 'SELF_ONLY',
                            schedule_at => soon(3) });
    $psql->("UPDATE tiktok.accounts SET access_expires_at ="
            . " now() + interval '4 minutes' WHERE user_id = '$user'");
    return $p;
}


# 2. The publisher refreshes an expiring token itself, once

account('rita');
my ($refreshes, $before) = (refreshes(), inits());
my $old = $psql->("SELECT encode(refresh_token_enc, 'hex')"
                  . " FROM tiktok.accounts WHERE user_id = 'rita'");
$p = scheduled_with_expiring_token('rita');
is($p->{status}, 'scheduled', 'a scheduled post, its token expiring in 4 min');
is(wait_row($p->{post_id}, 'published|failed', 20), 'published',
   '... is published');
is(refreshes(), $refreshes + 1, '... after exactly one refresh');
is(inits(), $before + 1, '... and one init');
is($psql->("SELECT access_expires_at > now() + interval '1 hour'"
           . " AND refresh_lock_owner IS NULL"
           . " AND encode(refresh_token_enc, 'hex') <> '$old'"
           . " FROM tiktok.accounts WHERE user_id = 'rita'"), 't',
   '... the new tokens stored (the refresh token rotated), the lease gone');
my $form = $sb->requests('/v2/oauth/token/', 1)->[0]{body};
like($form, qr/(^|&)grant_type=refresh_token(&|$)/, '... a refresh_token grant');
like($form, qr/(^|&)client_secret=/, '... with the client credentials');


# 3. A refresh TikTok refuses: the post fails, the account must reconnect

my $oid = account('rex');
$p = scheduled_with_expiring_token('rex');
$sb->revoke_tokens({ open_id => $oid });
$before = inits();
is(wait_row($p->{post_id}, 'published|failed', 20), 'failed',
   'a refused refresh: the post fails');
is(row($p->{post_id}, 'fail_reason'), 'auth_removed', '... as auth_removed');
is($psql->("SELECT needs_reconnect FROM tiktok.accounts"
           . " WHERE user_id = 'rex'"), 't', '... the account marked');
is(inits(), $before, '... nothing initialised');
is($psql->("SELECT endpoint || ' ' || tiktok_code FROM tiktok.api_errors"
           . " WHERE request_id = '$p->{post_id}'"),
   '/v2/oauth/token/ invalid_grant', '... the refusal recorded with the post id');
my $r = $ngx->request(GET => "/api/tiktok/posts/$p->{post_id}",
                      headers => { 'X-User-ID' => 'rex' });
is(decode_json($r->{content})->{error},
   'Posting failed. Check permissions or try again.',
   '... and the user sees the message');


# 4. A refresh that meets a 5xx: backed off, nothing marked

account('ron');
$p = scheduled_with_expiring_token('ron');
$sb->fault({ endpoint => '/v2/oauth/token/', type => 'status', status => 503 });
my $deadline = time + 15;
sleep 0.2 while time < $deadline && row($p->{post_id}, 'attempts') eq '0';
is(row($p->{post_id}, "status || ' ' || attempts"), 'scheduled 1',
   'a 503 on the refresh: backed off');
is($psql->("SELECT needs_reconnect::text || ' '"
           . " || (refresh_lock_owner IS NULL)::text"
           . " FROM tiktok.accounts WHERE user_id = 'ron'"), 'false true',
   '... the account not marked, the lease released');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
is(wait_row($p->{post_id}, 'published|failed', 20), 'published',
   '... then published with the next refresh');


# 5. The creator's options are checked again right before init

$oid = account('pat');
$before = inits();
$p = post(pat => { video_url => $url, privacy_level => 'PUBLIC_TO_EVERYONE',
                   schedule_at => soon(3) });
is($p->{status}, 'scheduled', 'a public post scheduled');
$sb->add_user({ open_id => $oid, private => JSON::PP::true });
is(wait_row($p->{post_id}, 'published|failed', 20), 'failed',
   '... the account turns private before it runs: failed');
is(row($p->{post_id}, 'fail_reason'), 'privacy_level_option_mismatch',
   '... as a privacy mismatch');
is(inits(), $before, '... without an init');

$oid = account('cora');
$p = post(cora => { video_url => $url, privacy_level => 'SELF_ONLY',
                    schedule_at => soon(3) });
$sb->add_user({ open_id => $oid, comment_disabled => JSON::PP::true });
is(wait_row($p->{post_id}, 'published|failed', 20), 'published',
   'the creator disables comments before the post runs: published');
my $init = decode_json($sb->requests('/v2/post/publish/video/init/', 1)
                       ->[0]{body});
is($init->{post_info}{disable_comment}, JSON::PP::true,
   '... with comments disabled, never enabled');

$oid = account('sam');
$before = inits();
$p = post(sam => { video_url => $url, privacy_level => 'SELF_ONLY',
                   schedule_at => soon(3) });
$sb->add_user({ open_id => $oid, can_post => 'spam_risk_too_many_posts' });
is(wait_row($p->{post_id}, 'published|failed', 20), 'failed',
   'creator info says the creator cannot post now: failed');
is(row($p->{post_id}, 'fail_reason'), 'spam_risk_too_many_posts',
   '... with TikTok\'s reason');
is(inits(), $before, '... without an init');
is($psql->("SELECT endpoint || ' ' || http_status || ' ' || tiktok_code"
           . " FROM tiktok.api_errors WHERE request_id = '$p->{post_id}'"),
   '/v2/post/publish/creator_info/query/ 200 spam_risk_too_many_posts',
   '... recorded (TikTok says it with HTTP 200)');


# 6. TikTok fails a publish for a reason worth another try

account('ivy');
$sb->script_outcome({ fail_reason => 'video_pull_failed', count => 1 });
$before = inits();
$p = post(ivy => { video_url => $url, privacy_level => 'SELF_ONLY' });
$deadline = time + 20;
sleep 0.2 while time < $deadline && row($p->{post_id}, 'attempts') eq '0';
is(row($p->{post_id}, "status || ' ' || attempts || ' '"
                      . " || (publish_id IS NULL)::text || ' '"
                      . " || (next_attempt_at > now() + interval '20 s')"),
   'queued 1 true true',
   'FAILED with video_pull_failed: queued again, from init, after a back-off');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
is(wait_row($p->{post_id}, 'published|failed', 20), 'published',
   '... then published');
is(inits(), $before + 2, '... with a second init');

account('flo');
$sb->script_outcome({ fail_reason => 'file_format_check_failed', count => 1 });
$before = inits();
$p = post(flo => { video_url => $url, privacy_level => 'SELF_ONLY' });
is(wait_row($p->{post_id}, 'published|failed', 20), 'failed',
   'FAILED with file_format_check_failed: failed');
is(row($p->{post_id}, "fail_reason || ' ' || attempts"),
   'file_format_check_failed 0', '... at once, not tried again');


# 7. TikTok refusing the access token: expired, refreshed, then published

account('tia');
$refreshes = refreshes();
$before = inits();
$sb->fault({ endpoint => '/v2/post/publish/video/init/',
             type => 'token_invalid' });
$p = post(tia => { video_url => $url, privacy_level => 'SELF_ONLY' });
$deadline = time + 15;
sleep 0.2 while time < $deadline && row($p->{post_id}, 'attempts') eq '0';
is(row($p->{post_id}, "status || ' ' || (init_started_at IS NULL)::text"),
   'queued true', 'access_token_invalid on init: queued again');
is($psql->("SELECT access_expires_at <= now() FROM tiktok.accounts"
           . " WHERE user_id = 'tia'"), 't', '... the token expired with it');
$psql->("UPDATE tiktok.posts SET next_attempt_at = now()"
        . " WHERE id = '$p->{post_id}'");
is(wait_row($p->{post_id}, 'published|failed', 20), 'published',
   '... then published');
is(refreshes(), $refreshes + 1, '... after one refresh');
is(inits(), $before + 2, '... and a second init');


# 8. Failures are written to tiktok.api_errors with the post id

account('eve');
$sb->fault({ endpoint => '/v2/post/publish/video/init/', type => 'status',
             status => 503 });
$p = post(eve => { video_url => $url, privacy_level => 'SELF_ONLY' });
is(wait_row($p->{post_id}, 'published|failed', 15), 'failed',
   'a 503 on a URL init: failed (TikTok may have the post)');
is(row($p->{post_id}, 'fail_reason'), 'init_uncertain', '... init_uncertain');
is($psql->("SELECT user_id || ' ' || endpoint || ' ' || http_status || ' '"
           . " || tiktok_code || ' ' || (log_id <> '')::text"
           . " FROM tiktok.api_errors WHERE request_id = '$p->{post_id}'"),
   'eve /v2/post/publish/video/init/ 503 internal_error true',
   'a 503 on init: recorded with the user, code and log_id');

account('cid');
$sb->fault({ endpoint => '/upload/', type => 'status', status => 500 });
my $small = TikTokMedia::mp4(seconds => 3, mdat => 'c' x 300000);
$p = post(cid => $small, type => 'video/mp4',
          query => '?privacy_level=SELF_ONLY');
is(wait_row($p->{post_id}, 'published|failed', 20), 'published',
   'a 500 on a chunk: published after all');
is($psql->("SELECT endpoint || ' ' || http_status FROM tiktok.api_errors"
           . " WHERE request_id = '$p->{post_id}'"), 'upload_url 500',
   '... the failed chunk recorded');


# 9. Long processing at TikTok keeps the lease

account('lea');
$sb->set_config({ status_polls_to_complete => 9 });
$p = post(lea => { video_url => $url, privacy_level => 'SELF_ONLY' });
$deadline = time + 15;
sleep 0.2 while time < $deadline && row($p->{post_id}, 'publish_id') eq '';
# say the lease is about to run out
$psql->("UPDATE tiktok.posts SET claim_until = now() + interval '20 seconds'"
        . " WHERE id = '$p->{post_id}'");
$deadline = time + 25;
sleep 0.5 while time < $deadline
    && row($p->{post_id}, "claim_until > now() + interval '4 minutes'") ne 't';
is(row($p->{post_id}, "status || ' ' || (claim_until > now()"
                      . " + interval '4 minutes')::text"),
   'processing true', 'still processing after many polls: the lease renewed');
is(wait_row($p->{post_id}, 'published|failed', 30), 'published',
   '... and published');
$sb->set_config({ status_polls_to_complete => 2 });


# 10. Between 5 MB and 64,000,000 bytes: still one chunk

account('max');
my $mid = TikTokMedia::mp4(seconds => 10, mdat => pack('N*', 0 .. 4_999_999));
$p = post(max => $mid, type => 'video/mp4',
          query => '?privacy_level=SELF_ONLY');
is($p->{status}, 'queued', sprintf('a %d-byte upload', length $mid));
is(wait_row($p->{post_id}, 'published|failed', 60), 'published',
   '... is published');
$init = decode_json($sb->requests('/v2/post/publish/video/init/', 1)
                    ->[0]{body});
is_deeply($init->{source_info}, { source => 'FILE_UPLOAD',
    video_size => length $mid, chunk_size => length $mid,
    total_chunk_count => 1 }, '... announced as one chunk');
my $up = $sb->upload(row($p->{post_id}, 'publish_id'));
is_deeply([ map { $_->{range} } @{ $up->{ranges} } ],
          [ sprintf('bytes 0-%d/%d', length($mid) - 1, length $mid) ],
          '... sent as one chunk with its Content-Range');
is($up->{sha256}, sha256_hex($mid), '... every byte');



# 11. Backed off ten times: failed rather than waiting forever

account('ada');
$sb->fault({ endpoint => '/v2/post/publish/video/init/',
             type => 'rate_limit' });
$p = post(ada => { video_url => $url, privacy_level => 'SELF_ONLY',
                   schedule_at => soon(3) });
$psql->("UPDATE tiktok.posts SET attempts = 9 WHERE id = '$p->{post_id}'");
is(wait_row($p->{post_id}, 'published|failed', 20), 'failed',
   'a tenth transient failure: failed');
is(row($p->{post_id}, 'fail_reason'), 'retries_exhausted',
   '... as retries_exhausted');


# 12. One user's burst stays under TikTok's 6 inits a minute per token

account('bea');
my @burst = map {
    post(bea => { video_url => "https://media.example.com/v/burst$_.mp4",
                  privacy_level => 'SELF_ONLY' })->{post_id}
} 1 .. 8;
is(scalar(grep { defined } @burst), 8, '8 posts of one user at once');
sleep 8;
my $burst_inits = grep { ($_->{body} // '') =~ m{/v/burst\d\.mp4} }
    @{ $sb->requests('/v2/post/publish/video/init/', 50) };
is($burst_inits, 6, '... 6 initialised within the minute');
is($psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = 'bea'"
           . " AND attempts = 0 AND status IN ('queued', 'processing',"
           . " 'published')"), '8',
   '... the others wait, none refused by TikTok (no back-off)');
like($ngx->error_log,
     qr{pacing /v2/post/publish/video/init/ under TikTok's limit of 6},
     '... paced by the module');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
