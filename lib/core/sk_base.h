/* sk_base.h: errors, dtypes, tensors and shapes; the ground every module stands on.
 *
 * The library never prints and never exits.  A function that fails returns a
 * negative status (or NULL) after recording a one-line message with
 * sk_error(); the program fetches it with sk_errmsg() and prints
 * "program: message".  The message is thread-local.
 */
#ifndef SK_BASE_H
#define SK_BASE_H

#include <stddef.h>
#include <stdint.h>

#define SK_VERSION_STRING "0.1.0"

const char *sk_version(void);

/* ---- errors -------------------------------------------------------------- */

/* Record a printf-style message; always returns -1 so callers can write
 * `return sk_error("bad shape %d", n);`.  Lower-case start, no final stop. */
int sk_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message: "ctx: old message" (keeps errors specific). */
int sk_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sk_errmsg(void);
void sk_error_clear(void);

/* ---- memory -------------------------------------------------------------- */

/* Overflow-checked helpers: return 0 and set *out, or -1 with an error. */
int sk_mul_size(size_t a, size_t b, size_t *out);
/* 64-byte aligned, zeroed allocation; NULL with an error message on failure. */
void *sk_alloc(size_t nbytes);
void *sk_alloc_array(size_t n, size_t elsize);
void sk_free(void *p);

/* Arrays that live and die together (a plan's or a worker's buffers) in
 * one block: part i is n elements of `size` bytes, zeroed and 64-byte
 * aligned like sk_alloc's, its address stored into the pointer `slot`
 * points to (NULL when n is 0).  Returns the block, which one sk_free
 * releases with every part, or NULL with an error, the slots untouched.
 * SK_PART(p->buf, count) names a part by its pointer. */
typedef struct sk_part {
	void *slot;     /* the address of a pointer to the element type */
	size_t n, size;
} sk_part;
#define SK_PART(ptr, count) {&(ptr), (count), sizeof *(ptr)}
void *sk_alloc_parts(int nparts, const sk_part *parts);

/* ---- window geometry (convolution, pooling, patches) --------------------- */

/* The largest padded extent a window slides over, and the largest number of
 * values a window or a padded input may hold: kernel index arithmetic stays
 * in int. */
#define SK_MAX_WINDOW ((int64_t)1 << 24)
#define SK_MAX_WINDOW_VALUES ((int64_t)1 << 30)

/* One axis of a sliding window: k taps moved by `stride` over n inputs
 * padded by `pad` on both sides fit (n + 2 pad - k) / stride + 1 times,
 * computed in 64 bits into *out.  -1 with a message naming the option
 * (kname, sname, pname: the spec's words, e.g. "k", "stride", "pad") unless
 * 1 <= n, 1 <= k, 1 <= stride, 0 <= pad, n + 2 pad <= SK_MAX_WINDOW and
 * k <= n + 2 pad.  Every layer's window geometry goes through here. */
int sk_window(int64_t n, int64_t k, int64_t stride, int64_t pad, const char *kname, const char *sname,
              const char *pname, int *out);

/* ---- dtypes -------------------------------------------------------------- */

typedef enum sk_dtype { SK_U8 = 0, SK_I32 = 1, SK_F32 = 2 } sk_dtype;

size_t sk_dtype_size(sk_dtype t);
const char *sk_dtype_name(sk_dtype t);             /* "u8", "i32", "f32" */
int sk_dtype_parse(const char *s, sk_dtype *out);  /* -1 on unknown */

/* ---- shapes and tensors ------------------------------------------------- */

#define SK_MAXDIM 8
/* Hard caps checked before any allocation (also by the stream reader). */
#define SK_MAX_EXTENT ((int64_t)1 << 31)      /* one dimension */
#define SK_MAX_BYTES ((uint64_t)1 << 36)      /* one tensor: 64 GiB */

/* A dense, row-major (C order), little-endian tensor.  Strides are implied by
 * the shape: stride[d] = prod(shape[d+1..]) elements. */
typedef struct sk_tensor {
	sk_dtype dtype;
	int ndim;
	int64_t shape[SK_MAXDIM];
	void *data;    /* owned unless `view` is set */
	int view;
} sk_tensor;

/* Validate a shape: 0 <= ndim <= SK_MAXDIM, every extent in [0, SK_MAX_EXTENT],
 * element count and byte size without overflow and under SK_MAX_BYTES.
 * Sets *count and *bytes when non-NULL. */
int sk_shape_check(sk_dtype t, int ndim, const int64_t *shape, size_t *count, size_t *bytes);

int sk_tensor_init(sk_tensor *t, sk_dtype dtype, int ndim, const int64_t *shape); /* allocates */
void sk_tensor_free(sk_tensor *t);          /* frees data unless a view; zeroes t */
size_t sk_tensor_count(const sk_tensor *t); /* number of elements */
size_t sk_tensor_bytes(const sk_tensor *t);
int64_t sk_tensor_stride(const sk_tensor *t, int d); /* in elements */
/* A view of examples [from, to) along dimension 0; shares data. */
int sk_tensor_slice(const sk_tensor *t, int64_t from, int64_t to, sk_tensor *view);
/* "2x1x28x28" style text into buf. */
char *sk_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

#endif
