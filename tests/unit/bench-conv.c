/* bench-conv.c: time forward + backward of a layer spec or a model spec at
 * a batch size, for scripts/bench-conv and profiling.
 *
 *   bench-conv [-n] SPEC-TEXT C H W [BATCH [SECONDS]]   one layer line (or several)
 *   bench-conv -f MODEL.spec [BATCH [SECONDS]]          a model file (shape from its input line)
 *
 *   bench-conv -s M N K [SECONDS]                        OpenBLAS sgemm alone
 *
 * -n: no input gradient (a model's first layer); models never compute it.
 * -i: inference: forward only, in evaluation mode.
 * Prints "ms_per_batch images_per_s gflops" on stdout, the best of three
 * timed runs of SECONDS/3 each of process CPU time, so that other jobs on the
 * machine disturb it less (FLOPs: 3x forward, or 2x with no input
 * gradient). */
#include "sk_kernels.h"
#include "sk_layer.h"
#include "sk_rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + 1e-9 * t.tv_nsec;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	static char buf[1 << 16];
	size_t n;
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

int main(int argc, char **argv)
{
	const char *text;
	sk_shape in;
	int a = 1, batch = 64, nodx = 0, infer = 0;
	double secs = 1.0;
	sk_spec *s;
	if (argc >= 5 && !strcmp(argv[1], "-s")) {
		/* sgemm C (M x N) = A (M x K) B (K x N), the ceiling of the GEMM forms */
		int m = atoi(argv[2]), n = atoi(argv[3]), k = atoi(argv[4]);
		double best = 1e30, t;
		secs = argc > 5 ? atof(argv[5]) : 1.0;
		if (m < 1 || n < 1 || k < 1 || (double)m * n + (double)m * k + (double)k * n > 1e8) {
			fprintf(stderr, "bench-conv: bad sgemm size %s x %s x %s\n", argv[2], argv[3], argv[4]);
			return 2;
		}
		float *A = calloc((size_t)m * k, sizeof(float)), *B = calloc((size_t)k * n, sizeof(float)),
		      *C = calloc((size_t)m * n, sizeof(float));
		if (!A || !B || !C)
			return 1;
		for (size_t i = 0; i < (size_t)m * k; i++)
			A[i] = sk_rng_normal(1, 1, i);
		for (size_t i = 0; i < (size_t)k * n; i++)
			B[i] = sk_rng_normal(1, 2, i);
		sk_blas_threads(1);
		sk_gemm(0, 0, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
		for (int run = 0; run < 3; run++) {
			int reps = 0;
			double t0 = now();
			do {
				sk_gemm(0, 0, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
				reps++;
				t = now() - t0;
			} while (t < secs / 3);
			if (t / reps < best)
				best = t / reps;
		}
		printf("%.4f %.2f\n", 1e3 * best, 2.0 * m * n * k / best / 1e9);
		free(A);
		free(B);
		free(C);
		return 0;
	}
	while (argc >= 2 && (!strcmp(argv[1], "-n") || !strcmp(argv[1], "-i"))) {
		if (argv[1][1] == 'n')
			nodx = 1;
		else
			infer = 1;
		argv++;
		argc--;
	}
	if (argc >= 3 && !strcmp(argv[1], "-f")) {
		if (!(text = slurp(argv[2]))) {
			fprintf(stderr, "bench-conv: cannot read %s\n", argv[2]);
			return 1;
		}
		a = 3;
	} else if (argc >= 5) {
		text = argv[1];
		a = 5;
	} else {
		fprintf(stderr, "usage: bench-conv [-n] [-i] SPEC C H W [BATCH [SECONDS]] | [-i] -f MODEL.spec [BATCH [SECONDS]]\n");
		return 2;
	}
	if (argc > a)
		batch = atoi(argv[a]);
	if (argc > a + 1)
		secs = atof(argv[a + 1]);
	if (!(s = sk_spec_parse(text, "bench"))) {
		fprintf(stderr, "bench-conv: %s\n", sk_errmsg());
		return 1;
	}
	if (a == 3) {
		sk_specline *o = &s->lines[0];
		in.n = o->npos;
		for (int i = 0; i < o->npos && i < 3; i++)
			in.d[i] = atoi(o->pos[i]);
	} else {
		in = sk_shape3(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	}
	sk_blas_threads(1);
	sk_seq *q = sk_seq_build(s, in, "");
	if (!q || sk_seq_setup(q, batch) < 0 || sk_seq_init(q, 1) < 0) {
		fprintf(stderr, "bench-conv: %s\n", sk_errmsg());
		return 1;
	}
	size_t nin = sk_shape_size(in) * batch, nout = sk_shape_size(q->out) * batch;
	float *x = malloc(nin * sizeof(float)), *dy = malloc(nout * sizeof(float)), *dx = malloc(nin * sizeof(float));
	for (size_t i = 0; i < nin; i++)
		x[i] = sk_rng_normal(1, 1, i);
	for (size_t i = 0; i < nout; i++)
		dy[i] = sk_rng_normal(1, 2, i);
	sk_ctx c = {0};
	c.train = !infer;
	/* a model's first layer needs no input gradient, a lone layer does */
	float *dxp = a == 3 || nodx ? NULL : dx;
	double best = 1e30;
	for (int w = 0; w < 3; w++) {
		sk_seq_forward(q, &c, batch, x);
		if (!infer)
			sk_seq_backward(q, &c, batch, x, dy, dxp);
	}
	for (int run = 0; run < 3; run++) {
		int reps = 0;
		double t0 = now(), t;
		do {
			sk_seq_forward(q, &c, batch, x);
			if (!infer)
				sk_seq_backward(q, &c, batch, x, dy, dxp);
			reps++;
			t = now() - t0;
		} while (t < secs / 3);
		if (t / reps < best)
			best = t / reps;
	}
	printf("%.4f %.1f %.2f\n", 1e3 * best, batch / best,
	       (infer ? 1 : dxp ? 3 : 2) * sk_seq_flops(q) * batch / best / 1e9);
	free(x);
	free(dy);
	free(dx);
	sk_seq_free(q);
	sk_spec_free(s);
	return 0;
}
