/* autograd/embedding.c — embedding lookup: rows of a weight table picked by integer indices. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* ---- embedding: W (V, D), indices of shape index_shape (K values) -> y (index_shape..., D) ----
 *     y[k, :] = W[idx_k, :]             dW[idx_k, :] += dy[k, :]
 * An index that appears several times collects the sum of its rows' gradients (the backward
 * runs through the positions in order, so repeats never race).
 * saved: extra = a copy of the K indices (the caller's array may change before ct_backward). */
CT_KERNEL
static void embedding_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *w = n->in[0];
    ct_real *dw = ct_grad_of(tape, w);
    const int *idx = n->extra;
    const size_t D = (size_t)w->shape[1], K = n->out->size / (D ? D : 1);
    const ct_real *dy = n->out->grad;
    for (size_t k = 0; k < K; k++) {
        ct_real *restrict row = dw + (size_t)idx[k] * D;
        const ct_real *restrict g = dy + k * D;
#pragma omp simd
        for (size_t j = 0; j < D; j++) row[j] += g[j];
    }
}
const ct_op ct_op_embedding = {"embedding", "y[k] = W[idx_k]; dW[idx_k] += dy[k]", embedding_backward};

/* "[1, 2]": the position of flat index k inside index_shape, for error messages. */
static const char *position_str(ct_shape s, size_t k, char *buf, size_t len) {
    int coord[CT_MAX_DIMS];
    for (int i = s.ndim - 1; i >= 0; i--) {
        coord[i] = s.d[i] ? (int)(k % (size_t)s.d[i]) : 0;
        k = s.d[i] ? k / (size_t)s.d[i] : 0;
    }
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < s.ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", i ? ", " : "", coord[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}

CT_KERNEL
ct_tensor *ct_embedding(ct_tape *tape, ct_tensor *weight, const int *indices, ct_shape index_shape) {
    static const char *op = "ct_embedding";
    CT_CHECK(weight && weight->ndim == 2, op, "weight must be (V, D), got %s", weight ? ct_shp(weight) : "NULL");
    CT_CHECK(index_shape.ndim >= 0 && index_shape.ndim < CT_MAX_DIMS, op,
             "index shape has %d dims; at most %d (the output adds one)", index_shape.ndim, CT_MAX_DIMS - 1);
    char sbuf[96], pbuf[96];
    const size_t K = ct_shape_size(index_shape);
    CT_CHECK(indices || K == 0, op, "indices are NULL for index shape %s",
             ct_shape_str(index_shape, sbuf, sizeof sbuf));
    const int V = weight->shape[0], D = weight->shape[1];
    for (size_t k = 0; k < K; k++)
        CT_CHECK(indices[k] >= 0 && indices[k] < V, op,
                 "index %d at position %s of indices %s is outside [0, %d) for weight %s", indices[k],
                 position_str(index_shape, k, pbuf, sizeof pbuf),
                 ct_shape_str(index_shape, sbuf, sizeof sbuf), V, ct_shp(weight));

    ct_shape out_shape = index_shape;
    out_shape.d[out_shape.ndim++] = D;
    ct_node *n;
    ct_tensor *y = ct_op_output(tape, out_shape, &ct_op_embedding, &weight, 1, &n);
    const size_t row_bytes = (size_t)D * sizeof(ct_real);
#pragma omp parallel for if (K * (size_t)D > PAR_MIN)
    for (size_t k = 0; k < K; k++)
        memcpy(y->data + k * (size_t)D, weight->data + (size_t)indices[k] * D, row_bytes);
    if (n) {
        int *saved = ct_arena_alloc(ct_tape_arena(tape), (K ? K : 1) * sizeof *saved);
        if (K) memcpy(saved, indices, K * sizeof *saved);
        n->extra = saved;
    }
    return y;
}
