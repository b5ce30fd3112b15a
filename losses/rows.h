/* losses/rows.h — the per-row loops of the softmax losses on short rows (C < SHORT_ROW classes).
 *
 * Short rows go through blocks of BLOCK elements, so that the exponentials of many rows are one
 * flat vectorised loop: a loop over one row of C = 10 runs almost entirely in the scalar remainder
 * of a 16-wide vector loop. What must go row by row (row sums, scaling a row) is written here
 * once and dispatched with C a constant up to 16 (CT_WITH_SMALL_C): GCC then turns each row into
 * whole vectors (measured at C = 10 on 1024 rows: sums 6.8k -> 3.9k cycles, scaling 12.4k ->
 * 3.6k), where with C a variable it runs them element by element. */
#ifndef CTAPE_LOSSES_ROWS_H
#define CTAPE_LOSSES_ROWS_H

#include "../autograd/op.h"

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

/* out_ic = e_ic·scale_i + offset_i (offset NULL: 0); out and e distinct (scaling in place measured
 * slower) */
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
 * own maximum (see losses/cross_entropy.c). The float64 build, which is for gradient checks, redoes
 * every row. In float32 nothing grows with M − z_y: it is exact in double, and log s_i is good to
 * 3e-8. In double, (M − z_y) + log s_i rounds at the size of M − z_y, not of the loss, and
 * comp-sum's e^u carried that into a central difference (1.3e-6, a failed check). */
#ifdef CT_PRECISION_64
#define CT_SHARED_SHIFT_MIN_SUM INFINITY
#else
#define CT_SHARED_SHIFT_MIN_SUM 0x1p-60f
#endif

/* The block's maximum: the shift of every row of a block (see losses/cross_entropy.c). */
static inline ct_real ct_block_max(const ct_real *x, int n) {
    ct_real m = x[0];
#pragma omp simd reduction(max : m)
    for (int k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    return m;
}

#endif
