/* cluster.c: mini-batch k-means and diagonal GMM (see sk_cluster.h). */
#include "sk_cluster.h"
#include "sk_base.h"
#include "sk_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG2PI 1.8378770664093453

static double dist2(const float *a, const float *b, int d)
{
	double s = 0;
	for (int j = 0; j < d; j++) {
		double t = (double)a[j] - b[j];
		s += t * t;
	}
	return s;
}

/* The centre with the largest dot product with x (spherical k-means: unit
 * centres, unit x). */
static int nearest_dot(const float *x, const float *C, int k, int d)
{
	int bi = 0;
	double bd = -INFINITY;
	for (int c = 0; c < k; c++) {
		const float *cc = C + (size_t)c * d;
		double s = 0;
		for (int j = 0; j < d; j++)
			s += (double)cc[j] * x[j];
		if (s > bd) {
			bd = s;
			bi = c;
		}
	}
	return bi;
}

static int nearest(const float *x, const float *C, int k, int d, double *best)
{
	int bi = 0;
	double bd = dist2(x, C, d);
	for (int c = 1; c < k; c++) {
		double t = dist2(x, C + (size_t)c * d, d);
		if (t < bd) {
			bd = t;
			bi = c;
		}
	}
	if (best)
		*best = bd;
	return bi;
}

/* Mean per-dimension variance of X, for the variance floor. */
static double data_var(const float *X, size_t n, int d)
{
	double tot = 0;
	for (int j = 0; j < d; j++) {
		double m = 0, v = 0;
		for (size_t i = 0; i < n; i++)
			m += X[i * d + j];
		m /= (double)n;
		for (size_t i = 0; i < n; i++) {
			double t = X[i * d + j] - m;
			v += t * t;
		}
		tot += v / (double)n;
	}
	return tot / d;
}

static int check_args(size_t n, int d, int k)
{
	if (d < 1 || k < 1)
		return sk_error("clustering needs d >= 1 and k >= 1 (got d=%d, k=%d)", d, k);
	if (n < (size_t)k)
		return sk_error("clustering %zu rows into %d clusters needs at least as many rows", n, k);
	return 0;
}

int sk_kmeans_online(float *C, int k, int d, const float *x, double *cnt, int spherical)
{
	int c = spherical ? nearest_dot(x, C, k, d) : nearest(x, C, k, d, NULL);
	float *cc = C + (size_t)c * d;
	cnt[c] += 1;
	double eta = 1.0 / cnt[c];
	for (int j = 0; j < d; j++)
		cc[j] = (float)(cc[j] + eta * (x[j] - cc[j]));
	return c;
}

int sk_kmeans(const float *X, size_t n, int d, int k, int iters, int batch, uint64_t seed, float *C, float *var,
              float *w)
{
	int64_t *perm = NULL;
	int *asg = NULL;
	double *cnt = NULL, *sum = NULL, *err = NULL;
	int rc = -1;
	if (check_args(n, d, k) < 0)
		return -1;
	if (batch < 1)
		batch = 1;
	perm = sk_alloc_array(n, sizeof *perm);
	asg = sk_alloc_array(n, sizeof *asg);
	cnt = sk_alloc_array((size_t)k, sizeof *cnt);
	sum = sk_alloc_array((size_t)k * d, sizeof *sum);
	err = sk_alloc_array(n, sizeof *err);
	if (!perm || !asg || !cnt || !sum || !err)
		goto out;
	sk_rng r = sk_rng_make(seed, sk_rng_hash("kmeans"));
	sk_rng_permute(&r, perm, (int64_t)n);
	for (int c = 0; c < k; c++)
		memcpy(C + (size_t)c * d, X + (size_t)perm[c] * d, (size_t)d * sizeof(float));
	/* mini-batch phase */
	for (int it = 0; it < iters; it++) {
		for (int b = 0; b < batch; b++) {
			size_t i = (size_t)sk_rng_next_below(&r, n);
			sk_kmeans_online(C, k, d, X + i * d, cnt, 0);
		}
	}
	/* Lloyd refinement with empty-cluster re-seeding */
	for (int pass = 0; pass < 4; pass++) {
		memset(cnt, 0, (size_t)k * sizeof *cnt);
		memset(sum, 0, (size_t)k * d * sizeof *sum);
		for (size_t i = 0; i < n; i++) {
			asg[i] = nearest(X + i * d, C, k, d, &err[i]);
			cnt[asg[i]] += 1;
			for (int j = 0; j < d; j++)
				sum[(size_t)asg[i] * d + j] += X[i * d + j];
		}
		if (pass == 3)
			break;
		for (int c = 0; c < k; c++) {
			if (cnt[c] > 0) {
				for (int j = 0; j < d; j++)
					C[(size_t)c * d + j] = (float)(sum[(size_t)c * d + j] / cnt[c]);
				continue;
			}
			size_t worst = 0;
			for (size_t i = 1; i < n; i++)
				if (err[i] > err[worst])
					worst = i;
			memcpy(C + (size_t)c * d, X + worst * d, (size_t)d * sizeof(float));
			err[worst] = 0;
		}
	}
	if (var) {
		double floor = fmax(1e-2 * data_var(X, n, d), 1e-6);
		memset(sum, 0, (size_t)k * d * sizeof *sum);
		for (size_t i = 0; i < n; i++)
			for (int j = 0; j < d; j++) {
				double t = (double)X[i * d + j] - C[(size_t)asg[i] * d + j];
				sum[(size_t)asg[i] * d + j] += t * t;
			}
		for (int c = 0; c < k; c++)
			for (int j = 0; j < d; j++) {
				double v = cnt[c] > 0 ? sum[(size_t)c * d + j] / cnt[c] : 0;
				var[(size_t)c * d + j] = (float)fmax(v, floor);
			}
	}
	if (w)
		for (int c = 0; c < k; c++)
			w[c] = (float)((cnt[c] + 1e-3) / ((double)n + 1e-3 * k));
	rc = 0;
out:
	sk_free(perm);
	sk_free(asg);
	sk_free(cnt);
	sk_free(sum);
	sk_free(err);
	return rc;
}

/* log w_c + log N(x; mu_c, var_c) for all c into lp; returns the LSE. */
static double comp_logp(const float *x, int d, int k, const float *mu, const float *var, const double *lw,
                        const double *lnorm, double *lp)
{
	double mx = -INFINITY, s = 0;
	for (int c = 0; c < k; c++) {
		const float *m = mu + (size_t)c * d, *v = var + (size_t)c * d;
		double q = 0;
		for (int j = 0; j < d; j++) {
			double t = (double)x[j] - m[j];
			q += t * t / v[j];
		}
		lp[c] = lw[c] + lnorm[c] - 0.5 * q;
		if (lp[c] > mx)
			mx = lp[c];
	}
	for (int c = 0; c < k; c++)
		s += exp(lp[c] - mx);
	return mx + log(s);
}

static void prep(int d, int k, const float *var, const float *w, double *lw, double *lnorm)
{
	for (int c = 0; c < k; c++) {
		double lv = 0;
		for (int j = 0; j < d; j++)
			lv += log(var[(size_t)c * d + j]);
		lw[c] = log(w[c] > 0 ? w[c] : 1e-30);
		lnorm[c] = -0.5 * (d * LOG2PI + lv);
	}
}

double sk_gmm_loglik(const float *X, size_t n, int d, int k, const float *mu, const float *var, const float *w)
{
	double *lw = malloc(sizeof(double) * 3 * (size_t)k), tot = 0;
	if (!lw)
		return NAN;
	prep(d, k, var, w, lw, lw + k);
	for (size_t i = 0; i < n; i++)
		tot += comp_logp(X + i * d, d, k, mu, var, lw, lw + k, lw + 2 * k);
	free(lw);
	return tot / (double)n;
}

int sk_gmm_diag(const float *X, size_t n, int d, int k, int iters, uint64_t seed, float *mu, float *var, float *w)
{
	double *lw = NULL, *lnorm = NULL, *lp = NULL, *nk = NULL, *s1 = NULL, *s2 = NULL;
	double prev = -INFINITY, floor;
	int rc = -1;
	if (check_args(n, d, k) < 0)
		return -1;
	if (sk_kmeans(X, n, d, k, 100, 1024, seed, mu, var, w) < 0)
		return -1;
	floor = fmax(1e-2 * data_var(X, n, d), 1e-6);
	lw = sk_alloc_array((size_t)k, sizeof *lw);
	lnorm = sk_alloc_array((size_t)k, sizeof *lnorm);
	lp = sk_alloc_array((size_t)k, sizeof *lp);
	nk = sk_alloc_array((size_t)k, sizeof *nk);
	s1 = sk_alloc_array((size_t)k * d, sizeof *s1);
	s2 = sk_alloc_array((size_t)k * d, sizeof *s2);
	if (!lw || !lnorm || !lp || !nk || !s1 || !s2)
		goto out;
	for (int it = 0; it < iters; it++) {
		double ll = 0;
		prep(d, k, var, w, lw, lnorm);
		memset(nk, 0, (size_t)k * sizeof *nk);
		memset(s1, 0, (size_t)k * d * sizeof *s1);
		memset(s2, 0, (size_t)k * d * sizeof *s2);
		for (size_t i = 0; i < n; i++) {
			const float *x = X + i * d;
			double lse = comp_logp(x, d, k, mu, var, lw, lnorm, lp);
			ll += lse;
			for (int c = 0; c < k; c++) {
				double rr = exp(lp[c] - lse);
				if (rr < 1e-12)
					continue;
				nk[c] += rr;
				for (int j = 0; j < d; j++) {
					s1[(size_t)c * d + j] += rr * x[j];
					s2[(size_t)c * d + j] += rr * x[j] * x[j];
				}
			}
		}
		ll /= (double)n;
		for (int c = 0; c < k; c++) {
			if (nk[c] < 1e-9)
				continue;
			for (int j = 0; j < d; j++) {
				double m = s1[(size_t)c * d + j] / nk[c], v = s2[(size_t)c * d + j] / nk[c] - m * m;
				mu[(size_t)c * d + j] = (float)m;
				var[(size_t)c * d + j] = (float)fmax(v, floor);
			}
			w[c] = (float)(nk[c] / (double)n);
		}
		/* split the heaviest component into any starved one */
		for (int c = 0; c < k && it < iters / 2; c++) {
			if (nk[c] >= 0.2 * (double)n / k)
				continue;
			int h = 0;
			for (int j = 1; j < k; j++)
				if (nk[j] > nk[h])
					h = j;
			if (h == c)
				continue;
			for (int j = 0; j < d; j++) {
				float sd = sqrtf(var[(size_t)h * d + j]);
				mu[(size_t)c * d + j] = mu[(size_t)h * d + j] + 0.5f * sd;
				mu[(size_t)h * d + j] -= 0.5f * sd;
				var[(size_t)c * d + j] = var[(size_t)h * d + j];
			}
			nk[h] *= 0.5;
			nk[c] = nk[h];
			w[h] *= 0.5f;
			w[c] = w[h];
		}
		if (fabs(ll - prev) < 5e-3 * fabs(ll))
			break;
		prev = ll;
	}
	{
		double s = 0;
		for (int c = 0; c < k; c++)
			s += w[c];
		for (int c = 0; c < k; c++)
			w[c] = (float)(w[c] / s);
	}
	rc = 0;
out:
	sk_free(lw);
	sk_free(lnorm);
	sk_free(lp);
	sk_free(nk);
	sk_free(s1);
	sk_free(s2);
	return rc;
}
