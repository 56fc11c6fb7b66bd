/* sk_kernels.h: the numeric kernels under the layers: GEMM (OpenBLAS),
 * im2col/col2im, direct small convolutions and vector helpers.
 *
 * Vector helpers are compiled for AVX-512, AVX2+FMA and portable C; each
 * call runs the level sk_cpu_isa() chose (sk_cpu.h: SK_ISA caps it).  Nothing here
 * allocates, prints or starts threads; OpenBLAS runs on the number of
 * threads set with sk_blas_threads() (the engine sets 1 and runs replicas).
 */
#ifndef SK_KERNELS_H
#define SK_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Set the number of OpenBLAS threads (n >= 1). */
void sk_blas_threads(int n);

/* Row-major C = alpha * op(A) * op(B) + beta * C with op(A) m x k, op(B) k x n;
 * ta/tb non-zero transpose A/B. */
void sk_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);

/* Geometry of a 2-D convolution or pooling window over one C x H x W image. */
typedef struct sk_conv_geom {
	int c, h, w;       /* input */
	int k, stride, pad;
	int oh, ow;        /* output: (h + 2 pad - k) / stride + 1 */
} sk_conv_geom;

/* Fill oh/ow from the rest; -1 with an error when the window does not fit. */
int sk_conv_geom_init(sk_conv_geom *g, int c, int h, int w, int k, int stride, int pad);

/* Unfold one image x (C x H x W) into columns: row r = (ci*k + ki)*k + kj of
 * col holds the oh*ow input values under that kernel tap (zero in the
 * padding), starting at col + r*ldcol.  ldcol >= oh*ow lets several images
 * share one matrix side by side. */
void sk_im2col(const sk_conv_geom *g, const float *x, float *col, size_t ldcol);
/* The adjoint: x += fold(col). */
void sk_col2im(const sk_conv_geom *g, const float *col, size_t ldcol, float *x);

/* ---- vector helpers (runtime-dispatched) ---- */

void sk_vadd(size_t n, const float *a, float *y);            /* y += a */
void sk_vaxpy(size_t n, float s, const float *a, float *y);  /* y += s*a */
void sk_vscale(size_t n, float s, float *y);                 /* y *= s */
void sk_vset(size_t n, float v, float *y);                   /* y = v */
float sk_vsum(size_t n, const float *x);                     /* sum (float accumulators) */
float sk_vdot(size_t n, const float *a, const float *b);
/* y[i*n + j] += b[i] for i < m, j < n (bias per row) */
void sk_vadd_rows(size_t m, size_t n, const float *b, float *y);
/* y = x unless x <= 0, then slope*x (+0 for slope 0; a NaN stays NaN);
 * dx = x > 0 ? dy : slope*dy (y may be x, dx may be dy) */
void sk_vrelu(size_t n, float slope, const float *x, float *y);
void sk_vrelu_back(size_t n, float slope, const float *x, const float *dy, float *dx);
/* y = (float)x, bytes to floats */
void sk_vcvt_u8(size_t n, const uint8_t *x, float *y);
/* dropout of n values: y[j] = x[j] * keep, or +0 when value j's 16-bit
 * draw is below thresh; the draw is quarter j % 4 (low bits first) of the
 * SplitMix64 finaliser of key + (base + j / 4) * 0x9e3779b97f4a7c15, so a
 * value's fate depends on (key, base, j) only (y may be x) */
void sk_vdropout(size_t n, uint64_t key, uint64_t base, uint32_t thresh, float keep, const float *x, float *y);
/* SGD with momentum: m = mu*m + (g + wd*w), w -= lr*m (no fused
 * multiply-add: bitwise the same in every path) */
void sk_vsgd(size_t n, float lr, float mu, float wd, float *w, const float *g, float *m);
/* y = a*(x - shift) + b; y = a*u + b*(v - shift) + c; y = a + b (outputs may
 * alias inputs; the shift keeps precision when x is far from zero) */
void sk_vaffine(size_t n, float a, float shift, float b, const float *x, float *y);
void sk_vaffine2(size_t n, float a, const float *u, float b, const float *v, float shift, float c, float *y);
void sk_vadd3(size_t n, const float *a, const float *b, float *y);
/* sum(a * (b - shift)) */
float sk_vdot_shift(size_t n, const float *a, const float *b, float shift);
/* *s1 += sum(x - shift), *s2 += sum((x - shift)^2) (float within the call) */
void sk_vstats(size_t n, const float *x, float shift, double *s1, double *s2);
/* s[i] += sum_j y[i*n + j] (bias gradient per row) */
void sk_vsum_rows(size_t m, size_t n, const float *y, float *s);

/* dst[j*ldd + i] = src[i*lds + j] for i < m, j < n (blocked transpose). */
void sk_transpose(int m, int n, const float *src, size_t lds, float *dst, size_t ldd);
/* The same plus bias[j] on row j of dst (bias may be NULL). */
void sk_transpose_bias(int m, int n, const float *src, size_t lds, float *dst, size_t ldd, const float *bias);

/* ---- direct convolution (AVX-512), blocks of 16 channels ----
 *
 * "Pixels" index output positions of a group of images; poff[i] is the
 * offset (in floats) of pixel i's window origin in the (padded) input, and
 * toff[t] the offset of kernel tap t = (c*k + ki)*k + kj from that origin.
 * sk_dconv_ok() says whether these kernels may be used (the AVX-512 level,
 * and not disabled with SK_CONV=gemm). */
int sk_dconv_ok(void);
/* out[i][0..16) = sum_t x[poff[i] + toff[t]] * wt[t][0..16) for i < npix. */
void sk_dconv_fwd(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *wt, float *out);
/* dwt[t][0..16) += sum_i x[poff[i] + toff[t]] * dyt[i][0..16) for t < ntap. */
void sk_dconv_dw(const float *x, const int *toff, int ntap, const int *poff, int npix, const float *dyt, float *dwt);
/* Input gradient into a channel-blocked buffer dxt[pos][0..16): for each pixel
 * i and tap j < kk (kk = k*k, k <= 5), dxt[pofft[i] + koff[j]] +=
 * sum_o dy[dyoff[i] + o*ostride] * wd[j][o][0..16) for o < nout. */
void sk_dconv_dx(float *dxt, const int *pofft, const int *dyoff, int npix, const int *koff, int kk, const float *dy,
                 int nout, int ostride, const float *wd);

/* Stride-1 direct convolution of one padded image xp (C x hp x wp, window k)
 * with lanes over output pixels, for few output channels (o <= 8 fast).
 * fwd: y (o x oh x ow) = w (o x C*k*k) * windows + bias.  dw: adds the
 * weight gradient into acc (o x C*k*k x 16 partial sums, 64-byte aligned;
 * the gradient is the sum of each 16). */
void sk_pconv_fwd(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *w,
                  const float *bias, float *y);
void sk_pconv_dw(const float *xp, int c, int hp, int wp, int k, int oh, int ow, int o, const float *dy, float *acc);

/* 2x2 stride-2 max pooling of one plane of width w into oh x ow (2*oh and
 * 2*ow within the plane); arg[i] is the offset of output i's maximum in the
 * plane (the first of equal values). */
void sk_maxpool2(const float *x, int w, int oh, int ow, float *y, int32_t *arg);

/* y = tanh(x), y = 1/(1 + exp(-x)) (AVX-512: within 2e-7 of libm). */
void sk_vtanh(size_t n, const float *x, float *y);
void sk_vsigmoid(size_t n, const float *x, float *y);

#endif
