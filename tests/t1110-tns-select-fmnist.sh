#!/bin/sh
# tns-info and tns-select on real data: the Fashion-MNIST test set, imported
# in chunks, split for validation, and read back with the NumPy reader of
# tns(5) against the original idx files.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"
test_have_prereq fmnist || skip_all "no Fashion-MNIST in $FMNIST_DIR"
command -v tns-import >/dev/null || skip_all "tns-import not built"

test_expect_success 'import the test set in chunks' '
	tns-import -q --chunk 3000 -z "$FMNIST_DIR/t10k-images-idx3-ubyte.gz" "$FMNIST_DIR/t10k-labels-idx1-ubyte.gz" >fm.tns &&
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
	tns-info train.tns | grep images | head -n 1 | grep -q "classes=T-shirt/top,Trouser"
'

test_expect_success 'the split is the same with other chunk sizes and encodings' '
	tns-import -q --chunk 7000 "$FMNIST_DIR/t10k-images-idx3-ubyte.gz" "$FMNIST_DIR/t10k-labels-idx1-ubyte.gz" |
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
		xi = np.frombuffer(gzip.open("$FMNIST_DIR/t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)
		yi = np.frombuffer(gzip.open("$FMNIST_DIR/t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
		assert x.shape == (10000, 1, 28, 28) and (x.reshape(-1) == xi).all()
		assert y.dtype == np.int32 and (y == yi).all()
		assert recs[0][2]["classes"].split(",")[0] == "T-shirt/top"
		v = np.concatenate([a for n, a, _ in read_tns(open("valid.tns", "rb")) if n == "labels"])
		assert 900 < len(v) < 1100
		print("ok")
		PY
		/usr/bin/python3 check.py >out && grep -q "^ok$" out
	'
else
	test_skip 'the NumPy reader of tns(5) gives back the idx files' 'no /usr/bin/python3 with numpy'
fi

test_done
