/* arch.c: DMRNet and ResNet specs for CIFAR-style inputs (see sk_arch.h). */
#include "sk_arch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 1000   /* per stage: depth up to 6002 */

static const char *const kind_names[] = {"dmrnet", "resnet"};

int sk_arch_kind_parse(const char *s)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(s, kind_names[i]))
			return i;
	return sk_error("unknown architecture '%s' (known: dmrnet, resnet)", s);
}

const char *sk_arch_kind_name(int kind) { return kind >= 0 && kind < 2 ? kind_names[kind] : "?"; }

int sk_arch_blocks(int depth)
{
	if (depth < 8 || depth > 6 * MAX_BLOCKS + 2 || (depth - 2) % 6)
		return sk_error("depth %d cannot be built: the layout needs depth 6n+2 with n blocks per stage, "
		                "n = 1..%d (8, 14, 20, 26, 32, 38, 44, 50, 56, ...)",
		                depth, MAX_BLOCKS);
	return (depth - 2) / 6;
}

int sk_arch_check(const sk_arch *a)
{
	if (a->kind != SK_ARCH_DMRNET && a->kind != SK_ARCH_RESNET)
		return sk_error("unknown architecture kind %d", a->kind);
	if (sk_arch_blocks(a->depth) < 0)
		return -1;
	if (a->width < 1 || a->width > 4096)
		return sk_error("width %d is out of range 1..4096", a->width);
	if (a->classes < 1 || a->classes > 1000000)
		return sk_error("%d classes is out of range 1..1000000", a->classes);
	if (a->in_c < 1 || a->in_c > 4096)
		return sk_error("%d input channels is out of range 1..4096", a->in_c);
	if (a->in_h < 4 || a->in_w < 4 || a->in_h > 65536 || a->in_w > 65536)
		return sk_error("input %dx%d is out of range: each side must be 4..65536 (two stride-2 stages)",
		                a->in_h, a->in_w);
	return 0;
}

/* ---- spec text ---- */

typedef struct sbuf {
	char *p;
	size_t n, cap;
	int err;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int r;
	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		r = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (r < 0) {
			b->err = 1;
			return;
		}
		if ((size_t)r < b->cap - b->n) {
			b->n += (size_t)r;
			return;
		}
		size_t cap = 2 * b->cap + (size_t)r + 256;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->err = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
}

char *sk_arch_spec(const sk_arch *a)
{
	sbuf b = {NULL, 0, 0, 0};
	int n, dmr = a->kind == SK_ARCH_DMRNET;
	if (sk_arch_check(a) < 0)
		return NULL;
	n = sk_arch_blocks(a->depth);
	if (!(b.p = malloc(b.cap = 4096))) {
		sk_error("out of memory");
		return NULL;
	}
	b.p[0] = 0;
	if (dmr)
		sb_printf(&b,
		          "# DMRNet (merge-and-run mappings, Zhao et al.), depth %d: %d merge-and-run block%s per stage,\n"
		          "# widths %d %d %d; the streams travel as one tensor of 2 x width channels.\n",
		          a->depth, n, n > 1 ? "s" : "", a->width, 2 * a->width, 4 * a->width);
	else
		sb_printf(&b,
		          "# ResNet (He et al.), depth %d: %d basic block%s per stage, widths %d %d %d,\n"
		          "# transitions with %s shortcuts.\n",
		          a->depth, n, n > 1 ? "s" : "", a->width, 2 * a->width, 4 * a->width,
		          a->shortcut_a ? "zero-padded identity (option A)" : "1x1 conv + BN projection (option B)");
	sb_printf(&b, "# written by mr-build (simkit %s)\n", SK_VERSION_STRING);
	/* fusenet's CIFAR recipe (share/recipes/dmrnet.txt); snet-train's options override it */
	sb_printf(&b, "train optimizer=nesterov momentum=0.9 lr=0.1 wd=1e-4 batch=64 epochs=400\n"
	              "train schedule=multistep milestones=200,300,350 gamma=0.1 crop=4 flip=1\n");
	/* pixels 0..255 to 0..1; per-channel CIFAR statistics as fusenet uses */
	sb_printf(&b, "input %d %d %d scale=0.00392156862745098", a->in_c, a->in_h, a->in_w);
	if (a->in_c == 3)
		sb_printf(&b, " mean=0.49140,0.48216,0.44653 std=0.24703,0.24349,0.26159");
	sb_printf(&b, "\n");
	sb_printf(&b, "conv %d k=3 pad=1 bias=0 name=stem\nbn name=stem_bn\nrelu name=stem_relu\n", a->width);
	for (int st = 0; st < 3; st++) {
		int w = a->width << st;
		for (int i = 0; i < n; i++) {
			char opts[128];
			int o = 0;
			opts[0] = 0;
			if (i == 0 && st > 0)
				o += snprintf(opts + o, sizeof opts - (size_t)o, " stride=2");
			if (dmr && st == 0 && i == 0)
				o += snprintf(opts + o, sizeof opts - (size_t)o, " in=single");
			if (dmr && st == 2 && i == n - 1)
				o += snprintf(opts + o, sizeof opts - (size_t)o, " out=merged");
			if (!dmr && a->shortcut_a && i == 0 && st > 0)
				o += snprintf(opts + o, sizeof opts - (size_t)o, " shortcut=a");
			sb_printf(&b, "%s %d%s name=s%db%d\n", dmr ? "mrblock" : "resblock", w, opts, st + 1, i + 1);
		}
	}
	sb_printf(&b, "gap name=pool\nlinear %d init=xavier name=fc\n", a->classes);
	if (b.err) {
		free(b.p);
		sk_error("out of memory");
		return NULL;
	}
	return b.p;
}

/* ---- analytic parameter count (matches the layers; checked in tests) ---- */

static int64_t branch_params(int64_t cin, int64_t out) { return 9 * cin * out + 9 * out * out + 4 * out; }
static int64_t proj_params(int64_t cin, int64_t out) { return cin * out + 2 * out; }

int64_t sk_arch_params(const sk_arch *a)
{
	int64_t p, c = a->width, streams = a->kind == SK_ARCH_DMRNET ? 2 : 1;
	int n;
	if (sk_arch_check(a) < 0)
		return -1;
	n = sk_arch_blocks(a->depth);
	p = 9 * (int64_t)a->in_c * a->width + 2 * (int64_t)a->width;   /* stem conv + BN */
	for (int st = 0; st < 3; st++) {
		int64_t w = (int64_t)a->width << st;
		p += streams * branch_params(c, w);
		if ((c != w || st > 0) && !(a->kind == SK_ARCH_RESNET && a->shortcut_a))
			p += streams * proj_params(c, w);
		p += (int64_t)(n - 1) * streams * branch_params(w, w);
		c = w;
	}
	p += 4 * (int64_t)a->width * a->classes + a->classes;   /* fc */
	return p;
}

int64_t sk_arch_match(sk_arch *a, int64_t target, int search_depth, int max_depth, int max_width)
{
	sk_arch t = *a, best = *a;
	int64_t bestp = -1, bestd = 0;
	int lo = search_depth ? 1 : 1, hi = search_depth ? (max_depth - 2) / 6 : max_width;
	if (target < 1)
		return sk_error("target parameter count %lld is not positive", (long long)target);
	if (hi < 1)
		return sk_error("nothing to search: the %s limit is too small", search_depth ? "depth" : "width");
	for (int v = lo; v <= hi; v++) {
		int64_t p, d;
		if (search_depth)
			t.depth = 6 * v + 2;
		else
			t.width = v;
		if ((p = sk_arch_params(&t)) < 0)
			return -1;
		d = p > target ? p - target : target - p;
		if (bestp < 0 || d < bestd) {
			bestp = p;
			bestd = d;
			best = t;
		}
		if (p > target)   /* counts grow with depth and width: stop past the target */
			break;
	}
	*a = best;
	return bestp;
}

static int macs_fn(sk_layer *l, int depth, void *arg)
{
	sk_affine a;
	(void)depth;
	if (sk_layer_affine(l, &a))
		*(double *)arg += a.macs;
	return 0;
}

double sk_arch_macs(sk_seq *q)
{
	double m = 0;
	sk_seq_walk_layers(q, macs_fn, &m);
	return m;
}
