/* isab.c: induced set attention block, ISAB_m(X) = MAB(X, MAB(I, X)) with m
 * learned inducing points I (Set Transformer): attention through m points
 * costs O(T m) instead of O(T^2).  Input T x Din, output T x D.
 *   isab D m=M [heads=H] [ln=0|1]
 */
#include "sk_attn.h"

#include <string.h>

typedef struct isab {
	sk_mab m0, m1;    /* m0 = MAB(I, X): M x D;  m1 = MAB(X, H): T x D */
	float *h, *dh;    /* the induced set and its gradient, max_batch x M x D */
	int max_batch;
} isab;

static int isab_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	int d, mm, heads, ln;
	int64_t sh[2];
	isab *p = l->priv;
	if (sk_opt_pos_int(s, o, 0, 0, l->in.d[1], &d) < 0 || sk_opt_int(s, o, "m", 8, &mm) < 0 ||
	    sk_mab_opts(s, o, d, &heads, &ln) < 0)
		return -1;
	if (mm < 1 || mm > 4096)
		return sk_spec_error(s, o, "m=%d inducing points out of range 1..4096", mm);
	sh[0] = mm, sh[1] = d;
	if (sk_layer_param(l, "i", 2, sh, SK_INIT_XAVIER, 1.0f, mm, d, SK_P_NODECAY) < 0)
		return -1;
	if (sk_mab_declare(&p->m0, l, "m0.", d, l->in.d[1], d, heads, mm, l->in.d[0], ln != 0, 1) < 0 ||
	    sk_mab_declare(&p->m1, l, "m1.", l->in.d[1], d, d, heads, l->in.d[0], mm, ln != 0, 0) < 0)
		return -1;
	l->out = sk_shape2(l->in.d[0], d);
	l->flops = sk_mab_flops(&p->m0) + sk_mab_flops(&p->m1);
	return 0;
}

static int isab_setup(sk_layer *l, int max_batch)
{
	isab *p = l->priv;
	size_t n = (size_t)max_batch * (size_t)p->m0.nq * (size_t)p->m0.dv;
	sk_part parts[] = {SK_PART(p->h, n), SK_PART(p->dh, n)};
	if (sk_mab_setup(&p->m0, max_batch) < 0 || sk_mab_setup(&p->m1, max_batch) < 0)
		return -1;
	return sk_layer_parts(l, 2, parts);
}

static int isab_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	isab *p = l->priv;
	(void)c;
	if (sk_mab_forward(&p->m0, l, n, l->params[0].w, x, p->h) < 0)
		return -1;
	return sk_mab_forward(&p->m1, l, n, x, p->h, y);
}

static int isab_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                         float *dx)
{
	isab *p = l->priv;
	(void)c;
	(void)y;
	/* dx = (d out / d x as queries of m1) + (d out / d x as keys of m0) */
	if (sk_mab_backward(&p->m1, l, n, x, p->h, dy, dx, p->dh, 0) < 0)
		return -1;
	return sk_mab_backward(&p->m0, l, n, l->params[0].w, x, p->dh, l->params[0].g, dx, 1);
}

static void isab_destroy(sk_layer *l)
{
	isab *p = l->priv;
	sk_mab_free(&p->m0);
	sk_mab_free(&p->m1);
}

SK_LAYER(isab, "isab [D] [m=M] [heads=H] [ln=0|1]   (induced set attention, T x Din -> T x D)",
         .setup = isab_setup, .destroy = isab_destroy, .priv_size = sizeof(isab), .in_dims = 2);
