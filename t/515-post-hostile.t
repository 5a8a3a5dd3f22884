# POST /post against hostile input from outside, where what is stored,
# spooled or asked of TikTok matters: chunked bodies, bodies in memory and
# in files, RFC 3339 offsets PostgreSQL does not take, form-encoded query
# options, a malformed creator-info answer, and a burst of posts for one
# user with a cold creator-info cache.  The cases that are one request and
# its answer (user ids that are not UTF-8, JSON 413s, media types with
# parameters) are blocks in t/512.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

my $ngx = TikTokTest::Nginx->new(name => 'hostile', workers => 2,
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            client_body_buffer_size 1k;
            tiktok_api;
        }
        location /small/api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            client_max_body_size 8k;
            tiktok_api;
        }
CONF

my $creator_path = '/v2/post/publish/creator_info/query/';
sub calls { $sb->calls->{$_[0]} // 0 }

# One request on its own connection, as bytes: ($status, \%headers, $body,
# $json); status undef when the connection closed without an answer (a
# crashed worker).
sub raw {
    my ($n, $head, $body) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port, Timeout => 20)
        or die "connect: $!";
    print $s $head, $body // '';

    my $resp = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + 20;
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $got = sysread($s, my $buf, 65536);
        last unless $got;
        $resp .= $buf;
    }
    close $s;

    my ($status) = $resp =~ m{^HTTP/1\.[01] (\d{3})};
    my ($hdr, $content) = split /\r\n\r\n/, $resp, 2;
    my %h;
    for (split /\r\n/, $hdr // '') {
        $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($content =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($content, 0, $len, '');
            $content =~ s/^\r\n//;
        }
        $content = $out;
    }
    my $json = eval { decode_json($content) };
    return ($status, \%h, $content, $json);
}

sub chunked {
    my ($body, $size) = @_;
    my $out = '';
    while (length $body) {
        my $part = substr($body, 0, $size, '');
        $out .= sprintf("%x\r\n%s\r\n", length $part, $part);
    }
    return $out . "0\r\n\r\n";
}

sub post_raw {
    my (%o) = @_;
    my $path = ($o{prefix} // '') . '/api/tiktok/post' . ($o{query} // '');
    my $head = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\nX-User-ID: $o{user}\r\n"
             . "Content-Type: " . ($o{type} // 'application/json') . "\r\n";
    my $body = $o{body};
    if ($o{chunk}) {
        $head .= "Transfer-Encoding: chunked\r\n";
        $body = chunked($body, $o{chunk});
    } else {
        $head .= 'Content-Length: ' . length($body) . "\r\n";
    }
    return raw($ngx, "$head\r\n", $body);
}

sub row {
    my ($id) = @_;
    return decode_json($psql->("SELECT row_to_json(p) FROM tiktok.posts p"
                               . " WHERE id = '$id'") || 'null');
}

my $url = 'https://media.example.com/v/1.mp4';
TikTokTest::connect_account('hal');

# ---- chunked bodies, in memory, in a file, and empty ----

my $json = encode_json({ video_url => $url, privacy_level => 'SELF_ONLY',
                         title => 'chunked' });
my ($st, $h, $body, $j);

($st, $h, $body, $j) = post_raw(user => 'hal', body => $json, chunk => 4096);
is($st, 202, 'a chunked JSON body in one chunk: 202 (no crash)');
is(row($j->{post_id})->{post_info}{title}, 'chunked', '... stored')
    if $j && $j->{post_id};

($st, $h, $body, $j) = post_raw(user => 'hal', body => $json, chunk => 7);
is($st, 202, 'a chunked JSON body in 7-byte chunks: 202');

# larger than client_body_buffer_size (1k): nginx keeps it in a file
my $big = '{' . (' ' x 3000) . substr($json, 1);
($st, $h, $body, $j) = post_raw(user => 'hal', body => $big);
is($st, 202, 'a JSON body in a file (over client_body_buffer_size): 202');
($st, $h, $body, $j) = post_raw(user => 'hal', body => $big, chunk => 500);
is($st, 202, '... and chunked into a file: 202');

($st, $h, $body, $j) = post_raw(user => 'hal', body => '', chunk => 1);
is("${\($st // 'none')} " . ($j->{error}{field} // ''), '400 body',
   'an empty chunked JSON body: 400 body');

my $video = TikTokMedia::mp4(seconds => 7, mdat => 'c' x 20000);
($st, $h, $body, $j) = post_raw(user => 'hal', body => $video,
    chunk => 3000, type => 'video/mp4', query => '?privacy_level=SELF_ONLY');
is($st, 202, 'a chunked upload: 202');
if ($j && $j->{post_id}) {
    my $r = row($j->{post_id});
    open my $fh, '<:raw', $r->{spool_path} or die "$r->{spool_path}: $!";
    my $bytes = do { local $/; <$fh> };
    close $fh;
    is(sha256_hex($bytes), sha256_hex($video), '... every byte spooled');
    is($r->{video_size}, length $video, '... its size');
}

($st, $h, $body, $j) = post_raw(user => 'hal', body => '', chunk => 1,
    type => 'video/webm', query => '?privacy_level=SELF_ONLY');
is("${\($st // 'none')} " . ($j->{error}{field} // ''), '400 video',
   'an empty chunked upload: 400 video');

# ---- schedule_at offsets beyond PostgreSQL's +-15:59 ----

for my $off (['+16:00', 16 * 3600], ['-20:00', -20 * 3600],
             ['+23:59', 23 * 3600 + 59 * 60]) {
    my $t = int(time) + 7200;
    my $at = strftime('%Y-%m-%dT%H:%M:%S', gmtime($t + $off->[1]))
             . $off->[0];
    ($st, $h, $body, $j) = post_raw(user => 'hal', body => encode_json({
        video_url => $url, privacy_level => 'SELF_ONLY', schedule_at => $at }));
    is($st, 202, "schedule_at $at: 202");
    is($j && $j->{post_id} && $psql->("SELECT extract(epoch FROM schedule_at)"
           . "::bigint FROM tiktok.posts WHERE id = '$j->{post_id}'"),
       $t, '... stored as that instant');
}

# ---- upload options: form decoding, unknown options refused ----

($st, $h, $body, $j) = post_raw(user => 'hal', body => $video,
    type => 'video/mp4',
    query => '?privacy_level=SELF_ONLY&title=Is+it+ok%3F+yes+%26+100%25');
is($st, 202, 'an upload with a form-encoded title');
is($j && $j->{post_id} && row($j->{post_id})->{post_info}{title},
   'Is it ok? yes & 100%', '... decoded: + is a space, %3F a ?');

($st, $h, $body, $j) = post_raw(user => 'hal', body => $video,
    type => 'video/mp4', query => '?title=a?b&privacy_level=SELF_ONLY');
is($st, 202, 'a literal ? inside a value');
is($j && $j->{post_id} && row($j->{post_id})->{post_info}{title},
   'a?b', '... is kept');

my $before = $psql->("SELECT count(*) FROM tiktok.posts");
for my $case (['surprise', '?privacy_level=SELF_ONLY&surprise=1'],
              ['titel', '?privacy_level=SELF_ONLY&titel=x'],
              ['title', '?privacy_level=SELF_ONLY&title=a&title=b'],
              ['title', '?privacy_level=SELF_ONLY&title=a%00b'],
              ['title', '?privacy_level=SELF_ONLY&title=%zz'],
              ['privacy_level', '?privacy%5Flevel=SELF_ONLY&privacy_level=x']) {
    ($st, $h, $body, $j) = post_raw(user => 'hal', body => $video,
        type => 'video/mp4', query => $case->[1]);
    is("${\($st // 'none')} " . ($j->{error}{field} // ''), "400 $case->[0]",
       "upload query $case->[1]: 400 $case->[0]");
}
is($psql->("SELECT count(*) FROM tiktok.posts"), $before,
   '... none of them stored');

# ---- a burst of posts for one user with a cold creator-info cache ----

TikTokTest::connect_account('sam');
$sb->fault({ endpoint => $creator_path, type => 'delay', ms => 1500,
             count => 1000 });
my $creator = calls($creator_path);
my $n = 60;
my @socks;
for (1 .. $n) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port) or die "$!";
    push @socks, $s;
}
for my $s (@socks) {
    print $s "POST /api/tiktok/post HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nX-User-ID: sam\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($json) . "\r\n\r\n$json";
}
my %status;
my $sel = IO::Select->new(@socks);
my %buf;
my $deadline = time + 60;
while ($sel->count && time < $deadline) {
    for my $s ($sel->can_read(1)) {
        my $got = sysread($s, my $b, 65536);
        if ($got) { $buf{$s} .= $b; next }
        $sel->remove($s);
        my ($code) = ($buf{$s} // '') =~ m{^HTTP/1\.1 (\d+)};
        $status{$code // 'none'}++;
        close $s;
    }
}
$sb->clear_faults;
is_deeply(\%status, { 202 => $n }, "$n concurrent posts for one user: 202");
is(calls($creator_path) - $creator, 1,
   '... after one creator-info call (single flight, across workers)');

# the failure the first call meets is the answer of all that waited for it
$sb->add_user({ open_id => 'capped-burst', display_name => 'Capped',
                can_post => 'spam_risk_too_many_posts' });
TikTokTest::connect_account('cap', open_id => 'capped-burst');
$sb->fault({ endpoint => $creator_path, type => 'delay', ms => 1500,
             count => 1000 });
$creator = calls($creator_path);
%status = ();
my %codes;
@socks = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ngx->port) or die "$!" }
         1 .. 30;
for my $s (@socks) {
    print $s "POST /api/tiktok/post HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nX-User-ID: cap\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($json) . "\r\n\r\n$json";
}
$sel = IO::Select->new(@socks);
%buf = ();
$deadline = time + 60;
while ($sel->count && time < $deadline) {
    for my $s ($sel->can_read(1)) {
        my $got = sysread($s, my $b, 65536);
        if ($got) { $buf{$s} .= $b; next }
        $sel->remove($s);
        my ($code) = ($buf{$s} // '') =~ m{^HTTP/1\.1 (\d+)};
        my ($err) = ($buf{$s} // '') =~ /"code":"(\w+)"/;
        $status{$code // 'none'}++;
        $codes{$err // 'none'}++;
        close $s;
    }
}
$sb->clear_faults;
is_deeply([\%status, \%codes], [{ 403 => 30 }, { post_failed => 30 }],
          '30 concurrent posts of a creator who cannot post: all 403');
is(calls($creator_path) - $creator, 1, '... from one creator-info call');

# ---- a malformed creator-info answer is TikTok's fault: 502 ----

TikTokTest::connect_account('mal');

for my $options ('"SELF_ONLY"', '[]', '["SELF_ONLY",1]') {
    my $stub = TikTokTest::Nginx->new(name => 'stub',
        api_location => <<"CONF",
    location /_tiktok_api/ {
        internal;
        default_type application/json;
        return 200 '{"data":{"privacy_level_options":$options,"creator_username":"x"},"error":{"code":"ok","message":"","log_id":"l1"}}';
    }
CONF
        server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF
    ($st, $h, $body, $j) = raw($stub, "POST /api/tiktok/post HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\nX-User-ID: mal\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($json) . "\r\n\r\n", $json);
    is($st, 502, "creator info whose privacy_level_options is $options, "
                 . 'not a list of strings: 502');
    isnt($j && $j->{error}{field}, 'privacy_level',
         '... not blamed on the user');
    is($psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = 'mal'"), 0,
       '... nothing stored');
    $stub->stop;
}

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]|signal \d+/,
       'no alert, no crashed worker');
$ngx->stop;

done_testing();
