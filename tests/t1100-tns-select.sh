#!/bin/sh
# tns-select: records by name, examples by range and by seeded split.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"

# a data set of 57 examples in chunks of 10; labels = example numbers
"$GEN" gen w:f32:3 data:57:10:1x3x3 >d.tns
"$GEN" gen w:f32:3 data:57:7:1x3x3 >d7.tns
"$GEN" gen -z 5 data:57:10:1x3x3 >dz.tns

labels() { "$GEN" dump labels; }

test_expect_success 'no option copies the stream byte for byte' '
	tns-select d.tns >out.tns && cmp d.tns out.tns &&
	tns-select <dz.tns >outz.tns && cmp dz.tns outz.tns
'

test_expect_success 'records by name' '
	tns-select -n w d.tns | tns-info >out &&
	test $(wc -l <out) -eq 1 && grep -q "^0 *w " out &&
	tns-select -n labels -n w d.tns | tns-info >out &&
	test $(wc -l <out) -eq 7 && ! grep -q images out &&
	test_error 1 tns-select -n w -n nothing -o none.tns d.tns 2>err &&
	grep -q "no record named .nothing." err && test ! -e none.tns
'

test_expect_success 'a range of examples across chunks' '
	tns-select --range 8:23 d.tns >r.tns &&
	labels <r.tns >got && seq 8 22 >expect && test_cmp expect got &&
	"$GEN" dump images <r.tns | head -n 1 >first && echo 56 >expect && test_cmp expect first &&
	tns-info r.tns | awk "{print \$2, \$4}" >shapes &&
	printf "w 3\nimages 2x1x3x3\nlabels 2\nimages 10x1x3x3\nlabels 10\nimages 3x1x3x3\nlabels 3\n" >expect &&
	test_cmp expect shapes
'

test_expect_success 'open-ended ranges' '
	tns-select --range 50: d.tns | labels >got && seq 50 56 >expect && test_cmp expect got &&
	tns-select --range :3 d.tns | labels >got && seq 0 2 >expect && test_cmp expect got &&
	tns-select --range 100:200 d.tns | tns-info >out && test $(wc -l <out) -eq 1
'

test_expect_success 'a seeded split: disjoint parts that make the whole' '
	tns-select --split 0.3 --seed 4 --part first d.tns | labels >a &&
	tns-select --split 0.3 --seed 4 --part second d.tns | labels >b &&
	test -s a && test -s b &&
	cat a b | sort -n >all && seq 0 56 >expect && test_cmp expect all &&
	n=$(wc -l <b) && test $n -ge 8 && test $n -le 28
'

test_expect_success 'the split does not depend on chunk sizes or encoding' '
	tns-select --split 0.3 --seed 4 --part second d7.tns | labels >b7 &&
	tns-select --split 0.3 --seed 4 --part second dz.tns | labels >bz &&
	tns-select --split 0.3 --seed 4 --part second d.tns | labels >b &&
	test_cmp b b7 && test_cmp b bz
'

test_expect_success 'the same seed gives the same split, another seed another' '
	tns-select --split 0.5 --seed 9 --part second d.tns | labels >s1 &&
	tns-select --split 0.5 --seed 9 --part second d.tns | labels >s2 &&
	tns-select --split 0.5 --seed 10 --part second d.tns | labels >s3 &&
	test_cmp s1 s2 && ! cmp -s s1 s3
'

test_expect_success 'images follow their labels' '
	tns-select --split 0.5 --seed 2 d.tns >s.tns &&
	"$GEN" dump images <s.tns | awk "NR % 9 == 1" >firstpix &&
	labels <s.tns | awk "{print (\$1 * 7) % 256}" >expect &&
	test_cmp expect firstpix
'

test_expect_success 'range and split together' '
	tns-select --range 10:40 --split 0.5 --seed 1 --part first d.tns | labels >x &&
	tns-select --split 0.5 --seed 1 --part first d.tns | labels | awk "\$1 >= 10 && \$1 < 40" >expect &&
	test_cmp expect x
'

test_expect_success 'rewritten records keep their encoding and attributes; -z changes it' '
	tns-select --range 0:5 dz.tns | tns-info >out &&
	grep images out | grep -q "deflate.*classes=zero,one,two" &&
	tns-select --range 0:5 -z 0 dz.tns | tns-info | grep images | grep -q " raw " &&
	tns-select -z 9 d.tns | tns-info | grep -q "labels.*deflate" &&
	tns-select -z 9 d.tns | "$GEN" dump >a && "$GEN" dump <d.tns >b && test_cmp a b
'

test_expect_success '--compress is -z; --level still works and warns' '
	tns-select -z 9 d.tns >z9.tns &&
	tns-select --compress 9 d.tns | cmp - z9.tns &&
	tns-select --level 9 d.tns 2>err | cmp - z9.tns &&
	test $(wc -l <err) -eq 1 && grep -q "^tns-select: warning: --level is deprecated.*-z/--compress" err &&
	test_error 2 tns-select -z 10 d.tns && test_error 2 tns-select --level x d.tns
'

test_expect_success '-s is --seed; seeds are whole numbers 0..2^63-1' '
	tns-select --split 0.5 --seed 9 --part second d.tns >long.tns &&
	tns-select --split 0.5 -s 9 --part second d.tns | cmp - long.tns &&
	tns-select --split 0.5 -s 9223372036854775807 d.tns >/dev/null &&
	test_error 2 tns-select --split 0.5 -s 1.5 d.tns 2>err && grep -q "'"'"'1.5'"'"' is not a seed" err &&
	test_error 2 tns-select --split 0.5 -s 9223372036854775808 d.tns &&
	test_error 2 tns-select --split 0.5 -s -1 d.tns &&
	test_error 2 tns-select --split 0.5 -s "" d.tns
'

test_expect_success 'output file with -o, atomically replaced' '
	tns-select -n w -o sel.tns d.tns && tns-info sel.tns >out && test $(wc -l <out) -eq 1 &&
	tns-select -n labels -o sel.tns d.tns && tns-info sel.tns >out && test $(wc -l <out) -eq 6 &&
	test $(ls -A | grep -c "^\.sel") -eq 0
'

test_expect_success 'a bad record mid-stream leaves no output file' '
	"$GEN" flip 2000 1 <d.tns >bad.tns &&
	test_error 1 tns-select -o out2.tns bad.tns && test ! -e out2.tns &&
	test $(ls -A | grep -c "^\.out2") -eq 0
'

if test_have_prereq tty; then
	test_expect_success 'binary output to a terminal is refused unless forced' '
		script -qec "tns-select d.tns" /dev/null >tty.out 2>&1; s=$?
		test $s -eq 1 && grep -q "^tns-select: refusing to write binary data to a terminal" tty.out &&
		script -qec "tns-select -f -n w d.tns" /dev/null >tty.out 2>&1 &&
		grep -a -q "^TNS 1" tty.out &&
		script -qec "tns-select -o /dev/null" /dev/null >tty.out 2>&1; s=$?
		test $s -eq 2 && grep -q "standard input is a terminal" tty.out
	'
else
	test_skip 'binary output to a terminal is refused unless forced' 'no script(1)'
fi

test_expect_success '--help, --version and the man page' '
	test_help_version tns-select && grep -q -- "--split" "$test_tmp/.help" &&
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -q "^\.SH \"*$s" "$SK_SRCDIR/man/man1/tns-select.1" || { echo "no $s" >&2; exit 1; }
	done
'

test_done
