#!/bin/sh
# zoo-encode run: how a run ends.  A diverging run (a non-finite loss) is a
# recorded, successful outcome: its members are kept and marked
# run_status=diverged; a finished run's are marked completed; any other error
# fails the run (exit 1, no output).  The data's number of classes (here 12)
# sizes the last layer and the evaluation.  Synthetic data, no data set needed.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"

# 48 images 1x28x28, class c = i % 12 a bright band of rows 2c..2c+2
gen() { awk -v n="$1" -v hi="$2" -v lo="$3" 'BEGIN { for (i = 0; i < n; i++) { c = i % 12
	for (p = 0; p < 784; p++) { r = int(p / 28); printf "%s", (r >= 2 * c && r < 2 * c + 3) ? hi : lo } } }'; }
npy y.npy '<i4' "48," "$(awk 'BEGIN { for (i = 0; i < 48; i++) printf "\\%03o\\000\\000\\000", i % 12 }')"
npy xu.npy '|u1' "48, 1, 28, 28" "$(gen 48 '\\310' '\\012')"
# the same bands at 1e20 (f32): ReLU runs blow up in their second step
npy xf.npy '<f4' "48, 1, 28, 28" "$(gen 48 '\\354\\170\\255\\140' '\\000\\000\\000\\000')"
tns-import -q xu.npy y.npy -o u.tns && tns-import -q xf.npy y.npy -o f.tns || exit 1
first() { tns-info "$1" | awk '$2 == "model"' | head -n 1; }

test_expect_success '12 classes: dense 12, evaluated over 12 classes, completed' '
	zoo-encode run -D u.tns -T u.tns -s 1 -C 0,1 -o r1.tns 2>err &&
	test "$(tns-info r1.tns | grep -c " model ")" = 2 &&
	tns-info r1.tns | grep -q "linear12.w *f32 12x16 " &&
	first r1.tns | grep -q " classes=12 " &&
	first r1.tns | grep -q " test_loss=2.48[45][0-9]* " &&   # ln 12 = 2.4849: a 12-way softmax near uniform
	test "$(tns-info r1.tns | grep " model " | grep -c " run_status=completed ")" = 2 &&
	! grep -q diverged err &&
	tns-info r1.tns | grep " model " | tail -n 1 | grep -q " epoch=1 "
'

test_expect_success 'the members carry the run recipe' '
	test "$(grep -a -c "^train optimizer=rmsprop lr=0.002674 wd=0.0025115 batch=64 epochs=1 schedule=constant$" r1.tns)" = 2 &&
	first r1.tns | grep -q " learning_rate=0.002674 l2reg=0.0025115 .* optimizer=rmsprop "
'

test_expect_success 'a diverging run succeeds, its members marked diverged' '
	zoo-encode run -D f.tns -T f.tns -s 2 -C 0,1,2,3 -o r2.tns 2>err &&
	grep -q "^zoo-encode: warning: run 2 diverged: loss is nan at step 2 " err &&
	test "$(tns-info r2.tns | grep -c " model ")" = 2 &&
	test "$(tns-info r2.tns | grep " model " | grep -c " run_status=diverged diverged_step=2 ")" = 2
'

test_expect_success 'the sampler draws the Small CNN Zoo families' '
	for s in 1 2 3 4 5 6 7 8 9 10 11 12; do
		zoo-encode run -q -D u.tns -T u.tns -s $s -C 0 -o s$s.tns || return 1
	done &&
	cat s*.tns | tns-info - | grep " model " >all &&
	grep -q " activation=relu " all && grep -q " activation=tanh " all &&
	grep -q " optimizer=sgd " all && grep -q " optimizer=adam " all && grep -q " optimizer=rmsprop " all &&
	grep -q " w_init=normal " all &&
	test "$(sed "s/.* learning_rate=\([^ ]*\) .*/\1/" all | sort -u | wc -l)" = 12 &&
	test "$(sed "s/.* l2reg=\([^ ]*\) .*/\1/" all | sort -u | wc -l)" = 12 &&
	grep -q " dropout=0\.[0-9]" all
'

test_expect_success 'other errors fail the run: exit 1, no output' '
	tns-select -q --range 0:4 u.tns >few.tns &&
	npy s.npy "|u1" "2, 1, 6, 6" "$(awk "BEGIN { for (i = 0; i < 72; i++) printf \"\\\\001\" }")" &&
	npy sy.npy "<i4" "2," "\\000\\000\\000\\000\\001\\000\\000\\000" &&
	tns-import -q s.npy sy.npy -o small.tns &&
	test_error 1 zoo-encode run -D small.tns -T small.tns -C 0 -o x.tns && test ! -e x.tns &&
	grep -q "zoo-cnn architecture needs 1x28x28 examples" .stderr &&
	npy ny.npy "<i4" "2," "\\160\\021\\001\\000\\001\\000\\000\\000" &&
	tns-import -q s.npy ny.npy -o neg.tns &&
	test_error 1 zoo-encode run -D neg.tns -T u.tns -C 0,1 -o x.tns && test ! -e x.tns &&
	grep -q "example 0 has label 70000, outside 0..65535" .stderr &&
	test -z "$(ls -A | grep "^\.x")"
'

test_done
