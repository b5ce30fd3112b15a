/* tests/data/test_loader_views.c — the loader's two-view batches (SupCon) and class-balanced sampling. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* n 3×8×8 images whose bytes encode their index, label = 0 for the first n0 samples, else 1. */
static ct_dataset *toy(int n, int n0) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 3, d->height = 8, d->width = 8, d->classes = 2;
    d->images = malloc((size_t)n * 192);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 192; k++) d->images[(size_t)i * 192 + k] = (uint8_t)((i * 7 + k * 13) & 255);
        d->labels[i] = i >= n0;
    }
    snprintf(d->source, sizeof d->source, "toy");
    return d;
}

CT_TEST(loader_views, two_views_are_sample_major_and_view_0_is_the_plain_sample) {
    ct_dataset *d = toy(40, 20);
    ct_loader *one = ct_loader_new(d, CT_LOADER(.batch = 16, .seed = 5, .crop_padding = 2, .hflip = 1, .cutout = 3));
    ct_loader *two = ct_loader_new(d, CT_LOADER(.batch = 16, .seed = 5, .crop_padding = 2, .hflip = 1, .cutout = 3, .views = 2));
    ct_loader *plain = ct_loader_new(d, CT_LOADER(.batch = 16, .seed = 5, .views = 2));
    ct_batch a, b, p;
    int batches = 0, differ = 0;
    while (ct_loader_next(one, &a)) {
        CHECK(ct_loader_next(two, &b) && ct_loader_next(plain, &p), "the two-view loader ended early");
        CHECK(b.x->shape[0] == 2 * a.n && b.y.n == a.n && b.n == a.n, "two views: x %s, %d labels for %d samples",
              ct_shp(b.x), b.y.n, a.n);
        const size_t S = 192;
        for (int i = 0; i < a.n; i++) {
            CHECK(b.y.data[i] == a.y.data[i], "label %d differs", i);
            CHECK(!memcmp(b.x->data + (size_t)(2 * i) * S, a.x->data + (size_t)i * S, S * sizeof(ct_real)),
                  "batch %d: view 0 of sample %d is not the one-view sample", batches, i);
            differ += memcmp(b.x->data + (size_t)(2 * i + 1) * S, b.x->data + (size_t)(2 * i) * S, S * sizeof(ct_real)) != 0;
            /* without augmentation both views are the same image */
            CHECK(!memcmp(p.x->data + (size_t)(2 * i + 1) * S, p.x->data + (size_t)(2 * i) * S, S * sizeof(ct_real)),
                  "without augmentation the views differ");
        }
        batches++;
    }
    CHECK(batches == 3 && !ct_loader_next(two, &b), "epoch lengths differ");
    CHECK(differ > 30, "the second view is augmented apart from the first in only %d of 40 samples", differ);
    ct_loader_free(one), ct_loader_free(two), ct_loader_free(plain);
    ct_dataset_free(d);
}

CT_TEST(loader_views, balanced_sampling_draws_classes_evenly) {
    ct_dataset *d = toy(1000, 900); /* 900 of class 0, 100 of class 1 */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 100, .seed = 3, .balanced = 1));
    ct_batch b;
    long seen[2] = {0}, total = 0;
    for (int epoch = 0; epoch < 10; epoch++) {
        long in_epoch = 0;
        while (ct_loader_next(l, &b)) {
            for (int i = 0; i < b.n; i++) seen[b.y.data[i]]++;
            in_epoch += b.n;
        }
        CHECK(in_epoch == 1000, "epoch %d drew %ld samples, want 1000", epoch, in_epoch);
        total += in_epoch;
    }
    const double share = (double)seen[1] / (double)total;
    CHECK(share > 0.47 && share < 0.53, "class 1 (10%% of the data) drew %.3f of the samples, want about 0.5", share);
    ct_loader_free(l);
    /* the same seed draws the same samples; the subset given by .indices is respected */
    const int pick[4] = {1, 2, 950, 951};
    ct_loader *x = ct_loader_new(d, CT_LOADER(.batch = 4, .seed = 8, .balanced = 1, .indices = pick, .count = 4));
    ct_loader *y = ct_loader_new(d, CT_LOADER(.batch = 4, .seed = 8, .balanced = 1, .indices = pick, .count = 4));
    for (int epoch = 0; epoch < 20; epoch++) {
        ct_batch bx, by;
        CHECK(ct_loader_next(x, &bx) && ct_loader_next(y, &by), "no batch");
        CHECK(!memcmp(bx.x->data, by.x->data, 4 * 192 * sizeof(ct_real)), "the same seed gave other samples");
        for (int i = 0; i < 4; i++) {
            int found = 0;
            for (int k = 0; k < 4; k++)
                found |= lround(bx.x->data[(size_t)i * 192] * 255) == d->images[(size_t)pick[k] * 192] &&
                         lround(bx.x->data[(size_t)i * 192 + 1] * 255) == d->images[(size_t)pick[k] * 192 + 1];
            CHECK(found, "a sample outside .indices was drawn");
        }
        CHECK(!ct_loader_next(x, &bx) && !ct_loader_next(y, &by), "epoch end");
    }
    ct_loader_free(x), ct_loader_free(y);
    ct_dataset_free(d);
}
