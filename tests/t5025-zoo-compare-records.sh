#!/bin/sh
# zoo-compare reads prediction files that other programs (or people) wrote:
# record counts that disagree and attribute values of any length give a
# one-line error or a correct result, never a read or write out of bounds.
. "$SK_SRCDIR/tests/lib.sh"

# crc32 FILE: the zlib CRC-32 of FILE as 8 hex digits (from gzip's trailer).
crc32() {
	gzip -c <"$1" | tail -c 8 | head -c 4 | od -An -tu1 |
		awk '{ printf "%02x%02x%02x%02x\n", $4, $3, $2, $1 }'
}

# rec NAME DTYPE SHAPE DATA [ATTR VALUE]...: one raw record on stdout, DATA
# being the payload as printf escapes (tns(5)).
rec() {
	name=$1 dtype=$2 shape=$3
	printf "$4" >.payload
	shift 4
	len=$(wc -c <.payload)
	{ printf 'TNS 1\nname %s\ndtype %s\nshape %s\nencoding raw\nlength %d\ncrc32 %s\n' \
		"$name" "$dtype" "$shape" "$len" "$(crc32 .payload)"
	  while [ $# -ge 2 ]; do printf 'attr.%s %s\n' "$1" "$2"; shift 2; done; } >.header
	end="end $(crc32 .header)"
	hl=$(( $(wc -c <.header) + ${#end} + 1 ))
	pad=$(( (64 - hl % 64) % 64 ))
	cat .header
	printf '%s%*s\n' "$end" "$pad" ""
	cat .payload
	head -c $(( (64 - len % 64) % 64 )) /dev/zero
}

F4='\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100'   # 1 2 3 4
R4='\000\000\200\100\000\000\100\100\000\000\000\100\000\000\200\077'   # 4 3 2 1
long=$(awk 'BEGIN { for (i = 0; i < 3000; i++) printf "x" }')

test_expect_success 'the record writer makes valid streams' '
	rec pred f32 4 "$F4" encoder sne >p.tns &&
	rec truth f32 4 "$R4" >>p.tns &&
	rec ids i32 4 "\001\0\0\0\002\0\0\0\003\0\0\0\004\0\0\0" >>p.tns &&
	tns-info --check p.tns >info && grep -q " pred  *f32  *4 " info &&
	zoo-compare --rank p.tns >rank && test $(grep -c "^ *[0-9]" rank) -eq 4 &&
	grep -q "^ *1  *4 " rank
'

test_expect_success 'an ids record shorter or longer than pred is an error' '
	rec pred f32 4 "$F4" >short.tns &&
	rec ids i32 2 "\001\0\0\0\002\0\0\0" >>short.tns &&
	test_error 1 zoo-compare --rank short.tns 2>err && grep -q "ids.* 2 models" err &&
	rec ids i32 2 "\001\0\0\0\002\0\0\0" >first.tns &&
	rec pred f32 4 "$F4" >>first.tns &&
	test_error 1 zoo-compare --rank first.tns &&
	rec pred f32 1 "\0\0\200\077" >long.tns &&
	rec ids i32 2 "\001\0\0\0\002\0\0\0" >>long.tns &&
	test_error 1 zoo-compare --rank long.tns
'

test_expect_success 'a record that appears twice is an error' '
	rec pred f32 4 "$F4" >twice.tns &&
	rec pred f32 4 "$F4" >>twice.tns &&
	test_error 1 zoo-compare twice.tns &&
	rec pred f32 4 "$F4" >twice2.tns &&
	rec ids i32 1 "\0\0\0\0" >>twice2.tns &&
	rec ids i32 1 "\0\0\0\0" >>twice2.tns &&
	test_error 1 zoo-compare twice2.tns
'

test_expect_success '--table with row and column labels of any length' '
	rec pred f32 4 "$F4" encoder "$long" train_zoo "$long" test_zoo b >a.tns &&
	rec truth f32 4 "$R4" >>a.tns &&
	rec pred f32 4 "$F4" encoder "y$long" train_zoo "$long" test_zoo c >b.tns &&
	rec truth f32 4 "$F4" >>b.tns &&
	zoo-compare --table --stream a.tns b.tns >t.tns &&
	tns-info t.tns >info && grep -q "table *f32 *2x2x3" info &&
	zoo-compare --table a.tns b.tns >t.txt && test $(wc -l <t.txt) -eq 4 &&
	grep -q "^$long .*-1.000 +- 0.000 n=1" t.txt &&
	zoo-compare a.tns b.tns >m.txt && grep -q "$long->c" m.txt
'

test_done
