/* sk_cluster.h: seeded clustering of patch matrices for unsupervised
 * initialisation of similarity templates.
 *
 * X holds n rows of d floats.  Outputs: C or mu (k x d), var (k x d, the
 * per-cluster diagonal variance, floored at 1e-2 times the mean per-dimension
 * variance of X, and at least 1e-6) and w (k mixture weights, summing to 1).
 * Results depend only on the data and the seed.
 */
#ifndef SK_CLUSTER_H
#define SK_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/* One online k-means update (Sculley 2010) of the k x d centres C with the
 * row x: the nearest centre (squared distance; with `spherical`, the largest
 * dot product, for unit centres and a unit x) counts x in cnt[c] and moves
 * towards it by 1/cnt[c].  Returns c.  sk_kmeans's mini-batch phase and
 * nsm-pretrain --algo kmeans (whose counts are checkpointed) use it. */
int sk_kmeans_online(float *C, int k, int d, const float *x, double *cnt, int spherical);

/* Mini-batch k-means (Sculley 2010): `iters` batches of `batch` rows with
 * per-centre learning rates 1/count, then three full Lloyd passes that
 * re-seed empty clusters at the worst-fitted rows; var and w from the final
 * assignment.  var or w may be NULL. */
int sk_kmeans(const float *X, size_t n, int d, int k, int iters, int batch, uint64_t seed, float *C, float *var,
              float *w);

/* Diagonal-covariance Gaussian mixture by EM, started from k-means; a
 * component whose weight falls below 0.2/k is replaced by a split of the
 * heaviest one; stops when the mean log-likelihood changes by less than
 * 5e-3 relative, or after `iters` steps. */
int sk_gmm_diag(const float *X, size_t n, int d, int k, int iters, uint64_t seed, float *mu, float *var, float *w);

/* Mean log-likelihood per row of X under a diagonal GMM (for tests). */
double sk_gmm_loglik(const float *X, size_t n, int d, int k, const float *mu, const float *var, const float *w);

#endif
