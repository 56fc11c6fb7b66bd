/* dropout.c: `dropout p=P`: in training, zero each value with probability P
 * and scale the survivors by 1/(1-P); identity in evaluation.
 *
 * The mask is a pure function of (ctx->seed, ctx->step, the layer's name,
 * global example index, position), drawn from the counter-based sk_rng, so
 * it does not depend on how a batch is split among threads; backward
 * recomputes it instead of storing it. */
#include "sk_layer.h"
#include "sk_rng.h"

#include <string.h>

typedef struct dropout {
	float p;
	uint32_t thresh;   /* drop when the 32-bit draw is below this */
	uint64_t key;      /* hash of the layer name */
} dropout;

static int dropout_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	dropout *d = sk_alloc(sizeof *d);
	if (!d)
		return -1;
	l->priv = d;
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	if (sk_opt_float(s, o, "p", 0.5f, &d->p) < 0)
		return -1;
	if (!(d->p >= 0 && d->p < 1))
		return sk_spec_error(s, o, "p=%g must be in [0, 1)", (double)d->p);
	d->thresh = (uint32_t)((double)d->p * 4294967296.0);
	d->key = sk_rng_hash(l->name);
	l->out = l->in;
	l->flops = (double)sk_shape_size(l->in);
	return 0;
}

/* y = mask * x / (1 - p); used for both directions. */
static void apply(const sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const dropout *d = l->priv;
	size_t m = sk_shape_size(l->in);
	float keep = 1.0f / (1.0f - d->p);
	uint64_t stream = sk_rng_stream(0x64726f70ULL /* "drop" */, d->key, c->step);
	for (int i = 0; i < n; i++) {
		uint64_t base = (uint64_t)(c->example0 + i) * (uint64_t)((m + 1) / 2);
		const float *xi = x + (size_t)i * m;
		float *yi = y + (size_t)i * m;
		/* one 64-bit draw gives two 32-bit decisions */
		for (size_t j = 0; j < m; j += 2) {
			uint64_t r = sk_rng_u64(c->seed, stream, base + j / 2);
			yi[j] = (uint32_t)r < d->thresh ? 0.0f : xi[j] * keep;
			if (j + 1 < m)
				yi[j + 1] = (uint32_t)(r >> 32) < d->thresh ? 0.0f : xi[j + 1] * keep;
		}
	}
}

static int dropout_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const dropout *d = l->priv;
	if (!c->train || d->p == 0) {
		memcpy(y, x, sizeof(float) * sk_shape_size(l->in) * (size_t)n);
		return 0;
	}
	apply(l, c, n, x, y);
	return 0;
}

static int dropout_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                            float *dx)
{
	const dropout *d = l->priv;
	(void)x;
	(void)y;
	if (!dx)
		return 0;
	if (!c->train || d->p == 0) {
		memcpy(dx, dy, sizeof(float) * sk_shape_size(l->in) * (size_t)n);
		return 0;
	}
	apply(l, c, n, dy, dx);
	return 0;
}

static void dropout_destroy(sk_layer *l) { sk_free(l->priv); }

const sk_layer_ops sk_layer_dropout = {
	.type = "dropout",
	.synopsis = "dropout p=P",
	.create = dropout_create,
	.forward = dropout_forward,
	.backward = dropout_backward,
	.destroy = dropout_destroy,
};
