#!/bin/sh
# snet-train --distributed over MPI: 2 ranks give the same model as one
# process with 2 threads (bitwise with --fixed-reduce), resume across rank
# counts, and a clear error when built without MPI.
. "$SK_SRCDIR/tests/lib.sh"

synth_data 640 >data.tns || exit 1
spec=$SK_SRCDIR/share/models/zoo-cnn.spec

if ! snet-train --help | grep -q -- --distributed; then
	skip_all "snet-train has no --distributed"
fi
if snet-train --distributed -m "$spec" -o x.tns data.tns 2>err.txt; then :; fi
if grep -q "needs a build with MPI" err.txt; then
	test_expect_success 'without MPI, --distributed is a usage error' '
		test_error 2 snet-train --distributed -m "$spec" -o x.tns data.tns
	'
	test_done
	exit $?
fi
command -v mpirun >/dev/null 2>&1 || skip_all "mpirun not installed"
MPIRUN="mpirun --allow-run-as-root --oversubscribe -np 2"
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# Open MPI's own start-up allocations are never freed: LeakSanitizer would
# report them at exit.  Everything else (ASan, UBSan) stays on.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"

# parameter records only (the model record holds the command line)
params() { tns-info "$1" | awk 'NR > 1 {print $2, $3, $4, $NF}'; }

test_expect_success '2 ranks x 1 thread = 1 process x 2 threads, bitwise (fixed reduction order)' '
	snet-train -q -m "$spec" -o one.tns --epochs 2 --threads 2 --seed 3 data.tns &&
	$MPIRUN snet-train -q --distributed --fixed-reduce -m "$spec" -o two.tns --epochs 2 --threads 1 --seed 3 data.tns &&
	params one.tns >one.txt && params two.tns >two.txt && test_cmp one.txt two.txt
'

test_expect_success 'MPI_Allreduce order: same model to float tolerance' '
	$MPIRUN snet-train -q --distributed -m "$spec" -o three.tns --epochs 1 --threads 1 --seed 3 data.tns &&
	snet-train -q -m "$spec" -o four.tns --epochs 1 --threads 2 --seed 3 data.tns &&
	tns-export -F tsv -n linear9.w three.tns >a.tsv && tns-export -F tsv -n linear9.w four.tns >b.tsv &&
	paste a.tsv b.tsv | awk "{n = NF / 2; for (i = 1; i <= n; i++) {d = \$i - \$(i + n); if (d < 0) d = -d; if (d > 1e-4) bad++}} END {exit bad > 0}"
'

test_expect_success 'only rank 0 writes the output and the checkpoint' '
	test -s two.tns && test -s two.tns.ckpt && ! ls .two.tns.* 2>/dev/null
'

test_expect_success 'a checkpoint from 2 ranks resumes on 1 process, and back' '
	$MPIRUN snet-train -q --distributed -m "$spec" -o r.tns --epochs 2 --threads 1 --stop-after-steps 5 data.tns;
	test $? -ne 0 && test -s r.tns.ckpt && ! test -e r.tns &&
	snet-train -m "$spec" -o r.tns --epochs 2 --threads 1 --resume r.tns.ckpt --stop-after-steps 3 data.tns 2>err;
	grep -q "resuming" err && test -s r.tns.ckpt &&
	$MPIRUN snet-train -q --distributed -m "$spec" -o r.tns --epochs 2 --threads 1 --resume r.tns.ckpt data.tns &&
	tns-info --check r.tns >/dev/null
'

test_expect_success '--fixed-reduce without --distributed is a usage error' '
	test_error 2 snet-train --fixed-reduce -m "$spec" -o x.tns data.tns
'
test_done
