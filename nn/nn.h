/* nn/nn.h — layers as modules, and the model that names and owns their parameters.
 *
 * A ct_model is the parameter registry: every parameter is a heap tensor with a persistent grad
 * and a name that follows the composition ("fc1.weight"), so optimizers walk one flat list and
 * checkpoints are addressed by name. Layers are ct_modules owned by the model. */
#ifndef CTAPE_NN_NN_H
#define CTAPE_NN_NN_H

#include "../autograd/ops.h"

typedef struct ct_model ct_model;
typedef struct ct_module ct_module;

/* A layer: a name, a forward on the tape, and its parameters (registered on the model). */
struct ct_module {
    const char *kind;          /* "linear" */
    char name[64];             /* "fc1" */
    ct_tensor *(*forward)(ct_tape *tape, ct_module *self, ct_tensor *x);
    void (*destroy)(ct_module *self);
    int training;              /* 1 in training mode, 0 in evaluation */
};

/* The model starts with seed 0 for initialisation; set another before adding layers. */
ct_model *ct_model_new(void);
void ct_model_free(ct_model *m);
void ct_model_set_seed(ct_model *m, uint64_t seed);
ct_rng *ct_model_rng(ct_model *m);

/* Registers a zero-filled parameter with a grad buffer under `name`; fatal on a duplicate. */
ct_tensor *ct_model_add_param(ct_model *m, const char *name, ct_shape shape);
int ct_model_param_count(const ct_model *m);
ct_tensor *ct_model_param(const ct_model *m, int i);
ct_tensor *ct_model_find_param(const ct_model *m, const char *name); /* NULL when absent */
size_t ct_model_num_elements(const ct_model *m);                   /* total parameter count */
void ct_model_zero_grad(ct_model *m);
/* Takes ownership of a module (freed with the model). */
ct_module *ct_model_add_module(ct_model *m, ct_module *mod);
void ct_model_train(ct_model *m, int training); /* reaches every module */

/* Runs a module's forward. */
ct_tensor *ct_forward(ct_tape *tape, ct_module *mod, ct_tensor *x);

/* Linear layer y = x·Wᵀ + b, W (out, in), b (out), PyTorch's default init:
 * W ~ U(−1/√in, 1/√in) (Kaiming-uniform with a = √5), b ~ U(−1/√in, 1/√in).
 * Parameters "<name>.weight" and "<name>.bias". */
ct_module *ct_linear_new(ct_model *m, const char *name, int in, int out);
ct_module *ct_linear_new_nobias(ct_model *m, const char *name, int in, int out);
ct_tensor *ct_linear_weight(ct_module *linear);
ct_tensor *ct_linear_bias(ct_module *linear); /* NULL without bias */

#endif
