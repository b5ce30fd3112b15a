/* tests/data/test_data.c — data/: CRC-32, gzip reading, IDX files (raw and .gz, good and broken),
 * the mini-batch loader, and real MNIST when ../shared/data is present.
 *
 * Synthetic files are written into ct_test_tmpdir(). Gzip files are made two ways: by hand
 * with stored (uncompressed) deflate blocks, which exercises every optional header field, and
 * by the system `gzip` command for real compressed streams (those parts skip without it). */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* The call returned NULL and the error names `file` and contains `word`. */
#define CHECK_LOAD_ERROR(call, file, word)                                                        \
    do {                                                                                          \
        ct_dataset *d_ = (call);                                                                  \
        if (d_) ct_dataset_free(d_);                                                              \
        CHECK(!d_, "%s succeeded; want an error about %s", #call, word);                        \
        CHECK(strstr(ct_last_error(), file) && strstr(ct_last_error(), word),                    \
               "error \"%s\" should name %s and say \"%s\"", ct_last_error(), file, word);       \
    } while (0)

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

/* Pixel j of synthetic image i: bytes 0 and 1 spell the index, the rest is a pattern. */
static uint8_t pixel(int i, int j) {
    if (j == 0) return (uint8_t)(i & 255);
    if (j == 1) return (uint8_t)(i >> 8);
    return (uint8_t)((i * 31 + j * 7) & 255);
}

static int label_of(int i) { return (i * 3) % 7; }

/* An IDX images file (magic 0x803, dims n,h,w) of synthetic images; caller frees. */
static uint8_t *idx_images(int n, int h, int w, size_t *len) {
    size_t size = (size_t)h * (size_t)w;
    *len = 16 + (size_t)n * size;
    uint8_t *b = malloc(*len);
    put_be32(b, 0x803), put_be32(b + 4, (uint32_t)n), put_be32(b + 8, (uint32_t)h), put_be32(b + 12, (uint32_t)w);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < size; j++) b[16 + (size_t)i * size + j] = pixel(i, (int)j);
    return b;
}

/* An IDX labels file (magic 0x801, dim n) with label_of(i); caller frees. */
static uint8_t *idx_labels(int n, size_t *len) {
    *len = 8 + (size_t)n;
    uint8_t *b = malloc(*len);
    put_be32(b, 0x801), put_be32(b + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) b[8 + i] = (uint8_t)label_of(i);
    return b;
}

/* Writes n synthetic images and labels as <dir>/<prefix>-{images-idx3,labels-idx1}-ubyte. */
static int write_idx_pair(const char *dir, const char *prefix, int n, int h, int w) {
    size_t il, ll;
    uint8_t *img = idx_images(n, h, w, &il), *lab = idx_labels(n, &ll);
    char name[256];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    int ok = write_bytes(path_in(dir, name), img, il);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    ok = ok && write_bytes(path_in(dir, name), lab, ll);
    free(img);
    free(lab);
    return ok;
}

/* One gzip member with stored deflate blocks (at most 65535 bytes each) and every optional
 * header field (FEXTRA, FNAME, FCOMMENT, FHCRC). Appends to buf at *len; buf must be large. */
static void gzip_stored_member(uint8_t *buf, size_t *len, const uint8_t *data, size_t n) {
    uint8_t *p = buf + *len, *start = p;
    const uint8_t header[] = {0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 3};
    memcpy(p, header, sizeof header), p += sizeof header;
    *p++ = 3, *p++ = 0, *p++ = 'a', *p++ = 'b', *p++ = 'c';  /* FEXTRA: XLEN=3, 3 bytes */
    memcpy(p, "name.idx", 9), p += 9;                         /* FNAME */
    memcpy(p, "a comment", 10), p += 10;                      /* FCOMMENT */
    uint32_t hcrc = ct_crc32(0, start, (size_t)(p - start));
    *p++ = (uint8_t)hcrc, *p++ = (uint8_t)(hcrc >> 8);        /* FHCRC */
    size_t done = 0;
    do {
        size_t chunk = n - done > 65535 ? 65535 : n - done;
        *p++ = done + chunk == n; /* BFINAL, BTYPE=00 (stored) */
        *p++ = (uint8_t)chunk, *p++ = (uint8_t)(chunk >> 8);
        *p++ = (uint8_t)~chunk, *p++ = (uint8_t)(~chunk >> 8);
        memcpy(p, data + done, chunk), p += chunk;
        done += chunk;
    } while (done < n);
    put_le32(p, ct_crc32(0, data, n)), put_le32(p + 4, (uint32_t)n), p += 8;
    *len = (size_t)(p - buf);
}

/* Room for gzip_stored_member over n bytes. */
static size_t gzip_stored_bound(size_t n) { return 64 + n + 5 * (n / 65535 + 1) + 8; }

/* Compresses `path` to `path`.gz with the system gzip; 0 when that is not possible. */
static int system_gzip(const char *path) {
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "gzip -9 -c '%s' > '%s.gz' 2>/dev/null", path, path);
    return system(cmd) == 0;
}

static int read_back_equals(const char *path, const uint8_t *want, size_t want_len) {
    uint8_t *got;
    size_t got_len;
    if (ct_read_file_maybe_gz(path, &got, &got_len) != CT_OK) return 0;
    int same = got_len == want_len && memcmp(got, want, want_len) == 0;
    free(got);
    return same;
}

/* The dataset holds exactly the synthetic images and labels. */
static int matches_synthetic(const ct_dataset *d, int n, int h, int w) {
    if (d->n != n || d->channels != 1 || d->height != h || d->width != w) return 0;
    int max_label = 0;
    for (int i = 0; i < n; i++) {
        if (d->labels[i] != label_of(i)) return 0;
        if (label_of(i) > max_label) max_label = label_of(i);
        for (int j = 0; j < h * w; j++)
            if (d->images[(size_t)i * h * w + j] != pixel(i, j)) return 0;
    }
    return d->classes == max_label + 1;
}

/* A dataset built in memory for the loader tests: n images of 1x2x3. */
static ct_dataset *synthetic_dataset(int n) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 1, d->height = 2, d->width = 3, d->classes = 7;
    d->images = malloc((size_t)n * 6);
    d->labels = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 6; j++) d->images[i * 6 + j] = pixel(i, j);
        d->labels[i] = label_of(i);
    }
    return d;
}

/* Which synthetic sample row r of a batch holds (from its first two pixels). */
static int sample_index(const ct_batch *b, int r) {
    size_t row = b->x->size / (size_t)b->n;
    const ct_real *x = b->x->data + (size_t)r * row;
    return (int)lround(x[0] * 255) + 256 * (int)lround(x[1] * 255);
}

/* ---- CRC and gzip ------------------------------------------------------------------------ */

CT_TEST(data, crc32_check_value) {
    CHECK(ct_crc32(0, "123456789", 9) == 0xCBF43926u, "the standard CRC-32 check value");
    CHECK(ct_crc32(ct_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u, "chained calls");
    CHECK(ct_crc32(0, "", 0) == 0);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    CHECK(ct_crc32(0, fox, strlen(fox)) == 0x414FA339u, "a well-known value past the 8-byte fast path");
    uint32_t split = ct_crc32(ct_crc32(ct_crc32(0, fox, 3), fox + 3, 17), fox + 20, strlen(fox) - 20);
    CHECK(split == 0x414FA339u, "chained over unaligned pieces");
}

CT_TEST(data, gzip_stored_members_all_header_fields) {
    const char *dir = ct_test_tmpdir();
    size_t n = 200000; /* several stored blocks */
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
    uint8_t *gz = malloc(2 * gzip_stored_bound(n));
    size_t len = 0;
    gzip_stored_member(gz, &len, data, n);
    int ok = write_bytes(path_in(dir, "one.gz"), gz, len) && read_back_equals(path_in(dir, "one.gz"), data, n);
    /* Two members concatenated read as their concatenation. */
    len = 0;
    gzip_stored_member(gz, &len, data, 70000);
    gzip_stored_member(gz, &len, data + 70000, n - 70000);
    ok = ok && write_bytes(path_in(dir, "two.gz"), gz, len) && read_back_equals(path_in(dir, "two.gz"), data, n);
    /* An empty member is fine too. */
    len = 0;
    gzip_stored_member(gz, &len, data, 0);
    ok = ok && write_bytes(path_in(dir, "empty.gz"), gz, len) && read_back_equals(path_in(dir, "empty.gz"), data, 0);
    const char *err = ct_last_error();
    free(gz);
    free(data);
    CHECK(ok, "stored gzip read back wrong (last error: %s)", err);
}

CT_TEST(data, gzip_compressed_by_system_gzip) {
    const char *dir = ct_test_tmpdir();
    size_t n = 100000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)((i % 251) ^ (i / 1000)); /* compressible */
    int wrote = write_bytes(path_in(dir, "a"), data, 60000) && write_bytes(path_in(dir, "b"), data + 60000, n - 60000);
    if (!wrote || !system_gzip(path_in(dir, "a")) || !system_gzip(path_in(dir, "b"))) {
        free(data);
        CT_SKIP("no gzip command");
    }
    int ok = read_back_equals(path_in(dir, "a.gz"), data, 60000);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cat '%s/a.gz' '%s/b.gz' > '%s/ab.gz'", dir, dir, dir);
    ok = ok && system(cmd) == 0 && read_back_equals(path_in(dir, "ab.gz"), data, n);
    /* A file that is not gzip comes back unchanged. */
    ok = ok && read_back_equals(path_in(dir, "a"), data, 60000);
    const char *err = ct_last_error();
    free(data);
    CHECK(ok, "gzip read back wrong (last error: %s)", err);
}

CT_TEST(data, gzip_corruption_is_an_error) {
    const char *dir = ct_test_tmpdir();
    size_t n = 50000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)((i * i) >> 5);
    uint8_t *gz = malloc(gzip_stored_bound(n)), *out = NULL;
    size_t len = 0, out_len = 0;
    gzip_stored_member(gz, &len, data, n);
    struct {
        const char *name;
        size_t at;      /* byte to flip, or SIZE_MAX for none */
        size_t cut;     /* bytes to drop from the end */
        const char *word;
    } cases[] = {
        {"data.gz", len / 2, 0, "CRC mismatch"},        /* a stored data byte */
        {"trailer.gz", len - 6, 0, "CRC mismatch"},     /* the trailer's CRC */
        {"size.gz", len - 2, 0, "corrupt"},             /* the trailer's ISIZE */
        {"header.gz", 12, 0, "header CRC"},             /* inside FEXTRA, covered by FHCRC */
        {"method.gz", 2, 0, "not deflate"},
        {"cut.gz", SIZE_MAX, 5, "corrupt or truncated"},
        {"stub.gz", SIZE_MAX, len - 6, "truncated"},
    };
    int failed = -1;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0] && failed < 0; c++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, gz, len);
        if (cases[c].at != SIZE_MAX) copy[cases[c].at] ^= 0x40;
        const char *path = path_in(dir, cases[c].name);
        write_bytes(path, copy, len - cases[c].cut);
        free(copy);
        int rc = ct_read_file_maybe_gz(path, &out, &out_len);
        if (rc == CT_OK) free(out);
        if (rc == CT_OK || out != NULL || !strstr(ct_last_error(), cases[c].name) ||
            !strstr(ct_last_error(), cases[c].word))
            failed = (int)c;
    }
    free(gz);
    free(data);
    CHECK(failed < 0, "%s: want an error saying \"%s\", got \"%s\"", cases[failed].name, cases[failed].word,
           ct_last_error());
}

CT_TEST(data, gzip_flipped_compressed_byte_is_an_error) {
    const char *dir = ct_test_tmpdir();
    size_t n = 30000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (uint8_t)("the quick brown fox "[i % 20] + (i / 997) % 3);
    int wrote = write_bytes(path_in(dir, "fox"), data, n);
    free(data);
    if (!wrote || !system_gzip(path_in(dir, "fox"))) CT_SKIP("no gzip command");
    /* The compressed bytes as they are on disk. */
    FILE *f = fopen(path_in(dir, "fox.gz"), "rb");
    CHECK(f != NULL);
    uint8_t buf[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(len > 40 && len < sizeof buf);
    /* Flip one byte at several places in the deflate data: each must be an error, never a crash.
     * (The stream's last bytes are avoided: padding bits after the end-of-block code are free.) */
    for (size_t at = 20; at < len - 12; at += (len - 32) / 7) {
        buf[at] ^= 0x10;
        CHECK(write_bytes(path_in(dir, "flipped.gz"), buf, len));
        uint8_t *out = NULL;
        size_t out_len;
        int rc = ct_read_file_maybe_gz(path_in(dir, "flipped.gz"), &out, &out_len);
        if (rc == CT_OK) free(out);
        CHECK(rc != CT_OK, "flipping byte %zu went unnoticed", at);
        CHECK(strstr(ct_last_error(), "flipped.gz") &&
                   (strstr(ct_last_error(), "corrupt") || strstr(ct_last_error(), "CRC")),
               "error: %s", ct_last_error());
        buf[at] ^= 0x10;
    }
}

/* ---- IDX --------------------------------------------------------------------------------- */

CT_TEST(data, idx_raw_round_trip) {
    const char *dir = ct_test_tmpdir();
    CHECK(write_idx_pair(dir, "train", 37, 5, 4));
    ct_dataset *d = ct_idx_load_files(path_in(dir, "train-images-idx3-ubyte"), path_in(dir, "train-labels-idx1-ubyte"));
    CHECK(d != NULL, "%s", ct_last_error());
    int ok = matches_synthetic(d, 37, 5, 4) && d->classes == 7 && strstr(d->source, "train-images-idx3-ubyte");
    ct_dataset_free(d);
    CHECK(ok, "images, labels, dims and classes exactly as written");
    /* ct_idx_load finds the files by split name. */
    d = ct_idx_load(dir, "train");
    CHECK(d != NULL, "%s", ct_last_error());
    ok = matches_synthetic(d, 37, 5, 4);
    ct_dataset_free(d);
    CHECK(ok);
    CHECK(write_idx_pair(dir, "t10k", 11, 3, 3));
    d = ct_idx_load(dir, "test");
    CHECK(d != NULL, "%s", ct_last_error());
    ok = matches_synthetic(d, 11, 3, 3);
    ct_dataset_free(d);
    CHECK(ok, "\"test\" reads t10k-*");
    ct_dataset_free(NULL);
}

CT_TEST(data, idx_gzip_round_trip) {
    const char *dir = ct_test_tmpdir();
    int n = 300, h = 28, w = 28;
    size_t il, ll;
    uint8_t *img = idx_images(n, h, w, &il), *lab = idx_labels(n, &ll);
    /* Images gzip'd by hand (stored blocks); labels by the system gzip when there is one. */
    uint8_t *gz = malloc(gzip_stored_bound(il));
    size_t gz_len = 0;
    gzip_stored_member(gz, &gz_len, img, il);
    int ok = write_bytes(path_in(dir, "small-images-idx3-ubyte.gz"), gz, gz_len) &&
             write_bytes(path_in(dir, "small-labels-idx1-ubyte"), lab, ll);
    free(gz);
    free(img);
    free(lab);
    CHECK(ok);
    int compressed = system_gzip(path_in(dir, "small-labels-idx1-ubyte"));
    if (compressed) remove(path_in(dir, "small-labels-idx1-ubyte"));
    ct_dataset *d = ct_idx_load(dir, "small");
    CHECK(d != NULL, "%s", ct_last_error());
    ok = matches_synthetic(d, n, h, w);
    ct_dataset_free(d);
    CHECK(ok, "a .gz IDX pair reads exactly as written");
    if (!compressed) ct_test_note("labels not compressed: no gzip command");
}

CT_TEST(data, idx_errors_name_the_file_and_problem) {
    const char *dir = ct_test_tmpdir();
    int n = 20, h = 4, w = 5;
    size_t il, ll;
    uint8_t *img = idx_images(n, h, w, &il), *lab = idx_labels(n, &ll);
    uint8_t *bad = malloc(il);
    char labels[1024];
    snprintf(labels, sizeof labels, "%s", path_in(dir, "good-labels"));
    CHECK(write_bytes(labels, lab, ll));

    /* truncated: the last image is short */
    CHECK(write_bytes(path_in(dir, "short-images"), img, il - 7));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "short-images"), labels), "short-images", "truncated");
    /* truncated inside the header */
    CHECK(write_bytes(path_in(dir, "stub-images"), img, 10));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "stub-images"), labels), "stub-images", "truncated");
    /* wrong magic: a labels file where images belong, and garbage */
    CHECK_LOAD_ERROR(ct_idx_load_files(labels, labels), "good-labels", "magic");
    memcpy(bad, img, il), bad[0] = 'P', bad[1] = 'K';
    CHECK(write_bytes(path_in(dir, "zip-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "zip-images"), labels), "zip-images", "magic");
    /* element type other than unsigned byte (0x0D is float) */
    memcpy(bad, img, il), bad[2] = 0x0D;
    CHECK(write_bytes(path_in(dir, "float-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "float-images"), labels), "float-images", "unsigned byte");
    /* header count vs file size: more images claimed than present, and fewer */
    memcpy(bad, img, il), put_be32(bad + 4, (uint32_t)n + 1);
    CHECK(write_bytes(path_in(dir, "more-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "more-images"), labels), "more-images", "truncated");
    put_be32(bad + 4, (uint32_t)n - 1);
    CHECK(write_bytes(path_in(dir, "fewer-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "fewer-images"), labels), "fewer-images", "does not match");
    /* a zero or absurd dimension */
    memcpy(bad, img, il), put_be32(bad + 8, 0);
    CHECK(write_bytes(path_in(dir, "zero-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "zero-images"), labels), "zero-images", "dimension");
    memcpy(bad, img, il), put_be32(bad + 4, 0xffffffffu);
    CHECK(write_bytes(path_in(dir, "huge-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "huge-images"), labels), "huge-images", "dimension");
    memcpy(bad, img, il), put_be32(bad + 4, 0x7fffffffu), put_be32(bad + 8, 0x7fffffffu), put_be32(bad + 12, 0x7fffffffu);
    CHECK(write_bytes(path_in(dir, "overflow-images"), bad, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "overflow-images"), labels), "overflow-images", "truncated");
    /* a truncated labels file */
    CHECK(write_bytes(path_in(dir, "short-labels"), lab, ll - 1));
    CHECK(write_bytes(path_in(dir, "good-images"), img, il));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "good-images"), path_in(dir, "short-labels")), "short-labels",
                     "truncated");
    /* label count differs from image count: both files named */
    free(lab);
    lab = idx_labels(n + 5, &ll);
    CHECK(write_bytes(path_in(dir, "more-labels"), lab, ll));
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "good-images"), path_in(dir, "more-labels")), "more-labels",
                     "has 20 images but");
    CHECK(strstr(ct_last_error(), "good-images") && strstr(ct_last_error(), "25 labels"));
    /* missing files, directly and through ct_idx_load */
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "nope-images"), labels), "nope-images", "No such file");
    CHECK_LOAD_ERROR(ct_idx_load_files(path_in(dir, "good-images"), path_in(dir, "nope-labels")), "nope-labels",
                     "No such file");
    CHECK_LOAD_ERROR(ct_idx_load(dir, "absent"), "absent-images-idx3-ubyte", "cannot open");
    free(img);
    free(lab);
    free(bad);
}

/* ---- loader ------------------------------------------------------------------------------ */

/* Runs one epoch; writes each batch's sample indices into seen (in order). Returns batches. */
static int run_epoch(ct_loader *l, int *seen, int *count) {
    ct_batch b;
    int batches = 0;
    *count = 0;
    while (ct_loader_next(l, &b)) {
        for (int r = 0; r < b.n; r++) seen[(*count)++] = sample_index(&b, r);
        batches++;
    }
    return batches;
}

CT_TEST(data, loader_same_seed_same_batches) {
    ct_dataset *d = synthetic_dataset(1000);
    ct_loader *a = ct_loader_new(d, CT_LOADER(.batch = 64, .seed = 7));
    ct_loader *b = ct_loader_new(d, CT_LOADER(.batch = 64, .seed = 7));
    int same = 1, steps = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        ct_batch ba, bb;
        int more;
        while ((more = ct_loader_next(a, &ba)) == ct_loader_next(b, &bb) && more) {
            same &= ba.n == bb.n && ba.x->size == bb.x->size && ba.epoch == bb.epoch && ba.index == bb.index;
            same &= memcmp(ba.x->data, bb.x->data, ba.x->size * sizeof(ct_real)) == 0;
            same &= memcmp(ba.y.data, bb.y.data, (size_t)ba.n * sizeof(int)) == 0;
            steps++;
        }
        same &= !more;
    }
    ct_loader_free(a);
    ct_loader_free(b);
    ct_dataset_free(d);
    CHECK(same && steps == 2 * 16, "two loaders with one seed give identical batches");
}

CT_TEST(data, loader_different_seed_different_order) {
    ct_dataset *d = synthetic_dataset(500);
    ct_loader *a = ct_loader_new(d, CT_LOADER(.batch = 50, .seed = 1));
    ct_loader *b = ct_loader_new(d, CT_LOADER(.batch = 50, .seed = 2));
    int *sa = malloc(500 * sizeof(int)), *sb = malloc(500 * sizeof(int)), na, nb;
    run_epoch(a, sa, &na);
    run_epoch(b, sb, &nb);
    int differ = 0;
    for (int i = 0; i < 500; i++) differ += sa[i] != sb[i];
    free(sa);
    free(sb);
    ct_loader_free(a);
    ct_loader_free(b);
    ct_dataset_free(d);
    CHECK(na == 500 && nb == 500 && differ > 400, "only %d of 500 positions differ", differ);
}

CT_TEST(data, loader_every_sample_once_per_epoch) {
    int n = 1001;
    ct_dataset *d = synthetic_dataset(n);
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 128, .seed = 3));
    int *first = malloc((size_t)n * sizeof(int)), *second = malloc((size_t)n * sizeof(int));
    int *hits = calloc((size_t)n, sizeof(int));
    int c1, c2;
    int batches1 = run_epoch(l, first, &c1), batches2 = run_epoch(l, second, &c2);
    ct_batch b;
    int third_epoch = ct_loader_next(l, &b) ? b.epoch : -1;
    int once = c1 == n && c2 == n, reordered = 0, labels_match = 1;
    for (int i = 0; i < n && once; i++) hits[first[i]]++;
    for (int i = 0; i < n && once; i++) once = hits[i] == 1;
    memset(hits, 0, (size_t)n * sizeof(int));
    for (int i = 0; i < n && once; i++) hits[second[i]]++, reordered += first[i] != second[i];
    for (int i = 0; i < n && once; i++) once = hits[i] == 1;
    for (int r = 0; r < b.n; r++) labels_match &= b.y.data[r] == label_of(sample_index(&b, r));
    int per_epoch = ct_loader_batches_per_epoch(l);
    free(first);
    free(second);
    free(hits);
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(once, "every sample exactly once in each epoch");
    CHECK(batches1 == 8 && batches2 == 8 && per_epoch == 8);
    CHECK(reordered > n / 2, "each epoch is reshuffled");
    CHECK(third_epoch == 2, "after two ends of epoch, batches say epoch 2");
    CHECK(labels_match, "labels travel with their images");
}

CT_TEST(data, loader_drop_last_and_tail_shape) {
    ct_dataset *d = synthetic_dataset(10);
    ct_batch b;
    char s[64];
    /* Without drop_last: 4 + 4 + 2, the tail has its own shape. */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 4, .seed = 5));
    int shapes_ok = ct_loader_batches_per_epoch(l) == 3;
    for (int k = 0; k < 3; k++) {
        shapes_ok &= ct_loader_next(l, &b) && b.index == k && b.epoch == 0 && b.y.n == b.n;
        shapes_ok &= b.x->ndim == 4 && b.x->shape[0] == (k < 2 ? 4 : 2) && b.x->shape[1] == 1 &&
                     b.x->shape[2] == 2 && b.x->shape[3] == 3 && b.x->size == (size_t)b.n * 6;
    }
    ct_tensor_shape_str(b.x, s, sizeof s);
    shapes_ok &= !ct_loader_next(l, &b) && ct_loader_next(l, &b) && b.epoch == 1 && b.index == 0 && b.n == 4;
    ct_loader_free(l);
    CHECK(shapes_ok, "tail batch shape %s", s);
    /* drop_last: 4 + 4, then the end. */
    l = ct_loader_new(d, CT_LOADER(.batch = 4, .seed = 5, .drop_last = 1, .flatten = 1));
    int drop_ok = ct_loader_batches_per_epoch(l) == 2;
    for (int k = 0; k < 2; k++)
        drop_ok &= ct_loader_next(l, &b) && b.n == 4 && b.x->ndim == 2 && b.x->shape[0] == 4 && b.x->shape[1] == 6;
    drop_ok &= !ct_loader_next(l, &b);
    ct_loader_free(l);
    CHECK(drop_ok, "drop_last gives two flattened (4, 6) batches");
    /* A batch larger than the dataset: one short batch, or none with drop_last. */
    l = ct_loader_new(d, CT_LOADER(.batch = 64, .flatten = 1));
    int big_ok = ct_loader_batches_per_epoch(l) == 1 && ct_loader_next(l, &b) && b.n == 10 &&
                 b.x->shape[0] == 10 && b.x->shape[1] == 6 && !ct_loader_next(l, &b);
    ct_loader_free(l);
    l = ct_loader_new(d, CT_LOADER(.batch = 64, .drop_last = 1));
    big_ok &= ct_loader_batches_per_epoch(l) == 0 && !ct_loader_next(l, &b) && !ct_loader_next(l, &b);
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(big_ok, "batch > n");
}

CT_TEST(data, loader_values_and_unshuffled_order) {
    ct_dataset *d = synthetic_dataset(300);
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 32, .shuffle = 0));
    ct_batch b;
    int in_order = 1, exact = 1, next = 0;
    while (ct_loader_next(l, &b)) {
        for (int r = 0; r < b.n; r++, next++) {
            in_order &= sample_index(&b, r) == next && b.y.data[r] == label_of(next);
            for (int j = 0; j < 6; j++) exact &= b.x->data[r * 6 + j] == (ct_real)pixel(next, j) / (ct_real)255;
        }
    }
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(next == 300 && in_order, "shuffle = 0 keeps file order");
    CHECK(exact, "x = byte / 255");
}

static void loader_with_zero_batch(void *arg) {
    ct_loader_new(arg, CT_LOADER(.batch = 0));
}

CT_TEST(data, loader_rejects_zero_batch) {
    ct_dataset *d = synthetic_dataset(4);
    char got[512];
    int stopped = ct_test_expect_fatal(loader_with_zero_batch, d, "ct_loader_new", got, sizeof got);
    ct_dataset_free(d);
    CHECK(stopped && strstr(got, "batch"), "stderr was: %s", got);
}

/* ---- real MNIST (../shared/data/mnist) --------------------------------------------------- */

static const char *mnist_dir(void) {
    static char dir[600];
    const char *shared = ct_test_shared_data();
    if (!shared) return NULL;
    snprintf(dir, sizeof dir, "%s/mnist", shared);
    return dir;
}

CT_TEST(data, mnist_t10k_class_counts) {
    const char *dir = mnist_dir();
    if (!dir) CT_SKIP_NO_SHARED_DATA();
    double t0 = ct_time_now();
    ct_dataset *d = ct_idx_load(dir, "test");
    double secs = ct_time_now() - t0;
    CHECK(d != NULL, "%s", ct_last_error());
    const int want[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    int counts[10] = {0}, in_range = 1;
    for (int i = 0; i < d->n; i++) {
        in_range &= d->labels[i] >= 0 && d->labels[i] < 10;
        if (in_range) counts[d->labels[i]]++;
    }
    int shape_ok = d->n == 10000 && d->channels == 1 && d->height == 28 && d->width == 28 && d->classes == 10;
    int first = d->labels[0] * 10 + d->labels[1]; /* the test set starts 7, 2 */
    ct_dataset_free(d);
    CHECK(shape_ok, "10000 images of 1x28x28, 10 classes");
    CHECK(in_range);
    for (int c = 0; c < 10; c++) CHECK(counts[c] == want[c], "class %d: %d images, want %d", c, counts[c], want[c]);
    CHECK(first == 72, "first labels 7, 2");
    ct_test_note("loaded in %.3fs", secs);
}

CT_TEST(data, mnist_train10k_and_count_mismatch) {
    const char *dir = mnist_dir();
    if (!dir) CT_SKIP_NO_SHARED_DATA();
    ct_dataset *d = ct_idx_load(dir, "train10k");
    CHECK(d != NULL, "%s", ct_last_error());
    int ok = d->n == 10000 && d->height == 28 && d->width == 28 && d->classes == 10;
    int first = d->labels[0] * 1000 + d->labels[1] * 100 + d->labels[2] * 10 + d->labels[3]; /* 5 0 4 1 */
    ct_dataset_free(d);
    CHECK(ok, "train10k: 10000 images of 28x28");
    CHECK(first == 5041, "train10k starts with the official first labels 5 0 4 1");
    char images[700], labels[700];
    snprintf(images, sizeof images, "%s/train10k-images-idx3-ubyte.gz", dir);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", dir);
    CHECK_LOAD_ERROR(ct_idx_load_files(images, labels), "train10k-images-idx3-ubyte.gz", "has 10000 images but");
    CHECK(strstr(ct_last_error(), "train-labels-idx1-ubyte.gz has 60000 labels"));
    /* "train" looks for train-images-idx3-ubyte[.gz], which is not there. */
    CHECK_LOAD_ERROR(ct_idx_load(dir, "train"), "train-images-idx3-ubyte", "cannot open");
}

CT_TEST(data, mnist_loader_epoch_speed) {
    const char *dir = mnist_dir();
    if (!dir) CT_SKIP_NO_SHARED_DATA();
    ct_dataset *d = ct_idx_load(dir, "t10k");
    CHECK(d != NULL, "%s", ct_last_error());
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 128, .seed = 42, .flatten = 1));
    ct_batch b;
    double sum = 0;
    int batches = 0, samples = 0, shape_ok = 1;
    double t0 = ct_time_now();
    while (ct_loader_next(l, &b)) {
        shape_ok &= b.x->ndim == 2 && b.x->shape[1] == 784 && b.x->shape[0] == b.n;
        for (size_t i = 0; i < b.x->size; i++) sum += b.x->data[i];
        batches++, samples += b.n;
    }
    double secs = ct_time_now() - t0;
    ct_loader_free(l);
    ct_dataset_free(d);
    double mean = sum / (10000.0 * 784);
    CHECK(shape_ok && batches == 79 && samples == 10000);
    CHECK(mean > 0.12 && mean < 0.14, "mean pixel of the MNIST test set is about 0.1325");
    ct_test_note("an epoch of batches (and a pass summing them) in %.1f ms; mean pixel %.4f", secs * 1e3, mean);
}
