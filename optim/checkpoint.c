/* optim/checkpoint.c — an optimizer's state on disk, alone (ct_optim_save/load) or with the
 * model's tensors in one file (ct_checkpoint_save/load), as safetensors (core/safetensors.h).
 *
 * One list of (name, tensor) pairs: with the model, ct_model_tensors (every parameter, then
 * every buffer, under their names) first; then every state tensor as "<param>.<slot>". The
 * metadata: the optimizer's kind, step, lr, groups and scalars as "ctape.*" pairs, then, with the
 * model, its random streams and ct_model_metadata, then a caller's extra pairs (a trainer's position). A load reads and range-checks every number and value before it
 * changes anything. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ANY_VALUE, FINITE, FINITE_NONNEGATIVE };

typedef struct {
    int n;
    char **names;
    ct_tensor **tensors;
    unsigned char *check; /* per tensor: ANY_VALUE (the model's), FINITE or FINITE_NONNEGATIVE (state) */
    char **meta;          /* key, value, ..., NULL */
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

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) ct_fatal("ct_optim_save", "out of memory (%zu bytes)", n);
    return p;
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
    char *s = xmalloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void add_meta(entries *e, char *key, char *value) {
    char **grown = realloc(e->meta, (size_t)(e->n_meta + 3) * sizeof *e->meta);
    if (!grown) ct_fatal("ct_optim_save", "out of memory");
    e->meta = grown;
    e->meta[e->n_meta++] = key;
    e->meta[e->n_meta++] = value;
    e->meta[e->n_meta] = NULL;
}

static void add_tensor(entries *e, char *name, ct_tensor *t, int check) {
    e->names[e->n] = name;
    e->check[e->n] = (unsigned char)check;
    e->tensors[e->n++] = t;
}

/* The optimizer's numbers as "ctape.*" metadata, exact in every locale. */
static void collect_metadata(const ct_optim *opt, entries *e) {
    char num[32];
    add_meta(e, xstrdup_printf("ctape.optimizer"), xstrdup_printf("%s", opt->cls->name));
    add_meta(e, xstrdup_printf("ctape.step"), xstrdup_printf("%ld", opt->steps));
    add_meta(e, xstrdup_printf("ctape.lr"), xstrdup_printf("%s", ct_safetensors_format_number(opt->lr, num)));
    add_meta(e, xstrdup_printf("ctape.groups"), xstrdup_printf("%d", opt->n_groups));
    for (int g = 0; g < opt->n_groups; g++) {
        add_meta(e, xstrdup_printf("ctape.group.%d.lr_scale", g),
                 xstrdup_printf("%s", ct_safetensors_format_number(opt->groups[g].lr_scale, num)));
        add_meta(e, xstrdup_printf("ctape.group.%d.weight_decay", g),
                 xstrdup_printf("%s", ct_safetensors_format_number(opt->groups[g].weight_decay, num)));
    }
    for (int i = 0; i < opt->n_scalars; i++)
        add_meta(e, xstrdup_printf("ctape.scalar.%s", opt->scalars[i].name),
                 opt->scalars[i].count ? xstrdup_printf("%ld", *opt->scalars[i].count)
                                       : xstrdup_printf("%s", ct_safetensors_format_number(*opt->scalars[i].value, num)));
}

/* The model's random streams as "ctape.rng.<stream>" = four 16-digit hex words (xoshiro256's state). */
static void collect_rngs(ct_model *m, entries *e) {
    for (int i = 0; i < ct_model_rng_count(m); i++) {
        const char *name;
        const ct_rng *r = ct_model_rng_stream(m, i, &name);
        add_meta(e, xstrdup_printf("ctape.rng.%s", name),
                 xstrdup_printf("%016llx %016llx %016llx %016llx", (unsigned long long)r->s[0],
                                (unsigned long long)r->s[1], (unsigned long long)r->s[2], (unsigned long long)r->s[3]));
    }
}

/* The file's tensors and metadata for opt (with the model's tensors, random streams and metadata:
 * with_model; then the caller's extra tensors and pairs). */
static void collect(const ct_optim *opt, int with_model, const ct_checkpoint_extra *extra, entries *e) {
    memset(e, 0, sizeof *e);
    const int n_model = with_model ? ct_model_tensor_count(opt->model) : 0;
    const int cap = n_model + opt->n_params * opt->n_slots + extra->n_tensors;
    e->names = xmalloc((size_t)cap * sizeof *e->names);
    e->tensors = xmalloc((size_t)cap * sizeof *e->tensors);
    e->check = xmalloc((size_t)cap * sizeof *e->check);
    if (with_model) {
        ct_model_tensors(opt->model, e->tensors);
        for (int i = 0; i < n_model; i++) add_tensor(e, xstrdup_printf("%s", e->tensors[i]->name), e->tensors[i], ANY_VALUE);
    }
    for (int s = 0; s < opt->n_slots; s++)
        for (int k = 0; k < opt->n_params; k++) {
            ct_tensor *t = opt->slots[s].tensors[k];
            if (!t) continue;
            const char *pname = opt->params[k]->name ? opt->params[k]->name : "";
            char *name = pname[0] ? xstrdup_printf("%s.%s", pname, opt->slots[s].name)
                                  : xstrdup_printf("param%d.%s", k, opt->slots[s].name);
            add_tensor(e, name, t, state_is_nonnegative(opt->slots[s].name) ? FINITE_NONNEGATIVE : FINITE);
        }
    for (int i = 0; i < extra->n_tensors; i++) {
        CT_CHECK(extra->names[i] && extra->tensors[i], "ct_checkpoint_extra", "extra tensor %d has no name or tensor", i);
        add_tensor(e, xstrdup_printf("%s", extra->names[i]), extra->tensors[i], FINITE);
    }
    collect_metadata(opt, e);
    if (with_model) {
        collect_rngs(opt->model, e);
        for (const char *const *kv = ct_model_metadata(); *kv; kv += 2)
            add_meta(e, xstrdup_printf("%s", kv[0]), xstrdup_printf("%s", kv[1]));
    }
    for (const char *const *kv = extra->metadata; kv && *kv; kv += 2) {
        CT_CHECK(kv[1], "ct_checkpoint_extra", "metadata key \"%s\" has no value (pairs, then NULL)", kv[0]);
        for (int i = 0; i < e->n_meta; i += 2)
            CT_CHECK(strcmp(e->meta[i], kv[0]) != 0, "ct_checkpoint_extra", "metadata key \"%s\" is the checkpoint's own",
                     kv[0]);
        add_meta(e, xstrdup_printf("%s", kv[0]), xstrdup_printf("%s", kv[1]));
    }
}

static int save(const ct_optim *opt, const char *path, int with_model, const ct_checkpoint_extra *extra) {
    ct_optim_check(opt, with_model ? "ct_checkpoint_save" : "ct_optim_save");
    CT_CHECK(path, with_model ? "ct_checkpoint_save" : "ct_optim_save", "path is NULL");
    entries e;
    collect(opt, with_model, extra, &e);
    int rc = ct_safetensors_check_finite(path, e.n, (const char *const *)e.names, e.tensors);
    if (rc == CT_OK)
        rc = ct_safetensors_write(path, e.n, (const char *const *)e.names, e.tensors, (const char *const *)e.meta);
    entries_free(&e);
    return rc;
}

static const ct_checkpoint_extra no_extra;
int ct_optim_save(const ct_optim *opt, const char *path) { return save(opt, path, 0, &no_extra); }
int ct_checkpoint_save(const ct_optim *opt, const char *path) { return save(opt, path, 1, &no_extra); }
int ct_checkpoint_save_extra(const ct_optim *opt, const char *path, ct_checkpoint_extra extra) {
    return save(opt, path, 1, &extra);
}

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

/* The optimizer's numbers read from f's metadata and checked, not yet applied. */
typedef struct {
    double step, lr;
    double *groups;  /* lr_scale, weight_decay per group */
    double *scalars; /* per registered scalar */
} saved_numbers;

static int read_numbers(const ct_optim *opt, const ct_safetensors *f, const char *path, saved_numbers *v) {
    const char *kind = ct_safetensors_metadata(f, "ctape.optimizer");
    if (!kind) return ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"ctape.optimizer\" (not an optimizer state file?)", path);
    if (strcmp(kind, opt->cls->name) != 0)
        return ct_set_error(CT_ERR_VALUE, "%s: state of a \"%s\" optimizer cannot be loaded into \"%s\"", path, kind,
                            opt->cls->name);
    int rc;
    double n_groups = 0;
    if ((rc = meta_in_range(f, path, "ctape.step", &STEP, &v->step)) || (rc = meta_in_range(f, path, "ctape.lr", &LR, &v->lr)) ||
        (rc = meta_number(f, path, "ctape.groups", &n_groups)))
        return rc;
    if (n_groups != opt->n_groups)
        return ct_set_error(CT_ERR_VALUE, "%s: has %g parameter groups, the optimizer %d (add the same groups before "
                            "loading)", path, n_groups, opt->n_groups);
    for (int g = 0; g < opt->n_groups; g++) {
        char key[64];
        snprintf(key, sizeof key, "ctape.group.%d.lr_scale", g);
        if ((rc = meta_in_range(f, path, key, &LR_SCALE, &v->groups[2 * g]))) return rc;
        snprintf(key, sizeof key, "ctape.group.%d.weight_decay", g);
        if ((rc = meta_in_range(f, path, key, &WEIGHT_DECAY, &v->groups[2 * g + 1]))) return rc;
    }
    for (int i = 0; i < opt->n_scalars; i++) {
        char key[128];
        snprintf(key, sizeof key, "ctape.scalar.%s", opt->scalars[i].name);
        if (!ct_safetensors_metadata(f, key))
            return ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"%s\": saved without that state (a plateau tracker "
                                "attached now but not then?)", path, key);
        if ((rc = meta_in_range(f, path, key, scalar_range(opt, i), &v->scalars[i]))) return rc;
    }
    return CT_OK;
}

/* One hex word of 16 digits at *p, then a space or the end. */
static int hex_word(const char **p, uint64_t *out) {
    uint64_t v = 0;
    for (int k = 0; k < 16; k++, (*p)++) {
        const char c = **p;
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 1;
}

/* The streams saved in f ("ctape.rng.*"), checked against the model's and parsed into states[i] for
 * stream i (have[i] = 1 when the file holds it; a file from before streams were saved holds none). */
static int read_rngs(ct_model *m, const ct_safetensors *f, const char *path, ct_rng *states, int *have) {
    const int n = ct_safetensors_metadata_count(f);
    for (int k = 0; k < n; k++) {
        const char *key = ct_safetensors_metadata_key(f, k);
        if (strncmp(key, "ctape.rng.", 10) != 0) continue;
        int i = 0;
        const char *name = NULL;
        for (; i < ct_model_rng_count(m); i++) {
            ct_model_rng_stream(m, i, &name);
            if (!strcmp(name, key + 10)) break;
        }
        if (i == ct_model_rng_count(m))
            return ct_set_error(CT_ERR_VALUE, "%s: random stream \"%s\" belongs to no module of this model (another "
                                "model's checkpoint?)", path, key + 10);
        const char *p = ct_safetensors_metadata(f, key);
        ct_rng r;
        int ok = 1;
        for (int w = 0; w < 4 && ok; w++) ok = hex_word(&p, &r.s[w]) && *p == (w < 3 ? ' ' : '\0') && (p++, 1);
        if (!ok || !(r.s[0] | r.s[1] | r.s[2] | r.s[3]))
            return ct_set_error(CT_ERR_FORMAT, "%s: metadata \"%s\" must be four 16-digit hex words, not all zero", path, key);
        states[i] = r, have[i] = 1;
    }
    return CT_OK;
}

static int load(ct_optim *opt, const char *path, int with_model, const ct_checkpoint_extra *extra) {
    const char *op = with_model ? "ct_checkpoint_load" : "ct_optim_load";
    ct_optim_check(opt, op);
    CT_CHECK(path, op, "path is NULL");
    ct_safetensors *f;
    int rc = ct_safetensors_try_open(path, &f);
    if (rc != CT_OK) return rc;
    saved_numbers v = {.groups = xmalloc((size_t)opt->n_groups * 2 * sizeof *v.groups),
                       .scalars = xmalloc((size_t)opt->n_scalars * sizeof *v.scalars)};
    entries e = {0};
    const int n_rngs = with_model ? ct_model_rng_count(opt->model) : 0;
    ct_rng *rngs = xmalloc((size_t)n_rngs * sizeof *rngs);
    int *have_rng = calloc((size_t)n_rngs + 1, sizeof *have_rng);
    if (!have_rng) ct_fatal(op, "out of memory");
    if ((rc = read_numbers(opt, f, path, &v)) != CT_OK) goto done;
    if (with_model && (rc = read_rngs(opt->model, f, path, rngs, have_rng)) != CT_OK) goto done;
    if (extra->check && (rc = extra->check(f, path, extra->user)) != CT_OK) goto done;
    collect(opt, with_model, extra, &e);
    values_ctx ctx = {path, &e};
    if ((rc = ct_safetensors_load_checked(f, e.n, (const char *const *)e.names, e.tensors, check_state_values, &ctx)))
        goto done;
    /* everything checked and the tensors are in: now the numbers */
    opt->steps = (long)v.step;
    opt->lr = v.lr;
    for (int g = 0; g < opt->n_groups; g++) {
        opt->groups[g].lr_scale = v.groups[2 * g];
        opt->groups[g].weight_decay = v.groups[2 * g + 1];
    }
    for (int i = 0; i < opt->n_scalars; i++) {
        if (opt->scalars[i].count) *opt->scalars[i].count = (long)v.scalars[i];
        else *opt->scalars[i].value = v.scalars[i];
    }
    for (int i = 0; i < n_rngs; i++)
        if (have_rng[i]) *ct_model_rng_stream(opt->model, i, NULL) = rngs[i];
done:
    free(rngs), free(have_rng);
    entries_free(&e);
    free(v.groups);
    free(v.scalars);
    ct_safetensors_close(f);
    return rc;
}

int ct_optim_load(ct_optim *opt, const char *path) { return load(opt, path, 0, &no_extra); }
int ct_checkpoint_load(ct_optim *opt, const char *path) { return load(opt, path, 1, &no_extra); }
int ct_checkpoint_load_extra(ct_optim *opt, const char *path, ct_checkpoint_extra extra) {
    return load(opt, path, 1, &extra);
}
