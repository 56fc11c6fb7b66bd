#!/bin/sh
# zoo-encode run and scripts/make-zoo: runs draw their hyperparameters from
# the seed, keep one member per checkpoint with metrics as attributes, are
# reproducible, and a zoo rebuilt after losing a run is the same zoo.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 800 >all.tns || exit 1
tns-select -q --range 0:600 all.tns >train.tns && tns-select -q --range 600:800 all.tns >test.tns || exit 1
rm -f all.tns

test_expect_success 'a run keeps one member per checkpoint epoch, with hyperparameters and metrics' '
	zoo-encode run -q -D train.tns -T test.tns --seed 7 -C 0,1,3 -o run7.tns &&
	tns-info run7.tns >info &&
	test $(awk "\$2 == \"model\"" info | wc -l) -eq 3 &&
	awk "\$2 == \"model\"" info >models &&
	for e in 0 1 3; do grep -q " epoch=$e " models || exit 1; done &&
	for k in run=zoo-cnn-7 arch=zoo-cnn activation= w_init= init_std= learning_rate= l2reg= dropout= \
		optimizer= train_fraction= train_examples= batch=512 epochs=3 steps= train_acc= train_loss= test_acc= \
		test_loss= diverged=0; do
		grep -q " $k" models || { echo "missing $k" >&2; exit 1; }
	done &&
	grep -q "conv2.w *f32 *16x1x3x3" info && grep -q "linear[0-9]*.w *f32 *10x16" info
'

test_expect_success 'the same seed gives the same bytes; another seed other hyperparameters' '
	mkdir a b &&
	(cd a && zoo-encode run -q -D ../train.tns -T ../test.tns --seed 7 -C 0,1,3 -o r.tns) &&
	(cd b && zoo-encode run -q -D ../train.tns -T ../test.tns --seed 7 -C 0,1,3 -o r.tns) &&
	cmp a/r.tns b/r.tns &&
	zoo-encode run -q -D train.tns -T test.tns --seed 8 -C 0 -o run8.tns &&
	tns-info run7.tns | awk "\$2 == \"model\"" | head -1 | grep -o "activation.*train_fraction=[0-9.]*" >h7 &&
	tns-info run8.tns | awk "\$2 == \"model\"" | grep -o "activation.*train_fraction=[0-9.]*" >h8 &&
	! cmp -s h7 h8
'

test_expect_success 'the second architecture, share/models/zoo-cnn2.spec (conv, pool, conv, pool, dense 32, dense 10)' '
	zoo-encode run -q -A zoo-cnn2 -D train.tns -T test.tns --seed 3 -C 0,1 -o a2.tns &&
	tns-info a2.tns >info2 &&
	grep -q "conv[0-9]*.w *f32 *8x1x3x3" info2 && grep -q "conv[0-9]*.w *f32 *16x8x3x3" info2 &&
	grep -q "linear[0-9]*.w *f32 *32x400" info2 && grep -q "linear[0-9]*.w *f32 *10x32" info2 &&
	awk "\$2 == \"model\"" info2 | grep -q " run=zoo-cnn2-3 arch=zoo-cnn2 "
'

test_expect_success 'make-zoo builds a zoo with make -j; losing a run and rebuilding gives the same zoo' '
	"$SK_SRCDIR/scripts/make-zoo" -n 3 -j 2 -D train.tns -T test.tns -C 0,1 -o z.tns 2>log &&
	cat log >&2 && grep -q "6 members from 3 runs" log &&
	test $(tns-info z.tns | awk "\$2 == \"model\"" | wc -l) -eq 6 &&
	cp z.tns z1.tns && rm z.tns.d/run-2.tns z.tns &&
	"$SK_SRCDIR/scripts/make-zoo" -n 3 -j 2 -D train.tns -T test.tns -C 0,1 -o z.tns 2>/dev/null &&
	cmp z.tns z1.tns &&
	cat z.tns.d/run-1.tns z.tns.d/run-2.tns z.tns.d/run-3.tns | cmp - z.tns
'

test_expect_success 'a bad run is refused with one message' '
	test_error 2 zoo-encode run -D train.tns &&
	test_error 2 zoo-encode run -D train.tns -T test.tns -C 3,1 &&
	test_error 2 zoo-encode run -D train.tns -T test.tns -A resnet &&
	test_error 1 zoo-encode run -D nosuch.tns -T test.tns -o x.tns &&
	test ! -e x.tns
'

test_done
