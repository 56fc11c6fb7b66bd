/* linear.c: fully connected layer, `linear OUT [bias=1]
 * [init=he|xavier|normal|uniform] [scale=A] [bias_init=V]`.
 *
 * Any input shape is flattened (D = its size): Y (n x OUT) = X W^T + b with
 * W stored OUT x D.  FLOPs: 2 * OUT * D per example.
 */
#include "sk_kernels.h"
#include "sk_layer.h"

typedef struct linear {
	int o, d, bias;
} linear;

static int linear_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	linear *f = l->priv;
	sk_affine_opts wb;
	size_t d = sk_shape_size(l->in);
	if (sk_opt_count(s, o, "OUT", 1 << 24, &f->o) < 0 || sk_opt_affine(s, o, &wb) < 0)
		return -1;
	if (d > (1u << 30))
		return sk_spec_error(s, o, "input of %zu values is too large", d);
	f->d = (int)d;
	f->bias = wb.bias;
	l->out = sk_shape1(f->o);
	l->flops = 2.0 * f->o * (double)f->d;
	int64_t wshape[2] = {f->o, f->d};
	return sk_layer_affine_params(l, &wb, 2, wshape, f->d, f->o);
}

static int linear_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const linear *f = l->priv;
	(void)c;
	if (f->bias) {
		const float *b = l->params[1].w;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < f->o; j++)
				y[(size_t)i * f->o + j] = b[j];
	}
	sk_gemm(0, 1, n, f->o, f->d, 1.0f, x, f->d, l->params[0].w, f->d, f->bias ? 1.0f : 0.0f, y, f->o);
	return 0;
}

static int linear_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                           float *dx)
{
	const linear *f = l->priv;
	(void)c;
	(void)y;
	/* dW += dY^T X; db += column sums of dY; dX = dY W */
	sk_gemm(1, 0, f->o, f->d, n, 1.0f, dy, f->o, x, f->d, 1.0f, l->params[0].g, f->d);
	if (f->bias) {
		float *gb = l->params[1].g;
		for (int i = 0; i < n; i++)
			sk_vadd((size_t)f->o, dy + (size_t)i * f->o, gb);
	}
	if (dx)
		sk_gemm(0, 0, n, f->d, f->o, 1.0f, dy, f->o, l->params[0].w, f->d, 0.0f, dx, f->d);
	return 0;
}

SK_LAYER(linear, "linear OUT [bias=1] [init=he|xavier|normal|uniform] [scale=A] [bias_init=V]",
         .affine = sk_affine_wb, .priv_size = sizeof(linear));
