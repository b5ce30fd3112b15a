/* losses/softmax_rows.h — private to losses/: the softmax-row engine that cross-entropy
 * (cross_entropy.c) and every loss of the softmax family (softmax_family.c) configure.
 *
 * Short rows (C < SHORT_ROW classes) go through blocks of BLOCK elements, so that the exponentials
 * of many rows are one flat vectorised loop: a loop over one row of C = 10 runs almost entirely in
 * the scalar remainder of a 16-wide vector loop. ct_softmax_block below does one block: the shift,
 * the exponentials, the row sums (whole, or the label's term and the others' apart) and log Σ.
 * What must go row by row (row sums, scaling a row) is written here once and dispatched with C a
 * constant up to 16 (CT_WITH_SMALL_C): GCC then turns each row into whole vectors, where with C a
 * variable it runs them element by element. Long rows go one row at a time (ct_row_max). */
#ifndef CTAPE_LOSSES_SOFTMAX_ROWS_H
#define CTAPE_LOSSES_SOFTMAX_ROWS_H

#include "../autograd/op.h"
#include "../core/vmath.h"

#define SHORT_ROW 64
#define BLOCK 2048

/* CT_WITH_SMALL_C(C, CALL): CALL(K) with the literal K = C for C in 2..16, CALL(C) otherwise. */
#define CT_SMALL_C_CASE(K, CALL) case K: CALL(K); break;
#define CT_WITH_SMALL_C(C, CALL)                                                                         \
    switch (C) {                                                                                         \
        CT_SMALL_C_CASE(2, CALL) CT_SMALL_C_CASE(3, CALL) CT_SMALL_C_CASE(4, CALL)                      \
        CT_SMALL_C_CASE(5, CALL) CT_SMALL_C_CASE(6, CALL) CT_SMALL_C_CASE(7, CALL)                      \
        CT_SMALL_C_CASE(8, CALL) CT_SMALL_C_CASE(9, CALL) CT_SMALL_C_CASE(10, CALL)                     \
        CT_SMALL_C_CASE(11, CALL) CT_SMALL_C_CASE(12, CALL) CT_SMALL_C_CASE(13, CALL)                   \
        CT_SMALL_C_CASE(14, CALL) CT_SMALL_C_CASE(15, CALL) CT_SMALL_C_CASE(16, CALL)                   \
    default: CALL(C);                                                                                    \
    }

/* sum_i = Σ_c e_ic */
static CT_ALWAYS_INLINE void ct_rows_sum(ct_real *restrict sum, const ct_real *restrict e, int rows, int C) {
    for (int i = 0; i < rows; i++) {
        ct_real s = e[i * C];
        for (int c = 1; c < C; c++) s += e[i * C + c];
        sum[i] = s;
    }
}

/* at_label_i = e_{i,y_i}, others_i = Σ_{c≠y_i} e_ic (masked, not subtracted: no cancellation) */
static CT_ALWAYS_INLINE void ct_rows_split_label(ct_real *restrict at_label, ct_real *restrict others,
                                                 const ct_real *restrict e, const int *restrict labels,
                                                 int rows, int C) {
    for (int i = 0; i < rows; i++) {
        const int y = labels[i];
        ct_real s = 0;
        for (int c = 0; c < C; c++) s += c == y ? 0 : e[i * C + c];
        others[i] = s, at_label[i] = e[i * C + y];
    }
}

/* out_ic = e_ic·scale_i + offset_i (offset NULL: 0); out and e distinct (in place vectorises worse) */
static CT_ALWAYS_INLINE void ct_rows_scale(ct_real *restrict out, const ct_real *restrict e,
                                           const ct_real *restrict scale, const ct_real *restrict offset,
                                           int rows, int C) {
    for (int i = 0; i < rows; i++) {
        const ct_real a = scale[i], b = offset ? offset[i] : 0;
        for (int c = 0; c < C; c++) out[i * C + c] = e[i * C + c] * a + b;
    }
}

/* dz_ic += g_i·q_ic */
static CT_ALWAYS_INLINE void ct_rows_accumulate(ct_real *restrict dz, const ct_real *restrict q,
                                                const ct_real *restrict g, int rows, int C) {
    for (int i = 0; i < rows; i++) {
        const ct_real gi = g[i];
        for (int c = 0; c < C; c++) dz[i * C + c] += gi * q[i * C + c];
    }
}

/* A row whose Σ_c e^(z_c − M) under its block's maximum M is below this (or NaN) is redone with its
 * own maximum (see ct_softmax_block). The float64 build, which is for gradient checks, redoes
 * every row. In float32 nothing grows with M − z_y: it is exact in double, and log s_i is good to
 * 3e-8. In double, (M − z_y) + log s_i rounds at the size of M − z_y, not of the loss, and
 * comp-sum's e^u carried that into a central difference (1.3e-6, a failed check). */
#ifdef CT_PRECISION_64
#define CT_SHARED_SHIFT_MIN_SUM INFINITY
#else
#define CT_SHARED_SHIFT_MIN_SUM 0x1p-60f
#endif

/* The block's maximum: the shift of every row of a block (see ct_softmax_block). */
static inline ct_real ct_block_max(const ct_real *x, int n) {
    ct_real m = x[0];
#pragma omp simd reduction(max : m)
    for (int k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    return m;
}

/* max_c z_c of one row (−inf for C = 0). */
static CT_ALWAYS_INLINE ct_real ct_row_max(const ct_real *restrict z, int C) {
    ct_real m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int c = 0; c < C; c++) m = z[c] > m ? z[c] : m;
    return m;
}

/* ---- the engine: one block of nb short rows zb (nb, C), nb·C <= BLOCK --------------------------
 *     m_i = M, the block's maximum (a row far below it, or with a non-finite logit: its own)
 *     e_ic = e^(z_ic − m_i)                                     into e (nb·C)
 *     labels NULL:  rest_i = Σ_c e_ic                           (cross-entropy)
 *     labels:       at_label_i = e_{i,y_i},  rest_i = Σ_{c≠y_i} e_ic   (masked, not subtracted:
 *                   1 − p_y = rest/(at_label + rest) comes without cancellation)
 *     log_sum_i = log Σ_c e_ic in double,   shift_i = m_i
 * Why the block's maximum serves as every row's shift: that max is one flat vectorised pass where a
 * per-row maximum is a strided one, and as long as the row's own maximum is not far below M,
 * Σ_c e_ic ≥ e^(max_i − M) is a normal float and every term that matters is one (e^(z − M) flushes
 * to 0 only below e^−87, over e^−40 under the row's largest term). Each e^(z − M) is taken as if
 * z − M were exact (ct_exp_difference) and log Σ in double (ct_vlog_wide): no rounding grows with
 * the distance to M, and −log p_ic = (m_i − z_ic) + log_sum_i in double is as accurate as with the
 * row's own maximum. A row whose sum is below CT_SHARED_SHIFT_MIN_SUM (its maximum more than about
 * 42 below M) is redone with its own maximum, and so is every row in the float64 build.
 * A non-finite logit makes its row's sum NaN under the shared shift (NaN: e^NaN; +inf: M = inf,
 * inf − inf; −inf: the two-sum's inf − inf, 0·NaN), so such a row is redone with its own maximum,
 * where the arithmetic gives what PyTorch gives: NaN or +inf in the row makes log_sum_i NaN (the
 * row's loss and gradient are NaN); −inf is a class with probability 0 (a mask). */
static CT_ALWAYS_INLINE void ct_softmax_block(const ct_real *restrict zb, int nb, int C, const int *restrict labels,
                                              ct_real *restrict e, ct_real *restrict shift,
                                              ct_real *restrict at_label, ct_real *restrict rest,
                                              double *restrict log_sum) {
    const int n = nb * C;
    const ct_real M = ct_block_max(zb, n);
#pragma omp simd
    for (int k = 0; k < n; k++) e[k] = ct_exp_difference(zb[k], M);
    if (labels) {
#define CT_SPLIT_ROWS(K) ct_rows_split_label(at_label, rest, e, labels, nb, K)
        CT_WITH_SMALL_C(C, CT_SPLIT_ROWS)
#undef CT_SPLIT_ROWS
    } else {
#define CT_SUM_ROWS(K) ct_rows_sum(rest, e, nb, K)
        CT_WITH_SMALL_C(C, CT_SUM_ROWS)
#undef CT_SUM_ROWS
    }
#define CT_ROW_SUM(i) (labels ? at_label[i] + rest[i] : rest[i])
    int redo = 0;
#pragma omp simd reduction(+ : redo)
    for (int i = 0; i < nb; i++) {
        redo += !(CT_ROW_SUM(i) >= CT_SHARED_SHIFT_MIN_SUM); /* NaN too */
        shift[i] = M;
    }
    for (int i = 0; redo && i < nb; i++) { /* rare: the row's own maximum */
        if (CT_ROW_SUM(i) >= CT_SHARED_SHIFT_MIN_SUM) continue;
        const ct_real *zr = zb + (size_t)i * C;
        ct_real *er = e + (size_t)i * C, m = zr[0], s = 0;
        for (int c = 1; c < C; c++) m = zr[c] > m ? zr[c] : m;
        const int y = labels ? labels[i] : -1;
        for (int c = 0; c < C; c++) {
            er[c] = ct_exp_nonpositive(zr[c] - m);
            s += c == y ? 0 : er[c];
        }
        if (labels) at_label[i] = er[y];
        rest[i] = s, shift[i] = m;
    }
#pragma omp simd
    for (int i = 0; i < nb; i++) log_sum[i] = ct_vlog_wide(CT_ROW_SUM(i));
    for (int i = 0; redo && i < nb; i++) /* ct_vlog_wide reads a NaN's bits as a number */
        if (CT_ROW_SUM(i) != CT_ROW_SUM(i)) log_sum[i] = NAN;
#undef CT_ROW_SUM
}

#endif
