/* nn/module.c — the one constructor every layer is made with (nn/layer.h). */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <stdlib.h>
#include <string.h>

static void module_free(ct_module *self) { free(self); }

void *ct_module_new(ct_model *m, size_t size, const char *kind, const char *name, ct_forward_fn forward) {
    static const char *op = "ct_module_new";
    const size_t max_name = sizeof ((ct_module *)0)->name - 1;
    CT_CHECK(m, op, "%s layer %s: the model is NULL (make one with ct_model_new)", kind ? kind : "(null)",
             name ? name : "(null)");
    CT_CHECK(kind && *kind, op, "the layer kind is missing (a literal such as \"linear\")");
    CT_CHECK(name && strlen(name) <= max_name, op,
             "%s layer: name \"%s\" is missing or too long (at most %zu characters)", kind, name ? name : "(null)",
             max_name);
    CT_CHECK(size >= sizeof(ct_module), op, "%s layer %s: size %zu is smaller than a ct_module (%zu bytes): "
             "pass sizeof of the layer struct, whose first member is a ct_module", kind, name, size,
             sizeof(ct_module));
    ct_module *mod = calloc(1, size);
    if (!mod) ct_fatal(op, "%s layer %s: out of memory (%zu bytes)", kind, name, size);
    mod->kind = kind;
    memcpy(mod->name, name, strlen(name) + 1);
    mod->forward = forward;
    mod->destroy = module_free;
    mod->training = 1;
    return ct_model_add_module(m, mod);
}

/* "<module name>.<what>", checked against the model's name limit there */
static const char *sub_name(char *buf, size_t len, const ct_module *mod, const char *what, const char *op) {
    CT_CHECK(mod && what && *what, op, "the module is NULL or the parameter name is missing");
    snprintf(buf, len, "%s.%s", mod->name, what);
    return buf;
}

ct_tensor *ct_module_add_param(ct_model *m, const ct_module *mod, const char *what, ct_shape shape) {
    char name[160];
    return ct_model_add_param(m, sub_name(name, sizeof name, mod, what, "ct_module_add_param"), shape);
}

ct_tensor *ct_module_add_buffer(ct_model *m, const ct_module *mod, const char *what, ct_shape shape) {
    char name[160];
    return ct_model_add_buffer(m, sub_name(name, sizeof name, mod, what, "ct_module_add_buffer"), shape);
}

void *ct_module_as(const ct_module *mod, const char *kind, const char *op) {
    CT_CHECK(mod && mod->kind && strcmp(mod->kind, kind) == 0, op, "module %s (kind %s) is not a layer of kind %s",
             mod ? mod->name : "(null)", mod && mod->kind ? mod->kind : "(null)", kind);
    return (void *)mod;
}
