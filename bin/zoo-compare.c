/* zoo-compare: evaluate and compare predictions and codes of model zoos
 * (from zoo-encode predict / encode): Kendall's tau-b, Spearman, R^2 and
 * RMSE per file; the ranking of the models; nearest models by code; a
 * cross-evaluation table (rows x train->test zoo, mean and std over seeds).
 * Plain text tables on stdout, or a stream with --stream.  The evaluation
 * is lib/methods/zooeval.c (sk_zoo.h). */
#include "sk_cli.h"
#include "sk_stream.h"
#include "sk_zoo.h"

#include <stdio.h>
#include <stdlib.h>

enum { O_TABLE, O_ROWS, O_METRIC, O_RANK, O_TOP, O_NEAREST, O_QUERY, O_STREAM, O_OUTPUT, O_COMPRESS, O_FORCE, O_N };

static const sk_option opts[] = {
	[O_TABLE] = {"table", 0, NULL, "cross-evaluation table: one row per --rows value, one column per train->test pair"},
	[O_ROWS] = {"rows", 0, "ATTR", "attribute naming the table's rows (default encoder)"},
	[O_METRIC] = {"metric", 0, "M", "metric of the table: tau, spearman, r2 or rmse (default tau)"},
	[O_RANK] = {"rank", 0, NULL, "list the models of each file ranked by prediction"},
	[O_TOP] = {"top", 0, "N", "with --rank: only the first N models (default all)"},
	[O_NEAREST] = {"nearest", 0, "K", "with codes: the K nearest models of each model (Euclidean distance)"},
	[O_QUERY] = {"query", 0, "ID", "with --nearest: only for the model with this id"},
	[O_STREAM] = {"stream", 0, NULL, "write the results as a stream instead of text"},
	[O_OUTPUT] = SK_OPT_OUTPUT("output (default stdout)"),
	[O_COMPRESS] = SK_OPT_COMPRESS("with --stream: deflate level of the records, 0 = raw (default 0)"),
	[O_FORCE] = SK_OPT_FORCE,
	[O_N] = {0},
};

int main(int argc, char **argv)
{
	sk_cli cli = {.prog = "zoo-compare", .synopsis = "[options] PRED...", .opts = opts,
	              .summary = "Kendall tau, Spearman, R^2, RMSE, rankings, nearest models and cross-evaluation tables"};
	const char *arg, *out = "-", *rows = "encoder", *query = NULL;
	int idx, first, table = 0, rank = 0, top = 0, nearest = 0, stream = 0, force = 0, metric = 0, level = 0, rc;
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0)
		switch (idx) {
		case O_TABLE: table = 1; break;
		case O_ROWS: rows = arg; break;
		case O_METRIC: if ((metric = sk_zoo_metric_parse(arg)) < 0) sk_usage("%s", sk_errmsg()); break;
		case O_RANK: rank = 1; break;
		case O_TOP: top = (int)sk_arg_long("--top", arg, 1, 1L << 30); break;
		case O_NEAREST: nearest = (int)sk_arg_long("--nearest", arg, 1, 1L << 20); break;
		case O_QUERY: query = arg; break;
		case O_STREAM: stream = 1; break;
		case O_OUTPUT: out = arg; break;
		case O_COMPRESS: level = sk_arg_level(arg); break;
		case O_FORCE: force = 1; break;
		}
	if (first >= argc)
		sk_usage("at least one prediction file is required (from zoo-encode predict)");
	if (query && !nearest)
		sk_usage("--query needs --nearest");
	if (level && !stream)
		sk_usage("--compress applies to --stream output only");
	int nf = argc - first;
	sk_zoo_pred *pf = calloc((size_t)nf, sizeof *pf);
	if (!pf)
		sk_die("out of memory");
	for (int i = 0; i < nf; i++) {
		if (sk_zoo_pred_read(argv[first + i], &pf[i]) < 0)
			sk_die_lib();
		if (nearest && !pf[i].codes)
			sk_die("%s: --nearest needs codes (write them with zoo-encode encode)", pf[i].name);
	}
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, stream ? force : 1);
	if (!of)
		sk_die_lib();
	FILE *f = sk_ofile_fp(of);
	level = stream ? level : -1;   /* the library's "text" */
	if (table)
		rc = sk_zoo_compare_table(f, pf, nf, rows, metric, level);
	else if (rank)
		rc = sk_zoo_compare_rank(f, pf, nf, top, level);
	else if (nearest)
		rc = sk_zoo_compare_nearest(f, pf, nf, nearest, query, level);
	else
		rc = sk_zoo_compare_metrics(f, pf, nf, level);
	if (rc < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	for (int i = 0; i < nf; i++)
		sk_zoo_pred_free(&pf[i]);
	free(pf);
	return 0;
}
