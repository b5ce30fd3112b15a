/* tests/autograd/test_gradcheck_report.c — what ct_gradcheck_describe says about a check that passed. */
#include "../test.h"

#include <string.h>

/* ---- gradient-check reports --------------------------------------------------------------- */

/* y = x³: at x = 0 the analytic gradient is 0 and the central difference h², as small as atol
 * allows, so no relative error means anything there. */
static ct_tensor *cube(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    (void)ctx;
    return ct_mul(tape, ct_mul(tape, in[0], in[0]), in[0]);
}

CT_TEST(gradcheck_report, zero_gradient_reports_abs_only) {
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(3));
    ct_gradcheck_result r = ct_gradcheck(cube, NULL, &x, 1, CT_GRADCHECK());
    char line[256];
    ct_gradcheck_describe(&r, line, sizeof line);
    x->data[0] = 1.5f, x->data[1] = -2, x->data[2] = 3;
    ct_gradcheck_result away = ct_gradcheck(cube, NULL, &x, 1, CT_GRADCHECK());
    char line_away[256];
    ct_gradcheck_describe(&away, line_away, sizeof line_away);
    ct_tensor_free(x);
    CHECK(r.passed && away.passed, "%s / %s", line, line_away);
    CHECK(strstr(line, "abs only") && !strstr(line, "rel "), "%s", line);
    CHECK(strstr(line_away, "rel ") && !strstr(line_away, "abs only"), "%s", line_away);
    CHECK(away.max_rel_err >= 0 && away.max_rel_err < 1e-2, "%s", line_away);
}

/* y = 2x with a backward that assigns dx = 2·dy instead of adding: the second backward leaves the
 * gradient as it was, and the report names the rule that was broken (+=), not only a symptom. */
static void assigning_backward(ct_tape *tape, ct_node *nd) {
    ct_real *gx = ct_grad_of(tape, nd->in[0]);
    for (size_t i = 0; i < nd->out->size; i++) gx[i] = 2 * nd->out->grad[i];
}
static const ct_op assigning_op = {"assigning_double", "y = 2x; dx = 2dy (assigned)", assigning_backward};
static ct_tensor *assigning_double(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    (void)ctx;
    ct_node *nd;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(in[0]), &assigning_op, in, 1, &nd);
    for (size_t i = 0; i < y->size; i++) y->data[i] = 2 * in[0]->data[i];
    return y;
}

CT_TEST(gradcheck_report, an_assigning_backward_is_named) {
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(3));
    ct_tensor_fill(x, 1);
    ct_gradcheck_result r = ct_gradcheck(assigning_double, NULL, &x, 1, CT_GRADCHECK());
    char line[320];
    ct_gradcheck_describe(&r, line, sizeof line);
    ct_tensor_free(x);
    CHECK(!r.passed && !r.repeat_ok && strstr(line, "second backward") && strstr(line, "(+=)"), "%s", line);
}
