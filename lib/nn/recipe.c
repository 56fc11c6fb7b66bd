/* recipe.c: training recipes: the `train` lines of a spec, the command
 * line's overrides and a checkpoint's record of them, as one set of
 * key=value texts applied to a training configuration (see sk_train.h). */
#include "sk_train.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_index(const char *key)
{
	for (int i = 0; sk_spec_recipe_keys[i]; i++)
		if (!strcmp(sk_spec_recipe_keys[i], key))
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

/* Apply one key=value to c and x; -1 with a message naming the value. */
static int apply1(const char *key, const char *v, sk_train_config *c, sk_recipe_extras *x)
{
	double d = 0;
	long l = 0;
	if (!strcmp(key, "optimizer")) {
		sk_opt_kind k;
		if (sk_optim_parse(v, &k) < 0)
			return -1;
		sk_optim_defaults(&c->opt, k);
	} else if (!strcmp(key, "lr")) {
		if (num(v, 0, 1e300, &d) < 0)
			return -1;
		c->sched.lr = d;
	} else if (!strcmp(key, "momentum")) {
		if (num(v, 0, 1, &d) < 0)
			return -1;
		c->opt.momentum = (float)d;
	} else if (!strcmp(key, "wd")) {
		if (num(v, 0, 1e6, &d) < 0)
			return -1;
		c->opt.wd = (float)d;
	} else if (!strcmp(key, "schedule")) {
		if (sk_sched_parse(v, &c->sched.kind) < 0)
			return -1;
	} else if (!strcmp(key, "step-size")) {
		if (integer(v, 1, 1000000, &l) < 0)
			return -1;
		c->sched.step_size = (int)l;
	} else if (!strcmp(key, "gamma")) {
		if (num(v, 0, 1e6, &d) < 0)
			return -1;
		c->sched.gamma = d;
	} else if (!strcmp(key, "milestones")) {
		if (sk_sched_parse_milestones(&c->sched, v) < 0)
			return -1;
	} else if (!strcmp(key, "warmup")) {
		if (num(v, 0, 1000000, &d) < 0)
			return -1;
		c->sched.warmup = d;
	} else if (!strcmp(key, "min-lr")) {
		if (num(v, 0, 1e300, &d) < 0)
			return -1;
		c->sched.min_lr = d;
	} else if (!strcmp(key, "epochs")) {
		if (integer(v, 0, 1000000, &l) < 0)
			return -1;
		c->epochs = (int)l;
	} else if (!strcmp(key, "batch")) {
		if (integer(v, 1, 1 << 20, &l) < 0)
			return -1;
		c->batch = (int)l;
	} else if (!strcmp(key, "loss")) {
		if (!strcmp(v, "xent"))
			c->loss = SK_LOSS_XENT;
		else if (!strcmp(v, "mse"))
			c->loss = SK_LOSS_MSE;
		else
			return sk_error("'%s' is not one of: xent, mse", v);
	} else if (!strcmp(key, "crop")) {
		if (integer(v, 0, 1024, &l) < 0)
			return -1;
		c->crop_pad = (int)l;
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
	} else if (!strcmp(key, "init-examples")) {
		if (integer(v, 1, 100000000, &l) < 0)
			return -1;
		x->unsup_n = (int)l;
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
	if (!(v = strdup(val)))
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

int sk_recipe_parse(sk_recipe *r, const char *text)
{
	const char *p = text;
	while (*p) {
		char key[64], val[256];
		size_t kl, vl;
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		const char *eq = strchr(p, '='), *e = strchr(p, ' ');
		if (!e)
			e = p + strlen(p);
		if (!eq || eq > e || eq == p)
			return sk_error("recipe '%s': expected key=value words", text);
		kl = (size_t)(eq - p);
		vl = (size_t)(e - eq - 1);
		if (kl >= sizeof key || vl >= sizeof val)
			return sk_error("recipe '%s': a word is too long", text);
		memcpy(key, p, kl);
		key[kl] = 0;
		memcpy(val, eq + 1, vl);
		val[vl] = 0;
		if (sk_recipe_set(r, key, val) < 0)
			return sk_error_prefix("recipe %s", key);
		p = e;
	}
	return 0;
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
	for (int i = 0; sk_spec_recipe_keys[i]; i++)
		if (i != kopt && r->val[i] && apply1(sk_spec_recipe_keys[i], r->val[i], c, x) < 0)
			return sk_error_prefix("%s", sk_spec_recipe_keys[i]);
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
