/* test-zoo.c: the set layers (gradient checks), encoders, zoo metrics and the
 * logit-invariance permutation. */
#include "gradcheck.h"
#include "sk_sne.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_gradients(void)
{
	gc_opts o = {3, 5, 1e-3, 2e-2, 60, 0};
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

int main(void)
{
	test_gradients();
	test_invariance();
	return tap_done();
}
