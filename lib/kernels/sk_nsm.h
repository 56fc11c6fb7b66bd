/* sk_nsm.h: convolutional nonnegative similarity matching (NSM).
 *
 * Every (image, position) pair is one sample: its k x k patch x (D = C*k*k
 * values) is encoded as u = W x (W: K x D, a convolution without bias), and
 * the output y >= 0 settles by the neural dynamics
 *
 *     y <- [ y - eta (M y - u) ]+        (from y = 0, `iters` steps)
 *
 * which is projected gradient descent on 1/2 y'My - y'u; M (K x K,
 * symmetric, initially I) is lateral inhibition.  After the dynamics, W and M
 * move by local rules (lr the learning rate, <.> the mean over the batch's
 * samples):
 *
 *     W <- W + (4 lr / K) (<y x'> - R)           R = W ("weight"),
 *                                                  W <x x'> ("whiten"), 0 ("none")
 *     M <- M + (2 lr / (tau K)) (<y y'> - M)
 *
 * Supervised (CCA-like) variant: a label encoder Wz (K x classes) adds
 * s * Wz[:, label] to u at every position of an image during training only;
 * Wz <- Wz + (4 lr / K) (s <y z'> - s^2 Wz <z z'>) ("whiten" regulariser).
 *
 * The cost is a few GEMMs: one for u = W x per block of samples, one per
 * dynamics step, and two or three for the updates.  Samples are processed in
 * cache-sized column blocks, distributed statically over `threads` workers
 * (so results depend only on the seed and the thread count).  When threads
 * > 1 the caller should set OpenBLAS to one thread (openblas_set_num_threads)
 * so the workers do not oversubscribe the cores.
 */
#ifndef SK_NSM_H
#define SK_NSM_H

#include <stdint.h>

enum sk_nsm_reg { SK_NSM_REG_WEIGHT = 0, SK_NSM_REG_WHITEN = 1, SK_NSM_REG_NONE = 2 };
enum sk_nsm_init { SK_NSM_INIT_CONV = 0, SK_NSM_INIT_UNIT = 1 };

typedef struct sk_nsm_opts {
	int c, h, w;          /* input image shape (channels, height, width) */
	int k;                /* number of filters (output channels) K */
	int size, stride;     /* filter size (square) and stride; no padding */
	int iters;            /* dynamics steps (default 40) */
	float eta;            /* dynamics step size (default 1) */
	float tol;            /* stop a block early when |dy|/|y| < tol (0: never) */
	int eta_auto;         /* eta = 1 / lambda_max(M) at every call (then eta is ignored) */
	float tau;            /* M learns 1/tau times faster (default 0.1) */
	int reg;              /* encoder regulariser, enum sk_nsm_reg */
	int supervised;       /* label term during training */
	int classes;          /* label count (supervised) */
	float label_scale;    /* s: the one-hot label is scaled by s */
	int max_batch;        /* images per call */
	int threads;          /* workers (>= 1) */
	int block;            /* columns (samples) per block; 0 = default */
} sk_nsm_opts;

/* Fill in the defaults (50 filters 6x6 stride 1, 40 steps, eta 1, tau 0.1,
 * "weight" regulariser, batch 128, one thread); the input shape is left 0. */
void sk_nsm_defaults(sk_nsm_opts *o);

typedef struct sk_nsm_stats {
	int64_t samples;      /* columns processed (images x positions) */
	int iters;            /* largest number of dynamics steps run by a block */
	double delta;         /* |y_t - y_(t-1)| / |y_t| over all samples, last step */
	double ymean;         /* mean output */
	double active;        /* fraction of outputs > 0 */
	double loss;          /* the NSM objective of the batch (sk_nsm_step only) */
	double eta;           /* the step size used */
	double lambda;        /* largest eigenvalue of M (power iteration) */
} sk_nsm_stats;

typedef struct sk_nsm_work sk_nsm_work;

typedef struct sk_nsm {
	sk_nsm_opts o;
	int d;                /* patch size C*k*k */
	int ho, wo, p;        /* output height, width, positions */
	/* The parameters.  sk_nsm_create allocates them; a layer may point W and
	 * M at its own memory instead (own_params = 0). */
	float *W;             /* K x D, row-major: filter i is row i (C x k x k) */
	float *M;             /* K x K */
	float *Wz;            /* K x classes (supervised), else NULL */
	int own_params;
	/* private */
	float *A;             /* I - eta M, K x K */
	float eta;            /* the step size of the last call */
	double lambda;        /* lambda_max(M) of the last call (eta_auto) */
	float *pv;            /* power-iteration vectors, 2 K */
	float *accYX, *accYY, *accXX;   /* reduced accumulators */
	double *accYZ, *cnt;
	void *mem;            /* the block of the arrays above (W, M and Wz when owned) */
	sk_nsm_work *work;
	int nwork;
	struct sk_pool *pool; /* nwork workers */
} sk_nsm;

/* Check the options and allocate everything (no allocation afterwards).
 * `params` = 1 allocates W, M (and Wz) owned by the solver. */
sk_nsm *sk_nsm_create(const sk_nsm_opts *o, int params);
void sk_nsm_free(sk_nsm *s);

/* W as the reference code does: "conv" draws U(-1/sqrt(D), 1/sqrt(D)) (the
 * PyTorch Conv2d default), "unit" draws N(0, 1) rows scaled to unit norm.
 * M = I; Wz (supervised) U(-1/sqrt(classes), 1/sqrt(classes)), PyTorch's
 * Linear default, as the reference's label encoder. */
void sk_nsm_init(sk_nsm *s, int how, uint64_t seed);

/* Run the dynamics on n <= max_batch images x (n x C x H x W).  y (n x K x
 * Ho x Wo) receives the outputs when non-NULL.  labels: supervised label term
 * (NULL = none, as at inference).  Returns 0, or -1 on a bad label. */
int sk_nsm_forward(sk_nsm *s, int n, const float *x, const int32_t *labels, float *y, sk_nsm_stats *st);

/* The largest eigenvalue of the symmetric K x K matrix M by power iteration
 * (tmp: 2 K floats). */
double sk_nsm_lambda_max(int k, const float *M, float *tmp);

/* One training step: dynamics, then the Hebbian / anti-Hebbian updates with
 * learning rate lr.  labels is required when supervised.  -1 with an error
 * when the outputs are non-finite (parameters unchanged) or the updated
 * weights are (parameters then spoilt: the caller keeps its last checkpoint). */
int sk_nsm_step(sk_nsm *s, int n, const float *x, const int32_t *labels, float lr, sk_nsm_stats *st);

/* The dynamics on one block of `ncol` independent samples, exposed for the
 * tests: A = I - eta M (K x K), v = eta u (K x ncol, row-major), y and t are
 * K x ncol work arrays; the result is left in y.  Returns the steps run and
 * stores the last step's squared change and squared norm in d2 and y2. */
int sk_nsm_dynamics(int k, int ncol, const float *A, const float *v, float *y, float *t, int iters, float tol,
                    double *d2, double *y2);

#endif
