/* nn/model.c — the parameter registry and module ownership. */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[128];
    ct_tensor *tensor;
} named_param;

struct ct_model {
    named_param *params;
    int n_params, cap_params;
    named_param *buffers;   /* same record: a name and a tensor (no grad) */
    int n_buffers, cap_buffers;
    ct_module **modules;
    int n_modules, cap_modules;
    ct_rng rng;
};

ct_model *ct_model_new(void) {
    ct_model *m = calloc(1, sizeof *m);
    if (!m) ct_fatal("ct_model_new", "out of memory");
    ct_rng_seed(&m->rng, 0);
    return m;
}

void ct_model_free(ct_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_modules; i++)
        if (m->modules[i]->destroy) m->modules[i]->destroy(m->modules[i]);
    for (int i = 0; i < m->n_params; i++) ct_tensor_free(m->params[i].tensor);
    for (int i = 0; i < m->n_buffers; i++) ct_tensor_free(m->buffers[i].tensor);
    free(m->modules);
    free(m->params);
    free(m->buffers);
    free(m);
}

void ct_model_set_seed(ct_model *m, uint64_t seed) { ct_rng_seed(&m->rng, seed); }
ct_rng *ct_model_rng(ct_model *m) { return &m->rng; }

/* Parameters and buffers share one namespace (a checkpoint addresses both by name). */
static named_param *append_named(ct_model *m, named_param **list, int *n, int *cap, const char *name,
                                 const char *op) {
    CT_CHECK(name && strlen(name) < sizeof m->params[0].name, op, "name \"%s\" is missing or too long",
             name ? name : "(null)");
    CT_CHECK(!ct_model_find_param(m, name) && !ct_model_find_buffer(m, name), op,
             "a parameter or buffer named \"%s\" already exists", name);
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        named_param *grown = realloc(*list, (size_t)*cap * sizeof *grown);
        if (!grown) ct_fatal(op, "out of memory");
        *list = grown;
        /* the names moved: re-point every tensor at its record's name */
        for (int i = 0; i < *n; i++) (*list)[i].tensor->name = (*list)[i].name;
    }
    named_param *p = &(*list)[(*n)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    return p;
}

ct_tensor *ct_model_add_param(ct_model *m, const char *name, ct_shape shape) {
    named_param *p = append_named(m, &m->params, &m->n_params, &m->cap_params, name, "ct_model_add_param");
    p->tensor = ct_tensor_new_grad(shape);
    p->tensor->flags |= CT_TENSOR_PARAM;
    p->tensor->name = p->name;
    return p->tensor;
}

ct_tensor *ct_model_add_buffer(ct_model *m, const char *name, ct_shape shape) {
    named_param *p = append_named(m, &m->buffers, &m->n_buffers, &m->cap_buffers, name, "ct_model_add_buffer");
    p->tensor = ct_tensor_new(shape);
    p->tensor->name = p->name;
    return p->tensor;
}

int ct_model_buffer_count(const ct_model *m) { return m->n_buffers; }

ct_tensor *ct_model_buffer(const ct_model *m, int i) {
    CT_CHECK(i >= 0 && i < m->n_buffers, "ct_model_buffer", "index %d out of range (%d buffers)", i, m->n_buffers);
    return m->buffers[i].tensor;
}

ct_tensor *ct_model_find_buffer(const ct_model *m, const char *name) {
    for (int i = 0; i < m->n_buffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0) return m->buffers[i].tensor;
    return NULL;
}

int ct_model_param_count(const ct_model *m) { return m->n_params; }

ct_tensor *ct_model_param(const ct_model *m, int i) {
    CT_CHECK(i >= 0 && i < m->n_params, "ct_model_param", "index %d out of range (%d parameters)", i, m->n_params);
    return m->params[i].tensor;
}

ct_tensor *ct_model_find_param(const ct_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return m->params[i].tensor;
    return NULL;
}

size_t ct_model_num_elements(const ct_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i].tensor->size;
    return n;
}

void ct_model_zero_grad(ct_model *m) {
    for (int i = 0; i < m->n_params; i++) ct_tensor_zero_grad(m->params[i].tensor);
}

ct_module *ct_model_add_module(ct_model *m, ct_module *mod) {
    if (m->n_modules == m->cap_modules) {
        m->cap_modules = m->cap_modules ? 2 * m->cap_modules : 16;
        ct_module **grown = realloc(m->modules, (size_t)m->cap_modules * sizeof *grown);
        if (!grown) ct_fatal("ct_model_add_module", "out of memory");
        m->modules = grown;
    }
    mod->training = 1;
    m->modules[m->n_modules++] = mod;
    return mod;
}

void ct_model_train(ct_model *m, int training) {
    for (int i = 0; i < m->n_modules; i++) m->modules[i]->training = training;
}

ct_tensor *ct_forward(ct_tape *tape, ct_module *mod, ct_tensor *x) {
    CT_CHECK(mod && mod->forward, "ct_forward", "module is NULL or has no forward");
    return mod->forward(tape, mod, x);
}
