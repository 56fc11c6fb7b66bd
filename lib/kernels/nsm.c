/* nsm.c: the convolutional NSM solver (see sk_nsm.h for the equations).
 *
 * Layout: a block holds `nb` samples (columns); X is D x nb (im2col of the
 * block's patches), U, Y and T are K x nb, all row-major, so u = W X, the
 * dynamics product A Y and the statistics Y X' and Y Y' are single GEMMs on
 * cache-resident data.  Blocks are assigned to workers round-robin; each
 * worker accumulates its own statistics, reduced in worker order. */
#include "sk_nsm.h"
#include "sk_base.h"
#include "sk_cpu.h"
#include "sk_pool.h"
#include "sk_rng.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NSM_X86 1
#endif

#define NSM_BLOCK_DEFAULT 256

/* workspace of the sparse AVX-512 dynamics (K <= 64), see below */
#define NSM_KP 64
typedef struct nsm_sparse_ws {
	float *ap, *vt, *ya, *yb;   /* 64 x 64, then ncol x 64 three times */
	void *mem;                  /* their block */
	int cap;
} nsm_sparse_ws;

static void sparse_free(nsm_sparse_ws *w)
{
	sk_free(w->mem);
	memset(w, 0, sizeof *w);
}

static int sparse_reserve(nsm_sparse_ws *w, int ncol)
{
	size_t n = (size_t)ncol * NSM_KP;
	if (ncol <= w->cap)
		return 0;
	sparse_free(w);
	sk_part parts[] = {SK_PART(w->ap, NSM_KP * NSM_KP), SK_PART(w->vt, n), SK_PART(w->ya, n), SK_PART(w->yb, n)};
	if (!(w->mem = sk_alloc_parts(4, parts)))
		return -1;
	w->cap = ncol;
	return 0;
}

static int use_sparse(int k);

struct sk_nsm_work {
	nsm_sparse_ws sp;
	float *X, *V, *Y, *T;         /* D x nb, K x nb, K x nb, K x nb */
	float *YX, *YY, *XX;          /* K x D, K x K, D x D */
	double *YZ, *cnt;             /* K x classes, classes */
	int64_t *off, *obase;         /* per column: input offset, output offset */
	int32_t *lab;                 /* per column label */
	void *mem;                    /* the block of the arrays above */
	double d2, y2, ysum, nact;
	int maxit;
	int64_t ncols;
};

void sk_nsm_defaults(sk_nsm_opts *o)
{
	static const sk_nsm_opts def = {.k = 50, .size = 6, .stride = 1, .iters = 40, .eta = 1.0f, .tau = 0.1f,
	                                .reg = SK_NSM_REG_WEIGHT, .label_scale = 1.0f, .max_batch = 128, .threads = 1};
	*o = def;
}

void sk_nsm_free(sk_nsm *s)
{
	if (!s)
		return;
	sk_pool_free(s->pool);
	for (int i = 0; s->work && i < s->nwork; i++) {
		sparse_free(&s->work[i].sp);
		sk_free(s->work[i].mem);
	}
	sk_free(s->work);
	sk_free(s->mem);
	sk_free(s);
}

sk_nsm *sk_nsm_create(const sk_nsm_opts *o, int params)
{
	sk_nsm *s;
	size_t K, D, nb, ncls, DD;
	if (o->c < 1 || o->h < 1 || o->w < 1 || o->c > 65536 || o->h > 65536 || o->w > 65536) {
		sk_error("nsm: invalid input shape %dx%dx%d", o->c, o->h, o->w);
		return NULL;
	}
	if (o->k < 1 || o->k > 4096) {
		sk_error("nsm: filter count %d outside [1, 4096]", o->k);
		return NULL;
	}
	if (o->size < 1 || o->size > o->h || o->size > o->w) {
		sk_error("nsm: filter size %d does not fit the %dx%d input", o->size, o->h, o->w);
		return NULL;
	}
	if (o->stride < 1 || o->stride > 64) {
		sk_error("nsm: stride %d outside [1, 64]", o->stride);
		return NULL;
	}
	if (o->iters < 1 || o->iters > 100000) {
		sk_error("nsm: iteration count %d outside [1, 100000]", o->iters);
		return NULL;
	}
	if (!(o->eta > 0 && o->eta < 100) || !(o->tol >= 0) || !(o->tau > 0)) {
		sk_error("nsm: eta must be in (0, 100), tol >= 0 and tau > 0");
		return NULL;
	}
	if (o->reg < 0 || o->reg > 2) {
		sk_error("nsm: unknown regulariser %d", o->reg);
		return NULL;
	}
	if (o->supervised && (o->classes < 1 || o->classes > 100000)) {
		sk_error("nsm: class count %d outside [1, 100000]", o->classes);
		return NULL;
	}
	if (o->max_batch < 1 || o->threads < 1 || o->threads > 256 || o->block < 0) {
		sk_error("nsm: invalid batch %d, threads %d or block %d", o->max_batch, o->threads, o->block);
		return NULL;
	}
	if (o->c * o->size > 1 << 20 || (int64_t)o->c * o->size * o->size > 1 << 20) {
		sk_error("nsm: patch of %d x %d x %d is too large", o->c, o->size, o->size);
		return NULL;
	}
	s = sk_alloc(sizeof *s);
	if (!s)
		return NULL;
	s->o = *o;
	if (!s->o.block)
		s->o.block = NSM_BLOCK_DEFAULT;
	s->d = o->c * o->size * o->size;
	s->ho = (o->h - o->size) / o->stride + 1;
	s->wo = (o->w - o->size) / o->stride + 1;
	s->p = s->ho * s->wo;
	K = (size_t)o->k;
	D = (size_t)s->d;
	nb = (size_t)s->o.block;
	ncls = o->supervised ? (size_t)o->classes : 0;
	DD = o->reg == SK_NSM_REG_WHITEN ? D * D : 0;   /* XX' */
	s->own_params = params;
	sk_part parts[] = {
		SK_PART(s->W, params ? K * D : 0), SK_PART(s->M, params ? K * K : 0),
		SK_PART(s->Wz, params ? K * ncls : 0), SK_PART(s->A, K * K), SK_PART(s->pv, 2 * K),
		SK_PART(s->accYX, K * D), SK_PART(s->accYY, K * K), SK_PART(s->accXX, DD),
		SK_PART(s->accYZ, K * ncls), SK_PART(s->cnt, ncls),
	};
	if (!(s->mem = sk_alloc_parts((int)(sizeof parts / sizeof *parts), parts)))
		goto fail;
	s->nwork = o->threads;
	s->work = sk_alloc_array((size_t)s->nwork, sizeof *s->work);
	if (!s->work || !(s->pool = sk_pool_new(s->nwork)))
		goto fail;
	for (int i = 0; i < s->nwork; i++) {
		sk_nsm_work *w = &s->work[i];
		sk_part wp[] = {
			SK_PART(w->X, D * nb), SK_PART(w->V, K * nb), SK_PART(w->Y, K * nb), SK_PART(w->T, K * nb),
			SK_PART(w->YX, K * D), SK_PART(w->YY, K * K), SK_PART(w->XX, DD), SK_PART(w->YZ, K * ncls),
			SK_PART(w->cnt, ncls), SK_PART(w->off, nb), SK_PART(w->obase, nb), SK_PART(w->lab, nb),
		};
		if (!(w->mem = sk_alloc_parts((int)(sizeof wp / sizeof *wp), wp)) ||
		    (use_sparse(o->k) && sparse_reserve(&w->sp, (int)nb) < 0))
			goto fail;
	}
	return s;
fail:
	sk_nsm_free(s);
	return NULL;
}

void sk_nsm_init(sk_nsm *s, int how, uint64_t seed)
{
	int K = s->o.k, D = s->d;
	sk_rng r = sk_rng_make(seed, sk_rng_hash("nsm.w"));
	if (how == SK_NSM_INIT_UNIT) {
		for (int i = 0; i < K; i++) {
			double n2 = 0;
			float *row = s->W + (size_t)i * (size_t)D;
			for (int j = 0; j < D; j++) {
				row[j] = sk_rng_next_normal(&r);
				n2 += (double)row[j] * row[j];
			}
			float inv = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
			for (int j = 0; j < D; j++)
				row[j] *= inv;
		}
	} else {
		float b = 1.0f / sqrtf((float)D);
		for (size_t i = 0; i < (size_t)K * (size_t)D; i++)
			s->W[i] = b * (2.0f * sk_rng_next_uniform(&r) - 1.0f);
	}
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			s->M[(size_t)i * (size_t)K + (size_t)j] = i == j ? 1.0f : 0.0f;
	if (s->Wz) {
		/* the label encoder as PyTorch's Linear default, as the reference */
		sk_rng rz = sk_rng_make(seed, sk_rng_hash("nsm.wz"));
		float b = 1.0f / sqrtf((float)s->o.classes);
		for (size_t i = 0; i < (size_t)K * (size_t)s->o.classes; i++)
			s->Wz[i] = b * (2.0f * sk_rng_next_uniform(&rz) - 1.0f);
	}
}

double sk_nsm_lambda_max(int k, const float *M, float *tmp)
{
	float *v = tmp, *u = tmp + k;
	double lam = 0;
	for (int i = 0; i < k; i++)
		v[i] = 1.0f / sqrtf((float)k);
	/* M is symmetric; its eigenvalues here are >= 0 in practice, so the
	 * dominant one is the largest: 100 steps of the power method, or until
	 * the estimate settles */
	for (int it = 0; it < 100; it++) {
		double n2 = 0, prev = lam;
		for (int i = 0; i < k; i++) {
			double a = 0;
			for (int j = 0; j < k; j++)
				a += (double)M[(size_t)i * (size_t)k + (size_t)j] * v[j];
			u[i] = (float)a;
			n2 += a * a;
		}
		lam = sqrt(n2);
		if (!(lam > 0))
			return lam;
		for (int i = 0; i < k; i++)
			v[i] = (float)(u[i] / lam);
		if (it > 5 && fabs(lam - prev) <= 1e-6 * lam)
			break;
	}
	return lam;
}

/* ---- the dynamics on one block ---- */

/* t = relu(t + v) into y (swapping roles), with the squared change.  Plain C:
 * the compiler vectorises it; the GEMM dominates. */
static void relu_add(size_t n, const float *restrict v, float *restrict t, const float *restrict yold, double *d2,
                     double *y2, int want)
{
	if (!want) {
		for (size_t i = 0; i < n; i++) {
			float a = t[i] + v[i];
			t[i] = a < 0 ? 0 : a; /* NaN propagates */
		}
		return;
	}
	float sd = 0, sy = 0;
	double dd = 0, yy = 0;
	for (size_t i = 0; i < n; i++) {
		float a = t[i] + v[i];
		a = a < 0 ? 0 : a;
		t[i] = a;
		float e = a - yold[i];
		sd += e * e;
		sy += a * a;
		if ((i & 1023) == 1023) {
			dd += sd;
			yy += sy;
			sd = sy = 0;
		}
	}
	*d2 = dd + sd;
	*y2 = yy + sy;
}

#ifdef NSM_X86
/* One dynamics step fused: t = [A y + v]+ for rows [i, i+R) and the 64
 * columns [j, j+64) (masked at the end), with the squared change against y
 * and the squared norm accumulated in *dd, *yy when want.  A is k x k, y, v
 * and t are k x n, row-major.  R rows x 4 vectors = 4R accumulators. */
__attribute__((target("avx512f"), always_inline)) static inline void
dyn_tile(int R, int k, int n, int i, int j, const __mmask16 *m, const float *A, const float *y, const float *v,
         float *t, int want, __m512 *dd, __m512 *yy)
{
	__m512 acc[6][4];
	_Pragma("GCC unroll 6") for (int r = 0; r < R; r++)
		_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
			acc[r][c] = _mm512_setzero_ps();
	for (int p = 0; p < k; p++) {
		const float *yr = y + (size_t)p * (size_t)n + j;
		__m512 y0 = _mm512_maskz_loadu_ps(m[0], yr), y1 = _mm512_maskz_loadu_ps(m[1], yr + 16),
		       y2 = _mm512_maskz_loadu_ps(m[2], yr + 32), y3 = _mm512_maskz_loadu_ps(m[3], yr + 48);
		_Pragma("GCC unroll 6") for (int r = 0; r < R; r++) {
			__m512 a = _mm512_set1_ps(A[(size_t)(i + r) * (size_t)k + (size_t)p]);
			acc[r][0] = _mm512_fmadd_ps(a, y0, acc[r][0]);
			acc[r][1] = _mm512_fmadd_ps(a, y1, acc[r][1]);
			acc[r][2] = _mm512_fmadd_ps(a, y2, acc[r][2]);
			acc[r][3] = _mm512_fmadd_ps(a, y3, acc[r][3]);
		}
	}
	_Pragma("GCC unroll 6") for (int r = 0; r < R; r++)
		_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
			size_t o = (size_t)(i + r) * (size_t)n + (size_t)j + 16 * (size_t)c;
			/* max(0, x) returns x when x is NaN: divergence stays visible */
			__m512 x = _mm512_max_ps(_mm512_setzero_ps(), _mm512_add_ps(acc[r][c], _mm512_maskz_loadu_ps(m[c], v + o)));
			_mm512_mask_storeu_ps(t + o, m[c], x);
			if (want) {
				__m512 e = _mm512_sub_ps(x, _mm512_maskz_loadu_ps(m[c], y + o));
				*dd = _mm512_fmadd_ps(e, e, *dd);
				*yy = _mm512_fmadd_ps(x, x, *yy);
			}
		}
}

__attribute__((target("avx512f"))) static void dyn_step_avx512(int k, int n, const float *A, const float *y,
                                                                const float *v, float *t, int want, double *d2,
                                                                double *y2)
{
	__m512 dd = _mm512_setzero_ps(), yy = _mm512_setzero_ps();
	double sd = 0, sy = 0;
	for (int j = 0; j < n; j += 64) {
		__mmask16 m[4];
		for (int c = 0; c < 4; c++) {
			int rem = n - j - 16 * c;
			m[c] = rem >= 16 ? (__mmask16)0xFFFF : rem > 0 ? (__mmask16)((1u << rem) - 1) : (__mmask16)0;
		}
		int i = 0;
		for (; i + 6 <= k; i += 6)
			dyn_tile(6, k, n, i, j, m, A, y, v, t, want, &dd, &yy);
		for (; i + 2 <= k; i += 2)
			dyn_tile(2, k, n, i, j, m, A, y, v, t, want, &dd, &yy);
		for (; i < k; i++)
			dyn_tile(1, k, n, i, j, m, A, y, v, t, want, &dd, &yy);
		if (want) {
			sd += _mm512_reduce_add_ps(dd);
			sy += _mm512_reduce_add_ps(yy);
			dd = yy = _mm512_setzero_ps();
		}
	}
	*d2 = sd;
	*y2 = sy;
}

/* The sparse kernel, for K <= 64: samples as rows of 64 floats (K padded
 * with zeros), so that one step for sample j is t_j = [sum over the active
 * p of y_jp A_p + v_j]+ with A_p the p-th column of A = I - eta M (also
 * padded): only the outputs that are not zero (about a quarter, after
 * the first steps) cost work, 4 FMAs each.  Zeros contribute exactly 0, so
 * the result is the dense product's up to the order of the sums.  A NaN
 * counts as active, so divergence stays visible. */

__attribute__((target("avx512f"))) static void sparse_step(int ncol, const float *ap, const float *vt,
                                                            const float *y, float *t, int want, double *d2,
                                                            double *y2)
{
	const __m512 z = _mm512_setzero_ps();
	const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	__m512 dd = z, yy = z;
	/* the active outputs of a sample, gathered first: then two independent
	 * sets of accumulators hide the FMA latency */
	int idx[NSM_KP + 16] __attribute__((aligned(64)));
	float val[NSM_KP + 16] __attribute__((aligned(64)));
	for (int j = 0; j < ncol; j++) {
		const float *yj = y + (size_t)j * NSM_KP, *vj = vt + (size_t)j * NSM_KP;
		float *tj = t + (size_t)j * NSM_KP;
		int na = 0;
		_Pragma("GCC unroll 4") for (int c = 0; c < 4; c++)
		{
			__m512 yc = _mm512_load_ps(yj + 16 * c);
			__mmask16 m = _mm512_cmp_ps_mask(yc, z, _CMP_NEQ_UQ);
			_mm512_storeu_si512((void *)(idx + na),
			                    _mm512_maskz_compress_epi32(m, _mm512_add_epi32(iota, _mm512_set1_epi32(16 * c))));
			_mm512_storeu_ps(val + na, _mm512_maskz_compress_ps(m, yc));
			na += __builtin_popcount((unsigned)m);
		}
		__m512 a0 = z, a1 = z, a2 = z, a3 = z, c0 = z, c1 = z, c2 = z, c3 = z;
		int q = 0;
		for (; q + 2 <= na; q += 2) {
			const float *r = ap + (size_t)idx[q] * NSM_KP, *s2 = ap + (size_t)idx[q + 1] * NSM_KP;
			__m512 b = _mm512_set1_ps(val[q]), e = _mm512_set1_ps(val[q + 1]);
			a0 = _mm512_fmadd_ps(b, _mm512_load_ps(r), a0);
			c0 = _mm512_fmadd_ps(e, _mm512_load_ps(s2), c0);
			a1 = _mm512_fmadd_ps(b, _mm512_load_ps(r + 16), a1);
			c1 = _mm512_fmadd_ps(e, _mm512_load_ps(s2 + 16), c1);
			a2 = _mm512_fmadd_ps(b, _mm512_load_ps(r + 32), a2);
			c2 = _mm512_fmadd_ps(e, _mm512_load_ps(s2 + 32), c2);
			a3 = _mm512_fmadd_ps(b, _mm512_load_ps(r + 48), a3);
			c3 = _mm512_fmadd_ps(e, _mm512_load_ps(s2 + 48), c3);
		}
		if (q < na) {
			const float *r = ap + (size_t)idx[q] * NSM_KP;
			__m512 b = _mm512_set1_ps(val[q]);
			a0 = _mm512_fmadd_ps(b, _mm512_load_ps(r), a0);
			a1 = _mm512_fmadd_ps(b, _mm512_load_ps(r + 16), a1);
			a2 = _mm512_fmadd_ps(b, _mm512_load_ps(r + 32), a2);
			a3 = _mm512_fmadd_ps(b, _mm512_load_ps(r + 48), a3);
		}
		a0 = _mm512_add_ps(a0, c0);
		a1 = _mm512_add_ps(a1, c1);
		a2 = _mm512_add_ps(a2, c2);
		a3 = _mm512_add_ps(a3, c3);
		__m512 x0 = _mm512_max_ps(z, _mm512_add_ps(a0, _mm512_load_ps(vj)));
		__m512 x1 = _mm512_max_ps(z, _mm512_add_ps(a1, _mm512_load_ps(vj + 16)));
		__m512 x2 = _mm512_max_ps(z, _mm512_add_ps(a2, _mm512_load_ps(vj + 32)));
		__m512 x3 = _mm512_max_ps(z, _mm512_add_ps(a3, _mm512_load_ps(vj + 48)));
		_mm512_store_ps(tj, x0);
		_mm512_store_ps(tj + 16, x1);
		_mm512_store_ps(tj + 32, x2);
		_mm512_store_ps(tj + 48, x3);
		if (want) {
			__m512 e0 = _mm512_sub_ps(x0, _mm512_load_ps(yj)), e1 = _mm512_sub_ps(x1, _mm512_load_ps(yj + 16));
			__m512 e2 = _mm512_sub_ps(x2, _mm512_load_ps(yj + 32)), e3 = _mm512_sub_ps(x3, _mm512_load_ps(yj + 48));
			dd = _mm512_fmadd_ps(e0, e0, dd);
			dd = _mm512_fmadd_ps(e1, e1, dd);
			dd = _mm512_fmadd_ps(e2, e2, dd);
			dd = _mm512_fmadd_ps(e3, e3, dd);
			yy = _mm512_fmadd_ps(x0, x0, yy);
			yy = _mm512_fmadd_ps(x1, x1, yy);
			yy = _mm512_fmadd_ps(x2, x2, yy);
			yy = _mm512_fmadd_ps(x3, x3, yy);
		}
	}
	if (want) {
		*d2 = _mm512_reduce_add_ps(dd);
		*y2 = _mm512_reduce_add_ps(yy);
	}
}

/* The whole dynamics in the padded sample-major layout; -1 if the
 * workspace cannot be had (the caller then takes another path). */
static int dynamics_sparse(nsm_sparse_ws *w, int k, int ncol, const float *A, const float *v, float *y, int iters,
                           float tol, double *d2, double *y2, int *its)
{
	double dd = 0, yy = 0;
	int it;
	if (!w || ncol > w->cap)
		return -1;
	memset(w->ap, 0, sizeof(float) * NSM_KP * NSM_KP);
	/* row p of ap is column p of A (A is symmetric for NSM, but the layer's
	 * gradient check perturbs single entries) */
	for (int p = 0; p < k; p++)
		for (int i = 0; i < k; i++)
			w->ap[(size_t)p * NSM_KP + (size_t)i] = A[(size_t)i * (size_t)k + (size_t)p];
	/* transpose v in, with zero padding; y = relu(v) is step 1 */
	for (int j = 0; j < ncol; j++) {
		float *vj = w->vt + (size_t)j * NSM_KP, *yj = w->ya + (size_t)j * NSM_KP;
		for (int i = 0; i < k; i++) {
			float a = v[(size_t)i * (size_t)ncol + (size_t)j];
			vj[i] = a;
			yj[i] = a < 0 ? 0 : a;
			yy += (double)yj[i] * yj[i];
		}
		for (int i = k; i < NSM_KP; i++)
			vj[i] = yj[i] = 0;
	}
	dd = yy;
	float *cur = w->ya, *nxt = w->yb;
	for (it = 1; it < iters; it++) {
		int want = tol > 0 || it == iters - 1;
		sparse_step(ncol, w->ap, w->vt, cur, nxt, want, &dd, &yy);
		float *sw = cur;
		cur = nxt;
		nxt = sw;
		if (tol > 0 && dd <= (double)tol * tol * (yy > 1e-30 ? yy : 1e-30)) {
			it++;
			break;
		}
	}
	for (int i = 0; i < k; i++)
		for (int j = 0; j < ncol; j++)
			y[(size_t)i * (size_t)ncol + (size_t)j] = cur[(size_t)j * NSM_KP + (size_t)i];
	*d2 = dd;
	*y2 = yy;
	*its = it;
	return 0;
}

static int have_avx512(void) { return sk_cpu_isa() == SK_ISA_AVX512; }
#endif

static int use_sparse(int k)
{
#ifdef NSM_X86
	return k <= NSM_KP && have_avx512();
#else
	(void)k;
	return 0;
#endif
}

static int dynamics(nsm_sparse_ws *ws, int k, int ncol, const float *A, const float *v, float *y, float *t,
                    int iters, float tol, double *d2, double *y2)
{
	size_t n = (size_t)k * (size_t)ncol;
	float *cur = y, *nxt = t;
	int it;
	double dd = 0, yy = 0;
#ifdef NSM_X86
	if (use_sparse(k) && dynamics_sparse(ws, k, ncol, A, v, y, iters, tol, &dd, &yy, &it) == 0) {
		if (d2)
			*d2 = dd;
		if (y2)
			*y2 = yy;
		return it;
	}
#endif
	/* step 1 from y = 0: y = relu(v) */
	for (size_t i = 0; i < n; i++)
		cur[i] = v[i] < 0 ? 0 : v[i];
	if (iters == 1) {
		for (size_t i = 0; i < n; i++)
			yy += (double)cur[i] * cur[i];
		dd = yy;
	}
	for (it = 1; it < iters; it++) {
		int want = tol > 0 || it == iters - 1;
		float *sw;
#ifdef NSM_X86
		if (have_avx512())
			dyn_step_avx512(k, ncol, A, cur, v, nxt, want, &dd, &yy);
		else
#endif
		{
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, ncol, k, 1.0f, A, k, cur, ncol, 0.0f,
			            nxt, ncol);
			relu_add(n, v, nxt, cur, &dd, &yy, want);
		}
		sw = cur;
		cur = nxt;
		nxt = sw;
		if (tol > 0 && dd <= (double)tol * tol * (yy > 1e-30 ? yy : 1e-30)) {
			it++;
			break;
		}
	}
	if (cur != y)
		memcpy(y, cur, n * sizeof *y);
	if (d2)
		*d2 = dd;
	if (y2)
		*y2 = yy;
	return it;
}

int sk_nsm_dynamics(int k, int ncol, const float *A, const float *v, float *y, float *t, int iters, float tol,
                    double *d2, double *y2)
{
	nsm_sparse_ws ws = {0};
	int it;
	if (use_sparse(k))
		sparse_reserve(&ws, ncol);   /* on failure: another path */
	it = dynamics(&ws, k, ncol, A, v, y, t, iters, tol, d2, y2);
	sparse_free(&ws);
	return it;
}

/* ---- one call over a batch ---- */

typedef struct job {
	sk_nsm *s;
	int n;
	const float *x;
	const int32_t *labels;
	float *y;
	int train;
	int tid;
	int bad_label;
} job;

static void zero_acc(sk_nsm *s, sk_nsm_work *w, int train)
{
	size_t K = (size_t)s->o.k, D = (size_t)s->d;
	w->d2 = w->y2 = w->ysum = w->nact = 0;
	w->maxit = 0;
	w->ncols = 0;
	if (!train)
		return;
	memset(w->YX, 0, K * D * sizeof(float));
	memset(w->YY, 0, K * K * sizeof(float));
	if (w->XX)
		memset(w->XX, 0, D * D * sizeof(float));
	if (w->YZ) {
		memset(w->YZ, 0, K * (size_t)s->o.classes * sizeof(double));
		memset(w->cnt, 0, (size_t)s->o.classes * sizeof(double));
	}
}

static void run_block(job *jb, sk_nsm_work *w, int64_t j0, int nbc)
{
	sk_nsm *s = jb->s;
	const sk_nsm_opts *o = &s->o;
	int K = o->k, D = s->d, P = s->p, st = o->stride, ks = o->size;
	int64_t chw = (int64_t)o->c * o->h * o->w, hw = (int64_t)o->h * o->w;
	float eta = s->eta;
	/* per-column offsets */
	for (int jj = 0; jj < nbc; jj++) {
		int64_t j = j0 + jj;
		int64_t b = j / P;
		int p = (int)(j - b * P);
		int oy = p / s->wo, ox = p - oy * s->wo;
		w->off[jj] = b * chw + (int64_t)oy * st * o->w + (int64_t)ox * st;
		w->obase[jj] = b * (int64_t)K * P + p;
		w->lab[jj] = jb->labels ? jb->labels[b] : -1;
	}
	/* im2col: row d = (c, ki, kj) */
	for (int c = 0, d = 0; c < o->c; c++)
		for (int ki = 0; ki < ks; ki++)
			for (int kj = 0; kj < ks; kj++, d++) {
				const float *src = jb->x + c * hw + (int64_t)ki * o->w + kj;
				float *row = w->X + (size_t)d * (size_t)nbc;
				for (int jj = 0; jj < nbc; jj++)
					row[jj] = src[w->off[jj]];
			}
	/* v = eta (W X + s Wz z) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, nbc, D, eta, s->W, D, w->X, nbc, 0.0f, w->V, nbc);
	if (jb->labels && o->supervised) {
		int ncls = o->classes;
		float a = eta * o->label_scale;
		for (int jj = 0; jj < nbc; jj++)
			if (w->lab[jj] < 0 || w->lab[jj] >= ncls) {
				jb->bad_label = 1;
				return;
			}
		for (int i = 0; i < K; i++) {
			float *vr = w->V + (size_t)i * (size_t)nbc;
			const float *wz = s->Wz + (size_t)i * (size_t)ncls;
			for (int jj = 0; jj < nbc; jj++)
				vr[jj] += a * wz[w->lab[jj]];
		}
	}
	double d2, y2;
	int it = dynamics(&w->sp, K, nbc, s->A, w->V, w->Y, w->T, o->iters, o->tol, &d2, &y2);
	if (it > w->maxit)
		w->maxit = it;
	w->d2 += d2;
	w->y2 += y2;
	w->ncols += nbc;
	{
		size_t n = (size_t)K * (size_t)nbc;
		double ys = 0, na = 0;
		for (size_t i = 0; i < n; i++) {
			ys += w->Y[i];
			na += w->Y[i] > 0;
		}
		w->ysum += ys;
		w->nact += na;
	}
	if (jb->y)
		for (int i = 0; i < K; i++) {
			const float *yr = w->Y + (size_t)i * (size_t)nbc;
			float *out = jb->y + (int64_t)i * P;
			for (int jj = 0; jj < nbc; jj++)
				out[w->obase[jj]] = yr[jj];
		}
	if (!jb->train)
		return;
	/* statistics: YX += Y X', YY += Y Y', XX += X X' */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, D, nbc, 1.0f, w->Y, nbc, w->X, nbc, 1.0f, w->YX, D);
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, K, nbc, 1.0f, w->Y, nbc, 1.0f, w->YY, K);
	if (w->XX)
		cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, D, nbc, 1.0f, w->X, nbc, 1.0f, w->XX, D);
	if (w->YZ) {
		int ncls = o->classes;
		for (int jj = 0; jj < nbc; jj++)
			w->cnt[w->lab[jj]] += 1;
		for (int i = 0; i < K; i++) {
			const float *yr = w->Y + (size_t)i * (size_t)nbc;
			double *yz = w->YZ + (size_t)i * (size_t)ncls;
			for (int jj = 0; jj < nbc; jj++)
				yz[w->lab[jj]] += yr[jj];
		}
	}
}

static int worker(void *arg, int tid)
{
	job *jb = (job *)arg + tid;
	sk_nsm *s = jb->s;
	sk_nsm_work *w = &s->work[jb->tid];
	int64_t ncol = (int64_t)jb->n * s->p, nb = s->o.block;
	int64_t nblk = (ncol + nb - 1) / nb;
	zero_acc(s, w, jb->train);
	for (int64_t b = jb->tid; b < nblk && !jb->bad_label; b += s->nwork) {
		int64_t j0 = b * nb;
		int nbc = (int)(ncol - j0 < nb ? ncol - j0 : nb);
		run_block(jb, w, j0, nbc);
	}
	return 0;
}

static int run(sk_nsm *s, int n, const float *x, const int32_t *labels, float *y, int train, sk_nsm_stats *st)
{
	int K = s->o.k, T = s->nwork;
	job jobs[256];
	if (n < 0 || n > s->o.max_batch)
		return sk_error("nsm: batch of %d images exceeds the prepared %d", n, s->o.max_batch);
	/* A = I - eta M */
	s->eta = s->o.eta;
	if (s->o.eta_auto) {
		s->lambda = sk_nsm_lambda_max(K, s->M, s->pv);
		if (!isfinite(s->lambda))
			return sk_error("nsm: non-finite lateral weights");
		s->eta = s->lambda > 1e-3 ? (float)(1.0 / s->lambda) : 1000.0f;
	}
	for (int i = 0; i < K; i++)
		for (int j = 0; j < K; j++)
			s->A[(size_t)i * (size_t)K + (size_t)j] =
				(i == j ? 1.0f : 0.0f) - s->eta * s->M[(size_t)i * (size_t)K + (size_t)j];
	{
		/* fewer workers than blocks would idle: cap at the block count */
		int64_t nblk = ((int64_t)n * s->p + s->o.block - 1) / s->o.block;
		if (nblk < T)
			T = (int)(nblk > 0 ? nblk : 1);
	}
	for (int t = 0; t < s->nwork; t++) {
		jobs[t] = (job){s, n, x, labels, y, train, t, 0};
		if (t >= T)
			zero_acc(s, &s->work[t], train);
	}
	if (sk_pool_run(s->pool, T, worker, jobs) < 0)
		return -1;
	for (int t = 0; t < T; t++)
		if (jobs[t].bad_label)
			return sk_error("nsm: a label is outside [0, %d)", s->o.classes);
	if (st) {
		double d2 = 0, y2 = 0, ys = 0, na = 0;
		int64_t nc = 0;
		int mi = 0;
		for (int t = 0; t < s->nwork; t++) {
			sk_nsm_work *w = &s->work[t];
			d2 += w->d2;
			y2 += w->y2;
			ys += w->ysum;
			na += w->nact;
			nc += w->ncols;
			if (w->maxit > mi)
				mi = w->maxit;
		}
		memset(st, 0, sizeof *st);
		st->samples = nc;
		st->iters = mi;
		st->delta = y2 > 0 ? sqrt(d2 / y2) : d2 > 0 ? INFINITY : 0; /* y_t = 0 after y_(t-1) != 0 */
		st->ymean = nc ? ys / ((double)nc * K) : 0;
		st->active = nc ? na / ((double)nc * K) : 0;
		st->eta = s->eta;
		st->lambda = s->o.eta_auto ? s->lambda : 0;
	}
	return 0;
}

int sk_nsm_forward(sk_nsm *s, int n, const float *x, const int32_t *labels, float *y, sk_nsm_stats *st)
{
	return run(s, n, x, s->o.supervised ? labels : NULL, y, 0, st);
}

static int finite_all(const float *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(a[i]))
			return 0;
	return 1;
}

int sk_nsm_step(sk_nsm *s, int n, const float *x, const int32_t *labels, float lr, sk_nsm_stats *st)
{
	const sk_nsm_opts *o = &s->o;
	int K = o->k, D = s->d, ncls = o->supervised ? o->classes : 0;
	size_t KD = (size_t)K * (size_t)D, KK = (size_t)K * (size_t)K;
	sk_nsm_stats local;
	double N;
	if (o->supervised && !labels)
		return sk_error("nsm: the supervised variant needs labels");
	if (!st)
		st = &local;
	if (run(s, n, x, labels, NULL, 1, st) < 0)
		return -1;
	if (st->samples == 0)
		return 0;
	N = (double)st->samples;
	/* reduce in worker order */
	memcpy(s->accYX, s->work[0].YX, KD * sizeof(float));
	memcpy(s->accYY, s->work[0].YY, KK * sizeof(float));
	if (s->accXX)
		memcpy(s->accXX, s->work[0].XX, (size_t)D * (size_t)D * sizeof(float));
	for (int t = 1; t < s->nwork; t++) {
		sk_nsm_work *w = &s->work[t];
		for (size_t i = 0; i < KD; i++)
			s->accYX[i] += w->YX[i];
		for (size_t i = 0; i < KK; i++)
			s->accYY[i] += w->YY[i];
		if (s->accXX)
			for (size_t i = 0; i < (size_t)D * (size_t)D; i++)
				s->accXX[i] += w->XX[i];
	}
	if (ncls) {
		memset(s->accYZ, 0, (size_t)K * (size_t)ncls * sizeof(double));
		memset(s->cnt, 0, (size_t)ncls * sizeof(double));
		for (int t = 0; t < s->nwork; t++) {
			for (size_t i = 0; i < (size_t)K * (size_t)ncls; i++)
				s->accYZ[i] += s->work[t].YZ[i];
			for (int c = 0; c < ncls; c++)
				s->cnt[c] += s->work[t].cnt[c];
		}
	}
	/* means; mirror the upper triangles */
	{
		float inv = (float)(1.0 / N);
		for (size_t i = 0; i < KD; i++)
			s->accYX[i] *= inv;
		for (int i = 0; i < K; i++)
			for (int j = i; j < K; j++) {
				float v = s->accYY[(size_t)i * K + j] * inv;
				s->accYY[(size_t)i * K + j] = v;
				s->accYY[(size_t)j * K + i] = v;
			}
		if (s->accXX)
			for (int i = 0; i < D; i++)
				for (int j = i; j < D; j++) {
					float v = s->accXX[(size_t)i * D + j] * inv;
					s->accXX[(size_t)i * D + j] = v;
					s->accXX[(size_t)j * D + i] = v;
				}
	}
	if (!finite_all(s->accYX, KD) || !finite_all(s->accYY, KK))
		return sk_error("nsm: non-finite outputs (the dynamics diverged: lower --eta or the input scale)");
	/* the objective at this batch (before the update), for monitoring:
	 * L = [-4 <W, YX> + 2 <M, YY>] / K + reg */
	{
		double wyx = 0, myy = 0, reg = 0, m2 = 0;
		for (size_t i = 0; i < KD; i++)
			wyx += (double)s->W[i] * s->accYX[i];
		for (size_t i = 0; i < KK; i++) {
			myy += (double)s->M[i] * s->accYY[i];
			m2 += (double)s->M[i] * s->M[i];
		}
		if (o->reg == SK_NSM_REG_WEIGHT)
			for (size_t i = 0; i < KD; i++)
				reg += 2.0 * s->W[i] * s->W[i];
		st->loss = (-4 * wyx + 2 * myy + reg - m2) / K;
	}
	/* W <- W + (4 lr / K) (<y x'> - R) */
	{
		float a = 4.0f * lr / (float)K;
		if (o->reg == SK_NSM_REG_WHITEN) {
			/* R = W <x x'>: compute into the YX accumulator as YX - W XX */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, D, D, -1.0f, s->W, D, s->accXX, D, 1.0f,
			            s->accYX, D);
			for (size_t i = 0; i < KD; i++)
				s->W[i] += a * s->accYX[i];
		} else if (o->reg == SK_NSM_REG_WEIGHT) {
			for (size_t i = 0; i < KD; i++)
				s->W[i] += a * (s->accYX[i] - s->W[i]);
		} else {
			for (size_t i = 0; i < KD; i++)
				s->W[i] += a * s->accYX[i];
		}
	}
	/* M <- M + (2 lr / (tau K)) (<y y'> - M), kept exactly symmetric */
	{
		float a = 2.0f * lr / (o->tau * (float)K);
		for (int i = 0; i < K; i++)
			for (int j = i; j < K; j++) {
				float v = s->M[(size_t)i * K + j] + a * (s->accYY[(size_t)i * K + j] - s->M[(size_t)i * K + j]);
				s->M[(size_t)i * K + j] = v;
				s->M[(size_t)j * K + i] = v;
			}
	}
	/* Wz <- Wz + (4 lr / K) (s <y z'> - s^2 Wz <z z'>) */
	if (ncls) {
		double a = 4.0 * lr / K, sc = o->label_scale;
		for (int i = 0; i < K; i++)
			for (int c = 0; c < ncls; c++) {
				size_t ix = (size_t)i * (size_t)ncls + (size_t)c;
				s->Wz[ix] += (float)(a * (sc * s->accYZ[ix] / N - sc * sc * s->Wz[ix] * s->cnt[c] / N));
			}
	}
	if (!finite_all(s->W, KD) || !finite_all(s->M, KK))
		return sk_error("nsm: non-finite weights after the update (lower the learning rate)");
	return 0;
}
