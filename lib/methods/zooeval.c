/* zooeval.c: evaluating what encoders say about a zoo (sk_zoo.h): reading
 * prediction files (zoo-encode predict / encode), their metrics, the
 * cross-evaluation table, rankings and nearest models by code, written as
 * text or as records. */
#include "sk_zoo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRED_MAX (1 << 28)

/* One record of a prediction file into p (pred, truth, codes or ids). */
static int take(sk_reader *r, const sk_header *h, sk_zoo_pred *p)
{
	float **dst = NULL;
	int64_t n = h->shape[0];
	size_t cnt;
	if (!strcmp(h->name, "pred"))
		dst = &p->pred;
	else if (!strcmp(h->name, "truth"))
		dst = &p->truth;
	else if (!strcmp(h->name, "codes"))
		dst = &p->codes;
	else if (!strcmp(h->name, "ids")) {
		if (h->dtype != SK_I32 || h->ndim != 1)
			return sk_error("%s: record 'ids' must be i32 of one dimension", p->name);
		if (p->ids)
			return sk_error("%s: record 'ids' appears twice", p->name);
		if (n < 1 || n > PRED_MAX)
			return sk_error("%s: record 'ids' holds %lld models", p->name, (long long)n);
		p->nids = (int)n;
		if (!(p->ids = sk_alloc_array((size_t)n, sizeof(int32_t))))
			return -1;
		return sk_reader_payload_into(r, h, p->ids);
	} else
		return 0;
	if (*dst)
		return sk_error("%s: record '%s' appears twice", p->name, h->name);
	if (h->dtype != SK_F32 || (dst == &p->codes ? h->ndim != 2 : h->ndim != 1))
		return sk_error("%s: record '%s' must be f32 with %d dimension(s)", p->name, h->name,
		                dst == &p->codes ? 2 : 1);
	if (p->n && n != p->n)
		return sk_error("%s: record '%s' holds %lld models, others %d", p->name, h->name, (long long)n, p->n);
	if (n < 1 || n > PRED_MAX)
		return sk_error("%s: record '%s' holds %lld models", p->name, h->name, (long long)n);
	if (dst == &p->codes && (h->shape[1] > (1 << 20) || n * h->shape[1] > PRED_MAX))
		return sk_error("%s: record 'codes' of %lld x %lld values is too large", p->name, (long long)n,
		                (long long)h->shape[1]);
	p->n = (int)n;
	if (dst == &p->codes)
		p->cs = (int)h->shape[1];
	if (dst == &p->pred && sk_attrs_copy(&p->attrs, &h->attrs) < 0)
		return -1;
	if (sk_shape_check(SK_F32, h->ndim, h->shape, &cnt, NULL) < 0 || !(*dst = sk_alloc_array(cnt, sizeof(float))))
		return -1;
	return sk_reader_payload_into(r, h, *dst);
}

/* Kendall's tau, Spearman, R^2 and RMSE of pred against truth. */
static int metrics(sk_zoo_pred *p)
{
	double *t, *q;
	if (!p->pred || !p->truth)
		return 0;
	t = malloc(sizeof *t * (size_t)p->n);
	q = malloc(sizeof *q * (size_t)p->n);
	if (!t || !q) {
		free(t);
		free(q);
		return sk_error("out of memory");
	}
	for (int i = 0; i < p->n; i++)
		t[i] = p->truth[i], q[i] = p->pred[i];
	p->m[0] = sk_kendall_tau(q, t, (size_t)p->n);
	p->m[1] = sk_spearman(q, t, (size_t)p->n);
	p->m[2] = sk_r2(t, q, (size_t)p->n);
	p->m[3] = sk_rmse(t, q, (size_t)p->n);
	free(t);
	free(q);
	return 0;
}

int sk_zoo_pred_read(const char *path, sk_zoo_pred *p)
{
	sk_reader *r;
	sk_header h;
	int st;
	memset(&h, 0, sizeof h);
	memset(p, 0, sizeof *p);
	sk_attrs_init(&p->attrs);
	snprintf(p->name, sizeof p->name, "%s", path);
	for (int k = 0; k < 4; k++)
		p->m[k] = NAN;
	if (!(r = sk_reader_open(path)))
		return -1;
	while ((st = sk_reader_next(r, &h)) > 0 && (st = take(r, &h, p)) == 0)
		;
	sk_header_free(&h);
	sk_reader_close(r);
	if (st < 0)
		goto fail;
	if (!p->pred && !p->codes) {
		sk_error("%s: no 'pred' or 'codes' record (write one with zoo-encode predict)", path);
		goto fail;
	}
	if (p->ids && p->nids != p->n) {
		sk_error("%s: record 'ids' holds %d models, '%s' %d", path, p->nids, p->pred ? "pred" : "codes", p->n);
		goto fail;
	}
	if (!p->ids) {
		if (!(p->ids = sk_alloc_array((size_t)p->n, sizeof(int32_t))))
			goto fail;
		for (int i = 0; i < p->n; i++)
			p->ids[i] = i;
	}
	if (metrics(p) == 0)
		return 0;
fail:
	sk_zoo_pred_free(p);
	return -1;
}

void sk_zoo_pred_free(sk_zoo_pred *p)
{
	sk_free(p->pred);
	sk_free(p->truth);
	sk_free(p->codes);
	sk_free(p->ids);
	sk_attrs_free(&p->attrs);
	memset(p, 0, sizeof *p);
}

int sk_zoo_pred_write(FILE *f, const sk_zoo_pred *p, int level)
{
	int64_t sh[2] = {p->n, p->cs};
	if ((p->codes && sk_write_record_raw(f, "codes", SK_F32, 2, sh, p->codes, &p->attrs, level) < 0) ||
	    (p->pred && sk_write_record_raw(f, "pred", SK_F32, 1, sh, p->pred, &p->attrs, level) < 0) ||
	    (p->truth && sk_write_record_raw(f, "truth", SK_F32, 1, sh, p->truth, &p->attrs, level) < 0))
		return -1;
	return sk_write_record_raw(f, "ids", SK_I32, 1, sh, p->ids, &p->attrs, level);
}

int sk_zoo_metric_parse(const char *name)
{
	static const char *const ms[] = {"tau", "spearman", "r2", "rmse"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(ms[i], name))
			return i;
	return sk_error("--metric is tau, spearman, r2 or rmse, not '%s'", name);
}

static const char *attr_or(const sk_zoo_pred *p, const char *k, const char *def)
{
	const char *v = sk_attrs_get(&p->attrs, k);
	return v ? v : def;
}

/* "TRAIN->TEST" of a file, in a malloc'ed string (attribute values have any length). */
static char *colname(const sk_zoo_pred *p)
{
	const char *a = attr_or(p, "train_zoo", "?"), *b = attr_or(p, "test_zoo", "?");
	size_t n = strlen(a) + strlen(b) + 3;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s->%s", a, b);
	else
		sk_error("out of memory");
	return s;
}

/* One record with the attributes `base` (may be NULL) and key/value pairs
 * kv[0..nkv) added, deflated at level. */
static int write_rec(FILE *f, const char *name, int ndim, const int64_t *sh, const float *v, const sk_attrs *base,
                     const char *const *kv, int nkv, int level)
{
	sk_attrs a;
	int rc = 0;
	sk_attrs_init(&a);
	if (base)
		rc = sk_attrs_copy(&a, base);
	for (int i = 0; rc == 0 && i < nkv; i += 2)
		rc = sk_attrs_set(&a, kv[i], kv[i + 1]);
	if (rc == 0)
		rc = sk_write_record_raw(f, name, SK_F32, ndim, sh, v, &a, level);
	sk_attrs_free(&a);
	return rc;
}

int sk_zoo_compare_metrics(FILE *f, const sk_zoo_pred *p, int n, int level)
{
	if (level < 0)
		fprintf(f, "%-8s %-24s %5s %6s %8s %8s %8s %8s\n", "encoder", "train->test", "seed", "n", "tau",
		        "spearman", "r2", "rmse");
	for (int i = 0; i < n; i++) {
		if (level >= 0) {
			float v[5] = {(float)p[i].n, (float)p[i].m[0], (float)p[i].m[1], (float)p[i].m[2], (float)p[i].m[3]};
			int64_t sh[1] = {5};
			const char *kv[] = {"file", p[i].name, "columns", "n,tau,spearman,r2,rmse"};
			if (write_rec(f, "metrics", 1, sh, v, &p[i].attrs, kv, 4, level) < 0)
				return -1;
			continue;
		}
		if (!p[i].truth)
			return sk_error("%s: no 'truth' record: the models lack the predicted attribute", p[i].name);
		char *col = colname(&p[i]);
		if (!col)
			return -1;
		fprintf(f, "%-8s %-24s %5s %6d %8.4f %8.4f %8.4f %8.4f\n", attr_or(&p[i], "encoder", "?"), col,
		        attr_or(&p[i], "seed", "?"), p[i].n, p[i].m[0], p[i].m[1], p[i].m[2], p[i].m[3]);
		free(col);
	}
	return 0;
}

/* The n strings joined by commas, in a malloc'ed string. */
static char *join(char *const *v, int n)
{
	size_t len = 1, o = 0;
	char *s;
	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	if (!(s = malloc(len))) {
		sk_error("out of memory");
		return NULL;
	}
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

/* Index of s in v[0..*n), appended when absent. */
static int intern(char **v, int *n, char *s)
{
	for (int k = 0; k < *n; k++)
		if (!strcmp(v[k], s))
			return k;
	v[*n] = s;
	return (*n)++;
}

static void print_table(FILE *f, const char *rows, const char *metric, char *const *rl, int nr, char *const *cl,
                        int nc, const float *cells)
{
	fprintf(f, "# %s (mean +- std over seeds; n = runs per cell)\n", metric);
	fprintf(f, "%-10s", rows);
	for (int c = 0; c < nc; c++)
		fprintf(f, "  %22s", cl[c]);
	fprintf(f, "\n");
	for (int r = 0; r < nr; r++) {
		fprintf(f, "%-10s", rl[r]);
		for (int c = 0; c < nc; c++) {
			const float *cell = cells + ((size_t)r * nc + c) * 3;
			if (cell[2] > 0)
				fprintf(f, "  %12.3f +- %5.3f n=%d", cell[0], cell[1], (int)cell[2]);
			else
				fprintf(f, "  %22s", "-");
		}
		fprintf(f, "\n");
	}
}

int sk_zoo_compare_table(FILE *f, const sk_zoo_pred *p, int n, const char *rows, int metric, int level)
{
	static const char *const names[] = {"tau", "spearman", "r2", "rmse"};
	/* distinct rows and columns, in order of appearance; cell (r, c): mean,
	 * std and count of the metric over the files of row r and column c */
	char **rl = calloc((size_t)n + 1, sizeof *rl), **cl = calloc((size_t)n + 1, sizeof *cl);
	char **fcol = calloc((size_t)n + 1, sizeof *fcol);
	int *fr = calloc((size_t)n + 1, sizeof *fr), *fc = calloc((size_t)n + 1, sizeof *fc);
	double *acc = calloc((size_t)n * n * 3 + 1, sizeof *acc);
	float *cells = calloc((size_t)n * n * 3 + 1, sizeof *cells);
	int nr = 0, nc = 0, rc = -1;
	if (!rl || !cl || !fcol || !fr || !fc || !acc || !cells) {
		sk_error("out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (!(fcol[i] = colname(&p[i])))
			goto out;
		fr[i] = intern(rl, &nr, (char *)attr_or(&p[i], rows, "?"));
		fc[i] = intern(cl, &nc, fcol[i]);
	}
	for (int i = 0; i < n; i++) {
		double *a = acc + ((size_t)fr[i] * nc + fc[i]) * 3, v = p[i].m[metric];
		if (isnan(v))
			continue;
		a[0] += v;
		a[1] += v * v;
		a[2]++;
	}
	for (int k = 0; k < nr * nc; k++) {
		double s = acc[3 * k], s2 = acc[3 * k + 1];
		int cnt = (int)acc[3 * k + 2];
		cells[3 * k] = cnt ? (float)(s / cnt) : NAN;
		cells[3 * k + 1] = cnt > 1 ? (float)sqrt(fmax(0, (s2 - s * s / cnt) / (cnt - 1))) : (cnt ? 0.0f : NAN);
		cells[3 * k + 2] = (float)cnt;
	}
	if (level >= 0) {
		char *rlst = join(rl, nr), *clst = join(cl, nc);
		int64_t sh[3] = {nr, nc, 3};
		const char *kv[] = {"metric", names[metric], "rows", rlst, "cols", clst, "layout",
		                    "rows x cols x (mean, std, count)"};
		if (rlst && clst)
			rc = write_rec(f, "table", 3, sh, cells, NULL, kv, 8, level);
		free(rlst);
		free(clst);
	} else {
		print_table(f, rows, names[metric], rl, nr, cl, nc, cells);
		rc = 0;
	}
out:
	for (int i = 0; fcol && i < n; i++)
		free(fcol[i]);
	free(fcol);
	free(rl);
	free(cl);
	free(fr);
	free(fc);
	free(acc);
	free(cells);
	return rc;
}

static int cmp_desc(const void *a, const void *b, void *arg)
{
	const float *v = arg;
	float x = v[*(const int *)a], y = v[*(const int *)b];
	if (x != y)
		return x > y ? -1 : 1;
	return *(const int *)a - *(const int *)b;
}

/* ord: 0..n-1 sorted by v, largest first (ties by index). */
static void order_desc(int *ord, int n, float *v)
{
	for (int k = 0; k < n; k++)
		ord[k] = k;
	qsort_r(ord, (size_t)n, sizeof *ord, cmp_desc, v);
}

static int rank_one(FILE *f, const sk_zoo_pred *p, int top, int level)
{
	int *ord = malloc(sizeof *ord * (size_t)p->n), *tord = malloc(sizeof *tord * (size_t)p->n);
	int *trank = malloc(sizeof *trank * (size_t)p->n), lim = top && top < p->n ? top : p->n, rc = 0;
	float *t = level >= 0 ? malloc(sizeof *t * (size_t)lim * 4) : NULL;
	if (!ord || !tord || !trank || (level >= 0 && !t)) {
		rc = sk_error("out of memory");
		goto out;
	}
	order_desc(ord, p->n, p->pred);
	if (p->truth) {
		order_desc(tord, p->n, p->truth);
		for (int k = 0; k < p->n; k++)
			trank[tord[k]] = k + 1;
	}
	if (level >= 0) {
		int64_t sh[2] = {lim, 4};
		const char *kv[] = {"columns", "id,pred,truth,true_rank"};
		for (int k = 0; k < lim; k++) {
			t[k * 4] = (float)p->ids[ord[k]];
			t[k * 4 + 1] = p->pred[ord[k]];
			t[k * 4 + 2] = p->truth ? p->truth[ord[k]] : NAN;
			t[k * 4 + 3] = p->truth ? (float)trank[ord[k]] : NAN;
		}
		rc = write_rec(f, "ranking", 2, sh, t, &p->attrs, kv, 2, level);
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
out:
	free(ord);
	free(tord);
	free(trank);
	free(t);
	return rc;
}

int sk_zoo_compare_rank(FILE *f, const sk_zoo_pred *p, int n, int top, int level)
{
	for (int i = 0; i < n; i++) {
		if (!p[i].pred)
			return sk_error("%s: --rank needs predictions", p[i].name);
		if (rank_one(f, &p[i], top, level) < 0)
			return -1;
	}
	return 0;
}

/* The K nearest models of model q by Euclidean distance of the codes. */
static int nearest_one(FILE *f, const sk_zoo_pred *p, int q, int K, float *dist, int *ord, float *t, int level)
{
	for (int k = 0; k < p->n; k++) {
		double s = 0;
		for (int c = 0; c < p->cs; c++) {
			double d = p->codes[(size_t)q * p->cs + c] - p->codes[(size_t)k * p->cs + c];
			s += d * d;
		}
		/* negated: order_desc puts the nearest first */
		dist[k] = -(k == q ? INFINITY : (float)sqrt(s));
	}
	order_desc(ord, p->n, dist);
	if (level >= 0) {
		int64_t sh[2] = {K, 2};
		char qs[32];
		const char *kv[] = {"query", qs, "columns", "id,distance"};
		snprintf(qs, sizeof qs, "%d", p->ids[q]);
		for (int k = 0; k < K; k++)
			t[2 * k] = (float)p->ids[ord[k]], t[2 * k + 1] = -dist[ord[k]];
		return write_rec(f, "nearest", 2, sh, t, NULL, kv, 4, level);
	}
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
	return 0;
}

int sk_zoo_compare_nearest(FILE *f, const sk_zoo_pred *p, int n, int nearest, const char *query, int level)
{
	for (int i = 0; i < n; i++) {
		const sk_zoo_pred *pi = &p[i];
		int K = nearest < pi->n - 1 ? nearest : pi->n - 1, found = 0, rc = 0;
		float *dist = malloc(sizeof *dist * (size_t)pi->n), *t = malloc(sizeof *t * ((size_t)K * 2 + 1));
		int *ord = malloc(sizeof *ord * (size_t)pi->n);
		if (!dist || !ord || !t)
			rc = sk_error("out of memory");
		if (rc == 0 && level < 0)
			fprintf(f, "# %s: %d nearest by code (id distance truth)\n", pi->name, K);
		for (int q = 0; q < pi->n && rc == 0; q++) {
			char qs[32];
			snprintf(qs, sizeof qs, "%d", pi->ids[q]);
			if (query && strcmp(query, qs))
				continue;
			found = 1;
			rc = nearest_one(f, pi, q, K, dist, ord, t, level);
		}
		if (rc == 0 && query && !found)
			rc = sk_error("%s: no model with id %s", pi->name, query);
		free(dist);
		free(ord);
		free(t);
		if (rc < 0)
			return -1;
	}
	return 0;
}
