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

/* A load in progress: what ct_image_folder_load has built so far, freed by folder_free on failure. */
typedef struct {
    const char *dir;
    char **classes, **files, **skipped_files;
    int nclasses, nfiles, kept, *file_labels;
    file_result *results;
    uint8_t *images;          /* nfiles images of image_bytes, CHW */
    int height, width;
    size_t image_bytes;
} folder_load;

/* What a step returns besides CT_OK and an error code (message set): every file was skipped. */
enum { ALL_SKIPPED = -1000 };

static void check_opts(const char *dir, ct_image_folder_opts opts) {
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
}

static int out_of_memory(const folder_load *L) { return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", L->dir); }

/* Every file, class by class: full paths and labels. */
static int list_files(folder_load *L) {
    int cap = 0;
    for (int c = 0; c < L->nclasses; c++) {
        char *class_dir = path_join(L->dir, L->classes[c]), **names = NULL;
        int count = 0;
        if (!class_dir) return out_of_memory(L);
        int rc = list_entries(class_dir, 0, &names, &count);
        if (rc == CT_OK && count == 0)
            rc = ct_set_error(CT_ERR_FORMAT,
                              "%s: class folder has no image files (.png .jpg .jpeg .bmp .tga .gif .pnm .ppm .pgm)",
                              class_dir);
        if (rc == CT_OK && count > INT_MAX - L->nfiles)
            rc = ct_set_error(CT_ERR_VALUE, "%s: more than %d images", L->dir, INT_MAX);
        if (rc == CT_OK && L->nfiles + count > cap) {
            int grown = L->nfiles + count > INT_MAX / 2 ? INT_MAX : 2 * (L->nfiles + count);
            char **more_files = realloc(L->files, (size_t)grown * sizeof *L->files);
            if (more_files) L->files = more_files;
            int *more_labels = realloc(L->file_labels, (size_t)grown * sizeof *L->file_labels);
            if (more_labels) L->file_labels = more_labels;
            if (more_files && more_labels) cap = grown;
            else rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the images", L->dir);
        }
        for (int i = 0; rc == CT_OK && i < count; i++) {
            if (!(L->files[L->nfiles] = path_join(class_dir, names[i])))
                rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory listing the images", L->dir);
            else L->file_labels[L->nfiles++] = c;
        }
        free_names(names, count);
        free(class_dir);
        if (rc != CT_OK) return rc;
    }
    return CT_OK;
}

/* The image size: given, or that of the first file that decodes (files before it failed: an
 * error, or skipped); then the buffer for every image, with that first one stored in it. *start
 * is the first file still to decode. */
static int size_images(folder_load *L, ct_image_folder_opts opts, int64_t max_pixels, int *start) {
    const int channels = opts.channels;
    uint8_t *first_hwc = NULL;
    int i = 0;
    L->height = opts.height, L->width = opts.width;
    if (opts.height == 0) {
        for (; i < L->nfiles && !first_hwc; i++) {
            first_hwc = decode(L->files[i], channels, max_pixels, &L->results[i]);
            if (!first_hwc && !opts.skip_unreadable) return report(L->files[i], &L->results[i], NULL, 0, 0);
        }
        if (!first_hwc) return ALL_SKIPPED;
        i--; /* the first decoded file is stored below with the others */
        L->height = L->results[i].height;
        L->width = L->results[i].width;
    }
    /* stb refuses images whose w·h·channels does not fit an int, so only the total can overflow. */
    L->image_bytes = (size_t)channels * (size_t)L->height * (size_t)L->width;
    L->images = L->image_bytes <= SIZE_MAX / (size_t)L->nfiles ? malloc(L->image_bytes * (size_t)L->nfiles) : NULL;
    if (!L->images) {
        free(first_hwc);
        return out_of_memory(L);
    }
    if (first_hwc) {
        hwc_to_chw(first_hwc, L->height, L->width, channels, L->images + (size_t)i * L->image_bytes);
        free(first_hwc);
        i++;
    }
    *start = i;
    return CT_OK;
}

/* Files [start, nfiles), in parallel. `stop` is the lowest index of a file that failed for good:
 * files after it need not be decoded, files before it still must (one of them may fail first). */
static int decode_rest(folder_load *L, ct_image_folder_opts opts, int64_t max_pixels, int start) {
    const int resize = opts.height > 0, skip = opts.skip_unreadable, nfiles = L->nfiles;
    int stop = nfiles;
#pragma omp parallel for schedule(dynamic, 4) if (nfiles - start >= PARALLEL_MIN_FILES)
    for (int i = start; i < nfiles; i++) {
        if (i > __atomic_load_n(&stop, __ATOMIC_RELAXED)) continue;
        load_one(L->files[i], opts.channels, L->height, L->width, resize, max_pixels,
                 L->images + (size_t)i * L->image_bytes, &L->results[i]);
        if (L->results[i].status != FILE_OK && !(skip && is_skippable(L->results[i].status))) {
            int seen = __atomic_load_n(&stop, __ATOMIC_RELAXED);
            while (i < seen && !__atomic_compare_exchange_n(&stop, &seen, i, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            }
        }
    }
    if (stop == nfiles) return CT_OK;
    const char *first = resize ? NULL : L->files[0];
    for (int i = 0; i < nfiles; i++)
        if (L->results[i].status == FILE_OK) {
            first = L->files[i];
            break;
        }
    return report(L->files[stop], &L->results[stop], first, L->height, L->width);
}

/* Closes ranks over skipped files; their paths go to skipped_files, in order. */
static int drop_skipped(folder_load *L) {
    const int nfiles = L->nfiles;
    L->kept = 0;
    for (int i = 0; i < nfiles; i++) L->kept += L->results[i].status == FILE_OK;
    if (L->kept == 0) return ALL_SKIPPED;
    L->skipped_files = L->kept < nfiles ? malloc((size_t)(nfiles - L->kept) * sizeof *L->skipped_files) : NULL;
    if (L->kept < nfiles && !L->skipped_files) return out_of_memory(L);
    int kept = 0;
    for (int i = 0, n_skipped = 0; i < nfiles; i++) {
        if (L->results[i].status != FILE_OK) {
            L->skipped_files[n_skipped++] = L->files[i];
            L->files[i] = NULL;
            continue;
        }
        if (kept != i) {
            memcpy(L->images + (size_t)kept * L->image_bytes, L->images + (size_t)i * L->image_bytes, L->image_bytes);
            L->files[kept] = L->files[i];
            L->files[i] = NULL;
        }
        L->file_labels[kept++] = L->file_labels[i];
    }
    return CT_OK;
}

/* The dataset takes over what the load built, shrunk to the kept files; NULL when out of memory. */
static ct_dataset *make_dataset(folder_load *L, int channels) {
    const int kept = L->kept, nfiles = L->nfiles;
    ct_dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    uint8_t *shrunk = kept < nfiles ? realloc(L->images, L->image_bytes * (size_t)kept) : NULL;
    d->images = shrunk ? shrunk : L->images;
    int *labels = kept < nfiles ? realloc(L->file_labels, (size_t)kept * sizeof *labels) : NULL;
    d->labels = labels ? labels : L->file_labels;
    d->n = kept;
    d->channels = channels;
    d->height = L->height;
    d->width = L->width;
    d->classes = L->nclasses;
    d->class_names = L->classes;
    d->skipped = nfiles - kept;
    char **kept_files = kept < nfiles ? realloc(L->files, (size_t)kept * sizeof *L->files) : NULL;
    d->file_names = kept_files ? kept_files : L->files;
    d->skipped_files = L->skipped_files;
    size_t dir_len = strnlen(L->dir, sizeof d->source - 1);
    memcpy(d->source, L->dir, dir_len);
    free_results(L->results, nfiles);
    return d;
}

/* Every file was skipped: the error names the first one's problem. */
static void report_all_skipped(const folder_load *L) {
    for (int i = 0; i < L->nfiles; i++)
        if (L->results[i].status != FILE_OK) {
            report(L->files[i], &L->results[i], NULL, 0, 0);
            break;
        }
    char first_error[512];
    snprintf(first_error, sizeof first_error, "%s", ct_last_error());
    ct_set_error(CT_ERR_FORMAT, "%s: none of the %d image files could be read (all skipped); the first: %s", L->dir,
                 L->nfiles, first_error);
}

static void folder_free(folder_load *L) {
    free(L->images);
    free_results(L->results, L->nfiles);
    free(L->file_labels);
    free_names(L->files, L->nfiles);
    free_names(L->skipped_files, L->nfiles - L->kept);
    free_names(L->classes, L->nclasses);
}

ct_dataset *ct_image_folder_load(const char *dir, ct_image_folder_opts opts) {
    check_opts(dir, opts);
    const int64_t max_pixels = opts.max_pixels ? opts.max_pixels : CT_IMAGE_MAX_PIXELS;
    folder_load L = {.dir = dir};

    struct stat st;
    if (stat(dir, &st) != 0) {
        ct_set_error(CT_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        ct_set_error(CT_ERR_IO, "%s: not a folder (want <dir>/<class>/<image>)", dir);
        return NULL;
    }
    if (list_entries(dir, 1, &L.classes, &L.nclasses) != CT_OK) return NULL;
    int rc = L.nclasses ? CT_OK : ct_set_error(CT_ERR_FORMAT, "%s: no class subfolders (want <dir>/<class>/<image>)", dir);
    if (rc == CT_OK) rc = list_files(&L);
    if (rc == CT_OK && !(L.results = calloc((size_t)L.nfiles, sizeof *L.results))) rc = out_of_memory(&L);
    int start = 0;
    if (rc == CT_OK) rc = size_images(&L, opts, max_pixels, &start);
    if (rc == CT_OK) rc = decode_rest(&L, opts, max_pixels, start);
    if (rc == CT_OK) rc = drop_skipped(&L);
    ct_dataset *d = NULL;
    if (rc == CT_OK && !(d = make_dataset(&L, opts.channels))) rc = out_of_memory(&L);
    if (d) return d;
    if (rc == ALL_SKIPPED) report_all_skipped(&L);
    folder_free(&L);
    return NULL;
}
