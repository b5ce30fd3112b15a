/* nn/norm.c — batch norm, layer norm, dropout and embedding layers, on the fused ops of
 * autograd/norm.c, autograd/dropout.c and autograd/embedding.c. Names and initial values follow
 * PyTorch's state_dict, so checkpoints line up with torch.nn.BatchNorm2d, LayerNorm, Embedding. */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <stdlib.h>
#include <string.h>

static void module_free(ct_module *self) { free(self); }

/* A zeroed module of `size` bytes with its kind, name and forward set. */
static void *module_alloc(size_t size, const char *op, const char *kind, const char *name,
                          ct_tensor *(*forward)(ct_tape *, ct_module *, ct_tensor *)) {
    CT_CHECK(name && strlen(name) < sizeof ((ct_module *)0)->name, op, "name \"%s\" is missing or too long",
             name ? name : "(null)");
    ct_module *mod = calloc(1, size);
    if (!mod) ct_fatal(op, "out of memory");
    mod->kind = kind;
    snprintf(mod->name, sizeof mod->name, "%s", name);
    mod->forward = forward;
    mod->destroy = module_free;
    return mod;
}

/* "<layer>.<what>" */
static const char *sub_name(char *buf, size_t len, const char *layer, const char *what) {
    snprintf(buf, len, "%s.%s", layer, what);
    return buf;
}

/* ---- batch norm -------------------------------------------------------------------------------- */
typedef struct {
    ct_module base;
    ct_tensor *weight, *bias;                          /* (C) or NULL without affine */
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
    batch_norm_module *bn = module_alloc(sizeof *bn, op, "batch_norm", name, batch_norm_forward);
    bn->channels = channels;
    bn->eps = opts.eps;
    bn->momentum = opts.momentum;
    char pname[160];
    if (opts.affine) {
        bn->weight = ct_model_add_param(m, sub_name(pname, sizeof pname, name, "weight"), CT_SHAPE(channels));
        bn->bias = ct_model_add_param(m, sub_name(pname, sizeof pname, name, "bias"), CT_SHAPE(channels));
        ct_tensor_fill(bn->weight, 1);
    }
    bn->running_mean = ct_model_add_buffer(m, sub_name(pname, sizeof pname, name, "running_mean"), CT_SHAPE(channels));
    bn->running_var = ct_model_add_buffer(m, sub_name(pname, sizeof pname, name, "running_var"), CT_SHAPE(channels));
    bn->num_batches_tracked = ct_model_add_buffer(m, sub_name(pname, sizeof pname, name, "num_batches_tracked"), CT_SHAPE_SCALAR);
    ct_tensor_fill(bn->running_var, 1);
    return ct_model_add_module(m, &bn->base);
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
    layer_norm_module *ln = module_alloc(sizeof *ln, op, "layer_norm", name, layer_norm_forward);
    ln->normalized_shape = normalized_shape;
    ln->eps = eps;
    char pname[160];
    ln->weight = ct_model_add_param(m, sub_name(pname, sizeof pname, name, "weight"), normalized_shape);
    ln->bias = ct_model_add_param(m, sub_name(pname, sizeof pname, name, "bias"), normalized_shape);
    ct_tensor_fill(ln->weight, 1);
    return ct_model_add_module(m, &ln->base);
}

/* ---- dropout ------------------------------------------------------------------------------------ */
typedef struct {
    ct_module base;
    double p;
    ct_rng rng; /* its own stream, seeded from the model's RNG at creation */
} dropout_module;

static ct_tensor *dropout_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    dropout_module *d = (dropout_module *)self;
    return ct_dropout(tape, x, d->p, d->base.training, &d->rng);
}

ct_module *ct_dropout_new(ct_model *m, const char *name, double p) {
    static const char *op = "ct_dropout_new";
    CT_CHECK(p >= 0 && p <= 1, op, "%s: probability p = %g is outside [0, 1]", name ? name : "(null)", p);
    dropout_module *d = module_alloc(sizeof *d, op, "dropout", name, dropout_forward);
    d->p = p;
    ct_rng_seed(&d->rng, ct_rng_u64(ct_model_rng(m)));
    return ct_model_add_module(m, &d->base);
}

/* ---- embedding ----------------------------------------------------------------------------------- */
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
    embedding_module *e = module_alloc(sizeof *e, op, "embedding", name, embedding_forward_tensor);
    char pname[160];
    e->weight = ct_model_add_param(m, sub_name(pname, sizeof pname, name, "weight"), CT_SHAPE(num, dim));
    ct_tensor_fill_normal(e->weight, ct_model_rng(m), 0, 1);
    return ct_model_add_module(m, &e->base);
}

ct_tensor *ct_embedding_forward(ct_tape *tape, ct_module *emb, const int *indices, ct_shape index_shape) {
    CT_CHECK(emb && emb->kind && strcmp(emb->kind, "embedding") == 0, "ct_embedding_forward",
             "module %s is not an embedding (it is %s)", emb ? emb->name : "(null)",
             emb && emb->kind ? emb->kind : "(null)");
    return ct_embedding(tape, ((embedding_module *)emb)->weight, indices, index_shape);
}
