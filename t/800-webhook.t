# TikTok's webhooks (DESIGN 8.1, issue 12).  Blocks (below __DATA__): one
# delivery each, signed here as TIKTOK_API.md says TikTok signs them,
# with one flaw or none:
#
#   --- webhook: EVENT    POST it to /api/tiktok/webhook; --- content is
#                         the event's content (JSON), --- body a raw body
#   --- flaw: F           none (no header), malformed, bad (one hex digit
#                         changed), stale / future (330 s off: the
#                         block is signed before nginx starts), secret
#                         (another key), client_key (another app)
#   --- refused: WHY      the answer is the 401 and the error log says why
#
# and no block's log holds the client secret or the signature.  Then, in
# Perl because each takes several steps, with the sandbox delivering: a
# post published through the webhook while polling waits at its safety
# net; the same delivery twice; failed then a late complete; the
# sandbox's own flawed deliveries and its retries; authorization.removed
# with the cache purged on a second nginx; the rows and metrics; a draft
# made sent_to_inbox by post.publish.inbox_delivered; events out of order
# and doubled; no_longer_publicaly_available; and a failing statement
# answered 500 and delivered again.

use strict;
use warnings;

use TikTokTest;
use BlockSections qw(webhook content body flaw refused);
use Test::Nginx::Socket 'no_plan';
use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP;
use Time::HiRes qw(sleep time);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;
my $secret = $ENV{TIKTOK_CLIENT_SECRET};

my $server = <<'CONF';
        location = /api/tiktok/webhook {
            tiktok_webhook;
        }
        location = /tiktok_metrics {
            tiktok_metrics;
        }
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

# the body TikTok sends: content is JSON in a string
sub delivery {
    my (%o) = @_;
    return JSON::PP->new->canonical->encode({
        client_key => $o{client_key} // $TikTokTest::ClientKey,
        event => $o{event},
        create_time => int(time),
        user_openid => $o{open_id} // $sb->default_open_id,
        content => $o{content} // '{}',
    });
}

sub signature {
    my ($body, $t, $key) = @_;
    return "t=$t,s=" . hmac_sha256_hex("$t.$body", $key // $secret);
}

TikTokTest::defaults(http => "    tiktok_webhooks on;\n", config => $server);
log_level('info');

add_block_preprocessor(sub {
    my $block = shift;

    return unless defined $block->webhook;

    my $flaw = $block->flaw // '';
    my $body = $block->body // delivery(
        event => $block->webhook,
        content => scalar $block->content,
        client_key => $flaw eq 'client_key' ? 'another_app' : undef);
    chomp $body;

    my $t = int(time) + ($flaw eq 'stale' ? -330
                         : $flaw eq 'future' ? 330 : 0);
    my $sig = signature($body, $t, $flaw eq 'secret' ? 'x' x 32 : undef);

    $sig =~ s/(.)\z/$1 eq '0' ? '1' : '0'/e if $flaw eq 'bad';
    $sig =~ s/^t=\d+,// if $flaw eq 'malformed';

    my @headers = ('Content-Type: application/json',
                   'X-Request-ID: wh-' . ($flaw || 'ok'));
    push @headers, "TikTok-Signature: $sig" unless $flaw eq 'none';

    (my $hex = $sig) =~ s/.*s=//;

    $block->set_value('request', "POST /api/tiktok/webhook\n$body");
    $block->set_value('more_headers', join("\n", @headers));
    $block->set_value('no_error_log', ['[error]', '[alert]', $secret, $hex]);

    if (defined $block->refused) {
        $block->set_value('error_code', 401);
        $block->set_value('response_body',
            '{"error":{"code":"unauthorized","message":"The delivery is not '
            . 'signed by TikTok for this app","request_id":"wh-'
            . $flaw . '"}}');
        $block->set_value('error_log', [
            'webhook refused: ' . $block->refused
            . ", request id \"wh-$flaw\""]);
    }
});

no_shuffle();
run_tests();


# ---- in Perl: the sandbox delivers to two nodes -------------------------

is($psql->("SELECT count(*) FROM tiktok.api_errors WHERE endpoint = 'webhook'"
           . " AND http_status = 401"), 7,
   'each 401 above wrote an api_errors row');
is($psql->("SELECT count(*) FROM tiktok.api_errors WHERE endpoint = 'webhook'"
           . " AND (message ~ '[0-9a-f]{64}' OR message ~ 'client_key\"')"),
   0, '... naming why, never the signature or the body');
is($psql->("SELECT string_agg(event || ':' || outcome, ',' ORDER BY id)"
           . " FROM tiktok.webhook_events"),
   'video.publish.completed:unknown_event,'
   . 'post.publish.complete:unknown_post',
   'the unknown event and the unknown publish id were recorded, no other');
is($psql->("SELECT count(*) FROM tiktok.posts"), 0, '... nothing else changed');

(my $http_a = $TikTokTest::HttpConfig)
    =~ s/tiktok_scheduler\s+off;/tiktok_scheduler on interval=300ms;/
    or die;
$http_a .= "    tiktok_webhooks on;\n";
my $http_b = $TikTokTest::HttpConfig . "    tiktok_webhooks on;\n";

my $a = TikTokTest::Nginx->new(name => 'wh-a', http => $http_a,
                               server => $server)->start;
my $b = TikTokTest::Nginx->new(name => 'wh-b', http => $http_b,
                               server => $server)->start;
my $hook = 'http://127.0.0.1:' . $a->port . '/api/tiktok/webhook';

sub ctl { $sb->control(@_) }

sub get {
    my ($ngx, $path, $user) = @_;
    my $r = $ngx->request(GET => $path, headers => { 'X-User-ID' => $user });
    $r->{json} = eval { decode_json($r->{content}) } || {};
    return $r;
}

sub within {
    my ($limit, $what) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return 1 if $what->();
        sleep 0.1;
    }
    return 0;
}

# a post TikTok is processing, as the publisher leaves it, not due again
sub processing_post {
    my ($user, $publish_id) = @_;
    return scalar $psql->("INSERT INTO tiktok.posts (user_id, status, source,"
        . " video_url, publish_id, creator_username, init_started_at,"
        . " next_attempt_at) VALUES ('$user', 'processing', 'PULL_FROM_URL',"
        . " 'https://media.example.com/v.mp4', '$publish_id',"
        . " 'sandbox.creator', now(), now() + interval '1 hour')"
        . " RETURNING id");
}

sub row {
    my ($id, $cols) = @_;
    return scalar $psql->("SELECT $cols FROM tiktok.posts WHERE id = '$id'");
}

sub send_hook {
    my (%d) = @_;
    $d{content} //= {};
    $d{user_openid} //= $sb->default_open_id;
    return ctl(POST => '/webhooks/send', \%d);
}

# TikTok takes 4.5 s: a publisher polling every 3 s would ask twice
ctl(POST => '/webhooks/config', { url => $hook, process_ms => 4500,
                                  retry_ms => 200, max_tries => 3 });
$sb->set_config({ daily_post_cap => 1000 });


# 1. published through the webhook; the status fetch waits at its safety
# net (60 s), so it is called at most once

TikTokTest::connect_account('wendy');
$sb->clear_calls;

my $p = $a->post_as(wendy => { video_url => 'https://media.example.com/w.mp4',
                               title => 'hooked',
                               privacy_level => 'PUBLIC_TO_EVERYONE' });
is($p->{status}, 'queued', 'a post is queued');

my $post;
ok(within(15, sub {
    $post = get($a, "/api/tiktok/posts/$p->{post_id}", 'wendy')->{json};
    ($post->{status} // '') eq 'published' && $post->{share_url} }),
   '... published, with its share link, within seconds');
like($post->{share_url} // '',
     qr{^https://www\.tiktok\.com/\@sandbox\.creator/video/\d+$},
     '... share_url from post.publish.publicly_available');
ok(($sb->calls->{'/v2/post/publish/status/fetch/'} // 0) <= 1,
   '... the status fetch called at most once');
is($sb->calls->{'/v2/post/publish/video/init/'}, 1, '... one init');
my $d = ctl(GET => '/webhooks')->{deliveries};
is(join(',', map { "$_->{event}=@{$_->{attempts}}" } @$d),
   'post.publish.complete=200,post.publish.publicly_available=200',
   '... the sandbox delivered both events, each answered 200 at once');
like($a->error_log, qr/post \S+: processing at TikTok; waiting for its /,
     '... the publisher waited for the webhook');


# 2. the same delivery twice: one change, both answered 200

my $id = processing_post('wendy', 'v_pub_twice');
my $r = send_hook(event => 'post.publish.failed', duplicates => 1,
                  content => { publish_id => 'v_pub_twice',
                               reason => 'spam_risk_text',
                               publish_type => 'DIRECT_PUBLISH' });
is(join(',', map { $_->{status} } @{ $r->{answers} }), '200,200',
   'a delivery sent twice: 200 both times');
is(row($id, "status || ':' || fail_reason"), 'failed:spam_risk_text',
   '... the post failed with TikTok\'s reason');
is($psql->("SELECT string_agg(outcome, ',') FROM tiktok.webhook_events"
           . " WHERE publish_id = 'v_pub_twice'"), 'applied',
   '... recorded once');


# 3. failed, then a late complete: stays failed

$id = processing_post('wendy', 'v_pub_late');
$r = send_hook(event => 'post.publish.failed',
               content => { publish_id => 'v_pub_late', reason => 'internal' });
is($r->{status}, 200, 'failed: 200');
$r = send_hook(event => 'post.publish.complete',
               content => { publish_id => 'v_pub_late' });
is($r->{status}, 200, 'a late complete: 200');
is(row($id, "status || ':' || fail_reason"), 'failed:internal',
   '... the post stays failed');
is($psql->("SELECT string_agg(outcome, ',' ORDER BY id)"
           . " FROM tiktok.webhook_events WHERE publish_id = 'v_pub_late'"),
   'applied,ignored', '... the late event recorded and ignored');


# 4. the sandbox's flawed deliveries change nothing

$id = processing_post('wendy', 'v_pub_flawed');
my %c = (event => 'post.publish.complete',
         content => { publish_id => 'v_pub_flawed' });
is(send_hook(%c, timestamp_offset => -400)->{status}, 401,
   'the sandbox: a stale timestamp, 401');
is(send_hook(%c, timestamp_offset => 400)->{status}, 401,
   '... a future one, 401');
is(send_hook(%c, signature => 'bad')->{status}, 401, '... a bad signature');
is(send_hook(%c, signature => 'none')->{status}, 401, '... none at all');
is(send_hook(%c, client_key => 'other')->{status}, 401, '... another app');
is(send_hook(%c, pad => 70000)->{status}, 413, '... 70 KB: 413');
is(row($id, 'status'), 'processing', '... the post did not change');
is($psql->("SELECT count(*) FROM tiktok.webhook_events"
           . " WHERE publish_id = 'v_pub_flawed'"), 0, '... nor was recorded');
is(send_hook(%c)->{status}, 200, 'the same, well signed: 200');
is(row($id, 'status'), 'published', '... published');
unlike($a->error_log, qr/\Q$secret\E/, 'the secret is in no log line');


# 5. not answered 200: the sandbox tries again, backing off

my $t0 = time;
$r = send_hook(%c, retry => JSON::PP::true,
               url => 'http://127.0.0.1:' . $a->port . '/nowhere');
is(join(',', @{ $r->{attempts} }), '404,404,404',
   'not answered 200: the sandbox tried max_tries (3) times');
ok(time - $t0 >= 0.6, '... backing off (200 ms, then 400 ms)');
$r = send_hook(event => 'post.publish.publicly_available', retry => 1,
               content => { publish_id => 'v_pub_flawed',
                            post_id => 7300000000000000001 });
is(join(',', @{ $r->{attempts} }), '200', '... answered 200: once');
is(row($id, 'share_url'),
   'https://www.tiktok.com/@sandbox.creator/video/7300000000000000001',
   '... a 19-digit post id, exactly');


# 6. authorization.removed: needs_reconnect, unstarted posts cancelled,
# the cache purged on the other node too

TikTokTest::connect_account('ursula');
is(get($b, '/api/tiktok/videos', 'ursula')->{status}, 200,
   'ursula: B fetches her videos');
is(get($b, '/api/tiktok/videos', 'ursula')->{json}{cached}, JSON::PP::true,
   '... and B has them cached');
my $queued = $psql->("INSERT INTO tiktok.posts (user_id, status, source,"
    . " video_url, schedule_at, next_attempt_at) VALUES ('ursula',"
    . " 'scheduled', 'PULL_FROM_URL', 'https://media.example.com/u.mp4',"
    . " now() + interval '1 day', now() + interval '1 day') RETURNING id");

ctl(DELETE => '/webhooks');
$sb->revoke_tokens({ open_id => $sb->default_open_id });

ok(within(8, sub { $psql->("SELECT needs_reconnect FROM tiktok.accounts"
                           . " WHERE user_id = 'ursula'") eq 't' }),
   'the user removed the app in TikTok: needs_reconnect');
is(row($queued, 'status'), 'cancelled', '... her scheduled post cancelled');
ok(within(8, sub {
       !get($b, '/api/tiktok/videos', 'ursula')->{json}{cached} }),
   '... and B no longer answers from its cache');
is(get($a, '/api/tiktok/status', 'ursula')->{json}{needs_reconnect},
   JSON::PP::true, '... /status says needs_reconnect');
$d = ctl(GET => '/webhooks')->{deliveries};
is($d->[0]{event} // '', 'authorization.removed',
   '... the sandbox sent authorization.removed');


# 7. the deliveries counted by event and outcome

my $m = $a->request(GET => '/tiktok_metrics')->{content};
like($m, qr/^tiktok_webhook_deliveries_total\{event="post\.publish\.failed",outcome="duplicate"\} 1$/m,
     'metrics: the repeat counted as a duplicate');
like($m, qr/^tiktok_webhook_deliveries_total\{event="post\.publish\.complete",outcome="ignored"\} 1$/m,
     '... the late complete as ignored');
like($m, qr/^tiktok_webhook_deliveries_total\{event="unverified",outcome="rejected"\} \d+$/m,
     '... the refused ones as rejected');
like($m, qr/^tiktok_webhook_deliveries_total\{event="authorization\.removed",outcome="applied"\} 1$/m,
     '... authorization.removed as applied');


# 8. a draft through the webhook: post.publish.inbox_delivered (an
# INBOX_SHARE) makes it sent_to_inbox; the status fetch waits at its
# safety net

$sb->add_user({ open_id => 'open-dina' });
TikTokTest::connect_account('dina', open_id => 'open-dina',
                            scope => 'user.info.basic,video.upload');
ctl(DELETE => '/webhooks');
$sb->clear_calls;

$p = $a->post_as(dina => { video_url => 'https://media.example.com/d.mp4',
                           mode => 'draft' });
is($p->{status}, 'queued', 'a draft is queued');
ok(within(15, sub {
       (get($a, "/api/tiktok/posts/$p->{post_id}", 'dina')->{json}{status}
        // '') eq 'sent_to_inbox' }),
   '... sent_to_inbox within seconds');
ok(($sb->calls->{'/v2/post/publish/status/fetch/'} // 0) <= 1,
   '... the status fetch called at most once');
is($sb->calls->{'/v2/post/publish/inbox/video/init/'}, 1,
   '... one inbox init');
$d = ctl(GET => '/webhooks')->{deliveries};
is(join(',', map { "$_->{event}=@{$_->{attempts}}" } @$d),
   'post.publish.inbox_delivered=200',
   '... the sandbox delivered post.publish.inbox_delivered');
is($d->[0]{content}{publish_type}, 'INBOX_SHARE', '... an INBOX_SHARE');


# 9. TikTok's events out of order and each twice: published once, with
# its share link

ctl(POST => '/webhooks/config', { reverse => JSON::PP::true,
                                  duplicates => 1 });
ctl(DELETE => '/webhooks');
$sb->add_user({ open_id => 'open-otto' });
TikTokTest::connect_account('otto', open_id => 'open-otto');

$p = $a->post_as(otto => { video_url => 'https://media.example.com/o.mp4',
                           title => 'twice',
                           privacy_level => 'PUBLIC_TO_EVERYONE' });
ok(within(15, sub {
    $post = get($a, "/api/tiktok/posts/$p->{post_id}", 'otto')->{json};
    ($post->{status} // '') eq 'published' && $post->{share_url} }),
   'events reversed and doubled: published, with its share link');
$d = ctl(GET => '/webhooks')->{deliveries};
is(join(',', map { "$_->{event}=@{$_->{attempts}}" } @$d),
   join(',', ('post.publish.publicly_available=200') x 2,
             ('post.publish.complete=200') x 2),
   '... publicly_available came first, each twice, all answered 200');
my $pub = row($p->{post_id}, 'publish_id');
is($psql->("SELECT string_agg(event || ':' || outcome, ',' ORDER BY id)"
           . " FROM tiktok.webhook_events WHERE publish_id = '$pub'"),
   'post.publish.publicly_available:applied,post.publish.complete:applied',
   '... each recorded once');
ctl(POST => '/webhooks/config', { reverse => JSON::PP::false,
                                  duplicates => 0 });


# 10. no longer publicly available: the share link goes, the post stays
# published

is(send_hook(event => 'post.publish.no_longer_publicaly_available',
             user_openid => 'open-otto',
             content => { publish_id => $pub })->{status}, 200,
   'no_longer_publicaly_available: 200');
is(row($p->{post_id}, "status || ':' || coalesce(share_url, '-')"),
   'published:-', '... share_url cleared, still published');


# 11. the database refusing the event: 500, nothing recorded, and TikTok
# delivers it again until it is answered 200

$id = processing_post('wendy', 'v_pub_busy');
my $apply = 'tiktok.webhook_apply(bytea, text, bigint, text, text, text,'
    . ' text)';
$psql->("REVOKE EXECUTE ON FUNCTION $apply FROM tiktok_app");
%c = (event => 'post.publish.complete', retry => JSON::PP::true,
      content => { publish_id => 'v_pub_busy' });
$r = send_hook(%c);
is(join(',', @{ $r->{attempts} }), '500,500,500',
   'the database failing the statement: 500, and the sandbox tried again');
is(row($id, 'status'), 'processing', '... the post did not change');
is($psql->("SELECT count(*) FROM tiktok.webhook_events"
           . " WHERE publish_id = 'v_pub_busy'"), 0, '... nothing recorded');
$psql->("GRANT EXECUTE ON FUNCTION $apply TO tiktok_app");
is(join(',', @{ send_hook(%c)->{attempts} }), '200',
   'the database back: 200 at the first try');
is(row($id, 'status'), 'published', '... published');

__DATA__

=== TEST 1: only POST
--- request
GET /api/tiktok/webhook
--- error_code: 405
--- response_headers
Allow: POST
--- response_body_like: "method_not_allowed"



=== TEST 2: no TikTok-Signature header
--- webhook: post.publish.complete
--- flaw: none
--- refused: no TikTok-Signature header



=== TEST 3: a header without its timestamp
--- webhook: post.publish.complete
--- flaw: malformed
--- refused: a malformed TikTok-Signature header



=== TEST 4: one hex digit changed
--- webhook: post.publish.complete
--- flaw: bad
--- refused: a signature that does not match



=== TEST 5: signed with another secret
--- webhook: post.publish.complete
--- flaw: secret
--- refused: a signature that does not match



=== TEST 6: a timestamp 330 s old
--- webhook: post.publish.complete
--- flaw: stale
--- refused: a timestamp outside the 300 s window



=== TEST 7: a timestamp 330 s ahead
--- webhook: post.publish.complete
--- flaw: future
--- refused: a timestamp outside the 300 s window



=== TEST 8: well signed, for another app
--- webhook: post.publish.complete
--- flaw: client_key
--- refused: another client_key



=== TEST 9: a body over 64 KB
--- request eval
"POST /api/tiktok/webhook\n" . ('x' x 65537)
--- more_headers
TikTok-Signature: t=1,s=00
--- error_code: 413
--- response_body_like: "body_too_large"



=== TEST 10: an event the module does not know: 200, recorded
--- webhook: video.publish.completed
--- content: {"publish_id":"v_pub_old"}
--- error_code: 200
--- response_body: {}
--- error_log
webhook other: unknown_event



=== TEST 11: a publish id no post has: 200, recorded
--- webhook: post.publish.complete
--- content: {"publish_id":"v_pub_nobody"}
--- error_code: 200
--- response_body: {}
--- error_log
webhook post.publish.complete: unknown_post



=== TEST 12: signed, but not JSON
--- webhook: post.publish.complete
--- body: not json
--- error_code: 400
--- response_body_like: "field":"body"



=== TEST 13: tiktok_webhook needs the client secret it verifies with
--- http_config
    tiktok_client_key sbx_client_key_123;
    tiktok_postgres "host=127.0.0.1 dbname=app user=tiktok_app";
--- config
    location = /api/tiktok/webhook { tiktok_webhook; }
--- must_die
--- error_log
"tiktok_webhook" is used but "tiktok_client_secret_env" is not set in the http block



=== TEST 14: twice in one location
--- config
    location = /api/tiktok/webhook { tiktok_webhook; tiktok_webhook; }
--- must_die
--- error_log
"tiktok_webhook" directive is duplicate



=== TEST 15: tiktok_webhooks is on or off
--- http_config
    tiktok_webhooks sometimes;
--- must_die
--- error_log
invalid value "sometimes" in "tiktok_webhooks" directive, it must be "on" or "off"
