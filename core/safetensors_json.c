/* core/safetensors_json.c — the JSON of a safetensors header, both ways: a strict parser for
 * exactly the shape the format allows (objects, arrays, strings with escapes, non-negative
 * integers), whose every error gives the byte offset in the header of what is wrong, and the
 * string writer the header of a save is built with. Private to core/ (safetensors_header.h). */
#define CT_BUILDING_LIBRARY
#include "safetensors_header.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------------------------- */

size_t ct_st_utf8_valid_prefix(const uint8_t *s, size_t n) {
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
                for (int d = 0; d < ST_N_DTYPES; d++)
                    if (!strcmp(dt, ct_st_dtypes[d].name)) id = d;
                if (id < 0) {
                    int rc = ct_set_error(CT_ERR_FORMAT,
                                          "%s: tensor \"%s\" has dtype \"%.40s\" (header byte %zu), which ctape does not "
                                          "read (F32, F64, F16, BF16, I64, I32)",
                                          j->path, e->name, dt, dt_pos);
                    free(dt);
                    return rc;
                }
                free(dt);
                e->dtype = (st_dtype)id;
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
int ct_st_parse_header(const char *path, const uint8_t *s, size_t n, ct_safetensors *f) {
    json j = {path, s, n, 0};
    size_t valid = ct_st_utf8_valid_prefix(s, n);
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

/* ---- writing ------------------------------------------------------------------------------ */

static void text_put(st_text *b, const char *s, size_t n) {
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

void ct_st_text_str(st_text *b, const char *s) { text_put(b, s, strlen(s)); }

void ct_st_text_printf(st_text *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    text_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* A JSON string as serde_json writes it: quotes, backslashes and control bytes escaped. */
void ct_st_text_json_string(st_text *b, const char *s) {
    text_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc) ct_st_text_str(b, esc);
        else if (c < 0x20) ct_st_text_printf(b, "\\u%04x", c);
        else text_put(b, (const char *)&c, 1);
    }
    text_put(b, "\"", 1);
}
