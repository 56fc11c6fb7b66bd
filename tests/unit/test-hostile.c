/* test-hostile.c: hostile specs.  For every layer type of the registry and
 * each of its numeric options, the values 0, -1, INT_MAX, INT_MIN and 2^31,
 * alone and for every pair of options (all 25 value pairs), must build into
 * either a one-line error naming the spec and the layer, or a correct model:
 * positive output extents within the caps, finite FLOPs, a parameter total
 * within the cap; and a small accepted model must then allocate, initialise,
 * run forward and backward on two examples.  Under the sanitizers (the
 * sanitizer build runs this test) any overflow is a failure too.
 * Also the allocation policy that keeps a hostile spec from allocating:
 * declaring a model allocates no parameter, building one allocates values
 * but no gradients, and only sk_model_for_training adds them. */
#include "sk_model.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One base line per layer (and variants): the input line, the layer line
 * (positional words first), an optional body, and the numeric options:
 * "#i" is positional word i, anything else a key. */
typedef struct lcase {
	const char *type;
	const char *input;   /* "input ..." without the word input */
	const char *pos[3];  /* default positional words */
	const char *kv;      /* fixed key=value words (overridden when the key is tested) */
	const char *body;    /* "{...}" body or NULL */
	const char *opts[24];
} lcase;

static const lcase cases[] = {
	{"relu", "3 4 4", {0}, "", NULL, {"leaky"}},
	{"tanh", "3 4 4", {0}, "", NULL, {0}},
	{"sigmoid", "3 4 4", {0}, "", NULL, {0}},
	{"gelu", "6", {0}, "", NULL, {0}},
	{"selu", "3 4 4", {0}, "", NULL, {0}},
	{"elu", "3 4 4", {0}, "", NULL, {"alpha"}},
	{"softplus", "3 4 4", {0}, "", NULL, {0}},
	{"identity", "5 4", {0}, "", NULL, {0}},
	{"input", "3 4 4", {0}, "", NULL, {"#0", "#1", "#2", "scale", "mean", "std"}},
	{"input", "7", {0}, "", NULL, {"#0", "scale", "mean", "std"}},
	{"sim", "3 6 6", {"l1", "4"}, "k=3 pad=1", NULL,
	 {"#1", "k", "kh", "kw", "stride", "pad", "cb", "cs", "bias", "eps", "zstd", "uinit"}},
	{"sim", "2 5 5", {"l2n", "2"}, "param=exp nan=skip", NULL, {"#1", "k", "stride", "pad", "cb", "cs", "uinit"}},
	{"sim", "2 5 5", {"l2", "3"}, "k=3 pad=1 nan=skip oob=nan", NULL, {"#1", "k", "kh", "stride", "pad", "eps"}},
	{"mex", "3 6 6", {"2"}, "k=2", NULL,
	 {"#0", "k", "kh", "kw", "stride", "sh", "sw", "pad", "cb", "cs", "learn", "norm", "regionc", "region",
	  "periodc", "period", "xi", "xistd", "bstd"}},
	{"mex", "4 6 6", {"3"}, "k=2 offsets=shared norm=1", NULL,
	 {"#0", "k", "kh", "kw", "stride", "pad", "cb", "cs", "regionc", "region", "norm", "xi", "bstd"}},
	{"mex", "4 6 6", {"2"}, "k=3 stride=1 offsets=unshared xiper=channel", NULL,
	 {"#0", "k", "stride", "sh", "sw", "pad", "cb", "cs", "periodc", "period", "xi", "xistd", "learn"}},
	{"conv", "3 6 6", {"4"}, "k=3", NULL, {"#0", "k", "stride", "pad", "bias", "scale", "bias_init"}},
	{"linear", "3 4 4", {"5"}, "", NULL, {"#0", "bias", "scale", "bias_init"}},
	{"pool", "3 6 6", {"max"}, "k=2", NULL, {"k", "stride", "pad"}},
	{"pool", "3 6 6", {"avg"}, "k=3 pad=1", NULL, {"k", "stride", "pad"}},
	{"pool", "2 5 5", {"sum"}, "k=2 stride=1", NULL, {"k", "stride", "pad"}},
	{"gap", "3 4 4", {0}, "", NULL, {0}},
	{"bn", "3 4 4", {0}, "", NULL, {"eps", "momentum"}},
	{"bn", "5 6", {0}, "", NULL, {"eps", "momentum"}},
	{"dropout", "3 4 4", {0}, "", NULL, {"p"}},
	{"flatten", "3 4 4", {0}, "", NULL, {0}},
	{"residual", "3 5 5", {0}, "", "{\nconv 3 k=3 pad=1\n}", {0}},
	{"maxmin", "4 3 3", {0}, "", NULL, {"relu"}},
	{"resblock", "4 6 6", {"4"}, "", NULL, {"#0", "stride", "momentum"}},
	{"resblock", "4 6 6", {"8"}, "stride=2 shortcut=a", NULL, {"#0", "stride"}},
	{"mrblock", "8 6 6", {"4"}, "", NULL, {"#0", "stride", "momentum"}},
	{"mrblock", "3 6 6", {"4"}, "in=single out=merged", NULL, {"#0", "stride"}},
	{"nsm", "2 6 6", {"4"}, "k=3", NULL, {"#0", "k", "stride", "iters", "backprop", "eta", "tol"}},
	{"mha", "5 8", {0}, "heads=2", NULL, {"heads", "d"}},
	{"layernorm", "5 8", {0}, "", NULL, {0}},
	{"sab", "5 8", {"8"}, "heads=2", NULL, {"#0", "heads", "ln"}},
	{"isab", "5 8", {"8"}, "m=3 heads=2", NULL, {"#0", "m", "heads", "ln"}},
	{"pma", "5 8", {0}, "k=2 heads=2", NULL, {"k", "d", "heads", "ln"}},
};

static const char *const values[] = {"0", "-1", "2147483647", "-2147483648", "2147483648"};
#define NV 5

/* Limits of what an accepted model may allocate and run here. */
#define RUN_VALUES ((size_t)1 << 22)
#define RUN_ACT ((size_t)1 << 18)

static int nbad;

static void report(const char *spec, const char *what)
{
	if (++nbad <= 20)
		tap_diag("%s: %s", what, spec);
}

static size_t pos_count(const lcase *c)
{
	size_t n = 0;
	while (n < 3 && c->pos[n])
		n++;
	return n;
}

/* The spec text with option a = va and b = vb (NULL: not set). */
static void make_spec(const lcase *c, const char *a, const char *va, const char *b, const char *vb, char *buf,
                      size_t len)
{
	const char *pos[3] = {c->pos[0], c->pos[1], c->pos[2]};
	size_t np = pos_count(c), o = 0;
	char kv[256];
	int is_input = !strcmp(c->type, "input");
	const char *ipos[3] = {NULL, NULL, NULL};
	char ibuf[64];
	/* the input line's dimensions are its positional words */
	snprintf(ibuf, sizeof ibuf, "%s", c->input);
	if (is_input) {
		char *save = NULL, *t = strtok_r(ibuf, " ", &save);
		for (np = 0; t && np < 3; t = strtok_r(NULL, " ", &save))
			ipos[np++] = t;
		for (size_t i = 0; i < 3; i++)
			pos[i] = ipos[i];
	}
	for (int k = 0; k < 2; k++) {
		const char *opt = k ? b : a, *v = k ? vb : va;
		if (opt && opt[0] == '#')
			pos[opt[1] - '0'] = v;
	}
	if (!is_input)
		o += (size_t)snprintf(buf + o, len - o, "input %s\n", c->input);
	o += (size_t)snprintf(buf + o, len - o, "%s", c->type);
	for (size_t i = 0; i < np; i++)
		o += (size_t)snprintf(buf + o, len - o, " %s", pos[i]);
	/* fixed options, unless tested */
	snprintf(kv, sizeof kv, "%s", c->kv);
	{
		char *save = NULL;
		for (char *t = strtok_r(kv, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			size_t kl = strcspn(t, "=");
			if ((a && strlen(a) == kl && !strncmp(a, t, kl)) || (b && strlen(b) == kl && !strncmp(b, t, kl)))
				continue;
			o += (size_t)snprintf(buf + o, len - o, " %s", t);
		}
	}
	for (int k = 0; k < 2; k++) {
		const char *opt = k ? b : a, *v = k ? vb : va;
		if (opt && opt[0] != '#')
			o += (size_t)snprintf(buf + o, len - o, " %s=%s", opt, v);
	}
	if (c->body)
		o += (size_t)snprintf(buf + o, len - o, " %s", c->body);
	snprintf(buf + o, len - o, "\n");
}

/* Forward and backward on two examples of a small accepted model. */
static void run(const char *spec)
{
	sk_model *m = sk_model_from_text(spec, "hostile.spec");
	size_t in, out;
	float *x = NULL, *dy = NULL;
	sk_ctx c;
	const float *y;
	if (!m) {
		report(spec, "declared but not built");
		return;
	}
	in = sk_shape_size(m->in);
	out = sk_shape_size(m->seq->out);
	memset(&c, 0, sizeof c);
	c.train = 1;
	c.update_buffers = 1;
	c.seed = 1;
	if (sk_model_init(m, 3) < 0 || sk_seq_setup(m->seq, 2) < 0 || sk_model_for_training(m) < 0) {
		const char *e = sk_errmsg();
		if (strchr(e, '\n') || !*e)
			report(spec, "setup failed without a one-line message");
		sk_model_free(m);
		return;
	}
	x = malloc(sizeof *x * 2 * in);
	dy = malloc(sizeof *dy * 2 * out);
	for (size_t i = 0; i < 2 * in; i++)
		x[i] = (float)((i * 7919) % 17) / 8.0f - 1.0f;
	for (size_t i = 0; i < 2 * out; i++)
		dy[i] = (float)((i * 31) % 5) / 4.0f - 0.5f;
	if (!(y = sk_seq_forward(m->seq, &c, 2, x)))
		report(spec, "forward failed");
	else if (sk_seq_backward(m->seq, &c, 2, x, dy, NULL) < 0)
		report(spec, "backward failed");
	free(x);
	free(dy);
	sk_model_free(m);
}

/* One spec: a one-line error, or a correct model (run when small). */
static void check(const lcase *c, const char *spec, long *accepted, long *refused)
{
	sk_model *m;
	sk_error_clear();
	m = sk_model_declare(spec, "hostile.spec");
	if (!m) {
		const char *e = sk_errmsg();
		char want[64];
		snprintf(want, sizeof want, ": %s", c->type);
		(*refused)++;
		if (!*e || strchr(e, '\n') || strncmp(e, "hostile.spec:", 13) || !strstr(e, want))
			report(spec, e);
		return;
	}
	(*accepted)++;
	sk_seq *q = m->seq;
	double f = sk_model_flops(m);
	size_t maxact = q->maxact;
	for (int i = 0; i < q->n; i++) {
		sk_shape s = q->layers[i]->out;
		if (s.n < 1 || s.n > 3)
			report(spec, "bad output rank");
		for (int d = 0; d < s.n; d++)
			if (s.d[d] < 1)
				report(spec, "empty output extent");
		if (sk_shape_size(s) > SK_MAX_ACT)
			report(spec, "output over the cap");
	}
	if (!isfinite(f) || f < 0)
		report(spec, "FLOPs not finite");
	if (sk_seq_value_count(q) > SK_MAX_MODEL || sk_model_param_count(m) > sk_seq_value_count(q))
		report(spec, "parameter count wrong");
	if (sk_seq_value_count(q) <= RUN_VALUES && maxact <= RUN_ACT) {
		sk_model_free(m);
		run(spec);
	} else
		sk_model_free(m);
}

static int count_w(sk_param *p, sk_layer *l, void *arg)
{
	(void)l;
	((int *)arg)[0] += p->w != NULL;
	((int *)arg)[1] += p->g != NULL;
	((int *)arg)[2]++;
	return 0;
}

static void alloc_policy(void)
{
	static const char spec[] = "input 1 8 8 mean=0.5 std=0.25\nconv 4 k=3 pad=1\nbn\nresblock 4\nflatten\n"
	                           "linear 3\n";
	sk_model *m = sk_model_declare(spec, "alloc.spec");
	int c[3] = {0, 0, 0};
	if (m)
		sk_seq_walk_params(m->seq, count_w, c);
	tap_ok(m && c[2] > 10 && c[0] == 0 && c[1] == 0, "declared: %d parameters, %d with values, %d with gradients",
	       c[2], c[0], c[1]);
	tap_ok(m && sk_model_param_count(m) == 4 * 9 + 4 + 8 + (4 * 4 * 9 + 8) * 2 + 3 * 256 + 3,
	       "declared: parameters counted from shapes");
	sk_model_free(m);
	m = sk_model_from_text(spec, "alloc.spec");
	memset(c, 0, sizeof c);
	if (m)
		sk_seq_walk_params(m->seq, count_w, c);
	tap_ok(m && c[0] == c[2] && c[1] == 0, "built: %d of %d with values, %d with gradients", c[0], c[2], c[1]);
	/* values the spec gives are there before any init */
	sk_layer *in = m ? m->seq->layers[0] : NULL, *bn = m ? sk_seq_find(m->seq, "bn3") : NULL;
	tap_ok(in && in->nparams == 2 && in->params[0].w[0] == 0.5f && in->params[1].w[0] == 0.25f && bn &&
	           bn->params[0].w[3] == 1.0f && bn->params[3].w[3] == 1.0f && bn->params[1].w[0] == 0.0f,
	       "built: the input's mean and std and batch norm's ones are set");
	tap_ok(m && !sk_seq_has_grads(m->seq) && sk_model_for_training(m) == 0 && sk_seq_has_grads(m->seq),
	       "for training: gradients added");
	memset(c, 0, sizeof c);
	if (m)
		sk_seq_walk_params(m->seq, count_w, c);
	tap_ok(m && c[1] == c[2] - 8, "for training: all but the 8 buffers have gradients (%d of %d)", c[1], c[2]);
	sk_model_free(m);
}

int main(void)
{
	int nt;
	const sk_layer_ops *const *t = sk_layer_table(&nt);
	char spec[1024];
	alloc_policy();
	/* every registered layer has a case */
	for (int i = 0; i < nt; i++) {
		int found = 0;
		for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
			found |= !strcmp(cases[k].type, t[i]->type);
		tap_ok(found, "layer '%s' has hostile cases", t[i]->type);
	}
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const lcase *c = &cases[k];
		long acc = 0, ref = 0;
		int no = 0, bad0 = nbad;
		while (no < 24 && c->opts[no])
			no++;
		make_spec(c, NULL, NULL, NULL, NULL, spec, sizeof spec);
		{
			sk_model *m = sk_model_declare(spec, "hostile.spec");
			if (!tap_ok(m != NULL, "%s: base case %s%s builds", c->type, c->kv, m ? "" : sk_errmsg()))
				tap_diag("%s", spec);
			sk_model_free(m);
		}
		check(c, spec, &acc, &ref);
		for (int a = 0; a < no; a++)
			for (int va = 0; va < NV; va++) {
				make_spec(c, c->opts[a], values[va], NULL, NULL, spec, sizeof spec);
				check(c, spec, &acc, &ref);
				for (int b = a + 1; b < no; b++)
					for (int vb = 0; vb < NV; vb++) {
						make_spec(c, c->opts[a], values[va], c->opts[b], values[vb], spec, sizeof spec);
						check(c, spec, &acc, &ref);
					}
			}
		tap_ok(nbad == bad0, "%s %s: %ld hostile specs refused with one line, %ld built correct models", c->type,
		       c->kv, ref, acc);
	}
	return tap_done();
}
