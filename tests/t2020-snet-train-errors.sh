#!/bin/sh
# snet-train: usage errors (exit 2), bad models and data (exit 1, one line
# naming the file, line and column), a non-finite loss (names the step, keeps
# the last good checkpoint).
. "$SK_SRCDIR/tests/lib.sh"
M=$SK_SRCDIR/share/models
synth_data 1000 >train.tns || exit 1

# refused_spec TEXT PATTERN: snet-train refuses the model spec TEXT (a printf
# format) on train.tns in one line matching PATTERN, and writes nothing
refused_spec() {
	printf "$1" >bad.spec &&
	test_error 1 snet-train -m bad.spec -o x.tns train.tns && grep -q "$2" "$test_tmp/.stderr" && test ! -e x.tns
}

test_expect_success '--help and --version' '
	test_help_version snet-train "-m MODEL -o OUT" && grep -q -- "--resume CKPT" "$test_tmp/.help"
'

test_expect_success 'usage errors exit 2 with one line' '
	test_error 2 snet-train -m "$M/zoo-cnn.spec" train.tns &&
	test_error 2 snet-train -o x.tns train.tns &&
	test_error 2 snet-train -m "$M/zoo-cnn.spec" -o x.tns --bogus train.tns &&
	test_error 2 snet-train -m "$M/zoo-cnn.spec" -o x.tns --epochs -1 train.tns &&
	test_error 2 snet-train -m "$M/zoo-cnn.spec" -o x.tns --optimizer adagrad train.tns &&
	test_error 2 snet-train -m "$M/zoo-cnn.spec" -o x.tns --schedule multistep train.tns &&
	test_error 2 snet-train -m "$M/zoo-cnn.spec" -o x.tns --valid a --valid-split 0.1 train.tns &&
	test_error 2 snet-train -m - -o x.tns - &&
	test_error 2 snet-train -m "$M/zoo-cnn.spec" -o x.tns train.tns more.tns &&
	test ! -e x.tns
'

test_expect_success 'an unknown option in the spec names line and column' '
	refused_spec "# net\ninput 1 28 28\nconv 16 k=3 strid=2\n" "^snet-train: bad.spec:3:13: conv: unknown option .strid."
'

test_expect_success 'an unknown layer and a missing input line are named' '
	refused_spec "input 1 28 28\nconvv 16\n" "bad.spec:2:1: unknown layer type .convv." &&
	refused_spec "conv 16 k=3\nlinear 10\n" "bad.spec:1:1: the first layer must be .input."
'

test_expect_success 'missing files are named' '
	test_error 1 snet-train -m nosuch.spec -o x.tns train.tns &&
	grep -q "nosuch.spec: No such file" .stderr &&
	test_error 1 snet-train -m "$M/zoo-cnn.spec" -o x.tns nosuch.tns &&
	grep -q "nosuch.tns: No such file" .stderr &&
	test_error 1 snet-train -m "$M/zoo-cnn.spec" -o x.tns --init nosuch.tns train.tns &&
	test_error 1 snet-train -m "$M/zoo-cnn.spec" -o x.tns --init "$M/zoo-cnn.spec" train.tns &&
	grep -q "a spec has no trained parameters" .stderr &&
	test_error 1 snet-train -m "$M/zoo-cnn.spec" -o x.tns --resume nosuch.ckpt train.tns
'

test_expect_success 'an unwritable checkpoint is refused before training' '
	test_error 1 snet-train -m "$M/zoo-cnn.spec" -o x.tns --checkpoint nodir/c.ckpt train.tns &&
	grep -q "^snet-train: --checkpoint: .*nodir" .stderr && test ! -e x.tns
'

test_expect_success 'data that do not fit the model are refused' '
	refused_spec "input 3 32 32\nconv 8 k=3\ngap\nlinear 10\n" "examples are 1x28x28 but the model.s input is 3x32x32" &&
	refused_spec "input 1 28 28\nconv 8 k=3\ngap\nlinear 5\n" "has label [5-9], outside 0..4" &&
	test_error 1 snet-train -m "$M/zoo-cnn.spec" -o x.tns --freeze nosuch train.tns &&
	grep -q "no layer .nosuch." .stderr
'

test_expect_success 'a NaN loss at the first steps: named, nothing written' '
	test_error 1 snet-train -q -m "$M/zoo-cnn.spec" -o x.tns --lr 1e30 --threads 1 train.tns &&
	grep -q "loss is \(nan\|infinite\) at step [0-9]* (epoch 1); stopped before any checkpoint" .stderr &&
	test ! -e x.tns && test ! -e x.tns.ckpt
'

test_expect_success 'a NaN loss later keeps the last good checkpoint' '
	test_error 1 snet-train -q -m "$M/zoo-cnn.spec" -o x.tns --schedule step --step-size 1 --gamma 1e6 \
		--epochs 3 --threads 1 train.tns &&
	grep -q "at step [0-9]* (epoch 2); stopped, the last good checkpoint is .x.tns.ckpt." .stderr &&
	test ! -e x.tns &&
	tns-info x.tns.ckpt | tail -n 1 | grep -q "train_state .* epoch=1 step_in_epoch=0 step=16 " &&
	snet-train -q -o x.tns --epochs 1 --schedule step --step-size 1 --gamma 1e6 --threads 1 \
		--resume x.tns.ckpt train.tns && test -s x.tns
'

test_expect_success 'a truncated model stream is an error, not a crash' '
	snet-train -q -m "$M/zoo-cnn.spec" -o good.tns --epochs 1 --threads 1 train.tns &&
	head -c 3000 good.tns >cut.tns &&
	test_error 1 snet-train -m cut.tns -o x.tns train.tns
'

test_done
