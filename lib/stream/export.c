/* export.c: .npy writing (version 1.0, laid out byte for byte as numpy's
 * np.save does, so a round trip npy -> tns -> npy gives the same file);
 * records joined by name, and the PNG montage and TSV text of tns-export. */
#include "sk_import.h"

#include <math.h>
#include <stdlib.h>
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

/* ---- records joined by name (tns-export) ---- */

int sk_joined_add(sk_joined *j, sk_reader *r, const sk_header *h)
{
	sk_tensor *t = &j->t;
	if (!j->name[0]) {
		snprintf(j->name, sizeof j->name, "%s", h->name);
		t->dtype = h->dtype;
		t->ndim = h->ndim;
		memcpy(t->shape, h->shape, sizeof t->shape);
	} else {
		int same = t->dtype == h->dtype && t->ndim == h->ndim && h->ndim > 0;
		for (int d = 1; same && d < h->ndim; d++)
			same = t->shape[d] == h->shape[d];
		if (!same) {
			char a[96], b[96];
			return sk_error("%s: record %ld: '%s' is %s %s but earlier '%s' records are %s %s (cannot join)",
			                sk_reader_name(r), sk_reader_index(r), h->name, sk_dtype_name(h->dtype),
			                sk_shape_str(h->ndim, h->shape, a, sizeof a), j->name, sk_dtype_name(t->dtype),
			                sk_shape_str(t->ndim, t->shape, b, sizeof b));
		}
		t->shape[0] += h->shape[0];
	}
	if (h->rawbytes > SK_MAX_BYTES - j->bytes)
		return sk_error("%s: '%s' records larger than %llu bytes together", sk_reader_name(r), h->name,
		                (unsigned long long)SK_MAX_BYTES);
	/* the buffer grows as the data arrive, not by the header */
	return sk_reader_payload_append(r, h, &t->data, &j->cap, &j->bytes);
}

void sk_joined_free(sk_joined *j) { sk_tensor_free(&j->t); }

/* Values per example: the product of the extents after the first. */
static int64_t per_example(const sk_tensor *t)
{
	int64_t p = 1;
	for (int d = 1; d < t->ndim; d++)
		p *= t->shape[d];
	return p;
}

static double value(const sk_tensor *t, size_t i)
{
	switch (t->dtype) {
	case SK_U8: return ((const uint8_t *)t->data)[i];
	case SK_I32: return ((const int32_t *)t->data)[i];
	default: return ((const float *)t->data)[i];
	}
}

/* ---- PNG montage ---- */

int sk_montage_write(FILE *f, const sk_joined *j, const sk_montage *o)
{
	const sk_tensor *c = &j->t;
	int64_t N, C, H, W;
	if (o->tile[0]) {
		int64_t per = c->ndim ? per_example(c) : 1;
		if (c->ndim < 1 || per != o->tile[0] * o->tile[1] * o->tile[2]) {
			char a[96];
			return sk_error("'%s' is %s: examples of %lld values cannot be read as %lldx%lldx%lld tiles", j->name,
			                sk_shape_str(c->ndim, c->shape, a, sizeof a), (long long)per, (long long)o->tile[0],
			                (long long)o->tile[1], (long long)o->tile[2]);
		}
		N = c->shape[0], C = o->tile[0], H = o->tile[1], W = o->tile[2];
	} else if (c->ndim == 2) {
		N = 1, C = 1, H = c->shape[0], W = c->shape[1];
	} else if (c->ndim == 3) {
		N = c->shape[0], C = 1, H = c->shape[1], W = c->shape[2];
	} else if (c->ndim == 4) {
		N = c->shape[0], C = c->shape[1], H = c->shape[2], W = c->shape[3];
	} else {
		char a[96];
		return sk_error("'%s' is %s: a PNG needs 2 (HxW), 3 (NxHxW) or 4 (NxCxHxW) dimensions, or --tile", j->name,
		                sk_shape_str(c->ndim, c->shape, a, sizeof a));
	}
	int64_t first = 0, nex = N;
	if (o->index >= 0) {
		if (o->index >= N)
			return sk_error("--index %lld out of range: '%s' has %lld examples", (long long)o->index, j->name,
			                (long long)N);
		first = o->index;
		nex = 1;
	}
	int rgb = C == 3;
	int64_t tiles_per_ex = (C == 1 || C == 3) ? 1 : C;   /* one gray tile per channel otherwise */
	int tc = rgb ? 3 : 1;
	int64_t ntiles = nex * tiles_per_ex;
	int64_t cols = o->cols, rows = o->rows;
	if (!cols) {
		if (tiles_per_ex > 1) {
			cols = tiles_per_ex;
			rows = nex;
		} else {
			int64_t t = ntiles < 64 ? ntiles : 64;
			cols = (int64_t)ceil(sqrt((double)t));
			if (cols < 1)
				cols = 1;
			rows = (t + cols - 1) / cols;
		}
	}
	if (ntiles > cols * rows)
		ntiles = cols * rows;
	if (ntiles == 1)
		cols = rows = 1;
	else if (!o->cols && rows * cols > ntiles && tiles_per_ex == 1)
		rows = (ntiles + cols - 1) / cols;
	int64_t big = H > W ? H : W;
	int64_t zoom = o->zoom ? o->zoom : (big < 16 ? (16 + big - 1) / big : 1);
	int gap = ntiles > 1 ? 1 : 0;
	int64_t th = H * zoom, tw = W * zoom;
	int64_t ih = rows * th + (rows - 1) * gap, iw = cols * tw + (cols - 1) * gap;
	if (H < 1 || W < 1 || ih > 65536 || iw > 65536 || ih * iw * tc > (int64_t)1 << 30)
		return sk_error("montage of %lldx%lld pixels is too large or empty (use --grid or --index)",
		                (long long)ih, (long long)iw);
	uint8_t *img = malloc((size_t)(ih * iw * tc));
	if (!img)
		return sk_error("out of memory");
	memset(img, 255, (size_t)(ih * iw * tc));
	int scale = o->scale >= 0 ? o->scale : c->dtype != SK_U8;
	size_t plane = (size_t)(H * W);
	for (int64_t t = 0; t < ntiles; t++) {
		int64_t ex = first + t / tiles_per_ex, ch0 = tiles_per_ex > 1 ? t % tiles_per_ex : 0;
		size_t base = (size_t)ex * (size_t)(C * H * W) + (size_t)ch0 * plane;
		size_t cnt = plane * (size_t)tc;
		double lo = 0, hi = 255;
		if (scale) {
			lo = INFINITY, hi = -INFINITY;
			for (size_t i = 0; i < cnt; i++) {
				double v = value(c, base + i);
				if (v < lo) lo = v;
				if (v > hi) hi = v;
			}
			if (!(hi > lo))
				hi = lo + 1;
		}
		int64_t ty = (t / cols) * (th + gap), tx = (t % cols) * (tw + gap);
		for (int k = 0; k < tc; k++)
			for (int64_t y = 0; y < th; y++)
				for (int64_t x = 0; x < tw; x++) {
					double v = value(c, base + (size_t)k * plane + (size_t)((y / zoom) * W + x / zoom));
					double s = scale ? (v - lo) * 255.0 / (hi - lo) : v;
					uint8_t b = isnan(s) ? 0 : s <= 0 ? 0 : s >= 255 ? 255 : (uint8_t)lrint(s);
					img[(size_t)k * (size_t)(ih * iw) + (size_t)((ty + y) * iw + tx + x)] = b;
				}
	}
	int rc = sk_png_write(f, tc, (int)ih, (int)iw, img);
	free(img);
	return rc;
}

/* ---- TSV ---- */

int sk_tsv_write(FILE *f, const sk_joined *const *c, int n, int header)
{
	int64_t rows = -1;
	for (int i = 0; i < n; i++) {
		int64_t r = c[i]->t.ndim == 0 ? 1 : c[i]->t.shape[0];
		if (rows >= 0 && r != rows)
			return sk_error("'%s' has %lld rows but '%s' has %lld: give records of one length (-n)", c[0]->name,
			                (long long)rows, c[i]->name, (long long)r);
		rows = r;
	}
	if (header) {
		for (int i = 0; i < n; i++) {
			int64_t p = c[i]->t.ndim == 0 ? 1 : per_example(&c[i]->t);
			for (int64_t j = 0; j < p; j++) {
				if (i || j)
					fputc('\t', f);
				if (p == 1)
					fputs(c[i]->name, f);
				else
					fprintf(f, "%s[%lld]", c[i]->name, (long long)j);
			}
		}
		fputc('\n', f);
	}
	for (int64_t r = 0; r < rows; r++) {
		for (int i = 0; i < n; i++) {
			const sk_tensor *t = &c[i]->t;
			int64_t p = t->ndim == 0 ? 1 : per_example(t);
			for (int64_t j = 0; j < p; j++) {
				if (i || j)
					fputc('\t', f);
				size_t k = (size_t)(r * p + j);
				if (t->dtype == SK_F32)
					fprintf(f, "%.6g", ((const float *)t->data)[k]);
				else
					fprintf(f, "%d", (int)value(t, k));
			}
		}
		if (fputc('\n', f) == EOF)
			return sk_error("write error");
	}
	return 0;
}
