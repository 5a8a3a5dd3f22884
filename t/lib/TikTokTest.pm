package TikTokTest;

# The project's test harness.  `use TikTokTest;` (before Test::Nginx::Socket)
# starts, for this test file only:
#
#   - a throwaway PostgreSQL cluster on a free loopback port (initdb runs as
#     the `postgres` system user when we are root: initdb refuses root), with
#     sql/ applied;
#   - the TikTok sandbox (t/sandbox) over HTTPS with a CA made for this run;
#
# and sets the environment nginx and the suites read.  Everything is stopped
# and removed when the test process ends, also after a failure.  It works the
# same under this repo's runner (t/runner) and the real Test::Nginx.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use BlockSections;
use TikTokSandbox;

our $Root = abs_path(dirname(__FILE__) . '/../..');

our $PgBin = $ENV{TIKTOK_PG_BIN} || '/usr/lib/postgresql/15/bin';
our $ClientKey = 'sbx_client_key_123';
our $RedirectUri = 'https://app.example.com/api/tiktok/callback';
our $ReturnUrl = 'https://app.example.com/settings/integrations';

our ($Tmp, $PgPort, $PgData, $PgDsn, $Sandbox);
our ($MainConfig, $HttpConfig, $ApiLocation);

my $started;
my $owner_pid = $$;


sub import {
    my ($class, @opts) = @_;

    return if $started++;

    setup();

    # export the configuration snippets to the test file
    my $caller = caller;
    no strict 'refs';
    *{"${caller}::MainConfig"} = \$MainConfig;
    *{"${caller}::HttpConfig"} = \$HttpConfig;
    *{"${caller}::ApiLocation"} = \$ApiLocation;
}


sub setup {
    $Tmp = tempdir('tiktok-test-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $Tmp;

    $ENV{TIKTOK_CLIENT_SECRET} = 'sbx-secret-' . random_hex(16);
    $ENV{TIKTOK_TOKEN_KEY} = random_hex(32);
    delete $ENV{TIKTOK_TOKEN_KEY_PREVIOUS};

    pg_init();
    pg_start();
    pg_migrate();

    $Sandbox = TikTokSandbox->start(
        dir => "$Tmp/sandbox",
        client_key => $ClientKey,
        client_secret => $ENV{TIKTOK_CLIENT_SECRET},
        redirect_uris => [$RedirectUri],
    );

    my $sb_port = $Sandbox->port;
    my $ca = $Sandbox->ca_file;

    $ENV{TEST_NGINX_BINARY} ||= '/usr/sbin/nginx';
    $ENV{TEST_NGINX_SERVROOT} ||= "$Tmp/servroot";
    $ENV{TEST_NGINX_TIKTOK_MODULE} ||= "$Root/build/ngx_http_tiktok_module.so";
    $ENV{TEST_NGINX_PG_DSN} = $PgDsn;
    $ENV{TEST_NGINX_PG_PORT} = $PgPort;
    $ENV{TEST_NGINX_SANDBOX_PORT} = $sb_port;
    $ENV{TEST_NGINX_SANDBOX_CA} = $ca;

    my $module = $ENV{TEST_NGINX_TIKTOK_MODULE};

    $MainConfig = <<"EOF";
load_module $module;
env TIKTOK_CLIENT_SECRET;
env TIKTOK_TOKEN_KEY;
env TIKTOK_TOKEN_KEY_PREVIOUS;
EOF

    $HttpConfig = <<"EOF";
    tiktok_client_key          $ClientKey;
    tiktok_client_secret_env   TIKTOK_CLIENT_SECRET;
    tiktok_token_key_env       TIKTOK_TOKEN_KEY TIKTOK_TOKEN_KEY_PREVIOUS;
    tiktok_redirect_uri        $RedirectUri;
    tiktok_app_return_url      $ReturnUrl;
    tiktok_postgres            "$PgDsn" pool=4 timeout=5s;
    tiktok_cache_zone          tiktok_cache:1m ttl=1h;
    tiktok_api_base_url        https://localhost:$sb_port;
    tiktok_authorize_url       https://localhost:$sb_port/v2/auth/authorize/;
    tiktok_ca_certificate      $ca;
    tiktok_pull_url_prefixes   https://media.example.com/;
    tiktok_scheduler           off;
EOF

    $ApiLocation = <<"EOF";
    location /_tiktok_api/ {
        internal;
        proxy_pass https://127.0.0.1:$sb_port/;
        proxy_ssl_server_name on;
        proxy_ssl_name localhost;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $ca;
    }
EOF
}


# Called by a suite after `use Test::Nginx::Socket`: blocks get the module's
# main_config and the shared http_config unless they bring their own, and a
# `--- sql` section runs as the database superuser before the request.
# Options give every block of the suite more: http => lines added to the
# shared http_config, config, more_headers, no_error_log => that section
# (each only where the block has none of its own).
sub defaults {
    my (%o) = @_;

    my $add = main->can('add_block_preprocessor')
        or die "defaults() needs Test::Nginx::Socket loaded first\n";

    my $http = $HttpConfig . ($o{http} // '');

    BlockSections->register('sql');

    $add->(sub {
        my $block = shift;

        if (!defined $block->main_config) {
            $block->set_value('main_config', $MainConfig);
        }

        if (!defined $block->http_config) {
            $block->set_value('http_config', $http);
        }

        for my $s (qw(config more_headers no_error_log)) {
            if (defined $o{$s} && !defined $block->$s) {
                $block->set_value($s, $o{$s});
            }
        }

        if (defined $block->sql) {
            psql($block->sql);
        }
    });
}


sub random_hex {
    my ($bytes) = @_;

    open my $fh, '<:raw', '/dev/urandom' or die "urandom: $!";
    read($fh, my $buf, $bytes) == $bytes or die "urandom: short read";
    close $fh;

    return unpack('H*', $buf);
}


# A free loopback port below the kernel's ephemeral range: a client that
# connects to a port in that range while nothing listens there (PostgreSQL
# stopped in a restart test) can be handed that very port as its source and
# connect to itself, which then keeps the server from binding it again.
sub free_port {
    for (1 .. 200) {
        my $port = 20000 + int(rand(12000));
        my $s = IO::Socket::INET->new(
            Listen => 1, LocalAddr => '127.0.0.1', LocalPort => $port,
            Proto => 'tcp', ReuseAddr => 1,
        ) or next;
        close $s;
        return $port;
    }

    die "cannot find a free port\n";
}


sub wait_port {
    my ($port, $timeout) = @_;

    my $deadline = time + ($timeout || 10);

    while (time < $deadline) {
        my $s = IO::Socket::INET->new(
            PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
        );
        if ($s) {
            close $s;
            return 1;
        }
        sleep 0.05;
    }

    return 0;
}


# Runs a command as the postgres system user when we are root.
sub as_postgres {
    my @cmd = @_;

    return @cmd if $> != 0;
    return ('runuser', '-u', 'postgres', '--', @cmd);
}


sub run_cmd {
    my @cmd = @_;

    my $out = `@{[ join ' ', map { shell_quote($_) } @cmd ]} 2>&1`;
    if ($? != 0) {
        die "command failed ($?): @cmd\n$out";
    }

    return $out;
}


sub shell_quote {
    my ($s) = @_;
    return $s if $s =~ /^[A-Za-z0-9_\/.=:,+-]+$/;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}


sub pg_init {
    $PgData = "$Tmp/pg-run/data";
    $PgPort = free_port();
    $PgDsn = "host=127.0.0.1 port=$PgPort dbname=tiktok user=tiktok_app";

    make_path("$Tmp/pg-run");
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres')
            or die "no postgres system user (is postgresql-15 installed?)\n";
        chown $uid, $gid, "$Tmp/pg-run";
    }

    run_cmd(as_postgres("$PgBin/initdb", '-D', $PgData, '-U', 'postgres',
                        '-A', 'trust', '-E', 'UTF8', '--locale=C',
                        '--no-sync', '--no-instructions'));

    pg_start();
    psql('CREATE DATABASE tiktok', db => 'postgres');
}


sub pg_start {
    return if pg_running();

    run_cmd(as_postgres("$PgBin/pg_ctl", '-D', $PgData, '-w', '-t', '30',
                        '-l', "$Tmp/pg-run/postgres.log",
                        '-o', "-p $PgPort -k $Tmp/pg-run"
                              . " -c listen_addresses=127.0.0.1"
                              . " -c fsync=off -c synchronous_commit=off"
                              . " -c full_page_writes=off"
                              . " -c max_connections=300",
                        'start'));
}


sub pg_stop {
    my ($mode) = @_;

    return unless pg_running();

    run_cmd(as_postgres("$PgBin/pg_ctl", '-D', $PgData, '-w', '-t', '30',
                        '-m', $mode || 'fast', 'stop'));
}


sub pg_running {
    return $PgData && -f "$PgData/postmaster.pid";
}


sub pg_migrate {
    run_cmd("$Root/scripts/migrate.sh",
            "host=127.0.0.1 port=$PgPort dbname=tiktok user=postgres");
}


# psql($sql, user => 'postgres', db => 'tiktok'): runs SQL, dies on error,
# returns psql's unaligned, tuples-only output.
sub psql {
    my ($sql, %opt) = @_;

    my $user = $opt{user} || 'postgres';
    my $db = $opt{db} || 'tiktok';

    my @cmd = ('psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
               '-h', '127.0.0.1', '-p', $PgPort, '-U', $user, '-d', $db);

    open my $fh, '|-', join(' ', map { shell_quote($_) } @cmd)
                       . " > $Tmp/psql.out 2>&1"
        or die "psql: $!";
    print $fh $sql;
    close $fh;
    my $rc = $?;

    open my $in, '<', "$Tmp/psql.out" or die "psql.out: $!";
    local $/;
    my $out = <$in> // '';
    close $in;

    if ($rc != 0 && !$opt{may_fail}) {
        die "psql failed: $out\nSQL: $sql\n";
    }

    $out =~ s/\n+\z//;
    return wantarray ? ($out, $rc) : $out;
}


# Starts psql in the background, reading SQL from us line by line; returns
# a handle whose ->send($sql) and ->close() drive it.  Used to hold locks.
sub psql_session {
    my (%opt) = @_;

    my $user = $opt{user} || 'postgres';
    my @cmd = ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
               '-h', '127.0.0.1', '-p', $PgPort, '-U', $user, '-d', 'tiktok');

    my $pid = open my $fh, '|-', join(' ', map { shell_quote($_) } @cmd)
                                 . " > $Tmp/psql-session.out 2>&1"
        or die "psql: $!";
    select((select($fh), $| = 1)[0]);

    return bless { fh => $fh, pid => $pid }, 'TikTokTest::PsqlSession';
}


sub seed_account {
    my (%a) = @_;

    my $user = $a{user_id} or die "seed_account needs user_id";
    my $q = sub { my $v = shift; return 'NULL' unless defined $v;
                  $v =~ s/'/''/g; return "'$v'" };

    psql(sprintf(<<'EOF',
INSERT INTO tiktok.accounts (user_id, open_id, display_name, avatar_url,
    scopes, access_token_enc, refresh_token_enc, access_expires_at,
    refresh_expires_at, needs_reconnect, key_id)
VALUES (%s, %s, %s, %s, string_to_array(%s, ','), '\x00', '\x00',
    now() + interval '2 hours', %s::timestamptz, %s, '\x00')
ON CONFLICT (user_id) DO UPDATE SET open_id = EXCLUDED.open_id,
    display_name = EXCLUDED.display_name, avatar_url = EXCLUDED.avatar_url,
    scopes = EXCLUDED.scopes, refresh_expires_at = EXCLUDED.refresh_expires_at,
    needs_reconnect = EXCLUDED.needs_reconnect;
EOF
        $q->($user), $q->($a{open_id} // "open-$user"),
        $q->($a{display_name}), $q->($a{avatar_url}),
        $q->($a{scopes} // 'user.info.basic,video.list,video.publish'),
        $q->($a{refresh_expires_at} // '2030-01-02T03:04:05Z'),
        $a{needs_reconnect} ? 'true' : 'false'));
}


# The crypto CLI (t/unit/tiktok_seal.c), as the module seals tokens.
sub unit_dir { $ENV{TIKTOK_UNIT_DIR} || "$Root/build/unit" }

sub seal {
    my ($key, $user, $column, $plain) = @_;
    my $hex = run_cmd(unit_dir() . '/tiktok_seal', 'seal', $key, $user,
                      $column, $plain);
    chomp $hex;
    return $hex;
}

sub key_id {
    my ($key) = @_;
    my $id = run_cmd(unit_dir() . '/tiktok_seal', 'keyid', $key);
    chomp $id;
    return $id;
}

# connect_account($user, access => '2 hours', refresh => '180 days',
#                 scope => 'user.info.basic,video.list', open_id => ...):
# an account row holding tokens the sandbox really issued, sealed with the
# current key, as /callback would store it.  Returns the token answer.
sub connect_account {
    my ($user, %o) = @_;

    my $scope = $o{scope} // 'user.info.basic,video.list,video.publish';
    my $t = $Sandbox->mint_tokens({
        open_id => $o{open_id} // $Sandbox->default_open_id,
        scope => $scope });
    my $key = $ENV{TIKTOK_TOKEN_KEY};

    (my $u = $user) =~ s/'/''/g;

    psql(sprintf(<<'SQL',
INSERT INTO tiktok.accounts (user_id, open_id, scopes, access_token_enc,
    refresh_token_enc, access_expires_at, refresh_expires_at, key_id)
VALUES ('%s', '%s', string_to_array('%s', ','), '\x%s', '\x%s',
    now() + interval '%s', now() + interval '%s', '\x%s')
ON CONFLICT (user_id) DO UPDATE SET open_id = EXCLUDED.open_id,
    scopes = EXCLUDED.scopes, access_token_enc = EXCLUDED.access_token_enc,
    refresh_token_enc = EXCLUDED.refresh_token_enc,
    access_expires_at = EXCLUDED.access_expires_at,
    refresh_expires_at = EXCLUDED.refresh_expires_at, needs_reconnect = false,
    refresh_lock_until = NULL, refresh_lock_owner = NULL
SQL
        $u, $t->{open_id}, $scope,
        seal($key, $user, 'access_token', $t->{access_token}),
        seal($key, $user, 'refresh_token', $t->{refresh_token}),
        $o{access} // '2 hours', $o{refresh} // '180 days', key_id($key)));

    return $t;
}


sub cleanup {
    return unless $$ == $owner_pid;
    return unless $Tmp;

    eval { $Sandbox->stop if $Sandbox };
    eval { pg_stop('immediate') };

    if ($ENV{TIKTOK_TEST_KEEP}) {
        print STDERR "# kept $Tmp\n";
    } else {
        remove_tree($Tmp);
    }

    $Tmp = undef;
}


END {
    my $rc = $?;
    cleanup();
    $? = $rc;
}

# exit, so the END blocks run in order: nginx instances are stopped first,
# then PostgreSQL and the sandbox, then the files go
$SIG{INT} = $SIG{TERM} = sub { exit 130 };


package TikTokTest::PsqlSession;

sub send {
    my ($self, $sql) = @_;
    my $fh = $self->{fh};
    print $fh $sql, "\n";
}

sub close {
    my ($self) = @_;
    return unless $self->{fh};
    close $self->{fh};
    $self->{fh} = undef;
}

sub DESTROY { $_[0]->close }


# An nginx of our own for multi-step Perl tests: several instances, several
# workers, restarts.
package TikTokTest::Nginx;

use File::Path qw(make_path);
use HTTP::Tiny;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my @instances;

sub new {
    my ($class, %o) = @_;

    my $self = bless {
        name => $o{name} || 'nginx',
        workers => $o{workers} || 1,
        main => $o{main} // $TikTokTest::MainConfig,
        http => $o{http} // $TikTokTest::HttpConfig,
        server => $o{server} // '',
        api_location => $o{api_location} // $TikTokTest::ApiLocation,
        log_level => $o{log_level} || 'info',
        port => $o{port} || TikTokTest::free_port(),
    }, $class;

    $self->{dir} = "$TikTokTest::Tmp/$self->{name}";
    make_path("$self->{dir}/conf", "$self->{dir}/logs");

    push @instances, $self;

    return $self;
}

sub port { $_[0]{port} }
sub dir { $_[0]{dir} }

sub write_conf {
    my ($self) = @_;

    my $conf = <<"EOF";
daemon on;
master_process on;
worker_processes $self->{workers};
error_log logs/error.log $self->{log_level};
pid logs/nginx.pid;
$self->{main}
events {
    worker_connections 4096;
}
http {
    access_log logs/access.log;
    default_type text/plain;
    client_body_temp_path $self->{dir}/body;
    tiktok_upload_spool $self->{dir}/spool;
$self->{http}
    server {
        listen 127.0.0.1:$self->{port};
        server_name localhost;
$self->{api_location}
$self->{server}
    }
}
EOF

    open my $fh, '>', "$self->{dir}/conf/nginx.conf" or die $!;
    print $fh $conf;
    close $fh;
}

sub start {
    my ($self) = @_;

    $self->write_conf;

    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $out = `$bin -p $self->{dir}/ -c conf/nginx.conf 2>&1`;
    die "nginx failed to start: $out\n" if $? != 0;

    TikTokTest::wait_port($self->{port}, 10)
        or die "nginx did not listen on $self->{port}\n";

    $self->{running} = 1;
    return $self;
}

sub pid {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/nginx.pid" or return undef;
    my $pid = <$fh>;
    close $fh;
    chomp $pid if defined $pid;
    return $pid;
}

sub stop {
    my ($self, $signal) = @_;

    return unless $self->{running};
    $self->{running} = 0;

    my $pid = $self->pid or return;
    kill($signal || 'QUIT', $pid);

    my $deadline = time + 10;
    while (time < $deadline && kill(0, $pid)) {
        sleep 0.05;
    }

    if (kill(0, $pid)) {
        kill 'KILL', $pid;
        sleep 0.2;
    }
}

sub reload {
    my ($self) = @_;
    $self->write_conf;
    kill 'HUP', $self->pid;
    sleep 0.5;
}

sub error_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/error.log" or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

sub access_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/logs/access.log" or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}

# request('GET', '/api/tiktok/status', headers => {...}, body => ...)
sub request {
    my ($self, $method, $path, %o) = @_;

    my $http = HTTP::Tiny->new(timeout => $o{timeout} || 15,
                               max_redirect => 0, keep_alive => 0);

    return $http->request($method, "http://127.0.0.1:$self->{port}$path", {
        headers => $o{headers} || {},
        defined $o{body} ? (content => $o{body}) : (),
    });
}

# post_as($user, $body, query => '?k=v', type => 'video/mp4'): POST
# /api/tiktok/post as $user (X-User-ID), $body a hashref (sent as JSON) or
# bytes; the decoded answer, or { status => HTTP status } when not JSON
sub post_as {
    my ($self, $user, $body, %o) = @_;

    my $r = $self->request(POST => '/api/tiktok/post' . ($o{query} // ''),
        headers => { 'X-User-ID' => $user,
                     'Content-Type' => $o{type} // 'application/json' },
        body => ref $body ? JSON::PP::encode_json($body) : $body);

    return eval { JSON::PP::decode_json($r->{content}) }
        || { status => $r->{status} };
}

sub DESTROY { }

END {
    for my $n (@instances) {
        eval { $n->stop('TERM') };
    }
}

1;


package TikTokTest;

# The conninfo of the test cluster through its Unix socket (pg_start puts
# it in $Tmp/pg-run): with PostgreSQL stopped, a connect to it is refused
# at once, inside PQconnectStartParams, rather than after a TCP handshake.
sub pg_socket_dsn {
    return "host=$Tmp/pg-run port=$PgPort dbname=tiktok user=tiktok_app";
}

# A TCP forwarder on a free loopback port to another port (PostgreSQL's),
# in a child process: ->stop cuts every connection through it at once (the
# far side sees its peer go away), ->start listens again on the same port.
# Used to take one nginx's path to the database away and give it back.
package TikTokTest::TcpProxy;

use IO::Select;
use IO::Socket::INET;
use POSIX ();

my @proxies;

sub new {
    my ($class, %o) = @_;
    my $self = bless { to => $o{to}, port => TikTokTest::free_port() },
                     $class;
    push @proxies, $self;
    return $self->start;
}

sub port { $_[0]{port} }

sub start {
    my ($self) = @_;

    return $self if $self->{pid};

    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $self->{port}, Listen => 64, ReuseAddr => 1)
        or die "proxy: cannot listen on $self->{port}: $!\n";

    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $ls;
        $self->{pid} = $pid;
        return $self;
    }

    # the child: shuttle bytes until killed
    my $sel = IO::Select->new($ls);
    my %peer;

    while (1) {
        for my $fh ($sel->can_read) {
            if ($fh == $ls) {
                my $c = $ls->accept or next;
                my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $self->{to});
                if (!$s) { close $c; next; }
                $peer{$c} = $s;
                $peer{$s} = $c;
                $sel->add($c, $s);
                next;
            }

            my $n = sysread($fh, my $buf, 65536);
            my $to = $peer{$fh};

            if (!$n || !defined syswrite($to, $buf)) {
                $sel->remove($fh, $to);
                delete @peer{$fh, $to};
                close $fh;
                close $to;
            }
        }
    }
    POSIX::_exit(0);
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'KILL', $pid;
    waitpid $pid, 0;
}

# waitpid sets $?: keep the test's own exit status
END { local $?; $_->stop for @proxies }


# A PgBouncer (Debian's package) of this test file's own, in front of its
# PostgreSQL: pool_mode transaction or session, trust authentication with a
# userlist, on a free loopback port; stopped when the file ends.  As root
# it drops to the postgres user (-u), as PostgreSQL's tools do here.
package TikTokTest::PgBouncer;

use File::Path qw(make_path);
use POSIX ();
use Time::HiRes qw(sleep time);

my @bouncers;

sub new {
    my ($class, %o) = @_;

    my $bin = $ENV{TIKTOK_PGBOUNCER} || '/usr/sbin/pgbouncer';
    die "pgbouncer is not installed (apt-get install pgbouncer)\n"
        unless -x $bin;

    my $self = bless { mode => $o{mode} || 'transaction',
                       port => TikTokTest::free_port() }, $class;
    my $n = scalar @bouncers;
    my $dir = $self->{dir} = "$TikTokTest::Tmp/pgbouncer-$n";

    make_path($dir);
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres');
        chown $uid, $gid, $dir;
    }

    open my $u, '>', "$dir/userlist.txt" or die $!;
    print $u qq{"tiktok_app" ""\n"postgres" ""\n};
    close $u;

    open my $ini, '>', "$dir/pgbouncer.ini" or die $!;
    print $ini <<"INI";
[databases]
tiktok = host=127.0.0.1 port=$TikTokTest::PgPort dbname=tiktok

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $self->{port}
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = $self->{mode}
max_client_conn = 500
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    close $ini;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        exec($bin, ($> == 0 ? ('-u', 'postgres') : ()), '-q',
             "$dir/pgbouncer.ini") or POSIX::_exit(127);
    }

    $self->{pid} = $pid;
    push @bouncers, $self;

    TikTokTest::wait_port($self->{port}, 10)
        or die "pgbouncer did not listen on $self->{port}: "
               . $self->log . "\n";

    return $self;
}

sub port { $_[0]{port} }

sub dsn {
    my ($self) = @_;
    return "host=127.0.0.1 port=$self->{port} dbname=tiktok user=tiktok_app";
}

sub log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/pgbouncer.log" or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'INT', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
}

END { local $?; $_->stop for @bouncers }

1;
