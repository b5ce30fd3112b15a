/* nn/norm.c — batch norm and layer norm layers, on the fused ops of autograd/norm.c. Names and
 * initial values follow PyTorch's state_dict, so checkpoints line up with torch.nn.BatchNorm2d and
 * LayerNorm. */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <stdlib.h>
#include <string.h>

/* ---- batch norm -------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_tensor *weight, *bias;                          /* (C) or NULL without affine; weight is a
                                                          buffer with .fixed_scale */
    ct_tensor *running_mean, *running_var, *num_batches_tracked;
    int channels;
    double eps, momentum;
} batch_norm_module;

static ct_tensor *batch_norm_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    batch_norm_module *bn = (batch_norm_module *)self;
    char buf[96];
    CT_CHECK(x && x->ndim >= 2 && x->ndim <= 4 && x->shape[1] == bn->channels, bn->base.name,
             "batch_norm with %d channels got input %s (need (N, %d), (N, %d, L) or (N, %d, H, W))",
             bn->channels, x ? ct_tensor_shape_str(x, buf, sizeof buf) : "NULL", bn->channels,
             bn->channels, bn->channels);
    ct_tensor *y = ct_batch_norm(tape, x, bn->weight, bn->bias, bn->running_mean, bn->running_var,
                                 bn->base.training, bn->momentum, bn->eps);
    if (bn->base.training) bn->num_batches_tracked->data[0] += 1;
    return y;
}

ct_module *ct_batch_norm_new(ct_model *m, const char *name, int channels, ct_batch_norm_opts opts) {
    static const char *op = "ct_batch_norm_new";
    CT_CHECK(channels > 0, op, "%s: channels must be positive, got %d", name ? name : "(null)", channels);
    CT_CHECK(opts.eps >= 0 && opts.momentum >= 0 && opts.momentum <= 1, op,
             "%s: eps %g must be >= 0 and momentum %g in [0, 1]", name ? name : "(null)", opts.eps, opts.momentum);
    CT_CHECK(!opts.fixed_scale || opts.affine, op, "%s: .fixed_scale needs .affine = 1 (it keeps the trained bias)",
             name ? name : "(null)");
    batch_norm_module *bn = ct_module_new(m, sizeof *bn, "batch_norm", name, batch_norm_forward);
    bn->channels = channels;
    bn->eps = opts.eps;
    bn->momentum = opts.momentum;
    if (opts.affine) {
        bn->weight = opts.fixed_scale ? ct_module_add_buffer(m, &bn->base, "weight", CT_SHAPE(channels))
                                      : ct_module_add_param(m, &bn->base, "weight", CT_SHAPE(channels));
        bn->bias = ct_module_add_param(m, &bn->base, "bias", CT_SHAPE(channels));
        ct_tensor_fill(bn->weight, 1);
    }
    bn->running_mean = ct_module_add_buffer(m, &bn->base, "running_mean", CT_SHAPE(channels));
    bn->running_var = ct_module_add_buffer(m, &bn->base, "running_var", CT_SHAPE(channels));
    bn->num_batches_tracked = ct_module_add_buffer(m, &bn->base, "num_batches_tracked", CT_SHAPE_SCALAR);
    ct_tensor_fill(bn->running_var, 1);
    return &bn->base;
}

/* ---- layer norm -------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_tensor *weight, *bias; /* normalized_shape, ones and zeros */
    ct_shape normalized_shape;
    double eps;
} layer_norm_module;

static ct_tensor *layer_norm_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    layer_norm_module *ln = (layer_norm_module *)self;
    const ct_shape ns = ln->normalized_shape;
    int ok = x && x->ndim >= ns.ndim;
    for (int i = 0; ok && i < ns.ndim; i++) ok = x->shape[x->ndim - ns.ndim + i] == ns.d[i];
    char xs[96], want[96];
    CT_CHECK(ok, ln->base.name, "layer_norm over %s got input %s (its trailing dims must be %s)",
             ct_shape_str(ns, want, sizeof want), x ? ct_tensor_shape_str(x, xs, sizeof xs) : "NULL",
             want);
    return ct_layer_norm(tape, x, ns.ndim, ln->weight, ln->bias, ln->eps);
}

ct_module *ct_layer_norm_new(ct_model *m, const char *name, ct_shape normalized_shape, double eps) {
    static const char *op = "ct_layer_norm_new";
    const char *nm = name ? name : "(null)";
    CT_CHECK(normalized_shape.ndim >= 1 && normalized_shape.ndim <= CT_MAX_DIMS, op,
             "%s: normalized_shape has %d dims (need 1 to %d)", nm, normalized_shape.ndim, CT_MAX_DIMS);
    char buf[96];
    for (int i = 0; i < normalized_shape.ndim; i++)
        CT_CHECK(normalized_shape.d[i] > 0, op, "%s: normalized_shape %s must have positive dims", nm,
                 ct_shape_str(normalized_shape, buf, sizeof buf));
    CT_CHECK(eps >= 0, op, "%s: eps %g is negative", nm, eps);
    layer_norm_module *ln = ct_module_new(m, sizeof *ln, "layer_norm", name, layer_norm_forward);
    ln->normalized_shape = normalized_shape;
    ln->eps = eps;
    ln->weight = ct_module_add_param(m, &ln->base, "weight", normalized_shape);
    ln->bias = ct_module_add_param(m, &ln->base, "bias", normalized_shape);
    ct_tensor_fill(ln->weight, 1);
    return &ln->base;
}
