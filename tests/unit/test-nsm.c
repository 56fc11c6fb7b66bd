/* test-nsm.c: the NSM solver: the dynamics' fixed point, the direction and
 * size of the W, M and Wz updates, threads, errors, and the nsm layer. */
#include "gradcheck.h"
#include "sk_cluster.h"
#include "sk_cpu.h"
#include "sk_layer.h"
#include "sk_nsm.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* M = 0.3 I + G G' / k (symmetric positive definite), eta = 1 / lambda_max */
static float make_m(int k, float *M, uint64_t seed)
{
	float *G = calloc((size_t)k * k, sizeof *G), *v = calloc((size_t)k, sizeof *v), *u = calloc((size_t)k, sizeof *u);
	sk_rng r = sk_rng_make(seed, 1);
	for (int i = 0; i < k * k; i++)
		G[i] = sk_rng_next_normal(&r);
	for (int i = 0; i < k; i++)
		for (int j = 0; j < k; j++) {
			double a = i == j ? 0.3 : 0;
			for (int t = 0; t < k; t++)
				a += (double)G[i * k + t] * G[j * k + t] / k;
			M[i * k + j] = (float)a;
		}
	for (int i = 0; i < k; i++)
		v[i] = 1;
	double lam = 0;
	for (int it = 0; it < 200; it++) {
		double n = 0;
		for (int i = 0; i < k; i++) {
			u[i] = 0;
			for (int j = 0; j < k; j++)
				u[i] += M[i * k + j] * v[j];
			n += (double)u[i] * u[i];
		}
		n = sqrt(n);
		lam = n;
		for (int i = 0; i < k; i++)
			v[i] = (float)(u[i] / n);
	}
	free(G);
	free(v);
	free(u);
	return (float)(1.0 / lam);
}

static void test_fixed_point(void)
{
	enum { K = 7, N = 33 };
	float M[K * K], A[K * K], u[K * N], v[K * N], y[K * N], t[K * N];
	float eta = make_m(K, M, 5);
	sk_rng r = sk_rng_make(9, 2);
	for (int i = 0; i < K * N; i++) {
		u[i] = sk_rng_next_normal(&r);
		v[i] = eta * u[i];
	}
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			A[i * K + j] = (i == j) - eta * M[i * K + j];
	double d2, y2;
	int it = sk_nsm_dynamics(K, N, A, v, y, t, 3000, 1e-7f, &d2, &y2);
	tap_ok(it < 3000 && sqrt(d2 / y2) <= 1e-7, "dynamics converge (%d steps, rel. change %.2g)", it, sqrt(d2 / y2));
	/* KKT of min_{y>=0} 1/2 y'My - y'u: y >= 0, g = My - u >= 0, y_i g_i = 0 */
	double worst_neg = 0, worst_active = 0, worst_inactive = 0;
	int nact = 0, ninact = 0;
	for (int c = 0; c < N; c++)
		for (int i = 0; i < K; i++) {
			double g = -u[i * N + c], yi = y[i * N + c];
			for (int j = 0; j < K; j++)
				g += (double)M[i * K + j] * y[j * N + c];
			if (yi < worst_neg)
				worst_neg = yi;
			if (yi > 0) {
				nact++;
				if (fabs(g) > worst_active)
					worst_active = fabs(g);
			} else {
				ninact++;
				if (-g > worst_inactive)
					worst_inactive = -g;
			}
		}
	tap_ok(worst_neg >= 0, "fixed point is nonnegative");
	tap_ok(nact > 0 && ninact > 0, "both active (%d) and inactive (%d) outputs occur", nact, ninact);
	tap_ok(worst_active < 1e-4, "stationarity on the active set: max |My - u| = %.2g", worst_active);
	tap_ok(worst_inactive < 1e-4, "inactive outputs have My - u >= 0 (worst %.2g)", -worst_inactive);
	/* y = 0 must not be stationary here, so the test can fail: one step is not enough */
	int it1 = sk_nsm_dynamics(K, N, A, v, y, t, 1, 0, &d2, &y2);
	double w1 = 0;
	for (int c = 0; c < N; c++)
		for (int i = 0; i < K; i++) {
			double g = -u[i * N + c];
			for (int j = 0; j < K; j++)
				g += (double)M[i * K + j] * y[j * N + c];
			if (y[i * N + c] > 0 && fabs(g) > w1)
				w1 = fabs(g);
		}
	tap_ok(it1 == 1 && w1 > 1e-2, "a single step is far from stationary (%.2g): the check has teeth", w1);
}

/* naive reference: patches of image b at position p */
static void patch(const sk_nsm *s, const float *x, int b, int p, double *out)
{
	int oy = p / s->wo, ox = p % s->wo, d = 0;
	for (int c = 0; c < s->o.c; c++)
		for (int i = 0; i < s->o.size; i++)
			for (int j = 0; j < s->o.size; j++)
				out[d++] = x[(((size_t)b * s->o.c + c) * s->o.h + oy * s->o.stride + i) * s->o.w + ox * s->o.stride + j];
}

static sk_nsm *small(int reg, int supervised, int threads, int block)
{
	sk_nsm_opts o;
	sk_nsm_defaults(&o);
	o.c = 2;
	o.h = 7;
	o.w = 6;
	o.k = 5;
	o.size = 3;
	o.stride = 2;
	o.iters = 60;
	o.eta = 0.5f;
	o.reg = reg;
	o.supervised = supervised;
	o.classes = 3;
	o.label_scale = 2.0f;
	o.max_batch = 4;
	o.threads = threads;
	o.block = block;
	return sk_nsm_create(&o, 1);
}

static void fill(float *x, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		x[i] = sk_rng_uniform(seed, 3, i);
}

static void test_updates(int reg, const char *what)
{
	sk_nsm *s = small(reg, 0, 1, 7);
	float x[4 * 2 * 7 * 6];
	if (!tap_ok(s != NULL, "%s: solver created", what))
		return;
	sk_nsm_init(s, SK_NSM_INIT_CONV, 11);
	fill(x, sizeof x / sizeof *x, 4);
	int K = s->o.k, D = s->d, P = s->p, n = 4;
	/* some inhibition so M changes visibly */
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			s->M[i * K + j] = i == j ? 1.0f : 0.05f;
	size_t ny = (size_t)n * K * P;
	float *y = malloc(ny * sizeof *y), *W0 = malloc((size_t)K * D * sizeof *W0), *M0 = malloc((size_t)K * K * sizeof *M0);
	double *yx = calloc((size_t)K * D, sizeof *yx), *yy = calloc((size_t)K * K, sizeof *yy),
	       *xx = calloc((size_t)D * D, sizeof *xx), pt[64];
	sk_nsm_stats st;
	int rc = sk_nsm_forward(s, n, x, NULL, y, &st);
	tap_ok(rc == 0 && st.samples == n * P, "%s: forward (%lld samples)", what, (long long)st.samples);
	/* every output is a fixed point of its own position's problem */
	double worst = 0, neg = 0;
	for (int b = 0; b < n; b++)
		for (int p = 0; p < P; p++) {
			patch(s, x, b, p, pt);
			for (int i = 0; i < K; i++) {
				double u = 0, my = 0, yi = y[((size_t)b * K + i) * P + p];
				for (int d = 0; d < D; d++)
					u += s->W[i * D + d] * pt[d];
				for (int j = 0; j < K; j++)
					my += s->M[i * K + j] * y[((size_t)b * K + j) * P + p];
				if (yi < neg)
					neg = yi;
				double e = yi > 0 ? fabs(my - u) : (u - my > 0 ? u - my : 0);
				if (e > worst)
					worst = e;
				for (int d = 0; d < D; d++)
					yx[i * D + d] += yi * pt[d] / (n * P);
				for (int j = 0; j < K; j++)
					yy[i * K + j] += yi * y[((size_t)b * K + j) * P + p] / (n * P);
			}
			for (int d = 0; d < D; d++)
				for (int e = 0; e < D; e++)
					xx[d * D + e] += pt[d] * pt[e] / (n * P);
		}
	tap_ok(neg >= 0 && worst < 1e-4, "%s: convolutional outputs satisfy the fixed point (%.2g)", what, worst);
	memcpy(W0, s->W, (size_t)K * D * sizeof *W0);
	memcpy(M0, s->M, (size_t)K * K * sizeof *M0);
	float lr = 0.01f;
	rc = sk_nsm_step(s, n, x, NULL, lr, &st);
	tap_ok(rc == 0 && isfinite(st.loss), "%s: step (loss %.4g)", what, st.loss);
	/* expected: dW = 4 lr / K (<yx'> - R), dM = 2 lr / (tau K) (<yy'> - M) */
	double ew = 0, dot = 0, en = 0, em = 0, dotm = 0;
	for (int i = 0; i < K; i++)
		for (int d = 0; d < D; d++) {
			double r = reg == SK_NSM_REG_WEIGHT ? W0[i * D + d] : 0;
			if (reg == SK_NSM_REG_WHITEN)
				for (int e = 0; e < D; e++)
					r += W0[i * D + e] * xx[e * D + d];
			double g = yx[i * D + d] - r, want = 4.0 * lr / K * g, got = s->W[i * D + d] - W0[i * D + d];
			if (fabs(want - got) > ew)
				ew = fabs(want - got);
			dot += got * g;
			en += want * want;
		}
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++) {
			double g = yy[i * K + j] - M0[i * K + j], want = 2.0 * lr / (s->o.tau * K) * g,
			       got = s->M[i * K + j] - M0[i * K + j];
			if (fabs(want - got) > em)
				em = fabs(want - got);
			dotm += got * g;
		}
	tap_ok(dot > 0 && ew < 1e-5 + 1e-3 * sqrt(en), "%s: W moves along <y x'> - R (max error %.2g, |dW| %.2g)", what,
	       ew, sqrt(en));
	tap_ok(dotm > 0 && em < 1e-6, "%s: M moves along <y y'> - M (max error %.2g)", what, em);
	int sym = 1;
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			sym &= s->M[i * K + j] == s->M[j * K + i];
	tap_ok(sym, "%s: M stays exactly symmetric", what);
	free(y);
	free(W0);
	free(M0);
	free(yx);
	free(yy);
	free(xx);
	sk_nsm_free(s);
}

static void test_supervised(void)
{
	sk_nsm *s = small(SK_NSM_REG_WEIGHT, 1, 1, 0), *u = small(SK_NSM_REG_WEIGHT, 0, 1, 0);
	float x[4 * 2 * 7 * 6];
	int32_t lab[4] = {0, 2, 2, 1}, badlab[4] = {0, 3, 0, 0};
	if (!tap_ok(s && u, "supervised solver created"))
		return;
	sk_nsm_init(s, SK_NSM_INIT_UNIT, 3);
	sk_nsm_init(u, SK_NSM_INIT_UNIT, 3);
	fill(x, sizeof x / sizeof *x, 8);
	int K = s->o.k, P = s->p;
	size_t ny = (size_t)4 * K * P;
	float *y1 = malloc(ny * sizeof *y1), *y2 = malloc(ny * sizeof *y2);
	/* with Wz = 0 the label term does nothing */
	tap_ok(fabs(s->Wz[0]) > 0 && fabs(s->Wz[0]) <= 1 / sqrt(3.0), "Wz starts uniform in +-1/sqrt(classes)");
	memset(s->Wz, 0, sizeof(float) * (size_t)s->o.k * 3);
	sk_nsm_forward(s, 4, x, lab, y1, NULL);
	sk_nsm_forward(u, 4, x, NULL, y2, NULL);
	tap_ok(!memcmp(y1, y2, ny * sizeof *y1), "supervised with Wz = 0 equals unsupervised");
	for (int i = 0; i < 3; i++)
		tap_ok(sk_nsm_step(s, 4, x, lab, 0.05f, NULL) == 0, "supervised step %d", i + 1);
	double wz = 0;
	for (int i = 0; i < K * 3; i++)
		wz += fabs(s->Wz[i]);
	tap_ok(wz > 0, "Wz learns (sum |Wz| = %.3g)", wz);
	/* check one Wz update against the formula */
	float *Wz0 = malloc((size_t)K * 3 * sizeof *Wz0);
	memcpy(Wz0, s->Wz, (size_t)K * 3 * sizeof *Wz0);
	sk_nsm_forward(s, 4, x, lab, y1, NULL);
	sk_nsm_step(s, 4, x, lab, 0.05f, NULL);
	double err = 0, sc = s->o.label_scale, N = 4.0 * P;
	for (int i = 0; i < K; i++)
		for (int c = 0; c < 3; c++) {
			double yz = 0, cnt = 0;
			for (int b = 0; b < 4; b++)
				if (lab[b] == c) {
					cnt += P;
					for (int p = 0; p < P; p++)
						yz += y1[((size_t)b * K + i) * P + p];
				}
			double want = 4 * 0.05 / K * (sc * yz / N - sc * sc * Wz0[i * 3 + c] * cnt / N);
			double got = s->Wz[i * 3 + c] - Wz0[i * 3 + c];
			if (fabs(want - got) > err)
				err = fabs(want - got);
		}
	tap_ok(err < 1e-6, "Wz update matches s<y z'> - s^2 Wz <z z'> (max error %.2g)", err);
	/* with a learned Wz the label changes the outputs; inference drops it */
	sk_nsm_forward(s, 4, x, lab, y1, NULL);
	sk_nsm_forward(s, 4, x, NULL, y2, NULL);
	tap_ok(memcmp(y1, y2, ny * sizeof *y1) != 0, "the label term changes the training dynamics");
	int rc = sk_nsm_step(s, 4, x, badlab, 0.05f, NULL);
	tap_ok(rc < 0 && strstr(sk_errmsg(), "label"), "an out-of-range label is refused: %s", sk_errmsg());
	rc = sk_nsm_step(s, 4, x, NULL, 0.05f, NULL);
	tap_ok(rc < 0, "supervised step without labels is refused: %s", sk_errmsg());
	free(y1);
	free(y2);
	free(Wz0);
	sk_nsm_free(s);
	sk_nsm_free(u);
}

/* the fused kernel (where the CPU has it) and the portable path agree */
static void test_kernels(void)
{
	enum { K = 13, N = 150 };
	float M[K * K], A[K * K], v[K * N], y1[K * N], y2[K * N], t[K * N];
	float eta = make_m(K, M, 8);
	for (int i = 0; i < K * N; i++)
		v[i] = eta * sk_rng_normal(4, 5, (uint64_t)i);
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			A[i * K + j] = (i == j) - eta * M[i * K + j];
	double da, ya, db, yb;
	sk_cpu_set_isa(SK_ISA_PORTABLE);
	int ia = sk_nsm_dynamics(K, N, A, v, y1, t, 25, 0, &da, &ya);
	sk_cpu_set_isa(sk_cpu_best());
	int ib = sk_nsm_dynamics(K, N, A, v, y2, t, 25, 0, &db, &yb);
	double e = 0;
	for (int i = 0; i < K * N; i++)
		e = fmax(e, fabs(y1[i] - y2[i]));
	tap_ok(ia == 25 && ib == 25 && e < 1e-4 && fabs(da - db) <= 1e-3 * da + 1e-9 && fabs(ya - yb) <= 1e-4 * ya,
	       "fused kernel and portable path agree (max |dy| %.2g, change %.3g vs %.3g)", e, db, da);
}

/* eta = 1 oscillates once lambda_max(M) > 2; --eta auto (1/lambda_max) converges */
static void test_eta_auto(void)
{
	sk_nsm *s = small(SK_NSM_REG_WEIGHT, 0, 1, 0);
	float x[4 * 2 * 7 * 6];
	sk_nsm_stats st;
	fill(x, sizeof x / sizeof *x, 12);
	sk_nsm_init(s, SK_NSM_INIT_CONV, 5);
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5; j++)
			s->M[i * 5 + j] = i == j ? 3.0f : 0.1f;
	s->o.eta = 1.0f;
	sk_nsm_forward(s, 4, x, NULL, NULL, &st);
	tap_ok(st.delta > 0.5, "eta 1 with lambda_max(M) = 3.4 does not converge (|dy|/|y| %.2g)", st.delta);
	s->o.eta_auto = 1;
	sk_nsm_forward(s, 4, x, NULL, NULL, &st);
	tap_ok(st.delta < 1e-5 && fabs(st.lambda - 3.4) < 1e-4 && fabs(st.eta - 1 / 3.4) < 1e-5,
	       "eta auto: lambda %.5f, eta %.5f, |dy|/|y| %.2g", st.lambda, st.eta, st.delta);
	sk_nsm_free(s);
}

static void test_threads(void)
{
	sk_nsm *a = small(SK_NSM_REG_WEIGHT, 0, 1, 5), *b = small(SK_NSM_REG_WEIGHT, 0, 3, 5);
	float x[4 * 2 * 7 * 6];
	fill(x, sizeof x / sizeof *x, 21);
	sk_nsm_init(a, SK_NSM_INIT_CONV, 2);
	sk_nsm_init(b, SK_NSM_INIT_CONV, 2);
	for (int i = 0; i < 5; i++) {
		sk_nsm_step(a, 4, x, NULL, 0.1f, NULL);
		sk_nsm_step(b, 4, x, NULL, 0.1f, NULL);
	}
	double e = 0;
	for (int i = 0; i < a->o.k * a->d; i++)
		e = fmax(e, fabs(a->W[i] - b->W[i]));
	tap_ok(e < 1e-5, "3 workers agree with 1 (max |dW| %.2g)", e);
	sk_nsm *c = small(SK_NSM_REG_WEIGHT, 0, 3, 5);
	sk_nsm_init(c, SK_NSM_INIT_CONV, 2);
	for (int i = 0; i < 5; i++)
		sk_nsm_step(c, 4, x, NULL, 0.1f, NULL);
	tap_ok(!memcmp(b->W, c->W, sizeof(float) * (size_t)b->o.k * b->d), "same seed and threads: same bits");
	sk_nsm_free(a);
	sk_nsm_free(b);
	sk_nsm_free(c);
}

static void test_errors(void)
{
	sk_nsm_opts o;
	sk_nsm_defaults(&o);
	o.c = 1;
	o.h = o.w = 5;
	tap_ok(!sk_nsm_create(&o, 1) && strstr(sk_errmsg(), "filter size 6"), "oversized filter refused: %s",
	       sk_errmsg());
	o.size = 3;
	o.eta = 0;
	tap_ok(!sk_nsm_create(&o, 1) && strstr(sk_errmsg(), "eta"), "eta 0 refused: %s", sk_errmsg());
	o.eta = 1;
	o.supervised = 1;
	o.classes = 0;
	tap_ok(!sk_nsm_create(&o, 1) && strstr(sk_errmsg(), "class count"), "supervised without classes refused: %s",
	       sk_errmsg());
	o.supervised = 0;
	sk_nsm *s = sk_nsm_create(&o, 1);
	float x[129 * 25];
	memset(x, 0, sizeof x);
	int rc = s ? sk_nsm_forward(s, 129, x, NULL, NULL, NULL) : 0;
	tap_ok(rc < 0 && strstr(sk_errmsg(), "129"), "oversized batch refused: %s", sk_errmsg());
	/* divergence is reported, not silently kept: excitatory lateral weights */
	sk_nsm_init(s, SK_NSM_INIT_CONV, 1);
	for (int i = 0; i < 50; i++)
		for (int j = 0; j < 50; j++)
			s->M[i * 50 + j] = i == j ? 1.0f : -0.5f;
	for (int i = 0; i < 25 * 8; i++)
		x[i] = 1.0f;
	rc = sk_nsm_step(s, 8, x, NULL, 0.05f, NULL);
	tap_ok(rc < 0 && strstr(sk_errmsg(), "diverged"), "diverging dynamics reported: %s", sk_errmsg());
	sk_nsm_free(s);
}

/* nsm-pretrain --algo kmeans's update, lib/cluster.c's online k-means: the
 * spherical variant picks the largest dot product (here not the nearest
 * centre), counts it and moves it by 1/count. */
static void test_kmeans_online(void)
{
	float C[4] = {2, 0, 0, 0.5f}, x[2] = {0.6f, 0.8f};
	double cnt[2] = {0, 3};
	int c = sk_kmeans_online(C, 2, 2, x, cnt, 0);
	tap_ok(c == 1 && cnt[1] == 4 && fabsf(C[2] - 0.15f) < 1e-7f && fabsf(C[3] - 0.575f) < 1e-7f && C[0] == 2,
	       "online k-means: the nearest centre moves by 1/count (%d: %g %g)", c, C[2], C[3]);
	C[2] = 0;
	C[3] = 0.5f;
	c = sk_kmeans_online(C, 2, 2, x, cnt, 1);
	tap_ok(c == 0 && cnt[0] == 1 && C[0] == 0.6f && C[1] == 0.8f,
	       "spherical: the largest dot product wins and a first count copies x (%d: %g %g)", c, C[0], C[1]);
}

static void test_layer(void)
{
	sk_spec *sp = sk_spec_parse("nsm 5 k=3 stride=2 iters=60 eta=0.5\n", "t.spec");
	sk_seq *q = sp ? sk_seq_build(sp, sk_shape3(2, 7, 6), "") : NULL;
	if (!tap_ok(q && q->n == 1, "nsm layer builds: %s", q ? "" : sk_errmsg()))
		return;
	sk_layer *l = q->layers[0];
	tap_ok(l->out.d[0] == 5 && l->out.d[1] == 3 && l->out.d[2] == 2 && l->nparams == 2 &&
	           !strcmp(l->params[0].name, "nsm1.w") && !strcmp(l->params[1].name, "nsm1.m"),
	       "shape 5x3x2, parameters nsm1.w and nsm1.m");
	sk_seq_init(q, 4);
	tap_ok(l->params[1].w[0] == 1 && l->params[1].w[1] == 0 && l->params[1].w[6] == 1, "m starts as I");
	sk_nsm *s = small(SK_NSM_REG_WEIGHT, 0, 1, 0);
	sk_nsm_init(s, SK_NSM_INIT_CONV, 1);
	for (int i = 0; i < 25; i++)
		s->M[i] = i % 6 == 0 ? 1.1f : 0.02f;
	memcpy(l->params[0].w, s->W, sizeof(float) * 5 * 18);
	memcpy(l->params[1].w, s->M, sizeof(float) * 25);
	sk_seq_setup(q, 4);
	float x[4 * 2 * 7 * 6], y[4 * 5 * 6];
	fill(x, sizeof x / sizeof *x, 6);
	sk_ctx c = {0};
	const float *out = sk_seq_forward(q, &c, 4, x);
	for (int b = 0; b < 4; b++)   /* the layer runs the solver one image a call */
		sk_nsm_forward(s, 1, x + (size_t)b * 2 * 7 * 6, NULL, y + (size_t)b * 5 * 6, NULL);
	tap_ok(out && !memcmp(out, y, sizeof y), "layer forward equals the solver (one image a call)");
	float dy[4 * 5 * 6] = {0};
	l->params[0].frozen = l->params[1].frozen = 1;
	tap_ok(sk_seq_backward(q, &c, 4, x, dy, NULL) == 0, "frozen first layer: backward is a no-op");
	sk_nsm_free(s);
	sk_seq_free(q);
	sk_spec_free(sp);
	sp = sk_spec_parse("nsm 5 k=9\n", "t.spec");
	q = sp ? sk_seq_build(sp, sk_shape3(1, 7, 7), "") : NULL;
	tap_ok(!q && strstr(sk_errmsg(), "k=9"), "oversized k refused: %s", sk_errmsg());
	sk_spec_free(sp);
}

/* the implicit gradient at the fixed point against finite differences
 * (M = I at init: the lateral gradient is checked around it) */
static void test_gradient(void)
{
	gc_opts o = {0};
	o.n = 2;
	o.samples = 40;
	o.rtol = 3e-2;
	o.eps = 2e-4;
	tap_ok(gc_check("nsm 4 k=3 iters=300\n", sk_shape3(2, 6, 6), &o) == 0, "nsm gradient check (stride 1)");
	tap_ok(gc_check("nsm 3 k=2 stride=2 iters=300 eta=0.8\nrelu\nnsm 5 k=2 iters=300\n", sk_shape3(1, 7, 7), &o) == 0,
	       "nsm gradient check (two stacked layers)");
	/* backprop=0: dx is written as zeros, the parameters still get theirs */
	o.n = 3;
	o.extra = 2;
	o.flags = GC_ZERO_INPUT;
	tap_ok(gc_check("nsm 3 k=3 iters=300 backprop=0\n", sk_shape3(2, 5, 5), &o) == 0,
	       "nsm gradient check (backprop=0)");
}

int main(void)
{
	test_fixed_point();
	test_updates(SK_NSM_REG_WEIGHT, "weight");
	test_updates(SK_NSM_REG_WHITEN, "whiten");
	test_updates(SK_NSM_REG_NONE, "none");
	test_supervised();
	test_kernels();
	test_eta_auto();
	test_threads();
	test_errors();
	test_kmeans_online();
	test_layer();
	test_gradient();
	return tap_done();
}
