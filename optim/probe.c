/* optim/probe.c — frozen-feature evaluation (optim/probe.h): the features of a network over a batch
 * source, and their kNN and linear-probe accuracy (losses/metrics.h computes both). */
#define CT_BUILDING_LIBRARY
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ct_extract_features(ct_model *m, ct_module *net, ct_batch_source source, ct_tensor **features, int **labels) {
    CT_CHECK(m && net && source.next && features && labels, "ct_extract_features",
             "model, net, a source, features and labels must be given");
    *features = NULL, *labels = NULL;
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    const int was = net->training;
    ct_model_train(m, 0);
    ct_real *rows = NULL;
    int *y = NULL, n = 0, cap = 0, dim = 0, status = CT_OK;
    ct_tensor *x;
    ct_labels batch_y;
    while (source.next(source.state, &x, &batch_y)) { /* the whole epoch, so the source ends where it started */
        if (status != CT_OK) continue;
        const ct_tensor *out = ct_forward(tape, net, x);
        CT_CHECK(out->ndim == 2 && out->shape[0] == batch_y.n, "ct_extract_features",
                 "the net's output must be (N, D) for N labels, got %d dimensions, %d rows for %d labels", out->ndim,
                 out->ndim ? out->shape[0] : 0, batch_y.n);
        CT_CHECK(!dim || out->shape[1] == dim, "ct_extract_features", "the feature width changed from %d to %d", dim,
                 out->shape[1]);
        dim = out->shape[1];
        if (n + batch_y.n > cap) {
            cap = 2 * (n + batch_y.n);
            ct_real *grown_rows = realloc(rows, (size_t)cap * dim * sizeof *rows);
            if (grown_rows) rows = grown_rows;
            int *grown_y = realloc(y, (size_t)cap * sizeof *y);
            if (grown_y) y = grown_y;
            if (!grown_rows || !grown_y)
                status = ct_set_error(CT_ERR_MEMORY, "ct_extract_features: no memory for %d features of %d values", cap, dim);
        }
        if (status == CT_OK) {
            memcpy(rows + (size_t)n * dim, out->data, (size_t)batch_y.n * dim * sizeof *rows);
            memcpy(y + n, batch_y.data, (size_t)batch_y.n * sizeof *y);
            n += batch_y.n;
        }
        ct_tape_reset(tape);
    }
    ct_model_train(m, was);
    ct_tape_free(tape);
    if (status == CT_OK && n == 0) status = ct_set_error(CT_ERR_VALUE, "ct_extract_features: the source gave no sample");
    if (status == CT_OK) {
        *features = ct_tensor_new(CT_SHAPE(n, dim));
        memcpy((*features)->data, rows, (size_t)n * dim * sizeof *rows);
        *labels = y, y = NULL;
    }
    free(rows), free(y);
    return status;
}

/* ct_knn_accuracy over blocks of queries: it holds a similarity for every (query, reference) pair,
 * which for MNIST's 10,000 × 60,000 would be 2.4 GB; blocks of at most 2^24 similarities give the
 * same count. */
static double knn_in_chunks(const ct_tensor *ref, const int *ref_y, const ct_tensor *queries, const int *query_y, int k,
                            int classes) {
    const int N = ref->shape[0], M = queries->shape[0], D = ref->shape[1];
    const int block = N >= (1 << 24) ? 1 : (1 << 24) / N;
    if (M <= block) return ct_knn_accuracy(ref, ref_y, queries, query_y, k, classes);
    ct_tensor *part = ct_tensor_new(CT_SHAPE(block, D));
    long right = 0;
    double accuracy = 0;
    for (int at = 0; at < M && !isnan(accuracy); at += block) {
        const int n = M - at < block ? M - at : block;
        if (n < block) {
            ct_tensor_free(part);
            part = ct_tensor_new(CT_SHAPE(n, D));
        }
        memcpy(part->data, queries->data + (size_t)at * D, (size_t)n * D * sizeof *part->data);
        accuracy = ct_knn_accuracy(ref, ref_y, part, query_y + at, k, classes);
        right += lround(accuracy * n);
    }
    ct_tensor_free(part);
    return isnan(accuracy) ? NAN : (double)right / M;
}

int ct_probe_evaluate(ct_model *m, ct_module *net, ct_batch_source train, ct_batch_source test, int classes,
                      ct_probe_opts o, ct_probe_result *out) {
    CT_CHECK(out, "ct_probe_evaluate", "out must be given");
    memset(out, 0, sizeof *out);
    if (o.knn_k < 1 || o.probe_iterations < 1 || !(o.probe_l2 > 0) || classes < 2)
        return ct_set_error(CT_ERR_VALUE, "ct_probe_evaluate: knn_k = %d and probe_iterations = %d must be >= 1, "
                            "probe_l2 = %g > 0, classes = %d >= 2", o.knn_k, o.probe_iterations, o.probe_l2, classes);
    ct_tensor *ftr = NULL, *fte = NULL;
    int *ytr = NULL, *yte = NULL;
    int status = ct_extract_features(m, net, train, &ftr, &ytr);
    if (status == CT_OK) status = ct_extract_features(m, net, test, &fte, &yte);
    if (status == CT_OK) {
        out->train_n = ftr->shape[0], out->test_n = fte->shape[0], out->dim = ftr->shape[1];
        CT_CHECK(fte->shape[1] == out->dim, "ct_probe_evaluate", "train features have %d values, test features %d",
                 out->dim, fte->shape[1]);
        out->knn_accuracy = knn_in_chunks(ftr, ytr, fte, yte, o.knn_k < out->train_n ? o.knn_k : out->train_n, classes);
        out->probe_accuracy = ct_linear_probe_accuracy(ftr, ytr, fte, yte, classes, o.probe_iterations, o.probe_l2);
    }
    if (ftr) ct_tensor_free(ftr);
    if (fte) ct_tensor_free(fte);
    free(ytr), free(yte);
    return status;
}
