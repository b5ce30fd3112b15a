/* losses/softmax_family.c — the losses of one softmax row: focal, Poly-1 / Poly-N / Poly-1 focal,
 * comp-sum (GCE), squentropy, NCE + RCE. One fused op (loss_softmax) configured by a softmax_spec,
 * on the softmax-row engine of losses/softmax_rows.h (which cross-entropy configures too); each
 * public function has its composed form beside it (ct_*_reference, from tape ops: the readable
 * definition, against which tests/losses/test_loss_fused.c checks the fused path). */
/* No floating-point trap is ever enabled in ctape, so GCC may evaluate both arms of a select:
 * under the default -ftrapping-math it keeps an arm that does arithmetic (a division, a product)
 * behind a branch, and a loop with a branch does not vectorise. This changes no result. */
#pragma GCC optimize("no-trapping-math")
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "common.h"
#include "softmax_rows.h"

#include <string.h>

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
 * whose sum rounds log s_i away when |m_i| ~ 1e4); short rows (C < SHORT_ROW, losses/softmax_rows.h)
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
    if (gamma == (int)gamma && gamma <= 16) { /* small integer powers by products: pow is slow */
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

/* Short rows [i0, i1), C < SHORT_ROW, block by block: the engine (ct_softmax_block, which has the
 * accuracy argument for the block's shared shift) gives each row's shift, e_i, o_i and log s_i;
 * then the rows' losses, and when recording the backward's row_grad_ic = e^(z_ic − m_i)·(A_i/s_i) + B_i + D_i·[c = y_i] + E·z_ic·[c ≠ y_i], while e is
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
        ct_softmax_block(zb, nb, C, labels + b0, eb, max + b0, e + b0, o + b0, log_sum + b0);
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
        const ct_real m = ct_row_max(zr, C);
        /* the classes other than y as two plain ranges: GCC keeps a masked sum's accumulator on
         * the stack */
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


/* ---- the public functions: checks, the fused op configured, and the composed reference ----------
 * Each loss has its reference beside it, composed from tape ops on the per-sample cross-entropy
 * CE_i = −log p_y (ct_cross_entropy_reference) with 1 − p_y = 1 − e^(−CE_i): the readable
 * definition, which tests/losses/test_loss_fused.c compares with the fused path. */

/* CE_i, (N), composed. */
static ct_tensor *ce_per_sample(ct_tape *tape, ct_tensor *z, ct_labels y) {
    return ct_cross_entropy_reference(tape, z, y, CT_CE(.reduction = CT_REDUCTION_NONE));
}

/* 1 − p_y = 1 − e^(−CE) */
static ct_tensor *one_minus_p(ct_tape *tape, ct_tensor *ce) {
    return ct_add_scalar(tape, ct_neg(tape, ct_exp(tape, ct_neg(tape, ce))), 1.0);
}

/* focal: ℓ_i = α_{y_i}·(1 − p_y)^γ·CE_i (γ, α as ct_focal_opts); per_class NULL: the scalar α */
static ct_tensor *focal_per_sample(ct_tape *tape, ct_tensor *ce, ct_tensor *one_minus, ct_labels y, double gamma,
                                   double alpha, const ct_real *per_class) {
    ct_tensor *mod = focal_modulator(tape, one_minus, gamma);
    ct_tensor *per = mod ? ct_mul(tape, mod, ce) : ce;
    if (!per_class && alpha == 1) return per;
    ct_tensor *a = constant(tape, CT_SHAPE(y.n), alpha);
    if (per_class)
        for (int i = 0; i < y.n; i++) a->data[i] = per_class[y.data[i]];
    return ct_mul(tape, per, a);
}

/* ---- focal loss, softmax form: ℓ_i = −α_{y_i}·(1 − p_y)^γ·log p_y = α_{y_i}·(1 − p_y)^γ·CE_i ---
 * (1 − p_y)^γ for 0 < γ < 1 has an infinite derivative at p_y = 1: the base is clamped to
 * [1e-30, 1] there, so the gradient is 0 instead of 0·∞ = NaN. */
static void check_focal(const char *op, double gamma, double alpha, const ct_real *per_class, int C) {
    CT_CHECK(gamma >= 0 && isfinite(gamma), op, "gamma %g must be finite and >= 0", gamma);
    if (!per_class && alpha == 1) return;
    CT_CHECK(isfinite(alpha), op, "alpha %g is not finite", alpha);
    check_finite_option(op, "alpha_per_class", per_class, C);
}

static void check_focal_loss(const char *op, ct_tensor *z, ct_labels y, ct_focal_opts opts) {
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    check_focal(op, opts.gamma, opts.alpha, opts.alpha_per_class, z->shape[1]);
}

ct_tensor *ct_focal_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_focal_opts opts) {
    check_focal_loss("ct_focal_loss", z, y, opts);
    /* γ = 0, α = 1 is cross-entropy: its op, so the two agree to the last bit */
    if (opts.gamma == 0 && opts.alpha == 1 && !opts.alpha_per_class)
        return ct_cross_entropy(tape, z, y, CT_CE(.reduction = opts.reduction));
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = opts.gamma, .alpha = opts.alpha,
                             .alpha_per_class = opts.alpha_per_class};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_focal_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_focal_opts opts) {
    check_focal_loss("ct_focal_loss_reference", z, y, opts);
    ct_tensor *ce = ce_per_sample(tape, z, y);
    ct_tensor *per = focal_per_sample(tape, ce, one_minus_p(tape, ce), y, opts.gamma, opts.alpha, opts.alpha_per_class);
    return reduce(tape, per, opts.reduction);
}

/* ---- PolyLoss (Leng et al. 2022) ----------------------------------------------------------------
 *   Poly-1        CE + ε·(1 − p_y),  ε >= −1
 *   Poly-N        CE + Σ_{j=1..N} ε_j·(1 − p_y)^j
 *   Poly-1 focal  FL_γ,α + ε·(1 − p_y)^(γ+1),  ε >= −1 */
static void check_poly(const char *op, ct_tensor *z, ct_labels y, ct_poly_opts opts, int which) {
    check_reduction(op, opts.reduction, 0);
    if (which == 'n') {
        CT_CHECK(opts.n_epsilons >= 1 && opts.epsilons, op, "needs n_epsilons >= 1 coefficients, got %d",
                 opts.n_epsilons);
        for (int j = 0; j < opts.n_epsilons; j++)
            CT_CHECK(isfinite(opts.epsilons[j]), op, "epsilons[%d] = %g is not finite", j, opts.epsilons[j]);
    } else {
        CT_CHECK(opts.epsilon >= -1 && isfinite(opts.epsilon), op, "epsilon %g must be finite and >= -1",
                 opts.epsilon);
    }
    check_logits(op, z, y);
    if (which == 'f') check_focal(op, opts.gamma, opts.alpha, NULL, z->shape[1]);
}

ct_tensor *ct_poly1_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    check_poly("ct_poly1_loss", z, y, opts, '1');
    /* ε = 0 is cross-entropy: its op, so the two agree to the last bit */
    if (opts.epsilon == 0) return ct_cross_entropy(tape, z, y, CT_CE(.reduction = opts.reduction));
    static const double power_one = 1;
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = 0, .alpha = 1, .eps = &opts.epsilon,
                             .eps_power = &power_one, .n_eps = 1};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_poly1_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    check_poly("ct_poly1_loss_reference", z, y, opts, '1');
    ct_tensor *ce = ce_per_sample(tape, z, y);
    return reduce(tape, ct_add(tape, ce, ct_mul_scalar(tape, one_minus_p(tape, ce), opts.epsilon)), opts.reduction);
}

ct_tensor *ct_poly_n_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    check_poly("ct_poly_n_loss", z, y, opts, 'n');
    double *powers = ct_arena_alloc(ct_tape_arena(tape), (size_t)opts.n_epsilons * sizeof *powers);
    for (int j = 0; j < opts.n_epsilons; j++) powers[j] = j + 1;
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = 0, .alpha = 1, .eps = opts.epsilons,
                             .eps_power = powers, .n_eps = opts.n_epsilons};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_poly_n_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    check_poly("ct_poly_n_loss_reference", z, y, opts, 'n');
    ct_tensor *ce = ce_per_sample(tape, z, y), *per = ce;
    ct_tensor *one_minus = one_minus_p(tape, ce), *power = one_minus; /* (1 − p_y)^j */
    for (int j = 0; j < opts.n_epsilons; j++) {
        if (j) power = ct_mul(tape, power, one_minus);
        if (opts.epsilons[j] != 0) per = ct_add(tape, per, ct_mul_scalar(tape, power, opts.epsilons[j]));
    }
    return reduce(tape, per, opts.reduction);
}

ct_tensor *ct_poly1_focal_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    check_poly("ct_poly1_focal_loss", z, y, opts, 'f');
    const double power = opts.gamma + 1;
    const softmax_spec sp = {.kind = SM_FOCAL_POLY, .gamma = opts.gamma, .alpha = opts.alpha, .eps = &opts.epsilon,
                             .eps_power = &power, .n_eps = 1};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_poly1_focal_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    check_poly("ct_poly1_focal_loss_reference", z, y, opts, 'f');
    ct_tensor *ce = ce_per_sample(tape, z, y), *one_minus = one_minus_p(tape, ce);
    ct_tensor *per = focal_per_sample(tape, ce, one_minus, y, opts.gamma, opts.alpha, NULL);
    per = ct_add(tape, per, ct_mul_scalar(tape, focal_modulator(tape, one_minus, opts.gamma + 1), opts.epsilon));
    return reduce(tape, per, opts.reduction);
}

/* ---- squentropy (Hui, Belkin, Wright 2023): CE_i + (1/(C−1))·Σ_{j≠y_i} z_ij² --------------------
 * The sum is over the logits with the label's masked out (not Σ_j z² − z_y², which cancels when
 * z_y is large). */
static void check_squentropy(const char *op, ct_tensor *z, ct_labels y, ct_squentropy_opts opts) {
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    CT_CHECK(z->shape[1] >= 2, op, "needs C >= 2 classes (the square term divides by C − 1), got logits %s",
             ct_shp(z));
}

ct_tensor *ct_squentropy_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_squentropy_opts opts) {
    check_squentropy("ct_squentropy_loss", z, y, opts);
    const softmax_spec sp = {.kind = SM_SQUENTROPY};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_squentropy_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_squentropy_opts opts) {
    check_squentropy("ct_squentropy_loss_reference", z, y, opts);
    const int N = z->shape[0], C = z->shape[1];
    ct_tensor *others = constant(tape, CT_SHAPE(N, C), 1.0); /* [c ≠ y_i] */
    for (int i = 0; i < N; i++) others->data[(size_t)i * C + y.data[i]] = 0;
    ct_tensor *masked = ct_mul(tape, z, others);
    ct_tensor *squares = ct_mul_scalar(tape, ct_sum(tape, ct_mul(tape, masked, masked), 1, 0), 1.0 / (C - 1));
    return reduce(tape, ct_add(tape, ce_per_sample(tape, z, y), squares), opts.reduction);
}

/* ---- comp-sum (Mao, Mohri, Zhong 2023): ℓ^τ = (p_y^(τ−1) − 1)/(1 − τ), −log p_y at τ = 1 --------
 * p_y^(τ−1) = e^((1 − τ)·CE). */
static void check_comp_sum(const char *op, ct_tensor *z, ct_labels y, ct_comp_sum_opts opts) {
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.tau >= 0 && isfinite(opts.tau), op, "tau %g must be finite and >= 0", opts.tau);
    check_logits(op, z, y);
}

ct_tensor *ct_comp_sum_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_comp_sum_opts opts) {
    check_comp_sum("ct_comp_sum_loss", z, y, opts);
    /* τ = 1 is CE: the same fused op with ℓ = u (γ = 0, α = 1, no Poly terms) */
    const softmax_spec sp = opts.tau == 1 ? (softmax_spec){.kind = SM_FOCAL_POLY, .gamma = 0, .alpha = 1}
                                          : (softmax_spec){.kind = SM_COMP_SUM, .k = 1 - opts.tau};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_comp_sum_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_comp_sum_opts opts) {
    check_comp_sum("ct_comp_sum_loss_reference", z, y, opts);
    ct_tensor *ce = ce_per_sample(tape, z, y);
    const double k = 1 - opts.tau;
    if (k == 0) return reduce(tape, ce, opts.reduction);
    ct_tensor *per = ct_mul_scalar(tape, ct_add_scalar(tape, ct_exp(tape, ct_mul_scalar(tape, ce, k)), -1.0), 1.0 / k);
    return reduce(tape, per, opts.reduction);
}

/* ---- NCE + RCE (Ma et al. 2020) ----------------------------------------------------------------
 *   NCE_i = log p_y / Σ_k log p_k,   RCE_i = −A·(1 − p_y),   ℓ_i = α·NCE_i + β·RCE_i */
static void check_nce_rce(const char *op, ct_tensor *z, ct_labels y, ct_nce_rce_opts opts) {
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(isfinite(opts.alpha) && isfinite(opts.beta) && opts.alpha >= 0 && opts.beta >= 0, op,
             "alpha %g and beta %g must be finite and >= 0", opts.alpha, opts.beta);
    CT_CHECK(opts.log_zero < 0 && isfinite(opts.log_zero), op, "log_zero %g must be finite and < 0", opts.log_zero);
    check_logits(op, z, y);
    CT_CHECK(z->shape[1] >= 2, op, "needs C >= 2 classes (NCE divides by Σ_k log p_k), got logits %s", ct_shp(z));
}

ct_tensor *ct_nce_rce_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_nce_rce_opts opts) {
    check_nce_rce("ct_nce_rce_loss", z, y, opts);
    const softmax_spec sp = {.kind = SM_NCE_RCE, .nce_alpha = opts.alpha, .nce_beta = opts.beta,
                             .log_zero = opts.log_zero};
    return softmax_loss(tape, z, y, opts.reduction, &sp);
}

ct_tensor *ct_nce_rce_loss_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_nce_rce_opts opts) {
    check_nce_rce("ct_nce_rce_loss_reference", z, y, opts);
    ct_tensor *ce = ce_per_sample(tape, z, y);
    ct_tensor *nce = ct_div(tape, ce, ct_neg(tape, ct_sum(tape, ct_log_softmax(tape, z, 1), 1, 0))); /* (−log p_y)/(−Σ log p) */
    ct_tensor *rce = ct_mul_scalar(tape, one_minus_p(tape, ce), -opts.log_zero);
    return reduce(tape, ct_add(tape, ct_mul_scalar(tape, nce, opts.alpha), ct_mul_scalar(tape, rce, opts.beta)),
                  opts.reduction);
}
