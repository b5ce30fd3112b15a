/* nn/model.c — the parameter registry and module ownership. */
#define CT_BUILDING_LIBRARY
#include "nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[128];
    ct_tensor *tensor;
} named_param;

typedef struct {
    char name[128];
    ct_rng *rng;
} named_rng;

struct ct_model {
    named_param *params;
    int n_params, cap_params;
    named_param *buffers;   /* same record: a name and a tensor (no grad) */
    int n_buffers, cap_buffers;
    ct_module **modules;
    int n_modules, cap_modules;
    ct_rng rng;
    named_rng *rngs;        /* the random streams modules draw from while training (dropout) */
    int n_rngs, cap_rngs;
    unsigned magic; /* MODEL_MAGIC while alive, MODEL_FREED after ct_model_free */
};

#define MODEL_MAGIC 0x6d6f646cu /* "modl" */
#define MODEL_FREED 0x64656164u /* "dead" */

/* A model handle a public call may use: not NULL, not freed. */
static void check_model(const ct_model *m, const char *op) {
    CT_CHECK(m != NULL, op, "the model is NULL (make one with ct_model_new)");
    CT_CHECK(m->magic == MODEL_MAGIC, op, "the model %s (use it before ct_model_free, free it once)",
             m->magic == MODEL_FREED ? "was freed with ct_model_free" : "is not a live model");
}

ct_model *ct_model_new(void) {
    ct_model *m = calloc(1, sizeof *m);
    if (!m) ct_fatal("ct_model_new", "out of memory");
    ct_rng_seed(&m->rng, 0);
    m->magic = MODEL_MAGIC;
    return m;
}

void ct_model_free(ct_model *m) {
    if (!m) return;
    check_model(m, "ct_model_free");
    *(volatile unsigned *)&m->magic = MODEL_FREED; /* volatile: a store before free is otherwise dropped */
    for (int i = 0; i < m->n_modules; i++)
        if (m->modules[i]->destroy) m->modules[i]->destroy(m->modules[i]);
    for (int i = 0; i < m->n_params; i++) ct_tensor_free(m->params[i].tensor);
    for (int i = 0; i < m->n_buffers; i++) ct_tensor_free(m->buffers[i].tensor);
    free(m->modules);
    free(m->params);
    free(m->buffers);
    free(m->rngs);
    free(m);
}

void ct_model_set_seed(ct_model *m, uint64_t seed) {
    check_model(m, "ct_model_set_seed");
    ct_rng_seed(&m->rng, seed);
}

ct_rng *ct_model_rng(ct_model *m) {
    check_model(m, "ct_model_rng");
    return &m->rng;
}

void ct_model_add_rng(ct_model *m, const char *name, ct_rng *rng) {
    check_model(m, "ct_model_add_rng");
    CT_CHECK(rng && name && strlen(name) < sizeof m->rngs[0].name && strcmp(name, "model") != 0, "ct_model_add_rng",
             "a stream and a name shorter than %zu characters other than \"model\" are needed (got \"%s\")",
             sizeof m->rngs[0].name, name ? name : "(null)");
    for (int i = 0; i < m->n_rngs; i++)
        CT_CHECK(strcmp(m->rngs[i].name, name) != 0, "ct_model_add_rng", "a random stream \"%s\" exists already", name);
    if (m->n_rngs == m->cap_rngs) {
        const int cap = m->cap_rngs ? 2 * m->cap_rngs : 4;
        named_rng *grown = realloc(m->rngs, (size_t)cap * sizeof *grown);
        if (!grown) ct_fatal("ct_model_add_rng", "out of memory");
        m->rngs = grown, m->cap_rngs = cap;
    }
    snprintf(m->rngs[m->n_rngs].name, sizeof m->rngs[0].name, "%s", name);
    m->rngs[m->n_rngs++].rng = rng;
}

int ct_model_rng_count(const ct_model *m) {
    check_model(m, "ct_model_rng_count");
    return m->n_rngs + 1;
}

ct_rng *ct_model_rng_stream(ct_model *m, int i, const char **name) {
    check_model(m, "ct_model_rng_stream");
    CT_CHECK(i >= 0 && i <= m->n_rngs, "ct_model_rng_stream", "index %d is outside [0, %d)", i, m->n_rngs + 1);
    if (name) *name = i == 0 ? "model" : m->rngs[i - 1].name;
    return i == 0 ? &m->rng : m->rngs[i - 1].rng;
}

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
    check_model(m, "ct_model_add_param");
    named_param *p = append_named(m, &m->params, &m->n_params, &m->cap_params, name, "ct_model_add_param");
    p->tensor = ct_tensor_new_grad(shape);
    p->tensor->flags |= CT_TENSOR_PARAM;
    p->tensor->name = p->name;
    return p->tensor;
}

ct_tensor *ct_model_add_buffer(ct_model *m, const char *name, ct_shape shape) {
    check_model(m, "ct_model_add_buffer");
    named_param *p = append_named(m, &m->buffers, &m->n_buffers, &m->cap_buffers, name, "ct_model_add_buffer");
    p->tensor = ct_tensor_new(shape);
    p->tensor->name = p->name;
    return p->tensor;
}

int ct_model_buffer_count(const ct_model *m) {
    check_model(m, "ct_model_buffer_count");
    return m->n_buffers;
}

ct_tensor *ct_model_buffer(const ct_model *m, int i) {
    check_model(m, "ct_model_buffer");
    CT_CHECK(i >= 0 && i < m->n_buffers, "ct_model_buffer", "index %d out of range (%d buffers)", i, m->n_buffers);
    return m->buffers[i].tensor;
}

ct_tensor *ct_model_find_buffer(const ct_model *m, const char *name) {
    check_model(m, "ct_model_find_buffer");
    for (int i = 0; i < m->n_buffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0) return m->buffers[i].tensor;
    return NULL;
}

int ct_model_param_count(const ct_model *m) {
    check_model(m, "ct_model_param_count");
    return m->n_params;
}

ct_tensor *ct_model_param(const ct_model *m, int i) {
    check_model(m, "ct_model_param");
    CT_CHECK(i >= 0 && i < m->n_params, "ct_model_param", "index %d out of range (%d parameters)", i, m->n_params);
    return m->params[i].tensor;
}

ct_tensor *ct_model_find_param(const ct_model *m, const char *name) {
    check_model(m, "ct_model_find_param");
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return m->params[i].tensor;
    return NULL;
}

/* A frozen parameter has no grad buffer and no REQUIRES_GRAD flag: the tape sends it no gradient
 * and every optimizer and guard skips a parameter whose grad is NULL (optim/optimizer.h). */
static ct_tensor *param_named(const ct_model *m, const char *name, const char *op) {
    check_model(m, op);
    CT_CHECK(name != NULL, op, "the parameter name is NULL");
    ct_tensor *t = ct_model_find_param(m, name);
    CT_CHECK(t != NULL, op, "the model has no parameter named \"%s\"%s", name,
             ct_model_find_buffer(m, name) ? " (it is a buffer, never trained)" : "");
    return t;
}

void ct_model_freeze(ct_model *m, const char *name) {
    ct_tensor *t = param_named(m, name, "ct_model_freeze");
    free(t->grad);
    t->grad = NULL;
    t->flags &= ~(unsigned)CT_TENSOR_REQUIRES_GRAD;
}

void ct_model_unfreeze(ct_model *m, const char *name) {
    ct_tensor *t = param_named(m, name, "ct_model_unfreeze");
    if (t->grad) return;
    /* 64-byte aligned and zeroed, as core/tensor.c allocates grads */
    const size_t bytes = (t->size * sizeof(ct_real) + 63) & ~(size_t)63;
    t->grad = aligned_alloc(64, bytes ? bytes : 64);
    if (!t->grad) ct_fatal("ct_model_unfreeze", "out of memory allocating %zu bytes for %s's gradient", bytes, name);
    memset(t->grad, 0, bytes ? bytes : 64);
    t->flags |= CT_TENSOR_REQUIRES_GRAD;
}

int ct_model_frozen(const ct_model *m, const char *name) {
    return param_named(m, name, "ct_model_frozen")->grad == NULL;
}

size_t ct_model_num_elements(const ct_model *m) {
    check_model(m, "ct_model_num_elements");
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i].tensor->size;
    return n;
}

void ct_model_zero_grad(ct_model *m) {
    check_model(m, "ct_model_zero_grad");
    for (int i = 0; i < m->n_params; i++) ct_tensor_zero_grad(m->params[i].tensor);
}

ct_module *ct_model_add_module(ct_model *m, ct_module *mod) {
    check_model(m, "ct_model_add_module");
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
    check_model(m, "ct_model_train");
    for (int i = 0; i < m->n_modules; i++) m->modules[i]->training = training;
}

/* While ct_model_summary runs, ct_forward records every module it enters (with its nesting
 * depth) and the shape it returns. */
typedef struct {
    const ct_module *mod;
    int depth;
    ct_shape out;
} summary_row;

static _Thread_local struct {
    summary_row *rows;
    int n, cap, depth, active;
} recorder;

ct_tensor *ct_forward(ct_tape *tape, ct_module *mod, ct_tensor *x) {
    CT_CHECK(mod && mod->forward, "ct_forward", "module %s has no forward (for an embedding use "
             "ct_embedding_forward)", mod ? mod->name : "(null)");
    if (!recorder.active) return mod->forward(tape, mod, x);
    if (recorder.n == recorder.cap) {
        recorder.cap = recorder.cap ? 2 * recorder.cap : 32;
        summary_row *grown = realloc(recorder.rows, (size_t)recorder.cap * sizeof *grown);
        if (!grown) ct_fatal("ct_model_summary", "out of memory");
        recorder.rows = grown;
    }
    int row = recorder.n++;
    recorder.rows[row] = (summary_row){.mod = mod, .depth = recorder.depth};
    recorder.depth++;
    ct_tensor *y = mod->forward(tape, mod, x);
    recorder.depth--;
    recorder.rows[row].out = ct_tensor_shape(y);
    return y;
}

/* Parameters of a module: those named "<module name>.<...>". */
static size_t params_under(const ct_model *m, const char *prefix) {
    size_t len = strlen(prefix), n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (strncmp(m->params[i].name, prefix, len) == 0 && m->params[i].name[len] == '.')
            n += m->params[i].tensor->size;
    return n;
}

void ct_model_summary(ct_model *m, ct_module *top, ct_shape input_shape, FILE *out) {
    check_model(m, "ct_model_summary");
    ct_tape *tape = ct_tape_new();
    ct_tape_grad_enabled(tape, 0);
    int was_training = top->training;
    ct_model_train(m, 0); /* no dropout draws, no running-stat updates */
    recorder.n = recorder.depth = 0;
    recorder.active = 1;
    ct_tensor *y = ct_forward(tape, top, ct_tape_zeros(tape, input_shape));
    recorder.active = 0;
    ct_model_train(m, was_training);

    char shape[96], line[160];
    fprintf(out, "%-36s %-14s %-22s %12s\n", "Layer", "Kind", "Output shape", "Params");
    fprintf(out, "%.*s\n", 87, "=========================================================================================");
    fprintf(out, "%-36s %-14s %-22s %12s\n", "input", "", ct_shape_str(input_shape, shape, sizeof shape), "");
    for (int i = 0; i < recorder.n; i++) {
        const summary_row *r = &recorder.rows[i];
        snprintf(line, sizeof line, "%*s%s", 2 * r->depth, "", r->mod->name);
        fprintf(out, "%-36s %-14s %-22s %12zu\n", line, r->mod->kind, ct_shape_str(r->out, shape, sizeof shape),
                params_under(m, r->mod->name));
    }
    size_t buffers = 0;
    for (int i = 0; i < m->n_buffers; i++) buffers += m->buffers[i].tensor->size;
    size_t params = ct_model_num_elements(m);
    fprintf(out, "%.*s\n", 87, "=========================================================================================");
    fprintf(out, "Output: %s\n", ct_tensor_shape_str(y, shape, sizeof shape));
    fprintf(out, "Parameters: %zu in %d tensors (%.2f MiB as %s)\n", params, m->n_params,
            (double)params * sizeof(ct_real) / 1048576.0, CT_REAL_NAME);
    fprintf(out, "Buffers: %zu in %d tensors\n", buffers, m->n_buffers);
    ct_tape_free(tape);
}
