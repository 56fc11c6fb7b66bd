/* nsm-pretrain: convolutional nonnegative similarity matching filters from
 * images, for feature extraction (snet-infer --layer) and for initialising a
 * conv layer (snet-train --init).
 *
 * Parse options; stream the data in chunks (bounded memory), shuffled within
 * each chunk; run the NSM dynamics and local updates per batch (lib/nsm.c);
 * checkpoint atomically; write a model stream whose spec is `input ...` and
 * an `nsm` layer (or a `conv` layer).  Exit 0 done, 1 error, 2 usage, 3
 * interrupted (SIGINT/SIGTERM or --stop-after-steps) with a checkpoint. */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_model.h"
#include "sk_nsm.h"
#include "sk_rng.h"
#include "sk_stream.h"

#include <cblas.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_STOPPED 3

enum {
	O_OUTPUT, O_FILTERS, O_SIZE, O_STRIDE, O_TAU, O_LR, O_SCHED, O_LRMIN, O_STEPSIZE, O_GAMMA, O_ITERS, O_ETA,
	O_TOL, O_REG, O_INIT, O_BATCH, O_EPOCHS, O_SEED, O_THREADS, O_SCALE, O_SUP, O_CLASSES, O_LSCALE, O_EMIT,
	O_NAME, O_ALGO, O_POOL, O_CONVOUT, O_TRANSFORM, O_CKPT, O_CKPT_EVERY, O_RESUME, O_MAXIMG, O_LOG, O_BLOCK, O_STOP, O_FORCE
};

static const sk_option opts[] = {
	[O_OUTPUT] = {"output", 'o', "OUT", "model stream written atomically (required)"},
	[O_FILTERS] = {"filters", 'k', "K", "number of filters (default 50)"},
	[O_SIZE] = {"size", 0, "S", "filter size S x S (default 6)"},
	[O_STRIDE] = {"stride", 0, "T", "filter stride (default 1); no padding"},
	[O_TAU] = {"tau", 0, "TAU", "the lateral weights M learn 1/TAU times faster than W (default 0.1)"},
	[O_LR] = {"lr", 0, "LR", "learning rate on the NSM objective (default 0.05)"},
	[O_SCHED] = {"schedule", 0, "S", "constant, linear, cosine (to --lr-min) or step (default constant)"},
	[O_LRMIN] = {"lr-min", 0, "LR", "linear, cosine: final rate (default 0)"},
	[O_STEPSIZE] = {"step-size", 0, "N", "step: multiply the rate by --gamma every N epochs (default 1)"},
	[O_GAMMA] = {"gamma", 0, "G", "step: decay factor (default 0.5)"},
	[O_ITERS] = {"iters", 0, "N", "dynamics steps per batch, from y = 0 (default 40)"},
	[O_ETA] = {"eta", 0, "E", "dynamics step size, converges while E < 2/lambda_max(M); auto: 1/lambda_max(M) (default 1)"},
	[O_TOL] = {"tol", 0, "X", "stop a block's dynamics when |dy|/|y| < X (default 0: all steps)"},
	[O_REG] = {"reg", 0, "R", "encoder regulariser: weight, whiten or none (default weight)"},
	[O_INIT] = {"init", 0, "I", "W init: conv (U(+-1/sqrt(fan_in)), PyTorch's) or unit (unit-norm normal) (default conv)"},
	[O_BATCH] = {"batch", 'b', "N", "images per batch (default 128)"},
	[O_EPOCHS] = {"epochs", 'e', "N", "passes over the data (default 1; more than 1 needs a file, not stdin)"},
	[O_SEED] = {"seed", 's', "S", "seed of initialisation and shuffling (default 1)"},
	[O_THREADS] = {"threads", 'j', "N", "worker threads (default: all cores); results depend on seed and N only"},
	[O_SCALE] = {"scale", 0, "S", "multiply pixels by S; auto: 1/255 when the first chunk exceeds 1 (default auto)"},
	[O_SUP] = {"supervised", 0, NULL, "supervised variant: a label term in the dynamics while training"},
	[O_CLASSES] = {"classes", 0, "N", "supervised: number of classes (default: 1 + largest label of chunk 1)"},
	[O_LSCALE] = {"label-scale", 0, "A", "supervised: weight of the one-hot label (default 1)"},
	[O_EMIT] = {"emit", 0, "L", "layer in OUT: nsm (W and M: the dynamics) or conv (W only) (default nsm)"},
	[O_NAME] = {"name", 0, "NAME", "layer name in OUT; parameters NAME.w, NAME.m (default nsm1 or conv1)"},
	[O_ALGO] = {"algo", 0, "A", "nsm, or kmeans (baseline: spherical k-means of normalised patches) (default nsm)"},
	[O_POOL] = {"pool", 0, "P", "nsm output: append `pool max k=P name=pool` (the feature protocol uses 2)"},
	[O_CONVOUT] = {"conv-out", 0, "FILE", "also write the filters as a conv layer model (for snet-train --init)"},
	[O_TRANSFORM] = {"transform", 't', "MODEL", "instead of training: run MODEL (with an nsm layer) over DATA, write a data set"},
	[O_CKPT] = {"checkpoint", 0, "FILE", "checkpoint written atomically after every epoch (default OUT.ckpt)"},
	[O_CKPT_EVERY] = {"checkpoint-every", 0, "N", "also write the checkpoint every N steps"},
	[O_RESUME] = {"resume", 0, "CKPT", "continue from a checkpoint (same data and options)"},
	[O_MAXIMG] = {"max-images", 'n', "N", "use only the first N images of the stream per epoch"},
	[O_LOG] = {"log", 0, "FILE", "per-epoch TSV: epoch steps loss delta active lr images_per_s seconds"},
	[O_BLOCK] = {"block", 0, "N", "samples per cache block of the dynamics (default 256)"},
	[O_STOP] = {"stop-after-steps", 0, "N", "testing: stop as if interrupted after N steps"},
	[O_FORCE] = {"force", 'f', NULL, "write the model even when OUT is a terminal"},
	{0},
};

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { stop_flag = sig; }

typedef struct run {
	sk_nsm_opts no;
	sk_nsm *s;
	const char *data, *out, *ckpt, *transform, *resume, *name, *conv_out, *log_path;
	int emit_conv, pool, algo, init_kind, epochs, sched, step_size, force;
	double lr, lr_min, gamma, scale;
	int scale_auto;
	uint64_t seed;
	int64_t max_images, ckpt_every, stop_after;
	char *cmd;
	/* progress */
	int epoch;            /* 0-based current epoch */
	int64_t estep;        /* steps done in the current epoch */
	int64_t gstep;        /* global steps done */
	int64_t epoch_images; /* images per epoch once known (0 = unknown) */
	int64_t steps_per_epoch; /* once known */
	int64_t *kcount;      /* kmeans: assignments per centroid */
	float *kpatch;
	/* resume state read from the checkpoint */
	int have_state;
	float *wz_state;
	size_t wz_size;
	int64_t *kcount_state; /* kmeans: the counts, K of them */
	size_t kcount_size;
	sk_attrs state;
} run;

static const char *const sched_names[] = {"constant", "linear", "cosine", "step", NULL};
static const char *const reg_names[] = {"weight", "whiten", "none", NULL};
static const char *const init_names[] = {"conv", "unit", NULL};

static int pick(const char *opt, const char *arg, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(arg, names[i]))
			return i;
	char list[256] = "";
	for (int i = 0; names[i]; i++) {
		strcat(list, i ? ", " : "");
		strcat(list, names[i]);
	}
	sk_usage("%s '%s' is not one of: %s", opt, arg, list);
}

static double rate(const run *r)
{
	double t;
	switch (r->sched) {
	case 1: /* linear */
	case 2: /* cosine */
		if (!r->steps_per_epoch)
			t = (double)r->epoch / r->epochs;
		else
			t = (double)(r->epoch * r->steps_per_epoch + r->estep) / ((double)r->epochs * r->steps_per_epoch);
		if (t > 1)
			t = 1;
		if (r->sched == 1)
			return r->lr + (r->lr_min - r->lr) * t;
		return r->lr_min + 0.5 * (r->lr - r->lr_min) * (1 + cos(M_PI * t));
	case 3:
		return r->lr * pow(r->gamma, r->epoch / r->step_size);
	default:
		return r->lr;
	}
}

/* ---- the model written out ---- */

static sk_model *build_model(run *r, int conv)
{
	char spec[1024];
	const sk_nsm_opts *o = &r->no;
	/* --eta auto: the step that suits the final M */
	double eta = o->eta_auto ? 1.0 / sk_nsm_lambda_max(o->k, r->s->M, r->s->pv) : o->eta;
	if (!(eta > 0 && eta < 100))
		eta = eta >= 100 ? 99.0 : 1.0;
	const char *name = r->name ? r->name : conv ? "conv1" : "nsm1";
	if (conv)
		snprintf(spec, sizeof spec,
		         "# nsm-pretrain: NSM filters as a convolution (no bias)\n"
		         "input %d %d %d scale=%.9g\nconv %d k=%d stride=%d bias=0 name=%s\n",
		         o->c, o->h, o->w, r->scale, o->k, o->size, o->stride, name);
	else
		snprintf(spec, sizeof spec,
		         "# nsm-pretrain: NSM dynamics y = [y - eta (M y - W x)]+ as a feature extractor\n"
		         "input %d %d %d scale=%.9g\nnsm %d k=%d stride=%d iters=%d eta=%.9g tol=%.9g name=%s\n",
		         o->c, o->h, o->w, r->scale, o->k, o->size, o->stride, o->iters, eta, o->tol, name);
	if (!conv && r->pool) {
		size_t l = strlen(spec);
		snprintf(spec + l, sizeof spec - l, "pool max k=%d name=pool\n", r->pool);
	}
	sk_model *m = sk_model_from_text(spec, "<nsm-pretrain>");
	if (!m)
		return NULL;
	sk_layer *l = sk_seq_find(m->seq, name);
	if (!l) {
		sk_error("layer '%s' not found in the generated model", name);
		sk_model_free(m);
		return NULL;
	}
	memcpy(l->params[0].w, r->s->W, sizeof(float) * (size_t)o->k * (size_t)r->s->d);
	if (!conv)
		memcpy(l->params[1].w, r->s->M, sizeof(float) * (size_t)o->k * (size_t)o->k);
	if (sk_attrs_setf(&m->attrs, "seed", "%llu", (unsigned long long)r->seed) < 0 ||
	    sk_attrs_set(&m->attrs, "command", r->cmd) < 0 || sk_attrs_set(&m->attrs, "version", sk_version()) < 0 ||
	    sk_attrs_set(&m->attrs, "trainer", "nsm-pretrain") < 0 ||
	    sk_attrs_set(&m->attrs, "algo", r->algo ? "kmeans" : "nsm") < 0 ||
	    sk_attrs_setf(&m->attrs, "epochs", "%d", r->epochs) < 0 ||
	    sk_attrs_setf(&m->attrs, "steps", "%lld", (long long)r->gstep) < 0 ||
	    sk_attrs_setf(&m->attrs, "nsm_tau", "%g", o->tau) < 0 ||
	    sk_attrs_set(&m->attrs, "nsm_reg", reg_names[o->reg]) < 0 ||
	    sk_attrs_setf(&m->attrs, "nsm_supervised", "%d", o->supervised) < 0) {
		sk_model_free(m);
		return NULL;
	}
	return m;
}

/* Options that a checkpoint must match, as one string (named on mismatch). */
static void fingerprint(const run *r, char *buf, size_t len)
{
	const sk_nsm_opts *o = &r->no;
	snprintf(buf, len,
	         "shape=%dx%dx%d filters=%d size=%d stride=%d iters=%d eta=%g%s tol=%g tau=%g reg=%s supervised=%d "
	         "classes=%d label_scale=%g batch=%d threads=%d seed=%llu scale=%.9g lr=%g schedule=%s epochs=%d "
	         "max_images=%lld algo=%s",
	         o->c, o->h, o->w, o->k, o->size, o->stride, o->iters, o->eta, o->eta_auto ? "(auto)" : "", o->tol, o->tau, reg_names[o->reg],
	         o->supervised, o->supervised ? o->classes : 0, o->label_scale, o->max_batch, o->threads,
	         (unsigned long long)r->seed, r->scale, r->lr, sched_names[r->sched], r->epochs,
	         (long long)r->max_images, r->algo ? "kmeans" : "nsm");
}

/* The k-means counts as i32 K x 2: the low and the high 32 bits of each
 * (a count can pass 2^31 in a long run). */
static int write_kcount(const run *r, FILE *f)
{
	int k = r->no.k;
	int64_t shp[2] = {k, 2};
	int32_t *v = malloc(sizeof *v * 2 * (size_t)k);
	if (!v)
		return sk_error("out of memory");
	for (int i = 0; i < k; i++) {
		uint64_t c = (uint64_t)r->kcount[i];
		v[2 * i] = (int32_t)(uint32_t)(c & 0xffffffffu);
		v[2 * i + 1] = (int32_t)(uint32_t)(c >> 32);
	}
	int rc = sk_write_record_raw(f, "state.kmeans.count", SK_I32, 2, shp, v, NULL, 0);
	free(v);
	return rc;
}

static int write_model_file(run *r, const char *path, int conv, int with_state)
{
	sk_model *m = build_model(r, conv);
	sk_ofile *of;
	int nextra = with_state ? 1 + (r->s->Wz != NULL) + (r->kcount != NULL) : 0;
	if (!m)
		return -1;
	if (!(of = sk_ofile_open(path, r->force || with_state))) {
		sk_model_free(m);
		return -1;
	}
	if (sk_model_write(sk_ofile_fp(of), m, nextra) < 0)
		goto fail;
	if (with_state) {
		sk_attrs a;
		char fp[1024];
		int32_t one = 1;
		int64_t shp[2] = {1, 0};
		fingerprint(r, fp, sizeof fp);
		sk_attrs_init(&a);
		if (sk_attrs_setf(&a, "epoch", "%d", r->epoch) < 0 || sk_attrs_setf(&a, "epoch_step", "%lld", (long long)r->estep) < 0 ||
		    sk_attrs_setf(&a, "global_step", "%lld", (long long)r->gstep) < 0 ||
		    sk_attrs_setf(&a, "steps_per_epoch", "%lld", (long long)r->steps_per_epoch) < 0 ||
		    sk_attrs_setf(&a, "epoch_images", "%lld", (long long)r->epoch_images) < 0 ||
		    sk_attrs_set(&a, "options", fp) < 0 || sk_attrs_set(&a, "command", r->cmd) < 0 ||
		    sk_write_record_raw(sk_ofile_fp(of), "state.nsm", SK_I32, 1, shp, &one, &a, 0) < 0) {
			sk_attrs_free(&a);
			goto fail;
		}
		sk_attrs_free(&a);
		if (r->s->Wz) {
			shp[0] = r->no.k;
			shp[1] = r->no.classes;
			if (sk_write_record_raw(sk_ofile_fp(of), "state.nsm.wz", SK_F32, 2, shp, r->s->Wz, NULL, 0) < 0)
				goto fail;
		}
		if (r->kcount && write_kcount(r, sk_ofile_fp(of)) < 0)
			goto fail;
	}
	sk_model_free(m);
	return sk_ofile_commit(of);
fail:
	sk_ofile_abort(of);
	sk_model_free(m);
	return -1;
}

/* ---- resume ---- */

static int read_state(sk_reader *rd, const sk_header *h, void *arg)
{
	run *r = arg;
	if (!strcmp(h->name, "state.nsm")) {
		if (sk_attrs_copy(&r->state, &h->attrs) < 0)
			return -1;
		r->have_state = 1;
		return sk_reader_skip(rd, h);
	}
	if (!strcmp(h->name, "state.nsm.wz")) {
		if (h->dtype != SK_F32 || h->ndim != 2 || h->rawbytes > ((uint64_t)1 << 30))
			return sk_error("%s: state.nsm.wz must be a f32 matrix", sk_reader_name(rd));
		free(r->wz_state);
		r->wz_size = (size_t)(h->rawbytes / sizeof(float));
		if (!(r->wz_state = malloc(h->rawbytes ? h->rawbytes : 1)))
			return sk_error("out of memory");
		return sk_reader_payload_into(rd, h, r->wz_state);
	}
	if (!strcmp(h->name, "state.kmeans.count")) {
		if (h->dtype != SK_I32 || h->ndim != 2 || h->shape[1] != 2 || h->shape[0] > 4096)
			return sk_error("%s: state.kmeans.count must be i32 K x 2 (K up to 4096)", sk_reader_name(rd));
		int32_t *v = malloc(h->rawbytes);
		if (!v)
			return sk_error("out of memory");
		if (sk_reader_payload_into(rd, h, v) < 0) {
			free(v);
			return -1;
		}
		free(r->kcount_state);
		r->kcount_size = (size_t)h->shape[0];
		if (!(r->kcount_state = malloc(sizeof *r->kcount_state * r->kcount_size))) {
			free(v);
			return sk_error("out of memory");
		}
		for (size_t i = 0; i < r->kcount_size; i++) {
			uint64_t c = (uint64_t)(uint32_t)v[2 * i] | (uint64_t)(uint32_t)v[2 * i + 1] << 32;
			if (c > (uint64_t)INT64_MAX) {
				free(v);
				return sk_error("%s: state.kmeans.count: count %zu is out of range", sk_reader_name(rd), i);
			}
			r->kcount_state[i] = (int64_t)c;
		}
		free(v);
		return 0;
	}
	return sk_reader_skip(rd, h);
}

static long long state_ll(const run *r, const char *key)
{
	const char *v = sk_attrs_get(&r->state, key);
	return v ? atoll(v) : -1;
}

static void do_resume(run *r)
{
	sk_model *m;
	sk_layer *l = NULL;
	const char *fp_old;
	char fp[1024];
	if (!(m = sk_model_load_ex(r->resume, read_state, r)))
		sk_die_lib();
/* errors after the load free the model first (no leak reports at exit) */
#define RESUME_DIE(...) do { sk_model_free(m); sk_die(__VA_ARGS__); } while (0)
	if (!r->have_state)
		RESUME_DIE("%s: not an nsm-pretrain checkpoint (no state.nsm record)", r->resume);
	fingerprint(r, fp, sizeof fp);
	fp_old = sk_attrs_get(&r->state, "options");
	if (!fp_old || strcmp(fp_old, fp)) {
		/* name the first option that differs */
		const char *a = fp_old ? fp_old : "", *b = fp;
		while (*a && *a == *b)
			a++, b++;
		while (a > (fp_old ? fp_old : "") && a[-1] != ' ')
			a--, b--;
		char wa[128], wb[128];
		sscanf(a, "%127s", wa);
		sscanf(b, "%127s", wb);
		RESUME_DIE("%s: the checkpoint was made with %s, this run has %s", r->resume, wa, wb);
	}
	for (int i = 0; i < m->seq->n && !l; i++)
		if (m->seq->layers[i]->nparams >= 2 && !strcmp(m->seq->layers[i]->ops->type, "nsm"))
			l = m->seq->layers[i];
	if (!l || l->params[0].size != (size_t)r->no.k * (size_t)r->s->d || l->params[1].size != (size_t)r->no.k * (size_t)r->no.k)
		RESUME_DIE("%s: the checkpoint's nsm layer does not match %d filters of %dx%dx%d", r->resume, r->no.k, r->no.c,
		       r->no.size, r->no.size);
	memcpy(r->s->W, l->params[0].w, l->params[0].size * sizeof(float));
	memcpy(r->s->M, l->params[1].w, l->params[1].size * sizeof(float));
	if (r->s->Wz) {
		if (!r->wz_state || r->wz_size != (size_t)r->no.k * (size_t)r->no.classes)
			RESUME_DIE("%s: the checkpoint lacks the label encoder (state.nsm.wz)", r->resume);
		memcpy(r->s->Wz, r->wz_state, r->wz_size * sizeof(float));
	}
	if (r->kcount) {
		if (!r->kcount_state || r->kcount_size != (size_t)r->no.k)
			RESUME_DIE("%s: the checkpoint lacks the k-means counts (state.kmeans.count; made by an older "
			           "nsm-pretrain?)", r->resume);
		memcpy(r->kcount, r->kcount_state, r->kcount_size * sizeof *r->kcount);
	}
	/* the model records the command that started the run */
	if (sk_attrs_get(&r->state, "command")) {
		char *c = strdup(sk_attrs_get(&r->state, "command"));
		if (!c)
			RESUME_DIE("out of memory");
		free(r->cmd);
		r->cmd = c;
	}
	r->epoch = (int)state_ll(r, "epoch");
	r->estep = state_ll(r, "epoch_step");
	r->gstep = state_ll(r, "global_step");
	r->steps_per_epoch = state_ll(r, "steps_per_epoch");
	r->epoch_images = state_ll(r, "epoch_images");
	if (r->epoch < 0 || r->estep < 0 || r->gstep < 0 || r->steps_per_epoch < 0 || r->epoch_images < 0)
		sk_die("%s: damaged state.nsm record", r->resume);
	sk_model_free(m);
	if (r->epoch >= r->epochs)
		sk_info("resuming %s: it already finished %d of %d epochs; writing the model only", r->resume, r->epoch,
		        r->epochs);
	else
		sk_info("resuming %s at epoch %d, step %lld (global step %lld)", r->resume, r->epoch + 1,
		        (long long)r->estep, (long long)r->gstep);
#undef RESUME_DIE
}

/* ---- the training loop ---- */

static int shape_of(const int64_t *s4, int *c, int *h, int *w)
{
	int64_t d[4];
	int n = 0;
	for (int i = 0; i < 4; i++)
		if (s4[i] > 0)
			d[n++] = s4[i];
	if (n == 3) {
		*c = (int)d[0];
		*h = (int)d[1];
		*w = (int)d[2];
	} else if (n == 2) {
		*c = 1;
		*h = (int)d[0];
		*w = (int)d[1];
	} else
		return -1;
	return 0;
}

/* ---- the k-means baseline ---- */

#define KM_PATCHES 16   /* random positions per image */

/* Mini-batch spherical k-means (Sculley's per-centre rate 1/count) on patches
 * with their mean removed and scaled to unit norm; the centres (rows of W)
 * are renormalised after each batch.  Flat patches are skipped. */
static void kmeans_step(run *r, int n, const float *x)
{
	sk_nsm *s = r->s;
	const sk_nsm_opts *o = &r->no;
	int K = o->k, D = s->d, P = s->p;
	float *W = s->W, *pt = r->kpatch;
	sk_rng g = sk_rng_make(r->seed, sk_rng_stream(0x6b6d, (uint64_t)r->gstep, 0));
	if (r->gstep == 0 && r->estep == 0)
		for (int k = 0; k < K; k++) {
			double n2 = 0;
			for (int d = 0; d < D; d++)
				n2 += (double)W[(size_t)k * D + d] * W[(size_t)k * D + d];
			for (int d = 0; d < D; d++)
				W[(size_t)k * D + d] = (float)(W[(size_t)k * D + d] / sqrt(n2 > 0 ? n2 : 1));
		}
	for (int b = 0; b < n; b++)
		for (int t = 0; t < KM_PATCHES; t++) {
			int q = (int)sk_rng_next_below(&g, (uint64_t)P), oy = q / s->wo, ox = q % s->wo, d = 0;
			double mean = 0, n2 = 0;
			for (int c = 0; c < o->c; c++)
				for (int i = 0; i < o->size; i++)
					for (int j = 0; j < o->size; j++)
						pt[d++] = x[(((size_t)b * o->c + c) * o->h + (size_t)oy * o->stride + i) * o->w +
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
			int best = 0;
			double bd = -1e30;
			for (int k = 0; k < K; k++) {
				double dot = 0;
				for (d = 0; d < D; d++)
					dot += (double)W[(size_t)k * D + d] * pt[d];
				if (dot > bd) {
					bd = dot;
					best = k;
				}
			}
			r->kcount[best] += 1;
			float a = (float)(1.0 / (double)r->kcount[best]);
			for (d = 0; d < D; d++)
				W[(size_t)best * D + d] += a * (pt[d] * inv - W[(size_t)best * D + d]);
		}
	for (int k = 0; k < K; k++) {
		double n2 = 0;
		for (int d = 0; d < D; d++)
			n2 += (double)W[(size_t)k * D + d] * W[(size_t)k * D + d];
		if (n2 > 0)
			for (int d = 0; d < D; d++)
				W[(size_t)k * D + d] = (float)(W[(size_t)k * D + d] / sqrt(n2));
	}
}

/* A training step failed: say which, and name the last good checkpoint when
 * there is one. */
static void step_failed(const run *r) __attribute__((noreturn));
static void step_failed(const run *r)
{
	int have = access(r->ckpt, F_OK) == 0;
	sk_die("step %lld (epoch %d): %s%s%s", (long long)r->gstep + 1, r->epoch + 1, sk_errmsg(),
	       have ? "; the last good checkpoint is " : "", have ? r->ckpt : "");
}

/* ---- --transform: features of a model as a data set ---- */

/* Run `m` over the data stream in batches and write its outputs as `images`
 * records (f32, one per input chunk) with the chunk's `labels`: a data set
 * that snet-train reads.  The model's nsm layers run on the threaded solver;
 * the other layers run as usual. */
static int transform(run *r)
{
	sk_model *m = sk_model_load(r->transform);
	sk_chunks *ch;
	sk_ofile *of;
	sk_nsm **solv;
	sk_ctx ctx;
	int B = r->no.max_batch, nl, threads = r->no.threads;
	size_t insz, outsz;
	float *obuf = NULL;
	int64_t total = 0, chunk = 0;
	if (!m)
		sk_die_lib();
	nl = m->seq->n;
	insz = sk_shape_size(m->in);
	outsz = sk_shape_size(m->seq->out);
	if (sk_seq_setup(m->seq, B) < 0)
		sk_die_lib();
	if (!(solv = calloc((size_t)nl, sizeof *solv)))
		sk_die("out of memory");
	for (int i = 0; i < nl; i++) {
		sk_layer *l = m->seq->layers[i];
		if (strcmp(l->ops->type, "nsm"))
			continue;
		/* the layer's options, read back from its parameters and spec line */
		sk_nsm_opts o;
		const sk_specline *sl = &m->spec->lines[i];
		sk_nsm_defaults(&o);
		o.k = (int)l->params[0].shape[0];
		o.c = l->in.d[0];
		o.h = l->in.d[1];
		o.w = l->in.d[2];
		o.size = (int)l->params[0].shape[2];
		o.max_batch = B;
		o.threads = threads;
		for (int k = 0; k < sl->nkv; k++) {
			if (!strcmp(sl->key[k], "stride"))
				o.stride = atoi(sl->val[k]);
			else if (!strcmp(sl->key[k], "iters"))
				o.iters = atoi(sl->val[k]);
			else if (!strcmp(sl->key[k], "eta"))
				o.eta = strtof(sl->val[k], NULL);
			else if (!strcmp(sl->key[k], "tol"))
				o.tol = strtof(sl->val[k], NULL);
		}
		if (!(solv[i] = sk_nsm_create(&o, 0)))
			sk_die_lib();
		solv[i]->W = l->params[0].w;
		solv[i]->M = l->params[1].w;
		if (solv[i]->ho != l->out.d[1] || solv[i]->wo != l->out.d[2])
			sk_die("%s: layer %s: could not reproduce its options", r->transform, l->name);
	}
	if (threads > 1)
		openblas_set_num_threads(1);
	memset(&ctx, 0, sizeof ctx);
	if (!(ch = sk_chunks_open(r->data)))
		sk_die_lib();
	if (!(of = sk_ofile_open(r->out, r->force)))
		sk_die_lib();
	for (;;) {
		int64_t n, s4[4], per = 1;
		const float *x;
		const int32_t *lab;
		int st = sk_chunks_next(ch, &n, &x, &lab, s4);
		if (st < 0)
			goto fail;
		if (st == 0)
			break;
		chunk++;
		for (int d = 0; d < 4; d++)
			per *= s4[d] > 0 ? s4[d] : 1;
		if ((size_t)per != insz) {
			char a[64], b[64];
			sk_error("%s: chunk %lld: examples are %s but the model's input is %s", r->data, (long long)chunk,
			         sk_shape_str(4, s4, a, sizeof a), sk_shape_fmt(m->in, b, sizeof b));
			goto fail;
		}
		if (r->max_images && total + n > r->max_images)
			n = r->max_images - total;
		sk_free(obuf);
		size_t ob;
		if (sk_mul_size((size_t)(n > 0 ? n : 1), outsz, &ob) < 0 || !(obuf = sk_alloc_array(ob, sizeof(float))))
			goto fail;
		for (int64_t s0 = 0; s0 < n; s0 += B) {
			int b = (int)(n - s0 < B ? n - s0 : B);
			const float *xin = x + (size_t)s0 * insz;
			for (int i = 0; i < nl; i++) {
				sk_layer *l = m->seq->layers[i];
				int rc = solv[i] ? sk_nsm_forward(solv[i], b, xin, NULL, m->seq->act[i], NULL)
				                 : l->ops->forward(l, &ctx, b, xin, m->seq->act[i]);
				if (rc < 0) {
					sk_error_prefix("%s", l->name);
					goto fail;
				}
				xin = m->seq->act[i];
			}
			memcpy(obuf + (size_t)s0 * outsz, xin, sizeof(float) * (size_t)b * outsz);
			sk_progress("nsm-pretrain --transform", (double)(total + s0 + b), 0);
		}
		{
			int64_t shp[5];
			int nd = 1;
			shp[0] = n;
			for (int d = 0; d < m->seq->out.n; d++)
				shp[nd++] = m->seq->out.d[d];
			if (sk_write_record_raw(sk_ofile_fp(of), "images", SK_F32, nd, shp, obuf, NULL, 0) < 0 ||
			    (lab && sk_write_record_raw(sk_ofile_fp(of), "labels", SK_I32, 1, shp, lab, NULL, 0) < 0))
				goto fail;
		}
		total += n;
		if (r->max_images && total >= r->max_images)
			break;
	}
	sk_progress_end();
	if (sk_ofile_commit(of) < 0) {
		of = NULL;
		goto fail;
	}
	sk_chunks_close(ch);
	sk_info("%lld examples: %s features of %s", (long long)total, sk_shape_fmt(m->seq->out, (char[64]){0}, 64),
	        r->transform);
	for (int i = 0; i < nl; i++)
		sk_nsm_free(solv[i]);
	free(solv);
	sk_free(obuf);
	sk_model_free(m);
	return 0;
fail:
	sk_progress_end();
	if (of)
		sk_ofile_abort(of);
	sk_die_lib();
}

int main(int argc, char **argv)
{
	sk_cli cli = {"nsm-pretrain", "[options] [DATA|-] -o OUT",
	              "learn convolutional filters by nonnegative similarity matching (local Hebbian rules)", opts, 0};
	run r;
	const char *arg;
	int idx, first, classes = 0;
	char *ckpt_buf = NULL;
	FILE *logf = NULL;
	memset(&r, 0, sizeof r);
	sk_nsm_defaults(&r.no);
	r.data = "-";
	r.epochs = 1;
	r.lr = 0.05;
	r.gamma = 0.5;
	r.step_size = 1;
	r.seed = 1;
	r.scale_auto = 1;
	r.no.threads = sk_ncores();
	sk_attrs_init(&r.state);
	sk_cli_init(&cli, argc, argv);
	{
		/* the recorded command leaves out what only steers this invocation,
		 * so a resumed run writes the same bytes as an uninterrupted one */
		char **av = malloc(sizeof *av * (size_t)(argc + 1));
		int ac = 0;
		if (!av)
			sk_die("out of memory");
		for (int i = 0; i < argc; i++) {
			if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--stop-after-steps")) {
				i++;
				continue;
			}
			if (!strncmp(argv[i], "--resume=", 9) || !strncmp(argv[i], "--stop-after-steps=", 19))
				continue;
			av[ac++] = argv[i];
		}
		av[ac] = NULL;
		r.cmd = sk_cmdline(ac, av);
		free(av);
	}
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (idx) {
		case O_OUTPUT: r.out = arg; break;
		case O_FILTERS: r.no.k = (int)sk_arg_long("--filters", arg, 1, 4096); break;
		case O_SIZE: r.no.size = (int)sk_arg_long("--size", arg, 1, 1024); break;
		case O_STRIDE: r.no.stride = (int)sk_arg_long("--stride", arg, 1, 64); break;
		case O_TAU: r.no.tau = (float)sk_arg_double("--tau", arg, 1e-6, 1e6); break;
		case O_LR: r.lr = sk_arg_double("--lr", arg, 0, 1e3); break;
		case O_SCHED: r.sched = pick("--schedule", arg, sched_names); break;
		case O_LRMIN: r.lr_min = sk_arg_double("--lr-min", arg, 0, 1e3); break;
		case O_STEPSIZE: r.step_size = (int)sk_arg_long("--step-size", arg, 1, 1000000); break;
		case O_GAMMA: r.gamma = sk_arg_double("--gamma", arg, 0, 1e3); break;
		case O_ITERS: r.no.iters = (int)sk_arg_long("--iters", arg, 1, 100000); break;
		case O_ETA:
			if (!strcmp(arg, "auto"))
				r.no.eta_auto = 1;
			else {
				r.no.eta = (float)sk_arg_double("--eta", arg, 1e-6, 99.999);
				r.no.eta_auto = 0;
			}
			break;
		case O_TOL: r.no.tol = (float)sk_arg_double("--tol", arg, 0, 0.999); break;
		case O_REG: r.no.reg = pick("--reg", arg, reg_names); break;
		case O_INIT: r.init_kind = pick("--init", arg, init_names); break;
		case O_BATCH: r.no.max_batch = (int)sk_arg_long("--batch", arg, 1, 1 << 20); break;
		case O_EPOCHS: r.epochs = (int)sk_arg_long("--epochs", arg, 0, 1000000); break;
		case O_SEED: r.seed = (uint64_t)sk_arg_long("--seed", arg, 0, 0x7fffffffffffffffL); break;
		case O_THREADS: r.no.threads = (int)sk_arg_long("--threads", arg, 1, 256); break;
		case O_SCALE:
			if (!strcmp(arg, "auto"))
				r.scale_auto = 1;
			else {
				r.scale = sk_arg_double("--scale", arg, 1e-30, 1e30);
				r.scale_auto = 0;
			}
			break;
		case O_SUP: r.no.supervised = 1; break;
		case O_CLASSES: classes = (int)sk_arg_long("--classes", arg, 1, 100000); break;
		case O_LSCALE: r.no.label_scale = (float)sk_arg_double("--label-scale", arg, 0, 1e6); break;
		case O_EMIT: r.emit_conv = pick("--emit", arg, (const char *const[]){"nsm", "conv", NULL}); break;
		case O_NAME:
			for (const char *c = arg; *c; c++)
				if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
				      *c == '_' || *c == '-'))
					sk_usage("--name '%s' may hold only letters, digits, '_' and '-'", arg);
			if (!*arg || strlen(arg) > 64)
				sk_usage("--name must have 1 to 64 characters");
			r.name = arg;
			break;
		case O_ALGO: r.algo = pick("--algo", arg, (const char *const[]){"nsm", "kmeans", NULL}); break;
		case O_POOL: r.pool = (int)sk_arg_long("--pool", arg, 1, 1024); break;
		case O_CONVOUT: r.conv_out = arg; break;
		case O_TRANSFORM: r.transform = arg; break;
		case O_CKPT: r.ckpt = arg; break;
		case O_CKPT_EVERY: r.ckpt_every = sk_arg_long("--checkpoint-every", arg, 1, 0x7fffffffffffffffL); break;
		case O_RESUME: r.resume = arg; break;
		case O_MAXIMG: r.max_images = sk_arg_long("--max-images", arg, 1, 0x7fffffffffffffffL); break;
		case O_LOG: r.log_path = arg; break;
		case O_BLOCK: r.no.block = (int)sk_arg_long("--block", arg, 1, 1 << 20); break;
		case O_STOP: r.stop_after = sk_arg_long("--stop-after-steps", arg, 1, 0x7fffffffffffffffL); break;
		case O_FORCE: r.force = 1; break;
		}
	}
	if (first < argc)
		r.data = argv[first++];
	if (first < argc)
		sk_usage("one data stream expected, got also '%s' (try --help)", argv[first]);
	if (!r.out)
		sk_usage("-o OUT is required (try --help)");
	if (r.transform) {
		int rc = transform(&r);
		free(r.cmd);
		return rc;
	}
	if (!strcmp(r.data, "-") && r.epochs > 1)
		sk_usage("--epochs %d reads the data more than once: give a file, not stdin", r.epochs);
	if (classes && !r.no.supervised)
		sk_usage("--classes applies to --supervised");
	if (r.pool && r.emit_conv)
		sk_usage("--pool applies to the nsm output, not --emit conv");
	if (r.conv_out && r.emit_conv)
		sk_usage("--conv-out and --emit conv both write a conv model; use one");
	if (!r.ckpt) {
		if (!strcmp(r.out, "-"))
			sk_usage("writing the model to stdout needs --checkpoint FILE");
		size_t n = strlen(r.out) + 6;
		if (!(ckpt_buf = malloc(n)))
			sk_die("out of memory");
		snprintf(ckpt_buf, n, "%s.ckpt", r.out);
		r.ckpt = ckpt_buf;
	}
	/* our workers share the cores: OpenBLAS runs single-threaded inside them */
	if (r.no.threads > 1)
		openblas_set_num_threads(1);

	/* the first chunk gives the shape, the scale and the classes */
	sk_chunks *ch = sk_chunks_open(r.data);
	int64_t n, s4[4];
	const float *x;
	const int32_t *lab;
	int st;
	if (!ch)
		sk_die_lib();
	st = sk_chunks_next(ch, &n, &x, &lab, s4);
	if (st < 0)
		sk_die_lib();
	if (st == 0 || n == 0)
		sk_die("%s: no images in the stream", r.data);
	if (shape_of(s4, &r.no.c, &r.no.h, &r.no.w) < 0) {
		char b[64];
		sk_die("%s: images must be N x C x H x W or N x H x W, got examples of %s", r.data,
		       sk_shape_str(4, s4, b, sizeof b));
	}
	if (r.scale_auto) {
		float mx = 0;
		for (int64_t i = 0; i < n * r.no.c * r.no.h * r.no.w; i++)
			if (x[i] > mx)
				mx = x[i];
		r.scale = mx > 1.0f ? 1.0 / 255.0 : 1.0;
	}
	if (r.no.supervised) {
		if (!lab)
			sk_die("%s: --supervised needs labels, but the first chunk has none", r.data);
		/* labels are class indices: 0 .. classes - 1 (in 64 bits: a
		 * label may be INT32_MAX) */
		int64_t top = -1;
		for (int64_t i = 0; i < n; i++) {
			if (lab[i] < 0)
				sk_die("%s: label %d of example %lld is negative (labels are class indices 0, 1, ...)", r.data,
				       (int)lab[i], (long long)i);
			if (lab[i] > top)
				top = lab[i];
		}
		if (classes && top >= classes)
			sk_die("%s: label %lld of the first chunk is not below --classes %d", r.data, (long long)top, classes);
		if (!classes) {
			if (top + 1 > 100000)
				sk_die("%s: labels up to %lld would make %lld classes (at most 100000; labels are class indices "
				       "0, 1, ...)", r.data, (long long)top, (long long)top + 1);
			if (top + 1 < 2)
				sk_die("%s: found labels up to %lld; give --classes N", r.data, (long long)top);
			classes = (int)(top + 1);
		}
		r.no.classes = classes;
	}
	if (!(r.s = sk_nsm_create(&r.no, 1)))
		sk_die_lib();
	sk_nsm_init(r.s, r.init_kind, r.seed);
	if (r.algo) {
		if (r.no.supervised)
			sk_usage("--algo kmeans has no supervised variant");
		if (!(r.kcount = sk_alloc_array((size_t)r.no.k, sizeof *r.kcount)) ||
		    !(r.kpatch = sk_alloc_array((size_t)r.s->d, sizeof *r.kpatch)))
			sk_die_lib();
	}
	if (r.resume)
		do_resume(&r);
	if (r.log_path) {
		logf = fopen(r.log_path, r.resume ? "a" : "w");
		if (!logf)
			sk_die("%s: cannot open log: %m", r.log_path);
		if (!r.resume || ftell(logf) == 0)
			fprintf(logf, "epoch\tsteps\tloss\tdelta\tactive\tlr\timages_per_s\tseconds\n");
	}
	if (r.algo)
		sk_info("k-means baseline: %d filters %dx%dx%d on %dx%dx%d images (scale %.6g), %d patches an image, batch %d",
		        r.no.k, r.no.c, r.no.size, r.no.size, r.no.c, r.no.h, r.no.w, r.scale, KM_PATCHES, r.no.max_batch);
	else
	sk_info("%d filters %dx%dx%d stride %d on %dx%dx%d images (scale %.6g), %d dynamics steps, eta %g, tau %g, "
	        "reg %s%s, batch %d, %d thread%s",
	        r.no.k, r.no.c, r.no.size, r.no.size, r.no.stride, r.no.c, r.no.h, r.no.w, r.scale, r.no.iters,
	        r.no.eta, r.no.tau, reg_names[r.no.reg], r.no.supervised ? ", supervised" : "", r.no.max_batch,
	        r.no.threads, r.no.threads == 1 ? "" : "s");
	{
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}

	/* buffers: one batch of scaled images and its labels; the chunk order */
	size_t per = (size_t)r.no.c * (size_t)r.no.h * (size_t)r.no.w;
	float *bx = sk_alloc_array((size_t)r.no.max_batch * per, sizeof(float));
	int32_t *bl = sk_alloc_array((size_t)r.no.max_batch, sizeof(int32_t));
	int64_t *perm = NULL, permcap = 0;
	if (!bx || !bl)
		sk_die_lib();
	int stopped = 0;
	for (; r.epoch < r.epochs && !stopped; r.epoch++) {
		struct timespec t0, t1;
		double lsum = 0, dlast = 0, alast = 0, elast = r.no.eta;
		int64_t nst = 0, seen = 0, skip = r.estep * r.no.max_batch, ep_images = 0, chunk = 0;
		int fill = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (!ch) {
			if (!(ch = sk_chunks_open(r.data)))
				sk_die_lib();
			st = sk_chunks_next(ch, &n, &x, &lab, s4);
			if (st < 0)
				sk_die_lib();
		}
		while (st > 0 && !stopped) {
			int c2, h2, w2;
			if (shape_of(s4, &c2, &h2, &w2) < 0 || c2 != r.no.c || h2 != r.no.h || w2 != r.no.w) {
				char b[64];
				sk_die("%s: chunk %lld has examples of %s, the first had %dx%dx%d", r.data, (long long)chunk + 1,
				       sk_shape_str(4, s4, b, sizeof b), r.no.c, r.no.h, r.no.w);
			}
			if (r.no.supervised && !lab)
				sk_die("%s: chunk %lld has no labels (--supervised)", r.data, (long long)chunk + 1);
			if (r.max_images && ep_images + n > r.max_images)
				n = r.max_images - ep_images;
			if (n > permcap) {
				sk_free(perm);
				if (!(perm = sk_alloc_array((size_t)n, sizeof *perm)))
					sk_die_lib();
				permcap = n;
			}
			sk_rng g = sk_rng_make(r.seed, sk_rng_stream(0x6e736d, (uint64_t)r.epoch, (uint64_t)chunk));
			sk_rng_permute(&g, perm, n);
			for (int64_t i = 0; i < n && !stopped; i++) {
				ep_images++;
				if (seen < skip) { /* resume: replay the order up to the checkpoint */
					seen++;
					continue;
				}
				const float *src = x + (size_t)perm[i] * per;
				float *dst = bx + (size_t)fill * per;
				float sc = (float)r.scale;
				for (size_t k = 0; k < per; k++)
					dst[k] = src[k] * sc;
				bl[fill] = lab ? lab[perm[i]] : 0;
				if (++fill == r.no.max_batch) {
					sk_nsm_stats ss;
					double lr = rate(&r);
					memset(&ss, 0, sizeof ss);
					if (r.algo)
						kmeans_step(&r, fill, bx);
					else if (sk_nsm_step(r.s, fill, bx, r.no.supervised ? bl : NULL, (float)lr, &ss) < 0) {
						sk_free(perm);
						step_failed(&r);
					}
					fill = 0;
					r.estep++;
					r.gstep++;
					nst++;
					lsum += ss.loss;
					dlast = ss.delta;
					alast = ss.active;
					elast = ss.eta;
					sk_progress("nsm-pretrain", (double)(r.estep * r.no.max_batch),
					            r.epoch_images ? (double)r.epoch_images : 0);
					if (stop_flag || (r.stop_after && r.gstep >= r.stop_after))
						stopped = 1;
					else if (r.ckpt_every && r.gstep % r.ckpt_every == 0 &&
					         write_model_file(&r, r.ckpt, 0, 1) < 0)
						sk_die_lib();
				}
			}
			chunk++;
			if (stopped || (r.max_images && ep_images >= r.max_images))
				break;
			st = sk_chunks_next(ch, &n, &x, &lab, s4);
			if (st < 0)
				sk_die_lib();
		}
		if (stopped)
			break;
		if (fill > 0) { /* the epoch's last, partial batch */
			sk_nsm_stats ss;
			memset(&ss, 0, sizeof ss);
			if (r.algo)
				kmeans_step(&r, fill, bx);
			else if (sk_nsm_step(r.s, fill, bx, r.no.supervised ? bl : NULL, (float)rate(&r), &ss) < 0) {
				sk_free(perm);
				step_failed(&r);
			}
			r.estep++;
			r.gstep++;
			nst++;
			lsum += ss.loss;
			dlast = ss.delta;
			alast = ss.active;
			elast = ss.eta;
		}
		sk_progress_end();
		sk_chunks_close(ch);
		ch = NULL;
		st = 0;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
		if (ep_images == 0)
			sk_die("%s: no images in the stream", r.data);
		r.epoch_images = ep_images;
		r.steps_per_epoch = r.estep;
		sk_info("epoch %d/%d: %lld steps, loss %.5f, last |dy|/|y| %.2e, active %.3f, eta %.3g, lr %.4g, "
		        "%.0f images/s, %.1f s",
		        r.epoch + 1, r.epochs, (long long)nst, nst ? lsum / nst : 0, dlast, alast, elast, rate(&r),
		        secs > 0 ? (double)(ep_images - skip) / secs : 0, secs);
		if (logf) {
			fprintf(logf, "%d\t%lld\t%.6f\t%.3e\t%.4f\t%.6g\t%.1f\t%.2f\n", r.epoch + 1, (long long)r.gstep,
			        nst ? lsum / nst : 0, dlast, alast, rate(&r), secs > 0 ? (double)(ep_images - skip) / secs : 0,
			        secs);
			fflush(logf);
		}
		r.estep = 0;
		/* checkpoint at the epoch's end: it resumes at the next epoch */
		r.epoch++;
		int rc = write_model_file(&r, r.ckpt, 0, 1);
		r.epoch--;
		if (rc < 0)
			sk_die_lib();
	}
	if (ch)
		sk_chunks_close(ch);
	if (stopped) {
		if (write_model_file(&r, r.ckpt, 0, 1) < 0)
			sk_die_lib();
		sk_progress_end();
		if (stop_flag)
			sk_warn("interrupted by %s; checkpoint written to %s (continue with --resume %s)",
			        stop_flag == SIGINT ? "SIGINT" : "SIGTERM", r.ckpt, r.ckpt);
		else
			sk_warn("stopped after %lld steps; checkpoint written to %s (continue with --resume %s)",
			        (long long)r.stop_after, r.ckpt, r.ckpt);
		exit(EXIT_STOPPED);
	}
	if (logf)
		fclose(logf);
	if (write_model_file(&r, r.out, r.emit_conv, 0) < 0)
		sk_die_lib();
	if (r.conv_out && write_model_file(&r, r.conv_out, 1, 0) < 0)
		sk_die_lib();
	sk_nsm_free(r.s);
	sk_free(bx);
	sk_free(bl);
	sk_free(perm);
	free(ckpt_buf);
	free(r.cmd);
	free(r.wz_state);
	free(r.kcount_state);
	sk_free(r.kcount);
	sk_free(r.kpatch);
	sk_attrs_free(&r.state);
	return 0;
}
