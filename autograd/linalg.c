/* autograd/linalg.c — matrix products through OpenBLAS. Transposes are GEMM flags, never copies.
 *
 * For C = op(A)·op(B) with cotangent dC, the two gradients are
 *     d op(A) = dC · op(B)ᵀ        d op(B) = op(A)ᵀ · dC
 * and when A (or B) was given transposed, its gradient is the transpose of that, which is again
 * just a choice of GEMM flags. gemm_grads() spells out the four cases once for matmul and bmm. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <string.h>

/* Accumulates the gradients of C = op(A)·op(B) (M×K times K×N) for one matrix pair. */
static void gemm_grads(int ta, int tb, int M, int N, int K, const ct_real *A, const ct_real *B,
                       const ct_real *dC, ct_real *dA, ct_real *dB) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (dA) {
        if (!ta) /* dA (M,K) += dC (M,N) · op(B)ᵀ (N,K) */
            ct_gemm(0, !tb, M, K, N, 1, dC, N, B, ldb, 1, dA, lda);
        else     /* dA (K,M) += op(B) (K,N) · dCᵀ (N,M) */
            ct_gemm(tb, 1, K, M, N, 1, B, ldb, dC, N, 1, dA, lda);
    }
    if (dB) {
        if (!tb) /* dB (K,N) += op(A)ᵀ (K,M) · dC (M,N) */
            ct_gemm(!ta, 0, K, N, M, 1, A, lda, dC, N, 1, dB, ldb);
        else     /* dB (N,K) += dCᵀ (N,M) · op(A) (M,K) */
            ct_gemm(1, ta, N, K, M, 1, dC, N, A, lda, 1, dB, ldb);
    }
}

/* ---- matmul: C (M,N) = op(A) (M,K) · op(B) (K,N) ------------------------------------------
 * saved: iarg[0..1] = trans_a, trans_b; iarg[2..4] = M, N, K */
static void matmul_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *a = n->in[0], *b = n->in[1];
    gemm_grads(n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4], a->data, b->data,
               n->out->grad, ct_grad_of(tape, a), ct_grad_of(tape, b));
}
const ct_op ct_op_matmul = {"matmul", "C = op(A)·op(B); dA = dC·op(B)ᵀ, dB = op(A)ᵀ·dC", matmul_backward};

ct_tensor *ct_matmul_t(ct_tape *tape, ct_tensor *a, int trans_a, ct_tensor *b, int trans_b) {
    CT_CHECK(a->ndim == 2 && b->ndim == 2, "ct_matmul", "needs 2-D operands, got %s and %s "
             "(use ct_bmm for batches)", ct_shp(a), ct_shp(b));
    int M = trans_a ? a->shape[1] : a->shape[0], K = trans_a ? a->shape[0] : a->shape[1];
    int Kb = trans_b ? b->shape[1] : b->shape[0], N = trans_b ? b->shape[0] : b->shape[1];
    CT_CHECK(K == Kb, "ct_matmul", "inner dimensions differ: %s%s · %s%s", ct_shp(a),
             trans_a ? "ᵀ" : "", ct_shp(b), trans_b ? "ᵀ" : "");
    ct_node *n;
    ct_tensor *in[2] = {a, b};
    ct_tensor *c = ct_op_output(tape, CT_SHAPE(M, N), &ct_op_matmul, in, 2, &n);
    ct_gemm(trans_a, trans_b, M, N, K, 1, a->data, a->shape[1], b->data, b->shape[1], 0, c->data, N);
    if (n) {
        n->iarg[0] = trans_a, n->iarg[1] = trans_b;
        n->iarg[2] = M, n->iarg[3] = N, n->iarg[4] = K;
    }
    return c;
}

ct_tensor *ct_matmul(ct_tape *tape, ct_tensor *a, ct_tensor *b) { return ct_matmul_t(tape, a, 0, b, 0); }

/* ---- bmm: C[i] = op(A[i]) · op(B[i]) over flattened leading batch dims --------------------
 * A batch of 1 on either side (a 2-D operand, or batch dims all 1) broadcasts: that operand's
 * gradient is the sum over the batch, dA += Σ_i dC[i]·op(B[i])ᵀ (each GEMM adds into it).
 * saved: iarg = ta, tb, M, N, K, batch_a, batch_b */
static size_t batch_of(const ct_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim - 2; i++) n *= (size_t)t->shape[i];
    return n;
}

static void bmm_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *a = n->in[0], *b = n->in[1];
    int ta = n->iarg[0], tb = n->iarg[1], M = n->iarg[2], N = n->iarg[3], K = n->iarg[4];
    size_t ba = (size_t)n->iarg[5], bb = (size_t)n->iarg[6], batch = ba > bb ? ba : bb;
    ct_real *dA = ct_grad_of(tape, a), *dB = ct_grad_of(tape, b);
    size_t sa = (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
    for (size_t i = 0; i < batch; i++) {
        size_t ia = ba == 1 ? 0 : i, ib = bb == 1 ? 0 : i;
        gemm_grads(ta, tb, M, N, K, a->data + ia * sa, b->data + ib * sb, n->out->grad + i * sc,
                   dA ? dA + ia * sa : NULL, dB ? dB + ib * sb : NULL);
    }
}
const ct_op ct_op_bmm = {"bmm", "C[i] = op(A[i])·op(B[i]); per batch as matmul", bmm_backward};

ct_tensor *ct_bmm_t(ct_tape *tape, ct_tensor *a, int trans_a, ct_tensor *b, int trans_b) {
    CT_CHECK(a->ndim >= 2 && b->ndim >= 2 && (a->ndim >= 3 || b->ndim >= 3), "ct_bmm",
             "needs batched operands (at least one with 3+ dims), got %s and %s", ct_shp(a), ct_shp(b));
    int ra = a->ndim - 2, rb = b->ndim - 2;
    int M = trans_a ? a->shape[ra + 1] : a->shape[ra], K = trans_a ? a->shape[ra] : a->shape[ra + 1];
    int Kb = trans_b ? b->shape[rb + 1] : b->shape[rb], N = trans_b ? b->shape[rb] : b->shape[rb + 1];
    CT_CHECK(K == Kb, "ct_bmm", "inner dimensions differ: %s%s · %s%s", ct_shp(a),
             trans_a ? "ᵀ" : "", ct_shp(b), trans_b ? "ᵀ" : "");
    size_t ba = batch_of(a), bb = batch_of(b);
    CT_CHECK(ba == bb || ba == 1 || bb == 1, "ct_bmm", "batch sizes differ: %s and %s",
             ct_shp(a), ct_shp(b));
    if (ba == bb && ba > 1) { /* the same batch on both sides: the same batch dims */
        int same = ra == rb;
        for (int i = 0; same && i < ra; i++) same = a->shape[i] == b->shape[i];
        CT_CHECK(same, "ct_bmm", "batch dimensions differ: %s and %s", ct_shp(a), ct_shp(b));
    }
    /* Output batch dims: those of the side with the batch (either when both match or both are 1),
     * padded on the left with 1s to the longer operand, as NumPy's matmul broadcasts:
     * (1, M, K)·(K, N) -> (1, M, N), (M, K)·(3, K, N) -> (3, M, N). */
    const ct_tensor *lead = bb > ba ? b : a;
    const int nd = a->ndim > b->ndim ? a->ndim : b->ndim, pad = nd - lead->ndim;
    ct_shape s = {.ndim = nd};
    for (int i = 0; i < nd - 2; i++) s.d[i] = i < pad ? 1 : lead->shape[i - pad];
    s.d[s.ndim - 2] = M;
    s.d[s.ndim - 1] = N;
    ct_node *n;
    ct_tensor *in[2] = {a, b};
    ct_tensor *c = ct_op_output(tape, s, &ct_op_bmm, in, 2, &n);
    size_t batch = ba > bb ? ba : bb;
    size_t sa = (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
    int lda = a->shape[ra + 1], ldb = b->shape[rb + 1];
    for (size_t i = 0; i < batch; i++)
        ct_gemm(trans_a, trans_b, M, N, K, 1, a->data + (ba == 1 ? 0 : i) * sa, lda,
                b->data + (bb == 1 ? 0 : i) * sb, ldb, 0, c->data + i * sc, N);
    if (n) {
        n->iarg[0] = trans_a, n->iarg[1] = trans_b, n->iarg[2] = M, n->iarg[3] = N, n->iarg[4] = K;
        n->iarg[5] = (int)ba, n->iarg[6] = (int)bb;
    }
    return c;
}

ct_tensor *ct_bmm(ct_tape *tape, ct_tensor *a, ct_tensor *b) { return ct_bmm_t(tape, a, 0, b, 0); }

/* ---- linear: y (N,out) = x (N,in) · Wᵀ (in,out) + b (out) ---------------------------------
 * Backward:  dx += dy · W      dW += dyᵀ · x      db += Σ_rows dy
 * The bias is written into y first so the GEMM adds onto it (beta = 1): no second pass. */
CT_KERNEL
static void linear_backward(ct_tape *tape, ct_node *n) {
    ct_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    int N = x->shape[0], in = x->shape[1], out = w->shape[0];
    const ct_real *dy = n->out->grad;
    ct_real *dx = ct_grad_of(tape, x), *dw = ct_grad_of(tape, w);
    if (dx) ct_gemm(0, 0, N, in, out, 1, dy, out, w->data, in, 1, dx, in);
    if (dw) ct_gemm(1, 0, out, in, N, 1, dy, out, x->data, in, 1, dw, in);
    ct_real *restrict db = b ? ct_grad_of(tape, b) : NULL;
    if (db)
        for (int i = 0; i < N; i++) {
            const ct_real *restrict row = dy + (size_t)i * out;
#pragma omp simd
            for (int j = 0; j < out; j++) db[j] += row[j];
        }
}
const ct_op ct_op_linear = {"linear", "y = x·Wᵀ + b; dx = dy·W, dW = dyᵀ·x, db = Σ dy", linear_backward};

CT_KERNEL
ct_tensor *ct_linear(ct_tape *tape, ct_tensor *x, ct_tensor *w, ct_tensor *b) {
    CT_CHECK(x->ndim == 2 && w->ndim == 2 && x->shape[1] == w->shape[1], "ct_linear",
             "input %s does not match weight %s (need (N, in) and (out, in))", ct_shp(x), ct_shp(w));
    CT_CHECK(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), "ct_linear",
             "bias %s does not match weight %s (need (out,))", ct_shp(b), ct_shp(w));
    int N = x->shape[0], in = x->shape[1], out = w->shape[0];
    ct_node *n;
    ct_tensor *inputs[3] = {x, w, b};
    ct_tensor *y = ct_op_output(tape, CT_SHAPE(N, out), &ct_op_linear, inputs, 3, &n);
    if (b)
        for (int i = 0; i < N; i++) memcpy(y->data + (size_t)i * out, b->data, (size_t)out * sizeof(ct_real));
    ct_gemm(0, 1, N, out, in, 1, x->data, in, w->data, in, b ? 1 : 0, y->data, out);
    return y;
}
