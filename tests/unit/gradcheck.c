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
	double sall;          /* largest analytic gradient of all (input and parameters) */
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
 *
 * The float32 forward pass makes a central difference noisy, more so as
 * the step shrinks, and the noise varies between coordinates.  So each
 * coordinate takes the mean of central differences at six steps from h down
 * to h/2; twice their standard deviation, plus the median of that over the
 * sample, measure its noise and join the tolerance.  A gradient that is zero
 * in exact arithmetic (a key bias under softmax, a bias before batch norm)
 * is rounding noise in both: 1e-5 of the largest gradient of all is the
 * floor.  At a kink within the steps (the one-sided slopes at h disagree
 * beyond the tolerance) the analytic value must match one of the one-sided
 * slopes: the derivative on the side without the kink; when it matches
 * neither and they differ by over 10%, kinks lie on both sides: skipped. */
#define NSTEP 6
static int check_tensor(struct gc *g, const char *what, float *v, const float *a, size_t size, const gc_opts *o)
{
	int fails = 0, kinks = 0, checked = 0, skipped = 0;
	double worst = 0, S = 0, noise = 0;
	sk_rng rng = sk_rng_make(o->seed, sk_rng_hash(what));
	int ns = (size_t)o->samples < size ? o->samples : (int)size;
	size_t *idx = malloc(sizeof *idx * (size_t)(ns ? ns : 1));
	double *num = malloc(sizeof *num * (size_t)(ns ? ns : 1) * 5), *sp = num + ns, *sm = sp + ns,
	       *dev = sm + ns, *med = dev + ns;
	double f0 = loss(g);
	for (size_t i = 0; i < size; i++)
		S = fmax(S, fabs(a[i]));
	int m = 0;   /* samples kept: missing inputs (GC_NANS) are left out */
	for (int s = 0; s < ns; s++) {
		size_t i = (size_t)ns == size ? (size_t)s : (size_t)sk_rng_next_below(&rng, size);
		double d[NSTEP], mean = 0, var = 0;
		if (isnan(v[i]))
			continue;
		double h = o->eps * fmax(1.0, fabs(v[i]));
		for (int j = 0; j < NSTEP; j++) {
			d[j] = central(g, &v[i], h * (1 - 0.5 * j / (NSTEP - 1)), f0, j ? NULL : &sp[m], &sm[m]);
			mean += d[j] / NSTEP;
		}
		for (int j = 0; j < NSTEP; j++)
			var += (d[j] - mean) * (d[j] - mean) / (NSTEP - 1);
		idx[m] = i;
		num[m] = mean;
		dev[m] = med[m] = sqrt(var);
		S = fmax(S, fabs(mean));
		m++;
	}
	ns = m;
	if (ns) {
		qsort(med, (size_t)ns, sizeof *med, cmp_double);
		noise = med[ns / 2];
	}
	for (int s = 0; s < ns; s++) {
		double ai = a[idx[s]];
		double abs_tol = o->atol * S + noise + 2 * dev[s] + 1e-5 * g->sall;
		double tol = abs_tol + o->rtol * fmax(fabs(ai), fabs(num[s]));
		double err = fabs(ai - num[s]);
		if (err <= tol) {
			checked++;
			if (err / tol > worst)
				worst = err / tol;
			continue;
		}
		if (fabs(sp[s] - sm[s]) > tol &&
		    (fabs(ai - sp[s]) <= abs_tol + o->rtol * fmax(fabs(ai), fabs(sp[s])) ||
		     fabs(ai - sm[s]) <= abs_tol + o->rtol * fmax(fabs(ai), fabs(sm[s])))) {
			kinks++;
			continue;
		}
		/* kinks on both sides (the slope jumps by over 10%): no verdict */
		if (fabs(sp[s] - sm[s]) > 0.1 * fmax(fabs(sp[s]), fabs(sm[s]))) {
			skipped++;
			continue;
		}
		if (fails < 3)
			tap_diag("%s[%zu]: analytic %.7g numeric %.7g (one-sided %.7g %.7g, deviation %.2g; tolerance %.2g)",
			         what, idx[s], ai, num[s], sp[s], sm[s], dev[s], tol);
		fails++;
	}
	/* most coordinates must have been compared */
	int vacuous = size && (checked + kinks == 0 || checked + kinks < skipped);
	tap_ok(fails == 0 && !vacuous && isfinite(f0),
	       "gradient %s (%d checked, %d at kinks, %d skipped, worst error/tolerance %.2g, noise %.2g of %.2g)",
	       what, checked, kinks, skipped, worst, noise, S);
	free(idx);
	free(num);
	return fails || vacuous ? 1 : 0;
}

struct pctx {
	struct gc *g;
	const gc_opts *o;
	int fails, k;
	float **g1;           /* per trainable parameter: the first pass's gradient */
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

/* Counts trainable parameters; one without a gradient makes the count -1
 * (the check would pass it by looking at nothing). */
static int count_param(sk_param *p, sk_layer *l, void *arg)
{
	int *np = arg;
	(void)l;
	if (!(p->flags & SK_P_BUFFER) && !p->g)
		*np = -1;
	else if (trainable(p) && *np >= 0)
		(*np)++;
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
		c->g->sall = fmax(c->g->sall, fabs(a[i]));
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
		if (!(fabs(p->g[i] - times * (double)a[i]) <= 1e-4 * S + 1e-6 * c->g->sall + 1e-5 * fabs(a[i])))
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
	if (getenv("GC_SEED"))
		o.seed += (uint64_t)strtoull(getenv("GC_SEED"), NULL, 10);
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
		if ((o.flags & GC_NANS) && sk_rng_next_below(&rng, 6) == 0)
			g.x[i] = NAN;
	}
	for (size_t i = 0; i < g.nout; i++)
		g.r[i] = sk_rng_next_normal(&rng);
	sk_seq_walk_params(g.q, count_param, &np);
	if (np < 0) {
		tap_ok(0, "%s: a trainable parameter has no gradient buffer", desc);
		fails = 1;
		np = 0;
		goto out;
	}
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
	if (dx) {
		memcpy(dx1, dx, g.nin * sizeof(float));
		for (size_t i = 0; i < g.nin; i++)
			g.sall = fmax(g.sall, fabs(dx1[i]));
	}
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
	if (dx && (o.flags & GC_ZERO_INPUT)) {
		size_t i = 0;
		while (i < g.nin && dx1[i] == 0)
			i++;
		tap_ok(i == g.nin, "%s input gradient is zero", desc);
		fails += i < g.nin;
	} else if (dx) {
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
