/* tests/test_hostile_checkpoint.c — checkpoint files and calls made to hurt: headers with
 * hundreds of thousands of keys, bytes the header does not account for, optimizer and EMA
 * state out of range, saves killed half-way, a decimal-comma locale, non-finite weights, NULL
 * and freed handles. */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A growing string. */
typedef struct {
    char *p;
    size_t len, cap;
} text;

static void put(text *t, const char *s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = 2 * (t->len + n + 1);
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n + 1);
    t->len += n;
}

/* header length (little endian), the header, then data_len bytes of `fill`. */
static int write_st(const char *path, const char *header, size_t data_len, uint8_t fill) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    uint64_t h = strlen(header);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(h >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, (size_t)h, f) == h;
    for (size_t i = 0; ok && i < data_len; i++) ok = fputc(fill, f) != EOF;
    return fclose(f) == 0 && ok;
}

static int error_says(const char *a, const char *b) {
    const char *e = ct_last_error();
    return strstr(e, a) && (!b || strstr(e, b));
}

/* ==== 1. the safetensors reader ================================================================ */

#define MANY 200000

/* {"__metadata__":{"k0000000":"v0",...},"t":{F32 [1] at [0,4]}}, with key `dup` repeated last
 * when dup >= 0. */
static char *many_metadata_header(int n, int dup) {
    text t = {0};
    put(&t, "{\"__metadata__\":{");
    char kv[64];
    for (int i = 0; i < n; i++) {
        snprintf(kv, sizeof kv, "%s\"k%07d\":\"v%d\"", i ? "," : "", (i * 7919) % n, i);
        put(&t, kv);
    }
    if (dup >= 0) {
        snprintf(kv, sizeof kv, ",\"k%07d\":\"again\"", dup);
        put(&t, kv);
    }
    put(&t, "},\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    return t.p;
}

CT_TEST(checkpoint_hostile, metadata_with_200k_keys_loads_and_a_duplicate_is_found) {
    const char *dir = ct_test_tmpdir();
    const char *good = path_in(dir, "meta.safetensors"), *bad = path_in(dir, "meta-dup.safetensors");
    char *h = many_metadata_header(MANY, -1), *hd = many_metadata_header(MANY, 123457);
    int written = write_st(good, h, 4, 0) && write_st(bad, hd, 4, 0);
    free(h);
    free(hd);
    CHECK(written);
    double t0 = now_s();
    ct_safetensors *f = ct_safetensors_open(good);
    double t_good = now_s() - t0;
    CHECK(f, "%s", ct_last_error());
    /* every key maps to its own value: key k (i·7919 mod n) was written with value "v<i>" */
    int wrong = 0;
    for (int i = 0; i < MANY; i += 997) {
        char key[32], want[32];
        snprintf(key, sizeof key, "k%07d", (i * 7919) % MANY);
        snprintf(want, sizeof want, "v%d", i);
        const char *v = ct_safetensors_metadata(f, key);
        wrong += !v || strcmp(v, want) != 0;
    }
    const char *absent = ct_safetensors_metadata(f, "k9999999");
    ct_safetensors_close(f);
    CHECK(wrong == 0, "%d keys have the wrong value", wrong);
    CHECK(absent == NULL);
    t0 = now_s();
    f = ct_safetensors_open(bad);
    double t_bad = now_s() - t0;
    CHECK(!f, "a duplicate key among 200k is refused");
    CHECK(error_says(bad, "__metadata__ key \"k0123457\" appears twice"), "%s", ct_last_error());
    ct_test_note("200k metadata keys: open %.3f s, with a duplicate %.3f s", t_good, t_bad);
}

/* 200k tensors, each 4 bytes, tiling the buffer; with dup >= 0, tensor `dup`'s name again last. */
static char *many_tensors_header(int n, int dup) {
    text t = {0};
    put(&t, "{");
    char e[128];
    for (int i = 0; i < n; i++) {
        snprintf(e, sizeof e, "%s\"t%07d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}", i ? "," : "",
                 (i * 7919) % n, 4 * i, 4 * i + 4);
        put(&t, e);
    }
    if (dup >= 0) {
        snprintf(e, sizeof e, ",\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[%d,%d]}", dup, 4 * n, 4 * n);
        put(&t, e);
    }
    put(&t, "}");
    return t.p;
}

CT_TEST(checkpoint_hostile, tensors_200k_load_and_a_duplicate_is_found) {
    const char *dir = ct_test_tmpdir();
    const char *good = path_in(dir, "many.safetensors"), *bad = path_in(dir, "many-dup.safetensors");
    char *h = many_tensors_header(MANY, -1), *hd = many_tensors_header(MANY, 4242);
    int written = write_st(good, h, 4 * (size_t)MANY, 0) && write_st(bad, hd, 4 * (size_t)MANY, 0);
    free(h);
    free(hd);
    CHECK(written);
    double t0 = now_s();
    ct_safetensors *f = ct_safetensors_open(good);
    double t_good = now_s() - t0;
    CHECK(f, "%s", ct_last_error());
    int n = ct_safetensors_count(f);
    const char *last = ct_safetensors_name(f, n - 1);
    int last_ok = !strcmp(last, "t0199999");
    ct_safetensors_close(f);
    CHECK(n == MANY && last_ok);
    t0 = now_s();
    f = ct_safetensors_open(bad);
    double t_bad = now_s() - t0;
    CHECK(!f);
    CHECK(error_says(bad, "tensor \"t0004242\" appears twice"), "%s", ct_last_error());
    ct_test_note("200k tensors: open %.3f s, with a duplicate %.3f s", t_good, t_bad);
}

#define A4 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

/* The reference implementation's rule: the data offsets tile the buffer exactly. */
CT_TEST(checkpoint_hostile, bytes_outside_every_tensor_are_refused) {
    const char *dir = ct_test_tmpdir();
    struct {
        const char *what, *header;
        size_t data_len;
        const char *expect[2];
    } cases[] = {
        {"one trailing byte", "{" A4 "}", 5, {"1 byte after the last tensor (4 bytes of tensor data, 5 in the file)", "tile"}},
        {"trailing bytes, no tensor", "{}", 16, {"16 bytes after the last tensor (0 bytes of tensor data, 16 in the file)", NULL}},
        {"a hole in the middle", "{" A4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
         {"bytes 4..8 belong to no tensor", "between \"a\" and \"b\""}},
        {"a hole at the start", "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
         {"bytes 0..4 belong to no tensor", "before \"b\""}},
        {"an empty tensor inside another", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8,
         {"empty tensor \"e\" at byte 4 lies inside \"a\" (bytes 0..8)", NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "gap%zu.safetensors", c);
        const char *path = path_in(dir, name);
        CHECK(write_st(path, cases[c].header, cases[c].data_len, 0));
        ct_safetensors *f = ct_safetensors_open(path);
        if (f) ct_safetensors_close(f);
        CHECK(!f, "%s: opened", cases[c].what);
        CHECK(error_says(path, cases[c].expect[0]) && (!cases[c].expect[1] || error_says(cases[c].expect[1], NULL)),
              "%s: \"%s\"", cases[c].what, ct_last_error());
    }
    /* empty tensors at a boundary, and where the data ends, tile */
    const char *ok = path_in(dir, "empties.safetensors");
    CHECK(write_st(ok, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                       "\"f\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 4, 0));
    ct_safetensors *f = ct_safetensors_open(ok);
    CHECK(f, "%s", ct_last_error());
    ct_safetensors_close(f);
}

/* 1 GB of zeros after the last tensor (a sparse file: no disk used) is refused from the header
 * alone, and through ct_model_load too. */
CT_TEST(checkpoint_hostile, a_gigabyte_of_trailing_zeros_is_refused) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "trailing.safetensors");
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_buffer(m, "a", CT_SHAPE(1));
    w->data[0] = 5;
    CHECK(write_st(path, "{" A4 "}", 4, 0));
    size_t header_len = strlen("{" A4 "}");
    CHECK(truncate(path, (off_t)(8 + header_len + 4 + (1ull << 30))) == 0);
    double t0 = now_s();
    int rc = ct_model_load(m, path);
    double took = now_s() - t0;
    unlink(path);
    double kept = w->data[0];
    ct_model_free(m);
    CHECK(rc == CT_ERR_FORMAT);
    CHECK(error_says(path, "1073741824 bytes after the last tensor"), "%s", ct_last_error());
    CHECK(kept == 5);
    ct_test_note("refused in %.4f s", took);
}
