/* tests/optim/test_probe.c — frozen-feature evaluation (optim/probe.h) on features with a known
 * answer: kNN and linear-probe accuracy where the right answer is 1, chance, or a count done by
 * hand; feature extraction through a network whose output is known; NT-Xent as the SupCon the arena
 * runs it as; ct_fit training a loss with learnable state through .bound_loss. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* A batch source over fixed rows, in batches of `batch`. */
typedef struct {
    ct_tensor *x;
    const int *y;
    int n, d, batch, at;
    ct_tensor *view;
} rows_source;

static int rows_next(void *state, ct_tensor **x, ct_labels *y) {
    rows_source *s = state;
    if (s->at >= s->n) {
        s->at = 0;
        return 0;
    }
    const int n = s->n - s->at < s->batch ? s->n - s->at : s->batch;
    if (s->view) ct_tensor_free(s->view);
    s->view = ct_tensor_new(CT_SHAPE(n, s->d));
    memcpy(s->view->data, s->x->data + (size_t)s->at * s->d, (size_t)n * s->d * sizeof(ct_real));
    *x = s->view, *y = CT_LABELS(s->y + s->at, n);
    s->at += n;
    return 1;
}

static ct_batch_source rows(rows_source *s) { return (ct_batch_source){s, rows_next, NULL, NULL}; }

/* A net whose output is its input: the features are the rows themselves. */
static ct_tensor *identity_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    (void)tape, (void)self;
    return x;
}

/* Four classes on four orthogonal directions of R^8 with small noise: every feature's 20 nearest
 * are its own class, the probe separates them: both exactly 1. Lengths differ wildly (cosine
 * ignores them). */
CT_TEST(probe, separable_features_give_knn_and_probe_accuracy_one) {
    enum { N = 200, M = 80, D = 8, C = 4 };
    ct_tensor *tr = ct_tensor_new(CT_SHAPE(N, D)), *te = ct_tensor_new(CT_SHAPE(M, D));
    int ytr[N], yte[M];
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    for (int i = 0; i < N + M; i++) {
        const int y = i % C;
        ct_real *row = i < N ? tr->data + (size_t)i * D : te->data + (size_t)(i - N) * D;
        const double length = 0.1 + 10 * ct_rng_uniform(&rng);
        for (int d = 0; d < D; d++) row[d] = (ct_real)(length * ((d == 2 * y) + ct_rng_normal(&rng, 0, 0.1)));
        if (i < N) ytr[i] = y;
        else yte[i - N] = y;
    }
    CHECK(ct_knn_accuracy(tr, ytr, te, yte, 20, C) == 1, "kNN %.4f", ct_knn_accuracy(tr, ytr, te, yte, 20, C));
    CHECK(ct_linear_probe_accuracy(tr, ytr, te, yte, C, 300, 1e-4) == 1, "probe %.4f",
          ct_linear_probe_accuracy(tr, ytr, te, yte, C, 300, 1e-4));
    /* through a network and batch sources: the same numbers */
    ct_model *m = ct_model_new();
    ct_module net = {.kind = "identity", .name = "id", .forward = identity_forward};
    rows_source a = {tr, ytr, N, D, 64, 0, NULL}, b = {te, yte, M, D, 30, 0, NULL};
    ct_probe_result r;
    CHECK(ct_probe_evaluate(m, &net, rows(&a), rows(&b), C, CT_PROBE(), &r) == CT_OK, "%s", ct_last_error());
    CHECK(r.knn_accuracy == 1 && r.probe_accuracy == 1 && r.train_n == N && r.test_n == M && r.dim == D,
          "kNN %.4f probe %.4f, %d/%d samples of %d", r.knn_accuracy, r.probe_accuracy, r.train_n, r.test_n, r.dim);
    ct_tensor_free(a.view), ct_tensor_free(b.view);
    ct_model_free(m);
    ct_tensor_free(tr), ct_tensor_free(te);
}

/* XOR: class 0 at (1, 1) and (−1, −1), class 1 at (1, −1) and (−1, 1), each corner equally often.
 * No linear layer separates them, and by symmetry every gradient of the probe is exactly zero: its
 * weights stay 0, every score ties, every test sample gets class 0: accuracy 1/2 exactly (chance).
 * kNN (each corner's 20 nearest are its own corner) is exactly 1. */
CT_TEST(probe, xor_features_put_the_probe_at_chance_and_knn_at_one) {
    enum { N = 64, M = 32, D = 2 };
    static const ct_real corner[4][2] = {{1, 1}, {-1, -1}, {1, -1}, {-1, 1}};
    ct_tensor *tr = ct_tensor_new(CT_SHAPE(N, D)), *te = ct_tensor_new(CT_SHAPE(M, D));
    int ytr[N], yte[M];
    for (int i = 0; i < N + M; i++) {
        const int k = i % 4;
        ct_real *row = i < N ? tr->data + (size_t)i * D : te->data + (size_t)(i - N) * D;
        row[0] = corner[k][0], row[1] = corner[k][1];
        if (i < N) ytr[i] = k / 2;
        else yte[i - N] = k / 2;
    }
    CHECK(ct_linear_probe_accuracy(tr, ytr, te, yte, 2, 300, 1e-4) == 0.5, "probe %.6f on XOR",
          ct_linear_probe_accuracy(tr, ytr, te, yte, 2, 300, 1e-4));
    CHECK(ct_knn_accuracy(tr, ytr, te, yte, 16, 2) == 1, "kNN %.6f on XOR", ct_knn_accuracy(tr, ytr, te, yte, 16, 2));
    /* features that carry nothing (all equal): the probe predicts one class, 1/C of a balanced test */
    for (size_t k = 0; k < tr->size; k++) tr->data[k] = 3;
    for (size_t k = 0; k < te->size; k++) te->data[k] = 3;
    CHECK(ct_linear_probe_accuracy(tr, ytr, te, yte, 2, 300, 1e-4) == 0.5, "probe %.6f on constant features",
          ct_linear_probe_accuracy(tr, ytr, te, yte, 2, 300, 1e-4));
    ct_tensor_free(tr), ct_tensor_free(te);
}

/* k = 20 votes counted by hand: the query (1, 0) has 12 neighbours of class 1 at cosine 0.8 and 8 of
 * class 0 at cosine 1 among its 20 nearest (the rest, class 0 at cosine −1, are farther): the
 * majority (class 1) wins although the nearest are class 0. With 10 and 10 the tie goes to the larger
 * summed similarity (class 0). Equal similarities: the earlier training sample is nearer. */
CT_TEST(probe, knn_votes_counted_by_hand) {
    enum { N = 40, D = 2 };
    ct_tensor *tr = ct_tensor_new(CT_SHAPE(N, D)), *q = ct_tensor_new(CT_SHAPE(1, D));
    int y[N];
    for (int i = 0; i < N; i++) {
        ct_real *row = tr->data + (size_t)i * D;
        if (i < 8) row[0] = 1, row[1] = 0, y[i] = 0;            /* cosine 1 */
        else if (i < 20) row[0] = 0.8f, row[1] = 0.6f, y[i] = 1; /* cosine 0.8 */
        else row[0] = -1, row[1] = 0, y[i] = 0;                 /* cosine −1 */
    }
    q->data[0] = 1, q->data[1] = 0;
    int qy = 1;
    CHECK(ct_knn_accuracy(tr, y, q, &qy, 20, 2) == 1, "12 votes of class 1 lost to 8 nearer ones");
    CHECK(ct_knn_accuracy(tr, y, q, &qy, 8, 2) == 0, "the 8 nearest are class 0");
    /* 10 of each among the 20: class 0 at cosine 1 (sum 10) beats class 1 at 0.8 (sum 8) */
    tr->data[8 * D] = 1, tr->data[8 * D + 1] = 0, tr->data[9 * D] = 1, tr->data[9 * D + 1] = 0;
    y[8] = y[9] = 0;
    qy = 0;
    CHECK(ct_knn_accuracy(tr, y, q, &qy, 20, 2) == 1, "a 10/10 tie went to the smaller summed similarity");
    /* k = 1 among equal similarities: the first one (index 0, class 0); relabel it and the answer follows */
    CHECK(ct_knn_accuracy(tr, y, q, &qy, 1, 2) == 1, "k = 1");
    y[0] = 1;
    CHECK(ct_knn_accuracy(tr, y, q, &qy, 1, 2) == 0, "k = 1 did not take the earliest of equal neighbours");
    ct_tensor_free(tr), ct_tensor_free(q);
}

CT_TEST(probe, bad_options_are_refused_with_a_message) {
    ct_model *m = ct_model_new();
    ct_module net = {.kind = "identity", .name = "id", .forward = identity_forward};
    ct_tensor *x = ct_tensor_new(CT_SHAPE(4, 2));
    const int y[4] = {0, 1, 0, 1};
    rows_source a = {x, y, 4, 2, 4, 0, NULL};
    ct_probe_result r;
    CHECK(ct_probe_evaluate(m, &net, rows(&a), rows(&a), 2, CT_PROBE(.knn_k = 0), &r) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "knn_k = 0"), "%s", ct_last_error());
    CHECK(ct_probe_evaluate(m, &net, rows(&a), rows(&a), 1, CT_PROBE(), &r) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "classes = 1"), "%s", ct_last_error());
    rows_source empty = {x, y, 0, 2, 4, 0, NULL};
    CHECK(ct_probe_evaluate(m, &net, rows(&empty), rows(&a), 2, CT_PROBE(), &r) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "no sample"), "%s", ct_last_error());
    if (a.view) ct_tensor_free(a.view);
    ct_tensor_free(x);
    ct_model_free(m);
}

/* Extraction runs in evaluation mode (a dropout net gives its input unchanged), keeps the source's
 * order across batches of uneven size, and restores the training mode. */
CT_TEST(probe, extract_features_in_evaluation_mode_and_order) {
    ct_model *m = ct_model_new();
    ct_module *net = ct_model_parse(m, "mlp:hidden=[3],dropout=0.5", CT_SHAPE(3), 3);
    CHECK(net != NULL && ct_model_param_count(m) == 4, "%s", ct_last_error());
    for (int p = 0; p < 4; p++) { /* fc1, fc2: identity weights, zero biases; with positive inputs ReLU passes */
        ct_tensor *t = ct_model_param(m, p);
        memset(t->data, 0, t->size * sizeof(ct_real));
        for (int k = 0; p % 2 == 0 && k < 3; k++) t->data[k * 3 + k] = 1;
    }
    ct_tensor *x = ct_tensor_new(CT_SHAPE(7, 3));
    int y[7];
    for (int i = 0; i < 7; i++) {
        y[i] = i % 3;
        for (int k = 0; k < 3; k++) x->data[i * 3 + k] = (ct_real)(10 * i + k);
    }
    rows_source s = {x, y, 7, 3, 3, 0, NULL};
    ct_model_train(m, 1);
    ct_tensor *f;
    int *labels;
    CHECK(ct_extract_features(m, net, rows(&s), &f, &labels) == CT_OK, "%s", ct_last_error());
    CHECK(f->shape[0] == 7 && f->shape[1] == 3, "features %d x %d", f->shape[0], f->shape[1]);
    int same = 1;
    for (int i = 0; i < 21; i++) same &= f->data[i] == x->data[i];
    for (int i = 0; i < 7; i++) same &= labels[i] == y[i];
    CHECK(same, "the features are not the inputs in their order (dropout active?)");
    CHECK(net->training == 1, "the training mode was not restored");
    ct_tensor_free(f), free(labels);
    ct_tensor_free(s.view), ct_tensor_free(x);
    ct_model_free(m);
}

/* NT-Xent on (N, 2, D) is SupCon on the same rows flattened to (2N, D) with each sample's index as
 * the label of both its views: how the arena trains it. */
CT_TEST(probe, ntxent_is_supcon_with_samples_as_labels) {
    enum { N = 6, D = 5 };
    ct_tensor *a = ct_tensor_new_grad(CT_SHAPE(N, 2, D)), *b = ct_tensor_new_grad(CT_SHAPE(2 * N, D));
    ct_rng rng;
    ct_rng_seed(&rng, 4);
    for (size_t k = 0; k < a->size; k++) a->data[k] = b->data[k] = (ct_real)ct_rng_normal(&rng, 0, 1);
    int ids[2 * N];
    for (int i = 0; i < 2 * N; i++) ids[i] = i / 2;
    ct_loss *ntxent = ct_loss_parse("ntxent:temperature=0.3"), *supcon = ct_loss_parse("supcon:temperature=0.3,base_temperature=0.5");
    ct_tape *ta = ct_tape_new(), *tb = ct_tape_new();
    ct_tensor *la = ct_loss_apply(ta, ntxent, a, CT_LABELS(NULL, 0));
    ct_tensor *lb = ct_loss_apply(tb, supcon, b, CT_LABELS(ids, 2 * N));
    CHECK(la->data[0] > 0.1, "NT-Xent %g: a loss with no positive would be 0", la->data[0]);
    CHECK_NEAR(la->data[0], lb->data[0], 1e-6, 1e-6);
    ct_backward(ta, la), ct_backward(tb, lb);
    double worst = 0;
    for (size_t k = 0; k < a->size; k++) worst = fmax(worst, fabs(a->grad[k] - b->grad[k]));
    CHECK(worst < 1e-6, "gradients differ by %g", worst);
    ct_tape_free(ta), ct_tape_free(tb);
    ct_loss_free(ntxent), ct_loss_free(supcon);
    ct_tensor_free(a), ct_tensor_free(b);
}

/* 70,000 training features and 300 test features: kNN goes in blocks of queries (a block holds at
 * most 2^24 similarities) and counts the same as one call over every pair. */
CT_TEST(probe, knn_in_blocks_counts_as_one_call) {
    enum { N = 70000, M = 300, D = 2, C = 3 };
    ct_tensor *tr = ct_tensor_new(CT_SHAPE(N, D)), *te = ct_tensor_new(CT_SHAPE(M, D));
    int *ytr = malloc(N * sizeof *ytr), yte[M];
    ct_rng rng;
    ct_rng_seed(&rng, 8);
    for (int i = 0; i < N + M; i++) { /* class c around angle 2πc/3, wide enough to overlap */
        const int y = (int)ct_rng_int(&rng, 0, C);
        const double angle = 2.0943951 * y + ct_rng_normal(&rng, 0, 0.9);
        ct_real *row = i < N ? tr->data + (size_t)i * D : te->data + (size_t)(i - N) * D;
        row[0] = (ct_real)cos(angle), row[1] = (ct_real)sin(angle);
        if (i < N) ytr[i] = y;
        else yte[i - N] = y;
    }
    const double whole = ct_knn_accuracy(tr, ytr, te, yte, 20, C);
    ct_model *m = ct_model_new();
    ct_module net = {.kind = "identity", .name = "id", .forward = identity_forward};
    rows_source a = {tr, ytr, N, D, 10000, 0, NULL}, b = {te, yte, M, D, 100, 0, NULL};
    ct_probe_result r;
    CHECK(ct_probe_evaluate(m, &net, rows(&a), rows(&b), C, CT_PROBE(.probe_iterations = 1), &r) == CT_OK, "%s",
          ct_last_error());
    CHECK(whole > 0.4 && whole < 0.95 && r.knn_accuracy == whole, "blocks %.6f, one call %.6f", r.knn_accuracy, whole);
    ct_tensor_free(a.view), ct_tensor_free(b.view);
    ct_model_free(m);
    free(ytr);
    ct_tensor_free(tr), ct_tensor_free(te);
}
