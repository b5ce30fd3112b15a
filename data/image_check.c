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
 *      file has its end-of-image marker (a cut JPEG has none); then the entropy-coded data of
 *      every scan of the frame is decoded as stb reads it (sequential and progressive, restart
 *      intervals, byte stuffing) and refused when it runs out before the frame's blocks are
 *      decoded, holds a code no table defines, makes a DC value stb overflows on, leaves a
 *      component uncoded or codes one before stb has set its coefficients;
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

/* ---- JPEG: the entropy-coded data ---------------------------------------------------------- */

/* stb 2.27 reads a scan's bits through a 32-bit buffer that it refills a byte at a time
 * (stbi__grow_buffer_unsafe). When the refill meets a marker it stops without adding bits, and
 * later refills add zero bytes. Its fast-AC path, the bit readers behind it and the progressive
 * decoders then take more bits than the buffer holds: code_bits goes negative and the next refill
 * shifts by more than 31 (undefined behaviour; on x86 a garbage image from a cut file). The walk
 * below decodes every scan of the frame the way stb does, with the same buffer and the same
 * refills at the same places (so it meets the same markers at restarts), and refuses a scan as
 * soon as a read would take a bit the file does not hold, or meets a code no table defines. It
 * does not compute pixels: it keeps only what decides which bits stb reads next (the Huffman
 * symbols, the end-of-band run, the DC predictions, and in progressive frames which coefficients
 * are non-zero). */

/* A Huffman table as a DHT segment defines it: canonical codes, count[l] of length l. */
typedef struct {
    int defined;
    uint8_t count[17];
    uint8_t values[256];
} jpeg_huffman;

/* The frame stb decodes (the first SOF0/1/2), with what the walk needs of each component. */
typedef struct {
    int valid, progressive, n, mcu_x, mcu_y;
    struct {
        int id, h, v, tq;
        int bw, bh;          /* blocks a non-interleaved scan covers: ceil(ceil(X·H/Hmax)/8) × the same for Y */
        int dc_first;        /* progressive: a first DC scan has set (and stb zeroed) every block */
        int coded;           /* sequential: some scan has decoded the component */
        uint64_t *nonzero;   /* progressive: bit z of block (j·bw + i) set when coefficient z (natural order) is not 0 */
    } comp[4];
} jpeg_frame;
/* Bounds. The non-zero map takes 8 bytes a block of a component some AC scan codes; the frame is
 * walked only when it is within max_pixels, and stb allocates 128 bytes of coefficients a block
 * for the same frame. Time: a sequential block reads at least 2 bits, so its cost is bounded by
 * the file; a progressive block in an end-of-band run reads nothing (first scans, O(1)) or a bit
 * per non-zero coefficient after a pass over the band (refinements, as stb does), so a scan costs
 * its bits plus its blocks, the work stb's own decode does for it. */

/* stb's bit reader (code_buffer, code_bits, marker, nomore), plus how many of the bits are zeros
 * stb made up past a marker or the end of the file. */
typedef struct {
    const uint8_t *b;
    size_t len, pos, end; /* end: where the data ran out (the 0xFF of the marker, or len) */
    uint32_t buffer;
    int bits, pad, nomore, marker; /* marker: -1 when none */
} bit_reader;

/* One scan's walk: the reader, where the scan is, and the unit (MCU, or block when the scan has one
 * component) being decoded, for the messages. */
typedef struct {
    const char *path;
    char **why;
    size_t scan_at;
    bit_reader r;
    long long unit, units;
    const char *unit_name;
    int eob_run;
    int dc_pred[4];
    int ss, se, ah, al;
} scan_walk;

static unsigned walk_get8(bit_reader *r) { return r->pos < r->len ? r->b[r->pos++] : (r->pos++, 0u); }

/* stbi__grow_buffer_unsafe: bytes into the buffer until it holds more than 24 bits; 0xFF 0x00 is a
 * 0xFF byte, 0xFF then fill 0xFFs then anything else is a marker, which stops the data: the call
 * returns without adding bits, later calls add zero bytes. Past the end of the file stb reads 0. */
static void walk_grow(bit_reader *r) {
    do {
        const size_t at = r->pos;
        const int made_up = r->nomore || at >= r->len;
        const unsigned b = r->nomore ? 0 : walk_get8(r);
        if (b == 0xff) {
            unsigned c = walk_get8(r);
            while (c == 0xff) c = walk_get8(r);
            if (c != 0) {
                r->marker = (int)c;
                r->nomore = 1;
                if (r->end == SIZE_MAX) r->end = at;
                return;
            }
        }
        if (made_up && r->end == SIZE_MAX) r->end = r->len;
        r->buffer |= b << (24 - r->bits);
        r->bits += 8;
        if (made_up) r->pad += 8;
    } while (r->bits <= 24);
}

/* stbi__jpeg_reset: at the start of a scan and after each restart marker. */
static void walk_reset(scan_walk *w, int restart_interval, int *todo) {
    w->r.buffer = 0, w->r.bits = 0, w->r.pad = 0, w->r.nomore = 0, w->r.marker = -1, w->r.end = SIZE_MAX;
    memset(w->dc_pred, 0, sizeof w->dc_pred);
    w->eob_run = 0;
    *todo = restart_interval ? restart_interval : 0x7fffffff;
}

static int walk_ran_out(scan_walk *w) {
    const bit_reader *r = &w->r;
    if (r->end < r->len && r->marker >= 0)
        return fail(w->why, "%s: JPEG scan at byte %zu runs out of data at byte %zu (marker 0x%02x) in %s %lld of the "
                    "%lld it needs: a cut or corrupt file", w->path, w->scan_at, r->end, r->marker, w->unit_name,
                    w->unit + 1, w->units);
    return fail(w->why, "%s: JPEG scan at byte %zu runs out of data at the end of the file in %s %lld of the %lld it "
                "needs: a cut or corrupt file", w->path, w->scan_at, w->unit_name, w->unit + 1, w->units);
}

/* Takes n (1..16) bits off the top of the buffer; 1 (refused) when the file does not hold them. */
static int walk_take(scan_walk *w, int n, uint32_t *value) {
    bit_reader *r = &w->r;
    *value = 0;
    if (n > r->bits - r->pad) return walk_ran_out(w);
    *value = r->buffer >> (32 - n);
    r->buffer <<= n;
    r->bits -= n;
    return 0;
}

/* stbi__jpeg_get_bits / stbi__jpeg_get_bit: n raw bits, refilling first when fewer are buffered. */
static int walk_bits(scan_walk *w, int n, uint32_t *value) {
    if (w->r.bits < n) walk_grow(&w->r);
    return walk_take(w, n, value);
}

/* stbi__extend_receive: n (1..15) bits read as a signed magnitude of category n. */
static int walk_extend(scan_walk *w, int n, int *value) {
    uint32_t k;
    if (walk_bits(w, n, &k)) return 1;
    *value = k >> (n - 1) ? (int)k : (int)k - (int)((1u << n) - 1);
    return 0;
}

/* stbi__jpeg_huff_decode: the symbol of the next code, found canonically from the 16 bits on top of
 * the buffer (the codes of length l run from first to first + count[l] − 1; the first code of
 * length l + 1 is (first + count[l]) << 1), which is what stb's fast table and maxcode find. */
static int walk_huffman(scan_walk *w, const jpeg_huffman *h, const char *kind, int id, int *symbol) {
    bit_reader *r = &w->r;
    *symbol = 0;
    if (r->bits < 16) walk_grow(r);
    const uint32_t top = r->buffer >> 16;
    uint32_t first = 0, index = 0, code;
    for (int l = 1; l <= 16; l++) {
        if (l > r->bits - r->pad) return walk_ran_out(w);
        const uint32_t prefix = top >> (16 - l);
        if (prefix - first < h->count[l]) {
            *symbol = h->values[index + prefix - first];
            return walk_take(w, l, &code);
        }
        index += h->count[l];
        first = (first + h->count[l]) << 1;
    }
    return fail(w->why, "%s: JPEG scan at byte %zu holds a code that Huffman table %s %d does not define, in %s %lld of "
                "%lld", w->path, w->scan_at, kind, id, w->unit_name,
                w->unit + 1, w->units);
}

/* A DC difference (category t, then t bits) added to the component's prediction: stb keeps the sum
 * in an int and multiplies it by its dequantisation factor (baseline) or 2^Al (progressive), also
 * in an int; a sum or product outside int is undefined behaviour. Real files stay within ±2^11. */
static int walk_dc(scan_walk *w, const jpeg_huffman *h, int table, int component, int64_t factor) {
    int t, diff = 0;
    if (walk_huffman(w, h, "DC", table, &t)) return 1;
    if (t > 15)
        return fail(w->why, "%s: JPEG scan at byte %zu holds a DC difference of category %d (at most 15), in %s %lld of "
                    "%lld", w->path, w->scan_at, t, w->unit_name, w->unit + 1, w->units);
    if (t && walk_extend(w, t, &diff)) return 1;
    const int64_t dc = (int64_t)w->dc_pred[component] + diff;
    if (dc * factor > INT_MAX || dc * factor < INT_MIN)
        return fail(w->why, "%s: JPEG scan at byte %zu makes a DC coefficient of %lld (times %lld overflows an int), in "
                    "%s %lld of %lld", w->path, w->scan_at, (long long)dc, (long long)factor, w->unit_name,
                    w->unit + 1, w->units);
    w->dc_pred[component] = (int)dc;
    return 0;
}

/* stbi__jpeg_decode_block: a sequential block, DC then AC coefficients 1..63. A symbol r/s puts
 * coefficient k + r, s bits; s = 0 ends the block unless r = 15 (sixteen zeros). */
static int walk_block(scan_walk *w, const jpeg_huffman *dc, int dc_id, const jpeg_huffman *ac, int ac_id,
                      int component, int dc_factor) {
    if (w->r.bits < 16) walk_grow(&w->r);
    if (walk_dc(w, dc, dc_id, component, dc_factor)) return 1;
    int k = 1;
    do {
        int rs, value;
        if (w->r.bits < 16) walk_grow(&w->r);
        if (walk_huffman(w, ac, "AC", ac_id, &rs)) return 1;
        const int s = rs & 15, run = rs >> 4;
        if (s == 0) {
            if (rs != 0xf0) break;
            k += 16;
        } else {
            k += run + 1;
            if (walk_extend(w, s, &value)) return 1;
        }
    } while (k < 64);
    return 0;
}

/* stbi__jpeg_dezigzag: natural position of zigzag index k; stb lets corrupt data run to 78. */
static const uint8_t walk_dezigzag[64 + 15] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13,
    6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31,
    39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

/* stbi__jpeg_decode_block_prog_dc: a first DC scan (Ah = 0) zeroes the block and codes the DC
 * difference; a refinement reads one bit. */
static int walk_prog_dc(scan_walk *w, const jpeg_huffman *dc, int dc_id, int component, uint64_t *nonzero) {
    if (w->r.bits < 16) walk_grow(&w->r);
    if (w->ah == 0) {
        if (nonzero) *nonzero = 0;
        return walk_dc(w, dc, dc_id, component, (int64_t)1 << w->al);
    }
    uint32_t bit;
    return walk_bits(w, 1, &bit);
}

/* stbi__jpeg_decode_block_prog_ac, coefficients Ss..Se of one block. */
static int walk_prog_ac(scan_walk *w, const jpeg_huffman *ac, int ac_id, uint64_t *nonzero) {
    uint32_t bit;
    if (w->ah == 0) {
        /* first AC scan: symbols as in a sequential block; s = 0, r < 15 ends this block and the
         * next 2^r − 1 + (r bits) blocks of the band (EOBRUN), which read nothing */
        if (w->eob_run) {
            w->eob_run--;
            return 0;
        }
        int k = w->ss;
        do {
            int rs, value;
            if (w->r.bits < 16) walk_grow(&w->r);
            if (walk_huffman(w, ac, "AC", ac_id, &rs)) return 1;
            const int s = rs & 15, r = rs >> 4;
            if (s == 0) {
                if (r < 15) {
                    uint32_t extra = 0;
                    if (r && walk_bits(w, r, &extra)) return 1;
                    w->eob_run = (1 << r) + (int)extra - 1;
                    break;
                }
                k += 16;
            } else {
                k += r;
                const int z = walk_dezigzag[k++];
                if (walk_extend(w, s, &value)) return 1;
                /* stb stores (short)(value · 2^Al): zero when the low 16 bits are */
                const uint64_t stored = (uint64_t)((int64_t)value * ((int64_t)1 << w->al)) & 0xffff;
                *nonzero = stored ? *nonzero | (uint64_t)1 << z : *nonzero & ~((uint64_t)1 << z);
            }
        } while (k <= w->se);
        return 0;
    }
    /* refinement: each coefficient of the band already non-zero reads a correction bit as the walk
     * passes it; a new coefficient (s = 1 and a sign bit) lands on the (r+1)-th zero one; s = 0,
     * r < 15 ends the band here and starts an EOBRUN, whose blocks read only correction bits */
    if (w->eob_run) {
        w->eob_run--;
        for (int k = w->ss; k <= w->se; k++)
            if (*nonzero >> walk_dezigzag[k] & 1 && walk_bits(w, 1, &bit)) return 1;
        return 0;
    }
    int k = w->ss;
    do {
        int rs;
        if (walk_huffman(w, ac, "AC", ac_id, &rs)) return 1;
        int s = rs & 15, r = rs >> 4;
        if (s == 0) {
            if (r < 15) {
                uint32_t extra = 0;
                if (r && walk_bits(w, r, &extra)) return 1;
                w->eob_run = (1 << r) - 1 + (int)extra;
                r = 64; /* no new coefficient: correction bits to the end of the band */
            }
        } else {
            if (s != 1)
                return fail(w->why, "%s: JPEG scan at byte %zu (an AC refinement) holds a coefficient of %d bits (must be "
                            "1), in %s %lld of %lld", w->path, w->scan_at, s, w->unit_name, w->unit + 1, w->units);
            if (walk_bits(w, 1, &bit)) return 1; /* sign */
        }
        while (k <= w->se) {
            const int z = walk_dezigzag[k++];
            if (*nonzero >> z & 1) {
                if (walk_bits(w, 1, &bit)) return 1;
            } else {
                if (r == 0) {
                    if (s) *nonzero |= (uint64_t)1 << z;
                    break;
                }
                r--;
            }
        }
    } while (k <= w->se);
    return 0;
}

/* The frame of an SOF segment (h: after the length) as stbi__process_frame_header takes it; not
 * valid (not walked) when stb refuses it, or when it is larger than max_pixels (the size check
 * refuses it before stb decodes). */
static void walk_frame(jpeg_frame *f, const uint8_t *h, size_t seg_len, int progressive, int64_t max_pixels) {
    memset(f, 0, sizeof *f);
    const int n = seg_len >= 8 ? h[5] : 0;
    if ((n != 1 && n != 3 && n != 4) || seg_len != 8 + 3 * (size_t)n || h[0] != 8) return;
    const int64_t height = be16(h + 1), width = be16(h + 3);
    if (!height || !width || height > 1 << 24 || width > 1 << 24 || width * height > max_pixels ||
        width * height * n > INT_MAX)
        return;
    int hmax = 1, vmax = 1;
    for (int k = 0; k < n; k++) {
        const uint8_t *c = h + 6 + 3 * k;
        f->comp[k].id = c[0], f->comp[k].h = c[1] >> 4, f->comp[k].v = c[1] & 15, f->comp[k].tq = c[2];
        if (!f->comp[k].h || f->comp[k].h > 4 || !f->comp[k].v || f->comp[k].v > 4 || f->comp[k].tq > 3) return;
        if (f->comp[k].h > hmax) hmax = f->comp[k].h;
        if (f->comp[k].v > vmax) vmax = f->comp[k].v;
    }
    for (int k = 0; k < n; k++) {
        if (hmax % f->comp[k].h || vmax % f->comp[k].v) return;
        f->comp[k].bw = (int)((width * f->comp[k].h + hmax - 1) / hmax + 7) / 8;
        f->comp[k].bh = (int)((height * f->comp[k].v + vmax - 1) / vmax + 7) / 8;
    }
    f->mcu_x = (int)((width + 8 * hmax - 1) / (8 * hmax));
    f->mcu_y = (int)((height + 8 * vmax - 1) / (8 * vmax));
    f->n = n, f->progressive = progressive, f->valid = 1;
}

static void walk_frame_free(jpeg_frame *f) {
    for (int k = 0; k < 4; k++) free(f->comp[k].nonzero), f->comp[k].nonzero = NULL;
}

/* stbi__parse_entropy_coded_data for the scan whose header (h: after the length) is at byte `at`
 * and whose data starts at byte `data`. A scan stb refuses by its header is not walked (stb fails
 * on it before reading its data). Units: a scan of one component is coded block by block over the
 * component's bw × bh blocks; a scan of several, MCU by MCU over the frame's mcu_x × mcu_y, each
 * MCU holding H × V blocks of each component in scan order. */
static int walk_scan(const char *path, char **why, const uint8_t *b, size_t len, size_t at, size_t data,
                     jpeg_frame *f, const uint8_t *h, const jpeg_huffman tables[2][4], const uint32_t quant_dc[4],
                     int restart_interval) {
    const int n = h[0];
    int order[4];
    if (n < 1 || n > f->n) return 0;
    for (int k = 0; k < n; k++) {
        int which = 0;
        while (which < f->n && f->comp[which].id != h[1 + 2 * k]) which++;
        if (which == f->n || h[2 + 2 * k] >> 4 > 3 || (h[2 + 2 * k] & 15) > 3) return 0;
        order[k] = which;
    }
    scan_walk w = {.path = path, .why = why, .scan_at = at, .r = {.b = b, .len = len, .pos = data}};
    w.ss = h[1 + 2 * n], w.se = h[2 + 2 * n], w.ah = h[3 + 2 * n] >> 4, w.al = h[3 + 2 * n] & 15;
    if (f->progressive) {
        if (w.ss > 63 || w.se > 63 || w.ss > w.se || w.ah > 13 || w.al > 13) return 0;
        if ((n > 1 || w.ss == 0) && w.se != 0) return 0; /* stb: "can't merge dc and ac" */
        for (int k = 0; k < n; k++) {
            if (w.ss == 0 && w.ah == 0) {
                f->comp[order[k]].dc_first = 1;
            } else if (!f->comp[order[k]].dc_first) {
                /* stb 2.27 does not zero its coefficients: they are set by the first DC scan */
                return fail(why, "%s: JPEG progressive scan at byte %zu codes component %d before its first DC scan "
                            "(stb 2.27 would read coefficients it never set)", path, at, order[k]);
            }
        }
        if (w.ss > 0) {
            uint64_t **map = &f->comp[order[0]].nonzero;
            if (!*map) *map = calloc((size_t)f->comp[order[0]].bw * (size_t)f->comp[order[0]].bh, sizeof **map);
            if (!*map) return fail(why, "%s: out of memory checking the JPEG scan at byte %zu", path, at);
        }
    } else {
        if (w.ss != 0 || w.ah != 0 || w.al != 0) return 0;
        w.se = 63; /* stb decodes every sequential scan to coefficient 63 */
        for (int k = 0; k < n; k++) f->comp[order[k]].coded = 1;
    }
    int todo;
    walk_reset(&w, restart_interval, &todo);
    const int c0 = order[0];
    w.units = n == 1 ? (long long)f->comp[c0].bw * f->comp[c0].bh : (long long)f->mcu_x * f->mcu_y;
    w.unit_name = n == 1 ? "block" : "MCU";
    for (w.unit = 0; w.unit < w.units; w.unit++) {
        if (n == 1) {
            const int dc = h[2] >> 4, ac = h[2] & 15;
            uint64_t *nz = f->comp[c0].nonzero ? f->comp[c0].nonzero + w.unit : NULL;
            if (!f->progressive) {
                if (walk_block(&w, &tables[0][dc], dc, &tables[1][ac], ac, c0, (int)quant_dc[f->comp[c0].tq])) return 1;
            } else if (w.ss == 0) {
                if (walk_prog_dc(&w, &tables[0][dc], dc, c0, nz)) return 1;
            } else if (walk_prog_ac(&w, &tables[1][ac], ac, nz)) {
                return 1;
            }
        } else {
            const long long i = w.unit % f->mcu_x, j = w.unit / f->mcu_x;
            for (int k = 0; k < n; k++) {
                const int c = order[k], dc = h[2 + 2 * k] >> 4, ac = h[2 + 2 * k] & 15;
                for (int y = 0; y < f->comp[c].v; y++)
                    for (int x = 0; x < f->comp[c].h; x++) {
                        const long long bx = i * f->comp[c].h + x, by = j * f->comp[c].v + y;
                        uint64_t *nz = f->comp[c].nonzero && bx < f->comp[c].bw && by < f->comp[c].bh
                                           ? f->comp[c].nonzero + by * f->comp[c].bw + bx
                                           : NULL;
                        if (!f->progressive) {
                            if (walk_block(&w, &tables[0][dc], dc, &tables[1][ac], ac, c, (int)quant_dc[f->comp[c].tq]))
                                return 1;
                        } else if (walk_prog_dc(&w, &tables[0][dc], dc, c, nz)) {
                            return 1;
                        }
                    }
            }
        }
        /* the restart interval counts units; at its end stb refills and, when the marker there is
         * not RSTn, ends the scan, leaving the rest of the image undecoded */
        if (--todo <= 0) {
            if (w.r.bits < 24) walk_grow(&w.r);
            if (w.r.marker < 0xd0 || w.r.marker > 0xd7) {
                if (w.unit + 1 == w.units) return 0;
                return fail(why, "%s: JPEG scan at byte %zu has no restart marker at byte %zu, where its restart "
                            "interval ends after %s %lld of %lld (stb 2.27 would leave the rest undecoded)",
                            path, at, w.r.marker >= 0 ? w.r.end : w.r.pos, w.unit_name, w.unit + 1, w.units);
            }
            walk_reset(&w, restart_interval, &todo);
        }
    }
    return 0;
}

/* ---- JPEG: the marker segments --------------------------------------------------------------- */

/* Walks the segments as stb reads them: between segments stb skips bytes up to an 0xFF, fill
 * bytes (0xFF) before a marker are skipped, and after a scan's header the entropy-coded data runs
 * to the next 0xFF that is followed by something other than 0 (a stuffed 0xFF) or a restart
 * marker. Every DHT segment stb could read is checked; the walk ends at end-of-image. */
static int jpeg_segments(const char *path, const uint8_t *b, size_t len, int64_t max_pixels, jpeg_frame *frame,
                         char **why) {
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
    /* for the walk of the entropy-coded data: the tables as defined so far, each quantisation
     * table's DC factor, the restart interval (DRI), whether the frame has been seen */
    jpeg_huffman tables[2][4];
    memset(tables, 0, sizeof tables);
    uint32_t quant_dc[4] = {0};
    int restart_interval = 0, frames = 0;
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
        if (marker == 0xd9) { /* end of image */
            /* stb 2.27 returns a component no scan decoded from memory it never wrote */
            for (int k = 0; frame->valid && k < frame->n; k++)
                if (frame->progressive ? !frame->comp[k].dc_first : !frame->comp[k].coded)
                    return fail(why, "%s: JPEG component %d (id %d) has no %sscan before the end of the image (stb "
                                "2.27 would return its pixels from memory it never wrote)", path, k, frame->comp[k].id,
                                frame->progressive ? "first DC " : "");
            return 0;
        }
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
                jpeg_huffman *table = &tables[t[0] >> 4][t[0] & 15];
                table->defined = 1;
                memcpy(table->count + 1, t + 1, 16);
                memcpy(table->values, t + 17, codes);
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
                quant_dc[t[0] & 15] = (t[0] >> 4) ? be16(t + 1) : t[1]; /* stb's factor for the DC coefficient */
                t += size, left -= size;
            }
        }
        if (marker == 0xc0 || marker == 0xc1 || marker == 0xc2) { /* SOF: P, Y, X, Nf, Nf × (id, HV, table) */
            const uint8_t *h = b + pos + 2;
            frame_components = 0;
            progressive = marker == 0xc2;
            if (seg_len >= 8 && h[5] >= 1 && h[5] <= 4 && seg_len == 8 + 3 * (size_t)h[5]) /* else stb refuses it */
                for (int k = 0; k < h[5]; k++) frame_tables[frame_components++] = h[6 + 3 * k + 2] & 15;
            /* stb decodes the first frame; at a second one it fails, so scans after it are not walked */
            if (frames++ == 0) walk_frame(frame, h, seg_len, progressive, max_pixels);
            else frame->valid = 0;
        }
        if (marker == 0xdd) /* DRI: stb refuses any other length */
            restart_interval = seg_len == 4 ? (int)be16(b + pos + 2) : 0;
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
            if (frame->valid && seg_len == 6 + 2 * n &&
                walk_scan(path, why, b, len, at, pos + seg_len, frame, h, tables, quant_dc, restart_interval))
                return 1;
        }
        pos += seg_len;
        in_scan = marker == 0xda;
    }
}

static int jpeg_check(const char *path, const uint8_t *b, size_t len, int64_t max_pixels, char **why) {
    jpeg_frame frame = {0};
    const int refused = jpeg_segments(path, b, len, max_pixels, &frame, why);
    walk_frame_free(&frame);
    return refused;
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
    if (got == FMT_JPEG && jpeg_check(path, b, len, max_pixels, why)) return 1;
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
            if (!memcmp(b + pos + 4, "IDAT", 4)) {
                /* stb 2.27 copies an IDAT chunk into a buffer it allocates on the first non-empty one:
                 * an empty first chunk is copied to a null pointer (undefined behaviour) */
                if (n == 0 && idat == 0)
                    return fail(why, "%s: PNG's first image-data chunk (IDAT at byte %zu) is empty; write the "
                                "image data in it (re-save the file)", path, pos);
                idat += n;
            }
            if (!memcmp(b + pos + 4, "IEND", 4)) break;
            pos += 12 + (size_t)n;
        }
        /* IHDR (stb has checked it comes first): bit depth at byte 24, colour type at 25 */
        static const int channels_of_type[7] = {1, 0, 3, 1, 2, 0, 4};
        const uint64_t bits_per_pixel = (uint64_t)b[24] * (uint64_t)(b[25] <= 6 ? channels_of_type[b[25]] : 4);
        /* the filtered rows, h × (1 + ⌈w·bits/8⌉) bytes, deflate to at least 1/1032 of that, after
         * zlib's 2-byte header (interlacing only adds bytes) */
        const uint64_t raw = (uint64_t)h * (1 + ((uint64_t)w * bits_per_pixel + 7) / 8);
        if (2 + (raw + 1031) / 1032 > idat)
            return fail(why, "%s: PNG is truncated or corrupt: %llu bytes of image data (IDAT) cannot hold %dx%d "
                        "pixels", path, (unsigned long long)idat, w, h);
    }
    if (what && need > len)
        return fail(why, "%s: file is truncated: %zu bytes, but a %dx%d %s needs %llu", path, len, w, h, what,
                    (unsigned long long)need);
    return 0;
}
