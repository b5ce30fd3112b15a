/* data/idx.c — IDX files (MNIST, Fashion-MNIST, KMNIST), raw or gzip.
 *
 * An IDX file is a 4-byte magic, then one big-endian uint32 per dimension, then the data:
 *
 *     00 00 TYPE NDIM   dim_0 ... dim_{NDIM-1}   data (row-major)
 *
 * TYPE 0x08 is unsigned byte, the only type the MNIST family uses and the only one read here.
 * Images are magic 0x00000803 (N, H, W); labels are magic 0x00000801 (N). The file size must
 * be exactly header + product of dims: a short file is truncated, a long one is not what its
 * header says, and both are errors rather than guesses. A .gz file is inflated no further than
 * its header declares (data/gzip.c), so a small file that would inflate to gigabytes is refused
 * early. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { IDX_UBYTE = 0x08 };

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Checks the magic and reads `ndim` dims, each into 1..INT_MAX; *payload gets the product of
 * the dims, saturated at UINT64_MAX (three dims of 2^31 would wrap). `what` is "images" or
 * "labels". */
static int parse_idx_dims(const char *path, const uint8_t *buf, size_t len, int ndim, const char *what, int dims[],
                          uint64_t *payload) {
    uint32_t want_magic = 0x00000800u | (uint32_t)ndim;
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < 4)
        return ct_set_error(CT_ERR_FORMAT, "%s: file is truncated (%zu bytes, no IDX header)", path, len);
    uint32_t magic = be32(buf);
    if ((magic >> 16) != 0 || (magic & 0xff) != (uint32_t)ndim)
        return ct_set_error(CT_ERR_FORMAT, "%s: bad magic 0x%08x: not an IDX %s file (want 0x%08x)", path, magic,
                            what, want_magic);
    if (((magic >> 8) & 0xff) != IDX_UBYTE)
        return ct_set_error(CT_ERR_FORMAT, "%s: IDX element type 0x%02x is not unsigned byte (0x08)", path,
                            (magic >> 8) & 0xff);
    if (len < header)
        return ct_set_error(CT_ERR_FORMAT, "%s: file is truncated (%zu bytes, header needs %zu)", path, len, header);
    uint64_t product = 1;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = be32(buf + 4 + 4 * i);
        if (d == 0 || d > INT_MAX)
            return ct_set_error(CT_ERR_FORMAT, "%s: dimension %d is %u (must be 1..%d)", path, i, d, INT_MAX);
        dims[i] = (int)d;
        product = product > UINT64_MAX / d ? UINT64_MAX : product * d;
    }
    *payload = product;
    return CT_OK;
}

/* parse_idx_dims, then the file size: exactly the header and the product of the dims. */
static int parse_idx_header(const char *path, const uint8_t *buf, size_t len, int ndim, const char *what,
                            int dims[], size_t *payload) {
    uint64_t product = 0;
    int rc = parse_idx_dims(path, buf, len, ndim, what, dims, &product);
    if (rc != CT_OK) return rc;
    size_t avail = len - (4 + 4 * (size_t)ndim);
    if (product > avail) {
        /* the double is for the message only: the product may have saturated */
        double product_f = 1;
        for (int i = 0; i < ndim; i++) product_f *= dims[i];
        return ct_set_error(CT_ERR_FORMAT, "%s: file is truncated: header says %.0f bytes of %s data but the file has %zu",
                            path, product_f, what, avail);
    }
    if (product != avail)
        return ct_set_error(CT_ERR_FORMAT,
                            "%s: file size does not match header: header says %llu bytes of %s data but the file has %zu",
                            path, (unsigned long long)product, what, avail);
    *payload = (size_t)product;
    return CT_OK;
}

/* The content size an IDX header declares (for reading .gz files no further than that). */
static int declared_size(const char *path, const uint8_t *head, size_t len, int ndim, const char *what,
                         uint64_t *total) {
    int dims[3];
    uint64_t product = 0;
    int rc = parse_idx_dims(path, head, len, ndim, what, dims, &product);
    size_t header = 4 + 4 * (size_t)ndim;
    *total = product > UINT64_MAX - header ? UINT64_MAX : product + header;
    return rc;
}
static int declared_images(const char *path, const uint8_t *head, size_t len, uint64_t *total) {
    return declared_size(path, head, len, 3, "images", total);
}
static int declared_labels(const char *path, const uint8_t *head, size_t len, uint64_t *total) {
    return declared_size(path, head, len, 1, "labels", total);
}

ct_dataset *ct_idx_load_files(const char *images_path, const char *labels_path) {
    CT_CHECK(images_path && labels_path, "ct_idx_load_files", "NULL path");
    ct_dataset *d = NULL;
    uint8_t *img = NULL, *lab = NULL;
    size_t img_len = 0, lab_len = 0, img_bytes = 0, n_labels = 0;
    int img_dims[3] = {0}, lab_dims[1] = {0};

    if (ct_read_file_declared(images_path, 16, declared_images, &img, &img_len) != CT_OK) goto fail;
    if (parse_idx_header(images_path, img, img_len, 3, "images", img_dims, &img_bytes) != CT_OK) goto fail;
    if ((int64_t)img_dims[1] * img_dims[2] > INT_MAX) {
        ct_set_error(CT_ERR_FORMAT, "%s: images of %dx%d are too large", images_path, img_dims[1], img_dims[2]);
        goto fail;
    }
    if (ct_read_file_declared(labels_path, 8, declared_labels, &lab, &lab_len) != CT_OK) goto fail;
    if (parse_idx_header(labels_path, lab, lab_len, 1, "labels", lab_dims, &n_labels) != CT_OK) goto fail;
    if (lab_dims[0] != img_dims[0]) {
        ct_set_error(CT_ERR_FORMAT, "%s has %d images but %s has %d labels", images_path, img_dims[0], labels_path,
                     lab_dims[0]);
        goto fail;
    }

    d = calloc(1, sizeof *d);
    if (!d) goto oom;
    d->n = img_dims[0];
    d->channels = 1;
    d->height = img_dims[1];
    d->width = img_dims[2];
    d->labels = malloc((size_t)d->n * sizeof *d->labels);
    if (!d->labels) goto oom;
    int max_label = 0;
    for (int i = 0; i < d->n; i++) {
        d->labels[i] = lab[8 + i];
        if (d->labels[i] > max_label) max_label = d->labels[i];
    }
    d->classes = max_label + 1;
    free(lab);
    lab = NULL;

    /* Keep the file buffer as the image store: slide the pixels over the 16-byte header. */
    memmove(img, img + 16, img_bytes);
    uint8_t *shrunk = realloc(img, img_bytes);
    d->images = shrunk ? shrunk : img;
    img = NULL;
    snprintf(d->source, sizeof d->source, "%s", images_path);
    return d;

oom:
    ct_set_error(CT_ERR_MEMORY, "%s: out of memory", images_path);
fail:
    free(img);
    free(lab);
    ct_dataset_free(d);
    return NULL;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* "<dir>/<prefix>-<kind>-ubyte", or the same with .gz when only that exists. */
static int find_idx_file(char *out, size_t out_len, const char *dir, const char *prefix, const char *kind) {
    int k = snprintf(out, out_len, "%s/%s-%s-ubyte", dir, prefix, kind);
    if (k < 0 || (size_t)k + 4 > out_len) return ct_set_error(CT_ERR_VALUE, "%s: path too long", dir);
    if (file_exists(out)) return CT_OK;
    strcat(out, ".gz");
    if (file_exists(out)) return CT_OK;
    int e = errno;
    out[k] = 0;
    return ct_set_error(CT_ERR_IO, "%s (or .gz): cannot open: %s", out, strerror(e));
}

ct_dataset *ct_idx_load(const char *dir, const char *split) {
    CT_CHECK(dir && split, "ct_idx_load", "NULL dir or split");
    const char *prefix = !strcmp(split, "train") ? "train"
                         : (!strcmp(split, "test") || !strcmp(split, "t10k")) ? "t10k"
                                                                               : split;
    char images[4096], labels[4096];
    if (find_idx_file(images, sizeof images, dir, prefix, "images-idx3") != CT_OK) return NULL;
    if (find_idx_file(labels, sizeof labels, dir, prefix, "labels-idx1") != CT_OK) return NULL;
    return ct_idx_load_files(images, labels);
}
