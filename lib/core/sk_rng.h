/* sk_rng.h: a counter-based random generator.
 *
 * A draw is a pure function of (seed, stream, index): no hidden state, so
 * results never depend on thread scheduling or on how work is split.  By
 * convention `stream` names the purpose (shuffle, init of a parameter,
 * dropout at a step, augmentation of an example) and `index` the element.
 * sk_rng is a small cursor over one (seed, stream) for sequential draws.
 */
#ifndef SK_RNG_H
#define SK_RNG_H

#include <stdint.h>

uint64_t sk_rng_u64(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
float sk_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Standard normal (Box-Muller on two draws at 2*index, 2*index+1). */
float sk_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);
/* Mix several words into one stream id (e.g. purpose, layer, step). */
uint64_t sk_rng_stream(uint64_t a, uint64_t b, uint64_t c);
/* Hash a string (a parameter name) into a stream id. */
uint64_t sk_rng_hash(const char *s);

typedef struct sk_rng {
	uint64_t seed, stream, index;
} sk_rng;

static inline sk_rng sk_rng_make(uint64_t seed, uint64_t stream)
{
	sk_rng r = {seed, stream, 0};
	return r;
}
uint64_t sk_rng_next(sk_rng *r);
float sk_rng_next_uniform(sk_rng *r);
float sk_rng_next_normal(sk_rng *r);
/* Uniform integer in [0, n) without modulo bias. */
uint64_t sk_rng_next_below(sk_rng *r, uint64_t n);
/* Fisher-Yates permutation of 0..n-1 into perm. */
void sk_rng_permute(sk_rng *r, int64_t *perm, int64_t n);

#endif
