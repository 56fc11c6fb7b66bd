/* sk_sne.h: set-based neural network encoding (SNE) and its baselines.  The
 * set layers the encoders are built from (sab, isab, pma) and their
 * attention block are in sk_attn.h.
 *
 * An encoder maps a model (its parameters, read layer by layer, or its
 * recorded hyperparameters) to a code z and a scalar logit s; the
 * prediction is sigmoid(s).  Encoders:
 *   sne      pad-chunk-encode: a layer is an out x (in * S + 1) grid of
 *            elements of P values (P = `values`; the kernel W[o,i] of k
 *            values spans S = ceil(k / P) elements, the last zero-padded; the
 *            bias b[o] is the last column), read row-major and cut into
 *            chunks of c elements (the last one padded), so a layer of any
 *            size and kernel is read by the same encoder; chunk level SAB ->
 *            PMA with the element's position in the chunk, layer level SAB ->
 *            PMA with the chunk index, model level SAB -> PMA with the layer
 *            index (depth) and the layer type (conv, dense); then an MLP head.
 *   statnn   seven statistics (mean, variance, quantiles 0/25/50/75/100%)
 *            per weight and bias tensor, then an MLP.
 *   mlp      an MLP on the flat parameter vector (zero-padded or cut to a
 *            fixed length).
 *   hparams  an MLP on the model's recorded hyperparameters alone (its
 *            attributes: learning_rate, l2reg, init_std (or init_scale)
 *            as logarithms, dropout, train_fraction, log(1 + epoch);
 *            activation, w_init, optimizer one-hot over the values of the
 *            zoo it is sized on; those the zoo does not record left out):
 *            what the weights add beyond the recipe.
 */
#ifndef SK_SNE_H
#define SK_SNE_H

#include <stdio.h>

#include "sk_attn.h"
#include "sk_stream.h"

/* ---- encoders ---- */

typedef enum sk_enc_kind { SK_ENC_SNE = 0, SK_ENC_STATNN, SK_ENC_MLP, SK_ENC_HPARAMS } sk_enc_kind;

/* Parts of SNE switched off (their inputs set to zero, the widths kept), for
 * ablations and for the tests that show each part is seen. */
enum {
	SK_SNE_NO_PE_ELEMENT = 1,   /* the element's position in its chunk */
	SK_SNE_NO_PE_CHUNK = 2,     /* the chunk's index in its layer */
	SK_SNE_NO_PE_LAYER = 4,     /* the layer's index in its model */
	SK_SNE_NO_LAYER_TYPE = 8    /* the layer type (conv, dense) */
};

typedef struct sk_enc_config {
	sk_enc_kind kind;
	int d;          /* sne: width of every set block (default 32) */
	int chunk;      /* sne: elements per chunk (default 16) */
	int heads;      /* sne: attention heads (default 4) */
	int ln;         /* sne: layer normalisation in the set blocks (default 1) */
	int hidden;     /* statnn, mlp, hparams: hidden width (default 1000 statnn, 256 mlp and hparams) */
	int values;     /* sne: values per element (default 0: the largest kernel of the zoo it is sized on) */
	int ablate;     /* sne: SK_SNE_NO_* bits (default 0) */
} sk_enc_config;

void sk_enc_defaults(sk_enc_config *c, sk_enc_kind kind);
const char *sk_enc_name(sk_enc_kind k);
int sk_enc_parse(const char *s, sk_enc_kind *out);   /* -1 with an error listing the kinds */
/* SK_SNE_NO_* bits from "none" or a comma list of pe-element, pe-chunk,
 * pe-layer, layer-type; -1 with an error naming the unknown one. */
int sk_enc_parse_ablate(const char *s, int *bits);

typedef struct sk_encoder sk_encoder;
struct sk_zoo;
struct sk_zoo_model;

/* A new encoder sized and normalised on the models idx[0..n) of z (sne: the
 * largest kernel, unless `values` is set, and the scale of the weights;
 * statnn: the number of layers and the feature statistics; mlp: the flat
 * length and its statistics; hparams: which hyperparameters the models
 * record, the values of the categorical ones, and the statistics),
 * initialised from seed. */
sk_encoder *sk_encoder_new(const sk_enc_config *c, const struct sk_zoo *z, const int *idx, int n, uint64_t seed);
void sk_encoder_free(sk_encoder *e);
int sk_encoder_code_size(const sk_encoder *e);
size_t sk_encoder_param_count(const sk_encoder *e);
const sk_enc_config *sk_encoder_config(const sk_encoder *e);

/* Validation during training: the models (runs held out of the training
 * part, never test runs) on which the epoch kept is chosen. */
typedef struct sk_enc_val {
	const int *idx;       /* the validation models of the zoo */
	int n;
	const double *target; /* their targets */
	double *curve;        /* out (may be NULL): Kendall tau-b after each epoch (`epochs` values) */
	int best_epoch;       /* out: the epoch kept (1-based) */
	double best_tau;      /* out: its tau on the validation models (NaN when never defined) */
} sk_enc_val;

typedef struct sk_enc_train {
	int epochs;       /* default 30 */
	int batch;        /* models per step (default 16) */
	float lr;         /* Adam learning rate (default 1e-3) */
	float wd;         /* weight decay (default 0) */
	float lambda;     /* logit-invariance weight (default 0; sne and others alike; hparams sees no weights) */
	int mse;          /* 1: MSE on sigmoid(s) instead of BCE */
	uint64_t seed;
	sk_enc_val *val;  /* NULL: the last epoch is kept */
	/* after each epoch: mean loss, mean (s - s_pi)^2, validation tau (NaN without validation) */
	void (*on_epoch)(int epoch, int epochs, double loss, double inv, double val_tau, void *arg);
	void *arg;
} sk_enc_train;

void sk_enc_train_defaults(sk_enc_train *t);
/* Fit the encoder so that sigmoid(s(model)) predicts target[k] (in [0, 1])
 * for model idx[k].  With t->val, the encoder is evaluated on the
 * validation models after each epoch and the parameters of the epoch with
 * the largest Kendall tau-b (the first of equals; NaN never wins; the last
 * epoch when no tau is defined) are the ones kept, as the NFN protocol
 * keeps its best validation epoch. */
int sk_encoder_train(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, const double *target,
                     const sk_enc_train *t);
/* Codes (n x code size, may be NULL) and logits s (n, may be NULL). */
int sk_encoder_run(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, float *codes, float *logits);
/* Kendall tau-b between the encoder's predictions and target[] on the models idx[0..n). */
int sk_encoder_tau(sk_encoder *e, const struct sk_zoo *z, const int *idx, int n, const double *target, double *tau);
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

/* For tests: the tokens of layer `layer` of model m as the chunk level sees
 * them (sne only): *nchunks chunks of chunk x (values + 3 + 4) floats into x
 * (NULL: count only), each token [values, is-weight, is-bias, is-pad,
 * position in the chunk]; 0 or -1. */
int sk_encoder_tokens(const sk_encoder *e, const struct sk_zoo_model *m, int layer, float *x, int *nchunks);
/* For tests: the raw (unnormalised) features of model m (statnn, mlp,
 * hparams) into f, *nfeat their number (f NULL: count only); 0 or -1. */
int sk_encoder_features(sk_encoder *e, const struct sk_zoo_model *m, float *f, int *nfeat);

/* Save as records: an `encoder` record (u8 payload: the configuration as
 * text; attribute `records`) followed by its tensors (deflated at level, 0 =
 * raw); extra attributes are added to the encoder record. */
int sk_encoder_write(FILE *f, sk_encoder *e, const sk_attrs *extra, int level);
/* Read the first encoder of a stream; its attributes into attrs (may be NULL). */
sk_encoder *sk_encoder_load(const char *path, sk_attrs *attrs);

#endif
