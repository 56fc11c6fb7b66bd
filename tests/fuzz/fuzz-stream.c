/* fuzz-stream.c: libFuzzer target for the stream reader.
 *
 * Reads every record of the input, choosing per record (from the input's
 * last byte and the record index) to decode it whole, stream it through a
 * small buffer, copy it (sk_reader_copy), or skip it.  Invariants checked:
 * a decoded payload has the header's CRC; a record that was read whole
 * writes and reads back to identical bytes.  Any crash, leak, sanitizer
 * report or failed invariant is a finding. */
#include "sk_stream.h"

#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
	if (!cond)
		abort();
}

static void roundtrip(const sk_header *h, const sk_tensor *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&buf, &len);
	check(sk_write_record(w, h->name, t, &h->attrs, h->encoding == SK_DEFLATE ? 1 : 0) == 0);
	fclose(w);
	FILE *f = fmemopen(buf, len, "rb");
	sk_reader *r = sk_reader_fdopen(f, "roundtrip");
	sk_header h2;
	sk_tensor t2;
	check(sk_reader_next(r, &h2) == 1);
	check(strcmp(h2.name, h->name) == 0 && h2.dtype == h->dtype && h2.ndim == h->ndim && h2.crc == h->crc);
	check(h2.attrs.n == h->attrs.n);
	for (int i = 0; i < h->attrs.n; i++)
		check(strcmp(h2.attrs.key[i], h->attrs.key[i]) == 0 && strcmp(h2.attrs.val[i], h->attrs.val[i]) == 0);
	check(sk_reader_payload(r, &h2, &t2) == 0);
	check(memcmp(t2.data, t->data, h->rawbytes) == 0);
	sk_tensor_free(&t2);
	check(sk_reader_next(r, &h2) == 0);
	sk_reader_close(r);
	fclose(f);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned mode = data[size - 1];
	FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
	if (!f)
		return 0;
	sk_reader *r = sk_reader_fdopen(f, "fuzz");
	FILE *sink = fopen("/dev/null", "wb");
	sk_header h;
	int s;
	while ((s = sk_reader_next(r, &h)) > 0) {
		switch ((mode + (unsigned)sk_reader_index(r)) % 4) {
		case 0: {
			sk_tensor t;
			if (sk_reader_payload(r, &h, &t) == 0) {
				check(sk_crc32(0, t.data, h.rawbytes) == h.crc);
				roundtrip(&h, &t);
				sk_tensor_free(&t);
			}
			break;
		}
		case 1: {
			unsigned char buf[37];
			uint32_t crc = 0;
			long n;
			while ((n = sk_reader_read(r, &h, buf, sizeof buf)) > 0)
				crc = sk_crc32(crc, buf, (size_t)n);
			if (n == 0)
				check(crc == h.crc);
			break;
		}
		case 2: sk_reader_copy(r, &h, sink); break;
		default: sk_reader_skip(r, &h); break;
		}
	}
	check(s <= 0);
	if (s < 0)
		check(strncmp(sk_errmsg(), "fuzz: record ", 13) == 0 && !strchr(sk_errmsg(), '\n'));
	sk_header_free(&h);
	sk_reader_close(r);
	fclose(sink);
	fclose(f);
	return 0;
}
