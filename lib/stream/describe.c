/* describe.c: what tns-info says of a record: its line (name, dtype, shape,
 * encoding, bytes, CRC, attributes) and value statistics of its payload,
 * streamed through a fixed buffer (see sk_stream.h). */
#include "sk_stream.h"

#include <math.h>

/* One value into the running min, max and shifted sums (the shift, the
 * first value, keeps the variance accurate). */
static inline void stats_one(sk_stats *s, double v, double *sum, double *sq)
{
	if (s->n == 0)
		s->min = s->max = s->shift = v;
	s->n++;
	if (v < s->min)
		s->min = v;
	if (v > s->max)
		s->max = v;
	double d = v - s->shift;
	*sum += d;
	*sq += d * d;
}

void sk_stats_add(sk_stats *s, const void *p, size_t n, sk_dtype t)
{
	double sum = 0, sq = 0;
	if (t == SK_F32) {
		const float *x = p;
		for (size_t i = 0; i < n; i++) {
			double v = x[i];
			if (isnan(v)) {
				s->nan++;
				continue;
			}
			stats_one(s, v, &sum, &sq);
		}
	} else {
		for (size_t i = 0; i < n; i++)
			stats_one(s, t == SK_U8 ? ((const uint8_t *)p)[i] : ((const int32_t *)p)[i], &sum, &sq);
	}
	s->sum += sum;
	s->sumsq += sq;
}

int sk_stats_read(sk_stats *s, sk_reader *r, const sk_header *h, void *buf, size_t cap)
{
	long n;
	while ((n = sk_reader_read(r, h, buf, cap)) > 0)
		sk_stats_add(s, buf, (size_t)n / sk_dtype_size(h->dtype), h->dtype);
	return n < 0 ? -1 : 0;
}

void sk_stats_print(FILE *f, const sk_stats *s)
{
	double mean = 0, sd = 0;
	if (s->n) {
		double m = s->sum / (double)s->n;
		mean = s->shift + m;
		double var = s->sumsq / (double)s->n - m * m;
		sd = var > 0 ? sqrt(var) : 0;
	}
	fprintf(f, " min=%.6g max=%.6g mean=%.6g std=%.6g nan=%llu", s->min, s->max, mean, sd,
	        (unsigned long long)s->nan);
}

void sk_header_print(FILE *f, long index, const sk_header *h)
{
	char shape[160];
	if (h->ndim == 0)
		snprintf(shape, sizeof shape, "scalar");
	else
		sk_shape_str(h->ndim, h->shape, shape, sizeof shape);
	fprintf(f, "%-3ld %-16s %-3s %-16s %-7s %11llu", index, h->name, sk_dtype_name(h->dtype), shape,
	        sk_encoding_name(h->encoding), (unsigned long long)h->rawbytes);
	if (h->encoding == SK_DEFLATE)
		fprintf(f, " (%llu stored)", (unsigned long long)h->length);
	fprintf(f, " crc32=%08lx", (unsigned long)h->crc);
}

void sk_attrs_print(FILE *f, const sk_attrs *a)
{
	for (int i = 0; i < a->n; i++) {
		fprintf(f, " %s=", a->key[i]);
		/* the value as one token: escape what would break the line */
		for (const char *v = a->val[i]; *v; v++) {
			if (*v == '\n')
				fputs("\\n", f);
			else if (*v == '\t')
				fputs("\\t", f);
			else if (*v == '\\')
				fputs("\\\\", f);
			else if ((unsigned char)*v < 0x20)
				fprintf(f, "\\x%02x", (unsigned char)*v);
			else
				putc(*v, f);
		}
	}
}
