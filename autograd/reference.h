/* autograd/reference.h — the basic ops and layers in their plainest form, for reading and for checking.
 *
 * Each op is a pair of plain C functions over arrays, as in llm.c: <op>_forward writes its output,
 * <op>_backward ADDS (+=) into the gradients of its inputs, given dout (the gradient of the output)
 * and what the forward read. No tape, no threads, no BLAS, no fast-path branches: loops a reader can
 * follow with the math written above each in autograd/reference.c. Sums are accumulated in double.
 *
 * The fast ops of autograd/ops.h compute the same numbers (tests/autograd/test_reference.c compares
 * every pair on random inputs, values and gradients, in the float32 and float64 builds); read these
 * first, then the fast forms. The lessons (examples/learn/) point here, and losses/losses.h keeps the
 * same kind of twin for every fused loss (ct_<loss>_reference).
 *
 * Shapes are row-major; "x (N, D)" means x[n·D + d]. Every backward pointer must be non-NULL. */
#ifndef CTAPE_AUTOGRAD_REFERENCE_H
#define CTAPE_AUTOGRAD_REFERENCE_H

#include "../core/core.h"

/* out (M, N) = a (M, K) · b (K, N) */
void ct_ref_matmul_forward(ct_real *out, const ct_real *a, const ct_real *b, int M, int K, int N);
void ct_ref_matmul_backward(ct_real *da, ct_real *db, const ct_real *dout, const ct_real *a, const ct_real *b,
                            int M, int K, int N);

/* Broadcasting (NumPy's rule): shapes aligned on the right, a dimension of 1 stretches. The flat index
 * into an input of shape `in` of the output element at flat index i of shape `out`. */
size_t ct_ref_broadcast_index(ct_shape out, ct_shape in, size_t i);
/* out = a + b and out = a · b, broadcasting; `out` is the broadcast shape of a and b. */
void ct_ref_add_forward(ct_real *out, const ct_real *a, const ct_real *b, ct_shape sa, ct_shape sb, ct_shape so);
void ct_ref_add_backward(ct_real *da, ct_real *db, const ct_real *dout, ct_shape sa, ct_shape sb, ct_shape so);
void ct_ref_mul_forward(ct_real *out, const ct_real *a, const ct_real *b, ct_shape sa, ct_shape sb, ct_shape so);
void ct_ref_mul_backward(ct_real *da, ct_real *db, const ct_real *dout, const ct_real *a, const ct_real *b,
                         ct_shape sa, ct_shape sb, ct_shape so);

/* Element-wise activations over n values. */
void ct_ref_relu_forward(ct_real *out, const ct_real *x, size_t n);
void ct_ref_relu_backward(ct_real *dx, const ct_real *dout, const ct_real *x, size_t n);
void ct_ref_sigmoid_forward(ct_real *out, const ct_real *x, size_t n);
void ct_ref_sigmoid_backward(ct_real *dx, const ct_real *dout, const ct_real *out, size_t n);
void ct_ref_tanh_forward(ct_real *out, const ct_real *x, size_t n);
void ct_ref_tanh_backward(ct_real *dx, const ct_real *dout, const ct_real *out, size_t n);
void ct_ref_gelu_forward(ct_real *out, const ct_real *x, size_t n); /* the erf form */
void ct_ref_gelu_backward(ct_real *dx, const ct_real *dout, const ct_real *x, size_t n);

/* Sum and mean along one axis of x viewed as (outer, n, inner) -> out (outer, inner). The whole
 * tensor is outer = inner = 1. */
void ct_ref_sum_forward(ct_real *out, const ct_real *x, int outer, int n, int inner);
void ct_ref_sum_backward(ct_real *dx, const ct_real *dout, int outer, int n, int inner);
void ct_ref_mean_forward(ct_real *out, const ct_real *x, int outer, int n, int inner);
void ct_ref_mean_backward(ct_real *dx, const ct_real *dout, int outer, int n, int inner);

/* Softmax and log-softmax along the last axis: x (rows, n). */
void ct_ref_softmax_forward(ct_real *out, const ct_real *x, int rows, int n);
void ct_ref_softmax_backward(ct_real *dx, const ct_real *dout, const ct_real *out, int rows, int n);
void ct_ref_log_softmax_forward(ct_real *out, const ct_real *x, int rows, int n);
void ct_ref_log_softmax_backward(ct_real *dx, const ct_real *dout, const ct_real *out, int rows, int n);

/* out (N, O) = x (N, I) · Wᵀ + b, W (O, I), b (O) or NULL in the forward. */
void ct_ref_linear_forward(ct_real *out, const ct_real *x, const ct_real *w, const ct_real *b, int N, int I, int O);
void ct_ref_linear_backward(ct_real *dx, ct_real *dw, ct_real *db, const ct_real *dout, const ct_real *x,
                            const ct_real *w, int N, int I, int O);

/* The geometry of a 2-D window op over x (N, C, H, W): kernel kh × kw, stride, zero padding; the
 * output is Ho × Wo with Ho = (H + 2·pad − kh)/stride + 1 (and the same for W). */
typedef struct {
    int N, C, H, W;
    int kh, kw, stride, pad;
} ct_ref_window;
int ct_ref_window_out_h(ct_ref_window g);
int ct_ref_window_out_w(ct_ref_window g);

/* conv2d: x (N, C, H, W), w (O, C, kh, kw), b (O) (or NULL in the forward) -> out (N, O, Ho, Wo) (no groups or dilation). */
void ct_ref_conv2d_forward(ct_real *out, const ct_real *x, const ct_real *w, const ct_real *b, int O, ct_ref_window g);
void ct_ref_conv2d_backward(ct_real *dx, ct_real *dw, ct_real *db, const ct_real *dout, const ct_real *x,
                            const ct_real *w, int O, ct_ref_window g);

/* Pooling: x (N, C, H, W) -> out (N, C, Ho, Wo). Max pooling pads with −∞ and sends the gradient to
 * the first maximum of each window; average pooling divides by kh·kw, padding included (PyTorch's
 * default, count_include_pad). */
void ct_ref_max_pool2d_forward(ct_real *out, const ct_real *x, ct_ref_window g);
void ct_ref_max_pool2d_backward(ct_real *dx, const ct_real *dout, const ct_real *x, ct_ref_window g);
void ct_ref_avg_pool2d_forward(ct_real *out, const ct_real *x, ct_ref_window g);
void ct_ref_avg_pool2d_backward(ct_real *dx, const ct_real *dout, ct_ref_window g);

/* Layer norm over the last axis: x (N, D), γ and β (D) -> out (N, D); saves mean and rstd (N). */
void ct_ref_layer_norm_forward(ct_real *out, ct_real *mean, ct_real *rstd, const ct_real *x, const ct_real *gamma,
                               const ct_real *beta, int N, int D, double eps);
void ct_ref_layer_norm_backward(ct_real *dx, ct_real *dgamma, ct_real *dbeta, const ct_real *dout, const ct_real *x,
                                const ct_real *gamma, const ct_real *mean, const ct_real *rstd, int N, int D);

/* Batch norm in training mode: x (N, C, S) with S = H·W (1 for (N, C)), per channel over N·S values
 * with the biased variance; γ and β (C); saves mean and rstd (C). The running statistics are the
 * layer's bookkeeping (nn/) and not part of the math here. */
void ct_ref_batch_norm_forward(ct_real *out, ct_real *mean, ct_real *rstd, const ct_real *x, const ct_real *gamma,
                               const ct_real *beta, int N, int C, int S, double eps);
void ct_ref_batch_norm_backward(ct_real *dx, ct_real *dgamma, ct_real *dbeta, const ct_real *dout, const ct_real *x,
                                const ct_real *gamma, const ct_real *mean, const ct_real *rstd, int N, int C, int S);

#endif
