/* conv.c: 2-D convolution, `conv OUT k=K [stride=S] [pad=P] [bias=1]
 * [init=he|xavier|normal|uniform] [scale=A] [bias_init=V]`.
 *
 * Weights are O x C x K x K.  Forward and backward unfold a group of images
 * at a time into a (C*K*K) x (G*P) column matrix (P = output pixels) and run
 * one OpenBLAS sgemm per group: grouping turns the many tiny per-image
 * products of small networks into a few well-shaped ones while the columns
 * stay in cache.  1x1 convolutions with stride 1 and no padding use the
 * image itself as the column matrix.  FLOPs count 2 per multiply-add (bias
 * additions are not counted, the convention of the papers' budgets).
 */
#include "sk_kernels.h"
#include "sk_layer.h"

#include <stdlib.h>
#include <string.h>

typedef struct conv {
	sk_conv_geom g;
	int o, bias, ckk, p;   /* out channels, bias flag, rows of col, output pixels */
	int group;             /* images unfolded together */
	int direct;            /* 1x1, stride 1, no padding: no unfolding */
	float *col;            /* ckk x group*p (columns, then their gradient) */
	float *ybuf;           /* o x group*p */
} conv;

static const char *const init_names[] = {"he", "xavier", "normal", "uniform", NULL};
static const int init_kinds[] = {SK_INIT_HE, SK_INIT_XAVIER, SK_INIT_NORMAL, SK_INIT_UNIFORM};
static const float init_scale[] = {1.0f, 1.0f, 0.01f, 0.05f};

static int conv_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	conv *c = sk_alloc(sizeof *c);
	int out, k, stride, pad, init;
	float scale, binit;
	if (!c)
		return -1;
	l->priv = c;
	if (sk_opt_pos_int(s, o, 0, 1, 0, &out) < 0 || sk_opt_int(s, o, "k", 0, &k) < 0 ||
	    sk_opt_int(s, o, "stride", 1, &stride) < 0 || sk_opt_int(s, o, "pad", 0, &pad) < 0 ||
	    sk_opt_int(s, o, "bias", 1, &c->bias) < 0 || sk_opt_choice(s, o, "init", init_names, 0, &init) < 0 ||
	    sk_opt_float(s, o, "scale", init_scale[init], &scale) < 0 ||
	    sk_opt_float(s, o, "bias_init", 0.0f, &binit) < 0)
		return -1;
	if (o->npos > 1)
		return sk_spec_error(s, o, "takes one positional argument (OUT), got %d", o->npos);
	if (l->in.n != 3)
		return sk_spec_error(s, o, "needs a CxHxW input, got %d dimensions", l->in.n);
	if (out < 1 || out > 65536)
		return sk_spec_error(s, o, "OUT=%d must be in 1..65536", out);
	if (k < 1)
		return sk_spec_error(s, o, "needs k=K with K >= 1");
	if (pad >= k)
		return sk_spec_error(s, o, "pad=%d must be smaller than k=%d", pad, k);
	if (sk_conv_geom_init(&c->g, l->in.d[0], l->in.d[1], l->in.d[2], k, stride, pad) < 0)
		return sk_spec_error(s, o, "%s", sk_errmsg());
	c->o = out;
	c->bias = c->bias != 0;
	c->ckk = c->g.c * k * k;
	c->p = c->g.oh * c->g.ow;
	c->direct = k == 1 && stride == 1 && pad == 0;
	l->out = sk_shape3(out, c->g.oh, c->g.ow);
	l->flops = 2.0 * out * (double)c->ckk * c->p;
	int64_t wshape[4] = {out, c->g.c, k, k}, bshape[1] = {out};
	if (sk_layer_param(l, "w", 4, wshape, init_kinds[init], scale, c->ckk, out * k * k, 0) < 0)
		return -1;
	if (c->bias && sk_layer_param(l, "b", 1, bshape, binit == 0 ? SK_INIT_ZERO : SK_INIT_CONST, binit, 0, 0,
	                              SK_P_NODECAY) < 0)
		return -1;
	return 0;
}

/* Images per group: enough columns for sgemm to run near its peak, few
 * enough that the column matrix stays in L2.  SK_CONV_COLS overrides the
 * target (benchmarks). */
static int choose_group(const conv *c, int max_batch)
{
	static int target = -1;
	if (target < 0) {
		const char *e = getenv("SK_CONV_COLS");
		int t = e ? atoi(e) : 0;
		target = t > 0 ? t : 384;
	}
	int g = (target + c->p - 1) / c->p;
	size_t cap = (size_t)1 << 19; /* floats of columns: 2 MiB */
	while (g > 1 && (size_t)g * c->p * (size_t)c->ckk > cap)
		g--;
	if (g > max_batch)
		g = max_batch;
	return g < 1 ? 1 : g;
}

static int conv_setup(sk_layer *l, int max_batch)
{
	conv *c = l->priv;
	size_t n;
	sk_free(c->col);
	sk_free(c->ybuf);
	c->col = c->ybuf = NULL;
	c->group = choose_group(c, max_batch);
	if (sk_mul_size((size_t)c->ckk, (size_t)c->group * c->p, &n) < 0 || !(c->col = sk_alloc_array(n, sizeof(float))))
		return -1;
	if (c->group > 1 && (sk_mul_size((size_t)c->o, (size_t)c->group * c->p, &n) < 0 ||
	                     !(c->ybuf = sk_alloc_array(n, sizeof(float)))))
		return -1;
	return 0;
}

static int conv_forward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, float *y)
{
	conv *c = l->priv;
	const float *w = l->params[0].w, *b = c->bias ? l->params[1].w : NULL;
	size_t in = sk_shape_size(l->in), out = (size_t)c->o * c->p, P = (size_t)c->p;
	(void)ctx;
	for (int i0 = 0; i0 < n; i0 += c->group) {
		int gn = n - i0 < c->group ? n - i0 : c->group;
		size_t cols = (size_t)gn * P;
		const float *col = c->col;
		if (gn == 1) {
			if (c->direct)
				col = x + (size_t)i0 * in;
			else
				sk_im2col(&c->g, x + (size_t)i0 * in, c->col, P);
			float *yi = y + (size_t)i0 * out;
			sk_gemm(0, 0, c->o, (int)P, c->ckk, 1.0f, w, c->ckk, col, (int)P, 0.0f, yi, (int)P);
			if (b)
				sk_vadd_rows((size_t)c->o, P, b, yi);
			continue;
		}
		for (int g = 0; g < gn; g++) {
			const float *xi = x + (size_t)(i0 + g) * in;
			if (c->direct)
				for (int r = 0; r < c->ckk; r++)
					memcpy(c->col + (size_t)r * cols + g * P, xi + (size_t)r * P, P * sizeof(float));
			else
				sk_im2col(&c->g, xi, c->col + (size_t)g * P, cols);
		}
		sk_gemm(0, 0, c->o, (int)cols, c->ckk, 1.0f, w, c->ckk, c->col, (int)cols, 0.0f, c->ybuf, (int)cols);
		for (int g = 0; g < gn; g++) {
			float *yi = y + (size_t)(i0 + g) * out;
			for (int o = 0; o < c->o; o++) {
				const float *src = c->ybuf + (size_t)o * cols + g * P;
				float *dst = yi + (size_t)o * P, bo = b ? b[o] : 0.0f;
				for (size_t p = 0; p < P; p++)
					dst[p] = src[p] + bo;
			}
		}
	}
	return 0;
}

static int conv_backward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, const float *y, const float *dy,
                         float *dx)
{
	conv *c = l->priv;
	const float *w = l->params[0].w;
	float *gw = l->params[0].g, *gb = c->bias ? l->params[1].g : NULL;
	size_t in = sk_shape_size(l->in), out = (size_t)c->o * c->p, P = (size_t)c->p;
	(void)ctx;
	(void)y;
	for (int i0 = 0; i0 < n; i0 += c->group) {
		int gn = n - i0 < c->group ? n - i0 : c->group;
		size_t cols = (size_t)gn * P;
		const float *dyg, *col = c->col;
		if (gn == 1) {
			dyg = dy + (size_t)i0 * out;
			if (c->direct)
				col = x + (size_t)i0 * in;
			else
				sk_im2col(&c->g, x + (size_t)i0 * in, c->col, P);
		} else {
			for (int g = 0; g < gn; g++) {
				const float *xi = x + (size_t)(i0 + g) * in, *dyi = dy + (size_t)(i0 + g) * out;
				if (c->direct)
					for (int r = 0; r < c->ckk; r++)
						memcpy(c->col + (size_t)r * cols + g * P, xi + (size_t)r * P, P * sizeof(float));
				else
					sk_im2col(&c->g, xi, c->col + (size_t)g * P, cols);
				for (int o = 0; o < c->o; o++)
					memcpy(c->ybuf + (size_t)o * cols + g * P, dyi + (size_t)o * P, P * sizeof(float));
			}
			dyg = c->ybuf;
		}
		/* dW += dY col^T; db += row sums of dY */
		sk_gemm(0, 1, c->o, c->ckk, (int)cols, 1.0f, dyg, (int)cols, col, (int)cols, 1.0f, gw, c->ckk);
		if (gb)
			sk_vsum_rows((size_t)c->o, cols, dyg, gb);
		if (!dx)
			continue;
		/* dcol = W^T dY, folded back into the images */
		if (c->direct && gn == 1) {
			sk_gemm(1, 0, c->ckk, (int)P, c->o, 1.0f, w, c->ckk, dyg, (int)P, 0.0f, dx + (size_t)i0 * in, (int)P);
			continue;
		}
		sk_gemm(1, 0, c->ckk, (int)cols, c->o, 1.0f, w, c->ckk, dyg, (int)cols, 0.0f, c->col, (int)cols);
		for (int g = 0; g < gn; g++) {
			float *dxi = dx + (size_t)(i0 + g) * in;
			if (c->direct) {
				for (int r = 0; r < c->ckk; r++)
					memcpy(dxi + (size_t)r * P, c->col + (size_t)r * cols + g * P, P * sizeof(float));
			} else {
				memset(dxi, 0, in * sizeof(float));
				sk_col2im(&c->g, c->col + (size_t)g * P, cols, dxi);
			}
		}
	}
	return 0;
}

static void conv_destroy(sk_layer *l)
{
	conv *c = l->priv;
	if (!c)
		return;
	sk_free(c->col);
	sk_free(c->ybuf);
	sk_free(c);
}

const sk_layer_ops sk_layer_conv = {
	.type = "conv",
	.synopsis = "conv OUT k=K [stride=S] [pad=P] [bias=1] [init=he|xavier|normal|uniform] [scale=A] [bias_init=V]",
	.create = conv_create,
	.setup = conv_setup,
	.forward = conv_forward,
	.backward = conv_backward,
	.destroy = conv_destroy,
};
