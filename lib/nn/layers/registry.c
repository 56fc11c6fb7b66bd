/* registry.c: the table of layer types.  Adding a layer: its name on one
 * line of LAYERS below; its file defines `const sk_layer_ops sk_layer_NAME`.
 * The order is the order in which an unknown type's error lists the known ones. */
#include "sk_layer.h"

#define LAYERS(X) \
	X(relu) \
	X(sim) \
	X(mex) \
	X(input) \
	X(conv) \
	X(linear) \
	X(pool) \
	X(gap) \
	X(bn) \
	X(dropout) \
	X(flatten) \
	X(residual) \
	X(tanh) \
	X(sigmoid) \
	X(gelu) \
	X(selu) \
	X(elu) \
	X(softplus) \
	X(identity) \
	X(maxmin) \
	X(resblock) \
	X(mrblock) \
	X(nsm) \
	X(mha) \
	X(layernorm) \
	X(sab) \
	X(isab) \
	X(pma)

#define DECLARE(name) extern const sk_layer_ops sk_layer_##name;
#define ENTRY(name) &sk_layer_##name,

LAYERS(DECLARE)

static const sk_layer_ops *const table[] = {LAYERS(ENTRY)};

const sk_layer_ops *const *sk_layer_table(int *n)
{
	*n = (int)(sizeof table / sizeof table[0]);
	return table;
}
