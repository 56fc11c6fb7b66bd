#!/bin/sh
# tns-info: the listing, --check, --stats, pipes, bounded memory, options.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"

"$GEN" gen "w:f32:2x3:note=two words" s:i32:scalar >a.tns
"$GEN" gen -z 6 data:25:10:1x2x2 >d.tns

test_expect_success 'one line per record, like ls -l' '
	tns-info a.tns >out &&
	test $(wc -l <out) -eq 2 &&
	awk "{print \$1, \$2, \$3, \$4, \$5, \$6}" out >cols &&
	printf "0 w f32 2x3 raw 24\n1 s i32 scalar raw 4\n" >expect &&
	test_cmp expect cols &&
	grep -q "crc32=adf5076f note=two words$" out
'

test_expect_success 'deflate records show the stored size and attributes' '
	tns-info d.tns >out &&
	test $(wc -l <out) -eq 6 &&
	grep "^0 " out | grep -q "images *u8 *10x1x2x2 *deflate *40 ([0-9]* stored) crc32=[0-9a-f]* classes=zero,one,two"
'

test_expect_success 'a file and a pipe give the same listing' '
	tns-info d.tns >file.out &&
	cat d.tns | tns-info >pipe.out &&
	tns-info - <d.tns >dash.out &&
	test_cmp file.out pipe.out && test_cmp file.out dash.out
'

test_expect_success '--check verifies and reports on stderr; --quiet silences it' '
	tns-info --check d.tns >out 2>err &&
	grep -q "6 records, 200 bytes of data, all checks passed" err &&
	tns-info --check --quiet d.tns >out 2>err && test ! -s err &&
	tns-info -c -q a.tns >/dev/null 2>err && test ! -s err
'

test_expect_success '--check names the first bad record' '
	cat a.tns d.tns >ad.tns &&
	"$GEN" flip 530 3 <ad.tns >bad.tns &&
	tns-info bad.tns >/dev/null &&
	test_must_fail tns-info --check bad.tns >out 2>err &&
	test $(wc -l <err) -eq 1 &&
	grep -q "^tns-info: bad.tns: record 2 (images): " err &&
	test $(wc -l <out) -eq 2
'

test_expect_success '--stats gives min, max, mean, std and NaN count' '
	tns-info --stats a.tns >out 2>/dev/null &&
	grep "^0 " out | grep -q "min=-1 max=0.25 mean=-0.375 std=0.426956 nan=0" &&
	grep "^1 " out | grep -q "min=-5 max=-5 mean=-5 std=0 nan=0" &&
	tns-info --stats d.tns 2>/dev/null | grep "labels" | head -1 | grep -q "min=0 max=9 mean=4.5"
'

test_expect_success '--stats has no letter: -s is --seed in simkit' '
	test_error 2 tns-info -s a.tns 2>err && grep -q "unknown option .-s." err
'

test_expect_success 'bounded memory on a long stream from a pipe' '
	if [ ! -x /usr/bin/time ] || [ -n "${SK_SANITIZE:-}" ]; then
		echo "no /usr/bin/time or a sanitizer build: checking output only" >&2
	fi &&
	"$GEN" gen big:f32:4096x1024 >big.tns &&
	for i in 1 2 3 4 5 6 7 8; do cat big.tns; done >/dev/null &&
	if [ -x /usr/bin/time ] && [ -z "${SK_SANITIZE:-}" ]; then
		for i in 1 2 3 4 5 6 7 8; do cat big.tns; done |
			/usr/bin/time -f "%M" tns-info --check --quiet >out 2>rss &&
		for i in 1 2 3 4 5 6 7 8; do cat big.tns; done |
			/usr/bin/time -f "%M" tns-info --stats --quiet >sout 2>srss &&
		echo "max RSS: $(cat rss) KiB (check), $(cat srss) KiB (stats); one record is 16384 KiB" >&2 &&
		test $(tail -n 1 rss) -lt 12000 && test $(tail -n 1 srss) -lt 12000
	else
		for i in 1 2 3 4 5 6 7 8; do cat big.tns; done | tns-info --check --quiet >out
	fi &&
	test $(wc -l <out) -eq 8
'

if [ -e "$SK_BUILDDIR/lib/.libs/libsimkit.so.0" ] || [ -n "${SK_LIBSIMKIT:-}" ]; then
	test_expect_success 'a model record shows its parameter and FLOP totals' '
		printf "input 1 8 8\nconv 4 k=3 pad=1\nrelu\nflatten\nlinear 10\n" >m.spec &&
		"$GEN" wrap model u8 $(wc -c <m.spec) <m.spec >m.tns &&
		tns-info m.tns >out &&
		grep -q "^0 *model .* params=2610 mflops=" out &&
		printf "input 1 2 2\nbogus 3\n" >bad.spec &&
		"$GEN" wrap model u8 $(wc -c <bad.spec) <bad.spec >bad.tns &&
		tns-info bad.tns >out 2>err &&
		grep -q "^0 *model" out && ! grep -q params= out &&
		grep -q "^tns-info: warning: .*unknown layer type .bogus." err
	'
else
	test_skip 'a model record shows its parameter and FLOP totals' 'no shared libsimkit (static-only build)'
fi

test_expect_success 'start-up does not load OpenBLAS (it is loaded only for model records)' '
	if command -v ldd >/dev/null && [ -z "${SK_SANITIZE:-}" ]; then
		ldd "$(command -v tns-info)" >libs &&
		! grep -q openblas libs
	fi
'

test_expect_success '--help and --version' '
	test_help_version tns-info && grep -q -- "--stats" "$test_tmp/.help" &&
	tns-info --version >out &&
	grep -q "^zlib " out && grep -q "^libpng " out && grep -q "OpenBLAS" out &&
	tns-info -h | grep -q "^Usage"
'

test_expect_success 'the man page has the usual sections' '
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -q "^\.SH \"*$s" "$SK_SRCDIR/man/man1/tns-info.1" || { echo "no $s" >&2; exit 1; }
	done
'

test_done
