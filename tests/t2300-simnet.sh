#!/bin/sh
# SimNets end to end: sim and mex layers trained by snet-train from a
# k-means or GMM start (--init-unsupervised), evaluated by snet-infer, the
# templates exported as a montage.  A synthetic data set; Fashion-MNIST
# too when installed.
. "$SK_SRCDIR/tests/lib.sh"
M=$SK_SRCDIR/share/models
synth_split 2500 2000 || exit 1

test_expect_success 'simnet-28 trains from k-means templates and learns (accuracy well above chance)' '
	snet-train -m "$M/simnet-28.spec" -o m.tns --init-unsupervised --epochs 4 --optimizer adam --lr 0.02 \
		--threads 1 train.tns 2>err &&
	snet-infer -m m.tns --eval valid.tns >metrics && accuracy_above 0.4
'

if test_have_prereq fmnist; then
	test_expect_success 'on a Fashion-MNIST slice simnet-28 learns too' '
		fmnist_split 2500 2000 &&
		snet-train -q -m "$M/simnet-28.spec" -o fm-m.tns --init-unsupervised --epochs 4 --optimizer adam \
			--lr 0.02 --threads 1 fm-train.tns &&
		snet-infer -m fm-m.tns --eval fm-valid.tns >metrics && accuracy_above 0.4
	'
else
	test_skip 'on a Fashion-MNIST slice simnet-28 learns too' "no Fashion-MNIST in $FMNIST_DIR"
fi

test_expect_success 'the report shows the budget: 4329 parameters (NiN-10: 4340), sim and mex rows' '
	grep -q "initialised 2 layers from 2000 examples" err &&
	grep -q "^sim2 *sim *22x28x28 *396 " err &&
	grep -q "^mex4 *mex *16x14x14 *353 " err &&
	grep -q "^total .* 4329 " err
'

test_expect_success 'u stays >= 0 (clipped after every step) and the templates export as a montage' '
	tns-export -F tsv -n sim2.u m.tns >u.tsv &&
	test -s u.tsv && ! grep -q -- "-[0-9]" u.tsv &&
	tns-export -F png -n sim2.z -o z.png m.tns &&
	test "$(head -c 4 z.png | od -An -c | tr -d " ")" = "211PNG"
'

test_expect_success 'GMM init of an l2n SimNet; same seed and threads give the same bytes' '
	cat >g.spec <<-\EOS &&
	input 1 28 28 scale=0.00392156862745098
	sim l2n 8 k=4 stride=4 bias=1
	mex 6 cb=0 mode=softmax offsets=unshared period=2 norm=1
	mex k=7 xi=0 learn=0
	mex 10 cb=0 offsets=shared
	flatten
	EOS
	for r in r1 r2; do
		mkdir -p $r &&
		(cd $r && snet-train -q -m ../g.spec -o g.tns --init-unsupervised=gmm --init-examples 300 --epochs 1 \
			--optimizer adam --lr 0.01 --threads 2 ../train.tns) || return 1
	done &&
	cmp r1/g.tns r2/g.tns
'

test_expect_success 'an unknown init method is an error naming the layer' '
	test_must_fail snet-train -q -m "$M/simnet-28.spec" -o x.tns --init-unsupervised=pca --epochs 1 train.tns 2>err &&
	grep -q "sim2.*unknown init method .pca." err
'

test_expect_success 'the portable C kernels and the SIMD ones give the same logits on a trained SimNet' '
	SK_ISA=portable snet-infer -m m.tns -o lc.tns valid.tns &&
	snet-infer -m m.tns -o la.tns valid.tns &&
	tns-export -F tsv lc.tns >lc.tsv && tns-export -F tsv la.tns >la.tsv &&
	test $(wc -l <la.tsv) -eq 500 &&
	paste lc.tsv la.tsv | awk -F"\t" "{ n = NF / 2; for (i = 1; i <= n; i++) {
		d = \$i - \$(i + n); if (d < 0) d = -d; a = \$i < 0 ? -\$i : \$i
		if (d > 1e-4 * (1 + a)) bad++ } } END { exit bad > 0 }"
'

test_done
