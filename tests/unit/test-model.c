/* test-model.c: models from spec text, model streams written and read back,
 * the checks on loading (names, shapes, counts), copying parameters by name,
 * augmentation, and data-parallel replicas (the same output as one thread). */
#include "sk_model.h"
#include "sk_rng.h"
#include "sk_train.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *spec = "# a small net\n"
                          "input 1 8 8 scale=0.5\n"
                          "conv 4 k=3 pad=1\n"
                          "relu\n"
                          "pool max k=2\n"
                          "flatten\n"
                          "linear 3 name=head\n";

/* Write a model (plus `extra` raw records given as names) into a temp file. */
static char *write_tmp(sk_model *m, int nextra, const char *const *extra)
{
	static char path[64];
	int64_t one = 2;
	float v[2] = {1, 2};
	strcpy(path, "/tmp/sk-test-model.XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f)
		return NULL;
	sk_model_write(f, m, nextra);
	for (int i = 0; i < nextra; i++)
		sk_write_record_raw(f, extra[i], SK_F32, 1, &one, v, NULL, 0);
	fclose(f);
	return path;
}

static void test_text(void)
{
	sk_model *m = sk_model_from_text(spec, "t.spec");
	tap_ok(m && m->in.n == 3 && m->in.d[0] == 1 && m->in.d[1] == 8 && m->nclasses == 3,
	       "a spec with a comment line builds: input 1x8x8, 3 classes");
	tap_ok(m && sk_model_param_count(m) == 4 * 9 + 4 + 64 * 3 + 3, "parameter count %zu",
	       m ? sk_model_param_count(m) : 0);
	tap_ok(m && sk_model_flops(m) > 2 * 64 * 36, "flops %.0f", m ? sk_model_flops(m) : 0);
	tap_ok(m && sk_seq_find(m->seq, "head") && sk_seq_find(m->seq, "conv2"), "layers named by type+index or name=");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sk_model_report(m, f);
	fclose(f);
	tap_ok(strstr(buf, "conv2") && strstr(buf, "4x8x8") && strstr(buf, "total"), "the report lists layers");
	free(buf);
	sk_model_free(m);

	m = sk_model_from_text("conv 4 k=3\n", "t.spec");
	int e = !m && strstr(sk_errmsg(), "t.spec:1:1: the first layer must be 'input'");
	tap_ok(e, "no input line: %s", sk_errmsg());
	m = sk_model_from_text("input 1 8 8\nconv 4 k=3 padd=1\n", "t.spec");
	e = !m && strstr(sk_errmsg(), "t.spec:2:12") && strstr(sk_errmsg(), "padd");
	tap_ok(e, "unknown option named with line:col: %s", sk_errmsg());
	m = sk_model_from_text("input 1 0 8\nlinear 3\n", "t.spec");
	e = !m && strstr(sk_errmsg(), "t.spec:1:");
	tap_ok(e, "empty input dimension refused: %s", sk_errmsg());
}

static void test_roundtrip(void)
{
	sk_model *a = sk_model_from_text(spec, "t.spec"), *b;
	sk_model_init(a, 7);
	sk_attrs_set(&a->attrs, "seed", "7");
	const char *const extra[] = {"opt.conv2.w.m", "train_state"};
	char *path = write_tmp(a, 2, extra);
	b = sk_model_load(path);
	int same = b != NULL;
	sk_param **pa, **pb;
	int na = sk_model_params(a, &pa), nb = b ? sk_model_params(b, &pb) : 0;
	same = same && na == nb;
	for (int i = 0; same && i < na; i++)
		same = !strcmp(pa[i]->name, pb[i]->name) && !memcmp(pa[i]->w, pb[i]->w, pa[i]->size * sizeof(float));
	tap_ok(same, "written and read back: %d tensors bitwise equal, state records skipped", na);
	tap_ok(b && !strcmp(b->spec_text, spec) && sk_attrs_get(&b->attrs, "seed") &&
	       !strcmp(sk_attrs_get(&b->attrs, "seed"), "7") && !strcmp(sk_attrs_get(&b->attrs, "records"), "6"),
	       "spec text and attributes kept; records = 4 parameters + 2 state");
	/* copy by name */
	sk_model *c = sk_model_from_text(spec, "t.spec");
	int n = sk_model_copy_params(c, b, "conv2");
	tap_ok(n == 2 && !memcmp(c->seq->layers[1]->params[0].w, pa[0]->w, sizeof(float) * 36),
	       "copy_params restricted to conv2: %d tensors", n);
	n = sk_model_copy_params(c, b, NULL);
	tap_ok(n == 4, "copy_params of all: %d tensors", n);
	sk_model *d = sk_model_from_text("input 1 8 8\nconv 5 k=3 pad=1\n", "d.spec");
	n = sk_model_copy_params(d, b, NULL);
	int e = n < 0 && strstr(sk_errmsg(), "conv2.w");
	tap_ok(e, "a shape mismatch is named: %s", sk_errmsg());
	unlink(path);
	free(pa);
	free(pb);
	sk_model_free(b);
	sk_model_free(c);
	sk_model_free(d);

	/* an unknown record, a missing parameter, a wrong shape */
	const char *const bogus[] = {"conv9.w"};
	path = write_tmp(a, 1, bogus);
	b = sk_model_load(path);
	e = !b && strstr(sk_errmsg(), "'conv9.w' is not a parameter of this model");
	tap_ok(e, "an unknown record is named: %s", sk_errmsg());
	unlink(path);
	{
		/* declare one record more than written: the stream ends early */
		char p2[] = "/tmp/sk-test-model2.XXXXXX";
		int fd = mkstemp(p2);
		FILE *f = fdopen(fd, "wb");
		sk_model_write(f, a, 1);
		fclose(f);
		b = sk_model_load(p2);
		e = !b && strstr(sk_errmsg(), "ends after 4 of its 5 records");
		tap_ok(e, "a short model is refused: %s", sk_errmsg());
		unlink(p2);
	}
	{
		/* the same spec with a wider head: parameters of another shape */
		sk_model *w = sk_model_from_text("input 1 8 8 scale=0.5\nconv 4 k=3 pad=1\nrelu\npool max k=2\nflatten\n"
		                                 "linear 3 name=head\n",
		                                 "w.spec");
		char p3[] = "/tmp/sk-test-model3.XXXXXX";
		int fd = mkstemp(p3);
		FILE *f = fdopen(fd, "wb");
		/* write a's records under w's spec text with a mismatching head: swap the text */
		free(w->spec_text);
		w->spec_text = strdup("input 1 8 8 scale=0.5\nconv 4 k=3 pad=1\nrelu\npool max k=2\nflatten\nlinear 4 name=head\n");
		sk_model_write(f, w, 0);
		fclose(f);
		b = sk_model_load(p3);
		e = !b && strstr(sk_errmsg(), "head.w") && strstr(sk_errmsg(), "3x64");
		tap_ok(e, "a parameter of the wrong shape is named: %s", sk_errmsg());
		unlink(p3);
		sk_model_free(w);
	}
	/* a spec file is accepted where a model is */
	{
		char p4[] = "/tmp/sk-test-model4.XXXXXX";
		int fd = mkstemp(p4);
		FILE *f = fdopen(fd, "w");
		fputs(spec, f);
		fclose(f);
		b = sk_model_load(p4);
		tap_ok(b && b->nclasses == 3 && !sk_attrs_get(&b->attrs, "records"), "a spec file loads as a model");
		sk_model_free(b);
		unlink(p4);
	}
	sk_model_free(a);
}

static void test_augment(void)
{
	float x[2 * 4 * 4], y[2 * 4 * 4], tmp[2 * 4 * 4];
	for (int i = 0; i < 32; i++)
		x[i] = (float)(i + 1);
	memcpy(y, x, sizeof x);
	sk_augment(y, 2, 4, 4, 0, 0, 1, 0, 0, tmp);
	tap_ok(!memcmp(x, y, sizeof x), "no augmentation leaves the image as it is");
	int flipped = 0, shifted = 0, again = 1;
	for (int ex = 0; ex < 64; ex++) {
		float z[32];
		memcpy(y, x, sizeof x);
		sk_augment(y, 2, 4, 4, 0, 1, 3, 1, ex, tmp);
		if (y[0] == x[3] && y[3] == x[0] && y[16] == x[19])
			flipped++;
		memcpy(z, x, sizeof x);
		sk_augment(z, 2, 4, 4, 0, 1, 3, 1, ex, tmp);
		again &= !memcmp(y, z, sizeof z);
		memcpy(y, x, sizeof x);
		sk_augment(y, 2, 4, 4, 1, 0, 3, 1, ex, tmp);
		float s = 0;
		for (int i = 0; i < 32; i++)
			s += y[i];
		if (s < 528)   /* sum 1..32: a shift drops a row or column */
			shifted++;
	}
	tap_ok(flipped > 16 && flipped < 48, "flip: about half of 64 examples flipped (%d)", flipped);
	tap_ok(shifted > 32, "crop 1: most examples shifted (%d of 64)", shifted);
	tap_ok(again, "the same (seed, epoch, example) gives the same result");
}

static void test_team(void)
{
	sk_model *m = sk_model_from_text(spec, "t.spec");
	sk_model_init(m, 3);
	float x[10 * 64], o1[10 * 3], o2[10 * 3], f1[10 * 64 * 4 / 4];
	for (int i = 0; i < 10 * 64; i++)
		x[i] = sk_rng_uniform(1, 2, (uint64_t)i) * 255.0f;
	sk_team *t1 = sk_team_new(m, 1, 10);
	int ok = t1 && sk_team_forward(t1, 10, x, NULL, o1) == 0;
	sk_team_free(t1);
	sk_team *t3 = sk_team_new(m, 3, 10);
	ok = ok && t3 && sk_team_forward(t3, 10, x, NULL, o2) == 0;
	double worst = 0;
	for (int i = 0; i < 30; i++)
		worst = fmax(worst, fabs((double)o1[i] - o2[i]) / fmax(1.0, fabs((double)o1[i])));
	/* equal up to rounding: GEMM kernels may sum in another order for another batch size */
	tap_ok(ok && worst < 1e-5, "3 replicas give the outputs of 1 (largest relative difference %.2g)", worst);
	tap_ok(t3 && sk_team_layer_size(t3, "pool4") == 64 && sk_team_forward(t3, 10, x, "pool4", f1) == 0,
	       "features of a named layer");
	tap_ok(t3 && sk_team_forward(t3, 11, x, NULL, o2) < 0, "a batch over the prepared size is refused: %s",
	       sk_errmsg());
	sk_team_free(t3);
	sk_model_free(m);
}

int main(void)
{
	test_text();
	test_roundtrip();
	test_augment();
	test_team();
	return tap_done();
}
