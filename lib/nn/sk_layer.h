/* sk_layer.h: the layer interface and layer sequences (the spec language
 * they are built from: sk_spec.h).
 *
 * A layer is one file under lib/nn/layers/ that defines one `sk_layer_ops`
 * table (SK_LAYER below), and one line in lib/nn/layers/registry.c.
 * Nothing else changes when a layer is added (plus its gradient check in
 * tests/unit and its entry in man/man7/simkit.7): tools that look inside a
 * model without running it ask its layers (l->flops, the affine() hook),
 * never test their type names.
 *
 * Contract (per example shapes; the batch size n is passed to each call):
 *  - priv_size: the bytes of the layer's private state; the builder gives
 *    create() l->priv zeroed and frees it after destroy().  in_dims: when
 *    not 0, the builder refuses an input of another rank before create().
 *  - create(): read options from the spec line with sk_opt_*(), check l->in,
 *    set l->out and l->flops (forward FLOPs per example, 2 per MAC), declare
 *    parameters with sk_layer_param().  Allocate nothing large.  Options that
 *    create() never read are an error (reported by the builder).
 *  - setup(): allocate workspace for batches of up to max_batch examples.
 *    Called before the first forward (again when the batch grows); never
 *    allocate in forward or backward.  Memory from sk_layer_parts() belongs
 *    to the layer: what create() took lives as long as the layer, what
 *    setup() took until the next setup(); destroy() frees only the rest.
 *  - forward(): y = f(x) for n <= max_batch examples, x is n*in, y is n*out.
 *    y holds garbage on entry: WRITE (=) all n*out values of y.  Read only
 *    the n examples of x and write nothing beyond the n of y (buffers are
 *    sized for max_batch; the last batch of an epoch is smaller).
 *  - backward(): after a forward of the same batch (same n, x and ctx; y is
 *    its output), given dy (n*out, read-only): ACCUMULATE (+=) parameter
 *    gradients into params[i].g (the caller zeroes them before a step, see
 *    lib/nn/train.c; never assume they start at zero), and
 *    WRITE (=) all n*in values of dx when dx != NULL (dx holds garbage on
 *    entry and never aliases x, y or dy; dx == NULL: the input gradient is
 *    not needed, e.g. first layer).  Again only the n examples.
 *    tests/unit/gradcheck.c checks all of this for every layer.
 *  - init(): optional, after the generic initialisation of parameters.
 *  - project(): optional, after every optimiser step (e.g. clip u >= 0).
 *  - init_data(): optional, unsupervised initialisation from sample inputs.
 *  - affine(): optional, for a layer that is an affine map y = W x + b of
 *    its input (conv, linear): which parameters are W and b, and its
 *    multiply-accumulates (sk_affine).
 * Parameters live in memory owned by layer.c; a layer reads p->w and p->g
 * and never frees them.  Data-parallel replicas rebind p->w to shared values.
 * create() only declares parameters (sk_layer_param); their memory comes
 * later, from sk_seq_alloc(): values for every use, gradients only for
 * training.  So a model's size is checked, and can be reported, before
 * anything large is allocated.  p->w may be NULL in create(); p->g is NULL
 * outside training (backward() is then never called).
 */
#ifndef SK_LAYER_H
#define SK_LAYER_H

#include "sk_base.h"
#include "sk_spec.h"
#include "sk_stream.h"

/* ---- per-example shapes ---- */

typedef struct sk_shape {
	int n;      /* number of dims: 1 (features), 2 (set: T x D), 3 (C x H x W) */
	int d[4];
} sk_shape;

size_t sk_shape_size(sk_shape s);   /* product of dims (SIZE_MAX on overflow or a negative dim) */
sk_shape sk_shape1(int a);
sk_shape sk_shape2(int a, int b);
sk_shape sk_shape3(int c, int h, int w);
char *sk_shape_fmt(sk_shape s, char *buf, size_t len);  /* "16x14x14" */

/* ---- parameters ---- */

enum sk_init {
	SK_INIT_ZERO, SK_INIT_ONE, SK_INIT_CONST,   /* CONST: value a */
	SK_INIT_HE,        /* normal, std a*sqrt(2/fan_in) */
	SK_INIT_HE_UNIFORM,/* uniform, bound a*sqrt(6/fan_in) */
	SK_INIT_XAVIER,    /* uniform, bound a*sqrt(6/(fan_in+fan_out)) */
	SK_INIT_XAVIER_NORMAL, /* normal, std a*sqrt(2/(fan_in+fan_out)) */
	SK_INIT_UNIFORM,   /* uniform in [-a, a] */
	SK_INIT_NORMAL,    /* normal, std a */
	SK_INIT_CUSTOM     /* left to the layer's init() */
};

enum {
	SK_P_BUFFER = 1,   /* not trained, no gradient (e.g. running statistics) */
	SK_P_NODECAY = 2,  /* excluded from weight decay (biases, norms) */
};

/* Caps checked when a model is built, before any allocation (simkit.7,
 * LIMITS): elements of one parameter tensor, values per example of one
 * layer's output, and parameter values (buffers included) of a whole model. */
#define SK_MAX_PARAM ((size_t)1 << 28)
#define SK_MAX_ACT ((size_t)1 << 28)
#define SK_MAX_MODEL ((size_t)1 << 30)

typedef struct sk_param {
	char name[SK_NAME_MAX];   /* full name "<layer>.<short>", e.g. "conv2.w" */
	int ndim;
	int64_t shape[4];
	size_t size;
	float *w;                 /* values (NULL until sk_seq_alloc) */
	float *g;                 /* gradient (NULL for buffers and outside training) */
	const float *fill;        /* values taken at allocation, repeated (NULL: zeros); */
	size_t nfill;             /* owned by the layer, e.g. the input line's mean= */
	int flags;
	int init;                 /* enum sk_init */
	float init_a;
	int fan_in, fan_out;
	int frozen;               /* set by snet-train --freeze */
	/* Per-parameter multipliers from the spec (lr_mult, decay_mult options):
	 * the optimiser uses lr * lr_mult and wd * decay_mult.  Only the ones
	 * flagged in `mults` are set; the others are 1, and decay_mult is 0 for
	 * SK_P_NODECAY parameters (a zeroed sk_param is a default one). */
	float lr_mult, decay_mult;
	int mults;                /* SK_MULT_LR | SK_MULT_DECAY */
} sk_param;

enum { SK_MULT_LR = 1, SK_MULT_DECAY = 2 };
/* The effective multipliers of a parameter. */
float sk_param_lr_mult(const sk_param *p);
float sk_param_decay_mult(const sk_param *p);

/* ---- layers ---- */

typedef struct sk_layer sk_layer;
typedef struct sk_seq sk_seq;

typedef struct sk_ctx {
	int train;            /* 1 while training: dropout on, BN batch statistics */
	int update_buffers;   /* 1 on the replica that updates running statistics */
	uint64_t seed;        /* run seed */
	uint64_t step;        /* global optimiser step (for per-step randomness) */
	int64_t example0;     /* global index of this slice's first example */
	int thread;           /* replica index, 0-based */
} sk_ctx;

/* An affine layer, y = W x + b, as tools that read models see it: the MAC
 * count of mr-build (sk_arch_macs) and the zoo reader (sk_zoo.h). */
typedef struct sk_affine {
	int w;          /* index in l->params of W: OUT x IN (dense) or OUT x IN x KH x KW (conv) */
	int b;          /* index of the bias (OUT values), or -1 without one */
	double macs;    /* multiply-accumulates per example (the papers' count) */
} sk_affine;

typedef struct sk_layer_ops {
	const char *type;
	const char *synopsis;  /* one line for --help-layers and simkit.7 */
	int (*create)(sk_layer *l, const sk_spec *s, sk_specline *o);
	int (*setup)(sk_layer *l, int max_batch);
	int (*forward)(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y);
	int (*backward)(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y,
	                const float *dy, float *dx);
	void (*destroy)(sk_layer *l);
	int (*init)(sk_layer *l, uint64_t seed);
	void (*project)(sk_layer *l);
	/* Optional data-driven initialisation (snet-train --init-unsupervised):
	 * x holds n examples of this layer's INPUT, computed by the already
	 * initialised layers before it; `method` is e.g. "kmeans" or "gmm". */
	int (*init_data)(sk_layer *l, const char *method, int n, const float *x, uint64_t seed);
	/* Optional: fill *a for an affine layer (sk_affine_wb fits a layer whose
	 * params are W, then the bias when it has one, and whose flops count 2
	 * per multiply-add). */
	void (*affine)(const sk_layer *l, sk_affine *a);
	size_t priv_size;      /* bytes of l->priv (0: none) */
	int in_dims;           /* the input's rank, 3 (C x H x W) or 2 (T x D); 0: any */
	int batch_stats;       /* 1: in training its outputs depend on other examples of the
	                          slice (batch statistics): no micro-batches (sk_train.h) */
} sk_layer_ops;

struct sk_layer {
	const sk_layer_ops *ops;
	char name[SK_NAME_MAX];   /* "conv2", or "blk3.a.conv1" inside composites */
	int index;                /* position in its sequence, 1-based */
	sk_shape in, out;
	double flops;             /* forward FLOPs per example (children included) */
	int nparams;
	sk_param *params;         /* this layer's own parameters */
	int nchild;
	sk_seq **child;           /* composites: nested sequences (built by the layer) */
	void *priv;               /* layer-private state (ops->priv_size bytes, owned by the builder) */
	int max_batch;
	void **mem;               /* blocks of sk_layer_parts(), freed with the layer */
	int nmem, nmem_kept;      /* their count; the first nmem_kept are create()'s */
};

/* Declare a parameter in create(); returns its index or -1.  `shortname` is
 * "w", "b", "gamma"...; dims with ndim <= 4, at most SK_MAX_PARAM elements.
 * Allocates nothing: until sk_seq_alloc, p->w is NULL.  A layer whose
 * parameter must hold given values before any init or load (a buffer read
 * from the spec line) points p->fill at them. */
int sk_layer_param(sk_layer *l, const char *shortname, int ndim, const int64_t *shape,
                   int init, float init_a, int fan_in, int fan_out, int flags);

/* Memory owned by layer l: one sk_alloc_parts() block (sk_base.h) whose
 * parts' addresses go into their slots (pointers in l->priv).  Taken in
 * create(), it lives as long as the layer; in setup(), until the next
 * setup().  0, or -1 with an error. */
int sk_layer_parts(sk_layer *l, int nparts, const sk_part *parts);

/* A layer that runs one product over a batch of n examples (each rows x
 * cols, e.g. channels x pixels) groups it: row r of every example side by
 * side, example e at columns e*cols of a rows x ld matrix t.  Group copies
 * the batch y into t; ungroup writes y = t + bias[r] (bias NULL: + 0). */
void sk_batch_group(int n, int rows, size_t cols, const float *y, float *t, size_t ld);
void sk_batch_ungroup(int n, int rows, size_t cols, const float *t, size_t ld, const float *bias, float *y);

/* Set up layer l (its children first) for batches of up to max_batch
 * examples: drops what its last setup() took, then calls its setup(). */
int sk_layer_setup(sk_layer *l, int max_batch);

/* The options lr_mult=M, decay_mult=M (every parameter of layer l, those of
 * its blocks included) and lr_mult.P=M, decay_mult.P=M (the parameter P,
 * named relative to the layer: "w", or "conv1.w" inside a block): called by
 * the builder after create().  A setting made nearer the parameter wins: a
 * block line's own over its parent's, P over the whole layer. */
int sk_opt_param_mults(const sk_spec *s, sk_specline *o, sk_layer *l);

/* A layer's one positional argument, a count NAME ("OUT", "K") in 1..max,
 * into *v; a second positional word is an error.  0, or -1 with an error. */
int sk_opt_count(const sk_spec *s, sk_specline *o, const char *name, int max, int *v);

/* The options of an affine layer's parameters (conv, linear): bias=0|1
 * (default 1), init=he|xavier|normal|uniform, scale=A (default 1, 1, 0.01,
 * 0.05 by init) and bias_init=V (default 0); then W (ndim x shape, its fan-in
 * and fan-out) and, with bias, b (shape[0] values, no weight decay) declared
 * in the order sk_affine_wb expects.  0, or -1 with an error. */
typedef struct sk_affine_opts {
	int bias, init;
	float scale, bias_init;
} sk_affine_opts;
int sk_opt_affine(const sk_spec *s, sk_specline *o, sk_affine_opts *a);
int sk_layer_affine_params(sk_layer *l, const sk_affine_opts *a, int ndim, const int64_t *shape, int fan_in,
                           int fan_out);

/* 1 with *a filled when l is an affine layer (its ops->affine), else 0. */
int sk_layer_affine(const sk_layer *l, sk_affine *a);
/* The affine() of a layer whose params[0] is W, params[1] (if any) the bias,
 * and whose l->flops are 2 per multiply-add (conv, linear). */
void sk_affine_wb(const sk_layer *l, sk_affine *a);

/* The ops table of layer NAME, `const sk_layer_ops sk_layer_NAME`, whose
 * functions are NAME_create, NAME_forward and NAME_backward: the synopsis,
 * then the other members, e.g.
 *     SK_LAYER(gap, "gap", .in_dims = 3);  */
#define SK_LAYER(NAME, ...) \
	const sk_layer_ops sk_layer_##NAME = {.type = #NAME, .create = NAME##_create, .forward = NAME##_forward, \
	                                      .backward = NAME##_backward, .synopsis = __VA_ARGS__}

/* Registry: lookup by type name; unknown names fail listing the valid ones. */
const sk_layer_ops *sk_layer_find(const char *type);
const sk_layer_ops *const *sk_layer_table(int *n);

/* ---- sequences: what models and composite layers are made of ---- */

struct sk_seq {
	int n;
	sk_layer **layers;
	sk_shape in, out;
	int max_batch;
	float **act;      /* act[i]: output of layer i (n * out_i floats) */
	float *gbuf[2];   /* ping-pong gradient buffers, each max activation size */
	size_t maxact;    /* largest per-example size among in and outputs */
};

/* Declare from a spec: layers, shapes and parameters, without parameter
 * memory; names become "<prefix><type><index>" (prefix may be "" or e.g.
 * "blk3.a.").  Unknown options are errors; so is a layer output of more than
 * SK_MAX_ACT values per example.  Composite layers declare their children so. */
sk_seq *sk_seq_declare(const sk_spec *s, sk_shape in, const char *prefix);
/* Allocate what parameters lack (recursive): values (zero, or their fill),
 * and with `grads` the gradients of trainable ones (zero).  Checks the
 * model's total against SK_MAX_MODEL first.  Idempotent. */
int sk_seq_alloc(sk_seq *q, int grads);
/* Whether the trainable parameters have gradients (sk_seq_alloc(q, 1)). */
int sk_seq_has_grads(sk_seq *q);
/* sk_seq_declare, then sk_seq_alloc(q, 1): a sequence ready to train. */
sk_seq *sk_seq_build(const sk_spec *s, sk_shape in, const char *prefix);
void sk_seq_free(sk_seq *q);
int sk_seq_setup(sk_seq *q, int max_batch);   /* recursive; allocates activations */
/* Forward through all layers; returns the output (q->act[n-1]) or NULL. */
const float *sk_seq_forward(sk_seq *q, const sk_ctx *c, int n, const float *x);
/* Backward after a forward of the same batch; dx may be NULL. */
int sk_seq_backward(sk_seq *q, const sk_ctx *c, int n, const float *x, const float *dy, float *dx);
/* Initialise all parameters (recursive) from a seed: each parameter draws
 * from stream sk_rng_hash(name), so init does not depend on layer order. */
int sk_seq_init(sk_seq *q, uint64_t seed);
void sk_seq_project(sk_seq *q);

/* Walk all parameters, depth first in spec order (the stream order). */
typedef int (*sk_param_fn)(sk_param *p, sk_layer *owner, void *arg);
int sk_seq_walk_params(sk_seq *q, sk_param_fn fn, void *arg);
/* All parameters (buffers included) in that order, in a malloc'ed array the
 * caller frees (NULL when there are none); returns the count or -1. */
int sk_seq_params(sk_seq *q, sk_param ***out);
/* Walk all layers depth first (composites before their children). */
typedef int (*sk_layer_fn)(sk_layer *l, int depth, void *arg);
int sk_seq_walk_layers(sk_seq *q, sk_layer_fn fn, void *arg);
/* Totals: trainable scalars (buffers excluded) and forward FLOPs per example. */
size_t sk_seq_param_count(sk_seq *q);
/* All parameter values, buffers included (what sk_seq_alloc allocates). */
size_t sk_seq_value_count(sk_seq *q);
double sk_seq_flops(sk_seq *q);
/* Find a layer by full name (recursive); NULL if none. */
sk_layer *sk_seq_find(sk_seq *q, const char *name);

#endif
