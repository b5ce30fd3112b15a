/* data/dataset.c — what every format shares: freeing a dataset, subsets, a train/validation
 * split, and per-channel statistics for normalisation. */
#define CT_BUILDING_LIBRARY
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_strings(char **strings, int n) {
    if (!strings) return;
    for (int i = 0; i < n; i++) free(strings[i]);
    free(strings);
}

void ct_dataset_free(ct_dataset *d) {
    if (!d) return;
    free_strings(d->class_names, d->classes);
    free_strings(d->file_names, d->n);
    free_strings(d->skipped_files, d->skipped);
    free(d->images);
    free(d->labels);
    free(d->clean_labels);
    free(d);
}

/* A copy of n strings, picked by index (NULL: 0..n−1); NULL when src is NULL or out of memory
 * (*ok = 0 then). */
static char **copy_strings(char *const *src, const int *index, int n, int *ok) {
    if (!src) return NULL;
    char **out = calloc(n > 0 ? (size_t)n : 1, sizeof *out);
    for (int i = 0; out && i < n; i++) {
        const char *str = src[index ? index[i] : i] ? src[index ? index[i] : i] : "";
        const size_t len = strlen(str) + 1;
        if (!(out[i] = malloc(len))) {
            free_strings(out, i);
            out = NULL;
            break;
        }
        memcpy(out[i], str, len);
    }
    if (!out) *ok = 0;
    return out;
}

/* Copies n class names (NULL stays NULL). 0 on out of memory, with the copies freed. */
static int copy_class_names(ct_dataset *dst, const ct_dataset *src) {
    if (!src->class_names || src->classes <= 0) return 1;
    dst->class_names = calloc((size_t)src->classes, sizeof *dst->class_names);
    if (!dst->class_names) return 0;
    for (int c = 0; c < src->classes; c++) {
        const char *name = src->class_names[c] ? src->class_names[c] : "";
        size_t len = strlen(name) + 1;
        dst->class_names[c] = malloc(len);
        if (!dst->class_names[c]) return 0;
        memcpy(dst->class_names[c], name, len);
    }
    return 1;
}

ct_dataset *ct_dataset_subset(const ct_dataset *d, const int *indices, int n) {
    CT_CHECK(d != NULL, "ct_dataset_subset", "dataset is NULL");
    CT_CHECK(n >= 0, "ct_dataset_subset", "n must be >= 0 (got %d)", n);
    CT_CHECK(n == 0 || indices != NULL, "ct_dataset_subset", "indices is NULL for %d samples", n);
    for (int i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= d->n) {
            ct_set_error(CT_ERR_VALUE, "%s: subset index %d (indices[%d]) is out of range for %d samples", d->source,
                         indices[i], i, d->n);
            return NULL;
        }
    const size_t sample = (size_t)d->channels * (size_t)d->height * (size_t)d->width;
    ct_dataset *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->n = n, s->channels = d->channels, s->height = d->height, s->width = d->width;
    s->classes = d->classes;
    s->skipped = d->skipped;
    memcpy(s->source, d->source, sizeof s->source);
    s->source[sizeof s->source - 1] = '\0';
    /* At least one byte each, so an empty subset still has non-NULL arrays. */
    s->images = malloc(n > 0 ? (size_t)n * sample : 1);
    s->labels = malloc(n > 0 ? (size_t)n * sizeof *s->labels : 1);
    if (!s->images || !s->labels || !copy_class_names(s, d)) goto oom;
    int ok = 1;
    s->file_names = copy_strings(d->file_names, indices, n, &ok);
    s->skipped_files = copy_strings(d->skipped_files, NULL, d->skipped, &ok);
    if (!ok) goto oom;
    if (d->clean_labels && !(s->clean_labels = malloc(n > 0 ? (size_t)n * sizeof *s->clean_labels : 1))) goto oom;
    for (int i = 0; i < n; i++) {
        memcpy(s->images + (size_t)i * sample, d->images + (size_t)indices[i] * sample, sample);
        s->labels[i] = d->labels[indices[i]];
        if (s->clean_labels) s->clean_labels[i] = d->clean_labels[indices[i]];
    }
    return s;
oom:
    ct_dataset_free(s);
    ct_set_error(CT_ERR_MEMORY, "%s: out of memory for a subset of %d samples", d->source, n);
    return NULL;
}

int ct_dataset_split(const ct_dataset *d, double val_fraction, uint64_t seed, ct_dataset **train, ct_dataset **val) {
    CT_CHECK(d != NULL && train != NULL && val != NULL, "ct_dataset_split", "NULL argument");
    *train = *val = NULL;
    if (!(val_fraction > 0 && val_fraction < 1))
        return ct_set_error(CT_ERR_VALUE, "%s: validation fraction %g is not in (0, 1)", d->source, val_fraction);
    int n_val = (int)lround((double)d->n * val_fraction);
    if (n_val < 1 || n_val >= d->n)
        return ct_set_error(CT_ERR_VALUE,
                            "%s: a validation fraction of %g of %d samples leaves %d for validation and %d for "
                            "training; both must be non-empty",
                            d->source, val_fraction, d->n, n_val, d->n - n_val);
    int *perm = malloc((size_t)d->n * sizeof *perm);
    if (!perm) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory for a split of %d samples", d->source, d->n);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    ct_rng_permutation(&rng, perm, d->n);
    *val = ct_dataset_subset(d, perm, n_val);
    if (*val) *train = ct_dataset_subset(d, perm + n_val, d->n - n_val);
    free(perm);
    if (!*val || !*train) {
        ct_dataset_free(*val);
        *val = NULL;
        return CT_ERR_MEMORY; /* the message is ct_dataset_subset's */
    }
    return CT_OK;
}

/* Per channel, the byte sum Σx and the sum of squares Σx² are exact integers: 32-bit partial
 * sums over chunks of 65,536 pixels (255² · 65,536 < 2³²), 64-bit over the dataset.
 * With N pixels and x in bytes: mean = Σx / (255 N), and the population variance
 * (N Σx² − (Σx)²) / (255 N)², whose numerator is exact in 128-bit integers; the only roundings
 * are the final double divisions and the square root. */
void ct_dataset_channel_stats(const ct_dataset *d, float *mean, float *std) {
    CT_CHECK(d != NULL && mean != NULL && std != NULL, "ct_dataset_channel_stats", "NULL argument");
    CT_CHECK(d->n >= 1 && d->channels >= 1 && d->height >= 1 && d->width >= 1 && d->images,
             "ct_dataset_channel_stats", "dataset is empty (n=%d, %dx%dx%d)", d->n, d->channels, d->height,
             d->width);
    const int C = d->channels, n = d->n;
    const size_t plane = (size_t)d->height * (size_t)d->width;
    const size_t chunk = 65536; /* pixels per 32-bit partial sum of squares */
    for (int c = 0; c < C; c++) {
        uint64_t sum = 0, sum_sq = 0;
#pragma omp parallel for reduction(+ : sum, sum_sq) schedule(static)
        for (int i = 0; i < n; i++) {
            const uint8_t *p = d->images + ((size_t)i * C + c) * plane;
            for (size_t start = 0; start < plane; start += chunk) {
                size_t end = start + chunk < plane ? start + chunk : plane;
                uint32_t s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
                for (size_t k = start; k < end; k++) {
                    uint32_t v = p[k];
                    s1 += v;
                    s2 += v * v;
                }
                sum += s1;
                sum_sq += s2;
            }
        }
        const unsigned __int128 N = (unsigned __int128)n * plane;
        const unsigned __int128 num = N * sum_sq - (unsigned __int128)sum * sum; /* >= 0 by Cauchy–Schwarz */
        const double count = (double)N;
        mean[c] = (float)((double)sum / (255.0 * count));
        std[c] = (float)(sqrt((double)num) / (255.0 * count));
    }
}
