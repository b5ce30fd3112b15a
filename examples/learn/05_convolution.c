/* examples/learn/05_convolution.c — lesson 5: a convolution as im2col + one matrix product, and
 * its backward as two matrix products and col2im.
 *
 *     build/examples/learn/05_convolution
 *
 * A 2-D convolution (PyTorch's, which is a cross-correlation) of x (N, C, H, W) with weights
 * w (K, C, R, S), stride 1, padding P:
 *     y[n, k, i, j] = Σ_c Σ_r Σ_s w[k, c, r, s] · x[n, c, i + r − P, j + s − P]     (0 outside x)
 * Written as loops that is seven nested loops (n, k, i, j, c, r, s): clear, and slow.
 *
 * im2col: for one image, lay every receptive field out as a column: cols has C·R·S rows (one per
 * weight position) and H_out·W_out columns (one per output pixel), cols[(c, r, s), (i, j)] =
 * x[c, i + r − P, j + s − P]. Then the convolution is one matrix product,
 *     y (K, H_out·W_out) = w (K, C·R·S) · cols (C·R·S, H_out·W_out)
 * which BLAS runs near the machine's peak. The backward of a product Y = W·Cols is two products:
 *     dW    = dY · Colsᵀ         (summed over the images)
 *     dCols = Wᵀ · dY
 * and col2im adds each column of dCols back onto the pixels it was copied from (a pixel appears in
 * up to R·S columns, so its gradient is a sum: the broadcasting lesson again).
 *
 * The program computes the forward with the seven loops, with im2col + ct_gemm, and with ct_conv2d
 * (which does im2col + GEMM with more care for cache), then the backward by hand and on the tape.
 * The seven loops with stride and padding, and their backward, are ct_ref_conv2d_forward/_backward in
 * autograd/reference.c (pooling beside them), tested against ct_conv2d. */
#include <ctape.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 2, C = 3, H = 6, W = 5, K = 4, R = 3, S = 3, P = 1, HO = H + 2 * P - R + 1, WO = W + 2 * P - S + 1 };

static double pixel(const ct_real *x, int n, int c, int i, int j) {
    return i < 0 || j < 0 || i >= H || j >= W ? 0 : x[((n * C + c) * H + i) * W + j];
}

int main(void) {
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_tensor *x = ct_tensor_new_grad(CT_SHAPE(N, C, H, W)), *w = ct_tensor_new_grad(CT_SHAPE(K, C, R, S));
    ct_tensor_fill_normal(x, &rng, 0, 1);
    ct_tensor_fill_normal(w, &rng, 0, 0.3);

    /* ---- the seven loops ---- */
    static double naive[N][K][HO][WO];
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            for (int i = 0; i < HO; i++)
                for (int j = 0; j < WO; j++) {
                    double sum = 0;
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < R; r++)
                            for (int s = 0; s < S; s++)
                                sum += w->data[((k * C + c) * R + r) * S + s] * pixel(x->data, n, c, i + r - P, j + s - P);
                    naive[n][k][i][j] = sum;
                }

    /* ---- im2col + one GEMM per image ---- */
    enum { ROWS = C * R * S, COLS = HO * WO };
    static ct_real cols[N][ROWS * COLS], y_gemm[N][K * COLS];
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++)
                    for (int i = 0; i < HO; i++)
                        for (int j = 0; j < WO; j++)
                            cols[n][((c * R + r) * S + s) * COLS + i * WO + j] = (ct_real)pixel(x->data, n, c, i + r - P, j + s - P);
        ct_gemm(0, 0, K, COLS, ROWS, 1, w->data, ROWS, cols[n], COLS, 0, y_gemm[n], COLS);
    }

    /* ---- ct_conv2d on the tape, and a loss L = Σ y·g for a fixed g, so dL/dy = g ---- */
    ct_tape *tape = ct_tape_new();
    ct_tensor *y = ct_conv2d(tape, x, w, NULL, CT_CONV2D_OP(.pad_h = P, .pad_w = P));
    ct_tensor *g = ct_tape_zeros(tape, ct_tensor_shape(y));
    for (size_t t = 0; t < g->size; t++) g->data[t] = (ct_real)sin(0.7 * (double)t);
    ct_backward(tape, ct_sum_all(tape, ct_mul(tape, y, g)));

    double forward_gemm = 0, forward_conv = 0;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            for (int t = 0; t < COLS; t++) {
                const double want = naive[n][k][t / WO][t % WO];
                forward_gemm = fmax(forward_gemm, fabs(y_gemm[n][k * COLS + t] - want));
                forward_conv = fmax(forward_conv, fabs(y->data[(n * K + k) * COLS + t] - want));
            }
    printf("y = conv(x, w): x (%d, %d, %d, %d), w (%d, %d, %d, %d), padding %d -> (%d, %d, %d, %d)\n", N, C, H, W, K, C, R, S,
           P, N, K, HO, WO);
    printf("im2col: cols is (%d, %d) per image: %d weight positions × %d output pixels\n", ROWS, COLS, ROWS, COLS);
    printf("largest difference from the seven loops: im2col + GEMM %.1e, ct_conv2d %.1e\n\n", forward_gemm, forward_conv);

    /* ---- backward by hand: dW = Σ_n dY·Colsᵀ, dCols = Wᵀ·dY, then col2im ---- */
    static ct_real dw[K * ROWS], dcols[ROWS * COLS], dx[N * C * H * W];
    for (int n = 0; n < N; n++) {
        const ct_real *dy = g->data + (size_t)n * K * COLS;
        ct_gemm(0, 1, K, ROWS, COLS, 1, dy, COLS, cols[n], COLS, n ? 1 : 0, dw, ROWS);
        ct_gemm(1, 0, ROWS, COLS, K, 1, w->data, ROWS, dy, COLS, 0, dcols, COLS);
        for (int c = 0; c < C; c++) /* col2im: each column entry back onto its pixel, added */
            for (int r = 0; r < R; r++)
                for (int s = 0; s < S; s++)
                    for (int i = 0; i < HO; i++)
                        for (int j = 0; j < WO; j++) {
                            const int ii = i + r - P, jj = j + s - P;
                            if (ii >= 0 && jj >= 0 && ii < H && jj < W)
                                dx[((n * C + c) * H + ii) * W + jj] += dcols[((c * R + r) * S + s) * COLS + i * WO + j];
                        }
    }
    double dw_err = 0, dx_err = 0;
    for (int t = 0; t < K * ROWS; t++) dw_err = fmax(dw_err, fabs(dw[t] - w->grad[t]));
    for (int t = 0; t < N * C * H * W; t++) dx_err = fmax(dx_err, fabs(dx[t] - x->grad[t]));
    printf("backward: dW = Σ_n dY·Colsᵀ and dX = col2im(Wᵀ·dY) against ct_conv2d's backward:\n");
    printf("dW[0][0][0][0] by hand %.6f, tape %.6f; largest difference %.1e\n", (double)dw[0], (double)w->grad[0], dw_err);
    printf("dX[0][0][0][0] by hand %.6f, tape %.6f; largest difference %.1e\n", (double)dx[0], (double)x->grad[0], dx_err);
    const int ok = forward_gemm < 1e-5 && forward_conv < 1e-5 && dw_err < 1e-4 && dx_err < 1e-4;
    printf("\n%s\n", ok ? "The seven loops, im2col + GEMM and ct_conv2d agree, forward and backward." : "MISMATCH");
    ct_tape_free(tape);
    ct_tensor_free(x), ct_tensor_free(w);
    return !ok;
}
