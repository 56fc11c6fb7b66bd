/* fuzz-data.c: libFuzzer target for the data-set readers: the whole-set
 * reader (sk_dataset_read, then a seeded split and a gather of a few
 * examples, as snet-train uses them) and the streaming chunk reader
 * (sk_chunks_open/next, as snet-infer uses it) on the same input.  Checked:
 * the two readers agree on the number of examples and the labels.  Any input
 * must give a data set or a clean error: no crash, leak or undefined
 * behaviour. */
#include "sk_data.h"

#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_path(data, size);
	sk_dataset d;
	int whole = sk_dataset_read(path, &d) == 0;
	if (whole) {
		size_t per = d.example_bytes / (d.dtype == SK_U8 ? 1 : 4);
		int64_t idx[3] = {0, d.n / 2, d.n - 1};
		int k = d.n < 3 ? (int)d.n : 3;
		float *x = malloc((size_t)k * per * sizeof *x + 1);
		int32_t lab[3];
		fuzz_check(x != NULL);
		if (k > 0)
			sk_dataset_gather(&d, idx, k, x, lab);
		free(x);
	}
	sk_chunks *c = sk_chunks_open(path);
	int64_t total = 0, nlab = 0;
	int s = -1, labelled = 1, diff = 0;
	if (c) {
		int64_t n, shape[4];
		const float *x;
		const int32_t *labels;
		while ((s = sk_chunks_next(c, &n, &x, &labels, shape)) > 0) {
			fuzz_check(n >= 0);
			if (!labels)
				labelled = 0;
			else if (whole && d.labels)
				for (int64_t i = 0; i < n && total + i < d.n; i++)
					diff |= labels[i] != d.labels[total + i];
			nlab += labels ? n : 0;
			total += n;
		}
		sk_chunks_close(c);
	}
	if (whole && s == 0) {
		fuzz_check(total == d.n && !diff);
		fuzz_check(!d.labels == !labelled || total == 0);
	}
	if (whole) {
		sk_dataset v;
		if (d.n >= 2 && sk_dataset_split(&d, 0.5, 7, &v) == 0)
			sk_dataset_free(&v);
		sk_dataset_free(&d);
	}
	(void)nlab;
	return 0;
}
