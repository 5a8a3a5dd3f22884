#!/usr/bin/perl
# Runs the validators' TAP unit tests (t/unit/validate_test.c), built by
# make.  A missing binary is a failure: make test always builds it.
use strict;
use warnings;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $root = abs_path(dirname(__FILE__) . '/..');
my $bin = ($ENV{TIKTOK_UNIT_DIR} || "$root/build/unit") . '/validate_test';

if (!-x $bin) {
    print "1..1\nnot ok 1 - validate_test binary missing ($bin): run make\n";
    exit 1;
}

exec $bin or die "exec $bin: $!";
