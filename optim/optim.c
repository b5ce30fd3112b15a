/* optim/optim.c — what every optimizer shares: the flat parameter list, parameter groups (lr
 * scale and weight decay), named per-parameter state, step counting and zeroing the grads. The
 * update rules live in one file each (sgd.c, adam.c, rmsprop.c, literature.c); the guards in
 * guards.c; saving and loading the state in checkpoint.c. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n, const char *op) {
    void *p = malloc(n ? n : 1);
    if (!p) ct_fatal(op, "out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n, const char *op) {
    p = realloc(p, n ? n : 1);
    if (!p) ct_fatal(op, "out of memory (%zu bytes)", n);
    return p;
}

void ct_optim_check(const ct_optim *opt, const char *op) {
    CT_CHECK(opt, op, "optimizer is NULL");
    CT_CHECK(opt->magic == CT_OPTIM_MAGIC, op, "%p is not a live optimizer: freed already (ct_optim_free twice, or "
             "used after it), or not made by a ct_*_new constructor", (const void *)opt);
}

void *ct_optim_create(size_t size, const ct_optim_class *cls, ct_model *m, double lr, double weight_decay) {
    CT_CHECK(cls && cls->step && size >= sizeof(ct_optim), "ct_optim_create", "bad optimizer class");
    CT_CHECK(m, cls->name, "model is NULL");
    CT_CHECK(lr >= 0 && isfinite(lr), cls->name, "lr %g must be finite and >= 0", lr);
    CT_CHECK(weight_decay >= 0 && isfinite(weight_decay), cls->name,
             "weight_decay %g must be finite and >= 0", weight_decay);
    ct_optim *opt = calloc(1, size);
    if (!opt) ct_fatal(cls->name, "out of memory");
    opt->magic = CT_OPTIM_MAGIC;
    opt->cls = cls;
    opt->model = m;
    opt->n_params = ct_model_param_count(m);
    opt->params = xmalloc((size_t)opt->n_params * sizeof *opt->params, cls->name);
    opt->group_of = calloc((size_t)(opt->n_params ? opt->n_params : 1), sizeof *opt->group_of);
    if (!opt->group_of) ct_fatal(cls->name, "out of memory");
    for (int i = 0; i < opt->n_params; i++) opt->params[i] = ct_model_param(m, i);
    opt->lr = lr;
    opt->groups = xmalloc(sizeof *opt->groups, cls->name);
    opt->groups[0] = (ct_param_group){.lr_scale = 1, .weight_decay = weight_decay};
    opt->n_groups = 1;
    opt->guards = CT_GUARDS();
    opt->last_grad_norm = NAN;
    return opt;
}

/* ---- state ------------------------------------------------------------------------------ */

static int add_slot(ct_optim *opt, const char *name) {
    ct_optim_check(opt, "ct_optim_add_state");
    CT_CHECK(name && name[0], "ct_optim_add_state", "state name is empty");
    CT_CHECK(ct_optim_find_state(opt, name) < 0, "ct_optim_add_state", "%s already has a state \"%s\"",
             opt->cls->name, name);
    opt->slots = xrealloc(opt->slots, (size_t)(opt->n_slots + 1) * sizeof *opt->slots, "ct_optim_add_state");
    ct_optim_state_slot *s = &opt->slots[opt->n_slots];
    s->name = name;
    s->tensors = calloc((size_t)(opt->n_params ? opt->n_params : 1), sizeof *s->tensors);
    if (!s->tensors) ct_fatal("ct_optim_add_state", "out of memory");
    return opt->n_slots++;
}

int ct_optim_add_state(ct_optim *opt, const char *name, double init) {
    int slot = add_slot(opt, name);
    for (int k = 0; k < opt->n_params; k++) {
        ct_tensor *t = ct_tensor_new(ct_tensor_shape(opt->params[k]));
        if (init != 0) ct_tensor_fill(t, (ct_real)init);
        opt->slots[slot].tensors[k] = t;
    }
    return slot;
}

int ct_optim_add_state_shaped(ct_optim *opt, const char *name,
                              int (*shape_of)(const ct_tensor *param, ct_shape *shape, void *ctx), void *ctx) {
    int slot = add_slot(opt, name);
    for (int k = 0; k < opt->n_params; k++) {
        ct_shape s;
        if (shape_of(opt->params[k], &s, ctx)) opt->slots[slot].tensors[k] = ct_tensor_new(s);
    }
    return slot;
}

ct_tensor *ct_optim_state_tensor(const ct_optim *opt, int slot, int k) {
    ct_optim_check(opt, "ct_optim_state_tensor");
    CT_CHECK(slot >= 0 && slot < opt->n_slots, "ct_optim_state_tensor", "slot %d out of range [0, %d)", slot,
             opt->n_slots);
    CT_CHECK(k >= 0 && k < opt->n_params, "ct_optim_state_tensor", "parameter %d out of range [0, %d)", k,
             opt->n_params);
    return opt->slots[slot].tensors[k];
}

int ct_optim_find_state(const ct_optim *opt, const char *name) {
    ct_optim_check(opt, "ct_optim_find_state");
    for (int s = 0; s < opt->n_slots; s++)
        if (strcmp(opt->slots[s].name, name) == 0) return s;
    return -1;
}

static void add_scalar(ct_optim *opt, const char *op, const char *name, double *value, long *count) {
    ct_optim_check(opt, op);
    CT_CHECK(name && name[0] && (value || count), op, "needs a name and a value");
    for (int i = 0; i < opt->n_scalars; i++)
        CT_CHECK(strcmp(opt->scalars[i].name, name) != 0, op, "%s already has a scalar named \"%s\"", opt->cls->name,
                 name);
    opt->scalars = xrealloc(opt->scalars, (size_t)(opt->n_scalars + 1) * sizeof *opt->scalars, op);
    opt->scalars[opt->n_scalars].name = name;
    opt->scalars[opt->n_scalars].value = value;
    opt->scalars[opt->n_scalars].count = count;
    opt->n_scalars++;
}

void ct_optim_add_scalar(ct_optim *opt, const char *name, double *value) {
    add_scalar(opt, "ct_optim_add_scalar", name, value, NULL);
}

void ct_optim_add_count(ct_optim *opt, const char *name, long *count) {
    add_scalar(opt, "ct_optim_add_count", name, NULL, count);
}

/* ---- groups ----------------------------------------------------------------------------- */

int ct_param_is_vector(const ct_tensor *param, void *ctx) {
    (void)ctx;
    return param->ndim <= 1;
}

int ct_param_name_contains(const ct_tensor *param, void *ctx) {
    return param->name && ctx && strstr(param->name, (const char *)ctx) != NULL;
}

int ct_optim_add_group(ct_optim *opt, ct_param_pred pred, void *ctx, ct_group_opts g) {
    static const char *op = "ct_optim_add_group";
    ct_optim_check(opt, op);
    CT_CHECK(pred, op, "predicate is NULL");
    double scale = 1, wd = opt->groups[0].weight_decay;
    if (!isnan(g.lr)) {
        CT_CHECK(g.lr >= 0 && isfinite(g.lr), op, "lr %g must be finite and >= 0", g.lr);
        CT_CHECK(opt->lr > 0, op, "a group lr (%g) is kept as a scale of the base lr, which is 0; "
                 "make the optimizer with its lr before setting a schedule", g.lr);
        scale = g.lr / opt->lr;
    }
    if (!isnan(g.weight_decay)) {
        CT_CHECK(g.weight_decay >= 0 && isfinite(g.weight_decay), op, "weight_decay %g must be finite and >= 0",
                 g.weight_decay);
        wd = g.weight_decay;
    }
    opt->groups = xrealloc(opt->groups, (size_t)(opt->n_groups + 1) * sizeof *opt->groups, op);
    opt->groups[opt->n_groups] = (ct_param_group){.lr_scale = scale, .weight_decay = wd};
    for (int k = 0; k < opt->n_params; k++)
        if (pred(opt->params[k], ctx)) opt->group_of[k] = opt->n_groups;
    return opt->n_groups++;
}

int ct_optim_group_count(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_group_count");
    return opt->n_groups;
}

int ct_optim_param_group(const ct_optim *opt, int k) {
    ct_optim_check(opt, "ct_optim_param_group");
    CT_CHECK(k >= 0 && k < opt->n_params, "ct_optim_param_group", "parameter %d out of range [0, %d)", k,
             opt->n_params);
    return opt->group_of[k];
}

static void check_group(const ct_optim *opt, int g, const char *op) {
    ct_optim_check(opt, op);
    CT_CHECK(g >= 0 && g < opt->n_groups, op, "group %d out of range [0, %d)", g, opt->n_groups);
}

double ct_optim_group_lr(const ct_optim *opt, int g) {
    check_group(opt, g, "ct_optim_group_lr");
    return opt->lr * opt->groups[g].lr_scale;
}

double ct_optim_group_weight_decay(const ct_optim *opt, int g) {
    check_group(opt, g, "ct_optim_group_weight_decay");
    return opt->groups[g].weight_decay;
}

int ct_optim_group_size(const ct_optim *opt, int g) {
    check_group(opt, g, "ct_optim_group_size");
    int n = 0;
    for (int k = 0; k < opt->n_params; k++) n += opt->group_of[k] == g;
    return n;
}

/* ---- stepping ---------------------------------------------------------------------------- */

int ct_optim_run_guards(ct_optim *opt); /* guards.c */

int ct_optim_step(ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_step");
    CT_CHECK(ct_model_param_count(opt->model) == opt->n_params, "ct_optim_step",
             "%s was made for %d parameters but the model now has %d; make the optimizer after "
             "the last layer", opt->cls->name, opt->n_params, ct_model_param_count(opt->model));
    int status = ct_optim_run_guards(opt);
    if (status == CT_OPTIM_SKIPPED) {
        opt->skipped++;
        ct_optim_zero_grad(opt);
        return status;
    }
    if (status != CT_OK) return status;
    opt->zeroed = 0;
    opt->cls->step(opt);
    opt->steps++;
    if (!opt->zeroed) ct_optim_zero_grad(opt);
    return CT_OK;
}

void ct_optim_zero_grad(ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_zero_grad");
    for (int i = 0; i < opt->n_params; i++)
        if (opt->params[i]->grad) memset(opt->params[i]->grad, 0, opt->params[i]->size * sizeof(ct_real));
}

double ct_optim_lr(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_lr");
    return opt->lr;
}

void ct_optim_set_lr(ct_optim *opt, double lr) {
    ct_optim_check(opt, "ct_optim_set_lr");
    CT_CHECK(lr >= 0 && isfinite(lr), "ct_optim_set_lr", "lr %g must be finite and >= 0", lr);
    opt->lr = lr;
}

/* The class's momentum hook: where μ or β₁ lives, or NULL. */
static double *momentum_of(const ct_optim *opt) {
    return opt->cls->momentum ? opt->cls->momentum((ct_optim *)opt) : NULL;
}

int ct_optim_has_momentum(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_has_momentum");
    return momentum_of(opt) != NULL;
}

double ct_optim_momentum(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_momentum");
    const double *m = momentum_of(opt);
    CT_CHECK(m, "ct_optim_momentum", "%s has no momentum or beta1 (built with momentum 0, or none in its kind)",
             opt->cls->name);
    return *m;
}

void ct_optim_set_momentum(ct_optim *opt, double momentum) {
    static const char *op = "ct_optim_set_momentum";
    ct_optim_check(opt, op);
    double *m = momentum_of(opt);
    CT_CHECK(m, op, "%s has no momentum or beta1 to set (built with momentum 0, or none in its kind)", opt->cls->name);
    CT_CHECK(momentum >= 0 && momentum < 1, op, "momentum %g must be in [0, 1)", momentum);
    *m = momentum;
}

long ct_optim_steps(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_steps");
    return opt->steps;
}

const char *ct_optim_kind(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_kind");
    return opt->cls->name;
}

void ct_optim_free(ct_optim *opt) {
    if (!opt) return;
    ct_optim_check(opt, "ct_optim_free");
    opt->magic = 0; /* a second free, or a use after this one, is then caught */
    if (opt->cls->free) opt->cls->free(opt);
    for (int s = 0; s < opt->n_slots; s++) {
        for (int k = 0; k < opt->n_params; k++) ct_tensor_free(opt->slots[s].tensors[k]);
        free(opt->slots[s].tensors);
    }
    free(opt->slots);
    free(opt->scalars);
    free(opt->groups);
    free(opt->group_of);
    free(opt->params);
    free(opt);
}
