/* snet-infer: run a model over a data stream: logits, probabilities,
 * predicted labels or a layer's features as a stream, or metrics (--eval).
 *
 * Bounded memory: the input is read chunk by chunk and the output written
 * as it goes.  Exit 0 ok, 1 error, 2 usage. */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_infer.h"
#include "sk_model.h"
#include "sk_stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { O_MODEL, O_KIND, O_LAYER, O_EVAL, O_CONFUSION, O_BATCH, O_THREADS, O_OUTPUT, O_COMPRESS, O_FORCE, O_DATASET, O_N };

static const sk_option opts[] = {
	[O_MODEL] = SK_OPT_MODEL("model stream or spec file (required)"),
	[O_KIND] = {"kind", 0, "WHAT", "logits, probs or labels (default logits)"},
	[O_LAYER] = {"layer", 'l', "NAME", "write the output of layer NAME instead (features)"},
	[O_EVAL] = {"eval", 0, NULL, "print metrics (accuracy, loss, n) on stdout instead of a stream"},
	[O_CONFUSION] = {"confusion", 0, NULL, "with --eval: also print the confusion matrix (rows: true label)"},
	[O_BATCH] = SK_OPT_BATCH("examples per forward pass (default 256)"),
	[O_THREADS] = SK_OPT_THREADS("worker threads (default: all cores)"),
	[O_OUTPUT] = SK_OPT_OUTPUT("write the stream to OUT atomically (default - = stdout)"),
	[O_COMPRESS] = SK_OPT_COMPRESS("deflate the output records (1..9; default 0 = raw)"),
	[O_FORCE] = SK_OPT_FORCE,
	[O_DATASET] = {"dataset", 0, NULL, "with --layer: write the features as a data set (images shaped like the layer's output, "
	                "with the labels) that snet-train reads"},
	[O_N] = {0, 0, 0, 0},
};

int main(int argc, char **argv)
{
	sk_cli cli = {.prog = "snet-infer",
	              .synopsis = "-m MODEL [--kind logits|probs|labels] [--layer NAME] [--eval [--confusion]] "
	                          "[--batch N] [-z LEVEL] [-o OUT] [DATA|-]",
	              .summary = "Run a model over a data stream (stdin when DATA is absent or '-').",
	              .opts = opts};
	sk_infer_config c;
	sk_infer_result r;
	const char *arg, *model_path = NULL, *data_path, *out_path = "-";
	int idx, first, eval = 0, confusion = 0, force = 0, output_given = 0;
	sk_model *m;
	sk_chunks *in;
	sk_ofile *of = NULL;

	sk_infer_defaults(&c);
	c.threads = sk_ncores();
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (idx) {
		case O_MODEL: model_path = arg; break;
		case O_KIND:
			output_given = 1;
			/* in the order of SK_OUT_LOGITS, SK_OUT_PROBS, SK_OUT_LABELS */
			c.output = sk_arg_choice("--kind", arg, (const char *const[]){"logits", "probs", "labels", NULL});
			break;
		case O_LAYER: c.layer = arg; c.output = SK_OUT_FEATURES; break;
		case O_EVAL: eval = 1; break;
		case O_CONFUSION: confusion = 1; break;
		case O_BATCH: c.batch = (int)sk_arg_long("--batch", arg, 1, 1 << 20); break;
		case O_THREADS: c.threads = (int)sk_arg_long("--threads", arg, 1, 256); break;
		case O_OUTPUT: out_path = arg; break;
		case O_COMPRESS: c.level = sk_arg_level(arg); break;
		case O_FORCE: force = 1; break;
		case O_DATASET: c.dataset = 1; break;
		}
	}
	if (!model_path)
		sk_usage("-m MODEL is required (try --help)");
	data_path = sk_cli_input(argc, argv, first);
	if (!strcmp(model_path, "-") && !strcmp(data_path, "-"))
		sk_usage("the model and the data cannot both be stdin");
	if (output_given && c.layer)
		sk_usage("--kind and --layer exclude each other");
	if (c.dataset && !c.layer)
		sk_usage("--dataset applies to --layer");
	if (confusion && !eval)
		sk_usage("--confusion needs --eval");
	if (eval && (output_given || c.layer))
		sk_usage("--eval prints metrics; it excludes --kind and --layer");
	if (eval && strcmp(out_path, "-"))
		sk_usage("--eval prints metrics on stdout; it excludes --output");

	if (!(m = sk_model_load(model_path)))
		sk_die_lib();
	if (!sk_attrs_get(&m->attrs, "records"))
		sk_warn("%s is a spec, not a trained model: its parameters are untrained (seed 1)", model_path);
	if (!sk_attrs_get(&m->attrs, "records") && sk_model_init(m, 1) < 0)
		sk_die_lib();
	if (c.layer && !sk_seq_find(m->seq, c.layer))
		sk_die("the model has no layer '%s'", c.layer);
	if (!(in = sk_chunks_open(data_path)))
		sk_die_lib();
	if (!eval) {
		sk_ofile_install_signals();
		if (!(of = sk_ofile_open(out_path, force)))
			sk_die_lib();
		c.out = sk_ofile_fp(of);
	}
	c.metrics = eval;
	if (sk_infer_run(m, in, &c, &r) < 0) {
		if (of)
			sk_ofile_abort(of);
		sk_die_lib();
	}
	if (of && sk_ofile_commit(of) < 0)
		sk_die_lib();
	if (eval) {
		if (r.nlabelled == 0)
			sk_die("no examples to evaluate");
		printf("accuracy %.4f\n", (double)r.correct / (double)r.nlabelled);
		printf("loss %.4f\n", r.loss / (double)r.nlabelled);
		printf("n %lld\n", (long long)r.nlabelled);
		if (confusion) {
			/* one line per true label: "confusion LABEL count-per-predicted-label..." */
			for (int i = 0; i < r.k; i++) {
				printf("confusion %d", i);
				for (int j = 0; j < r.k; j++)
					printf(" %lld", (long long)r.confusion[(size_t)i * (size_t)r.k + (size_t)j]);
				printf("\n");
			}
		}
		if (fflush(stdout) != 0)
			sk_die("write error on stdout");
	}
	free(r.confusion);
	sk_chunks_close(in);
	sk_model_free(m);
	return 0;
}
