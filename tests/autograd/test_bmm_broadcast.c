/* tests/autograd/test_bmm_broadcast.c — ct_bmm with a batch of 1 against a 2-D or batched operand: the
 * batch of 1 broadcasts (ops.h), forward and backward, checked against the same product composed
 * from ct_matmul per batch (values and gradients) and by finite differences (float64). */
#include "../test.h"

#include <string.h>

static void fill(ct_tensor *t, double seed) {
    for (size_t k = 0; k < t->size; k++) t->data[k] = (ct_real)sin(seed + 0.7 * (double)k);
}

/* One case: a and b shapes (b may be 2-D), transposes. The composed form slices each batch of the
 * batched side, multiplies with ct_matmul_t and concatenates; a side with batch 1 is used for every
 * batch, so its gradient is the sum over the batch. */
typedef struct {
    ct_shape a, b, out;
    int ta, tb;
} bmm_case;

static ct_tensor *as_matrix(ct_tape *t, ct_tensor *x, int i, int batch) {
    const int r = x->shape[x->ndim - 2], c = x->shape[x->ndim - 1];
    if (x->ndim == 2) return x;
    ct_tensor *flat = ct_reshape(t, x, CT_SHAPE(-1, r, c));
    if (flat->shape[0] == 1 || batch == 1) return ct_reshape(t, ct_slice(t, flat, 0, 0, 1), CT_SHAPE(r, c));
    return ct_reshape(t, ct_slice(t, flat, 0, i, i + 1), CT_SHAPE(r, c));
}

static void run_case(const bmm_case *c, int *failed, char *why, size_t len) {
    ct_tape *tape = ct_tape_new(), *tape2 = ct_tape_new(); /* bmm, and the composed form */
    ct_tensor *a = ct_tape_zeros(tape, c->a), *b = ct_tape_zeros(tape, c->b);
    ct_tensor *a2 = ct_tape_zeros(tape2, c->a), *b2 = ct_tape_zeros(tape2, c->b);
    fill(a, 0.3), fill(b, 1.1);
    memcpy(a2->data, a->data, a->size * sizeof(ct_real));
    memcpy(b2->data, b->data, b->size * sizeof(ct_real));
    ct_tape_requires_grad(tape, a), ct_tape_requires_grad(tape, b);
    ct_tape_requires_grad(tape2, a2), ct_tape_requires_grad(tape2, b2);

    ct_tensor *y = ct_bmm_t(tape, a, c->ta, b, c->tb);
    int same = y->ndim == c->out.ndim;
    for (int d = 0; same && d < y->ndim; d++) same = y->shape[d] == c->out.d[d];
    if (!same) {
        snprintf(why, len, "output %s", ct_shape_str(ct_tensor_shape(y), (char[64]){0}, 64));
        *failed = 1;
        ct_tape_free(tape), ct_tape_free(tape2);
        return;
    }
    size_t batch = 1;
    for (int d = 0; d < y->ndim - 2; d++) batch *= (size_t)y->shape[d];
    ct_tensor *parts[8];
    for (size_t i = 0; i < batch; i++) {
        ct_tensor *m = ct_matmul_t(tape2, as_matrix(tape2, a2, (int)i, (int)batch), c->ta,
                                   as_matrix(tape2, b2, (int)i, (int)batch), c->tb);
        parts[i] = ct_reshape(tape2, m, CT_SHAPE(1, m->shape[0], m->shape[1]));
    }
    ct_tensor *composed = ct_reshape(tape2, ct_concat(tape2, parts, (int)batch, 0), ct_tensor_shape(y));

    ct_real cot[256];
    for (size_t k = 0; k < y->size; k++) cot[k] = (ct_real)cos(0.37 * (double)k);
    ct_backward_with(tape, y, cot);
    ct_backward_with(tape2, composed, cot);
    for (size_t k = 0; k < y->size && !*failed; k++)
        if (fabs(y->data[k] - composed->data[k]) > 1e-5) snprintf(why, len, "y[%zu] %g vs %g", k,
                                                                   (double)y->data[k], (double)composed->data[k]),
                                                          *failed = 1;
    for (size_t k = 0; k < a->size && !*failed; k++)
        if (fabs(a->grad[k] - a2->grad[k]) > 1e-5)
            snprintf(why, len, "da[%zu] %g vs %g", k, (double)a->grad[k], (double)a2->grad[k]), *failed = 1;
    for (size_t k = 0; k < b->size && !*failed; k++)
        if (fabs(b->grad[k] - b2->grad[k]) > 1e-5)
            snprintf(why, len, "db[%zu] %g vs %g", k, (double)b->grad[k], (double)b2->grad[k]), *failed = 1;
    ct_tape_free(tape), ct_tape_free(tape2);
}

static const bmm_case cases[] = {
    {CT_SHAPE(1, 3, 4), CT_SHAPE(4, 5), CT_SHAPE(1, 3, 5), 0, 0},          /* the case */
    {CT_SHAPE(3, 4), CT_SHAPE(1, 4, 5), CT_SHAPE(1, 3, 5), 0, 0},
    {CT_SHAPE(1, 1, 3, 4), CT_SHAPE(4, 5), CT_SHAPE(1, 1, 3, 5), 0, 0},
    {CT_SHAPE(1, 4, 3), CT_SHAPE(5, 4), CT_SHAPE(1, 3, 5), 1, 1},          /* transposed */
    {CT_SHAPE(1, 3, 4), CT_SHAPE(3, 4, 5), CT_SHAPE(3, 3, 5), 0, 0},       /* dA summed over 3 */
    {CT_SHAPE(2, 3, 4), CT_SHAPE(1, 5, 4), CT_SHAPE(2, 3, 5), 0, 1},       /* dB summed over 2 */
    {CT_SHAPE(1, 1, 3, 4), CT_SHAPE(3, 4, 5), CT_SHAPE(1, 3, 3, 5), 0, 0}, /* NumPy: (1, 3, 3, 5) */
};

CT_TEST(ops, bmm_batch_of_one_broadcasts_as_composed_matmuls) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int failed = 0;
        char why[256] = "";
        run_case(&cases[i], &failed, why, sizeof why);
        CHECK(!failed, "case %zu: %s", i, why);
    }
}

static void same_batch_other_dims(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_bmm(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3, 3, 4)), ct_tape_zeros(tape, CT_SHAPE(6, 4, 5)));
}

CT_TEST(ops, bmm_equal_batches_need_equal_dims) {
    char got[512];
    CHECK(ct_test_expect_fatal(same_batch_other_dims, NULL, "ct_bmm: batch dimensions differ: (2, 3, 3, 4) and (6, 4, 5)",
                               got, sizeof got), "%s", got);
}

/* ---- gradient checks (float64) ---- */
static ct_tensor *f_bmm(ct_tape *t, ct_tensor *const *in, void *ctx) {
    const bmm_case *c = ctx;
    return ct_bmm_t(t, in[0], c->ta, in[1], c->tb);
}

CT_TEST(gradcheck, bmm_batch_of_one_broadcasts) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#endif
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_tensor *in[2] = {ct_tensor_new_grad(cases[i].a), ct_tensor_new_grad(cases[i].b)};
        fill(in[0], 0.5 + (double)i), fill(in[1], 2.0 - (double)i);
        ct_gradcheck_result r = ct_gradcheck(f_bmm, (void *)&cases[i], in, 2, CT_GRADCHECK());
        ct_tensor_free(in[0]), ct_tensor_free(in[1]);
        char line[256];
        ct_gradcheck_describe(&r, line, sizeof line);
        CHECK(r.passed, "case %zu: %s", i, line);
    }
}
