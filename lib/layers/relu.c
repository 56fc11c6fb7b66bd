/* relu.c: rectified linear unit, y = max(x, 0); `leaky=A` gives y = A*x for x < 0. */
#include "sk_layer.h"

typedef struct relu {
	float slope;
} relu;

static int relu_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	relu *r = sk_alloc(sizeof *r);
	if (!r)
		return -1;
	l->priv = r;
	if (sk_opt_float(s, o, "leaky", 0.0f, &r->slope) < 0)
		return -1;
	l->out = l->in;
	l->flops = (double)sk_shape_size(l->in);
	return 0;
}

static int relu_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const relu *r = l->priv;
	size_t m = sk_shape_size(l->in) * (size_t)n;
	float a = r->slope;
	(void)c;
	/* branchless forms the compiler vectorises (compare + blend); a NaN
	 * input stays NaN, so a diverging run is caught by the loss check */
	if (a == 0.0f)
		for (size_t i = 0; i < m; i++)
			y[i] = !(x[i] <= 0.0f) ? x[i] : 0.0f;
	else
		for (size_t i = 0; i < m; i++)
			y[i] = !(x[i] <= 0.0f) ? x[i] : a * x[i];
	return 0;
}

static int relu_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                         float *dx)
{
	const relu *r = l->priv;
	size_t m = sk_shape_size(l->in) * (size_t)n;
	float a = r->slope;
	(void)c;
	(void)y;
	if (dx)
		for (size_t i = 0; i < m; i++) {
			float k = x[i] > 0.0f ? 1.0f : a;
			dx[i] = k * dy[i];
		}
	return 0;
}

static void relu_destroy(sk_layer *l) { sk_free(l->priv); }

const sk_layer_ops sk_layer_relu = {
	.type = "relu",
	.synopsis = "relu [leaky=A]",
	.create = relu_create,
	.forward = relu_forward,
	.backward = relu_backward,
	.destroy = relu_destroy,
};
