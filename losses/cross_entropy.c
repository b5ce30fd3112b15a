/* losses/cross_entropy.c — softmax cross-entropy, fused into one op with a closed-form backward.
 *
 * Composed from primitives it would be −mean(gather_rows(log_softmax(z), y)): four nodes, an
 * (N, C) log-softmax kept for the backward, and a backward that rebuilds p from it. Fused, the
 * forward reads each row while it is in cache (its max, then Σ exp) and keeps two numbers per
 * row; the backward is the textbook (p − target), scaled. */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "common.h"
#include "softmax_rows.h"

#include <math.h>
#include <string.h>

/* ---- cross_entropy: logits z (N,C), labels y (N) -> () for mean/sum, (N) for none ---------
 *
 * Forward, row i, stable for any finite logits (no exp of a positive number); a NaN or +inf logit
 * makes the row's loss and gradient NaN and a −inf one is a masked class, as in PyTorch:
 *     m_i      = max_c z_ic  (short rows: their block's maximum, see ct_softmax_block)
 *     log p_ic = (z_ic − m_i) − log s_i,       s_i = Σ_c exp(z_ic − m_i)  ∈ [1, C]
 * (not z_ic − lse_i: for |z| ~ 1e30 the sum lse_i = m_i + log s_i rounds back to m_i).
 * Each sample spreads a target mass α_ic over the classes (w ≡ 1 without weights, ε the label
 * smoothing; this is how PyTorch combines the two):
 *     α_ic = (1−ε)·w_{y_i}·[c = y_i] + (ε/C)·w_c
 *     ℓ_i  = −Σ_c α_ic·log p_ic
 * and ℓ_i = 0 when y_i = ignore_index. Reductions:
 *     none ℓ (N),   sum Σ_i ℓ_i,   mean Σ_i ℓ_i / Σ_i w_{y_i}  (over the samples not ignored;
 *     when every sample is ignored that is 0/0 = NaN with a zero gradient, as in PyTorch).
 *
 * Backward. Since ∂(−log p_ik)/∂z_ic = p_ic − [c = k],
 *     ∂ℓ_i/∂z_ic = A_i·p_ic − α_ic        with A_i = Σ_c α_ic = (1−ε)·w_{y_i} + (ε/C)·Σ_c w_c
 * — without weights A_i = 1 and α_i is the (smoothed) one-hot target: p − target. Then
 *     dz_ic += g_i·(A_i·p_ic − α_ic),  g_i = dℓ/Σ_i w_{y_i} (mean), dℓ (sum), dℓ_i (none).
 *
 * Saved for the backward (in the arena): m and log s (N each), from which long rows recompute
 * p_ic = exp(z_ic − m_i − log s_i); short rows (C < SHORT_ROW, losses/softmax_rows.h) keep p itself;
 * and copies of the labels and weights, because the caller's arrays may change before
 * ct_backward runs. */

/* Short rows [0, N), C < SHORT_ROW: the engine's shift m_i and log s_i block by block
 * (losses/softmax_rows.h), and with prob the softmax p_ic = e^(z_ic − m_i) / s_i. */
CT_KERNEL
static void short_row_stats(const ct_real *z, int N, int C, ct_real *shift, double *log_sum, ct_real *prob) {
    ct_real e[BLOCK], sum[BLOCK], inv[BLOCK];
    const int rows = BLOCK / C;
    for (int b0 = 0; b0 < N; b0 += rows) {
        const int nb = b0 + rows < N ? rows : N - b0;
        ct_softmax_block(z + (size_t)b0 * C, nb, C, NULL, e, shift + b0, NULL, sum, log_sum + b0);
        if (prob) { /* kept for the backward */
#pragma omp simd
            for (int i = 0; i < nb; i++) inv[i] = 1 / sum[i];
            ct_real *pb = prob + (size_t)b0 * C;
#define SCALE_ROWS(K) ct_rows_scale(pb, e, inv, NULL, nb, K)
            CT_WITH_SMALL_C(C, SCALE_ROWS)
#undef SCALE_ROWS
        }
    }
}

typedef struct {
    int *labels;        /* N labels, copied */
    ct_real *weight;    /* C class weights, copied, or NULL for w ≡ 1 */
    ct_real *max;       /* N: the shift m_i, max_c z_ic (short rows: the block's maximum, see above) */
    double *log_sum;    /* N: log s_i = log Σ_c exp(z_ic − m_i) */
    ct_real *prob;      /* short rows: p (N, C), computed in the forward; NULL for long rows */
    double eps;         /* label smoothing ε */
    double denom;       /* Σ_i w_{y_i} over the kept samples (the mean's divisor) */
    int reduction;      /* ct_reduction */
    int ignore_index;
} ce_saved;

CT_KERNEL
static void cross_entropy_backward(ct_tape *tape, ct_node *nd) {
    ct_tensor *logits = nd->in[0];
    const ce_saved *s = nd->extra;
    ct_real *dz = ct_grad_of(tape, logits);
    const ct_real *dout = nd->out->grad;
    const int N = logits->shape[0], C = logits->shape[1];
    const double eps = s->eps, spread = eps / C; /* ε/C: the smoothing mass per class */
    double w_total = C;                          /* Σ_c w_c */
    if (s->weight) {
        w_total = 0;
        for (int c = 0; c < C; c++) w_total += s->weight[c];
    }
    /* g_i: dℓ_i for none, dℓ for sum, dℓ/Σ_i w_{y_i} for mean */
#define ROW_SCALE(i)                                                                                         \
    (s->reduction == CT_REDUCTION_NONE ? (double)dout[i]                                                     \
     : s->reduction == CT_REDUCTION_SUM ? (double)dout[0] : (double)dout[0] / s->denom)
    const ct_real *prob = s->prob; /* short rows: p from the forward; long rows recompute it */
    if (prob && !s->weight && s->reduction != CT_REDUCTION_NONE) {
        int every_row_counts = 1;
        for (int i = 0; i < N && every_row_counts; i++) every_row_counts = s->labels[i] != s->ignore_index;
        if (every_row_counts) { /* one g for all rows: dz += g·(p − ε/C) flat, then the labels' −g·(1−ε) */
            const double g = ROW_SCALE(0);
            const ct_real gr = (ct_real)g, g_spread = (ct_real)(g * spread);
            const size_t n = (size_t)N * C;
            if (n < PARALLEL_WORK) { /* not an if clause on the parallel loop: that costs even on one thread */
#pragma omp simd
                for (size_t k = 0; k < n; k++) dz[k] += gr * prob[k] - g_spread;
            } else {
#pragma omp parallel for simd schedule(static)
                for (size_t k = 0; k < n; k++) dz[k] += gr * prob[k] - g_spread;
            }
            for (int i = 0; i < N; i++) dz[(size_t)i * C + s->labels[i]] -= (ct_real)(g * (1 - eps));
            return;
        }
    }
#pragma omp parallel for schedule(static) if ((size_t)N * C >= PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const int y = s->labels[i];
        if (y == s->ignore_index) continue;
        const double scale = ROW_SCALE(i);
        const double w_y = s->weight ? s->weight[y] : 1.0;
        const double A = (1 - eps) * w_y + spread * w_total;
        const ct_real scale_A = (ct_real)(scale * A), scale_spread = (ct_real)(scale * spread);
        ct_real *restrict d = dz + (size_t)i * C;
        const ct_real *restrict wc = s->weight;
        if (prob) {
            const ct_real *restrict pr = prob + (size_t)i * C;
            for (int c = 0; c < C; c++) d[c] += scale_A * pr[c] - scale_spread * (wc ? wc[c] : (ct_real)1);
        } else {
            /* p_ic = exp((z_ic − m_i) − log s_i), an exponent ≤ 0: the vectorised exp applies */
            const ct_real *restrict zr = logits->data + (size_t)i * C;
            const ct_real m = (ct_real)s->max[i], log_sum = (ct_real)s->log_sum[i];
            if (wc) {
#pragma omp simd
                for (int c = 0; c < C; c++)
                    d[c] += scale_A * ct_exp_nonpositive((zr[c] - m) - log_sum) - scale_spread * wc[c];
            } else {
#pragma omp simd
                for (int c = 0; c < C; c++)
                    d[c] += scale_A * ct_exp_nonpositive((zr[c] - m) - log_sum) - scale_spread;
            }
        }
        d[y] -= (ct_real)(scale * (1 - eps) * w_y); /* the one-hot part of α_i */
    }
#undef ROW_SCALE
}
const ct_op ct_op_cross_entropy = {
    "cross_entropy",
    "ℓ_i = −Σ_c α_ic·log softmax(z_i)_c, α = (1−ε)·w_y·onehot(y) + (ε/C)·w; dz_i = g_i·(A_i·p_i − α_i)",
    cross_entropy_backward};

static void check_cross_entropy(const char *op, const ct_tensor *logits, ct_labels labels, ct_ce_opts opts) {
    CT_CHECK(logits && logits->ndim == 2, op, "logits must be 2-D (N, C), got %s",
             logits ? ct_shp(logits) : "NULL");
    const int N = logits->shape[0], C = logits->shape[1];
    CT_CHECK(C > 0, op, "logits %s have no classes", ct_shp(logits));
    CT_CHECK(labels.n == N, op, "%d labels for logits %s with N = %d rows", labels.n, ct_shp(logits), N);
    CT_CHECK(labels.data || N == 0, op, "labels are NULL for logits %s", ct_shp(logits));
    CT_CHECK(opts.label_smoothing >= 0 && opts.label_smoothing <= 1, op,
             "label_smoothing %g is outside [0, 1]", opts.label_smoothing);
    check_reduction(op, opts.reduction, 0);
    int bad_labels = 0; /* one vectorised pass; the second finds and names the first bad label */
#pragma omp simd reduction(| : bad_labels)
    for (int i = 0; i < N; i++)
        bad_labels |= labels.data[i] != opts.ignore_index && (unsigned)labels.data[i] >= (unsigned)C;
    for (int i = 0; bad_labels && i < N; i++) {
        const int y = labels.data[i];
        CT_CHECK(y == opts.ignore_index || (y >= 0 && y < C), op,
                 "label %d of sample %d is out of range for C = %d classes (ignore_index is %d)",
                 y, i, C, opts.ignore_index);
    }
    check_finite_option(op, "weight", opts.weight, C);
}

/* The rows' shifts and log-sums (and short rows' p when prob is given), short rows through the
 * engine, split over the threads from PARALLEL_WORK elements; long rows are left to the loss pass. */
CT_KERNEL
static void short_rows_forward(const ct_tensor *logits, ct_real *max, double *log_sum, ct_real *prob) {
    const int N = logits->shape[0], C = logits->shape[1];
    if ((size_t)N * C < PARALLEL_WORK) {
        short_row_stats(logits->data, N, C, max, log_sum, prob);
        return;
    }
    const int parts = ct_max_threads();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < parts; b++) {
        const int i0 = (int)((long)N * b / parts), i1 = (int)((long)N * (b + 1) / parts);
        const size_t k0 = (size_t)i0 * C;
        short_row_stats(logits->data + k0, i1 - i0, C, max + i0, log_sum + i0, prob ? prob + k0 : NULL);
    }
}

/* ℓ_i into out (none) and Σ_i ℓ_i, Σ_i w_{y_i} (kept samples) into *total, *denom. Long rows take
 * their own maximum and log Σ here, one row at a time. */
CT_KERNEL
static void cross_entropy_losses(const ct_tensor *logits, ct_labels labels, ct_ce_opts opts, int short_rows,
                                 ct_real *max, double *log_sum, ct_real *out, double *total_out, double *denom_out) {
    const int N = logits->shape[0], C = logits->shape[1];
    const ct_real *w = opts.weight;
    const double eps = opts.label_smoothing, spread = eps / C;
    const int none = opts.reduction == CT_REDUCTION_NONE;
    double total = 0, denom = 0;
    if (short_rows && !w && eps == 0) { /* the common case in one vectorised pass: ℓ_i = (m_i − z_iy) + log s_i */
#pragma omp simd reduction(+ : total, denom)
        for (int i = 0; i < N; i++) {
            const int y = labels.data[i], kept = y != opts.ignore_index;
            const double loss_i =
                kept ? ((double)max[i] - logits->data[(size_t)i * C + (kept ? y : 0)]) + log_sum[i] : 0;
            if (none) out[i] = (ct_real)loss_i;
            total += loss_i;
            denom += kept;
        }
        *total_out = total, *denom_out = denom;
        return;
    }
#pragma omp parallel for schedule(static) reduction(+ : total, denom) if ((size_t)N * C >= PARALLEL_WORK)
    for (int i = 0; i < N; i++) {
        const ct_real *z = logits->data + (size_t)i * C;
        if (!short_rows) { /* long rows: one row at a time */
            /* NaN or +inf in the row: Σ is NaN (e^NaN, inf − inf), so are the loss and gradient */
            const ct_real m_row = ct_row_max(z, C);
            double sum_exp = 0; /* Σ_c exp(z_ic − m_i), each term ≤ 1, summed in double */
#pragma omp simd reduction(+ : sum_exp)
            for (int c = 0; c < C; c++) sum_exp += (double)ct_exp_nonpositive(z[c] - m_row);
            max[i] = m_row;
            log_sum[i] = log(sum_exp);
        }
        const double m_i = max[i];
        const int y = labels.data[i];
        double loss_i = 0;
        if (y != opts.ignore_index) {
            const double w_y = w ? w[y] : 1.0;
            /* −log p_ic = (m_i − z_ic) + log s_i in double (log s_i < 0 with a block's shift) */
            loss_i = (1 - eps) * w_y * ((m_i - z[y]) + log_sum[i]);
            if (eps > 0) {
                double smooth = 0; /* Σ_c w_c·(−log p_ic) */
                for (int c = 0; c < C; c++) smooth += (w ? w[c] : 1.0) * ((m_i - z[c]) + log_sum[i]);
                loss_i += spread * smooth;
            }
            denom += w_y;
        }
        if (none) out[i] = (ct_real)loss_i;
        total += loss_i;
    }
    *total_out = total, *denom_out = denom;
}

ct_tensor *ct_cross_entropy(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_ce_opts opts) {
    static const char *op = "ct_cross_entropy";
    check_cross_entropy(op, logits, labels, opts);
    const int N = logits->shape[0], C = logits->shape[1], short_rows = C < SHORT_ROW;
    ct_node *nd;
    ct_shape shape = opts.reduction == CT_REDUCTION_NONE ? CT_SHAPE(N) : (ct_shape){.ndim = 0};
    ct_tensor *out = ct_op_output(tape, shape, &ct_op_cross_entropy, &logits, 1, &nd);
    ct_arena *arena = ct_tape_arena(tape);
    ct_real *max = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *max);
    double *log_sum = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *log_sum);
    /* short rows keep p for the backward when a node is recorded (C < 64 reals a row) */
    ct_real *prob = nd && short_rows ? ct_arena_alloc(arena, (size_t)(N ? N : 1) * C * sizeof *prob) : NULL;
    if (short_rows) short_rows_forward(logits, max, log_sum, prob);
    double total, denom;
    cross_entropy_losses(logits, labels, opts, short_rows, max, log_sum, out->data, &total, &denom);
    if (opts.reduction == CT_REDUCTION_SUM) out->data[0] = (ct_real)total;
    if (opts.reduction == CT_REDUCTION_MEAN) out->data[0] = (ct_real)(total / denom);
    if (nd) {
        ce_saved *s = ct_arena_alloc(arena, sizeof *s);
        s->labels = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *s->labels);
        if (N) memcpy(s->labels, labels.data, (size_t)N * sizeof *s->labels);
        s->weight = NULL;
        if (opts.weight) {
            s->weight = ct_arena_alloc(arena, (size_t)C * sizeof *s->weight);
            memcpy(s->weight, opts.weight, (size_t)C * sizeof *s->weight);
        }
        s->max = max;
        s->prob = prob;
        s->log_sum = log_sum;
        s->eps = opts.label_smoothing;
        s->denom = denom;
        s->reduction = (int)opts.reduction;
        s->ignore_index = opts.ignore_index;
        nd->extra = s;
    }
    return out;
}

/* ---- the reference: cross-entropy composed from tape ops ------------------------------------
 *   log p_ic = (z_ic − m_i) − log Σ_c e^(z_ic − m_i),  m_i = max_c z_ic, detached (log p does not
 *              depend on it; taken out first so that z − m stays exact where m + log Σ would round)
 *   ℓ_i = −w_{y_i}·log p_{i,y_i}                   (ε = 0)
 *   ℓ_i = −Σ_c α_ic·log p_ic,  α as above          (ε > 0)
 *   mean = Σ_i ℓ_i / Σ_i w_{y_i} over the kept samples. */
ct_tensor *ct_cross_entropy_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_ce_opts opts) {
    check_cross_entropy("ct_cross_entropy_reference", logits, labels, opts);
    const int N = logits->shape[0], C = logits->shape[1];
    const double eps = opts.label_smoothing;
    ct_tensor *shifted = ct_sub(tape, logits, ct_detach(tape, ct_max(tape, logits, 1, 1)));
    ct_tensor *log_p = ct_sub(tape, shifted, ct_log(tape, ct_sum(tape, ct_exp(tape, shifted), 1, 1)));
    ct_tensor *per;
    double denom = 0;
    if (eps == 0) { /* −w_y·log p_y, with an ignored sample reading class 0 at weight 0 */
        int *index = ct_arena_alloc(ct_tape_arena(tape), (size_t)(N ? N : 1) * sizeof *index);
        ct_tensor *w_y = ct_tape_zeros(tape, CT_SHAPE(N));
        for (int i = 0; i < N; i++) {
            const int y = labels.data[i], kept = y != opts.ignore_index;
            index[i] = kept ? y : 0;
            w_y->data[i] = kept ? (opts.weight ? opts.weight[y] : 1) : 0;
            denom += w_y->data[i];
        }
        per = ct_neg(tape, ct_mul(tape, ct_gather_rows(tape, log_p, index, N), w_y));
    } else { /* −Σ_c α_ic·log p_ic, α_ic = (1−ε)·w_{y_i}·[c = y_i] + (ε/C)·w_c, 0 for an ignored row */
        ct_tensor *alpha = ct_tape_zeros(tape, CT_SHAPE(N, C));
        for (int i = 0; i < N; i++) {
            const int y = labels.data[i];
            if (y == opts.ignore_index) continue;
            ct_real *a = alpha->data + (size_t)i * C;
            for (int c = 0; c < C; c++) a[c] = (ct_real)(eps / C * (opts.weight ? opts.weight[c] : 1));
            const double w_y = opts.weight ? opts.weight[y] : 1;
            a[y] += (ct_real)((1 - eps) * w_y);
            denom += w_y;
        }
        per = ct_neg(tape, ct_sum(tape, ct_mul(tape, alpha, log_p), 1, 0));
    }
    if (opts.reduction == CT_REDUCTION_NONE) return per;
    if (opts.reduction == CT_REDUCTION_SUM) return ct_sum_all(tape, per);
    return ct_mul_scalar(tape, ct_sum_all(tape, per), 1.0 / denom);
}
