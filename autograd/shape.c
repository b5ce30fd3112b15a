/* autograd/shape.c — ops that move elements without computing on them: detach, reshape,
 * permute/transpose, slice, concat, index_select, gather_rows, one_hot.
 *
 * Their backward is the same movement run the other way: every forward copy out[i] = x[j]
 * becomes dx[j] += dy[i] (so repeated indices accumulate). */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <string.h>

/* ---- detach: y = x, no node, no gradient (a stop-gradient view sharing x's data) ------------ */
ct_tensor *ct_detach(ct_tape *tape, ct_tensor *x) {
    return ct_op_view(tape, x, ct_tensor_shape(x));
}

/* ---- reshape: y = x with another shape, sharing x's data;  dx[i] += dy[i] ---------------------
 * y has its own gradient buffer, so the backward is one element-wise add. The output is made by
 * ct_op_output with an empty shape (which allocates no data, but records the node) and is then
 * pointed at x's data: no copy, no wasted arena memory. */
static void reshape_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const ct_real *dy = n->out->grad;
    for (size_t i = 0; i < n->out->size; i++) dx[i] += dy[i];
}
const ct_op ct_op_reshape = {"reshape", "y = x viewed with a new shape; dx = dy", reshape_backward};

ct_tensor *ct_reshape(ct_tape *tape, ct_tensor *x, ct_shape shape) {
    char want[96];
    ct_shape_str(shape, want, sizeof want);
    CT_CHECK(shape.ndim >= 0 && shape.ndim <= CT_MAX_DIMS, "ct_reshape",
             "cannot reshape %s into %d dimensions (at most %d)", ct_shp(x), shape.ndim, CT_MAX_DIMS);
    int infer = -1;
    size_t known = 1;
    for (int d = 0; d < shape.ndim; d++) {
        if (shape.d[d] == -1) {
            CT_CHECK(infer < 0, "ct_reshape", "cannot reshape %s into %s: more than one -1",
                     ct_shp(x), want);
            infer = d;
        } else {
            CT_CHECK(shape.d[d] >= 0, "ct_reshape", "cannot reshape %s into %s: negative size",
                     ct_shp(x), want);
            known *= (size_t)shape.d[d];
        }
    }
    if (infer >= 0) {
        CT_CHECK(known > 0 && x->size % known == 0, "ct_reshape",
                 "cannot reshape %s (%zu elements) into %s", ct_shp(x), x->size, want);
        shape.d[infer] = (int)(x->size / known);
    }
    CT_CHECK(ct_shape_size(shape) == x->size, "ct_reshape",
             "cannot reshape %s (%zu elements) into %s", ct_shp(x), x->size, want);
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(0), &ct_op_reshape, &x, 1, &n);
    y->ndim = shape.ndim;
    for (int d = 0; d < shape.ndim; d++) y->shape[d] = shape.d[d];
    y->size = x->size;
    y->data = x->data;
    y->flags |= CT_TENSOR_VIEW;
    return y;
}

/* ---- permute: y[i₀, .., i_k] = x[i_perm⁻¹...], i.e. y.shape[d] = x.shape[perm[d]];
 *      dx += dy moved back.  iarg[0..ndim-1] = perm.
 * walk() visits y in row-major order; `stride[d]` is how far x moves when y's index d steps. */
static void walk(int nd, const int *shape, const size_t *stride, const ct_real *from, ct_real *to,
                 int backward) {
    size_t idx[CT_MAX_DIMS] = {0}, off = 0, total = 1;
    for (int d = 0; d < nd; d++) total *= (size_t)shape[d];
    for (size_t i = 0; i < total; i++) {
        if (backward) to[off] += from[i];  /* dx[x offset] += dy[i] */
        else to[i] = from[off];            /* y[i] = x[x offset] */
        for (int d = nd - 1; d >= 0; d--) { /* odometer: step the last index, carry left */
            off += stride[d];
            if (++idx[d] < (size_t)shape[d]) break;
            off -= stride[d] * (size_t)shape[d];
            idx[d] = 0;
        }
    }
}

static void permute_strides(const ct_tensor *x, const int *perm, size_t *stride) {
    size_t xs[CT_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) xs[d] = s, s *= (size_t)x->shape[d];
    for (int d = 0; d < x->ndim; d++) stride[d] = xs[perm[d]];
}

static void permute_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    size_t stride[CT_MAX_DIMS];
    permute_strides(n->in[0], n->iarg, stride);
    walk(n->out->ndim, n->out->shape, stride, n->out->grad, dx, 1);
}
const ct_op ct_op_permute = {"permute", "y = x with axes reordered; dx = dy reordered back",
                             permute_backward};

ct_tensor *ct_permute(ct_tape *tape, ct_tensor *x, const int *perm) {
    int p[CT_MAX_DIMS], seen[CT_MAX_DIMS] = {0};
    ct_shape s = {.ndim = x->ndim};
    for (int d = 0; d < x->ndim; d++) {
        p[d] = ct_axis("ct_permute", x, perm[d]);
        CT_CHECK(!seen[p[d]], "ct_permute", "axis %d appears twice in the permutation of %s",
                 p[d], ct_shp(x));
        seen[p[d]] = 1;
        s.d[d] = x->shape[p[d]];
    }
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, s, &ct_op_permute, &x, 1, &n);
    size_t stride[CT_MAX_DIMS];
    permute_strides(x, p, stride);
    walk(x->ndim, y->shape, stride, x->data, y->data, 0);
    if (n) memcpy(n->iarg, p, sizeof p);
    return y;
}

/* transpose: permute with two axes swapped. */
ct_tensor *ct_transpose(ct_tape *tape, ct_tensor *x, int axis0, int axis1) {
    int a = ct_axis("ct_transpose", x, axis0), b = ct_axis("ct_transpose", x, axis1);
    int perm[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return ct_permute(tape, x, perm);
}

/* ---- slice: y[.., k, ..] = x[.., start + k, ..] for k < end − start;  dx[.., start + k, ..] += dy
 * iarg[0] = axis, iarg[1] = start. x is (outer, len, inner) around the axis; y (outer, m, inner). */
static void slice_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    size_t outer, len, inner;
    ct_axis_split(n->in[0], n->iarg[0], &outer, &len, &inner);
    size_t m = (size_t)n->out->shape[n->iarg[0]], start = (size_t)n->iarg[1];
    const ct_real *dy = n->out->grad;
    for (size_t o = 0; o < outer; o++) {
        ct_real *to = dx + (o * len + start) * inner;
        const ct_real *from = dy + o * m * inner;
        for (size_t i = 0; i < m * inner; i++) to[i] += from[i];
    }
}
const ct_op ct_op_slice = {"slice", "y = x[.., start:end, ..]; dx[.., start:end, ..] += dy", slice_backward};

ct_tensor *ct_slice(ct_tape *tape, ct_tensor *x, int axis, int start, int end) {
    axis = ct_axis("ct_slice", x, axis);
    int dim = x->shape[axis];
    int s0 = start < 0 ? start + dim : start, e0 = end < 0 ? end + dim : end; /* Python rules */
    s0 = s0 < 0 ? 0 : s0 > dim ? dim : s0;
    e0 = e0 < 0 ? 0 : e0 > dim ? dim : e0;
    if (e0 < s0) e0 = s0;
    ct_shape s = ct_tensor_shape(x);
    s.d[axis] = e0 - s0;
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, s, &ct_op_slice, &x, 1, &n);
    size_t outer, len, inner, m = (size_t)(e0 - s0);
    ct_axis_split(x, axis, &outer, &len, &inner);
    for (size_t o = 0; o < outer; o++)
        memcpy(y->data + o * m * inner, x->data + (o * len + (size_t)s0) * inner,
               m * inner * sizeof(ct_real));
    if (n) n->iarg[0] = axis, n->iarg[1] = s0;
    return y;
}

/* ---- concat: y = [x₀ | x₁ | ...] along axis;  dxᵢ += its block of dy -------------------------
 * iarg[0] = axis, iarg[1] = count; extra = the input list (in the arena), since a node holds at
 * most CT_NODE_MAX_INPUTS inputs (in[] keeps the first ones, for the printers). Each output
 * row o is the inputs' rows o one after the other. */
static void concat_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *const *xs = n->extra;
    int count = n->iarg[1], axis = n->iarg[0];
    size_t outer, len, inner;
    ct_axis_split(n->out, axis, &outer, &len, &inner);
    size_t at = 0; /* where input i's block starts inside an output row */
    for (int i = 0; i < count; i++) {
        size_t block = (size_t)xs[i]->shape[axis] * inner;
        ct_real *dx = ct_grad_of(tape, xs[i]);
        if (dx)
            for (size_t o = 0; o < outer; o++) {
                const ct_real *from = n->out->grad + o * len * inner + at;
                for (size_t k = 0; k < block; k++) dx[o * block + k] += from[k];
            }
        at += block;
    }
}
const ct_op ct_op_concat = {"concat", "y = [x₀ | x₁ | ..] along axis; dxᵢ = dy's block i", concat_backward};

ct_tensor *ct_concat(ct_tape *tape, ct_tensor *const *xs, int n_in, int axis) {
    CT_CHECK(n_in > 0 && xs, "ct_concat", "needs at least one tensor, got %d", n_in);
    axis = ct_axis("ct_concat", xs[0], axis);
    ct_shape s = ct_tensor_shape(xs[0]);
    for (int i = 1; i < n_in; i++) {
        int same = xs[i]->ndim == xs[0]->ndim;
        for (int d = 0; same && d < xs[0]->ndim; d++) same = d == axis || xs[i]->shape[d] == xs[0]->shape[d];
        CT_CHECK(same, "ct_concat", "tensor %d %s does not match tensor 0 %s outside axis %d", i,
                 ct_shp(xs[i]), ct_shp(xs[0]), axis);
        s.d[axis] += xs[i]->shape[axis];
    }
    /* ct_op_output sees at most CT_NODE_MAX_INPUTS inputs: give it the first ones, with the last
     * slot taken by a later input that requires grad if the first ones do not. */
    ct_tensor *rec[CT_NODE_MAX_INPUTS];
    int m = n_in < CT_NODE_MAX_INPUTS ? n_in : CT_NODE_MAX_INPUTS;
    for (int i = 0; i < m; i++) rec[i] = xs[i];
    for (int i = m; i < n_in; i++)
        if (ct_requires_grad(xs[i])) rec[m - 1] = xs[i];
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, s, &ct_op_concat, rec, m, &n);
    size_t outer, len, inner;
    ct_axis_split(y, axis, &outer, &len, &inner);
    size_t at = 0;
    for (int i = 0; i < n_in; i++) {
        size_t block = (size_t)xs[i]->shape[axis] * inner;
        for (size_t o = 0; o < outer; o++)
            memcpy(y->data + o * len * inner + at, xs[i]->data + o * block, block * sizeof(ct_real));
        at += block;
    }
    if (n) {
        ct_tensor **list = ct_arena_alloc(ct_tape_arena(tape), (size_t)n_in * sizeof *list);
        memcpy(list, xs, (size_t)n_in * sizeof *list);
        for (int i = 0; i < m; i++) n->in[i] = xs[i];
        n->extra = list;
        n->iarg[0] = axis, n->iarg[1] = n_in;
    }
    return y;
}

/* ---- index_select: y[.., i, ..] = x[.., index[i], ..] along axis;  dx[.., index[i], ..] += dy[.., i, ..]
 * iarg[0] = axis; extra = a copy of index (the caller's array need not outlive the call). */
static void index_select_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const int *index = n->extra;
    size_t outer, len, inner, m = (size_t)n->out->shape[n->iarg[0]];
    ct_axis_split(n->in[0], n->iarg[0], &outer, &len, &inner);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < m; i++) {
            ct_real *to = dx + (o * len + (size_t)index[i]) * inner;
            const ct_real *from = n->out->grad + (o * m + i) * inner;
            for (size_t j = 0; j < inner; j++) to[j] += from[j];
        }
}
const ct_op ct_op_index_select = {"index_select", "y[.., i, ..] = x[.., idx[i], ..]; dx[.., idx[i], ..] += dy[.., i, ..]",
                                  index_select_backward};

static int *copy_indices(ct_tape *tape, const int *index, int n) {
    int *c = ct_arena_alloc(ct_tape_arena(tape), (size_t)(n > 0 ? n : 1) * sizeof *c);
    if (n > 0) memcpy(c, index, (size_t)n * sizeof *c);
    return c;
}

ct_tensor *ct_index_select(ct_tape *tape, ct_tensor *x, int axis, const int *index, int n_idx) {
    axis = ct_axis("ct_index_select", x, axis);
    CT_CHECK(n_idx >= 0 && (index || n_idx == 0), "ct_index_select", "bad index list (%d entries) for %s",
             n_idx, ct_shp(x));
    for (int i = 0; i < n_idx; i++)
        CT_CHECK(index[i] >= 0 && index[i] < x->shape[axis], "ct_index_select",
                 "index %d at position %d is out of range for axis %d of %s", index[i], i, axis, ct_shp(x));
    ct_shape s = ct_tensor_shape(x);
    s.d[axis] = n_idx;
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, s, &ct_op_index_select, &x, 1, &n);
    size_t outer, len, inner;
    ct_axis_split(x, axis, &outer, &len, &inner);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < (size_t)n_idx; i++)
            memcpy(y->data + (o * (size_t)n_idx + i) * inner, x->data + (o * len + (size_t)index[i]) * inner,
                   inner * sizeof(ct_real));
    if (n) n->iarg[0] = axis, n->extra = copy_indices(tape, index, n_idx);
    return y;
}

/* ---- gather_rows: y[i] = x[i, index[i]] for x (N, C);  dx[i, index[i]] += dy[i] ---------------
 * extra = a copy of index. */
static void gather_rows_backward(ct_tape *tape, ct_node *n) {
    ct_real *dx = ct_grad_of(tape, n->in[0]);
    if (!dx) return;
    const int *index = n->extra;
    size_t N = (size_t)n->in[0]->shape[0], C = (size_t)n->in[0]->shape[1];
    for (size_t i = 0; i < N; i++) dx[i * C + (size_t)index[i]] += n->out->grad[i];
}
const ct_op ct_op_gather_rows = {"gather_rows", "y[i] = x[i, idx[i]]; dx[i, idx[i]] += dy[i]",
                                 gather_rows_backward};

ct_tensor *ct_gather_rows(ct_tape *tape, ct_tensor *x, const int *index, int n_idx) {
    CT_CHECK(x->ndim == 2, "ct_gather_rows", "needs x of shape (N, C), got %s", ct_shp(x));
    CT_CHECK(n_idx == x->shape[0] && (index || n_idx == 0), "ct_gather_rows",
             "%d indices for x %s (need one per row)", n_idx, ct_shp(x));
    int C = x->shape[1];
    for (int i = 0; i < n_idx; i++)
        CT_CHECK(index[i] >= 0 && index[i] < C, "ct_gather_rows",
                 "index %d at row %d is outside [0, %d) for x %s", index[i], i, C, ct_shp(x));
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(n_idx), &ct_op_gather_rows, &x, 1, &n);
    for (int i = 0; i < n_idx; i++) y->data[i] = x->data[(size_t)i * (size_t)C + (size_t)index[i]];
    if (n) n->extra = copy_indices(tape, index, n_idx);
    return y;
}

/* ---- one_hot: y[i, c] = [labels[i] = c], a constant (no node) -------------------------------- */
ct_tensor *ct_one_hot(ct_tape *tape, const int *labels, int n, int classes) {
    CT_CHECK(n >= 0 && classes > 0 && (labels || n == 0), "ct_one_hot",
             "needs n >= 0 labels and classes > 0, got n = %d, classes = %d", n, classes);
    for (int i = 0; i < n; i++)
        CT_CHECK(labels[i] >= 0 && labels[i] < classes, "ct_one_hot",
                 "label %d at position %d is outside [0, %d)", labels[i], i, classes);
    ct_tensor *y = ct_tape_zeros(tape, CT_SHAPE(n, classes));
    for (int i = 0; i < n; i++) y->data[(size_t)i * (size_t)classes + (size_t)labels[i]] = 1;
    return y;
}
