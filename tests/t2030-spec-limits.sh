#!/bin/sh
# Hostile specs: window geometry that overflows int and models too large to
# allocate are refused with one line when the model is built, before any
# parameter is allocated (simkit.7, Limits); tns-info counts parameters from
# the shapes without allocating them.
. "$SK_SRCDIR/tests/lib.sh"
. "$SK_SRCDIR/tests/npy.sh"

# model_record SPECFILE: a model record holding the spec (no parameters).
model_record() {
	spec=$1
	len=$(wc -c <"$spec")
	crc() { gzip -c <"$1" | tail -c 8 | head -c 4 | od -An -tu1 | awk '{ printf "%02x%02x%02x%02x\n", $4, $3, $2, $1 }'; }
	printf 'TNS 1\nname model\ndtype u8\nshape %d\nencoding raw\nlength %d\ncrc32 %s\nattr.records 0\n' \
		"$len" "$len" "$(crc "$spec")" >.header
	end="end $(crc .header)"
	hl=$(( $(wc -c <.header) + ${#end} + 1 ))
	cat .header
	printf '%s%*s\n' "$end" $(( (64 - hl % 64) % 64 )) ""
	cat "$spec"
	head -c $(( (64 - len % 64) % 64 )) /dev/zero
}

# four examples of 8 values and their labels
npy x.npy '<f4' '4, 8' "$(awk 'BEGIN { for (i = 0; i < 32; i++) printf "\\000\\000\\200\\077" }')" &&
npy y.npy '<i4' '4,' '\000\000\000\000\001\000\000\000\000\000\000\000\001\000\000\000' &&
tns-import -q -n images x.npy >x.tns && tns-import -q -n labels y.npy >y.tns && cat x.tns y.tns >data.tns

test_expect_success 'a 26-byte spec of 2^32 weights is refused, not allocated' '
	printf "input 16777216\nlinear 256\n" >big.spec &&
	test_error 1 snet-infer -m big.spec data.tns 2>err && grep -q "linear2: parameter .w.* too large" err &&
	test_error 1 snet-train -m big.spec -o out.tns data.tns 2>err && grep -q "too large" err &&
	test ! -e out.tns &&
	model_record big.spec >big.tns &&
	tns-info big.tns >info 2>err && grep -q "model.*too large" err
'

test_expect_success 'a model over the total parameter cap is refused' '
	{ echo "input 4096"; for i in 1 2 3 4 5; do echo "linear 65536"; echo "linear 4096"; done; } >many.spec &&
	test_error 1 snet-infer -m many.spec data.tns 2>err && grep -q "more than the limit" err
'

test_expect_success 'tns-info counts parameters from shapes alone' '
	printf "input 8192\nlinear 16384\nlinear 10\n" >mid.spec &&
	model_record mid.spec >mid.tns &&
	tns-info mid.tns >info && grep -q "params=134397962" info
'

test_expect_success 'window geometry that overflows int is refused with one line' '
	for line in "pool max k=2147483647 pad=1073741823" "pool avg k=2147483647 stride=2147483647" \
		"conv 4 k=2147483647 pad=2147483646" "conv 65536 k=4096 pad=2047" \
		"sim l1 4 k=3 pad=1073741823" "sim l2 4 kh=2147483647 kw=1 pad=1073741823" \
		"mex 2 k=2 pad=1073741823" "mex 2 k=1 offsets=unshared periodc=2147483647" \
		"nsm 4 k=3 stride=2147483647" "resblock 4 stride=2147483647"; do
		printf "input 3 8 8\n%s\n" "$line" >g.spec &&
		test_error 1 snet-infer -m g.spec data.tns 2>err && grep -q "g.spec:2:1: ${line%% *}: " err &&
		model_record g.spec >g.tns && tns-info g.tns >/dev/null 2>err &&
		grep -q "does not build: model:2:1: ${line%% *}: " err || return 1
	done
'

test_done
