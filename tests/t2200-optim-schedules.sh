#!/bin/sh
# snet-train: learning-rate schedules as the log reports them, and every
# optimizer trains (loss falls).  The exact update rules are unit-tested
# against hand-computed values and PyTorch in tests/unit/test-optim.
. "$SK_SRCDIR/tests/lib.sh"
M=$SK_SRCDIR/share/models
synth_data 640 >train.tns || exit 1
T="snet-train -q -m $M/zoo-cnn.spec -o m.tns --threads 1 --batch 64"

lrs() { awk -F "\t" 'NR > 1 {printf "%s ", $5} END {print ""}' "$1"; }

test_expect_success 'constant' '
	$T --epochs 3 --lr 0.1 --log log train.tns && test "$(lrs log)" = "0.1 0.1 0.1 "
'

test_expect_success 'step: --step-size 2 --gamma 0.5' '
	$T --epochs 5 --lr 0.1 --schedule step --step-size 2 --gamma 0.5 --log log train.tns &&
	test "$(lrs log)" = "0.1 0.1 0.05 0.05 0.025 "
'

test_expect_success 'multistep: --milestones 1,3' '
	$T --epochs 4 --lr 0.1 --schedule multistep --milestones 1,3 --log log train.tns &&
	test "$(lrs log)" = "0.1 0.01 0.01 0.001 "
'

test_expect_success 'cosine ends near zero; warm-up: half the rate at the end of epoch 1 of 2, then all of it' '
	$T --epochs 4 --lr 0.1 --schedule cosine --log log train.tns &&
	awk -F "\t" "NR == 5 {exit !(\$5 < 0.002)}" log &&
	$T --epochs 3 --lr 0.1 --warmup 2 --log log train.tns &&
	test "$(lrs log)" = "0.05 0.1 0.1 "
'

for o in sgd nesterov adam adamw rmsprop nadam; do
	test_expect_success "$o trains: the loss falls" '
		$T --epochs 3 --optimizer '$o' --wd 1e-4 --log log train.tns &&
		awk -F "\t" "NR == 2 {a = \$2} NR == 4 {b = \$2} END {exit !(b < a)}" log
	'
done

test_expect_success 'nadam stopped mid-epoch and resumed: the same bytes (its momentum product restored)' '
	mkdir -p nfull npart &&
	(cd nfull && $T --epochs 2 --optimizer nadam --lr 0.002 --wd 1e-4 ../train.tns) &&
	(cd npart && { $T --epochs 2 --optimizer nadam --lr 0.002 --wd 1e-4 --stop-after-steps 13 ../train.tns;
	               test $? -eq 3; } &&
	 $T --epochs 2 --optimizer nadam --lr 0.002 --wd 1e-4 --resume m.tns.ckpt ../train.tns) &&
	cmp nfull/m.tns npart/m.tns
'

test_expect_success 'nadam from the command line and from a spec recipe; the recipe line has no momentum' '
	snet-train -m $M/zoo-cnn.spec -o m.tns --threads 1 --epochs 1 --optimizer nadam train.tns 2>err &&
	grep -q "^snet-train: recipe: optimizer=nadam lr=0.05 wd=0 schedule=constant " err &&
	sed "s/^train optimizer=sgd lr=0.05 momentum=0.9 /train optimizer=nadam lr=0.03 /" $M/zoo-cnn.spec >n.spec &&
	snet-train -m n.spec -o m.tns --threads 1 --epochs 1 train.tns 2>err &&
	grep -q "^snet-train: recipe: optimizer=nadam lr=0.03 wd=0 schedule=constant " err &&
	tns-info m.tns | head -n 1 | grep -q " recipe=optimizer=nadam lr=0.03 "
'

test_expect_success 'mse loss trains too' '
	$T --epochs 3 --lr 0.1 --loss mse --log log train.tns &&
	awk -F "\t" "NR == 2 {a = \$2} NR == 4 {b = \$2} END {exit !(b < a)}" log
'

test_done
