/* test-infer.c: the forward-only engine (lib/nn/plan.c) against the training
 * engine's forward in evaluation mode, on models with random weights and
 * random batch-norm statistics: LeNet-5, a small ResNet (every residual
 * shortcut, both resblock shortcuts), a DMRNet from the mr-build builder, a
 * SimNet (sim, mex), maxmin, dropout and bn in every position, set layers,
 * NSM and the element-wise activations; every registered layer type must
 * appear in one of them.  Outputs (logits and a captured layer's features)
 * must agree within TOL relative to the largest reference value, for
 * several slice sizes and thread counts.  Also: the planned buffers (two
 * per plain sequence, three for residual networks), errors. */
#include "sk_arch.h"
#include "sk_infer.h"
#include "sk_model.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float rounding: folding batch norm into a convolution's weights rounds
 * the weights once; through a few dozen layers that stays far below this */
#define TOL 1e-4

static void fill(float *x, size_t n, uint64_t stream, float scale, float shift)
{
	sk_rng r = sk_rng_make(7, stream);
	for (size_t i = 0; i < n; i++)
		x[i] = shift + scale * sk_rng_next_normal(&r);
}

/* Random batch-norm statistics and affine terms and random biases, so that
 * a fold that drops any of them shows. */
static int randomise(sk_param *p, sk_layer *l, void *arg)
{
	sk_rng r = sk_rng_make(11, sk_rng_hash(p->name));
	size_t k = strlen(p->name);
	(void)l;
	(void)arg;
#define ENDS(s) (k >= sizeof(s) - 1 && !strcmp(p->name + k - (sizeof(s) - 1), s))
	for (size_t i = 0; i < p->size; i++) {
		float u = sk_rng_next_uniform(&r), g = sk_rng_next_normal(&r);
		if (ENDS(".mean"))
			p->w[i] = 0.5f * g;
		else if (ENDS(".var"))
			p->w[i] = 0.3f + 2.0f * u;
		else if (ENDS(".gamma"))
			p->w[i] = 1.0f + 0.4f * g;
		else if (ENDS(".beta") || ENDS(".b"))
			p->w[i] = 0.3f * g;
	}
#undef ENDS
	return 0;
}

static float *find_act(sk_seq *q, const char *name)
{
	for (int i = 0; i < q->n; i++) {
		sk_layer *l = q->layers[i];
		if (!strcmp(l->name, name))
			return q->act[i];
		for (int c = 0; c < l->nchild; c++) {
			float *a = find_act(l->child[c], name);
			if (a)
				return a;
		}
	}
	return NULL;
}

static double maxabs(const float *a, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs(a[i]) > m)
			m = fabs(a[i]);
	return m;
}

/* Largest |a - b| relative to max(1, max |b|); NaN counts as infinite. */
static double relerr(const float *a, const float *b, size_t n)
{
	double d = 0, s = fmax(1.0, maxabs(b, n));
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - (double)b[i]) / s;
		if (!(e <= d))
			d = isnan(e) ? INFINITY : e;
	}
	return d;
}

static unsigned char seen[64];

static int mark_type(sk_layer *l, int depth, void *arg)
{
	int n;
	const sk_layer_ops *const *t = sk_layer_table(&n);
	(void)depth;
	(void)arg;
	for (int i = 0; i < n && i < 64; i++)
		if (t[i] == l->ops)
			seen[i] = 1;
	return 0;
}

static sk_model *make(const char *name, const char *text)
{
	sk_model *m = sk_model_from_text(text, name);
	if (!m || sk_model_init(m, 3) < 0) {
		tap_diag("%s: %s", name, sk_errmsg());
		sk_model_free(m);
		return NULL;
	}
	sk_seq_walk_params(m->seq, randomise, NULL);
	sk_seq_walk_layers(m->seq, mark_type, NULL);
	return m;
}

/* The engine against sk_seq_forward for n examples, with slices of `slice`
 * examples (0: its choice) on `threads` threads, capturing `layer`. */
static void check(const char *name, const char *text, int n, const char *layer, float xscale, float xshift)
{
	sk_model *m = make(name, text);
	sk_ctx ctx;
	if (!tap_ok(m != NULL, "%s: builds", name))
		return;
	size_t in = sk_shape_size(m->in), out = sk_shape_size(m->seq->out);
	float *x = sk_alloc_array((size_t)n * in, sizeof(float)), *ref = NULL, *feat = NULL;
	float *y = sk_alloc_array((size_t)n * out, sizeof(float)), *yf = NULL;
	const float *z;
	size_t fsz = 0;
	fill(x, (size_t)n * in, 1, xscale, xshift);
	/* the reference: the training engine, evaluation mode */
	memset(&ctx, 0, sizeof ctx);
	sk_engine *e0 = sk_engine_new(m, 1, n, layer, 0);   /* sets FTZ/DAZ in this thread, as the team does */
	if (sk_seq_setup(m->seq, n) < 0 || !(z = sk_seq_forward(m->seq, &ctx, n, x))) {
		tap_ok(0, "%s: reference forward: %s", name, sk_errmsg());
		goto out;
	}
	ref = sk_alloc_array((size_t)n * out, sizeof(float));
	memcpy(ref, z, sizeof(float) * (size_t)n * out);
	if (layer) {
		sk_layer *l = sk_seq_find(m->seq, layer);
		fsz = l ? sk_shape_size(l->out) : 0;
		yf = sk_alloc_array((size_t)n * fsz, sizeof(float));
		feat = find_act(m->seq, layer);
	}
	tap_ok(e0 && sk_engine_layer_size(e0) == fsz, "%s: engine built (%s)", name, e0 ? "" : sk_errmsg());
	sk_engine_free(e0);
	static const int slices[] = {0, 1, 3}, threads[] = {1, 1, 2};
	for (int k = 0; k < 3; k++) {
		sk_engine *e = sk_engine_new(m, threads[k], n, layer, slices[k]);
		double d = INFINITY, df = 0;
		memset(y, 0xff, sizeof(float) * (size_t)n * out);   /* NaN: nothing left unwritten */
		if (e && sk_engine_forward(e, n, x, y, yf) == 0) {
			d = relerr(y, ref, (size_t)n * out);
			if (layer)
				df = relerr(yf, feat, (size_t)n * fsz);
		} else {
			tap_diag("%s", sk_errmsg());
		}
		tap_ok(d <= TOL && df <= TOL,
		       "%s: engine = training forward (slice %d of %d, %d thread%s): error %.2g%s%s %.2g (max |y| %.3g)",
		       name, e ? sk_engine_slice(e) : 0, n, threads[k], threads[k] > 1 ? "s" : "", d, layer ? ", " : "",
		       layer ? layer : "", df, maxabs(ref, (size_t)n * out));
		sk_engine_free(e);
	}
out:
	sk_free(x);
	sk_free(y);
	sk_free(yf);
	sk_free(ref);
	sk_model_free(m);
}

static const char lenet5[] = "input 1 28 28 scale=0.00392156862745098\n"
                             "conv 6 k=5 pad=2\nrelu\npool max k=2\nconv 16 k=5\nrelu\npool max k=2\nflatten\n"
                             "linear 120\nrelu\nlinear 84\nrelu\nlinear 10\n";

/* every residual shortcut, and both resblock shortcuts */
static const char resnet[] =
	"input 3 12 12 mean=0.5,0.4,0.3 std=0.2,0.3,0.25\n"
	"conv 8 k=3 pad=1 bias=0\nbn\nrelu\n"
	"residual {\n conv 8 k=3 pad=1 bias=0\n bn\n relu\n conv 8 k=3 pad=1 bias=0\n bn\n}\nrelu\n"
	"residual shortcut=pad {\n conv 12 k=3 stride=2 pad=1 bias=0\n bn\n relu\n conv 12 k=3 pad=1 bias=0\n bn\n}\n"
	"relu\n"
	"residual shortcut=convbn {\n conv 16 k=3 pad=1 bias=0\n bn\n relu\n conv 16 k=3 pad=1\n bn\n}\nrelu\n"
	"residual shortcut=conv {\n conv 16 k=3 stride=2 pad=1\n bn\n relu\n}\nrelu leaky=0.1\n";

static const char resnet_tail[] = "resblock 16\nresblock 20 stride=2 shortcut=a\nresblock 24 shortcut=b\n"
                                  "gap\nlinear 10\n";

static const char simnet[] = "input 1 12 12 scale=0.00392156862745098\n"
                             "sim l1 6 k=3 pad=1 uinit=3\nmex k=2 xi=0.3\nmex 8 cb=0 offsets=shared\n"
                             "sim l2 5 k=3 pad=1\nmex 4 cb=0 offsets=shared\nmex k=0 xi=0.1\nflatten\n";

static const char maxmin[] = "input 1 10 10\nconv 8 k=3\nmaxmin\nrelu\npool max k=2\nconv 6 k=3 bias=0\nbn\n"
                             "maxmin relu=1\npool avg k=2 stride=1\nflatten\nlinear 10\n";

/* dropout and bn everywhere: after a conv with a bias, after a relu, after
 * a linear, before the first layer; dropout at the front and at the end */
static const char dropbn[] = "input 2 9 9\ndropout p=0.5\nbn\nconv 7 k=3 pad=1\nbn eps=0.01\ndropout p=0.3\n"
                             "relu\nbn\nconv 5 k=2 stride=2\nbn\nflatten\nlinear 12\nbn\ndropout p=0.5\nrelu\n"
                             "linear 6\ndropout p=0.2\n";

static const char sets[] = "input 6 8\nsab 8 heads=2\nisab 8 m=3 heads=2 ln=1\nlayernorm\nmha heads=2\n"
                           "gelu\npma k=2 heads=2\nflatten\nlinear 4\n";

static const char acts[] = "input 3 7 7\nnsm 4 k=3 iters=40\ntanh\nconv 6 k=3 pad=1\nsigmoid\nidentity\n"
                           "conv 6 k=1\nselu\nelu alpha=0.7\nsoftplus\ngap\nlinear 5\n";

static void test_models(void)
{
	char text[4096];
	check("lenet5", lenet5, 37, "conv2", 80, 100);
	check("lenet5", lenet5, 5, "pool7", 80, 100);
	snprintf(text, sizeof text, "%s%s", resnet, resnet_tail);
	check("resnet", text, 23, NULL, 1, 0.5f);
	check("resnet", text, 9, "residual5.conv1", 1, 0.5f);   /* a conv whose bn is then not folded */
	check("resnet", text, 9, "residual5.bn2", 1, 0.5f);     /* a folded bn */
	check("resnet", text, 9, "residual7", 1, 0.5f);         /* a sum whose relu follows */
	check("resnet", text, 9, "resblock13.relu1", 1, 0.5f);
	{
		sk_arch a = {.kind = SK_ARCH_DMRNET, .depth = 14, .width = 4, .classes = 10, .in_c = 3, .in_h = 12,
		             .in_w = 12};
		char *s = sk_arch_spec(&a);
		tap_ok(s != NULL, "the DMRNet builder writes a spec");
		if (s) {
			check("dmrnet-14", s, 19, NULL, 60, 120);
			check("dmrnet-14", s, 6, "s2b1.b.projbn", 60, 120);
			free(s);
		}
		a.kind = SK_ARCH_RESNET;
		a.shortcut_a = 1;
		if ((s = sk_arch_spec(&a))) {
			check("resnet-14 (mr-build, option A)", s, 11, "s3b2", 60, 120);
			free(s);
		}
	}
	check("simnet", simnet, 13, "mex3", 60, 100);
	check("maxmin", maxmin, 17, "maxmin8", 1, 0);
	check("dropout+bn", dropbn, 21, "bn5", 1, 0.2f);   /* folded, the conv has a bias */
	check("dropout+bn", dropbn, 21, "bn3", 1, 0.2f);   /* on the input */
	check("dropout+bn", dropbn, 21, "bn13", 1, 0.2f);  /* after a linear */
	check("dropout+bn", dropbn, 21, "dropout6", 1, 0.2f);
	check("sets", sets, 10, "layernorm4", 1, 0);
	check("nsm+activations", acts, 8, "tanh3", 1, 0.5f);
	/* every layer type took part */
	int n, missing = 0;
	const sk_layer_ops *const *t = sk_layer_table(&n);
	for (int i = 0; i < n && i < 64; i++)
		if (!seen[i]) {
			tap_diag("layer type '%s' is in no model of this test", t[i]->type);
			missing++;
		}
	tap_ok(missing == 0 && n <= 64, "every one of the %d layer types ran in the engine", n);
}

/* Buffers: two for a plain sequence, three for a residual network, each at
 * most a slice of the largest activation; no more for a larger batch. */
static void test_buffers(void)
{
	char text[4096];
	sk_model *m = make("lenet5", lenet5);
	sk_engine *e = m ? sk_engine_new(m, 1, 256, NULL, 16) : NULL;
	size_t big = 6 * 28 * 28 * sizeof(float) * 16;
	tap_ok(e && sk_engine_bytes(e) <= 2 * big,
	       "lenet5, batch 256 in slices of 16: %zu bytes of activations (two buffers: %zu)", e ? sk_engine_bytes(e) : 0,
	       2 * big);
	sk_engine_free(e);
	sk_model_free(m);
	snprintf(text, sizeof text,
	         "input 3 32 32\nconv 16 k=3 pad=1 bias=0\nbn\nrelu\n"
	         "residual {\n conv 16 k=3 pad=1 bias=0\n bn\n relu\n conv 16 k=3 pad=1 bias=0\n bn\n}\nrelu\n"
	         "resblock 16\nresblock 32 stride=2 shortcut=a\nresblock 64 stride=2\ngap\nlinear 10\n");
	m = make("resnet", text);
	e = m ? sk_engine_new(m, 1, 256, NULL, 0) : NULL;
	big = 16 * 32 * 32 * sizeof(float);
	int slice = e ? sk_engine_slice(e) : 0;
	tap_ok(e && slice > 1 && slice < 256 && sk_engine_bytes(e) <= 3 * big * (size_t)slice,
	       "resnet, batch 256: slices of %d, %zu bytes of activations (three buffers: %zu)", slice,
	       e ? sk_engine_bytes(e) : 0, 3 * big * (size_t)slice);
	sk_engine_free(e);
	sk_model_free(m);
}

static void test_errors(void)
{
	sk_model *m = make("lenet5", lenet5);
	sk_engine *e = m ? sk_engine_new(m, 1, 4, "nosuch", 0) : NULL;
	tap_ok(!e && strstr(sk_errmsg(), "no layer 'nosuch'"), "an unknown layer to capture: %s", sk_errmsg());
	e = m ? sk_engine_new(m, 2, 4, NULL, 0) : NULL;
	float x[5 * 784] = {0}, y[5 * 10];
	tap_ok(e && sk_engine_forward(e, 5, x, y, NULL) < 0 && strstr(sk_errmsg(), "exceeds"),
	       "a batch larger than planned is refused: %s", sk_errmsg());
	tap_ok(e && sk_engine_forward(e, 4, x, y, y) < 0 && strstr(sk_errmsg(), "without a layer"),
	       "features without a captured layer are refused: %s", sk_errmsg());
	tap_ok(e && sk_engine_forward(e, 0, x, y, NULL) == 0, "an empty batch is nothing to do");
	sk_engine_free(e);
	tap_ok(!sk_engine_new(m, 0, 4, NULL, 0) && !sk_engine_new(m, 1, 0, NULL, 0), "threads and batch are checked");
	sk_model_free(m);
}

int main(void)
{
	test_models();
	test_buffers();
	test_errors();
	return tap_done();
}
