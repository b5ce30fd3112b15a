/* tests/autograd/test_gradcheck.c — every op against central differences, from one table.
 *
 * Each row names an op of ct_op_table, a builder that applies it to heap inputs, the input
 * shapes (broadcasting and scalar cases included), the range the inputs are drawn from (positive
 * for log/sqrt/pow, away from kinks where an op has one) and the op's extra arguments.
 * gradcheck/every_op_has_an_entry fails for any op of the table without a row, so a new op
 * cannot land without its gradient check. The checks need float64: the float32 build skips them. */
#include "../test.h"

#include <string.h>

#define MAX_IN 6
#define S0 {.ndim = 0} /* a scalar: shape () */
/* CT_SHAPE as a plain initializer (the table is static) */
#define SHP(...) {.ndim = CT__NARGS(__VA_ARGS__), .d = {__VA_ARGS__}}

typedef struct {
    int axis, keepdim;        /* reductions, normalisations, slice, index_select, concat */
    int i0, i1;               /* slice start/end; transpose axes; matmul trans flags */
    double a, b;              /* scalar arguments (c, p, lo/hi, slope, beta/threshold, eps) */
    int idx[8], n_idx;        /* index lists */
    int perm[CT_MAX_DIMS];    /* permute */
    ct_shape shape;           /* reshape target */
} gc_args;

typedef struct {
    const char *op;           /* the name in ct_op_table this row checks */
    const char *label;        /* what the row shows */
    ct_tensor *(*fn)(ct_tape *, ct_tensor *const *, void *);
    int n_in;
    ct_shape shapes[MAX_IN];
    double lo, hi;            /* inputs uniform in [lo, hi] ... */
    double gap;               /* ... with |x| >= gap (away from the kink at 0) when gap > 0 */
    unsigned constant;        /* bit i: input i gets no gradient (where's cond) */
    gc_args args;
} gc_case;

/* ---- builders ----------------------------------------------------------------------------- */
#define A ((const gc_args *)ctx)
#define BUILDER(name, expr) \
    static ct_tensor *name(ct_tape *t, ct_tensor *const *in, void *ctx) { (void)ctx; return (expr); }

BUILDER(f_add, ct_add(t, in[0], in[1]))
BUILDER(f_sub, ct_sub(t, in[0], in[1]))
BUILDER(f_mul, ct_mul(t, in[0], in[1]))
BUILDER(f_div, ct_div(t, in[0], in[1]))
BUILDER(f_pow, ct_pow(t, in[0], in[1]))
BUILDER(f_maximum, ct_maximum(t, in[0], in[1]))
BUILDER(f_minimum, ct_minimum(t, in[0], in[1]))
BUILDER(f_where, ct_where(t, in[0], in[1], in[2]))
BUILDER(f_neg, ct_neg(t, in[0]))
BUILDER(f_add_scalar, ct_add_scalar(t, in[0], A->a))
BUILDER(f_mul_scalar, ct_mul_scalar(t, in[0], A->a))
BUILDER(f_pow_scalar, ct_pow_scalar(t, in[0], A->a))
BUILDER(f_exp, ct_exp(t, in[0]))
BUILDER(f_log, ct_log(t, in[0]))
BUILDER(f_sqrt, ct_sqrt(t, in[0]))
BUILDER(f_abs, ct_abs(t, in[0]))
BUILDER(f_clamp, ct_clamp(t, in[0], A->a, A->b))
BUILDER(f_relu, ct_relu(t, in[0]))
BUILDER(f_leaky_relu, ct_leaky_relu(t, in[0], A->a))
BUILDER(f_gelu, ct_gelu(t, in[0]))
BUILDER(f_gelu_tanh, ct_gelu_tanh(t, in[0]))
BUILDER(f_silu, ct_silu(t, in[0]))
BUILDER(f_sigmoid, ct_sigmoid(t, in[0]))
BUILDER(f_tanh, ct_tanh(t, in[0]))
BUILDER(f_softplus, ct_softplus(t, in[0], A->a, A->b))
BUILDER(f_sum, ct_sum(t, in[0], A->axis, A->keepdim))
BUILDER(f_mean, ct_mean(t, in[0], A->axis, A->keepdim))
BUILDER(f_max, ct_max(t, in[0], A->axis, A->keepdim))
BUILDER(f_logsumexp, ct_logsumexp(t, in[0], A->axis, A->keepdim))
BUILDER(f_sum_all, ct_sum_all(t, in[0]))
BUILDER(f_mean_all, ct_mean_all(t, in[0]))
BUILDER(f_max_all, ct_max_all(t, in[0]))
BUILDER(f_logsumexp_all, ct_logsumexp_all(t, in[0]))
BUILDER(f_matmul, ct_matmul_t(t, in[0], A->i0, in[1], A->i1))
BUILDER(f_bmm, ct_bmm_t(t, in[0], A->i0, in[1], A->i1))
BUILDER(f_linear, ct_linear(t, in[0], in[1], in[2]))
BUILDER(f_linear_nobias, ct_linear(t, in[0], in[1], NULL))
BUILDER(f_cross_entropy, ct_cross_entropy(t, in[0], CT_LABELS(A->idx, A->n_idx),
                                          CT_CE(.reduction = (ct_reduction)A->i0, .label_smoothing = A->a)))
/* reshape, then a mul so the view's own gradient buffer has to flow back into x */
BUILDER(f_reshape, ct_mul(t, ct_reshape(t, in[0], A->shape), ct_reshape(t, in[0], A->shape)))
BUILDER(f_permute, ct_permute(t, in[0], A->perm))
BUILDER(f_transpose, ct_transpose(t, in[0], A->i0, A->i1))
BUILDER(f_slice, ct_slice(t, in[0], A->axis, A->i0, A->i1))
BUILDER(f_index_select, ct_index_select(t, in[0], A->axis, A->idx, A->n_idx))
BUILDER(f_gather_rows, ct_gather_rows(t, in[0], A->idx, A->n_idx))
BUILDER(f_softmax, ct_softmax(t, in[0], A->axis))
BUILDER(f_log_softmax, ct_log_softmax(t, in[0], A->axis))
BUILDER(f_l2_normalize, ct_l2_normalize(t, in[0], A->axis, A->a))
/* a cross-entropy written from primitives: mean_i −log_softmax(x)[i, y_i] */
BUILDER(f_nll, ct_neg(t, ct_mean_all(t, ct_gather_rows(t, ct_log_softmax(t, in[0], -1), A->idx, A->n_idx))))

static ct_tensor *f_concat(ct_tape *t, ct_tensor *const *in, void *ctx) {
    return ct_concat(t, in, A->n_idx, A->axis); /* n_idx = how many inputs */
}
#undef A

/* ---- the table ---------------------------------------------------------------------------- */
#define SH(...) {__VA_ARGS__}
#define ARGS(...) {__VA_ARGS__}
/* one row: op, label, builder, input count, shapes, range, then optional .gap/.constant/.args */
#define ROW(op_, label_, fn_, n_, shapes_, lo_, hi_, ...) \
    {.op = op_, .label = label_, .fn = fn_, .n_in = n_, .shapes = shapes_, .lo = lo_, .hi = hi_, __VA_ARGS__}

static const gc_case cases[] = {
    /* binary, broadcasting */
    ROW("add", "(3,4)+(3,4)", f_add, 2, SH(SHP(3, 4), SHP(3, 4)), -2, 2),
    ROW("add", "(3,4)+(4,)", f_add, 2, SH(SHP(3, 4), SHP(4)), -2, 2),
    ROW("add", "(3,1)+(1,4)", f_add, 2, SH(SHP(3, 1), SHP(1, 4)), -2, 2),
    ROW("add", "()+(2,3)", f_add, 2, SH(S0, SHP(2, 3)), -2, 2),
    ROW("add", "(2,3,4)+(3,1)", f_add, 2, SH(SHP(2, 3, 4), SHP(3, 1)), -2, 2),
    ROW("sub", "(3,4)-(4,)", f_sub, 2, SH(SHP(3, 4), SHP(4)), -2, 2),
    ROW("sub", "(1,)-(2,2)", f_sub, 2, SH(SHP(1), SHP(2, 2)), -2, 2),
    ROW("sub", "(2,3)-(2,1)", f_sub, 2, SH(SHP(2, 3), SHP(2, 1)), -2, 2),
    ROW("mul", "(3,4)*(3,4)", f_mul, 2, SH(SHP(3, 4), SHP(3, 4)), -2, 2),
    ROW("mul", "(2,1,3)*(1,4,1)", f_mul, 2, SH(SHP(2, 1, 3), SHP(1, 4, 1)), -2, 2),
    ROW("mul", "(2,3)*()", f_mul, 2, SH(SHP(2, 3), S0), -2, 2),
    ROW("mul", "()*()", f_mul, 2, SH(S0, S0), -2, 2),
    ROW("div", "(3,4)/(4,)", f_div, 2, SH(SHP(3, 4), SHP(4)), 0.5, 2),
    ROW("div", "(2,3)/(2,1)", f_div, 2, SH(SHP(2, 3), SHP(2, 1)), 0.5, 2),
    ROW("div", "()/(3,)", f_div, 2, SH(S0, SHP(3)), 0.5, 2),
    ROW("pow", "(3,4)^(3,4)", f_pow, 2, SH(SHP(3, 4), SHP(3, 4)), 0.5, 2),
    ROW("pow", "(2,3)^()", f_pow, 2, SH(SHP(2, 3), S0), 0.5, 2),
    ROW("pow", "(3,)^(2,1)", f_pow, 2, SH(SHP(3), SHP(2, 1)), 0.5, 2),
    ROW("maximum", "(3,4) max (3,4)", f_maximum, 2, SH(SHP(3, 4), SHP(3, 4)), -2, 2),
    ROW("maximum", "(3,4) max (4,)", f_maximum, 2, SH(SHP(3, 4), SHP(4)), -2, 2),
    ROW("minimum", "(3,4) min (3,4)", f_minimum, 2, SH(SHP(3, 4), SHP(3, 4)), -2, 2),
    ROW("minimum", "(2,1,3) min (4,1)", f_minimum, 2, SH(SHP(2, 1, 3), SHP(4, 1)), -2, 2),
    ROW("where", "cond (3,4), a (3,4), b (3,4)", f_where, 3, SH(SHP(3, 4), SHP(3, 4), SHP(3, 4)), -2, 2, .constant = 1),
    ROW("where", "cond (3,1), a (4,), b ()", f_where, 3, SH(SHP(3, 1), SHP(4), S0), -2, 2, .constant = 1),
    /* unary */
    ROW("neg", "(3,4)", f_neg, 1, SH(SHP(3, 4)), -2, 2),
    ROW("add_scalar", "(3,4) + 1.5", f_add_scalar, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.a = 1.5)),
    ROW("mul_scalar", "-2.5 (3,4)", f_mul_scalar, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.a = -2.5)),
    ROW("pow_scalar", "(3,4)^3", f_pow_scalar, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.a = 3)),
    ROW("pow_scalar", "(3,4)^2", f_pow_scalar, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.a = 2)),
    ROW("pow_scalar", "(3,4)^-0.5", f_pow_scalar, 1, SH(SHP(3, 4)), 0.5, 3, .args = ARGS(.a = -0.5)),
    ROW("exp", "(3,4)", f_exp, 1, SH(SHP(3, 4)), -2, 2),
    ROW("exp", "()", f_exp, 1, SH(S0), -2, 2),
    ROW("log", "(3,4) > 0", f_log, 1, SH(SHP(3, 4)), 0.5, 3),
    ROW("sqrt", "(3,4) > 0", f_sqrt, 1, SH(SHP(3, 4)), 0.5, 3),
    ROW("abs", "(3,4) away from 0", f_abs, 1, SH(SHP(3, 4)), -2, 2, .gap = 0.1),
    ROW("clamp", "(4,5) in [-1, 1]", f_clamp, 1, SH(SHP(4, 5)), -2, 2, .args = ARGS(.a = -1, .b = 1)),
    ROW("relu", "(3,4) away from 0", f_relu, 1, SH(SHP(3, 4)), -2, 2, .gap = 0.1),
    ROW("leaky_relu", "(3,4) slope 0.01", f_leaky_relu, 1, SH(SHP(3, 4)), -2, 2, .gap = 0.1, .args = ARGS(.a = 0.01)),
    ROW("leaky_relu", "(3,4) slope 0.3", f_leaky_relu, 1, SH(SHP(3, 4)), -2, 2, .gap = 0.1, .args = ARGS(.a = 0.3)),
    ROW("gelu", "(3,4)", f_gelu, 1, SH(SHP(3, 4)), -3, 3),
    ROW("gelu_tanh", "(3,4)", f_gelu_tanh, 1, SH(SHP(3, 4)), -3, 3),
    ROW("silu", "(3,4)", f_silu, 1, SH(SHP(3, 4)), -4, 4),
    ROW("sigmoid", "(3,4)", f_sigmoid, 1, SH(SHP(3, 4)), -4, 4),
    ROW("sigmoid", "(2,3) large |x|", f_sigmoid, 1, SH(SHP(2, 3)), -30, 30, .gap = 10),
    ROW("tanh", "(3,4)", f_tanh, 1, SH(SHP(3, 4)), -2, 2),
    ROW("softplus", "(3,4) beta 1", f_softplus, 1, SH(SHP(3, 4)), -4, 4, .args = ARGS(.a = 1, .b = 20)),
    ROW("softplus", "(3,4) beta 2, threshold 3, both branches", f_softplus, 1, SH(SHP(3, 4)), -3, 3, .args = ARGS(.a = 2, .b = 3)),
    /* reductions */
    ROW("sum", "(3,4) axis 1", f_sum, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.axis = 1)),
    ROW("sum", "(2,3,4) axis 1 keepdim", f_sum, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.axis = 1, .keepdim = 1)),
    ROW("sum", "(2,3,4) axis -3", f_sum, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.axis = -3)),
    ROW("sum", "sum_all (2,3,4)", f_sum_all, 1, SH(SHP(2, 3, 4)), -2, 2),
    ROW("mean", "(3,4) axis 0", f_mean, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.axis = 0)),
    ROW("mean", "(2,3,4) axis -1 keepdim", f_mean, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.axis = -1, .keepdim = 1)),
    ROW("mean", "mean_all (3,4)", f_mean_all, 1, SH(SHP(3, 4)), -2, 2),
    ROW("mean", "mean_all ()", f_mean_all, 1, SH(S0), -2, 2),
    ROW("max", "(3,4) axis 1", f_max, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.axis = 1)),
    ROW("max", "(2,3,4) axis 1 keepdim", f_max, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.axis = 1, .keepdim = 1)),
    ROW("max", "max_all (3,4)", f_max_all, 1, SH(SHP(3, 4)), -2, 2),
    ROW("logsumexp", "(3,4) axis 1", f_logsumexp, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.axis = 1)),
    ROW("logsumexp", "(2,3,4) axis 0 keepdim", f_logsumexp, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.axis = 0, .keepdim = 1)),
    ROW("logsumexp", "(2,3) large values", f_logsumexp, 1, SH(SHP(2, 3)), 500, 502, .args = ARGS(.axis = -1)),
    ROW("logsumexp", "logsumexp_all (3,4)", f_logsumexp_all, 1, SH(SHP(3, 4)), -2, 2),
    /* matrix products */
    ROW("matmul", "(3,4)·(4,5)", f_matmul, 2, SH(SHP(3, 4), SHP(4, 5)), -1, 1),
    ROW("matmul", "(4,3)ᵀ·(4,5)", f_matmul, 2, SH(SHP(4, 3), SHP(4, 5)), -1, 1, .args = ARGS(.i0 = 1)),
    ROW("matmul", "(3,4)·(5,4)ᵀ", f_matmul, 2, SH(SHP(3, 4), SHP(5, 4)), -1, 1, .args = ARGS(.i1 = 1)),
    ROW("matmul", "(4,3)ᵀ·(5,4)ᵀ", f_matmul, 2, SH(SHP(4, 3), SHP(5, 4)), -1, 1, .args = ARGS(.i0 = 1, .i1 = 1)),
    ROW("bmm", "(2,3,4)·(2,4,5)", f_bmm, 2, SH(SHP(2, 3, 4), SHP(2, 4, 5)), -1, 1),
    ROW("bmm", "(2,4,3)ᵀ·(2,5,4)ᵀ", f_bmm, 2, SH(SHP(2, 4, 3), SHP(2, 5, 4)), -1, 1, .args = ARGS(.i0 = 1, .i1 = 1)),
    ROW("bmm", "(2,3,4)·(1,4,5) batch broadcast", f_bmm, 2, SH(SHP(2, 3, 4), SHP(1, 4, 5)), -1, 1),
    ROW("bmm", "(3,4)·(2,2,4,5) 2-D a broadcast", f_bmm, 2, SH(SHP(3, 4), SHP(2, 2, 4, 5)), -1, 1),
    ROW("bmm", "(2,3,4)·(2,5,4)ᵀ", f_bmm, 2, SH(SHP(2, 3, 4), SHP(2, 5, 4)), -1, 1, .args = ARGS(.i1 = 1)),
    ROW("linear", "x (4,3), W (5,3), b (5,)", f_linear, 3, SH(SHP(4, 3), SHP(5, 3), SHP(5)), -1, 1),
    ROW("linear", "x (4,3), W (5,3), no bias", f_linear_nobias, 2, SH(SHP(4, 3), SHP(5, 3)), -1, 1),
    ROW("cross_entropy", "fused (4,5) mean", f_cross_entropy, 1, SH(SHP(4, 5)), -3, 3, .args = ARGS(.idx = {1, 0, 4, 2}, .n_idx = 4)),
    ROW("cross_entropy", "fused (4,5) none, smoothing 0.1", f_cross_entropy, 1, SH(SHP(4, 5)), -3, 3, .args = ARGS(.idx = {1, 0, 4, 2}, .n_idx = 4, .i0 = CT_REDUCTION_NONE, .a = 0.1)),
    /* shape ops */
    ROW("reshape", "(2,3,4) -> (-1,4) squared", f_reshape, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.shape = SHP(-1, 4))),
    ROW("reshape", "(6,) -> (3,2)", f_reshape, 1, SH(SHP(6)), -2, 2, .args = ARGS(.shape = SHP(3, 2))),
    ROW("permute", "(2,3,4) perm (2,0,1)", f_permute, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.perm = {2, 0, 1})),
    ROW("permute", "transpose (3,4) 0<->1", f_transpose, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.i0 = 0, .i1 = 1)),
    ROW("permute", "transpose (2,3,4) -1<->0", f_transpose, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.i0 = -1, .i1 = 0)),
    ROW("slice", "(4,5) axis 1 [1,4)", f_slice, 1, SH(SHP(4, 5)), -2, 2, .args = ARGS(.axis = 1, .i0 = 1, .i1 = 4)),
    ROW("slice", "(4,3,2) axis 0 [-3,-1)", f_slice, 1, SH(SHP(4, 3, 2)), -2, 2, .args = ARGS(.axis = 0, .i0 = -3, .i1 = -1)),
    ROW("concat", "(2,3) | (2,1) axis 1", f_concat, 2, SH(SHP(2, 3), SHP(2, 1)), -2, 2, .args = ARGS(.axis = 1, .n_idx = 2)),
    ROW("concat", "(1,3) | (2,3) | (1,3) axis 0", f_concat, 3, SH(SHP(1, 3), SHP(2, 3), SHP(1, 3)), -2, 2, .args = ARGS(.axis = 0, .n_idx = 3)),
    ROW("concat", "six (2,1,2) along axis 1", f_concat, 6, SH(SHP(2, 1, 2), SHP(2, 1, 2), SHP(2, 1, 2), SHP(2, 1, 2), SHP(2, 1, 2), SHP(2, 1, 2)), -2, 2, .args = ARGS(.axis = 1, .n_idx = 6)),
    ROW("index_select", "(4,3) axis 0, repeats", f_index_select, 1, SH(SHP(4, 3)), -2, 2, .args = ARGS(.axis = 0, .idx = {3, 0, 3, 1, 3}, .n_idx = 5)),
    ROW("index_select", "(2,4,3) axis 1", f_index_select, 1, SH(SHP(2, 4, 3)), -2, 2, .args = ARGS(.axis = 1, .idx = {2, 2, 0}, .n_idx = 3)),
    ROW("gather_rows", "(4,5)", f_gather_rows, 1, SH(SHP(4, 5)), -2, 2, .args = ARGS(.idx = {4, 0, 2, 2}, .n_idx = 4)),
    ROW("gather_rows", "nll from primitives (4,5)", f_nll, 1, SH(SHP(4, 5)), -3, 3, .args = ARGS(.idx = {1, 0, 4, 2}, .n_idx = 4)),
    /* normalisations */
    ROW("softmax", "(3,4) axis -1", f_softmax, 1, SH(SHP(3, 4)), -3, 3, .args = ARGS(.axis = -1)),
    ROW("softmax", "(2,3,4) axis 1", f_softmax, 1, SH(SHP(2, 3, 4)), -3, 3, .args = ARGS(.axis = 1)),
    ROW("log_softmax", "(3,4) axis -1", f_log_softmax, 1, SH(SHP(3, 4)), -3, 3, .args = ARGS(.axis = -1)),
    ROW("log_softmax", "(2,3,4) axis 0", f_log_softmax, 1, SH(SHP(2, 3, 4)), -3, 3, .args = ARGS(.axis = 0)),
    ROW("l2_normalize", "(3,4) axis 1", f_l2_normalize, 1, SH(SHP(3, 4)), -2, 2, .args = ARGS(.axis = 1, .a = 1e-12)),
    ROW("l2_normalize", "(2,3,4) axis 1", f_l2_normalize, 1, SH(SHP(2, 3, 4)), -2, 2, .args = ARGS(.axis = 1, .a = 1e-12)),
    ROW("l2_normalize", "(3,4) below eps", f_l2_normalize, 1, SH(SHP(3, 4)), -0.01, 0.01, .args = ARGS(.axis = -1, .a = 1)),
};
static const int n_cases = (int)(sizeof cases / sizeof cases[0]);

#ifdef CT_PRECISION_64
/* Inputs of one row: heap tensors, uniform in [lo, hi] pushed out of (−gap, gap); constants
 * (where's cond) are 0/1 in a fixed pattern with no gradient. */
static void make_inputs(const gc_case *c, ct_tensor **in, uint64_t seed) {
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (int k = 0; k < c->n_in; k++) {
        int constant = (c->constant >> k) & 1;
        in[k] = constant ? ct_tensor_new(c->shapes[k]) : ct_tensor_new_grad(c->shapes[k]);
        for (size_t i = 0; i < in[k]->size; i++) {
            double v = ct_rng_uniform_range(&rng, c->lo, c->hi);
            if (c->gap > 0 && fabs(v) < c->gap) v = v < 0 ? v - c->gap : v + c->gap;
            in[k]->data[i] = (ct_real)(constant ? (double)((i * 7 + 1) % 3 != 0) : v);
        }
    }
}

#endif

CT_TEST(gradcheck, every_entry) {
#ifndef CT_PRECISION_64
    CT_SKIP("gradient checks run in the float64 build");
#else
    int failed = 0;
    size_t elements = 0;
    char first[512] = "", line[256];
    for (int i = 0; i < n_cases; i++) {
        const gc_case *c = &cases[i];
        ct_tensor *in[MAX_IN];
        make_inputs(c, in, 1000 + (uint64_t)i);
        ct_gradcheck_result r = ct_gradcheck(c->fn, (void *)&c->args, in, c->n_in, CT_GRADCHECK());
        for (int k = 0; k < c->n_in; k++) ct_tensor_free(in[k]);
        elements += r.checked;
        if (!r.passed || r.checked == 0) {
            ct_gradcheck_describe(&r, line, sizeof line);
            printf("     gradcheck %s [%s]: %s\n", c->op, c->label, line);
            if (!failed++) snprintf(first, sizeof first, "%s [%s]: %s", c->op, c->label, line);
        }
    }
    if (failed) {
        ct_test_fail(__FILE__, __LINE__, "%d of %d cases failed; first: %s", failed, n_cases, first);
        return;
    }
    ct_test_note("%d cases, %zu elements", n_cases, elements);
#endif
}

/* Every op of both tables (autograd's ct_op_table and the fused losses' ct_loss_op_table) has at
 * least one row here or a gradient-check test elsewhere that declares it with CT_GRADCHECK_COVERS,
 * and every row names a real op. */
static const ct_op *any_op(int k) { return k < ct_op_count ? ct_op_table[k] : ct_loss_op_table[k - ct_op_count]; }

static int op_exists(const char *name) {
    for (int k = 0; k < ct_op_count + ct_loss_op_count; k++)
        if (strcmp(any_op(k)->name, name) == 0) return 1;
    return 0;
}

CT_TEST(gradcheck, every_op_has_an_entry) {
    char missing[1024] = "";
    size_t used = 0;
    for (int k = 0; k < ct_op_count + ct_loss_op_count; k++) {
        const char *name = any_op(k)->name;
        int found = 0;
        for (int i = 0; i < n_cases && !found; i++) found = strcmp(cases[i].op, name) == 0;
        found = found || ct_test_gradcheck_covered(name);
        if (!found && used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, " %s", name);
    }
    if (used) {
        ct_test_fail(__FILE__, __LINE__, "ops without a gradient check:%s", missing);
        return;
    }
    for (int i = 0; i < n_cases; i++)
        if (!op_exists(cases[i].op)) {
            ct_test_fail(__FILE__, __LINE__, "row %d names op '%s', which is in neither op table", i, cases[i].op);
            return;
        }
}
