/* train.c: data-parallel replicas on the thread pool, the epoch loop,
 * validation, checkpoints and resume (see sk_train.h). */
#include "sk_train.h"
#include "sk_cpu.h"
#include "sk_kernels.h"
#include "sk_loss.h"
#include "sk_pool.h"
#include "sk_rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *openblas_get_corename(void);

#define SHUFFLE_STREAM 0x73687566ULL   /* "shuf" */
#define UNSUP_STREAM 0x756e7375ULL     /* "unsu" */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- losses ---- */

/* Loss over n examples of k outputs z against labels y, as a sum over the
 * examples; writes the gradient of (sum / denom) into dz when non-NULL and
 * adds the examples whose largest output is the label to *correct.  MSE
 * compares with one-hot targets built in onehot (n * k floats). */
static double loss_eval(sk_loss_kind kind, int n, int k, const float *z, const int32_t *y, float *dz, double denom,
                        float *onehot, int64_t *correct)
{
	if (kind == SK_LOSS_XENT) {
		int ok = 0;
		double l = sk_loss_xent(n, k, z, y, denom, dz, &ok);
		*correct += ok;
		return l * denom;
	}
	memset(onehot, 0, sizeof(float) * (size_t)n * (size_t)k);
	for (int i = 0; i < n; i++) {
		onehot[(size_t)i * (size_t)k + (size_t)y[i]] = 1.0f;
		if (sk_argmax(k, z + (size_t)i * (size_t)k) == y[i])
			(*correct)++;
	}
	return sk_loss_mse(n, k, z, onehot, denom, dz) * denom;
}

/* ---- the team ---- */

enum job_kind { JOB_TRAIN, JOB_EVAL, JOB_FORWARD };

typedef struct worker {
	int id;
	sk_seq *seq;          /* replica (worker 0: the master sequence) */
	sk_param **ps;        /* its parameters in stream order */
	float *x, *dl, *tmp, *onehot;
	int32_t *y;
	void *mem;            /* the block of the arrays above */
	double loss;
	int64_t correct;
} worker;

struct sk_team {
	sk_model *m;
	int T, share_max, max_batch, np;
	int S, g0;                 /* shares over all processes; this process's first share */
	int micro;                 /* training shares run in micro-batches of this many (0: whole) */
	size_t insize, outsize;
	worker *w;
	sk_pool *pool;
	/* the current job */
	enum job_kind kind;
	int n;                     /* examples in the batch */
	const sk_dataset *data;
	const int64_t *idx;        /* JOB_TRAIN: indices; JOB_EVAL: NULL = from `first` */
	int64_t first;
	const float *xin;          /* JOB_FORWARD input */
	float *out;                /* JOB_FORWARD output */
	const char *layer;
	size_t layer_size;
	int64_t epoch, step;
	uint64_t seed;
	int crop_pad, flip;
	sk_loss_kind loss;
	double denom;
};

/* The output buffer of a named layer in a sequence (searched recursively). */
static float *find_act(sk_seq *q, const char *name, size_t *size)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		if (!strcmp(l->name, name)) {
			*size = sk_shape_size(l->out);
			return q->act[i];
		}
		for (int c = 0; c < l->nchild; c++) {
			float *a = find_act(l->child[c], name, size);
			if (a)
				return a;
		}
	}
	return NULL;
}

static int run_share(void *arg, int id)
{
	sk_team *t = arg;
	worker *w = &t->w[id];
	/* training and evaluation batches are cut into S shares over all
	 * processes; plain forward passes stay local */
	int S = t->kind == JOB_FORWARD ? t->T : t->S, gs = (t->kind == JOB_FORWARD ? 0 : t->g0) + w->id;
	int lo = (int)((int64_t)t->n * gs / S), hi = (int)((int64_t)t->n * (gs + 1) / S);
	int n = hi - lo, k = (int)t->outsize;
	sk_ctx ctx;
	const float *z;
	w->loss = 0;
	w->correct = 0;
	memset(&ctx, 0, sizeof ctx);
	ctx.seed = t->seed;
	ctx.step = (uint64_t)t->step;
	ctx.thread = w->id;
	ctx.update_buffers = gs == 0;
	if (t->kind == JOB_TRAIN)
		for (int i = 0; i < t->np; i++) {
			sk_param *p = w->ps[i];
			if (p->g)
				memset(p->g, 0, sizeof(float) * p->size);
		}
	if (n <= 0)
		return 0;
	if (t->kind == JOB_FORWARD) {
		const float *x = t->xin + (size_t)lo * t->insize;
		if (!sk_seq_forward(w->seq, &ctx, n, x))
			return -1;
		size_t sz = t->layer_size;
		const float *a = t->layer ? find_act(w->seq, t->layer, &sz) : w->seq->act[w->seq->n - 1];
		memcpy(t->out + (size_t)lo * t->layer_size, a, sizeof(float) * (size_t)n * t->layer_size);
		return 0;
	}
	/* the share, whole or (training with t->micro) in micro-batches whose
	 * parameter gradients the layers sum; the loss is over the whole batch
	 * (t->denom) in every piece, dropout and augmentation draw from global
	 * example indices, so only the gradient's rounding depends on the cut */
	int piece = t->kind == JOB_TRAIN && t->micro > 0 && t->micro < n ? t->micro : n;
	for (int off = 0; off < n; off += piece) {
		int m = n - off < piece ? n - off : piece, a = lo + off;
		if (t->idx) {
			sk_dataset_gather(t->data, t->idx + a, m, w->x, w->y);
		} else {
			/* consecutive examples: gather via a small index run */
			int64_t *tmpidx = (int64_t *)w->tmp;   /* tmp holds at least share_max int64 (see team_new) */
			for (int i = 0; i < m; i++)
				tmpidx[i] = t->first + a + i;
			sk_dataset_gather(t->data, tmpidx, m, w->x, w->y);
		}
		if (t->kind == JOB_TRAIN && (t->crop_pad > 0 || t->flip) && t->data->ndim == 3) {
			int c = (int)t->data->shape[0], h = (int)t->data->shape[1], wd = (int)t->data->shape[2];
			for (int i = 0; i < m; i++)
				sk_augment(w->x + (size_t)i * t->insize, c, h, wd, t->crop_pad, t->flip, t->seed, t->epoch,
				           t->idx[a + i], w->tmp);
		}
		ctx.train = t->kind == JOB_TRAIN;
		ctx.example0 = t->step * (int64_t)t->max_batch + a;
		if (!(z = sk_seq_forward(w->seq, &ctx, m, w->x)))
			return -1;
		w->loss += loss_eval(t->loss, m, k, z, w->y, t->kind == JOB_TRAIN ? w->dl : NULL, t->denom, w->onehot,
		                     &w->correct);
		if (t->kind == JOB_TRAIN && sk_seq_backward(w->seq, &ctx, m, w->x, w->dl, NULL) < 0)
			return -1;
	}
	return 0;
}

/* Run a job of n examples (its other inputs already set in t) on every
 * worker; worker 0 is the calling thread. */
static int team_run(sk_team *t, enum job_kind kind, int n, int64_t step)
{
	t->kind = kind;
	t->n = n;
	t->step = step;
	t->denom = (double)n;
	return sk_pool_run(t->pool, t->T, run_share, t);
}

void sk_team_free(sk_team *t)
{
	if (!t)
		return;
	sk_pool_free(t->pool);
	for (int i = 0; t->w && i < t->T; i++) {
		worker *w = &t->w[i];
		if (i > 0 && w->seq) {
			/* a replica's values are the model's */
			if (w->ps)
				for (int k = 0; k < t->np; k++)
					w->ps[k]->w = NULL;
			sk_seq_free(w->seq);
		}
		free(w->ps);
		sk_free(w->mem);
	}
	free(t->w);
	free(t);
}

sk_team *sk_team_new(sk_model *m, int threads, int max_batch)
{
	sk_team *t;
	if (max_batch < 1) {
		sk_error("batch %d out of range", max_batch);
		return NULL;
	}
	sk_blas_threads(1);
	if (!(t = calloc(1, sizeof *t))) {
		sk_error("out of memory");
		return NULL;
	}
	if (!(t->pool = sk_pool_new(threads))) {   /* checks the thread count */
		free(t);
		return NULL;
	}
	t->m = m;
	t->T = threads;
	t->S = threads;
	t->g0 = 0;
	t->max_batch = max_batch;
	t->share_max = (max_batch + threads - 1) / threads;
	t->insize = sk_shape_size(m->in);
	t->outsize = sk_shape_size(m->seq->out);
	if (!(t->w = calloc((size_t)threads, sizeof *t->w))) {
		sk_error("out of memory");
		goto fail;
	}
	for (int i = 0; i < threads; i++) {
		worker *w = &t->w[i];
		size_t tmpn = t->insize > (size_t)t->share_max * 2 ? t->insize : (size_t)t->share_max * 2;
		w->id = i;
		if (i == 0)
			w->seq = m->seq;
		else if (!(w->seq = sk_seq_declare(m->spec, m->in, "")))
			goto fail;
		int np = sk_seq_params(w->seq, &w->ps);
		if (np < 0)
			goto fail;
		if (i == 0)
			t->np = np;
		else if (np != t->np) {
			sk_error("replica %d has %d parameters, the model %d", i, np, t->np);
			goto fail;
		}
		if (i > 0) {
			/* replicas share the values and, when the model trains, have
			 * gradients of their own */
			for (int k = 0; k < np; k++)
				w->ps[k]->w = t->w[0].ps[k]->w;
			if (sk_seq_has_grads(m->seq) && sk_seq_alloc(w->seq, 1) < 0)
				goto fail;
		}
		if (sk_seq_setup(w->seq, t->share_max) < 0)
			goto fail;
		size_t sm = (size_t)t->share_max;
		sk_part parts[] = {SK_PART(w->x, sm * t->insize), SK_PART(w->dl, sm * t->outsize),
		                   SK_PART(w->onehot, sm * t->outsize), SK_PART(w->tmp, tmpn * 2), SK_PART(w->y, sm)};
		if (!(w->mem = sk_alloc_parts((int)(sizeof parts / sizeof *parts), parts)))
			goto fail;
	}
	return t;
fail:
	sk_team_free(t);
	return NULL;
}

int sk_team_threads(const sk_team *t) { return t->T; }

size_t sk_team_layer_size(sk_team *t, const char *layer)
{
	size_t sz = 0;
	if (!layer)
		return t->outsize;
	return find_act(t->w[0].seq, layer, &sz) ? sz : 0;
}

int sk_team_forward(sk_team *t, int n, const float *x, const char *layer, float *out)
{
	size_t sz = sk_team_layer_size(t, layer);
	if (!sz)
		return sk_error("no layer named '%s'", layer);
	if (n > t->max_batch)
		return sk_error("batch of %d exceeds the prepared %d", n, t->max_batch);
	t->xin = x;
	t->out = out;
	t->layer = layer;
	t->layer_size = sz;
	return team_run(t, JOB_FORWARD, n, 0);
}

/* ---- the trainer ---- */

struct sk_trainer {
	sk_model *m;
	sk_train_config c;
	const sk_dataset *train, *valid;
	sk_team *team;
	sk_optim *opt;
	sk_param **ps;       /* master parameters, stream order */
	int np;
	int64_t *perm;
	int64_t steps_per_epoch;
	uint32_t train_crc, valid_crc;
	int have_crc;         /* the CRCs are computed (when a checkpoint or resume first needs them) */
	/* position */
	int epoch;            /* 0-based epoch in progress */
	int64_t step_in_epoch;
	int64_t gstep;
	double acc_loss;      /* this epoch so far */
	int64_t acc_correct, acc_seen;
	double best_valid;
	double elapsed_before; /* seconds of earlier runs (resume) */
	sk_epoch_stats last;
	char *command;
	char *last_ckpt;
	int ckpt_written;
	float *rbuf;          /* distributed: gradients, loss, correct, stop flag */
	size_t rn;
	int64_t diverged;     /* the step whose loss was not finite (0: none) */
};

void sk_train_defaults(sk_train_config *c)
{
	static const sk_train_config def = {
		.epochs = 10, .batch = 64, .threads = 1, .nshards = 1, .seed = 1, .loss = SK_LOSS_XENT,
		.sched = {.kind = SK_SCHED_CONSTANT, .lr = 0.01, .gamma = 0.1, .step_size = 30},
	};
	*c = def;
	sk_optim_defaults(&c->opt, SK_OPT_SGD);
}

static uint32_t data_crc(const sk_dataset *d)
{
	uint32_t crc = sk_crc32(0, NULL, 0);
	size_t chunk = (size_t)1 << 24, total = (size_t)d->n * d->example_bytes;
	for (size_t o = 0; o < total; o += chunk)
		crc = sk_crc32(crc, (const char *)d->images + o, total - o < chunk ? total - o : chunk);
	if (d->labels)
		crc = sk_crc32(crc, d->labels, sizeof(int32_t) * (size_t)d->n);
	return crc;
}

/* The data's CRCs, computed once when a checkpoint or a resume first needs
 * them: a run without checkpoints does not read its data an extra time. */
static void need_crcs(sk_trainer *t)
{
	if (t->have_crc)
		return;
	t->train_crc = data_crc(t->train);
	t->valid_crc = t->valid ? data_crc(t->valid) : 0;
	t->have_crc = 1;
}

static int check_data(const sk_model *m, const sk_dataset *d, const char *what, int labels)
{
	char a[64], b[64];
	int same = d->ndim == m->in.n;
	int64_t ds[4];
	for (int i = 0; i < d->ndim && i < 4; i++)
		ds[i] = d->shape[i];
	for (int i = 0; same && i < d->ndim; i++)
		same = d->shape[i] == m->in.d[i];
	if (!same)
		return sk_error("%s examples are %s but the model's input is %s", what,
		                sk_shape_str(d->ndim, ds, a, sizeof a), sk_shape_fmt(m->in, b, sizeof b));
	if (!labels)   /* a custom step checks the labels it needs */
		return 0;
	if (!d->labels)
		return sk_error("%s set has no labels", what);
	if (m->nclasses < 1)
		return sk_error("the model's output is not a vector of class scores");
	for (int64_t i = 0; i < d->n; i++)
		if (d->labels[i] < 0 || d->labels[i] >= m->nclasses)
			return sk_error("%s example %lld has label %d, outside 0..%d for the model's %d outputs", what,
			                (long long)i, d->labels[i], m->nclasses - 1, m->nclasses);
	return 0;
}

/* For sk_seq_walk_layers: the first layer whose training outputs depend on
 * other examples of the slice (batch statistics), kept in *arg. */
static int batch_stats_layer(sk_layer *l, int depth, void *arg)
{
	const sk_layer **first = arg;
	(void)depth;
	if (l->ops->batch_stats && !*first)
		*first = l;
	return 0;
}

sk_trainer *sk_trainer_new(sk_model *m, const sk_train_config *c, const sk_dataset *train, const sk_dataset *valid)
{
	sk_trainer *t = calloc(1, sizeof *t);
	if (!t) {
		sk_error("out of memory");
		return NULL;
	}
	t->m = m;
	t->c = *c;
	t->train = train;
	t->valid = valid;
	t->best_valid = -1;
	if (c->batch < 1 || c->epochs < 0) {
		sk_error("batch must be positive and epochs non-negative");
		goto fail;
	}
	if (train->n < 1) {
		sk_error("the training set is empty");
		goto fail;
	}
	if (c->micro_batch < 0) {
		sk_error("micro-batch %d is negative", c->micro_batch);
		goto fail;
	}
	if (c->micro_batch > 0 && !c->step) {
		const sk_layer *bs = NULL;
		if (sk_seq_walk_layers(m->seq, batch_stats_layer, &bs) == 0 && bs) {
			sk_error("micro-batches would change layer %s (%s): it uses batch statistics", bs->name,
			         bs->ops->type);
			goto fail;
		}
	}
	if (c->step && (valid || c->allreduce || c->nshards != 1)) {
		sk_error("a custom step trains in one process, without validation");
		goto fail;
	}
	if (check_data(m, train, "training", !c->step) < 0 || (valid && check_data(m, valid, "validation", 1) < 0))
		goto fail;
	if (!(t->command = strdup(c->command ? c->command : ""))) {
		sk_error("out of memory");
		goto fail;
	}
	t->steps_per_epoch = c->drop_last && train->n >= c->batch ? train->n / c->batch
	                                                           : (train->n + c->batch - 1) / c->batch;
	if (!(t->perm = sk_alloc_array((size_t)train->n, sizeof(int64_t))))
		goto fail;
	if ((t->np = sk_seq_params(m->seq, &t->ps)) < 0)
		goto fail;
	if (c->nshards < 1 || c->shard < 0 || c->shard >= c->nshards) {
		sk_error("shard %d of %d is out of range", c->shard, c->nshards);
		goto fail;
	}
	/* a custom step needs no replicas and no gradients (hence no optimiser
	 * state: the optimiser skips parameters without one) */
	if (!c->step) {
		if (sk_model_for_training(m) < 0)
			goto fail;
		/* a batch larger than the data set needs no more room than the data set */
		if (!(t->team = sk_team_new(m, c->threads, c->batch < train->n ? c->batch : (int)train->n)))
			goto fail;
		t->team->S = c->nshards * c->threads;
		t->team->micro = c->micro_batch;
		t->team->g0 = c->shard * c->threads;
		/* what every job of the run shares: a validation before the
		 * first step of a resumed run too */
		t->team->seed = c->seed;
		t->team->crop_pad = c->crop_pad;
		t->team->flip = c->flip;
		t->team->loss = c->loss;
	}
	if (c->allreduce) {
		t->rn = 3;
		for (int i = 0; i < t->np; i++)
			if (t->ps[i]->g)
				t->rn += t->ps[i]->size;
		if (!(t->rbuf = sk_alloc_array(t->rn, sizeof(float))))
			goto fail;
	}
	if (!(t->opt = sk_optim_for_seq(&c->opt, m->seq)))
		goto fail;
	return t;
fail:
	sk_trainer_free(t);
	return NULL;
}

void sk_trainer_free(sk_trainer *t)
{
	if (!t)
		return;
	sk_team_free(t->team);
	sk_optim_free(t->opt);
	free(t->ps);
	sk_free(t->perm);
	free(t->command);
	free(t->last_ckpt);
	sk_free(t->rbuf);
	free(t);
}

const sk_epoch_stats *sk_trainer_last(const sk_trainer *t) { return &t->last; }
double sk_trainer_best_valid(const sk_trainer *t) { return t->best_valid; }
const char *sk_trainer_command(const sk_trainer *t) { return t->command; }
const char *sk_trainer_last_checkpoint(const sk_trainer *t) { return t->ckpt_written ? t->last_ckpt : NULL; }
int64_t sk_trainer_diverged(const sk_trainer *t) { return t->diverged; }

/* ---- checkpoints ---- */

const char *sk_blas_core(void)
{
	const char *s = openblas_get_corename();
	return s && *s ? s : "unknown";
}

int sk_checkpoint_machine_differs(const sk_attrs *state, char *msg, size_t n)
{
	const char *k = sk_attrs_get(state, "kernels"), *b = sk_attrs_get(state, "blas");
	msg[0] = 0;
	if (k && strcmp(k, sk_cpu_path()))
		snprintf(msg, n, "the checkpoint was written by the %s kernels, this machine runs the %s ones: the bits will "
		         "differ from an uninterrupted run", k, sk_cpu_path());
	else if (b && strcmp(b, sk_blas_core()))
		snprintf(msg, n, "the checkpoint was written with OpenBLAS core %s, this machine's is %s: the bits will "
		         "differ from an uninterrupted run", b, sk_blas_core());
	return msg[0] != 0;
}

int sk_checkpoint_attrs(const char *path, sk_attrs *model, sk_attrs *state)
{
	sk_reader *r = sk_reader_open(path);
	sk_header h;
	int st, got = 0;
	if (!r)
		return -1;
	memset(&h, 0, sizeof h);
	while ((st = sk_reader_next(r, &h)) > 0) {
		if (!strcmp(h.name, "model") && !got) {
			st = sk_attrs_copy(model, &h.attrs);
			got = 1;
		} else if (!strcmp(h.name, "train_state")) {
			st = sk_attrs_copy(state, &h.attrs);
			got = 2;
		}
		if (st < 0 || got == 2)
			break;
	}
	sk_header_free(&h);
	sk_reader_close(r);
	if (st < 0)
		return -1;
	return got == 2 ? 0 : sk_error("%s: not a checkpoint (no train_state record)", path);
}

static int write_state(sk_trainer *t, FILE *f)
{
	sk_attrs a;
	uint8_t zero = 0;
	int64_t one = 1;
	int rc = -1;
	need_crcs(t);
	sk_attrs_init(&a);
	if (sk_attrs_setf(&a, "epoch", "%d", t->epoch) < 0 ||
	    sk_attrs_setf(&a, "step_in_epoch", "%lld", (long long)t->step_in_epoch) < 0 ||
	    sk_attrs_setf(&a, "step", "%lld", (long long)t->gstep) < 0 ||
	    sk_attrs_setf(&a, "seed", "%llu", (unsigned long long)t->c.seed) < 0 ||
	    sk_attrs_setf(&a, "batch", "%d", t->c.batch) < 0 || sk_attrs_setf(&a, "threads", "%d", t->c.threads) < 0 ||
	    (t->c.drop_last && sk_attrs_set(&a, "drop_last", "1") < 0) ||
	    (t->c.micro_batch > 0 && sk_attrs_setf(&a, "micro_batch", "%d", t->c.micro_batch) < 0) ||
	    sk_attrs_setf(&a, "shares", "%d", t->c.threads * t->c.nshards) < 0 ||
	    sk_attrs_setf(&a, "ranks", "%d", t->c.nshards) < 0 ||
	    sk_attrs_set(&a, "optimizer", sk_optim_name(t->c.opt.kind)) < 0 ||
	    sk_attrs_setf(&a, "train_n", "%lld", (long long)t->train->n) < 0 ||
	    sk_attrs_setf(&a, "train_crc", "%08x", t->train_crc) < 0 ||
	    sk_attrs_setf(&a, "valid_n", "%lld", (long long)(t->valid ? t->valid->n : 0)) < 0 ||
	    sk_attrs_setf(&a, "valid_crc", "%08x", t->valid_crc) < 0 ||
	    sk_attrs_setf(&a, "acc_loss", "%a", t->acc_loss) < 0 ||
	    sk_attrs_setf(&a, "acc_correct", "%lld", (long long)t->acc_correct) < 0 ||
	    sk_attrs_setf(&a, "acc_seen", "%lld", (long long)t->acc_seen) < 0 ||
	    sk_attrs_setf(&a, "best_valid_acc", "%a", t->best_valid) < 0 ||
	    sk_attrs_setf(&a, "last_loss", "%a", t->last.loss) < 0 ||
	    sk_attrs_setf(&a, "last_train_acc", "%a", t->last.train_acc) < 0 ||
	    sk_attrs_setf(&a, "last_valid_acc", "%a", t->last.valid_acc) < 0 ||
	    sk_attrs_setf(&a, "last_valid_loss", "%a", t->last.valid_loss) < 0 ||
	    sk_attrs_setf(&a, "last_epoch", "%d", t->last.epoch) < 0 ||
	    sk_attrs_setf(&a, "seconds", "%.3f", t->elapsed_before + t->last.seconds) < 0 ||
	    sk_attrs_set(&a, "command", t->command) < 0 || sk_attrs_set(&a, "kernels", sk_cpu_path()) < 0 ||
	    sk_attrs_set(&a, "blas", sk_blas_core()) < 0)
		goto out;
	for (int i = 0; t->c.hparams && i < t->c.hparams->n; i++) {
		char key[SK_NAME_MAX];
		snprintf(key, sizeof key, "hp.%s", t->c.hparams->key[i]);
		if (sk_attrs_set(&a, key, t->c.hparams->val[i]) < 0)
			goto out;
	}
	rc = sk_write_record_raw(f, "train_state", SK_U8, 1, &one, &zero, &a, 0);
out:
	sk_attrs_free(&a);
	return rc;
}

int sk_trainer_checkpoint(sk_trainer *t, const char *path)
{
	sk_ofile *o = sk_ofile_open(path, 1);
	if (!o)
		return -1;
	int extra = t->c.state_nrecords ? t->c.state_nrecords(t->c.step_arg) : 0;
	if (sk_model_write(sk_ofile_fp(o), t->m, sk_optim_nrecords(t->opt) + extra + 1) < 0 ||
	    sk_optim_write_state(t->opt, sk_ofile_fp(o)) < 0 ||
	    (t->c.state_write && t->c.state_write(sk_ofile_fp(o), t->c.step_arg) < 0) ||
	    write_state(t, sk_ofile_fp(o)) < 0) {
		sk_error_prefix("checkpoint %s", path);
		sk_ofile_abort(o);
		return -1;
	}
	if (sk_ofile_commit(o) < 0)
		return -1;
	if (!t->last_ckpt || strcmp(t->last_ckpt, path)) {
		free(t->last_ckpt);
		t->last_ckpt = strdup(path);
	}
	t->ckpt_written = 1;
	return 0;
}

struct resume_arg {
	sk_trainer *t;
	sk_attrs state;
	int have_state;
};

static int resume_extra(sk_reader *r, const sk_header *h, void *arg)
{
	struct resume_arg *ra = arg;
	if (!strcmp(h->name, "train_state")) {
		if (sk_attrs_copy(&ra->state, &h->attrs) < 0)
			return -1;
		ra->have_state = 1;
		return sk_reader_skip(r, h);
	}
	if (ra->t->c.state_read) {   /* the custom step's own state */
		int st = ra->t->c.state_read(r, h, ra->t->c.step_arg);
		if (st != 0)
			return st < 0 ? -1 : 0;
	}
	const char *ok = sk_attrs_get(&h->attrs, "optimizer");
	if (ok && strcmp(ok, sk_optim_name(ra->t->c.opt.kind)))
		return sk_error("checkpoint optimizer '%s' differs from --optimizer %s", ok,
		                sk_optim_name(ra->t->c.opt.kind));
	int st = sk_optim_load_record(ra->t->opt, r, h);
	if (st < 0)
		return -1;
	if (st == 0)
		return sk_reader_skip(r, h);
	return 0;
}

static int get_ll(const sk_attrs *a, const char *key, long long *v)
{
	const char *s = sk_attrs_get(a, key);
	char *end;
	if (!s)
		return sk_error("train_state lacks '%s'", key);
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return sk_error("train_state: bad %s '%s'", key, s);
	return 0;
}

static int get_d(const sk_attrs *a, const char *key, double *v)
{
	const char *s = sk_attrs_get(a, key);
	char *end;
	if (!s)
		return sk_error("train_state lacks '%s'", key);
	*v = strtod(s, &end);
	if (*end || end == s)
		return sk_error("train_state: bad %s '%s'", key, s);
	return 0;
}

/* First differing line of two spec texts, for messages. */
static int first_diff_line(const char *a, const char *b)
{
	int line = 1;
	for (; *a && *a == *b; a++, b++)
		if (*a == '\n')
			line++;
	return line;
}

int sk_trainer_resume(sk_trainer *t, const char *path, int *epoch, int64_t *step, int64_t *gstep)
{
	struct resume_arg ra = {t, {0}, 0};
	sk_model *ck;
	sk_param **cps = NULL;
	long long v = 0;
	int ncp, rc = -1;
	sk_attrs_init(&ra.state);
	/* first the model alone, so that a different one is named as such */
	if (!(ck = sk_model_load(path)))
		goto out;
	if (strcmp(ck->spec_text, t->m->spec_text)) {
		sk_error("%s: the checkpoint's model differs from the given model (first at spec line %d)", path,
		         first_diff_line(ck->spec_text, t->m->spec_text));
		goto out;
	}
	sk_model_free(ck);
	if (!(ck = sk_model_load_ex(path, resume_extra, &ra))) {
		if (strncmp(sk_errmsg(), path, strlen(path)))
			sk_error_prefix("%s", path);
		goto out;
	}
	if (!ra.have_state) {
		sk_error("%s: not a checkpoint (no train_state record)", path);
		goto out;
	}
	if (sk_optim_check_loaded(t->opt) < 0) {
		sk_error_prefix("%s", path);
		goto out;
	}
	/* what must match */
	{
		const sk_attrs *a = &ra.state;
		const char *s;
		char buf[32];
		if (get_ll(a, "seed", &v) < 0)
			goto bad;
		if ((unsigned long long)v != t->c.seed) {
			sk_error("%s: checkpoint seed %lld differs from --seed %llu", path, v, (unsigned long long)t->c.seed);
			goto out;
		}
		if (get_ll(a, "batch", &v) < 0)
			goto bad;
		if (v != t->c.batch) {
			sk_error("%s: checkpoint batch %lld differs from --batch %d", path, v, t->c.batch);
			goto out;
		}
		if ((sk_attrs_get(a, "drop_last") != NULL) != (t->c.drop_last != 0)) {
			sk_error("%s: the checkpoint's run %s an epoch's last partial batch", path,
			         t->c.drop_last ? "kept" : "dropped");
			goto out;
		}
		s = sk_attrs_get(a, "micro_batch");
		snprintf(buf, sizeof buf, "%d", t->c.micro_batch);
		if (strcmp(s ? s : "0", buf)) {
			sk_error("%s: the checkpoint's run used micro-batches of %s, this one %d (0: none)", path, s ? s : "0",
			         t->c.micro_batch);
			goto out;
		}
		/* the batch is cut into threads x processes shares; results depend on
		 * their number, which --distributed may change on purpose */
		if (sk_attrs_get(a, "shares") ? get_ll(a, "shares", &v) < 0 : get_ll(a, "threads", &v) < 0)
			goto bad;
		long long ranks = 1;
		if (sk_attrs_get(a, "ranks") && get_ll(a, "ranks", &ranks) < 0)
			goto bad;
		/* a distributed run may change its number of shares on purpose */
		if (v != (long long)t->c.threads * t->c.nshards && !t->c.allow_reshard && ranks == 1) {
			sk_error("%s: checkpoint threads %lld differs from --threads %d (results depend on it)", path, v,
			         t->c.threads);
			goto out;
		}
		s = sk_attrs_get(a, "optimizer");
		if (!s || strcmp(s, sk_optim_name(t->c.opt.kind))) {
			sk_error("%s: checkpoint optimizer '%s' differs from --optimizer %s", path, s ? s : "?",
			         sk_optim_name(t->c.opt.kind));
			goto out;
		}
		if (get_ll(a, "train_n", &v) < 0)
			goto bad;
		if (v != t->train->n) {
			sk_error("%s: checkpoint was trained on %lld examples, the data has %lld", path, v,
			         (long long)t->train->n);
			goto out;
		}
		need_crcs(t);
		snprintf(buf, sizeof buf, "%08x", t->train_crc);
		s = sk_attrs_get(a, "train_crc");
		if (!s || strcmp(s, buf)) {
			sk_error("%s: the training data differ from the checkpoint's (crc %s, now %s)", path, s ? s : "?",
			         buf);
			goto out;
		}
		if (get_ll(a, "valid_n", &v) < 0)
			goto bad;
		if (v != (t->valid ? t->valid->n : 0)) {
			sk_error("%s: checkpoint validated on %lld examples, now %lld", path, v,
			         (long long)(t->valid ? t->valid->n : 0));
			goto out;
		}
		snprintf(buf, sizeof buf, "%08x", t->valid_crc);
		s = sk_attrs_get(a, "valid_crc");
		if (!s || strcmp(s, buf)) {
			sk_error("%s: the validation data differ from the checkpoint's", path);
			goto out;
		}
		if (get_ll(a, "epoch", &v) < 0 || v < 0 || v > 1000000000)
			goto bad;
		t->epoch = (int)v;
		if (get_ll(a, "step_in_epoch", &v) < 0 || v < 0 || v > t->steps_per_epoch)
			goto bad;
		t->step_in_epoch = v;
		if (get_ll(a, "step", &v) < 0 || v < 0)
			goto bad;
		t->gstep = v;
		if (get_d(a, "acc_loss", &t->acc_loss) < 0 || get_ll(a, "acc_correct", &v) < 0)
			goto bad;
		t->acc_correct = v;
		if (get_ll(a, "acc_seen", &v) < 0)
			goto bad;
		t->acc_seen = v;
		if (get_d(a, "best_valid_acc", &t->best_valid) < 0 || get_d(a, "last_loss", &t->last.loss) < 0 ||
		    get_d(a, "last_train_acc", &t->last.train_acc) < 0 ||
		    get_d(a, "last_valid_acc", &t->last.valid_acc) < 0 ||
		    get_d(a, "last_valid_loss", &t->last.valid_loss) < 0 || get_ll(a, "last_epoch", &v) < 0)
			goto bad;
		t->last.epoch = (int)v;
		t->last.has_valid = t->valid != NULL;
		get_d(a, "seconds", &t->elapsed_before);
		s = sk_attrs_get(a, "command");
		if (s) {
			char *cmd = strdup(s);
			if (!cmd) {
				sk_error("out of memory");
				goto out;
			}
			free(t->command);
			t->command = cmd;
		}
	}
	if ((ncp = sk_model_params(ck, &cps)) != t->np) {
		sk_error("%s: parameter count differs", path);
		goto out;
	}
	for (int i = 0; i < ncp; i++)
		memcpy(t->ps[i]->w, cps[i]->w, sizeof(float) * t->ps[i]->size);
	*epoch = t->epoch;
	*step = t->step_in_epoch;
	*gstep = t->gstep;
	rc = 0;
	goto out;
bad:
	sk_error_prefix("%s", path);
out:
	free(cps);
	sk_model_free(ck);
	sk_attrs_free(&ra.state);
	return rc;
}

/* ---- the loop ---- */

static int evaluate(sk_trainer *t, const sk_dataset *d, double *loss, double *acc)
{
	sk_team *tm = t->team;
	double total = 0;
	int64_t correct = 0;
	for (int64_t s = 0; s < d->n; s += tm->max_batch) {
		int n = (int)(d->n - s < tm->max_batch ? d->n - s : tm->max_batch);
		tm->data = d;
		tm->idx = NULL;
		tm->first = s;
		if (team_run(tm, JOB_EVAL, n, 0) < 0)
			return -1;
		for (int i = 0; i < tm->T; i++) {
			total += tm->w[i].loss;
			correct += tm->w[i].correct;
		}
	}
	if (t->c.allreduce) {
		float v[2] = {(float)total, (float)correct};
		if (t->c.allreduce(v, 2, t->c.allreduce_arg) < 0)
			return -1;
		total = v[0];
		correct = (int64_t)v[1];
	}
	*loss = total / (double)d->n;
	*acc = (double)correct / (double)d->n;
	return 0;
}

static void sum_grads(sk_trainer *t)
{
	sk_team *tm = t->team;
	for (int r = 1; r < tm->T; r++) {
		sk_param **pr = tm->w[r].ps;
		for (int i = 0; i < t->np; i++) {
			sk_param *p = t->ps[i];
			if (!p->g || p->frozen)
				continue;
			float *g = p->g;
			const float *h = pr[i]->g;
			for (size_t k = 0; k < p->size; k++)
				g[k] += h[k];
		}
	}
}

/* Distributed step: sum gradients, loss, correct count and the stop flag
 * over all processes through the caller's allreduce. */
static int reduce_step(sk_trainer *t, double *loss, int64_t *correct, int *stop)
{
	float *b = t->rbuf;
	size_t o = 0;
	for (int i = 0; i < t->np; i++) {
		sk_param *p = t->ps[i];
		if (!p->g)
			continue;
		memcpy(b + o, p->g, sizeof(float) * p->size);
		o += p->size;
	}
	b[o] = (float)*loss;
	b[o + 1] = (float)*correct;
	b[o + 2] = (float)(*stop != 0);
	if (t->c.allreduce(b, t->rn, t->c.allreduce_arg) < 0)
		return -1;
	o = 0;
	for (int i = 0; i < t->np; i++) {
		sk_param *p = t->ps[i];
		if (!p->g)
			continue;
		memcpy(p->g, b + o, sizeof(float) * p->size);
		o += p->size;
	}
	*loss = b[o];
	*correct = (int64_t)b[o + 1];
	*stop = b[o + 2] > 0;
	return 0;
}

/* The built-in step's forward, loss and backward on the team: the summed
 * loss and correct count of the batch idx[0..n). */
static int team_step(sk_trainer *t, const int64_t *idx, int n, double *loss, int64_t *correct)
{
	sk_team *tm = t->team;
	tm->data = t->train;
	tm->idx = idx;
	tm->epoch = t->epoch;
	if (team_run(tm, JOB_TRAIN, n, t->gstep) < 0)
		return -1;
	for (int i = 0; i < tm->T; i++) {
		*loss += tm->w[i].loss;
		*correct += tm->w[i].correct;
	}
	return 0;
}

/* A custom step failed: name the step and the last good checkpoint. */
static int step_failed(const sk_trainer *t)
{
	char msg[512];
	const char *ck = sk_trainer_last_checkpoint(t);
	snprintf(msg, sizeof msg, "%s", sk_errmsg());
	if (ck)
		return sk_error("step %lld (epoch %d): %s; the last good checkpoint is '%s'", (long long)t->gstep + 1,
		                t->epoch + 1, msg, ck);
	return sk_error("step %lld (epoch %d): %s", (long long)t->gstep + 1, t->epoch + 1, msg);
}

int sk_trainer_run(sk_trainer *t)
{
	const sk_train_config *c = &t->c;
	double start = now();
	int64_t spe = t->steps_per_epoch, gstep0 = t->gstep;
	for (; t->epoch < c->epochs; t->epoch++) {
		sk_rng r = sk_rng_make(c->seed, sk_rng_stream(SHUFFLE_STREAM, (uint64_t)t->epoch, 0));
		double ep_start = now();
		int64_t ep_images = 0;
		sk_rng_permute(&r, t->perm, t->train->n);
		while (t->step_in_epoch < spe) {
			int64_t s0 = t->step_in_epoch * c->batch;
			int n = (int)(t->train->n - s0 < c->batch ? t->train->n - s0 : c->batch);
			double loss = 0, lr = sk_sched_lr(&c->sched, t->epoch, t->step_in_epoch, spe);
			int64_t correct = 0;
			if (c->step) {
				if (c->step(c->step_arg, t->train, t->perm + s0, n, t->gstep, lr, &loss) < 0)
					return step_failed(t);
			} else if (team_step(t, t->perm + s0, n, &loss, &correct) < 0)
				return sk_error_prefix("step %lld", (long long)t->gstep + 1);
			int stop = (c->stop && *c->stop) || (c->stop_after > 0 && t->gstep + 1 - gstep0 >= c->stop_after);
			if (!c->step) {
				sum_grads(t);
				if (c->allreduce && reduce_step(t, &loss, &correct, &stop) < 0)
					return sk_error_prefix("step %lld", (long long)t->gstep + 1);
			}
			if (!isfinite(loss)) {
				const char *ck = sk_trainer_last_checkpoint(t);
				t->diverged = t->gstep + 1;
				if (ck)
					return sk_error("loss is %s at step %lld (epoch %d); stopped, the last good checkpoint "
					                "is '%s'",
					                isnan(loss) ? "nan" : "infinite", (long long)t->gstep + 1, t->epoch + 1, ck);
				return sk_error("loss is %s at step %lld (epoch %d); stopped before any checkpoint",
				                isnan(loss) ? "nan" : "infinite", (long long)t->gstep + 1, t->epoch + 1);
			}
			if (!c->step) {
				sk_optim_step(t->opt, (float)lr);
				sk_seq_project(t->m->seq);
			}
			t->acc_loss += loss;
			t->acc_correct += correct;
			t->acc_seen += n;
			t->gstep++;
			t->step_in_epoch++;
			ep_images += n;
			if (c->on_step)
				c->on_step(t->epoch, t->step_in_epoch, spe, c->arg);
			if (c->checkpoint && (stop || (c->checkpoint_every > 0 && t->gstep % c->checkpoint_every == 0)) &&
			    sk_trainer_checkpoint(t, c->checkpoint) < 0)
				return -1;
			if (stop)
				return SK_TRAIN_STOPPED;
		}
		/* end of epoch */
		sk_epoch_stats *s = &t->last;
		double ep_sec = now() - ep_start;
		s->epoch = t->epoch + 1;
		s->epochs = c->epochs;
		s->loss = t->acc_seen ? t->acc_loss / (double)t->acc_seen : 0;
		s->train_acc = t->acc_seen ? (double)t->acc_correct / (double)t->acc_seen : 0;
		s->has_acc = !c->step;
		s->lr = sk_sched_lr(&c->sched, t->epoch, spe - 1, spe);   /* the rate of its last step */
		s->step = t->gstep;
		s->has_valid = t->valid != NULL;
		if (t->valid) {
			if (evaluate(t, t->valid, &s->valid_loss, &s->valid_acc) < 0)
				return sk_error_prefix("validation after epoch %d", t->epoch + 1);
			if (s->valid_acc > t->best_valid)
				t->best_valid = s->valid_acc;
		}
		s->images_per_s = ep_sec > 0 ? (double)ep_images / ep_sec : 0;
		s->seconds = t->elapsed_before + (now() - start);
		t->acc_loss = 0;
		t->acc_correct = t->acc_seen = 0;
		t->step_in_epoch = 0;
		if (c->on_epoch)
			c->on_epoch(s, c->arg);
		if (c->checkpoint) {
			t->epoch++;   /* the checkpoint records the next epoch to run */
			int rc = sk_trainer_checkpoint(t, c->checkpoint);
			t->epoch--;
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- unsupervised initialisation ---- */

int sk_train_init_unsupervised(sk_model *m, const sk_dataset *d, const char *method, int n, uint64_t seed)
{
	sk_seq *q = m->seq;
	size_t insz = sk_shape_size(m->in), maxin = insz, buf_n, cap = (size_t)128 << 20;
	int chunk = 64, done = 0, rc = -1;
	int64_t *perm = NULL;
	float *x = NULL, *buf = NULL;
	sk_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	ctx.seed = seed;
	if (n < 1)
		return sk_error("--init-unsupervised needs at least one example");
	if (n > d->n)
		n = (int)d->n;
	for (int i = 0; i < q->n; i++)
		if (q->layers[i]->ops->init_data && i > 0 && sk_shape_size(q->layers[i - 1]->out) > maxin)
			maxin = sk_shape_size(q->layers[i - 1]->out);
	/* keep the sample under `cap` bytes */
	buf_n = (size_t)n;
	if (buf_n * maxin * sizeof(float) > cap)
		buf_n = cap / (maxin * sizeof(float));
	if (buf_n < 1)
		buf_n = 1;
	n = (int)buf_n;
	if (sk_seq_setup(q, chunk) < 0)
		return -1;
	if (!(perm = sk_alloc_array((size_t)d->n, sizeof(int64_t))) ||
	    !(x = sk_alloc_array((size_t)chunk * insz, sizeof(float))) ||
	    !(buf = sk_alloc_array(buf_n * maxin, sizeof(float))))
		goto out;
	{
		sk_rng r = sk_rng_make(seed, UNSUP_STREAM);
		sk_rng_permute(&r, perm, d->n);
	}
	for (int li = 0; li < q->n; li++) {
		sk_layer *l = q->layers[li];
		size_t lin = sk_shape_size(l->in);
		if (!l->ops->init_data)
			continue;
		for (int s = 0; s < n; s += chunk) {
			int k = n - s < chunk ? n - s : chunk;
			const float *a = x;
			sk_dataset_gather(d, perm + s, k, x, NULL);
			for (int j = 0; j < li; j++) {
				sk_layer *p = q->layers[j];
				if (p->ops->forward(p, &ctx, k, a, q->act[j]) < 0) {
					sk_error_prefix("%s", p->name);
					goto out;
				}
				a = q->act[j];
			}
			memcpy(buf + (size_t)s * lin, a, sizeof(float) * (size_t)k * lin);
		}
		if (l->ops->init_data(l, method, n, buf, seed) < 0) {
			sk_error_prefix("%s: unsupervised initialisation", l->name);
			goto out;
		}
		done++;
	}
	rc = done;
out:
	sk_free(perm);
	sk_free(x);
	sk_free(buf);
	return rc;
}
