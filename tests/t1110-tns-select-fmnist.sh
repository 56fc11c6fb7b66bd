#!/bin/sh
# tns-info and tns-select on a data set of the size of the Fashion-MNIST test
# set (10,000 synthetic 28x28 images as gzipped idx files), imported in
# chunks, split for validation, and read back with the NumPy reader of
# tns(5) against the idx files; the real test set too when installed.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"
command -v tns-import >/dev/null || skip_all "tns-import not built"
"$SK_SYNTH" -n 10000 -s 5 -o t10k && gzip t10k-images-idx3-ubyte t10k-labels-idx1-ubyte || exit 1
IMAGES=$PWD/t10k-images-idx3-ubyte.gz LABELS=$PWD/t10k-labels-idx1-ubyte.gz

test_expect_success 'import the test set in chunks' '
	tns-import -q --chunk 3000 -z 6 "$IMAGES" "$LABELS" >fm.tns &&
	tns-info --check -q fm.tns >list &&
	test $(awk "\$2 == \"images\"" list | wc -l) -eq 4 &&
	test $(awk "\$2 == \"labels\"" list | wc -l) -eq 4
'

test_expect_success 'a seeded 10% split: sizes add up and parts are disjoint' '
	tns-select --split 0.1 --seed 3 --part first -o train.tns fm.tns &&
	tns-select --split 0.1 --seed 3 --part second -o valid.tns fm.tns &&
	tns-info train.tns | awk "\$2 == \"labels\" {n += \$4} END {print n}" >ntrain &&
	tns-info valid.tns | awk "\$2 == \"labels\" {n += \$4} END {print n}" >nvalid &&
	test $(($(cat ntrain) + $(cat nvalid))) -eq 10000 &&
	test $(cat nvalid) -gt 900 && test $(cat nvalid) -lt 1100 &&
	tns-info train.tns | grep images | head -n 1 | grep -q "source=t10k-images-idx3-ubyte.gz,t10k-labels-idx1-ubyte.gz"
'

test_expect_success 'the split is the same with other chunk sizes and encodings' '
	tns-import -q --chunk 7000 "$IMAGES" "$LABELS" |
		tns-select --split 0.1 --seed 3 --part second -o valid2.tns &&
	{ "$GEN" dump images <valid.tns && "$GEN" dump labels <valid.tns; } >a &&
	{ "$GEN" dump images <valid2.tns && "$GEN" dump labels <valid2.tns; } >b &&
	test $(wc -l <a) -gt 700000 && test_cmp a b
'

# the NumPy reader from the man page
sed -n "/^\.SH READING IT FROM PYTHON/,/^\.SH/p" "$SK_SRCDIR/man/man5/tns.5" |
	sed -n "/^\.ft CW/,/^\.ft$/p" | sed -e "1d" -e "\$d" -e 's/\\e/\\/g' -e 's/^\\&//' >tnsread.py

if test_have_prereq python; then
	test_expect_success 'the NumPy reader of tns(5) gives back the idx files' '
		cat >check.py <<-PY &&
		import gzip, numpy as np
		exec(open("tnsread.py").read().split("\nfor name")[0])
		recs = list(read_tns(open("fm.tns", "rb")))
		x = np.concatenate([a for n, a, _ in recs if n == "images"])
		y = np.concatenate([a for n, a, _ in recs if n == "labels"])
		xi = np.frombuffer(gzip.open("$IMAGES").read()[16:], np.uint8)
		yi = np.frombuffer(gzip.open("$LABELS").read()[8:], np.uint8)
		assert x.shape == (10000, 1, 28, 28) and (x.reshape(-1) == xi).all()
		assert y.dtype == np.int32 and (y == yi).all()
		assert recs[0][2]["source"].split(",")[0] == "t10k-images-idx3-ubyte.gz"
		v = np.concatenate([a for n, a, _ in read_tns(open("valid.tns", "rb")) if n == "labels"])
		assert 900 < len(v) < 1100
		print("ok")
		PY
		/usr/bin/python3 check.py >out && grep -q "^ok$" out
	'
else
	test_skip 'the NumPy reader of tns(5) gives back the idx files' 'no /usr/bin/python3 with numpy'
fi

if test_have_prereq fmnist; then
	test_expect_success 'the Fashion-MNIST test set: chunks, class names, the same split sizes' '
		tns-import -q --chunk 3000 -z 6 "$FMNIST_DIR/t10k-images-idx3-ubyte.gz" "$FMNIST_DIR/t10k-labels-idx1-ubyte.gz" >real.tns &&
		test $(tns-info --check -q real.tns | awk "\$2 == \"images\"" | wc -l) -eq 4 &&
		tns-select --split 0.1 --seed 3 --part second -o rvalid.tns real.tns &&
		tns-info rvalid.tns | grep images | head -n 1 | grep -q "classes=T-shirt/top,Trouser" &&
		tns-info rvalid.tns | awk "\$2 == \"labels\" {n += \$4} END {print n}" >nreal &&
		test_cmp nvalid nreal
	'
else
	test_skip 'the Fashion-MNIST test set: chunks, class names, the same split sizes' "no Fashion-MNIST in $FMNIST_DIR"
fi

test_done
