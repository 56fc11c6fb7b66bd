/* sk_attn.h: the multihead attention block (MAB) shared by the set layers,
 * and layer normalisation of rows.
 *
 * The set layers (lib/nn/layers/sab.c, isab.c, pma.c) are built from MABs as
 * in the Set Transformer (Lee et al. 2019):
 *   MAB(Q, X):  Q' = Q Wq + bq,  K = X Wk + bk,  V = X Wv + bv;
 *               per head h: O_h = softmax(Q'_h K_h^T / sqrt(dv)) V_h;
 *               H = LN0(Q' + O);  out = LN1(H + relu(H Wo + bo))
 * (LN only with ln=1).  Shapes per example: Q is nq x dq, X is nk x dk, the
 * output nq x dv.  The MAB is in lib/nn/layers/mha.c, the row normalisation
 * in lib/nn/layers/layernorm.c.
 */
#ifndef SK_ATTN_H
#define SK_ATTN_H

#include "sk_layer.h"

/* ---- layer normalisation of rows ---- */

/* y = (x - mean) * rstd * g + b per row of d; keeps xhat and rstd for the
 * backward pass; y may equal x. */
void sk_ln_forward(size_t rows, int d, const float *x, const float *g, const float *b, float *xhat, float *rstd,
                   float *y);
/* dx (may equal dy) from dy; accumulates dg and db when non-NULL. */
void sk_ln_backward(size_t rows, int d, const float *dy, const float *xhat, const float *rstd, const float *g,
                    float *dg, float *db, float *dx);

/* ---- the multihead attention block ---- */

typedef struct sk_mab {
	int dq, dk, dv, heads, nq, nk, ln;
	int qshared;      /* Q is a parameter shared by the batch (PMA seeds, ISAB points) */
	int p0;           /* index of its first parameter in the owner's params */
	int max_batch;
	/* caches of the last forward (max_batch examples) */
	float *qp, *k, *v, *a, *x0, *r0, *h, *f, *x1, *r1;
	/* backward scratch */
	float *dh, *df, *dqp, *dk_, *dv_, *da, *dq0;
} sk_mab;

/* Declare the parameters "<pfx>q.w" ... on l (call from create()). */
int sk_mab_declare(sk_mab *m, sk_layer *l, const char *pfx, int dq, int dk, int dv, int heads, int nq, int nk,
                   int ln, int qshared);
/* The options of the attention layers after their width d: heads=H
 * (default 4, dividing d) and, when ln is not NULL, ln=0|1. */
int sk_mab_opts(const sk_spec *s, sk_specline *o, int d, int *heads, int *ln);
int sk_mab_setup(sk_mab *m, int max_batch);
void sk_mab_free(sk_mab *m);
/* setup() and destroy() of the layers whose private state is one sk_mab
 * (mha, sab, pma) */
int sk_mab_layer_setup(sk_layer *l, int max_batch);
void sk_mab_layer_destroy(sk_layer *l);
/* FLOPs per example. */
double sk_mab_flops(const sk_mab *m);
/* q: n examples of nq x dq (or nq x dq once when qshared); x: n x nk x dk. */
int sk_mab_forward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, float *out);
/* dq: written (=) when non-NULL (qshared: the shared parameter's gradient,
 * accumulated); dx: written, or accumulated when dx_acc is set. */
int sk_mab_backward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, const float *dout, float *dq,
                    float *dx, int dx_acc);

#endif
