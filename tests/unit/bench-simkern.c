/* bench-simkern.c: time forward + backward (input and parameter gradients)
 * of one layer spec on random data, single-threaded; used by
 * scripts/bench-simnet.  Usage:
 *   bench-simkern [-n BATCH] [-r REPS] [-i portable|avx2|avx512] C H W SPEC...
 * Prints one TSV line per spec: spec, isa, batch, ms per forward+backward
 * (best of REPS, process CPU time), ms forward, workspace MB (maximum resident set growth). */
#include "sk_cpu.h"
#include "sk_layer.h"
#include "sk_rng.h"
#include "sk_simkern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); /* CPU time: robust on a shared machine */
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long maxrss_kb(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return u.ru_maxrss;
}

int main(int argc, char **argv)
{
	int n = 64, reps = 5, a = 1;
	const char *isa = NULL;
	while (a < argc && argv[a][0] == '-') {
		if (!strcmp(argv[a], "-n") && a + 1 < argc)
			n = atoi(argv[++a]);
		else if (!strcmp(argv[a], "-r") && a + 1 < argc)
			reps = atoi(argv[++a]);
		else if (!strcmp(argv[a], "-i") && a + 1 < argc)
			isa = argv[++a];
		else {
			fprintf(stderr, "bench-simkern: unknown option '%s'\n", argv[a]);
			return 2;
		}
		a++;
	}
	if (argc - a < 4 || n < 1 || reps < 1) {
		fprintf(stderr, "usage: bench-simkern [-n BATCH] [-r REPS] [-i portable|avx2|avx512] C H W SPEC...\n");
		return 2;
	}
	if (isa) {
		int want = !strcmp(isa, "portable") ? SK_ISA_PORTABLE : !strcmp(isa, "avx2") ? SK_ISA_AVX2 : SK_ISA_AVX512;
		if (sk_cpu_set_isa(want) < 0) {
			fprintf(stderr, "bench-simkern: %s\n", sk_errmsg());
			return 1;
		}
	}
	sk_shape in = sk_shape3(atoi(argv[a]), atoi(argv[a + 1]), atoi(argv[a + 2]));
	size_t nin = sk_shape_size(in) * (size_t)n;
	float *x = malloc(nin * sizeof(float)), *dx = malloc(nin * sizeof(float));
	sk_rng r = sk_rng_make(1, 2);
	for (size_t i = 0; i < nin; i++)
		x[i] = sk_rng_next_uniform(&r);
	for (int s = a + 3; s < argc; s++) {
		long rss0 = maxrss_kb();
		sk_spec *sp = sk_spec_parse(argv[s], "<bench>");
		sk_seq *q = sp ? sk_seq_build(sp, in, "") : NULL;
		sk_ctx c = {0};
		c.train = 1;
		if (!q || sk_seq_setup(q, n) < 0 || sk_seq_init(q, 1) < 0) {
			fprintf(stderr, "bench-simkern: %s: %s\n", argv[s], sk_errmsg());
			return 1;
		}
		size_t nout = sk_shape_size(q->out) * (size_t)n;
		float *dy = malloc(nout * sizeof(float));
		for (size_t i = 0; i < nout; i++)
			dy[i] = sk_rng_next_normal(&r);
		double best = 1e30, bestf = 1e30;
		for (int k = 0; k < reps + 1; k++) {
			double t0 = now();
			if (!sk_seq_forward(q, &c, n, x))
				return 1;
			double t1 = now();
			if (sk_seq_backward(q, &c, n, x, dy, dx) < 0)
				return 1;
			double t2 = now();
			if (k && t2 - t0 < best)
				best = t2 - t0;
			if (k && t1 - t0 < bestf)
				bestf = t1 - t0;
		}
		printf("%s\t%s\t%d\t%.3f\t%.3f\t%.1f\n", argv[s], sk_cpu_path(), n, best * 1e3,
		       bestf * 1e3, (double)(maxrss_kb() - rss0) / 1024.0);
		free(dy);
		sk_seq_free(q);
		sk_spec_free(sp);
	}
	free(x);
	free(dx);
	return 0;
}
