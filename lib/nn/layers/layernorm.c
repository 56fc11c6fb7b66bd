/* layernorm.c: layer normalisation over the last dimension of each example
 * (the rows of a T x D set, or a whole D vector): y = (x - mean) / sqrt(var +
 * 1e-5) * g + b, with the population variance of the row.  The row kernels are
 * shared with the attention blocks (sk_attn.h).
 */
#include "sk_attn.h"

#include <math.h>

/* Layer normalisation over rows of d, in place allowed (y may equal x). */
void sk_ln_forward(size_t rows, int d, const float *x, const float *g, const float *b, float *xhat, float *rstd,
                       float *y)
{
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * (size_t)d;
		double mu = 0, var = 0;
		for (int j = 0; j < d; j++)
			mu += xr[j];
		mu /= d;
		for (int j = 0; j < d; j++)
			var += (xr[j] - mu) * (xr[j] - mu);
		var /= d;
		float rs = (float)(1.0 / sqrt(var + 1e-5));
		rstd[r] = rs;
		for (int j = 0; j < d; j++) {
			float xh = (float)(xr[j] - mu) * rs;
			xhat[r * (size_t)d + (size_t)j] = xh;
			y[r * (size_t)d + (size_t)j] = xh * g[j] + b[j];
		}
	}
}

/* dx may equal dy. */
void sk_ln_backward(size_t rows, int d, const float *dy, const float *xhat, const float *rstd, const float *g,
                        float *dg, float *db, float *dx)
{
	for (size_t r = 0; r < rows; r++) {
		const float *dr = dy + r * (size_t)d, *xh = xhat + r * (size_t)d;
		double m1 = 0, m2 = 0;
		for (int j = 0; j < d; j++) {
			float dxh = dr[j] * g[j];
			if (dg)
				dg[j] += dr[j] * xh[j];
			if (db)
				db[j] += dr[j];
			m1 += dxh;
			m2 += dxh * xh[j];
		}
		m1 /= d;
		m2 /= d;
		for (int j = 0; j < d; j++) {
			float dxh = dr[j] * g[j];
			dx[r * (size_t)d + (size_t)j] = rstd[r] * (dxh - (float)m1 - xh[j] * (float)m2);
		}
	}
}

typedef struct lnorm {
	float *xhat, *rstd;
	int d;
	size_t rows;   /* per example */
} lnorm;

static int layernorm_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	lnorm *p = l->priv;
	int64_t sh[1];
	(void)s;
	(void)o;
	p->d = l->in.d[l->in.n - 1];
	p->rows = sk_shape_size(l->in) / (size_t)p->d;
	sh[0] = p->d;
	if (sk_layer_param(l, "g", 1, sh, SK_INIT_ONE, 0, p->d, p->d, SK_P_NODECAY) < 0 ||
	    sk_layer_param(l, "b", 1, sh, SK_INIT_ZERO, 0, p->d, p->d, SK_P_NODECAY) < 0)
		return -1;
	l->out = l->in;
	l->flops = 8.0 * (double)sk_shape_size(l->in);
	return 0;
}

static int layernorm_setup(sk_layer *l, int max_batch)
{
	lnorm *p = l->priv;
	sk_part parts[] = {SK_PART(p->xhat, sk_shape_size(l->in) * (size_t)max_batch),
	                   SK_PART(p->rstd, p->rows * (size_t)max_batch)};
	return sk_layer_parts(l, 2, parts);
}

static int layernorm_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	lnorm *p = l->priv;
	(void)c;
	sk_ln_forward(p->rows * (size_t)n, p->d, x, l->params[0].w, l->params[1].w, p->xhat, p->rstd, y);
	return 0;
}

static int layernorm_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                              float *dx)
{
	lnorm *p = l->priv;
	(void)c;
	(void)x;
	(void)y;
	if (dx)
		sk_ln_backward(p->rows * (size_t)n, p->d, dy, p->xhat, p->rstd, l->params[0].w, l->params[0].g,
		            l->params[1].g, dx);
	else {
		/* parameter gradients only */
		for (size_t r = 0; r < p->rows * (size_t)n; r++)
			for (int j = 0; j < p->d; j++) {
				l->params[0].g[j] += dy[r * p->d + j] * p->xhat[r * p->d + j];
				l->params[1].g[j] += dy[r * p->d + j];
			}
	}
	return 0;
}

SK_LAYER(layernorm, "layernorm   (normalise each row over the last dimension; gain g, shift b)",
         .setup = layernorm_setup, .priv_size = sizeof(lnorm));
