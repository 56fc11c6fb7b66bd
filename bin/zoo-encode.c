/* zoo-encode: model zoos and set-based neural network encoding, git-style:
 *   zoo-encode run      train one zoo run: hyperparameters drawn from a seed,
 *                       one model (zoo member) per checkpoint epoch
 *   zoo-encode train    fit an encoder (sne, statnn, mlp) on a zoo
 *   zoo-encode encode   one fixed-length code per model, as a stream
 *   zoo-encode predict  predicted property per model, as a stream
 * One file per command (bin/zoo-encode-cmd/run.c, train.c, apply.c), each parsing
 * its own table of options and calling lib/ (sk_zoo.h: the zoo generator,
 * reading and selecting models; sk_sne.h: encoders); here main, the
 * dispatch and the options they share.  Output files are written
 * atomically; sk_die removes a pending one.
 */
#include "zoo-encode-cmd/zoo-encode.h"
#include "sk_kernels.h"

#include <stdio.h>
#include <string.h>

char *cmdline;

int shared_option(common *c, int idx, int sel, const char *arg)
{
	if (idx == O_OUTPUT)
		c->out = arg;
	else if (idx == O_COMPRESS)
		c->level = sk_arg_level(arg);
	else if (idx == O_FORCE)
		c->force = 1;
	else if (sel < 0 || idx < sel || idx >= sel + NSELECT)
		return 0;
	else if (idx == sel && sk_zoo_select_where(&c->sel, arg) < 0)
		sk_usage("%s", sk_errmsg());
	else if (idx == sel + 1 && sk_zoo_select_part(arg) < 0)
		sk_usage("%s", sk_errmsg());
	else if (idx == sel + 1)
		c->sel.part = arg;
	else if (idx == sel + 2)
		c->sel.val_frac = sk_arg_double("--val-frac", arg, 0.0, 1.0);
	else if (idx == sel + 3)
		c->sel.test_frac = sk_arg_double("--test-frac", arg, 0.0, 1.0);
	else if (idx == sel + 4)
		c->sel.seed = sk_arg_seed("--split-seed", arg);
	else if (idx == sel + 5)
		c->sel.by = arg;
	return 1;
}

sk_ofile *open_zoo(common *c, int argc, char **argv, sk_zoo *z, int **idx, int *n)
{
	sk_ofile *of;
	sk_ofile_install_signals();
	if (!(of = sk_ofile_open(c->out, c->force)) || sk_zoo_read_all(z, argv + c->first, argc - c->first) < 0 ||
	    !(*idx = sk_zoo_select_models(z, &c->sel, n)))
		sk_die_lib();
	return of;
}

const char *zoo_name(const char *label, const char *path)
{
	const char *s = strrchr(path, '/');
	return label ? label : s ? s + 1 : path;
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{"run", cmd_run, "train one zoo run (hyperparameters from a seed), one member per checkpoint"},
	{"train", cmd_train, "fit an encoder (sne, statnn, mlp) on a zoo to predict an attribute"},
	{"encode", cmd_encode, "write one fixed-length code per model as a stream"},
	{"predict", cmd_predict, "write the predicted attribute of each model as a stream"},
};

int main(int argc, char **argv)
{
	static const sk_option none[] = {{0}};
	static sk_cli top = {.prog = "zoo-encode", .synopsis = "COMMAND [options]", .summary = "model zoos and SNE",
	                     .opts = none};
	sk_cli_init(&top, argc, argv);
	cmdline = sk_cmdline(argc, argv);
	sk_blas_threads(1);   /* small matrices: one thread each; run jobs in parallel instead */
	if (argc < 2)
		sk_usage("a command is required: run, train, encode or predict (try --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		printf("Usage: zoo-encode COMMAND [options] [ZOO...]\n"
		       "Model zoos and set-based neural network encoding (SNE).\n\nCommands:\n");
		for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
			printf("  %-9s %s\n", commands[i].name, commands[i].help);
		printf("\n'zoo-encode COMMAND --help' lists a command's options.\n"
		       "Exit status: 0 success, 1 data or runtime error, 2 usage error.\nSee zoo-encode(1).\n");
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		char *vargv[] = {argv[0], "--version", NULL};
		const char *a;
		int fi;
		sk_cli_next(&top, 2, vargv, &a, &fi);   /* prints the versions and exits */
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	sk_usage("unknown command '%s' (known: run, train, encode, predict)", argv[1]);
}
