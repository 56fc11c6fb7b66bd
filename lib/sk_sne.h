/* sk_sne.h: set-based neural network encoding (SNE) and its baselines, and
 * the multihead attention block (MAB) shared by the set layers.
 *
 * The set layers (lib/layers/sab.c, isab.c, pma.c) are built from MABs as in
 * the Set Transformer (Lee et al. 2019):
 *   MAB(Q, X):  Q' = Q Wq + bq,  K = X Wk + bk,  V = X Wv + bv;
 *               per head h: O_h = softmax(Q'_h K_h^T / sqrt(dv)) V_h;
 *               H = LN0(Q' + O);  out = LN1(H + relu(H Wo + bo))
 * (LN only with ln=1).  Shapes per example: Q is nq x dq, X is nk x dk, the
 * output nq x dv.
 *
 * An encoder maps a model (its parameters, read layer by layer) to a code z
 * and a scalar logit s; the prediction is sigmoid(s).  Encoders:
 *   sne     pad-chunk-encode: a layer is an out x (in + 1) grid of elements
 *           (kernel W[o,i] flattened, zero-padded to kmax^2; the bias in the
 *           last column), read row-major and cut into chunks of c elements;
 *           chunk level SAB -> PMA, layer level SAB -> PMA with the chunk
 *           position, model level SAB -> PMA with layer depth and type;
 *           then an MLP head.
 *   statnn  seven statistics (mean, variance, quantiles 0/25/50/75/100%)
 *           per weight and bias tensor, then an MLP.
 *   mlp     an MLP on the flat parameter vector (zero-padded or cut to a
 *           fixed length).
 */
#ifndef SK_SNE_H
#define SK_SNE_H

#include <stdio.h>

#include "sk_layer.h"
#include "sk_stream.h"

/* ---- layer normalisation of rows (lib/layers/layernorm.c) ---- */

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
int sk_mab_setup(sk_mab *m, int max_batch);
void sk_mab_free(sk_mab *m);
/* destroy() of the layers whose private state is one sk_mab (mha, sab, pma) */
void sk_mab_layer_destroy(sk_layer *l);
/* FLOPs per example. */
double sk_mab_flops(const sk_mab *m);
/* q: n examples of nq x dq (or nq x dq once when qshared); x: n x nk x dk. */
int sk_mab_forward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, float *out);
/* dq: written (=) when non-NULL (qshared: the shared parameter's gradient,
 * accumulated); dx: written, or accumulated when dx_acc is set. */
int sk_mab_backward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, const float *dout, float *dq,
                    float *dx, int dx_acc);

/* ---- encoders ---- */

typedef enum sk_enc_kind { SK_ENC_SNE = 0, SK_ENC_STATNN, SK_ENC_MLP } sk_enc_kind;

typedef struct sk_enc_config {
	sk_enc_kind kind;
	int d;          /* sne: width of every set block (default 32) */
	int chunk;      /* sne: elements per chunk (default 16) */
	int heads;      /* sne: attention heads (default 4) */
	int ln;         /* sne: layer normalisation in the set blocks (default 1) */
	int hidden;     /* statnn, mlp: hidden width (default 1000 statnn, 256 mlp) */
} sk_enc_config;

void sk_enc_defaults(sk_enc_config *c, sk_enc_kind kind);
const char *sk_enc_name(sk_enc_kind k);
int sk_enc_parse(const char *s, sk_enc_kind *out);   /* -1 with an error listing the kinds */

typedef struct sk_encoder sk_encoder;
struct sk_zoo;

/* A new encoder sized and normalised on the models idx[0..n) of z (sne: the
 * largest kernel; statnn: the number of layers and the feature statistics;
 * mlp: the flat length and its statistics), initialised from seed. */
sk_encoder *sk_encoder_new(const sk_enc_config *c, const struct sk_zoo *z, const int *idx, int n, uint64_t seed);
void sk_encoder_free(sk_encoder *e);
int sk_encoder_code_size(const sk_encoder *e);
size_t sk_encoder_param_count(const sk_encoder *e);
const sk_enc_config *sk_encoder_config(const sk_encoder *e);

typedef struct sk_enc_train {
	int epochs;       /* default 30 */
	int batch;        /* models per step (default 16) */
	float lr;         /* Adam learning rate (default 1e-3) */
	float wd;         /* weight decay (default 0) */
	float lambda;     /* logit-invariance weight (default 0; sne and others alike) */
	int mse;          /* 1: MSE on sigmoid(s) instead of BCE */
	uint64_t seed;
	void (*on_epoch)(int epoch, int epochs, double loss, double inv, void *arg);
	void *arg;
} sk_enc_train;

void sk_enc_train_defaults(sk_enc_train *t);
/* Fit the encoder so that sigmoid(s(model)) predicts target[k] (in [0, 1])
 * for model idx[k]. */
int sk_encoder_train(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, const double *target,
                     const sk_enc_train *t);
/* Codes (n x code size, may be NULL) and logits s (n, may be NULL). */
int sk_encoder_run(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, float *codes, float *logits);
/* Mean |s(theta) - s(pi theta)| over the models, pi drawn from seed. */
int sk_encoder_inv_gap(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, uint64_t seed, double *gap);

/* For tests: compare the analytic gradient of L = sum_b r_b s(model_b) (r
 * fixed, drawn from seed) with central differences, for `samples`
 * coordinates of every parameter tensor of the encoder; returns the number
 * of coordinates off by more than tol (relative to max(|a|, |n|, 1e-2): float32 differences through
 * the deep encoder are noisy below that) and
 * the worst relative error in *worst, or -1 on error. */
int sk_encoder_check_gradients(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, uint64_t seed,
                               int samples, double tol, double *worst);

/* Save as records: an `encoder` record (u8 payload: the configuration as
 * text; attribute `records`) followed by its tensors (deflated at level, 0 =
 * raw); extra attributes are added to the encoder record. */
int sk_encoder_write(FILE *f, sk_encoder *e, const sk_attrs *extra, int level);
/* Read the first encoder of a stream; its attributes into attrs (may be NULL). */
sk_encoder *sk_encoder_load(const char *path, sk_attrs *attrs);

#endif
