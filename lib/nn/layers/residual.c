/* residual.c: the residual block, the first composite layer:
 *
 *     residual [shortcut=auto|identity|pad|conv|convbn] {
 *         conv 16 k=3 pad=1
 *         ...
 *     }
 *
 * y = body(x) + shortcut(x); any activation after the sum is a separate
 * layer.  Shortcuts: identity (shapes must match), pad (subsample by the
 * stride and zero-pad the new channels, ResNet's option A), conv (a 1x1
 * convolution without bias, with the stride; option B), convbn (conv then
 * bn).  auto, the default, is identity when the shapes match and conv
 * otherwise.  The body is child 0 (layers named "<name>.<type><i>"), a conv
 * shortcut child 1 ("<name>.sc.").
 */
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SC_AUTO, SC_IDENTITY, SC_PAD, SC_CONV, SC_CONVBN };
static const char *const sc_names[] = {"auto", "identity", "pad", "conv", "convbn", NULL};

typedef struct residual {
	int sc;
	int stride, lo;    /* pad: subsampling stride, first channel of the copy */
	float *tmp;        /* conv: input gradient of the shortcut */
} residual;

static int same_shape(sk_shape a, sk_shape b)
{
	if (a.n != b.n)
		return 0;
	for (int i = 0; i < a.n; i++)
		if (a.d[i] != b.d[i])
			return 0;
	return 1;
}

/* The stride that maps extent h to oh by a 1x1 window, or 0. */
static int stride_for(int h, int oh)
{
	for (int s = 1; s <= h; s++)
		if ((h - 1) / s + 1 == oh)
			return s;
	return 0;
}

static int residual_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	residual *r = l->priv;
	char prefix[SK_NAME_MAX + 8], buf[256];
	sk_seq *body;
	if (sk_opt_choice(s, o, "shortcut", sc_names, SC_AUTO, &r->sc) < 0)
		return -1;
	if (o->npos)
		return sk_spec_error(s, o, "takes no positional arguments");
	if (!o->body || o->body->n == 0)
		return sk_spec_error(s, o, "needs a non-empty '{ ... }' body");
	if (!(l->child = calloc(2, sizeof *l->child)))
		return sk_error("out of memory");
	snprintf(prefix, sizeof prefix, "%s.", l->name);
	if (!(body = sk_seq_declare(o->body, l->in, prefix)))
		return -1;
	l->child[l->nchild++] = body;
	l->out = body->out;
	l->flops = sk_seq_flops(body) + (double)sk_shape_size(l->out);
	if (r->sc == SC_AUTO)
		r->sc = same_shape(l->in, l->out) ? SC_IDENTITY : SC_CONV;
	if (r->sc == SC_IDENTITY) {
		if (!same_shape(l->in, l->out))
			return sk_spec_error(s, o, "shortcut=identity needs the body to keep the shape (%s -> %s)",
			                     sk_shape_fmt(l->in, buf, 64), sk_shape_fmt(l->out, buf + 64, 64));
		return 0;
	}
	if (l->in.n != 3 || l->out.n != 3)
		return sk_spec_error(s, o, "shortcut=%s needs CxHxW input and output", sc_names[r->sc]);
	r->stride = stride_for(l->in.d[1], l->out.d[1]);
	if (!r->stride || stride_for(l->in.d[2], l->out.d[2]) != r->stride)
		return sk_spec_error(s, o, "no stride maps %dx%d to the body's %dx%d", l->in.d[1], l->in.d[2],
		                     l->out.d[1], l->out.d[2]);
	if (r->sc == SC_PAD) {
		if (l->out.d[0] < l->in.d[0])
			return sk_spec_error(s, o, "shortcut=pad cannot reduce %d channels to %d", l->in.d[0], l->out.d[0]);
		r->lo = (l->out.d[0] - l->in.d[0]) / 2;
		return 0;
	}
	snprintf(buf, sizeof buf, "conv %d k=1 stride=%d bias=0\n%s", l->out.d[0], r->stride,
	         r->sc == SC_CONVBN ? "bn\n" : "");
	sk_spec *sp = sk_spec_parse(buf, "<shortcut>");
	if (!sp)
		return -1;
	snprintf(prefix, sizeof prefix, "%s.sc.", l->name);
	sk_seq *sc = sk_seq_declare(sp, l->in, prefix);
	sk_spec_free(sp);
	if (!sc)
		return -1;
	l->child[l->nchild++] = sc;
	l->flops += sk_seq_flops(sc);
	return 0;
}

static int residual_setup(sk_layer *l, int max_batch)
{
	residual *r = l->priv;
	size_t n;
	if (r->sc != SC_CONV && r->sc != SC_CONVBN)
		return 0;
	if (sk_mul_size(sk_shape_size(l->in), (size_t)max_batch, &n) < 0)
		return -1;
	sk_part tmp[] = {SK_PART(r->tmp, n)};
	return sk_layer_parts(l, 1, tmp);
}

static int residual_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	residual *r = l->priv;
	size_t out = sk_shape_size(l->out), m = out * (size_t)n;
	const float *yb = sk_seq_forward(l->child[0], c, n, x);
	if (!yb)
		return -1;
	if (r->sc == SC_IDENTITY) {
		sk_vadd3(m, yb, x, y);
		return 0;
	}
	memcpy(y, yb, m * sizeof(float));
	if (r->sc == SC_PAD) {
		int C = l->in.d[0], H = l->in.d[1], W = l->in.d[2], OH = l->out.d[1], OW = l->out.d[2], s = r->stride;
		for (int i = 0; i < n; i++)
			for (int ch = 0; ch < C; ch++) {
				const float *xc = x + ((size_t)i * C + ch) * H * W;
				float *yc = y + (size_t)i * out + (size_t)(ch + r->lo) * OH * OW;
				for (int oy = 0; oy < OH; oy++)
					for (int ox = 0; ox < OW; ox++)
						yc[oy * OW + ox] += xc[(oy * s) * W + ox * s];
			}
	} else {
		const float *ys = sk_seq_forward(l->child[1], c, n, x);
		if (!ys)
			return -1;
		sk_vadd(m, ys, y);
	}
	return 0;
}

static int residual_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                             float *dx)
{
	residual *r = l->priv;
	size_t in = sk_shape_size(l->in), out = sk_shape_size(l->out), m = in * (size_t)n;
	(void)y;
	if (sk_seq_backward(l->child[0], c, n, x, dy, dx) < 0)
		return -1;
	if (r->sc == SC_IDENTITY) {
		if (dx)
			sk_vadd(m, dy, dx);
	} else if (r->sc == SC_PAD) {
		int C = l->in.d[0], H = l->in.d[1], W = l->in.d[2], OH = l->out.d[1], OW = l->out.d[2], s = r->stride;
		if (dx)
			for (int i = 0; i < n; i++)
				for (int ch = 0; ch < C; ch++) {
					float *dc = dx + ((size_t)i * C + ch) * H * W;
					const float *dyc = dy + (size_t)i * out + (size_t)(ch + r->lo) * OH * OW;
					for (int oy = 0; oy < OH; oy++)
						for (int ox = 0; ox < OW; ox++)
							dc[(oy * s) * W + ox * s] += dyc[oy * OW + ox];
				}
	} else {
		if (sk_seq_backward(l->child[1], c, n, x, dy, dx ? r->tmp : NULL) < 0)
			return -1;
		if (dx)
			sk_vadd(m, r->tmp, dx);
	}
	return 0;
}

int sk_residual_parts(const sk_layer *l, sk_seq **body, sk_seq **sc, int *stride, int *lo)
{
	const residual *r = l->priv;
	*body = l->child[0];
	*sc = l->nchild > 1 ? l->child[1] : NULL;
	*stride = r->stride;
	*lo = r->lo;
	return r->sc == SC_IDENTITY ? SK_RESIDUAL_IDENTITY : r->sc == SC_PAD ? SK_RESIDUAL_PAD : SK_RESIDUAL_SEQ;
}

SK_LAYER(residual, "residual [shortcut=auto|identity|pad|conv|convbn] { LAYERS }",
         .setup = residual_setup, .priv_size = sizeof(residual));
