/* stream.c: the tensor stream (.tns): attributes, record reader and writer,
 * atomic output files, CRC-32.  The format is specified in man/man5/tns.5.
 *
 * Record layout (all records are a multiple of 64 bytes long):
 *
 *   TNS 1\n                     magic and format version
 *   KEY VALUE\n ...             name, dtype, shape, encoding, length, crc32,
 *                               attr.KEY (escaped free text)
 *   end<spaces>\n               terminator, padded so the header is a
 *                               multiple of 64 bytes
 *   payload (length bytes)      raw little-endian row-major, or a zlib stream
 *   zero bytes                  up to the next multiple of 64
 *
 * The reader never trusts a number before checking it: the header is read in
 * 64-byte blocks up to SK_HEADER_MAX, every field is parsed strictly, the
 * shape goes through sk_shape_check before anything is allocated, and the
 * payload is decoded through fixed-size buffers.
 */
#include "sk_stream.h"
#include "sk_cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SK_MAGIC "TNS "
#define SK_FORMAT_VERSION 1
#define SK_ALIGN 64
#define SK_IOBUF (1 << 20)          /* payload buffers */
#define SK_STDIO_BUF (1 << 16)      /* stdio buffers */
#define SK_WRITE_CHUNK ((size_t)1 << 20)

/* ---- CRC ---------------------------------------------------------------- */

static uint32_t crc32_zlib(uint32_t crc, const unsigned char *p, size_t len)
{
	uLong c = crc;
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SK_HAVE_CLMUL 1
/* CRC-32 by carry-less multiplication: fold four 128-bit lanes by 512 bits
 * at a time, then fold to 128, to 64, and reduce (Barrett) to 32 bits.
 * This is the method of Gopal et al., "Fast CRC computation for generic
 * polynomials using PCLMULQDQ" (Intel, 2009), with the folding constants for
 * the reflected polynomial 0xedb88320.  `crc` is the raw (inverted) state;
 * len >= 64 and a multiple of 16. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc32_clmul(uint32_t crc, const unsigned char *p,
                                                                      size_t len)
{
	const __m128i k1k2 = _mm_setr_epi32(0x54442bd4, 0x00000001, (int)0xc6e41596, 0x00000001);
	const __m128i k3k4 = _mm_setr_epi32(0x751997d0, 0x00000001, (int)0xccaa009e, 0x00000000);
	const __m128i k5 = _mm_setr_epi32(0x63cd6124, 0x00000001, 0, 0);
	const __m128i poly = _mm_setr_epi32((int)0xdb710641, 0x00000001, (int)0xf7011641, 0x00000001);
	const __m128i mask32 = _mm_setr_epi32(-1, 0, -1, 0);
	__m128i x0, x1, x2, x3, x4, x5, x6, x7, x8;

	x1 = _mm_loadu_si128((const __m128i *)(p + 0));
	x2 = _mm_loadu_si128((const __m128i *)(p + 16));
	x3 = _mm_loadu_si128((const __m128i *)(p + 32));
	x4 = _mm_loadu_si128((const __m128i *)(p + 48));
	x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
	p += 64;
	len -= 64;
	x0 = k1k2;
	while (len >= 64) {
		x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
		x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
		x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
		x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
		x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
		x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
		x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
		x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
		x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), _mm_loadu_si128((const __m128i *)(p + 0)));
		x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), _mm_loadu_si128((const __m128i *)(p + 16)));
		x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), _mm_loadu_si128((const __m128i *)(p + 32)));
		x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), _mm_loadu_si128((const __m128i *)(p + 48)));
		p += 64;
		len -= 64;
	}
	/* four lanes into one */
	x0 = k3k4;
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
	x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
	x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
	x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
	while (len >= 16) {
		x2 = _mm_loadu_si128((const __m128i *)p);
		x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
		x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
		x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
		p += 16;
		len -= 16;
	}
	/* 128 -> 64 bits */
	x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
	x2 = _mm_srli_si128(x1, 4);
	x1 = _mm_and_si128(x1, mask32);
	x1 = _mm_clmulepi64_si128(x1, k5, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	/* Barrett reduction to 32 bits */
	x2 = _mm_and_si128(x1, mask32);
	x2 = _mm_clmulepi64_si128(x2, poly, 0x10);
	x2 = _mm_and_si128(x2, mask32);
	x2 = _mm_clmulepi64_si128(x2, poly, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}
#endif

/* SK_ISA=portable turns it off (sk_cpu.h). */
int sk_crc32_accelerated(void)
{
#ifdef SK_HAVE_CLMUL
	return sk_cpu_clmul();
#else
	return 0;
#endif
}

uint32_t sk_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
#ifdef SK_HAVE_CLMUL
	if (len >= 64 && sk_crc32_accelerated()) {
		size_t n = len & ~(size_t)15;
		crc = ~crc32_clmul(~crc, p, n);
		p += n;
		len -= n;
	}
#endif
	return crc32_zlib(crc, p, len);
}

/* ---- attributes --------------------------------------------------------- */

void sk_attrs_init(sk_attrs *a) { memset(a, 0, sizeof *a); }

void sk_attrs_free(sk_attrs *a)
{
	for (int i = 0; i < a->n; i++) {
		free(a->key[i]);
		free(a->val[i]);
	}
	free(a->key);
	free(a->val);
	memset(a, 0, sizeof *a);
}

static int key_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
	       c == ':' || c == '-';
}

static int check_attr_key(const char *key)
{
	size_t n = strlen(key);
	if (n == 0)
		return sk_error("empty attribute key");
	if (n >= SK_NAME_MAX)
		return sk_error("attribute key '%.32s...' longer than %d bytes", key, SK_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++)
		if (!key_char((unsigned char)key[i]))
			return sk_error("attribute key '%s' has a character outside [A-Za-z0-9_.:-]", key);
	return 0;
}

int sk_attrs_set(sk_attrs *a, const char *key, const char *val)
{
	if (check_attr_key(key) < 0)
		return -1;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->key[i], key) == 0) {
			char *v = strdup(val);
			if (!v)
				return sk_error("out of memory");
			free(a->val[i]);
			a->val[i] = v;
			return 0;
		}
	if (a->n >= SK_ATTR_MAX)
		return sk_error("more than %d attributes", SK_ATTR_MAX);
	if (a->n == a->cap) {
		int cap = a->cap ? a->cap * 2 : 8;
		if (cap > SK_ATTR_MAX)
			cap = SK_ATTR_MAX;
		char **k = realloc(a->key, (size_t)cap * sizeof *k);
		if (!k)
			return sk_error("out of memory");
		a->key = k;
		char **v = realloc(a->val, (size_t)cap * sizeof *v);
		if (!v)
			return sk_error("out of memory");
		a->val = v;
		a->cap = cap;
	}
	char *k = strdup(key), *v = strdup(val);
	if (!k || !v) {
		free(k);
		free(v);
		return sk_error("out of memory");
	}
	a->key[a->n] = k;
	a->val[a->n] = v;
	a->n++;
	return 0;
}

int sk_attrs_setf(sk_attrs *a, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return sk_error("out of memory");
	int r = sk_attrs_set(a, key, s);
	free(s);
	return r;
}

const char *sk_attrs_get(const sk_attrs *a, const char *key)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->val[i];
	return NULL;
}

int sk_attrs_copy(sk_attrs *dst, const sk_attrs *src)
{
	for (int i = 0; i < src->n; i++)
		if (sk_attrs_set(dst, src->key[i], src->val[i]) < 0)
			return -1;
	return 0;
}

void sk_header_free(sk_header *h)
{
	sk_attrs_free(&h->attrs);
}

/* ---- names -------------------------------------------------------------- */

int sk_check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return sk_error("empty record name");
	if (n >= SK_NAME_MAX)
		return sk_error("record name '%.32s...' longer than %d bytes", name, SK_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c >= 0x7f || c == '\\')
			return sk_error("record name '%s' has a space, control, backslash or non-ASCII character", name);
	}
	return 0;
}

const char *sk_encoding_name(sk_encoding e) { return e == SK_DEFLATE ? "deflate" : "raw"; }

/* The most a zlib stream of `raw` bytes can take (zlib's compressBound with
 * a generous margin, so any conforming compressor fits). */
static uint64_t deflate_cap(uint64_t raw) { return raw + raw / 8 + 1024; }

/* ---- writing ------------------------------------------------------------ */

typedef struct hbuf {
	char *p;
	size_t n, cap;
	int over;
} hbuf;

static void hb_put(hbuf *b, const char *s, size_t n)
{
	if (b->over || n > b->cap - b->n) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void hb_puts(hbuf *b, const char *s) { hb_put(b, s, strlen(s)); }

static void hb_printf(hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hb_printf(hbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		b->over = 1;
		return;
	}
	hb_put(b, tmp, (size_t)n);
}

static void hb_escaped(hbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[4];
		switch (c) {
		case '\\': hb_put(b, "\\\\", 2); break;
		case '\n': hb_put(b, "\\n", 2); break;
		case '\t': hb_put(b, "\\t", 2); break;
		case '\r': hb_put(b, "\\r", 2); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				e[0] = '\\', e[1] = 'x', e[2] = hex[c >> 4], e[3] = hex[c & 15];
				hb_put(b, e, 4);
			} else {
				hb_put(b, (const char *)&c, 1);
			}
		}
	}
}

/* Serialise a header (name, dtype, shape, encoding, length, crc, attrs) into
 * buf, padded to a multiple of 64 bytes.  Returns its length or -1. */
static long format_header(char *buf, size_t cap, const char *name, sk_dtype dtype, int ndim, const int64_t *shape,
                          sk_encoding enc, uint64_t length, uint32_t crc, const sk_attrs *attrs)
{
	hbuf b = {buf, 0, cap, 0};
	if (sk_check_name(name) < 0)
		return -1;
	hb_printf(&b, "TNS %d\nname %s\ndtype %s\nshape", SK_FORMAT_VERSION, name, sk_dtype_name(dtype));
	for (int d = 0; d < ndim; d++)
		hb_printf(&b, " %lld", (long long)shape[d]);
	hb_printf(&b, "\nencoding %s\nlength %llu\ncrc32 %08lx\n", sk_encoding_name(enc), (unsigned long long)length,
	          (unsigned long)crc);
	if (attrs) {
		if (attrs->n > SK_ATTR_MAX)
			return sk_error("record '%s': more than %d attributes", name, SK_ATTR_MAX);
		for (int i = 0; i < attrs->n; i++) {
			if (check_attr_key(attrs->key[i]) < 0)
				return sk_error_prefix("record '%s'", name);
			hb_puts(&b, "attr.");
			hb_puts(&b, attrs->key[i]);
			hb_puts(&b, " ");
			hb_escaped(&b, attrs->val[i]);
			hb_puts(&b, "\n");
		}
	}
	if (!b.over)
		hb_printf(&b, "end %08lx", (unsigned long)sk_crc32(0, b.p, b.n));
	/* pad with spaces so that the header, with its final newline, is a
	 * multiple of 64 bytes */
	while (!b.over && (b.n + 1) % SK_ALIGN != 0)
		hb_put(&b, " ", 1);
	hb_put(&b, "\n", 1);
	if (b.over)
		return sk_error("record '%s': header longer than %d bytes (too many or too long attributes)", name,
		                SK_HEADER_MAX);
	return (long)b.n;
}

static const unsigned char zeros[SK_ALIGN];

static int check_write_shape(const char *name, sk_dtype dtype, int ndim, const int64_t *shape, size_t *bytes)
{
	if (sk_shape_check(dtype, ndim, shape, NULL, bytes) < 0)
		return sk_error_prefix("record '%s'", name);
	for (int d = 0; d < ndim; d++)
		if (shape[d] == 0)
			return sk_error("record '%s': dimension %d is zero (empty tensors cannot be stored)", name, d);
	return 0;
}

static int deflate_buffer(const void *data, size_t n, int level, unsigned char **out, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit(&z, level) != Z_OK)
		return sk_error("deflate initialisation failed");
	uLong bound = deflateBound(&z, (uLong)n);
	unsigned char *o = malloc(bound ? bound : 1);
	if (!o) {
		deflateEnd(&z);
		return sk_error("out of memory allocating %lu bytes for deflate", (unsigned long)bound);
	}
	const unsigned char *in = data;
	size_t inleft = n, outpos = 0;
	int ret;
	do {
		uInt ia = inleft > (1u << 30) ? (1u << 30) : (uInt)inleft;
		z.next_in = (unsigned char *)(uintptr_t)in;
		z.avail_in = ia;
		size_t oleft = bound - outpos;
		z.next_out = o + outpos;
		z.avail_out = oleft > (1u << 30) ? (1u << 30) : (uInt)oleft;
		uInt oa = z.avail_out;
		ret = deflate(&z, inleft == ia ? Z_FINISH : Z_NO_FLUSH);
		in += ia - z.avail_in;
		inleft -= ia - z.avail_in;
		outpos += oa - z.avail_out;
		if (ret == Z_STREAM_ERROR || (ret == Z_BUF_ERROR && z.avail_out == 0 && outpos == bound)) {
			free(o);
			deflateEnd(&z);
			return sk_error("deflate failed");
		}
	} while (ret != Z_STREAM_END);
	deflateEnd(&z);
	*out = o;
	*outlen = outpos;
	return 0;
}

static int write_all(FILE *f, const void *p, size_t n, const char *name)
{
	if (n && fwrite(p, 1, n, f) != n)
		return sk_error("record '%s': write error: %s", name, strerror(errno ? errno : EIO));
	return 0;
}

int sk_write_record_raw(FILE *f, const char *name, sk_dtype dtype, int ndim, const int64_t *shape, const void *data,
                        const sk_attrs *attrs, int level)
{
	size_t bytes;
	if (sk_check_name(name) < 0)
		return -1;
	if (level < 0 || level > 9)
		return sk_error("record '%s': compression level %d outside 0..9", name, level);
	if (check_write_shape(name, dtype, ndim, shape, &bytes) < 0)
		return -1;
	uint32_t crc = sk_crc32(0, data, bytes);
	unsigned char *z = NULL;
	size_t zlen = 0;
	if (level > 0 && deflate_buffer(data, bytes, level, &z, &zlen) < 0)
		return sk_error_prefix("record '%s'", name);
	char *hdr = malloc(SK_HEADER_MAX);
	if (!hdr) {
		free(z);
		return sk_error("out of memory");
	}
	long hl = format_header(hdr, SK_HEADER_MAX, name, dtype, ndim, shape, level > 0 ? SK_DEFLATE : SK_RAW,
	                        level > 0 ? zlen : bytes, crc, attrs);
	int r = -1;
	if (hl >= 0) {
		const void *p = level > 0 ? (const void *)z : data;
		size_t n = level > 0 ? zlen : bytes;
		errno = 0;
		if (write_all(f, hdr, (size_t)hl, name) == 0 && write_all(f, p, n, name) == 0 &&
		    write_all(f, zeros, (SK_ALIGN - n % SK_ALIGN) % SK_ALIGN, name) == 0)
			r = 0;
	}
	free(hdr);
	free(z);
	return r;
}

int sk_write_record(FILE *f, const char *name, const sk_tensor *t, const sk_attrs *attrs, int level)
{
	return sk_write_record_raw(f, name, t->dtype, t->ndim, t->shape, t->data, attrs, level);
}

/* ---- reading ------------------------------------------------------------ */

struct sk_reader {
	FILE *f;
	int own;
	char *name;
	long index;          /* current record, -1 before the first */
	int failed;
	int regular;         /* seekable regular file: skip by seeking */
	off_t size;
	/* the current record's payload */
	int in_payload;      /* header read, payload not finished */
	char rname[SK_NAME_MAX];
	sk_encoding enc;
	uint64_t length;     /* stored payload bytes the header claims */
	uint64_t stored_left, raw_left, pad;
	uint32_t want_crc, crc;
	int z_active, z_end;
	z_stream z;
	unsigned char *iobuf;  /* SK_IOBUF bytes: skipping, inflate input */
	unsigned char *outbuf; /* SK_IOBUF bytes for sk_reader_verify, lazily */
	sk_header *last;
	char hdr[SK_HEADER_MAX + 1];
};

const char *sk_reader_name(const sk_reader *r) { return r->name; }
long sk_reader_index(const sk_reader *r) { return r->index < 0 ? 0 : r->index; }

/* Record an error naming the stream and the record; marks the reader failed. */
static int rfail(sk_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail(sk_reader *r, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->failed = 1;
	if (r->rname[0])
		return sk_error("%s: record %ld (%s): %s", r->name, sk_reader_index(r), r->rname, msg);
	return sk_error("%s: record %ld: %s", r->name, sk_reader_index(r), msg);
}

static sk_reader *reader_new(FILE *f, const char *display, int own)
{
	sk_reader *r = calloc(1, sizeof *r);
	if (!r) {
		sk_error("out of memory");
		return NULL;
	}
	r->name = strdup(display);
	r->iobuf = malloc(SK_IOBUF);
	if (!r->name || !r->iobuf) {
		free(r->name);
		free(r->iobuf);
		free(r);
		sk_error("out of memory");
		return NULL;
	}
	r->f = f;
	r->own = own;
	r->index = -1;
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && ftello(f) >= 0) {
		r->regular = 1;
		r->size = st.st_size;
	}
	return r;
}

sk_reader *sk_reader_open(const char *path)
{
	FILE *f;
	const char *display = path;
	if (!path || strcmp(path, "-") == 0) {
		f = stdin;
		display = "<stdin>";
	} else {
		f = fopen(path, "rb");
		if (!f) {
			sk_error("%s: %s", path, strerror(errno));
			return NULL;
		}
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		if (f != stdin)
			fclose(f);
		sk_error("%s: is a directory", display);
		return NULL;
	}
	if (f != stdin)
		setvbuf(f, NULL, _IOFBF, SK_STDIO_BUF);
	sk_reader *r = reader_new(f, display, f != stdin);
	if (!r && f != stdin)
		fclose(f);
	return r;
}

sk_reader *sk_reader_fdopen(FILE *f, const char *display_name)
{
	return reader_new(f, display_name ? display_name : "<stream>", 0);
}

void sk_reader_close(sk_reader *r)
{
	if (!r)
		return;
	if (r->z_active)
		inflateEnd(&r->z);
	if (r->own)
		fclose(r->f);
	free(r->iobuf);
	free(r->outbuf);
	free(r->name);
	free(r);
}

/* Read exactly n bytes; returns the number read (short only at EOF/error). */
static size_t rread(sk_reader *r, void *buf, size_t n) { return fread(buf, 1, n, r->f); }

static int short_read(sk_reader *r, const char *what)
{
	if (ferror(r->f))
		return rfail(r, "read error in %s: %s", what, strerror(errno ? errno : EIO));
	return rfail(r, "truncated %s (stream ends early)", what);
}

/* A short read of the payload, `left` stored bytes before the read that
 * delivered `got`: say how much of it arrived. */
static int short_payload(sk_reader *r, uint64_t left, size_t got)
{
	if (ferror(r->f))
		return rfail(r, "read error in payload: %s", strerror(errno ? errno : EIO));
	return rfail(r, "truncated payload (the stream ends after %llu of its %llu bytes)",
	             (unsigned long long)(r->length - left + got), (unsigned long long)r->length);
}

/* Strict unsigned decimal: digits only, no sign, no leading zeros (except
 * "0"), at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case '\\': *o++ = '\\'; break;
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'x': {
			int v = 0;
			for (int i = 1; i <= 2; i++) {
				char c = p[i];
				int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
				if (d < 0)
					return -1;
				v = v * 16 + d;
			}
			if (v == 0)
				return -1;
			*o++ = (char)v;
			p += 2;
			break;
		}
		default: return -1;
		}
	}
	*o = 0;
	return 0;
}

enum { K_NAME = 1, K_DTYPE = 2, K_SHAPE = 4, K_ENC = 8, K_LEN = 16, K_CRC = 32, K_ALL = 63 };

/* Parse the header text (NUL-terminated, ends with the terminator line). */
static int parse_header(sk_reader *r, char *text, size_t len, sk_header *h)
{
	int seen = 0;
	char *line = text, *end = text + len;
	int lineno = 0;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			return rfail(r, "header line %d has no newline", lineno + 1);
		*nl = 0;
		lineno++;
		for (char *p = line; p < nl; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return rfail(r, "header line %d has a control character (byte 0x%02x)", lineno,
				             (unsigned char)*p);
		if (lineno == 1) {
			/* magic and version, already checked to start with "TNS " */
			uint64_t v;
			int e = parse_u64(line + 4, 1000000, &v);
			if (e < 0)
				return rfail(r, "bad format version '%.20s' in the first line", line + 4);
			if (v != SK_FORMAT_VERSION)
				return rfail(r, "format version %llu is not supported (this reader reads version %d)",
				             (unsigned long long)v, SK_FORMAT_VERSION);
			line = nl + 1;
			continue;
		}
		if (nl + 1 == end) {
			/* the terminator (checked by the caller) */
			break;
		}
		char *sp = strchr(line, ' ');
		char *key = line, *val = sp ? sp + 1 : nl;
		if (sp)
			*sp = 0;
		if (strcmp(key, "end") == 0)
			return rfail(r, "terminator line is not at the end of a 64-byte padded header");
		int bit = 0;
		if (strcmp(key, "name") == 0) {
			bit = K_NAME;
			if (seen & bit)
				return rfail(r, "duplicate key 'name'");
			if (sk_check_name(val) < 0)
				return rfail(r, "%s", sk_errmsg());
			snprintf(h->name, sizeof h->name, "%s", val);
			snprintf(r->rname, sizeof r->rname, "%s", val);
		} else if (strcmp(key, "dtype") == 0) {
			bit = K_DTYPE;
			if (seen & bit)
				return rfail(r, "duplicate key 'dtype'");
			if (sk_dtype_parse(val, &h->dtype) < 0)
				return rfail(r, "unknown dtype '%.20s' (u8, i32 or f32)", val);
		} else if (strcmp(key, "shape") == 0) {
			bit = K_SHAPE;
			if (seen & bit)
				return rfail(r, "duplicate key 'shape'");
			int nd = 0;
			char *p = val;
			while (*p) {
				char *q = strchr(p, ' ');
				if (q)
					*q = 0;
				if (nd >= SK_MAXDIM)
					return rfail(r, "shape has more than %d dimensions", SK_MAXDIM);
				uint64_t v;
				int e = parse_u64(p, (uint64_t)SK_MAX_EXTENT, &v);
				if (e == -2)
					return rfail(r, "dimension %d (%.24s) exceeds the limit %lld", nd, p,
					             (long long)SK_MAX_EXTENT);
				if (e < 0 && p[0] == '-')
					return rfail(r, "negative dimension %.24s", p);
				if (e < 0)
					return rfail(r, "dimension %d '%.24s' is not a number", nd, p);
				if (v == 0)
					return rfail(r, "dimension %d is zero", nd);
				h->shape[nd++] = (int64_t)v;
				if (!q)
					break;
				p = q + 1;
				if (!*p)
					return rfail(r, "shape ends with a space");
			}
			h->ndim = nd;
		} else if (strcmp(key, "encoding") == 0) {
			bit = K_ENC;
			if (seen & bit)
				return rfail(r, "duplicate key 'encoding'");
			if (strcmp(val, "raw") == 0)
				h->encoding = SK_RAW;
			else if (strcmp(val, "deflate") == 0)
				h->encoding = SK_DEFLATE;
			else
				return rfail(r, "unknown encoding '%.20s' (raw or deflate)", val);
		} else if (strcmp(key, "length") == 0) {
			bit = K_LEN;
			if (seen & bit)
				return rfail(r, "duplicate key 'length'");
			uint64_t v;
			int e = parse_u64(val, UINT64_MAX / 2, &v);
			if (e < 0)
				return rfail(r, "length '%.24s' is not a valid number", val);
			h->length = v;
		} else if (strcmp(key, "crc32") == 0) {
			bit = K_CRC;
			if (seen & bit)
				return rfail(r, "duplicate key 'crc32'");
			uint32_t c = 0;
			if (strlen(val) != 8)
				return rfail(r, "crc32 '%.20s' is not 8 hexadecimal digits", val);
			for (int i = 0; i < 8; i++) {
				char ch = val[i];
				int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
				if (d < 0)
					return rfail(r, "crc32 '%.20s' is not 8 lower-case hexadecimal digits", val);
				c = c << 4 | (uint32_t)d;
			}
			h->crc = c;
		} else if (strncmp(key, "attr.", 5) == 0) {
			const char *k = key + 5;
			if (check_attr_key(k) < 0)
				return rfail(r, "%s", sk_errmsg());
			if (sk_attrs_get(&h->attrs, k))
				return rfail(r, "duplicate attribute '%s'", k);
			if (unescape(val) < 0)
				return rfail(r, "attribute '%s' has a bad escape sequence", k);
			if (sk_attrs_set(&h->attrs, k, val) < 0)
				return rfail(r, "%s", sk_errmsg());
		} else {
			return rfail(r, "unknown header key '%.40s'", key);
		}
		seen |= bit;
		line = nl + 1;
	}
	if ((seen & K_ALL) != K_ALL) {
		static const char *names[] = {"name", "dtype", "shape", "encoding", "length", "crc32"};
		for (int i = 0; i < 6; i++)
			if (!(seen & (1 << i)))
				return rfail(r, "header has no '%s'", names[i]);
	}
	size_t bytes;
	if (sk_shape_check(h->dtype, h->ndim, h->shape, NULL, &bytes) < 0)
		return rfail(r, "%s", sk_errmsg());
	h->rawbytes = bytes;
	if (h->encoding == SK_RAW && h->length != h->rawbytes)
		return rfail(r, "length %llu does not match the shape (%llu bytes)", (unsigned long long)h->length,
		             (unsigned long long)h->rawbytes);
	if (h->encoding == SK_DEFLATE && (h->length == 0 || h->length > deflate_cap(h->rawbytes)))
		return rfail(r, "deflate length %llu is impossible for %llu bytes of data", (unsigned long long)h->length,
		             (unsigned long long)h->rawbytes);
	if (r->regular) {
		off_t pos = ftello(r->f);
		uint64_t need = h->length + (SK_ALIGN - h->length % SK_ALIGN) % SK_ALIGN;
		if (pos >= 0 && (uint64_t)pos <= (uint64_t)r->size && need > (uint64_t)r->size - (uint64_t)pos)
			return rfail(r, "truncated payload (%llu bytes declared, %llu left in the file)",
			             (unsigned long long)need, (unsigned long long)((uint64_t)r->size - (uint64_t)pos));
	}
	return 0;
}

static int finish_payload(sk_reader *r);
int sk_reader_skip(sk_reader *r, const sk_header *h);

int sk_reader_next(sk_reader *r, sk_header *h)
{
	if (r->last == h)
		sk_header_free(h);
	r->last = NULL;
	memset(h, 0, sizeof *h);
	if (r->failed)
		return -1;
	if (r->in_payload && sk_reader_skip(r, h) < 0)
		return -1;
	r->index++;
	r->rname[0] = 0;
	size_t n = rread(r, r->hdr, SK_ALIGN);
	if (n == 0 && !ferror(r->f))
		return 0;
	if (ferror(r->f))
		return rfail(r, "read error: %s", strerror(errno ? errno : EIO));
	if (memcmp(r->hdr, SK_MAGIC, n < 4 ? n : 4) != 0)
		return r->index == 0 ? rfail(r, "not a tensor stream (no 'TNS' magic)")
		                     : rfail(r, "garbage after the last record (no 'TNS' magic)");
	{
		/* the version first: a later version may change everything after */
		char *nl = memchr(r->hdr, '\n', n);
		uint64_t v;
		if (!nl)
			return n < SK_ALIGN ? short_read(r, "header") : rfail(r, "first header line is too long");
		*nl = 0;
		if (parse_u64(r->hdr + 4, 1000000, &v) < 0)
			return rfail(r, "bad format version '%.20s' in the first line", r->hdr + 4);
		if (v != SK_FORMAT_VERSION)
			return rfail(r, "format version %llu is not supported (this reader reads version %d)",
			             (unsigned long long)v, SK_FORMAT_VERSION);
		*nl = '\n';
	}
	size_t len = n, endline = 0;
	for (;;) {
		if (n < SK_ALIGN)
			return short_read(r, "header");
		/* does the last line, ending at this block's end, terminate? */
		if (r->hdr[len - 1] == '\n') {
			size_t s = len - 1;
			while (s > 0 && r->hdr[s - 1] != '\n')
				s--;
			if (len - 1 - s >= 12 && memcmp(r->hdr + s, "end ", 4) == 0) {
				size_t i = s + 12;
				while (i < len - 1 && r->hdr[i] == ' ')
					i++;
				if (i == len - 1) {
					endline = s;
					break;
				}
			}
		}
		if (len + SK_ALIGN > SK_HEADER_MAX)
			return rfail(r, "header longer than %d bytes (no 'end' line)", SK_HEADER_MAX);
		n = rread(r, r->hdr + len, SK_ALIGN);
		len += n;
	}
	r->hdr[len] = 0;
	if (memchr(r->hdr, 0, len))
		return rfail(r, "header contains a NUL byte");
	uint32_t hc = 0;
	for (int i = 0; i < 8; i++) {
		char ch = r->hdr[endline + 4 + (size_t)i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
		if (d < 0)
			return rfail(r, "header checksum '%.8s' in the 'end' line is not 8 hexadecimal digits",
			             r->hdr + endline + 4);
		hc = hc << 4 | (uint32_t)d;
	}
	/* Fuzzing builds (the libFuzzer convention macro) accept any header
	 * checksum, so that mutated headers reach the parser behind it. */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	if (sk_crc32(0, r->hdr, endline) != hc)
		return rfail(r, "header checksum mismatch (end line %08lx, header %08lx)", (unsigned long)hc,
		             (unsigned long)sk_crc32(0, r->hdr, endline));
#endif
	if (parse_header(r, r->hdr, len, h) < 0) {
		sk_header_free(h);
		return -1;
	}
	r->in_payload = 1;
	r->enc = h->encoding;
	r->length = h->length;
	r->stored_left = h->length;
	r->raw_left = h->rawbytes;
	r->pad = (SK_ALIGN - h->length % SK_ALIGN) % SK_ALIGN;
	r->want_crc = h->crc;
	r->crc = 0;
	r->z_end = 0;
	r->last = h;
	return 1;
}

static int check_pad(sk_reader *r)
{
	unsigned char p[SK_ALIGN];
	if (r->pad) {
		if (rread(r, p, (size_t)r->pad) != r->pad)
			return short_read(r, "payload padding");
		for (uint64_t i = 0; i < r->pad; i++)
			if (p[i])
				return rfail(r, "non-zero byte in the padding after the payload");
	}
	r->pad = 0;
	return 0;
}

/* zlib's input, once used up: the next stored bytes of the payload (at most
 * SK_IOBUF).  0, or -1 on a short read. */
static int refill(sk_reader *r)
{
	size_t want = r->stored_left < SK_IOBUF ? (size_t)r->stored_left : SK_IOBUF;
	size_t got = rread(r, r->iobuf, want);
	if (got != want)
		return short_payload(r, r->stored_left, got);
	r->stored_left -= got;
	r->z.next_in = r->iobuf;
	r->z.avail_in = (uInt)got;
	return 0;
}

static int finish_payload(sk_reader *r)
{
	if (r->enc == SK_DEFLATE) {
		if (!r->z_end) {
			/* all bytes produced: the zlib stream must end right here */
			unsigned char extra;
			for (;;) {
				if (r->z.avail_in == 0 && r->stored_left > 0 && refill(r) < 0)
					return -1;
				r->z.next_out = &extra;
				r->z.avail_out = 1;
				int ret = inflate(&r->z, Z_NO_FLUSH);
				if (ret == Z_STREAM_END && r->z.avail_out == 1)
					break;
				if (r->z.avail_out == 0)
					return rfail(r, "deflate data longer than the shape says");
				if (ret != Z_OK || (r->z.avail_in == 0 && r->stored_left == 0))
					return rfail(r, "corrupt deflate data (%s)", r->z.msg ? r->z.msg : "truncated");
			}
		}
		if (r->z.avail_in != 0 || r->stored_left != 0)
			return rfail(r, "bytes after the end of the deflate data");
		inflateReset(&r->z);
	}
	if (check_pad(r) < 0)
		return -1;
	r->in_payload = 0;
	if (r->crc != r->want_crc)
		return rfail(r, "crc32 mismatch (header %08lx, payload %08lx)", (unsigned long)r->want_crc,
		             (unsigned long)r->crc);
	return 0;
}

/* Decode up to cap bytes of the current payload into buf.  Returns the bytes
 * delivered (> 0), 0 when the payload is done, -1 on error.  The CRC, the
 * end of the zlib stream and the padding are checked with the last bytes. */
long sk_reader_read(sk_reader *r, const sk_header *h, void *buf, size_t cap)
{
	(void)h;
	if (r->failed)
		return -1;
	if (!r->in_payload || r->raw_left == 0)
		return 0;
	if (cap > (size_t)1 << 30)
		cap = (size_t)1 << 30;
	size_t want = r->raw_left < cap ? (size_t)r->raw_left : cap;
	if (r->enc == SK_RAW) {
		size_t got = rread(r, buf, want);
		if (got != want)
			return short_payload(r, r->stored_left, got);
		r->stored_left -= got;
	} else {
		if (!r->z_active) {
			memset(&r->z, 0, sizeof r->z);
			if (inflateInit(&r->z) != Z_OK)
				return rfail(r, "inflate initialisation failed");
			r->z_active = 1;
		}
		r->z.next_out = buf;
		r->z.avail_out = (uInt)want;
		while (r->z.avail_out > 0) {
			if (r->z_end)
				return rfail(r, "deflate data shorter than the shape says");
			if (r->z.avail_in == 0) {
				if (r->stored_left == 0)
					return rfail(r, "deflate data shorter than the shape says");
				if (refill(r) < 0)
					return -1;
			}
			int ret = inflate(&r->z, Z_NO_FLUSH);
			if (ret == Z_STREAM_END)
				r->z_end = 1;
			else if (ret != Z_OK)
				return rfail(r, "corrupt deflate data (%s)", r->z.msg ? r->z.msg : "error");
		}
	}
	r->crc = sk_crc32(r->crc, buf, want);
	r->raw_left -= want;
	if (r->raw_left == 0 && finish_payload(r) < 0)
		return -1;
	return (long)want;
}

int sk_reader_payload_into(sk_reader *r, const sk_header *h, void *buf)
{
	if (!r->in_payload || r->raw_left != h->rawbytes)
		return rfail(r, "payload already read or skipped");
	unsigned char *p = buf;
	for (;;) {
		long n = sk_reader_read(r, h, p, (size_t)r->raw_left);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		p += n;
	}
	return 0;
}

/* The smallest buffer sk_reader_payload_append allocates. */
#define SK_APPEND_MIN ((size_t)64 << 10)

int sk_reader_payload_append(sk_reader *r, const sk_header *h, void **buf, size_t *cap, size_t *len)
{
	if (!r->in_payload || r->raw_left != h->rawbytes)
		return rfail(r, "payload already read or skipped");
	if (*len > *cap)
		return rfail(r, "append: %zu bytes used of a buffer of %zu", *len, *cap);
	if (h->rawbytes > SIZE_MAX / 4 - *len)
		return rfail(r, "payload of %llu bytes after %zu bytes does not fit in memory",
		             (unsigned long long)h->rawbytes, *len);
	size_t have = *len, end = *len + (size_t)h->rawbytes;
	while (have < end) {
		if (have >= *cap) {
			/* the buffer is full of bytes that did arrive: double it
			 * (at least 1.5 times), up to the record's end when that is
			 * further */
			size_t n = *cap ? 2 * *cap : SK_APPEND_MIN;
			if (n > end)
				n = end > *cap + *cap / 2 ? end : *cap + *cap / 2;
			void *q = realloc(*buf, n);
			if (!q)
				return rfail(r, "out of memory (%zu bytes, %zu of them read)", n, have);
			*buf = q;
			*cap = n;
		}
		long got = sk_reader_read(r, h, (char *)*buf + have, *cap - have);
		if (got < 0)
			return -1;
		if (got == 0)
			return rfail(r, "payload ended early");
		have += (size_t)got;
	}
	*len = end;
	return 0;
}

/* Above this size, a payload whose bytes are not known to exist (a pipe, or
 * a deflate stream that may expand up to 1000 times) is read into a buffer
 * that grows as the data actually arrives, so a lying header cannot make us
 * allocate gigabytes up front. */
#define SK_GROW_START ((size_t)1 << 20)

int sk_reader_payload(sk_reader *r, const sk_header *h, sk_tensor *out)
{
	memset(out, 0, sizeof *out);
	if (!r->in_payload || r->raw_left != h->rawbytes)
		return rfail(r, "payload already read or skipped");
	size_t bytes = (size_t)h->rawbytes, cap = bytes, have = 0;
	int known = h->encoding == SK_RAW && r->regular;
	if (!known && cap > SK_GROW_START)
		cap = SK_GROW_START;
	unsigned char *p = sk_alloc(cap);
	if (!p)
		return rfail(r, "%s", sk_errmsg());
	while (have < bytes) {
		if (have == cap) {
			size_t ncap = cap > bytes / 2 ? bytes : cap * 2;
			unsigned char *q = sk_alloc(ncap);
			if (!q) {
				sk_free(p);
				return rfail(r, "%s", sk_errmsg());
			}
			memcpy(q, p, have);
			sk_free(p);
			p = q;
			cap = ncap;
		}
		long n = sk_reader_read(r, h, p + have, cap - have);
		if (n <= 0) {
			sk_free(p);
			return n < 0 ? -1 : rfail(r, "payload ended early");
		}
		have += (size_t)n;
	}
	out->dtype = h->dtype;
	out->ndim = h->ndim;
	for (int d = 0; d < h->ndim; d++)
		out->shape[d] = h->shape[d];
	out->data = p;
	return 0;
}

int sk_reader_verify(sk_reader *r, const sk_header *h)
{
	/* iobuf feeds inflate: decode into a second buffer */
	if (!r->outbuf && !(r->outbuf = malloc(SK_IOBUF)))
		return rfail(r, "out of memory");
	for (;;) {
		long n = sk_reader_read(r, h, r->outbuf, SK_IOBUF);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
	}
}

int sk_reader_skip(sk_reader *r, const sk_header *h)
{
	(void)h;
	if (r->failed)
		return -1;
	if (!r->in_payload)
		return 0;
	if (r->z_active)
		inflateReset(&r->z);
	r->z.avail_in = 0;
	uint64_t left = r->stored_left;
	if (r->regular && left > SK_IOBUF) {
		off_t pos = ftello(r->f);
		if (pos < 0 || (uint64_t)pos > (uint64_t)r->size || left > (uint64_t)r->size - (uint64_t)pos)
			return short_payload(r, left, pos < 0 || (uint64_t)pos > (uint64_t)r->size
			                                      ? 0 : (size_t)((uint64_t)r->size - (uint64_t)pos));
		if (fseeko(r->f, (off_t)left, SEEK_CUR) != 0)
			return rfail(r, "seek error: %s", strerror(errno));
		left = 0;
	}
	while (left > 0) {
		size_t w = left < SK_IOBUF ? (size_t)left : SK_IOBUF, got = rread(r, r->iobuf, w);
		if (got != w)
			return short_payload(r, left, got);
		left -= w;
	}
	r->stored_left = 0;
	r->raw_left = 0;
	if (check_pad(r) < 0)
		return -1;
	r->in_payload = 0;
	return 0;
}

int sk_write_header(FILE *f, const sk_header *h)
{
	char *hdr = malloc(SK_HEADER_MAX);
	if (!hdr)
		return sk_error("out of memory");
	long hl = format_header(hdr, SK_HEADER_MAX, h->name, h->dtype, h->ndim, h->shape, h->encoding, h->length,
	                        h->crc, &h->attrs);
	int r = hl < 0 ? -1 : write_all(f, hdr, (size_t)hl, h->name);
	free(hdr);
	return r;
}

int sk_reader_copy(sk_reader *r, const sk_header *h, FILE *out)
{
	if (!r->in_payload || r->raw_left != h->rawbytes)
		return rfail(r, "payload already read or skipped");
	if (sk_write_header(out, h) < 0)
		return -1;
	if (h->encoding == SK_RAW) {
		/* raw data never goes through iobuf inside sk_reader_read */
		for (;;) {
			long n = sk_reader_read(r, h, r->iobuf, SK_IOBUF);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			if (write_all(out, r->iobuf, (size_t)n, h->name) < 0)
				return -1;
		}
	} else {
		/* copy the stored bytes and verify them by decoding on the side */
		unsigned char *dec = malloc(SK_IOBUF), *in = malloc(SK_IOBUF);
		if (!dec || !in) {
			free(dec);
			free(in);
			return sk_error("out of memory");
		}
		z_stream z;
		memset(&z, 0, sizeof z);
		if (inflateInit(&z) != Z_OK) {
			free(dec);
			free(in);
			return rfail(r, "inflate initialisation failed");
		}
		uint32_t crc = 0;
		uint64_t raw = 0, left = h->length;
		int ret = Z_OK, rc = 0;
		while (left > 0 && rc == 0) {
			size_t w = left < SK_IOBUF ? (size_t)left : SK_IOBUF, got = rread(r, in, w);
			if (got != w) {
				rc = short_payload(r, left, got);
				break;
			}
			left -= w;
			if (write_all(out, in, w, h->name) < 0) {
				rc = -1;
				break;
			}
			z.next_in = in;
			z.avail_in = (uInt)w;
			while (z.avail_in > 0 && ret != Z_STREAM_END) {
				z.next_out = dec;
				z.avail_out = SK_IOBUF;
				ret = inflate(&z, Z_NO_FLUSH);
				if (ret != Z_OK && ret != Z_STREAM_END) {
					rc = rfail(r, "corrupt deflate data (%s)", z.msg ? z.msg : "error");
					break;
				}
				size_t got = SK_IOBUF - z.avail_out;
				raw += got;
				if (raw > h->rawbytes) {
					rc = rfail(r, "deflate data longer than the shape says");
					break;
				}
				crc = sk_crc32(crc, dec, got);
			}
			if (rc == 0 && ret == Z_STREAM_END && (z.avail_in > 0 || left > 0))
				rc = rfail(r, "bytes after the end of the deflate data");
		}
		inflateEnd(&z);
		free(dec);
		free(in);
		r->stored_left = left;
		if (rc < 0)
			return -1;
		if (ret != Z_STREAM_END || raw != h->rawbytes)
			return rfail(r, "deflate data shorter than the shape says");
		r->raw_left = 0;
		if (check_pad(r) < 0)
			return -1;
		r->in_payload = 0;
		if (crc != h->crc)
			return rfail(r, "crc32 mismatch (header %08lx, payload %08lx)", (unsigned long)h->crc,
			             (unsigned long)crc);
	}
	return write_all(out, zeros, (SK_ALIGN - h->length % SK_ALIGN) % SK_ALIGN, h->name);
}

/* ---- atomic output files ------------------------------------------------ */

/* A regular-file output is written where no other program sees it, and
 * appears under its name, complete, at commit:
 *
 *  - anonymous: an O_TMPFILE inode in the output's directory, which has no
 *    name at all while it is written, so that not even SIGKILL can leave it
 *    behind.  At commit it is linked (linkat of /proc/self/fd/N) to its name
 *    when the name is free, which is atomic.  linkat cannot replace a file:
 *    an existing output is replaced by linking to a unique temporary name
 *    and renaming that over it, so a SIGKILL in the microseconds between the
 *    two calls leaves a complete file under the temporary name; that is the
 *    only window.
 *  - named, where the file system or the kernel has no O_TMPFILE (or /proc
 *    is not mounted, or SK_NO_TMPFILE is set in the environment, for tests):
 *    a temporary "<dir>/.<base>.XXXXXX" created only when the first bytes
 *    are written (so a program that opens its output first and computes for
 *    hours leaves nothing while it computes), then renamed at commit.  A
 *    SIGKILL while it is written leaves it behind.
 *
 * Neither needs the umask: both files are created with mode 0666 and the
 * kernel applies the umask (or the directory's default ACL), as for any new
 * file, so the process-wide umask is never changed.
 *
 * Threads: outputs may be opened, written and committed from any threads at
 * once (one thread per sk_ofile).  Temporary names are registered in slots
 * for the signal handler and sk_die: a slot is claimed by an atomic
 * compare-and-swap (0 free, 2 claimed, 1 armed), its path written, then it
 * is armed; the handler unlinks armed slots only.  A slot is armed before
 * its file is created, so a signal can never slip in between. */

#define SK_OFILE_SLOTS 32
#define SK_PATHLEN 4096
#define SK_TMPSUFFIX 6

enum { SLOT_FREE = 0, SLOT_ARMED = 1, SLOT_CLAIMED = 2 };
static char pending_path[SK_OFILE_SLOTS][SK_PATHLEN];
static int pending_on[SK_OFILE_SLOTS];

enum { OF_STDOUT, OF_DIRECT, OF_ANON, OF_NAMED };

struct sk_ofile {
	FILE *f;
	int fd;       /* -1 for OF_NAMED until the first write */
	int err;      /* first write error (errno) */
	int cerr;     /* OF_NAMED: the temporary could not be created (errno) */
	int kind;
	char *path;   /* final name */
	char *tmp;    /* OF_NAMED: the temporary's name, once created */
	int slot;     /* OF_NAMED: its slot, claimed at open */
};

void sk_ofile_remove_pending(void)
{
	for (int i = 0; i < SK_OFILE_SLOTS; i++)
		if (__atomic_load_n(&pending_on[i], __ATOMIC_ACQUIRE) == SLOT_ARMED)
			unlink(pending_path[i]);
}

static void ofile_signal(int sig)
{
	sk_ofile_remove_pending();
	signal(sig, SIG_DFL);
	raise(sig);
}

void sk_ofile_install_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction sa, old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_DFL)
			continue; /* keep nohup's SIG_IGN, or the program's own handler */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = ofile_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

/* A free slot, claimed (not yet armed), or -1 when all are taken. */
static int slot_claim(void)
{
	for (int i = 0; i < SK_OFILE_SLOTS; i++) {
		int want = SLOT_FREE;
		if (__atomic_compare_exchange_n(&pending_on[i], &want, SLOT_CLAIMED, 0, __ATOMIC_ACQ_REL,
		                                __ATOMIC_RELAXED))
			return i;
	}
	return -1;
}

/* Register `path` in a claimed slot: from now on a signal removes it. */
static void slot_arm(int slot, const char *path)
{
	if (slot < 0)
		return;
	memcpy(pending_path[slot], path, strlen(path) + 1);
	__atomic_store_n(&pending_on[slot], SLOT_ARMED, __ATOMIC_RELEASE);
}

/* Unregister, keeping the slot claimed (for another name). */
static void slot_disarm(int slot)
{
	if (slot >= 0)
		__atomic_store_n(&pending_on[slot], SLOT_CLAIMED, __ATOMIC_RELEASE);
}

static void slot_release(int slot)
{
	if (slot >= 0)
		__atomic_store_n(&pending_on[slot], SLOT_FREE, __ATOMIC_RELEASE);
}

/* Fill buf (cap bytes) with "<dir>/.<base>." and SK_TMPSUFFIX characters
 * that differ from call to call and from process to process. */
static void tmp_name(char *buf, size_t cap, const char *path)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	static uint64_t counter;
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* splitmix64 of a per-process counter, the pid, the time and a stack
	 * address (differs between threads) */
	uint64_t x = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull;
	x ^= (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)(uintptr_t)&ts;
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	char sfx[SK_TMPSUFFIX + 1];
	for (int i = 0; i < SK_TMPSUFFIX; i++, x /= 62)
		sfx[i] = set[x % 62];
	sfx[SK_TMPSUFFIX] = 0;
	snprintf(buf, cap, "%.*s.%s.%s", (int)dirlen, path, path + dirlen, sfx);
}

/* Create a new temporary for o->path (named mode) in o->tmp, registered in
 * o->slot before it exists; returns the descriptor or -1 (errno set). */
static int named_create(sk_ofile *o)
{
	for (int tries = 0; tries < 100; tries++) {
		tmp_name(o->tmp, SK_PATHLEN, o->path);
		slot_arm(o->slot, o->tmp);
		int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0)
			return fd;
		int err = errno;
		slot_disarm(o->slot);
		if (err != EEXIST) {
			o->tmp[0] = 0;
			errno = err;
			return -1;
		}
	}
	o->tmp[0] = 0; /* not ours: never unlink it */
	errno = EEXIST;
	return -1;
}

/* The FILE of an output file writes through this, so the first write error
 * (ENOSPC, EIO, EPIPE) is kept for the message at commit.  A named
 * temporary is created here, when the first bytes are written. */
static ssize_t ofile_write(void *cookie, const char *buf, size_t n)
{
	sk_ofile *o = cookie;
	size_t done = 0;
	if (o->err)
		return -1;
	if (o->fd < 0 && (o->fd = named_create(o)) < 0) {
		o->err = o->cerr = errno;
		return -1;
	}
	while (done < n) {
		/* moderate write sizes: one huge write(2) is slower on Linux */
		size_t chunk = n - done < SK_WRITE_CHUNK ? n - done : SK_WRITE_CHUNK;
		ssize_t w = write(o->fd, buf + done, chunk);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (!o->err)
				o->err = errno;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static int ofile_close(void *cookie)
{
	sk_ofile *o = cookie;
	if (o->fd > STDERR_FILENO && close(o->fd) != 0 && !o->err)
		o->err = errno;
	o->fd = -1;
	return 0;
}

static FILE *ofile_stream(sk_ofile *o)
{
	cookie_io_functions_t io = {NULL, ofile_write, NULL, ofile_close};
	FILE *f = fopencookie(o, "wb", io);
	if (f)
		setvbuf(f, NULL, _IOFBF, SK_STDIO_BUF);
	return f;
}

/* The directory of path, for open(2): "." or "/" or "dir" (in buf). */
static const char *dir_of(const char *path, char *buf, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ".";
	if (slash == path)
		return "/";
	snprintf(buf, cap, "%.*s", (int)(slash - path), path);
	return buf;
}

static int no_tmpfile(void)
{
	const char *e = getenv("SK_NO_TMPFILE");
	return e && *e && strcmp(e, "0") != 0;
}

static void ofile_free(sk_ofile *o)
{
	free(o->tmp);
	free(o->path);
	free(o);
}

sk_ofile *sk_ofile_open(const char *path, int force_tty)
{
	sk_ofile *o = calloc(1, sizeof *o);
	if (!o) {
		sk_error("out of memory");
		return NULL;
	}
	o->slot = -1;
	o->fd = -1;
	if (!path || strcmp(path, "-") == 0) {
		if (!force_tty && isatty(STDOUT_FILENO)) {
			free(o);
			sk_error("refusing to write binary data to a terminal (redirect the output or use -o FILE)");
			return NULL;
		}
		fflush(stdout);
		o->fd = STDOUT_FILENO;
		o->kind = OF_STDOUT;
		o->f = ofile_stream(o);
		o->path = strdup("<stdout>");
		if (!o->path || !o->f) {
			if (o->f)
				fclose(o->f);
			free(o->path);
			free(o);
			sk_error("out of memory");
			return NULL;
		}
		return o;
	}
	o->path = strdup(path);
	if (!o->path) {
		free(o);
		sk_error("out of memory");
		return NULL;
	}
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode)) {
			sk_error("%s: is a directory", path);
			goto fail;
		}
		/* a device or FIFO: write to it directly */
		o->kind = OF_DIRECT;
		o->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (o->fd < 0) {
			sk_error("%s: %s", path, strerror(errno));
			goto fail;
		}
		o->f = ofile_stream(o);
		if (!o->f) {
			close(o->fd);
			sk_error("%s: %s", path, strerror(errno));
			goto fail;
		}
		return o;
	}
	if (strlen(path) + 2 + SK_TMPSUFFIX + 1 > SK_PATHLEN) {
		sk_error("%s: path too long", path);
		goto fail;
	}
	char dbuf[SK_PATHLEN];
	const char *dir = dir_of(path, dbuf, sizeof dbuf);
	int fd = -1, err = 0;
#ifdef O_TMPFILE
	if (!no_tmpfile()) {
		fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
		err = errno;
		if (fd >= 0) {
			/* commit links it through /proc: check that it is there */
			char proc[64];
			snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
			if (access(proc, F_OK) != 0) {
				close(fd);
				fd = -1;
				err = EOPNOTSUPP;
			}
		}
	}
#else
	err = EOPNOTSUPP;
#endif
	if (fd >= 0) {
		o->kind = OF_ANON;
		o->fd = fd;
	} else if (no_tmpfile() || err == EOPNOTSUPP || err == EISDIR || err == EINVAL || err == ENOSYS) {
		/* no O_TMPFILE here: a named temporary, created at the first
		 * write; check now that one could be */
		o->kind = OF_NAMED;
		if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) {
			sk_error("%s: cannot create a temporary file: %s", path, strerror(errno));
			goto fail;
		}
		if (!(o->tmp = malloc(SK_PATHLEN))) {
			sk_error("out of memory");
			goto fail;
		}
		o->tmp[0] = 0;
		if ((o->slot = slot_claim()) < 0) {
			sk_error("%s: too many output files open at once (%d)", path, SK_OFILE_SLOTS);
			goto fail;
		}
	} else {
		sk_error("%s: cannot create a temporary file: %s", path, strerror(err));
		goto fail;
	}
	o->f = ofile_stream(o);
	if (!o->f) {
		err = errno;
		if (o->fd >= 0)
			close(o->fd);
		slot_release(o->slot);
		sk_error("%s: %s", path, strerror(err));
		goto fail;
	}
	return o;
fail:
	ofile_free(o);
	return NULL;
}

FILE *sk_ofile_fp(sk_ofile *o) { return o->f; }

/* Link the anonymous file (descriptor fd) to o->path: directly when the
 * name is free, else through a unique temporary name renamed over it. */
static int anon_link(sk_ofile *o, int fd)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, o->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return sk_error("%s: cannot link the new file into place: %s", o->path, strerror(errno));
	/* the name exists: link to a unique name, then rename over it.  A
	 * signal between the two removes the temporary (registered first);
	 * a SIGKILL there leaves it. */
	char *tmp = malloc(SK_PATHLEN);
	if (!tmp)
		return sk_error("out of memory");
	int slot = slot_claim(); /* none free: no signal cleanup for this instant */
	int r = -1;
	for (int tries = 0; tries < 100; tries++) {
		tmp_name(tmp, SK_PATHLEN, o->path);
		slot_arm(slot, tmp);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
			r = 0;
			break;
		}
		int err = errno;
		slot_disarm(slot);
		if (err != EEXIST) {
			errno = err;
			break;
		}
	}
	if (r < 0)
		sk_error("%s: cannot link the new file into place: %s", o->path, strerror(errno ? errno : EEXIST));
	else if (rename(tmp, o->path) != 0) {
		r = sk_error("%s: cannot rename the temporary file: %s", o->path, strerror(errno));
		unlink(tmp);
	}
	slot_release(slot);
	free(tmp);
	return r;
}

/* Make the new name durable (best effort). */
static void sync_dir(const char *path)
{
	char dbuf[SK_PATHLEN];
	int dfd = open(dir_of(path, dbuf, sizeof dbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int sk_ofile_commit(sk_ofile *o)
{
	int r = 0, temp = o->kind == OF_ANON || o->kind == OF_NAMED;
	if (fflush(o->f) != 0 || ferror(o->f) || o->err) {
		if (o->cerr)
			r = sk_error("%s: cannot create a temporary file: %s", o->path, strerror(o->cerr));
		else
			r = sk_error("%s: write error: %s", o->path, strerror(o->err ? o->err : EIO));
	}
	/* an empty output: the named temporary was never written */
	if (r == 0 && o->kind == OF_NAMED && o->fd < 0 && (o->fd = named_create(o)) < 0)
		r = sk_error("%s: cannot create a temporary file: %s", o->path, strerror(errno));
	if (r == 0 && temp && fsync(o->fd) != 0)
		r = sk_error("%s: fsync failed: %s", o->path, strerror(errno));
	if (r == 0 && o->kind == OF_ANON) {
		/* link before closing: the descriptor is the file */
		r = anon_link(o, o->fd);
		if (r == 0)
			sync_dir(o->path);
	}
	fclose(o->f); /* closes the descriptor, except stdout's */
	if (r == 0 && o->err)
		r = sk_error("%s: write error: %s", o->path, strerror(o->err));
	if (o->kind == OF_NAMED) {
		if (r == 0 && rename(o->tmp, o->path) != 0)
			r = sk_error("%s: cannot rename the temporary file: %s", o->path, strerror(errno));
		if (r == 0)
			sync_dir(o->path);
		if (r < 0 && o->tmp[0])
			unlink(o->tmp);
		slot_release(o->slot);
	}
	ofile_free(o);
	return r;
}

void sk_ofile_abort(sk_ofile *o)
{
	if (!o)
		return;
	/* drop what is buffered: an anonymous file vanishes with its
	 * descriptor, and a named one that was never written is never made */
	if (o->kind == OF_ANON || o->kind == OF_NAMED)
		o->err = ECANCELED;
	fclose(o->f);
	if (o->kind == OF_NAMED) {
		if (o->tmp[0])
			unlink(o->tmp);
		slot_release(o->slot);
	}
	ofile_free(o);
}
