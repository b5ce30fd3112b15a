/* losses/common.h — private to losses/: the input checks and small helpers every family of the zoo
 * uses. Programmer errors (a shape, a label, an option) stop with a message naming the loss; NaN or
 * ±inf in the data is not checked here: it is data, and the loss computes on it. */
#ifndef CTAPE_LOSSES_COMMON_H
#define CTAPE_LOSSES_COMMON_H

#include "losses.h"
#include "../autograd/op.h"
#include "../core/vmath.h"

#include <math.h>

/* Elements below which a fused loss stays on one thread: (1024, 1000) is split over the threads,
 * (1024, 10) is not, where a fork/join costs more than the work. On a busy machine a barrier waits
 * for whichever thread was descheduled: run with CTAPE_THREADS=1 or OMP_WAIT_POLICY=passive there. */
#define PARALLEL_WORK (1u << 17)

/* mean, sum, none (and batchmean where the loss has it); fatal otherwise. */
static inline void check_reduction(const char *op, ct_reduction r, int allow_batchmean) {
    CT_CHECK(r == CT_REDUCTION_MEAN || r == CT_REDUCTION_SUM || r == CT_REDUCTION_NONE ||
                 (allow_batchmean && r == CT_REDUCTION_BATCHMEAN),
             op, "reduction %d is not %s", (int)r, allow_batchmean ? "mean, sum, none or batchmean" : "mean, sum or none");
}

/* logits (N, C) with N labels in [0, C): fatal naming the loss and the index otherwise. Non-finite
 * logits are data: the loss computes on (NaN or +inf in a row: a NaN loss and gradient for it,
 * −inf: a class with probability 0, as in PyTorch), so an optimizer's non-finite guard sees it. */
static inline void check_logits(const char *op, const ct_tensor *z, ct_labels y) {
    CT_CHECK(z && z->ndim == 2, op, "logits must be 2-D (N, C), got %s", z ? ct_shp(z) : "NULL");
    const int N = z->shape[0], C = z->shape[1];
    CT_CHECK(C > 0, op, "logits %s have no classes", ct_shp(z));
    CT_CHECK(y.n == N, op, "%d labels for logits %s with N = %d rows", y.n, ct_shp(z), N);
    CT_CHECK(y.data || N == 0, op, "labels are NULL for logits %s", ct_shp(z));
    for (int i = 0; i < N; i++)
        CT_CHECK(y.data[i] >= 0 && y.data[i] < C, op, "label %d of sample %d is out of range for C = %d classes",
                 y.data[i], i, C);
}

static inline void check_same_shape(const char *op, const ct_tensor *a, const ct_tensor *b, const char *an,
                                    const char *bn) {
    CT_CHECK(a && b, op, "%s or %s is NULL", an, bn);
    int same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    CT_CHECK(same, op, "%s %s and %s %s must have the same shape", an, ct_shp(a), bn, ct_shp(b));
}

/* labels.n == n and, when classes > 0, every label in [0, classes) (the embedding losses). */
static inline void check_labels(const char *op, ct_labels labels, int n, int classes) {
    CT_CHECK(labels.n == n, op, "%d labels for %d samples", labels.n, n);
    CT_CHECK(labels.data || n == 0, op, "labels are NULL for %d samples", n);
    if (classes > 0)
        for (int i = 0; i < n; i++)
            CT_CHECK(labels.data[i] >= 0 && labels.data[i] < classes, op,
                     "label %d of sample %d is out of range for C = %d classes", labels.data[i], i, classes);
}

/* The one finiteness check of losses/ (ct_all_finite, one vectorised pass), for option vectors
 * (class weights, pos_weight, α per class): fatal naming the first bad entry, "weight[3] = inf is
 * not finite". NULL passes. */
static inline void check_finite_option(const char *op, const char *what, const ct_real *v, int n) {
    if (!v || ct_all_finite(v, (size_t)(n > 0 ? n : 0))) return;
    for (int k = 0; k < n; k++)
        CT_CHECK(isfinite(v[k]), op, "%s[%d] = %g is not finite", what, k, (double)v[k]);
}

/* 1 when every element of every given tensor (NULLs skipped) is finite (the same ct_all_finite). */
static inline int inputs_finite(const ct_tensor *a, const ct_tensor *b, const ct_tensor *c) {
    const ct_tensor *t[3] = {a, b, c};
    for (int k = 0; k < 3; k++)
        if (t[k] && !ct_all_finite(t[k]->data, t[k]->size)) return 0;
    return 1;
}

/* The loss of inputs with a NaN or ±inf (the embedding losses): NaN (every element for none, of the
 * shape the loss gives: the features' leading dims), with a NaN gradient for every input. A
 * non-finite feature is data, not a programmer error, and an optimizer's guard needs a loss and
 * gradients to look at; in the fused losses it would meet masks and maxima that may drop it, so
 * it is not passed through them. As in PyTorch, where one such row reaches every anchor through
 * the similarities or distances. Composed as NaN·Σ x (+ NaN·Σ of the other inputs). */
static inline ct_tensor *nonfinite_loss(ct_tape *tape, ct_tensor *features, ct_tensor *b, ct_tensor *c,
                                        ct_reduction r) {
    ct_tensor *t = r == CT_REDUCTION_NONE ? ct_sum(tape, features, -1, 0) : ct_sum_all(tape, features);
    if (b) t = ct_add(tape, t, ct_reshape(tape, ct_sum_all(tape, b), CT_SHAPE(1)));
    if (c) t = ct_add(tape, t, ct_reshape(tape, ct_sum_all(tape, c), CT_SHAPE(1)));
    if (r != CT_REDUCTION_NONE && t->ndim) t = ct_reshape(tape, t, (ct_shape){.ndim = 0});
    return ct_mul_scalar(tape, t, NAN);
}

/* The backward's g for every sample of a sum (dℓ) or a mean over `divisor` (dℓ/divisor; none
 * when the divisor is 0: a mean over nothing passes no gradient, as in PyTorch); 0 for none,
 * whose g_i is dout[i]. */
static inline double uniform_g(int reduction, const ct_real *dout, double divisor) {
    if (reduction == CT_REDUCTION_NONE) return 0;
    if (reduction == CT_REDUCTION_SUM) return (double)dout[0];
    return divisor == 0 ? 0 : (double)dout[0] / divisor;
}

/* mean / sum over every element, or the tensor itself for none (composed). */
static inline ct_tensor *reduce(ct_tape *tape, ct_tensor *per, ct_reduction r) {
    if (r == CT_REDUCTION_NONE) return per;
    if (r == CT_REDUCTION_SUM) return ct_sum_all(tape, per);
    return ct_mean_all(tape, per);
}

/* The reduction of per-anchor losses `per` (zero where an anchor does not count): none gives
 * `per` itself (reshaped to none_shape), sum Σ per, mean Σ per / count (count = 0: Σ per = 0). */
static inline ct_tensor *reduce_counted(ct_tape *tape, ct_tensor *per, ct_reduction r, double count,
                                        ct_shape none_shape) {
    if (r == CT_REDUCTION_NONE) return ct_reshape(tape, per, none_shape);
    ct_tensor *total = ct_sum_all(tape, per);
    if (r == CT_REDUCTION_SUM) return total;
    return ct_mul_scalar(tape, total, 1.0 / (count > 0 ? count : 1));
}

/* A constant (no gradient) arena tensor filled with value. */
static inline ct_tensor *constant(ct_tape *tape, ct_shape shape, double value) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    if (value != 0) ct_tensor_fill(t, (ct_real)value);
    return t;
}

/* (1 − p)^γ composed, as the fused kernels compute it. For 0 < γ < 1 the derivative γ·x^(γ−1) is
 * infinite at x = 0 (p = 1 exactly): x is clamped to [1e-30, 1] there, so the gradient is 0 instead
 * of 0·∞ = NaN and the value changes by less than 1e-30^γ ≈ 0. NULL for γ = 0 (a factor 1). */
static inline ct_tensor *focal_modulator(ct_tape *tape, ct_tensor *one_minus, double gamma) {
    if (gamma == 0) return NULL;
    if (gamma == 1) return one_minus;
    if (gamma == 2) return ct_mul(tape, one_minus, one_minus);
    if (gamma < 1) one_minus = ct_clamp(tape, one_minus, 1e-30, 1.0);
    return ct_pow_scalar(tape, one_minus, gamma);
}

#endif
