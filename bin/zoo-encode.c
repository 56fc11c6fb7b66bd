/* zoo-encode: model zoos and set-based neural network encoding, git-style:
 *   zoo-encode run      train one zoo run: hyperparameters drawn from a seed,
 *                       one model (zoo member) per checkpoint epoch
 *   zoo-encode train    fit an encoder (sne, statnn, mlp) on a zoo
 *   zoo-encode encode   one fixed-length code per model, as a stream
 *   zoo-encode predict  predicted property per model, as a stream
 * Each command parses its own table of options and calls lib/ (sk_zoo.h:
 * the zoo generator, reading and selecting models; sk_sne.h: encoders).
 * Output files are written atomically; sk_die removes a pending one.
 */
#include "sk_cli.h"
#include "sk_kernels.h"
#include "sk_sne.h"
#include "sk_stream.h"
#include "sk_zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *cmdline;

/* ---- what the commands share: output, and selecting models ---- */

enum { O_OUTPUT, O_COMPRESS, O_FORCE, O_SHARED, NSELECT = 6 };

#define SHARED_OPTIONS(out_help) \
	[O_OUTPUT] = {"output", 'o', "FILE", out_help}, \
	[O_COMPRESS] = {"compress", 'z', "LEVEL", "deflate level of the output's records, 0 = raw (default 0)"}, \
	[O_FORCE] = {"force", 'f', NULL, "write binary output even to a terminal"}

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

/* The options of `common` (selection from index sel, or none when sel < 0):
 * 1 when idx is one of them. */
static int shared_option(common *c, int idx, int sel, const char *arg)
{
	if (idx == O_OUTPUT)
		c->out = arg;
	else if (idx == O_COMPRESS)
		c->level = (int)sk_arg_long("--compress", arg, 0, 9);
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
		c->sel.seed = (uint64_t)sk_arg_long("--split-seed", arg, 0, 1L << 62);
	else if (idx == sel + 5)
		c->sel.by = arg;
	return 1;
}

/* Open the output, then read the zoos (operands from c->first; none: stdin)
 * and select models. */
static sk_ofile *open_zoo(common *c, int argc, char **argv, sk_zoo *z, int **idx, int *n)
{
	sk_ofile *of;
	sk_ofile_install_signals();
	if (!(of = sk_ofile_open(c->out, c->force)) || sk_zoo_read_all(z, argv + c->first, argc - c->first) < 0 ||
	    !(*idx = sk_zoo_select_models(z, &c->sel, n)))
		sk_die_lib();
	return of;
}

/* The name of a zoo or data set: --label, else the base name of its file. */
static const char *zoo_name(const char *label, const char *path)
{
	const char *s = strrchr(path, '/');
	return label ? label : s ? s + 1 : path;
}

/* ---- zoo-encode train ---- */

static void on_epoch(int epoch, int epochs, double loss, double inv, void *arg)
{
	sk_info("epoch %d/%d loss %.5f inv %.3g (%.1f s)", epoch, epochs, loss, inv,
	        (double)(clock() - *(clock_t *)arg) / CLOCKS_PER_SEC);
}

static int cmd_train(int argc, char **argv)
{
	enum { T_ENC = O_SHARED, T_ATTR, T_EPOCHS, T_BATCH, T_LR, T_WD, T_LAMBDA, T_LOSS, T_SEED, T_D, T_CHUNK,
	       T_HEADS, T_LN, T_HIDDEN, T_LABEL, T_SEL, T_N = T_SEL + NSELECT };
	static const sk_option opts[] = {
		SHARED_OPTIONS("the trained encoder (a stream; required)"),
		[T_ENC] = {"encoder", 'E', "KIND", "sne, statnn or mlp (default sne)"},
		[T_ATTR] = {"attr", 'a', "KEY", "attribute to predict, in [0, 1] (default test_acc)"},
		[T_EPOCHS] = {"epochs", 'e', "N", "training epochs (default 30)"},
		[T_BATCH] = {"batch", 'b', "N", "models per step (default 16)"},
		[T_LR] = {"lr", 0, "LR", "Adam learning rate (default 0.001)"},
		[T_WD] = {"wd", 0, "WD", "weight decay (default 0)"},
		[T_LAMBDA] = {"lambda", 0, "L", "logit-invariance weight: (s(theta) - s(pi theta))^2 (default 1 for sne, "
		                                "0 otherwise)"},
		[T_LOSS] = {"loss", 0, "L", "bce (on sigmoid(s)) or mse (default bce)"},
		[T_SEED] = {"seed", 's', "S", "seed of initialisation, shuffling and permutations (default 1)"},
		[T_D] = {"d", 0, "N", "sne: width of the set blocks (default 32)"},
		[T_CHUNK] = {"chunk", 0, "N", "sne: elements per chunk (default 16)"},
		[T_HEADS] = {"heads", 0, "N", "sne: attention heads (default 4)"},
		[T_LN] = {"ln", 0, "0|1", "sne: layer normalisation in the set blocks (default 1)"},
		[T_HIDDEN] = {"hidden", 0, "N", "statnn, mlp: hidden width (default 1000 statnn, 256 mlp)"},
		[T_LABEL] = {"label", 0, "NAME", "name of the training zoo, stored in the encoder (default: first file name)"},
		SELECT_OPTIONS(T_SEL),
		[T_N] = {0},
	};
	sk_cli cli = {.prog = "zoo-encode", .synopsis = "train [options] [ZOO...]",
	              .summary = "fit an encoder on a zoo to predict an attribute of each model", .opts = opts};
	common c = {.out = NULL};
	sk_enc_config ec;
	sk_enc_train tc;
	sk_enc_kind kind = SK_ENC_SNE;
	const char *attr = "test_acc", *label = NULL, *arg;
	int idx, d = 0, chunk = 0, heads = 0, ln = -1, hidden = 0, n, *sel;
	double lambda = -1, *target;
	sk_zoo_select_defaults(&c.sel);
	sk_enc_train_defaults(&tc);
	tc.seed = 1;
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &c.first)) >= 0)
		if (!shared_option(&c, idx, T_SEL, arg))
			switch (idx) {
			case T_ENC: if (sk_enc_parse(arg, &kind) < 0) sk_usage("%s", sk_errmsg()); break;
			case T_ATTR: attr = arg; break;
			case T_EPOCHS: tc.epochs = (int)sk_arg_long("--epochs", arg, 0, 100000); break;
			case T_BATCH: tc.batch = (int)sk_arg_long("--batch", arg, 1, 4096); break;
			case T_LR: tc.lr = (float)sk_arg_double("--lr", arg, 0, 10); break;
			case T_WD: tc.wd = (float)sk_arg_double("--wd", arg, 0, 10); break;
			case T_LAMBDA: lambda = sk_arg_double("--lambda", arg, 0, 1e6); break;
			case T_LOSS:
				if (strcmp(arg, "bce") && strcmp(arg, "mse"))
					sk_usage("--loss is bce or mse, not '%s'", arg);
				tc.mse = !strcmp(arg, "mse");
				break;
			case T_SEED: tc.seed = (uint64_t)sk_arg_long("--seed", arg, 0, 1L << 62); break;
			case T_D: d = (int)sk_arg_long("--d", arg, 1, 4096); break;
			case T_CHUNK: chunk = (int)sk_arg_long("--chunk", arg, 1, 4096); break;
			case T_HEADS: heads = (int)sk_arg_long("--heads", arg, 1, 64); break;
			case T_LN: ln = (int)sk_arg_long("--ln", arg, 0, 1); break;
			case T_HIDDEN: hidden = (int)sk_arg_long("--hidden", arg, 1, 1 << 16); break;
			case T_LABEL: label = arg; break;
			}
	if (!c.out)
		sk_usage("an output file is required (-o FILE)");
	sk_enc_defaults(&ec, kind);
	ec.d = d ? d : ec.d;
	ec.chunk = chunk ? chunk : ec.chunk;
	ec.heads = heads ? heads : ec.heads;
	ec.ln = ln >= 0 ? ln : ec.ln;
	ec.hidden = hidden ? hidden : ec.hidden;
	if (kind == SK_ENC_SNE && ec.d % ec.heads)
		sk_usage("--d %d is not a multiple of --heads %d", ec.d, ec.heads);
	tc.lambda = (float)(lambda >= 0 ? lambda : kind == SK_ENC_SNE ? 1.0 : 0.0);
	sk_zoo z;
	sk_ofile *of = open_zoo(&c, argc, argv, &z, &sel, &n);
	sk_encoder *e = NULL;
	if (!(target = sk_alloc_array((size_t)n, sizeof *target)) || sk_zoo_attr(&z, sel, n, attr, 0, 1, target) < 0 ||
	    !(e = sk_encoder_new(&ec, &z, sel, n, tc.seed)))
		sk_die_lib();
	sk_info("%s encoder, %zu parameters, code size %d; %d models, target %s, lambda %g", sk_enc_name(kind),
	        sk_encoder_param_count(e), sk_encoder_code_size(e), n, attr, tc.lambda);
	clock_t t0 = clock();
	tc.on_epoch = on_epoch;
	tc.arg = &t0;
	if (sk_encoder_train(e, &z, sel, n, target, &tc) < 0)
		sk_die_lib();
	sk_attrs a;
	sk_attrs_init(&a);
	if (sk_attrs_set(&a, "attr", attr) < 0 || sk_attrs_set(&a, "zoo", zoo_name(label, c.first < argc ? argv[c.first] : "-")) < 0 ||
	    sk_attrs_setf(&a, "seed", "%llu", (unsigned long long)tc.seed) < 0 ||
	    sk_attrs_setf(&a, "lambda", "%g", tc.lambda) < 0 || sk_attrs_setf(&a, "epochs", "%d", tc.epochs) < 0 ||
	    sk_attrs_setf(&a, "models", "%d", n) < 0 || sk_attrs_set(&a, "command", cmdline) < 0 ||
	    sk_encoder_write(sk_ofile_fp(of), e, &a, c.level) < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_attrs_free(&a);
	sk_encoder_free(e);
	sk_free(target);
	free(sel);
	sk_zoo_free(&z);
	return 0;
}

/* ---- zoo-encode encode / predict ---- */

static int cmd_apply(int argc, char **argv, int codes)
{
	enum { A_ENC = O_SHARED, A_ATTR, A_LABEL, A_GAP, A_SEL, A_N = A_SEL + NSELECT };
	static const sk_option opts[] = {
		SHARED_OPTIONS("output stream (default stdout)"),
		[A_ENC] = {"encoder", 'E', "FILE", "a trained encoder (from zoo-encode train; required)"},
		[A_ATTR] = {"attr", 'a', "KEY", "attribute written as `truth` when every model has it (default: the encoder's)"},
		[A_LABEL] = {"label", 0, "NAME", "name of this zoo in the output (default: first file name)"},
		[A_GAP] = {"inv-gap", 0, NULL, "predict: also measure mean |s(theta) - s(pi theta)| (attribute inv_gap)"},
		SELECT_OPTIONS(A_SEL),
		[A_N] = {0},
	};
	sk_cli cli = {.prog = "zoo-encode", .opts = opts,
	              .synopsis = codes ? "encode -E ENCODER [options] [ZOO...]" : "predict -E ENCODER [options] [ZOO...]",
	              .summary = codes ? "write one fixed-length code per model" : "write the predicted attribute of each model"};
	common c = {.out = "-"};
	const char *encp = NULL, *attr = NULL, *label = NULL, *arg;
	int idx, gap = 0, n, *sel, have_truth = 1;
	sk_zoo_select_defaults(&c.sel);
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &c.first)) >= 0)
		if (!shared_option(&c, idx, A_SEL, arg))
			switch (idx) {
			case A_ENC: encp = arg; break;
			case A_ATTR: attr = arg; break;
			case A_LABEL: label = arg; break;
			case A_GAP: gap = 1; break;
			}
	if (!encp)
		sk_usage("an encoder is required (-E FILE)");
	if (!strcmp(encp, "-") && c.first >= argc)
		sk_usage("the encoder and the zoo cannot both be stdin");
	sk_attrs ea;
	sk_attrs_init(&ea);
	sk_encoder *e = sk_encoder_load(encp, &ea);
	if (!e)
		sk_die_lib();
	if (!attr)
		attr = sk_attrs_get(&ea, "attr") ? sk_attrs_get(&ea, "attr") : "test_acc";
	sk_zoo z;
	sk_ofile *of = open_zoo(&c, argc, argv, &z, &sel, &n);
	sk_zoo_pred p = {.n = n, .cs = sk_encoder_code_size(e), .ids = sel};
	p.codes = codes ? sk_alloc_array((size_t)n * (size_t)p.cs, sizeof(float)) : NULL;
	p.pred = sk_alloc_array((size_t)n, sizeof(float));
	p.truth = sk_alloc_array((size_t)n, sizeof(float));
	if ((codes && !p.codes) || !p.pred || !p.truth)
		sk_die_lib();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sk_encoder_run(e, &z, sel, n, p.codes, p.pred) < 0)
		sk_die_lib();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	sk_info("%d models encoded in %.3f s (%.1f models/s)", n, secs, secs > 0 ? n / secs : 0.0);
	for (int k = 0; k < n; k++) {   /* the truth: when every model has the attribute as a number */
		const char *v = sk_attrs_get(&z.m[sel[k]].attrs, attr);
		char *end;
		p.pred[k] = (float)(1.0 / (1.0 + exp(-(double)p.pred[k])));
		if (!v || (p.truth[k] = strtof(v, &end), end == v || *end))
			have_truth = 0;
	}
	if (!have_truth) {
		sk_free(p.truth);
		p.truth = NULL;
	}
	sk_attrs *a = &p.attrs;
	if (sk_attrs_set(a, "encoder", sk_enc_name(sk_encoder_config(e)->kind)) < 0 || sk_attrs_set(a, "attr", attr) < 0 ||
	    sk_attrs_set(a, "train_zoo", sk_attrs_get(&ea, "zoo") ? sk_attrs_get(&ea, "zoo") : "?") < 0 ||
	    sk_attrs_set(a, "test_zoo", zoo_name(label, c.first < argc ? argv[c.first] : "-")) < 0 ||
	    sk_attrs_set(a, "seed", sk_attrs_get(&ea, "seed") ? sk_attrs_get(&ea, "seed") : "?") < 0)
		sk_die_lib();
	if (gap) {
		double g;
		if (sk_encoder_inv_gap(e, &z, sel, n, 12345, &g) < 0 || sk_attrs_setf(a, "inv_gap", "%.6g", g) < 0)
			sk_die_lib();
		sk_info("mean |s(theta) - s(pi theta)| = %.6g", g);
	}
	if (sk_zoo_pred_write(sk_ofile_fp(of), &p, c.level) < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_zoo_pred_free(&p);   /* sel too */
	sk_attrs_free(&ea);
	sk_zoo_free(&z);
	sk_encoder_free(e);
	return 0;
}

static int cmd_encode(int argc, char **argv) { return cmd_apply(argc, argv, 1); }
static int cmd_predict(int argc, char **argv) { return cmd_apply(argc, argv, 0); }

/* ---- zoo-encode run: one run of a zoo ---- */

static int cmd_run(int argc, char **argv)
{
	enum { R_DATA = O_SHARED, R_TEST, R_SEED, R_ARCH, R_CHECK, R_BATCH, R_NTRAIN, R_NTEST, R_NEVAL, R_LABEL, R_N };
	static const sk_option opts[] = {
		SHARED_OPTIONS("the run's members, one model per checkpoint epoch (default stdout)"),
		[R_DATA] = {"data", 'D', "FILE", "training data stream (required)"},
		[R_TEST] = {"test", 'T', "FILE", "test data stream (required)"},
		[R_SEED] = {"seed", 's', "S", "run seed: draws every hyperparameter (default 1)"},
		[R_ARCH] = {"arch", 'A', "NAME", "zoo-cnn (3 conv 16 3x3 stride 2, gap, dense 10) or zoo-cnn2 (conv 8, pool, "
		                                 "conv 16, pool, gap, dense 32, dense 10) (default zoo-cnn)"},
		[R_CHECK] = {"checkpoints", 'C', "E1,E2,...", "epochs at which members are kept, 0 = init (default "
		                                              "0,1,2,3,6,12,18)"},
		[R_BATCH] = {"batch", 'b', "N", "batch size (default 64)"},
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
			case R_SEED: rc.seed = (uint64_t)sk_arg_long("--seed", arg, 0, 1L << 62); break;
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
	sk_ofile *of;
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
