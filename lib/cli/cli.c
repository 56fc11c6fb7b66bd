/* cli.c: option tables, --help and --version, "prog: message" errors and a
 * terminal-only progress display, shared by every program. */
#include "sk_cli.h"
#include "sk_stream.h"
#include "sk_base.h"
#include "sk_cpu.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <png.h>
#include <zlib.h>

/* OpenBLAS is looked up weakly: a program that never calls BLAS needs not
 * load it (start-up time), and --version says so. */
extern char *openblas_get_config(void) __attribute__((weak));

sk_cli *sk_cli_current;

#define LONG_BASE 256
#define OPT_HELP (LONG_BASE + 1000)
#define OPT_VERSION (LONG_BASE + 1001)
#define OPT_QUIET (LONG_BASE + 1002)
#define OPT_LIST (LONG_BASE + 1003)
#define SK_MAXOPTS 128

static const char *prog_name(void) { return sk_cli_current && sk_cli_current->prog ? sk_cli_current->prog : "simkit"; }

void sk_cli_init(sk_cli *c, int argc, char **argv)
{
	(void)argc;
	if (!c->prog && argv && argv[0]) {
		const char *s = strrchr(argv[0], '/');
		c->prog = s ? s + 1 : argv[0];
	}
	sk_cli_current = c;
	if (sk_cpu_env_check() < 0)   /* SK_ISA names no kernel path */
		sk_die_lib();
}

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, ap);
	/* one line, always */
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	fflush(stdout);
	fprintf(stderr, "%s: %s%s\n", prog_name(), kind, buf);
}

/* The message of an error that ends the program, and no half-written
 * output left behind. */
static void vfatal(const char *fmt, va_list ap)
{
	sk_progress_end();
	vmsg("", fmt, ap);
	sk_ofile_remove_pending();
}

void sk_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfatal(fmt, ap);
	va_end(ap);
	exit(1);
}

void sk_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfatal(fmt, ap);
	va_end(ap);
	exit(2);
}

void sk_die_lib(void) { sk_die("%s", sk_errmsg()); }

void sk_exit_stopped(int signo, long long steps, const char *ckpt)
{
	if (signo)
		sk_warn("interrupted by %s; checkpoint written to %s (continue with --resume %s)",
		        signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal", ckpt, ckpt);
	else
		sk_warn("stopped after %lld steps; checkpoint written to %s (continue with --resume %s)", steps, ckpt,
		        ckpt);
	exit(SK_EXIT_STOPPED);
}

void sk_warn(const char *fmt, ...)
{
	va_list ap;
	sk_progress_end();
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void sk_cli_deprecated(const char *old, const char *now)
{
	sk_warn("%s is deprecated and will go away: use %s", old, now);
}

void sk_info(const char *fmt, ...)
{
	if (sk_cli_current && sk_cli_current->quiet)
		return;
	va_list ap;
	sk_progress_end();
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void sk_cli_note(int warning, const char *msg, void *arg)
{
	(void)arg;
	if (warning)
		sk_warn("%s", msg);
	else
		sk_info("%s", msg);
}

/* A program that can be resumed can be stopped: exit status 3. */
static int can_stop(const sk_cli *c)
{
	for (const sk_option *o = c->opts; o && o->longname; o++)
		if (!strcmp(o->longname, "resume"))
			return 1;
	return 0;
}

void sk_cli_help(const sk_cli *c, FILE *f)
{
	fprintf(f, "Usage: %s %s\n", c->prog, c->synopsis ? c->synopsis : "[options]");
	if (c->summary)
		fprintf(f, "%s\n", c->summary);
	fprintf(f, "\nOptions:\n");
	for (const sk_option *o = c->opts; o && o->longname; o++) {
		char left[96];
		if (!o->help)
			continue;   /* hidden: a deprecated spelling */
		if (o->shortname)
			snprintf(left, sizeof left, "-%c, --%s%s%s", o->shortname, o->longname, o->arg ? " " : "",
			         o->arg ? o->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", o->longname, o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "  %-26s %s\n", left, o->help ? o->help : "");
	}
	fprintf(f, "  %-26s %s\n", "-q, --quiet", "no messages on stderr except errors and warnings");
	fprintf(f, "  %-26s %s\n", "-h, --help", "show this help and exit");
	fprintf(f, "  %-26s %s\n", "-V, --version", "show the version and library versions and exit");
	fprintf(f, "\nExit status: 0 success, 1 data or runtime error, 2 usage error%s.\n",
	        can_stop(c) ? ", 3 stopped with a checkpoint written (continue with --resume)" : "");
	fprintf(f, "See %s(1).\n", c->prog);
}

const char *sk_cli_input(int argc, char **argv, int first)
{
	if (argc - first > 1)
		sk_usage("one input expected, got also '%s' (several streams: cat them into a pipe)", argv[first + 1]);
	const char *path = first < argc ? argv[first] : "-";
	if (!strcmp(path, "-") && isatty(STDIN_FILENO))
		sk_usage("no input: name a FILE or pipe a stream in (standard input is a terminal)");
	return path;
}

const char *sk_cli_data(int argc, char **argv, int first)
{
	if (argc - first > 1)
		sk_usage("one data stream expected, got also '%s' (try --help)", argv[first + 1]);
	return first < argc ? argv[first] : "-";
}

const char *sk_cli_optional(int argc, char **argv, const char *name, const char *dflt)
{
	size_t n = strlen(name);
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, n) && argv[i][n + 2] == '=') {
			dflt = argv[i] + n + 3;
			argv[i][n + 2] = 0;   /* "--NAME" */
		}
	return dflt;
}

/* The real table, for tests/t0010-cli-convention.sh. */
static void list_options(const sk_cli *c)
{
	for (const sk_option *o = c->opts; o && o->longname; o++)
		printf("%s%c\t--%s\t%s%s\n", o->shortname ? "-" : "", o->shortname ? o->shortname : '-', o->longname,
		       o->arg ? o->arg : "-", o->help ? "" : "\thidden");
	printf("-q\t--quiet\t-\n-h\t--help\t-\n-V\t--version\t-\n");
}

static void print_version(const sk_cli *c)
{
	printf("%s (simkit) %s\n", c->prog, SK_VERSION_STRING);
	printf("kernels %s (best on this CPU: %s)\n", sk_cpu_path(), sk_cpu_isa_name(sk_cpu_best()));
	printf("zlib %s\n", zlibVersion());
	printf("libpng %s\n", png_get_libpng_ver(NULL));
	if (openblas_get_config) {
		const char *cfg = openblas_get_config();
		printf("%s%s\n", strncmp(cfg, "OpenBLAS", 8) == 0 ? "" : "OpenBLAS ", cfg);
	} else {
		/* not linked into this program: report the library it would use */
		void *h = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_LOCAL);
		char *(*cfg)(void) = h ? (char *(*)(void))dlsym(h, "openblas_get_config") : NULL;
		if (cfg)
			printf("%s (not used by this program)\n", cfg());
		else
			printf("OpenBLAS (not used by this program)\n");
	}
}

int sk_cli_next(sk_cli *c, int argc, char **argv, const char **arg, int *optind_out)
{
	static struct option longopts[SK_MAXOPTS + 5];
	static char shortopts[SK_MAXOPTS * 2 + 8];
	static const sk_cli *built;
	if (built != c) {
		int n = 0;
		char *s = shortopts;
		*s++ = ':';
		for (const sk_option *o = c->opts; o && o->longname && n < SK_MAXOPTS; o++, n++) {
			longopts[n].name = o->longname;
			longopts[n].has_arg = o->arg ? required_argument : no_argument;
			longopts[n].flag = NULL;
			longopts[n].val = o->shortname ? o->shortname : LONG_BASE + n;
			if (o->shortname) {
				*s++ = (char)o->shortname;
				if (o->arg)
					*s++ = ':';
			}
		}
		longopts[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
		longopts[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
		longopts[n++] = (struct option){"quiet", no_argument, NULL, OPT_QUIET};
		longopts[n++] = (struct option){"list-options", no_argument, NULL, OPT_LIST};
		longopts[n] = (struct option){0, 0, 0, 0};
		/* -h, -V, -q unless the program uses them itself */
		const char *extra[] = {"h", "V", "q"};
		for (int i = 0; i < 3; i++)
			if (!strchr(shortopts + 1, extra[i][0]))
				*s++ = extra[i][0];
		*s = 0;
		built = c;
		sk_cli_current = c;
		opterr = 0;
	}
	for (;;) {
		int idx = -1;
		int prev = optind;
		int ch = getopt_long(argc, argv, shortopts, longopts, &idx);
		*arg = optarg;
		if (ch == -1) {
			if (optind_out)
				*optind_out = optind;
			return -1;
		}
		if (ch == ':' || ch == '?') {
			const char *bad = prev < argc ? argv[prev] : "";
			if (optind - 1 >= 0 && optind - 1 < argc && optind > prev)
				bad = argv[optind - 1];
			if (ch == ':') {
				if (optopt && optopt < LONG_BASE && !(bad[0] == '-' && bad[1] == '-'))
					sk_usage("option '-%c' needs an argument (try --help)", optopt);
				sk_usage("option '%s' needs an argument (try --help)", bad);
			}
			if (optopt && optopt < LONG_BASE && !(bad[0] == '-' && bad[1] == '-'))
				sk_usage("unknown option '-%c' (try --help)", optopt);
			sk_usage("unknown or ambiguous option '%s' (try --help)", bad);
		}
		int own = 0;   /* a program's own -h, -V or -q wins */
		for (const sk_option *o = c->opts; o && o->longname; o++)
			if (o->shortname == ch)
				own = 1;
		if (ch == OPT_HELP || (ch == 'h' && !own)) {
			sk_cli_help(c, stdout);
			exit(0);
		}
		if (ch == OPT_LIST) {
			list_options(c);
			exit(0);
		}
		if (ch == OPT_VERSION || (ch == 'V' && !own)) {
			print_version(c);
			exit(0);
		}
		if (ch == OPT_QUIET || (ch == 'q' && !own)) {
			c->quiet = 1;
			continue;
		}
		if (ch >= LONG_BASE && ch < LONG_BASE + SK_MAXOPTS)
			return ch - LONG_BASE;
		int i = 0;
		for (const sk_option *o = c->opts; o && o->longname; o++, i++)
			if (o->shortname == ch)
				return i;
		sk_usage("internal error: option %d not in the table", ch);
	}
}

long sk_arg_long(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno == ERANGE)
		sk_usage("%s: '%s' is not an integer", opt, s);
	if (v < lo || v > hi)
		sk_usage("%s: %ld is outside %ld..%ld", opt, v, lo, hi);
	return v;
}

double sk_arg_double(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno == ERANGE || isnan(v))
		sk_usage("%s: '%s' is not a number", opt, s);
	if (v < lo || v > hi)
		sk_usage("%s: %g is outside %g..%g", opt, v, lo, hi);
	return v;
}

unsigned long long sk_arg_seed(const char *opt, const char *s)
{
	const char *p = s;
	while (*p >= '0' && *p <= '9')
		p++;
	if (!*s || *p)
		sk_usage("%s: '%s' is not a seed (an integer 0..%lld)", opt, s, (long long)INT64_MAX);
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE || v > (unsigned long long)INT64_MAX)
		sk_usage("%s: %s is outside 0..%lld", opt, s, (long long)INT64_MAX);
	return v;
}

int sk_arg_level(const char *s) { return (int)sk_arg_long("--compress", s, 0, 9); }

int sk_arg_choice(const char *opt, const char *s, const char *const *names)
{
	char list[256] = "";
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
	sk_usage("%s '%s' is not one of: %s", opt, s, list);
}

/* ---- progress ------------------------------------------------------------ */

static int progress_shown;
static double progress_last;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sk_progress(const char *label, double done, double total)
{
	static int tty = -1;
	if (sk_cli_current && sk_cli_current->quiet)
		return;
	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty)
		return;
	double t = now_s();
	if (progress_shown && t - progress_last < 0.1 && done < total)
		return;
	progress_last = t;
	double f = total > 0 ? done / total : 0;
	if (f < 0)
		f = 0;
	if (f > 1)
		f = 1;
	char bar[31];
	int w = (int)(f * 30 + 0.5);
	for (int i = 0; i < 30; i++)
		bar[i] = i < w ? '#' : '.';
	bar[30] = 0;
	fprintf(stderr, "\r%s [%s] %5.1f%% (%.0f/%.0f)\033[K", label ? label : "", bar, 100 * f, done, total);
	fflush(stderr);
	progress_shown = 1;
}

void sk_progress_end(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		progress_shown = 0;
	}
}

int sk_ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

char *sk_cmdline(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += 3 + 4 * strlen(argv[i]);
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int plain = *a != 0;
		for (const char *q = a; *q; q++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%", *q))
				plain = 0;
		if (i)
			*p++ = ' ';
		if (plain) {
			p += sprintf(p, "%s", a);
		} else {
			*p++ = '\'';
			for (const char *q = a; *q; q++) {
				if (*q == '\'') {
					memcpy(p, "'\\''", 4);
					p += 4;
				} else {
					*p++ = *q;
				}
			}
			*p++ = '\'';
		}
	}
	*p = 0;
	return s;
}
