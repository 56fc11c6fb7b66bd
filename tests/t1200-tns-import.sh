#!/bin/sh
# tns-import: idx (.gz) slices, CIFAR batches, PNG class directories, npy
# round trips, chunks, attributes, atomic output.
. "$SK_SRCDIR/tests/lib.sh"
FX="$SK_SRCDIR/tests/fixtures/import"

# 100 examples as idx.gz: a slice of Fashion-MNIST when it is installed,
# otherwise synthetic images (the importer does not care).
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
if test_have_prereq fmnist; then
	{ printf '\000\000\010\003'; be32 100; be32 28; be32 28; gzip -dc "$FMNIST_DIR/train-images-idx3-ubyte.gz" | tail -c +17 | head -c 78400; } | gzip >fashion-images.gz
	{ printf '\000\000\010\001'; be32 100; gzip -dc "$FMNIST_DIR/train-labels-idx1-ubyte.gz" | tail -c +9 | head -c 100; } | gzip >fashion-labels.gz
else
	"$SK_SYNTH" -n 100 -o syn && gzip -c syn-images-idx3-ubyte >fashion-images.gz &&
		gzip -c syn-labels-idx1-ubyte >fashion-labels.gz || exit 1
fi
gzip -dc fashion-labels.gz | tail -c +9 | od -An -v -tu1 | tr -s ' ' '\n' | sed '/^$/d' >labels.expect

test_expect_success 'idx images and labels (.gz) give one data set' '
	tns-import fashion-images.gz fashion-labels.gz >d.tns 2>err &&
	grep -q "100 examples (idx) from 2 inputs" err &&
	tns-info --check d.tns >info 2>/dev/null &&
	test $(wc -l <info) -eq 2 &&
	grep -q "^0 *images *u8 *100x1x28x28 " info &&
	grep -q "^1 *labels *i32 *100 " info
'

test_expect_success 'attributes: Fashion-MNIST class names and the sources' '
	grep -q "classes=T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" info &&
	grep -q "source=fashion-images.gz,fashion-labels.gz" info
'

test_expect_success 'labels survive exactly (tns-export tsv)' '
	tns-export -F tsv -n labels d.tns >labels.out &&
	test_cmp labels.expect labels.out
'

test_expect_success 'the order of the two files does not matter' '
	tns-import -q fashion-labels.gz fashion-images.gz >e.tns &&
	tns-export -F npy -n images d.tns >a.npy && tns-export -F npy -n images e.tns >b.npy && cmp a.npy b.npy &&
	tns-export -F tsv -n labels e.tns | test_cmp labels.expect -
'

test_expect_success '--chunk 30 gives 4 images/labels pairs that join back' '
	tns-import -q --chunk 30 fashion-images.gz fashion-labels.gz >c.tns &&
	tns-info c.tns >cinfo &&
	test $(grep -c " images " cinfo) -eq 4 && test $(grep -c " labels " cinfo) -eq 4 &&
	grep -q "^6 *images *u8 *10x1x28x28" cinfo &&
	tns-export -F npy -n images c.tns | cmp - a.npy
'

test_expect_success 'raw (not gzip) input gives the same data' '
	gzip -dc fashion-images.gz >images.idx && gzip -dc fashion-labels.gz >labels.idx &&
	tns-import -q images.idx labels.idx -o raw.tns &&
	tns-export -F npy -n images raw.tns | cmp - a.npy
'

test_expect_success '-z 6 compresses and reads back the same' '
	tns-import -q -z 6 fashion-images.gz fashion-labels.gz -o z.tns &&
	tns-info z.tns | grep -q "images .* deflate .*(.* stored)" &&
	test $(wc -c <z.tns) -lt $(wc -c <d.tns) &&
	tns-export -F npy -n images z.tns | cmp - a.npy
'

test_expect_success '-z LEVEL: 0 is raw, 1 deflates; --deflate is -z 6 and warns' '
	tns-import -q -z 0 fashion-images.gz fashion-labels.gz | cmp - d.tns &&
	tns-import -q --compress 1 fashion-images.gz fashion-labels.gz -o z1.tns &&
	tns-info z1.tns | grep -q "images .* deflate " &&
	tns-export -F npy -n images z1.tns | cmp - a.npy &&
	tns-import -q --deflate fashion-images.gz fashion-labels.gz -o old.tns 2>err &&
	cmp old.tns z.tns &&
	test $(wc -l <err) -eq 1 &&
	grep -q "^tns-import: warning: --deflate is deprecated.*-z 6" err
'

test_expect_success '-o writes atomically: only the output is left' '
	mkdir out && tns-import -q -o out/d.tns fashion-images.gz fashion-labels.gz &&
	test "$(ls -A out)" = d.tns && cmp out/d.tns d.tns
'

test_expect_success 'stdin works for idx' '
	tns-import -q - <images.idx | tns-info | grep -q "^0 *images *u8 *100x1x28x28"
'

test_expect_success 'images alone: an unlabelled data set' '
	tns-import -q fashion-images.gz | tns-info >u.info &&
	test $(wc -l <u.info) -eq 1
'

# CIFAR-10: records of 1 label byte + 3072 pixel bytes
cifar_rec() { printf "\\$(printf %03o $1)"; head -c 3072 /dev/zero | tr '\0' "\\$(printf %03o $2)"; }
{ cifar_rec 3 10; cifar_rec 7 20; } >b1.bin
{ cifar_rec 9 30; } | gzip >b2.bin.gz

test_expect_success 'CIFAR-10 batches (raw and .gz) append' '
	tns-import -q b1.bin b2.bin.gz >cf.tns &&
	tns-info cf.tns >cf.info &&
	grep -q "^0 *images *u8 *3x3x32x32" cf.info &&
	grep -q "classes=airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck" cf.info &&
	printf "3\n7\n9\n" >expect && tns-export -F tsv -n labels cf.tns | test_cmp expect -
'

test_expect_success 'CIFAR class names from batches.meta.txt next to the batch' '
	mkdir meta && cp b1.bin meta/ && printf "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n" >meta/batches.meta.txt &&
	tns-import -q meta/b1.bin | tns-info | grep -q "classes=a,b,c,d,e,f,g,h,i,j "
'

test_expect_success '-F cifar100 reads 2 label bytes per record' '
	{ printf "\\001\\052"; head -c 3072 /dev/zero; } >c100.bin &&
	tns-import -q -F cifar100 c100.bin | tns-export -F tsv -n labels >c100.out &&
	echo 42 >expect && test_cmp expect c100.out
'

CIFAR_DIR="$SK_SRCDIR/../shared/data/cifar-10-partial"
if [ -r "$CIFAR_DIR/data_batch_1.first4000.bin.gz" ]; then
	test_expect_success 'the partial CIFAR-10 batches import (8068 images, labels as published)' '
		tns-import -q "$CIFAR_DIR"/data_batch_*.bin.gz >cifar.tns &&
		tns-info --check cifar.tns >ci 2>/dev/null &&
		awk "\$2 == \"images\" { split(\$4, d, \"x\"); if (\$3 != \"u8\" || d[2] d[3] d[4] != \"33232\") bad = 1; n += d[1] }
			END { exit bad || n != 8068 }" ci &&
		tns-export -F tsv -n labels cifar.tns >got &&
		{ head -c 4000 "$CIFAR_DIR/data_batch_1.labels"; for k in 2 3 4 5; do head -c 1017 "$CIFAR_DIR/data_batch_$k.labels"; done; } |
			od -An -v -tu1 | tr -s " " "\n" | sed "/^\$/d" >want &&
		test_cmp want got
	'
else
	test_skip 'the partial CIFAR-10 batches import' 'no cifar-10-partial data'
fi

test_expect_success 'PNG class directories (made with tns-export) import with labels' '
	mkdir -p png/shirt png/shoe &&
	tns-export -F png --index 0 -o png/shirt/0.png d.tns &&
	tns-export -F png --index 1 -o png/shirt/1.png d.tns &&
	tns-export -F png --index 2 -o png/shoe/2.png d.tns &&
	tns-import -q png >p.tns &&
	tns-info p.tns >p.info &&
	grep -q "^0 *images *u8 *3x1x28x28 .*classes=shirt,shoe source=png" p.info &&
	printf "0\n0\n1\n" >expect && tns-export -F tsv -n labels p.tns | test_cmp expect - &&
	tns-select --range 0:3 -n images d.tns | tns-export -F npy >orig.npy &&
	tns-export -F npy -n images p.tns >back.npy && cmp orig.npy back.npy
'

test_expect_success 'a PNG on stdin' '
	tns-export -F png --index 1 d.tns | tns-import -q - | tns-export -F npy -n images >stdin.npy &&
	tns-select --range 1:2 -n images d.tns | tns-export -F npy | cmp - stdin.npy &&
	cat "$FX/rgb.png" | tns-import -q "$FX/gray8.png" - | tns-info | grep -q " 2x3x3x4 "
'

test_expect_success 'PNG files of mixed gray and RGB become RGB' '
	tns-import -q "$FX/gray8.png" "$FX/rgb.png" "$FX/palette.png" | tns-info >mix.info &&
	grep -q "^0 *images *u8 *3x3x3x4 " mix.info &&
	test $(wc -l <mix.info) -eq 1
'

test_expect_success 'PNG --size with --fit pad and crop' '
	tns-import -q --size 4x8 --fit pad "$FX/gray8.png" "$FX/gray1.png" | tns-info | grep -q "2x1x4x8" &&
	tns-import -q --size 2x4 --fit crop "$FX/gray8.png" "$FX/gray1.png" | tns-info | grep -q "2x1x2x4"
'

if test_have_prereq python; then
	/usr/bin/python3 - <<-\EOF
	import numpy as np
	rng = np.random.default_rng(5)
	np.save("u1.npy", rng.integers(0, 256, (10, 1, 5, 7), dtype=np.uint8))
	np.save("i4.npy", rng.integers(-1000, 1000, (10,), dtype=np.int32))
	np.save("f4.npy", rng.standard_normal((3, 4, 5)).astype(np.float32))
	np.save("f8.npy", rng.standard_normal((6, 2)))
	np.save("fo.npy", np.asfortranarray(rng.standard_normal((4, 3)).astype(np.float32)))
	np.save("lab.npy", rng.integers(0, 10, (10,)))
	EOF
	test_expect_success 'npy -> tns -> npy is byte-exact (u1, i4, f4)' '
		for a in u1 i4 f4; do
			tns-import -q -n x $a.npy | tns-export -F npy -o $a.out.npy && cmp $a.npy $a.out.npy || return 1
		done
	'
	test_expect_success 'npy images + labels as a chunked data set, exported back exactly' '
		tns-import -q --chunk 3 u1.npy lab.npy >n.tns &&
		test $(tns-info n.tns | grep -c " images ") -eq 4 &&
		tns-export -F npy -n images n.tns | cmp - u1.npy &&
		tns-export -F npy -n labels n.tns >lab.out.npy &&
		/usr/bin/python3 -c "import numpy as np; a=np.load(\"lab.npy\"); b=np.load(\"lab.out.npy\"); assert b.dtype==np.int32 and (a==b).all()"
	'
	test_expect_success 'npy f8 becomes f4; Fortran order is reordered' '
		tns-import -q -n x f8.npy | tns-export -F npy >f8.out.npy &&
		tns-import -q -n x fo.npy | tns-export -F npy >fo.out.npy &&
		/usr/bin/python3 -c "
import numpy as np
a = np.load(\"f8.npy\"); b = np.load(\"f8.out.npy\")
assert b.dtype == np.float32 and (a.astype(np.float32) == b).all()
a = np.load(\"fo.npy\"); b = np.load(\"fo.out.npy\")
assert not b.flags.f_contiguous and (a == b).all()
"
	'
else
	test_skip 'npy round trips' 'no python3-numpy'
fi

test_done
