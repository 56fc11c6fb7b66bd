#!/bin/sh
# zoo-encode train chooses on validation runs held out of the training runs
# (never test runs): the epoch kept, and the learning rate and lambda among
# several; the regressor on hyperparameters alone; one SNE encoder reads
# both zoo architectures, with kernels cut into several elements too.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 600 >all.tns || exit 1
tns-select -q --range 0:450 all.tns >train.tns && tns-select -q --range 450:600 all.tns >test.tns || exit 1
rm -f all.tns
for s in 1 2 3 4 5 6 7 8 9 10; do
	zoo-encode run -q -b 16 -D train.tns -T test.tns --seed $s -C 0,1,2 -o run$s.tns || exit 1
done
cat run*.tns >zoo.tns
zoo-encode run -q -b 16 -A zoo-cnn2 -D train.tns -T test.tns --seed 11 -C 0,2 -o cnn2.tns || exit 1

# attr FILE KEY: attribute KEY of the first record of FILE
attr() {
	tns-info "$1" | head -1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# models FILE: the number of models of a prediction file
models() {
	tns-info "$1" | awk '$2 == "pred" {print $4}'
}

test_expect_success 'validation runs are held out of the training runs, not of the test runs' '
	zoo-encode train -q -E statnn -e 4 --hidden 16 --split train --val-frac 0.5 -o v.enc zoo.tns &&
	zoo-encode predict -q -E v.enc --split train --val-frac 0.5 zoo.tns >tr.pred &&
	zoo-encode predict -q -E v.enc --split val --val-frac 0.5 zoo.tns >va.pred &&
	zoo-encode predict -q -E v.enc --split train zoo.tns >nontest.pred &&
	test "$(attr v.enc models)" = "$(models tr.pred)" &&
	test "$(attr v.enc val_models)" = "$(models va.pred)" &&
	test $(( $(models tr.pred) + $(models va.pred) )) -eq "$(models nontest.pred)" &&
	test "$(attr v.enc val_frac)" = 0.5 &&
	k=$(attr v.enc epoch_kept) && test "$k" -ge 1 && test "$k" -le 4
'

test_expect_success 'the epoch kept is the best of the validation curve, and its tau is the encoder'"'"'s' '
	zoo-encode train -E statnn -e 4 --hidden 16 --split train --val-frac 0.5 -o v2.enc zoo.tns 2>log &&
	sed -n "s/.*epoch \([0-9]*\)\/4 .* val tau \([-0-9.]*\) .*/\1 \2/p" log >curve &&
	test $(wc -l <curve) -eq 4 &&
	awk "NR == 1 || \$2 > b {b = \$2; e = \$1} END {print e}" curve >want &&
	attr v.enc epoch_kept >got && test_cmp want got &&
	zoo-compare va.pred | awk "NR == 2 {printf \"%.4f\\n\", \$5}" >tau1 &&
	awk -v e="$(cat want)" "\$1 == e {print \$2}" curve >tau2 && test_cmp tau2 tau1 &&
	grep -q "trained in [0-9.]* s wall, [0-9.]* s CPU" log
'

test_expect_success 'by default 20% of the training runs validate' '
	if zoo-encode predict -q -E v.enc --split val --val-frac 0.2 zoo.tns >va2.pred 2>/dev/null; then
		zoo-encode train -q -E statnn -e 2 --hidden 16 --split train -o d.enc zoo.tns &&
		test "$(attr d.enc val_frac)" = 0.2 && test "$(attr d.enc val_models)" = "$(models va2.pred)"
	else
		test_error 1 zoo-encode train -E statnn -e 2 --split train -o d.enc zoo.tns &&
		grep -q "no validation run" .stderr && test ! -e d.enc
	fi
'

test_expect_success 'the learning rate and lambda kept are the best on validation' '
	zoo-encode train -q -E sne -e 2 --d 8 --chunk 8 --heads 2 --split train --val-frac 0.5 \
		--lr 0.001,0.01 --lambda 0,1 -o g.enc zoo.tns &&
	attr g.enc val_grid | tr ";" "\n" >grid && test $(wc -l <grid) -eq 4 &&
	awk -F "[=,:@]" "NR == 1 || \$5 > b {b = \$5; lr = \$2; l = \$4} END {print lr, l, b}" grid >want &&
	echo "$(attr g.enc lr) $(attr g.enc lambda) $(attr g.enc val_tau)" >got &&
	paste -d " " want got >&2 &&
	paste -d " " want got | awk "{d = \$3 - \$6; exit !(\$1 == \$4 && \$2 == \$5 && d < 2e-4 && d > -2e-4)}"
'

test_expect_success 'choosing needs validation runs; bad lists are usage errors' '
	test_error 2 zoo-encode train -E statnn --lr 0.001,0.01 -o x.enc zoo.tns &&
	test_error 2 zoo-encode train -E statnn --split train --val-frac 0 --lambda 0,1 -o x.enc zoo.tns &&
	test_error 2 zoo-encode train -E statnn --split all --val-frac 0.3 -o x.enc zoo.tns &&
	test_error 2 zoo-encode train -E statnn --lr 0.1,x -o x.enc zoo.tns &&
	test_error 2 zoo-encode train -E statnn --lr 1,2,3,4,5,6,7,8,9 -o x.enc zoo.tns &&
	test_error 2 zoo-encode train -E sne --ablate depth -o x.enc zoo.tns &&
	test_error 2 zoo-encode train -E sne --values 0 -o x.enc zoo.tns &&
	test ! -e x.enc
'

test_expect_success 'the hyperparameter regressor: its features are the recorded hyperparameters' '
	zoo-encode train -q -E hparams -e 3 --hidden 16 --split train --val-frac 0 -o h.enc zoo.tns &&
	tns-info h.enc | head -1 | grep -q " encoder=hparams " &&
	tns-info h.enc | grep -q "norm.mu *f32 " &&
	zoo-encode predict -q -E h.enc --inv-gap --split test zoo.tns >h.pred &&
	attr h.pred inv_gap | awk "{exit !(\$1 >= 0 && \$1 < 1e-5)}" &&
	zoo-encode predict -q -E h.enc --label cnn2 cnn2.tns | zoo-compare - >/dev/null
'

test_expect_success 'one SNE encoder reads both architectures; kernels cut into several elements' '
	zoo-encode train -q -E sne -e 1 --d 8 --chunk 8 --heads 2 --values 4 --split train --val-frac 0 \
		--ablate pe-layer -o s4.enc zoo.tns &&
	zoo-encode predict -q -E s4.enc --label cnn2 cnn2.tns >s4.pred && test "$(models s4.pred)" = 2 &&
	zoo-encode train -q -E sne -e 1 --d 8 --chunk 8 --heads 2 --split train --val-frac 0 -o s.enc zoo.tns &&
	zoo-encode encode -q -E s.enc cnn2.tns | tns-info - | grep -q "codes *f32 *2x8 "
'

test_done
