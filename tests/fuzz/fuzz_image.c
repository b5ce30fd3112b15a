/* tests/fuzz/fuzz_image.c — one image file through ct_image_folder_load (the checks of
 * data/image_check.c, then stb_image, then the resize). Input: one option byte, then the file.
 * The option byte picks the extension (low 4 bits, mod 9: which format the content must be),
 * 1 or 3 channels (bit 4), a resize to 5×7 (bit 5) and .skip_unreadable (bit 6). Images are
 * capped at FUZZ_MAX_PIXELS so an input stays fast: a 4 KiB PNG can declare a megapixel of
 * zeros, and decoding it under ASan took most of the time at a cap of 2^20. */
#include "fuzz.h"

FUZZ_SINGLE_THREAD

enum { FUZZ_MAX_PIXELS = 1 << 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const ext[9] = {"png", "jpg", "jpeg", "bmp", "tga", "gif", "pnm", "ppm", "pgm"};
    if (size < 1) return 0;
    const int opt = data[0];
    char name[32];
    snprintf(name, sizeof name, "img/c/x.%s", ext[(opt & 15) % 9]);
    fuzz_mkdir(fuzz_path("img"));
    fuzz_mkdir(fuzz_path("img/c"));
    const char *file = fuzz_path(name);
    fuzz_write(file, data + 1, size - 1);
    const int resize = (opt >> 5) & 1;
    ct_image_folder_opts o = CT_IMAGE_FOLDER(.channels = (opt >> 4) & 1 ? 3 : 1, .height = resize ? 5 : 0,
                                             .width = resize ? 7 : 0, .skip_unreadable = (opt >> 6) & 1,
                                             .max_pixels = FUZZ_MAX_PIXELS);
    ct_dataset *d = ct_image_folder_load(fuzz_path("img"), o);
    if (d) {
        if (d->n != 1 || d->height < 1 || d->width < 1 || (int64_t)d->height * d->width > FUZZ_MAX_PIXELS) abort();
        unsigned sum = 0; /* every byte readable (ASan) */
        for (size_t i = 0; i < (size_t)d->channels * d->height * d->width; i++) sum += d->images[i];
        (void)sum;
    }
    ct_dataset_free(d);
    unlink(file);
    return 0;
}
