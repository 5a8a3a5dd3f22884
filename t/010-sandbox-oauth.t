# The sandbox's Login Kit: authorize validation and redirect, hex PKCE,
# single-use codes, the flat token response, rotating refresh tokens,
# OAuth errors with HTTP 200 (and 400 when switched), revoke.

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);

use TikTokSandbox;

my $dir = tempdir('sbx-oauth-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @uris = ('https://app.example.com/api/tiktok/callback',
            'https://other.example.com/cb');
my $sb = TikTokSandbox->start(dir => $dir, client_key => 'ck_oauth',
                              client_secret => 'cs_oauth',
                              redirect_uris => \@uris);
END { $sb->stop if $sb }

my $uri = $uris[0];

sub exchange {
    my ($code, %more) = @_;
    return $sb->token(grant_type => 'authorization_code', code => $code,
                      redirect_uri => $uri, %more);
}

sub oauth_error_is {
    my ($res, $error, $name) = @_;
    subtest $name => sub {
        is $res->{status}, 200, 'HTTP 200 (quirk)';
        is $res->{json}{error}, $error, "error $error";
        ok length $res->{json}{error_description}, 'error_description';
        like $res->{json}{log_id}, qr/^\d{14}/, 'log_id';
        ok !exists $res->{json}{data}, 'flat, no data wrapper';
        ok !exists $res->{json}{access_token}, 'no token';
    };
}

subtest 'authorize: invalid requests get an error page, no redirect' => sub {
    my $c = 'a' x 64;
    my @cases = (
        [{ client_key => 'nope' }, 'invalid_client', 'unknown client_key'],
        [{ client_key => undef }, 'invalid_client', 'missing client_key'],
        [{ response_type => 'token' }, 'unsupported_response_type',
         'response_type token'],
        [{ response_type => undef }, 'invalid_request', 'no response_type'],
        [{ redirect_uri => undef }, 'invalid_request', 'no redirect_uri'],
        [{ redirect_uri => 'https://evil.example.com/cb' }, 'invalid_request',
         'unregistered redirect_uri'],
        [{ redirect_uri => "$uri?x=1" }, 'invalid_request',
         'redirect_uri with a query'],
        [{ redirect_uri => "$uri#f" }, 'invalid_request',
         'redirect_uri with a fragment'],
        [{ redirect_uri => 'http://app.example.com/api/tiktok/callback' },
         'invalid_request', 'http redirect_uri'],
        [{ redirect_uri => 'https://app.example.com/' . ('x' x 500) },
         'invalid_request', 'redirect_uri of 512+ characters'],
        [{ scope => undef }, 'invalid_scope', 'no scope'],
        [{ scope => 'user.info.basic,video.delete' }, 'invalid_scope',
         'unknown scope'],
        [{ scope => 'user.info.basic video.list' }, 'invalid_scope',
         'space-separated scopes'],
        [{ state => undef }, 'invalid_request', 'no state'],
        [{ state => '' }, 'invalid_request', 'empty state'],
        [{ code_challenge => $c, code_challenge_method => 'plain' },
         'invalid_request', 'PKCE method plain'],
        [{ code_challenge => $c }, 'invalid_request', 'PKCE without method'],
        [{ code_challenge_method => 'S256' }, 'invalid_request',
         'PKCE method without challenge'],
        [{ code_challenge => 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
           code_challenge_method => 'S256' }, 'invalid_request',
         'base64url challenge (TikTok wants hex)'],
        [{ code_challenge => uc(sha256_hex('x')),
           code_challenge_method => 'S256' }, 'invalid_request',
         'uppercase hex challenge'],
    );
    for my $case (@cases) {
        my ($params, $error, $name) = @$case;
        my $r = $sb->authorize(%$params);
        is $r->{status}, 400, "$name: 400";
        ok !defined $r->{location}, "$name: no redirect";
        like $r->{content}, qr{id="error">\Q$error\E<}, "$name: $error";
    }
    my $calls = $sb->calls;
    is $calls->{'/v2/auth/authorize/'}, scalar @cases, 'all were counted';
};

subtest 'a registered redirect URI must itself be valid' => sub {
    my $bad = eval {
        TikTokSandbox->start(dir => "$dir/bad", client_key => 'k',
                             client_secret => 's',
                             redirect_uris => ['http://x.example.com/cb']);
    };
    ok !$bad, 'an http redirect URI is refused at start';
    like $@, qr/must be an absolute https URL/, '... saying why';
};

my ($code, $tokens);

subtest 'authorize: redirect with code, scopes and state' => sub {
    my $r = $sb->authorize(state => 'st-123', scope =>
                           'user.info.basic,video.list,video.publish');
    is $r->{status}, 302, 'HTTP 302';
    like $r->{location}, qr{^\Q$uri\E\?code=}, 'to the redirect URI';
    $code = $r->{params}{code};
    ok length($code) > 40, 'a code';
    like $code, qr/\*0!\d{4}$/, 'code carries * and ! like TikTok\'s';
    like $r->{location}, qr/%2A0%21/, '... percent-encoded in the redirect';
    is $r->{params}{scopes}, 'user.info.basic,video.list,video.publish',
        'scopes granted';
    is $r->{params}{state}, 'st-123', 'state echoed';

    my $r2 = $sb->authorize(redirect_uri => $uris[1], disable_auto_auth => 1);
    is $r2->{status}, 302, 'the second registered URI works too';
    like $r2->{location}, qr{^\Q$uris[1]\E\?}, '... and is used';
};

subtest 'token: flat response' => sub {
    my $res = exchange($code);
    is $res->{status}, 200, 'HTTP 200';
    like $res->{headers}{'content-type'}, qr{^application/json}, 'JSON';
    $tokens = $res->{json};
    is_deeply [sort keys %$tokens],
        [qw(access_token expires_in open_id refresh_expires_in refresh_token
            scope token_type)], 'exactly the documented fields, flat';
    is $tokens->{token_type}, 'Bearer', 'token_type';
    is $tokens->{expires_in}, 7200, 'expires_in 7200';
    is $tokens->{refresh_expires_in}, 15552000, 'refresh_expires_in 180 d';
    is $tokens->{scope}, 'user.info.basic,video.list,video.publish', 'scope';
    is $tokens->{open_id}, $sb->default_open_id, 'the default user';
    like $tokens->{access_token}, qr/^act\./, 'access token';
    like $tokens->{refresh_token}, qr/^rft\./, 'refresh token';

    my $info = $sb->api(GET => '/v2/user/info/', token =>
                        $tokens->{access_token}, query => { fields => 'open_id' });
    is $info->{json}{data}{user}{open_id}, $tokens->{open_id},
        'the access token works';
};

subtest 'codes are single use' => sub {
    oauth_error_is(exchange($code), 'invalid_grant', 'second use of a code');
};

subtest 'redirect_uri must equal the authorize one' => sub {
    my $c = $sb->authorize->{params}{code};
    oauth_error_is(exchange($c, redirect_uri => $uris[1]), 'invalid_grant',
                   'other registered redirect_uri');
    oauth_error_is(exchange($c), 'invalid_grant',
                   'the code was spent by the failed attempt');
    $c = $sb->authorize->{params}{code};
    oauth_error_is(exchange($c, redirect_uri => undef), 'invalid_request',
                   'redirect_uri missing');
};

subtest 'client authentication and request shape' => sub {
    my $c = $sb->authorize->{params}{code};
    oauth_error_is(exchange($c, client_secret => 'wrong'), 'invalid_client',
                   'wrong client_secret');
    oauth_error_is(exchange($c, client_key => 'other'), 'invalid_client',
                   'wrong client_key');
    is exchange($c)->{status}, 200, 'a code survives a client failure';

    my $res = $sb->api(POST => '/v2/oauth/token/', json => {
        client_key => 'ck_oauth', client_secret => 'cs_oauth',
        grant_type => 'authorization_code', code => 'x',
        redirect_uri => $uri });
    oauth_error_is($res, 'invalid_request', 'JSON body instead of a form');
    oauth_error_is($sb->token(code => 'x'), 'invalid_request',
                   'grant_type missing');
    oauth_error_is($sb->token(grant_type => 'password'),
                   'unsupported_grant_type', 'grant_type password');
    oauth_error_is($sb->token(grant_type => 'authorization_code',
                              redirect_uri => $uri),
                   'invalid_request', 'code missing');
    oauth_error_is(exchange('made-up-code'), 'invalid_grant', 'unknown code');
};

subtest 'PKCE: hex SHA-256 challenge' => sub {
    my $verifier = join '', map { ('A'..'Z', 'a'..'z', 0..9, '-', '.', '_',
                                   '~')[rand 66] } 1 .. 64;
    my $challenge = sha256_hex($verifier);
    my %p = (code_challenge => $challenge, code_challenge_method => 'S256');

    my $c = $sb->authorize(%p)->{params}{code};
    is exchange($c, code_verifier => $verifier)->{status}, 200,
        'right verifier: tokens';
    ok exchange($sb->authorize(%p)->{params}{code},
                code_verifier => $verifier)->{json}{access_token},
        '... again with a new code';

    oauth_error_is(exchange($sb->authorize(%p)->{params}{code},
                            code_verifier => $verifier . 'x'),
                   'invalid_grant', 'wrong verifier');
    oauth_error_is(exchange($sb->authorize(%p)->{params}{code}),
                   'invalid_request', 'missing verifier');
    my $short = substr($verifier, 0, 42);
    my %ps = (code_challenge => sha256_hex($short),
              code_challenge_method => 'S256');
    oauth_error_is(exchange($sb->authorize(%ps)->{params}{code},
                            code_verifier => $short),
                   'invalid_request', '42-character verifier');
    my $bad = ('a' x 42) . '!';
    oauth_error_is(exchange($sb->authorize(code_challenge => sha256_hex($bad),
                                           code_challenge_method => 'S256')
                            ->{params}{code}, code_verifier => $bad),
                   'invalid_request', 'verifier with a character outside the set');
    is exchange($sb->authorize->{params}{code}, code_verifier => 'whatever')
        ->{status}, 200, 'no challenge sent: the verifier is not checked';
};

subtest 'codes expire' => sub {
    $sb->set_config({ code_ttl => 1 });
    my $c = $sb->authorize->{params}{code};
    sleep 1.1;
    oauth_error_is(exchange($c), 'invalid_grant', 'after code_ttl');
    $sb->set_config({ code_ttl => 600 });
};

subtest 'scripted user: deny, fewer scopes, another user' => sub {
    $sb->script_authorize({ deny => JSON::PP::true });
    my $r = $sb->authorize(state => 'st-deny');
    is $r->{status}, 302, 'denied: still a redirect';
    is $r->{params}{error}, 'access_denied', 'error=access_denied';
    ok length $r->{params}{error_description}, 'error_description';
    is $r->{params}{state}, 'st-deny', 'state';
    ok !exists $r->{params}{code}, 'no code';

    is $sb->authorize->{params}{code} ? 1 : 0, 1,
        'the script applied to one authorization only';

    $sb->script_authorize({ grant_scopes => 'user.info.basic,video.list' });
    $r = $sb->authorize(scope => 'user.info.basic,video.list,video.publish');
    is $r->{params}{scopes}, 'user.info.basic,video.list',
        'the user unticked video.publish';
    my $t = exchange($r->{params}{code})->{json};
    is $t->{scope}, 'user.info.basic,video.list', 'token scope matches';

    $sb->add_user({ open_id => 'second-user', display_name => 'Second' });
    $sb->script_authorize({ open_id => 'second-user', count => 2 });
    for (1, 2) {
        $t = exchange($sb->authorize->{params}{code})->{json};
        is $t->{open_id}, 'second-user', "another user approves ($_)";
    }
    is exchange($sb->authorize->{params}{code})->{json}{open_id},
        $sb->default_open_id, 'then the default user again';
};

subtest 'refresh tokens rotate' => sub {
    my $t0 = exchange($sb->authorize->{params}{code})->{json};
    my $r1 = $sb->token(grant_type => 'refresh_token',
                        refresh_token => $t0->{refresh_token});
    is $r1->{status}, 200, 'refresh';
    my $t1 = $r1->{json};
    is_deeply [sort keys %$t1], [sort keys %$t0], 'same flat shape';
    isnt $t1->{refresh_token}, $t0->{refresh_token}, 'a new refresh token';
    isnt $t1->{access_token}, $t0->{access_token}, 'a new access token';
    is $t1->{scope}, $t0->{scope}, 'same scopes';
    is $t1->{open_id}, $t0->{open_id}, 'same user';

    oauth_error_is($sb->token(grant_type => 'refresh_token',
                              refresh_token => $t0->{refresh_token}),
                   'invalid_grant', 'the old refresh token is dead');
    my $r2 = $sb->token(grant_type => 'refresh_token',
                        refresh_token => $t1->{refresh_token});
    is $r2->{status}, 200, 'the new one works';
    oauth_error_is($sb->token(grant_type => 'refresh_token',
                              refresh_token => $t1->{refresh_token}),
                   'invalid_grant', '... once');
    my $info = $sb->api(GET => '/v2/user/info/', token =>
                        $r2->{json}{access_token}, query => { fields => 'open_id' });
    is $info->{status}, 200, 'the refreshed access token works';

    oauth_error_is($sb->token(grant_type => 'refresh_token',
                              refresh_token => $r2->{json}{refresh_token},
                              client_secret => 'nope'),
                   'invalid_client', 'refresh needs the client secret');
    oauth_error_is($sb->token(grant_type => 'refresh_token'),
                   'invalid_request', 'refresh_token missing');

    $sb->expire_tokens({ refresh_token => $r2->{json}{refresh_token} });
    oauth_error_is($sb->token(grant_type => 'refresh_token',
                              refresh_token => $r2->{json}{refresh_token}),
                   'invalid_grant', 'an expired refresh token');

    my $calls = $sb->calls;
    cmp_ok $calls->{'/v2/oauth/token/#refresh_token'}, '>=', 5,
        'refreshes counted by grant type';
    cmp_ok $calls->{'/v2/oauth/token/#authorization_code'}, '>=', 10,
        'code exchanges counted by grant type';
};

subtest 'lifetimes come from configuration' => sub {
    $sb->set_config({ access_expires_in => 60, refresh_expires_in => 120 });
    my $t = exchange($sb->authorize->{params}{code})->{json};
    is $t->{expires_in}, 60, 'expires_in';
    is $t->{refresh_expires_in}, 120, 'refresh_expires_in';
    $t = $sb->token(grant_type => 'refresh_token',
                    refresh_token => $t->{refresh_token})->{json};
    is $t->{expires_in}, 60, '... on refresh too';

    my $m = $sb->mint_tokens({ expires_in => 5, refresh_expires_in => 10 });
    is $m->{expires_in}, 5, 'minted with a given lifetime';
    $sb->set_config({ access_expires_in => 7200,
                      refresh_expires_in => 15552000 });
};

subtest 'OAuth errors with HTTP 400 when switched' => sub {
    $sb->set_config({ oauth_error_status => 400 });
    my $res = exchange('nope');
    is $res->{status}, 400, 'HTTP 400';
    is $res->{json}{error}, 'invalid_grant', 'same flat body';
    $sb->set_config({ oauth_error_status => 200 });
    is exchange('nope')->{status}, 200, 'and back to 200';
    my $bad = $sb->control_raw(POST => '/config', { oauth_error_status => 500 });
    is $bad->{status}, 400, 'only 200 or 400';
};

subtest 'revoke' => sub {
    my $t = exchange($sb->authorize->{params}{code})->{json};
    my $other = $sb->mint_tokens;
    my $res = $sb->api(POST => '/v2/oauth/revoke/', form => {
        client_key => 'ck_oauth', client_secret => 'wrong',
        token => $t->{access_token} });
    is $res->{json}{error}, 'invalid_client', 'needs the client secret';

    $res = $sb->api(POST => '/v2/oauth/revoke/', form => {
        client_key => 'ck_oauth', client_secret => 'cs_oauth',
        token => $t->{access_token} });
    is $res->{status}, 200, 'HTTP 200';
    is $res->{content}, '{}', 'body {}';

    my $info = $sb->api(GET => '/v2/user/info/', token => $t->{access_token},
                        query => { fields => 'open_id' });
    is $info->{status}, 401, 'the access token is dead';
    is $info->{json}{error}{code}, 'access_token_invalid', '... access_token_invalid';
    oauth_error_is($sb->token(grant_type => 'refresh_token',
                              refresh_token => $t->{refresh_token}),
                   'invalid_grant', 'the refresh token is dead');
    is $sb->api(GET => '/v2/user/info/', token => $other->{access_token},
                query => { fields => 'open_id' })->{status}, 401,
        "the user's other tokens for the app too";

    $res = $sb->api(POST => '/v2/oauth/revoke/', form => {
        client_key => 'ck_oauth', client_secret => 'cs_oauth',
        token => 'act.unknown' });
    is $res->{content}, '{}', 'an unknown token: {} (nothing to revoke)';
    $res = $sb->api(POST => '/v2/oauth/revoke/', form => {
        client_key => 'ck_oauth', client_secret => 'cs_oauth' });
    is $res->{json}{error}, 'invalid_request', 'token missing';
};

done_testing;
