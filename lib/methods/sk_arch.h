/* sk_arch.h: residual and merge-and-run architectures (mr-build), made of
 * the block layers resblock and mrblock (sk_block.h).
 *
 * Layout (PAPERS.md 3.3, the fusenet CIFAR layout): a stem conv3x3 to W
 * channels + BN + ReLU, three stages of widths W, 2W, 4W holding n blocks
 * each (stages 2 and 3 halve the spatial size in their first block), global
 * average pooling and a linear classifier.  A DMRNet stage holds n
 * merge-and-run blocks, a ResNet stage n basic blocks; both have depth
 * 6n + 2 along their longest path.  A ResNet of depth 12n + 2 has about the
 * parameters of a DMRNet of depth 6n + 2 (PAPERS.md 3.2).
 */
#ifndef SK_ARCH_H
#define SK_ARCH_H

#include "sk_layer.h"

enum sk_arch_kind { SK_ARCH_DMRNET = 0, SK_ARCH_RESNET = 1 };

typedef struct sk_arch {
	int kind;          /* enum sk_arch_kind */
	int depth;         /* 6n + 2 */
	int width;         /* first-stage width W (16 in the papers' k = 1 nets) */
	int classes;
	int in_c, in_h, in_w;
	int shortcut_a;    /* ResNet: zero-padded identity (option A) instead of projections */
} sk_arch;

/* "dmrnet" / "resnet" -> kind; -1 (with an error) otherwise. */
int sk_arch_kind_parse(const char *s);
const char *sk_arch_kind_name(int kind);
/* Blocks per stage for a depth, or -1 with an error listing the valid
 * depths ("8, 14, 20, ... (6n + 2)"). */
int sk_arch_blocks(int depth);
/* Check an architecture's fields; -1 with a message naming the field. */
int sk_arch_check(const sk_arch *a);
/* The model spec text (malloc'ed), or NULL with an error. */
char *sk_arch_spec(const sk_arch *a);
/* Trainable parameters, counted analytically (no allocation); -1 on error. */
int64_t sk_arch_params(const sk_arch *a);
/* Parameter matching: the depth (search_depth = 1) or width (0) of `a` whose
 * parameter count is closest to `target` (ties: the smaller).  Depths are
 * searched up to max_depth, widths up to max_width.  Writes the result into
 * a and returns its parameter count, or -1. */
int64_t sk_arch_match(sk_arch *a, int64_t target, int search_depth, int max_depth, int max_width);

/* Multiply-accumulates per example of the affine layers, conv and linear
 * (sk_layer_affine; the papers' MAC counts; FLOPs also count BN, ReLU and
 * sums). */
double sk_arch_macs(sk_seq *q);

#endif
