/* pool.c: the thread pool (see sk_pool.h). */
#include "sk_pool.h"
#include "sk_base.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

typedef struct worker {
	sk_pool *p;
	int id, rc;
	char err[512];
	pthread_t th;
} worker;

struct sk_pool {
	int n, started;
	worker *w;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint64_t gen;
	int pending, quit;
	/* the current job */
	int njob;
	sk_pool_fn fn;
	void *arg;
};

void sk_fpu_ftz(void)
{
#if defined(__SSE2__)
	_mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}

static void share(sk_pool *p, worker *w)
{
	w->rc = p->fn(p->arg, w->id);
	if (w->rc < 0)
		snprintf(w->err, sizeof w->err, "%s", sk_errmsg());
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	sk_pool *p = w->p;
	uint64_t seen = 0;
	sk_fpu_ftz();
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->gen == seen && !p->quit)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->quit) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		seen = p->gen;
		int mine = w->id < p->njob;
		pthread_mutex_unlock(&p->mu);
		if (!mine)
			continue;
		share(p, w);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
		pthread_mutex_unlock(&p->mu);
	}
}

void sk_pool_free(sk_pool *p)
{
	if (!p)
		return;
	if (p->started > 1) {
		pthread_mutex_lock(&p->mu);
		p->quit = 1;
		pthread_cond_broadcast(&p->go);
		pthread_mutex_unlock(&p->mu);
		for (int i = 1; i < p->started; i++)
			pthread_join(p->w[i].th, NULL);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	free(p->w);
	free(p);
}

sk_pool *sk_pool_new(int n)
{
	sk_pool *p;
	if (n < 1 || n > 256) {
		sk_error("threads %d out of range (1 to 256)", n);
		return NULL;
	}
	sk_fpu_ftz();
	if (!(p = calloc(1, sizeof *p)) || !(p->w = calloc((size_t)n, sizeof *p->w))) {
		free(p);
		sk_error("out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	p->n = n;
	p->started = 1;
	for (int i = 0; i < n; i++) {
		p->w[i].p = p;
		p->w[i].id = i;
	}
	for (int i = 1; i < n; i++) {
		if (pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]) != 0) {
			sk_error("cannot start thread %d", i);
			sk_pool_free(p);
			return NULL;
		}
		p->started = i + 1;
	}
	return p;
}

int sk_pool_size(const sk_pool *p) { return p->n; }

int sk_pool_run(sk_pool *p, int n, sk_pool_fn fn, void *arg)
{
	if (n <= 0)
		return 0;
	if (n > p->n)
		return sk_error("a job of %d shares on a pool of %d threads", n, p->n);
	p->fn = fn;
	p->arg = arg;
	if (n > 1) {
		pthread_mutex_lock(&p->mu);
		p->njob = n;
		p->pending = n - 1;
		p->gen++;
		pthread_cond_broadcast(&p->go);
		pthread_mutex_unlock(&p->mu);
	}
	sk_fpu_ftz();
	share(p, &p->w[0]);
	if (n > 1) {
		pthread_mutex_lock(&p->mu);
		while (p->pending > 0)
			pthread_cond_wait(&p->done, &p->mu);
		pthread_mutex_unlock(&p->mu);
	}
	for (int i = 0; i < n; i++)
		if (p->w[i].rc < 0)
			return sk_error("%s", p->w[i].err);
	return 0;
}
