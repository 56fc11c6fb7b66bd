/* data.c: data sets as streams: read whole (all chunks), split, write in
 * chunks, gather batches, and a bounded-memory chunk reader. */
#include "sk_data.h"
#include "sk_kernels.h"
#include "sk_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sk_dataset_free(sk_dataset *d)
{
	free(d->images);
	free(d->labels);
	sk_attrs_free(&d->attrs);
	memset(d, 0, sizeof *d);
}

/* Check an images record and give its per-example layout. */
static int images_layout(const sk_reader *r, const sk_header *h, int *ndim, int64_t *shape, size_t *exbytes)
{
	if (h->dtype != SK_U8 && h->dtype != SK_F32)
		return sk_error("%s: record %ld: images are %s (u8 or f32 expected)", sk_reader_name(r),
		                sk_reader_index(r), sk_dtype_name(h->dtype));
	if (h->ndim < 2 || h->ndim > 5)
		return sk_error("%s: record %ld: images of %d dimensions (N x D to N x C x H x W expected)",
		                sk_reader_name(r), sk_reader_index(r), h->ndim);
	size_t b = sk_dtype_size(h->dtype);
	*ndim = h->ndim - 1;
	for (int i = 1; i < h->ndim; i++) {
		shape[i - 1] = h->shape[i];
		b *= (size_t)h->shape[i];   /* the reader checked the product */
	}
	for (int i = *ndim; i < 4; i++)
		shape[i] = 0;
	if (b == 0)
		return sk_error("%s: record %ld: examples of zero size", sk_reader_name(r), sk_reader_index(r));
	*exbytes = b;
	return 0;
}

/* Training on a NaN or an infinity gives finite losses (ReLU maps NaN to 0)
 * but parameters that are NaN, and inference NaN outputs: refuse such data
 * where it is read (whole or by chunks). */
static int check_finite(const sk_reader *r, const float *x, int64_t n, size_t per, int64_t first)
{
	for (int64_t i = 0; i < n; i++)
		for (size_t k = 0; k < per; k++)
			if (!isfinite(x[(size_t)i * per + k]))
				return sk_error("%s: record %ld: example %lld has a non-finite value (%g at offset %zu)",
				                sk_reader_name(r), sk_reader_index(r), (long long)(first + i),
				                (double)x[(size_t)i * per + k], k);
	return 0;
}

static int grow(void **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 1 << 16;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : 2 * n;
	void *q = realloc(*p, n);
	if (!q)
		return sk_error("out of memory (%zu bytes)", n);
	*p = q;
	*cap = n;
	return 0;
}

int sk_dataset_read(const char *path, sk_dataset *d)
{
	sk_reader *r;
	sk_header h;
	size_t icap = 0, lcap = 0, ilen = 0, llen = 0;
	int64_t nl = 0;
	int s, have = 0;
	memset(d, 0, sizeof *d);
	memset(&h, 0, sizeof h);
	if (!(r = sk_reader_open(path)))
		return -1;
	while ((s = sk_reader_next(r, &h)) > 0) {
		if (!strcmp(h.name, "images")) {
			int ndim;
			int64_t shape[4];
			size_t exb;
			if (images_layout(r, &h, &ndim, shape, &exb) < 0)
				goto fail;
			if (!have) {
				d->dtype = h.dtype;
				d->ndim = ndim;
				memcpy(d->shape, shape, sizeof shape);
				d->example_bytes = exb;
				if (sk_attrs_copy(&d->attrs, &h.attrs) < 0)
					goto fail;
				have = 1;
			} else if (h.dtype != d->dtype || ndim != d->ndim || memcmp(shape, d->shape, sizeof shape)) {
				char a[96], b[96];
				sk_error("%s: record %ld: images are %s %s but earlier chunks are %s %s", sk_reader_name(r),
				         sk_reader_index(r), sk_dtype_name(h.dtype), sk_shape_str(ndim, shape, a, sizeof a),
				         sk_dtype_name(d->dtype), sk_shape_str(d->ndim, d->shape, b, sizeof b));
				goto fail;
			}
			size_t off = (size_t)d->n * d->example_bytes;
			if (h.rawbytes > SK_MAX_BYTES - off) {
				sk_error("%s: data set larger than %llu bytes", sk_reader_name(r),
				         (unsigned long long)SK_MAX_BYTES);
				goto fail;
			}
			/* the buffer grows as the data arrive, not by the header */
			if (sk_reader_payload_append(r, &h, &d->images, &icap, &ilen) < 0)
				goto fail;
			if (h.dtype == SK_F32 && check_finite(r, (const float *)((char *)d->images + off), h.shape[0],
			                                      exb / sizeof(float), d->n) < 0)
				goto fail;
			d->n += h.shape[0];
		} else if (!strcmp(h.name, "labels")) {
			if (h.dtype != SK_I32 || h.ndim != 1) {
				sk_error("%s: record %ld: labels must be i32 of one dimension", sk_reader_name(r),
				         sk_reader_index(r));
				goto fail;
			}
			size_t off = (size_t)nl * sizeof(int32_t);
			if (h.rawbytes > SK_MAX_BYTES - off) {
				sk_error("%s: too many labels", sk_reader_name(r));
				goto fail;
			}
			void *lp = d->labels;
			int rc = sk_reader_payload_append(r, &h, &lp, &lcap, &llen);
			d->labels = lp;
			if (rc < 0)
				goto fail;
			nl += h.shape[0];
		} else if (sk_reader_skip(r, &h) < 0) {
			goto fail;
		}
	}
	if (s < 0)
		goto fail;
	if (!have) {
		sk_error("%s: no images records (not a data set)", sk_reader_name(r));
		goto fail;
	}
	if (nl && nl != d->n) {
		sk_error("%s: %lld examples but %lld labels", sk_reader_name(r), (long long)d->n, (long long)nl);
		goto fail;
	}
	if (!nl) {
		free(d->labels);
		d->labels = NULL;
	}
	/* give back what the geometric growth left unused */
	if (icap > ilen) {
		void *p = realloc(d->images, ilen);
		if (p)
			d->images = p;
	}
	if (d->labels && lcap > llen) {
		void *p = realloc(d->labels, llen);
		if (p)
			d->labels = p;
	}
	sk_header_free(&h);
	sk_reader_close(r);
	return 0;
fail:
	sk_header_free(&h);
	sk_reader_close(r);
	sk_dataset_free(d);
	return -1;
}

int sk_dataset_split(sk_dataset *d, double frac, uint64_t seed, sk_dataset *v)
{
	memset(v, 0, sizeof *v);
	if (!(frac > 0 && frac < 1))
		return sk_error("split fraction %g must be between 0 and 1", frac);
	int64_t nv = (int64_t)(frac * (double)d->n + 0.5);
	if (nv < 1 || nv >= d->n)
		return sk_error("split of %g of %lld examples leaves a part empty", frac, (long long)d->n);
	int64_t *perm = malloc(sizeof *perm * (size_t)d->n);
	unsigned char *inv = calloc((size_t)d->n, 1);
	if (!perm || !inv) {
		free(perm);
		free(inv);
		return sk_error("out of memory");
	}
	sk_rng r = sk_rng_make(seed, sk_rng_hash("sk_dataset_split"));
	sk_rng_permute(&r, perm, d->n);
	for (int64_t i = d->n - nv; i < d->n; i++)
		inv[perm[i]] = 1;
	free(perm);
	size_t eb = d->example_bytes;
	*v = *d;
	v->n = nv;
	v->images = malloc((size_t)nv * eb);
	v->labels = d->labels ? malloc(sizeof(int32_t) * (size_t)nv) : NULL;
	sk_attrs_init(&v->attrs);
	if (!v->images || (d->labels && !v->labels) || sk_attrs_copy(&v->attrs, &d->attrs) < 0) {
		free(inv);
		sk_dataset_free(v);
		return sk_error("out of memory");
	}
	/* both parts keep the original order of their examples */
	int64_t a = 0, b = 0;
	char *img = d->images;
	for (int64_t i = 0; i < d->n; i++) {
		if (inv[i]) {
			memcpy((char *)v->images + (size_t)b * eb, img + (size_t)i * eb, eb);
			if (d->labels)
				v->labels[b] = d->labels[i];
			b++;
		} else {
			if (a != i) {
				memmove(img + (size_t)a * eb, img + (size_t)i * eb, eb);
				if (d->labels)
					d->labels[a] = d->labels[i];
			}
			a++;
		}
	}
	free(inv);
	d->n = a;
	return 0;
}

int sk_dataset_write(FILE *f, const sk_dataset *d, int64_t chunk, int level)
{
	int64_t shape[5];
	if (chunk <= 0)
		chunk = SK_CHUNK_DEFAULT;
	for (int i = 0; i < d->ndim; i++)
		shape[i + 1] = d->shape[i];
	int64_t s = 0;
	do {
		int64_t k = d->n - s < chunk ? d->n - s : chunk;
		shape[0] = k;
		const char *img = (const char *)d->images + (size_t)s * d->example_bytes;
		if (sk_write_record_raw(f, "images", d->dtype, d->ndim + 1, shape, img, &d->attrs, level) < 0)
			return -1;
		if (d->labels && sk_write_record_raw(f, "labels", SK_I32, 1, shape, d->labels + s, NULL, level) < 0)
			return -1;
		s += k;
	} while (s < d->n);
	return 0;
}

void sk_dataset_gather(const sk_dataset *d, const int64_t *idx, int n, float *out, int32_t *labels)
{
	size_t per = d->example_bytes / sk_dtype_size(d->dtype);
	for (int i = 0; i < n; i++) {
		int64_t j = idx[i];
		float *o = out + (size_t)i * per;
		if (d->dtype == SK_U8) {
			sk_vcvt_u8(per, (const uint8_t *)d->images + (size_t)j * per, o);
		} else {
			memcpy(o, (const float *)d->images + (size_t)j * per, per * sizeof(float));
		}
		if (labels)
			labels[i] = d->labels ? d->labels[j] : 0;
	}
}

/* ---- the chunk reader ---- */

struct sk_chunks {
	sk_reader *r;
	sk_header h;
	int have_h;       /* h holds a header not yet consumed */
	int done;
	void *raw;        /* u8 payload */
	float *x;
	int32_t *y;
	size_t rawcap, xcap, ycap;
	int ndim;
	int64_t shape[4];
	long n;
	int64_t seen;     /* examples before this chunk */
};

sk_chunks *sk_chunks_open(const char *path)
{
	sk_chunks *c = calloc(1, sizeof *c);
	if (!c) {
		sk_error("out of memory");
		return NULL;
	}
	if (!(c->r = sk_reader_open(path))) {
		free(c);
		return NULL;
	}
	return c;
}

int sk_chunks_next(sk_chunks *c, int64_t *n, const float **x, const int32_t **labels, int64_t *shape4)
{
	int s;
	if (c->done)
		return 0;
	for (;;) {
		if (!c->have_h) {
			s = sk_reader_next(c->r, &c->h);
			if (s <= 0) {
				c->done = 1;
				if (s == 0 && c->n == 0)
					return sk_error("%s: no images records (not a data set)", sk_reader_name(c->r));
				return s;
			}
		}
		c->have_h = 0;
		if (!strcmp(c->h.name, "images"))
			break;
		if (sk_reader_skip(c->r, &c->h) < 0)
			return -1;
	}
	int ndim;
	int64_t shape[4];
	size_t exb;
	if (images_layout(c->r, &c->h, &ndim, shape, &exb) < 0)
		return -1;
	if (c->n && (ndim != c->ndim || memcmp(shape, c->shape, sizeof shape)))
		return sk_error("%s: record %ld: the example shape changes between chunks", sk_reader_name(c->r),
		                sk_reader_index(c->r));
	c->ndim = ndim;
	memcpy(c->shape, shape, sizeof shape);
	int64_t k = c->h.shape[0];
	size_t count = (size_t)(c->h.rawbytes / sk_dtype_size(c->h.dtype)), len = 0;
	/* the buffers grow as the data arrive, not by the header */
	if (c->h.dtype == SK_F32) {
		void *xp = c->x;
		int rc = sk_reader_payload_append(c->r, &c->h, &xp, &c->xcap, &len);
		c->x = xp;
		if (rc < 0 || check_finite(c->r, c->x, k, exb / sizeof(float), c->seen) < 0)
			return -1;
	} else {
		if (sk_reader_payload_append(c->r, &c->h, &c->raw, &c->rawcap, &len) < 0)
			return -1;
		void *xp = c->x;
		if (grow(&xp, &c->xcap, count * sizeof(float)) < 0)
			return -1;
		c->x = xp;
		sk_vcvt_u8(count, c->raw, c->x);
	}
	c->n++;
	c->seen += k;
	*labels = NULL;
	s = sk_reader_next(c->r, &c->h);
	if (s < 0)
		return -1;
	if (s == 0) {
		c->done = 1;
	} else if (!strcmp(c->h.name, "labels")) {
		if (c->h.dtype != SK_I32 || c->h.ndim != 1 || c->h.shape[0] != k)
			return sk_error("%s: record %ld: labels do not match the %lld images before them",
			                sk_reader_name(c->r), sk_reader_index(c->r), (long long)k);
		void *yp = c->y;
		size_t ylen = 0;
		int rc = sk_reader_payload_append(c->r, &c->h, &yp, &c->ycap, &ylen);
		c->y = yp;
		if (rc < 0)
			return -1;
		*labels = c->y;
	} else {
		c->have_h = 1;
	}
	*n = k;
	*x = c->x;
	for (int i = 0; i < 4; i++)
		shape4[i] = shape[i];
	return 1;
}

void sk_chunks_close(sk_chunks *c)
{
	if (!c)
		return;
	sk_header_free(&c->h);
	sk_reader_close(c->r);
	free(c->raw);
	free(c->x);
	free(c->y);
	free(c);
}
