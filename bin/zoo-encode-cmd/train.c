/* zoo-encode train: fit an encoder (sne, statnn, mlp, hparams) on a zoo so
 * that it predicts an attribute of each model (lib/methods/sne.c); with
 * --split train, validation runs held out of the training runs choose the
 * epoch kept and, among several --lr or --lambda values, the one kept. */
#include "zoo-encode.h"
#include "sk_sne.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRID_MAX 8
#define VAL_FRAC 0.2   /* NFN's split: 20% of the training runs validate */

static void on_epoch(int epoch, int epochs, double loss, double inv, double vtau, void *arg)
{
	char v[32] = "";
	if (!isnan(vtau))
		snprintf(v, sizeof v, " val tau %.4f", vtau);
	sk_info("epoch %d/%d loss %.5f inv %.3g%s (%.1f s)", epoch, epochs, loss, inv, v,
	        (double)(clock() - *(clock_t *)arg) / CLOCKS_PER_SEC);
}

/* "V1,V2,..." into v[], each in [lo, hi]; the count. */
static int parse_list(const char *opt, const char *arg, double *v, double lo, double hi)
{
	char buf[256], *p = buf;
	int n = 0;
	if (strlen(arg) >= sizeof buf)
		sk_usage("%s: list too long", opt);
	strcpy(buf, arg);
	for (;;) {
		size_t len = strcspn(p, ",");
		int last = p[len] == 0;
		if (n == GRID_MAX)
			sk_usage("%s: at most %d values", opt, GRID_MAX);
		p[len] = 0;
		v[n++] = sk_arg_double(opt, p, lo, hi);
		if (last)
			break;
		p += len + 1;
	}
	return n;
}

static double wall_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int cmd_train(int argc, char **argv)
{
	enum { T_ENC = O_SHARED, T_ATTR, T_EPOCHS, T_BATCH, T_LR, T_WD, T_LAMBDA, T_LOSS, T_SEED, T_D, T_CHUNK,
	       T_HEADS, T_LN, T_VALUES, T_ABLATE, T_HIDDEN, T_LABEL, T_SEL, T_N = T_SEL + NSELECT };
	static const sk_option opts[] = {
		SHARED_OPTIONS("the trained encoder (a stream; required)"),
		[T_ENC] = {"encoder", 'E', "KIND", "sne, statnn, mlp or hparams (default sne)"},
		[T_ATTR] = {"attr", 'a', "KEY", "attribute to predict, in [0, 1] (default test_acc)"},
		[T_EPOCHS] = SK_OPT_EPOCHS("training epochs; with validation runs, the best one is kept (default 30)"),
		[T_BATCH] = SK_OPT_BATCH("models per step (default 16)"),
		[T_LR] = {"lr", 0, "LR[,LR...]", "Adam learning rate; several: the best on the validation runs (default 0.001)"},
		[T_WD] = {"wd", 0, "WD", "weight decay (default 0)"},
		[T_LAMBDA] = {"lambda", 0, "L[,L...]", "logit-invariance weight: (s(theta) - s(pi theta))^2; several: the best "
		                                       "on the validation runs (default 1 for sne, 0 otherwise)"},
		[T_LOSS] = {"loss", 0, "L", "bce (on sigmoid(s)) or mse (default bce)"},
		[T_SEED] = SK_OPT_SEED("seed of initialisation, shuffling and permutations (default 1)"),
		[T_D] = {"d", 0, "N", "sne: width of the set blocks (default 32)"},
		[T_CHUNK] = {"chunk", 0, "N", "sne: elements per chunk (default 16)"},
		[T_HEADS] = {"heads", 0, "N", "sne: attention heads (default 4)"},
		[T_LN] = {"ln", 0, "0|1", "sne: layer normalisation in the set blocks (default 1)"},
		[T_VALUES] = {"values", 0, "N", "sne: values per element; larger kernels span several (default: the "
		                                "largest kernel of the zoo)"},
		[T_ABLATE] = {"ablate", 0, "LIST", "sne: parts switched off: pe-element, pe-chunk, pe-layer, layer-type "
		                                   "(default none)"},
		[T_HIDDEN] = {"hidden", 0, "N", "statnn, mlp, hparams: hidden width (default 1000 statnn, 256 others)"},
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
	int idx, d = 0, chunk = 0, heads = 0, ln = -1, hidden = 0, values = 0, ablate = 0, n, nv = 0, *sel, *vsel = NULL;
	int nlr = 0, nlam = 0;
	double lrs[GRID_MAX], lams[GRID_MAX], *target, *vtarget = NULL;
	sk_zoo_select_defaults(&c.sel);
	c.sel.val_frac = -1;   /* not given */
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
			case T_LR: nlr = parse_list("--lr", arg, lrs, 0, 10); break;
			case T_WD: tc.wd = (float)sk_arg_double("--wd", arg, 0, 10); break;
			case T_LAMBDA: nlam = parse_list("--lambda", arg, lams, 0, 1e6); break;
			case T_LOSS:
				if (strcmp(arg, "bce") && strcmp(arg, "mse"))
					sk_usage("--loss is bce or mse, not '%s'", arg);
				tc.mse = !strcmp(arg, "mse");
				break;
			case T_SEED: tc.seed = sk_arg_seed("--seed", arg); break;
			case T_D: d = (int)sk_arg_long("--d", arg, 1, 4096); break;
			case T_CHUNK: chunk = (int)sk_arg_long("--chunk", arg, 1, 4096); break;
			case T_HEADS: heads = (int)sk_arg_long("--heads", arg, 1, 64); break;
			case T_LN: ln = (int)sk_arg_long("--ln", arg, 0, 1); break;
			case T_VALUES: values = (int)sk_arg_long("--values", arg, 1, 4096); break;
			case T_ABLATE: if (sk_enc_parse_ablate(arg, &ablate) < 0) sk_usage("--ablate: %s", sk_errmsg()); break;
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
	ec.values = values;
	ec.ablate = ablate;
	if (kind == SK_ENC_SNE && ec.d % ec.heads)
		sk_usage("--d %d is not a multiple of --heads %d", ec.d, ec.heads);
	/* validation runs: held out of the training part only, never test runs */
	int trainpart = !strcmp(c.sel.part, "train");
	if (!trainpart && c.sel.val_frac > 0)
		sk_usage("--val-frac holds validation runs out of --split train only");
	c.sel.val_frac = c.sel.val_frac >= 0 ? c.sel.val_frac : trainpart ? VAL_FRAC : 0;
	if (!nlr)
		lrs[nlr++] = tc.lr;
	if (!nlam)
		lams[nlam++] = kind == SK_ENC_SNE ? 1.0 : 0.0;
	if (nlr * nlam > 1 && !(trainpart && c.sel.val_frac > 0))
		sk_usage("choosing among several --lr or --lambda values needs validation runs (--split train, --val-frac > 0)");
	sk_zoo z;
	sk_ofile *of = open_zoo(&c, argc, argv, &z, &sel, &n);
	if (!(target = sk_alloc_array((size_t)n, sizeof *target)) || sk_zoo_attr(&z, sel, n, attr, 0, 1, target) < 0)
		sk_die_lib();
	if (trainpart && c.sel.val_frac > 0) {
		sk_zoo_select vs = c.sel;
		vs.part = "val";
		if (!(vsel = sk_zoo_select_models(&z, &vs, &nv)))
			sk_die("no validation run: --val-frac %g holds out none of the training runs (raise it, or give "
			       "--val-frac 0)", c.sel.val_frac);
		if (!(vtarget = sk_alloc_array((size_t)nv, sizeof *vtarget)) ||
		    sk_zoo_attr(&z, vsel, nv, attr, 0, 1, vtarget) < 0)
			sk_die_lib();
	}
	/* the grid of learning rates and penalty weights, each from the same seed */
	sk_encoder *best = NULL;
	sk_enc_val v, bv = {.best_tau = NAN};
	double blr = 0, blam = 0, w0 = wall_seconds();
	clock_t t0 = clock();
	char grid[GRID_MAX * GRID_MAX * 48 + 1] = "";
	size_t glen = 0;
	tc.on_epoch = on_epoch;
	tc.arg = &t0;
	for (int i = 0; i < nlr * nlam; i++) {
		sk_encoder *e = sk_encoder_new(&ec, &z, sel, n, tc.seed);
		tc.lr = (float)lrs[i / nlam];
		tc.lambda = (float)lams[i % nlam];
		v = (sk_enc_val){.idx = vsel, .n = nv, .target = vtarget, .best_tau = NAN};
		tc.val = nv ? &v : NULL;
		if (!e)
			sk_die_lib();
		if (i == 0)
			sk_info("%s encoder, %zu parameters, code size %d; %d models (%d validating), target %s",
			        sk_enc_name(kind), sk_encoder_param_count(e), sk_encoder_code_size(e), n, nv, attr);
		if (sk_encoder_train(e, &z, sel, n, target, &tc) < 0)
			sk_die_lib();
		if (nv) {
			sk_info("lr %g lambda %g: validation tau %.4f at epoch %d", tc.lr, tc.lambda, v.best_tau, v.best_epoch);
			int k = snprintf(grid + glen, sizeof grid - glen, "%slr=%g,lambda=%g:%.4f@%d", glen ? ";" : "", tc.lr,
			                 tc.lambda, v.best_tau, v.best_epoch);
			glen = k > 0 && glen + (size_t)k < sizeof grid ? glen + (size_t)k : strlen(grid);
		}
		if (!best || (!isnan(v.best_tau) && (isnan(bv.best_tau) || v.best_tau > bv.best_tau))) {
			sk_encoder_free(best);
			best = e, bv = v, blr = tc.lr, blam = tc.lambda;
		} else
			sk_encoder_free(e);
	}
	sk_info("trained in %.1f s wall, %.1f s CPU", wall_seconds() - w0, (double)(clock() - t0) / CLOCKS_PER_SEC);
	sk_attrs a;
	sk_attrs_init(&a);
	if (sk_attrs_set(&a, "attr", attr) < 0 ||
	    sk_attrs_set(&a, "zoo", zoo_name(label, c.first < argc ? argv[c.first] : "-")) < 0 ||
	    sk_attrs_setf(&a, "seed", "%llu", (unsigned long long)tc.seed) < 0 ||
	    sk_attrs_setf(&a, "lambda", "%g", blam) < 0 || sk_attrs_setf(&a, "lr", "%g", blr) < 0 ||
	    sk_attrs_setf(&a, "epochs", "%d", tc.epochs) < 0 ||
	    sk_attrs_setf(&a, "epoch_kept", "%d", nv ? bv.best_epoch : tc.epochs) < 0 ||
	    sk_attrs_setf(&a, "models", "%d", n) < 0 ||
	    (nv && (sk_attrs_setf(&a, "val_models", "%d", nv) < 0 ||
	            sk_attrs_setf(&a, "val_frac", "%g", c.sel.val_frac) < 0 ||
	            sk_attrs_setf(&a, "val_tau", "%.6g", bv.best_tau) < 0 || sk_attrs_set(&a, "val_grid", grid) < 0)) ||
	    sk_attrs_set(&a, "command", cmdline) < 0 || sk_encoder_write(sk_ofile_fp(of), best, &a, c.level) < 0 ||
	    sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_attrs_free(&a);
	sk_encoder_free(best);
	sk_free(target);
	sk_free(vtarget);
	free(sel);
	free(vsel);
	sk_zoo_free(&z);
	return 0;
}
