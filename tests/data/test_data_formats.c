/* tests/data/test_data_formats.c — data/cifar.c and data/image_folder.c: CIFAR-10 and CIFAR-100
 * binary files (single files and the official directories, with class names), image folders
 * in every format stb decodes that we can write here (PNG, BMP, TGA, JPEG with stb_image_write;
 * PGM, PPM and a two-frame GIF by hand), grayscale and RGB, resizing, skipping unreadable
 * files, parallel decoding against serial, every error the loaders report; and on
 * ../shared/data the CIFAR-10 binary subset against its PNG and JPEG folders.
 *
 * Every synthetic file is written into ct_test_tmpdir(). */
#include "../test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

/* The call returned NULL and the error names `file` and contains `word`. */
#define CHECK_LOAD_ERROR(call, file, word)                                                        \
    do {                                                                                          \
        ct_dataset *d_ = (call);                                                                  \
        if (d_) ct_dataset_free(d_);                                                              \
        CHECK(!d_, "%s succeeded; want an error about %s", #call, word);                        \
        CHECK(strstr(ct_last_error(), file) && strstr(ct_last_error(), word),                    \
              "error \"%s\" should name %s and say \"%s\"", ct_last_error(), file, word);        \
    } while (0)

/* ---- helpers ----------------------------------------------------------------------------- */

/* A copy of a fresh temporary directory (ct_test_tmpdir's buffer is reused by the next call). */
static const char *fresh_dir(void) {
    static char dirs[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(dirs[k], sizeof dirs[k], "%s", ct_test_tmpdir());
    return dirs[k];
}

static char *path_in(const char *dir, const char *name) {
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t put = fwrite(data, 1, len, f);
    return fclose(f) == 0 && put == len;
}

static int write_text(const char *path, const char *text) { return write_bytes(path, text, strlen(text)); }

static int make_dir(const char *path) { return mkdir(path, 0700) == 0; }

/* ---- CIFAR ------------------------------------------------------------------------------- */

enum { PIXELS = 3072 };

/* Pixel j (0..3071, channel-major) of synthetic record i: bytes 0 and 1 spell the index. */
static uint8_t cifar_pixel(int i, int j) {
    if (j == 0) return (uint8_t)(i & 255);
    if (j == 1) return (uint8_t)(i >> 8);
    return (uint8_t)((i * 13 + j * 7 + (j >> 10) * 101) & 255);
}
static int fine_of(int i) { return (i * 37 + 11) % 100; }
static int coarse_of(int i) { return (i * 7 + 3) % 20; }
static int label10_of(int i) { return (i * 3 + 1) % 10; }

/* Records first..first+n-1: CIFAR-10 (header 1: label) or CIFAR-100 (header 2: coarse, fine). */
static int write_cifar(const char *path, int header, int first, int n) {
    size_t record = (size_t)(PIXELS + header);
    uint8_t *buf = malloc(record * (size_t)n + 1);
    for (int r = 0; r < n; r++) {
        int i = first + r;
        uint8_t *rec = buf + (size_t)r * record;
        if (header == 1) rec[0] = (uint8_t)label10_of(i);
        else rec[0] = (uint8_t)coarse_of(i), rec[1] = (uint8_t)fine_of(i);
        for (int j = 0; j < PIXELS; j++) rec[header + j] = cifar_pixel(i, j);
    }
    int ok = write_bytes(path, buf, record * (size_t)n);
    free(buf);
    return ok;
}

/* Sample k of d is synthetic record first + k with the label `label(first + k)`. */
static int cifar_matches(const ct_dataset *d, int first, int n, int (*label)(int)) {
    if (d->n != n || d->channels != 3 || d->height != 32 || d->width != 32) return 0;
    for (int k = 0; k < n; k++) {
        if (d->labels[k] != label(first + k)) return 0;
        for (int j = 0; j < PIXELS; j++)
            if (d->images[(size_t)k * PIXELS + j] != cifar_pixel(first + k, j)) return 0;
    }
    return 1;
}

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

/* Names file text: `count` lines "<prefix><k>", or the CIFAR-10 names when prefix is NULL, with
 * the kinds of whitespace the trimming must handle. Caller frees. */
static char *names_text(const char *prefix, int count) {
    char *text = malloc((size_t)count * 32 + 16), *p = text;
    p += sprintf(p, "\n");
    for (int k = 0; k < count; k++) {
        const char *pad = k % 3 == 0 ? "  " : k % 3 == 1 ? "\t" : "";
        if (prefix) p += sprintf(p, "%s%s%d%s\n", pad, prefix, k, k % 2 ? "\r" : "  ");
        else p += sprintf(p, "%s%s%s\n", pad, cifar10_names[k], k % 2 ? "\r" : " ");
        if (k == 4) p += sprintf(p, "   \n");
    }
    sprintf(p, "\n\n");
    return text;
}

static int names_equal(const ct_dataset *d, const char *prefix) {
    if (!d->class_names) return 0;
    for (int k = 0; k < d->classes; k++) {
        char want[32];
        if (prefix) snprintf(want, sizeof want, "%s%d", prefix, k);
        else snprintf(want, sizeof want, "%s", cifar10_names[k]);
        if (!d->class_names[k] || strcmp(d->class_names[k], want)) return 0;
    }
    return 1;
}

CT_TEST(data, cifar10_single_file_and_names) {
    const char *dir = fresh_dir();
    CHECK(write_cifar(path_in(dir, "some.bin"), 1, 0, 25));
    ct_dataset *d = ct_cifar10_load(path_in(dir, "some.bin"), NULL);
    CHECK(d != NULL, "%s", ct_last_error());
    int ok = cifar_matches(d, 0, 25, label10_of) && d->classes == 10 && d->class_names == NULL;
    ct_dataset_free(d);
    CHECK(ok, "25 records, bytes and labels as written, 10 classes, no names without batches.meta.txt");

    char *text = names_text(NULL, 10);
    CHECK(write_text(path_in(dir, "batches.meta.txt"), text));
    free(text);
    d = ct_cifar10_load(path_in(dir, "some.bin"), "ignored for a file");
    CHECK(d != NULL, "%s", ct_last_error());
    ok = cifar_matches(d, 0, 25, label10_of) && d->classes == 10 && names_equal(d, NULL);
    int source_ok = strstr(d->source, "some.bin") != NULL;
    ct_dataset_free(d);
    CHECK(ok, "names from batches.meta.txt beside the file, whitespace trimmed, empty lines skipped");
    CHECK(source_ok);
}

CT_TEST(data, cifar10_official_directory) {
    const char *root = fresh_dir();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", root);
    CHECK(make_dir(dir));
    /* Batches of different lengths so that a wrong order shows, some longer than the loader's
     * 128-record read chunks (and not a multiple of them). */
    const int lengths[5] = {130, 3, 257, 1, 129};
    int first = 0;
    for (int b = 1; b <= 5; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        CHECK(write_cifar(path_in(dir, name), 1, first, lengths[b - 1]));
        first += lengths[b - 1];
    }
    const int train_n = first;
    CHECK(write_cifar(path_in(dir, "test_batch.bin"), 1, 1000, 6));
    char *text = names_text(NULL, 10);
    CHECK(write_text(path_in(dir, "batches.meta.txt"), text));
    free(text);
    CHECK(write_text(path_in(dir, "readme.html"), "<html>ignored</html>"));

    /* The directory holding cifar-10-batches-bin/, and the batch directory itself. */
    const char *paths[2] = {root, dir};
    for (int p = 0; p < 2; p++) {
        ct_dataset *train = ct_cifar10_load(paths[p], "train");
        CHECK(train != NULL, "%s", ct_last_error());
        int ok = cifar_matches(train, 0, train_n, label10_of) && names_equal(train, NULL);
        ct_dataset_free(train);
        CHECK(ok, "%s train: data_batch_1..5 in order (%d records) with names", paths[p], train_n);
        ct_dataset *test = ct_cifar10_load(paths[p], "test");
        CHECK(test != NULL, "%s", ct_last_error());
        ok = cifar_matches(test, 1000, 6, label10_of) && names_equal(test, NULL) && test->classes == 10;
        ct_dataset_free(test);
        CHECK(ok, "%s test: test_batch.bin", paths[p]);
    }
}

CT_TEST(data, cifar100_fine_and_coarse) {
    const char *root = fresh_dir();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cifar-100-binary", root);
    CHECK(make_dir(dir));
    CHECK(write_cifar(path_in(dir, "train.bin"), 2, 0, 30));
    CHECK(write_cifar(path_in(dir, "test.bin"), 2, 500, 7));
    char *fine = names_text("fine", 100), *coarse = names_text("coarse", 20);
    int wrote = write_text(path_in(dir, "fine_label_names.txt"), fine) &&
                write_text(path_in(dir, "coarse_label_names.txt"), coarse);
    free(fine);
    free(coarse);
    CHECK(wrote);

    ct_dataset *d = ct_cifar100_load(root, "train", CT_CIFAR100_FINE);
    CHECK(d != NULL, "%s", ct_last_error());
    int ok = cifar_matches(d, 0, 30, fine_of) && d->classes == 100 && names_equal(d, "fine");
    ct_dataset_free(d);
    CHECK(ok, "train, fine labels: 30 records, 100 classes, fine_label_names.txt");

    d = ct_cifar100_load(dir, "test", CT_CIFAR100_COARSE);
    CHECK(d != NULL, "%s", ct_last_error());
    ok = cifar_matches(d, 500, 7, coarse_of) && d->classes == 20 && names_equal(d, "coarse");
    ct_dataset_free(d);
    CHECK(ok, "test, coarse labels: 7 records, 20 classes, coarse_label_names.txt");

    d = ct_cifar100_load(path_in(dir, "test.bin"), NULL, CT_CIFAR100_FINE);
    CHECK(d != NULL, "%s", ct_last_error());
    ok = cifar_matches(d, 500, 7, fine_of) && names_equal(d, "fine");
    ct_dataset_free(d);
    CHECK(ok, "a single file, names beside it");

    /* Without names files: no names, same data. */
    const char *bare = fresh_dir();
    CHECK(write_cifar(path_in(bare, "x.bin"), 2, 3, 4));
    d = ct_cifar100_load(path_in(bare, "x.bin"), NULL, CT_CIFAR100_COARSE);
    CHECK(d != NULL, "%s", ct_last_error());
    ok = cifar_matches(d, 3, 4, coarse_of) && d->classes == 20 && !d->class_names;
    ct_dataset_free(d);
    CHECK(ok);
}

/* A CIFAR file of n records whose record `bad` has byte `offset` set to `value`. */
static int write_cifar_with(const char *path, int header, int n, int bad, int offset, int value) {
    if (!write_cifar(path, header, 0, n)) return 0;
    FILE *f = fopen(path, "r+b");
    if (!f) return 0;
    int ok = fseek(f, (long)bad * (PIXELS + header) + offset, SEEK_SET) == 0 && fputc(value, f) == value;
    return fclose(f) == 0 && ok;
}

CT_TEST(data, cifar_errors_name_the_file_and_problem) {
    const char *dir = fresh_dir();
    CHECK_LOAD_ERROR(ct_cifar10_load(path_in(dir, "absent.bin"), NULL), "absent.bin", "No such file");
    CHECK_LOAD_ERROR(ct_cifar100_load(path_in(dir, "absent"), "train", CT_CIFAR100_FINE), "absent", "No such file");

    CHECK(write_bytes(path_in(dir, "empty.bin"), "", 0));
    CHECK_LOAD_ERROR(ct_cifar10_load(path_in(dir, "empty.bin"), NULL), "empty.bin", "file is empty");
    CHECK_LOAD_ERROR(ct_cifar100_load(path_in(dir, "empty.bin"), NULL, CT_CIFAR100_FINE), "empty.bin", "file is empty");

    /* Truncated: the size and the record size are in the message. */
    CHECK(write_cifar(path_in(dir, "short.bin"), 1, 0, 3));
    CHECK(truncate(path_in(dir, "short.bin"), 3 * 3073 - 5) == 0);
    CHECK_LOAD_ERROR(ct_cifar10_load(path_in(dir, "short.bin"), NULL), "short.bin", "9214 bytes");
    CHECK(strstr(ct_last_error(), "record size 3073"), "%s", ct_last_error());
    CHECK_LOAD_ERROR(ct_cifar100_load(path_in(dir, "short.bin"), NULL, CT_CIFAR100_FINE), "short.bin",
                     "record size 3074");
    /* The other CIFAR's file: the message says which format it fits. */
    CHECK(write_cifar(path_in(dir, "hundred.bin"), 2, 0, 3));
    CHECK_LOAD_ERROR(ct_cifar10_load(path_in(dir, "hundred.bin"), NULL), "hundred.bin", "CIFAR-100's 3074-byte");

    /* Labels out of range, with the record index. */
    CHECK(write_cifar_with(path_in(dir, "label10.bin"), 1, 9, 6, 0, 10));
    CHECK_LOAD_ERROR(ct_cifar10_load(path_in(dir, "label10.bin"), NULL), "label10.bin",
                     "record 6: label 10 is out of range (0..9)");
    CHECK(write_cifar_with(path_in(dir, "fine100.bin"), 2, 9, 4, 1, 100));
    CHECK_LOAD_ERROR(ct_cifar100_load(path_in(dir, "fine100.bin"), NULL, CT_CIFAR100_COARSE), "fine100.bin",
                     "record 4: fine label 100 is out of range (0..99)");
    CHECK(write_cifar_with(path_in(dir, "coarse20.bin"), 2, 9, 8, 0, 20));
    CHECK_LOAD_ERROR(ct_cifar100_load(path_in(dir, "coarse20.bin"), NULL, CT_CIFAR100_FINE), "coarse20.bin",
                     "record 8: coarse label 20 is out of range (0..19)");
    CHECK(write_cifar_with(path_in(dir, "late.bin"), 1, 300, 271, 0, 99));
    CHECK_LOAD_ERROR(ct_cifar10_load(path_in(dir, "late.bin"), NULL), "late.bin", "record 271: label 99");

    /* An official directory missing a batch; a label error in a later batch names that batch. */
    const char *batches = fresh_dir();
    for (int b = 1; b <= 5; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        if (b != 3) CHECK(write_cifar(path_in(batches, name), 1, 0, 2));
    }
    CHECK_LOAD_ERROR(ct_cifar10_load(batches, "train"), "data_batch_3.bin", "No such file");
    CHECK_LOAD_ERROR(ct_cifar10_load(batches, "test"), "test_batch.bin", "No such file");
    CHECK(write_cifar_with(path_in(batches, "data_batch_3.bin"), 1, 2, 1, 0, 200));
    CHECK_LOAD_ERROR(ct_cifar10_load(batches, "train"), "data_batch_3.bin", "record 1: label 200");
    CHECK_LOAD_ERROR(ct_cifar100_load(batches, "test", CT_CIFAR100_FINE), "test.bin", "No such file");

    /* A names file with the wrong number of names. */
    CHECK(write_cifar(path_in(batches, "data_batch_3.bin"), 1, 0, 2));
    CHECK(write_text(path_in(batches, "batches.meta.txt"), "airplane\nautomobile\n\nbird\n"));
    CHECK_LOAD_ERROR(ct_cifar10_load(batches, "train"), "batches.meta.txt", "has 3 class names");
    const char *hundred = fresh_dir();
    CHECK(write_cifar(path_in(hundred, "train.bin"), 2, 0, 2));
    char *coarse = names_text("c", 21);
    CHECK(write_text(path_in(hundred, "coarse_label_names.txt"), coarse));
    free(coarse);
    CHECK_LOAD_ERROR(ct_cifar100_load(hundred, "train", CT_CIFAR100_COARSE), "coarse_label_names.txt",
                     "has 21 class names (non-empty lines), want 20");
    /* The fine names are not needed for coarse labels and not read for them: fine labels work. */
    ct_dataset *d = ct_cifar100_load(hundred, "train", CT_CIFAR100_FINE);
    CHECK(d != NULL, "%s", ct_last_error());
    ct_dataset_free(d);
}

/* ---- image folders ----------------------------------------------------------------------- */

/* Channel c of pixel (y, x) of synthetic image i: a pattern that differs per image and channel. */
static uint8_t img_value(int i, int y, int x, int c) { return (uint8_t)((i * 37 + y * 11 + x * 5 + c * 71) & 255); }

/* Image i as stb wants it: h×w×c interleaved. Caller frees. */
static uint8_t *img_hwc(int i, int h, int w, int c) {
    uint8_t *p = malloc((size_t)h * w * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) p[((size_t)y * w + x) * c + k] = img_value(i, y, x, k);
    return p;
}

/* Sample s of d holds image i (channel-major) exactly. */
static int sample_is(const ct_dataset *d, int s, int i) {
    const uint8_t *p = d->images + (size_t)s * d->channels * d->height * d->width;
    for (int k = 0; k < d->channels; k++)
        for (int y = 0; y < d->height; y++)
            for (int x = 0; x < d->width; x++)
                if (*p++ != img_value(i, y, x, k)) return 0;
    return 1;
}

/* Writes image i in a lossless format chosen by the extension of `name`; c = 1 or 3. */
static int write_image(const char *path, int i, int h, int w, int c) {
    uint8_t *p = img_hwc(i, h, w, c);
    const char *ext = strrchr(path, '.') + 1;
    int ok = 0;
    if (!strcasecmp(ext, "png")) ok = stbi_write_png(path, w, h, c, p, w * c);
    else if (!strcasecmp(ext, "bmp")) ok = stbi_write_bmp(path, w, h, c, p);
    else if (!strcasecmp(ext, "tga")) ok = stbi_write_tga(path, w, h, c, p);
    else if (!strcasecmp(ext, "jpg") || !strcasecmp(ext, "jpeg")) ok = stbi_write_jpg(path, w, h, c, p, 95);
    else if (!strcasecmp(ext, "pgm") || !strcasecmp(ext, "ppm") || !strcasecmp(ext, "pnm")) {
        /* Binary PNM by hand: "P5" (gray) or "P6" (RGB), width, height, maxval, one whitespace. */
        char header[64];
        int k = snprintf(header, sizeof header, "P%d\n# a comment\n%d %d\n255\n", c == 1 ? 5 : 6, w, h);
        FILE *f = fopen(path, "wb");
        size_t bytes = (size_t)h * w * c;
        ok = f && fwrite(header, 1, (size_t)k, f) == (size_t)k && fwrite(p, 1, bytes, f) == bytes;
        if (f && fclose(f) != 0) ok = 0;
    }
    free(p);
    return ok;
}

/* A GIF89a by hand: two frames of w×h (w·h ≤ 200) with a 4-colour global palette; frame f's
 * pixel p has palette index (p + f) % 4. The LZW stream uses 8-bit literals (9-bit codes):
 * clear, one literal per pixel, end. Fewer than 254 codes never widen the code. */
static const uint8_t gif_palette[4][3] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {40, 50, 250}};

static int write_gif(const char *path, int w, int h) {
    uint8_t buf[2048], *p = buf;
    memcpy(p, "GIF89a", 6), p += 6;
    *p++ = (uint8_t)w, *p++ = 0, *p++ = (uint8_t)h, *p++ = 0;
    *p++ = 0x81, *p++ = 0, *p++ = 0; /* global table of 2^(1+1) entries; background; aspect */
    memcpy(p, gif_palette, 12), p += 12;
    for (int frame = 0; frame < 2; frame++) {
        *p++ = 0x2c;                                    /* image descriptor */
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 0;         /* left, top */
        *p++ = (uint8_t)w, *p++ = 0, *p++ = (uint8_t)h, *p++ = 0;
        *p++ = 0;                                       /* no local table, not interlaced */
        *p++ = 8;                                       /* LZW minimum code size */
        uint8_t data[512] = {0};
        size_t bit = 0;
        int codes[256], n = 0;
        codes[n++] = 256;
        for (int q = 0; q < w * h; q++) codes[n++] = (q + frame) % 4;
        codes[n++] = 257;
        for (int k = 0; k < n; k++)
            for (int b = 0; b < 9; b++, bit++)
                if (codes[k] >> b & 1) data[bit / 8] |= (uint8_t)(1 << (bit % 8));
        size_t bytes = (bit + 7) / 8;
        for (size_t off = 0; off < bytes; off += 255) {
            size_t chunk = bytes - off > 255 ? 255 : bytes - off;
            *p++ = (uint8_t)chunk;
            memcpy(p, data + off, chunk), p += chunk;
        }
        *p++ = 0; /* end of the frame's data */
    }
    *p++ = 0x3b; /* trailer */
    return write_bytes(path, buf, (size_t)(p - buf));
}

CT_TEST(data, image_folder_lossless_formats_rgb) {
    const char *dir = fresh_dir();
    /* strcmp order: "Zebra" < "apple" < "b" (upper case first), whatever readdir returns. */
    const char *classes[3] = {"b", "Zebra", "apple"};
    for (int c = 0; c < 3; c++) CHECK(make_dir(path_in(dir, classes[c])));
    /* The synthetic image in each file; within a class the loader sorts byte-wise, so
     * "10.png" < "2.BMP" ('1' < '2') and "2.BMP" < "a.TGA". */
    struct { const char *cls, *file; int image; } files[] = {
        {"apple", "2.BMP", 1}, {"apple", "10.png", 0}, {"apple", "a.TGA", 2},
        {"Zebra", "b.ppm", 3}, {"Zebra", "a.tga", 4},
        {"b", "x.pnm", 5}, {"b", "y.jpeg.png", 6},
    };
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char name[256];
        snprintf(name, sizeof name, "%s/%s", files[k].cls, files[k].file);
        CHECK(write_image(path_in(dir, name), files[k].image, 6, 5, 3), "writing %s", name);
    }
    CHECK(write_gif(path_in(dir, "b/z.gif"), 5, 6));
    /* Ignored: hidden files and folders, other extensions, plain files at the top. */
    CHECK(write_image(path_in(dir, "b/.hidden.png"), 9, 2, 2, 3));
    CHECK(write_text(path_in(dir, "b/notes.txt"), "not an image"));
    CHECK(write_text(path_in(dir, "b/png"), "no extension"));
    CHECK(write_image(path_in(dir, "top.png"), 9, 2, 2, 3));
    CHECK(make_dir(path_in(dir, ".cache")));
    CHECK(write_image(path_in(dir, ".cache/x.png"), 9, 2, 2, 3));

    ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER());
    CHECK(d != NULL, "%s", ct_last_error());
    /* Zebra: a.tga (4), b.ppm (3); apple: 10.png (0), 2.BMP (1), a.TGA (2); b: x.pnm (5),
     * y.jpeg.png (6), z.gif. */
    const int want_image[7] = {4, 3, 0, 1, 2, 5, 6}, want_label[8] = {0, 0, 1, 1, 1, 2, 2, 2};
    int shape_ok = d->n == 8 && d->channels == 3 && d->height == 6 && d->width == 5 && d->classes == 3 &&
                   d->skipped == 0;
    int names_ok = d->class_names && !strcmp(d->class_names[0], "Zebra") && !strcmp(d->class_names[1], "apple") &&
                   !strcmp(d->class_names[2], "b") && d->file_names && !d->skipped_files &&
                   !strcmp(d->file_names[7], path_in(dir, "b/z.gif"));
    int pixels_ok = shape_ok, labels_ok = shape_ok, gif_ok = shape_ok;
    for (int s = 0; shape_ok && s < 8; s++) {
        labels_ok &= d->labels[s] == want_label[s];
        if (s < 7) pixels_ok &= sample_is(d, s, want_image[s]);
    }
    for (int k = 0; shape_ok && k < 3; k++)
        for (int q = 0; q < 30; q++) gif_ok &= d->images[7 * 90 + k * 30 + q] == gif_palette[q % 4][k];
    ct_dataset_free(d);
    CHECK(shape_ok, "8 images of 3x6x5 in 3 classes");
    CHECK(names_ok, "class names are the folder names in strcmp order");
    CHECK(labels_ok);
    CHECK(pixels_ok, "PNG, BMP, TGA (RLE), PPM and PNM decode to the written pixels, channel-major");
    CHECK(gif_ok, "a GIF gives its first frame");
}

CT_TEST(data, image_folder_jpeg_close_to_source) {
    const char *dir = fresh_dir();
    CHECK(make_dir(path_in(dir, "one")));
    /* A smooth image: JPEG at quality 95 keeps it within a few levels. */
    const int h = 16, w = 16;
    uint8_t hwc[16 * 16 * 3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) hwc[(y * w + x) * 3 + c] = (uint8_t)(40 + 8 * y + 4 * x + 30 * c);
    CHECK(stbi_write_jpg(path_in(dir, "one/a.jpg"), w, h, 3, hwc, 95));
    CHECK(stbi_write_jpg(path_in(dir, "one/b.JPEG"), w, h, 3, hwc, 95));
    ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER());
    CHECK(d != NULL, "%s", ct_last_error());
    double worst_mse = 0;
    int shape_ok = d->n == 2 && d->height == h && d->width == w && d->channels == 3;
    for (int s = 0; shape_ok && s < 2; s++) {
        double se = 0;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < h * w; p++) {
                double diff = d->images[(size_t)s * 768 + c * 256 + p] - hwc[p * 3 + c];
                se += diff * diff;
            }
        if (se / 768 > worst_mse) worst_mse = se / 768;
    }
    ct_dataset_free(d);
    CHECK(shape_ok);
    CHECK(worst_mse < 4, "per-image MSE %.2f", worst_mse);
    ct_test_note("JPEG q95 per-image MSE %.2f", worst_mse);
}

/* stb's luma: (77 R + 150 G + 29 B) >> 8. */
static uint8_t luma(int i, int y, int x) {
    return (uint8_t)((77 * img_value(i, y, x, 0) + 150 * img_value(i, y, x, 1) + 29 * img_value(i, y, x, 2)) >> 8);
}

CT_TEST(data, image_folder_grayscale_and_rgb) {
    const char *dir = fresh_dir();
    CHECK(make_dir(path_in(dir, "gray")) && make_dir(path_in(dir, "rgb")));
    CHECK(write_image(path_in(dir, "gray/a.pgm"), 0, 4, 7, 1));
    CHECK(write_image(path_in(dir, "gray/b.png"), 1, 4, 7, 1));
    CHECK(write_image(path_in(dir, "rgb/c.png"), 2, 4, 7, 3));
    CHECK(write_image(path_in(dir, "rgb/d.bmp"), 3, 4, 7, 3));

    ct_dataset *g = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.channels = 1));
    CHECK(g != NULL, "%s", ct_last_error());
    int ok = g->n == 4 && g->channels == 1 && g->height == 4 && g->width == 7;
    ok = ok && sample_is(g, 0, 0) && sample_is(g, 1, 1);
    for (int s = 2; ok && s < 4; s++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 7; x++) ok &= g->images[s * 28 + y * 7 + x] == luma(s, y, x);
    ct_dataset_free(g);
    CHECK(ok, "channels 1: gray files as they are, colour files through stb's luma");

    ct_dataset *c = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.channels = 3));
    CHECK(c != NULL, "%s", ct_last_error());
    ok = c->n == 4 && c->channels == 3 && sample_is(c, 2, 2) && sample_is(c, 3, 3);
    for (int s = 0; ok && s < 2; s++)
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 7; x++) ok &= c->images[s * 84 + k * 28 + y * 7 + x] == img_value(s, y, x, 0);
    ct_dataset_free(c);
    CHECK(ok, "channels 3: gray repeated in R, G and B, colour files exact");
}

CT_TEST(data, image_folder_resize) {
    const char *dir = fresh_dir();
    CHECK(make_dir(path_in(dir, "k")));
    const int sizes[4][2] = {{10, 8}, {5, 4}, {16, 16}, {6, 7}}; /* height, width; the last is the target */
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "k/%d.png", i);
        CHECK(write_image(path_in(dir, name), i, sizes[i][0], sizes[i][1], 3));
    }
    /* A flat image stays flat. */
    uint8_t flat[9 * 13 * 3];
    memset(flat, 200, sizeof flat);
    CHECK(stbi_write_png(path_in(dir, "k/flat.png"), 13, 9, 3, flat, 13 * 3));

    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "k/1.png",
                     "image size 5x4 (height x width) differs from 10x8");
    CHECK(strstr(ct_last_error(), "k/0.png"), "names the file that set the size: %s", ct_last_error());

    ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.height = 6, .width = 7));
    CHECK(d != NULL, "%s", ct_last_error());
    int ok = d->n == 5 && d->height == 6 && d->width == 7 && d->channels == 3;
    /* Each resized image equals stbir_resize_uint8 of the source, transposed to CHW. */
    uint8_t out[6 * 7 * 3];
    for (int i = 0; ok && i < 3; i++) {
        uint8_t *src = img_hwc(i, sizes[i][0], sizes[i][1], 3);
        ok &= stbir_resize_uint8(src, sizes[i][1], sizes[i][0], 0, out, 7, 6, 0, 3);
        free(src);
        for (int k = 0; ok && k < 3; k++)
            for (int p = 0; p < 42; p++) ok &= d->images[(size_t)i * 126 + k * 42 + p] == out[p * 3 + k];
    }
    int same_size_exact = ok && sample_is(d, 3, 3);
    int flat_ok = ok;
    for (int p = 0; ok && p < 126; p++) flat_ok &= abs(d->images[4 * 126 + p] - 200) <= 1;
    ct_dataset_free(d);
    CHECK(ok, "resized images equal stbir_resize_uint8's, channel-major");
    CHECK(same_size_exact, "an image already at the size is copied unchanged");
    CHECK(flat_ok, "a flat image stays flat");

    /* Grayscale resize. */
    d = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.channels = 1, .height = 3, .width = 2));
    CHECK(d != NULL, "%s", ct_last_error());
    ok = d->n == 5 && d->channels == 1 && d->height == 3 && d->width == 2;
    ct_dataset_free(d);
    CHECK(ok);
}

/* Folder of `classes` classes × `per_class` 4x3 PNGs named 000.png...; image number
 * class·per_class + k. */
static int write_many(const char *dir, int classes, int per_class) {
    for (int c = 0; c < classes; c++) {
        char name[64];
        snprintf(name, sizeof name, "class%02d", c);
        if (!make_dir(path_in(dir, name))) return 0;
        for (int k = 0; k < per_class; k++) {
            snprintf(name, sizeof name, "class%02d/%03d.png", c, k);
            if (!write_image(path_in(dir, name), c * per_class + k, 4, 3, 3)) return 0;
        }
    }
    return 1;
}

static int same_dataset(const ct_dataset *a, const ct_dataset *b) {
    size_t bytes = (size_t)a->n * a->channels * a->height * a->width;
    return a->n == b->n && a->channels == b->channels && a->height == b->height && a->width == b->width &&
           a->skipped == b->skipped && !memcmp(a->images, b->images, bytes) &&
           !memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels);
}

CT_TEST(data, image_folder_parallel_same_as_serial) {
    const char *dir = fresh_dir();
    CHECK(write_many(dir, 3, 40));
    const int saved = ct_get_threads();
    ct_set_threads(1);
    ct_dataset *serial = ct_image_folder_load(dir, CT_IMAGE_FOLDER());
    ct_set_threads(2);
    ct_dataset *parallel = ct_image_folder_load(dir, CT_IMAGE_FOLDER());
    ct_set_threads(saved);
    CHECK(serial && parallel, "%s", ct_last_error());
    int ok = serial->n == 120 && serial->classes == 3 && same_dataset(serial, parallel);
    for (int s = 0; ok && s < 120; s++) ok &= sample_is(parallel, s, s) && parallel->labels[s] == s / 40;
    ct_dataset_free(serial);
    ct_dataset_free(parallel);
    CHECK(ok, "120 files, 2 threads: the same bytes, order and labels as 1 thread");

    /* Several broken files: the first in sorted order is reported, with any thread count. */
    CHECK(write_text(path_in(dir, "class02/005.png"), "garbage, not a PNG"));
    CHECK(write_text(path_in(dir, "class01/031.png"), "garbage, not a PNG"));
    CHECK(write_text(path_in(dir, "class01/017.png"), "garbage, not a PNG"));
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER());
        ct_set_threads(saved);
        CHECK_LOAD_ERROR(d, "class01/017.png", "cannot decode image");
    }
    /* A size mismatch late in the order and a broken file later still: the mismatch. */
    CHECK(write_image(path_in(dir, "class00/039.png"), 0, 5, 3, 3));
    ct_set_threads(2);
    ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER());
    ct_set_threads(saved);
    CHECK_LOAD_ERROR(d, "class00/039.png", "image size 5x3 (height x width) differs from 4x3");
}

CT_TEST(data, image_folder_skip_unreadable) {
    const char *dir = fresh_dir();
    CHECK(write_many(dir, 2, 20));
    CHECK(write_text(path_in(dir, "class00/003.png"), "garbage"));
    CHECK(write_bytes(path_in(dir, "class01/000.png"), "", 0));
    /* A truncated PNG: its first 40 bytes. */
    FILE *f = fopen(path_in(dir, "class01/019.png"), "r+b");
    CHECK(f != NULL);
    CHECK(ftruncate(fileno(f), 40) == 0);
    fclose(f);

    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "class00/003.png", "cannot decode image");
    const int saved = ct_get_threads();
    for (int threads = 1; threads <= 2; threads++) {
        ct_set_threads(threads);
        ct_dataset *d = ct_image_folder_load(dir, CT_IMAGE_FOLDER(.skip_unreadable = 1));
        ct_set_threads(saved);
        CHECK(d != NULL, "%s", ct_last_error());
        int ok = d->n == 37 && d->skipped == 3 && d->classes == 2 && d->file_names && d->skipped_files;
        /* The survivors close ranks in order, each with its file's path; the skipped ones are named. */
        int s = 0;
        for (int i = 0; ok && i < 40; i++) {
            if (i == 3 || i == 20 || i == 39) continue;
            char want[1024];
            snprintf(want, sizeof want, "%s/class%02d/%03d.png", dir, i / 20, i % 20);
            ok &= sample_is(d, s, i) && d->labels[s] == i / 20 && !strcmp(d->file_names[s], want);
            s++;
        }
        ok = ok && !strcmp(d->skipped_files[0], path_in(dir, "class00/003.png")) &&
             !strcmp(d->skipped_files[1], path_in(dir, "class01/000.png")) &&
             !strcmp(d->skipped_files[2], path_in(dir, "class01/019.png"));
        /* a subset keeps the paths of its samples and the list of skipped files */
        const int pick[2] = {36, 0};
        ct_dataset *sub = ok ? ct_dataset_subset(d, pick, 2) : NULL;
        ok = ok && sub && !strcmp(sub->file_names[0], d->file_names[36]) && !strcmp(sub->file_names[1], d->file_names[0]) &&
             sub->skipped == 3 && !strcmp(sub->skipped_files[2], d->skipped_files[2]);
        ct_dataset_free(sub);
        ct_dataset_free(d);
        CHECK(ok, "%d threads: 37 images kept in order with their paths, 3 skipped and named", threads);
    }
    /* Skipped files before the first good one: the size comes from the first good one. */
    const char *dir2 = fresh_dir();
    CHECK(write_many(dir2, 1, 3));
    CHECK(write_text(path_in(dir2, "class00/000.png"), "garbage"));
    ct_dataset *d = ct_image_folder_load(dir2, CT_IMAGE_FOLDER(.skip_unreadable = 1));
    CHECK(d != NULL, "%s", ct_last_error());
    int ok = d->n == 2 && d->skipped == 1 && d->height == 4 && d->width == 3 && sample_is(d, 0, 1) &&
             sample_is(d, 1, 2);
    ct_dataset_free(d);
    CHECK(ok);
    /* Everything skipped is an error, and says why the first file failed. */
    CHECK(write_text(path_in(dir2, "class00/001.png"), "garbage"));
    CHECK(write_text(path_in(dir2, "class00/002.png"), "garbage"));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir2, CT_IMAGE_FOLDER(.skip_unreadable = 1)), dir2,
                     "none of the 3 image files could be read");
    CHECK(strstr(ct_last_error(), "class00/000.png: cannot decode image"), "%s", ct_last_error());
    CHECK_LOAD_ERROR(ct_image_folder_load(dir2, CT_IMAGE_FOLDER(.skip_unreadable = 1, .height = 2, .width = 2)), dir2,
                     "none of the 3 image files could be read");
    /* A size mismatch is not skipped. */
    const char *dir3 = fresh_dir();
    CHECK(write_many(dir3, 1, 3));
    CHECK(write_image(path_in(dir3, "class00/001.png"), 0, 7, 7, 3));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir3, CT_IMAGE_FOLDER(.skip_unreadable = 1)), "class00/001.png",
                     "image size 7x7");
}

CT_TEST(data, image_folder_errors_name_the_file_and_problem) {
    const char *dir = fresh_dir();
    CHECK_LOAD_ERROR(ct_image_folder_load(path_in(dir, "absent"), CT_IMAGE_FOLDER()), "absent", "No such file");
    CHECK(write_text(path_in(dir, "plain"), "x"));
    CHECK_LOAD_ERROR(ct_image_folder_load(path_in(dir, "plain"), CT_IMAGE_FOLDER()), "plain", "not a folder");

    /* Files but no class folders. */
    CHECK(write_image(path_in(dir, "a.png"), 0, 2, 2, 3));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), dir, "no class subfolders");

    /* A class folder with nothing that looks like an image. */
    CHECK(make_dir(path_in(dir, "cat")) && make_dir(path_in(dir, "dog")));
    CHECK(write_image(path_in(dir, "cat/1.png"), 0, 2, 2, 3));
    CHECK(write_text(path_in(dir, "dog/readme.txt"), "x"));
    CHECK(write_image(path_in(dir, "dog/.hidden.png"), 0, 2, 2, 3));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "/dog", "class folder has no image files");

    /* Corrupt images: stb's reason is in the message. */
    CHECK(write_text(path_in(dir, "dog/1.png"), "\x89PNG but not really"));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "dog/1.png", "cannot decode image: ");
    ct_test_note("%s", ct_last_error());
    CHECK(write_bytes(path_in(dir, "dog/1.png"), "", 0));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "dog/1.png", "cannot decode image");
    /* A dangling link with an image name is not a file: dog has no image again. */
    CHECK(remove(path_in(dir, "dog/1.png")) == 0);
    CHECK(symlink(path_in(dir, "nowhere.png"), path_in(dir, "dog/1.png")) == 0);
    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "/dog", "class folder has no image files");
    CHECK(remove(path_in(dir, "dog/1.png")) == 0);

    /* Different sizes without a target size: both files and both sizes. */
    CHECK(write_image(path_in(dir, "dog/1.bmp"), 0, 3, 2, 3));
    CHECK_LOAD_ERROR(ct_image_folder_load(dir, CT_IMAGE_FOLDER()), "dog/1.bmp",
                     "image size 3x2 (height x width) differs from 2x2 of");
    CHECK(strstr(ct_last_error(), "cat/1.png"), "%s", ct_last_error());
}

/* Programmer errors stop with the op's name. */
static void bad_channels(void *arg) {
    (void)arg;
    ct_image_folder_load(".", CT_IMAGE_FOLDER(.channels = 4));
}
static void half_size(void *arg) {
    (void)arg;
    ct_image_folder_load(".", CT_IMAGE_FOLDER(.height = 32));
}
static void bad_split(void *arg) { ct_cifar10_load((const char *)arg, "validation"); }

CT_TEST(data, image_folder_and_cifar_option_checks) {
    char got[512];
    CHECK(ct_test_expect_fatal(bad_channels, NULL, "channels must be 1 (grayscale) or 3 (RGB), got 4", got, sizeof got),
          "%s", got);
    CHECK(ct_test_expect_fatal(half_size, NULL, "height and width must both be > 0", got, sizeof got), "%s", got);
    const char *dir = fresh_dir();
    CHECK(ct_test_expect_fatal(bad_split, (void *)dir, "ct_cifar10_load", got, sizeof got), "%s", got);
    CHECK(strstr(got, "\"validation\""), "%s", got);
}

/* ---- real data: ../shared/data/cifar10 and its image folders ------------------------------ */

/* The file names of an image folder in the loader's order (class folders and files sorted by
 * strcmp): out[k] = the number in sample k's file name ("00003.png" -> 3). */
static int folder_indices(const char *dir, int *out, int max) {
    char *classes[64];
    int nc = 0, n = 0;
    DIR *dp = opendir(dir);
    if (!dp) return -1;
    struct dirent *e;
    while ((e = readdir(dp)) && nc < 64)
        if (e->d_name[0] != '.') classes[nc++] = strdup(e->d_name);
    closedir(dp);
    for (int a = 0; a < nc; a++)
        for (int b = a + 1; b < nc; b++)
            if (strcmp(classes[a], classes[b]) > 0) {
                char *t = classes[a];
                classes[a] = classes[b], classes[b] = t;
            }
    for (int c = 0; c < nc; c++) {
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", dir, classes[c]);
        free(classes[c]);
        int first = n;
        if (!(dp = opendir(sub))) continue;
        while ((e = readdir(dp)) && n < max)
            if (e->d_name[0] != '.') out[n++] = atoi(e->d_name);
        closedir(dp);
        /* Names are zero-padded to one width, so numeric order is strcmp order. */
        for (int a = first; a < n; a++)
            for (int b = a + 1; b < n; b++)
                if (out[a] > out[b]) {
                    int t = out[a];
                    out[a] = out[b], out[b] = t;
                }
    }
    return n;
}

/* record_of[original index] = record number in the _sub.bin file, from its .indices.txt. */
static int read_indices(const char *path, int *record_of, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int rows = 0;
    for (int i = 0; i < max; i++) record_of[i] = -1;
    while (fgets(line, sizeof line, f)) {
        int record, original;
        if (line[0] == '#' || sscanf(line, "%d %d", &record, &original) != 2) continue;
        if (original >= 0 && original < max) record_of[original] = record, rows++;
    }
    fclose(f);
    return rows;
}

/* Loads the binary subset of `split` from <shared>/cifar10 and the folder <shared>/<folder>/<split>;
 * record[k] is the binary record of folder sample k. 0 on failure, with ct_last_error() set. */
typedef struct {
    ct_dataset *binary, *folder;
    int *record;
} real_pair;

static void real_pair_free(real_pair *p) {
    ct_dataset_free(p->binary);
    ct_dataset_free(p->folder);
    free(p->record);
}

static int load_real_pair(const char *shared, const char *folder, const char *split, real_pair *p) {
    memset(p, 0, sizeof *p);
    char path[1024];
    /* The binary subsets are data_batch_sub.bin (train) and test_batch_sub.bin (test). */
    const char *binary = !strcmp(split, "train") ? "data_batch_sub" : "test_batch_sub";
    snprintf(path, sizeof path, "%s/cifar10/%s.bin", shared, binary);
    if (!(p->binary = ct_cifar10_load(path, NULL))) return 0;
    snprintf(path, sizeof path, "%s/%s/%s", shared, folder, split);
    if (!(p->folder = ct_image_folder_load(path, CT_IMAGE_FOLDER()))) return 0;
    const int max_index = 50000;
    int *record_of = malloc(max_index * sizeof *record_of), *indices = malloc(max_index * sizeof *indices);
    snprintf(path, sizeof path, "%s/cifar10/%s.indices.txt", shared, binary);
    int ok = read_indices(path, record_of, max_index) == p->binary->n;
    snprintf(path, sizeof path, "%s/%s/%s", shared, folder, split);
    int n = folder_indices(path, indices, max_index);
    ok = ok && n == p->folder->n;
    p->record = malloc((size_t)(n > 0 ? n : 1) * sizeof *p->record);
    for (int k = 0; ok && k < n; k++) {
        ok = indices[k] >= 0 && indices[k] < max_index && record_of[indices[k]] >= 0;
        if (ok) p->record[k] = record_of[indices[k]];
    }
    free(record_of);
    free(indices);
    if (!ok) ct_set_error(CT_ERR_FORMAT, "%s: file names do not map onto the .indices.txt records", path);
    return ok;
}

CT_TEST(data, cifar10_real_png_folder_matches_binary) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    const char *splits[2] = {"train", "test"};
    const int want_n[2] = {1000, 200};
    double secs[2] = {0};
    for (int s = 0; s < 2; s++) {
        real_pair p;
        double t0 = ct_time_now();
        int loaded = load_real_pair(shared, "cifar10-png", splits[s], &p);
        secs[s] = ct_time_now() - t0;
        if (!loaded) {
            real_pair_free(&p);
            CHECK(loaded, "%s", ct_last_error());
        }
        int ok = p.folder->n == want_n[s] && p.folder->channels == 3 && p.folder->height == 32 &&
                 p.folder->width == 32 && p.folder->classes == 10;
        int same_bytes = ok, same_labels = ok;
        for (int k = 0; ok && k < p.folder->n; k++) {
            same_bytes &= !memcmp(p.folder->images + (size_t)k * PIXELS,
                                  p.binary->images + (size_t)p.record[k] * PIXELS, PIXELS);
            same_labels &= p.folder->labels[k] == p.binary->labels[p.record[k]];
        }
        /* Class names of the folder = batches.meta.txt (read beside the binary), same order. */
        int names_ok = ok && p.binary->class_names && p.folder->class_names;
        for (int c = 0; names_ok && c < 10; c++)
            names_ok &= !strcmp(p.binary->class_names[c], p.folder->class_names[c]);
        real_pair_free(&p);
        CHECK(ok, "%s: %d images of 3x32x32 in 10 classes", splits[s], want_n[s]);
        CHECK(same_bytes, "%s: every PNG decodes to its record's bytes", splits[s]);
        CHECK(same_labels, "%s: folder labels = binary labels", splits[s]);
        CHECK(names_ok, "%s: folder names = batches.meta.txt", splits[s]);
    }
    ct_test_note("1000 train + 200 test PNGs = their records byte for byte; folder + binary loaded in %.0f + %.0f ms",
                 secs[0] * 1e3, secs[1] * 1e3);
}

CT_TEST(data, cifar10_real_jpeg_folder_within_tolerance) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    real_pair p;
    int loaded = load_real_pair(shared, "cifar10-jpg", "test", &p);
    if (!loaded) {
        real_pair_free(&p);
        CHECK(loaded, "%s", ct_last_error());
    }
    int ok = p.folder->n == 200 && p.folder->channels == 3 && p.folder->height == 32 && p.folder->width == 32;
    int labels_ok = ok;
    double worst = 0, sum = 0;
    for (int k = 0; ok && k < p.folder->n; k++) {
        const uint8_t *a = p.folder->images + (size_t)k * PIXELS, *b = p.binary->images + (size_t)p.record[k] * PIXELS;
        double se = 0;
        for (int j = 0; j < PIXELS; j++) se += (double)(a[j] - b[j]) * (a[j] - b[j]);
        se /= PIXELS;
        sum += se;
        if (se > worst) worst = se;
        labels_ok &= p.folder->labels[k] == p.binary->labels[p.record[k]];
    }
    real_pair_free(&p);
    CHECK(ok, "200 JPEGs of 3x32x32");
    CHECK(labels_ok);
    /* The folder's README: per-image mean squared error up to about 230 on 0..255 pixels. */
    CHECK(worst <= 230, "worst per-image MSE %.1f", worst);
    ct_test_note("per-image MSE against the binary: mean %.1f, worst %.1f (README: up to about 230)", sum / 200, worst);
}

CT_TEST(data, cifar10_real_binary_subset) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char path[1024];
    snprintf(path, sizeof path, "%s/cifar10/data_batch_sub.bin", shared);
    double t0 = ct_time_now();
    ct_dataset *d = ct_cifar10_load(path, NULL);
    double secs = ct_time_now() - t0;
    CHECK(d != NULL, "%s", ct_last_error());
    int counts[10] = {0};
    for (int i = 0; i < d->n; i++) counts[d->labels[i]]++;
    int ok = d->n == 10000 && d->classes == 10 && d->class_names && !strcmp(d->class_names[6], "frog");
    int first_frog = d->labels[0] == 6;
    ct_dataset_free(d);
    CHECK(ok, "10000 records, 10 classes, names from batches.meta.txt");
    for (int c = 0; c < 10; c++) CHECK(counts[c] == 1000, "class %d: %d records, want 1000", c, counts[c]);
    CHECK(first_frog, "record 0 is the official first training image, a frog");
    /* The shared folder is not the official batch set: the error names the first missing batch. */
    snprintf(path, sizeof path, "%s/cifar10", shared);
    CHECK_LOAD_ERROR(ct_cifar10_load(path, "train"), "data_batch_1.bin", "No such file");
    ct_test_note("30.7 MB read and de-interleaved in %.1f ms", secs * 1e3);
}
