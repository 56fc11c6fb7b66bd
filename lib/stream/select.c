/* select.c: examples of a data set kept by range and by a seeded random
 * split, record by record (tns-select; see sk_data.h). */
#include "sk_data.h"
#include "sk_rng.h"

#include <string.h>

/* The stream id of the split's draws: documented in tns-select(1). */
#define SPLIT_STREAM_KEY "tns-select.split"

static int keeps(const sk_select *s, uint64_t stream, int64_t i)
{
	if (s->have_range && (i < s->from || (s->to >= 0 && i >= s->to)))
		return 0;
	if (s->have_split) {
		int in_second = sk_rng_uniform(s->seed, stream, (uint64_t)i) < s->frac;
		if (in_second != s->second)
			return 0;
	}
	return 1;
}

int64_t sk_select_tensor(const sk_select *s, sk_tensor *t, int64_t first)
{
	uint64_t stream = sk_rng_hash(SPLIT_STREAM_KEY);
	int64_t n = t->shape[0], kept = 0;
	size_t row = n > 0 ? sk_tensor_bytes(t) / (size_t)n : 0;
	uint8_t *p = t->data;
	for (int64_t i = 0; i < n; i++)
		if (keeps(s, stream, first + i)) {
			if (kept != i)
				memmove(p + (size_t)kept * row, p + (size_t)i * row, row);
			kept++;
		}
	t->shape[0] = kept;
	return kept;
}
