/* test-sne.c: SNE as described, piece by piece (lib/methods/sne.c): the
 * pad-chunk layout for any layer and kernel size, the positional encodings
 * of the element, chunk and layer index and the layer-type embedding (each
 * seen by the encoder, and nothing else breaking the symmetry when it is
 * off), the logit-invariance penalty, the epoch chosen on validation models,
 * and the encoder on hyperparameters alone. */
#include "sk_rng.h"
#include "sk_sne.h"
#include "sk_zoo.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ldef {
	int conv, out, in, k;
} ldef;

/* Append a model of layers ls[0..nl) with weights drawn from seed. */
static sk_zoo_model *add_model(sk_zoo *z, const ldef *ls, int nl, uint64_t seed, double acc)
{
	sk_zoo_model *m;
	size_t off = 0;
	if (z->n == z->cap) {
		z->cap = z->cap ? 2 * z->cap : 8;
		z->m = realloc(z->m, sizeof *z->m * (size_t)z->cap);
	}
	m = &z->m[z->n++];
	memset(m, 0, sizeof *m);
	sk_attrs_init(&m->attrs);
	m->nlayers = nl;
	m->layers = calloc((size_t)nl, sizeof *m->layers);
	for (int l = 0; l < nl; l++) {
		sk_zoo_layer *L = &m->layers[l];
		snprintf(L->name, sizeof L->name, "l%d", l);
		L->conv = ls[l].conv, L->out = ls[l].out, L->in = ls[l].in, L->kh = L->kw = ls[l].k;
		L->w = off;
		off += (size_t)L->out * L->in * L->kh * L->kw;
		L->b = off;
		off += (size_t)L->out;
	}
	m->nflat = off;
	m->flat = sk_alloc_array(off, sizeof(float));
	sk_rng r = sk_rng_make(seed, 3);
	for (size_t i = 0; i < off; i++)
		m->flat[i] = 0.5f * sk_rng_next_normal(&r);
	sk_attrs_setf(&m->attrs, "test_acc", "%g", acc);
	sk_attrs_setf(&m->attrs, "run", "r%llu", (unsigned long long)seed);
	return m;
}

static sk_enc_config small(sk_enc_kind kind)
{
	sk_enc_config c;
	sk_enc_defaults(&c, kind);
	c.d = 8, c.chunk = 4, c.heads = 2, c.hidden = 8;
	return c;
}

/* 1 / rms of the weights (not biases) of the models of z: the scale of the tokens. */
static double weight_scale(const sk_zoo *z)
{
	double ss = 0, cnt = 0;
	for (int i = 0; i < z->n; i++)
		for (int l = 0; l < z->m[i].nlayers; l++) {
			const sk_zoo_layer *L = &z->m[i].layers[l];
			size_t nw = (size_t)L->out * L->in * L->kh * L->kw;
			for (size_t j = 0; j < nw; j++)
				ss += (double)z->m[i].flat[L->w + j] * z->m[i].flat[L->w + j];
			cnt += (double)nw;
		}
	return 1.0 / sqrt(ss / cnt);
}

/* Pad-chunk: a 5x5 conv read in elements of 9 values (3 per kernel), the
 * bias last in each row, chunks of 3 elements, the last padded. */
static void test_tokens(void)
{
	sk_zoo z;
	ldef conv5[] = {{1, 2, 3, 5}}, dense[] = {{0, 4, 5, 1}};
	int idx[2] = {0, 1}, nch = 0, ok, P = 9, F = 9 + 3 + 4, C = 3;
	sk_zoo_init(&z);
	add_model(&z, conv5, 1, 1, 0.5);
	add_model(&z, dense, 1, 2, 0.5);
	sk_enc_config c = small(SK_ENC_SNE);
	c.chunk = C, c.values = P;
	sk_encoder *e = sk_encoder_new(&c, &z, idx, 2, 1);
	double ws = weight_scale(&z);
	ok = e && sk_encoder_tokens(e, &z.m[0], 0, NULL, &nch) == 0;
	/* 2 rows of 3 kernels x 3 pieces + 1 bias = 20 elements: 7 chunks of 3 */
	tap_ok(ok && nch == 7, "a 2x3x5x5 conv in elements of 9 values: 7 chunks of 3 (got %d) %s", nch,
	       ok ? "" : sk_errmsg());
	float *x = calloc((size_t)7 * C * F, sizeof *x);
	const float *w = z.m[0].flat, *b = z.m[0].flat + z.m[0].layers[0].b;
	ok = ok && sk_encoder_tokens(e, &z.m[0], 0, x, &nch) == 0;
	/* element (o = 1, column 4): kernel W[1, 1], values 9..17 */
	const float *t = x + (size_t)(10 + 4) * F;
	double err = 0;
	for (int v = 0; v < 9; v++)
		err = fmax(err, fabs(t[v] - w[(1 * 3 + 1) * 25 + 9 + v] * ws));
	tap_ok(ok && err < 1e-5 * ws && t[P] == 1 && t[P + 1] == 0 && t[P + 2] == 0,
	       "element (1, 4) holds values 9..17 of kernel W[1,1], flagged a weight (error %.2g)", err);
	/* element (0, 2): the last 7 values of W[0, 0], then two zeros */
	t = x + (size_t)2 * F;
	err = 0;
	for (int v = 0; v < 7; v++)
		err = fmax(err, fabs(t[v] - w[18 + v] * ws));
	tap_ok(ok && err < 1e-5 * ws && t[7] == 0 && t[8] == 0, "the last piece of a kernel is zero-padded (error %.2g)",
	       err);
	/* element (0, 9): b[0]; element (1, 9): b[1] */
	t = x + (size_t)9 * F;
	const float *t2 = x + (size_t)19 * F;
	tap_ok(ok && fabs(t[0] - b[0] * ws) < 1e-5 * ws && t[P + 1] == 1 && t[P] == 0 && fabs(t2[0] - b[1] * ws) < 1e-5 * ws &&
	       t2[1] == 0, "the bias is the last element of each row, flagged a bias");
	/* element 20 (the third token of chunk 6): padding */
	t = x + (size_t)20 * F;
	tap_ok(ok && t[P + 2] == 1 && t[0] == 0 && t[P] == 0 && x[(size_t)19 * F + P + 2] == 0,
	       "the last chunk is filled with pad elements");
	/* every value of the layer appears once */
	double sum = 0, want = 0;
	for (int k = 0; k < 7 * C; k++)
		for (int v = 0; v < P; v++)
			sum += fabs(x[(size_t)k * F + v]);
	for (size_t i = 0; i < z.m[0].nflat; i++)
		want += fabs(z.m[0].flat[i]) * ws;
	tap_ok(ok && fabs(sum - want) < 1e-4 * want, "every weight and bias is in one token (%.6g of %.6g)", sum, want);
	/* the position of a token in its chunk: sin, cos of its index first */
	t = x + (size_t)(3 + 2) * F;
	tap_ok(ok && fabs(t[P + 3] - sin(2.0)) < 1e-6 && fabs(t[P + 4] - cos(2.0)) < 1e-6,
	       "a token carries its position in the chunk");
	/* a dense layer: one element per weight */
	ok = ok && sk_encoder_tokens(e, &z.m[1], 0, NULL, &nch) == 0;
	tap_ok(ok && nch == 8, "a dense 5 -> 4 layer: 4 rows of 6 elements, 8 chunks (got %d)", nch);
	sk_encoder_free(e);
	c.ablate = SK_SNE_NO_PE_ELEMENT;
	e = sk_encoder_new(&c, &z, idx, 2, 1);
	ok = e && sk_encoder_tokens(e, &z.m[0], 0, x, &nch) == 0;
	t = x + (size_t)(3 + 2) * F;
	tap_ok(ok && t[P + 3] == 0 && t[P + 4] == 0, "--ablate pe-element: no position in the tokens");
	sk_encoder_free(e);
	free(x);
	sk_zoo_free(&z);
}

/* One encoder reads any layer size: sized on dense models only (one value
 * per element), it encodes 3x3 and 5x5 convs; its gradient is right over a
 * batch mixing them. */
static void test_any_size(void)
{
	sk_zoo z;
	ldef dense[] = {{0, 6, 4, 1}, {0, 3, 6, 1}};
	ldef conv[] = {{1, 1, 1, 3}, {1, 2, 1, 5}, {0, 3, 2, 1}};
	int idx[4] = {0, 1, 2, 3};
	float codes[4 * 8];
	sk_zoo_init(&z);
	add_model(&z, dense, 2, 1, 0.2);
	add_model(&z, dense, 2, 2, 0.4);
	add_model(&z, conv, 3, 3, 0.6);
	add_model(&z, conv, 3, 4, 0.8);
	sk_enc_config c = small(SK_ENC_SNE);
	sk_encoder *e = sk_encoder_new(&c, &z, idx, 2, 1);
	int ok = e && sk_encoder_run(e, &z, idx, 4, codes, NULL) == 0;
	int finite = 1;
	for (int i = 0; ok && i < 4 * 8; i++)
		finite = finite && isfinite(codes[i]);
	tap_ok(ok && finite, "an encoder sized on dense layers encodes 3x3 and 5x5 convs %s", ok ? "" : sk_errmsg());
	sk_encoder_free(e);
	c.values = 4;   /* 3x3: 3 elements per kernel, 5x5: 7 */
	e = sk_encoder_new(&c, &z, idx + 2, 2, 2);
	double worst = 0;
	int bad = e ? sk_encoder_check_gradients(e, &z, idx + 2, 2, 5, 6, 2e-2, &worst) : -1;
	tap_ok(bad == 0, "gradient over a batch of kernels cut into several elements (%d off, worst rel err %.3g) %s",
	       bad, worst, bad < 0 ? sk_errmsg() : "");
	sk_encoder_free(e);
	sk_zoo_free(&z);
}

/* Max |code(a) - code(b)| of the models 0 and 1 of z, for an encoder with
 * the parts `ablate` off. */
static double code_gap(const sk_zoo *z, int ablate)
{
	int idx[2] = {0, 1};
	float codes[16];
	double d = -1;
	sk_enc_config c = small(SK_ENC_SNE);
	c.ablate = ablate;
	sk_encoder *e = sk_encoder_new(&c, z, idx, 2, 7);
	if (e && sk_encoder_run(e, z, idx, 2, codes, NULL) == 0) {
		d = 0;
		for (int i = 0; i < 8; i++)
			d = fmax(d, fabs(codes[i] - codes[8 + i]));
	}
	sk_encoder_free(e);
	return d;
}

/* Models 0 and 1 of z differ in `what` only: different codes, the same
 * without that part (bit). */
static void check_part(sk_zoo *z, int bit, const char *what, const char *part)
{
	double on = code_gap(z, 0), off = code_gap(z, bit);
	tap_ok(on > 1e-3 && off >= 0 && off < 1e-5, "%s changes the code (%.3g), not without %s (%.2g)", what, on, part,
	       off);
	sk_zoo_free(z);
}

/* The chunk index, the layer index and the layer type are seen: a model
 * and its copy that differs only in one of them get different codes, and
 * the same code when that part is switched off (the set blocks are
 * permutation invariant, so nothing else tells them apart). */
static void test_positions(void)
{
	sk_zoo z;
	ldef one[] = {{0, 3, 3, 1}}, two[] = {{0, 3, 3, 1}, {0, 3, 3, 1}}, conv1[] = {{1, 3, 3, 1}};
	sk_zoo_model *a, *b;
	/* chunks of 4 elements = one row (3 weights, the bias): swap rows 0 and 1 */
	sk_zoo_init(&z);
	add_model(&z, one, 1, 1, 0.5);
	b = add_model(&z, one, 1, 1, 0.5);
	for (int j = 0; j < 3; j++) {
		float t = b->flat[j];
		b->flat[j] = b->flat[3 + j], b->flat[3 + j] = t;
	}
	float tb = b->flat[9];
	b->flat[9] = b->flat[10], b->flat[10] = tb;
	check_part(&z, SK_SNE_NO_PE_CHUNK, "swapping two chunks of a layer", "the chunk index");
	/* two layers of one shape, swapped */
	sk_zoo_init(&z);
	a = add_model(&z, two, 2, 2, 0.5);
	b = add_model(&z, two, 2, 2, 0.5);
	memcpy(b->flat, a->flat + 12, 12 * sizeof(float));
	memcpy(b->flat + 12, a->flat, 12 * sizeof(float));
	check_part(&z, SK_SNE_NO_PE_LAYER, "swapping two layers of one shape", "the layer index");
	/* a 1x1 conv and a dense layer of the same values */
	sk_zoo_init(&z);
	add_model(&z, conv1, 1, 3, 0.5);
	add_model(&z, one, 1, 3, 0.5);
	check_part(&z, SK_SNE_NO_LAYER_TYPE, "a 1x1 conv in place of a dense layer of the same values", "the layer type");
	int bits = -1;
	tap_ok(sk_enc_parse_ablate("pe-chunk,layer-type", &bits) == 0 && bits == (SK_SNE_NO_PE_CHUNK | SK_SNE_NO_LAYER_TYPE) &&
	       sk_enc_parse_ablate("none", &bits) == 0 && bits == 0 && sk_enc_parse_ablate("pe-chunk,depth", &bits) < 0 &&
	       strstr(sk_errmsg(), "'depth'"), "--ablate lists; an unknown part is named");
}

/* A zoo of n dense chains 4 -> 6 -> 5 -> 3 (hidden units permutable). */
static void chain_zoo(sk_zoo *z, int n)
{
	ldef ls[] = {{0, 6, 4, 1}, {0, 5, 6, 1}, {0, 3, 5, 1}};
	sk_zoo_init(z);
	for (int i = 0; i < n; i++) {
		sk_zoo_model *m = add_model(z, ls, 3, (uint64_t)i + 11, 0);
		double s = 0;
		for (size_t j = 0; j < m->nflat; j++)
			s += m->flat[j] * m->flat[j];
		/* a target the weights tell: their mean square, squashed */
		sk_attrs_setf(&m->attrs, "test_acc", "%.6f", 1.0 / (1.0 + exp(-(s / (double)m->nflat - 0.25) * 8)));
	}
}

static double train_gap(const sk_zoo *z, const int *idx, int n, const double *target, float lambda)
{
	sk_enc_config c = small(SK_ENC_SNE);
	sk_enc_train t;
	double gap = -1;
	sk_encoder *e = sk_encoder_new(&c, z, idx, n, 3);
	sk_enc_train_defaults(&t);
	t.epochs = 40, t.batch = 4, t.lr = 3e-3f, t.lambda = lambda, t.seed = 4;
	if (!e || sk_encoder_train(e, z, idx, n, target, &t) < 0 || sk_encoder_inv_gap(e, z, idx, n, 99, &gap) < 0)
		gap = -1;
	sk_encoder_free(e);
	return gap;
}

/* The logit-invariance penalty pulls s(theta) and s(pi theta) together. */
static void test_penalty(void)
{
	sk_zoo z;
	int idx[12];
	double target[12];
	chain_zoo(&z, 12);
	for (int i = 0; i < 12; i++)
		idx[i] = i;
	sk_zoo_attr(&z, idx, 12, "test_acc", 0, 1, target);
	double g0 = train_gap(&z, idx, 12, target, 0), g1 = train_gap(&z, idx, 12, target, 10);
	tap_ok(g0 > 0 && g1 >= 0 && g1 < 0.5 * g0,
	       "mean |s(theta) - s(pi theta)| after training: %.4g without the penalty, %.4g with lambda 10", g0, g1);
	sk_zoo_free(&z);
}

/* The epoch kept is the best on the validation models, and the encoder
 * returned is the one of that epoch. */
static void test_validation(void)
{
	sk_zoo z;
	int tr[10], va[6], E = 8;
	double ttr[10], tva[6], curve[8], tau = NAN;
	chain_zoo(&z, 16);
	for (int i = 0; i < 10; i++)
		tr[i] = i;
	for (int i = 0; i < 6; i++)
		va[i] = 10 + i;
	sk_zoo_attr(&z, tr, 10, "test_acc", 0, 1, ttr);
	sk_zoo_attr(&z, va, 6, "test_acc", 0, 1, tva);
	sk_enc_config c = small(SK_ENC_STATNN);
	sk_enc_train t;
	sk_enc_val v = {.idx = va, .n = 6, .target = tva, .curve = curve};
	sk_enc_train_defaults(&t);
	t.epochs = E, t.batch = 3, t.lr = 1e-2f, t.seed = 5, t.val = &v;
	sk_encoder *e = sk_encoder_new(&c, &z, tr, 10, 2);
	int ok = e && sk_encoder_train(e, &z, tr, 10, ttr, &t) == 0;
	int arg = 0;
	for (int k = 1; ok && k < E; k++)
		if (!isnan(curve[k]) && (isnan(curve[arg]) || curve[k] > curve[arg]))
			arg = k;
	tap_ok(ok && v.best_epoch == arg + 1 && v.best_tau == curve[arg],
	       "the epoch kept (%d, tau %.4f) is the first best of the validation curve (%d) %s", v.best_epoch,
	       v.best_tau, arg + 1, ok ? "" : sk_errmsg());
	ok = ok && sk_encoder_tau(e, &z, va, 6, tva, &tau) == 0;
	tap_ok(ok && tau == v.best_tau, "the encoder returned has that tau on the validation models (%.4f)", tau);
	/* the same training stopped at that epoch, without validation: the same encoder */
	float s1[10], s2[10];
	sk_encoder *f = sk_encoder_new(&c, &z, tr, 10, 2);
	t.val = NULL, t.epochs = v.best_epoch;
	ok = ok && f && sk_encoder_train(f, &z, tr, 10, ttr, &t) == 0 && sk_encoder_run(e, &z, tr, 10, NULL, s1) == 0 &&
	     sk_encoder_run(f, &z, tr, 10, NULL, s2) == 0;
	tap_ok(ok && !memcmp(s1, s2, sizeof s1), "it is the encoder of that epoch, bit for bit (validation draws nothing)");
	sk_encoder_free(f);
	sk_encoder_free(e);
	/* validation targets all equal: tau is never defined, the last epoch is kept */
	double same[6] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
	v = (sk_enc_val){.idx = va, .n = 6, .target = same};
	t.val = &v, t.epochs = 3;
	e = sk_encoder_new(&c, &z, tr, 10, 2);
	ok = e && sk_encoder_train(e, &z, tr, 10, ttr, &t) == 0;
	tap_ok(ok && v.best_epoch == 3 && isnan(v.best_tau), "no defined tau: the last epoch is kept (%d)", v.best_epoch);
	sk_encoder_free(e);
	sk_zoo_free(&z);
}

static void set_hp(sk_zoo_model *m, double lr, double l2, const char *act, const char *opt, int epoch)
{
	sk_attrs_setf(&m->attrs, "learning_rate", "%g", lr);
	sk_attrs_setf(&m->attrs, "l2reg", "%g", l2);
	sk_attrs_set(&m->attrs, "activation", act);
	sk_attrs_set(&m->attrs, "optimizer", opt);
	sk_attrs_setf(&m->attrs, "epoch", "%d", epoch);
}

/* The hyperparameter regressor reads the attributes, not the weights. */
static void test_hparams(void)
{
	sk_zoo z;
	ldef ls[] = {{0, 3, 4, 1}};
	int idx[4] = {0, 1, 2, 3}, nf = 0;
	float f[32];
	sk_zoo_init(&z);
	set_hp(add_model(&z, ls, 1, 1, 0.2), 0.01, 1e-4, "relu", "sgd", 0);
	set_hp(add_model(&z, ls, 1, 2, 0.4), 0.001, 1e-3, "tanh", "adam", 3);
	set_hp(add_model(&z, ls, 1, 3, 0.6), 0.1, 1e-5, "relu", "adam", 18);
	set_hp(add_model(&z, ls, 1, 4, 0.8), 0.03, 1e-2, "tanh", "rmsprop", 7);
	sk_enc_config c = small(SK_ENC_HPARAMS);
	sk_encoder *e = sk_encoder_new(&c, &z, idx, 4, 1);
	/* learning_rate, l2reg, epoch; activation (relu, tanh); optimizer (adam, rmsprop, sgd) */
	int ok = e && sk_encoder_features(e, &z.m[2], f, &nf) == 0;
	tap_ok(ok && nf == 8 && fabs(f[0] - log(0.1)) < 1e-6 && fabs(f[1] - log(1e-5)) < 1e-5 &&
	       fabs(f[2] - log(19.0)) < 1e-6 && f[3] == 1 && f[4] == 0 && f[5] == 1 && f[6] == 0 && f[7] == 0,
	       "features: log lr, log l2, log(1 + epoch), activation and optimizer one-hot, sorted (%d) %s", nf,
	       ok ? "" : sk_errmsg());
	/* a value the zoo did not have: all zero; a missing attribute: an error naming it */
	sk_zoo_model *m = add_model(&z, ls, 1, 5, 0.5);
	set_hp(m, 0.01, 1e-4, "relu", "lbfgs", 1);
	ok = e && sk_encoder_features(e, m, f, &nf) == 0;
	tap_ok(ok && f[5] == 0 && f[6] == 0 && f[7] == 0, "an optimizer the zoo did not have: all zero");
	m = add_model(&z, ls, 1, 6, 0.5);
	set_hp(m, 0.01, 1e-4, "relu", "sgd", 1);
	sk_attrs_set(&m->attrs, "learning_rate", "fast");
	ok = e && sk_encoder_features(e, m, f, &nf) < 0 && strstr(sk_errmsg(), "learning_rate");
	tap_ok(ok, "a hyperparameter that is not a number is an error: %s", sk_errmsg());
	/* the weights do not matter; the penalty is zero */
	double gap = -1;
	int all[2] = {0, 1};
	ok = e && sk_encoder_inv_gap(e, &z, all, 2, 3, &gap) == 0;
	tap_ok(ok && gap >= 0 && gap < 1e-6, "its logit-invariance gap is zero (%g)", gap);
	/* written and read back: the same predictions */
	char path[] = "/tmp/test-sne-XXXXXX";
	int fd = mkstemp(path);
	FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
	float s1[4], s2[4];
	sk_encoder *g = NULL;
	ok = e && fp && sk_encoder_write(fp, e, NULL, 0) == 0;
	ok = fp && fclose(fp) == 0 && ok;
	ok = ok && (g = sk_encoder_load(path, NULL)) && sk_encoder_run(e, &z, idx, 4, NULL, s1) == 0 &&
	     sk_encoder_run(g, &z, idx, 4, NULL, s2) == 0;
	tap_ok(ok && !memcmp(s1, s2, sizeof s1), "written and read back, it predicts the same %s", ok ? "" : sk_errmsg());
	if (fd >= 0)
		unlink(path);
	sk_encoder_free(g);
	sk_encoder_free(e);
	/* a zoo where some models record a hyperparameter and others not */
	int three[3] = {0, 1, 4};
	sk_zoo_model *n4 = &z.m[4];
	sk_attrs_free(&n4->attrs);
	sk_attrs_init(&n4->attrs);
	sk_attrs_set(&n4->attrs, "activation", "relu");
	e = sk_encoder_new(&c, &z, three, 3, 1);
	tap_ok(!e && strstr(sk_errmsg(), "lack attribute"), "some models without a hyperparameter: %s", sk_errmsg());
	sk_encoder_free(e);
	sk_zoo_free(&z);
	/* none at all */
	sk_zoo_init(&z);
	add_model(&z, ls, 1, 1, 0.2);
	e = sk_encoder_new(&c, &z, idx, 1, 1);
	tap_ok(!e && strstr(sk_errmsg(), "none of the hyperparameters"), "a zoo without hyperparameters: %s",
	       sk_errmsg());
	sk_encoder_free(e);
	sk_zoo_free(&z);
}

int main(void)
{
	test_tokens();
	test_any_size();
	test_positions();
	test_penalty();
	test_validation();
	test_hparams();
	return tap_done();
}
