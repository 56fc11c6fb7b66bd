#!/bin/sh
# nsm-pretrain: checkpoints, interruption (--stop-after-steps, SIGTERM) and
# --resume: the final model is bitwise identical to an uninterrupted run;
# checkpoints of other options are refused with the difference named.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 500 --chunk 200 >train.tns || exit 1
printf "input 1 28 28 scale=0.00392156862745098\nflatten\nlinear 10\n" >lin.spec
ARGS="-k 6 --size 4 --iters 15 --batch 32 --epochs 2 --schedule cosine"

for j in 1 2; do
	test_expect_success "stopped mid-epoch and resumed: the same bytes ($j thread(s))" '
		mkdir -p full$j part$j &&
		(cd full$j && nsm-pretrain -q $ARGS --threads '$j' -o m.tns ../train.tns) &&
		(cd part$j &&
		 { nsm-pretrain -q $ARGS --threads '$j' -o m.tns --stop-after-steps 5 ../train.tns; test $? -eq 3; } &&
		 test ! -e m.tns && test -s m.tns.ckpt &&
		 { nsm-pretrain -q $ARGS --threads '$j' -o m.tns --resume m.tns.ckpt --stop-after-steps 20 ../train.tns;
		   test $? -eq 3; } &&
		 nsm-pretrain $ARGS --threads '$j' -o m.tns --resume m.tns.ckpt ../train.tns 2>err &&
		 cat err >&2 &&
		 grep -q "^nsm-pretrain: resuming m.tns.ckpt at epoch 2, step 9 of 16 (global step 25)$" err) &&
		cmp full$j/m.tns part$j/m.tns
	'
done

test_expect_success 'supervised: stopped and resumed, the same bytes (Wz restored)' '
	nsm-pretrain -q $ARGS --supervised --threads 1 -o s.tns train.tns &&
	{ nsm-pretrain -q $ARGS --supervised --threads 1 -o s2.tns --stop-after-steps 9 train.tns; test $? -eq 3; } &&
	nsm-pretrain -q $ARGS --supervised --threads 1 -o s2.tns --resume s2.tns.ckpt train.tns &&
	tns-info s.tns | grep -o "crc32=[0-9a-f]*" >a && tns-info s2.tns | grep -o "crc32=[0-9a-f]*" >b &&
	test_cmp a b
'

test_expect_success 'SIGTERM finishes the step, writes the checkpoint and exits 3' '
	nsm-pretrain -q -k 20 --size 5 --iters 200 --batch 8 --epochs 50 --threads 1 -o t.tns train.tns &
	pid=$! &&
	i=0 && while test ! -e t.tns.ckpt && test $i -lt 100; do sleep 0.1; i=$((i + 1)); done &&
	sleep 0.3 && kill -TERM $pid;
	wait $pid; s=$? &&
	test $s -eq 3 && test -s t.tns.ckpt && test ! -e t.tns &&
	test -z "$(ls -A | grep "^\.t\.tns")"
'

test_expect_success 'a checkpoint of other options or of another program is refused, naming it' '
	{ nsm-pretrain -q $ARGS --threads 1 -o m.tns --stop-after-steps 3 train.tns; test $? -eq 3; } &&
	test_error 1 nsm-pretrain -q $ARGS --threads 1 --tau 0.2 -o m.tns --resume m.tns.ckpt train.tns &&
	grep -q "made with tau=0.1, this run has tau=0.2" .stderr &&
	test_error 1 nsm-pretrain -q $ARGS --threads 1 --lr 0.1 -o m.tns --resume m.tns.ckpt train.tns &&
	grep -q "made with lr=0.05, this run has lr=0.1" .stderr &&
	test_error 1 nsm-pretrain -q $ARGS --threads 2 -o m.tns --resume m.tns.ckpt train.tns &&
	grep -q "checkpoint threads 1 differs from --threads 2" .stderr &&
	test_error 1 nsm-pretrain -q $ARGS --threads 1 -o m.tns --resume m.tns.ckpt --max-images 400 train.tns &&
	grep -q "checkpoint was trained on 500 examples, the data has 400" .stderr &&
	nsm-pretrain -q $ARGS --threads 1 --epochs 1 -o x.tns train.tns &&
	test_error 1 nsm-pretrain -q $ARGS --threads 1 -o m.tns --resume x.tns train.tns &&
	grep -q "not a checkpoint" .stderr &&
	snet-train -q -m lin.spec --epochs 1 --threads 1 --stop-after-steps 1 -o l.tns train.tns;
	test -s l.tns.ckpt &&
	test_error 1 nsm-pretrain -q $ARGS --threads 1 -o m.tns --resume l.tns.ckpt train.tns
'

test_expect_success 'more epochs continue a finished run (--epochs may change on resume)' '
	nsm-pretrain -q $ARGS --threads 1 -o e2.tns train.tns &&
	nsm-pretrain -q $ARGS --threads 1 --epochs 3 -o e3.tns --resume e2.tns.ckpt train.tns &&
	tns-info e3.tns | grep -q "epochs=3" &&
	tns-info e2.tns | grep "nsm1\." >a && tns-info e3.tns | grep "nsm1\." >b && ! test_cmp a b
'

test_expect_success 'a finished checkpoint resumes to writing the model only' '
	nsm-pretrain -q $ARGS --threads 1 -o f.tns train.tns &&
	nsm-pretrain $ARGS --threads 1 -o f2.tns --resume f.tns.ckpt train.tns 2>err &&
	grep -q "already finished 2 of 2 epochs" err &&
	tns-info f.tns | grep "nsm1\." >a && tns-info f2.tns | grep "nsm1\." >b && test_cmp a b
'
test_done
