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
	pool *p = sk_alloc(sizeof *p);
	const char *kind;
	int k, stride, pad;
	if (!p)
		return -1;
	l->priv = p;
	if (sk_opt_pos_str(s, o, 0, 1, NULL, &kind) < 0 || sk_opt_int(s, o, "k", 0, &k) < 0 ||
	    sk_opt_int(s, o, "stride", k, &stride) < 0 || sk_opt_int(s, o, "pad", 0, &pad) < 0)
		return -1;
	if (o->npos > 1)
		return sk_spec_error(s, o, "takes one positional argument (max, avg or sum), got %d", o->npos);
	if (!strcmp(kind, "max"))
		p->max = 1;
	else if (strcmp(kind, "avg") && strcmp(kind, "sum"))
		return sk_spec_error(s, o, "unknown kind '%s' (known: %s %s %s)", kind, kinds[0], kinds[1], kinds[2]);
	if (l->in.n != 3)
		return sk_spec_error(s, o, "needs a CxHxW input, got %d dimensions", l->in.n);
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
	sk_free(p->arg);
	p->arg = NULL;
	if (!p->max)
		return 0;
	if (sk_mul_size(sk_shape_size(l->out), (size_t)max_batch, &n) < 0 || !(p->arg = sk_alloc_array(n, sizeof(int32_t))))
		return -1;
	return 0;
}

static int pool_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	pool *p = l->priv;
	const sk_conv_geom *g = &p->g;
	const int k = g->k, s = g->stride, pd = g->pad, h = g->h, w = g->w;
	const float inv = p->scale;
	size_t oi = 0;
	(void)c;
	if (p->max && k == 2 && s == 2 && pd == 0) {
		/* the common 2x2 window: a vector kernel per plane */
		size_t plane = (size_t)g->oh * g->ow;
		for (size_t pl = 0; pl < (size_t)n * g->c; pl++)
			sk_maxpool2(x + pl * h * w, w, g->oh, g->ow, y + pl * plane, p->arg + pl * plane);
		return 0;
	}
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < g->c; ch++) {
			const float *xc = x + ((size_t)i * g->c + ch) * h * w;
			for (int oy = 0; oy < g->oh; oy++) {
				int y0 = oy * s - pd, y1 = y0 + k;
				if (y0 < 0) y0 = 0;
				if (y1 > h) y1 = h;
				for (int ox = 0; ox < g->ow; ox++, oi++) {
					int x0 = ox * s - pd, x1 = x0 + k;
					if (x0 < 0) x0 = 0;
					if (x1 > w) x1 = w;
					if (p->max) {
						float m = -FLT_MAX;
						int32_t at = y0 * w + x0;
						for (int iy = y0; iy < y1; iy++)
							for (int ix = x0; ix < x1; ix++)
								if (xc[iy * w + ix] > m) {
									m = xc[iy * w + ix];
									at = iy * w + ix;
								}
						y[oi] = m;
						p->arg[oi] = at;
					} else {
						float t = 0;
						for (int iy = y0; iy < y1; iy++)
							for (int ix = x0; ix < x1; ix++)
								t += xc[iy * w + ix];
						y[oi] = t * inv;
					}
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
	const int k = g->k, s = g->stride, pd = g->pad, h = g->h, w = g->w;
	const float inv = p->scale;
	size_t oi = 0;
	(void)c;
	(void)x;
	(void)y;
	if (!dx)
		return 0;
	memset(dx, 0, sizeof(float) * sk_shape_size(l->in) * (size_t)n);
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < g->c; ch++) {
			float *dc = dx + ((size_t)i * g->c + ch) * h * w;
			if (p->max) {
				for (int j = 0; j < g->oh * g->ow; j++, oi++)
					dc[p->arg[oi]] += dy[oi];
				continue;
			}
			for (int oy = 0; oy < g->oh; oy++) {
				int y0 = oy * s - pd, y1 = y0 + k;
				if (y0 < 0) y0 = 0;
				if (y1 > h) y1 = h;
				for (int ox = 0; ox < g->ow; ox++, oi++) {
					int x0 = ox * s - pd, x1 = x0 + k;
					float d = dy[oi] * inv;
					if (x0 < 0) x0 = 0;
					if (x1 > w) x1 = w;
					for (int iy = y0; iy < y1; iy++)
						for (int ix = x0; ix < x1; ix++)
							dc[iy * w + ix] += d;
				}
			}
		}
	return 0;
}

static void pool_destroy(sk_layer *l)
{
	pool *p = l->priv;
	if (p)
		sk_free(p->arg);
	sk_free(p);
}

const sk_layer_ops sk_layer_pool = {
	.type = "pool",
	.synopsis = "pool max|avg|sum k=K [stride=S] [pad=P]",
	.create = pool_create,
	.setup = pool_setup,
	.forward = pool_forward,
	.backward = pool_backward,
	.destroy = pool_destroy,
};
