/* optim/optimizer.h — writing an optimizer: the struct the core shares with every optimizer,
 * the class an optimizer fills in, its state and scalars, and a template. A training loop needs
 * only optim/optim.h; this header is for whoever adds an update rule (every .c file in optim/
 * includes it). optim/README.md, "Adding an optimizer", walks through it; optim/literature.c has
 * six worked examples.
 *
 * The core (optim/optim.c, guards.c, checkpoint.c) owns the parameter list, the parameter
 * groups, the state tensors, the step count, the guards and save/load: an optimizer is its
 * update rule and nothing else. */
#ifndef CTAPE_OPTIM_OPTIMIZER_H
#define CTAPE_OPTIM_OPTIMIZER_H

#include "optim.h"

/* ---- the template ----------------------------------------------------------------------------
 * In optim/<name>.c (or a program of your own): a struct whose first member is a ct_optim, a
 * class and a constructor.
 *
 *     typedef struct { ct_optim base; ct_lion_opts o; int exp_avg; } lion;   // a state slot index
 *     static void lion_step(ct_optim *base) {
 *         lion *s = (lion *)base;
 *         const long t = base->steps + 1;                            // this update's step number
 *         for (int k = 0; k < base->n_params; k++) {
 *             ct_tensor *p = base->params[k];
 *             if (!p->grad) continue;                                // frozen
 *             const ct_real lr = (ct_real)ct_optim_param_lr(base, k), wd = ...param_weight_decay...;
 *             ct_real *restrict x = p->data, *restrict g = p->grad;
 *             ct_real *restrict m = ct_optim_state(base, s->exp_avg, k);
 *             const long n = (long)p->size;
 *     #pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
 *             for (long i = 0; i < n; i++) { ...; g[i] = 0; }       // zero the grad in the same pass
 *         }
 *         base->zeroed = 1;
 *     }
 *     static double *lion_beta1(ct_optim *base) { return &((lion *)base)->o.beta1; }
 *     static const ct_optim_class lion_class = {"lion", lion_step, NULL, lion_beta1};
 *     ct_optim *ct_lion_new(ct_model *m, ct_lion_opts o) {
 *         ...check options, fatal with "ct_lion_new: beta1 1.5 must be in [0, 1)"...
 *         lion *s = ct_optim_create(sizeof *s, &lion_class, m, o.lr, o.weight_decay);
 *         s->o = o;
 *         s->exp_avg = ct_optim_add_state(&s->base, "exp_avg", 0);
 *         return &s->base;
 *     }
 *
 * The core owns the parameter list, the groups, the state tensors (zero-filled or filled with
 * `init`, one per parameter, same shape; freed by ct_optim_free), the step count (incremented
 * after class->step), the guards and save/load. ct_optim_step zeroes the grads after the step
 * unless the step set `zeroed`. A class's `free` (may be NULL) releases only what the
 * optimizer allocated itself; the core frees the rest and the struct. A class's `momentum` (may
 * be NULL) points at the coefficient ct_optim_set_momentum and one-cycle schedules move.
 * Per-step scalars that are not a function of the step (e.g. a running product) are registered
 * with ct_optim_add_scalar so they are saved with the state. A wrapper (Lookahead, SAM) can keep an
 * inner ct_optim and call ct_optim_step on it from its own step. */
typedef struct ct_optim_class {
    const char *name;                  /* "sgd": the kind, in messages and checkpoints */
    void (*step)(ct_optim *opt);       /* one update from the grads; opt->steps is t − 1 */
    void (*free)(ct_optim *opt);       /* optional: frees the optimizer's own allocations */
    double *(*momentum)(ct_optim *opt); /* optional: where μ or β₁ lives (ct_optim_set_momentum),
                                           or NULL when this optimizer has none */
} ct_optim_class;

typedef struct {
    double lr_scale;                   /* group lr = opt->lr · lr_scale */
    double weight_decay;
} ct_param_group;

typedef struct {
    const char *name;                  /* "exp_avg" */
    ct_tensor **tensors;               /* one per parameter, or NULL where it has none */
} ct_optim_state_slot;

struct ct_optim {
    uint32_t magic;                    /* CT_OPTIM_MAGIC from ct_optim_create until ct_optim_free */
    const ct_optim_class *cls;
    ct_model *model;
    ct_tensor **params;                /* the model's parameters when the optimizer was made */
    int n_params;
    double lr;                         /* base lr */
    long steps;                        /* completed steps */
    int zeroed;                        /* set by a step that zeroed the grads itself */
    /* groups */
    ct_param_group *groups;
    int n_groups;
    int *group_of;                     /* n_params group indices */
    /* state */
    ct_optim_state_slot *slots;
    int n_slots;
    struct { const char *name; double *value; long *count; } *scalars; /* value or count */
    int n_scalars;
    /* guards */
    ct_guard_opts guards;
    double last_grad_norm;
    long skipped;
};

/* Below this many elements a parameter is updated by one thread: starting a team costs more. */
#define CT_OPTIM_PARALLEL_MIN 32768
/* √x and |x| in ct_real's precision, for update loops (sqrtf in the float32 build: sqrt would
 * convert every element to double and back). */
#ifdef CT_PRECISION_64
#define ct_real_sqrt(x) __builtin_sqrt(x)
#define ct_real_fabs(x) __builtin_fabs(x)
#else
#define ct_real_sqrt(x) __builtin_sqrtf(x)
#define ct_real_fabs(x) __builtin_fabsf(x)
#endif

/* Allocates `size` zeroed bytes (the optimizer's struct, ct_optim first), fills the common
 * part with the model's parameters in one group (lr, weight_decay). Fatal on a bad lr. */
void *ct_optim_create(size_t size, const ct_optim_class *cls, ct_model *m, double lr, double weight_decay);
/* Fatal, naming op, when opt is NULL or not a live optimizer (freed already, or not made by
 * ct_optim_create): every public ct_optim_* function checks its optimizer so. The freed case is
 * caught while the memory has not been handed out again (a cheap check, not a guarantee). */
#define CT_OPTIM_MAGIC 0x6d74706fu
void ct_optim_check(const ct_optim *opt, const char *op);
/* A state tensor per parameter, shaped as the parameter and filled with init; returns the slot. */
int ct_optim_add_state(ct_optim *opt, const char *name, double init);
/* A state tensor per parameter shaped by shape_of (return 0 for no tensor for that parameter),
 * e.g. Adafactor's row and column statistics; zero-filled. */
int ct_optim_add_state_shaped(ct_optim *opt, const char *name,
                              int (*shape_of)(const ct_tensor *param, ct_shape *shape, void *ctx), void *ctx);
/* The state slot's data for parameter k (NULL when it has none). */
static inline ct_real *ct_optim_state(const ct_optim *opt, int slot, int k) {
    ct_tensor *t = opt->slots[slot].tensors[k];
    return t ? t->data : NULL;
}
ct_tensor *ct_optim_state_tensor(const ct_optim *opt, int slot, int k);
int ct_optim_find_state(const ct_optim *opt, const char *name); /* slot index or -1 */
/* Registers a double of the optimizer (or a count: a long) that is saved and loaded with the
 * state; fatal on a name already registered. */
void ct_optim_add_scalar(ct_optim *opt, const char *name, double *value);
void ct_optim_add_count(ct_optim *opt, const char *name, long *count);
/* Parameter k's lr (base × group scale) and weight decay. */
static inline double ct_optim_param_lr(const ct_optim *opt, int k) {
    return opt->lr * opt->groups[opt->group_of[k]].lr_scale;
}
static inline double ct_optim_param_weight_decay(const ct_optim *opt, int k) {
    return opt->groups[opt->group_of[k]].weight_decay;
}

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_optim_create(...) CT_SITE_CALL(ct_optim_create, __VA_ARGS__)
#define ct_optim_add_state(...) CT_SITE_CALL_CLEARING(ct_optim_add_state, __VA_ARGS__)
#define ct_optim_add_state_shaped(...) CT_SITE_CALL_CLEARING(ct_optim_add_state_shaped, __VA_ARGS__)
#define ct_optim_state_tensor(...) CT_SITE_CALL(ct_optim_state_tensor, __VA_ARGS__)
#define ct_optim_find_state(...) CT_SITE_CALL(ct_optim_find_state, __VA_ARGS__)
#define ct_optim_add_scalar(...) CT_SITE_CALL_VOID(ct_optim_add_scalar, __VA_ARGS__)
#define ct_optim_add_count(...) CT_SITE_CALL_VOID(ct_optim_add_count, __VA_ARGS__)
#endif

#endif
