# The configuration as shipped and as documented (issue 11):
#
#   - conf.example passes `nginx -t` with the module.  Only what a test
#     cannot have is changed (each change must match exactly once, so an
#     edit of conf.example that this test no longer fits fails here): the
#     module's path, log, pid and spool paths under a temporary directory,
#     a self-signed certificate, a free unprivileged port instead of 443,
#     and the TikTok upstream's host name (nginx resolves it during -t;
#     the test must not need DNS); and nginx's own temporary directories,
#     which -t creates, are put there too.  Nothing here needs root.
#   - the directives the module declares (its ngx_command_t tables in
#     src/) are exactly those the README's directive reference documents,
#     each with Syntax, Default and Context, the Context matching where
#     the source allows it.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/..');
my $module = $ENV{TEST_NGINX_TIKTOK_MODULE}
             || "$root/build/ngx_http_tiktok_module.so";
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

sub free_port {
    for (1 .. 200) {
        my $port = 20000 + int(rand(12000));
        my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      ReuseAddr => 1) or next;
        close $s;
        return $port;
    }
    die "no free port\n";
}


# 1. conf.example passes nginx -t

my $dir = tempdir('tiktok-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $conf = slurp("$root/conf.example");
my $port = free_port();

system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/app.key"
       . " -out $dir/app.pem -days 2 -subj /CN=app.example.com"
       . " 2>/dev/null") == 0
    or BAIL_OUT('cannot make a certificate with openssl');

my @subst = (
    [ 'load_module modules/ngx_http_tiktok_module.so;'
      => "load_module $module;" ],
    [ 'error_log /var/log/nginx/error.log;'
      => "error_log $dir/error.log;" ],
    [ 'pid /run/nginx.pid;' => "pid $dir/nginx.pid;" ],
    [ 'access_log  /var/log/nginx/access.log  tiktok;'
      => "access_log $dir/access.log tiktok;" ],
    [ 'tiktok_upload_spool       /var/lib/nginx/tiktok;'
      => "tiktok_upload_spool $dir/spool;" ],
    [ 'ssl_certificate     /etc/ssl/certs/app.example.com.pem;'
      => "ssl_certificate $dir/app.pem;" ],
    [ 'ssl_certificate_key /etc/ssl/private/app.example.com.key;'
      => "ssl_certificate_key $dir/app.key;" ],
    [ 'listen 443 ssl;' => "listen 127.0.0.1:$port ssl;" ],
    [ 'server open.tiktokapis.com:443;' => 'server 127.0.0.1:443;' ],
);

for my $s (@subst) {
    my ($from, $to) = @$s;
    my $n = () = $conf =~ /\Q$from\E/g;
    is($n, 1, "conf.example has \"$from\" once");
    $conf =~ s/\Q$from\E/$to/;
}

# nginx's compiled-in temporary directories, which -t creates, under $dir
my $temp = join '', map { "    ${_}_temp_path $dir/$_;\n" }
                   qw(client_body proxy fastcgi uwsgi scgi);
$conf =~ s/^http \{\n/http {\n$temp/m
    or fail('conf.example has an http block');

like($conf, qr/location\ =\ \/tiktok_metrics\ \{\s*tiktok_metrics;
               \s*allow\ 127\.0\.0\.1;\s*deny\ all;\s*\}/x,
     'conf.example has the metrics location, loopback only');

open my $fh, '>', "$dir/nginx.conf" or die $!;
print $fh $conf;
close $fh;

{
    local $ENV{TIKTOK_CLIENT_SECRET} = 'conf-test-secret';
    local $ENV{TIKTOK_TOKEN_KEY} = 'ab' x 32;
    delete local $ENV{TIKTOK_TOKEN_KEY_PREVIOUS};

    my $out = `$nginx -t -p $dir/ -c $dir/nginx.conf 2>&1`;
    is($? >> 8, 0, 'nginx -t accepts conf.example') or diag $out;
    like($out, qr/test is successful/, '... "test is successful"');
    unlike($out, qr/\[(emerg|alert|error)\]/, '... without an error')
        or diag $out;
}


# 2. the directive reference against the source

my %src;   # name => context ("http, server, location")
for my $file (glob "$root/src/*.c") {
    my $c = slurp($file);

    while ($c =~ /ngx_command_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_null_command/sg) {
        my $table = $1;

        while ($table =~ /\{\s*ngx_string\("([^"]+)"\),\s*([^,]+),/g) {
            my ($name, $flags) = ($1, $2);
            my @ctx;
            push @ctx, 'main' if $flags =~ /\bNGX_MAIN_CONF\b/;
            push @ctx, 'http' if $flags =~ /\bNGX_HTTP_MAIN_CONF\b/;
            push @ctx, 'server' if $flags =~ /\bNGX_HTTP_SRV_CONF\b/;
            push @ctx, 'location' if $flags =~ /\bNGX_HTTP_LOC_CONF\b/;
            push @ctx, 'if in location' if $flags =~ /\bNGX_HTTP_LIF_CONF\b/;
            ok(!exists $src{$name}, "$name declared once in src/");
            $src{$name} = join ', ', @ctx;
        }
    }
}

cmp_ok(scalar keys %src, '>=', 20, 'the source declares the directives')
    or diag explain \%src;

my $readme = slurp("$root/README.md");
my ($ref) = $readme =~ /^## Directive reference\n(.*?)^## /ms;
ok($ref, 'README has a directive reference');

my %doc;   # name => { syntax, default, context }
for my $section (split /^### /m, $ref // '') {
    my ($name) = $section =~ /\A(\S+)\n/ or next;
    next unless $name =~ /^tiktok_/;

    ok(!exists $doc{$name}, "$name documented once");
    my %d;
    # nginx's reference wraps a long Syntax onto indented lines
    ($d{syntax}) = $section =~ /^\s+Syntax:\s+(.+?)\n\s+Default:/ms;
    $d{syntax} =~ s/\s+/ /g if defined $d{syntax};
    ($d{default}) = $section =~ /^\s+Default:\s*(.+)$/m;
    ($d{context}) = $section =~ /^\s+Context:\s+(.+)$/m;
    $doc{$name} = \%d;
}

for my $name (sort keys %src) {
    ok($doc{$name}, "$name is in the README's directive reference")
        or next;
    my $d = $doc{$name};
    like($d->{syntax} // '', qr/^\Q$name\E\b.*;$/,
         "$name: Syntax starts with its name and ends with ;");
    ok(defined $d->{default}, "$name: Default");
    is($d->{context}, $src{$name}, "$name: Context as the source allows");
}

for my $name (sort keys %doc) {
    ok(exists $src{$name}, "$name (README) is a directive of the module");
}

done_testing();
