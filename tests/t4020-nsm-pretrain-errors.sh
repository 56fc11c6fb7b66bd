#!/bin/sh
# nsm-pretrain: usage errors (exit 2), bad data (exit 1, one line naming the
# problem), divergence (names the step, keeps the last good checkpoint).
. "$SK_SRCDIR/tests/lib.sh"
synth_data 300 >train.tns || exit 1

test_expect_success 'usage errors exit 2 with one line and no output' '
	test_error 2 nsm-pretrain train.tns &&
	test_error 2 nsm-pretrain -o x.tns --bogus train.tns &&
	test_error 2 nsm-pretrain -o x.tns --reg l1 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --schedule warm train.tns &&
	test_error 2 nsm-pretrain -o x.tns --filters 0 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --eta 0 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --classes 10 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --schedule linear train.tns &&
	test_error 2 nsm-pretrain -o x.tns --lr-min 0.01 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --schedule multistep train.tns &&
	test_error 2 nsm-pretrain -o x.tns -n 10 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --emit conv --pool 2 train.tns &&
	test_error 2 nsm-pretrain -o x.tns --name "a b" train.tns &&
	test_error 2 nsm-pretrain -o - train.tns &&
	test_error 2 nsm-pretrain -o x.tns train.tns more.tns &&
	test ! -e x.tns
'

test_expect_success 'bad data exits 1 with one line' '
	: >empty.tns &&
	test_error 1 nsm-pretrain -q -o x.tns empty.tns &&
	test_error 1 nsm-pretrain -q -o x.tns missing.tns &&
	test_error 1 nsm-pretrain -q -o x.tns --size 30 train.tns &&
	grep -q "filter size 30 does not fit the 28x28 input" .stderr &&
	printf "not a stream" >junk.tns &&
	test_error 1 nsm-pretrain -q -o x.tns junk.tns &&
	tns-select -q -n images train.tns >nolabels.tns &&
	test_error 1 nsm-pretrain -q -o x.tns --supervised nolabels.tns &&
	grep -q "needs labels" .stderr &&
	test ! -e x.tns
'

test_expect_success 'divergence names the step and keeps the last good checkpoint' '
	test_error 1 nsm-pretrain -q -k 4 --size 3 --iters 5 --batch 10 --lr 1000 --checkpoint-every 1 \
		-o x.tns train.tns &&
	grep -q "^nsm-pretrain: step [0-9]* (epoch 1): nsm: non-finite .*; the last good checkpoint is .x.tns.ckpt.$" .stderr &&
	test ! -e x.tns
'

test_expect_success 'snet-infer --dataset: a model without the right input is refused; --layer is needed' '
	printf "input 1 20 20\nnsm 4 k=3 name=nsm1\n" >small.spec &&
	{ snet-infer -q -m small.spec --layer nsm1 --dataset -o f.tns train.tns 2>err; test $? -eq 1; } &&
	grep -q "^snet-infer: chunk 1: .*the model.s input is 1x20x20$" err && test ! -e f.tns &&
	test_error 2 snet-infer -q -m small.spec --dataset -o f.tns train.tns && test ! -e f.tns
'
test_done
