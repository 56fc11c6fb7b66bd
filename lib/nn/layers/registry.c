/* registry.c: the table of layer types.  Adding a layer: one line below and
 * one extern declaration. */
#include "sk_layer.h"

extern const sk_layer_ops sk_layer_relu;
extern const sk_layer_ops sk_layer_sim, sk_layer_mex;
extern const sk_layer_ops sk_layer_input, sk_layer_conv, sk_layer_linear, sk_layer_pool, sk_layer_gap, sk_layer_bn,
	sk_layer_dropout, sk_layer_flatten, sk_layer_residual, sk_layer_tanh, sk_layer_sigmoid, sk_layer_gelu,
	sk_layer_selu, sk_layer_elu, sk_layer_softplus, sk_layer_identity;
extern const sk_layer_ops sk_layer_maxmin, sk_layer_resblock, sk_layer_mrblock;
extern const sk_layer_ops sk_layer_nsm;
extern const sk_layer_ops sk_layer_mha, sk_layer_layernorm, sk_layer_sab, sk_layer_isab, sk_layer_pma;

static const sk_layer_ops *const table[] = {
	&sk_layer_relu,
	&sk_layer_sim, &sk_layer_mex,
	&sk_layer_input, &sk_layer_conv, &sk_layer_linear, &sk_layer_pool, &sk_layer_gap, &sk_layer_bn,
	&sk_layer_dropout, &sk_layer_flatten, &sk_layer_residual, &sk_layer_tanh, &sk_layer_sigmoid, &sk_layer_gelu,
	&sk_layer_selu, &sk_layer_elu, &sk_layer_softplus, &sk_layer_identity,
	&sk_layer_maxmin, &sk_layer_resblock, &sk_layer_mrblock,
	&sk_layer_nsm,
	&sk_layer_mha, &sk_layer_layernorm, &sk_layer_sab, &sk_layer_isab, &sk_layer_pma,
};

const sk_layer_ops *const *sk_layer_table(int *n)
{
	*n = (int)(sizeof table / sizeof table[0]);
	return table;
}
