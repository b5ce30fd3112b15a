/* tests/losses/test_metrics.c — losses/metrics.h against scikit-learn (tests/reference/metrics_ref.h,
 * from tests/reference/gen_metrics.py) and against hand-computed cases: the tie, NaN and empty-bin
 * rules, the transforms, kNN accuracy. */
#include "../test.h"

#include "../reference/metrics_ref.h"

#include <stdlib.h>
#include <string.h>

/* The reference logits as a heap tensor of ct_real. */
static ct_tensor *ref_logits(const metrics_ref_case *rc) {
    ct_tensor *z = ct_tensor_new(CT_SHAPE(METRICS_REF_N, METRICS_REF_C));
    for (int k = 0; k < METRICS_REF_N * METRICS_REF_C; k++) z->data[k] = rc->logits[k];
    return z;
}

CT_TEST(metrics, match_scikit_learn) {
    for (size_t i = 0; i < sizeof metrics_ref_cases / sizeof *metrics_ref_cases; i++) {
        const metrics_ref_case *rc = &metrics_ref_cases[i];
        ct_tensor *z = ref_logits(rc);
        for (int k = 2; k <= 3; k++) {
            ct_metrics *m = ct_metrics_new(METRICS_REF_C, CT_METRICS(.top_k = k));
            /* in two batches, as an evaluation loop adds them */
            ct_tensor *first = ct_tensor_new(CT_SHAPE(25, METRICS_REF_C)), *rest = ct_tensor_new(CT_SHAPE(35, METRICS_REF_C));
            memcpy(first->data, z->data, 25 * METRICS_REF_C * sizeof(ct_real));
            memcpy(rest->data, z->data + 25 * METRICS_REF_C, 35 * METRICS_REF_C * sizeof(ct_real));
            CHECK(ct_metrics_add(m, first, (ct_labels){rc->labels, 25}) == CT_OK, "%s", ct_last_error());
            CHECK(ct_metrics_add(m, rest, (ct_labels){rc->labels + 25, 35}) == CT_OK, "%s", ct_last_error());
            const ct_metrics_result r = ct_metrics_compute(m);
            const double tol = sizeof(ct_real) == 4 ? 2e-6 : 1e-12;
            CHECK(r.n == METRICS_REF_N && r.nonfinite == 0 && r.top_k == k, "%s: n %ld, nonfinite %ld", rc->name, r.n,
                  r.nonfinite);
            CHECK_NEAR(r.accuracy, rc->accuracy, 1e-15, 0);
            CHECK_NEAR(r.top_k_accuracy, k == 2 ? rc->top2 : rc->top3, 1e-15, 0);
            CHECK_NEAR(r.balanced_accuracy, rc->balanced, 1e-15, 0);
            CHECK_NEAR(r.precision, rc->precision, 1e-15, 0);
            CHECK_NEAR(r.recall, rc->recall, 1e-15, 0);
            CHECK_NEAR(r.f1, rc->f1, 1e-15, 0);
            CHECK_NEAR(r.nll, rc->nll, tol, 0);
            CHECK_NEAR(r.brier, rc->brier, tol, 0);
            CHECK_NEAR(r.ece, rc->ece, tol, 0);
            CHECK_NEAR(r.ece_equal_mass, rc->ece_equal_mass, tol, 0);
            double P[METRICS_REF_C], R[METRICS_REF_C], F[METRICS_REF_C];
            long S[METRICS_REF_C];
            ct_metrics_per_class(m, P, R, F, S);
            for (int c = 0; c < METRICS_REF_C; c++) {
                CHECK_NEAR(P[c], rc->class_precision[c], 1e-15, 0);
                CHECK_NEAR(R[c], rc->class_recall[c], 1e-15, 0);
                CHECK_NEAR(F[c], rc->class_f1[c], 1e-15, 0);
                CHECK(S[c] == rc->support[c], "%s: support of class %d: %ld, want %ld", rc->name, c, S[c], rc->support[c]);
            }
            ct_tensor_free(first), ct_tensor_free(rest);
            ct_metrics_free(m);
        }
        ct_tensor_free(z);
    }
}

/* Three samples by hand: ties go to the first class (torch.argmax), top-k counts only classes strictly
 * above the label, the confusion matrix is row = true. */
CT_TEST(metrics, ties_top_k_and_confusion_by_hand) {
    const ct_real z[9] = {1, 1, 0, /* tie: predicted 0, label 1 -> wrong; label's rank 0 -> top-1 no, top-2 yes */
                          0, 2, 1, /* label 2: one class above -> top-2 yes */
                          3, 2, 1}; /* label 2: two above -> top-2 no */
    const int y[3] = {1, 2, 2};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(3, 3));
    memcpy(t->data, z, sizeof z);
    ct_metrics *m = ct_metrics_new(3, CT_METRICS(.top_k = 2));
    CHECK(ct_metrics_add(m, t, (ct_labels){y, 3}) == CT_OK, "%s", ct_last_error());
    const ct_metrics_result r = ct_metrics_compute(m);
    CHECK_NEAR(r.accuracy, 0.0, 0, 0);
    CHECK_NEAR(r.top_k_accuracy, 2.0 / 3, 1e-15, 0);
    const long *cm = ct_metrics_confusion(m);
    const long want[9] = {0, 0, 0, 1, 0, 0, 1, 1, 0};
    for (int k = 0; k < 9; k++) CHECK(cm[k] == want[k], "confusion[%d] = %ld, want %ld", k, cm[k], want[k]);
    /* macro over classes present in labels or predictions: 0, 1, 2 all present; every P, R is 0 */
    CHECK_NEAR(r.precision, 0.0, 0, 0);
    ct_metrics_reset(m);
    CHECK(ct_metrics_compute(m).n == 0 && isnan(ct_metrics_compute(m).accuracy), "reset did not empty the tally");
    ct_metrics_free(m);
    ct_tensor_free(t);
}

/* A diverged model: NaN and inf logits are counted and make the probability metrics NaN. */
CT_TEST(metrics, nonfinite_logits_are_counted_and_poison_calibration) {
    const ct_real z[6] = {NAN, 1, 0, 0, INFINITY, 1};
    const int y[2] = {1, 1};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(2, 3));
    memcpy(t->data, z, sizeof z);
    ct_metrics *m = ct_metrics_new(3, CT_METRICS());
    CHECK(ct_metrics_add(m, t, (ct_labels){y, 2}) == CT_OK, "%s", ct_last_error());
    const ct_metrics_result r = ct_metrics_compute(m);
    CHECK(r.nonfinite == 2, "nonfinite %ld", r.nonfinite);
    CHECK(isnan(r.nll) && isnan(r.brier) && isnan(r.ece) && isnan(r.ece_equal_mass),
          "nll %g brier %g ece %g: a NaN model reports a calibration", r.nll, r.brier, r.ece);
    /* NaN is the argmax (torch.argmax): row 0 predicts class 0; inf is the largest of row 1 */
    const long *cm = ct_metrics_confusion(m);
    CHECK(cm[1 * 3 + 0] == 1 && cm[1 * 3 + 1] == 1, "confusion row 1: %ld %ld %ld", cm[3], cm[4], cm[5]);
    CHECK_NEAR(r.accuracy, 0.5, 1e-15, 0);
    ct_metrics_free(m);
    ct_tensor_free(t);
}

/* ECE from probabilities by hand: bins of width 0.5; (0.5, 1]: confidences 0.9, 0.7 with one right:
 * |0.5 − 0.8| = 0.3; [0, 0.5]: 0.4, wrong: 0.4. ECE = 2/3·0.3 + 1/3·0.4. */
CT_TEST(metrics, ece_and_reliability_bins_by_hand) {
    const ct_real p[9] = {0.9, 0.05, 0.05, 0.2, 0.7, 0.1, 0.4, 0.35, 0.25};
    const int y[3] = {0, 0, 1};
    ct_metrics *m = ct_metrics_new(3, CT_METRICS(.bins = 2));
    CHECK(ct_metrics_add_probs(m, p, y, 3) == CT_OK, "%s", ct_last_error());
    const ct_metrics_result r = ct_metrics_compute(m);
    CHECK_NEAR(r.ece, 2.0 / 3 * 0.3 + 1.0 / 3 * 0.4, 1e-7, 0);
    /* equal mass, 2 bins of 3 samples: [0.4] and [0.7, 0.9]: the same split here */
    CHECK_NEAR(r.ece_equal_mass, 1.0 / 3 * 0.4 + 2.0 / 3 * 0.3, 1e-7, 0);
    double acc[2], conf[2];
    long count[2];
    ct_metrics_reliability(m, acc, conf, count);
    CHECK(count[0] == 1 && count[1] == 2, "counts %ld %ld", count[0], count[1]);
    CHECK_NEAR(acc[1], 0.5, 1e-15, 0);
    CHECK_NEAR(conf[1], 0.8, 1e-7, 0);
    CHECK_NEAR(r.nll, (-log(0.9) - log(0.2) - log(0.35)) / 3, 1e-7, 0);
    const double brier = ((0.1 * 0.1 + 0.05 * 0.05 * 2) + (0.8 * 0.8 + 0.7 * 0.7 + 0.1 * 0.1) +
                          (0.4 * 0.4 + 0.65 * 0.65 + 0.25 * 0.25)) / 3;
    CHECK_NEAR(r.brier, brier, 1e-7, 0);
    ct_metrics_free(m);
}

/* The sigmoid and StableMax transforms normalise their per-class scores. */
CT_TEST(metrics, eval_transforms_normalise) {
    const ct_real z[3] = {2, 0, -1};
    const int y[1] = {0};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(1, 3));
    memcpy(t->data, z, sizeof z);
    const double sig[3] = {1 / (1 + exp(-2.0)), 0.5, 1 / (1 + exp(1.0))}, st[3] = {3, 1, 0.5};
    const ct_eval_transform kinds[2] = {CT_EVAL_SIGMOID, CT_EVAL_STABLEMAX};
    for (int kind = 0; kind < 2; kind++) {
        ct_metrics *m = ct_metrics_new(3, CT_METRICS(.transform = kinds[kind], .bins = 10));
        CHECK(ct_metrics_add(m, t, (ct_labels){y, 1}) == CT_OK, "%s", ct_last_error());
        const double *s = kind == 0 ? sig : st, sum = s[0] + s[1] + s[2];
        CHECK_NEAR(ct_metrics_compute(m).nll, -log(s[0] / sum), 1e-12, 0);
        ct_metrics_free(m);
    }
    ct_tensor_free(t);
}

CT_TEST(metrics, knn_accuracy_votes_by_cosine_neighbours) {
    /* reference: class 0 along +x, class 1 along +y (lengths differ: cosine ignores them) */
    const ct_real ref[12] = {1, 0.1, 5, 0.2, 2, -0.1, 0.1, 1, -0.2, 3, 0, 2};
    const int ref_y[6] = {0, 0, 0, 1, 1, 1};
    const ct_real q[6] = {4, 0.5, 0.3, 7, 1, 1.2}; /* the last is nearer +y */
    const int q_y[3] = {0, 1, 0};
    ct_tensor *a = ct_tensor_new(CT_SHAPE(6, 2)), *b = ct_tensor_new(CT_SHAPE(3, 2));
    memcpy(a->data, ref, sizeof ref);
    memcpy(b->data, q, sizeof q);
    CHECK_NEAR(ct_knn_accuracy(a, ref_y, b, q_y, 3, 2), 2.0 / 3, 1e-15, 0);
    CHECK_NEAR(ct_knn_accuracy(a, ref_y, b, q_y, 1, 2), 2.0 / 3, 1e-15, 0);
    a->data[3] = NAN;
    CHECK(isnan(ct_knn_accuracy(a, ref_y, b, q_y, 3, 2)), "a NaN embedding gave a number");
    ct_tensor_free(a), ct_tensor_free(b);
}

static void bad_label(void *arg) {
    (void)arg;
    ct_metrics *m = ct_metrics_new(3, CT_METRICS());
    ct_tensor *t = ct_tensor_new(CT_SHAPE(1, 3));
    const int y[1] = {3};
    ct_metrics_add(m, t, (ct_labels){y, 1});
}

CT_TEST(metrics, label_out_of_range_names_it) {
    char got[512];
    CHECK(ct_test_expect_fatal(bad_label, NULL, "label 3 of sample 0 is out of range for C = 3", got, sizeof got),
          "got: %s", got);
}

/* Three Gaussian clusters in 5 dimensions: the probe separates them; with shuffled labels it is at
 * chance; the same inputs give the same accuracy. */
CT_TEST(metrics, linear_probe_separates_clusters_and_not_noise) {
    enum { C = 3, D = 5, N = 300, M = 150 };
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    double centers[C][D];
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D; d++) centers[c][d] = ct_rng_normal(&rng, 0, 2.5);
    ct_tensor *tr = ct_tensor_new(CT_SHAPE(N, D)), *te = ct_tensor_new(CT_SHAPE(M, D));
    int ytr[N], yte[M], shuffled[N];
    for (int i = 0; i < N + M; i++) {
        const int y = (int)ct_rng_int(&rng, 0, C);
        ct_real *row = i < N ? tr->data + (size_t)i * D : te->data + (size_t)(i - N) * D;
        for (int d = 0; d < D; d++) row[d] = (ct_real)(centers[y][d] + ct_rng_normal(&rng, 0, 1));
        if (i < N) ytr[i] = y, shuffled[i] = (int)ct_rng_int(&rng, 0, C);
        else yte[i - N] = y;
    }
    const double acc = ct_linear_probe_accuracy(tr, ytr, te, yte, C, 0, 0);
    CHECK(acc >= 0.95, "probe accuracy %.3f on separated clusters", acc);
    CHECK(ct_linear_probe_accuracy(tr, ytr, te, yte, C, 0, 0) == acc, "not deterministic");
    const double noise = ct_linear_probe_accuracy(tr, shuffled, te, yte, C, 0, 0);
    CHECK(noise < 0.6, "probe trained on random labels scores %.3f", noise);
    te->data[7] = NAN;
    CHECK(isnan(ct_linear_probe_accuracy(tr, ytr, te, yte, C, 0, 0)), "a NaN embedding gave a number");
    ct_tensor_free(tr), ct_tensor_free(te);
}
