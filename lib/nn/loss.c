/* loss.c: softmax cross-entropy and mean squared error. */
#include "sk_loss.h"
#include "sk_base.h"

#include <math.h>

int sk_argmax(int k, const float *x)
{
	int b = 0;
	for (int j = 1; j < k; j++)
		if (x[j] > x[b])
			b = j;
	return b;
}

void sk_softmax(int n, int k, const float *x, float *p)
{
	for (int i = 0; i < n; i++) {
		const float *xi = x + (size_t)i * k;
		float *pi = p + (size_t)i * k;
		float m = xi[sk_argmax(k, xi)], s = 0;
		for (int j = 0; j < k; j++) {
			pi[j] = expf(xi[j] - m);
			s += pi[j];
		}
		for (int j = 0; j < k; j++)
			pi[j] /= s;
	}
}

double sk_loss_xent(int n, int k, const float *logits, const int32_t *labels, double denom, float *dout,
                    int *correct)
{
	double total = 0;
	int good = 0;
	float g = (float)(1.0 / denom);
	if (k < 1 || denom <= 0) {
		sk_error("cross-entropy: %d classes with denominator %g", k, denom);
		return NAN;
	}
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		int y = labels[i], am = sk_argmax(k, z);
		double m = z[am], s = 0;
		if (y < 0 || y >= k) {
			sk_error("label %d of example %d is outside the %d classes", y, i, k);
			return NAN;
		}
		for (int j = 0; j < k; j++)
			s += exp((double)z[j] - m);
		total += log(s) - ((double)z[y] - m);
		good += am == y;
		if (dout) {
			float *d = dout + (size_t)i * k;
			for (int j = 0; j < k; j++)
				d[j] = g * (float)(exp((double)z[j] - m) / s);
			d[y] -= g;
		}
	}
	if (correct)
		*correct = good;
	return total / denom;
}

double sk_loss_mse(int n, int k, const float *y, const float *t, double denom, float *dout)
{
	double total = 0;
	size_t m = (size_t)n * (size_t)k;
	float g = (float)(2.0 / denom);
	for (size_t i = 0; i < m; i++) {
		double e = (double)y[i] - t[i];
		total += e * e;
		if (dout)
			dout[i] = g * (float)e;
	}
	return total / denom;
}
