/* zoo-encode: model zoos and set-based neural network encoding, git-style:
 *   zoo-encode run      train one zoo run: hyperparameters drawn from a seed,
 *                       one model (zoo member) per checkpoint epoch
 *   zoo-encode train    fit an encoder (sne, statnn, mlp) on a zoo
 *   zoo-encode encode   one fixed-length code per model, as a stream
 *   zoo-encode predict  predicted property per model, as a stream
 * Each subcommand parses its own table of options and calls lib/.
 */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_kernels.h"
#include "sk_loss.h"
#include "sk_model.h"
#include "sk_rng.h"
#include "sk_sne.h"
#include "sk_stream.h"
#include "sk_train.h"
#include "sk_zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *cmdline;

/* ---- selecting models: --where, --split ---- */

typedef struct select_opts {
	const char *where[8];
	int nwhere;
	const char *part;     /* "all", "train", "test", "val" */
	double test_frac;
	double val_frac;      /* of the train part, held out as "val" */
	uint64_t split_seed;
	const char *split_by; /* attribute grouping models into runs */
} select_opts;

#define SELECT_OPTIONS \
	{"where", 'w', "KEY=VALUE", "keep models whose attribute KEY equals VALUE (repeatable, all must hold)"}, \
	{"split", 0, "PART", "all, train, val or test: a seeded split of the runs (default all)"}, \
	{"val-frac", 0, "F", "fraction of the train part's runs held out as val (default 0)"}, \
	{"test-frac", 0, "F", "fraction of runs in the test part (default 0.5)"}, \
	{"split-seed", 0, "S", "seed of the split (default 0)"}, \
	{"split-by", 0, "ATTR", "attribute naming a model's run; a run is never cut (default run)"}

static int select_option(select_opts *s, const char *name, const char *arg)
{
	if (!strcmp(name, "where")) {
		if (s->nwhere == 8)
			sk_usage("at most 8 --where options");
		if (!strchr(arg, '='))
			sk_usage("--where wants KEY=VALUE, got '%s'", arg);
		s->where[s->nwhere++] = arg;
	} else if (!strcmp(name, "split")) {
		if (strcmp(arg, "all") && strcmp(arg, "train") && strcmp(arg, "test") && strcmp(arg, "val"))
			sk_usage("--split is all, train, val or test, not '%s'", arg);
		s->part = arg;
	} else if (!strcmp(name, "test-frac"))
		s->test_frac = sk_arg_double("--test-frac", arg, 0.0, 1.0);
	else if (!strcmp(name, "val-frac"))
		s->val_frac = sk_arg_double("--val-frac", arg, 0.0, 1.0);
	else if (!strcmp(name, "split-seed"))
		s->split_seed = (uint64_t)sk_arg_long("--split-seed", arg, 0, 1L << 62);
	else if (!strcmp(name, "split-by"))
		s->split_by = arg;
	else
		return 0;
	return 1;
}

/* Indices of the selected models (malloc'ed); dies when none is left. */
static int *select_models(const sk_zoo *z, const select_opts *s, int *n)
{
	int *idx = malloc(sizeof *idx * (size_t)(z->n + 1)), k = 0;
	if (!idx)
		sk_die("out of memory");
	for (int i = 0; i < z->n; i++) {
		int ok = 1;
		for (int w = 0; w < s->nwhere && ok; w++) {
			const char *eq = strchr(s->where[w], '=');
			char key[SK_NAME_MAX];
			snprintf(key, sizeof key, "%.*s", (int)(eq - s->where[w]), s->where[w]);
			const char *v = sk_attrs_get(&z->m[i].attrs, key);
			ok = v && !strcmp(v, eq + 1);
		}
		if (ok && strcmp(s->part, "all")) {
			/* the run's side is a hash of (seed, run name): stable under any filtering */
			const char *run = sk_attrs_get(&z->m[i].attrs, s->split_by);
			char buf[32];
			if (!run) {
				snprintf(buf, sizeof buf, "%d", i);
				run = buf;
			}
			float u = sk_rng_uniform(s->split_seed, sk_rng_hash(run), 0);
			float v = sk_rng_uniform(s->split_seed, sk_rng_hash(run), 1);
			int test = u < s->test_frac, val = !test && v < s->val_frac;
			const char *side = test ? "test" : val ? "val" : "train";
			ok = !strcmp(side, s->part);
		}
		if (ok)
			idx[k++] = i;
	}
	if (k == 0)
		sk_die("no model left after --where/--split (of %d read)", z->n);
	*n = k;
	return idx;
}

static void read_zoos(sk_zoo *z, int argc, char **argv, int first)
{
	sk_zoo_init(z);
	if (first >= argc) {
		if (sk_zoo_read("-", z) < 0)
			sk_die_lib();
		return;
	}
	for (int i = first; i < argc; i++)
		if (sk_zoo_read(argv[i], z) < 0)
			sk_die_lib();
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* ---- zoo-encode train ---- */

static const sk_option train_opts[] = {
	{"output", 'o', "FILE", "the trained encoder (a stream; required)"},
	{"encoder", 'E', "KIND", "sne, statnn or mlp (default sne)"},
	{"attr", 'a', "KEY", "attribute to predict, in [0, 1] (default test_acc)"},
	{"epochs", 'e', "N", "training epochs (default 30)"},
	{"batch", 'b', "N", "models per step (default 16)"},
	{"lr", 0, "LR", "Adam learning rate (default 0.001)"},
	{"wd", 0, "WD", "weight decay (default 0)"},
	{"lambda", 0, "L", "logit-invariance weight: (s(theta) - s(pi theta))^2 (default 1 for sne, 0 otherwise)"},
	{"loss", 0, "L", "bce (on sigmoid(s)) or mse (default bce)"},
	{"seed", 's', "S", "seed of initialisation, shuffling and permutations (default 1)"},
	{"d", 'd', "N", "sne: width of the set blocks (default 32)"},
	{"chunk", 'c', "N", "sne: elements per chunk (default 16)"},
	{"heads", 0, "N", "sne: attention heads (default 4)"},
	{"ln", 0, "0|1", "sne: layer normalisation in the set blocks (default 1)"},
	{"hidden", 0, "N", "statnn, mlp: hidden width (default 1000 statnn, 256 mlp)"},
	{"label", 0, "NAME", "name of the training zoo, stored in the encoder (default: first file name)"},
	SELECT_OPTIONS,
	{"force", 'f', NULL, "write to a terminal"},
	{0},
};

static void on_epoch(int epoch, int epochs, double loss, double inv, void *arg)
{
	clock_t *t0 = arg;
	sk_info("epoch %d/%d loss %.5f inv %.3g (%.1f s)", epoch, epochs, loss, inv,
	        (double)(clock() - *t0) / CLOCKS_PER_SEC);
}

static int cmd_train(int argc, char **argv)
{
	sk_cli cli = {"zoo-encode", "train [options] [ZOO...]",
	              "fit an encoder on a zoo to predict an attribute of each model", train_opts, 0};
	select_opts sel = {{0}, 0, "all", 0.5, 0, 0, "run"};
	sk_enc_config ec;
	sk_enc_train tc;
	sk_enc_kind kind = SK_ENC_SNE;
	const char *out = NULL, *attr = "test_acc", *label = NULL, *arg;
	int idx, first, force = 0, d = 0, chunk = 0, heads = 0, ln = -1, hidden = 0;
	double lambda = -1;
	sk_enc_train_defaults(&tc);
	tc.seed = 1;
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		const char *nm = train_opts[idx].longname;
		if (select_option(&sel, nm, arg))
			continue;
		if (!strcmp(nm, "output"))
			out = arg;
		else if (!strcmp(nm, "encoder")) {
			if (sk_enc_parse(arg, &kind) < 0)
				sk_usage("%s", sk_errmsg());
		} else if (!strcmp(nm, "attr"))
			attr = arg;
		else if (!strcmp(nm, "epochs"))
			tc.epochs = (int)sk_arg_long("--epochs", arg, 0, 100000);
		else if (!strcmp(nm, "batch"))
			tc.batch = (int)sk_arg_long("--batch", arg, 1, 4096);
		else if (!strcmp(nm, "lr"))
			tc.lr = (float)sk_arg_double("--lr", arg, 0, 10);
		else if (!strcmp(nm, "wd"))
			tc.wd = (float)sk_arg_double("--wd", arg, 0, 10);
		else if (!strcmp(nm, "lambda"))
			lambda = sk_arg_double("--lambda", arg, 0, 1e6);
		else if (!strcmp(nm, "loss")) {
			if (strcmp(arg, "bce") && strcmp(arg, "mse"))
				sk_usage("--loss is bce or mse, not '%s'", arg);
			tc.mse = !strcmp(arg, "mse");
		} else if (!strcmp(nm, "seed"))
			tc.seed = (uint64_t)sk_arg_long("--seed", arg, 0, 1L << 62);
		else if (!strcmp(nm, "d"))
			d = (int)sk_arg_long("--d", arg, 1, 4096);
		else if (!strcmp(nm, "chunk"))
			chunk = (int)sk_arg_long("--chunk", arg, 1, 4096);
		else if (!strcmp(nm, "heads"))
			heads = (int)sk_arg_long("--heads", arg, 1, 64);
		else if (!strcmp(nm, "ln"))
			ln = (int)sk_arg_long("--ln", arg, 0, 1);
		else if (!strcmp(nm, "hidden"))
			hidden = (int)sk_arg_long("--hidden", arg, 1, 1 << 16);
		else if (!strcmp(nm, "label"))
			label = arg;
		else if (!strcmp(nm, "force"))
			force = 1;
	}
	if (!out)
		sk_usage("an output file is required (-o FILE)");
	sk_enc_defaults(&ec, kind);
	if (d)
		ec.d = d;
	if (chunk)
		ec.chunk = chunk;
	if (heads)
		ec.heads = heads;
	if (ln >= 0)
		ec.ln = ln;
	if (hidden)
		ec.hidden = hidden;
	if (kind == SK_ENC_SNE && ec.d % ec.heads)
		sk_usage("--d %d is not a multiple of --heads %d", ec.d, ec.heads);
	tc.lambda = (float)(lambda >= 0 ? lambda : kind == SK_ENC_SNE ? 1.0 : 0.0);
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, force);
	if (!of)
		sk_die_lib();
	sk_zoo z;
	int n, *sel_idx;
	read_zoos(&z, argc, argv, first);
	sel_idx = select_models(&z, &sel, &n);
	double *target = malloc(sizeof *target * (size_t)n);
	if (!target)
		sk_die("out of memory");
	{
		for (int k = 0; k < n; k++) {
			const char *v = sk_attrs_get(&z.m[sel_idx[k]].attrs, attr);
			char *end;
			if (!v) {
				sk_ofile_abort(of);
				sk_die("model %d has no attribute '%s'", sel_idx[k] + 1, attr);
			}
			target[k] = strtod(v, &end);
			if (end == v || *end || !(target[k] >= 0 && target[k] <= 1)) {
				sk_ofile_abort(of);
				sk_die("model %d: %s='%s' is not a number in [0, 1]", sel_idx[k] + 1, attr, v);
			}
		}
	}
	sk_encoder *e = sk_encoder_new(&ec, &z, sel_idx, n, tc.seed);
	if (!e) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	sk_info("%s encoder, %zu parameters, code size %d; %d models, target %s, lambda %g", sk_enc_name(kind),
	        sk_encoder_param_count(e), sk_encoder_code_size(e), n, attr, tc.lambda);
	clock_t t0 = clock();
	tc.on_epoch = on_epoch;
	tc.arg = &t0;
	if (sk_encoder_train(e, &z, sel_idx, n, target, &tc) < 0) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	sk_attrs a;
	sk_attrs_init(&a);
	sk_attrs_set(&a, "attr", attr);
	sk_attrs_set(&a, "zoo", label ? label : first < argc ? base_name(argv[first]) : "-");
	sk_attrs_setf(&a, "seed", "%llu", (unsigned long long)tc.seed);
	sk_attrs_setf(&a, "lambda", "%g", tc.lambda);
	sk_attrs_setf(&a, "epochs", "%d", tc.epochs);
	sk_attrs_setf(&a, "models", "%d", n);
	sk_attrs_set(&a, "command", cmdline);
	if (sk_encoder_write(sk_ofile_fp(of), e, &a) < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_attrs_free(&a);
	sk_encoder_free(e);
	free(target);
	free(sel_idx);
	sk_zoo_free(&z);
	return 0;
}

/* ---- zoo-encode encode / predict ---- */

static const sk_option run_opts[] = {
	{"output", 'o', "FILE", "output stream (default stdout)"},
	{"encoder", 'e', "FILE", "a trained encoder (from zoo-encode train; required)"},
	{"attr", 'a', "KEY", "attribute written as `truth` when every model has it (default: the encoder's)"},
	{"label", 0, "NAME", "name of this zoo in the output (default: first file name)"},
	{"inv-gap", 0, NULL, "predict: also measure mean |s(theta) - s(pi theta)| (attribute inv_gap)"},
	SELECT_OPTIONS,
	{"force", 'f', NULL, "write to a terminal"},
	{0},
};

static int cmd_apply(int argc, char **argv, int codes)
{
	sk_cli cli = {"zoo-encode", codes ? "encode -e ENCODER [options] [ZOO...]" : "predict -e ENCODER [options] [ZOO...]",
	              codes ? "write one fixed-length code per model" : "write the predicted attribute of each model",
	              run_opts, 0};
	select_opts sel = {{0}, 0, "all", 0.5, 0, 0, "run"};
	const char *out = "-", *encp = NULL, *attr = NULL, *label = NULL, *arg;
	int idx, first, force = 0, gap = 0;
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		const char *nm = run_opts[idx].longname;
		if (select_option(&sel, nm, arg))
			continue;
		if (!strcmp(nm, "output"))
			out = arg;
		else if (!strcmp(nm, "encoder"))
			encp = arg;
		else if (!strcmp(nm, "attr"))
			attr = arg;
		else if (!strcmp(nm, "label"))
			label = arg;
		else if (!strcmp(nm, "inv-gap"))
			gap = 1;
		else if (!strcmp(nm, "force"))
			force = 1;
	}
	if (!encp)
		sk_usage("an encoder is required (-e FILE)");
	if (encp && !strcmp(encp, "-") && first >= argc)
		sk_usage("the encoder and the zoo cannot both be stdin");
	sk_attrs ea;
	sk_attrs_init(&ea);
	sk_encoder *e = sk_encoder_load(encp, &ea);
	if (!e)
		sk_die_lib();
	if (!attr)
		attr = sk_attrs_get(&ea, "attr") ? sk_attrs_get(&ea, "attr") : "test_acc";
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, force);
	if (!of)
		sk_die_lib();
	sk_zoo z;
	int n, *sel_idx;
	read_zoos(&z, argc, argv, first);
	sel_idx = select_models(&z, &sel, &n);
	int cs = sk_encoder_code_size(e);
	float *code = codes ? sk_alloc_array((size_t)n * (size_t)cs, sizeof(float)) : NULL;
	float *s = sk_alloc_array((size_t)n, sizeof(float)), *truth = sk_alloc_array((size_t)n, sizeof(float));
	int32_t *ids = sk_alloc_array((size_t)n, sizeof(int32_t));
	if ((codes && !code) || !s || !truth || !ids)
		sk_die_lib();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sk_encoder_run(e, &z, sel_idx, n, code, s) < 0) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	sk_info("%d models encoded in %.3f s (%.1f models/s)", n, secs, secs > 0 ? n / secs : 0.0);
	int have_truth = 1;
	for (int k = 0; k < n; k++) {
		const char *v = sk_attrs_get(&z.m[sel_idx[k]].attrs, attr);
		char *end;
		ids[k] = sel_idx[k];
		s[k] = (float)(1.0 / (1.0 + exp(-(double)s[k])));
		if (!v || (truth[k] = strtof(v, &end), end == v || *end))
			have_truth = 0;
	}
	sk_attrs a;
	sk_attrs_init(&a);
	sk_attrs_set(&a, "encoder", sk_enc_name(sk_encoder_config(e)->kind));
	sk_attrs_set(&a, "attr", attr);
	sk_attrs_set(&a, "train_zoo", sk_attrs_get(&ea, "zoo") ? sk_attrs_get(&ea, "zoo") : "?");
	sk_attrs_set(&a, "test_zoo", label ? label : first < argc ? base_name(argv[first]) : "-");
	sk_attrs_set(&a, "seed", sk_attrs_get(&ea, "seed") ? sk_attrs_get(&ea, "seed") : "?");
	if (gap) {
		double g;
		if (sk_encoder_inv_gap(e, &z, sel_idx, n, 12345, &g) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		sk_attrs_setf(&a, "inv_gap", "%.6g", g);
		sk_info("mean |s(theta) - s(pi theta)| = %.6g", g);
	}
	FILE *f = sk_ofile_fp(of);
	int64_t sh[2] = {n, cs};
	int rc = 0;
	if (codes)
		rc = sk_write_record_raw(f, "codes", SK_F32, 2, sh, code, &a, 0);
	if (rc == 0)
		rc = sk_write_record_raw(f, "pred", SK_F32, 1, sh, s, &a, 0);
	if (rc == 0 && have_truth)
		rc = sk_write_record_raw(f, "truth", SK_F32, 1, sh, truth, &a, 0);
	if (rc == 0)
		rc = sk_write_record_raw(f, "ids", SK_I32, 1, sh, ids, &a, 0);
	if (rc < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_attrs_free(&a);
	sk_attrs_free(&ea);
	sk_free(code);
	sk_free(s);
	sk_free(truth);
	sk_free(ids);
	free(sel_idx);
	sk_zoo_free(&z);
	sk_encoder_free(e);
	return 0;
}

/* ---- zoo-encode run: one run of a zoo ---- */

static const sk_option zrun_opts[] = {
	{"output", 'o', "FILE", "the run's members, one model per checkpoint epoch (default stdout)"},
	{"data", 'D', "FILE", "training data stream (required)"},
	{"test", 'T', "FILE", "test data stream (required)"},
	{"seed", 's', "S", "run seed: draws every hyperparameter (default 1)"},
	{"arch", 'A', "NAME", "zoo-cnn (3 conv 16 3x3 stride 2, gap, dense 10) or zoo-cnn2 (conv 8, pool, "
	                      "conv 16, pool, gap, dense 32, dense 10) (default zoo-cnn)"},
	{"checkpoints", 'C', "E1,E2,...", "epochs at which members are kept, 0 = init (default 0,1,2,3,6,12,18)"},
	{"batch", 'b', "N", "batch size (default 64)"},
	{"train-examples", 0, "N", "use only the first N training examples (default all)"},
	{"test-examples", 0, "N", "evaluate on the first N test examples (default all)"},
	{"eval-train", 0, "N", "train metrics on the first N training examples kept (default 2000)"},
	{"label", 0, "NAME", "data set name stored in attribute `dataset` (default: data file name)"},
	{"force", 'f', NULL, "write to a terminal"},
	{0},
};

/* A member kept in memory until the run ends, so that every member's
 * attributes can say how the run ended. */
typedef struct member {
	sk_attrs attrs;
	float *w;           /* every parameter, stream order */
} member;

typedef struct zrun {
	sk_model *m, *ev;
	sk_dataset *train, *test;
	int64_t ntrain_eval, ntest;
	int ncheck, check[64];
	int written, failed;
	float *xb;
	member mem[64];
	sk_param **ps;      /* the evaluation model's parameters */
	int np;
	size_t nw;          /* their total size */
} zrun;

#define EVAL_BATCH 256

static int evaluate(zrun *z, const sk_dataset *d, int64_t n, double *loss, double *acc)
{
	sk_ctx c = {0};
	double ls = 0;
	int64_t correct = 0;
	int64_t idx[EVAL_BATCH];
	int32_t lab[EVAL_BATCH];
	if (sk_model_copy_params(z->ev, z->m, NULL) < 0)
		return -1;
	for (int64_t i0 = 0; i0 < n; i0 += EVAL_BATCH) {
		int b = (int)(n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH), cor = 0;
		for (int k = 0; k < b; k++)
			idx[k] = i0 + k;
		sk_dataset_gather(d, idx, b, z->xb, lab);
		const float *y = sk_seq_forward(z->ev->seq, &c, b, z->xb);
		if (!y)
			return -1;
		/* a diverged model's loss is not finite: recorded, not an error */
		ls += sk_loss_xent(b, z->ev->nclasses, y, lab, 1.0, NULL, &cor);
		correct += cor;
	}
	*loss = ls / (double)n;
	*acc = (double)correct / (double)n;
	return 0;
}

static int write_member(zrun *z, int epoch)
{
	double trl, tra, tel, tea;
	member *mb = &z->mem[z->written];
	size_t o = 0;
	if (evaluate(z, z->train, z->ntrain_eval, &trl, &tra) < 0 || evaluate(z, z->test, z->ntest, &tel, &tea) < 0)
		return -1;
	sk_attrs_init(&mb->attrs);
	if (sk_attrs_copy(&mb->attrs, &z->ev->attrs) < 0 || sk_attrs_setf(&mb->attrs, "epoch", "%d", epoch) < 0 ||
	    sk_attrs_setf(&mb->attrs, "train_loss", "%.6g", isfinite(trl) ? trl : 1e9) < 0 ||
	    sk_attrs_setf(&mb->attrs, "train_acc", "%.6g", tra) < 0 ||
	    sk_attrs_setf(&mb->attrs, "test_loss", "%.6g", isfinite(tel) ? tel : 1e9) < 0 ||
	    sk_attrs_setf(&mb->attrs, "test_acc", "%.6g", tea) < 0 ||
	    !(mb->w = sk_alloc_array(z->nw ? z->nw : 1, sizeof(float)))) {
		sk_attrs_free(&mb->attrs);
		return -1;
	}
	for (int i = 0; i < z->np; i++) {
		memcpy(mb->w + o, z->ps[i]->w, sizeof(float) * z->ps[i]->size);
		o += z->ps[i]->size;
	}
	z->written++;
	return 0;
}

static void zrun_epoch(const sk_epoch_stats *s, void *arg)
{
	zrun *z = arg;
	if (z->failed)
		return;
	for (int i = 0; i < z->ncheck; i++)
		if (z->check[i] == s->epoch && write_member(z, s->epoch) < 0)
			z->failed = 1;
}

static double log_uniform(sk_rng *r, double lo, double hi)
{
	return exp(log(lo) + (log(hi) - log(lo)) * sk_rng_next_uniform(r));
}

static int cmd_run(int argc, char **argv)
{
	sk_cli cli = {"zoo-encode", "run -D TRAIN -T TEST [options]",
	              "train one zoo run with hyperparameters drawn from a seed; one member per checkpoint", zrun_opts,
	              0};
	const char *out = "-", *datap = NULL, *testp = NULL, *arch = "zoo-cnn", *label = NULL, *arg;
	const char *checks = "0,1,2,3,6,12,18";
	int idx, first, force = 0, batch = 64;
	long ntrain = 0, ntest = 0, neval = 2000;
	uint64_t seed = 1;
	zrun z;
	memset(&z, 0, sizeof z);
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		const char *nm = zrun_opts[idx].longname;
		if (!strcmp(nm, "output"))
			out = arg;
		else if (!strcmp(nm, "data"))
			datap = arg;
		else if (!strcmp(nm, "test"))
			testp = arg;
		else if (!strcmp(nm, "seed"))
			seed = (uint64_t)sk_arg_long("--seed", arg, 0, 1L << 62);
		else if (!strcmp(nm, "arch")) {
			if (strcmp(arg, "zoo-cnn") && strcmp(arg, "zoo-cnn2"))
				sk_usage("--arch is zoo-cnn or zoo-cnn2, not '%s'", arg);
			arch = arg;
		} else if (!strcmp(nm, "checkpoints"))
			checks = arg;
		else if (!strcmp(nm, "batch"))
			batch = (int)sk_arg_long("--batch", arg, 1, 65536);
		else if (!strcmp(nm, "train-examples"))
			ntrain = sk_arg_long("--train-examples", arg, 1, 1L << 40);
		else if (!strcmp(nm, "test-examples"))
			ntest = sk_arg_long("--test-examples", arg, 1, 1L << 40);
		else if (!strcmp(nm, "eval-train"))
			neval = sk_arg_long("--eval-train", arg, 1, 1L << 40);
		else if (!strcmp(nm, "label"))
			label = arg;
		else if (!strcmp(nm, "force"))
			force = 1;
	}
	if (first < argc)
		sk_usage("unexpected operand '%s'", argv[first]);
	if (!datap || !testp)
		sk_usage("training and test data are required (-D TRAIN -T TEST)");
	{
		const char *p = checks;
		int last = -1;
		while (*p) {
			char *end;
			long v = strtol(p, &end, 10);
			if (end == p || v < 0 || v > 100000 || v <= last || (*end && *end != ',') || z.ncheck == 64)
				sk_usage("--checkpoints wants increasing epochs such as 0,1,2,3, not '%s'", checks);
			z.check[z.ncheck++] = (int)v;
			last = (int)v;
			p = *end ? end + 1 : end;
		}
		if (!z.ncheck)
			sk_usage("--checkpoints is empty");
	}
	/* data: the number of classes is the data's (labels 0..K-1; the `classes`
	 * attribute of the images, when present, names them all) */
	sk_dataset train, test, rest;
	int nclasses = 0;
	if (sk_dataset_read(datap, &train) < 0 || sk_dataset_read(testp, &test) < 0)
		sk_die_lib();
	if (!train.labels || !test.labels)
		sk_die("training and test data need labels");
	for (int k = 0; k < 2; k++) {
		const sk_dataset *d = k ? &test : &train;
		const char *names = sk_attrs_get(&d->attrs, "classes");
		for (int64_t i = 0; i < d->n; i++) {
			if (d->labels[i] < 0 || d->labels[i] > 65535)
				sk_die("%s: example %lld has label %d, outside 0..65535", k ? testp : datap, (long long)i,
				       d->labels[i]);
			if (d->labels[i] >= nclasses)
				nclasses = d->labels[i] + 1;
		}
		if (names) {
			int nn = 1;
			for (const char *c = names; *c; c++)
				nn += *c == ',';
			if (nn > nclasses)
				nclasses = nn;
		}
	}
	if (nclasses < 2)
		nclasses = 2;
	/* draw the hyperparameters: the Small CNN Zoo's families (PAPERS.md 5.7) */
	sk_rng r = sk_rng_make(seed, sk_rng_hash("zoo-run"));
	static const char *const acts[] = {"relu", "tanh"};
	static const char *const inits[] = {"he", "xavier", "normal"};
	static const char *const opts_[] = {"sgd", "adam", "rmsprop"};
	static const double fracs[] = {0.1, 0.25, 0.5, 1.0};
	/* ranges are our choice (PAPERS.md 5.7, 5.10), narrowed so that most
	 * short runs on small data learn something */
	const char *act = acts[sk_rng_next_below(&r, 2)];
	int ii = (int)sk_rng_next_below(&r, 3);
	const char *init = inits[ii];
	double init_scale = ii == 2 ? log_uniform(&r, 0.01, 0.5) : log_uniform(&r, 0.3, 2.0);
	int oi = (int)sk_rng_next_below(&r, 3);
	double lr = oi == 0 ? log_uniform(&r, 1e-3, 1e-1) : log_uniform(&r, 3e-4, 1e-2);
	double l2 = log_uniform(&r, 1e-8, 1e-2);
	double dropout = 0.3 * sk_rng_next_uniform(&r);
	double frac = fracs[sk_rng_next_below(&r, 4)];
	int epochs = z.check[z.ncheck - 1];
	char spec[1400], dl[64] = "", rec[256];
	if (dropout > 0.01)
		snprintf(dl, sizeof dl, "dropout p=%.3f\n", dropout);
	/* the recipe travels with every member; plain SGD has no momentum */
	snprintf(rec, sizeof rec, "train optimizer=%s%s lr=%.5g wd=%.5g batch=%d epochs=%d schedule=constant\n",
	         opts_[oi], oi == 0 ? " momentum=0" : "", lr, l2, batch, epochs);
	if (!strcmp(arch, "zoo-cnn"))
		snprintf(spec, sizeof spec,
		         "%sinput 1 28 28 scale=0.0078431373 mean=1\n"
		         "conv 16 k=3 stride=2 init=%s scale=%.5g\n%s\n%s"
		         "conv 16 k=3 stride=2 init=%s scale=%.5g\n%s\n%s"
		         "conv 16 k=3 stride=2 init=%s scale=%.5g\n%s\n%s"
		         "gap\nlinear %d init=%s scale=%.5g\n",
		         rec, init, init_scale, act, dl, init, init_scale, act, dl, init, init_scale, act, dl, nclasses,
		         init, init_scale);
	else
		snprintf(spec, sizeof spec,
		         "%sinput 1 28 28 scale=0.0078431373 mean=1\n"
		         "conv 8 k=3 init=%s scale=%.5g\n%s\npool max k=2\n%s"
		         "conv 16 k=3 init=%s scale=%.5g\n%s\npool max k=2\n%s"
		         "gap\nlinear 32 init=%s scale=%.5g\n%s\n%s"
		         "linear %d init=%s scale=%.5g\n",
		         rec, init, init_scale, act, dl, init, init_scale, act, dl, init, init_scale, act, dl, nclasses,
		         init, init_scale);
	if (ntrain && ntrain < train.n)
		train.n = ntrain;
	if (ntest && ntest < test.n)
		test.n = ntest;
	if (frac < 1) {
		if (sk_dataset_split(&train, 1 - frac, seed, &rest) < 0)
			sk_die_lib();
		sk_dataset_free(&rest);
	}
	z.train = &train;
	z.test = &test;
	z.ntrain_eval = train.n < neval ? train.n : neval;
	z.ntest = test.n;
	if (!(z.m = sk_model_from_text(spec, arch)) || !(z.ev = sk_model_from_text(spec, arch)) ||
	    sk_model_init(z.m, seed) < 0 || sk_seq_setup(z.ev->seq, EVAL_BATCH) < 0)
		sk_die_lib();
	if (!(z.xb = sk_alloc_array(sk_shape_size(z.m->in) * EVAL_BATCH, sizeof(float))))
		sk_die_lib();
	if ((z.np = sk_model_params(z.ev, &z.ps)) < 0)
		sk_die_lib();
	for (int i = 0; i < z.np; i++)
		z.nw += z.ps[i]->size;
	{
		const sk_shape *in = &z.m->in;
		int same = train.ndim == in->n && test.ndim == in->n;
		for (int i = 0; same && i < in->n; i++)
			same = train.shape[i] == in->d[i] && test.shape[i] == in->d[i];
		if (!same)
			sk_die("the %s architecture needs 1x28x28 examples", arch);
	}
	sk_attrs *a = &z.ev->attrs;
	if (sk_attrs_setf(a, "run", "%s-%llu", arch, (unsigned long long)seed) < 0 || sk_attrs_set(a, "arch", arch) < 0 ||
	    sk_attrs_set(a, "dataset", label ? label : base_name(datap)) < 0 ||
	    sk_attrs_setf(a, "seed", "%llu", (unsigned long long)seed) < 0 || sk_attrs_set(a, "activation", act) < 0 ||
	    sk_attrs_set(a, "w_init", init) < 0 || sk_attrs_setf(a, "init_scale", "%.5g", init_scale) < 0 ||
	    sk_attrs_setf(a, "learning_rate", "%.5g", lr) < 0 || sk_attrs_setf(a, "l2reg", "%.5g", l2) < 0 ||
	    sk_attrs_setf(a, "dropout", "%.4g", dropout > 0.01 ? dropout : 0.0) < 0 ||
	    sk_attrs_set(a, "optimizer", opts_[oi]) < 0 || sk_attrs_setf(a, "train_fraction", "%g", frac) < 0 ||
	    sk_attrs_setf(a, "train_examples", "%lld", (long long)train.n) < 0 ||
	    sk_attrs_setf(a, "classes", "%d", nclasses) < 0 || sk_attrs_setf(a, "batch", "%d", batch) < 0 ||
	    sk_attrs_set(a, "command", cmdline) < 0)
		sk_die_lib();
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, force);
	if (!of)
		sk_die_lib();
	if (z.check[0] == 0 && write_member(&z, 0) < 0) {
		sk_ofile_abort(of);
		sk_die_lib();
	}
	/* a run ends completed, or diverged: a non-finite loss stops it, as in
	 * the original zoo, and its members are kept and marked; any other error
	 * fails the run (no output) */
	int64_t diverged = 0;
	char why[512] = "";
	if (epochs > 0) {
		sk_train_config tc;
		sk_recipe_extras x;
		sk_recipe rc;
		sk_train_defaults(&tc);
		sk_recipe_extras_defaults(&x);
		sk_recipe_init(&rc);
		if (sk_recipe_from_spec(&rc, z.m->spec) < 0 || sk_recipe_apply(&rc, &tc, &x) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		sk_recipe_free(&rc);
		tc.threads = 1;
		tc.seed = seed;
		tc.checkpoint = NULL;
		tc.command = cmdline;
		tc.on_epoch = zrun_epoch;
		tc.arg = &z;
		sk_trainer *t = sk_trainer_new(z.m, &tc, &train, NULL);
		if (!t) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		int st = sk_trainer_run(t);
		diverged = sk_trainer_diverged(t);
		snprintf(why, sizeof why, "%s", sk_errmsg());
		sk_trainer_free(t);
		if (z.failed || (st < 0 && !diverged)) {
			sk_ofile_abort(of);
			sk_die("run %llu: %s", (unsigned long long)seed, why);
		}
		if (diverged)
			sk_warn("run %llu diverged: %s (%d member%s kept)", (unsigned long long)seed, why, z.written,
			        z.written == 1 ? "" : "s");
	}
	/* the members, each saying how the run ended */
	for (int k = 0; k < z.written; k++) {
		member *mb = &z.mem[k];
		size_t o = 0;
		for (int i = 0; i < z.np; i++) {
			memcpy(z.ps[i]->w, mb->w + o, sizeof(float) * z.ps[i]->size);
			o += z.ps[i]->size;
		}
		sk_attrs_free(&z.ev->attrs);
		z.ev->attrs = mb->attrs;
		sk_attrs_init(&mb->attrs);
		if (sk_attrs_set(&z.ev->attrs, "run_status", diverged ? "diverged" : "completed") < 0 ||
		    (diverged && sk_attrs_setf(&z.ev->attrs, "diverged_step", "%lld", (long long)diverged) < 0) ||
		    sk_model_write(sk_ofile_fp(of), z.ev, 0) < 0) {
			sk_ofile_abort(of);
			sk_die_lib();
		}
		sk_free(mb->w);
	}
	if (sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_info("run %llu: %d members (%s %s %s lr %.3g%s)", (unsigned long long)seed, z.written, arch, act,
	        opts_[oi], lr, diverged ? ", diverged" : "");
	free(z.ps);
	sk_free(z.xb);
	sk_model_free(z.m);
	sk_model_free(z.ev);
	sk_dataset_free(&train);
	sk_dataset_free(&test);
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
	{"encode", NULL, "write one fixed-length code per model as a stream"},
	{"predict", NULL, "write the predicted attribute of each model as a stream"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: zoo-encode COMMAND [options] [ZOO...]\n"
	           "Model zoos and set-based neural network encoding (SNE).\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'zoo-encode COMMAND --help' lists a command's options.\n"
	           "Exit status: 0 success, 1 data or runtime error, 2 usage error.\nSee zoo-encode(1).\n");
}

int main(int argc, char **argv)
{
	static sk_cli top = {"zoo-encode", "COMMAND [options]", "model zoos and SNE", NULL, 0};
	sk_cli_init(&top, argc, argv);
	cmdline = sk_cmdline(argc, argv);
	sk_blas_threads(1);   /* small matrices: one thread each; run jobs in parallel instead */
	if (argc < 2)
		sk_usage("a command is required: run, train, encode or predict (try --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		static const sk_option none[] = {{0}};
		static sk_cli v = {"zoo-encode", "", "", none, 0};
		char *vargv[] = {argv[0], "--version", NULL};
		int fi;
		const char *a;
		sk_cli_init(&v, 2, vargv);
		sk_cli_next(&v, 2, vargv, &a, &fi);   /* prints the versions and exits */
		return 0;
	}
	if (!strcmp(argv[1], "encode"))
		return cmd_apply(argc - 1, argv + 1, 1);
	if (!strcmp(argv[1], "predict"))
		return cmd_apply(argc - 1, argv + 1, 0);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (commands[i].fn && !strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	sk_usage("unknown command '%s' (known: run, train, encode, predict)", argv[1]);
}
