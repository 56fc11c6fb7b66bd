/* sk_cli.h: what every program shares: option tables, --help, --version,
 * "program: message" errors, and a progress display on terminals only.
 * For the programs only: this exits, so it is not part of the installed
 * library (lib/libskcli.la is linked into bin/ and the tests).
 *
 * A program declares one table of sk_option, indexed by an enum through
 * designated initializers, and dispatches with a switch on the index
 * sk_cli_next returns; the table feeds both getopt_long and the --help
 * text, so the two cannot drift.  --help, --version, --quiet and the hidden
 * --list-options are added by sk_cli_next.  The convention (one meaning per
 * short letter, -z LEVEL for every stream writer, ...) is in simkit(7).
 * Exit codes: 0 ok, 1 runtime/data error, 2 usage error, 3 stopped with a
 * checkpoint written (programs with --resume).
 */
#ifndef SK_CLI_H
#define SK_CLI_H

#include <stdio.h>

typedef struct sk_option {
	const char *longname;  /* "epochs" */
	int shortname;         /* 'e', or 0 for long only */
	const char *arg;       /* metavar ("N"), or NULL for a flag */
	const char *help;      /* one line; NULL: hidden (a deprecated spelling) */
} sk_option;

/* Options shared by many programs: one letter and one long name each. */
#define SK_OPT_OUTPUT(help) {"output", 'o', "OUT", help}
#define SK_OPT_FORCE {"force", 'f', NULL, "write binary output even to a terminal"}
#define SK_OPT_COMPRESS(help) {"compress", 'z', "LEVEL", help}
#define SK_OPT_SEED(help) {"seed", 's', "S", help}
#define SK_OPT_THREADS(help) {"threads", 'j', "N", help}
#define SK_OPT_EPOCHS(help) {"epochs", 'e', "N", help}
#define SK_OPT_BATCH(help) {"batch", 'b', "N", help}
#define SK_OPT_MODEL(help) {"model", 'm', "MODEL", help}
#define SK_OPT_NAME(help) {"name", 'n', "NAME", help}
/* The training loop's options (snet-train, nsm-pretrain): the schedule is
 * six entries from index `first` on, in this order; each long name is the
 * recipe key the option sets (sk_train.h). */
#define SK_OPTS_SCHEDULE(first) \
	[(first)] = {"schedule", 0, "S", "constant, step, multistep or cosine (default constant)"}, \
	[(first) + 1] = {"step-size", 0, "N", "step: multiply the rate by --gamma every N epochs (default 30)"}, \
	[(first) + 2] = {"gamma", 0, "G", "step, multistep: decay factor (default 0.1)"}, \
	[(first) + 3] = {"milestones", 0, "E1,E2,...", "multistep: epochs at which the rate is multiplied by --gamma"}, \
	[(first) + 4] = {"warmup", 0, "N", "linear warm-up over the first N epochs (default 0)"}, \
	[(first) + 5] = {"min-lr", 0, "LR", "cosine: the rate at the last epoch (default 0)"}
#define SK_OPT_CHECKPOINT {"checkpoint", 0, "FILE", "checkpoint written atomically after every epoch (default OUT.ckpt)"}
#define SK_OPT_CHECKPOINT_EVERY {"checkpoint-every", 0, "N", "also write the checkpoint every N steps"}
#define SK_OPT_STOP_AFTER {"stop-after-steps", 0, "N", "testing: stop as if interrupted after N steps"}

/* Exit status of a run stopped by a signal or --stop-after-steps after
 * writing its checkpoint. */
#define SK_EXIT_STOPPED 3

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
 * the first operand), and handles --help/--version/--list-options (exit 0)
 * and unknown options or missing arguments (usage error, exit 2) itself.
 * --list-options prints the table, one option a line, fields separated by
 * tabs: letter, long name, argument ("-s", "--seed", "S"; "-" for no letter
 * or no argument) and "hidden" for hidden options; the test of the
 * convention (tests/t0010-cli-convention.sh) reads it. */
int sk_cli_next(sk_cli *c, int argc, char **argv, const char **arg, int *optind_out);
void sk_cli_help(const sk_cli *c, FILE *f);
/* The one input stream of a program: the operand argv[first], or "-"
 * (standard input) when there is none.  A second operand, or standard input
 * that is a terminal, is a usage error. */
const char *sk_cli_input(int argc, char **argv, int first);
/* The data stream of a training program: the operand argv[first], or "-"
 * (standard input) when there is none; a second operand is a usage error. */
const char *sk_cli_data(int argc, char **argv, int first);
/* An option with an optional argument, which a table cannot say: call it
 * before sk_cli_init; each "--NAME=VALUE" before "--" becomes "--NAME" in
 * argv (a flag of the table), and the last VALUE is returned (dflt when
 * there is none). */
const char *sk_cli_optional(int argc, char **argv, const char *name, const char *dflt);

/* Errors: print "prog: message" on stderr and exit. */
void sk_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));     /* exit 1 */
void sk_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));   /* exit 2 */
void sk_die_lib(void) __attribute__((noreturn));   /* exit 1 with sk_errmsg() */
void sk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stopped with a checkpoint at ckpt: one warning line ("interrupted by
 * SIGINT; ..." when signo is set, else "stopped after STEPS steps; ...")
 * and exit SK_EXIT_STOPPED. */
void sk_exit_stopped(int signo, long long steps, const char *ckpt) __attribute__((noreturn));
/* A hidden option kept for old command lines: warn that it is deprecated. */
void sk_cli_deprecated(const char *old, const char *now);
void sk_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* stderr unless --quiet */
/* A library's message for the program (sk_run_note_fn, sk_train.h): a
 * warning when `warning` is set, else information (sk_info). */
void sk_cli_note(int warning, const char *msg, void *arg);

/* Checked argument parsing: usage error naming the option on failure. */
long sk_arg_long(const char *opt, const char *s, long lo, long hi);
double sk_arg_double(const char *opt, const char *s, double lo, double hi);
/* A seed: a decimal integer 0..2^63-1 (every --seed and --split-seed). */
unsigned long long sk_arg_seed(const char *opt, const char *s);
/* -z/--compress LEVEL: 0 (raw) .. 9. */
int sk_arg_level(const char *s);
/* One of the NULL-terminated names: its index; else the usage error
 * "OPT 'S' is not one of: A, B, C". */
int sk_arg_choice(const char *opt, const char *s, const char *const *names);
/* A training option into a recipe (sk_recipe_set, sk_train.h), checked now:
 * a usage error "--KEY: why" when the value is bad. */
struct sk_recipe;
void sk_arg_recipe(struct sk_recipe *r, const char *key, const char *val);
/* The command line a training program records (sk_train_argv: without
 * --resume and --stop-after-steps) as one string (sk_cmdline, free it). */
char *sk_cmdline_train(int argc, char **argv);

/* Progress: a one-line bar on stderr, only when stderr is a terminal and not
 * --quiet; cheap to call every step (redraws at most 10 times a second). */
void sk_progress(const char *label, double done, double total);
void sk_progress_end(void);

/* Number of cores online (for --threads defaults). */
int sk_ncores(void);
/* The full command line as one string (for model attributes). */
char *sk_cmdline(int argc, char **argv);

#endif
