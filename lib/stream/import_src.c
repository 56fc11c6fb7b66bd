/* import_src.c: byte sources for the importers (files raw or gzip through
 * zlib, stdin, memory), and format detection from the first bytes. */
#include "sk_import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

void sk_src_mem(sk_src *s, const void *buf, size_t n, const char *name)
{
	memset(s, 0, sizeof *s);
	s->mem = buf;
	s->memlen = n;
	s->rawsize = n;
	snprintf(s->name, sizeof s->name, "%s", name ? name : "(memory)");
}

int sk_src_open(sk_src *s, const char *path)
{
	struct stat st;
	int fd;
	memset(s, 0, sizeof *s);
	if (!path || !strcmp(path, "-")) {
		snprintf(s->name, sizeof s->name, "(stdin)");
		fd = dup(0);
		if (fd < 0)
			return sk_error("cannot read stdin: %s", strerror(errno));
	} else {
		snprintf(s->name, sizeof s->name, "%s", path);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return sk_error("%s: is a directory", path);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return sk_error("cannot open %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		return sk_error("%s: is a directory", s->name);
	}
	gzFile gz = gzdopen(fd, "rb");
	if (!gz) {
		close(fd);
		return sk_error("%s: out of memory opening", s->name);
	}
	gzbuffer(gz, 1 << 16);
	s->gz = gz;
	/* gzdirect reads ahead to tell gzip from plain bytes. */
	if (S_ISREG(st.st_mode) && gzdirect(gz))
		s->rawsize = (uint64_t)st.st_size;
	return 0;
}

void sk_src_close(sk_src *s)
{
	if (s->gz)
		gzclose((gzFile)s->gz);
	free(s->look);
	memset(s, 0, sizeof *s);
}

/* Read from the underlying file or memory, past the look-ahead. */
/* zlib's message without its "<fd:N>: " prefix (we name the file ourselves). */
static const char *gzmsg(gzFile gz, int *code)
{
	const char *m = gzerror(gz, code);
	if (*code == Z_ERRNO)
		return strerror(errno);
	if (m && m[0] == '<') {
		const char *c = strstr(m, ": ");
		if (c)
			m = c + 2;
	}
	return m;
}

static long long src_fill(sk_src *s, unsigned char *buf, size_t n)
{
	if (s->mem) {
		size_t k = s->memlen - s->mempos;
		if (k > n)
			k = n;
		memcpy(buf, s->mem + s->mempos, k);
		s->mempos += k;
		return (long long)k;
	}
	if (!s->gz)
		return 0;
	size_t got = 0;
	while (got < n && !s->eof) {
		size_t want = n - got;
		if (want > (1u << 30))
			want = 1u << 30;
		int r = gzread((gzFile)s->gz, buf + got, (unsigned)want);
		if (r < 0) {
			int code;
			const char *m = gzmsg((gzFile)s->gz, &code);
			return sk_error("%s: %s (corrupt or truncated gzip data)", s->name, m);
		}
		if (r == 0) {
			int code;
			gzerror((gzFile)s->gz, &code);
			if (code != Z_OK && code != Z_STREAM_END) {
				const char *m = gzmsg((gzFile)s->gz, &code);
				return sk_error("%s: %s (truncated gzip data)", s->name, m);
			}
			s->eof = 1;
			break;
		}
		got += (size_t)r;
	}
	return (long long)got;
}

long long sk_src_read(sk_src *s, void *buf, size_t n)
{
	unsigned char *b = buf;
	size_t got = 0;
	if (s->lookpos < s->looklen) {
		size_t k = s->looklen - s->lookpos;
		if (k > n)
			k = n;
		memcpy(b, s->look + s->lookpos, k);
		s->lookpos += k;
		got = k;
	}
	if (got < n) {
		long long r = src_fill(s, b + got, n - got);
		if (r < 0)
			return -1;
		got += (size_t)r;
	}
	s->pos += got;
	return (long long)got;
}

int sk_src_need(sk_src *s, void *buf, size_t n, const char *what)
{
	long long r = sk_src_read(s, buf, n);
	if (r < 0)
		return -1;
	if ((size_t)r < n)
		return sk_error("%s: truncated %s (%lld of %zu bytes)", s->name, what, r, n);
	return 0;
}

long long sk_src_peek(sk_src *s, size_t n, const unsigned char **p)
{
	size_t have = s->looklen - s->lookpos;
	if (have < n) {
		if (s->lookpos) {
			memmove(s->look, s->look + s->lookpos, have);
			s->looklen = have;
			s->lookpos = 0;
		}
		if (n > s->lookcap) {
			unsigned char *nb = realloc(s->look, n);
			if (!nb)
				return sk_error("out of memory reading %s", s->name);
			s->look = nb;
			s->lookcap = n;
		}
		long long r = src_fill(s, s->look + s->looklen, n - have);
		if (r < 0)
			return -1;
		s->looklen += (size_t)r;
		have += (size_t)r;
	}
	*p = s->look + s->lookpos;
	return (long long)(have < n ? have : n);
}

int sk_src_at_end(sk_src *s)
{
	const unsigned char *p;
	long long r = sk_src_peek(s, 1, &p);
	return r < 0 ? -1 : r == 0;
}

/* ---- formats ---- */

static const char *const fmt_names[] = {"auto", "idx", "cifar10", "cifar100", "png", "npy"};

const char *sk_format_name(sk_format f)
{
	return (unsigned)f < sizeof fmt_names / sizeof *fmt_names ? fmt_names[f] : "?";
}

int sk_format_parse(const char *s, sk_format *f)
{
	for (unsigned i = 0; i < sizeof fmt_names / sizeof *fmt_names; i++)
		if (!strcmp(s, fmt_names[i])) {
			*f = (sk_format)i;
			return 0;
		}
	return sk_error("unknown format '%s' (expected idx, cifar10, cifar100, png or npy)", s);
}

static int idx_type_ok(int t)
{
	return t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E;
}

/* Do the bytes look like CIFAR records of `rs` bytes (label bytes at
 * every record start)? */
static int cifar_like(const unsigned char *b, size_t n, int at_end, size_t rs, int kind)
{
	size_t i, recs = 0;
	if (n < rs)
		return 0;
	for (i = 0; i + 2 <= n; i += rs, recs++) {
		if (kind == 10 && b[i] >= 10)
			return 0;
		if (kind == 100 && (b[i] >= 20 || b[i + 1] >= 100))
			return 0;
	}
	(void)at_end;
	return recs > 0;
}

int sk_format_detect(const unsigned char *b, size_t n, int at_end, sk_format *f)
{
	static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	if (n >= 8 && !memcmp(b, png_sig, 8)) {
		*f = SK_FMT_PNG;
		return 0;
	}
	if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) {
		*f = SK_FMT_NPY;
		return 0;
	}
	if (n >= 8 && b[0] == 0 && b[1] == 0 && idx_type_ok(b[2]) && b[3] >= 1 && b[3] <= SK_MAXDIM &&
	    n >= 4 + 4 * (size_t)b[3]) {
		*f = SK_FMT_IDX;
		return 0;
	}
	int c10 = cifar_like(b, n, at_end, 3073, 10);
	int c100 = cifar_like(b, n, at_end, 3074, 100);
	if (c10 && c100 && at_end) {
		/* Both fit: let the length decide. */
		if (n % 3073 && !(n % 3074))
			c10 = 0;
	}
	if (c10) {
		*f = SK_FMT_CIFAR10;
		return 0;
	}
	if (c100) {
		*f = SK_FMT_CIFAR100;
		return 0;
	}
	if (n == 0)
		return sk_error("empty input");
	return sk_error("unrecognised format (not idx, CIFAR, PNG or npy; use -f to force one)");
}
