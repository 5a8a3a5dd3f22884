# Identity from the app's JWT (DESIGN.md section 8.4): tiktok_jwt and
# $tiktok_jwt_sub.  Keys are made for this run (t/lib/TikTokJwt.pm): an
# HS256 secret in the environment, and a JWKS of two RSA and two P-256 keys
# plus one the module skips.  One request per block:
#
#   --- bearer: NAME        sends the token $T{NAME} as Authorization: Bearer
#   --- cookie_token: NAME  sends it in the sb-access-token cookie
#   --- refused: REASON     the answer is the 401 of DESIGN 8.4, and the
#                           error log (at info) gives that reason
#
# and in every block the token's signature is absent from the error log.
# The OAuth round trip with the identity from a cookie follows in Perl.

use strict;
use warnings;

use TikTokTest;
use TikTokJwt;
use BlockSections qw(bearer cookie_token refused);
use Test::Nginx::Socket 'no_plan';
use JSON::PP;

my $dir = "$TikTokTest::Tmp/jwt";
my $j = TikTokJwt->new($dir);

my $secret = TikTokTest::random_hex(32);
$ENV{TIKTOK_JWT_TEST_SECRET} = $secret;
$ENV{TIKTOK_JWT_SHORT_SECRET} = 'x' x 31;

$j->rsa($_) for qw(rsa1 rsa2 rsa_other);
$j->ec($_) for qw(ec1 ec2 ec_other);
$j->rsa('rsa_small', 1024);
$j->ec('p384', 'P-384');

my $jwks = "$dir/jwks.json";
my $keys = $j->jwks($jwks, rsa1 => 'rsa-1', ec1 => 'ec-1', rsa2 => 'rsa-2',
                    ec2 => 'ec-2');

$j->jwks("$dir/small.json", rsa_small => 'small');
$j->jwks("$dir/none.json", { kty => 'oct', kid => 'hmac', k => 'AA' });
$j->jwks("$dir/nokid.json", $j->jwk('ec1', undef));

{
    my $bad = $j->jwk('ec1', 'bad');
    $bad->{y} = $bad->{x};                           # not on the curve
    $j->jwks("$dir/offcurve.json", $bad);
}

open my $fh, '>', "$dir/garbage.json" or die;
print $fh "{\"keys\": [";
close $fh;

my $now = time;
my $iss = 'https://proj.supabase.co/auth/v1';

# the claims of a good token, changed by the arguments (undef: left out)
sub claims {
    my %c = (sub => 'user-1', exp => $now + 600, @_);

    return { map { defined $c{$_} ? ($_ => $c{$_}) : () } keys %c };
}

sub hs { $j->token(alg => 'HS256', secret => $secret, claims => claims(@_)) }

our %T = (
    hs          => hs(),
    es          => $j->token(alg => 'ES256', key => 'ec2', kid => 'ec-2',
                             claims => claims(sub => 'user-es')),
    rs          => $j->token(alg => 'RS256', key => 'rsa2', kid => 'rsa-2',
                             claims => claims(sub => 'user-rs')),
    expired     => hs(exp => $now - 60),
    in_leeway   => hs(exp => $now - 10),
    not_yet     => hs(nbf => $now + 120),
    nbf_leeway  => hs(nbf => $now + 10),
    no_exp      => $j->token(alg => 'HS256', secret => $secret,
                             claims => { sub => 'user-1' }),
    wrong_secret => $j->token(alg => 'HS256', secret => 'y' x 64,
                              claims => claims()),
    wrong_rsa   => $j->token(alg => 'RS256', key => 'rsa_other',
                             kid => 'rsa-1', claims => claims()),
    wrong_ec    => $j->token(alg => 'ES256', key => 'ec_other', kid => 'ec-1',
                             claims => claims()),
    none        => $j->token(alg => 'none', claims => claims()),
    none_sig    => $j->token(alg => 'none', claims => claims(),
                             sig => 'x' x 32),
    hs_pem      => $j->token(alg => 'HS256', secret => $j->public_pem('rsa1'),
                             kid => 'rsa-1', claims => claims()),
    hs_jwk      => $j->token(alg => 'HS256',
                             secret => JSON::PP->new->canonical
                                       ->encode($keys->[0]),
                             kid => 'rsa-1', claims => claims()),
    unknown_kid => $j->token(alg => 'RS256', key => 'rsa1', kid => 'rsa-9',
                             claims => claims()),
    no_kid      => $j->token(alg => 'RS256', key => 'rsa1',
                             claims => claims()),
    rs_ec_kid   => $j->token(alg => 'RS256', key => 'rsa1', kid => 'ec-1',
                             claims => claims()),
    hs512       => $j->token(alg => 'HS512', secret => $secret,
                             claims => claims()),
    crit        => $j->token(alg => 'HS256', secret => $secret,
                             header => { crit => ['exp'] },
                             claims => claims()),
    no_sub      => hs(sub => undef),
    empty_sub   => hs(sub => ''),
    num_sub     => hs(sub => 42),
    supabase    => hs(aud => 'authenticated', iss => $iss),
    aud_array   => hs(aud => ['other', 'authenticated'], iss => $iss),
    aud_wrong   => hs(aud => 'anon', iss => $iss),
    aud_absent  => hs(iss => $iss),
    aud_nested  => hs(aud => [['authenticated']], iss => $iss),
    iss_wrong   => hs(aud => 'authenticated', iss => 'https://evil/auth/v1'),
    iss_absent  => hs(aud => 'authenticated'),
    two_parts   => 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0',
    four_parts  => hs() . '.x',
    bad_b64     => do { my $t = hs(); $t =~ s/\.(.)/.!/; $t },
    padded      => do { my $t = hs(); $t =~ s/\./=./; $t },
    bad_json    => TikTokJwt::b64url('{"alg":"HS256"') . '.'
                   . TikTokJwt::b64url('{}') . '.AAAA',
    array_body  => do {
        my $in = TikTokJwt::b64url('{"alg":"HS256"}') . '.'
                 . TikTokJwt::b64url('["sub"]');
        "$in." . TikTokJwt::b64url(Digest::SHA::hmac_sha256($in, $secret));
    },
);

$T{hs_cookie} = hs(aud => 'authenticated', iss => $iss, sub => 'user-cookie');

# a signature part no log line may carry
sub signature_of { my ($t) = @_; return (split /\./, $t, -1)[2] // '' }

our $Location = <<"EOF_CONF";
$TikTokTest::ApiLocation
    location /api/tiktok/ {
        tiktok_user_id \$tiktok_jwt_sub;
        tiktok_api;
    }

    location /hs/ {
        tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET;
        tiktok_user_id \$tiktok_jwt_sub;
        tiktok_api;
    }

    location /jwks/ {
        tiktok_jwt jwks=$jwks;
        tiktok_user_id \$tiktok_jwt_sub;
        tiktok_api;
    }

    location /supabase/ {
        tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET audience=authenticated
                   issuer=$iss cookie=sb-access-token;
        tiktok_user_id \$tiktok_jwt_sub;
        tiktok_api;
    }

    location /strict/ {
        tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET leeway=0;
        tiktok_user_id \$tiktok_jwt_sub;
        tiktok_api;
    }

    location /header/ {
        tiktok_user_id \$http_x_user_id;
        tiktok_api;
    }

    location = /sub {
        return 200 "sub=\$tiktok_jwt_sub again=\$tiktok_jwt_sub\\n";
    }
EOF_CONF

TikTokTest::defaults(
    http => "    tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET jwks=$jwks;\n");

log_level('info');

add_block_preprocessor(sub {
    my $block = shift;

    my @headers = defined $block->more_headers ? ($block->more_headers) : ();
    my @absent = ('[error]', '[alert]', 'Bearer');
    my @tokens;

    if (defined $block->bearer) {
        push @tokens, $T{ $block->bearer } // die "no token " . $block->bearer;
        push @headers, "Authorization: Bearer $tokens[-1]";
    }

    if (defined $block->cookie_token) {
        push @tokens, $T{ $block->cookie_token }
                      // die "no token " . $block->cookie_token;
        push @headers, "Cookie: theme=dark; sb-access-token=$tokens[-1]";
    }

    for my $token (@tokens) {
        my $sig = signature_of($token);
        push @absent, $sig if length $sig > 8;
    }

    if (defined $block->refused) {
        push @headers, 'X-Request-ID: jwt-refused';
        $block->set_value('error_code', 401);
        $block->set_value('response_headers',
                          "WWW-Authenticate: Bearer error=\"invalid_token\"");
        $block->set_value('response_body',
            '{"error":{"code":"unauthenticated","message":'
            . '"Authentication required","request_id":"jwt-refused"}}');
        $block->set_value('error_log', [
            "JWT not accepted: " . $block->refused
            . ', request id "jwt-refused"']);
    }

    $block->set_value('more_headers', join("\n", @headers)) if @headers;
    $block->set_value('no_error_log', \@absent)
        unless defined $block->no_error_log;
    $block->set_value('config', $Location) unless defined $block->config;
});

no_shuffle();
run_tests();


# ---- OAuth with the identity from the app's cookie ---------------------

my $ngx = TikTokTest::Nginx->new(name => 'jwt', server => <<"CONF")->start;
        location /api/tiktok/ {
            tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET
                       audience=authenticated cookie=sb-access-token;
            tiktok_user_id \$tiktok_jwt_sub;
            tiktok_api;
        }
CONF

my $tok = hs(sub => 'jwt-oauth', aud => 'authenticated');
my $cookie = { Cookie => "sb-access-token=$tok" };

my $r = $ngx->request(GET => '/api/tiktok/connect',
                      headers => { Authorization => "Bearer $tok" });
is($r->{status}, 302, 'connect with a Bearer token: 302 to TikTok');

my ($path) = ($r->{headers}{location} // '')
             =~ m{^https://localhost:\d+(/v2/auth/authorize/\?.*)\z};
my $a = $TikTokTest::Sandbox->api(GET => $path // '/');
my ($query) = ($a->{headers}{location} // '')
              =~ m{^\Q$TikTokTest::RedirectUri\E\?(.*)\z};
ok($query, 'the sandbox sends the browser back with a code');

$r = $ngx->request(GET => "/api/tiktok/callback?$query");
is($r->{status}, 401, 'the callback without the cookie: 401');

$r = $ngx->request(GET => "/api/tiktok/callback?$query", headers => $cookie);
is($r->{status}, 302, 'the callback with the cookie: 302');
is($r->{headers}{location}, "$TikTokTest::ReturnUrl?tiktok=connected",
   '... connected');

$r = $ngx->request(GET => '/api/tiktok/status', headers => $cookie);
is($r->{status}, 200, 'status from the cookie: 200');
is(eval { decode_json($r->{content})->{connected} }, JSON::PP::true,
   '... connected, stored under the token\'s sub');
is(TikTokTest::psql("SELECT count(*) FROM tiktok.accounts"
                    . " WHERE user_id = 'jwt-oauth'"), '1',
   '... the account row is the sub\'s');
unlike($ngx->error_log, qr/\Q@{[signature_of($tok)]}\E/,
       'the token is in no log line');

__DATA__

=== TEST 1: HS256 with the secret: the sub is the caller
--- request
GET /api/tiktok/status
--- bearer: hs
--- error_code: 200
--- response_body_like: ^\{"connected":false



=== TEST 2: the variable is the accepted token's sub
--- request
GET /sub
--- bearer: hs
--- response_body
sub=user-1 again=user-1



=== TEST 3: ES256, the key chosen by kid among several
--- request
GET /sub
--- bearer: es
--- response_body
sub=user-es again=user-es



=== TEST 4: RS256, the key chosen by kid among several
--- request
GET /jwks/status
--- bearer: rs
--- error_code: 200
--- response_body_like: ^\{"connected":false



=== TEST 5: ES256 through tiktok_api
--- request
GET /jwks/status
--- bearer: es
--- error_code: 200
--- response_body_like: ^\{"connected":false



=== TEST 6: no token: 401 unauthenticated, not "not connected"
--- request
GET /api/tiktok/status
--- refused: no token



=== TEST 7: another Authorization scheme is no token
--- request
GET /api/tiktok/status
--- more_headers
Authorization: Basic dXNlcjpwYXNz
--- refused: no token



=== TEST 8: expired
--- request
GET /api/tiktok/status
--- bearer: expired
--- refused: expired



=== TEST 9: expired ten seconds ago, within the default 30s leeway
--- request
GET /api/tiktok/status
--- bearer: in_leeway
--- error_code: 200



=== TEST 10: ... and refused with leeway=0
--- request
GET /strict/status
--- bearer: in_leeway
--- refused: expired



=== TEST 11: not yet valid
--- request
GET /api/tiktok/status
--- bearer: not_yet
--- refused: not yet valid (nbf)



=== TEST 12: nbf ten seconds ahead, within the leeway
--- request
GET /api/tiktok/status
--- bearer: nbf_leeway
--- error_code: 200



=== TEST 13: no exp
--- request
GET /api/tiktok/status
--- bearer: no_exp
--- refused: no exp



=== TEST 14: signed with another secret
--- request
GET /api/tiktok/status
--- bearer: wrong_secret
--- refused: bad signature



=== TEST 15: RS256 signed with a key other than its kid's
--- request
GET /api/tiktok/status
--- bearer: wrong_rsa
--- refused: bad signature



=== TEST 16: ES256 signed with a key other than its kid's
--- request
GET /api/tiktok/status
--- bearer: wrong_ec
--- refused: bad signature



=== TEST 17: alg none
--- request
GET /api/tiktok/status
--- bearer: none
--- refused: algorithm not accepted



=== TEST 18: alg none with a signature
--- request
GET /api/tiktok/status
--- bearer: none_sig
--- refused: algorithm not accepted



=== TEST 19: HS512 is not accepted either
--- request
GET /api/tiktok/status
--- bearer: hs512
--- refused: algorithm not accepted



=== TEST 20: HS256 MACed with the RSA public key's PEM, JWKS only
--- request
GET /jwks/status
--- bearer: hs_pem
--- refused: HS256 without a configured secret



=== TEST 21: HS256 MACed with the RSA public key's JWK, JWKS only
--- request
GET /jwks/status
--- bearer: hs_jwk
--- refused: HS256 without a configured secret



=== TEST 22: HS256 MACed with the public key where a secret is set too
--- request
GET /api/tiktok/status
--- bearer: hs_pem
--- refused: bad signature



=== TEST 23: RS256 where only the HS256 secret is configured
--- request
GET /hs/status
--- bearer: rs
--- refused: ES256 or RS256 without a configured JWKS



=== TEST 24: a kid the JWKS does not have
--- request
GET /api/tiktok/status
--- bearer: unknown_kid
--- refused: no key for this kid and algorithm



=== TEST 25: an RS256 token naming an EC key
--- request
GET /api/tiktok/status
--- bearer: rs_ec_kid
--- refused: no key for this kid and algorithm



=== TEST 26: RS256 without a kid
--- request
GET /api/tiktok/status
--- bearer: no_kid
--- refused: no kid



=== TEST 27: a critical header extension
--- request
GET /api/tiktok/status
--- bearer: crit
--- refused: unsupported critical header



=== TEST 28: no sub
--- request
GET /api/tiktok/status
--- bearer: no_sub
--- refused: no sub



=== TEST 29: an empty sub
--- request
GET /api/tiktok/status
--- bearer: empty_sub
--- refused: no sub



=== TEST 30: a sub that is not a string
--- request
GET /api/tiktok/status
--- bearer: num_sub
--- refused: no sub



=== TEST 31: audience and issuer as configured
--- request
GET /supabase/status
--- bearer: supabase
--- error_code: 200



=== TEST 32: an aud array with the audience in it
--- request
GET /supabase/status
--- bearer: aud_array
--- error_code: 200



=== TEST 33: wrong audience
--- request
GET /supabase/status
--- bearer: aud_wrong
--- refused: wrong audience



=== TEST 34: no aud where an audience is configured
--- request
GET /supabase/status
--- bearer: aud_absent
--- refused: wrong audience



=== TEST 35: the audience nested one array too deep
--- request
GET /supabase/status
--- bearer: aud_nested
--- refused: wrong audience



=== TEST 36: wrong issuer
--- request
GET /supabase/status
--- bearer: iss_wrong
--- refused: wrong issuer



=== TEST 37: no iss where an issuer is configured
--- request
GET /supabase/status
--- bearer: iss_absent
--- refused: wrong issuer



=== TEST 38: the token in the configured cookie
--- request
GET /supabase/status
--- cookie_token: hs_cookie
--- error_code: 200



=== TEST 39: ... is the sub
--- config
    location = /sub {
        tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET cookie=sb-access-token;
        return 200 "sub=$tiktok_jwt_sub\n";
    }
--- request
GET /sub
--- cookie_token: hs_cookie
--- response_body
sub=user-cookie



=== TEST 40: a cookie is not read where no cookie= is configured
--- request
GET /api/tiktok/status
--- cookie_token: hs
--- refused: no token



=== TEST 41: the Authorization header comes before the cookie
--- request
GET /supabase/status
--- bearer: aud_wrong
--- cookie_token: hs_cookie
--- refused: wrong audience



=== TEST 42: two parts
--- request
GET /api/tiktok/status
--- bearer: two_parts
--- refused: malformed: not three dot-separated parts



=== TEST 43: four parts
--- request
GET /api/tiktok/status
--- bearer: four_parts
--- refused: malformed: not three dot-separated parts



=== TEST 44: a character outside base64url
--- request
GET /api/tiktok/status
--- bearer: bad_b64
--- refused: malformed: bad base64url



=== TEST 45: base64 padding
--- request
GET /api/tiktok/status
--- bearer: padded
--- refused: malformed: bad base64url



=== TEST 46: a header that is not JSON
--- request
GET /api/tiktok/status
--- bearer: bad_json
--- refused: malformed: the header is not a JSON object



=== TEST 47: a payload that is JSON but not an object
--- request
GET /api/tiktok/status
--- bearer: array_body
--- refused: malformed: the payload is not a JSON object



=== TEST 48: the token is verified once however often the variable is read
--- request
GET /sub
--- bearer: expired
--- response_body
sub= again=
--- grep_error_log: JWT not accepted
--- grep_error_log_out
JWT not accepted



=== TEST 49: X-User-ID locations keep their 401 not_connected
--- request
GET /header/status
--- bearer: hs
--- error_code: 401
--- response_body_like: "code":"not_connected"



=== TEST 50: ... also where $tiktok_jwt_sub was read, but is not the user id
--- config
    location /api/tiktok/ {
        set $app_jwt_user $tiktok_jwt_sub;
        tiktok_user_id $http_x_user_id;
        tiktok_api;
    }
--- request
GET /api/tiktok/status
--- bearer: expired
--- error_code: 401
--- response_body_like: "code":"not_connected"



=== TEST 51: $tiktok_jwt_sub as the user id where no tiktok_jwt is set
--- http_config eval
$TikTokTest::HttpConfig
--- config
    location /api/tiktok/ {
        tiktok_user_id $tiktok_jwt_sub;
        tiktok_api;
    }
--- must_die
--- error_log
"tiktok_user_id" uses $tiktok_jwt_sub but no "tiktok_jwt" is set for this location



=== TEST 52: the HS256 secret's variable unset: the error names it
--- http_config eval
$TikTokTest::HttpConfig
. "    tiktok_jwt secret_env=TIKTOK_JWT_NOT_SET;\n"
--- config
--- must_die
--- error_log
"tiktok_jwt": environment variable "TIKTOK_JWT_NOT_SET" is not set or empty



=== TEST 53: an HS256 secret shorter than 32 bytes
--- http_config
    tiktok_jwt secret_env=TIKTOK_JWT_SHORT_SECRET;
--- config
--- must_die
--- error_log
"tiktok_jwt": environment variable "TIKTOK_JWT_SHORT_SECRET" must hold at least 32 bytes for HS256



=== TEST 54: no key at all
--- http_config
    tiktok_jwt audience=authenticated;
--- config
--- must_die
--- error_log
"tiktok_jwt" needs a key: "secret_env=NAME" or "jwks=file"



=== TEST 55: an unknown parameter
--- http_config
    tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET algorithms=none;
--- config
--- must_die
--- error_log
"tiktok_jwt" has an invalid parameter "algorithms=none"



=== TEST 56: a JWKS file that is not JSON
--- http_config eval
"    tiktok_jwt jwks=$TikTokTest::Tmp/jwt/garbage.json;\n"
--- config
--- must_die
--- error_log eval
qr/"tiktok_jwt": cannot read the JWKS "[^"]+garbage.json"/



=== TEST 57: a JWKS without an ES256 or RS256 key
--- http_config eval
"    tiktok_jwt jwks=$TikTokTest::Tmp/jwt/none.json;\n"
--- config
--- must_die
--- error_log eval
[qr/key 0 of the JWKS "[^"]+none.json" is not an ES256 \(P-256\) or RS256 signing key, skipped/,
 qr/the JWKS "[^"]+none.json" has no ES256 \(P-256\) or RS256 key/]



=== TEST 58: an RSA key under 2048 bits
--- http_config eval
"    tiktok_jwt jwks=$TikTokTest::Tmp/jwt/small.json;\n"
--- config
--- must_die
--- error_log eval
qr/key "small" of the JWKS "[^"]+small.json" is not a valid RS256 public key of at least 2048 bits/



=== TEST 59: a P-256 point off the curve
--- http_config eval
"    tiktok_jwt jwks=$TikTokTest::Tmp/jwt/offcurve.json;\n"
--- config
--- must_die
--- error_log eval
qr/key "bad" of the JWKS "[^"]+offcurve.json" is not a valid ES256 public key/



=== TEST 60: a key without a kid
--- http_config eval
"    tiktok_jwt jwks=$TikTokTest::Tmp/jwt/nokid.json;\n"
--- config
--- must_die
--- error_log eval
qr/key 0 of the JWKS "[^"]+nokid.json" has no "kid"/



=== TEST 61: tiktok_jwt twice in a block
--- http_config
    tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET;
    tiktok_jwt secret_env=TIKTOK_JWT_TEST_SECRET;
--- config
--- must_die
--- error_log
"tiktok_jwt" directive is duplicate
