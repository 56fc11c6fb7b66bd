/* recipe.c: training recipes: the `train` lines of a spec, the command
 * line's overrides and a checkpoint's record of them, as one set of
 * key=value texts applied to a training configuration; and a run built on
 * them: its provenance, the resume rule, the model's preparation and final
 * attributes, shared by the front ends (see sk_train.h). */
#include "sk_train.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sk_run_keys[] = {"seed",        "threads", "valid-split", "freeze", "init", "init-layers",
                                   "micro-batch", NULL};

const char *sk_recipe_key(int i)
{
	int n = 0;
	while (sk_spec_recipe_keys[n])
		n++;
	return i < n ? sk_spec_recipe_keys[i] : sk_run_keys[i - n];
}

static int key_index(const char *key)
{
	for (int i = 0; sk_recipe_key(i); i++)
		if (!strcmp(sk_recipe_key(i), key))
			return i;
	return -1;
}

void sk_recipe_init(sk_recipe *r) { memset(r, 0, sizeof *r); }

void sk_recipe_free(sk_recipe *r)
{
	for (int i = 0; i < SK_RECIPE_KEYS; i++)
		free(r->val[i]);
	memset(r, 0, sizeof *r);
}

static int num(const char *v, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (!*v || *end || errno == ERANGE || isnan(x))
		return sk_error("'%s' is not a number", v);
	if (x < lo || x > hi)
		return sk_error("%g is outside %g..%g", x, lo, hi);
	*out = x;
	return 0;
}

static int integer(const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (!*v || *end || errno == ERANGE)
		return sk_error("'%s' is not an integer", v);
	if (x < lo || x > hi)
		return sk_error("%ld is outside %ld..%ld", x, lo, hi);
	*out = x;
	return 0;
}

/* The keys whose value is a number in a range: the field it sets, in the
 * configuration or (extra) in the extras, and the field's type: d double,
 * f float (both parsed as numbers in lo..hi), i int, u uint64_t (both parsed
 * as integers in ilo..ihi). */
#define CFG(f) 0, offsetof(sk_train_config, f)
#define EXTRA(f) 1, offsetof(sk_recipe_extras, f)
static const struct numkey {
	const char *key;
	char type;
	int extra;
	size_t off;
	double lo, hi;
	long ilo, ihi;
} numkeys[] = {
	{"lr", 'd', CFG(sched.lr), 0, 1e300, 0, 0},
	{"momentum", 'f', CFG(opt.momentum), 0, 1, 0, 0},
	{"wd", 'f', CFG(opt.wd), 0, 1e6, 0, 0},
	{"step-size", 'i', CFG(sched.step_size), 0, 0, 1, 1000000},
	{"gamma", 'd', CFG(sched.gamma), 0, 1e6, 0, 0},
	{"warmup", 'd', CFG(sched.warmup), 0, 1000000, 0, 0},
	{"min-lr", 'd', CFG(sched.min_lr), 0, 1e300, 0, 0},
	{"epochs", 'i', CFG(epochs), 0, 0, 0, 1000000},
	{"batch", 'i', CFG(batch), 0, 0, 1, 1 << 20},
	{"crop", 'i', CFG(crop_pad), 0, 0, 0, 1024},
	{"init-examples", 'i', EXTRA(unsup_n), 0, 0, 1, 100000000},
	{"seed", 'u', CFG(seed), 0, 0, 0, 0x7fffffffffffffffL},
	{"threads", 'i', CFG(threads), 0, 0, 1, 256},
	{"micro-batch", 'i', CFG(micro_batch), 0, 0, 0, 1 << 20},
	{"valid-split", 'd', EXTRA(valid_split), 1e-9, 1 - 1e-9, 0, 0},
};
#undef CFG
#undef EXTRA

static int set_number(const struct numkey *k, const char *v, sk_train_config *c, sk_recipe_extras *x)
{
	char *p = (k->extra ? (char *)x : (char *)c) + k->off;
	double d = 0;
	long l = 0;
	if (k->type == 'd' || k->type == 'f') {
		if (num(v, k->lo, k->hi, &d) < 0)
			return -1;
		if (k->type == 'd')
			*(double *)(void *)p = d;
		else
			*(float *)(void *)p = (float)d;
	} else {
		if (integer(v, k->ilo, k->ihi, &l) < 0)
			return -1;
		if (k->type == 'i')
			*(int *)(void *)p = (int)l;
		else
			*(uint64_t *)(void *)p = (uint64_t)l;
	}
	return 0;
}

/* Apply one key=value to c and x; -1 with a message naming the value. */
static int apply1(const char *key, const char *v, sk_train_config *c, sk_recipe_extras *x)
{
	for (size_t i = 0; i < sizeof numkeys / sizeof *numkeys; i++)
		if (!strcmp(key, numkeys[i].key))
			return set_number(&numkeys[i], v, c, x);
	if (!strcmp(key, "optimizer")) {
		sk_opt_kind k;
		if (sk_optim_parse(v, &k) < 0)
			return -1;
		sk_optim_defaults(&c->opt, k);
	} else if (!strcmp(key, "schedule")) {
		if (sk_sched_parse(v, &c->sched.kind) < 0)
			return -1;
	} else if (!strcmp(key, "milestones")) {
		if (sk_sched_parse_milestones(&c->sched, v) < 0)
			return -1;
	} else if (!strcmp(key, "loss")) {
		if (!strcmp(v, "xent"))
			c->loss = SK_LOSS_XENT;
		else if (!strcmp(v, "mse"))
			c->loss = SK_LOSS_MSE;
		else
			return sk_error("'%s' is not one of: xent, mse", v);
	} else if (!strcmp(key, "flip")) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return sk_error("'%s' is not 0 or 1", v);
		c->flip = v[0] == '1';
	} else if (!strcmp(key, "init-unsupervised")) {
		size_t n = strlen(v);
		if (n == 0 || n >= sizeof x->unsup)
			return sk_error("'%s' is not a method name", v);
		for (size_t i = 0; i < n; i++)
			if (!(islower((unsigned char)v[i]) || isdigit((unsigned char)v[i]) || v[i] == '-' || v[i] == '_'))
				return sk_error("'%s' is not a method name (such as kmeans, gmm, default or none)", v);
		if (!strcmp(v, "none"))
			x->unsup[0] = 0;
		else
			memcpy(x->unsup, v, n + 1);
	} else if (!strcmp(key, "freeze")) {
		if (!*v || strstr(v, ",,") || v[0] == ',' || v[strlen(v) - 1] == ',')
			return sk_error("'%s' is not a list of layer names", v);
		x->freeze = v;
	} else if (!strcmp(key, "init") || !strcmp(key, "init-layers")) {
		if (!*v)
			return sk_error("an empty name");
		*(strcmp(key, "init") ? &x->init_layers : &x->init) = v;
	} else {
		return sk_error("unknown recipe key '%s'", key);
	}
	return 0;
}

void sk_recipe_extras_defaults(sk_recipe_extras *x)
{
	memset(x, 0, sizeof *x);
	x->unsup_n = 4000;
}

int sk_recipe_set(sk_recipe *r, const char *key, const char *val)
{
	int k = key_index(key);
	sk_train_config c;
	sk_recipe_extras x;
	char *v;
	if (k < 0)
		return sk_error("unknown recipe key '%s'", key);
	sk_train_defaults(&c);
	sk_recipe_extras_defaults(&x);
	if (apply1(key, val, &c, &x) < 0)
		return -1;
	if (!strcmp(key, "freeze") && r->val[k]) {   /* layers add up */
		size_t a = strlen(r->val[k]), b = strlen(val);
		if (!(v = malloc(a + b + 2)))
			return sk_error("out of memory");
		memcpy(v, r->val[k], a);
		v[a] = ',';
		memcpy(v + a + 1, val, b + 1);
	} else if (!(v = strdup(val)))
		return sk_error("out of memory");
	free(r->val[k]);
	r->val[k] = v;
	return 0;
}

const char *sk_recipe_get(const sk_recipe *r, const char *key)
{
	int k = key_index(key);
	return k < 0 ? NULL : r->val[k];
}

int sk_recipe_from_spec(sk_recipe *r, const sk_spec *s)
{
	for (int j = 0; j < s->nrecipe; j++) {
		const sk_specline *o = &s->recipe[j];
		for (int i = 0; i < o->nkv; i++)
			if (sk_recipe_set(r, o->key[i], o->val[i]) < 0)
				return sk_error_prefix("%s:%d:%d: train: %s", s->srcname, o->line, o->kvcol[i], o->key[i]);
	}
	return 0;
}

/* "key=value key=value ..." (a formatted recipe) into a, in order. */
static int words(const char *text, sk_attrs *a)
{
	char w[1024];
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, " ");
		const char *eq = memchr(p, '=', n);
		if (n) {
			if (!eq || eq == p || n >= sizeof w)
				return sk_error("recipe '%s': expected key=value words", text);
			memcpy(w, p, n);
			w[n] = 0;
			w[eq - p] = 0;
			if (sk_attrs_set(a, w, w + (eq - p) + 1) < 0)
				return -1;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

int sk_recipe_parse(sk_recipe *r, const char *text)
{
	sk_attrs a;
	int rc = 0;
	sk_attrs_init(&a);
	if (words(text, &a) < 0)
		rc = -1;
	for (int i = 0; rc == 0 && i < a.n; i++)
		if (sk_recipe_set(r, a.key[i], a.val[i]) < 0)
			rc = sk_error_prefix("recipe %s", a.key[i]);
	sk_attrs_free(&a);
	return rc;
}

void sk_recipe_merge(sk_recipe *dst, const sk_recipe *over)
{
	for (int i = 0; i < SK_RECIPE_KEYS; i++)
		if (over->val[i]) {
			char *v = strdup(over->val[i]);
			if (v) {
				free(dst->val[i]);
				dst->val[i] = v;
			}
		}
}

int sk_recipe_apply(const sk_recipe *r, sk_train_config *c, sk_recipe_extras *x)
{
	int kopt = key_index("optimizer");
	/* the optimizer first: it resets momentum and decay to its defaults */
	if (r->val[kopt] && apply1("optimizer", r->val[kopt], c, x) < 0)
		return sk_error_prefix("optimizer");
	for (int i = 0; sk_recipe_key(i); i++)
		if (i != kopt && r->val[i] && apply1(sk_recipe_key(i), r->val[i], c, x) < 0)
			return sk_error_prefix("%s", sk_recipe_key(i));
	if (!r->val[key_index("lr")])
		c->sched.lr = sk_optim_default_lr(c->opt.kind);
	if (c->sched.kind == SK_SCHED_MULTISTEP && c->sched.nmilestones == 0)
		return sk_error("schedule multistep needs milestones=E1,E2,...");
	c->sched.epochs = c->epochs;
	return 0;
}

/* The shortest text that reads back as the same double (or float). */
static const char *exact(char *b, size_t n, double v, int is_float)
{
	for (int p = 6; p <= 17; p++) {
		snprintf(b, n, "%.*g", p, v);
		double back = strtod(b, NULL);
		if (is_float ? (float)back == (float)v : back == v)
			break;
	}
	return b;
}

char *sk_recipe_format(const sk_train_config *c, const sk_recipe_extras *x, char *buf, size_t n)
{
	size_t len = 0;
	char t1[32], t2[32];
#define PUT(...) (len += (size_t)snprintf(buf + len, len < n ? n - len : 0, __VA_ARGS__))
	if (n == 0)
		return buf;
	buf[0] = 0;
	PUT("optimizer=%s lr=%s", sk_optim_name(c->opt.kind), exact(t1, sizeof t1, c->sched.lr, 0));
	if (c->opt.kind != SK_OPT_ADAM && c->opt.kind != SK_OPT_ADAMW && c->opt.kind != SK_OPT_NADAM)
		PUT(" momentum=%s", exact(t1, sizeof t1, c->opt.momentum, 1));
	PUT(" wd=%s schedule=%s", exact(t1, sizeof t1, c->opt.wd, 1), sk_sched_name(c->sched.kind));
	if (c->sched.kind == SK_SCHED_STEP)
		PUT(" step-size=%d gamma=%s", c->sched.step_size, exact(t1, sizeof t1, c->sched.gamma, 0));
	if (c->sched.kind == SK_SCHED_MULTISTEP) {
		PUT(" milestones=");
		for (int i = 0; i < c->sched.nmilestones; i++)
			PUT("%s%d", i ? "," : "", c->sched.milestones[i]);
		PUT(" gamma=%s", exact(t1, sizeof t1, c->sched.gamma, 0));
	}
	if (c->sched.kind == SK_SCHED_COSINE)
		PUT(" min-lr=%s", exact(t1, sizeof t1, c->sched.min_lr, 0));
	PUT(" warmup=%s epochs=%d batch=%d loss=%s crop=%d flip=%d", exact(t2, sizeof t2, c->sched.warmup, 0),
	    c->epochs, c->batch,
	    c->loss == SK_LOSS_MSE ? "mse" : "xent", c->crop_pad, c->flip);
	PUT(" init-unsupervised=%s", x->unsup[0] ? x->unsup : "none");
	if (x->unsup[0])
		PUT(" init-examples=%d", x->unsup_n);
#undef PUT
	if (len >= n && n > 4)
		memcpy(buf + n - 4, "...", 4);
	return buf;
}

/* ---- a run: options, provenance and resume ---- */

void sk_run_init(sk_run *r)
{
	memset(r, 0, sizeof *r);
	sk_recipe_extras_defaults(&r->x);
	sk_attrs_init(&r->hparams);
}

void sk_run_free(sk_run *r)
{
	sk_trainer_free(r->trainer);
	sk_dataset_free(&r->train);
	sk_dataset_free(&r->valid);
	sk_recipe_free(&r->given);
	sk_recipe_free(&r->all);
	sk_attrs_free(&r->hparams);
	memset(r, 0, sizeof *r);
}

static int listed(const char *k, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(*list, k))
			return 1;
	return 0;
}

int sk_hparams_check(const sk_attrs *now, const sk_attrs *ck, const char *const *allowed)
{
	for (int i = 0; i < now->n; i++) {
		const char *k = now->key[i], *v = sk_attrs_get(ck, k);
		if (!listed(k, allowed) && (!v || strcmp(v, now->val[i])))
			return sk_error("--resume: --%s %s differs from the checkpoint's %s", k, now->val[i], v ? v : "(none)");
	}
	for (int i = 0; i < ck->n; i++)
		if (!listed(ck->key[i], allowed) && !sk_attrs_get(now, ck->key[i]))
			return sk_error("--resume: the checkpoint's run has --%s %s, this one has not", ck->key[i], ck->val[i]);
	return 0;
}

/* The run's provenance: the recipe as formatted, then the run keys set. */
static int hparams(const sk_run *r, const sk_train_config *c, sk_attrs *a)
{
	const sk_recipe_extras *x = &r->x;
	char t[32];
	if (words(r->recipe, a) < 0 || sk_attrs_setf(a, "seed", "%llu", (unsigned long long)c->seed) < 0 ||
	    sk_attrs_setf(a, "threads", "%d", c->threads) < 0 ||
	    (x->valid_split > 0 && sk_attrs_set(a, "valid-split", exact(t, sizeof t, x->valid_split, 0)) < 0) ||
	    (x->freeze && sk_attrs_set(a, "freeze", x->freeze) < 0) || (x->init && sk_attrs_set(a, "init", x->init) < 0) ||
	    (x->init_layers && sk_attrs_set(a, "init-layers", x->init_layers) < 0) ||
	    (c->micro_batch > 0 && sk_attrs_setf(a, "micro-batch", "%d", c->micro_batch) < 0))
		return -1;
	return 0;
}

static long attr_long(const sk_attrs *a, const char *key, long dflt)
{
	const char *s = sk_attrs_get(a, key);
	char *end;
	long v;
	if (!s || !*s)
		return dflt;
	v = strtol(s, &end, 10);
	return *end ? dflt : v;
}

/* What a checkpoint recorded: its hyperparameters (hp.*; in checkpoints
 * from before they were recorded: the recipe, seed and threads, and
 * *legacy set), the epochs it has run and the ranks of its run; warn (n
 * bytes) says whether its machine differs. */
static int recorded(const char *ckpt, sk_attrs *rec, int *done, int *ranks, int *legacy, char *warn, size_t n)
{
	sk_attrs ma, st;
	int rc = -1;
	sk_attrs_init(&ma);
	sk_attrs_init(&st);
	if (sk_checkpoint_attrs(ckpt, &ma, &st) < 0)
		goto out;
	for (int i = 0; i < st.n; i++)
		if (!strncmp(st.key[i], "hp.", 3) && sk_attrs_set(rec, st.key[i] + 3, st.val[i]) < 0)
			goto out;
	if ((*legacy = rec->n == 0)) {
		const char *t = sk_attrs_get(&ma, "recipe"), *seed = sk_attrs_get(&st, "seed"),
		           *threads = sk_attrs_get(&st, "threads");
		if ((t && words(t, rec) < 0) || (seed && sk_attrs_set(rec, "seed", seed) < 0) ||
		    (threads && sk_attrs_set(rec, "threads", threads) < 0))
			goto out;
	}
	*done = (int)attr_long(&st, "epoch", 0);
	*ranks = (int)attr_long(&st, "ranks", 1);
	if (warn)
		sk_checkpoint_machine_differs(&st, warn, n);
	rc = 0;
out:
	sk_attrs_free(&ma);
	sk_attrs_free(&st);
	return rc;
}

int sk_run_check_resume(const sk_train_config *c, const sk_attrs *now, const char *ckpt, int reshard, char *warn,
                        size_t n)
{
	const char *allow[8] = {"epochs"}, *e, *en = sk_attrs_get(now, "epochs");
	sk_attrs rec;
	int done = 0, ranks = 1, legacy = 0, na = 1, rc;
	if (warn && n)
		warn[0] = 0;
	sk_attrs_init(&rec);
	if ((rc = recorded(ckpt, &rec, &done, &ranks, &legacy, warn, n)) < 0)
		goto out;
	if (reshard || ranks > 1)
		allow[na++] = "threads";
	if (legacy)   /* what older checkpoints did not record */
		for (int i = 2; sk_run_keys[i]; i++)
			allow[na++] = sk_run_keys[i];
	/* more epochs, unless the schedule depends on them */
	e = sk_attrs_get(&rec, "epochs");
	if (e && en && strcmp(e, en) && c->sched.kind == SK_SCHED_COSINE)
		rc = sk_error("--resume: --epochs %s differs from the checkpoint's %s (the cosine schedule depends on it)",
		              en, e);
	else if (e && en && strcmp(e, en) && c->epochs < done)
		rc = sk_error("--resume: --epochs %s is fewer than the %d the checkpoint has run", en, done);
	else
		rc = sk_hparams_check(now, &rec, allow);
out:
	sk_attrs_free(&rec);
	return rc;
}

int sk_run_check_given(const sk_run *r, const char *valid, const char *ckpt)
{
	const sk_recipe *g = &r->given;
	if (sk_recipe_get(g, "init-layers") && !sk_recipe_get(g, "init"))
		return sk_error("--init-layers needs --init FILE");
	if (valid && sk_recipe_get(g, "valid-split"))
		return sk_error("--valid and --valid-split exclude each other");
	if (ckpt && (sk_recipe_get(g, "init") || sk_recipe_get(g, "init-unsupervised")))
		return sk_error("--resume continues a run; it excludes --init and --init-unsupervised");
	return 0;
}

int sk_run_resolve(sk_run *r, const sk_model *m, const char *ckpt, int reshard, sk_train_config *c)
{
	sk_train_config c0 = *c;
	sk_attrs rec;
	int done, ranks, legacy, rc = -1;
	sk_recipe_free(&r->all);
	sk_attrs_free(&r->hparams);
	sk_recipe_extras_defaults(&r->x);
	r->warning[0] = 0;
	sk_attrs_init(&rec);
	if (ckpt) {
		if (recorded(ckpt, &rec, &done, &ranks, &legacy, r->warning, sizeof r->warning) < 0)
			goto out;
		for (int i = 0; i < rec.n; i++)
			if (sk_recipe_set(&r->all, rec.key[i], rec.val[i]) < 0) {
				sk_error_prefix("%s: recorded %s", ckpt, rec.key[i]);
				goto out;
			}
	} else if (sk_recipe_from_spec(&r->all, m->spec) < 0)
		goto out;
	/* the recorded recipe alone: an error is the model's (or checkpoint's) */
	if (sk_recipe_apply(&r->all, c, &r->x) < 0) {
		sk_error_prefix("%s", ckpt ? ckpt : m->spec->srcname);
		goto out;
	}
	sk_recipe_merge(&r->all, &r->given);
	*c = c0;
	sk_recipe_extras_defaults(&r->x);
	if (sk_recipe_apply(&r->all, c, &r->x) < 0) {
		rc = SK_RUN_USAGE;
		goto out;
	}
	if (sk_recipe_get(&r->given, "milestones") && c->sched.kind != SK_SCHED_MULTISTEP) {
		rc = SK_RUN_USAGE;
		sk_error("--milestones applies to --schedule multistep");
		goto out;
	}
	sk_recipe_format(c, &r->x, r->recipe, sizeof r->recipe);
	if (hparams(r, c, &r->hparams) < 0 || (ckpt && sk_run_check_resume(c, &r->hparams, ckpt, reshard, NULL, 0) < 0))
		goto out;
	c->hparams = &r->hparams;
	rc = 0;
out:
	sk_attrs_free(&rec);
	return rc;
}

static void notef(sk_run_note_fn note, void *arg, int warning, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void notef(sk_run_note_fn note, void *arg, int warning, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	note(warning, msg, arg);
}

struct freeze_arg {
	const char *name;   /* not terminated: len bytes */
	size_t len;
	int count;
};

static int freeze_fn(sk_param *p, sk_layer *l, void *arg)
{
	struct freeze_arg *f = arg;
	(void)l;
	if (!strncmp(p->name, f->name, f->len) && p->name[f->len] == '.') {
		p->frozen = 1;
		f->count++;
	}
	return 0;
}

/* The model's preparation (sk_run_start). */
static int prepare(const sk_run *r, const sk_train_config *c, sk_model *m, int resume, sk_run_note_fn note,
                   void *arg)
{
	const sk_recipe_extras *x = &r->x;
	const sk_dataset *train = &r->train;
	/* checkpoints carry the recipe: a resumed run reads it back */
	if (sk_attrs_set(&m->attrs, "recipe", r->recipe) < 0)
		return -1;
	if (!resume && !sk_attrs_get(&m->attrs, "records") && sk_model_init(m, c->seed) < 0)
		return -1;
	if (!resume && x->init) {
		sk_model *src = sk_model_load(x->init);
		int n = src && sk_attrs_get(&src->attrs, "records") ? sk_model_copy_params(m, src, x->init_layers) : -1;
		if (src && !sk_attrs_get(&src->attrs, "records"))
			sk_error("a spec has no trained parameters (give a model stream)");
		sk_model_free(src);
		if (n < 0)
			return sk_error_prefix("--init %s", x->init);
		if (n == 0)
			return sk_error("--init %s: no parameter matches the model%s%s", x->init,
			                x->init_layers ? " in layer " : "", x->init_layers ? x->init_layers : "");
		notef(note, arg, 0, "initialised %d parameter tensors from %s", n, x->init);
	}
	for (const char *p = x->freeze; p && *p;) {
		struct freeze_arg f = {p, strcspn(p, ","), 0};
		char name[SK_NAME_MAX];
		snprintf(name, sizeof name, "%.*s", (int)f.len, p);
		if (!sk_seq_find(m->seq, name))
			return sk_error("--freeze: the model has no layer '%s'", name);
		sk_seq_walk_params(m->seq, freeze_fn, &f);
		if (f.count == 0)
			notef(note, arg, 1, "--freeze: layer '%s' has no parameters", name);
		p += f.len + (p[f.len] == ',');
	}
	if (x->unsup[0] && !resume) {
		int n = sk_train_init_unsupervised(m, train, x->unsup, x->unsup_n, c->seed);
		if (n < 0)
			return -1;
		if (n == 0)
			notef(note, arg, 1, "--init-unsupervised: no layer of the model supports it");
		else
			notef(note, arg, 0, "initialised %d layer%s from %d examples (%s)", n, n == 1 ? "" : "s",
			      x->unsup_n < train->n ? x->unsup_n : (int)train->n, x->unsup);
	}
	return 0;
}

int sk_run_start(sk_run *r, sk_model *m, const sk_train_config *c, const char *data, const char *valid,
                 const char *ckpt, sk_run_note_fn note, void *arg)
{
	char msg[512];
	r->has_valid = valid || r->x.valid_split > 0;
	if (sk_dataset_read(data, &r->train) < 0 || (valid && sk_dataset_read(valid, &r->valid) < 0) ||
	    (r->x.valid_split > 0 && sk_dataset_split(&r->train, r->x.valid_split, c->seed, &r->valid) < 0) ||
	    prepare(r, c, m, ckpt != NULL, note, arg) < 0 ||
	    !(r->trainer = sk_trainer_new(m, c, &r->train, r->has_valid ? &r->valid : NULL)))
		return -1;
	if (!ckpt)
		return 0;
	if (sk_train_resume(r->trainer, ckpt, c, r->train.n, msg, sizeof msg, NULL) < 0)
		return -1;
	notef(note, arg, 0, "%s", msg);
	return 0;
}

int sk_run_model_attrs(const sk_run *r, const sk_train_config *c, sk_attrs *a)
{
	const sk_trainer *t = r->trainer;
	const sk_dataset *train = &r->train, *valid = r->has_valid ? &r->valid : NULL;
	const sk_epoch_stats *s = sk_trainer_last(t);
	sk_attrs_free(a);
	sk_attrs_init(a);
	if (sk_attrs_setf(a, "seed", "%llu", (unsigned long long)c->seed) < 0 ||
	    sk_attrs_set(a, "command", sk_trainer_command(t)) < 0 || sk_attrs_set(a, "version", sk_version()) < 0 ||
	    sk_attrs_setf(a, "epochs", "%d", c->epochs) < 0 || sk_attrs_set(a, "optimizer", sk_optim_name(c->opt.kind)) < 0 ||
	    sk_attrs_setf(a, "lr", "%g", c->sched.lr) < 0 || sk_attrs_setf(a, "batch", "%d", c->batch) < 0 ||
	    sk_attrs_set(a, "recipe", r->recipe) < 0 || sk_attrs_setf(a, "threads", "%d", c->threads) < 0 ||
	    sk_attrs_setf(a, "train_n", "%lld", (long long)train->n) < 0 ||
	    sk_attrs_setf(a, "train_loss", "%.6f", s->loss) < 0 || sk_attrs_setf(a, "train_acc", "%.6f", s->train_acc) < 0)
		return -1;
	if (valid && (sk_attrs_setf(a, "valid_loss", "%.6f", s->valid_loss) < 0 ||
	              sk_attrs_setf(a, "valid_acc", "%.6f", s->valid_acc) < 0 ||
	              sk_attrs_setf(a, "best_valid_acc", "%.6f", sk_trainer_best_valid(t)) < 0 ||
	              sk_attrs_setf(a, "valid_n", "%lld", (long long)valid->n) < 0))
		return -1;
	return 0;
}
