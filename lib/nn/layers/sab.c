/* sab.c: set attention block, SAB(X) = MAB(X, X) (Set Transformer): every
 * element attends to every other one.  Input T x Din, output T x D.
 *   sab D [heads=H] [ln=0|1]
 */
#include "sk_attn.h"

static int sab_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	int d, heads, ln;
	sk_mab *m = l->priv;
	if (sk_opt_pos_int(s, o, 0, 0, l->in.d[1], &d) < 0 || sk_mab_opts(s, o, d, &heads, &ln) < 0)
		return -1;
	if (sk_mab_declare(m, l, "", l->in.d[1], l->in.d[1], d, heads, l->in.d[0], l->in.d[0], ln != 0, 0) < 0)
		return -1;
	l->out = sk_shape2(l->in.d[0], d);
	l->flops = sk_mab_flops(m);
	return 0;
}

static int sab_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	(void)c;
	return sk_mab_forward(l->priv, l, n, x, x, y);
}

static int sab_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	(void)c;
	(void)y;
	return sk_mab_backward(l->priv, l, n, x, x, dy, dx, dx, 1);
}

SK_LAYER(sab, "sab [D] [heads=H] [ln=0|1]   (set attention block, T x Din -> T x D)",
         .setup = sk_mab_layer_setup, .destroy = sk_mab_layer_destroy, .priv_size = sizeof(sk_mab), .in_dims = 2);
