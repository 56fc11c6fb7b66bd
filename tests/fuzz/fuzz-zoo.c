/* fuzz-zoo.c: libFuzzer target for the zoo reader: every model of a stream
 * read by sk_zoo_read, then each model's layers used as zoo-encode uses them
 * (a deep copy, a hidden-unit permutation, a numeric attribute).  Checked:
 * every layer's weights and bias lie inside the model's flat vector.  Any
 * input must give a zoo or a clean error: no crash, leak or undefined
 * behaviour. */
#include "sk_zoo.h"

#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_zoo z;
	sk_zoo_init(&z);
	if (sk_zoo_read(fuzz_path(data, size), &z) == 0) {
		for (int i = 0; i < z.n; i++) {
			sk_zoo_model *m = &z.m[i];
			for (int j = 0; j < m->nlayers; j++) {
				const sk_zoo_layer *l = &m->layers[j];
				size_t nw = (size_t)l->out * l->in * (l->conv ? (size_t)l->kh * l->kw : 1);
				fuzz_check(l->out > 0 && l->in > 0 && l->w <= m->nflat && nw <= m->nflat - l->w);
				if (l->b != SK_ZOO_NOB)
					fuzz_check(l->b <= m->nflat && (size_t)l->out <= m->nflat - l->b);
			}
			sk_zoo_model c;
			memset(&c, 0, sizeof c);
			if (sk_zoo_model_copy(&c, m, 1) == 0) {
				(void)sk_zoo_permute(&c, 1, (uint64_t)i);
				sk_zoo_model_free(&c);
			}
		}
		double *acc = malloc(((size_t)z.n + 1) * sizeof *acc);
		fuzz_check(acc != NULL);
		(void)sk_zoo_attr(&z, NULL, z.n, "test_acc", -1e300, 1e300, acc);
		free(acc);
	}
	sk_zoo_free(&z);
	return 0;
}
