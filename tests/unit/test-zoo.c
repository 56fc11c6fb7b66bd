/* test-zoo.c: the set layers (gradient checks), encoders, zoo metrics and the
 * logit-invariance permutation. */
#include "gradcheck.h"
#include "sk_model.h"
#include "sk_sne.h"
#include "sk_zoo.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_gradients(void)
{
	gc_opts o = {0};
	o.n = 3;
	o.seed = 5;
	o.samples = 60;
	gc_check("layernorm\n", sk_shape2(5, 6), &o);
	gc_check("layernorm\n", sk_shape1(7), &o);
	gc_check("mha heads=2\n", sk_shape2(5, 8), &o);
	gc_check("mha heads=2 d=6\n", sk_shape2(4, 5), &o);
	gc_check("sab 8 heads=2\n", sk_shape2(5, 6), &o);
	gc_check("sab 8 heads=4 ln=1\n", sk_shape2(5, 8), &o);
	gc_check("isab 8 m=3 heads=2\n", sk_shape2(6, 5), &o);
	gc_check("isab 8 m=2 heads=2 ln=1\n", sk_shape2(4, 8), &o);
	gc_check("pma k=1 heads=2\n", sk_shape2(5, 6), &o);
	gc_check("pma k=2 d=8 heads=4 ln=1\n", sk_shape2(5, 6), &o);
	gc_check("sab 8 heads=2\nsab 8 heads=2\npma k=1 heads=2\n", sk_shape2(6, 4), &o);
	/* one set, and a batch in buffers with room for more */
	o.n = 1;
	o.extra = 4;
	gc_check("mha heads=1 d=4\n", sk_shape2(3, 5), &o);
	gc_check("isab 4 m=2 heads=2\n", sk_shape2(5, 3), &o);
	gc_check("pma k=3 heads=1\n", sk_shape2(4, 4), &o);
	o.n = 4;
	o.extra = 1;
	gc_check("layernorm\n", sk_shape3(2, 3, 4), &o);
	gc_check("sab 6 heads=3 ln=1\nlayernorm\n", sk_shape2(3, 4), &o);
	gc_check("linear 6\nlayernorm\n", sk_shape1(5), &o);
}

/* Permutation invariance of PMA and equivariance of SAB, ISAB. */
static void test_invariance(void)
{
	const char *specs[] = {"sab 8 heads=2 ln=1\n", "isab 8 m=3 heads=2\n", "mha heads=2\n",
	                       "sab 8 heads=2\npma k=2 heads=2\n"};
	for (int s = 0; s < 4; s++) {
		sk_spec *sp = sk_spec_parse(specs[s], "t");
		sk_seq *q = sk_seq_build(sp, sk_shape2(5, 8), "");
		float x[40], xp[40], y[80];
		int perm[5] = {3, 0, 4, 1, 2};
		sk_ctx c = {0};
		sk_rng r = sk_rng_make(9, 1);
		int pool = s == 3;
		sk_seq_setup(q, 1);
		sk_seq_init(q, 3);
		for (int i = 0; i < 40; i++)
			x[i] = sk_rng_next_normal(&r);
		for (int t = 0; t < 5; t++)
			memcpy(xp + t * 8, x + perm[t] * 8, 8 * sizeof(float));
		size_t ny = sk_shape_size(q->out);
		memcpy(y, sk_seq_forward(q, &c, 1, x), ny * sizeof(float));
		const float *yp = sk_seq_forward(q, &c, 1, xp);
		double err = 0;
		for (size_t i = 0; i < ny; i++) {
			size_t t = i / 8, j = i % 8;
			float want = pool ? y[i] : y[perm[t] * 8 + j];
			err = fmax(err, fabs(want - yp[i]));
		}
		tap_ok(err < 1e-5, "%.*s%s: permuting the set %s the output (max error %.2g)",
		       (int)strcspn(specs[s], "\n"), specs[s], pool ? " + pma" : "", pool ? "leaves" : "permutes", err);
		sk_seq_free(q);
		sk_spec_free(sp);
	}
}

static void test_metrics(void)
{
	/* scipy.stats.kendalltau and spearmanr documentation examples */
	double x1[] = {12, 2, 1, 12, 2}, x2[] = {1, 4, 7, 1, 0};
	double a[] = {1, 2, 3, 4, 5}, b[] = {5, 6, 7, 8, 7};
	double c[] = {5, 4, 3, 2, 1}, k[] = {3, 3, 3, 3, 3};
	double t = sk_kendall_tau(x1, x2, 5);
	tap_ok(fabs(t - (-0.47140452079103173)) < 1e-12, "kendall tau-b with ties: %.15f", t);
	t = sk_kendall_tau(a, c, 5);
	tap_ok(fabs(t + 1) < 1e-12, "kendall tau of reversed order is -1 (%g)", t);
	tap_ok(isnan(sk_kendall_tau(a, k, 5)), "kendall tau of a constant vector is undefined");
	t = sk_spearman(a, b, 5);
	tap_ok(fabs(t - 0.8207826816681233) < 1e-12, "spearman with ties: %.15f", t);
	double r[5];
	sk_ranks(x1, 5, r);
	tap_ok(r[0] == 4.5 && r[1] == 2.5 && r[2] == 1 && r[3] == 4.5 && r[4] == 2.5, "average ranks");
	double p[] = {1.5, 2, 2.5, 4, 5};
	double r2 = sk_r2(a, p, 5), e = sk_rmse(a, p, 5);
	tap_ok(fabs(r2 - (1 - 0.5 / 10)) < 1e-12 && fabs(e - sqrt(0.5 / 5)) < 1e-12, "r2 %.4f rmse %.4f", r2, e);
}

/* Forward a network before and after permuting its hidden units. */
static void check_permutation(const char *spec, const char *what, sk_shape in)
{
	sk_model *m = sk_model_from_text(spec, what);
	sk_zoo_model zm;
	sk_ctx c = {0};
	size_t nin = sk_shape_size(in);
	int n = 4;
	if (!m) {
		tap_ok(0, "%s builds: %s", what, sk_errmsg());
		return;
	}
	float *x = malloc(sizeof(float) * nin * (size_t)n), *y0 = malloc(sizeof(float) * 10 * (size_t)n);
	sk_rng rng = sk_rng_make(4, 4);
	for (size_t i = 0; i < nin * (size_t)n; i++)
		x[i] = sk_rng_next_normal(&rng);
	sk_model_init(m, 11);
	sk_seq_setup(m->seq, n);
	/* biases are zero after init: give them values so their permutation matters */
	int ok = sk_zoo_model_from_seq(m->seq, &zm) == 0;
	for (int l = 0; ok && l < zm.nlayers; l++)
		if (zm.layers[l].b != SK_ZOO_NOB)
			for (int o = 0; o < zm.layers[l].out; o++)
				zm.flat[zm.layers[l].b + (size_t)o] = 0.3f * sk_rng_next_normal(&rng);
	ok = ok && sk_zoo_model_to_seq(&zm, m->seq) == 0;
	const float *y = ok ? sk_seq_forward(m->seq, &c, n, x) : NULL;
	size_t ny = sk_shape_size(m->seq->out) * (size_t)n;
	if (!y) {
		tap_ok(0, "%s runs: %s", what, sk_errmsg());
		goto out;
	}
	memcpy(y0, y, ny * sizeof(float));
	sk_zoo_model pm;
	sk_zoo_model_copy(&pm, &zm, 0);
	ok = sk_zoo_permute(&pm, 5, 1) == 0;
	double moved = 0;
	for (size_t i = 0; i < zm.nflat; i++)
		moved += fabs(pm.flat[i] - zm.flat[i]);
	ok = ok && sk_zoo_model_to_seq(&pm, m->seq) == 0 && (y = sk_seq_forward(m->seq, &c, n, x));
	double err = 0, mag = 0;
	for (size_t i = 0; ok && i < ny; i++) {
		err = fmax(err, fabs(y[i] - y0[i]));
		mag = fmax(mag, fabs(y0[i]));
	}
	tap_ok(ok && moved > 0 && err <= 1e-5 * fmax(mag, 1), "%s: permuted hidden units (weights moved %.3g) leave the outputs"
	       " unchanged (max error %.2g of %.3g) %s", what, moved, err, mag, ok ? "" : sk_errmsg());
	/* a wrong permutation (output units too) must change them: the test can fail */
	for (int o = 0; o < 2; o++) {
		sk_zoo_layer *L = &pm.layers[pm.nlayers - 1];
		size_t k = (size_t)L->in * L->kh * L->kw;
		for (size_t j = 0; j < k; j++) {
			float t = pm.flat[L->w + j];
			pm.flat[L->w + j] = pm.flat[L->w + k + j];
			pm.flat[L->w + k + j] = t;
		}
		(void)o;
		break;
	}
	sk_zoo_model_to_seq(&pm, m->seq);
	y = sk_seq_forward(m->seq, &c, n, x);
	err = 0;
	for (size_t i = 0; y && i < ny; i++)
		err = fmax(err, fabs(y[i] - y0[i]));
	tap_ok(err > 1e-3, "%s: swapping two output units changes the outputs (%.3g)", what, err);
	sk_zoo_model_free(&pm);
out:
	sk_zoo_model_free(&zm);
	free(x);
	free(y0);
	sk_model_free(m);
}

static void test_permutation(void)
{
	check_permutation("input 1 28 28\nconv 16 k=3 stride=2\nrelu\nconv 16 k=3 stride=2\nrelu\n"
	                  "conv 16 k=3 stride=2\nrelu\ngap\nlinear 10\n", "zoo-cnn", sk_shape3(1, 28, 28));
	check_permutation("input 1 12 12\nconv 4 k=3\ntanh\npool max k=2\nconv 6 k=3 pad=1\ntanh\nflatten\n"
	                  "linear 8\nrelu\nlinear 3\n", "conv-pool-flatten-dense", sk_shape3(1, 12, 12));
}

/* A small zoo of two architectures, built in memory. */
static void make_zoo(sk_zoo *z)
{
	const char *specs[] = {"input 1 8 8\nconv 3 k=3 stride=2\nrelu\nconv 4 k=3\nrelu\ngap\nlinear 5\n",
	                       "input 1 8 8\nconv 2 k=3\ntanh\ngap\nlinear 6\nrelu\nlinear 5\n"};
	sk_zoo_init(z);
	z->cap = 6;
	z->m = calloc(6, sizeof *z->m);
	for (int i = 0; i < 6; i++) {
		sk_model *m = sk_model_from_text(specs[i % 2], "zoo");
		sk_model_init(m, (uint64_t)i + 1);
		sk_zoo_model_from_seq(m->seq, &z->m[i]);
		sk_attrs_setf(&z->m[i].attrs, "test_acc", "%g", 0.1 + 0.15 * i);
		sk_attrs_setf(&z->m[i].attrs, "run", "r%d", i);
		z->n++;
		sk_model_free(m);
	}
}

static void test_encoders(void)
{
	sk_zoo z;
	int idx[6] = {0, 1, 2, 3, 4, 5};
	make_zoo(&z);
	tap_ok(z.n == 6 && z.m[0].nlayers == 3 && z.m[1].nlayers == 3 && z.m[0].layers[0].conv &&
	       !z.m[1].layers[2].conv && z.m[1].layers[1].in == 2, "in-memory zoo of two architectures");
	for (int k = 0; k < 3; k++) {
		sk_enc_config c;
		double worst = 0;
		sk_enc_defaults(&c, (sk_enc_kind)k);
		c.d = 8, c.chunk = 4, c.heads = 2, c.hidden = 8;
		sk_encoder *e = sk_encoder_new(&c, &z, idx, 6, 3);
		int bad = e ? sk_encoder_check_gradients(e, &z, idx, 6, 5, 6, 2e-2, &worst) : -1;
		tap_ok(bad == 0, "%s encoder: gradient of the whole encoder over a mixed batch (worst rel err %.3g) %s",
		       sk_enc_name((sk_enc_kind)k), worst, bad < 0 ? sk_errmsg() : "");
		/* training lowers the loss on this tiny zoo */
		double target[6];
		for (int i = 0; i < 6; i++)
			target[i] = 0.1 + 0.15 * i;
		float s0[6], s1[6];
		sk_encoder_run(e, &z, idx, 6, NULL, s0);
		sk_enc_train t;
		sk_enc_train_defaults(&t);
		t.epochs = 60;
		t.batch = 3;
		t.lr = 3e-3f;
		t.lambda = k == 0 ? 0.1f : 0;
		t.seed = 2;
		int rc = sk_encoder_train(e, &z, idx, 6, target, &t);
		sk_encoder_run(e, &z, idx, 6, NULL, s1);
		double e0 = 0, e1 = 0;
		for (int i = 0; i < 6; i++) {
			double p0 = 1 / (1 + exp(-s0[i])), p1 = 1 / (1 + exp(-s1[i]));
			e0 += (p0 - target[i]) * (p0 - target[i]);
			e1 += (p1 - target[i]) * (p1 - target[i]);
		}
		tap_ok(rc == 0 && e1 < 0.5 * e0, "%s encoder fits a tiny zoo: squared error %.4f -> %.4f",
		       sk_enc_name((sk_enc_kind)k), e0, e1);
		sk_encoder_free(e);
	}
	sk_zoo_free(&z);
}

/* Write m to a temporary stream and read it back as a zoo: 0 or -1. */
static int zoo_roundtrip(sk_model *m, sk_zoo *z)
{
	char path[] = "/tmp/sk-test-zoo.XXXXXX";
	int fd = mkstemp(path), rc = -1;
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	sk_zoo_init(z);
	if (f && sk_model_write(f, m, 0) == 0 && fclose(f) == 0) {
		f = NULL;
		rc = sk_zoo_read(path, z);
	}
	if (f)
		fclose(f);
	if (fd >= 0)
		unlink(path);
	return rc;
}

/* The zoo reader asks a model's layers which parameters are weights
 * (sk_layer_affine), from a sequence and from a stream: the nsm layer's w and
 * the attention blocks' q.w, k.w, v.w, o.w are not conv or dense layers. */
static void check_affine(const char *spec, const char *what, int in, int out)
{
	sk_model *m = sk_model_from_text(spec, what);
	sk_zoo_model zm;
	sk_zoo z;
	int ok;
	if (!m) {
		tap_ok(0, "%s builds: %s", what, sk_errmsg());
		return;
	}
	sk_model_init(m, 3);
	ok = sk_zoo_model_from_seq(m->seq, &zm) == 0;
	tap_ok(ok && zm.nlayers == 1 && !strcmp(zm.layers[0].name, "fc") && zm.layers[0].in == in &&
	       zm.layers[0].out == out && !zm.layers[0].conv && zm.layers[0].b != SK_ZOO_NOB,
	       "%s: one affine layer from the sequence, fc %d -> %d (got %d) %s", what, in, out, ok ? zm.nlayers : -1,
	       ok ? "" : sk_errmsg());
	ok = zoo_roundtrip(m, &z) == 0 && z.n == 1;
	tap_ok(ok && z.m[0].nlayers == 1 && !strcmp(z.m[0].layers[0].name, "fc") && z.m[0].layers[0].in == in &&
	       z.m[0].layers[0].out == out && z.m[0].layers[0].w == zm.layers[0].w &&
	       z.m[0].layers[0].b == zm.layers[0].b,
	       "%s: the same from a stream (got %d layers) %s", what, ok ? z.m[0].nlayers : -1, ok ? "" : sk_errmsg());
	sk_zoo_free(&z);
	sk_zoo_model_free(&zm);
	sk_model_free(m);
}

static void test_affine(void)
{
	sk_model *m;
	sk_zoo z;
	char *text;
	sk_zoo_init(&z);
	check_affine("input 1 6 6\nnsm 3 k=3\ngap\nlinear 2 name=fc\n", "nsm-gap-linear", 3, 2);
	check_affine("input 5 6\nsab 8 heads=2\npma k=1 heads=2\nflatten\nlinear 3 name=fc\n", "sab-pma-linear", 8, 3);
	/* a weight record whose shape is not the one its spec declares */
	m = sk_model_from_text("input 1 6 6\nconv 2 k=3 name=c\ngap\nlinear 2 name=fc\n", "conv2");
	text = strdup("input 1 6 6\nconv 3 k=3 name=c\ngap\nlinear 2 name=fc\n");
	if (m && text) {
		free(m->spec_text);
		m->spec_text = text;
		text = NULL;
	}
	free(text);
	int bad = m && zoo_roundtrip(m, &z) < 0;
	tap_ok(bad && strstr(sk_errmsg(), "c.w"),
	       "a record of another shape than the spec's is an error: %s", bad ? sk_errmsg() : "read");
	sk_zoo_free(&z);
	sk_model_free(m);
}

/* A zoo of many members, each of many parameter records, written and read
 * back: every value is copied once (the reader is linear in the zoo's size:
 * counted, not timed; the old reader re-copied the flat vector at every
 * record), and a member's flat vector is its parameters in stream order,
 * buffers (the input's mean) included. */
static void test_read_linear(void)
{
	char spec[4096] = "input 1 4 4 mean=0.5\nflatten\n", path[] = "/tmp/test-zoo-XXXXXX";
	int members = 40, fd = mkstemp(path), ok = 1;
	FILE *f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
	size_t total = 0;
	float first[64];
	for (int i = 0; i < 60; i++)
		strcat(spec, "linear 3\n");
	for (int i = 0; f && i < members; i++) {
		sk_model *m = sk_model_from_text(spec, "zoo");
		sk_param **ps;
		ok = ok && m && sk_model_init(m, (uint64_t)i + 1) == 0 && sk_attrs_setf(&m->attrs, "run", "r%d", i / 4) == 0 &&
		     sk_model_write(f, m, 0) == 0 && sk_model_params(m, &ps) > 2;
		total += ok ? sk_seq_value_count(m->seq) : 0;
		if (ok && i == 0) {   /* input.mean (1), linear.w (3 x 16), ... */
			memcpy(first, ps[0]->w, sizeof(float));
			memcpy(first + 1, ps[1]->w, 48 * sizeof(float));
		}
		if (ok)
			free(ps);
		sk_model_free(m);
	}
	ok = ok && f && fclose(f) == 0;
	sk_zoo z;
	sk_zoo_init(&z);
	ok = ok && sk_zoo_read(path, &z) == 0;
	unlink(path);
	tap_ok(ok && z.n == members && z.m[0].nlayers == 60, "a zoo of %d members of 121 records each reads back %s",
	       members, ok ? "" : sk_errmsg());
	tap_ok(ok && z.copied == total, "each of the %zu values is copied once while reading (%zu copies)", total,
	       z.copied);
	tap_ok(ok && !memcmp(z.m[0].flat, first, 49 * sizeof(float)) && z.m[0].layers[0].w == 1 &&
	       z.m[0].layers[0].b == 49, "the flat vector is the parameters in stream order, the mean buffer first");
	/* the train and test parts keep the runs (4 members each) whole */
	sk_zoo_select s;
	int nt = 0, nv = 0, *tr, *te, whole = 1;
	sk_zoo_select_defaults(&s);
	s.part = "train";
	tr = ok ? sk_zoo_select_models(&z, &s, &nt) : NULL;
	s.part = "test";
	te = ok ? sk_zoo_select_models(&z, &s, &nv) : NULL;
	for (int k = 0; tr && te && k < nt; k++)
		for (int j = 0; j < nv; j++)
			whole = whole && te[j] / 4 != tr[k] / 4;
	tap_ok(tr && te && nt + nv == members && nt % 4 == 0 && whole, "--split: train %d + test %d models, runs whole",
	       nt, nv);
	free(tr);
	free(te);
	s.part = "all";
	ok = ok && sk_zoo_select_where(&s, "run=r3") == 0 && sk_zoo_select_where(&s, "epoch") < 0;
	tr = ok ? sk_zoo_select_models(&z, &s, &nt) : NULL;
	tap_ok(tr && nt == 4 && tr[0] == 12 && tr[3] == 15, "--where run=r3 keeps the run's 4 members");
	free(tr);
	ok = sk_zoo_select_where(&s, "run=none") == 0 && !sk_zoo_select_models(&z, &s, &nt);
	tap_ok(ok && strstr(sk_errmsg(), "no model left"), "no model left is an error: %s", sk_errmsg());
	sk_zoo_free(&z);
}

/* The zoo reader is the model reader: a member with a record its spec does
 * not declare is an error naming it (the old zoo reader took any f32
 * record, here as a layer "bogus"), as snet-infer would say. */
static void test_read_rules(void)
{
	char path[] = "/tmp/test-zoo-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
	sk_model *m = sk_model_from_text("input 4\nlinear 3\n", "zoo");
	float w[6] = {0};
	int64_t sh[2] = {2, 3};
	int ok = f && m && sk_model_init(m, 1) == 0 && sk_model_write(f, m, 1) == 0 &&
	         sk_write_record_raw(f, "bogus.w", SK_F32, 2, sh, w, NULL, 0) == 0;
	ok = ok && fclose(f) == 0;
	sk_zoo z;
	sk_zoo_init(&z);
	ok = ok && sk_zoo_read(path, &z) < 0 && strstr(sk_errmsg(), "'bogus.w' is not a parameter");
	tap_ok(ok, "a record the member's spec does not declare is an error: %s", sk_errmsg());
	unlink(path);
	sk_zoo_free(&z);
	sk_model_free(m);
}

/* The spec of a run from an architecture's spec (share/models): every relu
 * or tanh becomes the drawn activation and its dropout, the architecture's
 * own dropout is left out, the affine layers get the drawn initialiser, the
 * last one the class count, and the recipe is a train line. */
static void test_zoo_spec(void)
{
	const char *arch = "# a comment\ntrain optimizer=adam epochs=5\n"
	                   "input 1 28 28 scale=0.5 mean=1\n"
	                   "conv 16 k=3 stride=2 init=xavier scale=2\nrelu\ndropout p=0.5\n"
	                   "pool max k=2\nlinear 32 bias_init=0.1\ntanh\nlinear 10\n";
	sk_model *m = sk_model_declare(arch, "arch"), *r;
	sk_zoo_hparams h = {"tanh", "normal", 0.0123, "sgd", 0.01, 1e-5, 0.25, 0.5};
	char *s = m ? sk_zoo_spec(m, "net", &h, 512, 18, 12) : NULL;
	const char *want = "# net with the hyperparameters of one zoo run (zoo-encode run)\n"
	                   "train optimizer=sgd momentum=0 lr=0.01 wd=2e-05 batch=512 epochs=18 schedule=constant\n"
	                   "input 1 28 28 scale=0.5 mean=1\n"
	                   "conv 16 k=3 stride=2 init=normal scale=0.0123\ntanh\ndropout p=0.25\n"
	                   "pool max k=2\nlinear 32 bias_init=0.1 init=normal scale=0.0123\ntanh\ndropout p=0.25\n"
	                   "linear 12 init=normal scale=0.0123\n";
	tap_ok(s && !strcmp(s, want), "a run's spec from an architecture:\n%s", s ? s : sk_errmsg());
	r = s ? sk_model_from_text(s, "run") : NULL;
	tap_ok(r && r->nclasses == 12, "it builds, with 12 outputs: %s", r ? "yes" : sk_errmsg());
	sk_model_free(r);
	free(s);
	h = (sk_zoo_hparams){"relu", "he", 0.3, "adam", 0.001, 1e-4, 0, 1};
	s = m ? sk_zoo_spec(m, "net", &h, 64, 2, 10) : NULL;
	tap_ok(s && strstr(s, "\ntrain optimizer=adam lr=0.001 wd=0.0002 batch=64 epochs=2 schedule=constant\n") &&
	           strstr(s, "\nconv 16 k=3 stride=2 init=he\nrelu\ndropout p=0\n") &&
	           strstr(s, "\nlinear 10 init=he\n"),
	       "he and xavier keep their own scale; adam has no momentum key:\n%s", s ? s : sk_errmsg());
	free(s);
	sk_model_free(m);
	m = sk_model_declare("input 2 8 8\nresidual {\nconv 2 k=3 pad=1\n}\nlinear 10\n", "blocks");
	s = m ? sk_zoo_spec(m, "blocks", &h, 64, 2, 10) : NULL;
	tap_ok(m && !s && strstr(sk_errmsg(), "a flat list of layers"), "an architecture with blocks: %s", sk_errmsg());
	sk_model_free(m);
	m = sk_model_declare("input 4\nlinear 8\nrelu\n", "tail");
	s = m ? sk_zoo_spec(m, "tail", &h, 64, 2, 10) : NULL;
	tap_ok(m && !s && strstr(sk_errmsg(), "last layer of a zoo architecture must be affine"),
	       "an architecture whose last layer is not affine: %s", sk_errmsg());
	sk_model_free(m);

	/* the draw: the Small CNN Zoo's families and ranges, every choice seen */
	sk_zoo_hparams a, b;
	int seen[10] = {0}, ok = 1;
	sk_zoo_draw(7, &a);
	sk_zoo_draw(7, &b);
	tap_ok(!memcmp(&a, &b, sizeof a), "the same seed draws the same hyperparameters");
	for (uint64_t seed = 1; seed <= 3000; seed++) {
		sk_zoo_draw(seed, &a);
		ok = ok && a.lr >= 5e-4 && a.lr <= 5e-2 && a.l2 >= 1e-8 && a.l2 <= 1e-2 && a.dropout >= 0 &&
		     a.dropout < 0.7 && a.init_std >= 1e-3 && a.init_std <= 0.5 &&
		     (a.train_fraction == 0.1 || a.train_fraction == 0.25 || a.train_fraction == 0.5 ||
		      a.train_fraction == 1.0);
		seen[0] |= !strcmp(a.activation, "relu");
		seen[1] |= !strcmp(a.activation, "tanh");
		seen[2] |= !strcmp(a.optimizer, "sgd");
		seen[3] |= !strcmp(a.optimizer, "adam");
		seen[4] |= !strcmp(a.optimizer, "rmsprop");
		seen[5] |= !strcmp(a.init, "he");
		seen[6] |= !strcmp(a.init, "xavier");
		seen[7] |= !strcmp(a.init, "normal");
		seen[8] |= a.lr < 1e-3 && a.l2 < 1e-7;
		seen[9] |= a.lr > 2.5e-2 && a.dropout > 0.6;
	}
	for (int i = 0; i < 10; i++)
		ok = ok && seen[i];
	tap_ok(ok, "3000 draws stay in the ranges and cover every choice and both ends");
}

int main(void)
{
	test_affine();
	test_read_linear();
	test_read_rules();
	test_zoo_spec();
	test_encoders();
	test_metrics();
	test_permutation();
	test_gradients();
	test_invariance();
	return tap_done();
}
