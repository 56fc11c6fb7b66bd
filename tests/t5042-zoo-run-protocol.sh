#!/bin/sh
# zoo-encode run at the Small CNN Zoo protocol (PAPERS.md 5.7, 5.10): the
# architecture is a spec file (share/models by name, or any flat spec), the
# hyperparameters are drawn from the seed in the zoo's families and ranges
# and recorded on every member beside the recipe its spec carries; batch
# 512 with an epoch's last partial batch dropped, members at epochs 0, 1,
# 2, 3, 6, 12 and 18; --profile says where the run's seconds went.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 800 >all.tns || exit 1
tns-select -q --range 0:600 all.tns >train.tns && tns-select -q --range 600:800 all.tns >test.tns || exit 1
rm -f all.tns
models() { tns-info "$1" | awk '$2 == "model"'; }
# val KEY: the value of attribute KEY on the model line read from stdin
val() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
# the first seed from 1 whose draw has train fraction 1 (600 examples)
s=1
while [ $s -le 100 ]; do
	zoo-encode run -q -D train.tns -T test.tns -s $s -C 0 -o probe.tns || exit 1
	models probe.tns | grep -q " train_fraction=1 " && break
	s=$((s + 1))
done
full=$s

test_expect_success 'the defaults: batch 512, 18 epochs, members at 0 1 2 3 6 12 18, the spec of share/models' '
	zoo-encode run -q -D train.tns -T test.tns -s $full --profile p.tsv -o r.tns &&
	models r.tns >m &&
	test "$(sed "s/.* epoch=\([0-9]*\) .*/\1/" m | tr "\n" " ")" = "0 1 2 3 6 12 18 " &&
	test "$(grep -c " train_fraction=1 train_examples=600 classes=10 batch=512 micro_batch=64 epochs=18 " m)" = 7 &&
	grep -a -q "^# zoo-cnn with the hyperparameters of one zoo run (zoo-encode run)$" r.tns &&
	grep -a -q "^input 1 28 28 scale=0.00784313725490196 mean=1$" r.tns &&
	test "$(grep -a -c "^conv 16 k=3 stride=2 init=" r.tns)" = 21 &&
	test "$(grep -a -c "^gap$" r.tns)" = 7
'

test_expect_success 'an epoch drops its last partial batch: 600 examples are 1 step of 512, 9 of 64' '
	test "$(sed "s/.* steps=\([0-9]*\) .*/\1/" m | tr "\n" " ")" = "0 1 2 3 6 12 18 " &&
	zoo-encode run -q -D train.tns -T test.tns -s $full -b 64 -C 0,1,3 -o r64.tns &&
	test "$(models r64.tns | sed "s/.* steps=\([0-9]*\) .*/\1/" | tr "\n" " ")" = "0 9 27 "
'

# the parameter records of a run's members (their CRCs), without the model lines
params() { tns-info "$1" | awk '$2 != "model" { print $2, $NF }'; }
test_expect_success '--micro-batch: pieces of a batch give the same steps up to rounding; 0 or a whole batch the same bits' '
	zoo-encode run -q -D train.tns -T test.tns -s $full -b 200 -C 0,2 --micro-batch 0 -o w0.tns &&
	zoo-encode run -q -D train.tns -T test.tns -s $full -b 200 -C 0,2 --micro-batch 200 -o w200.tns &&
	zoo-encode run -q -D train.tns -T test.tns -s $full -b 200 -C 0,2 --micro-batch 48 -o w48.tns &&
	params w0.tns >p0 && params w200.tns >p200 && params w48.tns >p48 &&
	test_cmp p0 p200 && ! cmp -s p0 p48 &&
	! models w0.tns | grep -q micro_batch && test "$(models w48.tns | grep -c " batch=200 micro_batch=48 ")" = 2 &&
	l0=$(models w0.tns | tail -n 1 | val train_loss) && l48=$(models w48.tns | tail -n 1 | val train_loss) &&
	awk -v a="$l0" -v b="$l48" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d < 1e-3 * a) }" &&
	printf "input 1 28 28\nconv 4 k=3 stride=2\nbn\nrelu\ngap\nlinear 10\n" >bn.spec &&
	test_error 1 zoo-encode run -q -A ./bn.spec -D train.tns -T test.tns -C 0,1 -o bn.tns &&
	grep -q "layer bn[0-9]* (bn): it uses batch statistics" "$test_tmp/.stderr" && test ! -e bn.tns &&
	zoo-encode run -q -A ./bn.spec -D train.tns -T test.tns -C 0,1 --micro-batch 0 -o bn.tns &&
	test_error 2 zoo-encode run -q -D train.tns -T test.tns --micro-batch -1 -o bad.tns && test ! -e bad.tns
'

test_expect_success 'every member records the drawn hyperparameters that its spec carries' '
	for s in 1 2 3 4 5 6 7 8; do
		zoo-encode run -q -D train.tns -T test.tns -s $s -C 0,1 -b 128 -o h$s.tns || exit 1
		line=$(models h$s.tns | head -n 1)
		opt=$(echo "$line" | val optimizer) lr=$(echo "$line" | val learning_rate)
		l2=$(echo "$line" | val l2reg) act=$(echo "$line" | val activation) init=$(echo "$line" | val w_init)
		std=$(echo "$line" | val init_std) drop=$(echo "$line" | val dropout)
		rec=$(grep -a "^train " h$s.tns | head -n 1)
		echo "$rec" | grep -q "^train optimizer=$opt .*lr=$lr wd=[^ ]* batch=128 epochs=1 schedule=constant$" ||
			{ echo "seed $s: $rec against $line"; exit 1; }
		[ "$opt" != sgd ] || echo "$rec" | grep -q " momentum=0 " || exit 1
		wd=$(echo "$rec" | sed "s/.* wd=\([^ ]*\) .*/\1/")
		awk -v a="$wd" -v b="$l2" "BEGIN { d = a - 2 * b; exit !(d * d <= 1e-10 * a * a) }" ||
			{ echo "seed $s: wd $wd is not 2 x l2reg $l2"; exit 1; }
		test "$(grep -a -c "^$act$" h$s.tns)" = 6 || exit 1
		test "$(grep -a -c "^dropout p=$drop$" h$s.tns)" = 6 || exit 1
		test "$(grep -a -c "init=$init\( \|$\)" h$s.tns)" = 8 || exit 1
		if [ "$init" = normal ]; then grep -a -q "^linear 10 init=normal scale=$std$" h$s.tns || exit 1; fi
	done
'

test_expect_success 'the draws stay in the Small CNN Zoo ranges' '
	for s in $(seq 11 40); do
		zoo-encode run -q -D train.tns -T test.tns -s $s -C 0 -o d.tns && models d.tns >>draws || exit 1
	done &&
	for k in learning_rate l2reg dropout init_std train_fraction; do
		sed "s/.* $k=\([^ ]*\) .*/\1/" draws >$k || exit 1
	done &&
	awk "\$1 < 5e-4 || \$1 > 5e-2 { exit 1 }" learning_rate &&
	awk "\$1 < 1e-8 || \$1 > 1e-2 { exit 1 }" l2reg &&
	awk "\$1 < 0 || \$1 > 0.7 { exit 1 }" dropout &&
	awk "\$1 < 1e-3 || \$1 > 0.5 { exit 1 }" init_std &&
	test "$(sort -u train_fraction | tr "\n" " ")" = "0.1 0.25 0.5 1 " &&
	for o in sgd adam rmsprop; do grep -q " optimizer=$o " draws || exit 1; done &&
	for w in he xavier normal; do grep -q " w_init=$w " draws || exit 1; done &&
	grep -q " activation=relu " draws && grep -q " activation=tanh " draws &&
	test "$(sort -u learning_rate | wc -l)" = 30
'

test_expect_success 'the profile: seconds of loading, training, evaluation and writing' '
	test "$(wc -l <p.tsv)" = 2 &&
	head -n 1 p.tsv | grep -q "^# seed	arch	members	diverged	train_examples	load_s	train_s	eval_s	write_s$" &&
	tail -n 1 p.tsv | awk -F "\t" -v s=$full "NF != 9 || \$1 != s || \$2 != \"zoo-cnn\" || \$3 != 7 || \$4 != 0 ||
		\$5 != 600 { exit 1 } { for (i = 6; i <= 9; i++) if (\$i !~ /^[0-9]+\.[0-9][0-9][0-9]\$/) exit 1 }"
'

test_expect_success 'architectures are spec files: share/models by name, any flat spec by path or in $SIMKIT_MODELS' '
	zoo-encode run -q -A zoo-cnn2 -D train.tns -T test.tns -s 2 -C 0 -o c2.tns &&
	grep -a -q "^linear 32 init=" c2.tns && grep -a -q "^pool max k=2$" c2.tns &&
	printf "# small\ntrain epochs=1\ninput 1 28 28 scale=0.0078431 mean=1\nconv 4 k=5 stride=3\nrelu\ngap\nlinear 10\n" \
		>my.spec &&
	zoo-encode run -q -A ./my.spec -D train.tns -T test.tns -s 2 -C 0,1 -o a.tns &&
	tns-info a.tns | grep -q "conv2.w *f32 *4x1x5x5" &&
	models a.tns | grep -q " run=my-2 arch=my " &&
	mkdir models && cp my.spec models/other.spec &&
	SIMKIT_MODELS=$PWD/models zoo-encode run -q -A other -D train.tns -T test.tns -s 2 -C 0,1 -o b.tns &&
	models b.tns | grep -q " run=other-2 arch=other "
'

test_expect_success 'an architecture not found, with blocks, or not ending in class scores is refused' '
	test_error 2 zoo-encode run -D train.tns -T test.tns -A nosuch -o x.tns &&
	grep -q "no nosuch.spec in " .stderr &&
	test_error 1 zoo-encode run -D train.tns -T test.tns -A resnet20 -C 0 -o x.tns &&
	grep -q "a flat list of layers" .stderr &&
	printf "input 1 28 28\nlinear 10\nrelu\n" >tail.spec &&
	test_error 1 zoo-encode run -D train.tns -T test.tns -A ./tail.spec -C 0 -o x.tns &&
	grep -q "must be affine" .stderr &&
	test ! -e x.tns
'

test_done
