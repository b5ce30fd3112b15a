/* tests/fuzz/fuzz_checkpoint_load.c — a safetensors file through ct_checkpoint_load: a model's
 * parameters and buffer, and the state of an Adam optimizer (two state tensors per parameter,
 * scalars in the metadata) with a plateau tracker attached. */
#include "fuzz.h"

static ct_optim *opt;
static ct_plateau plateau;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ct_set_threads(1);
    ct_model *m = fuzz_small_model(1);
    opt = ct_adam_new(m, CT_ADAM(.lr = 1e-3));
    plateau = ct_plateau_new(1e-3, CT_PLATEAU());
    ct_plateau_attach(&plateau, opt);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("checkpoint.safetensors");
    fuzz_write(path, data, size);
    const int rc = ct_checkpoint_load(opt, path);
    /* a status, never anything else (a load's status comes from the format's codes) */
    if (rc != CT_OK && rc != CT_ERR_IO && rc != CT_ERR_FORMAT && rc != CT_ERR_VALUE && rc != CT_ERR_MEMORY) abort();
    return 0;
}
