/* gradcheck.c: see gradcheck.h. */
#include "gradcheck.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Quiet NaNs with distinct payloads: which poison a value holds tells who
 * wrote it (NaN arithmetic keeps an operand's payload, never makes these). */
#define P_XTAIL 0x7fc0a001u   /* input and dy rows n..max_batch-1 */
#define P_OUT 0x7fc0a002u     /* outputs and workspaces before forward */
#define P_GRAD 0x7fc0a003u    /* gradient buffers before backward */
#define P_DX 0x7fc0a004u      /* dx before backward */

struct gc {
	sk_seq *q;
	sk_ctx ctx;
	int n, mb;
	float *x, *r;         /* mb examples; rows n.. hold P_XTAIL */
	size_t nin, nout;     /* n examples */
	size_t in1, out1;     /* one example */
};

static void fill_bits(float *p, size_t n, uint32_t u)
{
	for (size_t i = 0; i < n; i++)
		memcpy(&p[i], &u, sizeof u);
}

/* Index of the first value that does not hold the bits u, or n. */
static size_t find_not_bits(const float *p, size_t n, uint32_t u)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, &p[i], sizeof v);
		if (v != u)
			return i;
	}
	return n;
}

static size_t find_nonfinite(const float *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(p[i]))
			return i;
	return n;
}

/* Poison the activations (before forward) or the gradient buffers (before
 * backward) of a sequence and of all its children. */
static void poison(sk_seq *q, int grads)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		if (!grads && q->act)
			fill_bits(q->act[i], sk_shape_size(l->out) * (size_t)q->max_batch, P_OUT);
		for (int k = 0; k < l->nchild; k++)
			poison(l->child[k], grads);
	}
	for (int b = 0; b < 2 && grads; b++)
		if (q->gbuf[b])
			fill_bits(q->gbuf[b], q->maxact * (size_t)q->max_batch, P_GRAD);
}

static const float *forward(struct gc *g)
{
	poison(g->q, 0);
	return sk_seq_forward(g->q, &g->ctx, g->n, g->x);
}

static double loss(struct gc *g)
{
	const float *y = forward(g);
	double s = 0;
	if (!y)
		return NAN;
	for (size_t i = 0; i < g->nout; i++)
		s += (double)y[i] * g->r[i];
	return s;
}

/* Central difference of L along *v with step h; the one-sided slopes too. */
static double central(struct gc *g, float *v, double h, double f0, double *sp, double *sm)
{
	float keep = *v;
	*v = (float)(keep + h);
	double hp = (double)*v - keep;
	double fp = loss(g);
	*v = (float)(keep - h);
	double hm = keep - (double)*v;
	double fm = loss(g);
	*v = keep;
	if (sp) {
		*sp = (fp - f0) / hp;
		*sm = (f0 - fm) / hm;
	}
	return (fp - fm) / (hp + hm);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Compare analytic a[] with central differences of *v; returns failures.
 * The float32 forward pass makes the numeric derivative noisy (the noise
 * grows as the step shrinks): the spread between steps h and h/2 measures
 * it, and three times its median over the sample joins the tolerance. */
static int check_tensor(struct gc *g, const char *what, float *v, const float *a, size_t size, const gc_opts *o)
{
	int fails = 0, kinks = 0, checked = 0;
	double worst = 0, S = 0, noise = 0;
	sk_rng rng = sk_rng_make(o->seed, sk_rng_hash(what));
	int ns = (size_t)o->samples < size ? o->samples : (int)size;
	size_t *idx = malloc(sizeof *idx * (size_t)(ns ? ns : 1));
	double *num = malloc(sizeof *num * (size_t)(ns ? ns : 1) * 5), *sp = num + ns, *sm = sp + ns,
	       *spread = sm + ns, *med = spread + ns;
	double f0 = loss(g);
	for (size_t i = 0; i < size; i++)
		S = fmax(S, fabs(a[i]));
	for (int s = 0; s < ns; s++) {
		size_t i = (size_t)ns == size ? (size_t)s : (size_t)sk_rng_next_below(&rng, size);
		double h = o->eps * fmax(1.0, fabs(v[i]));
		idx[s] = i;
		num[s] = central(g, &v[i], h, f0, &sp[s], &sm[s]);
		spread[s] = med[s] = fabs(num[s] - central(g, &v[i], h / 2, f0, NULL, NULL));
		S = fmax(S, fabs(num[s]));
		if (getenv("GC_DEBUG") && strstr(what, getenv("GC_DEBUG"))) {
			printf("# %s[%zu] a=%.7g", what, i, (double)a[i]);
			for (double hh = 1e-1; hh > 1e-6; hh /= 3)
				printf(" %.1e:%.6g", hh, central(g, &v[i], hh, f0, NULL, NULL));
			printf("\n");
		}
	}
	if (ns) {
		qsort(med, (size_t)ns, sizeof *med, cmp_double);
		noise = 3 * med[ns / 2];
	}
	for (int s = 0; s < ns; s++) {
		double ai = a[idx[s]];
		double abs_tol = o->atol * S + noise;
		double tol = abs_tol + o->rtol * fmax(fabs(ai), fabs(num[s]));
		double err = fabs(ai - num[s]);
		if (err <= tol) {
			checked++;
			if (err / tol > worst)
				worst = err / tol;
			continue;
		}
		/* a kink between x - h and x + h: the slope on its other side */
		if (fabs(sp[s] - sm[s]) > tol &&
		    (fabs(ai - sp[s]) <= abs_tol + o->rtol * fmax(fabs(ai), fabs(sp[s])) ||
		     fabs(ai - sm[s]) <= abs_tol + o->rtol * fmax(fabs(ai), fabs(sm[s])))) {
			kinks++;
			continue;
		}
		if (fails < 3)
			tap_diag("%s[%zu]: analytic %.7g numeric %.7g (one-sided %.7g %.7g, spread %.2g; tolerance %.2g)",
			         what, idx[s], ai, num[s], sp[s], sm[s], spread[s], tol);
		fails++;
	}
	/* the check must mostly compare central differences */
	tap_ok(fails == 0 && (size == 0 || checked > 2 * kinks) && isfinite(f0),
	       "gradient %s (%d checked, %d at kinks, worst error/tolerance %.2g, noise %.2g of %.2g)", what,
	       checked, kinks, worst, noise, S);
	free(idx);
	free(num);
	return fails || (size && checked <= 2 * kinks) ? 1 : 0;
}

struct pctx {
	struct gc *g;
	const gc_opts *o;
	int fails, k;
	float **g1;           /* per trainable parameter: the first pass's gradient */
	double sall;          /* largest magnitude among all those gradients */
	const char *desc;
	char bad[400];
};

static int trainable(const sk_param *p) { return !(p->flags & SK_P_BUFFER) && p->g; }

static int zero_grad(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	(void)arg;
	if (trainable(p))
		memset(p->g, 0, p->size * sizeof(float));
	return 0;
}

static int count_param(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	if (trainable(p))
		(*(int *)arg)++;
	return 0;
}

/* After the first pass: keep the gradient; it must be finite. */
static int save_grad(sk_param *p, sk_layer *l, void *arg)
{
	struct pctx *c = arg;
	(void)l;
	if (!trainable(p))
		return 0;
	float *a = malloc(p->size * sizeof(float));
	memcpy(a, p->g, p->size * sizeof(float));
	c->g1[c->k++] = a;
	for (size_t i = 0; i < p->size; i++)
		c->sall = fmax(c->sall, fabs(a[i]));
	size_t i = find_nonfinite(a, p->size);
	if (i < p->size && !c->bad[0])
		snprintf(c->bad, sizeof c->bad, "%s[%zu] is %g after one backward", p->name, i, (double)a[i]);
	return 0;
}

/* The gradient must be `times` the first pass's (up to rounding, relative
 * to the tensor's and to all gradients' scale: a gradient that is zero in
 * exact arithmetic is rounding noise). */
static void compare_grad(struct pctx *c, const sk_param *p, int times, const char *after)
{
	const float *a = c->g1[c->k++];
	double S = 0;
	for (size_t i = 0; i < p->size; i++)
		S = fmax(S, fabs(a[i]));
	for (size_t i = 0; i < p->size && !c->bad[0]; i++)
		if (!(fabs(p->g[i] - times * (double)a[i]) <= 1e-4 * S + 1e-6 * c->sall + 1e-5 * fabs(a[i])))
			snprintf(c->bad, sizeof c->bad, "%s[%zu] is %.7g after %s, %.7g after one backward pass", p->name,
			         i, (double)p->g[i], after, (double)a[i]);
}

/* After the second pass: the gradient must have doubled. */
static int doubled(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	if (trainable(p))
		compare_grad(arg, p, 2, "two backward passes");
	return 0;
}

/* After a pass without dx (training's): the same gradient. */
static int same_grad(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	if (trainable(p))
		compare_grad(arg, p, 1, "a backward pass without dx");
	return 0;
}

static int param_fn(sk_param *p, sk_layer *l, void *arg)
{
	struct pctx *c = arg;
	char what[400];
	(void)l;
	if (!trainable(p))
		return 0;
	snprintf(what, sizeof what, "%s %s", c->desc, p->name);
	c->fails += check_tensor(c->g, what, p->w, c->g1[c->k++], p->size, c->o);
	return 0;
}

/* One pass: forward and backward with poisoned buffers.  Checks that the
 * outputs and dx are written exactly on the first n rows; returns -1 when
 * the sequence fails to run, else 0 with *bad describing the first breach. */
static int pass(struct gc *g, float *dx, char *bad, size_t badlen)
{
	sk_seq *q = g->q;
	size_t tail = (size_t)(g->mb - g->n);
	if (!forward(g))
		return -1;
	for (int i = 0; i < q->n && !bad[0]; i++) {
		size_t o1 = sk_shape_size(q->layers[i]->out), j;
		if ((j = find_nonfinite(q->act[i], o1 * (size_t)g->n)) < o1 * (size_t)g->n)
			snprintf(bad, badlen, "%s output [%zu] is %g after forward", q->layers[i]->name, j,
			         (double)q->act[i][j]);
		else if ((j = find_not_bits(q->act[i] + o1 * (size_t)g->n, o1 * tail, P_OUT)) < o1 * tail)
			snprintf(bad, badlen, "%s wrote output [%zu] beyond the batch of %d", q->layers[i]->name,
			         j + o1 * (size_t)g->n, g->n);
	}
	poison(q, 1);
	if (dx)
		fill_bits(dx, g->in1 * (size_t)g->mb, P_DX);
	if (sk_seq_backward(q, &g->ctx, g->n, g->x, g->r, dx) < 0)
		return -1;
	if (dx && !bad[0]) {
		size_t j;
		if ((j = find_nonfinite(dx, g->nin)) < g->nin)
			snprintf(bad, badlen, "input gradient [%zu] is %g after backward", j, (double)dx[j]);
		else if ((j = find_not_bits(dx + g->nin, g->in1 * tail, P_DX)) < g->in1 * tail)
			snprintf(bad, badlen, "input gradient [%zu] written beyond the batch of %d", j + g->nin, g->n);
	}
	return 0;
}

int gc_check(const char *spec_text, sk_shape in, const gc_opts *oin)
{
	gc_opts o = {2, 1, 1e-3, 2e-3, 40, 0, 1e-3, 3, NULL};
	struct gc g;
	int fails = 0, np = 0;
	char desc[256], bad[400] = "";
	float *dx = NULL, *dx1 = NULL;
	struct pctx pc;
	if (oin) {
		o = *oin;
		if (!o.n) o.n = 2;
		if (!o.seed) o.seed = 1;
		if (o.eps == 0) o.eps = 1e-3;
		if (o.rtol == 0) o.rtol = 2e-3;
		if (!o.samples) o.samples = 40;
		if (o.atol == 0) o.atol = 1e-3;
		if (!o.extra) o.extra = 3;
		else if (o.extra < 0) o.extra = 0;
	}
	snprintf(desc, sizeof desc, "[%.*s]", (int)strcspn(spec_text, "\n"), spec_text);
	memset(&g, 0, sizeof g);
	memset(&pc, 0, sizeof pc);
	sk_spec *s = sk_spec_parse(spec_text, "<gradcheck>");
	if (!s) {
		tap_ok(0, "%s parses: %s", desc, sk_errmsg());
		return 1;
	}
	g.n = o.n;
	g.mb = o.n + o.extra;
	g.q = sk_seq_build(s, in, "");
	if (g.q && o.tweak)
		o.tweak(g.q);
	if (!g.q || sk_seq_setup(g.q, g.mb) < 0 || sk_seq_init(g.q, o.seed) < 0) {
		tap_ok(0, "%s builds: %s", desc, sk_errmsg());
		sk_spec_free(s);
		sk_seq_free(g.q);
		return 1;
	}
	g.ctx.train = (o.flags & GC_TRAIN) ? 1 : 0;
	g.ctx.seed = o.seed;
	g.in1 = sk_shape_size(in);
	g.out1 = sk_shape_size(g.q->out);
	g.nin = g.in1 * (size_t)o.n;
	g.nout = g.out1 * (size_t)o.n;
	g.x = malloc(g.in1 * (size_t)g.mb * sizeof(float));
	g.r = malloc(g.out1 * (size_t)g.mb * sizeof(float));
	fill_bits(g.x + g.nin, g.in1 * (size_t)o.extra, P_XTAIL);
	fill_bits(g.r + g.nout, g.out1 * (size_t)o.extra, P_XTAIL);
	if (!(o.flags & GC_NO_INPUT)) {
		dx = malloc(g.in1 * (size_t)g.mb * sizeof(float));
		dx1 = malloc(g.nin * sizeof(float));
	}
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
	sk_seq_walk_params(g.q, count_param, &np);
	pc.g = &g;
	pc.o = &o;
	pc.desc = desc;
	pc.g1 = calloc((size_t)np + 1, sizeof *pc.g1);

	/* pass 1 from zeroed parameter gradients */
	sk_seq_walk_params(g.q, zero_grad, NULL);
	if (pass(&g, dx, bad, sizeof bad) < 0) {
		tap_ok(0, "%s runs: %s", desc, sk_errmsg());
		fails = 1;
		goto out;
	}
	tap_ok(!bad[0], "%s writes exactly %d of %d examples, every value it owns%s%s", desc, o.n, g.mb,
	       bad[0] ? ": " : "", bad);
	fails += bad[0] != 0;
	if (dx)
		memcpy(dx1, dx, g.nin * sizeof(float));
	pc.k = 0;
	sk_seq_walk_params(g.q, save_grad, &pc);

	/* pass 2 on top: parameter gradients add up, the input gradient is the same */
	bad[0] = 0;
	if (pass(&g, dx, bad, sizeof bad) < 0) {
		tap_ok(0, "%s runs twice: %s", desc, sk_errmsg());
		fails++;
		goto out;
	}
	if (!bad[0] && pc.bad[0])
		snprintf(bad, sizeof bad, "%s", pc.bad);
	if (dx && !bad[0]) {
		double S = 0;
		for (size_t i = 0; i < g.nin; i++)
			S = fmax(S, fabs(dx1[i]));
		for (size_t i = 0; i < g.nin && !bad[0]; i++)
			if (!(fabs(dx[i] - dx1[i]) <= 1e-6 * S))
				snprintf(bad, sizeof bad, "input gradient [%zu] is %.7g on a second pass, %.7g on the first", i,
				         (double)dx[i], (double)dx1[i]);
	}
	if (!bad[0]) {
		pc.k = 0;
		sk_seq_walk_params(g.q, doubled, &pc);
		snprintf(bad, sizeof bad, "%s", pc.bad);
	}
	tap_ok(!bad[0], "%s backward twice: parameter gradients accumulate, the input gradient is overwritten%s%s",
	       desc, bad[0] ? ": " : "", bad);
	fails += bad[0] != 0;

	/* pass 3 without dx, as training runs it: the same parameter gradients */
	if (dx && np) {
		bad[0] = 0;
		sk_seq_walk_params(g.q, zero_grad, NULL);
		if (pass(&g, NULL, bad, sizeof bad) < 0) {
			tap_ok(0, "%s runs without dx: %s", desc, sk_errmsg());
			fails++;
			goto out;
		}
		if (!bad[0]) {
			pc.k = 0;
			pc.bad[0] = 0;
			sk_seq_walk_params(g.q, same_grad, &pc);
			snprintf(bad, sizeof bad, "%s", pc.bad);
		}
		tap_ok(!bad[0], "%s backward without dx: the same parameter gradients%s%s", desc, bad[0] ? ": " : "",
		       bad);
		fails += bad[0] != 0;
	}

	/* finite differences against the first pass */
	if (dx) {
		char what[300];
		snprintf(what, sizeof what, "%s input", desc);
		fails += check_tensor(&g, what, g.x, dx1, g.nin, &o);
	}
	pc.k = 0;
	pc.fails = 0;
	sk_seq_walk_params(g.q, param_fn, &pc);
	fails += pc.fails;
out:
	for (int i = 0; i < np; i++)
		free(pc.g1[i]);
	free(pc.g1);
	free(g.x);
	free(g.r);
	free(dx);
	free(dx1);
	sk_seq_free(g.q);
	sk_spec_free(s);
	return fails;
}
