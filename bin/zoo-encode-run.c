/* zoo-encode run: one run of a zoo, trained by the training engine with
 * hyperparameters drawn from the run seed (lib/methods/zoogen.c), one member per
 * checkpoint epoch. */
#include "zoo-encode.h"

int cmd_run(int argc, char **argv)
{
	enum { R_DATA = O_SHARED, R_TEST, R_SEED, R_ARCH, R_CHECK, R_BATCH, R_NTRAIN, R_NTEST, R_NEVAL, R_LABEL, R_N };
	static const sk_option opts[] = {
		SHARED_OPTIONS("the run's members, one model per checkpoint epoch (default stdout)"),
		[R_DATA] = {"data", 'D', "FILE", "training data stream (required)"},
		[R_TEST] = {"test", 'T', "FILE", "test data stream (required)"},
		[R_SEED] = SK_OPT_SEED("run seed: draws every hyperparameter (default 1)"),
		[R_ARCH] = {"arch", 'A', "NAME", "zoo-cnn (3 conv 16 3x3 stride 2, gap, dense 10) or zoo-cnn2 (conv 8, pool, "
		                                 "conv 16, pool, gap, dense 32, dense 10) (default zoo-cnn)"},
		[R_CHECK] = {"checkpoints", 'C', "E1,E2,...", "epochs at which members are kept, 0 = init (default "
		                                              "0,1,2,3,6,12,18)"},
		[R_BATCH] = SK_OPT_BATCH("batch size (default 64)"),
		[R_NTRAIN] = {"train-examples", 0, "N", "use only the first N training examples (default all)"},
		[R_NTEST] = {"test-examples", 0, "N", "evaluate on the first N test examples (default all)"},
		[R_NEVAL] = {"eval-train", 0, "N", "train metrics on the first N training examples kept (default 2000)"},
		[R_LABEL] = {"label", 0, "NAME", "data set name stored in attribute `dataset` (default: data file name)"},
		[R_N] = {0},
	};
	sk_cli cli = {.prog = "zoo-encode", .synopsis = "run -D TRAIN -T TEST [options]", .opts = opts,
	              .summary = "train one zoo run with hyperparameters drawn from a seed; one member per checkpoint"};
	common c = {.out = "-"};
	const char *datap = NULL, *testp = NULL, *label = NULL, *arg;
	sk_zoo_run_config rc;
	sk_zoo_run_result res;
	int idx;
	sk_zoo_run_defaults(&rc);
	rc.command = cmdline;
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &c.first)) >= 0)
		if (!shared_option(&c, idx, -1, arg))
			switch (idx) {
			case R_DATA: datap = arg; break;
			case R_TEST: testp = arg; break;
			case R_SEED: rc.seed = sk_arg_seed("--seed", arg); break;
			case R_ARCH: if (!sk_zoo_arch(arg)) sk_usage("%s", sk_errmsg()); rc.arch = arg; break;
			case R_CHECK: if (sk_zoo_run_checkpoints(&rc, arg) < 0) sk_usage("%s", sk_errmsg()); break;
			case R_BATCH: rc.batch = (int)sk_arg_long("--batch", arg, 1, 65536); break;
			case R_NTRAIN: rc.train_examples = sk_arg_long("--train-examples", arg, 1, 1L << 40); break;
			case R_NTEST: rc.test_examples = sk_arg_long("--test-examples", arg, 1, 1L << 40); break;
			case R_NEVAL: rc.eval_train = sk_arg_long("--eval-train", arg, 1, 1L << 40); break;
			case R_LABEL: label = arg; break;
			}
	if (c.first < argc)
		sk_usage("unexpected operand '%s'", argv[c.first]);
	if (!datap || !testp)
		sk_usage("training and test data are required (-D TRAIN -T TEST)");
	rc.dataset = zoo_name(label, datap);
	sk_zoo_run *z = sk_zoo_run_new(&rc, datap, testp);
	sk_ofile *of = NULL;
	sk_ofile_install_signals();
	if (!z || !(of = sk_ofile_open(c.out, c.force)) || sk_zoo_run_train(z, &res) < 0)
		sk_die_lib();
	if (res.diverged)
		sk_warn("run %llu diverged: %s (%d member%s kept)", (unsigned long long)rc.seed, res.why, res.members,
		        res.members == 1 ? "" : "s");
	if (sk_zoo_run_write(z, sk_ofile_fp(of), c.level) < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_info("run %llu: %d members (%s %s %s lr %.3g%s)", (unsigned long long)rc.seed, res.members, rc.arch,
	        res.h.activation, res.h.optimizer, res.h.lr, res.diverged ? ", diverged" : "");
	sk_zoo_run_free(z);
	return 0;
}

