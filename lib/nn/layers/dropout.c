/* dropout.c: `dropout p=P`: in training, zero each value with probability P
 * and scale the survivors by 1/(1-P); identity in evaluation.
 *
 * The mask is a pure function of (ctx->seed, ctx->step, the layer's name,
 * global example index, position), a counter-based draw keyed by sk_rng, so
 * it does not depend on how a batch is split among threads; backward
 * recomputes it instead of storing it.  P is used at a resolution of
 * 1/65536 and the survivors' scale matches the rate actually used. */
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_rng.h"

#include <string.h>

typedef struct dropout {
	float p;
	uint32_t thresh;   /* drop when a 16-bit draw is below this */
	float keep;        /* 1 / (1 - thresh / 65536): exact for the quantised p */
	uint64_t key;      /* hash of the layer name */
} dropout;

static int dropout_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	dropout *d = l->priv;
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	if (sk_opt_float(s, o, "p", 0.5f, &d->p) < 0)
		return -1;
	if (!(d->p >= 0 && d->p < 1))
		return sk_spec_error(s, o, "p=%g must be in [0, 1)", (double)d->p);
	d->thresh = (uint32_t)((double)d->p * 65536.0 + 0.5);
	if (d->thresh > 65535)
		d->thresh = 65535;
	d->keep = (float)(65536.0 / (65536.0 - d->thresh));
	d->key = sk_rng_hash(l->name);
	l->out = l->in;
	l->flops = (double)sk_shape_size(l->in);
	return 0;
}

/* y = mask * x * keep; used for both directions.  One key per (seed, step,
 * layer) from sk_rng, then one SplitMix64 draw per 4 values of an example
 * (sk_vdropout): each 16-bit quarter decides one value (drop below thresh). */
static void apply(const sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const dropout *d = l->priv;
	size_t m = sk_shape_size(l->in), per = (m + 3) / 4;
	uint64_t key = sk_rng_u64(c->seed, sk_rng_stream(0x64726f70ULL /* "drop" */, d->key, c->step), 0);
	for (int i = 0; i < n; i++)
		sk_vdropout(m, key, (uint64_t)(c->example0 + i) * (uint64_t)per, d->thresh, d->keep, x + (size_t)i * m,
		            y + (size_t)i * m);
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

SK_LAYER(dropout, "dropout p=P", .priv_size = sizeof(dropout));
