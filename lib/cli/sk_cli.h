/* sk_cli.h: what every program shares: option tables, --help, --version,
 * "program: message" errors, and a progress display on terminals only.
 *
 * A program declares one table of sk_option; it feeds both getopt_long and
 * the --help text, so the two cannot drift.  --help, --version and --quiet
 * are added by sk_cli_parse.  Exit codes: 0 ok, 1 runtime/data error,
 * 2 usage error.
 */
#ifndef SK_CLI_H
#define SK_CLI_H

#include <stdio.h>

typedef struct sk_option {
	const char *longname;  /* "epochs" */
	int shortname;         /* 'e', or 0 for long only */
	const char *arg;       /* metavar ("N"), or NULL for a flag */
	const char *help;      /* one line */
} sk_option;

typedef struct sk_cli {
	const char *prog;        /* program name for messages */
	const char *synopsis;    /* "[options] [FILE|-]" */
	const char *summary;     /* one line: what the program does */
	const sk_option *opts;   /* terminated by {0} */
	int quiet;
} sk_cli;

extern sk_cli *sk_cli_current;   /* set by sk_cli_init, used by sk_die/sk_warn */

/* Remember the program; install nothing else. */
void sk_cli_init(sk_cli *c, int argc, char **argv);
/* Parse the next option like getopt_long: returns the index in opts of the
 * option found (its argument in *arg), -1 at the end (then *optind_out is
 * the first operand), and handles --help/--version (exit 0) and unknown
 * options or missing arguments (usage error, exit 2) itself. */
int sk_cli_next(sk_cli *c, int argc, char **argv, const char **arg, int *optind_out);
void sk_cli_help(const sk_cli *c, FILE *f);

/* Errors: print "prog: message" on stderr and exit. */
void sk_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));     /* exit 1 */
void sk_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));   /* exit 2 */
void sk_die_lib(void) __attribute__((noreturn));   /* exit 1 with sk_errmsg() */
void sk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sk_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* stderr unless --quiet */

/* Checked argument parsing: usage error naming the option on failure. */
long sk_arg_long(const char *opt, const char *s, long lo, long hi);
double sk_arg_double(const char *opt, const char *s, double lo, double hi);

/* Progress: a one-line bar on stderr, only when stderr is a terminal and not
 * --quiet; cheap to call every step (redraws at most 10 times a second). */
void sk_progress(const char *label, double done, double total);
void sk_progress_end(void);

/* Number of cores online (for --threads defaults). */
int sk_ncores(void);
/* The full command line as one string (for model attributes). */
char *sk_cmdline(int argc, char **argv);

#endif
