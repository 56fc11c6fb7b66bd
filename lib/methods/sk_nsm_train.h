/* sk_nsm_train.h: nsm-pretrain's learners as a custom step of the one
 * training loop (sk_train.h): the NSM step (sk_nsm.h) or mini-batch
 * spherical k-means of patches (sk_cluster.h), on a model whose nsm layer
 * holds the filters W and the lateral weights M.  The loop owns the data
 * order, the schedule, checkpoints, resume, stop and the log; the learner
 * adds to the checkpoints its own state: the options that shape the run
 * (a resumed run must match them), the label encoder (supervised) and the
 * k-means counts.
 */
#ifndef SK_NSM_TRAIN_H
#define SK_NSM_TRAIN_H

#include "sk_nsm.h"
#include "sk_train.h"

enum sk_nsm_algo { SK_NSM_ALGO_NSM = 0, SK_NSM_ALGO_KMEANS = 1 };

typedef struct sk_nsm_learn_opts {
	sk_nsm_opts o;        /* the solver's; the shape (and the classes) come from the data */
	int algo;             /* enum sk_nsm_algo */
	int init;             /* enum sk_nsm_init */
	double scale;         /* pixels are multiplied by it; 0: 1/255 when the data exceed 1, else 1 */
	const char *name;     /* layer name (NULL: nsm1, or conv1 for a conv output) */
	uint64_t seed;
} sk_nsm_learn_opts;

typedef struct sk_nsm_learner sk_nsm_learner;

/* A learner for the data d (N x C x H x W, or N x H x W viewed as
 * N x 1 x H x W: d's shape is changed so), batches of up to o->o.max_batch
 * images on o->o.threads threads, initialised from the seed.  Supervised:
 * labels are class indices, at most 100000 classes; o->o.classes 0 means
 * one more than the largest label.  NULL with an error naming the problem. */
sk_nsm_learner *sk_nsm_learner_new(const sk_nsm_learn_opts *o, sk_dataset *d);
void sk_nsm_learner_free(sk_nsm_learner *L);
/* One line saying what it learns, into buf: "8 filters 1x5x5 stride 1 on
 * 1x28x28 images (scale 0.00392157), ..." or "k-means baseline: ...". */
const char *sk_nsm_learner_describe(const sk_nsm_learner *L, char *buf, size_t n);
/* The model the trainer trains and checkpoints: `input` and the nsm layer. */
sk_model *sk_nsm_learner_model(sk_nsm_learner *L);
/* Make c run this learner: c->step, the state hooks and c->step_arg.
 * `recipe` (the schedule and the rest of the loop's options, NULL: none)
 * joins the learner's options in the fingerprint a resumed run must match. */
void sk_nsm_learner_attach(sk_nsm_learner *L, sk_train_config *c, const char *recipe);
/* After sk_trainer_resume: -1 naming what is missing unless the checkpoint
 * held this learner's state. */
int sk_nsm_learner_resumed(const sk_nsm_learner *L, const char *path);
/* Steps since the previous call and the statistics of the last one. */
int64_t sk_nsm_learner_epoch(sk_nsm_learner *L, sk_nsm_stats *last);
/* The model to write: `input`, the nsm layer (eta: --eta auto's value for
 * the final M) and, when pool > 0, `pool max k=POOL name=pool`; or with conv
 * the filters as `conv K ... bias=0`.  Attributes: seed, version, trainer,
 * algo and the nsm options. */
sk_model *sk_nsm_learner_output(sk_nsm_learner *L, int conv, int pool);

#endif
