/* core/rng.c — xoshiro256** (Blackman & Vigna), seeded with splitmix64.
 * Integer arithmetic only for the stream, so every machine draws the same numbers. */
#include "core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ct_rng_seed(ct_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ct_rng_u64(ct_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ct_rng_uniform(ct_rng *r) { return (double)(ct_rng_u64(r) >> 11) * 0x1.0p-53; }

double ct_rng_uniform_range(ct_rng *r, double lo, double hi) {
    return lo + (hi - lo) * ct_rng_uniform(r);
}

/* Box–Muller: z = sqrt(-2 ln u1) cos(2π u2), with u1 in (0, 1] so the log is finite. */
double ct_rng_normal(ct_rng *r, double mean, double std) {
    double u1 = 1.0 - ct_rng_uniform(r);
    double u2 = ct_rng_uniform(r);
    return mean + std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Lemire's rejection: unbiased integer in [lo, hi). The width and the offset are computed in
 * unsigned arithmetic: hi − lo overflows int64 for ranges wider than 2^63. */
int64_t ct_rng_int(ct_rng *r, int64_t lo, int64_t hi) {
    CT_CHECK(hi > lo, "ct_rng_int", "empty range [%lld, %lld)", (long long)lo, (long long)hi);
    uint64_t range = (uint64_t)hi - (uint64_t)lo;
    uint64_t threshold = (0 - range) % range;
    for (;;) {
        __uint128_t m = (__uint128_t)ct_rng_u64(r) * range;
        if ((uint64_t)m >= threshold) return (int64_t)((uint64_t)lo + (uint64_t)(m >> 64));
    }
}

void ct_rng_permutation(ct_rng *r, int *out, int n) {
    for (int i = 0; i < n; i++) out[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ct_rng_int(r, 0, i + 1);
        int tmp = out[i];
        out[i] = out[j];
        out[j] = tmp;
    }
}

void ct_tensor_fill_uniform(ct_tensor *t, ct_rng *r, double lo, double hi) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)ct_rng_uniform_range(r, lo, hi);
}

void ct_tensor_fill_normal(ct_tensor *t, ct_rng *r, double mean, double std) {
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)ct_rng_normal(r, mean, std);
}
