/* zoo-compare: evaluate and compare predictions and codes of model zoos
 * (from zoo-encode predict / encode): Kendall's tau-b, Spearman, R^2 and
 * RMSE per file; the ranking of the models; nearest models by code; a
 * cross-evaluation table (rows x train->test zoo, mean and std over seeds).
 * Plain text tables on stdout, or a stream with --stream. */
#include "sk_cli.h"
#include "sk_stream.h"
#include "sk_zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sk_option opts[] = {
	{"table", 't', NULL, "cross-evaluation table: one row per --rows value, one column per train->test pair"},
	{"rows", 0, "ATTR", "attribute naming the table's rows (default encoder)"},
	{"metric", 'm', "M", "metric of the table: tau, spearman, r2 or rmse (default tau)"},
	{"rank", 'r', NULL, "list the models of each file ranked by prediction"},
	{"top", 0, "N", "with --rank: only the first N models (default all)"},
	{"nearest", 'k', "K", "with codes: the K nearest models of each model (Euclidean distance)"},
	{"query", 0, "ID", "with --nearest: only for the model with this id"},
	{"stream", 0, NULL, "write the results as a stream instead of text"},
	{"output", 'o', "FILE", "output (default stdout)"},
	{"force", 'f', NULL, "write a stream to a terminal"},
	{0},
};

typedef struct pfile {
	char name[256];
	int n, cs, nids;
	float *pred, *truth, *codes;
	int32_t *ids;
	sk_attrs attrs;
	double m[4];    /* tau, spearman, r2, rmse */
} pfile;

static void load(const char *path, pfile *p)
{
	sk_reader *r = sk_reader_open(path);
	sk_header h;
	int st;
	memset(&h, 0, sizeof h);
	memset(p, 0, sizeof *p);
	sk_attrs_init(&p->attrs);
	snprintf(p->name, sizeof p->name, "%s", path);
	if (!r)
		sk_die_lib();
	while ((st = sk_reader_next(r, &h)) > 0) {
		float **dst = NULL;
		int64_t n = h.shape[0];
		if (!strcmp(h.name, "pred"))
			dst = &p->pred;
		else if (!strcmp(h.name, "truth"))
			dst = &p->truth;
		else if (!strcmp(h.name, "codes"))
			dst = &p->codes;
		else if (!strcmp(h.name, "ids")) {
			if (h.dtype != SK_I32 || h.ndim != 1)
				sk_die("%s: record 'ids' must be i32 of one dimension", path);
			if (p->ids)
				sk_die("%s: record 'ids' appears twice", path);
			if (n < 1 || n > (1 << 28))
				sk_die("%s: record 'ids' holds %lld models", path, (long long)n);
			p->nids = (int)n;
			if (!(p->ids = sk_alloc_array((size_t)n, sizeof(int32_t))) || sk_reader_payload_into(r, &h, p->ids) < 0)
				sk_die_lib();
			continue;
		} else
			continue;
		if (*dst)
			sk_die("%s: record '%s' appears twice", path, h.name);
		if (h.dtype != SK_F32 || (dst == &p->codes ? h.ndim != 2 : h.ndim != 1))
			sk_die("%s: record '%s' must be f32 with %d dimension(s)", path, h.name, dst == &p->codes ? 2 : 1);
		if (p->n && n != p->n)
			sk_die("%s: record '%s' holds %lld models, others %d", path, h.name, (long long)n, p->n);
		if (n < 1 || n > (1 << 28))
			sk_die("%s: record '%s' holds %lld models", path, h.name, (long long)n);
		if (dst == &p->codes && (h.shape[1] > (1 << 20) || n * h.shape[1] > (1 << 28)))
			sk_die("%s: record 'codes' of %lld x %lld values is too large", path, (long long)n,
			       (long long)h.shape[1]);
		p->n = (int)n;
		if (dst == &p->codes)
			p->cs = (int)h.shape[1];
		if (dst == &p->pred && sk_attrs_copy(&p->attrs, &h.attrs) < 0)
			sk_die_lib();
		size_t cnt;
		if (sk_shape_check(SK_F32, h.ndim, h.shape, &cnt, NULL) < 0 || !(*dst = sk_alloc_array(cnt, sizeof(float))) ||
		    sk_reader_payload_into(r, &h, *dst) < 0)
			sk_die_lib();
	}
	if (st < 0)
		sk_die_lib();
	sk_header_free(&h);
	sk_reader_close(r);
	if (!p->pred && !p->codes)
		sk_die("%s: no 'pred' or 'codes' record (write one with zoo-encode predict)", path);
	if (p->ids && p->nids != p->n)
		sk_die("%s: record 'ids' holds %d models, '%s' %d", path, p->nids, p->pred ? "pred" : "codes", p->n);
	if (!p->ids) {
		if (!(p->ids = sk_alloc_array((size_t)p->n, sizeof(int32_t))))
			sk_die_lib();
		for (int i = 0; i < p->n; i++)
			p->ids[i] = i;
	}
	for (int k = 0; k < 4; k++)
		p->m[k] = NAN;
	if (p->pred && p->truth) {
		double *t = malloc(sizeof *t * (size_t)p->n), *q = malloc(sizeof *q * (size_t)p->n);
		if (!t || !q)
			sk_die("out of memory");
		for (int i = 0; i < p->n; i++)
			t[i] = p->truth[i], q[i] = p->pred[i];
		p->m[0] = sk_kendall_tau(q, t, (size_t)p->n);
		p->m[1] = sk_spearman(q, t, (size_t)p->n);
		p->m[2] = sk_r2(t, q, (size_t)p->n);
		p->m[3] = sk_rmse(t, q, (size_t)p->n);
		free(t);
		free(q);
	}
}

static const char *attr_or(const pfile *p, const char *k, const char *def)
{
	const char *v = sk_attrs_get(&p->attrs, k);
	return v ? v : def;
}

static int cmp_desc(const void *a, const void *b, void *arg)
{
	const float *v = arg;
	float x = v[*(const int *)a], y = v[*(const int *)b];
	if (x != y)
		return x > y ? -1 : 1;
	return *(const int *)a - *(const int *)b;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		sk_die("out of memory");
	return p;
}

/* "TRAIN->TEST" of a file, in a malloc'ed string (attribute values have any length). */
static char *colname(const pfile *p)
{
	const char *a = attr_or(p, "train_zoo", "?"), *b = attr_or(p, "test_zoo", "?");
	size_t n = strlen(a) + strlen(b) + 3;
	char *s = xmalloc(n);
	snprintf(s, n, "%s->%s", a, b);
	return s;
}

/* The n strings joined by commas, in a malloc'ed string. */
static char *join(const char *const *v, int n)
{
	size_t len = 1, o = 0;
	char *s;
	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	s = xmalloc(len);
	s[0] = 0;
	for (int i = 0; i < n; i++) {
		size_t k = strlen(v[i]);
		if (i)
			s[o++] = ',';
		memcpy(s + o, v[i], k + 1);
		o += k;
	}
	return s;
}

int main(int argc, char **argv)
{
	sk_cli cli = {"zoo-compare", "[options] PRED...",
	              "Kendall tau, Spearman, R^2, RMSE, rankings, nearest models and cross-evaluation tables", opts, 0};
	const char *arg, *out = "-", *rows = "encoder", *metric = "tau", *query = NULL;
	int idx, first, table = 0, rank = 0, top = 0, nearest = 0, stream = 0, force = 0, mi = 0;
	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		const char *nm = opts[idx].longname;
		if (!strcmp(nm, "table"))
			table = 1;
		else if (!strcmp(nm, "rows"))
			rows = arg;
		else if (!strcmp(nm, "metric")) {
			static const char *const ms[] = {"tau", "spearman", "r2", "rmse"};
			for (mi = 0; mi < 4 && strcmp(ms[mi], arg); mi++)
				;
			if (mi == 4)
				sk_usage("--metric is tau, spearman, r2 or rmse, not '%s'", arg);
			metric = arg;
		} else if (!strcmp(nm, "rank"))
			rank = 1;
		else if (!strcmp(nm, "top"))
			top = (int)sk_arg_long("--top", arg, 1, 1L << 30);
		else if (!strcmp(nm, "nearest"))
			nearest = (int)sk_arg_long("--nearest", arg, 1, 1L << 20);
		else if (!strcmp(nm, "query"))
			query = arg;
		else if (!strcmp(nm, "stream"))
			stream = 1;
		else if (!strcmp(nm, "output"))
			out = arg;
		else if (!strcmp(nm, "force"))
			force = 1;
	}
	if (first >= argc)
		sk_usage("at least one prediction file is required (from zoo-encode predict)");
	if (query && !nearest)
		sk_usage("--query needs --nearest");
	int nf = argc - first;
	pfile *pf = calloc((size_t)nf, sizeof *pf);
	if (!pf)
		sk_die("out of memory");
	for (int i = 0; i < nf; i++)
		load(argv[first + i], &pf[i]);
	if (nearest)
		for (int i = 0; i < nf; i++)
			if (!pf[i].codes)
				sk_die("%s: --nearest needs codes (write them with zoo-encode encode)", pf[i].name);
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, stream ? force : 1);
	if (!of)
		sk_die_lib();
	FILE *f = sk_ofile_fp(of);
	int rc = 0;
	if (table) {
		/* distinct rows and columns, in order of appearance */
		const char **rl = xmalloc(sizeof *rl * (size_t)nf), **cl = xmalloc(sizeof *cl * (size_t)nf);
		char **fcol = xmalloc(sizeof *fcol * (size_t)nf);
		int nr = 0, nc = 0;
		for (int i = 0; i < nf; i++) {
			const char *r = attr_or(&pf[i], rows, "?");
			int k;
			for (k = 0; k < nr && strcmp(rl[k], r); k++)
				;
			if (k == nr)
				rl[nr++] = r;
			fcol[i] = colname(&pf[i]);
			for (k = 0; k < nc && strcmp(cl[k], fcol[i]); k++)
				;
			if (k == nc)
				cl[nc++] = fcol[i];
		}
		float *cells = calloc((size_t)nr * nc * 3, sizeof(float));
		if (!cells)
			sk_die("out of memory");
		for (int r = 0; r < nr; r++)
			for (int c = 0; c < nc; c++) {
				double s = 0, s2 = 0;
				int cnt = 0;
				for (int i = 0; i < nf; i++)
					if (!strcmp(attr_or(&pf[i], rows, "?"), rl[r]) && !strcmp(fcol[i], cl[c]) &&
					    !isnan(pf[i].m[mi])) {
						s += pf[i].m[mi];
						s2 += pf[i].m[mi] * pf[i].m[mi];
						cnt++;
					}
				float *cell = cells + ((size_t)r * nc + c) * 3;
				cell[0] = cnt ? (float)(s / cnt) : NAN;
				cell[1] = cnt > 1 ? (float)sqrt(fmax(0, (s2 - s * s / cnt) / (cnt - 1))) : (cnt ? 0.0f : NAN);
				cell[2] = (float)cnt;
			}
		if (stream) {
			sk_attrs a;
			char *rlst = join(rl, nr), *clst = join(cl, nc);
			int64_t sh[3] = {nr, nc, 3};
			sk_attrs_init(&a);
			rc = sk_attrs_set(&a, "metric", metric) < 0 || sk_attrs_set(&a, "rows", rlst) < 0 ||
			             sk_attrs_set(&a, "cols", clst) < 0 ||
			             sk_attrs_set(&a, "layout", "rows x cols x (mean, std, count)") < 0
			         ? -1
			         : sk_write_record_raw(f, "table", SK_F32, 3, sh, cells, &a, 0);
			sk_attrs_free(&a);
			free(rlst);
			free(clst);
		} else {
			fprintf(f, "# %s (mean +- std over seeds; n = runs per cell)\n", metric);
			fprintf(f, "%-10s", rows);
			for (int c = 0; c < nc; c++)
				fprintf(f, "  %22s", cl[c]);
			fprintf(f, "\n");
			for (int r = 0; r < nr; r++) {
				fprintf(f, "%-10s", rl[r]);
				for (int c = 0; c < nc; c++) {
					float *cell = cells + ((size_t)r * nc + c) * 3;
					if (cell[2] > 0)
						fprintf(f, "  %12.3f +- %5.3f n=%d", cell[0], cell[1], (int)cell[2]);
					else
						fprintf(f, "  %22s", "-");
				}
				fprintf(f, "\n");
			}
		}
		free(cells);
		for (int i = 0; i < nf; i++)
			free(fcol[i]);
		free(fcol);
		free(rl);
		free(cl);
	} else if (rank) {
		for (int i = 0; i < nf && rc == 0; i++) {
			pfile *p = &pf[i];
			int *ord = malloc(sizeof *ord * (size_t)p->n), *tord = malloc(sizeof *tord * (size_t)p->n);
			int *trank = malloc(sizeof *trank * (size_t)p->n);
			int lim = top && top < p->n ? top : p->n;
			if (!ord || !tord || !trank)
				sk_die("out of memory");
			if (!p->pred)
				sk_die("%s: --rank needs predictions", p->name);
			for (int k = 0; k < p->n; k++)
				ord[k] = tord[k] = k;
			qsort_r(ord, (size_t)p->n, sizeof *ord, cmp_desc, p->pred);
			if (p->truth) {
				qsort_r(tord, (size_t)p->n, sizeof *tord, cmp_desc, p->truth);
				for (int k = 0; k < p->n; k++)
					trank[tord[k]] = k + 1;
			}
			if (stream) {
				float *t = xmalloc(sizeof *t * (size_t)lim * 4);
				int64_t sh[2] = {lim, 4};
				for (int k = 0; k < lim; k++) {
					t[k * 4] = (float)p->ids[ord[k]];
					t[k * 4 + 1] = p->pred[ord[k]];
					t[k * 4 + 2] = p->truth ? p->truth[ord[k]] : NAN;
					t[k * 4 + 3] = p->truth ? (float)trank[ord[k]] : NAN;
				}
				sk_attrs a;
				sk_attrs_init(&a);
				sk_attrs_copy(&a, &p->attrs);
				sk_attrs_set(&a, "columns", "id,pred,truth,true_rank");
				rc = sk_write_record_raw(f, "ranking", SK_F32, 2, sh, t, &a, 0);
				sk_attrs_free(&a);
				free(t);
			} else {
				fprintf(f, "# %s\n%6s %8s %10s %10s %10s\n", p->name, "rank", "id", "pred", "truth", "true_rank");
				for (int k = 0; k < lim; k++) {
					fprintf(f, "%6d %8d %10.9g ", k + 1, p->ids[ord[k]], p->pred[ord[k]]);
					if (p->truth)
						fprintf(f, "%10.9g %10d\n", p->truth[ord[k]], trank[ord[k]]);
					else
						fprintf(f, "%10s %10s\n", "-", "-");
				}
			}
			free(ord);
			free(tord);
			free(trank);
		}
	} else if (nearest) {
		for (int i = 0; i < nf && rc == 0; i++) {
			pfile *p = &pf[i];
			int K = nearest < p->n - 1 ? nearest : p->n - 1;
			float *dist = malloc(sizeof *dist * (size_t)p->n);
			int *ord = malloc(sizeof *ord * (size_t)p->n);
			if (!dist || !ord)
				sk_die("out of memory");
			if (!stream)
				fprintf(f, "# %s: %d nearest by code (id distance truth)\n", p->name, K);
			int found = 0;
			for (int q = 0; q < p->n && rc == 0; q++) {
				char qs[32];
				snprintf(qs, sizeof qs, "%d", p->ids[q]);
				if (query && strcmp(query, qs))
					continue;
				found = 1;
				for (int k = 0; k < p->n; k++) {
					double s = 0;
					for (int c = 0; c < p->cs; c++) {
						double d = p->codes[(size_t)q * p->cs + c] - p->codes[(size_t)k * p->cs + c];
						s += d * d;
					}
					dist[k] = k == q ? INFINITY : (float)sqrt(s);
					ord[k] = k;
				}
				for (int k = 0; k < p->n; k++)
					dist[k] = -dist[k];
				qsort_r(ord, (size_t)p->n, sizeof *ord, cmp_desc, dist);
				if (stream) {
					float *t = xmalloc(sizeof *t * (size_t)K * 2);
					int64_t sh[2] = {K, 2};
					for (int k = 0; k < K; k++)
						t[2 * k] = (float)p->ids[ord[k]], t[2 * k + 1] = -dist[ord[k]];
					sk_attrs a;
					sk_attrs_init(&a);
					sk_attrs_setf(&a, "query", "%d", p->ids[q]);
					sk_attrs_set(&a, "columns", "id,distance");
					rc = sk_write_record_raw(f, "nearest", SK_F32, 2, sh, t, &a, 0);
					sk_attrs_free(&a);
					free(t);
				} else {
					fprintf(f, "%d", p->ids[q]);
					if (p->truth)
						fprintf(f, " (%.4f)", p->truth[q]);
					fprintf(f, ":");
					for (int k = 0; k < K; k++) {
						fprintf(f, " %d %.4g", p->ids[ord[k]], -dist[ord[k]]);
						if (p->truth)
							fprintf(f, " %.4f", p->truth[ord[k]]);
						fprintf(f, k + 1 < K ? ";" : "");
					}
					fprintf(f, "\n");
				}
			}
			if (query && !found)
				sk_die("%s: no model with id %s", p->name, query);
			free(dist);
			free(ord);
		}
	} else {
		if (stream) {
			for (int i = 0; i < nf && rc == 0; i++) {
				float v[5] = {(float)pf[i].n, (float)pf[i].m[0], (float)pf[i].m[1], (float)pf[i].m[2],
				              (float)pf[i].m[3]};
				int64_t sh[1] = {5};
				sk_attrs a;
				sk_attrs_init(&a);
				sk_attrs_copy(&a, &pf[i].attrs);
				sk_attrs_set(&a, "file", pf[i].name);
				sk_attrs_set(&a, "columns", "n,tau,spearman,r2,rmse");
				rc = sk_write_record_raw(f, "metrics", SK_F32, 1, sh, v, &a, 0);
				sk_attrs_free(&a);
			}
		} else {
			fprintf(f, "%-8s %-24s %5s %6s %8s %8s %8s %8s\n", "encoder", "train->test", "seed", "n", "tau",
			        "spearman", "r2", "rmse");
			for (int i = 0; i < nf; i++) {
				char *col;
				if (!pf[i].truth)
					sk_die("%s: no 'truth' record: the models lack the predicted attribute", pf[i].name);
				col = colname(&pf[i]);
				fprintf(f, "%-8s %-24s %5s %6d %8.4f %8.4f %8.4f %8.4f\n", attr_or(&pf[i], "encoder", "?"), col,
				        attr_or(&pf[i], "seed", "?"), pf[i].n, pf[i].m[0], pf[i].m[1], pf[i].m[2], pf[i].m[3]);
				free(col);
			}
		}
	}
	if (rc < 0 || sk_ofile_commit(of) < 0)
		sk_die_lib();
	for (int i = 0; i < nf; i++) {
		sk_free(pf[i].pred);
		sk_free(pf[i].truth);
		sk_free(pf[i].codes);
		sk_free(pf[i].ids);
		sk_attrs_free(&pf[i].attrs);
	}
	free(pf);
	return 0;
}
