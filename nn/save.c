/* nn/save.c — a model's parameters and buffers in a safetensors file (core/safetensors.h has
 * the format, the checks a load makes and the atomic write), with the list of them and the
 * metadata the files holding a model share: ct_model_save/load here, ct_checkpoint_* in optim/
 * (list and metadata), ct_ema_save (the metadata). */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <stdlib.h>

int ct_model_tensor_count(const ct_model *m) { return ct_model_param_count(m) + ct_model_buffer_count(m); }

void ct_model_tensors(const ct_model *m, ct_tensor **out) {
    CT_CHECK(out, "ct_model_tensors", "NULL out (room for ct_model_tensor_count tensors)");
    const int np = ct_model_param_count(m), nb = ct_model_buffer_count(m);
    for (int i = 0; i < np; i++) out[i] = ct_model_param(m, i);
    for (int i = 0; i < nb; i++) out[np + i] = ct_model_buffer(m, i);
}

/* "format": "pt" is what safetensors.torch's loader looks for. */
static const char *const model_metadata[] = {"format", "pt", "framework", "ctape", NULL};
const char *const *ct_model_metadata(void) { return model_metadata; }

/* ct_model_tensors into a malloc'd array (*n of them); NULL when out of memory. */
static ct_tensor **model_tensors(const ct_model *m, int *n) {
    *n = ct_model_tensor_count(m);
    ct_tensor **all = malloc((size_t)(*n ? *n : 1) * sizeof *all);
    if (all) ct_model_tensors(m, all);
    return all;
}

int ct_model_save(const ct_model *m, const char *path) {
    CT_CHECK(m && path, "ct_model_save", "NULL model or path");
    int n;
    ct_tensor **all = model_tensors(m, &n);
    if (!all) return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    int rc = ct_safetensors_check_finite(path, n, NULL, all);
    if (rc == CT_OK) rc = ct_safetensors_write(path, n, NULL, all, model_metadata);
    free(all);
    return rc;
}

int ct_model_load(ct_model *m, const char *path) {
    CT_CHECK(m && path, "ct_model_load", "NULL model or path");
    ct_safetensors *f;
    int rc = ct_safetensors_try_open(path, &f);
    if (rc != CT_OK) return rc;
    int n;
    ct_tensor **all = model_tensors(m, &n);
    rc = all ? ct_safetensors_load_into(f, "model", n, NULL, all, NULL, NULL)
             : ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    free(all);
    ct_safetensors_close(f);
    return rc;
}
