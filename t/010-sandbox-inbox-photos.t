# The sandbox's upload to inbox (drafts, video.upload) and photo posts
# (the content init), as TIKTOK_API.md has them: source_info only for the
# inbox, SEND_TO_USER_INBOX as its end, 5 pending shares per creator and
# 24 h; photos 1 to 35 under a verified prefix, the cover among them,
# title <= 90 and description <= 4000 UTF-16 code units, no video-only
# fields, the scope of the post_mode, photo_pull_failed.

use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

use TikTokSandbox;

my $dir = tempdir('sbx-inbox-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_inbox',
                              client_secret => 'cs_inbox');
END { $sb->stop if $sb }

my $ME = $sb->default_open_id;
my $URL = 'https://media.example.com/v/1.mp4';

# inits are limited to 6 a minute per token: a fresh token for most checks
sub token {
    my ($scope, $open_id) = @_;
    return $sb->mint_tokens({ open_id => $open_id // $ME,
                              scope => $scope // 'video.publish,video.upload' })
              ->{access_token};
}

sub call {
    my ($path, $token, $body) = @_;
    return $sb->api(POST => "/v2/post/publish/$path/", token => $token,
                    json => $body);
}

sub photos { [ map { "https://media.example.com/p/$_.jpg" } 1 .. $_[0] ] }

sub photo_body {
    my (%o) = @_;
    my $body = {
        post_info => { title => 't', description => 'd',
                       privacy_level => 'SELF_ONLY',
                       disable_comment => JSON::PP::false,
                       auto_add_music => JSON::PP::true,
                       brand_content_toggle => JSON::PP::false,
                       brand_organic_toggle => JSON::PP::false,
                       %{ $o{post_info} // {} } },
        source_info => { source => 'PULL_FROM_URL', photo_cover_index => 0,
                         photo_images => photos(2),
                         %{ $o{source_info} // {} } },
        post_mode => $o{post_mode} // 'DIRECT_POST',
        media_type => 'PHOTO' };
    delete $body->{post_info}{$_} for @{ $o{without} // [] };
    return $body;
}

sub refused {
    my ($res, $status, $code, $name) = @_;
    subtest $name => sub {
        is $res->{status}, $status, "HTTP $status";
        is $res->{json}{error}{code}, $code, "error.code $code";
        ok !exists $res->{json}{data}{publish_id}, 'no publish_id';
    };
}

sub status_of {
    my ($token, $id) = @_;
    return call('status/fetch', $token, { publish_id => $id })->{json}{data};
}

# --- the inbox init ---

my $t = token();
my $res = call('inbox/video/init', $t,
               { source_info => { source => 'PULL_FROM_URL',
                                  video_url => $URL } });
is $res->{status}, 200, 'inbox init of a URL: 200';
my $id = $res->{json}{data}{publish_id};
like $id, qr/^v_inbox_url~/, '... an inbox publish_id';
status_of($t, $id) for 1 .. 2;
is status_of($t, $id)->{status}, 'SEND_TO_USER_INBOX',
   '... ends SEND_TO_USER_INBOX, not PUBLISH_COMPLETE';
is status_of(token('video.upload'), $id)->{status}, 'SEND_TO_USER_INBOX',
   '... and video.upload alone may fetch it';

refused(call('inbox/video/init', token(),
             { post_info => { privacy_level => 'SELF_ONLY' },
               source_info => { source => 'PULL_FROM_URL',
                                video_url => $URL } }),
        400, 'invalid_param', 'the inbox init takes no post_info');
refused(call('inbox/video/init', token('video.publish'),
             { source_info => { source => 'PULL_FROM_URL',
                                video_url => $URL } }),
        401, 'scope_not_authorized', 'the inbox needs video.upload');

$res = call('inbox/video/init', token(),
            { source_info => { source => 'FILE_UPLOAD', video_size => 1000,
                               chunk_size => 1000, total_chunk_count => 1 } });
like $res->{json}{data}{upload_url}, qr{/upload/\?upload_id=},
     'inbox init of an upload: an upload_url';

# 5 pending shares per creator: the URL one, the upload, three more
$sb->set_config({ rate_limits => {
    '/v2/post/publish/inbox/video/init/' => 0 } });
for (3 .. 5) {
    is call('inbox/video/init', $t, { source_info => {
            source => 'PULL_FROM_URL', video_url => $URL } })->{status},
       200, "pending share $_";
}
refused(call('inbox/video/init', $t, { source_info => {
            source => 'PULL_FROM_URL', video_url => $URL } }),
        403, 'spam_risk_too_many_pending_share', 'the sixth pending share');
refused(call('content/init', token(),
             photo_body(post_mode => 'MEDIA_UPLOAD')),
        403, 'spam_risk_too_many_pending_share',
        '... photos to the inbox count too');
$sb->add_user({ open_id => 'other-creator' });
is call('inbox/video/init', token(undef, 'other-creator'), { source_info => {
        source => 'PULL_FROM_URL', video_url => $URL } })->{status},
   200, '... per creator';
is call('content/init', token(), photo_body())->{status}, 200,
   '... and direct posts are not shares';

# --- the content init (photos) ---

$sb->reset;
$sb->set_config({ daily_post_cap => 1000, rate_limits => {
    '/v2/post/publish/content/init/' => 0 } });
$t = token();

$res = call('content/init', $t, photo_body(source_info => {
    photo_images => photos(35), photo_cover_index => 34 }));
is $res->{status}, 200, '35 photos, the last the cover: 200';
$id = $res->{json}{data}{publish_id};
like $id, qr/^p_pub_url~/, "... TikTok's photo publish_id";
status_of($t, $id) for 1 .. 2;
is status_of($t, $id)->{status}, 'PUBLISH_COMPLETE', '... then published';

$res = call('content/init', $t, photo_body(post_mode => 'MEDIA_UPLOAD',
                                           without => [ 'privacy_level' ]));
is $res->{status}, 200, 'MEDIA_UPLOAD without privacy_level: 200';
$id = $res->{json}{data}{publish_id};
status_of($t, $id) for 1 .. 2;
is status_of($t, $id)->{status}, 'SEND_TO_USER_INBOX', '... to the inbox';

my @bad = (
    [ 'no photos', source_info => { photo_images => [] } ],
    [ '36 photos', source_info => { photo_images => photos(36) } ],
    [ 'the cover index past the end',
      source_info => { photo_cover_index => 2 } ],
    [ 'a negative cover index', source_info => { photo_cover_index => -1 } ],
    [ 'a photo over http',
      source_info => { photo_images => [ 'http://media.example.com/p.jpg' ] } ],
    [ 'a title of 91', post_info => { title => 'x' x 91 } ],
    [ 'a title of 46 emoji', post_info => { title => "\x{1F600}" x 46 } ],
    [ 'a description of 4001', post_info => { description => 'd' x 4001 } ],
    [ 'disable_duet', post_info => { disable_duet => JSON::PP::true } ],
    [ 'is_aigc', post_info => { is_aigc => JSON::PP::false } ],
    [ 'no privacy_level for DIRECT_POST', without => [ 'privacy_level' ] ],
    [ 'a post_mode of PUBLISH', post_mode => 'PUBLISH' ],
);
for my $b (@bad) {
    my ($name, %o) = @$b;
    refused(call('content/init', $t, photo_body(%o)), 400, 'invalid_param',
            "refused: $name");
}

refused(call('content/init', $t, photo_body(source_info => {
            photo_images => [ 'https://elsewhere.example.com/p.jpg' ] })),
        200, 'url_ownership_unverified',
        'a photo outside the verified prefixes (HTTP 200, as for videos)');
refused(call('content/init', token('video.upload'), photo_body()),
        401, 'scope_not_authorized', 'DIRECT_POST needs video.publish');
refused(call('content/init', token('video.publish'),
             photo_body(post_mode => 'MEDIA_UPLOAD')),
        401, 'scope_not_authorized', 'MEDIA_UPLOAD needs video.upload');

# photo_pull_failed, scripted
$sb->script_outcome({ fail_reason => 'photo_pull_failed',
                      source => 'PULL_FROM_URL' });
$id = call('content/init', $t, photo_body())->{json}{data}{publish_id};
status_of($t, $id) for 1 .. 2;
my $st = status_of($t, $id);
is $st->{status}, 'FAILED', 'a scripted photo_pull_failed: FAILED';
is $st->{fail_reason}, 'photo_pull_failed', '... with that fail_reason';

done_testing();
