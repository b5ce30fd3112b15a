/* core/dist.h — data-parallel processes over MPI: rank, world size and the few collectives that
 * training needs (all-reduce average, broadcast from rank 0, gather and all-gather of rows, an
 * agreement on errors).
 *
 * Built with `make MPI=1` (mpicc, CT_MPI defined) they go through Open MPI; in the default build,
 * and in the MPI build before ct_dist_init or when run without mpirun, they are those of one
 * process: rank 0 of 1, an all-reduce is the identity, a gather copies the row. A program written
 * for N ranks thus runs unchanged as one process.
 *
 *     int main(int argc, char **argv) {
 *         if (ct_dist_init(&argc, &argv)) { fprintf(stderr, "%s\n", ct_last_error()); return 1; }
 *         ... ct_loader_new(d, CT_LOADER(.batch = 128, .shard = ct_dist_rank(), .shards = ct_dist_world_size()))
 *         ... ct_fit(...)   (rank 0 logs and checkpoints; the gradients are averaged over the ranks)
 *         ct_dist_finalize();
 *     }
 *
 * Every collective must be called by every rank in the same order. An MPI failure returns
 * CT_ERR_IO with a message naming the MPI call and this rank ("MPI_Allreduce on rank 1 of 3: ..."). */
#ifndef CTAPE_CORE_DIST_H
#define CTAPE_CORE_DIST_H

#include "core.h"

/* Starts MPI (when built with it and not started already) with errors returned, not fatal.
 * argc and argv may be NULL. CT_OK or CT_ERR_IO. */
int ct_dist_init(int *argc, char ***argv);
/* Ends MPI when ct_dist_init started it; nothing otherwise. */
void ct_dist_finalize(void);
int ct_dist_rank(void);       /* 0 .. world size − 1; 0 without MPI */
int ct_dist_world_size(void); /* 1 without MPI */
/* 1 when the library was built with MPI (make MPI=1). */
int ct_dist_built_with_mpi(void);

/* buf[i] = (Σ over ranks of buf[i]) / world size, on every rank. */
int ct_dist_allreduce_mean(ct_real *buf, size_t n);
/* buf[i] = Σ over ranks of buf[i], on every rank (counts and statistics). */
int ct_dist_allreduce_sum_f64(double *buf, size_t n);
/* Non-blocking: starts buf[i] = Σ over ranks of buf[i] (n <= INT_MAX) and returns at once with *req
 * (NULL on one rank, where the sum is buf already). buf is MPI's until ct_dist_wait(*req), which ends
 * the request and frees it; ct_dist_test lets MPI move it on meanwhile (1 once it is done). Every
 * rank starts the same requests in the same order. */
typedef struct ct_dist_request ct_dist_request;
int ct_dist_iallreduce_sum(ct_real *buf, size_t n, ct_dist_request **req);
int ct_dist_test(ct_dist_request *req);
int ct_dist_wait(ct_dist_request *req);
/* Rank 0's `bytes` bytes at buf into every other rank's buf. */
int ct_dist_broadcast(void *buf, size_t bytes);
/* Rank 0 receives every rank's row of `bytes` bytes into out[rank·bytes ..] (out: world·bytes
 * bytes, read only on rank 0; may be NULL elsewhere). */
int ct_dist_gather(const void *row, size_t bytes, void *out);
/* The same, on every rank. */
int ct_dist_allgather(const void *row, size_t bytes, void *out);
/* Waits until every rank is here. */
int ct_dist_barrier(void);

/* The ranks agree on a status: every rank passes its own (CT_OK or an error code with
 * ct_last_error() set); when all are CT_OK it returns CT_OK, else every rank returns the code of
 * the lowest failing rank with that rank's message, prefixed "rank R of N: " (once: a message that
 * has the prefix already keeps it; without MPI the status and message are left as they are). After a failure on one rank, the others learn of it here
 * instead of waiting in the next collective for a rank that has stopped. */
int ct_dist_check(int status);

#endif
