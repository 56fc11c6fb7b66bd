/* sk_dist.h: data-parallel training over MPI (built with --with-mpi).
 *
 * Kept out of libsimkit proper so that only the programs that need MPI link
 * it (start-up time of the other tools is unaffected).  The training loop
 * calls sk_dist_allreduce through the gradient hook of sk_train.
 */
#ifndef SK_DIST_H
#define SK_DIST_H

#include <stddef.h>
#include "sk_train.h"

typedef struct sk_dist {
	int rank, size;
	int fixed_order;   /* reduce in rank order for bitwise reproducibility */
	float *scratch;    /* fixed-order gather buffer (size * cap floats) */
	size_t cap;
	double comm_seconds;  /* time spent in reductions (for reports) */
	long calls;
} sk_dist;

/* Initialise MPI (MPI_Init) and fill rank and size. */
int sk_dist_init(int *argc, char ***argv, sk_dist *d);
/* sk_dist_init, then make c this rank's share of a data-parallel run: its
 * shard of every batch, gradients summed over the ranks by
 * sk_dist_allreduce (in rank order when fixed_order), and a --resume that
 * may continue with another number of shares. */
int sk_dist_train_init(int *argc, char ***argv, sk_dist *d, int fixed_order, sk_train_config *c);
/* Sum buf[0..n) over all ranks, result on every rank.  With fixed_order the
 * sum is done on rank 0 in rank order (r0 + r1 + ...) and broadcast, so the
 * bits do not depend on MPI's reduction algorithm. */
int sk_dist_allreduce(sk_dist *d, float *buf, size_t n);
/* Broadcast n floats (or bytes) from rank 0. */
int sk_dist_bcast(sk_dist *d, void *buf, size_t bytes);
int sk_dist_barrier(sk_dist *d);
void sk_dist_finalize(sk_dist *d);

#endif
