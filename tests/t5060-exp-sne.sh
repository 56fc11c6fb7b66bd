#!/bin/sh
# scripts/exp-sne end to end on tiny synthetic zoos (seconds): every
# variant, protocol, encoder and seed gives a TSV of its test models;
# table.md holds Kendall's tau (mean +- std over seeds, as an independent
# computation from the TSVs gives it), SNE's invariance gap and the wall and
# CPU seconds; the scatter plots are drawn, or skipped with a message
# without gnuplot; a second invocation keeps what exists.
. "$SK_SRCDIR/tests/lib.sh"
EXP=$SK_SRCDIR/scripts/exp-sne
synth_data 400 >a.tns && synth_data -s 2 400 >b.tns || exit 1
for d in a b; do
	tns-select -q --range 0:300 $d.tns >${d}tr.tns && tns-select -q --range 300:400 $d.tns >${d}te.tns || exit 1
done
for s in 1 2 3 4 5 6 7 8; do
	zoo-encode run -q -b 16 -D atr.tns -T ate.tns --seed $s -C 0,1,2 -o m$s.tns &&
	zoo-encode run -q -b 16 -D btr.tns -T bte.tns --seed $s -C 0,1,2 -o f$s.tns &&
	zoo-encode run -q -b 16 -A zoo-cnn2 -D atr.tns -T ate.tns --seed $s -C 0,1,2 -o c$s.tns || exit 1
done
cat m?.tns >mnist.zoo && cat f?.tns >fmnist.zoo && cat c?.tns >arch2.zoo || exit 1
ARGS='-j 2 -e 2 --seeds "1 2" --final 2 --val-frac 0.5 --train-args "-b 8 --hidden 16" --sne-args "--d 8 --chunk 8 --heads 2"'
PROTOS="mnist-mnist fmnist-fmnist mnist-fmnist fmnist-mnist mnist-arch2 arch2-mnist arch2-arch2"

# tau-b of the TSV's predicted (column 2) against true (column 3)
tau_tsv() {
	awk '!/^#/ {p[++n] = $2; t[n] = $3} END {c = 0; d = 0; tx = 0; ty = 0
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
			a = p[i] - p[j]; b = t[i] - t[j]
			if (a == 0 && b == 0) {tx++; ty++} else if (a == 0) tx++; else if (b == 0) ty++
			else if (a * b > 0) c++; else d++ }
		n0 = n * (n - 1) / 2; printf "%.6f\n", (c - d) / sqrt((n0 - tx) * (n0 - ty)) }' "$1"
}

test_expect_success 'exp-sne: a TSV per run, table.md, times, plots' '
	eval "\"\$EXP\" $ARGS mnist.zoo fmnist.zoo arch2.zoo out" 2>err &&
	cat err >&2 && grep -q "^exp-sne: out/table.md: 52 encoders" err &&
	n=0 &&
	for v in final all; do
		for p in $PROTOS; do
			for e in sne statnn mlp hparams; do
				for s in 1 2; do
					f=out/$v/tsv/$p-$e-$s.tsv &&
					head -1 $f | grep -q "^# id" &&
					awk "!/^#/ && NF != 3 {exit 1} !/^#/ {k++} END {exit !(k >= 1)}" $f &&
					n=$((n + 1)) || { echo "bad $f"; exit 1; }
				done
			done
		done
	done &&
	test $n -eq 112 &&
	grep -q "^## Final checkpoints (epoch 2" out/table.md && grep -q "^## All checkpoints" out/table.md &&
	test $(grep -c "^| encoder | mnist->mnist | fmnist->fmnist | mnist->fmnist | fmnist->mnist | mnist->arch2 | arch2->mnist | arch2->arch2 |" out/table.md) -eq 2 &&
	for e in sne statnn mlp hparams; do   # a tau row: 7 cells
		test $(awk -F "|" -v e=" $e " "\$2 == e && NF == 10" out/table.md | wc -l) -eq 2 || exit 1
	done &&
	test $(awk -F "|" "\$2 == \" sne0 \" && NF == 7" out/table.md | wc -l) -eq 4 &&
	grep -q "^| train | 52 | [0-9]* | [0-9.]* |" out/table.md &&
	grep -q "^| predict | 120 | [0-9]* | [0-9.]* |" out/table.md &&
	test $(grep -c . out/times.tsv) -eq 53
'

test_expect_success 'the table is the mean and spread of the TSVs'"'"' taus' '
	t1=$(tau_tsv out/all/tsv/mnist-mnist-statnn-1.tsv) && t2=$(tau_tsv out/all/tsv/mnist-mnist-statnn-2.tsv) &&
	awk "/^## All/ {a = 1} a && /^\| statnn \|/ {print \$4, \$6; exit}" out/table.md >cell &&
	echo "$t1 $t2 $(cat cell)" >&2 &&
	echo "$t1 $t2 $(cat cell)" | awk "{m = (\$1 + \$2) / 2; s = sqrt((\$1 - m) ^ 2 + (\$2 - m) ^ 2);
		d = m - \$3; e = s - \$4; exit !(d < 0.002 && d > -0.002 && e < 0.002 && e > -0.002)}"
'

if command -v gnuplot >/dev/null 2>&1; then
	test_expect_success 'a scatter plot per variant, protocol and encoder' '
		k=0 &&
		for v in final all; do
			for p in $PROTOS; do
				for e in sne statnn mlp hparams; do
					od -An -c -N 4 out/$v/png/$p-$e.png | grep -q "P *N *G" && k=$((k + 1)) ||
						{ echo "no out/$v/png/$p-$e.png"; exit 1; }
				done
			done
		done &&
		test $k -eq 56
	'
else
	test_skip 'a scatter plot per variant, protocol and encoder' 'no gnuplot'
fi

test_expect_success 'without gnuplot: a message, no plots; what exists is kept' '
	rm out/all/pred/fmnist-mnist-mlp-2.pred out/final/png/*.png &&
	touch ref &&
	eval "GNUPLOT=/nonexistent/gnuplot \"\$EXP\" $ARGS mnist.zoo fmnist.zoo arch2.zoo out" 2>err2 &&
	grep -q "^exp-sne: /nonexistent/gnuplot not found: no scatter plots" err2 &&
	test -e out/all/pred/fmnist-mnist-mlp-2.pred &&
	test -z "$(find out -name "*.enc" -newer ref)" &&
	test $(find out -name "*.pred" -newer ref | wc -l) -eq 1 &&
	! ls out/final/png/*.png 2>/dev/null
'

test_expect_success 'usage errors; -n writes the job lists only' '
	test_error 2 "$EXP" mnist.zoo fmnist.zoo out2 &&
	test_error 2 "$EXP" --encoders "sne nfn" mnist.zoo fmnist.zoo arch2.zoo out2 &&
	test_error 2 "$EXP" --variants last mnist.zoo fmnist.zoo arch2.zoo out2 &&
	test_error 2 "$EXP" -j x mnist.zoo fmnist.zoo arch2.zoo out2 &&
	test_error 2 "$EXP" mnist.zoo fmnist.zoo nosuch.zoo out2 &&
	test_error 2 "$EXP" --seeds &&
	test ! -e out2 &&
	"$EXP" -n --seeds 1 --variants all --encoders "statnn hparams" mnist.zoo fmnist.zoo arch2.zoo out3 &&
	test $(grep -c . out3/train.jobs) -eq 6 && test $(grep -c . out3/predict.jobs) -eq 14 &&
	test -z "$(find out3 -name "*.enc")" &&
	test_error 2 "$EXP" --all-epochs 0 mnist.zoo fmnist.zoo arch2.zoo out2 &&
	test_error 2 "$EXP" --all-epochs "" mnist.zoo fmnist.zoo arch2.zoo out2 &&
	"$EXP" -n --seeds 1 -e 3 --all-epochs 5 --encoders statnn mnist.zoo fmnist.zoo arch2.zoo out4 &&
	test $(grep -c "/final/enc/.* -e 3 " out4/train.jobs) -eq 3 &&
	test $(grep -c "/all/enc/.* -e 5 " out4/train.jobs) -eq 3 &&
	"$EXP" -n --seeds 1 -e 3 --encoders statnn mnist.zoo fmnist.zoo arch2.zoo out5 &&
	test $(grep -c " -e 3 " out5/train.jobs) -eq 6
'

test_done
