/* tests/data/test_loader_alternating_flip.c — the loader's .alternating_flip (airbench's
 * derandomised flip) and its translation by 2 pixels with reflect padding.
 *
 * The images hold a distinct byte at every (c, y, x), so whether a sample came out flipped (and
 * which window of the padded image it is) is read off its pixels, and each answer is unique. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>

/* n images of C×H×W (C·H·W <= 255): a distinct nonzero byte at every pixel of an image; label i. */
static ct_dataset *distinct_dataset(int n, int C, int H, int W) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = C, d->height = H, d->width = W, d->classes = n;
    d->images = malloc((size_t)n * C * H * W);
    d->labels = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < C * H * W; k++) d->images[(size_t)i * C * H * W + k] = (uint8_t)(1 + (k + 29 * i) % 255);
        d->labels[i] = i;
    }
    snprintf(d->source, sizeof d->source, "distinct dataset");
    return d;
}

/* torch's 'reflect' index (the edge is not repeated): −1 → 1, n → n − 2. */
static int reflect(int i, int n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

/* Does output sample `got` equal image i shifted by (dy, dx) with reflect padding, then mirrored
 * when flip? Exact: without normalisation the loader gives byte / 255 in ct_real. */
static int is_view(const ct_dataset *d, int i, const ct_real *got, int dy, int dx, int flip) {
    const int C = d->channels, H = d->height, W = d->width;
    const uint8_t *img = d->images + (size_t)i * C * H * W;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const int sx = reflect((flip ? W - 1 - x : x) + dx, W), sy = reflect(y + dy, H);
                const ct_real want = (ct_real)img[((size_t)c * H + sy) * W + sx] / (ct_real)255;
                if (got[((size_t)c * H + y) * W + x] != want) return 0;
            }
    return 1;
}

/* Whether the sample at row r of b is image i flipped (1), unflipped (0), or neither (−1). */
static int flipped_state(const ct_dataset *d, const ct_batch *b, int r) {
    const size_t S = (size_t)d->channels * d->height * d->width;
    const int i = b->y.data[r];
    const int plain = is_view(d, i, b->x->data + r * S, 0, 0, 0), mirrored = is_view(d, i, b->x->data + r * S, 0, 0, 1);
    return plain == mirrored ? -1 : mirrored;
}

enum { N_IMAGES = 100, N_EPOCHS = 4 };

/* flips[e][i]: how often image i came out mirrored in epoch e (−1 when a sample was neither the
 * image nor its mirror, or an image was missing or seen twice). */
static void flips_per_epoch(const ct_dataset *d, ct_loader_opts o, int flips[N_EPOCHS][N_IMAGES]) {
    int seen[N_EPOCHS][N_IMAGES];
    memset(seen, 0, sizeof seen);
    memset(flips, 0, sizeof(int) * N_EPOCHS * N_IMAGES);
    ct_loader *l = ct_loader_new(d, o);
    ct_batch b;
    for (int e = 0; e < N_EPOCHS; e++)
        while (ct_loader_next(l, &b))
            for (int r = 0; r < b.n; r++) {
                const int i = b.y.data[r], s = flipped_state(d, &b, r);
                seen[e][i]++;
                flips[e][i] = s < 0 || flips[e][i] < 0 ? -1 : flips[e][i] + s;
            }
    ct_loader_free(l);
    for (int e = 0; e < N_EPOCHS; e++)
        for (int i = 0; i < N_IMAGES; i++)
            if (seen[e][i] != 1) flips[e][i] = -1;
}

CT_TEST(data, loader_alternating_flip_each_image_once_each_way_per_two_epochs) {
    ct_dataset *d = distinct_dataset(N_IMAGES, 2, 3, 5);
    int flips[N_EPOCHS][N_IMAGES];
    flips_per_epoch(d, CT_LOADER(.batch = 16, .seed = 7, .alternating_flip = 1), flips);
    int first = 0;
    for (int i = 0; i < N_IMAGES; i++) {
        for (int e = 0; e < N_EPOCHS; e++)
            CHECK(flips[e][i] == 0 || flips[e][i] == 1, "image %d, epoch %d: every sample is the image or its mirror, "
                  "each image once per epoch (got %d)", i, e, flips[e][i]);
        for (int e = 0; e + 1 < N_EPOCHS; e++)
            CHECK(flips[e][i] + flips[e + 1][i] == 1, "image %d flipped %d times in epochs %d and %d (want exactly once)",
                  i, flips[e][i] + flips[e + 1][i], e, e + 1);
        first += flips[0][i];
    }
    /* the coins are fair: 100 draws of 1/2 land in 30..70 but with probability 6e-5 */
    CHECK(first >= 30 && first <= 70, "%d of %d flipped in epoch 0", first, N_IMAGES);
    ct_test_note("%d of %d images flipped in even epochs", first, N_IMAGES);
    ct_dataset_free(d);
}

CT_TEST(data, loader_alternating_flip_is_a_function_of_the_seed_and_the_image) {
    ct_dataset *d = distinct_dataset(N_IMAGES, 1, 2, 7);
    int a[N_EPOCHS][N_IMAGES], b[N_EPOCHS][N_IMAGES], c[N_EPOCHS][N_IMAGES];
    flips_per_epoch(d, CT_LOADER(.batch = 16, .seed = 42, .alternating_flip = 1), a);
    /* the same seed with another batch size, no shuffle, drop_last off: the same images flipped */
    flips_per_epoch(d, CT_LOADER(.batch = 7, .shuffle = 0, .seed = 42, .alternating_flip = 1), b);
    CHECK(memcmp(a, b, sizeof a) == 0, "the per-image choice depends on the seed and the image only");
    for (int e = 0; e < N_EPOCHS; e++)
        for (int i = 0; i < N_IMAGES; i++) CHECK(a[e][i] >= 0, "epoch %d image %d", e, i);
    /* another seed: other coins */
    flips_per_epoch(d, CT_LOADER(.batch = 16, .seed = 43, .alternating_flip = 1), c);
    int differ = 0;
    for (int i = 0; i < N_IMAGES; i++) differ += a[0][i] != c[0][i];
    CHECK(differ >= 25 && differ <= 75, "seed 43 against 42: %d of %d coins differ", differ, N_IMAGES);
    /* a subset (.indices) keeps each image's coin */
    int idx[30];
    for (int k = 0; k < 30; k++) idx[k] = (k * 37 + 5) % N_IMAGES;
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 8, .seed = 42, .alternating_flip = 1, .indices = idx, .count = 30));
    ct_batch bt;
    int checked = 0;
    for (int e = 0; e < 2; e++)
        while (ct_loader_next(l, &bt))
            for (int r = 0; r < bt.n; r++, checked++)
                CHECK(flipped_state(d, &bt, r) == a[e][bt.y.data[r]], "subset: image %d in epoch %d", bt.y.data[r], e);
    CHECK(checked == 60);
    ct_loader_free(l);
    ct_dataset_free(d);
}

/* The airbench augmentation: translate by up to 2 pixels with reflect padding and alternate the
 * flip. Each sample is exactly one of the 25 windows of its reflect-padded image, mirrored as the
 * epoch's rule says and never the other way. */
CT_TEST(data, loader_alternating_flip_with_reflect_translate_2) {
    ct_dataset *d = distinct_dataset(48, 3, 6, 9);
    int flips[N_EPOCHS][N_IMAGES];
    flips_per_epoch(d, CT_LOADER(.batch = 48, .shuffle = 0, .seed = 3, .alternating_flip = 1), flips);
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 16, .seed = 3, .crop_padding = 2, .pad_mode = CT_PAD_REFLECT,
                                              .alternating_flip = 1));
    const size_t S = 3 * 6 * 9;
    int windows[5][5] = {{0}}, samples = 0;
    ct_batch b;
    for (int e = 0; e < 3; e++)
        while (ct_loader_next(l, &b))
            for (int r = 0; r < b.n; r++, samples++) {
                const int i = b.y.data[r], want = flips[e][i];
                CHECK(want == 0 || want == 1);
                int right = 0, wrong = 0;
                for (int dy = -2; dy <= 2; dy++)
                    for (int dx = -2; dx <= 2; dx++) {
                        const int match = is_view(d, i, b.x->data + r * S, dy, dx, want);
                        right += match;
                        if (match) windows[dy + 2][dx + 2]++;
                        wrong += is_view(d, i, b.x->data + r * S, dy, dx, !want);
                    }
                CHECK(right == 1 && wrong == 0, "epoch %d image %d: %d windows match with flip %d, %d with the other",
                      e, i, right, want, wrong);
            }
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(samples == 144);
    int offsets = 0;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 5; x++) offsets += windows[y][x] > 0;
    CHECK(offsets >= 20, "offsets in −2..2 on both axes: %d of 25 seen in 144 samples", offsets);
}

/* Resume and prefetch: a loader seeked to (epoch, batch), with or without the background thread,
 * gives the batches of one run from the start — odd epochs included. */
CT_TEST(data, loader_alternating_flip_with_seek_and_prefetch) {
    ct_dataset *d = distinct_dataset(50, 3, 4, 6);
    const ct_loader_opts base = CT_LOADER(.batch = 8, .seed = 11, .crop_padding = 2, .pad_mode = CT_PAD_REFLECT,
                                          .alternating_flip = 1);
    const int per_epoch = 7, total = 4 * per_epoch; /* 50 = 6·8 + 2 */
    const size_t S = 3 * 4 * 6;
    ct_real *ref = malloc((size_t)total * 8 * S * sizeof *ref);
    int *ref_n = calloc((size_t)total, sizeof *ref_n);
    ct_loader *l = ct_loader_new(d, base);
    CHECK(ct_loader_batches_per_epoch(l) == per_epoch);
    ct_batch b;
    for (int e = 0, k = 0; e < 4; e++)
        while (ct_loader_next(l, &b)) {
            memcpy(ref + (size_t)k * 8 * S, b.x->data, (size_t)b.n * S * sizeof *ref);
            ref_n[k++] = b.n;
        }
    ct_loader_free(l);
    int positions = 0;
    for (int prefetch = 0; prefetch <= 1; prefetch++) {
        ct_loader_opts o = base;
        o.prefetch = prefetch;
        /* a straight run with this setting, then seeks into odd and even epochs */
        l = ct_loader_new(d, o);
        for (int e = 0, k = 0; e < 4; e++)
            while (ct_loader_next(l, &b)) {
                CHECK(b.n == ref_n[k] && memcmp(b.x->data, ref + (size_t)k * 8 * S, (size_t)b.n * S * sizeof *ref) == 0,
                      "prefetch %d: batch %d of the run", prefetch, k);
                k++;
            }
        const int at[][2] = {{3, 2}, {1, 0}, {2, 6}, {1, 5}, {0, 3}};
        for (size_t s = 0; s < sizeof at / sizeof at[0]; s++) {
            CHECK(ct_loader_seek(l, at[s][0], at[s][1]) == CT_OK);
            CHECK(ct_loader_next(l, &b) && b.epoch == at[s][0] && b.index == at[s][1]);
            const int k = at[s][0] * per_epoch + at[s][1];
            CHECK(b.n == ref_n[k] && memcmp(b.x->data, ref + (size_t)k * 8 * S, (size_t)b.n * S * sizeof *ref) == 0,
                  "prefetch %d: seek to epoch %d batch %d gives that batch of the run", prefetch, at[s][0], at[s][1]);
            positions++;
        }
        ct_loader_free(l);
    }
    CHECK(positions == 10);
    free(ref), free(ref_n);
    ct_dataset_free(d);
}

static void both_flips(void *arg) {
    ct_loader_new((const ct_dataset *)arg, CT_LOADER(.hflip = 1, .alternating_flip = 1));
}

CT_TEST(data, loader_alternating_flip_refuses_hflip_too) {
    ct_dataset *d = distinct_dataset(4, 1, 2, 2);
    char got[512];
    const int stopped = ct_test_expect_fatal(both_flips, d, ".hflip and .alternating_flip exclude each other", got,
                                             sizeof got);
    ct_dataset_free(d);
    CHECK(stopped && strstr(got, "ct_loader_new"), "stderr was: %s", got);
}
