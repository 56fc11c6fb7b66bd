/* winograd.c: Winograd F(2x2,3x3) and F(4x4,3x3) convolutions (see
 * sk_winograd.h).
 *
 * Layout.  Inside a plan, images are channel-last with the channels padded
 * to cp (a multiple of 16): the input of one image sits in xp,
 * (th*m + 2) x (tw*m + 2) positions of cp floats, its interior at (pad, pad)
 * and zeros around it, so every tile reads in bounds.  Transformed tiles go
 * to V, one plane per transform point xi of G*T rows (T tiles per image) by
 * cp; the products to M, planes of G*T rows by kp.  U holds the transformed
 * filters, a C x K matrix per point.  The transforms work on vectors of 16
 * channels: one body, written with GCC vector types, compiled for AVX-512,
 * AVX2+FMA and plain C and chosen once at run time.  Without FMA
 * contraction (ISO C mode) the three give the same bits.
 */
#include "sk_winograd.h"
#include "sk_base.h"
#include "sk_cpu.h"
#include "sk_kernels.h"

#include <stdlib.h>
#include <string.h>

struct sk_wino {
	int c, h, w, k, pad, m, a;   /* a = m + 2: input tile, transform points per side */
	int oh, ow, th, tw, T;       /* output size, tiles per column and row, per image */
	int cp, kp;                  /* channels rounded up to 16 */
	int hp, wp;                  /* extent of xp: th*m + 2, tw*m + 2 */
	int G;                       /* images per group */
	size_t xs, ms;               /* floats per plane of V and M */
	float *xp;                   /* hp x wp x cp: one input image */
	float *dxp;                  /* hp x wp x cp: its gradient */
	float *yc;                   /* th*m x tw*m x kp: output tiles of one image */
	float *dyc;                  /* th*m x tw*m x kp: one output gradient (zeros outside) */
	float *V, *M;                /* a*a planes */
	float *U;                    /* a*a x C x kp */
	float *Ut;                   /* a*a x K x cp (the AVX-512 products) */
	float *dU;                   /* a*a x cp x kp */
	int own;                     /* products by our AVX-512 kernel, not sgemm */
	float *wt;                   /* C x 9 x kp: the filters (or their gradient) transposed */
	float *wtmp;                 /* K x C x 9: the filter gradient */
	void *mem;                   /* the block of the buffers above */
};

/* ---- transform matrices (Lavin and Gray 2016) ----
 * Forward, per tile d (a x a) and filter g (3 x 3):
 *   Y = AT [ (G g G^T) .* (BT d BT^T) ] AT^T
 * and its adjoint for the gradients. */
static const float BT2[4 * 4] = {
	1, 0, -1, 0,
	0, 1, 1, 0,
	0, -1, 1, 0,
	0, 1, 0, -1,
};
static const float AT2[2 * 4] = {
	1, 1, 1, 0,
	0, 1, -1, -1,
};
static const float G2[4 * 3] = {
	1, 0, 0,
	0.5, 0.5, 0.5,
	0.5, -0.5, 0.5,
	0, 0, 1,
};
static const float BT4[6 * 6] = {
	4, 0, -5, 0, 1, 0,
	0, -4, -4, 1, 1, 0,
	0, 4, -4, -1, 1, 0,
	0, -2, -1, 2, 1, 0,
	0, 2, -1, -2, 1, 0,
	0, 4, 0, -5, 0, 1,
};
static const float AT4[4 * 6] = {
	1, 1, 1, 1, 1, 0,
	0, 1, -1, 2, -2, 0,
	0, 1, 1, 4, 4, 0,
	0, 1, -1, 8, -8, 1,
};
static const float G4[6 * 3] = {
	1.0f / 4, 0, 0,
	-1.0f / 6, -1.0f / 6, -1.0f / 6,
	-1.0f / 6, 1.0f / 6, -1.0f / 6,
	1.0f / 24, 1.0f / 12, 1.0f / 6,
	1.0f / 24, -1.0f / 12, 1.0f / 6,
	0, 0, 1,
};

/* ---- tile transforms on 16 channels ---- */

typedef float v16 __attribute__((vector_size(64)));
/* the same for memory: any alignment, may alias the floats it loads */
typedef float v16m __attribute__((vector_size(64), aligned(4), may_alias));
#define INL static inline __attribute__((always_inline))
#define ld(p) (*(const v16m *)(const void *)(p))
#define st(p, v) (*(v16m *)(void *)(p) = (v))

/* Y[a*ya + b*yb] = sum over r < q of L(a, r) X[b*xb + r*xr] for a < na,
 * b < nb, L(a, r) = L[a*si + r*sj].  Zero coefficients are skipped and ones
 * not multiplied: with constant arguments the compiler unrolls it into the
 * plain sums. */
INL void lin(const float *L, int si, int sj, int na, int nb, int q, const v16 *X, int xb, int xr, v16 *Y, int ya,
             int yb)
{
#pragma GCC unroll 6
	for (int a = 0; a < na; a++)
#pragma GCC unroll 6
		for (int b = 0; b < nb; b++) {
			v16 s = {0};
			int first = 1;
#pragma GCC unroll 6
			for (int r = 0; r < q; r++) {
				float c = L[a * si + r * sj];
				if (c == 0)
					continue;
				const v16 x = X[b * xb + r * xr];
				v16 v = c == 1 ? x : c == -1 ? -x : c * x;
				s = first ? v : s + v;
				first = 0;
			}
			Y[a * ya + b * yb] = s;
		}
}
/* Y (p x p) = L X L^T with X q x q (L(i, j) as above, so that a matrix and
 * its transpose share one table). */
INL void tf(const float *L, int p, int q, int si, int sj, const v16 *X, v16 *Y)
{
	v16 t[6 * 6];
	lin(L, si, sj, p, q, q, X, 1, q, t, q, 1);   /* t = L X (p x q) */
	lin(L, si, sj, p, p, q, t, q, 1, Y, 1, p);   /* Y = t L^T (p x p) */
}

/* F(4x4,3x3) in one dimension, factored (Lavin and Gray's forms, about
 * 20 operations instead of the 28 of the plain sums): BT4 x, its adjoint
 * BT4^T y, AT4 y and its adjoint AT4^T g.  x[i*sx] in, y[i*sy] out. */
INL void bt4(const v16 *x, int sx, v16 *y, int sy)
{
	v16 x0 = x[0], x1 = x[sx], x2 = x[2 * sx], x3 = x[3 * sx], x4 = x[4 * sx], x5 = x[5 * sx];
	v16 s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d43 = x4 - x3, e = x4 - x2, f = x3 - x1;
	y[0] = 4.0f * x0 - 5.0f * x2 + x4;
	y[sy] = s34 - 4.0f * s12;
	y[2 * sy] = d43 + 4.0f * d12;
	y[3 * sy] = e + 2.0f * f;
	y[4 * sy] = e - 2.0f * f;
	y[5 * sy] = 4.0f * x1 - 5.0f * x3 + x5;
}
INL void b4(const v16 *x, int sx, v16 *y, int sy)
{
	v16 y0 = x[0], y1 = x[sx], y2 = x[2 * sx], y3 = x[3 * sx], y4 = x[4 * sx], y5 = x[5 * sx];
	v16 s12 = y1 + y2, d12 = y1 - y2, s34 = y3 + y4, d34 = y3 - y4;
	y[0] = 4.0f * y0;
	y[sy] = 4.0f * (y5 - d12) - 2.0f * d34;
	y[2 * sy] = -5.0f * y0 - 4.0f * s12 - s34;
	y[3 * sy] = d12 + 2.0f * d34 - 5.0f * y5;
	y[4 * sy] = y0 + s12 + s34;
	y[5 * sy] = y5;
}
INL void at4(const v16 *x, int sx, v16 *y, int sy)
{
	v16 y0 = x[0], y1 = x[sx], y2 = x[2 * sx], y3 = x[3 * sx], y4 = x[4 * sx], y5 = x[5 * sx];
	v16 s12 = y1 + y2, d12 = y1 - y2, s34 = y3 + y4, d34 = y3 - y4;
	y[0] = y0 + s12 + s34;
	y[sy] = d12 + 2.0f * d34;
	y[2 * sy] = s12 + 4.0f * s34;
	y[3 * sy] = d12 + 8.0f * d34 + y5;
}
INL void a4(const v16 *x, int sx, v16 *y, int sy)
{
	v16 g0 = x[0], g1 = x[sx], g2 = x[2 * sx], g3 = x[3 * sx];
	v16 e = g0 + g2, o = g1 + g3, e2 = g0 + 4.0f * g2, o2 = 2.0f * g1 + 8.0f * g3;
	y[0] = g0;
	y[sy] = e + o;
	y[2 * sy] = e - o;
	y[3 * sy] = e2 + o2;
	y[4 * sy] = e2 - o2;
	y[5 * sy] = g3;
}
/* Y (p x p) = F applied to the columns of X (q x q), then to the rows. */
#define TF2(F, p, q, X, Y)                                                                                   \
	do {                                                                                                     \
		v16 t_[6 * 6];                                                                                       \
		for (int j_ = 0; j_ < (q); j_++)                                                                     \
			F((X) + j_, (q), t_ + j_, (q));                                                                  \
		for (int i_ = 0; i_ < (p); i_++)                                                                     \
			F(t_ + i_ * (q), 1, (Y) + i_ * (p), 1);                                                          \
	} while (0)

/* The four tile transforms walk the tiles the same way: for every tile of
 * one image (rows t0.. of the planes) and every 16 channels, a tile side in
 * the image buffer img (e x e positions at (ty*m, tx*m)) and a point side,
 * the a*a planes at pl, one transformed into the other:
 *   TF_IN  planes V  = BT d BT^T     of the tiles of xp (e = a)
 *   TF_DX  tiles dxp += BT^T dV BT   of the planes V, in tile order (e = a)
 *   TF_OUT tiles yc  = AT M AT^T     of the planes M (e = m)
 *   TF_DY  planes M  = AT^T dY AT    of the tiles of dyc (e = m) */
enum { TF_IN, TF_DX, TF_OUT, TF_DY };

INL void tile_tf(const sk_wino *P, const int kind, float *img, float *pl, int t0, const int m)
{
	const int a = m + 2, in = kind == TF_IN || kind == TF_DX, e = in ? a : m;
	const int to_planes = kind == TF_IN || kind == TF_DY;
	const int cs = in ? P->cp : P->kp;                            /* floats per position */
	const size_t lw = in ? (size_t)P->wp : (size_t)P->tw * m;     /* positions per image row */
	const size_t ps = in ? P->xs : P->ms;                         /* floats per plane */
	const float *BT = m == 2 ? BT2 : BT4, *AT = m == 2 ? AT2 : AT4;
	v16 d[6 * 6], y[6 * 6];
	for (int ty = 0; ty < P->th; ty++)
		for (int tx = 0; tx < P->tw; tx++) {
			size_t row = (size_t)(t0 + ty * P->tw + tx) * cs;
			for (int cb = 0; cb < cs; cb += 16) {
				float *o = img + ((size_t)ty * m * lw + (size_t)tx * m) * cs + cb, *q = pl + row + cb;
				if (to_planes)
					for (int i = 0; i < e; i++)
						for (int j = 0; j < e; j++)
							d[i * e + j] = ld(o + ((size_t)i * lw + j) * cs);
				else
					for (int xi = 0; xi < a * a; xi++)
						d[xi] = ld(q + xi * ps);
				if (kind == TF_IN && m == 4)
					TF2(bt4, 6, 6, d, y);
				else if (kind == TF_IN)
					tf(BT, a, a, a, 1, d, y);
				else if (kind == TF_DX && m == 4)
					TF2(b4, 6, 6, d, y);
				else if (kind == TF_DX)
					tf(BT, a, a, 1, a, d, y);
				else if (kind == TF_OUT && m == 4)
					TF2(at4, 4, 6, d, y);
				else if (kind == TF_OUT)
					tf(AT, m, a, a, 1, d, y);
				else if (m == 4)
					TF2(a4, 6, 4, d, y);
				else
					tf(AT, a, m, 1, a, d, y);
				if (to_planes)
					for (int xi = 0; xi < a * a; xi++)
						st(q + xi * ps, y[xi]);
				else
					for (int i = 0; i < e; i++)
						for (int j = 0; j < e; j++) {
							float *t = o + ((size_t)i * lw + j) * cs;
							if (kind == TF_DX)
								st(t, ld(t) + y[i * e + j]);
							else
								st(t, y[i * e + j]);
						}
			}
		}
}

/* The filters, 16 at a time: forward, U[xi][c][k] = (G g G^T)[xi] for the
 * filters g[c][0..9)[k] of wt (the weights transposed: C x 9 x kp); back,
 * the adjoint dwt[c][0..9)[k] = (G^T dU G) from dU[xi][c][k] (cp rows). */
INL void filt_tf(const sk_wino *P, const int back, const float *src, float *dst, const int m)
{
	const int a = m + 2;
	const float *G = m == 2 ? G2 : G4;
	const size_t us = (size_t)(back ? P->cp : P->c) * P->kp;    /* floats per point of U */
	v16 d[6 * 6], y[6 * 6];
	for (int c = 0; c < P->c; c++)
		for (int kb = 0; kb < P->kp; kb += 16) {
			size_t wo = (size_t)c * 9 * P->kp + kb, uo = (size_t)c * P->kp + kb;
			for (int i = 0; i < (back ? a * a : 9); i++)
				d[i] = back ? ld(src + uo + i * us) : ld(src + wo + (size_t)i * P->kp);
			if (back)
				tf(G, 3, a, 1, 3, d, y);
			else
				tf(G, a, 3, 3, 1, d, y);
			for (int i = 0; i < (back ? 9 : a * a); i++)
				st(back ? dst + wo + (size_t)i * P->kp : dst + uo + i * us, y[i]);
		}
}

struct wk {
	void (*tiles)(const sk_wino *, int, float *, float *, int);
	void (*filt)(const sk_wino *, int, const float *, float *);
};

/* one instruction set's transforms; m, the kind and the direction become
 * constants inside */
#define TILES(K) (P->m == 2 ? tile_tf(P, K, img, pl, t0, 2) : tile_tf(P, K, img, pl, t0, 4))
#define KERNELS(SUF, ATTR)                                                                                   \
	ATTR static void tiles_##SUF(const sk_wino *P, int kind, float *img, float *pl, int t0)                  \
	{                                                                                                        \
		switch (kind) {                                                                                      \
		case TF_IN: TILES(TF_IN); break;                                                                     \
		case TF_DX: TILES(TF_DX); break;                                                                     \
		case TF_OUT: TILES(TF_OUT); break;                                                                   \
		default: TILES(TF_DY);                                                                               \
		}                                                                                                    \
	}                                                                                                        \
	ATTR static void filt_##SUF(const sk_wino *P, int back, const float *src, float *dst)                    \
	{                                                                                                        \
		if (back)                                                                                            \
			P->m == 2 ? filt_tf(P, 1, src, dst, 2) : filt_tf(P, 1, src, dst, 4);                             \
		else                                                                                                 \
			P->m == 2 ? filt_tf(P, 0, src, dst, 2) : filt_tf(P, 0, src, dst, 4);                             \
	}                                                                                                        \
	static const struct wk wk_##SUF = {tiles_##SUF, filt_##SUF};

KERNELS(generic, )
#if defined(__x86_64__) || defined(__i386__)
KERNELS(avx2, __attribute__((target("avx2,fma"))))
KERNELS(avx512, __attribute__((target("avx512f"))))
#endif

/* ---- the products, AVX-512 ----
 * O (rows x 16*nb) = A (rows x kred) B (kred x 16*nb), or O += A^T B for
 * the filter gradient; A(i, r) = A[i*si + r*sr].  OpenBLAS would spend as
 * much on zeroing and packing these short products (kred = C or K, 16 to
 * 64) as on the multiply-adds; here the blocks of B are one to four
 * vectors, R rows of A are broadcast against them, and R x nb accumulators
 * stay in registers over the whole reduction. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX512_INL __attribute__((target("avx512f"), always_inline)) static inline

AVX512_INL void prod_blk(const float *A, size_t si, size_t sr, int kred, const float *B, size_t ldb, float *O,
                         size_t ldo, int acc, const int R, const int NB)
{
	__m512 c[16][4];
#pragma GCC unroll 16
	for (int i = 0; i < R; i++)
#pragma GCC unroll 4
		for (int j = 0; j < NB; j++)
			c[i][j] = _mm512_setzero_ps();
	for (int r = 0; r < kred; r++) {
		__m512 b[4];
		const float *a = A + r * sr;
#pragma GCC unroll 4
		for (int j = 0; j < NB; j++)
			b[j] = _mm512_loadu_ps(B + r * ldb + 16 * j);
#pragma GCC unroll 16
		for (int i = 0; i < R; i++) {
			__m512 v = _mm512_set1_ps(a[i * si]);
#pragma GCC unroll 4
			for (int j = 0; j < NB; j++)
				c[i][j] = _mm512_fmadd_ps(v, b[j], c[i][j]);
		}
	}
#pragma GCC unroll 16
	for (int i = 0; i < R; i++)
#pragma GCC unroll 4
		for (int j = 0; j < NB; j++) {
			float *o = O + i * ldo + 16 * j;
			_mm512_storeu_ps(o, acc ? _mm512_add_ps(_mm512_loadu_ps(o), c[i][j]) : c[i][j]);
		}
}

/* rows must be a multiple of 16 (R = 16 rows for one vector, 8 for two or
 * three, 4 for four: 16 to 24 accumulators).  With acc (the filter
 * gradient, long sums over tiles), chunks of 128 terms are summed apart and
 * then added: rounding grows with 128 + kred/128 terms, not kred. */
#define PROD_ROWS(R, NB)                                                                                   \
	for (int i = 0; i < rows; i += R)                                                                      \
		for (int r0 = 0; r0 < kred; r0 += chunk)                                                           \
			prod_blk(A + i * si + r0 * sr, si, sr, kred - r0 < chunk ? kred - r0 : chunk, B + r0 * ldb + 16 * j0, \
			         ldb, O + i * ldo + 16 * j0, ldo, acc || r0, R, NB);

__attribute__((target("avx512f"))) static void prod_avx512(int rows, int kred, const float *A, size_t si, size_t sr,
                                                          const float *B, size_t ldb, int nb, float *O, size_t ldo,
                                                          int acc)
{
	const int chunk = acc ? 128 : kred > 0 ? kred : 1;
	for (int j0 = 0; j0 < nb; j0 += 4) {
		switch (nb - j0 < 4 ? nb - j0 : 4) {
		case 1: PROD_ROWS(16, 1) break;
		case 2: PROD_ROWS(8, 2) break;
		case 3: PROD_ROWS(8, 3) break;
		default: PROD_ROWS(4, 4) break;
		}
	}
}
#endif

/* The transforms of the level in use (sk_cpu.h). */
static const struct wk *kern(void)
{
#if defined(__x86_64__) || defined(__i386__)
	static const struct wk *const paths[] = {&wk_generic, &wk_avx2, &wk_avx512};
	return paths[sk_cpu_isa()];
#else
	return &wk_generic;
#endif
}

/* ---- the rule ---- */

int sk_wino_choose(int c, int h, int w, int k, int pad, int force, int tile)
{
	int oh = h + 2 * pad - 2, ow = w + 2 * pad - 2;
	const char *e = getenv("SK_WINOGRAD");
	if (pad < 0 || pad > 2 || oh < 1 || ow < 1)
		return 0;
	if (tile == 2 || tile == 4)
		return force || (c >= 16 && k >= 16) ? tile : 0;
	if (!force && e && *e && strcmp(e, "auto")) {
		if (!strcmp(e, "2") || !strcmp(e, "4"))
			return e[0] - '0';
		return 0;
	}
	if (force && e && (!strcmp(e, "2") || !strcmp(e, "4")))
		return e[0] - '0';
	/* Below 16 channels the 16-channel transforms and the short products
	 * waste most of their work.  Tiles of 4 need an output of at least 4. */
	if (!force && (c < 16 || k < 16 || oh < 4 || ow < 4))
		return 0;
	return oh >= 4 && ow >= 4 ? 4 : 2;
}

/* ---- plans ---- */

void sk_wino_free(sk_wino *p)
{
	if (p)
		sk_free(p->mem);
	sk_free(p);
}

sk_wino *sk_wino_new(int c, int h, int w, int k, int pad, int m, int max_batch)
{
	sk_wino *p;
	size_t img, vm, big;
	if (c < 1 || h < 1 || w < 1 || k < 1 || c > 65536 || k > 65536 || pad < 0 || pad > 2 ||
	    h + 2 * pad < 3 || w + 2 * pad < 3 || (m != 2 && m != 4) || max_batch < 1) {
		sk_error("winograd: bad plan %dx%dx%d to %d channels, pad %d, tile %d, batch %d", c, h, w, k, pad, m,
		         max_batch);
		return NULL;
	}
	if (!(p = sk_alloc(sizeof *p)))
		return NULL;
	p->c = c;
	p->h = h;
	p->w = w;
	p->k = k;
	p->pad = pad;
	p->m = m;
	p->a = m + 2;
	p->oh = h + 2 * pad - 2;
	p->ow = w + 2 * pad - 2;
	p->th = (p->oh + m - 1) / m;
	p->tw = (p->ow + m - 1) / m;
	p->cp = (c + 15) / 16 * 16;
	p->kp = (k + 15) / 16 * 16;
	p->hp = p->th * m + 2;
	p->wp = p->tw * m + 2;
	if ((double)p->th * p->tw > 1e8 || (double)p->hp * p->wp * (p->cp > p->kp ? p->cp : p->kp) > 1e9) {
		sk_error("winograd: %dx%dx%d is too large", c, h, w);
		sk_free(p);
		return NULL;
	}
	p->T = p->th * p->tw;
	/* Images per group: the planes of V and M within about 512 KiB (in L2; the
	 * products stream through them once), at least one image.
	 * SK_WINO_KB overrides the budget (benchmarks). */
	const char *e = getenv("SK_WINO_KB");
	double budget = (e && atoi(e) > 0 ? atoi(e) : 512) * 1024.0 / sizeof(float);
	double per = (double)p->a * p->a * p->T * (p->cp + p->kp);
	p->G = per * max_batch <= budget ? max_batch : (int)(budget / per);
	if (p->G < 1)
		p->G = 1;
	if ((double)p->G * per > 2e9) {
		sk_error("winograd: %dx%dx%d is too large", c, h, w);
		sk_free(p);
		return NULL;
	}
	/* rows rounded up to 16 for the product kernel's blocks */
	p->xs = (size_t)(p->G * p->T + 15) / 16 * 16 * p->cp;
	p->ms = (size_t)(p->G * p->T + 15) / 16 * 16 * p->kp;
	p->own = sk_cpu_isa() == SK_ISA_AVX512 && !getenv("SK_WINO_SGEMM");
	img = (size_t)p->hp * p->wp * p->cp;
	vm = (size_t)p->th * m * p->tw * m * p->kp;
	big = (size_t)p->a * p->a;
	sk_part parts[] = {
		SK_PART(p->xp, img), SK_PART(p->dxp, img), SK_PART(p->yc, vm), SK_PART(p->dyc, vm),
		SK_PART(p->V, big * p->xs), SK_PART(p->M, big * p->ms), SK_PART(p->U, big * c * p->kp),
		SK_PART(p->Ut, p->own ? big * k * p->cp : 0), SK_PART(p->dU, big * p->cp * p->kp),
		SK_PART(p->wt, (size_t)c * 9 * p->kp), SK_PART(p->wtmp, (size_t)c * 9 * k),
	};
	if (!(p->mem = sk_alloc_parts((int)(sizeof parts / sizeof *parts), parts))) {
		sk_free(p);
		return NULL;
	}
	return p;
}

/* U from the filters w (K x C x 3 x 3): transposed to C x 9 x kp first,
 * then transformed 16 filters at a time; Ut = U transposed per point. */
static void filter_tf(sk_wino *p, const float *w)
{
	const int a2 = p->a * p->a;
	sk_transpose(p->k, p->c * 9, w, (size_t)p->c * 9, p->wt, p->kp);
	kern()->filt(p, 0, p->wt, p->U);
	if (p->own)
		for (int xi = 0; xi < a2; xi++)
			sk_transpose(p->c, p->k, p->U + (size_t)xi * p->c * p->kp, p->kp, p->Ut + (size_t)xi * p->k * p->cp,
			             p->cp);
}

/* dw += G^T dU G, through C x 9 x kp and back to K x C x 3 x 3. */
static void filter_tf_back(const sk_wino *p, float *dw)
{
	size_t n = (size_t)p->k * p->c * 9;
	kern()->filt(p, 1, p->dU, p->wt);
	sk_transpose(p->c * 9, p->k, p->wt, p->kp, p->wtmp, (size_t)p->c * 9);
	sk_vadd(n, p->wtmp, dw);
}

/* O (rows x n) = A (rows x kred, row stride lda) times B (kred x n, or
 * with t, B^T with B n x kred), n = K (t = 0) or C (t = 1): with our kernel
 * on AVX-512 (B then already transposed as Ut, n padded to 16), else
 * OpenBLAS. */
static void product(const sk_wino *p, int t, int rows, int kred, const float *A, size_t lda, const float *B,
                    size_t ldb, size_t ldo, float *O)
{
	int n = t ? p->c : p->k;
#if defined(__x86_64__) || defined(__i386__)
	if (p->own) {
		prod_avx512((rows + 15) / 16 * 16, kred, A, lda, 1, B, ldb, (n + 15) / 16, O, ldo, 0);
		return;
	}
#endif
	sk_gemm(0, t, rows, n, kred, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, O, (int)ldo);
}

/* dU (C x K) += V^T (C x rows) dM (rows x K). */
static void product_tn(const sk_wino *p, int rows, const float *V, const float *dM, float *dU)
{
#if defined(__x86_64__) || defined(__i386__)
	if (p->own) {
		prod_avx512(p->cp, rows, V, 1, p->cp, dM, p->kp, p->kp / 16, dU, p->kp, 1);
		return;
	}
#endif
	sk_gemm(1, 0, p->c, p->k, rows, 1.0f, V, p->cp, dM, p->kp, 1.0f, dU, p->kp);
}

/* Image x (C x H x W) into the interior of xp (the border stays zero). */
static void to_xp(const sk_wino *p, const float *x, float *xp)
{
	size_t hw = (size_t)p->h * p->w;
	for (int r = 0; r < p->h; r++)
		sk_transpose(p->c, p->w, x + (size_t)r * p->w, hw, xp + ((size_t)(r + p->pad) * p->wp + p->pad) * p->cp,
		             (size_t)p->cp);
}

/* Transform the group's images x[0..gn) into V. */
static void group_in(sk_wino *p, const struct wk *K, int gn, const float *x)
{
	size_t in = (size_t)p->c * p->h * p->w;
	for (int gi = 0; gi < gn; gi++) {
		to_xp(p, x + gi * in, p->xp);
		K->tiles(p, TF_IN, p->xp, p->V, gi * p->T);
	}
}

void sk_wino_forward(sk_wino *p, int n, const float *x, const float *w, const float *bias, float *y)
{
	const struct wk *K = kern();
	const int a2 = p->a * p->a;
	size_t in = (size_t)p->c * p->h * p->w, P = (size_t)p->oh * p->ow, out = (size_t)p->k * P;
	size_t ldy = (size_t)p->tw * p->m * p->kp;
	filter_tf(p, w);
	for (int i0 = 0; i0 < n; i0 += p->G) {
		int gn = n - i0 < p->G ? n - i0 : p->G, rows = gn * p->T;
		group_in(p, K, gn, x + (size_t)i0 * in);
		for (int xi = 0; xi < a2; xi++)
			product(p, 0, rows, p->c, p->V + xi * p->xs, p->cp, p->U + (size_t)xi * p->c * p->kp, p->kp, p->kp,
			        p->M + xi * p->ms);
		for (int gi = 0; gi < gn; gi++) {
			float *yi = y + (size_t)(i0 + gi) * out;
			K->tiles(p, TF_OUT, p->yc, p->M, gi * p->T);
			if (p->ow == p->tw * p->m)
				sk_transpose_bias((int)P, p->k, p->yc, p->kp, yi, P, bias);
			else
				for (int r = 0; r < p->oh; r++)
					sk_transpose_bias(p->ow, p->k, p->yc + r * ldy, p->kp, yi + (size_t)r * p->ow, P, bias);
		}
	}
}

void sk_wino_backward(sk_wino *p, int n, const float *x, const float *w, const float *dy, float *dw, float *dx)
{
	const struct wk *K = kern();
	const int a2 = p->a * p->a;
	size_t in = (size_t)p->c * p->h * p->w, hw = (size_t)p->h * p->w, P = (size_t)p->oh * p->ow,
	       out = (size_t)p->k * P;
	size_t ldy = (size_t)p->tw * p->m * p->kp;
	if (dx)
		filter_tf(p, w);
	memset(p->dU, 0, sizeof(float) * a2 * p->cp * p->kp);
	for (int i0 = 0; i0 < n; i0 += p->G) {
		int gn = n - i0 < p->G ? n - i0 : p->G, rows = gn * p->T;
		group_in(p, K, gn, x + (size_t)i0 * in);
		for (int gi = 0; gi < gn; gi++) {
			const float *dyi = dy + (size_t)(i0 + gi) * out;
			for (int r = 0; r < p->oh; r++)
				sk_transpose(p->k, p->ow, dyi + (size_t)r * p->ow, P, p->dyc + r * ldy, p->kp);
			K->tiles(p, TF_DY, p->dyc, p->M, gi * p->T);
		}
		for (int xi = 0; xi < a2; xi++) {
			float *Vx = p->V + xi * p->xs, *Mx = p->M + xi * p->ms, *dUx = p->dU + (size_t)xi * p->cp * p->kp;
			/* dU += V^T dM; then V becomes dV = dM U^T */
			product_tn(p, rows, Vx, Mx, dUx);
			if (dx)
				product(p, 1, rows, p->k, Mx, p->kp, p->own ? p->Ut + (size_t)xi * p->k * p->cp :
				        p->U + (size_t)xi * p->c * p->kp, p->own ? p->cp : p->kp, p->cp, Vx);
		}
		if (!dx)
			continue;
		for (int gi = 0; gi < gn; gi++) {
			float *dxi = dx + (size_t)(i0 + gi) * in;
			memset(p->dxp, 0, sizeof(float) * (size_t)p->hp * p->wp * p->cp);
			K->tiles(p, TF_DX, p->dxp, p->V, gi * p->T);
			for (int r = 0; r < p->h; r++)
				sk_transpose(p->w, p->c, p->dxp + ((size_t)(r + p->pad) * p->wp + p->pad) * p->cp, p->cp,
				             dxi + (size_t)r * p->w, hw);
		}
	}
	filter_tf_back(p, dw);
}
