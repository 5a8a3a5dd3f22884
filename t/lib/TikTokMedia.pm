package TikTokMedia;

# Minimal, valid video containers for the suites: an MP4 (or MOV) with one
# video track of a given duration and whatever bytes as its media data.
# Built here rather than committed as blobs; the container parser's own
# tests (t/unit/media_test.c) cover the hard cases.

use strict;
use warnings;

sub box {
    my ($type, $payload) = @_;
    return pack('N', 8 + length $payload) . $type . $payload;
}

# mp4(seconds => 12, mdat => $bytes, brand => 'isom' | 'qt  ')
sub mp4 {
    my (%o) = @_;

    my $ms = int(($o{seconds} // 10) * 1000);
    my $brand = $o{brand} // 'isom';
    my $matrix = pack('N9', 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000);

    my $mvhd = box('mvhd', pack('N5', 0, 0, 0, 1000, $ms)
        . pack('Nn', 0x10000, 0x100) . ("\0" x 10) . $matrix . ("\0" x 24)
        . pack('N', 2));
    my $tkhd = box('tkhd', pack('N6', 7, 0, 0, 1, 0, $ms) . ("\0" x 8)
        . pack('nnnn', 0, 0, 0, 0) . $matrix
        . pack('NN', 1080 << 16, 1920 << 16));
    my $mdhd = box('mdhd', pack('N5', 0, 0, 0, 1000, $ms)
        . pack('nn', 0x55c4, 0));
    my $hdlr = box('hdlr', pack('NN', 0, 0) . 'vide' . ("\0" x 12) . "v\0");
    my $trak = box('trak', $tkhd . box('mdia', $mdhd . $hdlr));

    my $compat = $brand eq 'qt  ' ? 'qt  ' : 'isomiso2avc1mp41';

    return box('ftyp', $brand . pack('N', 512) . $compat)
         . box('moov', $mvhd . $trak)
         . box('mdat', $o{mdat} // ('x' x 4096));
}

1;
