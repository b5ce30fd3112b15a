/* optim/optim.c — what every optimizer shares: the flat parameter list, parameter groups (lr
 * scale and weight decay), named per-parameter state, step counting, zeroing the grads, and
 * saving/loading the state as safetensors. The update rules live in one file each (sgd.c,
 * adam.c, rmsprop.c); the guards in guards.c. */
#define CT_BUILDING_LIBRARY
#include "optim.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
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

/* ---- save / load ------------------------------------------------------------------------
 * One list of (name, tensor) pairs: optionally the model's parameters and buffers, then every
 * state tensor as "<param>.<slot>"; and the metadata as string pairs. */

enum { ANY_VALUE, FINITE, FINITE_NONNEGATIVE };

typedef struct {
    int n;
    char **names;
    ct_tensor **tensors;
    unsigned char *check; /* per tensor: ANY_VALUE (the model's), FINITE or FINITE_NONNEGATIVE (state) */
    char **meta; /* key, value, ..., NULL */
    int n_meta;
} entries;

static void entries_free(entries *e) {
    for (int i = 0; i < e->n; i++) free(e->names[i]);
    for (int i = 0; i < e->n_meta; i++) free(e->meta[i]);
    free(e->names);
    free(e->tensors);
    free(e->check);
    free(e->meta);
}

/* State that is a sum, an average or a maximum of squares or absolute values: never negative
 * (a negative one would make a square root NaN in the next step). */
static const char *const nonnegative_states[] = {"exp_avg_sq", "max_exp_avg_sq", "exp_inf", "exp_avg_var", "square_avg",
                                                 "sum", "acc_delta", "exp_avg_sq_row", "exp_avg_sq_col"};

static int state_is_nonnegative(const char *slot) {
    for (size_t i = 0; i < sizeof nonnegative_states / sizeof *nonnegative_states; i++)
        if (!strcmp(slot, nonnegative_states[i])) return 1;
    return 0;
}

static char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xstrdup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)len + 1, "ct_optim_save");
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void add_meta(entries *e, char *key, char *value) {
    e->meta = xrealloc(e->meta, (size_t)(e->n_meta + 3) * sizeof *e->meta, "ct_optim_save");
    e->meta[e->n_meta++] = key;
    e->meta[e->n_meta++] = value;
    e->meta[e->n_meta] = NULL;
}

static void collect(const ct_optim *opt, int with_model, entries *e) {
    memset(e, 0, sizeof *e);
    int cap = opt->n_params * opt->n_slots;
    if (with_model) cap += ct_model_param_count(opt->model) + ct_model_buffer_count(opt->model);
    e->names = xmalloc((size_t)cap * sizeof *e->names, "ct_optim_save");
    e->tensors = xmalloc((size_t)cap * sizeof *e->tensors, "ct_optim_save");
    e->check = xmalloc((size_t)cap * sizeof *e->check, "ct_optim_save");
    if (with_model) {
        for (int i = 0; i < ct_model_param_count(opt->model); i++) {
            ct_tensor *p = ct_model_param(opt->model, i);
            e->names[e->n] = xstrdup_printf("%s", p->name);
            e->check[e->n] = ANY_VALUE;
            e->tensors[e->n++] = p;
        }
        for (int i = 0; i < ct_model_buffer_count(opt->model); i++) {
            ct_tensor *b = ct_model_buffer(opt->model, i);
            e->names[e->n] = xstrdup_printf("%s", b->name);
            e->check[e->n] = ANY_VALUE;
            e->tensors[e->n++] = b;
        }
    }
    for (int s = 0; s < opt->n_slots; s++)
        for (int k = 0; k < opt->n_params; k++) {
            ct_tensor *t = opt->slots[s].tensors[k];
            if (!t) continue;
            const char *pname = opt->params[k]->name ? opt->params[k]->name : "";
            if (pname[0]) e->names[e->n] = xstrdup_printf("%s.%s", pname, opt->slots[s].name);
            else e->names[e->n] = xstrdup_printf("param%d.%s", k, opt->slots[s].name);
            e->check[e->n] = state_is_nonnegative(opt->slots[s].name) ? FINITE_NONNEGATIVE : FINITE;
            e->tensors[e->n++] = t;
        }
    add_meta(e, xstrdup_printf("ctape.optimizer"), xstrdup_printf("%s", opt->cls->name));
    add_meta(e, xstrdup_printf("ctape.step"), xstrdup_printf("%ld", opt->steps));
    char num[32];
    add_meta(e, xstrdup_printf("ctape.lr"), xstrdup_printf("%s", ct_safetensors_format_number(opt->lr, num)));
    add_meta(e, xstrdup_printf("ctape.groups"), xstrdup_printf("%d", opt->n_groups));
    for (int g = 0; g < opt->n_groups; g++) {
        add_meta(e, xstrdup_printf("ctape.group.%d.lr_scale", g), xstrdup_printf("%s", ct_safetensors_format_number(opt->groups[g].lr_scale, num)));
        add_meta(e, xstrdup_printf("ctape.group.%d.weight_decay", g),
                 xstrdup_printf("%s", ct_safetensors_format_number(opt->groups[g].weight_decay, num)));
    }
    for (int i = 0; i < opt->n_scalars; i++)
        add_meta(e, xstrdup_printf("ctape.scalar.%s", opt->scalars[i].name),
                 opt->scalars[i].count ? xstrdup_printf("%ld", *opt->scalars[i].count)
                                       : xstrdup_printf("%s", ct_safetensors_format_number(*opt->scalars[i].value, num)));
    if (with_model) {
        add_meta(e, xstrdup_printf("format"), xstrdup_printf("pt"));
        add_meta(e, xstrdup_printf("framework"), xstrdup_printf("ctape"));
    }
}

static int save(const ct_optim *opt, const char *path, int with_model) {
    ct_optim_check(opt, with_model ? "ct_checkpoint_save" : "ct_optim_save");
    CT_CHECK(path, with_model ? "ct_checkpoint_save" : "ct_optim_save", "path is NULL");
    entries e;
    collect(opt, with_model, &e);
    int rc = ct_safetensors_check_finite(path, e.n, (const char *const *)e.names, e.tensors);
    if (rc == CT_OK)
        rc = ct_safetensors_write(path, e.n, (const char *const *)e.names, e.tensors, (const char *const *)e.meta);
    entries_free(&e);
    return rc;
}

int ct_optim_save(const ct_optim *opt, const char *path) { return save(opt, path, 0); }
int ct_checkpoint_save(const ct_optim *opt, const char *path) { return save(opt, path, 1); }

/* A metadata number, all of the string parsed, or CT_ERR_FORMAT naming the file and key. */
static int meta_number(const ct_safetensors *f, const char *path, const char *key, double *out) {
    const char *v = ct_safetensors_metadata(f, key);
    if (!v) return ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"%s\" (not an optimizer state file?)", path, key);
    int rc = ct_safetensors_parse_number(v, out);
    if (rc == CT_ERR_MEMORY) return ct_set_error(rc, "%s: out of memory", path);
    if (rc != CT_OK) return ct_set_error(CT_ERR_FORMAT, "%s: metadata \"%s\" = \"%s\" is not a number", path, key, v);
    return CT_OK;
}

/* What a loaded number may be: the ranges the setters and constructors check, with their words. */
typedef struct {
    const char *what;  /* "lr" */
    double lo, hi;     /* lo <= v <= hi (hi = DBL_MAX: finite) */
    int whole;         /* an integer */
    const char *rule;  /* "finite and >= 0" */
} range;

static const range LR = {"lr", 0, DBL_MAX, 0, "finite and >= 0"};
static const range LR_SCALE = {"lr_scale", 0, DBL_MAX, 0, "finite and >= 0"};
static const range WEIGHT_DECAY = {"weight_decay", 0, DBL_MAX, 0, "finite and >= 0"};
static const range STEP = {"step", 0, 9e15, 1, "a whole number in [0, 9e15]"};
static const range COUNT = {"count", 0, 9e15, 1, "a whole number in [0, 9e15]"};
static const range NOT_NAN = {"value", -INFINITY, INFINITY, 0, "a number (not NaN)"};

/* The scalars this library's optimizers and trackers register, by name; any other scalar is only
 * refused when NaN, any count when negative or fractional. */
static const struct {
    const char *name;
    range r;
} known_scalars[] = {
    {"mu_product", {"mu_product", 0, 1, 0, "in [0, 1] (a product of NAdam momentum factors)"}},
    {"plateau.lr", {"lr", 0, DBL_MAX, 0, "finite and >= 0"}},
    {"plateau.best", {"best", -INFINITY, INFINITY, 0, "a number (not NaN)"}},
};

static const range *scalar_range(const ct_optim *opt, int i) {
    if (opt->scalars[i].count) return &COUNT;
    for (size_t k = 0; k < sizeof known_scalars / sizeof *known_scalars; k++)
        if (!strcmp(opt->scalars[i].name, known_scalars[k].name)) return &known_scalars[k].r;
    return &NOT_NAN;
}

/* meta_number, then CT_ERR_VALUE naming the file, the key and the rule when out of range. */
static int meta_in_range(const ct_safetensors *f, const char *path, const char *key, const range *r, double *out) {
    int rc = meta_number(f, path, key, out);
    if (rc != CT_OK) return rc;
    const double v = *out;
    if (!(v >= r->lo && v <= r->hi) || (r->whole && v != floor(v)))
        return ct_set_error(CT_ERR_VALUE, "%s: metadata \"%s\": %s %g must be %s", path, key, r->what, v, r->rule);
    return CT_OK;
}

typedef struct {
    const char *path;
    const entries *e;
} values_ctx;

/* State tensors: finite, and >= 0 for the ones that are never negative. */
static int check_state_values(const char *name, int i, const ct_real *x, size_t n, void *ctx) {
    const values_ctx *c = ctx;
    const int kind = c->e->check[i];
    if (kind == ANY_VALUE) return CT_OK;
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k]) || (kind == FINITE_NONNEGATIVE && x[k] < 0))
            return ct_set_error(CT_ERR_VALUE, "%s: state \"%s\"[%zu] = %g must be finite%s", c->path, name, k, (double)x[k],
                                kind == FINITE_NONNEGATIVE ? " and >= 0 (a sum or average of squares)" : "");
    return CT_OK;
}

static int load(ct_optim *opt, const char *path, int with_model) {
    const char *op = with_model ? "ct_checkpoint_load" : "ct_optim_load";
    ct_optim_check(opt, op);
    CT_CHECK(path, op, "path is NULL");
    ct_safetensors *f;
    int rc = ct_safetensors_try_open(path, &f);
    if (rc != CT_OK) return rc;
    const char *kind = ct_safetensors_metadata(f, "ctape.optimizer");
    double step = 0, lr = 0, n_groups = 0;
    double *group_vals = NULL, *scalar_vals = NULL;
    entries e = {0};
    if (!kind) {
        rc = ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"ctape.optimizer\" (not an optimizer state file?)", path);
        goto done;
    }
    if (strcmp(kind, opt->cls->name) != 0) {
        rc = ct_set_error(CT_ERR_VALUE, "%s: state of a \"%s\" optimizer cannot be loaded into \"%s\"", path, kind,
                          opt->cls->name);
        goto done;
    }
    if ((rc = meta_in_range(f, path, "ctape.step", &STEP, &step)) || (rc = meta_in_range(f, path, "ctape.lr", &LR, &lr)) ||
        (rc = meta_number(f, path, "ctape.groups", &n_groups)))
        goto done;
    if (n_groups != opt->n_groups) {
        rc = ct_set_error(CT_ERR_VALUE, "%s: has %g parameter groups, the optimizer %d (add the same groups before "
                          "loading)", path, n_groups, opt->n_groups);
        goto done;
    }
    group_vals = xmalloc((size_t)opt->n_groups * 2 * sizeof *group_vals, op);
    for (int g = 0; g < opt->n_groups; g++) {
        char key[64];
        snprintf(key, sizeof key, "ctape.group.%d.lr_scale", g);
        if ((rc = meta_in_range(f, path, key, &LR_SCALE, &group_vals[2 * g]))) goto done;
        snprintf(key, sizeof key, "ctape.group.%d.weight_decay", g);
        if ((rc = meta_in_range(f, path, key, &WEIGHT_DECAY, &group_vals[2 * g + 1]))) goto done;
    }
    scalar_vals = xmalloc((size_t)opt->n_scalars * sizeof *scalar_vals, op);
    for (int i = 0; i < opt->n_scalars; i++) {
        char key[128];
        snprintf(key, sizeof key, "ctape.scalar.%s", opt->scalars[i].name);
        if (!ct_safetensors_metadata(f, key)) {
            rc = ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"%s\": saved without that state (a plateau tracker "
                              "attached now but not then?)", path, key);
            goto done;
        }
        if ((rc = meta_in_range(f, path, key, scalar_range(opt, i), &scalar_vals[i]))) goto done;
    }
    collect(opt, with_model, &e);
    values_ctx ctx = {path, &e};
    if ((rc = ct_safetensors_load_checked(f, e.n, (const char *const *)e.names, e.tensors, check_state_values, &ctx)))
        goto done;
    /* everything checked and the tensors are in: now the scalars */
    opt->steps = (long)step;
    opt->lr = lr;
    for (int g = 0; g < opt->n_groups; g++) {
        opt->groups[g].lr_scale = group_vals[2 * g];
        opt->groups[g].weight_decay = group_vals[2 * g + 1];
    }
    for (int i = 0; i < opt->n_scalars; i++) {
        if (opt->scalars[i].count) *opt->scalars[i].count = (long)scalar_vals[i];
        else *opt->scalars[i].value = scalar_vals[i];
    }
done:
    entries_free(&e);
    free(group_vals);
    free(scalar_vals);
    ct_safetensors_close(f);
    return rc;
}

int ct_optim_load(ct_optim *opt, const char *path) { return load(opt, path, 0); }
int ct_checkpoint_load(ct_optim *opt, const char *path) { return load(opt, path, 1); }
