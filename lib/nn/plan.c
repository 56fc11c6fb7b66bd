/* plan.c: the forward-only inference engine (sk_infer.h).
 *
 * A plan turns a model into a flat program of steps over a few activation
 * buffers ("slots"), decided once:
 *  - each step writes a slot that no live step still reads, and a slot is
 *    given back as soon as its last reader has run, so that a plain
 *    sequence ping-pongs between two buffers and a residual block holds
 *    three (its input, the branch, the branch's scratch);
 *  - ReLU and unfolded batch norm run in place, dropout and flatten are
 *    no steps at all (evaluation mode), but a step never overwrites the
 *    caller's input or a block input that a shortcut still needs;
 *  - a batch norm right after a convolution is folded into a private copy
 *    of that convolution (weights scaled, the shift as its bias), from the
 *    running statistics;
 *  - resblock, mrblock and residual are planned through: their branches
 *    become steps on the shared slots, the sums and the merge steps of
 *    their own;
 *  - every other layer runs its ordinary forward between two slots (its
 *    setup() allocates its workspace for one slice).
 * The batch is run in slices of a few examples through the whole program,
 * so that the slots hold a slice, not the batch, and stay in cache.  No
 * gradient, optimiser state or per-layer activation is allocated: each
 * replica is built from the spec and borrows the model's parameter values.
 *
 * Results equal the training engine's evaluation-mode forward up to the
 * rounding of the folded weights (tests/unit/test-infer.c). */
#include "sk_infer.h"
#include "sk_kernels.h"
#include "sk_plan.h"
#include "sk_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_X (-1)                  /* the caller's input: read only */
#define SLICE_FLOATS ((size_t)1 << 18) /* the largest activation of a slice: 1 MiB */

enum op_kind { OP_LAYER, OP_COPY, OP_ADD, OP_ADD_SUB, OP_RELU, OP_SPLIT, OP_MERGE, OP_CAPTURE };

/* ReLU after a sum: as resblock/mrblock (NaN -> 0) or as the relu layer (NaN stays) */
enum { RELU_NONE, RELU_BLOCK, RELU_LAYER };

typedef struct op {
	int kind;
	sk_layer *l;          /* OP_LAYER */
	int s[5];             /* slots: s[0] in, s[1] out; OP_SPLIT in, a, b; OP_MERGE ha, hb, pa, pb, out */
	size_t isz, osz;      /* per-example floats read and written */
	int relu;             /* OP_ADD, OP_ADD_SUB: RELU_* after the sum */
	int merged;           /* OP_MERGE: one output stream */
	/* OP_ADD_SUB: y (oc x oh x ow) += x (c x h x w) subsampled by stride, into channels lo.. */
	int c, h, w, oc, oh, ow, stride, lo;
} op;

typedef struct plan {
	sk_seq *seq;          /* the replica: the model's layers, the master's parameter values */
	sk_param **ps;        /* its parameters (values borrowed) */
	int np;
	sk_seq **own;         /* folded convolutions */
	int nown;
	op *ops;
	int nop, capop;
	size_t *cap;          /* per-example floats of each slot */
	unsigned char *busy;
	float **buf;
	int nslot;
	int slice, out, thread;
	size_t insz, outsz;
	const char *capture;  /* layer name, or NULL */
	size_t capsz;
	int captured;
} plan;

static int is(const sk_layer *l, const char *type) { return !strcmp(l->ops->type, type); }

/* ---- planning ---- */

static op *emit(plan *p, int kind)
{
	if (p->nop == p->capop) {
		int cap = p->capop ? 2 * p->capop : 64;
		op *o = realloc(p->ops, sizeof *o * (size_t)cap);
		if (!o)
			return sk_error("out of memory"), NULL;
		p->ops = o;
		p->capop = cap;
	}
	op *o = &p->ops[p->nop++];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	for (int i = 0; i < 5; i++)
		o->s[i] = SLOT_X;
	return o;
}

/* A free slot for `per` floats per example: the smallest that fits, else
 * the largest free one grown, else a new one. */
static int slot_get(plan *p, size_t per)
{
	int best = -1;
	for (int i = 0; i < p->nslot; i++) {
		if (p->busy[i])
			continue;
		if (best < 0)
			best = i;
		else if (p->cap[i] >= per ? (p->cap[best] < per || p->cap[i] < p->cap[best])
		                          : (p->cap[best] < per && p->cap[i] > p->cap[best]))
			best = i;
	}
	if (best < 0) {
		size_t *c = realloc(p->cap, sizeof *c * (size_t)(p->nslot + 1));
		if (c)
			p->cap = c;
		unsigned char *b = c ? realloc(p->busy, (size_t)p->nslot + 1) : NULL;
		if (!b)
			return sk_error("out of memory");
		p->busy = b;
		best = p->nslot++;
		p->cap[best] = 0;
	}
	if (p->cap[best] < per)
		p->cap[best] = per;
	p->busy[best] = 1;
	return best;
}

static void slot_put(plan *p, int s)
{
	if (s >= 0)
		p->busy[s] = 0;
}

/* Layer l's ordinary forward from slot `in` into a new slot. */
static int plan_layer(plan *p, sk_layer *l, int in, int own)
{
	op *o;
	int out;
	if (sk_layer_setup(l, p->slice) < 0 || (out = slot_get(p, sk_shape_size(l->out))) < 0 ||
	    !(o = emit(p, OP_LAYER)))
		return -1;
	o->l = l;
	o->s[0] = in;
	o->s[1] = out;
	o->isz = sk_shape_size(l->in);
	o->osz = sk_shape_size(l->out);
	if (own)
		slot_put(p, in);
	return out;
}

/* A copy of convolution l with batch norm `bn` folded in: weights a*w and
 * bias a*b + shift per output channel, into *f.  Returns 1, 0 when the bn
 * is not per channel (it then runs on its own), -1 on error. */
static int fold_conv(plan *p, sk_layer *l, sk_layer *bn, sk_layer **f)
{
	int nc = l->out.d[0], rc = -1;
	char text[256];
	double *a, *b;
	sk_spec *s = NULL;
	sk_seq *q = NULL, **own;
	const float *w = l->params[0].w, *cb = sk_conv_bias(l);
	size_t per = l->params[0].size / (size_t)nc;
	if (!(a = malloc(sizeof *a * (size_t)nc * 2)))
		return sk_error("out of memory");
	b = a + nc;
	if (sk_bn_eval_affine(bn, a, b, nc) != nc) {
		free(a);
		return 0;
	}
	if (sk_conv_copy_text(l, 1, text, sizeof text) < 0 || !(s = sk_spec_parse(text, "<plan>")) ||
	    !(q = sk_seq_declare(s, l->in, "")))
		goto out;
	if (sk_seq_alloc(q, 0) < 0) {   /* values only: nothing trains the copy */
		sk_seq_free(q);
		q = NULL;
		goto out;
	}
	if (!(own = realloc(p->own, sizeof *own * (size_t)(p->nown + 1)))) {
		sk_error("out of memory");
		sk_seq_free(q);
		goto out;
	}
	p->own = own;
	p->own[p->nown++] = q;
	*f = q->layers[0];
	snprintf((*f)->name, sizeof (*f)->name, "%s", l->name);
	float *fw = (*f)->params[0].w, *fb = (*f)->params[1].w;
	for (int c = 0; c < nc; c++) {
		for (size_t j = 0; j < per; j++)
			fw[(size_t)c * per + j] = (float)(a[c] * (double)w[(size_t)c * per + j]);
		fb[c] = (float)(a[c] * (cb ? (double)cb[c] : 0.0) + b[c]);
	}
	rc = 1;
out:
	free(a);
	sk_spec_free(s);
	return rc;
}

static int plan_seq(plan *p, sk_seq *q, int in, int own);

static int emit_add(plan *p, int y, int x, size_t sz, int relu)
{
	op *o = emit(p, OP_ADD);
	if (!o)
		return -1;
	o->s[0] = x;
	o->s[1] = y;
	o->isz = o->osz = sz;
	o->relu = relu;
	return 0;
}

/* y (shape out) += x (shape in) subsampled by stride into channels lo.. */
static int emit_add_sub(plan *p, int y, int x, sk_shape in, sk_shape out, int stride, int lo, int relu)
{
	op *o = emit(p, OP_ADD_SUB);
	if (!o)
		return -1;
	o->s[0] = x;
	o->s[1] = y;
	o->isz = sk_shape_size(in);
	o->osz = sk_shape_size(out);
	o->c = in.d[0], o->h = in.d[1], o->w = in.d[2];
	o->oc = out.d[0], o->oh = out.d[1], o->ow = out.d[2];
	o->stride = stride;
	o->lo = lo;
	o->relu = relu;
	return 0;
}

static int plan_resblock(plan *p, sk_layer *l, int x, int own)
{
	sk_seq *br, *pr;
	int sa, y, s;
	sk_resblock_parts(l, &br, &pr, &sa);
	if ((y = plan_seq(p, br, x, 0)) < 0)
		return -1;
	if (pr) {
		if ((s = plan_seq(p, pr, x, 0)) < 0 || emit_add(p, y, s, sk_shape_size(l->out), RELU_BLOCK) < 0)
			return -1;
		slot_put(p, s);
	} else if (sa) {
		if (emit_add_sub(p, y, x, l->in, l->out, sa, 0, RELU_BLOCK) < 0)
			return -1;
	} else if (emit_add(p, y, x, sk_shape_size(l->out), RELU_BLOCK) < 0) {
		return -1;
	}
	if (own)
		slot_put(p, x);
	return y;
}

static int plan_residual(plan *p, sk_layer *l, int x, int own)
{
	sk_seq *body, *sc;
	int stride, lo, y, s, kind = sk_residual_parts(l, &body, &sc, &stride, &lo);
	if ((y = plan_seq(p, body, x, 0)) < 0)
		return -1;
	if (kind == SK_RESIDUAL_IDENTITY) {
		if (emit_add(p, y, x, sk_shape_size(l->out), RELU_NONE) < 0)
			return -1;
	} else if (kind == SK_RESIDUAL_PAD) {
		if (emit_add_sub(p, y, x, l->in, l->out, stride, lo, RELU_NONE) < 0)
			return -1;
	} else {
		if ((s = plan_seq(p, sc, x, 0)) < 0 || emit_add(p, y, s, sk_shape_size(l->out), RELU_NONE) < 0)
			return -1;
		slot_put(p, s);
	}
	if (own)
		slot_put(p, x);
	return y;
}

static int plan_mrblock(plan *p, sk_layer *l, int x, int own)
{
	sk_seq *h[2], *pj[2];
	int single, merged, xs[2], hy[2], py[2], y;
	size_t sin, sout;
	op *o;
	sk_mrblock_parts(l, h, pj, &single, &merged, &sin, &sout);
	if (single) {
		xs[0] = xs[1] = x;
	} else {
		if ((xs[0] = slot_get(p, sin)) < 0 || (xs[1] = slot_get(p, sin)) < 0 || !(o = emit(p, OP_SPLIT)))
			return -1;
		o->s[0] = x;
		o->s[1] = xs[0];
		o->s[2] = xs[1];
		o->isz = sin;
		if (own)
			slot_put(p, x);
	}
	for (int k = 0; k < 2; k++) {
		if ((hy[k] = plan_seq(p, h[k], xs[k], 0)) < 0)
			return -1;
		py[k] = xs[k];
		if (pj[k]) {
			if ((py[k] = plan_seq(p, pj[k], xs[k], 0)) < 0)
				return -1;
			if (!single)
				slot_put(p, xs[k]);
		}
	}
	if ((y = slot_get(p, sk_shape_size(l->out))) < 0 || !(o = emit(p, OP_MERGE)))
		return -1;
	o->s[0] = hy[0];
	o->s[1] = hy[1];
	o->s[2] = py[0];
	o->s[3] = py[1];
	o->s[4] = y;
	o->osz = sout;
	o->merged = merged;
	for (int k = 0; k < 2; k++) {
		slot_put(p, hy[k]);
		if (pj[k] || !single)
			slot_put(p, py[k]);
	}
	if (single && own)
		slot_put(p, x);
	return y;
}

/* Plan sequence q on input slot `in`; `own`: the sequence may overwrite
 * `in` and gives it back.  Returns the slot of its output, which the caller
 * owns. */
static int plan_seq(plan *p, sk_seq *q, int cur, int own)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i], *last = l;
		int out = -1;
		op *o;
		if (is(l, "conv") && i + 1 < q->n && is(q->layers[i + 1], "bn") &&
		    !(p->capture && !strcmp(p->capture, l->name))) {
			sk_layer *f = NULL;
			int r = fold_conv(p, l, q->layers[i + 1], &f);
			if (r < 0)
				return -1;
			if (r > 0)
				last = q->layers[++i];
			out = plan_layer(p, r > 0 ? f : l, cur, own);
		} else if (own && (is(l, "relu") || is(l, "bn"))) {
			/* in place; a ReLU right after a sum joins the sum */
			o = p->nop ? &p->ops[p->nop - 1] : NULL;
			if (is(l, "relu") && sk_relu_slope(l) == 0.0f && o && (o->kind == OP_ADD || o->kind == OP_ADD_SUB) &&
			    o->s[1] == cur && o->relu == RELU_NONE) {
				o->relu = RELU_LAYER;
			} else {
				if (sk_layer_setup(l, p->slice) < 0 || !(o = emit(p, OP_LAYER)))
					return -1;
				o->l = l;
				o->s[0] = o->s[1] = cur;
				o->isz = o->osz = sk_shape_size(l->in);
			}
			out = cur;
		} else if (is(l, "dropout") || is(l, "flatten") || is(l, "identity")) {
			out = cur;   /* the same values */
		} else if (is(l, "resblock")) {
			out = plan_resblock(p, l, cur, own);
		} else if (is(l, "mrblock")) {
			out = plan_mrblock(p, l, cur, own);
		} else if (is(l, "residual")) {
			out = plan_residual(p, l, cur, own);
		} else {
			out = plan_layer(p, l, cur, own);
		}
		if (out < 0)
			return -1;
		if (out != cur)
			own = 1;
		cur = out;
		if (p->capture && !strcmp(p->capture, last->name)) {
			if (!(o = emit(p, OP_CAPTURE)))
				return -1;
			o->s[0] = cur;
			o->isz = sk_shape_size(last->out);
			p->capsz = o->isz;
			p->captured = 1;
		}
	}
	if (!own) {   /* the output is the input: a copy the caller may own */
		int out;
		op *o;
		if ((out = slot_get(p, sk_shape_size(q->out))) < 0 || !(o = emit(p, OP_COPY)))
			return -1;
		o->s[0] = cur;
		o->s[1] = out;
		o->isz = o->osz = sk_shape_size(q->out);
		cur = out;
	}
	return cur;
}

/* ---- plans ---- */

static void plan_free(plan *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nslot; i++)
		if (p->buf)
			sk_free(p->buf[i]);
	free(p->buf);
	free(p->cap);
	free(p->busy);
	free(p->ops);
	for (int i = 0; i < p->nown; i++)
		sk_seq_free(p->own[i]);
	free(p->own);
	if (p->seq)
		for (int i = 0; i < p->np; i++)
			p->ps[i]->w = NULL;   /* borrowed */
	sk_seq_free(p->seq);
	free(p->ps);
	free(p);
}

static int max_act(sk_layer *l, int depth, void *arg)
{
	size_t *m = arg;
	(void)depth;
	if (sk_shape_size(l->in) > *m)
		*m = sk_shape_size(l->in);
	if (sk_shape_size(l->out) > *m)
		*m = sk_shape_size(l->out);
	return 0;
}

/* The examples of a slice: the largest activation of a slice near
 * SLICE_FLOATS (SK_INFER_SLICE in the environment overrides). */
static int choose_slice(sk_seq *q, int max_batch, int slice)
{
	size_t m = 1;
	const char *e = getenv("SK_INFER_SLICE");
	if (slice < 1 && e && atoi(e) > 0)
		slice = atoi(e);
	if (slice < 1) {
		sk_seq_walk_layers(q, max_act, &m);
		size_t s = SLICE_FLOATS / m;
		slice = s < 1 ? 1 : s > (size_t)max_batch ? max_batch : (int)s;
	}
	return slice > max_batch ? max_batch : slice;
}

static plan *plan_new(sk_model *m, int thread, int max_batch, int slice, const char *capture)
{
	plan *p = calloc(1, sizeof *p);
	sk_param **mp = NULL;
	int nm, np;
	if (!p) {
		sk_error("out of memory");
		return NULL;
	}
	p->thread = thread;
	p->capture = capture;
	p->insz = sk_shape_size(m->in);
	p->outsz = sk_shape_size(m->seq->out);
	/* a replica of the layers whose parameters are the model's values
	 * (declared only: nothing of its own is allocated for them) */
	if (!(p->seq = sk_seq_declare(m->spec, m->in, "")) || (np = sk_seq_params(p->seq, &p->ps)) < 0 ||
	    (nm = sk_seq_params(m->seq, &mp)) < 0)
		goto fail;
	if (nm != np) {
		sk_error("the replica has %d parameters, the model %d", np, nm);
		goto fail;
	}
	p->np = np;
	for (int i = 0; i < p->np; i++) {
		if (!mp[i]->w || strcmp(mp[i]->name, p->ps[i]->name)) {
			sk_error("parameter '%s' of the model is not ready for the engine", mp[i]->name);
			goto fail;
		}
		p->ps[i]->w = mp[i]->w;
	}
	free(mp);
	mp = NULL;
	p->slice = choose_slice(p->seq, max_batch, slice);
	if ((p->out = plan_seq(p, p->seq, SLOT_X, 0)) < 0)
		goto fail;
	if (capture && !p->captured) {
		sk_error("the model has no layer '%s'", capture);
		goto fail;
	}
	if (!(p->buf = calloc((size_t)p->nslot + 1, sizeof *p->buf))) {
		sk_error("out of memory");
		goto fail;
	}
	for (int i = 0; i < p->nslot; i++)
		if (!(p->buf[i] = sk_alloc_array(p->cap[i], (size_t)p->slice * sizeof(float))))
			goto fail;
	return p;
fail:
	free(mp);
	plan_free(p);
	return NULL;
}

static float *slot(const plan *p, int s, const float *x) { return s == SLOT_X ? (float *)x : p->buf[s]; }

static int run_op(const plan *p, const op *o, const sk_ctx *ctx, int n, const float *x, float *cap)
{
	const float *in = slot(p, o->s[0], x);
	float *out = o->kind == OP_MERGE ? slot(p, o->s[4], x) : slot(p, o->s[1], x);
	size_t m = o->osz * (size_t)n;
	switch (o->kind) {
	case OP_LAYER:
		if (o->l->ops->forward(o->l, ctx, n, in, out) < 0)
			return sk_error_prefix("%s", o->l->name);
		break;
	case OP_COPY:
		memcpy(out, in, m * sizeof(float));
		break;
	case OP_CAPTURE:
		memcpy(cap, in, o->isz * (size_t)n * sizeof(float));
		break;
	case OP_ADD:
		if (o->relu == RELU_BLOCK)
			for (size_t i = 0; i < m; i++) {
				float v = out[i] + in[i];
				out[i] = v > 0 ? v : 0;
			}
		else if (o->relu == RELU_LAYER)
			for (size_t i = 0; i < m; i++) {
				float v = out[i] + in[i];
				out[i] = !(v <= 0.0f) ? v : 0.0f;
			}
		else
			sk_vadd(m, in, out);
		break;
	case OP_ADD_SUB:
		for (int b = 0; b < n; b++)
			for (int c = 0; c < o->c && c + o->lo < o->oc; c++) {
				const float *xc = in + (size_t)b * o->isz + (size_t)c * o->h * o->w;
				float *yc = out + (size_t)b * o->osz + (size_t)(c + o->lo) * o->oh * o->ow;
				for (int i = 0; i < o->oh; i++)
					for (int j = 0; j < o->ow; j++)
						yc[i * o->ow + j] += xc[(size_t)i * o->stride * o->w + (size_t)j * o->stride];
			}
		if (o->relu == RELU_BLOCK)
			for (size_t i = 0; i < m; i++)
				out[i] = out[i] > 0 ? out[i] : 0;
		else if (o->relu == RELU_LAYER)
			for (size_t i = 0; i < m; i++)
				out[i] = !(out[i] <= 0.0f) ? out[i] : 0.0f;
		break;
	case OP_SPLIT: {
		float *a = slot(p, o->s[1], x), *b = slot(p, o->s[2], x);
		for (int e = 0; e < n; e++) {
			memcpy(a + (size_t)e * o->isz, in + (size_t)2 * e * o->isz, o->isz * sizeof(float));
			memcpy(b + (size_t)e * o->isz, in + ((size_t)2 * e + 1) * o->isz, o->isz * sizeof(float));
		}
		break;
	}
	case OP_MERGE: {
		const float *ha = in, *hb = slot(p, o->s[1], x), *pa = slot(p, o->s[2], x), *pb = slot(p, o->s[3], x);
		size_t so = o->osz;
		for (int e = 0; e < n; e++) {
			size_t k = (size_t)e * so;
			if (o->merged) {
				float *y = out + k;
				for (size_t i = 0; i < so; i++) {
					float v = ha[k + i] + hb[k + i] + 0.5f * (pa[k + i] + pb[k + i]);
					y[i] = v > 0 ? v : 0;
				}
			} else {
				float *ya = out + 2 * k, *yb = ya + so;
				for (size_t i = 0; i < so; i++) {
					float mm = 0.5f * (pa[k + i] + pb[k + i]);
					float va = ha[k + i] + mm, vb = hb[k + i] + mm;
					ya[i] = va > 0 ? va : 0;
					yb[i] = vb > 0 ? vb : 0;
				}
			}
		}
		break;
	}
	}
	return 0;
}

/* n examples x (n * insz floats): the output into y (n * outsz) and the
 * captured layer's into cap (n * capsz), each when not NULL. */
static int plan_forward(plan *p, int n, const float *x, float *y, float *cap)
{
	sk_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	ctx.thread = p->thread;
	for (int i0 = 0; i0 < n; i0 += p->slice) {
		int k = n - i0 < p->slice ? n - i0 : p->slice;
		const float *xs = x + (size_t)i0 * p->insz;
		for (int j = 0; j < p->nop; j++) {
			const op *o = &p->ops[j];
			if (o->kind == OP_CAPTURE && !cap)
				continue;
			if (run_op(p, o, &ctx, k, xs, cap ? cap + (size_t)i0 * p->capsz : NULL) < 0)
				return -1;
		}
		if (y)
			memcpy(y + (size_t)i0 * p->outsz, slot(p, p->out, xs), (size_t)k * p->outsz * sizeof(float));
	}
	return 0;
}

static size_t plan_bytes(const plan *p)
{
	size_t b = 0;
	for (int i = 0; i < p->nslot; i++)
		b += p->cap[i] * (size_t)p->slice * sizeof(float);
	return b;
}

/* ---- the engine: one plan per thread, on the thread pool ---- */

struct sk_engine {
	int T, max_batch;
	plan **p;             /* one a thread, all of the same sizes */
	sk_pool *pool;
	/* the current job */
	int n;
	const float *x;
	float *y, *cap;
};

static int run_share(void *arg, int id)
{
	sk_engine *e = arg;
	plan *p = e->p[id];
	int lo = (int)((int64_t)e->n * id / e->T), hi = (int)((int64_t)e->n * (id + 1) / e->T);
	if (hi <= lo)
		return 0;
	return plan_forward(p, hi - lo, e->x + (size_t)lo * p->insz, e->y ? e->y + (size_t)lo * p->outsz : NULL,
	                    e->cap ? e->cap + (size_t)lo * p->capsz : NULL);
}

void sk_engine_free(sk_engine *e)
{
	if (!e)
		return;
	sk_pool_free(e->pool);
	for (int i = 0; e->p && i < e->T; i++)
		plan_free(e->p[i]);
	free(e->p);
	free(e);
}

sk_engine *sk_engine_new(sk_model *m, int threads, int max_batch, const char *layer, int slice)
{
	sk_engine *e;
	if (max_batch < 1) {
		sk_error("batch %d out of range", max_batch);
		return NULL;
	}
	/* no more threads than examples (sk_pool_new checks the range) */
	if (threads > max_batch && threads <= 256)
		threads = max_batch;
	sk_blas_threads(1);
	if (!(e = calloc(1, sizeof *e))) {
		sk_error("out of memory");
		return NULL;
	}
	e->T = threads;
	e->max_batch = max_batch;
	if (!(e->pool = sk_pool_new(threads)))
		goto fail;
	if (!(e->p = calloc((size_t)threads, sizeof *e->p))) {
		sk_error("out of memory");
		goto fail;
	}
	for (int i = 0; i < threads; i++)
		if (!(e->p[i] = plan_new(m, i, (max_batch + threads - 1) / threads, slice, layer)))
			goto fail;
	return e;
fail:
	sk_engine_free(e);
	return NULL;
}

size_t sk_engine_layer_size(const sk_engine *e) { return e->p[0]->capsz; }

size_t sk_engine_bytes(const sk_engine *e)
{
	size_t b = 0;
	for (int i = 0; i < e->T; i++)
		b += plan_bytes(e->p[i]);
	return b;
}

int sk_engine_slice(const sk_engine *e) { return e->p[0]->slice; }

int sk_engine_forward(sk_engine *e, int n, const float *x, float *y, float *features)
{
	if (n < 0 || n > e->max_batch)
		return sk_error("batch of %d exceeds the prepared %d", n, e->max_batch);
	if (features && !e->p[0]->capsz)
		return sk_error("the engine was planned without a layer to capture");
	e->n = n;
	e->x = x;
	e->y = y;
	e->cap = features;
	return sk_pool_run(e->pool, e->T, run_share, e);
}
