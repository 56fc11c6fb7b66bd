#!/bin/sh
# snet-train: checkpoints, interruption (SIGINT, SIGTERM, --stop-after-steps)
# and --resume: the final model is bitwise identical to an uninterrupted run;
# mismatched checkpoints are refused with the difference named.
. "$SK_SRCDIR/tests/lib.sh"
M=$SK_SRCDIR/share/models
synth_data 1500 >train.tns || exit 1
tns-select -q --range 0:1000 train.tns >other.tns || exit 1
# wait (up to 60 s) until training has written its first checkpoint
wait_for() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
}
ARGS="--epochs 3 --batch 50 --optimizer adam --lr 0.002 --schedule cosine --warmup 1 --crop 2 --flip"

for j in 1 2; do
	test_expect_success "stopped mid-epoch and resumed: the same bytes ($j thread(s))" '
		mkdir -p full$j part$j &&
		(cd full$j && snet-train -q -m "$M/lenet5.spec" -o m.tns $ARGS --threads '$j' --valid ../other.tns ../train.tns) &&
		(cd part$j && test_expect_code=0 &&
		 { snet-train -q -m "$M/lenet5.spec" -o m.tns $ARGS --threads '$j' --valid ../other.tns \
			--stop-after-steps 37 ../train.tns; test $? -eq 3; } &&
		 test ! -e m.tns && test -s m.tns.ckpt &&
		 { snet-train -q -m "$M/lenet5.spec" -o m.tns $ARGS --threads '$j' --valid ../other.tns \
			--resume m.tns.ckpt --stop-after-steps 30 ../train.tns; test $? -eq 3; } &&
		 snet-train -m "$M/lenet5.spec" -o m.tns $ARGS --threads '$j' --valid ../other.tns \
			--resume m.tns.ckpt ../train.tns 2>err &&
		 grep -q "^snet-train: resuming m.tns.ckpt at epoch 3, step 7 of 30 (global step 67)$" err) &&
		cmp full$j/m.tns part$j/m.tns
	'
done

test_expect_success 'stopped at an epoch boundary and resumed without -m: the same bytes' '
	mkdir -p edge && cd edge &&
	{ snet-train -q -m "$M/lenet5.spec" -o m.tns $ARGS --threads 1 --valid ../other.tns \
		--stop-after-steps 30 ../train.tns; test $? -eq 3; } &&
	snet-train -q -o m.tns $ARGS --threads 1 --valid ../other.tns --resume m.tns.ckpt ../train.tns &&
	cmp ../full1/m.tns m.tns
'

test_expect_success 'resumed at an epoch boundary: that epoch reports the validation loss and rate of an unbroken run' '
	mkdir -p mse && cd mse &&
	A="--epochs 2 --batch 50 --loss mse --schedule cosine --lr 0.05 --threads 1 --valid ../other.tns" &&
	snet-train -m "$M/lenet5.spec" -o full.tns $A ../train.tns 2>full.err &&
	{ snet-train -q -m "$M/lenet5.spec" -o m.tns $A --stop-after-steps 30 ../train.tns; test $? -eq 3; } &&
	snet-train -o m.tns $A --resume m.tns.ckpt ../train.tns 2>part.err &&
	grep "^epoch" full.err | sed "s/ [0-9]* img\/s.*//" >want &&
	grep "^epoch" part.err | sed "s/ [0-9]* img\/s.*//" >got &&
	test_cmp want got && test $(wc -l <got) -eq 2
'

test_expect_success 'SIGINT finishes the step, writes the checkpoint, exits 3; resume matches' '
	mkdir -p sig sigfull &&
	(cd sigfull && snet-train -m "$M/zoo-cnn.spec" -o m.tns --epochs 40 --threads 1 --checkpoint-every 7 ../train.tns 2>/dev/null) &&
	cd sig &&
	{ snet-train -m "$M/zoo-cnn.spec" -o m.tns --epochs 40 --threads 1 --checkpoint-every 7 ../train.tns 2>err &
	  pid=$!; wait_for m.tns.ckpt; kill -INT $pid; wait $pid; test $? -eq 3; } &&
	grep -q "^snet-train: warning: interrupted by SIGINT; checkpoint written to m.tns.ckpt" err &&
	test ! -e m.tns && test -z "$(ls -A | grep "^\.m\.tns")" &&
	snet-train -q -m "$M/zoo-cnn.spec" -o m.tns --epochs 40 --threads 1 --checkpoint-every 7 --resume m.tns.ckpt ../train.tns &&
	cmp ../sigfull/m.tns m.tns
'

test_expect_success 'SIGTERM behaves the same' '
	mkdir -p term && cd term &&
	{ snet-train -q -m "$M/zoo-cnn.spec" -o m.tns --epochs 40 --threads 2 --checkpoint-every 5 ../train.tns 2>err &
	  pid=$!; wait_for m.tns.ckpt; kill -TERM $pid; wait $pid; test $? -eq 3; } &&
	grep -q "interrupted by SIGTERM" err && test -s m.tns.ckpt
'

test_expect_success 'a checkpoint is a model: snet-infer and tns-info read it' '
	snet-infer -m part1/m.tns.ckpt --eval other.tns | grep -q "^accuracy 0\." &&
	tns-info part1/m.tns.ckpt | grep -q "opt.conv2.w.v" &&
	tns-info part1/m.tns.ckpt | tail -n 1 | grep -q "train_state .*epoch=3 "
'

test_expect_success 'a finished checkpoint: says so and writes the model' '
	cd full1 && snet-train -o again.tns $ARGS --threads 1 --valid ../other.tns --resume m.tns.ckpt ../train.tns 2>err &&
	grep -q "already finished 3 of 3 epochs" err && cmp m.tns again.tns
'

test_expect_success 'resume refuses other data, naming the difference' '
	test_error 1 snet-train -o x.tns $ARGS --threads 1 --valid other.tns --resume part1/m.tns.ckpt other.tns &&
	grep -q "trained on 1500 examples, the data has 1000" .stderr
'

test_expect_success 'resume refuses another batch size, thread count, seed or optimizer' '
	test_error 1 snet-train -o x.tns $ARGS --batch 64 --threads 1 --valid other.tns --resume part1/m.tns.ckpt train.tns &&
	grep -q "^snet-train: --resume: --batch 64 differs from the checkpoint.s 50$" .stderr &&
	test_error 1 snet-train -o x.tns $ARGS --threads 2 --valid other.tns --resume part1/m.tns.ckpt train.tns &&
	grep -q "^snet-train: --resume: --threads 2 differs from the checkpoint.s 1$" .stderr &&
	test_error 1 snet-train -o x.tns $ARGS --seed 9 --threads 1 --valid other.tns --resume part1/m.tns.ckpt train.tns &&
	grep -q "^snet-train: --resume: --seed 9 differs from the checkpoint.s 1$" .stderr &&
	test_error 1 snet-train -o x.tns $ARGS --optimizer sgd --threads 1 --valid other.tns --resume part1/m.tns.ckpt train.tns &&
	grep -q "^snet-train: --resume: --optimizer sgd differs from the checkpoint.s adam$" .stderr
'

test_expect_success 'resume refuses another model, naming the spec line' '
	sed "s/^linear 84/linear 80/" "$M/lenet5.spec" >other.spec &&
	test_error 1 snet-train -m other.spec -o x.tns $ARGS --threads 1 --valid other.tns --resume part1/m.tns.ckpt train.tns &&
	grep -q "model differs from the given model (first at spec line 1[0-9])" .stderr
'

test_expect_success 'resume refuses a plain model (not a checkpoint)' '
	test_error 1 snet-train -o x.tns $ARGS --threads 1 --resume full1/m.tns train.tns &&
	grep -q "not a checkpoint" .stderr
'

test_done
