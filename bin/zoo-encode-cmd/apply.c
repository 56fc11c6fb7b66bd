/* zoo-encode encode, predict: one code, or the predicted attribute, per
 * model of a zoo, written as a prediction file (sk_zoo_pred_write). */
#include "zoo-encode.h"
#include "sk_sne.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	              .summary = codes ? "write one fixed-length code per model"
	                               : "write the predicted attribute of each model"};
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

int cmd_encode(int argc, char **argv) { return cmd_apply(argc, argv, 1); }
int cmd_predict(int argc, char **argv) { return cmd_apply(argc, argv, 0); }

