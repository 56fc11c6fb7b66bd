/* gap.c: global average pooling, `gap`: C x H x W -> C. */
#include "sk_kernels.h"
#include "sk_layer.h"

static int gap_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	l->out = sk_shape1(l->in.d[0]);
	l->flops = (double)sk_shape_size(l->in);
	return 0;
}

static int gap_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	size_t ch = (size_t)l->in.d[0], hw = (size_t)l->in.d[1] * l->in.d[2];
	float inv = 1.0f / (float)hw;
	(void)c;
	for (size_t i = 0; i < (size_t)n * ch; i++)
		y[i] = sk_vsum(hw, x + i * hw) * inv;
	return 0;
}

static int gap_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	size_t ch = (size_t)l->in.d[0], hw = (size_t)l->in.d[1] * l->in.d[2];
	float inv = 1.0f / (float)hw;
	(void)c;
	(void)x;
	(void)y;
	if (dx)
		for (size_t i = 0; i < (size_t)n * ch; i++)
			sk_vset(hw, dy[i] * inv, dx + i * hw);
	return 0;
}

SK_LAYER(gap, "gap", .in_dims = 3);
