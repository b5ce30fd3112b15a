/* nn/checkpoint.c — safetensors files: model checkpoints and any other named tensors.
 *
 * The format (https://github.com/huggingface/safetensors), all integers little endian:
 *
 *     N (u64)    JSON header (N bytes)                              data buffer (rest of the file)
 *                {"__metadata__": {"format": "pt", ...},           tensors, contiguous, row-major,
 *                 "fc1.bias": {"dtype": "F32", "shape": [8],        little endian; data_offsets
 *                              "data_offsets": [0, 32]}, ...}       [begin, end) count from the
 *                                                                   start of this buffer
 *
 * Writing (ct_safetensors_write, ct_model_save):
 *   - tensors are sorted by name (byte order, as strcmp), in the header and in the data, so the
 *     file does not depend on the order layers were created in; with one dtype this is exactly
 *     the layout the reference implementation writes;
 *   - the dtype is ct_real's: F32, or F64 in the float64 build;
 *   - the header is padded with spaces to a multiple of 8 bytes (as the reference does), so
 *     every tensor starts 8-byte aligned in the file and can be mapped in place;
 *   - atomically, leaving nothing behind when killed: everything goes to an unnamed file in the
 *     target's directory (O_TMPFILE), then fsync, a link to the target's name when it has none
 *     yet, else to "<path>.tmp-..." renamed over the target, then fsync of the directory (see
 *     "temporary files" below for the fallback where O_TMPFILE is missing). Any failure before
 *     the rename leaves a previous file at `path` as it was, and no temporary file. Files are
 *     created with mode 0666 rather than mkstemp's 0600, so the checkpoint gets the permissions
 *     the user's umask asks for without reading the umask, which cannot be done without briefly
 *     changing it.
 *
 * Reading (ct_safetensors_open, ct_safetensors_load, ct_model_load) trusts nothing:
 *   - the file is at least 8 bytes; the header length fits in the file and is at most 100 MB
 *     (the reference's limit); the header is UTF-8 and strict JSON of exactly the shape above
 *     (objects, arrays, strings with escapes, non-negative integers), or the error gives the
 *     byte offset in the header of what is wrong; no key appears twice;
 *   - each tensor has dtype, shape and data_offsets and nothing else; the dtype is one we read
 *     (F32, F64, F16, BF16, I64, I32 — integers for buffers such as batch norm's
 *     num_batches_tracked — all converted to ct_real); at most CT_MAX_DIMS dims, each below
 *     2^31; begin <= end <= data size; elements × dtype size == end − begin; no two tensors
 *     share a byte; and, as the reference implementation, the tensors tile the data buffer
 *     exactly: no hole between them and no byte after the last one (checked from the header,
 *     before any data is read). Duplicate names and metadata keys are found by sorting;
 *   - a strict load then matches names and shapes against the destination (PyTorch's
 *     load_state_dict(strict=True): a missing tensor and an unexpected one are both errors), and
 *     only then converts and copies. On any error nothing has been written.
 * Every error names the file, and the tensor when there is one. */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEADER_LIMIT 100000000ull /* the reference implementation's MAX_HEADER_SIZE */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LITTLE_ENDIAN 1
#else
#define HOST_LITTLE_ENDIAN 0
#endif

#ifdef CT_PRECISION_64
#define REAL_DTYPE "F64"
#else
#define REAL_DTYPE "F32"
#endif

/* ---- dtypes ------------------------------------------------------------------------------ */

typedef enum { DT_F64, DT_F32, DT_F16, DT_BF16, DT_I64, DT_I32 } dtype_id;

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [DT_F64] = {"F64", 8}, [DT_F32] = {"F32", 4}, [DT_F16] = {"F16", 2},
    [DT_BF16] = {"BF16", 2}, [DT_I64] = {"I64", 8}, [DT_I32] = {"I32", 4},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))
#ifdef CT_PRECISION_64
#define REAL_DT DT_F64
#else
#define REAL_DT DT_F32
#endif

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half: sign, 5 exponent bits (bias 15), 10 mantissa bits. Exact in float. */
static float f16_to_float(uint16_t h) {
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v = exp == 0    ? ldexpf((float)mant, -24)                 /* zero or subnormal */
              : exp == 31 ? (mant ? NAN : INFINITY)
                          : ldexpf((float)(mant | 0x400), exp - 25); /* (1 + m/1024)·2^(e−15) */
    return (h & 0x8000) ? -v : v;
}

/* bfloat16 is the top half of a float32. */
static float bf16_to_float(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

/* n elements of dtype `dt` at src (little endian) -> ct_real. */
static void convert_to_real(ct_real *dst, const uint8_t *src, size_t n, dtype_id dt) {
    if (HOST_LITTLE_ENDIAN && dt == REAL_DT) {
        memcpy(dst, src, n * sizeof(ct_real)); /* the file's dtype is ct_real's: bytes as they are */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * dtypes[dt].size;
        switch (dt) {
        case DT_F64: {
            uint64_t u = le64(p);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (ct_real)d;
            break;
        }
        case DT_F32: dst[i] = (ct_real)f32_from_bits(le32(p)); break;
        case DT_F16: dst[i] = (ct_real)f16_to_float(le16(p)); break;
        case DT_BF16: dst[i] = (ct_real)bf16_to_float(le16(p)); break;
        case DT_I64: dst[i] = (ct_real)(int64_t)le64(p); break;
        case DT_I32: dst[i] = (ct_real)(int32_t)le32(p); break;
        }
    }
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 prefix of s[0..n) (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF); n when all of it is valid. */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xe0) == 0xc0) k = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) k = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) k = 3, cp = c & 0x07, min = 0x10000;
        else return i;
        if (n - i <= k) return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += k + 1;
    }
    return n;
}

/* ---- the header: a strict parser for exactly the safetensors shape of JSON ---------------- */

typedef struct {
    char *name;
    dtype_id dtype;
    ct_shape shape;
    uint64_t begin, end;
} st_entry;

typedef struct {
    char *key, *value;
} st_meta;

#define ST_MAGIC 0x74666173u

struct ct_safetensors {
    uint32_t magic;    /* ST_MAGIC from a successful open until ct_safetensors_close */
    char *path;
    st_entry *entries; /* sorted by name */
    int n;
    st_meta *meta;     /* sorted by key */
    int n_meta;
    uint8_t *data;     /* the data buffer */
    size_t data_len;
};

typedef struct {
    const char *path;
    const uint8_t *s;
    size_t n, pos;
} json;

/* "'x'", "end of header" or "byte 0x07", for "expected ..., found ...". */
static const char *found(const json *j, char buf[16]) {
    if (j->pos >= j->n) return "the end of the header";
    uint8_t c = j->s[j->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, 16, "'%c'", c);
    else snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static int json_error(const json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int json_error(const json *j, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ct_set_error(CT_ERR_FORMAT, "%s: malformed JSON header at byte %zu: %s", j->path, j->pos, msg);
}

static void skip_ws(json *j) {
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

/* Skips whitespace, then consumes `c` or fails saying what was expected (`what`). */
static int expect(json *j, char c, const char *what) {
    skip_ws(j);
    if (j->pos < j->n && j->s[j->pos] == c) {
        j->pos++;
        return CT_OK;
    }
    char b[16];
    return json_error(j, "expected %s, found %s", what, found(j, b));
}

/* Is the next non-blank byte c? (consumes it when it is) */
static int accept(json *j, char c) {
    skip_ws(j);
    if (j->pos < j->n && j->s[j->pos] == c) {
        j->pos++;
        return 1;
    }
    return 0;
}

static int hex4(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return out[0] = (char)(0xe0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
               out[2] = (char)(0x80 | (cp & 0x3f)), 3;
    return out[0] = (char)(0xf0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
           out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), out[3] = (char)(0x80 | (cp & 0x3f)), 4;
}

/* A JSON string, decoded into a malloc'd C string (*out). The header was checked to be UTF-8
 * already. \u0000 is refused: names are C strings. */
static int parse_string(json *j, char **out) {
    *out = NULL;
    if (expect(j, '"', "a string") != CT_OK) return CT_ERR_FORMAT;
    size_t start = j->pos, end = start;
    while (end < j->n && j->s[end] != '"') end += j->s[end] == '\\' ? 2 : 1;
    if (end >= j->n) {
        j->pos = start - 1;
        return json_error(j, "unterminated string");
    }
    char *s = malloc(end - start + 1); /* decoding never lengthens a string */
    if (!s) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory reading the header", j->path);
    size_t k = 0;
    while (j->s[j->pos] != '"') {
        uint8_t c = j->s[j->pos];
        if (c < 0x20) {
            free(s);
            return json_error(j, "control character 0x%02x in a string (must be escaped)", c);
        }
        if (c != '\\') {
            s[k++] = (char)c;
            j->pos++;
            continue;
        }
        uint8_t e = j->s[j->pos + 1]; /* present: the scan above stopped at a quote after it */
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            s[k++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            j->pos += 2;
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || end - j->pos < 6 || !hex4(j->s + j->pos + 2, &cp)) {
            free(s);
            return json_error(j, e == 'u' ? "\\u needs four hex digits" : "invalid escape '\\%c'", e);
        }
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(s);
            return json_error(j, "\\u%04x is an unpaired low surrogate", cp);
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - j->pos < 12 || j->s[j->pos + 6] != '\\' || j->s[j->pos + 7] != 'u' ||
                !hex4(j->s + j->pos + 8, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                free(s);
                return json_error(j, "\\u%04x is a high surrogate without its low half", cp);
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            j->pos += 6;
        }
        if (cp == 0) {
            free(s);
            return json_error(j, "\\u0000 in a string");
        }
        k += put_utf8(s + k, cp);
        j->pos += 6;
    }
    j->pos++; /* the closing quote */
    s[k] = 0;
    *out = s;
    return CT_OK;
}

/* A non-negative JSON integer (no sign, fraction or exponent; no leading zeros). */
static int parse_uint(json *j, uint64_t *out) {
    skip_ws(j);
    char b[16];
    if (j->pos < j->n && j->s[j->pos] == '-') return json_error(j, "negative number (offsets and dimensions are >= 0)");
    if (j->pos >= j->n || j->s[j->pos] < '0' || j->s[j->pos] > '9')
        return json_error(j, "expected a non-negative integer, found %s", found(j, b));
    size_t start = j->pos;
    uint64_t v = 0;
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') {
        unsigned d = j->s[j->pos] - '0';
        if (v > (UINT64_MAX - d) / 10) {
            j->pos = start;
            return json_error(j, "integer too large");
        }
        v = v * 10 + d;
        j->pos++;
    }
    if (j->pos - start > 1 && j->s[start] == '0') {
        j->pos = start;
        return json_error(j, "leading zero in a number");
    }
    if (j->pos < j->n && (j->s[j->pos] == '.' || j->s[j->pos] == 'e' || j->s[j->pos] == 'E'))
        return json_error(j, "expected an integer, found a fraction or exponent");
    *out = v;
    return CT_OK;
}

/* [u, u, ...] into out[0..max); *count gets the length. Longer arrays fail: tensor `name`'s
 * shape has more than max dimensions, or its data_offsets more than 2 entries (`offsets`). */
static int parse_uint_array(json *j, uint64_t *out, int max, int *count, const char *name, int offsets) {
    *count = 0;
    if (expect(j, '[', "'['") != CT_OK) return CT_ERR_FORMAT;
    if (accept(j, ']')) return CT_OK;
    for (;;) {
        uint64_t v = 0;
        if (parse_uint(j, &v) != CT_OK) return CT_ERR_FORMAT;
        if (*count == max)
            return offsets ? json_error(j, "tensor \"%.40s\": data_offsets has more than 2 entries", name)
                           : json_error(j, "tensor \"%.40s\" has more than %d dimensions (ctape's limit)", name, max);
        out[(*count)++] = v;
        if (accept(j, ']')) return CT_OK;
        if (expect(j, ',', "',' or ']'") != CT_OK) return CT_ERR_FORMAT;
    }
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [b, e]} for tensor e->name. */
static int parse_tensor_info(json *j, st_entry *e) {
    enum { HAS_DTYPE = 1, HAS_SHAPE = 2, HAS_OFFSETS = 4 };
    int has = 0;
    if (expect(j, '{', "'{' (a tensor's description)") != CT_OK) return CT_ERR_FORMAT;
    if (!accept(j, '}')) {
        for (;;) {
            size_t key_pos;
            skip_ws(j);
            key_pos = j->pos;
            char *key;
            if (parse_string(j, &key) != CT_OK) return CT_ERR_FORMAT;
            int field = !strcmp(key, "dtype") ? HAS_DTYPE : !strcmp(key, "shape") ? HAS_SHAPE
                      : !strcmp(key, "data_offsets") ? HAS_OFFSETS : 0;
            if (!field || (has & field)) {
                j->pos = key_pos;
                int rc = json_error(j, field ? "tensor \"%s\": \"%s\" appears twice" : "tensor \"%s\": unknown field \"%s\"",
                                    e->name, key);
                free(key);
                return rc;
            }
            free(key);
            has |= field;
            if (expect(j, ':', "':'") != CT_OK) return CT_ERR_FORMAT;
            if (field == HAS_DTYPE) {
                char *dt;
                skip_ws(j);
                size_t dt_pos = j->pos;
                if (parse_string(j, &dt) != CT_OK) return CT_ERR_FORMAT;
                int id = -1;
                for (int d = 0; d < N_DTYPES; d++)
                    if (!strcmp(dt, dtypes[d].name)) id = d;
                if (id < 0) {
                    int rc = ct_set_error(CT_ERR_FORMAT,
                                          "%s: tensor \"%s\" has dtype \"%.40s\" (header byte %zu), which ctape does not "
                                          "read (F32, F64, F16, BF16, I64, I32)",
                                          j->path, e->name, dt, dt_pos);
                    free(dt);
                    return rc;
                }
                free(dt);
                e->dtype = (dtype_id)id;
            } else if (field == HAS_SHAPE) {
                uint64_t dims[CT_MAX_DIMS];
                if (parse_uint_array(j, dims, CT_MAX_DIMS, &e->shape.ndim, e->name, 0) != CT_OK) return CT_ERR_FORMAT;
                for (int d = 0; d < e->shape.ndim; d++) {
                    if (dims[d] > INT_MAX)
                        return ct_set_error(CT_ERR_FORMAT, "%s: tensor \"%s\": dimension %d is %llu (at most %d)",
                                            j->path, e->name, d, (unsigned long long)dims[d], INT_MAX);
                    e->shape.d[d] = (int)dims[d];
                }
            } else {
                uint64_t off[2];
                int count;
                if (parse_uint_array(j, off, 2, &count, e->name, 1) != CT_OK) return CT_ERR_FORMAT;
                if (count != 2) return json_error(j, "tensor \"%s\": data_offsets needs 2 entries, has %d", e->name, count);
                e->begin = off[0];
                e->end = off[1];
            }
            if (accept(j, '}')) break;
            if (expect(j, ',', "',' or '}'") != CT_OK) return CT_ERR_FORMAT;
        }
    }
    const char *missing = !(has & HAS_DTYPE) ? "dtype" : !(has & HAS_SHAPE) ? "shape" : !(has & HAS_OFFSETS) ? "data_offsets" : NULL;
    if (missing) return ct_set_error(CT_ERR_FORMAT, "%s: tensor \"%s\" has no \"%s\" in the header", j->path, e->name, missing);
    return CT_OK;
}

/* A metadata pair while parsing: where its key starts, for the duplicate's message. */
typedef struct {
    st_meta kv;
    size_t pos;
} meta_at;

static int by_key_then_pos(const void *a, const void *b) {
    const meta_at *x = a, *y = b;
    int c = strcmp(x->kv.key, y->kv.key);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* {"key": "value", ...} into f->meta, sorted by key. Duplicates are found by sorting (a header of
 * up to 100 MB holds millions of keys: comparing each with every other would take hours). */
static int parse_metadata(json *j, ct_safetensors *f) {
    if (expect(j, '{', "'{' (the __metadata__ object)") != CT_OK) return CT_ERR_FORMAT;
    meta_at *m = NULL;
    size_t n = 0, cap = 0;
    int rc = CT_OK;
    if (!accept(j, '}'))
        for (;;) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                meta_at *grown = realloc(m, cap * sizeof *grown);
                if (!grown) {
                    rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory reading the header", j->path);
                    break;
                }
                m = grown;
            }
            meta_at *e = &m[n];
            skip_ws(j);
            e->pos = j->pos;
            e->kv.value = NULL;
            if ((rc = parse_string(j, &e->kv.key)) != CT_OK) break;
            n++;
            if ((rc = expect(j, ':', "':'")) != CT_OK) break;
            skip_ws(j);
            if (j->pos < j->n && j->s[j->pos] != '"') {
                rc = json_error(j, "__metadata__ value of \"%s\" is not a string (safetensors metadata is string to string)",
                                e->kv.key);
                break;
            }
            if ((rc = parse_string(j, &e->kv.value)) != CT_OK) break;
            if (accept(j, '}')) break;
            if ((rc = expect(j, ',', "',' or '}'")) != CT_OK) break;
        }
    if (rc == CT_OK && n) {
        qsort(m, n, sizeof *m, by_key_then_pos);
        for (size_t i = 1; i < n && rc == CT_OK; i++)
            if (!strcmp(m[i - 1].kv.key, m[i].kv.key)) { /* m[i] is the later of the two */
                j->pos = m[i].pos;
                rc = json_error(j, "__metadata__ key \"%s\" appears twice", m[i].kv.key);
            }
    }
    if (rc == CT_OK && n && !(f->meta = malloc(n * sizeof *f->meta)))
        rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory reading the header", j->path);
    if (rc == CT_OK) {
        for (size_t i = 0; i < n; i++) f->meta[i] = m[i].kv;
        f->n_meta = (int)n;
    } else {
        for (size_t i = 0; i < n; i++) free(m[i].kv.key), free(m[i].kv.value);
    }
    free(m);
    return rc;
}

/* The whole header: {"__metadata__": {...}, "name": {...}, ...} followed only by blanks. */
static int parse_header(const char *path, const uint8_t *s, size_t n, ct_safetensors *f) {
    json j = {path, s, n, 0};
    size_t valid = utf8_valid_prefix(s, n);
    if (valid != n) {
        j.pos = valid;
        return json_error(&j, "invalid UTF-8");
    }
    /* The spec: the header starts with '{' (no leading blanks); it may end with blanks. */
    if (n == 0 || s[0] != '{') {
        char b[16];
        return json_error(&j, "expected '{' (a safetensors header is a JSON object), found %s", found(&j, b));
    }
    j.pos = 1;
    int seen_metadata = 0, cap = 0;
    if (!accept(&j, '}')) {
        for (;;) {
            skip_ws(&j);
            size_t key_pos = j.pos;
            char *key;
            if (parse_string(&j, &key) != CT_OK) return CT_ERR_FORMAT;
            if (expect(&j, ':', "':'") != CT_OK) {
                free(key);
                return CT_ERR_FORMAT;
            }
            if (!strcmp(key, "__metadata__")) {
                free(key);
                if (seen_metadata) {
                    j.pos = key_pos;
                    return json_error(&j, "\"__metadata__\" appears twice");
                }
                seen_metadata = 1;
                if (parse_metadata(&j, f) != CT_OK) return CT_ERR_FORMAT;
            } else {
                if (f->n == cap) {
                    cap = cap ? 2 * cap : 16;
                    st_entry *grown = realloc(f->entries, (size_t)cap * sizeof *grown);
                    if (!grown) {
                        free(key);
                        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory reading the header", path);
                    }
                    f->entries = grown;
                }
                st_entry *e = &f->entries[f->n++];
                *e = (st_entry){.name = key};
                if (parse_tensor_info(&j, e) != CT_OK) return CT_ERR_FORMAT;
            }
            if (accept(&j, '}')) break;
            if (expect(&j, ',', "',' or '}'") != CT_OK) return CT_ERR_FORMAT;
        }
    }
    skip_ws(&j);
    if (j.pos != n) return json_error(&j, "unexpected data after the JSON object");
    return CT_OK;
}

/* ---- validation of the parsed header ------------------------------------------------------ */

static int by_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int by_begin(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Names unique; sizes agree with dtype and shape; offsets inside the data; no overlaps. Sorts
 * f->entries by name. */
static int validate_entries(ct_safetensors *f) {
    if (f->n) qsort(f->entries, (size_t)f->n, sizeof *f->entries, by_name); /* entries is NULL when n = 0 */
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->entries[i - 1].name, f->entries[i].name))
            return ct_set_error(CT_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", f->path, f->entries[i].name);
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->entries[i];
        if (e->begin > e->end)
            return ct_set_error(CT_ERR_FORMAT, "%s: tensor \"%s\" has data_offsets [%llu, %llu]: begin is after end", f->path,
                                e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
        if (e->end > f->data_len)
            return ct_set_error(CT_ERR_FORMAT,
                                "%s: tensor \"%s\" has data_offsets [%llu, %llu] past the end of the data (%zu bytes; "
                                "is the file truncated?)",
                                f->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end, f->data_len);
        uint64_t bytes = dtypes[e->dtype].size; /* elements × size, without wrapping */
        int wraps = 0;
        for (int d = 0; d < e->shape.ndim; d++) wraps |= __builtin_mul_overflow(bytes, (uint64_t)e->shape.d[d], &bytes);
        if (wraps || bytes != e->end - e->begin) {
            char need[32] = "more than 2^64", shape[96];
            ct_shape_str(e->shape, shape, sizeof shape);
            if (!wraps) snprintf(need, sizeof need, "%llu", (unsigned long long)bytes);
            return ct_set_error(CT_ERR_FORMAT, "%s: tensor \"%s\" is %s %s (%s bytes) but its data_offsets [%llu, %llu] span %llu bytes",
                                f->path, e->name, dtypes[e->dtype].name, shape, need, (unsigned long long)e->begin,
                                (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
        }
    }
    /* Overlaps: sort by begin, then each non-empty tensor must start at or after the end of the
     * furthest-reaching one before it. */
    const st_entry **order = malloc((size_t)(f->n > 0 ? f->n : 1) * sizeof *order);
    if (!order) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++) order[i] = &f->entries[i];
    if (f->n) qsort(order, (size_t)f->n, sizeof *order, by_begin);
    const st_entry *reach = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = order[i];
        if (e->begin == e->end) continue; /* empty tensors hold no bytes */
        if (reach && e->begin < reach->end) {
            int rc = ct_set_error(CT_ERR_FORMAT, "%s: tensors \"%s\" (bytes %llu..%llu) and \"%s\" (bytes %llu..%llu) overlap",
                                  f->path, reach->name, (unsigned long long)reach->begin, (unsigned long long)reach->end,
                                  e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
            free(order);
            return rc;
        }
        if (!reach || e->end > reach->end) reach = e;
    }
    /* The reference implementation's rule: the tensors tile the data buffer exactly, no hole
     * between them and nothing after the last one. In begin order, each starts where the one
     * before it ended (an empty one too). */
    uint64_t at = 0;
    const st_entry *prev = NULL; /* the last non-empty tensor before `at` */
    int rc = CT_OK;
    for (int i = 0; i < f->n && rc == CT_OK; i++) {
        const st_entry *e = order[i];
        if (e->begin > at)
            rc = prev ? ct_set_error(CT_ERR_FORMAT, "%s: bytes %llu..%llu belong to no tensor (a hole between \"%s\" and "
                                     "\"%s\"): the data offsets must tile the data exactly", f->path,
                                     (unsigned long long)at, (unsigned long long)e->begin, prev->name, e->name)
                      : ct_set_error(CT_ERR_FORMAT, "%s: bytes 0..%llu belong to no tensor (a hole before \"%s\"): the "
                                     "data offsets must tile the data exactly", f->path, (unsigned long long)e->begin,
                                     e->name);
        else if (e->begin < at) /* only an empty one: non-empty overlaps were refused above */
            rc = ct_set_error(CT_ERR_FORMAT, "%s: empty tensor \"%s\" at byte %llu lies inside \"%s\" (bytes %llu..%llu)",
                              f->path, e->name, (unsigned long long)e->begin, prev->name,
                              (unsigned long long)prev->begin, (unsigned long long)prev->end);
        else if (e->end > at) {
            at = e->end;
            prev = e;
        }
    }
    free(order);
    if (rc == CT_OK && at != f->data_len) {
        unsigned long long extra = (unsigned long long)(f->data_len - at);
        rc = ct_set_error(CT_ERR_FORMAT, "%s: %llu byte%s after the last tensor (%llu bytes of tensor data, %zu in the file): "
                          "the data offsets must tile the data exactly", f->path, extra, extra == 1 ? "" : "s",
                          (unsigned long long)at, f->data_len);
    }
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Fatal, naming op, on NULL or a file closed already. */
static void check_file(const ct_safetensors *f, const char *op) {
    CT_CHECK(f, op, "file is NULL");
    CT_CHECK(f->magic == ST_MAGIC, op, "%p is not an open safetensors file: closed already (ct_safetensors_close "
             "twice, or used after it), or not from ct_safetensors_open", (const void *)f);
}

/* Frees f, open or half-built by st_open. */
static void st_free(ct_safetensors *f) {
    if (!f) return;
    f->magic = 0;
    for (int i = 0; i < f->n; i++) free(f->entries[i].name);
    for (int i = 0; i < f->n_meta; i++) free(f->meta[i].key), free(f->meta[i].value);
    free(f->entries);
    free(f->meta);
    free(f->data);
    free(f->path);
    free(f);
}

static int read_exactly(FILE *fp, void *buf, size_t len) { return fread(buf, 1, len, fp) == len; }

/* Reads and validates the file into *out; returns CT_OK or the error's code. */
static int st_open(const char *path, ct_safetensors **out) {
    CT_CHECK(path, "ct_safetensors_open", "NULL path");
    *out = NULL;
    int rc = CT_ERR_FORMAT;
    ct_safetensors *f = calloc(1, sizeof *f);
    uint8_t *header = NULL;
    FILE *fp = NULL;
    if (!f || !(f->path = strdup(path))) {
        rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
        goto fail;
    }
    fp = fopen(path, "rb");
    if (!fp) {
        rc = ct_set_error(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        rc = ct_set_error(CT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ct_set_error(CT_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    uint8_t len8[8];
    if (size < 8) {
        ct_set_error(CT_ERR_FORMAT, "%s: file is truncated: %zu bytes, but a safetensors file starts with an 8-byte header length",
                     path, size);
        goto fail;
    }
    if (!read_exactly(fp, len8, 8)) goto read_error;
    uint64_t header_len = le64(len8);
    if (header_len > size - 8) {
        ct_set_error(CT_ERR_FORMAT, "%s: oversized header: the header length is %llu bytes but only %zu bytes follow it "
                     "(truncated, or not a safetensors file)", path, (unsigned long long)header_len, size - 8);
        goto fail;
    }
    if (header_len > HEADER_LIMIT) {
        ct_set_error(CT_ERR_FORMAT, "%s: oversized header: %llu bytes (the limit is %llu)", path,
                     (unsigned long long)header_len, HEADER_LIMIT);
        goto fail;
    }
    if (header_len == 0) {
        ct_set_error(CT_ERR_FORMAT, "%s: the header length is 0 (the header must be a JSON object)", path);
        goto fail;
    }
    header = malloc((size_t)header_len);
    if (!header) {
        rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory for a %llu-byte header", path, (unsigned long long)header_len);
        goto fail;
    }
    if (!read_exactly(fp, header, (size_t)header_len)) goto read_error;
    if ((rc = parse_header(path, header, (size_t)header_len, f)) != CT_OK) goto fail;
    free(header);
    header = NULL;
    f->data_len = size - 8 - (size_t)header_len;
    if ((rc = validate_entries(f)) != CT_OK) goto fail;
    /* Only now is the data worth reading. */
    f->data = malloc(f->data_len ? f->data_len : 1);
    if (!f->data) {
        rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory for %zu bytes of tensor data", path, f->data_len);
        goto fail;
    }
    if (!read_exactly(fp, f->data, f->data_len)) goto read_error;
    fclose(fp);
    f->magic = ST_MAGIC;
    *out = f;
    return CT_OK;

read_error:
    rc = ct_set_error(CT_ERR_IO, "%s: read error: %s", path, ferror(fp) ? strerror(errno) : "the file shrank while being read");
fail:
    if (fp) fclose(fp);
    free(header);
    st_free(f);
    return rc;
}

void ct_safetensors_close(ct_safetensors *f) {
    if (!f) return;
    check_file(f, "ct_safetensors_close");
    st_free(f);
}

ct_safetensors *ct_safetensors_open(const char *path) {
    ct_safetensors *f;
    st_open(path, &f);
    return f;
}

int ct_safetensors_try_open(const char *path, ct_safetensors **out) {
    CT_CHECK(out, "ct_safetensors_try_open", "NULL out");
    return st_open(path, out);
}

int ct_safetensors_count(const ct_safetensors *f) {
    check_file(f, "ct_safetensors_count");
    return f->n;
}

static const st_entry *entry_at(const ct_safetensors *f, int i, const char *op) {
    check_file(f, op);
    CT_CHECK(i >= 0 && i < f->n, op, "index %d out of range (%d tensors in %s)", i, f->n, f->path);
    return &f->entries[i];
}
const char *ct_safetensors_name(const ct_safetensors *f, int i) { return entry_at(f, i, "ct_safetensors_name")->name; }
ct_shape ct_safetensors_shape(const ct_safetensors *f, int i) { return entry_at(f, i, "ct_safetensors_shape")->shape; }
const char *ct_safetensors_dtype(const ct_safetensors *f, int i) {
    return dtypes[entry_at(f, i, "ct_safetensors_dtype")->dtype].name;
}

const char *ct_safetensors_metadata(const ct_safetensors *f, const char *key) {
    check_file(f, "ct_safetensors_metadata");
    CT_CHECK(key, "ct_safetensors_metadata", "NULL key");
    size_t lo = 0, hi = (size_t)f->n_meta; /* f->meta is sorted by key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->meta[mid].key, key);
        if (!c) return f->meta[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const st_entry *find_entry(const ct_safetensors *f, const char *name) {
    st_entry key = {.name = (char *)name};
    if (!f->n) return NULL;
    return bsearch(&key, f->entries, (size_t)f->n, sizeof key, by_name);
}

static int same_shape(ct_shape s, const ct_tensor *t) {
    if (s.ndim != t->ndim) return 0;
    for (int d = 0; d < s.ndim; d++)
        if (s.d[d] != t->shape[d]) return 0;
    return 1;
}

/* The strict load. `owner` ("model") words the messages; NULL for a generic destination. */
static int load_strict(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[],
                       const char *owner, ct_values_check check, void *ctx) {
    CT_CHECK(n >= 0 && (n == 0 || tensors), "ct_safetensors_load", "bad arguments (n = %d)", n);
    const st_entry **match = calloc((size_t)(n ? n : 1), sizeof *match);
    unsigned char *used = calloc((size_t)(f->n ? f->n : 1), 1);
    if (!match || !used) {
        free(match);
        free(used);
        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", f->path);
    }
    int rc = CT_OK, missing = 0, first_missing = -1;
    for (int i = 0; i < n; i++) {
        const char *name = names ? names[i] : tensors[i] ? tensors[i]->name : NULL;
        CT_CHECK(tensors[i] && name, "ct_safetensors_load", "tensor %d is NULL or has no name", i);
        const st_entry *e = find_entry(f, name);
        if (!e) {
            if (first_missing < 0) first_missing = i;
            missing++;
            continue;
        }
        CT_CHECK(!used[e - f->entries], "ct_safetensors_load", "two destinations named \"%s\"", name);
        used[e - f->entries] = 1;
        match[i] = e;
        if (!same_shape(e->shape, tensors[i]) && rc == CT_OK) {
            char fs[96], ms[96];
            ct_shape_str(e->shape, fs, sizeof fs);
            ct_tensor_shape_str(tensors[i], ms, sizeof ms);
            if (owner)
                rc = ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\" has shape %s in the file but %s in the %s", f->path, name,
                                  fs, ms, owner);
            else
                rc = ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\" has shape %s in the file but %s is expected", f->path,
                                  name, fs, ms);
        }
    }
    if (missing) { /* a missing tensor says more than a shape mismatch found before it */
        const char *name = names ? names[first_missing] : tensors[first_missing]->name;
        char ms[96], more[48] = "";
        ct_tensor_shape_str(tensors[first_missing], ms, sizeof ms);
        if (missing > 1) snprintf(more, sizeof more, "; %d tensors are missing in all", missing);
        if (owner)
            rc = ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\" is missing from the file (the %s has it, shape %s)%s",
                              f->path, name, owner, ms, more);
        else
            rc = ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\" is missing from the file (expected shape %s)%s", f->path,
                              name, ms, more);
    } else if (rc == CT_OK) {
        int extra = 0, first_extra = -1;
        for (int i = 0; i < f->n; i++)
            if (!used[i]) extra++, first_extra = first_extra < 0 ? i : first_extra;
        if (extra) {
            char more[64] = "";
            if (extra > 1) snprintf(more, sizeof more, "; %d tensors in the file are unexpected in all", extra);
            if (owner)
                rc = ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\" is in the file but not in the %s%s", f->path,
                                  f->entries[first_extra].name, owner, more);
            else
                rc = ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\" is in the file but was not asked for%s", f->path,
                                  f->entries[first_extra].name, more);
        }
    }
    if (rc == CT_OK && check) { /* the values, each converted into scratch space and looked at */
        size_t most = 1;
        for (int i = 0; i < n; i++) most = tensors[i]->size > most ? tensors[i]->size : most;
        ct_real *scratch = malloc(most * sizeof *scratch);
        if (!scratch) rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory", f->path);
        for (int i = 0; i < n && rc == CT_OK; i++) {
            convert_to_real(scratch, f->data + match[i]->begin, tensors[i]->size, match[i]->dtype);
            rc = check(match[i]->name, i, scratch, tensors[i]->size, ctx);
        }
        free(scratch);
    }
    if (rc == CT_OK) /* everything checked: now, and only now, write */
        for (int i = 0; i < n; i++)
            convert_to_real(tensors[i]->data, f->data + match[i]->begin, tensors[i]->size, match[i]->dtype);
    free(match);
    free(used);
    return rc;
}

int ct_safetensors_load(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[]) {
    check_file(f, "ct_safetensors_load");
    return load_strict(f, n, names, tensors, NULL, NULL, NULL);
}

int ct_safetensors_load_checked(const ct_safetensors *f, int n, const char *const names[], ct_tensor *const tensors[],
                                ct_values_check check, void *ctx) {
    check_file(f, "ct_safetensors_load_checked");
    CT_CHECK(check, "ct_safetensors_load_checked", "NULL check");
    return load_strict(f, n, names, tensors, NULL, check, ctx);
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* A JSON string as serde_json writes it: quotes, backslashes and control bytes escaped. */
static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc) sb_str(b, esc);
        else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

typedef struct {
    const char *name;
    const ct_tensor *t;
} named;

static int by_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

static int write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len < ((size_t)1 << 30) ? len : (size_t)1 << 30);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* ct_real values as little-endian bytes (a plain write on little-endian hosts). */
static int write_reals(int fd, const ct_real *x, size_t n) {
    if (HOST_LITTLE_ENDIAN) return write_all(fd, x, n * sizeof *x);
    uint8_t chunk[4096];
    const size_t per = sizeof chunk / sizeof *x;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t k = 0; k < m; k++) {
            uint8_t raw[sizeof(ct_real)];
            memcpy(raw, &x[i + k], sizeof raw);
            for (size_t b = 0; b < sizeof raw; b++) chunk[k * sizeof raw + b] = raw[sizeof raw - 1 - b];
        }
        if (write_all(fd, chunk, m * sizeof *x) != 0) return -1;
    }
    return 0;
}

/* ---- temporary files ---------------------------------------------------------------------
 * A save writes into an unnamed file in the target's directory (O_TMPFILE), syncs it, and only
 * then gives it a name: linkat straight to `path` when nothing is there, else linkat to a
 * temporary name and rename that over `path`. A save killed while writing leaves nothing behind.
 * Where O_TMPFILE is not supported (EOPNOTSUPP, EISDIR, EINVAL: older kernels, some network and
 * FUSE file systems) or CTAPE_NO_TMPFILE is set in the environment, the file is written under
 * the temporary name from the start. Temporary names are "<path>.tmp-HHHHHHHH-PID-XXXXXX": a tag
 * of this host's name, the writer's pid and a random suffix, so every save first removes the
 * leftovers in its directory of writers on this host that are gone (a kill -9 between creating
 * and renaming): same tag, pid not alive, last modified before this save began. */

/* FNV-1a of this host's name: tells our temporary files from another host's on a shared disk. */
static uint32_t host_tag(void) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    uint32_t h = 2166136261u;
    for (const char *c = host; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    return h;
}

#define TEMP_MARK ".tmp-"

/* Is `name` one of our temporary names (the suffix after the last ".tmp-": 8 hex digits, '-',
 * a pid, '-', 6 letters or digits)? *tag and *pid get its parts. */
static int parse_temp_name(const char *name, uint32_t *tag, long *pid) {
    const char *at = NULL;
    for (const char *p = strstr(name, TEMP_MARK); p; p = strstr(p + 1, TEMP_MARK)) at = p;
    if (!at) return 0;
    const char *p = at + strlen(TEMP_MARK);
    uint32_t t = 0;
    for (int i = 0; i < 8; i++, p++) {
        int c = *p, d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        t = t << 4 | (uint32_t)d;
    }
    if (*p++ != '-' || *p < '1' || *p > '9') return 0;
    long v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (++digits > 9) return 0;
        else v = v * 10 + (*p - '0');
    if (*p++ != '-') return 0;
    for (int i = 0; i < 6; i++, p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return 0;
    if (*p) return 0;
    *tag = t;
    *pid = v;
    return 1;
}

static int before(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* Removes our temporary files in `dir` left by writers on this host that are gone. Best effort:
 * nothing here can fail the save. */
static void sweep_stale_temps(const char *dir, struct timespec started) {
    DIR *d = opendir(dir);
    if (!d) return;
    const uint32_t ours = host_tag();
    for (struct dirent *e; (e = readdir(d));) {
        uint32_t tag;
        long pid;
        struct stat st;
        if (!parse_temp_name(e->d_name, &tag, &pid) || tag != ours) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (before(st.st_mtim, started)) unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* The directory holding `path`, malloc'd ("." for a bare name). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* A fresh temporary name for `path` into *tmp_out (malloc'd), and, with create, the file made
 * exclusively with mode 0666 (the umask applies; mkstemp's 0600 would survive the rename):
 * returns its descriptor. Without create, returns 0 once the name is made. */
static int temp_name(const char *path, char **tmp_out, int create) {
    static unsigned long counter;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(path), cap = len + 40;
    char *tmp = malloc(cap);
    *tmp_out = NULL;
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ct_rng rng;
    ct_rng_seed(&rng, (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^
                          (uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) << 20 ^ (uint64_t)(uintptr_t)tmp);
    const uint32_t tag = host_tag();
    for (int attempt = 0; attempt < 100; attempt++) {
        int k = snprintf(tmp, cap, "%s" TEMP_MARK "%08x-%ld-", path, (unsigned)tag, (long)getpid());
        for (int i = 0; i < 6; i++) tmp[k + i] = alphabet[ct_rng_u64(&rng) % (sizeof alphabet - 1)];
        tmp[k + 6] = 0;
        if (!create) {
            *tmp_out = tmp;
            return 0;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    int e = errno;
    free(tmp);
    errno = e;
    return -1;
}

/* An unnamed file in `dir` (mode 0666 less the umask), or -1 with errno. */
static int open_unnamed(const char *dir) {
    const char *off = getenv("CTAPE_NO_TMPFILE");
    if (off && *off && strcmp(off, "0") != 0) {
        errno = EOPNOTSUPP;
        return -1;
    }
#ifdef O_TMPFILE
    return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

/* Gives the unnamed file fd the name `to`: through /proc/self/fd (any user), else AT_EMPTY_PATH
 * (needs CAP_DAC_READ_SEARCH). */
static int link_unnamed(int fd, const char *to) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0) return 0;
    if (errno != ENOENT && errno != ENOTDIR && errno != EACCES && errno != EPERM) return -1;
    int e = errno;
#ifdef AT_EMPTY_PATH
    if (linkat(fd, "", AT_FDCWD, to, AT_EMPTY_PATH) == 0) return 0;
#endif
    errno = e;
    return -1;
}

/* fsync of the directory holding `path`, so the rename itself is durable. */
static int sync_parent_dir(const char *path) {
    char *dir = dir_of(path);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    /* Some file systems cannot sync a directory at all (EINVAL): nothing more can be done. */
    return rc != 0 && e != EINVAL ? -1 : 0;
}

int ct_safetensors_write(const char *path, int n, const char *const names[], ct_tensor *const tensors[],
                         const char *const metadata[]) {
    static const char *const op = "ct_safetensors_write";
    CT_CHECK(path && *path, op, "NULL or empty path");
    CT_CHECK(n >= 0 && (n == 0 || tensors), op, "bad arguments (n = %d)", n);
    named *list = malloc((size_t)(n ? n : 1) * sizeof *list);
    if (!list) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    for (int i = 0; i < n; i++) {
        const char *name = names ? names[i] : tensors[i] ? tensors[i]->name : NULL;
        CT_CHECK(tensors[i] && name && *name, op, "%s: tensor %d is NULL or has no name", path, i);
        CT_CHECK(strcmp(name, "__metadata__") != 0, op, "%s: \"__metadata__\" is reserved, not a tensor name", path);
        CT_CHECK(utf8_valid_prefix((const uint8_t *)name, strlen(name)) == strlen(name), op,
                 "%s: tensor name \"%s\" is not valid UTF-8", path, name);
        CT_CHECK(tensors[i]->data || tensors[i]->size == 0, op, "%s: tensor \"%s\" has no data", path, name);
        list[i] = (named){name, tensors[i]};
    }
    if (n) qsort(list, (size_t)n, sizeof *list, by_named);
    for (int i = 1; i < n; i++)
        CT_CHECK(strcmp(list[i - 1].name, list[i].name) != 0, op, "%s: two tensors named \"%s\"", path, list[i].name);

    /* The header, compact as the reference writes it, then padded with spaces. */
    sbuf h = {0};
    sb_str(&h, "{");
    if (metadata && metadata[0]) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; metadata[i]; i += 2) {
            CT_CHECK(metadata[i + 1], op, "%s: metadata key \"%s\" has no value (pairs, then NULL)", path, metadata[i]);
            if (i) sb_str(&h, ",");
            sb_json_string(&h, metadata[i]);
            sb_str(&h, ":");
            sb_json_string(&h, metadata[i + 1]);
        }
        sb_str(&h, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = list[i].t;
        if (i || (metadata && metadata[0])) sb_str(&h, ",");
        sb_json_string(&h, list[i].name);
        sb_str(&h, ":{\"dtype\":\"" REAL_DTYPE "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) sb_printf(&h, d ? ",%d" : "%d", t->shape[d]);
        uint64_t bytes = (uint64_t)t->size * sizeof(ct_real);
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset, (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    sb_str(&h, "}");
    while (!h.oom && h.len % 8) sb_str(&h, " ");
    if (h.oom) {
        free(h.p);
        free(list);
        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory building the header", path);
    }
    uint8_t len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)h.len >> (8 * b));

    /* Write an unnamed file (or a temporary one), fsync, name it, fsync the directory. */
    struct timespec started;
    clock_gettime(CLOCK_REALTIME, &started);
    char *tmp = NULL, *dir = dir_of(path);
    const char *stage = "cannot create a temporary file beside it";
    int fd = -1, unnamed = 0;
    if (!dir) {
        errno = ENOMEM;
        goto fail;
    }
    sweep_stale_temps(dir, started);
    fd = open_unnamed(dir);
    unnamed = fd >= 0;
    if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) goto fail;
write:
    if (fd < 0 && (fd = temp_name(path, &tmp, 1)) < 0) goto fail;
    stage = "cannot write";
    if (write_all(fd, len8, 8) != 0 || write_all(fd, h.p, h.len) != 0) goto fail;
    for (int i = 0; i < n; i++)
        if (write_reals(fd, list[i].t->data, list[i].t->size) != 0) goto fail;
    stage = "cannot sync";
    if (fsync(fd) != 0) goto fail;
    if (unnamed) {
        stage = "cannot link the written file into its directory";
        if (link_unnamed(fd, path) == 0) goto named; /* nothing was there: done */
        if (errno != EEXIST) { /* no way to name an unnamed file here (no /proc, no privilege) */
            close(fd);
            fd = -1;
            unnamed = 0;
            stage = "cannot create a temporary file beside it";
            goto write;
        }
        for (int attempt = 0;; attempt++) {          /* a temporary name, renamed over `path` below */
            free(tmp);
            if (temp_name(path, &tmp, 0) != 0) goto fail;
            if (link_unnamed(fd, tmp) == 0) break;
            if (errno != EEXIST || attempt == 100) {
                free(tmp);
                tmp = NULL;
                goto fail;
            }
        }
    }
    stage = "cannot close";
    int closed = close(fd);
    fd = -1;
    if (closed != 0) goto fail;
    stage = "cannot rename the temporary file over it";
    if (rename(tmp, path) != 0) goto fail;
named:
    if (fd >= 0) close(fd); /* linked straight to path: the data is synced, close cannot lose it */
    free(tmp);
    free(dir);
    free(h.p);
    free(list);
    if (sync_parent_dir(path) != 0)
        return ct_set_error(CT_ERR_IO, "%s: written, but syncing its directory failed: %s", path, strerror(errno));
    return CT_OK;

fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        ct_set_error(CT_ERR_IO, "%s: %s (%s): %s; nothing was changed", path, stage, tmp, strerror(e));
    } else {
        ct_set_error(CT_ERR_IO, "%s: %s: %s; nothing was changed", path, stage, strerror(e));
    }
    free(tmp);
    free(dir);
    free(h.p);
    free(list);
    return CT_ERR_IO;
}

/* ---- numbers in metadata, the same in every locale ----------------------------------------
 * printf and strtod follow the program's LC_NUMERIC: after setlocale(LC_ALL, "") in a German or
 * French locale, "%.17g" writes "0,002" and strtod stops at the '.' of "0.002". Both run here
 * in a C locale object instead (uselocale for the one call, strtod_l), whatever the program's. */

static locale_t c_numeric;
static void make_c_numeric(void) { c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static locale_t c_locale(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_c_numeric);
    return c_numeric;
}

/* The current locale's decimal point, where it is not ".". (newlocale failed: out of memory.) */
static const char *local_point(void) {
    const char *p = localeconv()->decimal_point;
    return p && *p && strcmp(p, ".") != 0 ? p : NULL;
}

const char *ct_safetensors_format_number(double x, char buf[32]) {
    locale_t c = c_locale();
    if (c) {
        locale_t was = uselocale(c);
        snprintf(buf, 32, "%.17g", x);
        uselocale(was);
        return buf;
    }
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.17g", x);
    const char *point = local_point(), *at = point ? strstr(tmp, point) : NULL;
    if (at) snprintf(buf, 32, "%.*s.%s", (int)(at - tmp), tmp, at + strlen(point));
    else snprintf(buf, 32, "%s", tmp);
    return buf;
}

int ct_safetensors_parse_number(const char *s, double *out) {
    CT_CHECK(s && out, "ct_safetensors_parse_number", "NULL string or out");
    char *end;
    locale_t c = c_locale();
    if (c) {
        *out = strtod_l(s, &end, c);
        return end != s && !*end ? CT_OK : CT_ERR_FORMAT;
    }
    const char *point = local_point(), *dot = strchr(s, '.');
    if (!point || !dot) {
        *out = strtod(s, &end);
        return end != s && !*end ? CT_OK : CT_ERR_FORMAT;
    }
    size_t len = strlen(s) + strlen(point);
    char *local = malloc(len);
    if (!local) return CT_ERR_MEMORY;
    snprintf(local, len, "%.*s%s%s", (int)(dot - s), s, point, dot + 1);
    *out = strtod(local, &end);
    int rc = end != local && !*end ? CT_OK : CT_ERR_FORMAT;
    free(local);
    return rc;
}

/* ---- finiteness before a save ------------------------------------------------------------ */

int ct_safetensors_check_finite(const char *path, int n, const char *const names[], ct_tensor *const tensors[]) {
    CT_CHECK(path && n >= 0 && (n == 0 || tensors), "ct_safetensors_check_finite", "bad arguments (n = %d)", n);
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = tensors[i];
        if (!t || !t->data) continue;
        const ct_real *x = t->data;
        const size_t len = t->size;
        /* x − x is 0 for every finite x and NaN for NaN and ±Inf: the sum is 0 exactly when all are finite */
        ct_real acc = 0;
#pragma omp simd reduction(+ : acc)
        for (size_t k = 0; k < len; k++) acc += x[k] - x[k];
        if (acc == 0) continue;
        const char *name = names ? names[i] : t->name ? t->name : "(unnamed)";
        for (size_t k = 0; k < len; k++)
            if (!isfinite(x[k]))
                return ct_set_error(CT_ERR_VALUE, "%s: tensor \"%s\"[%zu] = %g is not finite; nothing was written (a file "
                                    "already there is unchanged). ct_safetensors_write saves non-finite values when that "
                                    "is wanted (debugging)", path, name, k, (double)x[k]);
    }
    return CT_OK;
}

/* ---- models ------------------------------------------------------------------------------- */

/* Every parameter then every buffer of m, into a malloc'd array (*n of them); NULL when out of
 * memory. */
static ct_tensor **model_tensors(const ct_model *m, int *n) {
    int np = ct_model_param_count(m), nb = ct_model_buffer_count(m);
    ct_tensor **all = malloc((size_t)(np + nb ? np + nb : 1) * sizeof *all);
    if (!all) return NULL;
    for (int i = 0; i < np; i++) all[i] = ct_model_param(m, i);
    for (int i = 0; i < nb; i++) all[np + i] = ct_model_buffer(m, i);
    *n = np + nb;
    return all;
}

int ct_model_save(const ct_model *m, const char *path) {
    CT_CHECK(m && path, "ct_model_save", "NULL model or path");
    int n;
    ct_tensor **all = model_tensors(m, &n);
    if (!all) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    /* "format": "pt" is what safetensors.torch's loader looks for. */
    static const char *const meta[] = {"format", "pt", "framework", "ctape", NULL};
    int rc = ct_safetensors_check_finite(path, n, NULL, all);
    if (rc == CT_OK) rc = ct_safetensors_write(path, n, NULL, all, meta);
    free(all);
    return rc;
}

int ct_model_load(ct_model *m, const char *path) {
    CT_CHECK(m && path, "ct_model_load", "NULL model or path");
    ct_safetensors *f;
    int rc = st_open(path, &f);
    if (rc != CT_OK) return rc;
    int n;
    ct_tensor **all = model_tensors(m, &n);
    rc = all ? load_strict(f, n, NULL, all, "model", NULL, NULL) : ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    free(all);
    ct_safetensors_close(f);
    return rc;
}
