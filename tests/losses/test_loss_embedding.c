/* tests/losses/test_loss_embedding.c — the embedding losses (losses/embedding_similarity.c,
 * embedding_distance.c): SupCon / NT-Xent, Circle (pair and class forms), triplet (explicit, batch
 * all, batch hard) and center loss, against PyTorch (tests/reference/loss_embedding_ref.h, from
 * gen_loss_embedding.py), their edge cases (anchors without positives, batches without pairs),
 * extreme inputs, errors, and gradient checks (group gradcheck, float64 build). */
#include "../test.h"
#include "../reference/loss_embedding_ref.h"

#include <string.h>

/* float32 keeps ~7 digits; SupCon's 1/τ = 14 and Circle's γ up to 256 scale the rounding of the
 * cosines, so the float32 build compares with a looser tolerance. */
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

/* The loss of one reference case on `tape`, its inputs in x[0..n_inputs-1]. */
static ct_tensor *run_ref_case(ct_tape *tape, const emb_ref_case *rc, ct_tensor **x) {
    const ct_reduction red = (ct_reduction)rc->reduction;
    const ct_labels labels = CT_LABELS(rc->labels, rc->labels ? rc->n : 0);
    switch (rc->kind) {
    case EMB_SUPCON:
        x[0] = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->v, rc->d), rc->x[0]);
        return ct_supcon_loss(tape, x[0], labels, CT_SUPCON(.reduction = red, .temperature = rc->p1,
                                                            .base_temperature = rc->p2, .normalize = rc->flag1));
    case EMB_CIRCLE:
        x[0] = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->d), rc->x[0]);
        return ct_circle_loss(tape, x[0], labels, CT_CIRCLE(.reduction = red, .m = rc->p1, .gamma = rc->p2));
    case EMB_CIRCLE_CLASS:
        x[0] = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->d), rc->x[0]);
        x[1] = ct_test_leaf(tape, CT_SHAPE(rc->c, rc->d), rc->x[1]);
        return ct_circle_class_loss(tape, x[0], x[1], labels,
                                    CT_CIRCLE(.reduction = red, .m = rc->p1, .gamma = rc->p2));
    case EMB_TRIPLET:
        for (int k = 0; k < 3; k++) x[k] = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->d), rc->x[k]);
        return ct_triplet_margin_loss(tape, x[0], x[1], x[2],
                                      CT_TRIPLET(.reduction = red, .margin = rc->p1, .eps = rc->p2,
                                                 .distance = rc->flag1 ? CT_DISTANCE_COSINE : CT_DISTANCE_L2,
                                                 .swap = rc->flag2));
    case EMB_TRIPLET_MINED:
        x[0] = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->d), rc->x[0]);
        return ct_triplet_mined_loss(tape, x[0], labels,
                                     CT_TRIPLET(.reduction = red, .margin = rc->p1, .eps = rc->p2,
                                                .distance = rc->flag1 ? CT_DISTANCE_COSINE : CT_DISTANCE_L2,
                                                .mining = rc->flag2 ? CT_MINING_BATCH_HARD : CT_MINING_BATCH_ALL));
    default:
        x[0] = ct_test_leaf(tape, CT_SHAPE(rc->n, rc->d), rc->x[0]);
        x[1] = ct_test_leaf(tape, CT_SHAPE(rc->c, rc->d), rc->x[1]);
        return ct_center_loss(tape, x[0], x[1], labels, CT_CENTER(.reduction = red, .lambda = rc->p1));
    }
}

/* ---- reference values and gradients ---------------------------------------------------------- */
CT_TEST(losses, embedding_losses_match_pytorch) {
    ct_tape *tape = ct_tape_new();
    double worst_loss = 0, worst_grad = 0;
    for (int k = 0; k < EMB_REF_COUNT; k++) {
        const emb_ref_case *rc = &emb_ref_cases[k];
        ct_tape_reset(tape);
        ct_tensor *x[3] = {NULL, NULL, NULL};
        ct_tensor *loss = run_ref_case(tape, rc, x);
        CHECK((int)loss->size == rc->n_loss, "%s: %zu loss values, PyTorch %d", rc->name, loss->size, rc->n_loss);
        CHECK(rc->reduction == 2 || loss->ndim == 0, "%s: mean/sum must be a scalar of shape ()", rc->name);
        for (int i = 0; i < rc->n_loss; i++) {
            CHECK(near(loss->data[i], rc->loss[i], REF_ATOL, REF_RTOL), "%s: loss[%d] = %.10g, PyTorch %.10g",
                  rc->name, i, (double)loss->data[i], rc->loss[i]);
            worst_loss = fmax(worst_loss, fabs(loss->data[i] - rc->loss[i]) / fmax(fabs(rc->loss[i]), 1e-3));
        }
        ct_real cot[64];
        for (int i = 0; i < rc->n_loss; i++) cot[i] = (ct_real)rc->cotangent[i];
        ct_backward_with(tape, loss, cot);
        for (int j = 0; j < rc->n_inputs; j++) {
            double scale = 0; /* the gradient's largest element: errors are relative to it */
            for (size_t i = 0; i < x[j]->size; i++) scale = fmax(scale, fabs(rc->grad[j][i]));
            for (size_t i = 0; i < x[j]->size; i++) {
                const double g = x[j]->grad ? x[j]->grad[i] : 0;
                CHECK(near(g, rc->grad[j][i], REF_ATOL + REF_RTOL * scale, REF_RTOL),
                      "%s: d input %d [%zu] = %.10g, PyTorch %.10g", rc->name, j, i, g, rc->grad[j][i]);
                worst_grad = fmax(worst_grad, fabs(g - rc->grad[j][i]) / fmax(scale, 1e-12));
            }
        }
    }
    ct_tape_free(tape);
    ct_test_note("%d cases, worst rel err: loss %.1e, gradient %.1e", EMB_REF_COUNT, worst_loss, worst_grad);
}

/* ---- edge cases -------------------------------------------------------------------------------- */
static void fill_normal(ct_tensor *t, uint64_t seed, double scale) {
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)(scale * ct_rng_normal(&rng, 0, 1));
}

static ct_tensor *random_leaf(ct_tape *tape, ct_shape shape, uint64_t seed, double scale) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    fill_normal(t, seed, scale);
    ct_tape_requires_grad(tape, t);
    return t;
}

/* value 0 and every gradient element exactly 0 */
static int zero_with_zero_grad(ct_tape *tape, ct_tensor *loss, ct_tensor *x) {
    if (loss->size != 1 || loss->data[0] != 0) return 0;
    ct_backward(tape, loss);
    for (size_t i = 0; i < x->size; i++)
        if (!x->grad || x->grad[i] != 0) return 0;
    return 1;
}

CT_TEST(losses, supcon_no_positive_pair_is_zero_with_zero_gradient) {
    ct_tape *tape = ct_tape_new();
    const int distinct[] = {3, 1, 4, 0, 2};
    ct_tensor *f = random_leaf(tape, CT_SHAPE(5, 1, 4), 1, 1);
    CHECK(zero_with_zero_grad(tape, ct_supcon_loss(tape, f, CT_LABELS(distinct, 5), CT_SUPCON()), f),
          "V = 1 and all labels distinct: no anchor has a positive");
    ct_tape_reset(tape);
    f = random_leaf(tape, CT_SHAPE(5, 4), 2, 1);
    CHECK(zero_with_zero_grad(tape, ct_supcon_loss(tape, f, CT_LABELS(NULL, 0), CT_SUPCON()), f),
          "NT-Xent with one view: no positive");
    ct_tape_reset(tape);
    f = random_leaf(tape, CT_SHAPE(1, 1, 3), 3, 1);
    CHECK(zero_with_zero_grad(tape, ct_supcon_loss(tape, f, CT_LABELS(distinct, 1), CT_SUPCON()), f),
          "a single anchor");
    ct_tape_reset(tape);
    f = random_leaf(tape, CT_SHAPE(5, 1, 4), 4, 1);
    ct_tensor *none = ct_supcon_loss(tape, f, CT_LABELS(distinct, 5), CT_SUPCON(.reduction = CT_REDUCTION_NONE));
    CHECK(none->ndim == 2 && none->shape[0] == 5 && none->shape[1] == 1);
    for (int i = 0; i < 5; i++) CHECK(none->data[i] == 0, "none[%d] = %g", i, (double)none->data[i]);
    ct_tape_free(tape);
}

/* Anchors without a positive are left out of the mean: the loss equals the mean of the others'. */
CT_TEST(losses, supcon_anchor_without_positive_left_out_of_mean) {
    ct_tape *tape = ct_tape_new();
    const int y[] = {0, 1, 0, 2, 1, 0}; /* sample 3 is alone in class 2 */
    ct_tensor *f = random_leaf(tape, CT_SHAPE(6, 1, 4), 5, 1);
    ct_tensor *none = ct_supcon_loss(tape, f, CT_LABELS(y, 6), CT_SUPCON(.reduction = CT_REDUCTION_NONE));
    ct_tensor *mean = ct_supcon_loss(tape, f, CT_LABELS(y, 6), CT_SUPCON());
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += none->data[i];
    CHECK(none->data[3] == 0, "the lonely anchor's loss is %g", (double)none->data[3]);
    CHECK_NEAR(mean->data[0], sum / 5, 1e-6, 1e-6);
    ct_tape_free(tape);
}

CT_TEST(losses, circle_without_negatives_is_zero_with_zero_gradient) {
    ct_tape *tape = ct_tape_new();
    const int same[] = {2, 2, 2, 2};
    ct_tensor *x = random_leaf(tape, CT_SHAPE(4, 3), 6, 1);
    CHECK(zero_with_zero_grad(tape, ct_circle_loss(tape, x, CT_LABELS(same, 4), CT_CIRCLE()), x),
          "one class only: no anchor has a negative");
    ct_tape_reset(tape);
    const int distinct[] = {0, 1, 2, 3};
    x = random_leaf(tape, CT_SHAPE(4, 3), 7, 1);
    CHECK(zero_with_zero_grad(tape, ct_circle_loss(tape, x, CT_LABELS(distinct, 4), CT_CIRCLE()), x),
          "all classes distinct: no anchor has a positive");
    ct_tape_free(tape);
}

CT_TEST(losses, triplet_mined_without_triplets_is_zero_with_zero_gradient) {
    ct_tape *tape = ct_tape_new();
    const int distinct[] = {0, 1, 2, 3};
    for (int hard = 0; hard < 2; hard++) {
        ct_tape_reset(tape);
        ct_tensor *x = random_leaf(tape, CT_SHAPE(4, 3), 8, 1);
        ct_triplet_opts o = CT_TRIPLET(.mining = hard ? CT_MINING_BATCH_HARD : CT_MINING_BATCH_ALL);
        CHECK(zero_with_zero_grad(tape, ct_triplet_mined_loss(tape, x, CT_LABELS(distinct, 4), o), x),
              "%s: no positive pair", hard ? "batch hard" : "batch all");
    }
    /* well separated classes: every triplet satisfies the margin, batch all's mean is 0, not 0/0 */
    ct_tape_reset(tape);
    const double far[] = {0, 0, 0.1, 0, 10, 10, 10, 10.1};
    const int y[] = {0, 0, 1, 1};
    ct_tensor *x = ct_test_leaf(tape, CT_SHAPE(4, 2), far);
    CHECK(zero_with_zero_grad(tape, ct_triplet_mined_loss(tape, x, CT_LABELS(y, 4), CT_TRIPLET()), x),
          "no triplet violates the margin");
    ct_tape_free(tape);
}

/* ---- extreme inputs ------------------------------------------------------------------------------ */
static int all_finite(const ct_tensor *t, int grad) {
    const ct_real *v = grad ? t->grad : t->data;
    if (!v) return 1; /* no gradient reached it (an unused input) */
    for (size_t i = 0; i < t->size; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* One loss of every kind on x (N, D), labels y; proxies/centres w (C, D). */
static ct_tensor *loss_of_kind(ct_tape *tape, int kind, ct_tensor *x, ct_tensor *w, const int *y, int n) {
    ct_labels l = CT_LABELS(y, n);
    switch (kind) {
    case 0: return ct_supcon_loss(tape, x, l, CT_SUPCON());
    case 1: return ct_supcon_loss(tape, x, l, CT_SUPCON(.normalize = 0));
    case 2: return ct_circle_loss(tape, x, l, CT_CIRCLE(.m = 0.25, .gamma = 256));
    case 3: return ct_circle_class_loss(tape, x, w, l, CT_CIRCLE());
    case 4: return ct_triplet_mined_loss(tape, x, l, CT_TRIPLET());
    case 5: return ct_triplet_mined_loss(tape, x, l, CT_TRIPLET(.mining = CT_MINING_BATCH_HARD));
    case 6: return ct_triplet_mined_loss(tape, x, l, CT_TRIPLET(.distance = CT_DISTANCE_COSINE));
    default: return ct_center_loss(tape, x, w, l, CT_CENTER());
    }
}
static const char *const kind_names[] = {"supcon", "supcon (no normalize)", "circle (256)", "circle class",
                                         "batch all", "batch hard", "batch all cosine", "center"};

CT_TEST(losses, embedding_losses_finite_on_extreme_inputs) {
    const int y[] = {0, 1, 0, 1, 2, 2};
    const double scales[] = {1e4, 1e-4};
    for (int kind = 0; kind < 8; kind++)
        for (int s = 0; s < 3; s++) {
            ct_tape *tape = ct_tape_new();
            ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(6, 4));
            if (s < 2) fill_normal(x, 9, scales[s]);
            else
                for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)(1 + (i % 4)); /* all rows equal */
            ct_tape_requires_grad(tape, x);
            ct_tensor *w = random_leaf(tape, CT_SHAPE(3, 4), 10, 1);
            ct_tensor *loss = loss_of_kind(tape, kind, x, w, y, 6);
            CHECK(all_finite(loss, 0), "%s, %s: loss %g", kind_names[kind],
                  s < 2 ? (s ? "scale 1e-4" : "scale 1e4") : "equal rows", (double)loss->data[0]);
            ct_backward(tape, loss);
            CHECK(all_finite(x, 1) && all_finite(w, 1), "%s, %s: non-finite gradient", kind_names[kind],
                  s < 2 ? (s ? "scale 1e-4" : "scale 1e4") : "equal rows");
            ct_tape_free(tape);
        }
}

/* Cosine losses do not see the scale of the features (up to 1e4 both ways). */
CT_TEST(losses, cosine_losses_are_scale_invariant) {
    const int y[] = {0, 1, 0, 1, 2, 2};
    for (int kind = 0; kind < 4; kind++) {
        if (kind == 1) continue; /* SupCon without normalisation sees the scale */
        double value[3];
        const double scales[] = {1, 1e4, 1e-4};
        for (int s = 0; s < 3; s++) {
            ct_tape *tape = ct_tape_new();
            ct_tensor *x = random_leaf(tape, CT_SHAPE(6, 4), 11, scales[s]);
            ct_tensor *w = random_leaf(tape, CT_SHAPE(3, 4), 12, 1);
            value[s] = loss_of_kind(tape, kind, x, w, y, 6)->data[0];
            ct_tape_free(tape);
        }
        CHECK_NEAR(value[1], value[0], 1e-4, 1e-4);
        CHECK_NEAR(value[2], value[0], 1e-4, 1e-4);
    }
}

/* ---- errors ---------------------------------------------------------------------------------------- */
typedef struct {
    int which;
} bad_call;

static void bad_body(void *arg) {
    const bad_call *b = arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(4, 3));
    fill_normal(x, 13, 1);
    ct_tensor *w = ct_tape_zeros(tape, CT_SHAPE(3, 3));
    int y[4] = {0, 1, 0, 2};
    switch (b->which) {
    case 0: ct_supcon_loss(tape, x, CT_LABELS(y, 3), CT_SUPCON()); break;
    case 1: ct_supcon_loss(tape, ct_tape_zeros(tape, CT_SHAPE(0, 3)), CT_LABELS(y, 0), CT_SUPCON()); break;
    case 2: ct_supcon_loss(tape, x, CT_LABELS(y, 4), CT_SUPCON(.temperature = 0)); break;
    case 3: ct_supcon_loss(tape, ct_tape_zeros(tape, CT_SHAPE(2, 2, 2, 2)), CT_LABELS(y, 2), CT_SUPCON()); break;
    case 4: ct_circle_loss(tape, x, CT_LABELS(y, 4), CT_CIRCLE(.m = 1.5)); break;
    case 5: ct_circle_loss(tape, x, CT_LABELS(y, 4), CT_CIRCLE(.gamma = -1)); break;
    case 6: ct_circle_loss(tape, x, CT_LABELS(NULL, 4), CT_CIRCLE()); break;
    case 7: y[2] = 3; ct_circle_class_loss(tape, x, w, CT_LABELS(y, 4), CT_CIRCLE()); break;
    case 8: ct_triplet_margin_loss(tape, x, x, w, CT_TRIPLET()); break;
    case 9: ct_triplet_mined_loss(tape, x, CT_LABELS(y, 5), CT_TRIPLET(.margin = -1)); break;
    case 10: y[1] = -1; ct_center_loss(tape, x, w, CT_LABELS(y, 4), CT_CENTER()); break;
    case 11: ct_center_loss(tape, x, ct_tape_zeros(tape, CT_SHAPE(3, 2)), CT_LABELS(y, 4), CT_CENTER()); break;
    default: ct_supcon_loss(tape, x, CT_LABELS(y, 4), CT_SUPCON(.base_temperature = -0.07)); break;
    }
}

CT_TEST(losses, embedding_losses_fatal_errors) {
    static const char *const expect[][3] = {
        {"ct_supcon_loss", "3 labels for 4 samples", ""},
        {"ct_supcon_loss", "features (0, 3)", "are empty"},
        {"ct_supcon_loss", "temperature", "= 0 must be > 0"},
        {"ct_supcon_loss", "(2, 2, 2, 2)", "(N, V, D)"},
        {"ct_circle_loss", "m = 1.5", "outside [0, 1]"},
        {"ct_circle_loss", "gamma = -1", "> 0"},
        {"ct_circle_loss", "labels are NULL", "4 samples"},
        {"ct_circle_class_loss", "label 3 of sample 2", "C = 3"},
        {"ct_triplet_margin_loss", "negative (3, 3)", "anchor (4, 3)"},
        {"ct_triplet_mined_loss", "margin -1", ">= 0"},
        {"ct_center_loss", "label -1 of sample 1", "C = 3"},
        {"ct_center_loss", "(3, 2)", "D = 3"},
        {"ct_supcon_loss", "base_temperature", "-0.07"},
    };
    char got[1024];
    for (int i = 0; i < (int)(sizeof expect / sizeof expect[0]); i++) {
        bad_call b = {i};
        CHECK(ct_test_expect_fatal(bad_body, &b, expect[i][0], got, sizeof got), "case %d: got: %s", i, got);
        CHECK(strstr(got, expect[i][1]) && strstr(got, expect[i][2]), "case %d: got: %s", i, got);
    }
}

/* ---- gradient checks (float64 build) ------------------------------------------------------------ */
typedef struct {
    int kind;          /* 0 supcon, 1 circle, 2 circle class, 3 triplet, 4 mined, 5 center */
    const int *labels; /* or NULL */
    int n;
    ct_supcon_opts supcon;
    ct_circle_opts circle;
    ct_triplet_opts triplet;
    ct_center_opts center;
} emb_check;

#ifdef CT_PRECISION_64
static ct_tensor *emb_check_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const emb_check *c = ctx;
    ct_labels l = CT_LABELS(c->labels, c->labels ? c->n : 0);
    switch (c->kind) {
    case 0: return ct_supcon_loss(tape, in[0], l, c->supcon);
    case 1: return ct_circle_loss(tape, in[0], l, c->circle);
    case 2: return ct_circle_class_loss(tape, in[0], in[1], l, c->circle);
    case 3: return ct_triplet_margin_loss(tape, in[0], in[1], in[2], c->triplet);
    case 4: return ct_triplet_mined_loss(tape, in[0], l, c->triplet);
    default: return ct_center_loss(tape, in[0], in[1], l, c->center);
    }
}
#endif

/* Inputs: shape0 for in[0]; in[1] (and in[2] for triplets) of shape1. */
static void emb_gradcheck(emb_check c, ct_shape shape0, ct_shape shape1, uint64_t seed) {
#ifndef CT_PRECISION_64
    (void)c, (void)shape0, (void)shape1, (void)seed;
    CT_SKIP("gradient checks run in the float64 build");
#else
    const int n_in = c.kind == 3 ? 3 : (c.kind == 2 || c.kind == 5) ? 2 : 1;
    ct_tensor *in[3];
    for (int k = 0; k < n_in; k++) {
        in[k] = ct_tensor_new_grad(k == 0 ? shape0 : shape1);
        fill_normal(in[k], seed + (uint64_t)k, 0.8);
    }
    ct_gradcheck_result r = ct_gradcheck(emb_check_fn, &c, in, n_in, CT_GRADCHECK());
    char msg[256];
    ct_gradcheck_describe(&r, msg, sizeof msg);
    for (int k = 0; k < n_in; k++) ct_tensor_free(in[k]);
    CHECK(r.passed && r.checked > 0, "%s", msg);
    ct_test_note("%s", msg);
#endif
}

static const int y6[] = {0, 1, 0, 2, 1, 3};   /* classes 2, 3: one sample each */
static const int y8[] = {0, 0, 1, 1, 2, 0, 1, 3};
static const int same4[] = {5, 5, 5, 5};
#define NONE CT_REDUCTION_NONE
#define SUM CT_REDUCTION_SUM

CT_TEST(gradcheck, supcon_v2_singleton_class) {
    emb_gradcheck((emb_check){0, y6, 6, .supcon = CT_SUPCON()}, CT_SHAPE(6, 2, 4), CT_SHAPE(1), 21);
}
CT_TEST(gradcheck, supcon_v1_anchor_without_positive_none) {
    emb_gradcheck((emb_check){0, y6, 6, .supcon = CT_SUPCON(.reduction = NONE)}, CT_SHAPE(6, 1, 4), CT_SHAPE(1), 22);
}
CT_TEST(gradcheck, supcon_v1_2d_sum) {
    emb_gradcheck((emb_check){0, y6, 6, .supcon = CT_SUPCON(.reduction = SUM, .temperature = 0.5)}, CT_SHAPE(6, 4),
                  CT_SHAPE(1), 23);
}
CT_TEST(gradcheck, supcon_no_positive_pair) {
    static const int distinct[] = {0, 1, 2, 3};
    emb_gradcheck((emb_check){0, distinct, 4, .supcon = CT_SUPCON()}, CT_SHAPE(4, 1, 3), CT_SHAPE(1), 24);
}
CT_TEST(gradcheck, supcon_unnormalized) {
    emb_gradcheck((emb_check){0, y6, 6, .supcon = CT_SUPCON(.normalize = 0, .temperature = 1, .base_temperature = 1)},
                  CT_SHAPE(6, 2, 3), CT_SHAPE(1), 25);
}
CT_TEST(gradcheck, ntxent_v2) {
    emb_gradcheck((emb_check){0, NULL, 0, .supcon = CT_SUPCON(.temperature = 0.5)}, CT_SHAPE(4, 2, 5), CT_SHAPE(1), 26);
}
CT_TEST(gradcheck, ntxent_v3_none) {
    emb_gradcheck((emb_check){0, NULL, 0, .supcon = CT_SUPCON(.reduction = NONE)}, CT_SHAPE(3, 3, 4), CT_SHAPE(1), 27);
}
/* Circle's detached α make its gradient differ from the derivative of its value, so the finite-
 * difference checks run with detach_weights = 0; the detached gradient is checked against
 * PyTorch's (embedding_losses_match_pytorch) and against this one below. */
CT_TEST(gradcheck, circle_pair) {
    emb_gradcheck((emb_check){1, y8, 8, .circle = CT_CIRCLE(.gamma = 4, .detach_weights = 0)}, CT_SHAPE(8, 5),
                  CT_SHAPE(1), 31);
}
CT_TEST(gradcheck, circle_pair_default_none) {
    emb_gradcheck((emb_check){1, y8, 8, .circle = CT_CIRCLE(.reduction = NONE, .detach_weights = 0)},
                  CT_SHAPE(8, 5), CT_SHAPE(1), 32);
}
CT_TEST(gradcheck, circle_pair_no_negative) {
    emb_gradcheck((emb_check){1, same4, 4, .circle = CT_CIRCLE(.detach_weights = 0)}, CT_SHAPE(4, 3), CT_SHAPE(1), 33);
}
CT_TEST(gradcheck, circle_class) {
    emb_gradcheck((emb_check){2, y6, 6, .circle = CT_CIRCLE(.gamma = 8, .detach_weights = 0)}, CT_SHAPE(6, 5),
                  CT_SHAPE(4, 5), 34);
}
CT_TEST(gradcheck, circle_class_sum) {
    emb_gradcheck((emb_check){2, y6, 6, .circle = CT_CIRCLE(.reduction = SUM, .m = 0.25, .gamma = 32,
                                                               .detach_weights = 0)},
                  CT_SHAPE(6, 5),
                  CT_SHAPE(4, 5), 35);
}
CT_TEST(gradcheck, triplet_l2) {
    emb_gradcheck((emb_check){3, .triplet = CT_TRIPLET(.reduction = NONE)}, CT_SHAPE(6, 4), CT_SHAPE(6, 4), 41);
}
CT_TEST(gradcheck, triplet_l2_swap) {
    emb_gradcheck((emb_check){3, .triplet = CT_TRIPLET(.swap = 1)}, CT_SHAPE(6, 4), CT_SHAPE(6, 4), 42);
}
CT_TEST(gradcheck, triplet_cosine) {
    emb_gradcheck((emb_check){3, .triplet = CT_TRIPLET(.distance = CT_DISTANCE_COSINE, .margin = 0.5)}, CT_SHAPE(6, 4),
                  CT_SHAPE(6, 4), 43);
}
CT_TEST(gradcheck, triplet_batch_all) {
    emb_gradcheck((emb_check){4, y8, 8, .triplet = CT_TRIPLET()}, CT_SHAPE(8, 3), CT_SHAPE(1), 44);
}
CT_TEST(gradcheck, triplet_batch_all_cosine_none) {
    emb_gradcheck((emb_check){4, y8, 8, .triplet = CT_TRIPLET(.reduction = NONE, .distance = CT_DISTANCE_COSINE,
                                                               .margin = 0.3)},
                  CT_SHAPE(8, 3), CT_SHAPE(1), 45);
}
CT_TEST(gradcheck, triplet_batch_hard) {
    emb_gradcheck((emb_check){4, y8, 8, .triplet = CT_TRIPLET(.mining = CT_MINING_BATCH_HARD)}, CT_SHAPE(8, 3),
                  CT_SHAPE(1), 46);
}
CT_TEST(gradcheck, triplet_batch_hard_cosine_none) {
    emb_gradcheck((emb_check){4, y8, 8, .triplet = CT_TRIPLET(.reduction = NONE, .mining = CT_MINING_BATCH_HARD,
                                                               .distance = CT_DISTANCE_COSINE, .margin = 0.3)},
                  CT_SHAPE(8, 3), CT_SHAPE(1), 47);
}
CT_TEST(gradcheck, center_loss) {
    emb_gradcheck((emb_check){5, y6, 6, .center = CT_CENTER(.lambda = 0.5)}, CT_SHAPE(6, 3), CT_SHAPE(4, 3), 51);
}
CT_TEST(gradcheck, center_loss_none) {
    emb_gradcheck((emb_check){5, y6, 6, .center = CT_CENTER(.reduction = NONE)}, CT_SHAPE(6, 3), CT_SHAPE(4, 3), 52);
}

/* ---- by name (the registry) ------------------------------------------------------------------ */
CT_TEST(losses, embedding_losses_by_name_match_the_functions) {
    const int y[] = {0, 1, 0, 1, 2, 2};
    static const char *const specs[] = {"supcon:temperature=0.1", "ntxent", "circle:m=0.25,gamma=256",
                                        "triplet:mining=hard,distance=cosine,margin=0.3", "triplet"};
    ct_tape *tape = ct_tape_new();
    for (int k = 0; k < 5; k++) {
        ct_tape_reset(tape);
        ct_loss *l = ct_loss_parse(specs[k]);
        CHECK(l, "%s: %s", specs[k], ct_last_error());
        ct_tensor *x = random_leaf(tape, k == 1 ? CT_SHAPE(3, 2, 4) : CT_SHAPE(6, 4), 60 + (uint64_t)k, 1);
        ct_labels labels = CT_LABELS(y, k == 1 ? 3 : 6);
        const double got = ct_loss_apply(tape, l, x, labels)->data[0];
        ct_loss_free(l);
        ct_tensor *want;
        switch (k) {
        case 0: want = ct_supcon_loss(tape, x, labels, CT_SUPCON(.temperature = 0.1)); break;
        case 1: want = ct_supcon_loss(tape, x, CT_LABELS(NULL, 0), CT_SUPCON(.temperature = 0.5,
                                                                           .base_temperature = 0.5)); break;
        case 2: want = ct_circle_loss(tape, x, labels, CT_CIRCLE(.m = 0.25, .gamma = 256)); break;
        case 3: want = ct_triplet_mined_loss(tape, x, labels, CT_TRIPLET(.mining = CT_MINING_BATCH_HARD,
                                                 .distance = CT_DISTANCE_COSINE, .margin = 0.3)); break;
        default: want = ct_triplet_mined_loss(tape, x, labels, CT_TRIPLET()); break;
        }
        CHECK(got == want->data[0], "%s: %g by name, %g by function", specs[k], got, (double)want->data[0]);
    }
    ct_tape_free(tape);
}

CT_TEST(losses, embedding_losses_by_name_reject_bad_values) {
    static const char *const bad[][2] = {
        {"supcon:temperature=0", "temperature"}, {"circle:m=1.5", "m=1.5"}, {"circle:gamma=-1", "gamma"},
        {"triplet:mining=semi", "mining"},      {"triplet:margin=-1", "margin"}, {"center:lambda=-0.1", "lambda"},
        {"ntxent:normalize=2", "normalize"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        ct_loss *l = ct_loss_parse(bad[i][0]);
        CHECK(!l, "%s was accepted", bad[i][0]);
        CHECK(strstr(ct_last_error(), bad[i][1]), "%s: %s", bad[i][0], ct_last_error());
    }
}

/* circle_class and center keep learnable state in a model: bind creates it, the gradient lands on it. */
CT_TEST(losses, embedding_losses_bind_their_parameters) {
    const int y[] = {0, 1, 2, 1};
    static const char *const specs[] = {"circle_class", "center:lambda=1"};
    static const char *const param[] = {"head.proxies", "head.centers"};
    for (int k = 0; k < 2; k++) {
        ct_model *m = ct_model_new();
        ct_loss *l = ct_loss_parse(specs[k]);
        CHECK(l && ct_loss_bind(l, m, "head", 3, 5) == CT_OK, "%s: %s", specs[k], ct_last_error());
        ct_tensor *w = ct_model_find_param(m, param[k]);
        CHECK(w && w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 5, "%s: no (3, 5) parameter %s", specs[k],
              param[k]);
        ct_tape *tape = ct_tape_new();
        ct_tensor *x = random_leaf(tape, CT_SHAPE(4, 5), 70, 1);
        ct_backward(tape, ct_loss_apply(tape, l, x, CT_LABELS(y, 4)));
        double norm = 0;
        for (size_t i = 0; i < w->size; i++) norm += fabs(w->grad[i]);
        CHECK(norm > 0, "%s: no gradient reached %s", specs[k], param[k]);
        ct_tape_free(tape);
        ct_loss_free(l);
        ct_model_free(m);
    }
}

static void apply_unbound(void *arg) {
    (void)arg;
    ct_loss *l = ct_loss_parse("center");
    ct_tape *tape = ct_tape_new();
    const int y[] = {0, 1};
    ct_loss_apply(tape, l, ct_tape_zeros(tape, CT_SHAPE(2, 3)), CT_LABELS(y, 2));
}

CT_TEST(losses, embedding_losses_with_state_need_bind) {
    char got[1024];
    CHECK(ct_test_expect_fatal(apply_unbound, NULL, "ct_loss_bind", got, sizeof got) && strstr(got, "center"),
          "got: %s", got);
}
