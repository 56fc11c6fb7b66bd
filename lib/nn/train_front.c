/* train_front.c: what every training program (snet-train, nsm-pretrain)
 * does around sk_trainer_run: the command to record, the checkpoint path,
 * resuming, SIGINT and SIGTERM, the per-epoch TSV log (see sk_train.h). */
#include "sk_train.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int sk_train_argv(int argc, char **argv, char **out)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--stop-after-steps")) {
			i++;
			continue;
		}
		if (!strncmp(argv[i], "--resume=", 9) || !strncmp(argv[i], "--stop-after-steps=", 19))
			continue;
		out[n++] = argv[i];
	}
	out[n] = NULL;
	return n;
}

const char *sk_train_ckpt_path(const char *out, const char *ckpt, char **buf)
{
	struct stat st;
	size_t n;
	*buf = NULL;
	if (ckpt)
		return ckpt;
	if (!strcmp(out, "-")) {
		sk_error("writing the model to stdout needs --checkpoint FILE");
		return NULL;
	}
	if (stat(out, &st) == 0 && !S_ISREG(st.st_mode)) {
		sk_error("%s is not a regular file: name the checkpoint with --checkpoint FILE", out);
		return NULL;
	}
	n = strlen(out) + 6;
	if (!(*buf = malloc(n))) {
		sk_error("out of memory");
		return NULL;
	}
	snprintf(*buf, n, "%s.ckpt", out);
	return *buf;
}

sk_ofile *sk_train_open_output(const char *out, const char *ckpt, int force)
{
	sk_ofile *of, *ck;
	char msg[512];
	sk_ofile_install_signals();
	if (!(of = sk_ofile_open(out, force)))
		return NULL;
	if (!(ck = sk_ofile_open(ckpt, 1))) {
		snprintf(msg, sizeof msg, "%s", sk_errmsg());
		sk_ofile_abort(of);
		sk_error("--checkpoint: %s", msg);
		return NULL;
	}
	sk_ofile_abort(ck);
	return of;
}

int sk_train_resume(sk_trainer *t, const char *ckpt, const sk_train_config *c, int64_t examples, char *msg, size_t n,
                    int64_t *gstep)
{
	int ep;
	int64_t st, gs;
	if (sk_trainer_resume(t, ckpt, &ep, &st, &gs) < 0)
		return -1;
	if (ep >= c->epochs)
		snprintf(msg, n, "resuming %s: it already finished %d of %d epochs; writing the model only", ckpt, ep,
		         c->epochs);
	else
		snprintf(msg, n, "resuming %s at epoch %d, step %lld of %lld (global step %lld)", ckpt, ep + 1, (long long)st,
		         (long long)((examples + c->batch - 1) / c->batch), (long long)gs);
	if (gstep)
		*gstep = gs;
	return 0;
}

static volatile sig_atomic_t stop_flag;
static struct sigaction old_int, old_term;   /* sk_ofile's: remove temporaries, re-raise */

static void on_signal(int sig)
{
	if (stop_flag) {   /* a second signal: give up at once, leaving no temporary */
		sigaction(sig, sig == SIGINT ? &old_int : &old_term, NULL);
		raise(sig);
		return;
	}
	stop_flag = sig;
}

const volatile sig_atomic_t *sk_train_stop_flag(void) { return &stop_flag; }

void sk_train_catch_signals(void)
{
	struct sigaction sa;
	sk_ofile_install_signals();
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
}

FILE *sk_train_log_open(const char *path, int resume, const char *extra)
{
	FILE *f = fopen(path, resume ? "a" : "w");
	if (!f) {
		sk_error("%s: cannot open log: %s", path, strerror(errno));
		return NULL;
	}
	if (!resume || ftell(f) == 0) {
		fprintf(f, "epoch\tloss\ttrain_acc\tvalid_acc\tlr\timages_per_s\tseconds");
		if (extra && *extra)
			fprintf(f, "\t%s", extra);
		fprintf(f, "\n");
	}
	return f;
}

void sk_train_log_epoch(FILE *f, const sk_epoch_stats *s, int nextra, const double *extra)
{
	fprintf(f, "%d\t%.6f\t", s->epoch, s->loss);
	if (s->has_acc)
		fprintf(f, "%.6f\t", s->train_acc);
	else
		fprintf(f, "NA\t");
	if (s->has_valid)
		fprintf(f, "%.6f", s->valid_acc);
	else
		fprintf(f, "NA");
	fprintf(f, "\t%.6g\t%.1f\t%.3f", s->lr, s->images_per_s, s->seconds);
	for (int i = 0; i < nextra; i++)
		fprintf(f, "\t%.6g", extra[i]);
	fprintf(f, "\n");
	fflush(f);
}
