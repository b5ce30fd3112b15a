/* losses/nll_stablemax.c — nll on log-probabilities (loss_nll) and StableMax cross-entropy
 * (loss_stablemax), fused ops with closed-form backwards, each with its composed form beside it
 * (ct_*_reference, from tape ops). StableMax's rows are not softmax rows (s(z) in place of e^z, no
 * shift), so it does not use the softmax-row engine; it shares its blocking (SHORT_ROW, BLOCK). */
/* No floating-point trap is ever enabled in ctape, so GCC may evaluate both arms of a select:
 * under the default -ftrapping-math it keeps an arm that does arithmetic (a division, a product)
 * behind a branch, and a loop with a branch does not vectorise. This changes no result. */
#pragma GCC optimize("no-trapping-math")
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "common.h"
#include "softmax_rows.h"

#include <string.h>

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

static void check_nll(const char *op, const ct_tensor *x, ct_labels y, ct_nll_opts opts) {
    CT_CHECK(x && x->ndim == 2, op, "log_probs must be 2-D (N, C), got %s", x ? ct_shp(x) : "NULL");
    check_reduction(op, opts.reduction, 0);
    const int N = x->shape[0];
    CT_CHECK(y.n == N, op, "%d labels for log_probs %s with N = %d rows", y.n, ct_shp(x), N);
    CT_CHECK(y.data || N == 0, op, "labels are NULL for log_probs %s", ct_shp(x));
    check_finite_option(op, "weight", opts.weight, x->shape[1]);
}

/* ---- nll: log-probabilities x (N, C) ---------------------------------------------------------
 *   ℓ_i = −w_{y_i}·x_{i,y_i}, 0 for y_i = ignore_index;  mean = Σ_i ℓ_i / Σ_i w_{y_i} (kept).
 * Fused (loss_nll): one pass over the N labels forward, one scatter backward. All ignored: mean is
 * 0/0 = NaN with a zero gradient, as in PyTorch. */
CT_KERNEL
ct_tensor *ct_nll_loss(ct_tape *tape, ct_tensor *x, ct_labels y, ct_nll_opts opts) {
    static const char *op = "ct_nll_loss";
    check_nll(op, x, y, opts);
    const int N = x->shape[0], C = x->shape[1];
    ct_arena *arena = ct_tape_arena(tape);
    int *index = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *index);
    ct_real *w = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *w);
    const int none = opts.reduction == CT_REDUCTION_NONE;
    ct_node *nd;
    ct_tensor *out = ct_op_output(tape, none ? CT_SHAPE(N) : (ct_shape){.ndim = 0}, &ct_op_loss_nll, &x, 1, &nd);
    double denom = 0, total = 0;
    int bad = 0; /* vectorised passes; when they find a bad label or a NaN, the loop below names the label */
    const ct_real *weight = opts.weight;
#pragma omp simd reduction(| : bad)
    for (int i = 0; i < N; i++) {
        const int yi = y.data[i], kept = yi != opts.ignore_index, in_range = (unsigned)yi < (unsigned)C;
        const int k = kept && in_range ? yi : 0; /* an ignored sample reads class 0 with weight 0 */
        const ct_real wi = kept && in_range ? (weight ? weight[k] : 1) : 0;
        bad |= kept & !in_range;
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


/* ---- the references, composed from tape ops ------------------------------------------------------ */
/* nll: ℓ_i = −w_{y_i}·gather(x)_i, an ignored sample reading class 0 at weight 0;
 * mean = Σ ℓ_i / Σ w_{y_i} (kept samples). */
ct_tensor *ct_nll_loss_reference(ct_tape *tape, ct_tensor *x, ct_labels y, ct_nll_opts opts) {
    static const char *op = "ct_nll_loss_reference";
    check_nll(op, x, y, opts);
    const int N = x->shape[0], C = x->shape[1];
    int *index = ct_arena_alloc(ct_tape_arena(tape), (size_t)(N ? N : 1) * sizeof *index);
    ct_tensor *w = ct_tape_zeros(tape, CT_SHAPE(N));
    double denom = 0;
    for (int i = 0; i < N; i++) {
        const int yi = y.data[i], kept = yi != opts.ignore_index;
        CT_CHECK(!kept || (yi >= 0 && yi < C), op,
                 "label %d of sample %d is out of range for C = %d classes (ignore_index is %d)", yi, i, C,
                 opts.ignore_index);
        index[i] = kept ? yi : 0;
        w->data[i] = kept ? (opts.weight ? opts.weight[yi] : 1) : 0;
        denom += w->data[i];
    }
    ct_tensor *per = ct_neg(tape, ct_mul(tape, ct_gather_rows(tape, x, index, N), w));
    if (opts.reduction == CT_REDUCTION_NONE) return per;
    if (opts.reduction == CT_REDUCTION_SUM) return ct_sum_all(tape, per);
    return ct_mul_scalar(tape, ct_sum_all(tape, per), 1.0 / denom);
}

/* StableMax: s(z) = where(z >= 0, z + 1, 1/(1 − min(z, 0))),  ℓ_i = log Σ_k s(z_ik) − log s(z_iy). */
ct_tensor *ct_stablemax_cross_entropy_reference(ct_tape *tape, ct_tensor *z, ct_labels y, ct_stablemax_opts opts) {
    static const char *op = "ct_stablemax_cross_entropy_reference";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    const int N = z->shape[0];
    ct_tensor *nonneg = ct_tape_zeros(tape, ct_tensor_shape(z));
    for (size_t k = 0; k < z->size; k++) nonneg->data[k] = z->data[k] >= 0;
    ct_tensor *pos = ct_add_scalar(tape, z, 1.0);
    ct_tensor *neg_part = ct_minimum(tape, z, constant(tape, CT_SHAPE(1), 0.0));
    ct_tensor *neg = ct_pow_scalar(tape, ct_add_scalar(tape, ct_neg(tape, neg_part), 1.0), -1.0);
    ct_tensor *s = ct_where(tape, nonneg, pos, neg);
    ct_tensor *per = ct_sub(tape, ct_log(tape, ct_sum(tape, s, 1, 0)), ct_log(tape, ct_gather_rows(tape, s, y.data, N)));
    return reduce(tape, per, opts.reduction);
}
