/* zoo-encode run: one run of a zoo, trained by the training engine with
 * hyperparameters drawn from the run seed and an architecture read from its
 * spec file (lib/methods/zoogen.c), one member per checkpoint epoch. */
#include "zoo-encode.h"

/* Give up with the library's message, freeing the run and removing the
 * pending outputs first. */
__attribute__((noreturn)) static void fail(sk_zoo_run *z, sk_ofile *of, sk_ofile *pf)
{
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", sk_errmsg());
	sk_zoo_run_free(z);
	if (of)
		sk_ofile_abort(of);
	if (pf)
		sk_ofile_abort(pf);
	sk_die("%s", msg);
}

/* The run's profile, one TSV line under a comment naming the columns, into
 * pf, committed. */
static int write_profile(sk_ofile *pf, const sk_zoo_run_config *rc, const sk_zoo_run_result *res)
{
	FILE *f = sk_ofile_fp(pf);
	fprintf(f, "# seed\tarch\tmembers\tdiverged\ttrain_examples\tload_s\ttrain_s\teval_s\twrite_s\n");
	fprintf(f, "%llu\t%s\t%d\t%d\t%lld\t%.3f\t%.3f\t%.3f\t%.3f\n", (unsigned long long)rc->seed, res->arch,
	        res->members, res->diverged, (long long)res->train_examples, res->seconds[SK_ZOO_T_LOAD],
	        res->seconds[SK_ZOO_T_TRAIN], res->seconds[SK_ZOO_T_EVAL], res->seconds[SK_ZOO_T_WRITE]);
	return sk_ofile_commit(pf);
}

int cmd_run(int argc, char **argv)
{
	enum { R_DATA = O_SHARED, R_TEST, R_SEED, R_ARCH, R_CHECK, R_BATCH, R_NTRAIN, R_NTEST, R_NEVAL, R_LABEL, R_PROF,
	       R_MICRO, R_N };
	static const sk_option opts[] = {
		SHARED_OPTIONS("the run's members, one model per checkpoint epoch (default stdout)"),
		[R_DATA] = {"data", 'D', "FILE", "training data stream (required)"},
		[R_TEST] = {"test", 'T', "FILE", "test data stream (required)"},
		[R_SEED] = SK_OPT_SEED("run seed: draws every hyperparameter (default 1)"),
		[R_ARCH] = {"arch", 'A', "NAME", "architecture: NAME.spec in $SIMKIT_MODELS or the installed models "
		                                 "(zoo-cnn, zoo-cnn2), or a spec file (default zoo-cnn)"},
		[R_CHECK] = {"checkpoints", 'C', "E1,E2,...", "epochs at which members are kept, 0 = init (default "
		                                              "0,1,2,3,6,12,18)"},
		[R_BATCH] = SK_OPT_BATCH("batch size (default 512)"),
		[R_NTRAIN] = {"train-examples", 0, "N", "use only the first N training examples (default all)"},
		[R_NTEST] = {"test-examples", 0, "N", "evaluate on the first N test examples (default all)"},
		[R_NEVAL] = {"eval-train", 0, "N", "train metrics on the first N training examples kept (default 2000)"},
		[R_LABEL] = {"label", 0, "NAME", "data set name stored in attribute `dataset` (default: data file name)"},
		[R_PROF] = {"profile", 0, "FILE", "write where the run's seconds went (loading, training, evaluation, writing)"},
		[R_MICRO] = {"micro-batch", 0, "N", "forward and backward in pieces of at most N examples, gradients summed: "
		                                    "the same steps up to rounding, faster (default 64; 0: whole batches)"},
		[R_N] = {0},
	};
	sk_cli cli = {.prog = "zoo-encode", .synopsis = "run -D TRAIN -T TEST [options]", .opts = opts,
	              .summary = "train one zoo run with hyperparameters drawn from a seed; one member per checkpoint"};
	common c = {.out = "-"};
	const char *datap = NULL, *testp = NULL, *label = NULL, *prof = NULL, *arg;
	char path[4096], name[256];
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
			case R_ARCH:
				if (sk_zoo_arch_path(arg, path, sizeof path, name, sizeof name) < 0)
					sk_usage("%s", sk_errmsg());
				rc.arch = arg;
				break;
			case R_CHECK: if (sk_zoo_run_checkpoints(&rc, arg) < 0) sk_usage("%s", sk_errmsg()); break;
			case R_BATCH: rc.batch = (int)sk_arg_long("--batch", arg, 1, 65536); break;
			case R_MICRO: rc.micro_batch = (int)sk_arg_long("--micro-batch", arg, 0, 65536); break;
			case R_NTRAIN: rc.train_examples = sk_arg_long("--train-examples", arg, 1, 1L << 40); break;
			case R_NTEST: rc.test_examples = sk_arg_long("--test-examples", arg, 1, 1L << 40); break;
			case R_NEVAL: rc.eval_train = sk_arg_long("--eval-train", arg, 1, 1L << 40); break;
			case R_LABEL: label = arg; break;
			case R_PROF: prof = arg; break;
			}
	if (c.first < argc)
		sk_usage("unexpected operand '%s'", argv[c.first]);
	if (!datap || !testp)
		sk_usage("training and test data are required (-D TRAIN -T TEST)");
	rc.dataset = zoo_name(label, datap);
	sk_zoo_run *z = sk_zoo_run_new(&rc, datap, testp);
	sk_ofile *of = NULL, *pf = NULL;
	sk_ofile_install_signals();
	if (!z || !(of = sk_ofile_open(c.out, c.force)) || (prof && !(pf = sk_ofile_open(prof, 1))) ||
	    sk_zoo_run_train(z, &res) < 0)
		fail(z, of, pf);
	if (res.diverged)
		sk_warn("run %llu diverged: %s (%d member%s kept)", (unsigned long long)rc.seed, res.why, res.members,
		        res.members == 1 ? "" : "s");
	if (sk_zoo_run_commit(z, of, c.level, &res) < 0)
		fail(z, NULL, pf);
	if (pf && write_profile(pf, &rc, &res) < 0)
		fail(z, NULL, NULL);
	sk_info("run %llu: %d members (%s %s %s lr %.3g%s); seconds: %.2f loading, %.2f training, %.2f evaluation, "
	        "%.2f writing",
	        (unsigned long long)rc.seed, res.members, res.arch, res.h.activation, res.h.optimizer, res.h.lr,
	        res.diverged ? ", diverged" : "", res.seconds[SK_ZOO_T_LOAD], res.seconds[SK_ZOO_T_TRAIN],
	        res.seconds[SK_ZOO_T_EVAL], res.seconds[SK_ZOO_T_WRITE]);
	sk_zoo_run_free(z);
	return 0;
}
