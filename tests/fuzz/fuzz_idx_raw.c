/* tests/fuzz/fuzz_idx_raw.c — ct_idx_load_files on raw IDX files. Input: a labels file and an
 * images file (fuzz_split: 2-byte length of the labels, the labels, the images). */
#include "fuzz.h"

FUZZ_SINGLE_THREAD

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *labels, *images;
    size_t labels_len, images_len;
    fuzz_split(data, size, &labels, &labels_len, &images, &images_len);
    const char *lp = fuzz_path("labels-idx1-ubyte"), *ip = fuzz_path("images-idx3-ubyte");
    fuzz_write(lp, labels, labels_len);
    fuzz_write(ip, images, images_len);
    ct_dataset *d = ct_idx_load_files(ip, lp);
    if (d) {
        /* every label counted in the classes, every pixel readable */
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)d->n * d->height * d->width; i++) sum += d->images[i];
        for (int i = 0; i < d->n; i++)
            if (d->labels[i] < 0 || d->labels[i] >= d->classes) abort();
        (void)sum;
    }
    ct_dataset_free(d);
    return 0;
}
