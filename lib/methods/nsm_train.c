/* nsm_train.c: NSM and k-means filters as a custom step of the training
 * loop (see sk_nsm_train.h). */
#include "sk_nsm_train.h"
#include "sk_cluster.h"
#include "sk_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int);

#define KM_PATCHES 16          /* random positions per image */
#define KM_STREAM 0x6b6dULL    /* "km" */
#define MAX_CLASSES 100000

struct sk_nsm_learner {
	sk_nsm_learn_opts o;
	sk_nsm *s;            /* W and M point into m's nsm layer */
	sk_model *m;
	float *Wz;            /* supervised: the label encoder */
	double *kcount;       /* kmeans: assignments per centre */
	float *kpatch;        /* kmeans: one patch */
	float *x;             /* one batch of scaled images */
	int32_t *lab;
	void *mem;            /* the block of the arrays above */
	char options[2048];   /* the fingerprint a resumed run must match */
	int have_state, have_wz, have_kcount;   /* read from the checkpoint */
	int64_t steps;        /* since the last sk_nsm_learner_epoch */
	sk_nsm_stats last;
};

static const char *const reg_names[] = {"weight", "whiten", "none"};

/* The spec of the learner's model: the nsm layer with step size eta (or the
 * filters as a conv layer), and a max pool when pool > 0; the model built
 * from it, with its layer in *layer. */
static sk_model *build(const sk_nsm_learner *L, int conv, int pool, double eta, sk_layer **layer)
{
	const sk_nsm_opts *o = &L->o.o;
	const char *name = L->o.name ? L->o.name : conv ? "conv1" : "nsm1";
	char spec[1024];
	int len;
	if (conv)
		len = snprintf(spec, sizeof spec,
		               "# nsm-pretrain: NSM filters as a convolution (no bias)\n"
		               "input %d %d %d scale=%.9g\nconv %d k=%d stride=%d bias=0 name=%s\n",
		               o->c, o->h, o->w, L->o.scale, o->k, o->size, o->stride, name);
	else
		len = snprintf(spec, sizeof spec,
		               "# nsm-pretrain: NSM dynamics y = [y - eta (M y - W x)]+ as a feature extractor\n"
		               "input %d %d %d scale=%.9g\nnsm %d k=%d stride=%d iters=%d eta=%.9g tol=%.9g name=%s\n",
		               o->c, o->h, o->w, L->o.scale, o->k, o->size, o->stride, o->iters, eta, o->tol, name);
	if (!conv && pool > 0)
		snprintf(spec + len, sizeof spec - (size_t)len, "pool max k=%d name=pool\n", pool);
	sk_model *m = sk_model_from_text(spec, "<nsm-pretrain>");
	if (!m)
		return NULL;
	if (!(*layer = sk_seq_find(m->seq, name))) {
		sk_error("layer '%s' not found in the generated model", name);
		sk_model_free(m);
		return NULL;
	}
	return m;
}

/* Supervised: the class count from the labels (class indices 0, 1, ...). */
static int classes_of(const sk_dataset *d, int *classes)
{
	int64_t top = -1;
	if (!d->labels)
		return sk_error("--supervised needs labels, but the data have none");
	for (int64_t i = 0; i < d->n; i++) {
		if (d->labels[i] < 0)
			return sk_error("label %d of example %lld is negative (labels are class indices 0, 1, ...)",
			                (int)d->labels[i], (long long)i);
		if (*classes && d->labels[i] >= *classes)
			return sk_error("label %d of example %lld is not below --classes %d", (int)d->labels[i],
			                (long long)i, *classes);
		if (d->labels[i] > top)
			top = d->labels[i];
	}
	if (*classes)
		return 0;
	if (top + 1 > MAX_CLASSES)
		return sk_error("labels up to %lld would make %lld classes (at most %d; labels are class indices 0, 1, ...)",
		                (long long)top, (long long)top + 1, MAX_CLASSES);
	if (top + 1 < 2)
		return sk_error("found labels up to %lld; give --classes N", (long long)top);
	*classes = (int)(top + 1);
	return 0;
}

/* 1/255 when the data hold values above 1 (u8 images), else 1. */
static double auto_scale(const sk_dataset *d)
{
	size_t n = (size_t)d->n * (d->example_bytes / sk_dtype_size(d->dtype));
	for (size_t i = 0; i < n; i++)
		if (d->dtype == SK_U8 ? ((const uint8_t *)d->images)[i] > 1 : ((const float *)d->images)[i] > 1.0f)
			return 1.0 / 255.0;
	return 1.0;
}

sk_nsm_learner *sk_nsm_learner_new(const sk_nsm_learn_opts *opt, sk_dataset *d)
{
	sk_nsm_learner *L = calloc(1, sizeof *L);
	sk_nsm_opts *o;
	sk_layer *l = NULL;
	char b[64];
	if (!L) {
		sk_error("out of memory");
		return NULL;
	}
	L->o = *opt;
	o = &L->o.o;
	if (d->ndim == 2) {   /* N x H x W: one channel */
		d->shape[2] = d->shape[1];
		d->shape[1] = d->shape[0];
		d->shape[0] = 1;
		d->ndim = 3;
	}
	if (d->ndim != 3 || d->shape[0] > 65536 || d->shape[1] > 65536 || d->shape[2] > 65536) {
		sk_error("images must be N x C x H x W or N x H x W, got examples of %s",
		         sk_shape_str(d->ndim, d->shape, b, sizeof b));
		goto fail;
	}
	o->c = (int)d->shape[0];
	o->h = (int)d->shape[1];
	o->w = (int)d->shape[2];
	if (L->o.scale <= 0)
		L->o.scale = auto_scale(d);
	if (L->o.algo == SK_NSM_ALGO_KMEANS && o->supervised) {
		sk_error("--algo kmeans has no supervised variant");
		goto fail;
	}
	if (o->supervised && classes_of(d, &o->classes) < 0)
		goto fail;
	if (!(L->s = sk_nsm_create(o, 0)))
		goto fail;
	/* the parameters live in the model's nsm layer: checkpoints see them */
	if (!(L->m = build(L, 0, 0, o->eta_auto ? 1.0 : o->eta, &l)))
		goto fail;
	L->s->W = l->params[0].w;
	L->s->M = l->params[1].w;
	int km = L->o.algo == SK_NSM_ALGO_KMEANS;
	sk_part parts[] = {
		SK_PART(L->Wz, o->supervised ? (size_t)o->k * (size_t)o->classes : 0),
		SK_PART(L->kcount, km ? (size_t)o->k : 0), SK_PART(L->kpatch, km ? (size_t)L->s->d : 0),
		SK_PART(L->x, (size_t)o->max_batch * (size_t)o->c * o->h * o->w), SK_PART(L->lab, (size_t)o->max_batch),
	};
	if (!(L->mem = sk_alloc_parts((int)(sizeof parts / sizeof *parts), parts)))
		goto fail;
	L->s->Wz = L->Wz;
	sk_nsm_init(L->s, L->o.init, L->o.seed);
	/* the workers share the cores: OpenBLAS runs single-threaded inside them */
	if (o->threads > 1)
		openblas_set_num_threads(1);
	return L;
fail:
	sk_nsm_learner_free(L);
	return NULL;
}

void sk_nsm_learner_free(sk_nsm_learner *L)
{
	if (!L)
		return;
	sk_nsm_free(L->s);
	sk_model_free(L->m);
	sk_free(L->mem);
	free(L);
}

const char *sk_nsm_learner_describe(const sk_nsm_learner *L, char *buf, size_t n)
{
	const sk_nsm_opts *o = &L->o.o;
	char eta[32] = "auto";
	if (!o->eta_auto)
		snprintf(eta, sizeof eta, "%g", o->eta);
	if (L->o.algo == SK_NSM_ALGO_KMEANS)
		snprintf(buf, n, "k-means baseline: %d filters %dx%dx%d on %dx%dx%d images (scale %.6g), %d patches an image, "
		         "batch %d", o->k, o->c, o->size, o->size, o->c, o->h, o->w, L->o.scale, KM_PATCHES, o->max_batch);
	else
		snprintf(buf, n, "%d filters %dx%dx%d stride %d on %dx%dx%d images (scale %.6g), %d dynamics steps, eta %s, "
		         "tau %g, reg %s%s, batch %d, %d thread%s", o->k, o->c, o->size, o->size, o->stride, o->c, o->h, o->w,
		         L->o.scale, o->iters, eta, o->tau, reg_names[o->reg], o->supervised ? ", supervised" : "",
		         o->max_batch, o->threads, o->threads == 1 ? "" : "s");
	return buf;
}
sk_model *sk_nsm_learner_model(sk_nsm_learner *L) { return L->m; }

int64_t sk_nsm_learner_epoch(sk_nsm_learner *L, sk_nsm_stats *last)
{
	int64_t n = L->steps;
	*last = L->last;
	L->steps = 0;
	return n;
}

/* ---- the steps ---- */

static void unit_rows(float *W, int K, int D)
{
	for (int k = 0; k < K; k++) {
		float *w = W + (size_t)k * (size_t)D;
		double n2 = 0;
		for (int j = 0; j < D; j++)
			n2 += (double)w[j] * w[j];
		if (n2 > 0)
			for (int j = 0; j < D; j++)
				w[j] = (float)(w[j] / sqrt(n2));
	}
}

/* Mini-batch spherical k-means (Sculley's per-centre rate 1/count) on
 * KM_PATCHES random patches an image, their mean removed and scaled to unit
 * norm (flat patches are skipped); the centres (rows of W) start and stay
 * of unit norm. */
static void kmeans_step(sk_nsm_learner *L, int n, int64_t gstep)
{
	const sk_nsm *s = L->s;
	const sk_nsm_opts *o = &L->o.o;
	int K = o->k, D = s->d;
	float *pt = L->kpatch;
	sk_rng g = sk_rng_make(L->o.seed, sk_rng_stream(KM_STREAM, (uint64_t)gstep, 0));
	if (gstep == 0)
		unit_rows(s->W, K, D);
	for (int b = 0; b < n; b++)
		for (int t = 0; t < KM_PATCHES; t++) {
			int q = (int)sk_rng_next_below(&g, (uint64_t)s->p), oy = q / s->wo, ox = q % s->wo, d = 0;
			double mean = 0, n2 = 0;
			for (int c = 0; c < o->c; c++)
				for (int i = 0; i < o->size; i++)
					for (int j = 0; j < o->size; j++)
						pt[d++] = L->x[(((size_t)b * o->c + c) * o->h + (size_t)oy * o->stride + i) * o->w +
						               (size_t)ox * o->stride + j];
			for (d = 0; d < D; d++)
				mean += pt[d];
			mean /= D;
			for (d = 0; d < D; d++) {
				pt[d] -= (float)mean;
				n2 += (double)pt[d] * pt[d];
			}
			if (n2 < 1e-6)
				continue;
			float inv = (float)(1.0 / sqrt(n2));
			for (d = 0; d < D; d++)
				pt[d] *= inv;
			sk_kmeans_online(s->W, K, D, pt, L->kcount, 1);
		}
	unit_rows(s->W, K, D);
}

static int learner_step(void *arg, const sk_dataset *d, const int64_t *idx, int n, int64_t gstep, double lr,
                        double *loss)
{
	sk_nsm_learner *L = arg;
	const sk_nsm_opts *o = &L->o.o;
	size_t total = (size_t)n * (size_t)o->c * o->h * o->w;
	float sc = (float)L->o.scale;
	sk_nsm_stats st;
	if (n > o->max_batch)
		return sk_error("nsm: batch of %d images exceeds the prepared %d", n, o->max_batch);
	sk_dataset_gather(d, idx, n, L->x, L->lab);
	for (size_t i = 0; i < total; i++)
		L->x[i] *= sc;
	memset(&st, 0, sizeof st);
	st.eta = o->eta;
	if (L->o.algo == SK_NSM_ALGO_KMEANS)
		kmeans_step(L, n, gstep);
	else if (sk_nsm_step(L->s, n, L->x, o->supervised ? L->lab : NULL, (float)lr, &st) < 0)
		return -1;
	L->steps++;
	L->last = st;
	*loss = st.loss * n;
	return 0;
}

/* ---- state in checkpoints ---- */

static int state_nrecords(void *arg)
{
	sk_nsm_learner *L = arg;
	return 1 + (L->Wz != NULL) + (L->kcount != NULL);
}

/* state.nsm (the fingerprint), state.nsm.wz (f32 K x classes) and
 * state.kmeans.count (i32 K x 2: the low and the high 32 bits of each
 * count, which can pass 2^31 in a long run). */
static int state_write(FILE *f, void *arg)
{
	sk_nsm_learner *L = arg;
	int K = L->o.o.k, rc;
	int32_t one = 1;
	int64_t shp[2] = {1, 0};
	sk_attrs a;
	sk_attrs_init(&a);
	rc = sk_attrs_set(&a, "options", L->options) < 0 ? -1
	                                                   : sk_write_record_raw(f, "state.nsm", SK_I32, 1, shp, &one, &a, 0);
	sk_attrs_free(&a);
	if (rc < 0)
		return -1;
	shp[0] = K;
	shp[1] = L->o.o.classes;
	if (L->Wz && sk_write_record_raw(f, "state.nsm.wz", SK_F32, 2, shp, L->Wz, NULL, 0) < 0)
		return -1;
	if (L->kcount) {
		int32_t *v = sk_alloc_array(2 * (size_t)K, sizeof *v);
		if (!v)
			return -1;
		for (int i = 0; i < K; i++) {
			uint64_t c = (uint64_t)L->kcount[i];
			v[2 * i] = (int32_t)(uint32_t)(c & 0xffffffffu);
			v[2 * i + 1] = (int32_t)(uint32_t)(c >> 32);
		}
		shp[1] = 2;
		rc = sk_write_record_raw(f, "state.kmeans.count", SK_I32, 2, shp, v, NULL, 0);
		sk_free(v);
		return rc;
	}
	return 0;
}

/* The first option (word) where two fingerprints differ, into wa and wb. */
static void first_diff(const char *a, const char *b, char *wa, char *wb)
{
	const char *a0 = a;
	while (*a && *a == *b)
		a++, b++;
	while (a > a0 && a[-1] != ' ')
		a--, b--;
	sscanf(a, "%127s", wa);
	sscanf(b, "%127s", wb);
}

static int state_read(sk_reader *r, const sk_header *h, void *arg)
{
	sk_nsm_learner *L = arg;
	size_t K = (size_t)L->o.o.k;
	if (!strcmp(h->name, "state.nsm")) {
		const char *fp = sk_attrs_get(&h->attrs, "options");
		if (!fp || strcmp(fp, L->options)) {
			char wa[128] = "?", wb[128] = "?";
			first_diff(fp ? fp : "", L->options, wa, wb);
			return sk_error("the checkpoint was made with %s, this run has %s", wa, wb);
		}
		L->have_state = 1;
		return sk_reader_skip(r, h) < 0 ? -1 : 1;
	}
	if (!strcmp(h->name, "state.nsm.wz")) {
		if (!L->Wz || h->dtype != SK_F32 || h->ndim != 2 || (size_t)h->shape[0] != K ||
		    h->shape[1] != L->o.o.classes)
			return sk_error("state.nsm.wz is not the label encoder of %zu filters and %d classes", K,
			                L->o.o.classes);
		if (sk_reader_payload_into(r, h, L->Wz) < 0)
			return -1;
		L->have_wz = 1;
		return 1;
	}
	if (!strcmp(h->name, "state.kmeans.count")) {
		int32_t *v;
		if (!L->kcount || h->dtype != SK_I32 || h->ndim != 2 || (size_t)h->shape[0] != K || h->shape[1] != 2)
			return sk_error("state.kmeans.count is not i32 %zu x 2", K);
		if (!(v = sk_alloc_array(2 * K, sizeof *v)))
			return -1;
		if (sk_reader_payload_into(r, h, v) < 0) {
			sk_free(v);
			return -1;
		}
		for (size_t i = 0; i < K; i++)
			L->kcount[i] = (double)((uint64_t)(uint32_t)v[2 * i] | (uint64_t)(uint32_t)v[2 * i + 1] << 32);
		sk_free(v);
		L->have_kcount = 1;
		return 1;
	}
	return 0;
}

void sk_nsm_learner_attach(sk_nsm_learner *L, sk_train_config *c, const char *recipe)
{
	const sk_nsm_opts *o = &L->o.o;
	snprintf(L->options, sizeof L->options,
	         "algo=%s eta=%s tau=%g reg=%s init=%s supervised=%d classes=%d label_scale=%g block=%d %s",
	         L->o.algo == SK_NSM_ALGO_KMEANS ? "kmeans" : "nsm", o->eta_auto ? "auto" : "fixed", o->tau,
	         reg_names[o->reg], L->o.init == SK_NSM_INIT_UNIT ? "unit" : "conv", o->supervised,
	         o->supervised ? o->classes : 0, o->label_scale, o->block, recipe ? recipe : "");
	c->step = learner_step;
	c->state_nrecords = state_nrecords;
	c->state_write = state_write;
	c->state_read = state_read;
	c->step_arg = L;
}

int sk_nsm_learner_resumed(const sk_nsm_learner *L, const char *path)
{
	if (!L->have_state)
		return sk_error("%s: not an nsm-pretrain checkpoint (no state.nsm record)", path);
	if (L->Wz && !L->have_wz)
		return sk_error("%s: the checkpoint lacks the label encoder (state.nsm.wz)", path);
	if (L->kcount && !L->have_kcount)
		return sk_error("%s: the checkpoint lacks the k-means counts (state.kmeans.count)", path);
	return 0;
}

/* ---- the output ---- */

sk_model *sk_nsm_learner_output(sk_nsm_learner *L, int conv, int pool)
{
	const sk_nsm_opts *o = &L->o.o;
	sk_layer *l;
	/* --eta auto: the step that suits the final M */
	double eta = o->eta_auto ? 1.0 / sk_nsm_lambda_max(o->k, L->s->M, L->s->pv) : o->eta;
	if (!(eta > 0 && eta < 100))
		eta = eta >= 100 ? 99.0 : 1.0;
	sk_model *m = build(L, conv, pool, eta, &l);
	if (!m)
		return NULL;
	memcpy(l->params[0].w, L->s->W, sizeof(float) * (size_t)o->k * (size_t)L->s->d);
	if (!conv)
		memcpy(l->params[1].w, L->s->M, sizeof(float) * (size_t)o->k * (size_t)o->k);
	if (sk_attrs_setf(&m->attrs, "seed", "%llu", (unsigned long long)L->o.seed) < 0 ||
	    sk_attrs_set(&m->attrs, "version", sk_version()) < 0 || sk_attrs_set(&m->attrs, "trainer", "nsm-pretrain") < 0 ||
	    sk_attrs_set(&m->attrs, "algo", L->o.algo == SK_NSM_ALGO_KMEANS ? "kmeans" : "nsm") < 0 ||
	    sk_attrs_setf(&m->attrs, "nsm_tau", "%g", o->tau) < 0 ||
	    sk_attrs_set(&m->attrs, "nsm_reg", reg_names[o->reg]) < 0 ||
	    sk_attrs_setf(&m->attrs, "nsm_supervised", "%d", o->supervised) < 0) {
		sk_model_free(m);
		return NULL;
	}
	return m;
}
