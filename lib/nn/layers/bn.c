/* bn.c: batch normalisation, `bn [eps=E] [momentum=M]`.
 *
 * Per channel for C x H x W inputs, per feature for vectors (and for the
 * last dimension of T x D sets).  In training (ctx->train) it normalises
 * with the statistics of the batch; the running mean and variance (buffers
 * `<name>.mean`, `<name>.var`) move by momentum M towards the batch's
 * (unbiased variance, as PyTorch) only when ctx->update_buffers is set.  In
 * evaluation it uses the running statistics.  Trainable: `gamma` (1) and
 * `beta` (0), excluded from weight decay.
 */
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_plan.h"

#include <math.h>

typedef struct bn {
	float eps, momentum;
	int nc, inner, outer;  /* channels, run length, runs of channels per example */
	int batch_stats;       /* the last forward used batch statistics */
	float *mean, *istd;    /* statistics used by the last forward (nc each) */
} bn;

static int bn_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	bn *b = l->priv;
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	if (sk_opt_float(s, o, "eps", 1e-5f, &b->eps) < 0 || sk_opt_float(s, o, "momentum", 0.1f, &b->momentum) < 0)
		return -1;
	if (!(b->eps > 0))
		return sk_spec_error(s, o, "eps=%g must be positive", (double)b->eps);
	if (!(b->momentum >= 0 && b->momentum <= 1))
		return sk_spec_error(s, o, "momentum=%g must be in [0, 1]", (double)b->momentum);
	if (l->in.n == 3) {
		b->nc = l->in.d[0];
		b->inner = l->in.d[1] * l->in.d[2];
		b->outer = 1;
	} else {
		b->nc = l->in.d[l->in.n - 1];
		b->inner = 1;
		b->outer = l->in.n == 2 ? l->in.d[0] : 1;
	}
	l->out = l->in;
	l->flops = 2.0 * (double)sk_shape_size(l->in);
	int64_t shape[1] = {b->nc};
	if (sk_layer_param(l, "gamma", 1, shape, SK_INIT_ONE, 0, 0, 0, SK_P_NODECAY) < 0 ||
	    sk_layer_param(l, "beta", 1, shape, SK_INIT_ZERO, 0, 0, 0, SK_P_NODECAY) < 0 ||
	    sk_layer_param(l, "mean", 1, shape, SK_INIT_ZERO, 0, 0, 0, SK_P_BUFFER) < 0 ||
	    sk_layer_param(l, "var", 1, shape, SK_INIT_ONE, 0, 0, 0, SK_P_BUFFER) < 0)
		return -1;
	/* usable before any initialisation (a model is zero until init or load) */
	static const float one = 1.0f;
	l->params[0].fill = l->params[3].fill = &one;
	l->params[0].nfill = l->params[3].nfill = 1;
	sk_part parts[] = {SK_PART(b->mean, (size_t)b->nc), SK_PART(b->istd, (size_t)b->nc)};
	return sk_layer_parts(l, 2, parts);
}

/* Visit every run of one channel: x + offset(i, r) for example i, run r. */
#define RUNS(b, n, c, ...) \
	for (int i_ = 0; i_ < (n); i_++) \
		for (int r_ = 0; r_ < (b)->outer; r_++) { \
			size_t off = (((size_t)i_ * (b)->outer + r_) * (b)->nc + (c)) * (b)->inner; \
			__VA_ARGS__ \
		}

static int bn_forward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, float *y)
{
	bn *b = l->priv;
	const float *gamma = l->params[0].w, *beta = l->params[1].w;
	float *rmean = l->params[2].w, *rvar = l->params[3].w;
	size_t m = (size_t)n * b->outer * b->inner, run = (size_t)b->inner;
	b->batch_stats = ctx->train != 0;
	for (int c = 0; c < b->nc; c++) {
		float mu, var;
		if (b->batch_stats) {
			/* sums shifted by the channel's first value: no cancellation
			 * when the mean is large against the spread */
			float k = x[(size_t)c * run];
			double s1 = 0, s2 = 0;
			RUNS(b, n, c, sk_vstats(run, x + off, k, &s1, &s2);)
			double dm = s1 / (double)m, v = s2 / (double)m - dm * dm;
			if (v < 0)
				v = 0;
			mu = (float)(k + dm);
			var = (float)v;
			if (ctx->update_buffers) {
				float unb = m > 1 ? (float)(v * (double)m / (double)(m - 1)) : var;
				rmean[c] += b->momentum * (mu - rmean[c]);
				rvar[c] += b->momentum * (unb - rvar[c]);
			}
		} else {
			mu = rmean[c];
			var = rvar[c];
		}
		float is = 1.0f / sqrtf(var + b->eps), a = gamma[c] * is;
		b->mean[c] = mu;
		b->istd[c] = is;
		RUNS(b, n, c, sk_vaffine(run, a, mu, beta[c], x + off, y + off);)
	}
	return 0;
}

static int bn_backward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, const float *y, const float *dy,
                       float *dx)
{
	bn *b = l->priv;
	const float *gamma = l->params[0].w;
	float *ggamma = l->params[0].g, *gbeta = l->params[1].g;
	size_t m = (size_t)n * b->outer * b->inner, run = (size_t)b->inner;
	(void)ctx;
	(void)y;
	for (int c = 0; c < b->nc; c++) {
		float mu = b->mean[c], is = b->istd[c];
		double sd = 0, sdx = 0; /* sum dy, sum dy * xhat */
		RUNS(b, n, c, {
			sd += sk_vsum(run, dy + off);
			sdx += sk_vdot_shift(run, dy + off, x + off, mu);
		})
		sdx *= is;
		ggamma[c] += (float)sdx;
		gbeta[c] += (float)sd;
		if (!dx)
			continue;
		float a = gamma[c] * is;
		if (!b->batch_stats) {
			RUNS(b, n, c, sk_vaffine(run, a, 0.0f, 0.0f, dy + off, dx + off);)
			continue;
		}
		/* dx = a (dy - mean(dy) - xhat mean(dy xhat)) = a dy + bx (x - mu) + cx */
		float mdy = (float)(sd / (double)m), mdx = (float)(sdx / (double)m);
		float bx = -a * is * mdx, cx = -a * mdy;
		RUNS(b, n, c, sk_vaffine2(run, a, dy + off, bx, x + off, mu, cx, dx + off);)
	}
	return 0;
}

int sk_bn_eval_affine(const sk_layer *l, double *a, double *b, int nc)
{
	const bn *p = l->priv;
	const float *gamma = l->params[0].w, *beta = l->params[1].w, *rmean = l->params[2].w, *rvar = l->params[3].w;
	if (l->in.n != 3 || p->nc != nc)
		return 0;
	for (int c = 0; c < nc; c++) {
		a[c] = (double)gamma[c] / sqrt((double)rvar[c] + (double)p->eps);
		b[c] = (double)beta[c] - a[c] * (double)rmean[c];
	}
	return nc;
}

SK_LAYER(bn, "bn [eps=E] [momentum=M]", .priv_size = sizeof(bn), .batch_stats = 1);
