#!/bin/sh
# scripts/make-zoo -j 2 killed half way (SIGKILL to the whole build: make,
# its jobs and the runs in flight) leaves only complete runs and no zoo; the
# same command then trains only the missing runs, and every run and the zoo
# equal those of a build never interrupted, byte for byte.  Other run
# options on a resumed build are refused.
. "$SK_SRCDIR/tests/lib.sh"
command -v setsid >/dev/null 2>&1 || skip_all 'no setsid (util-linux)'
synth_data 500 >all.tns || exit 1
tns-select -q --range 0:400 all.tns >train.tns && tns-select -q --range 400:500 all.tns >test.tns || exit 1
rm -f all.tns
MZ=$SK_SRCDIR/scripts/make-zoo
ARGS="-n 8 -j 2 -C 0,1,2 -b 64 -D ../train.tns -T ../test.tns -o z.tns"

# The runs' program (ZOO_ENCODE): logs each seed it is asked for; the run of
# seed $KILL_AT kills the whole build instead (its process group).
cat >ze <<'EOF'
#!/bin/sh
seed= prev=
for a in "$@"; do
	[ "$prev" = --seed ] && seed=$a
	prev=$a
done
echo "$seed" >>"$ZE_LOG"
if [ "$seed" = "${KILL_AT:-}" ]; then
	kill -9 0
	sleep 10
fi
exec zoo-encode "$@"
EOF
chmod +x ze
ZOO_ENCODE=$PWD/ze
export ZOO_ENCODE

test_expect_success 'a build never interrupted' '
	mkdir a && (cd a && ZE_LOG=$PWD/log "$MZ" $ARGS 2>err) &&
	test "$(sort -n a/log | tr "\n" " ")" = "1 2 3 4 5 6 7 8 " &&
	test "$(tns-info a/z.tns | awk "\$2 == \"model\"" | wc -l)" = 24
'

test_expect_success 'killed half way: complete runs only (the same bytes as uninterrupted), no zoo, no litter' '
	mkdir b &&
	(cd b && ZE_LOG=$PWD/log1 KILL_AT=5 setsid -w "$MZ" $ARGS >out 2>err; test $? -ne 0) &&
	test ! -e b/z.tns && test ! -e b/z.tns.tmp &&
	ls -A b/z.tns.d >files &&
	! grep -v "^run-[0-9]*\.tns$\|^run-[0-9]*\.prof$\|^args$" files &&
	sed -n "s/^run-\([0-9]*\)\.tns$/\1/p" files | sort >done &&
	test "$(wc -l <done)" -ge 3 && test "$(wc -l <done)" -le 6 &&
	for s in $(cat done); do cmp b/z.tns.d/run-$s.tns a/z.tns.d/run-$s.tns || exit 1; done
'

test_expect_success 'the same command trains only the missing runs; every run and the zoo as uninterrupted' '
	(cd b && ZE_LOG=$PWD/log2 "$MZ" $ARGS 2>err2) &&
	seq 1 8 | sort >all && comm -23 all done >missing &&
	sort b/log2 >ran && test_cmp missing ran &&
	for s in 1 2 3 4 5 6 7 8; do cmp b/z.tns.d/run-$s.tns a/z.tns.d/run-$s.tns || exit 1; done &&
	cmp b/z.tns a/z.tns &&
	grep -q "make-zoo: z.tns: 24 members from 8 runs" b/err2 &&
	grep -q "make-zoo: z.tns: seconds per run (mean of [0-9]*): [0-9.]* loading, [0-9.]* training" b/err2 &&
	grep -q "make-zoo: z.tns: test_acc of the runs. last members: min 0\.[0-9]*, q1 .* (8); of all members: .* (24)$" \
		b/err2 &&
	test ! -e b/z.tns.d/models.tmp && test ! -e b/z.tns.d/accs.tmp
'

test_expect_success 'a resumed build with other run options is refused' '
	(cd b && test_must_fail "$MZ" -n 8 -j 2 -C 0,1 -b 64 -D ../train.tns -T ../test.tns -o z.tns 2>err3) &&
	grep -q "^make-zoo: z.tns.d was built with other options" b/err3
'

test_done
