/* export.c: .npy writing (version 1.0, laid out byte for byte as numpy's
 * np.save does, so a round trip npy -> tns -> npy gives the same file). */
#include "sk_import.h"

#include <string.h>

int sk_npy_write_header(FILE *f, sk_dtype t, int ndim, const int64_t *shape)
{
	char h[512];
	const char *descr = t == SK_U8 ? "|u1" : t == SK_I32 ? "<i4" : "<f4";
	size_t n;
	if (ndim < 0 || ndim > SK_MAXDIM)
		return sk_error("cannot write an npy of %d dimensions", ndim);
	n = (size_t)snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int d = 0; d < ndim; d++)
		n += (size_t)snprintf(h + n, sizeof h - n, d ? ", %lld" : "%lld", (long long)shape[d]);
	n += (size_t)snprintf(h + n, sizeof h - n, ndim == 1 ? ",), }" : "), }");
	/* numpy (>= 1.23) leaves room for the first axis to grow to 21 digits */
	if (ndim > 0) {
		char first[32];
		int fl = snprintf(first, sizeof first, "%lld", (long long)shape[0]);
		for (int i = fl; i < 21; i++)
			h[n++] = ' ';
	}
	/* pad with spaces so that magic + length + header + '\n' is a multiple of 64 */
	size_t total = 10 + n + 1;
	size_t pad = 64 - total % 64;   /* numpy pads 1..64, never 0 */
	memset(h + n, ' ', pad);
	n += pad;
	h[n++] = '\n';
	if (n > 65535)
		return sk_error("npy header too long");
	unsigned char m[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
	if (fwrite(m, 1, 10, f) != 10 || fwrite(h, 1, n, f) != n)
		return sk_error("write error");
	return 0;
}

int sk_npy_write(FILE *f, const sk_tensor *t)
{
	if (sk_npy_write_header(f, t->dtype, t->ndim, t->shape) < 0)
		return -1;
	size_t b = sk_tensor_bytes(t);
	if (b && fwrite(t->data, 1, b, f) != b)
		return sk_error("write error");
	return 0;
}
