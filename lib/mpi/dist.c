/* dist.c: MPI helpers for data-parallel training; see sk_dist.h. */
#include "sk_dist.h"
#include "sk_base.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

int sk_dist_init(int *argc, char ***argv, sk_dist *d)
{
	memset(d, 0, sizeof *d);
	if (MPI_Init(argc, argv) != MPI_SUCCESS)
		return sk_error("MPI_Init failed");
	MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d->size);
	return 0;
}

static int train_reduce(float *buf, size_t n, void *arg) { return sk_dist_allreduce(arg, buf, n); }

int sk_dist_train_init(int *argc, char ***argv, sk_dist *d, int fixed_order, sk_train_config *c)
{
	if (sk_dist_init(argc, argv, d) < 0)
		return -1;
	d->fixed_order = fixed_order;
	c->nshards = d->size;
	c->shard = d->rank;
	c->allreduce = train_reduce;
	c->allreduce_arg = d;
	c->allow_reshard = 1;
	return 0;
}

/* MPI counts are ints: move large buffers in pieces. */
#define PIECE ((size_t)1 << 28)

int sk_dist_allreduce(sk_dist *d, float *buf, size_t n)
{
	double t0 = MPI_Wtime();
	if (d->size == 1)
		return 0;
	if (!d->fixed_order) {
		for (size_t o = 0; o < n; o += PIECE) {
			int c = (int)(n - o < PIECE ? n - o : PIECE);
			if (MPI_Allreduce(MPI_IN_PLACE, buf + o, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
				return sk_error("MPI_Allreduce failed");
		}
	} else {
		size_t need;
		if (sk_mul_size(n, (size_t)d->size, &need) < 0)
			return -1;
		if (d->rank == 0 && need > d->cap) {
			sk_free(d->scratch);
			if (!(d->scratch = sk_alloc_array(need, sizeof(float))))
				return -1;
			d->cap = need;
		}
		for (size_t o = 0; o < n; o += PIECE) {
			int c = (int)(n - o < PIECE ? n - o : PIECE);
			if (MPI_Gather(buf + o, c, MPI_FLOAT, d->rank == 0 ? d->scratch : NULL, c, MPI_FLOAT, 0,
			               MPI_COMM_WORLD) != MPI_SUCCESS)
				return sk_error("MPI_Gather failed");
			if (d->rank == 0)
				for (int i = 0; i < c; i++) {
					float s = d->scratch[i];
					for (int r = 1; r < d->size; r++)
						s += d->scratch[(size_t)r * (size_t)c + (size_t)i];
					buf[o + (size_t)i] = s;
				}
			if (MPI_Bcast(buf + o, c, MPI_FLOAT, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
				return sk_error("MPI_Bcast failed");
		}
	}
	d->comm_seconds += MPI_Wtime() - t0;
	d->calls++;
	return 0;
}

int sk_dist_bcast(sk_dist *d, void *buf, size_t bytes)
{
	char *p = buf;
	if (d->size == 1)
		return 0;
	for (size_t o = 0; o < bytes; o += PIECE) {
		int c = (int)(bytes - o < PIECE ? bytes - o : PIECE);
		if (MPI_Bcast(p + o, c, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
			return sk_error("MPI_Bcast failed");
	}
	return 0;
}

int sk_dist_barrier(sk_dist *d)
{
	(void)d;
	return MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : sk_error("MPI_Barrier failed");
}

void sk_dist_finalize(sk_dist *d)
{
	sk_free(d->scratch);
	d->scratch = NULL;
	MPI_Finalize();
}
