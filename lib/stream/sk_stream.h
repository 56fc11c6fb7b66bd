/* sk_stream.h: the tensor stream (.tns): records read and written in order.
 *
 * A stream is a concatenation of records; each is a short text header and a
 * binary payload (see man/man5/tns.5).  Readers check everything before
 * trusting it and never allocate more than the caps allow.  Writers go
 * through sk_ofile (atomic output) or any FILE*.
 */
#ifndef SK_STREAM_H
#define SK_STREAM_H

#include <stdio.h>
#include "sk_base.h"

#define SK_NAME_MAX 128          /* record name, attribute key */
#define SK_HEADER_MAX 65536      /* whole text header, bytes */
#define SK_ATTR_MAX 256          /* attributes per record */

typedef enum sk_encoding { SK_RAW = 0, SK_DEFLATE = 1 } sk_encoding;

/* Free attributes: ordered key/value text pairs.  Keys are [A-Za-z0-9_.:-]+,
 * values any UTF-8 text without newlines (writers escape \n, \t, \\). */
typedef struct sk_attrs {
	int n, cap;
	char **key, **val;
} sk_attrs;

void sk_attrs_init(sk_attrs *a);
void sk_attrs_free(sk_attrs *a);
int sk_attrs_set(sk_attrs *a, const char *key, const char *val);   /* replaces */
int sk_attrs_setf(sk_attrs *a, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *sk_attrs_get(const sk_attrs *a, const char *key);     /* NULL if absent */
int sk_attrs_copy(sk_attrs *dst, const sk_attrs *src);

/* A record header as read from a stream. */
typedef struct sk_header {
	char name[SK_NAME_MAX];
	sk_dtype dtype;
	int ndim;
	int64_t shape[SK_MAXDIM];
	sk_encoding encoding;
	uint64_t length;     /* payload bytes as stored (compressed size for deflate) */
	uint64_t rawbytes;   /* payload bytes once decoded */
	uint32_t crc;        /* CRC-32 (zlib) of the decoded payload */
	sk_attrs attrs;
} sk_header;

void sk_header_free(sk_header *h);

/* ---- reading ---- */

typedef struct sk_reader sk_reader;

/* path "-" or NULL is stdin.  The display name is used in messages.
 * sk_reader_fdopen reads an open FILE it does not own (not closed). */
sk_reader *sk_reader_open(const char *path);
sk_reader *sk_reader_fdopen(FILE *f, const char *display_name);
void sk_reader_close(sk_reader *r);
const char *sk_reader_name(const sk_reader *r);
/* Read the next header: 1 = got one, 0 = clean end of stream, -1 = error
 * (message names the file and record index).  The previous record's payload
 * is skipped automatically if it was not read. */
int sk_reader_next(sk_reader *r, sk_header *h);
/* Read and verify (CRC) the current payload into a freshly allocated tensor.
 * When the size is not known to be backed by data (a pipe, a deflate
 * stream), the buffer grows as bytes arrive, so a lying header cannot make
 * it allocate much more than the input really holds. */
int sk_reader_payload(sk_reader *r, const sk_header *h, sk_tensor *out);
/* Read the current payload into caller memory of exactly h->rawbytes bytes. */
int sk_reader_payload_into(sk_reader *r, const sk_header *h, void *buf);
/* Append the current payload to a malloc'd buffer: *buf holds *cap bytes of
 * which *len are used.  The buffer grows (realloc) geometrically as the
 * bytes arrive, never by what the header claims, so that a header claiming
 * more than the stream holds reserves no memory and ends in the "truncated
 * payload" error.  On success *len grows by h->rawbytes; on failure *len is
 * unchanged (*buf and *cap may have changed: the caller frees *buf). */
int sk_reader_payload_append(sk_reader *r, const sk_header *h, void **buf, size_t *cap, size_t *len);
/* Skip the current payload without decoding (still checks the length and
 * the padding; seeks in a regular file). */
int sk_reader_skip(sk_reader *r, const sk_header *h);
/* Index of the current record (0-based) for messages. */
long sk_reader_index(const sk_reader *r);
/* Stream the decoded payload through caller memory: returns the bytes placed
 * in buf (at most cap, > 0), 0 once the payload is finished, -1 on error.
 * The CRC (and the end of a deflate stream) is checked with the last bytes,
 * so a caller sees an error before it sees 0.  Bounded memory for any size. */
long sk_reader_read(sk_reader *r, const sk_header *h, void *buf, size_t cap);
/* Decode and check the current payload (CRC, length) without keeping it. */
int sk_reader_verify(sk_reader *r, const sk_header *h);
/* Copy the current record (header from h, stored payload bytes as they are)
 * to out, verifying the CRC on the way (a bad record is an error). */
int sk_reader_copy(sk_reader *r, const sk_header *h, FILE *out);

/* Ownership: h->attrs belongs to h.  sk_reader_next frees it when called
 * again with the same h (and at the end or on error), so a loop
 * `while (sk_reader_next(r, &h) > 0) {...}` needs no sk_header_free; call
 * sk_header_free(&h) when leaving such a loop early. */

/* ---- writing ---- */

/* Write a header as given (its length/crc must describe what follows). */
int sk_write_header(FILE *f, const sk_header *h);
/* 0 if `name` is a valid record name (1..127 printable ASCII bytes, no space
 * or backslash), else -1 with a message. */
int sk_check_name(const char *name);
const char *sk_encoding_name(sk_encoding e);   /* "raw", "deflate" */

/* Write one record.  `attrs` may be NULL.  `level` 0 = raw, 1..9 = deflate. */
int sk_write_record(FILE *f, const char *name, const sk_tensor *t, const sk_attrs *attrs, int level);
/* The same from a raw buffer (dtype, shape given). */
int sk_write_record_raw(FILE *f, const char *name, sk_dtype dtype, int ndim, const int64_t *shape,
                        const void *data, const sk_attrs *attrs, int level);

/* ---- atomic output files ----
 * sk_ofile_open("-") is stdout (refused when stdout is a terminal unless
 * force).  A regular-file path is written to an unnamed O_TMPFILE file in
 * its directory, linked into place by sk_ofile_commit (nothing to leave
 * behind, even on SIGKILL); where O_TMPFILE is missing (or SK_NO_TMPFILE is
 * set), to "<dir>/.<base>.XXXXXX", created at the first write and renamed by
 * sk_ofile_commit.  Devices and FIFOs are written directly.  On
 * sk_ofile_abort, or on SIGINT/SIGTERM/SIGHUP (after sk_ofile_install_signals),
 * every uncommitted temporary is removed.  New files get mode 0666 less the
 * umask (the umask is never changed).  Outputs may be opened, written and
 * committed from several threads at once, one thread per sk_ofile. */
typedef struct sk_ofile sk_ofile;
sk_ofile *sk_ofile_open(const char *path, int force_tty);
FILE *sk_ofile_fp(sk_ofile *o);
int sk_ofile_commit(sk_ofile *o);   /* fflush, fsync, check errors, rename; frees o */
void sk_ofile_abort(sk_ofile *o);   /* remove the temporary; frees o */
/* Remove pending temporaries on fatal signals (the handler re-raises).
 * Signals that already have a handler (or are ignored) are left alone: a
 * program with its own SIGINT handler (to checkpoint, say) calls
 * sk_ofile_remove_pending from it when it decides to die. */
void sk_ofile_install_signals(void);
/* Unlink every uncommitted temporary; async-signal-safe. */
void sk_ofile_remove_pending(void);

/* ---- describing records (tns-info; lib/stream/describe.c) ---- */

/* A record's line without its attributes: index, name, dtype, shape (or
 * "scalar"), encoding, decoded bytes (and the bytes stored, when deflated)
 * and crc32=HEX, in aligned columns; no newline. */
void sk_header_print(FILE *f, long index, const sk_header *h);
/* " KEY=VALUE" for each attribute, each value one token (newline, tab,
 * backslash and control bytes escaped as \n, \t, \\ and \xHH). */
void sk_attrs_print(FILE *f, const sk_attrs *a);

/* Value statistics: min, max, mean and standard deviation of the values
 * that are not NaN, and the NaN count.  Start from a zeroed sk_stats. */
typedef struct sk_stats {
	uint64_t n, nan;
	double min, max, shift, sum, sumsq;   /* sums of (value - shift), shift the first value */
} sk_stats;

void sk_stats_add(sk_stats *s, const void *p, size_t n, sk_dtype t);
/* Stream the current payload through buf (cap bytes, a multiple of 4) into
 * s, checking it as sk_reader_read does: bounded memory for any size. */
int sk_stats_read(sk_stats *s, sk_reader *r, const sk_header *h, void *buf, size_t cap);
/* " min=%.6g max=%.6g mean=%.6g std=%.6g nan=N" */
void sk_stats_print(FILE *f, const sk_stats *s);

/* CRC-32 as zlib computes it (helper for tests and importers). */
uint32_t sk_crc32(uint32_t crc, const void *buf, size_t len);
/* 1 when sk_crc32 uses the carry-less multiply (PCLMULQDQ) path; SK_ISA=
 * portable in the environment forces the portable (zlib) path. */
int sk_crc32_accelerated(void);

#endif
