/* gradcheck.h: finite-difference gradient checks for any layer sequence.
 *
 * gc_check() builds the spec, draws an input and a random upstream gradient
 * r, and compares the analytic gradients of L = sum(y * r) with central
 * differences, for the input and for every trainable parameter (a sample of
 * coordinates of each).  Points at a kink (one-sided slopes disagree) are
 * skipped, as Caffe's checker does.  Prints one TAP line per tensor checked
 * and returns the number of failures. */
#ifndef SK_GRADCHECK_H
#define SK_GRADCHECK_H

#include "sk_layer.h"

enum {
	GC_POSITIVE = 1,     /* inputs uniform in [0.1, 1] instead of N(0, 1) */
	GC_TRAIN = 2,        /* forward in training mode (dropout, BN batch stats) */
	GC_NO_INPUT = 4,     /* do not check the input gradient */
	GC_INTEGER = 8       /* inputs are small integers (e.g. token ids) */
};

typedef struct gc_opts {
	int n;            /* batch size (default 2) */
	uint64_t seed;    /* default 1 */
	double eps;       /* default 1e-3 */
	double tol;       /* relative tolerance, default 2e-2 */
	int samples;      /* coordinates per tensor (default 40) */
	int flags;
} gc_opts;

int gc_check(const char *spec_text, sk_shape in, const gc_opts *o);

#endif
