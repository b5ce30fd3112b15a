/* data/image_check.c — what the image-folder loader checks in a file before stb_image decodes
 * it. stb picks its decoder by content and trusts the sizes headers declare, so a hostile file
 * decodes to gigabytes, to an empty image, or to the zeros (or uninitialised bytes) stb reads
 * past the end of the data. Here, in this order:
 *
 *   1. the content is the format its extension names (by magic bytes; TGA, which has none, by a
 *      valid header), so a PSD or PNG named .tga never reaches another decoder;
 *   2. JPEG: every marker segment fits in the file, every scan's quantisation tables were defined, and
 *      every Huffman table (DHT) declares at most
 *      256 codes that fit in its segment (stb 2.27 writes past a 257-byte array otherwise), and the
 *      file has its end-of-image marker (a cut JPEG has none);
 *   3. the size the header declares (stbi_info) is not zero and at most max_pixels;
 *   4. the file is long enough for the pixels it declares, where that is cheap to know:
 *      uncompressed TGA, BMP and PNM hold exactly width·height pixels of known bytes, RLE TGA at
 *      least one packet per 128 pixels, PNG chunks (a last header without its data too) each within the file and at least 1/1032 of
 *      the pixel bytes in IDAT chunks (deflate's best ratio). PNM header numbers must not overflow an int (stb 2.27
 *      does not check). GIF is not checked past its header.
 * Failures are messages naming the file and the problem, returned to the loader, which skips the
 * file with .skip_unreadable. */
#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { FMT_UNKNOWN, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_GIF, FMT_PNM, FMT_TGA } image_format;

static const char *const format_names[] = {"unknown", "PNG", "JPEG", "BMP", "GIF", "PNM", "TGA"};

static int fail(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **why, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(why, fmt, ap) < 0) *why = NULL;
    va_end(ap);
    return 1;
}

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return le16(p) | le16(p + 2) << 16; }
static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return be16(p) << 16 | be16(p + 2); }

static image_format format_of_extension(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return FMT_UNKNOWN;
    static const struct {
        const char *ext;
        image_format fmt;
    } table[] = {{"png", FMT_PNG}, {"jpg", FMT_JPEG}, {"jpeg", FMT_JPEG}, {"bmp", FMT_BMP}, {"gif", FMT_GIF},
                 {"pnm", FMT_PNM}, {"ppm", FMT_PNM},   {"pgm", FMT_PNM},   {"tga", FMT_TGA}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcasecmp(dot + 1, table[i].ext)) return table[i].fmt;
    return FMT_UNKNOWN;
}

/* ---- TGA: an 18-byte header, no magic ------------------------------------------------------ */

typedef struct {
    int id_len, indexed, type, rle;
    int pal_start, pal_len, pal_bits;
    int width, height, bits;
} tga_header;

/* The header as stb reads it; 0 when stb's TGA decoder would not take it. */
static int tga_parse(const uint8_t *b, size_t len, tga_header *t) {
    if (len < 18) return 0;
    t->id_len = b[0], t->indexed = b[1], t->type = b[2];
    t->pal_start = (int)le16(b + 3), t->pal_len = (int)le16(b + 5), t->pal_bits = b[7];
    t->width = (int)le16(b + 12), t->height = (int)le16(b + 14), t->bits = b[16];
    t->rle = t->type >= 8;
    int ok_bits = t->bits == 8 || t->bits == 15 || t->bits == 16 || t->bits == 24 || t->bits == 32;
    if (t->indexed == 1) {
        int ok_pal = t->pal_bits == 8 || t->pal_bits == 15 || t->pal_bits == 16 || t->pal_bits == 24 ||
                     t->pal_bits == 32;
        return (t->type == 1 || t->type == 9) && ok_pal && (t->bits == 8 || t->bits == 16);
    }
    return t->indexed == 0 && (t->type == 2 || t->type == 3 || t->type == 10 || t->type == 11) && ok_bits;
}

/* ---- which format the content is ------------------------------------------------------------ */

static image_format format_of_content(const uint8_t *b, size_t len) {
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && !memcmp(b, png, 8)) return FMT_PNG;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return FMT_JPEG;
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return FMT_BMP;
    if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return FMT_GIF;
    if (len >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return FMT_PNM;
    tga_header t;
    if (tga_parse(b, len, &t)) return FMT_TGA;
    return FMT_UNKNOWN;
}

/* A name for content that is none of ours, for the message. */
static const char *other_format(const uint8_t *b, size_t len) {
    if (len >= 4 && !memcmp(b, "8BPS", 4)) return "a PSD image";
    if (len >= 2 && b[0] == '#' && b[1] == '?') return "a Radiance HDR image";
    if (len >= 4 && b[0] == 0x53 && b[1] == 0x80 && b[2] == 0xf6 && b[3] == 0x34) return "a Softimage PIC image";
    if (len >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "a WebP image";
    if (len >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) return "a TIFF image";
    if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '4') return "an ASCII or 1-bit PNM (stb reads only P5 and P6)";
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) return "gzip data";
    return NULL;
}

/* ---- JPEG: the marker segments --------------------------------------------------------------- */

/* Walks the segments as stb reads them: between segments stb skips bytes up to an 0xFF, fill
 * bytes (0xFF) before a marker are skipped, and after a scan's header the entropy-coded data runs
 * to the next 0xFF that is followed by something other than 0 (a stuffed 0xFF) or a restart
 * marker. Every DHT segment stb could read is checked; the walk ends at end-of-image. */
static int jpeg_check(const char *path, const uint8_t *b, size_t len, char **why) {
    size_t pos = 2;
    int in_scan = 0;
    /* Huffman tables defined so far, [class: 0 DC, 1 AC][id]: stb 2.27 decodes a scan with a table
     * that was never defined from uninitialised memory */
    int defined[2][4] = {{0}};
    /* quantisation tables defined so far, and the one each frame component uses: stb 2.27
     * dequantises with a table no DQT segment set from uninitialised memory too */
    int quant_defined[4] = {0}, frame_tables[4], frame_components = 0;
    /* a baseline or extended frame decodes every scan with both its DC and its AC table (stb 2.27
     * sets the spectral end to 63 whatever the scan header says); only a progressive one (SOF2)
     * decodes DC scans (Ss = 0) without the AC table and AC scans without the DC table */
    int progressive = 0;
    for (;;) {
        if (in_scan) {
            for (;;) {
                const uint8_t *ff = pos < len ? memchr(b + pos, 0xff, len - pos) : NULL;
                if (!ff) {
                    pos = len;
                    break;
                }
                pos = (size_t)(ff - b);
                size_t next = pos + 1;
                while (next < len && b[next] == 0xff) next++;
                if (next < len && b[next] != 0 && !(b[next] >= 0xd0 && b[next] <= 0xd7)) break;
                pos = next + 1;
            }
        } else {
            while (pos < len && b[pos] != 0xff) pos++;
        }
        while (pos < len && b[pos] == 0xff) pos++;
        if (pos >= len) return fail(why, "%s: JPEG is truncated (no end-of-image marker)", path);
        const int marker = b[pos++];
        const size_t at = pos - 2;
        if (marker == 0xd9) return 0; /* end of image */
        if (marker == 0x00 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; /* no length */
        if (len - pos < 2) return fail(why, "%s: JPEG is truncated (in the segment at byte %zu)", path, at);
        const size_t seg_len = be16(b + pos);
        if (seg_len < 2) return fail(why, "%s: JPEG segment at byte %zu has length %zu (less than 2)", path, at, seg_len);
        if (seg_len > len - pos)
            return fail(why, "%s: JPEG is truncated (the segment at byte %zu needs %zu bytes, %zu are left)", path, at,
                        seg_len, len - pos);
        if (marker == 0xc4) {
            const uint8_t *t = b + pos + 2;
            size_t left = seg_len - 2;
            while (left > 0) {
                if (left < 17)
                    return fail(why, "%s: JPEG Huffman table (DHT segment at byte %zu) is cut short: %zu bytes left for "
                                "a 17-byte table header", path, at, left);
                if ((t[0] >> 4) > 1 || (t[0] & 15) > 3)
                    return fail(why, "%s: JPEG Huffman table (DHT segment at byte %zu) has class %d, id %d (want 0..1, "
                                "0..3)", path, at, t[0] >> 4, t[0] & 15);
                size_t codes = 0;
                for (int i = 1; i <= 16; i++) codes += t[i];
                if (codes > 256)
                    return fail(why, "%s: JPEG Huffman table (DHT segment at byte %zu) declares %zu codes (at most "
                                "256)", path, at, codes);
                if (codes > left - 17)
                    return fail(why, "%s: JPEG Huffman table (DHT segment at byte %zu) declares %zu codes, more than "
                                "the %zu bytes left in its segment", path, at, codes, left - 17);
                /* canonical codes: after the t[j] codes of length j, the next code must still fit in j
                 * bits (stb 2.27 builds the table without this check and asserts while decoding) */
                uint32_t next_code = 0;
                for (int j = 1; j <= 16; j++) {
                    next_code += t[j];
                    if (next_code > (1u << j))
                        return fail(why, "%s: JPEG Huffman table (DHT segment at byte %zu) declares more codes of "
                                    "up to %d bits than %d bits can hold", path, at, j, j);
                    next_code <<= 1;
                }
                defined[t[0] >> 4][t[0] & 15] = 1;
                t += 17 + codes;
                left -= 17 + codes;
            }
        }
        if (marker == 0xdb) { /* DQT: tables of (precision << 4 | id, 64 or 128 bytes) */
            const uint8_t *t = b + pos + 2;
            size_t left = seg_len - 2;
            while (left > 0) {
                const size_t size = 1 + ((t[0] >> 4) ? 128 : 64);
                if (size > left || (t[0] & 15) > 3) break; /* stb refuses the segment itself */
                quant_defined[t[0] & 15] = 1;
                t += size, left -= size;
            }
        }
        if (marker == 0xc0 || marker == 0xc1 || marker == 0xc2) { /* SOF: P, Y, X, Nf, Nf × (id, HV, table) */
            const uint8_t *h = b + pos + 2;
            frame_components = 0;
            progressive = marker == 0xc2;
            if (seg_len >= 8 && h[5] >= 1 && h[5] <= 4 && seg_len == 8 + 3 * (size_t)h[5]) /* else stb refuses it */
                for (int k = 0; k < h[5]; k++) frame_tables[frame_components++] = h[6 + 3 * k + 2] & 15;
        }
        if (marker == 0xda) /* every frame component's quantisation table must be defined by now */
            for (int k = 0; k < frame_components; k++)
                if (frame_tables[k] > 3 || !quant_defined[frame_tables[k]])
                    return fail(why, "%s: JPEG scan at byte %zu needs quantisation table %d (component %d), which no DQT "
                                "segment defined before it", path, at, frame_tables[k], k);
        if (marker == 0xda) { /* scan header: Ns, Ns × (component, DC table << 4 | AC table), Ss, Se, Ah/Al */
            const uint8_t *h = b + pos + 2;
            const size_t n = seg_len >= 3 ? h[0] : 0;
            if (seg_len == 6 + 2 * n) /* stb refuses any other length itself */
                for (size_t k = 0; k < n; k++) {
                    const int dc = h[2 + 2 * k] >> 4, ac = h[2 + 2 * k] & 15, spectral_start = h[1 + 2 * n],
                              spectral_end = h[2 + 2 * n];
                    const int uses_dc = !progressive || spectral_start == 0, uses_ac = !progressive || spectral_end > 0;
                    if ((uses_dc && (dc > 3 || !defined[0][dc])) || (uses_ac && (ac > 3 || !defined[1][ac])))
                        return fail(why, "%s: JPEG scan at byte %zu uses Huffman table DC %d / AC %d, which no DHT "
                                    "segment defined before it", path, at, dc, ac);
                }
        }
        pos += seg_len;
        in_scan = marker == 0xda;
    }
}

/* ---- PNM: "P5"/"P6", width, height, maxval in ASCII, then the samples ------------------------- */

/* stb's PNM header reader, step for step (it reads 0 past the end), with the overflow it lacks
 * caught. Sets *data to the offset of the first sample byte. */
static int pnm_header(const char *path, const uint8_t *b, size_t len, int *w, int *h, int *maxval, size_t *data,
                      char **why) {
    size_t pos = 2;
    int c = pos < len ? b[pos++] : 0, values[3];
#define PNM_EOF (pos >= len)
#define PNM_NEXT() (c = pos < len ? b[pos++] : 0)
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (!PNM_EOF && (c == ' ' || (c >= '\t' && c <= '\r'))) PNM_NEXT();
            if (PNM_EOF || c != '#') break;
            while (!PNM_EOF && c != '\n' && c != '\r') PNM_NEXT();
        }
        long long v = 0;
        while (!PNM_EOF && c >= '0' && c <= '9') {
            v = v * 10 + (c - '0');
            if (v > INT_MAX)
                return fail(why, "%s: PNM header number %d (%s) does not fit an int", path, k + 1,
                            k == 0 ? "width" : k == 1 ? "height" : "maximum value");
            PNM_NEXT();
        }
        values[k] = (int)v;
    }
#undef PNM_EOF
#undef PNM_NEXT
    *w = values[0], *h = values[1], *maxval = values[2];
    *data = pos;
    return 0;
}

/* ---- the checks ---------------------------------------------------------------------------- */

int ct_image_check(const char *path, const uint8_t *b, size_t len, int64_t max_pixels, char **why) {
    *why = NULL;
    const image_format want = format_of_extension(path), got = format_of_content(b, len);
    if (got != want) {
        const char *other = got != FMT_UNKNOWN ? NULL : other_format(b, len);
        char head[3 * 8 + 1] = "";
        for (size_t i = 0; i < len && i < 8; i++) snprintf(head + 3 * i, 4, "%s%02x", i ? " " : "", b[i]);
        if (got != FMT_UNKNOWN)
            return fail(why, "%s: cannot decode image: the content is a %s image, not %s as the extension says", path,
                        format_names[got],
                        format_names[want]);
        if (other)
            return fail(why, "%s: cannot decode image: the content is %s, not %s as the extension says", path, other,
                        format_names[want]);
        return fail(why, "%s: cannot decode image: not a %s file (%zu bytes%s%s)", path, format_names[want], len,
                    len ? ", starting " : "", head);
    }
    if (got == FMT_JPEG && jpeg_check(path, b, len, why)) return 1;
    int pnm_maxval = 0;
    size_t pnm_data = 0;
    if (got == FMT_PNM) {
        int pw = 0, ph = 0;
        if (pnm_header(path, b, len, &pw, &ph, &pnm_maxval, &pnm_data, why)) return 1;
    }

    int w = 0, h = 0, comp = 0;
    if (!ct_image_info(b, len, &w, &h, &comp))
        return fail(why, "%s: cannot decode image: %s header: %s", path, format_names[got], ct_image_failure());
    /* BMP: stb gives a top-down image's height as it is stored, negative, and negates it later */
    uint32_t bmp_header = 0;
    if (got == FMT_BMP) {
        bmp_header = le32(b + 14);
        if (len < (bmp_header == 12 ? 26u : 30u)) return fail(why, "%s: BMP header is truncated", path);
        if (bmp_header != 12) {
            const int32_t stored = (int32_t)le32(b + 22);
            if (stored == INT32_MIN) return fail(why, "%s: BMP height is %d", path, (int)stored);
            h = stored < 0 ? -stored : stored;
        }
    }
    if (w <= 0 || h <= 0) return fail(why, "%s: image is %dx%d (width x height): empty", path, w, h);
    if ((int64_t)w * h > max_pixels)
        return fail(why, "%s: image is %dx%d = %lld pixels, more than the %lld allowed (.max_pixels)", path, w, h,
                    (long long)w * h, (long long)max_pixels);

    /* The bytes the pixels need at least, where cheap to know. */
    uint64_t need = 0;
    const char *what = NULL;
    const uint64_t pixels = (uint64_t)w * (uint64_t)h;
    if (got == FMT_TGA) {
        tga_header t;
        tga_parse(b, len, &t);
        uint64_t pixel_bytes = (uint64_t)(t.bits + 7) / 8;
        need = 18 + (uint64_t)t.id_len;
        if (t.indexed) need += (uint64_t)t.pal_start + (uint64_t)t.pal_len * (uint64_t)((t.pal_bits + 7) / 8);
        need += t.rle ? (pixels + 127) / 128 * (1 + pixel_bytes) : pixels * pixel_bytes;
        what = t.rle ? "run-length TGA" : "uncompressed TGA";
    } else if (got == FMT_BMP) {
        /* the bits per pixel follow the width, height and plane count (16-bit fields in the 12-byte header) */
        const uint32_t bits = le16(b + (bmp_header == 12 ? 24 : 28));
        uint64_t row = bits == 1 ? ((uint64_t)w + 7) / 8 : bits == 4 ? ((uint64_t)w + 1) / 2 : (uint64_t)w * bits / 8;
        if (bits == 1 || bits == 4 || bits == 8 || bits == 16 || bits == 24 || bits == 32) {
            need = (uint64_t)le32(b + 10) + (row + 3) / 4 * 4 * (uint64_t)h;
            what = "BMP";
        }
    } else if (got == FMT_PNM) {
        need = (uint64_t)pnm_data + pixels * (uint64_t)comp * (pnm_maxval > 255 ? 2 : 1);
        what = "PNM";
    } else if (got == FMT_PNG) {
        /* chunks up to IEND: length (4, big endian), type (4), data, CRC (4); each must fit (stb
         * grows its IDAT buffer to a declared length before it reads the data) */
        uint64_t idat = 0;
        for (size_t pos = 8; len - pos >= 8;) { /* a chunk whose length and type are there is read */
            uint64_t n = be32(b + pos);
            if (len - pos < 12 || n > len - pos - 12) {
                char type[5];
                for (int i = 0; i < 4; i++) {
                    const uint8_t c = b[pos + 4 + i];
                    type[i] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? (char)c : '?';
                }
                type[4] = 0;
                return fail(why, "%s: PNG is truncated: chunk %s at byte %zu declares %llu bytes, %zu are left",
                            path, type, pos, (unsigned long long)n, len - pos < 12 ? 0 : len - pos - 12);
            }
            if (!memcmp(b + pos + 4, "IDAT", 4)) idat += n;
            if (!memcmp(b + pos + 4, "IEND", 4)) break;
            pos += 12 + (size_t)n;
        }
        /* IHDR (stb has checked it comes first): bit depth at byte 24, colour type at 25 */
        static const int channels_of_type[7] = {1, 0, 3, 1, 2, 0, 4};
        const uint64_t bits_per_pixel = (uint64_t)b[24] * (uint64_t)(b[25] <= 6 ? channels_of_type[b[25]] : 4);
        if ((pixels * bits_per_pixel / 8 + 1031) / 1032 > idat)
            return fail(why, "%s: PNG is truncated or corrupt: %llu bytes of image data (IDAT) cannot hold %dx%d "
                        "pixels", path, (unsigned long long)idat, w, h);
    }
    if (what && need > len)
        return fail(why, "%s: file is truncated: %zu bytes, but a %dx%d %s needs %llu", path, len, w, h, what,
                    (unsigned long long)need);
    return 0;
}
