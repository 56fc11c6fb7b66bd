#!/bin/sh
# snet-train --micro-batch N: a share runs forward and backward in pieces
# of at most N examples, their gradients summed.  N at least the batch
# gives the parameters of whole batches bit for bit; smaller N the same
# training up to rounding, with dropout and augmentation as in whole
# batches; the run records it, a resume takes it and refuses another; a
# model with batch statistics (bn) is refused before any output.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 320 >train.tns || exit 1
cat >net.spec <<'SPEC' || exit 1
input 1 28 28 scale=0.00392156862745098
conv 8 k=3 stride=2
relu
dropout p=0.3
conv 8 k=3 stride=2
relu
flatten
linear 10
SPEC
RUN="-q -m net.spec --epochs 3 --batch 64 --lr 0.05 --crop 1 --threads 1"
# the parameter records of a model stream (name and CRC), without the model line
params() { tns-info "$1" | awk '$2 != "model" && $2 != "train_state" { print $2, $NF }'; }
# the last epoch's training loss in a --log file
lastloss() { awk -F '\t' '$1 ~ /^[0-9]+$/ { l = $2 } END { print l }' "$1"; }

test_expect_success 'pieces as large as the batch: the parameters of whole batches, bit for bit' '
	snet-train $RUN -o w.tns --log w.log train.tns &&
	snet-train $RUN --micro-batch 64 -o w64.tns train.tns &&
	snet-train $RUN --micro-batch 1000 -o w1000.tns train.tns &&
	params w.tns >p && params w64.tns >p64 && params w1000.tns >p1000 &&
	test -s p && test_cmp p p64 && test_cmp p p1000
'

test_expect_success 'smaller pieces: the same training up to rounding, recorded as hp.micro-batch' '
	snet-train $RUN --micro-batch 10 -o m.tns --log m.log train.tns &&
	params m.tns >pm && ! cmp -s p pm &&
	a=$(lastloss w.log) && b=$(lastloss m.log) &&
	awk -v a="$a" -v b="$b" "BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d < 1e-3 * a) }" &&
	snet-train $RUN --micro-batch 10 -o m2.tns train.tns && params m2.tns >pm2 && test_cmp pm pm2 &&
	{ snet-train $RUN --micro-batch 10 -o s.tns --stop-after-steps 4 train.tns; test $? -eq 3; } &&
	tns-info s.tns.ckpt | tail -n 1 | sed "s/$/ /" >state &&
	grep -q " hp.micro-batch=10 " state && grep -q " micro_batch=10 " state &&
	{ snet-train $RUN -o w2.tns --stop-after-steps 4 train.tns; test $? -eq 3; } &&
	! tns-info w2.tns.ckpt | grep -q "micro"
'

test_expect_success 'a resume takes the recorded micro-batch and refuses another' '
	snet-train -q --resume s.tns.ckpt -o s.tns train.tns && params s.tns >ps && test_cmp pm ps &&
	{ snet-train $RUN --micro-batch 10 -o t.tns --stop-after-steps 4 train.tns; test $? -eq 3; } &&
	test_error 1 snet-train -q --resume t.tns.ckpt --micro-batch 20 -o t.tns train.tns &&
	grep -q "micro-batch 20 differs from the checkpoint.s 10" "$test_tmp/.stderr" &&
	test_error 1 snet-train -q --resume w2.tns.ckpt --micro-batch 20 -o w2.tns train.tns
'

test_expect_success 'two threads: each share in pieces, the same bits run to run' '
	snet-train -q -m net.spec --epochs 1 --batch 64 --threads 2 --micro-batch 8 -o j.tns train.tns &&
	snet-train -q -m net.spec --epochs 1 --batch 64 --threads 2 --micro-batch 8 -o j2.tns train.tns &&
	params j.tns >pj && params j2.tns >pj2 && test_cmp pj pj2 &&
	snet-train -q -m net.spec --epochs 1 --batch 64 --threads 2 -o k.tns train.tns && params k.tns >pk &&
	! cmp -s pj pk
'

test_expect_success 'batch statistics (bn) are refused before any output; a bad N is a usage error' '
	printf "input 1 28 28\nconv 4 k=3 stride=2\nbn\nrelu\nflatten\nlinear 10\n" >bn.spec &&
	test_error 1 snet-train -q -m bn.spec --epochs 1 --micro-batch 8 -o b.tns train.tns &&
	grep -q "layer bn[0-9]* (bn): it uses batch statistics" "$test_tmp/.stderr" &&
	test ! -e b.tns && test ! -e b.tns.ckpt &&
	snet-train -q -m bn.spec --epochs 1 --micro-batch 0 -o b.tns train.tns &&
	test_error 2 snet-train -q -m net.spec --micro-batch -3 -o c.tns train.tns &&
	test_error 2 snet-train -q -m net.spec --micro-batch x -o c.tns train.tns && test ! -e c.tns
'
test_done
