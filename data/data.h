/* data/data.h — datasets kept as bytes in memory, converted to tensors a batch at a time.
 * Loaders never exit: on a missing, truncated or malformed file they return NULL and
 * ct_last_error() names the file and the problem. */
#ifndef CTAPE_DATA_DATA_H
#define CTAPE_DATA_DATA_H

#include "../core/core.h"

/* n images of channels×height×width bytes (row-major, channel-major per image) and n labels. */
typedef struct {
    uint8_t *images;
    int *labels;
    int n, channels, height, width;
    int classes;         /* the number of classes: fixed by the format (CIFAR, folders), else 1 + largest label */
    char **class_names;  /* `classes` names when the format gives them (CIFAR meta files, folder names), else NULL */
    int skipped;         /* image folders with .skip_unreadable: files left out because they did not decode */
    char **file_names;   /* image folders: the path of each sample's file (n of them), else NULL */
    char **skipped_files; /* image folders: the paths of the `skipped` files, else NULL */
    int *clean_labels;   /* after ct_dataset_label_noise: the labels before the noise (n), else NULL */
    char source[512];
} ct_dataset;

/* IDX files (MNIST, Fashion-MNIST, KMNIST), raw or .gz. `split` names the file prefix:
 * "train" -> train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]; "test" or "t10k" ->
 * t10k-*; any other prefix ("train10k") is used as is. */
ct_dataset *ct_idx_load(const char *dir, const char *split);
ct_dataset *ct_idx_load_files(const char *images_path, const char *labels_path);
void ct_dataset_free(ct_dataset *d);

/* CIFAR-10 binary: 3073-byte records (label byte, then 1024 R, 1024 G, 1024 B bytes of a
 * 32×32 image), no header. `path` is one .bin file (split ignored, may be NULL) or a directory
 * holding the official set: split "train" reads data_batch_1.bin … data_batch_5.bin in order,
 * "test" reads test_batch.bin. A directory holding cifar-10-batches-bin/ is looked into.
 * Class names come from batches.meta.txt beside the data when present. */
ct_dataset *ct_cifar10_load(const char *path, const char *split);

/* CIFAR-100 binary: 3074-byte records (coarse label, fine label, 3072 pixel bytes). `path` is a
 * .bin file or a directory with train.bin / test.bin (or cifar-100-binary/ inside it).
 * labels picks which label goes into d->labels (100 fine classes or 20 coarse superclasses);
 * names come from fine_label_names.txt / coarse_label_names.txt when present. */
typedef enum { CT_CIFAR100_FINE = 0, CT_CIFAR100_COARSE = 1 } ct_cifar100_labels;
ct_dataset *ct_cifar100_load(const char *path, const char *split, ct_cifar100_labels labels);

/* Image folders: dir/<class>/<image>, one subfolder per class. Classes are the subfolders in
 * byte-wise sorted order (label 0 is the first), files sorted the same way within each; files
 * whose extension is not .png .jpg .jpeg .bmp .tga .gif .pnm .ppm .pgm (any case) and names
 * starting with '.' are ignored. Decoded with stb_image (a GIF gives its first frame) after
 * checks that refuse hostile files: the content must be the format the extension names, its
 * declared size non-zero and at most max_pixels, the file not truncated (where cheap to tell),
 * JPEG Huffman tables valid (data/image_check.c). */
typedef struct {
    int channels;         /* 1 (grayscale) or 3 (RGB); default 3 */
    int height, width;    /* > 0: every image resized to height×width (stb_image_resize);
                             0: all images must already share one size (else an error naming the file) */
    int skip_unreadable;  /* 1: leave out files that fail to read, decode or pass the checks: d->skipped
                             counts them, d->skipped_files names them */
    int64_t max_pixels;   /* width × height an image may declare; 0 (the default): CT_IMAGE_MAX_PIXELS */
} ct_image_folder_opts;
/* PIL's MAX_IMAGE_PIXELS (it warns past this and refuses past twice this); refused here. */
#define CT_IMAGE_MAX_PIXELS ((int64_t)89478485)
#define CT_IMAGE_FOLDER(...) \
    CT_WITH_DEFAULTS(ct_image_folder_opts, (.channels = 3, .height = 0, .width = 0, .skip_unreadable = 0), __VA_ARGS__)
ct_dataset *ct_image_folder_load(const char *dir, ct_image_folder_opts opts);

/* A new dataset holding copies of the samples at `indices` (in that order); class count and
 * names are kept. NULL with ct_last_error() on an index out of range. */
ct_dataset *ct_dataset_subset(const ct_dataset *d, const int *indices, int n);

/* Splits d into a training and a validation part: a seeded random permutation, the first
 * round(n * val_fraction) samples to *val, the rest to *train (both copies; d is unchanged).
 * val_fraction in (0, 1) and both parts non-empty, else an error. Returns CT_OK or a code. */
int ct_dataset_split(const ct_dataset *d, double val_fraction, uint64_t seed, ct_dataset **train, ct_dataset **val);

/* Per-channel mean and standard deviation (population, over every pixel of every image) of
 * the pixels scaled to [0, 1]: the numbers a normalisation wants. mean and std hold d->channels. */
void ct_dataset_channel_stats(const ct_dataset *d, float *mean, float *std);

/* Reads a whole file, inflating it when it is gzip (by magic, not by name). The caller frees
 * *out. Returns CT_OK or an error code with ct_last_error() set. A .gz file may inflate to at
 * most CT_GZIP_MAX_BYTES (1 GiB; the IDX loader reads raw files of any size, so gunzip larger
 * ones first), and to at most 1032 times its own size (deflate's limit: more is corruption). */
#define CT_GZIP_MAX_BYTES ((uint64_t)1 << 30)
int ct_read_file_maybe_gz(const char *path, uint8_t **out, size_t *len);

/* CRC-32 as gzip and PNG use it: ct_crc32(0, buf, n), or chain calls passing the last result. */
uint32_t ct_crc32(uint32_t crc, const void *data, size_t len);

/* Mini-batches: x (batch, channels, height, width), or (batch, c·h·w) with .flatten; labels
 * alongside. Each sample goes through, in torchvision's order:
 *   1. bytes scaled to [0, 1] (byte / 255, as ToTensor);
 *   2. random crop (.crop_padding > 0): pad every side by crop_padding (zeros, or a mirror
 *      image of the border without repeating it with CT_PAD_REFLECT), then cut out a window of
 *      the original size at a uniformly random offset (RandomCrop(size, padding, padding_mode));
 *      airbench's "translate by 2 with reflect padding" is .crop_padding = 2 with CT_PAD_REFLECT;
 *   3. horizontal flip with probability 1/2 (.hflip; RandomHorizontalFlip), or the alternating
 *      flip (.alternating_flip; Jordan 2024, airbench): each image of the dataset has one coin,
 *      drawn once from the seed and its index in the dataset; in even epochs (0, 2, ...) the
 *      images whose coin came up are flipped, in odd epochs all the others, so over any two
 *      consecutive epochs every image is seen once each way (.hflip and .alternating_flip
 *      exclude each other; every view of a sample is flipped alike; airbench flips before its
 *      translation, which gives the same distribution since the offsets are symmetric);
 *   4. normalisation (.normalize): (x − mean[c]) / std[c] per channel (Normalize);
 *   5. cutout (.cutout = side > 0; DeVries & Taylor 2017): a side×side square around a uniformly
 *      random centre pixel, clipped at the borders, set to 0 after normalisation (for an odd
 *      side the authors' code zeroes (side−1)×(side−1); even sides, as their 16, agree).
 * The order of samples is a permutation drawn per epoch from the seed; every random choice of
 * sample i in batch b of epoch e comes from an RNG seeded by (seed, e, b, i), so the same seed
 * gives the same batches on every machine, with or without the background thread. */
enum { CT_PAD_ZERO = 0, CT_PAD_REFLECT = 1 };
enum { CT_LOADER_MAX_CHANNELS = 4 };
typedef struct {
    int batch;
    int shuffle;
    uint64_t seed;
    int drop_last;  /* drop a last batch smaller than `batch` */
    int flatten;
    const int *indices;  /* when not NULL, the loader draws only these samples (a subset; borrowed) */
    int count;           /* how many indices (ignored without .indices) */
    int crop_padding;
    int pad_mode;        /* CT_PAD_ZERO or CT_PAD_REFLECT */
    int hflip;
    int alternating_flip;
    int normalize;       /* use mean[] and std[] (one per channel; std > 0) */
    float mean[CT_LOADER_MAX_CHANNELS], std[CT_LOADER_MAX_CHANNELS];
    int cutout;
    int prefetch;        /* prepare the next batch in a background thread while the caller trains (if the
                            thread cannot be started, batches are made in the call: the same batches) */
    int views;           /* 0 or 1: one view per sample. 2 or more (SupCon): x holds views·n rows,
                            sample-major (row views·i + v is view v of sample i, each with its own random
                            crop, flip and cutout; view 0 is the one-view sample), so a model's
                            (views·n, D) output reshapes to (n, views, D); y still holds the n labels */
    int balanced;        /* class-balanced sampling: each epoch draws its samples with replacement, a
                            class uniformly then a sample of it uniformly (weights 1/n_class, as
                            torch's WeightedRandomSampler with replacement); the epoch keeps its size */
    int shard, shards;   /* data-parallel ranks (core/dist.h; shards 0 or 1: off): .batch is the global batch,
                            drawn as without sharding from the same seed, and this loader gives its shard-th
                            of .shards equal slices, batch/shards samples each, with the random choices of
                            their places in the global batch, so the global batches (and the run) do not
                            depend on the number of ranks. The batch, and a last batch that is kept, must
                            split evenly (fatal otherwise). Typically .shard = ct_dist_rank(),
                            .shards = ct_dist_world_size(). */
} ct_loader_opts;
#define CT_LOADER(...) \
    CT_WITH_DEFAULTS(ct_loader_opts, (.batch = 64, .shuffle = 1, .seed = 0, .drop_last = 0, .flatten = 0), __VA_ARGS__)

typedef struct {
    ct_tensor *x;   /* owned by the loader, valid until the next call */
    ct_labels y;
    int n;          /* samples in this batch */
    int index;      /* batch number within the epoch */
    int epoch;
} ct_batch;

typedef struct ct_loader ct_loader;
/* The loader borrows d: free the dataset after the loader. */
ct_loader *ct_loader_new(const ct_dataset *d, ct_loader_opts opts);
/* Fills *b and returns 1; returns 0 once at the end of each epoch (the next call starts the
 * next epoch, reshuffled). */
int ct_loader_next(ct_loader *l, ct_batch *b);
int ct_loader_batches_per_epoch(const ct_loader *l);
/* Puts the loader where a fresh one with the same options is before batch `batch` (0 .. batches per
 * epoch) of epoch `epoch`: the next ct_loader_next gives that batch, the same as in the run from
 * the start (how a resumed training run continues exactly). CT_OK, or CT_ERR_VALUE for a position
 * the loader does not have. */
int ct_loader_seek(ct_loader *l, int epoch, int batch);
/* Seconds the caller spent inside ct_loader_next since the loader was made: the time a
 * training loop waited for data. */
double ct_loader_wait_seconds(const ct_loader *l);
/* 1 when batches are prepared by the background thread: .prefetch was asked for and the system
 * gave a thread (without one the loader works synchronously, with the same batches). */
int ct_loader_prefetching(const ct_loader *l);
void ct_loader_free(ct_loader *l);
/* The loader as a batch source for the trainer (the source borrows the loader). */
ct_batch_source ct_loader_source(ct_loader *l);

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_idx_load(...) CT_SITE_CALL_CLEARING(ct_idx_load, __VA_ARGS__)
#define ct_idx_load_files(...) CT_SITE_CALL_CLEARING(ct_idx_load_files, __VA_ARGS__)
#define ct_dataset_free(...) CT_SITE_CALL_VOID(ct_dataset_free, __VA_ARGS__)
#define ct_cifar10_load(...) CT_SITE_CALL_CLEARING(ct_cifar10_load, __VA_ARGS__)
#define ct_cifar100_load(...) CT_SITE_CALL_CLEARING(ct_cifar100_load, __VA_ARGS__)
#define ct_image_folder_load(...) CT_SITE_CALL_CLEARING(ct_image_folder_load, __VA_ARGS__)
#define ct_dataset_subset(...) CT_SITE_CALL_CLEARING(ct_dataset_subset, __VA_ARGS__)
#define ct_dataset_split(...) CT_SITE_CALL_CLEARING(ct_dataset_split, __VA_ARGS__)
#define ct_dataset_channel_stats(...) CT_SITE_CALL_VOID(ct_dataset_channel_stats, __VA_ARGS__)
#define ct_read_file_maybe_gz(...) CT_SITE_CALL_CLEARING(ct_read_file_maybe_gz, __VA_ARGS__)
#define ct_crc32(...) CT_SITE_CALL(ct_crc32, __VA_ARGS__)
#define ct_loader_new(...) CT_SITE_CALL(ct_loader_new, __VA_ARGS__)
#define ct_loader_next(...) CT_SITE_CALL(ct_loader_next, __VA_ARGS__)
#define ct_loader_batches_per_epoch(...) CT_SITE_CALL(ct_loader_batches_per_epoch, __VA_ARGS__)
#define ct_loader_seek(...) CT_SITE_CALL_CLEARING(ct_loader_seek, __VA_ARGS__)
#define ct_loader_wait_seconds(...) CT_SITE_CALL(ct_loader_wait_seconds, __VA_ARGS__)
#define ct_loader_prefetching(...) CT_SITE_CALL(ct_loader_prefetching, __VA_ARGS__)
#define ct_loader_free(...) CT_SITE_CALL_VOID(ct_loader_free, __VA_ARGS__)
#endif

#endif
