/* sim.c: the SimNet similarity layer.
 *
 *   y[n, m*Co + c', i, j] = sum_k phi(x_patch[k]; z[m,k], u[m,k]) (+ b[m])
 *
 * over conv-like patches (block cb x kh x kw, strides, zero padding) with
 * phi = u z x (linear), -u |x - z| (l1), -u (x - z)^2 (l2), or
 * 1/2 (-u (x - z)^2 + log(u + eps) - log 2pi) (l2n: a diagonal Gaussian
 * log-density with precisions u).  u >= 0 by clipping after each step
 * (param=clip, the original's choice) or u = exp(theta) (param=exp; the log
 * term is then theta).  nan=skip treats NaN inputs as missing: they are left
 * out of the sum (marginalised).  Unsupervised init (init_data): k-means or
 * a diagonal GMM on stride-1 patches of the layer's input.
 */
#include "sk_cluster.h"
#include "sk_layer.h"
#include "sk_rng.h"
#include "sk_simkern.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

enum { K_LINEAR, K_L1, K_L2, K_L2N };
static const char *const kinds[] = {"linear", "l1", "l2", "l2n", NULL};
static const double kind_flops[] = {2, 3, 4, 4};
#define LOG2PI 1.8378770664093453

typedef struct sim {
	int kind, M, bias, nanskip, pexp;
	float eps, fill;   /* fill: value of out-of-bounds (padding) inputs */
	sk_patchgeom g;
	int iz, iu, ib;
	size_t cp;    /* padded columns at max_batch */
	float *P, *dP, *Y, *Ue, *LA, *dUe, *dLA, *W;
} sim;

static int sim_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	sim *S = l->priv;
	int k, kh, kw, stride, pad, cb, cs, par;
	const char *kn;
	float zstd, uinit;
	static const char *const pars[] = {"clip", "exp", NULL};
	static const char *const nans[] = {"keep", "skip", NULL};
	static const char *const oobs[] = {"zero", "nan", NULL};
	int oob;
	if (sk_opt_pos_str(s, o, 0, 1, NULL, &kn) < 0)
		return -1;
	for (S->kind = 0; kinds[S->kind] && strcmp(kinds[S->kind], kn); S->kind++)
		;
	if (!kinds[S->kind])
		return sk_spec_error(s, o, "unknown kind '%s' (linear, l1, l2, l2n)", kn);
	if (sk_opt_pos_int(s, o, 1, 1, 0, &S->M) < 0 || sk_opt_int(s, o, "k", 1, &k) < 0 ||
	    sk_opt_int(s, o, "kh", k, &kh) < 0 || sk_opt_int(s, o, "kw", k, &kw) < 0 ||
	    sk_opt_int(s, o, "stride", 1, &stride) < 0 || sk_opt_int(s, o, "pad", 0, &pad) < 0 ||
	    sk_opt_int(s, o, "cb", l->in.d[0], &cb) < 0 || sk_opt_int(s, o, "cs", cb, &cs) < 0 ||
	    sk_opt_int(s, o, "bias", 0, &S->bias) < 0 || sk_opt_choice(s, o, "nan", nans, 0, &S->nanskip) < 0 ||
	    sk_opt_choice(s, o, "oob", oobs, 0, &oob) < 0 ||
	    sk_opt_choice(s, o, "param", pars, 0, &par) < 0 || sk_opt_float(s, o, "eps", 1e-3f, &S->eps) < 0 ||
	    sk_opt_float(s, o, "zstd", 1.0f, &zstd) < 0 || sk_opt_float(s, o, "uinit", 1.0f, &uinit) < 0)
		return -1;
	S->pexp = par == 1;
	if (oob == 1 && !S->nanskip)
		return sk_spec_error(s, o, "oob=nan needs nan=skip (NaN padding would make every border output NaN)");
	S->fill = oob == 1 ? NAN : 0.0f;
	if (S->M < 1 || S->M > 65536)
		return sk_spec_error(s, o, "template count %d is not in 1..65536", S->M);
	if (!(S->eps > 0) || !(uinit > 0) || !(zstd >= 0))
		return sk_spec_error(s, o, "eps, uinit must be > 0 and zstd >= 0");
	S->g = (sk_patchgeom){.C = l->in.d[0], .H = l->in.d[1], .W = l->in.d[2], .cb = cb, .kh = kh, .kw = kw,
	                      .sc = cs, .sh = stride, .sw = stride, .pc = 0, .ph = pad, .pw = pad};
	if (sk_patchgeom_init(&S->g) < 0)
		return sk_spec_error(s, o, "%s", sk_errmsg());
	if ((int64_t)S->M * S->g.Q > (int64_t)SK_MAX_ACT)
		return sk_spec_error(s, o, "%d templates over %d positions is too large an output (more than %zu values)",
		                     S->M, S->g.Q, SK_MAX_ACT);
	l->out = sk_shape3(S->M * S->g.Co, S->g.Ho, S->g.Wo);
	int64_t shp[4] = {S->M, cb, kh, kw}, bs[1] = {S->M};
	if ((S->iz = sk_layer_param(l, "z", 4, shp, SK_INIT_NORMAL, zstd, S->g.K, S->M, 0)) < 0 ||
	    (S->iu = sk_layer_param(l, "u", 4, shp, SK_INIT_CONST, S->pexp ? logf(uinit) : uinit, S->g.K, S->M, 0)) <
	            0)
		return -1;
	S->ib = -1;
	if (S->bias && (S->ib = sk_layer_param(l, "b", 1, bs, SK_INIT_ZERO, 0, 1, 1, SK_P_NODECAY)) < 0)
		return -1;
	l->flops = (kind_flops[S->kind] * S->g.K + (S->bias ? 1 : 0)) * (double)S->M * S->g.Q;
	return 0;
}

static int sim_setup(sk_layer *l, int max_batch)
{
	sim *S = l->priv;
	size_t kp, mp, mk = (size_t)S->M * S->g.K;
	S->cp = sk_simkern_padcols((size_t)max_batch * S->g.Q);
	if (sk_mul_size(S->cp, (size_t)S->g.K, &kp) < 0 || sk_mul_size(S->cp, (size_t)S->M, &mp) < 0)
		return -1;
	sk_part parts[] = {SK_PART(S->P, kp),   SK_PART(S->dP, kp),  SK_PART(S->Y, mp),   SK_PART(S->Ue, mk),
	                   SK_PART(S->LA, mk),  SK_PART(S->dUe, mk), SK_PART(S->dLA, mk), SK_PART(S->W, mk)};
	return sk_layer_parts(l, 8, parts);
}

/* Effective weights Ue and log-weights LA from the parameter. */
static void weights(sim *S, const sk_param *pu)
{
	size_t mk = (size_t)S->M * S->g.K;
	for (size_t i = 0; i < mk; i++) {
		float w = pu->w[i];
		if (S->pexp) {
			S->Ue[i] = expf(w);
			S->LA[i] = w;
		} else {
			S->Ue[i] = w;
			S->LA[i] = logf((w > 0 ? w : 0) + S->eps);
		}
	}
}

/* Per-example path: when Q is a multiple of the kernels' column alignment,
 * the kernels read and write the layer's own input and output layouts (no
 * scatter or gather copies, patch blocks small enough for the cache). */
static int direct(const sim *S)
{
	return S->g.Q % SK_SIMKERN_QALIGN == 0 && (S->kind == K_L1 || S->kind == K_L2) && !S->nanskip;
}

static int sim_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	sim *S = l->priv;
	const sk_patchgeom *g = &S->g;
	int M = S->M, K = g->K, Q = g->Q;
	size_t nq = (size_t)n * Q, cp = sk_simkern_padcols(nq);
	const float *Z = l->params[S->iz].w;
	(void)c;
	if (direct(S)) {
		size_t insz = (size_t)g->C * g->H * g->W;
		weights(S, &l->params[S->iu]);
		for (int e = 0; e < n; e++) {
			float *Pe = S->P + (size_t)e * K * Q, *ye = y + (size_t)e * M * Q;
			sk_patch_im2col(g, 1, x + (size_t)e * insz, NULL, Q, Pe, (size_t)Q, 0.0f);
			sk_sim_fwd(S->kind == K_L1 ? SK_SIM_L1 : SK_SIM_L2, M, K, Q, Pe, Z, S->Ue, ye);
			if (S->ib >= 0)
				for (int m = 0; m < M; m++)
					for (int q = 0; q < Q; q++)
						ye[(size_t)m * Q + q] += l->params[S->ib].w[m];
		}
		return 0;
	}
	sk_patch_im2col(g, n, x, NULL, Q, S->P, cp, S->fill);
	for (int k = 0; k < K; k++)
		memset(S->P + (size_t)k * cp + nq, 0, (cp - nq) * sizeof(float));
	weights(S, &l->params[S->iu]);
	if (S->kind == K_LINEAR) {
		if (S->nanskip)
			for (size_t i = 0; i < (size_t)K * cp; i++)
				if (isnan(S->P[i]))
					S->P[i] = 0;
		for (size_t i = 0; i < (size_t)M * K; i++)
			S->W[i] = S->Ue[i] * Z[i];
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, (int)cp, K, 1.0f, S->W, K, S->P, (int)cp, 0.0f,
		            S->Y, (int)cp);
	} else {
		int kk = S->kind == K_L1 ? SK_SIM_L1 : SK_SIM_L2;
		if (S->nanskip)
			sk_sim_fwd_nan(kk, M, K, (int)cp, S->P, Z, S->Ue, S->kind == K_L2N ? S->LA : NULL, S->Y);
		else {
			sk_sim_fwd(kk, M, K, (int)cp, S->P, Z, S->Ue, S->Y);
			if (S->kind == K_L2N)
				for (int m = 0; m < M; m++) {
					double a = 0;
					for (int k = 0; k < K; k++)
						a += S->LA[(size_t)m * K + k];
					float cst = (float)(0.5 * (a - K * LOG2PI));
					float *yr = S->Y + (size_t)m * cp;
					for (size_t q = 0; q < nq; q++)
						yr[q] = 0.5f * yr[q] + cst;
				}
		}
	}
	sk_batch_ungroup(n, M, (size_t)Q, S->Y, cp, S->ib >= 0 ? l->params[S->ib].w : NULL, y);
	return 0;
}

static int sim_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	sim *S = l->priv;
	const sk_patchgeom *g = &S->g;
	int M = S->M, K = g->K, Q = g->Q;
	size_t nq = (size_t)n * Q, cp = sk_simkern_padcols(nq), mk = (size_t)M * K;
	sk_param *pz = &l->params[S->iz], *pu = &l->params[S->iu];
	float *G = S->Y; /* the forward's Y is not needed any more */
	(void)c;
	(void)y;
	if (direct(S)) {
		size_t insz = (size_t)g->C * g->H * g->W;
		memset(S->dUe, 0, mk * sizeof(float));
		if (dx)
			memset(dx, 0, (size_t)n * insz * sizeof(float));
		for (int e = 0; e < n; e++) {
			const float *Pe = S->P + (size_t)e * K * Q, *ge = dy + (size_t)e * M * Q;
			sk_sim_bwd(S->kind == K_L1 ? SK_SIM_L1 : SK_SIM_L2, M, K, Q, Pe, pz->w, S->Ue, ge, dx ? S->dP : NULL,
			           pz->g, S->dUe);
			if (dx)
				sk_patch_col2im(g, 1, S->dP, (size_t)Q, NULL, Q, dx + (size_t)e * insz);
			if (S->ib >= 0)
				for (int m = 0; m < M; m++) {
					double sb = 0;
					for (int q = 0; q < Q; q++)
						sb += ge[(size_t)m * Q + q];
					l->params[S->ib].g[m] += (float)sb;
				}
		}
		for (size_t i = 0; i < mk; i++)
			pu->g[i] += S->pexp ? S->dUe[i] * S->Ue[i] : S->dUe[i];
		return 0;
	}
	sk_batch_group(n, M, (size_t)Q, dy, G, cp);
	for (int m = 0; m < M; m++) {
		float *gr = G + (size_t)m * cp;
		memset(gr + nq, 0, (cp - nq) * sizeof(float));
		if (S->ib >= 0) {
			double s = 0;
			for (size_t q = 0; q < nq; q++)
				s += gr[q];
			l->params[S->ib].g[m] += (float)s;
		}
	}
	memset(S->dUe, 0, mk * sizeof(float));
	memset(S->dLA, 0, mk * sizeof(float));
	float *dP = dx ? S->dP : NULL;
	if (S->kind == K_LINEAR) {
		/* dW = G P^T into dLA (scratch), dP = W^T G */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, (int)cp, 1.0f, G, (int)cp, S->P, (int)cp, 0.0f,
		            S->dLA, K);
		for (size_t i = 0; i < mk; i++) {
			pz->g[i] += S->Ue[i] * S->dLA[i];
			S->dUe[i] = pz->w[i] * S->dLA[i];
			S->dLA[i] = 0;
		}
		if (dP)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)cp, M, 1.0f, S->W, K, G, (int)cp, 0.0f,
			            dP, (int)cp);
	} else {
		int kk = S->kind == K_L1 ? SK_SIM_L1 : SK_SIM_L2;
		if (S->nanskip)
			sk_sim_bwd_nan(kk, M, K, (int)cp, S->P, pz->w, S->Ue, S->kind == K_L2N ? S->LA : NULL, G, dP, pz->g,
			               S->dUe, S->dLA);
		else {
			if (S->kind == K_L2N)
				for (int m = 0; m < M; m++) {
					float *gr = G + (size_t)m * cp;
					double s = 0;
					for (size_t q = 0; q < nq; q++) {
						gr[q] *= 0.5f;
						s += gr[q];
					}
					for (int k = 0; k < K; k++)
						S->dLA[(size_t)m * K + k] = (float)s;
				}
			sk_sim_bwd(kk, M, K, (int)cp, S->P, pz->w, S->Ue, G, dP, pz->g, S->dUe);
		}
	}
	for (size_t i = 0; i < mk; i++) {
		float gu = S->dUe[i];
		if (S->pexp)
			gu = gu * S->Ue[i] + S->dLA[i];
		else if (S->kind == K_L2N)
			gu += S->dLA[i] / ((pu->w[i] > 0 ? pu->w[i] : 0) + S->eps);
		pu->g[i] += gu;
	}
	if (dx) {
		size_t insz = (size_t)g->C * g->H * g->W;
		memset(dx, 0, (size_t)n * insz * sizeof(float));
		sk_patch_col2im(g, n, dP, cp, NULL, Q, dx);
		if (S->nanskip)
			for (size_t i = 0; i < (size_t)n * insz; i++)
				if (isnan(x[i]))
					dx[i] = 0;
	}
	return 0;
}

static void sim_project(sk_layer *l)
{
	sim *S = l->priv;
	sk_param *pu = &l->params[S->iu];
	if (S->pexp)
		return;
	for (size_t i = 0; i < pu->size; i++)
		if (!(pu->w[i] >= 0))
			pu->w[i] = 0;
}

/* Unsupervised init: stride-1 patches of the input (up to 20000, seeded),
 * k-means (templates = centroids) or a diagonal GMM (templates = means,
 * weights = precisions, bias = log mixture weight and normaliser). */
static int sim_init_data(sk_layer *l, const char *method, int n, const float *x, uint64_t seed)
{
	sim *S = l->priv;
	sk_patchgeom g1 = S->g;
	int gmm, M = S->M, K;
	size_t np, maxp = 20000, insz = (size_t)S->g.C * S->g.H * S->g.W;
	float *X = NULL, *P1 = NULL, *mu = NULL, *var = NULL, *pi = NULL;
	int *pos = NULL, rc = -1;
	if (!strcmp(method, "kmeans") || !strcmp(method, "default"))
		gmm = 0;
	else if (!strcmp(method, "gmm"))
		gmm = 1;
	else
		return sk_error("unknown init method '%s' (kmeans, gmm; default: kmeans)", method);
	g1.sh = g1.sw = 1;
	g1.sc = 1;
	if (sk_patchgeom_init(&g1) < 0 || n < 1)
		return n < 1 ? sk_error("no examples for the init") : -1;
	K = g1.K;
	np = (size_t)n * g1.Q < maxp ? (size_t)n * g1.Q : maxp;
	if (np < (size_t)M)
		return sk_error("%zu patches are too few for %d templates", np, M);
	X = sk_alloc_array(np * (size_t)K, 4);
	P1 = sk_alloc_array((size_t)K, 4);
	mu = sk_alloc_array((size_t)M * K, 4);
	var = sk_alloc_array((size_t)M * K, 4);
	pi = sk_alloc_array((size_t)M, 4);
	pos = sk_alloc_array(1, sizeof(int));
	if (!X || !P1 || !mu || !var || !pi || !pos)
		goto out;
	{
		sk_rng r = sk_rng_make(seed, sk_rng_hash("sim-init-patches"));
		for (size_t i = 0; i < np; i++) {
			size_t t = np == (size_t)n * g1.Q ? i : (size_t)sk_rng_next_below(&r, (uint64_t)n * g1.Q);
			int e = (int)(t / (size_t)g1.Q);
			pos[0] = (int)(t % (size_t)g1.Q);
			sk_patch_im2col(&g1, 1, x + (size_t)e * insz, pos, 1, P1, 1, 0.0f);
			for (int k = 0; k < K; k++) {
				float v = P1[k];
				X[i * K + k] = isnan(v) ? 0.0f : v;
			}
		}
	}
	if (gmm ? sk_gmm_diag(X, np, K, M, 100, seed, mu, var, pi) < 0
	        : sk_kmeans(X, np, K, M, 100, 1024, seed, mu, var, pi) < 0)
		goto out;
	{
		sk_param *pz = &l->params[S->iz], *pu = &l->params[S->iu];
		memcpy(pz->w, mu, (size_t)M * K * sizeof(float));
		if (gmm) {
			for (int m = 0; m < M; m++) {
				double lv = 0;
				for (int k = 0; k < K; k++) {
					size_t i = (size_t)m * K + k;
					float u = S->kind == K_L2N ? 1.0f / var[i]
					        : S->kind == K_L2  ? 0.5f / var[i]
					        : S->kind == K_L1  ? 1.0f / sqrtf(var[i])
					                           : pu->w[i];
					pu->w[i] = S->pexp ? logf(u) : u;
					lv += log(var[i]);
				}
				if (S->ib >= 0)
					l->params[S->ib].w[m] = (float)(log(pi[m]) - (S->kind == K_L2 ? 0.5 * (K * LOG2PI + lv) : 0));
			}
		}
	}
	rc = 0;
out:
	sk_free(X);
	sk_free(P1);
	sk_free(mu);
	sk_free(var);
	sk_free(pi);
	sk_free(pos);
	return rc;
}

SK_LAYER(sim,
         "sim linear|l1|l2|l2n M [k=K kh= kw= stride=S pad=P cb=CB cs=S bias=0|1 nan=keep|skip "
         "oob=zero|nan param=clip|exp eps=1e-3 zstd=1 uinit=1]",
         .setup = sim_setup, .project = sim_project, .init_data = sim_init_data, .priv_size = sizeof(sim),
         .in_dims = 3);
