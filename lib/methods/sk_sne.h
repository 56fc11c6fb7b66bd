/* sk_sne.h: set-based neural network encoding (SNE) and its baselines.  The
 * set layers the encoders are built from (sab, isab, pma) and their
 * attention block are in sk_attn.h.
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

#include "sk_attn.h"
#include "sk_stream.h"

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
