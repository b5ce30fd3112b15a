/* autograd/attention.c — scaled dot-product attention, fused into one op.
 *
 * Composed from primitives, softmax(q·kᵀ/√d + mask)·v is a bmm, a scale, a masked add, a
 * softmax and a second bmm: five nodes and three (B, H, L, S) tensors. Fused, each (b, h) pair
 * is two GEMMs with the row softmax between them, done while the L×S block is in cache, and the
 * one (B, H, L, S) tensor kept for the backward is the probabilities P.
 *
 * ---- attention: q (B,H,L,d), k (B,H,S,d), v (B,H,S,dv) -> o (B,H,L,dv) ------------------------
 *
 * Forward, for one (b, h) pair with its matrices Q (L,d), K (S,d), V (S,dv):
 *     Z = Q·Kᵀ/√d + M          (L,S)   M_ij = −∞ where key j is masked for query i, else 0
 *     P = softmax_rows(Z)      (L,S)   P_ij = e^(Z_ij − m_i) / Σ_j' e^(Z_ij' − m_i)
 *     O = P·V                  (L,dv)
 * Key j is masked for query i when causal and j > i (PyTorch's torch.triu(·, diagonal=1)), or
 * when key_padding[b·S + j] ≠ 0. A row with every key masked is 0/0: its output is NaN, as the
 * PyTorch this project tests against (1.13) gives it; its probabilities are kept as 0, which is
 * what PyTorch's scaled_dot_product_attention uses from 2.5 on (_safe_softmax, output 0), so the
 * row contributes nothing to the backward and no NaN reaches dQ, dK, dV from it.
 *
 * Backward, from dO (L,dv):
 *     dV += Pᵀ·dO                                 (S,dv)
 *     dP  = dO·Vᵀ                                 (L,S)
 *     dZ  = P ∘ (dP − rowsum(dP ∘ P))             (L,S)   the softmax backward, row by row
 *     dQ += dZ·K/√d                               (L,d)
 *     dK += dZᵀ·Q/√d                              (S,d)
 * Masked entries have P = 0, so dZ = 0 there and no gradient reaches a masked key: the mask
 * needs no bookkeeping in the backward. A row with every key masked has P = 0 throughout: dZ = 0
 * and nothing of dO's row reaches dV.
 *
 * Causal rows only see keys j ≤ i, so rows are processed in blocks of CAUSAL_BLOCK and the GEMMs
 * of block [i0, i1) stop at key min(i1, S): about half the work of the full L×S products. P is
 * still stored as full rows (zeros past each row's last visible key).
 *
 * Threads: when there are at least as many (b, h) pairs as threads, the pairs run in parallel
 * with single-threaded GEMMs (OpenBLAS runs one thread inside an OpenMP region); otherwise the
 * pairs run in order and each GEMM uses every thread.
 *
 * Multi-head attention calls the same op through ct_attention_packed (below), which reads the
 * heads in place from (B·T, H·d) projections instead of (B, H, T, d) tensors.
 *
 * Saved for the backward: extra = {the sizes and layout (attn_dims), P (B·H·L·S values)}, in the
 * arena. The key-padding bytes are not kept: P already encodes the mask. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <string.h>
#include <tgmath.h>

#define CAUSAL_BLOCK 32           /* query rows per GEMM when causal */
#define PAR_MIN_FLOPS (1 << 20)   /* below this, threads cost more than they save */

/* The sizes, and where each (b, h) pair's matrices sit. Two layouts share the op:
 *  - heads apart (ct_attention): q (B, H, L, d), so pair i = b·H + h is the contiguous L×d block
 *    at i·L·d (rows d apart); likewise k, v and o.
 *  - heads packed (ct_attention_packed, for multi-head attention): q is a token-major matrix with
 *    one row per (b, position) and head h in columns col_q + h·d .. + d, rows ld_q apart; pair
 *    (b, h) starts at (b·L)·ld_q + col_q + h·d. k and v the same with S rows per batch; o is
 *    (B·L, H·dv). q, k and v may be one tensor (the fused q|k|v projection) at three columns.
 * P is (B, H, L, S) in both. */
typedef struct {
    int B, H, L, S, d, dv, causal, packed;
    int ld_q, ld_k, ld_v, ld_o;    /* row strides (GEMM leading dimensions) */
    int col_q, col_k, col_v;       /* first column of head 0 (packed) */
    ct_real scale;                 /* 1/√d */
} attn_dims;

/* What the node keeps for the backward (in the arena). */
typedef struct {
    attn_dims dims;
    ct_real *P;
} attn_saved;

/* Offset of pair i in a tensor with `rows` rows per pair, head width `width`, the given row
 * stride and first column. */
static size_t pair_at(const attn_dims *a, size_t i, int rows, int width, int ld, int col) {
    if (!a->packed) return i * (size_t)rows * (size_t)width;
    const size_t b = i / (size_t)a->H, h = i % (size_t)a->H;
    return b * (size_t)rows * (size_t)ld + (size_t)col + h * (size_t)width;
}
static size_t at_q(const attn_dims *a, size_t i) { return pair_at(a, i, a->L, a->d, a->ld_q, a->col_q); }
static size_t at_k(const attn_dims *a, size_t i) { return pair_at(a, i, a->S, a->d, a->ld_k, a->col_k); }
static size_t at_v(const attn_dims *a, size_t i) { return pair_at(a, i, a->S, a->dv, a->ld_v, a->col_v); }
static size_t at_o(const attn_dims *a, size_t i) { return pair_at(a, i, a->L, a->dv, a->ld_o, 0); }


/* Rows per block: all of them without a causal mask (one GEMM), CAUSAL_BLOCK with it. */
static int row_block(const attn_dims *a) { return a->causal && a->L > CAUSAL_BLOCK ? CAUSAL_BLOCK : a->L; }
/* How many keys rows [i0, i1) may see: min(i1, S) when causal (row i sees j ≤ i), else S. */
static int keys_seen(const attn_dims *a, int i1) { return a->causal && i1 < a->S ? i1 : a->S; }

/* Parallel over (b, h) pairs, or pairs in order with threaded GEMMs. */
static int parallel_pairs(const attn_dims *a) {
    size_t pairs = (size_t)a->B * (size_t)a->H;
    double flops = 2.0 * (double)pairs * a->L * a->S * (a->d + a->dv);
    int threads = ct_max_threads();
    return threads > 1 && pairs >= (size_t)threads && flops > PAR_MIN_FLOPS;
}

/* exp_nonpositive: see ct_exp_nonpositive in autograd/internal.h. */
#define exp_nonpositive ct_exp_nonpositive

/* Softmax of one row of scores in place: keys j < n are visible unless pad[j] ≠ 0; every other
 * entry up to S becomes 0. A row with no visible key gets probabilities 0 and returns 1 (the
 * caller writes NaN into its output); the others return 0. */
static int softmax_row(ct_real *restrict z, int n, int S, const uint8_t *restrict pad) {
    ct_real m = -INFINITY;
    if (pad) {
#pragma omp simd reduction(max : m)
        for (int j = 0; j < n; j++) {
            const ct_real visible = pad[j] ? -INFINITY : z[j];
            m = visible > m ? visible : m;
        }
    } else {
#pragma omp simd reduction(max : m)
        for (int j = 0; j < n; j++) m = z[j] > m ? z[j] : m;
    }
    if (m == -INFINITY) { /* every key masked */
        for (int j = 0; j < S; j++) z[j] = 0;
        return 1;
    }
    ct_real sum = 0;
    if (pad) {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < n; j++) {
            ct_real e = pad[j] ? 0 : exp_nonpositive(z[j] - m);
            z[j] = e;
            sum += e;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < n; j++) {
            ct_real e = exp_nonpositive(z[j] - m);
            z[j] = e;
            sum += e;
        }
    }
    const ct_real inv = 1 / sum;
#pragma omp simd
    for (int j = 0; j < n; j++) z[j] *= inv;
    for (int j = n; j < S; j++) z[j] = 0;
    return 0;
}

/* One (b, h) pair: Q (L,d), K (S,d), V (S,dv), pad (S) or NULL -> P (L,S), O (L,dv); the rows of
 * Q, K, V and O are a->ld_q, ld_k, ld_v and ld_o apart. */
static void pair_forward(const attn_dims *a, const ct_real *Q, const ct_real *K, const ct_real *V,
                         const uint8_t *pad, ct_real *P, ct_real *O) {
    const int L = a->L, S = a->S, d = a->d, dv = a->dv, block = row_block(a);
    const int lq = a->ld_q, lk = a->ld_k, lv = a->ld_v, lo = a->ld_o;
    for (int i0 = 0; i0 < L; i0 += block) {
        const int i1 = i0 + block < L ? i0 + block : L, rows = i1 - i0, seen = keys_seen(a, i1);
        ct_real *Pb = P + (size_t)i0 * S;
        /* Z[i0:i1, :seen] = Q[i0:i1]·K[:seen]ᵀ/√d */
        ct_gemm(0, 1, rows, seen, d, a->scale, Q + (size_t)i0 * lq, lq, K, lk, 0, Pb, S);
        int dead = 0;
        for (int i = i0; i < i1; i++)
            dead |= softmax_row(P + (size_t)i * S, a->causal && i + 1 < S ? i + 1 : S, S, pad);
        /* O[i0:i1] = P[i0:i1, :seen]·V[:seen] */
        ct_gemm(0, 0, rows, dv, seen, 1, Pb, S, V, lv, 0, O + (size_t)i0 * lo, lo);
        for (int i = i0; dead && i < i1; i++) { /* rows with no key left: probabilities 0, output NaN */
            const ct_real *p = P + (size_t)i * S;
            int j = 0;
            while (j < S && p[j] == 0) j++;
            if (j == S)
                for (int c = 0; c < dv; c++) O[(size_t)i * lo + c] = NAN;
        }
    }
}

/* One (b, h) pair backward: accumulates into dQ, dK, dV (each may be NULL; laid out as Q, K, V)
 * from dO, with scratch dZ of row_block·S values. */
static void pair_backward(const attn_dims *a, const ct_real *Q, const ct_real *K, const ct_real *V,
                          const ct_real *P, const ct_real *dO, ct_real *dQ, ct_real *dK, ct_real *dV,
                          ct_real *dZ) {
    const int L = a->L, S = a->S, d = a->d, dv = a->dv, block = row_block(a);
    const int lq = a->ld_q, lk = a->ld_k, lv = a->ld_v, lo = a->ld_o;
    for (int i0 = 0; i0 < L; i0 += block) {
        const int i1 = i0 + block < L ? i0 + block : L, rows = i1 - i0, seen = keys_seen(a, i1);
        const ct_real *Pb = P + (size_t)i0 * S, *dOb = dO + (size_t)i0 * lo;
        /* dV[:seen] += P[i0:i1, :seen]ᵀ·dO[i0:i1] */
        if (dV) ct_gemm(1, 0, seen, dv, rows, 1, Pb, S, dOb, lo, 1, dV, lv);
        if (!dQ && !dK) continue;
        /* dP = dO[i0:i1]·V[:seen]ᵀ  (rows × seen, leading dimension seen) */
        ct_gemm(0, 1, rows, seen, dv, 1, dOb, lo, V, lv, 0, dZ, seen);
        /* dZ = P ∘ (dP − rowsum(dP ∘ P)) */
        for (int r = 0; r < rows; r++) {
            const ct_real *restrict p = Pb + (size_t)r * S;
            ct_real *restrict g = dZ + (size_t)r * seen;
            ct_real dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < seen; j++) dot += g[j] * p[j];
#pragma omp simd
            for (int j = 0; j < seen; j++) g[j] = p[j] * (g[j] - dot);
        }
        /* dQ[i0:i1] += dZ·K[:seen]/√d;  dK[:seen] += dZᵀ·Q[i0:i1]/√d */
        if (dQ) ct_gemm(0, 0, rows, d, seen, a->scale, dZ, seen, K, lk, 1, dQ + (size_t)i0 * lq, lq);
        if (dK) ct_gemm(1, 0, seen, d, rows, a->scale, dZ, seen, Q + (size_t)i0 * lq, lq, 1, dK, lk);
    }
}

CT_KERNEL
static void attention_backward(ct_tape *tape, ct_node *n) {
    const attn_saved *saved = n->extra;
    const attn_dims a = saved->dims;
    ct_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    /* q, k and v may be one tensor: then these are one buffer, written at disjoint columns */
    ct_real *dq = ct_grad_of(tape, q), *dk = ct_grad_of(tape, k), *dv = ct_grad_of(tape, v);
    const ct_real *dout = n->out->grad;
    const int par = parallel_pairs(&a), threads = par ? ct_max_threads() : 1;
    const size_t scratch = (size_t)row_block(&a) * (size_t)a.S;
    ct_real *dZ = ct_arena_alloc(ct_tape_arena(tape), (size_t)threads * scratch * sizeof *dZ);
    const size_t pairs = (size_t)a.B * a.H, sp = (size_t)a.L * a.S;
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < pairs; i++) {
        const size_t oq = at_q(&a, i), ok = at_k(&a, i), ov = at_v(&a, i);
        pair_backward(&a, q->data + oq, k->data + ok, v->data + ov, saved->P + i * sp, dout + at_o(&a, i),
                      dq ? dq + oq : NULL, dk ? dk + ok : NULL, dv ? dv + ov : NULL,
                      dZ + (size_t)ct_thread_id() * scratch);
    }
}
const ct_op ct_op_attention = {
    "attention",
    "O = softmax(Q·Kᵀ/√d + M)·V; dV = Pᵀ·dO, dZ = P∘(dO·Vᵀ − rowsum), dQ = dZ·K/√d, dK = dZᵀ·Q/√d",
    attention_backward};

/* Both layouts after their checks: records the node, runs the pairs. */
static ct_tensor *attention_run(ct_tape *tape, ct_tensor *q, ct_tensor *k, ct_tensor *v, attn_dims a,
                                const uint8_t *key_padding) {
    ct_node *n;
    ct_tensor *in[3] = {q, k, v};
    ct_shape out = a.packed ? CT_SHAPE(a.B * a.L, a.H * a.dv) : CT_SHAPE(a.B, a.H, a.L, a.dv);
    ct_tensor *o = ct_op_output(tape, out, &ct_op_attention, in, 3, &n);
    const int par = parallel_pairs(&a), threads = par ? ct_max_threads() : 1;
    const size_t pairs = (size_t)a.B * a.H, sp = (size_t)a.L * a.S;
    /* P for every pair when it is saved for the backward; else one L×S block per thread */
    ct_real *P = ct_arena_alloc(ct_tape_arena(tape), (n ? pairs : (size_t)threads) * sp * sizeof *P);
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < pairs; i++) {
        const uint8_t *pad = key_padding ? key_padding + (i / (size_t)a.H) * (size_t)a.S : NULL;
        ct_real *Pi = P + (n ? i : (size_t)ct_thread_id()) * sp;
        pair_forward(&a, q->data + at_q(&a, i), k->data + at_k(&a, i), v->data + at_v(&a, i), pad, Pi,
                     o->data + at_o(&a, i));
    }
    if (n) {
        attn_saved *saved = ct_arena_alloc(ct_tape_arena(tape), sizeof *saved);
        saved->dims = a;
        saved->P = P;
        n->extra = saved;
    }
    return o;
}

ct_tensor *ct_attention(ct_tape *tape, ct_tensor *q, ct_tensor *k, ct_tensor *v, int causal,
                        const uint8_t *key_padding) {
    static const char *op = "ct_attention";
    CT_CHECK(q && k && v, op, "q, k and v must not be NULL");
    CT_CHECK(q->ndim == 4 && k->ndim == 4 && v->ndim == 4, op,
             "q %s, k %s and v %s must be 4-D: (B, H, L, d), (B, H, S, d), (B, H, S, dv)",
             ct_shp(q), ct_shp(k), ct_shp(v));
    const int d = q->shape[3], dv = v->shape[3];
    const attn_dims a = {.B = q->shape[0], .H = q->shape[1], .L = q->shape[2], .S = k->shape[2],
                         .d = d, .dv = dv, .causal = causal != 0, .packed = 0,
                         .ld_q = d, .ld_k = d, .ld_v = dv, .ld_o = dv,
                         .scale = (ct_real)(1 / sqrt((double)d))};
    CT_CHECK(k->shape[0] == a.B && k->shape[1] == a.H && v->shape[0] == a.B && v->shape[1] == a.H,
             op, "q %s, k %s and v %s differ in batch or heads (B, H)", ct_shp(q), ct_shp(k), ct_shp(v));
    CT_CHECK(k->shape[3] == d, op, "q %s and k %s differ in the head size d", ct_shp(q), ct_shp(k));
    CT_CHECK(v->shape[2] == a.S, op, "k %s and v %s differ in the number of keys S", ct_shp(k), ct_shp(v));
    CT_CHECK(d > 0 && a.S > 0, op, "q %s, k %s: need a head size d > 0 and at least one key",
             ct_shp(q), ct_shp(k));
    return attention_run(tape, q, k, v, a, key_padding);
}

/* ct_attention on heads packed side by side in token-major matrices (ops.h): the layout of
 * multi-head attention's projections, with no (B, T, H, D) <-> (B, H, T, D) permutes. */
ct_tensor *ct_attention_packed(ct_tape *tape, ct_tensor *q, int col_q, ct_tensor *k, int col_k, ct_tensor *v,
                               int col_v, int batch, int heads, int head_dim, int causal,
                               const uint8_t *key_padding) {
    static const char *op = "ct_attention";
    const int width = heads * head_dim;
    CT_CHECK(q && k && v && q->ndim == 2 && k->ndim == 2 && v->ndim == 2 && batch > 0 && heads > 0 &&
             head_dim > 0 && q->shape[0] % batch == 0 && k->shape[0] % batch == 0 && k->shape[0] == v->shape[0] &&
             k->shape[0] > 0 && col_q >= 0 && col_q + width <= q->shape[1] && col_k >= 0 &&
             col_k + width <= k->shape[1] && col_v >= 0 && col_v + width <= v->shape[1],
             op, "packed heads (B = %d, H = %d, D = %d): q %s at column %d, k %s at %d, v %s at %d do not fit",
             batch, heads, head_dim, ct_shp(q), col_q, ct_shp(k), col_k, ct_shp(v), col_v);
    const attn_dims a = {.B = batch, .H = heads, .L = q->shape[0] / batch, .S = k->shape[0] / batch,
                         .d = head_dim, .dv = head_dim, .causal = causal != 0, .packed = 1,
                         .ld_q = q->shape[1], .ld_k = k->shape[1], .ld_v = v->shape[1], .ld_o = width,
                         .col_q = col_q, .col_k = col_k, .col_v = col_v,
                         .scale = (ct_real)(1 / sqrt((double)head_dim))};
    return attention_run(tape, q, k, v, a, key_padding);
}
