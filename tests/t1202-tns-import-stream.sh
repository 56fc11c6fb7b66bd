#!/bin/sh
# tns-import streams: a 64 MB .npy imports in bounded memory (default chunks
# of at most 8 MiB, read and converted in place), and the data survive.
. "$SK_SRCDIR/tests/lib.sh"

# an .npy v1.0 header for DESCR and SHAPE, padded to 64 bytes as numpy does
npy_header() {
	h="{'descr': '$1', 'fortran_order': False, 'shape': ($2), }"
	n=$(( (64 - (10 + ${#h} + 1) % 64) % 64 ))
	len=$(( ${#h} + n + 1 ))
	printf '\223NUMPY\001\000'
	printf "\\$(printf %03o $((len & 255)))\\$(printf %03o $((len >> 8)))"
	printf '%s%*s\n' "$h" "$n" ""
}

# 20480 examples of 784 floats (64,225,280 data bytes): 1 MiB of random
# bits, then numbered text (varied, but quick to deflate)
N=20480
BYTES=$((N * 784 * 4))
{ npy_header '<f4' "$N, 784"; head -c 1048576 /dev/urandom; seq -w 100000000 | head -c $((BYTES - 1048576)); } >big.npy

test_expect_success 'a 64 MB npy imports as chunks of at most 8 MiB' '
	tns-import -q big.npy -o big.tns &&
	tns-info --check big.tns >info 2>/dev/null &&
	test $(grep -c " images " info) -eq 8 &&
	grep -q "^0 *images *f32 *2674x784 " info &&
	grep -q "^7 *images *f32 *1762x784 " info
'

test_expect_success 'the data come back byte for byte' '
	tns-export -F npy -n images big.tns >back.npy &&
	tail -c $BYTES back.npy >a.bin && tail -c $BYTES big.npy >b.bin && cmp a.bin b.bin
'

test_expect_success '--chunk keeps an explicit chunk size' '
	tns-import -q --chunk 10000 big.npy | tns-info - 2>/dev/null | grep -c " images " >n &&
	test $(cat n) -eq 3
'

if [ -x /usr/bin/time ] && [ -z "${SK_SANITIZE:-}" ]; then
	test_expect_success 'peak memory stays below 32 MB (to a file and to a pipe)' '
		/usr/bin/time -f %M -o rss1 tns-import -q big.npy -o rss.tns &&
		/usr/bin/time -f %M -o rss2 sh -c "tns-import -q big.npy | cat >/dev/null" &&
		/usr/bin/time -f %M -o rss3 tns-import -q -z 6 big.npy -o rssz.tns &&
		echo "peak RSS KB: $(cat rss1) $(cat rss2) $(cat rss3)" &&
		test $(tail -n 1 rss1) -lt 32768 && test $(tail -n 1 rss2) -lt 32768 && test $(tail -n 1 rss3) -lt 32768
	'
else
	test_skip 'peak memory stays below 32 MB' 'no /usr/bin/time, or a sanitizer build'
fi

test_expect_success 'deflate and the CRCs work chunked' '
	{ [ -s rssz.tns ] || tns-import -q -z 6 big.npy -o rssz.tns; } &&
	tns-info --check rssz.tns 2>/dev/null | grep -c " images .* deflate " >nz &&
	test $(cat nz) -eq 8 &&
	tns-export -F npy -n images rssz.tns | tail -c $BYTES | cmp - b.bin
'

test_done
