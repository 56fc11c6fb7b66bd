#!/bin/sh
# scripts/zoo-hist on a tiny synthetic zoo (seconds): the TSV holds each
# run's last member once, the histogram counts every run once, the
# quartiles and the run counts of quartiles.md agree with an independent
# computation from the members; several zoos give a row each; --by counts
# the runs per value of an attribute; the PNG is
# drawn, or skipped with a message without gnuplot;
# bad input is a one-line error that leaves nothing behind.
. "$SK_SRCDIR/tests/lib.sh"
ZH=$SK_SRCDIR/scripts/zoo-hist
synth_data 300 >all.tns || exit 1
tns-select -q --range 0:240 all.tns >train.tns && tns-select -q --range 240:300 all.tns >test.tns || exit 1
for s in 1 2 3 4 5 6; do
	zoo-encode run -q -b 16 -D train.tns -T test.tns --seed $s -C 0,1,2 -o r$s.tns || exit 1
done
cat r?.tns >small.zoo || exit 1

# run epoch test_acc of every member, from tns-info
tns-info small.zoo | awk '$2 == "model" { r = e = t = ""
	for (i = 3; i <= NF; i++) { if ($i ~ /^run=/ && r == "") r = substr($i, 5)
		if ($i ~ /^epoch=/ && e == "") e = substr($i, 7); if ($i ~ /^test_acc=/ && t == "") t = substr($i, 10) }
	print r, e, t }' >members.txt

test_expect_success 'one line per run: its last member; the histogram counts every run' '
	"$ZH" -o out --bins 10 small.zoo >table.md 2>err &&
	test "$(grep -vc "^#" out/small-acc.tsv)" = 6 &&
	awk "{ if (!(\$1 in e) || \$2 + 0 > e[\$1]) { e[\$1] = \$2 + 0; t[\$1] = \$3 } } END { for (r in t) print r, e[r], t[r] }" \
		members.txt | sort >want.txt &&
	grep -v "^#" out/small-acc.tsv | awk "{ print \$1, \$2, \$3 }" | sort >got.txt &&
	test_cmp want.txt got.txt &&
	test "$(grep -vc "^#" out/small-hist.tsv)" = 10 &&
	test "$(awk "!/^#/ { s += \$4 } END { print s }" out/small-hist.tsv)" = 6 &&
	awk "!/^#/ { i = int(\$3 * 10); if (i > 9) i = 9; c[i]++ } END { for (i = 0; i < 10; i++) print i, c[i] + 0 }" \
		out/small-acc.tsv >wanth.txt &&
	awk "!/^#/ { print \$1, \$4 }" out/small-hist.tsv >goth.txt && test_cmp wanth.txt goth.txt &&
	test_cmp table.md out/quartiles.md
'

test_expect_success 'quartiles.md: runs, members, quartiles of the last and of all members' '
	row=$(grep "^| small |" out/quartiles.md | sed "s/ |\$//") &&
	echo "$row" | awk -F " [|] " "{ exit !(\$2 == 6 && \$3 == 18 && \$4 == 0) }" &&
	med=$(awk "!/^#/ { print \$3 }" out/small-acc.tsv | sort -g | awk "{ v[NR] = \$1 } END { printf \"%.3f\", v[int((NR - 1) / 2) + 1] }") &&
	mx=$(awk "{ print \$3 }" members.txt | sort -g | tail -n 1 | awk "{ printf \"%.3f\", \$1 }") &&
	echo "$row" | awk -F " [|] " -v m="$med" -v x="$mx" "{ exit !(\$8 == m && \$15 == x) }" &&
	low=$(awk "!/^#/ && \$3 + 0 <= 0.5" out/small-acc.tsv | wc -l) &&
	"$ZH" -o out2 --chance 0.5 small.zoo >/dev/null 2>&1 &&
	grep "^| small |" out2/quartiles.md | awk -F " [|] " -v l="$low" "{ exit !(\$5 == l) }"
'

if command -v gnuplot >/dev/null 2>&1; then
	test_expect_success 'the histogram is a PNG' '
		test "$(head -c 4 out/small-hist.png | od -An -c | tr -d " ")" = "211PNG"
	'
else
	test_expect_success 'without gnuplot: a message, no PNG, the tables all the same' '
		test ! -e out/small-hist.png && grep -q "^zoo-hist: gnuplot not found" err
	'
fi

test_expect_success 'two zoos: a row, a TSV and a PNG each; $GNUPLOT absent: a message, the tables, no PNG' '
	cat r1.tns r2.tns >two.zoo &&
	GNUPLOT=/nonexistent "$ZH" -o out3 small.zoo two.zoo >/dev/null 2>err3 &&
	test "$(grep -vc "^#" out3/two-acc.tsv)" = 2 && test -s out3/small-acc.tsv &&
	test "$(grep -c "^| small | 6 |" out3/quartiles.md)" = 1 && test "$(grep -c "^| two | 2 |" out3/quartiles.md)" = 1 &&
	test ! -e out3/two-hist.png && test ! -e out3/small-hist.png &&
	grep -q "^zoo-hist: /nonexistent not found" err3 && test -z "$(ls -A out3 | grep "^\.")"
'

test_expect_success '--by: the runs per value of each attribute (a missing one as -); bad keys refused' '
	"$ZH" -o out5 --by optimizer,activation,nosuch small.zoo >/dev/null 2>&1 &&
	test "$(sed -n 1p out5/small-acc.tsv)" = "$(printf "# run\tepoch\ttest_acc\tdiverged\toptimizer\tactivation\tnosuch")" &&
	for key in optimizer activation; do
		tns-info small.zoo | awk -v k="$key" "\$2 == \"model\" { r = v = \"\"
			for (i = 3; i <= NF; i++) { if (\$i ~ \"^run=\" && r == \"\") r = substr(\$i, 5)
				if (index(\$i, k \"=\") == 1 && v == \"\") v = substr(\$i, length(k) + 2) }
			print r, v }" | sort -u | awk "{ print \$2 }" | sort | uniq -c | awk -v k="$key" "{ print k, \$2, \$1 }" >want.$key &&
		grep "^| $key |" out5/small-by.md | awk -F " [|] " -v k="$key" "{ print k, \$2, \$3 }" >got.$key &&
		test_cmp want.$key got.$key || return 1
	done &&
	test "$(grep -c "^| nosuch | - | 6 |" out5/small-by.md)" = 1 &&
	test "$(grep "^| optimizer |" out5/small-by.md | awk -F " [|] " "{ s += \$3 } END { print s }")" = 6 &&
	test_error 2 "$ZH" -o bad --by "a b" small.zoo && test_error 2 "$ZH" -o bad --by a,,b small.zoo && test ! -e bad
'

test_expect_success 'bad input: one line naming zoo-hist, exit 2, nothing left' '
	test_error 2 "$ZH" -o bad small.zoo missing.zoo && test ! -e bad &&
	test_error 2 "$ZH" small.zoo &&
	test_error 2 "$ZH" -o bad --bins 0 small.zoo && test ! -e bad &&
	test_error 2 "$ZH" -o bad --chance 2 small.zoo && test ! -e bad &&
	test_error 2 "$ZH" -o bad --frobnicate small.zoo &&
	test_error 2 "$ZH" -o bad small.zoo ./small.zoo && test ! -e bad &&
	tns-select -q --range 0:10 train.tns >data.zoo &&
	test_error 2 "$ZH" -o bad data.zoo && test ! -e bad &&
	printf "garbage" >junk.zoo && test_error 2 "$ZH" -o bad junk.zoo && test ! -e bad &&
	mkdir keep && test_error 2 "$ZH" -o keep junk.zoo && test -d keep && test -z "$(ls -A keep)"
'

test_expect_success '--help' '
	"$ZH" --help | grep -q "^Usage: zoo-hist"
'
test_done
