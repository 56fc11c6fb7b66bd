#!/bin/sh
# snet-infer: predictions, features and metrics from real pipelines on a
# synthetic data set (a separate test set: another seed); output in chunks
# (bounded memory); errors.
. "$SK_SRCDIR/tests/lib.sh"
M=$SK_SRCDIR/share/models
synth_data 1500 >train.tns || exit 1
synth_data -s 2 1000 --chunk 300 >test.tns || exit 1
snet-train -q -m "$M/zoo-cnn.spec" -o m.tns --epochs 3 --lr 0.1 --threads 1 --valid test.tns train.tns || exit 1

test_expect_success '--eval prints accuracy, loss and n as name value lines' '
	snet-infer -m m.tns --eval test.tns >out &&
	test $(wc -l <out) -eq 3 &&
	grep -q "^accuracy 0\.[0-9][0-9][0-9][0-9]$" out &&
	grep -q "^loss [0-9]*\.[0-9]*$" out && grep -q "^n 1000$" out &&
	awk "/^accuracy/ {exit !(\$2 > 0.5)}" out
'

test_expect_success '--eval agrees with the validation accuracy snet-train recorded' '
	acc=$(awk "/^accuracy/ {print \$2}" out) &&
	tns-info m.tns | head -n 1 | grep -q "valid_acc=$acc"
'

test_expect_success 'the same metrics from a pipe, in any batch size and thread count' '
	cat test.tns | snet-infer -m m.tns --eval --batch 7 --threads 2 >out2 &&
	test_cmp out out2
'

test_expect_success '--confusion adds one line per class summing to n' '
	snet-infer -m m.tns --eval --confusion test.tns >out &&
	test $(grep -c "^confusion [0-9] " out) -eq 10 &&
	awk "/^confusion/ {for (i = 3; i <= NF; i++) s += \$i; if (NF != 12) exit 1} END {exit s != 1000}" out &&
	awk "/^confusion/ {d += \$(\$2 + 3)} /^accuracy/ {a = \$2} END {exit (d / 1000 != a)}" out
'

test_expect_success 'logits, probs and labels: one record per input chunk' '
	snet-infer -m m.tns test.tns >logits.tns &&
	tns-info logits.tns >info &&
	test $(grep -c "logits *f32 *300x10" info) -eq 3 && grep -q "logits *f32 *100x10" info &&
	snet-infer -m m.tns --kind probs test.tns | tns-info - | grep -c "probs *f32" | grep -q "^4$" &&
	snet-infer -m m.tns --kind labels test.tns | tns-info - >info &&
	grep -q "^0 *labels *i32 *300 " info && test $(wc -l <info) -eq 4
'

test_expect_success 'probabilities are in [0, 1] and sum to one (mean 1/10)' '
	snet-infer -m m.tns --kind probs test.tns | tns-info --stats - 2>/dev/null >stats &&
	test $(wc -l <stats) -eq 4 &&
	awk "{for (i = 1; i <= NF; i++) if (\$i ~ /^(min|max|mean)=/) {split(\$i, kv, \"=\"); v[kv[1]] = kv[2]}
	     if (v[\"min\"] < 0 || v[\"max\"] > 1 || v[\"mean\"] < 0.09999 || v[\"mean\"] > 0.10001) exit 1}" stats
'

test_expect_success '--layer writes features of any layer' '
	snet-infer -m m.tns --layer gap8 test.tns | tns-info - >info &&
	grep -q "features *f32 *300x16 .*layer=gap8 shape=16" info &&
	snet-infer -m m.tns --layer conv4 test.tns | tns-info - | head -n 1 | grep -q "300x576 .*shape=16x6x6"
'

test_expect_success 'errors: unknown layer, unlabelled data for --eval, usage' '
	test_error 1 snet-infer -m m.tns --layer nosuch test.tns &&
	grep -q "no layer .nosuch." .stderr &&
	tns-select -q -n images test.tns >unlab.tns &&
	test_error 1 snet-infer -m m.tns --eval unlab.tns &&
	grep -q "no labels" .stderr &&
	test_error 2 snet-infer --eval test.tns &&
	test_error 2 snet-infer -m m.tns --kind scores test.tns &&
	test_error 2 snet-infer -m m.tns --confusion test.tns &&
	test_error 2 snet-infer -m m.tns --eval --layer gap8 test.tns &&
	test_error 1 snet-infer -m nosuch.tns --eval test.tns
'

test_expect_success 'a model whose input does not fit the data is refused' '
	printf "input 3 32 32\nconv 8 k=3\ngap\nlinear 10\n" >c.spec &&
	snet-infer -m c.spec --eval test.tns >/dev/null 2>err; test $? -eq 1 &&
	grep -q "examples are 1x28x28 but the model.s input is 3x32x32" err
'

test_expect_success 'long only: --kind, --eval, --confusion (-k, -e, -c mean other things in simkit)' '
	test_error 2 snet-infer -m m.tns -k probs test.tns &&
	test_error 2 snet-infer -m m.tns -e test.tns &&
	test_error 2 snet-infer -m m.tns --eval -c test.tns &&
	test_error 2 snet-infer -m m.tns -z 10 test.tns
'

test_expect_success 'refuses to write binary to a terminal (when there is one)' '
	if [ -t 1 ]; then test_must_fail snet-infer -m m.tns test.tns; else true; fi
'

test_done
