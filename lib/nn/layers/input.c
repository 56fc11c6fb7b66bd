/* input.c: the first line of every model, `input C H W [scale=S]
 * [mean=a,b,c] [std=a,b,c]` (or `input D`, `input T D` for vectors and
 * sets).  It states the per-example input shape (the model builder reads it
 * from this line) and normalises: y = (x*scale - mean[c]) / std[c], per
 * channel for images and per feature for vectors and sets.  mean and std
 * take one value (for all) or one per channel; when given they are stored
 * as buffers `<name>.mean` and `<name>.std` and so travel with the model.
 */
#include "sk_kernels.h"
#include "sk_layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct input {
	float scale;
	int nc, inner;      /* channels (or features) and values per channel run */
	int imean, istd;    /* parameter indices or -1 */
	float *lists;       /* the mean= and std= values as given (the parameters' fill) */
} input;

/* Parse "a,b,c": one value (for all nc) or nc values into out, which holds
 * one more than the commas of text; the count in *k. */
static int parse_list(const sk_spec *s, sk_specline *o, const char *key, const char *text, int nc, float *out,
                      int *kout)
{
	int k = 0;
	const char *p = text;
	while (*p) {
		char *end;
		float v = strtof(p, &end);
		if (end == p || (*end && *end != ',') || !isfinite(v))
			return sk_spec_error(s, o, "%s='%s' is not a comma-separated list of numbers", key, text);
		if (k == nc)
			return sk_spec_error(s, o, "%s='%s' has more than the %d values needed", key, text, nc);
		out[k++] = v;
		p = *end ? end + 1 : end;
	}
	if (k != 1 && k != nc)
		return sk_spec_error(s, o, "%s='%s' has %d values, need 1 or %d", key, text, k, nc);
	*kout = k;
	return 0;
}

static size_t list_len(const char *text)
{
	size_t n = 1;
	for (; text && *text; text++)
		n += *text == ',';
	return n;
}

/* Declare buffer `name` filled with the values of list `text`, at out. */
static int list_param(sk_layer *l, const sk_spec *s, sk_specline *o, const char *name, const char *text, float *out)
{
	input *in = l->priv;
	int64_t shape[1] = {in->nc};
	int k = 0, i;
	if (parse_list(s, o, name, text, in->nc, out, &k) < 0 ||
	    (i = sk_layer_param(l, name, 1, shape, SK_INIT_CUSTOM, 0, 0, 0, SK_P_BUFFER)) < 0)
		return -1;
	l->params[i].fill = out;
	l->params[i].nfill = (size_t)k;
	return i;
}

static int input_create(sk_layer *l, const sk_spec *s, sk_specline *o)
{
	input *in = l->priv;
	const char *mean = NULL, *std = NULL;
	in->imean = in->istd = -1;
	if (o->npos < 1 || o->npos > 3)
		return sk_spec_error(s, o, "needs the input shape: C H W, D or T D");
	if (o->npos != l->in.n)
		return sk_spec_error(s, o, "declares %d dimensions but the model input has %d", o->npos, l->in.n);
	for (int i = 0; i < o->npos; i++) {
		int d;
		if (sk_opt_pos_int(s, o, i, 1, 0, &d) < 0)
			return -1;
		if (d != l->in.d[i])
			return sk_spec_error(s, o, "dimension %d is %d but the model input has %d", i + 1, d, l->in.d[i]);
	}
	if (sk_opt_float(s, o, "scale", 1.0f, &in->scale) < 0 || sk_opt_str(s, o, "mean", NULL, &mean) < 0 ||
	    sk_opt_str(s, o, "std", NULL, &std) < 0)
		return -1;
	if (!isfinite(in->scale))
		return sk_spec_error(s, o, "scale must be finite");
	if (l->in.n == 3) {
		in->nc = l->in.d[0];
		in->inner = l->in.d[1] * l->in.d[2];
	} else {
		in->nc = l->in.d[l->in.n - 1];
		in->inner = 1;
	}
	l->out = l->in;
	l->flops = (mean || std || in->scale != 1.0f) ? 2.0 * (double)sk_shape_size(l->in) : 0;
	size_t nm = mean ? list_len(mean) : 0, ns = std ? list_len(std) : 0;
	sk_part lists[] = {SK_PART(in->lists, nm + ns)};
	if ((mean || std) && sk_layer_parts(l, 1, lists) < 0)
		return -1;
	if (mean && (in->imean = list_param(l, s, o, "mean", mean, in->lists)) < 0)
		return -1;
	if (std) {
		if ((in->istd = list_param(l, s, o, "std", std, in->lists + nm)) < 0)
			return -1;
		for (size_t i = 0; i < l->params[in->istd].nfill; i++)
			if (!(in->lists[nm + i] > 0))
				return sk_spec_error(s, o, "std values must be positive");
	}
	return 0;
}

/* y = a[c] x + b[c] */
static void coeffs(const sk_layer *l, int c, float *a, float *b)
{
	const input *in = l->priv;
	float m = in->imean >= 0 ? l->params[in->imean].w[c] : 0.0f;
	float sd = in->istd >= 0 ? l->params[in->istd].w[c] : 1.0f;
	*a = in->scale / sd;
	*b = -m / sd;
}

static int input_forward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, float *y)
{
	const input *in = l->priv;
	size_t m = sk_shape_size(l->in) * (size_t)n, run = (size_t)in->inner;
	(void)ctx;
	if (in->imean < 0 && in->istd < 0 && in->scale == 1.0f) {
		memcpy(y, x, m * sizeof(float));
		return 0;
	}
	if (run == 1) {
		for (size_t i = 0; i < m; i++) {
			float a, b;
			coeffs(l, (int)(i % (size_t)in->nc), &a, &b);
			y[i] = a * x[i] + b;
		}
		return 0;
	}
	for (size_t i = 0; i < m; i += run) {
		float a, b;
		coeffs(l, (int)((i / run) % (size_t)in->nc), &a, &b);
		sk_vaffine(run, a, 0.0f, b, x + i, y + i);
	}
	return 0;
}

static int input_backward(sk_layer *l, const sk_ctx *ctx, int n, const float *x, const float *y, const float *dy,
                          float *dx)
{
	const input *in = l->priv;
	size_t m = sk_shape_size(l->in) * (size_t)n, run = (size_t)in->inner;
	(void)ctx;
	(void)x;
	(void)y;
	if (!dx)
		return 0;
	for (size_t i = 0; i < m; i += run) {
		float a, b;
		coeffs(l, (int)((i / run) % (size_t)in->nc), &a, &b);
		for (size_t j = 0; j < run; j++)
			dx[i + j] = a * dy[i + j];
	}
	return 0;
}

SK_LAYER(input, "input C H W | input D | input T D [scale=S] [mean=a,b,...] [std=a,b,...]",
         .priv_size = sizeof(input));
