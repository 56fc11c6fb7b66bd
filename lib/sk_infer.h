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
	int batch;             /* examples per forward (default 256) */
	int threads;           /* replicas (default 1) */
	FILE *out;             /* stream to write, or NULL (metrics only) */
	int level;             /* deflate level for the output (0 = raw) */
	int metrics;           /* accumulate metrics (needs labels) */
} sk_infer_config;

typedef struct sk_infer_result {
	int64_t n;             /* examples seen */
	int64_t nlabelled;     /* of which labelled */
	int64_t correct;
	double loss;           /* summed softmax cross-entropy over labelled examples */
	int k;                 /* classes */
	int64_t *confusion;    /* k x k, row = true label, column = predicted (malloc'ed; free it) */
} sk_infer_result;

void sk_infer_defaults(sk_infer_config *c);
/* Run m over every chunk of `in`.  Returns 0 or -1 (message names the chunk). */
int sk_infer_run(sk_model *m, sk_chunks *in, const sk_infer_config *c, sk_infer_result *r);

#endif
