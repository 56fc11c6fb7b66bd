#!/bin/sh
# snet-infer's forward-only engine: on networks with batch norm folded into
# convolutions, residual, resblock and merge-and-run blocks, dropout and
# batch norm after a linear layer, --eval reproduces the validation loss
# and accuracy that snet-train measured with the training engine, in any
# batch size and thread count; features of layers inside blocks; ResNet-20
# at batch 256 in bounded memory.  Synthetic data.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"

# N examples of C x H x W bytes (1..255, seeded) and labels 0..9
data() {
	npy "$1.x.npy" '|u1' "$2, $3, $4, $5" ''
	LC_ALL=C awk -v n=$(($2 * $3 * $4 * $5)) -v s="$6" \
		'BEGIN {srand(s); for (i = 0; i < n; i++) printf "%c", 1 + int(rand() * 255)}' >>"$1.x.npy"
	npy "$1.y.npy" '<i4' "$2," "$(LC_ALL=C awk -v n="$2" -v s="$6" \
		'BEGIN {srand(s + 1); for (i = 0; i < n; i++) printf "\\%03o\\000\\000\\000", int(rand() * 10)}')"
	tns-import -q -o "$1.tns" "$1.x.npy" "$1.y.npy"
}

cat >res.spec <<'EOF'
input 3 8 8 scale=0.00392156862745098 mean=0.5,0.5,0.5 std=0.25,0.25,0.25
conv 8 k=3 pad=1 bias=0
bn
relu
residual {
	conv 8 k=3 pad=1 bias=0
	bn
	relu
	conv 8 k=3 pad=1
	bn
}
relu
residual shortcut=pad {
	conv 12 k=3 stride=2 pad=1 bias=0
	bn
	relu
	conv 12 k=3 pad=1 bias=0
	bn
}
relu
resblock 16 stride=2
gap
dropout p=0.3
linear 16
bn
relu
linear 10
EOF

# metrics of snet-infer --eval ($1 = model, $2 = options) against the
# model's recorded valid_loss and valid_acc (4 decimals)
agrees() {
	snet-infer -m "$1" --eval $2 valid.tns >eval &&
	tns-info "$1" | head -n 1 >info &&
	vl=$(sed -n 's/.* valid_loss=\([0-9.]*\).*/\1/p' info) &&
	va=$(sed -n 's/.* valid_acc=\([0-9.]*\).*/\1/p' info) &&
	test -n "$vl" && test -n "$va" &&
	awk -v vl="$vl" -v va="$va" '
		$1 == "loss" {l = $2} $1 == "accuracy" {a = $2}
		END {d = l - vl; e = a - va; if (d < 0) d = -d; if (e < 0) e = -e
		     printf "snet-infer loss %s acc %s, snet-train valid_loss %s valid_acc %s\n", l, a, vl, va > "/dev/stderr"
		     exit !(d < 1.5e-4 && e < 1.5e-4)}' eval
}

test_expect_success 'synthetic data' '
	data train 300 3 8 8 1 && data valid 200 3 8 8 2 &&
	tns-info valid.tns | grep -q "200x3x8x8"
'

test_expect_success 'a residual network with folded batch norm: --eval equals the training engine' '
	snet-train -q -m res.spec -o res.tns --epochs 2 --batch 32 --lr 0.05 --threads 1 --valid valid.tns train.tns &&
	agrees res.tns "" &&
	cp eval eval1 &&
	agrees res.tns "--batch 7 --threads 2" &&
	test_cmp eval1 eval
'

test_expect_success 'a DMRNet (mr-build): --eval equals the training engine' '
	mr-build -q --arch dmrnet --depth 8 --width 4 --input 3x8x8 --seed 2 >dmr.spec &&
	snet-train -q -m dmr.spec -o dmr.tns --epochs 2 --batch 32 --lr 0.05 --threads 1 --valid valid.tns train.tns &&
	agrees dmr.tns "--threads 1" &&
	agrees dmr.tns "--batch 5 --threads 2"
'

test_expect_success 'features of a folded batch norm inside a block and of a block' '
	snet-infer -m dmr.tns --layer s2b1.a.bn2 valid.tns | tns-info - >info &&
	grep -q "features *f32 *200x128 .*layer=s2b1.a.bn2 shape=8x4x4" info &&
	snet-infer -m res.tns --layer residual5 --batch 3 valid.tns | tns-info - >info &&
	grep -q "features *f32 *200x512 .*shape=8x8x8" info
'

# (6 digits in the text, and the kernels may sum in another order)
test_expect_success 'logits of a batch equal those of single examples to float rounding' '
	snet-infer -m res.tns --batch 256 valid.tns | tns-export -F tsv - >a.tsv &&
	snet-infer -m res.tns --batch 1 --threads 1 valid.tns | tns-export -F tsv - >b.tsv &&
	test $(wc -l <a.tsv) -eq 200 && test $(wc -l <b.tsv) -eq 200 &&
	awk "NR == FNR {for (i = 1; i <= NF; i++) v[FNR, i] = \$i; next}
	     {for (i = 1; i <= NF; i++) {d = \$i - v[FNR, i]; a = v[FNR, i]; if (d < 0) d = -d; if (a < 0) a = -a
	                                 if (!(d <= 2e-5 * (1 + a))) exit 1}}" a.tsv b.tsv
'

test_expect_success 'ResNet-20 at batch 256 in bounded memory' '
	data big 256 3 32 32 3 &&
	if [ -x /usr/bin/time ] && [ -z "${SK_SANITIZE:-}" ]; then
		/usr/bin/time -f "%M" -o rss snet-infer -m "$SK_SRCDIR/share/models/resnet20.spec" --batch 256 \
			--threads 1 --eval big.tns >eval 2>/dev/null &&
		echo "peak RSS $(cat rss) KiB" >&2 &&
		test $(tail -n 1 rss) -lt 160000
	else
		snet-infer -m "$SK_SRCDIR/share/models/resnet20.spec" --batch 256 --threads 1 --eval big.tns >eval 2>/dev/null
	fi &&
	grep -q "^n 256$" eval
'

test_done
