/* sk_import.h: foreign formats in and out: idx (MNIST), CIFAR binary
 * batches, PNG, NumPy .npy.
 *
 * Importing streams: sk_import_open reads every input's header (and checks
 * that the inputs agree) and sk_import_next hands out records one at a time:
 * for a data set, an `images` chunk then its `labels` chunk, and so on, so
 * idx, CIFAR and npy inputs of any size import in bounded memory (at most
 * one chunk).  Files may be raw or gzip-compressed (zlib reads both).
 *
 * The parsers below also work on memory (sk_src_mem), which the unit tests
 * and the fuzz target use.  Like the rest of the library, nothing here prints
 * or exits; errors name the file, the field and the limit.
 */
#ifndef SK_IMPORT_H
#define SK_IMPORT_H

#include <stdio.h>
#include "sk_base.h"
#include "sk_stream.h"

/* ---- byte sources: a file (raw or gzip, "-" = stdin) or memory ---- */

typedef struct sk_src {
	void *gz;                  /* gzFile, or NULL for memory */
	const unsigned char *mem;  /* memory source */
	size_t memlen, mempos;
	unsigned char *look;       /* look-ahead (peeked, not yet consumed) */
	size_t looklen, lookpos, lookcap;
	uint64_t pos;              /* bytes consumed so far */
	uint64_t rawsize;          /* size of an uncompressed regular file, else 0 */
	int eof;
	char name[512];            /* for messages */
} sk_src;

int sk_src_open(sk_src *s, const char *path);
void sk_src_mem(sk_src *s, const void *buf, size_t n, const char *name);
void sk_src_close(sk_src *s);
/* Read up to n bytes: returns how many (short only at end), -1 on error. */
long long sk_src_read(sk_src *s, void *buf, size_t n);
/* Read exactly n bytes; a short read is an error naming `what`. */
int sk_src_need(sk_src *s, void *buf, size_t n, const char *what);
/* Look at the next n bytes without consuming them: *p points at them and
 * the return is how many are available (fewer at end), -1 on error. */
long long sk_src_peek(sk_src *s, size_t n, const unsigned char **p);
/* 1 when no byte is left, 0 if one is, -1 on error. */
int sk_src_at_end(sk_src *s);

/* ---- formats ---- */

typedef enum sk_format {
	SK_FMT_AUTO = 0, SK_FMT_IDX, SK_FMT_CIFAR10, SK_FMT_CIFAR100, SK_FMT_PNG, SK_FMT_NPY
} sk_format;

const char *sk_format_name(sk_format f);
int sk_format_parse(const char *s, sk_format *f);
/* Detect from the first bytes (after gzip) of an input; `at_end` says the
 * buffer holds the whole input.  CIFAR has no magic: it is recognised by its
 * label bytes at every record start.  -1 with a message when unknown. */
int sk_format_detect(const unsigned char *buf, size_t n, int at_end, sk_format *f);

/* ---- single-array parsers (whole input in memory; tests, fuzzing) ---- */

/* An idx file as a tensor in its own shape: u8 stays u8, i8/i16/i32 become
 * i32, f32 and f64 become f32. */
int sk_idx_read(sk_src *s, sk_tensor *out);
/* A .npy array: u1 -> u8, i4 -> i32, f4 -> f32, f8 -> f32, i8 -> i32 (when
 * every value fits), either byte order; Fortran order is transposed. */
int sk_npy_read(sk_src *s, sk_tensor *out);
/* One PNG as u8 C x H x W, C = 1 (gray) or 3 (RGB); alpha dropped, palette
 * expanded, 16-bit reduced to 8.  channels 0 = as stored, 1 or 3 = forced
 * (RGB to gray is refused; gray to RGB replicates). */
int sk_png_read(sk_src *s, int channels, sk_tensor *out);
/* The header only: channels once alpha is dropped (1 or 3; a palette whose
 * colours are all gray counts as 1), height and width. */
int sk_png_info(sk_src *s, int *channels, int *height, int *width);
/* A whole CIFAR batch (kind 10 or 100) as images N x 3 x 32 x 32 u8 and
 * labels N i32 (CIFAR-100: the fine label). */
int sk_cifar_read(sk_src *s, int kind, sk_tensor *images, sk_tensor *labels);

/* ---- importing ---- */

enum { SK_FIT_NONE = 0, SK_FIT_CROP, SK_FIT_PAD };

typedef struct sk_import_opts {
	sk_format format;     /* SK_FMT_AUTO: detect each input */
	int64_t chunk;        /* examples per record; 0 = SK_CHUNK_DEFAULT (at most SK_IMPORT_CHUNK_BYTES) */
	int height, width;    /* PNG target size (0 = all images must agree) */
	int fit;              /* SK_FIT_CROP or SK_FIT_PAD (centred) with a size */
	const char *name;     /* one npy input as a single record of this name */
	const char *classes;  /* override the class names */
} sk_import_opts;

#define SK_IMPORT_MAX_EXAMPLE ((size_t)64 << 20)   /* bytes per example */
#define SK_IMPORT_MAX_CHUNK ((size_t)256 << 20)    /* bytes per images record */
/* The default chunk: SK_CHUNK_DEFAULT examples, fewer when they would take
 * more than this many bytes (an explicit chunk size is kept). */
#define SK_IMPORT_CHUNK_BYTES ((size_t)8 << 20)

typedef struct sk_import sk_import;

sk_import *sk_import_open(const char *const *paths, int npaths, const sk_import_opts *o);
/* The next record: 1 = got one (`name` and `t`, a view valid until the next
 * call), 0 = done, -1 = error. */
int sk_import_next(sk_import *im, const char **name, sk_tensor *t);
/* Attributes for `images` records: class names (comma-separated, or NULL)
 * and the input files' base names. */
const char *sk_import_classes(const sk_import *im);
const char *sk_import_source(const sk_import *im);
sk_format sk_import_format(const sk_import *im);
int64_t sk_import_count(const sk_import *im);   /* examples handed out so far */
void sk_import_close(sk_import *im);

/* ---- exporting ---- */

/* Write a .npy (version 1.0, header laid out as numpy's np.save does). */
int sk_npy_write_header(FILE *f, sk_dtype t, int ndim, const int64_t *shape);
int sk_npy_write(FILE *f, const sk_tensor *t);
/* Write an 8-bit PNG, gray (c = 1) or RGB (c = 3), from planar C x H x W. */
int sk_png_write(FILE *f, int c, int h, int w, const uint8_t *planar);

/* Records of one name joined along their first axis, so that a data set
 * stored in chunks exports as one array.  Start from a zeroed sk_joined;
 * sk_joined_add appends the current record of r (its header h): the first
 * gives the name, dtype and shape, the next must agree but for the first
 * extent.  The data grow as they arrive, never by what a header claims. */
typedef struct sk_joined {
	char name[SK_NAME_MAX];   /* "" until the first record */
	sk_tensor t;              /* shape[0] is the sum over the records */
	size_t bytes, cap;        /* payload bytes so far, and allocated */
} sk_joined;

int sk_joined_add(sk_joined *j, sk_reader *r, const sk_header *h);
void sk_joined_free(sk_joined *j);

/* A PNG montage of a joined array's examples: a grid of tiles with a
 * one-pixel white gap, one tile per example (gray or RGB) or, for other
 * channel counts, one gray tile per channel. */
typedef struct sk_montage {
	int cols, rows;     /* tiles per row and rows (0: square, at most 64 tiles) */
	int64_t index;      /* only this example (-1: from the first) */
	int scale;          /* 1: each tile to its own min..max; 0: values as 0..255; -1: 0 for u8, else 1 */
	int zoom;           /* enlarge each pixel this many times (0: tiles below 16 pixels are enlarged) */
	int64_t tile[3];    /* read each example as C x H x W (tile[0] 0: the shape says: HxW, NxHxW, NxCxHxW) */
} sk_montage;

int sk_montage_write(FILE *f, const sk_joined *j, const sk_montage *o);
/* Tab-separated text, one line per example: the values of c[0], then of
 * c[1], ... (all of one length); header: a first line of column names,
 * NAME or NAME[i]. */
int sk_tsv_write(FILE *f, const sk_joined *const *c, int n, int header);

#endif
