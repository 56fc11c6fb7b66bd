/* sk_simkern.h: generalised-GEMM kernels for the similarity and MEX layers,
 * and the patch geometry (im2col / col2im over arbitrary position lists)
 * that both layers share.
 *
 * Layout: a patch matrix P is K x Q, row-major (row k = element k of every
 * patch, column q = one patch), like Caffe's im2col.  Outputs Y, upstream
 * gradients G and the MEX statistics are M x Q.  Q must be a multiple of
 * SK_SIMKERN_QALIGN; callers pad with zero columns (and zero G there).
 * Nothing of size M x K x Q is ever formed: the kernels block over a tile of
 * templates and a chunk of columns and keep partial sums in registers.
 *
 * Three paths compute the same thing: portable C (plain loops, also the
 * reference), AVX2+FMA and AVX-512F (chosen at run time by sk_cpu_isa();
 * SK_ISA or sk_cpu_set_isa() caps it for tests and benchmarks).  They
 * differ only in rounding (FMA, summation order).
 * Kernels are single-threaded: the engine parallelises over replicas.
 */
#ifndef SK_SIMKERN_H
#define SK_SIMKERN_H

#include <stddef.h>

#define SK_SIMKERN_QALIGN 32

/* c columns rounded up to a multiple of SK_SIMKERN_QALIGN (callers pad) */
static inline size_t sk_simkern_padcols(size_t c)
{
	return (c + SK_SIMKERN_QALIGN - 1) / SK_SIMKERN_QALIGN * SK_SIMKERN_QALIGN;
}

enum sk_simkind { SK_SIM_L1 = 1, SK_SIM_L2 = 2 };
/* Similarity forward: Y[m,q] = -sum_k U[m,k] f(P[k,q] - Z[m,k]),
 * f = |.| (L1) or (.)^2 (L2).  Z, U are M x K. */
void sk_sim_fwd(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U, float *Y);
/* Similarity backward for L = sum G*Y: dP = dL/dP is WRITTEN when dP is not
 * NULL; dZ and dU are ACCUMULATED (+=). */
void sk_sim_bwd(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U, const float *G,
                float *dP, float *dZ, float *dU);
/* Same with NaN entries of P skipped (missing values, portable C only).
 * When LA (M x K, log-weights) is not NULL the result is the normalised L2
 * form: Y = 1/2 (sum_valid -U f(d) + LA - log 2pi).  Backward also adds
 * dL/dLA into dLA when LA is given. */
void sk_sim_fwd_nan(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                    const float *LA, float *Y);
void sk_sim_bwd_nan(int kind, int M, int K, int Q, const float *P, const float *Z, const float *U,
                    const float *LA, const float *G, float *dP, float *dZ, float *dU, float *dLA);

/* MEX forward: c_k = P[k,q] + B[m,k] (B may be NULL: zero offsets),
 * Y[m,q] = (1/xi_m) log((1/K) sum_k exp(xi_m c_k)), without the 1/K when
 * softmax is set.  xi[m] may be +-inf (max / min).  In mean mode |xi| below
 * SK_MEX_XI_SMALL uses mean + xi var / 2 (kept inside [min, max]).  CM and
 * S (M x Q) receive what the backward pass needs: the max (min) of c and
 * T = sum expm1(xi (c - CM)) (so sum exp = K + T, and log(mean exp) =
 * log1p(T/K) stays accurate as xi -> 0); in the small-xi case the mean and
 * the variance. */
#define SK_MEX_XI_SMALL 1e-6f
void sk_mex_fwd(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax, float *Y,
                float *CM, float *S);
/* MEX backward after sk_mex_fwd on the same data: dP WRITTEN (if not NULL),
 * dB (M x K, if not NULL) and dxi (M, if not NULL) ACCUMULATED.
 * `work` holds at least K * 16 floats. Ties at xi = +-inf: the first
 * extreme element takes the whole gradient. */
void sk_mex_bwd(int M, int K, int Q, const float *P, const float *B, const float *xi, int softmax,
                const float *Y, const float *CM, const float *S, const float *G, float *dP, float *dB, float *dxi,
                float *work);

/* ---- patch geometry ---- */

typedef struct sk_patchgeom {
	int C, H, W;        /* input */
	int cb, kh, kw;     /* block */
	int sc, sh, sw;     /* stride */
	int pc, ph, pw;     /* padding */
	int Co, Ho, Wo;     /* output positions */
	int K, Q;           /* K = cb*kh*kw, Q = Co*Ho*Wo */
} sk_patchgeom;

/* Fill the output sizes (round-down); -1 with a message if a block does not
 * fit or a size is invalid. */
int sk_patchgeom_init(sk_patchgeom *g);
/* Columns col0 + e*npos + j (e < n examples, j < npos) of P (K rows, row
 * stride ld) receive the patch at position pos[j] (linear index
 * c'*Ho*Wo + i*Wo + j) of example e of x; outside the input: `fill`. */
void sk_patch_im2col(const sk_patchgeom *g, int n, const float *x, const int *pos, int npos, float *P, size_t ld,
               float fill);
/* The reverse scatter-add: dx (n examples) += the columns, padding dropped. */
void sk_patch_col2im(const sk_patchgeom *g, int n, const float *dP, size_t ld, const int *pos, int npos, float *dx);

/* Vectorised exp used by the MEX kernels (portable C version), exposed for
 * tests: max relative error about 2e-7 on [-87, 0]. */
float sk_simkern_exp(float x);

#endif
