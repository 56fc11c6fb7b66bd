/* zoo-encode.h: what the commands of zoo-encode share (git-style: one file
 * per command, in this directory; main and these helpers in ../zoo-encode.c). */
#ifndef ZOO_ENCODE_H
#define ZOO_ENCODE_H

#include "sk_cli.h"
#include "sk_stream.h"
#include "sk_zoo.h"

extern char *cmdline;   /* the whole command line, recorded in outputs */

/* ---- options every command has, and the selection of models ---- */

enum { O_OUTPUT, O_COMPRESS, O_FORCE, O_SHARED, NSELECT = 6 };

#define SHARED_OPTIONS(out_help) \
	[O_OUTPUT] = SK_OPT_OUTPUT(out_help), \
	[O_COMPRESS] = SK_OPT_COMPRESS("deflate level of the output's records, 0 = raw (default 0)"), \
	[O_FORCE] = SK_OPT_FORCE

#define SELECT_OPTIONS(B) \
	[B] = {"where", 0, "KEY=VALUE", "keep models whose attribute KEY equals VALUE (repeatable, all must hold)"}, \
	[B + 1] = {"split", 0, "PART", "all, train, val or test: a seeded split of the runs (default all)"}, \
	[B + 2] = {"val-frac", 0, "F", "fraction of the train part's runs held out as val (default 0)"}, \
	[B + 3] = {"test-frac", 0, "F", "fraction of runs in the test part (default 0.5)"}, \
	[B + 4] = {"split-seed", 0, "S", "seed of the split (default 0)"}, \
	[B + 5] = {"split-by", 0, "ATTR", "attribute naming a model's run; a run is never cut (default run)"}

typedef struct common {
	const char *out;
	int level, force, first;
	sk_zoo_select sel;
} common;

/* The options of `common` (the selection from index sel on, or none when
 * sel < 0): 1 when idx is one of them. */
int shared_option(common *c, int idx, int sel, const char *arg);
/* Open the output, then read the zoos (operands from c->first; none: stdin)
 * and select models. */
sk_ofile *open_zoo(common *c, int argc, char **argv, sk_zoo *z, int **idx, int *n);
/* The name of a zoo or data set: --label, else the base name of its file. */
const char *zoo_name(const char *label, const char *path);

int cmd_run(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_predict(int argc, char **argv);

#endif
