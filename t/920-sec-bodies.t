# Security battery: oversized and slow bodies (issue 13).  A client that
# sends a body slowly, stops half-way or goes away is timed out by nginx's
# client_body_timeout (1 s here) and leaves nothing behind: no row, no
# file in the spool or in client_body_temp, no worker held.  An upload
# that declares more than TikTok takes is refused before its bytes are
# read, even with client_max_body_size 0, and so is a chunked one once its
# chunks declare more.  These take several steps each
# (a connection held open, then the files looked at), so they are Perl.
# Bodies over client_max_body_size as JSON 413s are t/512's; a webhook
# over 64 KB is t/800's; the spool's own life (janitor, full disk) t/516's.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $psql = \&TikTokTest::psql;

$SIG{PIPE} = 'IGNORE';

my $ngx = TikTokTest::Nginx->new(name => 'bodies', workers => 1,
    server => <<'CONF')->start;
        client_body_timeout 1s;
        client_body_buffer_size 1k;
        location = /api/tiktok/webhook {
            tiktok_webhook;
        }
        location /unlimited/api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            client_max_body_size 0;
            tiktok_api;
        }
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            client_max_body_size 20m;
            tiktok_api;
        }
CONF

TikTokTest::connect_account('sid');

sub files_in {
    my ($dir) = @_;
    opendir my $dh, $dir or return ();
    my @f = grep { !/^\.\.?$/ } readdir $dh;
    closedir $dh;
    return map { -d "$dir/$_" ? files_in("$dir/$_") : "$dir/$_" } @f;
}

sub left_behind {
    return (files_in($ngx->dir . '/body'), files_in($ngx->dir . '/spool'));
}

sub wait_for {
    my ($what, $limit) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        return 1 if $what->();
        sleep 0.05;
    }
    return 0;
}

# Sends the head and the first part of a body, then waits (at most
# $wait seconds) for whatever comes back: ($status or undef, seconds until
# the answer or the close, the answer's text).  $close: go away at once after sending.
sub stall {
    my (%o) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die "$!";
    my $head = "POST $o{path} HTTP/1.1\r\nHost: localhost\r\n"
             . "X-User-ID: sid\r\nContent-Type: $o{type}\r\n"
             . ($o{chunked} ? "Transfer-Encoding: chunked\r\n"
                            : "Content-Length: $o{length}\r\n")
             . ($o{headers} // '') . "\r\n";
    print $s $head, $o{part};
    my $t0 = time;

    if ($o{close}) {
        close $s;
        return (undef, 0, '');
    }

    # the time until the answer (or, without one, until nginx closes): a
    # refused body may still be discarded after the answer, as nginx does
    my ($resp, $sel, $took) = ('', IO::Select->new($s));
    while (time - $t0 < ($o{wait} // 10)) {
        next unless $sel->can_read(0.1);
        my $got = sysread($s, my $buf, 65536);
        last unless $got;
        $took //= time - $t0;
        $resp .= $buf;
        last if $resp =~ /\r\n\r\n.*\}/s;
    }
    $took //= time - $t0;
    close $s;

    my ($status) = $resp =~ m{^HTTP/1\.1 (\d{3})};
    return ($status, $took, $resp);
}

my $video = TikTokMedia::mp4(seconds => 7, mdat => 'v' x 300000);
my $json = '{"video_url":"https://media.example.com/v/1.mp4",'
         . '"privacy_level":"SELF_ONLY","title":"slow"}';
my $rows = $psql->("SELECT count(*) FROM tiktok.posts");
my ($status, $took, $resp);

# 1. a JSON body that stops after a few bytes: timed out, not waited on
($status, $took) = stall(path => '/api/tiktok/post', type => 'application/json',
                         length => length $json, part => substr($json, 0, 20));
ok(!defined $status || $status == 408,
   'a JSON body that stops: timed out (408 or closed)');
ok($took < 4, "... after client_body_timeout, not later (${\sprintf '%.1f', $took} s)");

# 2. an upload that stops past client_body_buffer_size: its temp file goes
($status, $took) = stall(path => '/api/tiktok/post?privacy_level=SELF_ONLY',
                         type => 'video/mp4', length => length $video,
                         part => substr($video, 0, 100000));
ok(!defined $status || $status == 408, 'an upload that stops: timed out');
ok($took < 4, '... after client_body_timeout');
ok(wait_for(sub { !left_behind() }, 5),
   '... no file left in client_body_temp or the spool')
    or diag(join ' ', left_behind());

# 3. a chunked upload that stops between chunks
my $chunk = substr($video, 0, 50000);
($status, $took) = stall(path => '/api/tiktok/post?privacy_level=SELF_ONLY',
                         type => 'video/mp4', chunked => 1,
                         part => sprintf("%x\r\n%s\r\n", length $chunk, $chunk));
ok(!defined $status || $status == 408, 'a chunked upload that stops: timed out');
ok(wait_for(sub { !left_behind() }, 5), '... no file left')
    or diag(join ' ', left_behind());

# 4. a client that goes away half-way through its upload
stall(path => '/api/tiktok/post?privacy_level=SELF_ONLY', type => 'video/mp4',
      length => length $video, part => substr($video, 0, 150000), close => 1);
ok(wait_for(sub { !left_behind() }, 5),
   'a client gone half-way through an upload: no file left')
    or diag(join ' ', left_behind());

# 5. a signed-looking webhook that trickles: timed out, nothing recorded
($status, $took) = stall(path => '/api/tiktok/webhook',
                         type => 'application/json', length => 1000,
                         headers => "TikTok-Signature: t=1,s=00\r\n",
                         part => '{"event":');
ok(!defined $status || $status == 408, 'a webhook body that stops: timed out');
ok($took < 4, '... after client_body_timeout');

# 6. more than TikTok takes (4 GB), declared: refused before it is read,
# even where client_max_body_size is 0
($status, $took, $resp) = stall(
    path => '/unlimited/api/tiktok/post?privacy_level=SELF_ONLY',
    type => 'video/mp4', length => 5_000_000_000, part => substr($video, 0, 1000),
    wait => 5);
is($status, 413, 'an upload declaring 5 GB under client_max_body_size 0: 413');
ok($took < 3, '... answered without reading it (status above: not a timeout)');
like($resp, qr/"code":"body_too_large","field":"body","message":"The video is larger than 4 GB"/,
     '... the JSON 413');

# 6b. the same in chunks: a chunk declaring 4,000,000,001 bytes is refused
# as soon as its size is read (as nginx refuses one past
# client_max_body_size), not read to its end into client_body_temp
($status, $took, $resp) = stall(
    path => '/unlimited/api/tiktok/post?privacy_level=SELF_ONLY',
    type => 'video/mp4', chunked => 1,
    part => sprintf("%x\r\n", 4_000_000_001) . substr($video, 0, 1000),
    wait => 5);
is($status, 413, 'a chunk declaring 4,000,000,001 bytes under client_max_body_size 0: 413');
ok($took < 3, '... answered without reading it (status above: not a timeout)');
like($resp, qr/"code":"body_too_large","field":"body","message":"The video is larger than 4 GB"/,
     '... the JSON 413, naming TikTok\'s limit');
ok(wait_for(sub { !left_behind() }, 5), '... no file left')
    or diag(join ' ', left_behind());

# 7. a JSON body declaring more than the 64 KB it may have: refused at once
($status, $took, $resp) = stall(path => '/api/tiktok/post',
    type => 'application/json', length => 10_000_000, part => '{"title":',
    wait => 5);
is($status, 400, 'a JSON body declaring 10 MB: 400');
ok($took < 3, '... answered without reading it (status above: not a timeout)');
like($resp, qr/"field":"body","message":"The JSON body is larger than 64 KB"/,
     '... saying so');
ok(wait_for(sub { !left_behind() }, 5), '... no file left')
    or diag(join ' ', left_behind());

is($psql->("SELECT count(*) FROM tiktok.posts"), $rows,
   'none of them stored a post');

# the worker is still there and serving
my $r = $ngx->post_as(sid => $video, type => 'video/mp4',
                      query => '?privacy_level=SELF_ONLY');
is($r->{status}, 'queued', 'a whole upload afterwards: queued');

unlike($ngx->error_log, qr/\[(?:alert|crit|emerg)\]|signal \d+/,
       'no alert, no crashed worker');
$ngx->stop;

done_testing();
