/* data/loader.c — seeded, shuffled mini-batches over a byte dataset, with augmentation and an
 * optional background thread.
 *
 * The dataset stays as bytes; each batch is converted to ct_real into a tensor the loader owns
 * and reuses, so an epoch allocates nothing. The order is a permutation drawn from the
 * loader's own RNG at the start of every epoch. Every random choice for sample i of batch b in
 * epoch e (crop offset, flip, cutout centre) comes from an RNG seeded by a hash of
 * (seed, e, b, i), so a sample's result does not depend on which thread converts it, or on
 * whether the background thread made the batch: the same seed gives the same batches. The
 * alternating flip is a function of (seed, image, e) alone.
 *
 * A sample is made in one pass over its output (see fill_sample): each output row is the
 * converted bytes of one source row (or padding), cut at the crop offset and stored reversed
 * when flipped; normalisation is fused into the conversion as x·scale[c] + shift[c]. */
#define CT_BUILDING_LIBRARY
#include "data.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* One prepared item of the batch stream: a batch, or the end of an epoch (has_batch = 0).
 * Without .prefetch the loader has one slot; with it two, filled in turn by the background
 * thread while the caller holds the other (double buffering). */
enum { SLOT_FREE, SLOT_READY, SLOT_HELD };
typedef struct {
    ct_tensor *x_full;  /* (batch, ...) for full batches; NULL when there are none */
    ct_tensor *x_tail;  /* (count % batch, ...) for the last batch; NULL when dropped or absent */
    int *labels;        /* min(batch, count) entries */
    ct_tensor *x;       /* x_full or x_tail: the tensor this item fills */
    int has_batch, n, index, epoch;
    int state;          /* prefetch only: SLOT_* under the loader's mutex */
} slot;

struct ct_loader {
    const ct_dataset *data;  /* borrowed: must outlive the loader */
    ct_loader_opts opts;
    int count;               /* samples per epoch: opts.count with .indices, else data->n */
    ct_rng rng;              /* the shuffle stream */
    int *order;              /* this epoch's dataset indices, count entries */
    size_t sample_size;      /* bytes (= reals) per sample: channels·height·width */
    ct_real scale[CT_LOADER_MAX_CHANNELS], shift[CT_LOADER_MAX_CHANNELS];
    /* Cursor of the batch stream: advanced by the caller, or by the background thread alone
     * when prefetching. */
    int pos;                 /* next position in `order` */
    int batch_index;
    int epoch;
    slot slots[2];
    double wait_seconds;     /* time spent inside ct_loader_next */
    /* Prefetch: the worker fills slots[w], w = 0, 1, 0, ...; the caller takes them in the same
     * order and gives one back (SLOT_FREE) when it asks for the next. */
    int prefetching;
    pthread_t worker;
    pthread_mutex_t mutex;
    pthread_cond_t ready;    /* a slot became SLOT_READY */
    pthread_cond_t freed;    /* a slot became SLOT_FREE, or stop was set */
    int stop;
    int next_slot;           /* the slot the caller takes next */
    int views;               /* samples are made this many times each (1 without .views) */
    int *class_members;      /* .balanced: the samples of class c at class_members[class_start[c] ..] */
    int *class_start;        /* classes + 1 offsets; classes without samples are skipped */
    int n_classes_present, *classes_present;
    int held;                /* the slot the caller holds, -1 for none */
    int shard, shards;       /* .shard of .shards equal slices of each global batch (1 slice without) */
    unsigned magic;          /* LOADER_MAGIC while alive, LOADER_FREED after ct_loader_free */
};

/* ---- random choices ---------------------------------------------------------------------- */

/* splitmix64's output function on x + γ: a bijective 64-bit mix in which every input bit
 * changes about half the output bits. */
static uint64_t mix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The seed of sample i in batch b of epoch e: chained so that no two (e, b, i) collide by
 * arithmetic (a plain sum would make (e, b + 1) and (e + 1, b) alike). */
static uint64_t sample_seed(uint64_t seed, int epoch, int batch, int i) {
    uint64_t h = mix64(seed);
    h = mix64(h ^ (uint64_t)(uint32_t)epoch);
    h = mix64(h ^ (uint64_t)(uint32_t)batch);
    return mix64(h ^ (uint64_t)(uint32_t)i);
}

/* View v of a sample: view 0 is the sample's own stream, so one view gives the batches of a
 * loader without .views; the others hash the view in. */
static uint64_t view_seed(uint64_t seed, int view, int epoch, int batch, int i) {
    return view ? mix64(sample_seed(seed, epoch, batch, i) ^ mix64((uint64_t)view)) : sample_seed(seed, epoch, batch, i);
}

/* .alternating_flip: image j's coin, a function of the seed and j alone (not of the epoch, the
 * batch or the order), so every epoch, a resumed run and the background thread agree on it. */
static int flip_coin(uint64_t seed, int image) {
    const uint64_t domain = 0x616c74666c6970ULL; /* "altflip": apart from the samples' streams */
    const uint64_t h = mix64(mix64(seed ^ domain) ^ (uint64_t)(uint32_t)image);
    return (int)(h >> 63);
}

/* Whether image j is flipped in `epoch` under .alternating_flip: as its coin in even epochs, the
 * other way in odd ones (0 without the option). */
static int alternating_flip(const ct_loader *l, int image, int epoch) {
    return l->opts.alternating_flip ? flip_coin(l->opts.seed, image) ^ (epoch & 1) : 0;
}

/* ---- conversion of one sample ------------------------------------------------------------ */

/* A mirror index without repeating the edge (torch's 'reflect'): −1 → 1, n → n − 2. Valid for
 * |overshoot| < n, which the padding < size check guarantees. */
static inline int reflect_index(int i, int n) {
    if (i < 0) return -i;
    if (i >= n) return 2 * (n - 1) - i;
    return i;
}

/* dst[k] = src[k]·scale + shift, or src[k] / 255 exactly (ToTensor's value) without
 * normalisation. Rows are short (32 on CIFAR) and a vectorised loop of unknown length ends in
 * a scalar remainder of up to 15 elements, which measured as most of the time; so a span is
 * cut into fixed blocks of BLOCK (one or two vectors each, no remainder), the last block
 * overlapping the one before it when len is not a multiple: rewriting an element gives the
 * same value. `omp simd` because GCC's cost model leaves byte→real loops scalar. */
enum { BLOCK = 16 };

static inline void convert_block(ct_real *restrict dst, const uint8_t *restrict src, int normalize, ct_real scale,
                                 ct_real shift) {
    if (normalize) {
#pragma omp simd
        for (int k = 0; k < BLOCK; k++) dst[k] = (ct_real)src[k] * scale + shift;
    } else {
#pragma omp simd
        for (int k = 0; k < BLOCK; k++) dst[k] = (ct_real)src[k] / (ct_real)255;
    }
}

/* dst[k] from src[BLOCK − 1 − k]: a reversed load is a permute per vector (GCC 12 vectorises a
 * reversed load, not a reversed store). */
static inline void convert_block_reversed(ct_real *restrict dst, const uint8_t *restrict src, int normalize,
                                          ct_real scale, ct_real shift) {
    if (normalize) {
#pragma omp simd
        for (int k = 0; k < BLOCK; k++) dst[k] = (ct_real)src[BLOCK - 1 - k] * scale + shift;
    } else {
#pragma omp simd
        for (int k = 0; k < BLOCK; k++) dst[k] = (ct_real)src[BLOCK - 1 - k] / (ct_real)255;
    }
}

static inline void convert_span(ct_real *restrict dst, const uint8_t *restrict src, int len, int normalize,
                                ct_real scale, ct_real shift) {
    if (len < BLOCK) {
        for (int k = 0; k < len; k++)
            dst[k] = normalize ? (ct_real)src[k] * scale + shift : (ct_real)src[k] / (ct_real)255;
        return;
    }
    int k = 0;
    for (; k + BLOCK <= len; k += BLOCK) convert_block(dst + k, src + k, normalize, scale, shift);
    if (k < len) convert_block(dst + len - BLOCK, src + len - BLOCK, normalize, scale, shift);
}

/* dst[k] = the conversion of src[len − 1 − k]. The block at dst + j reads src + len − BLOCK − j. */
static inline void convert_span_reversed(ct_real *restrict dst, const uint8_t *restrict src, int len,
                                         int normalize, ct_real scale, ct_real shift) {
    if (len < BLOCK) {
        for (int k = 0; k < len; k++)
            dst[k] = normalize ? (ct_real)src[len - 1 - k] * scale + shift : (ct_real)src[len - 1 - k] / (ct_real)255;
        return;
    }
    int j = 0;
    for (; j + BLOCK <= len; j += BLOCK)
        convert_block_reversed(dst + j, src + len - BLOCK - j, normalize, scale, shift);
    if (j < len) convert_block_reversed(dst + len - BLOCK, src, normalize, scale, shift);
}

static inline ct_real convert_one(uint8_t v, int normalize, ct_real scale, ct_real shift) {
    return normalize ? (ct_real)v * scale + shift : (ct_real)v / (ct_real)255;
}

/* Sample `src` (channels×H×W bytes) into `dst` (channels×H×W reals) with its random choices
 * (alt_flip: the .alternating_flip decision, 0 without it).
 *
 * Crop: the output is the window at (oy, ox) of the image padded by p on every side, so output
 * (y, x) is source (y + dy, x + dx) with dy = oy − p, dx = ox − p. A row's columns split into
 * L = max(0, −dx) left padding, the interior (one contiguous source segment) and
 * R = max(0, dx) right padding; rows with y + dy outside the image are padding (zero) or the
 * mirrored row (reflect). Flip: output column x takes what column W − 1 − x would have had, so
 * each span is stored reversed from the other end of the row. Padding is the value of a zero
 * byte (shift[c] when normalising, else 0), as torchvision pads the tensor before Normalize. */
CT_KERNEL
static void fill_sample(const ct_loader *l, ct_real *restrict dst, const uint8_t *restrict src, uint64_t seed,
                        int alt_flip) {
    const ct_dataset *d = l->data;
    const int C = d->channels, H = d->height, W = d->width;
    const int p = l->opts.crop_padding, reflect = l->opts.pad_mode == CT_PAD_REFLECT;
    const int normalize = l->opts.normalize;

    /* The random choices, always drawn in this order. */
    ct_rng r;
    ct_rng_seed(&r, seed);
    int dy = 0, dx = 0, flip = alt_flip, cy = 0, cx = 0;
    if (p > 0) {
        dy = (int)ct_rng_int(&r, 0, 2 * (int64_t)p + 1) - p;
        dx = (int)ct_rng_int(&r, 0, 2 * (int64_t)p + 1) - p;
    }
    if (l->opts.hflip) flip = (int)(ct_rng_u64(&r) >> 63);
    if (l->opts.cutout > 0) {
        cy = (int)ct_rng_int(&r, 0, H);
        cx = (int)ct_rng_int(&r, 0, W);
    }

    const int left = dx < 0 ? (-dx < W ? -dx : W) : 0;   /* padding columns on the left */
    const int right = dx > 0 ? (dx < W ? dx : W) : 0;    /* and on the right */
    const int inner = W - left - right;                  /* interior columns (may be 0) */
    for (int c = 0; c < C; c++) {
        const ct_real scale = l->scale[c], shift = l->shift[c];
        const ct_real pad = normalize ? shift : 0;
        const uint8_t *plane = src + (size_t)c * H * W;
        ct_real *out = dst + (size_t)c * H * W;
        if (p == 0 && !flip) { /* no crop, no flip: the plane is one span */
            convert_span(out, plane, H * W, normalize, scale, shift);
            continue;
        }
        for (int y = 0; y < H; y++) {
            ct_real *row = out + (size_t)y * W;
            int sy = y + dy;
            if (sy < 0 || sy >= H) {
                if (!reflect) {
                    for (int x = 0; x < W; x++) row[x] = pad;
                    continue;
                }
                sy = reflect_index(sy, H);
            }
            const uint8_t *srow = plane + (size_t)sy * W;
            if (!flip) {
                if (inner > 0) convert_span(row + left, srow + left + dx, inner, normalize, scale, shift);
                for (int x = 0; x < left; x++)
                    row[x] = reflect ? convert_one(srow[reflect_index(x + dx, W)], normalize, scale, shift) : pad;
                for (int x = W - right; x < W; x++)
                    row[x] = reflect ? convert_one(srow[reflect_index(x + dx, W)], normalize, scale, shift) : pad;
            } else {
                /* Unflipped column x lands at W − 1 − x: the interior fills [right, W − left). */
                if (inner > 0) convert_span_reversed(row + right, srow + left + dx, inner, normalize, scale, shift);
                for (int x = 0; x < left; x++)
                    row[W - 1 - x] =
                        reflect ? convert_one(srow[reflect_index(x + dx, W)], normalize, scale, shift) : pad;
                for (int x = W - right; x < W; x++)
                    row[W - 1 - x] =
                        reflect ? convert_one(srow[reflect_index(x + dx, W)], normalize, scale, shift) : pad;
            }
        }
    }

    /* Cutout: rows [cy − s/2, cy − s/2 + s) ∩ [0, H), the same for columns, in every channel.
     * For even s these are DeVries & Taylor's [cy − s/2, cy + s/2); for odd s their code clips
     * to [cy − ⌊s/2⌋, cy + ⌊s/2⌋), one row and column short of the side×side square data.h
     * promises, which is what this draws. */
    const int s = l->opts.cutout;
    if (s > 0) {
        int y0 = cy - s / 2, x0 = cx - s / 2;
        int y1 = y0 + s < H ? y0 + s : H, x1 = x0 + s < W ? x0 + s : W;
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        for (int c = 0; c < C; c++)
            for (int y = y0; y < y1; y++)
                memset(dst + ((size_t)c * H + y) * W + x0, 0, (size_t)(x1 - x0) * sizeof(ct_real));
    }
}

/* ---- the batch stream -------------------------------------------------------------------- */

static void start_epoch(ct_loader *l) {
    int n = l->count;
    if (l->opts.balanced) { /* a class, then one of its samples; with replacement */
        for (int i = 0; i < n; i++) {
            const int c = l->classes_present[ct_rng_int(&l->rng, 0, l->n_classes_present)];
            const int *m = l->class_members + l->class_start[c];
            l->order[i] = m[ct_rng_int(&l->rng, 0, l->class_start[c + 1] - l->class_start[c])];
        }
        l->pos = 0;
        l->batch_index = 0;
        return;
    }
    if (l->opts.shuffle) ct_rng_permutation(&l->rng, l->order, n);
    else
        for (int i = 0; i < n; i++) l->order[i] = i;
    if (l->opts.indices)
        for (int i = 0; i < n; i++) l->order[i] = l->opts.indices[l->order[i]];
    l->pos = 0;
    l->batch_index = 0;
}

/* The next item of the stream into s: a batch (samples across OpenMP threads when `parallel`),
 * or the end of the epoch, after which the cursor is at the start of the next one. */
CT_KERNEL
static void produce(ct_loader *l, slot *s, int parallel) {
    int remaining = l->count - l->pos;
    if (remaining <= 0 || (l->opts.drop_last && remaining < l->opts.batch)) {
        s->has_batch = 0;
        l->epoch++;
        start_epoch(l);
        return;
    }
    const int rows = remaining < l->opts.batch ? remaining : l->opts.batch;
    const int local = rows / l->shards, first = l->shard * local; /* this shard's rows of the global batch */
    ct_tensor *x = rows == l->opts.batch ? s->x_full : s->x_tail;
    const size_t S = l->sample_size;
    const uint8_t *images = l->data->images;
    const int *order = l->order + l->pos + first;
    const uint64_t seed = l->opts.seed;
    const int epoch = l->epoch, index = l->batch_index;
    const ct_loader *cl = l;
    const int V = l->views, made = local * V; /* output row k: view k % V of sample k / V */
    if (parallel && made > 1 && (size_t)made * S >= 4096) {
#pragma omp parallel for schedule(static)
        for (int k = 0; k < made; k++)
            fill_sample(cl, x->data + (size_t)k * S, images + (size_t)order[k / V] * S,
                        view_seed(seed, k % V, epoch, index, first + k / V), alternating_flip(cl, order[k / V], epoch));
    } else { /* the background thread, or a batch too small to share */
        for (int k = 0; k < made; k++)
            fill_sample(cl, x->data + (size_t)k * S, images + (size_t)order[k / V] * S,
                        view_seed(seed, k % V, epoch, index, first + k / V), alternating_flip(cl, order[k / V], epoch));
    }
    for (int r = 0; r < local; r++) s->labels[r] = l->data->labels[order[r]];
    s->x = x;
    s->has_batch = 1;
    s->n = local;
    s->index = l->batch_index++;
    s->epoch = l->epoch;
    l->pos += rows;
}

/* The background thread: fills the slots in turn, each once the caller has given it back. */
static void *prefetch_worker(void *arg) {
    ct_loader *l = arg;
    int w = 0;
    pthread_mutex_lock(&l->mutex);
    for (;;) {
        while (!l->stop && l->slots[w].state != SLOT_FREE) pthread_cond_wait(&l->freed, &l->mutex);
        if (l->stop) break;
        pthread_mutex_unlock(&l->mutex);
        produce(l, &l->slots[w], 0);
        pthread_mutex_lock(&l->mutex);
        l->slots[w].state = SLOT_READY;
        pthread_cond_signal(&l->ready);
        w ^= 1;
    }
    pthread_mutex_unlock(&l->mutex);
    return NULL;
}

/* The background thread stopped and every slot free: the stream can be moved. */
static void stop_worker(ct_loader *l) {
    pthread_mutex_lock(&l->mutex);
    l->stop = 1;
    pthread_cond_broadcast(&l->freed);
    pthread_mutex_unlock(&l->mutex);
    pthread_join(l->worker, NULL);
    l->stop = 0;
}

/* ---- public API -------------------------------------------------------------------------- */

static ct_tensor *batch_tensor(const ct_dataset *d, int rows, int flatten) { /* rows: samples × views */
    if (flatten) return ct_tensor_new(CT_SHAPE(rows, d->channels * d->height * d->width));
    return ct_tensor_new(CT_SHAPE(rows, d->channels, d->height, d->width));
}

static void check_options(const ct_dataset *d, const ct_loader_opts *o) {
    const char *op = "ct_loader_new";
    CT_CHECK(o->crop_padding >= 0, op, ".crop_padding must be >= 0 (got %d)", o->crop_padding);
    CT_CHECK(o->pad_mode == CT_PAD_ZERO || o->pad_mode == CT_PAD_REFLECT, op,
             ".pad_mode must be CT_PAD_ZERO or CT_PAD_REFLECT (got %d)", o->pad_mode);
    /* Reflection mirrors without the edge, so it reaches at most size − 1 pixels (torch's limit). */
    CT_CHECK(o->pad_mode != CT_PAD_REFLECT || (o->crop_padding < d->height && o->crop_padding < d->width), op,
             ".crop_padding %d with CT_PAD_REFLECT must be smaller than the image (%dx%d)", o->crop_padding,
             d->height, d->width);
    CT_CHECK(!(o->hflip && o->alternating_flip), op,
             ".hflip and .alternating_flip exclude each other: pick one (.hflip flips each sample with "
             "probability 1/2, .alternating_flip every image in one of each two consecutive epochs)");
    CT_CHECK(o->cutout >= 0, op, ".cutout must be >= 0 (got %d)", o->cutout);
    CT_CHECK(o->views >= 0 && o->views <= 64, op, ".views must be 0..64 (got %d)", o->views);
    CT_CHECK(!o->balanced || d->classes >= 1, op, ".balanced needs the dataset's class count (got %d)", d->classes);
    if (o->normalize) {
        CT_CHECK(d->channels <= CT_LOADER_MAX_CHANNELS, op,
                 ".normalize supports up to %d channels (CT_LOADER_MAX_CHANNELS); the dataset has %d",
                 CT_LOADER_MAX_CHANNELS, d->channels);
        for (int c = 0; c < d->channels; c++) {
            CT_CHECK(o->std[c] > 0 && isfinite(o->std[c]), op, ".std[%d] must be > 0 with .normalize (got %g)", c,
                     (double)o->std[c]);
            CT_CHECK(isfinite(o->mean[c]), op, ".mean[%d] must be finite (got %g)", c, (double)o->mean[c]);
        }
    }
    const int shards = o->shards > 1 ? o->shards : 1, count = o->indices ? o->count : d->n;
    CT_CHECK(o->shards >= 0 && o->shard >= 0 && o->shard < shards, op, ".shard %d of .shards %d: want 0 <= shard < shards",
             o->shard, o->shards);
    CT_CHECK(o->batch % shards == 0, op, ".batch %d (the global batch) does not split over %d shards: give a multiple of %d",
             o->batch, shards, shards);
    CT_CHECK(o->drop_last || count < 1 || count % o->batch % shards == 0, op, "the last batch of %d samples does not split "
             "over %d shards: set .drop_last = 1, or a batch or sample count that makes it a multiple of %d",
             count % o->batch, shards, shards);
    if (o->indices) {
        CT_CHECK(o->count >= 1, op, ".count must be >= 1 with .indices (got %d)", o->count);
        for (int i = 0; i < o->count; i++)
            CT_CHECK(o->indices[i] >= 0 && o->indices[i] < d->n, op,
                     ".indices[%d] = %d is out of range for a dataset of %d samples", i, o->indices[i], d->n);
    }
}

#define LOADER_MAGIC 0x6c6f6164u /* "load" */
#define LOADER_FREED 0x64656164u /* "dead" */

static void check_loader(const ct_loader *l, const char *op) {
    CT_CHECK(l != NULL, op, "the loader is NULL (make one with ct_loader_new)");
    CT_CHECK(l->magic == LOADER_MAGIC, op, "the loader %s (use it before ct_loader_free, free it once)",
             l->magic == LOADER_FREED ? "was freed with ct_loader_free" : "is not a live loader");
}

/* .balanced: the loader's samples (its .indices, or the whole dataset) grouped by class. */
static void balance_classes(ct_loader *l) {
    const ct_dataset *d = l->data;
    const int C = d->classes, n = l->count;
    l->class_start = calloc((size_t)C + 1, sizeof *l->class_start);
    l->class_members = malloc((size_t)n * sizeof *l->class_members);
    l->classes_present = malloc((size_t)C * sizeof *l->classes_present);
    CT_CHECK(l->class_start && l->class_members && l->classes_present, "ct_loader_new", "out of memory");
    for (int i = 0; i < n; i++) {
        const int y = d->labels[l->opts.indices ? l->opts.indices[i] : i];
        CT_CHECK(y >= 0 && y < C, "ct_loader_new", ".balanced: sample %d has label %d outside the %d classes", i, y, C);
        l->class_start[y + 1]++;
    }
    for (int c = 0; c < C; c++) {
        if (l->class_start[c + 1]) l->classes_present[l->n_classes_present++] = c;
        l->class_start[c + 1] += l->class_start[c];
    }
    int *fill = malloc((size_t)C * sizeof *fill);
    CT_CHECK(fill, "ct_loader_new", "out of memory");
    memcpy(fill, l->class_start, (size_t)C * sizeof *fill);
    for (int i = 0; i < n; i++) {
        const int at = l->opts.indices ? l->opts.indices[i] : i;
        l->class_members[fill[d->labels[at]]++] = at;
    }
    free(fill);
}

ct_loader *ct_loader_new(const ct_dataset *d, ct_loader_opts opts) {
    CT_CHECK(d != NULL, "ct_loader_new", "dataset is NULL");
    CT_CHECK(opts.batch >= 1, "ct_loader_new", ".batch must be >= 1 (got %d)", opts.batch);
    CT_CHECK(d->n >= 1 && d->channels >= 1 && d->height >= 1 && d->width >= 1 && d->images && d->labels,
             "ct_loader_new", "dataset is empty or malformed (n=%d, %dx%dx%d)", d->n, d->channels, d->height,
             d->width);
    CT_CHECK((int64_t)d->channels * d->height * d->width <= INT32_MAX, "ct_loader_new",
             "samples of %dx%dx%d are too large", d->channels, d->height, d->width);
    check_options(d, &opts);
    ct_loader *l = calloc(1, sizeof *l);
    CT_CHECK(l != NULL, "ct_loader_new", "out of memory");
    l->magic = LOADER_MAGIC;
    l->data = d;
    l->opts = opts;
    l->count = opts.indices ? opts.count : d->n;
    l->sample_size = (size_t)d->channels * (size_t)d->height * (size_t)d->width;
    /* (x/255 − mean)/std = x·scale + shift, scale = 1/(255·std), shift = −mean/std; in double,
     * rounded once to ct_real. */
    for (int c = 0; c < CT_LOADER_MAX_CHANNELS && opts.normalize && c < d->channels; c++) {
        l->scale[c] = (ct_real)(1.0 / (255.0 * (double)opts.std[c]));
        l->shift[c] = (ct_real)(-(double)opts.mean[c] / (double)opts.std[c]);
    }
    int batch = opts.batch < l->count ? opts.batch : l->count; /* a batch never holds more than count */
    l->order = malloc((size_t)l->count * sizeof *l->order);
    CT_CHECK(l->order != NULL, "ct_loader_new", "out of memory for %d samples", l->count);
    int tail = l->count % opts.batch;
    int slots = opts.prefetch ? 2 : 1;
    l->views = opts.views > 1 ? opts.views : 1;
    l->shards = opts.shards > 1 ? opts.shards : 1, l->shard = opts.shard;
    for (int k = 0; k < slots; k++) {
        slot *s = &l->slots[k];
        s->labels = malloc((size_t)batch * sizeof *s->labels);
        CT_CHECK(s->labels != NULL, "ct_loader_new", "out of memory for %d labels", batch);
        if (l->count >= opts.batch) s->x_full = batch_tensor(d, opts.batch / l->shards * l->views, opts.flatten);
        if (tail && !opts.drop_last) s->x_tail = batch_tensor(d, tail / l->shards * l->views, opts.flatten);
        s->state = SLOT_FREE;
    }
    if (opts.balanced) balance_classes(l);
    ct_rng_seed(&l->rng, opts.seed);
    start_epoch(l);
    l->held = -1;
    if (opts.prefetch) {
        pthread_mutex_init(&l->mutex, NULL);
        pthread_cond_init(&l->ready, NULL);
        pthread_cond_init(&l->freed, NULL);
        /* Without a thread (the system refused one) the loader works synchronously: the same
         * batches, only without the overlap. */
        l->prefetching = pthread_create(&l->worker, NULL, prefetch_worker, l) == 0;
        if (!l->prefetching) {
            pthread_cond_destroy(&l->freed);
            pthread_cond_destroy(&l->ready);
            pthread_mutex_destroy(&l->mutex);
        }
    }
    return l;
}

int ct_loader_batches_per_epoch(const ct_loader *l) {
    check_loader(l, "ct_loader_batches_per_epoch");
    int n = l->count, b = l->opts.batch;
    return l->opts.drop_last ? n / b : n / b + (n % b != 0);
}

double ct_loader_wait_seconds(const ct_loader *l) {
    check_loader(l, "ct_loader_wait_seconds");
    return l->wait_seconds;
}

int ct_loader_prefetching(const ct_loader *l) {
    check_loader(l, "ct_loader_prefetching");
    return l->prefetching;
}

int ct_loader_next(ct_loader *l, ct_batch *b) {
    check_loader(l, "ct_loader_next");
    CT_CHECK(b != NULL, "ct_loader_next", "the batch is NULL (pass the address of a ct_batch)");
    double t0 = ct_time_now();
    slot *s;
    if (l->prefetching) {
        pthread_mutex_lock(&l->mutex);
        if (l->held >= 0) { /* the caller is done with the previous batch */
            l->slots[l->held].state = SLOT_FREE;
            l->held = -1;
            pthread_cond_signal(&l->freed);
        }
        while (l->slots[l->next_slot].state != SLOT_READY) pthread_cond_wait(&l->ready, &l->mutex);
        s = &l->slots[l->next_slot];
        s->state = SLOT_HELD;
        l->held = l->next_slot;
        l->next_slot ^= 1;
        pthread_mutex_unlock(&l->mutex);
    } else {
        s = &l->slots[0];
        produce(l, s, 1);
    }
    if (s->has_batch) {
        b->x = s->x;
        b->y = CT_LABELS(s->labels, s->n);
        b->n = s->n;
        b->index = s->index;
        b->epoch = s->epoch;
    }
    l->wait_seconds += ct_time_now() - t0;
    return s->has_batch;
}

void ct_loader_free(ct_loader *l) {
    if (!l) return;
    check_loader(l, "ct_loader_free");
    if (l->prefetching) {
        stop_worker(l);
        pthread_cond_destroy(&l->freed);
        pthread_cond_destroy(&l->ready);
        pthread_mutex_destroy(&l->mutex);
    }
    for (int k = 0; k < 2; k++) {
        ct_tensor_free(l->slots[k].x_full);
        ct_tensor_free(l->slots[k].x_tail);
        free(l->slots[k].labels);
    }
    free(l->order);
    free(l->class_start), free(l->class_members), free(l->classes_present);
    *(volatile unsigned *)&l->magic = LOADER_FREED; /* volatile: a store before free is otherwise dropped */
    free(l);
}

int ct_loader_seek(ct_loader *l, int epoch, int batch) {
    check_loader(l, "ct_loader_seek");
    const int batches = ct_loader_batches_per_epoch(l);
    if (epoch < 0 || batch < 0 || batch > batches)
        return ct_set_error(CT_ERR_VALUE, "ct_loader_seek: epoch %d, batch %d is not a position of a loader with %d "
                            "batches per epoch", epoch, batch, batches);
    if (l->prefetching) stop_worker(l);
    /* the stream from the start: every epoch's draws replayed (a permutation each: cheap) */
    ct_rng_seed(&l->rng, l->opts.seed);
    l->epoch = 0;
    start_epoch(l);
    while (l->epoch < epoch) {
        l->epoch++;
        start_epoch(l);
    }
    l->batch_index = batch;
    l->pos = batch == batches ? l->count : batch * l->opts.batch;
    if (l->prefetching) {
        for (int k = 0; k < 2; k++) l->slots[k].state = SLOT_FREE;
        l->held = -1, l->next_slot = 0;
        if (pthread_create(&l->worker, NULL, prefetch_worker, l) != 0) { /* as at creation: go on without */
            l->prefetching = 0;
            pthread_cond_destroy(&l->freed);
            pthread_cond_destroy(&l->ready);
            pthread_mutex_destroy(&l->mutex);
        }
    }
    return CT_OK;
}

static int source_next(void *state, ct_tensor **x, ct_labels *y) {
    ct_batch b;
    if (!ct_loader_next(state, &b)) return 0;
    *x = b.x, *y = b.y;
    return 1;
}

static int source_batches(void *state) { return ct_loader_batches_per_epoch(state); }
static int source_seek(void *state, int epoch, int batch) { return ct_loader_seek(state, epoch, batch); }

ct_batch_source ct_loader_source(ct_loader *l) {
    check_loader(l, "ct_loader_source");
    return (ct_batch_source){.state = l, .next = source_next, .batches = source_batches, .seek = source_seek};
}
