/* optim/wrappers.c — what wraps an optimizer or the weights: Lookahead, SAM, and an exponential
 * moving average of the weights for evaluation.
 *
 * Lookahead and SAM are ct_optims over the same parameters as the base optimizer they own; their
 * step calls ct_optim_step on the base (which runs the base's guards, counts its step and zeroes
 * the grads), after handing it the wrapper's lr so schedules set on the wrapper reach it. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARALLEL_MIN CT_OPTIM_PARALLEL_MIN

/* The base optimizer is the first member after ct_optim in both wrappers. */
typedef struct {
    ct_optim base;
    ct_optim *inner;
} wrapper;

static void wrapper_free(ct_optim *base) { ct_optim_free(((wrapper *)base)->inner); }

/* The base optimizer's momentum, which a schedule set on the wrapper moves (as it does the lr). */
static double *wrapper_momentum(ct_optim *base) {
    ct_optim *inner = ((wrapper *)base)->inner;
    return inner->cls->momentum ? inner->cls->momentum(inner) : NULL;
}

static void check_base(const char *op, ct_optim *inner) {
    CT_CHECK(inner, op, "base optimizer is NULL");
    ct_optim_check(inner, op);
    CT_CHECK(ct_model_param_count(inner->model) == inner->n_params, op,
             "the base optimizer (%s) was made for %d parameters but the model now has %d", inner->cls->name,
             inner->n_params, ct_model_param_count(inner->model));
}

/* ==== Lookahead ===============================================================================
 * k fast steps of the base optimizer, then  φ ← φ + α(θ − φ);  θ ← φ.
 * φ is taken from θ at the first step (not at construction, so a model loaded in between is
 * what the slow weights start from). */
typedef struct {
    ct_optim base;
    ct_optim *inner;
    ct_lookahead_opts o;
    int slow; /* state slot "slow_weights" */
} lookahead;

CT_KERNEL
static void lookahead_step(ct_optim *base) {
    lookahead *s = (lookahead *)base;
    if (base->steps == 0)
        for (int k = 0; k < base->n_params; k++)
            memcpy(ct_optim_state(base, s->slow, k), base->params[k]->data, base->params[k]->size * sizeof(ct_real));
    ct_optim_set_lr(s->inner, base->lr);
    ct_optim_step(s->inner);
    base->zeroed = 1;
    if ((base->steps + 1) % s->o.k != 0) return;
    const ct_real alpha = (ct_real)s->o.alpha;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        ct_real *restrict x = p->data, *restrict phi = ct_optim_state(base, s->slow, k);
        const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            phi[i] += alpha * (x[i] - phi[i]);
            x[i] = phi[i];
        }
    }
}

static const ct_optim_class lookahead_class = {"lookahead", lookahead_step, wrapper_free, wrapper_momentum};

ct_optim *ct_lookahead_new(ct_optim *inner, ct_lookahead_opts o) {
    static const char *op = "ct_lookahead_new";
    check_base(op, inner);
    CT_CHECK(o.k >= 1, op, "k %d must be >= 1", o.k);
    CT_CHECK(o.alpha >= 0 && o.alpha <= 1, op, "alpha %g must be in [0, 1]", o.alpha);
    lookahead *s = ct_optim_create(sizeof *s, &lookahead_class, inner->model, inner->lr, 0);
    s->inner = inner;
    s->o = o;
    s->slow = ct_optim_add_state(&s->base, "slow_weights", 0);
    return &s->base;
}

ct_optim *ct_lookahead_base(ct_optim *opt) {
    ct_optim_check(opt, "ct_lookahead_base");
    CT_CHECK(opt->cls == &lookahead_class, "ct_lookahead_base", "not a Lookahead optimizer (%s)",
             opt ? opt->cls->name : "NULL");
    return ((lookahead *)opt)->inner;
}

/* ==== SAM =====================================================================================
 *   g = ∇L(θ);  ε = ρ·w⊙g / ‖w⊙g‖ ⊙ w  with w = 1 (SAM) or |θ| (adaptive), ‖·‖ over all parameters
 *   θ ← θ + ε;  g' = ∇L(θ);  θ ← θ − ε;  base step with g'
 * The norm gets 1e-12 added, as the reference implementation (davda54/sam), so a zero gradient
 * perturbs nothing. θ is kept in the state "old_p" and copied back (θ + ε − ε is not always θ
 * in floating point), so the base step starts exactly from θ. */
typedef struct {
    ct_optim base;
    ct_optim *inner;
    ct_sam_opts o;
    int old; /* state slot "old_p": θ during the second pass */
    ct_closure closure;
    void *ctx;
    double loss;
} sam;

static void sam_step(ct_optim *base) {
    sam *s = (sam *)base;
    CT_CHECK(s->closure, "ct_optim_step", "SAM needs its closure for the second gradient: call "
             "ct_sam_step(opt, closure, ctx) instead");
    ct_optim_zero_grad(base);
    s->loss = s->closure(s->ctx);
    /* ‖w⊙g‖ over every parameter */
    double sq = 0;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const ct_real *restrict x = p->data, *restrict g = p->grad;
        const long n = (long)p->size;
        double part = 0;
        if (s->o.adaptive) {
#pragma omp parallel for simd reduction(+ : part) schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < n; i++) part += (double)x[i] * x[i] * (double)g[i] * g[i];
        } else {
#pragma omp parallel for simd reduction(+ : part) schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < n; i++) part += (double)g[i] * g[i];
        }
        sq += part;
    }
    const ct_real scale = (ct_real)(s->o.rho / (sqrt(sq) + 1e-12));
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        ct_real *restrict x = p->data, *restrict g = p->grad, *restrict old = ct_optim_state(base, s->old, k);
        const long n = (long)p->size;
        const int adaptive = s->o.adaptive;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            old[i] = x[i];
            x[i] += adaptive ? x[i] * x[i] * g[i] * scale : g[i] * scale;
            g[i] = 0;
        }
    }
    s->closure(s->ctx);
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        memcpy(p->data, ct_optim_state(base, s->old, k), p->size * sizeof(ct_real));
    }
    ct_optim_set_lr(s->inner, base->lr);
    ct_optim_step(s->inner);
    base->zeroed = 1;
}

static const ct_optim_class sam_class = {"sam", sam_step, wrapper_free, wrapper_momentum};

ct_optim *ct_sam_new(ct_optim *inner, ct_sam_opts o) {
    static const char *op = "ct_sam_new";
    check_base(op, inner);
    CT_CHECK(isfinite(o.rho) && o.rho >= 0, op, "rho %g must be finite and >= 0", o.rho);
    sam *s = ct_optim_create(sizeof *s, &sam_class, inner->model, inner->lr, 0);
    s->inner = inner;
    s->o = o;
    s->old = ct_optim_add_state(&s->base, "old_p", 0);
    return &s->base;
}

double ct_sam_step(ct_optim *opt, ct_closure closure, void *ctx) {
    static const char *op = "ct_sam_step";
    ct_optim_check(opt, op);
    CT_CHECK(opt->cls == &sam_class, op, "not a SAM optimizer (%s)", opt ? opt->cls->name : "NULL");
    CT_CHECK(closure, op, "closure is NULL");
    sam *s = (sam *)opt;
    s->closure = closure;
    s->ctx = ctx;
    s->loss = NAN;
    ct_optim_step(opt);
    s->closure = NULL;
    s->ctx = NULL;
    return s->loss;
}

ct_optim *ct_sam_base(ct_optim *opt) {
    ct_optim_check(opt, "ct_sam_base");
    CT_CHECK(opt->cls == &sam_class, "ct_sam_base", "not a SAM optimizer (%s)", opt ? opt->cls->name : "NULL");
    return ((sam *)opt)->inner;
}

/* ==== EMA of the weights ======================================================================
 *   s ← d·s + (1 − d)·θ,   d = decay, or min(decay, (1 + n)/(10 + n)) with warmup (n = updates so far)
 * written s ← s + (1 − d)(θ − s). Swapping exchanges values (not pointers: views of parameters
 * made by layers stay valid). */
#define EMA_MAGIC 0x616d6575u

struct ct_ema {
    uint32_t magic; /* EMA_MAGIC from ct_ema_new until ct_ema_free */
    ct_model *model;
    ct_ema_opts o;
    int n_params;
    ct_tensor **avg;  /* one per parameter; holds the training weights while swapped */
    long updates;
    int swapped;
};

ct_ema *ct_ema_new(ct_model *m, ct_ema_opts o) {
    static const char *op = "ct_ema_new";
    CT_CHECK(m, op, "model is NULL");
    CT_CHECK(o.decay >= 0 && o.decay <= 1, op, "decay %g must be in [0, 1]", o.decay);
    ct_ema *e = calloc(1, sizeof *e);
    if (!e) ct_fatal(op, "out of memory");
    e->magic = EMA_MAGIC;
    e->model = m;
    e->o = o;
    e->n_params = ct_model_param_count(m);
    e->avg = calloc((size_t)(e->n_params ? e->n_params : 1), sizeof *e->avg);
    if (!e->avg) ct_fatal(op, "out of memory");
    for (int k = 0; k < e->n_params; k++) {
        ct_tensor *p = ct_model_param(m, k);
        e->avg[k] = ct_tensor_new(ct_tensor_shape(p));
        e->avg[k]->name = p->name;
        memcpy(e->avg[k]->data, p->data, p->size * sizeof(ct_real));
    }
    return e;
}

/* Fatal, naming op, on NULL or an EMA freed already. */
static void ema_check(const ct_ema *e, const char *op) {
    CT_CHECK(e, op, "EMA is NULL");
    CT_CHECK(e->magic == EMA_MAGIC, op, "%p is not a live EMA: freed already (ct_ema_free twice, or used after it), "
             "or not made by ct_ema_new", (const void *)e);
}

static void ema_check_model(const ct_ema *e, const char *op) {
    ema_check(e, op);
    CT_CHECK(ct_model_param_count(e->model) == e->n_params, op,
             "the EMA was made for %d parameters but the model now has %d; make it after the last layer",
             e->n_params, ct_model_param_count(e->model));
}

CT_KERNEL
void ct_ema_update(ct_ema *e) {
    static const char *op = "ct_ema_update";
    ema_check_model(e, op);
    CT_CHECK(!e->swapped, op, "the averages are swapped into the model; ct_ema_swap back before updating");
    double d = e->o.decay;
    if (e->o.warmup) d = fmin(d, (1.0 + (double)e->updates) / (10.0 + (double)e->updates));
    const ct_real w = (ct_real)(1 - d);
    for (int k = 0; k < e->n_params; k++) {
        const ct_real *restrict x = ct_model_param(e->model, k)->data;
        ct_real *restrict s = e->avg[k]->data;
        const long n = (long)e->avg[k]->size;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) s[i] += w * (x[i] - s[i]);
    }
    e->updates++;
}

CT_KERNEL
void ct_ema_swap(ct_ema *e) {
    ema_check_model(e, "ct_ema_swap");
    for (int k = 0; k < e->n_params; k++) {
        ct_real *restrict x = ct_model_param(e->model, k)->data, *restrict s = e->avg[k]->data;
        const long n = (long)e->avg[k]->size;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            ct_real t = x[i];
            x[i] = s[i];
            s[i] = t;
        }
    }
    e->swapped = !e->swapped;
}

int ct_ema_swapped(const ct_ema *e) {
    ema_check(e, "ct_ema_swapped");
    return e->swapped;
}

long ct_ema_updates(const ct_ema *e) {
    ema_check(e, "ct_ema_updates");
    return e->updates;
}

void ct_ema_set_updates(ct_ema *e, long updates) {
    ema_check(e, "ct_ema_set_updates");
    CT_CHECK(updates >= 0, "ct_ema_set_updates", "the update count must be >= 0 (got %ld)", updates);
    e->updates = updates;
}

ct_tensor *ct_ema_average(const ct_ema *e, int k) {
    ema_check(e, "ct_ema_average");
    CT_CHECK(k >= 0 && k < e->n_params, "ct_ema_average", "parameter %d out of range [0, %d)", k, e->n_params);
    return e->swapped ? ct_model_param(e->model, k) : e->avg[k];
}

/* The averages (in the model while swapped) and the names of their parameters, malloc'd;
 * CT_ERR_MEMORY naming path. */
static int ema_tensors(const ct_ema *e, const char *path, ct_tensor ***ts, const char ***names) {
    *ts = malloc((size_t)(e->n_params ? e->n_params : 1) * sizeof **ts);
    *names = malloc((size_t)(e->n_params ? e->n_params : 1) * sizeof **names);
    if (!*ts || !*names) {
        free(*ts);
        free(*names);
        *ts = NULL;
        *names = NULL;
        return ct_set_error(CT_ERR_MEMORY, "%s: out of memory", path);
    }
    for (int k = 0; k < e->n_params; k++) {
        (*ts)[k] = ct_ema_average(e, k);
        (*names)[k] = ct_model_param(e->model, k)->name;
    }
    return CT_OK;
}

int ct_ema_save(const ct_ema *e, const char *path) {
    ema_check_model(e, "ct_ema_save");
    CT_CHECK(path, "ct_ema_save", "path is NULL");
    ct_tensor **ts;
    const char **names;
    int rc = ema_tensors(e, path, &ts, &names);
    if (rc != CT_OK) return rc;
    /* a model file (ct_model_metadata) with the update count and the decay */
    char updates[32], decay[32];
    snprintf(updates, sizeof updates, "%ld", e->updates);
    ct_safetensors_format_number(e->o.decay, decay);
    const char *meta[16];
    int k = 0;
    for (const char *const *kv = ct_model_metadata(); *kv && k < 11; kv++) meta[k++] = *kv;
    const char *const ours[] = {"ctape.ema.updates", updates, "ctape.ema.decay", decay, NULL};
    for (int i = 0; i < 5; i++) meta[k++] = ours[i];
    rc = ct_safetensors_check_finite(path, e->n_params, names, ts);
    if (rc == CT_OK) rc = ct_safetensors_write(path, e->n_params, names, ts, meta);
    free(ts);
    free(names);
    return rc;
}

/* The averages are weights: finite. */
static int check_average(const char *name, int i, const ct_real *x, size_t n, void *ctx) {
    (void)i;
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k]))
            return ct_set_error(CT_ERR_VALUE, "%s: average \"%s\"[%zu] = %g must be finite", (const char *)ctx, name, k,
                                (double)x[k]);
    return CT_OK;
}

/* The metadata "ctape.ema.updates" of f, a whole number >= 0, into *updates. */
static int saved_updates(const ct_safetensors *f, const char *path, long *updates) {
    const char *u = ct_safetensors_metadata(f, "ctape.ema.updates");
    if (!u) return ct_set_error(CT_ERR_FORMAT, "%s: no metadata \"ctape.ema.updates\" (not an EMA file?)", path);
    char *end = NULL;
    errno = 0;
    *updates = strtol(u, &end, 10);
    if (end == u || *end || !(u[0] == '-' || (u[0] >= '0' && u[0] <= '9')))
        return ct_set_error(CT_ERR_FORMAT, "%s: metadata \"ctape.ema.updates\" = \"%s\" is not a whole number", path, u);
    if (errno == ERANGE || *updates < 0)
        return ct_set_error(CT_ERR_VALUE, "%s: metadata \"ctape.ema.updates\": updates %s must be a whole number in [0, %ld]",
                            path, u, LONG_MAX);
    return CT_OK;
}

int ct_ema_load(ct_ema *e, const char *path) {
    ema_check_model(e, "ct_ema_load");
    CT_CHECK(path, "ct_ema_load", "path is NULL");
    ct_safetensors *f;
    int rc = ct_safetensors_try_open(path, &f);
    if (rc != CT_OK) return rc;
    long updates = 0;
    ct_tensor **ts = NULL;
    const char **names = NULL;
    if ((rc = saved_updates(f, path, &updates)) == CT_OK && (rc = ema_tensors(e, path, &ts, &names)) == CT_OK) {
        rc = ct_safetensors_load_checked(f, e->n_params, names, ts, check_average, (void *)path);
        if (rc == CT_OK) e->updates = updates;
    }
    free(ts);
    free(names);
    ct_safetensors_close(f);
    return rc;
}

void ct_ema_free(ct_ema *e) {
    if (!e) return;
    ema_check(e, "ct_ema_free");
    e->magic = 0;
    for (int k = 0; k < e->n_params; k++) ct_tensor_free(e->avg[k]);
    free(e->avg);
    free(e);
}
