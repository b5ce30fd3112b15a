/* core/safetensors_header.h — private to core/: the parsed safetensors header, shared by the
 * reader and writer (core/safetensors.c) and the header's JSON (core/safetensors_json.c). */
#ifndef CTAPE_CORE_SAFETENSORS_HEADER_H
#define CTAPE_CORE_SAFETENSORS_HEADER_H

#include "safetensors.h"

#define ST_HEADER_LIMIT 100000000ull /* the reference implementation's MAX_HEADER_SIZE */

/* The dtypes ctape reads, with their names in the header and their sizes in bytes. */
typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_N_DTYPES } st_dtype;
typedef struct {
    const char *name;
    size_t size;
} st_dtype_info;
extern const st_dtype_info ct_st_dtypes[ST_N_DTYPES];

typedef struct {
    char *name;
    st_dtype dtype;
    ct_shape shape;
    uint64_t begin, end; /* data_offsets: [begin, end) from the start of the data */
} st_entry;

typedef struct {
    char *key, *value;
} st_meta;

#define ST_MAGIC 0x74666173u

struct ct_safetensors {
    uint32_t magic;    /* ST_MAGIC from a successful open until ct_safetensors_close */
    char *path;
    st_entry *entries; /* sorted by name once validated */
    int n;
    st_meta *meta;     /* sorted by key */
    int n_meta;
    uint8_t *data;     /* the data buffer */
    size_t data_len;
};

/* Length of the valid UTF-8 prefix of s[0..n) (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF); n when all of it is valid. */
size_t ct_st_utf8_valid_prefix(const uint8_t *s, size_t n);

/* The whole header s[0..n): {"__metadata__": {...}, "name": {...}, ...} followed only by
 * blanks, into f->entries (in file order) and f->meta (sorted by key, no key twice). CT_OK, or
 * CT_ERR_FORMAT / CT_ERR_MEMORY with a message naming `path` and the header byte at fault. */
int ct_st_parse_header(const char *path, const uint8_t *s, size_t n, ct_safetensors *f);

/* A growing string for the header a write builds; `oom` is set (and stays) when a realloc failed. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} st_text;
void ct_st_text_str(st_text *b, const char *s);
void ct_st_text_printf(st_text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string as serde_json writes it: quotes, backslashes and control bytes escaped. */
void ct_st_text_json_string(st_text *b, const char *s);

#endif
