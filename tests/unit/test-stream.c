/* test-stream.c: the tensor stream: round trips (raw, deflate), attributes
 * and escaping, concatenation, skipping, streaming reads, every kind of
 * damage a reader must refuse, and atomic output files. */
#include "sk_cli.h"
#include "sk_stream.h"
#include "sk_rng.h"
#include "tap.h"

#include <zlib.h>

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A stream in memory: write records with `fill` into a growing buffer. */
static unsigned char *mem_stream(void (*fill)(FILE *), size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	fill(f);
	fclose(f);
	*len = n;
	return (unsigned char *)buf;
}

/* Read every record of a buffer, decoding each payload; returns the number
 * of records or -1 on the first error. */
static int read_all(const unsigned char *buf, size_t len)
{
	FILE *f = fmemopen((void *)(uintptr_t)buf, len ? len : 1, "rb");
	if (len == 0) {
		/* fmemopen refuses size 0: read from an empty pipe-like file */
		fclose(f);
		f = tmpfile();
	}
	sk_reader *r = sk_reader_fdopen(f, "mem");
	sk_header h;
	int n = 0, s;
	while ((s = sk_reader_next(r, &h)) > 0) {
		sk_tensor t;
		if (sk_reader_payload(r, &h, &t) < 0) {
			s = -1;
			sk_header_free(&h);
			break;
		}
		sk_tensor_free(&t);
		n++;
	}
	sk_reader_close(r);
	fclose(f);
	return s < 0 ? -1 : n;
}

static float fdata[6 * 7];
static uint8_t bdata[3 * 5 * 4];

static void fill_two(FILE *f)
{
	int64_t fs[] = {6, 7}, bs[] = {3, 5, 4};
	sk_attrs a;
	sk_attrs_init(&a);
	sk_attrs_set(&a, "classes", "cat,dog");
	sk_attrs_set(&a, "note", "two\nlines\tand \\ a tab\x01!");
	sk_write_record_raw(f, "weights", SK_F32, 2, fs, fdata, &a, 0);
	sk_write_record_raw(f, "images", SK_U8, 3, bs, bdata, NULL, 6);
	sk_attrs_free(&a);
}

static void fill_scalar(FILE *f)
{
	int32_t v = -7;
	sk_write_record_raw(f, "step", SK_I32, 0, NULL, &v, NULL, 0);
}

static void test_roundtrip(void)
{
	for (int i = 0; i < 42; i++)
		fdata[i] = (float)i * 0.5f - 3;
	for (int i = 0; i < 60; i++)
		bdata[i] = (uint8_t)(i * 7);
	size_t len;
	unsigned char *buf = mem_stream(fill_two, &len);
	tap_ok(len % 64 == 0, "stream length %zu is a multiple of 64", len);
	tap_ok(memcmp(buf, "TNS 1\nname weights\ndtype f32\nshape 6 7\nencoding raw\n", 51) == 0, "header text");
	FILE *f = fmemopen(buf, len, "rb");
	sk_reader *r = sk_reader_fdopen(f, "mem");
	sk_header h;
	sk_tensor t;
	tap_ok(sk_reader_next(r, &h) == 1 && strcmp(h.name, "weights") == 0 && h.dtype == SK_F32 && h.ndim == 2 &&
	           h.shape[0] == 6 && h.shape[1] == 7 && h.rawbytes == 168 && h.encoding == SK_RAW,
	       "first header");
	tap_ok(h.attrs.n == 2 && strcmp(sk_attrs_get(&h.attrs, "classes"), "cat,dog") == 0 &&
	           strcmp(sk_attrs_get(&h.attrs, "note"), "two\nlines\tand \\ a tab\x01!") == 0,
	       "attributes with escapes survive");
	tap_ok(sk_reader_payload(r, &h, &t) == 0 && memcmp(t.data, fdata, sizeof fdata) == 0, "f32 payload");
	sk_tensor_free(&t);
	tap_ok(sk_reader_next(r, &h) == 1 && h.encoding == SK_DEFLATE && strcmp(h.name, "images") == 0 &&
	           sk_reader_index(r) == 1,
	       "second header (deflate)");
	uint8_t got[60];
	long n1 = sk_reader_read(r, &h, got, 7);
	long n2 = sk_reader_read(r, &h, got + 7, 100);
	long n3 = sk_reader_read(r, &h, got, 100);
	tap_ok(n1 == 7 && n2 == 53 && n3 == 0 && memcmp(got + 7, bdata + 7, 53) == 0, "streaming deflate read");
	tap_ok(sk_reader_next(r, &h) == 0, "clean end");
	sk_reader_close(r);
	fclose(f);

	/* concatenation is a stream; skipping without reading works */
	unsigned char *cat = malloc(2 * len);
	memcpy(cat, buf, len);
	memcpy(cat + len, buf, len);
	tap_ok(read_all(cat, 2 * len) == 4, "concatenated streams read as one");
	f = fmemopen(cat, 2 * len, "rb");
	r = sk_reader_fdopen(f, "mem");
	int k = 0;
	while (sk_reader_next(r, &h) > 0)
		k++;
	tap_ok(k == 4, "skipping every payload: %d records", k);
	sk_reader_close(r);
	fclose(f);
	free(cat);
	free(buf);

	buf = mem_stream(fill_scalar, &len);
	f = fmemopen(buf, len, "rb");
	r = sk_reader_fdopen(f, "mem");
	tap_ok(sk_reader_next(r, &h) == 1 && h.ndim == 0 && sk_reader_payload(r, &h, &t) == 0 &&
	           *(int32_t *)t.data == -7,
	       "scalar record");
	sk_tensor_free(&t);
	sk_reader_close(r);
	fclose(f);
	free(buf);
	tap_ok(sk_crc32(0, "123456789", 9) == 0xcbf43926u, "crc32 check value");
	/* the accelerated path against zlib: every length up to 600 at every
	 * alignment 0..15, chained from a non-zero crc, and a long buffer */
	unsigned char *rnd = malloc(1 << 20);
	for (int i = 0; i < 1 << 20; i++)
		rnd[i] = (unsigned char)(sk_rng_u64(5, 6, (uint64_t)i) >> 7);
	int wrong = 0;
	for (int al = 0; al < 16; al++)
		for (size_t n = 0; n <= 600; n++)
			if (sk_crc32(0x12345678u, rnd + al, n) != (uint32_t)crc32(0x12345678u, rnd + al, (uInt)n))
				wrong++;
	if (sk_crc32(7, rnd + 3, (1 << 20) - 3) != (uint32_t)crc32(7, rnd + 3, (1 << 20) - 3))
		wrong++;
	tap_ok(wrong == 0, "crc32 (%s path) equals zlib's on %d buffers (%d wrong)",
	       sk_crc32_accelerated() ? "pclmul" : "portable", 16 * 601 + 1, wrong);
	free(rnd);
}

/* Both records of fill_two decode to the original data. */
static int same_data(const unsigned char *buf, size_t len)
{
	FILE *f = fmemopen((void *)(uintptr_t)buf, len, "rb");
	sk_reader *r = sk_reader_fdopen(f, "mem");
	sk_header h;
	float a[42];
	uint8_t b[60];
	int ok = sk_reader_next(r, &h) == 1 && h.rawbytes == sizeof a && sk_reader_payload_into(r, &h, a) == 0 &&
	         memcmp(a, fdata, sizeof a) == 0 && sk_reader_next(r, &h) == 1 && h.rawbytes == sizeof b &&
	         sk_reader_payload_into(r, &h, b) == 0 && memcmp(b, bdata, sizeof b) == 0 && sk_reader_next(r, &h) == 0;
	sk_header_free(&h);
	sk_reader_close(r);
	fclose(f);
	return ok;
}

static void test_damage(void)
{
	size_t len;
	unsigned char *buf = mem_stream(fill_two, &len);
	int bad = 0;
	/* truncated at every byte: an error, never a success (except at the
	 * record boundary, which is a shorter valid stream) */
	size_t first = 0;
	{
		FILE *f = fmemopen(buf, len, "rb");
		sk_reader *r = sk_reader_fdopen(f, "mem");
		sk_header h;
		sk_reader_next(r, &h);
		sk_reader_skip(r, &h);
		first = (size_t)ftell(f);
		sk_header_free(&h);
		sk_reader_close(r);
		fclose(f);
	}
	for (size_t cut = 1; cut < len; cut++) {
		int n = read_all(buf, cut);
		if (cut == first ? n != 1 : n != -1)
			bad++;
	}
	tap_ok(bad == 0 && first > 0, "truncation at each of %zu bytes refused (%d wrong)", len, bad);
	tap_ok(read_all(buf, len) == 2, "intact stream reads");
	/* every single-bit flip is refused or (in padding spaces turning into
	 * other spaces, impossible) harmless: count the accepted ones */
	int accepted = 0, ignored = 0;
	for (size_t i = 0; i < len; i++)
		for (int b = 0; b < 8; b++) {
			buf[i] ^= (unsigned char)(1 << b);
			if (read_all(buf, len) >= 0) {
				ignored++;
				if (!same_data(buf, len)) {
					accepted++;
					tap_diag("flip of bit %d at byte %zu accepted", b, i);
				}
			}
			buf[i] ^= (unsigned char)(1 << b);
		}
	tap_ok(accepted == 0, "all %zu single-bit flips refused (%d accepted with other data; %d harmless, in "
	       "bits deflate ignores)", len * 8, accepted, ignored);
	tap_ok(ignored < 8, "harmless flips are rare (%d)", ignored);
	free(buf);
}

static int read_text(const char *text, size_t len)
{
	int n = read_all((const unsigned char *)text, len);
	tap_diag("%s", n < 0 ? sk_errmsg() : "accepted");
	return n;
}

/* a header padded to 64 bytes from a body without the terminator */
static size_t make_header(char *out, const char *body)
{
	size_t n = (size_t)sprintf(out, "%s", body);
	n += (size_t)sprintf(out + n, "end %08lx", (unsigned long)sk_crc32(0, out, n));
	while ((n + 1) % 64)
		out[n++] = ' ';
	out[n++] = '\n';
	return n;
}

static void test_bad_headers(void)
{
	char h[70000];
	struct {
		const char *body, *what, *expect;
	} cases[] = {
		{"TNS 2\nname x\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\n", "version 2", "version 2"},
		{"TNS 1\nname x\ndtype f64\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\n", "dtype", "dtype"},
		{"TNS 1\nname x\ndtype u8\nshape 0\nencoding raw\nlength 0\ncrc32 00000000\n", "zero dim", "zero"},
		{"TNS 1\nname x\ndtype u8\nshape -3\nencoding raw\nlength 1\ncrc32 00000000\n", "negative", "negative"},
		{"TNS 1\nname x\ndtype u8\nshape 99999999999\nencoding raw\nlength 1\ncrc32 00000000\n", "huge", "limit"},
		{"TNS 1\nname x\ndtype u8\nshape 2147483648 2147483648 64\nencoding raw\nlength 1\ncrc32 00000000\n",
		 "overflow", "large"},
		{"TNS 1\nname x\ndtype u8\nshape 1\nencoding raw\nlength 2\ncrc32 00000000\n", "length", "length"},
		{"TNS 1\nname x\nname y\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\n", "dup", "duplicate"},
		{"TNS 1\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\n", "no name", "no 'name'"},
		{"TNS 1\nname x\ndtype u8\nshape 1x\nencoding raw\nlength 1\ncrc32 00000000\n", "nonnum", "number"},
		{"TNS 1\nname x\ndtype u8\nshape 1\nencoding lzma\nlength 1\ncrc32 00000000\n", "enc", "encoding"},
		{"TNS 1\nname x\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 0000000g\n", "crc", "crc32"},
		{"TNS 1\nname x\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\nfoo 1\n", "key", "unknown"},
		{"TNS 1\nname x\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\nattr.a 1\nattr.a 2\n", "dup attr",
		 "duplicate"},
		{"TNS 1\nname x\ndtype u8\nshape 1\nencoding raw\nlength 1\ncrc32 00000000\nattr.a \\q\n", "escape", "escape"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = make_header(h, cases[i].body);
		memset(h + n, 0, 64);
		int r = read_text(h, n + 64);
		tap_ok(r < 0 && strstr(sk_errmsg(), cases[i].expect) && strstr(sk_errmsg(), "mem: record 0"),
		       "bad header refused: %s", cases[i].what);
	}
	/* no terminator, over-long header */
	memset(h, 'x', sizeof h);
	memcpy(h, "TNS 1\nattr.a ", 13);
	h[66000] = '\n';
	tap_ok(read_text(h, 66001) < 0 && strstr(sk_errmsg(), "longer"), "over-long header refused");
	tap_ok(read_text("TNS 1\nname x\n", 13) < 0 && strstr(sk_errmsg(), "truncated"), "no terminator refused");
	tap_ok(read_text("hello world, this is not a stream at all, not even close........\n", 64) < 0 &&
	           strstr(sk_errmsg(), "not a tensor stream"),
	       "garbage refused");
	size_t len;
	unsigned char *buf = mem_stream(fill_scalar, &len);
	unsigned char *g = malloc(len + 64);
	memcpy(g, buf, len);
	memset(g + len, 'z', 64);
	tap_ok(read_all(g, len + 64) < 0 && strstr(sk_errmsg(), "garbage after"), "trailing garbage refused: %s",
	       sk_errmsg());
	memset(g + len, 0, 64);
	tap_ok(read_all(g, len + 64) < 0, "trailing zeros refused: %s", sk_errmsg());
	free(g);
	free(buf);
	tap_ok(read_all((const unsigned char *)"", 0) == 0, "empty stream has no records");
}

static void test_writer_checks(void)
{
	int64_t zero[] = {3, 0}, ok[] = {2};
	uint8_t d[2] = {1, 2};
	FILE *f = fopen("/dev/null", "wb");
	tap_ok(sk_write_record_raw(f, "x", SK_U8, 2, zero, d, NULL, 0) < 0, "writer refuses a zero dimension: %s",
	       sk_errmsg());
	tap_ok(sk_write_record_raw(f, "a b", SK_U8, 1, ok, d, NULL, 0) < 0, "writer refuses a name with a space");
	tap_ok(sk_write_record_raw(f, "x", SK_U8, 1, ok, d, NULL, 10) < 0, "writer refuses level 10");
	sk_attrs a;
	sk_attrs_init(&a);
	tap_ok(sk_attrs_set(&a, "bad key", "v") < 0, "attribute key with a space refused");
	char *big = malloc(70000);
	memset(big, 'v', 69999);
	big[69999] = 0;
	sk_attrs_set(&a, "big", big);
	tap_ok(sk_write_record_raw(f, "x", SK_U8, 1, ok, d, &a, 0) < 0, "header over the cap refused: %s",
	       sk_errmsg());
	free(big);
	sk_attrs_free(&a);
	fclose(f);
}

static void test_ofile(void)
{
	char dir[] = "/tmp/sk-ofile.XXXXXX";
	if (!mkdtemp(dir)) {
		tap_ok(0, "mkdtemp");
		return;
	}
	char path[256];
	snprintf(path, sizeof path, "%s/out.tns", dir);
	sk_ofile *o = sk_ofile_open(path, 0);
	int64_t s[] = {4};
	float v[4] = {1, 2, 3, 4};
	tap_ok(o && access(path, F_OK) != 0, "nothing at the final path before commit");
	sk_write_record_raw(sk_ofile_fp(o), "v", SK_F32, 1, s, v, NULL, 0);
	tap_ok(sk_ofile_commit(o) == 0 && access(path, F_OK) == 0, "commit renames into place");
	o = sk_ofile_open(path, 0);
	fputs("junk", sk_ofile_fp(o));
	sk_ofile_abort(o);
	sk_reader *r = sk_reader_open(path);
	sk_header h;
	tap_ok(r && sk_reader_next(r, &h) == 1 && strcmp(h.name, "v") == 0, "abort keeps the old file");
	sk_reader_close(r);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
	tap_ok(system(cmd) == 0, "no temporary left behind");
	o = sk_ofile_open("/dev/full", 0);
	tap_ok(o != NULL, "device opened directly");
	if (o) {
		int64_t big[] = {100000};
		float *z = calloc(100000, sizeof *z);
		sk_write_record_raw(sk_ofile_fp(o), "z", SK_F32, 1, big, z, NULL, 0);
		free(z);
		tap_ok(sk_ofile_commit(o) < 0 && strstr(sk_errmsg(), "No space"), "write error reported at commit: %s",
		       sk_errmsg());
	}
	tap_ok(sk_ofile_open(dir, 0) == NULL && strstr(sk_errmsg(), "directory"), "directory refused");
	tap_ok(sk_reader_open(dir) == NULL && strstr(sk_errmsg(), "directory"), "reading a directory refused");
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	system(cmd);
}

/* Many outputs opened, written and committed (or aborted) from several
 * threads at once: every committed file holds its own record with the mode
 * the umask gives, aborted ones and temporaries leave nothing, and the
 * process umask is never changed on the way. */
#define OF_THREADS 8
#define OF_FILES 60

struct of_job {
	const char *dir;
	int t, bad;
};

static void *of_worker(void *arg)
{
	struct of_job *j = arg;
	char path[512];
	for (int i = 0; i < OF_FILES; i++) {
		snprintf(path, sizeof path, "%s/t%d-%d.tns", j->dir, j->t, i);
		/* every third file twice: the second replaces the first */
		for (int pass = 0; pass < 1 + (i % 3 == 0); pass++) {
			sk_ofile *o = sk_ofile_open(path, 0);
			if (!o) {
				j->bad++;
				continue;
			}
			int64_t s[] = {3};
			int32_t v[3] = {j->t, i, pass};
			/* a big record now and then, so writes reach the file before commit */
			int64_t sb[] = {40000};
			float *big = i % 7 == 0 ? calloc(40000, sizeof *big) : NULL;
			if (sk_write_record_raw(sk_ofile_fp(o), "v", SK_I32, 1, s, v, NULL, 0) < 0 ||
			    (big && sk_write_record_raw(sk_ofile_fp(o), "big", SK_F32, 1, sb, big, NULL, 0) < 0))
				j->bad++;
			free(big);
			if (i % 5 == 4 && pass == 0)
				sk_ofile_abort(o);
			else if (sk_ofile_commit(o) < 0)
				j->bad++;
		}
	}
	return NULL;
}

static void test_ofile_threads(int named)
{
	char dir[] = "/tmp/sk-ofile-mt.XXXXXX";
	const char *how = named ? "named temporaries" : "O_TMPFILE where available";
	if (!mkdtemp(dir)) {
		tap_ok(0, "mkdtemp");
		return;
	}
	if (named)
		setenv("SK_NO_TMPFILE", "1", 1);
	mode_t old = umask(027);
	pthread_t th[OF_THREADS];
	struct of_job jobs[OF_THREADS];
	int started = 0;
	for (int t = 0; t < OF_THREADS; t++) {
		jobs[t] = (struct of_job){dir, t, 0};
		started += pthread_create(&th[t], NULL, of_worker, &jobs[t]) == 0;
	}
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	mode_t now = umask(old);
	unsetenv("SK_NO_TMPFILE");
	int bad = 0;
	for (int t = 0; t < OF_THREADS; t++)
		bad += jobs[t].bad;
	tap_ok(started == OF_THREADS && bad == 0, "%s: %d threads open, write and commit %d outputs each (%d errors%s%s)",
	       how, OF_THREADS, OF_FILES, bad, bad ? ": " : "", bad ? sk_errmsg() : "");
	tap_ok(now == 027, "%s: the umask is never changed (027, now %03o)", how, (unsigned)now);
	/* what is in the directory: exactly the committed files, each right */
	int files = 0, wrong = 0, litter = 0, badmode = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int t, i;
		if (e->d_name[0] == '.' || sscanf(e->d_name, "t%d-%d.tns", &t, &i) != 2) {
			litter++;
			tap_diag("left behind: %s", e->d_name);
			continue;
		}
		files++;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) != 0 || (st.st_mode & 0777) != 0640)
			badmode++;
		sk_reader *r = sk_reader_open(path);
		sk_header h;
		int32_t v[3] = {-1, -1, -1};
		if (!r || sk_reader_next(r, &h) != 1 || h.rawbytes != sizeof v || sk_reader_payload_into(r, &h, v) < 0 ||
		    v[0] != t || v[1] != i || v[2] != (i % 3 == 0))
			wrong++;
		sk_reader_close(r);
	}
	if (d)
		closedir(d);
	int want = 0; /* aborted files stay absent unless a second pass commits them */
	for (int i = 0; i < OF_FILES; i++)
		want += OF_THREADS * (i % 5 != 4 || i % 3 == 0);
	tap_ok(files == want && wrong == 0 && litter == 0, "%s: %d files (want %d), %d wrong, %d left behind", how, files,
	       want, wrong, litter);
	tap_ok(badmode == 0, "%s: every file has mode 0640 (umask 027): %d do not", how, badmode);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	system(path);
}

/* Generator mode, for the shell tests: `test-stream gen [-z LEVEL] SPEC...`
 * writes records to stdout.  SPEC is NAME:DTYPE:AxBxC[:KEY=VALUE] (element i
 * is i % 251 for u8, i - 5 for i32, i * 0.25 - 1 for f32), or
 * data:N:CHUNK:AxBxC, a data set of N examples in chunks: `images` (u8,
 * pixel j of example e = (e * 7 + j) % 256) and `labels` (i32, = e). */
static int gen(int argc, char **argv)
{
	int level = 0, i = 2;
	if (i + 1 < argc && strcmp(argv[i], "-z") == 0) {
		level = atoi(argv[i + 1]);
		i += 2;
	}
	for (; i < argc; i++) {
		char spec[512], *save = NULL;
		snprintf(spec, sizeof spec, "%s", argv[i]);
		char *f1 = strtok_r(spec, ":", &save), *f2 = strtok_r(NULL, ":", &save), *f3 = strtok_r(NULL, ":", &save),
		     *f4 = strtok_r(NULL, "", &save);
		if (!f1 || !f2 || !f3)
			return fprintf(stderr, "test-stream: bad spec '%s'\n", argv[i]), 2;
		int64_t shape[SK_MAXDIM + 1];
		int nd = 0;
		char *dims = strcmp(f1, "data") == 0 ? f4 : f3, *ds = NULL;
		for (char *d = dims ? strtok_r(dims, "x", &ds) : NULL; d && nd < SK_MAXDIM; d = strtok_r(NULL, "x", &ds))
			shape[nd++] = atoll(d);
		if (strcmp(f1, "data") == 0) {
			int64_t n = atoll(f2), chunk = atoll(f3), ex = 1;
			for (int d = 0; d < nd; d++)
				ex *= shape[d];
			for (int64_t b = 0; b < n; b += chunk) {
				int64_t m = n - b < chunk ? n - b : chunk;
				int64_t s[SK_MAXDIM + 1] = {m};
				memcpy(s + 1, shape, (size_t)nd * sizeof *s);
				uint8_t *img = malloc((size_t)(m * ex));
				int32_t *lab = malloc((size_t)m * 4);
				for (int64_t e = 0; e < m; e++) {
					lab[e] = (int32_t)(b + e);
					for (int64_t j = 0; j < ex; j++)
						img[e * ex + j] = (uint8_t)(((b + e) * 7 + j) % 256);
				}
				sk_attrs a;
				sk_attrs_init(&a);
				sk_attrs_set(&a, "classes", "zero,one,two");
				if (sk_write_record_raw(stdout, "images", SK_U8, nd + 1, s, img, &a, level) < 0 ||
				    sk_write_record_raw(stdout, "labels", SK_I32, 1, s, lab, NULL, level) < 0)
					return fprintf(stderr, "test-stream: %s\n", sk_errmsg()), 1;
				sk_attrs_free(&a);
				free(img);
				free(lab);
			}
			continue;
		}
		sk_dtype t;
		if (sk_dtype_parse(f2, &t) < 0)
			return fprintf(stderr, "test-stream: bad dtype '%s'\n", f2), 2;
		sk_tensor x;
		if (strcmp(f3, "scalar") == 0)
			nd = 0;
		if (sk_tensor_init(&x, t, nd, shape) < 0)
			return fprintf(stderr, "test-stream: %s\n", sk_errmsg()), 1;
		size_t cnt = sk_tensor_count(&x);
		for (size_t k = 0; k < cnt; k++) {
			if (t == SK_U8)
				((uint8_t *)x.data)[k] = (uint8_t)(k % 251);
			else if (t == SK_I32)
				((int32_t *)x.data)[k] = (int32_t)k - 5;
			else
				((float *)x.data)[k] = (float)k * 0.25f - 1;
		}
		sk_attrs a;
		sk_attrs_init(&a);
		if (f4) {
			char *eq = strchr(f4, '=');
			if (eq) {
				*eq = 0;
				sk_attrs_set(&a, f4, eq + 1);
			}
		}
		if (sk_write_record(stdout, f1, &x, &a, level) < 0)
			return fprintf(stderr, "test-stream: %s\n", sk_errmsg()), 1;
		sk_attrs_free(&a);
		sk_tensor_free(&x);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* `test-stream mkhdr N`: header body from stdin (magic and key lines),
 * completed with its terminator and padding, then N zero payload bytes (and
 * padding): for hand-made bad records. */
static int mkhdr(int argc, char **argv)
{
	static char h[SK_HEADER_MAX * 2];
	size_t n = fread(h, 1, sizeof h - 128, stdin);
	n += (size_t)sprintf(h + n, "end %08lx", (unsigned long)sk_crc32(0, h, n));
	while ((n + 1) % 64)
		h[n++] = ' ';
	h[n++] = '\n';
	fwrite(h, 1, n, stdout);
	long z = argc > 2 ? atol(argv[2]) : 0;
	for (long i = 0; i < z + (64 - z % 64) % 64; i++)
		putchar(0);
	return 0;
}

/* `test-stream dump NAME`: the values of records named NAME on stdin, one
 * per line (%g), for checking selections from the shell. */
static int dump(int argc, char **argv)
{
	sk_reader *r = sk_reader_open("-");
	sk_header h;
	int s;
	while (r && (s = sk_reader_next(r, &h)) > 0) {
		if (argc > 2 && strcmp(h.name, argv[2]) != 0)
			continue;
		sk_tensor t;
		if (sk_reader_payload(r, &h, &t) < 0)
			break;
		for (size_t i = 0; i < sk_tensor_count(&t); i++)
			printf("%g\n", t.dtype == SK_U8 ? ((uint8_t *)t.data)[i] : t.dtype == SK_I32 ? ((int32_t *)t.data)[i]
			                                                                           : ((float *)t.data)[i]);
		sk_tensor_free(&t);
	}
	if (!r || s < 0)
		return fprintf(stderr, "test-stream: %s\n", sk_errmsg()), 1;
	sk_reader_close(r);
	return 0;
}

/* `test-stream flip OFFSET BIT`: stdin to stdout with one bit flipped. */
static int flip(int argc, char **argv)
{
	long off = argc > 2 ? atol(argv[2]) : 0, bit = argc > 3 ? atol(argv[3]) : 0, i = 0;
	int c;
	while ((c = getchar()) != EOF)
		putchar(i++ == off ? c ^ (1 << (bit & 7)) : c);
	return 0;
}

/* `test-stream wrap NAME DTYPE AxB... [LEVEL]`: stdin's raw bytes as one record
 * (their size must match the shape). */
static int wrap(int argc, char **argv)
{
	if (argc < 5)
		return fprintf(stderr, "test-stream: wrap NAME DTYPE SHAPE [LEVEL]\n"), 2;
	sk_dtype t;
	int64_t shape[SK_MAXDIM];
	int nd = 0;
	char dims[256], *save = NULL;
	snprintf(dims, sizeof dims, "%s", argv[4]);
	for (char *d = strtok_r(dims, "x", &save); d && nd < SK_MAXDIM; d = strtok_r(NULL, "x", &save))
		shape[nd++] = atoll(d);
	size_t bytes;
	if (sk_dtype_parse(argv[3], &t) < 0 || sk_shape_check(t, nd, shape, NULL, &bytes) < 0)
		return fprintf(stderr, "test-stream: bad dtype or shape\n"), 2;
	unsigned char *buf = malloc(bytes ? bytes : 1);
	if (!buf || fread(buf, 1, bytes, stdin) != bytes)
		return fprintf(stderr, "test-stream: short input\n"), 1;
	int r = sk_write_record_raw(stdout, argv[2], t, nd, shape, buf, NULL, argc > 5 ? atoi(argv[5]) : 0);
	free(buf);
	if (r < 0 || fflush(stdout) != 0)
		return fprintf(stderr, "test-stream: %s\n", sk_errmsg()), 1;
	return 0;
}

/* `test-stream writebench MB PATH`: time writing one MB-megabyte f32 record
 * through sk_ofile (temporary, fsync, rename); prints wall and CPU seconds. */
static int writebench(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int64_t n = atoll(argv[2]) * (1 << 18);
	float *x = malloc((size_t)n * 4);
	if (!x)
		return 1;
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(i % 1000) * 0.001f;
	struct timespec a, b, ca, cb;
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
	sk_ofile *o = sk_ofile_open(argv[3], 0);
	if (!o || sk_write_record_raw(sk_ofile_fp(o), "x", SK_F32, 1, &n, x, NULL, 0) < 0 || sk_ofile_commit(o) < 0)
		return fprintf(stderr, "test-stream: %s\n", sk_errmsg()), 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
	/* wall and CPU seconds */
	printf("%.6f %.6f\n", (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec),
	       (double)(cb.tv_sec - ca.tv_sec) + 1e-9 * (double)(cb.tv_nsec - ca.tv_nsec));
	free(x);
	return 0;
}

static void test_cli(void)
{
	char *argv0[] = {"snet-train", "-o", "a b", "it's", "x=1", NULL};
	char *cl = sk_cmdline(5, argv0);
	tap_ok(cl && strcmp(cl, "snet-train -o 'a b' 'it'\\''s' x=1") == 0, "command line quoted for a shell: %s", cl);
	free(cl);
	static const sk_option opts[] = {
		{"name", 'n', "NAME", "a name"},
		{"range", 0, "A:B", "a range"},
		{"stats", 's', NULL, "a flag"},
		{0, 0, 0, 0},
	};
	sk_cli c = {.prog = "t", .synopsis = "[FILE]", .summary = "test", .opts = opts};
	char *argv[] = {"t", "-n", "x", "file", "--range=1:2", "-q", "--stats", "--name", "y", NULL};
	int argc = 9, first = 0, seen[3] = {0, 0, 0}, opt;
	const char *arg, *names[2] = {0, 0};
	sk_cli_init(&c, argc, argv);
	while ((opt = sk_cli_next(&c, argc, argv, &arg, &first)) >= 0) {
		if (opt == 0 && seen[0] < 2)
			names[seen[0]] = arg;
		if (opt >= 0 && opt < 3)
			seen[opt]++;
	}
	tap_ok(seen[0] == 2 && seen[1] == 1 && seen[2] == 1 && strcmp(names[0], "x") == 0 && strcmp(names[1], "y") == 0,
	       "options from the table, short and long, in any order");
	tap_ok(c.quiet == 1 && first == 8 && strcmp(argv[first], "file") == 0, "--quiet handled, operands after options");
	tap_ok(sk_arg_long("--n", "42", 0, 100) == 42 && sk_arg_double("--f", "0.25", 0, 1) == 0.25, "checked numbers");
	char *help = NULL;
	size_t hl = 0;
	FILE *hf = open_memstream(&help, &hl);
	sk_cli_help(&c, hf);
	fclose(hf);
	tap_ok(strstr(help, "Usage: t [FILE]") && strstr(help, "-n, --name NAME") && strstr(help, "--range A:B") &&
	           strstr(help, "--version"),
	       "help text from the same table");
	tap_ok(!strstr(help, " 3 stopped"), "no exit status 3 without --resume");
	free(help);
	tap_ok(sk_arg_seed("--seed", "0") == 0 && sk_arg_seed("--seed", "9223372036854775807") == 9223372036854775807ULL &&
	           sk_arg_level("0") == 0 && sk_arg_level("9") == 9,
	       "seeds and compression levels");
	static const sk_option ropts[] = {
		{"resume", 0, "CKPT", "continue"},
		{"old", 0, NULL, NULL},
		{0, 0, 0, 0},
	};
	sk_cli r = {.prog = "t", .opts = ropts};
	hf = open_memstream(&help, &hl);
	sk_cli_help(&r, hf);
	fclose(hf);
	tap_ok(strstr(help, "--resume CKPT") && !strstr(help, "--old") &&
	           strstr(help, "Exit status: 0 success, 1 data or runtime error, 2 usage error, 3 stopped with a "
	                        "checkpoint written (continue with --resume)."),
	       "hidden options stay out of --help; --resume brings exit status 3");
	free(help);
	tap_ok(sk_ncores() >= 1, "core count");
}

int main(int argc, char **argv)
{
	/* the helper commands of the shell tests */
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} cmds[] = {{"wrap", wrap}, {"writebench", writebench}, {"flip", flip},
	            {"gen", gen},   {"mkhdr", mkhdr},           {"dump", dump}};
	for (size_t i = 0; argc > 1 && i < sizeof cmds / sizeof *cmds; i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc, argv);
	test_roundtrip();
	test_damage();
	test_bad_headers();
	test_writer_checks();
	test_ofile();
	test_ofile_threads(0);
	test_ofile_threads(1);
	test_cli();
	return tap_done();
}
