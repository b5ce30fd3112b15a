/* autograd/attention.c — scaled dot-product attention, fused into one op.
 *
 * Composed from primitives, softmax(q·kᵀ/√d + mask)·v is a bmm, a scale, a masked add, a
 * softmax and a second bmm: five nodes and three (B, H, L, S) tensors. Fused, each (b, h) pair
 * is two GEMMs with the row softmax between them, done while the L×S block is in cache, and the
 * one (B, H, L, S) tensor kept for the backward is the probabilities P.
 *
 * ---- attention: q (B,H,L,d), k (B,H,S,d), v (B,H,S,dv) -> o (B,H,L,dv) ------------------------
 *
 * Forward, for one (b, h) pair (Q (L,d), K (S,d), V (S,dv) are contiguous matrices):
 *     Z = Q·Kᵀ/√d + M          (L,S)   M_ij = −∞ where key j is masked for query i, else 0
 *     P = softmax_rows(Z)      (L,S)   P_ij = e^(Z_ij − m_i) / Σ_j' e^(Z_ij' − m_i)
 *     O = P·V                  (L,dv)
 * Key j is masked for query i when causal and j > i (PyTorch's torch.triu(·, diagonal=1)), or
 * when key_padding[b·S + j] ≠ 0. A row with every key masked is 0/0: NaN, as in PyTorch.
 *
 * Backward, from dO (L,dv):
 *     dV += Pᵀ·dO                                 (S,dv)
 *     dP  = dO·Vᵀ                                 (L,S)
 *     dZ  = P ∘ (dP − rowsum(dP ∘ P))             (L,S)   the softmax backward, row by row
 *     dQ += dZ·K/√d                               (L,d)
 *     dK += dZᵀ·Q/√d                              (S,d)
 * Masked entries have P = 0, so dZ = 0 there and no gradient reaches a masked key: the mask
 * needs no bookkeeping in the backward.
 *
 * Causal rows only see keys j ≤ i, so rows are processed in blocks of CAUSAL_BLOCK and the GEMMs
 * of block [i0, i1) stop at key min(i1, S): about half the work of the full L×S products. P is
 * still stored as full rows (zeros past each row's last visible key).
 *
 * Threads: when there are at least as many (b, h) pairs as threads, the pairs run in parallel
 * with single-threaded GEMMs (OpenBLAS runs one thread inside an OpenMP region); otherwise the
 * pairs run in order and each GEMM uses every thread.
 *
 * Saved for the backward: extra = P (B·H·L·S values, in the arena); iarg = B, H, L, S, d, dv,
 * causal; arg[0] = 1/√d. The key-padding bytes are not kept: P already encodes the mask. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <tgmath.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CAUSAL_BLOCK 32           /* query rows per GEMM when causal */
#define PAR_MIN_FLOPS (1 << 20)   /* below this, threads cost more than they save */

typedef struct {
    int B, H, L, S, d, dv, causal;
    ct_real scale; /* 1/√d */
} attn_dims;

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Rows per block: all of them without a causal mask (one GEMM), CAUSAL_BLOCK with it. */
static int row_block(const attn_dims *a) { return a->causal && a->L > CAUSAL_BLOCK ? CAUSAL_BLOCK : a->L; }
/* How many keys rows [i0, i1) may see: min(i1, S) when causal (row i sees j ≤ i), else S. */
static int keys_seen(const attn_dims *a, int i1) { return a->causal && i1 < a->S ? i1 : a->S; }

/* Parallel over (b, h) pairs, or pairs in order with threaded GEMMs. */
static int parallel_pairs(const attn_dims *a) {
    size_t pairs = (size_t)a->B * (size_t)a->H;
    double flops = 2.0 * (double)pairs * a->L * a->S * (a->d + a->dv);
    int threads = max_threads();
    return threads > 1 && pairs >= (size_t)threads && flops > PAR_MIN_FLOPS;
}

/* Softmax of one row of scores in place: keys j < n are visible unless pad[j] ≠ 0; every other
 * entry up to S becomes 0. A row with no visible key becomes NaN (0/0, as PyTorch). */
static void softmax_row(ct_real *restrict z, int n, int S, const uint8_t *restrict pad) {
    ct_real m = -INFINITY;
    if (pad) {
        for (int j = 0; j < n; j++)
            if (!pad[j] && z[j] > m) m = z[j];
    } else {
        for (int j = 0; j < n; j++) m = z[j] > m ? z[j] : m;
    }
    if (m == -INFINITY) { /* every key masked */
        for (int j = 0; j < S; j++) z[j] = NAN;
        return;
    }
    ct_real sum = 0;
    if (pad) {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < n; j++) {
            ct_real e = pad[j] ? 0 : exp(z[j] - m);
            z[j] = e;
            sum += e;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < n; j++) {
            ct_real e = exp(z[j] - m);
            z[j] = e;
            sum += e;
        }
    }
    const ct_real inv = 1 / sum;
#pragma omp simd
    for (int j = 0; j < n; j++) z[j] *= inv;
    for (int j = n; j < S; j++) z[j] = 0;
}

/* One (b, h) pair: Q (L,d), K (S,d), V (S,dv), pad (S) or NULL -> P (L,S), O (L,dv). */
static void pair_forward(const attn_dims *a, const ct_real *Q, const ct_real *K, const ct_real *V,
                         const uint8_t *pad, ct_real *P, ct_real *O) {
    const int L = a->L, S = a->S, d = a->d, dv = a->dv, block = row_block(a);
    for (int i0 = 0; i0 < L; i0 += block) {
        const int i1 = i0 + block < L ? i0 + block : L, rows = i1 - i0, seen = keys_seen(a, i1);
        ct_real *Pb = P + (size_t)i0 * S;
        /* Z[i0:i1, :seen] = Q[i0:i1]·K[:seen]ᵀ/√d */
        ct_gemm(0, 1, rows, seen, d, a->scale, Q + (size_t)i0 * d, d, K, d, 0, Pb, S);
        for (int i = i0; i < i1; i++)
            softmax_row(P + (size_t)i * S, a->causal && i + 1 < S ? i + 1 : S, S, pad);
        /* O[i0:i1] = P[i0:i1, :seen]·V[:seen] */
        ct_gemm(0, 0, rows, dv, seen, 1, Pb, S, V, dv, 0, O + (size_t)i0 * dv, dv);
    }
}

/* One (b, h) pair backward: accumulates into dQ, dK, dV (each may be NULL) from dO, with
 * scratch dZ of row_block·S values. */
static void pair_backward(const attn_dims *a, const ct_real *Q, const ct_real *K, const ct_real *V,
                          const ct_real *P, const ct_real *dO, ct_real *dQ, ct_real *dK, ct_real *dV,
                          ct_real *dZ) {
    const int L = a->L, S = a->S, d = a->d, dv = a->dv, block = row_block(a);
    for (int i0 = 0; i0 < L; i0 += block) {
        const int i1 = i0 + block < L ? i0 + block : L, rows = i1 - i0, seen = keys_seen(a, i1);
        const ct_real *Pb = P + (size_t)i0 * S, *dOb = dO + (size_t)i0 * dv;
        /* dV[:seen] += P[i0:i1, :seen]ᵀ·dO[i0:i1] */
        if (dV) ct_gemm(1, 0, seen, dv, rows, 1, Pb, S, dOb, dv, 1, dV, dv);
        if (!dQ && !dK) continue;
        /* dP = dO[i0:i1]·V[:seen]ᵀ  (rows × seen, leading dimension seen) */
        ct_gemm(0, 1, rows, seen, dv, 1, dOb, dv, V, dv, 0, dZ, seen);
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
        if (dQ) ct_gemm(0, 0, rows, d, seen, a->scale, dZ, seen, K, d, 1, dQ + (size_t)i0 * d, d);
        if (dK) ct_gemm(1, 0, seen, d, rows, a->scale, dZ, seen, Q + (size_t)i0 * d, d, 1, dK, d);
    }
}

static attn_dims node_dims(const ct_node *n) {
    return (attn_dims){n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4], n->iarg[5],
                       n->iarg[6], (ct_real)n->arg[0]};
}

static void attention_backward(ct_tape *tape, ct_node *n) {
    const attn_dims a = node_dims(n);
    ct_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
    ct_real *dq = ct_grad_of(tape, q), *dk = ct_grad_of(tape, k), *dv = ct_grad_of(tape, v);
    const ct_real *P = n->extra, *dout = n->out->grad;
    const int par = parallel_pairs(&a), threads = par ? max_threads() : 1;
    const size_t scratch = (size_t)row_block(&a) * (size_t)a.S;
    ct_real *dZ = ct_arena_alloc(ct_tape_arena(tape), (size_t)threads * scratch * sizeof *dZ);
    const size_t pairs = (size_t)a.B * a.H;
    const size_t sq = (size_t)a.L * a.d, sk = (size_t)a.S * a.d, sv = (size_t)a.S * a.dv;
    const size_t sp = (size_t)a.L * a.S, so = (size_t)a.L * a.dv;
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < pairs; i++)
        pair_backward(&a, q->data + i * sq, k->data + i * sk, v->data + i * sv, P + i * sp,
                      dout + i * so, dq ? dq + i * sq : NULL, dk ? dk + i * sk : NULL,
                      dv ? dv + i * sv : NULL, dZ + (size_t)thread_id() * scratch);
}
const ct_op ct_op_attention = {
    "attention",
    "O = softmax(Q·Kᵀ/√d + M)·V; dV = Pᵀ·dO, dZ = P∘(dO·Vᵀ − rowsum), dQ = dZ·K/√d, dK = dZᵀ·Q/√d",
    attention_backward};

ct_tensor *ct_attention(ct_tape *tape, ct_tensor *q, ct_tensor *k, ct_tensor *v, int causal,
                        const uint8_t *key_padding) {
    static const char *op = "ct_attention";
    CT_CHECK(q && k && v, op, "q, k and v must not be NULL");
    CT_CHECK(q->ndim == 4 && k->ndim == 4 && v->ndim == 4, op,
             "q %s, k %s and v %s must be 4-D: (B, H, L, d), (B, H, S, d), (B, H, S, dv)",
             ct_shp(q), ct_shp(k), ct_shp(v));
    const attn_dims a = {.B = q->shape[0], .H = q->shape[1], .L = q->shape[2], .S = k->shape[2],
                         .d = q->shape[3], .dv = v->shape[3], .causal = causal != 0,
                         .scale = (ct_real)(1 / sqrt((double)q->shape[3]))};
    CT_CHECK(k->shape[0] == a.B && k->shape[1] == a.H && v->shape[0] == a.B && v->shape[1] == a.H,
             op, "q %s, k %s and v %s differ in batch or heads (B, H)", ct_shp(q), ct_shp(k), ct_shp(v));
    CT_CHECK(k->shape[3] == a.d, op, "q %s and k %s differ in the head size d", ct_shp(q), ct_shp(k));
    CT_CHECK(v->shape[2] == a.S, op, "k %s and v %s differ in the number of keys S", ct_shp(k), ct_shp(v));
    CT_CHECK(a.d > 0 && a.S > 0, op, "q %s, k %s: need a head size d > 0 and at least one key",
             ct_shp(q), ct_shp(k));

    ct_node *n;
    ct_tensor *in[3] = {q, k, v};
    ct_tensor *o = ct_op_output(tape, CT_SHAPE(a.B, a.H, a.L, a.dv), &ct_op_attention, in, 3, &n);
    const int par = parallel_pairs(&a), threads = par ? max_threads() : 1;
    const size_t pairs = (size_t)a.B * a.H, sp = (size_t)a.L * a.S;
    /* P for every pair when it is saved for the backward; else one L×S block per thread */
    ct_real *P = ct_arena_alloc(ct_tape_arena(tape), (n ? pairs : (size_t)threads) * sp * sizeof *P);
    const size_t sq = (size_t)a.L * a.d, sk = (size_t)a.S * a.d, sv = (size_t)a.S * a.dv;
    const size_t so = (size_t)a.L * a.dv;
#pragma omp parallel for schedule(static) if (par)
    for (size_t i = 0; i < pairs; i++) {
        const uint8_t *pad = key_padding ? key_padding + (i / (size_t)a.H) * (size_t)a.S : NULL;
        ct_real *Pi = P + (n ? i : (size_t)thread_id()) * sp;
        pair_forward(&a, q->data + i * sq, k->data + i * sk, v->data + i * sv, pad, Pi, o->data + i * so);
    }
    if (n) {
        n->extra = P;
        n->iarg[0] = a.B, n->iarg[1] = a.H, n->iarg[2] = a.L, n->iarg[3] = a.S;
        n->iarg[4] = a.d, n->iarg[5] = a.dv, n->iarg[6] = a.causal;
        n->arg[0] = (double)a.scale;
    }
    return o;
}
