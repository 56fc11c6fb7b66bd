#!/bin/sh
# zoo-encode train | encode | predict and zoo-compare in one pipeline, for
# the four encoders; encoders round-trip through their stream; the
# permutation gap of statnn is zero.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 700 >all.tns || exit 1
tns-select -q --range 0:500 all.tns >train.tns && tns-select -q --range 500:700 all.tns >test.tns || exit 1
rm -f all.tns
for s in 1 2 3 4 5 6; do
	zoo-encode run -q -D train.tns -T test.tns --seed $s -C 0,1,2 -o run$s.tns || exit 1
done
cat run1.tns run2.tns run3.tns run4.tns run5.tns run6.tns >zoo.tns

for enc in sne statnn mlp hparams; do
	test_expect_success "$enc: train, predict and compare in one pipeline" '
		zoo-encode train -q -E '$enc' -e 3 --d 8 --chunk 8 --heads 2 --hidden 16 --split train --val-frac 0 \
			-o '$enc'.enc zoo.tns &&
		tns-info '$enc'.enc | head -1 >info && grep -q "^0 *encoder *u8 " info &&
		grep -q " encoder='$enc' " info && grep -q " attr=test_acc " info &&
		zoo-encode predict -q -E '$enc'.enc --split test zoo.tns | zoo-compare - >table &&
		cat table >&2 &&
		grep -q "^'$enc' *zoo.tns->zoo.tns *1 *[0-9]" table
	'
done

test_expect_success 'the train and test splits keep runs whole and together cover the zoo' '
	zoo-encode predict -q -E sne.enc --split train zoo.tns >tr.tns &&
	zoo-encode predict -q -E sne.enc --split test zoo.tns >te.tns &&
	zoo-encode predict -q -E sne.enc zoo.tns >all.tns &&
	n1=$(tns-info tr.tns | awk "\$2 == \"pred\" {print \$4}") &&
	n2=$(tns-info te.tns | awk "\$2 == \"pred\" {print \$4}") &&
	test $((n1 + n2)) -eq 18 && test $((n1 % 3)) -eq 0 &&
	zoo-encode predict -q -E sne.enc --split train --val-frac 0.5 zoo.tns >tr2.tns &&
	zoo-encode predict -q -E sne.enc --split val --val-frac 0.5 zoo.tns >va2.tns &&
	zoo-encode predict -q -E sne.enc --split test --val-frac 0.5 zoo.tns | cmp - te.tns &&
	n3=$(tns-info tr2.tns | awk "\$2 == \"pred\" {print \$4}") &&
	n4=$(tns-info va2.tns | awk "\$2 == \"pred\" {print \$4}") &&
	test $((n3 + n4)) -eq $n1 && test $((n4 % 3)) -eq 0
'

test_expect_success 'encode writes one code of the encoder width per model; deterministic' '
	zoo-encode encode -q -E sne.enc zoo.tns -o codes.tns &&
	tns-info codes.tns | grep -q "^0 *codes *f32 *18x8 " &&
	zoo-encode encode -q -E sne.enc zoo.tns | cmp - codes.tns &&
	zoo-compare --nearest 2 codes.tns >near && test $(grep -c "^[0-9]" near) -eq 18 &&
	zoo-compare --nearest 3 --query 4 codes.tns >q && test $(grep -c "^[0-9]" q) -eq 1
'

test_expect_success 'the same seed trains the same encoder' '
	mkdir a b &&
	(cd a && zoo-encode train -q -E sne -e 2 --d 8 --chunk 8 --heads 2 -o x.enc ../zoo.tns) &&
	(cd b && zoo-encode train -q -E sne -e 2 --d 8 --chunk 8 --heads 2 -o x.enc ../zoo.tns) &&
	cmp a/x.enc b/x.enc
'

test_expect_success 'statnn features are invariant to hidden-unit permutations (gap 0)' '
	zoo-encode predict -q -E statnn.enc --inv-gap zoo.tns >p.tns &&
	tns-info p.tns | head -1 | grep -q "inv_gap=\(0\|[0-9.]*e-0[6-9]\)\( \|$\)"
'

test_expect_success 'zoo-compare: ranking, table, stream output' '
	zoo-encode predict -q -E statnn.enc --split test zoo.tns >s.tns &&
	zoo-encode predict -q -E sne.enc --split test zoo.tns >n.tns &&
	zoo-compare --rank s.tns >rank && head -2 rank | tail -1 | grep -q "rank *id *pred *truth *true_rank" &&
	zoo-compare --table s.tns n.tns >tab && grep -q "^statnn .* n=1" tab && grep -q "^sne .* n=1" tab &&
	zoo-compare --stream s.tns n.tns >m.tns && test $(tns-info m.tns | grep -c "metrics *f32 *5 ") -eq 2 &&
	zoo-compare --table --stream s.tns n.tns | tns-info - | grep -q "table *f32 *2x1x3"
'

test_expect_success '-z LEVEL deflates every output; the values stay the same' '
	zoo-encode predict -q -z 6 -E sne.enc zoo.tns >pz.tns &&
	tns-info pz.tns | grep -q "pred *f32 *18 *deflate" &&
	zoo-compare pz.tns >a.txt && zoo-compare all.tns >b.txt && test_cmp b.txt a.txt &&
	zoo-encode train -q -z 4 -E statnn -e 1 --hidden 16 -o z.enc zoo.tns &&
	tns-info z.enc | grep -q "deflate" && zoo-encode predict -q -E z.enc zoo.tns >/dev/null &&
	zoo-compare --stream -z 5 s.tns n.tns | tns-info - | grep -q "metrics *f32 *5 *deflate" &&
	zoo-encode run -q -z 9 -D train.tns -T test.tns --seed 1 -C 0,1,2 -o rz.tns &&
	tns-info rz.tns | grep -q "conv2.w *f32 *16x1x3x3 *deflate" &&
	zoo-encode predict -q -E sne.enc --label r rz.tns | zoo-compare - >c.txt &&
	zoo-encode predict -q -E sne.enc --label r run1.tns | zoo-compare - >d.txt && test_cmp d.txt c.txt
'

test_expect_success 'the tau printed agrees with an independent computation' '
	zoo-compare --rank n.tns | awk "NR > 2 {print \$3, \$4}" >pairs &&
	awk "{p[NR]=\$1; t[NR]=\$2} END {c=0; d=0; tx=0; ty=0;
		for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) {
			a = p[i] - p[j]; b = t[i] - t[j];
			if (a == 0 && b == 0) {tx++; ty++} else if (a == 0) tx++; else if (b == 0) ty++;
			else if (a * b > 0) c++; else d++ }
		n0 = NR * (NR - 1) / 2; printf \"%.6f\\n\", (c - d) / sqrt((n0 - tx) * (n0 - ty)) }" pairs >want &&
	zoo-compare n.tns | awk "NR == 2 {print \$5}" >got &&
	paste want got >&2 &&
	paste want got | awk "{d = \$1 - \$2; exit !(d < 0.0002 && d > -0.0002)}"
'

test_done
