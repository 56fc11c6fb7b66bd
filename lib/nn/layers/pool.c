/* pool.c: max, average and sum pooling, `pool max|avg|sum k=K [stride=S] [pad=P]`.
 *
 * stride defaults to K.  Max pooling ignores the padding (as if -inf) and
 * remembers the arg-max of each window for backward; average pooling divides
 * by K*K, padding included (PyTorch's default); sum pooling adds the window
 * (SimNets: a sum of log-densities multiplies the likelihoods of
 * independent regions).  pad must be at most K/2.
 */
#include "sk_kernels.h"
#include "sk_layer.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

typedef struct pool {
	sk_conv_geom g;
	int max;
	float scale;    /* avg: 1/(K*K); sum: 1 */
	int32_t *arg;   /* max: input offset (within the image) of each output's maximum */
} pool;

static const char *const kinds[] = {"max", "avg", "sum", NULL};

static int pool_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	pool *p = l->priv;
	const char *kind;
	int k, stride, pad;
	if (sk_opt_pos_str(s, o, 0, 1, NULL, &kind) < 0 || sk_opt_int(s, o, "k", 0, &k) < 0 ||
	    sk_opt_int(s, o, "stride", k, &stride) < 0 || sk_opt_int(s, o, "pad", 0, &pad) < 0)
		return -1;
	if (o->npos > 1)
		return sk_spec_error(s, o, "takes one positional argument (max, avg or sum), got %d", o->npos);
	if (!strcmp(kind, "max"))
		p->max = 1;
	else if (strcmp(kind, "avg") && strcmp(kind, "sum"))
		return sk_spec_error(s, o, "unknown kind '%s' (known: %s %s %s)", kind, kinds[0], kinds[1], kinds[2]);
	if (k < 1)
		return sk_spec_error(s, o, "needs k=K with K >= 1");
	if (pad > k / 2)
		return sk_spec_error(s, o, "pad=%d must be at most k/2 = %d", pad, k / 2);
	if (sk_conv_geom_init(&p->g, l->in.d[0], l->in.d[1], l->in.d[2], k, stride, pad) < 0)
		return sk_spec_error(s, o, "%s", sk_errmsg());
	p->scale = strcmp(kind, "sum") ? 1.0f / ((float)k * (float)k) : 1.0f;
	l->out = sk_shape3(p->g.c, p->g.oh, p->g.ow);
	l->flops = (double)sk_shape_size(l->out) * k * k;
	return 0;
}

static int pool_setup(sk_layer *l, int max_batch)
{
	pool *p = l->priv;
	size_t n;
	if (!p->max)
		return 0;
	if (sk_mul_size(sk_shape_size(l->out), (size_t)max_batch, &n) < 0)
		return -1;
	sk_part arg[] = {SK_PART(p->arg, n)};
	return sk_layer_parts(l, 1, arg);
}

/* The window of output (oy, ox) of a plane, clipped to the image: rows
 * y0..y1-1, columns x0..x1-1. */
typedef struct window {
	int y0, y1, x0, x1;
} window;

static window window_at(const sk_conv_geom *g, int oy, int ox)
{
	window r = {oy * g->stride - g->pad, 0, ox * g->stride - g->pad, 0};
	r.y1 = r.y0 + g->k < g->h ? r.y0 + g->k : g->h;
	r.x1 = r.x0 + g->k < g->w ? r.x0 + g->k : g->w;
	r.y0 = r.y0 < 0 ? 0 : r.y0;
	r.x0 = r.x0 < 0 ? 0 : r.x0;
	return r;
}

static int pool_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	pool *p = l->priv;
	const sk_conv_geom *g = &p->g;
	const int w = g->w;
	size_t plane = (size_t)g->oh * g->ow, hw = (size_t)g->h * w;
	(void)c;
	for (size_t pl = 0; pl < (size_t)n * g->c; pl++) {
		const float *xc = x + pl * hw;
		float *yc = y + pl * plane;
		int32_t *arg = p->max ? p->arg + pl * plane : NULL;
		if (p->max && g->k == 2 && g->stride == 2 && g->pad == 0) {
			sk_maxpool2(xc, w, g->oh, g->ow, yc, arg);   /* the common 2x2 window: a vector kernel */
			continue;
		}
		for (size_t j = 0; j < plane; j++) {
			window r = window_at(g, (int)(j / (size_t)g->ow), (int)(j % (size_t)g->ow));
			if (p->max) {
				float m = -FLT_MAX;
				int32_t at = r.y0 * w + r.x0;
				for (int iy = r.y0; iy < r.y1; iy++)
					for (int ix = r.x0; ix < r.x1; ix++)
						if (xc[iy * w + ix] > m) {
							m = xc[iy * w + ix];
							at = iy * w + ix;
						}
				yc[j] = m;
				arg[j] = at;
			} else {
				float t = 0;
				for (int iy = r.y0; iy < r.y1; iy++)
					for (int ix = r.x0; ix < r.x1; ix++)
						t += xc[iy * w + ix];
				yc[j] = t * p->scale;
			}
		}
	}
	return 0;
}

static int pool_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                         float *dx)
{
	pool *p = l->priv;
	const sk_conv_geom *g = &p->g;
	const int w = g->w;
	size_t plane = (size_t)g->oh * g->ow, hw = (size_t)g->h * w;
	(void)c;
	(void)x;
	(void)y;
	if (!dx)
		return 0;
	memset(dx, 0, sizeof(float) * sk_shape_size(l->in) * (size_t)n);
	for (size_t pl = 0; pl < (size_t)n * g->c; pl++) {
		float *dc = dx + pl * hw;
		const float *dyc = dy + pl * plane;
		for (size_t j = 0; j < plane; j++) {
			if (p->max) {
				dc[p->arg[pl * plane + j]] += dyc[j];
				continue;
			}
			window r = window_at(g, (int)(j / (size_t)g->ow), (int)(j % (size_t)g->ow));
			float d = dyc[j] * p->scale;
			for (int iy = r.y0; iy < r.y1; iy++)
				for (int ix = r.x0; ix < r.x1; ix++)
					dc[iy * w + ix] += d;
		}
	}
	return 0;
}

SK_LAYER(pool, "pool max|avg|sum k=K [stride=S] [pad=P]",
         .setup = pool_setup, .priv_size = sizeof(pool), .in_dims = 3);
