/* tests/losses/test_analysis.c — losses/analysis.h: temperature scaling against SciPy and by hand,
 * neural collapse on a simplex ETF, by hand and against NumPy's D × D pseudo-inverse, the logit
 * statistics of softmax collapse against NumPy and on logits that collapse in float32 only
 * (tests/reference/analysis_ref.h, from tests/reference/gen_analysis.py). */
#include "../test.h"
#include "../reference/analysis_ref.h"

#include <string.h>

static ct_tensor *tensor_from_floats(int rows, int cols, const float *x) {
    ct_tensor *t = ct_tensor_new(CT_SHAPE(rows, cols));
    for (size_t k = 0; k < t->size; k++) t->data[k] = x[k];
    return t;
}

/* ---- temperature scaling ---------------------------------------------------------------------- */

CT_TEST(analysis, temperature_matches_scipy) {
    int steps[2] = {0, 0};
    for (size_t k = 0; k < sizeof temperature_ref_cases / sizeof *temperature_ref_cases; k++) {
        const temperature_ref_case *rc = &temperature_ref_cases[k];
        ct_tensor *z = tensor_from_floats(rc->n, rc->c, rc->logits);
        ct_temperature_result r;
        CHECK(ct_temperature_fit(z, CT_LABELS(rc->labels, rc->n), CT_TEMPERATURE(), &r) == CT_OK, "%s: %s", rc->name,
              ct_last_error());
        /* T and the NLL come from the float logits in double: the same in both builds */
        CHECK_NEAR(r.temperature, rc->temperature, 0, 1e-9);
        CHECK(!r.at_bound && r.iterations >= 2 && r.iterations < 20, "%s: %d iterations, at_bound %d", rc->name,
              r.iterations, r.at_bound);
        CHECK_NEAR(r.nll_before, rc->nll_before, 0, 1e-12);
        CHECK_NEAR(r.nll_after, rc->nll_after, 0, 1e-12);
        CHECK(r.nll_after < r.nll_before, "%s: the NLL did not fall", rc->name);
        /* ECE after: ct_metrics on the scaled logits, rounded to ct_real */
        const double tol = sizeof(ct_real) == 4 ? 2e-6 : 1e-10;
        CHECK_NEAR(r.ece_before, rc->ece_before, 1e-12, 0);
        CHECK_NEAR(r.ece_equal_mass_before, rc->ece_mass_before, 1e-12, 0);
        CHECK_NEAR(r.ece_after, rc->ece_after, tol, 0);
        CHECK_NEAR(r.ece_equal_mass_after, rc->ece_mass_after, tol, 0);
        steps[k] = r.iterations;
        ct_tensor_free(z);
    }
    ct_test_note("Newton steps: %d, %d", steps[0], steps[1]);
}

/* Binary logits (1, 0) for four samples, three labelled 0 and one 1: with β = 1/T the NLL is
 * ¾·log(1 + e^−β) + ¼·log(1 + e^β), whose minimum has e^β = 3, T = 1/ln 3. There every confidence
 * is σ(ln 3) = ¾ = the accuracy, so the ECE after is 0; before it is σ(1) − ¾ = 0.0189... */
CT_TEST(analysis, temperature_by_hand) {
    const ct_real z[8] = {1, 0, 1, 0, 1, 0, 1, 0};
    const int y[4] = {0, 0, 0, 1};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(4, 2));
    memcpy(t->data, z, sizeof z);
    ct_temperature_result r;
    CHECK(ct_temperature_fit(t, CT_LABELS(y, 4), CT_TEMPERATURE(), &r) == CT_OK, "%s", ct_last_error());
    CHECK_NEAR(r.temperature, 1 / log(3.0), 0, 1e-10);
    CHECK_NEAR(r.ece_before, 0.75 - 1 / (1 + exp(-1.0)), 1e-12, 0);
    CHECK_NEAR(r.ece_after, 0, 1e-7, 0);
    CHECK_NEAR(r.nll_after, -0.75 * log(0.75) - 0.25 * log(0.25), 1e-13, 0);
    CHECK_NEAR(r.nll_before, 0.75 * log(1 + exp(-1.0)) + 0.25 * log(1 + exp(1.0)), 1e-13, 0);
    /* apply divides by T */
    ct_temperature_apply(t, r.temperature);
    CHECK_NEAR(t->data[0], log(3.0), 1e-6, 0);
    CHECK(t->data[1] == 0);
    ct_tensor_free(t);
}

/* All right and separable: the NLL falls as T → 0, so T stops at t_min. All wrong: it falls as
 * T → ∞, so T stops at t_max. */
CT_TEST(analysis, temperature_at_the_ends_of_its_range) {
    const ct_real z[6] = {2, 0, 0, 3, 1, -1};
    const int right[3] = {0, 1, 0}, wrong[3] = {1, 0, 1};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(3, 2));
    memcpy(t->data, z, sizeof z);
    ct_temperature_result r;
    CHECK(ct_temperature_fit(t, CT_LABELS(right, 3), CT_TEMPERATURE(.t_min = 0.05), &r) == CT_OK, "%s", ct_last_error());
    CHECK(r.at_bound && r.temperature == 1 / (1 / 0.05), "T = %g, at_bound %d", r.temperature, r.at_bound);
    CHECK(ct_temperature_fit(t, CT_LABELS(wrong, 3), CT_TEMPERATURE(.t_max = 50), &r) == CT_OK, "%s", ct_last_error());
    CHECK(r.at_bound && fabs(r.temperature - 50) < 1e-12, "T = %g, at_bound %d", r.temperature, r.at_bound);
    ct_tensor_free(t);
}

CT_TEST(analysis, temperature_refuses_nonfinite_and_empty_data) {
    ct_tensor *t = ct_tensor_new(CT_SHAPE(3, 2));
    const int y[3] = {0, 1, 0};
    t->data[3] = NAN;
    ct_temperature_result r;
    CHECK(ct_temperature_fit(t, CT_LABELS(y, 3), CT_TEMPERATURE(), &r) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "row 1 of the logits") != NULL, "%s", ct_last_error());
    CHECK(isnan(r.temperature) && isnan(r.ece_before) && isnan(r.nll_after));
    ct_tensor *empty = ct_tensor_new(CT_SHAPE(0, 2));
    CHECK(ct_temperature_fit(empty, CT_LABELS(y, 0), CT_TEMPERATURE(), &r) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "no samples") != NULL, "%s", ct_last_error());
    ct_tensor_free(t), ct_tensor_free(empty);
}

static void fit_with_label(void *arg) {
    ct_tensor *t = ct_tensor_new(CT_SHAPE(2, 3));
    const int y[2] = {0, *(int *)arg};
    ct_temperature_result r;
    ct_temperature_fit(t, CT_LABELS(y, 2), CT_TEMPERATURE(), &r);
}
static void fit_with_range(void *arg) {
    (void)arg;
    ct_tensor *t = ct_tensor_new(CT_SHAPE(2, 3));
    const int y[2] = {0, 1};
    ct_temperature_result r;
    ct_temperature_fit(t, CT_LABELS(y, 2), CT_TEMPERATURE(.t_min = 2, .t_max = 1), &r);
}
static void fit_one_class(void *arg) {
    (void)arg;
    ct_tensor *t = ct_tensor_new(CT_SHAPE(2, 1));
    const int y[2] = {0, 0};
    ct_temperature_result r;
    ct_temperature_fit(t, CT_LABELS(y, 2), CT_TEMPERATURE(), &r);
}
static void apply_zero(void *arg) {
    (void)arg;
    ct_temperature_apply(ct_tensor_new(CT_SHAPE(2, 3)), 0);
}

CT_TEST(analysis, temperature_programmer_errors_are_named) {
    char got[512];
    int label = 3;
    CHECK(ct_test_expect_fatal(fit_with_label, &label, "label 3 of sample 1 is out of range for C = 3", got, sizeof got),
          "got: %s", got);
    CHECK(ct_test_expect_fatal(fit_with_range, NULL, "0 < t_min < t_max", got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(fit_one_class, NULL, "logits have 1 classes; at least 2 are needed", got, sizeof got),
          "got: %s", got);
    CHECK(ct_test_expect_fatal(apply_zero, NULL, "the temperature 0 must be finite and > 0", got, sizeof got), "got: %s",
          got);
}

/* ---- neural collapse --------------------------------------------------------------------------- */

/* The regular tetrahedron (1,1,1), (1,−1,−1), (−1,1,−1), (−1,−1,1) is a simplex ETF for C = 4: centred,
 * equal norms √3, every cosine −1/3. Three copies of each vertex (no within-class spread), shifted by
 * a global offset and padded to D = 5, all exact in float32: NC1 = 0, the NC2 figures at their limits,
 * NC3 = 0 for W = 2M, NC4 = 1. */
CT_TEST(analysis, collapse_of_a_perfect_simplex_etf) {
    enum { C = 4, D = 5, PER = 3, N = C * PER };
    const double vertex[C][3] = {{1, 1, 1}, {1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}};
    const double offset[D] = {0.5, -2, 3, 0.25, 1};
    ct_tensor *h = ct_tensor_new(CT_SHAPE(N, D)), *w = ct_tensor_new(CT_SHAPE(C, D));
    int y[N];
    for (int i = 0; i < N; i++) {
        y[i] = (i * 3) % C; /* classes interleaved */
        for (int d = 0; d < D; d++) h->data[i * D + d] = (ct_real)((d < 3 ? vertex[y[i]][d] : 0) + offset[d]);
    }
    /* W = 2M and b = −Wμ_G, so that w_c·h + b_c = w_c·(h − μ_G) */
    ct_tensor *b = ct_tensor_new(CT_SHAPE(C));
    for (int c = 0; c < C; c++)
        for (int d = 0; d < 3; d++) {
            w->data[c * D + d] = (ct_real)(2 * vertex[c][d]);
            b->data[c] -= (ct_real)(2 * vertex[c][d] * offset[d]);
        }
    ct_collapse_result r;
    CHECK(ct_neural_collapse(h, CT_LABELS(y, N), C, w, b, &r) == CT_OK, "%s", ct_last_error());
    CHECK(r.classes == C);
    CHECK(r.nc1 == 0, "NC1 = %g", r.nc1);
    CHECK_NEAR(r.equinorm, 0, 1e-15, 0);
    CHECK_NEAR(r.cos_mean, -1.0 / 3, 1e-15, 0);
    CHECK_NEAR(r.cos_std, 0, 1e-15, 0);
    CHECK_NEAR(r.cos_gap, 0, 1e-15, 0);
    CHECK_NEAR(r.max_angle, 0, 1e-15, 0);
    CHECK_NEAR(r.w_equinorm, 0, 1e-15, 0);
    CHECK_NEAR(r.w_cos_std, 0, 1e-15, 0);
    CHECK_NEAR(r.nc3, 0, 1e-15, 0);
    CHECK(r.nc4 == 1, "NC4 = %g", r.nc4);
    ct_tensor_free(h), ct_tensor_free(w), ct_tensor_free(b);
}

/* The same for C = 10 in D = 12: the vertices e_c − 1/C (not exact in binary), with a small spread
 * added in the two dimensions the ETF leaves free, so NC1 is small but not 0. */
CT_TEST(analysis, collapse_of_a_ten_class_etf_with_spread) {
    enum { C = 10, D = 12, PER = 4, N = C * PER };
    ct_tensor *h = ct_tensor_new(CT_SHAPE(N, D));
    int y[N];
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        y[i] = i % C;
        for (int d = 0; d < C; d++) h->data[i * D + d] = (ct_real)((d == y[i]) - 1.0 / C);
        /* ±s in dimensions 10, 11, balanced within each class so the class means stay on the ETF */
        const double s = 1e-3 * (i / C % 2 ? 1 : -1);
        h->data[i * D + 10] = (ct_real)s, h->data[i * D + 11] = (ct_real)(i / C < 2 ? s : -s);
    }
    ct_collapse_result r;
    CHECK(ct_neural_collapse(h, CT_LABELS(y, N), C, NULL, NULL, &r) == CT_OK, "%s", ct_last_error());
    const double tol = sizeof(ct_real) == 4 ? 1e-6 : 1e-13;
    CHECK_NEAR(r.cos_mean, -1.0 / (C - 1), tol, 0);
    CHECK_NEAR(r.cos_std, 0, tol, 0);
    CHECK_NEAR(r.equinorm, 0, tol, 0);
    /* Σ_W lives in dimensions 10, 11, orthogonal to every centred mean: Σ_B^† Σ_W = 0 */
    CHECK_NEAR(r.nc1, 0, tol, 0);
    CHECK(isnan(r.nc3) && isnan(r.nc4) && isnan(r.w_equinorm), "NC3, NC4 without W must be NaN");
    ct_tensor_free(h);
}

/* C = 2, D = 1 by hand. Class 0: one sample at −1; class 1: 0.5, 1, 1.5. μ_G = 0.5, centred means
 * −1.5 and 0.5: Σ_B = (2.25 + 0.25)/2 = 1.25, Σ_W = (0.25 + 0 + 0.25)/4 = 0.125, NC1 = 0.125/1.25/2
 * = 0.05. Norms 1.5, 0.5: equinorm = 0.5/1 = 0.5; the one cosine is −1 = −1/(C−1). W = (−1, 1)ᵀ,
 * b = (0, −1.2): z(0.5) = (−0.5, −0.7) predicts class 0 while the nearest mean is class 1's;
 * the three others agree: NC4 = 3/4. NC3 = (−1/√2 + 1.5/√2.5)² + (1/√2 − 0.5/√2.5)². */
CT_TEST(analysis, collapse_by_hand) {
    const ct_real hv[4] = {-1, 0.5, 1, 1.5}, wv[2] = {-1, 1}, bv[2] = {0, -1.2f};
    const int y[4] = {0, 1, 1, 1};
    ct_tensor *h = ct_tensor_new(CT_SHAPE(4, 1)), *w = ct_tensor_new(CT_SHAPE(2, 1)), *b = ct_tensor_new(CT_SHAPE(2));
    memcpy(h->data, hv, sizeof hv), memcpy(w->data, wv, sizeof wv), memcpy(b->data, bv, sizeof bv);
    ct_collapse_result r;
    CHECK(ct_neural_collapse(h, CT_LABELS(y, 4), 2, w, b, &r) == CT_OK, "%s", ct_last_error());
    CHECK_NEAR(r.nc1, 0.05, 1e-15, 0);
    CHECK_NEAR(r.equinorm, 0.5, 1e-15, 0);
    CHECK_NEAR(r.cos_mean, -1, 1e-15, 0);
    CHECK_NEAR(r.cos_std, 0, 0, 0);
    CHECK_NEAR(r.nc4, 0.75, 0, 0);
    const double e0 = -1 / sqrt(2.0) + 1.5 / sqrt(2.5), e1 = 1 / sqrt(2.0) - 0.5 / sqrt(2.5);
    CHECK_NEAR(r.nc3, e0 * e0 + e1 * e1, 1e-15, 0);
    CHECK_NEAR(r.w_equinorm, 0, 0, 0);
    ct_tensor_free(h), ct_tensor_free(w), ct_tensor_free(b);
}

CT_TEST(analysis, collapse_matches_numpy) {
    for (size_t k = 0; k < sizeof collapse_ref_cases / sizeof *collapse_ref_cases; k++) {
        const collapse_ref_case *rc = &collapse_ref_cases[k];
        ct_tensor *h = tensor_from_floats(rc->n, rc->d, rc->features), *w = tensor_from_floats(rc->c, rc->d, rc->weight);
        ct_tensor *b = ct_tensor_new(CT_SHAPE(rc->c));
        for (int c = 0; c < rc->c; c++) b->data[c] = rc->bias[c];
        ct_collapse_result r;
        CHECK(ct_neural_collapse(h, CT_LABELS(rc->labels, rc->n), rc->c, w, b, &r) == CT_OK, "%s: %s", rc->name,
              ct_last_error());
        /* from the same float inputs in double; NumPy's pinv of the D × D Σ_B against Jacobi on C × C */
        CHECK_NEAR(r.nc1, rc->nc1, 0, 1e-9);
        CHECK_NEAR(r.equinorm, rc->equinorm, 0, 1e-12);
        CHECK_NEAR(r.cos_std, rc->cos_std, 0, 1e-12);
        CHECK_NEAR(r.cos_mean, rc->cos_mean, 0, 1e-12);
        CHECK_NEAR(r.cos_gap, fabs(rc->cos_mean + 1.0 / (rc->c - 1)), 1e-12, 0);
        CHECK_NEAR(r.max_angle, rc->max_angle, 0, 1e-12);
        CHECK_NEAR(r.w_equinorm, rc->w_equinorm, 0, 1e-12);
        CHECK_NEAR(r.w_cos_std, rc->w_cos_std, 0, 1e-12);
        CHECK_NEAR(r.nc3, rc->nc3, 0, 1e-12);
        CHECK_NEAR(r.nc4, rc->nc4, 1e-15, 0);
        ct_tensor_free(h), ct_tensor_free(w), ct_tensor_free(b);
    }
}

CT_TEST(analysis, collapse_reports_an_empty_class_and_nonfinite_features) {
    ct_tensor *h = ct_tensor_new(CT_SHAPE(4, 2));
    for (int k = 0; k < 8; k++) h->data[k] = (ct_real)k;
    const int y[4] = {0, 2, 0, 2};
    ct_collapse_result r;
    CHECK(ct_neural_collapse(h, CT_LABELS(y, 4), 3, NULL, NULL, &r) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "class 1 has no sample") != NULL, "%s", ct_last_error());
    CHECK(isnan(r.nc1) && isnan(r.equinorm));
    const int y2[4] = {0, 1, 0, 1};
    h->data[5] = INFINITY;
    CHECK(ct_neural_collapse(h, CT_LABELS(y2, 4), 2, NULL, NULL, &r) == CT_ERR_VALUE);
    CHECK(strstr(ct_last_error(), "feature row 2") != NULL, "%s", ct_last_error());
    CHECK(isnan(r.nc1));
    ct_tensor_free(h);
}

static void collapse_bad_weight(void *arg) {
    (void)arg;
    const int y[2] = {0, 1};
    ct_collapse_result r;
    ct_neural_collapse(ct_tensor_new(CT_SHAPE(2, 4)), CT_LABELS(y, 2), 2, ct_tensor_new(CT_SHAPE(2, 3)), NULL, &r);
}
static void collapse_one_class(void *arg) {
    (void)arg;
    const int y[2] = {0, 0};
    ct_collapse_result r;
    ct_neural_collapse(ct_tensor_new(CT_SHAPE(2, 4)), CT_LABELS(y, 2), 1, NULL, NULL, &r);
}

CT_TEST(analysis, collapse_programmer_errors_are_named) {
    char got[512];
    CHECK(ct_test_expect_fatal(collapse_bad_weight, NULL, "the classifier's weight must be (2, 4)", got, sizeof got),
          "got: %s", got);
    CHECK(ct_test_expect_fatal(collapse_one_class, NULL, "1 classes: neural collapse needs at least 2", got, sizeof got),
          "got: %s", got);
}

/* ---- softmax-collapse logit statistics --------------------------------------------------------- */

CT_TEST(analysis, logit_stats_match_numpy) {
    for (size_t k = 0; k < sizeof logit_ref_cases / sizeof *logit_ref_cases; k++) {
        const logit_ref_case *rc = &logit_ref_cases[k];
        ct_tensor *z = tensor_from_floats(rc->n, rc->c, rc->logits);
        const ct_logit_stats s = ct_logit_stats_compute(z, CT_LABELS(rc->labels, rc->n));
        CHECK(s.n == rc->n && s.nonfinite == 0);
        CHECK_NEAR(s.margin_mean, rc->mean, 1e-12, 1e-13);
        CHECK_NEAR(s.margin_std, rc->std, 1e-12, 1e-13);
        CHECK_NEAR(s.margin_min, rc->min, 0, 0);
        CHECK_NEAR(s.margin_max, rc->max, 0, 0);
        const double q[5] = {s.margin_q10, s.margin_q25, s.margin_median, s.margin_q75, s.margin_q90};
        for (int j = 0; j < 5; j++) CHECK_NEAR(q[j], rc->quantiles[j], 1e-12, 1e-13);
        CHECK_NEAR(s.collapsed_f32, rc->collapsed_f32, 0, 0);
        CHECK_NEAR(s.collapsed_f64, rc->collapsed_f64, 0, 0);
        ct_tensor_free(z);
    }
}

/* Label 1 throughout. Margin 20: e^−20 = 2.1e-9 is below half an ulp of 1 in float32 (2^−24 = 6e-8),
 * not in float64 (2^−53): collapsed in float32 only. Margin 40: in both (e^−40 = 4e-18). Margin 10:
 * in neither. Margin 110: e^−110 underflows float32 to 0, so the whole gradient row is 0. Margin −20:
 * wrong, never collapsed. */
CT_TEST(analysis, softmax_collapse_in_float32_and_not_in_float64) {
    const ct_real z[10] = {0, 20, 0, 40, 0, 10, 0, 110, 20, 0};
    const int y[5] = {1, 1, 1, 1, 1};
    ct_tensor *t = ct_tensor_new(CT_SHAPE(5, 2));
    memcpy(t->data, z, sizeof z);
    const ct_logit_stats s = ct_logit_stats_compute(t, CT_LABELS(y, 5));
    CHECK_NEAR(s.collapsed_f32, 3.0 / 5, 0, 0);
    CHECK_NEAR(s.collapsed_f64, 2.0 / 5, 0, 0);
    CHECK_NEAR(s.zero_gradient_f32, 1.0 / 5, 0, 0);
    CHECK_NEAR(s.margin_mean, 32, 1e-13, 0);
    CHECK_NEAR(s.margin_median, 20, 0, 0);
    CHECK_NEAR(s.margin_min, -20, 0, 0);
    CHECK_NEAR(s.margin_q25, 10, 0, 0);
    CHECK_NEAR(s.margin_q90, 40 + 0.6 * 70, 1e-12, 0);
    ct_tensor_free(t);
}

/* What the statistic claims, checked on ctape's own cross-entropy in this build: the rows it counts
 * as collapsed (in the build's precision) get a gradient of exactly 0 on their label's logit. */
CT_TEST(analysis, collapsed_rows_get_no_gradient_from_cross_entropy) {
    const ct_real z[10] = {0, 20, 0, 40, 0, 10, -3, 3, 20, 0};
    const int y[5] = {1, 1, 1, 1, 1};
    ct_tape *tape = ct_tape_new();
    ct_tensor *t = ct_tape_tensor_from(tape, CT_SHAPE(5, 2), z);
    ct_tape_requires_grad(tape, t);
    ct_backward(tape, ct_cross_entropy(tape, t, CT_LABELS(y, 5), CT_CE()));
    ct_tensor *host = ct_tensor_new(CT_SHAPE(5, 2));
    memcpy(host->data, z, sizeof z);
    const ct_logit_stats s = ct_logit_stats_compute(host, CT_LABELS(y, 5));
    long zero = 0;
    for (int i = 0; i < 5; i++) zero += t->grad[i * 2 + 1] == 0;
    const double want = sizeof(ct_real) == 4 ? s.collapsed_f32 : s.collapsed_f64;
    CHECK_NEAR((double)zero / 5, want, 0, 0);
    ct_tensor_free(host);
    ct_tape_free(tape);
}

CT_TEST(analysis, logit_stats_of_nonfinite_and_empty_logits_are_nan) {
    ct_tensor *t = ct_tensor_new(CT_SHAPE(3, 2));
    const int y[3] = {0, 1, 0};
    t->data[2] = NAN;
    ct_logit_stats s = ct_logit_stats_compute(t, CT_LABELS(y, 3));
    CHECK(s.n == 3 && s.nonfinite == 1);
    CHECK(isnan(s.margin_mean) && isnan(s.margin_median) && isnan(s.collapsed_f32) && isnan(s.collapsed_f64));
    ct_tensor *empty = ct_tensor_new(CT_SHAPE(0, 2));
    s = ct_logit_stats_compute(empty, CT_LABELS(y, 0));
    CHECK(s.n == 0 && isnan(s.margin_mean) && isnan(s.collapsed_f32));
    ct_tensor_free(t), ct_tensor_free(empty);
}

static void logit_stats_one_class(void *arg) {
    (void)arg;
    const int y[2] = {0, 0};
    ct_logit_stats_compute(ct_tensor_new(CT_SHAPE(2, 1)), CT_LABELS(y, 2));
}

CT_TEST(analysis, logit_stats_need_two_classes) {
    char got[512];
    CHECK(ct_test_expect_fatal(logit_stats_one_class, NULL, "logits have 1 classes; at least 2 are needed", got,
                               sizeof got),
          "got: %s", got);
}
