/* tests/optim/test_optim.c — SGD against torch.optim.SGD trajectories (tests/reference/sgd_ref.h),
 * option validation, and the optimizer's contract (grads zeroed, lr, parameter list). */
#include "../test.h"
#include "../reference/sgd_ref.h"

#include <string.h>

#ifdef CT_PRECISION_64
#define REF_RTOL 1e-12
#define REF_ATOL 1e-13
#else
#define REF_RTOL 1e-5
#define REF_ATOL 2e-6
#endif

/* A model holding the reference's three parameters, at their initial values. */
static ct_model *reference_model(void) {
    ct_model *m = ct_model_new();
    size_t at = 0;
    for (int k = 0; k < SGD_REF_PARAMS; k++) {
        ct_shape s = {.ndim = sgd_ref_ndim[k]};
        for (int d = 0; d < s.ndim; d++) s.d[d] = sgd_ref_shape[k][d];
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        ct_tensor *p = ct_model_add_param(m, name, s);
        for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)sgd_ref_initial[at + i];
        at += p->size;
    }
    return m;
}

CT_TEST(optim, sgd_matches_pytorch) {
    double worst = 0;
    for (int c = 0; c < SGD_REF_COUNT; c++) {
        const sgd_ref_case *rc = &sgd_ref_cases[c];
        ct_model *m = reference_model();
        ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = rc->lr, .momentum = rc->momentum, .dampening = rc->dampening,
                                             .weight_decay = rc->weight_decay, .nesterov = rc->nesterov));
        for (int step = 0; step < SGD_REF_STEPS; step++) {
            size_t at = 0;
            for (int k = 0; k < SGD_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)sgd_ref_grads[step][at + i];
                at += p->size;
            }
            ct_optim_step(opt);
            at = 0;
            for (int k = 0; k < SGD_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++, at++) {
                    double got = p->data[i], want = rc->after[step][at];
                    CHECK(fabs(got - want) <= REF_ATOL + REF_RTOL * fabs(want),
                           "%s step %d: %s[%zu] = %.10g, PyTorch %.10g", rc->name, step + 1, p->name, i, got, want);
                    CHECK(p->grad[i] == 0, "%s step %d: %s.grad[%zu] not zeroed", rc->name, step + 1, p->name, i);
                    worst = fmax(worst, fabs(got - want));
                }
            }
        }
        CHECK(ct_optim_steps(opt) == SGD_REF_STEPS, "%s: %ld steps counted", rc->name, ct_optim_steps(opt));
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("%d settings x %d steps, worst abs err %.1e", SGD_REF_COUNT, SGD_REF_STEPS, worst);
}

/* Past the threshold where the update loop runs on several threads, the result is the same. */
CT_TEST(optim, sgd_large_parameter_matches_formula) {
    ct_model *m = ct_model_new();
    ct_tensor *p = ct_model_add_param(m, "big", CT_SHAPE(300, 400));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1, .momentum = 0.5, .weight_decay = 0.1));
    for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)(i % 7) - 3;
    for (int step = 0; step < 2; step++) {
        for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)(i % 5);
        ct_optim_step(opt);
    }
    for (size_t i = 0; i < p->size; i += 997) {
        /* two steps by hand: d = g + λθ; b = d, θ -= lr·b; then b = μb + d, θ -= lr·b */
        double x = (double)(i % 7) - 3, g = (double)(i % 5);
        double d = g + 0.1 * x, b = d;
        x -= 0.1 * b;
        d = g + 0.1 * x;
        b = 0.5 * b + d;
        x -= 0.1 * b;
        CHECK(fabs(p->data[i] - x) <= 1e-5 * (1 + fabs(x)), "big[%zu] = %.8g, want %.8g", i, (double)p->data[i], x);
        CHECK(p->grad[i] == 0, "big.grad[%zu] not zeroed", i);
    }
    ct_optim_free(opt);
    ct_model_free(m);
}

CT_TEST(optim, lr_steps_and_zero_grad) {
    ct_model *m = ct_model_new();
    ct_tensor *p = ct_model_add_param(m, "w", CT_SHAPE(3));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.5));
    CHECK(ct_optim_lr(opt) == 0.5 && ct_optim_steps(opt) == 0);
    ct_optim_set_lr(opt, 0.25);
    CHECK(ct_optim_lr(opt) == 0.25);
    for (int i = 0; i < 3; i++) p->grad[i] = 2;
    ct_optim_step(opt);
    CHECK(p->data[0] == -0.5 && p->grad[0] == 0, "θ = 0 − 0.25·2 with the new lr, grad zeroed");
    p->grad[1] = 7;
    ct_optim_zero_grad(opt);
    CHECK(p->grad[1] == 0);
    CHECK(ct_optim_steps(opt) == 1);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* Cross-entropy + SGD on a linear classifier over separable blobs: the loss falls. */
CT_TEST(optim, sgd_trains_linear_classifier) {
    enum { N = 60, D = 2, K = 3 };
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_module *fc = ct_linear_new(m, "fc", D, K); /* owned by m */
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.5, .momentum = 0.9));
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_real xs[N * D];
    int ys[N];
    const double centers[K][D] = {{2, 0}, {-1, 2}, {-1, -2}};
    for (int i = 0; i < N; i++) {
        ys[i] = i % K;
        for (int d = 0; d < D; d++) xs[i * D + d] = (ct_real)(centers[ys[i]][d] + ct_rng_normal(&rng, 0, 0.3));
    }
    double first = 0, last = 0;
    for (int step = 0; step < 50; step++) {
        ct_tape_reset(tape);
        ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(N, D), xs);
        ct_tensor *loss = ct_cross_entropy(tape, ct_forward(tape, fc, x), CT_LABELS(ys, N), CT_CE());
        if (step == 0) first = loss->data[0];
        last = loss->data[0];
        ct_backward(tape, loss);
        ct_optim_step(opt);
    }
    CHECK(last < 0.05 && last < first / 10, "loss %.4f -> %.4f", first, last);
    ct_test_note("loss %.3f -> %.4f in 50 steps", first, last);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ---- errors ------------------------------------------------------------------------------- */
static void sgd_new_body(void *arg) {
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(2));
    ct_sgd_new(m, *(const ct_sgd_opts *)arg);
}

CT_TEST(optim, sgd_rejects_bad_options) {
    struct {
        ct_sgd_opts opts;
        const char *want;
    } cases[] = {
        {CT_SGD(.lr = -0.1), "lr -0.1"},
        {CT_SGD(.lr = NAN), "lr nan"},
        {CT_SGD(.momentum = -0.5), "momentum -0.5"},
        {CT_SGD(.weight_decay = -1), "weight_decay -1"},
        {CT_SGD(.nesterov = 1), "nesterov needs momentum > 0 and dampening = 0, got momentum 0,"},
        {CT_SGD(.nesterov = 1, .momentum = 0.9, .dampening = 0.5), "dampening 0.5"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(ct_test_expect_fatal(sgd_new_body, &cases[i].opts, cases[i].want, got, sizeof got) &&
                   strstr(got, "ct_sgd_new"),
               "case %zu: want \"%s\", got: %s", i, cases[i].want, got);
}

static void step_after_new_param(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "a", CT_SHAPE(2));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1));
    ct_model_add_param(m, "b", CT_SHAPE(2));
    ct_optim_step(opt);
}

CT_TEST(optim, step_after_model_grew_is_fatal) {
    char got[1024];
    CHECK(ct_test_expect_fatal(step_after_new_param, NULL, "made for 1 parameters but the model now has 2", got,
                                sizeof got), "got: %s", got);
}
