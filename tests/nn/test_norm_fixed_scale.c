/* tests/nn/test_norm_fixed_scale.c — batch norm with its scale fixed at 1 (.fixed_scale, airbench's
 * BatchNorm: weight not trained, eps 1e-12, PyTorch momentum 0.4): the scale is a buffer, the
 * gradients of x and the bias are right, training never moves the scale, files keep the names. */
#include "../test.h"

#include <stdio.h>
#include <string.h>

#define AIRBENCH_BN CT_BATCH_NORM(.eps = 1e-12, .momentum = 0.4, .fixed_scale = 1)

static void fill(ct_tensor *t, uint64_t seed, double lo, double hi) {
    ct_rng r;
    ct_rng_seed(&r, seed);
    ct_tensor_fill_uniform(t, &r, lo, hi);
}

CT_TEST(norm, batch_norm_fixed_scale_is_a_buffer_of_ones) {
    ct_model *m = ct_model_new();
    ct_module *bn = ct_batch_norm_new(m, "bn", 3, AIRBENCH_BN);
    ct_tensor *w = ct_model_find_buffer(m, "bn.weight"), *b = ct_model_find_param(m, "bn.bias");
    CHECK(w && b && !ct_model_find_param(m, "bn.weight"), "the scale is a buffer, the bias a parameter");
    CHECK(ct_model_param_count(m) == 1 && ct_model_buffer_count(m) == 4);
    CHECK(!ct_requires_grad(w) && !w->grad);
    for (int c = 0; c < 3; c++) CHECK(w->data[c] == 1 && b->data[c] == 0);

    /* the forward is the op with γ ≡ 1 (gamma NULL); momentum 0.4 in PyTorch's convention */
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(4, 3, 2, 3));
    fill(x, 3, -2, 5);
    fill(b, 4, -1, 1);
    ct_tensor *rm = ct_tensor_new(CT_SHAPE(3)), *rv = ct_tensor_new(CT_SHAPE(3));
    ct_tensor_fill(rv, 1);
    ct_tensor *want = ct_batch_norm(tape, x, NULL, b, rm, rv, 1, 0.4, 1e-12);
    ct_tensor *got = ct_forward(tape, bn, x);
    CHECK(memcmp(got->data, want->data, got->size * sizeof(ct_real)) == 0);
    ct_tensor *brm = ct_model_find_buffer(m, "bn.running_mean");
    for (int c = 0; c < 3; c++) {
        double mean = 0; /* the batch mean of channel c: running_mean = 0.6·0 + 0.4·mean */
        for (int n = 0; n < 4; n++)
            for (int s = 0; s < 6; s++) mean += x->data[(n * 3 + c) * 6 + s] / 24.0;
        CHECK_NEAR(brm->data[c], 0.4 * mean, 4 * CT_REAL_EPS, 4 * CT_REAL_EPS);
        CHECK(brm->data[c] == rm->data[c]);
    }
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, got, x)));
    CHECK(!w->grad && b->grad, "the backward writes the bias's gradient, no scale gradient");
    ct_tensor_free(rm), ct_tensor_free(rv);
    ct_tape_free(tape);
    ct_model_free(m);
}

static void fixed_without_affine(void *arg) {
    (void)arg;
    ct_batch_norm_new(ct_model_new(), "bn", 4, CT_BATCH_NORM(.affine = 0, .fixed_scale = 1));
}

CT_TEST(norm, batch_norm_fixed_scale_needs_affine) {
    char got[512];
    CHECK(ct_test_expect_fatal(fixed_without_affine, NULL, "bn: .fixed_scale needs .affine = 1", got, sizeof got),
          "stderr was: %s", got);
}

/* Five SGD steps (momentum, Nesterov, weight decay) of a loss that pulls on the scale: the scale
 * stays 1 exactly while the bias moves; with a trained scale the same steps move it. */
static void train_five_steps(ct_batch_norm_opts o, ct_tensor **weight, ct_tensor **bias, ct_model **model) {
    ct_model *m = ct_model_new();
    ct_module *bn = ct_batch_norm_new(m, "bn", 4, o);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1, .momentum = 0.85, .nesterov = 1, .weight_decay = 0.05));
    ct_tape *tape = ct_tape_new();
    for (int step = 0; step < 5; step++) {
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(6, 4, 3, 3)), *target = ct_tape_zeros(tape, CT_SHAPE(6, 4, 3, 3));
        fill(x, 10 + step, -1, 3);
        fill(target, 20 + step, -2, 2);
        ct_backward(tape, ct_sum_all(tape, ct_mul(tape, ct_forward(tape, bn, x), target)));
        CHECK(ct_optim_step(opt) == CT_OK);
        ct_tape_reset(tape);
    }
    ct_tape_free(tape);
    ct_optim_free(opt);
    *weight = ct_model_find_buffer(m, "bn.weight");
    if (!*weight) *weight = ct_model_find_param(m, "bn.weight");
    *bias = ct_model_find_param(m, "bn.bias");
    *model = m;
}

CT_TEST(norm, batch_norm_fixed_scale_does_not_move_under_training) {
    ct_tensor *w, *b;
    ct_model *m;
    train_five_steps(AIRBENCH_BN, &w, &b, &m);
    if (ct_test_stopped()) return;
    int bias_moved = 0;
    for (int c = 0; c < 4; c++) {
        CHECK(w->data[c] == 1, "scale[%d] = %.9g after 5 steps", c, (double)w->data[c]);
        bias_moved += b->data[c] != 0;
    }
    CHECK(bias_moved == 4, "the bias trains (%d of 4 channels moved)", bias_moved);
    ct_model_free(m);
    /* the same steps with a trained scale move it: the loss does pull on it */
    train_five_steps(CT_BATCH_NORM(.eps = 1e-12, .momentum = 0.4), &w, &b, &m);
    if (ct_test_stopped()) return;
    int scale_moved = 0;
    for (int c = 0; c < 4; c++) scale_moved += w->data[c] != 1;
    CHECK(scale_moved == 4, "a trained scale moves (%d of 4)", scale_moved);
    ct_model_free(m);
}

CT_TEST(norm, batch_norm_fixed_scale_saves_and_loads) {
    ct_tensor *w, *b;
    ct_model *m;
    train_five_steps(AIRBENCH_BN, &w, &b, &m);
    if (ct_test_stopped()) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/bn.safetensors", ct_test_tmpdir());
    CHECK(ct_model_save(m, path) == CT_OK, "%s", ct_last_error());
    ct_model *fresh = ct_model_new();
    ct_batch_norm_new(fresh, "bn", 4, AIRBENCH_BN);
    CHECK(ct_model_load(fresh, path) == CT_OK, "%s", ct_last_error());
    const char *names[] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"};
    for (int k = 0; k < 5; k++) {
        ct_tensor *a = ct_model_find_param(m, names[k]), *c = ct_model_find_param(fresh, names[k]);
        if (!a) a = ct_model_find_buffer(m, names[k]), c = ct_model_find_buffer(fresh, names[k]);
        CHECK(a && c && a->size == c->size && memcmp(a->data, c->data, a->size * sizeof(ct_real)) == 0, "%s", names[k]);
    }
    /* PyTorch's names: the same file loads into a batch norm with a trained scale */
    ct_model *trained = ct_model_new();
    ct_batch_norm_new(trained, "bn", 4, CT_BATCH_NORM());
    CHECK(ct_model_load(trained, path) == CT_OK, "%s", ct_last_error());
    CHECK(memcmp(ct_model_find_param(trained, "bn.bias")->data, b->data, 4 * sizeof(ct_real)) == 0);
    ct_model_free(trained);
    ct_model_free(fresh);
    ct_model_free(m);
}

/* ---- gradient checks (float64 build), as the other batch-norm checks: x and the bias, in training
 * and evaluation mode, on the layer itself (its bias is the parameter being checked) ---------- */
#ifdef CT_PRECISION_64
static ct_tensor *fixed_bn_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    return ct_forward(tape, ctx, in[0]);
}
#endif

static void fixed_scale_gradcheck(ct_shape xs, int training) {
#ifndef CT_PRECISION_64
    (void)xs, (void)training;
    CT_SKIP("gradient checks run in the float64 build");
#else
    const int C = xs.d[1];
    ct_model *m = ct_model_new();
    ct_module *bn = ct_batch_norm_new(m, "bn", C, AIRBENCH_BN);
    ct_tensor *x = ct_tensor_new_grad(xs), *bias = ct_model_find_param(m, "bn.bias");
    fill(x, 31, -2, 2);
    fill(bias, 32, -1, 1);
    fill(ct_model_find_buffer(m, "bn.running_mean"), 33, -0.5, 0.5);
    fill(ct_model_find_buffer(m, "bn.running_var"), 34, 0.5, 1.5);
    ct_model_train(m, training);
    ct_tensor *in[2] = {x, bias};
    const ct_gradcheck_result r = ct_gradcheck(fixed_bn_fn, bn, in, 2, CT_GRADCHECK());
    char why[256];
    ct_gradcheck_describe(&r, why, sizeof why);
    CHECK(r.passed && r.repeat_ok, "%s", why);
    CHECK(!ct_model_find_buffer(m, "bn.weight")->grad, "no gradient for the fixed scale");
    ct_test_note("%s", why);
    ct_tensor_free(x);
    ct_model_free(m);
#endif
}

CT_TEST(gradcheck, batch_norm_fixed_scale_2d_train) { fixed_scale_gradcheck(CT_SHAPE(3, 2, 2, 3), 1); }
CT_TEST(gradcheck, batch_norm_fixed_scale_1d_train) { fixed_scale_gradcheck(CT_SHAPE(6, 3), 1); }
CT_TEST(gradcheck, batch_norm_fixed_scale_2d_eval) { fixed_scale_gradcheck(CT_SHAPE(2, 3, 2, 2), 0); }
