/* tests/data/test_data_conditions.c — long-tailed subsets and label noise (data/conditions.h): the
 * published CIFAR-10-LT sizes, exact per-class counts, samples copied whole in their order, seeds,
 * the flips of each kind, the clean labels kept, bad values as errors. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* C classes × per samples, class = i % C, each 2×2 image holding its index in its first two bytes. */
static ct_dataset *toy(int C, int per) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = C * per, d->channels = 1, d->height = 2, d->width = 2, d->classes = C;
    d->images = calloc((size_t)d->n, 4);
    d->labels = malloc((size_t)d->n * sizeof *d->labels);
    for (int i = 0; i < d->n; i++) d->labels[i] = i % C, d->images[4 * i] = (uint8_t)(i & 255), d->images[4 * i + 1] = (uint8_t)(i >> 8);
    snprintf(d->source, sizeof d->source, "toy");
    return d;
}

static int original_index(const ct_dataset *d, int i) { return d->images[4 * i] | d->images[4 * i + 1] << 8; }

CT_TEST(data_conditions, cifar10_lt_counts_as_published) {
    int counts[10];
    const int r100[10] = {5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50};
    const int r10[10] = {5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500};
    ct_long_tail_counts(10, 5000, CT_IMBALANCE_EXP, 100, counts);
    int total = 0;
    for (int c = 0; c < 10; c++) {
        CHECK(counts[c] == r100[c], "ratio 100, class %d: %d, want %d", c, counts[c], r100[c]);
        total += counts[c];
    }
    CHECK(total == 12406, "CIFAR-10-LT ratio 100 keeps %d images, want 12,406", total);
    ct_long_tail_counts(10, 5000, CT_IMBALANCE_EXP, 10, counts);
    total = 0;
    for (int c = 0; c < 10; c++) {
        CHECK(counts[c] == r10[c], "ratio 10, class %d: %d, want %d", c, counts[c], r10[c]);
        total += counts[c];
    }
    CHECK(total == 20431, "ratio 10 keeps %d, want 20,431", total);
    ct_long_tail_counts(10, 5000, CT_IMBALANCE_STEP, 100, counts);
    CHECK(counts[4] == 5000 && counts[5] == 50 && counts[9] == 50, "step profile: %d %d %d", counts[4], counts[5], counts[9]);
}

CT_TEST(data_conditions, long_tail_subset_keeps_whole_samples_in_order) {
    ct_dataset *d = toy(5, 80);
    ct_dataset *a = ct_dataset_long_tail(d, CT_IMBALANCE_EXP, 10, 1), *b = ct_dataset_long_tail(d, CT_IMBALANCE_EXP, 10, 1),
               *c = ct_dataset_long_tail(d, CT_IMBALANCE_EXP, 10, 2);
    CHECK(a && b && c, "%s", ct_last_error());
    int want[5];
    long got[5];
    ct_long_tail_counts(5, 80, CT_IMBALANCE_EXP, 10, want);
    ct_dataset_class_counts(a, got);
    for (int k = 0; k < 5; k++) CHECK(got[k] == want[k], "class %d: %ld samples, want %d", k, got[k], want[k]);
    for (int i = 0; i < a->n; i++) {
        const int at = original_index(a, i);
        CHECK(a->labels[i] == d->labels[at], "sample %d came from %d with another label", i, at);
        CHECK(i == 0 || at > original_index(a, i - 1), "the subset is not in the dataset's order at %d", i);
    }
    CHECK(a->n == b->n && !memcmp(a->images, b->images, (size_t)a->n * 4), "the same seed gave another subset");
    CHECK(memcmp(a->images, c->images, (size_t)a->n * 4) != 0, "another seed gave the same subset");
    ct_dataset_free(a), ct_dataset_free(b), ct_dataset_free(c);
    CHECK(ct_dataset_long_tail(d, CT_IMBALANCE_EXP, 0.5, 1) == NULL && strstr(ct_last_error(), "ratio 0.5"),
          "%s", ct_last_error());
    d->labels[0] = 1, d->labels[5] = 1; /* class 0 still has samples; make class 4 empty */
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] == 4) d->labels[i] = 3;
    CHECK(ct_dataset_long_tail(d, CT_IMBALANCE_EXP, 10, 1) == NULL && strstr(ct_last_error(), "class 4 has no samples"),
          "%s", ct_last_error());
    ct_dataset_free(d);
}

CT_TEST(data_conditions, symmetric_noise_flips_exactly_the_rate_to_other_classes) {
    ct_dataset *d = toy(10, 50);
    CHECK(ct_dataset_label_noise(d, CT_NOISE_SYMMETRIC, 0.4, NULL, 0, 3) == CT_OK, "%s", ct_last_error());
    CHECK(d->clean_labels != NULL, "clean labels not kept");
    long flipped[10] = {0}, landed[10] = {0};
    for (int i = 0; i < d->n; i++) {
        CHECK(d->clean_labels[i] == i % 10, "clean label %d changed", i);
        if (d->labels[i] != d->clean_labels[i]) flipped[d->clean_labels[i]]++, landed[d->labels[i]]++;
    }
    for (int c = 0; c < 10; c++) CHECK(flipped[c] == 20, "class %d: %ld flipped, want 20 (0.4 of 50)", c, flipped[c]);
    long spread = 0;
    for (int c = 0; c < 10; c++) spread += landed[c] > 0;
    CHECK(spread == 10, "flipped labels reached only %ld classes", spread);
    /* a second call starts from the clean labels: rate 0 restores them */
    CHECK(ct_dataset_label_noise(d, CT_NOISE_SYMMETRIC, 0, NULL, 0, 3) == CT_OK, "%s", ct_last_error());
    CHECK(!memcmp(d->labels, d->clean_labels, (size_t)d->n * sizeof(int)), "rate 0 did not restore the labels");
    CHECK(ct_dataset_label_noise(d, CT_NOISE_SYMMETRIC, 1.5, NULL, 0, 3) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "rate 1.5 is outside [0, 1]"),
          "%s", ct_last_error());
    /* the clean labels follow a subset */
    CHECK(ct_dataset_label_noise(d, CT_NOISE_SYMMETRIC, 0.2, NULL, 0, 4) == CT_OK, "%s", ct_last_error());
    const int pick[3] = {7, 3, 499};
    ct_dataset *s = ct_dataset_subset(d, pick, 3);
    CHECK(s && s->clean_labels && s->clean_labels[0] == 7 && s->clean_labels[2] == 9 && s->labels[1] == d->labels[3],
          "subset lost the clean labels");
    ct_dataset_free(s);
    ct_dataset_free(d);
}

CT_TEST(data_conditions, asymmetric_noise_follows_the_class_pairs) {
    ct_dataset *d = toy(10, 40);
    CHECK(ct_dataset_label_noise(d, CT_NOISE_ASYMMETRIC, 0.25, ct_cifar10_flips, 5, 9) == CT_OK, "%s", ct_last_error());
    long moved[10][10] = {{0}};
    for (int i = 0; i < d->n; i++) moved[d->clean_labels[i]][d->labels[i]] += d->labels[i] != d->clean_labels[i];
    /* truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog: 10 each (0.25 of 40) */
    CHECK(moved[9][1] == 10 && moved[2][0] == 10 && moved[4][7] == 10 && moved[3][5] == 10 && moved[5][3] == 10,
          "flips %ld %ld %ld %ld %ld", moved[9][1], moved[2][0], moved[4][7], moved[3][5], moved[5][3]);
    long total = 0;
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++) total += moved[a][b];
    CHECK(total == 50, "%ld labels moved, want 50 (five pairs of 10)", total);
    const ct_label_flip bad[1] = {{3, 12}};
    CHECK(ct_dataset_label_noise(d, CT_NOISE_ASYMMETRIC, 0.25, bad, 1, 9) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "3 -> 12 is outside the 10 classes"),
          "%s", ct_last_error());
    ct_dataset_free(d);
}

/* The whole official training set, as the papers build CIFAR-10-LT from it. */
CT_TEST(data_conditions, cifar10_lt_from_the_official_set) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", shared);
    ct_dataset *train = ct_cifar10_load(dir, "train");
    if (!train) CT_SKIP("the full CIFAR-10 is not in %s: %s", dir, ct_last_error());
    ct_dataset *lt = ct_dataset_long_tail(train, CT_IMBALANCE_EXP, 100, 0);
    CHECK(lt && lt->n == 12406, "CIFAR-10-LT (ratio 100) has %d images, want 12,406", lt ? lt->n : -1);
    long counts[10];
    ct_dataset_class_counts(lt, counts);
    CHECK(counts[0] == 5000 && counts[9] == 50, "head %ld, tail %ld", counts[0], counts[9]);
    ct_dataset_free(lt);
    ct_dataset_free(train);
}
