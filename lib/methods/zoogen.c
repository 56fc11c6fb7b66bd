/* zoogen.c: the zoo generator (sk_zoo.h): hyperparameters drawn from a run
 * seed, an architecture read from its spec file (share/models) and turned
 * into a run's spec by the rules of sk_zoo_spec, and one run trained by the
 * training engine (sk_trainer) keeping a member per checkpoint epoch. */
#include "sk_zoo.h"
#include "sk_cpu.h"
#include "sk_loss.h"
#include "sk_model.h"
#include "sk_rng.h"
#include "sk_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SK_MODELSDIR
#define SK_MODELSDIR "/usr/local/share/simkit/models"
#endif

static double clock_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- hyperparameters ----
 * The Small CNN Zoo's families and ranges (PAPERS.md 5.7): each choice
 * uniform, the scales log-uniform.  Biases start at zero (the layers'
 * default, the zoo's b_init); init_std is the normal initialiser's, he and
 * xavier keep their own scale. */

static double log_uniform(sk_rng *r, double lo, double hi)
{
	return exp(log(lo) + (log(hi) - log(lo)) * sk_rng_next_uniform(r));
}

void sk_zoo_draw(uint64_t seed, sk_zoo_hparams *h)
{
	static const char *const acts[] = {"relu", "tanh"}, *const inits[] = {"he", "xavier", "normal"},
	                         *const opts[] = {"sgd", "adam", "rmsprop"};
	static const double fracs[] = {0.1, 0.25, 0.5, 1.0};
	sk_rng r = sk_rng_make(seed, sk_rng_hash("zoo-run"));
	h->activation = acts[sk_rng_next_below(&r, 2)];
	h->init = inits[sk_rng_next_below(&r, 3)];
	h->init_std = log_uniform(&r, 1e-3, 0.5);
	h->optimizer = opts[sk_rng_next_below(&r, 3)];
	h->lr = log_uniform(&r, 5e-4, 5e-2);
	h->l2 = log_uniform(&r, 1e-8, 1e-2);
	h->dropout = 0.7 * sk_rng_next_uniform(&r);
	h->train_fraction = fracs[sk_rng_next_below(&r, 4)];
}

/* ---- architectures: spec files ---- */

static int ends_with_spec(const char *s)
{
	size_t n = strlen(s);
	return n > 5 && !strcmp(s + n - 5, ".spec");
}

int sk_zoo_arch_path(const char *name, char *path, size_t n, char *label, size_t ln)
{
	const char *env = getenv("SIMKIT_MODELS"), *base;
	size_t len;
	if (!*name)
		return sk_error("--arch is empty");
	if (strchr(name, '/') || ends_with_spec(name)) {
		if ((size_t)snprintf(path, n, "%s", name) >= n)
			return sk_error("--arch: the path is too long");
	} else if (!(env && *env && (size_t)snprintf(path, n, "%s/%s.spec", env, name) < n && access(path, R_OK) == 0) &&
	           !((size_t)snprintf(path, n, "%s/%s.spec", SK_MODELSDIR, name) < n && access(path, R_OK) == 0))
		return sk_error("--arch %s: no %s.spec in %s%s%s (or give the path of a spec file)", name, name,
		                env && *env ? env : "", env && *env ? " or " : "", SK_MODELSDIR);
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	len = strlen(base) - (ends_with_spec(base) ? 5 : 0);
	snprintf(label, ln, "%.*s", (int)len, base);
	return 0;
}

/* The activations the draw replaces. */
static int is_activation(const char *type) { return !strcmp(type, "relu") || !strcmp(type, "tanh"); }

char *sk_zoo_spec(const sk_model *arch, const char *label, const sk_zoo_hparams *h, int batch, int epochs,
                  int nclasses)
{
	const sk_spec *sp = arch->spec;
	int last = sp->n - 1;
	char *s = NULL;
	size_t len = 0;
	sk_affine a;
	FILE *f;
	for (int i = 0; i < sp->n; i++)
		if (sp->lines[i].body) {
			sk_spec_error(sp, &sp->lines[i], "a zoo architecture is a flat list of layers, without blocks");
			return NULL;
		}
	if (last < 1 || !sk_layer_affine(arch->seq->layers[last], &a) || sp->lines[last].npos < 1) {
		sk_error("%s: the last layer of a zoo architecture must be affine (conv, linear OUT): the class scores",
		         sp->srcname);
		return NULL;
	}
	if (!(f = open_memstream(&s, &len))) {
		sk_error("out of memory");
		return NULL;
	}
	/* the recipe travels with every member; plain SGD has no momentum; the
	 * loss's l2 * sum(w^2) is a decay of 2 * l2 */
	fprintf(f, "# %s with the hyperparameters of one zoo run (zoo-encode run)\n", label);
	fprintf(f, "train optimizer=%s%s lr=%.6g wd=%.6g batch=%d epochs=%d schedule=constant\n", h->optimizer,
	        strcmp(h->optimizer, "sgd") ? "" : " momentum=0", h->lr, 2 * h->l2, batch, epochs);
	for (int i = 0; i < sp->n; i++) {
		const sk_specline *l = &sp->lines[i];
		int aff = sk_layer_affine(arch->seq->layers[i], &a);
		if (!strcmp(l->type, "dropout"))
			continue;
		if (is_activation(l->type)) {
			fprintf(f, "%s\ndropout p=%.4g\n", h->activation, h->dropout);
			continue;
		}
		fputs(l->type, f);
		for (int k = 0; k < l->npos; k++)
			if (i == last && k == 0)
				fprintf(f, " %d", nclasses);
			else
				fprintf(f, " %s", l->pos[k]);
		for (int k = 0; k < l->nkv; k++)
			if (!aff || (strcmp(l->key[k], "init") && strcmp(l->key[k], "scale")))
				fprintf(f, " %s=%s", l->key[k], l->val[k]);
		if (aff)
			fprintf(f, " init=%s", h->init);
		if (aff && !strcmp(h->init, "normal"))
			fprintf(f, " scale=%.6g", h->init_std);
		fputc('\n', f);
	}
	if (fclose(f) != 0 || !s) {
		free(s);
		sk_error("out of memory");
		return NULL;
	}
	return s;
}

/* ---- a run ---- */

void sk_zoo_run_defaults(sk_zoo_run_config *c)
{
	memset(c, 0, sizeof *c);
	c->arch = "zoo-cnn";
	c->seed = 1;
	c->batch = 512;
	c->micro_batch = 64;
	c->eval_train = 2000;
	sk_zoo_run_checkpoints(c, "0,1,2,3,6,12,18");
}

int sk_zoo_run_checkpoints(sk_zoo_run_config *c, const char *list)
{
	const char *p = list;
	int last = -1;
	c->ncheck = 0;
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 0 || v > 100000 || v <= last || (*end && *end != ',') || c->ncheck == SK_ZOO_CHECK_MAX)
			return sk_error("--checkpoints wants increasing epochs such as 0,1,2,3, not '%s'", list);
		c->check[c->ncheck++] = (int)v;
		last = (int)v;
		p = *end ? end + 1 : end;
	}
	return c->ncheck ? 0 : sk_error("--checkpoints is empty");
}

/* A member kept in memory until the run ends, so that every member's
 * attributes can say how the run ended. */
typedef struct member {
	sk_attrs attrs;
	float *w;           /* every parameter, stream order */
} member;

struct sk_zoo_run {
	sk_zoo_run_config c;
	sk_zoo_run_result res;
	sk_dataset train, test;
	int64_t ntrain_eval;
	sk_model *m, *ev;        /* the trained model; the evaluation model (the same spec) */
	sk_param **mps, **ps;    /* their parameters, stream order (the same list) */
	int np;
	size_t nw;               /* their total size */
	float *xb;
	member mem[SK_ZOO_CHECK_MAX];
	int epochs_done;         /* epochs the trainer finished */
	int failed;              /* a member could not be kept (res.why says why) */
	volatile sig_atomic_t stop;   /* asks the trainer to stop: failed, or the parameters not finite */
};

#define EVAL_BATCH 256

/* Loss and accuracy of the evaluation model on the first n examples of d,
 * over the model's outputs (any number of classes). */
static int evaluate(sk_zoo_run *z, const sk_dataset *d, int64_t n, double *loss, double *acc)
{
	sk_ctx c = {0};
	double ls = 0;
	int64_t correct = 0;
	int64_t idx[EVAL_BATCH];
	int32_t lab[EVAL_BATCH];
	for (int64_t i0 = 0; i0 < n; i0 += EVAL_BATCH) {
		int b = (int)(n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH), cor = 0;
		for (int k = 0; k < b; k++)
			idx[k] = i0 + k;
		sk_dataset_gather(d, idx, b, z->xb, lab);
		const float *y = sk_seq_forward(z->ev->seq, &c, b, z->xb);
		if (!y)
			return -1;
		/* a loss that overflows is not finite: recorded as 1e9, not an error */
		ls += sk_loss_xent(b, z->ev->nclasses, y, lab, 1.0, NULL, &cor);
		correct += cor;
	}
	*loss = ls / (double)n;
	*acc = (double)correct / (double)n;
	return 0;
}

/* Keep the trained model as the member of `epoch` (after `step` steps):
 * its parameters copied once, into the member and into the evaluation
 * model, then evaluated. */
static int keep_member(sk_zoo_run *z, int epoch, int64_t step)
{
	double t0 = clock_s(), trl, tra, tel, tea;
	member *mb = &z->mem[z->res.members];
	size_t o = 0;
	if (!(mb->w = sk_alloc_array(z->nw ? z->nw : 1, sizeof(float))))
		return -1;
	for (int i = 0; i < z->np; i++) {
		memcpy(z->ps[i]->w, z->mps[i]->w, sizeof(float) * z->ps[i]->size);
		memcpy(mb->w + o, z->mps[i]->w, sizeof(float) * z->ps[i]->size);
		o += z->ps[i]->size;
	}
	if (evaluate(z, &z->train, z->ntrain_eval, &trl, &tra) < 0 || evaluate(z, &z->test, z->test.n, &tel, &tea) < 0 ||
	    sk_attrs_copy(&mb->attrs, &z->ev->attrs) < 0 || sk_attrs_setf(&mb->attrs, "epoch", "%d", epoch) < 0 ||
	    sk_attrs_setf(&mb->attrs, "steps", "%lld", (long long)step) < 0 ||
	    sk_attrs_setf(&mb->attrs, "train_loss", "%.6g", isfinite(trl) ? trl : 1e9) < 0 ||
	    sk_attrs_setf(&mb->attrs, "train_acc", "%.6g", tra) < 0 ||
	    sk_attrs_setf(&mb->attrs, "test_loss", "%.6g", isfinite(tel) ? tel : 1e9) < 0 ||
	    sk_attrs_setf(&mb->attrs, "test_acc", "%.6g", tea) < 0)
		return -1;
	z->res.members++;
	z->res.seconds[SK_ZOO_T_EVAL] += clock_s() - t0;
	return 0;
}

/* The checkpoint of `epoch`, after `step` steps: a member, or the end of a
 * diverging run when the parameters are no longer finite (such a network
 * is not kept).  -1 on an error. */
static int checkpoint(sk_zoo_run *z, int epoch, int64_t step)
{
	for (int i = 0; i < z->np; i++)
		for (size_t k = 0; k < z->mps[i]->size; k++)
			if (!isfinite(z->mps[i]->w[k])) {
				z->res.diverged = 1;
				z->res.diverged_epoch = epoch;
				z->res.diverged_step = step;
				snprintf(z->res.why, sizeof z->res.why, "parameters are not finite after epoch %d (step %lld)",
				         epoch, (long long)step);
				z->stop = 1;
				return 0;
			}
	return keep_member(z, epoch, step);
}

static void on_epoch(const sk_epoch_stats *s, void *arg)
{
	sk_zoo_run *z = arg;
	z->epochs_done = s->epoch;
	for (int i = 0; i < z->c.ncheck && !z->stop; i++)
		if (z->c.check[i] == s->epoch && checkpoint(z, s->epoch, s->step) < 0) {
			snprintf(z->res.why, sizeof z->res.why, "member of epoch %d: %s", s->epoch, sk_errmsg());
			z->failed = 1;
			z->stop = 1;
		}
}

/* The number of classes is the data's: labels 0..K-1, and the `classes`
 * attribute of the images, when present, names them all. */
static int count_classes(const sk_dataset *d, const char *path, int *nclasses)
{
	const char *names = sk_attrs_get(&d->attrs, "classes");
	for (int64_t i = 0; i < d->n; i++) {
		if (d->labels[i] < 0 || d->labels[i] > 65535)
			return sk_error("%s: example %lld has label %d, outside 0..65535", path, (long long)i, d->labels[i]);
		if (d->labels[i] >= *nclasses)
			*nclasses = d->labels[i] + 1;
	}
	if (names) {
		int nn = 1;
		for (const char *c = names; *c; c++)
			nn += *c == ',';
		if (nn > *nclasses)
			*nclasses = nn;
	}
	return 0;
}

/* The run's attributes, which every member carries: with the command and
 * the data, enough to rebuild it bit for bit on a machine of the same
 * kernel path and OpenBLAS core (recorded too). */
static int set_attrs(sk_zoo_run *z, int nclasses)
{
	const sk_zoo_run_config *c = &z->c;
	const sk_zoo_hparams *h = &z->res.h;
	sk_attrs *a = &z->ev->attrs;
	unsigned long long seed = (unsigned long long)c->seed;
	if (sk_attrs_setf(a, "run", "%s-%llu", z->res.arch, seed) < 0 || sk_attrs_set(a, "arch", z->res.arch) < 0 ||
	    sk_attrs_set(a, "dataset", c->dataset ? c->dataset : "-") < 0 || sk_attrs_setf(a, "seed", "%llu", seed) < 0 ||
	    sk_attrs_set(a, "activation", h->activation) < 0 || sk_attrs_set(a, "w_init", h->init) < 0 ||
	    sk_attrs_setf(a, "init_std", "%.6g", h->init_std) < 0 || sk_attrs_set(a, "optimizer", h->optimizer) < 0 ||
	    sk_attrs_setf(a, "learning_rate", "%.6g", h->lr) < 0 || sk_attrs_setf(a, "l2reg", "%.6g", h->l2) < 0 ||
	    sk_attrs_setf(a, "dropout", "%.4g", h->dropout) < 0 ||
	    sk_attrs_setf(a, "train_fraction", "%g", h->train_fraction) < 0 ||
	    sk_attrs_setf(a, "train_examples", "%lld", (long long)z->train.n) < 0 ||
	    sk_attrs_setf(a, "classes", "%d", nclasses) < 0 || sk_attrs_setf(a, "batch", "%d", c->batch) < 0 ||
	    (c->micro_batch > 0 && sk_attrs_setf(a, "micro_batch", "%d", c->micro_batch) < 0) ||
	    sk_attrs_setf(a, "epochs", "%d", c->check[c->ncheck - 1]) < 0 ||
	    sk_attrs_set(a, "kernels", sk_cpu_path()) < 0 || sk_attrs_set(a, "blas", sk_blas_core()) < 0 ||
	    (c->command && sk_attrs_set(a, "command", c->command) < 0))
		return -1;
	return 0;
}

sk_zoo_run *sk_zoo_run_new(const sk_zoo_run_config *c, const char *trainp, const char *testp)
{
	sk_zoo_run *z = calloc(1, sizeof *z);
	sk_model *arch = NULL;
	int nclasses = 0, same;
	int64_t keep;
	char *spec = NULL, path[4096], a[64], b[64];
	double t0 = clock_s();
	if (!z) {
		sk_error("out of memory");
		return NULL;
	}
	z->c = *c;
	sk_zoo_draw(c->seed, &z->res.h);
	if (sk_zoo_arch_path(c->arch, path, sizeof path, z->res.arch, sizeof z->res.arch) < 0 ||
	    !(arch = sk_model_load(path)))
		goto fail;
	if (sk_dataset_read(trainp, &z->train) < 0 || sk_dataset_read(testp, &z->test) < 0)
		goto fail;
	if (!z->train.labels || !z->test.labels) {
		sk_error("training and test data need labels");
		goto fail;
	}
	if (count_classes(&z->train, trainp, &nclasses) < 0 || count_classes(&z->test, testp, &nclasses) < 0)
		goto fail;
	if (nclasses < 2)
		nclasses = 2;
	if (!(spec = sk_zoo_spec(arch, z->res.arch, &z->res.h, c->batch, c->check[c->ncheck - 1], nclasses)))
		goto fail;
	if (!(z->m = sk_model_from_text(spec, z->res.arch)) || !(z->ev = sk_model_from_text(spec, z->res.arch)) ||
	    sk_model_init(z->m, c->seed) < 0 || sk_seq_setup(z->ev->seq, EVAL_BATCH) < 0 ||
	    !(z->xb = sk_alloc_array(sk_shape_size(z->m->in) * EVAL_BATCH, sizeof(float))) ||
	    (z->np = sk_model_params(z->ev, &z->ps)) < 0 || sk_model_params(z->m, &z->mps) < 0)
		goto fail;
	for (int i = 0; i < z->np; i++)
		z->nw += z->ps[i]->size;
	same = z->train.ndim == z->m->in.n && z->test.ndim == z->m->in.n;
	for (int i = 0; same && i < z->m->in.n; i++)
		same = z->train.shape[i] == z->m->in.d[i] && z->test.shape[i] == z->m->in.d[i];
	if (!same) {
		sk_error("the %s architecture needs %s examples, the data's are %s", z->res.arch,
		         sk_shape_fmt(z->m->in, a, sizeof a), sk_shape_str(z->train.ndim, z->train.shape, b, sizeof b));
		goto fail;
	}
	if (z->m->nclasses != nclasses) {
		sk_error("the %s architecture's output is %s, not %d class scores", z->res.arch,
		         sk_shape_fmt(z->m->seq->out, a, sizeof a), nclasses);
		goto fail;
	}
	if (c->train_examples && c->train_examples < z->train.n)
		z->train.n = c->train_examples;
	if (c->test_examples && c->test_examples < z->test.n)
		z->test.n = c->test_examples;
	if (z->train.n < 1 || z->test.n < 1) {
		sk_error("the training and test data need examples");
		goto fail;
	}
	/* the run's fraction of the training set (at least one example): a
	 * subset drawn from its seed, in the data's order */
	keep = (int64_t)(z->res.h.train_fraction * (double)z->train.n + 0.5);
	if (keep < 1)
		keep = 1;
	if (keep < z->train.n) {
		sk_dataset rest;
		if (sk_dataset_split(&z->train, (double)(z->train.n - keep) / (double)z->train.n, c->seed, &rest) < 0)
			goto fail;
		sk_dataset_free(&rest);
	}
	z->res.train_examples = z->train.n;
	z->ntrain_eval = z->train.n < c->eval_train ? z->train.n : c->eval_train;
	if (set_attrs(z, nclasses) < 0)
		goto fail;
	free(spec);
	sk_model_free(arch);
	z->res.seconds[SK_ZOO_T_LOAD] = clock_s() - t0;
	return z;
fail:
	free(spec);
	sk_model_free(arch);
	sk_zoo_run_free(z);
	return NULL;
}

int sk_zoo_run_train(sk_zoo_run *z, sk_zoo_run_result *res)
{
	const sk_zoo_run_config *c = &z->c;
	int epochs = c->check[c->ncheck - 1];
	if (c->check[0] == 0 && checkpoint(z, 0, 0) < 0)
		return -1;
	/* a run ends completed, or diverged: a non-finite loss stops it, as in
	 * the original zoo, and so do parameters no longer finite at a
	 * checkpoint; the members kept are marked.  Any other error fails the
	 * run. */
	if (epochs > 0 && !z->stop) {
		double t0 = clock_s(), e0 = z->res.seconds[SK_ZOO_T_EVAL];
		sk_train_config tc;
		sk_recipe_extras x;
		sk_recipe rc;
		sk_trainer *t;
		int st;
		sk_train_defaults(&tc);
		sk_recipe_extras_defaults(&x);
		sk_recipe_init(&rc);
		st = sk_recipe_from_spec(&rc, z->m->spec) < 0 || sk_recipe_apply(&rc, &tc, &x) < 0 ? -1 : 0;
		sk_recipe_free(&rc);
		if (st < 0)
			return -1;
		tc.threads = 1;
		tc.seed = c->seed;
		tc.drop_last = 1;
		tc.micro_batch = c->micro_batch;
		tc.checkpoint = NULL;
		tc.command = c->command;
		tc.stop = &z->stop;
		tc.on_epoch = on_epoch;
		tc.arg = z;
		if (!(t = sk_trainer_new(z->m, &tc, &z->train, NULL)))
			return -1;
		st = sk_trainer_run(t);
		if (st < 0 && !z->res.diverged && !z->failed) {
			snprintf(z->res.why, sizeof z->res.why, "%s", sk_errmsg());
			if (sk_trainer_diverged(t)) {
				z->res.diverged = 1;
				z->res.diverged_step = sk_trainer_diverged(t);
				z->res.diverged_epoch = z->epochs_done + 1;
			} else
				z->failed = 1;
		}
		sk_trainer_free(t);
		z->res.seconds[SK_ZOO_T_TRAIN] = clock_s() - t0 - (z->res.seconds[SK_ZOO_T_EVAL] - e0);
		if (z->failed)
			return sk_error("run %llu: %s", (unsigned long long)c->seed, z->res.why);
	}
	*res = z->res;
	return 0;
}

int sk_zoo_run_commit(sk_zoo_run *z, sk_ofile *of, int level, sk_zoo_run_result *res)
{
	double t0 = clock_s();
	FILE *f = sk_ofile_fp(of);
	for (int k = 0; k < z->res.members; k++) {
		member *mb = &z->mem[k];
		sk_attrs *a = &z->ev->attrs;
		size_t o = 0;
		for (int i = 0; i < z->np; i++) {
			memcpy(z->ps[i]->w, mb->w + o, sizeof(float) * z->ps[i]->size);
			o += z->ps[i]->size;
		}
		sk_attrs_free(a);
		*a = mb->attrs;
		sk_attrs_init(&mb->attrs);
		if (sk_attrs_setf(a, "diverged", "%d", z->res.diverged) < 0 ||
		    (z->res.diverged && (sk_attrs_setf(a, "diverged_epoch", "%d", z->res.diverged_epoch) < 0 ||
		                         sk_attrs_setf(a, "diverged_step", "%lld", (long long)z->res.diverged_step) < 0)) ||
		    sk_model_write_level(f, z->ev, 0, level) < 0) {
			sk_ofile_abort(of);
			return -1;
		}
	}
	if (sk_ofile_commit(of) < 0)
		return -1;
	z->res.seconds[SK_ZOO_T_WRITE] = clock_s() - t0;
	res->seconds[SK_ZOO_T_WRITE] = z->res.seconds[SK_ZOO_T_WRITE];
	return 0;
}

void sk_zoo_run_free(sk_zoo_run *z)
{
	if (!z)
		return;
	for (int k = 0; k < SK_ZOO_CHECK_MAX; k++) {
		sk_attrs_free(&z->mem[k].attrs);
		sk_free(z->mem[k].w);
	}
	free(z->ps);
	free(z->mps);
	sk_free(z->xb);
	sk_model_free(z->m);
	sk_model_free(z->ev);
	sk_dataset_free(&z->train);
	sk_dataset_free(&z->test);
	free(z);
}
