#!/bin/sh
# t3000: mr-build: specs, parameter counts, depth errors, matching, models.
. "${SK_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"

test_expect_success 'help and version' '
	mr-build --help >help &&
	grep -q "^Usage: mr-build" help &&
	grep -q -- "--match-params" help &&
	mr-build --version >version &&
	head -n 1 version >first &&
	echo "mr-build (simkit) 0.1.0" >want &&
	test_cmp want first
'

test_expect_success 'DFN-MR1 and DFN-MR2 parameter counts (PAPERS.md 3.3)' '
	mr-build --arch dmrnet --depth 56 --width 16 --spec >mr1.spec 2>mr1.err &&
	grep -q "1,710,426 parameters" mr1.err &&
	mr-build --arch dmrnet --depth 32 --width 64 --spec >mr2.spec 2>mr2.err &&
	grep -q "14,851,402 parameters" mr2.err &&
	mr-build --arch resnet --depth 110 --spec -o r110.spec 2>r110.err &&
	grep -q "1,730,714 parameters" r110.err &&
	test -s r110.spec
'

test_expect_success '--spec output is a spec: one block per line, nine blocks at depth 56' '
	test "$(grep -c "^mrblock " mr1.spec)" -eq 27 &&
	grep -q "^mrblock 16 in=single name=s1b1$" mr1.spec &&
	grep -q "^mrblock 32 stride=2 name=s2b1$" mr1.spec &&
	grep -q "^mrblock 64 out=merged name=s3b9$" mr1.spec &&
	test "$(grep -c "^resblock " r110.spec)" -eq 54
'

test_expect_success 'FLOPs are reported: DMRNet-8 has 24.6M MACs (PAPERS.md 3.6)' '
	mr-build --depth 8 --spec >/dev/null 2>d8.err &&
	grep -q "154,970 parameters, [0-9.]* MFLOP per example (24.56M conv/linear MACs)" d8.err &&
	mr-build --arch resnet --depth 14 --spec >/dev/null 2>r14.err &&
	grep -q "175,258 parameters, [0-9.]* MFLOP per example (26.66M conv/linear MACs)" r14.err
'

test_expect_success 'depths the layout cannot build are refused, listing the valid ones' '
	test_error 2 mr-build --depth 10 --spec 2>err &&
	grep -q "8, 14, 20" err &&
	test_error 2 mr-build --arch resnet --depth 7 --spec &&
	test_error 2 mr-build --depth 0 --spec
'

test_expect_success 'usage errors' '
	test_error 2 mr-build --arch vgg --spec &&
	test_error 2 mr-build --input 3x32 --spec &&
	test_error 2 mr-build --width 0 --spec &&
	test_error 2 mr-build --shortcut a --spec &&
	test_error 2 mr-build --spec extra &&
	test_error 2 mr-build --match-params 8 --depth 14 --width 16 --spec &&
	test_error 2 mr-build --arch resnet --match-params 9 --spec
'

test_expect_success '--match-params: ResNet depth at equal parameters' '
	mr-build --arch resnet --match-params 8 --spec >r.spec 2>r.err &&
	grep -q "resnet depth 14 width 16 has 175,258 parameters, closest to 154,970 of dmrnet depth 8" r.err &&
	test "$(grep -c "^resblock " r.spec)" -eq 6 &&
	mr-build --arch resnet --match-params 14 --spec >r.spec 2>r.err &&
	grep -q "resnet depth 26 width 16 has 369,690" r.err
'

test_expect_success '--match-params with --depth searches the width' '
	mr-build --arch resnet --depth 8 --match-params 8 --spec >w.spec 2>w.err &&
	grep -q "resnet depth 8 width 2[0-9] has" w.err &&
	head -n 1 w.err
'

test_expect_success 'mr-build writes an initialised model stream; --seed is deterministic' '
	mr-build --depth 8 --width 4 --classes 5 --input 1x28x28 --seed 3 >a.tns 2>/dev/null &&
	mr-build --depth 8 --width 4 --classes 5 --input 1x28x28 --seed 3 >b.tns 2>/dev/null &&
	mr-build --depth 8 --width 4 --classes 5 --input 1x28x28 --seed 4 >c.tns 2>/dev/null &&
	mr-build --depth 8 --width 4 --classes 5 --input 1x28x28 --seed 3 -o d.tns 2>/dev/null &&
	test -s d.tns &&
	cmp a.tns b.tns &&
	! cmp -s a.tns c.tns &&
	head -c 4000 a.tns | grep -a -q "mrblock 8 stride=2 name=s2b1"
'

test_expect_success '--match-params takes a model file' '
	mr-build --arch dmrnet --depth 14 -o d14.tns 2>/dev/null &&
	mr-build --arch resnet --match-params d14.tns --spec >/dev/null 2>m.err &&
	grep -q "resnet depth 26 width 16 has 369,690 parameters, closest to 349,402" m.err
'

test_expect_success '-z LEVEL deflates the parameters; the model reads back the same' '
	mr-build --depth 8 --width 4 --classes 5 --input 1x28x28 --seed 3 -z 9 -o z.tns 2>/dev/null &&
	tns-info --check z.tns >zi 2>/dev/null &&
	test $(grep -c " deflate " zi) -eq $(($(wc -l <zi) - 1)) &&
	GEN="$SK_BUILDDIR/tests/unit/test-stream" &&
	"$GEN" dump <a.tns >a.dump && "$GEN" dump <z.tns >z.dump && test_cmp a.dump z.dump &&
	mr-build --arch resnet --match-params a.tns --spec 2>&1 >/dev/null | sed "s/a\.tns/M/" >a.err &&
	mr-build --arch resnet --match-params z.tns --spec 2>&1 >/dev/null | sed "s/z\.tns/M/" >z.err &&
	test -s a.err && test_cmp a.err z.err &&
	test_error 2 mr-build -z 3 --spec && test_error 2 mr-build -z 10 -o never.tns && test ! -e never.tns
'

test_expect_success 'seeds: whole numbers up to 2^63-1, no reals (the one seed parser)' '
	mr-build --depth 8 --width 4 -s 9007199254740993 -o big.tns 2>/dev/null &&
	tns-info big.tns | head -n 1 | grep -q " seed=9007199254740993\( \|$\)" &&
	test_error 2 mr-build --seed 1.5 -o never.tns 2>err && grep -q "'"'"'1.5'"'"' is not a seed" err &&
	test_error 2 mr-build --seed 1e3 -o never.tns &&
	test_error 2 mr-build --seed -1 -o never.tns &&
	test ! -e never.tns
'

test_expect_success 'letters: -A is --arch; -a, -k, -m, -i are gone' '
	mr-build -A resnet --depth 8 --spec 2>/dev/null | grep -q "^# ResNet" &&
	test_error 2 mr-build -a resnet --spec &&
	test_error 2 mr-build -k 5 --spec &&
	test_error 2 mr-build -m 8 --spec &&
	test_error 2 mr-build -i 1x28x28 --spec
'

test_expect_success 'a failed run leaves no output file' '
	test_error 2 mr-build --depth 9 -o never.tns &&
	test ! -e never.tns
'

test_done
