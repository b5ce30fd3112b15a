/* tests/autograd/test_reference.c — the plain reference forms of autograd/reference.h against the fast
 * tape ops: on random inputs, the forward values and the gradients ct_backward_with leaves for a random
 * cotangent, for every pair. Run in the float32 suite (group reference) and the float64 one (group
 * gradcheck), with the tolerance of each precision. */
#include "../test.h"
#include "../../autograd/reference.h"

#include <stdlib.h>
#include <string.h>

/* Largest |fast − reference| over the largest |reference| of each array: rounding only. */
#ifdef CT_PRECISION_64
#define REF_TOL 1e-10
#else
#define REF_TOL 1e-5
#endif

/* One comparison: the tensors and buffers it made (freed at the end) and its worst error. */
typedef struct {
    ct_tape *tape;
    ct_rng rng;
    ct_tensor *tensors[8];
    ct_real *bufs[16];
    int n_tensors, n_bufs;
    double err;
    const char *worst; /* which array */
} ref_case;

static void case_begin(ref_case *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->tape = ct_tape_new();
    ct_rng_seed(&c->rng, seed);
}

/* A heap tensor with a gradient, N(0, scale²). */
static ct_tensor *rnd(ref_case *c, ct_shape shape, double scale) {
    ct_tensor *t = ct_tensor_new_grad(shape);
    ct_tensor_fill_normal(t, &c->rng, 0, scale);
    return c->tensors[c->n_tensors++] = t;
}

/* A zeroed buffer of n values. */
static ct_real *buf(ref_case *c, size_t n) { return c->bufs[c->n_bufs++] = calloc(n ? n : 1, sizeof(ct_real)); }

/* A random cotangent for y, and the fast op's backward with it; returns the cotangent. */
static ct_real *backward(ref_case *c, ct_tensor *y) {
    ct_real *cot = buf(c, y->size);
    for (size_t i = 0; i < y->size; i++) cot[i] = (ct_real)ct_rng_normal(&c->rng, 0, 1);
    ct_backward_with(c->tape, y, cot);
    return cot;
}

static void cmp(ref_case *c, const char *what, const ct_real *fast, const ct_real *ref, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs((double)ref[i]));
        const double d = fabs((double)fast[i] - (double)ref[i]);
        worst = isnan(d) ? INFINITY : fmax(worst, d);
    }
    const double e = worst / (scale > 0 ? scale : 1);
    if (e >= c->err) c->err = e, c->worst = what;
}

static double case_end(ref_case *c) {
    for (int i = 0; i < c->n_tensors; i++) ct_tensor_free(c->tensors[i]);
    for (int i = 0; i < c->n_bufs; i++) free(c->bufs[i]);
    ct_tape_free(c->tape);
    return c->err;
}

static void matmul_case(ref_case *c) {
    enum { M = 5, K = 7, N = 4 };
    ct_tensor *a = rnd(c, CT_SHAPE(M, K), 1), *b = rnd(c, CT_SHAPE(K, N), 1);
    ct_tensor *y = ct_matmul(c->tape, a, b);
    ct_real *cot = backward(c, y), *out = buf(c, M * N), *da = buf(c, M * K), *db = buf(c, K * N);
    ct_ref_matmul_forward(out, a->data, b->data, M, K, N);
    ct_ref_matmul_backward(da, db, cot, a->data, b->data, M, K, N);
    cmp(c, "out", y->data, out, M * N), cmp(c, "da", a->grad, da, M * K), cmp(c, "db", b->grad, db, K * N);
}

/* a (3, 1, 4) op b (5, 1) -> (3, 5, 4): both inputs stretched; then a (2, 3, 4) op b (4). */
static void binary_case(ref_case *c, int mul, ct_shape sa, ct_shape sb, ct_shape so) {
    ct_tensor *a = rnd(c, sa, 1), *b = rnd(c, sb, 1);
    ct_tensor *y = mul ? ct_mul(c->tape, a, b) : ct_add(c->tape, a, b);
    CHECK(ct_shape_size(ct_tensor_shape(y)) == ct_shape_size(so));
    ct_real *cot = backward(c, y), *out = buf(c, y->size), *da = buf(c, a->size), *db = buf(c, b->size);
    if (mul) {
        ct_ref_mul_forward(out, a->data, b->data, sa, sb, so);
        ct_ref_mul_backward(da, db, cot, a->data, b->data, sa, sb, so);
    } else {
        ct_ref_add_forward(out, a->data, b->data, sa, sb, so);
        ct_ref_add_backward(da, db, cot, sa, sb, so);
    }
    cmp(c, "out", y->data, out, y->size), cmp(c, "da", a->grad, da, a->size), cmp(c, "db", b->grad, db, b->size);
}
static void add_case(ref_case *c) { binary_case(c, 0, CT_SHAPE(3, 1, 4), CT_SHAPE(5, 1), CT_SHAPE(3, 5, 4)); }
static void mul_case(ref_case *c) { binary_case(c, 1, CT_SHAPE(3, 1, 4), CT_SHAPE(5, 1), CT_SHAPE(3, 5, 4)); }
static void add_row_case(ref_case *c) { binary_case(c, 0, CT_SHAPE(2, 3, 4), CT_SHAPE(4), CT_SHAPE(2, 3, 4)); }
static void mul_row_case(ref_case *c) { binary_case(c, 1, CT_SHAPE(2, 3, 4), CT_SHAPE(4), CT_SHAPE(2, 3, 4)); }

/* Element-wise: 0 relu, 1 sigmoid, 2 tanh, 3 gelu; 101 values in N(0, 2²). */
static void unary_case(ref_case *c, int which) {
    enum { N = 101 };
    ct_tensor *x = rnd(c, CT_SHAPE(N), 2);
    ct_tensor *y = which == 0 ? ct_relu(c->tape, x)
                   : which == 1 ? ct_sigmoid(c->tape, x)
                   : which == 2 ? ct_tanh(c->tape, x)
                                : ct_gelu(c->tape, x);
    ct_real *cot = backward(c, y), *out = buf(c, N), *dx = buf(c, N);
    switch (which) {
    case 0: ct_ref_relu_forward(out, x->data, N), ct_ref_relu_backward(dx, cot, x->data, N); break;
    case 1: ct_ref_sigmoid_forward(out, x->data, N), ct_ref_sigmoid_backward(dx, cot, out, N); break;
    case 2: ct_ref_tanh_forward(out, x->data, N), ct_ref_tanh_backward(dx, cot, out, N); break;
    default: ct_ref_gelu_forward(out, x->data, N), ct_ref_gelu_backward(dx, cot, x->data, N); break;
    }
    cmp(c, "out", y->data, out, N), cmp(c, "dx", x->grad, dx, N);
}
static void relu_case(ref_case *c) { unary_case(c, 0); }
static void sigmoid_case(ref_case *c) { unary_case(c, 1); }
static void tanh_case(ref_case *c) { unary_case(c, 2); }
static void gelu_case(ref_case *c) { unary_case(c, 3); }

/* x (3, 4, 5): sum along axis 1 (outer 3, n 4, inner 5), mean along axis 0 (1, 3, 20), sum of all. */
static void reduce_case(ref_case *c, int mean, int axis) {
    ct_tensor *x = rnd(c, CT_SHAPE(3, 4, 5), 1);
    const int outer = axis == 1 ? 3 : 1, n = axis == 1 ? 4 : axis == 0 ? 3 : 60, inner = axis == 1 ? 5 : axis == 0 ? 20 : 1;
    ct_tensor *y = axis < 0 ? ct_sum_all(c->tape, x) : mean ? ct_mean(c->tape, x, axis, 0) : ct_sum(c->tape, x, axis, 0);
    ct_real *cot = backward(c, y), *out = buf(c, y->size), *dx = buf(c, x->size);
    if (mean) ct_ref_mean_forward(out, x->data, outer, n, inner), ct_ref_mean_backward(dx, cot, outer, n, inner);
    else ct_ref_sum_forward(out, x->data, outer, n, inner), ct_ref_sum_backward(dx, cot, outer, n, inner);
    cmp(c, "out", y->data, out, y->size), cmp(c, "dx", x->grad, dx, x->size);
}
static void sum_case(ref_case *c) { reduce_case(c, 0, 1); }
static void mean_case(ref_case *c) { reduce_case(c, 1, 0); }
static void sum_all_case(ref_case *c) { reduce_case(c, 0, -1); }

/* x (4, 6) in N(0, 3²) along the last axis. */
static void softmax_case_with(ref_case *c, int log) {
    ct_tensor *x = rnd(c, CT_SHAPE(4, 6), 3);
    ct_tensor *y = log ? ct_log_softmax(c->tape, x, -1) : ct_softmax(c->tape, x, -1);
    ct_real *cot = backward(c, y), *out = buf(c, 24), *dx = buf(c, 24);
    if (log) ct_ref_log_softmax_forward(out, x->data, 4, 6), ct_ref_log_softmax_backward(dx, cot, out, 4, 6);
    else ct_ref_softmax_forward(out, x->data, 4, 6), ct_ref_softmax_backward(dx, cot, out, 4, 6);
    cmp(c, "out", y->data, out, 24), cmp(c, "dx", x->grad, dx, 24);
}
static void softmax_case(ref_case *c) { softmax_case_with(c, 0); }
static void log_softmax_case(ref_case *c) { softmax_case_with(c, 1); }

static void linear_case(ref_case *c) {
    enum { N = 5, I = 6, O = 3 };
    ct_tensor *x = rnd(c, CT_SHAPE(N, I), 1), *w = rnd(c, CT_SHAPE(O, I), 1), *b = rnd(c, CT_SHAPE(O), 1);
    ct_tensor *y = ct_linear(c->tape, x, w, b);
    ct_real *cot = backward(c, y), *out = buf(c, N * O), *dx = buf(c, N * I), *dw = buf(c, O * I), *db = buf(c, O);
    ct_ref_linear_forward(out, x->data, w->data, b->data, N, I, O);
    ct_ref_linear_backward(dx, dw, db, cot, x->data, w->data, N, I, O);
    cmp(c, "out", y->data, out, N * O), cmp(c, "dx", x->grad, dx, N * I), cmp(c, "dw", w->grad, dw, O * I),
        cmp(c, "db", b->grad, db, O);
}

/* x (2, 3, 7, 6), w (4, 3, 3, 3): stride 2 and padding 1 (windows overlap and reach into the padding),
 * then stride 1 without padding. */
static void conv_case_with(ref_case *c, int stride, int pad) {
    const ct_ref_window g = {.N = 2, .C = 3, .H = 7, .W = 6, .kh = 3, .kw = 3, .stride = stride, .pad = pad};
    enum { O = 4 };
    ct_tensor *x = rnd(c, CT_SHAPE(2, 3, 7, 6), 1), *w = rnd(c, CT_SHAPE(O, 3, 3, 3), 0.5), *b = rnd(c, CT_SHAPE(O), 1);
    ct_tensor *y = ct_conv2d(c->tape, x, w, b, CT_CONV2D_OP(.stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad));
    const size_t n_out = (size_t)g.N * O * ct_ref_window_out_h(g) * ct_ref_window_out_w(g);
    CHECK(y->size == n_out, "conv output %zu, reference %zu", y->size, n_out);
    ct_real *cot = backward(c, y), *out = buf(c, n_out), *dx = buf(c, x->size), *dw = buf(c, w->size), *db = buf(c, O);
    ct_ref_conv2d_forward(out, x->data, w->data, b->data, O, g);
    ct_ref_conv2d_backward(dx, dw, db, cot, x->data, w->data, O, g);
    cmp(c, "out", y->data, out, n_out), cmp(c, "dx", x->grad, dx, x->size), cmp(c, "dw", w->grad, dw, w->size),
        cmp(c, "db", b->grad, db, O);
}
static void conv2d_case(ref_case *c) { conv_case_with(c, 2, 1); }
static void conv2d_plain_case(ref_case *c) { conv_case_with(c, 1, 0); }

/* x (2, 3, 6, 7), 3×3 windows, stride 2, padding 1. */
static void pool_case(ref_case *c, int max) {
    const ct_ref_window g = {.N = 2, .C = 3, .H = 6, .W = 7, .kh = 3, .kw = 3, .stride = 2, .pad = 1};
    ct_tensor *x = rnd(c, CT_SHAPE(2, 3, 6, 7), 1);
    const ct_pool2d_opts p = CT_POOL2D(.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1);
    ct_tensor *y = max ? ct_max_pool2d(c->tape, x, p) : ct_avg_pool2d(c->tape, x, p);
    const size_t n_out = (size_t)g.N * g.C * ct_ref_window_out_h(g) * ct_ref_window_out_w(g);
    CHECK(y->size == n_out, "pool output %zu, reference %zu", y->size, n_out);
    ct_real *cot = backward(c, y), *out = buf(c, n_out), *dx = buf(c, x->size);
    if (max) ct_ref_max_pool2d_forward(out, x->data, g), ct_ref_max_pool2d_backward(dx, cot, x->data, g);
    else ct_ref_avg_pool2d_forward(out, x->data, g), ct_ref_avg_pool2d_backward(dx, cot, g);
    cmp(c, "out", y->data, out, n_out), cmp(c, "dx", x->grad, dx, x->size);
}
static void max_pool2d_case(ref_case *c) { pool_case(c, 1); }
static void avg_pool2d_case(ref_case *c) { pool_case(c, 0); }

/* x (4, 10) with mean 3 and scale 2 per row. */
static void layer_norm_case(ref_case *c) {
    enum { N = 4, D = 10 };
    ct_tensor *x = rnd(c, CT_SHAPE(N, D), 2), *gamma = rnd(c, CT_SHAPE(D), 1), *beta = rnd(c, CT_SHAPE(D), 1);
    for (size_t i = 0; i < x->size; i++) x->data[i] += 3;
    ct_tensor *y = ct_layer_norm(c->tape, x, 1, gamma, beta, 1e-5);
    ct_real *cot = backward(c, y), *out = buf(c, N * D), *mean = buf(c, N), *rstd = buf(c, N), *dx = buf(c, N * D),
            *dg = buf(c, D), *db = buf(c, D);
    ct_ref_layer_norm_forward(out, mean, rstd, x->data, gamma->data, beta->data, N, D, 1e-5);
    ct_ref_layer_norm_backward(dx, dg, db, cot, x->data, gamma->data, mean, rstd, N, D);
    cmp(c, "out", y->data, out, N * D), cmp(c, "dx", x->grad, dx, N * D), cmp(c, "dgamma", gamma->grad, dg, D),
        cmp(c, "dbeta", beta->grad, db, D);
}

/* Training mode over (N, C, H, W) = (4, 3, 5, 5), and over (N, C) = (6, 3). */
static void batch_norm_case_with(ref_case *c, ct_shape shape) {
    const int N = shape.d[0], C = shape.d[1], S = shape.ndim == 4 ? shape.d[2] * shape.d[3] : 1;
    ct_tensor *x = rnd(c, shape, 2), *gamma = rnd(c, CT_SHAPE(C), 1), *beta = rnd(c, CT_SHAPE(C), 1);
    ct_tensor *rm = ct_tensor_new(CT_SHAPE(C)), *rv = ct_tensor_new(CT_SHAPE(C));
    c->tensors[c->n_tensors++] = rm, c->tensors[c->n_tensors++] = rv;
    ct_tensor_fill(rv, 1);
    ct_tensor *y = ct_batch_norm(c->tape, x, gamma, beta, rm, rv, 1, 0.1, 1e-5);
    ct_real *cot = backward(c, y), *out = buf(c, x->size), *mean = buf(c, C), *rstd = buf(c, C), *dx = buf(c, x->size),
            *dg = buf(c, C), *db = buf(c, C);
    ct_ref_batch_norm_forward(out, mean, rstd, x->data, gamma->data, beta->data, N, C, S, 1e-5);
    ct_ref_batch_norm_backward(dx, dg, db, cot, x->data, gamma->data, mean, rstd, N, C, S);
    cmp(c, "out", y->data, out, x->size), cmp(c, "dx", x->grad, dx, x->size), cmp(c, "dgamma", gamma->grad, dg, C),
        cmp(c, "dbeta", beta->grad, db, C);
}
static void batch_norm_case(ref_case *c) { batch_norm_case_with(c, CT_SHAPE(4, 3, 5, 5)); }
static void batch_norm_2d_case(ref_case *c) { batch_norm_case_with(c, CT_SHAPE(6, 3)); }

static const struct {
    const char *name;
    void (*run)(ref_case *c);
} cases[] = {
    {"matmul", matmul_case},         {"add (3,1,4)+(5,1)", add_case},   {"mul (3,1,4)·(5,1)", mul_case},
    {"add (2,3,4)+(4)", add_row_case}, {"mul (2,3,4)·(4)", mul_row_case}, {"relu", relu_case},
    {"sigmoid", sigmoid_case},       {"tanh", tanh_case},               {"gelu", gelu_case},
    {"sum axis 1", sum_case},        {"mean axis 0", mean_case},        {"sum_all", sum_all_case},
    {"softmax", softmax_case},       {"log_softmax", log_softmax_case}, {"linear", linear_case},
    {"conv2d stride 2 pad 1", conv2d_case}, {"conv2d", conv2d_plain_case}, {"max_pool2d", max_pool2d_case},
    {"avg_pool2d", avg_pool2d_case}, {"layer_norm", layer_norm_case},   {"batch_norm (N,C,H,W)", batch_norm_case},
    {"batch_norm (N,C)", batch_norm_2d_case},
};

static void check_every_reference(void) {
    double worst = 0;
    const char *worst_name = "";
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ref_case c;
        case_begin(&c, 100 + k);
        cases[k].run(&c);
        const char *array = c.worst;
        const double err = case_end(&c);
        if (ct_test_stopped()) return;
        CHECK(err <= REF_TOL, "%s: reference and fast op differ in %s by %.3g of its largest value (tolerance %.0e)",
              cases[k].name, array ? array : "?", err, REF_TOL);
        if (err >= worst) worst = err, worst_name = cases[k].name;
    }
    ct_test_note("%zu ops, worst %.2g (%s)", sizeof cases / sizeof cases[0], worst, worst_name);
}

CT_TEST(reference, plain_forms_match_the_fast_ops) { check_every_reference(); } /* float32: make test-f32 */
CT_TEST(gradcheck, reference_forms_match_the_fast_ops) { check_every_reference(); } /* float64: make test-f64 */

/* The broadcast index map on its own: (3, 1, 4) inside (3, 5, 4), and a scalar-like (1,). */
CT_TEST(reference, broadcast_index) {
    const ct_shape out = CT_SHAPE(3, 5, 4);
    /* element (2, 3, 1) is flat 2·20 + 3·4 + 1 = 53; in (3, 1, 4) it is (2, 0, 1) = 9; in (5, 1) (3, 0) = 3 */
    CHECK(ct_ref_broadcast_index(out, CT_SHAPE(3, 1, 4), 53) == 9);
    CHECK(ct_ref_broadcast_index(out, CT_SHAPE(5, 1), 53) == 3);
    CHECK(ct_ref_broadcast_index(out, CT_SHAPE(1), 53) == 0);
    CHECK(ct_ref_broadcast_index(out, out, 53) == 53);
}
