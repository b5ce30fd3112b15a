/* data/cifar.c — CIFAR-10 and CIFAR-100, binary version.
 *
 * Both formats are headerless runs of fixed-size records:
 *
 *     CIFAR-10   3073 bytes:  label (0..9)                       pixels (3072)
 *     CIFAR-100  3074 bytes:  coarse label (0..19)  fine (0..99)  pixels (3072)
 *
 * where the 3072 pixel bytes are a 32×32 image as 1024 R, then 1024 G, then 1024 B bytes, each
 * plane row-major: already the channel-major (CHW) layout ct_dataset keeps, so images are stored
 * as they come. The file size must be a non-zero multiple of the record size; every label byte
 * is checked (both labels of a CIFAR-100 record, whichever one is kept).
 *
 * Directory conventions (the official archives, unpacked):
 *     cifar-10-batches-bin/   data_batch_1.bin … data_batch_5.bin ("train", read in that order),
 *                             test_batch.bin ("test"), batches.meta.txt (10 class names)
 *     cifar-100-binary/       train.bin, test.bin, fine_label_names.txt (100),
 *                             coarse_label_names.txt (20)
 * A path may name the batch directory itself, a directory holding it, or one .bin file (then
 * the split is ignored and the names file is looked for beside it). A names file has one name
 * per line; surrounding whitespace is trimmed and empty lines are skipped; a file with the wrong
 * number of names is an error. Everything else in the directory (readme.html, the Python
 * pickles' batches.meta) is ignored.
 *
 * Loading reads every file into one buffer, the dataset's, in chunks of records; each chunk, while
 * still in cache, has its label bytes moved out into d->labels and its pixels slid down over them
 * (memmove, in place, front to back): no allocation and no copy per record beyond that.
 *
 * Not CIFAR, but a sibling trap: EMNIST's IDX files hold transposed images; ct_idx_load keeps them as stored. */
#define CT_BUILDING_LIBRARY
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CIFAR_PIXELS = 3 * 32 * 32, CIFAR10_BATCHES = 5, MAX_FILES = CIFAR10_BATCHES };

typedef struct {
    const char *name;          /* "CIFAR-10", "CIFAR-100" */
    int header;                /* label bytes before the pixels: 1 or 2 */
    int keep;                  /* which label byte goes into d->labels */
    int classes;               /* of the kept label */
    int limit[2];              /* each label byte must be < limit[k] */
    const char *label_name[2]; /* for messages: "label", or "coarse label" / "fine label" */
    const char *subdir;        /* the official archive's directory */
    const char *names_file;    /* class names for the kept label */
} cifar_format;

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int join(char *out, size_t len, const char *dir, const char *name) {
    int k = snprintf(out, len, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= len) return ct_set_error(CT_ERR_VALUE, "%s/%s: path too long", dir, name);
    return CT_OK;
}

/* Reads the class names file at `path` into *names (`want` strdup'd names). A missing file is
 * not an error (*names stays NULL); an unreadable one or a wrong count is. */
static int read_class_names(const char *path, int want, char ***names) {
    *names = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return CT_OK;
        return ct_set_error(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    char **out = calloc((size_t)want, sizeof *out);
    if (!out) {
        fclose(f);
        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    }
    int count = 0, rc = CT_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        char *start = line, *end = line + got;
        while (start < end && (*start == ' ' || (*start >= '\t' && *start <= '\r'))) start++;
        while (end > start && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r'))) end--;
        if (start == end) continue;
        if (count < want && !(out[count] = strndup(start, (size_t)(end - start)))) {
            rc = ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
            break;
        }
        count++;
    }
    if (rc == CT_OK && ferror(f)) rc = ct_set_error(CT_ERR_IO, "%s: read error: %s", path, strerror(errno));
    if (rc == CT_OK && count != want)
        rc = ct_set_error(CT_ERR_FORMAT, "%s: has %d class names (non-empty lines), want %d", path, count, want);
    free(line);
    fclose(f);
    if (rc != CT_OK) {
        for (int c = 0; c < want; c++) free(out[c]);
        free(out);
        return rc;
    }
    *names = out;
    return CT_OK;
}

/* The size of a data file in records; checks that it is a non-empty multiple of the record. */
static int record_count(const char *path, const cifar_format *fmt, size_t *records) {
    struct stat st;
    if (stat(path, &st) != 0) return ct_set_error(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ct_set_error(CT_ERR_IO, "%s: not a regular file", path);
    size_t size = (size_t)st.st_size, record = (size_t)(CIFAR_PIXELS + fmt->header);
    if (size == 0) return ct_set_error(CT_ERR_FORMAT, "%s: file is empty (no %s records)", path, fmt->name);
    if (size % record != 0) {
        /* The other CIFAR's record size is the likely mix-up; say so when it fits. */
        size_t other = fmt->header == 1 ? CIFAR_PIXELS + 2 : CIFAR_PIXELS + 1;
        return ct_set_error(CT_ERR_FORMAT,
                            "%s: file size %zu bytes is not a multiple of the %s record size %zu "
                            "(truncated or not a %s file%s)",
                            path, size, fmt->name, record, fmt->name,
                            size % other == 0 ? (fmt->header == 1 ? "; it would fit CIFAR-100's 3074-byte records"
                                                                  : "; it would fit CIFAR-10's 3073-byte records")
                                              : "");
    }
    *records = size / record;
    return CT_OK;
}

/* Records per read: about 400 KB, so a chunk is still in cache when it is de-interleaved. */
enum { CHUNK_RECORDS = 128 };

/* Reads the `count` records of `path` into place: file record k's pixels to images + k·3072 and
 * its kept label to labels[k]. The file is read in chunks, each to the spot where its pixels
 * belong, then de-interleaved in place front to back: record j's pixels slide down from
 * j·record + header to j·3072 (never after where they were, so no record is overwritten before
 * it has moved). The last chunk overhangs the end of its pixels by at most
 * CHUNK_RECORDS·header bytes, which the caller's buffer has to spare. */
static int read_records(const char *path, const cifar_format *fmt, size_t count, uint8_t *images, int *labels) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_set_error(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    const size_t record = (size_t)(CIFAR_PIXELS + fmt->header);
    int rc = CT_OK;
    for (size_t done = 0; done < count && rc == CT_OK;) {
        size_t m = count - done < CHUNK_RECORDS ? count - done : CHUNK_RECORDS;
        uint8_t *chunk = images + done * CIFAR_PIXELS;
        size_t got = fread(chunk, 1, m * record, f);
        if (got != m * record) {
            int e = ferror(f) ? errno : 0;
            rc = ct_set_error(CT_ERR_IO, "%s: read error after %zu of %zu bytes: %s", path, done * record + got,
                              count * record, e ? strerror(e) : "file shrank while reading");
            break;
        }
        for (size_t j = 0; j < m; j++) {
            const uint8_t *rec = chunk + j * record;
            for (int b = 0; b < fmt->header; b++)
                if (rec[b] >= fmt->limit[b]) {
                    rc = ct_set_error(CT_ERR_FORMAT, "%s: record %zu: %s %d is out of range (0..%d)", path, done + j,
                                      fmt->label_name[b], rec[b], fmt->limit[b] - 1);
                    break;
                }
            if (rc != CT_OK) break;
            labels[done + j] = rec[fmt->keep];
            memmove(chunk + j * CIFAR_PIXELS, rec + fmt->header, CIFAR_PIXELS);
        }
        done += m;
    }
    fclose(f);
    return rc;
}

static ct_dataset *cifar_load(const char *path, const char *split, const cifar_format *fmt, const char *op) {
    CT_CHECK(path, op, "NULL path");
    char files[MAX_FILES][4096], names_path[4096], dir[4096];
    int nfiles = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        ct_set_error(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        CT_CHECK(split && (!strcmp(split, "train") || !strcmp(split, "test")), op,
                 "split must be \"train\" or \"test\" for a directory (got %s%s%s)", split ? "\"" : "",
                 split ? split : "NULL", split ? "\"" : "");
        if (join(dir, sizeof dir, path, fmt->subdir) != CT_OK) return NULL;
        if (!is_dir(dir)) snprintf(dir, sizeof dir, "%s", path);
        int train = !strcmp(split, "train");
        if (fmt->header == 1 && train) {
            for (int b = 1; b <= CIFAR10_BATCHES; b++) {
                char name[32];
                snprintf(name, sizeof name, "data_batch_%d.bin", b);
                if (join(files[nfiles++], sizeof files[0], dir, name) != CT_OK) return NULL;
            }
        } else {
            const char *name = fmt->header == 1 ? "test_batch.bin" : train ? "train.bin" : "test.bin";
            if (join(files[nfiles++], sizeof files[0], dir, name) != CT_OK) return NULL;
        }
        for (int i = 0; i < nfiles; i++)
            if (stat(files[i], &st) != 0) {
                ct_set_error(CT_ERR_IO, "%s: cannot open: %s (the official %s %s split is %s)", files[i],
                             strerror(errno), fmt->name, split,
                             fmt->header == 2 ? (train ? "train.bin" : "test.bin")
                             : train          ? "data_batch_1.bin ... data_batch_5.bin"
                                              : "test_batch.bin");
                return NULL;
            }
    } else {
        snprintf(files[nfiles++], sizeof files[0], "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        else snprintf(dir, sizeof dir, ".");
        if (slash == path) snprintf(dir, sizeof dir, "/");
    }

    /* Sizes first (cheap, and an error before any big allocation). */
    size_t records[MAX_FILES], total = 0;
    for (int i = 0; i < nfiles; i++) {
        if (record_count(files[i], fmt, &records[i]) != CT_OK) return NULL;
        total += records[i];
    }
    if (total > INT_MAX) {
        ct_set_error(CT_ERR_VALUE, "%s: %zu records are more than a dataset holds (%d)", path, total, INT_MAX);
        return NULL;
    }

    char **names = NULL;
    if (join(names_path, sizeof names_path, dir, fmt->names_file) != CT_OK) return NULL;
    if (read_class_names(names_path, fmt->classes, &names) != CT_OK) return NULL;

    ct_dataset *d = calloc(1, sizeof *d);
    uint8_t *images = malloc(total * CIFAR_PIXELS + CHUNK_RECORDS * (size_t)fmt->header);
    int *labels = malloc(total * sizeof *labels);
    if (!d || !images || !labels) {
        ct_set_error(CT_ERR_MEMORY, "%s: out of memory for %zu %s records", path, total, fmt->name);
        goto fail;
    }
    for (int i = 0, r = 0; i < nfiles; r += (int)records[i], i++)
        if (read_records(files[i], fmt, records[i], images + (size_t)r * CIFAR_PIXELS, labels + r) != CT_OK) goto fail;
    d->images = images;
    d->labels = labels;
    d->n = (int)total;
    d->channels = 3;
    d->height = d->width = 32;
    d->classes = fmt->classes;
    d->class_names = names;
    const char *source = nfiles == 1 ? files[0] : dir;
    size_t source_len = strnlen(source, sizeof d->source - 1);
    memcpy(d->source, source, source_len);
    d->source[source_len] = 0;
    return d;

fail:
    if (names)
        for (int c = 0; c < fmt->classes; c++) free(names[c]);
    free(names);
    free(images);
    free(labels);
    free(d);
    return NULL;
}

ct_dataset *ct_cifar10_load(const char *path, const char *split) {
    static const cifar_format cifar10 = {
        .name = "CIFAR-10", .header = 1, .keep = 0, .classes = 10, .limit = {10, 0},
        .label_name = {"label", NULL}, .subdir = "cifar-10-batches-bin", .names_file = "batches.meta.txt",
    };
    return cifar_load(path, split, &cifar10, "ct_cifar10_load");
}

ct_dataset *ct_cifar100_load(const char *path, const char *split, ct_cifar100_labels labels) {
    CT_CHECK(labels == CT_CIFAR100_FINE || labels == CT_CIFAR100_COARSE, "ct_cifar100_load",
             "labels must be CT_CIFAR100_FINE or CT_CIFAR100_COARSE (got %d)", (int)labels);
    static const cifar_format fine = {
        .name = "CIFAR-100", .header = 2, .keep = 1, .classes = 100, .limit = {20, 100},
        .label_name = {"coarse label", "fine label"}, .subdir = "cifar-100-binary",
        .names_file = "fine_label_names.txt",
    };
    cifar_format coarse = fine;
    coarse.keep = 0;
    coarse.classes = 20;
    coarse.names_file = "coarse_label_names.txt";
    return cifar_load(path, split, labels == CT_CIFAR100_FINE ? &fine : &coarse, "ct_cifar100_load");
}
