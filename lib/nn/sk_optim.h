/* sk_optim.h: optimisers (SGD with momentum, Nesterov, Adam, AdamW, RMSprop, NAdam) and
 * learning-rate schedules (constant, step, multistep, cosine; linear warm-up).
 *
 * The optimiser owns one state slot per trainable parameter (buffers and
 * frozen parameters are left out) and updates p->w from p->g in place; the
 * caller zeroes the gradients before the next accumulation.  Updates follow
 * PyTorch's definitions so that recipes carry over:
 *   sgd:      g' = g + wd*w;  m = mu*m + g';  w -= lr*m
 *   nesterov: g' = g + wd*w;  m = mu*m + g';  w -= lr*(g' + mu*m)
 *   adam:     g' = g + wd*w;  m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;
 *             w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
 *   adamw:    w -= lr*wd*w (decoupled), then adam with wd = 0
 *   rmsprop:  g' = g + wd*w;  v = a*v + (1-a)*g'^2;  d = g'/(sqrt(v) + eps);
 *             with momentum mu > 0: b = mu*b + d, d = b;  w -= lr*d
 *             (torch.optim.RMSprop, centered=False)
 *   nadam:    g' = g + wd*w;  m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;
 *             mu_t = b1*(1 - 0.5*0.96^(t*psi)), psi = 0.004 (momentum decay);
 *             P_t = mu_1*...*mu_t;  d = sqrt(v/(1-b2^t)) + eps;
 *             w -= lr*(1-mu_t)/(1-P_t) * g'/d + lr*mu_{t+1}/(1-P_t*mu_{t+1}) * m/d
 *             (torch.optim.NAdam, Keras's Nadam; Dozat 2016)
 * Weight decay never applies to SK_P_NODECAY parameters (biases, norms).
 */
#ifndef SK_OPTIM_H
#define SK_OPTIM_H

#include <stdint.h>
#include <stdio.h>

#include "sk_layer.h"
#include "sk_stream.h"

typedef enum sk_opt_kind { SK_OPT_SGD = 0, SK_OPT_NESTEROV, SK_OPT_ADAM, SK_OPT_ADAMW, SK_OPT_RMSPROP,
	SK_OPT_NADAM } sk_opt_kind;

/* NAdam's momentum decay psi (torch.optim.NAdam's momentum_decay, Keras's
 * schedule_decay). */
#define SK_NADAM_MOMENTUM_DECAY 0.004

typedef struct sk_optim_config {
	sk_opt_kind kind;
	float momentum;   /* sgd, nesterov (default 0.9); rmsprop (default 0) */
	float wd;         /* weight decay (default 0; adamw: decoupled) */
	float beta1, beta2, eps;   /* adam, adamw, nadam (0.9, 0.999, 1e-8); eps also rmsprop's */
	float alpha;      /* rmsprop: smoothing of the mean of g^2 (0.99) */
} sk_optim_config;

/* Fill defaults for a kind. */
void sk_optim_defaults(sk_optim_config *c, sk_opt_kind kind);
/* "sgd", "nesterov", "adam", "adamw", "rmsprop", "nadam" <-> kind; parse returns -1 on unknown. */
const char *sk_optim_name(sk_opt_kind k);
int sk_optim_parse(const char *s, sk_opt_kind *out);
/* The learning rate used when none is given: 0.05 for sgd and nesterov,
 * 0.001 for adam and adamw, 0.002 for nadam, 0.01 for rmsprop (PyTorch's
 * defaults). */
double sk_optim_default_lr(sk_opt_kind k);

typedef struct sk_optim sk_optim;

/* An optimiser over the given parameters (buffers and frozen ones skipped). */
sk_optim *sk_optim_new(const sk_optim_config *c, sk_param **params, int nparams);
/* The same over every parameter of a sequence. */
sk_optim *sk_optim_for_seq(const sk_optim_config *c, sk_seq *q);
void sk_optim_free(sk_optim *o);
/* One update with learning rate lr (gradients are read, not cleared). */
void sk_optim_step(sk_optim *o, float lr);
/* Steps taken so far (Adam's t). */
int64_t sk_optim_steps(const sk_optim *o);
int sk_optim_nparams(const sk_optim *o);

/* State as stream records: "opt.<param>.m" (and ".v" for adam, adamw, nadam and
 * rmsprop), plus the step count in the attribute `t` of the first record
 * (nadam's momentum product is recomputed from it).  nrecords() tells
 * how many write_state() writes (for the model's `records` count). */
int sk_optim_nrecords(const sk_optim *o);
int sk_optim_write_state(const sk_optim *o, FILE *f);
/* Load one state record read from a checkpoint: 1 = consumed, 0 = not an
 * optimiser record, -1 = error (unknown parameter, wrong shape...).  The
 * payload of `h` is read from r when consumed. */
int sk_optim_load_record(sk_optim *o, sk_reader *r, const sk_header *h);
/* After loading: -1 naming the first slot whose state is missing. */
int sk_optim_check_loaded(const sk_optim *o);

/* ---- learning-rate schedules ---- */

typedef enum sk_sched_kind {
	SK_SCHED_CONSTANT = 0, SK_SCHED_STEP, SK_SCHED_MULTISTEP, SK_SCHED_COSINE
} sk_sched_kind;

#define SK_MAX_MILESTONES 32

typedef struct sk_schedule {
	sk_sched_kind kind;
	double lr;          /* base learning rate */
	int epochs;         /* total epochs (cosine) */
	int step_size;      /* step: decay every step_size epochs */
	double gamma;       /* step, multistep: factor (default 0.1) */
	int nmilestones;    /* multistep: epochs at which lr *= gamma */
	int milestones[SK_MAX_MILESTONES];
	double warmup;      /* linear warm-up over this many epochs (0: none) */
	double min_lr;      /* cosine floor (default 0) */
} sk_schedule;

const char *sk_sched_name(sk_sched_kind k);
int sk_sched_parse(const char *s, sk_sched_kind *out);
/* "30,60,90" into s->milestones (strictly increasing, positive). */
int sk_sched_parse_milestones(sk_schedule *s, const char *text);
/* The learning rate for the step taken at fractional epoch
 * t = epoch + step_in_epoch / steps_per_epoch (epoch 0-based).  Step and
 * multistep decay at whole epochs; cosine anneals continuously from lr at the
 * end of warm-up to min_lr at `epochs`; warm-up scales linearly from
 * 1/(warmup steps) to 1 over the first `warmup` epochs. */
double sk_sched_lr(const sk_schedule *s, int epoch, int64_t step_in_epoch, int64_t steps_per_epoch);

#endif
