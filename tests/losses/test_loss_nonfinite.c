/* tests/losses/test_loss_nonfinite.c — losses at the edge of the floating-point range: large finite
 * logits give the correct (finite where representable) value and gradient. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* ---- squentropy with large logits ------------------------------------------------------------ */
/* ℓ_i = CE_i + Σ_{c≠y} z_c²/(C − 1) and its gradient g·(p_c − [c = y]) + g·2z_c/(C − 1)·[c ≠ y],
 * in double, mean over the rows (g = 1/N). */
static void squentropy_reference(const ct_real *z, const int *y, int N, int C, double *loss, double *grad) {
    double total = 0;
    for (int i = 0; i < N; i++) {
        const ct_real *zr = z + (size_t)i * C;
        double m = zr[0], s = 0, squares = 0;
        for (int c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
        for (int c = 0; c < C; c++) s += exp((double)zr[c] - m);
        for (int c = 0; c < C; c++) squares += c == y[i] ? 0 : (double)zr[c] * zr[c];
        total += (m - zr[y[i]]) + log(s) + squares / (C - 1);
        for (int c = 0; c < C; c++) {
            const double p = exp((double)zr[c] - m) / s;
            grad[(size_t)i * C + c] = (p - (c == y[i]) + (c == y[i] ? 0 : 2.0 * zr[c] / (C - 1))) / N;
        }
    }
    *loss = total / N;
}

CT_TEST(loss_nonfinite, squentropy_large_finite_logits_give_the_true_value_and_gradient) {
    const int Cs[2] = {10, 80}; /* short rows (blocks) and long rows */
    for (int t = 0; t < 2; t++) {
        const int N = 3, C = Cs[t];
        int y[3] = {2, 1, 4};
        ct_tape *tape = ct_tape_new();
        ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(N, C));
        for (size_t k = 0; k < z->size; k++) z->data[k] = (ct_real)((int)(k * 7 % 11) - 5) * (ct_real)0.25;
        /* row 0: two squares of 2.25e38 each, whose sum overflows float (the loss, ~5e37, does not);
         * row 1: the label's logit at −1e30 (CE ≈ 1e30, gradient −1/N there); row 2: at +1e30 */
        z->data[5] = (ct_real)1.5e19, z->data[7] = (ct_real)-1.5e19;
        z->data[(size_t)C + 1] = (ct_real)-1e30;
        z->data[2 * (size_t)C + 4] = (ct_real)1e30;
        ct_tape_requires_grad(tape, z);
        ct_tensor *loss = ct_squentropy_loss(tape, z, CT_LABELS(y, N), CT_SQUENTROPY());
        ct_backward(tape, loss);
        double want, *grad = malloc(z->size * sizeof *grad);
        squentropy_reference(z->data, y, N, C, &want, grad);
        CHECK(isfinite(want) && want < 3e38);
        CHECK_NEAR(loss->data[0], want, 0, 1e-6);
        for (size_t k = 0; k < z->size; k++)
            CHECK(fabs(z->grad[k] - grad[k]) <= 1e-6 * fabs(grad[k]) + 1e-6, "C = %d, grad[%zu] = %g, want %g", C,
                  k, (double)z->grad[k], grad[k]);
        free(grad);
        ct_tape_free(tape);
    }
}

/* A square that overflows the result too: the value is +inf as the composed ops give it (and as
 * PyTorch's float32), never inf − inf = NaN from the compensated sum, and the gradient stays finite. */
CT_TEST(loss_nonfinite, squentropy_overflowing_square_is_inf_not_nan) {
    const ct_reduction reductions[2] = {CT_REDUCTION_MEAN, CT_REDUCTION_SUM};
    for (int r = 0; r < 2; r++) {
        const int N = 4, C = 10;
        int y[4] = {1, 0, 3, 9};
        ct_tape *tape = ct_tape_new();
        ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(N, C));
        for (size_t k = 0; k < z->size; k++) z->data[k] = (ct_real)((int)(k % 5) - 2) * (ct_real)0.5;
        z->data[3] = (ct_real)1e30; /* row 0, not its label */
        ct_tape_requires_grad(tape, z);
        ct_tensor *loss = ct_squentropy_loss(tape, z, CT_LABELS(y, N), CT_SQUENTROPY(.reduction = reductions[r]));
        ct_backward(tape, loss);
        /* the same loss composed: CE + Σ (z·(1 − onehot))² / (C − 1) */
        ct_tensor *composed =
            ct_squentropy_loss_reference(tape, z, CT_LABELS(y, N), CT_SQUENTROPY(.reduction = reductions[r]));
        CHECK(!isnan(loss->data[0]), "reduction %d: NaN", r);
        CHECK(loss->data[0] == composed->data[0], "reduction %d: %g, composed %g", r, (double)loss->data[0],
              (double)composed->data[0]);
        for (size_t k = 0; k < z->size; k++) CHECK(isfinite(z->grad[k]), "grad[%zu] = %g", k, (double)z->grad[k]);
        CHECK_NEAR(z->grad[3], (r == 0 ? 1.0 / N : 1.0) * 2e30 / (C - 1), 0, 1e-6);
        ct_tape_free(tape);
    }
}

/* ---- non-finite input: every loss computes, none aborts -------------------------------------------
 * Logits (or features) (6, 5) with one NaN, +inf or −inf at row 1's label. The loss is non-finite
 * for NaN and +inf (as PyTorch: NaN, or inf for mse, l1, ...), and for NaN some gradient element is
 * too (except nll, whose gradient −w does not read the input, in PyTorch as here). −inf only has to
 * run: it is a masked class for the softmax losses. Labels out of range stay fatal (tested with
 * each loss's errors elsewhere). */
typedef struct {
    int loss;     /* registry index */
    double value; /* put at row 1, column 1 (row 1's label) */
    double result;
    int grad_finite;
} nonfinite_run;

static const int nf_labels[6] = {0, 1, 2, 0, 1, 2};

static void run_registered(void *arg) {
    nonfinite_run *r = arg;
    ct_loss *loss = ct_loss_parse(ct_loss_name_at(r->loss));
    ct_model *m = ct_model_new();
    CT_CHECK(ct_loss_bind(loss, m, "nf", 5, 5) == CT_OK, "test", "bind: %s", ct_last_error());
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(6, 5));
    for (size_t k = 0; k < x->size; k++) x->data[k] = (ct_real)((int)(k * 3 % 7) - 3) * (ct_real)0.5;
    x->data[5 + 1] = (ct_real)r->value;
    ct_tape_requires_grad(tape, x);
    ct_tensor *out = ct_loss_apply(tape, loss, x, CT_LABELS(nf_labels, 6));
    ct_backward(tape, out);
    r->result = out->data[0];
    r->grad_finite = 1;
    for (size_t k = 0; k < x->size; k++) r->grad_finite &= isfinite(x->grad[k]) != 0;
    ct_tape_free(tape);
    ct_model_free(m);
    ct_loss_free(loss);
}

CT_TEST(loss_nonfinite, every_registered_loss_returns_a_non_finite_value_instead_of_aborting) {
    const double values[3] = {NAN, INFINITY, -INFINITY};
    const char *names[3] = {"NaN", "+inf", "-inf"};
    for (int i = 0; i < ct_loss_count(); i++)
        for (int v = 0; v < 3; v++) {
            nonfinite_run r = {.loss = i, .value = values[v]};
            char got[1024];
            CHECK(!ct_test_expect_fatal(run_registered, &r, "", got, sizeof got), "%s with %s: aborted: %s",
                  ct_loss_name_at(i), names[v], got);
            run_registered(&r);
            if (v == 2) continue;
            CHECK(!isfinite(r.result), "%s with %s: loss %g", ct_loss_name_at(i), names[v], r.result);
            if (v == 0 && strcmp(ct_loss_name_at(i), "nll"))
                CHECK(!r.grad_finite, "%s with NaN: every gradient element is finite", ct_loss_name_at(i));
        }
}

/* −inf logits as a mask, as PyTorch's cross_entropy takes them: finite loss, zero gradient there */
CT_TEST(loss_nonfinite, cross_entropy_takes_minus_inf_as_a_masked_class) {
    const int Cs[2] = {5, 80}; /* short and long rows */
    for (int t = 0; t < 2; t++) {
        const int C = Cs[t];
        ct_tape *tape = ct_tape_new(), *tape2 = ct_tape_new();
        ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(3, C)), *ref = ct_tape_zeros(tape2, CT_SHAPE(3, C - 1));
        for (int i = 0; i < 3; i++)
            for (int c = 0; c < C; c++) z->data[i * C + c] = (ct_real)((i * 7 + c * 3) % 5) * (ct_real)0.5;
        for (int i = 0; i < 3; i++) z->data[i * C + C - 1] = (ct_real)-INFINITY; /* the last class masked */
        for (int i = 0; i < 3; i++)
            for (int c = 0; c < C - 1; c++) ref->data[i * (C - 1) + c] = z->data[i * C + c];
        ct_tape_requires_grad(tape, z), ct_tape_requires_grad(tape2, ref);
        int y[3] = {0, 2, 1};
        ct_tensor *loss = ct_cross_entropy(tape, z, CT_LABELS(y, 3), CT_CE());
        ct_tensor *want = ct_cross_entropy(tape2, ref, CT_LABELS(y, 3), CT_CE()); /* without the masked class */
        ct_backward(tape, loss);
        ct_backward(tape2, want);
        CHECK_NEAR(loss->data[0], want->data[0], 1e-6, 1e-6);
        for (int i = 0; i < 3; i++) {
            CHECK(z->grad[i * C + C - 1] == 0, "C = %d: gradient %g at the masked class", C,
                  (double)z->grad[i * C + C - 1]);
            for (int c = 0; c < C - 1; c++) CHECK_NEAR(z->grad[i * C + c], ref->grad[i * (C - 1) + c], 1e-6, 1e-6);
        }
        ct_tape_free(tape), ct_tape_free(tape2);
    }
}

/* The losses outside the registry, on NaN input: no abort, a NaN loss. */
static void run_others(void *arg) {
    double *result = arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(4, 3)), *t = ct_tape_zeros(tape, CT_SHAPE(4, 3));
    for (size_t k = 0; k < x->size; k++) x->data[k] = (ct_real)-1.5, t->data[k] = (ct_real)(1.0 / 3);
    x->data[4] = (ct_real)NAN;
    ct_tape_requires_grad(tape, x);
    result[0] = ct_kl_div(tape, x, t, CT_KL_DIV())->data[0];
    result[1] = ct_distillation_loss(tape, x, t, CT_KD())->data[0];
    result[2] = ct_triplet_margin_loss(tape, x, t, t, CT_TRIPLET())->data[0];
    result[3] = ct_sigmoid_focal_loss(tape, x, t, CT_SIGMOID_FOCAL())->data[0];
    t->data[5] = (ct_real)NAN; /* and in a target */
    result[4] = ct_mse_loss(tape, t, x, CT_REGRESSION(.reduction = CT_REDUCTION_SUM))->data[0];
    ct_tape_free(tape);
}

CT_TEST(loss_nonfinite, losses_outside_the_registry_return_nan) {
    double result[5];
    char got[1024];
    CHECK(!ct_test_expect_fatal(run_others, result, "", got, sizeof got), "aborted: %s", got);
    run_others(result);
    const char *names[5] = {"kl_div", "distillation", "triplet_margin", "sigmoid_focal", "mse (target)"};
    for (int k = 0; k < 5; k++) CHECK(isnan(result[k]), "%s: %g", names[k], result[k]);
}

/* The divergence: lr 1e15 drives an MLP's logits to inf and NaN. The loss must return so
 * that the optimizer's non-finite guard skips those steps, instead of aborting in the loss. */
static void diverge(void *arg) {
    long *out = arg; /* skipped steps, steps with a non-finite loss */
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_module *fc1 = ct_linear_new(m, "fc1", 6, 16), *fc2 = ct_linear_new(m, "fc2", 16, 4);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 1e15, .momentum = 0.9));
    ct_optim_set_guards(opt, CT_GUARDS(.nonfinite = CT_NONFINITE_SKIP));
    ct_tape *tape = ct_tape_new();
    int y[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    out[1] = 0;
    for (int step = 0; step < 30; step++) {
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(8, 6));
        for (size_t k = 0; k < x->size; k++) x->data[k] = (ct_real)sin(0.3 * (double)(k + step));
        ct_tensor *loss = ct_cross_entropy(tape, ct_forward(tape, fc2, ct_relu(tape, ct_forward(tape, fc1, x))),
                                           CT_LABELS(y, 8), CT_CE());
        out[1] += !isfinite(loss->data[0]);
        ct_backward(tape, loss);
        ct_optim_step(opt);
        ct_tape_reset(tape);
    }
    out[0] = ct_optim_skipped_steps(opt);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
}

CT_TEST(loss_nonfinite, divergent_training_reaches_the_optimizer_guard) {
    long out[2];
    char got[1024];
    CHECK(!ct_test_expect_fatal(diverge, out, "", got, sizeof got), "aborted: %s", got);
    diverge(out);
    CHECK(out[1] > 0, "the loss never became non-finite: the test does not diverge");
    CHECK(out[0] > 0, "%ld non-finite losses, no step skipped", out[1]);
    ct_test_note("%ld of 30 losses non-finite, %ld steps skipped", out[1], out[0]);
}

/* ---- option vectors: every entry checked, one finiteness check -------------------------------- */
/* A class weight is an option, not data: a non-finite one is named whether or not a label picks
 * it. nll checked only the weights its labels read (an inf weight of an unused class passed). */
typedef struct {
    const char *loss;
    int which; /* the class whose weight is inf */
} bad_weight_case;

static void bad_weight_body(void *arg) {
    const bad_weight_case *c = arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *z = ct_tape_zeros(tape, CT_SHAPE(4, 3));
    const int y[4] = {0, 0, 1, 0}; /* class 2 is never a label */
    ct_real w[3] = {1, 1, 1};
    w[c->which] = INFINITY;
    if (!strcmp(c->loss, "nll")) ct_nll_loss(tape, z, CT_LABELS(y, 4), CT_NLL(.weight = w));
    else if (!strcmp(c->loss, "cross_entropy")) ct_cross_entropy(tape, z, CT_LABELS(y, 4), CT_CE(.weight = w));
    else if (!strcmp(c->loss, "focal")) ct_focal_loss(tape, z, CT_LABELS(y, 4), CT_FOCAL(.alpha_per_class = w));
    else ct_bce_with_logits(tape, z, z, CT_BCE(.weight = w));
    ct_tape_free(tape);
}

CT_TEST(loss_nonfinite, non_finite_class_weights_are_named_even_when_no_label_picks_them) {
    const char *losses[] = {"nll", "cross_entropy", "focal", "bce_with_logits"};
    const char *names[] = {"weight[2] = inf is not finite", "weight[2] = inf is not finite",
                           "alpha_per_class[2] = inf is not finite", "weight[2] = inf is not finite"};
    char got[1024];
    for (int k = 0; k < 4; k++) {
        bad_weight_case c = {losses[k], 2};
        CHECK(ct_test_expect_fatal(bad_weight_body, &c, names[k], got, sizeof got), "%s: got '%s'", losses[k], got);
    }
}
