/* autograd/reference.c — the basic ops and layers written as plainly as possible (autograd/reference.h).
 *
 * Each forward is the definition; each backward is the chain rule for it, adding into the inputs'
 * gradients: d(input) += Σ over the outputs it touched of d(output)·∂output/∂input. A loop that reads
 * an input twice (broadcasting, a shared weight, a window that overlaps another) adds twice: that is
 * all "the gradient of a shared value is the sum over its uses" means in code. */
#define CT_BUILDING_LIBRARY
#include "reference.h"

#include <math.h>

/* ---- matmul ------------------------------------------------------------------------------------
 * out[m][n] = Σ_k a[m][k]·b[k][n]
 * da[m][k] += Σ_n dout[m][n]·b[k][n]   (dout·bᵀ),   db[k][n] += Σ_m a[m][k]·dout[m][n]   (aᵀ·dout) */
void ct_ref_matmul_forward(ct_real *out, const ct_real *a, const ct_real *b, int M, int K, int N) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)a[m * K + k] * b[k * N + n];
            out[m * N + n] = (ct_real)s;
        }
}

void ct_ref_matmul_backward(ct_real *da, ct_real *db, const ct_real *dout, const ct_real *a, const ct_real *b,
                            int M, int K, int N) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                da[m * K + k] += dout[m * N + n] * b[k * N + n];
                db[k * N + n] += a[m * K + k] * dout[m * N + n];
            }
}

/* ---- broadcasting ------------------------------------------------------------------------------
 * Output element i has coordinates c (row-major in `out`); the input's coordinate along each of its
 * dimensions, aligned on the right, is c there, or 0 where the input's dimension is 1 (stretched). */
size_t ct_ref_broadcast_index(ct_shape out, ct_shape in, size_t i) {
    size_t index = 0, stride = 1;
    for (int d = out.ndim - 1, e = in.ndim - 1; d >= 0; d--, e--) {
        const size_t c = i % (size_t)out.d[d];
        i /= (size_t)out.d[d];
        if (e < 0) continue;
        if (in.d[e] != 1) index += c * stride;
        stride *= (size_t)in.d[e];
    }
    return index;
}

/* out_i = a_{A(i)} + b_{B(i)}  (A, B: the broadcast index maps)
 * da_{A(i)} += dout_i,  db_{B(i)} += dout_i   (a stretched input collects the sum over its copies) */
void ct_ref_add_forward(ct_real *out, const ct_real *a, const ct_real *b, ct_shape sa, ct_shape sb, ct_shape so) {
    for (size_t i = 0; i < ct_shape_size(so); i++)
        out[i] = a[ct_ref_broadcast_index(so, sa, i)] + b[ct_ref_broadcast_index(so, sb, i)];
}

void ct_ref_add_backward(ct_real *da, ct_real *db, const ct_real *dout, ct_shape sa, ct_shape sb, ct_shape so) {
    for (size_t i = 0; i < ct_shape_size(so); i++) {
        da[ct_ref_broadcast_index(so, sa, i)] += dout[i];
        db[ct_ref_broadcast_index(so, sb, i)] += dout[i];
    }
}

/* out_i = a_{A(i)}·b_{B(i)}
 * da_{A(i)} += dout_i·b_{B(i)},  db_{B(i)} += dout_i·a_{A(i)}   (a product swaps its inputs) */
void ct_ref_mul_forward(ct_real *out, const ct_real *a, const ct_real *b, ct_shape sa, ct_shape sb, ct_shape so) {
    for (size_t i = 0; i < ct_shape_size(so); i++)
        out[i] = a[ct_ref_broadcast_index(so, sa, i)] * b[ct_ref_broadcast_index(so, sb, i)];
}

void ct_ref_mul_backward(ct_real *da, ct_real *db, const ct_real *dout, const ct_real *a, const ct_real *b,
                         ct_shape sa, ct_shape sb, ct_shape so) {
    for (size_t i = 0; i < ct_shape_size(so); i++) {
        const size_t ia = ct_ref_broadcast_index(so, sa, i), ib = ct_ref_broadcast_index(so, sb, i);
        da[ia] += dout[i] * b[ib];
        db[ib] += dout[i] * a[ia];
    }
}

/* ---- activations --------------------------------------------------------------------------------
 * relu: y = max(x, 0);  dx += dy·[x > 0]   (0 at x = 0, as PyTorch) */
void ct_ref_relu_forward(ct_real *out, const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0;
}
void ct_ref_relu_backward(ct_real *dx, const ct_real *dout, const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dout[i] : 0;
}

/* sigmoid: y = 1/(1 + e^−x);  dx += dy·y·(1 − y) */
void ct_ref_sigmoid_forward(ct_real *out, const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (ct_real)(1 / (1 + exp(-(double)x[i])));
}
void ct_ref_sigmoid_backward(ct_real *dx, const ct_real *dout, const ct_real *out, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] += dout[i] * out[i] * (1 - out[i]);
}

/* tanh: y = (e^x − e^−x)/(e^x + e^−x);  dx += dy·(1 − y²) */
void ct_ref_tanh_forward(ct_real *out, const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (ct_real)tanh((double)x[i]);
}
void ct_ref_tanh_backward(ct_real *dx, const ct_real *dout, const ct_real *out, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] += dout[i] * (1 - out[i] * out[i]);
}

/* gelu: y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)) the normal CDF;  dx += dy·(Φ(x) + x·φ(x)),
 * φ(x) = e^(−x²/2)/√(2π) the normal density (the product rule) */
void ct_ref_gelu_forward(ct_real *out, const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (ct_real)(0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))));
}
void ct_ref_gelu_backward(ct_real *dx, const ct_real *dout, const ct_real *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const double cdf = 0.5 * (1 + erf(x[i] / sqrt(2.0))), pdf = exp(-0.5 * x[i] * x[i]) / sqrt(2 * M_PI);
        dx[i] += (ct_real)(dout[i] * (cdf + x[i] * pdf));
    }
}

/* ---- reductions ---------------------------------------------------------------------------------
 * sum: out[o][j] = Σ_k x[o][k][j];  dx[o][k][j] += dout[o][j]   (every summand moves the sum 1:1)
 * mean: the same divided by n;       dx[o][k][j] += dout[o][j]/n */
void ct_ref_sum_forward(ct_real *out, const ct_real *x, int outer, int n, int inner) {
    for (int o = 0; o < outer; o++)
        for (int j = 0; j < inner; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += x[((size_t)o * n + k) * inner + j];
            out[(size_t)o * inner + j] = (ct_real)s;
        }
}
void ct_ref_sum_backward(ct_real *dx, const ct_real *dout, int outer, int n, int inner) {
    for (int o = 0; o < outer; o++)
        for (int k = 0; k < n; k++)
            for (int j = 0; j < inner; j++) dx[((size_t)o * n + k) * inner + j] += dout[(size_t)o * inner + j];
}
void ct_ref_mean_forward(ct_real *out, const ct_real *x, int outer, int n, int inner) {
    for (int o = 0; o < outer; o++)
        for (int j = 0; j < inner; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += x[((size_t)o * n + k) * inner + j];
            out[(size_t)o * inner + j] = (ct_real)(s / n);
        }
}
void ct_ref_mean_backward(ct_real *dx, const ct_real *dout, int outer, int n, int inner) {
    for (int o = 0; o < outer; o++)
        for (int k = 0; k < n; k++)
            for (int j = 0; j < inner; j++) dx[((size_t)o * n + k) * inner + j] += dout[(size_t)o * inner + j] / n;
}

/* ---- softmax, log-softmax (per row) -------------------------------------------------------------
 * softmax: y_j = e^(x_j − m)/Σ_k e^(x_k − m), m = max_k x_k (the shift changes nothing but keeps e^ finite)
 *   ∂y_j/∂x_i = y_j·([i = j] − y_i), so dx_i += Σ_j dy_j·y_j·([i = j] − y_i) = y_i·(dy_i − Σ_j dy_j·y_j) */
void ct_ref_softmax_forward(ct_real *out, const ct_real *x, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const ct_real *xr = x + (size_t)r * n;
        double m = -INFINITY, s = 0;
        for (int j = 0; j < n; j++) m = fmax(m, xr[j]);
        for (int j = 0; j < n; j++) s += exp(xr[j] - m);
        for (int j = 0; j < n; j++) out[(size_t)r * n + j] = (ct_real)(exp(xr[j] - m) / s);
    }
}
void ct_ref_softmax_backward(ct_real *dx, const ct_real *dout, const ct_real *out, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const size_t o = (size_t)r * n;
        double dot = 0;
        for (int j = 0; j < n; j++) dot += (double)dout[o + j] * out[o + j];
        for (int i = 0; i < n; i++) dx[o + i] += (ct_real)(out[o + i] * (dout[o + i] - dot));
    }
}

/* log-softmax: y_j = x_j − m − log Σ_k e^(x_k − m)
 *   ∂y_j/∂x_i = [i = j] − softmax_i, so dx_i += dy_i − softmax_i·Σ_j dy_j, softmax_i = e^(y_i) */
void ct_ref_log_softmax_forward(ct_real *out, const ct_real *x, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const ct_real *xr = x + (size_t)r * n;
        double m = -INFINITY, s = 0;
        for (int j = 0; j < n; j++) m = fmax(m, xr[j]);
        for (int j = 0; j < n; j++) s += exp(xr[j] - m);
        for (int j = 0; j < n; j++) out[(size_t)r * n + j] = (ct_real)(xr[j] - m - log(s));
    }
}
void ct_ref_log_softmax_backward(ct_real *dx, const ct_real *dout, const ct_real *out, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const size_t o = (size_t)r * n;
        double sum = 0;
        for (int j = 0; j < n; j++) sum += dout[o + j];
        for (int i = 0; i < n; i++) dx[o + i] += (ct_real)(dout[o + i] - exp((double)out[o + i]) * sum);
    }
}

/* ---- linear -------------------------------------------------------------------------------------
 * out[n][o] = b[o] + Σ_i x[n][i]·W[o][i]
 * dx[n][i] += Σ_o dout[n][o]·W[o][i],  dW[o][i] += Σ_n dout[n][o]·x[n][i],  db[o] += Σ_n dout[n][o] */
void ct_ref_linear_forward(ct_real *out, const ct_real *x, const ct_real *w, const ct_real *b, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < I; i++) s += (double)x[n * I + i] * w[o * I + i];
            out[n * O + o] = (ct_real)s;
        }
}
void ct_ref_linear_backward(ct_real *dx, ct_real *dw, ct_real *db, const ct_real *dout, const ct_real *x,
                            const ct_real *w, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            const ct_real d = dout[n * O + o];
            db[o] += d;
            for (int i = 0; i < I; i++) {
                dx[n * I + i] += d * w[o * I + i];
                dw[o * I + i] += d * x[n * I + i];
            }
        }
}

/* ---- windows: conv2d and pooling ------------------------------------------------------------------ */
int ct_ref_window_out_h(ct_ref_window g) { return (g.H + 2 * g.pad - g.kh) / g.stride + 1; }
int ct_ref_window_out_w(ct_ref_window g) { return (g.W + 2 * g.pad - g.kw) / g.stride + 1; }

/* x[n][c][h][w], or 0 in the padding */
static ct_real at(const ct_real *x, ct_ref_window g, int n, int c, int h, int w) {
    if (h < 0 || h >= g.H || w < 0 || w >= g.W) return 0;
    return x[(((size_t)n * g.C + c) * g.H + h) * g.W + w];
}

/* conv2d, the seven loops (examples/learn/05_convolution.c lowers them to GEMM):
 *   out[n][o][i][j] = b[o] + Σ_c Σ_p Σ_q x[n][c][i·s + p − pad][j·s + q − pad]·W[o][c][p][q]
 * Each product's two factors swap in the backward: the x element gets dout·W, the W element dout·x;
 * an x element inside several windows collects from every one of them. */
void ct_ref_conv2d_forward(ct_real *out, const ct_real *x, const ct_real *w, const ct_real *b, int O, ct_ref_window g) {
    const int Ho = ct_ref_window_out_h(g), Wo = ct_ref_window_out_w(g);
    for (int n = 0; n < g.N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    double s = b ? b[o] : 0;
                    for (int c = 0; c < g.C; c++)
                        for (int p = 0; p < g.kh; p++)
                            for (int q = 0; q < g.kw; q++)
                                s += (double)at(x, g, n, c, i * g.stride + p - g.pad, j * g.stride + q - g.pad) *
                                     w[(((size_t)o * g.C + c) * g.kh + p) * g.kw + q];
                    out[(((size_t)n * O + o) * Ho + i) * Wo + j] = (ct_real)s;
                }
}

void ct_ref_conv2d_backward(ct_real *dx, ct_real *dw, ct_real *db, const ct_real *dout, const ct_real *x,
                            const ct_real *w, int O, ct_ref_window g) {
    const int Ho = ct_ref_window_out_h(g), Wo = ct_ref_window_out_w(g);
    for (int n = 0; n < g.N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    const ct_real d = dout[(((size_t)n * O + o) * Ho + i) * Wo + j];
                    db[o] += d;
                    for (int c = 0; c < g.C; c++)
                        for (int p = 0; p < g.kh; p++)
                            for (int q = 0; q < g.kw; q++) {
                                const int h = i * g.stride + p - g.pad, v = j * g.stride + q - g.pad;
                                const size_t k = (((size_t)o * g.C + c) * g.kh + p) * g.kw + q;
                                dw[k] += d * at(x, g, n, c, h, v);
                                if (h >= 0 && h < g.H && v >= 0 && v < g.W)
                                    dx[(((size_t)n * g.C + c) * g.H + h) * g.W + v] += d * w[k];
                            }
                }
}

/* max pooling: out = max over the window (padding is −∞, never the max);
 * the gradient goes to the element that was the maximum (the first one on ties): dx[argmax] += dout */
static size_t window_argmax(const ct_real *x, ct_ref_window g, int n, int c, int i, int j) {
    size_t best = (size_t)-1;
    for (int p = 0; p < g.kh; p++)
        for (int q = 0; q < g.kw; q++) {
            const int h = i * g.stride + p - g.pad, w = j * g.stride + q - g.pad;
            if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
            const size_t k = (((size_t)n * g.C + c) * g.H + h) * g.W + w;
            if (best == (size_t)-1 || x[k] > x[best]) best = k;
        }
    return best;
}

void ct_ref_max_pool2d_forward(ct_real *out, const ct_real *x, ct_ref_window g) {
    const int Ho = ct_ref_window_out_h(g), Wo = ct_ref_window_out_w(g);
    for (int n = 0; n < g.N; n++)
        for (int c = 0; c < g.C; c++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++)
                    out[(((size_t)n * g.C + c) * Ho + i) * Wo + j] = x[window_argmax(x, g, n, c, i, j)];
}

void ct_ref_max_pool2d_backward(ct_real *dx, const ct_real *dout, const ct_real *x, ct_ref_window g) {
    const int Ho = ct_ref_window_out_h(g), Wo = ct_ref_window_out_w(g);
    for (int n = 0; n < g.N; n++)
        for (int c = 0; c < g.C; c++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++)
                    dx[window_argmax(x, g, n, c, i, j)] += dout[(((size_t)n * g.C + c) * Ho + i) * Wo + j];
}

/* average pooling: out = (1/(kh·kw))·Σ over the window (padding counts as 0);
 * every element of the window gets dx += dout/(kh·kw) */
void ct_ref_avg_pool2d_forward(ct_real *out, const ct_real *x, ct_ref_window g) {
    const int Ho = ct_ref_window_out_h(g), Wo = ct_ref_window_out_w(g);
    for (int n = 0; n < g.N; n++)
        for (int c = 0; c < g.C; c++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    double s = 0;
                    for (int p = 0; p < g.kh; p++)
                        for (int q = 0; q < g.kw; q++) s += at(x, g, n, c, i * g.stride + p - g.pad, j * g.stride + q - g.pad);
                    out[(((size_t)n * g.C + c) * Ho + i) * Wo + j] = (ct_real)(s / (g.kh * g.kw));
                }
}

void ct_ref_avg_pool2d_backward(ct_real *dx, const ct_real *dout, ct_ref_window g) {
    const int Ho = ct_ref_window_out_h(g), Wo = ct_ref_window_out_w(g);
    for (int n = 0; n < g.N; n++)
        for (int c = 0; c < g.C; c++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++)
                    for (int p = 0; p < g.kh; p++)
                        for (int q = 0; q < g.kw; q++) {
                            const int h = i * g.stride + p - g.pad, w = j * g.stride + q - g.pad;
                            if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                            dx[(((size_t)n * g.C + c) * g.H + h) * g.W + w] +=
                                dout[(((size_t)n * g.C + c) * Ho + i) * Wo + j] / (g.kh * g.kw);
                        }
}

/* ---- normalisations -------------------------------------------------------------------------------
 * Over a group of M values: μ = mean, σ² = mean of (x − μ)² (biased), r = 1/√(σ² + eps), x̂ = (x − μ)·r,
 * y = γ·x̂ + β. With g = γ·dy (the gradient reaching x̂), the chain rule through μ and r
 * (∂μ/∂x_i = 1/M, ∂r/∂x_i = −r²·x̂_i/M) gives
 *     dx_i += r·(g_i − mean_j g_j − x̂_i·mean_j(g_j·x̂_j)),   dγ += dy·x̂,   dβ += dy
 * (autograd/norm.c derives it in full). Layer norm's group is a row, batch norm's a channel. */
void ct_ref_layer_norm_forward(ct_real *out, ct_real *mean, ct_real *rstd, const ct_real *x, const ct_real *gamma,
                               const ct_real *beta, int N, int D, double eps) {
    for (int n = 0; n < N; n++) {
        const ct_real *xn = x + (size_t)n * D;
        double mu = 0, var = 0;
        for (int d = 0; d < D; d++) mu += xn[d];
        mu /= D;
        for (int d = 0; d < D; d++) var += (xn[d] - mu) * (xn[d] - mu);
        const double r = 1 / sqrt(var / D + eps);
        for (int d = 0; d < D; d++) out[(size_t)n * D + d] = (ct_real)((xn[d] - mu) * r * gamma[d] + beta[d]);
        mean[n] = (ct_real)mu, rstd[n] = (ct_real)r;
    }
}

void ct_ref_layer_norm_backward(ct_real *dx, ct_real *dgamma, ct_real *dbeta, const ct_real *dout, const ct_real *x,
                                const ct_real *gamma, const ct_real *mean, const ct_real *rstd, int N, int D) {
    for (int n = 0; n < N; n++) {
        const size_t o = (size_t)n * D;
        double mean_g = 0, mean_gx = 0;
        for (int d = 0; d < D; d++) {
            const double xhat = (x[o + d] - mean[n]) * rstd[n], g = (double)gamma[d] * dout[o + d];
            mean_g += g / D, mean_gx += g * xhat / D;
            dgamma[d] += (ct_real)(dout[o + d] * xhat);
            dbeta[d] += dout[o + d];
        }
        for (int d = 0; d < D; d++) {
            const double xhat = (x[o + d] - mean[n]) * rstd[n], g = (double)gamma[d] * dout[o + d];
            dx[o + d] += (ct_real)(rstd[n] * (g - mean_g - xhat * mean_gx));
        }
    }
}

/* x[n][c][s]: channel c's group is every n and s (M = N·S values) */
void ct_ref_batch_norm_forward(ct_real *out, ct_real *mean, ct_real *rstd, const ct_real *x, const ct_real *gamma,
                               const ct_real *beta, int N, int C, int S, double eps) {
    const double M = (double)N * S;
    for (int c = 0; c < C; c++) {
        double mu = 0, var = 0;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) mu += x[((size_t)n * C + c) * S + s];
        mu /= M;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const double d = x[((size_t)n * C + c) * S + s] - mu;
                var += d * d;
            }
        const double r = 1 / sqrt(var / M + eps);
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t k = ((size_t)n * C + c) * S + s;
                out[k] = (ct_real)((x[k] - mu) * r * gamma[c] + beta[c]);
            }
        mean[c] = (ct_real)mu, rstd[c] = (ct_real)r;
    }
}

void ct_ref_batch_norm_backward(ct_real *dx, ct_real *dgamma, ct_real *dbeta, const ct_real *dout, const ct_real *x,
                                const ct_real *gamma, const ct_real *mean, const ct_real *rstd, int N, int C, int S) {
    const double M = (double)N * S;
    for (int c = 0; c < C; c++) {
        double mean_g = 0, mean_gx = 0, sum_dyx = 0, sum_dy = 0;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t k = ((size_t)n * C + c) * S + s;
                const double xhat = (x[k] - mean[c]) * rstd[c], g = (double)gamma[c] * dout[k];
                mean_g += g / M, mean_gx += g * xhat / M;
                sum_dyx += dout[k] * xhat, sum_dy += dout[k];
            }
        dgamma[c] += (ct_real)sum_dyx;
        dbeta[c] += (ct_real)sum_dy;
        for (int n = 0; n < N; n++)
            for (int s = 0; s < S; s++) {
                const size_t k = ((size_t)n * C + c) * S + s;
                const double xhat = (x[k] - mean[c]) * rstd[c], g = (double)gamma[c] * dout[k];
                dx[k] += (ct_real)(rstd[c] * (g - mean_g - xhat * mean_gx));
            }
    }
}
