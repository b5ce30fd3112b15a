/* tests/autograd/test_norm.c — layer norm, batch norm, dropout and embedding: the ops and their layers.
 * Gradient checks (group gradcheck, float64 build), PyTorch reference values and gradients
 * (tests/reference/norm_ref.h), dropout statistics, errors. */
#include "../test.h"
#include "../reference/norm_ref.h"

#include <stdlib.h>
#include <string.h>

/* Tolerances for comparing with float64 PyTorch: float32 keeps ~7 digits. */
#ifdef CT_PRECISION_64
#define REF_RTOL 1e-10
#define REF_ATOL 1e-12
#else
#define REF_RTOL 1e-4
#define REF_ATOL 2e-5
#endif

/* ---- gradient-check helpers (float64 build) ---------------------------------------------- */
#ifdef CT_PRECISION_64
/* A heap tensor with a grad buffer, uniform in [lo, hi] from a fixed seed. */
static ct_tensor *random_grad_tensor(ct_shape shape, uint64_t seed, double lo, double hi) {
    ct_tensor *t = ct_tensor_new_grad(shape);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    ct_tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}

static void free_all(ct_tensor **ts, int n) {
    for (int i = 0; i < n; i++) ct_tensor_free(ts[i]);
}

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

/* ---- helpers for the reference tests ------------------------------------------------------- */
static int near(double got, double want, double atol, double rtol) {
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static void copy_in(ct_tensor *t, const double *values) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)values[i];
}

/* The first index where got (ct_real) and want (double) differ beyond the tolerance, or -1. */
static long first_mismatch(const ct_real *got, const double *want, size_t n, double atol, double rtol) {
    for (size_t i = 0; i < n; i++)
        if (!near(got[i], want[i], atol, rtol)) return (long)i;
    return -1;
}

#define CHECK_ARRAY(got, want, n, what, ...)                                                      \
    do {                                                                                          \
        long at_ = first_mismatch(got, want, n, REF_ATOL, REF_RTOL);                              \
        CHECK(at_ < 0, "%s: %s[%ld] = %.10g, PyTorch %.10g", __VA_ARGS__, what, at_,              \
              at_ < 0 ? 0.0 : (double)(got)[at_], at_ < 0 ? 0.0 : (want)[at_]);                  \
    } while (0)

/* ---- batch_norm and layer_norm against PyTorch ------------------------------------------------ */
CT_TEST(norm, matches_pytorch) {
    ct_tape *tape = ct_tape_new();
    for (int k = 0; k < NORM_REF_COUNT; k++) {
        const norm_ref_case *rc = &norm_ref_cases[k];
        ct_tape_reset(tape);
        ct_shape xs = {.ndim = rc->ndim};
        for (int i = 0; i < rc->ndim; i++) xs.d[i] = rc->shape[i];
        ct_shape ps = {.ndim = 1, .d = {rc->shape[1]}}; /* batch norm: (C) */
        if (rc->op == 1) {
            ps.ndim = rc->norm_dims;
            for (int i = 0; i < rc->norm_dims; i++) ps.d[i] = rc->shape[rc->ndim - rc->norm_dims + i];
        }
        ct_tensor *x = ct_test_leaf(tape, xs, rc->x);
        ct_tensor *gamma = rc->affine ? ct_test_leaf(tape, ps, rc->gamma) : NULL;
        ct_tensor *beta = rc->affine ? ct_test_leaf(tape, ps, rc->beta) : NULL;
        ct_tensor *rm = NULL, *rv = NULL, *y;
        if (rc->op == 0) {
            rm = ct_tensor_new(ps);
            rv = ct_tensor_new(ps);
            copy_in(rm, rc->running_mean);
            copy_in(rv, rc->running_var);
            y = ct_batch_norm(tape, x, gamma, beta, rm, rv, rc->training, rc->momentum, rc->eps);
        } else {
            y = ct_layer_norm(tape, x, rc->norm_dims, gamma, beta, rc->eps);
        }
        CHECK_ARRAY(y->data, rc->y, x->size, "y", rc->name);
        ct_real cot[128];
        CHECK(x->size <= 128);
        for (size_t i = 0; i < x->size; i++) cot[i] = (ct_real)rc->cotangent[i];
        ct_backward_with(tape, y, cot);
        CHECK_ARRAY(x->grad, rc->dx, x->size, "dx", rc->name);
        if (rc->affine) {
            CHECK_ARRAY(gamma->grad, rc->dgamma, gamma->size, "dgamma", rc->name);
            CHECK_ARRAY(beta->grad, rc->dbeta, beta->size, "dbeta", rc->name);
        }
        if (rc->op == 0) {
            CHECK_ARRAY(rm->data, rc->running_mean_after, rm->size, "running_mean", rc->name);
            CHECK_ARRAY(rv->data, rc->running_var_after, rv->size, "running_var", rc->name);
            ct_tensor_free(rm);
            ct_tensor_free(rv);
        }
    }
    ct_tape_free(tape);
    ct_test_note("%d cases", NORM_REF_COUNT);
}

/* The layer: nn.BatchNorm2d(3) trained for three steps, then evaluated. */
CT_TEST(norm, batch_norm_layer_three_steps_match_pytorch) {
    ct_model *m = ct_model_new();
    ct_module *bn = ct_batch_norm_new(m, "bn", 3, CT_BATCH_NORM());
    CHECK(strcmp(bn->kind, "batch_norm") == 0 && strcmp(bn->name, "bn") == 0);
    ct_tensor *w = ct_model_find_param(m, "bn.weight"), *b = ct_model_find_param(m, "bn.bias");
    ct_tensor *rm = ct_model_find_buffer(m, "bn.running_mean"), *rv = ct_model_find_buffer(m, "bn.running_var");
    ct_tensor *tracked = ct_model_find_buffer(m, "bn.num_batches_tracked");
    CHECK(w && b && rm && rv && tracked, "parameters and buffers are registered under PyTorch's names");
    CHECK(ct_model_param_count(m) == 2 && ct_model_buffer_count(m) == 3);
    CHECK(tracked->size == 1 && tracked->data[0] == 0);
    for (int c = 0; c < 3; c++)
        CHECK(w->data[c] == 1 && b->data[c] == 0 && rm->data[c] == 0 && rv->data[c] == 1,
              "initial weight 1, bias 0, running mean 0, running var 1");
    copy_in(w, bn_steps_weight);
    copy_in(b, bn_steps_bias);

    ct_tape *tape = ct_tape_new();
    for (int step = 0; step < 3; step++) {
        ct_tape_reset(tape);
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(4, 3, 2, 2));
        copy_in(x, bn_steps_x[step]);
        ct_tensor *y = ct_forward(tape, bn, x);
        ct_backward(tape, ct_sum_all(tape, y));
        CHECK(ct_tape_node_count(tape) == 2 && strcmp(ct_tape_node(tape, 0)->op->name, "batch_norm") == 0);
    }
    CHECK_ARRAY(rm->data, bn_steps_running_mean, 3, "running_mean", "after 3 steps");
    CHECK_ARRAY(rv->data, bn_steps_running_var, 3, "running_var", "after 3 steps");
    CHECK(tracked->data[0] == BN_STEPS_TRACKED, "num_batches_tracked = %g", (double)tracked->data[0]);

    ct_model_train(m, 0);
    ct_tape_reset(tape);
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3, 2, 2));
    copy_in(x, bn_steps_eval_x);
    ct_tensor *y = ct_forward(tape, bn, x);
    CHECK_ARRAY(y->data, bn_steps_eval_y, y->size, "y", "eval");
    CHECK(tracked->data[0] == BN_STEPS_TRACKED, "eval does not count a batch");
    CHECK_ARRAY(rm->data, bn_steps_running_mean, 3, "running_mean", "unchanged by eval");
    CHECK(ct_tape_node_count(tape) == 1 && strcmp(ct_tape_node(tape, 0)->op->name, "batch_norm_eval") == 0,
          "eval records the cheaper node (the affine parameters still want gradients)");
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(norm, embedding_matches_pytorch) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(6, 4));
    copy_in(w, emb_ref_weight);
    int idx[10];
    memcpy(idx, emb_ref_indices, sizeof idx);
    ct_tensor *y = ct_embedding(tape, w, idx, CT_SHAPE(2, 5));
    CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 5 && y->shape[2] == 4, "y is (2, 5, 4)");
    CHECK_ARRAY(y->data, emb_ref_y, y->size, "y", "embedding");
    for (int i = 0; i < 10; i++) idx[i] = 0; /* the backward uses its own copy of the indices */
    ct_real cot[40];
    for (int i = 0; i < 40; i++) cot[i] = (ct_real)emb_ref_cotangent[i];
    ct_backward_with(tape, y, cot);
    CHECK_ARRAY(w->grad, emb_ref_dweight, w->size, "dweight", "embedding");
    ct_tensor_free(w);

    /* the same through the layer */
    ct_model *m = ct_model_new();
    ct_module *emb = ct_embedding_new(m, "tok", 6, 4);
    ct_tensor *weight = ct_model_find_param(m, "tok.weight");
    CHECK(weight && weight->ndim == 2 && weight->shape[0] == 6 && weight->shape[1] == 4);
    copy_in(weight, emb_ref_weight);
    ct_tape_reset(tape);
    y = ct_embedding_forward(tape, emb, emb_ref_indices, CT_SHAPE(2, 5));
    ct_backward_with(tape, y, cot);
    CHECK_ARRAY(weight->grad, emb_ref_dweight, weight->size, "dweight", "embedding layer");
    ct_model_free(m);
    ct_tape_free(tape);
}

/* ---- the paths the small references do not reach: OpenMP and the S = 1 row layout at size --- */
/* Naive float64 batch norm (training) with its backward, for one channel layout (N, C, S). */
static void naive_batch_norm(const ct_real *x, const ct_real *dy, const ct_real *gamma, int N, int C, int S,
                             double eps, double *y, double *dx) {
    for (int c = 0; c < C; c++) {
        double M = (double)N * S, mu = 0, var = 0, sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) mu += x[((size_t)n * C + c) * S + s];
        mu /= M;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                double d = x[((size_t)n * C + c) * S + s] - mu;
                var += d * d;
            }
        var /= M;
        double r = 1 / sqrt(var + eps);
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                size_t i = ((size_t)n * C + c) * S + s;
                double xh = (x[i] - mu) * r;
                y[i] = gamma[c] * xh;
                sdy += dy[i];
                sdyx += dy[i] * xh;
            }
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                size_t i = ((size_t)n * C + c) * S + s;
                double xh = (x[i] - mu) * r;
                dx[i] = gamma[c] * r / M * (M * dy[i] - sdy - xh * sdyx);
            }
    }
}

static void large_batch_norm_case(int N, int C, int H, int W, double *worst) {
    const int S = H * W;
    ct_shape xs = H ? CT_SHAPE(N, C, H, W) : CT_SHAPE(N, C);
    const size_t len = (size_t)N * C * (H ? S : 1);
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, xs), *gamma = ct_tensor_new_grad(CT_SHAPE(C));
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_tensor_fill_normal(x, &rng, 1, 2);
    ct_tensor_fill_uniform(gamma, &rng, 0.5, 1.5);
    ct_tape_requires_grad(tape, x);
    ct_real *dy = malloc(len * sizeof *dy);
    double *y_ref = malloc(len * sizeof *y_ref), *dx_ref = malloc(len * sizeof *dx_ref);
    for (size_t i = 0; i < len; i++) dy[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
    ct_tensor *y = ct_batch_norm(tape, x, gamma, NULL, NULL, NULL, 1, 0.1, 1e-5);
    ct_backward_with(tape, y, dy);
    naive_batch_norm(x->data, dy, gamma->data, N, C, H ? S : 1, 1e-5, y_ref, dx_ref);
    double w = 0;
    for (size_t i = 0; i < len; i++) {
        w = fmax(w, fabs(y->data[i] - y_ref[i]));
        w = fmax(w, fabs(x->grad[i] - dx_ref[i]));
    }
    /* eval, with running statistics: y = γ·(x − rm)·r, dx = γ·r·dy */
    ct_tensor *rm = ct_tensor_new(CT_SHAPE(C)), *rv = ct_tensor_new(CT_SHAPE(C));
    ct_tensor_fill_uniform(rm, &rng, -1, 1);
    ct_tensor_fill_uniform(rv, &rng, 0.5, 2);
    ct_tensor_zero_grad(gamma);
    ct_real *x_keep = malloc(len * sizeof *x_keep);
    memcpy(x_keep, x->data, len * sizeof *x_keep);
    ct_tape_reset(tape); /* a fresh tape: the training node must not run again */
    x = ct_tape_tensor_from(tape, xs, x_keep);
    free(x_keep);
    ct_tape_requires_grad(tape, x);
    y = ct_batch_norm(tape, x, gamma, NULL, rm, rv, 0, 0.1, 1e-5);
    ct_backward_with(tape, y, dy);
    const size_t S_eff = H ? (size_t)S : 1;
    for (size_t i = 0; i < len; i++) {
        const size_t c = (i / S_eff) % (size_t)C;
        const double r = 1 / sqrt((double)rv->data[c] + 1e-5);
        w = fmax(w, fabs(y->data[i] - gamma->data[c] * (x->data[i] - rm->data[c]) * r));
        w = fmax(w, fabs(x->grad[i] - gamma->data[c] * r * dy[i]));
    }
    ct_tensor_free(rm), ct_tensor_free(rv);
    *worst = w;
    free(dy), free(y_ref), free(dx_ref);
    ct_tensor_free(gamma);
    ct_tape_free(tape);
}

CT_TEST(norm, batch_norm_large_matches_naive) {
#ifdef CT_PRECISION_64
    const double tol = 1e-10;
#else
    const double tol = 2e-4;
#endif
    double w1, w2;
    large_batch_norm_case(2048, 64, 0, 0, &w1);  /* (N, C): rows, vectorised over channels */
    large_batch_norm_case(32, 16, 16, 16, &w2);  /* (N, C, H, W): blocks, threads over channels */
    CHECK(w1 <= tol, "(2048, 64): worst |error| %.3g", w1);
    CHECK(w2 <= tol, "(32, 16, 16, 16): worst |error| %.3g", w2);
    ct_test_note("worst |error| %.1e (N, C), %.1e (N, C, H, W)", w1, w2);
}

CT_TEST(norm, layer_norm_large_matches_naive) {
    enum { R = 512, D = 256 };
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(R, D)), *g = ct_tensor_new_grad(CT_SHAPE(D)),
              *b = ct_tensor_new_grad(CT_SHAPE(D));
    ct_rng rng;
    ct_rng_seed(&rng, 6);
    ct_tensor_fill_normal(x, &rng, -3, 2);
    ct_tensor_fill_uniform(g, &rng, 0.5, 1.5);
    ct_tensor_fill_uniform(b, &rng, -1, 1);
    ct_tape_requires_grad(tape, x);
    ct_real *dy = malloc((size_t)R * D * sizeof *dy);
    for (size_t i = 0; i < (size_t)R * D; i++) dy[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
    ct_tensor *y = ct_layer_norm(tape, x, 1, g, b, 1e-5);
    ct_backward_with(tape, y, dy);
    double worst = 0, *dg = calloc(D, sizeof *dg), *db = calloc(D, sizeof *db);
    for (int i = 0; i < R; i++) {
        const ct_real *xi = x->data + (size_t)i * D, *gi = dy + (size_t)i * D;
        double mu = 0, var = 0, sg = 0, sgx = 0;
        for (int j = 0; j < D; j++) mu += xi[j];
        mu /= D;
        for (int j = 0; j < D; j++) var += (xi[j] - mu) * (xi[j] - mu);
        double r = 1 / sqrt(var / D + 1e-5);
        for (int j = 0; j < D; j++) {
            double xh = (xi[j] - mu) * r;
            worst = fmax(worst, fabs(y->data[(size_t)i * D + j] - (g->data[j] * xh + b->data[j])));
            sg += g->data[j] * gi[j];
            sgx += g->data[j] * gi[j] * xh;
            dg[j] += gi[j] * xh;
            db[j] += gi[j];
        }
        for (int j = 0; j < D; j++) {
            double xh = (xi[j] - mu) * r;
            double want = r / D * (D * g->data[j] * gi[j] - sg - xh * sgx);
            worst = fmax(worst, fabs(x->grad[(size_t)i * D + j] - want));
        }
    }
    for (int j = 0; j < D; j++) {
        worst = fmax(worst, fabs(g->grad[j] - dg[j]) / fmax(1, fabs(dg[j])));
        worst = fmax(worst, fabs(b->grad[j] - db[j]) / fmax(1, fabs(db[j])));
    }
    free(dy), free(dg), free(db);
    ct_tensor_free(g), ct_tensor_free(b);
    ct_tape_free(tape);
#ifdef CT_PRECISION_64
    CHECK(worst <= 1e-10, "worst error %.3g", worst);
#else
    CHECK(worst <= 2e-4, "worst error %.3g", worst);
#endif
    ct_test_note("(512, 256): worst error %.1e", worst);
}

/* tinygrad's rule: the fused op matches the same function composed from primitives. */
static ct_tensor *layer_norm_composed(ct_tape *tape, ct_tensor *x, ct_tensor *g, ct_tensor *b, double eps) {
    ct_tensor *xc = ct_sub(tape, x, ct_mean(tape, x, -1, 1));
    ct_tensor *var = ct_mean(tape, ct_mul(tape, xc, xc), -1, 1);
    ct_tensor *r = ct_pow_scalar(tape, ct_add_scalar(tape, var, eps), -0.5);
    return ct_add(tape, ct_mul(tape, ct_mul(tape, xc, r), g), b);
}

CT_TEST(norm, layer_norm_fused_matches_composed) {
    enum { LEN = 60, D = 5 };
    ct_rng rng;
    ct_rng_seed(&rng, 8);
    ct_real x0[LEN], cot[LEN];
    for (int i = 0; i < LEN; i++) x0[i] = (ct_real)ct_rng_normal(&rng, 0.5, 1.5);
    for (int i = 0; i < LEN; i++) cot[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
    ct_tensor *g = ct_tensor_new_grad(CT_SHAPE(D)), *b = ct_tensor_new_grad(CT_SHAPE(D));
    ct_tensor_fill_uniform(g, &rng, 0.5, 1.5);
    ct_tensor_fill_uniform(b, &rng, -1, 1);

    ct_real y[2][LEN], dx[2][LEN], dg[2][D], db[2][D];
    ct_tape *tape = ct_tape_new();
    for (int k = 0; k < 2; k++) {
        ct_tape_reset(tape);
        ct_tensor_zero_grad(g), ct_tensor_zero_grad(b);
        ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(4, 3, D), x0);
        ct_tape_requires_grad(tape, x);
        ct_tensor *out = k == 0 ? ct_layer_norm(tape, x, 1, g, b, 1e-5) : layer_norm_composed(tape, x, g, b, 1e-5);
        ct_backward_with(tape, out, cot);
        memcpy(y[k], out->data, sizeof y[k]);
        memcpy(dx[k], x->grad, sizeof dx[k]);
        memcpy(dg[k], g->grad, sizeof dg[k]);
        memcpy(db[k], b->grad, sizeof db[k]);
    }
    ct_tape_free(tape);
    ct_tensor_free(g), ct_tensor_free(b);
#ifdef CT_PRECISION_64
    const double tol = 1e-12;
#else
    const double tol = 1e-5;
#endif
    for (int i = 0; i < LEN; i++) {
        CHECK_NEAR(y[0][i], y[1][i], tol, tol);
        CHECK_NEAR(dx[0][i], dx[1][i], tol, tol);
    }
    for (int j = 0; j < D; j++) {
        CHECK_NEAR(dg[0][j], dg[1][j], tol, tol);
        CHECK_NEAR(db[0][j], db[1][j], tol, tol);
    }
}

/* ---- batch_norm: gradient checks ------------------------------------------------------------ */
typedef struct {
    int training;
    ct_tensor *running_mean, *running_var; /* updated by every training evaluation: harmless */
} bn_ctx;

#ifdef CT_PRECISION_64
static ct_tensor *bn_affine_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const bn_ctx *c = ctx;
    return ct_batch_norm(tape, in[0], in[1], in[2], c->running_mean, c->running_var, c->training, 0.1, 1e-5);
}
static ct_tensor *bn_plain_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const bn_ctx *c = ctx;
    return ct_batch_norm(tape, in[0], NULL, NULL, c->running_mean, c->running_var, c->training, 0.1, 1e-5);
}
#endif

static void batch_norm_gradcheck(ct_shape xs, int training, int affine) {
#ifndef CT_PRECISION_64
    (void)xs, (void)training, (void)affine;
    CT_SKIP("gradient checks run in the float64 build");
#else
    const int C = xs.d[1];
    ct_tensor *in[3] = {random_grad_tensor(xs, 21, -2, 2), random_grad_tensor(CT_SHAPE(C), 22, 0.5, 1.5),
                        random_grad_tensor(CT_SHAPE(C), 23, -1, 1)};
    bn_ctx ctx = {training, ct_tensor_new(CT_SHAPE(C)), ct_tensor_new(CT_SHAPE(C))};
    ct_rng rng;
    ct_rng_seed(&rng, 24);
    ct_tensor_fill_uniform(ctx.running_mean, &rng, -0.5, 0.5);
    ct_tensor_fill_uniform(ctx.running_var, &rng, 0.5, 1.5);
    if (affine) GRADCHECK(bn_affine_fn, &ctx, in, 3);
    else GRADCHECK(bn_plain_fn, &ctx, in, 1);
    free_all(in, 3);
    ct_tensor_free(ctx.running_mean), ct_tensor_free(ctx.running_var);
#endif
}

CT_GRADCHECK_COVERS(batch_norm)
CT_TEST(gradcheck, batch_norm_1d_train_affine) { batch_norm_gradcheck(CT_SHAPE(6, 3), 1, 1); }
CT_TEST(gradcheck, batch_norm_1d_train_plain) { batch_norm_gradcheck(CT_SHAPE(5, 4), 1, 0); }
CT_TEST(gradcheck, batch_norm_2d_train_affine) { batch_norm_gradcheck(CT_SHAPE(3, 2, 2, 3), 1, 1); }
CT_TEST(gradcheck, batch_norm_2d_train_plain) { batch_norm_gradcheck(CT_SHAPE(2, 3, 3, 2), 1, 0); }
CT_GRADCHECK_COVERS(batch_norm_eval)
CT_TEST(gradcheck, batch_norm_eval_1d_affine) { batch_norm_gradcheck(CT_SHAPE(4, 3), 0, 1); }
CT_TEST(gradcheck, batch_norm_eval_2d_affine) { batch_norm_gradcheck(CT_SHAPE(2, 3, 2, 2), 0, 1); }
CT_TEST(gradcheck, batch_norm_eval_2d_plain) { batch_norm_gradcheck(CT_SHAPE(2, 2, 3, 2), 0, 0); }

/* ---- dropout and embedding: gradient checks --------------------------------------------------- */
typedef struct {
    double p;
    uint64_t seed;
} dropout_ctx;

typedef struct {
    const int *indices;
    ct_shape index_shape;
} embedding_ctx;

#ifdef CT_PRECISION_64
/* Re-seeds its rng on every evaluation, so each one draws the same mask. A product after the
 * dropout makes the function nonlinear, so a mask applied on one side only would show. */
static ct_tensor *dropout_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const dropout_ctx *c = ctx;
    ct_rng rng;
    ct_rng_seed(&rng, c->seed);
    ct_tensor *d = ct_dropout(tape, in[0], c->p, 1, &rng);
    return ct_mul(tape, d, in[0]);
}

static ct_tensor *embedding_fn(ct_tape *tape, ct_tensor *const *in, void *ctx) {
    const embedding_ctx *c = ctx;
    return ct_embedding(tape, in[0], c->indices, c->index_shape);
}
#endif

CT_GRADCHECK_COVERS(dropout)
CT_TEST(gradcheck, dropout_fixed_rng) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    ct_tensor *x = random_grad_tensor(CT_SHAPE(5, 7), 31, -2, 2);
    dropout_ctx ctx = {0.4, 77};
    GRADCHECK(dropout_fn, &ctx, &x, 1);
    ct_tensor_free(x);
#endif
}

CT_GRADCHECK_COVERS(embedding)
CT_TEST(gradcheck, embedding_repeated_indices) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    static const int idx[] = {3, 0, 3, 4, 3, 1}; /* row 3 three times, row 2 never */
    ct_tensor *w = random_grad_tensor(CT_SHAPE(5, 3), 32, -1, 1);
    embedding_ctx ctx = {idx, CT_SHAPE(2, 3)};
    GRADCHECK(embedding_fn, &ctx, &w, 1);
    ct_tensor_free(w);
#endif
}

/* ---- dropout: statistics, determinism, identity ----------------------------------------------- */
CT_TEST(norm, dropout_keeps_one_minus_p_and_preserves_the_mean) {
    enum { LEN = 100000 };
    const double ps[] = {0.1, 0.5, 0.8};
    ct_tape *tape = ct_tape_new();
    char note[256] = "";
    size_t used = 0;
    for (int k = 0; k < 3; k++) {
        const double p = ps[k];
        ct_tape_reset(tape);
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(100, LEN / 100));
        ct_tensor_fill(x, 1);
        ct_rng rng;
        ct_rng_seed(&rng, 100 + (uint64_t)k);
        ct_tensor *y = ct_dropout(tape, x, p, 1, &rng);
        size_t kept = 0;
        double sum = 0;
        const ct_real scale = (ct_real)(1 / (1 - p));
        for (size_t i = 0; i < LEN; i++) {
            CHECK(y->data[i] == 0 || y->data[i] == scale, "p = %g: y[%zu] = %g is neither 0 nor 1/(1 − p)", p, i,
                  (double)y->data[i]);
            kept += y->data[i] != 0;
            sum += y->data[i];
        }
        /* kept ~ Binomial(LEN, 1 − p): within 4.5 standard deviations */
        const double frac = (double)kept / LEN, sd = sqrt(p * (1 - p) / LEN);
        CHECK(fabs(frac - (1 - p)) <= 4.5 * sd, "p = %g: kept fraction %.5f, expected %.5f ± %.5f", p, frac, 1 - p,
              4.5 * sd);
        /* y_i = m_i/(1 − p) has mean 1 and variance p/(1 − p) */
        const double mean = sum / LEN, sd_mean = sqrt(p / (1 - p) / LEN);
        CHECK(fabs(mean - 1) <= 4.5 * sd_mean, "p = %g: mean %.5f, expected 1 ± %.5f", p, mean, 4.5 * sd_mean);
        used += (size_t)snprintf(note + used, sizeof note - used, "%sp=%g kept %.4f", k ? ", " : "", p, frac);
    }
    ct_tape_free(tape);
    ct_test_note("%s", note);
}

CT_TEST(norm, dropout_same_seed_same_mask) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(33, 31)); /* odd size: the last draw is half used */
    ct_tensor_fill(x, 2);
    ct_rng a, b, c;
    ct_rng_seed(&a, 9), ct_rng_seed(&b, 9), ct_rng_seed(&c, 10);
    ct_tensor *ya = ct_dropout(tape, x, 0.5, 1, &a), *yb = ct_dropout(tape, x, 0.5, 1, &b);
    ct_tensor *yc = ct_dropout(tape, x, 0.5, 1, &c);
    CHECK(memcmp(ya->data, yb->data, x->size * sizeof(ct_real)) == 0, "same seed, same mask");
    CHECK(memcmp(ya->data, yc->data, x->size * sizeof(ct_real)) != 0, "another seed, another mask");
    ct_tensor *ya2 = ct_dropout(tape, x, 0.5, 1, &a);
    CHECK(memcmp(ya->data, ya2->data, x->size * sizeof(ct_real)) != 0, "the stream moves on between calls");
    ct_tape_free(tape);
}

CT_TEST(norm, dropout_backward_uses_the_forward_mask) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(8, 16));
    ct_rng rng;
    ct_rng_seed(&rng, 4);
    ct_tensor_fill_uniform(x, &rng, 0.5, 1.5); /* nonzero: y = 0 exactly where dropped */
    ct_tape_requires_grad(tape, x);
    ct_tensor *y = ct_dropout(tape, x, 0.25, 1, &rng);
    CHECK(ct_tape_node_count(tape) == 1 && strcmp(ct_tape_node(tape, 0)->op->name, "dropout") == 0);
    ct_real cot[128];
    for (int i = 0; i < 128; i++) cot[i] = (ct_real)(i % 7 - 3);
    ct_backward_with(tape, y, cot);
    for (int i = 0; i < 128; i++) {
        const double want = y->data[i] != 0 ? cot[i] / 0.75 : 0;
        CHECK_NEAR(x->grad[i], want, 1e-6, 1e-6);
        if (y->data[i] != 0) CHECK_NEAR(y->data[i], x->data[i] / 0.75, 1e-6, 1e-6);
    }
    ct_tape_free(tape);
}

CT_TEST(norm, dropout_eval_and_p0_are_the_identity) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(4, 5));
    ct_tape_requires_grad(tape, x);
    ct_rng rng;
    ct_rng_seed(&rng, 1);
    const ct_rng before = rng;
    CHECK(ct_dropout(tape, x, 0.5, 0, &rng) == x, "eval returns its input");
    CHECK(ct_dropout(tape, x, 0, 1, &rng) == x, "p = 0 returns its input");
    CHECK(ct_dropout(tape, x, 0.5, 0, NULL) == x, "eval needs no rng");
    CHECK(ct_tape_node_count(tape) == 0, "and records no node");
    CHECK(memcmp(&rng, &before, sizeof rng) == 0, "and draws nothing");
    ct_tape_free(tape);
}

CT_TEST(norm, dropout_p1_gives_zeros_without_nan) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(3, 7));
    ct_tensor_fill(x, 3);
    ct_tape_requires_grad(tape, x);
    ct_rng rng;
    ct_rng_seed(&rng, 2);
    ct_tensor *y = ct_dropout(tape, x, 1, 1, &rng);
    ct_backward(tape, ct_sum_all(tape, y));
    for (int i = 0; i < 21; i++) CHECK(y->data[i] == 0 && x->grad[i] == 0, "element %d: y %g, dx %g", i,
                                       (double)y->data[i], (double)x->grad[i]);
    ct_tape_free(tape);
}

CT_TEST(norm, dropout_layer_seeded_from_the_model) {
    ct_tensor *out[2];
    ct_tape *tapes[2];
    for (int k = 0; k < 2; k++) {
        ct_model *m = ct_model_new();
        ct_model_set_seed(m, 123);
        ct_module *d = ct_dropout_new(m, "drop", 0.3);
        CHECK(strcmp(d->kind, "dropout") == 0 && ct_model_param_count(m) == 0);
        tapes[k] = ct_tape_new();
        ct_tensor *x = ct_tape_zeros(tapes[k], CT_SHAPE(10, 10));
        ct_tensor_fill(x, 1);
        out[k] = ct_forward(tapes[k], d, x);
        ct_model_train(m, 0);
        CHECK(ct_forward(tapes[k], d, x) == x, "eval: the identity");
        ct_model_free(m);
    }
    CHECK(memcmp(out[0]->data, out[1]->data, 100 * sizeof(ct_real)) == 0, "same model seed, same mask");
    size_t dropped = 0;
    for (int i = 0; i < 100; i++) dropped += out[0]->data[i] == 0;
    CHECK(dropped > 5 && dropped < 60, "%zu of 100 dropped at p = 0.3", dropped);
    ct_tape_free(tapes[0]), ct_tape_free(tapes[1]);
}

/* ---- batch_norm: nodes, modes, buffers ------------------------------------------------------- */
CT_TEST(norm, batch_norm_nodes_by_mode) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(4, 3));
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    ct_tensor_fill_normal(x, &rng, 0, 1);
    ct_tensor *rm = ct_tensor_new(CT_SHAPE(3)), *rv = ct_tensor_new(CT_SHAPE(3));
    ct_tensor_fill(rv, 1);
    ct_batch_norm(tape, x, NULL, NULL, rm, rv, 0, 0.1, 1e-5);
    CHECK(ct_tape_node_count(tape) == 0, "eval with nothing requiring grad: no node");
    ct_tensor *y = ct_batch_norm(tape, x, NULL, NULL, rm, rv, 0, 0.1, 1e-5);
    for (int i = 0; i < 12; i++) CHECK_NEAR(y->data[i], x->data[i] / sqrt(1 + 1e-5), 1e-6, 1e-6);
    ct_tensor_fill(rm, 0);
    ct_batch_norm(tape, x, NULL, NULL, rm, rv, 1, 0.1, 1e-5);
    CHECK(rm->data[0] != 0, "training updates the running mean even without gradients");
    CHECK(ct_tape_node_count(tape) == 0);
    ct_tape_requires_grad(tape, x);
    ct_batch_norm(tape, x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5);
    CHECK(ct_tape_node_count(tape) == 1 && strcmp(ct_tape_node(tape, 0)->op->name, "batch_norm") == 0,
          "training without running statistics is allowed (track_running_stats=False)");
    ct_batch_norm(tape, x, NULL, NULL, rm, rv, 0, 0.1, 1e-5);
    CHECK(ct_tape_node_count(tape) == 2 && strcmp(ct_tape_node(tape, 1)->op->name, "batch_norm_eval") == 0);
    ct_tensor_free(rm), ct_tensor_free(rv);
    ct_tape_free(tape);
}

CT_TEST(norm, batch_norm_layer_without_affine_and_1d) {
    ct_model *m = ct_model_new();
    ct_module *bn = ct_batch_norm_new(m, "bn1", 5, CT_BATCH_NORM(.affine = 0, .momentum = 0.5));
    CHECK(ct_model_param_count(m) == 0 && ct_model_buffer_count(m) == 3);
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(8, 5));
    ct_rng rng;
    ct_rng_seed(&rng, 3);
    ct_tensor_fill_normal(x, &rng, 2, 1);
    ct_tensor *y = ct_forward(tape, bn, x);
    CHECK(!ct_requires_grad(y), "nothing requires grad");
    ct_tensor *rm = ct_model_find_buffer(m, "bn1.running_mean");
    for (int c = 0; c < 5; c++) {
        double mu = 0;
        for (int n = 0; n < 8; n++) mu += x->data[n * 5 + c];
        CHECK_NEAR(rm->data[c], 0.5 * mu / 8, 1e-5, 1e-5);
    }
    ct_tape_free(tape);
    ct_model_free(m);
}

/* ---- layers: layer norm and embedding ------------------------------------------------------------ */
CT_TEST(norm, layer_norm_layer) {
    ct_model *m = ct_model_new();
    ct_module *ln = ct_layer_norm_new(m, "ln", CT_SHAPE(3, 4), 1e-5);
    ct_tensor *w = ct_model_find_param(m, "ln.weight"), *b = ct_model_find_param(m, "ln.bias");
    CHECK(w && b && w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 4 && strcmp(ln->kind, "layer_norm") == 0);
    for (int i = 0; i < 12; i++) CHECK(w->data[i] == 1 && b->data[i] == 0);
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 3, 4));
    ct_rng rng;
    ct_rng_seed(&rng, 12);
    ct_tensor_fill_normal(x, &rng, 0, 3);
    ct_tensor *y = ct_forward(tape, ln, x);
    ct_tensor *z = ct_layer_norm(tape, x, 2, NULL, NULL, 1e-5);
    CHECK(memcmp(y->data, z->data, 24 * sizeof(ct_real)) == 0, "ones and zeros: the plain normalisation");
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, y, y)));
    CHECK(w->grad[0] != 0, "the weight collects a gradient");
    ct_tape_free(tape);
    ct_model_free(m);
}

CT_TEST(norm, embedding_layer_init_is_standard_normal) {
    ct_model *m = ct_model_new();
    ct_embedding_new(m, "emb", 1000, 50);
    ct_tensor *w = ct_model_find_param(m, "emb.weight");
    double mean = 0, sq = 0;
    for (size_t i = 0; i < w->size; i++) mean += w->data[i], sq += (double)w->data[i] * w->data[i];
    mean /= (double)w->size;
    const double var = sq / (double)w->size - mean * mean;
    CHECK(fabs(mean) < 0.02 && fabs(var - 1) < 0.03, "mean %.4f, variance %.4f", mean, var);
    ct_model_free(m);
}

CT_TEST(norm, embedding_scalar_and_empty_indices) {
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new_grad(CT_SHAPE(3, 2));
    for (int i = 0; i < 6; i++) w->data[i] = (ct_real)i;
    const int two = 2;
    ct_tensor *y = ct_embedding(tape, w, &two, CT_SHAPE_SCALAR);
    CHECK(y->ndim == 1 && y->shape[0] == 2 && y->data[0] == 4 && y->data[1] == 5, "a scalar index gives one row (D,)");
    ct_tensor *e = ct_embedding(tape, w, NULL, CT_SHAPE(0));
    CHECK(e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 2 && e->size == 0);
    ct_tensor_free(w);
    ct_tape_free(tape);
}

/* ---- errors --------------------------------------------------------------------------------------- */
static void bad_embedding_index(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *w = ct_tensor_new(CT_SHAPE(5, 3));
    ct_embedding(tape, w, (int[]){0, 1, 2, 3, 4, 7}, CT_SHAPE(2, 3));
}
static void embedding_via_ct_forward(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *emb = ct_embedding_new(m, "tok", 5, 3);
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, emb, ct_tape_zeros(tape, CT_SHAPE(2)));
}
static void bad_batch_norm_channels(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *g = ct_tensor_new(CT_SHAPE(4));
    ct_batch_norm(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3, 4, 4)), g, NULL, NULL, NULL, 1, 0.1, 1e-5);
}
static void batch_norm_one_value_per_channel(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_batch_norm(tape, ct_tape_zeros(tape, CT_SHAPE(1, 3)), NULL, NULL, NULL, NULL, 1, 0.1, 1e-5);
}
static void batch_norm_layer_wrong_input(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *bn = ct_batch_norm_new(m, "bn", 8, CT_BATCH_NORM());
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, bn, ct_tape_zeros(tape, CT_SHAPE(2, 4, 3, 3)));
}
static void bad_layer_norm_gamma(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *g = ct_tensor_new(CT_SHAPE(3));
    ct_layer_norm(tape, ct_tape_zeros(tape, CT_SHAPE(2, 4)), 1, g, NULL, 1e-5);
}
static void layer_norm_layer_wrong_input(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_module *ln = ct_layer_norm_new(m, "ln1", CT_SHAPE(16), 1e-5);
    ct_tape *tape = ct_tape_new();
    ct_forward(tape, ln, ct_tape_zeros(tape, CT_SHAPE(2, 5, 8)));
}
static void bad_dropout_p(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_rng rng;
    ct_rng_seed(&rng, 1);
    ct_dropout(tape, ct_tape_zeros(tape, CT_SHAPE(2, 3)), 1.5, 1, &rng);
}

CT_TEST(norm, fatal_messages_name_op_shapes_and_values) {
    char got[512];
    CHECK(ct_test_expect_fatal(bad_embedding_index, NULL,
                               "ct_embedding: index 7 at position [1, 2] of indices (2, 3) is outside [0, 5) for weight (5, 3)",
                               got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "test_norm.c") != NULL, "the message points at the caller's line: %s", got);
    CHECK(ct_test_expect_fatal(embedding_via_ct_forward, NULL, "ct_embedding_forward", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "tok") != NULL, "names the module: %s", got);
    CHECK(ct_test_expect_fatal(bad_batch_norm_channels, NULL,
                               "ct_batch_norm: gamma (4,) does not match the 3 channels of input (2, 3, 4, 4)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(batch_norm_one_value_per_channel, NULL,
                               "ct_batch_norm: training needs more than 1 value per channel, got input (1, 3)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(batch_norm_layer_wrong_input, NULL, "bn: batch_norm with 8 channels got input (2, 4, 3, 3)",
                               got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(bad_layer_norm_gamma, NULL,
                               "ct_layer_norm: gamma (3,) does not match the normalised dims (4,) of input (2, 4)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(layer_norm_layer_wrong_input, NULL, "ln1: layer_norm over (16,) got input (2, 5, 8)", got,
                               sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(bad_dropout_p, NULL, "ct_dropout: probability p = 1.5 is outside [0, 1]", got, sizeof got),
          "got: %s", got);
}

/* The mask is counter-based: the same whatever the number of threads that draws it. */
CT_TEST(norm, dropout_mask_independent_of_thread_count) {
    const int threads = ct_get_threads();
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(300, 1001)); /* above the OpenMP threshold, odd size */
    ct_tensor_fill(x, 1);
    ct_tensor *y[2];
    for (int k = 0; k < 2; k++) {
        ct_set_threads(k + 1);
        ct_rng rng;
        ct_rng_seed(&rng, 42);
        y[k] = ct_dropout(tape, x, 0.3, 1, &rng);
    }
    ct_set_threads(threads);
    CHECK(memcmp(y[0]->data, y[1]->data, x->size * sizeof(ct_real)) == 0, "1 and 2 threads draw the same mask");
    ct_tape_free(tape);
}
