/* tests/data/test_hostile_data.c — files made to hurt the readers: gzip bombs and lying sizes for the
 * IDX reader, and crafted images for the image-folder loader. Every hostile file is built here,
 * byte by byte; each must give an error naming the file and the problem, fast and without a big
 * allocation, never a crash. Tests that could crash or allocate gigabytes before their fix run
 * in a child process, which also measures the memory the load took. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    static char buf[4][2048];
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

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* What a load did in a child process: its return code and error, whether it crashed, how long it
 * took and how much its peak resident memory grew. */
typedef struct {
    int rc, crashed;
    double seconds;
    long grew_kb;
    char error[600];
} child_result;

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs body(arg) (which returns CT_OK or an error code) in a child process. */
static void in_child(int (*body)(void *), void *arg, child_result *res) {
    memset(res, 0, sizeof *res);
    int fds[2];
    if (pipe(fds) != 0) {
        res->crashed = 1;
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        ct_set_threads(1); /* libgomp's workers do not survive fork */
        child_result r = {0};
        long before = peak_rss_kb();
        double t0 = now_seconds();
        r.rc = body(arg);
        r.seconds = now_seconds() - t0;
        r.grew_kb = peak_rss_kb() - before;
        snprintf(r.error, sizeof r.error, "%s", ct_last_error());
        ssize_t put = write(fds[1], &r, sizeof r);
        _exit(put == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], res, sizeof *res);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof *res || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        memset(res, 0, sizeof *res);
        res->crashed = 1;
    }
}

/* ---- a deflate bomb, written bit by bit ---------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t len;
    uint32_t acc;
    int nbits;
} bit_writer;

/* n bits of v, least significant first (deflate's bit order). */
static void put_bits(bit_writer *w, uint32_t v, int n) {
    for (int i = 0; i < n; i++) {
        w->acc |= ((v >> i) & 1u) << w->nbits;
        if (++w->nbits == 8) w->buf[w->len++] = (uint8_t)w->acc, w->acc = 0, w->nbits = 0;
    }
}

/* A Huffman code goes in most significant bit first. */
static void put_code(bit_writer *w, uint32_t code, int len) {
    for (int i = len - 1; i >= 0; i--) put_bits(w, (code >> i) & 1u, 1);
}

static void flush_bits(bit_writer *w) {
    if (w->nbits) put_bits(w, 0, 8 - w->nbits);
}

/* A gzip member whose content is `prefix` (in a stored block) followed by zeros, `total` bytes
 * in all, from about total/1032 bytes of file: one dynamic Huffman block where a 258-byte copy of
 * the previous byte costs two bits (length code 285 is "0", distance code 0 is "0"), so the
 * copies are runs of zero bytes. The trailer's ISIZE is total mod 2^32; its CRC is `crc`. */
static uint8_t *gzip_bomb(const uint8_t *prefix, size_t prefix_len, uint64_t total, uint32_t crc, size_t *len) {
    uint64_t rest = total - prefix_len;
    uint64_t literals = rest % 258 ? rest % 258 : 258; /* at least one byte to copy from */
    uint64_t copies = (rest - literals) / 258;
    bit_writer w = {calloc(64 + prefix_len + copies / 4 + literals, 1), 0, 0, 0};
    const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(w.buf, header, sizeof header), w.len = sizeof header;
    if (prefix_len) { /* a stored block, not final */
        put_bits(&w, 0, 1), put_bits(&w, 0, 2), flush_bits(&w);
        put_bits(&w, (uint32_t)prefix_len, 16), put_bits(&w, (uint32_t)~prefix_len & 0xffff, 16);
        memcpy(w.buf + w.len, prefix, prefix_len), w.len += prefix_len;
    }
    put_bits(&w, 1, 1), put_bits(&w, 2, 2); /* final, dynamic Huffman */
    put_bits(&w, 286 - 257, 5);              /* HLIT: literal/length codes 0..285 */
    put_bits(&w, 0, 5);                      /* HDIST: one distance code */
    put_bits(&w, 19 - 4, 4);                 /* HCLEN: all 19 code-length code lengths */
    /* code-length alphabet: 18 (a run of zeros) "0", 1 "10", 2 "11" */
    static const int order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    for (int i = 0; i < 19; i++) put_bits(&w, order[i] == 18 ? 1 : order[i] == 1 || order[i] == 2 ? 2 : 0, 3);
    /* literal/length lengths: 0 -> 2, 1..255 -> 0, 256 -> 2, 257..284 -> 0, 285 -> 1; distance 0 -> 1 */
    put_code(&w, 3, 2);                                 /* 2 */
    put_code(&w, 0, 1), put_bits(&w, 138 - 11, 7);      /* 138 zeros */
    put_code(&w, 0, 1), put_bits(&w, 117 - 11, 7);      /* 117 zeros */
    put_code(&w, 3, 2);                                 /* 2 */
    put_code(&w, 0, 1), put_bits(&w, 28 - 11, 7);       /* 28 zeros */
    put_code(&w, 2, 2);                                 /* 1 */
    put_code(&w, 2, 2);                                 /* distance code 0: 1 */
    /* literal/length code: 285 "0", literal 0 "10", end of block "11"; distance 0 "0" */
    for (uint64_t i = 0; i < literals; i++) put_code(&w, 2, 2);
    for (uint64_t i = 0; i < copies; i++) { /* "0" + "0": whole zero bytes, written directly */
        if (w.nbits == 0 && copies - i >= 4) {
            uint64_t bytes = (copies - i) / 4;
            w.len += bytes; /* calloc'd */
            i += 4 * bytes - 1;
            continue;
        }
        put_bits(&w, 0, 2);
    }
    put_code(&w, 3, 2);
    flush_bits(&w);
    put_le32(w.buf + w.len, crc), put_le32(w.buf + w.len + 4, (uint32_t)total), w.len += 8;
    *len = w.len;
    return w.buf;
}

/* ---- gzip and IDX ------------------------------------------------------------------------ */

typedef struct {
    const char *images, *labels;
} idx_paths;

static int load_idx(void *arg) {
    const idx_paths *p = arg;
    ct_dataset *d = ct_idx_load_files(p->images, p->labels);
    ct_dataset_free(d);
    return d ? CT_OK : CT_ERR_FORMAT;
}

static int read_maybe_gz(void *arg) {
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = ct_read_file_maybe_gz(arg, &out, &len);
    free(out);
    return rc;
}

/* An IDX header for n images of h×w (16 bytes). */
static void idx_images_header(uint8_t *h, uint32_t n, uint32_t rows, uint32_t cols) {
    put_be32(h, 0x803), put_be32(h + 4, n), put_be32(h + 8, rows), put_be32(h + 12, cols);
}

/* The bomb is right: a small stream inflates to what it should (checked against its own CRC). */
CT_TEST(data, gzip_bomb_writer_is_valid_deflate) {
    const char *dir = ct_test_tmpdir();
    uint8_t prefix[16];
    idx_images_header(prefix, 3, 28, 28);
    uint64_t total = 16 + 3 * 28 * 28;
    uint8_t *want = calloc(total, 1); /* the header, then zeros */
    memcpy(want, prefix, 16);
    size_t len;
    uint8_t *gz = gzip_bomb(prefix, 16, total, ct_crc32(0, want, total), &len);
    CHECK(write_bytes(path_in(dir, "small-bomb.gz"), gz, len));
    free(gz);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = ct_read_file_maybe_gz(path_in(dir, "small-bomb.gz"), &out, &out_len);
    int same = rc == CT_OK && out_len == total && memcmp(out, want, total) == 0;
    free(out);
    free(want);
    CHECK(same, "rc %d, %zu bytes: %s", rc, out_len, rc == CT_OK ? "content differs" : ct_last_error());
}

/* An IDX .gz whose header declares 100 images of 28×28 but which inflates to exactly 2^31 bytes
 * (stb's int length turned negative there, and the CRC ran over about 2^64 bytes): refused as
 * soon as the stream passes the declared size, without inflating the rest. */
CT_TEST(data, idx_gz_bomb_is_refused_fast_and_small) {
    const char *dir = ct_test_tmpdir();
    uint8_t header[16], labels[8 + 100] = {0};
    idx_images_header(header, 100, 28, 28);
    put_be32(labels, 0x801), put_be32(labels + 4, 100);
    size_t len;
    uint8_t *gz = gzip_bomb(header, 16, (uint64_t)1 << 31, 0, &len);
    idx_paths p = {path_in(dir, "bomb-images-idx3-ubyte.gz"), path_in(dir, "bomb-labels-idx1-ubyte")};
    CHECK(write_bytes(p.images, gz, len) && write_bytes(p.labels, labels, sizeof labels));
    free(gz);
    child_result r;
    in_child(load_idx, &p, &r);
    CHECK(!r.crashed, "loading a %zu-byte gzip bomb crashed", len);
    CHECK(r.rc != CT_OK && strstr(r.error, "bomb-images-idx3-ubyte.gz") &&
              strstr(r.error, "more than the 78416 bytes its header declares"),
          "%s", r.error);
    CHECK(r.seconds < 0.5, "took %.2f s", r.seconds);
    CHECK(r.grew_kb < 32 * 1024, "peak memory grew by %ld kB", r.grew_kb);
    ct_test_note("%zu-byte bomb refused in %.4f s, peak memory +%ld kB", len, r.seconds, r.grew_kb);
}

/* Headers that declare more than a .gz may hold, or more than the file could inflate to (each
 * file inflates to 1 MiB, past what is inflated to read the header). */
CT_TEST(data, idx_gz_header_declaring_too_much_is_refused_before_inflating) {
    const char *dir = ct_test_tmpdir();
    uint8_t header[16], labels[8 + 10] = {0};
    put_be32(labels, 0x801), put_be32(labels + 4, 10);
    CHECK(write_bytes(path_in(dir, "big-labels-idx1-ubyte"), labels, sizeof labels));
    struct {
        const char *name;
        uint32_t n, rows, cols;
        uint64_t inflates_to;
        const char *word;
    } cases[] = {
        /* 60000 images of 200×200: 2.4 GB, past the cap */
        {"cap-images-idx3-ubyte.gz", 60000, 200, 200, 1 << 20, "CT_GZIP_MAX_BYTES"},
        /* three dims of 2^31 − 1: the product does not fit 64 bits */
        {"wrap-images-idx3-ubyte.gz", 0x7fffffff, 0x7fffffff, 0x7fffffff, 1 << 20, "CT_GZIP_MAX_BYTES"},
        /* 100 MB declared by a file of about 1 kB */
        {"short-images-idx3-ubyte.gz", 100000, 32, 32, 1 << 20, "more than deflate can make"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        idx_images_header(header, cases[c].n, cases[c].rows, cases[c].cols);
        size_t len;
        uint8_t *gz = gzip_bomb(header, 16, cases[c].inflates_to, 0, &len);
        idx_paths p = {path_in(dir, cases[c].name), path_in(dir, "big-labels-idx1-ubyte")};
        CHECK(write_bytes(p.images, gz, len));
        free(gz);
        child_result r;
        in_child(load_idx, &p, &r);
        CHECK(!r.crashed && r.rc != CT_OK, "%s: crashed %d, rc %d", cases[c].name, r.crashed, r.rc);
        CHECK(strstr(r.error, cases[c].name) && strstr(r.error, cases[c].word), "want \"%s\": %s", cases[c].word,
              r.error);
        CHECK(r.grew_kb < 32 * 1024, "%s: peak memory grew by %ld kB", cases[c].name, r.grew_kb);
    }
}

/* The trailer's ISIZE is only a hint for the buffer: a lie either way is an error, never a big
 * allocation. */
CT_TEST(data, gzip_lying_isize_is_an_error) {
    const char *dir = ct_test_tmpdir();
    uint8_t *zeros = calloc(100000, 1);
    uint32_t crc = ct_crc32(0, zeros, 100000);
    free(zeros);
    const uint32_t lies[] = {99999, 100001, 0, 0xffffffffu};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        size_t len;
        uint8_t *gz = gzip_bomb(NULL, 0, 100000, crc, &len);
        put_le32(gz + len - 4, lies[i]);
        char *path = path_in(dir, "lying.gz");
        CHECK(write_bytes(path, gz, len));
        free(gz);
        child_result r;
        in_child(read_maybe_gz, path, &r);
        CHECK(!r.crashed && r.rc != CT_OK && strstr(r.error, "lying.gz") && strstr(r.error, "corrupt"),
              "ISIZE %u: %s", lies[i], r.error);
        CHECK(r.grew_kb < 32 * 1024, "ISIZE %u: peak memory grew by %ld kB", lies[i], r.grew_kb);
    }
}

/* The header is read across members: a first member of 4 bytes, the rest in a second. */
CT_TEST(data, idx_gz_header_split_over_members) {
    const char *dir = ct_test_tmpdir();
    uint8_t content[16 + 2 * 3 * 4], labels[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    idx_images_header(content, 2, 3, 4);
    for (int i = 16; i < (int)sizeof content; i++) content[i] = (uint8_t)(i * 7);
    uint8_t gz[256];
    size_t len = 0;
    const size_t cut[3] = {0, 4, sizeof content};
    for (int m = 0; m < 2; m++) {
        const uint8_t h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        size_t n = cut[m + 1] - cut[m];
        memcpy(gz + len, h, 10), len += 10;
        gz[len++] = 1, gz[len++] = (uint8_t)n, gz[len++] = 0, gz[len++] = (uint8_t)~n, gz[len++] = 0xff;
        memcpy(gz + len, content + cut[m], n), len += n;
        put_le32(gz + len, ct_crc32(0, content + cut[m], n)), put_le32(gz + len + 4, (uint32_t)n), len += 8;
    }
    CHECK(write_bytes(path_in(dir, "split-images-idx3-ubyte.gz"), gz, len));
    CHECK(write_bytes(path_in(dir, "split-labels-idx1-ubyte"), labels, sizeof labels));
    ct_dataset *d = ct_idx_load(dir, "split");
    CHECK(d, "%s", ct_last_error());
    int same = d->n == 2 && d->height == 3 && d->width == 4 && memcmp(d->images, content + 16, 24) == 0 &&
               d->labels[0] == 1 && d->labels[1] == 0;
    ct_dataset_free(d);
    CHECK(same);
}

/* ---- images ------------------------------------------------------------------------------ */

/* SOI, a quantisation table, a baseline frame of one 8×8 component, DC and AC Huffman tables 0 of
 * one 1-bit code each, a scan that names DC table 0 and AC table 3 with Ss = Se = 0, EOI. */
static size_t jpeg_baseline_scan_without_ac_table(uint8_t *b) {
    size_t n = 0;
    b[n++] = 0xff, b[n++] = 0xd8;
    b[n++] = 0xff, b[n++] = 0xdb, b[n++] = 0x00, b[n++] = 67, b[n++] = 0x00; /* DQT: table 0, 64 ones */
    for (int i = 0; i < 64; i++) b[n++] = 1;
    const uint8_t frame[] = {0xff, 0xc0, 0x00, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0}; /* SOF0: 8×8, component 1 */
    memcpy(b + n, frame, sizeof frame), n += sizeof frame;
    for (int table = 0; table < 2; table++) { /* DHT: class (DC, AC) 0, id 0, one code of length 1 */
        const uint8_t dht[] = {0xff, 0xc4, 0x00, 20, (uint8_t)(table << 4), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                               0, 0};
        memcpy(b + n, dht, sizeof dht), n += sizeof dht;
    }
    const uint8_t scan[] = {0xff, 0xda, 0x00, 8, 1, 1, 0x03, 0, 0, 0, 0x55, 0x55, 0xff, 0xd9};
    memcpy(b + n, scan, sizeof scan), n += sizeof scan;
    return n;
}

/* A small JPEG for the walk of the entropy-coded data: SOI; a quantisation table 0 of ones, or
 * 16-bit with `dc_factor` first when dc_factor > 255; a frame (`sof`: 0xc0 baseline, 0xc2
 * progressive) of `comps` components (ids 1, 2, ...; 1×1 sampling) of 8·blocks × 8 pixels; DC
 * table 0 with the codes 0 → category 0 and 1 → category 15; AC table 0 with the one code 0 → end
 * of block; a restart interval (DRI) when restart > 0; one scan: header `scan` (Ns, Ns × (id,
 * tables), Ss, Se, Ah/Al), entropy-coded `data`; EOI. */
static size_t jpeg_small(uint8_t *b, int sof, int comps, int blocks, int dc_factor, int restart, const uint8_t *scan,
                         size_t scan_len, const uint8_t *data, size_t data_len) {
    size_t n = 0;
    b[n++] = 0xff, b[n++] = 0xd8;
    const int sixteen = dc_factor > 255;
    b[n++] = 0xff, b[n++] = 0xdb, b[n++] = 0, b[n++] = (uint8_t)(sixteen ? 131 : 67), b[n++] = (uint8_t)(sixteen << 4);
    for (int i = 0; i < 64; i++) {
        const int q = i == 0 ? dc_factor : 1;
        if (sixteen) b[n++] = (uint8_t)(q >> 8);
        b[n++] = (uint8_t)q;
    }
    b[n++] = 0xff, b[n++] = (uint8_t)sof, b[n++] = 0, b[n++] = (uint8_t)(8 + 3 * comps), b[n++] = 8;
    b[n++] = 0, b[n++] = 8, b[n++] = (uint8_t)(8 * blocks >> 8), b[n++] = (uint8_t)(8 * blocks), b[n++] = (uint8_t)comps;
    for (int k = 0; k < comps; k++) b[n++] = (uint8_t)(k + 1), b[n++] = 0x11, b[n++] = 0;
    const uint8_t dht[] = {0xff, 0xc4, 0, 2 + 2 * 17 + 3, 0x00, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15,
                           0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00};
    memcpy(b + n, dht, sizeof dht), n += sizeof dht;
    if (restart) b[n++] = 0xff, b[n++] = 0xdd, b[n++] = 0, b[n++] = 4, b[n++] = 0, b[n++] = (uint8_t)restart;
    b[n++] = 0xff, b[n++] = 0xda, b[n++] = 0, b[n++] = (uint8_t)(2 + scan_len);
    memcpy(b + n, scan, scan_len), n += scan_len;
    memcpy(b + n, data, data_len), n += data_len;
    b[n++] = 0xff, b[n++] = 0xd9;
    return n;
}

typedef struct {
    const char *name;     /* file name; the extension picks the format expected */
    uint8_t bytes[256];
    size_t len;
    const char *word;     /* what the error must say */
} hostile_image;

static void put_le16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

/* An 18-byte TGA header (no colour map) for w×h pixels of `bits`, image type `type`. */
static size_t tga_header(uint8_t *b, int type, int w, int h, int bits) {
    memset(b, 0, 18);
    b[2] = (uint8_t)type;
    put_le16(b + 12, (uint32_t)w), put_le16(b + 14, (uint32_t)h);
    b[16] = (uint8_t)bits;
    return 18;
}

/* A BMP with the 40-byte header: w×h (h < 0: top down), 24 bits, pixel data right after; `rows`
 * rows of pixel data present. */
static size_t bmp_file(uint8_t *b, int32_t w, int32_t h, int rows) {
    size_t row = ((size_t)(w > 0 ? w : 0) * 3 + 3) / 4 * 4, len = 54 + row * (size_t)rows;
    memset(b, 0, len);
    b[0] = 'B', b[1] = 'M';
    put_le32(b + 2, (uint32_t)len), put_le32(b + 10, 54), put_le32(b + 14, 40);
    put_le32(b + 18, (uint32_t)w), put_le32(b + 22, (uint32_t)h);
    put_le16(b + 26, 1), put_le16(b + 28, 24);
    for (size_t i = 54; i < len; i++) b[i] = (uint8_t)(i * 13);
    return len;
}

/* A PNG signature and IHDR for w×h, 8 bits, colour type 2 (RGB), then an IDAT of `idat` zero
 * bytes and IEND (CRCs left zero: stb does not check them). */
static size_t png_file(uint8_t *b, uint32_t w, uint32_t h, uint32_t idat) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(b, sig, 8);
    size_t n = 8;
    put_be32(b + n, 13), memcpy(b + n + 4, "IHDR", 4), n += 8;
    put_be32(b + n, w), put_be32(b + n + 4, h), n += 8;
    b[n++] = 8, b[n++] = 2, b[n++] = 0, b[n++] = 0, b[n++] = 0;
    put_be32(b + n, 0), n += 4;
    put_be32(b + n, idat), memcpy(b + n + 4, "IDAT", 4), n += 8;
    memset(b + n, 0, idat), n += idat;
    put_be32(b + n, 0), n += 4;
    put_be32(b + n, 0), memcpy(b + n + 4, "IEND", 4), put_be32(b + n + 8, 0xae426082u), n += 12;
    return n;
}

/* A valid 2×2 RGB Photoshop file (raw channel data): stb would decode it whatever its name. */
static size_t psd_file(uint8_t *b) {
    memset(b, 0, 26 + 12 + 2 + 12);
    memcpy(b, "8BPS", 4), b[5] = 1;             /* version 1 */
    b[13] = 3;                                  /* channels */
    put_be32(b + 14, 2), put_be32(b + 18, 2);   /* height, width */
    b[23] = 8, b[25] = 3;                       /* depth 8, RGB */
    /* colour mode data, image resources, layers: three empty sections; compression 0 (raw) */
    for (int i = 0; i < 12; i++) b[40 + i] = (uint8_t)(40 * i);
    return 52;
}

static int hostile_images(hostile_image *h) {
    int n = 0;
    /* a BMP of width 0: stb decodes it; resizing it aborted in stb_image_resize */
    h[n] = (hostile_image){"zero-width.bmp", {0}, 0, "image is 0x5 (width x height): empty"};
    h[n].len = bmp_file(h[n].bytes, 0, 5, 5), n++;
    h[n] = (hostile_image){"zero-height.bmp", {0}, 0, "empty"};
    h[n].len = bmp_file(h[n].bytes, 3, 0, 0), n++;
    /* 39 bytes declaring 17408×18436 pixels (963 MB of RGB) */
    h[n] = (hostile_image){"huge.tga", {0}, 39, "image is 17408x18436 = 320933888 pixels, more than the 89478485 allowed"};
    tga_header(h[n].bytes, 2, 17408, 18436, 24), n++;
    /* uncompressed 4×4 RGB needs 48 pixel bytes; 10 are there (stb gave the rest as zeros) */
    h[n] = (hostile_image){"cut.tga", {0}, 18 + 10, "file is truncated: 28 bytes, but a 4x4 uncompressed TGA needs 66"};
    tga_header(h[n].bytes, 2, 4, 4, 24), n++;
    /* run-length 1000×1000: at least 7813 packets of 1 + 3 bytes; two are there */
    h[n] = (hostile_image){"cut-rle.tga", {0xff, 1, 2, 3, 0xff, 4, 5, 6}, 0, "run-length TGA needs 31270"};
    memmove(h[n].bytes + 18, h[n].bytes, 8), tga_header(h[n].bytes, 10, 1000, 1000, 24), h[n].len = 26, n++;
    /* a BMP with half its rows */
    h[n] = (hostile_image){"cut.bmp", {0}, 0, "file is truncated: 78 bytes, but a 4x4 BMP needs 102"};
    h[n].len = bmp_file(h[n].bytes, 4, 4, 2), n++;
    /* a top-down BMP of height -2^31 (stb negates it: undefined behaviour) */
    h[n] = (hostile_image){"min-height.bmp", {0}, 0, "BMP height is -2147483648"};
    h[n].len = bmp_file(h[n].bytes, 4, INT32_MIN, 1), n++;
    /* PNG headers: 300 MB of pixels (stb allocated it up front), and 75 MB from 10 bytes of IDAT */
    h[n] = (hostile_image){"huge.png", {0}, 0, "image is 10000x10000 = 100000000 pixels, more than the 89478485"};
    h[n].len = png_file(h[n].bytes, 10000, 10000, 10), n++;
    h[n] = (hostile_image){"thin.png", {0}, 0, "10 bytes of image data (IDAT) cannot hold 5000x5000 pixels"};
    h[n].len = png_file(h[n].bytes, 5000, 5000, 10), n++;
    /* an IDAT chunk declaring 2 GB at the end of a 77-byte file (stb grew its buffer to 2 GiB
     * before reading it; found by fuzz_image) */
    h[n] = (hostile_image){"chunk.png", {0}, 0, "PNG is truncated: chunk IDAT at byte 65 declares 2046820352 bytes, 0 are left"};
    h[n].len = png_file(h[n].bytes, 2, 2, 20);
    put_be32(h[n].bytes + 65, 0x7a000000u), memcpy(h[n].bytes + 69, "IDAT", 4), n++;
    /* a 4×1 PNG with one IDAT chunk of 0 bytes (fuzz_image: stb 2.27 copied it to a null pointer),
     * and an empty IDAT before one holding data (the same copy) */
    h[n] = (hostile_image){"no-idat.png", {0}, 0, "PNG's first image-data chunk (IDAT at byte 33) is empty"};
    h[n].len = png_file(h[n].bytes, 4, 1, 0), n++;
    h[n] = (hostile_image){"empty-idat-first.png", {0}, 0, "PNG's first image-data chunk (IDAT at byte 33) is empty"};
    {
        uint8_t data[128];
        const size_t full = png_file(data, 4, 1, 20); /* IDAT at 33: 12 + 20 bytes, then IEND */
        memcpy(h[n].bytes, data, 33);
        put_be32(h[n].bytes + 33, 0), memcpy(h[n].bytes + 37, "IDAT", 4), put_be32(h[n].bytes + 41, 0);
        memcpy(h[n].bytes + 45, data + 33, full - 33);
        h[n].len = full + 12, n++;
    }
    /* content that is not what the extension says */
    h[n] = (hostile_image){"photoshop.png", {0}, 0, "the content is a PSD image, not PNG as the extension says"};
    h[n].len = psd_file(h[n].bytes), n++;
    h[n] = (hostile_image){"png.jpg", {0}, 0, "the content is a PNG image, not JPEG as the extension says"};
    h[n].len = png_file(h[n].bytes, 2, 2, 20), n++;
    h[n] = (hostile_image){"bmp.tga", {0}, 0, "the content is a BMP image, not TGA as the extension says"};
    h[n].len = bmp_file(h[n].bytes, 2, 2, 2), n++;
    /* PNM: a width that overflows stb's int, and samples cut short */
    h[n] = (hostile_image){"overflow.pgm", "P5 99999999999 1 255\n", 21, "PNM header number 1 (width) does not fit an int"};
    n++;
    h[n] = (hostile_image){"cut.pgm", "P5 4 4 255\nabc", 14, "file is truncated: 14 bytes, but a 4x4 PNM needs 27"};
    n++;
    /* JPEG Huffman tables stb 2.27 overflows on: 0x7f + 0xfc = 379 codes, in a 9-byte file and in
     * a segment long enough for them */
    h[n] = (hostile_image){"dht-short.jpg", {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x7f, 0xfc}, 9,
                          "JPEG is truncated (the segment at byte 2 needs 31 bytes, 5 are left)"};
    n++;
    h[n] = (hostile_image){"dht-379.jpg", {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x7f, 0xfc}, 4 + 31 + 2,
                          "JPEG Huffman table (DHT segment at byte 2) declares 379 codes (at most 256)"};
    h[n].bytes[35] = 0xff, h[n].bytes[36] = 0xd9, n++;
    h[n] = (hostile_image){"dht-long.jpg", {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x15, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 9}, 0,
                          "declares 9 codes, more than the 2 bytes left in its segment"};
    h[n].len = 4 + 0x15 + 2, h[n].bytes[25] = 0xff, h[n].bytes[26] = 0xd9, n++;
    /* three codes of one bit (stb 2.27 builds the table and asserts while decoding) */
    h[n] = (hostile_image){"dht-overfull.jpg", {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x16, 0x00, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 1, 2, 3, 0xff, 0xd9}, 28,
                          "declares more codes of up to 1 bits than 1 bits can hold"};
    n++;
    /* a scan using DC table 0 where only AC table 0 was defined: stb 2.27 decodes it with an
     * uninitialised table (fuzz_image aborted in stbi__jpeg_huff_decode) */
    h[n] = (hostile_image){"dht-undefined.jpg", {0xff, 0xd8, 0xff, 0xc4, 0x00, 0x14, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                 0, 0, 0, 0, 0, 0, 0, 0xff, 0xda, 0x00, 0x0c, 3, 1, 0x00, 2, 0x11, 3,
                                                 0x11, 0, 0x3f, 0, 0, 0xff, 0xd9}, 41,
                          "uses Huffman table DC 0 / AC 0, which no DHT segment defined before it"};
    n++;
    /* a baseline scan using AC table 3, never defined, with a spectral end of 0 in its header: stb
     * 2.27 decodes it with AC table 3 anyway (a baseline scan's end is always 63), from uninitialised
     * memory (fuzz_image: an index of -16776385 into a Huffman table's 257 sizes) */
    h[n] = (hostile_image){"dht-baseline-ac.jpg", {0}, 0,
                          "uses Huffman table DC 0 / AC 3, which no DHT segment defined before it"};
    h[n].len = jpeg_baseline_scan_without_ac_table(h[n].bytes), n++;
    h[n] = (hostile_image){"no-eoi.jpg", {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 'a', 'b', 0xff, 0xda, 0x00, 0x02, 1, 2, 3}, 15,
                          "JPEG is truncated (no end-of-image marker)"};
    n++;
    /* The walk of the entropy-coded data. A baseline 16×8 image with a restart interval of one
     * block and no RST marker between its two blocks: stb 2.27 ends the scan after the first and
     * returned the second from memory it never wrote. */
    static const uint8_t one_comp[] = {1, 1, 0x00, 0, 63, 0}, prog_ac[] = {1, 1, 0x00, 1, 63, 0};
    h[n] = (hostile_image){"no-rst.jpg", {0}, 0, "has no restart marker at byte"};
    h[n].len = jpeg_small(h[n].bytes, 0xc0, 1, 2, 1, 1, one_comp, sizeof one_comp, (const uint8_t[]){0x3f, 0x3f}, 2), n++;
    /* two DC differences of +32767 times a 16-bit factor of 65535: stb 2.27 multiplies 65534 by
     * 65535 in an int (undefined behaviour) */
    h[n] = (hostile_image){"dc-overflow.jpg", {0}, 0, "makes a DC coefficient of 65534 (times 65535 overflows an int)"};
    h[n].len = jpeg_small(h[n].bytes, 0xc0, 1, 2, 65535, 0, one_comp, sizeof one_comp,
                          (const uint8_t[]){0xff, 0, 0xff, 0, 0x7f, 0xff, 0, 0xbf}, 8), n++;
    /* three components, a scan of the first only: stb 2.27 returned the others unwritten */
    h[n] = (hostile_image){"one-of-three.jpg", {0}, 0, "JPEG component 1 (id 2) has no scan before the end of the image"};
    h[n].len = jpeg_small(h[n].bytes, 0xc0, 3, 1, 1, 0, one_comp, sizeof one_comp, (const uint8_t[]){0x3f}, 1), n++;
    /* a DC code 0 (category 0), then 1 bits where an AC code is due: the AC table's only code is
     * 0, so no code of up to 16 bits starting with 1 is defined (stb 2.27 refused it in its own
     * words) */
    h[n] = (hostile_image){"undefined-code.jpg", {0}, 0, "holds a code that Huffman table AC 0 does not define"};
    h[n].len = jpeg_small(h[n].bytes, 0xc0, 1, 1, 1, 0, one_comp, sizeof one_comp, (const uint8_t[]){0x7f, 0xff, 0, 0xff, 0}, 5), n++;
    /* a progressive AC scan with no DC scan before it: stb 2.27 does not zero its coefficients */
    h[n] = (hostile_image){"ac-before-dc.jpg", {0}, 0, "codes component 0 before its first DC scan"};
    h[n].len = jpeg_small(h[n].bytes, 0xc2, 1, 1, 1, 0, prog_ac, sizeof prog_ac, (const uint8_t[]){0x7f}, 1), n++;
    h[n] = (hostile_image){"empty.png", {0}, 0, "not a PNG file (0 bytes)"};
    n++;
    return n;
}

/* The good image beside them: 2×2 RGB, uncompressed TGA. */
static size_t good_tga(uint8_t *b) {
    size_t n = tga_header(b, 2, 2, 2, 24);
    for (int i = 0; i < 12; i++) b[n + i] = (uint8_t)(20 * i + 1);
    return n + 12;
}

typedef struct {
    const char *dir;
    ct_image_folder_opts opts;
} folder_load;

static int load_folder(void *arg) {
    const folder_load *f = arg;
    ct_dataset *d = ct_image_folder_load(f->dir, f->opts);
    ct_dataset_free(d);
    return d ? CT_OK : CT_ERR_FORMAT;
}

static int make_folder(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    return system(cmd) == 0;
}

/* Each hostile file alone beside a good one: an error naming it and its problem, in a child
 * process (several of them crashed, aborted or allocated a gigabyte before), fast and small; with
 * a resize too (a zero-sized image aborted in stb_image_resize). */
CT_TEST(data, image_folder_hostile_files_are_named_errors) {
    static hostile_image h[32];
    const int n = hostile_images(h);
    uint8_t good[64];
    const size_t good_len = good_tga(good);
    for (int i = 0; i < n; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/one-%d", ct_test_tmpdir(), i);
        CHECK(make_folder(path_in(dir, "c")));
        CHECK(write_bytes(path_in(dir, "c/0-good.tga"), good, good_len));
        char name[256];
        snprintf(name, sizeof name, "c/%s", h[i].name);
        CHECK(write_bytes(path_in(dir, name), h[i].bytes, h[i].len));
        for (int resize = 0; resize <= 1; resize++) {
            folder_load f = {dir, resize ? CT_IMAGE_FOLDER(.height = 4, .width = 4) : CT_IMAGE_FOLDER()};
            child_result r;
            in_child(load_folder, &f, &r);
            CHECK(!r.crashed, "%s%s: the load crashed", h[i].name, resize ? " (resized)" : "");
            CHECK(r.rc != CT_OK && strstr(r.error, name) && strstr(r.error, h[i].word),
                  "%s%s: want an error naming it and saying \"%s\"; got rc %d, \"%s\"", h[i].name,
                  resize ? " (resized)" : "", h[i].word, r.rc, r.rc == CT_OK ? "" : r.error);
            CHECK(r.seconds < 1 && r.grew_kb < 64 * 1024, "%s: %.2f s, peak memory +%ld kB", h[i].name, r.seconds,
                  r.grew_kb);
        }
    }
    ct_test_note("%d hostile files", n);
}

/* All of them in one folder with .skip_unreadable: the good image is kept, each hostile file is
 * skipped and named, on one thread and on two. */
CT_TEST(data, image_folder_hostile_files_are_skipped) {
    static hostile_image h[32];
    const int n = hostile_images(h);
    const char *dir = ct_test_tmpdir();
    CHECK(make_folder(path_in(dir, "all/c")));
    uint8_t good[64];
    const size_t good_len = good_tga(good);
    CHECK(write_bytes(path_in(dir, "all/c/0-good.tga"), good, good_len));
    for (int i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof name, "all/c/%s", h[i].name);
        CHECK(write_bytes(path_in(dir, name), h[i].bytes, h[i].len));
    }
    const int saved = ct_get_threads();
    for (int threads = 1; threads <= 2; threads++) {
        for (int resize = 0; resize <= 1; resize++) {
            folder_load f = {path_in(dir, "all"), resize ? CT_IMAGE_FOLDER(.skip_unreadable = 1, .height = 3, .width = 3)
                                                         : CT_IMAGE_FOLDER(.skip_unreadable = 1)};
            ct_set_threads(threads);
            ct_dataset *d = ct_image_folder_load(f.dir, f.opts);
            ct_set_threads(saved);
            CHECK(d, "%s", ct_last_error());
            int ok = d->n == 1 && d->skipped == n && strstr(d->file_names[0], "0-good.tga") &&
                     d->height == (resize ? 3 : 2);
            for (int i = 0; ok && i < n; i++) {
                int named = 0;
                for (int k = 0; k < d->skipped; k++) named |= strstr(d->skipped_files[k], h[i].name) != NULL;
                ok &= named;
            }
            const int skipped = d->skipped, kept = d->n;
            ct_dataset_free(d);
            CHECK(ok, "%d threads%s: kept %d, skipped %d of %d", threads, resize ? ", resized" : "", kept, skipped, n);
        }
    }
}

/* .max_pixels: a 10×10 image passes at 100 and is refused at 99; 0 is the default. */
CT_TEST(data, image_folder_max_pixels_option) {
    const char *dir = ct_test_tmpdir();
    CHECK(make_folder(path_in(dir, "c")));
    uint8_t b[18 + 300];
    tga_header(b, 2, 10, 10, 24);
    for (int i = 0; i < 300; i++) b[18 + i] = (uint8_t)i;
    CHECK(write_bytes(path_in(dir, "c/ten.tga"), b, sizeof b));
    ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.max_pixels = 100));
    CHECK(d && d->height == 10 && d->width == 10, "%s", ct_last_error());
    ct_dataset_free(d);
    d = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.max_pixels = 99));
    ct_dataset_free(d);
    CHECK(!d && strstr(ct_last_error(), "c/ten.tga: image is 10x10 = 100 pixels, more than the 99 allowed (.max_pixels)"),
          "%s", ct_last_error());
    ct_image_folder_opts zeroed = {.channels = 3};
    d = ct_image_folder_load(dir, zeroed);
    CHECK(d, "max_pixels 0 is the default: %s", ct_last_error());
    ct_dataset_free(d);
}

/* 16-bit PNM read in the other channel count: stb 2.27 converted the channels as if the samples
 * were bytes and then read past its buffer (found by fuzz_image: ASan heap-buffer-overflow in
 * stbi__convert_16_to_8). Samples are reduced to their high byte, gray repeated to RGB, RGB to
 * stb's luma (77 R + 150 G + 29 B) >> 8. */
CT_TEST(data, image_folder_16_bit_pnm_channel_conversion) {
    const char *dir = ct_test_tmpdir();
    CHECK(make_folder(path_in(dir, "gray/c")) && make_folder(path_in(dir, "rgb/c")));
    uint8_t pgm[11 + 2 * 6 * 5], ppm[11 + 6 * 6 * 5];
    memcpy(pgm, "P5 6 5 999\n", 11), memcpy(ppm, "P6 6 5 999\n", 11);
    for (int i = 0; i < 2 * 6 * 5; i++) pgm[11 + i] = (uint8_t)(i * 37 + 3);
    for (int i = 0; i < 6 * 6 * 5; i++) ppm[11 + i] = (uint8_t)(i * 53 + 7);
    CHECK(write_bytes(path_in(dir, "gray/c/a.pgm"), pgm, sizeof pgm) && write_bytes(path_in(dir, "rgb/c/a.ppm"), ppm, sizeof ppm));
    ct_dataset *g = ct_image_folder_load(path_in(dir, "gray"), CT_IMAGE_FOLDER(.channels = 3));
    CHECK(g && g->height == 5 && g->width == 6, "%s", ct_last_error());
    int ok = 1;
    for (int p = 0; p < 30; p++)
        for (int c = 0; c < 3; c++) ok &= g->images[c * 30 + p] == pgm[11 + 2 * p]; /* big endian: high byte first */
    ct_dataset_free(g);
    CHECK(ok, "gray 16-bit -> RGB: each channel the sample's high byte");
    ct_dataset *r = ct_image_folder_load(path_in(dir, "rgb"), CT_IMAGE_FOLDER(.channels = 1));
    CHECK(r && r->height == 5 && r->width == 6, "%s", ct_last_error());
    for (int p = 0; p < 30; p++) {
        const int R = ppm[11 + 6 * p], G = ppm[11 + 6 * p + 2], B = ppm[11 + 6 * p + 4];
        ok &= r->images[p] == (uint8_t)((R * 77 + G * 150 + B * 29) >> 8);
    }
    ct_dataset_free(r);
    CHECK(ok, "RGB 16-bit -> gray: stb's luma of the high bytes");
}

/* A seed of tests/fuzz/corpus/image (byte 0: the fuzzer's options, then the file) written as
 * <folder>/c/x.<ext>, loaded: the error must contain `expect`. */
static void fuzz_seed_refused(const char *seed, const char *ext, const char *expect) {
    char input[1024], dir[900], sub[1000], path[1100];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(input, sizeof input, "%.*s../fuzz/corpus/image/%s", slash ? (int)(slash - __FILE__ + 1) : 0, __FILE__, seed);
    FILE *in = fopen(input, "rb");
    if (!in) CT_SKIP("%s not found (run from the repository root)", input);
    unsigned char bytes[4096];
    const size_t len = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    snprintf(dir, sizeof dir, "%s/img", ct_test_tmpdir());
    snprintf(sub, sizeof sub, "%s/c", dir);
    CHECK(make_folder(dir) && make_folder(sub), "cannot make %s", sub);
    snprintf(path, sizeof path, "%s/x.%s", sub, ext);
    FILE *out = fopen(path, "wb");
    CHECK(out && fwrite(bytes + 1, 1, len - 1, out) == len - 1, "cannot write %s", path);
    fclose(out);
    ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.channels = 3));
    CHECK(!d && strstr(ct_last_error(), path) && strstr(ct_last_error(), expect), "loaded: %s (%s)", d ? "yes" : "no",
          ct_last_error());
    ct_dataset_free(d);
}

/* A JPEG with no DQT segment (found by fuzz_image): stb 2.27 dequantised its blocks with a table
 * from uninitialised memory, and UBSan caught an overflowing product there now and then. It is now
 * refused before stb sees it, naming the table. */
CT_TEST(data, image_folder_jpeg_without_quantisation_table_is_refused) {
    fuzz_seed_refused("regress-jpeg-dc-overflow", "jpg", "needs quantisation table 0");
}

/* A PNG ending in a chunk header without its data (found by fuzz_image): the check stopped at the
 * last complete 12 bytes, and stb 2.27 grew its IDAT buffer to 2 GiB for the declared length. */
CT_TEST(data, image_folder_png_chunk_header_at_the_end_is_refused) {
    fuzz_seed_refused("regress-png-chunk-header-at-end", "png", "PNG is truncated: chunk IDAT at byte 171");
}

/* The reproducer of fuzz_image: a baseline scan whose data ends at the end-of-image marker in its
 * second MCU; stb 2.27's fast-AC path took more bits than its buffer held (UBSan: shift exponent
 * 37 in stbi__grow_buffer_unsafe). The walk refuses it, naming the scan. */
CT_TEST(data, image_folder_jpeg_scan_running_out_is_refused) {
    fuzz_seed_refused("regress-jpeg-scan-runs-out", "jpg", "JPEG scan at byte 595 runs out of data at byte 650");
}
