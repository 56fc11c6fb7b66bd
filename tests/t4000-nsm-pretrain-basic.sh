#!/bin/sh
# nsm-pretrain: real pipelines on a synthetic data set: the output model is
# what the man page says, it runs in snet-infer, initialises snet-train by
# name, snet-infer --layer pool --dataset gives a data set a linear
# classifier learns from (on Fashion-MNIST too when installed), runs are
# reproducible, and the loop's options (schedules, --log) are snet-train's.
. "$SK_SRCDIR/tests/lib.sh"
synth_split 600 512 || exit 1
ARGS="-k 8 --size 5 --iters 20 --batch 64"

test_expect_success '--help and --version' '
	test_help_version nsm-pretrain "\[options\] \[DATA|-\] -o OUT" &&
	grep -q -- "--supervised" "$test_tmp/.help" && grep -q -- "--resume CKPT" "$test_tmp/.help"
'

test_expect_success 'learns from a pipe: input and nsm layer, nsm1.w and nsm1.m' '
	nsm-pretrain $ARGS --threads 1 -o m.tns - <train.tns 2>err &&
	cat err >&2 &&
	grep -q "^nsm-pretrain: 8 filters 1x5x5 stride 1 on 1x28x28 images (scale 0.00392157), 20 dynamics steps" err &&
	grep -q "^nsm-pretrain: epoch 1/1: 8 steps, loss -\?[0-9.]*, last |dy|/|y| [0-9.e+-]*, active 0\.[0-9]*" err &&
	! grep -q "$(printf "\r")" err &&
	tns-info m.tns >info &&
	grep -q "^0 *model .*trainer=nsm-pretrain .*records=2$" info &&
	grep -q "^1 *nsm1.w *f32 *8x1x5x5" info &&
	grep -q "^2 *nsm1.m *f32 *8x8" info &&
	test -s m.tns.ckpt
'

test_expect_success 'the filters moved away from their initialisation (--epochs 0 keeps it)' '
	nsm-pretrain -q $ARGS --threads 1 --epochs 0 -o init.tns train.tns &&
	record_crcs init.tns nsm1.w >a && record_crcs m.tns nsm1.w >b && test -s a && ! test_cmp a b
'

test_expect_success 'the same seed and threads give the same bits; another seed differs' '
	nsm-pretrain -q $ARGS --threads 2 -o t2a.tns train.tns &&
	nsm-pretrain -q $ARGS --threads 2 -o t2b.tns train.tns &&
	tns-info t2a.tns | grep "nsm1\." >a && tns-info t2b.tns | grep "nsm1\." >b && test_cmp a b &&
	nsm-pretrain -q $ARGS --threads 2 --seed 7 -o s7.tns train.tns &&
	tns-info s7.tns | grep "nsm1\." >c && ! test_cmp a c
'

test_expect_success 'snet-infer runs the dynamics as a feature extractor (--layer)' '
	snet-infer -q -m m.tns --layer nsm1 valid.tns >f.tns &&
	tns-info f.tns | grep -q "f32 *88x4608 .*layer=nsm1 shape=8x24x24"
'

test_expect_success '--conv-out and --emit conv: the same filters as conv1.w, no bias' '
	nsm-pretrain -q $ARGS --threads 1 -o n.tns --conv-out c.tns train.tns &&
	nsm-pretrain -q $ARGS --threads 1 -o c2.tns --emit conv train.tns &&
	record_crcs n.tns nsm1.w >a && record_crcs c.tns conv1.w >b && record_crcs c2.tns conv1.w >c &&
	test -s a && test_cmp a b && test_cmp a c &&
	tns-info c.tns | grep -q "records=1$"
'

test_expect_success 'snet-train --init copies the filters by name; --freeze keeps them' '
	cat >lenet.spec <<-\EOT &&
	input 1 28 28 scale=0.00392156862745098
	conv 8 k=5 name=conv1
	relu
	pool max k=2
	flatten
	linear 10
	EOT
	snet-train -q -m lenet.spec --init c.tns --freeze conv1 --epochs 1 --threads 1 -o net.tns train.tns &&
	record_crcs c.tns conv1.w >a && record_crcs net.tns conv1.w >b && test -s a && test_cmp a b &&
	snet-train -q -m lenet.spec --init c.tns --epochs 1 --threads 1 -o tuned.tns train.tns &&
	record_crcs tuned.tns conv1.w >c && ! test_cmp a c
'

test_expect_success 'the nsm layer in a model trains (frozen, backprop=0) and learns' '
	cat >feat.spec <<-\EOT &&
	input 1 28 28 scale=0.00392156862745098
	nsm 8 k=5 iters=20 backprop=0 name=nsm1
	pool max k=2
	flatten
	linear 10
	EOT
	snet-train -q -m feat.spec --init m.tns --freeze nsm1 --epochs 2 --threads 2 -o fm.tns train.tns &&
	record_crcs m.tns "nsm1\." >a && record_crcs fm.tns "nsm1\." >b && test -s a && test_cmp a b &&
	snet-infer -m fm.tns --eval valid.tns >metrics && accuracy_above 0.5
'

test_expect_success '--pool and snet-infer --dataset: pooled features as a data set a linear model learns' '
	nsm-pretrain -q $ARGS --threads 2 --pool 2 -o p.tns train.tns &&
	tns-info p.tns | grep -q "^0 *model" &&
	snet-infer -q -m p.tns --layer pool --dataset --threads 2 -o ftr.tns train.tns &&
	snet-infer -q -m p.tns --layer pool --dataset --threads 1 -o fva.tns valid.tns &&
	tns-info ftr.tns >info && cat info >&2 &&
	grep -q "^0 *images *f32 *512x8x12x12" info && grep -q "^1 *labels *i32 *512" info &&
	printf "input 8 12 12\nflatten\nlinear 10\n" >lin.spec &&
	snet-train -q -m lin.spec --epochs 10 --threads 1 -o lin.tns ftr.tns &&
	snet-infer -m lin.tns --eval fva.tns >metrics && accuracy_above 0.6
'

if test_have_prereq fmnist; then
	test_expect_success 'on a Fashion-MNIST slice the pooled features train a linear model too' '
		fmnist_split 600 512 &&
		nsm-pretrain -q $ARGS --threads 2 --pool 2 -o fm-p.tns fm-train.tns &&
		snet-infer -q -m fm-p.tns --layer pool --dataset -o fm-ftr.tns fm-train.tns &&
		snet-infer -q -m fm-p.tns --layer pool --dataset -o fm-fva.tns fm-valid.tns &&
		snet-train -q -m lin.spec --epochs 10 --threads 1 -o fm-lin.tns fm-ftr.tns &&
		snet-infer -m fm-lin.tns --eval fm-fva.tns >metrics && accuracy_above 0.6
	'
else
	test_skip 'on a Fashion-MNIST slice the pooled features train a linear model too' "no Fashion-MNIST in $FMNIST_DIR"
fi

test_expect_success 'snet-infer --dataset: the bits of --layer, with 1 and 2 threads; --transform is gone' '
	snet-infer -q -m m.tns --layer nsm1 --dataset --threads 2 -o t2.tns valid.tns &&
	snet-infer -q -m m.tns --layer nsm1 --threads 1 valid.tns >si.tns &&
	tns-info t2.tns | grep images | grep -o "crc32=[0-9a-f]*" >a &&
	tns-info si.tns | grep features | grep -o "crc32=[0-9a-f]*" >b &&
	test -s a && test_cmp a b &&
	test_error 2 nsm-pretrain -q --transform m.tns -o t3.tns valid.tns && test ! -e t3.tns
'

test_expect_success '--supervised: learns with labels, the label encoder stays out of the model' '
	nsm-pretrain -q $ARGS --threads 1 --supervised --label-scale 2 -o sup.tns train.tns &&
	tns-info sup.tns >info && grep -q "nsm_supervised=1" info && grep -q "records=2$" info &&
	! grep -q wz info &&
	tns-info sup.tns.ckpt | grep -q "state.nsm.wz *f32 *8x10" &&
	tns-info sup.tns | awk "/nsm1.w/ {print \$NF}" >a &&
	tns-info m.tns | awk "/nsm1.w/ {print \$NF}" >b && ! test_cmp a b
'

test_expect_success 'whiten and none regularisers, unit init, schedules, --tol, --log' '
	nsm-pretrain -q $ARGS --threads 1 --reg whiten --init unit --schedule cosine --tol 1e-3 \
		--epochs 2 --log log.tsv -o w.tns train.tns &&
	nsm-pretrain -q $ARGS --threads 1 --reg none --schedule step --gamma 0.5 -o z.tns train.tns &&
	head -n 1 log.tsv | grep -q "^epoch	loss	train_acc	valid_acc	lr	images_per_s	seconds	delta	active$" &&
	test $(wc -l <log.tsv) -eq 3 &&
	awk "NR == 3 {exit !(\$1 == 2 && \$3 == \"NA\" && \$4 == \"NA\" && \$5 > 0 && \$5 < 0.001)}" log.tsv
'

test_expect_success 'the schedule options are snet-train'"'"'s: multistep, --milestones, --warmup' '
	nsm-pretrain -q $ARGS --threads 1 --epochs 2 --schedule multistep --milestones 1 --gamma 0.5 --warmup 1 \
		--log ms.tsv -o ms.tns train.tns &&
	awk "NR == 2 && \$5 != 0.05 {exit 1} NR == 3 && \$5 != 0.025 {exit 1}" ms.tsv &&
	snet-train -q -m lin.spec --epochs 1 --threads 1 --log lin.tsv -o lin1.tns ftr.tns &&
	head -n 1 lin.tsv >a && head -n 1 ms.tsv | cut -f 1-7 >b && test_cmp a b
'

test_expect_success 'more than one epoch from stdin (the data are read once, into memory)' '
	nsm-pretrain -q $ARGS --threads 1 --epochs 2 -o e2.tns - <train.tns &&
	nsm-pretrain -q $ARGS --threads 1 --epochs 2 -o e2f.tns train.tns &&
	tns-info e2.tns | grep "nsm1\." >a && tns-info e2f.tns | grep "nsm1\." >b && test_cmp a b
'
test_expect_success '--algo kmeans: a baseline with the same output' '
	nsm-pretrain $ARGS --threads 1 --algo kmeans --emit conv -o km.tns train.tns 2>err &&
	grep -q "^nsm-pretrain: k-means baseline: 8 filters 1x5x5" err &&
	tns-info km.tns | grep -q "algo=kmeans .*records=1$" &&
	tns-info km.tns | grep -q "conv1.w *f32 *8x1x5x5"
'
test_done
