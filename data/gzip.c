/* data/gzip.c — whole-file reads, with gzip (RFC 1952) inflated in memory, and CRC-32.
 *
 * A gzip file is one or more members, each:
 *
 *     1f 8b  CM=8  FLG  MTIME(4)  XFL  OS            10-byte fixed header
 *     [XLEN(2, little endian) + XLEN bytes]           if FLG & FEXTRA
 *     [file name, zero-terminated]                    if FLG & FNAME
 *     [comment, zero-terminated]                      if FLG & FCOMMENT
 *     [CRC16 of the header so far (2)]                if FLG & FHCRC
 *     raw deflate stream (RFC 1951)
 *     CRC32(4) ISIZE(4)                               of the inflated data, little endian
 *
 * The deflate stream is inflated by stb (stb_image's zlib decoder; no zlib dependency). stb does
 * not report how many input bytes the stream used, so the end of a member is found by looking
 * for its trailer: the first place after the header holding the CRC32 and size of what stb
 * produced that is followed by the end of the file or by another member's magic. A wrong match
 * would need 64 bits to agree by chance.
 *
 * Output is bounded: stb inflates into a buffer of a fixed size and stops when a stream holds
 * more. A reader that knows its format (IDX) inflates the first bytes, learns from its header how
 * long the content is, and inflates the whole into exactly that, so a bomb is refused once it
 * passes the declared size; everything is at most CT_GZIP_MAX_BYTES and at most what deflate can
 * make of the file's size. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* ---- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as gzip and PNG use it ------- */

/* Slicing-by-8: crc_table[k][b] is the CRC of byte b followed by k zero bytes, so eight input
 * bytes are folded in with eight lookups instead of eight dependent steps: the byte-at-a-time
 * loop is a chain of dependent loads, slow on the tens of MB of an MNIST-sized file. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int n = 0; n < 256; n++)
            crc_table[k][n] = (crc_table[k - 1][n] >> 8) ^ crc_table[0][crc_table[k - 1][n] & 0xff];
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t ct_crc32(uint32_t crc, const void *data, size_t len) {
    pthread_once(&crc_table_once, crc_table_init);
    const uint8_t *p = data;
    const uint32_t(*t)[256] = (const uint32_t(*)[256])crc_table;
    crc = ~crc;
    for (; len >= 8; len -= 8, p += 8) {
        uint32_t lo = crc ^ le32(p), hi = le32(p + 4);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    for (; len; len--, p++) crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- whole-file read --------------------------------------------------------------------- */

int ct_read_whole_file(const char *path, uint64_t max, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return ct_set_error(CT_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return ct_set_error(CT_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return ct_set_error(CT_ERR_FORMAT, "%s: file of %lld bytes is larger than the %llu allowed", path,
                            (long long)st.st_size, (unsigned long long)max);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, f);
    int read_failed = ferror(f);
    fclose(f);
    if (read_failed || got != size) {
        free(buf);
        return ct_set_error(CT_ERR_IO, "%s: read error after %zu of %zu bytes", path, got, size);
    }
    *out = buf;
    *len = size;
    return CT_OK;
}

/* ---- gzip -------------------------------------------------------------------------------- */

enum { FTEXT = 1, FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16, FRESERVED = 0xe0 };

static int is_gzip_magic(const uint8_t *p, size_t avail) {
    return avail >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* Parses the member header at gz[pos..]; sets *body to the offset of its deflate stream. */
static int parse_member_header(const char *path, const uint8_t *gz, size_t len, size_t pos, size_t *body) {
    if (len - pos < 10 + 8) return ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is truncated (header)", path);
    const uint8_t *h = gz + pos;
    if (h[2] != 8)
        return ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt: compression method %d is not deflate", path, h[2]);
    int flags = h[3];
    if (flags & FRESERVED)
        return ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt: reserved header flags 0x%02x set", path, flags);
    size_t p = pos + 10;
    if (flags & FEXTRA) {
        if (len - p < 2) goto truncated;
        size_t xlen = (size_t)gz[p] | (size_t)gz[p + 1] << 8;
        if (len - p - 2 < xlen) goto truncated;
        p += 2 + xlen;
    }
    for (int field = FNAME; field <= FCOMMENT; field <<= 1) {
        if (!(flags & field)) continue;
        const uint8_t *end = memchr(gz + p, 0, len - p);
        if (!end) goto truncated;
        p = (size_t)(end - gz) + 1;
    }
    if (flags & FHCRC) {
        if (len - p < 2) goto truncated;
        uint32_t want = (uint32_t)gz[p] | (uint32_t)gz[p + 1] << 8;
        if ((ct_crc32(0, h, p - pos) & 0xffff) != want)
            return ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt: header CRC mismatch", path);
        p += 2;
    }
    if (len - p < 8) goto truncated;
    *body = p;
    return CT_OK;
truncated:
    return ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is truncated (header)", path);
}

/* Finds the member's trailer (crc, isize) at or after `from`: the first match followed by the
 * end of the data or by another gzip magic. Returns its offset, or 0 when there is none. */
static size_t find_trailer(const uint8_t *gz, size_t len, size_t from, uint32_t crc, uint32_t isize) {
    uint8_t want[8];
    for (int i = 0; i < 4; i++) {
        want[i] = (uint8_t)(crc >> (8 * i));
        want[4 + i] = (uint8_t)(isize >> (8 * i));
    }
    size_t p = from;
    while (p + 8 <= len) {
        const uint8_t *hit = memmem(gz + p, len - p, want, 8);
        if (!hit) return 0;
        size_t at = (size_t)(hit - gz);
        if (at + 8 == len || is_gzip_magic(gz + at + 8, len - at - 8)) return at;
        p = at + 1;
    }
    return 0;
}


enum { MEMBERS_OK, MEMBERS_FULL, MEMBERS_ERROR };

/* Inflates the members of gz[0..len) one after another into buf[0..cap), checking each against
 * its trailer, and stops early after the member that brings *used to `enough` or more (0: never).
 * *ended says whether every member was read. MEMBERS_FULL: the content is longer than cap. */
static int inflate_members(const char *path, const uint8_t *gz, size_t len, uint8_t *buf, size_t cap,
                           size_t enough, size_t *used, int *ended) {
    size_t pos = 0;
    *used = 0;
    while (pos < len && !(enough && *used >= enough)) {
        size_t body = 0, n = 0;
        if (!is_gzip_magic(gz + pos, len - pos)) {
            ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt: garbage after member at byte %zu", path, pos);
            return MEMBERS_ERROR;
        }
        if (parse_member_header(path, gz, len, pos, &body) != CT_OK) return MEMBERS_ERROR;
        int r = ct_inflate_raw(gz + body, len - body, buf + *used, cap - *used, &n);
        if (r == CT_INFLATE_FULL) return MEMBERS_FULL;
        if (r == CT_INFLATE_CORRUPT) {
            ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt (invalid deflate data)", path);
            return MEMBERS_ERROR;
        }
        uint32_t crc = ct_crc32(0, buf + *used, n);
        size_t trailer = find_trailer(gz, len, body, crc, (uint32_t)n);
        if (!trailer) {
            /* Say which check failed, reading the last 8 bytes as the trailer. */
            uint32_t file_crc = le32(gz + len - 8), file_size = le32(gz + len - 4);
            if (file_size != (uint32_t)n)
                ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt or truncated: inflated %zu bytes, trailer says %u",
                             path, n, file_size);
            else
                ct_set_error(CT_ERR_FORMAT, "%s: CRC mismatch: data is corrupt (crc32 %08x, trailer says %08x)", path,
                             crc, file_crc);
            return MEMBERS_ERROR;
        }
        *used += n;
        pos = trailer + 8;
    }
    *ended = pos >= len;
    return MEMBERS_OK;
}

/* The most a deflate stream of n bytes can give: 258 bytes per 2-bit length-and-distance code,
 * 1032 bytes per input byte. stb reads zero bits past the end of its input, so a truncated or
 * crafted stream could otherwise run on without end. */
static uint64_t deflate_bound(size_t n) { return 1032 * (uint64_t)n + 1032; }

/* A gzip file of unknown content: inflated into a buffer that starts at the size the last
 * trailer gives (a hint: it may lie) and doubles up to the cap, inflating again each time. */
static int gunzip_growing(const char *path, const uint8_t *gz, size_t len, uint8_t **out, size_t *out_len) {
    uint64_t most = deflate_bound(len) < CT_GZIP_MAX_BYTES ? deflate_bound(len) : CT_GZIP_MAX_BYTES;
    uint64_t cap = le32(gz + len - 4);
    cap = cap < 65536 ? 65536 : cap;
    cap = cap > most ? most : cap;
    uint8_t *buf = NULL;
    for (;;) {
        uint8_t *grown = realloc(buf, (size_t)cap);
        if (!grown) {
            free(buf);
            return ct_set_error(CT_ERR_MEMORY, "%s: out of memory inflating %llu bytes", path, (unsigned long long)cap);
        }
        buf = grown;
        size_t used = 0;
        int ended = 0;
        int r = inflate_members(path, gz, len, buf, (size_t)cap, 0, &used, &ended);
        if (r == MEMBERS_OK) {
            uint8_t *shrunk = realloc(buf, used ? used : 1);
            *out = shrunk ? shrunk : buf;
            *out_len = used;
            return CT_OK;
        }
        if (r == MEMBERS_ERROR) break;
        if (cap == most) {
            if (most == CT_GZIP_MAX_BYTES)
                ct_set_error(CT_ERR_FORMAT, "%s: inflates to more than %llu bytes, the most a .gz file may hold here "
                             "(CT_GZIP_MAX_BYTES); gunzip it first", path, (unsigned long long)most);
            else
                ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is corrupt: it inflates to more than the %llu bytes "
                             "deflate can make of %zu bytes", path, (unsigned long long)most, len);
            break;
        }
        cap = 2 * cap > most ? most : 2 * cap;
    }
    free(buf);
    return CT_ERR_FORMAT;
}

/* Enough room for a header at the start: a stored block (at most 65535 bytes) that does not fit
 * is not written at all, so a full buffer holds at least PEEK − 65535 valid bytes. */
enum { PEEK = 1 << 17 };

/* A gzip file whose first `head` bytes say how long the content is: those are inflated first,
 * then the whole into a buffer of exactly the declared size. */
static int gunzip_declared(const char *path, const uint8_t *gz, size_t len, size_t head, ct_declared_size_fn declared,
                           uint8_t **out, size_t *out_len) {
    CT_CHECK(head > 0 && head <= PEEK - 65536, "ct_read_file_declared", "header of %zu bytes", head);
    uint8_t *buf = malloc(PEEK);
    if (!buf) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    size_t used = 0;
    int ended = 0;
    int r = inflate_members(path, gz, len, buf, PEEK, head, &used, &ended);
    if (r == MEMBERS_ERROR) goto fail;
    if (r == MEMBERS_OK && ended) { /* the whole content was small: the caller checks it */
        *out = buf;
        *out_len = used;
        return CT_OK;
    }
    uint64_t total = 0;
    if (declared(path, buf, head, &total) != CT_OK) goto fail;
    free(buf);
    buf = NULL;
    if (total > CT_GZIP_MAX_BYTES) {
        ct_set_error(CT_ERR_FORMAT, "%s: header declares %llu bytes, more than the %llu a .gz file may hold here "
                     "(CT_GZIP_MAX_BYTES); gunzip it first", path, (unsigned long long)total,
                     (unsigned long long)CT_GZIP_MAX_BYTES);
        goto fail;
    }
    if (total > deflate_bound(len)) {
        ct_set_error(CT_ERR_FORMAT, "%s: header declares %llu bytes, more than deflate can make of the file's %zu "
                     "bytes: truncated or corrupt", path, (unsigned long long)total, len);
        goto fail;
    }
    buf = malloc(total ? (size_t)total : 1);
    if (!buf) {
        ct_set_error(CT_ERR_MEMORY, "%s: out of memory for the %llu bytes its header declares", path,
                     (unsigned long long)total);
        goto fail;
    }
    r = inflate_members(path, gz, len, buf, (size_t)total, 0, &used, &ended);
    if (r == MEMBERS_FULL)
        ct_set_error(CT_ERR_FORMAT, "%s: inflates to more than the %llu bytes its header declares", path,
                     (unsigned long long)total);
    if (r != MEMBERS_OK) goto fail;
    *out = buf;
    *out_len = used;
    return CT_OK;
fail:
    free(buf);
    return CT_ERR_FORMAT;
}

int ct_read_file_maybe_gz(const char *path, uint8_t **out, size_t *len) {
    CT_CHECK(path && out && len, "ct_read_file_maybe_gz", "NULL argument");
    return ct_read_file_declared(path, 0, NULL, out, len);
}

int ct_read_file_declared(const char *path, size_t head, ct_declared_size_fn declared, uint8_t **out, size_t *len) {
    CT_CHECK(path && out && len, "ct_read_file_declared", "NULL argument");
    uint8_t *raw;
    size_t raw_len;
    int rc = ct_read_whole_file(path, UINT64_MAX, &raw, &raw_len);
    if (rc != CT_OK) return rc;
    if (!is_gzip_magic(raw, raw_len)) {
        *out = raw;
        *len = raw_len;
        return CT_OK;
    }
    *out = NULL;
    *len = 0;
    if (raw_len < 18) rc = ct_set_error(CT_ERR_FORMAT, "%s: gzip stream is truncated (header)", path);
    else if (declared) rc = gunzip_declared(path, raw, raw_len, head, declared, out, len);
    else rc = gunzip_growing(path, raw, raw_len, out, len);
    free(raw);
    if (rc != CT_OK) {
        *out = NULL;
        *len = 0;
    }
    return rc;
}
