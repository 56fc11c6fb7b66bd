/* test-winograd.c: Winograd F(2x2,3x3) and F(4x4,3x3) against the direct
 * form (double-precision sums) for the forward pass, the input gradient and
 * the filter gradient, over odd sizes, padding 0, 1 and 2, few and many
 * channels and batches of 1 to several; the layer's choice rule and its
 * overrides; the same bits run to run; and the error on ResNet-20-like
 * activations, printed for doc/winograd.md.
 *
 * Tolerance: the largest error over a tensor, divided by the tensor's
 * largest magnitude, at most 2e-6 for F(2x2,3x3) and 2e-5 for F(4x4,3x3)
 * (the direct form in float measures about 5e-7 on the same data). */
#include "gradcheck.h"
#include "sk_cpu.h"
#include "sk_kernels.h"
#include "sk_rng.h"
#include "sk_winograd.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double TOL[5] = {0, 0, 2e-6, 0, 2e-5};

/* Direct correlation with 3x3 filters, stride 1, in double. */
static void ref_forward(const float *x, const float *w, const float *b, int C, int H, int W, int K, int p, double *y)
{
	int oh = H + 2 * p - 2, ow = W + 2 * p - 2;
	for (int k = 0; k < K; k++)
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				double t = b ? b[k] : 0;
				for (int c = 0; c < C; c++)
					for (int u = 0; u < 3; u++)
						for (int v = 0; v < 3; v++) {
							int yy = i - p + u, xx = j - p + v;
							if (yy >= 0 && yy < H && xx >= 0 && xx < W)
								t += (double)x[((size_t)c * H + yy) * W + xx] * w[((k * C + c) * 3 + u) * 3 + v];
						}
				y[((size_t)k * oh + i) * ow + j] = t;
			}
}

/* dx = sum dy * w over the windows, dw += sum dy * x. */
static void ref_backward(const float *x, const float *w, const float *dy, int C, int H, int W, int K, int p,
                         double *dx, double *dw)
{
	int oh = H + 2 * p - 2, ow = W + 2 * p - 2;
	memset(dx, 0, sizeof(double) * C * H * W);
	for (int k = 0; k < K; k++)
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				double g = dy[((size_t)k * oh + i) * ow + j];
				for (int c = 0; c < C; c++)
					for (int u = 0; u < 3; u++)
						for (int v = 0; v < 3; v++) {
							int yy = i - p + u, xx = j - p + v;
							if (yy < 0 || yy >= H || xx < 0 || xx >= W)
								continue;
							size_t xo = ((size_t)c * H + yy) * W + xx;
							size_t wo = ((size_t)(k * C + c) * 3 + u) * 3 + v;
							dx[xo] += g * w[wo];
							dw[wo] += g * x[xo];
						}
			}
}

/* max |a - b| / max |b| */
static double relerr(const float *a, const double *b, size_t n, double *abs_out)
{
	double e = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		if (fabs(a[i] - b[i]) > e)
			e = fabs(a[i] - b[i]);
		if (fabs(b[i]) > s)
			s = fabs(b[i]);
	}
	if (abs_out)
		*abs_out = e;
	return s > 0 ? e / s : e;
}

typedef struct data {
	int C, H, W, K, p, n;
	float *x, *w, *b, *dy;
	double *y, *dx, *dw;
	void *mem;          /* the block of the arrays above */
} data;

/* relu: post-activation inputs (half of them zero), as inside a ResNet */
static void make(data *d, int C, int H, int W, int K, int p, int n, int relu, uint64_t seed)
{
	int oh = H + 2 * p - 2, ow = W + 2 * p - 2;
	size_t in = (size_t)C * H * W, out = (size_t)K * oh * ow;
	size_t nw = (size_t)K * C * 9;
	*d = (data){.C = C, .H = H, .W = W, .K = K, .p = p, .n = n};
	sk_part parts[] = {SK_PART(d->x, in * n), SK_PART(d->w, nw), SK_PART(d->b, (size_t)K), SK_PART(d->dy, out * n),
	                   SK_PART(d->y, out * n), SK_PART(d->dx, in * n), SK_PART(d->dw, nw)};
	if (!(d->mem = sk_alloc_parts(7, parts)))
		abort();
	for (size_t i = 0; i < in * n; i++) {
		float v = sk_rng_normal(seed, 1, i);
		d->x[i] = relu && v < 0 ? 0 : v;
	}
	for (size_t i = 0; i < nw; i++)
		d->w[i] = sk_rng_normal(seed, 2, i) * sqrtf(2.0f / (9 * C)); /* He */
	for (int i = 0; i < K; i++)
		d->b[i] = 0.1f * sk_rng_normal(seed, 3, i);
	for (size_t i = 0; i < out * n; i++)
		d->dy[i] = sk_rng_normal(seed, 4, i);
	for (int i = 0; i < n; i++) {
		ref_forward(d->x + in * i, d->w, d->b, C, H, W, K, p, d->y + out * i);
		ref_backward(d->x + in * i, d->w, d->dy + out * i, C, H, W, K, p, d->dx + in * i, d->dw);
	}
}

static void drop(data *d) { sk_free(d->mem); }

/* Run a plan of tile m; errors of y, dx, dw in e[0..3) (relative), a[0..3) absolute. */
static int run(const data *d, int m, int batch_cap, double e[3], double a[3])
{
	int oh = d->H + 2 * d->p - 2, ow = d->W + 2 * d->p - 2;
	size_t in = (size_t)d->C * d->H * d->W, out = (size_t)d->K * oh * ow, nw = (size_t)d->K * d->C * 9;
	sk_wino *p = sk_wino_new(d->C, d->H, d->W, d->K, d->p, m, batch_cap);
	if (!p)
		return -1;
	float *y = malloc(sizeof(float) * out * d->n), *dx = malloc(sizeof(float) * in * d->n);
	float *dw = calloc(nw, sizeof(float));
	for (int i0 = 0; i0 < d->n; i0 += batch_cap) {
		int nb = d->n - i0 < batch_cap ? d->n - i0 : batch_cap;
		sk_wino_forward(p, nb, d->x + in * i0, d->w, d->b, y + out * i0);
		sk_wino_backward(p, nb, d->x + in * i0, d->w, d->dy + out * i0, dw, dx + in * i0);
	}
	e[0] = relerr(y, d->y, out * d->n, &a[0]);
	e[1] = relerr(dx, d->dx, in * d->n, &a[1]);
	e[2] = relerr(dw, d->dw, nw, &a[2]);
	free(y);
	free(dx);
	free(dw);
	sk_wino_free(p);
	return 0;
}

static void against_direct(void)
{
	static const struct {
		int C, H, W, K, p, n, cap;
	} cases[] = {
		{1, 5, 7, 1, 1, 1, 1},     /* tiny, one channel each way */
		{3, 9, 11, 5, 1, 3, 3},    /* odd sizes, few channels */
		{3, 9, 11, 5, 0, 2, 2},    /* no padding: 7x9 outputs */
		{2, 6, 5, 3, 2, 2, 1},     /* padding 2, batch over two calls */
		{17, 13, 7, 33, 1, 3, 2},  /* channels past one block of 16 */
		{16, 8, 8, 16, 1, 4, 4},   /* exact tiles */
		{40, 10, 9, 24, 0, 2, 2},  /* many channels, partial tiles */
		{32, 16, 16, 64, 1, 2, 2}, /* a ResNet-20 shape */
		{5, 3, 3, 4, 1, 5, 5},     /* 3x3 image: one tile */
		{4, 3, 4, 2, 0, 3, 2},     /* 1x2 output */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		data d;
		make(&d, cases[i].C, cases[i].H, cases[i].W, cases[i].K, cases[i].p, cases[i].n, 0, 11 + i);
		for (int m = 2; m <= 4; m += 2) {
			double e[3] = {1, 1, 1}, a[3];
			int ok = run(&d, m, cases[i].cap, e, a) == 0;
			tap_ok(ok && e[0] <= TOL[m] && e[1] <= TOL[m] && e[2] <= TOL[m],
			       "F(%dx%d,3x3) %dx%dx%d to %d pad=%d batch %d (groups of %d): forward %.2g, input gradient %.2g, "
			       "filter gradient %.2g of the largest value",
			       m, m, d.C, d.H, d.W, d.K, d.p, d.n, cases[i].cap, e[0], e[1], e[2]);
		}
		drop(&d);
	}
}

/* The error on post-ReLU activations of the ResNet-20 3x3 shapes, batch 8,
 * beside the direct form in float (the layer with algo=gemm). */
static sk_seq *build(const char *text, sk_shape in, int n)
{
	sk_spec *s = sk_spec_parse(text, "t.spec");
	sk_seq *q = s ? sk_seq_build(s, in, "") : NULL;
	if (q && sk_seq_setup(q, n) < 0) {
		sk_seq_free(q);
		q = NULL;
	}
	sk_spec_free(s);
	return q;
}

static void direct_error(const data *d, double e[3], double a[3])
{
	char spec[64];
	int oh = d->H + 2 * d->p - 2, ow = d->W + 2 * d->p - 2;
	size_t in = (size_t)d->C * d->H * d->W, out = (size_t)d->K * oh * ow, nw = (size_t)d->K * d->C * 9;
	snprintf(spec, sizeof spec, "conv %d k=3 pad=%d algo=gemm", d->K, d->p);
	sk_seq *q = build(spec, sk_shape3(d->C, d->H, d->W), d->n);
	float *dx = malloc(sizeof(float) * in * d->n);
	e[0] = e[1] = e[2] = 1;
	if (q) {
		sk_layer *l = q->layers[0];
		sk_ctx ctx = {0};
		memcpy(l->params[0].w, d->w, nw * sizeof(float));
		memcpy(l->params[1].w, d->b, d->K * sizeof(float));
		memset(l->params[0].g, 0, nw * sizeof(float));
		const float *y = sk_seq_forward(q, &ctx, d->n, d->x);
		sk_seq_backward(q, &ctx, d->n, d->x, d->dy, dx);
		e[0] = relerr(y, d->y, out * d->n, &a[0]);
		e[1] = relerr(dx, d->dx, in * d->n, &a[1]);
		e[2] = relerr(l->params[0].g, d->dw, nw, &a[2]);
	}
	free(dx);
	sk_seq_free(q);
}

static void resnet_error(void)
{
	static const int shapes[][3] = {{16, 32, 16}, {32, 16, 32}, {64, 8, 64}};
	tap_diag("error / largest |value| (largest absolute error), post-ReLU inputs, He filters, batch 8:");
	tap_diag("%-18s %-6s %-20s %-20s %-20s", "shape", "form", "forward", "input gradient", "filter gradient");
	for (int s = 0; s < 3; s++) {
		data d;
		double e[3] = {0, 0, 0}, a[3] = {0, 0, 0};
		char name[32];
		make(&d, shapes[s][0], shapes[s][1], shapes[s][1], shapes[s][2], 1, 8, 1, 100 + s);
		snprintf(name, sizeof name, "%dx%dx%d to %d", d.C, d.H, d.W, d.K);
		direct_error(&d, e, a);
		tap_diag("%-18s %-6s %.1e (%.1e)     %.1e (%.1e)     %.1e (%.1e)", name, "direct", e[0], a[0], e[1], a[1],
		         e[2], a[2]);
		for (int m = 2; m <= 4; m += 2) {
			int ok = run(&d, m, 8, e, a) == 0;
			tap_diag("%-18s F(%d,3) %.1e (%.1e)     %.1e (%.1e)     %.1e (%.1e)", name, m, e[0], a[0], e[1], a[1],
			         e[2], a[2]);
			tap_ok(ok && e[0] <= TOL[m] && e[1] <= TOL[m] && e[2] <= TOL[m], "F(%dx%d,3x3) on %s post-ReLU within %g",
			       m, m, name, TOL[m]);
		}
		drop(&d);
	}
}

/* The layer: algo=winograd against algo=gemm, and the same bits twice. */
static void layer(void)
{
	static const char *const specs[] = {"conv 20 k=3 pad=1", "conv 16 k=3", "conv 5 k=3 pad=1 bias=0"};
	static const int shapes[][3] = {{18, 9, 7}, {16, 10, 10}, {3, 7, 6}};
	for (int s = 0; s < 3; s++)
		for (int m = 2; m <= 4; m += 2) {
			char sw[96], sg[96];
			snprintf(sw, sizeof sw, "%s algo=winograd wtile=%d", specs[s], m);
			snprintf(sg, sizeof sg, "%s algo=gemm", specs[s]);
			sk_shape in = sk_shape3(shapes[s][0], shapes[s][1], shapes[s][2]);
			int n = 3;
			sk_seq *qw = build(sw, in, n), *qg = build(sg, in, n);
			if (!tap_ok(qw && qg && sk_seq_init(qw, 5) == 0 && sk_seq_init(qg, 5) == 0, "builds %s", sw)) {
				sk_seq_free(qw);
				sk_seq_free(qg);
				continue;
			}
			sk_layer *lw = qw->layers[0], *lg = qg->layers[0];
			size_t nin = sk_shape_size(in) * n, nout = sk_shape_size(qw->out) * n;
			float *x = malloc(nin * sizeof(float)), *dy = malloc(nout * sizeof(float));
			float *dxw = malloc(nin * sizeof(float)), *dxg = malloc(nin * sizeof(float)),
			      *dx2 = malloc(nin * sizeof(float));
			for (size_t i = 0; i < nin; i++)
				x[i] = sk_rng_normal(9, 1, i);
			for (size_t i = 0; i < nout; i++)
				dy[i] = sk_rng_normal(9, 2, i);
			sk_ctx ctx = {0};
			ctx.train = 1;
			double ey = 0, edx = 0, edw = 0, eb = 0, scale = 0;
			const float *yw = sk_seq_forward(qw, &ctx, n, x), *yg = sk_seq_forward(qg, &ctx, n, x);
			for (size_t i = 0; i < nout; i++) {
				ey = fmax(ey, fabs(yw[i] - yg[i]));
				scale = fmax(scale, fabs(yg[i]));
			}
			ey /= scale;
			float *y1 = malloc(nout * sizeof(float));
			memcpy(y1, yw, nout * sizeof(float));
			sk_seq_backward(qw, &ctx, n, x, dy, dxw);
			sk_seq_backward(qg, &ctx, n, x, dy, dxg);
			scale = 0;
			for (size_t i = 0; i < nin; i++) {
				edx = fmax(edx, fabs(dxw[i] - dxg[i]));
				scale = fmax(scale, fabs(dxg[i]));
			}
			edx /= scale;
			scale = 0;
			for (size_t i = 0; i < lw->params[0].size; i++) {
				edw = fmax(edw, fabs(lw->params[0].g[i] - lg->params[0].g[i]));
				scale = fmax(scale, fabs(lg->params[0].g[i]));
			}
			edw /= scale;
			if (lw->nparams > 1)
				for (size_t i = 0; i < lw->params[1].size; i++)
					eb = fmax(eb, fabs(lw->params[1].g[i] - lg->params[1].g[i]) / (1 + fabs(lg->params[1].g[i])));
			tap_ok(ey <= TOL[m] && edx <= TOL[m] && edw <= TOL[m] && eb <= 1e-5,
			       "%s on %dx%dx%d matches algo=gemm: y %.2g, dx %.2g, dw %.2g, db %.2g", sw, in.d[0], in.d[1],
			       in.d[2], ey, edx, edw, eb);
			/* again: the same bits */
			float *g1 = malloc(lw->params[0].size * sizeof(float));
			memcpy(g1, lw->params[0].g, lw->params[0].size * sizeof(float));
			yw = sk_seq_forward(qw, &ctx, n, x);
			int same = !memcmp(yw, y1, nout * sizeof(float));
			sk_seq_backward(qw, &ctx, n, x, dy, dx2);
			same = same && !memcmp(dx2, dxw, nin * sizeof(float));
			for (size_t i = 0; i < lw->params[0].size; i++) /* the gradient accumulated twice */
				same = same && lw->params[0].g[i] == g1[i] + g1[i];
			tap_ok(same, "%s: a second run gives the same bits", sw);
			free(g1);
			free(y1);
			free(x);
			free(dy);
			free(dxw);
			free(dxg);
			free(dx2);
			sk_seq_free(qw);
			sk_seq_free(qg);
		}
}

static void rule(void)
{
	unsetenv("SK_WINOGRAD");
	tap_ok(sk_wino_choose(16, 32, 32, 16, 1, 0, 0) == 4, "rule: 16x32x32 to 16 takes F(4x4,3x3)");
	tap_ok(sk_wino_choose(64, 8, 8, 64, 1, 0, 0) == 4, "rule: 64x8x8 to 64 takes F(4x4,3x3)");
	tap_ok(sk_wino_choose(3, 32, 32, 16, 1, 0, 0) == 0, "rule: 3 input channels stay direct");
	tap_ok(sk_wino_choose(16, 32, 32, 8, 1, 0, 0) == 0, "rule: 8 output channels stay direct");
	tap_ok(sk_wino_choose(64, 3, 3, 64, 1, 0, 0) == 0, "rule: a 3x3 output stays direct");
	tap_ok(sk_wino_choose(3, 3, 3, 2, 1, 1, 0) != 0, "algo=winograd forces it");
	tap_ok(sk_wino_choose(3, 3, 3, 2, 1, 1, 2) == 2, "wtile=2 chooses the tile");
	setenv("SK_WINOGRAD", "0", 1);
	tap_ok(sk_wino_choose(16, 32, 32, 16, 1, 0, 0) == 0, "SK_WINOGRAD=0 turns it off");
	tap_ok(sk_wino_choose(16, 32, 32, 16, 1, 1, 0) != 0, "... but not against algo=winograd");
	setenv("SK_WINOGRAD", "2", 1);
	tap_ok(sk_wino_choose(3, 5, 5, 2, 0, 0, 0) == 2, "SK_WINOGRAD=2 takes every layer to F(2x2,3x3)");
	unsetenv("SK_WINOGRAD");
	sk_spec *s = sk_spec_parse("conv 4 k=3 stride=2 algo=winograd", "t.spec");
	sk_seq *q = s ? sk_seq_build(s, sk_shape3(2, 8, 8), "") : NULL;
	tap_ok(s && !q && strstr(sk_errmsg(), "winograd"), "algo=winograd with stride 2 is refused: %s", sk_errmsg());
	sk_seq_free(q);
	sk_spec_free(s);
	s = sk_spec_parse("conv 4 k=3 wtile=3", "t.spec");
	q = s ? sk_seq_build(s, sk_shape3(2, 8, 8), "") : NULL;
	tap_ok(s && !q && strstr(sk_errmsg(), "wtile"), "wtile=3 is refused: %s", sk_errmsg());
	sk_seq_free(q);
	sk_spec_free(s);
}

static void gradients(void)
{
	gc_opts o = {0};
	o.n = 3;
	gc_check("conv 4 k=3 pad=1 algo=winograd wtile=2", sk_shape3(3, 5, 7), &o);
	gc_check("conv 4 k=3 pad=1 algo=winograd wtile=4", sk_shape3(3, 5, 7), &o);
	gc_check("conv 17 k=3 algo=winograd", sk_shape3(18, 7, 6), &o);
	gc_check("conv 3 k=3 pad=2 algo=winograd wtile=4 bias=0", sk_shape3(2, 4, 3), &o);
}

int main(void)
{
	tap_diag("transform kernels: %s", sk_cpu_path());
	rule();
	against_direct();
	layer();
	gradients();
	resnet_error();
	return tap_done();
}
