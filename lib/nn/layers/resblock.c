/* resblock.c: the ResNet basic block (He et al. 2016, CIFAR form).
 *
 *   y = ReLU( H(x) + P(x) ),   H = conv3x3(stride S) - BN - ReLU - conv3x3 - BN
 *
 * P is the identity when the block keeps shape.  At a transition (stride
 * S > 1 or a channel change) P is, with shortcut=b (default), a strided 1x1
 * conv + BN projection; with shortcut=a ("option A" of the ResNet paper's
 * CIFAR nets, no parameters), x subsampled by S with zero channels appended.
 * The branches are child sequences named <name>.conv1, <name>.bn1, ...,
 * <name>.proj, <name>.projbn.  Also the shared helpers of sk_block.h. */
#include "sk_block.h"
#include "sk_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers shared with mrblock.c ---- */

sk_seq *sk_block_child(sk_layer *l, const char *text, sk_shape in, const char *sub)
{
	char prefix[SK_NAME_MAX], src[SK_NAME_MAX + 8];
	sk_seq **ch;
	sk_spec *s;
	sk_seq *q;
	if ((size_t)snprintf(prefix, sizeof prefix, "%s.%s", l->name, sub) >= sizeof prefix)
		return sk_error("%s: name too long", l->name), NULL;
	snprintf(src, sizeof src, "<%s>", l->name);
	if (!(s = sk_spec_parse(text, src)))
		return NULL;
	q = sk_seq_declare(s, in, prefix);
	sk_spec_free(s);
	if (!q)
		return NULL;
	ch = realloc(l->child, sizeof *ch * (size_t)(l->nchild + 1));
	if (!ch) {
		sk_seq_free(q);
		return sk_error("out of memory"), NULL;
	}
	l->child = ch;
	l->child[l->nchild++] = q;
	return q;
}

int sk_block_branch_text(char *buf, size_t len, int out, int stride, float momentum)
{
	int r = snprintf(buf, len,
	                 "conv %d k=3 stride=%d pad=1 bias=0 name=conv1\n"
	                 "bn momentum=%.9g name=bn1\n"
	                 "relu name=relu1\n"
	                 "conv %d k=3 stride=1 pad=1 bias=0 name=conv2\n"
	                 "bn momentum=%.9g name=bn2\n",
	                 out, stride, (double)momentum, out, (double)momentum);
	return r < 0 || (size_t)r >= len ? sk_error("block spec too long") : 0;
}

int sk_block_proj_text(char *buf, size_t len, int out, int stride, float momentum)
{
	int r = snprintf(buf, len,
	                 "conv %d k=1 stride=%d pad=0 bias=0 name=proj\n"
	                 "bn momentum=%.9g name=projbn\n",
	                 out, stride, (double)momentum);
	return r < 0 || (size_t)r >= len ? sk_error("block spec too long") : 0;
}

int sk_block_opts(const sk_spec *s, sk_specline *o, int *out, int *stride, float *momentum)
{
	if (sk_opt_count(s, o, "OUT", 65536, out) < 0 || sk_opt_int(s, o, "stride", 1, stride) < 0 ||
	    sk_opt_float(s, o, "momentum", SK_BLOCK_MOMENTUM, momentum) < 0)
		return -1;
	if (*stride < 1 || *stride > 64)
		return sk_spec_error(s, o, "stride=%d is out of range 1..64", *stride);
	return 0;
}

/* ---- the layer ---- */

typedef struct resblock {
	int out, stride, opt_a;
	sk_seq *branch, *proj;     /* proj NULL: identity or option A */
	float *g, *tmp;            /* n*out gradient at the sum; n*in input-gradient scratch */
} resblock;

static int resblock_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	static const char *const kinds[] = {"a", "b", NULL};
	char text[512];
	int kind;
	float mom;
	resblock *r = l->priv;
	if (sk_block_opts(s, o, &r->out, &r->stride, &mom) < 0 || sk_opt_choice(s, o, "shortcut", kinds, 1, &kind) < 0)
		return -1;
	r->opt_a = kind == 0;
	if (sk_block_branch_text(text, sizeof text, r->out, r->stride, mom) < 0 ||
	    !(r->branch = sk_block_child(l, text, l->in, "")))
		return -1;
	l->out = r->branch->out;
	int transition = r->stride != 1 || r->out != l->in.d[0];
	if (transition && !r->opt_a) {
		if (sk_block_proj_text(text, sizeof text, r->out, r->stride, mom) < 0 ||
		    !(r->proj = sk_block_child(l, text, l->in, "")))
			return -1;
		if (r->proj->out.d[1] != l->out.d[1] || r->proj->out.d[2] != l->out.d[2])
			return sk_spec_error(s, o, "projection and branch shapes differ");
	}
	if (r->opt_a && r->out < l->in.d[0])
		return sk_spec_error(s, o, "shortcut=a cannot reduce %d channels to %d (use shortcut=b)", l->in.d[0],
		                     r->out);
	if (r->opt_a && (l->out.d[1] != (l->in.d[1] + r->stride - 1) / r->stride ||
	                 l->out.d[2] != (l->in.d[2] + r->stride - 1) / r->stride))
		return sk_spec_error(s, o, "shortcut=a: subsampled input does not match the branch output");
	l->flops = 2.0 * (double)sk_shape_size(l->out);   /* add and ReLU */
	for (int i = 0; i < l->nchild; i++)
		l->flops += sk_seq_flops(l->child[i]);
	return 0;
}

static int resblock_setup(sk_layer *l, int max_batch)
{
	resblock *r = l->priv;
	sk_part parts[] = {SK_PART(r->g, sk_shape_size(l->out) * (size_t)max_batch),
	                   SK_PART(r->tmp, sk_shape_size(l->in) * (size_t)max_batch)};
	return sk_layer_parts(l, 2, parts);
}

/* Option A shortcut: out[c][i][j] = x[c][i*S][j*S] for c < C_in, 0 above. */
static void opt_a_add(const sk_layer *l, int n, const float *x, float *y, int sign_back)
{
	const resblock *r = l->priv;
	int ci = l->in.d[0], h = l->in.d[1], w = l->in.d[2];
	int co = l->out.d[0], ho = l->out.d[1], wo = l->out.d[2], st = r->stride;
	for (int b = 0; b < n; b++)
		for (int c = 0; c < ci && c < co; c++)
			for (int i = 0; i < ho; i++)
				for (int j = 0; j < wo; j++) {
					size_t xi = (((size_t)b * ci + c) * h + (size_t)i * st) * w + (size_t)j * st;
					size_t yi = (((size_t)b * co + c) * ho + i) * wo + j;
					if (sign_back)   /* backward: x is dy at the sum, y is dx */
						y[xi] += x[yi];
					else
						y[yi] += x[xi];
				}
}

static int resblock_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	resblock *r = l->priv;
	size_t m = sk_shape_size(l->out) * (size_t)n;
	const float *br = sk_seq_forward(r->branch, c, n, x);
	if (!br)
		return -1;
	memcpy(y, br, m * sizeof(float));
	if (r->proj) {
		const float *sc = sk_seq_forward(r->proj, c, n, x);
		if (!sc)
			return -1;
		for (size_t i = 0; i < m; i++)
			y[i] += sc[i];
	} else if (r->opt_a) {
		opt_a_add(l, n, x, y, 0);
	} else {
		for (size_t i = 0; i < m; i++)
			y[i] += x[i];
	}
	for (size_t i = 0; i < m; i++)
		if (!(y[i] > 0))
			y[i] = 0;
	return 0;
}

static int resblock_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                             float *dx)
{
	resblock *r = l->priv;
	size_t m = sk_shape_size(l->out) * (size_t)n, mi = sk_shape_size(l->in) * (size_t)n;
	for (size_t i = 0; i < m; i++)
		r->g[i] = y[i] > 0 ? dy[i] : 0;
	if (sk_seq_backward(r->branch, c, n, x, r->g, dx) < 0)
		return -1;
	if (r->proj) {
		if (sk_seq_backward(r->proj, c, n, x, r->g, dx ? r->tmp : NULL) < 0)
			return -1;
		if (dx)
			for (size_t i = 0; i < mi; i++)
				dx[i] += r->tmp[i];
	} else if (dx && r->opt_a) {
		opt_a_add(l, n, r->g, dx, 1);
	} else if (dx) {
		for (size_t i = 0; i < mi; i++)
			dx[i] += r->g[i];
	}
	return 0;
}

void sk_resblock_parts(const sk_layer *l, sk_seq **branch, sk_seq **proj, int *opt_a_stride)
{
	const resblock *r = l->priv;
	*branch = r->branch;
	*proj = r->proj;
	*opt_a_stride = r->opt_a && (r->stride != 1 || r->out != l->in.d[0]) ? r->stride : 0;
}

SK_LAYER(resblock, "resblock OUT [stride=S] [shortcut=a|b] [momentum=M]",
         .setup = resblock_setup, .priv_size = sizeof(resblock), .in_dims = 3);
