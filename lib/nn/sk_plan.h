/* sk_plan.h: what the forward-only inference engine (lib/nn/plan.c) needs to
 * know about a few layers, each defined beside its layer in lib/nn/layers/.
 * Internal to the library; the engine itself is declared in sk_infer.h. */
#ifndef SK_PLAN_H
#define SK_PLAN_H

#include "sk_layer.h"

/* conv.c: the spec line of a copy of conv layer l (same geometry and
 * algorithm) with bias=BIAS (0 or 1); -1 when it does not fit in buf.  The
 * engine folds a following batch norm into such a copy's weights. */
int sk_conv_copy_text(const sk_layer *l, int bias, char *buf, size_t len);
/* conv.c: l's bias values, or NULL when it has none (bias=0). */
const float *sk_conv_bias(const sk_layer *l);

/* bn.c: the evaluation-mode map of bn layer l as y = a[c] x + b[c] per
 * channel (running statistics), for nc = its channel count; returns nc, or
 * 0 when l normalises not over the channels of a C x H x W input. */
int sk_bn_eval_affine(const sk_layer *l, double *a, double *b, int nc);

/* relu.c: the slope below zero (0 for the plain ReLU). */
float sk_relu_slope(const sk_layer *l);

/* resblock.c: y = ReLU(branch(x) + shortcut(x)): the branch, the projection
 * (NULL when there is none) and, for the parameter-free option-A shortcut,
 * its subsampling stride (0: identity or projection). */
void sk_resblock_parts(const sk_layer *l, sk_seq **branch, sk_seq **proj, int *opt_a_stride);

/* mrblock.c: the branches H^a, H^b, the projections (NULL: identity),
 * whether the input is one stream (in=single) and the output the merged
 * stream (out=merged), and the per-example sizes of one input and one
 * output stream. */
void sk_mrblock_parts(const sk_layer *l, sk_seq *h[2], sk_seq *p[2], int *single, int *merged, size_t *sin,
                      size_t *sout);

/* residual.c: y = body(x) + shortcut(x); returns the shortcut kind:
 * SK_RESIDUAL_IDENTITY, SK_RESIDUAL_PAD (x subsampled by *stride into
 * channels *lo...) or SK_RESIDUAL_SEQ (the sequence *sc). */
enum { SK_RESIDUAL_IDENTITY, SK_RESIDUAL_PAD, SK_RESIDUAL_SEQ };
int sk_residual_parts(const sk_layer *l, sk_seq **body, sk_seq **sc, int *stride, int *lo);

#endif
