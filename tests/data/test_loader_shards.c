/* tests/data/test_loader_shards.c — the loader's shards (.shard of .shards, the data-parallel sampler):
 * the shards of N loaders, put side by side in rank order, are the unsharded loader's batches, row for
 * row and byte for byte (augmentation included), for N = 1, 2, 3 and 6, over two epochs with a kept
 * last batch; and a batch that does not split evenly is refused with a message. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* n images of 1×4×5 whose bytes tell the sample apart; label i. */
static ct_dataset *numbered_dataset(int n) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = 1, d->height = 4, d->width = 5, d->classes = n;
    d->images = malloc((size_t)n * 20);
    d->labels = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 20; k++) d->images[(size_t)i * 20 + k] = (uint8_t)(1 + (k * 11 + i * 7) % 250);
        d->labels[i] = i;
    }
    snprintf(d->source, sizeof d->source, "numbered dataset");
    return d;
}

CT_TEST(data, loader_shards_rebuild_the_global_batches) {
    enum { N_SAMPLES = 66, BATCH = 12, EPOCHS = 2 }; /* 5 full batches and a last one of 6 */
    ct_dataset *d = numbered_dataset(N_SAMPLES);
    const ct_loader_opts base = CT_LOADER(.batch = BATCH, .shuffle = 1, .seed = 7, .flatten = 1, .crop_padding = 1,
                                          .hflip = 1, .cutout = 2);
    const int counts[] = {1, 2, 3, 6};
    for (int c = 0; c < 4; c++) {
        const int N = counts[c];
        ct_loader *whole = ct_loader_new(d, base);
        ct_loader *shard[6];
        for (int r = 0; r < N; r++) {
            ct_loader_opts o = base;
            o.shard = r, o.shards = N;
            shard[r] = ct_loader_new(d, o);
            CHECK(ct_loader_batches_per_epoch(shard[r]) == ct_loader_batches_per_epoch(whole));
        }
        for (int e = 0; e < EPOCHS; e++) {
            int seen[N_SAMPLES] = {0};
            ct_batch g, b;
            while (ct_loader_next(whole, &g)) {
                const int local = g.n / N, row = 20;
                CHECK(local * N == g.n, "global batch of %d over %d shards", g.n, N);
                for (int r = 0; r < N; r++) {
                    CHECK(ct_loader_next(shard[r], &b), "shard %d of %d ended before the global stream", r, N);
                    CHECK(b.n == local && b.index == g.index && b.epoch == g.epoch, "shard %d of %d: %d samples of batch %d",
                          r, N, b.n, b.index);
                    CHECK(!memcmp(b.y.data, g.y.data + r * local, (size_t)local * sizeof(int)),
                          "shard %d of %d, batch %d: not the global batch's labels", r, N, g.index);
                    CHECK(!memcmp(b.x->data, g.x->data + (size_t)r * local * row, (size_t)local * row * sizeof(ct_real)),
                          "shard %d of %d, batch %d: not the global batch's pixels", r, N, g.index);
                    for (int i = 0; i < local; i++) seen[b.y.data[i]]++;
                }
            }
            for (int r = 0; r < N; r++) CHECK(!ct_loader_next(shard[r], &b), "shard %d of %d has more batches", r, N);
            for (int i = 0; i < N_SAMPLES; i++) CHECK(seen[i] == 1, "N = %d, epoch %d: sample %d drawn %d times", N, e, i, seen[i]);
        }
        for (int r = 0; r < N; r++) ct_loader_free(shard[r]);
        ct_loader_free(whole);
    }
    ct_dataset_free(d);
}

static void batch_of_ten_over_three(void *arg) {
    ct_loader_new((ct_dataset *)arg, CT_LOADER(.batch = 10, .shard = 1, .shards = 3));
}
static void tail_of_six_over_four(void *arg) {
    ct_loader_new((ct_dataset *)arg, CT_LOADER(.batch = 12, .shard = 0, .shards = 4)); /* 66 = 5·12 + 6 */
}
static void shard_out_of_range(void *arg) {
    ct_loader_new((ct_dataset *)arg, CT_LOADER(.batch = 12, .shard = 2, .shards = 2));
}

CT_TEST(data, loader_shards_refuse_uneven_batches) {
    ct_dataset *d = numbered_dataset(66);
    char got[512];
    CHECK(ct_test_expect_fatal(batch_of_ten_over_three, d, ".batch 10 (the global batch) does not split over 3 shards", got,
                               sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(tail_of_six_over_four, d, "the last batch of 6 samples does not split over 4 shards", got,
                               sizeof got), "%s", got);
    CHECK(ct_test_expect_fatal(shard_out_of_range, d, ".shard 2 of .shards 2", got, sizeof got), "%s", got);
    /* dropping the last batch makes the uneven tail acceptable */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 12, .shard = 3, .shards = 4, .drop_last = 1));
    ct_batch b;
    int batches = 0;
    while (ct_loader_next(l, &b)) {
        CHECK(b.n == 3);
        batches++;
    }
    CHECK(batches == 5);
    ct_loader_free(l);
    ct_dataset_free(d);
}
