/* fuzz-model.c: libFuzzer target for the model loader: a model stream (or a
 * spec text) read by sk_model_load, and by sk_model_load_ex handing the
 * checkpoint records that follow a model ("opt.*", "state.*",
 * "train_state") to a callback that reads or skips them.  A loaded model
 * must write and load back with the same parameters.  Any input must give a
 * model or a clean error: no crash, leak or undefined behaviour. */
#include "sk_model.h"

#include <string.h>

#include "fuzz.h"

static int extra(sk_reader *r, const sk_header *h, void *arg)
{
	int *n = arg;
	if ((*n)++ % 2 == 0)
		return sk_reader_skip(r, h);
	sk_tensor t;
	if (sk_reader_payload(r, h, &t) < 0)
		return -1;
	sk_tensor_free(&t);
	return 0;
}

static void roundtrip(sk_model *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fuzz_check(f != NULL);
	fuzz_check(sk_model_write(f, m, 0) == 0);
	fuzz_check(fclose(f) == 0);
	sk_model *b = sk_model_load(fuzz_path((const uint8_t *)buf, len));
	fuzz_check(b != NULL);
	sk_param **pa, **pb;
	int na = sk_model_params(m, &pa), nb = sk_model_params(b, &pb);
	fuzz_check(na == nb && na >= 0);
	for (int i = 0; i < na; i++) {
		fuzz_check(pa[i]->size == pb[i]->size && strcmp(pa[i]->name, pb[i]->name) == 0);
		fuzz_check(memcmp(pa[i]->w, pb[i]->w, pa[i]->size * sizeof(float)) == 0);
	}
	free(pa);
	free(pb);
	sk_model_free(b);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk_model *m = sk_model_load(fuzz_path(data, size));
	if (m) {
		roundtrip(m);
		sk_model_free(m);
	}
	int n = 0;
	m = sk_model_load_ex(fuzz_path(data, size), extra, &n);
	if (m)
		sk_model_free(m);
	return 0;
}
