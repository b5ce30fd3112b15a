/* tests/fuzz/fuzz_ema_load.c — a safetensors file through ct_ema_load (the averages under the
 * parameters' names, the update count in the metadata). */
#include "fuzz.h"

static ct_ema *ema;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ct_set_threads(1);
    ct_model *m = fuzz_small_model(0);
    ema = ct_ema_new(m, CT_EMA(.decay = 0.9));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("ema.safetensors");
    fuzz_write(path, data, size);
    const int rc = ct_ema_load(ema, path);
    /* a status, never anything else (a load's status comes from the format's codes) */
    if (rc != CT_OK && rc != CT_ERR_IO && rc != CT_ERR_FORMAT && rc != CT_ERR_VALUE && rc != CT_ERR_MEMORY) abort();
    return 0;
}
