# zoo.mk: build a model zoo with make -j: one target per run, each written
# atomically by `zoo-encode run`, so an interrupted build (or a killed Slurm
# task) reruns only the missing runs, never duplicating or losing a model.
# A finished run is never deleted by make on an interrupt (.PRECIOUS).  The
# zoo is the runs concatenated in seed order; each run's profile (seconds
# of loading, training, evaluation, writing) is DIR/run-SEED.prof.  Driven
# by scripts/make-zoo; usable directly:
#   make -j2 -f scripts/zoo.mk DATA=train.tns TEST=test.tns OUT=zoo.tns RUNS=100
# Variables: DATA TEST OUT (required), RUNS FIRST DIR ZOO_ENCODE RUNARGS.
ZOO_ENCODE ?= zoo-encode
RUNS ?= 10
FIRST ?= 1
DIR ?= $(OUT).d
RUNARGS ?=
LAST := $(shell expr $(FIRST) + $(RUNS) - 1)
SEEDS := $(shell seq $(FIRST) $(LAST))
RUNFILES := $(SEEDS:%=$(DIR)/run-%.tns)

.PHONY: all runs
.PRECIOUS: $(DIR)/run-%.tns
all: $(OUT)
runs: $(RUNFILES)

$(OUT): $(RUNFILES)
	cat $(RUNFILES) > $@.tmp && mv $@.tmp $@

$(DIR)/run-%.tns: | $(DIR)
	$(ZOO_ENCODE) run -q --seed $* -D $(DATA) -T $(TEST) $(RUNARGS) --profile $(DIR)/run-$*.prof -o $@

$(DIR):
	mkdir -p $@
