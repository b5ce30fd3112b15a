/* tests/examples/test_custom_op.c — the user-defined fused op of examples/custom_op.h (the swish-gated
 * linear unit, written with the public autograd/op.h): its gradient against central differences,
 * in the float64 suite (group gradcheck, tight) and the float32 one (loose), and its values and
 * gradients against the same function composed from tape ops. */
#include "../test.h"
#include "../../examples/custom_op.h"

#include <stdlib.h>
#include <string.h>

static ct_tensor *swiglu_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    (void)ctx;
    return swiglu(tape, in[0], in[1], in[2]);
}

/* x (5, 4), W1 and W2 (3, 4), N(0, 1); then the same with x alone needing a gradient. */
static void check_swiglu_gradient(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    ct_tensor *in[3] = {ct_tensor_new_grad(CT_SHAPE(5, 4)), ct_tensor_new_grad(CT_SHAPE(3, 4)),
                        ct_tensor_new_grad(CT_SHAPE(3, 4))};
    for (int i = 0; i < 3; i++) ct_tensor_fill_normal(in[i], &rng, 0, 1);
    ct_gradcheck_result r = ct_gradcheck(swiglu_fn, NULL, in, 3, CT_GRADCHECK());
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    ct_tensor *x_only[3] = {in[0], ct_tensor_new(CT_SHAPE(3, 4)), ct_tensor_new(CT_SHAPE(3, 4))};
    ct_tensor_copy_from(x_only[1], in[1]->data);
    ct_tensor_copy_from(x_only[2], in[2]->data);
    ct_gradcheck_result rx = ct_gradcheck(swiglu_fn, NULL, x_only, 3, CT_GRADCHECK());
    for (int i = 0; i < 3; i++) ct_tensor_free(in[i]);
    ct_tensor_free(x_only[1]), ct_tensor_free(x_only[2]);
    CHECK(r.passed && r.checked == 44 && r.repeat_ok, "%s", line);
    CHECK(rx.passed && rx.checked == 20, "with only x needing a gradient");
    ct_test_note("%s", line);
}

CT_TEST(gradcheck, custom_op_swiglu) { check_swiglu_gradient(); }        /* float64: make test-f64 */
CT_TEST(custom_op, swiglu_gradient_float32) { check_swiglu_gradient(); } /* float32: make test-f32 */

/* Fused and composed on the same inputs and cotangent: y, dx, dW1, dW2 agree to rounding. */
CT_TEST(custom_op, swiglu_matches_composed) {
    enum { N = 33, D = 20, H = 7 };
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(N, D)), *w1 = ct_tensor_new_grad(CT_SHAPE(H, D)),
              *w2 = ct_tensor_new_grad(CT_SHAPE(H, D));
    ct_tensor_fill_normal(x, &rng, 0, 2); /* gates from about −10 to 10: both tails of σ */
    ct_tensor_fill_normal(w1, &rng, 0, 1);
    ct_tensor_fill_normal(w2, &rng, 0, 1);
    ct_real cot[N * H];
    for (int i = 0; i < N * H; i++) cot[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
    ct_real *got[2][4];
    ct_tape *tape = ct_tape_new();
    for (int form = 0; form < 2; form++) {
        ct_tensor_zero_grad(x), ct_tensor_zero_grad(w1), ct_tensor_zero_grad(w2);
        ct_tensor *y = form == 0 ? swiglu(tape, x, w1, w2) : swiglu_reference(tape, x, w1, w2);
        ct_backward_with(tape, y, cot);
        const ct_tensor *from[4] = {y, x, w1, w2};
        for (int k = 0; k < 4; k++) {
            got[form][k] = malloc(from[k]->size * sizeof(ct_real));
            memcpy(got[form][k], k ? from[k]->grad : from[k]->data, from[k]->size * sizeof(ct_real));
        }
        if (form == 0) { /* the fused form is one node named after its ct_op */
            char printed[4096] = {0};
            FILE *f = fmemopen(printed, sizeof printed - 1, "w");
            ct_tape_print(tape, f);
            fclose(f);
            CHECK(strstr(printed, "tape: 1 nodes") && strstr(printed, "swiglu") &&
                      strstr(printed, "y = (x·W1ᵀ) ⊙ silu(x·W2ᵀ)"), "%s", printed);
        }
        ct_tape_reset(tape);
    }
    const size_t sizes[4] = {N * H, N * D, H * D, H * D};
    static const char *const names[4] = {"y", "dx", "dW1", "dW2"};
    const double tol = sizeof(ct_real) == 4 ? 2e-5 : 1e-12;
    int ok = 1;
    for (int k = 0; k < 4; k++) {
        double scale = 0, gap = 0;
        for (size_t i = 0; i < sizes[k]; i++) scale = fmax(scale, fabs((double)got[1][k][i]));
        for (size_t i = 0; i < sizes[k]; i++) gap = fmax(gap, fabs((double)got[0][k][i] - (double)got[1][k][i]));
        if (gap > tol * scale) {
            ct_test_fail(__FILE__, __LINE__, "%s: fused and composed differ by %.3g (largest value %.3g)", names[k], gap,
                         scale);
            ok = 0;
        }
        free(got[0][k]), free(got[1][k]);
    }
    ct_tape_free(tape);
    ct_tensor_free(x), ct_tensor_free(w1), ct_tensor_free(w2);
    CHECK(ok);
}

/* The example itself runs: gradient check, comparison, tape, training that lowers the error. */
CT_TEST(custom_op, example_runs) {
    char exe[1100], cmd[1200];
    static char out[1 << 14];
    if (!ct_test_example_path("custom_op", exe, sizeof exe))
        CT_SKIP("examples not built next to the tests (make builds them)");
    snprintf(cmd, sizeof cmd, "'%s' --steps 100", exe);
    int status = ct_test_run_capture(cmd, out, sizeof out);
    CHECK(status == 0, "exit %d: %s", status, out);
    CHECK(strstr(out, "1. gradient check of swiglu") && strstr(out, ": ok") && strstr(out, "   0 swiglu ") &&
              strstr(out, "4. the student's mean squared error"), "%s", out);
}
