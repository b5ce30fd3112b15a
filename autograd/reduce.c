/* autograd/reduce.c — reductions along one axis (sum, mean, max, logsumexp) and over everything.
 *
 * x is viewed as (outer, len, inner) around the reduced axis, so element (o, k, j) sits at
 * x[(o·len + k)·inner + j] and the result y (outer, inner) at y[o·inner + j]. keepdim keeps the
 * axis as size 1 (same data, different shape). The *_all forms are the same ops with
 * outer = inner = 1 and a scalar result of shape ().
 * Every node keeps iarg[0] = axis and iarg[1] = 1 for the *_all forms. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <tgmath.h>

typedef struct {
    size_t outer, len, inner;
} split3;

static split3 split_of(const ct_tensor *x, int axis, int all) {
    split3 s = {1, x->size, 1};
    if (!all) ct_axis_split(x, axis, &s.outer, &s.len, &s.inner);
    return s;
}

static split3 node_split(const ct_node *n) { return split_of(n->in[0], n->iarg[0], n->iarg[1]); }

/* The output of a reduction, recorded with its axis; *s receives the (outer, len, inner) view. */
static ct_tensor *reduce_output(ct_tape *tape, ct_tensor *x, int axis, int keepdim, int all,
                                const ct_op *op, const char *name, ct_node **n, split3 *s) {
    ct_shape shape = {0};
    if (!all) {
        axis = ct_axis(name, x, axis);
        for (int d = 0; d < x->ndim; d++)
            if (d != axis) shape.d[shape.ndim++] = x->shape[d];
            else if (keepdim) shape.d[shape.ndim++] = 1;
    }
    *s = split_of(x, axis, all);
    ct_tensor *y = ct_op_output(tape, shape, op, &x, 1, n);
    if (*n) (*n)->iarg[0] = axis, (*n)->iarg[1] = all;
    return y;
}

/* ---- sum: y[o,j] = Σ_k x[o,k,j];  dx[o,k,j] += dy[o,j] --------------------------------------
 * ---- mean: y = sum / len;          dx[o,k,j] += dy[o,j] / len                                 */
static void spread(ct_real *dx, const ct_real *dy, split3 s, ct_real scale) {
    for (size_t o = 0; o < s.outer; o++)
        for (size_t k = 0; k < s.len; k++) {
            ct_real *row = dx + (o * s.len + k) * s.inner;
            const ct_real *g = dy + o * s.inner;
            for (size_t j = 0; j < s.inner; j++) row[j] += scale * g[j];
        }
}

/* Sums in double: a run of contiguous values into one accumulator, or, along a non-last axis, a
 * row of `inner` accumulators (acc, from the arena) that each row of x adds into. */
CT_KERNEL
static void sum_into(ct_real *y, const ct_real *x, split3 s, double scale, ct_arena *arena) {
    double *restrict acc = s.inner > 1 ? ct_arena_alloc(arena, s.inner * sizeof *acc) : NULL;
    for (size_t o = 0; o < s.outer; o++) {
        if (s.inner == 1) { /* one contiguous run */
            double sum = 0;
            for (size_t k = 0; k < s.len; k++) sum += x[o * s.len + k];
            y[o] = (ct_real)(sum * scale);
            continue;
        }
        for (size_t j = 0; j < s.inner; j++) acc[j] = 0;
        for (size_t k = 0; k < s.len; k++) {
            const ct_real *restrict row = x + (o * s.len + k) * s.inner;
#pragma omp simd
            for (size_t j = 0; j < s.inner; j++) acc[j] += row[j];
        }
        ct_real *yo = y + o * s.inner;
        for (size_t j = 0; j < s.inner; j++) yo[j] = (ct_real)(acc[j] * scale);
    }
}

static void sum_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (dx) spread(dx, n->out->grad, node_split(n), 1);
}
const ct_op ct_op_sum = {"sum", "y = Σ_k x[.., k, ..]; dx = dy (spread along k)", sum_backward};

static ct_tensor *sum_impl(ct_tape *tape, ct_tensor *x, int axis, int keepdim, int all) {
    ct_node *n;
    split3 s;
    ct_tensor *y = reduce_output(tape, x, axis, keepdim, all, &ct_op_sum, "ct_sum", &n, &s);
    sum_into(y->data, x->data, s, 1, ct_tape_arena(tape));
    return y;
}
ct_tensor *ct_sum(ct_tape *tape, ct_tensor *x, int axis, int keepdim) { return sum_impl(tape, x, axis, keepdim, 0); }
ct_tensor *ct_sum_all(ct_tape *tape, ct_tensor *x) { return sum_impl(tape, x, 0, 0, 1); }

static void mean_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    split3 s = node_split(n);
    if (dx) spread(dx, n->out->grad, s, (ct_real)1 / (ct_real)s.len);
}
const ct_op ct_op_mean = {"mean", "y = Σ_k x[.., k, ..] / n; dx = dy / n", mean_backward};

static ct_tensor *mean_impl(ct_tape *tape, ct_tensor *x, int axis, int keepdim, int all) {
    ct_node *n;
    split3 s;
    ct_tensor *y = reduce_output(tape, x, axis, keepdim, all, &ct_op_mean, "ct_mean", &n, &s);
    sum_into(y->data, x->data, s, 1 / (double)s.len, ct_tape_arena(tape));
    return y;
}
ct_tensor *ct_mean(ct_tape *tape, ct_tensor *x, int axis, int keepdim) { return mean_impl(tape, x, axis, keepdim, 0); }
ct_tensor *ct_mean_all(ct_tape *tape, ct_tensor *x) { return mean_impl(tape, x, 0, 0, 1); }

/* ---- max: y[o,j] = max_k x[o,k,j];  dx[o,k*,j] += dy[o,j] at the first maximum k* ------------
 * extra = the int index k* per output element (in the arena). */
static void max_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    split3 s = node_split(n);
    const int *arg = n->extra;
    const ct_real *dy = n->out->grad;
    for (size_t o = 0; o < s.outer; o++)
        for (size_t j = 0; j < s.inner; j++)
            dx[(o * s.len + (size_t)arg[o * s.inner + j]) * s.inner + j] += dy[o * s.inner + j];
}
const ct_op ct_op_max = {"max", "y = max_k x[.., k, ..]; dx = dy at the first argmax", max_backward};

static ct_tensor *max_impl(ct_tape *tape, ct_tensor *x, int axis, int keepdim, int all) {
    ct_node *n;
    split3 s;
    ct_tensor *y = reduce_output(tape, x, axis, keepdim, all, &ct_op_max, "ct_max", &n, &s);
    CT_CHECK(s.len > 0, "ct_max", "cannot take the max of an empty axis of %s", ct_shp(x));
    int *arg = ct_arena_alloc(ct_tape_arena(tape), s.outer * s.inner * sizeof *arg);
    for (size_t o = 0; o < s.outer; o++)
        for (size_t j = 0; j < s.inner; j++) {
            const ct_real *col = x->data + o * s.len * s.inner + j;
            size_t best = 0;
            for (size_t k = 1; k < s.len; k++)
                if (col[k * s.inner] > col[best * s.inner]) best = k; /* strict: first max wins */
            y->data[o * s.inner + j] = col[best * s.inner];
            arg[o * s.inner + j] = (int)best;
        }
    if (n) n->extra = arg;
    return y;
}
ct_tensor *ct_max(ct_tape *tape, ct_tensor *x, int axis, int keepdim) { return max_impl(tape, x, axis, keepdim, 0); }
ct_tensor *ct_max_all(ct_tape *tape, ct_tensor *x) { return max_impl(tape, x, 0, 0, 1); }

/* ---- logsumexp: y = m + ln Σ_k e^(x_k − m), m = max_k x_k;  dx_k += dy·e^(x_k − y) -----------
 * Subtracting the max keeps every exponent ≤ 0: finite for any finite input. dx is the softmax
 * along the axis times dy. */
static void logsumexp_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    split3 s = node_split(n);
    const ct_real *x = n->in[0]->data, *y = n->out->data, *dy = n->out->grad;
    for (size_t o = 0; o < s.outer; o++)
        for (size_t k = 0; k < s.len; k++) {
            size_t at = (o * s.len + k) * s.inner;
            for (size_t j = 0; j < s.inner; j++)
                dx[at + j] += dy[o * s.inner + j] * exp(x[at + j] - y[o * s.inner + j]);
        }
}
const ct_op ct_op_logsumexp = {"logsumexp", "y = ln Σ_k e^x_k; dx = dy·e^(x − y)", logsumexp_backward};

static ct_tensor *logsumexp_impl(ct_tape *tape, ct_tensor *x, int axis, int keepdim, int all) {
    ct_node *n;
    split3 s;
    ct_tensor *y = reduce_output(tape, x, axis, keepdim, all, &ct_op_logsumexp, "ct_logsumexp", &n, &s);
    for (size_t o = 0; o < s.outer; o++)
        for (size_t j = 0; j < s.inner; j++) {
            const ct_real *col = x->data + o * s.len * s.inner + j;
            ct_real m = -INFINITY;
            for (size_t k = 0; k < s.len; k++)
                if (col[k * s.inner] > m) m = col[k * s.inner];
            ct_real shift = isfinite(m) ? m : 0; /* all −∞ gives −∞, a +∞ gives +∞ */
            double acc = 0;
            for (size_t k = 0; k < s.len; k++) acc += exp(col[k * s.inner] - shift);
            y->data[o * s.inner + j] = shift + (ct_real)log(acc);
        }
    return y;
}
ct_tensor *ct_logsumexp(ct_tape *tape, ct_tensor *x, int axis, int keepdim) { return logsumexp_impl(tape, x, axis, keepdim, 0); }
ct_tensor *ct_logsumexp_all(ct_tape *tape, ct_tensor *x) { return logsumexp_impl(tape, x, 0, 0, 1); }
