/* losses/cross_entropy.c — softmax cross-entropy, fused into one op with a closed-form backward.
 *
 * Composed from primitives it would be −mean(gather_rows(log_softmax(z), y)): four nodes, an
 * (N, C) log-softmax kept for the backward, and a backward that rebuilds p from it. Fused, the
 * forward reads each row while it is in cache (its max, then Σ exp) and keeps two numbers per
 * row; the backward is the textbook (p − target), scaled. */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../autograd/op.h"
#include "../core/vmath.h"
#include "rows.h"

#include <math.h>
#include <string.h>

/* ---- cross_entropy: logits z (N,C), labels y (N) -> () for mean/sum, (N) for none ---------
 *
 * Forward, row i, stable for any finite logits (no exp of a positive number); a NaN or +inf logit
 * makes the row's loss and gradient NaN and a −inf one is a masked class, as in PyTorch:
 *     m_i      = max_c z_ic  (short rows: their block's maximum, see short_row_stats)
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
 * p_ic = exp(z_ic − m_i − log s_i); short rows (C < SHORT_ROW, see losses/rows.h) keep p itself;
 * and copies of the labels and weights, because the caller's arrays may change before
 * ct_backward runs. */

/* Elements from which the rows are split over the threads (see losses/classification.c: on the
 * quiet 2-core machine two threads take W5's (1024, 1000) from 1.22 ms to about 0.7 ms). */
#define PARALLEL_WORK (1u << 17)

/* Short rows [0, N), C < SHORT_ROW: a shift m_i and log s_i = log Σ_c exp(z_ic − m_i), and with
 * prob the softmax p. The shift is the block's maximum M, not the row's: that max is one flat
 * vectorised pass where a per-row maximum is a strided one, and it serves as well as long as the
 * row's own maximum is not far below M. Then s_i ≥ e^(max_i − M) is a normal float, every term
 * that matters is one (e^(z − M) flushes to 0 only below e^−87, over e^−40 under the row's
 * largest term), each e^(z − M) is taken as if z − M were exact (ct_exp_difference) and log s_i
 * in double (ct_vlog_wide): no rounding grows with the distance to M, and −log p_ic =
 * (m_i − z_ic) + log s_i in double is as accurate as with the row's own maximum. A row with
 * s_i < 2^−60 (its maximum more than about 42 below M) is redone with its own maximum, and so is
 * every row in the float64 build (CT_SHARED_SHIFT_MIN_SUM in losses/rows.h says why).
 * A non-finite logit makes its row's s_i NaN under the shared shift (NaN: e^NaN; +inf: M = inf,
 * inf − inf; −inf: the two-sum's inf − inf, 0·NaN), so such a row is redone with its own maximum,
 * where the arithmetic gives what PyTorch gives: NaN or +inf in the row makes s_i NaN (the row's
 * loss and gradient are NaN); −inf is a class with probability 0 (a mask), and an infinite loss
 * when it is the label's. */
CT_KERNEL
static void short_row_stats(const ct_real *z, int N, int C, double *shift, double *log_sum, ct_real *prob) {
    ct_real e[BLOCK], sum[BLOCK], inv[BLOCK];
    const int rows = BLOCK / C;
    for (int b0 = 0; b0 < N; b0 += rows) {
        const int nb = b0 + rows < N ? rows : N - b0, n = nb * C;
        const ct_real *zb = z + (size_t)b0 * C;
        const ct_real M = ct_block_max(zb, n);
#pragma omp simd
        for (int k = 0; k < n; k++) e[k] = ct_exp_difference(zb[k], M);
#define SUM_ROWS(K) ct_rows_sum(sum, e, nb, K)
        CT_WITH_SMALL_C(C, SUM_ROWS)
#undef SUM_ROWS
        int redo = 0;
#pragma omp simd reduction(+ : redo)
        for (int i = 0; i < nb; i++) {
            redo += !(sum[i] >= CT_SHARED_SHIFT_MIN_SUM); /* NaN too */
            shift[b0 + i] = M;
        }
        for (int i = 0; redo && i < nb; i++) { /* rare: the row's own maximum */
            if (sum[i] >= CT_SHARED_SHIFT_MIN_SUM) continue;
            const ct_real *zr = zb + (size_t)i * C;
            ct_real m = zr[0], s = 0;
            for (int c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
            for (int c = 0; c < C; c++) s += e[i * C + c] = ct_exp_nonpositive(zr[c] - m);
            sum[i] = s, shift[b0 + i] = m;
        }
        if (prob) { /* p_ic = e^(z_ic − m_i) / s_i, kept for the backward */
#pragma omp simd
            for (int i = 0; i < nb; i++) inv[i] = 1 / sum[i];
            ct_real *pb = prob + (size_t)b0 * C;
#define SCALE_ROWS(K) ct_rows_scale(pb, e, inv, NULL, nb, K)
            CT_WITH_SMALL_C(C, SCALE_ROWS)
#undef SCALE_ROWS
        }
#pragma omp simd
        for (int i = 0; i < nb; i++) log_sum[b0 + i] = ct_vlog_wide(sum[i]);
        for (int i = 0; redo && i < nb; i++) /* ct_vlog_wide reads a NaN's bits as a number */
            if (sum[i] != sum[i]) log_sum[b0 + i] = NAN;
    }
}

typedef struct {
    int *labels;        /* N labels, copied */
    ct_real *weight;    /* C class weights, copied, or NULL for w ≡ 1 */
    double *max;        /* N: the shift m_i, max_c z_ic (short rows: the block's maximum, see above) */
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
            if (n < PARALLEL_WORK) { /* an if clause on the parallel loop measured 15.9 µs a W5 step, this 10.5 */
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

CT_KERNEL
ct_tensor *ct_cross_entropy(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_ce_opts opts) {
    static const char *op = "ct_cross_entropy";
    CT_CHECK(logits && logits->ndim == 2, op, "logits must be 2-D (N, C), got %s",
             logits ? ct_shp(logits) : "NULL");
    const int N = logits->shape[0], C = logits->shape[1];
    CT_CHECK(C > 0, op, "logits %s have no classes", ct_shp(logits));
    CT_CHECK(labels.n == N, op, "%d labels for logits %s with N = %d rows", labels.n, ct_shp(logits), N);
    CT_CHECK(labels.data || N == 0, op, "labels are NULL for logits %s", ct_shp(logits));
    CT_CHECK(opts.label_smoothing >= 0 && opts.label_smoothing <= 1, op,
             "label_smoothing %g is outside [0, 1]", opts.label_smoothing);
    CT_CHECK(opts.reduction == CT_REDUCTION_MEAN || opts.reduction == CT_REDUCTION_SUM ||
             opts.reduction == CT_REDUCTION_NONE, op, "unknown reduction %d", (int)opts.reduction);
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
    if (opts.weight)
        for (int c = 0; c < C; c++)
            CT_CHECK(isfinite(opts.weight[c]), op, "weight[%d] = %g is not finite", c, (double)opts.weight[c]);

    ct_node *nd;
    ct_shape shape = opts.reduction == CT_REDUCTION_NONE ? CT_SHAPE(N) : (ct_shape){.ndim = 0};
    ct_tensor *out = ct_op_output(tape, shape, &ct_op_cross_entropy, &logits, 1, &nd);
    ct_arena *arena = ct_tape_arena(tape);
    double *max = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *max);
    double *log_sum = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *log_sum);

    const ct_real *w = opts.weight;
    const double eps = opts.label_smoothing, spread = eps / C;
    double total = 0, denom = 0;
    /* short rows keep p for the backward when a node is recorded (C < 64 reals a row) */
    ct_real *prob = nd && C < SHORT_ROW ? ct_arena_alloc(arena, (size_t)(N ? N : 1) * C * sizeof *prob) : NULL;
    const int short_rows = C < SHORT_ROW;
    if (short_rows && (size_t)N * C < PARALLEL_WORK) {
        short_row_stats(logits->data, N, C, max, log_sum, prob);
    } else if (short_rows) { /* rows split over the threads */
        const int parts = ct_max_threads();
#pragma omp parallel for schedule(static)
        for (int b = 0; b < parts; b++) {
            const int i0 = (int)((long)N * b / parts), i1 = (int)((long)N * (b + 1) / parts);
            const size_t k0 = (size_t)i0 * C;
            short_row_stats(logits->data + k0, i1 - i0, C, max + i0, log_sum + i0, prob ? prob + k0 : NULL);
        }
    }
    if (short_rows && !w && eps == 0) { /* the common case in one vectorised pass: ℓ_i = (m_i − z_iy) + log s_i */
        const int none = opts.reduction == CT_REDUCTION_NONE;
#pragma omp simd reduction(+ : total, denom)
        for (int i = 0; i < N; i++) {
            const int y = labels.data[i], kept = y != opts.ignore_index;
            const double loss_i = kept ? (max[i] - logits->data[(size_t)i * C + (kept ? y : 0)]) + log_sum[i] : 0;
            if (none) out->data[i] = (ct_real)loss_i;
            total += loss_i;
            denom += kept;
        }
    } else {
#pragma omp parallel for schedule(static) reduction(+ : total, denom) if ((size_t)N * C >= PARALLEL_WORK)
        for (int i = 0; i < N; i++) {
            const ct_real *z = logits->data + (size_t)i * C;
            if (!short_rows) { /* long rows: one row at a time */
                /* NaN or +inf in the row: Σ is NaN (e^NaN, inf − inf), so are the loss and gradient */
                ct_real m_row = -INFINITY;
#pragma omp simd reduction(max : m_row)
                for (int c = 0; c < C; c++) m_row = z[c] > m_row ? z[c] : m_row;
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
                /* −log p_ic = (m_i − z_ic) + log s_i in double (log s_i < 0 with a block's shift:
                 * see short_row_stats) */
                loss_i = (1 - eps) * w_y * ((m_i - z[y]) + log_sum[i]);
                if (eps > 0) {
                    double smooth = 0; /* Σ_c w_c·(−log p_ic) */
                    for (int c = 0; c < C; c++) smooth += (w ? w[c] : 1.0) * ((m_i - z[c]) + log_sum[i]);
                    loss_i += spread * smooth;
                }
                denom += w_y;
            }
            if (opts.reduction == CT_REDUCTION_NONE) out->data[i] = (ct_real)loss_i;
            total += loss_i;
        }
    }
    if (opts.reduction == CT_REDUCTION_SUM) out->data[0] = (ct_real)total;
    if (opts.reduction == CT_REDUCTION_MEAN) out->data[0] = (ct_real)(total / denom);

    if (nd) {
        ce_saved *s = ct_arena_alloc(arena, sizeof *s);
        s->labels = ct_arena_alloc(arena, (size_t)(N ? N : 1) * sizeof *s->labels);
        if (N) memcpy(s->labels, labels.data, (size_t)N * sizeof *s->labels);
        s->weight = NULL;
        if (w) {
            s->weight = ct_arena_alloc(arena, (size_t)C * sizeof *s->weight);
            memcpy(s->weight, w, (size_t)C * sizeof *s->weight);
        }
        s->max = max;
        s->prob = short_rows ? prob : NULL;
        s->log_sum = log_sum;
        s->eps = eps;
        s->denom = denom;
        s->reduction = (int)opts.reduction;
        s->ignore_index = opts.ignore_index;
        nd->extra = s;
    }
    return out;
}
