#!/usr/bin/perl

# The container parser's unit tests (t/unit/media_test.c) are a C program
# that prints TAP; this script runs it so that "prove -r t" reads that TAP.
#
# The binary is $TIKTOK_UNIT_DIR/media_test, else build-asan/unit under
# "make asan" (TIKTOK_ASAN set), else build/unit, both under the repository
# root.  "make test" builds it first, so a missing binary is a failure, not
# a skip.  TIKTOK_VALGRIND=1 runs it under valgrind's leak check.

use strict;
use warnings;

use File::Spec;
use FindBin ();

my $root = File::Spec->catdir($FindBin::Bin, File::Spec->updir);

my $dir = $ENV{TIKTOK_UNIT_DIR}
    // File::Spec->catdir($root, $ENV{TIKTOK_ASAN} ? 'build-asan' : 'build',
                         'unit');

my $bin = File::Spec->catfile($dir, 'media_test');

if (!-f $bin || !-x _) {
    print "1..1\nnot ok 1 - media_test binary missing ($bin; run make)\n";
    exit 1;
}

my @cmd = ($bin);

if ($ENV{TIKTOK_VALGRIND}) {
    unshift @cmd, qw(valgrind -q --leak-check=full --error-exitcode=1);
}

exec { $cmd[0] } @cmd
    or print "1..1\nnot ok 1 - cannot run $cmd[0]: $!\n";

exit 1;
