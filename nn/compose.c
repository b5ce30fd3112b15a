/* nn/compose.c — building models out of modules: sequential, residual, flatten and activation
 * layers (the Keras-style summary is in nn/model.c). */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <stdlib.h>
#include <string.h>

/* ---- sequential: y = f_n(... f_2(f_1(x))) --------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_module **children;
    int n, cap;
} sequential_module;

static ct_tensor *sequential_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    sequential_module *s = (sequential_module *)self;
    for (int i = 0; i < s->n; i++) x = ct_forward(tape, s->children[i], x);
    return x;
}

static void sequential_destroy(ct_module *self) {
    free(((sequential_module *)self)->children);
    free(self);
}

ct_module *ct_sequential_new(ct_model *m, const char *name) {
    sequential_module *s = ct_module_new(m, sizeof *s, "sequential", name, sequential_forward);
    s->base.destroy = sequential_destroy;
    return &s->base;
}

static sequential_module *as_sequential(const ct_module *mod, const char *op) {
    return ct_module_as(mod, "sequential", op);
}

ct_module *ct_sequential_add(ct_module *seq, ct_module *child) {
    sequential_module *s = as_sequential(seq, "ct_sequential_add");
    CT_CHECK(child && child != seq, "ct_sequential_add", "%s: child is NULL or the sequential itself", seq->name);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        ct_module **grown = realloc(s->children, (size_t)s->cap * sizeof *grown);
        if (!grown) ct_fatal("ct_sequential_add", "out of memory");
        s->children = grown;
    }
    s->children[s->n++] = child;
    return seq;
}

int ct_sequential_size(const ct_module *seq) { return as_sequential(seq, "ct_sequential_size")->n; }

ct_module *ct_sequential_child(const ct_module *seq, int i) {
    sequential_module *s = as_sequential(seq, "ct_sequential_child");
    CT_CHECK(i >= 0 && i < s->n, "ct_sequential_child", "%s: index %d out of range (%d children)", seq->name, i, s->n);
    return s->children[i];
}

/* ---- residual: y = x + inner(x) ----------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_module *inner;
} residual_module;

static ct_tensor *residual_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    residual_module *r = (residual_module *)self;
    ct_tensor *y = ct_forward(tape, r->inner, x);
    CT_CHECK(y->ndim == x->ndim && y->size == x->size, self->name,
             "residual: inner %s maps %s to %s; the shapes must agree", r->inner->name,
             ct_tensor_shape_str(x, (char[96]){0}, 96), ct_tensor_shape_str(y, (char[96]){0}, 96));
    return ct_add(tape, x, y);
}

ct_module *ct_residual_new(ct_model *m, const char *name, ct_module *inner) {
    CT_CHECK(inner, "ct_residual_new", "%s: inner module is NULL", name);
    residual_module *r = ct_module_new(m, sizeof *r, "residual", name, residual_forward);
    r->inner = inner;
    return &r->base;
}

/* ---- flatten: (N, d1, d2, ...) -> (N, d1·d2·...), a view --------------------------------- */
static ct_tensor *flatten_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    CT_CHECK(x->ndim >= 1, self->name, "flatten needs a batch dimension, got a scalar");
    return ct_reshape(tape, x, CT_SHAPE(x->shape[0], -1));
}

ct_module *ct_flatten_new(ct_model *m, const char *name) {
    return ct_module_new(m, sizeof(ct_module), "flatten", name, flatten_forward);
}

/* ---- activations as layers ---------------------------------------------------------------- */
static ct_tensor *relu_forward(ct_tape *t, ct_module *self, ct_tensor *x) { (void)self; return ct_relu(t, x); }
static ct_tensor *gelu_forward(ct_tape *t, ct_module *self, ct_tensor *x) { (void)self; return ct_gelu(t, x); }
static ct_tensor *tanh_forward(ct_tape *t, ct_module *self, ct_tensor *x) { (void)self; return ct_tanh(t, x); }
static ct_tensor *sigmoid_forward(ct_tape *t, ct_module *self, ct_tensor *x) { (void)self; return ct_sigmoid(t, x); }

static ct_module *activation_new(ct_model *m, const char *name, const char *kind, ct_forward_fn forward) {
    return ct_module_new(m, sizeof(ct_module), kind, name, forward);
}

ct_module *ct_relu_layer_new(ct_model *m, const char *name) { return activation_new(m, name, "relu", relu_forward); }
ct_module *ct_gelu_layer_new(ct_model *m, const char *name) { return activation_new(m, name, "gelu", gelu_forward); }
ct_module *ct_tanh_layer_new(ct_model *m, const char *name) { return activation_new(m, name, "tanh", tanh_forward); }
ct_module *ct_sigmoid_layer_new(ct_model *m, const char *name) { return activation_new(m, name, "sigmoid", sigmoid_forward); }
