/* losses/classification.c — the classification and regression losses of the zoo.
 *
 * Each loss is one fused op with a closed-form backward: a forward pass that computes the value
 * (and, for the softmax losses, two or three numbers per row) and a backward pass that writes the
 * gradient directly — no temporaries, one node on the tape. Composed from primitive ops, the
 * same losses cost one pass and one (N, C) temporary per op, and 5–15 tape nodes; that is what
 * made them slower than PyTorch (W5 in bench/). tests/test_loss_fused.c checks every fused loss
 * against the same loss composed from primitive ops, value and gradient, in every reduction.
 *
 * Four ops:
 *   loss_pointwise   element-wise losses on (input, target): mse, l1, smooth_l1, huber,
 *                    bce_with_logits, sigmoid_focal, kl_div
 *   loss_softmax     losses of the softmax row: focal, Poly-1 / Poly-N / Poly-1 focal,
 *                    comp-sum, squentropy, NCE + RCE
 *   loss_nll         nll on log-probabilities
 *   loss_stablemax   StableMax cross-entropy
 * A target that requires grad (the element-wise losses) takes the composed path, whose backward
 * also reaches the target; the fused ops differentiate with respect to the first input only.
 * The math of each loss is in losses/losses.h and losses/README.md; here it is next to the code. */
/* No floating-point trap is ever enabled in ctape, so GCC may evaluate both arms of a select:
 * under the default -ftrapping-math it keeps an arm that does arithmetic (a division, a product)
 * behind a branch, and a loop with a branch does not vectorise. This changes no result. */
#pragma GCC optimize("no-trapping-math")
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../autograd/op.h"
#include "../core/vmath.h"
#include "rows.h"

#include <math.h>
#include <string.h>

/* ---- shared checks and helpers ------------------------------------------------------------- */
/* Elements below which a fused loss stays on one thread. On the quiet 2-core machine two threads
 * take W5's (1024, 1000) softmax losses from about 1.18 ms to 0.65–0.74 ms (focal, comp_sum, gce,
 * poly1_focal); (1024, 10) stays on one thread, where a fork/join costs more than the work. On a
 * busy machine (load 5–9) a barrier waits for whichever thread was descheduled and two threads
 * took 2–6x longer than one: run with CTAPE_THREADS=1 or OMP_WAIT_POLICY=passive there. */
#define PARALLEL_WORK (1u << 17)
/* logits (N, C) with N labels in [0, C): fatal naming the loss and the index otherwise. Non-finite
 * logits are data: the loss computes on (NaN or +inf in a row: a NaN loss and gradient for it,
 * −inf: a class with probability 0, as in PyTorch), so an optimizer's non-finite guard sees it. */
static void check_logits(const char *op, const ct_tensor *z, ct_labels y) {
    CT_CHECK(z && z->ndim == 2, op, "logits must be 2-D (N, C), got %s", z ? ct_shp(z) : "NULL");
    const int N = z->shape[0], C = z->shape[1];
    CT_CHECK(C > 0, op, "logits %s have no classes", ct_shp(z));
    CT_CHECK(y.n == N, op, "%d labels for logits %s with N = %d rows", y.n, ct_shp(z), N);
    CT_CHECK(y.data || N == 0, op, "labels are NULL for logits %s", ct_shp(z));
    for (int i = 0; i < N; i++)
        CT_CHECK(y.data[i] >= 0 && y.data[i] < C, op, "label %d of sample %d is out of range for C = %d classes",
                 y.data[i], i, C);
}

static void check_same_shape(const char *op, const ct_tensor *a, const ct_tensor *b, const char *an, const char *bn) {
    CT_CHECK(a && b, op, "%s or %s is NULL", an, bn);
    int same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    CT_CHECK(same, op, "%s %s and %s %s must have the same shape", an, ct_shp(a), bn, ct_shp(b));
}

static void check_reduction(const char *op, ct_reduction r, int allow_batchmean) {
    CT_CHECK(r == CT_REDUCTION_MEAN || r == CT_REDUCTION_SUM || r == CT_REDUCTION_NONE ||
                 (allow_batchmean && r == CT_REDUCTION_BATCHMEAN),
             op, "reduction %d is not %s", (int)r, allow_batchmean ? "mean, sum, none or batchmean" : "mean, sum or none");
}

/* mean / sum over every element, or the tensor itself for none. */
/* The backward's g for every sample of a sum (dℓ) or a mean over `divisor` (dℓ/divisor; none
 * when the divisor is 0: a mean over nothing passes no gradient, as in PyTorch); 0 for none,
 * whose g_i is dout[i]. */
static double uniform_g(int reduction, const ct_real *dout, double divisor) {
    if (reduction == CT_REDUCTION_NONE) return 0;
    if (reduction == CT_REDUCTION_SUM) return (double)dout[0];
    return divisor == 0 ? 0 : (double)dout[0] / divisor;
}

static ct_tensor *reduce(ct_tape *tape, ct_tensor *per, ct_reduction r) {
    if (r == CT_REDUCTION_NONE) return per;
    if (r == CT_REDUCTION_SUM) return ct_sum_all(tape, per);
    return ct_mean_all(tape, per);
}

/* A constant (no gradient) arena tensor. */
static ct_tensor *constant(ct_tape *tape, ct_shape shape, double value) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    if (value != 0) ct_tensor_fill(t, (ct_real)value);
    return t;
}

/* (1 − p)^γ composed (the sigmoid focal loss's composed path). For 0 < γ < 1 the derivative γ·x^(γ−1) is infinite at x = 0 (p_y = 1 exactly,
 * logits far apart): x is clamped to [1e-30, 1] there, so the gradient is 0 instead of 0·∞ = NaN
 * and the value changes by less than 1e-30^γ·|log p_y| ≈ 0. */
static ct_tensor *focal_modulator(ct_tape *tape, ct_tensor *one_minus, double gamma) {
    if (gamma == 0) return NULL;
    if (gamma == 1) return one_minus;
    if (gamma == 2) return ct_mul(tape, one_minus, one_minus);
    if (gamma < 1) one_minus = ct_clamp(tape, one_minus, 1e-30, 1.0);
    return ct_pow_scalar(tape, one_minus, gamma);
}

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

/* ---- loss_softmax: losses of one softmax row, fused ------------------------------------------
 * Row i of logits z (N, C), label y, m_i = max_c z_ic, log s_i = log Σ_c e^(z_ic − m_i):
 *     u_i = CE_i = (m_i − z_iy) + log s_i,   p_iy = e^(−u_i),   q_i = 1 − p_iy = −expm1(−u_i)
 * (q from expm1: no cancellation when p_iy is close to 1). Every loss here is ℓ_i(u_i, …) and its
 * gradient has the closed form
 *     ∂ℓ_i/∂z_ic = A_i·p_ic + B_i + D_i·[c = y_i] + E·z_ic·[c ≠ y_i]
 * with A, B, D per row from the forward and E a constant:
 *   f(u) losses (focal, Poly, comp-sum): ∂u/∂z_c = p_c − [c = y]: A = f'(u), B = 0, D = −f'(u)
 *   squentropy, u + Σ_{c≠y} z_c²/(C − 1): A = 1, D = −1, E = 2/(C − 1)
 *   NCE + RCE, with L = log p_y = −u, S = Σ_k log p_k, ∂L/∂z_c = [c = y] − p_c, ∂S/∂z_c = 1 − C·p_c:
 *       NCE = L/S:        A = −1/S + C·L/S², B = −L/S², D = 1/S       (times α)
 *       RCE = −A₀·q:      A = −A₀·p_y, D = A₀·p_y                    (times β; A₀ = log_zero)
 * The forward keeps A, B, D per row and copies the labels. Long rows keep m_i and log s_i, and
 * the backward recomputes p_ic = e^((z_ic − m_i) − log s_i) (not e^(z_ic − (m_i + log s_i)),
 * whose sum rounds log s_i away when |m_i| ~ 1e4); short rows (C < SHORT_ROW, losses/rows.h)
 * keep the whole row_grad_ic = ∂ℓ_i/∂z_ic, made while the forward has e^(z − m) in cache. Per-row math
 * is in double; the (N, C) passes are float, vectorised, and split over threads above PARALLEL_WORK. */
enum { SM_FOCAL_POLY, SM_COMP_SUM, SM_SQUENTROPY, SM_NCE_RCE };

typedef struct {
    int kind;
    double gamma, alpha;             /* focal part α·(1 − p_y)^γ·u (γ = 0, α = 1: plain CE) */
    const ct_real *alpha_per_class;  /* or NULL */
    const double *eps;               /* Poly terms Σ_j ε_j·(1 − p_y)^(power_j) */
    const double *eps_power;
    int n_eps;
    double k;                        /* comp-sum: 1 − τ (≠ 0) */
    double nce_alpha, nce_beta, log_zero;
} softmax_spec;

typedef struct {
    int *labels;
    ct_real *max;   /* N: m_i */
    double *log_sum; /* N: log s_i (long rows recompute p from m and log s) */
    ct_real *row_grad; /* short rows: ∂ℓ_i/∂z_ic (N, C) from the forward; long rows NULL */
    double *coef;   /* 3N: A_i, B_i, D_i */
    double square;  /* E */
    int reduction;
} softmax_saved;

/* (1 − p)^γ and its derivative in double, as focal_modulator composes it (clamp for γ < 1). */
static inline double power_and_slope(double q, double gamma, double *slope) {
    if (gamma == 0) return *slope = 0, 1;
    if (gamma == 1) return *slope = 1, q;
    if (gamma == 2) return *slope = 2 * q, q * q;
    if (gamma == (int)gamma && gamma <= 16) { /* small integer powers by products: pow costs ~30 ns */
        double below = 1;                       /* q^(γ−1) */
        for (int j = 1; j < (int)gamma; j++) below *= q;
        return *slope = gamma * below, below * q;
    }
    if (gamma < 1) {
        const int inside = q >= 1e-30 && q <= 1;
        q = q < 1e-30 ? 1e-30 : (q > 1 ? 1 : q);
        const double power = pow(q, gamma);
        *slope = inside ? gamma * power / q : 0;
        return power;
    }
    *slope = gamma * pow(q, gamma - 1);
    return pow(q, gamma);
}

/* ℓ_i and A, B, D of one row from u = CE_i and the row's extra sums (squares: Σ_{c≠y} z_c²;
 * log_sum_all: S = Σ_k log p_k). */
static double softmax_row_loss(const softmax_spec *sp, int C, int y, double u, double p, double q, double squares,
                               double log_sum_all, double *A, double *B, double *D) {
    *B = 0;
    switch (sp->kind) {
    case SM_SQUENTROPY:
        *A = 1, *D = -1;
        return u + squares / (C - 1);
    case SM_COMP_SUM: { /* (p^(τ−1) − 1)/(1 − τ) = expm1(k·u)/k, f' = e^(k·u); one libm call
                            unless k·u is small, where e^(k·u) − 1 would cancel */
        const double ku = sp->k * u, power = exp(ku);
        *A = power, *D = -power;
        return (fabs(ku) < 0.5 ? expm1(ku) : power - 1) / sp->k;
    }
    case SM_NCE_RCE: {
        const double L = -u, S = log_sum_all, a = sp->nce_alpha, b = sp->nce_beta, A0 = sp->log_zero;
        *A = a * (-1 / S + C * L / (S * S)) - b * A0 * p;
        *B = -a * L / (S * S);
        *D = a / S + b * A0 * p;
        return a * (L / S) + b * (-A0 * q);
    }
    default: { /* α·(1 − p)^γ·u + Σ_j ε_j·(1 − p)^(power_j); d/du of (1 − p) is p */
        const double a = sp->alpha_per_class ? sp->alpha_per_class[y] : sp->alpha;
        double dmod;
        const double mod = power_and_slope(q, sp->gamma, &dmod);
        double value = a * (mod * u), slope = a * (dmod * p * u + mod);
        for (int j = 0; j < sp->n_eps; j++) {
            double dterm;
            const double term = power_and_slope(q, sp->eps_power[j], &dterm);
            value += sp->eps[j] * term;
            slope += sp->eps[j] * dterm * p;
        }
        *A = slope, *D = -slope;
        return value;
    }
    }
}

/* ℓ_i of rows [i0, i1) into out (none), the coefficients into s (when recording); from each row's
 * shift m_i, log s_i (double), e_i = e^(z_iy − m_i), o_i = Σ_{c≠y} e^(z_ic − m_i) and extra_i
 * (squentropy: Σ_{c≠y} z_c²; NCE: Σ_c z_c − C·m_i). Returns Σ ℓ_i, with the rounding error of that
 * sum added to *low (compensated summation). */
static double softmax_row_losses(const softmax_spec *sp, const ct_real *z, int C, const int *labels, softmax_saved *s,
                                 const ct_real *max, const double *log_sum, const ct_real *e, const ct_real *o,
                                 const double *extra, ct_real *out, int i0, int i1, double *low) {
    double total = 0, lost = 0; /* Neumaier's compensated sum: the low-order bits the additions drop */
    for (int i = i0; i < i1; i++) {
        const int y = labels[i];
        const double sum = (double)e[i] + o[i];
        const double u = ((double)max[i] - z[(size_t)i * C + y]) + log_sum[i], p = e[i] / sum, q = o[i] / sum;
        const double squares = sp->kind == SM_SQUENTROPY ? extra[i] : 0;
        const double log_sum_all = sp->kind == SM_NCE_RCE ? extra[i] - C * log_sum[i] : 0;
        double *coef = s ? s->coef + 3 * (size_t)i : (double[3]){0};
        const double v = softmax_row_loss(sp, C, y, u, p, q, squares, log_sum_all, &coef[0], &coef[1], &coef[2]);
        if (out) out[i] = (ct_real)v;
        /* compensated: with one large term (comp-sum's e^u ~ 1e3) a plain sum's roundings move
         * the total by a few ulps between two nearby inputs, which a float64 gradient check's
         * central difference (h = 1e-6) turns into 1e-7 of error */
        const double next = total + v;
        const double dropped = fabs(total) >= fabs(v) ? (total - next) + v : (v - next) + total;
        lost += isfinite(next) ? dropped : 0; /* an infinite total has no low-order bits (inf − inf) */
        total = next;
    }
    *low += lost;
    return total;
}

/* squentropy's Σ_{c≠y} z_c² (the label's logit masked out, not subtracted: it may dwarf the rest)
 * or NCE's Σ_c z_c − C·m (the shift taken out in double), of rows [0, rows) */
static CT_ALWAYS_INLINE void extra_sums(int kind, const ct_real *restrict z, const int *restrict labels,
                                        const ct_real *restrict shift, double *restrict extra, int rows, int C) {
    for (int i = 0; i < rows; i++) {
        const ct_real *zr = z + (size_t)i * C;
        const int y = labels[i];
        double sum = 0;
        if (kind == SM_SQUENTROPY) {
            ct_real squares = 0;
            for (int c = 0; c < C; c++) squares += c == y ? 0 : zr[c] * zr[c];
            sum = squares;
            if (!isfinite(squares)) { /* z² overflows float from |z| ≈ 1.8e19: that row again in double */
                sum = 0;
                for (int c = 0; c < C; c++) sum += c == y ? 0 : (double)zr[c] * zr[c];
            }
        } else {
            for (int c = 0; c < C; c++) sum += zr[c];
            sum -= (double)C * shift[i];
        }
        extra[i] = sum;
    }
}

/* Short rows [i0, i1), C < SHORT_ROW, block by block (losses/rows.h): the block's maximum as every
 * row's shift, as in losses/cross_entropy.c's short_row_stats (whose comment has the accuracy
 * argument: e^(z − M) as if z − M were exact, log s in double, rows whose maximum lies more than
 * about 42 below M redone with their own), then the rows' losses, and when recording the
 * backward's row_grad_ic = e^(z_ic − m_i)·(A_i/s_i) + B_i + D_i·[c = y_i] + E·z_ic·[c ≠ y_i], while e is
 * in cache.
 * max, e, o: N floats; log_sum, extra: N doubles. */
CT_KERNEL
static double softmax_forward_short(const softmax_spec *sp, const ct_real *z, int C, const int *labels,
                                    softmax_saved *s, ct_real *max, double *log_sum, ct_real *e, ct_real *o,
                                    double *extra, ct_real *out, int i0, int i1, double *low) {
    ct_real eb[BLOCK], scale[BLOCK], offset[BLOCK];
    const int rows = BLOCK / C, needs_extra = sp->kind == SM_SQUENTROPY || sp->kind == SM_NCE_RCE;
    double total = 0;
    for (int b0 = i0; b0 < i1; b0 += rows) {
        const int b1 = b0 + rows < i1 ? b0 + rows : i1, nb = b1 - b0, n = nb * C;
        const ct_real *zb = z + (size_t)b0 * C;
        const ct_real M = ct_block_max(zb, n);
#pragma omp simd
        for (int k = 0; k < n; k++) eb[k] = ct_exp_difference(zb[k], M);
#define SPLIT(K) ct_rows_split_label(e + b0, o + b0, eb, labels + b0, nb, K)
        CT_WITH_SMALL_C(C, SPLIT)
#undef SPLIT
        int redo = 0;
#pragma omp simd reduction(+ : redo)
        for (int i = b0; i < b1; i++) {
            redo += !(e[i] + o[i] >= CT_SHARED_SHIFT_MIN_SUM); /* NaN too: an overflowing z − M */
            max[i] = M;
        }
        for (int i = b0; redo && i < b1; i++) { /* rare: the row's own maximum */
            if (e[i] + o[i] >= CT_SHARED_SHIFT_MIN_SUM) continue;
            const ct_real *zr = zb + (size_t)(i - b0) * C;
            ct_real *er = eb + (i - b0) * C, m = zr[0];
            for (int c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
            ct_real others = 0;
            for (int c = 0; c < C; c++) {
                er[c] = ct_exp_nonpositive(zr[c] - m);
                others += c == labels[i] ? 0 : er[c];
            }
            max[i] = m, e[i] = er[labels[i]], o[i] = others;
        }
#pragma omp simd
        for (int i = b0; i < b1; i++) log_sum[i] = ct_vlog_wide(e[i] + o[i]);
        for (int i = b0; redo && i < b1; i++) /* a NaN or +inf logit: ct_vlog_wide reads a NaN's bits as a number */
            if (e[i] + o[i] != e[i] + o[i]) log_sum[i] = NAN;
        if (needs_extra) {
#define EXTRA(K) extra_sums(sp->kind, zb, labels + b0, max + b0, extra + b0, nb, K)
            CT_WITH_SMALL_C(C, EXTRA)
#undef EXTRA
        }
        total += softmax_row_losses(sp, z, C, labels, s, max, log_sum, e, o, extra, out, b0, b1, low);
        if (s) {
            for (int i = b0; i < b1; i++) {
                scale[i - b0] = (ct_real)(s->coef[3 * (size_t)i] / ((double)e[i] + o[i]));
                offset[i - b0] = (ct_real)s->coef[3 * (size_t)i + 1];
            }
            ct_real *gb = s->row_grad + (size_t)b0 * C;
#define ROW_GRAD(K) ct_rows_scale(gb, eb, scale, offset, nb, K)
            CT_WITH_SMALL_C(C, ROW_GRAD)
#undef ROW_GRAD
            if (s->square != 0) { /* + E·z, which the label's element drops again just below */
                const ct_real E = (ct_real)s->square;
#pragma omp simd
                for (int k = 0; k < n; k++) gb[k] += E * zb[k];
            }
            for (int i = b0; i < b1; i++) { /* the label's element, written whole: A·p_y + B + D */
                const size_t k = (size_t)(i - b0) * C + labels[i];
                gb[k] = eb[k] * scale[i - b0] + offset[i - b0] + (ct_real)s->coef[3 * (size_t)i + 2];
            }
        }
    }
    return total;
}

/* Long rows [i0, i1) one at a time: m_i = max_c z_ic, e_i = e^(z_iy − m_i) and
 * o_i = Σ_{c≠y} e^(z_ic − m_i), so s_i = e_i + o_i, p_y = e_i/s_i and 1 − p_y = o_i/s_i without
 * cancellation; then the rows' losses. */
CT_KERNEL
static double softmax_forward_long(const softmax_spec *sp, const ct_real *z, int C, const int *labels,
                                   softmax_saved *s, ct_real *max, double *log_sum, ct_real *e, ct_real *o,
                                   double *extra, ct_real *out, int i0, int i1, double *low) {
    for (int i = i0; i < i1; i++) {
        const ct_real *restrict zr = z + (size_t)i * C;
        const int y = labels[i];
        ct_real m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int c = 0; c < C; c++) m = zr[c] > m ? zr[c] : m;
        /* the classes other than y as two plain ranges: GCC kept a masked sum's accumulator on
         * the stack (squentropy (1024, 1000), one thread: 1.21 ms with it, 0.93–1.05 without) */
        ct_real others = 0;
#pragma omp simd reduction(+ : others)
        for (int c = 0; c < y; c++) others += ct_exp_nonpositive(zr[c] - m);
#pragma omp simd reduction(+ : others)
        for (int c = y + 1; c < C; c++) others += ct_exp_nonpositive(zr[c] - m);
        max[i] = m, o[i] = others, e[i] = ct_exp_nonpositive(zr[y] - m);
        log_sum[i] = ct_vlog(e[i] + o[i]); /* s_i in [1, C]: the float log is enough */
        if (sp->kind == SM_SQUENTROPY) {
            ct_real sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int c = 0; c < y; c++) sum += zr[c] * zr[c];
#pragma omp simd reduction(+ : sum)
            for (int c = y + 1; c < C; c++) sum += zr[c] * zr[c];
            extra[i] = sum;
            if (!isfinite(sum)) { /* z² overflows float from |z| ≈ 1.8e19: that row again in double */
                double wide = 0;
                for (int c = 0; c < C; c++) wide += c == y ? 0 : (double)zr[c] * zr[c];
                extra[i] = wide;
            }
        } else if (sp->kind == SM_NCE_RCE) {
            ct_real sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int c = 0; c < C; c++) sum += zr[c] - m;
            extra[i] = sum;
        }
    }
    return softmax_row_losses(sp, z, C, labels, s, max, log_sum, e, o, extra, out, i0, i1, low);
}

/* Forward of rows [i0, i1): the loss values, and with s what the backward needs. */
static double softmax_forward_rows(const softmax_spec *sp, const ct_real *z, int C, const int *labels,
                                   softmax_saved *s, ct_real *max, double *log_sum, ct_real *e, ct_real *o,
                                   double *extra, ct_real *out, int i0, int i1, double *low) {
    *low = 0;
    return C < SHORT_ROW ? softmax_forward_short(sp, z, C, labels, s, max, log_sum, e, o, extra, out, i0, i1, low)
                         : softmax_forward_long(sp, z, C, labels, s, max, log_sum, e, o, extra, out, i0, i1, low);
}

/* dz_ic += g_i·∂ℓ_i/∂z_ic over rows [i0, i1). Short rows have it whole from the forward (row_grad);
 * long rows recompute p and write the label's element whole (A·p_y + B + D on top of its gradient
 * before): adding E·z_iy with every class and subtracting it again would lose the rest of that
 * element when |z_iy| is large (z_iy = −1e30 left 0 where the gradient is −g). */
CT_KERNEL
static void softmax_backward_rows(const softmax_saved *s, const ct_real *z, int C, const ct_real *dout,
                                  double g_all, ct_real *dz, int i0, int i1) {
    if (s->row_grad) { /* short rows */
        const size_t k0 = (size_t)i0 * C, k1 = (size_t)i1 * C;
        if (!dout) { /* one g for all rows: one flat pass */
            const ct_real g = (ct_real)g_all;
#pragma omp simd
            for (size_t k = k0; k < k1; k++) dz[k] += g * s->row_grad[k];
        } else {
#define ACCUMULATE(K) ct_rows_accumulate(dz + k0, s->row_grad + k0, dout + i0, i1 - i0, K)
            CT_WITH_SMALL_C(C, ACCUMULATE)
#undef ACCUMULATE
        }
        return;
    }
    const ct_real square = (ct_real)s->square;
    for (int i = i0; i < i1; i++) { /* long rows: p_ic = e^((z_ic − m_i) − log s_i) recomputed */
        const double g = dout ? (double)dout[i] : g_all;
        const int y = s->labels[i];
        const ct_real *restrict zr = z + (size_t)i * C;
        ct_real *restrict dr = dz + (size_t)i * C;
        const ct_real a = (ct_real)(g * s->coef[3 * (size_t)i]), b = (ct_real)(g * s->coef[3 * (size_t)i + 1]);
        const ct_real d = (ct_real)(g * s->coef[3 * (size_t)i + 2]);
        const ct_real m = s->max[i], log_sum = (ct_real)s->log_sum[i], e = (ct_real)g * square;
        const ct_real before = dr[y];
#pragma omp simd
        for (int c = 0; c < C; c++) dr[c] += a * ct_exp_nonpositive((zr[c] - m) - log_sum) + b + e * zr[c];
        dr[y] = before + ((a * ct_exp_nonpositive((zr[y] - m) - log_sum) + b) + d);
    }
}

CT_KERNEL
static void softmax_loss_backward(ct_tape *tape, ct_node *nd) {
    const softmax_saved *s = nd->extra;
    ct_tensor *z = nd->in[0];
    ct_real *dz = ct_grad_of(tape, z);
    const ct_real *dout = nd->out->grad;
    const int N = z->shape[0], C = z->shape[1];
    const int none = s->reduction == CT_REDUCTION_NONE;
    const double g_all = uniform_g(s->reduction, dout, N);
    if (z->size < PARALLEL_WORK) {
        softmax_backward_rows(s, z->data, C, none ? dout : NULL, g_all, dz, 0, N);
        return;
    }
    const int blocks = ct_max_threads();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < blocks; b++)
        softmax_backward_rows(s, z->data, C, none ? dout : NULL, g_all, dz, (int)((long)N * b / blocks),
                              (int)((long)N * (b + 1) / blocks));
}
const ct_op ct_op_loss_softmax = {
    "loss_softmax",
    "ℓ_i = f(CE_i, …) of softmax(z_i) (focal, poly, comp-sum, squentropy, nce+rce); "
    "dz_ic = g_i·(A_i·p_ic + B_i + D_i·[c = y_i] + E·z_ic·[c ≠ y_i])",
    softmax_loss_backward};

/* The fused softmax-row loss; z and labels checked by the caller. */
static ct_tensor *softmax_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_reduction reduction,
                               const softmax_spec *sp) {
    const int N = z->shape[0], C = z->shape[1];
    const int none = reduction == CT_REDUCTION_NONE;
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, none ? CT_SHAPE(N) : (ct_shape){.ndim = 0}, &ct_op_loss_softmax, &z, 1, &nd);
    softmax_saved *s = NULL;
    ct_arena *arena = ct_tape_arena(tape);
    const size_t n = (size_t)(N ? N : 1);
    ct_real *scratch = ct_arena_alloc(arena, 3 * n * sizeof *scratch); /* m, e, o */
    ct_real *max = scratch, *e = scratch + n, *o = scratch + 2 * n;
    double *log_sum = ct_arena_alloc(arena, 2 * n * sizeof *log_sum), *extra = log_sum + n;
    if (nd) {
        s = ct_arena_alloc(arena, sizeof *s);
        s->labels = ct_arena_alloc(arena, n * sizeof *s->labels);
        if (N) memcpy(s->labels, y.data, (size_t)N * sizeof *s->labels);
        s->max = max;
        s->log_sum = log_sum;
        s->row_grad = C < SHORT_ROW ? ct_arena_alloc(arena, n * C * sizeof *s->row_grad) : NULL;
        s->coef = ct_arena_alloc(arena, 3 * n * sizeof *s->coef);
        s->square = sp->kind == SM_SQUENTROPY ? 2.0 / (C - 1) : 0;
        s->reduction = (int)reduction;
        nd->extra = s;
    }
    double total = 0, low = 0;
    if (z->size < PARALLEL_WORK) {
        total = softmax_forward_rows(sp, z->data, C, y.data, s, max, log_sum, e, o, extra,
                                     none ? out->data : NULL, 0, N, &low);
    } else {
        const int blocks = ct_max_threads();
#pragma omp parallel for schedule(static) reduction(+ : total, low)
        for (int b = 0; b < blocks; b++) {
            double block_low;
            total += softmax_forward_rows(sp, z->data, C, y.data, s, max, log_sum, e, o, extra,
                                          none ? out->data : NULL, (int)((long)N * b / blocks),
                                          (int)((long)N * (b + 1) / blocks), &block_low);
            low += block_low;
        }
    }
    if (reduction == CT_REDUCTION_SUM) out->data[0] = (ct_real)(total + low);
    if (reduction == CT_REDUCTION_MEAN) { /* (total + low)/N rounded once: q + (exact remainder + low)/N */
        const double q = total / N;
        out->data[0] = (ct_real)(q + (fma(-q, N, total) + low) / N);
    }
    return out;
}

/* ---- loss_nll: −w_{y_i}·x_{i,y_i}, fused ------------------------------------------------------
 * Saved: the per-sample weights (0 for ignored samples), the labels, and the mean's divisor. */
typedef struct {
    int *index;
    ct_real *w;
    double denom;
    int reduction;
} nll_saved;

CT_KERNEL
static void nll_backward(ct_tape *tape, ct_node *nd) {
    const nll_saved *s = nd->extra;
    ct_tensor *x = nd->in[0];
    ct_real *dx = ct_grad_of(tape, x);
    const ct_real *dout = nd->out->grad;
    const int N = x->shape[0], C = x->shape[1];
    const int none = s->reduction == CT_REDUCTION_NONE;
    const double g_all = uniform_g(s->reduction, dout, s->denom); /* all ignored: mean NaN, gradient 0 */
    for (int i = 0; i < N; i++) {
        const double g = none ? (double)dout[i] : g_all;
        dx[(size_t)i * C + s->index[i]] -= (ct_real)(g * s->w[i]);
    }
}
const ct_op ct_op_loss_nll = {"loss_nll", "ℓ_i = −w_{y_i}·x_{i,y_i}; dx_{i,y_i} = −g_i·w_{y_i}", nll_backward};

/* ---- loss_stablemax: log Σ_k s(z_ik) − log s(z_iy), fused -------------------------------------
 * s(x) = x + 1 (x ≥ 0), 1/(1 − x) (x < 0); s'(x) = 1, 1/(1 − x)² — C¹ at 0. With T_i = Σ_k s(z_ik):
 *     ∂ℓ_i/∂z_ic = s'(z_ic)/T_i − [c = y]·s'(z_iy)/s(z_iy).   Saved: T_i (N) and the labels. */
typedef struct {
    int *labels;
    double *total;
    int reduction;
} stablemax_saved;

/* Both arms are evaluated: neg is x below 0 (and NaN, which then stays NaN), 0 above, so the
 * unused arm never divides by zero. */
static inline ct_real stablemax_s(ct_real x) {
    const ct_real neg = x >= 0 ? 0 : x;
    return x >= 0 ? x + 1 : 1 / (1 - neg);
}
static inline ct_real stablemax_slope(ct_real x) {
    const ct_real neg = x >= 0 ? 0 : x, r = 1 / (1 - neg);
    return x >= 0 ? 1 : r * r;
}

CT_KERNEL
static void stablemax_backward(ct_tape *tape, ct_node *nd) {
    const stablemax_saved *s = nd->extra;
    ct_tensor *z = nd->in[0];
    ct_real *dz = ct_grad_of(tape, z);
    const ct_real *dout = nd->out->grad;
    const int N = z->shape[0], C = z->shape[1];
    const int none = s->reduction == CT_REDUCTION_NONE;
    const double g_all = uniform_g(s->reduction, dout, N);
    if (C < SHORT_ROW) { /* short rows: s'(z) of a block in one flat vectorised loop */
        ct_real buf[BLOCK];
        const int rows = BLOCK / C;
        for (int b0 = 0; b0 < N; b0 += rows) {
            const int b1 = b0 + rows < N ? b0 + rows : N, n = (b1 - b0) * C;
            const ct_real *restrict zb = z->data + (size_t)b0 * C;
#pragma omp simd
            for (int k = 0; k < n; k++) buf[k] = stablemax_slope(zb[k]);
            for (int i = b0; i < b1; i++) {
                const double g = none ? (double)dout[i] : g_all;
                const ct_real a = (ct_real)(g / s->total[i]), *br = buf + (i - b0) * C;
                ct_real *dr = dz + (size_t)i * C;
                for (int c = 0; c < C; c++) dr[c] += a * br[c];
                const int y = s->labels[i];
                dr[y] -= (ct_real)(g * (double)br[y] / (double)stablemax_s(zb[(size_t)(i - b0) * C + y]));
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (z->size >= PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const double g = none ? (double)dout[i] : g_all;
        const ct_real *restrict zr = z->data + (size_t)i * C;
        ct_real *restrict dr = dz + (size_t)i * C;
        const ct_real a = (ct_real)(g / s->total[i]);
#pragma omp simd
        for (int c = 0; c < C; c++) dr[c] += a * stablemax_slope(zr[c]);
        const int y = s->labels[i];
        dr[y] -= (ct_real)(g * (double)stablemax_slope(zr[y]) / (double)stablemax_s(zr[y]));
    }
}
const ct_op ct_op_loss_stablemax = {
    "loss_stablemax", "ℓ_i = log Σ_k s(z_ik) − log s(z_iy); dz_ic = g_i·(s'(z_ic)/T_i − [c = y]·s'(z_iy)/s(z_iy))",
    stablemax_backward};

/* ---- nll: log-probabilities x (N, C) ---------------------------------------------------------
 *   ℓ_i = −w_{y_i}·x_{i,y_i}, 0 for y_i = ignore_index;  mean = Σ_i ℓ_i / Σ_i w_{y_i} (kept).
 * Fused (loss_nll): one pass over the N labels forward, one scatter backward. All ignored: mean is
 * 0/0 = NaN with a zero gradient, as in PyTorch. */
CT_KERNEL
ct_tensor *ct_nll_loss(ct_tape *tape, ct_tensor *x, ct_labels y, ct_nll_opts opts) {
    static const char *op = "ct_nll_loss";
    CT_CHECK(x && x->ndim == 2, op, "log_probs must be 2-D (N, C), got %s", x ? ct_shp(x) : "NULL");
    check_reduction(op, opts.reduction, 0);
    const int N = x->shape[0], C = x->shape[1];
    CT_CHECK(y.n == N, op, "%d labels for log_probs %s with N = %d rows", y.n, ct_shp(x), N);
    CT_CHECK(y.data || N == 0, op, "labels are NULL for log_probs %s", ct_shp(x));
    ct_arena *arena = ct_tape_arena(tape);
    int *index = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *index);
    ct_real *w = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *w);
    const int none = opts.reduction == CT_REDUCTION_NONE;
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, none ? CT_SHAPE(N) : (ct_shape){.ndim = 0}, &ct_op_loss_nll, &x, 1, &nd);
    double denom = 0, total = 0;
    int bad = 0; /* vectorised passes; when they find a bad label, weight or NaN, the loop below names it */
    const ct_real *weight = opts.weight;
#pragma omp simd reduction(| : bad)
    for (int i = 0; i < N; i++) {
        const int yi = y.data[i], kept = yi != opts.ignore_index, in_range = (unsigned)yi < (unsigned)C;
        const int k = kept && in_range ? yi : 0; /* an ignored sample reads class 0 with weight 0 */
        const ct_real wi = kept && in_range ? (weight ? weight[k] : 1) : 0;
        bad |= (kept & !in_range) | (wi - wi != 0); /* w − w: NaN for ±inf */
        index[i] = k, w[i] = wi;
    }
#pragma omp simd reduction(+ : denom, total)
    for (int i = 0; i < N; i++) {
        const ct_real xi = x->data[(size_t)i * C + index[i]], wi = w[i];
        denom += wi;
        const ct_real v = y.data[i] != opts.ignore_index ? -(xi * wi) : 0; /* ignored: exactly 0 */
        if (none) out->data[i] = v;
        total += v;
    }
    bad |= isnan(total); /* or a NaN read, which the loop lets through */
    for (int i = 0; bad && i < N; i++) {
        const int yi = y.data[i];
        CT_CHECK(yi == opts.ignore_index || (yi >= 0 && yi < C), op,
                 "label %d of sample %d is out of range for C = %d classes (ignore_index is %d)", yi, i, C,
                 opts.ignore_index);
        CT_CHECK(isfinite(w[i]), op, "weight[%d] = %g is not finite", yi, (double)w[i]);
    } /* a NaN log-probability at a label is data: the loss is NaN (its gradient, −w, is not) */
    if (!none) /* all ignored: the mean is 0/0 = NaN with a zero gradient, as in PyTorch */
        out->data[0] = (ct_real)(opts.reduction == CT_REDUCTION_SUM ? total : denom == 0 ? NAN : total / denom);
    if (nd) {
        nll_saved *s = ct_arena_alloc(arena, sizeof *s);
        *s = (nll_saved){.index = index, .w = w, .denom = denom, .reduction = (int)opts.reduction};
        nd->extra = s;
    }
    return out;
}

/* ---- binary cross-entropy with logits: x, t of the same shape, C = last dimension ------------
 *   ℓ = w_c·[(1 − t)·x + l·softplus(−x)],  l = 1 + (pw_c − 1)·t
 * which is −w·[pw·t·log σ(x) + (1 − t)·log(1 − σ(x))] rewritten with log σ(x) = −softplus(−x)
 * and log(1 − σ(x)) = −x − softplus(−x): no exp of a large number, finite for any finite x.
 * softplus runs without PyTorch's linear threshold (∞), so it stays exact in float64. */
ct_tensor *ct_bce_with_logits(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_bce_opts opts) {
    static const char *op = "ct_bce_with_logits";
    check_same_shape(op, x, t, "logits", "targets");
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(x->ndim >= 1, op, "logits must have at least one dimension, got %s", ct_shp(x));
    const int C = x->shape[x->ndim - 1]; /* NaN or ±inf logits or targets give a non-finite loss */
    if (!ct_requires_grad(t)) { /* fused */
        pointwise_saved ps = {.kind = opts.pos_weight || opts.weight ? PW_BCE_WEIGHTED : PW_BCE,
                              .reduction = (int)opts.reduction};
        ct_arena *arena = ct_tape_arena(tape);
        if (opts.pos_weight) {
            ps.pos_weight_minus_1 = ct_arena_alloc(arena, (size_t)(C ? C : 1) * sizeof(ct_real));
            for (int c = 0; c < C; c++) {
                CT_CHECK(isfinite(opts.pos_weight[c]), op, "pos_weight[%d] = %g is not finite", c,
                         (double)opts.pos_weight[c]);
                ps.pos_weight_minus_1[c] = opts.pos_weight[c] - 1;
            }
        }
        if (opts.weight) {
            ps.weight = ct_arena_alloc(arena, (size_t)(C ? C : 1) * sizeof(ct_real));
            for (int c = 0; c < C; c++) {
                CT_CHECK(isfinite(opts.weight[c]), op, "weight (%d) has a non-finite value %g at flat index %d", C,
                         (double)opts.weight[c], c);
                ps.weight[c] = opts.weight[c];
            }
        }
        return pointwise_loss(tape, x, t, ps);
    }
    /* composed (the target requires grad too) */
    ct_tensor *per = ct_mul(tape, ct_add_scalar(tape, ct_neg(tape, t), 1.0), x); /* (1 − t)·x */
    ct_tensor *sp = ct_softplus(tape, ct_neg(tape, x), 1.0, INFINITY);         /* softplus(−x) */
    if (opts.pos_weight) {
        ct_tensor *pw_minus_1 = ct_tape_zeros(tape, CT_SHAPE(C));
        for (int c = 0; c < C; c++) {
            CT_CHECK(isfinite(opts.pos_weight[c]), op, "pos_weight[%d] = %g is not finite", c,
                     (double)opts.pos_weight[c]);
            pw_minus_1->data[c] = opts.pos_weight[c] - 1;
        }
        ct_tensor *l = ct_add_scalar(tape, ct_mul(tape, t, pw_minus_1), 1.0);
        sp = ct_mul(tape, l, sp);
    }
    per = ct_add(tape, per, sp);
    if (opts.weight) {
        ct_tensor *w = ct_tape_tensor_from(tape, CT_SHAPE(C), opts.weight);
        for (int c = 0; c < C; c++)
            CT_CHECK(isfinite(w->data[c]), op, "weight (%d) has a non-finite value %g at flat index %d", C,
                     (double)w->data[c], c);
        per = ct_mul(tape, per, w);
    }
    return reduce(tape, per, opts.reduction);
}

/* ---- regression losses on d = input − target, element-wise ----------------------------------
 * Fused (loss_pointwise) unless the target requires grad; then composed from primitive ops. */
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
    if (!ct_requires_grad(target)) return regression_fused(tape, input, target, opts, PW_MSE, 0, 0, 0);
    ct_tensor *d = ct_sub(tape, input, target);
    return reduce(tape, ct_mul(tape, d, d), opts.reduction);
}

/* l1: |d| (gradient sign(d), 0 at d = 0 as PyTorch) */
ct_tensor *ct_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    regression_checks("ct_l1_loss", input, target, opts);
    if (!ct_requires_grad(target)) return regression_fused(tape, input, target, opts, PW_L1, 0, 0, 0);
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
ct_tensor *ct_smooth_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    static const char *op = "ct_smooth_l1_loss";
    CT_CHECK(opts.beta >= 0 && isfinite(opts.beta), op, "beta %g must be finite and >= 0", opts.beta);
    regression_checks(op, input, target, opts);
    if (!ct_requires_grad(target))
        return opts.beta == 0 ? regression_fused(tape, input, target, opts, PW_L1, 0, 0, 0)
                              : regression_fused(tape, input, target, opts, PW_SMOOTH_L1, opts.beta, 1.0 / opts.beta, 1.0);
    ct_tensor *d = ct_sub(tape, input, target);
    if (opts.beta == 0) return reduce(tape, ct_abs(tape, d), opts.reduction);
    return reduce(tape, quadratic_then_linear(tape, d, opts.beta, 1.0 / opts.beta, 1.0, 0), opts.reduction);
}

/* huber (δ > 0): ½d² if |d| <= δ, else δ·(|d| − ½δ) */
ct_tensor *ct_huber_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    static const char *op = "ct_huber_loss";
    CT_CHECK(opts.delta > 0 && isfinite(opts.delta), op, "delta %g must be finite and > 0", opts.delta);
    regression_checks(op, input, target, opts);
    if (!ct_requires_grad(target))
        return regression_fused(tape, input, target, opts, PW_HUBER, opts.delta, 1.0, opts.delta);
    ct_tensor *d = ct_sub(tape, input, target);
    return reduce(tape, quadratic_then_linear(tape, d, opts.delta, 1.0, opts.delta, 1), opts.reduction);
}

/* ---- kl_div: input = log q, target = p (or log p), element-wise -------------------------------
 *   ℓ = p·(log p − input), with p·log p = 0 where p = 0 (xlogy): log is taken of where(p > 0, p, 1)
 *   log_target: ℓ = e^t·(t − input)
 * mean: over all elements (PyTorch's default, which is not the KL); batchmean: Σ / N. */
ct_tensor *ct_kl_div(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts) {
    static const char *op = "ct_kl_div";
    check_same_shape(op, input, target, "input", "target");
    check_reduction(op, opts.reduction, 1);
    CT_CHECK(input->ndim >= 1, op, "input must have at least one dimension, got %s", ct_shp(input));
    ct_tensor *per; /* NaN and ±inf in input or target are data: they give a non-finite loss */
    if (opts.log_target) {
        if (!ct_requires_grad(target))
            return pointwise_loss(tape, input, target, (pointwise_saved){.kind = PW_KL_LOG, .reduction = (int)opts.reduction});
        per = ct_mul(tape, ct_exp(tape, target), ct_sub(tape, target, input));
    } else {
        for (size_t k = 0; k < target->size; k++)
            CT_CHECK(!(target->data[k] < 0), op, "target %s has %g at flat index %zu (probabilities must be >= 0)",
                     ct_shp(target), (double)target->data[k], k);
        if (!ct_requires_grad(target))
            return pointwise_loss(tape, input, target, (pointwise_saved){.kind = PW_KL, .reduction = (int)opts.reduction});
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

/* ---- focal loss, softmax form: ℓ_i = −α_{y_i}·(1 − p_y)^γ·log p_y = α_{y_i}·(1 − p_y)^γ·CE_i ---
 * Fused (loss_softmax). (1 − p_y)^γ for 0 < γ < 1 has an infinite derivative at p_y = 1: the base
 * is clamped to [1e-30, 1] there, so the gradient is 0 instead of 0·∞ = NaN. */
static void check_focal(const char *op, double gamma, double alpha, const ct_real *per_class, int C) {
    CT_CHECK(gamma >= 0 && isfinite(gamma), op, "gamma %g must be finite and >= 0", gamma);
    if (!per_class && alpha == 1) return;
    CT_CHECK(isfinite(alpha), op, "alpha %g is not finite", alpha);
    if (per_class)
        for (int c = 0; c < C; c++)
            CT_CHECK(isfinite(per_class[c]), op, "alpha_per_class[%d] = %g is not finite", c, (double)per_class[c]);
}

ct_tensor *ct_focal_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_focal_opts opts) {
    static const char *op = "ct_focal_loss";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    check_focal(op, opts.gamma, opts.alpha, opts.alpha_per_class, z->shape[1]);
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = opts.gamma, .alpha = opts.alpha,
                             .alpha_per_class = opts.alpha_per_class};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* ---- sigmoid focal loss (torchvision.ops.sigmoid_focal_loss), element-wise -------------------
 *   p = σ(x), p_t = p·t + (1 − p)·(1 − t),  ℓ = α_t·(1 − p_t)^γ·bce_with_logits(x, t),
 *   α_t = α·t + (1 − α)·(1 − t) when α >= 0.
 * Fused (loss_pointwise) for targets in [0, 1] that do not require grad; composed otherwise. */
CT_KERNEL
ct_tensor *ct_sigmoid_focal_loss(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_sigmoid_focal_opts opts) {
    static const char *op = "ct_sigmoid_focal_loss";
    check_same_shape(op, x, t, "logits", "targets");
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.gamma >= 0 && isfinite(opts.gamma), op, "gamma %g must be finite and >= 0", opts.gamma);
    CT_CHECK(isfinite(opts.alpha), op, "alpha %g is not finite", opts.alpha);
    CT_CHECK(x->ndim >= 1, op, "logits must have at least one dimension, got %s", ct_shp(x));
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
    ct_tensor *ce = ct_bce_with_logits(tape, x, t, CT_BCE(.reduction = CT_REDUCTION_NONE));
    ct_tensor *p = ct_sigmoid(tape, x);
    /* 1 − p_t = p + t − 2·p·t */
    ct_tensor *one_minus_pt = ct_sub(tape, ct_add(tape, p, t), ct_mul_scalar(tape, ct_mul(tape, p, t), 2.0));
    ct_tensor *mod = focal_modulator(tape, one_minus_pt, opts.gamma);
    ct_tensor *per = mod ? ct_mul(tape, ce, mod) : ce;
    if (opts.alpha >= 0) /* α_t = (1 − α) + (2α − 1)·t */
        per = ct_mul(tape, per, ct_add_scalar(tape, ct_mul_scalar(tape, t, 2 * opts.alpha - 1), 1 - opts.alpha));
    return reduce(tape, per, opts.reduction);
}

/* ---- PolyLoss (Leng et al. 2022), fused (loss_softmax) ----------------------------------------- */
/* Poly-1: CE + ε·(1 − p_y), ε >= −1 */
ct_tensor *ct_poly1_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    static const char *op = "ct_poly1_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.epsilon >= -1 && isfinite(opts.epsilon), op, "epsilon %g must be finite and >= -1", opts.epsilon);
    check_logits(op, z, y);
    static const double power_one = 1;
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = 0, .alpha = 1, .eps = &opts.epsilon,
                             .eps_power = &power_one, .n_eps = 1};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* Poly-N: CE + Σ_{j=1..N} ε_j·(1 − p_y)^j */
ct_tensor *ct_poly_n_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    static const char *op = "ct_poly_n_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.n_epsilons >= 1 && opts.epsilons, op, "needs n_epsilons >= 1 coefficients, got %d",
             opts.n_epsilons);
    for (int j = 0; j < opts.n_epsilons; j++)
        CT_CHECK(isfinite(opts.epsilons[j]), op, "epsilons[%d] = %g is not finite", j, opts.epsilons[j]);
    check_logits(op, z, y);
    double *powers = ct_arena_alloc(ct_tape_arena(tape), (size_t)opts.n_epsilons * sizeof *powers);
    for (int j = 0; j < opts.n_epsilons; j++) powers[j] = j + 1;
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = 0, .alpha = 1, .eps = opts.epsilons,
                             .eps_power = powers, .n_eps = opts.n_epsilons};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* Poly-1 focal: FL_γ,α + ε·(1 − p_y)^(γ+1), softmax focal loss, ε >= −1 */
ct_tensor *ct_poly1_focal_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    static const char *op = "ct_poly1_focal_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.epsilon >= -1 && isfinite(opts.epsilon), op, "epsilon %g must be finite and >= -1", opts.epsilon);
    check_logits(op, z, y);
    check_focal(op, opts.gamma, opts.alpha, NULL, z->shape[1]);
    const double power = opts.gamma + 1;
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = opts.gamma, .alpha = opts.alpha, .eps = &opts.epsilon,
                             .eps_power = &power, .n_eps = 1};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* ---- squentropy (Hui, Belkin, Wright 2023): CE_i + (1/(C−1))·Σ_{j≠y_i} z_ij², fused ----------
 * The sum is over the logits with the label's masked out (not Σ_j z² − z_y², which cancels when
 * z_y is large). */
ct_tensor *ct_squentropy_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_squentropy_opts opts) {
    static const char *op = "ct_squentropy_loss";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    CT_CHECK(z->shape[1] >= 2, op, "needs C >= 2 classes (the square term divides by C − 1), got logits %s",
             ct_shp(z));
    const softmax_spec sp = {.kind = SM_SQUENTROPY};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* ---- comp-sum (Mao, Mohri, Zhong 2023): ℓ^τ = (p_y^(τ−1) − 1)/(1 − τ), −log p_y at τ = 1 --------
 * p_y^(τ−1) = exp((1 − τ)·CE), fused (loss_softmax). */
ct_tensor *ct_comp_sum_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_comp_sum_opts opts) {
    static const char *op = "ct_comp_sum_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.tau >= 0 && isfinite(opts.tau), op, "tau %g must be finite and >= 0", opts.tau);
    check_logits(op, z, y);
    /* τ = 1 is CE: the same fused op with ℓ = u (γ = 0, α = 1, no Poly terms) */
    const softmax_spec sp = opts.tau == 1 ? (softmax_spec){.kind = SM_FOCAL_POLY, .gamma = 0, .alpha = 1}
                                          : (softmax_spec){.kind = SM_COMP_SUM, .k = 1 - opts.tau};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* ---- NCE + RCE (Ma et al. 2020), fused ----------------------------------------------------------
 *   NCE_i = log p_y / Σ_k log p_k,   RCE_i = −A·(1 − p_y),   ℓ_i = α·NCE_i + β·RCE_i */
ct_tensor *ct_nce_rce_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_nce_rce_opts opts) {
    static const char *op = "ct_nce_rce_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(isfinite(opts.alpha) && isfinite(opts.beta) && opts.alpha >= 0 && opts.beta >= 0, op,
             "alpha %g and beta %g must be finite and >= 0", opts.alpha, opts.beta);
    CT_CHECK(opts.log_zero < 0 && isfinite(opts.log_zero), op, "log_zero %g must be finite and < 0", opts.log_zero);
    check_logits(op, z, y);
    CT_CHECK(z->shape[1] >= 2, op, "needs C >= 2 classes (NCE divides by Σ_k log p_k), got logits %s", ct_shp(z));
    const softmax_spec sp = {.kind = SM_NCE_RCE, .nce_alpha = opts.alpha, .nce_beta = opts.beta,
                             .log_zero = opts.log_zero};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

/* ---- StableMax cross-entropy (Prieto et al. 2025), fused (loss_stablemax) ---------------------
 *   s(x) = x + 1 (x >= 0), 1/(1 − x) (x < 0);   ℓ_i = log Σ_k s(z_ik) − log s(z_iy)
 * The negative branch is 1/(1 − min(x, 0)) — never a division by zero. s is C¹ at 0. */
CT_KERNEL
ct_tensor *ct_stablemax_cross_entropy(ct_tape *tape, ct_tensor *z, ct_labels y, ct_stablemax_opts opts) {
    static const char *op = "ct_stablemax_cross_entropy";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    const int N = z->shape[0], C = z->shape[1];
    const int none = opts.reduction == CT_REDUCTION_NONE;
    ct_node *nd;
    ct_tensor *out =
        ct_op_output(tape, none ? CT_SHAPE(N) : (ct_shape){.ndim = 0}, &ct_op_loss_stablemax, &z, 1, &nd);
    ct_arena *arena = ct_tape_arena(tape);
    double *totals = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *totals);
    double sum = 0;
    if (C < SHORT_ROW) { /* short rows: s(z) of a block in one flat loop, sums class by class */
        ct_real buf[BLOCK];
        const int rows = BLOCK / C;
        for (int b0 = 0; b0 < N; b0 += rows) {
            const int b1 = b0 + rows < N ? b0 + rows : N, n = (b1 - b0) * C;
            const ct_real *restrict zb = z->data + (size_t)b0 * C;
#pragma omp simd
            for (int k = 0; k < n; k++) buf[k] = stablemax_s(zb[k]);
            for (int i = b0; i < b1; i++) totals[i] = 0;
            for (int c = 0; c < C; c++)
                for (int i = b0; i < b1; i++) totals[i] += buf[(i - b0) * C + c];
            for (int i = b0; i < b1; i++) {
                const double v = log(totals[i]) - log((double)buf[(i - b0) * C + y.data[i]]);
                if (none) out->data[i] = (ct_real)v;
                sum += v;
            }
        }
    } else {
#pragma omp parallel for schedule(static) reduction(+ : sum) if (z->size >= PARALLEL_WORK)
        for (int i = 0; i < N; i++) {
            const ct_real *restrict zr = z->data + (size_t)i * C;
            ct_real row = 0;
#pragma omp simd reduction(+ : row)
            for (int c = 0; c < C; c++) row += stablemax_s(zr[c]);
            totals[i] = row;
            const double v = log((double)row) - log((double)stablemax_s(zr[y.data[i]]));
            if (none) out->data[i] = (ct_real)v;
            sum += v;
        }
    }
    if (!none) out->data[0] = (ct_real)(opts.reduction == CT_REDUCTION_SUM ? sum : sum / N);
    if (nd) {
        stablemax_saved *s = ct_arena_alloc(arena, sizeof *s);
        s->labels = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *s->labels);
        if (N) memcpy(s->labels, y.data, (size_t)N * sizeof *s->labels);
        s->total = totals;
        s->reduction = (int)opts.reduction;
        nd->extra = s;
    }
    return out;
}
