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
