package Test::Nginx::Socket;

# In-repo stand-in for openresty's Test::Nginx::Socket: builds the HTTP
# requests of a test block, sends them over a plain socket, parses the
# responses and runs the checks, with the TAP test names of the original.
# Server management lives in Test::Nginx::Util.  See t/runner/README.
#
# NB: "use Test::Base -Base" turns on Spiffy's source filter, which adds
# "my $self = shift;" to every "sub name {" in this file; all named subs
# below therefore carry a prototype.

use v5.10.1;
use Test::Base -Base;

our $VERSION = '0.33';

use POSIX qw( EAGAIN EWOULDBLOCK EINTR );
use Time::HiRes qw( sleep time );
use List::Util qw( min );
use IO::Select ();
use IO::Socket::INET ();
use Digest::MD5 ();
use Digest::SHA ();
use JSON::PP ();

use Test::Nginx::Util;

our @EXPORT = qw( env_to_nginx is_str plan run_tests run_test
  repeat_each config_preamble worker_connections
  master_process_enabled
  no_long_string workers master_on master_off
  log_level no_shuffle no_root_location use_hup
  server_name
  server_addr server_root html_dir server_port server_port_for_client
  timeout no_nginx_manager check_accum_error_log
  add_block_preprocessor bail_out add_test_cleanup_handler add_cleanup_handler
  add_response_body_check no_check_leak
);

sub run_test_helper ($$$);
sub check_error_log ($$$$$);
sub check_shutdown_error_log ($$);
sub value_contains ($$);

$RunTestHelper = \&run_test_helper;
$CheckErrorLog = \&check_error_log;
$CheckShutdownErrorLog = \&check_shutdown_error_log;

our @ResponseBodyChecks;

sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}

# In the real Test::Nginx "no_check_leak" is a block section
# ("--- no_check_leak"), not a function: a .t calling it would die there.
sub no_check_leak (@) {
    Carp::croak("no_check_leak() is not a function of Test::Nginx::Socket; "
                . "use the \"--- no_check_leak\" section in the block instead");
}

sub run_test ($) {
    Test::Nginx::Util::run_test(shift);
}

# ---------------------------------------------------------------------------
# Requests

# "METHOD [/uri [HTTP/x.y]]" on the first line, the body after it.
sub parse_request ($$) {
    my ($name, $request) = @_;

    my ($first, $content) = split /\n/, $request, 2;
    $first = '' if !defined $first;

    if ($first !~ /\S/) {
        bail_out("$name - Request line should be non-empty");
    }

    my ($meth, $url, $ver);
    if ($first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/) {
        ($meth, $url, $ver) = ($1, $2, $3);
    } else {
        bail_out("$name - Request line is not valid. Should be 'meth [url [version]]' "
                 . "but got \"$first\".");
    }

    $url = '/' if !defined $url;
    $ver = 'HTTP/1.1' if !defined $ver;
    $content = '' if !defined $content;

    return {
        method => $meth,
        url => $url,
        http_ver => $ver,
        content => $content,
    };
}

sub parse_more_headers ($) {
    my ($in) = @_;
    my $is_chunked;
    my $out = '';
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*\#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val = '' if !defined $val;
        if (lc($key) eq 'transfer-encoding' && $val eq 'chunked') {
            $is_chunked = 1;
        }
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

sub build_request ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn_header, $request) = @_;

    my $req = parse_request($name, $request);
    my $content = $req->{content};
    utf8::encode($content) if utf8::is_utf8($content);

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/)
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }

    $more_headers =~ s/(?<!\r)\n/\r\n/gs;

    my $headers = '';
    if ($more_headers !~ /(?:^|\n)Host:/msi) {
        $headers .= "Host: $ServerName\r\n";
    }
    if ($more_headers !~ /(?:^|\n)Connection/msi) {
        $headers .= "Connection: $conn_header\r\n";
    }
    $headers .= "$more_headers$len_header\r\n";

    return "$req->{method} $req->{url} $req->{http_ver}\r\n$headers$content";
}

sub get_headers_for ($$$) {
    my ($name, $more_headers, $i) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $hdr = $more_headers->[$i];
        if (!defined $hdr) {
            bail_out("$name - --- more_headers lacks data for the ${i}th request");
        }
        return parse_more_headers($hdr);
    }
    return parse_more_headers($more_headers);
}

# Returns a list of requests; each is a list of pieces sent one after the
# other (raw_request given as an array).
sub get_req_from_block ($) {
    my ($block) = @_;
    my $name = $block->name;
    my @req_list;

    my $raw_request = $block->raw_request;
    if (defined $raw_request) {
        if (ref $raw_request && ref $raw_request eq 'ARRAY') {
            push @req_list, [@$raw_request];
        } else {
            push @req_list, [$raw_request];
        }
        return \@req_list;
    }

    my $request;
    my $request_eval = $block->request_eval;
    if (defined $request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request eval instead.");
        $request = eval $request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        if (defined $request && !ref $request) {
            while ($request =~ s/^\s*\#[^\n]+\s+|^\s+//gs) {
                # strip leading comments and blank space
            }
        }
    }

    my $more_headers = $block->more_headers;
    $more_headers = '' if !defined $more_headers;

    my $pipelined = $block->pipelined_requests;
    if ($pipelined) {
        if (!ref $pipelined || ref $pipelined ne 'ARRAY') {
            bail_out("$name - invalid entries in --- pipelined_requests");
        }
        my $prq = '';
        my $i = 0;
        for my $one (@$pipelined) {
            my $r = expand_env_in_text($one, $name, $Test::Nginx::Util::RandPorts);
            my $conn = $i == @$pipelined - 1 ? 'close' : 'keep-alive';
            my ($hdr, $is_chunked) = get_headers_for($name, $more_headers, $i);
            $prq .= build_request($name, $hdr, $is_chunked, $conn, $r);
            $i++;
        }
        push @req_list, [$prq];
        return \@req_list;
    }

    if (!defined $request) {
        return \@req_list;
    }

    if (!ref $request) {
        my ($hdr, $is_chunked) = get_headers_for($name, $more_headers, 0);
        push @req_list, [build_request($name, $hdr, $is_chunked, 'close', $request)];

    } elsif (ref $request eq 'ARRAY') {
        my $i = 0;
        for my $one (@$request) {
            if (ref $one) {
                abort_block($name, "--- request given as packet arrays is not supported "
                                   . "by the in-repo Test::Nginx runner");
            }
            my ($hdr, $is_chunked) = get_headers_for($name, $more_headers, $i);
            push @req_list, [build_request($name, $hdr, $is_chunked, 'close', $one)];
            $i++;
        }

    } else {
        bail_out("$name - invalid ---request : MUST be string or array of requests");
    }

    return \@req_list;
}

sub connect_to_server ($$) {
    my ($block, $timeout) = @_;
    my $name = $block->name;

    my $addr = $block->server_addr_for_client;
    $addr = $ServerAddr if !defined $addr;

    my $err;
    for (my $tries = 1; $tries <= 50; $tries++) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $addr,
            PeerPort => $ServerPortForClient,
            Proto    => 'tcp',
            Timeout  => $timeout,
        );
        return $sock if $sock;

        $err = $!;

        # nginx is gone: no point in retrying for half a minute
        my $pid = $Test::Nginx::Util::CurrentPid;
        if (defined $pid && !Test::Nginx::Util::is_running($pid)) {
            Test::More::fail("$name - Can't connect to $addr:$ServerPortForClient: $err "
                             . "(nginx, pid $pid, is not running)\n");
            Test::More::diag(Test::Nginx::Util::tail_error_log(30));
            return undef;
        }

        my $wait = (sleep_time() + sleep_time() * $tries) * $tries / 2;
        $wait = 1 if $wait > 1;
        if ($wait >= 0.6) {
            warn "$name - Can't connect to $addr:$ServerPortForClient: $err\n"
                 . "\tRetry connecting after $wait sec\n";
        }
        sleep $wait;
    }

    Test::More::fail("$name - Can't connect to $addr:$ServerPortForClient: $err (aborted)\n");
    return undef;
}

# Sends the pieces of one request and reads until the server closes the
# connection; the timeout is the longest wait between two I/O events.
sub send_request ($$$$) {
    my ($pieces, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;

    my $head_req = (join('', @$pieces) =~ /^\s*HEAD\s+/) ? 1 : 0;

    my $sock = connect_to_server($block, $timeout) or return (undef, $head_req);
    $sock->blocking(0);

    local $SIG{PIPE} = 'IGNORE';

    my @todo = @$pieces;
    my $buf = shift @todo;
    $buf = '' if !defined $buf;
    utf8::encode($buf) if utf8::is_utf8($buf);
    my $off = 0;
    my $writing = 1;
    my $resp = '';

    my $shutdown = $block->shutdown;

    my $sel = IO::Select->new($sock);

    while (1) {
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef, undef, $timeout);

        if (!$r && !$w) {
            if ($! == EINTR) {
                next;
            }
            # timed out
            if (!defined $block->abort) {
                Test::More::fail("ERROR: client socket timed out - $name\n");
            } else {
                sleep 0.005;
            }
            last;
        }

        if ($w && @$w) {
            my $n = syswrite($sock, $buf, length($buf) - $off, $off);
            if (!defined $n) {
                if ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                    warn "$name - write failed: $!\n" if $Test::Nginx::Util::Verbose;
                    $writing = 0;   # read what the server answered anyway
                }
            } else {
                $off += $n;
                if ($off >= length $buf) {
                    if (@todo) {
                        $buf = shift @todo;
                        utf8::encode($buf) if utf8::is_utf8($buf);
                        $off = 0;
                        sleep $middle_delay if $middle_delay;
                    } else {
                        $writing = 0;
                        if (defined $shutdown) {
                            $shutdown = 1 if $shutdown !~ /\S/;
                            shutdown($sock, $shutdown);
                        }
                    }
                }
            }
        }

        if ($r && @$r) {
            my $n = sysread($sock, my $chunk, 65536);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!\n";
                last;
            }
            last if $n == 0;
            $resp .= $chunk;
        }
    }

    close $sock;
    return ($resp, $head_req);
}

# ---------------------------------------------------------------------------
# Responses

# A small response object with the accessors the checks need.
sub new_response ($$$) {
    my ($code, $headers, $content) = @_;
    return bless {
        code => $code,
        headers => $headers,
        content => $content,
    }, 'Test::Nginx::Socket::Response';
}

sub parse_response ($$$) {
    my ($name, $raw_resp, $head_req) = @_;

    my $raw_headers = '';
    if ($raw_resp =~ /(.*?\r\n)\r\n/s) {
        $raw_headers = $1;
    }

    my ($head, $body);
    if ($raw_resp =~ /\A(.*?)\r?\n\r?\n(.*)\z/s) {
        ($head, $body) = ($1, $2);
    } else {
        ($head, $body) = ($raw_resp, '');
    }

    my @lines = split /\r?\n/, $head;
    my $status_line = shift(@lines) // '';
    my $code;
    if ($status_line =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d+)}) {
        $code = $1;
    }

    my @headers;
    for my $line (@lines) {
        if ($line =~ /^[ \t]+(.*)/ && @headers) {
            $headers[-1][1] .= " $1";
        } elsif ($line =~ /^([^:]+?)\s*:\s*(.*?)\s*$/) {
            push @headers, [$1, $2];
        }
    }

    my $res = new_response($code, \@headers, $body);

    if ($code && ($code == 304 || $code == 101)) {
        return ($res, $raw_headers);
    }

    my $left;
    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my @trailers = map { s/^\s+|\s+$//gr } split /,/, ($res->header('Trailer') // '');

    if (defined $enc && $enc eq 'chunked') {
        my $raw = $body;
        my $decoded = '';
        while (1) {
            if (@trailers == 0 && $raw =~ /\G 0 [\ \t]* \r\n \r\n /gcsx) {
                $left = $1 if $raw =~ /\G (.+) /gcsx;
                last;

            } elsif (@trailers > 0 && $raw =~ /\G 0 [\ \t]* \r\n /gcsx) {
                for my $trailer (@trailers) {
                    if ($raw !~ /\G(\Q$trailer\E:\ [^\n]*\r\n)/gcs) {
                        Test::More::fail("$name - invalid trailer data received (expected $trailer).");
                        return;
                    }
                }
                if ($raw !~ /\G\r\n/gcs) {
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
                $left = $1 if $raw =~ /\G (.+) /gcsx;
                last;
            }

            if ($raw =~ m{ \G [\ \t]* ( [A-Fa-f0-9]+ ) [^\r\n]* \r\n }gcsx) {
                my $size = hex($1);
                my $pos = pos($raw);
                if (length($raw) - $pos < $size) {
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data section)");
                    return;
                }
                $decoded .= substr($raw, $pos, $size);
                pos($raw) = $pos + $size;
                if ($raw !~ /\G\r\n/gcs) {
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return;
                }

            } elsif ($raw =~ /\G.+/gcs) {
                Test::More::fail("$name - invalid chunked body received: $&");
                return;

            } else {
                Test::More::fail("$name - no last chunk found - $raw");
                return;
            }
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $body < $len) {
            if (!$head_req) {
                warn "WARNING: $name - response body truncated: $len expected, but got "
                     . length($body) . "\n";
            }
        } elsif (length $body > $len) {
            $res->content(substr($body, 0, $len));
            $left = substr($body, $len);
        }
    }

    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------------
# Checks

sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        if (ref $value && ref $value eq 'ARRAY') {
            return $$value[$req_idx];
        }
        bail_out("$name - You asked for many requests, the expected results should be arrays as well.");
    }
    if (ref $value && ref $value eq 'ARRAY') {
        return $$value[0];
    }
    return $value;
}

# Section pairs where the real module silently ignores one of the two.
sub check_section_combos ($) {
    my $block = shift;
    for my $pair ([qw(error_code error_code_like)],
                  [qw(response_headers response_headers_like)],
                  [qw(response_body response_body_like)],
                  [qw(response_body response_body_unlike)],
                  [qw(response_body_like response_body_unlike)],
                  [qw(response_body_eval response_body_like)],
                  [qw(response_body_eval response_body_unlike)],
                  [qw(request raw_request)],
                  [qw(request pipelined_requests)])
    {
        my ($a, $b) = @$pair;
        if (exists $block->{$a} && exists $block->{$b}) {
            abort_block($block->name, "--- $a and --- $b cannot be combined "
                                      . "(Test::Nginx would silently ignore one of them)");
        }
    }
}

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';

    my $like = $block->error_code_like;
    my $code = $block->error_code;

    if (defined $like) {
        my $val = get_indexed_value($name, $like, $req_idx, $need_array);
        Test::More::like($got, qr/$val/sm, "$name - status code ok");
    } elsif (defined $code) {
        Test::More::is($got, get_indexed_value($name, $code, $req_idx, $need_array),
                       "$name - status code ok");
    } else {
        Test::More::is($got, 200, "$name - status code ok");
    }
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;

    my $like = $block->raw_response_headers_like;
    if (defined $like) {
        my $expected = get_indexed_value($name, $like, $req_idx, $need_array);
        Test::More::like($raw_headers, qr/$expected/s, "$name - raw resp headers like");
    }

    my $unlike = $block->raw_response_headers_unlike;
    if (defined $unlike) {
        my $expected = get_indexed_value($name, $unlike, $req_idx, $need_array);
        Test::More::unlike($raw_headers, qr/$expected/s, "$name - raw resp headers unlike");
    }
}

sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;

    my $spec = $block->response_headers;
    my $spec_like = $block->response_headers_like;

    if (defined $spec) {
        my $headers = parse_headers(get_indexed_value($name, $spec, $req_idx, $need_array));
        for my $key (sort keys %$headers) {
            my $val = $headers->{$key};
            if (!defined $val) {
                Test::More::unlike($raw_headers // '', qr/^\s*\Q$key\E\s*:/msi,
                                   "$name - header $key not present in the raw headers");
                next;
            }

            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;

            my $actual = $res ? $res->header($key) : undef;
            $actual = '' if !defined $actual;
            Test::More::is($actual, $val, "$name - header $key ok");
        }

    } elsif (defined $spec_like) {
        my $headers = parse_headers(get_indexed_value($name, $spec_like, $req_idx,
                                                      $need_array));
        for my $key (sort keys %$headers) {
            my $val = $headers->{$key};
            $val = '' if !defined $val;
            my $actual = $res ? $res->header($key) : undef;
            $actual = '' if !defined $actual;
            Test::More::like($actual, qr/^$val$/, "$name - header $key like ok");
        }
    }
}

sub run_filter_helper ($$$) {
    my ($block, $filter, $content) = @_;
    my $name = $block->name;

    if (ref $filter && ref $filter eq 'CODE') {
        return $filter->($content);
    }

    if (ref $filter) {
        bail_out("$name - the --- response_body_filters section only supports "
                 . "subroutine reference values and string values");
    }

    return Digest::MD5::md5_hex($content) if $filter eq 'md5_hex';
    return Digest::SHA::sha1_hex($content) if $filter eq 'sha1_hex';
    return uc($content) if $filter eq 'uc';
    return lc($content) if $filter eq 'lc';
    return ucfirst($content) if $filter eq 'ucfirst';
    return lcfirst($content) if $filter eq 'lcfirst';
    return length($content) if $filter eq 'length';

    bail_out("$name - unknown filter, \"$filter\", specified in the "
             . "--- response_body_filters section");
}

sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;
    return unless defined $res;

    my $content = $res->content;
    return unless defined $content;

    my $name = $block->name;
    my $filters = $block->response_body_filters;
    return unless defined $filters;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }

    my $filter = $filters;
    if (ref $filters->[0] eq 'ARRAY') {
        for my $elem (@$filters) {
            if (ref $elem ne 'ARRAY') {
                bail_out("$name - the --- response_body_filters two-dimensional array "
                         . "only be like [[uc], [lc]] not [[uc], lc]");
            }
        }
        $filter = $filters->[$req_idx];
        bail_out("$name - the ---response_body_filters two-dimensional array "
                 . "unmatch the specified request($req_idx)") unless defined $filter;
    }

    my $new = $content;
    for my $f (ref $filter eq 'ARRAY' ? @$filter : ($filter)) {
        $new = run_filter_helper($block, $f, $new);
    }
    $res->content($new);
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;

    my $body = $block->response_body;
    my $body_eval = $block->response_body_eval;
    my $body_like = $block->response_body_like;
    my $body_unlike = $block->response_body_unlike;

    if (defined $body || defined $body_eval) {
        my $content = $res ? $res->content : undef;
        if (defined $content) {
            $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
            $content =~ s/^Connection: TE, close\r\n//gms;
        }

        if (defined $block->response_body_json_sort && defined $content) {
            my $js = JSON::PP->new->canonical(1);
            my $obj;
            if (eval { $obj = $js->loose(1)->decode($content); 1 }) {
                $content = $js->encode($obj) . "\n";
            }
        }

        my $expected;
        if ($body_eval) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. Use response_body eval instead.");
            $expected = eval get_indexed_value($name, $body_eval, $req_idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $body, $req_idx, $need_array);
        }

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = expand_env_in_text($expected, $name, $Test::Nginx::Util::RandPorts);
        }

        if (ref $expected) {
            Test::More::like($content, $expected,
                "$name - response_body - like (repeated req $repeated_req_idx, req $req_idx)");
        } else {
            is_str($content, $expected,
                "$name - response_body - response is expected (repeated req $repeated_req_idx, req $req_idx)");
        }

    } elsif (defined $body_like || defined $body_unlike) {
        my ($patterns, $type) = defined $body_like ? ($body_like, 'like')
                                                   : ($body_unlike, 'unlike');

        my $content = $res ? $res->content : undef;
        if (defined $content) {
            $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
            $content =~ s/^Connection: TE, close\r\n//gms;
        }

        my $pat = get_indexed_value($name, $patterns, $req_idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = trim($content);
        $summary = '' if !defined $summary;

        if ($type eq 'like') {
            Test::More::like($content, qr/$pat/s,
                "$name - response_body_like - response is expected ($summary)");
        } else {
            Test::More::unlike($content, qr/$pat/s,
                "$name - response_body_unlike - response is expected ($summary)");
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $res ? $res->content : undef, $req_idx, $repeated_req_idx, $dry_run);
    }
}

sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    return $str;
}

sub value_contains ($$) {
    my ($val, $pat) = @_;
    if (!ref $val || ref $val eq 'Regexp') {
        return $val =~ /\Q$pat\E/;
    }
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if value_contains($v, $pat);
        }
    }
    return undef;
}

sub pattern_list ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    if (ref $pats eq 'Regexp') {
        return [$pats];
    }
    return [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : index($line, $pat) >= 0;
}

# One test per pattern: pass when some line matches, fail otherwise.
sub check_patterns_present ($$$$) {
    my ($pats, $lines, $what, $suffix) = @_;
    for my $pat (@$pats) {
        next if !defined $pat;
        if (grep { line_matches($_, $pat) } @$lines) {
            Test::More::pass("$what->[0] - pattern \"$pat\" matches a line in $what->[1]$suffix");
        } else {
            Test::More::fail("$what->[0] - pattern \"$pat\" should match a line in $what->[1]$suffix");
        }
    }
}

# One test per pattern: pass when no line matches; a match fails, showing
# the first matching line and the lines after it.
sub check_patterns_absent ($$$$) {
    my ($pats, $lines, $what, $suffix) = @_;
    for my $pat (@$pats) {
        next if !defined $pat;
        my @hits = grep { line_matches($lines->[$_], $pat) } 0 .. $#$lines;
        my $p = fmt_str($pat);
        if (!@hits) {
            Test::More::pass("$what->[0] - pattern \"$p\" does not match a line in $what->[1]$suffix");
            next;
        }
        my $i = $hits[0];
        my $ln = fmt_str($lines->[$i]);
        my @more = @$lines[$i + 1 .. min($i + 9, $#$lines)];
        Test::More::fail("$what->[0] - pattern \"$p\" should not match any line in $what->[1] "
                         . "but matches line \"$ln\"$suffix\n" . join('', @more));
        if (@hits > 1) {
            Test::More::diag(scalar(@hits) . " lines in $what->[1] match \"$p\"");
        }
    }
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;

    my ($check_alert, $check_crit, $check_emerg) = (1, 1, 1);

    my $grep_pats = $block->grep_error_log;
    my $grep_out = $block->grep_error_log_out;
    my $grep_pat;
    if (defined $grep_pats) {
        $grep_pat = (ref $grep_pats && ref $grep_pats eq 'ARRAY')
                    ? $grep_pats->[$repeated_req_idx] : $grep_pats;
    } elsif (defined $grep_out) {
        bail_out("$name - No --- grep_error_log defined but --- grep_error_log_out is defined");
    }

    if (defined $grep_pat) {
        my $expected = $grep_out;
        if (!defined $expected) {
            bail_out("$name - No --- grep_error_log_out defined but --- grep_error_log is defined");
        }
        $expected = expand_env_in_text($expected, $name, $Test::Nginx::Util::RandPorts)
            if !ref $expected;
        if (ref $expected && ref $expected eq 'ARRAY') {
            $expected = $expected->[$repeated_req_idx];
        }

        $lines ||= error_log_data();

        my $matched_lines = '';
        for my $line (@$lines) {
            if (ref $grep_pat && $line =~ /$grep_pat/ || $line =~ /\Q$grep_pat\E/) {
                my $matched = $&;
                $matched_lines .= "$matched\n" if $matched !~ /\n/;
            }
        }

        if (ref $expected eq 'Regexp') {
            Test::More::like($matched_lines, $expected,
                             "$name - grep_error_log_out (req $repeated_req_idx)");
        } else {
            is_str($matched_lines, $expected, "$name - grep_error_log_out (req $repeated_req_idx)");
        }
    }

    my $suffix = " (req $repeated_req_idx)";

    my $error_log = $block->error_log;
    if (defined $error_log) {
        $check_alert = 0 if value_contains($error_log, "[alert");
        $check_crit = 0 if value_contains($error_log, "[crit");
        $check_emerg = 0 if value_contains($error_log, "[emerg");
        $lines ||= error_log_data();
        check_patterns_present(pattern_list($error_log), $lines, [$name, 'error.log'], $suffix);
    }

    my $no_error_log = $block->no_error_log;
    if (defined $no_error_log) {
        $check_alert = 0 if value_contains($no_error_log, "[alert");
        $check_crit = 0 if value_contains($no_error_log, "[crit");
        $check_emerg = 0 if value_contains($no_error_log, "[emerg");
        $lines ||= error_log_data();
        check_patterns_absent(pattern_list($no_error_log), $lines, [$name, 'error.log'], $suffix);
    }

    # like the original: no implicit checks, but [alert]/[crit]/[emerg]
    # lines are reported and assertion failures fail the test
    if (!$dry_run) {
        for my $level (grep { $_->[1] } ['alert', $check_alert], ['crit', $check_crit],
                                         ['emerg', $check_emerg])
        {
            $lines ||= error_log_data();
            for my $line (@$lines) {
                if ($line =~ /\[$level->[0]\]/) {
                    warn "WARNING: $name - " . fmt_str($line) . "\n";
                }
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;
    my $lines;
    my $suffix = " (req $repeated_req_idx)";

    my $access_log = $block->access_log;
    if (defined $access_log) {
        $lines ||= access_log_data();
        check_patterns_present(pattern_list($access_log), $lines, [$name, 'access.log'], $suffix);
    }

    my $no_access_log = $block->no_access_log;
    if (defined $no_access_log) {
        $lines ||= access_log_data();
        check_patterns_absent(pattern_list($no_access_log), $lines, [$name, 'access.log'], $suffix);
    }
}

sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;

    my $pats = $block->shutdown_error_log;
    my $no_pats = $block->no_shutdown_error_log;

    if ($dry_run) {
        my $n = 0;
        $n += @{ pattern_list($pats) } if defined $pats;
        $n += @{ pattern_list($no_pats) } if defined $no_pats;
        SKIP: {
            Test::More::skip("$name - shutdown_error_log - tests skipped due to dry_run", $n);
        }
        return;
    }

    my $lines = error_log_data();

    if (defined $pats) {
        check_patterns_present(pattern_list($pats), $lines, [$name, 'error.log'], '');
    }

    if (defined $no_pats) {
        check_patterns_absent(pattern_list($no_pats), $lines, [$name, 'error.log'], '');
    }
}

# ---------------------------------------------------------------------------
# One repetition of one block

sub run_test_helper ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;

    check_section_combos($block);

    if (defined $block->curl) {
        warn "$name - --- curl is ignored by the in-repo Test::Nginx runner\n";
    }

    my $r_req_list = get_req_from_block($block);
    if (!@$r_req_list) {
        bail_out("$name - request empty");
    }

    my $timeout = parse_time($block->timeout);
    $timeout = timeout() if !defined $timeout;

    my $pipelined = $block->pipelined_requests;
    my $ignore_response = defined $block->ignore_response;
    my $http09 = defined $block->http09;
    my $wait = $block->wait;

    my ($res, $n, $need_array);
    my $req_idx = 0;

    for my $one_req (@$r_req_list) {
        my ($raw_resp, $head_req) = send_request($one_req, $block->raw_request_middle_delay,
                                                 $timeout, $block);

        if ($pipelined) {
            $n = @$pipelined;
            $need_array = 1;
        } else {
            $need_array = @$r_req_list > 1;
        }

        while (1) {
            warn "!!! resp: [", ($raw_resp // ''), "]\n" if $Test::Nginx::Util::Verbose;

            $raw_resp = '' if !defined $raw_resp;
            my ($raw_headers, $left);

            if (!$ignore_response) {
                if ($http09) {
                    $res = new_response(200, [], $raw_resp);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) = parse_response($name, $raw_resp, $head_req);
                }
            }

            if (!$n) {
                if (defined $left && $left ne '') {
                    (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}',ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last chunk in "
                         . "response: \"$l\"\n";
                }
            } else {
                $raw_resp = $left;
                $n--;
            }

            if (!$ignore_response) {
                check_error_code($block, $res, $dry_run, $req_idx, $need_array);
                check_raw_response_headers($block, $raw_headers // '', $dry_run, $req_idx,
                                           $need_array);
                check_response_headers($block, $res, $raw_headers, $dry_run, $req_idx,
                                       $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $dry_run, $req_idx, $repeated_req_idx,
                                    $need_array);
            }

            if ($n || $req_idx < @$r_req_list - 1) {
                sleep($wait) if $wait;
                check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
                check_access_log($block, $dry_run, $repeated_req_idx) if !$ignore_response;
            }

            $req_idx++;

            last if !$n;
        }
    }

    sleep($wait) if $wait;

    check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
    check_access_log($block, $dry_run, $repeated_req_idx) if !$ignore_response;
}

package Test::Nginx::Socket::Response;

# (prototypes only to keep Spiffy's source filter away; methods ignore them)

sub code ($) { $_[0]{code} }

sub content ($;$) {
    my $obj = shift;
    $obj->{content} = shift if @_;
    return $obj->{content};
}

# like HTTP::Headers: case-insensitive, repeated fields joined by ", "
sub header ($$) {
    my ($obj, $key) = @_;
    my @vals = map { $_->[1] } grep { lc $_->[0] eq lc $key } @{ $obj->{headers} };
    return undef if !@vals;
    return join ', ', @vals;
}

sub headers ($) { $_[0]{headers} }

1;
