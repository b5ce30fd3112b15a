/* autograd/softmax.c — normalisations along one axis: softmax, log_softmax, l2_normalize.
 *
 * As in reduce.c, x is viewed as (outer, len, inner) around the axis, and each of the
 * outer·inner "lines" x[o, :, j] (stride inner) is normalised on its own. Lines are independent,
 * so the outer loop runs in parallel for large tensors. Every node keeps iarg[0] = axis. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <tgmath.h>

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* Line (o, j) starts at offset (o·len)·inner + j and steps by inner. */
#define LINE(o, j) ((o) * len * inner + (j))

static ct_tensor *norm_output(ct_tape *tape, ct_tensor *x, int *axis, const ct_op *op,
                              const char *name, ct_node **n) {
    *axis = ct_axis(name, x, *axis);
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), op, &x, 1, n);
    if (*n) (*n)->iarg[0] = *axis;
    return y;
}

/* Writes m = max of the line and returns Σ e^(x − m), both finite for finite input. */
/* Every exponent below is ≤ 0 (x − max, or a log-probability), so the vectorised
 * ct_exp_nonpositive of autograd/internal.h applies. */
static inline double line_max_sumexp(const ct_real *x, size_t len, size_t inner, ct_real *m_out) {
    ct_real m = -INFINITY;
    for (size_t k = 0; k < len; k++)
        if (x[k * inner] > m) m = x[k * inner];
    if (!isfinite(m)) m = m > 0 ? m : 0; /* all −∞: shift by 0; a +∞ stays +∞ (NaN follows) */
    double sum = 0;
    for (size_t k = 0; k < len; k++) sum += ct_exp_nonpositive(x[k * inner] - m);
    *m_out = m;
    return sum;
}

/* ---- softmax: y_k = e^(x_k − m) / Σ_i e^(x_i − m);  dx_k += y_k·(dy_k − Σ_i dy_i·y_i) ------- */
CT_KERNEL
static void softmax_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    size_t outer, len, inner;
    ct_axis_split(n->in[0], n->iarg[0], &outer, &len, &inner);
    const ct_real *y = n->out->data, *dy = n->out->grad;
#pragma omp parallel for if (n->out->size > PAR_MIN)
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t at = LINE(o, j);
            double dot = 0;
            for (size_t k = 0; k < len; k++) dot += dy[at + k * inner] * y[at + k * inner];
            for (size_t k = 0; k < len; k++)
                dx[at + k * inner] += y[at + k * inner] * (dy[at + k * inner] - (ct_real)dot);
        }
}
const ct_op ct_op_softmax = {"softmax", "y = e^x / Σ e^x; dx = y·(dy − Σ dy·y)", softmax_backward};

CT_KERNEL
ct_tensor *ct_softmax(ct_tape *tape, ct_tensor *x, int axis) {
    ct_node *n;
    ct_tensor *y = norm_output(tape, x, &axis, &ct_op_softmax, "ct_softmax", &n);
    size_t outer, len, inner;
    ct_axis_split(x, axis, &outer, &len, &inner);
#pragma omp parallel for if (x->size > PAR_MIN)
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t at = LINE(o, j);
            ct_real m;
            ct_real inv = (ct_real)(1 / line_max_sumexp(x->data + at, len, inner, &m));
            for (size_t k = 0; k < len; k++)
                y->data[at + k * inner] = ct_exp_nonpositive(x->data[at + k * inner] - m) * inv;
        }
    return y;
}

/* ---- log_softmax: y_k = x_k − m − ln Σ_i e^(x_i − m);  dx_k += dy_k − e^(y_k)·Σ_i dy_i ------ */
CT_KERNEL
static void log_softmax_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    size_t outer, len, inner;
    ct_axis_split(n->in[0], n->iarg[0], &outer, &len, &inner);
    const ct_real *y = n->out->data, *dy = n->out->grad;
#pragma omp parallel for if (n->out->size > PAR_MIN)
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t at = LINE(o, j);
            double total = 0;
            for (size_t k = 0; k < len; k++) total += dy[at + k * inner];
            for (size_t k = 0; k < len; k++)
                dx[at + k * inner] += dy[at + k * inner] - ct_exp_nonpositive(y[at + k * inner]) * (ct_real)total;
        }
}
const ct_op ct_op_log_softmax = {"log_softmax", "y = x − ln Σ e^x; dx = dy − softmax(x)·Σ dy",
                                 log_softmax_backward};

CT_KERNEL
ct_tensor *ct_log_softmax(ct_tape *tape, ct_tensor *x, int axis) {
    ct_node *n;
    ct_tensor *y = norm_output(tape, x, &axis, &ct_op_log_softmax, "ct_log_softmax", &n);
    size_t outer, len, inner;
    ct_axis_split(x, axis, &outer, &len, &inner);
#pragma omp parallel for if (x->size > PAR_MIN)
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t at = LINE(o, j);
            ct_real m;
            double sum = line_max_sumexp(x->data + at, len, inner, &m);
            ct_real lse = m + (ct_real)log(sum);
            for (size_t k = 0; k < len; k++) y->data[at + k * inner] = x->data[at + k * inner] - lse;
        }
    return y;
}

/* ---- l2_normalize: y = x / r, r = max(‖x‖₂, eps) along the axis (PyTorch F.normalize).
 * Where ‖x‖ ≥ eps:  dx += (dy − y·Σ dy·y) / r   (the projection off y, scaled);
 * where ‖x‖ < eps:  r = eps is a constant and dx += dy / eps.
 * extra = ‖x‖ per line (outer·inner values, in the arena); arg[0] = eps. */
static void l2_normalize_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    size_t outer, len, inner;
    ct_axis_split(n->in[0], n->iarg[0], &outer, &len, &inner);
    const ct_real *y = n->out->data, *dy = n->out->grad, *r = n->extra;
    ct_real eps = (ct_real)n->arg[0];
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t at = LINE(o, j);
            ct_real norm = r[o * inner + j], rr = norm >= eps ? norm : eps;
            double dot = 0;
            if (norm >= eps) /* r = ‖x‖ varies with x (PyTorch's clamp passes the gradient at = eps) */
                for (size_t k = 0; k < len; k++) dot += dy[at + k * inner] * y[at + k * inner];
            for (size_t k = 0; k < len; k++)
                dx[at + k * inner] += (dy[at + k * inner] - y[at + k * inner] * (ct_real)dot) / rr;
        }
}
const ct_op ct_op_l2_normalize = {"l2_normalize", "y = x / max(‖x‖, eps); dx = (dy − y·Σ dy·y) / ‖x‖",
                                  l2_normalize_backward};

ct_tensor *ct_l2_normalize(ct_tape *tape, ct_tensor *x, int axis, double eps) {
    CT_CHECK(eps >= 0, "ct_l2_normalize", "eps must be >= 0, got %g (input %s)", eps, ct_shp(x));
    ct_node *n;
    ct_tensor *y = norm_output(tape, x, &axis, &ct_op_l2_normalize, "ct_l2_normalize", &n);
    size_t outer, len, inner;
    ct_axis_split(x, axis, &outer, &len, &inner);
    ct_real *r = ct_arena_alloc(ct_tape_arena(tape), (outer * inner + 1) * sizeof *r);
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t at = LINE(o, j);
            double ss = 0;
            for (size_t k = 0; k < len; k++) ss += (double)x->data[at + k * inner] * x->data[at + k * inner];
            ct_real norm = (ct_real)sqrt(ss), rr = norm >= (ct_real)eps ? norm : (ct_real)eps;
            r[o * inner + j] = norm;
            for (size_t k = 0; k < len; k++) y->data[at + k * inner] = x->data[at + k * inner] / rr;
        }
    if (n) n->extra = r, n->arg[0] = eps;
    return y;
}
