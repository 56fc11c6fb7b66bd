#!/bin/sh
# snet-train: the recipe a spec carries (`train` lines): used as the
# defaults, overridden by options key by key, printed at the start, recorded
# in the model's and checkpoint's attributes, kept by --resume; bad keys and
# values are one-line errors.  Synthetic data: no data set package needed.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"

# 96 images 1x6x6 of 3 classes (a bright row band per class), labels 0..2
bytes=$(awk 'BEGIN {
	for (i = 0; i < 96; i++) { c = i % 3
		for (p = 0; p < 36; p++) { v = (int(p / 6) >= 2 * c && int(p / 6) < 2 * c + 2) ? 200 : (i * 7 + p * 13) % 50
			printf "\\%03o", v } } }')
npy x.npy '|u1' "96, 1, 6, 6" "$bytes"
lab=$(awk 'BEGIN { for (i = 0; i < 96; i++) printf "\\%03o\\000\\000\\000", i % 3 }')
npy y.npy '<i4' "96," "$lab"
tns-import -q x.npy y.npy -o train.tns || exit 1
cat >net.spec <<'SPEC' || exit 1
# a small net with its recipe
train optimizer=adam lr=0.01 schedule=cosine
input 1 6 6 scale=0.00392156862745098
flatten
linear 8
relu
train epochs=3 batch=16 wd=1e-4
linear 3
SPEC

test_expect_success 'the recipe is the default, printed at the start and recorded' '
	snet-train -m net.spec -o m.tns --threads 1 --log log train.tns 2>err &&
	grep -q "^snet-train: recipe: optimizer=adam lr=0.01 wd=0.0001 schedule=cosine min-lr=0 warmup=0 epochs=3 batch=16 loss=xent crop=0 flip=0 init-unsupervised=none$" err &&
	test $(grep -c "recipe:" err) = 1 &&
	test $(grep -c "^epoch [1-3]/3 " err) = 3 &&
	test "$(tail -n 1 log | cut -f 1)" = 3 &&
	tns-info m.tns | head -n 1 | grep -q " recipe=optimizer=adam lr=0.01 wd=0.0001 schedule=cosine .* epochs=3 batch=16 " &&
	tns-info m.tns | head -n 1 | grep -q " optimizer=adam lr=0.01 batch=16 "
'

test_expect_success 'options override it key by key; --optimizer resets the momentum' '
	snet-train -m net.spec -o o.tns --threads 1 --lr 0.05 --epochs 1 --optimizer sgd --flip train.tns 2>err &&
	grep -q "^snet-train: recipe: optimizer=sgd lr=0.05 momentum=0.9 wd=0.0001 schedule=cosine min-lr=0 warmup=0 epochs=1 batch=16 loss=xent crop=0 flip=1 init-unsupervised=none$" err &&
	snet-train -m net.spec -o o.tns --threads 1 --epochs 1 --no-flip --wd 0 train.tns 2>err &&
	grep -q "recipe: optimizer=adam lr=0.01 wd=0 .* flip=0 " err
'

test_expect_success 'a trained model carries the recipe: training it again uses it' '
	snet-train -m m.tns -o again.tns --threads 1 --epochs 1 train.tns 2>err &&
	grep -q "^snet-train: recipe: optimizer=adam lr=0.01 wd=0.0001 schedule=cosine min-lr=0 warmup=0 epochs=1 batch=16 " err
'

test_expect_success 'a resumed run keeps the recipe: the same bytes, other values refused' '
	mkdir full part &&
	(cd full && snet-train -q -m ../net.spec -o m.tns --threads 1 --lr 0.02 ../train.tns) &&
	(cd part && { snet-train -q -m ../net.spec -o m.tns --threads 1 --lr 0.02 --stop-after-steps 8 ../train.tns
		test $? -eq 3; } &&
	 tns-info m.tns.ckpt | head -n 1 | grep -q " recipe=optimizer=adam lr=0.02 " &&
	 snet-train -o m.tns --threads 1 --resume m.tns.ckpt ../train.tns 2>err &&
	 grep -q "^snet-train: recipe: optimizer=adam lr=0.02 wd=0.0001 " err) &&
	cmp full/m.tns part/m.tns &&
	{ snet-train -q -m net.spec -o p2.tns --threads 1 --lr 0.02 --stop-after-steps 8 train.tns; test $? -eq 3; } &&
	test_error 1 snet-train -o p2.tns --threads 1 --lr 0.03 --resume p2.tns.ckpt train.tns &&
	grep -q "^snet-train: --resume: --lr 0.03 differs from the checkpoint.s 0.02$" .stderr &&
	test_error 1 snet-train -o p2.tns --threads 1 --lr 0.02 --epochs 4 --resume p2.tns.ckpt train.tns &&
	grep -q "^snet-train: --resume: --epochs 4 differs from the checkpoint.s 3 (the cosine schedule depends on it)$" .stderr &&
	snet-train -q -o p2.tns --threads 1 --lr 0.02 --resume p2.tns.ckpt train.tns &&
	tns-info p2.tns | head -n 1 | grep -q " epochs=3 .*recipe=optimizer=adam lr=0.02 .* epochs=3 "
'

test_expect_success 'bad recipe keys and values: one-line errors naming the place' '
	while IFS="|" read -r b edit msg; do
		sed "$edit" net.spec >bad$b.spec &&
		test_error 1 snet-train -m bad$b.spec -o x.tns train.tns </dev/null &&
		grep -q "^snet-train: bad$b.spec:$msg" .stderr || return 1
	done <<-TABLE &&
	1|s/^train epochs=3/train epochz=3/|7:7: train: unknown key .epochz. (known: optimizer lr 
	2|s/^train epochs=3/train epochs=many/|7:7: train: epochs: .many. is not an integer$
	3|s/^train epochs=3/train lr=3/|7:7: train: .lr. given twice (first at line 2)$
	4|s/^train epochs=3/train schedule=multistep/; s/schedule=cosine//|.*schedule multistep needs milestones
	TABLE
	test_error 2 snet-train -m net.spec -o x.tns --schedule multistep train.tns &&
	test_error 2 snet-train -m net.spec -o x.tns --milestones 2 train.tns &&
	test_error 2 snet-train -m net.spec -o x.tns --lr fast train.tns &&
	test_error 1 snet-infer -m bad1.spec train.tns &&
	test ! -e x.tns && test -z "$(ls -A | grep "^\.x")"
'

test_expect_success 'the recipe asks for unsupervised initialisation; --init-unsupervised=none turns it off' '
	sed "s/^train epochs=3 /train epochs=1 init-unsupervised=kmeans /" net.spec >u.spec &&
	snet-train -m u.spec -o u.tns --threads 1 train.tns 2>err &&
	grep -q "warning: --init-unsupervised: no layer of the model supports it" err &&
	snet-train -m u.spec -o u.tns --threads 1 --init-unsupervised=none train.tns 2>err &&
	! grep -q "init-unsupervised:" err
'

test_expect_success 'the shipped specs carry recipes that read' '
	for f in "$SK_SRCDIR"/share/models/*.spec; do
		grep -q "^train " "$f" || { echo "$f: no recipe"; return 1; }
	done
'

test_done
