/* tns-info: list the records of a tensor stream, one line each, like ls -l;
 * --check verifies every payload, --stats adds value statistics.  Memory is
 * bounded: payloads are skipped, or streamed through one fixed buffer. */
#include "sk_cli.h"
#include "sk_model.h"
#include "sk_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const sk_option options[] = {
	{"check", 'c', NULL, "verify every payload (CRC, length, encoding); exit 1 at the first bad record"},
	{"stats", 's', NULL, "add min, max, mean, std and NaN count of each record (implies --check)"},
	{0, 0, 0, 0},
};

enum { OPT_CHECK, OPT_STATS };

typedef struct stats {
	uint64_t n, nan;
	double min, max, shift, sum, sumsq;
} stats;

static void stats_add_f32(stats *s, const float *x, size_t n)
{
	double sum = 0, sq = 0;
	for (size_t i = 0; i < n; i++) {
		double v = x[i];
		if (isnan(v)) {
			s->nan++;
			continue;
		}
		if (s->n == 0)
			s->min = s->max = s->shift = v;
		s->n++;
		if (v < s->min)
			s->min = v;
		if (v > s->max)
			s->max = v;
		double d = v - s->shift;
		sum += d;
		sq += d * d;
	}
	s->sum += sum;
	s->sumsq += sq;
}

static void stats_add_int(stats *s, const void *p, size_t n, sk_dtype t)
{
	double sum = 0, sq = 0;
	for (size_t i = 0; i < n; i++) {
		double v = t == SK_U8 ? ((const uint8_t *)p)[i] : ((const int32_t *)p)[i];
		if (s->n == 0)
			s->min = s->max = s->shift = v;
		s->n++;
		if (v < s->min)
			s->min = v;
		if (v > s->max)
			s->max = v;
		double d = v - s->shift;
		sum += d;
		sq += d * d;
	}
	s->sum += sum;
	s->sumsq += sq;
}

static void print_value(const char *v)
{
	/* attribute values as one token: escape what would break the line */
	for (; *v; v++) {
		if (*v == '\n')
			fputs("\\n", stdout);
		else if (*v == '\t')
			fputs("\\t", stdout);
		else if (*v == '\\')
			fputs("\\\\", stdout);
		else if ((unsigned char)*v < 0x20)
			printf("\\x%02x", (unsigned char)*v);
		else
			putchar(*v);
	}
}

#define BUFSZ (1 << 20)
#define SPEC_MAX (1 << 20)

/* A `model` record's payload is its spec text: build the model to print its
 * totals (parameters, forward FLOPs per example).  Returns 0 and fills
 * *params, *flops; -1 with a message if the spec does not build. */
static int model_totals(sk_reader *r, const sk_header *h, size_t *params, double *flops)
{
	char *text = malloc((size_t)h->rawbytes + 1);
	if (!text)
		return sk_error("out of memory");
	if (sk_reader_payload_into(r, h, text) < 0) {
		free(text);
		sk_die_lib();
	}
	text[h->rawbytes] = 0;
	sk_model *m = sk_model_from_text(text, h->name);
	free(text);
	if (!m)
		return -1;
	*params = sk_model_param_count(m);
	*flops = sk_model_flops(m);
	sk_model_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	sk_cli cli = {
		.prog = "tns-info",
		.synopsis = "[--check] [--stats] [FILE|-]",
		.summary = "List the records of a tensor stream (name, dtype, shape, encoding, bytes, attributes).",
		.opts = options,
	};
	sk_cli_init(&cli, argc, argv);
	int check = 0, stats_on = 0, opt, first;
	const char *arg;
	while ((opt = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		if (opt == OPT_CHECK)
			check = 1;
		else if (opt == OPT_STATS)
			stats_on = check = 1;
	}
	if (argc - first > 1)
		sk_usage("more than one input (use cat a.tns b.tns | tns-info)");
	const char *path = first < argc ? argv[first] : "-";

	if (strcmp(path, "-") == 0 && isatty(STDIN_FILENO))
		sk_usage("no input: name a FILE or pipe a stream in (standard input is a terminal)");
	sk_reader *r = sk_reader_open(path);
	if (!r)
		sk_die_lib();
	void *buf = NULL;
	if (check) {
		buf = malloc(BUFSZ);
		if (!buf)
			sk_die("out of memory");
	}
	sk_header h;
	int s;
	long count = 0;
	uint64_t total = 0;
	while ((s = sk_reader_next(r, &h)) > 0) {
		stats st = {0};
		int is_model = strcmp(h.name, "model") == 0 && h.dtype == SK_U8 && h.ndim == 1 && h.rawbytes <= SPEC_MAX;
		size_t params = 0;
		double flops = 0;
		int have_totals = 0;
		if (is_model) {
			have_totals = model_totals(r, &h, &params, &flops) == 0;
			if (!have_totals)
				sk_warn("%s: record %ld: model spec does not build: %s", sk_reader_name(r),
				        sk_reader_index(r), sk_errmsg());
		}
		if (is_model) {
			/* payload consumed (and verified) above */
		} else if (stats_on) {
			long n;
			while ((n = sk_reader_read(r, &h, buf, BUFSZ)) > 0) {
				size_t cnt = (size_t)n / sk_dtype_size(h.dtype);
				if (h.dtype == SK_F32)
					stats_add_f32(&st, buf, cnt);
				else
					stats_add_int(&st, buf, cnt, h.dtype);
			}
			if (n < 0)
				sk_die_lib();
		} else if (check) {
			if (sk_reader_verify(r, &h) < 0)
				sk_die_lib();
		} else if (sk_reader_skip(r, &h) < 0) {
			sk_die_lib();
		}
		char shape[160];
		if (h.ndim == 0)
			snprintf(shape, sizeof shape, "scalar");
		else
			sk_shape_str(h.ndim, h.shape, shape, sizeof shape);
		printf("%-3ld %-16s %-3s %-16s %-7s %11llu", sk_reader_index(r), h.name, sk_dtype_name(h.dtype), shape,
		       sk_encoding_name(h.encoding), (unsigned long long)h.rawbytes);
		if (h.encoding == SK_DEFLATE)
			printf(" (%llu stored)", (unsigned long long)h.length);
		printf(" crc32=%08lx", (unsigned long)h.crc);
		if (stats_on && !is_model) {
			double mean = 0, sd = 0;
			if (st.n) {
				double m = st.sum / (double)st.n;
				mean = st.shift + m;
				double var = st.sumsq / (double)st.n - m * m;
				sd = var > 0 ? sqrt(var) : 0;
			}
			printf(" min=%.6g max=%.6g mean=%.6g std=%.6g nan=%llu", st.min, st.max, mean, sd,
			       (unsigned long long)st.nan);
		}
		if (have_totals)
			printf(" params=%zu mflops=%.3f", params, flops / 1e6);
		for (int i = 0; i < h.attrs.n; i++) {
			printf(" %s=", h.attrs.key[i]);
			print_value(h.attrs.val[i]);
		}
		putchar('\n');
		count++;
		total += h.rawbytes;
	}
	if (s < 0)
		sk_die_lib();
	if (count == 0)
		sk_die("%s: empty stream (no records)", sk_reader_name(r));
	if (fflush(stdout) != 0 || ferror(stdout))
		sk_die("write error on standard output");
	if (check)
		sk_info("%s: %ld records, %llu bytes of data, all checks passed", sk_reader_name(r), count,
		        (unsigned long long)total);
	sk_reader_close(r);
	free(buf);
	return 0;
}
