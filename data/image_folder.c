/* data/image_folder.c — a dataset from a folder of image files, one subfolder per class:
 *
 *     dir/airplane/0001.png          label 0 ("airplane")
 *     dir/airplane/0002.png
 *     dir/automobile/0001.jpg        label 1 ("automobile")
 *
 * Classes are the subfolders of dir sorted byte-wise (strcmp, so "B" < "a" and the labels do
 * not depend on the locale or on the order readdir happens to return); files are sorted the same
 * way within a class, so sample order is stable too. Class names are the folder names.
 *
 * Ignored: names starting with '.' (files and folders), plain files directly in dir, and files
 * whose extension is not .png .jpg .jpeg .bmp .tga .gif .pnm .ppm .pgm (any case), anything
 * deeper than dir/<class>/<file>. A class folder with no image file is an error, as is a dir
 * with no class folder.
 *
 * Each file is read whole and checked first (data/image_check.c: the format its extension names,
 * a declared size that is not empty and at most .max_pixels, not truncated, sound JPEG Huffman
 * tables), then decoded from memory by stb_image (compiled in: data/stb_image.c): PNG (8 and
 * 16 bit, 16 reduced to 8), baseline and progressive JPEG, BMP, TGA, GIF (the first frame),
 * binary PNM (P5 grayscale, P6 colour; not the ASCII P2/P3).
 * stb converts to the channels asked for: grayscale from colour is its luma
 * (77 R + 150 G + 29 B) / 256, colour from grayscale repeats the value, and alpha is dropped
 * (not blended with a background). stb gives pixels interleaved (height, width, channel); the
 * dataset keeps them channel-major (channel, height, width), so each image is transposed once.
 *
 * Sizes: with .height and .width every image is resized to that size with stb_image_resize
 * (stbir_resize_uint8: Mitchell filter when shrinking, Catmull-Rom when enlarging, edge
 * pixels clamped, on the byte values as they are, with no sRGB linearisation); images already
 * at that size are copied as they are. Without them every image
 * must have the size of the first one, else an error names both files and both sizes.
 *
 * Files are decoded in parallel (OpenMP) when there are many. Each file owns a slot in the one
 * image buffer and a result record, so the dataset is the same as a serial load, and an error
 * is reported for the first failing file in sorted order whatever the thread timing. With
 * .skip_unreadable, files that cannot be opened, fail the checks or do not decode are left out (counted in d->skipped)
 * and the others close ranks; a size mismatch is never skipped. */
#define CT_BUILDING_LIBRARY
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <stb/stb_image_resize.h>

/* ---- listing ----------------------------------------------------------------------------- */

static int has_image_extension(const char *name) {
    static const char *const extensions[] = {"png", "jpg", "jpeg", "bmp", "tga", "gif", "pnm", "ppm", "pgm"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof extensions / sizeof *extensions; i++)
        if (!strcasecmp(dot + 1, extensions[i])) return 1;
    return 0;
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int count) {
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

/* The entries of `dir` that are folders (want_dirs) or image files (else), names not starting
 * with '.', sorted by strcmp. *names are the bare names, strdup'd. */
static int list_entries(const char *dir, int want_dirs, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    DIR *dp = opendir(dir);
    if (!dp) return ct_set_error(CT_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    char **list = NULL;
    int n = 0, cap = 0, rc = CT_OK;
    for (;;) {
        errno = 0; /* readdir's only way to tell the end from an error */
        struct dirent *e = readdir(dp);
        if (!e) break;
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !has_image_extension(e->d_name)) continue;
        char *full = path_join(dir, e->d_name);
        if (!full) {
            rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the folder", dir);
            break;
        }
        struct stat st;
        int keep = stat(full, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(full);
        if (!keep) continue;
        if (n == INT_MAX) {
            rc = ct_set_error(CT_ERR_VALUE, "%s: more than %d entries", dir, INT_MAX);
            break;
        }
        if (n == cap) {
            int grown = cap ? (cap > INT_MAX / 2 ? INT_MAX : cap * 2) : 64;
            char **bigger = realloc(list, (size_t)grown * sizeof *list);
            if (!bigger) {
                rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the folder", dir);
                break;
            }
            list = bigger, cap = grown;
        }
        if (!(list[n] = strdup(e->d_name))) {
            rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the folder", dir);
            break;
        }
        n++;
    }
    if (rc == CT_OK && errno != 0) rc = ct_set_error(CT_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
    closedir(dp);
    if (rc != CT_OK) {
        free_names(list, n);
        return rc;
    }
    if (n > 1) qsort(list, (size_t)n, sizeof *list, compare_names);
    *names = list;
    *count = n;
    return CT_OK;
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* What happened to one file; turned into a message only for the file that is reported. */
enum { FILE_OK, FILE_CANNOT_OPEN, FILE_CANNOT_DECODE, FILE_WRONG_SIZE, FILE_NO_MEMORY };

typedef struct {
    int status;
    char *why;          /* FILE_CANNOT_OPEN, FILE_CANNOT_DECODE: the message (malloc'd; NULL if that failed) */
    int height, width;  /* as decoded */
} file_result;

static void set_why(file_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(file_result *res, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&res->why, fmt, ap) < 0) res->why = NULL;
    va_end(ap);
}

/* Decodes `path` to `channels` interleaved channels (malloc'd, or NULL with *res set), after the
 * checks of data/image_check.c. */
static uint8_t *decode(const char *path, int channels, int64_t max_pixels, file_result *res) {
    uint8_t *file = NULL;
    size_t len = 0;
    if (ct_read_whole_file(path, INT_MAX, &file, &len) != CT_OK) {
        res->status = FILE_CANNOT_OPEN;
        set_why(res, "%s", ct_last_error());
        return NULL;
    }
    if (ct_image_check(path, file, len, max_pixels, &res->why)) {
        free(file);
        res->status = FILE_CANNOT_DECODE;
        return NULL;
    }
    int w = 0, h = 0;
    uint8_t *hwc = ct_image_decode(file, len, channels, &w, &h);
    free(file);
    if (!hwc) {
        res->status = FILE_CANNOT_DECODE;
        set_why(res, "%s: cannot decode image: %s", path, ct_image_failure());
        return NULL;
    }
    res->width = w;
    res->height = h;
    return hwc;
}

/* (h, w, c) interleaved -> (c, h, w) planes. */
static void hwc_to_chw(const uint8_t *hwc, int h, int w, int c, uint8_t *chw) {
    size_t plane = (size_t)h * (size_t)w;
    if (c == 1) {
        memcpy(chw, hwc, plane);
        return;
    }
    for (int k = 0; k < c; k++) {
        uint8_t *dst = chw + (size_t)k * plane;
        const uint8_t *src = hwc + k;
        for (size_t p = 0; p < plane; p++) dst[p] = src[p * (size_t)c];
    }
}

/* Decodes file i into its slot (height×width×channels bytes, CHW). height == 0 means "do not
 * know yet": the caller learns the size from res. */
static void load_one(const char *path, int channels, int height, int width, int resize, int64_t max_pixels,
                     uint8_t *slot, file_result *res) {
    memset(res, 0, sizeof *res);
    uint8_t *hwc = decode(path, channels, max_pixels, res);
    if (!hwc) return;
    if (res->height == height && res->width == width) {
        hwc_to_chw(hwc, height, width, channels, slot);
    } else if (!resize) {
        res->status = FILE_WRONG_SIZE;
    } else {
        uint8_t *resized = malloc((size_t)height * (size_t)width * (size_t)channels);
        if (!resized) res->status = FILE_NO_MEMORY;
        else if (!stbir_resize_uint8(hwc, res->width, res->height, 0, resized, width, height, 0, channels))
            res->status = FILE_NO_MEMORY; /* stbir fails only when its scratch allocation does */
        else hwc_to_chw(resized, height, width, channels, slot);
        free(resized);
    }
    free(hwc);
}

static int is_skippable(int status) { return status == FILE_CANNOT_OPEN || status == FILE_CANNOT_DECODE; }

/* The message for a failed file. `first` is the file that set the size (for mismatches). */
static int report(const char *path, const file_result *res, const char *first, int height, int width) {
    switch (res->status) {
    case FILE_CANNOT_OPEN:
    case FILE_CANNOT_DECODE:
        if (!res->why) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory describing why it cannot be read", path);
        return ct_set_error(res->status == FILE_CANNOT_OPEN ? CT_ERR_IO : CT_ERR_FORMAT, "%s", res->why);
    case FILE_WRONG_SIZE:
        return ct_set_error(CT_ERR_FORMAT,
                            "%s: image size %dx%d (height x width) differs from %dx%d of %s; "
                            "give .height and .width to resize every image",
                            path, res->height, res->width, height, width, first);
    default:
        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory decoding the image", path);
    }
}

static void free_results(file_result *results, int n) {
    if (!results) return;
    for (int i = 0; i < n; i++) free(results[i].why);
    free(results);
}

/* ---- the loader -------------------------------------------------------------------------- */

/* Folders with at least this many files are decoded in parallel. */
enum { PARALLEL_MIN_FILES = 32 };

ct_dataset *ct_image_folder_load(const char *dir, ct_image_folder_opts opts) {
    CT_CHECK(dir, "ct_image_folder_load", "NULL dir");
    CT_CHECK(opts.channels == 1 || opts.channels == 3, "ct_image_folder_load",
             "channels must be 1 (grayscale) or 3 (RGB), got %d", opts.channels);
    CT_CHECK(opts.height >= 0 && opts.width >= 0 && (opts.height > 0) == (opts.width > 0), "ct_image_folder_load",
             "height and width must both be > 0 (resize) or both 0 (keep the size), got %dx%d", opts.height,
             opts.width);
    CT_CHECK((int64_t)opts.height * opts.width <= INT_MAX / opts.channels, "ct_image_folder_load",
             "height x width %dx%d is too large", opts.height, opts.width);
    CT_CHECK(opts.max_pixels >= 0, "ct_image_folder_load", "max_pixels must be >= 0 (0: the default %lld), got %lld",
             (long long)CT_IMAGE_MAX_PIXELS, (long long)opts.max_pixels);
    const int channels = opts.channels, resize = opts.height > 0;
    const int64_t max_pixels = opts.max_pixels ? opts.max_pixels : CT_IMAGE_MAX_PIXELS;

    ct_dataset *d = NULL;
    char **classes = NULL, **files = NULL, **skipped_files = NULL;
    int nclasses = 0, nfiles = 0, kept = 0, *file_labels = NULL;
    file_result *results = NULL;
    uint8_t *images = NULL;

    struct stat st;
    if (stat(dir, &st) != 0) {
        ct_set_error(CT_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        ct_set_error(CT_ERR_IO, "%s: not a folder (want <dir>/<class>/<image>)", dir);
        return NULL;
    }
    if (list_entries(dir, 1, &classes, &nclasses) != CT_OK) return NULL;
    if (nclasses == 0) {
        ct_set_error(CT_ERR_FORMAT, "%s: no class subfolders (want <dir>/<class>/<image>)", dir);
        goto fail;
    }

    /* Every file, class by class: full paths and labels. */
    int cap = 0;
    for (int c = 0; c < nclasses; c++) {
        char *class_dir = path_join(dir, classes[c]), **names = NULL;
        int count = 0;
        if (!class_dir) goto oom;
        int rc = list_entries(class_dir, 0, &names, &count);
        if (rc == CT_OK && count == 0)
            rc = ct_set_error(CT_ERR_FORMAT,
                              "%s: class folder has no image files (.png .jpg .jpeg .bmp .tga .gif .pnm .ppm .pgm)",
                              class_dir);
        if (rc == CT_OK && count > INT_MAX - nfiles)
            rc = ct_set_error(CT_ERR_VALUE, "%s: more than %d images", dir, INT_MAX);
        if (rc == CT_OK && nfiles + count > cap) {
            int grown = nfiles + count > INT_MAX / 2 ? INT_MAX : 2 * (nfiles + count);
            char **more_files = realloc(files, (size_t)grown * sizeof *files);
            if (more_files) files = more_files;
            int *more_labels = realloc(file_labels, (size_t)grown * sizeof *file_labels);
            if (more_labels) file_labels = more_labels;
            if (more_files && more_labels) cap = grown;
            else rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the images", dir);
        }
        for (int i = 0; rc == CT_OK && i < count; i++) {
            if (!(files[nfiles] = path_join(class_dir, names[i])))
                rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the images", dir);
            else file_labels[nfiles++] = c;
        }
        free_names(names, count);
        free(class_dir);
        if (rc != CT_OK) goto fail;
    }

    results = calloc((size_t)nfiles, sizeof *results);
    if (!results) goto oom;

    /* The image size: given, or that of the first file that decodes (files before it failed:
     * an error, or skipped). */
    int height = opts.height, width = opts.width, start = 0;
    uint8_t *first_hwc = NULL;
    if (!resize) {
        for (; start < nfiles && !first_hwc; start++) {
            first_hwc = decode(files[start], channels, max_pixels, &results[start]);
            if (!first_hwc && !opts.skip_unreadable) {
                report(files[start], &results[start], NULL, 0, 0);
                goto fail;
            }
        }
        if (!first_hwc) goto all_skipped;
        start--; /* the first decoded file is stored below with the others */
        height = results[start].height;
        width = results[start].width;
    }
    /* stb refuses images whose w·h·channels does not fit an int, so only the total can overflow. */
    size_t image_bytes = (size_t)channels * (size_t)height * (size_t)width;
    images = image_bytes <= SIZE_MAX / (size_t)nfiles ? malloc(image_bytes * (size_t)nfiles) : NULL;
    if (!images) {
        free(first_hwc);
        goto oom;
    }
    if (first_hwc) {
        hwc_to_chw(first_hwc, height, width, channels, images + (size_t)start * image_bytes);
        free(first_hwc);
        start++;
    }

    /* The rest, in parallel. `stop` is the lowest index of a file that failed for good: files
     * after it need not be decoded, files before it still must (one of them may fail first). */
    int stop = nfiles;
    const int skip = opts.skip_unreadable;
#pragma omp parallel for schedule(dynamic, 4) if (nfiles - start >= PARALLEL_MIN_FILES)
    for (int i = start; i < nfiles; i++) {
        if (i > __atomic_load_n(&stop, __ATOMIC_RELAXED)) continue;
        load_one(files[i], channels, height, width, resize, max_pixels, images + (size_t)i * image_bytes, &results[i]);
        if (results[i].status != FILE_OK && !(skip && is_skippable(results[i].status))) {
            int seen = __atomic_load_n(&stop, __ATOMIC_RELAXED);
            while (i < seen && !__atomic_compare_exchange_n(&stop, &seen, i, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            }
        }
    }
    if (stop < nfiles) {
        const char *first = resize ? NULL : files[0];
        for (int i = 0; i < nfiles; i++)
            if (results[i].status == FILE_OK) {
                first = files[i];
                break;
            }
        report(files[stop], &results[stop], first, height, width);
        goto fail;
    }

    for (int i = 0; i < nfiles; i++) kept += results[i].status == FILE_OK;
    if (kept == 0) goto all_skipped;
    skipped_files = kept < nfiles ? malloc((size_t)(nfiles - kept) * sizeof *skipped_files) : NULL;
    if (kept < nfiles && !skipped_files) goto oom;

    /* Close ranks over skipped files; their paths go to skipped_files, in order. */
    kept = 0;
    for (int i = 0, n_skipped = 0; i < nfiles; i++) {
        if (results[i].status != FILE_OK) {
            skipped_files[n_skipped++] = files[i];
            files[i] = NULL;
            continue;
        }
        if (kept != i) {
            memcpy(images + (size_t)kept * image_bytes, images + (size_t)i * image_bytes, image_bytes);
            files[kept] = files[i];
            files[i] = NULL;
        }
        file_labels[kept++] = file_labels[i];
    }

    d = calloc(1, sizeof *d);
    if (!d) goto oom;
    uint8_t *shrunk = kept < nfiles ? realloc(images, image_bytes * (size_t)kept) : NULL;
    d->images = shrunk ? shrunk : images;
    int *labels = kept < nfiles ? realloc(file_labels, (size_t)kept * sizeof *labels) : NULL;
    d->labels = labels ? labels : file_labels;
    d->n = kept;
    d->channels = channels;
    d->height = height;
    d->width = width;
    d->classes = nclasses;
    d->class_names = classes;
    d->skipped = nfiles - kept;
    char **kept_files = kept < nfiles ? realloc(files, (size_t)kept * sizeof *files) : NULL;
    d->file_names = kept_files ? kept_files : files;
    d->skipped_files = skipped_files;
    size_t dir_len = strnlen(dir, sizeof d->source - 1);
    memcpy(d->source, dir, dir_len);
    free_results(results, nfiles);
    return d;

all_skipped:
    for (int i = 0; i < nfiles; i++)
        if (results[i].status != FILE_OK) {
            report(files[i], &results[i], NULL, 0, 0);
            break;
        }
    {
        char first_error[512];
        snprintf(first_error, sizeof first_error, "%s", ct_last_error());
        ct_set_error(CT_ERR_FORMAT, "%s: none of the %d image files could be read (all skipped); the first: %s", dir,
                     nfiles, first_error);
    }
    goto fail;
oom:
    ct_set_error(CT_ERR_MEMORY, "%s: out of memory", dir);
fail:
    free(images);
    free_results(results, nfiles);
    free(file_labels);
    free_names(files, nfiles);
    free_names(skipped_files, nfiles - kept);
    free_names(classes, nclasses);
    return NULL;
}
