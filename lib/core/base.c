/* base.c: errors, checked allocation, dtypes and tensors. */
#include "sk_base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under AddressSanitizer the parts of a block (sk_alloc_parts) stand apart
 * by a poisoned gap, so that running over one is reported as it is between
 * separate allocations. */
#if defined(__SANITIZE_ADDRESS__)
#define SK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_ASAN 1
#endif
#endif
#ifdef SK_ASAN
#include <sanitizer/asan_interface.h>
#define PART_GAP 64
#else
#define PART_GAP 0
#endif

static _Thread_local char errbuf[512];

int sk_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return -1;
}

int sk_error_prefix(const char *fmt, ...)
{
	char pre[256], old[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof old);
	snprintf(errbuf, sizeof errbuf, "%.200s: %.300s", pre, old);
	return -1;
}

const char *sk_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }
void sk_error_clear(void) { errbuf[0] = 0; }

int sk_mul_size(size_t a, size_t b, size_t *out)
{
	if (a && b > SIZE_MAX / a)
		return sk_error("size overflow (%zu x %zu)", a, b);
	*out = a * b;
	return 0;
}

void *sk_alloc(size_t nbytes)
{
	void *p = NULL;
	size_t n = (nbytes + 63) & ~(size_t)63;
	if (n < nbytes) {
		sk_error("allocation of %zu bytes overflows", nbytes);
		return NULL;
	}
	if (n == 0)
		n = 64;
	if (posix_memalign(&p, 64, n) != 0) {
		sk_error("out of memory allocating %zu bytes", nbytes);
		return NULL;
	}
	memset(p, 0, n);
	return p;
}

void *sk_alloc_array(size_t n, size_t elsize)
{
	size_t b;
	if (sk_mul_size(n, elsize, &b) < 0)
		return NULL;
	return sk_alloc(b);
}

void sk_free(void *p) { free(p); }

/* The bytes of one part, rounded up to the block's 64-byte alignment as
 * sk_alloc rounds an allocation. */
static size_t part_bytes(const sk_part *p) { return (p->n * p->size + 63) & ~(size_t)63; }

void *sk_alloc_parts(int nparts, const sk_part *parts)
{
	size_t total = 0, b;
	char *mem;
	for (int i = 0; i < nparts; i++) {
		if (sk_mul_size(parts[i].n, parts[i].size, &b) < 0)
			return NULL;
		if (b > SIZE_MAX / 4 || total > SIZE_MAX / 4) {
			sk_error("allocation of %zu + %zu bytes overflows", total, b);
			return NULL;
		}
		total += part_bytes(&parts[i]) + PART_GAP;
	}
	if (!(mem = sk_alloc(total)))
		return NULL;
	total = 0;
	for (int i = 0; i < nparts; i++) {
		void *q = parts[i].n ? mem + total : NULL;
		memcpy(parts[i].slot, &q, sizeof q);
		total += part_bytes(&parts[i]);
#ifdef SK_ASAN
		ASAN_POISON_MEMORY_REGION(mem + total, PART_GAP);
#endif
		total += PART_GAP;
	}
	return mem;
}

int sk_window(int64_t n, int64_t k, int64_t stride, int64_t pad, const char *kname, const char *sname,
              const char *pname, int *out)
{
	int64_t padded;
	if (n < 1 || n > SK_MAX_WINDOW)
		return sk_error("input extent %lld is out of range 1..%lld", (long long)n, (long long)SK_MAX_WINDOW);
	if (k < 1)
		return sk_error("%s=%lld must be at least 1", kname, (long long)k);
	if (stride < 1)
		return sk_error("%s=%lld must be at least 1", sname, (long long)stride);
	if (pad < 0)
		return sk_error("%s=%lld must not be negative", pname, (long long)pad);
	if (pad > SK_MAX_WINDOW || (padded = n + 2 * pad) > SK_MAX_WINDOW)
		return sk_error("%s=%lld is too large (the padded extent may be at most %lld)", pname, (long long)pad,
		                (long long)SK_MAX_WINDOW);
	if (k > padded)
		return sk_error("%s=%lld does not fit the extent %lld%s%s%s", kname, (long long)k, (long long)padded,
		                pad ? " (padded by " : "", pad ? pname : "", pad ? ")" : "");
	*out = (int)((padded - k) / stride + 1);
	return 0;
}

size_t sk_dtype_size(sk_dtype t)
{
	switch (t) {
	case SK_U8: return 1;
	case SK_I32: return 4;
	case SK_F32: return 4;
	}
	return 0;
}

const char *sk_dtype_name(sk_dtype t)
{
	switch (t) {
	case SK_U8: return "u8";
	case SK_I32: return "i32";
	case SK_F32: return "f32";
	}
	return "?";
}

int sk_dtype_parse(const char *s, sk_dtype *out)
{
	if (!strcmp(s, "u8")) *out = SK_U8;
	else if (!strcmp(s, "i32")) *out = SK_I32;
	else if (!strcmp(s, "f32")) *out = SK_F32;
	else return sk_error("unknown dtype '%s' (expected u8, i32 or f32)", s);
	return 0;
}

int sk_shape_check(sk_dtype t, int ndim, const int64_t *shape, size_t *count, size_t *bytes)
{
	uint64_t n = 1;
	if (ndim < 0 || ndim > SK_MAXDIM)
		return sk_error("%d dimensions (at most %d allowed)", ndim, SK_MAXDIM);
	if (sk_dtype_size(t) == 0)
		return sk_error("invalid dtype");
	for (int d = 0; d < ndim; d++) {
		if (shape[d] < 0)
			return sk_error("negative dimension %lld", (long long)shape[d]);
		if (shape[d] > SK_MAX_EXTENT)
			return sk_error("dimension %lld exceeds the limit %lld",
			                (long long)shape[d], (long long)SK_MAX_EXTENT);
		if (shape[d] && n > SK_MAX_BYTES / (uint64_t)shape[d])
			return sk_error("shape too large (over %llu bytes)", (unsigned long long)SK_MAX_BYTES);
		n *= (uint64_t)shape[d];
	}
	if (n > SK_MAX_BYTES / sk_dtype_size(t))
		return sk_error("tensor too large (over %llu bytes)", (unsigned long long)SK_MAX_BYTES);
	if (count) *count = (size_t)n;
	if (bytes) *bytes = (size_t)(n * sk_dtype_size(t));
	return 0;
}

int sk_tensor_init(sk_tensor *t, sk_dtype dtype, int ndim, const int64_t *shape)
{
	size_t bytes;
	memset(t, 0, sizeof *t);
	if (sk_shape_check(dtype, ndim, shape, NULL, &bytes) < 0)
		return -1;
	t->dtype = dtype;
	t->ndim = ndim;
	for (int d = 0; d < ndim; d++)
		t->shape[d] = shape[d];
	t->data = sk_alloc(bytes);
	return t->data ? 0 : -1;
}

void sk_tensor_free(sk_tensor *t)
{
	if (!t->view)
		sk_free(t->data);
	memset(t, 0, sizeof *t);
}

size_t sk_tensor_count(const sk_tensor *t)
{
	size_t n = 1;
	for (int d = 0; d < t->ndim; d++)
		n *= (size_t)t->shape[d];
	return n;
}

size_t sk_tensor_bytes(const sk_tensor *t) { return sk_tensor_count(t) * sk_dtype_size(t->dtype); }

int64_t sk_tensor_stride(const sk_tensor *t, int d)
{
	int64_t s = 1;
	for (int i = d + 1; i < t->ndim; i++)
		s *= t->shape[i];
	return s;
}

int sk_tensor_slice(const sk_tensor *t, int64_t from, int64_t to, sk_tensor *view)
{
	if (t->ndim < 1 || from < 0 || to < from || to > t->shape[0])
		return sk_error("slice [%lld, %lld) out of range", (long long)from, (long long)to);
	*view = *t;
	view->view = 1;
	view->shape[0] = to - from;
	view->data = (char *)t->data + (size_t)from * (size_t)sk_tensor_stride(t, 0) * sk_dtype_size(t->dtype);
	return 0;
}

char *sk_shape_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int d = 0; d < ndim && o < len; d++)
		o += (size_t)snprintf(buf + o, len - o, d ? "x%lld" : "%lld", (long long)shape[d]);
	if (ndim == 0)
		snprintf(buf, len, "scalar");
	return buf;
}
