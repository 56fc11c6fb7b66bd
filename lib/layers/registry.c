/* registry.c: the table of layer types.  Adding a layer: one line below and
 * one extern declaration. */
#include "sk_layer.h"

extern const sk_layer_ops sk_layer_relu;
extern const sk_layer_ops sk_layer_mha, sk_layer_layernorm, sk_layer_sab, sk_layer_isab, sk_layer_pma;

static const sk_layer_ops *const table[] = {
	&sk_layer_relu,
	&sk_layer_mha, &sk_layer_layernorm, &sk_layer_sab, &sk_layer_isab, &sk_layer_pma,
};

const sk_layer_ops *const *sk_layer_table(int *n)
{
	*n = (int)(sizeof table / sizeof table[0]);
	return table;
}
