/* nsm.c: the NSM dynamics as a feature extractor, `nsm K k=S [stride=T]
 * [iters=N] [eta=E] [tol=X] [backprop=1]`.
 *
 * Parameters: `w` (K x C x S x S, the encoder filters, as a conv layer's)
 * and `m` (K x K, the lateral weights).  The output is the fixed point of
 * y <- [y - eta (M y - W x)]+ at every position (no padding), K x Ho x Wo,
 * exactly what nsm-pretrain trains.  Initialisation: w as PyTorch's Conv2d
 * default, U(-1/sqrt(C S S), 1/sqrt(C S S)); m = I.
 *
 * Backward is the implicit gradient at the fixed point: with A the active
 * set (y_A > 0), M_AA y_A = u_A, so for an upstream gradient dy, g solves
 * M_AA g_A = dy_A (g = 0 off A) and du = g, dW = sum g x', dM = -sum g y',
 * dx = col2im(W' g).  It is exact when the dynamics have converged (the
 * forward's last change is small; raise iters otherwise).  backprop=0 skips
 * the input gradient (dx = 0): use it when nothing before the layer trains
 * (right after `input`), since the per-position solves cost time.  Training
 * W and M by backpropagation is possible but is not NSM: nsm-pretrain learns
 * them with the local rules; freeze the layer to keep them.
 */
#include "sk_layer.h"
#include "sk_nsm.h"

#include <math.h>
#include <string.h>

typedef struct nsml {
	sk_nsm_opts o;
	sk_nsm *s;
	int backprop;
	double *mA, *gA;   /* K x K system and K right-hand side (backward) */
	int *act;          /* the active set, K */
} nsml;

static int nsm_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	nsml *p = l->priv;
	int K;
	sk_nsm_defaults(&p->o);
	if (sk_opt_count(s, o, "K", 4096, &K) < 0 || sk_opt_int(s, o, "k", 0, &p->o.size) < 0 ||
	    sk_opt_int(s, o, "stride", 1, &p->o.stride) < 0 || sk_opt_int(s, o, "iters", 40, &p->o.iters) < 0 ||
	    sk_opt_float(s, o, "eta", 1.0f, &p->o.eta) < 0 || sk_opt_float(s, o, "tol", 0.0f, &p->o.tol) < 0 ||
	    sk_opt_int(s, o, "backprop", 1, &p->backprop) < 0)
		return -1;
	if (p->o.size < 1 || p->o.size > l->in.d[1] || p->o.size > l->in.d[2])
		return sk_spec_error(s, o, "k=%d must be in 1..%d (the input size)", p->o.size,
		                     l->in.d[1] < l->in.d[2] ? l->in.d[1] : l->in.d[2]);
	if (p->o.stride < 1 || p->o.stride > 64)
		return sk_spec_error(s, o, "stride=%d must be in 1..64", p->o.stride);
	int ho, wo;
	if (sk_window(l->in.d[1], p->o.size, p->o.stride, 0, "k", "stride", "pad", &ho) < 0 ||
	    sk_window(l->in.d[2], p->o.size, p->o.stride, 0, "k", "stride", "pad", &wo) < 0)
		return sk_spec_error(s, o, "%s", sk_errmsg());
	if ((int64_t)l->in.d[0] * p->o.size * p->o.size > (1 << 20))
		return sk_spec_error(s, o, "k=%d over %d channels is too large a patch (more than %d values)", p->o.size,
		                     l->in.d[0], 1 << 20);
	if ((int64_t)K * l->in.d[0] * p->o.size * p->o.size > (int64_t)SK_MAX_PARAM)
		return sk_spec_error(s, o, "K=%d filters of k=%d over %d channels are too many weights (more than %zu)", K,
		                     p->o.size, l->in.d[0], SK_MAX_PARAM);
	if (p->o.iters < 1 || p->o.iters > 100000)
		return sk_spec_error(s, o, "iters=%d must be in 1..100000", p->o.iters);
	if (!(p->o.eta > 0 && p->o.eta < 100))
		return sk_spec_error(s, o, "eta must be in (0, 100)");
	if (!(p->o.tol >= 0 && p->o.tol < 1))
		return sk_spec_error(s, o, "tol must be in [0, 1)");
	p->o.k = K;
	p->o.c = l->in.d[0];
	p->o.h = l->in.d[1];
	p->o.w = l->in.d[2];
	double D = (double)p->o.c * p->o.size * p->o.size, P = (double)ho * wo;
	l->out = sk_shape3(K, ho, wo);
	l->flops = 2.0 * K * D * P + 2.0 * (p->o.iters - 1) * (double)K * K * P;
	int64_t wshape[4] = {K, p->o.c, p->o.size, p->o.size}, mshape[2] = {K, K};
	if (sk_layer_param(l, "w", 4, wshape, SK_INIT_UNIFORM, (float)(1.0 / sqrt(D)), (int)D, K * p->o.size * p->o.size,
	                   0) < 0)
		return -1;
	if (sk_layer_param(l, "m", 2, mshape, SK_INIT_CUSTOM, 0, K, K, SK_P_NODECAY) < 0)
		return -1;
	return 0;
}

static int nsm_init(sk_layer *l, uint64_t seed)
{
	sk_param *m = &l->params[1];
	int K = (int)m->shape[0];
	(void)seed;
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			m->w[(size_t)i * (size_t)K + (size_t)j] = i == j ? 1.0f : 0.0f;
	return 0;
}

/* The solver runs one image a call (forward), so that its blocks of
 * positions never span images: an output is the same however the batch is
 * cut, into the replicas of a training team or an inference engine (which
 * are the threads: sk_train.h, sk_infer.h) or into slices.  Hence one
 * worker: the solver runs inside the thread of its replica. */
static int nsm_setup(sk_layer *l, int max_batch)
{
	nsml *p = l->priv;
	size_t K = (size_t)p->o.k;
	sk_part parts[] = {SK_PART(p->mA, K * K), SK_PART(p->gA, K), SK_PART(p->act, K)};
	(void)max_batch;
	sk_nsm_free(p->s);
	p->o.max_batch = 1;
	p->o.threads = 1;
	if (!(p->s = sk_nsm_create(&p->o, 0)))
		return -1;
	return sk_layer_parts(l, 3, parts);
}

static int nsm_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	nsml *p = l->priv;
	size_t in = sk_shape_size(l->in), out = sk_shape_size(l->out);
	(void)c;
	if (!p->s)
		return sk_error("nsm layer used before setup");
	p->s->W = l->params[0].w;
	p->s->M = l->params[1].w;
	for (int i = 0; i < n; i++)
		if (sk_nsm_forward(p->s, 1, x + (size_t)i * in, NULL, y + (size_t)i * out, NULL) < 0)
			return -1;
	return 0;
}

/* Solve a x = b (n x n, row-major, overwritten) by Gaussian elimination with
 * partial pivoting; b becomes x.  -1 when singular. */
static int solve(int n, double *a, double *b)
{
	for (int c = 0; c < n; c++) {
		int piv = c;
		for (int r = c + 1; r < n; r++)
			if (fabs(a[r * n + c]) > fabs(a[piv * n + c]))
				piv = r;
		if (!(fabs(a[piv * n + c]) > 1e-12))
			return -1;
		if (piv != c) {
			for (int j = 0; j < n; j++) {
				double t = a[c * n + j];
				a[c * n + j] = a[piv * n + j];
				a[piv * n + j] = t;
			}
			double t = b[c];
			b[c] = b[piv];
			b[piv] = t;
		}
		for (int r = c + 1; r < n; r++) {
			double f = a[r * n + c] / a[c * n + c];
			if (f == 0)
				continue;
			for (int j = c; j < n; j++)
				a[r * n + j] -= f * a[c * n + j];
			b[r] -= f * b[c];
		}
	}
	for (int c = n - 1; c >= 0; c--) {
		double v = b[c];
		for (int j = c + 1; j < n; j++)
			v -= a[c * n + j] * b[j];
		b[c] = v / a[c * n + c];
	}
	return 0;
}

static int nsm_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	nsml *p = l->priv;
	sk_param *pw = &l->params[0], *pm = &l->params[1];
	int want_w = !pw->frozen && pw->g, want_m = !pm->frozen && pm->g;
	int K = p->o.k, C = p->o.c, H = p->o.h, Wd = p->o.w, S = p->o.size, T = p->o.stride;
	int ho = p->s->ho, wo = p->s->wo, P = ho * wo, D = C * S * S;
	const float *W = pw->w, *M = pm->w;
	(void)c;
	if (dx)
		memset(dx, 0, sizeof(float) * (size_t)n * (size_t)C * (size_t)H * (size_t)Wd);
	if (!want_w && !want_m && (!dx || !p->backprop))
		return 0;
	for (int b = 0; b < n; b++) {
		const float *xb = x + (size_t)b * C * H * Wd;
		const float *yb = y + (size_t)b * K * P, *dyb = dy + (size_t)b * K * P;
		float *dxb = dx ? dx + (size_t)b * C * H * Wd : NULL;
		for (int q = 0; q < P; q++) {
			int na = 0, any = 0;
			for (int i = 0; i < K; i++)
				if (yb[(size_t)i * P + q] > 0) {
					p->act[na++] = i;
					any |= dyb[(size_t)i * P + q] != 0;
				}
			if (!na || !any)
				continue;
			for (int r = 0; r < na; r++) {
				for (int s2 = 0; s2 < na; s2++)
					p->mA[r * na + s2] = M[(size_t)p->act[r] * K + p->act[s2]];
				p->gA[r] = dyb[(size_t)p->act[r] * P + q];
			}
			if (solve(na, p->mA, p->gA) < 0)
				return sk_error("%s: singular lateral weights on the active set (M is not positive definite)",
				                l->name);
			int oy = q / wo, ox = q % wo;
			const float *xp = xb + (size_t)oy * T * Wd + (size_t)ox * T;
			for (int r = 0; r < na; r++) {
				int i = p->act[r];
				float g = (float)p->gA[r];
				if (want_w) {
					float *gw = pw->g + (size_t)i * D;
					for (int ch = 0, d = 0; ch < C; ch++)
						for (int ki = 0; ki < S; ki++)
							for (int kj = 0; kj < S; kj++, d++)
								gw[d] += g * xp[(size_t)ch * H * Wd + (size_t)ki * Wd + kj];
				}
				if (want_m) {
					float *gm = pm->g + (size_t)i * K;
					for (int s2 = 0; s2 < na; s2++)
						gm[p->act[s2]] -= g * yb[(size_t)p->act[s2] * P + q];
				}
				if (dxb && p->backprop) {
					const float *wr = W + (size_t)i * D;
					float *dp = dxb + (size_t)oy * T * Wd + (size_t)ox * T;
					for (int ch = 0, d = 0; ch < C; ch++)
						for (int ki = 0; ki < S; ki++)
							for (int kj = 0; kj < S; kj++, d++)
								dp[(size_t)ch * H * Wd + (size_t)ki * Wd + kj] += g * wr[d];
				}
			}
		}
	}
	return 0;
}

static void nsm_destroy(sk_layer *l) { sk_nsm_free(((nsml *)l->priv)->s); }

SK_LAYER(nsm, "nsm K k=S [stride=T] [iters=N] [eta=E] [tol=X] [backprop=1]",
         .setup = nsm_setup, .destroy = nsm_destroy, .init = nsm_init, .priv_size = sizeof(nsml), .in_dims = 3);
