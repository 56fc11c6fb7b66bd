/* tns-info: list the records of a tensor stream, one line each, like ls -l;
 * --check verifies every payload, --stats adds value statistics.  Memory is
 * bounded: payloads are skipped, or streamed through one fixed buffer. */
#include "sk_cli.h"
#include "sk_model.h"
#include "sk_stream.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_CHECK, OPT_STATS, OPT_N };

static const sk_option options[] = {
	[OPT_CHECK] = {"check", 'c', NULL, "verify every payload (CRC, length, encoding); exit 1 at the first bad record"},
	[OPT_STATS] = {"stats", 0, NULL, "add min, max, mean, std and NaN count of each record (implies --check)"},
	[OPT_N] = {0, 0, 0, 0},
};

#define BUFSZ (1 << 20)
#define SPEC_MAX (1 << 20)

/* A `model` record's payload is its spec text: build the model to print its
 * totals (parameters, forward FLOPs per example).  The model engine lives
 * in libsimkit.so and pulls in OpenBLAS, whose loading would triple this
 * program's start-up time; so it is loaded on demand, at the first model
 * record only: from $SK_LIBSIMKIT, else next to this program (../lib, or
 * ../lib/.libs in the build tree), else from the library path.  Without it
 * (a static-only build) the totals are left out. */
typedef struct model_api {
	int tried;
	sk_model *(*declare)(const char *, const char *);   /* shapes only: nothing large is allocated */
	size_t (*params)(sk_model *);
	double (*flops)(sk_model *);
	void (*release)(sk_model *);
	const char *(*errmsg)(void);
} model_api;

static void *open_libsimkit(void)
{
	const char *env = getenv("SK_LIBSIMKIT");
	if (env && *env)
		return dlopen(env, RTLD_NOW | RTLD_LOCAL);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 64);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			static const char *rel[] = {"/../lib/libsimkit.so.0", "/../lib/.libs/libsimkit.so.0"};
			for (int i = 0; i < 2; i++) {
				snprintf(slash, sizeof exe - (size_t)(slash - exe), "%s", rel[i]);
				void *h = dlopen(exe, RTLD_NOW | RTLD_LOCAL);
				if (h)
					return h;
			}
		}
	}
	return dlopen("libsimkit.so.0", RTLD_NOW | RTLD_LOCAL);
}

static int model_api_load(model_api *m)
{
	if (m->tried)
		return m->declare ? 0 : -1;
	m->tried = 1;
	void *h = open_libsimkit();
	if (!h)
		return -1;
	*(void **)&m->declare = dlsym(h, "sk_model_declare");
	*(void **)&m->params = dlsym(h, "sk_model_param_count");
	*(void **)&m->flops = dlsym(h, "sk_model_flops");
	*(void **)&m->release = dlsym(h, "sk_model_free");
	*(void **)&m->errmsg = dlsym(h, "sk_errmsg");
	if (!m->declare || !m->params || !m->flops || !m->release || !m->errmsg) {
		m->declare = NULL;
		return -1;
	}
	return 0;
}

/* 1 = totals in *params, *flops; 0 = no model engine available; -1 = the
 * spec does not build (message in *why).  The payload is consumed. */
static int model_totals(model_api *api, sk_reader *r, const sk_header *h, size_t *params, double *flops,
                        const char **why)
{
	char *text = malloc((size_t)h->rawbytes + 1);
	if (!text)
		sk_die("out of memory");
	if (sk_reader_payload_into(r, h, text) < 0) {
		free(text);
		sk_die_lib();
	}
	text[h->rawbytes] = 0;
	if (model_api_load(api) < 0) {
		free(text);
		return 0;
	}
	sk_model *m = api->declare(text, h->name);
	free(text);
	if (!m) {
		*why = api->errmsg();
		return -1;
	}
	*params = api->params(m);
	*flops = api->flops(m);
	api->release(m);
	return 1;
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
		switch (opt) {
		case OPT_CHECK: check = 1; break;
		case OPT_STATS: stats_on = check = 1; break;
		}
	}
	const char *path = sk_cli_input(argc, argv, first);
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
	model_api api = {0};
	uint64_t total = 0;
	while ((s = sk_reader_next(r, &h)) > 0) {
		sk_stats st = {0};
		int is_model = strcmp(h.name, "model") == 0 && h.dtype == SK_U8 && h.ndim == 1 && h.rawbytes <= SPEC_MAX;
		size_t params = 0;
		double flops = 0;
		int have_totals = 0;
		if (is_model) {
			const char *why = NULL;
			int t = model_totals(&api, r, &h, &params, &flops, &why);
			have_totals = t == 1;
			if (t < 0)
				sk_warn("%s: record %ld: model spec does not build: %s", sk_reader_name(r),
				        sk_reader_index(r), why);
		}
		if (is_model) {
			/* payload consumed (and verified) above */
		} else if (stats_on) {
			if (sk_stats_read(&st, r, &h, buf, BUFSZ) < 0)
				sk_die_lib();
		} else if (check) {
			if (sk_reader_verify(r, &h) < 0)
				sk_die_lib();
		} else if (sk_reader_skip(r, &h) < 0) {
			sk_die_lib();
		}
		sk_header_print(stdout, sk_reader_index(r), &h);
		if (stats_on && !is_model)
			sk_stats_print(stdout, &st);
		if (have_totals)
			printf(" params=%zu mflops=%.3f", params, flops / 1e6);
		sk_attrs_print(stdout, &h.attrs);
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
