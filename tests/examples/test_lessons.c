/* tests/examples/test_lessons.c — every lesson of examples/learn runs and teaches the numbers its comments
 * promise (not its whole output: the wording may change, the numbers may not). */
#include "../test.h"

#include <string.h>

/* What the last lesson run printed. */
static char out[16384];

/* Runs lesson `name` (with args) and checks it exits 0 and prints each of the n expected strings. */
static void lesson_with(const char *name, const char *args, const char *const *expect, int n) {
    char exe[1024], cmd[2400];
    if (!ct_test_example_path(name, exe, sizeof exe)) CT_SKIP("%s is not built", name);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", exe, args);
    const int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "%s exited with %d:\n%s", name, status, out);
    for (int i = 0; i < n; i++) CHECK(strstr(out, expect[i]), "%s does not print \"%s\":\n%s", name, expect[i], out);
}

static void lesson(const char *name, const char *const *expect, int n) { lesson_with(name, "", expect, n); }

CT_TEST(lessons, chain_rule) {
    static const char *const expect[] = {"L = (a·b + c)·f = -8", "dL/da         6          6",
                                         "dL/db        -4         -4", "dL/dc        -2         -2",
                                         "dL/df         4          4", "o = tanh(x1·w1 + x2·w2 + b) = 0.7071",
                                         "do/dx1 = -1.5000  do/dw1 = 1.0000  do/dx2 = 0.5000  do/dw2 = 0.0000"};
    const char *dir = ct_test_tmpdir();
    char args[1100];
    snprintf(args, sizeof args, "'%s'", dir);
    lesson_with("learn/01_chain_rule", args, expect, 7);
    if (ct_test_stopped()) return;
    /* the neuron's graph: each of the five leaves drawn once, with its value and gradient */
    char path[1200], dot[8192] = {0};
    snprintf(path, sizeof path, "%s/neuron.dot", dir);
    FILE *f = fopen(path, "r");
    CHECK(f, "no %s", path);
    const size_t got = fread(dot, 1, sizeof dot - 1, f);
    fclose(f);
    CHECK(got > 0 && strstr(dot, "label=\"x1\\n(1,)\\nvalue 2\\ngrad -1.5\"") && strstr(dot, "leaf4 [") && !strstr(dot, "leaf5 [") &&
              strstr(dot, "4 tanh\\n(1,)\\nvalue 0.7071\\ngrad 1"),
          "%s:\n%s", path, dot);
}

/* Adam's bias correction in numbers, and both pictures written and readable. */
CT_TEST(lessons, optimizers) {
    static const char *const expect[] = {"   1     0.1000   0.001000       3.1623       1.0000",
                                         "   2     0.1900   0.001999       4.2496       1.0000", "valley.png", "rosenbrock.png"};
    const char *dir = ct_test_tmpdir();
    char args[1100], exe[1024];
    if (!ct_test_example_path("learn/06_optimizers", exe, sizeof exe)) CT_SKIP("learn/06_optimizers is not built");
    snprintf(args, sizeof args, "'%s'", dir);
    lesson_with("learn/06_optimizers", args, expect, 4);
    for (int k = 0; k < 2; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, k ? "rosenbrock.png" : "valley.png");
        FILE *f = fopen(path, "rb");
        unsigned char magic[8] = {0};
        const int read = f && fread(magic, 1, 8, f) == 8;
        if (f) fclose(f);
        CHECK(read && !memcmp(magic, "\x89PNG", 4), "%s is not a PNG", path);
    }
}

CT_TEST(lessons, softmax_cross_entropy) {
    static const char *const expect[] = {"p − y  = (-0.3410, 0.2424, 0.0986)", "tape ∂L/∂z = (-0.3410, 0.2424, 0.0986)",
                                         "in float32 = inf", "(ctape's cross-entropy: 0)",
                                         "gradient exactly 0 (learning has stopped)",
                                         "StableMax's gradient on a wrong class is 0.008333"};
    lesson("learn/04_softmax_cross_entropy", expect, 6);
}

CT_TEST(lessons, vectors_and_broadcasting) {
    static const char *const expect[] = {"dL/db from the tape =\n     -4.500   0.000   4.500   9.000",
                                         "the sum of the rows of dL/dy =\n     -4.500   0.000   4.500   9.000",
                                         "cube with dx = dy·3x²: ok", "cube with dx = dy·x²:  FAIL",
                                         "the gradient check caught the wrong backward"};
    const char *dir = ct_test_tmpdir();
    char args[1100];
    snprintf(args, sizeof args, "'%s'", dir);
    lesson_with("learn/02_vectors_and_broadcasting", args, expect, 5);
    if (ct_test_stopped()) return;
    /* y = x + b is one node with two edges into y·y (its two uses); b's gradient is the row sum */
    char path[1200], dot[8192] = {0};
    snprintf(path, sizeof path, "%s/broadcasting.dot", dir);
    FILE *f = fopen(path, "r");
    CHECK(f, "no %s", path);
    const size_t got = fread(dot, 1, sizeof dot - 1, f);
    fclose(f);
    const char *first = strstr(dot, "  n0 -> n1;\n");
    CHECK(got > 0 && first && strstr(first + 1, "  n0 -> n1;\n") && strstr(dot, "grad -4.5 0 4.5 9"), "%s:\n%s", path, dot);
}

CT_TEST(lessons, mlp_step_three_ways) {
    static const char *const expect[] = {"loss: by hand 0.891628, tape 0.891628", "dW1[0][0]     0.229531     0.229531",
                                         "W1[0][0] 0.220130 -> by hand 0.105365, ct_sgd 0.105365", "The three ways agree."};
    lesson("learn/03_mlp_step_three_ways", expect, 4);
}

CT_TEST(lessons, convolution) {
    static const char *const expect[] = {"cols is (27, 30) per image", "dW[0][0][0][0] by hand 9.948754, tape 9.948754",
                                         "dX[0][0][0][0] by hand -0.469242, tape -0.469242",
                                         "agree, forward and backward."};
    lesson("learn/05_convolution", expect, 4);
}

/* Lesson 7: RMSNorm written as an op of one's own. Its values, its gradient (the same as six composed
 * tape ops), Σ x·dx ≈ 0 for the right backward, and the gradient check's verdict on all three. */
CT_TEST(lessons, your_own_op) {
    static const char *const expect[] = {
        "value [0.5298, -0.5298, 3.179, -0.2649, 0.7302, 0.1826, -2.191, -1.46]",
        "grad [0.172, -0.07901, -0.01394, -0.5763, -1.339, 3.895, 6.572, 4.625]",
        "fused: 1 node; composed: 6 nodes.", "they agree",
        "r held constant        1.3245    -0.7302",
        "right backward                     ok, 20 elements",
        "r held constant                    FAIL at input 0 [1]: analytic -1.48",
        "= instead of += (x + rms_norm(x))  FAIL: a second backward",
        "the check tells the right backward from both wrong ones"};
    lesson("learn/07_your_own_op", expect, 9);
}

/* Lesson 8: the Brier loss from tape ops. Its value and gradient on the small example (against the
 * formula), the confidently wrong sample, the gradient check, the registry's parse and range check, and
 * the race against cross-entropy on MNIST (skipped without the data): both above 85% after one epoch,
 * the three seeds' spread small, and a verdict printed for each metric. */
CT_TEST(lessons, your_own_loss) {
    static const char *const expect[] = {"Brier = (0.6590 − 1)² + 0.2424² + 0.0986² = 0.1848",
                                         "tape ∂ℓ/∂z    = (-0.2435, 0.1933, 0.0502)",
                                         "formula ∂ℓ/∂z = (-0.2435, 0.1933, 0.0502)",
                                         "cross-entropy  8.0007, ∂/∂z_0 = -0.9997", "Brier          1.9980, ∂/∂z_0 = -0.00134",
                                         "ct_gradcheck of brier (float32, logits (6, 10)): ok",
                                         "ct_loss_parse(\"brier:scale=2\") -> brier:scale=2",
                                         "brier: scale=-1 is out of range (0, inf)"};
    const char *shared = ct_test_shared_data();
    char dir[1024], args[1100];
    snprintf(dir, sizeof dir, "%s/mnist", shared ? shared : "/nonexistent");
    snprintf(args, sizeof args, "'%s'", dir);
    lesson_with("learn/08_your_own_loss", args, expect, 8);
    if (ct_test_stopped()) return;
    if (strstr(out, "4. skipped")) {
        if (!shared) CT_SKIP_NO_SHARED_DATA();
        CT_SKIP("MNIST absent from %s", dir);
    }
    for (int l = 0; l < 2; l++) {
        const char *name = l ? "\n   brier          " : "\n   cross_entropy  ";
        const char *row = strstr(out, name);
        double acc, acc_sd, nll, nll_sd, ece, ece_sd;
        CHECK(row && sscanf(row + strlen(name), "%lf ± %lf %lf ± %lf %lf ± %lf", &acc, &acc_sd, &nll, &nll_sd, &ece,
                            &ece_sd) == 6, "no table row for %s:\n%s", name + 4, out);
        CHECK(acc > 0.85 && acc < 1 && acc_sd < 0.03, "%s: accuracy %.4f ± %.4f", name + 4, acc, acc_sd);
        CHECK(nll > 0 && nll < 1 && ece >= 0 && ece < 0.2, "%s: NLL %.4f, ECE %.4f", name + 4, nll, ece);
    }
    CHECK(strstr(out, "accuracy cross_entropy is better") || strstr(out, "accuracy brier is better"), "%s", out);
    CHECK(strstr(out, "raced cross-entropy"), "%s", out);
}

/* The lesson's own op code, compiled into the suite (its main renamed) so that its backward is also
 * checked in the float64 build, where the check is tight (h = 1e-6, rtol 1e-5). */
#define main lesson7_main
#include "../../examples/learn/07_your_own_op.c"
#undef main

static void check_lesson7_op(void) {
    ct_tensor *in[2] = {ct_tensor_new_grad(CT_SHAPE(3, 5)), ct_tensor_new_grad(CT_SHAPE(5))};
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    ct_tensor_fill_normal(in[0], &rng, 0, 1);
    ct_tensor_fill_normal(in[1], &rng, 1, 0.5);
    const ct_gradcheck_result right = ct_gradcheck(check_right, NULL, in, 2, CT_GRADCHECK()),
                              r_const = ct_gradcheck(check_r_constant, NULL, in, 2, CT_GRADCHECK()),
                              assigns = ct_gradcheck(check_assigns_residual, NULL, in, 2, CT_GRADCHECK());
    /* fused against composed on the same inputs and a cotangent of ones */
    ct_tape *tape = ct_tape_new();
    ct_real fused[20], composed[20], fused_dx[15];
    ct_tensor_zero_grad(in[0]), ct_tensor_zero_grad(in[1]); /* the checks leave their gradients there */
    ct_tensor *y = rms_norm(tape, in[0], in[1]);
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, y, y)));
    for (int i = 0; i < 15; i++) fused[i] = y->data[i], fused_dx[i] = in[0]->grad[i];
    for (int i = 0; i < 5; i++) fused[15 + i] = in[1]->grad[i];
    ct_tape_reset(tape);
    ct_tensor_zero_grad(in[0]), ct_tensor_zero_grad(in[1]);
    ct_tensor *yc = rms_norm_composed(tape, in[0], in[1]);
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, yc, yc)));
    for (int i = 0; i < 15; i++) composed[i] = yc->data[i];
    for (int i = 0; i < 5; i++) composed[15 + i] = in[1]->grad[i];
    const double value_err = max_diff(fused, composed, 20), dx_err = max_diff(fused_dx, in[0]->grad, 15);
    ct_tape_free(tape);
    ct_tensor_free(in[0]), ct_tensor_free(in[1]);
    char line[320];
    ct_gradcheck_describe(&right, line, sizeof line);
    CHECK(right.passed && right.checked == 20, "right backward: %s", line);
    CHECK(!r_const.passed && r_const.repeat_ok, "r held constant passed the check");
    CHECK(!assigns.passed && !assigns.repeat_ok, "the assigning backward passed the check");
    CHECK(value_err < 100 * CT_REAL_EPS && dx_err < 100 * CT_REAL_EPS, "fused and composed differ: %.3g, dx %.3g", value_err,
          dx_err);
    ct_test_note("%s", line);
}

CT_TEST(gradcheck, lesson7_rms_norm) { check_lesson7_op(); }  /* float64: make test-f64 */
CT_TEST(lessons, rms_norm_gradient_float32) { check_lesson7_op(); }
