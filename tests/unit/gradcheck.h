/* gradcheck.h: finite-difference gradient checks for any layer sequence.
 *
 * gc_check() builds the spec, draws an input and a random upstream gradient
 * r, and compares the analytic gradients of L = sum(y * r) with central
 * differences, for the input and for every trainable parameter (a sample of
 * coordinates of each).  It also checks the layer contract of sk_layer.h:
 *
 *  - the sequence is set up for max_batch = n + extra examples and run
 *    with n: rows n..max_batch-1 of the input and of dy hold NaN, rows
 *    n..max_batch-1 of every output and of dx must stay untouched;
 *  - every output buffer (and every workspace of sk_seq: activations of
 *    child sequences, the ping-pong gradient buffers) holds NaN before each
 *    forward and backward, and dx holds NaN before backward, so a layer
 *    must write every value it owns (all n rows of y and of dx);
 *  - backward runs twice (each after its own forward): parameter
 *    gradients must accumulate (the second pass doubles them), the input
 *    gradient must be overwritten (the second pass gives the same values);
 *  - a third pass without dx (as training runs) gives the same parameter
 *    gradients.
 *
 * A coordinate passes when |a - num| <= atol * S + noise + rtol * max(|a|,
 * |num|), S being the largest magnitude of the tensor's gradient (analytic
 * over all coordinates, numeric over the sample), num the mean of central
 * differences at six steps from eps down to eps/2 (relative to max(1, |v|))
 * and noise their measured spread (see check_tensor()).  At a kink (the
 * one-sided slopes disagree beyond the tolerance) the analytic value may
 * instead match one of the one-sided slopes: the derivative on the side
 * without the kink.  The defaults (eps 1e-3, rtol 2e-3, atol 1e-3) pass
 * correct layers over many seeds and fail a gradient scaled by 1.01.
 * Prints TAP lines (the contract, one per tensor checked) and returns the
 * number of failures.  GC_SEED=K in the environment adds K to every check's
 * seed: other draws, to look for tolerances that pass only by luck. */
#ifndef SK_GRADCHECK_H
#define SK_GRADCHECK_H

#include "sk_layer.h"

enum {
	GC_POSITIVE = 1,     /* inputs uniform in [0.1, 1] instead of N(0, 1) */
	GC_TRAIN = 2,        /* forward in training mode (dropout, BN batch stats) */
	GC_NO_INPUT = 4,     /* do not check the input gradient */
	GC_INTEGER = 8,      /* inputs are small integers (e.g. token ids) */
	GC_NANS = 16,        /* about 1 input in 6 is NaN (missing values) */
	GC_ZERO_INPUT = 32   /* the input gradient must be zero (e.g. nsm backprop=0) */
};

typedef struct gc_opts {
	int n;            /* batch size (default 2) */
	uint64_t seed;    /* default 1 */
	double eps;       /* step relative to max(1, |v|), default 1e-3 */
	double rtol;      /* relative tolerance, default 2e-3 */
	int samples;      /* coordinates per tensor (default 40) */
	int flags;
	double atol;      /* absolute tolerance as a fraction of S, default 1e-3 */
	int extra;        /* max_batch - n (default 3; -1 for 0) */
	void (*tweak)(sk_seq *q);   /* optional, called after the build (tests of the checker) */
} gc_opts;

int gc_check(const char *spec_text, sk_shape in, const gc_opts *o);

#endif
