/* snet-train: train a model (spec or model stream) on a data stream.
 *
 * Parse options; read the data (stdin by default) and the model; initialise
 * (seed, --init, --init-unsupervised); train with checkpoints; write the
 * model atomically.  Exit 0 done, 1 error, 2 usage, 3 interrupted by
 * SIGINT/SIGTERM (or --stop-after-steps) with a checkpoint written. */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_model.h"
#include "sk_stream.h"
#include "sk_train.h"
#ifdef SK_HAVE_MPI
#include "sk_dist.h"
#endif

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_STOPPED 3

static const sk_option opts[] = {
	{"model", 'm', "MODEL", "model spec file or model stream to train (required unless --resume)"},
	{"output", 'o', "OUT", "trained model stream, written atomically (required)"},
	{"valid", 0, "FILE", "validation data stream, evaluated after every epoch"},
	{"valid-split", 0, "F", "hold out a seeded fraction F (0 < F < 1) of the training data for validation"},
	{"epochs", 'e', "N", "epochs (default 10)"},
	{"batch", 'b', "N", "batch size (default 64)"},
	{"lr", 0, "LR", "base learning rate (default 0.05 for sgd/nesterov, 0.001 for adam/adamw, 0.002 for nadam, 0.01 for rmsprop)"},
	{"schedule", 0, "S", "constant, step, multistep or cosine (default constant)"},
	{"step-size", 0, "N", "step: multiply the rate by --gamma every N epochs (default 30)"},
	{"gamma", 0, "G", "step, multistep: decay factor (default 0.1)"},
	{"milestones", 0, "E1,E2,...", "multistep: epochs at which the rate is multiplied by --gamma"},
	{"warmup", 0, "N", "linear warm-up over the first N epochs (default 0)"},
	{"min-lr", 0, "LR", "cosine: the rate at the last epoch (default 0)"},
	{"optimizer", 0, "O", "sgd, nesterov, adam, adamw, rmsprop or nadam (default sgd); resets --momentum and --wd"},
	{"momentum", 0, "M", "sgd, nesterov: momentum (default 0.9); rmsprop (default 0)"},
	{"wd", 0, "WD", "weight decay, not on biases and norms; decoupled for adamw (default 0)"},
	{"loss", 0, "L", "xent (softmax cross-entropy) or mse against one-hot labels (default xent)"},
	{"seed", 's', "S", "seed of initialisation, shuffling, augmentation and dropout (default 1)"},
	{"threads", 'j', "N", "worker threads (default: all cores); results depend on the seed and N only"},
	{"crop", 0, "PAD", "augment: random crop with zero padding PAD"},
	{"flip", 0, NULL, "augment: random horizontal flip"},
	{"no-flip", 0, NULL, "no flip, even when the model's recipe asks for it"},
	{"log", 0, "FILE", "per-epoch metrics as TSV: epoch loss train_acc valid_acc lr images_per_s seconds"},
	{"checkpoint", 0, "FILE", "checkpoint written atomically after every epoch (default OUT.ckpt)"},
	{"checkpoint-every", 0, "N", "also write the checkpoint every N steps"},
	{"resume", 0, "CKPT", "continue from a checkpoint (same data, batch, seed, threads, optimizer)"},
	{"init", 0, "FILE", "copy parameters with matching names and shapes from a model stream"},
	{"init-layers", 0, "NAME", "with --init: copy only the parameters of layer NAME"},
	{"freeze", 0, "LAYER", "do not update the parameters of LAYER (repeatable)"},
	{"init-unsupervised", 0, NULL,
	 "initialise layers that support it (e.g. sim) from data, layer by layer; "
	 "--init-unsupervised=METHOD picks the method (none: not even when the recipe asks)"},
	{"init-examples", 0, "N", "examples used by --init-unsupervised (default 4000)"},
	{"stop-after-steps", 0, "N", "testing: stop as if interrupted after N steps"},
	{"force", 'f', NULL, "write the model even when OUT is a terminal"},
	{"distributed", 0, NULL,
	 "data-parallel over MPI ranks (mpirun -np K): each rank runs its share of every batch, gradients are "
	 "summed with MPI_Allreduce, rank 0 writes the output and checkpoints"},
	{"fixed-reduce", 0, NULL,
	 "--distributed: sum gradients in rank order, so K ranks of T threads give the bits of one process "
	 "of K*T threads when T = 1"},
	{0, 0, 0, 0},
};

enum { O_MODEL, O_OUTPUT, O_VALID, O_VSPLIT, O_EPOCHS, O_BATCH, O_LR, O_SCHED, O_STEPSIZE, O_GAMMA, O_MILESTONES,
       O_WARMUP, O_MINLR, O_OPTIMIZER, O_MOMENTUM, O_WD, O_LOSS, O_SEED, O_THREADS, O_CROP, O_FLIP, O_NOFLIP, O_LOG, O_CKPT,
       O_CKPT_EVERY, O_RESUME, O_INIT, O_INIT_LAYERS, O_FREEZE, O_UNSUP, O_UNSUP_N, O_STOP_AFTER, O_FORCE, O_DIST,
       O_FIXED };

#ifdef SK_HAVE_MPI
static int dist_reduce(float *buf, size_t n, void *arg) { return sk_dist_allreduce(arg, buf, n); }
#endif

struct ui {
	FILE *log;
	int quiet;
	char label[64];
};

static void on_step(int epoch, int64_t step, int64_t steps, void *arg)
{
	struct ui *u = arg;
	if (u->quiet)
		return;
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

struct freeze_arg {
	const char *name;
	int count;
};

static int freeze_fn(sk_param *p, sk_layer *l, void *arg)
{
	struct freeze_arg *f = arg;
	size_t k = strlen(f->name);
	(void)l;
	if (!strncmp(p->name, f->name, k) && p->name[k] == '.') {
		p->frozen = 1;
		f->count++;
	}
	return 0;
}

/* A recipe option of the command line: its value checked now (usage error). */
static void cli_set(sk_recipe *r, const char *key, const char *val)
{
	if (sk_recipe_set(r, key, val) < 0)
		sk_usage("--%s: %s", key, sk_errmsg());
}

/* The recipe a run uses: the model's own (its spec's `train` lines; when
 * resuming, the `recipe` the checkpoint recorded, which also reads from
 * `ckpt` when the model came from -m), under the command line's values
 * `over`.  A resumed run keeps its recipe: an option that would change it
 * (but --epochs) is refused, naming the value. */
static void effective_recipe(sk_train_config *c, sk_recipe_extras *x, sk_model *m, const sk_recipe *over,
                             const char *ckpt, int resume)
{
	sk_recipe base, all;
	sk_train_config c0 = *c;
	sk_recipe_extras x0 = *x;
	const char *rec = NULL;
	sk_model *ck = NULL;
	sk_recipe_init(&base);
	sk_recipe_init(&all);
	if (resume) {
		if (ckpt && !(ck = sk_model_load(ckpt)))
			sk_die_lib();
		rec = sk_attrs_get(&(ck ? ck : m)->attrs, "recipe");
	}
	if (rec ? sk_recipe_parse(&base, rec) < 0 : sk_recipe_from_spec(&base, m->spec) < 0)
		sk_die_lib();
	if (sk_recipe_apply(&base, c, x) < 0)   /* the model's recipe alone: an error is the model's */
		sk_die("%s: %s", m->spec->srcname, sk_errmsg());
	sk_recipe_merge(&base, over);
	*c = c0;
	*x = x0;
	if (sk_recipe_apply(&base, c, x) < 0)
		sk_usage("%s", sk_errmsg());
	if (sk_recipe_get(over, "milestones") && c->sched.kind != SK_SCHED_MULTISTEP)
		sk_usage("--milestones applies to --schedule multistep");
	if (rec) {
		/* each option against the recorded recipe */
		for (int i = 0; sk_spec_recipe_keys[i]; i++) {
			const char *k = sk_spec_recipe_keys[i], *v = sk_recipe_get(over, k);
			sk_train_config ca = c0, cb = c0;
			sk_recipe_extras xa = x0, xb = x0;
			char a[1024], b[1024];
			/* more epochs may follow; batch and optimizer the trainer checks itself */
			if (!v || !strcmp(k, "epochs") || !strcmp(k, "batch") || !strcmp(k, "optimizer"))
				continue;
			sk_recipe_free(&all);
			sk_recipe_init(&all);
			if (sk_recipe_parse(&all, rec) < 0 || sk_recipe_apply(&all, &ca, &xa) < 0 ||
			    sk_recipe_set(&all, k, v) < 0 || sk_recipe_apply(&all, &cb, &xb) < 0)
				sk_die_lib();
			ca.epochs = cb.epochs = ca.sched.epochs = cb.sched.epochs = 0;
			sk_recipe_format(&ca, &xa, a, sizeof a);
			sk_recipe_format(&cb, &xb, b, sizeof b);
			if (strcmp(a, b))
				sk_die("--resume: --%s %s would change the checkpoint's recipe (%s); only --epochs may differ",
				       k, v, rec);
		}
	}
	sk_recipe_free(&all);
	sk_recipe_free(&base);
	sk_model_free(ck);
}

int main(int argc, char **argv)
{
	sk_cli cli = {.prog = "snet-train",
	              .synopsis = "-m MODEL -o OUT [options] [DATA|-]",
	              .summary = "Train a model on a data stream (stdin when DATA is absent or '-').",
	              .opts = opts};
	sk_train_config c;
	const char *arg, *model_path = NULL, *out_path = NULL, *valid_path = NULL, *log_path = NULL;
	const char *ckpt_path = NULL, *resume_path = NULL, *init_path = NULL, *init_layers = NULL, *data_path = "-";
	const char *unsup_method = NULL, *freeze[64];
	double vsplit = 0;
	int idx, first, nfreeze = 0, force = 0;
	sk_recipe over;
	sk_recipe_extras x;
	char recipe[1024];
	sk_dataset train, valid;
	int have_valid = 0;
	sk_model *m;
	sk_trainer *t;
	struct ui u = {NULL, 0, ""};
	char *cmd, *ckpt_buf = NULL;
	int rc, distributed = 0, fixed_reduce = 0, rank = 0;
#ifdef SK_HAVE_MPI
	sk_dist dist;
#endif

	sk_train_defaults(&c);
	sk_recipe_extras_defaults(&x);
	sk_recipe_init(&over);
	c.threads = sk_ncores();
	/* --init-unsupervised=METHOD: the option table has no optional arguments */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strncmp(argv[i], "--init-unsupervised=", 20)) {
			unsup_method = argv[i] + 20;
			argv[i] = (char *)"--init-unsupervised";
		}
	sk_cli_init(&cli, argc, argv);
	{
		/* the recorded command leaves out what steers only this invocation */
		char **v = malloc(sizeof *v * (size_t)(argc + 1));
		if (!v)
			sk_die("out of memory");
		cmd = sk_cmdline(sk_train_argv(argc, argv, v), v);
		free(v);
	}
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (idx) {
		case O_MODEL: model_path = arg; break;
		case O_OUTPUT: out_path = arg; break;
		case O_VALID: valid_path = arg; break;
		case O_VSPLIT: vsplit = sk_arg_double("--valid-split", arg, 1e-9, 1 - 1e-9); break;
		case O_EPOCHS: cli_set(&over, "epochs", arg); break;
		case O_BATCH: cli_set(&over, "batch", arg); break;
		case O_LR: cli_set(&over, "lr", arg); break;
		case O_SCHED: cli_set(&over, "schedule", arg); break;
		case O_STEPSIZE: cli_set(&over, "step-size", arg); break;
		case O_GAMMA: cli_set(&over, "gamma", arg); break;
		case O_MILESTONES: cli_set(&over, "milestones", arg); break;
		case O_WARMUP: cli_set(&over, "warmup", arg); break;
		case O_MINLR: cli_set(&over, "min-lr", arg); break;
		case O_OPTIMIZER: cli_set(&over, "optimizer", arg); break;
		case O_MOMENTUM: cli_set(&over, "momentum", arg); break;
		case O_WD: cli_set(&over, "wd", arg); break;
		case O_LOSS: cli_set(&over, "loss", arg); break;
		case O_SEED: c.seed = (uint64_t)sk_arg_long("--seed", arg, 0, 0x7fffffffffffffffL); break;
		case O_THREADS: c.threads = (int)sk_arg_long("--threads", arg, 1, 256); break;
		case O_CROP: cli_set(&over, "crop", arg); break;
		case O_FLIP: cli_set(&over, "flip", "1"); break;
		case O_NOFLIP: cli_set(&over, "flip", "0"); break;
		case O_LOG: log_path = arg; break;
		case O_CKPT: ckpt_path = arg; break;
		case O_CKPT_EVERY: c.checkpoint_every = sk_arg_long("--checkpoint-every", arg, 1, 0x7fffffffffffffffL); break;
		case O_RESUME: resume_path = arg; break;
		case O_INIT: init_path = arg; break;
		case O_INIT_LAYERS: init_layers = arg; break;
		case O_FREEZE:
			if (nfreeze == (int)(sizeof freeze / sizeof freeze[0]))
				sk_usage("--freeze given more than %d times", nfreeze);
			freeze[nfreeze++] = arg;
			break;
		case O_UNSUP: cli_set(&over, "init-unsupervised", unsup_method ? unsup_method : "default"); break;
		case O_UNSUP_N: cli_set(&over, "init-examples", arg); break;
		case O_STOP_AFTER: c.stop_after = sk_arg_long("--stop-after-steps", arg, 1, 0x7fffffffffffffffL); break;
		case O_FORCE: force = 1; break;
		case O_DIST: distributed = 1; break;
		case O_FIXED: fixed_reduce = 1; break;
		}
	}
	if (fixed_reduce && !distributed)
		sk_usage("--fixed-reduce applies to --distributed");
	if (distributed) {
#ifdef SK_HAVE_MPI
		if (sk_dist_init(&argc, &argv, &dist) < 0)
			sk_die_lib();
		dist.fixed_order = fixed_reduce;
		rank = dist.rank;
		c.nshards = dist.size;
		c.shard = dist.rank;
		c.allreduce = dist_reduce;
		c.allreduce_arg = &dist;
		c.allow_reshard = 1;
		if (rank != 0) {   /* rank 0 reports, logs and writes; the others only compute */
			cli.quiet = 1;
			log_path = NULL;
		}
#else
		sk_usage("--distributed needs a build with MPI (configure --with-mpi; Debian: libopenmpi-dev)");
#endif
	}
	u.quiet = cli.quiet;
	if (first < argc)
		data_path = argv[first++];
	if (first < argc)
		sk_usage("one data stream expected, got also '%s' (try --help)", argv[first]);
	if (!out_path)
		sk_usage("-o OUT is required (try --help)");
	if (!model_path && !resume_path)
		sk_usage("-m MODEL is required (try --help)");
	if (valid_path && vsplit > 0)
		sk_usage("--valid and --valid-split exclude each other");
	if (init_layers && !init_path)
		sk_usage("--init-layers needs --init FILE");
	if (resume_path && (init_path || sk_recipe_get(&over, "init-unsupervised")))
		sk_usage("--resume continues a run; it excludes --init and --init-unsupervised");
	{
		int stdin_users = !strcmp(data_path, "-") + (model_path && !strcmp(model_path, "-")) +
		                  (valid_path && !strcmp(valid_path, "-"));
		if (stdin_users > 1)
			sk_usage("only one of DATA, -m and --valid can be '-' (stdin)");
	}

	/* the model, and its recipe under the command line's */
	m = sk_model_load(model_path ? model_path : resume_path);
	if (!m)
		sk_die_lib();
	effective_recipe(&c, &x, m, &over, model_path ? resume_path : NULL, resume_path != NULL);
	sk_recipe_format(&c, &x, recipe, sizeof recipe);
	/* checkpoints carry it: a resumed run reads it back */
	if (sk_attrs_set(&m->attrs, "recipe", recipe) < 0)
		sk_die_lib();
	if (!(ckpt_path = sk_train_ckpt_path(out_path, ckpt_path, &ckpt_buf)))
		sk_usage("%s", sk_errmsg());
	if (rank != 0)
		out_path = ckpt_path = "/dev/null";   /* a device: written directly, never renamed */
	c.checkpoint = rank == 0 ? ckpt_path : NULL;
	c.command = cmd;
	c.stop = sk_train_stop_flag();

	/* open the output first: fail before a long job */
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out_path, force);
	if (!of)
		sk_die_lib();
	{
		/* and check that the checkpoint can be written, before the first epoch */
		sk_ofile *ck = sk_ofile_open(ckpt_path, 1);
		if (!ck) {
			sk_ofile_abort(of);
			sk_die("--checkpoint: %s", sk_errmsg());
		}
		sk_ofile_abort(ck);
	}

	/* data */
	if (sk_dataset_read(data_path, &train) < 0) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	if (valid_path) {
		if (sk_dataset_read(valid_path, &valid) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		have_valid = 1;
	} else if (vsplit > 0) {
		if (sk_dataset_split(&train, vsplit, c.seed, &valid) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		have_valid = 1;
	}

	if (!resume_path) {
		if (!sk_attrs_get(&m->attrs, "records") && sk_model_init(m, c.seed) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		if (init_path) {
			sk_model *src = sk_model_load(init_path);
			if (src && !sk_attrs_get(&src->attrs, "records")) {
				sk_ofile_abort(of);
				sk_die("--init %s: a spec has no trained parameters (give a model stream)", init_path);
			}
			int n = src ? sk_model_copy_params(m, src, init_layers) : -1;
			sk_model_free(src);
			if (n < 0) {
				sk_ofile_abort(of);
				sk_die("--init %s: %s", init_path, sk_errmsg());
			}
			if (n == 0) {
				sk_ofile_abort(of);
				sk_die("--init %s: no parameter matches the model%s%s", init_path,
				       init_layers ? " in layer " : "", init_layers ? init_layers : "");
			}
			sk_info("initialised %d parameter tensors from %s", n, init_path);
		}
	}
	for (int i = 0; i < nfreeze; i++) {
		struct freeze_arg f = {freeze[i], 0};
		if (!sk_seq_find(m->seq, freeze[i])) {
			sk_ofile_abort(of);
			sk_die("--freeze: the model has no layer '%s'", freeze[i]);
		}
		sk_seq_walk_params(m->seq, freeze_fn, &f);
		if (f.count == 0)
			sk_warn("--freeze: layer '%s' has no parameters", freeze[i]);
	}
	if (x.unsup[0] && !resume_path) {
		int n = sk_train_init_unsupervised(m, &train, x.unsup, x.unsup_n, c.seed);
		if (n < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		if (n == 0)
			sk_warn("--init-unsupervised: no layer of the model supports it");
		else
			sk_info("initialised %d layer%s from %d examples (%s)", n, n == 1 ? "" : "s",
			        x.unsup_n < train.n ? x.unsup_n : (int)train.n, x.unsup);
	}

	if (log_path && !(u.log = sk_train_log_open(log_path, resume_path != NULL, NULL))) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	c.on_step = on_step;
	c.on_epoch = on_epoch;
	c.arg = &u;
	t = sk_trainer_new(m, &c, &train, have_valid ? &valid : NULL);
	if (!t) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	if (resume_path) {
		int ep;
		int64_t st, gs;
		if (sk_trainer_resume(t, resume_path, &ep, &st, &gs) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		if (ep >= c.epochs)
			sk_info("resuming %s: it already finished %d of %d epochs; writing the model only", resume_path,
			        ep, c.epochs);
		else
			sk_info("resuming %s at epoch %d, step %lld of %lld (global step %lld)", resume_path, ep + 1,
			        (long long)st, (long long)((train.n + c.batch - 1) / c.batch), (long long)gs);
	}
	if (!cli.quiet)
		sk_model_report(m, stderr);
	sk_info("recipe: %s", recipe);
	sk_train_catch_signals();
	rc = sk_trainer_run(t);
	sk_progress_end();
	if (rc < 0) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	if (rc == SK_TRAIN_STOPPED) {
		sk_ofile_abort(of);
		const sk_epoch_stats *s = sk_trainer_last(t);
		(void)s;
		if (*c.stop)
			sk_warn("interrupted by %s; checkpoint written to %s (continue with --resume %s)",
			        *c.stop == SIGINT ? "SIGINT" : "SIGTERM", ckpt_path, ckpt_path);
		else
			sk_warn("stopped after %lld steps; checkpoint written to %s (continue with --resume %s)",
			        (long long)c.stop_after, ckpt_path, ckpt_path);
		if (u.log)
			fclose(u.log);
		sk_trainer_free(t);
		sk_model_free(m);
		exit(EXIT_STOPPED);
	}
	/* the model and its attributes */
	{
		const sk_epoch_stats *s = sk_trainer_last(t);
		sk_attrs *a = &m->attrs;
		/* fresh attributes: the same whether or not the run was resumed */
		sk_attrs_free(a);
		sk_attrs_init(a);
		if (sk_attrs_setf(a, "seed", "%llu", (unsigned long long)c.seed) < 0 ||
		    sk_attrs_set(a, "command", sk_trainer_command(t)) < 0 || sk_attrs_set(a, "version", sk_version()) < 0 ||
		    sk_attrs_setf(a, "epochs", "%d", c.epochs) < 0 ||
		    sk_attrs_set(a, "optimizer", sk_optim_name(c.opt.kind)) < 0 ||
		    sk_attrs_setf(a, "lr", "%g", c.sched.lr) < 0 || sk_attrs_setf(a, "batch", "%d", c.batch) < 0 ||
		    sk_attrs_set(a, "recipe", recipe) < 0 ||
		    sk_attrs_setf(a, "threads", "%d", c.threads) < 0 ||
		    sk_attrs_setf(a, "train_n", "%lld", (long long)train.n) < 0 ||
		    sk_attrs_setf(a, "train_loss", "%.6f", s->loss) < 0 ||
		    sk_attrs_setf(a, "train_acc", "%.6f", s->train_acc) < 0)
			sk_die_lib();
		if (have_valid &&
		    (sk_attrs_setf(a, "valid_loss", "%.6f", s->valid_loss) < 0 ||
		     sk_attrs_setf(a, "valid_acc", "%.6f", s->valid_acc) < 0 ||
		     sk_attrs_setf(a, "best_valid_acc", "%.6f", sk_trainer_best_valid(t)) < 0 ||
		     sk_attrs_setf(a, "valid_n", "%lld", (long long)valid.n) < 0))
			sk_die_lib();
		if (sk_model_write(sk_ofile_fp(of), m, 0) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		if (sk_ofile_commit(of) < 0)
			sk_die_lib();
	}
	if (u.log) {
		/* every epoch's fflush may have failed already: fclose alone would not say */
		int bad = ferror(u.log);
		if (fclose(u.log) != 0 || bad)
			sk_die("%s: write error (the model was written)", log_path);
	}
	sk_trainer_free(t);
	sk_model_free(m);
	sk_dataset_free(&train);
	if (have_valid)
		sk_dataset_free(&valid);
	free(ckpt_buf);
	free(cmd);
	sk_recipe_free(&over);
#ifdef SK_HAVE_MPI
	if (distributed) {
		if (rank == 0 && !cli.quiet)
			sk_info("%d ranks: %ld gradient reductions took %.3f s", dist.size, dist.calls, dist.comm_seconds);
		sk_dist_finalize(&dist);
	}
#endif
	return 0;
}
