package Test::Nginx::Util;

# In-repo stand-in for the nginx management half of openresty's
# Test::Nginx (test-nginx on CPAN).  It implements the subset of the
# data-driven test format this project uses, with the same names, the same
# generated nginx.conf layout, the same environment variables and the same
# TAP test names, so that a .t file passing here also runs unchanged under
# the real Test::Nginx::Socket.  Anything the real module offers that we do
# not implement fails loudly instead of being ignored.
#
# Written for this repository; see t/runner/README for the differences.

use strict;
use warnings;

our $VERSION = '0.33';

# Lets helpers in t/lib tell this runner from the CPAN one.
our $InRepoRunner = 1;

use base 'Exporter';

use POSIX qw( SIGQUIT SIGKILL SIGTERM WNOHANG );
use File::Spec ();
use File::Path qw( make_path remove_tree );
use File::Temp qw( tempfile );
use List::Util qw( shuffle );
use Time::HiRes qw( sleep time );
use Scalar::Util qw( looks_like_number );
use IO::Socket::INET ();
use Carp qw( croak );
use Config ();

our $MainPid = $$;            # END acts only in the process that loaded us

# ---------------------------------------------------------------------------
# Environment knobs of the real Test::Nginx we do not implement: refuse
# rather than quietly run in a different mode.

for my $var (qw( TEST_NGINX_USE_HUP TEST_NGINX_USE_VALGRIND TEST_NGINX_USE_STAP
                 TEST_NGINX_CHECK_LEAK TEST_NGINX_BENCHMARK TEST_NGINX_USE_HTTP2
                 TEST_NGINX_USE_HTTP3 TEST_NGINX_USE_RR TEST_NGINX_NO_NGINX_MANAGER
                 TEST_NGINX_LD_PRELOAD TEST_NGINX_POSTPONE_OUTPUT
                 TEST_NGINX_INIT_BY_LUA TEST_NGINX_IGNORE_MISSING_DIRECTIVES ))
{
    if ($ENV{$var}) {
        die "Test::Nginx (in-repo runner, t/runner): environment variable $var "
            . "is not supported; unset it or use the real Test::Nginx from CPAN.\n";
    }
}

our $Verbose            = $ENV{TEST_NGINX_VERBOSE};
our $NoLongString;
our $FirstTime          = 1;
our $RepeatEach         = 1;
our $NoShuffle          = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Timeout            = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog   = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $ServerAddr         = '127.0.0.1';
our $ServerName         = 'localhost';
our $EventType          = $ENV{TEST_NGINX_EVENT_TYPE};
our $ReusePort          = $ENV{TEST_NGINX_REUSE_PORT};
our $LoadModules        = $ENV{TEST_NGINX_LOAD_MODULES};
our $Randomize          = $ENV{TEST_NGINX_RANDOMIZE};
our $WorkerUser         = $ENV{TEST_NGINX_WORKER_USER};
our $TestNginxSleep     = $ENV{TEST_NGINX_SLEEP} || 0.015;

if (defined $WorkerUser && $WorkerUser !~ /^\w[-\w]+(?:\s+\w[-\w]+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

our @CleanupHandlers;
our @TestCleanupHandlers;
our @BlockPreprocessors;
our @EnvToNginx;

our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $NoRootLocation       = 0;
our $ConfigPreamble       = '';

sub gen_rand_port (;$$);
sub bail_out (@);

# Port: TEST_NGINX_SERVER_PORT, else TEST_NGINX_PORT, else (unlike the real
# module, which falls back to 1984) a free loopback port picked here.
our $PortAutoPicked = 0;
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT};

srand($$ ^ int(time() * 1000));

if ($Randomize || !$ServerPort) {
    $ServerPort = gen_rand_port(1000);
    if (!defined $ServerPort) {
        die "Test::Nginx: cannot find a free listening port on $ServerAddr\n";
    }
    $PortAutoPicked = 1;
}

our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

our $ServRoot;
if ($Randomize) {
    $ServRoot = File::Spec->rel2abs("t/servroot_" . $ServerPort);
} else {
    $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
}
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');
our $CacheDir   = File::Spec->catfile($ServRoot, 'cache');

our $RunTestHelper;           # set by Test::Nginx::Socket
our $CheckErrorLog;           # set by Test::Nginx::Socket
our $CheckShutdownErrorLog;   # set by Test::Nginx::Socket

our $NginxVersion;
our $NginxRawVersion;
our $OpenSSLVersion;
our $PrevConfig;
our $PrevBlock;
our $ErrLogFilePos = 0;
our $RandPorts = {};
our $InSubprocess;
our $ChildPid;                # unused here; the real module's name
our %StartedPids;             # nginx master/single pids we started
our $CurrentPid;              # nginx serving the current block
our $BlockAborted;

our @EXPORT = qw(
    expand_env_in_text
    env_to_nginx
    is_str
    check_accum_error_log
    is_running
    $NoLongString
    no_long_string
    $ServerAddr
    server_addr
    $ServerName
    server_name
    parse_time
    verbose
    sleep_time
    bail_out
    add_cleanup_handler
    add_test_cleanup_handler
    access_log_data
    error_log_data
    setup_server_root
    write_config_file
    get_canon_version
    get_nginx_version
    trim
    show_all_chars
    parse_headers
    run_tests
    get_pid_from_pidfile
    $ServerPortForClient
    $ServerPort
    $NginxVersion
    $PidFile
    $ServRoot
    $ConfFile
    $RunTestHelper
    $CheckErrorLog
    $CheckShutdownErrorLog
    $RepeatEach
    add_block_preprocessor
    timeout
    worker_connections
    workers
    master_on
    master_off
    config_preamble
    repeat_each
    master_process_enabled
    log_level
    no_shuffle
    no_root_location
    html_dir
    server_root
    server_port
    server_port_for_client
    no_nginx_manager
    use_hup
    is_tcp_port_used
    abort_block
);

# ---------------------------------------------------------------------------
# Settings (same names and semantics as the real Test::Nginx::Util)

sub no_long_string () { $NoLongString = 1; }
sub no_shuffle ()     { $NoShuffle = 1; }
sub no_root_location () { $NoRootLocation = 1; }
sub check_accum_error_log () { $CheckAccumErrLog = 1; }
sub master_on ()  { $MasterProcessEnabled = 'on'; }
sub master_off () { $MasterProcessEnabled = 'off'; }
sub config_preamble ($) { $ConfigPreamble = shift; }
sub sleep_time { return $TestNginxSleep; }
sub verbose { return $Verbose; }
sub html_dir () { return $HtmlDir; }
sub server_root () { return $ServRoot; }

sub no_nginx_manager () {
    croak "no_nginx_manager() is not supported by the in-repo Test::Nginx runner";
}

sub use_hup () {
    croak "use_hup() is not supported by the in-repo Test::Nginx runner";
}

sub server_addr (@) {
    if (@_) { $ServerAddr = shift; } else { return $ServerAddr; }
}

sub server_name (@) {
    if (@_) { $ServerName = shift; } else { return $ServerName; }
}

sub timeout (@) {
    if (@_) { $Timeout = shift; } else { return $Timeout; }
}

sub server_port (@) {
    if (@_) { $ServerPort = shift; $PortAutoPicked = 0; } else { return $ServerPort; }
}

sub server_port_for_client (@) {
    if (@_) { $ServerPortForClient = shift; } else { return $ServerPortForClient; }
}

sub repeat_each (@) {
    if (@_) { $RepeatEach = shift; }
    return $RepeatEach;
}

sub worker_connections (@) {
    if (@_) { $WorkerConnections = shift; } else { return $WorkerConnections; }
}

sub workers (@) {
    if (@_) { $Workers = shift; } else { return $Workers; }
}

sub log_level (@) {
    if (@_) { $LogLevel = shift; } else { return $LogLevel; }
}

sub master_process_enabled (@) {
    if (@_) {
        $MasterProcessEnabled = shift() ? 'on' : 'off';
    } else {
        return $MasterProcessEnabled;
    }
}

sub env_to_nginx (@) {
    if (!@_) {
        croak "env_to_nginx: no arguments specified";
    }
    for my $v (@_) {
        if ($v !~ /^[A-Za-z_]/ || $v =~ /\n/) {
            croak "env_to_nginx: bad argument value: $v\n";
        }
        push @EnvToNginx, $v;
    }
}

sub add_block_preprocessor (&) {
    unshift @BlockPreprocessors, shift;
}

sub add_cleanup_handler ($) {
    unshift @CleanupHandlers, shift;
}

sub add_test_cleanup_handler ($) {
    unshift @TestCleanupHandlers, shift;
}

# ---------------------------------------------------------------------------
# Small helpers

sub parse_time ($) {
    my $tm = shift;
    if (defined $tm) {
        if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
            $tm = $tm / 1000;
        } elsif ($tm =~ s/([^_a-zA-Z])s$/$1/) {
            # seconds
        }
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef if !defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/gs;
    $s =~ s/\r/\\r/gs;
    $s =~ s/\t/\\t/gs;
    return $s;
}

sub get_canon_version (@) {
    sprintf "%d.%03d%03d", $_[0], $_[1], $_[2];
}

sub parse_headers ($) {
    my $s = shift;
    my %headers;
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            $headers{$line} = undef;
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            $val = '' if !defined $val;
            $headers{$key} = $val;
        }
    }
    return \%headers;
}

# Where a string is expected: a qr// is matched, a string compared, and a
# mismatch shows a diff (Text::Diff) instead of two long strings.
sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    if ($NoLongString) {
        return Test::More::is($got, $expected, $desc);
    }

    if ((!defined $got && !defined $expected)
        || (defined $got && defined $expected && $got eq $expected))
    {
        return Test::More::ok(1, $desc);
    }

    my $ok = Test::More::ok(0, $desc);

    if (!defined $got || !defined $expected) {
        Test::More::diag("         got: " . (defined $got ? "\"$got\"" : 'undef'));
        Test::More::diag("    expected: " . (defined $expected ? "\"$expected\"" : 'undef'));
        return $ok;
    }

    my $pos = 0;
    my $max = length($got) < length($expected) ? length($got) : length($expected);
    $pos++ while $pos < $max && substr($got, $pos, 1) eq substr($expected, $pos, 1);
    my $line = 1 + (substr($got, 0, $pos) =~ tr/\n//);
    my $from = $pos > 20 ? $pos - 20 : 0;
    my $esc = sub {
        my $s = shift;
        $s =~ s/([\\"])/\\$1/g;
        $s =~ s/\n/\\n/g;
        $s =~ s/\r/\\r/g;
        $s =~ s/\t/\\t/g;
        $s =~ s/([\x00-\x1f\x7f-\xff])/sprintf('\\x%02x', ord $1)/ge;
        return $s;
    };
    Test::More::diag(sprintf("         got: \"%s\"", $esc->(substr($got, $from, 60))));
    Test::More::diag(sprintf("    expected: \"%s\"", $esc->(substr($expected, $from, 60))));
    Test::More::diag(sprintf("    length got: %d, length expected: %d", length $got,
                             length $expected));
    Test::More::diag("    strings begin to differ at char " . ($pos + 1)
                     . " (line $line)");

    if (eval { require Text::Diff; 1 }) {
        my $diff = Text::Diff::diff(\$expected, \$got, {
            STYLE => 'Unified',
            FILENAME_A => 'expected',
            FILENAME_B => 'got',
        });
        Test::More::diag($diff) if $diff ne '';
    }

    return $ok;
}

sub can_run ($) {
    my ($cmd) = @_;
    if ($cmd =~ m{/}) {
        return (-f $cmd && -x $cmd) ? $cmd : undef;
    }
    for my $dir (split /\Q$Config::Config{path_sep}\E/, $ENV{PATH} || '') {
        next if $dir eq '';
        my $abs = File::Spec->catfile($dir, $cmd);
        return $abs if -f $abs && -x $abs;
    }
    return undef;
}

sub resolve_nginx_binary () {
    my $bin = can_run($NginxBinary);
    if (!$bin && !$ENV{TEST_NGINX_BINARY} && -x '/usr/sbin/nginx') {
        $bin = '/usr/sbin/nginx';
    }
    if (!$bin) {
        bail_out("Cannot find the nginx executable \"$NginxBinary\" "
                 . "(set TEST_NGINX_BINARY or PATH)");
    }
    $NginxBinary = $bin;
    return $bin;
}

sub get_nginx_version () {
    resolve_nginx_binary();
    my $out = `'$NginxBinary' -V 2>&1`;
    if (!defined $out || $? != 0) {
        $out //= '';
        bail_out("Failed to get the version of the nginx $NginxBinary: $out");
    }

    if ($out =~ m{built with OpenSSL (\d+)\.(\d+)\.(\d+)([a-z])?}s) {
        $OpenSSLVersion = get_canon_version($1, $2, $3);
    }

    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return get_canon_version($1, $2, $3);
    }

    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# ---------------------------------------------------------------------------
# Ports and processes

# undef when the kernel does not tell (no /proc)
sub listening_ports () {
    my %ports;
    my $seen;
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $file or next;
        $seen = 1;
        while (my $line = <$fh>) {
            if ($line =~ /^\s*\d+:\s+[0-9A-Fa-f]+:([0-9A-Fa-f]+)\s+[0-9A-Fa-f]+:[0-9A-Fa-f]+\s+0A\b/) {
                $ports{hex $1} = 1;
            }
        }
        close $fh;
    }
    return $seen ? \%ports : undef;
}

sub is_tcp_port_used ($) {
    my $port = shift;
    my $ports = listening_ports();
    return 1 if !$ports;    # cannot tell: assume nginx listens
    return $ports->{$port} ? 1 : 0;
}

sub gen_rand_port (;$$) {
    my ($tries, $used_ports) = @_;
    $tries //= 1000;
    $used_ports //= {};

    my $listening = listening_ports() || {};

    for (my $i = 0; $i < $tries; $i++) {
        # below the Linux ephemeral range (32768+), so outgoing connections
        # do not take it from under us
        my $port = 20000 + int(rand 12000);

        next if $used_ports->{$port} || $listening->{$port};

        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr,
            LocalPort => $port,
            Proto     => 'tcp',
            Listen    => 5,
            ReuseAddr => 1,
        );

        if (defined $sock) {
            close $sock;
            return $port;
        }
    }

    return undef;
}

# A pid counts as running unless it is gone or a zombie (the init of some
# containers does not reap the daemonised nginx).
sub is_running ($) {
    my $pid = shift;
    return 0 if !$pid || $pid !~ /^\d+$/;
    return 0 unless kill 0, $pid;
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh>;
        close $fh;
        if (defined $stat && $stat =~ /\)\s+(\S)/s) {
            return 0 if $1 eq 'Z' || $1 eq 'X';
        }
    }
    return 1;
}

sub is_nginx_pid ($) {
    my $pid = shift;
    return 0 unless is_running($pid);
    if (open my $fh, '<', "/proc/$pid/cmdline") {
        local $/;
        my $cmd = <$fh> // '';
        close $fh;
        return $cmd =~ /nginx/ ? 1 : 0;
    }
    return 1;   # no /proc: trust the pid file
}

# live (non-zombie) members of a process group
sub group_members ($) {
    my $pgid = shift;
    my @pids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh>;
        close $fh;
        next unless defined $stat;
        if ($stat =~ /\)\s+(\S)\s+\d+\s+(\d+)/s) {
            push @pids, $p if $2 == $pgid && $1 ne 'Z' && $1 ne 'X';
        }
    }
    closedir $dh;
    return @pids;
}

sub get_pid_from_pidfile ($) {
    my ($name) = @_;
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef if !defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

sub wait_gone ($$) {
    my ($pids, $secs) = @_;
    my $deadline = time + $secs;
    while (1) {
        my @alive = grep { is_running($_) } @$pids;
        return 1 if !@alive;
        return 0 if time >= $deadline;
        waitpid($_, WNOHANG) for @alive;
        sleep 0.02;
    }
}

# QUIT (graceful), then TERM, then KILL of the whole process group; returns
# once neither the pid nor any process of its group is left.
sub kill_process ($$) {
    my ($pid, $name) = @_;

    return if !is_running($pid);

    my $pgid = getpgrp($pid);
    my $own_group = (defined $pgid && $pgid == $pid);
    my @group = $own_group ? group_members($pid) : ($pid);
    @group = ($pid) if !@group;

    kill($ENV{TEST_NGINX_FAST_SHUTDOWN} ? SIGTERM : SIGQUIT, $pid);

    if (!wait_gone([$pid], timeout())) {
        warn "$name - timeout when waiting for the process $pid to exit; "
             . "sending SIGTERM\n";
        kill SIGTERM, $pid;
        if (!wait_gone([$pid], 1)) {
            warn "$name - WARNING: killing the process $pid with force\n";
            if ($own_group) { kill SIGKILL, -$pid } else { kill SIGKILL, $pid }
        }
    }

    # workers of a master_process on setup, or leftovers after SIGKILL
    if (!wait_gone(\@group, 1)) {
        kill SIGKILL, grep { is_running($_) } @group;
        wait_gone(\@group, 1);
    }

    delete $StartedPids{$pid};
}

sub stop_nginx ($) {
    my $name = shift;

    undef $CurrentPid;

    my $pid = get_pid_from_pidfile($name);
    if (defined $pid && is_nginx_pid($pid)) {
        kill_process($pid, $name);
    }

    # started by us but the pid file was removed or rewritten
    for my $p (keys %StartedPids) {
        if (is_nginx_pid($p)) {
            kill_process($p, $name);
        }
        delete $StartedPids{$p};
    }

    if (-f $PidFile) {
        unlink $PidFile;
    }
}

# ---------------------------------------------------------------------------
# Server root, configuration and nginx process

sub setup_server_root () {
    if (-d $ServRoot) {
        # Remove only what we create ourselves, so a mis-pointed
        # TEST_NGINX_SERVROOT cannot wipe real data.
        remove_tree($ConfDir, glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"),
                    $CacheDir, $HtmlDir, $LogDir);
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }

    make_path($ServRoot);
    for my $dir ($LogDir, $HtmlDir, $ConfDir) {
        mkdir $dir or bail_out("Failed to do mkdir $dir: $!");
    }

    my $index_file = "$HtmlDir/index.html";
    open my $out, '>', $index_file
        or bail_out("Can't open $index_file for writing: $!");
    print $out '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $out;
}

sub run_customer_init_script ($) {
    my $block = shift;
    my $name = $block->name;
    my $code = $block->post_setup_server_root;
    if ($code) {
        eval $code;
        if ($@) {
            bail_out("$name - post_setup_server_root failed: $@");
        }
    }
}

sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;

    my $name = $block->name;
    my $files = $block->user_files;
    return if !$files;

    if (!ref $files) {
        my $raw = $files;
        $files = [];
        my ($fname, $body, $date);
        for my $line (split /^/, $raw) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @$files, [$fname, $body, $date] if $fname;
                ($fname, $date) = ($1, $2);
                undef $body;
            } else {
                $body .= $line;
            }
        }
        push @$files, [$fname, $body, $date] if $fname;

    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: " . ref($files)
                 . ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body = '' if !defined $body;

        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";

        if ($path =~ m{(.*)/}) {
            my $dir = $1;
            if (!-d $dir) {
                make_path($dir) or bail_out("$name - Cannot create directory $dir");
            }
        }

        $body = expand_env_in_text($body, $name, $rand_ports);

        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!");
        binmode $out;
        print $out $body;
        close $out;

        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - Failed to run touch -t '$date' $path");
        }
    }
}

sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;

    return if !defined $text;

    $rand_ports ||= {};
    my $used_ports = {
        $ServerPort => 1,
        map { $_ => 1 } values %$rand_ports
    };

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            if (!defined $rand_ports->{$var}) {
                my $port = gen_rand_port(1000, $used_ports);
                if (!defined $port) {
                    bail_out("$name - Cannot find an available listening port number for $var.\n");
                }
                $rand_ports->{$var} = $port;
                $used_ports->{$port} = 1;
            }
            $val = $rand_ports->{$var};
        } else {
            if (!defined $ENV{$var}) {
                bail_out("$name - No environment $var defined.\n");
            }
            $val = $ENV{$var};
        }
        $val;
    }eg;

    return $text;
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;

    my $name = $block->name;
    my $http_config = $block->http_config;
    my $main_config = $block->main_config;
    my $post_main_config = $block->post_main_config;
    my $err_log_file = $block->error_log_file;
    my $server_name = $block->server_name;
    my $log_level = $block->log_level || $LogLevel;

    $config = '' if !defined $config;
    $http_config = expand_env_in_text($http_config, $name, $rand_ports) // '';
    $main_config = '' if !defined $main_config;

    if ($LoadModules) {
        my @modules = map { "load_module $_;" } grep { $_ } split /\s+/, $LoadModules;
        $main_config = join(" ", @modules, $main_config) if @modules;
    }

    $main_config = expand_env_in_text($main_config, $name, $rand_ports);
    $post_main_config = expand_env_in_text($post_main_config, $name, $rand_ports) // '';

    $err_log_file = $ErrLogFile if !$err_log_file;
    $err_log_file = expand_env_in_text($err_log_file, $name, $rand_ports);

    $server_name = $ServerName if !defined $server_name;
    (my $quoted_server_name = $server_name) =~ s/\\/\\\\/g;
    $quoted_server_name =~ s/'/\\'/g;

    my $listen_opts = $ReusePort ? ' reuseport' : '';

    my $temp_paths = '';
    $temp_paths .= " client_body_temp_path $ServRoot/client_body_temp;"
        unless $http_config =~ /\bclient_body_temp_path\b/;
    $temp_paths .= " proxy_temp_path $ServRoot/proxy_temp;"
        unless $http_config =~ /\bproxy_temp_path\b/;
    my $nginx_V = `'$NginxBinary' -V 2>&1` // '';
    for my $m (qw(fastcgi scgi uwsgi)) {
        $temp_paths .= " ${m}_temp_path $ServRoot/${m}_temp;"
            unless $nginx_V =~ /--without-http_${m}_module/
                   || $http_config =~ /\b${m}_temp_path\b/;
    }

    my $env_lines = '';
    for my $v (@EnvToNginx) {
        my $e = $v;
        $e = "'$e'" if $e =~ /\s/;
        $env_lines .= "env $e;\n";
    }

    my $root_location = '';
    if (!$NoRootLocation) {
        $root_location = <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    }

    my $events_extra = $EventType ? "    use $EventType;\n" : '';

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;\n";
    } elsif ($> == 0) {
        $user = "user root;\n";
    }

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!");

    print $out <<_EOC_;
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $log_level;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
$env_lines
$main_config

http {
    access_log $AccLogFile;$temp_paths

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerAddr:$ServerPort$listen_opts;
        server_name     '$quoted_server_name';
        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
$events_extra}

env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_

    close $out;
}

# Runs the nginx binary (which daemonises); returns ($status, $stderr).
sub run_nginx_binary () {
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    if (!defined $NginxVersion || $NginxVersion >= 1.019005) {
        push @cmd, '-e', $ErrLogFile;    # startup errors go to error.log too
    }

    warn "starting nginx: @cmd\n" if $Verbose;

    my ($fh, $errfile) = tempfile('test-nginx-stderr-XXXXXX', TMPDIR => 1, UNLINK => 1);
    close $fh;

    my $pid = fork();
    if (!defined $pid) {
        bail_out("fork() failed: $!");
    }

    if ($pid == 0) {
        $InSubprocess = 1;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $errfile;
        # the daemon must not hold pipes of whoever runs the tests (prove's,
        # a CI job's) open, or they would wait for it
        if (opendir my $dh, '/proc/self/fd') {
            my @fds = grep { /^\d+$/ && $_ > 2 } readdir $dh;
            closedir $dh;
            POSIX::close($_) for @fds;
        }
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    waitpid($pid, 0);
    my $status = $?;

    my $stderr = '';
    if (open my $in, '<', $errfile) {
        local $/;
        $stderr = <$in> // '';
        close $in;
    }
    unlink $errfile;

    return ($status, $stderr);
}

# After a successful start: the daemon has written its pid file and
# listens on our port.
sub wait_for_nginx ($) {
    my $name = shift;
    my $deadline = time + ($Timeout > 5 ? $Timeout : 5);
    my $pid;

    while (time < $deadline) {
        $pid = get_pid_from_pidfile($name);
        if (defined $pid) {
            $StartedPids{$pid} = 1;
            if (!is_running($pid)) {
                return (0, "nginx (pid $pid) exited right after starting");
            }
            if (is_tcp_port_used($ServerPort)) {
                $CurrentPid = $pid;
                return (1, undef);
            }
        }
        sleep 0.01;
    }

    return (0, defined $pid
               ? "nginx (pid $pid) does not listen on $ServerAddr:$ServerPort"
               : "nginx wrote no pid file $PidFile");
}

sub tail_error_log ($) {
    my $n = shift;
    open my $in, '<', $ErrLogFile or return '';
    my @lines = <$in>;
    close $in;
    splice @lines, 0, @lines - $n if @lines > $n;
    return join '', @lines;
}

# ---------------------------------------------------------------------------
# Logs

sub error_log_data () {
    # give nginx a moment for what it logs after closing the connection
    sleep $TestNginxSleep * 3;

    my @lines;

    if (open my $in, '<', $ErrLogFile) {
        if (!$CheckAccumErrLog && $ErrLogFilePos > 0) {
            seek $in, $ErrLogFilePos, 0;
        }
        @lines = <$in>;
        if (!$CheckAccumErrLog) {
            $ErrLogFilePos = tell($in);
        }
        close $in;
    }

    return \@lines;
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or die "open $AccLogFile failed: $!";
    my @lines = <$in>;
    close $in;
    return \@lines;
}

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;
    return if !defined $block;
    undef $PrevBlock;

    if (defined($block->shutdown_error_log)
        || defined($block->no_shutdown_error_log))
    {
        $CheckShutdownErrorLog->($block, $ENV{TEST_NGINX_NO_CLEAN} ? 1 : 0);
    }
}

# ---------------------------------------------------------------------------
# Test driver

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# Fails the current block with a message and skips the rest of it.
sub abort_block ($$) {
    my ($name, $msg) = @_;
    Test::More::fail("$name - $msg");
    die "TEST_NGINX_ABORT_BLOCK\n";
}

sub cleanup_test ($) {
    my $block = shift;
    for my $hdl (@TestCleanupHandlers) {
        $hdl->($block);
    }
}

sub cleanup () {
    for my $hdl (@CleanupHandlers) {
        $hdl->();
    }
}

# Sections of the real Test::Nginx::Socket this runner does not implement.
our %UnsupportedSections = map { $_ => 1 } qw(
    http2 http3 curl_protocol curl_options curl_error
    stap stap_out stap_out_like stap_out_unlike
    udp_listen udp_reply udp_reply_delay udp_query
    tcp_listen tcp_no_close tcp_reply_delay tcp_reply tcp_query tcp_query_len
    tcp_query_auto_timeout tcp_shutdown tcp_shutdown_delay
    reload_fails skip_nginx2 skip_openssl skip_slave todo_nginx charset
    write_resp_body_file quic_max_idle_timeout no_mockeagain
);

# Sections of the real Test::Nginx::Socket this runner implements (or, for
# the last line, accepts as the no-ops they are here), and Test::Base's own.
our %KnownSections = map { $_ => 1 } qw(
    main_config post_main_config http_config config server_name init
    post_setup_server_root user_files request request_eval raw_request
    raw_request_middle_delay pipelined_requests more_headers error_code
    error_code_like response_headers response_headers_like
    raw_response_headers_like raw_response_headers_unlike response_body
    response_body_eval response_body_like response_body_unlike
    response_body_filters response_body_json_sort error_log no_error_log
    grep_error_log grep_error_log_out access_log no_access_log
    shutdown_error_log no_shutdown_error_log log_level error_log_file
    must_die timeout wait abort shutdown ignore_response http09
    server_addr_for_client skip_eval skip_nginx todo
    ONLY SKIP LAST
    no_check_leak suppress_stderr curl no_http2 no_http3
);

# A section neither runner knows is, to the real one, data nobody reads: a
# misspelt "--- respone_body" would assert nothing and pass.  So a section
# that is not Test::Nginx's must be one a suite's block preprocessor reads,
# and the suite declares it in %BlockSections::Registered (t/lib's
# BlockSections.pm, which the real runner never consults).
sub check_known_sections ($$) {
    my ($block, $name) = @_;

    no warnings 'once';
    my $order = $block->{_section_order} ? $block->{_section_order}[0] : [];
    my @unknown = grep {
        !$KnownSections{$_} && !$UnsupportedSections{$_}
        && !$BlockSections::Registered{$_}
    } @$order;

    return if !@unknown;

    abort_block($name,
        "unknown section(s) " . join(', ', map { "--- $_" } @unknown)
        . ": not a Test::Nginx::Socket section (misspelt?); a section of"
        . " the suite's own, read by its block preprocessor, is declared"
        . " with \"use BlockSections qw(" . join(' ', @unknown) . ");\"");
}

# Sections in which the real module does NOT expand $TEST_NGINX_*: a literal
# there would be sent or matched as is (and, in no_error_log or
# response_body_unlike, pass silently), so refuse it.
our @NoEnvSections = qw(
    request raw_request more_headers error_code response_headers
    response_headers_like response_body_like response_body_unlike
    error_log no_error_log grep_error_log access_log no_access_log
);

sub check_supported_sections ($) {
    my $block = shift;
    my $name = $block->name;

    my @bad = grep { exists $block->{$_} } sort keys %UnsupportedSections;
    if (@bad) {
        abort_block($name, "section(s) " . join(', ', map { "--- $_" } @bad)
                           . " not supported by the in-repo Test::Nginx runner");
    }

    for my $section (@NoEnvSections) {
        next if !exists $block->{$section};
        my $value = $block->$section;
        for my $v (ref $value eq 'ARRAY' ? @$value : ($value)) {
            next if !defined $v || ref $v;
            if ($v =~ /\$(TEST_NGINX_[_A-Z0-9]+)/) {
                abort_block($name,
                    "--- $section contains \$$1, which Test::Nginx does not expand in "
                    . "this section; use \"--- $section eval\" with \$ENV{$1}");
            }
        }
    }
}

sub run_tests () {
    $NginxVersion = get_nginx_version();

    if (!defined $ENV{TEST_NGINX_SERVER_PORT}) {
        $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
    }

    for my $block ($NoShuffle ? Test::Base::blocks() : shuffle Test::Base::blocks()) {
        my $ok = eval {
            check_known_sections($block, "$0 " . $block->name);
            1;
        };
        if (!$ok) {
            die $@ unless $@ eq "TEST_NGINX_ABORT_BLOCK\n";
            next;
        }

        for my $hdl (@BlockPreprocessors) {
            $hdl->($block);
        }

        $block->set_value("name", $0 . " " . $block->name);

        $ok = eval {
            check_supported_sections($block);
            run_test($block);
            1;
        };
        if (!$ok) {
            die $@ unless $@ eq "TEST_NGINX_ABORT_BLOCK\n";
        }

        cleanup_test($block);

        $PrevBlock = $block;
    }

    cleanup();
}

sub nginx_version_matches ($$$$$) {
    my ($op, $v1, $v2, $v3, $name) = @_;
    my $ver = get_canon_version($v1, $v2, $v3);
    return 1 if !defined $NginxVersion && $op =~ /^</;
    return 0 if !defined $NginxVersion;
    return $op eq '<'  ? $NginxVersion <  $ver
         : $op eq '<=' ? $NginxVersion <= $ver
         : $op eq '>'  ? $NginxVersion >  $ver
         : $op eq '>=' ? $NginxVersion >= $ver
         : bail_out("$name - bad version operator $op");
}

sub start_nginx_for_block ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    undef $CurrentPid;

    my $tries = 0;
    while (1) {
        write_config_file($block, $config, $rand_ports);

        my ($status, $stderr) = run_nginx_binary();

        if ($status == 0) {
            print STDERR $stderr if $stderr ne '';
            my ($ok, $err) = wait_for_nginx($name);
            return 1 if $ok;
            abort_block($name, "nginx failed to start: $err\n"
                               . tail_error_log(20));
        }

        # the port got taken meanwhile: retry, on a new one if ours was
        # picked automatically
        if ($stderr =~ /Address already in use/ && ++$tries < 5) {
            warn "$name - $stderr";
            stop_nginx($name);
            if ($PortAutoPicked) {
                my $port = gen_rand_port(1000);
                if (defined $port) {
                    warn "$name - retrying on port $port\n";
                    $ENV{TEST_NGINX_SERVER_PORT} = $port
                        if $ENV{TEST_NGINX_SERVER_PORT}
                           && $ENV{TEST_NGINX_SERVER_PORT} eq $ServerPort;
                    $ServerPortForClient = $port
                        if $ServerPortForClient eq $ServerPort;
                    $ServerPort = $port;
                    $config = expand_env_in_text($block->config, $name, $rand_ports);
                }
            }
            sleep 0.2 * $tries;
            next;
        }

        my $code = $status == -1 ? 'exec failed' : 'exit code ' . ($status >> 8);
        abort_block($name, "Cannot start nginx using \"$NginxBinary -p $ServRoot/ "
                           . "-c $ConfFile\" ($code):\n$stderr");
    }
}

sub run_must_die ($$) {
    my ($block, $must_die) = @_;
    my $name = $block->name;

    for (my $i = 0; $i < $RepeatEach; $i++) {
        # as with the real runner, the error_log checks see error.log only
        # (nginx writes there with -e, without stderr's "nginx: " prefix)
        my ($status) = run_nginx_binary();

        my $exit_code = $status == -1 ? undef : $status >> 8;
        my $coredump = $status != -1 && ($status & 128);

        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($coredump) {
            Test::More::fail("$name - nginx core dumped");
        } elsif (looks_like_number($must_die)) {
            Test::More::is($must_die, $exit_code, "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        $CheckErrorLog->($block, undef, 0, $i, 0);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
            for (1 .. 100) {
                last if -f $PidFile;
                sleep 0.02;
            }
            my $pid = get_pid_from_pidfile($name);
            $StartedPids{$pid} = 1 if defined $pid;
            stop_nginx($name);
        }
    }
}

sub run_test ($) {
    my $block = shift;

    return if defined $block->SKIP;

    my $name = $block->name;

    my $rand_ports = {};
    $RandPorts = $rand_ports;

    my $config = $block->config;
    $config = expand_env_in_text($config, $name, $rand_ports);

    my $must_die = $block->must_die;
    my $should_restart = 1;

    if (!defined $config) {
        # like the real module: reuse the nginx of the previous block
        if (!defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could not get previous one.");
        }
        $should_restart = 0;
    } else {
        $PrevConfig = $config;
    }

    my ($should_skip, $tests_to_skip, $skip_reason);
    my ($should_todo, $todo_reason);

    my $skip_eval = $block->skip_eval;
    if (defined $skip_eval) {
        if ($skip_eval =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $tests_to_skip = $1;
            $skip_reason = "skip_eval";
            my $code = $2;
            $should_skip = eval $code;
            if ($@) {
                bail_out("$name - skip_eval - failed to eval the Perl code \"$code\": $@");
            }
        } else {
            bail_out("$name - Invalid --- skip_eval spec: $skip_eval");
        }
    }

    my $skip_nginx = $block->skip_nginx;
    if (defined $skip_nginx) {
        if ($skip_nginx =~ m{^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$}) {
            $tests_to_skip = $1;
            my ($op, $v1, $v2, $v3) = ($2, $3, $4, $5);
            $skip_reason = $6 || "nginx version $op $v1.$v2.$v3";
            $should_skip = 1 if nginx_version_matches($op, $v1, $v2, $v3, $name);
        } else {
            bail_out("$name - Invalid --- skip_nginx spec: $skip_nginx");
        }
    }

    $skip_reason = "various reasons" if !defined $skip_reason;

    my $todo = $block->todo;
    if (defined $todo) {
        if ($todo =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $should_todo = 1;
            $tests_to_skip = $1;
            $todo_reason = $2;
        } else {
            bail_out("$name - Invalid --- todo spec: $todo");
        }
    }
    $todo_reason = "various reasons" if !defined $todo_reason;

    if (!$should_skip && $should_restart) {
        stop_nginx($name);
        check_prev_block_shutdown_error_log();

        setup_server_root();
        run_customer_init_script($block);
        write_user_files($block, $rand_ports);

        $ErrLogFilePos = 0;

        if (defined $must_die) {
            write_config_file($block, $config, $rand_ports);
            run_must_die($block, $must_die);
            return;
        }

        start_nginx_for_block($block, $config, $rand_ports);
    }

    my $init = $block->init;
    if ($init) {
        eval $init;
        if ($@) {
            bail_out("$name - init failed: $@");
        }
    }

    $ErrLogFilePos = 0;

    for (my $i = 1; $i <= $RepeatEach; $i++) {
        warn "Run the test block $name ...\n" if $Verbose;

        if ($i > 1 && !$should_skip) {
            write_user_files($block, $rand_ports);
        }

        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $skip_reason", $tests_to_skip);
            }

        } elsif ($should_todo) {
            TODO: {
                Test::More::todo_skip("$name - $todo_reason", $tests_to_skip);
            }

        } else {
            $RunTestHelper->($block, 0, $i - 1);
        }
    }

    # stricter than the real module: an nginx that died while serving the
    # block (a crash in a log handler, say) fails it even if the checks
    # passed
    if (defined $CurrentPid && !$should_skip) {
        sleep $TestNginxSleep;
        if (!is_running($CurrentPid)) {
            Test::More::fail("$name - nginx (pid $CurrentPid) is not running any "
                             . "more: it crashed or exited");
            Test::More::diag(tail_error_log(30));
            undef $CurrentPid;
        }
    }

    if (my $total_errlog = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile) {
            if (open my $out, '>>', $total_errlog) {
                print $out "\n=== $0 $name\n";
                if (open my $in, '<', $ErrLogFile) {
                    print $out $_ while <$in>;
                    close $in;
                }
                close $out;
            }
        }
    }
}

# Make sure an interrupted or dying test leaves no nginx behind: END blocks
# do not run on a fatal signal unless we turn it into an exit.
for my $sig (qw(INT TERM HUP)) {
    if (!$SIG{$sig} || $SIG{$sig} eq 'DEFAULT') {
        $SIG{$sig} = sub { exit(128 + ($sig eq 'INT' ? 2 : $sig eq 'TERM' ? 15 : 1)) };
    }
}

END {
    if (!$InSubprocess && defined $MainPid && $$ == $MainPid && defined $PidFile) {
        local $?;

        cleanup();

        if (!$ENV{TEST_NGINX_NO_CLEAN}) {
            stop_nginx('END');
        }

        check_prev_block_shutdown_error_log();

        if ($Randomize && defined $ServRoot && -d $ServRoot
            && $ServRoot =~ m{/t/servroot_\d+$} && !$ENV{TEST_NGINX_NO_CLEAN})
        {
            remove_tree($ServRoot);
        }
    }
}

1;
