/* test-spec.c: the spec parser in linear time (a 200,000-line spec), the
 * `train` lines of a recipe (parsed, checked, merged with overrides, applied,
 * formatted so that they read back), the run keys, the resume rule's
 * comparison and machine check, and per-parameter lr_mult/decay_mult. */
#include "sk_cpu.h"
#include "sk_kernels.h"
#include "sk_model.h"
#include "sk_optim.h"
#include "sk_train.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* A spec of `lines` layer lines, each with options (and a comment). */
static char *big_spec(int lines)
{
	const char *l = "conv 4 k=3 pad=1 stride=1 name=c  # a comment\n";
	size_t n = strlen(l), total = 16 + (size_t)lines * n + 1;
	char *t = malloc(total), *p = t;
	if (!t)
		return NULL;
	p += sprintf(p, "input 1 8 8\n");
	for (int i = 0; i < lines; i++, p += n)
		memcpy(p, l, n);
	*p = 0;
	return t;
}

static void test_linear(void)
{
	char *t = big_spec(200000), *u = big_spec(20000);
	double t0 = cpu();
	sk_spec *s = t ? sk_spec_parse(t, "big") : NULL;
	double t1 = cpu();
	sk_spec *v = u ? sk_spec_parse(u, "small") : NULL;
	double t2 = cpu();
	tap_ok(s && s->n == 200001 && s->lines[200000].nkv == 4 && s->lines[200000].line == 200001,
	       "a 200,000-line spec parses: %d lines", s ? s->n : -1);
	/* generous: a quadratic parser takes minutes under AddressSanitizer */
	tap_ok(t1 - t0 < 10.0, "in %.2f s of CPU (bound 10 s)", t1 - t0);
	/* and it grows linearly: ten times the lines, not a hundred times the time
	 * (bound 40x; the smaller parse is timed only when measurable) */
	tap_ok(v && (t2 - t1 < 0.02 || (t1 - t0) / (t2 - t1) < 40.0), "10x the lines: %.3f s against %.3f s",
	       t1 - t0, t2 - t1);
	sk_spec_free(s);
	sk_spec_free(v);
	free(t);
	free(u);
	/* one line of many options: the duplicate check is not quadratic either */
	{
		int k = 100000;
		char *w = malloc((size_t)k * 16 + 64), *p = w;
		p += sprintf(p, "input 1 8 8\nconv 4");
		for (int i = 0; i < k; i++)
			p += sprintf(p, " o%d=1", i);
		sprintf(p, " o17=2\n");
		t0 = cpu();
		s = sk_spec_parse(w, "wide");
		t1 = cpu();
		tap_ok(!s && strstr(sk_errmsg(), "option 'o17' given twice") && t1 - t0 < 10.0,
		       "100,000 options on a line, the repeat found in %.2f s: %s", t1 - t0, sk_errmsg());
		sk_spec_free(s);
		free(w);
	}
}

static const char *net = "input 1 4 4\n"
                         "train optimizer=adam lr=0.03 schedule=cosine  # the recipe\n"
                         "flatten\n"
                         "train epochs=20 batch=32 init-unsupervised=kmeans\n"
                         "linear 3\n";

static void test_recipe(void)
{
	sk_model *m = sk_model_from_text(net, "net.spec");
	sk_recipe r, o;
	sk_train_config c;
	sk_recipe_extras x;
	char buf[1024];
	tap_ok(m && m->spec->n == 3 && m->spec->nrecipe == 2 && m->seq->n == 3,
	       "train lines are the recipe, not layers");
	if (!m)
		return;
	sk_recipe_init(&r);
	sk_train_defaults(&c);
	sk_recipe_extras_defaults(&x);
	tap_ok(sk_recipe_from_spec(&r, m->spec) == 0 && sk_recipe_apply(&r, &c, &x) == 0 &&
	           c.opt.kind == SK_OPT_ADAM && c.sched.lr == 0.03 && c.sched.kind == SK_SCHED_COSINE && c.epochs == 20 &&
	           c.sched.epochs == 20 && c.batch == 32 && !strcmp(x.unsup, "kmeans") && x.unsup_n == 4000,
	       "recipe applied");
	sk_recipe_format(&c, &x, buf, sizeof buf);
	tap_ok(!strcmp(buf, "optimizer=adam lr=0.03 wd=0 schedule=cosine min-lr=0 warmup=0 epochs=20 batch=32 "
	                    "loss=xent crop=0 flip=0 init-unsupervised=kmeans init-examples=4000"),
	       "effective recipe: %s", buf);
	/* overrides: the command line's values win; the optimizer resets momentum */
	sk_recipe_init(&o);
	tap_ok(sk_recipe_set(&o, "lr", "0.1") == 0 && sk_recipe_set(&o, "optimizer", "sgd") == 0 &&
	           sk_recipe_set(&o, "init-unsupervised", "none") == 0,
	       "overrides set");
	sk_recipe_merge(&r, &o);
	sk_train_defaults(&c);
	sk_recipe_extras_defaults(&x);
	tap_ok(sk_recipe_apply(&r, &c, &x) == 0 && c.opt.kind == SK_OPT_SGD && c.sched.lr == 0.1 && c.epochs == 20 &&
	           c.opt.momentum == 0.9f && !x.unsup[0],
	       "overridden: sgd lr 0.1, 20 epochs kept, no unsupervised init");
	/* the formatted recipe reads back to the same configuration, exactly */
	{
		sk_recipe b;
		sk_train_config c2;
		sk_recipe_extras x2;
		char buf2[1024];
		sk_recipe_init(&b);
		sk_recipe_set(&r, "lr", "0.0123456789012345");
		sk_recipe_set(&r, "wd", "3e-5");
		sk_train_defaults(&c);
		sk_recipe_extras_defaults(&x);
		sk_recipe_apply(&r, &c, &x);
		sk_recipe_format(&c, &x, buf, sizeof buf);
		sk_train_defaults(&c2);
		sk_recipe_extras_defaults(&x2);
		tap_ok(sk_recipe_parse(&b, buf) == 0 && sk_recipe_apply(&b, &c2, &x2) == 0 &&
		           c2.sched.lr == c.sched.lr && c2.opt.wd == c.opt.wd &&
		           !strcmp(sk_recipe_format(&c2, &x2, buf2, sizeof buf2), buf),
		       "the printed recipe reads back exactly: %s", buf);
		sk_recipe_free(&b);
	}
	/* defaults: the optimizer's learning rate */
	sk_recipe_free(&o);
	sk_recipe_init(&o);
	sk_recipe_set(&o, "optimizer", "adamw");
	sk_train_defaults(&c);
	tap_ok(sk_recipe_apply(&o, &c, &x) == 0 && c.sched.lr == 0.001, "adamw without lr: 0.001");
	/* bad values and keys: one-line errors */
	tap_ok(sk_recipe_set(&o, "lr", "fast") < 0 && !strcmp(sk_errmsg(), "'fast' is not a number"), "bad lr: %s",
	       sk_errmsg());
	tap_ok(sk_recipe_set(&o, "epochs", "-1") < 0, "bad epochs: %s", sk_errmsg());
	tap_ok(sk_recipe_set(&o, "optimizer", "sgdd") < 0, "bad optimizer: %s", sk_errmsg());
	tap_ok(sk_recipe_set(&o, "flip", "yes") < 0, "bad flip: %s", sk_errmsg());
	tap_ok(sk_recipe_set(&o, "seeds", "1") < 0, "not a recipe key: %s", sk_errmsg());
	/* the run keys: checked as set; --freeze adds up */
	tap_ok(sk_recipe_set(&o, "seed", "-1") < 0 && sk_recipe_set(&o, "threads", "0") < 0 &&
	           sk_recipe_set(&o, "valid-split", "1") < 0 && sk_recipe_set(&o, "freeze", "a,,b") < 0 &&
	           sk_recipe_set(&o, "init", "") < 0,
	       "bad run keys refused: %s", sk_errmsg());
	tap_ok(sk_recipe_set(&o, "freeze", "conv2") == 0 && sk_recipe_set(&o, "freeze", "linear5") == 0 &&
	           !strcmp(sk_recipe_get(&o, "freeze"), "conv2,linear5"),
	       "--freeze adds layers: %s", sk_recipe_get(&o, "freeze"));
	sk_recipe_set(&o, "schedule", "multistep");
	sk_train_defaults(&c);
	tap_ok(sk_recipe_apply(&o, &c, &x) < 0, "multistep without milestones: %s", sk_errmsg());
	sk_recipe_free(&o);
	sk_recipe_free(&r);
	sk_model_free(m);
}

/* Specs refused with a one-line message that starts as given: by the
 * parser (the recipe's lines), or when the model is built (the parameter
 * multipliers). */
static void test_refused(void)
{
	static const struct {
		int model;   /* sk_model_from_text, else sk_spec_parse */
		const char *text, *want;
	} cases[] = {
		{0, "input 4\ntrain lrr=1\nlinear 2\n", "s:2:7: train: unknown key 'lrr' (known: optimizer lr"},
		{0, "input 4\ntrain lr=1\nlinear 2\ntrain lr=2\n", "s:4:7: train: 'lr' given twice (first at line 2)"},
		{0, "input 4\ntrain lr=1 lr=2\nlinear 2\n", "s:2:12: option 'lr' given twice"},
		{0, "input 4\ntrain adam\nlinear 2\n", "s:2:7: train: 'adam': the recipe is key=value options only"},
		{0, "input 4\ntrain\nlinear 2\n", "s:2:1: train: empty recipe line"},
		{0, "input 4\ntrain {\n}\nlinear 2\n", "s:2:1: train: takes no '{' block"},
		{0, "input 1 4 4\nresidual {\n train lr=1\n}\n", "s:3:2: train: the recipe belongs at the top level"},
		{0, "train lr=1\n", "s: no layers"},
		{0, "input 4\ntrain seed=1\nlinear 2\n", "s:2:7: train: unknown key 'seed'"},
		{1, "input 3\nlinear 2 lr_mult.x=1\n", "s:2:10: linear: lr_mult.x: the layer has no parameter 'x' (it has: w, b)"},
		{1, "input 3\nrelu decay_mult=0\n", "s:2:6: relu: decay_mult: the layer has no parameters"},
		{1, "input 3\nlinear 2 lr_mult=-1\n", "s:2:10: linear: lr_mult='-1' is not a number from 0 to 1e6"},
		{1, "input 3\nlinear 2 lr_mult.=1\n", "s:2:10: linear: lr_mult. names no parameter"},
		{1, "input 3\nlinear 2 lr_multx=1\n", "s:2:10: linear: unknown option 'lr_multx'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sk_model *m = cases[i].model ? sk_model_from_text(cases[i].text, "s") : NULL;
		sk_spec *s = cases[i].model ? NULL : sk_spec_parse(cases[i].text, "s");
		const char *e = sk_errmsg();
		tap_ok(!m && !s && !strncmp(e, cases[i].want, strlen(cases[i].want)) && !strchr(e, '\n'), "refused: %s", e);
		sk_model_free(m);
		sk_spec_free(s);
	}
}

static void test_recipe_errors(void)
{
	/* a value the trainer refuses names its place */
	{
		sk_spec *s = sk_spec_parse("input 4\nlinear 2\ntrain epochs=many\n", "s");
		sk_recipe r;
		sk_recipe_init(&r);
		tap_ok(s && sk_recipe_from_spec(&r, s) < 0 &&
		           !strcmp(sk_errmsg(), "s:3:7: train: epochs: 'many' is not an integer"),
		       "bad value: %s", sk_errmsg());
		sk_recipe_free(&r);
		sk_spec_free(s);
	}
	/* before the input line: still a recipe, and input is still the first layer */
	{
		sk_model *m = sk_model_from_text("# t\ntrain epochs=3\ninput 4\nlinear 2\n", "s");
		tap_ok(m && m->spec->nrecipe == 1 && m->in.d[0] == 4, "a recipe line may come first");
		sk_model_free(m);
	}
}

static sk_param *param(sk_model *m, const char *name)
{
	sk_param **ps;
	sk_param *r = NULL;
	int n = sk_model_params(m, &ps);
	for (int i = 0; i < n; i++)
		if (!strcmp(ps[i]->name, name))
			r = ps[i];
	free(ps);
	return r;
}

/* One SGD step (no momentum, wd 0.1, lr 0.1) from w = 1, g = 0.5 everywhere. */
static void sgd_step(sk_model *m, sk_opt_kind kind, int steps)
{
	sk_param **ps;
	int n = sk_model_params(m, &ps);
	sk_optim_config c;
	sk_seq_alloc(m->seq, 1);   /* gradients: allocated for training only */
	sk_optim_defaults(&c, kind);
	c.momentum = 0;
	c.wd = 0.1f;
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < ps[i]->size; k++)
			ps[i]->w[k] = 1.0f;
	sk_optim *o = sk_optim_for_seq(&c, m->seq);
	for (int t = 0; t < steps; t++) {
		for (int i = 0; i < n; i++)
			for (size_t k = 0; k < ps[i]->size; k++)
				ps[i]->g[k] = 0.5f;
		sk_optim_step(o, 0.1f);
	}
	sk_optim_free(o);
	free(ps);
}

static int all_eq(const sk_param *p, float v)
{
	if (!p)
		return 0;
	for (size_t k = 0; k < p->size; k++)
		if (fabsf(p->w[k] - v) > 1e-7f) {
			tap_diag("%s[%zu] = %.9g, want %.9g", p->name, k, p->w[k], v);
			return 0;
		}
	return 1;
}

static void test_mults(void)
{
	sk_model *m = sk_model_from_text("input 3\n"
	                                 "linear 2 name=a lr_mult.b=0 decay_mult.w=0\n"
	                                 "linear 2 name=c lr_mult=0.5 decay_mult.b=1\n"
	                                 "linear 2 name=d\n",
	                                 "m.spec");
	tap_ok(m != NULL, "lr_mult and decay_mult are options of any layer: %s", m ? "" : sk_errmsg());
	if (!m)
		return;
	sgd_step(m, SK_OPT_SGD, 1);
	/* by hand: w -= lr * lr_mult * (g + wd * decay_mult * w) */
	tap_ok(all_eq(param(m, "a.w"), 1 - 0.1f * 0.5f), "decay_mult.w=0: no weight decay: 1 - 0.1 * 0.5");
	tap_ok(all_eq(param(m, "a.b"), 1), "lr_mult.b=0: the bias does not change");
	tap_ok(all_eq(param(m, "c.w"), 1 - 0.05f * (0.5f + 0.1f)), "lr_mult=0.5: 1 - 0.05 * (0.5 + 0.1 * 1)");
	tap_ok(all_eq(param(m, "c.b"), 1 - 0.05f * (0.5f + 0.1f)), "decay_mult.b=1: the bias decays too");
	tap_ok(all_eq(param(m, "d.w"), 1 - 0.1f * (0.5f + 0.1f)) && all_eq(param(m, "d.b"), 1 - 0.1f * 0.5f),
	       "no multipliers: weights decay, biases do not");
	sgd_step(m, SK_OPT_ADAMW, 3);
	tap_ok(all_eq(param(m, "a.b"), 1), "adamw, 3 steps: lr_mult=0 still does not change it");
	/* adamw: decoupled decay w -= lr * lr_mult * wd * decay_mult * w, then the
	 * Adam step lr * lr_mult * sign(g) at t = 1 (g constant: m/sqrt(v) = 1) */
	sgd_step(m, SK_OPT_ADAMW, 1);
	{
		float w = 1 - 0.05f * 0.1f * 1;
		w -= 0.05f * 0.5f / (0.5f + 1e-8f);
		tap_ok(all_eq(param(m, "c.w"), w), "adamw, one step with lr_mult=0.5: %.7f by hand", w);
	}
	sk_model_free(m);
	/* blocks: the setting nearest the parameter wins */
	m = sk_model_from_text("input 2 4 4\n"
	                       "residual name=r lr_mult=0.5 lr_mult.conv1.b=3 {\n"
	                       "  conv 2 k=1 lr_mult.w=0.2\n"
	                       "}\n",
	                       "b.spec");
	tap_ok(m && param(m, "r.conv1.w") && sk_param_lr_mult(param(m, "r.conv1.w")) == 0.2f &&
	           sk_param_lr_mult(param(m, "r.conv1.b")) == 3.0f,
	       "in a block: the line's own lr_mult.w=0.2 over the block's, the block's lr_mult.conv1.b=3 over its lr_mult");
	sk_model_free(m);
}

/* The resume rule's comparison and the machine check (sk_train.h). */
static void test_provenance(void)
{
	static const char *const allow[] = {"epochs", NULL};
	sk_attrs now, ck, st;
	char msg[512];
	sk_attrs_init(&now);
	sk_attrs_init(&ck);
	sk_attrs_init(&st);
	sk_attrs_set(&now, "lr", "0.1");
	sk_attrs_set(&now, "epochs", "5");
	sk_attrs_set(&ck, "lr", "0.1");
	sk_attrs_set(&ck, "epochs", "3");
	tap_ok(sk_hparams_check(&now, &ck, allow) == 0, "an allowed option may differ");
	tap_ok(sk_hparams_check(&now, &ck, NULL) < 0 &&
	           !strcmp(sk_errmsg(), "--resume: --epochs 5 differs from the checkpoint's 3"),
	       "others are named: %s", sk_errmsg());
	sk_attrs_set(&now, "lr", "0.2");
	tap_ok(sk_hparams_check(&now, &ck, allow) < 0 &&
	           !strcmp(sk_errmsg(), "--resume: --lr 0.2 differs from the checkpoint's 0.1"),
	       "%s", sk_errmsg());
	sk_attrs_set(&now, "lr", "0.1");
	sk_attrs_set(&now, "freeze", "conv2");
	tap_ok(sk_hparams_check(&now, &ck, allow) < 0 &&
	           !strcmp(sk_errmsg(), "--resume: --freeze conv2 differs from the checkpoint's (none)"),
	       "%s", sk_errmsg());
	sk_attrs_set(&ck, "freeze", "conv2");
	sk_attrs_set(&ck, "wd", "0.5");
	tap_ok(sk_hparams_check(&now, &ck, allow) < 0 &&
	           !strcmp(sk_errmsg(), "--resume: the checkpoint's run has --wd 0.5, this one has not"),
	       "%s", sk_errmsg());
	/* the machine: kernel path, then OpenBLAS core */
	tap_ok(sk_checkpoint_machine_differs(&st, msg, sizeof msg) == 0 && !msg[0], "nothing recorded: no warning");
	sk_attrs_set(&st, "kernels", sk_cpu_path());
	tap_ok(sk_checkpoint_machine_differs(&st, msg, sizeof msg) == 0, "the same kernels: no warning");
	sk_attrs_set(&st, "blas", "NoSuchCore");
	tap_ok(sk_checkpoint_machine_differs(&st, msg, sizeof msg) == 1 &&
	           strstr(msg, "written with OpenBLAS core NoSuchCore, this machine's is ") &&
	           strstr(msg, ": the bits will differ from an uninterrupted run"),
	       "another BLAS core: %s", msg);
	sk_attrs_set(&st, "kernels", "avx9");
	tap_ok(sk_checkpoint_machine_differs(&st, msg, sizeof msg) == 1 &&
	           strstr(msg, "written by the avx9 kernels, this machine runs the ") &&
	           strstr(msg, ": the bits will differ from an uninterrupted run"),
	       "other kernels: %s", msg);
	sk_attrs_free(&now);
	sk_attrs_free(&ck);
	sk_attrs_free(&st);
}

int main(void)
{
	test_mults();
	test_linear();
	test_recipe();
	test_recipe_errors();
	test_refused();
	test_provenance();
	return tap_done();
}
