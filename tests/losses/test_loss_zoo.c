/* tests/losses/test_loss_zoo.c — the classification / regression losses of the zoo
 * (losses/softmax_family.c, nll_stablemax.c, pointwise.c, cross_entropy.c): values and gradients
 * against PyTorch (tests/reference/loss_zoo_ref.h, from gen_loss_zoo.py), gradient checks of every
 * case (group gradcheck, float64 build), extreme logits through the registry, errors naming the
 * loss and the index. */
#include "../test.h"
#include "../reference/loss_zoo_ref.h"

#include <stdlib.h>
#include <string.h>

#ifdef CT_PRECISION_64
#define REF_RTOL 1e-9
#define REF_ATOL 1e-11
#else
#define REF_RTOL 2e-4
#define REF_ATOL 2e-5
#endif

static int near(double got, double want, double atol, double rtol) {
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static ct_tensor *tape_values(ct_tape *tape, int n, int c, const double *v) {
    ct_tensor *t = ct_tape_zeros(tape, CT_SHAPE(n, c));
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)v[i];
    return t;
}

/* The loss of a reference case applied to x (the case's input, or a perturbed copy). */
static ct_tensor *zoo_apply(ct_tape *tape, const zoo_ref_case *rc, ct_tensor *x) {
    const ct_reduction r = (ct_reduction)rc->reduction;
    const ct_labels y = CT_LABELS(rc->labels, rc->n);
    ct_real vec[64];
    for (int k = 0; k < rc->n_vec; k++) vec[k] = (ct_real)rc->vec[k];
    const ct_real *v = rc->n_vec ? vec : NULL;
    ct_tensor *other = rc->other ? tape_values(tape, rc->n, rc->c, rc->other) : NULL;
    const char *l = rc->loss;
    if (!strcmp(l, "nll")) return ct_nll_loss(tape, x, y, CT_NLL(.reduction = r, .weight = v));
    if (!strcmp(l, "bce")) return ct_bce_with_logits(tape, x, other, CT_BCE(.reduction = r, .pos_weight = v));
    if (!strcmp(l, "mse")) return ct_mse_loss(tape, x, other, CT_REGRESSION(.reduction = r));
    if (!strcmp(l, "l1")) return ct_l1_loss(tape, x, other, CT_REGRESSION(.reduction = r));
    if (!strcmp(l, "smooth_l1"))
        return ct_smooth_l1_loss(tape, x, other, CT_REGRESSION(.reduction = r, .beta = rc->p[0]));
    if (!strcmp(l, "huber")) return ct_huber_loss(tape, x, other, CT_REGRESSION(.reduction = r, .delta = rc->p[0]));
    if (!strcmp(l, "kl_div")) return ct_kl_div(tape, x, other, CT_KL_DIV(.reduction = r));
    if (!strcmp(l, "kl_div_log_target")) return ct_kl_div(tape, x, other, CT_KL_DIV(.reduction = r, .log_target = 1));
    if (!strcmp(l, "kd")) return ct_distillation_loss(tape, x, other, CT_KD(.reduction = r, .temperature = rc->p[0]));
    if (!strcmp(l, "focal"))
        return ct_focal_loss(tape, x, y, CT_FOCAL(.reduction = r, .gamma = rc->p[0], .alpha = rc->p[1],
                                                  .alpha_per_class = v));
    if (!strcmp(l, "sigmoid_focal"))
        return ct_sigmoid_focal_loss(tape, x, other, CT_SIGMOID_FOCAL(.reduction = r, .alpha = rc->p[0],
                                                                      .gamma = rc->p[1]));
    if (!strcmp(l, "poly1")) return ct_poly1_loss(tape, x, y, CT_POLY(.reduction = r, .epsilon = rc->p[0]));
    if (!strcmp(l, "poly_n"))
        return ct_poly_n_loss(tape, x, y, CT_POLY(.reduction = r, .epsilons = rc->vec, .n_epsilons = rc->n_vec));
    if (!strcmp(l, "poly1_focal"))
        return ct_poly1_focal_loss(tape, x, y, CT_POLY(.reduction = r, .epsilon = rc->p[0], .gamma = rc->p[1],
                                                       .alpha = rc->p[2]));
    if (!strcmp(l, "squentropy")) return ct_squentropy_loss(tape, x, y, CT_SQUENTROPY(.reduction = r));
    if (!strcmp(l, "comp_sum")) return ct_comp_sum_loss(tape, x, y, CT_COMP_SUM(.reduction = r, .tau = rc->p[0]));
    if (!strcmp(l, "nce_rce"))
        return ct_nce_rce_loss(tape, x, y, CT_NCE_RCE(.reduction = r, .alpha = rc->p[0], .beta = rc->p[1],
                                                      .log_zero = rc->p[2]));
    if (!strcmp(l, "stablemax")) return ct_stablemax_cross_entropy(tape, x, y, CT_STABLEMAX(.reduction = r));
    return NULL;
}

/* ---- values and gradients against PyTorch ------------------------------------------------------ */
static void check_against_pytorch(const char *family) {
    ct_tape *tape = ct_tape_new();
    int n_cases = 0;
    double worst = 0;
    for (int k = 0; k < ZOO_REF_COUNT; k++) {
        const zoo_ref_case *rc = &zoo_ref_cases[k];
        if (strncmp(rc->loss, family, strlen(family))) continue;
        n_cases++;
        ct_tape_reset(tape);
        ct_tensor *x = tape_values(tape, rc->n, rc->c, rc->input);
        ct_tape_requires_grad(tape, x);
        ct_tensor *loss = zoo_apply(tape, rc, x);
        CHECK(loss, "%s: unknown loss %s", rc->name, rc->loss);
        CHECK((int)loss->size == rc->n_out, "%s: %zu values, PyTorch %d", rc->name, loss->size, rc->n_out);
        CHECK(rc->n_out > 1 || loss->ndim == 0, "%s: a reduced loss has shape ()", rc->name);
        for (int i = 0; i < rc->n_out; i++) {
            CHECK(near(loss->data[i], rc->out[i], REF_ATOL, REF_RTOL), "%s: loss[%d] = %.10g, PyTorch %.10g",
                  rc->name, i, (double)loss->data[i], rc->out[i]);
            worst = fmax(worst, fabs(loss->data[i] - rc->out[i]) / fmax(fabs(rc->out[i]), 1e-3));
        }
        ct_real cot[64];
        for (int i = 0; i < rc->n_out; i++) cot[i] = (ct_real)rc->cotangent[i];
        ct_backward_with(tape, loss, cot);
        for (int i = 0; i < rc->n * rc->c; i++) {
            const double g = x->grad ? x->grad[i] : 0;
            CHECK(near(g, rc->grad[i], REF_ATOL, REF_RTOL), "%s: dinput[%d] = %.10g, PyTorch %.10g", rc->name, i,
                  g, rc->grad[i]);
        }
    }
    ct_tape_free(tape);
    CHECK(n_cases > 0, "no reference case for %s", family);
    ct_test_note("%d cases, worst rel err %.1e", n_cases, worst);
}

CT_TEST(loss_zoo, nll_matches_pytorch) { check_against_pytorch("nll"); }
CT_TEST(loss_zoo, bce_with_logits_matches_pytorch) { check_against_pytorch("bce"); }
CT_TEST(loss_zoo, mse_matches_pytorch) { check_against_pytorch("mse"); }
CT_TEST(loss_zoo, l1_matches_pytorch) { check_against_pytorch("l1"); }
CT_TEST(loss_zoo, smooth_l1_matches_pytorch) { check_against_pytorch("smooth_l1"); }
CT_TEST(loss_zoo, huber_matches_pytorch) { check_against_pytorch("huber"); }
CT_TEST(loss_zoo, kl_div_matches_pytorch) { check_against_pytorch("kl_div"); }
CT_TEST(loss_zoo, distillation_matches_torch) { check_against_pytorch("kd"); }
CT_TEST(loss_zoo, focal_matches_torch) { check_against_pytorch("focal"); }
CT_TEST(loss_zoo, sigmoid_focal_matches_torchvision) { check_against_pytorch("sigmoid_focal"); }
CT_TEST(loss_zoo, poly1_matches_torch) { check_against_pytorch("poly1"); }
CT_TEST(loss_zoo, poly_n_matches_torch) { check_against_pytorch("poly_n"); }
CT_TEST(loss_zoo, squentropy_matches_torch) { check_against_pytorch("squentropy"); }
CT_TEST(loss_zoo, comp_sum_matches_torch) { check_against_pytorch("comp_sum"); }
CT_TEST(loss_zoo, nce_rce_matches_torch) { check_against_pytorch("nce_rce"); }
CT_TEST(loss_zoo, stablemax_matches_torch) { check_against_pytorch("stablemax"); }

/* ---- gradient checks: every reference case (every loss in every mode), float64 -------------- */
static ct_tensor *zoo_check_fn(ct_tape *tape, ct_tensor *const *inputs, void *ctx) {
    return zoo_apply(tape, ctx, inputs[0]);
}

static void gradcheck_family(const char *family) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#endif
    int n_cases = 0;
    double worst = 0;
    for (int k = 0; k < ZOO_REF_COUNT; k++) {
        const zoo_ref_case *rc = &zoo_ref_cases[k];
        if (strncmp(rc->loss, family, strlen(family)) || strstr(rc->name, "extreme")) continue;
        ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(rc->n, rc->c));
        for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)rc->input[i];
        ct_gradcheck_result r = ct_gradcheck(zoo_check_fn, (void *)rc, &x, 1, CT_GRADCHECK());
        ct_tensor_free(x);
        char msg[256];
        ct_gradcheck_describe(&r, msg, sizeof msg);
        CHECK(r.passed && (int)r.checked == rc->n * rc->c, "%s: %s", rc->name, msg);
        worst = fmax(worst, r.max_abs_err);
        n_cases++;
    }
    CHECK(n_cases > 0);
    ct_test_note("%d cases, worst abs err %.1e", n_cases, worst);
}

CT_TEST(gradcheck, loss_zoo_nll) { gradcheck_family("nll"); }
CT_TEST(gradcheck, loss_zoo_bce_with_logits) { gradcheck_family("bce"); }
CT_TEST(gradcheck, loss_zoo_mse) { gradcheck_family("mse"); }
CT_TEST(gradcheck, loss_zoo_l1) { gradcheck_family("l1"); }
CT_TEST(gradcheck, loss_zoo_smooth_l1) { gradcheck_family("smooth_l1"); }
CT_TEST(gradcheck, loss_zoo_huber) { gradcheck_family("huber"); }
CT_TEST(gradcheck, loss_zoo_kl_div) { gradcheck_family("kl_div"); }
CT_TEST(gradcheck, loss_zoo_distillation) { gradcheck_family("kd"); }
CT_TEST(gradcheck, loss_zoo_focal) { gradcheck_family("focal"); }
CT_TEST(gradcheck, loss_zoo_sigmoid_focal) { gradcheck_family("sigmoid_focal"); }
CT_TEST(gradcheck, loss_zoo_poly1) { gradcheck_family("poly1"); }
CT_TEST(gradcheck, loss_zoo_poly_n) { gradcheck_family("poly_n"); }
CT_TEST(gradcheck, loss_zoo_squentropy) { gradcheck_family("squentropy"); }
CT_TEST(gradcheck, loss_zoo_comp_sum) { gradcheck_family("comp_sum"); }
CT_TEST(gradcheck, loss_zoo_nce_rce) { gradcheck_family("nce_rce"); }
CT_TEST(gradcheck, loss_zoo_stablemax) { gradcheck_family("stablemax"); }

/* ---- extreme logits through the registry: finite values and gradients --------------------------
 * Rows: one class at +1e4 against −1e4, all equal at 1e4, all equal at −1e4, one-hot-large with
 * the label on the small side, and ordinary values. comp_sum with τ < 1 is left out on purpose:
 * p_y^(τ−1) at p_y = e^(−2e4) is +inf, the true value overflowing (losses/README.md). */
CT_TEST(loss_zoo, extreme_logits_finite_for_every_registered_loss) {
    enum { N = 5, C = 4 };
    const double z0[N * C] = {1e4, -1e4, 0, 1,  1e4, 1e4, 1e4, 1e4, -1e4, -1e4, -1e4, -1e4,
                              -1e4, 1e4, -1e4, -1e4, 0.5, -2, 3, 0.25};
    const int y[N] = {1, 2, 0, 0, 3};
    int n_losses = 0;
    for (int i = 0; i < ct_loss_count(); i++) {
        const char *name = ct_loss_name_at(i);
        char spec[128];
        snprintf(spec, sizeof spec, "%s", name);
        if (!strcmp(name, "comp_sum")) snprintf(spec, sizeof spec, "comp_sum:tau=1.5");
        ct_loss *l = ct_loss_parse(spec);
        CHECK(l, "%s", ct_last_error());
        if (!strcmp(name, "nll")) { /* nll takes log-probabilities: give it log_softmax of the rows */
            ct_loss_free(l);
            continue;
        }
        /* losses with learnable state (class proxies, centres) get them from a model first */
        ct_model *state = ct_model_new();
        CHECK(ct_loss_bind(l, state, name, C, C) == CT_OK, "%s: %s", spec, ct_last_error());
        for (int red = 0; red < 2; red++) {
            ct_tape *tape = ct_tape_new();
            ct_tensor *z = tape_values(tape, N, C, z0);
            ct_tape_requires_grad(tape, z);
            ct_tensor *loss = ct_loss_apply(tape, l, z, CT_LABELS(y, N));
            if (red == 1) loss = ct_sum_all(tape, loss);
            if (loss->ndim != 0) loss = ct_sum_all(tape, loss);
            int finite = isfinite(loss->data[0]);
            if (finite) ct_backward(tape, loss);
            for (int k = 0; finite && k < N * C; k++) finite = isfinite(z->grad[k]);
            double value = loss->data[0];
            ct_tape_free(tape);
            CHECK(finite, "%s: loss %g or a gradient is not finite", spec, value);
        }
        ct_loss_free(l);
        ct_model_free(state);
        n_losses++;
    }
    ct_test_note("%d losses", n_losses);
}

/* Every loss chosen by name computes what its function computes (same numbers, bit for bit). */
CT_TEST(loss_zoo, registry_matches_the_functions) {
    enum { N = 6, C = 4 };
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    double z0[N * C];
    for (int i = 0; i < N * C; i++) z0[i] = ct_rng_normal(&rng, 0, 2);
    const int y[N] = {0, 3, 2, 1, 1, 2};
    ct_real a4[C] = {0.25, 0.5, 1, 2};
    const double eps3[3] = {1, 0.5, -0.25};
    struct {
        const char *spec;
        int which;
    } cases[] = {{"focal:gamma=1.5,alpha=[0.25,0.5,1,2],reduction=sum", 0},
                 {"poly_n:epsilon=[1,0.5,-0.25]", 1},
                 {"gce:q=0.7", 2},
                 {"comp_sum:tau=0.5,reduction=none", 3},
                 {"sigmoid_focal:alpha=-1,gamma=0.5", 4},
                 {"bce_with_logits:pos_weight=[0.25,0.5,1,2]", 5},
                 {"nce_rce:alpha=10,beta=0.1", 6},
                 {"poly1_focal:epsilon=-1,gamma=3,alpha=0.25", 7},
                 {"huber:delta=0.5", 8}};
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        ct_loss *l = ct_loss_parse(cases[k].spec);
        CHECK(l, "%s", ct_last_error());
        ct_tape *tape = ct_tape_new();
        ct_tensor *z = tape_values(tape, N, C, z0);
        ct_tensor *a = ct_loss_apply(tape, l, z, CT_LABELS(y, N)), *b = NULL;
        const ct_labels lab = CT_LABELS(y, N);
        switch (cases[k].which) {
        case 0: b = ct_focal_loss(tape, z, lab, CT_FOCAL(.gamma = 1.5, .alpha_per_class = a4, .reduction = CT_REDUCTION_SUM)); break;
        case 1: b = ct_poly_n_loss(tape, z, lab, CT_POLY(.epsilons = eps3, .n_epsilons = 3)); break;
        case 2: b = ct_comp_sum_loss(tape, z, lab, CT_COMP_SUM(.tau = 1.7)); break;
        case 3: b = ct_comp_sum_loss(tape, z, lab, CT_COMP_SUM(.tau = 0.5, .reduction = CT_REDUCTION_NONE)); break;
        case 4: b = ct_sigmoid_focal_loss(tape, z, ct_one_hot(tape, y, N, C), CT_SIGMOID_FOCAL(.alpha = -1, .gamma = 0.5)); break;
        case 5: b = ct_bce_with_logits(tape, z, ct_one_hot(tape, y, N, C), CT_BCE(.pos_weight = a4)); break;
        case 6: b = ct_nce_rce_loss(tape, z, lab, CT_NCE_RCE(.alpha = 10, .beta = 0.1)); break;
        case 7: b = ct_poly1_focal_loss(tape, z, lab, CT_POLY(.epsilon = -1, .gamma = 3, .alpha = 0.25)); break;
        case 8: b = ct_huber_loss(tape, z, ct_one_hot(tape, y, N, C), CT_REGRESSION(.delta = 0.5)); break;
        }
        int same = a->size == b->size;
        for (size_t i = 0; same && i < a->size; i++) same = a->data[i] == b->data[i];
        ct_tape_free(tape);
        ct_loss_free(l);
        CHECK(same, "%s: registry and function differ", cases[k].spec);
    }
}

/* ---- errors: the loss and the index --------------------------------------------------------- */
typedef struct {
    const char *spec;
    int n_labels, bad_label;
    double bad_value;
} zoo_fatal_case;

static void zoo_fatal_body(void *arg) {
    const zoo_fatal_case *fc = arg;
    ct_loss *l = ct_loss_parse(fc->spec);
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(4, 3));
    for (int i = 0; i < 12; i++) z->data[i] = (ct_real)(0.1 * i);
    if (fc->bad_value != 0) z->data[7] = (ct_real)fc->bad_value; /* row 2, class 1 */
    int y[4] = {0, 1, 2, 1};
    if (fc->bad_label) y[3] = fc->bad_label;
    ct_loss_apply(tape, l, z, CT_LABELS(y, fc->n_labels));
}

/* nll reads one log-probability per row: a NaN there (row 2, label 1) makes the loss NaN (data, as
 * in PyTorch), one elsewhere is not read; a non-finite class weight (an option) is named. */
static void nll_picked_nan_body(void *arg) {
    const int weighted = *(const int *)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(300, 3));
    x->data[2 * 3 + 1] = weighted ? 0 : NAN;
    int y[300] = {0};
    y[2] = 1;
    ct_real w[3] = {1, INFINITY, 1};
    ct_tensor *loss = ct_nll_loss(tape, x, CT_LABELS(y, 300), CT_NLL(.weight = weighted ? w : NULL));
    if (!weighted && !isnan(loss->data[0])) abort();
}

CT_TEST(loss_zoo, nll_reads_a_nan_it_picks_and_names_a_bad_weight) {
    char got[1024];
    const int plain = 0, weighted = 1;
    CHECK(!ct_test_expect_fatal(nll_picked_nan_body, (void *)&plain, "", got, sizeof got), "got %s", got);
    CHECK(ct_test_expect_fatal(nll_picked_nan_body, (void *)&weighted, "weight[1] = inf is not finite", got,
                               sizeof got), "got %s", got);
}

CT_TEST(loss_zoo, errors_name_the_loss_and_the_index) {
    const char *label_losses[] = {"focal", "poly1", "poly_n", "poly1_focal", "squentropy", "comp_sum", "gce",
                                  "nce_rce", "stablemax", "nll", "cross_entropy"};
    char got[1024];
    for (int k = 0; k < (int)(sizeof label_losses / sizeof label_losses[0]); k++) {
        const char *s = label_losses[k];
        const char *named = strcmp(s, "gce") ? s : "comp_sum"; /* gce is comp_sum with τ = 1 + q */
        zoo_fatal_case bad_label = {s, 4, 7, 0}, bad_count = {s, 3, 0, 0}, bad_nan = {s, 4, 0, NAN},
                       bad_inf = {s, 4, 0, INFINITY};
        CHECK(ct_test_expect_fatal(zoo_fatal_body, &bad_label, "label 7 of sample 3", got, sizeof got) &&
                  strstr(got, named) && strstr(got, "C = 3"),
              "%s: got %s", s, got);
        CHECK(ct_test_expect_fatal(zoo_fatal_body, &bad_count, "3 labels", got, sizeof got) && strstr(got, named) &&
                  strstr(got, "N = 4"),
              "%s: got %s", s, got);
        /* a non-finite logit is data: no stop (tests/losses/test_loss_nonfinite.c checks the values) */
        CHECK(!ct_test_expect_fatal(zoo_fatal_body, &bad_nan, "", got, sizeof got), "%s: got %s", s, got);
        CHECK(!ct_test_expect_fatal(zoo_fatal_body, &bad_inf, "", got, sizeof got), "%s: got %s", s, got);
    }
    const char *target_losses[] = {"bce_with_logits", "mse", "l1", "smooth_l1", "huber", "sigmoid_focal"};
    for (int k = 0; k < (int)(sizeof target_losses / sizeof target_losses[0]); k++) {
        const char *s = target_losses[k];
        zoo_fatal_case bad_label = {s, 4, 7, 0}, bad_nan = {s, 4, 0, NAN};
        CHECK(ct_test_expect_fatal(zoo_fatal_body, &bad_label, "label 7 of sample 3", got, sizeof got) &&
                  strstr(got, s),
              "%s: got %s", s, got);
        CHECK(!ct_test_expect_fatal(zoo_fatal_body, &bad_nan, "", got, sizeof got), "%s: got %s", s, got);
    }
}

CT_TEST(loss_registry, zoo_ranges_are_enforced) {
    const char *bad[][2] = {{"focal:gamma=-1", "out of range [0, inf)"},
                            {"poly1:epsilon=-1.5", "out of range [-1, inf)"},
                            {"poly1_focal:epsilon=-2", "out of range [-1, inf)"},
                            {"comp_sum:tau=-0.5", "out of range [0, inf)"},
                            {"gce:q=1.5", "out of range [0, 1]"},
                            {"huber:delta=0", "out of range (0, inf)"},
                            {"nce_rce:log_zero=0", "out of range (-inf, 0)"},
                            {"sigmoid_focal:alpha=1.5", "out of range (-inf, 1]"},
                            {"focal:alpha=[1,-1]", "value 1 = -1 is out of range"},
                            {"kl_div", "unknown loss"}};
    for (int k = 0; k < (int)(sizeof bad / sizeof bad[0]); k++) {
        ct_loss *l = ct_loss_parse(bad[k][0]);
        if (l) ct_loss_free(l);
        CHECK(!l && strstr(ct_last_error(), bad[k][1]), "%s: got %s", bad[k][0], l ? "(parsed)" : ct_last_error());
    }
    ct_loss *ok = ct_loss_parse("poly1:epsilon=-1");
    CHECK(ok, "ε = −1 is allowed: %s", ct_last_error());
    ct_loss_free(ok);
}
