/* tests/test_norm.c — layer norm, batch norm, dropout and embedding: the ops and their layers.
 * Gradient checks (group gradcheck, float64 build), PyTorch reference values and gradients
 * (tests/reference/norm_ref.h), dropout statistics, errors. */
#include "test.h"

#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */
/* A heap tensor with a grad buffer, uniform in [lo, hi] from a fixed seed. */
__attribute__((unused)) static ct_tensor *random_grad_tensor(ct_shape shape, uint64_t seed, double lo, double hi) {
    ct_tensor *t = ct_tensor_new_grad(shape);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    ct_tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}

__attribute__((unused)) static void free_all(ct_tensor **ts, int n) {
    for (int i = 0; i < n; i++) ct_tensor_free(ts[i]);
}

#ifdef CT_PRECISION_64
/* Runs ct_gradcheck and fails the test with its description when it does not pass. */
#define GRADCHECK(fn, ctx, inputs, n)                                                          \
    do {                                                                                       \
        ct_gradcheck_result r_ = ct_gradcheck(fn, ctx, inputs, n, CT_GRADCHECK());             \
        char msg_[256];                                                                        \
        ct_gradcheck_describe(&r_, msg_, sizeof msg_);                                         \
        CHECK(r_.passed && r_.checked > 0, "%s", msg_);                                        \
        ct_test_note("%s", msg_);                                                              \
    } while (0)
#endif

/* ---- layer_norm: gradient checks ----------------------------------------------------------- */
typedef struct {
    int norm_dims;
    double eps;
} ln_ctx;

#ifdef CT_PRECISION_64

static ct_tensor *ln_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const ln_ctx *c = ctx;
    return ct_layer_norm(tape, in[0], c->norm_dims, in[1], in[2], c->eps);
}
static ct_tensor *ln_plain_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const ln_ctx *c = ctx;
    return ct_layer_norm(tape, in[0], c->norm_dims, NULL, NULL, c->eps);
}
#endif

/* x of shape xs, normalised over its trailing norm_dims; affine parameters when `affine`. */
static void layer_norm_gradcheck(ct_shape xs, int norm_dims, int affine) {
#ifndef CT_PRECISION_64
    (void)xs, (void)norm_dims, (void)affine;
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_shape ps = {.ndim = norm_dims};
    for (int i = 0; i < norm_dims; i++) ps.d[i] = xs.d[xs.ndim - norm_dims + i];
    ct_tensor *in[3] = {random_grad_tensor(xs, 11, -2, 2), random_grad_tensor(ps, 12, 0.5, 1.5),
                        random_grad_tensor(ps, 13, -1, 1)};
    ln_ctx ctx = {norm_dims, 1e-5};
    if (affine) GRADCHECK(ln_fn, &ctx, in, 3);
    else GRADCHECK(ln_plain_fn, &ctx, in, 1);
    free_all(in, 3);
#endif
}

CT_GRADCHECK_COVERS(layer_norm)
CT_TEST(gradcheck, layer_norm_1_dim_affine) { layer_norm_gradcheck(CT_SHAPE(4, 6), 1, 1); }
CT_TEST(gradcheck, layer_norm_1_dim_plain) { layer_norm_gradcheck(CT_SHAPE(2, 3, 5), 1, 0); }
CT_TEST(gradcheck, layer_norm_2_dims_affine) { layer_norm_gradcheck(CT_SHAPE(3, 2, 4), 2, 1); }
CT_TEST(gradcheck, layer_norm_2_dims_plain) { layer_norm_gradcheck(CT_SHAPE(2, 3, 4), 2, 0); }

/* ---- layer_norm: values ---------------------------------------------------------------------- */
CT_TEST(norm, layer_norm_rows_have_zero_mean_unit_variance) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(5, 64));
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    ct_tensor_fill_normal(x, &rng, 100, 7); /* far from zero: the two-pass variance stays exact */
    ct_tensor *y = ct_layer_norm(tape, x, 1, NULL, NULL, 1e-5);
    for (int i = 0; i < 5; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < 64; j++) m += y->data[i * 64 + j];
        m /= 64;
        for (int j = 0; j < 64; j++) v += (y->data[i * 64 + j] - m) * (y->data[i * 64 + j] - m);
        v /= 64;
        CHECK_NEAR(m, 0, 1e-5, 0);
        CHECK_NEAR(v, 1, 1e-3, 0);
    }
    CHECK(ct_tape_node_count(tape) == 0, "no input requires grad: no node");
    ct_tape_free(tape);
}
