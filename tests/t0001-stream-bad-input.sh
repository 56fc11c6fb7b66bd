#!/bin/sh
# Bad input: every kind of damage gives one line "prog: message", exit 1
# (2 for usage errors), nothing on stdout, and no output file left behind.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"

# refused FILE: both a reader and a writer of the stream refuse it cleanly
# (tns-info's stdout may hold the listing of the good records before the bad)
refused() {
	test_error --any-stdout 1 tns-info --check "$1" &&
	test_error 1 tns-select -o out.tns "$1" &&
	no_output
}
no_output() {
	if ls -A | grep -q "out\.tns"; then
		echo "output left behind:" >&2; ls -A >&2; return 1
	fi
}
# hdr BODY: a record whose header body is BODY (printf format), with a
# valid terminator and N zero payload bytes
hdr() {
	printf "$1" | "$GEN" mkhdr "${2:-1}"
}
KEYS='name x\ndtype u8\nencoding raw\ncrc32 00000000\n'
# bad_header BODY PATTERN [N]: the record of header BODY (N payload bytes,
# default 1) is refused with a message that matches PATTERN
bad_header() {
	hdr "$1" "${3:-1}" >h.tns && refused h.tns 2>err && grep -q "$2" err
}

"$GEN" gen "x:f32:2x3:note=hi" >x.tns
"$GEN" gen -z 6 data:40:40:1x4x4 >z.tns
hsize=128 total=$(wc -c <x.tns)

test_expect_success 'the intact streams are accepted' '
	tns-info --check x.tns >/dev/null && tns-info --check z.tns >/dev/null &&
	tns-select -o out.tns x.tns && cmp out.tns x.tns && rm out.tns
'

test_expect_success 'truncated at every byte of the header' '
	cut=1 &&
	while [ $cut -lt $hsize ]; do
		head -c $cut x.tns >t.tns && refused t.tns 2>>log || { echo "cut at $cut" >&2; exit 1; }
		cut=$((cut + 1))
	done &&
	grep -q "truncated header" log
'

test_expect_success 'truncated at points of the payload and padding' '
	for cut in 129 140 151 152 153 170 191; do
		head -c $cut x.tns >t.tns && refused t.tns 2>>log || { echo "cut at $cut" >&2; exit 1; }
	done &&
	size=$(wc -c <z.tns) &&
	for cut in 200 400 $((size - 100)) $((size - 1)); do
		head -c $cut z.tns >t.tns && refused t.tns 2>>log || { echo "cut at $cut" >&2; exit 1; }
	done &&
	grep -q "truncated payload" log
'

test_expect_success 'truncated streams are refused through a pipe too' '
	head -c 150 x.tns | test_error 1 tns-info &&
	head -c 150 x.tns | test_error 1 tns-info --check &&
	head -c 300 z.tns | test_error 1 tns-info &&
	head -c 600 z.tns | test_error --any-stdout 1 tns-info &&
	head -c 600 z.tns | test_error 1 tns-select -n labels
'

test_expect_success 'a single-bit flip anywhere in a record is refused' '
	off=0 &&
	while [ $off -lt $total ]; do
		"$GEN" flip $off $((off % 8)) <x.tns >f.tns &&
		test_error 1 tns-info --check f.tns 2>>log || { echo "flip at $off" >&2; exit 1; }
		off=$((off + 1))
	done &&
	grep -q "header checksum" log && grep -q "crc32 mismatch" log && grep -q "padding" log
'

test_expect_success 'bit flips in a deflate payload are refused' '
	for off in 130 140 150 160 180 200 250 300; do
		"$GEN" flip $off 2 <z.tns >f.tns &&
		test_error 1 tns-info --check f.tns &&
		test_error 1 tns-select -o out.tns f.tns && no_output || { echo "flip at $off" >&2; exit 1; }
	done
'

test_expect_success 'zero, negative and huge dimensions' '
	bad_header "TNS 1\n${KEYS}shape 2 0\nlength 0\n" "dimension 1 is zero" &&
	bad_header "TNS 1\n${KEYS}shape -3\nlength 3\n" "negative dimension" &&
	bad_header "TNS 1\n${KEYS}shape 99999999999\nlength 1\n" "exceeds the limit" &&
	bad_header "TNS 1\n${KEYS}shape 1 2 3 4 5 6 7 8 9\nlength 1\n" "more than 8 dimensions"
'

test_expect_success 'a shape whose product overflows' '
	bad_header "TNS 1\n${KEYS}shape 2147483648 2147483648 2147483648\nlength 1\n" "too large" &&
	hdr "TNS 1\n${KEYS}shape 65536 65536 65536\nlength 0\n" >big.tns &&
	refused big.tns
'

test_expect_success 'a header that lies about a huge payload allocates little' '
	hdr "TNS 1\nname images\ndtype u8\nencoding deflate\ncrc32 00000000\nshape 1073741824\nlength 1000\n" 1000 \
		>lie.tns &&
	cat lie.tns | test_error 1 tns-select --range 0:1 -o out.tns 2>err && no_output &&
	if [ -x /usr/bin/time ] && [ -z "${SK_SANITIZE:-}" ]; then
		cat lie.tns | /usr/bin/time -f "%M" tns-select --range 0:1 -o out.tns 2>rss;
		echo "max RSS $(tail -n 1 rss) KiB" >&2 &&
		test $(tail -n 1 rss) -lt 100000
	fi
'

test_expect_success 'a length that does not match the shape' '
	bad_header "TNS 1\n${KEYS}shape 4\nlength 5\n" "does not match" 5 &&
	bad_header "TNS 1\n${KEYS}shape 4\nlength 4x\n" "not a valid number" 4
'

test_expect_success 'an over-long header' '
	{ printf "TNS 1\n${KEYS}shape 1\nlength 1\nattr.big " && head -c 70000 /dev/zero | tr "\\0" a && printf "\n"; } |
		"$GEN" mkhdr 1 >long.tns &&
	refused long.tns 2>err && grep -q "longer than 65536" err
'

test_expect_success 'no terminator' '
	{ printf "TNS 1\nname x\ndtype u8\n" && head -c 1000 /dev/zero | tr "\\0" " "; } >noend.tns &&
	refused noend.tns 2>err && grep -q "no .end. line\|truncated header" err
'

test_expect_success 'a wrong dtype, encoding or version' '
	bad_header "TNS 1\nname x\ndtype f64\nencoding raw\ncrc32 00000000\nshape 1\nlength 8\n" "unknown dtype .f64." 8 &&
	bad_header "TNS 1\nname x\ndtype u8\nencoding lz4\ncrc32 00000000\nshape 1\nlength 1\n" "unknown encoding" &&
	bad_header "TNS 7\n${KEYS}shape 1\nlength 1\n" "version 7 is not supported (this reader reads version 1)"
'

test_expect_success 'duplicate, missing and unknown keys' '
	bad_header "TNS 1\n${KEYS}name y\nshape 1\nlength 1\n" "duplicate key" &&
	bad_header "TNS 1\n${KEYS}shape 1\n" "has no .length." &&
	bad_header "TNS 1\n${KEYS}shape 1\nlength 1\ncolour blue\n" "unknown header key"
'

test_expect_success 'trailing garbage' '
	{ cat x.tns && echo "some trailing text"; } >g.tns &&
	refused g.tns 2>err && grep -q "record 1: garbage after the last record" err &&
	{ cat x.tns && head -c 64 /dev/zero; } >g0.tns &&
	refused g0.tns &&
	{ cat x.tns && printf "TN"; } >g1.tns &&
	refused g1.tns
'

test_expect_success 'not a stream at all' '
	printf "P5\n2 2\n255\nabcd" >img.pgm &&
	refused img.pgm 2>err && grep -q "not a tensor stream" err
'

test_expect_success 'empty input' '
	: >empty.tns &&
	refused empty.tns 2>err && grep -q "empty stream" err &&
	test_error 1 tns-info </dev/null
'

test_expect_success 'a missing file and a directory' '
	refused no-such-file.tns 2>err && grep -q "no-such-file.tns: No such file" err &&
	mkdir d && refused d 2>err && grep -q "d: is a directory" err &&
	test_error 1 tns-select -o d x.tns 2>err && grep -q "is a directory" err
'

test_expect_success 'output to /dev/full' '
	test_error 1 tns-select -o /dev/full x.tns 2>err && grep -q "No space left" err &&
	tns-select x.tns >/dev/full 2>err; s=$? &&
	test $s -eq 1 && test $(wc -l <err) -eq 1 && grep -q "^tns-select: .*No space left" err
'

test_expect_success 'an unwritable directory leaves nothing behind' '
	mkdir ro && chmod a-w ro &&
	if touch ro/probe 2>/dev/null; then rm -f ro/probe; else
		test_error 1 tns-select -o ro/out.tns x.tns && test -z "$(ls -A ro)"
	fi
'

test_expect_success 'a signal removes the temporary output (named, without O_TMPFILE)' '
	mkfifo slow || exit 1
	"$GEN" gen "big:f32:100000" >big.tns &&
	{ cat big.tns; exec sleep 30; } >slow &
	writer=$!
	SK_NO_TMPFILE=1 tns-select -o out.tns slow &
	pid=$! &&
	i=0; while [ $i -lt 250 ] && ! ls -A | grep -q "^\.out\.tns\."; do sleep 0.1; i=$((i + 1)); done &&
	ls -A | grep -q "^\.out\.tns\." &&
	kill -TERM $pid; wait $pid; s=$?
	kill $writer 2>/dev/null
	test $s -eq 143 && no_output
'

test_expect_success 'usage errors exit 2' '
	test_error 2 tns-info --bogus &&
	test_error 2 tns-info a.tns b.tns &&
	test_error 2 tns-select --range 5:2 x.tns &&
	test_error 2 tns-select --range 5 x.tns &&
	test_error 2 tns-select --split 2 x.tns &&
	test_error 2 tns-select --seed 3 x.tns &&
	test_error 2 tns-select --split 0.1 --part third x.tns &&
	test_error 2 tns-select -z 12 x.tns &&
	test_error 2 tns-select -n &&
	no_output
'

test_done
