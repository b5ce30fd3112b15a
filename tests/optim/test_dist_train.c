/* tests/optim/test_dist_train.c — optim/dist.h and ct_fit's .dist_shards in one process: kept shards
 * summed in shard order across bucket boundaries, a run with virtual shards against the whole-batch run,
 * and an uneven cut refused. The ranks' side runs under mpirun in tests/mpi/ (make test MPI=1). */
#include "../test.h"

#include <string.h>

static ct_module *mlp(ct_model *m) { return ct_test_blobs_mlp(m); }

CT_TEST(optim, grad_sync_sums_kept_shards_in_order) {
    enum { K = 6 };
    ct_model *m = ct_model_new();
    ct_tensor *a = ct_model_add_param(m, "a", CT_SHAPE(5)), *b = ct_model_add_param(m, "b", CT_SHAPE(7));
    /* buckets of 4 elements: [0, 4) [4, 8) [8, 12) cut across a and b */
    ct_grad_sync *s = ct_grad_sync_new(m, CT_GRAD_SYNC(.bucket = 4, .shards = K));
    CHECK(ct_grad_sync_local_shards(s) == K);
    ct_real g[K][12], want[12];
    for (int k = 0; k < K; k++) {
        /* values whose float sum depends on the order: large and small, of both signs */
        for (int i = 0; i < 12; i++) g[k][i] = (ct_real)((k % 2 ? -1 : 1) * (k == 1 ? 3e7 : 1.0 + 0.1 * i + 0.37 * k));
        memcpy(a->grad, g[k], 5 * sizeof(ct_real));
        memcpy(b->grad, g[k] + 5, 7 * sizeof(ct_real));
        ct_grad_sync_keep(s, k);
        for (int i = 0; i < 5; i++) CHECK(a->grad[i] == 0, "keep left a's grad");
        for (int i = 0; i < 7; i++) CHECK(b->grad[i] == 0, "keep left b's grad");
    }
    for (int i = 0; i < 12; i++) {
        ct_real sum = g[0][i];
        for (int k = 1; k < K; k++) sum += g[k][i];
        want[i] = sum / (ct_real)K;
    }
    CHECK(ct_grad_sync_average(s) == CT_OK, "%s", ct_last_error());
    CHECK(!memcmp(a->grad, want, 5 * sizeof(ct_real)) && !memcmp(b->grad, want + 5, 7 * sizeof(ct_real)),
          "not (((g0 + g1) + g2) + ...) / K: a[0] = %.9g, want %.9g", (double)a->grad[0], (double)want[0]);
    ct_grad_sync_free(s);
    ct_model_free(m);
}

/* Three epochs of SGD with momentum on 200 blobs in batches of 32 (a last batch of 8). */
static void train(ct_model *m, int dist_shards, int batch) {
    ct_dataset *d = ct_test_blobs(200, 5);
    ct_module *net = mlp(m);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1, .momentum = 0.9));
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = batch, .seed = 3, .flatten = 1));
    ct_fit_result r;
    const int rc = ct_fit(m, net, opt, ct_loader_source(l), NULL, CT_FIT(.epochs = 3, .progress = 0, .dist_shards = dist_shards), &r);
    if (rc) ct_fatal("train", "ct_fit: %s", ct_last_error());
    ct_loader_free(l);
    ct_optim_free(opt);
    ct_dataset_free(d);
}

CT_TEST(optim, fit_dist_shards_follow_the_whole_batch) {
    ct_model *whole = ct_model_new(), *cut = ct_model_new();
    train(whole, 0, 32);
    train(cut, 4, 32);
    double worst = 0;
    for (int p = 0; p < ct_model_param_count(whole); p++) {
        const ct_tensor *w = ct_model_param(whole, p), *c = ct_model_param(cut, p);
        for (size_t i = 0; i < w->size; i++) {
            const double err = fabs((double)w->data[i] - (double)c->data[i]) / (1e-3 + fabs((double)w->data[i]));
            if (err > worst) worst = err;
        }
    }
    /* the mean of 4 shard means is the batch mean, but summed in another order: float32 rounding only */
    CHECK(worst < 1e-4, "largest relative difference %g", worst);
    CHECK(worst > 0 || sizeof(ct_real) == 8, "bit-identical: the shards were not computed apart");
    ct_test_note("largest relative difference %.2g", worst);
    ct_model_free(whole), ct_model_free(cut);
}

static void uneven(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    train(m, 4, 30);
}

CT_TEST(optim, fit_dist_shards_refuse_an_uneven_cut) {
    char got[512];
    CHECK(ct_test_expect_fatal(uneven, NULL, "its 30 samples do not split evenly", got, sizeof got), "%s", got);
}
