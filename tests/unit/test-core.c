/* test-core.c: base (tensors, sizes), rng, the spec parser, layer sequences. */
#include "gradcheck.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
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

/* Several arrays in one block: each aligned, zeroed and apart from the
 * others; a part of no elements is NULL; an overflowing size is refused and
 * leaves the pointers alone. */
static void test_parts(void)
{
	float dummy, *a = NULL, *none = &dummy;
	double *b = NULL;
	int32_t *c = NULL;
	sk_part parts[] = {SK_PART(a, 3), SK_PART(none, 0), SK_PART(b, 100), SK_PART(c, 17)};
	void *mem = sk_alloc_parts(4, parts);
	int zero = 1;
	for (int i = 0; mem && i < 100; i++)
		zero = zero && b[i] == 0 && (i >= 17 || c[i] == 0) && (i >= 3 || a[i] == 0);
	tap_ok(mem && a && b && c && !none && zero, "one block of parts, zeroed, an empty part NULL");
	tap_ok(mem && (uintptr_t)a % 64 == 0 && (uintptr_t)b % 64 == 0 && (uintptr_t)c % 64 == 0 &&
	           (char *)b >= (char *)(a + 3) && (char *)c >= (char *)(b + 100),
	       "parts 64-byte aligned, one after the other");
	if (mem) {
		a[2] = 1;   /* the last element of each part is its own */
		b[99] = 2;
		c[16] = 3;
		tap_ok(a[2] == 1 && b[0] == 0 && b[99] == 2 && c[0] == 0 && c[16] == 3, "parts do not overlap");
	}
	sk_free(mem);
	float *x = NULL, *y = NULL;
	sk_part big[] = {SK_PART(x, 16), SK_PART(y, SIZE_MAX / 2)};
	tap_ok(!sk_alloc_parts(2, big) && !x && !y && strstr(sk_errmsg(), "overflow"),
	       "an overflowing part refused, pointers untouched: %s", sk_errmsg());
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

/* ---- the gradient check must fail on broken layers ----
 * A `linear` layer whose ops are wrapped to break one rule of the layer
 * contract (sk_layer.h) at a time; gc_check() must report each. */

enum {
	M_NONE, M_DW_SCALE, M_DX_SCALE, M_DB_MISSING, M_DW_OVERWRITE, M_DX_ACCUMULATE, M_DX_PARTIAL, M_FWD_MAXBATCH,
	M_BWD_MAXBATCH, M_NODX, M_COUNT
};
static const char *const mutation_names[] = {
	"unchanged", "dW scaled by 1.01", "dx scaled by 1.01", "db missing the last example",
	"dW overwritten instead of accumulated", "dx accumulated instead of overwritten", "dx with one value unwritten",
	"forward over max_batch examples", "backward over max_batch examples",
	"db missing the last example when dx is NULL",
};
static int mutation;
static const sk_layer_ops *orig_ops;
static sk_layer_ops broken_ops;

static int broken_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	return orig_ops->forward(l, c, mutation == M_FWD_MAXBATCH ? l->max_batch : n, x, y);
}

static int broken_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                           float *dx)
{
	sk_param *w = &l->params[0], *b = &l->params[1];
	size_t nin = sk_shape_size(l->in) * (size_t)n, nout = sk_shape_size(l->out);
	float *g0 = malloc(w->size * sizeof(float)), *tmp = malloc(nin * sizeof(float));
	int rc;
	memcpy(g0, w->g, w->size * sizeof(float));
	if (mutation == M_DW_OVERWRITE)
		memset(w->g, 0, w->size * sizeof(float));
	if (mutation == M_DX_ACCUMULATE || mutation == M_DX_PARTIAL)
		rc = orig_ops->backward(l, c, n, x, y, dy, dx ? tmp : NULL);
	else
		rc = orig_ops->backward(l, c, mutation == M_BWD_MAXBATCH ? l->max_batch : n, x, y, dy, dx);
	if (mutation == M_DW_SCALE)
		for (size_t i = 0; i < w->size; i++)
			w->g[i] = g0[i] + 1.01f * (w->g[i] - g0[i]);
	if (mutation == M_DX_SCALE && dx)
		for (size_t i = 0; i < nin; i++)
			dx[i] *= 1.01f;
	if (mutation == M_DB_MISSING || (mutation == M_NODX && !dx))
		for (size_t j = 0; j < nout; j++)
			b->g[j] -= dy[(size_t)(n - 1) * nout + j];
	if (mutation == M_DX_ACCUMULATE && dx)
		for (size_t i = 0; i < nin; i++)
			dx[i] += tmp[i];
	if (mutation == M_DX_PARTIAL && dx)
		memcpy(dx, tmp, (nin - 1) * sizeof(float));
	free(g0);
	free(tmp);
	return rc;
}

static void break_linear(sk_seq *q)
{
	for (int i = 0; i < q->n; i++)
		if (!strcmp(q->layers[i]->ops->type, "linear")) {
			orig_ops = q->layers[i]->ops;
			broken_ops = *orig_ops;
			broken_ops.forward = broken_forward;
			broken_ops.backward = broken_backward;
			q->layers[i]->ops = &broken_ops;
		}
}

static void test_gradcheck_fails(void)
{
	gc_opts o = {0};
	o.n = 3;
	o.tweak = break_linear;
	for (mutation = 0; mutation < M_COUNT; mutation++) {
		if (mutation)
			tap_quiet(1);
		int fails = gc_check("linear 5\ntanh", sk_shape1(6), &o);
		tap_quiet(0);
		if (mutation)
			tap_ok(fails > 0, "the gradient check fails a linear layer with %s", mutation_names[mutation]);
		else
			tap_ok(fails == 0, "the gradient check passes a linear layer through the wrapper");
	}
}

int main(void)
{
	test_shapes();
	test_parts();
	test_rng();
	test_spec();
	gc_check("relu", sk_shape3(2, 4, 4), NULL);
	gc_opts o = {0};
	o.n = 3;
	gc_check("relu leaky=0.2\nrelu", sk_shape1(10), &o);
	test_gradcheck_fails();
	return tap_done();
}
