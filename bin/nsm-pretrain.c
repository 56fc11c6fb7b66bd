/* nsm-pretrain: convolutional nonnegative similarity matching filters from
 * images, for feature extraction (snet-infer --layer) and for initialising a
 * conv layer (snet-train --init).
 *
 * A front end of the one training loop (sk_train.h), as snet-train is: the
 * learner (lib/methods/nsm_train.c) is its custom step; the loop brings the data
 * order, the schedule, checkpoints, --resume, SIGINT/SIGTERM,
 * --stop-after-steps and the log.  Exit 0 done, 1 error, 2 usage, 3
 * interrupted (SIGINT/SIGTERM or --stop-after-steps) with a checkpoint. */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_model.h"
#include "sk_nsm_train.h"
#include "sk_stream.h"
#include "sk_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	O_OUTPUT, O_COMPRESS, O_FILTERS, O_SIZE, O_STRIDE, O_TAU, O_ITERS, O_ETA, O_TOL, O_REG, O_INIT, O_SCALE, O_SUP, O_CLASSES,
	O_LSCALE, O_EMIT, O_NAME, O_ALGO, O_POOL, O_CONVOUT, O_MAXIMG, O_BLOCK, O_EPOCHS, O_BATCH, O_LR, O_SCHED,
	O_STEPSIZE, O_GAMMA, O_MILESTONES, O_WARMUP, O_MINLR, O_SEED, O_THREADS, O_LOG, O_CKPT, O_CKPT_EVERY, O_RESUME,
	O_STOP, O_FORCE, O_N
};

static const sk_option opts[] = {
	[O_OUTPUT] = SK_OPT_OUTPUT("model stream written atomically (required)"),
	[O_COMPRESS] = SK_OPT_COMPRESS("deflate level of OUT and --conv-out, 0 = raw (default 0)"),
	[O_FILTERS] = {"filters", 'k', "K", "number of filters (default 50)"},
	[O_SIZE] = {"size", 0, "S", "filter size S x S (default 6)"},
	[O_STRIDE] = {"stride", 0, "T", "filter stride (default 1); no padding"},
	[O_TAU] = {"tau", 0, "TAU", "the lateral weights M learn 1/TAU times faster than W (default 0.1)"},
	[O_ITERS] = {"iters", 0, "N", "dynamics steps per batch, from y = 0 (default 40)"},
	[O_ETA] = {"eta", 0, "E", "dynamics step size, converges while E < 2/lambda_max(M); auto: 1/lambda_max(M) (default 1)"},
	[O_TOL] = {"tol", 0, "X", "stop a block's dynamics when |dy|/|y| < X (default 0: all steps)"},
	[O_REG] = {"reg", 0, "R", "encoder regulariser: weight, whiten or none (default weight)"},
	[O_INIT] = {"init", 0, "I", "W init: conv (U(+-1/sqrt(fan_in)), PyTorch's) or unit (unit-norm normal) (default conv)"},
	[O_SCALE] = {"scale", 0, "S", "multiply pixels by S; auto: 1/255 when the data exceed 1 (default auto)"},
	[O_SUP] = {"supervised", 0, NULL, "supervised variant: a label term in the dynamics while training"},
	[O_CLASSES] = {"classes", 0, "N", "supervised: number of classes (default: 1 + the largest label)"},
	[O_LSCALE] = {"label-scale", 0, "A", "supervised: weight of the one-hot label (default 1)"},
	[O_EMIT] = {"emit", 0, "L", "layer in OUT: nsm (W and M: the dynamics) or conv (W only) (default nsm)"},
	[O_NAME] = {"name", 0, "NAME", "layer name in OUT; parameters NAME.w, NAME.m (default nsm1 or conv1)"},
	[O_ALGO] = {"algo", 0, "A", "nsm, or kmeans (baseline: spherical k-means of normalised patches) (default nsm)"},
	[O_POOL] = {"pool", 0, "P", "nsm output: append `pool max k=P name=pool` (the feature protocol uses 2)"},
	[O_CONVOUT] = {"conv-out", 0, "FILE", "also write the filters as a conv layer model (for snet-train --init)"},
	[O_MAXIMG] = {"max-images", 0, "N", "use only the first N images of the data"},
	[O_BLOCK] = {"block", 0, "N", "samples per cache block of the dynamics (default 256)"},
	[O_EPOCHS] = SK_OPT_EPOCHS("epochs (default 1)"),
	[O_BATCH] = SK_OPT_BATCH("images per batch (default 128)"),
	[O_LR] = {"lr", 0, "LR", "base learning rate on the NSM objective (default 0.05)"},
	SK_OPTS_SCHEDULE(O_SCHED),
	[O_SEED] = SK_OPT_SEED("seed of initialisation and shuffling (default 1)"),
	[O_THREADS] = SK_OPT_THREADS("worker threads (default: all cores); results depend on the seed and N only"),
	[O_LOG] = {"log", 0, "FILE", "per-epoch TSV: epoch loss train_acc valid_acc lr images_per_s seconds delta active"},
	[O_CKPT] = SK_OPT_CHECKPOINT,
	[O_CKPT_EVERY] = SK_OPT_CHECKPOINT_EVERY,
	[O_RESUME] = {"resume", 0, "CKPT", "continue from a checkpoint (same data, options, batch, seed, threads)"},
	[O_STOP] = SK_OPT_STOP_AFTER,
	[O_FORCE] = SK_OPT_FORCE,
	[O_N] = {0, 0, 0, 0},
};

static const char *const reg_names[] = {"weight", "whiten", "none", NULL};
/* the recipe keys among the options, in the order of the enum */
static const char *const recipe_keys[] = {"epochs", "batch",  "lr",     "schedule", "step-size",
                                          "gamma",  "milestones", "warmup", "min-lr"};

struct ui {
	sk_nsm_learner *L;
	FILE *log;
};

static void on_step(int epoch, int64_t step, int64_t steps, void *arg)
{
	(void)arg;
	(void)epoch;
	sk_progress("nsm-pretrain", (double)step, (double)steps);
}

static void on_epoch(const sk_epoch_stats *s, void *arg)
{
	struct ui *u = arg;
	sk_nsm_stats ls;
	int64_t steps = sk_nsm_learner_epoch(u->L, &ls);
	sk_progress_end();
	sk_info("epoch %d/%d: %lld steps, loss %.5f, last |dy|/|y| %.2e, active %.3f, eta %.3g, lr %.4g, %.0f images/s, "
	        "%.1f s", s->epoch, s->epochs, (long long)steps, s->loss, ls.delta, ls.active, ls.eta, s->lr,
	        s->images_per_s, s->seconds);
	if (u->log)
		sk_train_log_epoch(u->log, s, 2, (double[]){ls.delta, ls.active});
}

static void write_model(sk_nsm_learner *L, const char *path, int conv, int pool, const char *cmd, int epochs,
                        int64_t steps, int force, int level)
{
	sk_model *m = sk_nsm_learner_output(L, conv, pool);
	sk_ofile *of = m ? sk_ofile_open(path, force) : NULL;
	if (!of || sk_attrs_set(&m->attrs, "command", cmd) < 0 || sk_attrs_setf(&m->attrs, "epochs", "%d", epochs) < 0 ||
	    sk_attrs_setf(&m->attrs, "steps", "%lld", (long long)steps) < 0 || sk_model_write_level(sk_ofile_fp(of), m, 0, level) < 0) {
		if (of)
			sk_ofile_abort(of);
		sk_die_lib();
	}
	if (sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_model_free(m);
}

int main(int argc, char **argv)
{
	sk_cli cli = {.prog = "nsm-pretrain",
	              .synopsis = "[options] [DATA|-] -o OUT",
	              .summary = "learn convolutional filters by nonnegative similarity matching (local Hebbian rules)",
	              .opts = opts};
	sk_nsm_learn_opts lo = {.seed = 1};
	sk_train_config c;
	sk_recipe rec;
	sk_recipe_extras x;
	sk_dataset d;
	struct ui u = {NULL, NULL};
	const char *arg, *data, *out = NULL, *ckpt = NULL, *resume = NULL, *conv_out = NULL, *log_path = NULL;
	char *ckpt_buf, *cmd, recipe[1024], msg[1024];
	int idx, first, emit_conv = 0, pool = 0, force = 0, level = 0, rc;
	int64_t max_images = 0, steps = 0;
	sk_nsm_defaults(&lo.o);
	sk_train_defaults(&c);
	sk_recipe_extras_defaults(&x);
	sk_recipe_init(&rec);
	c.threads = sk_ncores();
	sk_cli_init(&cli, argc, argv);
	if (sk_recipe_parse(&rec, "epochs=1 batch=128") < 0)   /* the method's defaults */
		sk_die_lib();
	cmd = sk_cmdline_train(argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (idx) {
		case O_OUTPUT: out = arg; break;
		case O_FILTERS: lo.o.k = (int)sk_arg_long("--filters", arg, 1, 4096); break;
		case O_SIZE: lo.o.size = (int)sk_arg_long("--size", arg, 1, 1024); break;
		case O_STRIDE: lo.o.stride = (int)sk_arg_long("--stride", arg, 1, 64); break;
		case O_TAU: lo.o.tau = (float)sk_arg_double("--tau", arg, 1e-6, 1e6); break;
		case O_ITERS: lo.o.iters = (int)sk_arg_long("--iters", arg, 1, 100000); break;
		case O_ETA:
			if (!(lo.o.eta_auto = !strcmp(arg, "auto")))
				lo.o.eta = (float)sk_arg_double("--eta", arg, 1e-6, 99.999);
			break;
		case O_TOL: lo.o.tol = (float)sk_arg_double("--tol", arg, 0, 0.999); break;
		case O_REG: lo.o.reg = sk_arg_choice("--reg", arg, reg_names); break;
		case O_INIT: lo.init = sk_arg_choice("--init", arg, (const char *const[]){"conv", "unit", NULL}); break;
		case O_SCALE: lo.scale = strcmp(arg, "auto") ? sk_arg_double("--scale", arg, 1e-30, 1e30) : 0; break;
		case O_SUP: lo.o.supervised = 1; break;
		case O_CLASSES: lo.o.classes = (int)sk_arg_long("--classes", arg, 1, 100000); break;
		case O_LSCALE: lo.o.label_scale = (float)sk_arg_double("--label-scale", arg, 0, 1e6); break;
		case O_EMIT: emit_conv = sk_arg_choice("--emit", arg, (const char *const[]){"nsm", "conv", NULL}); break;
		case O_NAME:
			if (!*arg || strlen(arg) > 64 || strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			                                             "0123456789_-") != strlen(arg))
				sk_usage("--name '%s' must have 1 to 64 letters, digits, '_' or '-'", arg);
			lo.name = arg;
			break;
		case O_ALGO: lo.algo = sk_arg_choice("--algo", arg, (const char *const[]){"nsm", "kmeans", NULL}); break;
		case O_POOL: pool = (int)sk_arg_long("--pool", arg, 1, 1024); break;
		case O_CONVOUT: conv_out = arg; break;
		case O_MAXIMG: max_images = sk_arg_long("--max-images", arg, 1, 0x7fffffffffffffffL); break;
		case O_BLOCK: lo.o.block = (int)sk_arg_long("--block", arg, 1, 1 << 20); break;
		case O_SEED: lo.seed = c.seed = sk_arg_seed("--seed", arg); break;
		case O_COMPRESS: level = sk_arg_level(arg); break;
		case O_THREADS: c.threads = (int)sk_arg_long("--threads", arg, 1, 256); break;
		case O_LOG: log_path = arg; break;
		case O_CKPT: ckpt = arg; break;
		case O_CKPT_EVERY: c.checkpoint_every = sk_arg_long("--checkpoint-every", arg, 1, 0x7fffffffffffffffL); break;
		case O_RESUME: resume = arg; break;
		case O_STOP: c.stop_after = sk_arg_long("--stop-after-steps", arg, 1, 0x7fffffffffffffffL); break;
		case O_FORCE: force = 1; break;
		default: sk_arg_recipe(&rec, recipe_keys[idx - O_EPOCHS], arg);   /* the loop's options */
		}
	}
	data = sk_cli_data(argc, argv, first);
	if (!out)
		sk_usage("-o OUT is required (try --help)");
	if (lo.o.classes && !lo.o.supervised)
		sk_usage("--classes applies to --supervised");
	if (lo.algo == SK_NSM_ALGO_KMEANS && lo.o.supervised)
		sk_usage("--algo kmeans has no supervised variant");
	if (pool && emit_conv)
		sk_usage("--pool applies to the nsm output, not --emit conv");
	if (conv_out && emit_conv)
		sk_usage("--conv-out and --emit conv both write a conv model; use one");
	if (sk_recipe_apply(&rec, &c, &x) < 0)
		sk_usage("%s", sk_errmsg());
	if (!(c.checkpoint = sk_train_ckpt_path(out, ckpt, &ckpt_buf)))
		sk_usage("%s", sk_errmsg());
	lo.o.threads = c.threads;
	lo.o.max_batch = c.batch;
	c.command = cmd;
	{
		/* what a resumed run must match: the recipe but its epochs (more may follow) */
		sk_train_config c0 = c;
		c0.epochs = c0.sched.epochs = 0;
		sk_recipe_format(&c0, &x, recipe, sizeof recipe);
	}

	if (sk_dataset_read(data, &d) < 0)
		sk_die_lib();
	if (max_images && d.n > max_images)
		d.n = max_images;
	if (!(u.L = sk_nsm_learner_new(&lo, &d)))
		sk_die("%s: %s", data, sk_errmsg());
	sk_nsm_learner_attach(u.L, &c, recipe);
	c.on_step = cli.quiet ? NULL : on_step;
	c.on_epoch = on_epoch;
	c.arg = &u;
	c.stop = sk_train_stop_flag();
	sk_trainer *t = sk_trainer_new(sk_nsm_learner_model(u.L), &c, &d, NULL);
	if (!t)
		sk_die_lib();
	if (resume) {
		if (sk_train_resume(t, resume, &c, d.n, msg, sizeof msg, &steps) < 0 ||
		    sk_nsm_learner_resumed(u.L, resume) < 0)
			sk_die_lib();
		sk_info("%s", msg);
	}
	if (log_path && !(u.log = sk_train_log_open(log_path, resume != NULL, "delta\tactive")))
		sk_die_lib();
	sk_info("%s", sk_nsm_learner_describe(u.L, msg, sizeof msg));
	sk_train_catch_signals();
	rc = sk_trainer_run(t);
	sk_progress_end();
	if (rc < 0)
		sk_die_lib();
	if (u.log && (ferror(u.log) | fclose(u.log)))
		sk_die("%s: write error", log_path);
	if (rc != SK_TRAIN_STOPPED) {
		if (sk_trainer_last(t)->step > steps)
			steps = sk_trainer_last(t)->step;
		write_model(u.L, out, emit_conv, pool, sk_trainer_command(t), c.epochs, steps, force, level);
		if (conv_out)
			write_model(u.L, conv_out, 1, 0, sk_trainer_command(t), c.epochs, steps, force, level);
	}
	sk_trainer_free(t);
	sk_nsm_learner_free(u.L);
	sk_dataset_free(&d);
	sk_recipe_free(&rec);
	free(cmd);
	if (rc == SK_TRAIN_STOPPED)   /* exits 3; c.checkpoint lives in ckpt_buf */
		sk_exit_stopped(*c.stop, (long long)c.stop_after, c.checkpoint);
	free(ckpt_buf);
	return 0;
}
