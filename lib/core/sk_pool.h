/* sk_pool.h: the one thread pool.
 *
 * A pool of n workers runs a job as n shares: share i on worker i, share 0
 * on the thread that asks for the job, shares 1..n-1 on persistent threads
 * started with the pool.  The caller splits the work by the share index and
 * the share count only, so results depend on the thread count, never on
 * timing.  Every worker (and the caller, at sk_pool_new and at each job)
 * flushes denormals to zero (FTZ and DAZ): tiny values would otherwise take
 * microcode assists that make simple loops many times slower, and every
 * thread computes the same numbers.  One job at a time per pool; a share
 * may use a pool of its own (nested pools).
 */
#ifndef SK_POOL_H
#define SK_POOL_H

typedef struct sk_pool sk_pool;

/* Share i of a job: 0, or -1 with sk_error() set in that thread. */
typedef int (*sk_pool_fn)(void *arg, int i);

/* A pool of n workers (1 to 256); NULL with an error. */
sk_pool *sk_pool_new(int n);
/* Stop and join the threads (NULL is fine). */
void sk_pool_free(sk_pool *p);
int sk_pool_size(const sk_pool *p);
/* Run fn(arg, i) for 0 <= i < n (n at most the pool's size; n <= 0 does
 * nothing) and wait for every share.  0, or -1 with the message of the
 * lowest share that failed. */
int sk_pool_run(sk_pool *p, int n, sk_pool_fn fn, void *arg);

/* Flush denormals to zero (FTZ and DAZ) in the calling thread. */
void sk_fpu_ftz(void);

#endif
