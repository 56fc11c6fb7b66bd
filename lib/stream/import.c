/* import.c: idx, CIFAR and npy parsers, and the streaming importer that
 * turns any mix of compatible inputs into chunked `images` / `labels`
 * records. */
#include "sk_import.h"
#include "sk_data.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- element conversion ---- */

/* Element types as stored in foreign files. */
typedef enum etype { E_U8, E_I8, E_I16, E_I32, E_I64, E_F32, E_F64 } etype;

static size_t esize(etype e)
{
	static const size_t sz[] = {1, 1, 2, 4, 8, 4, 8};
	return sz[e];
}

static int e_is_int(etype e) { return e <= E_I64; }

static uint64_t load_uint(const unsigned char *p, size_t n, int big)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[big ? i : n - 1 - i] << (8 * (n - 1 - i));
	return v;
}

static uint32_t bswap32(uint32_t v)
{
	return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

/* n 4-byte words from big-endian to host (little-endian) order, in place. */
static void swap32_inplace(void *buf, size_t n)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < n; i++, p += 4) {
		uint32_t v;
		memcpy(&v, p, 4);
		v = bswap32(v);
		memcpy(p, &v, 4);
	}
}

/* Convert n elements of type e (byte order `big`) into dtype t.  Integers
 * that do not fit an i32 are an error; floats become f32.  Messages count
 * elements from `base`. */
static int convert_at(const void *in, etype e, int big, size_t n, void *out, sk_dtype t, const char *name,
                      size_t base)
{
	const unsigned char *p = in;
	size_t es = esize(e);
	if ((e == E_F32 && t == SK_F32) || (e == E_I32 && t == SK_I32)) {
		/* the same 4-byte values: a copy, or a byte swap */
		memmove(out, in, 4 * n);
		if (big)
			swap32_inplace(out, n);
		return 0;
	}
	for (size_t i = 0; i < n; i++, p += es) {
		uint64_t u = es == 1 ? p[0] : load_uint(p, es, big);
		double v;
		int64_t iv = 0;
		switch (e) {
		case E_U8: iv = (int64_t)u; break;
		case E_I8: iv = (int8_t)u; break;
		case E_I16: iv = (int16_t)u; break;
		case E_I32: iv = (int32_t)(uint32_t)u; break;
		case E_I64: iv = (int64_t)u; break;
		default: break;
		}
		if (e == E_F32) {
			uint32_t w = (uint32_t)u;
			float f;
			memcpy(&f, &w, 4);
			v = f;
		} else if (e == E_F64) {
			memcpy(&v, &u, 8);
		} else {
			v = (double)iv;
		}
		switch (t) {
		case SK_U8:
			if (!e_is_int(e) || iv < 0 || iv > 255)
				return sk_error("%s: value %g at element %zu does not fit u8", name, v, base + i);
			((uint8_t *)out)[i] = (uint8_t)iv;
			break;
		case SK_I32:
			if (!e_is_int(e))
				return sk_error("%s: floating-point values where integers were expected", name);
			if (iv < INT32_MIN || iv > INT32_MAX)
				return sk_error("%s: value %lld at element %zu does not fit i32", name, (long long)iv, base + i);
			((int32_t *)out)[i] = (int32_t)iv;
			break;
		case SK_F32:
			((float *)out)[i] = (float)v;
			if (isinf(((float *)out)[i]) && !isinf(v))   /* f8 beyond FLT_MAX */
				return sk_error("%s: value %g at element %zu does not fit f32", name, v, base + i);
			break;
		}
	}
	return 0;
}

static int convert(const void *in, etype e, int big, size_t n, void *out, sk_dtype t, const char *name)
{
	return convert_at(in, e, big, n, out, t, name, 0);
}

/* ---- idx ---- */

typedef struct idxhead {
	etype e;
	int ndim;
	int64_t shape[SK_MAXDIM];
	size_t count;      /* elements */
	size_t bytes;      /* payload bytes as stored */
} idxhead;

static int idx_head(sk_src *s, idxhead *h)
{
	unsigned char m[4], d[4 * SK_MAXDIM];
	if (sk_src_need(s, m, 4, "idx header") < 0)
		return -1;
	if (m[0] || m[1])
		return sk_error("%s: bad idx magic %02x%02x%02x%02x (expected 0000TTNN)", s->name, m[0], m[1], m[2], m[3]);
	switch (m[2]) {
	case 0x08: h->e = E_U8; break;
	case 0x09: h->e = E_I8; break;
	case 0x0B: h->e = E_I16; break;
	case 0x0C: h->e = E_I32; break;
	case 0x0D: h->e = E_F32; break;
	case 0x0E: h->e = E_F64; break;
	default: return sk_error("%s: bad idx type code 0x%02x", s->name, m[2]);
	}
	h->ndim = m[3];
	if (h->ndim < 1 || h->ndim > SK_MAXDIM)
		return sk_error("%s: idx with %d dimensions (1 to %d allowed)", s->name, h->ndim, SK_MAXDIM);
	if (sk_src_need(s, d, 4 * (size_t)h->ndim, "idx header") < 0)
		return -1;
	for (int i = 0; i < h->ndim; i++)
		h->shape[i] = (int64_t)load_uint(d + 4 * i, 4, 1);
	size_t bytes;
	/* Checked as u8 so that the stored element size is applied below. */
	if (sk_shape_check(SK_U8, h->ndim, h->shape, &h->count, NULL) < 0 ||
	    sk_mul_size(h->count, esize(h->e), &bytes) < 0 || bytes > SK_MAX_BYTES)
		return sk_error_prefix("%s: idx header", s->name);
	h->bytes = bytes;
	if (s->rawsize && s->rawsize != 4 + 4 * (uint64_t)h->ndim + bytes) {
		char sh[128];
		sk_shape_str(h->ndim, h->shape, sh, sizeof sh);
		return sk_error("%s: idx header says %s (%zu data bytes) but the file has %llu", s->name, sh, bytes,
		                (unsigned long long)(s->rawsize - 4 - 4 * (uint64_t)h->ndim));
	}
	return 0;
}

static sk_dtype idx_out_dtype(etype e)
{
	return e == E_U8 ? SK_U8 : e_is_int(e) ? SK_I32 : SK_F32;
}

int sk_idx_read(sk_src *s, sk_tensor *out)
{
	idxhead h;
	void *raw = NULL;
	memset(out, 0, sizeof *out);
	if (idx_head(s, &h) < 0)
		return -1;
	if (!s->rawsize && h.bytes > SK_IMPORT_MAX_CHUNK)
		return sk_error("%s: idx too large to read whole (%zu bytes)", s->name, h.bytes);
	if (sk_tensor_init(out, idx_out_dtype(h.e), h.ndim, h.shape) < 0)
		return -1;
	raw = h.e == E_U8 ? out->data : malloc(h.bytes ? h.bytes : 1);
	if (!raw) {
		sk_tensor_free(out);
		return sk_error("out of memory reading %s", s->name);
	}
	int rc = sk_src_need(s, raw, h.bytes, "idx data");
	if (rc == 0 && h.e != E_U8)
		rc = convert(raw, h.e, 1, h.count, out->data, out->dtype, s->name);
	if (rc == 0 && sk_src_at_end(s) != 1)
		rc = sk_error("%s: trailing data after the idx payload", s->name);
	if (raw != out->data)
		free(raw);
	if (rc < 0)
		sk_tensor_free(out);
	return rc;
}

/* ---- npy ---- */

typedef struct npyhead {
	etype e;
	int big, fortran, ndim;
	int64_t shape[SK_MAXDIM];
	size_t count, bytes;
} npyhead;

static const char *skipws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A quoted Python string literal (no escapes needed for our keys). */
static const char *pystr(const char *p, char *buf, size_t len)
{
	char q = *p;
	size_t k = 0;
	if (q != '\'' && q != '"')
		return NULL;
	for (p++; *p && *p != q; p++) {
		if (*p == '\\' || k + 1 >= len)
			return NULL;
		buf[k++] = *p;
	}
	if (*p != q)
		return NULL;
	buf[k] = 0;
	return p + 1;
}

static int npy_descr(const char *d, npyhead *h, const char *name)
{
	char bo = d[0];
	if (bo != '<' && bo != '>' && bo != '|' && bo != '=')
		return sk_error("%s: unsupported npy dtype '%s'", name, d);
	h->big = bo == '>';
	const char *t = d + 1;
	if (!strcmp(t, "u1")) h->e = E_U8;
	else if (!strcmp(t, "i1")) h->e = E_I8;
	else if (!strcmp(t, "i2")) h->e = E_I16;
	else if (!strcmp(t, "i4")) h->e = E_I32;
	else if (!strcmp(t, "i8")) h->e = E_I64;
	else if (!strcmp(t, "f4")) h->e = E_F32;
	else if (!strcmp(t, "f8")) h->e = E_F64;
	else return sk_error("%s: unsupported npy dtype '%s' (u1, i1, i2, i4, i8, f4, f8 are)", name, d);
	return 0;
}

static int npy_head(sk_src *s, npyhead *h)
{
	unsigned char m[12];
	char *txt = NULL;
	int got_d = 0, got_f = 0, got_s = 0;
	memset(h, 0, sizeof *h);
	if (sk_src_need(s, m, 8, "npy header") < 0)
		return -1;
	if (memcmp(m, "\x93NUMPY", 6))
		return sk_error("%s: bad npy magic", s->name);
	if (m[6] < 1 || m[6] > 3)
		return sk_error("%s: npy version %d.%d not supported (1.0 to 3.0 are)", s->name, m[6], m[7]);
	size_t hl;
	if (m[6] == 1) {
		if (sk_src_need(s, m + 8, 2, "npy header") < 0)
			return -1;
		hl = (size_t)m[8] | (size_t)m[9] << 8;
	} else {
		if (sk_src_need(s, m + 8, 4, "npy header") < 0)
			return -1;
		hl = (size_t)load_uint(m + 8, 4, 0);
	}
	if (hl > 65536)
		return sk_error("%s: npy header of %zu bytes (limit 65536)", s->name, hl);
	txt = malloc(hl + 1);
	if (!txt)
		return sk_error("out of memory");
	if (sk_src_need(s, txt, hl, "npy header") < 0)
		goto fail;
	txt[hl] = 0;
	if (strlen(txt) != hl) {
		sk_error("%s: NUL byte in the npy header", s->name);
		goto fail;
	}
	const char *p = skipws(txt);
	if (*p++ != '{')
		goto bad;
	for (;;) {
		char key[64], val[64];
		p = skipws(p);
		if (*p == '}')
			break;
		if (!(p = pystr(p, key, sizeof key)))
			goto bad;
		p = skipws(p);
		if (*p++ != ':')
			goto bad;
		p = skipws(p);
		if (!strcmp(key, "descr")) {
			if (!(p = pystr(p, val, sizeof val))) {
				sk_error("%s: unsupported npy dtype (structured arrays are not)", s->name);
				goto fail;
			}
			if (npy_descr(val, h, s->name) < 0)
				goto fail;
			got_d = 1;
		} else if (!strcmp(key, "fortran_order")) {
			if (!strncmp(p, "True", 4))
				h->fortran = 1, p += 4;
			else if (!strncmp(p, "False", 5))
				h->fortran = 0, p += 5;
			else
				goto bad;
			got_f = 1;
		} else if (!strcmp(key, "shape")) {
			if (*p++ != '(')
				goto bad;
			h->ndim = 0;
			for (;;) {
				p = skipws(p);
				if (*p == ')')
					break;
				if (!isdigit((unsigned char)*p))
					goto bad;
				if (h->ndim >= SK_MAXDIM) {
					sk_error("%s: npy array with more than %d dimensions", s->name, SK_MAXDIM);
					goto fail;
				}
				errno = 0;
				char *end;
				unsigned long long v = strtoull(p, &end, 10);
				if (end - p > 20)
					end = (char *)p + 20;
				if (errno || v > (unsigned long long)SK_MAX_EXTENT) {
					sk_error("%s: npy dimension %.*s exceeds the limit %lld", s->name, (int)(end - p), p,
					         (long long)SK_MAX_EXTENT);
					goto fail;
				}
				h->shape[h->ndim++] = (int64_t)v;
				p = skipws(end);
				if (*p == 'L')
					p = skipws(p + 1);
				if (*p == ',')
					p++;
				else if (*p != ')')
					goto bad;
			}
			p++;
			got_s = 1;
		} else {
			goto bad;
		}
		p = skipws(p);
		if (*p == ',')
			p++;
		else if (*p != '}')
			goto bad;
	}
	if (!got_d || !got_f || !got_s)
		goto bad;
	free(txt);
	txt = NULL;
	size_t bytes;
	if (sk_shape_check(SK_U8, h->ndim, h->shape, &h->count, NULL) < 0 ||
	    sk_mul_size(h->count, esize(h->e), &bytes) < 0 || bytes > SK_MAX_BYTES)
		return sk_error_prefix("%s: npy shape", s->name);
	h->bytes = bytes;
	if (s->rawsize && s->rawsize != s->pos + bytes)
		return sk_error("%s: npy header says %zu data bytes but the file has %llu", s->name, bytes,
		                (unsigned long long)(s->rawsize - s->pos));
	return 0;
bad:
	sk_error("%s: malformed npy header", s->name);
fail:
	free(txt);
	return -1;
}

static sk_dtype npy_out_dtype(etype e)
{
	return e == E_U8 ? SK_U8 : e_is_int(e) ? SK_I32 : SK_F32;
}

/* Reorder a Fortran-order array (first index fastest) into C order. */
static void fortran_to_c(const unsigned char *in, unsigned char *out, int ndim, const int64_t *shape, size_t es,
                         size_t count)
{
	int64_t idx[SK_MAXDIM] = {0}, fst[SK_MAXDIM];
	int64_t st = 1;
	for (int d = 0; d < ndim; d++) {
		fst[d] = st;
		st *= shape[d];
	}
	for (size_t i = 0; i < count; i++) {
		int64_t off = 0;
		for (int d = 0; d < ndim; d++)
			off += idx[d] * fst[d];
		memcpy(out + i * es, in + (size_t)off * es, es);
		for (int d = ndim - 1; d >= 0; d--) {
			if (++idx[d] < shape[d])
				break;
			idx[d] = 0;
		}
	}
}

/* The payload of an npy whose header is read, whole, in C order. */
static int npy_payload(sk_src *s, const npyhead *h, sk_tensor *out)
{
	unsigned char *raw, *tmp = NULL;
	if (!s->rawsize && h->bytes > SK_IMPORT_MAX_CHUNK * 4)
		return sk_error("%s: npy array too large to read whole (%zu bytes)", s->name, h->bytes);
	if (sk_tensor_init(out, npy_out_dtype(h->e), h->ndim, h->shape) < 0)
		return -1;
	int direct = (h->e == E_U8 || (!h->big && (h->e == E_I32 || h->e == E_F32))) && !h->fortran;
	raw = direct ? out->data : malloc(h->bytes ? h->bytes : 1);
	if (!raw) {
		sk_tensor_free(out);
		return sk_error("out of memory reading %s", s->name);
	}
	int rc = sk_src_need(s, raw, h->bytes, "npy data");
	if (rc == 0 && h->fortran) {
		tmp = malloc(h->bytes ? h->bytes : 1);
		if (!tmp)
			rc = sk_error("out of memory reading %s", s->name);
		else {
			fortran_to_c(raw, tmp, h->ndim, h->shape, esize(h->e), h->count);
			free(raw);
			raw = tmp;
		}
	}
	if (rc == 0 && !direct)
		rc = convert(raw, h->e, h->big, h->count, out->data, out->dtype, s->name);
	if (raw != out->data)
		free(raw);
	if (rc < 0)
		sk_tensor_free(out);
	return rc;
}

int sk_npy_read(sk_src *s, sk_tensor *out)
{
	npyhead h;
	memset(out, 0, sizeof *out);
	if (npy_head(s, &h) < 0 || npy_payload(s, &h, out) < 0)
		return -1;
	if (sk_src_at_end(s) != 1) {
		sk_tensor_free(out);
		return sk_error("%s: trailing data after the npy payload", s->name);
	}
	return 0;
}

/* ---- CIFAR ---- */

int sk_cifar_read(sk_src *s, int kind, sk_tensor *images, sk_tensor *labels)
{
	size_t rs = kind == 100 ? 3074 : 3073, off = kind == 100 ? 2 : 1, cap = SK_IMPORT_MAX_CHUNK / rs;
	unsigned char *rec = malloc(rs);
	int64_t n = 0;
	memset(images, 0, sizeof *images);
	memset(labels, 0, sizeof *labels);
	if (!rec)
		return sk_error("out of memory");
	uint8_t *img = NULL;
	int32_t *lab = NULL;
	size_t ncap = 0;
	for (;;) {
		long long r = sk_src_read(s, rec, rs);
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		if ((size_t)r < rs) {
			sk_error("%s: truncated record %lld (%lld of %zu bytes)", s->name, (long long)n, r, rs);
			goto fail;
		}
		int lab_v = rec[off - 1];
		if (lab_v >= kind || (kind == 100 && rec[0] >= 20)) {
			sk_error("%s: record %lld: label %d out of range (0..%d)", s->name, (long long)n, lab_v, kind - 1);
			goto fail;
		}
		if ((size_t)n == ncap) {
			if (ncap >= cap) {
				sk_error("%s: more than %zu records", s->name, cap);
				goto fail;
			}
			ncap = ncap ? 2 * ncap : 64;
			uint8_t *ni = realloc(img, ncap * 3072);
			int32_t *nl = ni ? realloc(lab, ncap * sizeof *lab) : NULL;
			if (ni)
				img = ni;
			if (nl)
				lab = nl;
			if (!ni || !nl) {
				sk_error("out of memory");
				goto fail;
			}
		}
		memcpy(img + (size_t)n * 3072, rec + off, 3072);
		lab[n++] = lab_v;
	}
	int64_t is[4] = {n, 3, 32, 32};
	if (sk_tensor_init(images, SK_U8, 4, is) < 0 || sk_tensor_init(labels, SK_I32, 1, is) < 0)
		goto fail;
	if (n) {
		memcpy(images->data, img, (size_t)n * 3072);
		memcpy(labels->data, lab, (size_t)n * sizeof *lab);
	}
	free(img);
	free(lab);
	free(rec);
	return 0;
fail:
	free(img);
	free(lab);
	free(rec);
	sk_tensor_free(images);
	sk_tensor_free(labels);
	return -1;
}

/* ---- the streaming importer ---- */

/* One input (or an images file with its labels file) yielding examples. */
typedef struct part {
	sk_format fmt;
	char *path, *lpath;      /* images input, labels input (idx, npy) */
	sk_src src, lsrc;
	int open, lopen;
	etype e, le;             /* stored element types */
	int big, lbig;           /* stored byte order */
	size_t ex_in;            /* stored bytes per example */
	int64_t n;               /* examples, -1 when unknown (gzip CIFAR) */
	int64_t done;
	int label;               /* PNG: class, or -1 */
	sk_tensor whole, lwhole; /* npy in Fortran order, reordered in memory */
} part;

struct sk_import {
	sk_import_opts o;
	sk_format fmt;
	part *parts;
	int nparts, cur;
	sk_dtype dtype;
	int ndim;                /* per example */
	int64_t shape[4];
	size_t exbytes;
	int labelled;
	int64_t chunk;
	uint8_t *img;            /* chunk buffer */
	int32_t *lab;
	unsigned char *scratch;
	size_t scratch_cap;
	int64_t have;            /* examples in the buffer */
	int pending;             /* labels record to hand out */
	int64_t count;
	int emitted;
	char *classes, *source;
	/* single-record mode (npy -n NAME) */
	sk_tensor single;
	int single_state;
	int png_c;
	unsigned char *stdin_png;   /* a PNG read whole from stdin ("-") */
	size_t stdin_len;
};

/* Open a PNG input: a file, or the copy of stdin. */
static int png_open(sk_import *im, const char *path, sk_src *s)
{
	if (strcmp(path, "-"))
		return sk_src_open(s, path);
	sk_src_mem(s, im->stdin_png, im->stdin_len, "(stdin)");
	return 0;
}

static int set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
	return (!s || *dst) ? 0 : sk_error("out of memory");
}

/* Append `s` to a comma-separated list. */
static int list_add(char **list, const char *s)
{
	size_t a = *list ? strlen(*list) : 0, b = strlen(s);
	char *n = realloc(*list, a + b + 2);
	if (!n)
		return sk_error("out of memory");
	if (a)
		n[a++] = ',';
	memcpy(n + a, s, b + 1);
	*list = n;
	return 0;
}

/* The last path component, ignoring trailing slashes, into buf. */
static const char *base_name(const char *p, char *buf, size_t len)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && p[b - 1] != '/')
		b--;
	snprintf(buf, len, "%.*s", (int)(n - b), p + b);
	return buf;
}

/* Bytes read and converted per step when the stored form differs from the
 * output's (a multiple of every element size). */
#define PIECE ((size_t)256 << 10)

static int scratch_need(sk_import *im, size_t n)
{
	if (n <= im->scratch_cap)
		return 0;
	unsigned char *b = realloc(im->scratch, n);
	if (!b)
		return sk_error("out of memory (%zu bytes)", n);
	im->scratch = b;
	im->scratch_cap = n;
	return 0;
}

static part *add_part(sk_import *im)
{
	part *np = realloc(im->parts, sizeof *np * (size_t)(im->nparts + 1));
	if (!np) {
		sk_error("out of memory");
		return NULL;
	}
	im->parts = np;
	part *p = &np[im->nparts++];
	memset(p, 0, sizeof *p);
	p->label = -1;
	return p;
}

/* Set (first part) or check (later parts) the per-example layout. */
static int agree(sk_import *im, const char *name, sk_dtype t, int ndim, const int64_t *shape)
{
	size_t bytes;
	if (ndim > 4)
		return sk_error("%s: %d dimensions per example (at most 4)", name, ndim);
	if (sk_shape_check(t, ndim, shape, NULL, &bytes) < 0)
		return sk_error_prefix("%s", name);
	if (bytes == 0)
		return sk_error("%s: examples of zero size", name);
	if (bytes > SK_IMPORT_MAX_EXAMPLE)
		return sk_error("%s: examples of %zu bytes (limit %zu)", name, bytes, SK_IMPORT_MAX_EXAMPLE);
	if (!im->exbytes) {
		im->dtype = t;
		im->ndim = ndim;
		for (int d = 0; d < ndim; d++)
			im->shape[d] = shape[d];
		im->exbytes = bytes;
		return 0;
	}
	char a[96], b[96];
	int same = im->dtype == t && im->ndim == ndim;
	for (int d = 0; same && d < ndim; d++)
		same = im->shape[d] == shape[d];
	if (!same)
		return sk_error("%s: examples are %s %s but the first input's are %s %s", name, sk_dtype_name(t),
		                sk_shape_str(ndim, shape, a, sizeof a), sk_dtype_name(im->dtype),
		                sk_shape_str(im->ndim, im->shape, b, sizeof b));
	return 0;
}

static int open_src(sk_src *s, const char *path, sk_format want, sk_format *got)
{
	const unsigned char *b;
	if (sk_src_open(s, path) < 0)
		return -1;
	long long n = sk_src_peek(s, 1 << 20, &b);
	if (n < 0)
		return -1;
	if (want != SK_FMT_AUTO) {
		*got = want;
		return 0;
	}
	if (sk_format_detect(b, (size_t)n, n < (1 << 20), got) < 0)
		return sk_error_prefix("%s", s->name);
	return 0;
}

/* ---- idx and npy inputs: images and labels files, paired in order ---- */

typedef struct arrinfo {
	char *path;
	sk_src src;
	int is_labels;
	etype e;
	int big, fortran, ndim;
	int64_t shape[SK_MAXDIM];
	size_t bytes;
} arrinfo;

static int arr_head(sk_format f, arrinfo *a)
{
	if (f == SK_FMT_IDX) {
		idxhead h;
		if (idx_head(&a->src, &h) < 0)
			return -1;
		a->e = h.e;
		a->big = 1;
		a->fortran = 0;
		a->ndim = h.ndim;
		memcpy(a->shape, h.shape, sizeof h.shape);
		a->bytes = h.bytes;
	} else {
		npyhead h;
		if (npy_head(&a->src, &h) < 0)
			return -1;
		a->e = h.e;
		a->big = h.big;
		a->fortran = h.fortran;
		a->ndim = h.ndim;
		memcpy(a->shape, h.shape, sizeof h.shape);
		a->bytes = h.bytes;
	}
	a->is_labels = a->ndim == 1 && e_is_int(a->e);
	return 0;
}

/* Reorder a Fortran-order array whole, and read it from memory after. */
static int arr_fortran(arrinfo *a, sk_tensor *keep)
{
	size_t es = esize(a->e), count = a->bytes / es;
	int64_t sh[1] = {(int64_t)a->bytes};
	unsigned char *raw;
	if (!a->src.rawsize && a->bytes > SK_IMPORT_MAX_CHUNK * 4)
		return sk_error("%s: Fortran-order array too large to reorder (%zu bytes)", a->src.name, a->bytes);
	raw = malloc(a->bytes ? a->bytes : 1);
	if (!raw)
		return sk_error("out of memory");
	if (sk_src_need(&a->src, raw, a->bytes, "npy data") < 0 || sk_src_at_end(&a->src) != 1 ||
	    sk_tensor_init(keep, SK_U8, 1, sh) < 0) {
		if (sk_src_at_end(&a->src) == 0)
			sk_error("%s: trailing data after the npy payload", a->src.name);
		free(raw);
		return -1;
	}
	fortran_to_c(raw, keep->data, a->ndim, a->shape, es, count);
	free(raw);
	char name[512];
	snprintf(name, sizeof name, "%s", a->src.name);
	sk_src_close(&a->src);
	sk_src_mem(&a->src, keep->data, a->bytes, name);
	return 0;
}

static int add_arrays(sk_import *im, arrinfo *arrs, int n, sk_format f)
{
	int ni = 0, nl = 0;
	for (int i = 0; i < n; i++)
		if (arrs[i].is_labels)
			nl++;
		else
			ni++;
	if (ni == 0 && nl > 0) {
		/* Labels alone: still a data set of the integers as images?  No:
		 * say what is missing. */
		return sk_error("%s: only labels given (1-D integer array); add the images file, or name the record "
		                "with -n", arrs[0].src.name);
	}
	if (nl && nl != ni)
		return sk_error("%d images inputs but %d labels inputs: give them in pairs", ni, nl);
	im->labelled = nl > 0;
	int li = 0;
	for (int i = 0; i < n; i++) {
		if (arrs[i].is_labels)
			continue;
		arrinfo *a = &arrs[i], *l = NULL;
		if (im->labelled) {
			while (!arrs[li].is_labels)
				li++;
			l = &arrs[li++];
		}
		if (a->ndim < 2 && f == SK_FMT_NPY)
			return sk_error("%s: a 1-D %s array is not a set of examples (name the record with -n)",
			                a->src.name, a->e == E_U8 ? "u1" : "float");
		if (a->ndim < 2)
			return sk_error("%s: 1-D idx of non-integers", a->src.name);
		if (l && l->shape[0] != a->shape[0])
			return sk_error("%s has %lld examples but %s has %lld labels", a->src.name, (long long)a->shape[0],
			                l->src.name, (long long)l->shape[0]);
		/* Per-example shape: idx N x H x W images get a channel. */
		int64_t ex[SK_MAXDIM];
		int exd = a->ndim - 1;
		memcpy(ex, a->shape + 1, sizeof(int64_t) * (size_t)exd);
		if (f == SK_FMT_IDX && exd == 2) {
			ex[2] = ex[1];
			ex[1] = ex[0];
			ex[0] = 1;
			exd = 3;
		}
		sk_dtype t = a->e == E_U8 ? SK_U8 : SK_F32;
		if (agree(im, a->src.name, t, exd, ex) < 0)
			return -1;
		part *p = add_part(im);
		if (!p)
			return -1;
		p->fmt = f;
		p->e = a->e;
		p->big = a->big;
		p->n = a->shape[0];
		p->ex_in = p->n ? a->bytes / (size_t)p->n : 0;
		if (p->n == 0) {
			size_t c;
			sk_shape_check(SK_U8, exd, ex, &c, NULL);
			p->ex_in = c * esize(a->e);
		}
		if (a->fortran && arr_fortran(a, &p->whole) < 0)
			return -1;
		p->src = a->src;
		p->open = 1;
		memset(&a->src, 0, sizeof a->src);
		if (l) {
			if (l->fortran && arr_fortran(l, &p->lwhole) < 0)
				return -1;
			p->le = l->e;
			p->lbig = l->big;
			p->lsrc = l->src;
			p->lopen = 1;
			memset(&l->src, 0, sizeof l->src);
		}
	}
	return 0;
}

/* ---- CIFAR inputs ---- */

static int cifar_classes(sk_import *im, const char *path, int kind)
{
	static const char *c10 = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck";
	char dir[4096], meta[4200], line[256];
	const char *b = strrchr(path, '/');
	snprintf(dir, sizeof dir, "%.*s", b ? (int)(b + 1 - path) : 0, path);
	snprintf(meta, sizeof meta, "%s%s", dir, kind == 100 ? "fine_label_names.txt" : "batches.meta.txt");
	FILE *f = fopen(meta, "r");
	char *list = NULL;
	int n = 0;
	if (f) {
		while (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\r\n")] = 0;
			if (!line[0])
				continue;
			for (char *c = line; *c; c++)
				if (*c == ',')
					*c = ' ';
			if (list_add(&list, line) < 0) {
				fclose(f);
				free(list);
				return -1;
			}
			n++;
		}
		fclose(f);
	}
	if (n == kind) {
		free(im->classes);
		im->classes = list;
		return 0;
	}
	free(list);
	if (kind == 10)
		return set_str(&im->classes, c10);
	return 0;
}

/* ---- PNG inputs ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_png_name(const char *s)
{
	size_t n = strlen(s);
	return n > 4 && !strcasecmp(s + n - 4, ".png");
}

/* Sorted entries of a directory: PNG files (dirs = 0) or subdirectories. */
static int list_dir(const char *path, int dirs, char ***out, int *nout)
{
	DIR *d = opendir(path);
	char **v = NULL;
	int n = 0;
	if (!d)
		return sk_error("cannot open directory %s: %s", path, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		size_t len = strlen(path) + strlen(e->d_name) + 2;
		char *full = malloc(len);
		if (!full)
			goto oom;
		snprintf(full, len, "%s/%s", path, e->d_name);
		struct stat st;
		int isdir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
		if ((dirs && isdir) || (!dirs && !isdir && is_png_name(e->d_name))) {
			char **nv = realloc(v, sizeof *v * (size_t)(n + 1));
			if (!nv) {
				free(full);
				goto oom;
			}
			v = nv;
			v[n++] = full;
		} else {
			free(full);
		}
	}
	closedir(d);
	if (n)
		qsort(v, (size_t)n, sizeof *v, cmp_str);
	*out = v;
	*nout = n;
	return 0;
oom:
	closedir(d);
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return sk_error("out of memory listing %s", path);
}

static int add_png(sk_import *im, const char *path, int label)
{
	part *p = add_part(im);
	if (!p)
		return -1;
	p->fmt = SK_FMT_PNG;
	p->path = strdup(path);
	p->n = 1;
	p->label = label;
	return p->path ? 0 : sk_error("out of memory");
}

static int add_png_inputs(sk_import *im, const char *const *paths, int n)
{
	int ndirs = 0, nfiles = 0;
	char **classes = NULL;
	int nclasses = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
			ndirs++;
		else
			nfiles++;
	}
	/* Class names: the union of every directory's subdirectories. */
	for (int i = 0; i < n && rc == 0; i++) {
		struct stat st;
		char **sub = NULL;
		int ns = 0;
		if (stat(paths[i], &st) || !S_ISDIR(st.st_mode))
			continue;
		if (list_dir(paths[i], 1, &sub, &ns) < 0) {
			rc = -1;
			break;
		}
		for (int j = 0; j < ns; j++) {
			char bb[1024];
			const char *b = base_name(sub[j], bb, sizeof bb);
			int k;
			for (k = 0; k < nclasses; k++)
				if (!strcmp(classes[k], b))
					break;
			if (k == nclasses) {
				char **nc = realloc(classes, sizeof *nc * (size_t)(nclasses + 1));
				if (!nc || !(nc[nclasses] = strdup(b))) {
					if (nc)
						classes = nc;
					rc = sk_error("out of memory");
					break;
				}
				classes = nc;
				nclasses++;
			}
		}
		for (int j = 0; j < ns; j++)
			free(sub[j]);
		free(sub);
	}
	if (rc == 0 && nclasses)
		qsort(classes, (size_t)nclasses, sizeof *classes, cmp_str);
	if (rc == 0 && nclasses && nfiles)
		rc = sk_error("PNG files and class directories mixed: give one or the other");
	im->labelled = nclasses > 0;
	for (int i = 0; i < n && rc == 0; i++) {
		struct stat st;
		if (stat(paths[i], &st) || !S_ISDIR(st.st_mode)) {
			rc = add_png(im, paths[i], -1);
			continue;
		}
		char **v;
		int nv;
		if (nclasses) {
			for (int k = 0; k < nclasses && rc == 0; k++) {
				size_t len = strlen(paths[i]) + strlen(classes[k]) + 2;
				char *sub = malloc(len);
				if (!sub) {
					rc = sk_error("out of memory");
					break;
				}
				snprintf(sub, len, "%s/%s", paths[i], classes[k]);
				if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
					if (list_dir(sub, 0, &v, &nv) < 0)
						rc = -1;
					else {
						for (int j = 0; j < nv; j++) {
							if (rc == 0)
								rc = add_png(im, v[j], k);
							free(v[j]);
						}
						free(v);
					}
				}
				free(sub);
			}
		} else {
			if (list_dir(paths[i], 0, &v, &nv) < 0)
				return -1;
			if (nv == 0)
				rc = sk_error("%s: no PNG files and no class subdirectories", paths[i]);
			for (int j = 0; j < nv; j++) {
				if (rc == 0)
					rc = add_png(im, v[j], -1);
				free(v[j]);
			}
			free(v);
		}
	}
	for (int k = 0; k < nclasses; k++) {
		if (rc == 0 && !im->o.classes)
			rc = list_add(&im->classes, classes[k]);
		free(classes[k]);
	}
	free(classes);
	if (rc < 0)
		return -1;
	/* Pass 1: headers only, to fix the channels and check the sizes. */
	int any_rgb = 0, h0 = 0, w0 = 0;
	for (int i = 0; i < im->nparts; i++) {
		sk_src s;
		int c, h, w;
		if (png_open(im, im->parts[i].path, &s) < 0)
			return -1;
		rc = sk_png_info(&s, &c, &h, &w);
		sk_src_close(&s);
		if (rc < 0)
			return -1;
		if (c == 3)
			any_rgb = 1;
		if (!im->o.height && i == 0) {
			h0 = h;
			w0 = w;
		} else if (!im->o.height && (h != h0 || w != w0))
			return sk_error("%s is %dx%d but %s is %dx%d (use --size HxW --fit crop|pad)", im->parts[i].path, h,
			                w, im->parts[0].path, h0, w0);
	}
	if (im->nparts == 0)
		return sk_error("%s: no PNG files found (in the directory or its class subdirectories)", paths[0]);
	im->png_c = any_rgb ? 3 : 1;
	int64_t ex[3] = {im->png_c, im->o.height ? im->o.height : h0, im->o.height ? im->o.width : w0};
	return agree(im, im->parts[0].path, SK_U8, 3, ex);
}

sk_import *sk_import_open(const char *const *paths, int npaths, const sk_import_opts *o)
{
	sk_import *im = calloc(1, sizeof *im);
	arrinfo *arrs = NULL;
	int narrs = 0;
	if (!im) {
		sk_error("out of memory");
		return NULL;
	}
	im->o = *o;
	im->chunk = o->chunk > 0 ? o->chunk : SK_CHUNK_DEFAULT;
	if (npaths < 1) {
		sk_error("no input");
		goto fail;
	}
	if (o->height < 0 || o->width < 0 || (o->height > 0) != (o->width > 0) || o->height > 65536 || o->width > 65536) {
		sk_error("bad target size %dx%d", o->height, o->width);
		goto fail;
	}
	/* Detect the format from the first input; the others must agree. */
	sk_format f = o->format;
	{
		struct stat st;
		if (stat(paths[0], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (f != SK_FMT_AUTO && f != SK_FMT_PNG) {
				sk_error("%s: is a directory", paths[0]);
				goto fail;
			}
			f = SK_FMT_PNG;
		}
	}
	arrs = calloc((size_t)npaths, sizeof *arrs);
	if (!arrs) {
		sk_error("out of memory");
		goto fail;
	}
	if (f != SK_FMT_PNG) {
		for (int i = 0; i < npaths; i++) {
			sk_format g;
			arrinfo *a = &arrs[narrs++];
			if (open_src(&a->src, paths[i], o->format, &g) < 0)
				goto fail;
			if (i == 0)
				f = g;
			else if (g != f && !((g == SK_FMT_CIFAR10 || g == SK_FMT_CIFAR100) &&
			                     (f == SK_FMT_CIFAR10 || f == SK_FMT_CIFAR100))) {
				sk_error("%s is %s but %s is %s: give inputs of one format", paths[i], sk_format_name(g),
				         paths[0], sk_format_name(f));
				goto fail;
			}
			if (g == SK_FMT_PNG)
				break;
		}
	}
	im->fmt = f;
	if (f == SK_FMT_PNG) {
		/* stdin is read whole once: PNG inputs are read twice */
		for (int i = 0; i < npaths; i++) {
			if (strcmp(paths[i], "-"))
				continue;
			if (im->stdin_png) {
				sk_error("stdin ('-') given twice");
				goto fail;
			}
			sk_src in, *sp = &in;
			if (i < narrs)
				sp = &arrs[i].src;
			else if (sk_src_open(&in, "-") < 0)
				goto fail;
			size_t cap = 1 << 16, len = 0;
			unsigned char *b = malloc(cap);
			long long r = 0;
			while (b && (r = sk_src_read(sp, b + len, cap - len)) > 0) {
				len += (size_t)r;
				if (len == cap) {
					unsigned char *nb = cap < SK_IMPORT_MAX_EXAMPLE ? realloc(b, cap * 2) : NULL;
					if (!nb) {
						r = sk_error("(stdin): PNG larger than %zu bytes", SK_IMPORT_MAX_EXAMPLE);
						break;
					}
					b = nb;
					cap *= 2;
				}
			}
			if (sp == &in)
				sk_src_close(&in);
			if (!b || r < 0) {
				if (!b)
					sk_error("out of memory");
				free(b);
				goto fail;
			}
			im->stdin_png = b;
			im->stdin_len = len;
		}
		for (int i = 0; i < narrs; i++)
			sk_src_close(&arrs[i].src);
		narrs = 0;
		if (o->name) {
			sk_error("-n applies to npy input only");
			goto fail;
		}
		if (add_png_inputs(im, paths, npaths) < 0)
			goto fail;
	} else if (f == SK_FMT_IDX || f == SK_FMT_NPY) {
		for (int i = 0; i < narrs; i++)
			if (arr_head(f, &arrs[i]) < 0)
				goto fail;
		if (o->name) {
			if (f != SK_FMT_NPY || npaths != 1) {
				sk_error("-n NAME takes exactly one npy input");
				goto fail;
			}
			npyhead h;
			memset(&h, 0, sizeof h);
			h.e = arrs[0].e;
			h.big = arrs[0].big;
			h.fortran = arrs[0].fortran;
			h.ndim = arrs[0].ndim;
			memcpy(h.shape, arrs[0].shape, sizeof h.shape);
			h.bytes = arrs[0].bytes;
			h.count = h.bytes / esize(h.e);
			if (npy_payload(&arrs[0].src, &h, &im->single) < 0)
				goto fail;
			if (sk_src_at_end(&arrs[0].src) != 1) {
				sk_error("%s: trailing data after the npy payload", arrs[0].src.name);
				goto fail;
			}
			im->single_state = 1;
		} else if (add_arrays(im, arrs, narrs, f) < 0) {
			goto fail;
		}
		if (f == SK_FMT_IDX && !o->classes) {
			for (int i = 0; i < npaths; i++) {
				char low[4096];
				snprintf(low, sizeof low, "%s", paths[i]);
				for (char *c = low; *c; c++)
					*c = (char)tolower((unsigned char)*c);
				if (strstr(low, "fashion")) {
					if (set_str(&im->classes, "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,"
					                          "Ankle boot") < 0)
						goto fail;
					break;
				}
			}
		}
	} else {
		int kind = f == SK_FMT_CIFAR100 ? 100 : 10;
		int64_t ex[3] = {3, 32, 32};
		for (int i = 0; i < narrs; i++) {
			part *p = add_part(im);
			if (!p)
				goto fail;
			p->fmt = f;
			p->src = arrs[i].src;
			memset(&arrs[i].src, 0, sizeof arrs[i].src);
			p->open = 1;
			p->ex_in = kind == 100 ? 3074 : 3073;
			p->n = -1;
			if (p->src.rawsize) {
				if (p->src.rawsize % p->ex_in) {
					sk_error("%s: truncated record %llu (%llu of %zu bytes)", p->src.name,
					         (unsigned long long)(p->src.rawsize / p->ex_in),
					         (unsigned long long)(p->src.rawsize % p->ex_in), p->ex_in);
					goto fail;
				}
				p->n = (int64_t)(p->src.rawsize / p->ex_in);
			}
		}
		im->labelled = 1;
		if (agree(im, paths[0], SK_U8, 3, ex) < 0)
			goto fail;
		if (!o->classes && cifar_classes(im, paths[0], kind) < 0)
			goto fail;
	}
	if (o->classes && set_str(&im->classes, o->classes) < 0)
		goto fail;
	for (int i = 0; i < npaths; i++) {
		char bb[1024];
		if (list_add(&im->source, base_name(paths[i], bb, sizeof bb)) < 0)
			goto fail;
	}
	if (strlen(im->source) > 1024) {
		/* many files on the command line: keep the attribute short */
		char *cut = im->source + 900;
		while (cut > im->source && *cut != ',')
			cut--;
		snprintf(cut, 100, ",... (%d inputs)", npaths);
	}
	for (int i = 0; i < narrs; i++)
		sk_src_close(&arrs[i].src);
	free(arrs);
	if (!im->single_state) {
		/* Chunk buffers: at most SK_IMPORT_MAX_CHUNK bytes of images, and
		 * by default at most SK_IMPORT_CHUNK_BYTES, so that memory does not
		 * grow with the size of the examples either. */
		if ((size_t)im->chunk > SK_IMPORT_MAX_CHUNK / im->exbytes)
			im->chunk = (int64_t)(SK_IMPORT_MAX_CHUNK / im->exbytes);
		if (o->chunk <= 0 && (size_t)im->chunk > SK_IMPORT_CHUNK_BYTES / im->exbytes)
			im->chunk = (int64_t)(SK_IMPORT_CHUNK_BYTES / im->exbytes);
		if (im->chunk < 1)
			im->chunk = 1;
		im->img = malloc((size_t)im->chunk * im->exbytes);
		im->lab = malloc((size_t)im->chunk * sizeof(int32_t));
		if (!im->img || !im->lab) {
			sk_error("out of memory for a chunk of %lld examples", (long long)im->chunk);
			sk_import_close(im);
			return NULL;
		}
	}
	return im;
fail:
	for (int i = 0; i < narrs; i++)
		sk_src_close(&arrs[i].src);
	free(arrs);
	sk_import_close(im);
	return NULL;
}

/* Place a decoded C x h x w PNG into the example layout, cropping or padding
 * (centred) to the target size. */
static int png_place(sk_import *im, const part *p, const sk_tensor *t, uint8_t *dst)
{
	int c = (int)im->shape[0], H = (int)im->shape[1], W = (int)im->shape[2];
	int h = (int)t->shape[1], w = (int)t->shape[2];
	if ((h != H || w != W) && !im->o.height)
		return sk_error("%s is %dx%d, expected %dx%d", p->path, h, w, H, W);
	if ((h > H || w > W) && im->o.fit == SK_FIT_PAD)
		return sk_error("%s is %dx%d, larger than %dx%d: cannot pad (use --fit crop)", p->path, h, w, H, W);
	if ((h < H || w < W) && im->o.fit == SK_FIT_CROP)
		return sk_error("%s is %dx%d, smaller than %dx%d: cannot crop (use --fit pad)", p->path, h, w, H, W);
	if ((h != H || w != W) && im->o.fit == SK_FIT_NONE)
		return sk_error("%s is %dx%d, expected %dx%d (use --fit crop|pad)", p->path, h, w, H, W);
	memset(dst, 0, im->exbytes);
	int oy = (H - h) / 2, ox = (W - w) / 2;   /* may be negative (crop) */
	const uint8_t *src = t->data;
	for (int ch = 0; ch < c; ch++)
		for (int y = 0; y < H; y++) {
			int sy = y - oy;
			if (sy < 0 || sy >= h)
				continue;
			for (int x = 0; x < W; x++) {
				int sx = x - ox;
				if (sx >= 0 && sx < w)
					dst[((size_t)ch * (size_t)H + (size_t)y) * (size_t)W + (size_t)x] =
						src[((size_t)ch * (size_t)h + (size_t)sy) * (size_t)w + (size_t)sx];
			}
		}
	return 0;
}

/* Read `nb` stored bytes of elements of type e (byte order `big`) from s
 * and convert them into `out` as dtype t, in bounded memory: straight into
 * out when the stored values have the output's size (u8, f32, i32; swapped
 * in place when big-endian), else through scratch PIECE bytes at a time.
 * Returns the bytes read (short only at the end of the input), -1 on error. */
static long long read_convert(sk_import *im, sk_src *s, etype e, int big, size_t nb, void *out, sk_dtype t)
{
	size_t es = esize(e), os = sk_dtype_size(t);
	if ((e == E_U8 && t == SK_U8) || (e == E_F32 && t == SK_F32) || (e == E_I32 && t == SK_I32)) {
		long long r = sk_src_read(s, out, nb);
		if (r > 0 && big && es == 4)
			swap32_inplace(out, (size_t)r / 4);
		return r;
	}
	if (scratch_need(im, PIECE) < 0)
		return -1;
	size_t done = 0;
	while (done < nb) {
		size_t m = nb - done < PIECE ? nb - done : PIECE;
		long long r = sk_src_read(s, im->scratch, m);
		if (r < 0)
			return -1;
		size_t n = (size_t)r / es;
		if (convert_at(im->scratch, e, big, n, (unsigned char *)out + done / es * os, t, s->name, done / es) < 0)
			return -1;
		done += (size_t)r;
		if ((size_t)r < m)
			break;
	}
	return (long long)done;
}

/* Read up to `want` examples of part p into img / lab; returns how many
 * (fewer only when the part is exhausted), -1 on error. */
static long long part_read(sk_import *im, part *p, int64_t want, uint8_t *img, int32_t *lab)
{
	if (p->fmt == SK_FMT_PNG) {
		if (p->done >= 1 || want < 1)
			return 0;
		sk_src s;
		sk_tensor t;
		if (png_open(im, p->path, &s) < 0)
			return -1;
		int rc = sk_png_read(&s, im->png_c, &t);
		sk_src_close(&s);
		if (rc < 0)
			return -1;
		rc = png_place(im, p, &t, img);
		sk_tensor_free(&t);
		if (rc < 0)
			return -1;
		if (lab)
			lab[0] = p->label;
		p->done = 1;
		return 1;
	}
	if (p->fmt == SK_FMT_CIFAR10 || p->fmt == SK_FMT_CIFAR100) {
		size_t rs = p->ex_in, off = p->fmt == SK_FMT_CIFAR100 ? 2 : 1;
		int kind = p->fmt == SK_FMT_CIFAR100 ? 100 : 10;
		/* whole records through a scratch buffer of at most PIECE bytes */
		int64_t per = (int64_t)(PIECE / rs), k = 0;
		if (scratch_need(im, (size_t)per * rs) < 0)
			return -1;
		while (k < want) {
			int64_t m = want - k < per ? want - k : per;
			long long r = sk_src_read(&p->src, im->scratch, (size_t)m * rs);
			if (r < 0)
				return -1;
			if ((size_t)r % rs)
				return sk_error("%s: truncated record %lld (%zu of %zu bytes)", p->src.name,
				                (long long)(p->done + k + (int64_t)((size_t)r / rs)), (size_t)r % rs, rs);
			int64_t got = (int64_t)((size_t)r / rs);
			for (int64_t i = 0; i < got; i++) {
				const unsigned char *rec = im->scratch + (size_t)i * rs;
				if (rec[off - 1] >= kind || (kind == 100 && rec[0] >= 20))
					return sk_error("%s: record %lld: label %d out of range (0..%d)", p->src.name,
					                (long long)(p->done + k + i), rec[off - 1], kind - 1);
				memcpy(img + (size_t)(k + i) * 3072, rec + off, 3072);
				lab[k + i] = rec[off - 1];
			}
			k += got;
			if (got < m)
				break;
		}
		p->done += k;
		return k;
	}
	/* idx or npy, C order */
	int64_t left = p->n - p->done;
	int64_t k = want < left ? want : left;
	size_t nb = (size_t)k * p->ex_in;
	if (k > 0) {
		long long r = read_convert(im, &p->src, p->e, p->big, nb, img, im->dtype);
		if (r < 0)
			return -1;
		if ((size_t)r < nb)
			return sk_error("%s: truncated at example %lld of %lld", p->src.name,
			                (long long)(p->done + (int64_t)((size_t)r / p->ex_in)), (long long)p->n);
		if (im->labelled) {
			size_t lb = (size_t)k * esize(p->le);
			r = read_convert(im, &p->lsrc, p->le, p->lbig, lb, lab, SK_I32);
			if (r < 0)
				return -1;
			if ((size_t)r < lb)
				return sk_error("%s: truncated at label %lld of %lld", p->lsrc.name,
				                (long long)(p->done + (int64_t)((size_t)r / esize(p->le))), (long long)p->n);
			for (int64_t i = 0; i < k; i++)
				if (lab[i] < 0)
					return sk_error("%s: negative label %d at example %lld", p->lsrc.name, lab[i],
					                (long long)(p->done + i));
		}
	}
	p->done += k;
	if (p->done == p->n) {
		if (sk_src_at_end(&p->src) != 1)
			return sk_error("%s: trailing data after %lld examples", p->src.name, (long long)p->n);
		if (im->labelled && sk_src_at_end(&p->lsrc) != 1)
			return sk_error("%s: trailing data after %lld labels", p->lsrc.name, (long long)p->n);
	}
	return k;
}

int sk_import_next(sk_import *im, const char **name, sk_tensor *t)
{
	memset(t, 0, sizeof *t);
	if (im->single_state) {
		if (im->single_state == 2)
			return 0;
		*name = im->o.name;
		*t = im->single;
		t->view = 1;
		im->single_state = 2;
		return 1;
	}
	if (im->pending) {
		im->pending = 0;
		*name = "labels";
		t->dtype = SK_I32;
		t->ndim = 1;
		t->shape[0] = im->have;
		t->data = im->lab;
		t->view = 1;
		return 1;
	}
	int64_t k = 0;
	while (k < im->chunk && im->cur < im->nparts) {
		part *p = &im->parts[im->cur];
		long long r = part_read(im, p, im->chunk - k, im->img + (size_t)k * im->exbytes, im->lab + k);
		if (r < 0)
			return -1;
		k += r;
		if (k < im->chunk || (p->n >= 0 && p->done == p->n)) {
			if (p->fmt == SK_FMT_CIFAR10 || p->fmt == SK_FMT_CIFAR100) {
				int e = sk_src_at_end(&p->src);
				if (e < 0)
					return -1;
				if (!e)
					continue;
			}
			if (p->open)
				sk_src_close(&p->src);
			if (p->lopen)
				sk_src_close(&p->lsrc);
			p->open = p->lopen = 0;
			im->cur++;
		}
	}
	if (k == 0 && im->emitted)
		return 0;
	if (k == 0)   /* streams cannot hold empty tensors: say why here */
		return sk_error("no examples in %s", im->source);
	im->emitted = 1;
	im->have = k;
	im->count += k;
	*name = "images";
	t->dtype = im->dtype;
	t->ndim = 1 + im->ndim;
	t->shape[0] = k;
	for (int d = 0; d < im->ndim; d++)
		t->shape[1 + d] = im->shape[d];
	t->data = im->img;
	t->view = 1;
	im->pending = im->labelled;
	return 1;
}

const char *sk_import_classes(const sk_import *im) { return im->classes; }
const char *sk_import_source(const sk_import *im) { return im->source; }
sk_format sk_import_format(const sk_import *im) { return im->fmt; }
int64_t sk_import_count(const sk_import *im) { return im->count; }

void sk_import_close(sk_import *im)
{
	if (!im)
		return;
	for (int i = 0; i < im->nparts; i++) {
		part *p = &im->parts[i];
		if (p->open)
			sk_src_close(&p->src);
		if (p->lopen)
			sk_src_close(&p->lsrc);
		sk_tensor_free(&p->whole);
		sk_tensor_free(&p->lwhole);
		free(p->path);
		free(p->lpath);
	}
	free(im->parts);
	free(im->img);
	free(im->lab);
	free(im->scratch);
	free(im->classes);
	free(im->source);
	sk_tensor_free(&im->single);
	free(im->stdin_png);
	free(im);
}
