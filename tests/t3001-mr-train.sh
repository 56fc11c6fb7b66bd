#!/bin/sh
# t3001: mr-build | snet-train in one pipeline; MaxMin specs train; the
# trained models keep the blocks' parameter names.  Synthetic data.
. "${SK_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"

command -v snet-train >/dev/null 2>&1 || skip_all 'snet-train is not built'
models=$SK_SRCDIR/share/models
recipe=$(sed 's/#.*//' "$SK_SRCDIR/share/recipes/dmrnet.txt" | grep -v -e '^--epochs' -e '^--milestones')

test_expect_success 'data slices' '
	synth_data 768 >all.tns &&
	tns-select -q --range 0:512 all.tns >train.tns &&
	tns-select -q --range 512: all.tns >valid.tns
'

test_expect_success 'mr-build | snet-train: a DMRNet in one pipeline, with the recipe' '
	mr-build -q --arch dmrnet --depth 8 --width 4 --input 1x28x28 --seed 2 |
		snet-train -q --model - $recipe --epochs 2 --milestones 1 --threads 1 \
			--valid valid.tns -o dmr.tns train.tns &&
	tns-info dmr.tns >info &&
	grep -q "s2b1.a.conv1.w *f32 8x4x3x3" info &&
	grep -q "s2b1.b.projbn.gamma" info &&
	grep -q "s3b1.b.conv2.w *f32 16x16x3x3" info &&
	snet-infer -m dmr.tns --eval valid.tns >eval &&
	grep -q "accuracy" eval
'

test_expect_success 'mr-build --match-params | snet-train: the equal-parameter ResNet, option A shortcuts' '
	mr-build -q --arch resnet --match-params 8 --width 4 --input 1x28x28 --shortcut a |
		snet-train -q --model - $recipe --epochs 1 --milestones 1 --threads 1 -o res.tns train.tns &&
	tns-info res.tns >info &&
	grep -q "s1b2.conv2.w" info &&
	! grep -q "proj" info
'

test_expect_success 'the spec written by --spec trains as a file too' '
	mr-build -q --arch resnet --depth 8 --width 4 --input 1x28x28 --spec >res.spec &&
	snet-train -q --model res.spec --epochs 1 --threads 1 -o res2.tns train.tns &&
	tns-info res2.tns | grep -q "s3b1.projbn.beta"
'

test_expect_success 'MaxMin and ReLU small nets train and learn (above chance after 3 epochs)' '
	for m in maxmin-small maxmin-small-relu maxmin-small-relu-wide; do
		snet-train -q --model "$models/$m.spec" --optimizer adam --lr 0.003 --epochs 3 --threads 1 \
			--valid valid.tns -o $m.tns train.tns &&
		snet-infer -m $m.tns --eval valid.tns >$m.eval &&
		awk "/accuracy/ { if (\$2 + 0 < 0.4) exit 1; found = 1 } END { exit !found }" $m.eval || return 1
	done
'

test_expect_success 'the MaxMin twin has the parameters PAPERS.md 7 gives' '
	for m in maxmin-small:25418 maxmin-small-relu:12810 maxmin-small-relu-wide:25450 \
		maxmin-lenet5:112106 maxmin-zoo-cnn:9738; do
		snet-train --model "$models/${m%%:*}.spec" --epochs 1 --threads 1 -o x.tns train.tns 2>err &&
		grep -q "total .* ${m##*:} " err || { cat err; return 1; }
	done
'

test_done
