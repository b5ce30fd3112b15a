/* tests/fuzz/fuzz_cifar10.c — ct_cifar10_load on one .bin file, with a class names file
 * beside it. Input: fuzz_split into the names file and the data file. */
#include "fuzz.h"

FUZZ_SINGLE_THREAD

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *names, *bin;
    size_t names_len, bin_len;
    fuzz_split(data, size, &names, &names_len, &bin, &bin_len);
    fuzz_write(fuzz_path("batches.meta.txt"), names, names_len);
    fuzz_write(fuzz_path("data.bin"), bin, bin_len);
    ct_dataset *d = ct_cifar10_load(fuzz_path("data.bin"), NULL);
    if (d)
        for (int i = 0; i < d->n; i++)
            if (d->labels[i] < 0 || d->labels[i] >= d->classes) abort();
    ct_dataset_free(d);
    return 0;
}
