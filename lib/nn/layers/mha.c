/* mha.c: multihead attention.  The multihead attention block (MAB) of the
 * Set Transformer, shared by sab, isab and pma (sk_attn.h), and the `mha`
 * layer: plain multihead self-attention over a set or sequence,
 *   Y = concat_h softmax((X Wq)_h (X Wk)_h^T / sqrt(d)) (X Wv)_h  Wo + bo.
 * Per example the input is T x D (sk_shape2) and so is the output.
 */
#include "sk_attn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Row-major C = alpha op(A) op(B) + beta C with explicit leading dimensions. */
static void gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc)
{
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a,
	            lda, b, ldb, beta, c, ldc);
}

static void add_bias(size_t rows, int d, const float *b, float *y)
{
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < d; j++)
			y[r * (size_t)d + (size_t)j] += b[j];
}

static void bias_grad(size_t rows, int d, const float *dy, float *db)
{
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < d; j++)
			db[j] += dy[r * (size_t)d + (size_t)j];
}

/* ---- the MAB ---- */

enum { QW, QB, KW, KB, VW, VB, OW, OB, G0, B0, G1, B1 };

int sk_mab_declare(sk_mab *m, sk_layer *l, const char *pfx, int dq, int dk, int dv, int heads, int nq, int nk,
                   int ln, int qshared)
{
	char nm[64];
	int64_t s[2];
	static const char *const names[] = {"q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "o.w", "o.b",
	                                    "ln0.g", "ln0.b", "ln1.g", "ln1.b"};
	memset(m, 0, sizeof *m);
	if (heads < 1 || dv < 1 || dv % heads)
		return sk_error("%d heads do not divide the width %d", heads, dv);
	if (dq < 1 || dk < 1 || nq < 1 || nk < 1)
		return sk_error("empty attention block (%d x %d queries, %d x %d keys)", nq, dq, nk, dk);
	m->dq = dq, m->dk = dk, m->dv = dv, m->heads = heads, m->nq = nq, m->nk = nk, m->ln = ln;
	m->qshared = qshared;
	m->p0 = l->nparams;
	for (int i = 0; i < (ln ? 12 : 8); i++) {
		int din = i < 2 ? dq : i < 6 ? dk : dv;
		int isw = (i == QW || i == KW || i == VW || i == OW);
		int r;
		snprintf(nm, sizeof nm, "%s%s", pfx, names[i]);
		if (isw) {
			s[0] = din, s[1] = dv;
			r = sk_layer_param(l, nm, 2, s, SK_INIT_XAVIER, 1.0f, din, dv, 0);
		} else {
			s[0] = dv;
			r = sk_layer_param(l, nm, 1, s, (i == G0 || i == G1) ? SK_INIT_ONE : SK_INIT_ZERO, 0, dv, dv,
			                   SK_P_NODECAY);
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

int sk_mab_opts(const sk_spec *s, sk_specline *o, int d, int *heads, int *ln)
{
	if (sk_opt_int(s, o, "heads", 4, heads) < 0 || (ln && sk_opt_int(s, o, "ln", 0, ln) < 0))
		return -1;
	if (d < 1 || *heads < 1 || d % *heads)
		return sk_spec_error(s, o, "heads=%d must divide the width %d", *heads, d);
	return 0;
}

double sk_mab_flops(const sk_mab *m)
{
	double nq = m->nq, nk = m->nk, dv = m->dv;
	return 2.0 * (nq * m->dq * dv + 2.0 * nk * m->dk * dv + 2.0 * nq * nk * dv + nq * dv * dv) + 10.0 * nq * dv;
}

void sk_mab_free(sk_mab *m)
{
	float **b[] = {&m->qp, &m->k, &m->v, &m->a, &m->x0, &m->r0, &m->h, &m->f, &m->x1, &m->r1,
	               &m->dh, &m->df, &m->dqp, &m->dk_, &m->dv_, &m->da, &m->dq0};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		sk_free(*b[i]);
		*b[i] = NULL;
	}
	m->max_batch = 0;
}

int sk_mab_setup(sk_mab *m, int max_batch)
{
	size_t nb = (size_t)max_batch, q = (size_t)m->nq * (size_t)m->dv, kv = (size_t)m->nk * (size_t)m->dv;
	size_t att = (size_t)m->heads * (size_t)m->nq * (size_t)m->nk;
	struct {
		float **p;
		size_t n;
	} b[] = {{&m->qp, nb * q},  {&m->k, nb * kv},  {&m->v, nb * kv},   {&m->a, nb * att},
	         {&m->x0, nb * q},  {&m->r0, nb * (size_t)m->nq}, {&m->h, nb * q}, {&m->f, nb * q},
	         {&m->x1, nb * q},  {&m->r1, nb * (size_t)m->nq}, {&m->dh, nb * q}, {&m->df, nb * q},
	         {&m->dqp, nb * q}, {&m->dk_, nb * kv}, {&m->dv_, nb * kv}, {&m->da, (size_t)m->nq * (size_t)m->nk},
	         {&m->dq0, q}};
	sk_mab_free(m);
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		if (b[i].n / (nb ? nb : 1) > ((size_t)1 << 40))
			return sk_error("attention workspace too large");
		if (!(*b[i].p = sk_alloc_array(b[i].n ? b[i].n : 1, sizeof(float))))
			return -1;
	}
	m->max_batch = max_batch;
	return 0;
}

#define PW(i) (l->params[m->p0 + (i)].w)
#define PG(i) (l->params[m->p0 + (i)].g)

/* `plain` (the mha layer): out = O Wo + bo, no residual, no feed-forward. */
static int mab_forward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, float *out, int plain)
{
	int nq = m->nq, nk = m->nk, dv = m->dv, H = m->heads, dh = dv / H;
	size_t qs = (size_t)nq * dv, ks = (size_t)nk * dv;
	float scale = 1.0f / sqrtf((float)dv);
	if (n > m->max_batch)
		return sk_error("batch of %d exceeds the prepared %d", n, m->max_batch);
	if (m->qshared) {
		gemm(0, 0, nq, dv, m->dq, 1, q, m->dq, PW(QW), dv, 0, m->qp, dv);
		add_bias((size_t)nq, dv, PW(QB), m->qp);
		for (int e = 1; e < n; e++)
			memcpy(m->qp + (size_t)e * qs, m->qp, qs * sizeof(float));
	} else {
		gemm(0, 0, n * nq, dv, m->dq, 1, q, m->dq, PW(QW), dv, 0, m->qp, dv);
		add_bias((size_t)n * nq, dv, PW(QB), m->qp);
	}
	gemm(0, 0, n * nk, dv, m->dk, 1, x, m->dk, PW(KW), dv, 0, m->k, dv);
	add_bias((size_t)n * nk, dv, PW(KB), m->k);
	gemm(0, 0, n * nk, dv, m->dk, 1, x, m->dk, PW(VW), dv, 0, m->v, dv);
	add_bias((size_t)n * nk, dv, PW(VB), m->v);
	if (plain)
		memset(m->h, 0, (size_t)n * qs * sizeof(float));
	else
		memcpy(m->h, m->qp, (size_t)n * qs * sizeof(float));
	for (int e = 0; e < n; e++)
		for (int hh = 0; hh < H; hh++) {
			const float *qe = m->qp + e * qs + hh * dh, *ke = m->k + e * ks + hh * dh, *ve = m->v + e * ks + hh * dh;
			float *a = m->a + ((size_t)e * H + hh) * (size_t)nq * nk;
			gemm(0, 1, nq, nk, dh, scale, qe, dv, ke, dv, 0, a, nk);
			for (int i = 0; i < nq; i++) {
				float *ar = a + (size_t)i * nk, mx = ar[0], s = 0;
				for (int j = 1; j < nk; j++)
					mx = ar[j] > mx ? ar[j] : mx;
				for (int j = 0; j < nk; j++)
					s += (ar[j] = expf(ar[j] - mx));
				for (int j = 0; j < nk; j++)
					ar[j] /= s;
			}
			gemm(0, 0, nq, dh, nk, 1, a, nk, ve, dv, 1, m->h + e * qs + hh * dh, dv);
		}
	if (m->ln && !plain)
		sk_ln_forward((size_t)n * nq, dv, m->h, PW(G0), PW(B0), m->x0, m->r0, m->h);
	gemm(0, 0, n * nq, dv, dv, 1, m->h, dv, PW(OW), dv, 0, m->f, dv);
	add_bias((size_t)n * nq, dv, PW(OB), m->f);
	if (plain) {
		memcpy(out, m->f, (size_t)n * qs * sizeof(float));
		return 0;
	}
	for (size_t i = 0; i < (size_t)n * qs; i++)
		out[i] = m->h[i] + (m->f[i] > 0 ? m->f[i] : 0);
	if (m->ln)
		sk_ln_forward((size_t)n * nq, dv, out, PW(G1), PW(B1), m->x1, m->r1, out);
	return 0;
}

static int mab_backward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, const float *dout, float *dq,
                        float *dx, int dx_acc, int plain)
{
	int nq = m->nq, nk = m->nk, dv = m->dv, H = m->heads, dh = dv / H;
	size_t qs = (size_t)nq * dv, ks = (size_t)nk * dv, nqs = (size_t)n * qs;
	float scale = 1.0f / sqrtf((float)dv);
	/* output: dF and dH */
	if (plain) {
		memcpy(m->df, dout, nqs * sizeof(float));
		memset(m->dh, 0, nqs * sizeof(float));
	} else {
		if (m->ln)
			sk_ln_backward((size_t)n * nq, dv, dout, m->x1, m->r1, PW(G1), PG(G1), PG(B1), m->dh);
		else
			memcpy(m->dh, dout, nqs * sizeof(float));
		for (size_t i = 0; i < nqs; i++)
			m->df[i] = m->f[i] > 0 ? m->dh[i] : 0;
	}
	gemm(1, 0, dv, dv, n * nq, 1, m->h, dv, m->df, dv, 1, PG(OW), dv);
	bias_grad((size_t)n * nq, dv, m->df, PG(OB));
	gemm(0, 1, n * nq, dv, dv, 1, m->df, dv, PW(OW), dv, 1, m->dh, dv);
	if (m->ln && !plain)
		sk_ln_backward((size_t)n * nq, dv, m->dh, m->x0, m->r0, PW(G0), PG(G0), PG(B0), m->dh);
	/* attention */
	if (plain)
		memset(m->dqp, 0, nqs * sizeof(float));
	else
		memcpy(m->dqp, m->dh, nqs * sizeof(float));
	for (int e = 0; e < n; e++)
		for (int hh = 0; hh < H; hh++) {
			size_t qo = e * qs + hh * dh, ko = e * ks + hh * dh;
			const float *a = m->a + ((size_t)e * H + hh) * (size_t)nq * nk;
			float *da = m->da;
			gemm(0, 1, nq, nk, dh, 1, m->dh + qo, dv, m->v + ko, dv, 0, da, nk);
			gemm(1, 0, nk, dh, nq, 1, a, nk, m->dh + qo, dv, 0, m->dv_ + ko, dv);
			for (int i = 0; i < nq; i++) {
				const float *ar = a + (size_t)i * nk;
				float *dr = da + (size_t)i * nk, s = 0;
				for (int j = 0; j < nk; j++)
					s += dr[j] * ar[j];
				for (int j = 0; j < nk; j++)
					dr[j] = ar[j] * (dr[j] - s) * scale;
			}
			gemm(0, 0, nq, dh, nk, 1, da, nk, m->k + ko, dv, 1, m->dqp + qo, dv);
			gemm(1, 0, nk, dh, nq, 1, da, nk, m->qp + qo, dv, 0, m->dk_ + ko, dv);
		}
	/* projections */
	if (m->qshared) {
		memset(m->dq0, 0, qs * sizeof(float));
		for (int e = 0; e < n; e++)
			for (size_t i = 0; i < qs; i++)
				m->dq0[i] += m->dqp[e * qs + i];
		gemm(1, 0, m->dq, dv, nq, 1, q, m->dq, m->dq0, dv, 1, PG(QW), dv);
		bias_grad((size_t)nq, dv, m->dq0, PG(QB));
		if (dq)
			gemm(0, 1, nq, m->dq, dv, 1, m->dq0, dv, PW(QW), dv, 1, dq, m->dq);
	} else {
		gemm(1, 0, m->dq, dv, n * nq, 1, q, m->dq, m->dqp, dv, 1, PG(QW), dv);
		bias_grad((size_t)n * nq, dv, m->dqp, PG(QB));
		if (dq)
			gemm(0, 1, n * nq, m->dq, dv, 1, m->dqp, dv, PW(QW), dv, 0, dq, m->dq);
	}
	gemm(1, 0, m->dk, dv, n * nk, 1, x, m->dk, m->dk_, dv, 1, PG(KW), dv);
	bias_grad((size_t)n * nk, dv, m->dk_, PG(KB));
	gemm(1, 0, m->dk, dv, n * nk, 1, x, m->dk, m->dv_, dv, 1, PG(VW), dv);
	bias_grad((size_t)n * nk, dv, m->dv_, PG(VB));
	if (dx) {
		gemm(0, 1, n * nk, m->dk, dv, 1, m->dk_, dv, PW(KW), dv, dx_acc ? 1 : 0, dx, m->dk);
		gemm(0, 1, n * nk, m->dk, dv, 1, m->dv_, dv, PW(VW), dv, 1, dx, m->dk);
	}
	return 0;
}

int sk_mab_forward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, float *out)
{
	return mab_forward(m, l, n, q, x, out, 0);
}

int sk_mab_backward(sk_mab *m, sk_layer *l, int n, const float *q, const float *x, const float *dout, float *dq,
                    float *dx, int dx_acc)
{
	return mab_backward(m, l, n, q, x, dout, dq, dx, dx_acc, 0);
}

/* ---- the mha layer ---- */

static int mha_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	int heads, d;
	sk_mab *m = l->priv;
	if (sk_opt_int(s, o, "d", l->in.d[1], &d) < 0 || sk_mab_opts(s, o, d, &heads, NULL) < 0)
		return -1;
	if (sk_mab_declare(m, l, "", l->in.d[1], l->in.d[1], d, heads, l->in.d[0], l->in.d[0], 0, 0) < 0)
		return -1;
	l->out = sk_shape2(l->in.d[0], d);
	l->flops = sk_mab_flops(m);
	return 0;
}

int sk_mab_layer_setup(sk_layer *l, int max_batch) { return sk_mab_setup(l->priv, max_batch); }

static int mha_forward(sk_layer *l, const sk_ctx *c, int n, const float *x, float *y)
{
	(void)c;
	return mab_forward(l->priv, l, n, x, x, y, 1);
}

static int mha_backward(sk_layer *l, const sk_ctx *c, int n, const float *x, const float *y, const float *dy,
                        float *dx)
{
	(void)c;
	(void)y;
	return mab_backward(l->priv, l, n, x, x, dy, dx, dx, 1, 1);
}

void sk_mab_layer_destroy(sk_layer *l) { sk_mab_free(l->priv); }

SK_LAYER(mha, "mha [heads=H] [d=D]   (multihead self-attention on T x D sets)",
         .setup = sk_mab_layer_setup, .destroy = sk_mab_layer_destroy, .priv_size = sizeof(sk_mab), .in_dims = 2);

