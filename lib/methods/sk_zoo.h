/* sk_zoo.h: model zoos (models concatenated in one stream, each with its
 * attributes): reading them and selecting models (lib/methods/zoo.c), the
 * hidden-unit permutations that leave a network's function unchanged, the
 * zoo generator (hyperparameter sampler, architectures, one run:
 * lib/methods/zoogen.c), and evaluating property predictors: Kendall's tau-b,
 * Spearman, R^2, RMSE, tables, rankings, nearest models (lib/methods/zooeval.c).
 *
 * A zoo model is read by the model reader (sk_model_read, sk_model.h: the
 * same rules as every program that loads a model; optimiser state is
 * skipped), then kept as a flat vector of every parameter (buffers too) in
 * stream order.  The parameterised layers are the model's affine layers, as
 * its spec's layers say (sk_layer_affine: conv, linear): a weight record
 * (ndim 4: conv, out x in x kh x kw; ndim 2: dense, out x in) with an
 * optional bias (out).  Other parameters are kept in the flat vector only.
 */
#ifndef SK_ZOO_H
#define SK_ZOO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sk_layer.h"
#include "sk_model.h"
#include "sk_stream.h"

typedef struct sk_zoo_layer {
	char name[SK_NAME_MAX];
	int conv;              /* 1: conv, 0: dense */
	int out, in, kh, kw;
	size_t w, b;           /* offsets into the model's flat vector; b = (size_t)-1 when absent */
} sk_zoo_layer;

typedef struct sk_zoo_model {
	int nlayers;
	sk_zoo_layer *layers;
	float *flat;           /* every parameter, in stream order */
	size_t nflat;
	sk_attrs attrs;        /* the model record's attributes */
	char *spec;            /* the spec text */
} sk_zoo_model;

typedef struct sk_zoo {
	int n, cap;
	sk_zoo_model *m;
	size_t copied;         /* values copied into flat vectors while reading (each once) */
} sk_zoo;

#define SK_ZOO_NOB ((size_t)-1)

void sk_zoo_init(sk_zoo *z);
/* Append every model of a stream ("-" = stdin) to z.  A model whose spec
 * does not build, whose records lack a weight its spec declares, or without
 * a parameterised layer is an error naming the record. */
int sk_zoo_read(const char *path, sk_zoo *z);
void sk_zoo_free(sk_zoo *z);
void sk_zoo_model_free(sk_zoo_model *m);
/* A deep copy (layers, parameters; attributes too when with_attrs). */
int sk_zoo_model_copy(sk_zoo_model *dst, const sk_zoo_model *src, int with_attrs);
/* Every stream of paths[0..n) (none: stdin) into z (initialised here). */
int sk_zoo_read_all(sk_zoo *z, char **paths, int n);
/* One numeric attribute of the models idx[0..n) (idx NULL: models 0..n-1)
 * into out[n]; an error names the first model without it or with a value
 * that is not a number in [lo, hi]. */
int sk_zoo_attr(const sk_zoo *z, const int *idx, int n, const char *key, double lo, double hi, double *out);

/* ---- selecting models (--where, --split) ----
 * A model is kept when every KEY=VALUE of `where` holds for its attributes
 * and it lies in the part asked for.  Parts split the runs (attribute `by`,
 * "run" by default: the checkpoints of one run), never a run: a run is in
 * the test part when a uniform draw keyed on (seed, its name) is below
 * test_frac; of the others, those whose second draw is below val_frac form
 * the val part, the rest the train part.  A run's side does not depend on
 * the other models, so it is stable under any filtering. */
#define SK_ZOO_WHERE_MAX 8
typedef struct sk_zoo_select {
	const char *where[SK_ZOO_WHERE_MAX];
	int nwhere;
	const char *part;      /* "all" (default), "train", "val" or "test" */
	double test_frac;      /* default 0.5 */
	double val_frac;       /* default 0 */
	uint64_t seed;         /* default 0 */
	const char *by;        /* default "run" */
} sk_zoo_select;

void sk_zoo_select_defaults(sk_zoo_select *s);
/* The index of a part name (0 all, 1 train, 2 val, 3 test), or -1 with an error. */
int sk_zoo_select_part(const char *part);
/* Add a KEY=VALUE condition (kept by reference); -1 with an error when it
 * has no '=' or there are too many. */
int sk_zoo_select_where(sk_zoo_select *s, const char *kv);
/* Indices of the selected models of z (malloc'ed), *n their count; NULL
 * with an error when none is left. */
int *sk_zoo_select_models(const sk_zoo *z, const sk_zoo_select *s, int *n);

/* From/to a built sequence (its parameters in walk order). */
int sk_zoo_model_from_seq(sk_seq *q, sk_zoo_model *m);
int sk_zoo_model_to_seq(const sk_zoo_model *m, sk_seq *q);

/* Permute the hidden units of m in place with permutations drawn from
 * (seed, index): the output units (kernels and biases) of every
 * parameterised layer but the last, and the matching inputs of the next
 * layer (blocks of in/out inputs when the next layer sees a flattened C x H x
 * W map).  The network's function is unchanged for chains of conv and dense
 * layers with element-wise activations, pooling and global pooling between
 * them.  Returns -1 when the layers do not chain (in of the next layer not a
 * multiple of out). */
int sk_zoo_permute(sk_zoo_model *m, uint64_t seed, uint64_t index);

/* ---- the zoo generator (lib/methods/zoogen.c) ----
 * A run of a zoo, at the Small CNN Zoo protocol (PAPERS.md 5.7, 5.10):
 * hyperparameters drawn from the run seed, an architecture read from its
 * spec file (share/models), training by the training engine (sk_trainer)
 * with the drawn recipe on the run's fraction of the training set (batch
 * 512, an epoch's last partial batch dropped), and one member (the model
 * with its hyperparameters and train/test metrics as attributes) per
 * checkpoint epoch.  A run ends completed or diverged (a non-finite loss,
 * or parameters no longer finite at a checkpoint: the members kept before
 * are marked so); any other error fails it. */
typedef struct sk_zoo_hparams {
	const char *activation;   /* relu, tanh */
	const char *init;         /* he, xavier, normal */
	double init_std;          /* the normal initialiser's std (drawn for every run, as in the zoo) */
	const char *optimizer;    /* sgd (no momentum), adam, rmsprop */
	double lr, l2, dropout;   /* l2: the coefficient of sum(w^2) in the loss (Keras' l2reg) */
	double train_fraction;    /* of the training examples used */
} sk_zoo_hparams;

/* The hyperparameters of run `seed`: activation relu or tanh, initialiser
 * he, xavier or normal, init_std log-uniform in [1e-3, 0.5], optimizer sgd,
 * adam or rmsprop, learning rate log-uniform in [5e-4, 5e-2], L2
 * log-uniform in [1e-8, 1e-2], dropout uniform in [0, 0.7], train fraction
 * 0.1, 0.25, 0.5 or 1 (each choice uniform). */
void sk_zoo_draw(uint64_t seed, sk_zoo_hparams *h);
/* Where the architecture NAME's spec file is: NAME itself when it holds a
 * '/' or ends in ".spec", else NAME.spec in the directory $SIMKIT_MODELS,
 * then in the installed models directory; the path into path (n bytes) and
 * into label (ln bytes) the name members record: the file's base name
 * without ".spec".  -1 with an error saying where it looked. */
int sk_zoo_arch_path(const char *name, char *path, size_t n, char *label, size_t ln);
/* The spec of a run (malloc'ed) from the architecture `arch` (a flat list
 * of layers whose last layer is affine): a comment naming `label`, the
 * run's recipe as a `train` line (the drawn optimizer and learning rate,
 * weight decay 2*l2, batch, epochs, a constant rate), then the
 * architecture's layers with every relu or tanh replaced by the drawn
 * activation followed by a dropout of the drawn rate (its own dropout
 * layers are left out), the drawn initialiser on every affine layer (conv,
 * linear) and nclasses outputs on the last one. */
char *sk_zoo_spec(const sk_model *arch, const char *label, const sk_zoo_hparams *h, int batch, int epochs,
                  int nclasses);

#define SK_ZOO_CHECK_MAX 64
typedef struct sk_zoo_run_config {
	const char *arch;         /* name or spec file (sk_zoo_arch_path; default "zoo-cnn") */
	uint64_t seed;            /* draws every hyperparameter (default 1) */
	int check[SK_ZOO_CHECK_MAX], ncheck;  /* increasing epochs kept (default 0,1,2,3,6,12,18; 0 = init) */
	int batch;                /* default 512 */
	int micro_batch;          /* sk_train_config's: > 0, forward and backward in pieces this large
	                             (attribute micro_batch; default 64; 0: whole batches) */
	int64_t train_examples, test_examples;  /* use the first N only (0: all) */
	int64_t eval_train;       /* train metrics on the first N examples kept (default 2000) */
	const char *dataset;      /* attribute `dataset` */
	const char *command;      /* attribute `command` */
} sk_zoo_run_config;

/* Where a run's wall time went, in seconds: reading the data and building
 * the model, training (evaluation excluded), evaluating the members, and
 * writing and committing them. */
enum { SK_ZOO_T_LOAD, SK_ZOO_T_TRAIN, SK_ZOO_T_EVAL, SK_ZOO_T_WRITE, SK_ZOO_T_N };

typedef struct sk_zoo_run_result {
	sk_zoo_hparams h;
	char arch[256];           /* the architecture's name (attribute `arch`) */
	int members;              /* kept */
	int diverged;             /* 1 when the run diverged */
	int diverged_epoch;       /* the epoch (1-based) in which it did */
	int64_t diverged_step;    /* the step whose loss was not finite, or the last before the checkpoint whose
	                             parameters were not */
	char why[512];            /* what happened when diverged */
	double seconds[SK_ZOO_T_N];
	int64_t train_examples;   /* the run's fraction of the training set */
} sk_zoo_run_result;

typedef struct sk_zoo_run sk_zoo_run;

void sk_zoo_run_defaults(sk_zoo_run_config *c);
/* Set the checkpoint epochs from "E1,E2,..." (increasing, 0..100000). */
int sk_zoo_run_checkpoints(sk_zoo_run_config *c, const char *list);
/* Read the data (labelled, images the architecture takes; the number of
 * classes is the largest label + 1, or more when the images' `classes`
 * attribute names more), draw the hyperparameters and build the model. */
sk_zoo_run *sk_zoo_run_new(const sk_zoo_run_config *c, const char *train, const char *test);
/* Train, keeping the members in memory; 0 when the run completed or
 * diverged (see res), -1 when it failed. */
int sk_zoo_run_train(sk_zoo_run *z, sk_zoo_run_result *res);
/* Write the members to `of` (their parameter records deflated at level, 0
 * = raw), each marked diverged=0 or diverged=1 with diverged_epoch and
 * diverged_step, and commit it; on an error `of` is aborted (nothing is
 * left).  `of` is freed either way; res->seconds[SK_ZOO_T_WRITE] is set. */
int sk_zoo_run_commit(sk_zoo_run *z, sk_ofile *of, int level, sk_zoo_run_result *res);
void sk_zoo_run_free(sk_zoo_run *z);

/* ---- evaluating predictions (lib/methods/zooeval.c) ----
 * A prediction file (zoo-encode predict or encode) holds records `pred`
 * (n, f32), `truth` (n), `codes` (n x code size) and `ids` (n, i32: the
 * models' positions in their zoo; 0..n-1 when absent); at least pred or
 * codes. */
typedef struct sk_zoo_pred {
	char name[256];           /* the file */
	int n, cs, nids;
	float *pred, *truth, *codes;
	int32_t *ids;
	sk_attrs attrs;           /* of the pred record: encoder, seed, train_zoo, test_zoo, ... */
	double m[4];              /* tau, spearman, r2, rmse of pred against truth (NaN without them) */
} sk_zoo_pred;

int sk_zoo_pred_read(const char *path, sk_zoo_pred *p);
/* Records codes, pred and truth (those not NULL) and ids, each with p->attrs,
 * deflated at level (0 = raw). */
int sk_zoo_pred_write(FILE *f, const sk_zoo_pred *p, int level);
void sk_zoo_pred_free(sk_zoo_pred *p);
/* The index in m[] of "tau", "spearman", "r2" or "rmse", or -1 with an error. */
int sk_zoo_metric_parse(const char *name);
/* Written to f as text tables (level < 0), or as records deflated at level:
 * metrics: one line (record `metrics`: n, tau, spearman, r2, rmse) per file;
 * table: rows = distinct values of attribute `rows`, columns = distinct
 *   train_zoo->test_zoo, cells = mean, std and count of metric m over the
 *   files (record `table`, rows x cols x 3);
 * rank: each file's models by prediction, largest first, with their true
 *   rank (record `ranking` per file, top 0 = all);
 * nearest: the k nearest models of each model (or of the model with id
 *   `query`) by Euclidean distance of the codes (record `nearest` per
 *   model). */
int sk_zoo_compare_metrics(FILE *f, const sk_zoo_pred *p, int n, int level);
int sk_zoo_compare_table(FILE *f, const sk_zoo_pred *p, int n, const char *rows, int m, int level);
int sk_zoo_compare_rank(FILE *f, const sk_zoo_pred *p, int n, int top, int level);
int sk_zoo_compare_nearest(FILE *f, const sk_zoo_pred *p, int n, int k, const char *query, int level);

/* ---- metrics (n >= 2; NaN when undefined, e.g. a constant vector) ---- */

/* Kendall's tau-b: (nc - nd) / sqrt((n0 - n1)(n0 - n2)), ties handled. */
double sk_kendall_tau(const double *x, const double *y, size_t n);
/* Spearman's rho: Pearson correlation of average ranks. */
double sk_spearman(const double *x, const double *y, size_t n);
double sk_pearson(const double *x, const double *y, size_t n);
/* Coefficient of determination of predictions p for truth t: 1 - SSres/SStot. */
double sk_r2(const double *t, const double *p, size_t n);
double sk_rmse(const double *t, const double *p, size_t n);
/* Average ranks (1-based; ties share the mean rank) into r. */
int sk_ranks(const double *x, size_t n, double *r);

#endif
