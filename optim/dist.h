/* optim/dist.h — data-parallel training over core/dist.h's ranks: the model's gradients averaged
 * over the ranks after the backward (bucketed), and rank 0's parameters and optimizer state sent to
 * the others. ct_fit does all of it (optim/trainer.h, .dist_shards); a hand-written loop on N ranks:
 *
 *     ct_dist_broadcast_optim(opt);                      // every rank starts from rank 0's weights
 *     ct_grad_sync *sync = ct_grad_sync_new(m, CT_GRAD_SYNC());
 *     ct_grad_sync_attach(sync, tape);                   // all-reduces start during the backward
 *     while (ct_loader_next(shard, &b)) {                // .shard = rank, .shards = world size
 *         ct_backward(tape, loss_of(b));
 *         ct_grad_sync_average(sync);                    // grads: the mean over the global batch
 *         ct_optim_step(opt);
 *         ct_tape_reset(tape);
 *     }
 *
 * With a loss that is a mean over the batch's samples and equal shards, the averaged gradient is the
 * gradient of the loss on the global batch, up to the order of the float sums: N ranks train the
 * weights of one process. Batch statistics (batch norm) stay per rank.
 *
 * Deterministic order (.shards = K, a multiple of the world size): the global batch is cut into K
 * virtual shards; each rank computes the gradient of each of its K/N shards alone (from zeroed
 * grads) and keeps it (ct_grad_sync_keep), then ct_grad_sync_average gathers all K on every rank and
 * sums them in shard order, (((g_0 + g_1) + g_2) + ...) / K, which one process computing the K shards
 * in turn does too: the weights are bit-identical on any number of ranks dividing K (at the same
 * thread count). It costs an all-gather of K/N gradients per rank instead of an all-reduce. */
#ifndef CTAPE_OPTIM_DIST_H
#define CTAPE_OPTIM_DIST_H

#include "optim.h"
#include "../core/dist.h"

typedef struct {
    size_t bucket; /* gradient elements per collective call (a bucket; a larger parameter is one alone);
                      default 1 << 20 */
    int shards;    /* K virtual shards for the deterministic order; 0: a plain all-reduce */
} ct_grad_sync_opts;
#define CT_GRAD_SYNC(...) CT_WITH_DEFAULTS(ct_grad_sync_opts, (.bucket = (size_t)1 << 20, .shards = 0), __VA_ARGS__)

typedef struct ct_grad_sync ct_grad_sync;
/* Over m's parameters that have a grad. Fatal when .shards is not a multiple of the world size. */
ct_grad_sync *ct_grad_sync_new(ct_model *m, ct_grad_sync_opts opts);
/* The virtual shards this rank computes per step: K / world size (1 without .shards). */
int ct_grad_sync_local_shards(const ct_grad_sync *s);
/* .shards: the grads now hold local shard j's gradient alone; they are put aside and zeroed. */
void ct_grad_sync_keep(ct_grad_sync *s, int j);
/* Overlap (without .shards): the tape reports each parameter whose gradient is final during the
 * backward (ct_tape_on_grad_ready), and a bucket's all-reduce starts as soon as its parameters are
 * all final, while the backward goes on; ct_grad_sync_average then waits for them. One backward per
 * step on this tape (a second one would add to gradients already sent). */
void ct_grad_sync_attach(ct_grad_sync *s, ct_tape *tape);
/* Without .shards: the number of buckets, and how many of them have started their all-reduce in this
 * step so far (after a backward with ct_grad_sync_attach: those the backward started). */
int ct_grad_sync_buckets(const ct_grad_sync *s);
int ct_grad_sync_started(const ct_grad_sync *s);
/* The grads become the mean over the ranks (or, with .shards, the kept shards' mean in shard order);
 * CT_OK, or the error of the MPI call. */
int ct_grad_sync_average(ct_grad_sync *s);
void ct_grad_sync_free(ct_grad_sync *s);

/* Rank 0's parameters and buffers into every rank's model (the same architecture on every rank: a
 * different parameter count is CT_ERR_VALUE on every rank). */
int ct_dist_broadcast_model(ct_model *m);
/* Rank 0's buffers alone (batch norm's running statistics, which each rank updates from its own
 * samples): ct_fit sends them after every epoch, before the evaluation. */
int ct_dist_broadcast_buffers(ct_model *m);
/* The same, with the optimizer's state, scalars and step count (a resumed run). */
int ct_dist_broadcast_optim(ct_optim *opt);

#endif
