/* nsm.c: the NSM dynamics as a feature extractor, `nsm K k=S [stride=T]
 * [iters=N] [eta=E] [tol=X]`.
 *
 * Parameters: `w` (K x C x S x S, the encoder filters, as a conv layer's)
 * and `m` (K x K, the lateral weights).  The output is the fixed point of
 * y <- [y - eta (M y - W x)]+ at every position (no padding), K x Ho x Wo,
 * exactly what nsm-pretrain trains.  Initialisation: w as PyTorch's Conv2d
 * default, U(-1/sqrt(C S S), 1/sqrt(C S S)); m = I.
 *
 * The layer is not differentiable by snet-train: backward succeeds only when
 * there is nothing to compute (first layer, dx not wanted, and both
 * parameters frozen with --freeze); otherwise it fails with a message.  Train
 * its parameters with nsm-pretrain, then use it frozen.
 */
#include "sk_layer.h"
#include "sk_nsm.h"

#include <math.h>

typedef struct nsml {
	sk_nsm_opts o;
	sk_nsm *s;
} nsml;

static int nsm_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	nsml *p = sk_alloc(sizeof *p);
	int K;
	if (!p)
		return -1;
	l->priv = p;
	sk_nsm_defaults(&p->o);
	if (sk_opt_pos_int(s, o, 0, 1, 0, &K) < 0 || sk_opt_int(s, o, "k", 0, &p->o.size) < 0 ||
	    sk_opt_int(s, o, "stride", 1, &p->o.stride) < 0 || sk_opt_int(s, o, "iters", 40, &p->o.iters) < 0 ||
	    sk_opt_float(s, o, "eta", 1.0f, &p->o.eta) < 0 || sk_opt_float(s, o, "tol", 0.0f, &p->o.tol) < 0)
		return -1;
	if (o->npos > 1)
		return sk_spec_error(s, o, "takes one positional argument (K), got %d", o->npos);
	if (l->in.n != 3)
		return sk_spec_error(s, o, "needs a CxHxW input, got %d dimensions", l->in.n);
	if (K < 1 || K > 4096)
		return sk_spec_error(s, o, "K=%d must be in 1..4096", K);
	if (p->o.size < 1 || p->o.size > l->in.d[1] || p->o.size > l->in.d[2])
		return sk_spec_error(s, o, "k=%d must be in 1..%d (the input size)", p->o.size,
		                     l->in.d[1] < l->in.d[2] ? l->in.d[1] : l->in.d[2]);
	if (p->o.stride < 1 || p->o.stride > 64)
		return sk_spec_error(s, o, "stride=%d must be in 1..64", p->o.stride);
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
	int ho = (p->o.h - p->o.size) / p->o.stride + 1, wo = (p->o.w - p->o.size) / p->o.stride + 1;
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

static int nsm_setup(sk_layer *l, int max_batch)
{
	nsml *p = l->priv;
	sk_nsm_free(p->s);
	p->o.max_batch = max_batch;
	p->o.threads = 1;
	if (!(p->s = sk_nsm_create(&p->o, 0)))
		return -1;
	return 0;
}

static int nsm_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	nsml *p = l->priv;
	(void)c;
	if (!p->s)
		return sk_error("nsm layer used before setup");
	p->s->W = l->params[0].w;
	p->s->M = l->params[1].w;
	return sk_nsm_forward(p->s, n, x, NULL, y, NULL);
}

static int nsm_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	(void)c;
	(void)n;
	(void)x;
	(void)y;
	(void)dy;
	if (!dx && l->params[0].frozen && l->params[1].frozen)
		return 0;
	return sk_error("nsm layer is not differentiable; use it frozen as the first layer (--freeze %s)", l->name);
}

static void nsm_destroy(sk_layer *l)
{
	nsml *p = l->priv;
	if (p)
		sk_nsm_free(p->s);
	sk_free(p);
}

const sk_layer_ops sk_layer_nsm = {
	.type = "nsm",
	.synopsis = "nsm K k=S [stride=T] [iters=N] [eta=E] [tol=X]",
	.create = nsm_create,
	.setup = nsm_setup,
	.forward = nsm_forward,
	.backward = nsm_backward,
	.destroy = nsm_destroy,
	.init = nsm_init,
};
