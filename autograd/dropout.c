/* autograd/dropout.c — inverted dropout, one fused op.
 *
 * "Inverted": the kept values are scaled by 1/(1 − p) during training, so the expected value of
 * every element is unchanged and evaluation is the plain identity (no rescaling at test time). */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <math.h>

#define PAR_MIN (1 << 16) /* OpenMP only pays off above this many elements */

/* The i-th output of splitmix64 started at `key` (Steele, Lea & Flood 2014; the generator that
 * seeds ct_rng). Each output depends only on key and i — a counter-based generator — so every
 * element's draw is computed on its own, in vector lanes and threads, and the mask is the same
 * for any thread count. */
static inline uint64_t splitmix64_at(uint64_t key, uint64_t i) {
    uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- dropout: y = x·m/(1 − p),  m_i ~ Bernoulli(1 − p) from rng;   dx += dy·m/(1 − p) ---------
 * Same shape in and out. p = 1 drops everything: y = 0 and dx += 0 (scale 0, no division).
 * The mask: one 64-bit draw from rng is the key; output j of splitmix64 from that key gives two
 * 32-bit uniforms u (elements 2j and 2j + 1), and an element is kept when u >= t = round(p·2³²),
 * so P(keep) = 1 − p up to 2⁻³³. The same rng state gives the same mask on every machine, and
 * the rng moves on by one draw per call.
 * saved: extra = the keep mask, one byte per element; arg[0] = the scale 1/(1 − p) (0 at p = 1). */
CT_KERNEL
static void dropout_backward(ct_tape *tape, ct_node *n) {
    ct_real *restrict dx = ct_grad_of(tape, n->in[0]);
    const uint8_t *restrict keep = n->extra;
    const ct_real *restrict dy = n->out->grad;
    const ct_real scale = (ct_real)n->arg[0];
    const size_t len = n->out->size;
#pragma omp parallel for simd if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) dx[i] += keep[i] ? dy[i] * scale : 0;
}
const ct_op ct_op_dropout = {"dropout", "y = x·m/(1 − p), m ~ Bernoulli(1 − p); dx = dy·m/(1 − p)",
                             dropout_backward};

CT_KERNEL
ct_tensor *ct_dropout(ct_tape *tape, ct_tensor *x, double p, int training, ct_rng *rng) {
    static const char *op = "ct_dropout";
    CT_CHECK(x, op, "input is NULL");
    CT_CHECK(p >= 0 && p <= 1, op, "probability p = %g is outside [0, 1] (input %s)", p, ct_shp(x));
    if (!training || p == 0) return x; /* the identity: no copy, no node */
    CT_CHECK(rng, op, "training with p = %g needs an rng (input %s)", p, ct_shp(x));

    ct_node *n;
    ct_tensor *y = ct_op_output(tape, ct_tensor_shape(x), &ct_op_dropout, &x, 1, &n);
    const size_t len = x->size, pairs = len / 2;
    uint8_t *restrict keep = ct_arena_alloc(ct_tape_arena(tape), len ? len : 1);
    const uint64_t t = p >= 1 ? (uint64_t)1 << 32 : (uint64_t)llround(p * 4294967296.0);
    const uint64_t key = ct_rng_u64(rng);
#pragma omp parallel for simd if (len > PAR_MIN)
    for (size_t j = 0; j < pairs; j++) {
        const uint64_t u = splitmix64_at(key, j);
        keep[2 * j] = (u & 0xffffffffu) >= t;
        keep[2 * j + 1] = (u >> 32) >= t;
    }
    if (len % 2) keep[len - 1] = (splitmix64_at(key, pairs) & 0xffffffffu) >= t;

    const ct_real scale = p >= 1 ? 0 : (ct_real)(1 / (1 - p));
    const ct_real *restrict in = x->data;
    ct_real *restrict out = y->data;
#pragma omp parallel for simd if (len > PAR_MIN)
    for (size_t i = 0; i < len; i++) out[i] = keep[i] ? in[i] * scale : 0;
    if (n) {
        n->extra = keep;
        n->arg[0] = p >= 1 ? 0 : 1 / (1 - p);
    }
    return y;
}
