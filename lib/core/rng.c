/* rng.c: counter-based generator: a strong 64-bit mix of (seed, stream, index). */
#include "sk_rng.h"

#include <math.h>

static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t sk_rng_u64(uint64_t seed, uint64_t stream, uint64_t index)
{
	uint64_t k = mix(seed + 0x9e3779b97f4a7c15ULL);
	k = mix(k ^ (stream + 0x632be59bd9b4e019ULL));
	return mix(k ^ (index * 0x9e3779b97f4a7c15ULL + 0xd1b54a32d192ed03ULL));
}

float sk_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
	return (float)(sk_rng_u64(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

float sk_rng_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
	double u1 = ((double)(sk_rng_u64(seed, stream, 2 * index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double u2 = (double)(sk_rng_u64(seed, stream, 2 * index + 1) >> 11) * (1.0 / 9007199254740992.0);
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t sk_rng_stream(uint64_t a, uint64_t b, uint64_t c)
{
	return mix(mix(mix(a) ^ b) ^ c);
}

uint64_t sk_rng_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return mix(h);
}

uint64_t sk_rng_next(sk_rng *r) { return sk_rng_u64(r->seed, r->stream, r->index++); }
float sk_rng_next_uniform(sk_rng *r) { return sk_rng_uniform(r->seed, r->stream, r->index++); }
float sk_rng_next_normal(sk_rng *r) { return sk_rng_normal(r->seed, r->stream, r->index++); }

uint64_t sk_rng_next_below(sk_rng *r, uint64_t n)
{
	uint64_t lim, x;
	if (n <= 1)
		return 0;
	lim = UINT64_MAX - UINT64_MAX % n;
	do
		x = sk_rng_next(r);
	while (x >= lim);
	return x % n;
}

void sk_rng_permute(sk_rng *r, int64_t *perm, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		perm[i] = i;
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)sk_rng_next_below(r, (uint64_t)i + 1);
		int64_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}
