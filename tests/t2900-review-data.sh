#!/bin/sh
# Hardening: training data with a NaN or an infinity is refused where it is
# read (ReLU maps NaN to 0, so the loss stays finite while the parameters
# silently become NaN), naming the file, record and example; snet-infer
# refuses examples whose shape differs from the model's input even when the
# sizes agree (as snet-train does); snet-train -o /dev/null does not write
# /dev/null.ckpt.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"

one='\000\000\200\077'
nan='\000\000\300\177'
inf='\000\000\200\177'
i0='\000\000\000\000'
i1='\001\000\000\000'
ok4="$one$one$one$one"
b4='\001\001\001\001'
b16="$b4$b4$b4$b4"
npy labels.npy '<i4' '4,' "$i0$i1$i0$i1"
npy good.npy '<f4' '4, 1, 2, 2' "$ok4$ok4$ok4$ok4"
npy nan.npy '<f4' '4, 1, 2, 2' "$ok4$ok4$one$one$one$nan$ok4"
npy inf.npy '<f4' '4, 1, 2, 2' "$ok4$ok4$ok4$one$inf$one$one"
printf 'input 1 2 2\nflatten\nlinear 2\n' >net.spec

test_expect_success 'f32 data sets import and train' '
	tns-import -q -o good.tns good.npy labels.npy &&
	snet-train -q -m net.spec -e 1 -b 2 -j 1 -o m.tns good.tns &&
	tns-info m.tns | grep -q "linear3.w"
'

test_expect_success 'a NaN in the data is refused by snet-train and snet-infer, naming record and example' '
	tns-import -q --chunk 2 -o nan.tns nan.npy labels.npy &&
	test_error 1 snet-train -q -m net.spec -e 1 -b 2 -j 1 -o m2.tns nan.tns &&
	grep -q "^snet-train: nan.tns: record 2: example 2 has a non-finite value (nan at offset 3)" .stderr &&
	test ! -e m2.tns && test ! -e m2.tns.ckpt &&
	test_error 1 snet-infer -m m.tns -o p.tns nan.tns &&
	grep -q "^snet-infer: nan.tns: record 2: example 2 has a non-finite value (nan at offset 3)" .stderr &&
	test ! -e p.tns
'

test_expect_success 'an infinity in the validation data is refused' '
	tns-import -q -o inf.tns inf.npy labels.npy &&
	test_error 1 snet-train -q -m net.spec -e 1 -b 2 -j 1 --valid inf.tns -o m3.tns good.tns &&
	grep -q "inf.tns: record 0: example 3 has a non-finite value (inf at offset 1)" .stderr &&
	test ! -e m3.tns
'

test_expect_success 'snet-infer refuses data of another shape with the same size' '
	npy u8a.npy "|u1" "4, 1, 2, 2" "$b16" &&
	npy u8b.npy "|u1" "4, 2, 2, 1" "$b16" &&
	npy u8v.npy "|u1" "4, 4" "$b16" &&
	tns-import -q -o a.tns u8a.npy labels.npy &&
	tns-import -q -o b.tns u8b.npy labels.npy &&
	tns-import -q -o v.tns u8v.npy labels.npy &&
	snet-infer -m m.tns a.tns >p.tns && tns-info p.tns | grep -q " 4x2 " &&
	test_error 1 snet-infer -m m.tns b.tns &&
	grep -q "^snet-infer: chunk 1: examples are 2x2x1 but the model.s input is 1x2x2" .stderr &&
	test_error 1 snet-infer -m m.tns --eval v.tns &&
	grep -q "examples are 4 but the model.s input is 1x2x2" .stderr &&
	test_error 1 snet-infer -m m.tns -o p2.tns v.tns && test ! -e p2.tns
'

test_expect_success 'snet-train puts no OUT.ckpt next to a device or a FIFO' '
	test_error 2 snet-train -q -m net.spec -e 1 -b 2 -j 1 -o /dev/null good.tns &&
	grep -q "^snet-train: /dev/null is not a regular file: name the checkpoint with --checkpoint FILE" .stderr &&
	test ! -e /dev/null.ckpt &&
	mkfifo fifo &&
	test_error 2 snet-train -q -m net.spec -e 1 -b 2 -j 1 -o fifo good.tns &&
	test ! -e fifo.ckpt &&
	snet-train -q -m net.spec -e 1 -b 2 -j 1 -o /dev/null --checkpoint c.ckpt good.tns &&
	tns-info c.ckpt | grep -q train_state
'

if test -c /dev/full; then
	test_expect_success 'snet-train reports a log it could not write' '
		test_error 1 snet-train -q -m net.spec -e 2 -b 2 -j 1 -o m4.tns --log /dev/full good.tns &&
		grep -q "^snet-train: /dev/full: write error" .stderr
	'
else
	test_skip 'snet-train reports a log it could not write' 'no /dev/full'
fi

test_done
