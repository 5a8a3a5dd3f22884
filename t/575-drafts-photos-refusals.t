# POST /post for drafts (DESIGN 8.2) and photo posts (8.3): every refusal
# names its field and comes before TikTok is asked anything: no row, no
# init of any kind.  What is accepted, and published or sent to the inbox,
# is in t/570 and t/580.

use TikTokTest;
use Test::Nginx::Socket 'no_plan';
use JSON::PP ();

my $sb = $TikTokTest::Sandbox;

sub calls { $sb->calls->{$_[0]} // 0 }

# $n image URLs under the verified prefix
sub urls { [ map { "https://media.example.com/p/$_.jpg" } 1 .. $_[0] ] }

# a valid post with some fields changed (undef: left out), as JSON
sub json_with {
    my ($base, %change) = @_;
    my %body = (%$base, %change);
    delete $body{$_} for grep { !defined $body{$_} } keys %body;
    return JSON::PP->new->utf8->canonical->encode(\%body);
}

sub photo {
    json_with({ media_type => 'PHOTO', photo_urls => urls(2),
                privacy_level => 'SELF_ONLY' }, @_);
}

sub video {
    json_with({ video_url => 'https://media.example.com/v/1.mp4',
                privacy_level => 'SELF_ONLY' }, @_);
}

TikTokTest::connect_account('paula',
    scope => 'user.info.basic,video.list,video.publish,video.upload');

TikTokTest::defaults(
    config => $ApiLocation . <<'CONF',
    location /api/tiktok/ {
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
CONF
    more_headers => "X-User-ID: paula\nContent-Type: application/json\n",
    no_error_log => [qr/\[(?:alert|crit|emerg)\]/]);

no_shuffle();
run_tests();

is(TikTokTest::psql("SELECT count(*) FROM tiktok.posts"), '0',
   'none of those stored a post');
is(calls('/v2/post/publish/content/init/')
   + calls('/v2/post/publish/inbox/video/init/')
   + calls('/v2/post/publish/video/init/'), 0,
   '... or sent TikTok an init of any kind');

__DATA__

=== TEST 1: refused: photos: no photo_urls at all (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => undef)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 2: refused: photos: 0 photo_urls (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => [])
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 3: refused: photos: 36 photo_urls (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => ::urls(36))
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 4: refused: photos: a URL outside the prefixes (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => [ @{ ::urls(2) }, 'https://evil.example.com/p/3.jpg' ])
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 5: refused: photos: an http URL (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => [ 'http://media.example.com/p/1.jpg' ])
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 6: refused: photos: a URL on an IP address (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => [ 'https://203.0.113.7/p/1.jpg' ])
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 7: refused: photos: a URL that is not a string (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => [ 7 ])
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 8: refused: photos: photo_urls not a list (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => 'https://media.example.com/p/1.jpg')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 9: refused: photos: the cover index one past the last photo (400 photo_cover_index)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_urls => ::urls(3), photo_cover_index => 3)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_cover_index","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 10: refused: photos: a negative cover index (400 photo_cover_index)
--- request eval
"POST /api/tiktok/post\n" . ::photo(photo_cover_index => -1)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_cover_index","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 11: refused: photos: a title of 91 characters (400 title)
--- request eval
"POST /api/tiktok/post\n" . ::photo(title => 'x' x 91)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"title","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 12: refused: photos: a title of 46 emoji (92 UTF-16 code units) (400 title)
--- request eval
"POST /api/tiktok/post\n" . ::photo(title => "\x{1F600}" x 46)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"title","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 13: refused: photos: a description of 4001 characters (400 description)
--- request eval
"POST /api/tiktok/post\n" . ::photo(description => 'd' x 4001)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"description","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 14: refused: photos: no privacy_level (400 privacy_level)
--- request eval
"POST /api/tiktok/post\n" . ::photo(privacy_level => undef)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"privacy_level","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 15: refused: photos: a video_url (400 video_url)
--- request eval
"POST /api/tiktok/post\n" . ::photo(video_url => 'https://media.example.com/v/1.mp4')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_url","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 16: refused: photos: disable_duet (400 disable_duet)
--- request eval
"POST /api/tiktok/post\n" . ::photo(disable_duet => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"disable_duet","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 17: refused: photos: disable_stitch (400 disable_stitch)
--- request eval
"POST /api/tiktok/post\n" . ::photo(disable_stitch => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"disable_stitch","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 18: refused: photos: is_aigc (400 is_aigc)
--- request eval
"POST /api/tiktok/post\n" . ::photo(is_aigc => JSON::PP::false)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"is_aigc","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 19: refused: photos: video_cover_timestamp_ms (400 video_cover_timestamp_ms)
--- request eval
"POST /api/tiktok/post\n" . ::photo(video_cover_timestamp_ms => 1000)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"video_cover_timestamp_ms","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 20: refused: photos: auto_add_music not a boolean (400 auto_add_music)
--- request eval
"POST /api/tiktok/post\n" . ::photo(auto_add_music => 'yes')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"auto_add_music","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 21: refused: a video with photo_urls (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::video(photo_urls => ::urls(1))
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 22: refused: a video with a description (400 description)
--- request eval
"POST /api/tiktok/post\n" . ::video(description => 'words')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"description","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 23: refused: a video with auto_add_music (400 auto_add_music)
--- request eval
"POST /api/tiktok/post\n" . ::video(auto_add_music => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"auto_add_music","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 24: refused: a video with photo_cover_index (400 photo_cover_index)
--- request eval
"POST /api/tiktok/post\n" . ::video(photo_cover_index => 0)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_cover_index","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 25: refused: an unknown media_type (400 media_type)
--- request eval
"POST /api/tiktok/post\n" . ::video(media_type => 'CAROUSEL')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"media_type","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 26: refused: an unknown mode (400 mode)
--- request eval
"POST /api/tiktok/post\n" . ::video(mode => 'later')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"mode","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 27: refused: a draft with a title (400 title)
--- request eval
"POST /api/tiktok/post\n" . ::video(mode => 'draft', privacy_level => undef, title => 'mine')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"title","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 28: refused: a draft with a privacy_level (400 privacy_level)
--- request eval
"POST /api/tiktok/post\n" . ::video(mode => 'draft')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"privacy_level","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 29: refused: a draft with disable_comment (400 disable_comment)
--- request eval
"POST /api/tiktok/post\n" . ::video(mode => 'draft', privacy_level => undef, disable_comment => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"disable_comment","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 30: refused: a draft with brand_content_toggle (400 brand_content_toggle)
--- request eval
"POST /api/tiktok/post\n" . ::video(mode => 'draft', privacy_level => undef, brand_content_toggle => JSON::PP::false)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"brand_content_toggle","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 31: refused: a draft with is_aigc (400 is_aigc)
--- request eval
"POST /api/tiktok/post\n" . ::video(mode => 'draft', privacy_level => undef, is_aigc => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"is_aigc","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 32: refused: a photo draft with a description (400 description)
--- request eval
"POST /api/tiktok/post\n" . ::photo(mode => 'draft', privacy_level => undef, description => 'words')
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"description","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 33: refused: a photo draft with auto_add_music (400 auto_add_music)
--- request eval
"POST /api/tiktok/post\n" . ::photo(mode => 'draft', privacy_level => undef, auto_add_music => JSON::PP::true)
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"auto_add_music","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 34: refused: a photo draft with 36 photo_urls (400 photo_urls)
--- request eval
"POST /api/tiktok/post\n" . ::photo(mode => 'draft', privacy_level => undef, photo_urls => ::urls(36))
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 35: refused: an upload draft with a title (400 title)
--- more_headers
X-User-ID: paula
Content-Type: video/mp4
--- request
POST /api/tiktok/post?mode=draft&title=mine
not a video
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"title","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 36: refused: an upload draft with a privacy_level (400 privacy_level)
--- more_headers
X-User-ID: paula
Content-Type: video/mp4
--- request
POST /api/tiktok/post?mode=draft&privacy_level=SELF_ONLY
not a video
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"privacy_level","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 37: refused: an upload as PHOTO (400 media_type)
--- more_headers
X-User-ID: paula
Content-Type: video/mp4
--- request
POST /api/tiktok/post?media_type=PHOTO&privacy_level=SELF_ONLY
not a video
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"media_type","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$


=== TEST 38: refused: an upload with photo_urls (400 photo_urls)
--- more_headers
X-User-ID: paula
Content-Type: video/mp4
--- request
POST /api/tiktok/post?privacy_level=SELF_ONLY&photo_urls=x
not a video
--- error_code: 400
--- response_body_like chomp
^\{"error":\{"code":"[a-z_]+","field":"photo_urls","message":"(?:[^"\\]|\\.)+","request_id":"[0-9a-f]{32}"\}\}$

