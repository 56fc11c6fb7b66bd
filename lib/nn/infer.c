/* infer.c: run a model over a chunked stream in bounded memory (sk_infer.h). */
#include "sk_infer.h"
#include "sk_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BYTES_MAX ((size_t)64 << 20)   /* one output record at most */

void sk_infer_defaults(sk_infer_config *c)
{
	memset(c, 0, sizeof *c);
	c->output = SK_OUT_LOGITS;
	c->batch = 256;
	c->threads = 1;
}

static int flush_rows(const sk_infer_config *c, const sk_model *m, size_t width, int64_t rows, const float *buf,
                      const int32_t *lab, int labelled)
{
	sk_attrs a;
	int rc;
	if (!c->out || rows == 0)
		return 0;
	sk_attrs_init(&a);
	if (c->output == SK_OUT_FEATURES) {
		char shp[64];
		sk_attrs_set(&a, "layer", c->layer);
		sk_layer *l = sk_seq_find(m->seq, c->layer);
		if (l)
			sk_attrs_set(&a, "shape", sk_shape_fmt(l->out, shp, sizeof shp));
	}
	if (c->output == SK_OUT_FEATURES && c->dataset) {
		/* a data set: images shaped like the layer's output, then their labels */
		sk_layer *l = sk_seq_find(m->seq, c->layer);
		int64_t shape[5] = {rows, (int64_t)width};
		int nd = 1;
		for (int d = 0; l && d < l->out.n && d < 4; d++)
			shape[nd++] = l->out.d[d];
		rc = sk_write_record_raw(c->out, "images", SK_F32, nd > 1 ? nd : 2, shape, buf, &a, c->level);
		if (rc == 0 && labelled)
			rc = sk_write_record_raw(c->out, "labels", SK_I32, 1, &rows, lab, NULL, c->level);
	} else if (c->output == SK_OUT_LABELS) {
		rc = sk_write_record_raw(c->out, "labels", SK_I32, 1, &rows, lab, &a, c->level);
	} else {
		int64_t shape[2] = {rows, (int64_t)width};
		const char *name = c->output == SK_OUT_LOGITS ? "logits" : c->output == SK_OUT_PROBS ? "probs" : "features";
		rc = sk_write_record_raw(c->out, name, SK_F32, 2, shape, buf, &a, c->level);
	}
	sk_attrs_free(&a);
	return rc;
}

int sk_infer_run(sk_model *m, sk_chunks *in, const sk_infer_config *c, sk_infer_result *r)
{
	sk_engine *eng = NULL;
	const char *layer = c->output == SK_OUT_FEATURES ? c->layer : NULL;
	size_t insz = sk_shape_size(m->in), k = sk_shape_size(m->seq->out), width;
	int64_t cap, rows = 0, nchunk = 0;
	float *buf = NULL, *logits = NULL;
	int32_t *lab = NULL;
	int rc = -1, st;
	memset(r, 0, sizeof *r);
	r->k = (int)k;
	if (c->batch < 1)
		return sk_error("batch %d must be positive", c->batch);
	if ((c->metrics || c->output != SK_OUT_FEATURES) && m->nclasses < 1)
		return sk_error("the model's output is not a vector of class scores");
	if (!(eng = sk_engine_new(m, c->threads, c->batch, layer, c->slice)))
		return -1;
	width = layer ? sk_engine_layer_size(eng) : c->output == SK_OUT_LABELS ? 1 : k;
	/* an output record holds up to `cap` rows, a multiple of the batch */
	cap = (int64_t)(OUT_BYTES_MAX / (width * sizeof(float)));
	if (cap < c->batch)
		cap = c->batch;
	cap = cap / c->batch * c->batch;
	if (cap > 16384 && 16384 >= c->batch)
		cap = 16384 / c->batch * c->batch;
	if (!(buf = sk_alloc_array((size_t)cap, width * sizeof(float))) ||
	    !(logits = sk_alloc_array((size_t)c->batch, k * sizeof(float))) ||
	    !(lab = sk_alloc_array((size_t)cap, sizeof(int32_t))))
		goto out;
	if (c->metrics && !(r->confusion = calloc(k * k, sizeof(int64_t)))) {
		sk_error("out of memory");
		goto out;
	}
	for (;;) {
		int64_t n, shape4[4];
		const float *x;
		const int32_t *y;
		st = sk_chunks_next(in, &n, &x, &y, shape4);
		if (st < 0)
			goto out;
		if (st == 0)
			break;
		nchunk++;
		{
			/* the exact shape, as snet-train checks it: 4x14x14 or N x 784
			 * data into a 1x28x28 model is a mistake, not a reshape */
			int nd = 0, same;
			while (nd < 4 && shape4[nd] > 0)
				nd++;
			same = nd == m->in.n;
			for (int d = 0; same && d < nd; d++)
				same = shape4[d] == m->in.d[d];
			if (!same) {
				char a[64], b[64];
				sk_error("chunk %lld: examples are %s but the model's input is %s", (long long)nchunk,
				         sk_shape_str(nd, shape4, a, sizeof a), sk_shape_fmt(m->in, b, sizeof b));
				goto out;
			}
		}
		if (c->metrics && !y) {
			sk_error("chunk %lld has no labels (metrics need labelled data)", (long long)nchunk);
			goto out;
		}
		for (int64_t s = 0; s < n;) {
			int b = (int)(n - s < c->batch ? n - s : c->batch);
			if (rows + b > cap)
				b = (int)(cap - rows);
			const float *xb = x + (size_t)s * insz;
			float *dst = buf + (size_t)rows * width;
			/* the scores: into the output rows, or aside for labels and metrics */
			float *z = !layer && c->output != SK_OUT_LABELS ? dst : logits;
			if (sk_engine_forward(eng, b, xb, !layer || c->metrics ? z : NULL, layer ? dst : NULL) < 0)
				goto out;
			if (!layer || c->metrics) {
				for (int i = 0; i < b; i++) {
					const float *zi = z + (size_t)i * k;
					int am = sk_argmax((int)k, zi);
					lab[rows + i] = am;
					if (c->metrics) {
						int32_t t = y[s + i];
						if (t < 0 || (size_t)t >= k) {
							sk_error("chunk %lld: example %lld has label %d, outside 0..%zu", (long long)nchunk,
							         (long long)(s + i), t, k - 1);
							goto out;
						}
						double mx = zi[am], sum = 0;
						for (size_t j = 0; j < k; j++)
							sum += exp((double)zi[j] - mx);
						r->loss += mx + log(sum) - (double)zi[t];
						r->correct += am == t;
						r->confusion[(size_t)t * k + (size_t)am]++;
						r->nlabelled++;
					}
				}
			}
			if (c->dataset && layer && y)   /* the labels go with the features */
				memcpy(lab + rows, y + s, sizeof(int32_t) * (size_t)b);
			if (!layer && c->output == SK_OUT_PROBS)
				sk_softmax(b, (int)k, dst, dst);
			rows += b;
			s += b;
			r->n += b;
			if (rows == cap) {
				if (flush_rows(c, m, width, rows, buf, lab, y != NULL) < 0)
					goto out;
				rows = 0;
			}
		}
		/* one output record per input chunk (or per `cap` rows) */
		if (flush_rows(c, m, width, rows, buf, lab, y != NULL) < 0)
			goto out;
		rows = 0;
	}
	rc = 0;
out:
	if (rc < 0) {
		free(r->confusion);
		r->confusion = NULL;
	}
	sk_free(buf);
	sk_free(logits);
	sk_free(lab);
	sk_engine_free(eng);
	return rc;
}
