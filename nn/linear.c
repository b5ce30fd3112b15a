/* nn/linear.c — the linear layer: y = x·Wᵀ + b on the fused ct_linear op. */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ct_module base;
    ct_tensor *weight, *bias;
    int in, out;
} linear_module;

static ct_tensor *linear_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    linear_module *l = (linear_module *)self;
    CT_CHECK(x->ndim == 2 && x->shape[1] == l->in, l->base.name,
             "linear %d->%d got input %s (need (N, %d))", l->in, l->out, ct_tensor_shape_str(x, (char[96]){0}, 96), l->in);
    return ct_linear(tape, x, l->weight, l->bias);
}

static ct_module *linear_make(ct_model *m, const char *name, int in, int out, int with_bias) {
    CT_CHECK(in > 0 && out > 0, "ct_linear_new", "%s: sizes must be positive, got %d->%d", name, in, out);
    linear_module *l = ct_module_new(m, sizeof *l, "linear", name, linear_forward);
    l->in = in;
    l->out = out;
    l->weight = ct_module_add_param(m, &l->base, "weight", CT_SHAPE(out, in));
    /* PyTorch: kaiming_uniform_(a=√5) gives bound = gain·√(3/fan_in) with gain = √(2/(1+5)),
     * which is 1/√fan_in; the bias uses the same bound. */
    ct_init_kaiming_uniform(l->weight, ct_model_rng(m), sqrt(5.0), CT_FAN_IN);
    double bound = 1.0 / sqrt((double)in);
    if (with_bias) {
        l->bias = ct_module_add_param(m, &l->base, "bias", CT_SHAPE(out));
        ct_tensor_fill_uniform(l->bias, ct_model_rng(m), -bound, bound);
    }
    return &l->base;
}

ct_module *ct_linear_new(ct_model *m, const char *name, int in, int out) { return linear_make(m, name, in, out, 1); }
ct_module *ct_linear_new_nobias(ct_model *m, const char *name, int in, int out) { return linear_make(m, name, in, out, 0); }

ct_tensor *ct_linear_weight(ct_module *linear) {
    return ((linear_module *)ct_module_as(linear, "linear", "ct_linear_weight"))->weight;
}
ct_tensor *ct_linear_bias(ct_module *linear) {
    return ((linear_module *)ct_module_as(linear, "linear", "ct_linear_bias"))->bias;
}
