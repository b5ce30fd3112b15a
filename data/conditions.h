/* data/conditions.h — the data conditions of loss studies, seeded and reproducible: long-tailed
 * subsets (CIFAR-10-LT style) and label noise (symmetric, or class-pair flips), on any dataset.
 * The test set stays balanced and clean: apply these to the training set only. */
#ifndef CTAPE_DATA_CONDITIONS_H
#define CTAPE_DATA_CONDITIONS_H

#include "data.h"

/* Long-tailed class counts (Cui et al. 2019; Cao et al. 2019, LDAM), class 0 the most frequent:
 *   exponential  n_c = ⌊n_max · ratio^(−c/(C−1))⌋
 *   step         n_c = n_max for the first ⌊C/2⌋ classes, ⌊n_max / ratio⌋ for the rest
 * CIFAR-10 with n_max 5000: ratio 100 keeps 12,406 images, ratio 10 keeps 20,431. */
typedef enum { CT_IMBALANCE_EXP = 0, CT_IMBALANCE_STEP = 1 } ct_imbalance;
void ct_long_tail_counts(int classes, int n_max, ct_imbalance profile, double ratio, int *counts);

/* A long-tailed subset of d: n_max is the size of d's smallest class, and each class keeps
 * counts[c] of its samples, drawn by a seeded shuffle, in d's order. NULL (ct_last_error) for a
 * ratio below 1, a class without samples, or no memory. */
ct_dataset *ct_dataset_long_tail(const ct_dataset *d, ct_imbalance profile, double ratio, uint64_t seed);

/* Samples per class (d->classes counts). */
void ct_dataset_class_counts(const ct_dataset *d, long *counts);

/* Label noise, in place, exactly round(rate · n_c) samples of each affected class (chosen by a
 * seeded shuffle), read from the clean labels, which d->clean_labels keeps (set on the first call;
 * a second call starts again from them):
 *   symmetric   every class; a flipped label becomes one of the other C − 1 classes, uniformly
 *   asymmetric  only the pairs given, from → to (Patrini et al. 2017): ct_cifar10_flips (truck →
 *               automobile, bird → airplane, deer → horse, cat ↔ dog) or ct_mnist_flips (2 → 7,
 *               3 → 8, 5 ↔ 6, 7 → 1)
 * CT_OK, or CT_ERR_VALUE for a rate outside [0, 1] or a class outside [0, C), CT_ERR_MEMORY. */
typedef enum { CT_NOISE_SYMMETRIC = 0, CT_NOISE_ASYMMETRIC = 1 } ct_noise;
typedef struct {
    int from, to;
} ct_label_flip;
extern const ct_label_flip ct_cifar10_flips[5];
extern const ct_label_flip ct_mnist_flips[5];
int ct_dataset_label_noise(ct_dataset *d, ct_noise kind, double rate, const ct_label_flip *flips, int n_flips,
                           uint64_t seed);

#ifndef CT_BUILDING_LIBRARY
#define ct_dataset_long_tail(...) CT_SITE_CALL_CLEARING(ct_dataset_long_tail, __VA_ARGS__)
#define ct_dataset_label_noise(...) CT_SITE_CALL_CLEARING(ct_dataset_label_noise, __VA_ARGS__)
#endif

#endif
