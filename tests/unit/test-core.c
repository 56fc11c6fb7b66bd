/* test-core.c: base (tensors, sizes), rng, the spec parser, layer sequences. */
#include "gradcheck.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <string.h>

static void test_shapes(void)
{
	int64_t ok[] = {2, 3, 4}, neg[] = {2, -1}, huge[] = {1LL << 31, 1LL << 31, 16};
	int64_t over[] = {SK_MAX_EXTENT + 1};
	size_t count, bytes;
	tap_ok(sk_shape_check(SK_F32, 3, ok, &count, &bytes) == 0 && count == 24 && bytes == 96, "shape 2x3x4 f32");
	int r = sk_shape_check(SK_F32, 2, neg, NULL, NULL);
	tap_ok(r < 0, "negative dimension refused: %s", sk_errmsg());
	tap_ok(sk_shape_check(SK_U8, 3, huge, NULL, NULL) < 0, "overflowing product refused: %s", sk_errmsg());
	tap_ok(sk_shape_check(SK_U8, 1, over, NULL, NULL) < 0, "oversized extent refused: %s", sk_errmsg());
	tap_ok(sk_shape_check(SK_U8, SK_MAXDIM + 1, ok, NULL, NULL) < 0, "too many dimensions refused");
	sk_tensor t, v;
	tap_ok(sk_tensor_init(&t, SK_I32, 3, ok) == 0 && sk_tensor_count(&t) == 24, "tensor alloc");
	for (int i = 0; i < 24; i++)
		((int32_t *)t.data)[i] = i;
	tap_ok(sk_tensor_slice(&t, 1, 2, &v) == 0 && ((int32_t *)v.data)[0] == 12 && v.shape[0] == 1, "slice view");
	tap_ok(sk_tensor_slice(&t, 1, 3, &v) < 0, "slice out of range refused");
	sk_tensor_free(&t);
	size_t s;
	tap_ok(sk_mul_size(SIZE_MAX / 2, 3, &s) < 0, "size overflow detected");
}

static void test_rng(void)
{
	uint64_t a = sk_rng_u64(1, 2, 3), b = sk_rng_u64(1, 2, 3), c = sk_rng_u64(1, 2, 4), d = sk_rng_u64(2, 2, 3);
	tap_ok(a == b && a != c && a != d, "rng is a pure function of (seed, stream, index)");
	double m = 0, v = 0;
	int n = 100000;
	for (int i = 0; i < n; i++) {
		double x = sk_rng_normal(7, 1, (uint64_t)i);
		m += x;
		v += x * x;
	}
	m /= n;
	v = v / n - m * m;
	tap_ok(fabs(m) < 0.02 && fabs(v - 1) < 0.03, "normal draws: mean %.4f var %.4f", m, v);
	int64_t perm[100], seen[100] = {0};
	sk_rng r = sk_rng_make(3, 4);
	sk_rng_permute(&r, perm, 100);
	int okp = 1;
	for (int i = 0; i < 100; i++)
		if (perm[i] < 0 || perm[i] >= 100 || seen[perm[i]]++)
			okp = 0;
	tap_ok(okp, "permutation is a permutation");
}

static void test_spec(void)
{
	sk_spec *s = sk_spec_parse("# comment\nrelu leaky=0.1  # trailing\n\nrelu\n", "t.spec");
	tap_ok(s && s->n == 2 && !strcmp(s->lines[0].type, "relu") && s->lines[0].nkv == 1, "spec parses");
	sk_seq *q = s ? sk_seq_build(s, sk_shape3(2, 3, 3), "") : NULL;
	tap_ok(q && q->n == 2 && !strcmp(q->layers[1]->name, "relu2"), "sequence builds with default names");
	sk_seq_free(q);
	sk_spec_free(s);
	s = sk_spec_parse("relu bogus=1\n", "t.spec");
	q = s ? sk_seq_build(s, sk_shape1(4), "") : NULL;
	tap_ok(!q && strstr(sk_errmsg(), "t.spec:1:6") && strstr(sk_errmsg(), "unknown option 'bogus'"),
	       "unknown option named with line and column: %s", sk_errmsg());
	sk_spec_free(s);
	s = sk_spec_parse("nosuch 3\n", "t.spec");
	q = s ? sk_seq_build(s, sk_shape1(4), "") : NULL;
	tap_ok(!q && strstr(sk_errmsg(), "t.spec:1:1") && strstr(sk_errmsg(), "unknown layer type 'nosuch'"),
	       "unknown layer named: %s", sk_errmsg());
	sk_spec_free(s);
	s = sk_spec_parse("relu {\nrelu\n", "t.spec");
	tap_ok(!s && strstr(sk_errmsg(), "never closed"), "unclosed block: %s", sk_errmsg());
	s = sk_spec_parse("}\n", "t.spec");
	tap_ok(!s && strstr(sk_errmsg(), "without an open block"), "stray brace: %s", sk_errmsg());
	s = sk_spec_parse("relu leaky=\n", "t.spec");
	tap_ok(!s && strstr(sk_errmsg(), "t.spec:1:6"), "malformed option: %s", sk_errmsg());
	s = sk_spec_parse("relu leaky=1 leaky=2\n", "t.spec");
	tap_ok(!s && strstr(sk_errmsg(), "given twice"), "duplicate option: %s", sk_errmsg());
	s = sk_spec_parse("\n# nothing\n", "t.spec");
	tap_ok(!s && strstr(sk_errmsg(), "no layers"), "empty spec: %s", sk_errmsg());
	s = sk_spec_parse("relu {\n relu\n}\n", "t.spec");
	q = s ? sk_seq_build(s, sk_shape1(4), "") : NULL;
	tap_ok(!q && strstr(sk_errmsg(), "takes no '{' block"), "block on a plain layer: %s", sk_errmsg());
	sk_spec_free(s);
}

int main(void)
{
	test_shapes();
	test_rng();
	test_spec();
	gc_check("relu", sk_shape3(2, 4, 4), NULL);
	gc_opts o = {0};
	o.n = 3;
	gc_check("relu leaky=0.2\nrelu", sk_shape1(10), &o);
	return tap_done();
}
