#!/bin/sh
# scripts/exp-simnet's ablation group: the variants of simnet-l2n-28 are
# made from the shipped spec (one piece changed each), every variant trains,
# and the ablation table is the per-variant mean with the difference to the
# shipped model.  Synthetic data; the real experiment is not run here.
. "$SK_SRCDIR/tests/lib.sh"
X=$SK_SRCDIR/scripts/exp-simnet
B=$SK_SRCDIR/share/models/simnet-l2n-28.spec

test_expect_success '-l lists 8 variants x 3 seeds and writes their specs, training nothing' '
	"$X" -b "$SK_BUILDDIR" -w w -g ablation -l >list &&
	test $(wc -l <list) = 24 &&
	test $(grep -c "^ablation [a-z0-9-]* fa 20 [123]$" list) = 24 &&
	test $(cut -d" " -f2 list | sort -u | wc -l) = 8 &&
	test ! -e w/fm-all.tns && test -z "$(ls w | grep "\.res$")"
'

# VARIANT EXPECTED-CHANGED-LINES: lines of the shipped spec that differ
changed() { diff "$B" "w/specs/ablation-$1.spec" | grep -c "^>"; }
test_expect_success 'each variant changes exactly its piece of the shipped spec' '
	cmp "$B" w/specs/ablation-shipped.spec && cmp "$B" w/specs/ablation-init-kmeans.spec &&
	cmp "$B" w/specs/ablation-init-gmm.spec &&
	test "$(cat w/specs/ablation-init-gmm.args)" = "--init-unsupervised=gmm" &&
	test "$(cat w/specs/ablation-init-kmeans.args)" = "--init-unsupervised=kmeans" &&
	test ! -s w/specs/ablation-sim-l1.args &&
	test $(changed sim-l1) = 1 && grep -q "^sim l1 12 " w/specs/ablation-sim-l1.spec &&
	test $(changed sim-l2) = 1 && grep -q "^sim l2 12 " w/specs/ablation-sim-l2.spec &&
	test $(changed offsets-none) = 4 && test $(grep -c " offsets=none " w/specs/ablation-offsets-none.spec) = 4 &&
	! grep -q "^mex .*unshared" w/specs/ablation-offsets-none.spec &&
	grep -q "^mex 10 .* norm=1 offsets=shared " w/specs/ablation-offsets-none.spec &&
	test $(changed offsets-shared) = 4 && ! grep -q "^mex .*unshared" w/specs/ablation-offsets-shared.spec &&
	test $(changed xi-learned) = 5 && ! grep -q "^mex .*learn=0" w/specs/ablation-xi-learned.spec
'

synth_data 300 >train.tns || exit 1
test_expect_success 'every variant trains (one short epoch each); learned xi adds 5 parameters to 4,096' '
	for v in shipped init-kmeans init-gmm sim-l1 sim-l2 offsets-none offsets-shared xi-learned; do
		snet-train -m w/specs/ablation-$v.spec -o $v.tns --epochs 1 --threads 1 \
			$(cat w/specs/ablation-$v.args) train.tns 2>$v.err || { cat $v.err; exit 1; }
		awk "\$1 == \"total\" {t = \$3} END {exit !(t > 0 && t <= 4101)}" $v.err ||
			{ echo "$v: no parameter count or more than 4101"; exit 1; }
	done &&
	grep -q "initialised 1 layers* from" init-gmm.err
'

test_expect_success '-T makes the ablation table from the results: means, differences, the fixed order' '
	mkdir -p t &&
	r() { printf "ablation\t%s\t%s\t%s\t4096\t0.34\t%s\t%s\t12\t11\t%s\n" "$@" >"t/ablation-$1-s$2.res"; } &&
	r shipped 1 0.80 100 90 0.82 && r shipped 2 0.84 110 92 0.84 && r shipped 3 0.82 120 94 0.86 &&
	r xi-learned 1 0.70 100 95 0.71 && r xi-learned 2 0.72 100 95 0.73 && r xi-learned 3 0.74 100 95 0.75 &&
	r init-gmm 1 0.83 130 99 0.80 && r init-gmm 2 0.83 130 99 0.80 && r init-gmm 3 0.83 130 99 0.80 &&
	"$X" -b "$SK_BUILDDIR" -w t -g ablation -T >out 2>err &&
	grep "^| " t/ablation.md | tail -n +3 >rows &&
	cat >want <<-\EOT &&
	| (none) | shipped: random init, l2n, unshared offsets, xi fixed | 82.00 +- 2.00 |  | 84.00 | 3 | 110 | 92 |
	| init | GMM | 83.00 +- 0.00 | +1.00 | 80.00 | 3 | 130 | 99 |
	| xi | learned | 72.00 +- 2.00 | -10.00 | 73.00 | 3 | 100 | 95 |
	EOT
	test_cmp want rows &&
	grep -q "^| ablation | xi-learned | 4096 | 0.34 | 72.00 +- 2.00 | 3 | 11,11,11 | 100 | 95 |$" t/table.md
'

test_done
