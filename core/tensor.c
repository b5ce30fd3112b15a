/* core/tensor.c — heap tensors and shape helpers. Tape tensors are made in autograd/tape.c. */
#include "core.h"

#include <stdlib.h>
#include <omp.h>
#include <string.h>

size_t ct_shape_size(ct_shape s) {
    size_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= (size_t)s.d[i];
    return n;
}

char *ct_shape_str(ct_shape s, char *buf, size_t len) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, len - used, "(");
    for (int i = 0; i < s.ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %d" : "%d", s.d[i]);
    if (s.ndim == 1 && used < len) used += (size_t)snprintf(buf + used, len - used, ",");
    if (used < len) snprintf(buf + used, len - used, ")");
    return buf;
}

ct_shape ct_tensor_shape(const ct_tensor *t) {
    ct_shape s = {.ndim = t->ndim};
    for (int i = 0; i < t->ndim; i++) s.d[i] = t->shape[i];
    return s;
}

char *ct_tensor_shape_str(const ct_tensor *t, char *buf, size_t len) {
    return ct_shape_str(ct_tensor_shape(t), buf, len);
}

static void check_shape(const char *op, ct_shape shape) {
    CT_CHECK(shape.ndim >= 0 && shape.ndim <= CT_MAX_DIMS, op, "%d dimensions (at most %d)",
             shape.ndim, CT_MAX_DIMS);
    for (int i = 0; i < shape.ndim; i++)
        CT_CHECK(shape.d[i] >= 0, op, "dimension %d has negative size %d", i, shape.d[i]);
}

static void *alloc_reals(size_t n) {
    /* 64-byte alignment for vector loads; aligned_alloc needs a multiple of the alignment. */
    size_t bytes = (n * sizeof(ct_real) + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) ct_fatal("ct_tensor_new", "out of memory allocating %zu bytes", bytes);
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

ct_tensor *ct_tensor_new(ct_shape shape) {
    check_shape("ct_tensor_new", shape);
    ct_tensor *t = calloc(1, sizeof *t);
    if (!t) ct_fatal("ct_tensor_new", "out of memory");
    t->ndim = shape.ndim;
    for (int i = 0; i < shape.ndim; i++) t->shape[i] = shape.d[i];
    t->size = ct_shape_size(shape);
    t->data = alloc_reals(t->size);
    return t;
}

ct_tensor *ct_tensor_new_grad(ct_shape shape) {
    ct_tensor *t = ct_tensor_new(shape);
    t->grad = alloc_reals(t->size);
    t->flags |= CT_TENSOR_REQUIRES_GRAD;
    return t;
}

void ct_tensor_free(ct_tensor *t) {
    if (!t) return;
    CT_CHECK(!(t->flags & CT_TENSOR_FREED), "ct_tensor_free", "the tensor was already freed");
    CT_CHECK(!(t->flags & CT_TENSOR_ARENA), "ct_tensor_free",
             "tensor belongs to a tape; it is freed by ct_tape_reset");
    if (!(t->flags & CT_TENSOR_VIEW)) free(t->data);
    free(t->grad);
    *(volatile unsigned *)&t->flags = CT_TENSOR_FREED; /* volatile: a store before free is otherwise dropped */
    free(t);
}

void ct_tensor_fill(ct_tensor *t, ct_real value) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = value;
}

void ct_tensor_copy_from(ct_tensor *t, const ct_real *src) {
    memcpy(t->data, src, t->size * sizeof(ct_real));
}

/* Gradients from 2^18 elements (1 MiB in float32) are zeroed by every thread, a slice each: one
 * thread's memset does not reach the memory bandwidth (bench/NOTES.md). */
#define PARALLEL_ZERO ((size_t)1 << 18)

CT_KERNEL
void ct_tensor_zero_grad(ct_tensor *t) {
    if (!t->grad) return;
    const size_t bytes = t->size * sizeof(ct_real);
    if (t->size < PARALLEL_ZERO) {
        memset(t->grad, 0, bytes);
        return;
    }
#pragma omp parallel
    {
        const size_t k = (size_t)omp_get_thread_num(), n = (size_t)omp_get_num_threads();
        memset((char *)t->grad + bytes * k / n, 0, bytes * (k + 1) / n - bytes * k / n);
    }
}

void ct_tensor_print(const ct_tensor *t, FILE *out) {
    char buf[96];
    fprintf(out, "tensor%s [", ct_tensor_shape_str(t, buf, sizeof buf));
    size_t n = t->size < 8 ? t->size : 8;
    for (size_t i = 0; i < n; i++) fprintf(out, i ? ", %.6g" : "%.6g", (double)t->data[i]);
    fprintf(out, "%s]\n", t->size > n ? ", ..." : "");
}
