/* test-layers.c: the ConvNet layers: gradient checks of every mode, forward
 * results against naive references, parameter and FLOP counts, the memory
 * a layer owns, the nsm layer's bits however a batch is cut, and the model
 * specs under share/models. */
#include "gradcheck.h"
#include "sk_cpu.h"
#include "sk_infer.h"
#include "sk_kernels.h"
#include "sk_model.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SK_MODELS_DIR
#define SK_MODELS_DIR "share/models"
#endif

static sk_ctx ctx0;

/* Build a sequence from text for input shape `in`, set up and initialised. */
static sk_seq *build(const char *text, sk_shape in, int n, sk_spec **sp)
{
	sk_spec *s = sk_spec_parse(text, "t.spec");
	sk_seq *q = s ? sk_seq_build(s, in, "") : NULL;
	if (q && (sk_seq_setup(q, n) < 0 || sk_seq_init(q, 7) < 0)) {
		sk_seq_free(q);
		q = NULL;
	}
	if (sp)
		*sp = s;
	else
		sk_spec_free(s);
	return q;
}

static void fill_normal(float *x, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		x[i] = sk_rng_normal(seed, 5, i);
}

static double maxdiff(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > m)
			m = fabs((double)a[i] - b[i]);
	return m;
}

/* A gradient check: the spec and its input shape. */
typedef struct gcase {
	const char *spec;
	sk_shape in;
} gcase;

static void check_cases(const gcase *c, size_t n, const gc_opts *o)
{
	for (size_t i = 0; i < n; i++)
		gc_check(c[i].spec, c[i].in, o);
}
#define CHECK_CASES(c, o) check_cases(c, sizeof c / sizeof *c, o)

static void gradients(void)
{
	gc_opts o = {0};
	/* conv: every geometry, through both the grouped and the one-image path
	 * (SK_CONV_COLS=32 set in main: groups of 2 for 4x4 outputs) */
	static const char *const algos[] = {"gemm", "direct", "pixel"};
	static const gcase convs[] = {
		{"conv 4 k=3 pad=1", {3, {2, 4, 4}}},
		{"conv 3 k=3 stride=2", {3, {2, 7, 7}}},
		{"conv 3 k=3 stride=2 pad=1", {3, {2, 8, 8}}},
		{"conv 5 k=1", {3, {3, 4, 4}}},
		{"conv 5 k=1", {3, {3, 8, 8}}},
		{"conv 2 k=5 pad=2 bias=0", {3, {2, 6, 5}}},
		{"conv 2 k=2 stride=3 pad=1 init=xavier", {3, {2, 7, 6}}},
		{"conv 18 k=3 pad=1", {3, {17, 3, 3}}},  /* two blocks of 16 channels each way */
		{"conv 16 k=3 pad=1", {3, {16, 6, 5}}},  /* input gradient two pixels at a time */
		{"conv 16 k=3 stride=2 pad=1", {3, {16, 7, 7}}},
		{"conv 16 k=2 stride=2", {3, {16, 4, 6}}},
		{"conv 3 k=7 pad=3", {3, {2, 8, 8}}},
	};
	o.n = 3;
	for (int a = 0; a < 3; a++)
		for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
			char spec[128];
			if (a == 2 && strstr(convs[i].spec, "stride="))
				continue; /* pixel kernels: stride 1 only */
			snprintf(spec, sizeof spec, "%s algo=%s", convs[i].spec, algos[a]);
			gc_check(spec, convs[i].in, &o);
		}
	gc_check("conv 6 k=5 pad=2 algo=pixel", sk_shape3(1, 20, 19), &o);
	gc_check("conv 9 k=3 algo=pixel", sk_shape3(2, 5, 5), &o);
	o.n = 2;
	static const gcase plain[] = {
		{"linear 5", {1, {7}}},
		{"linear 4 bias=0 init=normal scale=0.3", {3, {2, 3, 3}}},
		{"pool max k=2", {3, {2, 4, 4}}},
		{"pool max k=3 stride=2 pad=1", {3, {2, 7, 7}}},
		{"pool avg k=2", {3, {2, 4, 6}}},
		{"pool avg k=3 stride=2 pad=1", {3, {2, 7, 7}}},
		{"pool sum k=2", {3, {2, 4, 6}}},
		{"pool sum k=3 stride=2 pad=1", {3, {2, 7, 7}}},
		{"gap", {3, {3, 3, 4}}},
		{"flatten\nlinear 3", {3, {2, 2, 3}}},
		{"input 2 3 3 scale=0.5 mean=1,2 std=2,4", {3, {2, 3, 3}}},
		{"input 6 mean=0.5 std=3", {1, {6}}},
		{"tanh", {1, {9}}},
		{"sigmoid", {1, {9}}},
		{"gelu", {1, {9}}},
		{"selu", {1, {9}}},
		{"elu alpha=0.7", {1, {9}}},
		{"softplus", {1, {9}}},
		{"identity", {1, {9}}},
	};
	CHECK_CASES(plain, &o);
	/* batch norm: batch statistics (train), running statistics (eval) */
	o.flags = GC_TRAIN;
	gc_check("bn", sk_shape3(3, 3, 3), &o);
	gc_check("conv 3 k=3 pad=1\nbn\nrelu", sk_shape3(2, 4, 4), &o);
	o.n = 5;
	gc_check("linear 4\nbn momentum=0.2", sk_shape1(3), &o);
	gc_check("bn", sk_shape2(3, 4), &o);
	o.n = 2;
	o.flags = 0;
	gc_check("bn eps=0.01", sk_shape3(3, 2, 2), &o);
	/* dropout: the mask is fixed for a step, so the gradient is exact */
	o.flags = GC_TRAIN;
	gc_check("dropout p=0.3", sk_shape1(20), &o);
	gc_check("linear 6\ndropout p=0.5\nlinear 2", sk_shape1(4), &o);
	o.flags = 0;
	gc_check("dropout p=0.3", sk_shape1(20), &o);
	/* residual blocks, every shortcut */
	o.flags = GC_TRAIN;
	gc_check("residual {\nconv 2 k=3 pad=1\nrelu\nconv 2 k=3 pad=1\n}\nrelu", sk_shape3(2, 4, 4), &o);
	gc_check("residual shortcut=pad {\nconv 4 k=3 stride=2 pad=1\n}", sk_shape3(2, 5, 5), &o);
	gc_check("residual shortcut=conv {\nconv 3 k=3 stride=2 pad=1\ntanh\n}", sk_shape3(2, 4, 4), &o);
	gc_check("residual shortcut=convbn {\nconv 3 k=3 stride=2 pad=1\nbn\n}", sk_shape3(2, 4, 4), &o);
	gc_check("residual {\nlinear 4\ntanh\n}", sk_shape1(4), &o);
	o.flags = 0;
	gc_check("residual {\nlinear 4\ntanh\n}", sk_shape1(4), &o);
	gc_check("residual shortcut=convbn {\nconv 3 k=3 stride=2 pad=1\nbn\n}", sk_shape3(2, 4, 4), &o);
}

/* Every layer with more shapes, batch sizes and spare room in the buffers
 * (max_batch - n): partial conv groups, the 2x2 max-pool kernel on odd
 * sizes, sets (T x D) and vectors where a layer takes them. */
static void contract(void)
{
	gc_opts o = {0};
	static const char *const algos[] = {"gemm", "direct", "pixel"};
	static const int ns[] = {1, 4, 5}, extras[] = {-1, 1, 6};
	for (int a = 0; a < 3; a++)
		for (int i = 0; i < 3; i++) {
			char spec[128];
			o.n = ns[i];
			o.extra = extras[i];
			snprintf(spec, sizeof spec, "conv 4 k=3 pad=1 algo=%s", algos[a]);
			gc_check(spec, sk_shape3(2, 4, 4), &o);
			snprintf(spec, sizeof spec, "conv 16 k=3 pad=1 algo=%s", algos[a]);
			gc_check(spec, sk_shape3(3, 3, 4), &o);
			if (a == 2)
				continue;
			snprintf(spec, sizeof spec, "conv 17 k=2 stride=2 pad=1 bias=0 algo=%s", algos[a]);
			gc_check(spec, sk_shape3(9, 5, 5), &o);
		}
	o.n = 3;
	o.extra = 2;
	static const gcase shapes[] = {
		{"conv 5 k=3 pad=1", {3, {2, 5, 5}}},   /* algo=auto */
		{"conv 12 k=3 stride=2", {3, {3, 7, 7}}},
		{"pool max k=2", {3, {2, 5, 5}}},
		{"pool max k=2", {3, {3, 3, 7}}},
		{"pool max k=2 stride=1", {3, {2, 4, 5}}},
		{"pool avg k=3 stride=1 pad=1", {3, {2, 4, 5}}},
		{"gap", {3, {2, 1, 1}}},
		{"flatten", {3, {2, 3, 3}}},
		{"flatten", {2, {3, 4}}},
		{"input 3 4", {2, {3, 4}}},
		{"input 3 4 scale=2 mean=1,0,-1,2 std=1,2,3,4", {2, {3, 4}}},
		{"input 2 2 3 scale=0.5", {3, {2, 2, 3}}},
		{"relu", {2, {3, 4}}},
		{"relu leaky=0.1", {3, {2, 3, 3}}},
		{"linear 3", {2, {3, 4}}},
		{"linear 3 init=uniform bias_init=0.5", {1, {5}}},
	};
	CHECK_CASES(shapes, &o);
	static const char *const acts[] = {"tanh", "sigmoid", "gelu", "selu", "elu", "elu alpha=2", "softplus",
	                                   "identity"};
	for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
		gc_check(acts[i], sk_shape3(2, 3, 3), &o);
		gc_check(acts[i], sk_shape2(3, 4), &o);
	}
	/* batch norm: train and eval, every input shape, one example */
	for (int t = 0; t < 2; t++) {
		o.flags = t ? GC_TRAIN : 0;
		gc_check("bn", sk_shape3(3, 2, 3), &o);
		gc_check("bn momentum=0.5", sk_shape2(4, 3), &o);
		gc_check("bn eps=0.1", sk_shape1(5), &o);
		gc_check("conv 3 k=1\nbn", sk_shape3(2, 3, 3), &o);
	}
	o.flags = GC_TRAIN;
	o.n = 1;
	gc_check("bn", sk_shape3(3, 2, 3), &o);
	gc_check("bn", sk_shape2(4, 3), &o);
	o.n = 3;
	/* dropout with its fixed mask per step: vectors, images, sets, inside a block */
	gc_check("dropout p=0.5", sk_shape3(2, 3, 3), &o);
	gc_check("dropout p=0.2", sk_shape2(3, 5), &o);
	gc_check("dropout p=0", sk_shape1(7), &o);
	gc_check("residual {\nlinear 6\ndropout p=0.4\nlinear 6\n}", sk_shape1(6), &o);
	gc_check("residual shortcut=pad {\nconv 4 k=3 stride=2 pad=1\nbn\n}\ndropout p=0.3", sk_shape3(2, 5, 5), &o);
	o.flags = 0;
	gc_check("residual shortcut=identity {\nrelu\nconv 2 k=3 pad=1\n}", sk_shape3(2, 4, 4), &o);
	gc_check("residual shortcut=conv {\nconv 3 k=1\n}", sk_shape3(2, 3, 3), &o);
	/* a first layer without parameters: backward skips it without dx */
	gc_check("relu\nlinear 4", sk_shape1(5), &o);
	gc_check("input 5 mean=1 std=2\ntanh\nlinear 2", sk_shape1(5), &o);
}

/* Naive convolution for reference. */
static void conv_ref(const float *x, const float *w, const float *b, int C, int H, int W, int O, int k, int s, int p,
                     float *y)
{
	int oh = (H + 2 * p - k) / s + 1, ow = (W + 2 * p - k) / s + 1;
	for (int o = 0; o < O; o++)
		for (int i = 0; i < oh; i++)
			for (int j = 0; j < ow; j++) {
				double t = b ? b[o] : 0;
				for (int c = 0; c < C; c++)
					for (int u = 0; u < k; u++)
						for (int v = 0; v < k; v++) {
							int yy = i * s - p + u, xx = j * s - p + v;
							if (yy >= 0 && yy < H && xx >= 0 && xx < W)
								t += (double)x[(c * H + yy) * W + xx] * w[((o * C + c) * k + u) * k + v];
						}
				y[(o * oh + i) * ow + j] = (float)t;
			}
}

static void conv_forward_ref(const char *spec, int C, int H, int W, int n)
{
	sk_seq *q = build(spec, sk_shape3(C, H, W), n, NULL);
	if (!tap_ok(q != NULL, "builds %s", spec))
		return;
	sk_layer *l = q->layers[0];
	const sk_conv_geom g = {0};
	(void)g;
	size_t in = sk_shape_size(l->in), out = sk_shape_size(l->out);
	float *x = malloc(in * n * sizeof(float)), *y = malloc(out * sizeof(float));
	fill_normal(x, in * n, 3);
	if (l->nparams > 1)
		for (size_t i = 0; i < l->params[1].size; i++)
			l->params[1].w[i] = 0.1f * (float)i;
	const float *yq = sk_seq_forward(q, &ctx0, n, x);
	double worst = 0;
	int O = l->out.d[0], k = (int)l->params[0].shape[2];
	int s = 1, p = 0;
	sscanf(strstr(spec, "stride=") ? strstr(spec, "stride=") : "stride=1", "stride=%d", &s);
	sscanf(strstr(spec, "pad=") ? strstr(spec, "pad=") : "pad=0", "pad=%d", &p);
	for (int i = 0; i < n && yq; i++) {
		conv_ref(x + in * i, l->params[0].w, l->nparams > 1 ? l->params[1].w : NULL, C, H, W, O, k, s, p, y);
		double d = maxdiff(y, yq + out * i, out);
		if (d > worst)
			worst = d;
	}
	tap_ok(yq && worst < 1e-4, "%s on %dx%dx%d x%d matches the naive convolution (max diff %.2g)", spec, C, H, W, n,
	       worst);
	free(x);
	free(y);
	sk_seq_free(q);
}

static void forwards(void)
{
	static const char *const algos[] = {"gemm", "direct", "auto", "pixel"};
	for (int a = 0; a < 4; a++) {
		char spec[128];
#define REF(text, C, H, W, n) \
	snprintf(spec, sizeof spec, "%s algo=%s", text, algos[a]); \
	if (a < 3 || !strstr(text, "stride=")) \
		conv_forward_ref(spec, C, H, W, n);
		REF("conv 4 k=3 pad=1", 2, 4, 4, 5)
		REF("conv 3 k=3 stride=2", 3, 9, 8, 3)
		REF("conv 16 k=3 stride=2", 1, 28, 28, 4)
		REF("conv 7 k=1", 5, 3, 3, 5)
		REF("conv 6 k=5 pad=2 bias=0", 2, 12, 12, 3)
		REF("conv 33 k=3 stride=2 pad=1", 20, 9, 9, 3)
		REF("conv 6 k=5 pad=2", 1, 28, 28, 3)
		REF("conv 8 k=3 pad=1", 3, 7, 37, 2)
#undef REF
	}

	/* max and average pooling on a known input */
	sk_seq *q = build("pool max k=2", sk_shape3(1, 2, 4), 1, NULL);
	float x[8] = {1, 5, -2, -3, 4, 2, -1, -7}, *y;
	y = (float *)sk_seq_forward(q, &ctx0, 1, x);
	tap_ok(y && y[0] == 5 && y[1] == -1, "max pool values");
	sk_seq_free(q);
	/* 2x2 max pooling (vector kernel) against a naive maximum, with rows
	 * wider than a vector and an odd input extent */
	{
		enum { PC = 2, PH = 9, PW = 37, OH = 4, OW = 18 };
		float *px = malloc(2 * PC * PH * PW * sizeof(float)), *pdx = malloc(2 * PC * PH * PW * sizeof(float));
		float *pdy = malloc(2 * PC * OH * OW * sizeof(float));
		int pbad = 0;
		fill_normal(px, 2 * PC * PH * PW, 11);
		px[5] = px[4]; /* a tie in one window: the first wins */
		for (int i = 0; i < 2 * PC * OH * OW; i++)
			pdy[i] = 1.0f + (float)i;
		sk_seq *pq = build("pool max k=2", sk_shape3(PC, PH, PW), 2, NULL);
		const float *py = pq ? sk_seq_forward(pq, &ctx0, 2, px) : NULL;
		if (py && sk_seq_backward(pq, &ctx0, 2, px, pdy, pdx) == 0) {
			for (int pl = 0; pl < 2 * PC; pl++)
				for (int oy = 0; oy < OH; oy++)
					for (int ox = 0; ox < OW; ox++) {
						const float *b = px + (size_t)pl * PH * PW;
						int at = 2 * oy * PW + 2 * ox, cand[4] = {at, at + 1, at + PW, at + PW + 1};
						for (int j = 1; j < 4; j++)
							if (b[cand[j]] > b[at])
								at = cand[j];
						size_t oi = ((size_t)pl * OH + oy) * OW + ox;
						pbad += py[oi] != b[at] || pdx[(size_t)pl * PH * PW + at] != pdy[oi];
					}
		} else
			pbad = -1;
		tap_ok(pbad == 0, "2x2 max pooling: values and arg-max against the naive maximum (%d wrong)", pbad);
		sk_seq_free(pq);
		free(px);
		free(pdx);
		free(pdy);
	}
	q = build("pool avg k=2 stride=1", sk_shape3(1, 2, 4), 1, NULL);
	y = (float *)sk_seq_forward(q, &ctx0, 1, x);
	tap_ok(y && q->out.d[2] == 3 && fabsf(y[0] - 3) < 1e-6f && fabsf(y[2] + 13.0f / 4) < 1e-6f, "avg pool values");
	sk_seq_free(q);
	q = build("pool sum k=2 stride=1", sk_shape3(1, 2, 4), 1, NULL);
	y = (float *)sk_seq_forward(q, &ctx0, 1, x);
	tap_ok(y && q->out.d[2] == 3 && fabsf(y[0] - 12) < 1e-5f && fabsf(y[2] + 13.0f) < 1e-5f, "sum pool values");
	sk_seq_free(q);
	q = build("gap", sk_shape3(2, 2, 2), 1, NULL);
	y = (float *)sk_seq_forward(q, &ctx0, 1, x);
	tap_ok(y && y[0] == 0.25f && y[1] == -0.5f, "global average pooling values");
	sk_seq_free(q);

	/* input normalisation: (x*scale - mean[c]) / std[c] */
	q = build("input 2 1 2 scale=0.5 mean=1,2 std=2,4", sk_shape3(2, 1, 2), 1, NULL);
	y = (float *)sk_seq_forward(q, &ctx0, 1, x);
	tap_ok(y && y[0] == -0.25f && y[1] == 0.75f && y[2] == -0.75f && y[3] == -0.875f,
	       "input normalises per channel");
	tap_ok(q && q->layers[0]->nparams == 2 && !strcmp(q->layers[0]->params[0].name, "input1.mean") &&
	           (q->layers[0]->params[1].flags & SK_P_BUFFER) && sk_seq_param_count(q) == 0,
	       "input stores mean and std as buffers");
	sk_seq_free(q);

	/* batch norm: train normalises with batch stats and moves running stats
	 * only with update_buffers; eval uses running stats */
	q = build("bn momentum=0.5", sk_shape1(2), 4, NULL);
	float xb[8] = {1, 10, 2, 20, 3, 30, 6, 40};
	sk_ctx c = ctx0;
	c.train = 1;
	y = (float *)sk_seq_forward(q, &c, 4, xb);
	double m0 = 0, v0 = 0;
	for (int i = 0; i < 4; i++)
		m0 += y[2 * i], v0 += (double)y[2 * i] * y[2 * i];
	sk_param *rm = &q->layers[0]->params[2], *rv = &q->layers[0]->params[3];
	tap_ok(fabs(m0) < 1e-5 && fabs(v0 / 4 - 1) < 1e-3 && rm->w[0] == 0 && rv->w[0] == 1,
	       "bn train: zero mean, unit variance, buffers untouched without update_buffers");
	c.update_buffers = 1;
	sk_seq_forward(q, &c, 4, xb);
	/* feature 0: mean 3, unbiased var (4+1+0+9)/3 */
	tap_ok(fabsf(rm->w[0] - 1.5f) < 1e-5f && fabsf(rv->w[0] - (0.5f + 0.5f * 14.0f / 3)) < 1e-4f,
	       "bn running stats: mean %g var %g", (double)rm->w[0], (double)rv->w[0]);
	c.train = 0;
	y = (float *)sk_seq_forward(q, &c, 4, xb);
	tap_ok(fabsf(y[0] - (1 - 1.5f) / sqrtf(rv->w[0] + 1e-5f)) < 1e-5f, "bn eval uses running stats");
	sk_seq_free(q);
	/* statistics stay exact when the mean is large against the spread */
	q = build("bn", sk_shape3(1, 1, 4), 2, NULL);
	float xl[8] = {1000.5f, 1000.25f, 999.75f, 999.5f, 1000.5f, 1000.25f, 999.75f, 999.5f};
	c = ctx0;
	c.train = 1;
	y = (float *)sk_seq_forward(q, &c, 2, xl);
	/* mean 1000, variance (0.25 + 0.0625) * 2 / 4 = 0.15625 */
	tap_ok(y && fabsf(y[0] - 0.5f / sqrtf(0.15625f + 1e-5f)) < 1e-3f && fabsf(y[3] + y[0]) < 1e-4f,
	       "bn batch statistics around a large mean: %g %g", y ? (double)y[0] : 0.0, y ? (double)y[3] : 0.0);
	sk_seq_free(q);

	/* dropout: rate, scaling, independence from the split of the batch */
	enum { N = 8, D = 1000 };
	float *xd = malloc(N * D * sizeof(float)), *ya = malloc(N * D * sizeof(float));
	for (int i = 0; i < N * D; i++)
		xd[i] = 1;
	q = build("dropout p=0.25", sk_shape1(D), N, NULL);
	c = ctx0;
	c.train = 1;
	c.seed = 9;
	c.step = 3;
	y = (float *)sk_seq_forward(q, &c, N, xd);
	int zeros = 0, bad = 0;
	for (int i = 0; i < N * D; i++) {
		zeros += y[i] == 0;
		bad += y[i] != 0 && fabsf(y[i] - 4.0f / 3) > 1e-6f;
	}
	memcpy(ya, y, N * D * sizeof(float));
	tap_ok(abs(zeros - N * D / 4) < 200 && !bad, "dropout drops %d of %d, scales the rest", zeros, N * D);
	c.example0 = 5;
	y = (float *)sk_seq_forward(q, &c, 3, xd);
	tap_ok(!memcmp(y, ya + 5 * D, 3 * D * sizeof(float)), "dropout mask depends on the global example index only");
	c.example0 = 0;
	c.step = 4;
	y = (float *)sk_seq_forward(q, &c, N, xd);
	tap_ok(memcmp(y, ya, N * D * sizeof(float)) != 0, "dropout mask changes with the step");
	c.train = 0;
	y = (float *)sk_seq_forward(q, &c, N, xd);
	tap_ok(!memcmp(y, xd, N * D * sizeof(float)), "dropout is the identity in evaluation");
	sk_seq_free(q);
	free(xd);
	free(ya);
}

static void errors(void)
{
	static const struct {
		const char *spec;
		sk_shape in;
		const char *msg;
	} bad[] = {
		{"conv 4 k=3", {1, {10}}, "needs a C x H x W input, got 1 dimensions"},
		{"conv 4 5 k=3", {3, {1, 5, 5}}, "takes one positional argument (OUT), got 2"},
		{"nsm 0 k=3", {3, {1, 5, 5}}, "K=0 is out of range 1..4096"},
		{"sab 4", {3, {1, 4, 4}}, "needs a set input T x D, got 3 dimensions"},
		{"conv 4", {3, {1, 5, 5}}, "needs k=K"},
		{"conv 4 k=7", {3, {1, 5, 5}}, "does not fit"},
		{"conv 0 k=1", {3, {1, 5, 5}}, "OUT=0"},
		{"conv 4 k=3 init=bogus", {3, {1, 5, 5}}, "bogus"},
		{"conv 4 k=3 stride=2 algo=pixel", {3, {1, 5, 5}}, "algo=pixel needs stride=1"},
		{"pool max k=2 pad=2", {3, {1, 5, 5}}, "at most k/2"},
		{"pool min k=2", {3, {1, 5, 5}}, "unknown kind 'min'"},
		{"input 1 28 27", {3, {1, 28, 28}}, "dimension 3 is 27"},
		{"input 10", {3, {1, 28, 28}}, "declares 1 dimensions"},
		{"input 2 2 2 mean=1,2,3", {3, {2, 2, 2}}, "more than the 2 values"},
		{"input 2 2 2 std=1,0", {3, {2, 2, 2}}, "positive"},
		{"dropout p=1", {1, {4}}, "must be in [0, 1)"},
		{"residual {\nconv 3 k=3 stride=2\n}", {3, {2, 5, 5}}, "shortcut"},
		{"residual shortcut=identity {\nconv 3 k=1\n}", {3, {2, 5, 5}}, "shortcut=identity"},
		{"residual {\nnosuch\n}", {3, {2, 5, 5}}, "t.spec:2:1"},
		{"gap", {1, {4}}, "C x H x W"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sk_spec *s = sk_spec_parse(bad[i].spec, "t.spec");
		sk_seq *q = s ? sk_seq_build(s, bad[i].in, "") : NULL;
		int ok = !q && strstr(sk_errmsg(), bad[i].msg) != NULL;
		if (!strcmp(bad[i].msg, "shortcut")) /* auto shortcut: a conv, so this one builds */
			ok = q != NULL && q->layers[0]->nchild == 2;
		tap_ok(ok, "'%.*s': %s", (int)strcspn(bad[i].spec, "\n"), bad[i].spec, q ? "(built)" : sk_errmsg());
		sk_seq_free(q);
		sk_spec_free(s);
	}
}

/* Memory a layer owns (sk_layer_parts): a second setup, for a larger batch,
 * replaces what the first took and keeps what create() took; the sequence
 * then computes the bits of one set up for that batch at once. */
static void owned_memory(void)
{
	static const char text[] = "input 2 6 6 mean=0.5 std=2\nconv 9 k=3 pad=1\nbn\nrelu\npool max k=2\n"
	                           "residual shortcut=conv {\nconv 4 k=3 pad=1\n}\nnsm 5 k=2\nsim l2 3 k=2\n"
	                           "flatten\nlinear 3\n";
	enum { N = 6 };
	sk_shape in = sk_shape3(2, 6, 6);
	sk_seq *a = build(text, in, 2, NULL), *b = build(text, in, N, NULL);
	if (!tap_ok(a && b, "owned memory: the sequence builds (%s)", a && b ? "" : sk_errmsg())) {
		sk_seq_free(a);
		sk_seq_free(b);
		return;
	}
	int nmem[16], same = 1, kept = 1;
	for (int i = 0; i < a->n && i < 16; i++)
		nmem[i] = a->layers[i]->nmem;
	int rc = sk_seq_setup(a, N);
	for (int i = 0; i < a->n && i < 16; i++) {
		same &= a->layers[i]->nmem == nmem[i] && a->layers[i]->nmem == b->layers[i]->nmem;
		kept &= a->layers[i]->nmem_kept == b->layers[i]->nmem_kept;
	}
	tap_ok(rc == 0 && same && kept && a->layers[0]->nmem_kept == 1 && a->layers[2]->nmem_kept == 1,
	       "owned memory: a second setup drops the first's blocks and keeps create()'s (input %d, bn %d)",
	       a->layers[0]->nmem_kept, a->layers[2]->nmem_kept);
	size_t nin = sk_shape_size(in), nout = sk_shape_size(a->out);
	float *x = malloc(nin * N * sizeof(float)), *ya = malloc(nout * N * sizeof(float));
	fill_normal(x, nin * N, 9);
	for (int t = 0; t < 2; t++) {
		sk_ctx c = ctx0;
		c.train = c.update_buffers = t;
		const float *p = rc == 0 ? sk_seq_forward(a, &c, N, x) : NULL, *q;
		if (p)
			memcpy(ya, p, nout * N * sizeof(float));
		q = sk_seq_forward(b, &c, N, x);
		tap_ok(p && q && !memcmp(ya, q, nout * N * sizeof(float)),
		       "owned memory: set up for 2 then %d examples = set up for %d (%s mode)", N, N, t ? "train" : "eval");
	}
	free(x);
	free(ya);
	sk_seq_free(a);
	sk_seq_free(b);
}

/* An nsm layer's outputs do not depend on how a batch is cut: its solver
 * runs one image at a time, so that the blocks of positions whose dynamics
 * stop together (tol > 0) never span images.  The inference engine on 1 to
 * 3 threads, in slices of 1, 3, 4 or its choice, gives the bits of the
 * training engine's forward. */
static void nsm_cuts(void)
{
	static const char text[] = "input 2 9 9\nnsm 6 k=3 iters=150 eta=0.2 tol=0.002\n";
	static const int threads[] = {1, 2, 3, 2}, slices[] = {0, 1, 4, 3};
	enum { N = 11 };
	sk_model *m = sk_model_from_text(text, "nsm.spec");
	if (!tap_ok(m && sk_model_init(m, 5) == 0, "nsm model builds (%s)", m ? "" : sk_errmsg())) {
		sk_model_free(m);
		return;
	}
	/* lateral weights that make the dynamics take many steps */
	sk_param *pm = &m->seq->layers[1]->params[1];
	int K = (int)pm->shape[0];
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			pm->w[i * K + j] = i == j ? 1.0f : 0.15f + 0.05f * (float)((i + j) % 3);
	size_t nin = sk_shape_size(m->in), nout = sk_shape_size(m->seq->out);
	float *x = malloc(nin * N * sizeof(float)), *ref = malloc(nout * N * sizeof(float));
	float *y = malloc(nout * N * sizeof(float));
	fill_normal(x, nin * N, 17);
	sk_engine *e0 = sk_engine_new(m, 1, N, NULL, 0);   /* FTZ/DAZ in this thread, as in the engine's */
	const float *z = sk_seq_setup(m->seq, N) == 0 ? sk_seq_forward(m->seq, &ctx0, N, x) : NULL;
	sk_engine_free(e0);
	if (!tap_ok(z != NULL, "nsm: the training forward runs (%s)", z ? "" : sk_errmsg()))
		goto out;
	memcpy(ref, z, nout * N * sizeof(float));
	for (int k = 0; k < 4; k++) {
		sk_engine *e = sk_engine_new(m, threads[k], N, NULL, slices[k]);
		memset(y, 0xff, nout * N * sizeof(float));
		int ok = e && sk_engine_forward(e, N, x, y, NULL) == 0;
		tap_ok(ok && !memcmp(y, ref, nout * N * sizeof(float)),
		       "nsm tol=0.002: the engine on %d thread%s in slices of %d gives the training forward's bits%s%s",
		       threads[k], threads[k] > 1 ? "s" : "", e ? sk_engine_slice(e) : 0, ok ? "" : ": ",
		       ok ? "" : sk_errmsg());
		sk_engine_free(e);
	}
out:
	free(x);
	free(ref);
	free(y);
	sk_model_free(m);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *t;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	t = malloc((size_t)n + 1);
	if (fread(t, 1, (size_t)n, f) != (size_t)n) {
		free(t);
		fclose(f);
		return NULL;
	}
	t[n] = 0;
	fclose(f);
	return t;
}

/* Build a model spec file with the shape of its input line. */
static sk_seq *build_model(const char *name, sk_spec **sp)
{
	char path[1024];
	const char *dir = getenv("SK_SRCDIR");
	if (dir)
		snprintf(path, sizeof path, "%s/share/models/%s.spec", dir, name);
	else
		snprintf(path, sizeof path, "%s/%s.spec", SK_MODELS_DIR, name);
	char *text = slurp(path);
	sk_spec *s = text ? sk_spec_parse(text, path) : NULL;
	sk_seq *q = NULL;
	free(text);
	if (!s) {
		tap_diag("%s: %s", path, text ? sk_errmsg() : "cannot read");
		return NULL;
	}
	sk_specline *o = &s->lines[0];
	sk_shape in = {o->npos, {0}};
	for (int i = 0; i < o->npos && i < 3; i++)
		in.d[i] = atoi(o->pos[i]);
	if (!strcmp(o->type, "input") && o->npos >= 1 && o->npos <= 3)
		q = sk_seq_build(s, in, "");
	if (!q)
		tap_diag("%s: %s", path, sk_errmsg());
	*sp = s;
	return q;
}

static double conv_flops(sk_seq *q)
{
	double f = 0;
	for (int i = 0; i < q->n; i++)
		if (!strcmp(q->layers[i]->ops->type, "conv"))
			f += q->layers[i]->flops;
	return f;
}

static void models(void)
{
	static const struct {
		const char *name;
		size_t params;
		double conv_mflop;  /* 0: not checked */
		int out;
	} m[] = {
		{"zoo-cnn", 4970, 0.2335, 10},
		{"lenet5", 61706, 0, 10},
		{"nin", 4840, 3.4688, 10},
		{"nin-28", 4340, 1.8718, 10},
		{"resnet20", 269722, 0, 10},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		sk_spec *s = NULL;
		sk_seq *q = build_model(m[i].name, &s);
		if (!tap_ok(q != NULL, "%s.spec builds from its input line", m[i].name)) {
			sk_spec_free(s);
			continue;
		}
		size_t np = sk_seq_param_count(q);
		tap_ok(np == m[i].params, "%s: %zu parameters (expected %zu)", m[i].name, np, m[i].params);
		tap_ok(q->out.n == 1 && q->out.d[0] == m[i].out, "%s: %d outputs", m[i].name, q->out.d[0]);
		if (m[i].conv_mflop > 0)
			tap_ok(fabs(conv_flops(q) / 1e6 - m[i].conv_mflop) < 1e-3, "%s: conv MFLOP %.4f (expected %.4f)",
			       m[i].name, conv_flops(q) / 1e6, m[i].conv_mflop);
		/* one training step runs end to end */
		int n = 3;
		size_t in = sk_shape_size(q->in);
		float *x = malloc(in * n * sizeof(float)), *dy = malloc(10 * n * sizeof(float));
		for (size_t j = 0; j < in * n; j++)
			x[j] = (float)(j % 256);
		fill_normal(dy, 10 * (size_t)n, 2);
		sk_ctx c = ctx0;
		c.train = c.update_buffers = 1;
		const float *y = NULL;
		if (sk_seq_setup(q, n) == 0 && sk_seq_init(q, 1) == 0)
			y = sk_seq_forward(q, &c, n, x);
		int finite = y != NULL;
		for (int j = 0; y && j < 10 * n; j++)
			finite &= isfinite(y[j]) != 0;
		tap_ok(finite && sk_seq_backward(q, &c, n, x, dy, NULL) == 0, "%s: forward and backward run (%.2f MFLOP)",
		       m[i].name, sk_seq_flops(q) / 1e6);
		free(x);
		free(dy);
		sk_seq_free(q);
		sk_spec_free(s);
	}
	/* the residual blocks of resnet20 name their children after the block */
	sk_spec *s = NULL;
	sk_seq *q = build_model("resnet20", &s);
	tap_ok(q && sk_seq_find(q, "residual5.conv1") && sk_seq_find(q, "residual21.bn5"),
	       "resnet20: child layers named <block>.<type><i>");
	sk_seq_free(q);
	sk_spec_free(s);
}

static void kernels(void)
{
	/* im2col then col2im multiplies each input by its number of windows */
	sk_conv_geom g;
	float x[2 * 5 * 5], col[2 * 9 * 9 * 2], back[2 * 5 * 5];
	tap_ok(sk_conv_geom_init(&g, 2, 5, 5, 3, 2, 1) == 0 && g.oh == 3 && g.ow == 3, "conv geometry 5x5 k3 s2 p1");
	for (int i = 0; i < 50; i++)
		x[i] = 1;
	memset(back, 0, sizeof back);
	sk_im2col(&g, x, col, 9);
	sk_col2im(&g, col, 9, back);
	/* row 0 (0,0): windows at oy in {0,1,2} cover rows -1..1, 1..3, 3..5 */
	tap_ok(back[0] == 1 && back[1 * 5 + 1] == 4 && back[2 * 5 + 2] == 1 && back[1] == 2,
	       "col2im is the adjoint of im2col (counts %g %g %g %g)", (double)back[0], (double)back[6],
	       (double)back[12], (double)back[1]);
	enum { TM = 37, TN = 21 };
	float *src = malloc(TM * TN * sizeof(float)), *dst = malloc(TN * 40 * sizeof(float));
	int tbad = 0;
	for (int i = 0; i < TM * TN; i++)
		src[i] = (float)i;
	for (int m = 1; m <= TM; m += 4)
		for (int n = 1; n <= TN; n += 5) {
			for (int i = 0; i < TN * 40; i++)
				dst[i] = -1;
			sk_transpose(m, n, src, TN, dst, 40);
			for (int i = 0; i < m; i++)
				for (int j = 0; j < n; j++)
					tbad += dst[j * 40 + i] != src[i * TN + j];
			for (int j = 0; j < n; j++)
				for (int i = m; i < 40; i++)
					tbad += dst[j * 40 + i] != -1;
		}
	tap_ok(tbad == 0, "transpose of every block shape up to 37x21 (%d wrong)", tbad);
	free(src);
	free(dst);
	float a[37], b[37];
	for (int i = 0; i < 37; i++)
		a[i] = (float)i, b[i] = 1;
	sk_vaxpy(37, 2.0f, a, b);
	tap_ok(b[36] == 73 && b[0] == 1 && sk_vsum(37, a) == 666 && sk_vdot(37, a, a) == 16206,
	       "vector helpers (%s)", sk_cpu_path());
	for (int i = 0; i < 37; i++)
		a[i] = (float)(i % 5) - 2.0f;
	sk_vrelu(37, 0.5f, a, b);
	int rbad = 0;
	for (int i = 0; i < 37; i++)
		rbad += b[i] != (a[i] > 0 ? a[i] : 0.5f * a[i]);
	float ones[37], gr[37];
	sk_vset(37, 1.0f, ones);
	sk_vrelu_back(37, 0.25f, a, ones, gr);
	for (int i = 0; i < 37; i++)
		rbad += gr[i] != (a[i] > 0 ? 1.0f : 0.25f);
	float rows[2 * 19];
	sk_vset(38, 1.0f, rows);
	float bias2[2] = {2, -1};
	sk_vadd_rows(2, 19, bias2, rows);
	rbad += rows[18] != 3 || rows[19] != 0 || rows[37] != 0;
	tap_ok(rbad == 0, "relu, relu gradient and row bias kernels (%d wrong)", rbad);
	{
		/* the ReLU layer's semantics: +0 (not -0) for slope 0, NaN kept;
		 * u8 to float; momentum SGD bitwise equal to the scalar formula */
		float xr[37], yr[37], w[37], g[37], m[37], w2[37], m2[37];
		uint8_t u[37];
		int kbad = 0;
		for (int i = 0; i < 37; i++) {
			xr[i] = i % 7 == 3 ? NAN : (float)(i % 5) - 2.5f;
			u[i] = (uint8_t)(i * 7);
			w[i] = w2[i] = 0.1f * (float)i - 1.3f;
			g[i] = 0.37f * (float)(i % 11) - 1.7f;
			m[i] = m2[i] = 0.05f * (float)(i % 3);
		}
		sk_vrelu(37, 0.0f, xr, yr);
		for (int i = 0; i < 37; i++)
			kbad += isnan(xr[i]) ? !isnan(yr[i]) : xr[i] > 0 ? yr[i] != xr[i] : (yr[i] != 0 || signbit(yr[i]));
		sk_vcvt_u8(37, u, yr);
		for (int i = 0; i < 37; i++)
			kbad += yr[i] != (float)u[i];
		sk_vsgd(37, 0.05f, 0.9f, 5e-4f, w, g, m);
		for (int i = 0; i < 37; i++) {
			float mi = 0.9f * m2[i] + (g[i] + 5e-4f * w2[i]);
			m2[i] = mi;
			w2[i] -= 0.05f * mi;
		}
		kbad += memcmp(w, w2, sizeof w) != 0 || memcmp(m, m2, sizeof m) != 0;
		tap_ok(kbad == 0, "relu (+0, NaN), u8 conversion and SGD kernels match the scalar forms (%s, %d wrong)",
		       sk_cpu_path(), kbad);
	}
	/* tanh and sigmoid against libm over a wide range, zero and the tails */
	enum { NT = 2001 };
	float *tx = malloc(NT * sizeof(float)), *ty = malloc(NT * sizeof(float)), *sy = malloc(NT * sizeof(float));
	for (int i = 0; i < NT; i++)
		tx[i] = (float)(i - NT / 2) * 0.02f; /* -20 .. 20, with 0 */
	tx[3] = 1e-6f;
	tx[4] = -3e-5f;
	tx[5] = 100.0f;
	tx[6] = -100.0f;
	sk_vtanh(NT, tx, ty);
	sk_vsigmoid(NT, tx, sy);
	double terr = 0, serr = 0;
	for (int i = 0; i < NT; i++) {
		double t = tanh((double)tx[i]), sg = 1.0 / (1.0 + exp(-(double)tx[i]));
		/* relative error, absolute below the normal floats */
		double e1 = fabs(ty[i] - t) / fmax(fabs(t), 1e-30), e2 = fabs(sy[i] - sg) / fmax(sg, 1e-31);
		if (e1 > terr)
			terr = e1;
		if (e2 > serr)
			serr = e2;
	}
	tap_ok(terr < 1e-6 && serr < 1e-6 && ty[NT / 2] == 0, "tanh and sigmoid kernels (%s): max rel err %.2g %.2g",
	       sk_cpu_path(), terr, serr);
	free(tx);
	free(ty);
	free(sy);
}

int main(void)
{
	/* small groups, so that batches of 3 to 5 split into full and partial ones */
	setenv("SK_CONV_COLS", "32", 1);
	setenv("SK_DCONV_PIX", "20", 1);
	sk_blas_threads(1);
	kernels();
	gradients();
	contract();
	forwards();
	errors();
	owned_memory();
	nsm_cuts();
	models();
	return tap_done();
}
