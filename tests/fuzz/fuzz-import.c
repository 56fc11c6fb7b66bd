/* fuzz-import.c: libFuzzer target for every importer.  The first byte
 * selects what is fed the rest of the input:
 *   0 idx, 1 CIFAR-10, 2 CIFAR-100, 3 PNG, 4 npy (whole-array parsers on
 *   memory), 5 format detection then the matching parser, 6 the streaming
 *   importer on a file (format detected, chunk size from the second byte),
 *   7 the same on the data gzip-compressed.
 * Any input must give a clean success or a clean error: no crash, leak or
 * undefined behaviour. */
#include "sk_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void parse(int mode, const uint8_t *d, size_t n)
{
	sk_src s;
	sk_tensor a, b;
	sk_src_mem(&s, d, n, "fuzz");
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	switch (mode) {
	case 0: sk_idx_read(&s, &a); break;
	case 1: sk_cifar_read(&s, 10, &a, &b); break;
	case 2: sk_cifar_read(&s, 100, &a, &b); break;
	case 3: sk_png_read(&s, n & 1 ? 3 : 0, &a); break;
	case 4: sk_npy_read(&s, &a); break;
	}
	sk_tensor_free(&a);
	sk_tensor_free(&b);
	sk_src_close(&s);
}

static void import_file(const uint8_t *d, size_t n, int gz)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/fuzz-import-%d.bin", (int)getpid());
	if (gz) {
		gzFile g = gzopen(path, "wb1");
		if (!g)
			return;
		if (n)
			gzwrite(g, d, (unsigned)n);
		gzclose(g);
	} else {
		FILE *f = fopen(path, "wb");
		if (!f)
			return;
		fwrite(d, 1, n, f);
		fclose(f);
	}
	sk_import_opts o;
	memset(&o, 0, sizeof o);
	o.chunk = n ? 1 + d[0] % 8 : 1;
	const char *paths[2] = {path, path};
	sk_import *im = sk_import_open(paths, n > 1 && (d[1] & 1) ? 2 : 1, &o);
	if (im) {
		const char *name;
		sk_tensor t;
		while (sk_import_next(im, &name, &t) > 0)
			;
		sk_import_close(im);
	}
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int mode = data[0] % 8;
	const uint8_t *d = data + 1;
	size_t n = size - 1;
	if (mode < 5) {
		parse(mode, d, n);
	} else if (mode == 5) {
		sk_format f;
		if (sk_format_detect(d, n, 1, &f) == 0)
			parse(f == SK_FMT_IDX ? 0 : f == SK_FMT_CIFAR10 ? 1 : f == SK_FMT_CIFAR100 ? 2 : f == SK_FMT_PNG ? 3 : 4,
			      d, n);
	} else {
		import_file(d, n, mode == 7);
	}
	return 0;
}
