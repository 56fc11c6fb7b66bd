/* test-cpu.c: the CPU-feature dispatcher (sk_cpu.h) and the thread pool
 * (sk_pool.h).  One level moves every kernel family at once and the
 * portable path computes what the SIMD ones do; a job's shares run once
 * each, on their own workers, with denormals flushed; errors, idle workers
 * and nested pools. */
#include "sk_cpu.h"
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_pool.h"
#include "sk_rng.h"
#include "sk_stream.h"
#include "tap.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

static void test_levels(void)
{
	int best = sk_cpu_best(), start = sk_cpu_isa();
	tap_diag("best level %s, in use %s", sk_cpu_isa_name(best), sk_cpu_path());
	tap_ok(best >= SK_ISA_PORTABLE && best <= SK_ISA_AVX512 && start <= best, "the level in use is at most the CPU's");
	tap_ok(!strcmp(sk_cpu_isa_name(0), "portable") && !strcmp(sk_cpu_isa_name(1), "avx2") &&
	       !strcmp(sk_cpu_isa_name(2), "avx512") && !strcmp(sk_cpu_isa_name(3), "unknown") &&
	       !strcmp(sk_cpu_isa_name(-1), "unknown"),
	       "level names");
	tap_ok(!strcmp(sk_cpu_path(), sk_cpu_isa_name(start)), "sk_cpu_path names the level in use");
	tap_ok(sk_cpu_env_check() == 0, "SK_ISA of the test environment is valid");
	tap_ok(sk_cpu_set_isa(-1) < 0 && sk_cpu_set_isa(best + 1) < 0 && strstr(sk_errmsg(), "not supported") &&
	       sk_cpu_isa() == start,
	       "a level the CPU lacks is refused and changes nothing: %s", sk_errmsg());

	/* the CRC follows the same cap */
	enum { N = 1 << 18 };
	unsigned char *buf = malloc(N);
	for (int i = 0; i < N; i++)
		buf[i] = (unsigned char)(sk_rng_u64(9, 1, (uint64_t)i) >> 11);
	sk_cpu_set_isa(best);
	uint32_t fast = sk_crc32(0, buf + 1, N - 1);
	int acc = sk_crc32_accelerated();
	tap_ok(sk_cpu_set_isa(SK_ISA_PORTABLE) == 0 && sk_cpu_isa() == SK_ISA_PORTABLE &&
	       !strcmp(sk_cpu_path(), "portable") && !sk_crc32_accelerated(),
	       "the portable level turns the carry-less-multiply CRC off (it was %s)", acc ? "on" : "off");
	tap_ok(sk_crc32(0, buf + 1, N - 1) == fast && sk_crc32(0, "123456789", 9) == 0xcbf43926u,
	       "the portable CRC equals the accelerated one");
	free(buf);
	sk_cpu_set_isa(start);
}

/* Every kernel family under one network: im2col and direct convolutions,
 * Winograd, batch norm, ReLU, max pooling, the similarity and MEX layers,
 * tanh, the linear layer. */
static const char *NET = "input 3 12 12\n"
                         "conv 16 k=3 pad=1 algo=winograd wtile=2\n"
                         "bn\n"
                         "relu\n"
                         "conv 16 k=3 pad=1 algo=winograd wtile=4\n"
                         "relu\n"
                         "conv 8 k=3 pad=1 algo=direct\n"
                         "pool max k=2\n"
                         "conv 8 k=3 algo=gemm\n"
                         "tanh\n"
                         "sim l1 6 k=3 pad=1\n"
                         "mex k=2 xi=0.3\n"
                         "flatten\n"
                         "linear 5\n";

/* The output and the input gradient at level isa (a fresh network, the
 * same weights); -1 when it does not build. */
static int run_net(int isa, int n, const float *x, const float *dy, float *y, float *dx, size_t ny)
{
	sk_spec *sp = sk_spec_parse(NET, "<test>");
	sk_seq *q = NULL;
	sk_ctx c = {0};
	int rc = -1;
	c.train = 1;
	c.update_buffers = 1;
	if (sk_cpu_set_isa(isa) < 0 || !sp || !(q = sk_seq_build(sp, sk_shape3(3, 12, 12), "")) ||
	    sk_seq_setup(q, n) < 0 || sk_seq_init(q, 7) < 0)
		goto out;
	const float *o = sk_seq_forward(q, &c, n, x);
	if (!o || sk_seq_backward(q, &c, n, x, dy, dx) < 0)
		goto out;
	memcpy(y, o, ny * sizeof *y);
	rc = 0;
out:
	sk_seq_free(q);
	sk_spec_free(sp);
	return rc;
}

static double maxrel(const float *a, const float *b, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++)
		e = fmax(e, fabs((double)a[i] - b[i]) / (1 + fabs((double)b[i])));
	return e;
}

static void test_paths(void)
{
	enum { n = 5 };
	const size_t nx = (size_t)n * 3 * 12 * 12, ny = (size_t)n * 5;
	int best = sk_cpu_best(), start = sk_cpu_isa();
	float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
	float *y[3], *dx[3];
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)sk_rng_normal(3, 4, i);
	for (size_t i = 0; i < ny; i++)
		dy[i] = (float)sk_rng_normal(5, 6, i);
	for (int isa = 0; isa <= best; isa++) {
		y[isa] = calloc(ny, sizeof *y[isa]);
		dx[isa] = calloc(nx, sizeof *dx[isa]);
		tap_ok(run_net(isa, n, x, dy, y[isa], dx[isa], ny) == 0, "network on the %s path: %s",
		       sk_cpu_isa_name(isa), sk_cpu_isa() == isa ? "built and ran" : sk_errmsg());
	}
	for (int isa = 1; isa <= best; isa++) {
		double ey = maxrel(y[isa], y[0], ny), ed = maxrel(dx[isa], dx[0], nx);
		tap_ok(ey < 1e-4 && ed < 1e-4, "%s and portable agree: output %.2g, input gradient %.2g",
		       sk_cpu_isa_name(isa), ey, ed);
	}
	for (int isa = 0; isa <= best; isa++) {
		free(y[isa]);
		free(dx[isa]);
	}
	free(x);
	free(dy);
	sk_cpu_set_isa(start);
}

/* The dropout kernel: every level gives the same bits (the draws are
 * integer arithmetic, the product one rounding) for lengths around the
 * vector widths, offsets into the counter and thresholds at the ends; a
 * value is +0 or x * keep; the dropped share is near thresh / 65536. */
static void test_dropout(void)
{
	int best = sk_cpu_best(), start = sk_cpu_isa();
	enum { N = 1000 };
	static const size_t lens[] = {0, 1, 3, 4, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 999, 1000};
	static const uint32_t th[] = {0, 1, 16384, 32768, 65535};
	float *x = malloc(N * sizeof *x), *y0 = malloc(N * sizeof *y0), *y = malloc(N * sizeof *y);
	for (int i = 0; i < N; i++)
		x[i] = (float)((double)(sk_rng_u64(3, 4, (uint64_t)i) >> 40) / 16777216.0 - 0.5);
	x[7] = NAN;
	for (int isa = 1; isa <= best; isa++) {
		int same = 1, cases = 0;
		for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
			for (size_t ti = 0; ti < sizeof th / sizeof *th; ti++)
				for (uint64_t base = 0; base < 3; base++) {
					uint64_t key = sk_rng_u64(5, base, li * 8 + ti);
					float keep = (float)(65536.0 / (65536.0 - th[ti]));
					sk_cpu_set_isa(SK_ISA_PORTABLE);
					memset(y0, 0xa5, N * sizeof *y0);
					sk_vdropout(lens[li], key, base * 250 + 1, th[ti], keep, x, y0);
					sk_cpu_set_isa(isa);
					memset(y, 0xa5, N * sizeof *y);
					sk_vdropout(lens[li], key, base * 250 + 1, th[ti], keep, x, y);
					same &= !memcmp(y0, y, N * sizeof *y);
					cases++;
				}
		tap_ok(same, "dropout: %s gives the portable bits in %d cases (lengths 0..1000, pads untouched)",
		       sk_cpu_isa_name(isa), cases);
	}
	sk_cpu_set_isa(start);
	/* the portable path: values are +0 or x * keep, the share dropped
	 * follows the threshold, and a value's fate depends on its index only */
	size_t dropped = 0, bad = 0;
	const uint32_t t = 19661; /* p = 0.3 */
	const float keep = (float)(65536.0 / (65536.0 - t));
	for (uint64_t base = 0; base < 50; base++) {
		sk_vdropout(N, 77, base * N / 4, t, keep, x, y);
		for (int i = 0; i < N; i++) {
			uint32_t u;
			memcpy(&u, &y[i], sizeof u);
			if (u == 0)
				dropped++;
			else if (!(y[i] == x[i] * keep) && i != 7)
				bad++;
		}
	}
	sk_vdropout(N - 8, 77, 2, t, keep, x + 8, y0);
	sk_vdropout(N, 77, 0, t, keep, x, y);
	double share = (double)dropped / (50.0 * N);
	tap_ok(!bad && fabs(share - 0.3) < 0.01 && !memcmp(y0, y + 8, (N - 8) * sizeof *y),
	       "dropout: values are +0 or x * keep (%zu not), %.4f dropped at p 0.3, a value's fate follows its index",
	       bad, share);
	free(x);
	free(y0);
	free(y);
}

/* ---- the pool ---- */

typedef struct job {
	int calls[8];
	pthread_t th[8];
	int flushed[8];
	int fail_from;              /* shares >= this fail */
	sk_pool *inner[8];          /* nested pools, one per share */
	int inner_sum[8];
	long long sum[8];
	int rounds;
} job;

static int flushed(void)
{
#if defined(__SSE2__)
	volatile float tiny = FLT_MIN / 4;   /* a denormal: DAZ reads it as zero */
	return (_mm_getcsr() & 0x8040) == 0x8040 && tiny * 1.0f == 0.0f;
#else
	return 1;
#endif
}

static int share(void *arg, int i)
{
	job *j = arg;
	j->calls[i]++;
	j->th[i] = pthread_self();
	j->flushed[i] = flushed();
	j->sum[i] += i + 1;
	if (i >= j->fail_from)
		return sk_error("share %d failed", i);
	return 0;
}

static int inner_share(void *arg, int i)
{
	int *s = arg;
	__atomic_add_fetch(s, i + 1, __ATOMIC_RELAXED);
	return 0;
}

static int outer_share(void *arg, int i)
{
	job *j = arg;
	return sk_pool_run(j->inner[i], 3, inner_share, &j->inner_sum[i]);
}

static void test_pool(void)
{
	job j;
	memset(&j, 0, sizeof j);
	j.fail_from = 99;
	tap_ok(!sk_pool_new(0) && strstr(sk_errmsg(), "threads 0 out of range") && !sk_pool_new(257),
	       "pool sizes outside 1..256 are refused: %s", sk_errmsg());
	sk_pool_free(NULL);
	sk_pool *p = sk_pool_new(4);
	tap_ok(p && sk_pool_size(p) == 4, "a pool of 4");
	if (!p)
		return;
	int r = sk_pool_run(p, 4, share, &j), distinct = 1;
	for (int a = 0; a < 4; a++)
		for (int b = a + 1; b < 4; b++)
			distinct &= !pthread_equal(j.th[a], j.th[b]);
	tap_ok(r == 0 && j.calls[0] == 1 && j.calls[1] == 1 && j.calls[2] == 1 && j.calls[3] == 1 &&
	       pthread_equal(j.th[0], pthread_self()) && distinct,
	       "each share runs once, share 0 on the caller, the others on threads of their own");
	tap_ok(j.flushed[0] && j.flushed[1] && j.flushed[2] && j.flushed[3], "every worker flushes denormals to zero");
	memset(&j, 0, sizeof j);
	j.fail_from = 99;
	r = sk_pool_run(p, 2, share, &j);
	tap_ok(r == 0 && j.calls[0] == 1 && j.calls[1] == 1 && j.calls[2] == 0 && j.calls[3] == 0,
	       "a job of 2 shares leaves workers 2 and 3 idle");
	r = sk_pool_run(p, 0, share, &j);
	tap_ok(r == 0 && j.calls[0] == 1, "a job of no shares runs nothing");
	tap_ok(sk_pool_run(p, 5, share, &j) < 0 && j.calls[0] == 1, "more shares than workers is refused: %s",
	       sk_errmsg());
	memset(&j, 0, sizeof j);
	for (int k = 0; k < 3000; k++)
		j.fail_from = 99, r |= sk_pool_run(p, 1 + k % 4, share, &j);
	tap_ok(r == 0 && j.sum[0] == 3000 && j.sum[1] == 2 * 2250 && j.sum[2] == 3 * 1500 && j.sum[3] == 4 * 750,
	       "3000 jobs of 1 to 4 shares: every share ran as often as asked");
	j.fail_from = 1;
	sk_error_clear();
	r = sk_pool_run(p, 4, share, &j);
	tap_ok(r < 0 && !strcmp(sk_errmsg(), "share 1 failed"), "a failing share fails the job with the lowest "
	       "share's message: %s", sk_errmsg());
	j.fail_from = 99;
	tap_ok(sk_pool_run(p, 4, share, &j) == 0, "the pool runs on after a failed job");
	int built = 1;
	for (int i = 0; i < 2; i++)
		built &= (j.inner[i] = sk_pool_new(3)) != NULL;
	tap_ok(built && sk_pool_run(p, 2, outer_share, &j) == 0 && j.inner_sum[0] == 6 && j.inner_sum[1] == 6,
	       "a share may run a pool of its own (nested pools)");
	for (int i = 0; i < 2; i++)
		sk_pool_free(j.inner[i]);
	sk_pool_free(p);
	p = sk_pool_new(1);
	memset(&j, 0, sizeof j);
	j.fail_from = 99;
	tap_ok(p && sk_pool_run(p, 1, share, &j) == 0 && j.calls[0] == 1 && pthread_equal(j.th[0], pthread_self()) &&
	       j.flushed[0],
	       "a pool of 1 runs on the caller, denormals flushed");
	sk_pool_free(p);
}

int main(void)
{
	test_levels();
	test_dropout();
	test_paths();
	test_pool();
	return tap_done();
}
