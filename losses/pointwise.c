/* losses/pointwise.c — the element-wise losses of (input x, target t): mse, l1, smooth_l1, huber,
 * bce_with_logits, sigmoid focal and kl_div, one fused op (loss_pointwise) with a closed-form
 * backward: one forward pass computes the value, one backward pass writes the gradient, one node
 * on the tape. Each public function has its composed form beside it (ct_*_reference, from tape
 * ops: the readable definition), which is also the path taken when the target requires grad (the
 * fused op differentiates with respect to the input only). Also the knowledge-distillation loss,
 * composed (KL of tempered softmaxes). */
/* No floating-point trap is ever enabled in ctape, so GCC may evaluate both arms of a select:
 * under the default -ftrapping-math it keeps an arm that does arithmetic (a division, a product)
 * behind a branch, and a loop with a branch does not vectorise. This changes no result. */
#pragma GCC optimize("no-trapping-math")
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "common.h"

#include <string.h>

/* ---- loss_pointwise: element-wise losses of (input x, target t), fused -----------------------
 * One forward pass computes ℓ(x, t) per element (kept for none, summed in double otherwise); one
 * backward pass writes dx += g·∂ℓ/∂x, g = dout (none), dout (sum), dout/count (mean, batchmean).
 * The per-kind formulas and derivatives are in pointwise_value and pointwise_slope below; the
 * loss functions further down document the math. */
enum {
    PW_MSE, PW_L1, PW_SMOOTH_L1, PW_HUBER, PW_BCE, PW_BCE_WEIGHTED, PW_SIGMOID_FOCAL, PW_SIGMOID_FOCAL_2, PW_KL,
    PW_KL_LOG
}; /* PW_SIGMOID_FOCAL_2: γ = 2, the default, with (1 − p_t)² as a product */

typedef struct {
    int kind, reduction;
    ct_real knee, quad_scale, lin_scale; /* smooth_l1 / huber: ½·quad_scale·d² below the knee,
                                            lin_scale·(|d| − ½·knee) above */
    int closed;                          /* huber's |d| ≤ δ (1) or smooth_l1's |d| < β (0) */
    ct_real gamma, alpha;                /* sigmoid_focal */
    ct_real *pos_weight_minus_1, *weight;/* bce: C values each (copies) or NULL */
    int C;                               /* last dimension (bce's weights run along it) */
    double count;                        /* mean's divisor */
    ct_real *slope;                      /* ∂ℓ/∂x per element, kept by the forward (bce, sigmoid
                                            focal: their e^x and log cost more than 4 bytes of
                                            memory traffic), or NULL: the backward recomputes */
} pointwise_saved;

/* Always inlined (CT_ALWAYS_INLINE): these are called from every kind's loop, which vectorises
 * only when they are inlined. Value and slope are separate functions because the forward of most
 * kinds needs only the one and the backward only the other (bce and the sigmoid focal loss compute
 * both at once, value_and_slope, and keep the slope). */

/* (1 − p_t)^γ (slope = 0) or its derivative with respect to 1 − p_t (slope = 1), as
 * focal_modulator composes them: for 0 < γ < 1 the base is clamped to [1e-30, 1] and the
 * derivative is 0 outside that interval. Branch-free, so it vectorises for any γ:
 * q^γ = e^(γ·log q), γ·log q ≤ 0 since q ≤ 1 (targets in [0, 1], which the fused path requires);
 * q^(γ−1) = q^γ/q where q ≥ 1e-30 (γ < 1), e^((γ−1)·log q) otherwise (0 at q = 0 for γ > 1). */
static CT_ALWAYS_INLINE ct_real focal_power(ct_real q, ct_real gamma, int slope) {
    const ct_real tiny = (ct_real)1e-30;
    const int inside = gamma >= 1 || (q >= tiny && q <= 1);
    const ct_real clamped = q < tiny ? tiny : (q > 1 ? 1 : q), base = gamma < 1 ? clamped : q;
    const ct_real log_q = ct_vlog(base);
    const ct_real power = ct_exp_nonpositive(gamma * log_q);
    if (!slope) return gamma == 2 ? q * q : (gamma == 1 ? q : power);
    const ct_real below = gamma < 1 ? power / base : ct_exp_nonpositive((gamma - 1) * log_q);
    const ct_real d = gamma == 2 ? 2 * q : (gamma == 1 ? 1 : gamma * below);
    return inside ? d : 0;
}

/* p = σ(x) and bce = (1 − t)·x + softplus(−x) from one e^−|x| and one 1/(1 + e^−|x|) (inlined, so
 * the pointers vanish). */
static CT_ALWAYS_INLINE void sigmoid_and_bce(ct_real x, ct_real t, ct_real *p, ct_real *ce) {
    const ct_real e = ct_exp_nonpositive(-fabs(x)), r = 1 / (1 + e);
    *p = (x >= 0 ? 1 : e) * r;
    *ce = (1 - t) * x + ((x < 0 ? -x : 0) + ct_vlog1p_unit(e, r));
}

/* ℓ of one element (c: its index along the last dimension). */
static CT_ALWAYS_INLINE ct_real pointwise_value(int kind, const pointwise_saved *s, ct_real x, ct_real t, int c) {
    const ct_real d = x - t, a = fabs(d);
    switch (kind) {
    case PW_MSE: return d * d;
    case PW_L1: return a;
    case PW_SMOOTH_L1:
    case PW_HUBER: {
        const int quad = kind == PW_HUBER ? a <= s->knee : a < s->knee;
        const ct_real below = (d * d) * ((ct_real)0.5 * s->quad_scale), above = (a - (ct_real)0.5 * s->knee) * s->lin_scale;
        return quad ? below : above;
    }
    case PW_BCE: return (1 - t) * x + ct_vsoftplus(-x); /* (1 − t)·x + softplus(−x) */
    case PW_BCE_WEIGHTED: { /* w·[(1 − t)·x + l·softplus(−x)], l = 1 + (pw − 1)·t */
        const ct_real w = s->weight ? s->weight[c] : 1;
        const ct_real l = s->pos_weight_minus_1 ? 1 + s->pos_weight_minus_1[c] * t : 1;
        return w * ((1 - t) * x + l * ct_vsoftplus(-x));
    }
    case PW_SIGMOID_FOCAL:
    case PW_SIGMOID_FOCAL_2: { /* α_t·(1 − p_t)^γ·ce, 1 − p_t = p + t − 2pt, p = σ(x) */
        ct_real p, ce;
        sigmoid_and_bce(x, t, &p, &ce);
        const ct_real at = s->alpha >= 0 ? (1 - s->alpha) + (2 * s->alpha - 1) * t : 1, q = p + t - 2 * p * t;
        return at * (ce * (kind == PW_SIGMOID_FOCAL_2 ? q * q : focal_power(q, s->gamma, 0)));
    }
    case PW_KL: return t * (ct_vlog(t > 0 ? t : 1) - x); /* t·(log t − x), 0·(0 − x) where t = 0 */
    default: return (ct_real)exp(t) * (t - x);          /* PW_KL_LOG: e^t·(t − x) */
    }
}

/* ∂ℓ/∂x of one element. */
static CT_ALWAYS_INLINE ct_real pointwise_slope(int kind, const pointwise_saved *s, ct_real x, ct_real t, int c) {
    const ct_real d = x - t, a = fabs(d), sign = d > 0 ? 1 : (d < 0 ? -1 : d); /* sign(NaN) = NaN */
    switch (kind) {
    case PW_MSE: return 2 * d;
    case PW_L1: return sign;
    case PW_SMOOTH_L1:
    case PW_HUBER: {
        const int quad = kind == PW_HUBER ? a <= s->knee : a < s->knee;
        const ct_real below = s->quad_scale * d, above = s->lin_scale * sign;
        return quad ? below : above;
    }
    case PW_BCE: return ct_vsigmoid(x) - t; /* (1 − t) − σ(−x) */
    case PW_BCE_WEIGHTED: {
        const ct_real w = s->weight ? s->weight[c] : 1;
        const ct_real l = s->pos_weight_minus_1 ? 1 + s->pos_weight_minus_1[c] * t : 1;
        return w * ((1 - t) - l * ct_vsigmoid(-x));
    }
    case PW_SIGMOID_FOCAL:
    case PW_SIGMOID_FOCAL_2: { /* α_t·[(p − t)·mod + ce·mod'·(1 − 2t)·p(1 − p)] */
        ct_real p, ce;
        sigmoid_and_bce(x, t, &p, &ce);
        const ct_real q = p + t - 2 * p * t, at = s->alpha >= 0 ? (1 - s->alpha) + (2 * s->alpha - 1) * t : 1;
        const ct_real mod = kind == PW_SIGMOID_FOCAL_2 ? q * q : focal_power(q, s->gamma, 0);
        const ct_real dmod = kind == PW_SIGMOID_FOCAL_2 ? 2 * q : focal_power(q, s->gamma, 1);
        return at * ((p - t) * mod + ce * dmod * (1 - 2 * t) * (p * (1 - p)));
    }
    case PW_KL: return -t;
    default: return -(ct_real)exp(t);
    }
}

/* The kinds whose per-element work depends on the position along the last dimension. */
#define PW_PER_CLASS(kind) ((kind) == PW_BCE_WEIGHTED)

/* The kinds whose forward also writes ∂ℓ/∂x (pointwise_saved.slope). */
#define PW_KEEPS_SLOPE(kind) ((kind) == PW_BCE || (kind) == PW_SIGMOID_FOCAL || (kind) == PW_SIGMOID_FOCAL_2)

/* ℓ of one element of a PW_KEEPS_SLOPE kind, with ∂ℓ/∂x stored at *slope: one e^−|x| for both. */
static CT_ALWAYS_INLINE ct_real value_and_slope(int kind, const pointwise_saved *s, ct_real x, ct_real t,
                                                ct_real *slope) {
    ct_real p, ce;
    sigmoid_and_bce(x, t, &p, &ce);
    if (kind == PW_BCE) {
        *slope = p - t;
        return ce;
    }
    const ct_real q = p + t - 2 * p * t, at = s->alpha >= 0 ? (1 - s->alpha) + (2 * s->alpha - 1) * t : 1;
    const ct_real mod = kind == PW_SIGMOID_FOCAL_2 ? q * q : focal_power(q, s->gamma, 0);
    const ct_real dmod = kind == PW_SIGMOID_FOCAL_2 ? 2 * q : focal_power(q, s->gamma, 1);
    *slope = at * ((p - t) * mod + ce * dmod * (1 - 2 * t) * (p * (1 - p)));
    return at * (ce * mod);
}

/* Rows [r0, r1) of a PW_KEEPS_SLOPE kind: ℓ into out (none) or summed, ∂ℓ/∂x into slope. */
CT_KERNEL
static double pointwise_forward_keep_slope(const pointwise_saved *s, const ct_real *x, const ct_real *t,
                                           ct_real *out, ct_real *slope, size_t k0, size_t k1) {
    double total = 0;
    ct_real *restrict sl = slope;
#define PW_KEEP(KIND)                                                                                        \
    if (out) {                                                                                               \
        ct_real *restrict o = out;                                                                           \
        _Pragma("omp simd") for (size_t k = k0; k < k1; k++) o[k] = value_and_slope(KIND, s, x[k], t[k], &sl[k]); \
    } else {                                                                                                 \
        _Pragma("omp simd reduction(+ : total)") for (size_t k = k0; k < k1; k++)                            \
            total += value_and_slope(KIND, s, x[k], t[k], &sl[k]);                                           \
    }                                                                                                        \
    break;
    switch (s->kind) {
    case PW_BCE: PW_KEEP(PW_BCE)
    case PW_SIGMOID_FOCAL: PW_KEEP(PW_SIGMOID_FOCAL)
    default: PW_KEEP(PW_SIGMOID_FOCAL_2)
    }
#undef PW_KEEP
    return total;
}

/* One pass over rows [r0, r1) of (rows, C): out (none) or the double sum of ℓ. The switch sits
 * outside the loops so each kind's loop is compiled (and vectorised) on its own. */
CT_KERNEL
static double pointwise_forward_rows(const pointwise_saved *s, const ct_real *x, const ct_real *t, ct_real *out,
                                     size_t r0, size_t r1) {
    const int C = s->C;
    if (s->slope) return pointwise_forward_keep_slope(s, x, t, out, s->slope, r0 * C, r1 * C);
    double total = 0;
#define PW_FORWARD(KIND)                                                                                     \
    if (PW_PER_CLASS(KIND)) {                                                                                \
        for (size_t r = r0; r < r1; r++) {                                                                   \
            const ct_real *restrict xr = x + r * C, *restrict tr = t + r * C;                                \
            double row = 0;                                                                                  \
            _Pragma("omp simd reduction(+ : row)") for (int c = 0; c < C; c++) {                             \
                const ct_real v = pointwise_value(KIND, s, xr[c], tr[c], c);                            \
                if (out) out[r * C + c] = v;                                                                 \
                row += v;                                                                                    \
            }                                                                                                \
            total += row;                                                                                    \
        }                                                                                                    \
    } else {                                                                                                 \
        const size_t k0 = r0 * C, k1 = r1 * C;                                                               \
        if (out) {                                                                                           \
            ct_real *restrict o = out;                                                                       \
            _Pragma("omp simd") for (size_t k = k0; k < k1; k++) {                                           \
                o[k] = pointwise_value(KIND, s, x[k], t[k], 0);                                         \
            }                                                                                                \
        } else {                                                                                             \
            _Pragma("omp simd reduction(+ : total)") for (size_t k = k0; k < k1; k++) {                      \
                total += pointwise_value(KIND, s, x[k], t[k], 0);                                       \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    break;
    switch (s->kind) {
    case PW_MSE: PW_FORWARD(PW_MSE)
    case PW_L1: PW_FORWARD(PW_L1)
    case PW_SMOOTH_L1: PW_FORWARD(PW_SMOOTH_L1)
    case PW_HUBER: PW_FORWARD(PW_HUBER)
    case PW_BCE: PW_FORWARD(PW_BCE)
    case PW_BCE_WEIGHTED: PW_FORWARD(PW_BCE_WEIGHTED)
    case PW_SIGMOID_FOCAL: PW_FORWARD(PW_SIGMOID_FOCAL)
    case PW_SIGMOID_FOCAL_2: PW_FORWARD(PW_SIGMOID_FOCAL_2)
    case PW_KL: PW_FORWARD(PW_KL)
    default: PW_FORWARD(PW_KL_LOG)
    }
#undef PW_FORWARD
    return total;
}

/* dx += g·∂ℓ/∂x over rows [r0, r1); g per element (dout, none) or one number (g_all). */
CT_KERNEL
static void pointwise_backward_rows(const pointwise_saved *s, const ct_real *x, const ct_real *t, const ct_real *dout,
                                    ct_real g_all, ct_real *dx, size_t r0, size_t r1) {
    const int C = s->C;
    if (s->slope) { /* kept by the forward */
        const ct_real *restrict sl = s->slope;
        ct_real *restrict d = dx;
        if (dout) {
#pragma omp simd
            for (size_t k = r0 * C; k < r1 * C; k++) d[k] += dout[k] * sl[k];
        } else {
#pragma omp simd
            for (size_t k = r0 * C; k < r1 * C; k++) d[k] += g_all * sl[k];
        }
        return;
    }
#define PW_BACKWARD(KIND)                                                                                    \
    if (PW_PER_CLASS(KIND)) {                                                                                \
        for (size_t r = r0; r < r1; r++) {                                                                   \
            const ct_real *restrict xr = x + r * C, *restrict tr = t + r * C;                                \
            ct_real *restrict dr = dx + r * C;                                                               \
            _Pragma("omp simd") for (int c = 0; c < C; c++) {                                                \
                const ct_real g = dout ? dout[r * C + c] : g_all;                                            \
                dr[c] += g * pointwise_slope(KIND, s, xr[c], tr[c], c);                                      \
            }                                                                                                \
        }                                                                                                    \
    } else if (dout) {                                                                                       \
        ct_real *restrict d = dx;                                                                            \
        _Pragma("omp simd") for (size_t k = r0 * C; k < r1 * C; k++)                                         \
            d[k] += dout[k] * pointwise_slope(KIND, s, x[k], t[k], 0);                                       \
    } else {                                                                                                 \
        ct_real *restrict d = dx;                                                                            \
        _Pragma("omp simd") for (size_t k = r0 * C; k < r1 * C; k++)                                         \
            d[k] += g_all * pointwise_slope(KIND, s, x[k], t[k], 0);                                         \
    }                                                                                                        \
    break;
    switch (s->kind) {
    case PW_MSE: PW_BACKWARD(PW_MSE)
    case PW_L1: PW_BACKWARD(PW_L1)
    case PW_SMOOTH_L1: PW_BACKWARD(PW_SMOOTH_L1)
    case PW_HUBER: PW_BACKWARD(PW_HUBER)
    case PW_BCE: PW_BACKWARD(PW_BCE)
    case PW_BCE_WEIGHTED: PW_BACKWARD(PW_BCE_WEIGHTED)
    case PW_SIGMOID_FOCAL: PW_BACKWARD(PW_SIGMOID_FOCAL)
    case PW_SIGMOID_FOCAL_2: PW_BACKWARD(PW_SIGMOID_FOCAL_2)
    case PW_KL: PW_BACKWARD(PW_KL)
    default: PW_BACKWARD(PW_KL_LOG)
    }
#undef PW_BACKWARD
}

CT_KERNEL
static void pointwise_backward(ct_tape *tape, ct_node *nd) {
    const pointwise_saved *s = nd->extra;
    ct_tensor *x = nd->in[0], *t = nd->saved;
    ct_real *dx = ct_grad_of(tape, x);
    const ct_real *dout = nd->out->grad;
    const int none = s->reduction == CT_REDUCTION_NONE;
    const ct_real g_all = none ? 0 : (ct_real)(s->reduction == CT_REDUCTION_SUM ? dout[0] : dout[0] / s->count);
    const size_t rows = s->C ? x->size / (size_t)s->C : 0;
    if (x->size < PARALLEL_WORK) {
        pointwise_backward_rows(s, x->data, t->data, none ? dout : NULL, g_all, dx, 0, rows);
        return;
    }
    const int blocks = ct_max_threads();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < blocks; b++)
        pointwise_backward_rows(s, x->data, t->data, none ? dout : NULL, g_all, dx, rows * b / blocks,
                                rows * (b + 1) / blocks);
}
const ct_op ct_op_loss_pointwise = {
    "loss_pointwise",
    "ℓ = f(x, t) element-wise (mse, l1, smooth_l1, huber, bce, sigmoid focal, kl); dx = g·∂f/∂x",
    pointwise_backward};

/* The fused element-wise loss: x, t of the same shape (checked by the caller), s filled in except
 * reduction's count; C = last dimension. */
CT_KERNEL
static ct_tensor *pointwise_loss(ct_tape *tape, ct_tensor *x, ct_tensor *t, pointwise_saved proto) {
    const int none = proto.reduction == CT_REDUCTION_NONE;
    proto.C = x->ndim ? x->shape[x->ndim - 1] : 1;
    proto.count = proto.reduction == CT_REDUCTION_BATCHMEAN ? (x->ndim && x->shape[0] ? x->shape[0] : 1)
                                                            : (double)x->size;
    if (proto.C == 0) proto.C = 1; /* an empty tensor: no rows either way */
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, none ? ct_tensor_shape(x) : (ct_shape){.ndim = 0}, &ct_op_loss_pointwise,
                                  &x, 1, &nd);
    const size_t rows = x->size / (size_t)proto.C;
    proto.slope = nd && PW_KEEPS_SLOPE(proto.kind)
                      ? ct_arena_alloc(ct_tape_arena(tape), (x->size ? x->size : 1) * sizeof(ct_real))
                      : NULL;
    double total = 0;
    if (x->size < PARALLEL_WORK) {
        total = pointwise_forward_rows(&proto, x->data, t->data, none ? out->data : NULL, 0, rows);
    } else {
        const int blocks = ct_max_threads();
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (int b = 0; b < blocks; b++)
            total += pointwise_forward_rows(&proto, x->data, t->data, none ? out->data : NULL, rows * b / blocks,
                                            rows * (b + 1) / blocks);
    }
    if (!none)
        out->data[0] = (ct_real)(proto.reduction == CT_REDUCTION_SUM ? total : total / proto.count);
    if (nd) {
        pointwise_saved *s = ct_arena_alloc(ct_tape_arena(tape), sizeof *s);
        *s = proto;
        nd->saved = t;
        nd->extra = s;
    }
    return out;
}


/* ---- the public functions -------------------------------------------------------------------------
 * Each checks its input, runs the fused op when the target needs no gradient, and otherwise its
 * reference: the same loss composed from tape ops (ct_*_reference), the readable definition, whose
 * backward also reaches the target. */

/* ---- binary cross-entropy with logits: x, t of the same shape, C = last dimension ------------
 *   ℓ = w_c·[(1 − t)·x + l·softplus(−x)],  l = 1 + (pw_c − 1)·t
 * which is −w·[pw·t·log σ(x) + (1 − t)·log(1 − σ(x))] rewritten with log σ(x) = −softplus(−x)
 * and log(1 − σ(x)) = −x − softplus(−x): no exp of a large number, finite for any finite x.
 * softplus runs without PyTorch's linear threshold (∞), so it stays exact in float64. */
static void check_bce(const char *op, ct_tensor *x, ct_tensor *t, ct_bce_opts opts) {
    check_same_shape(op, x, t, "logits", "targets");
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(x->ndim >= 1, op, "logits must have at least one dimension, got %s", ct_shp(x));
    const int C = x->shape[x->ndim - 1]; /* NaN or ±inf logits or targets give a non-finite loss */
    check_finite_option(op, "pos_weight", opts.pos_weight, C);
    check_finite_option(op, "weight", opts.weight, C);
}

ct_tensor *ct_bce_with_logits(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_bce_opts opts) {
    check_bce("ct_bce_with_logits", x, t, opts);
    if (ct_requires_grad(t)) return ct_bce_with_logits_reference(tape, x, t, opts);
    const int C = x->shape[x->ndim - 1];
    pointwise_saved ps = {.kind = opts.pos_weight || opts.weight ? PW_BCE_WEIGHTED : PW_BCE,
                          .reduction = (int)opts.reduction};
    ct_arena *arena = ct_tape_arena(tape);
    if (opts.pos_weight) {
        ps.pos_weight_minus_1 = ct_arena_alloc(arena, (size_t)(C ? C : 1) * sizeof(ct_real));
        for (int c = 0; c < C; c++) ps.pos_weight_minus_1[c] = opts.pos_weight[c] - 1;
    }
    if (opts.weight) {
        ps.weight = ct_arena_alloc(arena, (size_t)(C ? C : 1) * sizeof(ct_real));
        memcpy(ps.weight, opts.weight, (size_t)C * sizeof(ct_real));
    }
    return pointwise_loss(tape, x, t, ps);
}

ct_tensor *ct_bce_with_logits_reference(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_bce_opts opts) {
    check_bce("ct_bce_with_logits_reference", x, t, opts);
    const int C = x->shape[x->ndim - 1];
    ct_tensor *per = ct_mul(tape, ct_add_scalar(tape, ct_neg(tape, t), 1.0), x); /* (1 − t)·x */
    ct_tensor *sp = ct_softplus(tape, ct_neg(tape, x), 1.0, INFINITY);         /* softplus(−x) */
    if (opts.pos_weight) { /* l = 1 + (pw − 1)·t */
        ct_tensor *pw_minus_1 = ct_tape_zeros(tape, CT_SHAPE(C));
        for (int c = 0; c < C; c++) pw_minus_1->data[c] = opts.pos_weight[c] - 1;
        sp = ct_mul(tape, ct_add_scalar(tape, ct_mul(tape, t, pw_minus_1), 1.0), sp);
    }
    per = ct_add(tape, per, sp);
    if (opts.weight) per = ct_mul(tape, per, ct_tape_tensor_from(tape, CT_SHAPE(C), opts.weight));
    return reduce(tape, per, opts.reduction);
}

/* ---- regression losses on d = input − target, element-wise ---------------------------------- */
static void regression_checks(const char *op, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    check_same_shape(op, input, target, "input", "target");
    check_reduction(op, opts.reduction, 0); /* NaN or ±inf in input or target: a non-finite loss */
}

static ct_tensor *regression_fused(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts,
                                   int kind, double knee, double quad_scale, double lin_scale) {
    return pointwise_loss(tape, input, target,
                          (pointwise_saved){.kind = kind, .reduction = (int)opts.reduction, .knee = (ct_real)knee,
                                            .quad_scale = (ct_real)quad_scale, .lin_scale = (ct_real)lin_scale});
}

/* mse: d² */
ct_tensor *ct_mse_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    regression_checks("ct_mse_loss", input, target, opts);
    if (ct_requires_grad(target)) return ct_mse_loss_reference(tape, input, target, opts);
    return regression_fused(tape, input, target, opts, PW_MSE, 0, 0, 0);
}

ct_tensor *ct_mse_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    regression_checks("ct_mse_loss_reference", input, target, opts);
    ct_tensor *d = ct_sub(tape, input, target);
    return reduce(tape, ct_mul(tape, d, d), opts.reduction);
}

/* l1: |d| (gradient sign(d), 0 at d = 0 as PyTorch) */
ct_tensor *ct_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    regression_checks("ct_l1_loss", input, target, opts);
    if (ct_requires_grad(target)) return ct_l1_loss_reference(tape, input, target, opts);
    return regression_fused(tape, input, target, opts, PW_L1, 0, 0, 0);
}

ct_tensor *ct_l1_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    regression_checks("ct_l1_loss_reference", input, target, opts);
    return reduce(tape, ct_abs(tape, ct_sub(tape, input, target)), opts.reduction);
}

/* Piecewise quadratic / linear: where |d| < knee (or <= for huber) take quad_scale·½d², else
 * lin_scale·(|d| − ½·knee). smooth_l1: quad_scale = 1/β, lin_scale = 1, knee β; huber: 1, δ, δ. */
static ct_tensor *quadratic_then_linear(ct_tape *tape, ct_tensor *d, double knee, double quad_scale,
                                        double lin_scale, int closed) {
    ct_tensor *a = ct_abs(tape, d);
    ct_tensor *inside = ct_tape_zeros(tape, ct_tensor_shape(d));
    for (size_t k = 0; k < d->size; k++) {
        const double v = fabs((double)d->data[k]);
        inside->data[k] = closed ? v <= knee : v < knee;
    }
    ct_tensor *quad = ct_mul_scalar(tape, ct_mul(tape, d, d), 0.5 * quad_scale);
    ct_tensor *lin = ct_mul_scalar(tape, ct_add_scalar(tape, a, -0.5 * knee), lin_scale);
    return ct_where(tape, inside, quad, lin);
}

/* smooth_l1 (β >= 0): ½d²/β if |d| < β, else |d| − ½β; β = 0 is l1 (PyTorch) */
static void check_smooth_l1(const char *op, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    CT_CHECK(opts.beta >= 0 && isfinite(opts.beta), op, "beta %g must be finite and >= 0", opts.beta);
    regression_checks(op, input, target, opts);
}

ct_tensor *ct_smooth_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    check_smooth_l1("ct_smooth_l1_loss", input, target, opts);
    if (ct_requires_grad(target)) return ct_smooth_l1_loss_reference(tape, input, target, opts);
    return opts.beta == 0 ? regression_fused(tape, input, target, opts, PW_L1, 0, 0, 0)
                          : regression_fused(tape, input, target, opts, PW_SMOOTH_L1, opts.beta, 1.0 / opts.beta, 1.0);
}

ct_tensor *ct_smooth_l1_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    check_smooth_l1("ct_smooth_l1_loss_reference", input, target, opts);
    ct_tensor *d = ct_sub(tape, input, target);
    if (opts.beta == 0) return reduce(tape, ct_abs(tape, d), opts.reduction);
    return reduce(tape, quadratic_then_linear(tape, d, opts.beta, 1.0 / opts.beta, 1.0, 0), opts.reduction);
}

/* huber (δ > 0): ½d² if |d| <= δ, else δ·(|d| − ½δ) */
static void check_huber(const char *op, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    CT_CHECK(opts.delta > 0 && isfinite(opts.delta), op, "delta %g must be finite and > 0", opts.delta);
    regression_checks(op, input, target, opts);
}

ct_tensor *ct_huber_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    check_huber("ct_huber_loss", input, target, opts);
    if (ct_requires_grad(target)) return ct_huber_loss_reference(tape, input, target, opts);
    return regression_fused(tape, input, target, opts, PW_HUBER, opts.delta, 1.0, opts.delta);
}

ct_tensor *ct_huber_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    check_huber("ct_huber_loss_reference", input, target, opts);
    ct_tensor *d = ct_sub(tape, input, target);
    return reduce(tape, quadratic_then_linear(tape, d, opts.delta, 1.0, opts.delta, 1), opts.reduction);
}

/* ---- kl_div: input = log q, target = p (or log p), element-wise -------------------------------
 *   ℓ = p·(log p − input), with p·log p = 0 where p = 0 (xlogy): log is taken of where(p > 0, p, 1)
 *   log_target: ℓ = e^t·(t − input)
 * mean: over all elements (PyTorch's default, which is not the KL); batchmean: Σ / N. */
static void check_kl_div(const char *op, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts) {
    check_same_shape(op, input, target, "input", "target");
    check_reduction(op, opts.reduction, 1);
    CT_CHECK(input->ndim >= 1, op, "input must have at least one dimension, got %s", ct_shp(input));
    if (opts.log_target) return; /* NaN and ±inf in input or target are data: a non-finite loss */
    for (size_t k = 0; k < target->size; k++)
        CT_CHECK(!(target->data[k] < 0), op, "target %s has %g at flat index %zu (probabilities must be >= 0)",
                 ct_shp(target), (double)target->data[k], k);
}

ct_tensor *ct_kl_div(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts) {
    check_kl_div("ct_kl_div", input, target, opts);
    if (ct_requires_grad(target)) return ct_kl_div_reference(tape, input, target, opts);
    return pointwise_loss(tape, input, target,
                          (pointwise_saved){.kind = opts.log_target ? PW_KL_LOG : PW_KL, .reduction = (int)opts.reduction});
}

ct_tensor *ct_kl_div_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts) {
    check_kl_div("ct_kl_div_reference", input, target, opts);
    ct_tensor *per;
    if (opts.log_target) {
        per = ct_mul(tape, ct_exp(tape, target), ct_sub(tape, target, input));
    } else {
        ct_tensor *positive = ct_tape_zeros(tape, ct_tensor_shape(target));
        for (size_t k = 0; k < target->size; k++) positive->data[k] = target->data[k] > 0;
        ct_tensor *safe = ct_where(tape, positive, target, constant(tape, CT_SHAPE(1), 1.0));
        per = ct_mul(tape, target, ct_sub(tape, ct_log(tape, safe), input));
    }
    if (opts.reduction == CT_REDUCTION_BATCHMEAN)
        return ct_mul_scalar(tape, ct_sum_all(tape, per), 1.0 / (input->shape[0] ? input->shape[0] : 1));
    return reduce(tape, per, opts.reduction);
}

/* ---- knowledge distillation: student s, teacher t (N, C) ------------------------------------
 *   q = softmax(t/T) (teacher, detached),  ℓ_i = T²·Σ_c q_ic·(log q_ic − log softmax(s_i/T)_c)
 * per sample (N) for none; mean and batchmean both average over the N samples. */
ct_tensor *ct_distillation_loss(ct_tape *tape, ct_tensor *s, ct_tensor *t, ct_kd_opts opts) {
    static const char *op = "ct_distillation_loss";
    check_same_shape(op, s, t, "student_logits", "teacher_logits");
    CT_CHECK(s->ndim == 2, op, "logits must be 2-D (N, C), got %s", ct_shp(s));
    check_reduction(op, opts.reduction, 1);
    CT_CHECK(opts.temperature > 0 && isfinite(opts.temperature), op, "temperature %g must be > 0",
             opts.temperature);
    const double inv_T = 1.0 / opts.temperature;
    ct_tensor *tt = ct_mul_scalar(tape, ct_detach(tape, t), inv_T);
    ct_tensor *log_q = ct_log_softmax(tape, tt, 1);
    ct_tensor *q = ct_exp(tape, log_q);
    ct_tensor *log_p = ct_log_softmax(tape, ct_mul_scalar(tape, s, inv_T), 1);
    ct_tensor *per = ct_sum(tape, ct_mul(tape, q, ct_sub(tape, log_q, log_p)), 1, 0);
    per = ct_mul_scalar(tape, per, opts.temperature * opts.temperature);
    return reduce(tape, per, opts.reduction == CT_REDUCTION_BATCHMEAN ? CT_REDUCTION_MEAN : opts.reduction);
}

/* ---- sigmoid focal loss (torchvision.ops.sigmoid_focal_loss), element-wise -------------------
 *   p = σ(x), p_t = p·t + (1 − p)·(1 − t),  ℓ = α_t·(1 − p_t)^γ·bce_with_logits(x, t),
 *   α_t = α·t + (1 − α)·(1 − t) when α >= 0.
 * Fused (loss_pointwise) for targets in [0, 1] that do not require grad; the reference otherwise. */
static void check_sigmoid_focal(const char *op, ct_tensor *x, ct_tensor *t, ct_sigmoid_focal_opts opts) {
    check_same_shape(op, x, t, "logits", "targets");
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.gamma >= 0 && isfinite(opts.gamma), op, "gamma %g must be finite and >= 0", opts.gamma);
    CT_CHECK(isfinite(opts.alpha), op, "alpha %g is not finite", opts.alpha);
    CT_CHECK(x->ndim >= 1, op, "logits must have at least one dimension, got %s", ct_shp(x));
}

CT_KERNEL
ct_tensor *ct_sigmoid_focal_loss(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_sigmoid_focal_opts opts) {
    check_sigmoid_focal("ct_sigmoid_focal_loss", x, t, opts);
    if (!ct_requires_grad(t)) {
        ct_real lo = 0, hi = 1;
        const ct_real *td = t->data;
#pragma omp simd reduction(min : lo) reduction(max : hi)
        for (size_t k = 0; k < t->size; k++) {
            lo = td[k] < lo ? td[k] : lo;
            hi = td[k] > hi ? td[k] : hi;
        }
        if (lo >= 0 && hi <= 1)
            return pointwise_loss(tape, x, t,
                                  (pointwise_saved){.kind = opts.gamma == 2 ? PW_SIGMOID_FOCAL_2 : PW_SIGMOID_FOCAL,
                                                    .reduction = (int)opts.reduction,
                                                    .gamma = (ct_real)opts.gamma, .alpha = (ct_real)opts.alpha});
    }
    return ct_sigmoid_focal_loss_reference(tape, x, t, opts);
}

ct_tensor *ct_sigmoid_focal_loss_reference(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_sigmoid_focal_opts opts) {
    check_sigmoid_focal("ct_sigmoid_focal_loss_reference", x, t, opts);
    ct_tensor *ce = ct_bce_with_logits_reference(tape, x, t, CT_BCE(.reduction = CT_REDUCTION_NONE));
    ct_tensor *p = ct_sigmoid(tape, x);
    /* 1 − p_t = p + t − 2·p·t */
    ct_tensor *one_minus_pt = ct_sub(tape, ct_add(tape, p, t), ct_mul_scalar(tape, ct_mul(tape, p, t), 2.0));
    ct_tensor *mod = focal_modulator(tape, one_minus_pt, opts.gamma);
    ct_tensor *per = mod ? ct_mul(tape, ce, mod) : ce;
    if (opts.alpha >= 0) /* α_t = (1 − α) + (2α − 1)·t */
        per = ct_mul(tape, per, ct_add_scalar(tape, ct_mul_scalar(tape, t, 2 * opts.alpha - 1), 1 - opts.alpha));
    return reduce(tape, per, opts.reduction);
}
