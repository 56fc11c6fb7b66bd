/* sk_infer.h: run a model over a chunked data stream in bounded memory:
 * write logits, probabilities, predicted labels or a layer's features as a
 * stream, and/or accumulate metrics (accuracy, loss, confusion matrix). */
#ifndef SK_INFER_H
#define SK_INFER_H

#include <stdint.h>
#include <stdio.h>

#include "sk_data.h"
#include "sk_model.h"

typedef enum sk_infer_output {
	SK_OUT_LOGITS = 0, SK_OUT_PROBS, SK_OUT_LABELS, SK_OUT_FEATURES
} sk_infer_output;

typedef struct sk_infer_config {
	sk_infer_output output;
	const char *layer;     /* SK_OUT_FEATURES: layer name */
	int dataset;           /* SK_OUT_FEATURES as a data set: `images` records shaped like the layer's
	                          output, each followed by its chunk's `labels` (snet-train reads it) */
	int batch;             /* examples per forward (default 256) */
	int threads;           /* replicas (default 1) */
	FILE *out;             /* stream to write, or NULL (metrics only) */
	int level;             /* deflate level for the output (0 = raw) */
	int metrics;           /* accumulate metrics (needs labels) */
	int slice;             /* examples per slice of the engine (0: its choice) */
} sk_infer_config;

typedef struct sk_infer_result {
	int64_t n;             /* examples seen */
	int64_t nlabelled;     /* of which labelled */
	int64_t correct;
	double loss;           /* summed softmax cross-entropy over labelled examples */
	int k;                 /* classes */
	int64_t *confusion;    /* k x k, row = true label, column = predicted (malloc'ed; free it) */
} sk_infer_result;

/* ---- the forward-only engine (lib/nn/plan.c) ----
 *
 * Plans a model's forward pass once: a few activation buffers shared by
 * all layers (two per plain sequence, three in a residual block), ReLU and
 * batch norm in place, batch norm after a convolution folded into a copy
 * of its weights (running statistics: evaluation mode), dropout skipped,
 * residual and merge-and-run blocks planned through, every other layer run
 * by its ordinary forward.  A batch runs in slices of a few examples (the
 * buffers hold a slice).  No gradients, optimiser state or per-layer
 * activations; the parameter values are the model's (read when the engine
 * is made: change them, make a new engine).  Outputs equal sk_seq_forward
 * in evaluation mode up to float rounding. */
typedef struct sk_engine sk_engine;

/* `threads` replicas for batches of up to max_batch examples; `layer`
 * (NULL: none) names a layer (at any depth) whose output is also delivered;
 * `slice` examples per slice (0: the engine's choice, about 1 MiB for the
 * largest activation; SK_INFER_SLICE in the environment overrides). */
sk_engine *sk_engine_new(sk_model *m, int threads, int max_batch, const char *layer, int slice);
void sk_engine_free(sk_engine *e);
/* Forward n <= max_batch examples x (n * input size floats): the model's
 * output into y and the layer's into features (n * sk_engine_layer_size
 * floats), each when not NULL. */
int sk_engine_forward(sk_engine *e, int n, const float *x, float *y, float *features);
/* Per-example size of the captured layer's output (0 without one). */
size_t sk_engine_layer_size(const sk_engine *e);
/* Bytes of the planned activation buffers, all threads; examples per slice. */
size_t sk_engine_bytes(const sk_engine *e);
int sk_engine_slice(const sk_engine *e);

/* ---- running a model over a stream ---- */

void sk_infer_defaults(sk_infer_config *c);
/* Run m over every chunk of `in`.  Returns 0 or -1 (message names the chunk). */
int sk_infer_run(sk_model *m, sk_chunks *in, const sk_infer_config *c, sk_infer_result *r);

#endif
