/* act.c: element-wise activations without parameters: `tanh`, `sigmoid`,
 * `gelu` (exact, with erf), `selu`, `elu [alpha=A]`, `softplus` and
 * `identity`.  (relu lives in relu.c.)  FLOPs: one per element. */
#include "sk_kernels.h"
#include "sk_layer.h"

#include <math.h>
#include <string.h>

typedef struct act {
	float alpha;
	int kind;
} act;

enum { A_TANH, A_SIGMOID, A_GELU, A_SELU, A_ELU, A_SOFTPLUS, A_IDENTITY };
static const char *const act_names[] = {"tanh", "sigmoid", "gelu", "selu", "elu", "softplus", "identity"};

#define SELU_L 1.0507009873554805f
#define SELU_A 1.6732632423543772f

static int kind_of(const sk_layer *l)
{
	for (int i = 0; i < (int)(sizeof act_names / sizeof act_names[0]); i++)
		if (!strcmp(l->ops->type, act_names[i]))
			return i;
	return A_IDENTITY;
}

static int act_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	act *a = l->priv;
	a->kind = kind_of(l);
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	if (kind_of(l) == A_ELU && sk_opt_float(s, o, "alpha", 1.0f, &a->alpha) < 0)
		return -1;
	l->out = l->in;
	l->flops = kind_of(l) == A_IDENTITY ? 0 : (double)sk_shape_size(l->in);
	return 0;
}

static int act_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	const act *a = l->priv;
	size_t m = sk_shape_size(l->in) * (size_t)n;
	(void)c;
	switch (a->kind) {
	case A_TANH:
		sk_vtanh(m, x, y);
		break;
	case A_SIGMOID:
		sk_vsigmoid(m, x, y);
		break;
	case A_GELU:
		for (size_t i = 0; i < m; i++)
			y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
		break;
	case A_SELU:
		for (size_t i = 0; i < m; i++)
			y[i] = x[i] > 0 ? SELU_L * x[i] : SELU_L * SELU_A * expm1f(x[i]);
		break;
	case A_ELU:
		for (size_t i = 0; i < m; i++)
			y[i] = x[i] > 0 ? x[i] : a->alpha * expm1f(x[i]);
		break;
	case A_SOFTPLUS:
		for (size_t i = 0; i < m; i++)
			y[i] = x[i] > 0 ? x[i] + log1pf(expf(-x[i])) : log1pf(expf(x[i]));
		break;
	default:
		memcpy(y, x, m * sizeof(float));
	}
	return 0;
}

static int act_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	const act *a = l->priv;
	size_t m = sk_shape_size(l->in) * (size_t)n;
	(void)c;
	if (!dx)
		return 0;
	switch (a->kind) {
	case A_TANH:
		for (size_t i = 0; i < m; i++)
			dx[i] = dy[i] * (1.0f - y[i] * y[i]);
		break;
	case A_SIGMOID:
		for (size_t i = 0; i < m; i++)
			dx[i] = dy[i] * y[i] * (1.0f - y[i]);
		break;
	case A_GELU:
		for (size_t i = 0; i < m; i++) {
			float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
			float pdf = 0.3989422804014327f * expf(-0.5f * x[i] * x[i]);
			dx[i] = dy[i] * (cdf + x[i] * pdf);
		}
		break;
	case A_SELU:
		for (size_t i = 0; i < m; i++)
			dx[i] = x[i] > 0 ? SELU_L * dy[i] : dy[i] * (y[i] + SELU_L * SELU_A);
		break;
	case A_ELU:
		for (size_t i = 0; i < m; i++)
			dx[i] = x[i] > 0 ? dy[i] : dy[i] * (y[i] + a->alpha);
		break;
	case A_SOFTPLUS:
		for (size_t i = 0; i < m; i++)
			dx[i] = dy[i] * (x[i] >= 0 ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i]) / (1.0f + expf(x[i])));
		break;
	default:
		memcpy(dx, dy, m * sizeof(float));
	}
	return 0;
}

#define ACT(id, syn) \
	const sk_layer_ops sk_layer_##id = { \
		.type = #id, \
		.synopsis = syn, \
		.create = act_create, \
		.forward = act_forward, \
		.backward = act_backward, \
		.priv_size = sizeof(act), \
	};

ACT(tanh, "tanh")
ACT(sigmoid, "sigmoid")
ACT(gelu, "gelu")
ACT(selu, "selu")
ACT(elu, "elu [alpha=A]")
ACT(softplus, "softplus")
ACT(identity, "identity")
