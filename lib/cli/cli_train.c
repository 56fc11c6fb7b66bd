/* cli_train.c: the command-line layer of the training programs (snet-train,
 * nsm-pretrain).  A file of its own, so that the other programs do not link
 * the training engine (and OpenBLAS) through libskcli. */
#include "sk_cli.h"
#include "sk_train.h"

#include <stdlib.h>

void sk_arg_recipe(struct sk_recipe *r, const char *key, const char *val)
{
	if (sk_recipe_set(r, key, val) < 0)
		sk_usage("--%s: %s", key, sk_errmsg());
}

char *sk_cmdline_train(int argc, char **argv)
{
	char **av = malloc(sizeof *av * (size_t)(argc + 1)), *cmd;
	if (!av)
		sk_die("out of memory");
	cmd = sk_cmdline(sk_train_argv(argc, argv, av), av);
	free(av);
	if (!cmd)
		sk_die("out of memory");
	return cmd;
}
