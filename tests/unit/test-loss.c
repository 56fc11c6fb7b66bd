/* test-loss.c: softmax cross-entropy and MSE: values, counts, gradients
 * against central differences, and the data-parallel denominator. */
#include "sk_base.h"
#include "sk_loss.h"
#include "sk_rng.h"
#include "tap.h"

#include <math.h>
#include <string.h>

typedef double (*lossfn)(const float *z, float *d, void *arg);

struct xarg {
	int n, k;
	const int32_t *labels;
	const float *t;
	double denom;
};

static double xent(const float *z, float *d, void *a)
{
	struct xarg *x = a;
	return sk_loss_xent(x->n, x->k, z, x->labels, x->denom, d, NULL);
}

static double mse(const float *z, float *d, void *a)
{
	struct xarg *x = a;
	return sk_loss_mse(x->n, x->k, z, x->t, x->denom, d);
}

/* Worst relative error of the analytic gradient against central differences. */
static double gradcheck(lossfn f, float *z, int m, void *arg)
{
	float d[64], dd[64];
	double worst = 0;
	f(z, d, arg);
	for (int i = 0; i < m; i++) {
		float keep = z[i];
		double h = 1e-2;
		z[i] = (float)(keep + h);
		double fp = f(z, dd, arg);
		z[i] = (float)(keep - h);
		double fm = f(z, dd, arg);
		z[i] = keep;
		double num = (fp - fm) / (2 * h), err = fabs(num - d[i]) / fmax(1e-2, fabs(num));
		if (err > worst)
			worst = err;
	}
	return worst;
}

int main(void)
{
	/* two examples, three classes */
	float z[6] = {1, 2, 3, 0, 0, 0}, d[6];
	int32_t lab[2] = {2, 1};
	int correct = -1;
	double l = sk_loss_xent(2, 3, z, lab, 2, d, &correct);
	double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(3.0);
	tap_ok(fabs(l - (l0 + l1) / 2) < 1e-6, "cross-entropy mean %.6f (expected %.6f)", l, (l0 + l1) / 2);
	tap_ok(correct == 1, "one of two correct (ties go to the first class): %d", correct);
	double s = 0;
	for (int i = 0; i < 6; i++)
		s += d[i];
	tap_ok(fabs(s) < 1e-6 && d[2] < 0 && d[4] < 0, "gradient rows sum to zero, negative at the label");
	float d4[6];
	sk_loss_xent(2, 3, z, lab, 4, d4, NULL);
	tap_ok(fabsf(d4[0] * 2 - d[0]) < 1e-7f, "denominator scales the gradient (replicas on half batches)");
	float big[3] = {1000, 0, -1000};
	int32_t b0 = 1;
	l = sk_loss_xent(1, 3, big, &b0, 1, NULL, NULL);
	tap_ok(isfinite(l) && fabs(l - 1000) < 1e-3, "cross-entropy is stable for large logits: %g", l);
	int32_t badl = 3;
	l = sk_loss_xent(1, 3, z, &badl, 1, d, NULL);
	tap_ok(isnan(l) && strstr(sk_errmsg(), "label 3"), "label out of range: %s", sk_errmsg());

	float zz[12];
	int32_t labels[3] = {0, 3, 1};
	for (int i = 0; i < 12; i++)
		zz[i] = sk_rng_normal(3, 1, (uint64_t)i);
	struct xarg xa = {3, 4, labels, NULL, 3};
	double w = gradcheck(xent, zz, 12, &xa);
	tap_ok(w < 1e-2, "cross-entropy gradient matches central differences (worst rel err %.2g)", w);
	float t[12];
	for (int i = 0; i < 12; i++)
		t[i] = sk_rng_normal(4, 1, (uint64_t)i);
	xa.t = t;
	xa.denom = 5;
	w = gradcheck(mse, zz, 12, &xa);
	tap_ok(w < 1e-2, "MSE gradient matches central differences (worst rel err %.2g)", w);
	float y2[2] = {1, 3}, t2[2] = {0, 1};
	tap_ok(fabs(sk_loss_mse(1, 2, y2, t2, 1, NULL) - 5) < 1e-9, "MSE value");

	float p[3];
	sk_softmax(1, 3, z, p);
	tap_ok(fabsf(p[0] + p[1] + p[2] - 1) < 1e-6f && p[2] > p[1] && p[1] > p[0], "softmax sums to one");
	tap_ok(sk_argmax(3, z + 3) == 0 && sk_argmax(3, z) == 2, "argmax, first on ties");
	return tap_done();
}
