/* tests/data/test_loader.c — the loader's augmentation, subsets, prefetch, and the dataset utilities
 * (subset, split, channel stats).
 *
 * The transforms are checked against a reference written here the plain way (pad the image
 * into a bigger array, cut the window, mirror by index, normalise in double, zero a square).
 * The loader's random choices are recovered from its output: the test images hold a distinct
 * byte at every (c, y, x), never 0, so exactly one choice of (crop offset, flip, cutout centre)
 * reproduces a sample — the test tries them all and demands exactly one match, then every
 * pixel of the sample equals the reference for that choice. */
#include "../test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- test data --------------------------------------------------------------------------- */

/* n images of C×H×W (C·H·W <= 255): pixel (i, c, y, x) = 1 + ((c·H + y)·W + x + 37·i) mod 255,
 * distinct within an image and never 0; label i (the sample's own index). */
static uint8_t position_byte(int i, int c, int y, int x, int H, int W) {
    return (uint8_t)(1 + ((c * H + y) * W + x + 37 * i) % 255);
}

static ct_dataset *position_dataset(int n, int C, int H, int W) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = C, d->height = H, d->width = W, d->classes = n;
    d->images = malloc((size_t)n * C * H * W);
    d->labels = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    d->images[(((size_t)i * C + c) * H + y) * W + x] = position_byte(i, c, y, x, H, W);
        d->labels[i] = i;
    }
    snprintf(d->source, sizeof d->source, "position dataset");
    return d;
}

static ct_dataset *random_dataset(int n, int C, int H, int W, int classes, uint64_t seed) {
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->channels = C, d->height = H, d->width = W, d->classes = classes;
    size_t bytes = (size_t)n * C * H * W;
    d->images = malloc(bytes);
    d->labels = malloc((size_t)n * sizeof(int));
    ct_rng r;
    ct_rng_seed(&r, seed);
    for (size_t k = 0; k < bytes; k++) d->images[k] = (uint8_t)(ct_rng_u64(&r) >> 56);
    for (int i = 0; i < n; i++) d->labels[i] = (int)ct_rng_int(&r, 0, classes);
    snprintf(d->source, sizeof d->source, "random dataset");
    return d;
}

/* ---- the reference transform ------------------------------------------------------------- */

typedef struct {
    int oy, ox;  /* window offset in the padded image, 0..2p */
    int flip;
    int cy, cx;  /* cutout centre */
} choice;

/* Sample i of d through the transforms of o with the choices ch, in double, into out (C·H·W). */
static void reference_sample(const ct_dataset *d, int i, const ct_loader_opts *o, choice ch, double *out) {
    const int C = d->channels, H = d->height, W = d->width, p = o->crop_padding;
    const int PH = H + 2 * p, PW = W + 2 * p;
    double *padded = malloc((size_t)PH * PW * sizeof(double));
    for (int c = 0; c < C; c++) {
        const uint8_t *img = d->images + ((size_t)i * C + c) * H * W;
        /* 1. ToTensor. Without normalisation the exact float value the loader must give. */
        /* 2. The padded image: zeros, or the interior then mirrored bands (rows first, then
         *    columns of the full padded height), the mirror not repeating the edge. */
        for (int k = 0; k < PH * PW; k++) padded[k] = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                padded[(y + p) * PW + (x + p)] = o->normalize ? img[y * W + x] / 255.0
                                                              : (double)((ct_real)img[y * W + x] / (ct_real)255);
        if (o->pad_mode == CT_PAD_REFLECT) {
            for (int k = 1; k <= p; k++)
                for (int x = p; x < p + W; x++) {
                    padded[(p - k) * PW + x] = padded[(p + k) * PW + x];                 /* above row 0 */
                    padded[(p + H - 1 + k) * PW + x] = padded[(p + H - 1 - k) * PW + x]; /* below row H−1 */
                }
            for (int y = 0; y < PH; y++)
                for (int k = 1; k <= p; k++) {
                    padded[y * PW + (p - k)] = padded[y * PW + (p + k)];
                    padded[y * PW + (p + W - 1 + k)] = padded[y * PW + (p + W - 1 - k)];
                }
        }
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                /* 3. crop, 4. flip: output column x shows window column W − 1 − x. */
                int wx = ch.flip ? W - 1 - x : x;
                double v = padded[(y + ch.oy) * PW + (wx + ch.ox)];
                /* 5. Normalize. */
                if (o->normalize) v = (v - o->mean[c]) / o->std[c];
                out[((size_t)c * H + y) * W + x] = v;
            }
    }
    /* 6. Cutout: side s around the centre, clipped. */
    int s = o->cutout;
    for (int c = 0; c < C && s > 0; c++)
        for (int y = ch.cy - s / 2; y < ch.cy - s / 2 + s; y++)
            for (int x = ch.cx - s / 2; x < ch.cx - s / 2 + s; x++)
                if (y >= 0 && y < H && x >= 0 && x < W) out[((size_t)c * H + y) * W + x] = 0;
    free(padded);
}

/* Exact without normalisation (ToTensor's byte / 255); a few rounding steps of ct_real with it. */
static int sample_matches(const ct_real *got, const double *want, size_t n, int normalize) {
    for (size_t k = 0; k < n; k++) {
        double tol = normalize ? 8 * CT_REAL_EPS * (1 + fabs(want[k])) : 0;
        if (!(fabs((double)got[k] - want[k]) <= tol)) return 0;
    }
    return 1;
}

/* Tries every choice the options allow for output row `got` of sample i; returns how many
 * reproduce it exactly and the (last) one that did in *found. The reference without cutout is
 * made once per (crop, flip); each cutout centre then compares against it with its square
 * zeroed (step 6 of reference_sample, applied on the fly). */
static int recover_choices(const ct_dataset *d, int i, const ct_loader_opts *o, const ct_real *got, choice *found) {
    const int C = d->channels, H = d->height, W = d->width, p = o->crop_padding, s = o->cutout;
    const size_t S = (size_t)C * H * W;
    double *want = malloc(S * sizeof(double));
    double *cut = malloc(S * sizeof(double));
    ct_loader_opts no_cutout = *o;
    no_cutout.cutout = 0;
    int matches = 0;
    for (int oy = 0; oy <= 2 * p; oy++)
        for (int ox = 0; ox <= 2 * p; ox++)
            for (int flip = 0; flip <= (o->hflip ? 1 : 0); flip++) {
                choice ch = {oy, ox, flip, 0, 0};
                reference_sample(d, i, &no_cutout, ch, want);
                if (!s) {
                    if (sample_matches(got, want, S, o->normalize)) matches++, *found = ch;
                    continue;
                }
                for (ch.cy = 0; ch.cy < H; ch.cy++)
                    for (ch.cx = 0; ch.cx < W; ch.cx++) {
                        memcpy(cut, want, S * sizeof(double));
                        for (int c = 0; c < C; c++)
                            for (int y = ch.cy - s / 2; y < ch.cy - s / 2 + s; y++)
                                for (int x = ch.cx - s / 2; x < ch.cx - s / 2 + s; x++)
                                    if (y >= 0 && y < H && x >= 0 && x < W) cut[((size_t)c * H + y) * W + x] = 0;
                        if (sample_matches(got, cut, S, o->normalize)) matches++, *found = ch;
                    }
            }
    free(want);
    free(cut);
    return matches;
}

/* Runs `epochs` epochs and checks every sample against the reference. Returns 1 when all match;
 * counts flips and crop offsets (when the arrays are given; offsets indexed 0..2p). */
typedef struct {
    int samples, flips;
    int oy_hist[16], ox_hist[16];
    int unique_failures;  /* samples for which not exactly one choice matched */
    int no_match;         /* samples no choice reproduces */
    char first_failure[200];
} recovery;

static void check_epochs(const ct_dataset *d, ct_loader_opts o, int epochs, recovery *rec) {
    memset(rec, 0, sizeof *rec);
    ct_loader *l = ct_loader_new(d, o);
    const size_t S = (size_t)d->channels * d->height * d->width;
    ct_batch b;
    for (int e = 0; e < epochs; e++)
        while (ct_loader_next(l, &b))
            for (int r = 0; r < b.n; r++) {
                choice ch = {0};
                int m = recover_choices(d, b.y.data[r], &o, b.x->data + (size_t)r * S, &ch);
                rec->samples++;
                rec->no_match += m == 0;
                if (m != 1) {
                    if (!rec->unique_failures++)
                        snprintf(rec->first_failure, sizeof rec->first_failure,
                                 "epoch %d batch %d row %d (sample %d): %d choices reproduce it", b.epoch, b.index, r,
                                 b.y.data[r], m);
                    continue;
                }
                rec->flips += ch.flip;
                if (ch.oy < 16 && ch.ox < 16) rec->oy_hist[ch.oy]++, rec->ox_hist[ch.ox]++;
            }
    ct_loader_free(l);
}

/* ---- transforms against the reference ---------------------------------------------------- */

CT_TEST(data, loader_crop_zero_padding_matches_reference) {
    ct_dataset *d = position_dataset(40, 3, 7, 9);
    recovery rec;
    check_epochs(d, CT_LOADER(.batch = 16, .seed = 11, .crop_padding = 2), 2, &rec);
    CHECK(rec.samples == 80 && rec.unique_failures == 0, "%s", rec.first_failure);
    int offsets_seen = 0;
    for (int k = 0; k < 5; k++) offsets_seen += rec.oy_hist[k] > 0 && rec.ox_hist[k] > 0;
    CHECK(offsets_seen >= 3, "crop offsets vary (%d of 5 seen on both axes)", offsets_seen);
    /* Padding wider than the image: zero padding allows it. Windows of pure padding happen, so
     * several offsets can explain a sample; one must. */
    check_epochs(d, CT_LOADER(.batch = 16, .seed = 12, .crop_padding = 8, .flatten = 1), 1, &rec);
    ct_dataset_free(d);
    CHECK(rec.no_match == 0, "padding 8 on 7x9: %s", rec.first_failure);
}

CT_TEST(data, loader_hflip_mirrors_rows) {
    ct_dataset *d = position_dataset(64, 2, 5, 6);
    recovery rec;
    check_epochs(d, CT_LOADER(.batch = 10, .seed = 3, .hflip = 1), 2, &rec);
    ct_dataset_free(d);
    CHECK(rec.samples == 128 && rec.unique_failures == 0, "%s", rec.first_failure);
    CHECK(rec.flips > 20 && rec.flips < 108, "%d of 128 flipped", rec.flips);
}

CT_TEST(data, loader_reflect_padding_is_torch_reflect) {
    /* torch's 'reflect' pads [1 2 3 4 5] by 2 to [3 2 1 2 3 4 5 4 3]: the edge is not repeated
     * (padded index −1 is source 1). A one-row-per-channel check against that literal: */
    ct_dataset *d = calloc(1, sizeof *d);
    d->n = 1, d->channels = 1, d->height = 5, d->width = 5, d->classes = 1;
    d->images = malloc(25);
    d->labels = calloc(1, sizeof(int));
    for (int k = 0; k < 25; k++) d->images[k] = (uint8_t)(k + 1); /* rows [1..5], [6..10], ... */
    const int padded_row0[9] = {3, 2, 1, 2, 3, 4, 5, 4, 3};
    const int padded_rows[9] = {2, 1, 0, 1, 2, 3, 4, 3, 2}; /* padded row -> source row */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 1, .seed = 5, .crop_padding = 2, .pad_mode = CT_PAD_REFLECT));
    int windows_ok = 1, windows_seen = 0, seen[5][5] = {{0}};
    ct_batch b;
    for (int step = 0; step < 400; step++) {
        if (!ct_loader_next(l, &b)) continue;
        /* Which window? Try all 25 against the literal padded image. */
        int found = 0;
        for (int oy = 0; oy < 5; oy++)
            for (int ox = 0; ox < 5; ox++) {
                int same = 1;
                for (int y = 0; y < 5; y++)
                    for (int x = 0; x < 5; x++) {
                        int v = padded_row0[ox + x] + 5 * padded_rows[oy + y];
                        same &= b.x->data[y * 5 + x] == (ct_real)v / (ct_real)255;
                    }
                if (same) found++, seen[oy][ox] = 1;
            }
        windows_ok &= found == 1;
    }
    for (int oy = 0; oy < 5; oy++)
        for (int ox = 0; ox < 5; ox++) windows_seen += seen[oy][ox];
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(windows_ok, "every output is one window of torch's reflect-padded image");
    CHECK(windows_seen == 25, "all 25 windows occur in 200 draws (%d)", windows_seen);

    /* And the general reference, with flips, on several channels. Padding 3 of 9 columns: from
     * 4 on, a window centred on a mirror line is symmetric, and a flip would be invisible. */
    d = position_dataset(48, 3, 7, 9);
    recovery rec;
    check_epochs(d, CT_LOADER(.batch = 16, .seed = 9, .crop_padding = 3, .pad_mode = CT_PAD_REFLECT, .hflip = 1), 2,
                 &rec);
    ct_dataset_free(d);
    CHECK(rec.samples == 96 && rec.unique_failures == 0, "%s", rec.first_failure);
}

CT_TEST(data, loader_normalize_exact) {
    ct_dataset *d = random_dataset(50, 3, 4, 5, 10, 77);
    ct_loader_opts o = CT_LOADER(.batch = 8, .shuffle = 0, .normalize = 1, .mean = {0.4914f, 0.4822f, 0.4465f},
                                 .std = {0.2470f, 0.2435f, 0.2616f});
    ct_loader *l = ct_loader_new(d, o);
    ct_batch b;
    double worst = 0;
    int next = 0;
    while (ct_loader_next(l, &b))
        for (int r = 0; r < b.n; r++, next++)
            for (int k = 0; k < 60; k++) {
                int c = k / 20;
                double want = (d->images[next * 60 + k] / 255.0 - o.mean[c]) / o.std[c];
                double err = fabs((double)b.x->data[r * 60 + k] - want) / (1 + fabs(want));
                if (err > worst) worst = err;
            }
    ct_loader_free(l);
    CHECK(next == 50);
    CHECK(worst <= 4 * CT_REAL_EPS, "worst error %.3g relative to 1 + |x|", worst);
    ct_test_note("worst |x - (b/255 - mean)/std| / (1 + |x|) = %.2g", worst);

    /* Zero padding is a zero byte normalised: −mean/std, as torchvision pads before Normalize. */
    ct_dataset *one = random_dataset(1, 2, 3, 3, 1, 5);
    l = ct_loader_new(one, CT_LOADER(.batch = 1, .seed = 1, .crop_padding = 3, .normalize = 1, .mean = {0.5f, 0.25f},
                                     .std = {0.5f, 2.0f}));
    int pad_ok = 1, pads = 0;
    for (int step = 0; step < 20; step++) {
        if (!ct_loader_next(l, &b)) continue;
        for (int k = 0; k < 18; k++) {
            ct_real v = b.x->data[k];
            double pad = k < 9 ? -1.0 : -0.125;
            if (fabs(v - pad) < 1e-6) pads++;
            else pad_ok &= v > pad; /* every real pixel is above a zero byte's value */
        }
    }
    ct_loader_free(l);
    ct_dataset_free(one);
    ct_dataset_free(d);
    CHECK(pad_ok && pads > 0, "padding pixels read -mean/std (%d seen)", pads);
}

CT_TEST(data, loader_cutout_zeroes_one_clipped_square) {
    ct_dataset *d = position_dataset(60, 3, 7, 9);
    for (int side = 3; side <= 5; side++) { /* odd and even sides */
        recovery rec;
        ct_loader_opts o = CT_LOADER(.batch = 12, .seed = (uint64_t)side, .cutout = side, .normalize = 1,
                                     .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.5f, 1.0f});
        check_epochs(d, o, 2, &rec);
        CHECK(rec.samples == 120 && rec.unique_failures == 0, "side %d: %s", side, rec.first_failure);
        /* The zeroed pixels of a sample: exactly 0 in every channel and a clipped side×side square. */
        ct_loader *l = ct_loader_new(d, o);
        ct_batch b;
        int clipped = 0, full = 0, squares_ok = 1;
        while (ct_loader_next(l, &b))
            for (int r = 0; r < b.n; r++) {
                const ct_real *x = b.x->data + (size_t)r * 189;
                int y0 = 99, y1 = -1, x0 = 99, x1 = -1, zeros = 0;
                for (int y = 0; y < 7; y++)
                    for (int xx = 0; xx < 9; xx++)
                        if (x[y * 9 + xx] == 0) {
                            zeros++;
                            if (y < y0) y0 = y;
                            if (y > y1) y1 = y;
                            if (xx < x0) x0 = xx;
                            if (xx > x1) x1 = xx;
                        }
                int h = y1 - y0 + 1, w = x1 - x0 + 1;
                squares_ok &= zeros == h * w && h <= side && w <= side;
                squares_ok &= (h == side || y0 == 0 || y1 == 6) && (w == side || x0 == 0 || x1 == 8);
                for (int c = 1; c < 3; c++)
                    for (int k = 0; k < 63; k++) squares_ok &= (x[c * 63 + k] == 0) == (x[k] == 0);
                if (h == side && w == side) full++;
                else clipped++;
            }
        ct_loader_free(l);
        CHECK(squares_ok, "side %d: zeroed pixels form one clipped square in every channel", side);
        CHECK(full > 0 && clipped > 0, "side %d: %d whole and %d clipped squares", side, full, clipped);
    }
    ct_dataset_free(d);
}

CT_TEST(data, loader_all_transforms_in_torchvision_order) {
    /* Crop with reflect padding, flip, normalise, cutout, on flattened batches: every sample is
     * the reference for exactly one set of choices (cutout zeros are 0, not the padding value:
     * cutout comes after normalisation). */
    ct_dataset *d = position_dataset(30, 3, 7, 9);
    recovery rec;
    check_epochs(d,
                 CT_LOADER(.batch = 8, .seed = 21, .flatten = 1, .crop_padding = 2, .pad_mode = CT_PAD_REFLECT,
                           .hflip = 1, .normalize = 1, .mean = {0.3f, 0.4f, 0.5f}, .std = {0.2f, 0.3f, 0.4f},
                           .cutout = 3),
                 1, &rec);
    CHECK(rec.samples == 30 && rec.unique_failures == 0, "%s", rec.first_failure);
    check_epochs(d,
                 CT_LOADER(.batch = 7, .seed = 22, .drop_last = 1, .crop_padding = 3, .hflip = 1, .normalize = 1,
                           .mean = {0.3f, 0.4f, 0.5f}, .std = {0.2f, 0.3f, 0.4f}, .cutout = 4),
                 1, &rec);
    ct_dataset_free(d);
    CHECK(rec.samples == 28 && rec.unique_failures == 0, "%s", rec.first_failure);
}

/* ---- randomness: determinism and distribution -------------------------------------------- */

/* Runs `epochs` epochs of l into a buffer of every batch's x, labels and (n, index, epoch). */
typedef struct {
    ct_real *x;
    int *y, *meta;
    size_t nx, ny, nmeta;
} stream;

static stream record(ct_loader *l, int epochs) {
    stream s = {0};
    size_t cap_x = 1 << 16, cap_y = 1 << 12, cap_m = 1 << 12;
    s.x = malloc(cap_x * sizeof(ct_real));
    s.y = malloc(cap_y * sizeof(int));
    s.meta = malloc(cap_m * sizeof(int));
    ct_batch b;
    for (int e = 0; e < epochs; e++) {
        int more;
        do {
            more = ct_loader_next(l, &b);
            if (s.nmeta + 4 > cap_m) s.meta = realloc(s.meta, (cap_m *= 2) * sizeof(int));
            s.meta[s.nmeta++] = more;
            if (!more) break;
            s.meta[s.nmeta++] = b.n, s.meta[s.nmeta++] = b.index, s.meta[s.nmeta++] = b.epoch;
            while (s.nx + b.x->size > cap_x) s.x = realloc(s.x, (cap_x *= 2) * sizeof(ct_real));
            while (s.ny + (size_t)b.n > cap_y) s.y = realloc(s.y, (cap_y *= 2) * sizeof(int));
            memcpy(s.x + s.nx, b.x->data, b.x->size * sizeof(ct_real));
            memcpy(s.y + s.ny, b.y.data, (size_t)b.n * sizeof(int));
            s.nx += b.x->size, s.ny += (size_t)b.n;
        } while (more);
    }
    return s;
}

static int same_stream(const stream *a, const stream *b) {
    return a->nx == b->nx && a->ny == b->ny && a->nmeta == b->nmeta &&
           memcmp(a->x, b->x, a->nx * sizeof(ct_real)) == 0 && memcmp(a->y, b->y, a->ny * sizeof(int)) == 0 &&
           memcmp(a->meta, b->meta, a->nmeta * sizeof(int)) == 0;
}

static void stream_free(stream *s) {
    free(s->x);
    free(s->y);
    free(s->meta);
}

static stream record_with(const ct_dataset *d, ct_loader_opts o, int epochs) {
    ct_loader *l = ct_loader_new(d, o);
    stream s = record(l, epochs);
    ct_loader_free(l);
    return s;
}

CT_TEST(data, loader_augmented_batches_are_deterministic) {
    ct_dataset *d = random_dataset(300, 3, 8, 8, 10, 4);
    ct_loader_opts o = CT_LOADER(.batch = 64, .seed = 99, .crop_padding = 2, .pad_mode = CT_PAD_REFLECT, .hflip = 1,
                                 .normalize = 1, .mean = {0.5f, 0.4f, 0.3f}, .std = {0.2f, 0.25f, 0.3f}, .cutout = 3);
#ifdef _OPENMP
    int threads_before = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    stream one = record_with(d, o, 3);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    stream two = record_with(d, o, 3);
    stream again = record_with(d, o, 3);
    ct_loader_opts op = o;
    op.prefetch = 1;
    stream pre = record_with(d, op, 3);
#ifdef _OPENMP
    omp_set_num_threads(threads_before);
#endif
    ct_loader_opts other = o;
    other.seed = 100;
    stream diff = record_with(d, other, 1);
    size_t differ = 0, n = diff.nx < one.nx ? diff.nx : one.nx;
    for (size_t k = 0; k < n; k++) differ += diff.x[k] != one.x[k];
    int ok_threads = same_stream(&one, &two), ok_again = same_stream(&two, &again), ok_pre = same_stream(&one, &pre);
    int epochs_differ = memcmp(one.x, one.x + one.nx / 3, one.nx / 3 * sizeof(ct_real)) != 0;
    stream_free(&one);
    stream_free(&two);
    stream_free(&again);
    stream_free(&pre);
    stream_free(&diff);
    ct_dataset_free(d);
    CHECK(ok_threads, "1 and 2 OpenMP threads give identical batches");
    CHECK(ok_again, "two loaders with one seed give identical batches");
    CHECK(ok_pre, "prefetch gives the batches of the synchronous loader");
    CHECK(epochs_differ, "each epoch draws new choices");
    CHECK(differ > n / 2, "another seed differs in %zu of %zu values", differ, n);
}

CT_TEST(data, loader_flip_and_crop_offsets_roughly_uniform) {
    /* 3000 samples: flips ~ Binomial(3000, 1/2) (σ ≈ 27), each of the 5 offsets per axis
     * ~ Binomial(3000, 1/5) (σ ≈ 22); bounds at about 6σ. Seeded, so it cannot flake. */
    ct_dataset *d = position_dataset(500, 1, 6, 7);
    recovery rec;
    check_epochs(d, CT_LOADER(.batch = 50, .seed = 2024, .crop_padding = 2, .hflip = 1), 6, &rec);
    ct_dataset_free(d);
    CHECK(rec.samples == 3000 && rec.unique_failures == 0, "%s", rec.first_failure);
    CHECK(rec.flips > 1340 && rec.flips < 1660, "%d of 3000 flipped", rec.flips);
    for (int k = 0; k < 5; k++) {
        CHECK(rec.oy_hist[k] > 470 && rec.oy_hist[k] < 730, "vertical offset %d drawn %d times of 3000", k,
              rec.oy_hist[k]);
        CHECK(rec.ox_hist[k] > 470 && rec.ox_hist[k] < 730, "horizontal offset %d drawn %d times of 3000", k,
              rec.ox_hist[k]);
    }
    ct_test_note("flips %d/3000; vertical offsets %d %d %d %d %d", rec.flips, rec.oy_hist[0], rec.oy_hist[1],
                 rec.oy_hist[2], rec.oy_hist[3], rec.oy_hist[4]);
}

/* ---- subsets ----------------------------------------------------------------------------- */

CT_TEST(data, loader_indices_draw_only_the_subset) {
    ct_dataset *d = position_dataset(100, 1, 2, 3);
    int indices[23];
    for (int k = 0; k < 23; k++) indices[k] = (k * 37 + 5) % 100;
    indices[22] = indices[0]; /* a repeated index is drawn twice */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 5, .seed = 8, .indices = indices, .count = 23));
    int ok = ct_loader_batches_per_epoch(l) == 5, want[100] = {0}, got[100] = {0}, reordered = 0;
    for (int k = 0; k < 23; k++) want[indices[k]]++;
    ct_batch b;
    for (int e = 0; e < 3; e++) {
        int seen = 0, pos = 0;
        memset(got, 0, sizeof got);
        while (ct_loader_next(l, &b)) {
            ok &= b.epoch == e;
            for (int r = 0; r < b.n; r++, pos++) {
                int i = b.y.data[r];
                got[i]++, seen++;
                reordered += i != indices[pos];
                /* the pixels are sample i's */
                for (int k = 0; k < 6; k++)
                    ok &= b.x->data[r * 6 + k] == (ct_real)position_byte(i, 0, k / 3, k % 3, 2, 3) / (ct_real)255;
            }
        }
        ok &= seen == 23 && memcmp(got, want, sizeof got) == 0;
    }
    ct_loader_free(l);
    CHECK(ok, "each epoch draws exactly the 23 indices, with their pixels");
    CHECK(reordered > 23, "shuffled");
    /* Unshuffled: the indices in their order. */
    l = ct_loader_new(d, CT_LOADER(.batch = 4, .shuffle = 0, .indices = indices, .count = 23, .drop_last = 1));
    int pos = 0, in_order = ct_loader_batches_per_epoch(l) == 5;
    while (ct_loader_next(l, &b))
        for (int r = 0; r < b.n; r++) in_order &= b.y.data[r] == indices[pos++];
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(in_order && pos == 20, "shuffle = 0 follows .indices; drop_last leaves 3 out");
}

typedef struct {
    const ct_dataset *d;
    ct_loader_opts o;
} bad_loader;

static void make_bad_loader(void *arg) {
    bad_loader *b = arg;
    ct_loader_new(b->d, b->o);
}

CT_TEST(data, loader_rejects_bad_options_by_name) {
    ct_dataset *d = position_dataset(10, 3, 4, 6);
    ct_dataset *five = random_dataset(2, 5, 2, 2, 2, 1);
    int idx[3] = {0, 10, 2}, fine[2] = {1, 2};
    struct {
        const ct_dataset *d;
        ct_loader_opts o;
        const char *expect;
    } cases[] = {
        {d, CT_LOADER(.normalize = 1, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.0f, 0.5f}), ".std[1]"},
        {d, CT_LOADER(.normalize = 1, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f, -1.0f}), ".std[2]"},
        {five, CT_LOADER(.normalize = 1, .std = {1, 1, 1, 1}), "CT_LOADER_MAX_CHANNELS"},
        {d, CT_LOADER(.crop_padding = -1), ".crop_padding"},
        {d, CT_LOADER(.crop_padding = 4, .pad_mode = CT_PAD_REFLECT), ".crop_padding 4 with CT_PAD_REFLECT"},
        {d, CT_LOADER(.crop_padding = 1, .pad_mode = 7), ".pad_mode"},
        {d, CT_LOADER(.cutout = -2), ".cutout"},
        {d, CT_LOADER(.indices = fine, .count = 0), ".count"},
        {d, CT_LOADER(.indices = idx, .count = 3), ".indices[1] = 10"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bad_loader arg = {cases[k].d, cases[k].o};
        char got[512];
        int stopped = ct_test_expect_fatal(make_bad_loader, &arg, cases[k].expect, got, sizeof got);
        CHECK(stopped && strstr(got, "ct_loader_new"), "case %zu (%s): stderr was: %s", k, cases[k].expect, got);
    }
    /* Edge values that are fine: reflect padding of size − 1, cutout larger than the image. */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.crop_padding = 3, .pad_mode = CT_PAD_REFLECT, .cutout = 20));
    ct_batch b;
    int all_zero = ct_loader_next(l, &b);
    for (size_t k = 0; k < b.x->size && all_zero; k++) all_zero = b.x->data[k] == 0;
    ct_loader_free(l);
    ct_dataset_free(d);
    ct_dataset_free(five);
    CHECK(all_zero, "a cutout wider than the image zeroes it all");
}

/* ---- prefetch ---------------------------------------------------------------------------- */

CT_TEST(data, loader_prefetch_same_stream_tails_and_drop_last) {
    ct_dataset *d = random_dataset(10, 1, 3, 4, 3, 6);
    struct {
        int batch, drop_last;
    } shapes[] = {{4, 0}, {4, 1}, {5, 0}, {64, 0}, {64, 1}, {1, 0}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        ct_loader_opts o = CT_LOADER(.batch = shapes[k].batch, .drop_last = shapes[k].drop_last, .seed = k,
                                     .crop_padding = 1, .hflip = 1);
        stream sync = record_with(d, o, 4);
        o.prefetch = 1;
        stream pre = record_with(d, o, 4);
        int same = same_stream(&sync, &pre);
        stream_free(&sync);
        stream_free(&pre);
        CHECK(same, "batch %d drop_last %d: prefetch gives the same batches, ends of epoch and tails",
              shapes[k].batch, shapes[k].drop_last);
    }
    /* The shapes and the 0 at each end of epoch, as without prefetch. */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 4, .seed = 5, .prefetch = 1));
    ct_batch b;
    int ok = ct_loader_batches_per_epoch(l) == 3;
    for (int e = 0; e < 3; e++) {
        for (int k = 0; k < 3; k++)
            ok &= ct_loader_next(l, &b) && b.index == k && b.epoch == e && b.n == (k < 2 ? 4 : 2) &&
                  b.x->shape[0] == b.n && b.y.n == b.n;
        ok &= !ct_loader_next(l, &b);
    }
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(ok, "4 + 4 + 2, then 0, three times");
}

/* When the system refuses the prefetch thread, the loader works synchronously and gives the same
 * batches. The refusal is real, in a child process: a process limit of 0 (RLIMIT_NPROC, which
 * counts threads; as root the child first becomes `nobody`, since root is exempt) makes the
 * thread's clone fail. Exit status 0: no thread and the same batches; 2: a thread was made
 * anyway (the limit did not bite: reported as a skip); 3: different batches. */
CT_TEST(data, loader_prefetch_without_a_thread_gives_the_same_batches) {
    ct_dataset *d = random_dataset(10, 1, 3, 4, 3, 6);
    ct_loader_opts o = CT_LOADER(.batch = 4, .seed = 3, .crop_padding = 1, .hflip = 1);
    stream sync = record_with(d, o, 3);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        ct_set_threads(1); /* libgomp's workers do not survive fork */
        if (geteuid() == 0 && setuid(65534) != 0) _exit(2);
        const struct rlimit none = {0, 0};
        if (setrlimit(RLIMIT_NPROC, &none) != 0) _exit(2);
        o.prefetch = 1;
        ct_loader *l = ct_loader_new(d, o);
        if (ct_loader_prefetching(l)) _exit(2);
        stream got = record(l, 3);
        _exit(same_stream(&sync, &got) ? 0 : 3);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    stream_free(&sync);
    ct_dataset_free(d);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
        CT_SKIP("the system gave the prefetch thread despite RLIMIT_NPROC = 0: the fallback is not reached here");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d (3: other batches than without prefetch)",
          status);
}

CT_TEST(data, loader_prefetch_batch_stays_valid_until_next_call) {
    /* While the caller reads batch k, the thread fills the other buffer with k + 1: the tensor
     * handed out must not change under the caller. Read it slowly (twice, compare). */
    ct_dataset *d = random_dataset(200, 3, 8, 8, 10, 8);
    ct_loader_opts o = CT_LOADER(.batch = 16, .seed = 1, .crop_padding = 2, .hflip = 1, .prefetch = 1);
    ct_loader *l = ct_loader_new(d, o);
    ct_real *copy = malloc(16 * 192 * sizeof(ct_real));
    ct_batch b;
    int stable = 1, batches = 0;
    for (int e = 0; e < 2; e++)
        while (ct_loader_next(l, &b)) {
            memcpy(copy, b.x->data, b.x->size * sizeof(ct_real));
            double t0 = ct_time_now();
            while (ct_time_now() - t0 < 1e-4) {
            } /* the thread has time to finish the next batch */
            stable &= memcmp(copy, b.x->data, b.x->size * sizeof(ct_real)) == 0;
            batches++;
        }
    double waited = ct_loader_wait_seconds(l);
    ct_loader_free(l);
    free(copy);
    ct_dataset_free(d);
    CHECK(stable && batches == 26, "batches unchanged while held (%d batches)", batches);
    CHECK(waited >= 0);
}

CT_TEST(data, loader_prefetch_free_at_any_point) {
    ct_dataset *d = random_dataset(50, 3, 6, 6, 4, 9);
    ct_batch b;
    int calls[] = {0, 1, 3, 4, 5, 9}; /* 13 + 13 + 13 + 11: free before, in and after epoch ends */
    for (size_t k = 0; k < sizeof calls / sizeof calls[0]; k++) {
        ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 13, .seed = k, .prefetch = 1, .cutout = 2));
        for (int c = 0; c < calls[k]; c++) ct_loader_next(l, &b);
        ct_loader_free(l);
    }
    /* A loader with no batch at all (drop_last, batch > n) only ever ends epochs. */
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 64, .drop_last = 1, .prefetch = 1));
    int none = !ct_loader_next(l, &b) && !ct_loader_next(l, &b) && !ct_loader_next(l, &b);
    ct_loader_free(l);
    ct_dataset_free(d);
    CHECK(none);
}

CT_TEST(data, loader_wait_seconds_accumulates) {
    ct_dataset *d = random_dataset(100, 3, 8, 8, 10, 10);
    for (int prefetch = 0; prefetch <= 1; prefetch++) {
        ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 10, .prefetch = prefetch, .crop_padding = 2));
        double before = ct_loader_wait_seconds(l), last = before;
        int monotone = 1;
        ct_batch b;
        while (ct_loader_next(l, &b)) {
            double now = ct_loader_wait_seconds(l);
            monotone &= now >= last;
            last = now;
        }
        ct_loader_free(l);
        CHECK(before == 0 && monotone && last > 0, "prefetch %d: 0 at first, then growing (%g s)", prefetch, last);
    }
    ct_dataset_free(d);
}

/* ---- dataset utilities ------------------------------------------------------------------- */

static ct_dataset *named_dataset(int n) {
    ct_dataset *d = position_dataset(n, 1, 2, 3);
    d->classes = 3;
    d->class_names = malloc(3 * sizeof(char *));
    const char *names[3] = {"cat", "dog", "frog"};
    for (int c = 0; c < 3; c++) {
        d->class_names[c] = malloc(8);
        strcpy(d->class_names[c], names[c]);
    }
    return d;
}

CT_TEST(data, dataset_subset_copies_samples_and_names) {
    ct_dataset *d = named_dataset(20);
    int idx[4] = {19, 0, 7, 7};
    ct_dataset *s = ct_dataset_subset(d, idx, 4);
    CHECK(s != NULL, "%s", ct_last_error());
    int ok = s->n == 4 && s->channels == 1 && s->height == 2 && s->width == 3 && s->classes == 3;
    for (int k = 0; k < 4 && ok; k++) {
        ok &= s->labels[k] == idx[k];
        ok &= memcmp(s->images + k * 6, d->images + idx[k] * 6, 6) == 0;
    }
    ok &= s->class_names && s->class_names != d->class_names && strcmp(s->class_names[2], "frog") == 0 &&
          s->class_names[2] != d->class_names[2];
    ct_dataset_free(s);
    CHECK(ok, "copies of samples 19, 0, 7, 7 with the class names");
    int bad[3] = {1, 20, 2};
    CHECK(ct_dataset_subset(d, bad, 3) == NULL);
    CHECK(strstr(ct_last_error(), "20") && strstr(ct_last_error(), "out of range"), "%s", ct_last_error());
    bad[1] = -1;
    CHECK(ct_dataset_subset(d, bad, 3) == NULL && strstr(ct_last_error(), "-1"), "%s", ct_last_error());
    ct_dataset *empty = ct_dataset_subset(d, NULL, 0);
    CHECK(empty && empty->n == 0 && empty->classes == 3);
    ct_dataset_free(empty);
    ct_dataset_free(d);
}

CT_TEST(data, dataset_split_disjoint_complete_deterministic) {
    ct_dataset *d = named_dataset(101);
    ct_dataset *train = NULL, *val = NULL, *train2 = NULL, *val2 = NULL, *train3 = NULL, *val3 = NULL;
    CHECK(ct_dataset_split(d, 0.2, 7, &train, &val) == CT_OK, "%s", ct_last_error());
    CHECK(val->n == 20 && train->n == 81, "round(101 * 0.2) = 20 for validation; got %d + %d", val->n, train->n);
    int hits[101] = {0}, ok = 1;
    for (int k = 0; k < val->n; k++) hits[val->labels[k]]++;
    for (int k = 0; k < train->n; k++) hits[train->labels[k]]++;
    for (int i = 0; i < 101; i++) ok &= hits[i] == 1;
    for (int k = 0; k < val->n; k++) ok &= memcmp(val->images + k * 6, d->images + val->labels[k] * 6, 6) == 0;
    CHECK(ok, "every sample in exactly one part, with its pixels");
    CHECK(train->class_names && strcmp(val->class_names[1], "dog") == 0);
    int in_order = 1;
    for (int k = 1; k < val->n; k++) in_order &= val->labels[k] > val->labels[k - 1];
    CHECK(!in_order, "the validation part is a random draw, not the first samples");
    CHECK(ct_dataset_split(d, 0.2, 7, &train2, &val2) == CT_OK && ct_dataset_split(d, 0.2, 8, &train3, &val3) == CT_OK);
    CHECK(memcmp(val->labels, val2->labels, 20 * sizeof(int)) == 0 &&
          memcmp(train->labels, train2->labels, 81 * sizeof(int)) == 0, "the same seed gives the same split");
    CHECK(memcmp(val->labels, val3->labels, 20 * sizeof(int)) != 0, "another seed another split");
    ct_dataset_free(train);
    ct_dataset_free(val);
    ct_dataset_free(train2);
    ct_dataset_free(val2);
    ct_dataset_free(train3);
    ct_dataset_free(val3);
    const double bad[] = {0, 1, -0.5, 1.5, NAN, 0.001, 0.999};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        train = val = (ct_dataset *)d; /* must come back NULL */
        int rc = ct_dataset_split(d, bad[k], 1, &train, &val);
        CHECK(rc == CT_ERR_VALUE && train == NULL && val == NULL, "fraction %g: rc %d", bad[k], rc);
        CHECK(strstr(ct_last_error(), "position dataset"), "%s", ct_last_error());
    }
    ct_dataset_free(d);
}

CT_TEST(data, dataset_channel_stats_match_direct_computation) {
    ct_dataset *d = random_dataset(37, 3, 5, 7, 10, 12);
    /* Give the channels different distributions. */
    for (int i = 0; i < 37; i++)
        for (int k = 0; k < 35; k++) {
            uint8_t *p = d->images + (size_t)i * 105;
            p[k] = (uint8_t)(p[k] / 4);           /* channel 0 in 0..63 */
            p[70 + k] = (uint8_t)(200 + p[70 + k] % 56); /* channel 2 in 200..255 */
        }
    float mean[3], std[3];
    ct_dataset_channel_stats(d, mean, std);
    for (int c = 0; c < 3; c++) {
        double sum = 0, sq = 0, n = 37.0 * 35;
        for (int i = 0; i < 37; i++)
            for (int k = 0; k < 35; k++) sum += d->images[(size_t)i * 105 + c * 35 + k] / 255.0;
        double m = sum / n;
        for (int i = 0; i < 37; i++)
            for (int k = 0; k < 35; k++) {
                double v = d->images[(size_t)i * 105 + c * 35 + k] / 255.0 - m;
                sq += v * v;
            }
        CHECK_NEAR(mean[c], m, 0, 1e-6);
        CHECK_NEAR(std[c], sqrt(sq / n), 0, 1e-6);
    }
    /* A constant image: std exactly 0, mean exactly the byte / 255. */
    memset(d->images, 51, 37 * 105);
    ct_dataset_channel_stats(d, mean, std);
    CHECK(mean[1] == 0.2f && std[0] == 0 && std[2] == 0, "mean %g std %g", mean[1], std[0]);
    ct_dataset_free(d);
}

CT_TEST(data, dataset_channel_stats_large_planes) {
    /* Planes of 300x300 = 90,000 pixels: the 32-bit partial sums restart every 65,536 pixels. */
    ct_dataset *d = random_dataset(2, 2, 300, 300, 2, 13);
    for (size_t k = 0; k < 2 * 2 * 90000; k += 7) d->images[k] = 255; /* skew towards white */
    float mean[2], std[2];
    ct_dataset_channel_stats(d, mean, std);
    for (int c = 0; c < 2; c++) {
        double sum = 0, sq = 0, n = 2.0 * 90000;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 90000; k++) sum += d->images[((size_t)i * 2 + c) * 90000 + k] / 255.0;
        double m = sum / n;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 90000; k++) {
                double v = d->images[((size_t)i * 2 + c) * 90000 + k] / 255.0 - m;
                sq += v * v;
            }
        CHECK_NEAR(mean[c], m, 0, 1e-6);
        CHECK_NEAR(std[c], sqrt(sq / n), 0, 1e-6);
    }
    ct_dataset_free(d);
}

/* ---- real CIFAR-10 (../shared/data/cifar10) ---------------------------------------------- */

CT_TEST(data, cifar10_channel_stats_and_normalised_batches) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char path[700];
    snprintf(path, sizeof path, "%s/cifar10/data_batch_sub.bin", shared);
    ct_dataset *d = ct_cifar10_load(path, NULL);
    CHECK(d != NULL, "%s", ct_last_error());
    float mean[3], std[3];
    ct_dataset_channel_stats(d, mean, std);
    /* The full training set's figures (0.4914 0.4822 0.4465, 0.2470 0.2435 0.2616): a
     * class-balanced 10,000 of it lands close. */
    const float full_mean[3] = {0.4914f, 0.4822f, 0.4465f}, full_std[3] = {0.2470f, 0.2435f, 0.2616f};
    for (int c = 0; c < 3; c++) {
        CHECK(fabsf(mean[c] - full_mean[c]) < 0.01f, "channel %d mean %.4f", c, mean[c]);
        CHECK(fabsf(std[c] - full_std[c]) < 0.01f, "channel %d std %.4f", c, std[c]);
    }
    /* Normalised with its own statistics (through the background thread), an epoch has mean 0
     * and std 1 per channel. */
    ct_loader_opts o = CT_LOADER(.batch = 500, .normalize = 1, .prefetch = 1);
    memcpy(o.mean, mean, sizeof mean);
    memcpy(o.std, std, sizeof std);
    double s[3] = {0}, sq[3] = {0}, n = 0;
    ct_loader *l = ct_loader_new(d, o);
    ct_batch b;
    while (ct_loader_next(l, &b))
        for (int r = 0; r < b.n; r++, n += 1024)
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < 1024; k++) {
                    double v = b.x->data[(size_t)r * 3072 + c * 1024 + k];
                    s[c] += v, sq[c] += v * v;
                }
    ct_loader_free(l);
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(s[c] / n, 0, 1e-4, 0);
        CHECK_NEAR(sqrt(sq[c] / n - (s[c] / n) * (s[c] / n)), 1, 1e-4, 0);
    }
    ct_dataset_free(d);
    ct_test_note("mean %.4f %.4f %.4f, std %.4f %.4f %.4f", mean[0], mean[1], mean[2], std[0], std[1], std[2]);
}

/* ---- seek (a resumed run) ------------------------------------------------------------------ */

/* After ct_loader_seek(e, b) the loader gives what a fresh one gives from batch b of epoch e on: the
 * same samples, augmentation and labels, the ends of epoch in place, with and without prefetch
 * (shuffled, cropped and flipped, a short last batch). */
CT_TEST(data, loader_seek_continues_the_stream_of_a_fresh_loader) {
    ct_dataset *d = random_dataset(10, 1, 3, 4, 3, 6);
    for (int prefetch = 0; prefetch <= 1; prefetch++) {
        const ct_loader_opts o = CT_LOADER(.batch = 4, .seed = 9, .crop_padding = 1, .hflip = 1, .prefetch = prefetch);
        const int positions[][2] = {{0, 0}, {0, 2}, {1, 1}, {2, 3}, {3, 0}};
        for (size_t p = 0; p < sizeof positions / sizeof *positions; p++) {
            const int e = positions[p][0], b = positions[p][1];
            ct_loader *fresh = ct_loader_new(d, o), *moved = ct_loader_new(d, o);
            ct_batch x, y;
            for (int k = 0; k < e * 4 + b; k++) ct_loader_next(fresh, &x); /* 3 batches and the end per epoch */
            ct_loader_next(moved, &y); /* used before: seek starts over all the same */
            CHECK(ct_loader_seek(moved, e, b) == CT_OK, "%s", ct_last_error());
            int same = 1;
            for (int k = 0; k < 6 && same; k++) {
                const int hx = ct_loader_next(fresh, &x), hy = ct_loader_next(moved, &y);
                same = hx == hy && (!hx || (x.n == y.n && x.epoch == y.epoch && x.index == y.index &&
                                            !memcmp(x.x->data, y.x->data, x.x->size * sizeof(ct_real)) &&
                                            !memcmp(x.y.data, y.y.data, (size_t)x.n * sizeof(int))));
            }
            CHECK(same, "prefetch %d: after seek(%d, %d) the stream differs from a fresh loader's", prefetch, e, b);
            ct_loader_free(fresh), ct_loader_free(moved);
        }
    }
    ct_loader *l = ct_loader_new(d, CT_LOADER(.batch = 4));
    CHECK(ct_loader_seek(l, 0, 4) == CT_ERR_VALUE && strstr(ct_last_error(), "3 batches per epoch"), "%s",
          ct_last_error());
    CHECK(ct_loader_seek(l, -1, 0) == CT_ERR_VALUE, "a negative epoch was accepted");
    ct_loader_free(l);
    ct_dataset_free(d);
}
