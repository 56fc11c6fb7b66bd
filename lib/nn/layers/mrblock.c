/* mrblock.c: the merge-and-run block (DMRNet, Zhao et al. 2018; PAPERS.md 3.1).
 *
 * Two streams x^a, x^b travel side by side, stored as one tensor with the
 * streams concatenated on channels: [x^a; x^b], 2 x OUT channels.  With the
 * residual branch H = conv3x3(stride S) - BN - ReLU - conv3x3 - BN:
 *
 *   m   = (P^a(x^a) + P^b(x^b)) / 2          merge
 *   x^a = ReLU( H^a(x^a) + m )               run
 *   x^b = ReLU( H^b(x^b) + m )
 *
 * P is the identity, or at a transition (stride S > 1 or a channel change)
 * a per-stream 1x1 conv with stride S + BN, as the original fusenet code
 * does (network/cross.py).  in=single: the input is one stream, fed to both
 * (the block after the stem).  out=merged: the network's last block emits
 * one stream, ReLU(H^a(x^a) + H^b(x^b) + m), OUT channels.
 * Children: <name>.a.conv1 ... <name>.a.proj, <name>.a.projbn, <name>.b....
 */
#include "sk_block.h"
#include "sk_plan.h"

#include <stdio.h>
#include <string.h>

typedef struct mrblock {
	int out, stride, single, merged;
	int cin;                       /* channels per input stream */
	size_t sin, sout;              /* per-example elements of one stream in / out */
	sk_seq *h[2], *p[2];           /* branches; projections (NULL: identity) */
	float *xs[2];                  /* gathered input streams (n * sin each; unused with in=single) */
	float *gs[2];                  /* gradient at each stream's sum (n * sout) */
	float *gm;                     /* gradient at the merge (n * sout) */
	float *dxs[2], *tmp;           /* input-stream gradients and scratch (n * sin) */
} mrblock;

static int mrblock_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	static const char *const ins[] = {"pair", "single", NULL}, *const outs[] = {"pair", "merged", NULL};
	static const char *const sub[2] = {"a.", "b."};
	char text[512];
	float mom;
	mrblock *r = l->priv;
	if (sk_block_opts(s, o, &r->out, &r->stride, &mom) < 0 || sk_opt_choice(s, o, "in", ins, 0, &r->single) < 0 ||
	    sk_opt_choice(s, o, "out", outs, 0, &r->merged) < 0)
		return -1;
	r->cin = l->in.d[0];
	if (!r->single) {
		if (r->cin % 2)
			return sk_spec_error(s, o,
			                     "in=pair needs an even channel count (two streams), not %d; "
			                     "use in=single after a one-stream layer",
			                     r->cin);
		r->cin /= 2;
	}
	sk_shape sin = sk_shape3(r->cin, l->in.d[1], l->in.d[2]);
	int transition = r->stride != 1 || r->out != r->cin;
	/* children in stream order: H^a, (P^a), H^b, (P^b) */
	char ptext[256];
	if (sk_block_branch_text(text, sizeof text, r->out, r->stride, mom) < 0 ||
	    (transition && sk_block_proj_text(ptext, sizeof ptext, r->out, r->stride, mom) < 0))
		return -1;
	for (int k = 0; k < 2; k++) {
		if (!(r->h[k] = sk_block_child(l, text, sin, sub[k])))
			return -1;
		if (transition && !(r->p[k] = sk_block_child(l, ptext, sin, sub[k])))
			return -1;
	}
	if (transition && (r->p[0]->out.d[1] != r->h[0]->out.d[1] || r->p[0]->out.d[2] != r->h[0]->out.d[2]))
		return sk_spec_error(s, o, "projection and branch shapes differ");
	sk_shape so = r->h[0]->out;
	r->sin = sk_shape_size(sin);
	r->sout = sk_shape_size(so);
	l->out = sk_shape3(r->merged ? so.d[0] : 2 * so.d[0], so.d[1], so.d[2]);
	/* merge (add, halve) and, per output element, add(s) and ReLU */
	l->flops = 2.0 * (double)r->sout + (r->merged ? 3.0 : 4.0) * (double)r->sout;
	for (int i = 0; i < l->nchild; i++)
		l->flops += sk_seq_flops(l->child[i]);
	return 0;
}

static int mrblock_setup(sk_layer *l, int max_batch)
{
	mrblock *r = l->priv;
	size_t si = r->sin * (size_t)max_batch, so = r->sout * (size_t)max_batch, xs = r->single ? 0 : si;
	sk_part parts[] = {SK_PART(r->xs[0], xs),  SK_PART(r->xs[1], xs),  SK_PART(r->gs[0], so), SK_PART(r->gs[1], so),
	                   SK_PART(r->dxs[0], si), SK_PART(r->dxs[1], si), SK_PART(r->gm, so),    SK_PART(r->tmp, si)};
	return sk_layer_parts(l, 8, parts);
}

/* Input of stream k (contiguous n x sin). */
static const float *stream_in(const mrblock *r, const float *x, int k) { return r->single ? x : r->xs[k]; }

static int mrblock_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	mrblock *r = l->priv;
	const float *hy[2], *py[2];
	size_t so = r->sout;
	if (!r->single)
		for (int b = 0; b < n; b++)
			for (int k = 0; k < 2; k++)
				memcpy(r->xs[k] + (size_t)b * r->sin, x + ((size_t)2 * b + k) * r->sin, r->sin * sizeof(float));
	for (int k = 0; k < 2; k++) {
		const float *xk = stream_in(r, x, k);
		if (!(hy[k] = sk_seq_forward(r->h[k], c, n, xk)))
			return -1;
		py[k] = xk;
		if (r->p[k] && !(py[k] = sk_seq_forward(r->p[k], c, n, xk)))
			return -1;
	}
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * so;
		if (r->merged) {
			float *yb = y + o;
			for (size_t i = 0; i < so; i++) {
				float v = hy[0][o + i] + hy[1][o + i] + 0.5f * (py[0][o + i] + py[1][o + i]);
				yb[i] = v > 0 ? v : 0;
			}
		} else {
			float *ya = y + 2 * o, *yb = ya + so;
			for (size_t i = 0; i < so; i++) {
				float m = 0.5f * (py[0][o + i] + py[1][o + i]);
				float va = hy[0][o + i] + m, vb = hy[1][o + i] + m;
				ya[i] = va > 0 ? va : 0;
				yb[i] = vb > 0 ? vb : 0;
			}
		}
	}
	return 0;
}

static int mrblock_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                            float *dx)
{
	mrblock *r = l->priv;
	size_t so = r->sout, si = r->sin, mi = si * (size_t)n;
	/* gradients at the sums, and at the merge m (which feeds both sums) */
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * so;
		if (r->merged) {
			const float *yb = y + o, *gb = dy + o;
			for (size_t i = 0; i < so; i++) {
				float g = yb[i] > 0 ? gb[i] : 0;
				r->gs[0][o + i] = r->gs[1][o + i] = g;
				r->gm[o + i] = 0.5f * g;
			}
		} else {
			const float *ya = y + 2 * o, *yb = ya + so, *ga = dy + 2 * o, *gb = ga + so;
			for (size_t i = 0; i < so; i++) {
				float a = ya[i] > 0 ? ga[i] : 0, bb = yb[i] > 0 ? gb[i] : 0;
				r->gs[0][o + i] = a;
				r->gs[1][o + i] = bb;
				r->gm[o + i] = 0.5f * (a + bb);   /* dL/dP^k = dL/dm / 2 */
			}
		}
	}
	for (int k = 0; k < 2; k++) {
		const float *xk = stream_in(r, x, k);
		float *dk = dx ? r->dxs[k] : NULL;
		if (sk_seq_backward(r->h[k], c, n, xk, r->gs[k], dk) < 0)
			return -1;
		if (r->p[k]) {
			if (sk_seq_backward(r->p[k], c, n, xk, r->gm, dx ? r->tmp : NULL) < 0)
				return -1;
			if (dx)
				for (size_t i = 0; i < mi; i++)
					dk[i] += r->tmp[i];
		} else if (dx) {
			for (size_t i = 0; i < mi; i++)
				dk[i] += r->gm[i];
		}
	}
	if (!dx)
		return 0;
	if (r->single) {
		for (size_t i = 0; i < mi; i++)
			dx[i] = r->dxs[0][i] + r->dxs[1][i];
	} else {
		for (int b = 0; b < n; b++)
			for (int k = 0; k < 2; k++)
				memcpy(dx + ((size_t)2 * b + k) * si, r->dxs[k] + (size_t)b * si, si * sizeof(float));
	}
	return 0;
}

void sk_mrblock_parts(const sk_layer *l, sk_seq *h[2], sk_seq *p[2], int *single, int *merged, size_t *sin,
                      size_t *sout)
{
	const mrblock *r = l->priv;
	for (int k = 0; k < 2; k++) {
		h[k] = r->h[k];
		p[k] = r->p[k];
	}
	*single = r->single;
	*merged = r->merged;
	*sin = r->sin;
	*sout = r->sout;
}

SK_LAYER(mrblock, "mrblock OUT [stride=S] [in=pair|single] [out=pair|merged] [momentum=M]",
         .setup = mrblock_setup, .priv_size = sizeof(mrblock), .in_dims = 3);
