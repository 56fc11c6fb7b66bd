#!/bin/sh
# The tensor stream format: layout, concatenation, and the NumPy reader
# printed in tns(5), run on our output.
. "$SK_SRCDIR/tests/lib.sh"
GEN="$SK_BUILDDIR/tests/unit/test-stream"

test_expect_success 'records are text headers padded to 64 bytes' '
	"$GEN" gen x:f32:2x3:note=hi >x.tns &&
	test $(wc -c <x.tns) -eq 192 &&
	head -c 6 x.tns >magic && printf "TNS 1\n" >expect && test_cmp expect magic &&
	head -c 128 x.tns | grep -a -q "^end [0-9a-f]\{8\} *$" &&
	head -c 128 x.tns | tail -c 1 | od -An -c | grep -q "\\\\n"
'

test_expect_success 'the worked example in tns(5) is what we write' '
	xxd x.tns >dump 2>/dev/null || skip=1
	if [ -z "${skip:-}" ]; then
		sed -n "/^\.ft CW/,/^\.ft$/p" "$SK_SRCDIR/man/man5/tns.5" | grep "^0000" >doc &&
		test_cmp doc dump
	fi
'

test_expect_success 'concatenated streams are a stream' '
	"$GEN" gen a:u8:5 b:i32:2x2 >ab.tns &&
	"$GEN" gen -z 9 c:f32:7 >c.tns &&
	cat ab.tns c.tns ab.tns | tns-info --check >out &&
	test $(wc -l <out) -eq 5 &&
	awk "{print \$1, \$2, \$3, \$4, \$5}" out >names &&
	printf "0 a u8 5 raw\n1 b i32 2x2 raw\n2 c f32 7 deflate\n3 a u8 5 raw\n4 b i32 2x2 raw\n" >expect &&
	test_cmp expect names
'

test_expect_success 'deflate and raw records hold the same data' '
	"$GEN" gen -z 6 data:30:7:3x4x4 >z.tns &&
	"$GEN" gen data:30:7:3x4x4 >r.tns &&
	grep -a -q "^encoding deflate" z.tns &&
	"$GEN" dump <z.tns >zd && "$GEN" dump <r.tns >rd && test_cmp rd zd &&
	tns-select -z 0 z.tns | cmp - r.tns
'

# the NumPy reader, taken verbatim from the man page
sed -n "/^\.SH READING IT FROM PYTHON/,/^\.SH/p" "$SK_SRCDIR/man/man5/tns.5" |
	sed -n "/^\.ft CW/,/^\.ft$/p" | sed -e "1d" -e "\$d" -e 's/\\e/\\/g' -e 's/^\\&//' >tnsread.py

if test_have_prereq python; then
	test_expect_success 'the NumPy reader of tns(5) reads our output' '
		test $(wc -l <tnsread.py) -ge 20 &&
		"$GEN" gen -z 3 data:23:10:1x3x3 >d.tns &&
		"$GEN" gen "w:f32:2x3:note=tab	and back" s:i32:scalar >>d.tns &&
		cat >check.py <<-\PY &&
		import sys
		exec(open("tnsread.py").read().split("\nfor name")[0])
		recs = list(read_tns(open("d.tns", "rb")))
		import numpy as np
		assert [r[0] for r in recs] == ["images", "labels"] * 3 + ["w", "s"], [r[0] for r in recs]
		labels = np.concatenate([a for n, a, _ in recs if n == "labels"])
		assert (labels == np.arange(23)).all()
		imgs = np.concatenate([a for n, a, _ in recs if n == "images"])
		assert imgs.shape == (23, 1, 3, 3) and imgs.dtype == np.uint8
		e = np.arange(23)[:, None] * 7 + np.arange(9)[None, :]
		assert (imgs.reshape(23, 9) == e % 256).all()
		assert recs[0][2]["classes"] == "zero,one,two"
		w = recs[6][1]
		assert w.dtype == np.float32 and (w == np.arange(6).reshape(2, 3) * 0.25 - 1).all()
		assert recs[6][2]["note"] == "tab\tand back", repr(recs[6][2]["note"])
		assert recs[7][1].shape == () and recs[7][1] == -5
		print("ok")
		PY
		/usr/bin/python3 check.py >out && grep -q "^ok$" out &&
		/usr/bin/python3 tnsread.py d.tns >listing && test $(wc -l <listing) -eq 8
	'
	test_expect_success 'the NumPy reader refuses a damaged payload or header' '
		"$GEN" gen x:f32:4 >y.tns &&
		printf "\001" | dd of=y.tns bs=1 seek=130 conv=notrunc 2>/dev/null &&
		! /usr/bin/python3 tnsread.py y.tns 2>err && grep -q "payload checksum mismatch" err &&
		"$GEN" gen x:f32:4 | "$GEN" flip 12 1 >z.tns &&
		! /usr/bin/python3 tnsread.py z.tns 2>err && grep -q "header checksum mismatch" err
	'
else
	test_skip 'the NumPy reader of tns(5) reads our output' 'no /usr/bin/python3 with numpy'
	test_skip 'the NumPy reader refuses a damaged payload or header' 'no /usr/bin/python3 with numpy'
fi

test_expect_success 'an empty stream has no records' '
	: >empty.tns &&
	test_error 1 tns-info empty.tns 2>err && grep -q "empty stream" err
'

test_done
