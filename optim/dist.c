/* optim/dist.c — gradient averaging over the ranks and rank 0's state to every rank (optim/dist.h).
 *
 * The grads of the parameters that have one are seen as one flat vector of P elements, in the
 * model's parameter order; a bucket is a range [a, a + L) of it, copied into a contiguous buffer,
 * reduced in one collective call and copied back.
 *
 * The all-reduce's buckets are whole parameters taken from the last one back (the order in which a
 * backward finishes them), up to .bucket elements each (a larger parameter alone). Each is summed by
 * a non-blocking all-reduce, started when its last parameter is final (the tape's hook, with
 * ct_grad_sync_attach) or at ct_grad_sync_average; buckets start in their order on every rank, as
 * MPI matches collectives by order, so one that is ready early waits for the ones before it. */
#define CT_BUILDING_LIBRARY
#include "dist.h"
#include "optimizer.h"

#include <stdlib.h>
#include <string.h>

struct ct_grad_sync {
    ct_tensor **params; /* the parameters with a grad */
    size_t *start;      /* params[k]'s first element in the flat vector */
    int n;
    size_t total;       /* P */
    size_t bucket;
    int shards, local;  /* K, and K / world size (1 without shards) */
    ct_real *kept;      /* .shards: local × P, shard j's gradient at kept[j·P ..] */
    ct_real *send, *recv;
    /* the all-reduce without .shards */
    ct_real *flat;      /* P: bucket b sums in flat[at[b] .. at[b] + len[b]) */
    int n_buckets, *bucket_of, *members, *pending, next; /* next: the first bucket not started */
    size_t *at, *len;
    ct_dist_request **req;
    unsigned char *ready; /* per parameter, in this step */
    struct { const ct_tensor *p; int k; } *by_address; /* sorted, for the tape's hook */
    int status;         /* the first error of a bucket started from the hook */
};

/* Copies elements [a, a + len) of the flat grad vector into buf (to_grads 0) or back (1). */
static void copy_range(const ct_grad_sync *s, size_t a, size_t len, ct_real *buf, int to_grads) {
    for (int k = 0; k < s->n && len; k++) {
        const size_t lo = s->start[k], hi = lo + s->params[k]->size;
        if (hi <= a || lo >= a + len) continue;
        const size_t from = a > lo ? a : lo, to = a + len < hi ? a + len : hi;
        ct_real *g = s->params[k]->grad + (from - lo), *b = buf + (from - a);
        if (to_grads) memcpy(g, b, (to - from) * sizeof *g);
        else memcpy(b, g, (to - from) * sizeof *g);
    }
}

static int by_address(const void *a, const void *b) {
    const uintptr_t x = (uintptr_t)*(const ct_tensor *const *)a, y = (uintptr_t)*(const ct_tensor *const *)b;
    return x < y ? -1 : x > y;
}

/* Buckets from the last parameter back, whole parameters up to s->bucket elements each. */
static void make_buckets(ct_grad_sync *s) {
    const int n = s->n ? s->n : 1;
    s->bucket_of = malloc((size_t)n * sizeof *s->bucket_of), s->members = calloc((size_t)n, sizeof *s->members);
    s->pending = calloc((size_t)n, sizeof *s->pending), s->at = calloc((size_t)n, sizeof *s->at);
    s->len = calloc((size_t)n, sizeof *s->len), s->req = calloc((size_t)n, sizeof *s->req);
    s->ready = calloc((size_t)n, 1), s->by_address = malloc((size_t)n * sizeof *s->by_address);
    s->flat = malloc((s->total ? s->total : 1) * sizeof *s->flat);
    CT_CHECK(s->bucket_of && s->members && s->pending && s->at && s->len && s->req && s->ready && s->by_address && s->flat,
             "ct_grad_sync_new", "out of memory");
    int b = -1;
    for (int k = s->n - 1; k >= 0; k--) {
        const size_t size = s->params[k]->size;
        if (b < 0 || s->len[b] + size > s->bucket) b++;
        s->bucket_of[k] = b, s->members[b]++;
        s->at[b] = s->start[k], s->len[b] += size;
    }
    s->n_buckets = b + 1;
    memcpy(s->pending, s->members, (size_t)n * sizeof *s->pending);
    for (int k = 0; k < s->n; k++) s->by_address[k].p = s->params[k], s->by_address[k].k = k;
    qsort(s->by_address, (size_t)s->n, sizeof *s->by_address, by_address);
}

/* Starts the buckets from s->next on while they are ready (all of them when `all`). */
static void start_buckets(ct_grad_sync *s, int all) {
    for (; s->next < s->n_buckets && (all || s->pending[s->next] == 0); s->next++) {
        const int b = s->next;
        copy_range(s, s->at[b], s->len[b], s->flat + s->at[b], 0);
        const int rc = ct_dist_iallreduce_sum(s->flat + s->at[b], s->len[b], &s->req[b]);
        if (rc && !s->status) s->status = rc;
    }
}

/* The tape's hook: p's gradient is final. */
static void grad_ready(ct_tensor *p, void *user) {
    ct_grad_sync *s = user;
    const ct_tensor *key = p;
    const void *hit = bsearch(&key, s->by_address, (size_t)s->n, sizeof *s->by_address, by_address);
    if (!hit) return; /* not one of the model's parameters with a grad */
    const int k = ((const struct { const ct_tensor *p; int k; } *)hit)->k;
    if (s->ready[k]) return;
    s->ready[k] = 1;
    s->pending[s->bucket_of[k]]--;
    start_buckets(s, 0);
    for (int b = 0; b < s->next; b++) ct_dist_test(s->req[b]); /* MPI moves the started ones on */
}

void ct_grad_sync_attach(ct_grad_sync *s, ct_tape *tape) {
    CT_CHECK(s != NULL, "ct_grad_sync_attach", "the sync is NULL (make one with ct_grad_sync_new)");
    CT_CHECK(!s->shards, "ct_grad_sync_attach", "a sync with .shards (%d) sums kept shards at ct_grad_sync_average: "
             "do not attach it to the tape", s->shards);
    ct_tape_on_grad_ready(tape, grad_ready, s);
}

ct_grad_sync *ct_grad_sync_new(ct_model *m, ct_grad_sync_opts o) {
    const char *op = "ct_grad_sync_new";
    const int world = ct_dist_world_size();
    CT_CHECK(m != NULL, op, "the model is NULL");
    CT_CHECK(o.bucket >= 1, op, ".bucket must be >= 1 element");
    CT_CHECK(o.shards >= 0 && o.shards % world == 0, op,
             ".shards %d must be a multiple of the number of ranks (%d): each rank computes shards / ranks of them",
             o.shards, world);
    ct_grad_sync *s = calloc(1, sizeof *s);
    CT_CHECK(s != NULL, op, "out of memory");
    const int count = ct_model_param_count(m);
    s->params = malloc((size_t)(count ? count : 1) * sizeof *s->params);
    s->start = malloc((size_t)(count ? count : 1) * sizeof *s->start);
    CT_CHECK(s->params && s->start, op, "out of memory");
    for (int k = 0; k < count; k++) {
        ct_tensor *p = ct_model_param(m, k);
        if (!p->grad) continue;
        s->params[s->n] = p, s->start[s->n++] = s->total;
        s->total += p->size;
    }
    s->bucket = o.bucket < s->total ? o.bucket : (s->total ? s->total : 1);
    s->shards = o.shards, s->local = o.shards ? o.shards / world : 1;
    if (s->shards) {
        s->kept = calloc((size_t)s->local * (s->total ? s->total : 1), sizeof *s->kept);
        s->send = malloc((size_t)s->local * s->bucket * sizeof *s->send);
        s->recv = malloc((size_t)s->shards * s->bucket * sizeof *s->recv);
        CT_CHECK(s->send && s->kept && s->recv, op, "out of memory for buckets of %zu elements", s->bucket);
    } else {
        make_buckets(s);
    }
    return s;
}

int ct_grad_sync_local_shards(const ct_grad_sync *s) {
    CT_CHECK(s != NULL, "ct_grad_sync_local_shards", "the sync is NULL (make one with ct_grad_sync_new)");
    return s->local;
}

int ct_grad_sync_buckets(const ct_grad_sync *s) {
    CT_CHECK(s != NULL, "ct_grad_sync_buckets", "the sync is NULL (make one with ct_grad_sync_new)");
    return s->n_buckets;
}

int ct_grad_sync_started(const ct_grad_sync *s) {
    CT_CHECK(s != NULL, "ct_grad_sync_started", "the sync is NULL (make one with ct_grad_sync_new)");
    return s->next;
}

void ct_grad_sync_keep(ct_grad_sync *s, int j) {
    CT_CHECK(s != NULL, "ct_grad_sync_keep", "the sync is NULL (make one with ct_grad_sync_new)");
    CT_CHECK(s->shards && j >= 0 && j < s->local, "ct_grad_sync_keep",
             "shard %d: want 0 <= shard < %d, on a sync made with .shards (got %d)", j, s->local, s->shards);
    copy_range(s, 0, s->total, s->kept + (size_t)j * s->total, 0);
    for (int k = 0; k < s->n; k++) memset(s->params[k]->grad, 0, s->params[k]->size * sizeof(ct_real));
}

int ct_grad_sync_average(ct_grad_sync *s) {
    CT_CHECK(s != NULL, "ct_grad_sync_average", "the sync is NULL (make one with ct_grad_sync_new)");
    const size_t P = s->total;
    if (!s->shards) {
        start_buckets(s, 1);
        int status = s->status;
        const ct_real inv = (ct_real)1 / (ct_real)ct_dist_world_size();
        for (int b = 0; b < s->n_buckets; b++) {
            const int rc = ct_dist_wait(s->req[b]);
            s->req[b] = NULL;
            if (rc && !status) status = rc;
            if (status) continue;
            ct_real *sum = s->flat + s->at[b];
            for (size_t i = 0; i < s->len[b]; i++) sum[i] *= inv;
            copy_range(s, s->at[b], s->len[b], sum, 1);
        }
        /* the next step starts with every parameter pending */
        memcpy(s->pending, s->members, (size_t)s->n_buckets * sizeof *s->pending);
        memset(s->ready, 0, (size_t)s->n);
        s->next = 0, s->status = CT_OK;
        return status;
    }
    for (size_t a = 0; a < P; a += s->bucket) {
        const size_t L = P - a < s->bucket ? P - a : s->bucket;
        /* this rank's shards side by side, [j][L]; gathered in rank order they are [k][L], k = rank·local + j */
        for (int j = 0; j < s->local; j++) memcpy(s->send + (size_t)j * L, s->kept + (size_t)j * P + a, L * sizeof *s->send);
        const int rc = ct_dist_allgather(s->send, (size_t)s->local * L * sizeof *s->send, s->recv);
        if (rc) return rc;
        /* mean = (((g_0 + g_1) + g_2) + ... + g_{K−1}) / K, in this order on every rank */
        ct_real *sum = s->recv;
        for (int k = 1; k < s->shards; k++) {
            const ct_real *g = s->recv + (size_t)k * L;
            for (size_t i = 0; i < L; i++) sum[i] += g[i];
        }
        const ct_real K = (ct_real)s->shards;
        for (size_t i = 0; i < L; i++) sum[i] /= K;
        copy_range(s, a, L, sum, 1);
    }
    return CT_OK;
}

void ct_grad_sync_free(ct_grad_sync *s) {
    if (!s) return;
    free(s->params), free(s->start), free(s->kept), free(s->send), free(s->recv);
    free(s->flat), free(s->bucket_of), free(s->members), free(s->pending), free(s->at), free(s->len), free(s->req);
    free(s->ready), free(s->by_address);
    free(s);
}

/* Every rank's parameter count against rank 0's: a different model would take its bytes wrongly. */
static int same_size_everywhere(size_t mine, const char *what) {
    unsigned long long ours = mine, rank0 = mine;
    int rc = ct_dist_broadcast(&rank0, sizeof rank0);
    if (rc) return rc;
    rc = ours == rank0 ? CT_OK
                       : ct_set_error(CT_ERR_VALUE, "%s: this rank has %llu elements, rank 0 has %llu (build the same model "
                                      "on every rank)", what, ours, rank0);
    return ct_dist_check(rc);
}

int ct_dist_broadcast_model(ct_model *m) {
    CT_CHECK(m != NULL, "ct_dist_broadcast_model", "the model is NULL");
    const int n = ct_model_tensor_count(m);
    ct_tensor **t = malloc((size_t)(n ? n : 1) * sizeof *t);
    CT_CHECK(t != NULL, "ct_dist_broadcast_model", "out of memory");
    ct_model_tensors(m, t);
    size_t total = 0;
    for (int k = 0; k < n; k++) total += t[k]->size;
    int rc = same_size_everywhere(total, "ct_dist_broadcast_model");
    for (int k = 0; k < n && !rc; k++) rc = ct_dist_broadcast(t[k]->data, t[k]->size * sizeof(ct_real));
    free(t);
    return rc;
}

int ct_dist_broadcast_buffers(ct_model *m) {
    CT_CHECK(m != NULL, "ct_dist_broadcast_buffers", "the model is NULL");
    size_t total = 0;
    for (int k = 0; k < ct_model_buffer_count(m); k++) total += ct_model_buffer(m, k)->size;
    int rc = same_size_everywhere(total, "ct_dist_broadcast_buffers");
    for (int k = 0; k < ct_model_buffer_count(m) && !rc; k++)
        rc = ct_dist_broadcast(ct_model_buffer(m, k)->data, ct_model_buffer(m, k)->size * sizeof(ct_real));
    return rc;
}

int ct_dist_broadcast_optim(ct_optim *opt) {
    ct_optim_check(opt, "ct_dist_broadcast_optim");
    int rc = ct_dist_broadcast_model(opt->model);
    size_t total = 0;
    for (int s = 0; s < opt->n_slots; s++)
        for (int k = 0; k < opt->n_params; k++)
            if (opt->slots[s].tensors[k]) total += opt->slots[s].tensors[k]->size;
    if (!rc) rc = same_size_everywhere(total, "ct_dist_broadcast_optim");
    for (int s = 0; s < opt->n_slots && !rc; s++)
        for (int k = 0; k < opt->n_params && !rc; k++) {
            ct_tensor *t = opt->slots[s].tensors[k];
            if (t) rc = ct_dist_broadcast(t->data, t->size * sizeof(ct_real));
        }
    for (int k = 0; k < opt->n_scalars && !rc; k++)
        rc = opt->scalars[k].value ? ct_dist_broadcast(opt->scalars[k].value, sizeof(double))
                                   : ct_dist_broadcast(opt->scalars[k].count, sizeof(long));
    if (!rc) rc = ct_dist_broadcast(&opt->steps, sizeof opt->steps);
    return rc;
}
