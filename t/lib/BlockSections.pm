package BlockSections;

# Declares the data-block sections a suite adds of its own, read by its
# block preprocessor (Test::Nginx::Socket's documented way to add a
# section: add_block_preprocessor), e.g. in a suite or in a t/lib helper
#
#     use BlockSections qw(sql);
#
# The in-repo runner (t/runner) fails a block with a section that is
# neither Test::Nginx::Socket's nor declared here, so a misspelt
# "--- respone_body" cannot pass by asserting nothing.  The real
# Test::Nginx::Socket accepts any section and never reads this list, so
# declaring one changes nothing there.

use strict;
use warnings;

our %Registered;


sub import {
    my ($class, @sections) = @_;

    $class->register(@sections);
}


sub register {
    my ($class, @sections) = @_;

    for my $s (@sections) {
        die "BlockSections: \"$s\" is not a section name\n"
            if $s !~ /^[A-Za-z_]\w*$/;
        $Registered{$s} = 1;
    }
}

1;
