/* gradcheck.c: see gradcheck.h. */
#include "gradcheck.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gc {
	sk_seq *q;
	sk_ctx ctx;
	int n;
	float *x, *r;
	size_t nin, nout;
};

static double loss(struct gc *g)
{
	const float *y = sk_seq_forward(g->q, &g->ctx, g->n, g->x);
	double s = 0;
	if (!y)
		return NAN;
	for (size_t i = 0; i < g->nout; i++)
		s += (double)y[i] * g->r[i];
	return s;
}

/* Compare analytic a[idx] with central differences of *v; returns failures. */
static int check_tensor(struct gc *g, const char *what, float *v, const float *a, size_t size, const gc_opts *o)
{
	int fails = 0, skipped = 0, checked = 0;
	double worst = 0;
	sk_rng rng = sk_rng_make(o->seed, sk_rng_hash(what));
	int ns = (size_t)o->samples < size ? o->samples : (int)size;
	for (int s = 0; s < ns; s++) {
		size_t i = (size_t)ns == size ? (size_t)s : (size_t)sk_rng_next_below(&rng, size);
		float keep = v[i];
		double h = o->eps * fmax(1.0, fabs(keep));
		v[i] = (float)(keep + h);
		double hp = (double)v[i] - keep;
		double fp = loss(g);
		v[i] = keep;
		double f0 = loss(g);
		v[i] = (float)(keep - h);
		double hm = keep - (double)v[i];
		double fm = loss(g);
		v[i] = keep;
		double num = (fp - fm) / (hp + hm);
		double sp = (fp - f0) / hp, sm = (f0 - fm) / hm;
		double scale = fmax(1.0, fmax(fabs(a[i]), fabs(num)));
		if (fabs(sp - sm) > 10 * o->tol * scale) {
			skipped++;
			continue;
		}
		double err = fabs(a[i] - num) / scale;
		checked++;
		if (err > worst)
			worst = err;
		if (err > o->tol) {
			if (fails < 3)
				tap_diag("%s[%zu]: analytic %.6g numeric %.6g", what, i, (double)a[i], num);
			fails++;
		}
	}
	tap_ok(fails == 0 && (checked > 0 || size == 0), "gradient %s (%d checked, %d at kinks, worst rel err %.2g)",
	       what, checked, skipped, worst);
	return fails ? 1 : 0;
}

struct pctx {
	struct gc *g;
	const gc_opts *o;
	int fails;
	char prefix[256];
};

static int param_fn(sk_param *p, sk_layer *l, void *arg)
{
	struct pctx *c = arg;
	char what[400];
	(void)l;
	if ((p->flags & SK_P_BUFFER) || !p->g)
		return 0;
	float *a = malloc(p->size * sizeof(float));
	memcpy(a, p->g, p->size * sizeof(float));
	snprintf(what, sizeof what, "%s %s", c->prefix, p->name);
	c->fails += check_tensor(c->g, what, p->w, a, p->size, c->o);
	free(a);
	return 0;
}

static int zero_grad(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	(void)arg;
	if (p->g)
		memset(p->g, 0, p->size * sizeof(float));
	return 0;
}

int gc_check(const char *spec_text, sk_shape in, const gc_opts *oin)
{
	gc_opts o = {2, 1, 1e-3, 2e-2, 40, 0};
	struct gc g;
	int fails = 0;
	char desc[256];
	if (oin) {
		o = *oin;
		if (!o.n) o.n = 2;
		if (!o.seed) o.seed = 1;
		if (o.eps == 0) o.eps = 1e-3;
		if (o.tol == 0) o.tol = 2e-2;
		if (!o.samples) o.samples = 40;
	}
	snprintf(desc, sizeof desc, "[%.*s]", (int)strcspn(spec_text, "\n"), spec_text);
	memset(&g, 0, sizeof g);
	sk_spec *s = sk_spec_parse(spec_text, "<gradcheck>");
	if (!s) {
		tap_ok(0, "%s parses: %s", desc, sk_errmsg());
		return 1;
	}
	g.q = sk_seq_build(s, in, "");
	if (!g.q || sk_seq_setup(g.q, o.n) < 0 || sk_seq_init(g.q, o.seed) < 0) {
		tap_ok(0, "%s builds: %s", desc, sk_errmsg());
		sk_spec_free(s);
		sk_seq_free(g.q);
		return 1;
	}
	g.n = o.n;
	g.ctx.train = (o.flags & GC_TRAIN) ? 1 : 0;
	g.ctx.seed = o.seed;
	g.nin = sk_shape_size(in) * (size_t)o.n;
	g.nout = sk_shape_size(g.q->out) * (size_t)o.n;
	g.x = malloc(g.nin * sizeof(float));
	g.r = malloc(g.nout * sizeof(float));
	float *dx = calloc(g.nin, sizeof(float));
	sk_rng rng = sk_rng_make(o.seed, 77);
	for (size_t i = 0; i < g.nin; i++) {
		if (o.flags & GC_POSITIVE)
			g.x[i] = 0.1f + 0.9f * sk_rng_next_uniform(&rng);
		else if (o.flags & GC_INTEGER)
			g.x[i] = (float)sk_rng_next_below(&rng, 4);
		else
			g.x[i] = sk_rng_next_normal(&rng);
	}
	for (size_t i = 0; i < g.nout; i++)
		g.r[i] = sk_rng_next_normal(&rng);
	sk_seq_walk_params(g.q, zero_grad, NULL);
	if (!sk_seq_forward(g.q, &g.ctx, g.n, g.x) ||
	    sk_seq_backward(g.q, &g.ctx, g.n, g.x, g.r, (o.flags & GC_NO_INPUT) ? NULL : dx) < 0) {
		tap_ok(0, "%s runs: %s", desc, sk_errmsg());
		fails = 1;
		goto out;
	}
	if (!(o.flags & GC_NO_INPUT)) {
		char what[300];
		snprintf(what, sizeof what, "%s input", desc);
		fails += check_tensor(&g, what, g.x, dx, g.nin, &o);
	}
	struct pctx pc = {&g, &o, 0, ""};
	snprintf(pc.prefix, sizeof pc.prefix, "%s", desc);
	sk_seq_walk_params(g.q, param_fn, &pc);
	fails += pc.fails;
out:
	free(g.x);
	free(g.r);
	free(dx);
	sk_seq_free(g.q);
	sk_spec_free(s);
	return fails;
}
