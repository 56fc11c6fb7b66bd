/* zoo.c: reading model zoos (through the model reader), selecting models,
 * hidden-unit permutations, and rank and regression metrics (sk_zoo.h). */
#include "sk_zoo.h"
#include "sk_model.h"
#include "sk_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sk_zoo_init(sk_zoo *z) { memset(z, 0, sizeof *z); }

void sk_zoo_model_free(sk_zoo_model *m)
{
	if (!m)
		return;
	free(m->layers);
	sk_free(m->flat);
	free(m->spec);
	sk_attrs_free(&m->attrs);
	memset(m, 0, sizeof *m);
}

void sk_zoo_free(sk_zoo *z)
{
	for (int i = 0; i < z->n; i++)
		sk_zoo_model_free(&z->m[i]);
	free(z->m);
	memset(z, 0, sizeof *z);
}

/* A parameter of a zoo model: name, shape, offset in the flat vector. */
typedef struct prec {
	char name[SK_NAME_MAX];
	int ndim;
	int64_t shape[4];
	size_t off, size;
} prec;

/* The model's parameterised layers are its affine layers (conv, linear), as
 * the layers of q say (sk_layer_affine), in walk order; each one's W and
 * bias are found among the records p by name and shape. */
typedef struct affine_walk {
	sk_zoo_model *m;
	const prec *p;
	int np;
	const char *where;
} affine_walk;

static const prec *find_record(const affine_walk *k, const sk_param *q)
{
	for (int i = 0; i < k->np; i++)
		if (!strcmp(k->p[i].name, q->name))
			return k->p[i].ndim == q->ndim && !memcmp(k->p[i].shape, q->shape, sizeof(int64_t) * (size_t)q->ndim)
			       ? &k->p[i] : NULL;
	return NULL;
}

static int affine_fn(sk_layer *l, int depth, void *arg)
{
	affine_walk *k = arg;
	const prec *w, *b = NULL;
	sk_zoo_layer *L;
	sk_affine a;
	(void)depth;
	if (!sk_layer_affine(l, &a))
		return 0;
	if (!(w = find_record(k, &l->params[a.w])))
		return sk_error("%s: no record '%s' of the shape its spec gives", k->where, l->params[a.w].name);
	if (a.b >= 0 && !(b = find_record(k, &l->params[a.b])))
		return sk_error("%s: no record '%s' of the shape its spec gives", k->where, l->params[a.b].name);
	if (k->m->nlayers >= k->np)
		return sk_error("%s: more layers than parameter records", k->where);
	L = &k->m->layers[k->m->nlayers++];
	snprintf(L->name, sizeof L->name, "%s", l->name);
	L->conv = w->ndim == 4;
	L->out = (int)w->shape[0];
	L->in = (int)w->shape[1];
	L->kh = L->conv ? (int)w->shape[2] : 1;
	L->kw = L->conv ? (int)w->shape[3] : 1;
	L->w = w->off;
	L->b = b ? b->off : SK_ZOO_NOB;
	return 0;
}

static int make_layers(sk_zoo_model *m, sk_seq *q, const prec *p, int np, const char *where)
{
	affine_walk k = {m, p, np, where};
	m->layers = calloc((size_t)np + 1, sizeof *m->layers);
	if (!m->layers)
		return sk_error("out of memory");
	if (sk_seq_walk_layers(q, affine_fn, &k) < 0)
		return -1;
	if (m->nlayers == 0)
		return sk_error("%s: model has no affine layer (such as conv or linear)", where);
	return 0;
}

/* The flat vector and layers of m from the parameters of sequence q in
 * stream order (buffers such as running statistics too, unless
 * skip_buffers): one pass sizes the vector, one copies every value once;
 * *copied (when not NULL) counts the values copied. */
static int flatten(sk_zoo_model *m, sk_seq *q, int skip_buffers, const char *where, size_t *copied)
{
	sk_param **ps = NULL;
	int np = sk_seq_params(q, &ps), k = 0, rc;
	prec *p = np < 0 ? NULL : calloc((size_t)np + 1, sizeof *p);
	size_t total = 0;
	if (!p) {
		free(ps);
		return np < 0 ? -1 : sk_error("out of memory");
	}
	for (int i = 0; i < np; i++) {
		if (skip_buffers && (ps[i]->flags & SK_P_BUFFER))
			continue;
		snprintf(p[k].name, sizeof p[k].name, "%s", ps[i]->name);
		p[k].ndim = ps[i]->ndim;
		memcpy(p[k].shape, ps[i]->shape, sizeof p[k].shape);
		p[k].off = total;
		p[k].size = ps[i]->size;
		total += ps[i]->size;
		k++;
	}
	rc = (m->flat = sk_alloc_array(total ? total : 1, sizeof(float))) ? 0 : -1;
	for (int i = 0, j = 0; rc == 0 && i < np; i++)
		if (!skip_buffers || !(ps[i]->flags & SK_P_BUFFER))
			memcpy(m->flat + p[j++].off, ps[i]->w, ps[i]->size * sizeof(float));
	if (rc == 0) {
		m->nflat = total;
		if (copied)
			*copied += total;
		rc = make_layers(m, q, p, k, where);
	}
	free(ps);
	free(p);
	return rc;
}

/* One model through the model reader (sk_model_read: the spec is built and
 * every record checked by name and shape), then flattened. */
static int read_model(sk_reader *r, sk_header *h, sk_zoo_model *m, size_t *copied)
{
	char where[256];
	sk_model *mod;
	int rc = -1;
	memset(m, 0, sizeof *m);
	sk_attrs_init(&m->attrs);
	snprintf(where, sizeof where, "%s: model record %ld", sk_reader_name(r), sk_reader_index(r));
	if (!(mod = sk_model_read(r, h)))
		return -1;
	if (flatten(m, mod->seq, 0, where, copied) == 0 && sk_attrs_copy(&m->attrs, &mod->attrs) == 0) {
		if ((m->spec = strdup(mod->spec_text)))
			rc = 0;
		else
			sk_error("out of memory");
	}
	sk_model_free(mod);
	return rc;
}

int sk_zoo_read(const char *path, sk_zoo *z)
{
	sk_reader *r = sk_reader_open(path);
	sk_header h;
	int st, n0 = z->n;
	memset(&h, 0, sizeof h);
	if (!r)
		return -1;
	while ((st = sk_reader_next(r, &h)) > 0) {
		if (strcmp(h.name, "model"))
			continue;
		if (z->n == z->cap) {
			int nc = z->cap ? 2 * z->cap : 64;
			sk_zoo_model *nm = realloc(z->m, sizeof *nm * (size_t)nc);
			if (!nm) {
				sk_error("out of memory");
				st = -1;
				break;
			}
			z->m = nm;
			z->cap = nc;
		}
		st = read_model(r, &h, &z->m[z->n], &z->copied);
		/* the model reader read the member's records into a header of its
		 * own, so the reader no longer frees this one at the next record */
		sk_header_free(&h);
		if (st < 0) {
			sk_zoo_model_free(&z->m[z->n]);
			break;
		}
		z->n++;
	}
	sk_header_free(&h);
	sk_reader_close(r);
	if (st == 0 && z->n == n0)
		return sk_error("%s: no model in the stream", path);
	return st < 0 ? -1 : 0;
}

int sk_zoo_model_copy(sk_zoo_model *dst, const sk_zoo_model *src, int with_attrs)
{
	memset(dst, 0, sizeof *dst);
	sk_attrs_init(&dst->attrs);
	dst->layers = malloc(sizeof *dst->layers * (size_t)(src->nlayers + 1));
	dst->flat = sk_alloc_array(src->nflat ? src->nflat : 1, sizeof(float));
	if (!dst->layers || !dst->flat) {
		sk_zoo_model_free(dst);
		return sk_error("out of memory");
	}
	memcpy(dst->layers, src->layers, sizeof *dst->layers * (size_t)src->nlayers);
	dst->nlayers = src->nlayers;
	memcpy(dst->flat, src->flat, src->nflat * sizeof(float));
	dst->nflat = src->nflat;
	if (with_attrs && sk_attrs_copy(&dst->attrs, &src->attrs) < 0) {
		sk_zoo_model_free(dst);
		return -1;
	}
	return 0;
}

int sk_zoo_attr(const sk_zoo *z, const int *idx, int n, const char *key, double lo, double hi, double *out)
{
	for (int k = 0; k < n; k++) {
		int i = idx ? idx[k] : k;
		const char *v = sk_attrs_get(&z->m[i].attrs, key);
		char *end;
		if (!v)
			return sk_error("model %d has no attribute '%s'", i + 1, key);
		out[k] = strtod(v, &end);
		if (end == v || *end || !(out[k] >= lo && out[k] <= hi))
			return sk_error("model %d: %s='%s' is not a number in [%g, %g]", i + 1, key, v, lo, hi);
	}
	return 0;
}

/* ---- selecting models ---- */

void sk_zoo_select_defaults(sk_zoo_select *s)
{
	memset(s, 0, sizeof *s);
	s->part = "all";
	s->test_frac = 0.5;
	s->by = "run";
}

int sk_zoo_select_part(const char *part)
{
	static const char *const parts[] = {"all", "train", "val", "test"};
	for (int i = 0; i < 4; i++)
		if (part && !strcmp(part, parts[i]))
			return i;
	return sk_error("--split is all, train, val or test, not '%s'", part ? part : "");
}

int sk_zoo_select_where(sk_zoo_select *s, const char *kv)
{
	if (s->nwhere == SK_ZOO_WHERE_MAX)
		return sk_error("at most %d --where options", SK_ZOO_WHERE_MAX);
	if (!strchr(kv, '='))
		return sk_error("--where wants KEY=VALUE, got '%s'", kv);
	s->where[s->nwhere++] = kv;
	return 0;
}

/* The side of model i: its run's two draws keyed on (seed, run name), so a
 * run is never cut and its side does not depend on the other models. */
static const char *side_of(const sk_zoo_model *m, int i, const sk_zoo_select *s)
{
	const char *run = sk_attrs_get(&m->attrs, s->by);
	char buf[32];
	if (!run) {
		snprintf(buf, sizeof buf, "%d", i);
		run = buf;
	}
	float u = sk_rng_uniform(s->seed, sk_rng_hash(run), 0);
	float v = sk_rng_uniform(s->seed, sk_rng_hash(run), 1);
	return u < s->test_frac ? "test" : v < s->val_frac ? "val" : "train";
}

static int where_holds(const sk_zoo_model *m, const sk_zoo_select *s)
{
	for (int w = 0; w < s->nwhere; w++) {
		const char *eq = strchr(s->where[w], '='), *v;
		char key[SK_NAME_MAX];
		snprintf(key, sizeof key, "%.*s", (int)(eq - s->where[w]), s->where[w]);
		v = sk_attrs_get(&m->attrs, key);
		if (!v || strcmp(v, eq + 1))
			return 0;
	}
	return 1;
}

int *sk_zoo_select_models(const sk_zoo *z, const sk_zoo_select *s, int *n)
{
	int *idx = malloc(sizeof *idx * (size_t)(z->n + 1)), k = 0;
	if (!idx) {
		sk_error("out of memory");
		return NULL;
	}
	for (int i = 0; i < z->n; i++)
		if (where_holds(&z->m[i], s) && (!strcmp(s->part, "all") || !strcmp(side_of(&z->m[i], i, s), s->part)))
			idx[k++] = i;
	if (k == 0) {
		free(idx);
		sk_error("no model left after --where/--split (of %d read)", z->n);
		return NULL;
	}
	*n = k;
	return idx;
}

int sk_zoo_read_all(sk_zoo *z, char **paths, int n)
{
	sk_zoo_init(z);
	if (n == 0)
		return sk_zoo_read("-", z);
	for (int i = 0; i < n; i++)
		if (sk_zoo_read(paths[i], z) < 0)
			return -1;
	return 0;
}

/* ---- to and from sequences ---- */

int sk_zoo_model_from_seq(sk_seq *q, sk_zoo_model *m)
{
	int rc;
	memset(m, 0, sizeof *m);
	sk_attrs_init(&m->attrs);
	if ((rc = flatten(m, q, 1, "sequence", NULL)) < 0)
		sk_zoo_model_free(m);
	return rc;
}

int sk_zoo_model_to_seq(const sk_zoo_model *m, sk_seq *q)
{
	sk_param **ps;
	int np = sk_seq_params(q, &ps);
	size_t total = 0;
	if (np < 0)
		return -1;
	for (int i = 0; i < np; i++)
		total += ps[i]->flags & SK_P_BUFFER ? 0 : ps[i]->size;
	if (total != m->nflat) {
		free(ps);
		return sk_error("model has %zu parameters, the sequence %zu", m->nflat, total);
	}
	total = 0;
	for (int i = 0; i < np; i++)
		if (!(ps[i]->flags & SK_P_BUFFER)) {
			memcpy(ps[i]->w, m->flat + total, ps[i]->size * sizeof(float));
			total += ps[i]->size;
		}
	free(ps);
	return 0;
}

/* ---- permutations of hidden units ---- */

int sk_zoo_permute(sk_zoo_model *m, uint64_t seed, uint64_t index)
{
	size_t maxw = 0;
	int maxo = 0;
	for (int l = 0; l + 1 < m->nlayers; l++) {
		const sk_zoo_layer *a = &m->layers[l], *b = &m->layers[l + 1];
		if (b->in % a->out)
			return sk_error("layer %s has %d inputs, not a multiple of the %d outputs of %s", b->name, b->in,
			                a->out, a->name);
	}
	for (int l = 0; l < m->nlayers; l++) {
		const sk_zoo_layer *a = &m->layers[l];
		size_t sz = (size_t)a->out * (size_t)a->in * (size_t)a->kh * (size_t)a->kw;
		maxw = sz > maxw ? sz : maxw;
		maxo = a->out > maxo ? a->out : maxo;
	}
	int64_t *perm = malloc(sizeof *perm * (size_t)maxo);
	float *tmp = sk_alloc_array(maxw, sizeof(float));
	if (!perm || !tmp) {
		free(perm);
		sk_free(tmp);
		return sk_error("out of memory");
	}
	for (int l = 0; l + 1 < m->nlayers; l++) {
		sk_zoo_layer *a = &m->layers[l], *b = &m->layers[l + 1];
		sk_rng r = sk_rng_make(seed, sk_rng_stream(0x5a00, index, (uint64_t)l));
		size_t ka = (size_t)a->in * a->kh * a->kw;    /* one output unit's weights in a */
		size_t kb = (size_t)b->kh * b->kw;             /* one input channel's kernel in b */
		size_t blk = (size_t)(b->in / a->out);         /* inputs of b per unit of a */
		float *wa = m->flat + a->w, *wb = m->flat + b->w;
		sk_rng_permute(&r, perm, a->out);
		/* new unit o takes old unit perm[o] */
		memcpy(tmp, wa, (size_t)a->out * ka * sizeof(float));
		for (int o = 0; o < a->out; o++)
			memcpy(wa + (size_t)o * ka, tmp + (size_t)perm[o] * ka, ka * sizeof(float));
		if (a->b != SK_ZOO_NOB) {
			float *ba = m->flat + a->b;
			memcpy(tmp, ba, (size_t)a->out * sizeof(float));
			for (int o = 0; o < a->out; o++)
				ba[o] = tmp[perm[o]];
		}
		/* b's inputs: for each output row of b, input block o takes old block perm[o] */
		memcpy(tmp, wb, (size_t)b->out * b->in * kb * sizeof(float));
		for (int ob = 0; ob < b->out; ob++) {
			float *row = wb + (size_t)ob * b->in * kb;
			const float *old = tmp + (size_t)ob * b->in * kb;
			for (int o = 0; o < a->out; o++)
				memcpy(row + (size_t)o * blk * kb, old + (size_t)perm[o] * blk * kb, blk * kb * sizeof(float));
		}
	}
	free(perm);
	sk_free(tmp);
	return 0;
}

/* ---- metrics ---- */

double sk_kendall_tau(const double *x, const double *y, size_t n)
{
	double nc = 0, nd = 0, tx = 0, ty = 0, n0;
	if (n < 2)
		return NAN;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			double dx = x[i] - x[j], dy = y[i] - y[j];
			if (dx == 0 && dy == 0) {
				tx++;
				ty++;
			} else if (dx == 0)
				tx++;
			else if (dy == 0)
				ty++;
			else if ((dx > 0) == (dy > 0))
				nc++;
			else
				nd++;
		}
	n0 = (double)n * (double)(n - 1) / 2;
	if (n0 - tx <= 0 || n0 - ty <= 0)
		return NAN;
	return (nc - nd) / sqrt((n0 - tx) * (n0 - ty));
}

static const double *rank_key;
static int rank_cmp(const void *a, const void *b)
{
	double x = rank_key[*(const size_t *)a], y = rank_key[*(const size_t *)b];
	if (x < y)
		return -1;
	if (x > y)
		return 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

int sk_ranks(const double *x, size_t n, double *r)
{
	size_t *idx = malloc(sizeof *idx * (n ? n : 1));
	if (!idx)
		return sk_error("out of memory");
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	rank_key = x;
	qsort(idx, n, sizeof *idx, rank_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && x[idx[j + 1]] == x[idx[i]])
			j++;
		for (size_t k = i; k <= j; k++)
			r[idx[k]] = (double)(i + j) / 2 + 1;
		i = j + 1;
	}
	free(idx);
	return 0;
}

double sk_pearson(const double *x, const double *y, size_t n)
{
	double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
	if (n < 2)
		return NAN;
	for (size_t i = 0; i < n; i++)
		mx += x[i], my += y[i];
	mx /= (double)n;
	my /= (double)n;
	for (size_t i = 0; i < n; i++) {
		sxy += (x[i] - mx) * (y[i] - my);
		sxx += (x[i] - mx) * (x[i] - mx);
		syy += (y[i] - my) * (y[i] - my);
	}
	if (sxx <= 0 || syy <= 0)
		return NAN;
	return sxy / sqrt(sxx * syy);
}

double sk_spearman(const double *x, const double *y, size_t n)
{
	double *rx = malloc(sizeof *rx * (n ? n : 1)), *ry = malloc(sizeof *ry * (n ? n : 1)), s = NAN;
	if (rx && ry && sk_ranks(x, n, rx) == 0 && sk_ranks(y, n, ry) == 0)
		s = sk_pearson(rx, ry, n);
	free(rx);
	free(ry);
	return s;
}

double sk_r2(const double *t, const double *p, size_t n)
{
	double m = 0, ss = 0, sr = 0;
	if (n < 2)
		return NAN;
	for (size_t i = 0; i < n; i++)
		m += t[i];
	m /= (double)n;
	for (size_t i = 0; i < n; i++) {
		ss += (t[i] - m) * (t[i] - m);
		sr += (t[i] - p[i]) * (t[i] - p[i]);
	}
	return ss > 0 ? 1 - sr / ss : NAN;
}

double sk_rmse(const double *t, const double *p, size_t n)
{
	double s = 0;
	if (n < 1)
		return NAN;
	for (size_t i = 0; i < n; i++)
		s += (t[i] - p[i]) * (t[i] - p[i]);
	return sqrt(s / (double)n);
}
