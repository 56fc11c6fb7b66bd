#!/bin/sh
# snet-train: real pipelines on a synthetic data set (and a Fashion-MNIST
# slice when installed): it learns, the outputs (model, log, table) are what
# the man page says, runs are reproducible.
. "$SK_SRCDIR/tests/lib.sh"
M=$SK_SRCDIR/share/models
synth_split 2500 2000 || exit 1

test_expect_success 'trains zoo-cnn from a pipe and learns (accuracy well above chance)' '
	tns-select -q --range 0:2000 train.tns |
		snet-train -m "$M/zoo-cnn.spec" -o m.tns --epochs 3 --lr 0.1 --threads 1 2>err &&
	snet-infer -m m.tns --eval valid.tns >metrics &&
	accuracy_above 0.5 && grep -q "^n 500$" metrics
'

test_expect_success 'the per-layer table and one line per epoch on stderr' '
	grep -q "^layer *type *output *params *MFLOPs" err &&
	grep -q "^conv2 *conv *16x13x13 *160 " err &&
	grep -q "^total .* 4970 " err &&
	test $(grep -c "^epoch [123]/3  loss" err) -eq 3
'

test_expect_success 'the model records seed, command, version, epochs and metrics' '
	tns-info m.tns >info &&
	head -n 1 info >first &&
	grep -q "^0 *model .*seed=1 " first &&
	grep -q "command=snet-train -m .*zoo-cnn.spec -o m.tns" first &&
	grep -q "version=0.1.0" first && grep -q "epochs=3" first &&
	grep -q "train_acc=0\.[0-9]*" first && grep -q "records=9$" first &&
	grep -q "^2 *conv2.w *f32 *16x1x3x3" info
'

test_expect_success '--quiet prints nothing; no checkpoint leftovers but OUT.ckpt' '
	snet-train -q -m "$M/zoo-cnn.spec" -o q.tns --epochs 1 --threads 1 train.tns 2>err &&
	test ! -s err && test -s q.tns && test -s q.tns.ckpt &&
	test -z "$(ls -A | grep "^\.q\.tns")"
'

test_expect_success 'same seed and threads give the same bytes (1 and 2 threads)' '
	for j in 1 2; do
		mkdir -p r1 r2 &&
		(cd r1 && snet-train -q -m "$M/zoo-cnn.spec" -o m.tns --epochs 2 --threads $j --crop 2 --flip ../train.tns) &&
		(cd r2 && snet-train -q -m "$M/zoo-cnn.spec" -o m.tns --epochs 2 --threads $j --crop 2 --flip ../train.tns) &&
		cmp r1/m.tns r2/m.tns || return 1
	done
'

test_expect_success 'a different seed gives a different model' '
	(cd r2 && snet-train -q -m "$M/zoo-cnn.spec" -o m.tns --epochs 2 --threads 2 --crop 2 --flip --seed 2 ../train.tns) &&
	! cmp -s r1/m.tns r2/m.tns
'

test_expect_success '--log writes a TSV header and one line of 7 columns per epoch' '
	snet-train -q -m "$M/zoo-cnn.spec" -o l.tns --epochs 2 --threads 1 --valid valid.tns --log log.tsv train.tns &&
	head -n 1 log.tsv | grep -q "^epoch	loss	train_acc	valid_acc	lr	images_per_s	seconds$" &&
	test $(wc -l <log.tsv) -eq 3 &&
	awk -F "\t" "NR > 1 && (NF != 7 || \$1 != NR - 1 || \$4 !~ /^0\./) {exit 1}" log.tsv &&
	tns-info l.tns | head -n 1 | grep -q "valid_acc=0\.[0-9]* .*valid_n=500"
'

test_expect_success '--valid-split holds out a seeded fraction' '
	snet-train -m "$M/zoo-cnn.spec" -o s.tns --epochs 1 --threads 1 --valid-split 0.25 train.tns 2>err &&
	grep -q "valid_acc" err &&
	tns-info s.tns | head -n 1 | grep -q "train_n=1500 .*valid_n=500"
'

test_expect_success 'a spec with comment lines first; a model stream fine-tunes' '
	printf "# a comment\n\n# another\n" >c.spec && cat "$M/zoo-cnn.spec" >>c.spec &&
	snet-train -q -m c.spec -o c.tns --epochs 1 --threads 1 train.tns &&
	snet-train -q -m c.tns -o c2.tns --epochs 1 --threads 1 --lr 0.01 train.tns &&
	snet-infer -m c2.tns --eval valid.tns >metrics && accuracy_above 0.3
'

test_expect_success '--init copies parameters by name; --freeze keeps a layer fixed' '
	snet-train -q -m "$M/zoo-cnn.spec" -o f.tns --epochs 1 --threads 1 --seed 5 --init m.tns \
		--init-layers conv2 --freeze conv2 train.tns &&
	tns-info m.tns | grep "conv2.w" | sed "s/^[0-9]* *//" >a &&
	tns-info f.tns | grep "conv2.w" | sed "s/^[0-9]* *//" >b &&
	test_cmp a b &&
	tns-info m.tns | grep "conv4.w" | sed "s/^[0-9]* *//" >a &&
	tns-info f.tns | grep "conv4.w" | sed "s/^[0-9]* *//" >b &&
	! cmp -s a b
'

test_expect_success 'LeNet-5 with adam and a cosine schedule learns' '
	snet-train -q -m "$M/lenet5.spec" -o le.tns --epochs 2 --optimizer adam --schedule cosine --threads 2 train.tns &&
	snet-infer -m le.tns --eval valid.tns >metrics && accuracy_above 0.6
'

test_expect_success '--init-unsupervised on a model without such layers warns and trains' '
	snet-train -m "$M/zoo-cnn.spec" -o u.tns --epochs 1 --threads 1 --init-unsupervised train.tns 2>err &&
	grep -q "^snet-train: warning: --init-unsupervised: no layer of the model supports it" err && test -s u.tns
'

test_expect_success 'a 3x32x32 colour data set (CIFAR layout) trains and learns' '
	synth_data -c 3 1500 >c.tns &&
	tns-info c.tns | grep -q "^0 *images *u8 *1500x3x32x32 " &&
	printf "input 3 32 32 scale=0.00392156862745098\nconv 16 k=3 stride=2\nrelu\nconv 16 k=3\nrelu\npool max k=2\nflatten\nlinear 10\n" >c.spec &&
	tns-select -q --range 0:1200 c.tns | snet-train -q -m c.spec -o c-m.tns --epochs 3 --optimizer adam --lr 0.003 --threads 1 &&
	tns-select -q --range 1200: c.tns | snet-infer -m c-m.tns --eval >metrics && accuracy_above 0.6
'

if test_have_prereq fmnist; then
	test_expect_success 'on a Fashion-MNIST slice zoo-cnn learns too (accuracy well above chance)' '
		fmnist_split 2500 2000 &&
		snet-train -q -m "$M/zoo-cnn.spec" -o fm-m.tns --epochs 3 --lr 0.1 --threads 1 fm-train.tns &&
		snet-infer -m fm-m.tns --eval fm-valid.tns >metrics && accuracy_above 0.5
	'
else
	test_skip 'on a Fashion-MNIST slice zoo-cnn learns too' "no Fashion-MNIST in $FMNIST_DIR"
fi

if [ -r "$M/simnet-28.spec" ]; then
	test_expect_success '--init-unsupervised=kmeans initialises the similarity layers, reproducibly' '
		mkdir -p u1 u2 &&
		(cd u1 && snet-train -m "$M/simnet-28.spec" -o m.tns --epochs 1 --threads 2 --batch 100 \
			--init-unsupervised=kmeans --init-examples 300 ../train.tns 2>err) &&
		grep -q "^snet-train: initialised 2 layers from 300 examples (kmeans)" u1/err &&
		(cd u2 && snet-train -m "$M/simnet-28.spec" -o m.tns --epochs 1 --threads 2 --batch 100 \
			--init-unsupervised=kmeans --init-examples 300 ../train.tns 2>/dev/null) &&
		cmp u1/m.tns u2/m.tns &&
		test_error 1 snet-train -m "$M/simnet-28.spec" -o x.tns --epochs 1 --init-unsupervised=bogus train.tns
	'
else
	test_skip '--init-unsupervised=kmeans initialises the similarity layers' 'no share/models/simnet-28.spec'
fi

test_expect_success '-z LEVEL deflates the model: smaller, the same predictions; -z 10 is a usage error' '
	snet-train -q -m "$M/zoo-cnn.spec" -o raw.tns --epochs 1 --threads 1 -s 5 valid.tns &&
	snet-train -q -m "$M/zoo-cnn.spec" -o z.tns -z 9 --epochs 1 --threads 1 -s 5 valid.tns &&
	! cmp -s raw.tns z.tns &&
	test $(wc -c <z.tns) -lt $(wc -c <raw.tns) &&
	snet-infer -m raw.tns valid.tns >p1.tns && snet-infer -m z.tns valid.tns >p2.tns && cmp p1.tns p2.tns &&
	test_error 2 snet-train -q -m "$M/zoo-cnn.spec" -o x.tns -z 10 valid.tns &&
	test ! -e x.tns
'

test_done
