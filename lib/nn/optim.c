/* optim.c: SGD (momentum, Nesterov), Adam, AdamW, NAdam, RMSprop and
 * learning-rate schedules. */
#include "sk_optim.h"
#include "sk_kernels.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
	sk_param *p;
	float *m, *v;      /* v only for adam, adamw, nadam and rmsprop */
	int loaded;
} slot;

struct sk_optim {
	sk_optim_config c;
	int n;
	slot *s;
	int64_t t;
	/* nadam: the product mu_1 ... mu_t of the momentum schedule, a pure
	 * function of t (recomputed after a reload, see nadam_product) */
	double mu_prod;
	int64_t mu_t;
};

static const char *const opt_names[] = {"sgd", "nesterov", "adam", "adamw", "rmsprop", "nadam", NULL};
static const char *const sched_names[] = {"constant", "step", "multistep", "cosine", NULL};

void sk_optim_defaults(sk_optim_config *c, sk_opt_kind kind)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->momentum = kind == SK_OPT_RMSPROP ? 0.0f : 0.9f;
	c->alpha = 0.99f;
	c->wd = 0;
	c->beta1 = 0.9f;
	c->beta2 = 0.999f;
	c->eps = 1e-8f;
}

const char *sk_optim_name(sk_opt_kind k) { return (unsigned)k < 6 ? opt_names[k] : "?"; }

int sk_optim_parse(const char *s, sk_opt_kind *out)
{
	for (int i = 0; opt_names[i]; i++)
		if (!strcmp(s, opt_names[i])) {
			*out = (sk_opt_kind)i;
			return 0;
		}
	return sk_error("unknown optimizer '%s' (known: sgd, nesterov, adam, adamw, rmsprop, nadam)", s);
}

double sk_optim_default_lr(sk_opt_kind k)
{
	if (k == SK_OPT_ADAM || k == SK_OPT_ADAMW)
		return 0.001;
	return k == SK_OPT_NADAM ? 0.002 : k == SK_OPT_RMSPROP ? 0.01 : 0.05;
}

static int is_adam(const sk_optim *o) { return o->c.kind == SK_OPT_ADAM || o->c.kind == SK_OPT_ADAMW; }
/* a second state buffer: adam's, nadam's and rmsprop's running mean of g^2 */
static int has_v(const sk_optim *o)
{
	return is_adam(o) || o->c.kind == SK_OPT_NADAM || o->c.kind == SK_OPT_RMSPROP;
}

sk_optim *sk_optim_new(const sk_optim_config *c, sk_param **params, int nparams)
{
	sk_optim *o = calloc(1, sizeof *o);
	if (!o) {
		sk_error("out of memory");
		return NULL;
	}
	o->c = *c;
	o->mu_prod = 1.0;
	o->s = calloc((size_t)(nparams > 0 ? nparams : 1), sizeof *o->s);
	if (!o->s) {
		free(o);
		sk_error("out of memory");
		return NULL;
	}
	for (int i = 0; i < nparams; i++) {
		sk_param *p = params[i];
		slot *s;
		if ((p->flags & SK_P_BUFFER) || p->frozen || !p->g)
			continue;
		s = &o->s[o->n++];
		s->p = p;
		if (!(s->m = sk_alloc_array(p->size, sizeof(float))) ||
		    (has_v(o) && !(s->v = sk_alloc_array(p->size, sizeof(float))))) {
			sk_optim_free(o);
			return NULL;
		}
	}
	return o;
}

sk_optim *sk_optim_for_seq(const sk_optim_config *c, sk_seq *q)
{
	sk_param **ps;
	int n = sk_seq_params(q, &ps);
	if (n < 0)
		return NULL;
	sk_optim *o = sk_optim_new(c, ps, n);
	free(ps);
	return o;
}

void sk_optim_free(sk_optim *o)
{
	if (!o)
		return;
	for (int i = 0; i < o->n; i++) {
		sk_free(o->s[i].m);
		sk_free(o->s[i].v);
	}
	free(o->s);
	free(o);
}

int64_t sk_optim_steps(const sk_optim *o) { return o->t; }
int sk_optim_nparams(const sk_optim *o) { return o->n; }

static void step_sgd(const sk_optim *o, slot *s, float lr)
{
	sk_param *p = s->p;
	float wd = o->c.wd * sk_param_decay_mult(p), mu = o->c.momentum;
	float *w = p->w, *m = s->m;
	const float *g = p->g;
	size_t n = p->size;
	if (mu == 0) {
		for (size_t i = 0; i < n; i++)
			w[i] -= lr * (g[i] + wd * w[i]);
	} else if (o->c.kind == SK_OPT_NESTEROV) {
		for (size_t i = 0; i < n; i++) {
			float gi = g[i] + wd * w[i];
			float mi = mu * m[i] + gi;
			m[i] = mi;
			w[i] -= lr * (gi + mu * mi);
		}
	} else {
		/* PyTorch starts the buffer at the first gradient: m = 0 then
		 * m = mu*0 + g gives the same value. */
		sk_vsgd(n, lr, mu, wd, w, g, m);   /* explicit SIMD, dispatched */
	}
}

static void step_adam(const sk_optim *o, slot *s, float lr)
{
	sk_param *p = s->p;
	float wd = o->c.wd * sk_param_decay_mult(p);
	float b1 = o->c.beta1, b2 = o->c.beta2, eps = o->c.eps;
	double t = (double)o->t;
	float bc1 = (float)(1.0 - pow(b1, t)), bc2 = (float)(1.0 - pow(b2, t));
	float step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
	float *w = p->w, *m = s->m, *v = s->v;
	const float *g = p->g;
	size_t n = p->size;
	int decoupled = o->c.kind == SK_OPT_ADAMW;
	for (size_t i = 0; i < n; i++) {
		float gi = g[i];
		if (decoupled)
			w[i] -= lr * wd * w[i];
		else
			gi += wd * w[i];
		float mi = b1 * m[i] + (1 - b1) * gi;
		float vi = b2 * v[i] + (1 - b2) * gi * gi;
		m[i] = mi;
		v[i] = vi;
		w[i] -= step * mi / (sqrtf(vi) * rbc2 + eps);
	}
}

/* PyTorch's RMSprop (not centered): v = a*v + (1-a)*g'^2, then
 * w -= lr * g'/(sqrt(v)+eps), or with momentum b = mu*b + g'/(sqrt(v)+eps),
 * w -= lr*b. */
static void step_rmsprop(const sk_optim *o, slot *s, float lr)
{
	sk_param *p = s->p;
	float wd = o->c.wd * sk_param_decay_mult(p), a = o->c.alpha, eps = o->c.eps, mu = o->c.momentum;
	float *w = p->w, *m = s->m, *v = s->v;
	const float *g = p->g;
	size_t n = p->size;
	for (size_t i = 0; i < n; i++) {
		float gi = g[i] + wd * w[i];
		float vi = a * v[i] + (1 - a) * gi * gi;
		float d = gi / (sqrtf(vi) + eps);
		v[i] = vi;
		if (mu > 0) {
			d += mu * m[i];
			m[i] = d;
		}
		w[i] -= lr * d;
	}
}

/* NAdam's momentum schedule (Dozat 2016, as torch.optim.NAdam and Keras):
 * mu_t = b1 (1 - 0.5 * 0.96^(t psi)), psi = SK_NADAM_MOMENTUM_DECAY. */
static double nadam_mu(double b1, int64_t t)
{
	return b1 * (1.0 - 0.5 * pow(0.96, (double)t * SK_NADAM_MOMENTUM_DECAY));
}

/* The product mu_1 ... mu_t, kept from step to step and recomputed by the
 * same multiplications when the step count jumped (a reloaded checkpoint),
 * so a resumed run takes bitwise the same steps. */
static double nadam_product(sk_optim *o)
{
	if (o->mu_t != o->t - 1) {
		o->mu_prod = 1.0;
		for (o->mu_t = 0; o->mu_t < o->t - 1;)
			o->mu_prod *= nadam_mu(o->c.beta1, ++o->mu_t);
	}
	o->mu_prod *= nadam_mu(o->c.beta1, o->t);
	o->mu_t = o->t;
	return o->mu_prod;
}

/* torch.optim.NAdam (weight decay added to the gradient, not decoupled):
 *   m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  d = sqrt(v/(1-b2^t)) + eps
 *   w -= lr (1-mu_t)/(1-prod_{i<=t} mu_i) g'/d
 *      + lr mu_{t+1}/(1-prod_{i<=t+1} mu_i) m/d */
static void step_nadam(const sk_optim *o, slot *s, float lr, double prod)
{
	sk_param *p = s->p;
	float wd = o->c.wd * sk_param_decay_mult(p);
	float b1 = o->c.beta1, b2 = o->c.beta2, eps = o->c.eps;
	double mu = nadam_mu(b1, o->t), mu1 = nadam_mu(b1, o->t + 1);
	float cg = (float)(lr * (1.0 - mu) / (1.0 - prod));
	float cm = (float)(lr * mu1 / (1.0 - prod * mu1));
	float bc2 = (float)(1.0 - pow(b2, (double)o->t));
	float *w = p->w, *m = s->m, *v = s->v;
	const float *g = p->g;
	size_t n = p->size;
	for (size_t i = 0; i < n; i++) {
		float gi = g[i] + wd * w[i];
		float mi = b1 * m[i] + (1 - b1) * gi;
		float vi = b2 * v[i] + (1 - b2) * gi * gi;
		float d = sqrtf(vi / bc2) + eps;
		m[i] = mi;
		v[i] = vi;
		w[i] = w[i] - cg * gi / d - cm * mi / d;   /* torch's two addcdiv */
	}
}

void sk_optim_step(sk_optim *o, float lr)
{
	double prod = 0;
	o->t++;
	if (o->c.kind == SK_OPT_NADAM)
		prod = nadam_product(o);
	for (int i = 0; i < o->n; i++) {
		float plr = lr * sk_param_lr_mult(o->s[i].p);
		if (is_adam(o))
			step_adam(o, &o->s[i], plr);
		else if (o->c.kind == SK_OPT_NADAM)
			step_nadam(o, &o->s[i], plr, prod);
		else if (o->c.kind == SK_OPT_RMSPROP)
			step_rmsprop(o, &o->s[i], plr);
		else
			step_sgd(o, &o->s[i], plr);
	}
}

/* ---- state records ---- */

int sk_optim_nrecords(const sk_optim *o) { return o->n * (has_v(o) ? 2 : 1); }

int sk_optim_write_state(const sk_optim *o, FILE *f)
{
	char name[SK_NAME_MAX + 8];
	sk_attrs a;
	int rc = 0;
	sk_attrs_init(&a);
	for (int i = 0; i < o->n && rc == 0; i++) {
		const sk_param *p = o->s[i].p;
		for (int k = 0; k < (has_v(o) ? 2 : 1) && rc == 0; k++) {
			snprintf(name, sizeof name, "opt.%s.%s", p->name, k ? "v" : "m");
			sk_attrs_free(&a);
			sk_attrs_init(&a);
			if (i == 0 && k == 0 &&
			    (sk_attrs_setf(&a, "t", "%lld", (long long)o->t) < 0 ||
			     sk_attrs_set(&a, "optimizer", sk_optim_name(o->c.kind)) < 0)) {
				rc = -1;
				break;
			}
			rc = sk_write_record_raw(f, name, SK_F32, p->ndim, p->shape, k ? o->s[i].v : o->s[i].m, &a, 0);
		}
	}
	sk_attrs_free(&a);
	return rc;
}

int sk_optim_load_record(sk_optim *o, sk_reader *r, const sk_header *h)
{
	size_t len = strlen(h->name);
	int which;
	if (strncmp(h->name, "opt.", 4) != 0 || len < 7)
		return 0;
	if (!strcmp(h->name + len - 2, ".m"))
		which = 0;
	else if (!strcmp(h->name + len - 2, ".v"))
		which = 1;
	else
		return sk_error("unknown optimiser state record '%s'", h->name);
	for (int i = 0; i < o->n; i++) {
		slot *s = &o->s[i];
		const sk_param *p = s->p;
		if (strlen(p->name) != len - 6 || strncmp(p->name, h->name + 4, len - 6))
			continue;
		if (which == 1 && !s->v)
			return sk_error("optimiser state '%s' does not belong to %s", h->name,
			                sk_optim_name(o->c.kind));
		if (h->dtype != SK_F32 || h->rawbytes != p->size * sizeof(float))
			return sk_error("optimiser state '%s' has the wrong type or size", h->name);
		if (sk_reader_payload_into(r, h, which ? s->v : s->m) < 0)
			return -1;
		s->loaded |= 1 << which;
		const char *t = sk_attrs_get(&h->attrs, "t");
		if (t) {
			char *end;
			errno = 0;
			long long v = strtoll(t, &end, 10);
			if (errno || *end || v < 0)
				return sk_error("optimiser state '%s': bad step count '%s'", h->name, t);
			o->t = v;
		}
		return 1;
	}
	return sk_error("optimiser state '%s' names no trainable parameter", h->name);
}

int sk_optim_check_loaded(const sk_optim *o)
{
	int want = has_v(o) ? 3 : 1;
	for (int i = 0; i < o->n; i++)
		if (o->s[i].loaded != want)
			return sk_error("optimiser state for '%s' is missing", o->s[i].p->name);
	return 0;
}

/* ---- schedules ---- */

const char *sk_sched_name(sk_sched_kind k) { return (unsigned)k < 4 ? sched_names[k] : "?"; }

int sk_sched_parse(const char *s, sk_sched_kind *out)
{
	for (int i = 0; sched_names[i]; i++)
		if (!strcmp(s, sched_names[i])) {
			*out = (sk_sched_kind)i;
			return 0;
		}
	return sk_error("unknown schedule '%s' (known: constant, step, multistep, cosine)", s);
}

int sk_sched_parse_milestones(sk_schedule *s, const char *text)
{
	const char *p = text;
	s->nmilestones = 0;
	while (*p) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (errno || end == p || v <= 0 || v > 1000000000L)
			return sk_error("milestones '%s': '%s' is not a positive epoch", text, p);
		if (s->nmilestones && v <= s->milestones[s->nmilestones - 1])
			return sk_error("milestones '%s' must increase", text);
		if (s->nmilestones == SK_MAX_MILESTONES)
			return sk_error("milestones '%s': more than %d", text, SK_MAX_MILESTONES);
		s->milestones[s->nmilestones++] = (int)v;
		if (*end == ',')
			end++;
		else if (*end)
			return sk_error("milestones '%s': expected a comma-separated list of epochs", text);
		p = end;
	}
	if (!s->nmilestones)
		return sk_error("milestones: empty list");
	return 0;
}

double sk_sched_lr(const sk_schedule *s, int epoch, int64_t step_in_epoch, int64_t steps_per_epoch)
{
	double spe = steps_per_epoch > 0 ? (double)steps_per_epoch : 1.0;
	double t = epoch + (double)step_in_epoch / spe;
	double lr = s->lr;
	switch (s->kind) {
	case SK_SCHED_CONSTANT:
		break;
	case SK_SCHED_STEP:
		if (s->step_size > 0)
			lr *= pow(s->gamma, epoch / s->step_size);
		break;
	case SK_SCHED_MULTISTEP:
		for (int i = 0; i < s->nmilestones; i++)
			if (epoch >= s->milestones[i])
				lr *= s->gamma;
		break;
	case SK_SCHED_COSINE: {
		double span = s->epochs - s->warmup, u = t - s->warmup;
		if (span <= 0)
			break;
		if (u < 0)
			u = 0;
		if (u > span)
			u = span;
		lr = s->min_lr + (s->lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * u / span));
		break;
	}
	}
	if (s->warmup > 0 && t < s->warmup) {
		double total = s->warmup * spe;
		double k = (double)epoch * spe + (double)step_in_epoch + 1.0;
		if (k < total)
			lr *= k / total;
	}
	return lr;
}
