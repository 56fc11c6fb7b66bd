/* sk_train.h: the training loop as a library: data-parallel replicas on
 * persistent threads, the epoch loop, validation, checkpoints and resume.
 *
 * Threads (one threading layer, coarse: the thread pool of sk_pool.h, with
 * denormals flushed to zero in every worker): each of T workers owns a replica of
 * the model's sequence whose parameter values are the master's (p->w shared,
 * p->g private).  A batch is cut into T contiguous shares; every worker
 * gathers, augments, runs forward, loss and backward on its share; then the
 * main thread sums the replica gradients into the master's in a fixed order
 * and steps the optimiser.  Results therefore depend on the seed and T only.
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

/* ---- augmentation (lib/augment.c) ---- */

/* Random crop with zero padding `pad` (shift by -pad..pad in both axes) and a
 * horizontal flip with probability 1/2 when `flip`, decided by a draw keyed
 * on (seed, epoch, example); x is c*h*w floats, transformed in place using
 * tmp (c*h*w floats). */
void sk_augment(float *x, int c, int h, int w, int pad, int flip, uint64_t seed, int64_t epoch, int64_t example,
                float *tmp);

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
	double lr;              /* at the last step of the epoch */
	double images_per_s, seconds;  /* this epoch; seconds since start */
	int64_t step;           /* global steps done */
} sk_epoch_stats;

typedef struct sk_train_config {
	int epochs;             /* default 10 */
	int batch;              /* default 64 */
	int threads;            /* default 1 */
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
	/* callbacks (optional) */
	void (*on_step)(int epoch, int64_t step_in_epoch, int64_t steps_per_epoch, void *arg);
	void (*on_epoch)(const sk_epoch_stats *s, void *arg);
	void *arg;
} sk_train_config;

void sk_train_defaults(sk_train_config *c);

/* ---- recipes (lib/recipe.c) ----
 * A model's training defaults: the keys of sk_spec_recipe_keys (snet-train's
 * long options that shape training) with their values as text, from a spec's
 * `train` lines, from the command line or from a checkpoint's `recipe`
 * attribute.  Values are checked when set; apply() turns them into a
 * configuration, optimizer first (it resets momentum and decay to its
 * defaults), then the others; an unset lr is the optimizer's default. */
#define SK_RECIPE_KEYS 32
typedef struct sk_recipe {
	char *val[SK_RECIPE_KEYS];   /* by index in sk_spec_recipe_keys; NULL = unset */
} sk_recipe;

/* What a recipe sets beyond sk_train_config. */
typedef struct sk_recipe_extras {
	char unsup[32];   /* --init-unsupervised method ("" = none) */
	int unsup_n;      /* --init-examples (default 4000) */
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
/* Final metrics of the last finished epoch (and best validation accuracy). */
const sk_epoch_stats *sk_trainer_last(const sk_trainer *t);
double sk_trainer_best_valid(const sk_trainer *t);
/* The command line to record: the original run's after a resume. */
const char *sk_trainer_command(const sk_trainer *t);
const char *sk_trainer_last_checkpoint(const sk_trainer *t);  /* NULL if none written */
/* After run() returned -1: the global step (1-based) whose loss was not
 * finite, or 0 when the error was another one. */
int64_t sk_trainer_diverged(const sk_trainer *t);

/* Unsupervised initialisation (snet-train --init-unsupervised): for each
 * top-level layer with ops->init_data, in order, forward up to n examples of
 * d (a seeded sample) through the layers before it and hand that layer its
 * input.  Returns the number of layers initialised or -1. */
int sk_train_init_unsupervised(sk_model *m, const sk_dataset *d, const char *method, int n, uint64_t seed);

#endif
