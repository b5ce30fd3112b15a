/* tests/fuzz/fuzz_model_load.c — a safetensors file through ct_safetensors_try_open (and its
 * accessors) and ct_model_load into a small model (two linear layers and a buffer); a file the
 * open refuses must fail the model load with the same status. */
#include "fuzz.h"

static ct_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ct_set_threads(1);
    model = fuzz_small_model(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.safetensors");
    fuzz_write(path, data, size);
    ct_safetensors *f = NULL;
    const int open_rc = ct_safetensors_try_open(path, &f);
    if ((open_rc == CT_OK) != (f != NULL)) abort(); /* a handle exactly when the status says so */
    if (f) {
        for (int i = 0; i < ct_safetensors_count(f); i++) {
            if (!ct_safetensors_name(f, i) || !ct_safetensors_dtype(f, i)) abort();
            (void)ct_safetensors_shape(f, i);
        }
        (void)ct_safetensors_metadata(f, "format");
        ct_safetensors_close(f);
    } else if (open_rc != CT_ERR_FORMAT && open_rc != CT_ERR_IO && open_rc != CT_ERR_MEMORY) {
        abort();
    }
    const int load_rc = ct_model_load(model, path);
    if (open_rc != CT_OK && load_rc != open_rc) abort(); /* the file's status reaches the model load */
    return 0;
}
