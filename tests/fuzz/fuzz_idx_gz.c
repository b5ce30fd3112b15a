/* tests/fuzz/fuzz_idx_gz.c — ct_idx_load_files on gzip'd IDX images (the bounded inflate that
 * reads the header first), and ct_read_file_maybe_gz (the growing one) on the same bytes. Input:
 * fuzz_split into a raw labels file and the .gz images file. */
#include "fuzz.h"

FUZZ_SINGLE_THREAD

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *labels, *images;
    size_t labels_len, images_len;
    fuzz_split(data, size, &labels, &labels_len, &images, &images_len);
    const char *lp = fuzz_path("labels-idx1-ubyte"), *ip = fuzz_path("images-idx3-ubyte.gz");
    fuzz_write(lp, labels, labels_len);
    fuzz_write(ip, images, images_len);
    ct_dataset *d = ct_idx_load_files(ip, lp);
    ct_dataset_free(d);
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (ct_read_file_maybe_gz(ip, &out, &out_len) == CT_OK) {
        if (out_len > CT_GZIP_MAX_BYTES) abort();
        free(out);
    } else if (out) {
        abort(); /* an error leaves nothing behind */
    }
    return 0;
}
