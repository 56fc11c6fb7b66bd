/* relu.c: rectified linear unit, y = max(x, 0); `leaky=A` gives y = A*x for x < 0. */
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_plan.h"

typedef struct relu {
	float slope;
} relu;

static int relu_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	relu *r = l->priv;
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
	/* the run-time dispatched kernel (explicit SIMD, so the speed does not
	 * depend on the build's -O level); a NaN input stays NaN, so a
	 * diverging run is caught by the loss check */
	sk_vrelu(m, a, x, y);
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
		sk_vrelu_back(m, a, x, dy, dx);
	return 0;
}

float sk_relu_slope(const sk_layer *l) { return ((const relu *)l->priv)->slope; }

SK_LAYER(relu, "relu [leaky=A]", .priv_size = sizeof(relu));
