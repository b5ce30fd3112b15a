/* tests/autograd/test_attention_masked.c — ct_attention where every key of some queries is masked (key
 * padding, with and without the causal mask): the output of those rows is NaN as PyTorch 1.13
 * gives it, and the gradients of q, k, v are finite and equal PyTorch's scaled_dot_product_attention
 * (≥ 2.5, _safe_softmax: such a row has probabilities 0), from tests/reference/gen_attention_masked.py. */
#include "../test.h"
#include "../reference/attention_masked_ref.h"

#include <stdlib.h>

/* |got − want| ≤ tol·(1 + max|want|) for every element; 0 with why filled otherwise. */
static int near_all(const char *what, const ct_real *got, const double *want, size_t n, double tol, char *why,
                    size_t len) {
    double scale = 0;
    for (size_t k = 0; k < n; k++) scale = fmax(scale, fabs(want[k]));
    for (size_t k = 0; k < n; k++)
        if (!isfinite(got[k]) || fabs(got[k] - want[k]) > tol * (1 + scale))
            return snprintf(why, len, "%s[%zu] = %g, want %.9g", what, k, (double)got[k], want[k]), 0;
    return 1;
}

CT_TEST(attention, fully_masked_rows_nan_output_and_finite_gradients_as_pytorch) {
#ifdef CT_PRECISION_64
    const double tol = 1e-12;
#else
    const double tol = 2e-6;
#endif
    for (int c = 0; c < MASKED_REF_CASES; c++) {
        const masked_ref_case *r = &masked_ref_cases[c];
        ct_tape *tape = ct_tape_new();
        ct_tensor *q = ct_test_leaf(tape, CT_SHAPE(r->B, r->H, r->L, r->d), r->q);
        ct_tensor *k = ct_test_leaf(tape, CT_SHAPE(r->B, r->H, r->S, r->d), r->k);
        ct_tensor *v = ct_test_leaf(tape, CT_SHAPE(r->B, r->H, r->S, r->dv), r->v);
        ct_tensor *o = ct_attention(tape, q, k, v, r->causal, r->key_padding);
        int dead_rows = 0;
        for (size_t i = 0; i < o->size; i++) {
            if (isnan(r->out[i])) {
                dead_rows++;
                CHECK(isnan(o->data[i]), "%s: out[%zu] = %g, want NaN", r->name, i, (double)o->data[i]);
            } else {
                CHECK_NEAR(o->data[i], r->out[i], tol, tol);
            }
        }
        CHECK(dead_rows > 0, "%s: the case has no fully masked row", r->name);
        ct_real *cot = malloc(o->size * sizeof *cot);
        for (size_t i = 0; i < o->size; i++) cot[i] = (ct_real)r->cotangent[i];
        ct_backward_with(tape, o, cot);
        free(cot);
        char why[256];
        CHECK(near_all("dq", q->grad, r->grad_q, q->size, tol, why, sizeof why), "%s: %s", r->name, why);
        CHECK(near_all("dk", k->grad, r->grad_k, k->size, tol, why, sizeof why), "%s: %s", r->name, why);
        CHECK(near_all("dv", v->grad, r->grad_v, v->size, tol, why, sizeof why), "%s: %s", r->name, why);
        ct_tape_free(tape);
    }
}
