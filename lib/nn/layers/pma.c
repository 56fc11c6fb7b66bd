/* pma.c: pooling by multihead attention, PMA_k(X) = MAB(S, X) with k learned
 * seed vectors S (Set Transformer): a set of T elements becomes k vectors,
 * invariant to the order of the elements.  Input T x Din, output k x D.
 *   pma [k=K] [d=D] [heads=H] [ln=0|1]
 */
#include "sk_attn.h"

static int pma_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	int k, d, heads, ln;
	int64_t sh[2];
	sk_mab *m = l->priv;
	if (sk_opt_int(s, o, "k", 1, &k) < 0 || sk_opt_int(s, o, "d", l->in.d[1], &d) < 0 ||
	    sk_mab_opts(s, o, d, &heads, &ln) < 0)
		return -1;
	if (k < 1 || k > 4096)
		return sk_spec_error(s, o, "k=%d seeds out of range 1..4096", k);
	sh[0] = k, sh[1] = l->in.d[1];
	if (sk_layer_param(l, "s", 2, sh, SK_INIT_XAVIER, 1.0f, k, l->in.d[1], SK_P_NODECAY) < 0)
		return -1;
	if (sk_mab_declare(m, l, "", l->in.d[1], l->in.d[1], d, heads, k, l->in.d[0], ln != 0, 1) < 0)
		return -1;
	l->out = sk_shape2(k, d);
	l->flops = sk_mab_flops(m);
	return 0;
}

static int pma_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	(void)c;
	return sk_mab_forward(l->priv, l, n, l->params[0].w, x, y);
}

static int pma_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	(void)c;
	(void)y;
	return sk_mab_backward(l->priv, l, n, l->params[0].w, x, dy, l->params[0].g, dx, 0);
}

SK_LAYER(pma, "pma [k=K] [d=D] [heads=H] [ln=0|1]   (attention pooling, T x Din -> K x D)",
         .setup = sk_mab_layer_setup, .destroy = sk_mab_layer_destroy, .priv_size = sizeof(sk_mab), .in_dims = 2);
