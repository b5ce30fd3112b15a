/* core/vmath.h — numerics shared by every floor that computes: a finiteness test, e^x, log, log1p,
 * sigmoid and softplus written so that GCC vectorises a loop calling them (no intrinsics), and
 * OpenMP's thread numbers. For op and loss authors; installed with the public headers.
 * glibc's vector logf/expf are only declared under -ffast-math, and a scalar libm call per element
 * is what made the element-wise losses slow. float64 builds, which are for checking, keep libm.
 * Accuracy against libm over dense ranges is tested in tests/losses/test_loss_fused.c (group vmath). */
#ifndef CTAPE_CORE_VMATH_H
#define CTAPE_CORE_VMATH_H

#include "core.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* for helpers a loop calls: GCC vectorises a loop only when every call in it is inlined */
#define CT_ALWAYS_INLINE inline __attribute__((always_inline))

/* 1 when every x[k] is finite. An integer test of the exponent bits (all ones for ±inf and NaN),
 * OR-reduced: it vectorises with no float rounding to keep in order (a probe Σ x·0 would be
 * summed one lane at a time). */
static inline int ct_all_finite(const ct_real *x, size_t n) {
#ifdef CT_PRECISION_64
    typedef uint64_t bits_t;
    const bits_t exponent = 0x7ff0000000000000u;
#else
    typedef uint32_t bits_t;
    const bits_t exponent = 0x7f800000u;
#endif
    unsigned bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t k = 0; k < n; k++) {
        bits_t b;
        memcpy(&b, &x[k], sizeof b);
        bad |= (b & exponent) == exponent;
    }
    return !bad;
}

/* e^x for x ≤ 0 (softmax's z − max), in a form the compiler vectorises (glibc's vector
 * expf is only declared under -ffast-math, and a scalar expf call per score costs as much as both
 * GEMMs of a pair). float64 builds, which are for checking, keep libm's exp.
 * The float32 version is Cephes' expf: x = n·ln2 + r with n = round(x/ln2) (adding 1.5·2²³ rounds
 * to an integer held in the low mantissa bits, with no float-to-int conversion), ln2 split in two
 * so r is exact, |r| ≤ ln2/2; e^r = 1 + r + r²·p(r) with a degree-5 minimax p; then 2^n written
 * into the exponent bits. Error < 1 ulp on [ln(FLT_MIN), 0]; below that 0, and NaN stays NaN. */
#ifdef CT_PRECISION_64
static inline ct_real ct_exp_nonpositive(ct_real x) { return exp(x); }
#else
static inline float ct_exp_nonpositive(float x) {
    const float lo = -87.33654475f, round = 12582912.0f; /* ln(FLT_MIN), 1.5·2²³ */
    const float c = x > lo ? x : lo;
    const float t = c * 1.44269504088896341f + round, n = t - round;
    const float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23; /* t's low bits hold n: this is 2^n */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    const float e = x < lo ? 0.0f : p * two_n;
    return x != x ? x : e;
}
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenMP's pool size and this thread's number (1 and 0 in a build without OpenMP). */
static inline int ct_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int ct_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}



/* always_inline: a loop vectorises only when every call in it is inlined. */
#ifdef CT_PRECISION_64
static inline __attribute__((always_inline)) double ct_vlog(double x) { return log(x); }
static inline __attribute__((always_inline)) double ct_vlog1p(double x) { return log1p(x); }
static inline __attribute__((always_inline)) double ct_vlog1p_unit(double u, double inv_v) {
    (void)inv_v;
    return log1p(u);
}
#else
/* e·ln2 + log(1 + f) for f in [√½ − 1, √2 − 1]: the polynomial of ct_vlog below. */
static inline __attribute__((always_inline)) float ct_log_reduced(float f, float ef) {
    const float z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    const float y = f * z * p + ef * -2.12194440e-4f - 0.5f * z;
    return (f + y) + ef * 0.693359375f;
}

/* log x. Write x = 2^e·m with m in [√½, √2) (exponent and mantissa bits taken apart; subnormal x
 * are first scaled by 2²³), f = m − 1 in [−0.29, 0.41]; then
 *     log x = e·ln2 + f − f²/2 + f³·P(f)
 * with P the degree-8 minimax polynomial of Cephes' logf, and ln2 split in a short high part
 * (0.693359375, exact times any e) and a small correction, so e·ln2 adds no rounding of its own.
 * Error ≤ 1 ulp on the normal range (tested); log 0 = −inf, log(+inf) = +inf, NaN for x < 0. */
static inline __attribute__((always_inline)) float ct_vlog(float x) {
    int32_t xi; /* the tests on x are integer tests on its bits: float compares would keep GCC from */
    memcpy(&xi, &x, sizeof xi); /* if-converting the select below under -ftrapping-math */
    const int subnormal = xi < 0x00800000;
    const float xs = subnormal ? x * 8388608.0f : x; /* 2²³ */
    uint32_t bits;
    memcpy(&bits, &xs, sizeof bits);
    int32_t e = (int32_t)((bits >> 23) & 0xffu) - 126 - (subnormal ? 23 : 0);
    const uint32_t mbits = (bits & 0x007fffffu) | 0x3f000000u; /* mantissa as a float in [0.5, 1) */
    float m;
    memcpy(&m, &mbits, sizeof m);
    const int below = m < 0.707106781f;
    e = below ? e - 1 : e;
    const float f = below ? (m + m) - 1.0f : m - 1.0f;
    const float r = ct_log_reduced(f, (float)e); /* finite for every input, special ones included */
    const int normal = (xi > 0) & (xi < 0x7f800000);
    const float special = (xi & 0x7fffffff) == 0 ? -INFINITY : (xi == 0x7f800000 ? INFINITY : NAN);
    /* r·0 (= 0) ties r to both arms, so GCC computes it unconditionally and selects */
    return normal ? r : special + r * 0.0f;
}

/* log(1 + u) for u > −1 without losing u's digits when it is small: with v = 1 + u rounded,
 * log(1 + u) = log v + (u − (v − 1))/v to first order in the rounding error of v. */
static inline __attribute__((always_inline)) float ct_vlog1p(float u) {
    const float v = 1.0f + u;
    const float correction = v < INFINITY ? (u - (v - 1.0f)) / v : 0.0f;
    return ct_vlog(v) + correction;
}

/* log(1 + u) for u in [0, 1] (softplus's e^−|x|), given inv_v = 1/(1 + u), which the caller has
 * for σ anyway: v = 1 + u in [1, 2] needs no exponent taken apart (e = [v > √2], m = v/2^e exact)
 * and no special case, and the correction for v's rounding multiplies instead of dividing. */
static inline __attribute__((always_inline)) float ct_vlog1p_unit(float u, float inv_v) {
    const float v = 1.0f + u;
    const int above = v > 1.41421356f;
    const float f = (above ? v * 0.5f : v) - 1.0f; /* exact */
    return ct_log_reduced(f, above ? 1.0f : 0.0f) + (u - (v - 1.0f)) * inv_v;
}
#endif

/* e^(a − b) for a ≤ b, as if a − b were not rounded: with d = a − b rounded and its rounding
 * error r = (a − b) − d recovered exactly (Knuth's two-sum, six additions), e^(a − b) = e^d·(1 + r)
 * to second order in r. A plain e^(a − b) is off by ulp(a − b)/2 relatively (2e-6 at a − b ≈ −40):
 * what a softmax over a shared shift b, far above a row's own maximum, would lose. */
static inline __attribute__((always_inline)) ct_real ct_exp_difference(ct_real a, ct_real b) {
    const ct_real d = a - b, b_part = d - a, error = (a - (d - b_part)) + (-b - b_part);
    const ct_real e = ct_exp_nonpositive(d);
    return e + e * error;
}

/* log x in double for a positive normal float x, to about 3e-8 absolute for any x: x = 2^e·m with
 * m in [√½, √2), e·ln2 added in double to the float log m (|log m| ≤ 0.35). ct_vlog(x) rounds to
 * float, so its error grows with |log x| (4e-6 at log x ≈ −40); a softmax over a shared shift
 * needs the small one. */
#ifdef CT_PRECISION_64
static inline __attribute__((always_inline)) double ct_vlog_wide(double x) { return log(x); }
#else
static inline __attribute__((always_inline)) double ct_vlog_wide(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 23) & 0xffu) - 127;
    const uint32_t mbits = (bits & 0x007fffffu) | 0x3f800000u; /* the mantissa as a float in [1, 2) */
    float m;
    memcpy(&m, &mbits, sizeof m);
    const int above = m > 1.41421356f;
    e = above ? e + 1 : e;
    m = above ? m * 0.5f : m;
    return e * 0.69314718055994530942 + (double)ct_vlog(m);
}
#endif

/* σ(x) = 1/(1 + e^−x) from e = e^−|x| ≤ 1, so nothing overflows: 1/(1 + e) for x ≥ 0, e/(1 + e)
 * below. */
static inline __attribute__((always_inline)) ct_real ct_vsigmoid(ct_real x) {
    const ct_real e = ct_exp_nonpositive(x < 0 ? x : -x);
    const ct_real r = (ct_real)1 / ((ct_real)1 + e);
    return x >= 0 ? r : e * r;
}

/* softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^−|x|), finite and exact to rounding for any
 * finite x. */
static inline __attribute__((always_inline)) ct_real ct_vsoftplus(ct_real x) {
    return (x > 0 ? x : 0) + ct_vlog1p(ct_exp_nonpositive(x < 0 ? x : -x));
}

#endif
