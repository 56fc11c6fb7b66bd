/* layer.c: parameters and their multipliers, the layer registry lookup, and
 * layer sequences. */
#include "sk_layer.h"
#include "sk_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t sk_shape_size(sk_shape s)
{
	size_t n = 1;
	for (int i = 0; i < s.n; i++) {
		if (s.d[i] < 0 || (s.d[i] && n > SIZE_MAX / (size_t)s.d[i]))
			return SIZE_MAX;   /* never a valid size: the builder's caps refuse it */
		n *= (size_t)s.d[i];
	}
	return n;
}

sk_shape sk_shape1(int a) { sk_shape s = {1, {a, 0, 0, 0}}; return s; }
sk_shape sk_shape2(int a, int b) { sk_shape s = {2, {a, b, 0, 0}}; return s; }
sk_shape sk_shape3(int c, int h, int w) { sk_shape s = {3, {c, h, w, 0}}; return s; }

char *sk_shape_fmt(sk_shape s, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < s.n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, i ? "x%d" : "%d", s.d[i]);
	return buf;
}

/* ---- per-parameter multipliers ---- */

float sk_param_lr_mult(const sk_param *p) { return (p->mults & SK_MULT_LR) ? p->lr_mult : 1.0f; }

float sk_param_decay_mult(const sk_param *p)
{
	if (p->mults & SK_MULT_DECAY)
		return p->decay_mult;
	return (p->flags & SK_P_NODECAY) ? 0.0f : 1.0f;
}

typedef struct mult_arg {
	const char *layer;   /* the layer's full name */
	const char *rel;     /* NULL: every parameter */
	int which;           /* SK_MULT_LR or SK_MULT_DECAY */
	float v;
	int found;
	char names[200];     /* for the error: the layer's parameter names */
} mult_arg;

static int mult_fn(sk_param *p, sk_layer *owner, void *arg)
{
	mult_arg *a = arg;
	size_t k = strlen(a->layer);
	const char *rel = p->name;
	(void)owner;
	if (p->flags & SK_P_BUFFER)
		return 0;
	if (!strncmp(p->name, a->layer, k) && p->name[k] == '.')
		rel = p->name + k + 1;
	if (a->rel && strcmp(a->rel, rel)) {
		size_t n = strlen(a->names);
		if (n + strlen(rel) + 3 < sizeof a->names)
			snprintf(a->names + n, sizeof a->names - n, "%s%s", n ? ", " : "", rel);
		return 0;
	}
	a->found++;
	if (p->mults & a->which)   /* set nearer the parameter already */
		return 0;
	if (a->which == SK_MULT_LR)
		p->lr_mult = a->v;
	else
		p->decay_mult = a->v;
	p->mults |= a->which;
	return 0;
}

/* A layer's parameters, then its children's (sk_seq_walk_params order). */
static int walk_layer_params(sk_layer *l, sk_param_fn fn, void *arg)
{
	for (int i = 0; i < l->nparams; i++)
		if (fn(&l->params[i], l, arg) < 0)
			return -1;
	for (int c = 0; c < l->nchild; c++)
		if (sk_seq_walk_params(l->child[c], fn, arg) < 0)
			return -1;
	return 0;
}

int sk_opt_param_mults(const sk_spec *s, sk_specline *o, sk_layer *l)
{
	/* the named parameters first, then the whole layer: P wins over all */
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < o->nkv; k++) {
			const char *key = o->key[k], *dot;
			int which;
			float v;
			if (!strncmp(key, "lr_mult", 7) && (key[7] == 0 || key[7] == '.'))
				which = SK_MULT_LR;
			else if (!strncmp(key, "decay_mult", 10) && (key[10] == 0 || key[10] == '.'))
				which = SK_MULT_DECAY;
			else
				continue;
			dot = strchr(key, '.');
			if ((pass == 0) != (dot != NULL))
				continue;
			if (sk_opt_float(s, o, key, 0, &v) < 0 || !(v >= 0) || v > 1e6)
				return sk_error("%s:%d:%d: %s: %s='%s' is not a number from 0 to 1e6", s->srcname, o->line,
				                o->kvcol[k], o->type, key, o->val[k]);
			mult_arg a = {l->name, dot ? dot + 1 : NULL, which, v, 0, ""};
			if (dot && !dot[1])
				return sk_error("%s:%d:%d: %s: %s names no parameter", s->srcname, o->line, o->kvcol[k], o->type,
				                key);
			walk_layer_params(l, mult_fn, &a);
			if (!a.found && dot)
				return sk_error("%s:%d:%d: %s: %s: the layer has no parameter '%s' (it has: %s)", s->srcname,
				                o->line, o->kvcol[k], o->type, key, dot + 1, a.names[0] ? a.names : "none");
			if (!a.found)
				return sk_error("%s:%d:%d: %s: %s: the layer has no parameters", s->srcname, o->line,
				                o->kvcol[k], o->type, key);
		}
	return 0;
}

int sk_opt_count(const sk_spec *s, sk_specline *o, const char *name, int max, int *v)
{
	if (sk_opt_pos_int(s, o, 0, 1, 0, v) < 0)
		return -1;
	if (o->npos > 1)
		return sk_spec_error(s, o, "takes one positional argument (%s), got %d", name, o->npos);
	if (*v < 1 || *v > max)
		return sk_spec_error(s, o, "%s=%d is out of range 1..%d", name, *v, max);
	return 0;
}

/* ---- what tools ask of a layer ---- */

int sk_layer_affine(const sk_layer *l, sk_affine *a)
{
	if (!l->ops->affine)
		return 0;
	l->ops->affine(l, a);
	return 1;
}

static const char *const init_names[] = {"he", "xavier", "normal", "uniform", NULL};
static const int init_kinds[] = {SK_INIT_HE, SK_INIT_XAVIER, SK_INIT_NORMAL, SK_INIT_UNIFORM};
static const float init_scale[] = {1.0f, 1.0f, 0.01f, 0.05f};

int sk_opt_affine(const sk_spec *s, sk_specline *o, sk_affine_opts *a)
{
	if (sk_opt_int(s, o, "bias", 1, &a->bias) < 0 || sk_opt_choice(s, o, "init", init_names, 0, &a->init) < 0 ||
	    sk_opt_float(s, o, "scale", init_scale[a->init], &a->scale) < 0 ||
	    sk_opt_float(s, o, "bias_init", 0.0f, &a->bias_init) < 0)
		return -1;
	a->bias = a->bias != 0;
	return 0;
}

int sk_layer_affine_params(sk_layer *l, const sk_affine_opts *a, int ndim, const int64_t *shape, int fan_in,
                           int fan_out)
{
	int64_t bshape[1] = {shape[0]};
	if (sk_layer_param(l, "w", ndim, shape, init_kinds[a->init], a->scale, fan_in, fan_out, 0) < 0)
		return -1;
	if (a->bias && sk_layer_param(l, "b", 1, bshape, a->bias_init == 0 ? SK_INIT_ZERO : SK_INIT_CONST, a->bias_init,
	                              0, 0, SK_P_NODECAY) < 0)
		return -1;
	return 0;
}

void sk_affine_wb(const sk_layer *l, sk_affine *a)
{
	a->w = 0;
	a->b = l->nparams > 1 ? 1 : -1;
	a->macs = l->flops / 2;
}

/* ---- parameters ---- */

int sk_layer_param(sk_layer *l, const char *shortname, int ndim, const int64_t *shape, int init, float init_a,
                   int fan_in, int fan_out, int flags)
{
	size_t size = 1;
	sk_param *p;
	if (ndim < 1 || ndim > 4)
		return sk_error("%s: parameter '%s' has %d dimensions", l->name, shortname, ndim);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] <= 0 || shape[i] > SK_MAX_EXTENT)
			return sk_error("%s: parameter '%s' has invalid extent %lld", l->name, shortname,
			                (long long)shape[i]);
		if (sk_mul_size(size, (size_t)shape[i], &size) < 0 || size > SK_MAX_PARAM) {
			char b[96];
			return sk_error("%s: parameter '%s' of shape %s is too large (more than %zu values)", l->name,
			                shortname, sk_shape_str(ndim, shape, b, sizeof b), SK_MAX_PARAM);
		}
	}
	p = realloc(l->params, sizeof *p * (size_t)(l->nparams + 1));
	if (!p)
		return sk_error("out of memory");
	l->params = p;
	p = &l->params[l->nparams];
	memset(p, 0, sizeof *p);
	if ((size_t)snprintf(p->name, sizeof p->name, "%s.%s", l->name, shortname) >= sizeof p->name)
		return sk_error("%s: parameter name too long", l->name);
	p->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		p->shape[i] = shape[i];
	p->size = size;
	p->flags = flags;
	p->init = init;
	p->init_a = init_a;
	p->fan_in = fan_in > 0 ? fan_in : 1;
	p->fan_out = fan_out > 0 ? fan_out : 1;
	return l->nparams++;
}

static int value_count(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	*(size_t *)arg += p->size;
	return 0;
}

size_t sk_seq_value_count(sk_seq *q)
{
	size_t n = 0;
	sk_seq_walk_params(q, value_count, &n);
	return n;
}

static int alloc_param(sk_param *p, sk_layer *l, void *arg)
{
	int grads = *(int *)arg;
	(void)l;
	if (!p->w) {
		if (!(p->w = sk_alloc_array(p->size, sizeof(float))))
			return sk_error_prefix("%s", p->name);
		if (p->fill && p->nfill)
			for (size_t i = 0; i < p->size; i++)
				p->w[i] = p->fill[i % p->nfill];
	}
	if (grads && !p->g && !(p->flags & SK_P_BUFFER) && !(p->g = sk_alloc_array(p->size, sizeof(float))))
		return sk_error_prefix("%s", p->name);
	return 0;
}

int sk_seq_alloc(sk_seq *q, int grads)
{
	size_t n = sk_seq_value_count(q);
	if (n > SK_MAX_MODEL)
		return sk_error("the model has %zu parameter values, more than the limit %zu", n, SK_MAX_MODEL);
	return sk_seq_walk_params(q, alloc_param, &grads);
}

static int need_grad(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	(void)arg;
	return !(p->flags & SK_P_BUFFER) && !p->g ? -1 : 0;
}

int sk_seq_has_grads(sk_seq *q) { return sk_seq_walk_params(q, need_grad, NULL) == 0; }

static void param_init(sk_param *p, uint64_t seed)
{
	sk_rng r = sk_rng_make(seed, sk_rng_hash(p->name));
	float a = p->init_a, std = 0, bound = 0;
	int normal = 0;
	switch (p->init) {
	case SK_INIT_ZERO: for (size_t i = 0; i < p->size; i++) p->w[i] = 0; return;
	case SK_INIT_ONE: for (size_t i = 0; i < p->size; i++) p->w[i] = 1; return;
	case SK_INIT_CONST: for (size_t i = 0; i < p->size; i++) p->w[i] = a; return;
	case SK_INIT_CUSTOM: return;
	case SK_INIT_HE: normal = 1; std = a * sqrtf(2.0f / (float)p->fan_in); break;
	case SK_INIT_HE_UNIFORM: bound = a * sqrtf(6.0f / (float)p->fan_in); break;
	case SK_INIT_XAVIER: bound = a * sqrtf(6.0f / (float)(p->fan_in + p->fan_out)); break;
	case SK_INIT_XAVIER_NORMAL: normal = 1; std = a * sqrtf(2.0f / (float)(p->fan_in + p->fan_out)); break;
	case SK_INIT_UNIFORM: bound = a; break;
	case SK_INIT_NORMAL: normal = 1; std = a; break;
	}
	for (size_t i = 0; i < p->size; i++)
		p->w[i] = normal ? std * sk_rng_next_normal(&r) : bound * (2.0f * sk_rng_next_uniform(&r) - 1.0f);
}

/* ---- registry lookup ---- */

const sk_layer_ops *sk_layer_find(const char *type)
{
	int n;
	const sk_layer_ops *const *t = sk_layer_table(&n);
	char list[1024];
	size_t len = 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(t[i]->type, type))
			return t[i];
	for (int i = 0; i < n && len < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? " " : "", t[i]->type);
	sk_error("unknown layer type '%s' (known: %s)", type, list);
	return NULL;
}

/* ---- memory owned by a layer ---- */

int sk_layer_parts(sk_layer *l, int nparts, const sk_part *parts)
{
	void **m = realloc(l->mem, sizeof *m * (size_t)(l->nmem + 1));
	if (!m)
		return sk_error("out of memory");
	l->mem = m;
	if (!(l->mem[l->nmem] = sk_alloc_parts(nparts, parts)))
		return -1;
	l->nmem++;
	return 0;
}

void sk_batch_group(int n, int rows, size_t cols, const float *y, float *t, size_t ld)
{
	for (int e = 0; e < n; e++)
		for (int r = 0; r < rows; r++)
			memcpy(t + (size_t)r * ld + (size_t)e * cols, y + ((size_t)e * rows + r) * cols, cols * sizeof(float));
}

void sk_batch_ungroup(int n, int rows, size_t cols, const float *t, size_t ld, const float *bias, float *y)
{
	for (int e = 0; e < n; e++)
		for (int r = 0; r < rows; r++) {
			const float *src = t + (size_t)r * ld + (size_t)e * cols;
			float *dst = y + ((size_t)e * rows + r) * cols, b = bias ? bias[r] : 0.0f;
			for (size_t p = 0; p < cols; p++)
				dst[p] = src[p] + b;
		}
}

/* Free the blocks after the first `keep`. */
static void drop_mem(sk_layer *l, int keep)
{
	while (l->nmem > keep)
		sk_free(l->mem[--l->nmem]);
}

int sk_layer_setup(sk_layer *l, int max_batch)
{
	for (int c = 0; c < l->nchild; c++)
		if (sk_seq_setup(l->child[c], max_batch) < 0)
			return -1;
	drop_mem(l, l->nmem_kept);
	if (l->ops->setup && l->ops->setup(l, max_batch) < 0)
		return sk_error_prefix("%s", l->name);
	l->max_batch = max_batch;
	return 0;
}

/* ---- sequences ---- */

static void layer_free(sk_layer *l)
{
	if (!l)
		return;
	if (l->ops && l->ops->destroy)
		l->ops->destroy(l);
	drop_mem(l, 0);
	free(l->mem);
	sk_free(l->priv);
	for (int i = 0; i < l->nchild; i++)
		sk_seq_free(l->child[i]);
	free(l->child);
	for (int i = 0; i < l->nparams; i++) {
		sk_free(l->params[i].w);
		sk_free(l->params[i].g);
	}
	free(l->params);
	free(l);
}

void sk_seq_free(sk_seq *q)
{
	if (!q)
		return;
	for (int i = 0; i < q->n; i++) {
		layer_free(q->layers[i]);
		if (q->act)
			sk_free(q->act[i]);
	}
	free(q->layers);
	free(q->act);
	sk_free(q->gbuf[0]);
	sk_free(q->gbuf[1]);
	free(q);
}

sk_seq *sk_seq_build(const sk_spec *s, sk_shape in, const char *prefix)
{
	sk_seq *q = sk_seq_declare(s, in, prefix);
	if (q && sk_seq_alloc(q, 1) < 0) {
		sk_seq_free(q);
		return NULL;
	}
	return q;
}

sk_seq *sk_seq_declare(const sk_spec *s, sk_shape in, const char *prefix)
{
	sk_seq *q = calloc(1, sizeof *q);
	sk_shape cur = in;
	if (!q) {
		sk_error("out of memory");
		return NULL;
	}
	q->in = in;
	q->layers = calloc((size_t)s->n + 1, sizeof *q->layers);
	if (!q->layers) {
		sk_error("out of memory");
		goto fail;
	}
	q->maxact = sk_shape_size(in);
	for (int i = 0; i < s->n; i++) {
		sk_specline *o = &s->lines[i];
		const sk_layer_ops *ops = sk_layer_find(o->type);
		sk_layer *l;
		const char *nm = NULL;
		if (!ops) {
			sk_error_prefix("%s:%d:%d", s->srcname, o->line, o->col);
			goto fail;
		}
		l = calloc(1, sizeof *l);
		if (!l) {
			sk_error("out of memory");
			goto fail;
		}
		q->layers[q->n++] = l;
		if (ops->priv_size && !(l->priv = sk_alloc(ops->priv_size)))
			goto fail;
		l->ops = ops;
		l->index = i + 1;
		l->in = cur;
		if (sk_opt_str(s, o, "name", NULL, &nm) < 0)
			goto fail;
		if (nm) {
			for (const char *c = nm; *c; c++)
				if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
				      *c == '_' || *c == '-')) {
					sk_spec_error(s, o, "name='%s' may hold only letters, digits, '_' and '-'", nm);
					goto fail;
				}
			snprintf(l->name, sizeof l->name, "%s%s", prefix, nm);
		} else {
			snprintf(l->name, sizeof l->name, "%s%s%d", prefix, ops->type, i + 1);
		}
		if (ops->in_dims && l->in.n != ops->in_dims) {
			sk_spec_error(s, o, "needs %s, got %d dimensions",
			              ops->in_dims == 3 ? "a C x H x W input" : "a set input T x D", l->in.n);
			goto fail;
		}
		if (ops->create(l, s, o) < 0) {
			if (strncmp(sk_errmsg(), s->srcname, strlen(s->srcname)))
				sk_error_prefix("%s:%d:%d: %s", s->srcname, o->line, o->col, o->type);
			goto fail;
		}
		l->nmem_kept = l->nmem;
		if (sk_opt_param_mults(s, o, l) < 0)   /* lr_mult, decay_mult: any layer's parameters */
			goto fail;
		for (int k = 0; k < o->nkv; k++)
			if (!o->used[k]) {
				sk_error("%s:%d:%d: %s: unknown option '%s' (synopsis: %s)", s->srcname, o->line, o->kvcol[k],
				         o->type, o->key[k], ops->synopsis);
				goto fail;
			}
		if (o->body && l->nchild == 0) {
			sk_spec_error(s, o, "this layer takes no '{' block");
			goto fail;
		}
		if (l->out.n < 1 || l->out.n > 3) {
			sk_spec_error(s, o, "empty output shape");
			goto fail;
		}
		for (int d = 0; d < l->out.n; d++)
			if (l->out.d[d] < 1) {
				sk_spec_error(s, o, "empty output shape");
				goto fail;
			}
		if (sk_shape_size(l->out) > SK_MAX_ACT) {
			char b[64];
			sk_spec_error(s, o, "output %s is too large (more than %zu values per example)",
			              sk_shape_fmt(l->out, b, sizeof b), SK_MAX_ACT);
			goto fail;
		}
		cur = l->out;
		if (sk_shape_size(cur) > q->maxact)
			q->maxact = sk_shape_size(cur);
	}
	q->out = cur;
	return q;
fail:
	sk_seq_free(q);
	return NULL;
}

int sk_seq_setup(sk_seq *q, int max_batch)
{
	size_t sz;
	if (max_batch <= q->max_batch)
		return 0;
	if (q->act)
		for (int i = 0; i < q->n; i++)
			sk_free(q->act[i]);
	free(q->act);
	sk_free(q->gbuf[0]);
	sk_free(q->gbuf[1]);
	q->gbuf[0] = q->gbuf[1] = NULL;
	q->act = calloc((size_t)q->n, sizeof *q->act);
	if (!q->act)
		return sk_error("out of memory");
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		if (sk_mul_size(sk_shape_size(l->out), (size_t)max_batch, &sz) < 0)
			return -1;
		if (!(q->act[i] = sk_alloc_array(sz, sizeof(float))) || sk_layer_setup(l, max_batch) < 0)
			return -1;
	}
	if (sk_mul_size(q->maxact, (size_t)max_batch, &sz) < 0)
		return -1;
	if (!(q->gbuf[0] = sk_alloc_array(sz, sizeof(float))) || !(q->gbuf[1] = sk_alloc_array(sz, sizeof(float))))
		return -1;
	q->max_batch = max_batch;
	return 0;
}

const float *sk_seq_forward(sk_seq *q, const sk_ctx *c, int n, const float *x)
{
	if (n > q->max_batch) {
		sk_error("batch of %d exceeds the prepared %d", n, q->max_batch);
		return NULL;
	}
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		if (l->ops->forward(l, c, n, x, q->act[i]) < 0) {
			sk_error_prefix("%s", l->name);
			return NULL;
		}
		x = q->act[i];
	}
	return x;
}

/* Whether a layer or its children hold trainable parameters. */
static int has_trainable(const sk_layer *l)
{
	for (int k = 0; k < l->nparams; k++)
		if (!(l->params[k].flags & SK_P_BUFFER))
			return 1;
	for (int k = 0; k < l->nchild; k++)
		for (int j = 0; j < l->child[k]->n; j++)
			if (has_trainable(l->child[k]->layers[j]))
				return 1;
	return 0;
}

int sk_seq_backward(sk_seq *q, const sk_ctx *c, int n, const float *x, const float *dy, float *dx)
{
	int b = 0, first = 0;
	/* without dx, the layers before the first trainable one (e.g. input)
	 * need no backward, and that one needs no input gradient */
	if (!dx)
		while (first < q->n - 1 && !has_trainable(q->layers[first]))
			first++;
	for (int i = q->n - 1; i >= first; i--) {
		sk_layer *l = q->layers[i];
		const float *xi = i ? q->act[i - 1] : x;
		float *dxi;
		if (i == first)
			dxi = i ? NULL : dx;
		else {
			dxi = q->gbuf[b];
			b ^= 1;
		}
		if (l->ops->backward(l, c, n, xi, q->act[i], dy, dxi) < 0)
			return sk_error_prefix("%s", l->name);
		dy = dxi;
	}
	return 0;
}

int sk_seq_init(sk_seq *q, uint64_t seed)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		for (int k = 0; k < l->nparams; k++)
			param_init(&l->params[k], seed);
		for (int k = 0; k < l->nchild; k++)
			if (sk_seq_init(l->child[k], seed) < 0)
				return -1;
		if (l->ops->init && l->ops->init(l, seed) < 0)
			return sk_error_prefix("%s", l->name);
	}
	return 0;
}

void sk_seq_project(sk_seq *q)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		for (int k = 0; k < l->nchild; k++)
			sk_seq_project(l->child[k]);
		if (l->ops->project)
			l->ops->project(l);
	}
}

int sk_seq_walk_params(sk_seq *q, sk_param_fn fn, void *arg)
{
	for (int i = 0; i < q->n; i++)
		if (walk_layer_params(q->layers[i], fn, arg) < 0)
			return -1;
	return 0;
}

struct plist {
	sk_param **v;
	int n, cap;
};

static int plist_add(sk_param *p, sk_layer *l, void *arg)
{
	struct plist *c = arg;
	(void)l;
	if (c->n == c->cap) {
		int cap = c->cap ? 2 * c->cap : 64;
		sk_param **v = realloc(c->v, sizeof *v * (size_t)cap);
		if (!v)
			return sk_error("out of memory");
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = p;
	return 0;
}

int sk_seq_params(sk_seq *q, sk_param ***out)
{
	struct plist c = {0};
	if (sk_seq_walk_params(q, plist_add, &c) < 0) {
		free(c.v);
		return -1;
	}
	*out = c.v;
	return c.n;
}

static int walk_layers(sk_seq *q, int depth, sk_layer_fn fn, void *arg)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		if (fn(l, depth, arg) < 0)
			return -1;
		for (int k = 0; k < l->nchild; k++)
			if (walk_layers(l->child[k], depth + 1, fn, arg) < 0)
				return -1;
	}
	return 0;
}

int sk_seq_walk_layers(sk_seq *q, sk_layer_fn fn, void *arg) { return walk_layers(q, 0, fn, arg); }

static int count_param(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	if (!(p->flags & SK_P_BUFFER))
		*(size_t *)arg += p->size;
	return 0;
}

size_t sk_seq_param_count(sk_seq *q)
{
	size_t n = 0;
	sk_seq_walk_params(q, count_param, &n);
	return n;
}

double sk_seq_flops(sk_seq *q)
{
	double f = 0;
	for (int i = 0; i < q->n; i++)
		f += q->layers[i]->flops;
	return f;
}

struct findarg {
	const char *name;
	sk_layer *found;
};

static int find_fn(sk_layer *l, int depth, void *arg)
{
	struct findarg *f = arg;
	(void)depth;
	if (!strcmp(l->name, f->name)) {
		f->found = l;
		return -1;
	}
	return 0;
}

sk_layer *sk_seq_find(sk_seq *q, const char *name)
{
	struct findarg f = {name, NULL};
	walk_layers(q, 0, find_fn, &f);
	return f.found;
}
