/* nn/conv.c — convolution and pooling layers on the fused ops of autograd/conv.c. */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- conv2d --------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_tensor *weight, *bias; /* (out, in/groups, k, k), (out) or NULL */
    int in, out, kernel;
    ct_conv2d_op_opts p;
} conv2d_module;

static ct_tensor *conv2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    conv2d_module *c = (conv2d_module *)self;
    CT_CHECK(x && x->ndim == 4 && x->shape[1] == c->in, c->base.name,
             "conv2d %d->%d (%dx%d kernel) got input %s (need (N, %d, H, W))", c->in, c->out, c->kernel,
             c->kernel, x ? ct_tensor_shape_str(x, (char[96]){0}, 96) : "NULL", c->in);
    return ct_conv2d(tape, x, c->weight, c->bias, c->p);
}

ct_module *ct_conv2d_new(ct_model *m, const char *name, int in_channels, int out_channels, int kernel,
                         ct_conv2d_opts opts) {
    static const char *ctor = "ct_conv2d_new";
    CT_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0, ctor,
             "%s: channels and kernel must be positive, got %d->%d, kernel %d", name, in_channels, out_channels,
             kernel);
    CT_CHECK(opts.groups >= 1 && in_channels % opts.groups == 0 && out_channels % opts.groups == 0, ctor,
             "%s: groups %d must divide both in_channels %d and out_channels %d", name, opts.groups,
             in_channels, out_channels);
    CT_CHECK(opts.stride >= 1 && opts.dilation >= 1 && opts.padding >= 0, ctor,
             "%s: stride %d and dilation %d must be >= 1 and padding %d >= 0", name, opts.stride,
             opts.dilation, opts.padding);
    conv2d_module *c = ct_module_new(m, sizeof *c, "conv2d", name, conv2d_forward);
    c->in = in_channels, c->out = out_channels, c->kernel = kernel;
    c->p = CT_CONV2D_OP(.stride_h = opts.stride, .stride_w = opts.stride, .pad_h = opts.padding,
                            .pad_w = opts.padding, .dilation_h = opts.dilation, .dilation_w = opts.dilation,
                            .groups = opts.groups);
    c->weight = ct_module_add_param(m, &c->base, "weight", CT_SHAPE(out_channels, in_channels / opts.groups, kernel, kernel));
    /* PyTorch's reset_parameters: kaiming_uniform_(a=√5) on fan_in = in/groups·k·k, which is
     * U(±1/√fan_in), and the bias U(±1/√fan_in) with the same fan. */
    ct_init_kaiming_uniform(c->weight, ct_model_rng(m), sqrt(5.0), CT_FAN_IN);
    if (opts.bias) {
        int fan_in, fan_out;
        ct_init_fans(c->weight, &fan_in, &fan_out);
        const double bound = 1.0 / sqrt((double)fan_in);
        c->bias = ct_module_add_param(m, &c->base, "bias", CT_SHAPE(out_channels));
        ct_init_uniform(c->bias, ct_model_rng(m), -bound, bound);
    }
    return &c->base;
}

/* ---- pooling ---------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_pool2d_opts p;
} pool_module;

static ct_tensor *max_pool2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    return ct_max_pool2d(tape, x, ((pool_module *)self)->p);
}

static ct_tensor *avg_pool2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    return ct_avg_pool2d(tape, x, ((pool_module *)self)->p);
}

static ct_module *pool_new(ct_model *m, const char *name, const char *kind, const char *ctor, int kernel,
                           int stride, int padding, ct_forward_fn forward) {
    CT_CHECK(kernel >= 1 && stride >= 0 && padding >= 0 && 2 * padding <= kernel, ctor,
             "%s: kernel %d must be >= 1, stride %d >= 0 (0 = kernel), padding %d in [0, kernel/2]",
             name ? name : "(null)", kernel, stride, padding);
    pool_module *pm = ct_module_new(m, sizeof *pm, kind, name, forward);
    pm->p = CT_POOL2D(.kernel_h = kernel, .kernel_w = kernel, .stride_h = stride, .stride_w = stride,
                             .pad_h = padding, .pad_w = padding);
    return &pm->base;
}

ct_module *ct_max_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding) {
    return pool_new(m, name, "max_pool2d", "ct_max_pool2d_new", kernel, stride, padding, max_pool2d_forward);
}

ct_module *ct_avg_pool2d_new(ct_model *m, const char *name, int kernel, int stride, int padding) {
    return pool_new(m, name, "avg_pool2d", "ct_avg_pool2d_new", kernel, stride, padding, avg_pool2d_forward);
}

static ct_tensor *global_avg_pool2d_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    (void)self;
    return ct_global_avg_pool2d(tape, x);
}

ct_module *ct_global_avg_pool2d_new(ct_model *m, const char *name) {
    return ct_module_new(m, sizeof(ct_module), "global_avg_pool2d", name, global_avg_pool2d_forward);
}
