/* test-cpu.c: the CPU-feature dispatcher (sk_cpu.h) and the thread pool
 * (sk_pool.h).  One level moves every kernel family at once and the
 * portable path computes what the SIMD ones do; a job's shares run once
 * each, on their own workers, with denormals flushed; errors, idle workers
 * and nested pools. */
#include "sk_cpu.h"
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
	test_paths();
	test_pool();
	return tap_done();
}
