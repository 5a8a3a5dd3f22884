package TikTokJwt;

# JSON Web Tokens for the tests, made with the openssl command line and
# core Perl only: keys are generated at test time into a directory of the
# test's own (nothing secret is committed), signed as JWS compact
# serialisation (RFC 7515), and their public halves written as a JWKS.
#
#   my $j = TikTokJwt->new("$TikTokTest::Tmp/jwt");
#   $j->rsa('r1');  $j->ec('e1');             # key files in that directory
#   $j->jwks("$dir/jwks.json", r1 => 'kid-r1', e1 => 'kid-e1');
#   $j->token(alg => 'RS256', key => 'r1', kid => 'kid-r1',
#             claims => { sub => 'u1', exp => time + 60 });
#   $j->token(alg => 'HS256', secret => $bytes, claims => {...});

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256 hmac_sha512);
use File::Path qw(make_path);
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);

my $json = JSON::PP->new->canonical;


sub new {
    my ($class, $dir) = @_;

    make_path($dir);

    return bless { dir => $dir }, $class;
}


sub b64url {
    my ($bytes) = @_;

    my $s = encode_base64($bytes, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;

    return $s;
}


# openssl's output; its stderr (genpkey's progress dots) goes nowhere
sub openssl {
    my (@args) = @_;

    open my $saved, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>', '/dev/null' or die "/dev/null: $!";
    my $ok = open my $fh, '-|', 'openssl', @args;
    open STDERR, '>&', $saved or die "dup: $!";
    $ok or die "openssl: $!";

    binmode $fh;
    local $/;
    my $out = <$fh>;
    close $fh or die "openssl @args failed\n";

    return $out;
}


sub file { "$_[0]{dir}/$_[1].pem" }


sub rsa {
    my ($self, $name, $bits) = @_;

    openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt',
            'rsa_keygen_bits:' . ($bits // 2048), '-out', $self->file($name));
}


sub ec {
    my ($self, $name, $curve) = @_;

    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt',
            'ec_paramgen_curve:' . ($curve // 'P-256'), '-out',
            $self->file($name));
}


# the public key as PEM text (the bytes an HS/RS confusion attack MACs with)
sub public_pem {
    my ($self, $name) = @_;

    return openssl('pkey', '-in', $self->file($name), '-pubout');
}


sub jwk {
    my ($self, $name, $kid) = @_;

    my $text = openssl('pkey', '-in', $self->file($name), '-noout', '-text');

    if ($text =~ /^modulus:/m) {
        my $mod = openssl('rsa', '-in', $self->file($name), '-noout',
                          '-modulus');
        my ($n) = $mod =~ /Modulus=([0-9A-F]+)/ or die "no modulus\n";
        my ($e) = $text =~ /publicExponent: (\d+)/ or die "no exponent\n";
        my $eb = '';

        while ($e) {
            $eb = chr($e & 0xff) . $eb;
            $e >>= 8;
        }

        return { kty => 'RSA', kid => $kid, n => b64url(pack('H*', $n)),
                 e => b64url($eb) };
    }

    # the SubjectPublicKeyInfo ends with the point: 0x04 || x || y
    my $der = openssl('pkey', '-in', $self->file($name), '-pubout',
                      '-outform', 'DER');
    my $point = substr($der, -65);
    substr($point, 0, 1) eq "\x04" or die "not an uncompressed point\n";

    return { kty => 'EC', crv => 'P-256', kid => $kid,
             x => b64url(substr($point, 1, 32)),
             y => b64url(substr($point, 33, 32)) };
}


# jwks($file, name => kid, ...) or with ready JWK hashes as well
sub jwks {
    my ($self, $file, @pairs) = @_;

    my @keys;

    while (@pairs) {
        my $k = shift @pairs;
        push @keys, ref $k ? $k : $self->jwk($k, shift @pairs);
    }

    open my $fh, '>', $file or die "$file: $!";
    print $fh $json->encode({ keys => \@keys });
    close $fh;

    return \@keys;
}


# token(alg =>, key => name | secret => bytes, kid =>, claims => {},
#       header => {extra members}, sig => bytes (instead of signing))
sub token {
    my ($self, %o) = @_;

    my %h = (alg => $o{alg}, typ => 'JWT', %{ $o{header} // {} });
    $h{kid} = $o{kid} if defined $o{kid};

    my $input = b64url($json->encode(\%h)) . '.'
                . b64url($json->encode($o{claims}));

    return "$input." . b64url($o{sig}) if defined $o{sig};

    return "$input." . $self->sign($o{alg}, \%o, $input);
}


sub sign {
    my ($self, $alg, $o, $input) = @_;

    return '' if $alg eq 'none';

    return b64url(hmac_sha256($input, $o->{secret})) if $alg eq 'HS256';
    return b64url(hmac_sha512($input, $o->{secret})) if $alg eq 'HS512';

    my $in = "$self->{dir}/input";
    open my $fh, '>', $in or die "$in: $!";
    print $fh $input;
    close $fh;

    my $sig = openssl('dgst', '-sha256', '-sign', $self->file($o->{key}),
                      '-binary', $in);

    return b64url($sig) if $alg eq 'RS256';

    # ES256: OpenSSL's DER SEQUENCE { INTEGER r, INTEGER s } to r || s
    my ($r, $s) = der_ints($sig);

    return b64url(pad32($r) . pad32($s));
}


sub der_ints {
    my ($der) = @_;

    my @b = unpack('C*', $der);
    my $i = 2;
    $i++ if $b[1] & 0x80;
    my @ints;

    for (1 .. 2) {
        $b[$i++] == 0x02 or die "not an INTEGER\n";
        my $len = $b[$i++];
        push @ints, pack('C*', @b[$i .. $i + $len - 1]);
        $i += $len;
    }

    return @ints;
}


sub pad32 {
    my ($n) = @_;

    $n =~ s/^\x00+//;

    return ("\x00" x (32 - length $n)) . $n;
}


1;
