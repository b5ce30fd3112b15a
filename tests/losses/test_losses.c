/* tests/losses/test_losses.c — the fused softmax cross-entropy against PyTorch (reference values and
 * gradients in tests/reference/cross_entropy_ref.h), its stability, its errors, and its
 * gradient checks (group gradcheck, float64 build). */
#include "../test.h"
#include "../reference/cross_entropy_ref.h"

#include <string.h>

/* Tolerances for comparing with float64 PyTorch: float32 keeps ~7 digits. */
#ifdef CT_PRECISION_64
#define REF_RTOL 1e-10
#define REF_ATOL 1e-12
#else
#define REF_RTOL 1e-5
#define REF_ATOL 1e-6
#endif

static int near(double got, double want, double atol, double rtol) {
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static ct_ce_opts ref_opts(const ce_ref_case *rc, ct_real *weight) {
    if (rc->weight)
        for (int c = 0; c < rc->c; c++) weight[c] = (ct_real)rc->weight[c];
    return CT_CE(.reduction = (ct_reduction)rc->reduction, .label_smoothing = rc->label_smoothing,
                 .ignore_index = rc->ignore_index, .weight = rc->weight ? weight : NULL);
}

/* ---- reference values and gradients --------------------------------------------------------- */
CT_TEST(losses, cross_entropy_matches_pytorch) {
    ct_tape *tape = ct_tape_new();
    double worst = 0;
    for (int k = 0; k < CE_REF_COUNT; k++) {
        const ce_ref_case *rc = &ce_ref_cases[k];
        ct_tape_reset(tape);
        ct_real weight[64];
        ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->c), rc->logits);
        ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(rc->labels, rc->n), ref_opts(rc, weight));
        int n_loss = rc->reduction == CT_REDUCTION_NONE ? rc->n : 1;
        CHECK((int)loss->size == n_loss && loss->ndim == (rc->reduction == CT_REDUCTION_NONE),
               "%s: loss has %zu values in %d dims", rc->name, loss->size, loss->ndim);
        for (int i = 0; i < n_loss; i++) {
            CHECK(near(loss->data[i], rc->loss[i], REF_ATOL, REF_RTOL), "%s: loss[%d] = %.10g, PyTorch %.10g",
                   rc->name, i, (double)loss->data[i], rc->loss[i]);
            worst = fmax(worst, fabs(loss->data[i] - rc->loss[i]) / fmax(fabs(rc->loss[i]), 1e-30));
        }
        ct_real cot[64];
        for (int i = 0; i < n_loss; i++) cot[i] = (ct_real)rc->cotangent[i];
        ct_backward_with(tape, loss, cot);
        for (int i = 0; i < rc->n * rc->c; i++)
            CHECK(near(z->grad[i], rc->grad[i], REF_ATOL, REF_RTOL), "%s: dlogits[%d] = %.10g, PyTorch %.10g",
                   rc->name, i, (double)z->grad[i], rc->grad[i]);
    }
    ct_tape_free(tape);
    ct_test_note("%d cases, worst loss rel err %.1e", CE_REF_COUNT, worst);
}

/* ---- one op on the tape ------------------------------------------------------------------- */
CT_TEST(losses, cross_entropy_is_one_node) {
    ct_tape *tape = ct_tape_new();
    const ce_ref_case *rc = &ce_ref_cases[0];
    ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->c), rc->logits);
    ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(rc->labels, rc->n), CT_CE());
    CHECK(ct_tape_node_count(tape) == 1, "the fused loss records exactly one node");
    CHECK(strcmp(ct_tape_node(tape, 0)->op->name, "cross_entropy") == 0);
    CHECK(loss->ndim == 0 && loss->size == 1, "mean is a scalar of shape ()");
    int was = ct_tape_grad_enabled(tape, 0);
    ct_tensor *eval = ct_cross_entropy(tape, z, CT_LABELS(rc->labels, rc->n), CT_CE());
    CHECK(!ct_requires_grad(eval) && ct_tape_node_count(tape) == 1, "no-grad records nothing");
    CHECK(eval->data[0] == loss->data[0]);
    ct_tape_grad_enabled(tape, was);
    ct_tape_free(tape);
}

/* The backward must use the labels and weights of the forward, even if the caller reuses its
 * arrays before ct_backward (a loader refilling its label buffer). */
CT_TEST(losses, cross_entropy_keeps_its_own_labels_and_weights) {
    const ce_ref_case *rc = NULL;
    for (int k = 0; k < CE_REF_COUNT; k++)
        if (!strcmp(ce_ref_cases[k].name, "weight_smoothing_mean")) rc = &ce_ref_cases[k];
    CHECK(rc != NULL);
    ct_tape *tape = ct_tape_new();
    int labels[64];
    ct_real weight[64];
    memcpy(labels, rc->labels, (size_t)rc->n * sizeof *labels);
    ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->c), rc->logits);
    ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(labels, rc->n), ref_opts(rc, weight));
    for (int i = 0; i < rc->n; i++) labels[i] = (labels[i] + 1) % rc->c;
    for (int c = 0; c < rc->c; c++) weight[c] = 100;
    ct_backward(tape, loss);
    for (int i = 0; i < rc->n * rc->c; i++)
        CHECK(near(z->grad[i], rc->grad[i], REF_ATOL, REF_RTOL), "dlogits[%d] = %.10g, PyTorch %.10g", i,
               (double)z->grad[i], rc->grad[i]);
    ct_tape_free(tape);
}

/* ---- stability ---------------------------------------------------------------------------- */
CT_TEST(losses, cross_entropy_finite_for_huge_logits) {
    /* exp(1e4) overflows float64 and exp(89) float32: only max-subtraction keeps these finite. */
    const double scales[] = {1e4, 1e30};
    for (int s = 0; s < 2; s++) {
        const double b = scales[s];
        const double z0[] = {b, -b, b, 0, -b, -b, -b, -b, b, b, -b, 2, 0, b, -b, b};
        const int y[] = {1, 2, 0, 2};
        ct_real w[4] = {0.5, 1, 2, 1.5};
        ct_ce_opts opts[] = {CT_CE(), CT_CE(.reduction = CT_REDUCTION_SUM),
                             CT_CE(.label_smoothing = 0.1, .weight = w)};
        for (int o = 0; o < 3; o++) {
            ct_tape *tape = ct_tape_new();
            ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(4, 4), z0);
            ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 4), opts[o]);
            CHECK(isfinite(loss->data[0]) && loss->data[0] > 0, "scale %g opts %d: loss %g", b, o,
                   (double)loss->data[0]);
            ct_backward(tape, loss);
            for (int i = 0; i < 16; i++)
                CHECK(isfinite(z->grad[i]) && fabs(z->grad[i]) <= 10, "scale %g opts %d: dlogits[%d] = %g", b,
                       o, i, (double)z->grad[i]);
            /* each row's gradient sums to zero (softmax is shift invariant) */
            for (int r = 0; r < 4; r++) {
                double row = 0;
                for (int c = 0; c < 4; c++) row += z->grad[r * 4 + c];
                CHECK(fabs(row) < 1e-5, "scale %g opts %d: row %d gradient sums to %g", b, o, r, row);
            }
            ct_tape_free(tape);
        }
    }
}

/* Two equal huge logits: p = ½ each, so the loss is log 2 — not 0, which z − (m + log s) gives
 * once m + log s rounds back to m. */
CT_TEST(losses, cross_entropy_exact_for_equal_huge_logits) {
    const double z0[] = {1e30, 1e30, -1e30, 1e4, 1e4, 1e4};
    const int y[] = {0, 2};
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(2, 3), z0);
    ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 2), CT_CE(.reduction = CT_REDUCTION_NONE));
    CHECK_NEAR(loss->data[0], log(2.0), 1e-6, 1e-6);
    CHECK_NEAR(loss->data[1], log(3.0), 1e-6, 1e-6);
    ct_backward_with(tape, loss, (ct_real[]){1, 1});
    const double want[] = {-0.5, 0.5, 0, 1 / 3.0, 1 / 3.0, -2 / 3.0};
    for (int i = 0; i < 6; i++) CHECK_NEAR(z->grad[i], want[i], 1e-6, 1e-6);
    ct_tape_free(tape);
}

/* A mean over no sample is 0/0: PyTorch returns NaN with a zero gradient, and so do we. */
CT_TEST(losses, cross_entropy_all_ignored_mean_is_nan_like_pytorch) {
    ct_tape *tape = ct_tape_new();
    const double z0[] = {1, 2, 3, 4, 5, 6};
    const int y[] = {-100, -100};
    ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(2, 3), z0);
    ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 2), CT_CE(.label_smoothing = 0.1));
    CHECK(isnan(loss->data[0]));
    ct_backward(tape, loss);
    for (int i = 0; i < 6; i++) CHECK(z->grad[i] == 0);
    ct_tape_reset(tape);
    z = ct_test_leaf(tape, CT_SHAPE(2, 3), z0);
    loss = ct_cross_entropy(tape, z, CT_LABELS(y, 2), CT_CE(.reduction = CT_REDUCTION_SUM));
    CHECK(loss->data[0] == 0, "sum over no sample is 0");
    ct_tape_free(tape);
}

/* ---- the fused op against its composed reference (ct_cross_entropy_reference) ---------------- *
 * tinygrad's rule: a fused backward is an optimisation that must match the composed one. */
CT_TEST(losses, cross_entropy_fused_matches_reference) {
    enum { N = 16, C = 10 };
    ct_rng rng;
    ct_rng_seed(&rng, 99);
    double z0[N * C];
    int y[N];
    ct_real w[C];
    for (int i = 0; i < N * C; i++) z0[i] = ct_rng_normal(&rng, 0, 3);
    for (int i = 0; i < N; i++) y[i] = (int)ct_rng_int(&rng, 0, C);
    for (int c = 0; c < C; c++) w[c] = (ct_real)ct_rng_uniform_range(&rng, 0.2, 2);
    const double eps = 0.1;
    ct_ce_opts fused_opts[] = {CT_CE(), CT_CE(.label_smoothing = eps),
                               CT_CE(.reduction = CT_REDUCTION_SUM, .weight = w)};
    const char *names[] = {"plain", "smoothing", "weight_sum"};
    /* two tapes: a second ct_backward on one tape would replay the first loss's nodes too */
    ct_tape *tf = ct_tape_new(), *tc = ct_tape_new();
    for (int k = 0; k < 3; k++) {
        ct_tape_reset(tf);
        ct_tape_reset(tc);
        ct_tensor *zf = ct_test_leaf(tf, CT_SHAPE(N, C), z0);
        ct_tensor *zc = ct_test_leaf(tc, CT_SHAPE(N, C), z0);
        ct_tensor *fused = ct_cross_entropy(tf, zf, CT_LABELS(y, N), fused_opts[k]);
        ct_tensor *composed = ct_cross_entropy_reference(tc, zc, CT_LABELS(y, N), fused_opts[k]);
        CHECK(composed->size == 1 && near(fused->data[0], composed->data[0], REF_ATOL, REF_RTOL),
               "%s: fused %.10g, composed %.10g", names[k], (double)fused->data[0], (double)composed->data[0]);
        ct_backward(tf, fused);
        ct_backward(tc, composed);
        for (int i = 0; i < N * C; i++)
            CHECK(near(zf->grad[i], zc->grad[i], 2 * REF_ATOL, REF_RTOL), "%s: dlogits[%d] fused %.10g, composed %.10g",
                   names[k], i, (double)zf->grad[i], (double)zc->grad[i]);
    }
    ct_tape_free(tf);
    ct_tape_free(tc);
}

/* ---- errors ------------------------------------------------------------------------------- */
typedef struct {
    int n_labels, bad_label, bad_row;
    double bad_value;
} ce_fatal_case;

static void ce_fatal_body(void *arg) {
    const ce_fatal_case *fc = arg;
    ct_tape *tape = ct_tape_new();
    double z0[20];
    for (int i = 0; i < 20; i++) z0[i] = 0.1 * i;
    if (fc->bad_row >= 0) z0[fc->bad_row * 5 + 3] = fc->bad_value;
    int y[4] = {0, 1, 2, 3};
    if (fc->bad_label) y[2] = fc->bad_label;
    ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(4, 5), z0);
    ct_cross_entropy(tape, z, CT_LABELS(y, fc->n_labels), CT_CE());
}

static int expect_fatal_all(ce_fatal_case fc, const char *const *parts, int n_parts, char *got, size_t len) {
    if (!ct_test_expect_fatal(ce_fatal_body, &fc, parts[0], got, len)) return 0;
    for (int i = 1; i < n_parts; i++)
        if (!strstr(got, parts[i])) return 0;
    return 1;
}

CT_TEST(losses, cross_entropy_fatal_label_out_of_range) {
    char got[1024];
    const char *high[] = {"cross_entropy", "label 7 of sample 2", "C = 5"};
    CHECK(expect_fatal_all((ce_fatal_case){4, 7, -1, 0}, high, 3, got, sizeof got), "got: %s", got);
    const char *negative[] = {"cross_entropy", "label -1 of sample 2", "C = 5", "ignore_index is -100"};
    CHECK(expect_fatal_all((ce_fatal_case){4, -1, -1, 0}, negative, 4, got, sizeof got), "got: %s", got);
    const char *at_c[] = {"cross_entropy", "label 5 of sample 2"};
    CHECK(expect_fatal_all((ce_fatal_case){4, 5, -1, 0}, at_c, 2, got, sizeof got), "got: %s", got);
}

CT_TEST(losses, cross_entropy_fatal_label_count) {
    char got[1024];
    const char *parts[] = {"cross_entropy", "3 labels", "(4, 5)", "N = 4"};
    CHECK(expect_fatal_all((ce_fatal_case){3, 0, -1, 0}, parts, 4, got, sizeof got), "got: %s", got);
}

/* A non-finite logit is data, not a programmer error: its row's loss is NaN (NaN, +inf) or the
 * row computes with that class masked (−inf), as in PyTorch; the other rows are untouched. */
CT_TEST(losses, cross_entropy_non_finite_logit_stays_in_its_row) {
    const double values[3] = {NAN, INFINITY, -INFINITY};
    for (int v = 0; v < 3; v++) {
        ct_tape *tape = ct_tape_new();
        double z0[20];
        for (int i = 0; i < 20; i++) z0[i] = 0.1 * i;
        z0[1 * 5 + 3] = values[v];
        int y[4] = {0, 1, 2, 3};
        ct_tensor *z = ct_test_leaf(tape, CT_SHAPE(4, 5), z0);
        ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 4), CT_CE(.reduction = CT_REDUCTION_NONE));
        for (int i = 0; i < 4; i++)
            CHECK(i == 1 && v < 2 ? isnan(loss->data[i]) : isfinite(loss->data[i]), "value %g: row %d loss %g",
                  values[v], i, (double)loss->data[i]);
        ct_tape_free(tape);
    }
}

static void ce_bad_smoothing(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(2, 3));
    int y[2] = {0, 1};
    ct_cross_entropy(tape, z, CT_LABELS(y, 2), CT_CE(.label_smoothing = 1.5));
}

static void ce_bad_shape(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(2, 3, 4));
    int y[2] = {0, 1};
    ct_cross_entropy(tape, z, CT_LABELS(y, 2), CT_CE());
}

CT_TEST(losses, cross_entropy_fatal_bad_options_and_shape) {
    char got[1024];
    CHECK(ct_test_expect_fatal(ce_bad_smoothing, NULL, "label_smoothing 1.5", got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(ce_bad_shape, NULL, "(2, 3, 4)", got, sizeof got) && strstr(got, "cross_entropy"),
           "got: %s", got);
}

/* ---- gradient checks (float64 build) ------------------------------------------------------ */
typedef struct {
    const int *labels;
    int n;
    ct_ce_opts opts;
} ce_check_ctx;

static ct_tensor *ce_check_fn(ct_tape *tape, ct_tensor *const *inputs, void *ctx) {
    const ce_check_ctx *c = ctx;
    return ct_cross_entropy(tape, inputs[0], CT_LABELS(c->labels, c->n), c->opts);
}

static void ce_gradcheck(ct_ce_opts opts, int ignore_some) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#endif
    enum { N = 6, C = 5 };
    int labels[N] = {0, 4, 2, 1, 3, 2};
    if (ignore_some) labels[1] = labels[4] = opts.ignore_index;
    ct_tensor *z = ct_tensor_new_grad(CT_SHAPE(N, C));
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    ct_tensor_fill_normal(z, &rng, 0, 2);
    ce_check_ctx ctx = {labels, N, opts};
    ct_gradcheck_result r = ct_gradcheck(ce_check_fn, &ctx, &z, 1, CT_GRADCHECK());
    char msg[256];
    ct_gradcheck_describe(&r, msg, sizeof msg);
    ct_tensor_free(z);
    CHECK(r.passed && r.checked == N * C, "%s", msg);
    ct_test_note("%s", msg);
}

static ct_real check_weight[5] = {0.3, 1.7, 1.0, 0.6, 2.2};

CT_TEST(gradcheck, cross_entropy_mean) { ce_gradcheck(CT_CE(), 0); }
CT_TEST(gradcheck, cross_entropy_sum) { ce_gradcheck(CT_CE(.reduction = CT_REDUCTION_SUM), 0); }
CT_TEST(gradcheck, cross_entropy_none) { ce_gradcheck(CT_CE(.reduction = CT_REDUCTION_NONE), 0); }
CT_TEST(gradcheck, cross_entropy_smoothing) { ce_gradcheck(CT_CE(.label_smoothing = 0.1), 0); }
CT_TEST(gradcheck, cross_entropy_weight) { ce_gradcheck(CT_CE(.weight = check_weight), 0); }
CT_TEST(gradcheck, cross_entropy_weight_smoothing_sum) {
    ce_gradcheck(CT_CE(.reduction = CT_REDUCTION_SUM, .label_smoothing = 0.2, .weight = check_weight), 0);
}
CT_TEST(gradcheck, cross_entropy_ignore_index) { ce_gradcheck(CT_CE(), 1); }
CT_TEST(gradcheck, cross_entropy_ignore_class_weight_smoothing) {
    ce_gradcheck(CT_CE(.label_smoothing = 0.1, .weight = check_weight, .ignore_index = 2), 1);
}
CT_TEST(gradcheck, cross_entropy_ignore_none_smoothing) {
    ce_gradcheck(CT_CE(.reduction = CT_REDUCTION_NONE, .label_smoothing = 0.3, .ignore_index = -1), 1);
}

/* Rows 0 and 2 pick their label; row 1 ties between classes 0 and 2 and takes the first (0),
 * which is not its label 2. */
CT_TEST(losses, count_correct_takes_the_first_maximum) {
    ct_tape *tape = ct_tape_new();
    const ct_real z[9] = {3, 1, 2, 5, 0, 5, -1, -2, -0.5};
    ct_tensor *logits = ct_tape_tensor_from(tape, CT_SHAPE(3, 3), z);
    const int y[3] = {0, 2, 2};
    CHECK(ct_count_correct(logits, CT_LABELS(y, 3)) == 2);
    ct_tape_free(tape);
}
