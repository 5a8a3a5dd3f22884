package TikTokSandbox;

# Starts and drives the TikTok sandbox (t/sandbox/tiktok_sandbox.py) for
# tests:
#
#   my $sb = TikTokSandbox->start(dir => $dir, client_key => 'k',
#                                 client_secret => 's',
#                                 redirect_uris => ['https://app/cb']);
#   $sb->port; $sb->control_port; $sb->ca_file; $sb->base_url;
#   $sb->add_user({open_id => 'u2', private => JSON::PP::true});
#   my $tok = $sb->mint_tokens({open_id => 'u2', scope => 'video.publish'});
#   my $res = $sb->api(POST => '/v2/post/publish/creator_info/query/',
#                      token => $tok->{access_token});
#   $res->{status}, $res->{json}{error}{code}
#   $sb->stop;      # also from DESTROY and END, so it never outlives us
#
# The sandbox's certificate comes from a CA made here with the openssl CLI
# (make_ca); ->api verifies it against that CA.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::SSL ();
use JSON::PP;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(time sleep);

our $Python = $ENV{TIKTOK_SANDBOX_PYTHON} || '/usr/bin/python3';
our $Script = abs_path(dirname(__FILE__) . '/../sandbox/tiktok_sandbox.py');

my $JSON = JSON::PP->new->utf8->canonical;
my %live;          # pid => sandbox (weak), stopped in END


# make_ca($dir) -> {ca, ca_key, cert, key}: a CA and a server certificate
# for DNS:localhost and IP:127.0.0.1 signed by it.  EC P-256 keeps TLS
# handshakes cheap when hundreds of connections open at once.
sub make_ca {
    my ($dir) = @_;

    make_path($dir);
    my %f = (ca => "$dir/ca.pem", ca_key => "$dir/ca.key",
             cert => "$dir/server.pem", key => "$dir/server.key");
    my $ext = "$dir/server.ext";

    open my $fh, '>', $ext or croak "$ext: $!";
    print $fh "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
              "basicConstraints=critical,CA:FALSE\n",
              "keyUsage=critical,digitalSignature\n",
              "extendedKeyUsage=serverAuth\n",
              "subjectKeyIdentifier=hash\n",
              "authorityKeyIdentifier=keyid,issuer\n";
    close $fh;

    my @ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
              '-nodes');
    _openssl($dir, 'req', '-x509', @ec, '-days', '3650', '-sha256',
             '-keyout', $f{ca_key}, '-out', $f{ca},
             '-subj', '/CN=TikTok sandbox test CA',
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    _openssl($dir, 'req', @ec, '-keyout', $f{key}, '-out', "$dir/server.csr",
             '-subj', '/CN=localhost');
    _openssl($dir, 'x509', '-req', '-in', "$dir/server.csr", '-CA', $f{ca},
             '-CAkey', $f{ca_key}, '-CAcreateserial', '-days', '825',
             '-sha256', '-extfile', $ext, '-out', $f{cert});
    unlink "$dir/server.csr", $ext;

    return \%f;
}


sub _openssl {
    my ($dir, @args) = @_;

    my $log = "$dir/openssl.log";
    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        { exec 'openssl', @args }
        POSIX::_exit(127);
    }
    local $?;
    waitpid $pid, 0;
    croak "openssl @args[0,1] failed ($?): " . _slurp($log) if $? != 0;
}


sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}


# start(dir, client_key, client_secret, redirect_uris, [listen, port,
# control_port, args => [...extra CLI...]]): spawns the sandbox and waits
# (at most 10 s) until it is listening; dies with its log otherwise.
sub start {
    my ($class, %o) = @_;

    my $dir = $o{dir} // tempdir('tiktok-sandbox-XXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);
    make_path($dir);

    my $pki = (-s "$dir/ca.pem" && -s "$dir/server.pem"
               && -s "$dir/server.key")
        ? { ca => "$dir/ca.pem", cert => "$dir/server.pem",
            key => "$dir/server.key" }
        : make_ca($dir);

    my $self = bless {
        dir => $dir,
        ca_file => $pki->{ca},
        log_file => $o{log_file} // "$dir/sandbox.log",
        out_file => "$dir/sandbox.out",
        ready_file => "$dir/sandbox.ready",
        client_key => $o{client_key} // 'sbx_client_key',
        client_secret => $o{client_secret} // 'sbx_client_secret',
        redirect_uris => $o{redirect_uris}
            // ['https://app.example.com/api/tiktok/callback'],
        owner => $$,
    }, $class;

    unlink $self->{ready_file};

    my @cmd = ($Python, $Script,
               '--listen', $o{listen} // '127.0.0.1',
               '--port', $o{port} // 0,
               '--control-port', $o{control_port} // 0,
               '--cert', $pki->{cert}, '--key', $pki->{key},
               '--client-key', $self->{client_key},
               '--client-secret', $self->{client_secret},
               (map { ('--redirect-uri', $_) } @{ $self->{redirect_uris} }),
               '--ready-file', $self->{ready_file},
               '--log', $self->{log_file},
               '--parent-pid', $$,
               @{ $o{args} || [] });

    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->{out_file};
        open STDERR, '>&', \*STDOUT;
        { exec @cmd }
        POSIX::_exit(127);
    }

    $self->{pid} = $self->{running} = $pid;
    $live{$pid} = $self;
    weaken($live{$pid});

    $self->_wait_ready(10);

    $self->{http} = HTTP::Tiny->new(
        verify_SSL => 1, SSL_options => { SSL_ca_file => $self->{ca_file} },
        max_redirect => 0, keep_alive => 1, timeout => 30,
        agent => 'TikTokSandbox.pm/1',
    );
    $self->{ctl_http} = HTTP::Tiny->new(timeout => 30, keep_alive => 1);

    return $self;
}


sub _wait_ready {
    my ($self, $timeout) = @_;

    my $deadline = time + $timeout;
    while (time < $deadline) {
        if (-s $self->{ready_file}) {
            my $info = eval { $JSON->decode(_slurp($self->{ready_file})) };
            if ($info && $info->{port}) {
                $self->{port} = $info->{port};
                $self->{control_port} = $info->{control_port};
                return;
            }
        }
        if (waitpid($self->{pid}, WNOHANG) == $self->{pid}) {
            my $rc = $?;
            delete $self->{running};
            croak "the TikTok sandbox exited ($rc) before it was ready:\n"
                . $self->diagnostics;
        }
        sleep 0.05;
    }

    $self->stop;
    croak "the TikTok sandbox was not ready within ${timeout}s:\n"
        . $self->diagnostics;
}


sub diagnostics {
    my ($self) = @_;
    return "--- $self->{out_file}\n" . _slurp($self->{out_file})
         . "--- $self->{log_file}\n" . _slurp($self->{log_file});
}


sub port { $_[0]{port} }
sub control_port { $_[0]{control_port} }
sub ca_file { $_[0]{ca_file} }
sub pid { $_[0]{pid} }
sub log_file { $_[0]{log_file} }
sub dir { $_[0]{dir} }
sub client_key { $_[0]{client_key} }
sub client_secret { $_[0]{client_secret} }
sub redirect_uris { @{ $_[0]{redirect_uris} } }
sub base_url { "https://localhost:$_[0]{port}" }
sub control_url { "http://127.0.0.1:$_[0]{control_port}" }
sub running { $_[0]{running} ? 1 : 0 }
sub exit_status { $_[0]{exit_status} }
sub default_open_id { '723f24d7-e717-40f8-a2b6-cb8464cd23b4' }


# SIGTERM, wait up to 5 s, then SIGKILL.  Only the process that started the
# sandbox stops it (a forked child's DESTROY must not).
sub stop {
    my ($self) = @_;

    my $pid = delete $self->{running} or return;
    return if $self->{owner} != $$;

    local ($?, $!);
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) {
            $self->{exit_status} = $r == $pid ? $? : undef;
            delete $live{$pid};
            return;
        }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $self->{exit_status} = $?;
    delete $live{$pid};
}


sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    $self->stop;
}


END {
    local $?;
    for my $sb (grep { defined } values %live) {
        $sb->stop;
    }
}


# --- control API -------------------------------------------------------------

# control($method, $path, $data) -> decoded JSON; dies unless 2xx.
sub control {
    my ($self, $method, $path, $data) = @_;

    my $res = $self->control_raw($method, $path, $data);
    croak "sandbox control $method $path: $res->{status} $res->{content}"
        unless $res->{success};
    return $res->{json};
}


# control_raw(...) -> HTTP::Tiny's response plus {json}.
sub control_raw {
    my ($self, $method, $path, $data) = @_;

    my %req = (headers => { Accept => 'application/json' });
    if (defined $data) {
        $req{content} = $JSON->encode($data);
        $req{headers}{'Content-Type'} = 'application/json';
    }
    my $res = $self->{ctl_http}->request($method, $self->control_url . $path,
                                         \%req);
    $res->{json} = eval { $JSON->decode($res->{content}) }
        if length($res->{content} // '');
    return $res;
}

sub reset { $_[0]->control(POST => '/reset') }
sub health { $_[0]->control(GET => '/health') }
sub add_user { $_[0]->control(POST => '/users', $_[1]) }
sub user { $_[0]->control(GET => '/users/' . _esc($_[1])) }
sub script_authorize { $_[0]->control(POST => '/authorize', $_[1]) }
sub mint_tokens { $_[0]->control(POST => '/tokens', $_[1] || {}) }
sub expire_tokens { $_[0]->control(POST => '/tokens/expire', $_[1]) }
sub revoke_tokens { $_[0]->control(POST => '/tokens/revoke', $_[1]) }
sub set_config { $_[0]->control(POST => '/config', $_[1]) }
sub config { $_[0]->control(GET => '/config') }
sub fault { $_[0]->control(POST => '/faults', $_[1]) }
sub clear_faults { $_[0]->control(DELETE => '/faults') }
sub calls { $_[0]->control(GET => '/calls') }
sub clear_calls { $_[0]->control(DELETE => '/calls') }
sub upload { $_[0]->control(GET => '/uploads/' . _esc($_[1])) }
sub posts { $_[0]->control(GET => '/posts')->{posts} }
sub post { $_[0]->control(GET => '/posts/' . _esc($_[1])) }
sub script_post { $_[0]->control(POST => '/posts/' . _esc($_[1]), $_[2]) }
sub script_outcome { $_[0]->control(POST => '/outcomes', $_[1]) }

# requests($endpoint, $n) -> arrayref of the last $n requests it received.
sub requests {
    my ($self, $endpoint, $n) = @_;
    my %q = (n => $n // 10);
    $q{endpoint} = $endpoint if defined $endpoint;
    my $qs = $self->{ctl_http}->www_form_urlencode(\%q);
    return $self->control(GET => "/requests?$qs")->{requests};
}

sub _esc {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}


# --- API client --------------------------------------------------------------

# api($method, $path_or_url, token => $access_token, json => $data_or_string,
#     form => {...}, content => $bytes, query => {...}, headers => {...},
#     client => $http_tiny) -> HTTP::Tiny's response plus {json} when the
# answer is JSON.  Certificates are verified against the sandbox's CA.
sub api {
    my ($self, $method, $path, %o) = @_;

    my $http = $o{client} || $self->{http};
    my $url = $path =~ m{^https?://} ? $path : $self->base_url . $path;
    if ($o{query}) {
        $url .= ($url =~ /\?/ ? '&' : '?')
              . $http->www_form_urlencode($o{query});
    }

    my %h = %{ $o{headers} || {} };
    $h{Authorization} = "Bearer $o{token}" if defined $o{token};
    my %req = (headers => \%h);

    if (exists $o{json}) {
        $req{content} = ref $o{json} ? $JSON->encode($o{json}) : $o{json};
        $h{'Content-Type'} //= 'application/json; charset=UTF-8';
    } elsif ($o{form}) {
        $req{content} = $http->www_form_urlencode($o{form});
        $h{'Content-Type'} //= 'application/x-www-form-urlencoded';
    } elsif (defined $o{content}) {
        $req{content} = $o{content};
    }

    my $res = $http->request($method, $url, \%req);
    if (($res->{headers}{'content-type'} // '') =~ m{application/json}) {
        $res->{json} = eval { $JSON->decode($res->{content}) };
    }
    return $res;
}


# tls_connect(host => 'localhost'|'127.0.0.1') -> a blocking IO::Socket::SSL
# to the API port, certificate verified against the CA, for tests that need
# to see the bytes (keep-alive, HTTP/1.0, pipelining, concurrency).
sub tls_connect {
    my ($self, %o) = @_;

    my $sock = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $self->{port},
        SSL_hostname => $o{host} // 'localhost',
        SSL_verifycn_name => $o{host} // 'localhost',
        SSL_verifycn_scheme => 'http',
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file => $self->{ca_file},
        Timeout => $o{timeout} // 30,
    ) or croak "TLS connect: $IO::Socket::SSL::SSL_ERROR";
    return $sock;
}


# read_response($sock) -> {status, version, headers => {lc name => value},
# body} or undef at EOF.  Content-Length framed (all the sandbox sends).
sub read_response {
    my ($sock) = @_;

    my $head = '';
    while ($head !~ /\r\n\r\n\z/) {
        my $n = sysread($sock, my $c, 1);
        return undef if !$n && $head eq '';
        croak "connection closed inside a response head" unless $n;
        $head .= $c;
    }
    my ($line, @lines) = split /\r\n/, $head;
    my ($version, $status) = $line =~ m{^HTTP/(\d\.\d) (\d{3})}
        or croak "bad status line: $line";
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my $len = $h{'content-length'} // 0;
    my $body = '';
    while (length($body) < $len) {
        my $n = sysread($sock, $body, $len - length($body), length $body);
        croak "connection closed inside a response body" unless $n;
    }
    return { status => $status, version => $version, headers => \%h,
             body => $body };
}


# authorize(%params) -> {status, location, params => {code, scopes, state,
# error, ...}}: GET the authorize page (without following the redirect) with
# sensible defaults for every parameter not given (undef = leave it out).
sub authorize {
    my ($self, %p) = @_;

    my %q = (client_key => $self->{client_key}, response_type => 'code',
             scope => 'user.info.basic,video.list,video.publish',
             redirect_uri => $self->{redirect_uris}[0],
             state => 'state-' . int(rand(1e9)), %p);
    delete $q{$_} for grep { !defined $q{$_} } keys %q;

    my $res = $self->api(GET => '/v2/auth/authorize/', query => \%q);
    my $loc = $res->{headers}{location};
    my %params;
    if (defined $loc && $loc =~ /\?(.*)\z/) {
        for my $pair (split /&/, $1) {
            my ($k, $v) = map { _unesc($_) } split /=/, $pair, 2;
            $params{$k} = $v;
        }
    }
    return { status => $res->{status}, location => $loc,
             params => \%params, content => $res->{content} };
}

sub _unesc {
    my ($s) = @_;
    $s //= '';
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}


# token(%form) -> api response of POST /v2/oauth/token/ with client_key and
# client_secret filled in.
sub token {
    my ($self, %form) = @_;
    my %f = (client_key => $self->{client_key},
             client_secret => $self->{client_secret}, %form);
    delete $f{$_} for grep { !defined $f{$_} } keys %f;
    return $self->api(POST => '/v2/oauth/token/', form => \%f);
}

1;
