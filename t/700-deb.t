#!/usr/bin/perl

# The Debian package (DESIGN.md section 8.6): `make deb`'s
# libnginx-mod-http-tiktok is installed with dpkg on this machine, its files
# are checked where the design puts them, the module is enabled through
# /etc/nginx/modules-enabled, its Depends names the nginx-abi the installed
# nginx provides, and `nginx -t` passes with the shipped conf.example; lintian
# finds no error.  The package is purged again at the end, so the machine is
# left as found (CI runs as root on a throwaway machine).
#
# It reuses build/deb's .deb when it is newer than every file it is built
# from, else runs `make deb`.  Skipped unless root with dpkg-buildpackage and
# nginx-dev's dh_nginx, when the package is installed already (purging it
# would not leave the machine as found), and under make asan (the package is
# never built with the sanitizer; make test covers it).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Find ();
use File::Temp qw(tempdir);
use FindBin ();
use Test::More;

my $root = abs_path("$FindBin::Bin/..");
my $pkg = 'libnginx-mod-http-tiktok';
my $share = "/usr/share/$pkg";
my $doc = "/usr/share/doc/$pkg";
my $available = '/usr/share/nginx/modules-available/mod-http-tiktok.conf';
my $enabled = '/etc/nginx/modules-enabled/50-mod-http-tiktok.conf';
my $so = '/usr/lib/nginx/modules/ngx_http_tiktok_module.so';
my $nginx = '/usr/sbin/nginx';


sub have {
    my ($cmd) = @_;
    return scalar grep { -x "$_/$cmd" } split /:/, $ENV{PATH};
}


sub installed {
    my $st = `dpkg-query -W -f='\${Status}' $pkg 2>/dev/null`;
    return $st =~ /install ok installed|config-files|half|unpacked/;
}


plan skip_all => 'dpkg -i needs root' if $> != 0;
plan skip_all => 'the package is not built under make asan'
    if $ENV{TIKTOK_ASAN};
for my $cmd (qw(dpkg-buildpackage dh_nginx)) {
    plan skip_all => "$cmd not installed (dpkg-dev, nginx-dev)"
        unless have($cmd);
}
plan skip_all => "$pkg is installed already: this test would remove it"
    if installed();

my $tmp = tempdir('tiktok-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my ($we_installed, $our_policy);

# nginx creates the module's default upload spool when it reads a
# configuration that loads the module (nginx -t of /etc/nginx/nginx.conf
# below); removed at the end if it was not there before
my $default_spool = '/var/lib/nginx/tiktok_spool';
my $had_spool = -e $default_spool ? 1 : 0;


# ---- the .deb: build/deb's if it is fresh, else make deb -----------------

sub newest_source {
    my $newest = 0;
    my @roots = grep { -e } map { "$root/$_" }
        qw(config src debian sql scripts/migrate.sh conf.example README.md);

    File::Find::find({ no_chdir => 1, wanted => sub {
        my $m = (stat $_)[9];
        $newest = $m if -f $_ && $m > $newest;
    } }, @roots);

    return $newest;
}

sub find_deb {
    my @debs = grep { !/-dbgsym_/ } glob "$root/build/deb/${pkg}_*_*.deb";
    return @debs == 1 ? $debs[0] : undef;
}

my $deb = find_deb();
my $built;

if (!$deb || (stat $deb)[9] < newest_source()) {
    # a make of our own, not a sub-make of whatever runs this test
    local %ENV = %ENV;
    delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL BUILD)};
    my $log = "$tmp/make-deb.log";
    my $rc = system("make -C '$root' deb > '$log' 2>&1");
    if ($rc != 0) {
        diag(`tail -40 '$log'`);
    }
    is($rc, 0, 'make deb builds the package and lintian finds no error');
    $deb = find_deb();
    $built = 1;
}

ok($deb, 'one package in build/deb') or BAIL_OUT('no package to install');
like($deb, qr{/${pkg}_[^_]+_[a-z0-9]+\.deb\z},
     "named ${pkg}_<version>_<arch>.deb");


# ---- lintian --------------------------------------------------------------

SKIP: {
    skip 'make deb ran lintian on this package', 1 if $built;
    skip 'lintian not installed', 1 unless have('lintian');

    my $out = `lintian --fail-on error '$deb' 2>&1`;
    my $rc = $?;
    is($rc, 0, 'lintian finds no error') or diag($out);
    my @warnings = grep { /^W: / } split /\n/, $out;
    note("lintian warnings:\n", join("\n", @warnings)) if @warnings;
}


# ---- what the package contains --------------------------------------------

my @files = map { s{^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\.}{}r }
            split /\n/, `dpkg-deb -c '$deb'`;
ok((grep { $_ eq $so } @files), 'the module is in the package');
is_deeply([grep { /\.so\z/ } @files], [$so],
          'no other shared object (the test-only modules stay out)');


# ---- install -------------------------------------------------------------

my $nginx_t_before = system("$nginx -t -q >/dev/null 2>&1") == 0;

# the packaged nginx reloads on our trigger only when it runs; a
# policy-rc.d (as scripts/deps.sh uses) keeps any service from starting
if (!-e '/usr/sbin/policy-rc.d') {
    open my $fh, '>', '/usr/sbin/policy-rc.d' or die $!;
    print $fh "#!/bin/sh\nexit 101\n";
    close $fh;
    chmod 0755, '/usr/sbin/policy-rc.d';
    $our_policy = 1;
}

$we_installed = 1;
my $out = `dpkg -i '$deb' 2>&1`;
is($?, 0, 'dpkg -i installs it') or diag($out);


# ---- files where DESIGN section 8.6 puts them ----------------------------

ok(-f $so, $so);

open my $fh, '<', $available or die "$available: $!";
my $load = do { local $/; <$fh> };
close $fh;
is($load, "load_module modules/ngx_http_tiktok_module.so;\n",
   "$available loads the module");

ok(-l $enabled, "$enabled is a symlink");
is(readlink $enabled, $available, 'to modules-available');

my @sql = map { s{.*/}{}r } sort glob "$root/sql/*.sql";
my @shipped = map { s{.*/}{}r } sort glob "$share/sql/*.sql";
ok(@sql > 0, 'the repository has migrations');
is_deeply(\@shipped, \@sql, "every migration in $share/sql");
ok(-x "$share/scripts/migrate.sh", "$share/scripts/migrate.sh, executable");
is(system('sh', '-n', "$share/scripts/migrate.sh"), 0, 'migrate.sh parses');

ok(-f "$doc/conf.example", "$doc/conf.example");
is(system('cmp', '-s', "$doc/conf.example", "$root/conf.example"), 0,
   'conf.example as in the repository');
ok(-f "$doc/copyright", "$doc/copyright");


# ---- Depends: the ABI this nginx provides and the linked libraries --------

my $depends = `dpkg-query -W -f='\${Depends}' $pkg`;
my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[^\s,]+)/;
ok($abi, "the installed nginx provides an ABI ($abi)");
like($depends, qr/(?:^|, )\Q$abi\E(?:,|\z)/, "Depends on $abi");
for my $lib (qw(libpq5 libcurl4 libjansson4 libssl3)) {
    like($depends, qr/(?:^|, )$lib\b/, "Depends on $lib");
}
note("Depends: $depends");


# ---- nginx -t --------------------------------------------------------------

# The shipped conf.example is a whole nginx.conf; the test takes it as an
# administrator would, loading the module through modules-enabled (as
# Debian's own nginx.conf does) instead of its load_module line, with its
# secrets in the environment, and with what belongs to a real site moved
# into a scratch directory: logs, pid, TLS certificate, upload spool, and
# the TikTok upstream's name (nginx resolves it while reading the file, and
# this machine may have no DNS).

open $fh, '<', "$doc/conf.example" or die "$doc/conf.example: $!";
my $conf = do { local $/; <$fh> };
close $fh;

ok($conf =~ s{^load_module\s+modules/ngx_http_tiktok_module\.so;}
             {include /etc/nginx/modules-enabled/*.conf;}m,
   'conf.example has the load_module line modules-enabled replaces');

$conf =~ s{/var/log/nginx/}{$tmp/}g;
$conf =~ s{^(\s*pid\s+)\S+;}{$1$tmp/nginx.pid;}m;
$conf =~ s{^(\s*ssl_certificate\s+)\S+;}{$1$tmp/cert.pem;}mg;
$conf =~ s{^(\s*ssl_certificate_key\s+)\S+;}{$1$tmp/key.pem;}mg;
$conf =~ s{^(\s*tiktok_upload_spool\s+)\S+;}{$1$tmp/spool;}m;
$conf =~ s{^(\s*server\s+)open\.tiktokapis\.com(:\d+)}{${1}127.0.0.1$2}mg;

open $fh, '>', "$tmp/nginx.conf" or die $!;
print $fh $conf;
close $fh;

is(system("openssl req -x509 -newkey rsa:2048 -nodes -days 1"
          . " -subj /CN=app.example.com -keyout '$tmp/key.pem'"
          . " -out '$tmp/cert.pem' >/dev/null 2>&1"), 0,
   'a certificate for the example site');

{
    # every variable the example passes on with `env NAME;` (the client
    # secret, the token keys): 32 bytes in hex fit all of them
    local %ENV = %ENV;
    $ENV{$_} = 'a1' x 32 for $conf =~ /^\s*env\s+(\w+);/mg;

    my $out = `$nginx -t -c '$tmp/nginx.conf' 2>&1`;
    is($?, 0, 'nginx -t passes with the shipped conf.example') or diag($out);
}

SKIP: {
    skip "nginx -t with /etc/nginx/nginx.conf failed before the install", 1
        unless $nginx_t_before;
    my $out = `$nginx -t 2>&1`;
    is($?, 0, 'nginx -t with /etc/nginx/nginx.conf still passes')
        or diag($out);
}


# ---- purge ----------------------------------------------------------------

$out = `dpkg -P $pkg 2>&1`;
is($?, 0, 'dpkg -P removes it') or diag($out);
$we_installed = 0 if !installed();
ok(!-e $so && !-e $available && !-d $share, 'its files are gone');
ok(!-l $enabled && !-l "$enabled.removed", 'so is the modules-enabled link');

done_testing();


END {
    my $rc = $?;
    if ($we_installed && installed()) {
        system("dpkg -P $pkg >/dev/null 2>&1");
    }
    unlink '/usr/sbin/policy-rc.d' if $our_policy;
    rmdir $default_spool if defined $had_spool && !$had_spool;
    $? = $rc;
}
