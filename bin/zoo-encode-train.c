/* zoo-encode train: fit an encoder (sne, statnn, mlp) on a zoo so that it
 * predicts an attribute of each model (lib/methods/sne.c). */
#include "zoo-encode.h"
#include "sk_sne.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_epoch(int epoch, int epochs, double loss, double inv, void *arg)
{
	sk_info("epoch %d/%d loss %.5f inv %.3g (%.1f s)", epoch, epochs, loss, inv,
	        (double)(clock() - *(clock_t *)arg) / CLOCKS_PER_SEC);
}

int cmd_train(int argc, char **argv)
{
	enum { T_ENC = O_SHARED, T_ATTR, T_EPOCHS, T_BATCH, T_LR, T_WD, T_LAMBDA, T_LOSS, T_SEED, T_D, T_CHUNK,
	       T_HEADS, T_LN, T_HIDDEN, T_LABEL, T_SEL, T_N = T_SEL + NSELECT };
	static const sk_option opts[] = {
		SHARED_OPTIONS("the trained encoder (a stream; required)"),
		[T_ENC] = {"encoder", 'E', "KIND", "sne, statnn or mlp (default sne)"},
		[T_ATTR] = {"attr", 'a', "KEY", "attribute to predict, in [0, 1] (default test_acc)"},
		[T_EPOCHS] = SK_OPT_EPOCHS("training epochs (default 30)"),
		[T_BATCH] = SK_OPT_BATCH("models per step (default 16)"),
		[T_LR] = {"lr", 0, "LR", "Adam learning rate (default 0.001)"},
		[T_WD] = {"wd", 0, "WD", "weight decay (default 0)"},
		[T_LAMBDA] = {"lambda", 0, "L", "logit-invariance weight: (s(theta) - s(pi theta))^2 (default 1 for sne, "
		                                "0 otherwise)"},
		[T_LOSS] = {"loss", 0, "L", "bce (on sigmoid(s)) or mse (default bce)"},
		[T_SEED] = SK_OPT_SEED("seed of initialisation, shuffling and permutations (default 1)"),
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
			case T_SEED: tc.seed = sk_arg_seed("--seed", arg); break;
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
	if (sk_attrs_set(&a, "attr", attr) < 0 ||
	    sk_attrs_set(&a, "zoo", zoo_name(label, c.first < argc ? argv[c.first] : "-")) < 0 ||
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

