/* sk_data.h: data sets as streams, batching, shuffling and augmentation.
 *
 * A data set stream holds `images` records (u8 or f32, N x C x H x W, or
 * N x D for vectors) each followed by a `labels` record (i32, N), in chunks
 * (default 10,000 examples) so any pipeline runs in bounded memory.  The
 * images record may carry `classes` (comma-separated label names).  Both
 * readers below refuse f32 examples holding a NaN or an infinity.
 */
#ifndef SK_DATA_H
#define SK_DATA_H

#include "sk_stream.h"

#define SK_CHUNK_DEFAULT 10000

/* A whole data set in memory (u8 kept as u8: 1 byte per pixel). */
typedef struct sk_dataset {
	sk_dtype dtype;      /* SK_U8 or SK_F32 */
	int ndim;            /* per-example dims */
	int64_t shape[4];    /* per-example shape */
	int64_t n;           /* examples */
	size_t example_bytes;
	void *images;        /* n * example_bytes */
	int32_t *labels;     /* n, or NULL when unlabelled */
	sk_attrs attrs;      /* from the first images record */
} sk_dataset;

/* Read a whole data set (all chunks) from a path or "-". */
int sk_dataset_read(const char *path, sk_dataset *d);
void sk_dataset_free(sk_dataset *d);
/* Split off the last `frac` (0 < frac < 1) of a seeded permutation into v. */
int sk_dataset_split(sk_dataset *d, double frac, uint64_t seed, sk_dataset *v);
/* Write as chunked records. */
int sk_dataset_write(FILE *f, const sk_dataset *d, int64_t chunk, int level);
/* Copy examples idx[0..n) as f32 (u8 scaled by 1, not normalised) into out. */
void sk_dataset_gather(const sk_dataset *d, const int64_t *idx, int n, float *out, int32_t *labels);

/* Streaming reader over chunks, for inference and tools in bounded memory. */
typedef struct sk_chunks sk_chunks;
sk_chunks *sk_chunks_open(const char *path);
/* Next chunk: 1 got one (images as f32 in *x, n examples, labels or NULL),
 * 0 at end, -1 error.  Buffers are owned by the reader and reused. */
int sk_chunks_next(sk_chunks *c, int64_t *n, const float **x, const int32_t **labels, int64_t *shape4);
void sk_chunks_close(sk_chunks *c);

/* ---- selecting examples (tns-select; lib/stream/select.c) ----
 * Examples are numbered 0, 1, 2, ... across the chunks of a per-example
 * record name; a range keeps [from, to), a split keeps one part of a
 * seeded random split, a pure function of (seed, example number), so it
 * needs no pass over the data and answers the same whatever the chunks. */
typedef struct sk_select {
	int have_range, have_split;
	int64_t from, to;   /* the range; to = -1: to the end */
	double frac;        /* the split: the fraction of examples in the second part */
	uint64_t seed;
	int second;         /* keep the second part (else the first) */
} sk_select;

/* Keep the examples of t (N x ..., numbered from first on) that s keeps,
 * moved to the front in their order; t->shape[0] becomes their count,
 * which is returned. */
int64_t sk_select_tensor(const sk_select *s, sk_tensor *t, int64_t first);

/* ---- augmentation (lib/stream/augment.c) ---- */

/* Random crop with zero padding `pad` (shift by -pad..pad in both axes) and a
 * horizontal flip with probability 1/2 when `flip`, decided by a draw keyed
 * on (seed, epoch, example); x is c*h*w floats, transformed in place using
 * tmp (c*h*w floats). */
void sk_augment(float *x, int c, int h, int w, int pad, int flip, uint64_t seed, int64_t epoch, int64_t example,
                float *tmp);

#endif
