/* data/conditions.c — long-tailed subsets and label noise (data/conditions.h). */
#define CT_BUILDING_LIBRARY
#include "conditions.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const ct_label_flip ct_cifar10_flips[5] = {{9, 1}, {2, 0}, {4, 7}, {3, 5}, {5, 3}};
const ct_label_flip ct_mnist_flips[5] = {{2, 7}, {3, 8}, {5, 6}, {6, 5}, {7, 1}};

void ct_long_tail_counts(int classes, int n_max, ct_imbalance profile, double ratio, int *counts) {
    CT_CHECK(classes >= 1 && n_max >= 0 && ratio >= 1 && counts, "ct_long_tail_counts",
             "classes %d (>= 1), n_max %d (>= 0), ratio %g (>= 1)", classes, n_max, ratio);
    for (int c = 0; c < classes; c++) {
        if (profile == CT_IMBALANCE_STEP) counts[c] = c < classes / 2 ? n_max : (int)(n_max / ratio);
        else counts[c] = classes == 1 ? n_max : (int)(n_max * pow(1 / ratio, c / (classes - 1.0)));
    }
}

void ct_dataset_class_counts(const ct_dataset *d, long *counts) {
    CT_CHECK(d && counts, "ct_dataset_class_counts", "dataset or counts is NULL");
    memset(counts, 0, (size_t)d->classes * sizeof *counts);
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] >= 0 && d->labels[i] < d->classes) counts[d->labels[i]]++;
}

/* The samples of each class, in d's order: members[start[c] .. start[c + 1]) (labels outside
 * [0, C) are left out). NULL when out of memory. */
static int *by_class(const int *labels, int n, int C, int *start) {
    int *members = malloc((size_t)(n ? n : 1) * sizeof *members);
    if (!members) return NULL;
    memset(start, 0, (size_t)(C + 1) * sizeof *start);
    for (int i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < C) start[labels[i] + 1]++;
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    int *fill = malloc((size_t)C * sizeof *fill);
    if (!fill) return free(members), NULL;
    memcpy(fill, start, (size_t)C * sizeof *fill);
    for (int i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < C) members[fill[labels[i]]++] = i;
    free(fill);
    return members;
}

/* Shuffles a[0..n) with the RNG (Fisher–Yates). */
static void shuffle(int *a, int n, ct_rng *rng) {
    for (int i = n - 1; i > 0; i--) {
        const int j = (int)ct_rng_int(rng, 0, i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

static int ascending(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

ct_dataset *ct_dataset_long_tail(const ct_dataset *d, ct_imbalance profile, double ratio, uint64_t seed) {
    CT_CHECK(d, "ct_dataset_long_tail", "dataset is NULL");
    if (!(ratio >= 1) || !isfinite(ratio) || (profile != CT_IMBALANCE_EXP && profile != CT_IMBALANCE_STEP)) {
        ct_set_error(CT_ERR_VALUE, "%s: long tail: imbalance ratio %g (>= 1) or profile %d (exp or step)", d->source,
                     ratio, (int)profile);
        return NULL;
    }
    const int C = d->classes;
    int *start = malloc((size_t)(C + 1) * sizeof *start), *counts = malloc((size_t)C * sizeof *counts);
    int *members = start ? by_class(d->labels, d->n, C, start) : NULL;
    ct_dataset *out = NULL;
    if (!start || !counts || !members) {
        ct_set_error(CT_ERR_MEMORY, "%s: long tail: out of memory", d->source);
        goto done;
    }
    int n_max = d->n;
    for (int c = 0; c < C; c++) {
        if (start[c + 1] == start[c]) {
            ct_set_error(CT_ERR_VALUE, "%s: long tail: class %d has no samples", d->source, c);
            goto done;
        }
        n_max = start[c + 1] - start[c] < n_max ? start[c + 1] - start[c] : n_max;
    }
    ct_long_tail_counts(C, n_max, profile, ratio, counts);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    int kept = 0;
    for (int c = 0; c < C; c++) { /* each class's chosen samples moved to the front of the list */
        shuffle(members + start[c], start[c + 1] - start[c], &rng);
        memmove(members + kept, members + start[c], (size_t)counts[c] * sizeof *members);
        kept += counts[c];
    }
    qsort(members, (size_t)kept, sizeof *members, ascending);
    out = ct_dataset_subset(d, members, kept);
done:
    free(start), free(counts), free(members);
    return out;
}

int ct_dataset_label_noise(ct_dataset *d, ct_noise kind, double rate, const ct_label_flip *flips, int n_flips,
                           uint64_t seed) {
    CT_CHECK(d, "ct_dataset_label_noise", "dataset is NULL");
    const int C = d->classes;
    if (!(rate >= 0 && rate <= 1))
        return ct_set_error(CT_ERR_VALUE, "%s: label noise rate %g is outside [0, 1]", d->source, rate);
    if (kind == CT_NOISE_SYMMETRIC && C < 2)
        return ct_set_error(CT_ERR_VALUE, "%s: symmetric label noise needs 2 classes or more", d->source);
    if (kind == CT_NOISE_ASYMMETRIC && (!flips || n_flips < 1))
        return ct_set_error(CT_ERR_VALUE, "%s: asymmetric label noise needs class pairs (ct_cifar10_flips, ...)", d->source);
    for (int k = 0; kind == CT_NOISE_ASYMMETRIC && k < n_flips; k++)
        if (flips[k].from < 0 || flips[k].from >= C || flips[k].to < 0 || flips[k].to >= C)
            return ct_set_error(CT_ERR_VALUE, "%s: label flip %d -> %d is outside the %d classes", d->source,
                                flips[k].from, flips[k].to, C);
    if (!d->clean_labels) {
        d->clean_labels = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->clean_labels);
        if (!d->clean_labels) return ct_set_error(CT_ERR_MEMORY, "%s: label noise: out of memory", d->source);
        memcpy(d->clean_labels, d->labels, (size_t)d->n * sizeof *d->labels);
    }
    int *start = malloc((size_t)(C + 1) * sizeof *start);
    int *members = start ? by_class(d->clean_labels, d->n, C, start) : NULL;
    if (!members) {
        free(start);
        return ct_set_error(CT_ERR_MEMORY, "%s: label noise: out of memory", d->source);
    }
    memcpy(d->labels, d->clean_labels, (size_t)d->n * sizeof *d->labels);
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    const int rounds = kind == CT_NOISE_SYMMETRIC ? C : n_flips;
    for (int k = 0; k < rounds; k++) {
        const int c = kind == CT_NOISE_SYMMETRIC ? k : flips[k].from, n_c = start[c + 1] - start[c];
        int *list = members + start[c];
        shuffle(list, n_c, &rng);
        const int flipped = (int)lround(rate * n_c);
        for (int i = 0; i < flipped; i++) {
            int to = kind == CT_NOISE_SYMMETRIC ? (int)ct_rng_int(&rng, 0, C - 1) : flips[k].to;
            if (kind == CT_NOISE_SYMMETRIC && to >= c) to++; /* one of the other classes */
            d->labels[list[i]] = to;
        }
    }
    free(start), free(members);
    return CT_OK;
}
