/* simkern.c: generalised-GEMM kernels for similarity and MEX (see
 * sk_simkern.h), and the patch geometry shared by both layers.
 *
 * The SIMD paths are written once, below, with GCC vector extensions, and
 * instantiated twice by including this file into itself: VW = 8 lanes under
 * target("avx2,fma") and VW = 16 lanes under target("avx512f").  The
 * portable C path further down is written independently as plain loops (it
 * shares only the exp polynomial, SIMKERN_EXP_PM1) and serves as the
 * reference the SIMD paths are tested against.
 */
#ifndef SIMKERN_EXP_PM1
/* The exp of every path, on the reduced range: exp(r) - 1 = r + r^2 poly(r)
 * (Cephes), for r a float or a vector of them. */
#define SIMKERN_EXP_PM1(r)                                                                                          \
	(((((((r) * 1.9875691500e-4f + 1.3981999507e-3f) * (r) + 8.3334519073e-3f) * (r) + 4.1665795894e-2f) * (r) + \
	    1.6666665459e-1f) * (r) + 5.0000001201e-1f) * ((r) * (r)) + (r))
#endif

#ifdef SIMKERN_TEMPLATE

#define VF VSFX(vf)
#define VI VSFX(vi)
#define VFU VSFX(vfu)
typedef float VF __attribute__((vector_size(VW * 4)));
typedef int VI __attribute__((vector_size(VW * 4)));
typedef float VFU __attribute__((vector_size(VW * 4), aligned(4)));

#define LD(p) (*(const VFU *)(const void *)(p))
#define ST(p, v) (*(VFU *)(void *)(p) = (v))
#define VSEL(m, a, b) ((VF)(((VI)(a) & (m)) | ((VI)(b) & ~(m))))
#define VINL VTGT static inline __attribute__((always_inline))

VINL float VSFX(hsum)(VF v)
{
#if VW == 16
	v = v + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
#endif
	v = v + __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3 VHI);
	v = v + __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5 VHI);
	v = v + __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6 VHI);
	return v[0];
}

/* exp for x <= 88 (clamped below at -87): Cephes-style range reduction,
 * exp(x) = 2^n (1 + pm1) with pm1 = r + r^2 poly(r).  With m1 set, returns
 * exp(x) - 1 = 2^n pm1 + (2^n - 1), accurate near 0 (n = 0 there). */
VINL VF VSFX(vexp_k)(VF x, const int m1)
{
	const VF z0 = {0}, lo = z0 - 87.0f, hi = z0 + 88.0f;
	x = VSEL(x < lo, lo, x);
	x = VSEL(x > hi, hi, x);
	VF t = x * 1.44269504088896341f + 0.5f;
	VI n = __builtin_convertvector(t, VI);
	VF nf = __builtin_convertvector(n, VF);
	n = n + (nf > t);
	nf = __builtin_convertvector(n, VF);
	VF r = x - nf * 0.693359375f;
	r = r - nf * -2.12194440e-4f;
	VF pm1 = SIMKERN_EXP_PM1(r);
	VF s = (VF)((n + 127) << 23);
	return m1 ? s * pm1 + (s - 1.0f) : s * pm1 + s;
}

VINL VF VSFX(vexp)(VF x) { return VSFX(vexp_k)(x, 0); }
VINL VF VSFX(vexpm1)(VF x) { return VSFX(vexp_k)(x, 1); }

/* log(x) for positive normal x (Cephes-style). */
VINL VF VSFX(vlog)(VF x)
{
	VI bits = (VI)x;
	VI e = ((bits >> 23) & 0xff) - 126;
	VF m = (VF)((bits & (int)0x807fffff) | 0x3f000000); /* in [0.5, 1) */
	VI lo = m < 0.70710678118654752f;
	e = e + lo;                                          /* lo is -1 where true */
	m = m + (VF)((VI)m & lo) - 1.0f;                     /* 2m - 1 or m - 1 */
	VF ef = __builtin_convertvector(e, VF), z = m * m;
	VF y = m * 7.0376836292e-2f - 1.1514610310e-1f;
	y = y * m + 1.1676998740e-1f;
	y = y * m - 1.2420140846e-1f;
	y = y * m + 1.4249322787e-1f;
	y = y * m - 1.6668057665e-1f;
	y = y * m + 2.0000714765e-1f;
	y = y * m - 2.4999993993e-1f;
	y = y * m + 3.3333331174e-1f;
	y = y * m * z;
	y = y + ef * -2.12194440e-4f;
	y = y - 0.5f * z;
	return m + y + ef * 0.693359375f;
}

/* log1p(u) for u > -1: log(1 + u) u / ((1 + u) - 1), exact-ish near 0. */
VINL VF VSFX(vlog1p)(VF u)
{
	VF w = u + 1.0f, d = w - 1.0f;
	VF r = VSFX(vlog)(w) * (u / VSEL(d == 0.0f, u - u + 1.0f, d));
	return VSEL(d == 0.0f, u, r);
}

/* ---- similarity ---- */

/* One template's contribution at one k: A += u |x - z| (L1) or u (x - z)^2. */
#define FSTEP(x, zs, us, A)                                                                                     \
	do {                                                                                                    \
		VF d_ = (x) - (zs);                                                                             \
		if (kind == SK_SIM_L1)                                                                          \
			A += (us) * (VF)((VI)d_ & 0x7fffffff);                                                  \
		else                                                                                            \
			A += ((us) * d_) * d_;                                                                  \
	} while (0)

/* Templates m .. m+T-1 (z, u: their rows from k0 on, K apart) at 2 VW
 * columns of kn patch rows (x: rows ld apart), into y (rows Q apart).  Sums
 * of earlier k chunks are read back from y, where they were stored
 * positive; the last chunk stores -sum.  Each output's operations are
 * the same whatever T and the chunking: the results do not depend on them. */
VINL void VSFX(fwd_tile)(const int kind, const int T, int kn, int K, int Q, const float *x, size_t ld,
                         const float *z, const float *u, int first, int last, float *y)
{
	VF a0[VTM], a1[VTM];
#pragma GCC unroll 8
	for (int t = 0; t < T; t++) {
		a0[t] = first ? (VF){0} : LD(y + (size_t)t * Q);
		a1[t] = first ? (VF){0} : LD(y + (size_t)t * Q + VW);
	}
	for (int k = 0; k < kn; k++) {
		VF x0 = LD(x + (size_t)k * ld), x1 = LD(x + (size_t)k * ld + VW);
#pragma GCC unroll 8
		for (int t = 0; t < T; t++) {
			float zs = z[(size_t)t * K + k], us = u[(size_t)t * K + k];
			FSTEP(x0, zs, us, a0[t]);
			FSTEP(x1, zs, us, a1[t]);
		}
	}
#pragma GCC unroll 8
	for (int t = 0; t < T; t++) {
		ST(y + (size_t)t * Q, last ? -a0[t] : a0[t]);
		ST(y + (size_t)t * Q + VW, last ? -a1[t] : a1[t]);
	}
}

/* Column tile by column tile (2 VW columns): with 4 templates or more the
 * tile's patch values are first copied contiguous (rows of P are Q apart,
 * often a multiple of 4 KB, so in place they all fall into one L1 set) and
 * then serve every template, VTM at a time, then 4, then one.  K is taken in
 * chunks of SIM_KC. */
#define SIM_KC 128
VINL void VSFX(sim_fwd_k)(const int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                          float *Y)
{
	VF buf[2 * SIM_KC];
	const int pack = M >= 4;
	for (int k0 = 0; k0 < K; k0 += SIM_KC) {
		int kn = K - k0 < SIM_KC ? K - k0 : SIM_KC, first = k0 == 0, last = k0 + kn == K;
		for (int q = 0; q < Q; q += 2 * VW) {
			const float *p = P + (size_t)k0 * Q + q, *x = p;
			size_t ld = (size_t)Q;
			if (pack) {
				for (int k = 0; k < kn; k++, p += Q) {
					buf[2 * k] = LD(p);
					buf[2 * k + 1] = LD(p + VW);
				}
				x = (const float *)buf;
				ld = 2 * VW;
			}
			int m = 0;
			for (; m + VTM <= M; m += VTM)
				VSFX(fwd_tile)(kind, VTM, kn, K, Q, x, ld, Z + (size_t)m * K + k0, U + (size_t)m * K + k0,
				               first, last, Y + (size_t)m * Q + q);
			for (; m + 4 <= M; m += 4)
				VSFX(fwd_tile)(kind, 4, kn, K, Q, x, ld, Z + (size_t)m * K + k0, U + (size_t)m * K + k0, first,
				               last, Y + (size_t)m * Q + q);
			for (; m < M; m++)
				VSFX(fwd_tile)(kind, 1, kn, K, Q, x, ld, Z + (size_t)m * K + k0, U + (size_t)m * K + k0, first,
				               last, Y + (size_t)m * Q + q);
		}
	}
}
#undef SIM_KC
#undef FSTEP

VTGT static void VSFX(sim_fwd)(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                               float *Y)
{
	if (kind == SK_SIM_L1)
		VSFX(sim_fwd_k)(SK_SIM_L1, M, K, Q, P, Z, U, Y);
	else
		VSFX(sim_fwd_k)(SK_SIM_L2, M, K, Q, P, Z, U, Y);
}

/* One template's contribution at (k, q).  L1: gs = g sgn(d) (sgn(0) = 0),
 * g |d| = gs d. */
#define BSTEP(g, zs, us, SZ, SU, DPA)                                                                           \
	do {                                                                                                    \
		VF d = x - (zs);                                                                                \
		if (kind == SK_SIM_L1) {                                                                        \
			VF gs = (VF)(((VI)(g) ^ ((VI)d & (-2147483647 - 1))) & (d != vzero));                   \
			DPA += (us) * gs;                                                                       \
			SZ += gs;                                                                               \
			SU -= gs * d;                                                                           \
		} else {                                                                                        \
			VF gd_ = (g) * d;                                                                       \
			DPA += (us) * gd_;                                                                      \
			SZ += gd_;                                                                              \
			SU -= gd_ * d;                                                                          \
		}                                                                                               \
	} while (0)

VINL void VSFX(sim_bwd_k)(const int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                          const float *G, float *dP, float *dZ, float *dU)
{
	const int QC = 1024;
	const VF vzero = {0};
	const float f = kind == SK_SIM_L1 ? 1.0f : 2.0f;
	for (int q0 = 0; q0 < Q; q0 += QC) {
		int q1 = q0 + QC < Q ? q0 + QC : Q, m = 0;
		for (; m + VTM <= M; m += VTM) {
			const float *gp[VTM];
			for (int t = 0; t < VTM; t++)
				gp[t] = G + (size_t)(m + t) * Q;
			for (int k = 0; k < K; k++) {
				float zz[VTM], uu[VTM];
				VF sz[VTM], su[VTM];
				for (int t = 0; t < VTM; t++) {
					zz[t] = Z[(size_t)(m + t) * K + k];
					uu[t] = f * U[(size_t)(m + t) * K + k];
					sz[t] = vzero;
					su[t] = vzero;
				}
				const float *p = P + (size_t)k * Q;
				float *dp = dP ? dP + (size_t)k * Q : NULL;
				for (int q = q0; q < q1; q += VW) {
					VF x = LD(p + q), dpa = {0};
#pragma GCC unroll 8
					for (int t = 0; t < VTM; t++)
						BSTEP(LD(gp[t] + q), zz[t], uu[t], sz[t], su[t], dpa);
					if (dp)
						ST(dp + q, m ? LD(dp + q) - dpa : -dpa);
				}
				for (int t = 0; t < VTM; t++) {
					dZ[(size_t)(m + t) * K + k] += uu[t] * VSFX(hsum)(sz[t]);
					dU[(size_t)(m + t) * K + k] += VSFX(hsum)(su[t]);
				}
			}
		}
		for (; m < M; m++) {
			const float *g0 = G + (size_t)m * Q;
			for (int k = 0; k < K; k++) {
				size_t i0 = (size_t)m * K + k;
				float z0 = Z[i0], u0 = f * U[i0];
				VF sz0 = {0}, su0 = {0};
				const float *p = P + (size_t)k * Q;
				float *dp = dP ? dP + (size_t)k * Q : NULL;
				for (int q = q0; q < q1; q += VW) {
					VF x = LD(p + q), dpa = {0};
					BSTEP(LD(g0 + q), z0, u0, sz0, su0, dpa);
					if (dp)
						ST(dp + q, m ? LD(dp + q) - dpa : -dpa);
				}
				dZ[i0] += u0 * VSFX(hsum)(sz0);
				dU[i0] += VSFX(hsum)(su0);
			}
		}
	}
}
#undef BSTEP

VTGT static void VSFX(sim_bwd)(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                               const float *G, float *dP, float *dZ, float *dU)
{
	if (kind == SK_SIM_L1)
		VSFX(sim_bwd_k)(SK_SIM_L1, M, K, Q, P, Z, U, G, dP, dZ, dU);
	else
		VSFX(sim_bwd_k)(SK_SIM_L2, M, K, Q, P, Z, U, G, dP, dZ, dU);
}

/* ---- MEX ---- */

VTGT static void VSFX(mex_fwd)(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax,
                               float *Y, float *CM, float *S)
{
	const int QC = 256;
	const float lK = softmax ? logf((float)K) : 0.0f, rK = 1.0f / (float)K;
	for (int q0 = 0; q0 < Q; q0 += QC) {
		int q1 = q0 + QC < Q ? q0 + QC : Q;
		for (int m = 0; m < M; m++) {
			const float x = xi[m];
			const float *b = B ? B + (size_t)m * K : NULL;
			size_t o = (size_t)m * Q;
			if (!softmax && fabsf(x) < SK_MEX_XI_SMALL) {
				mex_small_fwd(K, Q, q0, q1, P, b, x, Y + o, CM + o, S + o);
				continue;
			}
			for (int q = q0; q < q1; q += VW) {
				const float *p = P + q;
				VF cm = LD(p) + (b ? b[0] : 0.0f);
				if (x > 0)
					for (int k = 1; k < K; k++) {
						VF c = LD(p + (size_t)k * Q) + (b ? b[k] : 0.0f);
						cm = VSEL(c > cm, c, cm);
					}
				else
					for (int k = 1; k < K; k++) {
						VF c = LD(p + (size_t)k * Q) + (b ? b[k] : 0.0f);
						cm = VSEL(c < cm, c, cm);
					}
				ST(CM + o + q, cm);
				if (isinf(x)) {
					ST(Y + o + q, cm);
					{
					const VF one = {0};
					ST(S + o + q, one + 1.0f);
				}
					continue;
				}
				VF s = {0};
				for (int k = 0; k < K; k++) {
					VF c = LD(p + (size_t)k * Q) + (b ? b[k] : 0.0f);
					s += VSFX(vexpm1)(x * (c - cm));
				}
				ST(S + o + q, s);
				ST(Y + o + q, cm + (VSFX(vlog1p)(s * rK) + lK) / x);
			}
		}
	}
}

VTGT static void VSFX(mex_bwd)(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax,
                               const float *Y, const float *CM, const float *S, const float *G, float *dP,
                               float *dB, float *dxi, float *work)
{
	const int QC = 256;
	const float lK = softmax ? logf((float)K) : 0.0f, rK = 1.0f / (float)K;
	VF *acc = (VF *)(void *)work; /* K vectors; work is 64-byte aligned by contract */
	(void)Y;
	if (dP)
		for (size_t i = 0; i < (size_t)K * Q; i++)
			dP[i] = 0;
	for (int q0 = 0; q0 < Q; q0 += QC) {
		int q1 = q0 + QC < Q ? q0 + QC : Q;
		for (int m = 0; m < M; m++) {
			const float x = xi[m];
			const float *b = B ? B + (size_t)m * K : NULL;
			size_t o = (size_t)m * Q;
			if (!softmax && fabsf(x) < SK_MEX_XI_SMALL) {
				mex_small_bwd(K, Q, q0, q1, P, b, x, CM + o, S + o, G + o, dP, dB ? dB + (size_t)m * K : NULL,
				              dxi ? dxi + m : NULL);
				continue;
			}
			VF ax = {0};
			for (int k = 0; k < K; k++)
				acc[k] = ax;
			for (int q = q0; q < q1; q += VW) {
				const float *p = P + q;
				VF g = LD(G + o + q), cm = LD(CM + o + q);
				if (isinf(x)) {
					VI found = {0};
					for (int k = 0; k < K; k++) {
						VF c = LD(p + (size_t)k * Q) + (b ? b[k] : 0.0f);
						VI eq = (c == cm) & ~found;
						found |= eq;
						VF w = (VF)((VI)g & eq);
						if (dP)
							ST(dP + (size_t)k * Q + q, LD(dP + (size_t)k * Q + q) + w);
						acc[k] += w;
					}
					continue;
				}
				VF s = LD(S + o + q), is = g / (s + (float)K), pd = {0};
				VF t = (VSFX(vlog1p)(s * rK) + lK) / x;
				for (int k = 0; k < K; k++) {
					VF c = LD(p + (size_t)k * Q) + (b ? b[k] : 0.0f), d = c - cm;
					VF w = is * VSFX(vexp)(x * d);
					if (dP)
						ST(dP + (size_t)k * Q + q, LD(dP + (size_t)k * Q + q) + w);
					acc[k] += w;
					pd += w * d;
				}
				ax += pd - g * t;
			}
			if (dB)
				for (int k = 0; k < K; k++)
					dB[(size_t)m * K + k] += VSFX(hsum)(acc[k]);
			if (dxi && !isinf(x))
				dxi[m] += VSFX(hsum)(ax) / x;
		}
	}
}

#undef VF
#undef VI
#undef VFU
#undef LD
#undef ST
#undef VSEL
#undef VINL

#else /* the main file */

#include "sk_simkern.h"
#include "sk_base.h"
#include "sk_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalar pieces shared by all paths ---- */

static float exp_k(float x, int m1)
{
	if (x < -87.0f)
		x = -87.0f;
	if (x > 88.0f)
		x = 88.0f;
	float t = x * 1.44269504088896341f + 0.5f;
	int n = (int)floorf(t);
	float nf = (float)n;
	float r = x - nf * 0.693359375f;
	r = r - nf * -2.12194440e-4f;
	float pm1 = SIMKERN_EXP_PM1(r);
	union {
		int32_t i;
		float f;
	} e;
	e.i = (n + 127) << 23;
	return m1 ? e.f * pm1 + (e.f - 1.0f) : e.f * pm1 + e.f;
}

float sk_simkern_exp(float x) { return exp_k(x, 0); }
static float expm1_k(float x) { return exp_k(x, 1); }

/* Mean mode with |xi| small: y = mean + xi var / 2; CM = mean, S = var. */
static void mex_small_fwd(int K, int Q, int q0, int q1, const float *P, const float *b, float xi, float *Y,
                          float *CM, float *S)
{
	for (int q = q0; q < q1; q++) {
		double mu = 0, v = 0, mx = -INFINITY, mn = INFINITY, y;
		for (int k = 0; k < K; k++) {
			double c = (double)P[(size_t)k * Q + q] + (b ? b[k] : 0.0f);
			mu += c;
			mx = c > mx ? c : mx;
			mn = c < mn ? c : mn;
		}
		mu /= K;
		for (int k = 0; k < K; k++) {
			double d = (double)P[(size_t)k * Q + q] + (b ? b[k] : 0.0f) - mu;
			v += d * d;
		}
		v /= K;
		y = mu + xi * v / 2; /* the expansion, kept inside [min, max] */
		Y[q] = (float)(y > mx ? mx : y < mn ? mn : y);
		CM[q] = (float)mu;
		S[q] = (float)v;
	}
}

/* dP accumulates (callers zeroed it); db points at this instance's K offsets. */
static void mex_small_bwd(int K, int Q, int q0, int q1, const float *P, const float *b, float xi, const float *CM,
                          const float *S, const float *G, float *dP, float *db, float *dxi)
{
	double ax = 0;
	for (int q = q0; q < q1; q++) {
		float g = G[q];
		if (g == 0)
			continue;
		double mu = CM[q];
		for (int k = 0; k < K; k++) {
			double c = (double)P[(size_t)k * Q + q] + (b ? b[k] : 0.0f);
			float w = (float)(g * (1.0 + xi * (c - mu)) / K);
			if (dP)
				dP[(size_t)k * Q + q] += w;
			if (db)
				db[k] += w;
		}
		ax += (double)g * S[q] / 2;
	}
	if (dxi)
		*dxi += (float)ax;
}

/* ---- SIMD instantiations ---- */

#define SIMKERN_TEMPLATE 1
#define VW 8
#define VTM 4
#define VHI
#define VSFX(f) f##_avx2
#define VTGT __attribute__((target("avx2,fma"), optimize("fp-contract=fast")))
#include "simkern.c"
#undef VW
#undef VTM
#undef VHI
#undef VSFX
#undef VTGT
#define VW 16
#define VTM 8
#define VHI , 8, 9, 10, 11, 12, 13, 14, 15
#define VSFX(f) f##_avx512
#define VTGT __attribute__((target("avx512f"), optimize("fp-contract=fast")))
#include "simkern.c"
#undef VW
#undef VTM
#undef VHI
#undef VSFX
#undef VTGT
#undef SIMKERN_TEMPLATE

/* ---- portable C: plain loops, the reference ---- */

static void sim_fwd_c(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U, float *Y)
{
	for (int m = 0; m < M; m++) {
		float *y = Y + (size_t)m * Q;
		for (int q = 0; q < Q; q++)
			y[q] = 0;
		for (int k = 0; k < K; k++) {
			const float *p = P + (size_t)k * Q;
			float z = Z[(size_t)m * K + k], u = U[(size_t)m * K + k];
			if (kind == SK_SIM_L1)
				for (int q = 0; q < Q; q++)
					y[q] += u * fabsf(p[q] - z);
			else
				for (int q = 0; q < Q; q++) {
					float d = p[q] - z;
					y[q] += u * d * d;
				}
		}
		for (int q = 0; q < Q; q++)
			y[q] = -y[q];
	}
}

static void sim_bwd_c(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U, const float *G,
                      float *dP, float *dZ, float *dU)
{
	if (dP)
		memset(dP, 0, sizeof(float) * (size_t)K * Q);
	for (int m = 0; m < M; m++) {
		const float *g = G + (size_t)m * Q;
		for (int k = 0; k < K; k++) {
			const float *p = P + (size_t)k * Q;
			float *dp = dP ? dP + (size_t)k * Q : NULL;
			size_t i = (size_t)m * K + k;
			float z = Z[i], u = U[i];
			double sz = 0, su = 0;
			for (int q = 0; q < Q; q++) {
				float d = p[q] - z;
				if (kind == SK_SIM_L1) {
					float s = (float)((d > 0) - (d < 0));
					if (dp)
						dp[q] -= u * s * g[q];
					sz += (double)g[q] * s;
					su -= (double)g[q] * fabsf(d);
				} else {
					if (dp)
						dp[q] -= 2 * u * d * g[q];
					sz += (double)g[q] * d;
					su -= (double)g[q] * d * d;
				}
			}
			dZ[i] += (float)((kind == SK_SIM_L1 ? u : 2 * u) * sz);
			dU[i] += (float)su;
		}
	}
}

static void mex_fwd_c(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax, float *Y,
                      float *CM, float *S)
{
	const float lK = softmax ? logf((float)K) : 0.0f, rK = 1.0f / (float)K;
	for (int m = 0; m < M; m++) {
		const float x = xi[m];
		const float *b = B ? B + (size_t)m * K : NULL;
		size_t o = (size_t)m * Q;
		if (!softmax && fabsf(x) < SK_MEX_XI_SMALL) {
			mex_small_fwd(K, Q, 0, Q, P, b, x, Y + o, CM + o, S + o);
			continue;
		}
		for (int q = 0; q < Q; q++) {
			float cm = P[q] + (b ? b[0] : 0.0f), s = 0;
			for (int k = 1; k < K; k++) {
				float c = P[(size_t)k * Q + q] + (b ? b[k] : 0.0f);
				if (x > 0 ? c > cm : c < cm)
					cm = c;
			}
			CM[o + q] = cm;
			if (isinf(x)) {
				Y[o + q] = cm;
				S[o + q] = 1;
				continue;
			}
			for (int k = 0; k < K; k++) {
				float c = P[(size_t)k * Q + q] + (b ? b[k] : 0.0f);
				s += expm1_k(x * (c - cm));
			}
			S[o + q] = s;
			Y[o + q] = cm + (log1pf(s * rK) + lK) / x;
		}
	}
}

static void mex_bwd_c(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax,
                      const float *Y, const float *CM, const float *S, const float *G, float *dP, float *dB,
                      float *dxi, float *work)
{
	const float lK = softmax ? logf((float)K) : 0.0f, rK = 1.0f / (float)K;
	double *acc = (double *)(void *)work; /* K doubles fit in K * 16 floats */
	(void)Y;
	if (dP)
		memset(dP, 0, sizeof(float) * (size_t)K * Q);
	for (int m = 0; m < M; m++) {
		const float x = xi[m];
		const float *b = B ? B + (size_t)m * K : NULL;
		size_t o = (size_t)m * Q;
		double ax = 0;
		if (!softmax && fabsf(x) < SK_MEX_XI_SMALL) {
			mex_small_bwd(K, Q, 0, Q, P, b, x, CM + o, S + o, G + o, dP, dB ? dB + (size_t)m * K : NULL,
			              dxi ? dxi + m : NULL);
			continue;
		}
		for (int k = 0; k < K; k++)
			acc[k] = 0;
		for (int q = 0; q < Q; q++) {
			float g = G[o + q], cm = CM[o + q];
			if (isinf(x)) {
				for (int k = 0; k < K; k++)
					if (P[(size_t)k * Q + q] + (b ? b[k] : 0.0f) == cm) {
						if (dP)
							dP[(size_t)k * Q + q] += g;
						acc[k] += g;
						break;
					}
				continue;
			}
			float is = g / (S[o + q] + (float)K), t = (log1pf(S[o + q] * rK) + lK) / x, pd = 0;
			for (int k = 0; k < K; k++) {
				float c = P[(size_t)k * Q + q] + (b ? b[k] : 0.0f), d = c - cm;
				float w = is * sk_simkern_exp(x * d);
				if (dP)
					dP[(size_t)k * Q + q] += w;
				acc[k] += w;
				pd += w * d;
			}
			ax += pd - g * t;
		}
		if (dB)
			for (int k = 0; k < K; k++)
				dB[(size_t)m * K + k] += (float)acc[k];
		if (dxi && !isinf(x))
			dxi[m] += (float)(ax / x);
	}
}

/* ---- NaN-skipping similarity (portable only) ---- */

#define LOG2PI 1.8378770664093453f

void sk_sim_fwd_nan(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                    const float *LA, float *Y)
{
	for (int m = 0; m < M; m++)
		for (int q = 0; q < Q; q++) {
			double acc = 0, la = 0;
			for (int k = 0; k < K; k++) {
				float x = P[(size_t)k * Q + q];
				size_t i = (size_t)m * K + k;
				if (isnan(x))
					continue;
				float d = x - Z[i];
				acc -= (double)U[i] * (kind == SK_SIM_L1 ? fabsf(d) : d * d);
				if (LA)
					la += (double)LA[i] - LOG2PI;
			}
			Y[(size_t)m * Q + q] = (float)(LA ? 0.5 * (acc + la) : acc);
		}
}

void sk_sim_bwd_nan(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                    const float *LA, const float *G, float *dP, float *dZ, float *dU, float *dLA)
{
	if (dP)
		memset(dP, 0, sizeof(float) * (size_t)K * Q);
	for (int m = 0; m < M; m++)
		for (int q = 0; q < Q; q++) {
			float g = G[(size_t)m * Q + q] * (LA ? 0.5f : 1.0f);
			if (g == 0)
				continue;
			for (int k = 0; k < K; k++) {
				float x = P[(size_t)k * Q + q];
				size_t i = (size_t)m * K + k;
				if (isnan(x))
					continue;
				float d = x - Z[i], u = U[i];
				if (kind == SK_SIM_L1) {
					float s = (float)((d > 0) - (d < 0));
					if (dP)
						dP[(size_t)k * Q + q] -= g * u * s;
					dZ[i] += g * u * s;
					dU[i] -= g * fabsf(d);
				} else {
					if (dP)
						dP[(size_t)k * Q + q] -= 2 * g * u * d;
					dZ[i] += 2 * g * u * d;
					dU[i] -= g * d * d;
				}
				if (LA && dLA)
					dLA[i] += g;
			}
		}
}

/* ---- dispatch: the kernel of the level in use (sk_cpu.h) ---- */

#define PICK(f) (sk_cpu_isa() == SK_ISA_AVX512 ? f##_avx512 : sk_cpu_isa() == SK_ISA_AVX2 ? f##_avx2 : f##_c)

void sk_sim_fwd(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U, float *Y)
{
	PICK(sim_fwd)(kind, M, K, Q, P, Z, U, Y);
}

void sk_sim_bwd(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U, const float *G,
                float *dP, float *dZ, float *dU)
{
	PICK(sim_bwd)(kind, M, K, Q, P, Z, U, G, dP, dZ, dU);
}

void sk_mex_fwd(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax, float *Y,
                float *CM, float *S)
{
	PICK(mex_fwd)(M, K, Q, P, B, xi, softmax, Y, CM, S);
}

void sk_mex_bwd(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax, const float *Y,
                const float *CM, const float *S, const float *G, float *dP, float *dB, float *dxi, float *work)
{
	PICK(mex_bwd)(M, K, Q, P, B, xi, softmax, Y, CM, S, G, dP, dB, dxi, work);
}

/* ---- patch geometry ---- */

int sk_patchgeom_init(sk_patchgeom *g)
{
	if (g->C < 1 || g->H < 1 || g->W < 1)
		return sk_error("input %dx%dx%d is empty", g->C, g->H, g->W);
	/* the option names of the sim and mex layers */
	if (sk_window(g->C, g->cb, g->sc, g->pc, "cb", "cs", "pad", &g->Co) < 0 ||
	    sk_window(g->H, g->kh, g->sh, g->ph, "kh", "sh (stride)", "pad", &g->Ho) < 0 ||
	    sk_window(g->W, g->kw, g->sw, g->pw, "kw", "sw (stride)", "pad", &g->Wo) < 0)
		return -1;
	if ((int64_t)g->cb * g->kh * g->kw > (1 << 24) || (int64_t)g->Co * g->Ho * g->Wo > (1 << 26))
		return sk_error("block of %lld elements or %lld positions is too large",
		                (long long)g->cb * g->kh * g->kw, (long long)g->Co * g->Ho * g->Wo);
	g->K = g->cb * g->kh * g->kw;
	g->Q = g->Co * g->Ho * g->Wo;
	return 0;
}

#define PCHUNK 256

/* Decode positions pos[j0 .. j0+nj) into input base coordinates. */
static void decode(const sk_patchgeom *g, const int *pos, int j0, int nj, int *bc, int *bi, int *bj)
{
	int howo = g->Ho * g->Wo;
	for (int j = 0; j < nj; j++) {
		int q = pos ? pos[j0 + j] : j0 + j, r = q % howo;
		bc[j] = (q / howo) * g->sc - g->pc;
		bi[j] = (r / g->Wo) * g->sh - g->ph;
		bj[j] = (r % g->Wo) * g->sw - g->pw;
	}
}

/* All positions in natural order: row by row, contiguous where possible. */
static void im2col_all(const sk_patchgeom *g, int n, const float *x, float *P, size_t ld, float fill)
{
	size_t insz = (size_t)g->C * g->H * g->W;
	for (int e = 0; e < n; e++) {
		const float *xe = x + (size_t)e * insz;
		int k = 0;
		for (int a = 0; a < g->cb; a++)
			for (int b = 0; b < g->kh; b++)
				for (int d = 0; d < g->kw; d++, k++) {
					float *row = P + (size_t)k * ld + (size_t)e * g->Q;
					for (int co = 0; co < g->Co; co++) {
						int ci = co * g->sc - g->pc + a;
						for (int i = 0; i < g->Ho; i++) {
							int ii = i * g->sh - g->ph + b;
							float *dst = row + ((size_t)co * g->Ho + i) * g->Wo;
							if (ci < 0 || ci >= g->C || ii < 0 || ii >= g->H) {
								for (int j = 0; j < g->Wo; j++)
									dst[j] = fill;
								continue;
							}
							const float *src = xe + ((size_t)ci * g->H + ii) * g->W;
							if (g->sw == 1) {
								int off = d - g->pw, j = 0;
								for (; j < g->Wo && j + off < 0; j++)
									dst[j] = fill;
								for (; j < g->Wo && j + off < g->W; j++)
									dst[j] = src[j + off];
								for (; j < g->Wo; j++)
									dst[j] = fill;
							} else
								for (int j = 0; j < g->Wo; j++) {
									int jj = j * g->sw - g->pw + d;
									dst[j] = jj >= 0 && jj < g->W ? src[jj] : fill;
								}
						}
					}
				}
	}
}

static void col2im_all(const sk_patchgeom *g, int n, const float *dP, size_t ld, float *dx)
{
	size_t insz = (size_t)g->C * g->H * g->W;
	for (int e = 0; e < n; e++) {
		float *xe = dx + (size_t)e * insz;
		int k = 0;
		for (int a = 0; a < g->cb; a++)
			for (int b = 0; b < g->kh; b++)
				for (int d = 0; d < g->kw; d++, k++) {
					const float *row = dP + (size_t)k * ld + (size_t)e * g->Q;
					for (int co = 0; co < g->Co; co++) {
						int ci = co * g->sc - g->pc + a;
						if (ci < 0 || ci >= g->C)
							continue;
						for (int i = 0; i < g->Ho; i++) {
							int ii = i * g->sh - g->ph + b;
							if (ii < 0 || ii >= g->H)
								continue;
							const float *src = row + ((size_t)co * g->Ho + i) * g->Wo;
							float *dst = xe + ((size_t)ci * g->H + ii) * g->W;
							if (g->sw == 1) {
								int off = d - g->pw, j0 = off < 0 ? -off : 0;
								int j1 = g->W - off < g->Wo ? g->W - off : g->Wo;
								for (int j = j0; j < j1; j++)
									dst[j + off] += src[j];
							} else
								for (int j = 0; j < g->Wo; j++) {
									int jj = j * g->sw - g->pw + d;
									if (jj >= 0 && jj < g->W)
										dst[jj] += src[j];
								}
						}
					}
				}
	}
}

void sk_patch_im2col(const sk_patchgeom *g, int n, const float *x, const int *pos, int npos, float *P, size_t ld,
               float fill)
{
	int bc[PCHUNK], bi[PCHUNK], bj[PCHUNK];
	size_t insz = (size_t)g->C * g->H * g->W;
	if (!pos && npos == g->Q) {
		im2col_all(g, n, x, P, ld, fill);
		return;
	}
	for (int j0 = 0; j0 < npos; j0 += PCHUNK) {
		int nj = npos - j0 < PCHUNK ? npos - j0 : PCHUNK;
		decode(g, pos, j0, nj, bc, bi, bj);
		for (int e = 0; e < n; e++) {
			const float *xe = x + (size_t)e * insz;
			size_t col = (size_t)e * npos + j0;
			int k = 0;
			for (int a = 0; a < g->cb; a++)
				for (int b = 0; b < g->kh; b++)
					for (int d = 0; d < g->kw; d++, k++) {
						float *row = P + (size_t)k * ld + col;
						for (int j = 0; j < nj; j++) {
							int c = bc[j] + a, i = bi[j] + b, w = bj[j] + d;
							row[j] = (c >= 0 && c < g->C && i >= 0 && i < g->H && w >= 0 && w < g->W)
							                 ? xe[((size_t)c * g->H + i) * g->W + w]
							                 : fill;
						}
					}
		}
	}
}

void sk_patch_col2im(const sk_patchgeom *g, int n, const float *dP, size_t ld, const int *pos, int npos, float *dx)
{
	int bc[PCHUNK], bi[PCHUNK], bj[PCHUNK];
	size_t insz = (size_t)g->C * g->H * g->W;
	if (!pos && npos == g->Q) {
		col2im_all(g, n, dP, ld, dx);
		return;
	}
	for (int j0 = 0; j0 < npos; j0 += PCHUNK) {
		int nj = npos - j0 < PCHUNK ? npos - j0 : PCHUNK;
		decode(g, pos, j0, nj, bc, bi, bj);
		for (int e = 0; e < n; e++) {
			float *xe = dx + (size_t)e * insz;
			size_t col = (size_t)e * npos + j0;
			int k = 0;
			for (int a = 0; a < g->cb; a++)
				for (int b = 0; b < g->kh; b++)
					for (int d = 0; d < g->kw; d++, k++) {
						const float *row = dP + (size_t)k * ld + col;
						for (int j = 0; j < nj; j++) {
							int c = bc[j] + a, i = bi[j] + b, w = bj[j] + d;
							if (c >= 0 && c < g->C && i >= 0 && i < g->H && w >= 0 && w < g->W)
								xe[((size_t)c * g->H + i) * g->W + w] += row[j];
						}
					}
		}
	}
}

#endif
