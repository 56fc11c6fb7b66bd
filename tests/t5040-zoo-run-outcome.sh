#!/bin/sh
# zoo-encode run: how a run ends.  A diverging run (a non-finite loss, or
# parameters no longer finite at a checkpoint) is a recorded, successful
# outcome: its members, all finite, are kept and marked diverged=1 with the
# epoch and step it diverged at; a finished run's are marked diverged=0; any
# other error, or a signal, fails the run (non-zero, no output).  The data's
# number of classes (here 12) sizes the last layer and the evaluation.
# Synthetic data, no data set needed.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"

# 48 images 1x28x28, class c = i % 12 a bright band of rows 2c..2c+2
gen() { awk -v n="$1" -v hi="$2" -v lo="$3" 'BEGIN { for (i = 0; i < n; i++) { c = i % 12
	for (p = 0; p < 784; p++) { r = int(p / 28); printf "%s", (r >= 2 * c && r < 2 * c + 3) ? hi : lo } } }'; }
npy y.npy '<i4' "48," "$(awk 'BEGIN { for (i = 0; i < 48; i++) printf "\\%03o\\000\\000\\000", i % 12 }')"
npy xu.npy '|u1' "48, 1, 28, 28" "$(gen 48 '\\310' '\\012')"
# the same bands at 1e37 (f32): a ReLU net without the input scaling blows up
npy xf.npy '<f4' "48, 1, 28, 28" "$(gen 48 '\\302\\275\\360\\174' '\\000\\000\\000\\000')"
tns-import -q xu.npy y.npy -o u.tns && tns-import -q xf.npy y.npy -o f.tns || exit 1
cat >big.spec <<'EOF2'
# zoo-cnn without the input's scaling
train epochs=1
input 1 28 28
conv 16 k=3 stride=2
relu
conv 16 k=3 stride=2
relu
conv 16 k=3 stride=2
relu
gap
linear 10
EOF2
models() { tns-info "$1" | awk '$2 == "model"'; }
first() { models "$1" | head -n 1; }
# attr FILE KEY: the values of attribute KEY on the file's models, one a line
attr() { models "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# probe S: the model line of seed S's initialisation (its hyperparameters)
probe() { zoo-encode run -q -D u.tns -T u.tns -s "$1" -C 0 -o probe.tns && first probe.tns; }

test_expect_success '12 classes: dense 12, evaluated over the 12 classes, completed' '
	zoo-encode run -D u.tns -T u.tns -s 1 -C 0,1 -o r1.tns 2>err &&
	test "$(models r1.tns | wc -l)" = 2 &&
	tns-info r1.tns | grep -q "linear12.w *f32 12x16 " &&
	first r1.tns | grep -q " classes=12 " &&
	test "$(models r1.tns | grep -c " diverged=0 ")" = 2 &&
	! grep -q diverged err &&
	models r1.tns | tail -n 1 | grep -q " epoch=1 "
'

test_expect_success 'the evaluation runs over the 12 classes: a tiny initialisation scores ln 12 = 2.4849' '
	s=1 &&
	while [ $s -le 200 ]; do
		probe $s >p && grep -q " w_init=normal " p &&
			awk -v v="$(sed -n "s/.* init_std=\([^ ]*\) .*/\1/p" p)" "BEGIN { exit !(v < 0.003) }" && break
		s=$((s + 1))
	done &&
	test $s -le 200 &&
	grep -q " test_loss=2.48[45][0-9]* " p
'

test_expect_success 'a diverging run succeeds: its members, all finite, marked diverged=1 with the epoch and step' '
	s=1 &&
	while [ $s -le 200 ]; do
		probe $s >p && grep -q " activation=relu w_init=he " p && grep -q " optimizer=sgd " p && break
		s=$((s + 1))
	done &&
	test $s -le 200 &&
	zoo-encode run -A ./big.spec -D f.tns -T f.tns -s $s -C 0,1,2,3,4,5,6 -o r2.tns 2>err &&
	grep -q "^zoo-encode: warning: run $s diverged: " err &&
	n=$(models r2.tns | wc -l) && test "$n" -ge 1 &&
	test "$(models r2.tns | grep -c " diverged=1 diverged_epoch=[1-9][0-9]* diverged_step=[1-9][0-9]* ")" = "$n" &&
	e=$(attr r2.tns diverged_epoch | head -n 1) &&
	attr r2.tns epoch | awk -v e="$e" "\$1 >= e { bad = 1 } END { exit bad }" &&
	tns-info --stats r2.tns | awk "\$2 != \"model\"" >stats && test -s stats &&
	! grep -q " nan=[1-9]\| min=-\?inf\| max=-\?inf" stats
'

test_expect_success 'a run stopped by SIGTERM ends non-zero and leaves nothing' '
	synth_data 2000 >s.tns || exit 1
	zoo-encode run -q -D s.tns -T s.tns -b 16 -C 0,500 -o k.tns 2>kerr &
	pid=$!
	sleep 1
	kill -TERM $pid
	wait $pid
	st=$?
	test $st -ne 0 && test ! -e k.tns && test -z "$(ls -A | grep "^\.k")"
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
