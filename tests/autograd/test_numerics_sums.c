/* tests/autograd/test_numerics_sums.c — gradient sums over broadcast dimensions, reductions along a
 * non-last axis, and batch/layer norm statistics, at sizes past the OpenMP thresholds, with 1 and
 * 2 threads, against the same sums in double. Float32 sums of 10⁶ values drift by about 1% and
 * differ with the thread count; these check that they no longer do. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* Deterministic values in [lo, hi) that are not short binary fractions. */
static void fill(ct_real *x, size_t n, double lo, double hi, unsigned seed) {
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (ct_real)(lo + (hi - lo) * ((s >> 8) / 16777216.0));
    }
}

/* The largest |got − want| over |want|'s scale (its sum of magnitudes, or 1). */
static double worst_error(const ct_real *got, const double *want, const double *scale, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]) / fmax(scale ? scale[i] : fabs(want[i]), 1e-30);
        if (!(e <= worst)) worst = e; /* NaN counts as worst */
    }
    return worst;
}

#ifdef CT_PRECISION_64
#define SUM_TOL 1e-13
#else
#define SUM_TOL 2e-7 /* one float rounding of the result, plus the products' */
#endif

/* ---- binary ops with a one-value operand ---------------------------------------------------- */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };
static const char *op_names[] = {"add", "sub", "mul", "div"};

static ct_tensor *apply(ct_tape *t, int op, ct_tensor *a, ct_tensor *b) {
    switch (op) {
    case OP_ADD: return ct_add(t, a, b);
    case OP_SUB: return ct_sub(t, a, b);
    case OP_MUL: return ct_mul(t, a, b);
    default: return ct_div(t, a, b);
    }
}

/* ∂(a op b)/∂a and ∂/∂b in double */
static double partial(int op, int which, double a, double b) {
    switch (op) {
    case OP_ADD: return 1;
    case OP_SUB: return which ? -1 : 1;
    case OP_MUL: return which ? a : b;
    default: return which ? -a / (b * b) : 1 / b;
    }
}

CT_TEST(numerics, one_value_operand_gradient_is_the_double_sum_with_any_thread_count) {
    const int before = ct_get_threads();
    const size_t n = 1000000;
    ct_real *c = malloc(n * sizeof *c);
    fill(c, n, 0.05, 0.15, 3);
    for (int op = 0; op < 4; op++)
        for (int side = 0; side < 2; side++) { /* side 0: x op s; side 1: s op x */
            ct_real got[2];
            double want = 0, scale = 0;
            for (int threads = 1; threads <= 2; threads++) {
                ct_set_threads(threads);
                ct_tape *tape = ct_tape_new();
                ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(1000, 1000)), *s = ct_tape_zeros(tape, CT_SHAPE(1));
                fill(x->data, n, 0.5, 1.5, 7);
                s->data[0] = (ct_real)1.25;
                ct_tape_requires_grad(tape, s);
                ct_tensor *y = side ? apply(tape, op, s, x) : apply(tape, op, x, s);
                ct_backward_with(tape, y, c);
                got[threads - 1] = s->grad[0];
                if (threads == 1)
                    for (size_t i = 0; i < n; i++) {
                        const double a = side ? s->data[0] : x->data[i], b = side ? x->data[i] : s->data[0];
                        const double term = (double)c[i] * partial(op, side ? 0 : 1, a, b);
                        want += term, scale += fabs(term);
                    }
                ct_tape_free(tape);
            }
            ct_set_threads(before);
            CHECK(fabs(got[0] - want) <= SUM_TOL * scale, "%s, s %s: ds = %.9g with 1 thread, want %.9g", op_names[op],
                  side ? "first" : "second", (double)got[0], want);
            CHECK(got[0] == got[1], "%s: ds = %.9g with 1 thread, %.9g with 2", op_names[op], (double)got[0],
                  (double)got[1]);
        }
    ct_set_threads(before);
    free(c);
}

/* The example: x − s over 10⁶ elements of x, then sum·0.1: ds = −10⁵ exactly (float32: one
 * rounding of 0.1, 1e-8 relative). */
CT_TEST(numerics, x_minus_one_value_sums_exactly) {
    const int before = ct_get_threads();
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_tape *tape = ct_tape_new();
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(1000000)), *s = ct_tape_zeros(tape, CT_SHAPE(1));
        for (size_t i = 0; i < x->size; i++) x->data[i] = (ct_real)(i % 7) * (ct_real)0.1;
        ct_tape_requires_grad(tape, s);
        ct_backward(tape, ct_mul_scalar(tape, ct_sum_all(tape, ct_sub(tape, x, s)), 0.1));
        const double got = s->grad[0];
        ct_tape_free(tape);
        ct_set_threads(before);
        CHECK_NEAR(got, -100000.0, 0, 1e-7);
    }
}

/* ---- stretched operands ----------------------------------------------------------------------- */
/* y = x op b, x (R, C), b (1, C) or (R, 1) or (1, 1, C) [3-D out]; db against the double sum. */
static int stretched_case(int op, ct_shape xs, ct_shape bs, int threads, ct_real *db_out, double *err, char *why,
                          size_t len) {
    ct_set_threads(threads);
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, xs), *b = ct_tape_zeros(tape, bs);
    fill(x->data, x->size, 0.5, 1.5, 11);
    fill(b->data, b->size, 1.0, 2.0, 13);
    ct_tape_requires_grad(tape, b);
    ct_tensor *y = apply(tape, op, x, b);
    ct_real *c = malloc(y->size * sizeof *c);
    fill(c, y->size, 0.05, 0.15, 17);
    ct_backward_with(tape, y, c);
    /* the double reference: y's element i reads b at the broadcast index */
    double *want = calloc(b->size, sizeof *want), *scale = calloc(b->size, sizeof *scale);
    const int nd = y->ndim;
    for (size_t i = 0; i < y->size; i++) {
        size_t r = i, ib = 0, stride = 1, ix = i;
        for (int d = nd - 1; d >= 0; d--) {
            const size_t idx = r % (size_t)y->shape[d];
            r /= (size_t)y->shape[d];
            const int j = d - (nd - b->ndim);
            const int size = j >= 0 ? b->shape[j] : 1;
            if (size != 1) ib += idx * stride;
            stride *= (size_t)size;
        }
        const double term = (double)c[i] * partial(op, 1, x->data[ix], b->data[ib]);
        want[ib] += term, scale[ib] += fabs(term);
    }
    memcpy(db_out, b->grad, b->size * sizeof *db_out);
    *err = worst_error(b->grad, want, scale, b->size);
    int ok = *err <= SUM_TOL;
    char shape[64];
    if (!ok) snprintf(why, len, "%s, b %s: worst error %.3g of the sum of magnitudes", op_names[op],
                      ct_shape_str(bs, shape, sizeof shape), *err);
    free(want), free(scale), free(c);
    ct_tape_free(tape);
    return ok;
}

CT_TEST(numerics, stretched_operand_gradients_are_double_sums_with_any_thread_count) {
    const int before = ct_get_threads();
    const struct {
        ct_shape x, b;
    } shapes[] = {
        {CT_SHAPE(1000, 1000), CT_SHAPE(1, 1000)},
        {CT_SHAPE(1000, 1000), CT_SHAPE(1000, 1)},
        {CT_SHAPE(1000, 1000), CT_SHAPE(1000)},
        {CT_SHAPE(8, 300, 100), CT_SHAPE(300, 1)},    /* stretched outside and inside */
        {CT_SHAPE(8, 300, 100), CT_SHAPE(8, 1, 100)}, /* stretched in the middle */
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int op = 0; op < 4; op++) {
            const size_t nb = ct_shape_size(shapes[k].b);
            ct_real *one = malloc(nb * sizeof *one), *two = malloc(nb * sizeof *two);
            double e1, e2;
            char why[256] = "";
            const int ok1 = stretched_case(op, shapes[k].x, shapes[k].b, 1, one, &e1, why, sizeof why);
            const int ok2 = ok1 && stretched_case(op, shapes[k].x, shapes[k].b, 2, two, &e2, why, sizeof why);
            ct_set_threads(before);
            const int same = ok2 && !memcmp(one, two, nb * sizeof *one);
            free(one), free(two);
            CHECK(ok1 && ok2, "shape %zu: %s", k, why);
            CHECK(same, "shape %zu, %s: db differs between 1 and 2 threads", k, op_names[op]);
        }
}

/* ---- where with a stretched operand ------------------------------------------------------------ */
CT_TEST(numerics, where_stretched_operand_gradient_is_the_double_sum) {
    const int before = ct_get_threads();
    const int R = 1000, C = 1000;
    ct_real *cond = malloc((size_t)R * C * sizeof *cond), *c = malloc((size_t)R * C * sizeof *c);
    for (size_t i = 0; i < (size_t)R * C; i++) cond[i] = (ct_real)(i % 3 == 0);
    fill(c, (size_t)R * C, 0.05, 0.15, 5);
    double want_s = 0, scale_s = 0, *want_b = calloc(C, sizeof *want_b), *scale_b = calloc(C, sizeof *scale_b);
    for (size_t i = 0; i < (size_t)R * C; i++) {
        if (cond[i] != 0) want_s += c[i], scale_s += fabs(c[i]);
        else want_b[i % C] += c[i], scale_b[i % C] += fabs(c[i]);
    }
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        /* where(cond, a, b) with b (1, C), and where(cond, s, a) with s (1): each on its own tape */
        ct_tape *t1 = ct_tape_new(), *t2 = ct_tape_new();
        ct_tensor *b = ct_tape_zeros(t1, CT_SHAPE(1, C)), *s = ct_tape_zeros(t2, CT_SHAPE(1));
        ct_tape_requires_grad(t1, b), ct_tape_requires_grad(t2, s);
        ct_backward_with(t1, ct_where(t1, ct_tape_tensor_from(t1, CT_SHAPE(R, C), cond), ct_tape_zeros(t1, CT_SHAPE(R, C)), b), c);
        ct_backward_with(t2, ct_where(t2, ct_tape_tensor_from(t2, CT_SHAPE(R, C), cond), s, ct_tape_zeros(t2, CT_SHAPE(R, C))), c);
        const double err_b = worst_error(b->grad, want_b, scale_b, C), got_s = s->grad[0];
        ct_tape_free(t1), ct_tape_free(t2);
        ct_set_threads(before);
        CHECK(err_b <= SUM_TOL, "%d threads: db worst error %.3g", threads, err_b);
        CHECK(fabs(got_s - want_s) <= SUM_TOL * scale_s, "%d threads: ds %.9g, want %.9g", threads, got_s, want_s);
    }
    free(want_b), free(scale_b), free(cond), free(c);
}

/* ---- sum and mean along a non-last axis ------------------------------------------------------ */
CT_TEST(numerics, sum_and_mean_along_axis_0_are_double_sums) {
    const int before = ct_get_threads();
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_tape *tape = ct_tape_new();
        const int R = 4000, C = 300;
        ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(R, C));
        fill(x->data, x->size, 0.9, 1.1, 23);
        ct_tensor *sum = ct_sum(tape, x, 0, 0), *mean = ct_mean(tape, x, 0, 1);
        ct_tensor *x3 = ct_reshape(tape, x, CT_SHAPE(4, 1000, 300)); /* the middle of three axes */
        ct_tensor *mid = ct_sum(tape, x3, 1, 0);
        double *want = calloc(C, sizeof *want), *want_mid = calloc(4 * C, sizeof *want_mid);
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) {
                want[j] += x->data[(size_t)i * C + j];
                want_mid[(i / 1000) * C + j] += x->data[(size_t)i * C + j];
            }
        const double err_sum = worst_error(sum->data, want, NULL, C), err_mid = worst_error(mid->data, want_mid, NULL, 4 * C);
        for (int j = 0; j < C; j++) want[j] /= R;
        const double err_mean = worst_error(mean->data, want, NULL, C);
        free(want), free(want_mid);
        ct_tape_free(tape);
        ct_set_threads(before);
        CHECK(err_sum <= SUM_TOL && err_mean <= SUM_TOL && err_mid <= SUM_TOL,
              "%d threads: sum %.3g, mean %.3g, middle axis %.3g relative error", threads, err_sum, err_mean, err_mid);
    }
}

/* ---- batch norm and layer norm far from zero --------------------------------------------------- */
/* A normalisation over `groups` groups of M values each (element e of group g at index(g, e)), with
 * a per-group or per-element affine γ, β: the forward and every gradient in double. */
typedef struct {
    size_t groups, M;
    size_t (*index)(size_t g, size_t e, const void *dims);
    size_t (*param)(size_t g, size_t e, const void *dims); /* γ, β index */
    const void *dims;
} norm_layout;

static void norm_reference(const norm_layout *L, const ct_real *x, const ct_real *gamma, const ct_real *beta,
                           const ct_real *dy, double eps, double *y, double *dx, double *dgamma, double *dbeta) {
    for (size_t g = 0; g < L->groups; g++) {
        double mu = 0, var = 0, sum_g = 0, sum_gx = 0;
        for (size_t e = 0; e < L->M; e++) mu += x[L->index(g, e, L->dims)];
        mu /= (double)L->M;
        for (size_t e = 0; e < L->M; e++) {
            const double d = x[L->index(g, e, L->dims)] - mu;
            var += d * d;
        }
        const double r = 1 / sqrt(var / (double)L->M + eps);
        for (size_t e = 0; e < L->M; e++) {
            const size_t i = L->index(g, e, L->dims), p = L->param(g, e, L->dims);
            const double xh = (x[i] - mu) * r, gi = (double)gamma[p] * dy[i];
            y[i] = gamma[p] * xh + beta[p];
            sum_g += gi, sum_gx += gi * xh;
            dgamma[p] += dy[i] * xh, dbeta[p] += dy[i];
        }
        for (size_t e = 0; e < L->M; e++) {
            const size_t i = L->index(g, e, L->dims), p = L->param(g, e, L->dims);
            const double xh = (x[i] - mu) * r;
            dx[i] = r / (double)L->M * ((double)L->M * gamma[p] * dy[i] - sum_g - xh * sum_gx);
        }
    }
}

typedef struct {
    size_t N, C, S;
} bn_dims;
static size_t bn_index(size_t g, size_t e, const void *d) {
    const bn_dims *b = d;
    return ((e / b->S) * b->C + g) * b->S + e % b->S; /* channel g, element e = n·S + s */
}
static size_t bn_param(size_t g, size_t e, const void *d) { return (void)e, (void)d, g; }
static size_t ln_index(size_t g, size_t e, const void *d) { return g * *(const size_t *)d + e; }
static size_t ln_param(size_t g, size_t e, const void *d) { return (void)g, (void)d, e; }

/* Runs one norm on x of `shape` far from zero with 1 and 2 threads; worst relative errors of y, dx,
 * dγ, dβ against the double reference into err[4] (the worse of the two thread counts). */
static void norm_case(int layer, ct_shape shape, double offset, double err[4]) {
    const int before = ct_get_threads();
    const size_t n = ct_shape_size(shape);
    bn_dims bd = {(size_t)shape.d[0], (size_t)shape.d[1], 1};
    for (int i = 2; i < shape.ndim; i++) bd.S *= (size_t)shape.d[i];
    size_t D = (size_t)shape.d[shape.ndim - 1];
    const norm_layout L = layer ? (norm_layout){n / D, D, ln_index, ln_param, &D}
                                : (norm_layout){bd.C, bd.N * bd.S, bn_index, bn_param, &bd};
    const size_t np = layer ? D : bd.C;
    double *y = malloc(n * sizeof *y), *dx = malloc(n * sizeof *dx);
    double *dgamma = calloc(np, sizeof *dgamma), *dbeta = calloc(np, sizeof *dbeta);
    for (int k = 0; k < 4; k++) err[k] = 0;
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_tape *tape = ct_tape_new();
        ct_tensor *x = ct_tape_zeros(tape, shape);
        ct_tensor *gamma = ct_tape_zeros(tape, CT_SHAPE((int)np)), *beta = ct_tape_zeros(tape, CT_SHAPE((int)np));
        ct_tensor *c = ct_tape_zeros(tape, shape);
        fill(x->data, n, offset - 2, offset + 2, 31);
        fill(gamma->data, np, 0.5, 1.5, 37);
        fill(beta->data, np, -0.5, 0.5, 41);
        fill(c->data, n, -1, 1, 43);
        ct_tape_requires_grad(tape, x), ct_tape_requires_grad(tape, gamma), ct_tape_requires_grad(tape, beta);
        ct_tensor *out = layer ? ct_layer_norm(tape, x, 1, gamma, beta, 1e-5)
                               : ct_batch_norm(tape, x, gamma, beta, NULL, NULL, 1, 0.1, 1e-5);
        ct_backward_with(tape, out, c->data);
        if (threads == 1) norm_reference(&L, x->data, gamma->data, beta->data, c->data, 1e-5, y, dx, dgamma, dbeta);
        /* errors relative to each result's largest magnitude */
        const struct {
            const ct_real *got;
            const double *want;
            size_t n;
        } parts[4] = {{out->data, y, n}, {x->grad, dx, n}, {gamma->grad, dgamma, np}, {beta->grad, dbeta, np}};
        for (int k = 0; k < 4; k++) {
            double big = 0;
            for (size_t i = 0; i < parts[k].n; i++) big = fmax(big, fabs(parts[k].want[i]));
            for (size_t i = 0; i < parts[k].n; i++) {
                const double e = fabs(parts[k].got[i] - parts[k].want[i]) / big;
                if (!(e <= err[k])) err[k] = e;
            }
        }
        ct_tape_free(tape);
    }
    ct_set_threads(before);
    free(y), free(dx), free(dgamma), free(dbeta);
}

#ifdef CT_PRECISION_64
#define NORM_TOL 1e-12
#else
#define NORM_TOL 4e-6
#endif

CT_TEST(numerics, layer_norm_far_from_zero_matches_double) {
    const double offsets[] = {0, 1e3, 1e4};
    for (int o = 0; o < 3; o++) {
        double err[4];
        norm_case(1, CT_SHAPE(256, 512), offsets[o], err);
        CHECK(err[0] <= NORM_TOL && err[1] <= NORM_TOL && err[2] <= NORM_TOL && err[3] <= NORM_TOL,
              "offset %g: y %.3g, dx %.3g, dgamma %.3g, dbeta %.3g", offsets[o], err[0], err[1], err[2], err[3]);
        ct_test_note("offset %g: worst y %.2g dx %.2g", offsets[o], err[0], err[1]);
    }
}

CT_TEST(numerics, batch_norm_far_from_zero_matches_double) {
    const double offsets[] = {0, 1e3, 1e4};
    const ct_shape shapes[2] = {CT_SHAPE(64, 16, 9, 9), CT_SHAPE(8192, 16)}; /* blocks, and rows of features */
    for (int k = 0; k < 2; k++)
        for (int o = 0; o < 3; o++) {
            double err[4];
            norm_case(0, shapes[k], offsets[o], err);
            CHECK(err[0] <= NORM_TOL && err[1] <= NORM_TOL && err[2] <= NORM_TOL && err[3] <= NORM_TOL,
                  "%s, offset %g: y %.3g, dx %.3g, dgamma %.3g, dbeta %.3g", k ? "(N, C)" : "(N, C, H, W)",
                  offsets[o], err[0], err[1], err[2], err[3]);
        }
}
