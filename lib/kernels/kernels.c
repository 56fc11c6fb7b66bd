/* kernels.c: GEMM wrapper, im2col/col2im and runtime-dispatched vector helpers. */
#include "sk_kernels.h"
#include "sk_base.h"
#include "sk_cpu.h"

#include <cblas.h>
#include <math.h>
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
	int oh, ow;
	if (c < 1 || h < 1 || w < 1)
		return sk_error("input %dx%dx%d is empty", c, h, w);
	if (sk_window(h, k, stride, pad, "k", "stride", "pad", &oh) < 0 ||
	    sk_window(w, k, stride, pad, "k", "stride", "pad", &ow) < 0)
		return -1;
	/* the kernels index a padded image and the taps of a window in int */
	if ((int64_t)c * k * k > SK_MAX_WINDOW_VALUES ||
	    (int64_t)c * (h + 2 * (int64_t)pad) * (w + 2 * (int64_t)pad) > SK_MAX_WINDOW_VALUES ||
	    (int64_t)oh * ow > SK_MAX_WINDOW_VALUES)
		return sk_error("window k=%d with pad=%d over %d channels is too large", k, pad, c);
	*g = (sk_conv_geom){.c = c, .h = h, .w = w, .k = k, .stride = stride, .pad = pad, .oh = oh, .ow = ow};
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

/* im2col (fold = 0: col = unfold(x)) and its adjoint (fold = 1: x +=
 * fold(col)) walk the same rows: for each kernel tap, the output rows and
 * the input row under them, the columns in [lo, hi) inside the image. */
static void unfold(const sk_conv_geom *g, float *x, float *col, size_t ldcol, int fold)
{
	const int k = g->k, s = g->stride, p = g->pad, oh = g->oh, ow = g->ow, h = g->h, w = g->w;
	for (int c = 0; c < g->c; c++) {
		float *xc = x + (size_t)c * h * w;
		for (int ki = 0; ki < k; ki++)
			for (int kj = 0; kj < k; kj++) {
				float *row = col + ((size_t)(c * k + ki) * k + kj) * ldcol;
				int lo, hi;
				valid_range(ow, w, s, p, kj, &lo, &hi);
				for (int oy = 0; oy < oh; oy++) {
					int iy = oy * s - p + ki;
					float *r = row + (size_t)oy * ow;
					if (iy < 0 || iy >= h) {
						if (!fold)
							memset(r, 0, sizeof(float) * (size_t)ow);
						continue;
					}
					float *xr = xc + (size_t)iy * w + (kj - p);
					if (fold) {
						if (s == 1)
							sk_vadd((size_t)(hi - lo), r + lo, xr + lo);
						else
							for (int ox = lo; ox < hi; ox++)
								xr[ox * s] += r[ox];
					} else {
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
}

void sk_im2col(const sk_conv_geom *g, const float *x, float *col, size_t ldcol)
{
	unfold(g, (float *)x, col, ldcol, 0);
}

void sk_col2im(const sk_conv_geom *g, const float *col, size_t ldcol, float *x)
{
	unfold(g, x, (float *)col, ldcol, 1);
}

/* ---- vector helpers ---- */

struct vops {
	void (*add)(size_t, const float *, float *);
	void (*axpy)(size_t, float, const float *, float *);
	void (*scale)(size_t, float, float *);
	float (*sum)(size_t, const float *);
	float (*dot)(size_t, const float *, const float *);
	void (*relu)(size_t, float, const float *, float *);
	void (*relu_back)(size_t, float, const float *, const float *, float *);
	void (*add_rows)(size_t, size_t, const float *, float *);
	void (*cvt_u8)(size_t, const uint8_t *, float *);
	void (*sgd)(size_t, float, float, float, float *, const float *, float *);
	void (*dropout)(size_t, uint64_t, uint64_t, uint32_t, float, const float *, float *);
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

/* y = x unless x <= 0, then a*x (+0 when a = 0): a NaN stays NaN, so a
 * diverging run reaches the loss check. */
static void relu_c(size_t n, float a, const float *x, float *y)
{
	if (a == 0.0f)
		for (size_t i = 0; i < n; i++)
			y[i] = !(x[i] <= 0.0f) ? x[i] : 0.0f;
	else
		for (size_t i = 0; i < n; i++)
			y[i] = !(x[i] <= 0.0f) ? x[i] : a * x[i];
}
static void relu_back_c(size_t n, float a, const float *x, const float *dy, float *dx)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = x[i] > 0 ? dy[i] : a * dy[i];
}
static void cvt_u8_c(size_t n, const uint8_t *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i];
}
/* m = mu*m + (g + wd*w); w -= lr*m: separate multiplies and adds, in this
 * order, in every path (bitwise the same results) */
static void sgd_c(size_t n, float lr, float mu, float wd, float *w, const float *g, float *m)
{
	for (size_t i = 0; i < n; i++) {
		float mi = mu * m[i] + (g[i] + wd * w[i]);
		m[i] = mi;
		w[i] -= lr * mi;
	}
}
static void add_rows_c(size_t m, size_t n, const float *b, float *y)
{
	for (size_t i = 0; i < m; i++) {
		float *r = y + i * n, bi = b[i];
		for (size_t j = 0; j < n; j++)
			r[j] += bi;
	}
}

/* dropout: y[j] = x[j] * keep, or +0 when the 16-bit draw of value j is
 * below thresh.  Value j's draw is quarter j % 4 (low bits first) of
 * mix64(key + (base + j / 4) * GOLD), one SplitMix64 finaliser per four
 * values; every path computes the same draws and the same products. */
#define DROP_GOLD 0x9e3779b97f4a7c15ULL
static inline uint64_t drop_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
/* from value j (a multiple of 4) to n */
static void dropout_tail(size_t j, size_t n, uint64_t key, uint64_t base, uint32_t thresh, float keep, const float *x,
                         float *y)
{
	for (; j < n; j += 4) {
		uint64_t r = drop_mix64(key + (base + j / 4) * DROP_GOLD);
		size_t e = n - j < 4 ? n - j : 4;
		for (size_t t = 0; t < e; t++) {
			float v = x[j + t] * keep;
			uint32_t u;
			memcpy(&u, &v, sizeof u);
			u &= (uint32_t)0 - (uint32_t)(((uint32_t)(r >> (16 * t)) & 0xffff) >= thresh);
			memcpy(&v, &u, sizeof v);
			y[j + t] = v;
		}
	}
}
static void dropout_c(size_t n, uint64_t key, uint64_t base, uint32_t thresh, float keep, const float *x, float *y)
{
	dropout_tail(0, n, key, base, thresh, keep, x, y);
}

static const struct vops vops_c = {add_c,  axpy_c,      scale_c,    sum_c,    dot_c, relu_c,
                                   relu_back_c, add_rows_c, cvt_u8_c, sgd_c, dropout_c};

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
AVX2 static void relu_avx2(size_t n, float a, const float *x, float *y)
{
	size_t i = 0;
	__m256 va = _mm256_set1_ps(a), z = _mm256_setzero_ps();
	if (a == 0.0f)
		for (; i + 8 <= n; i += 8) {
			__m256 v = _mm256_loadu_ps(x + i);
			_mm256_storeu_ps(y + i, _mm256_blendv_ps(v, z, _mm256_cmp_ps(v, z, _CMP_LE_OQ)));
		}
	else
		for (; i + 8 <= n; i += 8) {
			__m256 v = _mm256_loadu_ps(x + i);
			_mm256_storeu_ps(y + i, _mm256_blendv_ps(v, _mm256_mul_ps(va, v), _mm256_cmp_ps(v, z, _CMP_LE_OQ)));
		}
	relu_c(n - i, a, x + i, y + i);
}
AVX2 static void relu_back_avx2(size_t n, float a, const float *x, const float *dy, float *dx)
{
	size_t i = 0;
	__m256 va = _mm256_set1_ps(a), z = _mm256_setzero_ps();
	for (; i + 8 <= n; i += 8) {
		__m256 d = _mm256_loadu_ps(dy + i);
		__m256 m = _mm256_cmp_ps(_mm256_loadu_ps(x + i), z, _CMP_GT_OQ);
		_mm256_storeu_ps(dx + i, _mm256_blendv_ps(_mm256_mul_ps(va, d), d, m));
	}
	relu_back_c(n - i, a, x + i, dy + i, dx + i);
}
AVX2 static void add_rows_avx2(size_t m, size_t n, const float *b, float *y)
{
	for (size_t i = 0; i < m; i++) {
		float *r = y + i * n;
		__m256 vb = _mm256_set1_ps(b[i]);
		size_t j = 0;
		for (; j + 8 <= n; j += 8)
			_mm256_storeu_ps(r + j, _mm256_add_ps(_mm256_loadu_ps(r + j), vb));
		for (; j < n; j++)
			r[j] += b[i];
	}
}
AVX2 static void cvt_u8_avx2(size_t n, const uint8_t *x, float *y)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x + i)))));
	cvt_u8_c(n - i, x + i, y + i);
}
AVX2 static void sgd_avx2(size_t n, float lr, float mu, float wd, float *w, const float *g, float *m)
{
	__m256 vl = _mm256_set1_ps(lr), vm = _mm256_set1_ps(mu), vw = _mm256_set1_ps(wd);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 wi = _mm256_loadu_ps(w + i);
		__m256 t = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vw, wi));
		__m256 mi = _mm256_add_ps(_mm256_mul_ps(vm, _mm256_loadu_ps(m + i)), t);
		_mm256_storeu_ps(m + i, mi);
		_mm256_storeu_ps(w + i, _mm256_sub_ps(wi, _mm256_mul_ps(vl, mi)));
	}
	sgd_c(n - i, lr, mu, wd, w + i, g + i, m + i);
}
/* a * b mod 2^64 in each 64-bit lane, from 32-bit products (AVX2 has no
 * 64-bit multiply) */
AVX2 static inline __m256i mul64_avx2(__m256i a, uint64_t b)
{
	__m256i bl = _mm256_set1_epi64x((long long)(b & 0xffffffffu)), bh = _mm256_set1_epi64x((long long)(b >> 32));
	__m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), bl), _mm256_mul_epu32(a, bh));
	return _mm256_add_epi64(_mm256_mul_epu32(a, bl), _mm256_slli_epi64(cross, 32));
}
AVX2 static void dropout_avx2(size_t n, uint64_t key, uint64_t base, uint32_t thresh, float keep, const float *x,
                              float *y)
{
	__m256i ctr = _mm256_add_epi64(_mm256_set1_epi64x((long long)(key + base * DROP_GOLD)),
	                               _mm256_setr_epi64x(0, (long long)DROP_GOLD, (long long)(2 * DROP_GOLD),
	                                                  (long long)(3 * DROP_GOLD)));
	const __m256i step = _mm256_set1_epi64x((long long)(4 * DROP_GOLD));
	const __m256i below = _mm256_set1_epi32((int)thresh - 1);
	const __m256 vk = _mm256_set1_ps(keep);
	size_t j = 0;
	for (; j + 16 <= n; j += 16) {
		__m256i z = ctr;
		ctr = _mm256_add_epi64(ctr, step);
		z = mul64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xbf58476d1ce4e5b9ULL);
		z = mul64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94d049bb133111ebULL);
		z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
		/* 16 draws of 16 bits, in value order; kept when draw > thresh - 1 */
		__m256i k0 = _mm256_cmpgt_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(z)), below);
		__m256i k1 = _mm256_cmpgt_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(z, 1)), below);
		_mm256_storeu_ps(y + j, _mm256_and_ps(_mm256_castsi256_ps(k0), _mm256_mul_ps(_mm256_loadu_ps(x + j), vk)));
		_mm256_storeu_ps(y + j + 8,
		                 _mm256_and_ps(_mm256_castsi256_ps(k1), _mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vk)));
	}
	dropout_tail(j, n, key, base, thresh, keep, x, y);
}
static const struct vops vops_avx2 = {add_avx2,       axpy_avx2,     scale_avx2,  sum_avx2, dot_avx2, relu_avx2,
                                      relu_back_avx2, add_rows_avx2, cvt_u8_avx2, sgd_avx2, dropout_avx2};

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
AVX512 static void relu_avx512(size_t n, float a, const float *x, float *y)
{
	size_t i = 0;
	__m512 va = _mm512_set1_ps(a), z = _mm512_setzero_ps();
	if (a == 0.0f) {
		/* two vectors per step: the loop is all loads and stores */
		for (; i + 32 <= n; i += 32) {
			__m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
			_mm512_storeu_ps(y + i, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v0, z, _CMP_LE_OQ), v0, z));
			_mm512_storeu_ps(y + i + 16, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v1, z, _CMP_LE_OQ), v1, z));
		}
		for (; i < n; i += 16) {
			__mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
			__m512 v = _mm512_maskz_loadu_ps(k, x + i);
			_mm512_mask_storeu_ps(y + i, k, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, z, _CMP_LE_OQ), v, z));
		}
		return;
	}
	for (; i < n; i += 16) {
		__mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(k, x + i);
		__mmask16 le = _mm512_cmp_ps_mask(v, z, _CMP_LE_OQ);
		_mm512_mask_storeu_ps(y + i, k, _mm512_mask_blend_ps(le, v, _mm512_mul_ps(va, v)));
	}
}
AVX512 static void relu_back_avx512(size_t n, float a, const float *x, const float *dy, float *dx)
{
	size_t i = 0;
	__m512 va = _mm512_set1_ps(a), z = _mm512_setzero_ps();
	for (; i < n; i += 16) {
		__mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 d = _mm512_maskz_loadu_ps(k, dy + i);
		__mmask16 pos = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, x + i), z, _CMP_GT_OQ);
		_mm512_mask_storeu_ps(dx + i, k, _mm512_mask_blend_ps(pos, _mm512_mul_ps(va, d), d));
	}
}
AVX512 static void add_rows_avx512(size_t m, size_t n, const float *b, float *y)
{
	for (size_t i = 0; i < m; i++) {
		float *r = y + i * n;
		__m512 vb = _mm512_set1_ps(b[i]);
		for (size_t j = 0; j < n; j += 16) {
			__mmask16 k = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
			_mm512_mask_storeu_ps(r + j, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, r + j), vb));
		}
	}
}
AVX512 static void cvt_u8_avx512(size_t n, const uint8_t *x, float *y)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(y + i, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x + i)))));
	cvt_u8_c(n - i, x + i, y + i);
}
AVX512 static void sgd_avx512(size_t n, float lr, float mu, float wd, float *w, const float *g, float *m)
{
	__m512 vl = _mm512_set1_ps(lr), vm = _mm512_set1_ps(mu), vw = _mm512_set1_ps(wd);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m512 wi = _mm512_maskz_loadu_ps(k, w + i);
		__m512 t = _mm512_add_ps(_mm512_maskz_loadu_ps(k, g + i), _mm512_mul_ps(vw, wi));
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(vm, _mm512_maskz_loadu_ps(k, m + i)), t);
		_mm512_mask_storeu_ps(m + i, k, mi);
		_mm512_mask_storeu_ps(w + i, k, _mm512_sub_ps(wi, _mm512_mul_ps(vl, mi)));
	}
}
AVX512 static inline __m512i mul64_avx512(__m512i a, uint64_t b)
{
	__m512i bl = _mm512_set1_epi64((long long)(b & 0xffffffffu)), bh = _mm512_set1_epi64((long long)(b >> 32));
	__m512i cross = _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(a, 32), bl), _mm512_mul_epu32(a, bh));
	return _mm512_add_epi64(_mm512_mul_epu32(a, bl), _mm512_slli_epi64(cross, 32));
}
AVX512 static void dropout_avx512(size_t n, uint64_t key, uint64_t base, uint32_t thresh, float keep, const float *x,
                                  float *y)
{
	__m512i ctr = _mm512_add_epi64(_mm512_set1_epi64((long long)(key + base * DROP_GOLD)),
	                               _mm512_setr_epi64(0, (long long)DROP_GOLD, (long long)(2 * DROP_GOLD),
	                                                 (long long)(3 * DROP_GOLD), (long long)(4 * DROP_GOLD),
	                                                 (long long)(5 * DROP_GOLD), (long long)(6 * DROP_GOLD),
	                                                 (long long)(7 * DROP_GOLD)));
	const __m512i step = _mm512_set1_epi64((long long)(8 * DROP_GOLD));
	const __m512i vt = _mm512_set1_epi32((int)thresh);
	const __m512 vk = _mm512_set1_ps(keep);
	size_t j = 0;
	for (; j + 32 <= n; j += 32) {
		__m512i z = ctr;
		ctr = _mm512_add_epi64(ctr, step);
		z = mul64_avx512(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), 0xbf58476d1ce4e5b9ULL);
		z = mul64_avx512(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), 0x94d049bb133111ebULL);
		z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
		__mmask16 k0 = _mm512_cmpge_epu32_mask(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(z)), vt);
		__mmask16 k1 = _mm512_cmpge_epu32_mask(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(z, 1)), vt);
		_mm512_storeu_ps(y + j, _mm512_maskz_mul_ps(k0, _mm512_loadu_ps(x + j), vk));
		_mm512_storeu_ps(y + j + 16, _mm512_maskz_mul_ps(k1, _mm512_loadu_ps(x + j + 16), vk));
	}
	dropout_tail(j, n, key, base, thresh, keep, x, y);
}
static const struct vops vops_avx512 = {add_avx512,       axpy_avx512,     scale_avx512,
                                        sum_avx512,       dot_avx512,      relu_avx512,
                                        relu_back_avx512, add_rows_avx512, cvt_u8_avx512,
                                        sgd_avx512, dropout_avx512};
#endif

/* the paths by level (sk_cpu.h) */
#ifdef SK_X86
static const struct vops *const paths[] = {&vops_c, &vops_avx2, &vops_avx512};
#else
static const struct vops *const paths[] = {&vops_c, &vops_c, &vops_c};
#endif

static inline const struct vops *vops(void) { return paths[sk_cpu_isa()]; }

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

void sk_vadd_rows(size_t m, size_t n, const float *b, float *y) { vops()->add_rows(m, n, b, y); }
void sk_vrelu(size_t n, float slope, const float *x, float *y) { vops()->relu(n, slope, x, y); }
void sk_vrelu_back(size_t n, float slope, const float *x, const float *dy, float *dx)
{
	vops()->relu_back(n, slope, x, dy, dx);
}
void sk_vcvt_u8(size_t n, const uint8_t *x, float *y) { vops()->cvt_u8(n, x, y); }
void sk_vdropout(size_t n, uint64_t key, uint64_t base, uint32_t thresh, float keep, const float *x, float *y)
{
	vops()->dropout(n, key, base, thresh, keep, x, y);
}
void sk_vsgd(size_t n, float lr, float mu, float wd, float *w, const float *g, float *m)
{
	vops()->sgd(n, lr, mu, wd, w, g, m);
}

void sk_vsum_rows(size_t m, size_t n, const float *y, float *s)
{
	const struct vops *o = vops();
	for (size_t i = 0; i < m; i++)
		s[i] += o->sum(n, y + i * n);
}

/* ---- affine maps and statistics (batch norm, residual sums) ---- */

static void affine_c(size_t n, float a, float shift, float b, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a * (x[i] - shift) + b;
}
static void affine2_c(size_t n, float a, const float *u, float b, const float *v, float shift, float c, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a * u[i] + b * (v[i] - shift) + c;
}
static void stats_c(size_t n, const float *x, float shift, double *s1, double *s2)
{
	float a = 0, q = 0;
	for (size_t i = 0; i < n; i++) {
		float d = x[i] - shift;
		a += d;
		q += d * d;
	}
	*s1 += a;
	*s2 += q;
}
static float dotsh_c(size_t n, const float *a, const float *b, float shift)
{
	float t = 0;
	for (size_t i = 0; i < n; i++)
		t += a[i] * (b[i] - shift);
	return t;
}
static void add3_c(size_t n, const float *a, const float *b, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

#ifdef SK_X86
#define MASK16(left) ((left) >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (left)) - 1))
AVX512 static void affine_avx512(size_t n, float a, float shift, float b, const float *x, float *y)
{
	__m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vs = _mm512_set1_ps(shift);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vs);
		_mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, d, vb));
	}
}
AVX512 static void affine2_avx512(size_t n, float a, const float *u, float b, const float *v, float shift, float c,
                                  float *y)
{
	__m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vc = _mm512_set1_ps(c), vs = _mm512_set1_ps(shift);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		__m512 t = _mm512_fmadd_ps(vb, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, v + i), vs), vc);
		_mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, u + i), t));
	}
}
AVX512 static void stats_avx512(size_t n, const float *x, float shift, double *s1, double *s2)
{
	__m512 a = _mm512_setzero_ps(), q = _mm512_setzero_ps(), vs = _mm512_set1_ps(shift);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		__m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vs);
		a = _mm512_add_ps(a, d);
		q = _mm512_fmadd_ps(d, d, q);
	}
	*s1 += _mm512_reduce_add_ps(a);
	*s2 += _mm512_reduce_add_ps(q);
}
AVX512 static float dotsh_avx512(size_t n, const float *a, const float *b, float shift)
{
	__m512 t = _mm512_setzero_ps(), vs = _mm512_set1_ps(shift);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		__m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, b + i), vs);
		t = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), d, t);
	}
	return _mm512_reduce_add_ps(t);
}
AVX512 static void add3_avx512(size_t n, const float *a, const float *b, float *y)
{
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		_mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
	}
}
#define FAST512 (sk_cpu_isa() == SK_ISA_AVX512)
#else
/* one path: every kernel below is its portable version */
#define FAST512 0
#define affine_avx512 affine_c
#define affine2_avx512 affine2_c
#define stats_avx512 stats_c
#define add3_avx512 add3_c
#define dotsh_avx512 dotsh_c
#define transpose_avx512 transpose_c
#define dfwd_avx512 dfwd_c
#define ddw_avx512 ddw_c
#define ddx_avx512 ddx_c
#define pfwd_avx512 pfwd_c
#define pdw_avx512 pdw_c
#define maxpool2_avx512 maxpool2_c
#define tanh_avx512 tanh_c
#define sigmoid_avx512 sigmoid_c
#endif
/* the AVX-512 version of kernel f at that level, else the portable one; the
 * direct convolutions also step aside for SK_CONV=gemm */
#define PICK(f) (FAST512 ? f##_avx512 : f##_c)
#define DCONV(f) (sk_dconv_ok() ? f##_avx512 : f##_c)

void sk_vaffine(size_t n, float a, float shift, float b, const float *x, float *y)
{
	PICK(affine)(n, a, shift, b, x, y);
}
void sk_vaffine2(size_t n, float a, const float *u, float b, const float *v, float shift, float c, float *y)
{
	PICK(affine2)(n, a, u, b, v, shift, c, y);
}
void sk_vstats(size_t n, const float *x, float shift, double *s1, double *s2)
{
	PICK(stats)(n, x, shift, s1, s2);
}
float sk_vdot_shift(size_t n, const float *a, const float *b, float shift)
{
	return PICK(dotsh)(n, a, b, shift);
}
void sk_vadd3(size_t n, const float *a, const float *b, float *y) { PICK(add3)(n, a, b, y); }

/* ---- transposes ---- */

static void transpose_c(int m, int n, const float *src, size_t lds, float *dst, size_t ldd, const float *bias)
{
	for (int i0 = 0; i0 < m; i0 += 16)
		for (int j0 = 0; j0 < n; j0 += 16) {
			int i1 = i0 + 16 < m ? i0 + 16 : m, j1 = j0 + 16 < n ? j0 + 16 : n;
			for (int j = j0; j < j1; j++) {
				float b = bias ? bias[j] : 0.0f;
				for (int i = i0; i < i1; i++)
					dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j] + b;
			}
		}
}

#ifdef SK_X86
/* In-register transpose of a 16x16 block, rows r[0..16): unpack pairs of
 * rows, then pairs of pairs, then exchange 128-bit lanes twice. */
__attribute__((target("avx512f"), always_inline)) static inline void tr16x16(__m512 r[16])
{
	__m512 t[16];
#pragma GCC unroll 16
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
#pragma GCC unroll 16
	for (int i = 0; i < 4; i++) {
		__m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
		__m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
		r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
		r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
		r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
		r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
	}
#pragma GCC unroll 16
	for (int i = 0; i < 2; i++)
#pragma GCC unroll 16
		for (int j = 0; j < 4; j++) {
			t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
			t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
		}
#pragma GCC unroll 16
	for (int j = 0; j < 8; j++) {
		r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
		r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
	}
}

#define BIAS(j) (bias ? _mm512_set1_ps(bias[j]) : _mm512_setzero_ps())
AVX512 static void transpose_avx512(int m, int n, const float *src, size_t lds, float *dst, size_t ldd,
                                    const float *bias)
{
	int i0 = 0;
	for (; i0 + 16 <= m; i0 += 16) {
		int j0 = 0;
		for (; j0 + 16 <= n; j0 += 16) {
			__m512 r[16];
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++)
				r[i] = _mm512_loadu_ps(src + (size_t)(i0 + i) * lds + j0);
			tr16x16(r);
#pragma GCC unroll 16
			for (int j = 0; j < 16; j++)
				_mm512_storeu_ps(dst + (size_t)(j0 + j) * ldd + i0, _mm512_add_ps(r[j], BIAS(j0 + j)));
		}
		if (j0 < n) {
			__mmask16 k = (__mmask16)((1u << (n - j0)) - 1);
			__m512 r[16];
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++)
				r[i] = _mm512_maskz_loadu_ps(k, src + (size_t)(i0 + i) * lds + j0);
			tr16x16(r);
			/* constant indices into r (unrolled): r stays in registers */
#pragma GCC unroll 16
			for (int j = 0; j < 16; j++)
				if (j < n - j0)
					_mm512_storeu_ps(dst + (size_t)(j0 + j) * ldd + i0, _mm512_add_ps(r[j], BIAS(j0 + j)));
		}
	}
	if (i0 < m && m - i0 <= 6) {
		/* a few rows: plain moves beat a mostly empty 16x16 block */
		for (int j = 0; j < n; j++) {
			float b = bias ? bias[j] : 0.0f;
			for (int i = i0; i < m; i++)
				dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j] + b;
		}
	} else if (i0 < m) {
		int mi = m - i0;
		__mmask16 km = (__mmask16)((1u << mi) - 1);
		for (int j0 = 0; j0 < n; j0 += 16) {
			int nj = n - j0 < 16 ? n - j0 : 16;
			__mmask16 k = (__mmask16)((1u << nj) - 1);
			__m512 r[16];
#pragma GCC unroll 16
			for (int i = 0; i < 16; i++)
				r[i] = i < mi ? _mm512_maskz_loadu_ps(k, src + (size_t)(i0 + i) * lds + j0) : _mm512_setzero_ps();
			tr16x16(r);
#pragma GCC unroll 16
			for (int j = 0; j < 16; j++)
				if (j < nj)
					_mm512_mask_storeu_ps(dst + (size_t)(j0 + j) * ldd + i0, km, _mm512_add_ps(r[j], BIAS(j0 + j)));
		}
	}
}

#endif

void sk_transpose_bias(int m, int n, const float *src, size_t lds, float *dst, size_t ldd, const float *bias)
{
	PICK(transpose)(m, n, src, lds, dst, ldd, bias);
}

void sk_transpose(int m, int n, const float *src, size_t lds, float *dst, size_t ldd)
{
	sk_transpose_bias(m, n, src, lds, dst, ldd, NULL);
}

/* ---- direct convolution ---- */

static void dfwd_c(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *wt, float *out)
{
	for (int i = 0; i < npix; i++) {
		float acc[16] = {0};
		const float *b = x + poff[i];
		for (int t = 0; t < ntap; t++)
			for (int o = 0; o < 16; o++)
				acc[o] += b[toff[t]] * wt[16 * t + o];
		memcpy(out + 16 * (size_t)i, acc, sizeof acc);
	}
}

static void ddw_c(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *dyt, float *dwt)
{
	for (int t = 0; t < ntap; t++)
		for (int i = 0; i < npix; i++) {
			float v = x[poff[i] + toff[t]];
			for (int o = 0; o < 16; o++)
				dwt[16 * t + o] += v * dyt[16 * (size_t)i + o];
		}
}

static void ddx_c(float *dxt, const int *pofft, const int *dyoff, int npix, const int *koff, int kk, const float *dy,
                  int nout, int ostride, const float *wd)
{
	for (int i = 0; i < npix; i++)
		for (int j = 0; j < kk; j++) {
			float *d = dxt + 16 * (size_t)(pofft[i] + koff[j]);
			for (int o = 0; o < nout; o++) {
				float v = dy[dyoff[i] + o * ostride];
				for (int c = 0; c < 16; c++)
					d[c] += v * wd[((size_t)j * nout + o) * 16 + c];
			}
		}
}

#ifdef SK_X86
#define AVX512_INLINE __attribute__((target("avx512f"), always_inline)) static inline

/* JB rows at once (pixels of the forward pass, taps of the weight
 * gradient): out[j][0..16) = (init ? out[j] : 0) + sum over l < nl of
 * x[a[j] + b[l]] * v[l][0..16); one load of v feeds JB broadcast FMAs. */
AVX512_INLINE void dblk(const float *x, const int *a, const int *b, int nl, const float *v, float *out,
                        const int init, const int JB)
{
	__m512 acc[8];
	const float *p[8];
#pragma GCC unroll 8
	for (int j = 0; j < JB; j++) {
		acc[j] = init ? _mm512_load_ps(out + 16 * j) : _mm512_setzero_ps();
		p[j] = x + a[j];
	}
	for (int l = 0; l < nl; l++) {
		__m512 w = _mm512_load_ps(v + 16 * (size_t)l);
		int o = b[l];
#pragma GCC unroll 8
		for (int j = 0; j < JB; j++)
			acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(p[j][o]), w, acc[j]);
	}
#pragma GCC unroll 8
	for (int j = 0; j < JB; j++)
		_mm512_store_ps(out + 16 * j, acc[j]);
}

/* dblk over na rows: blocks of 8, then the rest in one. */
AVX512_INLINE void drows(const float *x, const int *a, int na, const int *b, int nl, const float *v, float *out,
                         const int init)
{
	int i = 0;
	for (; i + 8 <= na; i += 8)
		dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 8);
	switch (na - i) {
	case 7: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 7); break;
	case 6: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 6); break;
	case 5: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 5); break;
	case 4: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 4); break;
	case 3: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 3); break;
	case 2: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 2); break;
	case 1: dblk(x, a + i, b, nl, v, out + 16 * (size_t)i, init, 1); break;
	}
}

AVX512 static void dfwd_avx512(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *wt,
                               float *out)
{
	drows(x, poff, npix, toff, ntap, wt, out, 0);
}

AVX512 static void ddw_avx512(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *dyt,
                              float *dwt)
{
	drows(x, toff, ntap, poff, npix, dyt, dwt, 1);
}

/* All KK taps of one pixel in registers; one broadcast of dy per output
 * channel feeds KK FMAs. */
AVX512_INLINE void ddx_px(float *dxt, const int *koff, const float *dyp, int nout, int ostride, const float *wd,
                          const int KK)
{
	__m512 acc[25];
#pragma GCC unroll 25
	for (int j = 0; j < KK; j++)
		acc[j] = _mm512_loadu_ps(dxt + 16 * koff[j]);
	for (int o = 0; o < nout; o++) {
		__m512 v = _mm512_set1_ps(dyp[o * ostride]);
#pragma GCC unroll 25
		for (int j = 0; j < KK; j++)
			acc[j] = _mm512_fmadd_ps(v, _mm512_load_ps(wd + ((size_t)j * nout + o) * 16), acc[j]);
	}
#pragma GCC unroll 25
	for (int j = 0; j < KK; j++)
		_mm512_storeu_ps(dxt + 16 * koff[j], acc[j]);
}

/* Two pixels whose windows are disjoint: each weight load feeds two FMAs. */
AVX512_INLINE void ddx_px2(float *d0, float *d1, const int *koff, const float *dy0, const float *dy1, int nout,
                           int ostride, const float *wd, const int KK)
{
	__m512 a0[9], a1[9];
#pragma GCC unroll 9
	for (int j = 0; j < KK; j++) {
		a0[j] = _mm512_loadu_ps(d0 + 16 * koff[j]);
		a1[j] = _mm512_loadu_ps(d1 + 16 * koff[j]);
	}
	for (int o = 0; o < nout; o++) {
		__m512 v0 = _mm512_set1_ps(dy0[o * ostride]), v1 = _mm512_set1_ps(dy1[o * ostride]);
#pragma GCC unroll 9
		for (int j = 0; j < KK; j++) {
			__m512 w = _mm512_load_ps(wd + ((size_t)j * nout + o) * 16);
			a0[j] = _mm512_fmadd_ps(v0, w, a0[j]);
			a1[j] = _mm512_fmadd_ps(v1, w, a1[j]);
		}
	}
#pragma GCC unroll 9
	for (int j = 0; j < KK; j++) {
		_mm512_storeu_ps(d0 + 16 * koff[j], a0[j]);
		_mm512_storeu_ps(d1 + 16 * koff[j], a1[j]);
	}
}

AVX512 static void ddx_avx512(float *dxt, const int *pofft, const int *dyoff, int npix, const int *koff, int kk,
                              const float *dy, int nout, int ostride, const float *wd)
{
	/* Offsets d at which two windows overlap: d = koff[a] - koff[b]. */
	enum { SPAN = 4096 };
	unsigned char clash[2 * SPAN + 1];
	int pairs = kk == 9 || kk == 4 || kk == 1;
	if (pairs) {
		memset(clash, 0, sizeof clash);
		for (int a = 0; a < kk && pairs; a++)
			for (int b = 0; b < kk; b++) {
				int d = koff[a] - koff[b];
				if (d < -SPAN || d > SPAN) {
					pairs = 0;
					break;
				}
				clash[d + SPAN] = 1;
			}
	}
	for (int i = 0; i < npix; i++) {
		if (pairs && i + 1 < npix) {
			int d = pofft[i + 1] - pofft[i];
			if (d < -SPAN || d > SPAN || !clash[d + SPAN]) {
				float *d0 = dxt + 16 * (size_t)pofft[i], *d1 = dxt + 16 * (size_t)pofft[i + 1];
				const float *y0 = dy + dyoff[i], *y1 = dy + dyoff[i + 1];
				if (kk == 9)
					ddx_px2(d0, d1, koff, y0, y1, nout, ostride, wd, 9);
				else if (kk == 4)
					ddx_px2(d0, d1, koff, y0, y1, nout, ostride, wd, 4);
				else
					ddx_px2(d0, d1, koff, y0, y1, nout, ostride, wd, 1);
				i++;
				continue;
			}
		}
		float *d = dxt + 16 * (size_t)pofft[i];
		const float *dyp = dy + dyoff[i];
		switch (kk) {
		case 1: ddx_px(d, koff, dyp, nout, ostride, wd, 1); break;
		case 4: ddx_px(d, koff, dyp, nout, ostride, wd, 4); break;
		case 9: ddx_px(d, koff, dyp, nout, ostride, wd, 9); break;
		case 16: ddx_px(d, koff, dyp, nout, ostride, wd, 16); break;
		case 25: ddx_px(d, koff, dyp, nout, ostride, wd, 25); break;
		default: ddx_c(dxt, pofft + i, dyoff + i, 1, koff, kk, dy, nout, ostride, wd);
		}
	}
}
#endif

/* SK_CONV=gemm turns the direct convolutions off (read once) */
static int conv_gemm = -1;

int sk_dconv_ok(void)
{
	int g = __atomic_load_n(&conv_gemm, __ATOMIC_RELAXED);
	if (g < 0) {
		const char *e = getenv("SK_CONV");
		g = e && !strcmp(e, "gemm");
		__atomic_store_n(&conv_gemm, g, __ATOMIC_RELAXED);
	}
	return FAST512 && !g;
}

void sk_dconv_fwd(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *wt, float *out)
{
	DCONV(dfwd)(x, toff, ntap, poff, npix, wt, out);
}

void sk_dconv_dw(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *dyt, float *dwt)
{
	DCONV(ddw)(x, toff, ntap, poff, npix, dyt, dwt);
}

void sk_dconv_dx(float *dxt, const int *pofft, const int *dyoff, int npix, const int *koff, int kk, const float *dy,
                 int nout, int ostride, const float *wd)
{
	DCONV(ddx)(dxt, pofft, dyoff, npix, koff, kk, dy, nout, ostride, wd);
}

/* ---- pixel-vector direct convolution (stride 1, few output channels) ----
 * Lanes hold 16 adjacent output pixels of a row, so nothing is transposed
 * and no lane idles when there are only a few output channels (LeNet's 6);
 * two output rows share each weight broadcast. */

static void pfwd_c(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *w,
                   const float *bias, float *y)
{
	int ckk = c * k * k;
	for (int oc = 0; oc < o; oc++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++) {
				float t = bias ? bias[oc] : 0.0f;
				for (int ci = 0; ci < c; ci++)
					for (int ki = 0; ki < k; ki++)
						for (int kj = 0; kj < k; kj++)
							t += xp[((size_t)ci * hp + oy + ki) * wp + ox + kj] *
							     w[(size_t)oc * ckk + (ci * k + ki) * k + kj];
				y[((size_t)oc * oh + oy) * ow + ox] = t;
			}
}

static void pdw_c(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *dy, float *acc)
{
	int ckk = c * k * k;
	for (int oc = 0; oc < o; oc++)
		for (int ci = 0; ci < c; ci++)
			for (int ki = 0; ki < k; ki++)
				for (int kj = 0; kj < k; kj++) {
					float t = 0;
					for (int oy = 0; oy < oh; oy++)
						for (int ox = 0; ox < ow; ox++)
							t += dy[((size_t)oc * oh + oy) * ow + ox] *
							     xp[((size_t)ci * hp + oy + ki) * wp + ox + kj];
					acc[((size_t)oc * ckk + (ci * k + ki) * k + kj) * 16] += t;
				}
}

#ifdef SK_X86
AVX512_INLINE void pfwd_seg(const float *xp, int c, int hp, int wp, int k, int oy, int x0, __mmask16 m, int oh,
                            int ow, const float *w, const float *bias, float *y, const int O, const int R)
{
	__m512 acc[2][8];
	int ckk = c * k * k;
#pragma GCC unroll 8
	for (int o = 0; o < O; o++)
		acc[0][o] = acc[1][o] = _mm512_set1_ps(bias ? bias[o] : 0.0f);
	for (int ci = 0; ci < c; ci++)
		for (int ki = 0; ki < k; ki++) {
			const float *src = xp + ((size_t)ci * hp + oy + ki) * wp + x0;
			const float *wk = w + (ci * k + ki) * k;
			for (int kj = 0; kj < k; kj++) {
				__m512 v0 = _mm512_maskz_loadu_ps(m, src + kj);
				__m512 v1 = R == 2 ? _mm512_maskz_loadu_ps(m, src + kj + wp) : v0;
#pragma GCC unroll 8
				for (int o = 0; o < O; o++) {
					__m512 wv = _mm512_set1_ps(wk[(size_t)o * ckk + kj]);
					acc[0][o] = _mm512_fmadd_ps(v0, wv, acc[0][o]);
					if (R == 2)
						acc[1][o] = _mm512_fmadd_ps(v1, wv, acc[1][o]);
				}
			}
		}
#pragma GCC unroll 8
	for (int o = 0; o < O; o++) {
		float *d = y + ((size_t)o * oh + oy) * ow + x0;
		_mm512_mask_storeu_ps(d, m, acc[0][o]);
		if (R == 2)
			_mm512_mask_storeu_ps(d + ow, m, acc[1][o]);
	}
}

AVX512_INLINE void pfwd_img(const float *xp, int c, int hp, int wp, int k, int oh, int ow, const float *w,
                            const float *bias, float *y, const int O)
{
	for (int x0 = 0; x0 < ow; x0 += 16) {
		__mmask16 m = ow - x0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (ow - x0)) - 1);
		int oy = 0;
		for (; oy + 2 <= oh; oy += 2)
			pfwd_seg(xp, c, hp, wp, k, oy, x0, m, oh, ow, w, bias, y, O, 2);
		if (oy < oh)
			pfwd_seg(xp, c, hp, wp, k, oy, x0, m, oh, ow, w, bias, y, O, 1);
	}
}

AVX512 static void pfwd_avx512(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *w,
                               const float *bias, float *y)
{
	switch (o) {
	case 1: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 1); break;
	case 2: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 2); break;
	case 3: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 3); break;
	case 4: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 4); break;
	case 5: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 5); break;
	case 6: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 6); break;
	case 7: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 7); break;
	case 8: pfwd_img(xp, c, hp, wp, k, oh, ow, w, bias, y, 8); break;
	default: /* chunks of 8 output channels */
		for (int o0 = 0; o0 < o; o0 += 8)
			pfwd_avx512(xp, c, hp, wp, k, oh, ow, o - o0 < 8 ? o - o0 : 8, w + (size_t)o0 * c * k * k,
			            bias ? bias + o0 : NULL, y + (size_t)o0 * oh * ow);
	}
}

/* dW: lanes accumulate per-pixel products; acc[o][tap][16] sums over lanes
 * later.  Two taps at a time share the loads of dy. */
AVX512_INLINE void pdw_img(const float *xp, int c, int hp, int wp, int k, int oh, int ow, const float *dy,
                           float *acc, const int O)
{
	int kk = k * k, ckk = c * kk;
	for (int t = 0; t < ckk; t += 2) {
		int nt = t + 1 < ckk ? 2 : 1;
		int ci0 = t / kk, r0 = t % kk, ci1 = (t + 1) / kk, r1 = (t + 1) % kk;
		const float *b0 = xp + ((size_t)ci0 * hp + r0 / k) * wp + r0 % k;
		const float *b1 = nt == 2 ? xp + ((size_t)ci1 * hp + r1 / k) * wp + r1 % k : b0;
		__m512 a0[8], a1[8];
#pragma GCC unroll 8
		for (int o = 0; o < O; o++) {
			a0[o] = _mm512_load_ps(acc + ((size_t)o * ckk + t) * 16);
			a1[o] = nt == 2 ? _mm512_load_ps(acc + ((size_t)o * ckk + t + 1) * 16) : _mm512_setzero_ps();
		}
		for (int oy = 0; oy < oh; oy++)
			for (int x0 = 0; x0 < ow; x0 += 16) {
				__mmask16 m = ow - x0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (ow - x0)) - 1);
				__m512 v0 = _mm512_maskz_loadu_ps(m, b0 + (size_t)oy * wp + x0);
				__m512 v1 = _mm512_maskz_loadu_ps(m, b1 + (size_t)oy * wp + x0);
#pragma GCC unroll 8
				for (int o = 0; o < O; o++) {
					__m512 d = _mm512_maskz_loadu_ps(m, dy + ((size_t)o * oh + oy) * ow + x0);
					a0[o] = _mm512_fmadd_ps(v0, d, a0[o]);
					a1[o] = _mm512_fmadd_ps(v1, d, a1[o]);
				}
			}
#pragma GCC unroll 8
		for (int o = 0; o < O; o++) {
			_mm512_store_ps(acc + ((size_t)o * ckk + t) * 16, a0[o]);
			if (nt == 2)
				_mm512_store_ps(acc + ((size_t)o * ckk + t + 1) * 16, a1[o]);
		}
	}
}

AVX512 static void pdw_avx512(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *dy,
                              float *acc)
{
	switch (o) {
	case 1: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 1); break;
	case 2: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 2); break;
	case 3: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 3); break;
	case 4: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 4); break;
	case 5: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 5); break;
	case 6: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 6); break;
	case 7: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 7); break;
	case 8: pdw_img(xp, c, hp, wp, k, oh, ow, dy, acc, 8); break;
	default:
		for (int o0 = 0; o0 < o; o0 += 8)
			pdw_avx512(xp, c, hp, wp, k, oh, ow, o - o0 < 8 ? o - o0 : 8, dy + (size_t)o0 * oh * ow,
			           acc + (size_t)o0 * c * k * k * 16);
	}
}
#endif

void sk_pconv_fwd(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *w,
                  const float *bias, float *y)
{
	DCONV(pfwd)(xp, c, hp, wp, k, oh, ow, o, w, bias, y);
}

void sk_pconv_dw(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *dy, float *acc)
{
	DCONV(pdw)(xp, c, hp, wp, k, oh, ow, o, dy, acc);
}

/* ---- 2x2 stride-2 max pooling of one plane ---- */

static void maxpool2_c(const float *x, int w, int oh, int ow, float *y, int32_t *arg)
{
	for (int oy = 0; oy < oh; oy++) {
		const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
		int base = 2 * oy * w;
		for (int ox = 0; ox < ow; ox++) {
			/* branch-free: the comparisons are coin flips on real data */
			float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
			int ia = base + 2 * ox, ic = ia + w;
			int tb = b > a, td = d > c;
			a = tb ? b : a;
			ia += tb;
			c = td ? d : c;
			ic += td;
			int tc = c > a;
			y[(size_t)oy * ow + ox] = tc ? c : a;
			arg[(size_t)oy * ow + ox] = tc ? ic : ia;
		}
	}
}

#ifdef SK_X86
AVX512 static void maxpool2_avx512(const float *x, int w, int oh, int ow, float *y, int32_t *arg)
{
	const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
	const __m512i one = _mm512_set1_epi32(1);
	for (int oy = 0; oy < oh; oy++) {
		const float *r0 = x + (size_t)(2 * oy) * w, *r1 = r0 + w;
		for (int ox = 0; ox < ow; ox += 16) {
			int left = ow - ox < 16 ? ow - ox : 16;
			/* 2*left inputs per row: two masked loads of 16 */
			__mmask16 klo = (__mmask16)(2 * left >= 16 ? 0xffff : (1u << (2 * left)) - 1);
			__mmask16 khi = (__mmask16)(2 * left <= 16 ? 0 : (1u << (2 * left - 16)) - 1);
			__mmask16 k = (__mmask16)(left == 16 ? 0xffff : (1u << left) - 1);
			const float *p0 = r0 + 2 * ox, *p1 = r1 + 2 * ox;
			__m512 l0 = _mm512_maskz_loadu_ps(klo, p0), h0 = _mm512_maskz_loadu_ps(khi, p0 + 16);
			__m512 l1 = _mm512_maskz_loadu_ps(klo, p1), h1 = _mm512_maskz_loadu_ps(khi, p1 + 16);
			__m512 a = _mm512_permutex2var_ps(l0, even, h0), b = _mm512_permutex2var_ps(l0, odd, h0);
			__m512 c = _mm512_permutex2var_ps(l1, even, h1), d = _mm512_permutex2var_ps(l1, odd, h1);
			__m512i ia = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), even);
			__m512i ic = _mm512_add_epi32(ia, _mm512_set1_epi32(w));
			__mmask16 tb = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), td = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
			a = _mm512_mask_blend_ps(tb, a, b);
			ia = _mm512_mask_add_epi32(ia, tb, ia, one);
			c = _mm512_mask_blend_ps(td, c, d);
			ic = _mm512_mask_add_epi32(ic, td, ic, one);
			__mmask16 tc = _mm512_cmp_ps_mask(c, a, _CMP_GT_OQ);
			_mm512_mask_storeu_ps(y + (size_t)oy * ow + ox, k, _mm512_mask_blend_ps(tc, a, c));
			_mm512_mask_storeu_epi32(arg + (size_t)oy * ow + ox, k, _mm512_mask_blend_epi32(tc, ia, ic));
		}
	}
}
#endif

void sk_maxpool2(const float *x, int w, int oh, int ow, float *y, int32_t *arg)
{
	PICK(maxpool2)(x, w, oh, ow, y, arg);
}

/* ---- tanh and the logistic function ---- */

static void tanh_c(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = tanhf(x[i]);
}

static void sigmoid_c(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] >= 0 ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i]) / (1.0f + expf(x[i]));
}

#ifdef SK_X86
/* exp(z): z = n ln2 + r with |r| <= ln2/2 (ln2 split in two for exactness),
 * Taylor polynomial of degree 7 (error < 1e-8 relative), scaled by 2^n. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 exp512(__m512 z)
{
	z = _mm512_max_ps(_mm512_min_ps(z, _mm512_set1_ps(88.5f)), _mm512_set1_ps(-104.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), z);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.0f / 5040);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, n);
}

/* tanh: an odd Taylor polynomial below |x| = 0.55 (no cancellation near
 * 0), (1 - t)/(1 + t) with t = exp(-2|x|) above; the sign copied back. */
AVX512 static void tanh_avx512(size_t n, const float *x, float *y)
{
	static const float c[8] = {1.0f, -1.0f / 3, 2.0f / 15, -17.0f / 315, 62.0f / 2835, -1382.0f / 155925,
	                           21844.0f / 6081075, -929569.0f / 638512875.0f};
	const __m512i signbit = _mm512_set1_epi32((int)0x80000000u);
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		__m512 v = _mm512_maskz_loadu_ps(k, x + i);
		__m512i sgn = _mm512_and_si512(_mm512_castps_si512(v), signbit);
		__m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(signbit, _mm512_castps_si512(v)));
		__m512 t = exp512(_mm512_mul_ps(a, _mm512_set1_ps(-2.0f)));
		__m512 big = _mm512_div_ps(_mm512_sub_ps(_mm512_set1_ps(1.0f), t), _mm512_add_ps(_mm512_set1_ps(1.0f), t));
		__m512 a2 = _mm512_mul_ps(a, a), p = _mm512_set1_ps(c[7]);
		for (int j = 6; j >= 0; j--)
			p = _mm512_fmadd_ps(p, a2, _mm512_set1_ps(c[j]));
		__m512 small = _mm512_mul_ps(p, a);
		__m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.55f), _CMP_LT_OQ), big, small);
		/* NaN stays NaN: the comparison is false and big is NaN */
		_mm512_mask_storeu_ps(y + i, k, _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sgn)));
	}
}

/* 1/(1 + exp(-x)), exact in relative terms for large negative x too. */
AVX512 static void sigmoid_avx512(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i += 16) {
		__mmask16 k = MASK16(n - i);
		__m512 v = _mm512_maskz_loadu_ps(k, x + i);
		__m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
		_mm512_mask_storeu_ps(y + i, k, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
	}
}
#endif

void sk_vtanh(size_t n, const float *x, float *y) { PICK(tanh)(n, x, y); }
void sk_vsigmoid(size_t n, const float *x, float *y) { PICK(sigmoid)(n, x, y); }
