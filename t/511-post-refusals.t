# POST /post: every refusal names its field, and none of them stores a
# post, asks TikTok more than the creator info, or publishes anything.  The
# posts that are accepted, and what they store, are in t/510.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use JSON::PP ();
use POSIX qw(strftime);

my $sb = $TikTokTest::Sandbox;
my $creator_path = '/v2/post/publish/creator_info/query/';

sub calls { $sb->calls->{$_[0]} // 0 }

# a valid URL post with some fields changed (undef: left out), as JSON
sub body {
    my (%change) = @_;
    my %body = (video_url => 'https://media.example.com/v/1.mp4',
                privacy_level => 'SELF_ONLY', %change);
    delete $body{$_} for grep { !defined $body{$_} } keys %body;
    return JSON::PP::encode_json(\%body);
}

sub days_ahead { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $_[0] * 86400)) }

TikTokTest::connect_account('paul');
my $creator = calls($creator_path);

TikTokTest::defaults(
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF
    more_headers => "X-User-ID: paul\nContent-Type: application/json\n",
    no_error_log => [qr/\[(?:alert|crit|emerg)\]/]);

no_shuffle();
run_tests();

is(TikTokTest::psql("SELECT count(*) FROM tiktok.posts"), '0',
   'none of those stored a post');
cmp_ok(calls($creator_path), '<=', $creator + 1,
       '... or asked TikTok more than the cached creator info');
is(calls('/v2/post/publish/video/init/'), 0, '... and nothing was published');

__DATA__

=== TEST 1: refused: a title of 151 characters (400 title)
--- request eval
"POST /api/tiktok/post\n" . ::body(title => 'x' x 151)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"title","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 2: refused: a title of 151 emoji (400 title)
--- request eval
"POST /api/tiktok/post\n" . ::body(title => "\x{1F600}" x 151)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"title","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 3: refused: no privacy_level (400 privacy_level)
--- request eval
"POST /api/tiktok/post\n" . ::body(privacy_level => undef)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"privacy_level","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 4: refused: an empty privacy_level (400 privacy_level)
--- request eval
"POST /api/tiktok/post\n" . ::body(privacy_level => '')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"privacy_level","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 5: refused: branded content kept private (400 brand_content_toggle)
--- request eval
"POST /api/tiktok/post\n" . ::body(brand_content_toggle => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"brand_content_toggle","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 6: refused: a video_url over http (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_url => 'http://media.example.com/v/1.mp4')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 7: refused: a video_url on an IPv4 address (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_url => 'https://203.0.113.7/v/1.mp4')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 8: refused: a video_url on an IPv6 address (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_url => 'https://[2001:db8::1]/v/1.mp4')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 9: refused: a video_url outside the prefixes (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_url => 'https://evil.example.com/v/1.mp4')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 10: refused: a video_url with user info (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_url => 'https://media.example.com@evil.example/x')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 11: refused: no video_url (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_url => undef)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 12: refused: schedule_at not RFC 3339 (400 schedule_at)
--- request eval
"POST /api/tiktok/post\n" . ::body(schedule_at => 'tomorrow')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"schedule_at","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 13: refused: schedule_at in the past (400 schedule_at)
--- request eval
"POST /api/tiktok/post\n" . ::body(schedule_at => '2020-01-01T00:00:00Z')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"schedule_at","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 14: refused: schedule_at 31 days ahead (400 schedule_at)
--- request eval
"POST /api/tiktok/post\n" . ::body(schedule_at => ::days_ahead(31))
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"schedule_at","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 15: refused: schedule_at on February 30 (400 schedule_at)
--- request eval
"POST /api/tiktok/post\n" . ::body(schedule_at => '2026-02-30T10:00:00Z')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"schedule_at","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 16: refused: disable_duet not a boolean (400 disable_duet)
--- request eval
"POST /api/tiktok/post\n" . ::body(disable_duet => 'yes')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"disable_duet","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 17: refused: a negative cover timestamp (400 video_cover_timestamp_ms)
--- request eval
"POST /api/tiktok/post\n" . ::body(video_cover_timestamp_ms => -1)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_cover_timestamp_ms","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 18: refused: an unknown field (400 surprise)
--- request eval
"POST /api/tiktok/post\n" . ::body(surprise => 1)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"surprise","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 19: refused: a body of 'not json' (400 body)
--- request
POST /api/tiktok/post
not json
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"body","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 20: refused: a body of '[1,2]' (400 body)
--- request
POST /api/tiktok/post
[1,2]
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"body","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 21: refused: a body of '{"video_url":' (400 body)
--- request
POST /api/tiktok/post
{"video_url":
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"body","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 22: an unknown Content-Type: 415 naming Content-Type
--- request
POST /api/tiktok/post
hello
--- more_headers
X-User-ID: paul
Content-Type: text/plain
--- error_code: 415
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"Content-Type","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$



=== TEST 23: a privacy level outside the creator's options: 400 listing them
--- request eval
"POST /api/tiktok/post\n" . ::body(privacy_level => 'FOLLOWER_OF_CREATOR')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"privacy_level","message":"[^"]*PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, SELF_ONLY[^"]*","request_id":"[0-9a-f]{32}"\}\}$
