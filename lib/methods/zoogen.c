/* zoogen.c: the zoo generator (sk_zoo.h): hyperparameters drawn from a run
 * seed, the zoo architectures as spec templates, and one run trained by the
 * training engine (sk_trainer) keeping a member per checkpoint epoch. */
#include "sk_zoo.h"
#include "sk_loss.h"
#include "sk_model.h"
#include "sk_rng.h"
#include "sk_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- architectures ----
 * Spec templates of the Small CNN Zoo's networks (PAPERS.md 5.7): "@W"
 * stands for the drawn initialisation (" init=he scale=0.8"), "@A" for the
 * activation, "@K" for the number of classes, and a line "@D" for the
 * dropout layer (left out when the drawn rate is 0.01 or less). */
static const struct {
	const char *name, *text;
} archs[] = {
	{"zoo-cnn", "input 1 28 28 scale=0.0078431373 mean=1\n"
	            "conv 16 k=3 stride=2@W\n@A\n@D\n"
	            "conv 16 k=3 stride=2@W\n@A\n@D\n"
	            "conv 16 k=3 stride=2@W\n@A\n@D\n"
	            "gap\nlinear @K@W\n"},
	{"zoo-cnn2", "input 1 28 28 scale=0.0078431373 mean=1\n"
	             "conv 8 k=3@W\n@A\npool max k=2\n@D\n"
	             "conv 16 k=3@W\n@A\npool max k=2\n@D\n"
	             "gap\nlinear 32@W\n@A\n@D\n"
	             "linear @K@W\n"},
};

const char *sk_zoo_arch(const char *name)
{
	for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
		if (!strcmp(name, archs[i].name))
			return archs[i].text;
	sk_error("--arch is zoo-cnn or zoo-cnn2, not '%s'", name);
	return NULL;
}

/* ---- hyperparameters ---- */

static double log_uniform(sk_rng *r, double lo, double hi)
{
	return exp(log(lo) + (log(hi) - log(lo)) * sk_rng_next_uniform(r));
}

void sk_zoo_draw(uint64_t seed, sk_zoo_hparams *h)
{
	static const char *const acts[] = {"relu", "tanh"}, *const inits[] = {"he", "xavier", "normal"},
	                         *const opts[] = {"sgd", "adam", "rmsprop"};
	static const double fracs[] = {0.1, 0.25, 0.5, 1.0};
	/* ranges are our choice (PAPERS.md 5.7, 5.10), narrowed so that most
	 * short runs on small data learn something */
	sk_rng r = sk_rng_make(seed, sk_rng_hash("zoo-run"));
	int ii, oi;
	h->activation = acts[sk_rng_next_below(&r, 2)];
	ii = (int)sk_rng_next_below(&r, 3);
	h->init = inits[ii];
	h->init_scale = ii == 2 ? log_uniform(&r, 0.01, 0.5) : log_uniform(&r, 0.3, 2.0);
	oi = (int)sk_rng_next_below(&r, 3);
	h->optimizer = opts[oi];
	h->lr = oi == 0 ? log_uniform(&r, 1e-3, 1e-1) : log_uniform(&r, 3e-4, 1e-2);
	h->l2 = log_uniform(&r, 1e-8, 1e-2);
	h->dropout = 0.3 * sk_rng_next_uniform(&r);
	h->train_fraction = fracs[sk_rng_next_below(&r, 4)];
}

char *sk_zoo_spec(const char *arch, const sk_zoo_hparams *h, int batch, int epochs, int nclasses)
{
	const char *t = sk_zoo_arch(arch);
	size_t cap, o;
	char *s;
	if (!t)
		return NULL;
	cap = strlen(t) + 256;
	for (const char *p = t; *p; p++)
		cap += *p == '@' ? 128 : 0;
	if (!(s = malloc(cap))) {
		sk_error("out of memory");
		return NULL;
	}
	/* the recipe travels with every member; plain SGD has no momentum */
	o = (size_t)snprintf(s, cap, "train optimizer=%s%s lr=%.5g wd=%.5g batch=%d epochs=%d schedule=constant\n",
	                     h->optimizer, strcmp(h->optimizer, "sgd") ? "" : " momentum=0", h->lr, h->l2, batch,
	                     epochs);
	for (const char *p = t; *p && o < cap;) {
		if (!strncmp(p, "@D\n", 3)) {
			if (h->dropout > 0.01)
				o += (size_t)snprintf(s + o, cap - o, "dropout p=%.3f\n", h->dropout);
			p += 3;
		} else if (!strncmp(p, "@W", 2)) {
			o += (size_t)snprintf(s + o, cap - o, " init=%s scale=%.5g", h->init, h->init_scale);
			p += 2;
		} else if (!strncmp(p, "@A", 2)) {
			o += (size_t)snprintf(s + o, cap - o, "%s", h->activation);
			p += 2;
		} else if (!strncmp(p, "@K", 2)) {
			o += (size_t)snprintf(s + o, cap - o, "%d", nclasses);
			p += 2;
		} else
			s[o++] = *p++;
	}
	s[o < cap ? o : cap - 1] = 0;
	return s;
}

/* ---- a run ---- */

void sk_zoo_run_defaults(sk_zoo_run_config *c)
{
	memset(c, 0, sizeof *c);
	c->arch = "zoo-cnn";
	c->seed = 1;
	c->batch = 64;
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
	sk_model *m, *ev;   /* the trained model; the evaluation model */
	sk_param **ps;      /* the evaluation model's parameters */
	int np;
	size_t nw;          /* their total size */
	float *xb;
	member mem[SK_ZOO_CHECK_MAX];
	int failed;
};

#define EVAL_BATCH 256

static int evaluate(sk_zoo_run *z, const sk_dataset *d, int64_t n, double *loss, double *acc)
{
	sk_ctx c = {0};
	double ls = 0;
	int64_t correct = 0;
	int64_t idx[EVAL_BATCH];
	int32_t lab[EVAL_BATCH];
	if (sk_model_copy_params(z->ev, z->m, NULL) < 0)
		return -1;
	for (int64_t i0 = 0; i0 < n; i0 += EVAL_BATCH) {
		int b = (int)(n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH), cor = 0;
		for (int k = 0; k < b; k++)
			idx[k] = i0 + k;
		sk_dataset_gather(d, idx, b, z->xb, lab);
		const float *y = sk_seq_forward(z->ev->seq, &c, b, z->xb);
		if (!y)
			return -1;
		/* a diverged model's loss is not finite: recorded, not an error */
		ls += sk_loss_xent(b, z->ev->nclasses, y, lab, 1.0, NULL, &cor);
		correct += cor;
	}
	*loss = ls / (double)n;
	*acc = (double)correct / (double)n;
	return 0;
}

static int keep_member(sk_zoo_run *z, int epoch)
{
	double trl, tra, tel, tea;
	member *mb = &z->mem[z->res.members];
	size_t o = 0;
	if (evaluate(z, &z->train, z->ntrain_eval, &trl, &tra) < 0 || evaluate(z, &z->test, z->test.n, &tel, &tea) < 0)
		return -1;
	sk_attrs_init(&mb->attrs);
	if (sk_attrs_copy(&mb->attrs, &z->ev->attrs) < 0 || sk_attrs_setf(&mb->attrs, "epoch", "%d", epoch) < 0 ||
	    sk_attrs_setf(&mb->attrs, "train_loss", "%.6g", isfinite(trl) ? trl : 1e9) < 0 ||
	    sk_attrs_setf(&mb->attrs, "train_acc", "%.6g", tra) < 0 ||
	    sk_attrs_setf(&mb->attrs, "test_loss", "%.6g", isfinite(tel) ? tel : 1e9) < 0 ||
	    sk_attrs_setf(&mb->attrs, "test_acc", "%.6g", tea) < 0 ||
	    !(mb->w = sk_alloc_array(z->nw ? z->nw : 1, sizeof(float)))) {
		sk_attrs_free(&mb->attrs);
		return -1;
	}
	for (int i = 0; i < z->np; i++) {
		memcpy(mb->w + o, z->ps[i]->w, sizeof(float) * z->ps[i]->size);
		o += z->ps[i]->size;
	}
	z->res.members++;
	return 0;
}

static void on_epoch(const sk_epoch_stats *s, void *arg)
{
	sk_zoo_run *z = arg;
	if (z->failed)
		return;
	for (int i = 0; i < z->c.ncheck; i++)
		if (z->c.check[i] == s->epoch && keep_member(z, s->epoch) < 0)
			z->failed = 1;
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

static int set_attrs(sk_zoo_run *z, int nclasses)
{
	const sk_zoo_run_config *c = &z->c;
	const sk_zoo_hparams *h = &z->res.h;
	sk_attrs *a = &z->ev->attrs;
	unsigned long long seed = (unsigned long long)c->seed;
	if (sk_attrs_setf(a, "run", "%s-%llu", c->arch, seed) < 0 || sk_attrs_set(a, "arch", c->arch) < 0 ||
	    sk_attrs_set(a, "dataset", c->dataset ? c->dataset : "-") < 0 || sk_attrs_setf(a, "seed", "%llu", seed) < 0 ||
	    sk_attrs_set(a, "activation", h->activation) < 0 || sk_attrs_set(a, "w_init", h->init) < 0 ||
	    sk_attrs_setf(a, "init_scale", "%.5g", h->init_scale) < 0 ||
	    sk_attrs_setf(a, "learning_rate", "%.5g", h->lr) < 0 || sk_attrs_setf(a, "l2reg", "%.5g", h->l2) < 0 ||
	    sk_attrs_setf(a, "dropout", "%.4g", h->dropout > 0.01 ? h->dropout : 0.0) < 0 ||
	    sk_attrs_set(a, "optimizer", h->optimizer) < 0 ||
	    sk_attrs_setf(a, "train_fraction", "%g", h->train_fraction) < 0 ||
	    sk_attrs_setf(a, "train_examples", "%lld", (long long)z->train.n) < 0 ||
	    sk_attrs_setf(a, "classes", "%d", nclasses) < 0 || sk_attrs_setf(a, "batch", "%d", c->batch) < 0 ||
	    (c->command && sk_attrs_set(a, "command", c->command) < 0))
		return -1;
	return 0;
}

sk_zoo_run *sk_zoo_run_new(const sk_zoo_run_config *c, const char *trainp, const char *testp)
{
	sk_zoo_run *z = calloc(1, sizeof *z);
	int nclasses = 0, same;
	char *spec = NULL;
	if (!z) {
		sk_error("out of memory");
		return NULL;
	}
	z->c = *c;
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
	sk_zoo_draw(c->seed, &z->res.h);
	if (!(spec = sk_zoo_spec(c->arch, &z->res.h, c->batch, c->check[c->ncheck - 1], nclasses)))
		goto fail;
	if (c->train_examples && c->train_examples < z->train.n)
		z->train.n = c->train_examples;
	if (c->test_examples && c->test_examples < z->test.n)
		z->test.n = c->test_examples;
	if (z->res.h.train_fraction < 1) {
		sk_dataset rest;
		if (sk_dataset_split(&z->train, 1 - z->res.h.train_fraction, c->seed, &rest) < 0)
			goto fail;
		sk_dataset_free(&rest);
	}
	z->ntrain_eval = z->train.n < c->eval_train ? z->train.n : c->eval_train;
	if (!(z->m = sk_model_from_text(spec, c->arch)) || !(z->ev = sk_model_from_text(spec, c->arch)) ||
	    sk_model_init(z->m, c->seed) < 0 || sk_seq_setup(z->ev->seq, EVAL_BATCH) < 0 ||
	    !(z->xb = sk_alloc_array(sk_shape_size(z->m->in) * EVAL_BATCH, sizeof(float))) ||
	    (z->np = sk_model_params(z->ev, &z->ps)) < 0)
		goto fail;
	for (int i = 0; i < z->np; i++)
		z->nw += z->ps[i]->size;
	same = z->train.ndim == z->m->in.n && z->test.ndim == z->m->in.n;
	for (int i = 0; same && i < z->m->in.n; i++)
		same = z->train.shape[i] == z->m->in.d[i] && z->test.shape[i] == z->m->in.d[i];
	if (!same) {
		sk_error("the %s architecture needs 1x28x28 examples", c->arch);
		goto fail;
	}
	if (set_attrs(z, nclasses) < 0)
		goto fail;
	free(spec);
	return z;
fail:
	free(spec);
	sk_zoo_run_free(z);
	return NULL;
}

int sk_zoo_run_train(sk_zoo_run *z, sk_zoo_run_result *res)
{
	const sk_zoo_run_config *c = &z->c;
	int epochs = c->check[c->ncheck - 1];
	if (c->check[0] == 0 && keep_member(z, 0) < 0)
		return -1;
	/* a run ends completed, or diverged: a non-finite loss stops it, as in
	 * the original zoo, and its members are kept and marked; any other error
	 * fails the run */
	if (epochs > 0) {
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
		tc.checkpoint = NULL;
		tc.command = c->command;
		tc.on_epoch = on_epoch;
		tc.arg = z;
		if (!(t = sk_trainer_new(z->m, &tc, &z->train, NULL)))
			return -1;
		st = sk_trainer_run(t);
		z->res.diverged = sk_trainer_diverged(t);
		snprintf(z->res.why, sizeof z->res.why, "%s", sk_errmsg());
		sk_trainer_free(t);
		if (z->failed || (st < 0 && !z->res.diverged))
			return sk_error("run %llu: %s", (unsigned long long)c->seed, z->res.why);
	}
	*res = z->res;
	return 0;
}

int sk_zoo_run_write(sk_zoo_run *z, FILE *f, int level)
{
	for (int k = 0; k < z->res.members; k++) {
		member *mb = &z->mem[k];
		size_t o = 0;
		for (int i = 0; i < z->np; i++) {
			memcpy(z->ps[i]->w, mb->w + o, sizeof(float) * z->ps[i]->size);
			o += z->ps[i]->size;
		}
		sk_attrs_free(&z->ev->attrs);
		z->ev->attrs = mb->attrs;
		sk_attrs_init(&mb->attrs);
		if (sk_attrs_set(&z->ev->attrs, "run_status", z->res.diverged ? "diverged" : "completed") < 0 ||
		    (z->res.diverged && sk_attrs_setf(&z->ev->attrs, "diverged_step", "%lld", (long long)z->res.diverged) < 0) ||
		    sk_model_write_level(f, z->ev, 0, level) < 0)
			return -1;
	}
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
	sk_free(z->xb);
	sk_model_free(z->m);
	sk_model_free(z->ev);
	sk_dataset_free(&z->train);
	sk_dataset_free(&z->test);
	free(z);
}
