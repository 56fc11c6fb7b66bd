#!/bin/sh
# Hardening of tns-import: an f8 value beyond the f4 range is an error naming
# the value and element (it became an infinity), like an i8 beyond i32;
# tns-export --index states its true range.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"
d1='\000\000\000\000\000\000\360\077'     # 1.0 as <f8
dbig='\234\165\000\210\074\344\067\176'   # 1e300 as <f8
dinf='\000\000\000\000\000\000\360\177'   # inf as <f8

test_expect_success 'f8 values within range become f4' '
	npy ok.npy "<f8" "2, 2" "$d1$d1$d1$d1" &&
	tns-import -q -o ok.tns ok.npy &&
	tns-export -F tsv ok.tns >ok.tsv &&
	printf "1\t1\n1\t1\n" >want.tsv && test_cmp want.tsv ok.tsv
'

test_expect_success 'an f8 value beyond the f4 range is refused' '
	npy big.npy "<f8" "2, 2" "$d1$d1$dbig$d1" &&
	test_error 1 tns-import -o big.tns big.npy &&
	grep -q "^tns-import: .*big.npy: value 1e+300 at element 2 does not fit f32" .stderr &&
	test ! -e big.tns &&
	test_error 1 tns-import -n x -o big.tns big.npy && test ! -e big.tns
'

test_expect_success 'an infinity stays an infinity (it is a value, not an overflow)' '
	npy inf.npy "<f8" "2, 2" "$d1$d1$dinf$d1" &&
	tns-import -q -o inf.tns inf.npy &&
	tns-export -F tsv inf.tns | grep -q "^inf"
'

test_expect_success 'tns-export --index names the largest index it takes' '
	test_error 2 tns-export -F png -i -1 -o x.png ok.tns &&
	grep -q "^tns-export: --index: -1 is outside 0\.\.2147483647$" .stderr &&
	test ! -e x.png
'

test_done
