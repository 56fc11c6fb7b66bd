#!/bin/sh
# SK_ISA, the one override of every kernel's instruction set: a value that
# names no level is an error in every program; --version shows the level in
# use; each level gives the same bits run to run with 1 and 2 threads (the
# thread pool); the portable kernels compute what the SIMD ones do, up to
# rounding.  Synthetic data.
. "$SK_SRCDIR/tests/lib.sh"
synth_split 600 500 || exit 1

# every kernel family of the training engine: Winograd, direct and im2col
# convolutions, batch norm, ReLU, max pooling, tanh, the vector helpers
cat >net.spec <<'EOS'
input 1 28 28 scale=0.00392156862745098 mean=0.5
conv 16 k=3 pad=1 algo=winograd
bn
relu
pool max k=2
conv 16 k=3 algo=direct
tanh
conv 8 k=3 stride=2 algo=gemm
relu
gap
linear 10
EOS

# train ISA OUT THREADS (an empty ISA: the default level)
train() { SK_ISA=$1 snet-train -q -m net.spec --epochs 1 --batch 50 --lr 0.05 -o "$2" --threads "$3" train.tns; }

test_expect_success 'an SK_ISA that names no level is an error in every program, before any output' '
	export SK_ISA=sse2 &&
	for p in tns-info tns-select tns-import tns-export snet-infer mr-build nsm-pretrain zoo-encode zoo-compare; do
		test_error 1 $p --help &&
		grep -q "^$p: SK_ISA=.sse2. is not portable, avx2 or avx512$" "$test_tmp/.stderr" || return 1
	done &&
	test_error 1 snet-train -q -m net.spec -o bad.tns --epochs 1 train.tns &&
	test ! -e bad.tns && test ! -e bad.tns.ckpt
'

test_expect_success '--version shows the level in use; SK_ISA caps it at the CPUs best' '
	best=$(snet-train --version | sed -n "s/^kernels \([a-z0-9]*\) (best on this CPU: \1)$/\1/p") &&
	test -n "$best" &&
	SK_ISA=portable snet-infer --version | grep -q "^kernels portable (best on this CPU: $best)$" &&
	SK_ISA=avx512 snet-infer --version | grep -q "^kernels $best " &&
	if [ "$best" != portable ]; then
		SK_ISA=avx2 snet-infer --version | grep -q "^kernels avx2 "
	fi
'

test_expect_success 'each level gives the same bits run to run, with 1 and 2 threads' '
	for isa in portable ""; do
		for j in 1 2; do
			mkdir -p r1 r2 &&
			(cd r1 && cp ../net.spec ../train.tns . && train "$isa" m.tns $j) &&
			(cd r2 && cp ../net.spec ../train.tns . && train "$isa" m.tns $j) &&
			cmp r1/m.tns r2/m.tns || return 1
		done
	done
'

test_expect_success 'the portable kernels and the SIMD ones give the same logits' '
	train "" m.tns 2 &&
	SK_ISA=portable snet-infer -m m.tns -o lp.tns valid.tns &&
	snet-infer -m m.tns -o ls.tns valid.tns &&
	tns-export --format tsv lp.tns >lp.tsv && tns-export --format tsv ls.tns >ls.tsv &&
	test $(wc -l <ls.tsv) -eq 100 &&
	paste lp.tsv ls.tsv | awk -F"\t" "{ n = NF / 2; for (i = 1; i <= n; i++) {
		d = \$i - \$(i + n); if (d < 0) d = -d; a = \$i < 0 ? -\$i : \$i
		if (d > 1e-4 * (1 + a)) bad++ } } END { exit bad > 0 }"
'

test_expect_success 'a model trained on the portable path evaluates alike on both' '
	train portable p.tns 2 &&
	SK_ISA=portable snet-infer -m p.tns --eval valid.tns >ep &&
	snet-infer -m p.tns --eval valid.tns >es &&
	paste ep es | awk "\$1 == \"loss\" { d = \$2 - \$4; if (d < 0) d = -d; found = 1; if (d > 2e-4) exit 1 }
		END { exit !found }"
'

test_done
