/* tests/nn/test_checkpoint.c — safetensors checkpoints (core/safetensors.c, nn/save.c): the exact
 * bytes written, round trips, the generic named-tensor API, dtype conversions, every way a file
 * can be broken (each load must fail with the file and the tensor named and leave the model
 * bit-for-bit as it was), and PyTorch interop through tests/reference/ (gen_checkpoint.py).
 * Atomic saves are in tests/nn/test_checkpoint_atomic.c.
 *
 * Files are written by hand into ct_test_tmpdir(). */
#include "../test.h"
#include "../reference/checkpoint_ref.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CT_PRECISION_64
#define DTYPE "F64"
#define REF_ATOL 1e-12
#else
#define DTYPE "F32"
#define REF_ATOL 2e-6
#endif

/* ---- helpers ----------------------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(data, 1, len, f);
    return fclose(f) == 0 && put == len;
}

/* The whole file, malloc'd (NULL when it cannot be read). */
static uint8_t *read_bytes(const char *path, size_t *len) {
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

/* A safetensors file: header length `len` (the header's own when len is ~0), header, then
 * data_len bytes of 0x41 (each float32 12.07…, nothing a model holds by accident). */
#define OWN_LEN (~(uint64_t)0)
static int write_st(const char *path, uint64_t len, const char *header, size_t data_len) {
    size_t h = strlen(header);
    if (len == OWN_LEN) len = h;
    uint8_t *b = malloc(8 + h + data_len + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(len >> (8 * i));
    memcpy(b + 8, header, h);
    memset(b + 8 + h, 0x41, data_len);
    int ok = write_bytes(path, b, 8 + h + data_len);
    free(b);
    return ok;
}

/* Every parameter and buffer value of m, concatenated (to compare after a failed load). */
static ct_real *snapshot(const ct_model *m, size_t *n) {
    size_t total = 0;
    for (int i = 0; i < ct_model_param_count(m); i++) total += ct_model_param(m, i)->size;
    for (int i = 0; i < ct_model_buffer_count(m); i++) total += ct_model_buffer(m, i)->size;
    ct_real *s = malloc((total ? total : 1) * sizeof *s), *p = s;
    for (int i = 0; i < ct_model_param_count(m); i++, p += ct_model_param(m, i - 1)->size)
        memcpy(p, ct_model_param(m, i)->data, ct_model_param(m, i)->size * sizeof *p);
    for (int i = 0; i < ct_model_buffer_count(m); i++, p += ct_model_buffer(m, i - 1)->size)
        memcpy(p, ct_model_buffer(m, i)->data, ct_model_buffer(m, i)->size * sizeof *p);
    *n = total;
    return s;
}

static int unchanged(const ct_model *m, const ct_real *before, size_t n) {
    size_t k;
    ct_real *now = snapshot(m, &k);
    int same = k == n && memcmp(now, before, n * sizeof *now) == 0;
    free(now);
    return same;
}

/* Names in dir that look like our temporary files ("<name>.tmp-XXXXXX"). */
static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

/* The model of tests/reference/gen_checkpoint.py: fc1 (4 -> 8), fc2 (8 -> 3), buffers "scale"
 * (3,) and "steps" (); forward(x) = fc2(relu(fc1(x))) * scale. */
typedef struct {
    ct_model *m;
    ct_module *fc1, *fc2;
    ct_tensor *scale, *steps;
} mlp;

static mlp mlp_new(uint64_t seed) {
    mlp n;
    n.m = ct_model_new();
    ct_model_set_seed(n.m, seed);
    n.fc1 = ct_linear_new(n.m, "fc1", CKPT_REF_IN, CKPT_REF_HIDDEN);
    n.fc2 = ct_linear_new(n.m, "fc2", CKPT_REF_HIDDEN, CKPT_REF_OUT);
    n.scale = ct_model_add_buffer(n.m, "scale", CT_SHAPE(CKPT_REF_OUT));
    n.steps = ct_model_add_buffer(n.m, "steps", CT_SHAPE_SCALAR);
    ct_tensor_fill(n.scale, 1);
    return n;
}

/* Deterministic float32-representable values, independent of any layer's init. */
static void mlp_fill_fixed(mlp *n) {
    ct_model *m = n->m;
    for (int i = 0; i < ct_model_param_count(m); i++) {
        ct_tensor *p = ct_model_param(m, i);
        for (size_t k = 0; k < p->size; k++) p->data[k] = (ct_real)(float)(0.5 * sin(0.37 * (double)k + i));
    }
    const float scale[CKPT_REF_OUT] = {0.5f, -1.25f, 2.0f};
    for (int k = 0; k < CKPT_REF_OUT; k++) n->scale->data[k] = scale[k];
    n->steps->data[0] = 3;
}

/* forward on the reference input; out gets CKPT_REF_N × CKPT_REF_OUT values. */
static void mlp_run(mlp *n, ct_real *out) {
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    ct_real in[CKPT_REF_N * CKPT_REF_IN];
    for (int i = 0; i < CKPT_REF_N * CKPT_REF_IN; i++) in[i] = (ct_real)ckpt_ref_in[i];
    ct_tensor *x = ct_tape_tensor_from(tape, CT_SHAPE(CKPT_REF_N, CKPT_REF_IN), in);
    ct_tensor *y = ct_mul(tape, ct_forward(tape, n->fc2, ct_relu(tape, ct_forward(tape, n->fc1, x))), n->scale);
    memcpy(out, y->data, y->size * sizeof *out);
    ct_tape_free(tape);
}

/* ---- the bytes ct_model_save writes ------------------------------------------------------ */

CT_TEST(checkpoint, save_writes_the_reference_layout) {
    const char *dir = ct_test_tmpdir();
    ct_model *m = ct_model_new();
    /* registered out of name order: the file is sorted by name */
    ct_tensor *b = ct_model_add_param(m, "b", CT_SHAPE(2));
    ct_tensor *a = ct_model_add_param(m, "a", CT_SHAPE(1, 2));
    ct_tensor *c = ct_model_add_buffer(m, "c", CT_SHAPE_SCALAR);
    a->data[0] = 1, a->data[1] = 2, b->data[0] = 3, b->data[1] = 4, c->data[0] = 5;
    const char *path = path_in(dir, "m.safetensors");
    int rc = ct_model_save(m, path);
    ct_model_free(m);
    CHECK(rc == CT_OK, "%s", ct_last_error());

    size_t r = sizeof(ct_real);
    char want[512];
    snprintf(want, sizeof want,
             "{\"__metadata__\":{\"format\":\"pt\",\"framework\":\"ctape\"},"
             "\"a\":{\"dtype\":\"" DTYPE "\",\"shape\":[1,2],\"data_offsets\":[0,%zu]},"
             "\"b\":{\"dtype\":\"" DTYPE "\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
             "\"c\":{\"dtype\":\"" DTYPE "\",\"shape\":[],\"data_offsets\":[%zu,%zu]}}",
             2 * r, 2 * r, 4 * r, 4 * r, 5 * r);
    size_t len = 0;
    uint8_t *got = read_bytes(path, &len);
    CHECK(got && len >= 8);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)got[i] << (8 * i);
    size_t wl = strlen(want);
    int ok_len = (8 + n) % 8 == 0 && n >= wl && n - wl < 8 && len == 8 + n + 5 * r;
    int ok_json = ok_len && memcmp(got + 8, want, wl) == 0;
    int ok_pad = ok_len;
    for (size_t i = 8 + wl; ok_len && i < 8 + n; i++) ok_pad &= got[i] == ' ';
    ct_real data[5];
    if (ok_len) memcpy(data, got + 8 + n, sizeof data);
    char head[600] = "";
    if (got) snprintf(head, sizeof head, "%.*s", (int)(len - 8 < 599 ? len - 8 : 599), (const char *)got + 8);
    free(got);
    CHECK(ok_len, "header length %llu, file %zu bytes (want header %zu padded to 8k - 8, then %zu data bytes)",
          (unsigned long long)n, len, wl, 5 * r);
    CHECK(ok_json, "header is\n%s\nwant\n%s", head, want);
    CHECK(ok_pad, "the header is padded with spaces");
    CHECK(data[0] == 1 && data[1] == 2 && data[2] == 3 && data[3] == 4 && data[4] == 5, "data in name order, raw");
}

CT_TEST(checkpoint, round_trip_is_bit_identical) {
    const char *dir = ct_test_tmpdir();
    mlp n = mlp_new(5);
    n.steps->data[0] = 12345;
    /* awkward values: signed zero, a subnormal, the largest finite values, epsilon (infinities
     * and NaN are refused by ct_model_save: they round-trip through ct_safetensors_write below) */
    ct_tensor *w = ct_linear_weight(n.fc1);
    const ct_real big = sizeof(ct_real) == 4 ? (ct_real)3.4028234663852886e38 : (ct_real)1.7976931348623157e308;
    w->data[0] = (ct_real)-0.0, w->data[1] = (ct_real)1e-40, w->data[2] = big;
    w->data[3] = -big, w->data[4] = (ct_real)1e-45, w->data[5] = CT_REAL_EPS;
    size_t count;
    ct_real *saved = snapshot(n.m, &count);
    const char *path = path_in(dir, "mlp.safetensors");
    int rc_save = ct_model_save(n.m, path);
    for (int i = 0; i < ct_model_param_count(n.m); i++) ct_tensor_fill(ct_model_param(n.m, i), 0.25);
    for (int i = 0; i < ct_model_buffer_count(n.m); i++) ct_tensor_fill(ct_model_buffer(n.m, i), -7);
    int rc_load = ct_model_load(n.m, path);
    const char *err = ct_last_error();
    int same = unchanged(n.m, saved, count);
    /* a second model, built in another order with other values, loads the same file */
    ct_model *other = ct_model_new();
    ct_model_add_buffer(other, "steps", CT_SHAPE_SCALAR);
    ct_linear_new(other, "fc2", CKPT_REF_HIDDEN, CKPT_REF_OUT);
    ct_model_add_buffer(other, "scale", CT_SHAPE(CKPT_REF_OUT));
    ct_linear_new(other, "fc1", CKPT_REF_IN, CKPT_REF_HIDDEN);
    int rc_other = ct_model_load(other, path);
    int same_other = rc_other == CT_OK &&
                     memcmp(ct_model_find_param(other, "fc1.weight")->data, w->data, w->size * sizeof(ct_real)) == 0 &&
                     ct_model_find_buffer(other, "steps")->data[0] == 12345;
    free(saved);
    ct_model_free(other);
    ct_model_free(n.m);
    CHECK(rc_save == CT_OK && rc_load == CT_OK, "%s", err);
    CHECK(same, "every parameter and buffer comes back bit for bit");
    CHECK(same_other, "load is by name, whatever the registration order");
    CHECK(count_temp_files(dir) == 0, "no temporary file is left behind");
    /* infinities and a NaN payload, through the generic writer */
    ct_tensor *odd = ct_tensor_new(CT_SHAPE(3)), *back = ct_tensor_new(CT_SHAPE(3));
    odd->data[0] = (ct_real)INFINITY, odd->data[1] = (ct_real)-INFINITY, odd->data[2] = (ct_real)NAN;
    const char *odd_path = path_in(dir, "odd.safetensors"), *name = "odd";
    int rc_odd = ct_safetensors_write(odd_path, 1, &name, &odd, NULL);
    ct_safetensors *f = rc_odd == CT_OK ? ct_safetensors_open(odd_path) : NULL;
    int rc_back = f ? ct_safetensors_load(f, 1, &name, &back) : CT_ERR_IO;
    ct_safetensors_close(f);
    int same_odd = !memcmp(odd->data, back->data, 3 * sizeof(ct_real));
    ct_tensor_free(odd);
    ct_tensor_free(back);
    CHECK(rc_odd == CT_OK && rc_back == CT_OK, "%s", ct_last_error());
    CHECK(same_odd, "Inf, -Inf and a NaN payload come back bit for bit");
}

CT_TEST(checkpoint, save_replaces_a_file_with_the_umask_permissions) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "model.safetensors");
    CHECK(write_bytes(path, "an older checkpoint", 19));
    chmod(path, 0600);
    mlp n = mlp_new(1);
    mode_t mask = umask(022);
    int rc = ct_model_save(n.m, path);
    umask(mask);
    struct stat st;
    int st_ok = stat(path, &st) == 0;
    ct_model_free(n.m);
    CHECK(rc == CT_OK, "%s", ct_last_error());
    CHECK(st_ok && (st.st_mode & 0777) == 0644, "mode %o: a new file made under umask 022 (not mkstemp's 0600)",
          st_ok ? (unsigned)(st.st_mode & 0777) : 0u);
    ct_safetensors *f = ct_safetensors_open(path);
    CHECK(f, "%s", ct_last_error());
    int count = ct_safetensors_count(f);
    ct_safetensors_close(f);
    CHECK(count == 6, "fc1.weight, fc1.bias, fc2.weight, fc2.bias, scale, steps: got %d", count);
    CHECK(count_temp_files(dir) == 0);
}

/* ---- the generic named-tensor API -------------------------------------------------------- */

CT_TEST(checkpoint, named_tensors_with_metadata_and_odd_names) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "state.safetensors");
    ct_tensor *t[3] = {ct_tensor_new(CT_SHAPE(2, 3)), ct_tensor_new(CT_SHAPE(0)), ct_tensor_new(CT_SHAPE(1, 1, 1, 1, 1, 2))};
    for (size_t k = 0; k < 6; k++) t[0]->data[k] = (ct_real)k - 2;
    t[2]->data[0] = 9, t[2]->data[1] = -9;
    /* quotes, backslashes, control characters and non-ASCII go through JSON escaping */
    const char *names[3] = {"exp_avg.\"quoted\"\\x", "empty\n\ttab", "caf\xc3\xa9.\xf0\x9f\x98\x80"};
    const char *meta[] = {"optimizer", "adam", "step", "100", "note", "\"hi\"\x01\\", NULL};
    int rc = ct_safetensors_write(path, 3, names, t, meta);
    CHECK(rc == CT_OK, "%s", ct_last_error());
    ct_safetensors *f = ct_safetensors_open(path);
    CHECK(f, "%s", ct_last_error());
    int ok_meta = ct_safetensors_metadata(f, "step") && !strcmp(ct_safetensors_metadata(f, "step"), "100") &&
                  !strcmp(ct_safetensors_metadata(f, "note"), "\"hi\"\x01\\") && !ct_safetensors_metadata(f, "lr") &&
                  !strcmp(ct_safetensors_metadata(f, "optimizer"), "adam");
    /* listed by name (byte order): "caf\xc3..." < "empty..." < "exp_avg..." */
    int ok_list = ct_safetensors_count(f) == 3 && !strcmp(ct_safetensors_name(f, 0), names[2]) &&
                  !strcmp(ct_safetensors_name(f, 1), names[1]) && !strcmp(ct_safetensors_name(f, 2), names[0]) &&
                  ct_safetensors_shape(f, 0).ndim == 6 && ct_safetensors_shape(f, 1).d[0] == 0 &&
                  ct_safetensors_shape(f, 2).d[1] == 3 && !strcmp(ct_safetensors_dtype(f, 0), DTYPE);
    ct_tensor *back[3] = {ct_tensor_new(CT_SHAPE(2, 3)), ct_tensor_new(CT_SHAPE(0)), ct_tensor_new(CT_SHAPE(1, 1, 1, 1, 1, 2))};
    int rc_load = ct_safetensors_load(f, 3, names, back);
    int same = rc_load == CT_OK && !memcmp(back[0]->data, t[0]->data, 6 * sizeof(ct_real)) && back[2]->data[1] == -9;
    /* asking for only some of them is an error naming one that was not asked for */
    ct_real keep = back[0]->data[0] = 77;
    int rc_part = ct_safetensors_load(f, 1, names, back);
    char err[1024];
    snprintf(err, sizeof err, "%s", ct_last_error());
    int part_untouched = back[0]->data[0] == keep;
    ct_safetensors_close(f);
    for (int i = 0; i < 3; i++) ct_tensor_free(t[i]), ct_tensor_free(back[i]);
    CHECK(ok_meta, "metadata reads back exactly");
    CHECK(ok_list, "names, shapes and dtype read back, sorted by name");
    CHECK(same, "values read back: %s", ct_last_error());
    CHECK(rc_part != CT_OK && strstr(err, path) && strstr(err, "was not asked for") && strstr(err, "; 2 tensors"),
          "got \"%s\"", err);
    CHECK(part_untouched, "a failed load writes nothing");
}

CT_TEST(checkpoint, dtypes_convert_to_real) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "dtypes.safetensors");
    /* a file as another framework might write it: every dtype ctape reads, little endian */
    const char *header = "{\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                         "\"i64\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[16,32]},"
                         "\"f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[32,36]},"
                         "\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[36,44]},"
                         "\"f16\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[44,56]},"
                         "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[56,62]}}";
    uint8_t data[62];
    double f64[2] = {0.1, -2.5};
    int64_t i64[2] = {-3, (int64_t)1 << 40};
    float f32[1] = {0.1f};
    int32_t i32[2] = {-7, 123456};
    uint16_t f16[6] = {0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00, 0xfbff};
    uint16_t bf16[3] = {0x3f80, 0xc0a0, 0x4049};
    memcpy(data, f64, 16), memcpy(data + 16, i64, 16), memcpy(data + 32, f32, 4), memcpy(data + 36, i32, 8);
    memcpy(data + 44, f16, 12), memcpy(data + 56, bf16, 6); /* this host is little endian, as the format */
    size_t h = strlen(header);
    uint8_t *file = malloc(8 + h + sizeof data);
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(file + 8, header, h), memcpy(file + 8 + h, data, sizeof data);
    int written = write_bytes(path, file, 8 + h + sizeof data);
    free(file);
    CHECK(written);
    ct_safetensors *f = ct_safetensors_open(path);
    CHECK(f, "%s", ct_last_error());
    const char *names[6] = {"f64", "i64", "f32", "i32", "f16", "bf16"};
    ct_tensor *t[6] = {ct_tensor_new(CT_SHAPE(2)), ct_tensor_new(CT_SHAPE(2)), ct_tensor_new(CT_SHAPE(1)),
                       ct_tensor_new(CT_SHAPE(2)), ct_tensor_new(CT_SHAPE(6)), ct_tensor_new(CT_SHAPE(3))};
    int rc = ct_safetensors_load(f, 6, names, t);
    const char *dt = ct_safetensors_dtype(f, 0); /* by name: "bf16" first */
    int dt_ok = !strcmp(dt, "BF16");
    ct_safetensors_close(f);
    ct_real want[6][6] = {{(ct_real)0.1, -2.5}, {-3, (ct_real)1099511627776.0}, {(ct_real)0.1f},
                          {-7, 123456}, {1, -2, (ct_real)0.333251953125, (ct_real)5.9604644775390625e-08, (ct_real)INFINITY, -65504},
                          {1, -5, (ct_real)3.140625}};
    int bad = -1;
    for (int i = 0; i < 6 && bad < 0; i++)
        for (size_t k = 0; k < t[i]->size; k++)
            if (t[i]->data[k] != want[i][k]) bad = i;
    double got_bad = bad >= 0 ? (double)t[bad]->data[0] : 0;
    for (int i = 0; i < 6; i++) ct_tensor_free(t[i]);
    CHECK(rc == CT_OK, "%s", ct_last_error());
    CHECK(dt_ok, "dtype of the first tensor by name is %s", dt);
    CHECK(bad < 0, "%s converted wrong (first value %g)", names[bad], got_bad);
}

/* ---- broken files: each fails, names the file (and the tensor), changes nothing ----------- */

#define BIAS "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"
#define WEIGHT "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[12,36]}"

typedef struct {
    const char *what;
    const char *header;
    size_t data_len;
    const char *expect[2]; /* substrings of the error, besides the path */
} bad_file;

static const bad_file bad_files[] = {
    /* the JSON itself */
    {"no closing brace", "{" BIAS "," WEIGHT, 36, {"malformed JSON header at byte 127", "expected ',' or '}'"}},
    {"trailing comma", "{" BIAS "," WEIGHT ",}", 36, {"malformed JSON header at byte 128", "expected a string, found '}'"}},
    {"unquoted key", "{fc1:{}}", 36, {"at byte 1:", "expected a string, found 'f'"}},
    {"single quotes", "{'fc1.bias':{}}", 36, {"at byte 1:", "found '''"}},
    {"missing colon", "{\"fc1.bias\" {}}", 36, {"at byte 12:", "expected ':'"}},
    {"bad escape", "{\"fc1\\x\":{}}", 36, {"at byte 5:", "invalid escape '\\x'"}},
    {"short \\u", "{\"fc1\\u12\":{}}", 36, {"at byte 5:", "four hex digits"}},
    {"raw control character", "{\"fc1\x01\":{}}", 36, {"at byte 5:", "control character 0x01"}},
    {"unterminated string", "{\"fc1.bias", 36, {"at byte 1:", "unterminated string"}},
    {"\\u0000 in a name", "{\"fc1\\u0000\":{}}", 36, {"at byte 5:", "\\u0000"}},
    {"lone low surrogate", "{\"\\udc00\":{}}", 36, {"at byte 2:", "unpaired low surrogate"}},
    {"high surrogate alone", "{\"\\ud800x\":{}}", 36, {"at byte 2:", "high surrogate"}},
    {"invalid UTF-8", "{\"fc1\xff\":{}}", 36, {"at byte 5:", "invalid UTF-8"}},
    {"overlong UTF-8", "{\"\xc0\xaf\":{}}", 36, {"at byte 2:", "invalid UTF-8"}},
    {"fraction", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[3.0]", 36, {"at byte 37:", "fraction or exponent"}},
    {"exponent", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[3e0]", 36, {"at byte 37:", "fraction or exponent"}},
    {"negative offset", "{\"fc1.bias\":{\"data_offsets\":[-1,12]}}", 36, {"at byte 29:", "negative"}},
    {"leading zero", "{\"fc1.bias\":{\"shape\":[03]}}", 36, {"at byte 22:", "leading zero"}},
    {"huge integer", "{\"fc1.bias\":{\"shape\":[99999999999999999999]}}", 36, {"at byte 22:", "too large"}},
    {"true for a string", "{\"fc1.bias\":{\"dtype\":true}}", 36, {"at byte 21:", "expected a string, found 't'"}},
    {"null for a shape", "{\"fc1.bias\":{\"shape\":null}}", 36, {"at byte 21:", "expected '['"}},
    {"tensor is an array", "{\"fc1.bias\":[]}", 36, {"at byte 12:", "expected '{' (a tensor's description)"}},
    {"top-level array", "[" BIAS "]", 36, {"at byte 0:", "expected '{'"}},
    {"leading blank", " {" BIAS "," WEIGHT "}", 36, {"at byte 0:", "found ' '"}},
    {"data after the object", "{" BIAS "," WEIGHT "} x", 36, {"at byte 129:", "unexpected data after the JSON object"}},
    {"two objects", "{}{}", 36, {"at byte 2:", "unexpected data after"}},
    {"empty header text", "        ", 36, {"at byte 0:", "expected '{'"}},
    {"duplicate tensor", "{" BIAS "," BIAS "," WEIGHT "}", 36, {"tensor \"fc1.bias\" appears twice", NULL}},
    {"duplicate field", "{\"fc1.bias\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 36, {"\"fc1.bias\": \"dtype\" appears twice", NULL}},
    {"unknown field", "{\"fc1.bias\":{\"dtype\":\"F32\",\"strides\":[1]}}", 36, {"tensor \"fc1.bias\": unknown field \"strides\"", NULL}},
    {"three offsets", "{\"fc1.bias\":{\"data_offsets\":[0,12,24]}}", 36, {"at byte 36:", "tensor \"fc1.bias\": data_offsets has more than 2 entries"}},
    {"one offset", "{\"fc1.bias\":{\"data_offsets\":[0]}}", 36, {"\"fc1.bias\": data_offsets needs 2 entries, has 1", NULL}},
    {"metadata value not a string", "{\"__metadata__\":{\"format\":1}," BIAS "," WEIGHT "}", 36, {"__metadata__ value of \"format\" is not a string", NULL}},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}," BIAS "," WEIGHT "}", 36, {"\"__metadata__\" appears twice", NULL}},
    {"metadata key twice", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 36, {"__metadata__ key \"a\" appears twice", NULL}},
    /* well-formed JSON, wrong safetensors */
    {"no dtype", "{\"fc1.bias\":{\"shape\":[3],\"data_offsets\":[0,12]}," WEIGHT "}", 36, {"tensor \"fc1.bias\" has no \"dtype\"", NULL}},
    {"no shape", "{\"fc1.bias\":{\"dtype\":\"F32\",\"data_offsets\":[0,12]}," WEIGHT "}", 36, {"tensor \"fc1.bias\" has no \"shape\"", NULL}},
    {"no offsets", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[3]}," WEIGHT "}", 36, {"tensor \"fc1.bias\" has no \"data_offsets\"", NULL}},
    {"unknown dtype", "{\"fc1.bias\":{\"dtype\":\"F33\",\"shape\":[3],\"data_offsets\":[0,12]}," WEIGHT "}", 36,
     {"tensor \"fc1.bias\" has dtype \"F33\"", "does not read"}},
    {"unsupported dtype", "{\"fc1.bias\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}," WEIGHT "}", 36,
     {"tensor \"fc1.bias\" has dtype \"U8\"", "(F32, F64, F16, BF16, I64, I32)"}},
    {"seven dims", "{\"fc1.bias\":{\"shape\":[1,1,1,1,1,1,3]}}", 36, {"at byte 35:", "tensor \"fc1.bias\" has more than 6 dimensions"}},
    {"dim over int", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,12]}}", 36,
     {"tensor \"fc1.bias\": dimension 0 is 4294967296", NULL}},
    {"size disagrees with shape", "{" BIAS ",\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[12,36]}}", 36,
     {"tensor \"fc1.weight\" is F32 (3, 3) (36 bytes) but its data_offsets [12, 36] span 24 bytes", NULL}},
    {"size overflows", "{" BIAS ",\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[12,36]}}", 36,
     {"tensor \"fc1.weight\" is F32", "(more than 2^64 bytes)"}},
    {"begin after end", "{" BIAS ",\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[36,12]}}", 36,
     {"tensor \"fc1.weight\" has data_offsets [36, 12]: begin is after end", NULL}},
    {"offsets past the end", "{" BIAS "," WEIGHT "}", 30, {"tensor \"fc1.weight\" has data_offsets [12, 36] past the end of the data (30 bytes", NULL}},
    {"overlapping offsets", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}," WEIGHT "}", 36,
     {"tensors \"fc1.bias\" (bytes 8..20) and \"fc1.weight\" (bytes 12..36) overlap", NULL}},
    {"one tensor inside another", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]},"
     "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]}}", 36,
     {"tensors \"fc1.weight\" (bytes 0..24) and \"fc1.bias\" (bytes 16..28) overlap", NULL}},
    /* good file, wrong model */
    {"wrong shape", "{" BIAS ",\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[12,36]}}", 36,
     {"tensor \"fc1.weight\" has shape (2, 3) in the file but (3, 2) in the model", NULL}},
    {"wrong rank", "{\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[1,3],\"data_offsets\":[0,12]}," WEIGHT "}", 36,
     {"tensor \"fc1.bias\" has shape (1, 3) in the file but (3,) in the model", NULL}},
    {"missing tensor", "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}}", 24, {"tensor \"fc1.bias\" is missing from the file (the model has it, shape (3,))", NULL}},
    {"no tensors at all", "{}", 0, {"tensor \"fc1.weight\" is missing from the file", "2 tensors are missing in all"}},
    {"extra tensor", "{" BIAS "," WEIGHT ",\"fc2.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[36,40]}}", 40,
     {"tensor \"fc2.bias\" is in the file but not in the model", NULL}},
};

/* fc1.weight (3, 2) and fc1.bias (3): what the files above describe (or fail to). */
static ct_model *small_model(void) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_linear_new(m, "fc1", 2, 3);
    return m;
}

CT_TEST(checkpoint, broken_files_fail_and_change_nothing) {
    const char *dir = ct_test_tmpdir();
    ct_model *m = small_model();
    size_t count;
    ct_real *before = snapshot(m, &count);
    /* the base file loads: the cases below differ from it in one thing each */
    const char *good = path_in(dir, "good.safetensors");
    CHECK(write_st(good, OWN_LEN, "{" BIAS "," WEIGHT "}", 36) && ct_model_load(m, good) == CT_OK, "%s", ct_last_error());
    CHECK(ct_model_find_param(m, "fc1.bias")->data[0] != before[0], "the good file loads its 0x41 bytes");
    free(before);
    before = snapshot(m, &count);
    ct_set_error(CT_OK, "no error");
    for (size_t c = 0; c < sizeof bad_files / sizeof bad_files[0]; c++) {
        const bad_file *b = &bad_files[c];
        char name[64];
        snprintf(name, sizeof name, "bad%02zu.safetensors", c);
        const char *path = path_in(dir, name);
        CHECK(write_st(path, OWN_LEN, b->header, b->data_len));
        int rc = ct_model_load(m, path);
        const char *err = ct_last_error();
        int named = strstr(err, path) != NULL;
        int said = strstr(err, b->expect[0]) && (!b->expect[1] || strstr(err, b->expect[1]));
        int same = unchanged(m, before, count);
        if (rc == CT_OK || !named || !said || !same) free(before);
        CHECK(rc != CT_OK, "%s: the load succeeded", b->what);
        CHECK(named && said, "%s: error \"%s\" should name the file and say \"%s\"%s%s", b->what, err, b->expect[0],
              b->expect[1] ? " and " : "", b->expect[1] ? b->expect[1] : "");
        CHECK(same, "%s: the model changed", b->what);
    }
    free(before);
    ct_model_free(m);
    ct_test_note("%zu broken headers", sizeof bad_files / sizeof bad_files[0]);
}

/* The first 8 bytes and what follows them. */
CT_TEST(checkpoint, broken_lengths_fail_and_change_nothing) {
    const char *dir = ct_test_tmpdir();
    ct_model *m = small_model();
    size_t count;
    ct_real *before = snapshot(m, &count);
    const char *good_header = "{" BIAS "," WEIGHT "}";
    size_t h = strlen(good_header);
    struct {
        const char *what;
        int raw;          /* write `file` (raw_len bytes) as is; else a header of header_len */
        const char *file;
        size_t raw_len;
        uint64_t header_len;
        size_t data_len;
        const char *expect;
    } cases[] = {
        {"empty file", 1, "", 0, 0, 0, "file is truncated: 0 bytes"},
        {"five bytes", 1, "\x10\0\0\0\0", 5, 0, 0, "file is truncated: 5 bytes"},
        {"header length 0", 1, "\0\0\0\0\0\0\0\0{}", 10, 0, 0, "the header length is 0"},
        {"header length 0, nothing else", 1, "\0\0\0\0\0\0\0\0", 8, 0, 0, "the header length is 0"},
        {"garbage length (a zip file)", 1, "PK\x03\x04\x14\0\0\0\0\0!\0", 12, 0, 0, "oversized header: the header length is"},
        {"length past the file", 0, NULL, 0, 1000, 36, "oversized header: the header length is 1000 bytes but only 164 bytes follow it"},
        {"length one past the header", 0, NULL, 0, 0, 0, "oversized header"}, /* header_len set below */
        {"length short of the header", 0, NULL, 0, 0, 36, "malformed JSON header at byte"},
        {"truncated data", 0, NULL, 0, 0, 35, "past the end of the data (35 bytes; is the file truncated?)"},
    };
    cases[6].header_len = h + 1;
    cases[7].header_len = h - 3;
    cases[8].header_len = h;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "len%zu.safetensors", c);
        const char *path = path_in(dir, name);
        int ok = cases[c].raw ? write_bytes(path, cases[c].file, cases[c].raw_len)
                              : write_st(path, cases[c].header_len, good_header, cases[c].data_len);
        CHECK(ok);
        int rc = ct_model_load(m, path);
        const char *err = ct_last_error();
        int said = strstr(err, path) && strstr(err, cases[c].expect);
        int same = unchanged(m, before, count);
        if (rc == CT_OK || !said || !same) free(before);
        CHECK(rc != CT_OK, "%s: the load succeeded", cases[c].what);
        CHECK(said, "%s: error \"%s\" should name the file and say \"%s\"", cases[c].what, err, cases[c].expect);
        CHECK(same, "%s: the model changed", cases[c].what);
    }

    /* Over the 100 MB cap, in a sparse file that really is that long (no disk used). */
    const char *big = path_in(dir, "big.safetensors");
    uint64_t huge = 100000001;
    int made = write_st(big, huge, good_header, 36) && truncate(big, (off_t)(8 + huge + 64)) == 0;
    int rc = made ? ct_model_load(m, big) : CT_OK;
    const char *err = ct_last_error();
    int said = strstr(err, big) && strstr(err, "oversized header: 100000001 bytes (the limit is 100000000)");
    unlink(big);
    /* Not a file at all. */
    int rc_missing = ct_model_load(m, path_in(dir, "nothing-here.safetensors"));
    char err_missing[1024];
    snprintf(err_missing, sizeof err_missing, "%s", ct_last_error());
    int rc_dir = ct_model_load(m, dir);
    int said_dir = strstr(ct_last_error(), "not a regular file") != NULL;
    int same = unchanged(m, before, count);
    free(before);
    ct_model_free(m);
    CHECK(made, "could not make the sparse file");
    CHECK(rc == CT_ERR_FORMAT && said, "over the cap: \"%s\"", err);
    CHECK(rc_missing == CT_ERR_IO && strstr(err_missing, "nothing-here.safetensors: cannot open"), "%s", err_missing);
    CHECK(rc_dir == CT_ERR_IO && said_dir, "%s", ct_last_error());
    CHECK(same);
}

/* Seeded mutations of a good file: a byte of the header set to a random or a JSON-significant
 * value, or the file cut short. Each load either succeeds or fails naming the file with the model
 * unchanged; under SANITIZE=1 this is also a small fuzz of the parser's memory safety. */
CT_TEST(checkpoint, mutated_files_never_half_load) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "mutant.safetensors");
    ct_model *m = small_model();
    const char *header = "{\"__metadata__\":{\"k\":\"v\\u00e9\\n\"}," BIAS "," WEIGHT "}";
    size_t h = strlen(header), len = 8 + h + 36;
    uint8_t *good = malloc(len), *b = malloc(len);
    for (int i = 0; i < 8; i++) good[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(good + 8, header, h);
    memset(good + 8 + h, 0x41, 36);
    static const char special[] = "{}[]:,\"\\-0123456789eE. \tuF";
    ct_rng rng;
    ct_rng_seed(&rng, 2024);
    int loaded = 0, failed = 0, bad_message = 0, changed = 0;
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(b, good, len);
        size_t n = len;
        int kind = (int)ct_rng_int(&rng, 0, 4);
        for (int k = 0; k < 1 + (kind == 3) * 3; k++) {
            size_t at = (size_t)ct_rng_int(&rng, 0, (int64_t)(8 + h));
            b[at] = kind == 0 ? (uint8_t)ct_rng_int(&rng, 0, 256) : (uint8_t)special[ct_rng_int(&rng, 0, sizeof special - 1)];
        }
        if (kind == 2) n = (size_t)ct_rng_int(&rng, 0, (int64_t)len);
        if (!write_bytes(path, b, n)) break;
        size_t count;
        ct_real *before = snapshot(m, &count);
        if (ct_model_load(m, path) == CT_OK) loaded++;
        else {
            failed++;
            bad_message += strstr(ct_last_error(), path) == NULL;
            changed += !unchanged(m, before, count);
        }
        free(before);
    }
    free(good);
    free(b);
    ct_model_free(m);
    CHECK(loaded + failed == 3000, "could not write the files");
    CHECK(bad_message == 0, "%d errors did not name the file", bad_message);
    CHECK(changed == 0, "%d failed loads changed the model", changed);
    ct_test_note("%d loaded, %d refused", loaded, failed);
}

/* A buffer the file lacks is missing like a parameter (strict, as PyTorch's load_state_dict). */
CT_TEST(checkpoint, buffers_are_checked_like_parameters) {
    const char *dir = ct_test_tmpdir();
    ct_model *m = small_model();
    ct_model_add_buffer(m, "fc1.count", CT_SHAPE_SCALAR)->data[0] = 4;
    size_t count;
    ct_real *before = snapshot(m, &count);
    const char *path = path_in(dir, "params-only.safetensors");
    CHECK(write_st(path, OWN_LEN, "{" BIAS "," WEIGHT "}", 36));
    int rc = ct_model_load(m, path);
    char err[1024];
    snprintf(err, sizeof err, "%s", ct_last_error());
    int same = unchanged(m, before, count);
    /* the same buffer stored as I64, as PyTorch stores num_batches_tracked, loads */
    const char *with = path_in(dir, "with-count.safetensors");
    int ok = write_st(with, OWN_LEN, "{\"fc1.count\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[36,44]}," BIAS "," WEIGHT "}", 44);
    int rc_with = ok ? ct_model_load(m, with) : CT_ERR_IO;
    double got = ct_model_find_buffer(m, "fc1.count")->data[0];
    free(before);
    ct_model_free(m);
    CHECK(rc == CT_ERR_VALUE && strstr(err, path) &&
          strstr(err, "tensor \"fc1.count\" is missing from the file (the model has it, shape ())"), "got \"%s\"", err);
    CHECK(same);
    CHECK(rc_with == CT_OK, "%s", ct_last_error());
    CHECK(got == (double)(ct_real)0x4141414141414141ll, "I64 0x4141414141414141 -> %g", got);
}

static void write_duplicate_names(void *arg) {
    ct_tensor *t[2] = {ct_tensor_new(CT_SHAPE(1)), ct_tensor_new(CT_SHAPE(1))};
    const char *names[2] = {"same", "same"};
    ct_safetensors_write((const char *)arg, 2, names, t, NULL);
}

CT_TEST(checkpoint, duplicate_names_are_a_programmer_error) {
    char got[512];
    const char *path = path_in(ct_test_tmpdir(), "dup.safetensors");
    CHECK(ct_test_expect_fatal(write_duplicate_names, (void *)path, "ct_safetensors_write", got, sizeof got) &&
              strstr(got, "two tensors named \"same\""), "stderr: %s", got);
    CHECK(access(path, F_OK) != 0, "nothing was written");
}

/* ---- PyTorch interop (tests/reference/gen_checkpoint.py) ---------------------------------- */

/* torch_mlp.safetensors, written from torch's state_dict (F32 weights, an I64 buffer, its own
 * key order), loads into the ctape model and gives torch's outputs. */
CT_TEST(checkpoint, torch_file_loads_and_matches) {
    const char *dir = ct_test_tmpdir();
    const char *path = path_in(dir, "torch_mlp.safetensors");
    CHECK(write_bytes(path, ckpt_torch_file, sizeof ckpt_torch_file));
    mlp n = mlp_new(99);
    int rc = ct_model_load(n.m, path);
    if (rc != CT_OK) ct_model_free(n.m);
    CHECK(rc == CT_OK, "%s", ct_last_error());
    ct_real out[CKPT_REF_N * CKPT_REF_OUT];
    mlp_run(&n, out);
    int steps = (int)n.steps->data[0];
    int same_w = 1;
    ct_tensor *w = ct_linear_weight(n.fc1);
    for (size_t k = 0; k < w->size; k++) same_w &= w->data[k] == (ct_real)ckpt_ref_fc1_weight[k];
    ct_model_free(n.m);
    CHECK(steps == CKPT_REF_STEPS, "steps (I64 in the file) = %d", steps);
    CHECK(same_w, "fc1.weight is torch's, exactly");
    double worst = 0;
    for (int i = 0; i < CKPT_REF_N * CKPT_REF_OUT; i++) {
        CHECK_NEAR(out[i], ckpt_ref_out[i], REF_ATOL, 1e-6);
        worst = fmax(worst, fabs((double)out[i] - ckpt_ref_out[i]));
    }
    ct_test_note("max |ctape - torch| = %.2g", worst);
}

/* The committed tests/reference/ctape_mlp.safetensors (which gen_checkpoint.py --verify loads
 * into torch) is what ct_model_save writes today. With CTAPE_WRITE_CHECKPOINT_REFERENCE=<dir>
 * this test writes ctape_mlp.safetensors and ctape_mlp_io.safetensors (input and ctape's output)
 * there instead. */
CT_TEST(checkpoint, ctape_file_is_current) {
    mlp n = mlp_new(0);
    mlp_fill_fixed(&n);
    ct_real out[CKPT_REF_N * CKPT_REF_OUT];
    mlp_run(&n, out);
    const char *to = getenv("CTAPE_WRITE_CHECKPOINT_REFERENCE");
    if (to) {
        ct_tensor *io[2] = {ct_tensor_new(CT_SHAPE(CKPT_REF_N, CKPT_REF_IN)), ct_tensor_new(CT_SHAPE(CKPT_REF_N, CKPT_REF_OUT))};
        for (int i = 0; i < CKPT_REF_N * CKPT_REF_IN; i++) io[0]->data[i] = (ct_real)ckpt_ref_in[i];
        memcpy(io[1]->data, out, sizeof out);
        const char *names[2] = {"input", "output"};
        const char *meta[] = {"format", "pt", "framework", "ctape", NULL};
        int rc = ct_model_save(n.m, path_in(to, "ctape_mlp.safetensors"));
        rc = rc ? rc : ct_safetensors_write(path_in(to, "ctape_mlp_io.safetensors"), 2, names, io, meta);
        ct_tensor_free(io[0]), ct_tensor_free(io[1]);
        ct_model_free(n.m);
        CHECK(rc == CT_OK, "%s", ct_last_error());
        ct_test_note("wrote %s/ctape_mlp{,_io}.safetensors (" CT_REAL_NAME ")", to);
        return;
    }
    /* tests/nn/test_checkpoint.c -> tests/reference/ctape_mlp.safetensors, from where make runs */
    char committed[1024];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(committed, sizeof committed, "%.*s../reference/ctape_mlp.safetensors", slash ? (int)(slash - __FILE__ + 1) : 0, __FILE__);
    if (access(committed, R_OK) != 0) {
        ct_model_free(n.m);
        CT_SKIP("%s not found from here (run from the repository root)", committed);
    }
    /* It loads, into a model with other values, and gives back the fixed weights. */
    mlp back = mlp_new(7);
    int rc = ct_model_load(back.m, committed);
    size_t c1, c2;
    ct_real *want = snapshot(n.m, &c1), *got = snapshot(back.m, &c2);
    int same = rc == CT_OK && c1 == c2 && !memcmp(want, got, c1 * sizeof *want);
    free(want);
    free(got);
    ct_model_free(back.m);
    /* In the float32 build, a fresh save is byte-identical to it. */
    int identical = 1;
#ifndef CT_PRECISION_64
    const char *fresh = path_in(ct_test_tmpdir(), "ctape_mlp.safetensors");
    size_t la = 0, lb = 0;
    uint8_t *a = ct_model_save(n.m, fresh) == CT_OK ? read_bytes(fresh, &la) : NULL, *b = read_bytes(committed, &lb);
    identical = a && b && la == lb && !memcmp(a, b, la);
    free(a);
    free(b);
#endif
    ct_model_free(n.m);
    CHECK(rc == CT_OK, "%s", ct_last_error());
    CHECK(same, "the committed file holds the fixed weights");
    CHECK(identical, "ct_model_save no longer writes the committed bytes: regenerate and re-verify with torch "
                     "(see tests/reference/gen_checkpoint.py)");
}
