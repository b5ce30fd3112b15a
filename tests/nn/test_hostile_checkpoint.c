/* tests/nn/test_hostile_checkpoint.c — checkpoint files and calls made to hurt: headers with
 * hundreds of thousands of keys, bytes the header does not account for, optimizer and EMA
 * state out of range, a decimal-comma locale, NULL and freed handles. Saves killed half-way and
 * non-finite weights are in tests/nn/test_hostile_save.c. */
#include "../test.h"
#include "../../optim/optimizer.h" /* the optimizer's internals, as optimizer authors see them */

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

/* ==== 2. optimizer and EMA state out of range ================================================== */

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static int spill(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(b, 1, len, f);
    return fclose(f) == 0 && put == len;
}

static uint64_t header_len(const uint8_t *b) {
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h |= (uint64_t)b[i] << (8 * i);
    return h;
}

/* src with metadata `key`'s value replaced by `value`, written to dst. */
static int tamper_meta(const char *src, const char *dst, const char *key, const char *value) {
    size_t len;
    uint8_t *b = slurp(src, &len);
    if (!b) return 0;
    uint64_t h = header_len(b);
    char *header = strndup((const char *)b + 8, (size_t)h), pat[256];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    char *at = strstr(header, pat), *close = at ? strchr(at + strlen(pat), '"') : NULL;
    int ok = 0;
    if (close) {
        text t = {0};
        *(at + strlen(pat)) = 0;
        put(&t, header);
        put(&t, value);
        put(&t, close);
        size_t out_len = 8 + t.len + (len - 8 - (size_t)h);
        uint8_t *out = malloc(out_len);
        for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)t.len >> (8 * i));
        memcpy(out + 8, t.p, t.len);
        memcpy(out + 8 + t.len, b + 8 + h, len - 8 - (size_t)h);
        ok = spill(dst, out, out_len);
        free(out);
        free(t.p);
    }
    free(header);
    free(b);
    return ok;
}

/* src with element `index` of tensor `name` set to v, written to dst. */
static int tamper_value(const char *src, const char *dst, const char *name, size_t index, ct_real v) {
    size_t len;
    uint8_t *b = slurp(src, &len);
    if (!b) return 0;
    uint64_t h = header_len(b);
    char *header = strndup((const char *)b + 8, (size_t)h), pat[256];
    snprintf(pat, sizeof pat, "\"%s\":{", name);
    char *at = strstr(header, pat), *off = at ? strstr(at, "\"data_offsets\":[") : NULL;
    unsigned long long begin;
    int ok = off && sscanf(off, "\"data_offsets\":[%llu", &begin) == 1;
    if (ok) {
        memcpy(b + 8 + h + begin + index * sizeof v, &v, sizeof v);
        ok = spill(dst, b, len);
    }
    free(header);
    free(b);
    return ok;
}

/* fc (3 -> 2), weights from seed; grads set to a fixed pattern. */
static ct_model *fc_model(uint64_t seed) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, seed);
    ct_linear_new(m, "fc", 3, 2);
    return m;
}

static void fake_grads(ct_model *m, int step) {
    for (int i = 0; i < ct_model_param_count(m); i++) {
        ct_tensor *p = ct_model_param(m, i);
        for (size_t k = 0; k < p->size; k++) p->grad[k] = (ct_real)(0.3 * sin(1.7 * (double)k + 0.9 * step + i));
    }
}

/* Everything a load may change, for "unchanged" checks. */
typedef struct {
    double lr, group[4], scalars[8];
    long steps, counts[8];
    ct_real *state, *weights;
    size_t n_state, n_weights;
} optim_snapshot;

static void snap(const ct_optim *o, optim_snapshot *s) {
    memset(s, 0, sizeof *s);
    s->lr = ct_optim_lr(o);
    s->steps = ct_optim_steps(o);
    for (int g = 0; g < 2; g++) s->group[2 * g] = ct_optim_group_lr(o, g), s->group[2 * g + 1] = ct_optim_group_weight_decay(o, g);
    for (int i = 0; i < o->n_scalars && i < 8; i++) {
        if (o->scalars[i].count) s->counts[i] = *o->scalars[i].count;
        else s->scalars[i] = *o->scalars[i].value;
    }
    for (int sl = 0; sl < o->n_slots; sl++)
        for (int k = 0; k < o->n_params; k++) s->n_state += ct_optim_state_tensor(o, sl, k)->size;
    s->state = malloc(s->n_state * sizeof *s->state);
    size_t at = 0;
    for (int sl = 0; sl < o->n_slots; sl++)
        for (int k = 0; k < o->n_params; k++) {
            ct_tensor *t = ct_optim_state_tensor(o, sl, k);
            memcpy(s->state + at, t->data, t->size * sizeof *s->state);
            at += t->size;
        }
    for (int k = 0; k < o->n_params; k++) s->n_weights += o->params[k]->size;
    s->weights = malloc(s->n_weights * sizeof *s->weights);
    at = 0;
    for (int k = 0; k < o->n_params; k++) {
        memcpy(s->weights + at, o->params[k]->data, o->params[k]->size * sizeof *s->weights);
        at += o->params[k]->size;
    }
}

static int same_snap(const optim_snapshot *a, const optim_snapshot *b) {
    return a->lr == b->lr && a->steps == b->steps && !memcmp(a->group, b->group, sizeof a->group) &&
           !memcmp(a->scalars, b->scalars, sizeof a->scalars) && !memcmp(a->counts, b->counts, sizeof a->counts) &&
           a->n_state == b->n_state && !memcmp(a->state, b->state, a->n_state * sizeof *a->state) &&
           a->n_weights == b->n_weights && !memcmp(a->weights, b->weights, a->n_weights * sizeof *a->weights);
}

static void snap_free(optim_snapshot *s) {
    free(s->state);
    free(s->weights);
}

/* NAdam (a running product μ₁⋯μₜ), a second group, a plateau tracker: every kind of loaded number. */
typedef struct {
    ct_model *m;
    ct_optim *opt;
    ct_plateau plateau;
} trainer;

static void trainer_init(trainer *t, uint64_t seed, int steps) {
    t->m = fc_model(seed);
    t->opt = ct_nadam_new(t->m, CT_NADAM(.lr = 0.002));
    ct_optim_add_group(t->opt, ct_param_is_vector, NULL, CT_GROUP(.lr = 0.004, .weight_decay = 0.5));
    t->plateau = ct_plateau_new(0.002, CT_PLATEAU(.patience = 1));
    ct_plateau_attach(&t->plateau, t->opt);
    for (int s = 0; s < steps; s++) {
        fake_grads(t->m, s);
        ct_optim_step(t->opt);
        ct_plateau_step(&t->plateau, 1.0 / (1 + s));
    }
}

static void trainer_free(trainer *t) {
    ct_optim_free(t->opt);
    ct_model_free(t->m);
}

CT_TEST(checkpoint_hostile, optimizer_state_out_of_range_is_refused) {
    const char *dir = ct_test_tmpdir();
    const char *good = path_in(dir, "good.safetensors"), *bad = path_in(dir, "bad.safetensors");
    trainer a, b;
    trainer_init(&a, 1, 3);
    trainer_init(&b, 2, 0);
    int saved = ct_checkpoint_save(a.opt, good);
    trainer_free(&a);
    CHECK(saved == CT_OK, "%s", ct_last_error());
    static const struct {
        const char *key, *value;
        int code;
        const char *expect;
    } metas[] = {
        {"ctape.lr", "nan", CT_ERR_VALUE, "metadata \"ctape.lr\": lr nan must be finite and >= 0"},
        {"ctape.lr", "-0.5", CT_ERR_VALUE, "metadata \"ctape.lr\": lr -0.5 must be finite and >= 0"},
        {"ctape.lr", "inf", CT_ERR_VALUE, "metadata \"ctape.lr\": lr inf must be finite and >= 0"},
        {"ctape.lr", "0.5x", CT_ERR_FORMAT, "metadata \"ctape.lr\" = \"0.5x\" is not a number"},
        {"ctape.step", "-1", CT_ERR_VALUE, "metadata \"ctape.step\": step -1 must be a whole number in [0, 9e15]"},
        {"ctape.step", "2.5", CT_ERR_VALUE, "metadata \"ctape.step\": step 2.5 must be a whole number"},
        {"ctape.group.1.lr_scale", "-2", CT_ERR_VALUE, "metadata \"ctape.group.1.lr_scale\": lr_scale -2 must be finite and >= 0"},
        {"ctape.group.0.lr_scale", "inf", CT_ERR_VALUE, "metadata \"ctape.group.0.lr_scale\": lr_scale inf must be finite"},
        {"ctape.group.1.weight_decay", "nan", CT_ERR_VALUE,
         "metadata \"ctape.group.1.weight_decay\": weight_decay nan must be finite and >= 0"},
        {"ctape.group.0.weight_decay", "-0.001", CT_ERR_VALUE, "weight_decay -0.001 must be finite and >= 0"},
        {"ctape.scalar.mu_product", "nan", CT_ERR_VALUE, "metadata \"ctape.scalar.mu_product\": mu_product nan must be in [0, 1]"},
        {"ctape.scalar.mu_product", "1.5", CT_ERR_VALUE, "mu_product 1.5 must be in [0, 1]"},
        {"ctape.scalar.plateau.lr", "-1", CT_ERR_VALUE, "metadata \"ctape.scalar.plateau.lr\": lr -1 must be finite and >= 0"},
        {"ctape.scalar.plateau.best", "nan", CT_ERR_VALUE, "metadata \"ctape.scalar.plateau.best\": best nan must be a number"},
        {"ctape.scalar.plateau.reports", "-3", CT_ERR_VALUE, "metadata \"ctape.scalar.plateau.reports\": count -3 must be a whole number"},
        {"ctape.scalar.plateau.bad_reports", "1.5", CT_ERR_VALUE, "count 1.5 must be a whole number"},
    };
    optim_snapshot before, after;
    snap(b.opt, &before);
    for (size_t c = 0; c < sizeof metas / sizeof metas[0]; c++) {
        CHECK(tamper_meta(good, bad, metas[c].key, metas[c].value), "%s", metas[c].key);
        int rc = ct_checkpoint_load(b.opt, bad);
        snap(b.opt, &after);
        int same = same_snap(&before, &after);
        snap_free(&after);
        CHECK(rc == metas[c].code, "%s = %s: rc %d: %s", metas[c].key, metas[c].value, rc, ct_last_error());
        CHECK(error_says(bad, metas[c].expect), "%s = %s: \"%s\"", metas[c].key, metas[c].value, ct_last_error());
        CHECK(same, "%s = %s: the optimizer or model changed", metas[c].key, metas[c].value);
    }
    static const struct {
        const char *name;
        size_t index;
        double value;
        const char *expect;
    } values[] = {
        {"fc.weight.exp_avg_sq", 1, -1, "state \"fc.weight.exp_avg_sq\"[1] = -1 must be finite and >= 0"},
        {"fc.weight.exp_avg_sq", 0, INFINITY, "state \"fc.weight.exp_avg_sq\"[0] = inf must be finite"},
        {"fc.bias.exp_avg", 1, NAN, "state \"fc.bias.exp_avg\"[1] = nan must be finite"},
    };
    for (size_t c = 0; c < sizeof values / sizeof values[0]; c++) {
        CHECK(tamper_value(good, bad, values[c].name, values[c].index, (ct_real)values[c].value));
        int rc = ct_checkpoint_load(b.opt, bad);
        snap(b.opt, &after);
        int same = same_snap(&before, &after);
        snap_free(&after);
        CHECK(rc == CT_ERR_VALUE, "%s: rc %d: %s", values[c].name, rc, ct_last_error());
        CHECK(error_says(bad, values[c].expect), "\"%s\"", ct_last_error());
        CHECK(same, "%s: the optimizer or model changed", values[c].name);
    }
    /* a negative first moment is a momentum, not an error */
    CHECK(tamper_value(good, bad, "fc.weight.exp_avg", 0, -3));
    CHECK(ct_checkpoint_load(b.opt, bad) == CT_OK, "%s", ct_last_error());
    CHECK(ct_checkpoint_load(b.opt, good) == CT_OK, "%s", ct_last_error());
    CHECK(ct_optim_steps(b.opt) == 3 && ct_optim_lr(b.opt) == 0.002 && b.plateau.reports == 3);
    snap_free(&before);
    trainer_free(&b);
}

CT_TEST(checkpoint_hostile, ema_load_says_io_format_or_value) {
    const char *dir = ct_test_tmpdir();
    const char *good = path_in(dir, "ema.safetensors"), *bad = path_in(dir, "ema-bad.safetensors");
    ct_model *m = fc_model(3);
    ct_ema *ema = ct_ema_new(m, CT_EMA(.decay = 0.9));
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < ct_model_param_count(m); i++) ct_model_param(m, i)->data[0] += (ct_real)0.25;
        ct_ema_update(ema);
    }
    CHECK(ct_ema_save(ema, good) == CT_OK, "%s", ct_last_error());
    ct_model *m2 = fc_model(4);
    ct_ema *ema2 = ct_ema_new(m2, CT_EMA(.decay = 0.9));
    ct_real w0 = ct_ema_average(ema2, 0)->data[0];
    int rc_missing = ct_ema_load(ema2, path_in(dir, "none.safetensors"));
    CHECK(rc_missing == CT_ERR_IO && error_says("none.safetensors: cannot open", NULL), "%d %s", rc_missing, ct_last_error());
    CHECK(spill(bad, "not a checkpoint at all", 23));
    int rc = ct_ema_load(ema2, bad);
    CHECK(rc == CT_ERR_FORMAT && error_says(bad, "oversized header"), "garbage: %d %s", rc, ct_last_error());
    CHECK(ct_model_save(m, bad) == CT_OK, "%s", ct_last_error());
    rc = ct_ema_load(ema2, bad);
    CHECK(rc == CT_ERR_FORMAT && error_says(bad, "no metadata \"ctape.ema.updates\""), "model file: %d %s", rc, ct_last_error());
    static const struct {
        const char *value;
        int code;
        const char *expect;
    } updates[] = {
        {"-4", CT_ERR_VALUE, "metadata \"ctape.ema.updates\": updates -4 must be a whole number in [0, "},
        {"99999999999999999999", CT_ERR_VALUE, "updates 99999999999999999999 must be a whole number"},
        {"12x", CT_ERR_FORMAT, "metadata \"ctape.ema.updates\" = \"12x\" is not a whole number"},
        {" 12", CT_ERR_FORMAT, "is not a whole number"},
        {"", CT_ERR_FORMAT, "is not a whole number"},
    };
    for (size_t c = 0; c < sizeof updates / sizeof updates[0]; c++) {
        CHECK(tamper_meta(good, bad, "ctape.ema.updates", updates[c].value));
        rc = ct_ema_load(ema2, bad);
        CHECK(rc == updates[c].code && error_says(bad, updates[c].expect), "\"%s\": %d %s", updates[c].value, rc,
              ct_last_error());
    }
    CHECK(tamper_value(good, bad, "fc.weight", 2, (ct_real)NAN));
    rc = ct_ema_load(ema2, bad);
    CHECK(rc == CT_ERR_VALUE && error_says(bad, "average \"fc.weight\"[2] = nan must be finite"), "%d %s", rc, ct_last_error());
    CHECK(ct_ema_updates(ema2) == 0 && ct_ema_average(ema2, 0)->data[0] == w0, "nothing changed");
    CHECK(ct_ema_load(ema2, good) == CT_OK && ct_ema_updates(ema2) == 3, "%s", ct_last_error());
    ct_ema_free(ema);
    ct_ema_free(ema2);
    ct_model_free(m);
    ct_model_free(m2);
}

/* ==== 3. a decimal-comma locale ================================================================ */

/* Is `name` a locale whose decimal point is a comma? (setlocale rather than newlocale: glibc
 * 2.36's newlocale leaks its copy of LOCPATH) */
static int comma_locale(const char *name) {
    char *was = strdup(setlocale(LC_NUMERIC, NULL));
    int comma = setlocale(LC_NUMERIC, name) && !strcmp(localeconv()->decimal_point, ",");
    setlocale(LC_NUMERIC, was);
    free(was);
    return comma;
}

/* A decimal-comma locale's name: an installed one, else de_DE.UTF-8 made with localedef into
 * dir and LOCPATH set to it (*locpath_set = 1). NULL when neither works. Only LC_NUMERIC and
 * the small categories come from de_DE (its collation would take seconds to compile). */
static const char *find_or_make_comma_locale(const char *dir, int *locpath_set, char *why, size_t why_len) {
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR",
                                        "nl_NL.UTF-8", "es_ES.UTF-8", "it_IT.UTF-8", "ru_RU.UTF-8"};
    *locpath_set = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (comma_locale(names[i])) return names[i];
    char src[1024], cmd[3200];
    snprintf(src, sizeof src, "%s/de_DE.src", dir);
    FILE *f = fopen(src, "w");
    if (!f) return snprintf(why, why_len, "cannot write %.400s", src), NULL;
    fputs("LC_COLLATE\ncopy \"POSIX\"\nEND LC_COLLATE\nLC_CTYPE\ncopy \"POSIX\"\nEND LC_CTYPE\n", f);
    static const char *const cats[] = {"LC_NUMERIC", "LC_TIME", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER", "LC_NAME",
                                       "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION"};
    for (size_t i = 0; i < sizeof cats / sizeof *cats; i++) fprintf(f, "%s\ncopy \"de_DE\"\nEND %s\n", cats[i], cats[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "localedef -i '%s' -f UTF-8 '%s/de_DE.UTF-8' 2>&1", src, dir);
    FILE *p = popen(cmd, "r");
    char out[512] = "";
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[got] = 0;
    int status = p ? pclose(p) : -1;
    setenv("LOCPATH", dir, 1);
    *locpath_set = 1;
    if (comma_locale("de_DE.UTF-8")) return "de_DE.UTF-8";
    snprintf(why, why_len, "no decimal-comma locale installed, and localedef (status %d) could not make one from "
             "de_DE (Debian: apt-get install locales): %.300s", status, out);
    return NULL;
}

static int header_has(const char *path, const char *needle) {
    size_t len;
    uint8_t *b = slurp(path, &len);
    if (!b || len < 8) return free(b), 0;
    uint64_t h = header_len(b);
    char *header = strndup((const char *)b + 8, (size_t)h);
    int has = strstr(header, needle) != NULL;
    free(header);
    free(b);
    return has;
}

/* Bit-equal parameters and optimizer state. */
static int same_training_state(const ct_optim *a, const ct_optim *b) {
    optim_snapshot x, y;
    snap(a, &x);
    snap(b, &y);
    int same = same_snap(&x, &y);
    snap_free(&x);
    snap_free(&y);
    return same;
}

/* Saved after setlocale(LC_ALL, "") in a decimal-comma locale: the header says "0.002"; the file
 * loads back bit for bit there, and so does one written in the C locale. */
CT_TEST(checkpoint_hostile, decimal_comma_locale_writes_and_reads_dots) {
    const char *dir = ct_test_tmpdir();
    const char *in_c = path_in(dir, "c.safetensors"), *in_comma = path_in(dir, "comma.safetensors");
    const char *ema_path = path_in(dir, "ema.safetensors");
    char why[600] = "";
    int locpath_set;
    const char *old_locpath = getenv("LOCPATH");
    char *saved_locpath = old_locpath ? strdup(old_locpath) : NULL;
    const char *name = find_or_make_comma_locale(dir, &locpath_set, why, sizeof why);
    if (!name) {
        if (saved_locpath) setenv("LOCPATH", saved_locpath, 1);
        else if (locpath_set) unsetenv("LOCPATH");
        free(saved_locpath);
        CT_SKIP("%s", why);
    }
    trainer a;
    trainer_init(&a, 5, 3); /* NAdam lr 0.002, group 1 lr 0.004 and weight decay 0.5, a plateau */
    CHECK(ct_checkpoint_save(a.opt, in_c) == CT_OK, "%s", ct_last_error());

    char *was = strdup(setlocale(LC_ALL, NULL));
    const char *old_lc_all = getenv("LC_ALL");
    char *saved_lc_all = old_lc_all ? strdup(old_lc_all) : NULL;
    setenv("LC_ALL", name, 1);
    const char *now = setlocale(LC_ALL, "");
    char shown[32];
    snprintf(shown, sizeof shown, "%.3f", 0.002);
    int rc_save = ct_checkpoint_save(a.opt, in_comma);
    ct_ema *ema = ct_ema_new(a.m, CT_EMA(.decay = 0.999));
    int rc_ema = ct_ema_save(ema, ema_path);
    trainer b, c;
    trainer_init(&b, 6, 0);
    trainer_init(&c, 7, 0);
    int rc_load_comma = ct_checkpoint_load(b.opt, in_comma);
    char err_comma[600];
    snprintf(err_comma, sizeof err_comma, "%s", ct_last_error());
    int rc_load_c = ct_checkpoint_load(c.opt, in_c);
    char err_c[600];
    snprintf(err_c, sizeof err_c, "%s", ct_last_error());
    int rc_ema_load = ct_ema_load(ema, ema_path);
    /* back to the locale the run had */
    setlocale(LC_ALL, was);
    if (saved_lc_all) setenv("LC_ALL", saved_lc_all, 1);
    else unsetenv("LC_ALL");
    if (saved_locpath) setenv("LOCPATH", saved_locpath, 1);
    else if (locpath_set) unsetenv("LOCPATH");
    free(saved_lc_all);
    free(saved_locpath);
    free(was);
    ct_ema_free(ema);

    CHECK(now && !strcmp(shown, "0,002"), "%s is in force: printf shows 0.002 as %s", name, shown);
    CHECK(rc_save == CT_OK && rc_ema == CT_OK, "%s", ct_last_error());
    CHECK(header_has(in_comma, "\"ctape.lr\":\"0.002\"") && header_has(in_comma, "\"ctape.group.1.weight_decay\":\"0.5\""),
          "the header has the lr as 0.002");
    CHECK(!header_has(in_comma, "0,002") && !header_has(ema_path, "0,999") && header_has(ema_path, "\"0.999\""),
          "no decimal comma in the headers");
    CHECK(rc_load_comma == CT_OK, "%s", err_comma);
    CHECK(rc_load_c == CT_OK, "a file written in the C locale: %s", err_c);
    CHECK(rc_ema_load == CT_OK);
    CHECK(same_training_state(a.opt, b.opt) && same_training_state(a.opt, c.opt), "bit-exact round trips");
    CHECK(ct_optim_lr(b.opt) == 0.002 && ct_optim_group_weight_decay(c.opt, 1) == 0.5);
    trainer_free(&a);
    trainer_free(&b);
    trainer_free(&c);
    ct_test_note("locale %s%s", name, locpath_set ? " (made with localedef)" : "");
}

/* ==== 4. NULL and freed handles ================================================================ */

/* Under AddressSanitizer reading the freed handle is itself reported (and stops the program):
 * the double free is caught either way, by ASan's report or by ctape's message. */
#if defined(__SANITIZE_ADDRESS__)
#define FREED(msg) "AddressSanitizer"
#else
#define FREED(msg) msg
#endif

static void optim_step_null(void *a) { (void)a; ct_optim_step(NULL); }
static void optim_lr_null(void *a) { (void)a; ct_optim_lr(NULL); }
static void optim_steps_null(void *a) { (void)a; ct_optim_steps(NULL); }
static void optim_set_guards_null(void *a) { (void)a; ct_optim_set_guards(NULL, CT_GUARDS()); }
static void optim_skipped_null(void *a) { (void)a; ct_optim_skipped_steps(NULL); }
static void optim_group_count_null(void *a) { (void)a; ct_optim_group_count(NULL); }
static void optim_free_twice(void *a) {
    (void)a;
    ct_model *m = fc_model(1);
    ct_optim *opt = ct_sgd_new(m, CT_SGD());
    ct_optim_free(opt);
    ct_optim_free(opt);
}
static void optim_step_after_free(void *a) {
    (void)a;
    ct_model *m = fc_model(1);
    ct_optim *opt = ct_adam_new(m, CT_ADAM());
    ct_optim_free(opt);
    ct_optim_step(opt);
}
static void lookahead_base_freed_first(void *a) {
    (void)a;
    ct_model *m = fc_model(1);
    ct_optim *base = ct_sgd_new(m, CT_SGD());
    ct_optim *la = ct_lookahead_new(base, CT_LOOKAHEAD());
    ct_optim_free(base); /* the wrapper owns it: freeing it here is the mistake */
    ct_optim_free(la);
}
static void ema_updates_null(void *a) { (void)a; ct_ema_updates(NULL); }
static void ema_swapped_null(void *a) { (void)a; ct_ema_swapped(NULL); }
static void ema_free_twice(void *a) {
    (void)a;
    ct_model *m = fc_model(1);
    ct_ema *e = ct_ema_new(m, CT_EMA());
    ct_ema_free(e);
    ct_ema_free(e);
}
static void ema_update_after_free(void *a) {
    (void)a;
    ct_model *m = fc_model(1);
    ct_ema *e = ct_ema_new(m, CT_EMA());
    ct_ema_free(e);
    ct_ema_update(e);
}
static void st_count_null(void *a) { (void)a; ct_safetensors_count(NULL); }
static void st_name_null(void *a) { (void)a; ct_safetensors_name(NULL, 0); }
static void st_close_twice(void *path) {
    ct_safetensors *f = ct_safetensors_open((const char *)path);
    if (!f) _exit(0); /* no fatal: the test reports it */
    ct_safetensors_close(f);
    ct_safetensors_close(f);
}

CT_TEST(checkpoint_hostile, null_and_freed_handles_stop_with_a_message) {
    const char *dir = ct_test_tmpdir();
    char file[600];
    snprintf(file, sizeof file, "%s/one.safetensors", dir);
    CHECK(write_st(file, "{" A4 "}", 4, 0));
    static const struct {
        const char *what;
        void (*body)(void *);
        const char *expect;
    } cases[] = {
        {"ct_optim_step(NULL)", optim_step_null, "ct_optim_step: optimizer is NULL"},
        {"ct_optim_lr(NULL)", optim_lr_null, "ct_optim_lr: optimizer is NULL"},
        {"ct_optim_steps(NULL)", optim_steps_null, "ct_optim_steps: optimizer is NULL"},
        {"ct_optim_set_guards(NULL)", optim_set_guards_null, "ct_optim_set_guards: optimizer is NULL"},
        {"ct_optim_skipped_steps(NULL)", optim_skipped_null, "ct_optim_skipped_steps: optimizer is NULL"},
        {"ct_optim_group_count(NULL)", optim_group_count_null, "ct_optim_group_count: optimizer is NULL"},
        {"ct_optim_free twice", optim_free_twice, FREED("ct_optim_free: ")},
        {"ct_optim_step after free", optim_step_after_free, FREED("ct_optim_step: ")},
        {"a Lookahead's base freed first", lookahead_base_freed_first, FREED("ct_optim_free: ")},
        {"ct_ema_updates(NULL)", ema_updates_null, "ct_ema_updates: EMA is NULL"},
        {"ct_ema_swapped(NULL)", ema_swapped_null, "ct_ema_swapped: EMA is NULL"},
        {"ct_ema_free twice", ema_free_twice, FREED("ct_ema_free: ")},
        {"ct_ema_update after free", ema_update_after_free, FREED("ct_ema_update: ")},
        {"ct_safetensors_count(NULL)", st_count_null, "ct_safetensors_count: file is NULL"},
        {"ct_safetensors_name(NULL)", st_name_null, "ct_safetensors_name: file is NULL"},
        {"ct_safetensors_close twice", st_close_twice, FREED("ct_safetensors_close: ")},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char got[2048];
        int ok = ct_test_expect_fatal(cases[c].body, file, cases[c].expect, got, sizeof got);
#if !defined(__SANITIZE_ADDRESS__)
        /* a freed handle is named as such, not as some other mistake */
        if (ok && strstr(cases[c].expect, ": ") && !strstr(cases[c].expect, "NULL"))
            ok = strstr(got, "freed already") || strstr(got, "closed already");
#endif
        CHECK(ok, "%s: stderr \"%s\", want \"%s\"", cases[c].what, got, cases[c].expect);
    }
    /* NULL to a free or close does nothing, as free(NULL) */
    ct_optim_free(NULL);
    ct_ema_free(NULL);
    ct_safetensors_close(NULL);
}
