#!/bin/sh
# scripts/zoo.sbatch run locally as Slurm would: array tasks (the task id in
# SLURM_ARRAY_TASK_ID), then the dependent merge job.  A task killed half way
# and rerun (--requeue) neither duplicates nor loses a model, and the merged
# zoo equals one built by make-zoo in one go.
. "$SK_SRCDIR/tests/lib.sh"
synth_data 400 >all.tns || exit 1
tns-select -q --range 0:300 all.tns >train.tns && tns-select -q --range 300:400 all.tns >test.tns || exit 1
rm -f all.tns
export DATA=$PWD/train.tns TEST=$PWD/test.tns OUT=$PWD/arr.zoo TASKS=2 RUNS_PER_TASK=2 RUNARGS="-C 0,1"
export SIMKIT=$SK_SRCDIR SLURM_SUBMIT_DIR=$SK_SRCDIR
SB=$SK_SRCDIR/scripts/zoo.sbatch

test_expect_success 'array tasks write their runs; the merge job concatenates them in seed order' '
	SLURM_ARRAY_TASK_ID=1 bash "$SB" >task1.log 2>&1 &&
	SLURM_ARRAY_TASK_ID=0 bash "$SB" >task0.log 2>&1 &&
	ls arr.zoo.d/run-*.tns >runs && test $(wc -l <runs) -eq 4 &&
	ls arr.zoo.d/run-*.prof >profs && test $(wc -l <profs) -eq 4 &&
	MERGE=1 bash "$SB" >merge.log 2>&1 &&
	test $(tns-info arr.zoo | awk "\$2 == \"model\"" | wc -l) -eq 8 &&
	cat arr.zoo.d/run-1.tns arr.zoo.d/run-2.tns arr.zoo.d/run-3.tns arr.zoo.d/run-4.tns | cmp - arr.zoo
'

test_expect_success 'a requeued task redoes only its missing run: same zoo, no duplicates' '
	cp arr.zoo first.zoo &&
	rm arr.zoo.d/run-3.tns arr.zoo &&
	touch -d "2000-01-01" arr.zoo.d/run-4.tns &&
	SLURM_ARRAY_TASK_ID=1 bash "$SB" >requeue.log 2>&1 &&
	test "$(stat -c %Y arr.zoo.d/run-4.tns)" = "$(date -d 2000-01-01 +%s)" &&
	MERGE=1 bash "$SB" >merge2.log 2>&1 &&
	cmp first.zoo arr.zoo
'

test_expect_success 'the same models from make-zoo in one go (parameters bit for bit)' '
	"$SK_SRCDIR/scripts/make-zoo" -n 4 -j 2 -C 0,1 -D train.tns -T test.tns -o mk.zoo >mk.log 2>&1 &&
	tns-info mk.zoo | awk "\$2 != \"model\" {print \$2, \$NF}" >a.txt &&
	tns-info arr.zoo | awk "\$2 != \"model\" {print \$2, \$NF}" >b.txt &&
	test -s a.txt && test_cmp a.txt b.txt
'
test_done
