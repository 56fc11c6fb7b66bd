/* sk_train.h: the training loop as a library: data-parallel replicas on
 * persistent threads, the epoch loop, validation, checkpoints and resume.
 *
 * Threads (one threading layer, coarse: the thread pool of sk_pool.h, with
 * denormals flushed to zero in every worker): each of T workers owns a replica of
 * the model's sequence whose parameter values are the master's (p->w shared,
 * p->g private).  A batch is cut into T contiguous shares; every worker
 * gathers, augments, runs forward, loss and backward on its share; then the
 * main thread sums the replica gradients into the master's in a fixed order
 * and steps the optimiser.  Results therefore depend on the seed and T only
 * (and on micro_batch, when set: a share then runs in micro-batches).
 * OpenBLAS is set to one thread so the budget is not oversubscribed.  Batch
 * normalisation statistics are per share; running statistics are updated by
 * replica 0 only.  Nothing is allocated inside the loop.
 *
 * Randomness: the shuffle of epoch e is a permutation from (seed, e); the
 * augmentation of an example from (seed, e, example index); dropout from
 * (seed, step, position in batch).  A checkpoint therefore needs only the
 * parameters, the optimiser state and (epoch, step) to continue bitwise.
 */
#ifndef SK_TRAIN_H
#define SK_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "sk_data.h"
#include "sk_model.h"
#include "sk_optim.h"

/* ---- losses used by the loop ---- */

typedef enum sk_loss_kind { SK_LOSS_XENT = 0, SK_LOSS_MSE } sk_loss_kind;

/* ---- a team of replicas on the thread pool ---- */

typedef struct sk_team sk_team;

/* `threads` replicas of m's sequence (replica 0 is m->seq itself), each set
 * up for batches of up to ceil(max_batch / threads) examples. */
sk_team *sk_team_new(sk_model *m, int threads, int max_batch);
void sk_team_free(sk_team *t);
int sk_team_threads(const sk_team *t);
/* Forward n <= max_batch examples (x: n * input size floats) in evaluation
 * mode and copy the output of layer `layer` (NULL: the model's output) into
 * out (n * that layer's per-example size floats). */
int sk_team_forward(sk_team *t, int n, const float *x, const char *layer, float *out);
/* Per-example output size of a layer (NULL: the model's), or 0 if unknown. */
size_t sk_team_layer_size(sk_team *t, const char *layer);

/* ---- the loop ---- */

typedef struct sk_epoch_stats {
	int epoch;              /* 1-based, finished */
	int epochs;
	double loss, train_acc; /* over the epoch's training batches */
	int has_valid;
	double valid_loss, valid_acc;
	int has_acc;            /* train_acc means something (not with a custom step) */
	double lr;              /* at the last step of the epoch */
	double images_per_s, seconds;  /* this epoch; seconds since start */
	int64_t step;           /* global steps done */
} sk_epoch_stats;

typedef struct sk_train_config {
	int epochs;             /* default 10 */
	int batch;              /* default 64 */
	int drop_last;          /* an epoch leaves out its last batch when it is partial and the data
	                           hold a full one (the Small CNN Zoo's batching; default 0) */
	int threads;            /* default 1 */
	/* > 0: each worker runs its share of a training batch through forward,
	 * loss and backward in micro-batches of at most this many examples,
	 * their parameter gradients summed (the layers accumulate): the same
	 * step up to rounding, with the activations of a micro-batch in cache
	 * instead of the share's in memory.  The bits depend on it (checkpoints
	 * record it, resume requires the same).  Refused for models with
	 * batch-statistics layers (bn).  Default 0: whole shares. */
	int micro_batch;
	uint64_t seed;
	sk_optim_config opt;
	sk_schedule sched;
	sk_loss_kind loss;
	int crop_pad, flip;     /* augmentation (images only) */
	const char *checkpoint; /* path, or NULL for none */
	int64_t checkpoint_every;  /* steps (0: each epoch only) */
	int64_t stop_after;     /* testing: act as if interrupted after this many steps of this run (0: never) */
	const volatile sig_atomic_t *stop;  /* set by a signal handler: stop after the step */
	/* Data parallelism over processes (snet-train --distributed, MPI): the
	 * global batch is cut into nshards * threads shares; this process runs
	 * shares shard*threads .. shard*threads + threads-1.  After the local
	 * gradient sum, allreduce(buf, n, arg) must sum buf over all processes
	 * (in a fixed order for bitwise results).  With one process per share
	 * the result equals a single process with nshards * threads threads.
	 * Defaults: nshards 1, shard 0, allreduce NULL. */
	int nshards, shard;
	int (*allreduce)(float *buf, size_t n, void *arg);
	void *allreduce_arg;
	int allow_reshard;      /* --resume may continue with a different number of shares */
	const char *command;    /* stored in checkpoints and kept across resume */
	/* Provenance: every hyperparameter of the run as option=text (the front
	 * end's option names, canonical values; see sk_run_resolve), recorded in
	 * checkpoints as train_state attributes "hp.OPTION" (NULL: none). */
	const sk_attrs *hparams;
	/* A custom step, for learners that update the parameters by their own
	 * rules (nsm-pretrain's NSM and k-means): when set, the loop calls it for
	 * each batch instead of the forward, loss, backward and optimiser step;
	 * the data need no labels, the model no class scores, and there is no
	 * optimiser state, no validation and one process.  It gets the training
	 * set, the batch's example indices, the global step about to run
	 * (0-based) and the rate; it returns 0 with the batch's summed loss in
	 * *loss, or -1 with an error (the loop stops, naming the step and the
	 * last good checkpoint).  Schedules, checkpoints, resume, stop and the
	 * callbacks below work as for the built-in step. */
	int (*step)(void *arg, const sk_dataset *d, const int64_t *idx, int n, int64_t gstep, double lr, double *loss);
	/* The custom step's own state in checkpoints (each optional):
	 * state_write writes state_nrecords() records after the parameters;
	 * on resume state_read is offered every record that is not the trainer's
	 * (1 consumed, 0 not its own, -1 error: resume fails with it). */
	int (*state_nrecords)(void *arg);
	int (*state_write)(FILE *f, void *arg);
	int (*state_read)(sk_reader *r, const sk_header *h, void *arg);
	void *step_arg;
	/* callbacks (optional) */
	void (*on_step)(int epoch, int64_t step_in_epoch, int64_t steps_per_epoch, void *arg);
	void (*on_epoch)(const sk_epoch_stats *s, void *arg);
	void *arg;
} sk_train_config;

void sk_train_defaults(sk_train_config *c);

/* ---- recipes (lib/nn/recipe.c) ----
 * A model's training defaults: the keys of sk_spec_recipe_keys (snet-train's
 * long options that shape training) with their values as text, from a spec's
 * `train` lines, from the command line or from a checkpoint's `recipe`
 * attribute.  Values are checked when set; apply() turns them into a
 * configuration, optimizer first (it resets momentum and decay to its
 * defaults), then the others; an unset lr is the optimizer's default.
 *
 * A recipe also holds the run keys, sk_run_keys: the options beyond a
 * model's recipe that shape a run's bits ("seed", "threads", "valid-split",
 * "freeze": layers, comma-separated, a second set adds to the first, and
 * "init", "init-layers": where the parameters were copied from).  A spec's
 * `train` lines cannot set them and sk_recipe_format leaves them out. */
#define SK_RECIPE_KEYS 32
typedef struct sk_recipe {
	char *val[SK_RECIPE_KEYS];   /* by index in sk_recipe_key(); NULL = unset */
} sk_recipe;

extern const char *const sk_run_keys[];
/* Key i: those of sk_spec_recipe_keys, then sk_run_keys; NULL past the end. */
const char *sk_recipe_key(int i);

/* What a recipe sets beyond sk_train_config.  The strings point into the
 * recipe applied. */
typedef struct sk_recipe_extras {
	char unsup[32];   /* --init-unsupervised method ("" = none) */
	int unsup_n;      /* --init-examples (default 4000) */
	double valid_split;            /* --valid-split (0: none) */
	const char *freeze;            /* --freeze: "LAYER[,LAYER...]" or NULL */
	const char *init, *init_layers;   /* --init, --init-layers, or NULL */
} sk_recipe_extras;

void sk_recipe_init(sk_recipe *r);
void sk_recipe_free(sk_recipe *r);
void sk_recipe_extras_defaults(sk_recipe_extras *x);
/* Set one key (replacing); -1 naming the value when it is bad. */
int sk_recipe_set(sk_recipe *r, const char *key, const char *val);
const char *sk_recipe_get(const sk_recipe *r, const char *key);
/* The spec's `train` lines; errors name SRC:LINE:COL. */
int sk_recipe_from_spec(sk_recipe *r, const sk_spec *s);
/* "key=value key=value ..." as sk_recipe_format writes it. */
int sk_recipe_parse(sk_recipe *r, const char *text);
/* The values set in `over` replace those of dst. */
void sk_recipe_merge(sk_recipe *dst, const sk_recipe *over);
int sk_recipe_apply(const sk_recipe *r, sk_train_config *c, sk_recipe_extras *x);
/* The effective recipe on one line, every key that matters for c (values
 * that read back exactly): what snet-train prints and records. */
char *sk_recipe_format(const sk_train_config *c, const sk_recipe_extras *x, char *buf, size_t n);

typedef struct sk_trainer sk_trainer;

/* ---- a run: options, provenance and resume (lib/recipe.c) ----
 * What a front end (snet-train) gives: the recipe and run keys of its
 * command line in `given`.  sk_run_resolve makes the configuration from the
 * model's recipe (resuming: from everything the checkpoint recorded) under
 * those values, and the run's provenance: every hyperparameter as
 * option=text in `hparams`, which checkpoints record (c->hparams).
 *
 * The provenance rule: a resumed run takes the values its checkpoint
 * recorded and refuses a given one that differs, naming it ("--resume: --lr
 * 0.1 differs from the checkpoint's 0.05").  Allowed: --epochs when the
 * schedule does not depend on it (not cosine) and it is no fewer than the
 * epochs the checkpoint has run; --threads when `reshard` (--distributed)
 * or the checkpoint's run was distributed.  Options outside the provenance
 * (log, checkpoint path and interval, quiet, force, output) may change
 * freely.  A checkpoint written with another kernel path or OpenBLAS core
 * than this machine's resumes with `warning` set: the bits will differ. */
typedef struct sk_run {
	sk_recipe given;          /* the options given (sk_recipe_set) */
	/* filled by sk_run_resolve */
	sk_recipe all;            /* the effective values; x's strings point here */
	sk_recipe_extras x;
	char recipe[1024];        /* sk_recipe_format: the model's `recipe` attribute */
	sk_attrs hparams;         /* provenance, option=text */
	char warning[512];        /* non-empty: say it before resuming */
	/* filled by sk_run_start */
	sk_dataset train, valid;
	int has_valid;
	sk_trainer *trainer;
} sk_run;

#define SK_RUN_USAGE (-2)   /* a bad combination of given options */
void sk_run_init(sk_run *r);
void sk_run_free(sk_run *r);
/* The given options that exclude each other, before anything is read: -1
 * naming them (a usage error) when --init-layers comes without --init, when
 * --valid (valid, or NULL) comes with --valid-split, or when --resume (ckpt,
 * or NULL) comes with --init or --init-unsupervised. */
int sk_run_check_given(const sk_run *r, const char *valid, const char *ckpt);
/* Resolve the run of model m (resuming from ckpt when not NULL) into c
 * (whose other fields, e.g. the default threads, are kept): 0, -1 on an
 * error of the model or checkpoint, SK_RUN_USAGE when the given options do
 * not go together. */
int sk_run_resolve(sk_run *r, const sk_model *m, const char *ckpt, int reshard, sk_train_config *c);
/* Compare a run's hyperparameters with the ones a checkpoint recorded (both
 * option=text): -1 naming the first that differs, skipping the options of
 * the NULL-terminated list `allowed` (may be NULL). */
int sk_hparams_check(const sk_attrs *now, const sk_attrs *ck, const char *const *allowed);
/* The resume rule above for any front end whose hyperparameters `now` (its
 * c->hparams) use its own option names: reads ckpt's record and refuses a
 * difference, allowing "epochs" and, when reshard or the checkpoint's run
 * was distributed, "threads"; warn (n bytes, may be NULL) gets the machine
 * warning (empty when none).  sk_run_resolve applies it to snet-train. */
int sk_run_check_resume(const sk_train_config *c, const sk_attrs *now, const char *ckpt, int reshard, char *warn,
                        size_t n);

/* Messages for the front end while starting: info (warning 0) or warning. */
typedef void (*sk_run_note_fn)(int warning, const char *msg, void *arg);
/* Start the resolved run: read the training data (path, "-" for stdin) and
 * the validation data (valid, or the recipe's valid-split); prepare m
 * (record the recipe in its attributes; unless resuming, initialise it from
 * the seed, a trained model keeping its parameters, and copy --init's;
 * --freeze; unless resuming, the unsupervised initialisation); make the
 * trainer on c; resuming, continue from ckpt and say where. */
int sk_run_start(sk_run *r, sk_model *m, const sk_train_config *c, const char *data, const char *valid,
                 const char *ckpt, sk_run_note_fn note, void *arg);
/* The attributes of the model a finished run writes (fresh: the same
 * whether or not the run was resumed). */
int sk_run_model_attrs(const sk_run *r, const sk_train_config *c, sk_attrs *a);

/* A trainer for model m (already initialised) on train (and valid, may be
 * NULL).  Checks that the data fit the model (shape, labels in range). */
sk_trainer *sk_trainer_new(sk_model *m, const sk_train_config *c, const sk_dataset *train,
                           const sk_dataset *valid);
void sk_trainer_free(sk_trainer *t);
/* Continue from a checkpoint: loads parameters, optimiser state and the
 * position; refuses (-1, naming the difference) a checkpoint whose spec,
 * data, batch, seed, threads or optimizer differ.  Fills what/epoch/step for
 * the caller's message.  The command stored in the checkpoint is kept. */
int sk_trainer_resume(sk_trainer *t, const char *path, int *epoch, int64_t *step, int64_t *gstep);
/* Run to the end: 0 done, SK_TRAIN_STOPPED when stopped by the flag or
 * stop_after (checkpoint written), -1 on error (e.g. a non-finite loss,
 * naming the step; the last good checkpoint is kept). */
#define SK_TRAIN_STOPPED 1
int sk_trainer_run(sk_trainer *t);
/* Write a checkpoint now (atomic). */
int sk_trainer_checkpoint(sk_trainer *t, const char *path);
/* The attributes of a checkpoint's model record and of its train_state
 * record (into initialised sets), without loading the parameters; -1 "not a
 * checkpoint" when it has no train_state. */
int sk_checkpoint_attrs(const char *path, sk_attrs *model, sk_attrs *state);
/* What a run's bits depend on beyond its options, recorded in checkpoints
 * as train_state "kernels" and "blas": the kernel path (sk_cpu_path) and
 * OpenBLAS's core type (openblas_get_corename; OPENBLAS_CORETYPE sets it).
 * Fills msg and returns 1 when a checkpoint's state names others. */
int sk_checkpoint_machine_differs(const sk_attrs *state, char *msg, size_t n);
/* OpenBLAS's core type as checkpoints record it ("unknown" when it does not
 * say); zoo members record it too. */
const char *sk_blas_core(void);
/* Final metrics of the last finished epoch (and best validation accuracy). */
const sk_epoch_stats *sk_trainer_last(const sk_trainer *t);
double sk_trainer_best_valid(const sk_trainer *t);
/* The command line to record: the original run's after a resume. */
const char *sk_trainer_command(const sk_trainer *t);
const char *sk_trainer_last_checkpoint(const sk_trainer *t);  /* NULL if none written */
/* After run() returned -1: the global step (1-based) whose loss was not
 * finite, or 0 when the error was another one. */
int64_t sk_trainer_diverged(const sk_trainer *t);

/* ---- what every training program does around the loop (lib/nn/train_front.c) ---- */

/* The command line to record (model attribute `command`, kept across
 * resume): argv without --resume and --stop-after-steps, which steer only
 * this invocation, so a stopped and resumed run writes the bytes of an
 * uninterrupted one.  out has room for argc + 1 pointers; returns the count
 * (out[count] = NULL). */
int sk_train_argv(int argc, char **argv, char **out);
/* The checkpoint path: ckpt when given, else OUT.ckpt, malloc'ed into *buf
 * (free it).  NULL with an error when OUT is stdout or exists and is not a
 * regular file (OUT.ckpt would be a stray file beside a device or a FIFO). */
const char *sk_train_ckpt_path(const char *out, const char *ckpt, char **buf);
/* Open the output (sk_ofile_open, after sk_ofile_install_signals) and check
 * that the checkpoint ckpt can be written, so that a run fails before a long
 * job: NULL with the output's error, or "--checkpoint: why" (the output
 * removed). */
sk_ofile *sk_train_open_output(const char *out, const char *ckpt, int force);
/* Continue t from the checkpoint ckpt (sk_trainer_resume) and say where in
 * msg (n bytes): "resuming CKPT at epoch E, step S of STEPS (global step
 * G)", the steps of an epoch of `examples` examples in batches of c->batch,
 * or "resuming CKPT: it already finished E of EPOCHS epochs; writing the
 * model only".  *gstep (may be NULL) gets the global step. */
int sk_train_resume(sk_trainer *t, const char *ckpt, const sk_train_config *c, int64_t examples, char *msg, size_t n,
                    int64_t *gstep);
/* The flag for sk_train_config.stop (0, or the signal that arrived) and
 * the handlers that set it: after sk_train_catch_signals the first SIGINT or
 * SIGTERM sets it (the loop stops after the step with a checkpoint); a
 * second gives up at once through sk_ofile's handlers (no temporary is
 * left), which it installs first. */
const volatile sig_atomic_t *sk_train_stop_flag(void);
void sk_train_catch_signals(void);
/* The per-epoch TSV log, appended to when resuming (the header only when the
 * file is empty): epoch loss train_acc valid_acc lr images_per_s seconds,
 * then the tab-separated names in `extra` ("" or NULL: none).  NULL with an
 * error when it cannot be opened. */
FILE *sk_train_log_open(const char *path, int resume, const char *extra);
/* One row: the stats (NA for a metric the run does not have) and nextra
 * values for the extra columns; flushed. */
void sk_train_log_epoch(FILE *f, const sk_epoch_stats *s, int nextra, const double *extra);

/* Unsupervised initialisation (snet-train --init-unsupervised): for each
 * top-level layer with ops->init_data, in order, forward up to n examples of
 * d (a seeded sample) through the layers before it and hand that layer its
 * input.  Returns the number of layers initialised or -1. */
int sk_train_init_unsupervised(sk_model *m, const sk_dataset *d, const char *method, int n, uint64_t seed);

#endif
