/* mex.c: the SimNet MEX layer,
 *
 *   y[n, m*Co + c', i, j] = MEX_xi{ x_patch[k] + b[r(q), m, k] : k < K }
 *   MEX_xi(c) = (1/xi) log((1/K) sum_k exp(xi c_k))      (mode=mean)
 *
 * over conv-like blocks (cb channels x kh x kw, strides, zero padding): a
 * block over space is a pooling, a block over channels a "neuron" whose
 * offsets act as weights.  mode=softmax drops the 1/K.  xi spans max
 * (+inf), mean (0) and min (-inf); it is learned per layer or per instance,
 * or fixed (learn=0).  Offsets: none, shared over regions of the output
 * (region sizes; -1 = the whole dimension) or unshared with periods (each
 * position of a period tile has its own offsets); the mode must be named.
 * norm=1 normalises offsets per (region, instance) so exp(b) sums to 1.
 * Evaluation is stable for any input (every exponent <= 0); ties at
 * xi = +-inf give the whole gradient to the first extreme element.
 */
#include "sk_layer.h"
#include "sk_rng.h"
#include "sk_simkern.h"

#include <math.h>
#include <string.h>

enum { OFF_NONE, OFF_SHARED, OFF_UNSHARED };

typedef struct mex {
	int M, softmax, learn, xiper, offmode, norm, binit;
	float xi0, xistd, bstd;
	sk_patchgeom g;
	int R;
	int *pos, *roff;      /* positions grouped by region: pos[roff[r] .. roff[r+1]) */
	int ib, ixi;
	float *xv, *dxv, *Bt, *dBt, *work;
	size_t ct;            /* total padded columns at max_batch */
	float *P, *dP, *Y, *CM, *S, *G;
} mex;

static int ceil_div(int a, int b) { return (int)(((int64_t)a + b - 1) / b); }

static int mex_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	mex *X = l->priv;
	int k, kh, kw, stride, sh, sw, pad, cb, cs, rc_, rs, pc_, ps;
	static const char *const modes[] = {"mean", "softmax", NULL};
	static const char *const pers[] = {"layer", "channel", NULL};
	static const char *const offs[] = {"none", "shared", "unshared", NULL};
	static const char *const binits[] = {"dirichlet", "zero", "normal", NULL};
	int C = l->in.d[0], H = l->in.d[1], W = l->in.d[2];
	if (sk_opt_pos_int(s, o, 0, 0, 1, &X->M) < 0 || sk_opt_int(s, o, "k", 1, &k) < 0 ||
	    sk_opt_int(s, o, "kh", k ? k : H, &kh) < 0 || sk_opt_int(s, o, "kw", k ? k : W, &kw) < 0 ||
	    sk_opt_int(s, o, "stride", 0, &stride) < 0 || sk_opt_int(s, o, "sh", stride ? stride : kh, &sh) < 0 ||
	    sk_opt_int(s, o, "sw", stride ? stride : kw, &sw) < 0 || sk_opt_int(s, o, "pad", 0, &pad) < 0 ||
	    sk_opt_int(s, o, "cb", 1, &cb) < 0 || sk_opt_int(s, o, "cs", cb ? cb : C, &cs) < 0 ||
	    sk_opt_choice(s, o, "mode", modes, 0, &X->softmax) < 0 || sk_opt_float(s, o, "xi", 1.0f, &X->xi0) < 0 ||
	    sk_opt_int(s, o, "learn", isinf(X->xi0) ? 0 : 1, &X->learn) < 0 ||
	    sk_opt_choice(s, o, "xiper", pers, 0, &X->xiper) < 0 || sk_opt_float(s, o, "xistd", 0.0f, &X->xistd) < 0 ||
	    sk_opt_choice(s, o, "offsets", offs, 0, &X->offmode) < 0 || sk_opt_int(s, o, "regionc", -1, &rc_) < 0 ||
	    sk_opt_int(s, o, "region", -1, &rs) < 0 || sk_opt_int(s, o, "periodc", 1, &pc_) < 0 ||
	    sk_opt_int(s, o, "period", 1, &ps) < 0 || sk_opt_int(s, o, "norm", 0, &X->norm) < 0 ||
	    sk_opt_choice(s, o, "binit", binits, 0, &X->binit) < 0 || sk_opt_float(s, o, "bstd", 0.1f, &X->bstd) < 0)
		return -1;
	if (cb == 0)
		cb = C;
	if (cs == 0)
		cs = C;
	if (X->M < 1 || X->M > 65536)
		return sk_spec_error(s, o, "instance count %d is not in 1..65536", X->M);
	if (X->learn && isinf(X->xi0))
		return sk_spec_error(s, o, "xi=%g cannot be learned (use learn=0)", (double)X->xi0);
	if (!(X->xistd >= 0) || isinf(X->xistd))
		return sk_spec_error(s, o, "xistd must be finite and >= 0");
	if (X->norm && X->offmode == OFF_NONE)
		return sk_spec_error(s, o, "norm=1 needs offsets=shared or offsets=unshared");
	X->g = (sk_patchgeom){.C = C, .H = H, .W = W, .cb = cb, .kh = kh, .kw = kw, .sc = cs, .sh = sh, .sw = sw,
	                      .pc = 0, .ph = pad, .pw = pad};
	if (sk_patchgeom_init(&X->g) < 0)
		return sk_spec_error(s, o, "%s", sk_errmsg());
	const sk_patchgeom *g = &X->g;
	if ((int64_t)X->M * g->Q > (int64_t)SK_MAX_ACT)
		return sk_spec_error(s, o, "%d instances over %d positions is too large an output (more than %zu values)",
		                     X->M, g->Q, SK_MAX_ACT);
	/* regions */
	int dc = 1, dh = 1, dw = 1;
	if (X->offmode == OFF_SHARED) {
		dc = rc_ < 0 ? g->Co : rc_;
		dh = rs < 0 ? g->Ho : rs;
		dw = rs < 0 ? g->Wo : rs;
		if (dc < 1 || dh < 1 || dw < 1)
			return sk_spec_error(s, o, "region sizes must be >= 1 or -1 (the whole dimension)");
		X->R = ceil_div(g->Co, dc) * ceil_div(g->Ho, dh) * ceil_div(g->Wo, dw);
	} else if (X->offmode == OFF_UNSHARED) {
		dc = pc_;
		dh = dw = ps;
		if (dc < 1 || dh < 1 || dc > g->Co || dh > g->Ho || dh > g->Wo)
			return sk_spec_error(s, o, "periods %d (channel) and %d (space) must be in 1..%dx%dx%d", dc, dh, g->Co,
			                     g->Ho, g->Wo);
		X->R = dc * dh * dw;
	} else
		X->R = 1;
	/* the offsets (or, without them, the per-region workspace) */
	if ((int64_t)X->R * X->M * g->K > (int64_t)SK_MAX_PARAM)
		return sk_spec_error(s, o, "%d regions x %d instances x %d block values is too large (more than %zu)", X->R,
		                     X->M, g->K, SK_MAX_PARAM);
	sk_part maps[] = {SK_PART(X->pos, (size_t)g->Q), SK_PART(X->roff, (size_t)X->R + 1)};
	if (sk_layer_parts(l, 2, maps) < 0)
		return -1;
	{
		int *cnt = X->roff, nrh = ceil_div(g->Ho, dh), nrw = ceil_div(g->Wo, dw);
		int *rid = sk_alloc_array((size_t)g->Q, sizeof(int));
		if (!rid)
			return -1;
		for (int q = 0; q < g->Q; q++) {
			int c = q / (g->Ho * g->Wo), i = q / g->Wo % g->Ho, j = q % g->Wo, r = 0;
			if (X->offmode == OFF_SHARED)
				r = ((c / dc) * nrh + i / dh) * nrw + j / dw;
			else if (X->offmode == OFF_UNSHARED)
				r = ((c % dc) * dh + i % dh) * dw + j % dw;
			rid[q] = r;
			cnt[r + 1]++;
		}
		for (int r = 0; r < X->R; r++)
			cnt[r + 1] += cnt[r];
		int *fill = sk_alloc_array((size_t)X->R, sizeof(int));
		if (!fill) {
			sk_free(rid);
			return -1;
		}
		for (int q = 0; q < g->Q; q++)
			X->pos[X->roff[rid[q]] + fill[rid[q]]++] = q;
		sk_free(fill);
		sk_free(rid);
	}
	l->out = sk_shape3(X->M * g->Co, g->Ho, g->Wo);
	X->ib = X->ixi = -1;
	if (X->offmode != OFF_NONE) {
		int64_t bs[3] = {X->R, X->M, g->K};
		if ((X->ib = sk_layer_param(l, "b", 3, bs, SK_INIT_CUSTOM, 0, g->K, X->M, 0)) < 0)
			return -1;
	}
	if (X->learn) {
		int64_t xs[1] = {X->xiper ? X->M : 1};
		if ((X->ixi = sk_layer_param(l, "xi", 1, xs, SK_INIT_CUSTOM, 0, 1, 1, SK_P_NODECAY)) < 0)
			return -1;
	}
	l->flops = 4.0 * (double)X->M * g->K * g->Q;
	return 0;
}

static int mex_init(sk_layer *l, uint64_t seed)
{
	mex *X = l->priv;
	if (X->ixi >= 0) {
		sk_param *p = &l->params[X->ixi];
		sk_rng r = sk_rng_make(seed, sk_rng_hash(p->name));
		for (size_t i = 0; i < p->size; i++)
			p->w[i] = X->xi0 + X->xistd * sk_rng_next_normal(&r);
	}
	if (X->ib >= 0) {
		sk_param *p = &l->params[X->ib];
		sk_rng r = sk_rng_make(seed, sk_rng_hash(p->name));
		int K = X->g.K;
		for (size_t row = 0; row < p->size / (size_t)K; row++) {
			float *b = p->w + row * K;
			if (X->binit == 0) { /* log of a Dirichlet(1) draw */
				double s = 0;
				for (int k = 0; k < K; k++) {
					double e = -log(1.0 - (double)sk_rng_next_uniform(&r));
					b[k] = (float)e;
					s += e;
				}
				for (int k = 0; k < K; k++)
					b[k] = (float)log(fmax(b[k] / s, 1e-30));
			} else
				for (int k = 0; k < K; k++)
					b[k] = X->binit == 2 ? X->bstd * sk_rng_next_normal(&r) : 0.0f;
		}
	}
	return 0;
}

static int mex_setup(sk_layer *l, int max_batch)
{
	mex *X = l->priv;
	size_t ct = 0, a, b;
	for (int r = 0; r < X->R; r++)
		ct += sk_simkern_padcols((size_t)max_batch * (size_t)(X->roff[r + 1] - X->roff[r]));
	X->ct = ct;
	if (sk_mul_size(ct, (size_t)X->g.K, &a) < 0 || sk_mul_size(ct, (size_t)X->M, &b) < 0)
		return -1;
	/* effective offsets and their gradient, with offsets only */
	size_t M = (size_t)X->M, rmk = X->ib >= 0 ? (size_t)X->R * M * X->g.K : 1;
	sk_part parts[] = {SK_PART(X->xv, M),   SK_PART(X->dxv, M), SK_PART(X->Bt, rmk),
	                   SK_PART(X->dBt, rmk), SK_PART(X->work, (size_t)X->g.K * 16),
	                   SK_PART(X->P, a),    SK_PART(X->dP, a),  SK_PART(X->Y, b), SK_PART(X->CM, b),
	                   SK_PART(X->S, b),    SK_PART(X->G, b)};
	return sk_layer_parts(l, 11, parts);
}

static void prepare(sk_layer *l, mex *X)
{
	size_t K = (size_t)X->g.K, rows = (size_t)X->R * X->M;
	for (int m = 0; m < X->M; m++)
		X->xv[m] = X->ixi < 0 ? X->xi0 : l->params[X->ixi].w[X->xiper ? m : 0];
	if (X->ib < 0)
		return;
	const float *b = l->params[X->ib].w;
	for (size_t row = 0; row < rows; row++) {
		const float *br = b + row * K;
		float *bt = X->Bt + row * K;
		if (!X->norm) {
			memcpy(bt, br, K * sizeof(float));
			continue;
		}
		float mx = br[0];
		double s = 0;
		for (size_t k = 1; k < K; k++)
			mx = br[k] > mx ? br[k] : mx;
		for (size_t k = 0; k < K; k++)
			s += exp((double)br[k] - mx);
		float lse = (float)(mx + log(s));
		for (size_t k = 0; k < K; k++)
			bt[k] = br[k] - lse;
	}
}

static int mex_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	mex *X = l->priv;
	const sk_patchgeom *g = &X->g;
	int M = X->M, K = g->K, Q = g->Q;
	size_t col = 0;
	(void)c;
	prepare(l, X);
	for (int r = 0; r < X->R; r++) {
		int qr = X->roff[r + 1] - X->roff[r];
		const int *pos = X->pos + X->roff[r], *ipos = X->R > 1 ? pos : NULL;
		size_t nq = (size_t)n * qr, cp = sk_simkern_padcols(nq);
		float *P = X->P + col * K, *Y = X->Y + col * M, *CM = X->CM + col * M, *S = X->S + col * M;
		sk_patch_im2col(g, n, x, ipos, qr, P, cp, 0.0f);
		for (int k = 0; k < K; k++)
			memset(P + (size_t)k * cp + nq, 0, (cp - nq) * sizeof(float));
		sk_mex_fwd(M, K, (int)cp, P, X->ib >= 0 ? X->Bt + (size_t)r * M * K : NULL, X->xv, X->softmax, Y, CM, S);
		for (int m = 0; m < M; m++)
			for (int e = 0; e < n; e++) {
				float *yo = y + ((size_t)e * M + m) * Q;
				const float *yi = Y + (size_t)m * cp + (size_t)e * qr;
				for (int j = 0; j < qr; j++)
					yo[pos[j]] = yi[j];
			}
		col += cp;
	}
	return 0;
}

static int mex_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	mex *X = l->priv;
	const sk_patchgeom *g = &X->g;
	int M = X->M, K = g->K, Q = g->Q;
	size_t col = 0, rmk = (size_t)X->R * M * K;
	(void)c;
	(void)y;
	(void)x;
	memset(X->dxv, 0, (size_t)M * sizeof(float));
	if (X->ib >= 0)
		memset(X->dBt, 0, rmk * sizeof(float));
	if (dx)
		memset(dx, 0, (size_t)n * g->C * g->H * g->W * sizeof(float));
	for (int r = 0; r < X->R; r++) {
		int qr = X->roff[r + 1] - X->roff[r];
		const int *pos = X->pos + X->roff[r], *ipos = X->R > 1 ? pos : NULL;
		size_t nq = (size_t)n * qr, cp = sk_simkern_padcols(nq);
		float *P = X->P + col * K, *dP = X->dP + col * K, *Y = X->Y + col * M, *CM = X->CM + col * M,
		      *S = X->S + col * M, *G = X->G + col * M;
		for (int m = 0; m < M; m++) {
			float *gr = G + (size_t)m * cp;
			for (int e = 0; e < n; e++) {
				const float *gi = dy + ((size_t)e * M + m) * Q;
				for (int j = 0; j < qr; j++)
					gr[(size_t)e * qr + j] = gi[pos[j]];
			}
			memset(gr + nq, 0, (cp - nq) * sizeof(float));
		}
		sk_mex_bwd(M, K, (int)cp, P, X->ib >= 0 ? X->Bt + (size_t)r * M * K : NULL, X->xv, X->softmax, Y, CM, S,
		           G, dx ? dP : NULL, X->ib >= 0 ? X->dBt + (size_t)r * M * K : NULL, X->ixi >= 0 ? X->dxv : NULL,
		           X->work);
		if (dx)
			sk_patch_col2im(g, n, dP, cp, ipos, qr, dx);
		col += cp;
	}
	if (X->ixi >= 0) {
		float *gx = l->params[X->ixi].g;
		for (int m = 0; m < M; m++)
			gx[X->xiper ? m : 0] += X->dxv[m];
	}
	if (X->ib >= 0) {
		sk_param *pb = &l->params[X->ib];
		for (size_t row = 0; row < (size_t)X->R * M; row++) {
			const float *d = X->dBt + row * K;
			float *gb = pb->g + row * K;
			if (!X->norm) {
				for (int k = 0; k < K; k++)
					gb[k] += d[k];
				continue;
			}
			/* b~ = b - LSE(b): db = db~ - softmax(b) sum(db~); softmax(b) = exp(b~) */
			const float *bt = X->Bt + row * K;
			double s = 0;
			for (int k = 0; k < K; k++)
				s += d[k];
			for (int k = 0; k < K; k++)
				gb[k] += d[k] - expf(bt[k]) * (float)s;
		}
	}
	return 0;
}

SK_LAYER(mex,
         "mex [M] [k=K kh= kw= stride=S sh= sw= pad=P cb=CB cs=S xi=1 learn=0|1 xiper=layer|channel "
         "xistd=0 mode=mean|softmax offsets=none|shared|unshared region=D regionc=D period=D periodc=D "
         "norm=0|1 binit=dirichlet|zero|normal bstd=0.1]",
         .setup = mex_setup, .init = mex_init, .priv_size = sizeof(mex), .in_dims = 3);
