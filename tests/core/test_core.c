/* tests/core/test_core.c — the ground floor: RNG, arena, shapes and tensors, errors, threads. */
#include "../test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- RNG --------------------------------------------------------------------------------- */

/* The first outputs of ct_rng_u64 for two seeds. Cross-checked against an independent Python
 * implementation of splitmix64-seeded xoshiro256** (written from the reference C at
 * prng.di.unimi.it, not from core/rng.c):
 *     M = 2**64 - 1; rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M
 *     def seed(x):        # four splitmix64 outputs
 *         s = []
 *         for _ in range(4):
 *             x = (x + 0x9E3779B97F4A7C15) & M; z = x
 *             z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
 *             z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
 *             s.append(z ^ (z >> 31))
 *         return s
 *     def next(s):        # xoshiro256**
 *         r = (rotl((s[1] * 5) & M, 7) * 9) & M; t = (s[1] << 17) & M
 *         s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
 *         return r
 * If these change, every seeded experiment (initialisation, shuffling, dropout) changes too. */
CT_TEST(core, rng_same_stream_on_every_machine) {
    static const uint64_t want42[] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
                                      0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL,
                                      0xfde6dc7fe2ec5e64ULL};
    static const uint64_t want0[] = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL};
    ct_rng r;
    ct_rng_seed(&r, 42);
    for (int i = 0; i < 5; i++) {
        uint64_t got = ct_rng_u64(&r);
        CHECK(got == want42[i], "seed 42 draw %d: got 0x%016llx, want 0x%016llx", i,
              (unsigned long long)got, (unsigned long long)want42[i]);
    }
    ct_rng_seed(&r, 0);
    for (int i = 0; i < 2; i++) {
        uint64_t got = ct_rng_u64(&r);
        CHECK(got == want0[i], "seed 0 draw %d: got 0x%016llx", i, (unsigned long long)got);
    }
    /* Re-seeding restarts the stream. */
    ct_rng_seed(&r, 42);
    CHECK(ct_rng_u64(&r) == want42[0]);
}

/* Mean of U[0,1) is 1/2, variance 1/12. Over n = 100k draws the standard error of the mean is
 * sqrt(1/12/n) ≈ 0.0009, so 0.005 is more than 5 standard errors. */
CT_TEST(core, rng_uniform_in_unit_interval_with_mean_one_half) {
    ct_rng r;
    ct_rng_seed(&r, 7);
    enum { N = 100000 };
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < N; i++) {
        double u = ct_rng_uniform(&r);
        CHECK(u >= 0 && u < 1, "draw %d = %.17g", i, u);
        sum += u;
        sum2 += u * u;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    CHECK(fabs(mean - 0.5) < 0.005, "mean %.5f", mean);
    CHECK(fabs(var - 1.0 / 12) < 0.002, "variance %.5f, want %.5f", var, 1.0 / 12);
    CHECK(lo < 1e-3 && hi > 1 - 1e-3, "range [%g, %g] does not cover the interval", lo, hi);
    for (int i = 0; i < 1000; i++) {
        double u = ct_rng_uniform_range(&r, -2, 3);
        CHECK(u >= -2 && u < 3, "uniform_range draw %g", u);
    }
    ct_test_note("mean %.5f, variance %.5f", mean, var);
}

/* N(3, 2²) over 100k draws: standard error of the mean 2/sqrt(n) ≈ 0.0063, of the standard
 * deviation about 2/sqrt(2n) ≈ 0.0045; the bounds below are about 5 of those. */
CT_TEST(core, rng_normal_mean_and_std) {
    ct_rng r;
    ct_rng_seed(&r, 11);
    enum { N = 100000 };
    double sum = 0, sum2 = 0;
    int beyond3 = 0;
    for (int i = 0; i < N; i++) {
        double z = ct_rng_normal(&r, 3, 2);
        CHECK(isfinite(z), "draw %d is %g", i, z);
        sum += z;
        sum2 += z * z;
        beyond3 += fabs(z - 3) > 3 * 2;
    }
    double mean = sum / N, std = sqrt(sum2 / N - mean * mean);
    CHECK(fabs(mean - 3) < 0.03, "mean %.4f, want 3", mean);
    CHECK(fabs(std - 2) < 0.025, "std %.4f, want 2", std);
    /* P(|z| > 3σ) = 0.27%: 270 expected, standard deviation about 16. */
    CHECK(beyond3 > 170 && beyond3 < 370, "%d draws beyond 3 sigma, want about 270", beyond3);
    ct_test_note("mean %.4f, std %.4f", mean, std);
}

CT_TEST(core, rng_int_stays_in_range_and_hits_every_value) {
    ct_rng r;
    ct_rng_seed(&r, 3);
    int hits[7] = {0};
    for (int i = 0; i < 7000; i++) {
        int64_t k = ct_rng_int(&r, -3, 4);
        CHECK(k >= -3 && k < 4, "draw %lld outside [-3, 4)", (long long)k);
        hits[k + 3]++;
    }
    /* 1000 expected per value, standard deviation about 30. */
    for (int v = 0; v < 7; v++)
        CHECK(hits[v] > 850 && hits[v] < 1150, "value %d drawn %d times of 7000", v - 3, hits[v]);
    for (int i = 0; i < 10; i++) CHECK(ct_rng_int(&r, 5, 6) == 5, "a one-value range");
    /* The whole int64 range: no overflow (UBSan would stop here), both signs appear. */
    int neg = 0, pos = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t k = ct_rng_int(&r, INT64_MIN, INT64_MAX);
        CHECK(k < INT64_MAX);
        neg += k < 0;
        pos += k >= 0;
    }
    CHECK(neg > 400 && pos > 400, "%d negative, %d non-negative of 1000", neg, pos);
}

static void rng_int_empty(void *arg) {
    ct_rng *r = arg;
    ct_rng_int(r, 4, 4);
}

CT_TEST(core, rng_int_empty_range_is_fatal) {
    ct_rng r;
    ct_rng_seed(&r, 1);
    char got[512];
    CHECK(ct_test_expect_fatal(rng_int_empty, &r, "ct_rng_int: empty range [4, 4)", got, sizeof got),
          "stderr was: %s", got);
}

CT_TEST(core, rng_permutation_is_a_permutation_and_reproducible) {
    enum { N = 100 };
    int p[N], q[N], seen[N];
    ct_rng r;
    ct_rng_seed(&r, 42);
    ct_rng_permutation(&r, p, N);
    memset(seen, 0, sizeof seen);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        CHECK(p[i] >= 0 && p[i] < N, "p[%d] = %d", i, p[i]);
        CHECK(!seen[p[i]], "%d appears twice", p[i]);
        seen[p[i]] = 1;
        fixed += p[i] == i;
    }
    CHECK(fixed < 10, "%d fixed points: not shuffled", fixed); /* about 1 expected */
    ct_rng_seed(&r, 42);
    ct_rng_permutation(&r, q, N);
    CHECK(!memcmp(p, q, sizeof p), "the same seed gives the same permutation");
    ct_rng_seed(&r, 43);
    ct_rng_permutation(&r, q, N);
    CHECK(memcmp(p, q, sizeof p) != 0, "another seed gives another permutation");
    int one = -1;
    ct_rng_permutation(&r, &one, 1);
    CHECK(one == 0);
    ct_rng_permutation(&r, NULL, 0); /* nothing to do, nothing touched */
}

CT_TEST(core, rng_tensor_fills) {
    ct_rng r;
    ct_rng_seed(&r, 5);
    ct_tensor *t = ct_tensor_new(CT_SHAPE(64, 64));
    ct_tensor_fill_uniform(t, &r, -0.5, 0.5);
    double sum = 0;
    for (size_t i = 0; i < t->size; i++) {
        CHECK(t->data[i] >= -0.5 && t->data[i] <= 0.5, "t[%zu] = %g", i, (double)t->data[i]);
        sum += t->data[i];
    }
    CHECK(fabs(sum / (double)t->size) < 0.03, "mean %g", sum / (double)t->size);
    ct_tensor_fill_normal(t, &r, 1, 0.1);
    sum = 0;
    for (size_t i = 0; i < t->size; i++) sum += t->data[i];
    CHECK(fabs(sum / (double)t->size - 1) < 0.01, "mean %g", sum / (double)t->size);
    ct_tensor_free(t);
}

/* ---- arena ------------------------------------------------------------------------------- */

CT_TEST(core, arena_allocations_are_64_byte_aligned) {
    ct_arena *a = ct_arena_new(4096);
    static const size_t sizes[] = {1, 3, 63, 64, 65, 100, 1000, 4, 4096, 5000, 7};
    size_t sum = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = ct_arena_alloc(a, sizes[i]);
        CHECK(p != NULL);
        CHECK((uintptr_t)p % 64 == 0, "allocation %zu (%zu bytes) at %p", i, sizes[i], (void *)p);
        memset(p, 0xA5, sizes[i]); /* ASan checks the whole request is ours */
        sum += (sizes[i] + 63) / 64 * 64;
    }
    CHECK(ct_arena_used(a) == sum, "used %zu, want %zu (requests rounded to 64)", ct_arena_used(a), sum);
    unsigned char *z = ct_arena_calloc(a, 200);
    CHECK((uintptr_t)z % 64 == 0);
    for (int i = 0; i < 200; i++) CHECK(z[i] == 0, "calloc byte %d = %d", i, z[i]);
    ct_arena_free(a);
}

CT_TEST(core, arena_request_larger_than_a_chunk) {
    ct_arena *a = ct_arena_new(1024);
    CHECK(ct_arena_capacity(a) == 1024, "capacity %zu", ct_arena_capacity(a));
    unsigned char *small = ct_arena_alloc(a, 100);
    size_t big_bytes = 1 << 20;
    unsigned char *big = ct_arena_alloc(a, big_bytes);
    CHECK((uintptr_t)big % 64 == 0);
    memset(big, 0x5A, big_bytes);
    memset(small, 0x11, 100);
    CHECK(big[0] == 0x5A && big[big_bytes - 1] == 0x5A);
    CHECK(ct_arena_capacity(a) >= 1024 + big_bytes, "capacity %zu", ct_arena_capacity(a));
    CHECK(ct_arena_used(a) == 128 + big_bytes, "used %zu", ct_arena_used(a));
    ct_arena_free(a);
    ct_arena_free(NULL);
}

/* One "training step": a mix of small and larger-than-a-chunk requests. Returns the
 * allocations' start and length so the caller can check they do not overlap. */
enum { STEP_ALLOCS = 9 };
static const size_t step_sizes[STEP_ALLOCS] = {300, 700, 3000, 5000, 64, 2000, 9000, 1, 1000};

static void arena_step(ct_arena *a, unsigned char **ptrs) {
    for (int i = 0; i < STEP_ALLOCS; i++) {
        ptrs[i] = ct_arena_alloc(a, step_sizes[i]);
        memset(ptrs[i], 0x10 + i, step_sizes[i]);
    }
}

CT_TEST(core, arena_reset_reaches_a_steady_state) {
    ct_arena *a = ct_arena_new(4096);
    unsigned char *ptrs[STEP_ALLOCS], *first[STEP_ALLOCS];
    arena_step(a, first);
    size_t used1 = ct_arena_used(a), cap1 = ct_arena_capacity(a);
    CHECK(cap1 > 4096, "the step needed more than one chunk");
    for (int step = 2; step <= 4; step++) {
        ct_arena_reset(a);
        CHECK(ct_arena_used(a) == 0, "used %zu after reset", ct_arena_used(a));
        CHECK(ct_arena_capacity(a) == cap1, "reset keeps every chunk");
        arena_step(a, ptrs);
        CHECK(ct_arena_used(a) == used1, "step %d used %zu, first step %zu", step, ct_arena_used(a), used1);
        CHECK(ct_arena_capacity(a) == cap1, "step %d grew the arena from %zu to %zu bytes", step,
              cap1, ct_arena_capacity(a));
        CHECK(!memcmp(ptrs, first, sizeof ptrs), "step %d got different addresses", step);
    }
    ct_arena_free(a);
}

/* Every allocation of a step keeps its own bytes: a large request written before a reset, then
 * a step of other sizes, then checks that no two live allocations overlap. */
CT_TEST(core, arena_allocations_do_not_overlap_across_reset) {
    ct_arena *a = ct_arena_new(4096);
    unsigned char *big = ct_arena_alloc(a, 20000);
    memset(big, 0xEE, 20000);
    unsigned char *after = ct_arena_alloc(a, 500);
    memset(after, 0x01, 500);
    for (int i = 0; i < 20000; i++) CHECK(big[i] == 0xEE, "big[%d] overwritten", i);
    ct_arena_reset(a);

    unsigned char *ptrs[STEP_ALLOCS];
    arena_step(a, ptrs);
    unsigned char *z = ct_arena_calloc(a, 6000); /* may land in the old big chunk */
    for (int i = 0; i < 6000; i++) CHECK(z[i] == 0, "calloc byte %d = 0x%02x after reset", i, z[i]);
    for (int i = 0; i < STEP_ALLOCS; i++)
        for (size_t k = 0; k < step_sizes[i]; k++)
            CHECK(ptrs[i][k] == 0x10 + i, "allocation %d byte %zu = 0x%02x: overlapped", i, k, ptrs[i][k]);
    for (int i = 0; i < STEP_ALLOCS; i++)
        CHECK(z + 6000 <= ptrs[i] || ptrs[i] + step_sizes[i] <= z, "calloc overlaps allocation %d", i);
    ct_arena_free(a);
}

/* ---- shapes and tensors ------------------------------------------------------------------ */

CT_TEST(core, shape_macro_size_and_string) {
    ct_shape s = CT_SHAPE(2, 3);
    CHECK(s.ndim == 2 && s.d[0] == 2 && s.d[1] == 3);
    CHECK(CT_SHAPE(4).ndim == 1);
    CHECK(CT_SHAPE(1, 2, 3, 4, 5, 6).ndim == 6 && CT_SHAPE(1, 2, 3, 4, 5, 6).d[5] == 6);
    CHECK(ct_shape_size(s) == 6);
    CHECK(ct_shape_size(CT_SHAPE(2, 0, 3)) == 0);
    ct_shape scalar = {.ndim = 0};
    CHECK(ct_shape_size(scalar) == 1, "a scalar has one element");
    char buf[64];
    CHECK(!strcmp(ct_shape_str(s, buf, sizeof buf), "(2, 3)"), "got %s", buf);
    CHECK(!strcmp(ct_shape_str(CT_SHAPE(4), buf, sizeof buf), "(4,)"), "got %s", buf);
    CHECK(!strcmp(ct_shape_str(scalar, buf, sizeof buf), "()"), "got %s", buf);
    CHECK(!strcmp(ct_shape_str(CT_SHAPE(128, 784, 1), buf, sizeof buf), "(128, 784, 1)"), "got %s", buf);
    /* A short buffer truncates and stays terminated. */
    char small[6];
    memset(small, 'x', sizeof small);
    ct_shape_str(CT_SHAPE(1000, 2000), small, sizeof small);
    CHECK(memchr(small, 0, sizeof small) != NULL, "not terminated");
    CHECK(!strncmp(small, "(1000", 5), "got %s", small);
}

CT_TEST(core, tensor_new_is_zero_filled_and_aligned) {
    ct_tensor *t = ct_tensor_new(CT_SHAPE(3, 5, 7));
    CHECK(t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == 5 && t->shape[2] == 7);
    CHECK(t->size == 105);
    CHECK(t->grad == NULL && !ct_requires_grad(t) && t->flags == 0 && t->name == NULL);
    CHECK((uintptr_t)t->data % 64 == 0);
    for (size_t i = 0; i < t->size; i++) CHECK(t->data[i] == 0, "t[%zu] = %g", i, (double)t->data[i]);
    char buf[32];
    CHECK(!strcmp(ct_tensor_shape_str(t, buf, sizeof buf), "(3, 5, 7)"), "got %s", buf);
    ct_shape s = ct_tensor_shape(t);
    CHECK(s.ndim == 3 && s.d[2] == 7);

    ct_tensor_fill(t, 2.5);
    CHECK(t->data[0] == 2.5 && t->data[104] == 2.5);
    ct_real src[105];
    for (int i = 0; i < 105; i++) src[i] = (ct_real)i;
    ct_tensor_copy_from(t, src);
    CHECK(t->data[0] == 0 && t->data[104] == 104);
    ct_tensor_free(t);

    ct_tensor *empty = ct_tensor_new(CT_SHAPE(0, 4));
    CHECK(empty->size == 0 && empty->data != NULL);
    ct_tensor_free(empty);
    ct_tensor *scalar = ct_tensor_new((ct_shape){.ndim = 0});
    CHECK(scalar->size == 1 && scalar->data[0] == 0);
    ct_tensor_free(scalar);
    ct_tensor_free(NULL);
}

CT_TEST(core, tensor_new_grad_has_a_zero_grad) {
    ct_tensor *t = ct_tensor_new_grad(CT_SHAPE(4, 3));
    CHECK(t->grad != NULL && ct_requires_grad(t));
    CHECK((uintptr_t)t->grad % 64 == 0);
    CHECK(t->grad != t->data);
    for (size_t i = 0; i < t->size; i++) CHECK(t->grad[i] == 0 && t->data[i] == 0);
    for (size_t i = 0; i < t->size; i++) t->grad[i] = 1;
    ct_tensor_zero_grad(t);
    for (size_t i = 0; i < t->size; i++) CHECK(t->grad[i] == 0, "grad[%zu] after zero_grad", i);
    ct_tensor *plain = ct_tensor_new(CT_SHAPE(2));
    ct_tensor_zero_grad(plain); /* no grad: nothing to do */
    ct_tensor_free(plain);
    ct_tensor_free(t);
}

CT_TEST(core, tensor_print) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    ct_tensor *t = ct_tensor_new(CT_SHAPE(2, 5));
    for (size_t i = 0; i < t->size; i++) t->data[i] = (ct_real)i / 2;
    ct_tensor_print(t, f);
    ct_tensor *s = ct_tensor_new(CT_SHAPE(3));
    ct_tensor_print(s, f);
    fclose(f);
    ct_tensor_free(t);
    ct_tensor_free(s);
    int ok = strstr(text, "tensor(2, 5) [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, ...]\n") != NULL &&
             strstr(text, "tensor(3,) [0, 0, 0]\n") != NULL;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    free(text);
    CHECK(ok, "printed:\n%s", copy);
}

static void tensor_negative_dim(void *arg) {
    (void)arg;
    ct_tensor_new(CT_SHAPE(2, -3));
}

CT_TEST(core, tensor_negative_dimension_is_fatal) {
    char got[512];
    CHECK(ct_test_expect_fatal(tensor_negative_dim, NULL, "ct_tensor_new: dimension 1 has negative size -3",
                               got, sizeof got),
          "stderr was: %s", got);
}

/* ---- threads ----------------------------------------------------------------------------- */

CT_TEST(core, threads_round_trip) {
    int before = ct_get_threads();
    CHECK(before >= 1, "ct_get_threads() = %d", before);
    ct_set_threads(3);
    int three = ct_get_threads();
    ct_set_threads(1);
    int one = ct_get_threads();
    ct_set_threads(0); /* all cores */
    int all = ct_get_threads();
    ct_set_threads(before);
    CHECK(three == 3 && one == 1, "set 3 got %d, set 1 got %d", three, one);
    CHECK(all >= 1, "all cores gave %d", all);
    CHECK(ct_get_threads() == before);
}

/* ---- errors ------------------------------------------------------------------------------ */

CT_TEST(core, set_error_returns_code_and_keeps_message) {
    int rc = ct_set_error(CT_ERR_IO, "cannot open %s: %s", "weights.bin", "No such file");
    CHECK(rc == CT_ERR_IO && rc < 0);
    CHECK(!strcmp(ct_last_error(), "cannot open weights.bin: No such file"), "got %s", ct_last_error());
    CHECK(ct_set_error(CT_ERR_FORMAT, "bad magic 0x%08x", 0x803u) == CT_ERR_FORMAT);
    CHECK(!strcmp(ct_last_error(), "bad magic 0x00000803"), "got %s", ct_last_error());
    /* An over-long message is truncated, not overflowed. */
    char longmsg[3000];
    memset(longmsg, 'y', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = 0;
    CHECK(ct_set_error(CT_ERR_VALUE, "%s", longmsg) == CT_ERR_VALUE);
    size_t n = strlen(ct_last_error());
    CHECK(n > 100 && n < sizeof longmsg - 1, "length %zu", n);
    CHECK(CT_OK == 0 && CT_ERR_IO != CT_ERR_FORMAT && CT_ERR_MEMORY != CT_ERR_VALUE);
}

static void matmul_mismatch(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *a = ct_tape_zeros(tape, CT_SHAPE(2, 3));
    ct_tensor *b = ct_tape_zeros(tape, CT_SHAPE(4, 5));
    ct_matmul(tape, a, b);
}

CT_TEST(core, fatal_names_op_shapes_and_call_site) {
    char got[1024];
    CHECK(ct_test_expect_fatal(matmul_mismatch, NULL, "ctape: ct_matmul: ", got, sizeof got),
          "stderr was: %s", got);
    CHECK(strstr(got, "(2, 3)") && strstr(got, "(4, 5)"), "shapes missing: %s", got);
    CHECK(strstr(got, "called at ") && strstr(got, "test_core.c:"), "call site missing: %s", got);
    CHECK(strchr(got, '\n') == got + strlen(got) - 1, "not one line: %s", got);
}

/* After a tracked call returns, its site is gone: a later fatal error from an untracked
 * function must not blame the earlier line. */
static void stale_site_body(void *arg) {
    (void)arg;
    ct_tape *tape = ct_tape_new();
    ct_tensor *x = ct_tape_zeros(tape, CT_SHAPE(2, 2));
    ct_relu(tape, x);
    ct_tensor_new(CT_SHAPE(2, -1));
}

CT_TEST(core, call_site_is_restored_after_a_call) {
    char got[1024];
    CHECK(ct_test_expect_fatal(stale_site_body, NULL, "negative size", got, sizeof got), "got: %s", got);
    CHECK(strstr(got, "called at") == NULL, "stale call site in: %s", got);
}
