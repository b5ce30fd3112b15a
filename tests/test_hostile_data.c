/* tests/test_hostile_data.c — files made to hurt the readers: gzip bombs and lying sizes for the
 * IDX reader, and crafted images for the image-folder loader. Every hostile file is built here,
 * byte by byte; each must give an error naming the file and the problem, fast and without a big
 * allocation, never a crash. Tests that could crash or allocate gigabytes before their fix run
 * in a child process, which also measures the memory the load took. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
