/* sne.c: encoders of trained networks (sk_sne.h): SNE (set-based neural
 * network encoding) and the StatNN, flat-MLP and hyperparameter baselines,
 * their training with the logit-invariance penalty and the choice of the
 * epoch on validation runs, and their (de)serialisation.
 *
 * SNE in one batch of B models:
 *   1. pad-chunk: every parameterised layer is an out x (in * S + 1) grid
 *      of elements of P values (a kernel W[o, i] of k values flattened and
 *      cut into S = ceil(k / P) elements, the last zero-padded; the bias
 *      b[o] in the last column), read row-major and cut into chunks of C
 *      elements; the last chunk of a layer is padded with pad elements.  A
 *      token is [values (P), is-weight, is-bias, is-pad, PE(position in the
 *      chunk) (4)].  Any layer of any kernel size is read (P is kmax below).
 *   2. chunk level: all chunks of the batch through SAB -> PMA_1 (one call).
 *   3. layer level: a layer's chunk vectors + PE(chunk index) (8) through
 *      SAB -> PMA_1; layers are grouped by their number of chunks, one
 *      sequence per group, all sharing the parameters of one master.
 *   4. model level: the layer vectors + PE(depth) (8) + [conv, dense]
 *      through SAB -> PMA_1, grouped by the number of layers: the code z.
 *   5. head: linear d -> relu -> linear 1: the logit s.
 */
#include "sk_sne.h"
#include "sk_optim.h"
#include "sk_rng.h"
#include "sk_zoo.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PE_E 4
#define PE_C 8
#define PE_L 8
#define NSTAT 7
#define MAX_GROUPS 64
#define CONFIG_MAX 4096

/* The hyperparameters the hparams encoder reads, as zoo runs record them,
 * and how each becomes features: a logarithm, the value, log(1 + value), or
 * one-hot over the values seen in the zoo it is sized on. */
enum { HP_LOG, HP_LIN, HP_LOG1P, HP_CAT };
static const char *const hp_tr_names[] = {"log", "lin", "log1p", "cat"};
static const struct {
	const char *key;
	int tr;
} hp_known[] = {
	{"learning_rate", HP_LOG}, {"l2reg", HP_LOG},          {"init_std", HP_LOG},
	{"init_scale", HP_LOG},    {"dropout", HP_LIN},        {"train_fraction", HP_LIN},
	{"epoch", HP_LOG1P},       {"activation", HP_CAT},     {"w_init", HP_CAT},
	{"optimizer", HP_CAT},
};
#define HP_MAX 16
#define HP_VALS 32
#define HP_LEN 32

typedef struct hp_feat {
	char key[HP_LEN];
	int tr, nv;
	char v[HP_VALS][HP_LEN];   /* HP_CAT: the values, sorted */
} hp_feat;

typedef struct group {
	int key;          /* chunks per layer, or layers per model */
	sk_seq *q;
	int nparam;
	sk_param **p;     /* q's parameters, in the master's order */
	float *x, *dx, *dy;
	size_t capx, capdx, capdy;
	int count, cap;
	int *ref;         /* batch layer (or model) indices */
} group;

struct sk_encoder {
	sk_enc_config c;
	int kmax, F;                 /* sne: values per element, token features */
	float wscale;                /* sne: values are multiplied by this (1 / rms over the training zoo) */
	int nstat, nflat, nfeat;     /* statnn layers, mlp length, head input */
	hp_feat hp[HP_MAX];          /* hparams: the features' sources */
	int nhp;
	float *mu, *sd;              /* feature normalisation (statnn, mlp) */
	sk_seq *chunk, *lmaster, *mmaster, *head;
	int np;
	sk_param **params;           /* every trainable parameter, masters only */
	int nlpar, nmpar;
	sk_param **lpar, **mpar;     /* master parameters of the layer and model levels */
	group lg[MAX_GROUPS], mg[MAX_GROUPS];
	int nlg, nmg;
	/* batch state */
	int B, NL, N;
	int *lmodel, *llayer, *lchunks, *lchunk0, *mlayer0;
	int cap1, cap2, cap3, cap4, capmod;
	float *xc, *dyc, *vl, *dvl, *z, *dz, *feat, *s, *ds, *sortbuf;
	size_t capxc, capdyc, capvl, capdvl, capz, capdz, capfeat, caps, capds, capsort;
	sk_ctx ctx;
};

void sk_enc_defaults(sk_enc_config *c, sk_enc_kind kind)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->d = 32;
	c->chunk = 16;
	c->heads = 4;
	c->ln = 1;
	c->hidden = kind == SK_ENC_STATNN ? 1000 : kind == SK_ENC_SNE ? 32 : 256;
}

static const char *const kind_names[] = {"sne", "statnn", "mlp", "hparams"};

const char *sk_enc_name(sk_enc_kind k) { return (unsigned)k < 4 ? kind_names[k] : "?"; }

int sk_enc_parse(const char *s, sk_enc_kind *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, kind_names[i])) {
			*out = (sk_enc_kind)i;
			return 0;
		}
	return sk_error("unknown encoder '%s' (known: sne statnn mlp hparams)", s);
}

int sk_enc_parse_ablate(const char *s, int *bits)
{
	static const char *const parts[] = {"pe-element", "pe-chunk", "pe-layer", "layer-type"};
	*bits = 0;
	if (!strcmp(s, "none"))
		return 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		int k = 0;
		while (k < 4 && (strlen(parts[k]) != len || strncmp(s, parts[k], len)))
			k++;
		if (k == 4)
			return sk_error("unknown part '%.*s' (known: pe-element pe-chunk pe-layer layer-type, or none)", (int)len,
			                s);
		*bits |= 1 << k;
		s += len + (s[len] == ',');
	}
	return 0;
}

void sk_enc_train_defaults(sk_enc_train *t)
{
	memset(t, 0, sizeof *t);
	t->epochs = 30;
	t->batch = 16;
	t->lr = 1e-3f;
}

const sk_enc_config *sk_encoder_config(const sk_encoder *e) { return &e->c; }

int sk_encoder_code_size(const sk_encoder *e) { return e->c.kind == SK_ENC_SNE ? e->c.d : e->c.hidden; }

/* ---- buffers (grown, never shrunk: no allocation once the sizes are seen) ---- */

static int grow(float **p, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	sk_free(*p);
	*p = sk_alloc_array(n + n / 4 + 16, sizeof(float));
	if (!*p) {
		*cap = 0;
		return -1;
	}
	*cap = n + n / 4 + 16;
	return 0;
}

static int growi(int **p, int *cap, int n)
{
	int *q;
	if (n <= *cap)
		return 0;
	q = realloc(*p, sizeof *q * (size_t)(n + n / 4 + 16));
	if (!q)
		return sk_error("out of memory");
	*p = q;
	*cap = n + n / 4 + 16;
	return 0;
}

/* The trained parameters of q (none when q is NULL), buffers left out. */
static int params_of(sk_seq *q, sk_param ***out, int *n)
{
	int np, k = 0;
	*out = NULL;
	*n = 0;
	if (!q)
		return 0;
	if ((np = sk_seq_params(q, out)) < 0)
		return -1;
	for (int i = 0; i < np; i++)
		if (!((*out)[i]->flags & SK_P_BUFFER))
			(*out)[k++] = (*out)[i];
	*n = k;
	return 0;
}

static sk_seq *build(const char *text, sk_shape in, const char *prefix)
{
	sk_spec *s = sk_spec_parse(text, "<encoder>");
	sk_seq *q;
	if (!s)
		return NULL;
	q = sk_seq_build(s, in, prefix);
	sk_spec_free(s);
	return q;
}

static void set_spec(const sk_encoder *e, char *buf, size_t len)
{
	snprintf(buf, len, "sab %d heads=%d ln=%d\npma k=1 heads=%d ln=%d\n", e->c.d, e->c.heads, e->c.ln, e->c.heads,
	         e->c.ln);
}

/* Build every sequence once the sizes are known. */
static int enc_build(sk_encoder *e)
{
	char spec[256];
	if (e->c.kind == SK_ENC_SNE) {
		if (e->c.d < 1 || e->c.heads < 1 || e->c.d % e->c.heads)
			return sk_error("encoder width %d is not a multiple of %d heads", e->c.d, e->c.heads);
		if (e->c.chunk < 1 || e->c.chunk > 4096)
			return sk_error("chunk size %d out of range 1..4096", e->c.chunk);
		if (e->kmax < 1 || e->kmax > 4096)
			return sk_error("%d values per element out of range 1..4096", e->kmax);
		e->F = e->kmax + 3 + PE_E;
		set_spec(e, spec, sizeof spec);
		if (!(e->chunk = build(spec, sk_shape2(e->c.chunk, e->F), "chunk.")) ||
		    !(e->lmaster = build(spec, sk_shape2(1, e->c.d + PE_C), "layer.")) ||
		    !(e->mmaster = build(spec, sk_shape2(1, e->c.d + PE_L + 2), "model.")))
			return -1;
		snprintf(spec, sizeof spec, "linear %d\nrelu\nlinear 1\n", e->c.d);
		if (!(e->head = build(spec, sk_shape1(e->c.d), "head.")))
			return -1;
	} else {
		if (e->c.hidden < 1)
			return sk_error("hidden width %d must be positive", e->c.hidden);
		snprintf(spec, sizeof spec, "linear %d\nrelu\nlinear %d\nrelu\nlinear 1\n", e->c.hidden, e->c.hidden);
		if (!(e->head = build(spec, sk_shape1(e->nfeat), "head.")))
			return -1;
	}
	sk_param **a = NULL, **b = NULL, **c = NULL, **d = NULL;
	int na = 0, nb = 0, nc = 0, nd = 0;
	if (params_of(e->chunk, &a, &na) < 0 || params_of(e->lmaster, &b, &nb) < 0 ||
	    params_of(e->mmaster, &c, &nc) < 0 || params_of(e->head, &d, &nd) < 0) {
		free(a), free(b), free(c), free(d);
		return -1;
	}
	e->np = na + nb + nc + nd;
	e->params = malloc(sizeof *e->params * (size_t)(e->np + 1));
	if (!e->params) {
		free(a), free(b), free(c), free(d);
		return sk_error("out of memory");
	}
	if (na)   /* the baselines have no set levels: a, b, c are empty */
		memcpy(e->params, a, sizeof *a * (size_t)na);
	if (nb)
		memcpy(e->params + na, b, sizeof *b * (size_t)nb);
	if (nc)
		memcpy(e->params + na + nb, c, sizeof *c * (size_t)nc);
	memcpy(e->params + na + nb + nc, d, sizeof *d * (size_t)nd);
	e->lpar = b, e->nlpar = nb;
	e->mpar = c, e->nmpar = nc;
	free(a);
	free(d);
	return 0;
}

size_t sk_encoder_param_count(const sk_encoder *e)
{
	size_t n = 0;
	for (int i = 0; i < e->np; i++)
		n += e->params[i]->size;
	return n;
}

static void group_free(group *g)
{
	sk_seq_free(g->q);
	free(g->p);
	sk_free(g->x);
	sk_free(g->dx);
	sk_free(g->dy);
	free(g->ref);
	memset(g, 0, sizeof *g);
}

void sk_encoder_free(sk_encoder *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nlg; i++)
		group_free(&e->lg[i]);
	for (int i = 0; i < e->nmg; i++)
		group_free(&e->mg[i]);
	sk_seq_free(e->chunk);
	sk_seq_free(e->lmaster);
	sk_seq_free(e->mmaster);
	sk_seq_free(e->head);
	free(e->params);
	free(e->lpar);
	free(e->mpar);
	free(e->lmodel), free(e->llayer), free(e->lchunks), free(e->lchunk0), free(e->mlayer0);
	float *bufs[] = {e->mu, e->sd, e->xc, e->dyc, e->vl, e->dvl, e->z, e->dz, e->feat, e->s, e->ds, e->sortbuf};
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		sk_free(bufs[i]);
	free(e);
}

/* ---- features of the baselines ---- */

static int cmpf(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static void stats7(const float *v, size_t n, float *sorted, float *out)
{
	double m = 0, var = 0;
	if (n == 0) {
		memset(out, 0, NSTAT * sizeof(float));
		return;
	}
	for (size_t i = 0; i < n; i++)
		m += v[i];
	m /= (double)n;
	for (size_t i = 0; i < n; i++)
		var += (v[i] - m) * (v[i] - m);
	var = n > 1 ? var / (double)(n - 1) : 0;
	memcpy(sorted, v, n * sizeof(float));
	qsort(sorted, n, sizeof(float), cmpf);
	out[0] = (float)m;
	out[1] = (float)var;
	for (int q = 0; q < 5; q++) {
		double pos = q * 0.25 * (double)(n - 1);
		size_t lo = (size_t)pos;
		double fr = pos - (double)lo;
		out[2 + q] = (float)(lo + 1 < n ? sorted[lo] * (1 - fr) + sorted[lo + 1] * fr : sorted[lo]);
	}
}

/* ---- the hyperparameters of a model (hparams) ---- */

/* "run R epoch E" of a model, for messages. */
static const char *model_name(const sk_zoo_model *m, char *buf, size_t len)
{
	const char *r = sk_attrs_get(&m->attrs, "run"), *ep = sk_attrs_get(&m->attrs, "epoch");
	snprintf(buf, len, "run %.64s epoch %.16s", r ? r : "?", ep ? ep : "?");
	return buf;
}

/* The feature of numeric hyperparameter h of model m into *x. */
static int hp_number(const hp_feat *h, const sk_zoo_model *m, double *x)
{
	const char *v = sk_attrs_get(&m->attrs, h->key);
	char *end, name[128];
	double a;
	if (!v)
		return sk_error("hparams: model (%s) lacks attribute '%s'", model_name(m, name, sizeof name), h->key);
	a = strtod(v, &end);
	if (end == v || *end || !isfinite(a) || (h->tr != HP_LIN && a < 0))
		return sk_error("hparams: attribute %s='%.40s' of model (%s) is not a %snumber", h->key, v,
		                model_name(m, name, sizeof name), h->tr != HP_LIN ? "non-negative " : "");
	*x = h->tr == HP_LOG ? log(fmax(a, 1e-12)) : h->tr == HP_LOG1P ? log1p(a) : a;
	return 0;
}

/* Add value v to the categories of h (kept when present). */
static int hp_intern(hp_feat *h, const char *v)
{
	for (int j = 0; j < h->nv; j++)
		if (!strcmp(h->v[j], v))
			return 0;
	if (!*v || strlen(v) >= HP_LEN || strpbrk(v, " ,\n\t"))
		return sk_error("hparams: attribute %s='%.40s' is not a category (empty, %d characters or more, or with a "
		                "space or comma)", h->key, v, HP_LEN);
	if (h->nv == HP_VALS)
		return sk_error("hparams: attribute %s takes more than %d values", h->key, HP_VALS);
	snprintf(h->v[h->nv++], HP_LEN, "%s", v);
	return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static int hp_nfeat(const sk_encoder *e)
{
	int n = 0;
	for (int k = 0; k < e->nhp; k++)
		n += e->hp[k].tr == HP_CAT ? e->hp[k].nv : 1;
	return n;
}

/* Which known hyperparameters the models idx[0..n) record (each either by
 * all of them or by none), and the values of the categorical ones. */
static int hp_size(sk_encoder *e, const sk_zoo *z, const int *idx, int n)
{
	e->nhp = 0;
	for (size_t k = 0; k < sizeof hp_known / sizeof hp_known[0]; k++) {
		hp_feat *h = &e->hp[e->nhp];
		int have = 0;
		double x;
		memset(h, 0, sizeof *h);
		snprintf(h->key, sizeof h->key, "%s", hp_known[k].key);
		h->tr = hp_known[k].tr;
		for (int j = 0; j < n; j++) {
			const sk_zoo_model *m = &z->m[idx[j]];
			const char *v = sk_attrs_get(&m->attrs, h->key);
			if (!v)
				continue;
			have++;
			if (h->tr == HP_CAT ? hp_intern(h, v) < 0 : hp_number(h, m, &x) < 0)
				return -1;
		}
		if (!have)
			continue;
		if (have < n)
			return sk_error("hparams: %d of the %d models lack attribute '%s'", n - have, n, h->key);
		if (h->tr == HP_CAT)
			qsort(h->v, (size_t)h->nv, sizeof h->v[0], cmp_str);
		e->nhp++;
	}
	if (!e->nhp)
		return sk_error("hparams: the models record none of the hyperparameters (learning_rate, l2reg, init_std, "
		                "init_scale, dropout, train_fraction, epoch, activation, w_init, optimizer)");
	return 0;
}

/* Raw (unnormalised) features of one model into f[nfeat]. */
static int raw_features(sk_encoder *e, const sk_zoo_model *m, float *f)
{
	if (e->c.kind == SK_ENC_HPARAMS) {
		int o = 0;
		for (int k = 0; k < e->nhp; k++) {
			const hp_feat *h = &e->hp[k];
			if (h->tr == HP_CAT) {   /* a value the zoo did not have: all zero */
				const char *v = sk_attrs_get(&m->attrs, h->key);
				char name[128];
				if (!v)
					return sk_error("hparams: model (%s) lacks attribute '%s'", model_name(m, name, sizeof name),
					                h->key);
				for (int j = 0; j < h->nv; j++)
					f[o + j] = strcmp(v, h->v[j]) ? 0.0f : 1.0f;
				o += h->nv;
			} else {
				double x;
				if (hp_number(h, m, &x) < 0)
					return -1;
				f[o++] = (float)x;
			}
		}
	} else if (e->c.kind == SK_ENC_STATNN) {
		for (int l = 0; l < e->nstat; l++) {
			float *o = f + (size_t)l * 2 * NSTAT;
			if (l >= m->nlayers) {
				memset(o, 0, 2 * NSTAT * sizeof(float));
				continue;
			}
			const sk_zoo_layer *L = &m->layers[l];
			size_t nw = (size_t)L->out * L->in * L->kh * L->kw;
			if (grow(&e->sortbuf, &e->capsort, nw) < 0)
				return -1;
			stats7(m->flat + L->w, nw, e->sortbuf, o);
			if (L->b != SK_ZOO_NOB)
				stats7(m->flat + L->b, (size_t)L->out, e->sortbuf, o + NSTAT);
			else
				memset(o + NSTAT, 0, NSTAT * sizeof(float));
		}
	} else {
		size_t n = m->nflat < (size_t)e->nflat ? m->nflat : (size_t)e->nflat;
		memcpy(f, m->flat, n * sizeof(float));
		memset(f + n, 0, ((size_t)e->nflat - n) * sizeof(float));
	}
	return 0;
}

/* ---- SNE tokens ---- */

/* Sinusoidal encoding of position pos in dim values; zeros when off. */
static void pe(float *out, int dim, double pos, int off)
{
	for (int i = 0; i < dim / 2; i++) {
		double w = 1.0 / pow(100.0, 2.0 * i / dim);
		out[2 * i] = off ? 0.0f : (float)sin(pos * w);
		out[2 * i + 1] = off ? 0.0f : (float)cos(pos * w);
	}
}

/* Elements per kernel of L: its k values in pieces of kmax. */
static size_t pieces(const sk_encoder *e, const sk_zoo_layer *L)
{
	size_t k = (size_t)L->kh * (size_t)L->kw;
	return (k + (size_t)e->kmax - 1) / (size_t)e->kmax;
}

/* Chunk c of layer L: the elements c * C .. c * C + C - 1 of the out x
 * (in * S + 1) grid, past its end pad elements. */
static void fill_chunk(const sk_encoder *e, const sk_zoo_model *m, const sk_zoo_layer *L, int c, float *x)
{
	int C = e->c.chunk, F = e->F, P = e->kmax;
	size_t k = (size_t)L->kh * (size_t)L->kw, S = pieces(e, L), wcols = (size_t)L->in * S, cols = wcols + 1;
	size_t E = (size_t)L->out * cols;
	memset(x, 0, sizeof(float) * (size_t)C * F);
	for (int t = 0; t < C; t++) {
		size_t el = (size_t)c * C + (size_t)t;
		float *tok = x + (size_t)t * F;
		if (el >= E)
			tok[P + 2] = 1;
		else {
			size_t o = el / cols, j = el % cols;
			if (j < wcols) {
				size_t i = j / S, first = (j % S) * (size_t)P, nv = k - first < (size_t)P ? k - first : (size_t)P;
				const float *w = m->flat + L->w + (o * L->in + i) * k + first;
				for (size_t v = 0; v < nv; v++)
					tok[v] = w[v] * e->wscale;
				tok[P] = 1;
			} else {
				tok[0] = L->b != SK_ZOO_NOB ? m->flat[L->b + o] * e->wscale : 0;
				tok[P + 1] = 1;
			}
		}
		pe(tok + P + 3, PE_E, (double)t, e->c.ablate & SK_SNE_NO_PE_ELEMENT);
	}
}

static int nchunks(const sk_encoder *e, const sk_zoo_layer *L)
{
	size_t E = (size_t)L->out * ((size_t)L->in * pieces(e, L) + 1);
	return (int)((E + (size_t)e->c.chunk - 1) / (size_t)e->c.chunk);
}

static group *find_group(sk_encoder *e, group *gs, int *ng, int key, int width, const char *prefix, int nmaster)
{
	char spec[256];
	for (int i = 0; i < *ng; i++)
		if (gs[i].key == key)
			return &gs[i];
	if (*ng == MAX_GROUPS) {
		sk_error("more than %d distinct %s sizes in one batch", MAX_GROUPS, prefix);
		return NULL;
	}
	group *g = &gs[*ng];
	memset(g, 0, sizeof *g);
	set_spec(e, spec, sizeof spec);
	if (!(g->q = build(spec, sk_shape2(key, width), prefix)) || params_of(g->q, &g->p, &g->nparam) < 0) {
		group_free(g);
		return NULL;
	}
	if (g->nparam != nmaster) {
		group_free(g);
		sk_error("internal: group of %d parameters, master %d", g->nparam, nmaster);
		return NULL;
	}
	g->key = key;
	(*ng)++;
	return g;
}

static int group_add(group *g, int ref)
{
	if (growi(&g->ref, &g->cap, g->count + 1) < 0)
		return -1;
	g->ref[g->count++] = ref;
	return 0;
}

static const float *group_forward(sk_encoder *e, group *g, sk_param **master)
{
	for (int i = 0; i < g->nparam; i++)
		memcpy(g->p[i]->w, master[i]->w, master[i]->size * sizeof(float));
	if (sk_seq_setup(g->q, g->count) < 0)
		return NULL;
	return sk_seq_forward(g->q, &e->ctx, g->count, g->x);
}

static int group_backward(sk_encoder *e, group *g, sk_param **master)
{
	for (int i = 0; i < g->nparam; i++)
		memset(g->p[i]->g, 0, g->p[i]->size * sizeof(float));
	if (sk_seq_backward(g->q, &e->ctx, g->count, g->x, g->dy, g->dx) < 0)
		return -1;
	for (int i = 0; i < g->nparam; i++)
		for (size_t k = 0; k < master[i]->size; k++)
			master[i]->g[k] += g->p[i]->g[k];
	return 0;
}

/* Forward a batch of models: logits into e->s, codes into e->z (sne) or the
 * head's hidden activations (baselines). */
static int enc_forward(sk_encoder *e, const sk_zoo_model *const *ms, int B)
{
	int D = e->c.d;
	e->B = B;
	if (grow(&e->s, &e->caps, (size_t)B) < 0)
		return -1;
	if (e->c.kind != SK_ENC_SNE) {
		if (grow(&e->feat, &e->capfeat, (size_t)B * e->nfeat) < 0)
			return -1;
		for (int b = 0; b < B; b++) {
			float *f = e->feat + (size_t)b * e->nfeat;
			if (raw_features(e, ms[b], f) < 0)
				return -1;
			for (int i = 0; i < e->nfeat; i++)
				f[i] = (f[i] - e->mu[i]) / e->sd[i];
		}
		if (sk_seq_setup(e->head, B) < 0)
			return -1;
		const float *y = sk_seq_forward(e->head, &e->ctx, B, e->feat);
		if (!y)
			return -1;
		memcpy(e->s, y, (size_t)B * sizeof(float));
		return 0;
	}
	/* 1. the layers of the batch and their chunks */
	int NL = 0, N = 0;
	for (int b = 0; b < B; b++)
		NL += ms[b]->nlayers;
	if (growi(&e->lmodel, &e->cap1, NL) < 0 || growi(&e->llayer, &e->cap2, NL) < 0 ||
	    growi(&e->lchunks, &e->cap3, NL) < 0 || growi(&e->lchunk0, &e->cap4, NL) < 0 ||
	    growi(&e->mlayer0, &e->capmod, B) < 0)
		return -1;
	for (int b = 0, i = 0; b < B; b++) {
		e->mlayer0[b] = i;
		for (int j = 0; j < ms[b]->nlayers; j++, i++) {
			const sk_zoo_layer *L = &ms[b]->layers[j];
			size_t E = (size_t)L->out * ((size_t)L->in * pieces(e, L) + 1);
			if (E / (size_t)e->c.chunk >= (1u << 28))
				return sk_error("layer %s has too many elements (%zu)", L->name, E);
			e->lmodel[i] = b;
			e->llayer[i] = j;
			e->lchunks[i] = nchunks(e, L);
			e->lchunk0[i] = N;
			if (N > (1 << 28) - e->lchunks[i])
				return sk_error("too many chunks in one batch");
			N += e->lchunks[i];
		}
	}
	e->NL = NL;
	e->N = N;
	size_t tok = (size_t)e->c.chunk * (size_t)e->F;
	if (grow(&e->xc, &e->capxc, (size_t)N * tok) < 0)
		return -1;
	for (int i = 0; i < NL; i++) {
		const sk_zoo_model *m = ms[e->lmodel[i]];
		for (int c = 0; c < e->lchunks[i]; c++)
			fill_chunk(e, m, &m->layers[e->llayer[i]], c, e->xc + (size_t)(e->lchunk0[i] + c) * tok);
	}
	/* 2. chunk level */
	if (sk_seq_setup(e->chunk, N) < 0)
		return -1;
	const float *yc = sk_seq_forward(e->chunk, &e->ctx, N, e->xc);
	if (!yc)
		return -1;
	/* 3. layer level */
	size_t lw = (size_t)D + PE_C, mw = (size_t)D + PE_L + 2;
	if (grow(&e->vl, &e->capvl, (size_t)NL * D) < 0)
		return -1;
	for (int i = 0; i < e->nlg; i++)
		e->lg[i].count = 0;
	for (int i = 0; i < NL; i++) {
		group *g = find_group(e, e->lg, &e->nlg, e->lchunks[i], (int)lw, "layer.", e->nlpar);
		if (!g || group_add(g, i) < 0)
			return -1;
	}
	for (int gi = 0; gi < e->nlg; gi++) {
		group *g = &e->lg[gi];
		if (!g->count)
			continue;
		if (grow(&g->x, &g->capx, (size_t)g->count * g->key * lw) < 0)
			return -1;
		for (int r = 0; r < g->count; r++) {
			int i = g->ref[r];
			for (int c = 0; c < g->key; c++) {
				float *row = g->x + ((size_t)r * g->key + c) * lw;
				memcpy(row, yc + (size_t)(e->lchunk0[i] + c) * D, (size_t)D * sizeof(float));
				pe(row + D, PE_C, (double)c, e->c.ablate & SK_SNE_NO_PE_CHUNK);
			}
		}
		const float *y = group_forward(e, g, e->lpar);
		if (!y)
			return -1;
		for (int r = 0; r < g->count; r++)
			memcpy(e->vl + (size_t)g->ref[r] * D, y + (size_t)r * D, (size_t)D * sizeof(float));
	}
	/* 4. model level */
	if (grow(&e->z, &e->capz, (size_t)B * D) < 0)
		return -1;
	for (int i = 0; i < e->nmg; i++)
		e->mg[i].count = 0;
	for (int b = 0; b < B; b++) {
		group *g = find_group(e, e->mg, &e->nmg, ms[b]->nlayers, (int)mw, "model.", e->nmpar);
		if (!g || group_add(g, b) < 0)
			return -1;
	}
	for (int gi = 0; gi < e->nmg; gi++) {
		group *g = &e->mg[gi];
		if (!g->count)
			continue;
		if (grow(&g->x, &g->capx, (size_t)g->count * g->key * mw) < 0)
			return -1;
		for (int r = 0; r < g->count; r++) {
			int b = g->ref[r];
			for (int j = 0; j < g->key; j++) {
				float *row = g->x + ((size_t)r * g->key + j) * mw;
				memcpy(row, e->vl + (size_t)(e->mlayer0[b] + j) * D, (size_t)D * sizeof(float));
				int conv = ms[b]->layers[j].conv, off = e->c.ablate & SK_SNE_NO_LAYER_TYPE;
				pe(row + D, PE_L, (double)j, e->c.ablate & SK_SNE_NO_PE_LAYER);
				row[D + PE_L] = !off && conv ? 1.0f : 0.0f;
				row[D + PE_L + 1] = !off && !conv ? 1.0f : 0.0f;
			}
		}
		const float *y = group_forward(e, g, e->mpar);
		if (!y)
			return -1;
		for (int r = 0; r < g->count; r++)
			memcpy(e->z + (size_t)g->ref[r] * D, y + (size_t)r * D, (size_t)D * sizeof(float));
	}
	/* 5. head */
	if (sk_seq_setup(e->head, B) < 0)
		return -1;
	const float *s = sk_seq_forward(e->head, &e->ctx, B, e->z);
	if (!s)
		return -1;
	memcpy(e->s, s, (size_t)B * sizeof(float));
	return 0;
}

/* Backward from ds (B values), after enc_forward of the same batch;
 * accumulates into the masters' gradients. */
/* Backward through the groups gs[0..ng) of one set level: each group's
 * output gradient is gathered from the rows ref[] of dout, and the gradient
 * of its key inputs (w wide, the first D columns kept) scattered to the rows
 * first[ref] + j of din. */
static int groups_backward(sk_encoder *e, group *gs, int ng, sk_param **master, const float *dout, float *din,
                           const int *first, size_t w)
{
	int D = e->c.d;
	for (int gi = 0; gi < ng; gi++) {
		group *g = &gs[gi];
		if (!g->count)
			continue;
		if (grow(&g->dy, &g->capdy, (size_t)g->count * D) < 0 ||
		    grow(&g->dx, &g->capdx, (size_t)g->count * g->key * w) < 0)
			return -1;
		for (int r = 0; r < g->count; r++)
			memcpy(g->dy + (size_t)r * D, dout + (size_t)g->ref[r] * D, (size_t)D * sizeof(float));
		if (group_backward(e, g, master) < 0)
			return -1;
		for (int r = 0; r < g->count; r++)
			for (int j = 0; j < g->key; j++)
				memcpy(din + (size_t)(first[g->ref[r]] + j) * D, g->dx + ((size_t)r * g->key + j) * w,
				       (size_t)D * sizeof(float));
	}
	return 0;
}

static int enc_backward(sk_encoder *e, const float *ds)
{
	int B = e->B, D = e->c.d;
	if (e->c.kind != SK_ENC_SNE)
		return sk_seq_backward(e->head, &e->ctx, B, e->feat, ds, NULL);
	size_t lw = (size_t)D + PE_C, mw = (size_t)D + PE_L + 2;
	if (grow(&e->dz, &e->capdz, (size_t)B * D) < 0 || grow(&e->dvl, &e->capdvl, (size_t)e->NL * D) < 0 ||
	    grow(&e->dyc, &e->capdyc, (size_t)e->N * D) < 0)
		return -1;
	if (sk_seq_backward(e->head, &e->ctx, B, e->z, ds, e->dz) < 0)
		return -1;
	if (groups_backward(e, e->mg, e->nmg, e->mpar, e->dz, e->dvl, e->mlayer0, mw) < 0 ||
	    groups_backward(e, e->lg, e->nlg, e->lpar, e->dvl, e->dyc, e->lchunk0, lw) < 0)
		return -1;
	return sk_seq_backward(e->chunk, &e->ctx, e->N, e->xc, e->dyc, NULL);
}

/* ---- construction ---- */

static sk_encoder *enc_alloc(const sk_enc_config *c)
{
	sk_encoder *e = calloc(1, sizeof *e);
	if (!e) {
		sk_error("out of memory");
		return NULL;
	}
	e->c = *c;
	e->wscale = 1;
	return e;
}

sk_encoder *sk_encoder_new(const sk_enc_config *c, const sk_zoo *z, const int *idx, int n, uint64_t seed)
{
	sk_encoder *e = enc_alloc(c);
	if (!e)
		return NULL;
	if (n < 1) {
		sk_error("no model to size the encoder on");
		goto fail;
	}
	e->kmax = 1;
	for (int k = 0; k < n; k++) {
		const sk_zoo_model *m = &z->m[idx[k]];
		for (int l = 0; l < m->nlayers; l++)
			if (m->layers[l].kh * m->layers[l].kw > e->kmax)
				e->kmax = m->layers[l].kh * m->layers[l].kw;
		if (m->nlayers > e->nstat)
			e->nstat = m->nlayers;
		if ((int)m->nflat > e->nflat)
			e->nflat = m->nflat > (1u << 24) ? 1 << 24 : (int)m->nflat;
	}
	if (c->values > 0)   /* else the largest kernel: one element each */
		e->kmax = c->values;
	if (c->kind == SK_ENC_HPARAMS && hp_size(e, z, idx, n) < 0)
		goto fail;
	if (c->kind == SK_ENC_SNE) {
		double ss = 0, cnt = 0;
		for (int k = 0; k < n; k++) {
			const sk_zoo_model *m = &z->m[idx[k]];
			for (int l = 0; l < m->nlayers; l++) {
				const sk_zoo_layer *L = &m->layers[l];
				size_t nw = (size_t)L->out * L->in * L->kh * L->kw;
				for (size_t i = 0; i < nw; i++)
					ss += (double)m->flat[L->w + i] * m->flat[L->w + i];
				cnt += (double)nw;
			}
		}
		e->wscale = ss > 0 ? (float)(1.0 / sqrt(ss / cnt)) : 1.0f;
	}
	if (c->kind != SK_ENC_SNE) {
		e->nfeat = c->kind == SK_ENC_STATNN ? e->nstat * 2 * NSTAT : c->kind == SK_ENC_HPARAMS ? hp_nfeat(e) : e->nflat;
		if (!(e->mu = sk_alloc_array((size_t)e->nfeat, sizeof(float))) ||
		    !(e->sd = sk_alloc_array((size_t)e->nfeat, sizeof(float))))
			goto fail;
		float *f = sk_alloc_array((size_t)e->nfeat, sizeof(float));
		double *s1 = calloc((size_t)e->nfeat, sizeof *s1), *s2 = calloc((size_t)e->nfeat, sizeof *s2);
		int bad = !f || !s1 || !s2;
		for (int k = 0; !bad && k < n; k++) {
			if (raw_features(e, &z->m[idx[k]], f) < 0) {
				bad = 1;
				break;
			}
			for (int i = 0; i < e->nfeat; i++)
				s1[i] += f[i], s2[i] += (double)f[i] * f[i];
		}
		for (int i = 0; !bad && i < e->nfeat; i++) {
			double m = s1[i] / n, v = s2[i] / n - m * m;
			e->mu[i] = (float)m;
			e->sd[i] = v > 1e-16 ? (float)sqrt(v) : 1.0f;
		}
		sk_free(f);
		free(s1);
		free(s2);
		if (bad) {
			if (!f || !s1 || !s2)
				sk_error("out of memory");
			goto fail;
		}
	}
	if (enc_build(e) < 0)
		goto fail;
	if ((e->chunk && sk_seq_init(e->chunk, seed) < 0) || (e->lmaster && sk_seq_init(e->lmaster, seed) < 0) ||
	    (e->mmaster && sk_seq_init(e->mmaster, seed) < 0) || sk_seq_init(e->head, seed) < 0)
		goto fail;
	return e;
fail:
	sk_encoder_free(e);
	return NULL;
}

/* ---- training and running ---- */

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The trained parameters of e into (save) or from (!save) buf. */
static void params_copy(sk_encoder *e, float *buf, int save)
{
	size_t o = 0;
	for (int i = 0; i < e->np; i++) {
		sk_param *p = e->params[i];
		if (save)
			memcpy(buf + o, p->w, p->size * sizeof(float));
		else
			memcpy(p->w, buf + o, p->size * sizeof(float));
		o += p->size;
	}
}

static int check_targets(const int *idx, int n, const double *target)
{
	for (int k = 0; k < n; k++)
		if (!(target[k] >= 0 && target[k] <= 1))
			return sk_error("target of model %d is %g, outside [0, 1]", idx[k] + 1, target[k]);
	return 0;
}

int sk_encoder_train(sk_encoder *e, const sk_zoo *z, const int *idx, int n, const double *target,
                     const sk_enc_train *t)
{
	/* the hparams encoder sees no weights: its penalty is zero */
	int Bt = t->batch < 1 ? 1 : t->batch, inv = t->lambda > 0 && e->c.kind != SK_ENC_HPARAMS, rc = -1;
	int slots = inv ? 2 * Bt : Bt, best_ep = 0;
	const sk_zoo_model **ms = calloc((size_t)slots, sizeof *ms);
	sk_zoo_model *pm = calloc((size_t)Bt, sizeof *pm);
	int64_t *perm = malloc(sizeof *perm * (size_t)(n > 0 ? n : 1));
	float *ds = sk_alloc_array((size_t)slots, sizeof(float)), *best = NULL;
	sk_enc_val *v = t->val;
	double best_tau = NAN;
	sk_optim_config oc;
	sk_optim *opt = NULL;
	if (!ms || !pm || !perm || !ds) {
		sk_error("out of memory");
		goto out;
	}
	if (n < 1) {
		sk_error("no model to train on");
		goto out;
	}
	if (check_targets(idx, n, target) < 0)
		goto out;
	if (v) {
		if (v->n < 1 || !v->idx || !v->target) {
			sk_error("no validation model");
			goto out;
		}
		if (check_targets(v->idx, v->n, v->target) < 0 ||
		    !(best = sk_alloc_array(sk_encoder_param_count(e) + 1, sizeof(float))))
			goto out;
	}
	sk_optim_defaults(&oc, SK_OPT_ADAM);
	oc.wd = t->wd;
	if (!(opt = sk_optim_new(&oc, e->params, e->np)))
		goto out;
	e->ctx.seed = t->seed;
	int64_t step = 0;
	for (int ep = 0; ep < t->epochs; ep++) {
		sk_rng r = sk_rng_make(t->seed, sk_rng_stream(0x5e, (uint64_t)ep, 0));
		double lsum = 0, isum = 0, vt = NAN;
		int cnt = 0;
		e->ctx.train = 1;
		sk_rng_permute(&r, perm, n);
		for (int k0 = 0; k0 < n; k0 += Bt) {
			int bt = n - k0 < Bt ? n - k0 : Bt, B = bt;
			for (int b = 0; b < bt; b++)
				ms[b] = &z->m[idx[perm[k0 + b]]];
			if (inv) {
				for (int b = 0; b < bt; b++) {
					sk_zoo_model_free(&pm[b]);
					if (sk_zoo_model_copy(&pm[b], ms[b], 0) < 0 ||
					    sk_zoo_permute(&pm[b], t->seed, (uint64_t)step * (uint64_t)Bt + (uint64_t)b) < 0)
						goto out;
					ms[bt + b] = &pm[b];
				}
				B = 2 * bt;
			}
			for (int i = 0; i < e->np; i++)
				memset(e->params[i]->g, 0, e->params[i]->size * sizeof(float));
			e->ctx.step = (uint64_t)step;
			if (enc_forward(e, ms, B) < 0)
				goto out;
			for (int b = 0; b < bt; b++) {
				double s = e->s[b], a = target[perm[k0 + b]], p = sigm(s);
				if (!isfinite(s)) {
					sk_error("non-finite encoder output at step %lld", (long long)step + 1);
					goto out;
				}
				if (t->mse) {
					lsum += (p - a) * (p - a);
					ds[b] = (float)(2 * (p - a) * p * (1 - p) / bt);
				} else {
					lsum += softplus(s) - a * s;
					ds[b] = (float)((p - a) / bt);
				}
				cnt++;
				if (inv) {
					double d = e->s[b] - e->s[bt + b];
					isum += d * d;
					ds[b] += (float)(2 * t->lambda * d / bt);
					ds[bt + b] = (float)(-2 * t->lambda * d / bt);
				}
			}
			if (enc_backward(e, ds) < 0)
				goto out;
			sk_optim_step(opt, t->lr);
			step++;
		}
		if (v) {   /* the epoch kept: the first with the largest validation tau */
			if (sk_encoder_tau(e, z, v->idx, v->n, v->target, &vt) < 0)
				goto out;
			if (v->curve)
				v->curve[ep] = vt;
			if (!isnan(vt) && (best_ep == 0 || vt > best_tau)) {
				best_tau = vt;
				best_ep = ep + 1;
				params_copy(e, best, 1);
			}
		}
		if (t->on_epoch)
			t->on_epoch(ep + 1, t->epochs, lsum / cnt, isum / cnt, vt, t->arg);
	}
	if (v) {
		if (best_ep > 0)
			params_copy(e, best, 0);
		else   /* no tau was defined: the last epoch */
			best_ep = t->epochs;
		v->best_epoch = best_ep;
		v->best_tau = best_tau;
	}
	rc = 0;
out:
	e->ctx.train = 0;
	sk_optim_free(opt);
	for (int b = 0; pm && b < Bt; b++)
		sk_zoo_model_free(&pm[b]);
	free(pm);
	free(ms);
	free(perm);
	sk_free(ds);
	sk_free(best);
	return rc;
}

#define RUN_BATCH 32

int sk_encoder_run(sk_encoder *e, const sk_zoo *z, const int *idx, int n, float *codes, float *logits)
{
	const sk_zoo_model *ms[RUN_BATCH];
	int cs = sk_encoder_code_size(e);
	e->ctx.train = 0;
	for (int k0 = 0; k0 < n; k0 += RUN_BATCH) {
		int B = n - k0 < RUN_BATCH ? n - k0 : RUN_BATCH;
		for (int b = 0; b < B; b++)
			ms[b] = &z->m[idx[k0 + b]];
		if (enc_forward(e, ms, B) < 0)
			return -1;
		if (logits)
			memcpy(logits + k0, e->s, (size_t)B * sizeof(float));
		if (codes) {
			if (e->c.kind == SK_ENC_SNE)
				memcpy(codes + (size_t)k0 * cs, e->z, (size_t)B * cs * sizeof(float));
			else   /* the second hidden layer, after its relu */
				memcpy(codes + (size_t)k0 * cs, e->head->act[3], (size_t)B * cs * sizeof(float));
		}
	}
	return 0;
}

int sk_encoder_tau(sk_encoder *e, const sk_zoo *z, const int *idx, int n, const double *target, double *tau)
{
	float *s = sk_alloc_array((size_t)(n > 0 ? n : 1), sizeof(float));
	double *p = malloc(sizeof *p * (size_t)(n > 0 ? n : 1));
	int rc = -1;
	if (!s || !p) {
		sk_error("out of memory");
		goto out;
	}
	if (sk_encoder_run(e, z, idx, n, NULL, s) < 0)
		goto out;
	for (int k = 0; k < n; k++)   /* the predictions as zoo-encode predict writes them */
		p[k] = (float)(1.0 / (1.0 + exp(-(double)s[k])));
	*tau = n >= 2 ? sk_kendall_tau(p, target, (size_t)n) : NAN;
	rc = 0;
out:
	sk_free(s);
	free(p);
	return rc;
}

int sk_encoder_inv_gap(sk_encoder *e, const sk_zoo *z, const int *idx, int n, uint64_t seed, double *gap)
{
	float *s0 = sk_alloc_array((size_t)(n > 0 ? n : 1), sizeof(float));
	double sum = 0;
	int rc = -1;
	if (!s0)
		return -1;
	if (sk_encoder_run(e, z, idx, n, NULL, s0) < 0)
		goto out;
	for (int k = 0; k < n; k++) {
		sk_zoo_model pm;
		const sk_zoo_model *ms[1] = {&pm};
		if (sk_zoo_model_copy(&pm, &z->m[idx[k]], e->c.kind == SK_ENC_HPARAMS) < 0)
			goto out;
		if (sk_zoo_permute(&pm, seed, (uint64_t)k) < 0 || enc_forward(e, ms, 1) < 0) {
			sk_zoo_model_free(&pm);
			goto out;
		}
		sum += fabs(e->s[0] - s0[k]);
		sk_zoo_model_free(&pm);
	}
	*gap = n ? sum / n : 0;
	rc = 0;
out:
	sk_free(s0);
	return rc;
}

int sk_encoder_check_gradients(sk_encoder *e, const sk_zoo *z, const int *idx, int n, uint64_t seed,
                               int samples, double tol, double *worst)
{
	const sk_zoo_model **ms = calloc((size_t)n + 1, sizeof *ms);
	float *r = sk_alloc_array((size_t)n + 1, sizeof(float));
	int bad = -1;
	sk_rng g = sk_rng_make(seed, 0x9c);
	if (!ms || !r)
		goto out;
	for (int b = 0; b < n; b++) {
		ms[b] = &z->m[idx[b]];
		r[b] = sk_rng_next_normal(&g);
	}
	e->ctx.train = 0;
	for (int i = 0; i < e->np; i++)
		memset(e->params[i]->g, 0, e->params[i]->size * sizeof(float));
	if (enc_forward(e, ms, n) < 0 || enc_backward(e, r) < 0)
		goto out;
	bad = 0;
	*worst = 0;
	for (int i = 0; i < e->np; i++) {
		sk_param *p = e->params[i];
		for (int k = 0; k < samples; k++) {
			size_t j = (size_t)sk_rng_next_below(&g, p->size);
			float w0 = p->w[j];
			double lp = 0, lm = 0, eps = 1e-3;
			p->w[j] = w0 + (float)eps;
			if (enc_forward(e, ms, n) < 0) {
				bad = -1;
				goto out;
			}
			for (int b = 0; b < n; b++)
				lp += (double)r[b] * e->s[b];
			p->w[j] = w0 - (float)eps;
			if (enc_forward(e, ms, n) < 0) {
				bad = -1;
				goto out;
			}
			for (int b = 0; b < n; b++)
				lm += (double)r[b] * e->s[b];
			p->w[j] = w0;
			double num = (lp - lm) / (2 * eps), a = p->g[j];
			double rel = fabs(num - a) / fmax(fmax(fabs(num), fabs(a)), 1e-2);
			if (rel > *worst)
				*worst = rel;
			if (rel > tol)
				bad++;
		}
	}
out:
	free(ms);
	sk_free(r);
	return bad;
}

int sk_encoder_tokens(const sk_encoder *e, const sk_zoo_model *m, int layer, float *x, int *nch)
{
	if (e->c.kind != SK_ENC_SNE)
		return sk_error("a %s encoder has no tokens", sk_enc_name(e->c.kind));
	if (layer < 0 || layer >= m->nlayers)
		return sk_error("the model has no layer %d", layer);
	*nch = nchunks(e, &m->layers[layer]);
	for (int c = 0; x && c < *nch; c++)
		fill_chunk(e, m, &m->layers[layer], c, x + (size_t)c * (size_t)e->c.chunk * (size_t)e->F);
	return 0;
}

int sk_encoder_features(sk_encoder *e, const sk_zoo_model *m, float *f, int *nfeat)
{
	if (e->c.kind == SK_ENC_SNE)
		return sk_error("the sne encoder has no feature vector");
	*nfeat = e->nfeat;
	return f ? raw_features(e, m, f) : 0;
}

/* ---- (de)serialisation ---- */

/* Append to the configuration text t (its length in *len). */
static int config_add(char *t, int *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int config_add(char *t, int *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(t + *len, (size_t)(CONFIG_MAX - *len), fmt, ap);
	va_end(ap);
	if (k < 0 || k >= CONFIG_MAX - *len)
		return sk_error("encoder configuration longer than %d bytes", CONFIG_MAX - 1);
	*len += k;
	return 0;
}

int sk_encoder_write(FILE *f, sk_encoder *e, const sk_attrs *extra, int level)
{
	char text[CONFIG_MAX];
	sk_attrs a;
	int nrec = e->np + (e->mu ? 2 : 0), rc = -1, len = 0;
	int64_t sh[1];
	sk_attrs_init(&a);
	if (config_add(text, &len, "kind %s\nd %d\nchunk %d\nheads %d\nln %d\nhidden %d\nkmax %d\nnstat %d\n"
	               "nflat %d\nwscale %.9g\nablate %d\n", sk_enc_name(e->c.kind), e->c.d, e->c.chunk, e->c.heads,
	               e->c.ln, e->c.hidden, e->kmax, e->nstat, e->nflat, e->wscale, e->c.ablate) < 0)
		goto out;
	for (int k = 0; k < e->nhp; k++) {
		const hp_feat *h = &e->hp[k];
		if (config_add(text, &len, "hp %s %s%s", h->key, hp_tr_names[h->tr], h->tr == HP_CAT ? " " : "") < 0)
			goto out;
		for (int j = 0; j < h->nv; j++)
			if (config_add(text, &len, "%s%s", j ? "," : "", h->v[j]) < 0)
				goto out;
		if (config_add(text, &len, "\n") < 0)
			goto out;
	}
	sh[0] = len;
	if ((extra && sk_attrs_copy(&a, extra) < 0) || sk_attrs_setf(&a, "records", "%d", nrec) < 0 ||
	    sk_attrs_set(&a, "encoder", sk_enc_name(e->c.kind)) < 0 || sk_attrs_set(&a, "version", SK_VERSION_STRING) < 0)
		goto out;
	if (sk_write_record_raw(f, "encoder", SK_U8, 1, sh, text, &a, 0) < 0)
		goto out;
	if (e->mu) {
		int64_t fs[1] = {e->nfeat};
		if (sk_write_record_raw(f, "norm.mu", SK_F32, 1, fs, e->mu, NULL, level) < 0 ||
		    sk_write_record_raw(f, "norm.sd", SK_F32, 1, fs, e->sd, NULL, level) < 0)
			goto out;
	}
	for (int i = 0; i < e->np; i++)
		if (sk_write_record_raw(f, e->params[i]->name, SK_F32, e->params[i]->ndim, e->params[i]->shape,
		                        e->params[i]->w, NULL, level) < 0)
			goto out;
	rc = 0;
out:
	sk_attrs_free(&a);
	return rc;
}

/* A line "hp KEY TRANSFORM [V1,V2,...]" of the configuration. */
static int parse_hp(sk_encoder *e, const char *key, const char *tr, const char *vals)
{
	hp_feat *h = &e->hp[e->nhp];
	int t = -1;
	for (int i = 0; i < 4; i++)
		if (!strcmp(tr, hp_tr_names[i]))
			t = i;
	if (t < 0 || e->nhp == HP_MAX || strlen(key) >= HP_LEN || (t == HP_CAT) != (vals != NULL))
		return sk_error("encoder configuration: bad hyperparameter line for '%.40s'", key);
	memset(h, 0, sizeof *h);
	snprintf(h->key, sizeof h->key, "%s", key);
	h->tr = t;
	while (vals && *vals) {
		size_t len = strcspn(vals, ",");
		if (!len || len >= HP_LEN || h->nv == HP_VALS)
			return sk_error("encoder configuration: bad values of hyperparameter '%s'", key);
		memcpy(h->v[h->nv], vals, len);
		h->v[h->nv++][len] = 0;
		vals += len + (vals[len] == ',');
	}
	if (t == HP_CAT && !h->nv)
		return sk_error("encoder configuration: hyperparameter '%s' has no values", key);
	e->nhp++;
	return 0;
}

static int parse_config(const char *text, sk_encoder *e)
{
	static const char *const keys[] = {"d", "chunk", "heads", "ln", "hidden", "kmax", "nstat", "nflat", "ablate"};
	int *vals[] = {&e->c.d,      &e->c.chunk, &e->c.heads, &e->c.ln, &e->c.hidden,
	               &e->kmax,     &e->nstat,   &e->nflat,   &e->c.ablate};
	const char *p = text;
	int seen = 0, kind = 0;
	e->nhp = 0;
	while (*p) {   /* one "KEY VALUE" (or "hp KEY TRANSFORM [VALUES]") a line */
		char line[CONFIG_MAX], key[32], val[64], tr[16], list[CONFIG_MAX];
		size_t len = strcspn(p, "\n");
		int nt;
		memcpy(line, p, len);   /* len < CONFIG_MAX: the text is shorter */
		line[len] = 0;
		p += len + (p[len] == '\n');
		if (!len)
			continue;
		nt = sscanf(line, "%31s %63s %15s %4095s", key, val, tr, list);
		if (nt >= 3 && !strcmp(key, "hp")) {
			if (parse_hp(e, val, tr, nt == 4 ? list : NULL) < 0)
				return -1;
			continue;
		}
		if (nt != 2)
			return sk_error("encoder configuration: bad line '%.40s'", line);
		if (!strcmp(key, "wscale")) {
			char *end;
			double v = strtod(val, &end);
			if (*end || !(v > 0 && v < 1e30))
				return sk_error("encoder configuration: wscale '%s' out of range", val);
			e->wscale = (float)v;
			continue;
		}
		if (!strcmp(key, "kind")) {
			sk_enc_kind k;
			if (sk_enc_parse(val, &k) < 0)
				return -1;
			e->c.kind = k;
			kind = 1;
			continue;
		}
		for (int i = 0; i < 9; i++)
			if (!strcmp(key, keys[i])) {
				char *end;
				long v = strtol(val, &end, 10);
				if (*end || v < 0 || v > (1 << 24))
					return sk_error("encoder configuration: %s '%s' out of range", key, val);
				*vals[i] = (int)v;
				seen |= 1 << i;
			}
	}
	if (!kind || (seen & 0xff) != 0xff)   /* ablate is optional: older encoders lack it */
		return sk_error("encoder configuration is incomplete");
	if (e->kmax < 1 || e->nstat < 1 || e->nflat < 1)
		return sk_error("encoder configuration: sizes must be positive");
	if (e->c.ablate & ~15)
		return sk_error("encoder configuration: ablate %d names unknown parts", e->c.ablate);
	if ((e->c.kind == SK_ENC_HPARAMS) != (e->nhp > 0))
		return sk_error("encoder configuration: hyperparameter lines %s", e->nhp ? "in another encoder" : "missing");
	e->nfeat = e->c.kind == SK_ENC_STATNN ? e->nstat * 2 * NSTAT : e->c.kind == SK_ENC_HPARAMS ? hp_nfeat(e) : e->nflat;
	return 0;
}

sk_encoder *sk_encoder_load(const char *path, sk_attrs *attrs)
{
	sk_reader *r = sk_reader_open(path);
	sk_header h;
	sk_encoder *e = NULL;
	char text[CONFIG_MAX];
	int st;
	long long nrec;
	memset(&h, 0, sizeof h);
	if (!r)
		return NULL;
	while ((st = sk_reader_next(r, &h)) > 0 && strcmp(h.name, "encoder"))
		;
	if (st <= 0) {
		if (st == 0)
			sk_error("%s: no encoder record in the stream", path);
		goto fail;
	}
	if (h.dtype != SK_U8 || h.ndim != 1 || h.rawbytes >= sizeof text) {
		sk_error("%s: encoder record is not u8 text of at most %zu bytes", path, sizeof text - 1);
		goto fail;
	}
	const char *rs = sk_attrs_get(&h.attrs, "records");
	nrec = rs ? strtoll(rs, NULL, 10) : -1;
	if (nrec < 0 || nrec > 100000) {
		sk_error("%s: encoder record has no valid 'records' attribute", path);
		goto fail;
	}
	if (attrs && sk_attrs_copy(attrs, &h.attrs) < 0)
		goto fail;
	if (sk_reader_payload_into(r, &h, text) < 0)
		goto fail;
	text[h.rawbytes] = 0;
	{
		sk_enc_config c;
		sk_enc_defaults(&c, SK_ENC_SNE);
		if (!(e = enc_alloc(&c)))
			goto fail;
	}
	if (parse_config(text, e) < 0)
		goto fail;
	if (e->c.kind != SK_ENC_SNE &&
	    (!(e->mu = sk_alloc_array((size_t)e->nfeat, sizeof(float))) ||
	     !(e->sd = sk_alloc_array((size_t)e->nfeat, sizeof(float)))))
		goto fail;
	if (enc_build(e) < 0)
		goto fail;
	{
		unsigned char *seen = calloc((size_t)e->np + 2, 1);
		int got = 0;
		if (!seen) {
			sk_error("out of memory");
			goto fail;
		}
		for (long long k = 0; k < nrec; k++) {
			float *dst = NULL;
			size_t cnt = 0;
			int slot = -1;
			if ((st = sk_reader_next(r, &h)) <= 0) {
				if (st == 0)
					sk_error("%s: encoder ends after %lld of its %lld records", path, k, nrec);
				free(seen);
				goto fail;
			}
			if (e->mu && !strcmp(h.name, "norm.mu"))
				dst = e->mu, cnt = (size_t)e->nfeat, slot = e->np;
			else if (e->sd && !strcmp(h.name, "norm.sd"))
				dst = e->sd, cnt = (size_t)e->nfeat, slot = e->np + 1;
			else
				for (int i = 0; i < e->np; i++)
					if (!strcmp(h.name, e->params[i]->name)) {
						dst = e->params[i]->w, cnt = e->params[i]->size, slot = i;
						break;
					}
			if (!dst || h.dtype != SK_F32 || h.rawbytes != cnt * sizeof(float) || seen[slot]) {
				sk_error("%s: record %ld '%s' is not a tensor of this encoder (or repeated, or of the wrong size)",
				         path, sk_reader_index(r), h.name);
				free(seen);
				goto fail;
			}
			if (sk_reader_payload_into(r, &h, dst) < 0) {
				free(seen);
				goto fail;
			}
			seen[slot] = 1;
			got++;
		}
		free(seen);
		if (got != e->np + (e->mu ? 2 : 0)) {
			sk_error("%s: encoder has %d of its %d tensors", path, got, e->np + (e->mu ? 2 : 0));
			goto fail;
		}
	}
	sk_header_free(&h);
	sk_reader_close(r);
	return e;
fail:
	sk_header_free(&h);
	sk_reader_close(r);
	sk_encoder_free(e);
	return NULL;
}
