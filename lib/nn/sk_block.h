/* sk_block.h: what the composite block layers (lib/nn/layers/resblock.c,
 * mrblock.c) share: child sequences built from spec text, and the spec text
 * of a residual branch and of a projection shortcut.  Defined in resblock.c.
 */
#ifndef SK_BLOCK_H
#define SK_BLOCK_H

#include "sk_layer.h"

/* Build a child sequence of composite layer l from spec text; its layers are
 * named "<l->name>.<sub><layer name>" (sub may be "" or e.g. "a.").  The child
 * is appended to l->child.  Returns the child or NULL with an error. */
sk_seq *sk_block_child(sk_layer *l, const char *text, sk_shape in, const char *sub);
/* Spec text of a residual branch conv3x3(stride) - BN - ReLU - conv3x3 - BN
 * and of a projection conv1x1(stride) - BN, into buf; `momentum` is the BN
 * layers' running-statistics rate. */
int sk_block_branch_text(char *buf, size_t len, int out, int stride, float momentum);
int sk_block_proj_text(char *buf, size_t len, int out, int stride, float momentum);
/* Default BN momentum of the blocks (PyTorch convention, as the bn layer). */
#define SK_BLOCK_MOMENTUM 0.1f
/* The options every block reads from its spec line o: OUT (output
 * channels, 1..65536), stride=S (1..64) and momentum=M (default
 * SK_BLOCK_MOMENTUM), with one positional word at most.  0, or -1 with an
 * error. */
int sk_block_opts(const sk_spec *s, sk_specline *o, int *out, int *stride, float *momentum);

#endif
