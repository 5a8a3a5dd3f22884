# The shared-memory cache with many keys of one hash: every key is found
# after many inserts, deletes and replacements (the red-black tree's
# rotations put equal hashes on both sides of a node).  The cache hashes
# CRC-32(user NUL key); CRC-32 is linear, so four chosen bytes at the end of
# a key give it any hash we like.  Driven through the test-only module
# t/modules/ngx_http_tiktok_cache_test_module.c.

use strict;
use warnings;

use TikTokTest;
use Test::More;
use File::Basename qw(dirname);
use Compress::Zlib qw(crc32);

my $test_module = dirname($ENV{TEST_NGINX_TIKTOK_MODULE})
                  . '/ngx_http_tiktok_cache_test_module.so';

(my $http = $TikTokTest::HttpConfig)
    =~ s/tiktok_cache_zone [^;]+;/tiktok_cache_zone tiktok_cache:4m ttl=1h;/
    or die "no cache zone in the shared http config";

my $ngx = TikTokTest::Nginx->new(name => 'collide', workers => 1,
    main => $TikTokTest::MainConfig . "load_module $test_module;\n",
    http => $http,
    server => "        location /cache { tiktok_cache_test; }\n")->start;

# CRC-32's table, and the entry for each top byte (all 256 differ)
my @table = map {
    my $c = $_;
    $c = ($c & 1) ? (0xEDB88320 ^ ($c >> 1)) : ($c >> 1) for 1 .. 8;
    $c;
} 0 .. 255;
my %by_top = map { (($table[$_] >> 24) => $_) } 0 .. 255;

# four bytes that, appended to $prefix, make its CRC-32 $crc
sub forge {
    my ($prefix, $crc) = @_;

    my $reg = $crc ^ 0xffffffff;
    my @idx;
    for (1 .. 4) {
        my $j = $by_top{$reg >> 24};
        unshift @idx, $j;
        $reg = (($reg ^ $table[$j]) << 8) & 0xffffffff;
    }

    $reg = crc32($prefix) ^ 0xffffffff;
    my $tail = '';
    for my $j (@idx) {
        $tail .= chr(($reg ^ $j) & 0xff);
        $reg = ($reg >> 8) ^ $table[$j];
    }

    return $tail;
}

sub esc {
    my ($s) = @_;
    return join '', map { sprintf '%%%02X', ord } split //, $s;
}

sub op {
    my ($query) = @_;
    my $r = $ngx->request(GET => "/cache?$query");
    die "cache op failed: $r->{status}" unless $r->{status} == 200;
    (my $body = $r->{content}) =~ s/\n\z//;
    return $body;
}

my $user = 'collide-user';
my $hash = 0x5eed1234;
my $n = 300;

my @keys = map {
    my $k = "videos?cursor=$_&x=";
    $k . forge("$user\0$k", $hash);
} 1 .. $n;

is(scalar(grep { crc32("$user\0$_") == $hash } @keys), $n,
   "$n keys, one hash");

sub set_key { op("op=set&user=$user&key=" . esc($keys[$_[0]])
                 . "&value=v$_[0]-$_[1]") }
sub get_key { op("op=get&user=$user&key=" . esc($keys[$_[0]])) }

sub found {
    my ($gen, @which) = @_;
    my @missing = grep { get_key($_) ne "HIT v$_-$gen" } @which;
    diag('missing: ' . join(' ', @missing[0 .. ($#missing < 9 ? $#missing : 9)]))
        if @missing;
    return scalar @missing;
}

# 1. many inserts of one hash: every key found

is(scalar(grep { set_key($_, 1) ne 'stored' } 0 .. $n - 1), 0,
   'every key stored');
is(found(1, 0 .. $n - 1), 0, 'every key is found after the inserts');

# 2. deletes rebalance the tree: the rest stay found, the deleted go

my @odd = grep { $_ % 2 } 0 .. $n - 1;
my @even = grep { !($_ % 2) } 0 .. $n - 1;

is(scalar(grep { op("op=delete&user=$user&key=" . esc($keys[$_]))
                 ne 'deleted' } @odd), 0, 'every odd key deleted');
is(scalar(grep { get_key($_) ne 'MISS' } @odd), 0, '... and gone');
is(found(1, @even), 0, 'every even key is still found');

# 3. replacing a value frees the old node: no duplicate, the new value

is(scalar(grep { set_key($_, 2) ne 'stored' } reverse 0 .. $n - 1), 0,
   'every key stored again, in reverse order');
is(found(2, 0 .. $n - 1), 0, 'every key has its new value');

# 4. a purge finds them all (it walks the LRU, not the tree) and a key of
#    another user with the same hash is not touched

my $other = 'collide-other';
my $okey = 'k=' . forge("$other\0k=", $hash);
is(crc32("$other\0$okey"), $hash, "another user's key with the same hash");
is(op("op=set&user=$other&key=" . esc($okey) . '&value=mine'), 'stored',
   '... stored');
is(op("op=purge&user=$user"), "purged $n", "the purge removes all $n");
is(op("op=get&user=$other&key=" . esc($okey)), 'HIT mine',
   "the other user's entry is still found");

unlike($ngx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

done_testing();
