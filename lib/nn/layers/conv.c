/* conv.c: 2-D convolution, `conv OUT k=K [stride=S] [pad=P] [bias=1]
 * [init=he|xavier|normal|uniform] [scale=A] [bias_init=V]`.
 *
 * Weights are O x C x K x K.  Forward and backward unfold a group of images
 * at a time into a (C*K*K) x (G*P) column matrix (P = output pixels) and run
 * one OpenBLAS sgemm per group: grouping turns the many tiny per-image
 * products of small networks into a few well-shaped ones while the columns
 * stay in cache.  1x1 convolutions with stride 1 and no padding use the
 * image itself as the column matrix.  With AVX-512, direct kernels run
 * instead: 16 output channels per vector for k <= 5 (sk_dconv_*), or 16
 * output pixels per vector for stride 1 and at most 8 outputs (sk_pconv_*):
 * measured 1.3-4x faster than im2col + sgemm on the zoo, LeNet and ResNet-20
 * shapes at batch 64 (scripts/bench-conv).  3x3 stride-1 convolutions with at
 * least 16 channels each way go through Winograd's F(4x4,3x3) instead
 * (lib/kernels/winograd.c; sk_wino_choose() holds the rule, algo=winograd and
 * SK_WINOGRAD force it either way).  FLOPs count 2 per multiply-add (bias
 * additions are not counted, the convention of the papers' budgets).
 */
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_plan.h"
#include "sk_winograd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conv {
	sk_conv_geom g;
	int o, bias, ckk, p;   /* out channels, bias flag, rows of col, output pixels */
	int group;             /* images unfolded together */
	int direct;            /* 1x1, stride 1, no padding: no unfolding */
	float *col;            /* ckk x group*p (columns, then their gradient) */
	float *ybuf;           /* o x group*p */
	/* direct path (AVX-512, 16 channels per vector) */
	int algo;              /* 0 auto, 1 gemm, 2 direct, 3 pixel, 4 winograd */
	int wtile;             /* Winograd tile: 0 by the rule, 2 or 4 */
	sk_wino *wino;         /* the Winograd plan, when it runs */
	int pv;                /* pixel-vector kernels (stride 1, few outputs) */
	int dc;                /* use it */
	int dxgemm;            /* few input channels: input gradient by sgemm + col2im */
	int hp, wp, kk, ob, cb;/* padded input extent, taps per channel, channel blocks */
	size_t imgp;           /* floats per padded image */
	int *toff, *poff, *pofft, *dyoff, *koff;
	float *xp;             /* group of padded images (pad > 0) */
	float *wt;             /* ob x ckk x 16: weights, output channels last */
	float *wd;             /* cb x kk x o x 16: weights, input channels last */
	float *tile;           /* group*p x 16 */
	float *dwt;            /* ob x ckk x 16 */
	float *dxt;            /* group*hp*wp x 16 */
	/* input gradient of stride-1 convolutions with few input channels: the
	 * gradient padded by k-1-pad, convolved with the flipped weights */
	int pdx, hq, wq, padq;
	float *dyp;            /* o x hq x wq */
	float *wflip;          /* c x o x k x k */
} conv;

static const char *const algo_names[] = {"auto", "gemm", "direct", "pixel", "winograd", NULL};

static int conv_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	conv *c = l->priv;
	int out, k, stride, pad;
	sk_affine_opts wb;
	if (sk_opt_count(s, o, "OUT", 65536, &out) < 0 || sk_opt_int(s, o, "k", 0, &k) < 0 ||
	    sk_opt_int(s, o, "stride", 1, &stride) < 0 || sk_opt_int(s, o, "pad", 0, &pad) < 0 ||
	    sk_opt_affine(s, o, &wb) < 0 || sk_opt_choice(s, o, "algo", algo_names, 0, &c->algo) < 0 ||
	    sk_opt_int(s, o, "wtile", 0, &c->wtile) < 0)
		return -1;
	if (k < 1)
		return sk_spec_error(s, o, "needs k=K with K >= 1");
	if (pad >= k)
		return sk_spec_error(s, o, "pad=%d must be smaller than k=%d", pad, k);
	if (c->algo == 3 && stride != 1)
		return sk_spec_error(s, o, "algo=pixel needs stride=1");
	if (c->algo == 4 && (k != 3 || stride != 1))
		return sk_spec_error(s, o, "algo=winograd needs k=3 and stride=1");
	if (c->wtile != 0 && c->wtile != 2 && c->wtile != 4)
		return sk_spec_error(s, o, "wtile=%d must be 2 or 4 (or 0: chosen per layer)", c->wtile);
	if (sk_conv_geom_init(&c->g, l->in.d[0], l->in.d[1], l->in.d[2], k, stride, pad) < 0)
		return sk_spec_error(s, o, "%s", sk_errmsg());
	if ((int64_t)out * c->g.c * k * k > (int64_t)SK_MAX_PARAM)
		return sk_spec_error(s, o, "OUT=%d with k=%d over %d channels is too many weights (more than %zu)", out, k,
		                     c->g.c, SK_MAX_PARAM);
	c->o = out;
	c->bias = wb.bias;
	c->ckk = c->g.c * k * k;
	c->p = c->g.oh * c->g.ow;
	c->direct = k == 1 && stride == 1 && pad == 0;
	c->kk = k * k;
	l->out = sk_shape3(out, c->g.oh, c->g.ow);
	l->flops = 2.0 * out * (double)c->ckk * c->p;
	int64_t wshape[4] = {out, c->g.c, k, k};
	return sk_layer_affine_params(l, &wb, 4, wshape, c->ckk, out * k * k);
}

/* Images per group: enough columns for sgemm to run near its peak, few
 * enough that the column matrix stays in L2.  SK_CONV_COLS overrides the
 * target (benchmarks). */
static int choose_group(const conv *c, int max_batch)
{
	const char *e = getenv("SK_CONV_COLS");
	int target = e && atoi(e) > 0 ? atoi(e) : 384;
	int g = (target + c->p - 1) / c->p;
	size_t cap = (size_t)1 << 19; /* floats of columns: 2 MiB */
	while (g > 1 && (size_t)g * c->p * (size_t)c->ckk > cap)
		g--;
	if (g > max_batch)
		g = max_batch;
	return g < 1 ? 1 : g;
}

/* dx = conv(dy padded by k-1-pad, flipped weights with in and out swapped),
 * on the pixel-vector kernel: for stride 1 and at most 8 input channels,
 * where channel lanes would idle and col2im is slow. */
static int setup_pdx(sk_layer *l)
{
	conv *c = l->priv;
	const sk_conv_geom *g = &c->g;
	if (g->stride != 1 || g->c > 8 || !sk_dconv_ok() || getenv("SK_DCONV_DX"))
		return 0;
	c->padq = g->k - 1 - g->pad;
	c->hq = g->oh + 2 * c->padq;
	c->wq = g->ow + 2 * c->padq;
	sk_part parts[] = {SK_PART(c->dyp, (size_t)c->o * c->hq * c->wq), SK_PART(c->wflip, (size_t)c->ckk * c->o)};
	if (sk_layer_parts(l, 2, parts) < 0)
		return -1;
	c->pdx = 1;
	return 0;
}

static void flip_weights(conv *c, const float *w)
{
	const int k = c->g.k, C = c->g.c;
	for (int o = 0; o < c->o; o++)
		for (int ci = 0; ci < C; ci++)
			for (int ki = 0; ki < k; ki++)
				for (int kj = 0; kj < k; kj++)
					c->wflip[(((size_t)ci * c->o + o) * k + (k - 1 - ki)) * k + (k - 1 - kj)] =
						w[(((size_t)o * C + ci) * k + ki) * k + kj];
}

static void dx_pixel(conv *c, const float *dyi, float *dxi)
{
	const sk_conv_geom *g = &c->g;
	for (int o = 0; o < c->o; o++)
		for (int r = 0; r < g->oh; r++)
			memcpy(c->dyp + ((size_t)o * c->hq + c->padq + r) * c->wq + c->padq, dyi + ((size_t)o * g->oh + r) * g->ow,
			       (size_t)g->ow * sizeof(float));
	sk_pconv_fwd(c->dyp, c->o, c->hq, c->wq, g->k, g->h, g->w, g->c, c->wflip, NULL, dxi);
}

/* The direct kernels: by default for k <= 5 when AVX-512 is there
 * (SK_CONV=gemm or algo=gemm turns them off; algo=direct forces them, with
 * portable C kernels when there is no AVX-512).  Pixels of a group of images form one list, so that even 2x2
 * outputs fill the kernels' register blocks. */
static int setup_direct(sk_layer *l, int max_batch)
{
	conv *c = l->priv;
	const sk_conv_geom *g = &c->g;
	const char *e = getenv("SK_DCONV_PIX");
	int target = e && atoi(e) > 0 ? atoi(e) : 256;
	c->hp = g->h + 2 * g->pad;
	c->wp = g->w + 2 * g->pad;
	c->imgp = (size_t)g->c * c->hp * c->wp;
	c->ob = (c->o + 15) / 16;
	c->cb = (g->c + 15) / 16;
	int G = (target + c->p - 1) / c->p;
	if (G > max_batch)
		G = max_batch;
	if (G < 1)
		G = 1;
	if ((double)G * c->imgp > 1e9 || (double)G * c->o * c->p > 1e9 || (double)G * c->hp * c->wp * 16 > 1e9)
		return 0;
	c->group = G;
	size_t np = (size_t)G * c->p;
	sk_part parts[] = {
		SK_PART(c->toff, (size_t)c->ckk), SK_PART(c->poff, np), SK_PART(c->pofft, np), SK_PART(c->dyoff, np),
		SK_PART(c->koff, (size_t)c->kk), SK_PART(c->xp, g->pad ? (size_t)G * c->imgp : 0),
		SK_PART(c->wt, (size_t)c->ob * c->ckk * 16), SK_PART(c->wd, (size_t)c->cb * c->kk * c->o * 16),
		SK_PART(c->tile, np * 16), SK_PART(c->dwt, (size_t)c->ob * c->ckk * 16),
		SK_PART(c->dxt, (size_t)G * c->hp * c->wp * 16),
	};
	if (sk_layer_parts(l, (int)(sizeof parts / sizeof *parts), parts) < 0)
		return -1;
	for (int ci = 0; ci < g->c; ci++)
		for (int ki = 0; ki < g->k; ki++)
			for (int kj = 0; kj < g->k; kj++)
				c->toff[(ci * g->k + ki) * g->k + kj] = (ci * c->hp + ki) * c->wp + kj;
	for (int ki = 0; ki < g->k; ki++)
		for (int kj = 0; kj < g->k; kj++)
			c->koff[ki * g->k + kj] = ki * c->wp + kj;
	for (int gi = 0, i = 0; gi < G; gi++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int ox = 0; ox < g->ow; ox++, i++)
				c->poff[i] = (int)(gi * c->imgp) + oy * g->stride * c->wp + ox * g->stride;
	/* The input gradient adds each pixel's window into dxt: visit the pixels
	 * of a row in k interleaved passes (ox = r, r+k, ...) so that windows
	 * done one after the other do not overlap and no store has to be
	 * forwarded to the next pixel's loads. */
	int step = (g->k + g->stride - 1) / g->stride;
	for (int gi = 0, i = 0; gi < G; gi++)
		for (int oy = 0; oy < g->oh; oy++)
			for (int r = 0; r < step; r++)
				for (int ox = r; ox < g->ow; ox += step, i++) {
					c->pofft[i] = gi * c->hp * c->wp + oy * g->stride * c->wp + ox * g->stride;
					c->dyoff[i] = gi * c->o * c->p + oy * g->ow + ox;
				}
	/* below 8 input channels most lanes of the direct input gradient idle */
	if (setup_pdx(l) < 0)
		return -1;
	c->dxgemm = !c->pdx && g->c < 8 && getenv("SK_DCONV_DX") == NULL;
	sk_part col[] = {SK_PART(c->col, (size_t)c->ckk * c->p)};
	if (c->dxgemm && sk_layer_parts(l, 1, col) < 0)
		return -1;
	c->dc = 1;
	return 0;
}

/* Pixel-vector kernels: lanes over 16 output pixels of a row; for stride 1
 * and at most 8 output channels, where channel lanes would mostly idle.
 * The input gradient goes through sgemm + col2im. */
static int setup_pixel(sk_layer *l)
{
	conv *c = l->priv;
	const sk_conv_geom *g = &c->g;
	c->hp = g->h + 2 * g->pad;
	c->wp = g->w + 2 * g->pad;
	c->imgp = (size_t)g->c * c->hp * c->wp;
	c->group = 1;
	sk_part parts[] = {SK_PART(c->xp, g->pad ? c->imgp : 0), SK_PART(c->dwt, (size_t)c->o * c->ckk * 16),
	                   SK_PART(c->col, (size_t)c->ckk * c->p)};
	if (sk_layer_parts(l, 3, parts) < 0 || setup_pdx(l) < 0)
		return -1;
	c->pv = 1;
	return 0;
}

static int conv_setup(sk_layer *l, int max_batch)
{
	conv *c = l->priv;
	size_t n, ny;
	sk_wino_free(c->wino);   /* the buffers of the last setup went before this one (sk_layer_setup) */
	c->wino = NULL;
	c->dc = c->pv = c->pdx = 0;
	if (c->g.k == 3 && c->g.stride == 1 && (c->algo == 0 || c->algo == 4)) {
		int m = sk_wino_choose(c->g.c, c->g.h, c->g.w, c->o, c->g.pad, c->algo == 4, c->wtile);
		if (m)
			return (c->wino = sk_wino_new(c->g.c, c->g.h, c->g.w, c->o, c->g.pad, m, max_batch)) ? 0 : -1;
	}
	if (c->algo == 3 || (c->algo == 0 && c->g.stride == 1 && c->o <= 8 && sk_dconv_ok()))
		return setup_pixel(l);
	/* below 9 output channels most of the 16 lanes would idle: sgemm wins */
	if (c->algo == 2 || (c->algo == 0 && c->g.k <= 5 && c->o > 8 && sk_dconv_ok())) {
		if (setup_direct(l, max_batch) < 0)
			return -1;
		if (c->dc)
			return 0;
	}
	c->group = choose_group(c, max_batch);
	if (sk_mul_size((size_t)c->ckk, (size_t)c->group * c->p, &n) < 0 ||
	    sk_mul_size((size_t)c->o, (size_t)c->group * c->p, &ny) < 0)
		return -1;
	sk_part parts[] = {SK_PART(c->col, n), SK_PART(c->ybuf, c->group > 1 ? ny : 0)};
	return sk_layer_parts(l, 2, parts);
}

/* The column matrix of images i0..i0+gn-1 (ckk x gn*P, sgemm's operand):
 * the image itself for one 1x1 convolution, else in c->col. */
static const float *columns(conv *c, const float *x, int i0, int gn)
{
	size_t in = (size_t)c->g.c * c->g.h * c->g.w, P = (size_t)c->p, cols = (size_t)gn * P;
	if (c->direct && gn == 1)
		return x + (size_t)i0 * in;
	if (c->direct)
		sk_batch_group(gn, c->ckk, P, x + (size_t)i0 * in, c->col, cols);
	else
		for (int g = 0; g < gn; g++)
			sk_im2col(&c->g, x + (size_t)(i0 + g) * in, c->col + (size_t)g * P, cols);
	return c->col;
}

/* Padded copies of images i0..i0+gn-1 (or x itself without padding). */
static const float *padded(conv *c, const float *x, int i0, int gn)
{
	const sk_conv_geom *g = &c->g;
	size_t in = (size_t)g->c * g->h * g->w;
	if (!g->pad)
		return x + (size_t)i0 * in;
	for (int gi = 0; gi < gn; gi++)
		for (int ci = 0; ci < g->c; ci++) {
			const float *src = x + (size_t)(i0 + gi) * in + (size_t)ci * g->h * g->w;
			float *dst = c->xp + gi * c->imgp + ((size_t)ci * c->hp + g->pad) * c->wp + g->pad;
			for (int r = 0; r < g->h; r++)
				memcpy(dst + (size_t)r * c->wp, src + (size_t)r * g->w, (size_t)g->w * sizeof(float));
		}
	return c->xp;
}

/* The paths below take the weights w, the bias b (NULL: none) and, in
 * backward, their gradients gw, gb from conv_forward and conv_backward. */
static int forward_direct(conv *c, int n, const float *x, const float *w, const float *b, float *y)
{
	size_t P = (size_t)c->p, out = (size_t)c->o * P;
	for (int o = 0; o < c->ob * 16; o++)
		for (int t = 0; t < c->ckk; t++)
			c->wt[((size_t)(o / 16) * c->ckk + t) * 16 + o % 16] = o < c->o ? w[(size_t)o * c->ckk + t] : 0.0f;
	for (int i0 = 0; i0 < n; i0 += c->group) {
		int gn = n - i0 < c->group ? n - i0 : c->group;
		const float *xb = padded(c, x, i0, gn);
		for (int ob = 0; ob < c->ob; ob++) {
			int o1 = c->o - ob * 16 < 16 ? c->o - ob * 16 : 16;
			sk_dconv_fwd(xb, c->toff, c->ckk, c->poff, gn * c->p, c->wt + (size_t)ob * c->ckk * 16, c->tile);
			for (int gi = 0; gi < gn; gi++) {
				float *yr = y + (size_t)(i0 + gi) * out + (size_t)ob * 16 * P;
				sk_transpose_bias((int)P, o1, c->tile + (size_t)gi * P * 16, 16, yr, P, b ? b + ob * 16 : NULL);
			}
		}
	}
	return 0;
}

static int backward_direct(conv *c, int n, const float *x, const float *dy, const float *w, float *gw, float *gb,
                           float *dx)
{
	const sk_conv_geom *g = &c->g;
	size_t P = (size_t)c->p, out = (size_t)c->o * P, in = (size_t)g->c * g->h * g->w;
	size_t hw = (size_t)c->hp * c->wp;
	memset(c->dwt, 0, sizeof(float) * (size_t)c->ob * c->ckk * 16);
	if (dx && c->pdx)
		flip_weights(c, w);
	if (dx && !c->dxgemm && !c->pdx)
		for (int cb = 0; cb < c->cb; cb++)
			for (int j = 0; j < c->kk; j++)
				for (int o = 0; o < c->o; o++)
					for (int cc = 0; cc < 16; cc++) {
						int ci = cb * 16 + cc;
						c->wd[(((size_t)cb * c->kk + j) * c->o + o) * 16 + cc] =
							ci < g->c ? w[((size_t)o * g->c + ci) * c->kk + j] : 0.0f;
					}
	for (int i0 = 0; i0 < n; i0 += c->group) {
		int gn = n - i0 < c->group ? n - i0 : c->group, npix = gn * c->p;
		const float *xb = padded(c, x, i0, gn);
		for (int ob = 0; ob < c->ob; ob++) {
			int o1 = c->o - ob * 16 < 16 ? c->o - ob * 16 : 16;
			if (o1 < 16)
				memset(c->tile, 0, sizeof(float) * (size_t)npix * 16);
			for (int gi = 0; gi < gn; gi++)
				sk_transpose(o1, (int)P, dy + (size_t)(i0 + gi) * out + (size_t)ob * 16 * P, P,
				             c->tile + (size_t)gi * P * 16, 16);
			sk_dconv_dw(xb, c->toff, c->ckk, c->poff, npix, c->tile, c->dwt + (size_t)ob * c->ckk * 16);
		}
		if (gb)
			for (int gi = 0; gi < gn; gi++)
				sk_vsum_rows((size_t)c->o, P, dy + (size_t)(i0 + gi) * out, gb);
		if (!dx)
			continue;
		if (c->pdx) {
			for (int gi = 0; gi < gn; gi++)
				dx_pixel(c, dy + (size_t)(i0 + gi) * out, dx + (size_t)(i0 + gi) * in);
			continue;
		}
		if (c->dxgemm) {
			for (int gi = 0; gi < gn; gi++) {
				float *dxi = dx + (size_t)(i0 + gi) * in;
				sk_gemm(1, 0, c->ckk, (int)P, c->o, 1.0f, w, c->ckk, dy + (size_t)(i0 + gi) * out, (int)P, 0.0f,
				        c->col, (int)P);
				memset(dxi, 0, in * sizeof(float));
				sk_col2im(g, c->col, P, dxi);
			}
			continue;
		}
		for (int cb = 0; cb < c->cb; cb++) {
			int c1 = g->c - cb * 16 < 16 ? g->c - cb * 16 : 16;
			memset(c->dxt, 0, sizeof(float) * (size_t)gn * hw * 16);
			sk_dconv_dx(c->dxt, c->pofft, c->dyoff, npix, c->koff, c->kk, dy + (size_t)i0 * out, c->o, (int)P,
			            c->wd + (size_t)cb * c->kk * c->o * 16);
			for (int gi = 0; gi < gn; gi++) {
				float *dxi = dx + (size_t)(i0 + gi) * in + (size_t)cb * 16 * g->h * g->w;
				const float *t = c->dxt + (size_t)gi * hw * 16;
				if (!g->pad) { /* dxt rows are the image's pixels: one transpose */
					sk_transpose(g->h * g->w, c1, t, 16, dxi, (size_t)g->h * g->w);
					continue;
				}
				for (int iy = 0; iy < g->h; iy++)
					sk_transpose(g->w, c1, t + ((size_t)(iy + g->pad) * c->wp + g->pad) * 16, 16,
					             dxi + (size_t)iy * g->w, (size_t)g->h * g->w);
			}
		}
	}
	for (int o = 0; o < c->o; o++)
		for (int t = 0; t < c->ckk; t++)
			gw[(size_t)o * c->ckk + t] += c->dwt[((size_t)(o / 16) * c->ckk + t) * 16 + o % 16];
	return 0;
}

static int forward_pixel(conv *c, int n, const float *x, const float *w, const float *b, float *y)
{
	const sk_conv_geom *g = &c->g;
	size_t out = (size_t)c->o * c->p;
	for (int i = 0; i < n; i++)
		sk_pconv_fwd(padded(c, x, i, 1), g->c, c->hp, c->wp, g->k, g->oh, g->ow, c->o, w, b, y + (size_t)i * out);
	return 0;
}

static int backward_pixel(conv *c, int n, const float *x, const float *dy, const float *w, float *gw, float *gb,
                          float *dx)
{
	const sk_conv_geom *g = &c->g;
	size_t P = (size_t)c->p, out = (size_t)c->o * P, in = (size_t)g->c * g->h * g->w;
	memset(c->dwt, 0, sizeof(float) * (size_t)c->o * c->ckk * 16);
	if (dx && c->pdx)
		flip_weights(c, w);
	for (int i = 0; i < n; i++) {
		const float *dyi = dy + (size_t)i * out;
		sk_pconv_dw(padded(c, x, i, 1), g->c, c->hp, c->wp, g->k, g->oh, g->ow, c->o, dyi, c->dwt);
		if (gb)
			sk_vsum_rows((size_t)c->o, P, dyi, gb);
		if (dx && c->pdx) {
			dx_pixel(c, dyi, dx + (size_t)i * in);
		} else if (dx) {
			float *dxi = dx + (size_t)i * in;
			sk_gemm(1, 0, c->ckk, (int)P, c->o, 1.0f, w, c->ckk, dyi, (int)P, 0.0f, c->col, (int)P);
			memset(dxi, 0, in * sizeof(float));
			sk_col2im(g, c->col, P, dxi);
		}
	}
	for (size_t t = 0; t < (size_t)c->o * c->ckk; t++)
		gw[t] += sk_vsum(16, c->dwt + 16 * t);
	return 0;
}

static int conv_forward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, float *y)
{
	conv *c = l->priv;
	const float *w = l->params[0].w, *b = sk_conv_bias(l);
	if (c->wino) {
		sk_wino_forward(c->wino, n, x, w, b, y);
		return 0;
	}
	if (c->pv)
		return forward_pixel(c, n, x, w, b, y);
	if (c->dc)
		return forward_direct(c, n, x, w, b, y);
	size_t out = (size_t)c->o * c->p, P = (size_t)c->p;
	(void)ctx;
	for (int i0 = 0; i0 < n; i0 += c->group) {
		int gn = n - i0 < c->group ? n - i0 : c->group;
		size_t cols = (size_t)gn * P;
		const float *col = columns(c, x, i0, gn);
		float *yi = y + (size_t)i0 * out;
		if (gn == 1) {
			sk_gemm(0, 0, c->o, (int)P, c->ckk, 1.0f, w, c->ckk, col, (int)P, 0.0f, yi, (int)P);
			if (b)
				sk_vadd_rows((size_t)c->o, P, b, yi);
			continue;
		}
		sk_gemm(0, 0, c->o, (int)cols, c->ckk, 1.0f, w, c->ckk, col, (int)cols, 0.0f, c->ybuf, (int)cols);
		sk_batch_ungroup(gn, c->o, P, c->ybuf, cols, b, yi);
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
	if (c->wino) {
		sk_wino_backward(c->wino, n, x, w, dy, gw, dx);
		if (gb)
			for (int i = 0; i < n; i++)
				sk_vsum_rows((size_t)c->o, P, dy + (size_t)i * out, gb);
		return 0;
	}
	if (c->pv)
		return backward_pixel(c, n, x, dy, w, gw, gb, dx);
	if (c->dc)
		return backward_direct(c, n, x, dy, w, gw, gb, dx);
	for (int i0 = 0; i0 < n; i0 += c->group) {
		int gn = n - i0 < c->group ? n - i0 : c->group;
		size_t cols = (size_t)gn * P;
		const float *col = columns(c, x, i0, gn), *dyg = dy + (size_t)i0 * out;
		if (gn > 1) {
			sk_batch_group(gn, c->o, P, dyg, c->ybuf, cols);
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

static void conv_destroy(sk_layer *l) { sk_wino_free(((conv *)l->priv)->wino); }

/* ---- for the inference engine (sk_plan.h) ---- */

int sk_conv_copy_text(const sk_layer *l, int bias, char *buf, size_t len)
{
	const conv *c = l->priv;
	int r = snprintf(buf, len, "conv %d k=%d stride=%d pad=%d bias=%d algo=%s wtile=%d\n", c->o, c->g.k,
	                 c->g.stride, c->g.pad, bias != 0, algo_names[c->algo], c->wtile);
	return r < 0 || (size_t)r >= len ? sk_error("%s: spec line too long", l->name) : 0;
}

const float *sk_conv_bias(const sk_layer *l)
{
	const conv *c = l->priv;
	return c->bias ? l->params[1].w : NULL;
}

SK_LAYER(conv,
         "conv OUT k=K [stride=S] [pad=P] [bias=1] [init=he|xavier|normal|uniform] [scale=A] [bias_init=V] "
         "[algo=auto|gemm|direct|pixel|winograd] [wtile=2|4]",
         .setup = conv_setup, .destroy = conv_destroy, .affine = sk_affine_wb, .priv_size = sizeof(conv),
         .in_dims = 3);
