#!/bin/sh
# tns-export: npy, PNG (one image, batch montage, conv filter montage), TSV;
# and its errors.
. "$SK_SRCDIR/tests/lib.sh"

be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
{ printf '\000\000\010\003'; be32 100; be32 28; be32 28; head -c 78400 /dev/urandom; } >img.idx
{ printf '\000\000\010\001'; be32 100; i=0; while [ $i -lt 100 ]; do printf "\\$(printf %03o $((i % 10)))"; i=$((i + 1)); done; } >lab.idx
tns-import -q --chunk 40 img.idx lab.idx >d.tns

# An f32 .npy written by hand: shape given as "(a, b, ...)", values cycle
# through 0, 1, 2, 3, -1.
mknpy() {
	h="{'descr': '<f4', 'fortran_order': False, 'shape': $1, }"
	n=$((117 - ${#h}))
	{
		printf '\223NUMPY\001\000v\000%s' "$h"
		printf "%${n}s\n" ""
		i=0
		while [ $i -lt "$2" ]; do
			case $((i % 5)) in
			0) printf '\000\000\000\000' ;; 1) printf '\000\000\200\077' ;; 2) printf '\000\000\000\100' ;;
			3) printf '\000\000\100\100' ;; 4) printf '\000\000\200\277' ;;
			esac
			i=$((i + 1))
		done
	} >"$3"
}
mknpy "(8, 3, 5, 5)" 600 c1.npy
mknpy "(2, 4, 3, 3)" 72 c2.npy
{ tns-import -q -n conv1.w c1.npy; tns-import -q -n conv2.w c2.npy; } >model.tns

test_expect_success 'npy of a chunked record is the whole array' '
	tns-export -F npy -n images d.tns >a.npy &&
	head -c 128 a.npy | grep -q "'"'"'shape'"'"': (100, 1, 28, 28)" &&
	test $(wc -c <a.npy) -eq $((128 + 78400))
'

test_expect_success 'npy without -n when the stream has one record name' '
	tns-select -n images d.tns | tns-export -F npy | cmp - a.npy
'

test_expect_success 'PNG --grid 8x8 montage of a batch' '
	tns-export -F png --grid 8x8 d.tns >m.png &&
	tns-import -q m.png | tns-info | grep -q "^0 *images *u8 *1x1x231x231 "
'

test_expect_success 'PNG default grid: at most 64 tiles, square-ish' '
	tns-export -F png -o def.png d.tns && tns-import -q def.png | tns-info | grep -q " 1x1x231x231 " &&
	tns-select --range 0:10 d.tns | tns-export -F png -o ten.png && tns-import -q ten.png | tns-info | grep -q " 1x1x86x115 "
'

test_expect_success 'PNG --index I is example I exactly (u8 unscaled)' '
	tns-export -F png --index 43 -o one.png d.tns &&
	tns-import -q one.png | tns-export -F npy -n images >one.npy &&
	tns-select --range 43:44 -n images d.tns | tns-export -F npy >want.npy &&
	cmp want.npy one.npy
'

test_expect_success 'conv filters: -n conv1.w gives an RGB montage, one tile per filter' '
	tns-export -F png -n conv1.w -o f1.png model.tns &&
	tns-import -q f1.png | tns-info --stats >f1.info &&
	grep -q "^0 *images *u8 *1x3x62x62 " f1.info &&
	grep -q "min=0 max=255" f1.info
'

test_expect_success 'conv filters of 4 channels: one gray tile per (filter, channel)' '
	tns-export -F png -n conv2.w model.tns >f2.png &&
	tns-import -q f2.png | tns-info | grep -q "^0 *images *u8 *1x1x37x75 " &&
	tns-export -F png -n conv2.w --zoom 1 --grid 8x1 model.tns >f3.png &&
	tns-import -q f3.png | tns-info | grep -q " 1x1x3x31 "
'

test_expect_success 'PNG --tile reads rows as images (linear weights, vectors)' '
	mknpy "(10, 48)" 480 fc.npy &&
	tns-import -q -n fc1.w fc.npy | tns-export -F png --tile 6x8 --zoom 1 >fc.png &&
	tns-import -q fc.png | tns-info | grep -q " 1x1x20x35 " &&
	tns-import -q -n fc1.w fc.npy | tns-export -F png --tile 3x4x4 --zoom 1 --grid 10x1 >fc3.png &&
	tns-import -q fc3.png | tns-info | grep -q " 1x3x4x49 " &&
	tns-import -q -n fc1.w fc.npy >fc.tns && test_error 1 tns-export -F png --tile 7x7 fc.tns &&
	test_error 2 tns-export -F png --tile 7 fc.tns && test_error 2 tns-export -F npy --tile 7x7 fc.tns
'

test_expect_success 'PNG --scale auto stretches each tile; none clamps' '
	tns-export -F png -n conv1.w --scale none --index 0 model.tns >s.png &&
	tns-import -q s.png | tns-info --stats | grep -q "min=0 max=3 " &&
	tns-export -F png -n conv1.w --index 0 model.tns >a.png &&
	tns-import -q a.png | tns-info --stats | grep -q "min=0 max=255 "
'

test_expect_success 'a zoo (models concatenated): the first model'"'"'s record only' '
	{ printf "\223NUMPY\001\000v\000"; printf "%-117s\n" "{'"'"'descr'"'"': '"'"'|u1'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (12,), }"; printf "input 3 5 5\n"; } >spec.npy &&
	{ tns-import -q -n model spec.npy; tns-import -q -n conv1.w c1.npy; tns-import -q -n model spec.npy; tns-import -q -n conv1.w c1.npy; } >zoo.tns &&
	tns-export -F npy -n conv1.w zoo.tns >z.npy &&
	tns-import -q -n conv1.w c1.npy | tns-export -F npy | cmp - z.npy
'

test_expect_success 'TSV: one row per example; --header; several records side by side' '
	tns-export -F tsv -n labels d.tns >l.tsv &&
	test $(wc -l <l.tsv) -eq 100 && test "$(sed -n 13p l.tsv)" = 2 &&
	tns-export -F tsv --header -n labels -n labels d.tns >ll.tsv &&
	test "$(head -n 1 ll.tsv)" = "$(printf "labels\tlabels")" &&
	test "$(sed -n 2p ll.tsv)" = "$(printf "0\t0")" &&
	tns-export -F tsv -n conv2.w model.tns >w.tsv &&
	test $(wc -l <w.tsv) -eq 2 && test "$(head -n 1 w.tsv | cut -f 1-6)" = "$(printf "0\t1\t2\t3\t-1\t0")"
'

test_expect_success 'errors: one line, exit 1, nothing left behind' '
	mkdir outdir &&
	test_error 1 tns-export -F npy -o outdir/x.npy d.tns 2>err && grep -q "records images, labels: choose one with -n" err &&
	test_error 1 tns-export -F npy -n nosuch -o outdir/x.npy d.tns &&
	test_error 1 tns-export -F png --index 100 -o outdir/x.png d.tns &&
	test_error 1 tns-export -F png -n labels -o outdir/x.png d.tns &&
	test_error 1 tns-export -F tsv -n images -n conv1.w -o outdir/x.tsv d.tns &&
	test_error 1 tns-export -F npy -n images -o /dev/full d.tns &&
	test_error 1 tns-export -F png -o /dev/full d.tns &&
	test_error 1 tns-export -F npy -n images nosuch.tns &&
	head -c 3000 d.tns >cut.tns && test_error 1 tns-export -F npy -n images -o outdir/x.npy cut.tns &&
	echo garbage >g.tns && test_error 1 tns-export -F npy -o outdir/x.npy g.tns &&
	test -z "$(ls -A outdir)"
'

test_expect_success 'usage errors exit 2' '
	test_error 2 tns-export d.tns &&
	test_error 2 tns-export -F jpeg d.tns &&
	test_error 2 tns-export -F png --grid 8 d.tns &&
	test_error 2 tns-export -F npy --grid 8x8 d.tns &&
	test_error 2 tns-export -F png --scale log d.tns &&
	test_error 2 tns-export -F npy -n a -n b d.tns &&
	test_error 2 tns-export -F npy a.tns b.tns
'

test_expect_success 'letters of simkit 0.1.0 that changed meaning are usage errors' '
	test_error 2 tns-export -f npy -o x.npy d.tns 2>err &&
	grep -q "the format option is -F (-f is --force): -F npy" err && test ! -e x.npy &&
	test_error 2 tns-export -F png -s auto d.tns &&
	tns-export -f -F npy -n labels -o l2.npy d.tns && tns-export -F npy -n labels d.tns | cmp - l2.npy
'

if test_have_prereq tty; then
	test_expect_success 'no input and standard input a terminal: a usage error, not a wait' '
		timeout 20 script -qec "tns-export -F npy -o x.npy" /dev/null >tty.out 2>&1; s=$?
		test $s -eq 2 && grep -q "^tns-export: no input: .*standard input is a terminal" tty.out &&
		test_error 2 tns-export -F npy d.tns d.tns 2>err && grep -q "one input expected, got also .d.tns." err
	'
else
	test_skip 'no input and standard input a terminal: a usage error' 'no script(1) or timeout(1)'
fi

test_expect_success '--help and --version' 'test_help_version tns-export'

test_done
