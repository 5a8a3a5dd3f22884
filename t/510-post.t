# POST /post: creator info (cached), the row with its 202, the uploads'
# checks and what they leave in the spool.  The refusals of JSON posts,
# one request each, are blocks in t/511.

use strict;
use warnings;

use TikTokTest;
use TikTokMedia;
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use POSIX qw(strftime);

my $sb = $TikTokTest::Sandbox;
my $psql = \&TikTokTest::psql;

my $ngx = TikTokTest::Nginx->new(name => 'post', workers => 2,
    server => <<'CONF')->start;
        location /api/tiktok/ {
            tiktok_user_id $http_x_user_id;
            tiktok_api;
        }
CONF

sub post {
    my ($user, $body, %o) = @_;
    my $r = $ngx->request(POST => '/api/tiktok/post' . ($o{query} // ''),
        headers => { 'X-User-ID' => $user,
                     'Content-Type' => $o{type} // 'application/json' },
        body => ref $body ? encode_json($body) : $body);
    $r->{json} = eval { decode_json($r->{content}) };
    return $r;
}

sub rows { $psql->("SELECT count(*) FROM tiktok.posts WHERE user_id = '$_[0]'") }
sub calls { $sb->calls->{$_[0]} // 0 }

my $url = 'https://media.example.com/v/1.mp4';
TikTokTest::connect_account('paul');

# a post from a URL
my $creator = calls('/v2/post/publish/creator_info/query/');
my $r = post(paul => { video_url => $url, title => "Hello \x{1F44B}",
                       privacy_level => 'SELF_ONLY' });
is($r->{status}, 202, 'a URL post: 202');
like($r->{json}{post_id}, qr/^[0-9a-f-]{36}$/, '... with a post id');
is($r->{json}{status}, 'queued', '... queued');
is(calls('/v2/post/publish/creator_info/query/'), $creator + 1,
   '... after asking TikTok for the creator info');

my $row = decode_json($psql->("SELECT row_to_json(p) FROM tiktok.posts p"
                              . " WHERE id = '$r->{json}{post_id}'"));
is($row->{source}, 'PULL_FROM_URL', 'stored: PULL_FROM_URL');
is($row->{video_url}, $url, '... the URL');
is_deeply($row->{post_info}, { privacy_level => 'SELF_ONLY',
    title => "Hello \x{1F44B}", disable_duet => JSON::PP::true,
    disable_stitch => JSON::PP::true, disable_comment => JSON::PP::true,
    brand_content_toggle => JSON::PP::false,
    brand_organic_toggle => JSON::PP::false, is_aigc => JSON::PP::false },
    '... post_info as TikTok takes it: interactions off unless asked');

$r = post(paul => { video_url => $url, privacy_level => 'PUBLIC_TO_EVERYONE',
                    disable_comment => JSON::PP::false,
                    video_cover_timestamp_ms => 1500, is_aigc => JSON::PP::true });
is($r->{status}, 202, 'another post');
is(calls('/v2/post/publish/creator_info/query/'), $creator + 1,
   '... creator info from the cache');
$row = decode_json($psql->("SELECT post_info FROM tiktok.posts"
                           . " WHERE id = '$r->{json}{post_id}'"));
is($row->{disable_comment}, JSON::PP::false, '... comments on when asked');
is($row->{video_cover_timestamp_ms}, 1500, '... the cover timestamp');
is($row->{is_aigc}, JSON::PP::true, '... the AIGC label');

my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600));
$r = post(paul => { video_url => $url, privacy_level => 'SELF_ONLY',
                    schedule_at => $at });
is($r->{status}, 202, 'a scheduled post');
is($r->{json}{status}, 'scheduled', '... scheduled');
is($psql->("SELECT to_char(schedule_at AT TIME ZONE 'UTC',"
           . " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM tiktok.posts"
           . " WHERE id = '$r->{json}{post_id}'"), $at, '... for that time');

# every refusal of a JSON post names its field: blocks in t/511

# a random-bytes upload is refused before TikTok, leaving no file
# (the spool holds only the files of accepted posts)
$r = post(paul => join('', map { chr(int rand 256) } 1 .. 50000),
          type => 'video/mp4', query => '?privacy_level=SELF_ONLY');
is("$r->{status} " . ($r->{json}{error}{field} // ''), '400 video',
   'random bytes as video/mp4: refused');
opendir my $d, $ngx->dir . '/spool' or die $!;
is(scalar(grep { !/^\./ } readdir $d), 0, '... and nothing left in the spool');
closedir $d;
my $mkv = "\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81"
        . "\x04\x42\xf3\x81\x08\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02";
$r = post(paul => $mkv . ("\0" x 100), type => 'video/webm',
          query => '?privacy_level=SELF_ONLY');
like($r->{json}{error}{message}, qr/Matroska/, 'MKV: refused, saying why');
$r = post(paul => '', type => 'video/mp4', query => '?privacy_level=SELF_ONLY');
is("$r->{status} " . ($r->{json}{error}{field} // ''), '400 video',
   'an empty upload: refused');
$r = post(paul => 'x', type => 'video/webm',
          query => "?privacy_level=SELF_ONLY&video_url=$url");
is("$r->{status} " . ($r->{json}{error}{field} // ''), '400 video_url',
   'an upload with a video_url: refused');
$r = post(paul => 'x', type => 'video/mp4',
          query => '?privacy_level=SELF_ONLY&title=%FF%FE');
is("$r->{status} " . ($r->{json}{error}{field} // ''), '400 title',
   'a title that is not UTF-8: refused');

# uploads: recognised from their bytes, spooled, stored
my $video = TikTokMedia::mp4(seconds => 12, mdat => 'v' x 300000);
$r = post(paul => $video, type => 'video/mp4',
          query => '?privacy_level=SELF_ONLY&title=My%20clip%20%F0%9F%8E%AC'
                   . '&disable_duet=false');
is($r->{status}, 202, 'an MP4 upload: 202');
is($r->{json}{status}, 'queued', '... queued');
$row = decode_json($psql->("SELECT row_to_json(p) FROM tiktok.posts p"
                           . " WHERE id = '$r->{json}{post_id}'"));
is($row->{source}, 'FILE_UPLOAD', 'stored: FILE_UPLOAD');
is($row->{video_size}, length $video, '... its size');
is($row->{content_type}, 'video/mp4', '... its type');
is($row->{post_info}{title}, "My clip \x{1F3AC}", '... the title');
is($row->{post_info}{disable_duet}, JSON::PP::false, '... the options');
like($row->{spool_path}, qr{^\Q@{[$ngx->dir]}\E/spool/[0-9a-f]{32}\.mp4$},
     '... a spool file under tiktok_upload_spool');
open my $sf, '<:raw', $row->{spool_path} or die "$row->{spool_path}: $!";
my $spooled = do { local $/; <$sf> };
close $sf;
is(sha256_hex($spooled), sha256_hex($video), '... holding every byte');

$r = post(paul => TikTokMedia::mp4(seconds => 5, brand => 'qt  '),
          type => 'video/webm', query => '?privacy_level=SELF_ONLY');
is($r->{status}, 202, 'a MOV sent as video/webm');
is($psql->("SELECT content_type FROM tiktok.posts"
           . " WHERE id = '$r->{json}{post_id}'"), 'video/quicktime',
   '... is stored as what its bytes say');

my $spool_files = sub {
    opendir my $dh, $ngx->dir . '/spool' or die $!;
    my $n = grep { !/^\./ } readdir $dh;
    closedir $dh;
    return $n;
};
my $files = $spool_files->();
$r = post(paul => TikTokMedia::mp4(seconds => 601), type => 'video/mp4',
          query => '?privacy_level=SELF_ONLY');
is("$r->{status} " . ($r->{json}{error}{field} // ''), '400 video',
   "longer than the creator's 600 s: refused");
like($r->{json}{error}{message}, qr/600 seconds/, '... saying the limit');
is($spool_files->(), $files, '... leaving no file behind');

$r = post(paul => TikTokMedia::mp4(seconds => 5), type => 'video/mp4',
          query => '?privacy_level=PUBLIC_TO_EVERYONE&brand_content_toggle=1'
                   . '&schedule_at=2020-01-01T00:00:00Z');
is("$r->{status} " . ($r->{json}{error}{field} // ''), '400 schedule_at',
   'an upload scheduled in the past: refused');
is($spool_files->(), $files, '... leaving no file behind');

# the creator cannot post now: TikTok says so in creator info, with 200
$sb->add_user({ open_id => 'capped-creator', display_name => 'Capped',
                can_post => 'spam_risk_too_many_posts' });
TikTokTest::connect_account('cara', open_id => 'capped-creator');
$r = post(cara => { video_url => $url, privacy_level => 'SELF_ONLY' });
is($r->{status}, 403, "a creator who can't post now: 403");
is($r->{json}{error}{code}, 'post_failed', '... post_failed');
is($r->{json}{error}{message},
   'Posting failed. Check permissions or try again.', '... the message');
is(rows('cara'), '0', '... nothing stored');
like($psql->("SELECT tiktok_code FROM tiktok.api_errors"
             . " WHERE user_id = 'cara'"), qr/spam_risk_too_many_posts/,
     '... and the reason recorded');

# interactions the creator disabled cannot be turned on
$sb->add_user({ open_id => 'quiet-creator', display_name => 'Quiet',
                comment_disabled => JSON::PP::true,
                duet_disabled => JSON::PP::true });
TikTokTest::connect_account('quinn', open_id => 'quiet-creator');
$r = post(quinn => { video_url => $url, privacy_level => 'SELF_ONLY',
                     disable_comment => JSON::PP::false,
                     disable_duet => JSON::PP::false,
                     disable_stitch => JSON::PP::false });
is($r->{status}, 202, 'asking for interactions the creator disabled');
$row = decode_json($psql->("SELECT post_info FROM tiktok.posts"
                           . " WHERE id = '$r->{json}{post_id}'"));
is_deeply([ @$row{qw(disable_comment disable_duet disable_stitch)} ],
          [ JSON::PP::true, JSON::PP::true, JSON::PP::false ],
          '... stay off; the one allowed is on');

# video.publish not granted; not connected
TikTokTest::connect_account('vic', scope => 'user.info.basic,video.list');
$r = post(vic => { video_url => $url, privacy_level => 'SELF_ONLY' });
is("$r->{status} $r->{json}{error}{code}", '403 scope_missing',
   'without video.publish: 403 scope_missing');
$r = post(nobody => { video_url => $url, privacy_level => 'SELF_ONLY' });
is("$r->{status} $r->{json}{error}{code}", '401 not_connected',
   'not connected: 401');

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
$ngx->stop;

done_testing();
