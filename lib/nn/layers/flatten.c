/* flatten.c: `flatten`: any shape -> one vector of the same values. */
#include "sk_layer.h"

#include <string.h>

static int flatten_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	size_t d = sk_shape_size(l->in);
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	if (d > (1u << 30))
		return sk_spec_error(s, o, "input of %zu values is too large", d);
	l->out = sk_shape1((int)d);
	l->flops = 0;
	return 0;
}

static int flatten_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	(void)c;
	memcpy(y, x, sizeof(float) * sk_shape_size(l->in) * (size_t)n);
	return 0;
}

static int flatten_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                            float *dx)
{
	(void)c;
	(void)x;
	(void)y;
	if (dx)
		memcpy(dx, dy, sizeof(float) * sk_shape_size(l->in) * (size_t)n);
	return 0;
}

SK_LAYER(flatten, "flatten");
