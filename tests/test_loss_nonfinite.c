/* tests/test_loss_nonfinite.c — losses at the edge of the floating-point range: large finite
 * logits give the correct (finite where representable) value and gradient. */
#include "test.h"

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
        ct_tensor *mask = ct_add_scalar(tape, ct_neg(tape, ct_one_hot(tape, y, N, C)), 1.0);
        ct_tensor *off = ct_mul(tape, z, mask);
        ct_tensor *per = ct_add(tape, ct_cross_entropy(tape, z, CT_LABELS(y, N), CT_CE(.reduction = CT_REDUCTION_NONE)),
                                ct_mul_scalar(tape, ct_sum(tape, ct_mul(tape, off, off), 1, 0), 1.0 / (C - 1)));
        ct_tensor *composed = r == 0 ? ct_mean_all(tape, per) : ct_sum_all(tape, per);
        CHECK(!isnan(loss->data[0]), "reduction %d: NaN", r);
        CHECK(loss->data[0] == composed->data[0], "reduction %d: %g, composed %g", r, (double)loss->data[0],
              (double)composed->data[0]);
        for (size_t k = 0; k < z->size; k++) CHECK(isfinite(z->grad[k]), "grad[%zu] = %g", k, (double)z->grad[k]);
        CHECK_NEAR(z->grad[3], (r == 0 ? 1.0 / N : 1.0) * 2e30 / (C - 1), 0, 1e-6);
        ct_tape_free(tape);
    }
}
