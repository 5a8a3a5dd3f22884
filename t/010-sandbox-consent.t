# The sandbox's demo mode (--demo): TikTok's authorize page as a person
# meets it, a consent page whose Authorize and Cancel buttons send the
# browser back to the redirect URI, and the demo creator with videos whose
# covers are real images.  Without --demo there is no consent page.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use HTML::Entities qw(decode_entities);
use Test::More;

use TikTokSandbox;

my $dir = tempdir('sbx-consent-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $uri = 'https://localhost:8080/api/tiktok/callback';
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_demo',
                              client_secret => 'cs_demo',
                              redirect_uris => [$uri], args => ['--demo']);
END { $sb->stop if $sb }

my $verifier = 'v' x 43;
my $challenge = sha256_hex($verifier);      # TikTok's hex form

# the consent page's form: the authorize request it carries back
sub consent_form {
    my ($page) = @_;
    my ($request) = $page =~ /name="request" value="([^"]*)"/;
    return decode_entities($request // '');
}

sub decide {
    my ($request, $decision) = @_;
    return $sb->api(POST => '/v2/auth/authorize/consent/',
                    form => { request => $request, decision => $decision });
}

sub query_of {
    my ($location) = @_;
    my %q;
    for my $pair (split /&/, ($location =~ /\?(.*)\z/)[0] // '') {
        my ($k, $v) = map { TikTokSandbox::_unesc($_) } split /=/, $pair, 2;
        $q{$k} = $v;
    }
    return \%q;
}

subtest 'authorize shows a consent page, nothing decided yet' => sub {
    my $r = $sb->authorize(state => 'st-1', code_challenge => $challenge,
                           code_challenge_method => 'S256');
    is $r->{status}, 200, '200, no redirect';
    ok !$r->{location}, '... no Location';
    like $r->{content}, qr{id="consent-user">Juniper Bakes<}, 'the creator';
    like $r->{content}, qr{<code>video\.publish</code>}, 'the scopes asked';
    like $r->{content}, qr{id="authorize"}, 'an Authorize button';
    like $r->{content}, qr{value="cancel"}, 'a Cancel button';
    like consent_form($r->{content}), qr/(^|&)state=st-1(&|$)/,
        'the request travels in the form';
};

subtest 'Authorize: back to the redirect URI with a code that works' => sub {
    my $r = $sb->authorize(state => 'st-2', code_challenge => $challenge,
                           code_challenge_method => 'S256');
    my $back = decide(consent_form($r->{content}), 'authorize');
    is $back->{status}, 302, 'a redirect';
    like $back->{headers}{location}, qr/^\Q$uri\E\?/, 'to the redirect URI';
    my $q = query_of($back->{headers}{location});
    is $q->{state}, 'st-2', 'the state';
    is $q->{scopes}, 'user.info.basic,video.list,video.publish', 'scopes';
    ok length $q->{code}, 'a code';

    my $t = $sb->token(grant_type => 'authorization_code', code => $q->{code},
                       redirect_uri => $uri, code_verifier => $verifier);
    ok length $t->{json}{access_token},
        'the code and its PKCE challenge give a token';
};

subtest 'Cancel: access_denied with the state' => sub {
    my $r = $sb->authorize(state => 'st-3');
    my $back = decide(consent_form($r->{content}), 'cancel');
    is $back->{status}, 302, 'a redirect';
    my $q = query_of($back->{headers}{location});
    is $q->{error}, 'access_denied', 'access_denied';
    is $q->{state}, 'st-3', 'the state';
    ok !exists $q->{code}, 'no code';
};

subtest 'the form is checked again' => sub {
    my $r = $sb->authorize(state => 'st-4');
    my $request = consent_form($r->{content});
    (my $evil = $request)
        =~ s/redirect_uri=[^&]*/redirect_uri=https%3A%2F%2Fevil.example.com/;
    my $back = decide($evil, 'authorize');
    is $back->{status}, 400, 'another redirect URI: 400';
    like $back->{content}, qr/not registered/, '... the error page says why';
    is decide($request, 'maybe')->{status}, 400, 'an unknown decision: 400';
};

subtest 'the demo creator: videos with covers that are images' => sub {
    my $u = $sb->user($sb->default_open_id);
    is $u->{display_name}, 'Juniper Bakes', 'the creator';
    ok $u->{duet_disabled}, 'duets turned off';
    is scalar @{ $u->{videos} }, 6, 'six videos';

    my $tok = $sb->mint_tokens({ open_id => $sb->default_open_id,
                                 scope => 'video.list' })->{access_token};
    my $list = $sb->api(POST => '/v2/video/list/',
                        query => { fields => 'id,title,cover_image_url' },
                        token => $tok, json => {});
    my $v = $list->{json}{data}{videos}[0];
    my $img = $sb->api(GET => $v->{cover_image_url});
    is $img->{status}, 200, 'the cover: 200';
    is $img->{headers}{'content-type'}, 'image/png', '... a PNG';
    like $img->{content}, qr/^\x89PNG/, '... really';
};

my $plain = TikTokSandbox->start(
    dir => tempdir('sbx-consent-plain-XXXXXX', TMPDIR => 1, CLEANUP => 1),
    redirect_uris => [$uri]);

subtest 'without --demo: no consent page' => sub {
    my $r = $plain->authorize(state => 'st-5');
    is $r->{status}, 302, 'authorize decides at once';
    my $c = $plain->api(POST => '/v2/auth/authorize/consent/',
                        form => { request => 'state=x',
                                  decision => 'authorize' });
    is $c->{status}, 400, 'the consent form is refused';
    is $plain->user($plain->default_open_id)->{display_name},
        'Sandbox Creator', 'the default user';
};

$plain->stop;

done_testing;
