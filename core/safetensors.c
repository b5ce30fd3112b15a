/* core/safetensors.c — safetensors files (core/safetensors.h): opening and validating, the
 * strict load with dtype conversion, writing, and numbers in metadata in every locale. The
 * header's JSON is in safetensors_json.c, the atomic write in atomic_file.c.
 *
 * Writing: tensors sorted by name (byte order, as strcmp) in the header and in the data, so the
 * file does not depend on the order layers were created in; with one dtype this is exactly the
 * layout the reference implementation writes. Reading trusts nothing (the checks are listed in
 * the header) and reads the data only once the whole header is known to be sound. */
#define CT_BUILDING_LIBRARY
#include "safetensors_header.h"
#include "atomic_file.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


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

const st_dtype_info ct_st_dtypes[ST_N_DTYPES] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
};
#ifdef CT_PRECISION_64
#define REAL_DT ST_F64
#else
#define REAL_DT ST_F32
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
static void convert_to_real(ct_real *dst, const uint8_t *src, size_t n, st_dtype dt) {
    if (HOST_LITTLE_ENDIAN && dt == REAL_DT) {
        memcpy(dst, src, n * sizeof(ct_real)); /* the file's dtype is ct_real's: bytes as they are */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * ct_st_dtypes[dt].size;
        switch (dt) {
        case ST_F64: {
            uint64_t u = le64(p);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (ct_real)d;
            break;
        }
        case ST_F32: dst[i] = (ct_real)f32_from_bits(le32(p)); break;
        case ST_F16: dst[i] = (ct_real)f16_to_float(le16(p)); break;
        case ST_BF16: dst[i] = (ct_real)bf16_to_float(le16(p)); break;
        case ST_I64: dst[i] = (ct_real)(int64_t)le64(p); break;
        case ST_I32: dst[i] = (ct_real)(int32_t)le32(p); break;
        case ST_N_DTYPES: break; /* not a dtype: the parser never makes one */
        }
    }
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
        uint64_t bytes = ct_st_dtypes[e->dtype].size; /* elements × size, without wrapping */
        int wraps = 0;
        for (int d = 0; d < e->shape.ndim; d++) wraps |= __builtin_mul_overflow(bytes, (uint64_t)e->shape.d[d], &bytes);
        if (wraps || bytes != e->end - e->begin) {
            char need[32] = "more than 2^64", shape[96];
            ct_shape_str(e->shape, shape, sizeof shape);
            if (!wraps) snprintf(need, sizeof need, "%llu", (unsigned long long)bytes);
            return ct_set_error(CT_ERR_FORMAT, "%s: tensor \"%s\" is %s %s (%s bytes) but its data_offsets [%llu, %llu] span %llu bytes",
                                f->path, e->name, ct_st_dtypes[e->dtype].name, shape, need, (unsigned long long)e->begin,
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
    if (header_len > ST_HEADER_LIMIT) {
        ct_set_error(CT_ERR_FORMAT, "%s: oversized header: %llu bytes (the limit is %llu)", path,
                     (unsigned long long)header_len, ST_HEADER_LIMIT);
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
    if ((rc = ct_st_parse_header(path, header, (size_t)header_len, f)) != CT_OK) goto fail;
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
    return ct_st_dtypes[entry_at(f, i, "ct_safetensors_dtype")->dtype].name;
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

int ct_safetensors_metadata_count(const ct_safetensors *f) {
    check_file(f, "ct_safetensors_metadata_count");
    return f->n_meta;
}

const char *ct_safetensors_metadata_key(const ct_safetensors *f, int i) {
    check_file(f, "ct_safetensors_metadata_key");
    CT_CHECK(i >= 0 && i < f->n_meta, "ct_safetensors_metadata_key", "index %d is outside [0, %d)", i, f->n_meta);
    return f->meta[i].key;
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

int ct_safetensors_load_into(const ct_safetensors *f, const char *owner, int n, const char *const names[],
                             ct_tensor *const tensors[], ct_values_check check, void *ctx) {
    check_file(f, "ct_safetensors_load_into");
    CT_CHECK(owner && *owner, "ct_safetensors_load_into", "NULL or empty owner (\"model\", ...)");
    return load_strict(f, n, names, tensors, owner, check, ctx);
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const ct_tensor *t;
} named;

static int by_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

/* ct_real values as little-endian bytes (a plain write on little-endian hosts). */
static int write_reals(int fd, const ct_real *x, size_t n) {
    if (HOST_LITTLE_ENDIAN) return ct_write_all(fd, x, n * sizeof *x);
    uint8_t chunk[4096];
    const size_t per = sizeof chunk / sizeof *x;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t k = 0; k < m; k++) {
            uint8_t raw[sizeof(ct_real)];
            memcpy(raw, &x[i + k], sizeof raw);
            for (size_t b = 0; b < sizeof raw; b++) chunk[k * sizeof raw + b] = raw[sizeof raw - 1 - b];
        }
        if (ct_write_all(fd, chunk, m * sizeof *x) != 0) return -1;
    }
    return 0;
}

/* The header for the sorted list[0..n), compact as the reference writes it, then padded with
 * spaces to a multiple of 8 bytes. CT_OK or CT_ERR_MEMORY (h->p freed). */
static int build_header(const char *path, const named *list, int n, const char *const metadata[], st_text *h) {
    static const char *const op = "ct_safetensors_write";
    ct_st_text_str(h, "{");
    if (metadata && metadata[0]) {
        ct_st_text_str(h, "\"__metadata__\":{");
        for (int i = 0; metadata[i]; i += 2) {
            CT_CHECK(metadata[i + 1], op, "%s: metadata key \"%s\" has no value (pairs, then NULL)", path, metadata[i]);
            if (i) ct_st_text_str(h, ",");
            ct_st_text_json_string(h, metadata[i]);
            ct_st_text_str(h, ":");
            ct_st_text_json_string(h, metadata[i + 1]);
        }
        ct_st_text_str(h, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = list[i].t;
        if (i || (metadata && metadata[0])) ct_st_text_str(h, ",");
        ct_st_text_json_string(h, list[i].name);
        ct_st_text_str(h, ":{\"dtype\":\"" REAL_DTYPE "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) ct_st_text_printf(h, d ? ",%d" : "%d", t->shape[d]);
        uint64_t bytes = (uint64_t)t->size * sizeof(ct_real);
        ct_st_text_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                          (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    ct_st_text_str(h, "}");
    while (!h->oom && h->len % 8) ct_st_text_str(h, " ");
    if (!h->oom) return CT_OK;
    free(h->p);
    h->p = NULL;
    return ct_set_error(CT_ERR_MEMORY, "%s: out of memory building the header", path);
}

typedef struct {
    const st_text *header;
    const named *list;
    int n;
} file_content;

/* The file: the header's length (u64, little endian), the header, the tensors' data. */
static int write_content(int fd, void *ctx) {
    const file_content *c = ctx;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)c->header->len >> (8 * b));
    if (ct_write_all(fd, len8, 8) != 0 || ct_write_all(fd, c->header->p, c->header->len) != 0) return -1;
    for (int i = 0; i < c->n; i++)
        if (write_reals(fd, c->list[i].t->data, c->list[i].t->size) != 0) return -1;
    return 0;
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
        CT_CHECK(ct_st_utf8_valid_prefix((const uint8_t *)name, strlen(name)) == strlen(name), op,
                 "%s: tensor name \"%s\" is not valid UTF-8", path, name);
        CT_CHECK(tensors[i]->data || tensors[i]->size == 0, op, "%s: tensor \"%s\" has no data", path, name);
        list[i] = (named){name, tensors[i]};
    }
    if (n) qsort(list, (size_t)n, sizeof *list, by_named);
    for (int i = 1; i < n; i++)
        CT_CHECK(strcmp(list[i - 1].name, list[i].name) != 0, op, "%s: two tensors named \"%s\"", path, list[i].name);
    st_text h = {0};
    int rc = build_header(path, list, n, metadata, &h);
    if (rc == CT_OK) rc = ct_atomic_write_file(path, write_content, &(file_content){&h, list, n});
    free(h.p);
    free(list);
    return rc;
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

