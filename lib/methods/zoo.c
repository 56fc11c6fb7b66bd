/* zoo.c: reading model zoos, hidden-unit permutations, and rank and
 * regression metrics (sk_zoo.h). */
#include "sk_zoo.h"
#include "sk_model.h"
#include "sk_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ZOO_TEXT_MAX ((size_t)1 << 20)
#define ZOO_MAX_RECORDS 100000

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

/* A parameter record seen while reading: name, shape, offset. */
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

static int read_model(sk_reader *r, sk_header *h, sk_zoo_model *m)
{
	const char *rs = sk_attrs_get(&h->attrs, "records");
	char where[256], *end;
	long long nrec;
	prec *p = NULL;
	int np = 0;
	long idx = sk_reader_index(r);
	sk_model *decl = NULL;
	memset(m, 0, sizeof *m);
	sk_attrs_init(&m->attrs);
	snprintf(where, sizeof where, "%s: model record %ld", sk_reader_name(r), idx);
	if (h->dtype != SK_U8 || h->ndim != 1 || h->rawbytes > ZOO_TEXT_MAX)
		return sk_error("%s: spec must be u8 text of at most %zu bytes", where, ZOO_TEXT_MAX);
	if (!rs)
		return sk_error("%s has no 'records' attribute", where);
	nrec = strtoll(rs, &end, 10);
	if (*end || nrec < 0 || nrec > ZOO_MAX_RECORDS)
		return sk_error("%s: bad 'records' value '%s'", where, rs);
	if (sk_attrs_copy(&m->attrs, &h->attrs) < 0)
		return -1;
	if (!(m->spec = malloc((size_t)h->rawbytes + 1)))
		return sk_error("out of memory");
	if (sk_reader_payload_into(r, h, m->spec) < 0)
		return -1;
	m->spec[h->rawbytes] = 0;
	if (!(decl = sk_model_declare(m->spec, where)))   /* its layers say which records are weights */
		return -1;
	if (!(p = calloc((size_t)nrec + 1, sizeof *p))) {
		sk_model_free(decl);
		return sk_error("out of memory");
	}
	for (long long k = 0; k < nrec; k++) {
		int st = sk_reader_next(r, h);
		size_t cnt;
		if (st <= 0) {
			if (st == 0)
				sk_error("%s: stream ends after %lld of its %lld records", where, k, nrec);
			goto fail;
		}
		if (!strncmp(h->name, "opt.", 4) || !strncmp(h->name, "state.", 6) || h->dtype != SK_F32 ||
		    h->ndim < 1 || h->ndim > 4)
			continue;   /* the reader skips the payload */
		if (sk_shape_check(SK_F32, h->ndim, h->shape, &cnt, NULL) < 0)
			goto fail;
		snprintf(p[np].name, sizeof p[np].name, "%s", h->name);
		p[np].ndim = h->ndim;
		memcpy(p[np].shape, h->shape, sizeof(int64_t) * (size_t)h->ndim);
		p[np].off = m->nflat;
		p[np].size = cnt;
		{
			float *nf;
			if (m->nflat + cnt > ((size_t)1 << 30)) {
				sk_error("%s: more than 2^30 parameters", where);
				goto fail;
			}
			nf = sk_alloc_array(m->nflat + cnt, sizeof(float));
			if (!nf)
				goto fail;
			if (m->nflat)
				memcpy(nf, m->flat, m->nflat * sizeof(float));
			sk_free(m->flat);
			m->flat = nf;
		}
		if (sk_reader_payload_into(r, h, m->flat + m->nflat) < 0)
			goto fail;
		m->nflat += cnt;
		np++;
	}
	if (make_layers(m, decl->seq, p, np, where) < 0)
		goto fail;
	sk_model_free(decl);
	free(p);
	return 0;
fail:
	sk_model_free(decl);
	free(p);
	return -1;
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
		if (read_model(r, &h, &z->m[z->n]) < 0) {
			sk_zoo_model_free(&z->m[z->n]);
			st = -1;
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

int sk_zoo_attr(const sk_zoo *z, const char *key, double *out)
{
	for (int i = 0; i < z->n; i++) {
		const char *v = sk_attrs_get(&z->m[i].attrs, key);
		char *end;
		if (!v)
			return sk_error("model %d has no attribute '%s'", i + 1, key);
		out[i] = strtod(v, &end);
		if (end == v || *end || !isfinite(out[i]))
			return sk_error("model %d: attribute %s='%s' is not a finite number", i + 1, key, v);
	}
	return 0;
}

/* ---- to and from sequences ---- */

struct pcollect {
	prec *p;
	int np, cap;
	size_t total;
	float *flat;    /* when set: copy values in (from_seq) */
	const float *src;  /* when set: copy values out (to_seq) */
};

static int collect_fn(sk_param *p, sk_layer *l, void *arg)
{
	struct pcollect *c = arg;
	(void)l;
	if (p->flags & 1)   /* SK_P_BUFFER: running statistics are not parameters */
		return 0;
	if (c->p) {
		if (c->np == c->cap)
			return sk_error("parameter count changed");
		snprintf(c->p[c->np].name, SK_NAME_MAX, "%s", p->name);
		c->p[c->np].ndim = p->ndim;
		memcpy(c->p[c->np].shape, p->shape, sizeof p->shape);
		c->p[c->np].off = c->total;
		c->p[c->np].size = p->size;
	}
	if (c->flat)
		memcpy(c->flat + c->total, p->w, p->size * sizeof(float));
	if (c->src)
		memcpy(p->w, c->src + c->total, p->size * sizeof(float));
	c->np++;
	c->total += p->size;
	return 0;
}

int sk_zoo_model_from_seq(sk_seq *q, sk_zoo_model *m)
{
	struct pcollect c = {0};
	memset(m, 0, sizeof *m);
	sk_attrs_init(&m->attrs);
	if (sk_seq_walk_params(q, collect_fn, &c) < 0)
		return -1;
	c.cap = c.np;
	c.p = calloc((size_t)c.cap + 1, sizeof *c.p);
	m->flat = sk_alloc_array(c.total ? c.total : 1, sizeof(float));
	if (!c.p || !m->flat) {
		free(c.p);
		sk_zoo_model_free(m);
		return sk_error("out of memory");
	}
	c.np = 0;
	c.total = 0;
	c.flat = m->flat;
	if (sk_seq_walk_params(q, collect_fn, &c) < 0 || make_layers(m, q, c.p, c.np, "sequence") < 0) {
		free(c.p);
		sk_zoo_model_free(m);
		return -1;
	}
	m->nflat = c.total;
	free(c.p);
	return 0;
}

int sk_zoo_model_to_seq(const sk_zoo_model *m, sk_seq *q)
{
	struct pcollect c = {0};
	if (sk_seq_walk_params(q, collect_fn, &c) < 0)
		return -1;
	if (c.total != m->nflat)
		return sk_error("model has %zu parameters, the sequence %zu", m->nflat, c.total);
	c.np = 0;
	c.total = 0;
	c.src = m->flat;
	return sk_seq_walk_params(q, collect_fn, &c);
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
