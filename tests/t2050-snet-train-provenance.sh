#!/bin/sh
# snet-train: the provenance rule.  A checkpoint records every
# hyperparameter of the run (train_state hp.*) and the kernel path and
# OpenBLAS core its bits depend on; --resume takes the recorded values,
# refuses a given one that differs, naming it, except the allowed list
# (more --epochs unless the schedule is cosine; options outside the record
# such as --log, --checkpoint-every, -q); a resume on another kernel path or
# BLAS core warns that the bits will differ.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 200 >train.tns || exit 1
cat >net.spec <<'SPEC' || exit 1
input 1 28 28 scale=0.00392156862745098
conv 2 k=3
relu
flatten
linear 10
SPEC
BASE="--threads 1 --epochs 3 --batch 16 --optimizer sgd --lr 0.05 --momentum 0.8 --wd 0.0001 --schedule step
 --step-size 2 --gamma 0.5 --warmup 1 --crop 1 --seed 7 --valid-split 0.25 --freeze conv2"

test_expect_success 'the checkpoint records every hyperparameter, the kernels and the BLAS core' '
	{ snet-train -q -m net.spec -o m.tns $BASE --stop-after-steps 3 train.tns; test $? -eq 3; } &&
	tns-info m.tns.ckpt | tail -n 1 | sed "s/$/ /" >state &&
	for kv in optimizer=sgd lr=0.05 momentum=0.8 wd=0.0001 schedule=step step-size=2 gamma=0.5 warmup=1 \
		epochs=3 batch=16 loss=xent crop=1 flip=0 init-unsupervised=none seed=7 threads=1 valid-split=0.25 \
		freeze=conv2; do
		grep -q " hp.$kv " state || { echo "no hp.$kv"; return 1; }
	done &&
	grep -q " kernels=[a-z0-9]* " state && grep -q " blas=[^ ]" state
'

# option(s) given on resume | the message
while IFS='|' read -r opt msg; do
	test_expect_success "--resume refuses $opt" '
		test_error 1 snet-train -o r.tns --resume m.tns.ckpt '"$opt"' train.tns </dev/null &&
		grep -q "^snet-train: --resume: '"$msg"'$" .stderr && test ! -e r.tns
	'
done <<'TABLE'
--lr 0.1|--lr 0.1 differs from the checkpoint's 0.05
--optimizer adam|--optimizer adam differs from the checkpoint's sgd
--momentum 0.5|--momentum 0.5 differs from the checkpoint's 0.8
--wd 0|--wd 0 differs from the checkpoint's 0.0001
--schedule constant|--schedule constant differs from the checkpoint's step
--schedule multistep --milestones 2|--schedule multistep differs from the checkpoint's step
--step-size 3|--step-size 3 differs from the checkpoint's 2
--gamma 0.1|--gamma 0.1 differs from the checkpoint's 0.5
--warmup 0|--warmup 0 differs from the checkpoint's 1
--loss mse|--loss mse differs from the checkpoint's xent
--batch 32|--batch 32 differs from the checkpoint's 16
--crop 0|--crop 0 differs from the checkpoint's 1
--flip|--flip 1 differs from the checkpoint's 0
--seed 1|--seed 1 differs from the checkpoint's 7
--threads 2|--threads 2 differs from the checkpoint's 1
--valid-split 0.5|--valid-split 0.5 differs from the checkpoint's 0.25
--freeze linear5|--freeze linear5 differs from the checkpoint's conv2
TABLE

test_expect_success 'a cosine run refuses other --epochs (its rate depends on them); --min-lr named' '
	{ snet-train -q -m net.spec -o c.tns --threads 1 --epochs 2 --batch 16 --schedule cosine --min-lr 0.001 \
		--stop-after-steps 2 train.tns; test $? -eq 3; } &&
	test_error 1 snet-train -o c.tns --resume c.tns.ckpt --epochs 3 train.tns &&
	grep -q "^snet-train: --resume: --epochs 3 differs from the checkpoint.s 2 (the cosine schedule depends on it)$" .stderr &&
	test_error 1 snet-train -o c.tns --resume c.tns.ckpt --min-lr 0.01 train.tns &&
	grep -q "^snet-train: --resume: --min-lr 0.01 differs from the checkpoint.s 0.001$" .stderr
'

test_expect_success 'unchanged, or with options left out (taken from the checkpoint): the uninterrupted bytes' '
	mkdir full part bare &&
	(cd full && snet-train -q -m ../net.spec -o m.tns $BASE ../train.tns) &&
	(cd part && { snet-train -q -m ../net.spec -o m.tns $BASE --stop-after-steps 23 ../train.tns; test $? -eq 3; } &&
	 snet-train -q -o m.tns $BASE --resume m.tns.ckpt ../train.tns) &&
	cmp full/m.tns part/m.tns &&
	(cd bare && { snet-train -q -m ../net.spec -o m.tns $BASE --stop-after-steps 23 ../train.tns; test $? -eq 3; } &&
	 snet-train -o m.tns --resume m.tns.ckpt ../train.tns 2>err &&
	 grep -q "^snet-train: recipe: optimizer=sgd lr=0.05 momentum=0.8 wd=0.0001 schedule=step step-size=2 " err) &&
	cmp full/m.tns bare/m.tns
'

test_expect_success 'fewer --epochs than the checkpoint has run: refused' '
	test_error 1 snet-train -o f.tns --resume full/m.tns.ckpt --epochs 2 train.tns &&
	grep -q "^snet-train: --resume: --epochs 2 is fewer than the 3 the checkpoint has run$" .stderr
'

test_expect_success 'allowed: --log, --checkpoint-every, --checkpoint, -q, and more --epochs (not cosine)' '
	mkdir more && cd more &&
	{ snet-train -q -m ../net.spec -o m.tns $BASE --stop-after-steps 5 ../train.tns; test $? -eq 3; } &&
	snet-train -q -o m.tns --resume m.tns.ckpt --log log.tsv --checkpoint-every 4 --checkpoint other.ckpt \
		--epochs 4 ../train.tns &&
	test "$(tail -n 1 log.tsv | cut -f 1)" = 4 && test -s other.ckpt &&
	tns-info m.tns | head -n 1 | grep -q " epochs=4 .*recipe=.* epochs=4 " &&
	tns-info other.ckpt | tail -n 1 | grep -q " hp.epochs=4 .* hp.freeze=conv2"
'

test_expect_success '--valid cannot replace the held-out split of the run' '
	test_error 2 snet-train -o v2.tns --resume m.tns.ckpt --valid train.tns train.tns &&
	grep -q "held out --valid-split 0.25" .stderr
'

test_expect_success 'another kernel path (SK_ISA): a warning that the bits will differ' '
	k=$(sed "s/.* kernels=\([a-z0-9]*\) .*/\1/" state) &&
	if [ "$k" = portable ]; then
		echo "# this machine runs the portable kernels: nothing to switch to"
	else
		SK_ISA=portable snet-train -q -o k.tns --resume m.tns.ckpt train.tns 2>err &&
		grep -q "^snet-train: warning: --resume: the checkpoint was written by the $k kernels, this machine runs the portable ones: the bits will differ from an uninterrupted run$" err &&
		snet-train -q -o k2.tns --resume m.tns.ckpt train.tns 2>err && ! grep -q "bits will differ" err
	fi
'

test_expect_success 'another OpenBLAS core type: a warning that the bits will differ' '
	b=$(sed "s/.* blas=\([^ ]*\) .*/\1/" state) &&
	if [ "$b" = Nehalem ] || ! OPENBLAS_CORETYPE=Nehalem snet-train --version | grep -q Nehalem; then
		echo "# OpenBLAS here does not switch its core type to Nehalem"
	else
		OPENBLAS_CORETYPE=Nehalem snet-train -q -o b.tns --resume m.tns.ckpt train.tns 2>err &&
		grep -q "^snet-train: warning: --resume: the checkpoint was written with OpenBLAS core $b, this machine.s is Nehalem: the bits will differ" err
	fi
'

test_done
