/* sk_zoo.h: model zoos (models concatenated in one stream, each with its
 * attributes), the hidden-unit permutations that leave a network's function
 * unchanged, and the rank and regression metrics used to evaluate property
 * predictors (Kendall's tau-b, Spearman, R^2, RMSE).
 *
 * A zoo model is read straight from its records: the `model` record (spec
 * text, attributes such as test_acc) and the f32 parameter records that
 * follow it (`records` attribute); optimiser state ("opt.*") is skipped.  The
 * parameterised layers are the model's affine layers, as its spec's layers
 * say (sk_layer_affine: conv, linear): a weight record (ndim 4: conv, out x
 * in x kh x kw; ndim 2: dense, out x in) with an optional bias (out).  Other
 * parameters are kept in the flat vector only.
 */
#ifndef SK_ZOO_H
#define SK_ZOO_H

#include <stddef.h>
#include <stdint.h>

#include "sk_layer.h"
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
/* One numeric attribute of every model into out[z->n]; an error names the
 * first model without it (or with a non-numeric value). */
int sk_zoo_attr(const sk_zoo *z, const char *key, double *out);

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
