#!/bin/sh
# nsm-pretrain --algo kmeans: interrupted (--stop-after-steps, SIGINT) and
# resumed, the filters are the bytes of an uninterrupted run (the per-centre
# counts are in the checkpoint); --supervised refuses labels that are not
# class indices (negative, INT32_MAX, not below --classes) in one line.
# Synthetic data only.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"

"$GEN" gen data:300:100:1x12x12 >train.tns || exit 1
# with_labels V...: 4 images of train.tns with the i32 labels V (each given
# as 4 little-endian bytes in octal escapes)
with_labels() {
	{ "$GEN" gen data:4:4:1x12x12 | tns-select -q -n images && printf "$1$2$3$4" | "$GEN" wrap labels i32 4; }
}
ARGS="--algo kmeans -k 6 --size 4 --batch 16 --epochs 2 --threads 1"

test_expect_success 'kmeans stopped twice and resumed: the same bytes' '
	mkdir full part &&
	(cd full && nsm-pretrain -q $ARGS -o m.tns ../train.tns) &&
	cd part &&
	{ nsm-pretrain -q $ARGS -o m.tns --stop-after-steps 7 ../train.tns 2>/dev/null; test $? -eq 3; } &&
	tns-info m.tns.ckpt | grep -q "^[0-9]* *state.kmeans.count *i32 6x2 " &&
	{ nsm-pretrain -q $ARGS -o m.tns --resume m.tns.ckpt --stop-after-steps 25 ../train.tns 2>/dev/null;
	  test $? -eq 3; } &&
	nsm-pretrain $ARGS -o m.tns --resume m.tns.ckpt ../train.tns 2>err &&
	grep -q "^nsm-pretrain: resuming m.tns.ckpt at epoch 2, step 13 of 19 (global step 32)$" err &&
	cmp ../full/m.tns m.tns
'

ARGS2="--algo kmeans -k 8 --size 3 --batch 4 --epochs 40 --threads 1 --checkpoint-every 50"
test_expect_success 'kmeans interrupted by SIGINT and resumed: the same bytes' '
	mkdir sfull sig &&
	(cd sfull && nsm-pretrain -q $ARGS2 -o m.tns ../train.tns) &&
	cd sig &&
	{ nsm-pretrain -q $ARGS2 -o m.tns ../train.tns 2>err &
	  pid=$!
	  i=0; while [ ! -s m.tns.ckpt ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	  kill -INT $pid; wait $pid; s=$?; echo "exit $s" >&2; test $s -eq 3 || test $s -eq 0; } &&
	if [ $s -eq 3 ]; then
		grep -q "interrupted by SIGINT" err && test ! -e m.tns &&
		nsm-pretrain -q $ARGS2 -o m.tns --resume m.tns.ckpt ../train.tns
	fi &&
	cmp ../sfull/m.tns m.tns
'

test_expect_success 'supervised: a label of INT32_MAX is refused in one line, naming it' '
	with_labels "\0\0\0\0" "\1\0\0\0" "\377\377\377\177" "\2\0\0\0" >big.tns &&
	test_error 1 nsm-pretrain --supervised -k 4 --size 3 -o m.tns big.tns &&
	grep -q "labels up to 2147483647 would make 2147483648 classes (at most 100000" .stderr &&
	test_error 1 nsm-pretrain --supervised --classes 10 -k 4 --size 3 -o m.tns big.tns &&
	grep -q "label 2147483647 of example 2 is not below --classes 10" .stderr &&
	test ! -e m.tns && test ! -e m.tns.ckpt
'

test_expect_success 'supervised: a negative label is refused in one line' '
	with_labels "\0\0\0\0" "\377\377\377\377" "\1\0\0\0" "\2\0\0\0" >neg.tns &&
	test_error 1 nsm-pretrain --supervised -k 4 --size 3 -o m.tns neg.tns &&
	grep -q "label -1 of example 1 is negative" .stderr &&
	with_labels "\0\0\0\0" "\0\0\0\200" "\1\0\0\0" "\2\0\0\0" >min.tns &&
	test_error 1 nsm-pretrain --supervised --classes 3 -k 4 --size 3 -o m.tns min.tns &&
	grep -q "label -2147483648 of example 1 is negative" .stderr &&
	test ! -e m.tns
'

# the data are read whole: a label in a later chunk counts for the classes,
# and one past --classes is refused before training, naming the example
test_expect_success 'supervised: a label past --classes in a later chunk is refused in one line' '
	{ with_labels "\0\0\0\0" "\1\0\0\0" "\2\0\0\0" "\1\0\0\0" &&
	  with_labels "\0\0\0\0" "\5\0\0\0" "\1\0\0\0" "\1\0\0\0"; } >late.tns &&
	test_error 1 nsm-pretrain -q --supervised --classes 3 -k 4 --size 3 --iters 5 --batch 2 --threads 1 \
		-o m.tns late.tns &&
	grep -q "^nsm-pretrain: late.tns: label 5 of example 5 is not below --classes 3$" .stderr &&
	test ! -e m.tns && test ! -e m.tns.ckpt &&
	nsm-pretrain -q --supervised -k 4 --size 3 --iters 5 --batch 2 --threads 1 -o m6.tns late.tns &&
	tns-info m6.tns.ckpt | grep -q "state.nsm.wz *f32 4x6 "
'

test_expect_success 'supervised: labels 0..2 give three classes' '
	with_labels "\0\0\0\0" "\1\0\0\0" "\2\0\0\0" "\1\0\0\0" >ok.tns &&
	nsm-pretrain -q --supervised -k 4 --size 3 --iters 5 --batch 2 --threads 1 -o m.tns ok.tns &&
	tns-info m.tns.ckpt | grep -q "state.nsm.wz *f32 4x3 "
'
test_done
