/* maxmin.c: MaxMin (Blot, Cord, Thome 2016): keep both signs of a response.
 *
 * y = concat(x, -x) over the channel dimension, so a following ReLU and max
 * pooling keep each map's strongest positive and strongest negative
 * response.  With relu=1 the rectification is fused:
 * y = concat(max(x, 0), max(-x, 0)).
 *
 * The channel dimension is the first of a C x H x W example, the last of a
 * T x D set and the only one of a feature vector; it doubles, the others
 * are unchanged.  Backward: dx = dy[first half] - dy[second half] (each
 * masked by the sign of x when fused; zero at x = 0). */
#include "sk_layer.h"

typedef struct maxmin {
	int relu;
	size_t outer, chan, inner;   /* per example: outer x chan x inner */
} maxmin;

static int maxmin_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	maxmin *m = l->priv;
	if (sk_opt_int(s, o, "relu", 0, &m->relu) < 0)
		return -1;
	if (m->relu != 0 && m->relu != 1)
		return sk_spec_error(s, o, "relu=%d must be 0 or 1", m->relu);
	l->out = l->in;
	switch (l->in.n) {
	case 3:
		m->outer = 1;
		m->chan = (size_t)l->in.d[0];
		m->inner = (size_t)l->in.d[1] * (size_t)l->in.d[2];
		break;
	case 2:
		m->outer = (size_t)l->in.d[0];
		m->chan = (size_t)l->in.d[1];
		m->inner = 1;
		break;
	case 1:
		m->outer = 1;
		m->chan = (size_t)l->in.d[0];
		m->inner = 1;
		break;
	default:
		return sk_spec_error(s, o, "input must have 1 to 3 dimensions, not %d", l->in.n);
	}
	int cd = l->in.n == 2 ? 1 : 0;
	if (l->in.d[cd] > (1 << 30))
		return sk_spec_error(s, o, "%d channels is too many to double", l->in.d[cd]);
	l->out.d[cd] *= 2;
	/* negation (and rectification): one operation per output element */
	l->flops = (double)sk_shape_size(l->out);
	return 0;
}

static int maxmin_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const maxmin *m = l->priv;
	size_t blk = m->chan * m->inner, rows = m->outer * (size_t)n;
	(void)c;
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * blk;
		float *pos = y + 2 * r * blk, *neg = pos + blk;
		if (m->relu)
			for (size_t i = 0; i < blk; i++) {
				float v = xr[i];
				pos[i] = v > 0 ? v : 0;
				neg[i] = v < 0 ? -v : 0;
			}
		else
			for (size_t i = 0; i < blk; i++) {
				pos[i] = xr[i];
				neg[i] = -xr[i];
			}
	}
	return 0;
}

static int maxmin_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                           float *dx)
{
	const maxmin *m = l->priv;
	size_t blk = m->chan * m->inner, rows = m->outer * (size_t)n;
	(void)c;
	(void)y;
	if (!dx)
		return 0;
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * blk, *gp = dy + 2 * r * blk, *gn = gp + blk;
		float *d = dx + r * blk;
		if (m->relu)
			for (size_t i = 0; i < blk; i++)
				d[i] = xr[i] > 0 ? gp[i] : xr[i] < 0 ? -gn[i] : 0;
		else
			for (size_t i = 0; i < blk; i++)
				d[i] = gp[i] - gn[i];
	}
	return 0;
}

SK_LAYER(maxmin, "maxmin [relu=0|1]", .priv_size = sizeof(maxmin));
