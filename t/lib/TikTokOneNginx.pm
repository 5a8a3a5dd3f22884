package TikTokOneNginx;

# One nginx for a suite of many one-request blocks (the security battery,
# t/9xx): Test::Nginx reuses the running nginx for a block without a
# --- config section, so this gives the suite's config to the first block
# only, and again to a block that follows one with a config of its own
# (which replaced the shared nginx).  A restart per block costs a third of
# a second; a battery of a hundred blocks would spend half a minute of
# the CI budget on them.  The error-log checks of a reused nginx see its
# whole log, which only makes no_error_log stricter.
#
#   use TikTokOneNginx;
#   TikTokOneNginx::config($Config);    # after use Test::Nginx::Socket

use strict;
use warnings;


sub config {
    my ($config) = @_;

    my $add = main->can('add_block_preprocessor')
        or die "config() needs Test::Nginx::Socket loaded first\n";

    my ($first, $own) = (1, 0);

    $add->(sub {
        my $block = shift;

        my $has = defined $block->config;

        if (!$has && ($first || $own)) {
            $block->set_value('config', $config);
        }

        $first = 0;
        $own = $has;
    });
}

1;
