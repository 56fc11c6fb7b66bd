/* snet-train: train a model (spec or model stream) on a data stream.
 *
 * Parse options; read the model and resolve its run (lib/nn/recipe.c: the
 * recipe under the options, or a checkpoint's record when resuming); read
 * the data; prepare the model; train with checkpoints; write the model
 * atomically.  Exit 0 done, 1 error, 2 usage, 3 interrupted by
 * SIGINT/SIGTERM (or --stop-after-steps) with a checkpoint written. */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_model.h"
#include "sk_stream.h"
#include "sk_train.h"
#ifdef SK_HAVE_MPI
#include "sk_dist.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { O_MODEL, O_OUTPUT, O_COMPRESS, O_VALID, O_VSPLIT, O_EPOCHS, O_BATCH, O_LR, O_SCHED, O_STEPSIZE, O_GAMMA, O_MILESTONES,
       O_WARMUP, O_MINLR, O_OPTIMIZER, O_MOMENTUM, O_WD, O_LOSS, O_SEED, O_THREADS, O_CROP, O_FLIP, O_NOFLIP, O_LOG, O_CKPT,
       O_CKPT_EVERY, O_RESUME, O_INIT, O_INIT_LAYERS, O_FREEZE, O_UNSUP, O_UNSUP_N, O_STOP_AFTER, O_FORCE, O_DIST,
       O_FIXED, O_MICRO, O_N };

static const sk_option opts[] = {
	[O_MODEL] = SK_OPT_MODEL("model spec file or model stream to train (required unless --resume)"),
	[O_OUTPUT] = SK_OPT_OUTPUT("trained model stream, written atomically (required)"),
	[O_COMPRESS] = SK_OPT_COMPRESS("deflate level of OUT, 0 = raw (default 0)"),
	[O_VALID] = {"valid", 0, "FILE", "validation data stream, evaluated after every epoch"},
	[O_VSPLIT] = {"valid-split", 0, "F", "hold out a seeded fraction F (0 < F < 1) of the training data for validation"},
	[O_EPOCHS] = SK_OPT_EPOCHS("epochs (default 10)"),
	[O_BATCH] = SK_OPT_BATCH("batch size (default 64)"),
	[O_LR] = {"lr", 0, "LR", "base learning rate (default 0.05 for sgd/nesterov, 0.001 for adam/adamw, 0.002 for nadam, 0.01 for rmsprop)"},
	SK_OPTS_SCHEDULE(O_SCHED),
	[O_OPTIMIZER] = {"optimizer", 0, "O", "sgd, nesterov, adam, adamw, rmsprop or nadam (default sgd); resets --momentum and --wd"},
	[O_MOMENTUM] = {"momentum", 0, "M", "sgd, nesterov: momentum (default 0.9); rmsprop (default 0)"},
	[O_WD] = {"wd", 0, "WD", "weight decay, not on biases and norms; decoupled for adamw (default 0)"},
	[O_LOSS] = {"loss", 0, "L", "xent (softmax cross-entropy) or mse against one-hot labels (default xent)"},
	[O_SEED] = SK_OPT_SEED("seed of initialisation, shuffling, augmentation and dropout (default 1)"),
	[O_THREADS] = SK_OPT_THREADS("worker threads (default: all cores); results depend on the seed and N only"),
	[O_CROP] = {"crop", 0, "PAD", "augment: random crop with zero padding PAD"},
	[O_FLIP] = {"flip", 0, NULL, "augment: random horizontal flip"},
	[O_NOFLIP] = {"no-flip", 0, NULL, "no flip, even when the model's recipe asks for it"},
	[O_LOG] = {"log", 0, "FILE", "per-epoch metrics as TSV: epoch loss train_acc valid_acc lr images_per_s seconds"},
	[O_CKPT] = SK_OPT_CHECKPOINT,
	[O_CKPT_EVERY] = SK_OPT_CHECKPOINT_EVERY,
	[O_RESUME] = {"resume", 0, "CKPT", "continue from a checkpoint with its recorded options (more --epochs allowed)"},
	[O_INIT] = {"init", 0, "FILE", "copy parameters with matching names and shapes from a model stream"},
	[O_INIT_LAYERS] = {"init-layers", 0, "NAME", "with --init: copy only the parameters of layer NAME"},
	[O_FREEZE] = {"freeze", 0, "LAYER", "do not update the parameters of LAYER (repeatable)"},
	[O_UNSUP] = {"init-unsupervised", 0, NULL,
	             "initialise layers that support it (e.g. sim) from data, layer by layer; "
	             "--init-unsupervised=METHOD picks the method (none: not even when the recipe asks)"},
	[O_UNSUP_N] = {"init-examples", 0, "N", "examples used by --init-unsupervised (default 4000)"},
	[O_STOP_AFTER] = SK_OPT_STOP_AFTER,
	[O_FORCE] = SK_OPT_FORCE,
	[O_DIST] = {"distributed", 0, NULL,
	            "data-parallel over MPI ranks (mpirun -np K): each rank runs its share of every batch, gradients "
	            "are summed with MPI_Allreduce, rank 0 writes the output and checkpoints"},
	[O_FIXED] = {"fixed-reduce", 0, NULL,
	             "--distributed: sum gradients in rank order, so K ranks of T threads give the bits of one process "
	             "of K*T threads when T = 1"},
	[O_MICRO] = {"micro-batch", 0, "N",
	             "run each thread's share of a batch through forward and backward in pieces of at most N examples, "
	             "gradients summed: the same steps up to rounding, faster when a share's activations outgrow the "
	             "cache; not with bn layers (default 0: whole shares)"},
	[O_N] = {0, 0, 0, 0},
};

/* The run's key (sk_train.h: the recipe's and the run's) of each option that
 * sets one; main's switch hands these to the run unparsed. */
static const char *const run_key[O_N] = {
	[O_VSPLIT] = "valid-split", [O_EPOCHS] = "epochs", [O_BATCH] = "batch", [O_LR] = "lr",
	[O_SCHED] = "schedule", [O_STEPSIZE] = "step-size", [O_GAMMA] = "gamma", [O_MILESTONES] = "milestones",
	[O_WARMUP] = "warmup", [O_MINLR] = "min-lr", [O_OPTIMIZER] = "optimizer", [O_MOMENTUM] = "momentum",
	[O_WD] = "wd", [O_LOSS] = "loss", [O_THREADS] = "threads", [O_CROP] = "crop", [O_INIT] = "init",
	[O_INIT_LAYERS] = "init-layers", [O_FREEZE] = "freeze", [O_UNSUP_N] = "init-examples",
	[O_MICRO] = "micro-batch",
};

struct ui {
	FILE *log;
	int quiet;
	char label[64];
};

static void on_step(int epoch, int64_t step, int64_t steps, void *arg)
{
	struct ui *u = arg;
	snprintf(u->label, sizeof u->label, "epoch %d", epoch + 1);
	sk_progress(u->label, (double)step, (double)steps);
}

static void on_epoch(const sk_epoch_stats *s, void *arg)
{
	struct ui *u = arg;
	sk_progress_end();
	if (!u->quiet) {
		fprintf(stderr, "epoch %d/%d  loss %.4f  train_acc %.4f", s->epoch, s->epochs, s->loss, s->train_acc);
		if (s->has_valid)
			fprintf(stderr, "  valid_acc %.4f  valid_loss %.4f", s->valid_acc, s->valid_loss);
		fprintf(stderr, "  lr %.4g  %.0f img/s  %.1f s\n", s->lr, s->images_per_s, s->seconds);
	}
	if (u->log)
		sk_train_log_epoch(u->log, s, 0, NULL);
}

static sk_ofile *of;   /* the output, removed on any error */

static void fail(void)
{
	sk_ofile_abort(of);
	sk_die_lib();
}

int main(int argc, char **argv)
{
	sk_cli cli = {.prog = "snet-train",
	              .synopsis = "-m MODEL -o OUT [options] [DATA|-]",
	              .summary = "Train a model on a data stream (stdin when DATA is absent or '-').",
	              .opts = opts};
	sk_train_config c;
	sk_run run;
	const char *arg, *model_path = NULL, *out_path = NULL, *valid_path = NULL, *log_path = NULL;
	const char *ckpt_path = NULL, *resume_path = NULL, *data_path, *unsup_method;
	char *cmd, *ckpt_buf;
	int idx, first, rc, level = 0, force = 0, distributed = 0, fixed_reduce = 0, rank = 0;
	sk_model *m;
	struct ui u = {NULL, 0, ""};
#ifdef SK_HAVE_MPI
	sk_dist dist;
#endif

	sk_train_defaults(&c);
	sk_run_init(&run);
	c.threads = sk_ncores();
	unsup_method = sk_cli_optional(argc, argv, "init-unsupervised", "default");   /* --init-unsupervised=METHOD */
	sk_cli_init(&cli, argc, argv);
	cmd = sk_cmdline_train(argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (idx) {
		case O_MODEL: model_path = arg; break;
		case O_OUTPUT: out_path = arg; break;
		case O_COMPRESS: level = sk_arg_level(arg); break;
		case O_SEED: sk_arg_seed("--seed", arg), sk_arg_recipe(&run.given, "seed", arg); break;
		case O_VALID: valid_path = arg; break;
		case O_LOG: log_path = arg; break;
		case O_CKPT: ckpt_path = arg; break;
		case O_CKPT_EVERY: c.checkpoint_every = sk_arg_long("--checkpoint-every", arg, 1, 0x7fffffffffffffffL); break;
		case O_RESUME: resume_path = arg; break;
		case O_STOP_AFTER: c.stop_after = sk_arg_long("--stop-after-steps", arg, 1, 0x7fffffffffffffffL); break;
		case O_FORCE: force = 1; break;
		case O_DIST: distributed = 1; break;
		case O_FIXED: fixed_reduce = 1; break;
		case O_FLIP: sk_arg_recipe(&run.given, "flip", "1"); break;
		case O_NOFLIP: sk_arg_recipe(&run.given, "flip", "0"); break;
		case O_UNSUP: sk_arg_recipe(&run.given, "init-unsupervised", unsup_method); break;
		default: sk_arg_recipe(&run.given, run_key[idx], arg); break;
		}
	}
	if (fixed_reduce && !distributed)
		sk_usage("--fixed-reduce applies to --distributed");
	if (distributed) {
#ifdef SK_HAVE_MPI
		if (sk_dist_train_init(&argc, &argv, &dist, fixed_reduce, &c) < 0)
			sk_die_lib();
		if ((rank = dist.rank) != 0) {   /* rank 0 reports, logs and writes; the others only compute */
			cli.quiet = 1;
			log_path = NULL;
		}
#else
		sk_usage("--distributed needs a build with MPI (configure --with-mpi; Debian: libopenmpi-dev)");
#endif
	}
	u.quiet = cli.quiet;
	data_path = sk_cli_data(argc, argv, first);
	if (!out_path)
		sk_usage("-o OUT is required (try --help)");
	if (!model_path && !resume_path)
		sk_usage("-m MODEL is required (try --help)");
	if (!strcmp(data_path, "-") + (model_path && !strcmp(model_path, "-")) + (valid_path && !strcmp(valid_path, "-")) > 1)
		sk_usage("only one of DATA, -m and --valid can be '-' (stdin)");
	if (sk_run_check_given(&run, valid_path, resume_path) < 0)
		sk_usage("%s", sk_errmsg());

	/* the model and its run: the recipe under the options, or the checkpoint's */
	if (!(m = sk_model_load(model_path ? model_path : resume_path)))
		sk_die_lib();
	if ((rc = sk_run_resolve(&run, m, resume_path, distributed, &c)) == SK_RUN_USAGE)
		sk_usage("%s", sk_errmsg());
	else if (rc < 0)
		sk_die_lib();
	if (valid_path && run.x.valid_split > 0)
		sk_usage("--valid: the checkpoint's run held out --valid-split %g", run.x.valid_split);
	if (run.warning[0])
		sk_warn("--resume: %s", run.warning);
	if (!(ckpt_path = sk_train_ckpt_path(out_path, ckpt_path, &ckpt_buf)))
		sk_usage("%s", sk_errmsg());
	if (rank != 0)
		out_path = ckpt_path = "/dev/null";   /* a device: written directly, never renamed */
	c.checkpoint = rank == 0 ? ckpt_path : NULL;
	c.command = cmd;
	c.stop = sk_train_stop_flag();

	/* the output first, and a checkpoint that can be written: fail early */
	if (!(of = sk_train_open_output(out_path, ckpt_path, force)))
		sk_die_lib();

	/* the data, the model's preparation, the trainer; the log */
	c.on_step = u.quiet ? NULL : on_step;
	c.on_epoch = on_epoch;
	c.arg = &u;
	if (sk_run_start(&run, m, &c, data_path, valid_path, resume_path, sk_cli_note, NULL) < 0 ||
	    (log_path && !(u.log = sk_train_log_open(log_path, resume_path != NULL, NULL))))
		fail();
	if (!cli.quiet)
		sk_model_report(m, stderr);
	sk_info("recipe: %s", run.recipe);
	sk_train_catch_signals();
	rc = sk_trainer_run(run.trainer);
	sk_progress_end();
	if (rc < 0)
		fail();
	if (rc == SK_TRAIN_STOPPED) {
		sk_ofile_abort(of);
		if (u.log)
			fclose(u.log);
		sk_run_free(&run);
		sk_model_free(m);
		sk_exit_stopped(*c.stop, (long long)c.stop_after, ckpt_path);
	}
	/* the model and its attributes */
	if (sk_run_model_attrs(&run, &c, &m->attrs) < 0 ||
	    sk_model_write_level(sk_ofile_fp(of), m, 0, level) < 0)
		fail();
	if (sk_ofile_commit(of) < 0)
		sk_die_lib();
	if (u.log) {
		/* every epoch's fflush may have failed already: fclose alone would not say */
		int bad = ferror(u.log);
		if (fclose(u.log) != 0 || bad)
			sk_die("%s: write error (the model was written)", log_path);
	}
	sk_run_free(&run);
	sk_model_free(m);
	free(ckpt_buf);
	free(cmd);
#ifdef SK_HAVE_MPI
	if (distributed) {
		if (rank == 0 && !cli.quiet)
			sk_info("%d ranks: %ld gradient reductions took %.3f s", dist.size, dist.calls, dist.comm_seconds);
		sk_dist_finalize(&dist);
	}
#endif
	return 0;
}
