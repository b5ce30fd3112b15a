/* nn/layer.h — writing a layer: the header for layer authors (installed with the others).
 *
 * A layer is a struct whose first member is a ct_module, a forward on the tape, and a constructor
 * that checks its arguments, makes the struct with ct_module_new and registers its parameters
 * under the layer's name. Every layer in nn/ is written this way; a scaled linear map, y = s·x·Wᵀ:
 *
 *     typedef struct {
 *         ct_module base;        // first: a scaled_module * is a ct_module *
 *         ct_tensor *weight;     // (out, in), owned by the model
 *         double scale;
 *     } scaled_module;
 *
 *     // y = s·x·Wᵀ, x (N, in) -> (N, out)
 *     static ct_tensor *scaled_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
 *         scaled_module *s = (scaled_module *)self;
 *         return ct_mul_scalar(tape, ct_linear(tape, x, s->weight, NULL), s->scale);
 *     }
 *
 *     ct_module *scaled_new(ct_model *m, const char *name, int in, int out, double scale) {
 *         scaled_module *s = ct_module_new(m, sizeof *s, "scaled", name, scaled_forward);
 *         s->weight = ct_module_add_param(m, &s->base, "weight", CT_SHAPE(out, in)); // "<name>.weight"
 *         ct_init_kaiming_uniform(s->weight, ct_model_rng(m), sqrt(5.0), CT_FAN_IN);
 *         s->scale = scale;
 *         return &s->base;
 *     }
 *
 * Then ct_forward(tape, layer, x) runs it, ct_model_summary lists it, ct_model_train reaches it,
 * ct_model_save names its parameters, and ct_model_free frees it. A layer that holds memory of its
 * own (a list of children) sets base.destroy to a function that frees that memory and the struct.
 * Backward code is written for ops (autograd/op.h), never for layers. */
#ifndef CTAPE_NN_LAYER_H
#define CTAPE_NN_LAYER_H

#include "nn.h"

typedef ct_tensor *(*ct_forward_fn)(ct_tape *tape, ct_module *self, ct_tensor *x);

/* A zeroed layer struct of `size` bytes (ct_module first, size >= sizeof(ct_module)) with its kind
 * (a string that outlives the model: a literal), a copy of name, forward (NULL for a layer with
 * another entry point, as the embedding), training = 1 and a destroy that frees the struct,
 * registered with m, which owns it from now on (ct_model_add_module). Fatal when m is NULL or
 * name is NULL or over 95 characters. */
void *ct_module_new(ct_model *m, size_t size, const char *kind, const char *name, ct_forward_fn forward);

/* Registers the parameter "<module name>.<what>" on m (zero-filled, with a gradient buffer), or the
 * buffer (no gradient: running statistics), as ct_model_add_param and ct_model_add_buffer do. */
ct_tensor *ct_module_add_param(ct_model *m, const ct_module *mod, const char *what, ct_shape shape);
ct_tensor *ct_module_add_buffer(ct_model *m, const ct_module *mod, const char *what, ct_shape shape);

/* mod as the layer struct of `kind` (compared by string): fatal, naming op, when mod is NULL or
 * of another kind. For a layer's own accessors (ct_linear_weight, ct_sequential_add). */
void *ct_module_as(const ct_module *mod, const char *kind, const char *op);

#ifndef CT_BUILDING_LIBRARY
#define ct_module_new(...) CT_SITE_CALL(ct_module_new, __VA_ARGS__)
#define ct_module_add_param(...) CT_SITE_CALL(ct_module_add_param, __VA_ARGS__)
#define ct_module_add_buffer(...) CT_SITE_CALL(ct_module_add_buffer, __VA_ARGS__)
#define ct_module_as(...) CT_SITE_CALL(ct_module_as, __VA_ARGS__)
#endif

#endif
