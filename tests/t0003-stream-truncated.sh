#!/bin/sh
# A stream whose header claims far more data than it holds (64 GiB of
# images, 5000 bytes of payload): every reader says the record is truncated,
# naming it and how many of its bytes arrived, in one line with exit 1, and
# reserves no memory for the bytes that never come (buffers grow as the data
# arrive), through a pipe as from a file.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"

# the 64 GiB images record (u8, 64 x 1 x 1024 x 1048576), then 5000 bytes
printf 'TNS 1\nname images\ndtype u8\nshape 64 1 1024 1048576\nencoding raw\nlength 68719476736\ncrc32 00000000\n' |
	"$GEN" mkhdr 0 >h64.tns && head -c 5000 /dev/zero >>h64.tns || exit 1
# the same claim in f32 (16 GiB elements: 64 GiB of floats after conversion
# would be 256 GiB), and a labels record that claims 2^33 bytes
printf 'TNS 1\nname images\ndtype f32\nshape 16 1 1024 1048576\nencoding raw\nlength 68719476736\ncrc32 00000000\n' |
	"$GEN" mkhdr 0 >f64.tns && head -c 5000 /dev/zero >>f64.tns || exit 1
{ "$GEN" gen data:4:4:1x8x8 | tns-select -q -n images &&
  printf 'TNS 1\nname labels\ndtype i32\nshape 2147483648\nencoding raw\nlength 8589934592\ncrc32 00000000\n' |
	"$GEN" mkhdr 0 && head -c 5000 /dev/zero; } >l64.tns || exit 1
printf 'input 1 8 8\nflatten\nlinear 10\n' >s8.spec
# a trained model for snet-infer (10 examples, labels 0..9)
"$GEN" gen data:10:10:1x8x8 >d10.tns && snet-train -q -m s8.spec -o m8.tns --epochs 1 d10.tns || exit 1

# truncated WHAT ARRIVED CLAIMED PROG ARGS...: PROG reads the stream from
# standard input (a pipe) and fails in one line that names the record WHAT
# and says that ARRIVED of its CLAIMED bytes arrived
truncated() {
	what=$1 arrived=$2 claimed=$3
	shift 3
	cat "$in" | test_error --any-stdout 1 "$@" &&
	grep -q "^$1: <stdin>: record [0-9]* ($what): truncated payload (the stream ends after $arrived of its $claimed bytes)$" \
		"$test_tmp/.stderr"
}
# from_file WHAT PROG ARGS... FILE: the same from a file, where the size is
# known from the start
from_file() {
	what=$1
	shift
	test_error --any-stdout 1 "$@" && grep -q "^$1: .*: record [0-9]* ($what): truncated payload" "$test_tmp/.stderr"
}
# small_rss PROG ARGS... (stdin from $in): peak resident memory under 64 MiB
small_rss() {
	if [ -x /usr/bin/time ] && [ -z "${SK_SANITIZE:-}" ]; then
		cat "$in" | /usr/bin/time -f "%M" "$@" >/dev/null 2>rss
		echo "$1: max RSS $(tail -n 1 rss) KiB" >&2
		test "$(tail -n 1 rss)" -lt 65536
	fi
}

for prog in "snet-train -m s8.spec -o m.tns -" "nsm-pretrain -o m.tns -" "snet-infer -m m8.tns --eval -" \
	"tns-export -F npy -o x.npy -" "tns-select -o x.tns -" "tns-info --check -"; do
	name=${prog%% *}
	test_expect_success "$name: 64 GiB claimed, 5000 bytes sent through a pipe: truncated, small memory" '
		in=h64.tns && truncated images 5000 68719476736 '"$prog"' &&
		small_rss '"$prog"' && test ! -e m.tns && test ! -e x.npy && test ! -e x.tns
	'
	test_expect_success "$name: the same from a file" '
		from_file images '"${prog% -}"' h64.tns && test ! -e m.tns && test ! -e x.npy && test ! -e x.tns
	'
done

test_expect_success 'f32 images claimed, a few bytes sent: truncated, small memory' '
	in=f64.tns && truncated images 5000 68719476736 nsm-pretrain -o m.tns - &&
	small_rss nsm-pretrain -o m.tns - &&
	truncated images 5000 68719476736 snet-train -m s8.spec -o m.tns - && small_rss snet-train -m s8.spec -o m.tns -
'

test_expect_success 'labels that claim 8 GiB: truncated, small memory (snet-train reads whole data sets)' '
	in=l64.tns && truncated labels 5000 8589934592 snet-train -m s8.spec -o m.tns - &&
	small_rss snet-train -m s8.spec -o m.tns - &&
	from_file labels snet-train -m s8.spec -o m.tns l64.tns
'

# payload FILE: the stored payload of the single record in FILE
payload() {
	len=$(head -c 1024 "$1" | grep -a "^length " | cut -d" " -f2)
	tail -c $((len + (64 - len % 64) % 64)) "$1" | head -c $len
}
test_expect_success 'a deflate record that claims 64 GiB: refused in one line, small memory' '
	head -c 100000 /dev/zero | "$GEN" wrap images u8 100000 9 >z.tns &&
	payload z.tns >z.bin &&
	printf "TNS 1\nname images\ndtype u8\nshape 64 1 1024 1048576\nencoding deflate\nlength $(wc -c <z.bin)\ncrc32 00000000\n" |
		"$GEN" mkhdr 0 >zl.tns && cat z.bin >>zl.tns &&
	head -c $(( (64 - $(wc -c <z.bin) % 64) % 64 )) /dev/zero >>zl.tns &&
	in=zl.tns &&
	test_error 1 snet-train -m s8.spec -o m.tns zl.tns && grep -q "deflate data shorter than the shape says" .stderr &&
	small_rss snet-train -m s8.spec -o m.tns - && small_rss nsm-pretrain -o m.tns - &&
	small_rss tns-export -F npy -o x.npy - && test ! -e m.tns && test ! -e x.npy
'

test_expect_success 'whole data sets still read: through a pipe, in chunks, and from a file' '
	"$GEN" gen data:300:70:1x8x8 >d.tns &&
	tns-export -n images -F npy -o a.npy d.tns && cat d.tns | tns-export -n images -F npy -o b.npy - &&
	cmp a.npy b.npy &&
	test $(wc -c <a.npy) -eq $((128 + 300 * 64)) &&
	tns-select --range 0:10 d.tns | tns-select -n labels | "$GEN" dump labels >l.txt &&
	test "$(tr "\n" " " <l.txt)" = "0 1 2 3 4 5 6 7 8 9 "
'
test_done
