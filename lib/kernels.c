/* kernels.c: GEMM wrapper, im2col/col2im and runtime-dispatched vector helpers. */
#include "sk_kernels.h"
#include "sk_base.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SK_X86 1
#endif

void sk_blas_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

void sk_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc)
{
	if (m <= 0 || n <= 0)
		return;
	if (k <= 0) {
		/* BLAS leaves C alone for k = 0 only when beta = 1: do it ourselves */
		for (int i = 0; i < m; i++)
			for (int j = 0; j < n; j++)
				c[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(size_t)i * ldc + j];
		return;
	}
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
	            lda, b, ldb, beta, c, ldc);
}

/* ---- im2col ---- */

int sk_conv_geom_init(sk_conv_geom *g, int c, int h, int w, int k, int stride, int pad)
{
	if (c < 1 || h < 1 || w < 1)
		return sk_error("input %dx%dx%d is empty", c, h, w);
	if (k < 1 || stride < 1 || pad < 0)
		return sk_error("window k=%d stride=%d pad=%d is invalid (need k >= 1, stride >= 1, pad >= 0)", k, stride,
		                pad);
	if (h + 2 * pad < k || w + 2 * pad < k)
		return sk_error("window k=%d does not fit the %dx%d input with pad=%d", k, h, w, pad);
	g->c = c;
	g->h = h;
	g->w = w;
	g->k = k;
	g->stride = stride;
	g->pad = pad;
	g->oh = (h + 2 * pad - k) / stride + 1;
	g->ow = (w + 2 * pad - k) / stride + 1;
	return 0;
}

/* Output columns ox whose input column ox*s - p + kj lies in [0, w). */
static void valid_range(int ow, int w, int s, int p, int kj, int *lo, int *hi)
{
	int off = kj - p, a = 0, b = ow;
	if (off < 0)
		a = (-off + s - 1) / s;
	/* need ox*s + off <= w - 1 */
	if (w - 1 - off < 0)
		b = 0;
	else if ((w - 1 - off) / s + 1 < b)
		b = (w - 1 - off) / s + 1;
	if (a > b)
		a = b;
	*lo = a;
	*hi = b;
}

void sk_im2col(const sk_conv_geom *g, const float *x, float *col, size_t ldcol)
{
	const int k = g->k, s = g->stride, p = g->pad, oh = g->oh, ow = g->ow, h = g->h, w = g->w;
	for (int c = 0; c < g->c; c++) {
		const float *xc = x + (size_t)c * h * w;
		for (int ki = 0; ki < k; ki++)
			for (int kj = 0; kj < k; kj++) {
				float *row = col + ((size_t)(c * k + ki) * k + kj) * ldcol;
				int lo, hi;
				valid_range(ow, w, s, p, kj, &lo, &hi);
				for (int oy = 0; oy < oh; oy++) {
					int iy = oy * s - p + ki;
					float *r = row + (size_t)oy * ow;
					if (iy < 0 || iy >= h) {
						memset(r, 0, sizeof(float) * (size_t)ow);
						continue;
					}
					const float *xr = xc + (size_t)iy * w + (kj - p);
					for (int ox = 0; ox < lo; ox++)
						r[ox] = 0;
					if (s == 1)
						memcpy(r + lo, xr + lo, sizeof(float) * (size_t)(hi - lo));
					else
						for (int ox = lo; ox < hi; ox++)
							r[ox] = xr[ox * s];
					for (int ox = hi; ox < ow; ox++)
						r[ox] = 0;
				}
			}
	}
}

void sk_col2im(const sk_conv_geom *g, const float *col, size_t ldcol, float *x)
{
	const int k = g->k, s = g->stride, p = g->pad, oh = g->oh, ow = g->ow, h = g->h, w = g->w;
	for (int c = 0; c < g->c; c++) {
		float *xc = x + (size_t)c * h * w;
		for (int ki = 0; ki < k; ki++)
			for (int kj = 0; kj < k; kj++) {
				const float *row = col + ((size_t)(c * k + ki) * k + kj) * ldcol;
				int lo, hi;
				valid_range(ow, w, s, p, kj, &lo, &hi);
				for (int oy = 0; oy < oh; oy++) {
					int iy = oy * s - p + ki;
					if (iy < 0 || iy >= h)
						continue;
					const float *r = row + (size_t)oy * ow;
					float *xr = xc + (size_t)iy * w + (kj - p);
					if (s == 1)
						for (int ox = lo; ox < hi; ox++)
							xr[ox] += r[ox];
					else
						for (int ox = lo; ox < hi; ox++)
							xr[ox * s] += r[ox];
				}
			}
	}
}

/* ---- vector helpers ---- */

struct vops {
	const char *name;
	void (*add)(size_t, const float *, float *);
	void (*axpy)(size_t, float, const float *, float *);
	void (*scale)(size_t, float, float *);
	float (*sum)(size_t, const float *);
	float (*dot)(size_t, const float *, const float *);
};

static void add_c(size_t n, const float *a, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] += a[i];
}
static void axpy_c(size_t n, float s, const float *a, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] += s * a[i];
}
static void scale_c(size_t n, float s, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] *= s;
}
static float sum_c(size_t n, const float *x)
{
	float a[4] = {0, 0, 0, 0};
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++)
			a[j] += x[i + j];
	for (; i < n; i++)
		a[0] += x[i];
	return (a[0] + a[1]) + (a[2] + a[3]);
}
static float dot_c(size_t n, const float *a, const float *b)
{
	float s[4] = {0, 0, 0, 0};
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++)
			s[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		s[0] += a[i] * b[i];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

static const struct vops vops_c = {"generic", add_c, axpy_c, scale_c, sum_c, dot_c};

#ifdef SK_X86
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f")))

AVX2 static void add_avx2(size_t n, const float *a, float *y)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(a + i)));
	for (; i < n; i++)
		y[i] += a[i];
}
AVX2 static void axpy_avx2(size_t n, float s, const float *a, float *y)
{
	size_t i = 0;
	__m256 vs = _mm256_set1_ps(s);
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(a + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] += s * a[i];
}
AVX2 static void scale_avx2(size_t n, float s, float *y)
{
	size_t i = 0;
	__m256 vs = _mm256_set1_ps(s);
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_mul_ps(vs, _mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] *= s;
}
AVX2 static float hsum256(__m256 v)
{
	__m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	a = _mm_add_ps(a, _mm_movehl_ps(a, a));
	a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
	return _mm_cvtss_f32(a);
}
AVX2 static float sum_avx2(size_t n, const float *x)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
		a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
	float s = hsum256(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		s += x[i];
	return s;
}
AVX2 static float dot_avx2(size_t n, const float *a, const float *b)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
	float s = hsum256(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}
static const struct vops vops_avx2 = {"avx2", add_avx2, axpy_avx2, scale_avx2, sum_avx2, dot_avx2};

AVX512 static void add_avx512(size_t n, const float *a, float *y)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(a + i)));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		_mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, a + i)));
	}
}
AVX512 static void axpy_avx512(size_t n, float s, const float *a, float *y)
{
	size_t i = 0;
	__m512 vs = _mm512_set1_ps(s);
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(a + i), _mm512_loadu_ps(y + i)));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		_mm512_mask_storeu_ps(y + i, m,
		                      _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, y + i)));
	}
}
AVX512 static void scale_avx512(size_t n, float s, float *y)
{
	size_t i = 0;
	__m512 vs = _mm512_set1_ps(s);
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_mul_ps(vs, _mm512_loadu_ps(y + i)));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		_mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(m, y + i)));
	}
}
AVX512 static float sum_avx512(size_t n, const float *x)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
		a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
	}
	for (; i + 16 <= n; i += 16)
		a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(m, x + i));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
AVX512 static float dot_avx512(size_t n, const float *a, const float *b)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), a0);
		a1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), a1);
	}
	for (; i + 16 <= n; i += 16)
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), a0);
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), a1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
static const struct vops vops_avx512 = {"avx512", add_avx512, axpy_avx512, scale_avx512, sum_avx512, dot_avx512};
#endif

static const struct vops *V = &vops_c;
static pthread_once_t vonce = PTHREAD_ONCE_INIT;

static void choose(void)
{
	const char *force = getenv("SK_KERNELS");
	V = &vops_c;
	if (force && !strcmp(force, "generic"))
		return;
#ifdef SK_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		V = &vops_avx2;
	if ((!force || strcmp(force, "avx2")) && __builtin_cpu_supports("avx512f"))
		V = &vops_avx512;
#endif
}

static inline const struct vops *vops(void)
{
	pthread_once(&vonce, choose);
	return V;
}

const char *sk_kernels_isa(void) { return vops()->name; }
void sk_vadd(size_t n, const float *a, float *y) { vops()->add(n, a, y); }
void sk_vaxpy(size_t n, float s, const float *a, float *y) { vops()->axpy(n, s, a, y); }
void sk_vscale(size_t n, float s, float *y) { vops()->scale(n, s, y); }
float sk_vsum(size_t n, const float *x) { return vops()->sum(n, x); }
float sk_vdot(size_t n, const float *a, const float *b) { return vops()->dot(n, a, b); }

void sk_vset(size_t n, float v, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = v;
}

void sk_vadd_rows(size_t m, size_t n, const float *b, float *y)
{
	for (size_t i = 0; i < m; i++) {
		float *r = y + i * n, bi = b[i];
		for (size_t j = 0; j < n; j++)
			r[j] += bi;
	}
}

void sk_vsum_rows(size_t m, size_t n, const float *y, float *s)
{
	const struct vops *o = vops();
	for (size_t i = 0; i < m; i++)
		s[i] += o->sum(n, y + i * n);
}
