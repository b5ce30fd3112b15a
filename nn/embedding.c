/* nn/embedding.c — the embedding layer on the op of autograd/embedding.c: row i of the table
 * "<name>.weight" (num, dim) for each index i (torch.nn.Embedding, N(0, 1) init). */
#define CT_BUILDING_LIBRARY
#include "layer.h"

typedef struct {
    ct_module base;
    ct_tensor *weight; /* (num, dim) */
} embedding_module;

/* The input of an embedding is integer indices, which a ct_tensor of reals cannot carry. */
static ct_tensor *embedding_forward_tensor(ct_tape *tape, ct_module *self, ct_tensor *x) {
    (void)tape, (void)x;
    ct_fatal(self->name, "an embedding takes integer indices, not a tensor: call "
             "ct_embedding_forward(tape, module, indices, index_shape) instead of ct_forward");
}

ct_module *ct_embedding_new(ct_model *m, const char *name, int num, int dim) {
    static const char *op = "ct_embedding_new";
    CT_CHECK(num > 0 && dim > 0, op, "%s: sizes must be positive, got %d x %d", name ? name : "(null)", num, dim);
    embedding_module *e = ct_module_new(m, sizeof *e, "embedding", name, embedding_forward_tensor);
    e->weight = ct_module_add_param(m, &e->base, "weight", CT_SHAPE(num, dim));
    ct_tensor_fill_normal(e->weight, ct_model_rng(m), 0, 1);
    return &e->base;
}

ct_tensor *ct_embedding_forward(ct_tape *tape, ct_module *emb, const int *indices, ct_shape index_shape) {
    embedding_module *e = ct_module_as(emb, "embedding", "ct_embedding_forward");
    return ct_embedding(tape, e->weight, indices, index_shape);
}
