/* data/data.h — datasets kept as bytes in memory, converted to tensors a batch at a time.
 * Loaders never exit: on a missing, truncated or malformed file they return NULL and
 * ct_last_error() names the file and the problem. */
#ifndef CTAPE_DATA_DATA_H
#define CTAPE_DATA_DATA_H

#include "../core/tensor.h"

/* n images of channels×height×width bytes (row-major, channel-major per image) and n labels. */
typedef struct {
    uint8_t *images;
    int *labels;
    int n, channels, height, width;
    int classes;   /* 1 + the largest label */
    char source[512];
} ct_dataset;

/* IDX files (MNIST, Fashion-MNIST, KMNIST), raw or .gz. `split` names the file prefix:
 * "train" -> train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]; "test" or "t10k" ->
 * t10k-*; any other prefix ("train10k") is used as is. */
ct_dataset *ct_idx_load(const char *dir, const char *split);
ct_dataset *ct_idx_load_files(const char *images_path, const char *labels_path);
void ct_dataset_free(ct_dataset *d);

/* Reads a whole file, inflating it when it is gzip (by magic, not by name). The caller frees
 * *out. Returns CT_OK or an error code with ct_last_error() set. */
int ct_read_file_maybe_gz(const char *path, uint8_t **out, size_t *len);

/* CRC-32 as gzip and PNG use it: ct_crc32(0, buf, n), or chain calls passing the last result. */
uint32_t ct_crc32(uint32_t crc, const void *data, size_t len);

/* Mini-batches: x (batch, channels, height, width) scaled to [0, 1], or (batch, c·h·w) with
 * .flatten; labels alongside. Shuffled per epoch from the seed: the same seed gives the same
 * batches on every machine. */
typedef struct {
    int batch;
    int shuffle;
    uint64_t seed;
    int drop_last;  /* drop a last batch smaller than `batch` */
    int flatten;
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
void ct_loader_free(ct_loader *l);

#endif
