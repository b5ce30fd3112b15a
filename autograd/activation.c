/* autograd/activation.c — element-wise activations. Each op: the math, the forward, the backward.
 * Backward functions accumulate: dx += dy · f'(x). */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <tgmath.h> /* exp/erf/tanh pick the float or double version from the argument */

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* ---- relu: y = max(x, 0);  dx += dy · [x > 0]  (relu'(0) = 0, as PyTorch) ---------------- */
/* Assigns the gradient when it is the first to reach x (no zero fill), adds otherwise; large
 * tensors on every thread. A branch, not an if clause: a parallel loop whose if clause is false
 * still pays OpenMP's entry cost, which small tensors cannot hide (bench/NOTES.md). */
CT_KERNEL
static void relu_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *x = n->in[0];
    int overwrite;
    ct_real *restrict dx = ct_grad_for_write(tape, x, &overwrite);
    const ct_real *restrict dy = n->out->grad, *restrict y = n->out->data;
    const long len = (long)x->size;
    if (overwrite && len > PAR_MIN) {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < len; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
    } else if (overwrite) {
#pragma omp simd
        for (long i = 0; i < len; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
    } else if (len > PAR_MIN) {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < len; i++) dx[i] += y[i] > 0 ? dy[i] : 0;
    } else {
#pragma omp simd
        for (long i = 0; i < len; i++) dx[i] += y[i] > 0 ? dy[i] : 0;
    }
}
const ct_op ct_op_relu = {"relu", "y = max(x, 0); dx = dy·[x > 0]", relu_backward};

CT_KERNEL
ct_tensor *ct_relu(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), &ct_op_relu, &x, 1, &n);
    ct_real *restrict out = y->data;
    const ct_real *restrict in = x->data;
    const long len = (long)x->size;
    if (len > PAR_MIN) {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < len; i++) out[i] = in[i] > 0 ? in[i] : 0;
    } else {
#pragma omp simd
        for (long i = 0; i < len; i++) out[i] = in[i] > 0 ? in[i] : 0;
    }
    return y;
}

/* The other activations keep the same shape as relu: y (same shape as x), dx += dy · f'(x).
 * <tgmath.h> picks expf/erff/tanhf in the float32 build, exp/erf/tanh in float64. */


static ct_tensor *activation_output(ct_tape *tape, ct_tensor *x, const ct_op *op, ct_node **n) {
    return ct_op_output(tape, ct_tensor_shape(x), op, &x, 1, n);
}

/* σ(x) = 1/(1 + e^−x), computed from e^−|x| so that neither branch overflows. */
static inline ct_real sigmoid_of(ct_real x) {
    ct_real e = exp(-fabs(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/* ---- leaky_relu: y = x > 0 ? x : s·x;  dx += dy·(x > 0 ? 1 : s); arg[0] = s ---------------- */
static void leaky_relu_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *x = n->in[0]->data, *dy = n->out->grad, s = (ct_real)n->arg[0];
    for (size_t i = 0; i < n->out->size; i++) dx[i] += x[i] > 0 ? dy[i] : s * dy[i];
}
const ct_op ct_op_leaky_relu = {"leaky_relu", "y = x > 0 ? x : s·x; dx = dy·(x > 0 ? 1 : s)",
                                leaky_relu_backward};
ct_tensor *ct_leaky_relu(ct_tape *tape, ct_tensor *x, double slope) {
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_leaky_relu, &n);
    if (n) n->arg[0] = slope;
    ct_real s = (ct_real)slope;
    for (size_t i = 0; i < x->size; i++) y->data[i] = x->data[i] > 0 ? x->data[i] : s * x->data[i];
    return y;
}

/* ---- gelu (erf form): y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2));  dx += dy·(Φ(x) + x·φ(x)),
 * φ(x) = e^(−x²/2)/√(2π) the normal density. */
static void gelu_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *x = n->in[0]->data, *dy = n->out->grad;
    const ct_real inv_sqrt2 = (ct_real)0.70710678118654752440, inv_sqrt2pi = (ct_real)0.39894228040143267794;
    for (size_t i = 0; i < n->out->size; i++) {
        ct_real cdf = (ct_real)0.5 * (1 + erf(x[i] * inv_sqrt2));
        ct_real pdf = inv_sqrt2pi * exp((ct_real)-0.5 * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}
const ct_op ct_op_gelu = {"gelu", "y = x·Φ(x); dx = dy·(Φ(x) + x·φ(x))", gelu_backward};
ct_tensor *ct_gelu(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_gelu, &n);
    const ct_real inv_sqrt2 = (ct_real)0.70710678118654752440;
    for (size_t i = 0; i < x->size; i++)
        y->data[i] = (ct_real)0.5 * x->data[i] * (1 + erf(x->data[i] * inv_sqrt2));
    return y;
}

/* ---- gelu_tanh: y = ½x(1 + t), t = tanh(u), u = √(2/π)(x + 0.044715x³);
 *      dx += dy·(½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)) */
static void gelu_tanh_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *x = n->in[0]->data, *dy = n->out->grad;
    const ct_real k = (ct_real)0.79788456080286535588, c = (ct_real)0.044715, half = (ct_real)0.5;
    for (size_t i = 0; i < n->out->size; i++) {
        ct_real v = x[i], t = tanh(k * (v + c * v * v * v));
        ct_real du = k * (1 + 3 * c * v * v);
        dx[i] += dy[i] * (half * (1 + t) + half * v * (1 - t * t) * du);
    }
}
const ct_op ct_op_gelu_tanh = {"gelu_tanh", "y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))); dx = dy·y'",
                               gelu_tanh_backward};
ct_tensor *ct_gelu_tanh(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_gelu_tanh, &n);
    const ct_real k = (ct_real)0.79788456080286535588, c = (ct_real)0.044715;
    for (size_t i = 0; i < x->size; i++) {
        ct_real v = x->data[i];
        y->data[i] = (ct_real)0.5 * v * (1 + tanh(k * (v + c * v * v * v)));
    }
    return y;
}

/* ---- silu: y = x·σ(x);  dx += dy·σ(x)(1 + x(1 − σ(x))) -------------------------------------- */
static void silu_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *x = n->in[0]->data, *dy = n->out->grad;
    for (size_t i = 0; i < n->out->size; i++) {
        ct_real s = sigmoid_of(x[i]);
        dx[i] += dy[i] * s * (1 + x[i] * (1 - s));
    }
}
const ct_op ct_op_silu = {"silu", "y = x·σ(x); dx = dy·σ(x)(1 + x(1 − σ(x)))", silu_backward};
ct_tensor *ct_silu(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_silu, &n);
    for (size_t i = 0; i < x->size; i++) y->data[i] = x->data[i] * sigmoid_of(x->data[i]);
    return y;
}

/* ---- sigmoid: y = σ(x) = 1/(1 + e^−x);  dx += dy·y(1 − y) ----------------------------------- */
CT_KERNEL
static void sigmoid_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *y = n->out->data, *dy = n->out->grad;
    size_t len = n->out->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * y[i] * (1 - y[i]);
}
const ct_op ct_op_sigmoid = {"sigmoid", "y = 1/(1 + e^−x); dx = dy·y(1 − y)", sigmoid_backward};
CT_KERNEL
ct_tensor *ct_sigmoid(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_sigmoid, &n);
    size_t len = x->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) y->data[i] = sigmoid_of(x->data[i]);
    return y;
}

/* ---- tanh: y = tanh x;  dx += dy·(1 − y²) ----------------------------------------------------- */
CT_KERNEL
static void tanh_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *y = n->out->data, *dy = n->out->grad;
    size_t len = n->out->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * (1 - y[i] * y[i]);
}
const ct_op ct_op_tanh = {"tanh", "y = tanh x; dx = dy·(1 − y²)", tanh_backward};
CT_KERNEL
ct_tensor *ct_tanh(ct_tape *tape, ct_tensor *x) {
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_tanh, &n);
    size_t len = x->size;
#pragma omp parallel for if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) y->data[i] = tanh(x->data[i]);
    return y;
}

/* ---- softplus: y = ln(1 + e^(βx))/β, y = x where βx > threshold;
 *      dx += dy·σ(βx), dx += dy where βx > threshold (PyTorch). arg = β, threshold.
 * Stable form: ln(1 + e^z) = max(z, 0) + ln(1 + e^−|z|). */
static void softplus_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *x = n->in[0]->data, *dy = n->out->grad;
    ct_real beta = (ct_real)n->arg[0], threshold = (ct_real)n->arg[1];
    for (size_t i = 0; i < n->out->size; i++) {
        ct_real z = beta * x[i];
        dx[i] += z > threshold ? dy[i] : dy[i] * sigmoid_of(z);
    }
}
const ct_op ct_op_softplus = {"softplus", "y = ln(1 + e^(βx))/β; dx = dy·σ(βx)", softplus_backward};
ct_tensor *ct_softplus(ct_tape *tape, ct_tensor *x, double beta, double threshold) {
    CT_CHECK(beta != 0, "ct_softplus", "beta must be nonzero (input %s)", ct_shp(x));
    ct_node *n;
    ct_tensor *y = activation_output(tape, x, &ct_op_softplus, &n);
    if (n) n->arg[0] = beta, n->arg[1] = threshold;
    ct_real b = (ct_real)beta, th = (ct_real)threshold;
    for (size_t i = 0; i < x->size; i++) {
        ct_real z = b * x->data[i];
        y->data[i] = z > th ? x->data[i] : ((z > 0 ? z : 0) + log1p(exp(-fabs(z)))) / b;
    }
    return y;
}
