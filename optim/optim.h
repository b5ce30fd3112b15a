/* optim/optim.h — optimizers over a model's parameter registry.
 *
 *     ct_optim *opt = ct_adamw_new(m, CT_ADAMW(.lr = 3e-4));
 *     ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.weight_decay = 0)); // no decay on biases, norms
 *     ct_optim_set_guards(opt, CT_GUARDS(.clip_norm = 1.0, .nonfinite = CT_NONFINITE_SKIP));
 *     ... ct_backward(tape, loss); ct_optim_step(opt); ...
 *     ct_checkpoint_save(opt, "run.safetensors");          // model + optimizer state, one file
 *
 * ct_optim_step runs the guards (non-finite check, ⊥Grad, clipping), applies one update from the
 * gradients on the parameters, then zeroes them. Every optimizer follows torch.optim's
 * semantics (version 1.13) where PyTorch has it; the differences are documented beside it. */
#ifndef CTAPE_OPTIM_OPTIM_H
#define CTAPE_OPTIM_OPTIM_H

#include "../nn/nn.h"

typedef struct ct_optim ct_optim;

/* ==== the optimizers =========================================================================
 * Each takes the model's parameters when it is made (as PyTorch's param list; stepping after
 * adding parameters to the model is fatal) and an options struct whose macro fills in the
 * published defaults. Bad options are programmer errors (fatal, naming the option and value).
 * `maximize` ascends instead of descending (g ← −∇), as PyTorch's flag. Weight decay below is
 * each parameter's group's (see parameter groups). */

/* SGD (torch.optim.SGD):
 *   g ← ∇ + λ·θ
 *   b ← g on the first step, else μ·b + (1 − τ)·g          (momentum μ, dampening τ)
 *   g ← g + μ·b with Nesterov, else b                      (when μ ≠ 0)
 *   θ ← θ − lr·g                                           state: "momentum_buffer" (μ ≠ 0) */
typedef struct {
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    int nesterov;        /* needs momentum > 0 and dampening = 0 */
    int maximize;
} ct_sgd_opts;
#define CT_SGD(...) CT_WITH_DEFAULTS(ct_sgd_opts, (.lr = 1e-3, .momentum = 0, .dampening = 0, \
                                                  .weight_decay = 0, .nesterov = 0, .maximize = 0), __VA_ARGS__)
ct_optim *ct_sgd_new(ct_model *m, ct_sgd_opts opts);

/* The Adam family (optim/adam.c) shares one options struct; each macro has its published
 * defaults, and an option a method does not have (amsgrad on NAdam) is a fatal error.
 * t is the step (1, 2, ...), m and v the first and second moments, starting at 0.
 *
 * Adam (Kingma & Ba 2015; torch.optim.Adam), L2 weight decay added to the gradient:
 *   g ← ∇ + λθ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
 *   v̂ ← max(v̂, v) with AMSGrad, else v
 *   θ ← θ − lr/(1−β₁ᵗ) · m / (√v̂/√(1−β₂ᵗ) + ε)        (ε outside the square root)
 * AdamW (Loshchilov & Hutter 2019; torch.optim.AdamW): the same with decoupled decay,
 *   θ ← θ·(1 − lr·λ) first, and g = ∇. Default λ = 0.01.
 * Adamax (Kingma & Ba, sec. 7.1): u ← max(β₂u, |g| + ε);  θ ← θ − lr/(1−β₁ᵗ) · m/u. lr 2e-3.
 * NAdam (Dozat 2016; torch.optim.NAdam) with momentum decay ψ = 0.004:
 *   μₜ = β₁(1 − ½·0.96^(tψ)),  Πₜ = μ₁⋯μₜ
 *   θ ← θ − lr·(1−μₜ)/(1−Πₜ) · g/d − lr·μₜ₊₁/(1−Πₜμₜ₊₁) · m/d,   d = √(v/(1−β₂ᵗ)) + ε.   lr 2e-3.
 *   (PyTorch 1.13 multiplies Πₜ₊₁ by μₜ twice; this is the paper's and PyTorch ≥ 2.0's Πₜμₜ₊₁.)
 * RAdam (Liu et al. 2020; torch.optim.RAdam): ρ∞ = 2/(1−β₂) − 1, ρₜ = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ);
 *   while ρₜ ≤ 5: θ ← θ − lr·m/(1−β₁ᵗ)  (SGD with momentum: the variance is not yet tractable)
 *   after:      θ ← θ − lr·r·m/(1−β₁ᵗ) · √(1−β₂ᵗ)/(√v + ε),
 *               r = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ)).
 * State: "exp_avg", "exp_avg_sq" (Adamax: "exp_avg", "exp_inf"), "max_exp_avg_sq" with AMSGrad. */
typedef struct {
    double lr;
    double beta1, beta2;
    double eps;
    double weight_decay;
    int amsgrad;              /* Adam, AdamW */
    int maximize;             /* Adam, AdamW, Adamax */
    double momentum_decay;    /* NAdam's ψ */
} ct_adam_opts;
#define CT__ADAM_DEFAULTS(lr_, wd_) .lr = lr_, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, \
    .weight_decay = wd_, .amsgrad = 0, .maximize = 0, .momentum_decay = 0
#define CT_ADAM(...) CT_WITH_DEFAULTS(ct_adam_opts, (CT__ADAM_DEFAULTS(1e-3, 0)), __VA_ARGS__)
#define CT_ADAMW(...) CT_WITH_DEFAULTS(ct_adam_opts, (CT__ADAM_DEFAULTS(1e-3, 1e-2)), __VA_ARGS__)
#define CT_ADAMAX(...) CT_WITH_DEFAULTS(ct_adam_opts, (CT__ADAM_DEFAULTS(2e-3, 0)), __VA_ARGS__)
#define CT_NADAM(...) CT_WITH_DEFAULTS(ct_adam_opts, (CT__ADAM_DEFAULTS(2e-3, 0), .momentum_decay = 4e-3), __VA_ARGS__)
#define CT_RADAM(...) CT_WITH_DEFAULTS(ct_adam_opts, (CT__ADAM_DEFAULTS(1e-3, 0)), __VA_ARGS__)
ct_optim *ct_adam_new(ct_model *m, ct_adam_opts opts);
ct_optim *ct_adamw_new(ct_model *m, ct_adam_opts opts);
ct_optim *ct_adamax_new(ct_model *m, ct_adam_opts opts);
ct_optim *ct_nadam_new(ct_model *m, ct_adam_opts opts);
ct_optim *ct_radam_new(ct_model *m, ct_adam_opts opts);

/* RMSprop (Hinton's lecture 6e; torch.optim.RMSprop):
 *   g ← ∇ + λθ;  s ← αs + (1−α)g²
 *   centered: a ← αa + (1−α)g,  d = √(s − a²) + ε;   else d = √s + ε
 *   momentum μ > 0: b ← μb + g/d,  θ ← θ − lr·b;      else θ ← θ − lr·g/d
 * State: "square_avg", "grad_avg" (centered), "momentum_buffer" (μ > 0). */
typedef struct {
    double lr, alpha, eps, weight_decay, momentum;
    int centered, maximize;
} ct_rmsprop_opts;
#define CT_RMSPROP(...) CT_WITH_DEFAULTS(ct_rmsprop_opts, (.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, \
    .weight_decay = 0, .momentum = 0, .centered = 0, .maximize = 0), __VA_ARGS__)
ct_optim *ct_rmsprop_new(ct_model *m, ct_rmsprop_opts opts);

/* Adagrad (Duchi et al. 2011; torch.optim.Adagrad):
 *   g ← ∇ + λθ;  s ← s + g²  (s starts at initial_accumulator_value)
 *   θ ← θ − lr/(1 + (t−1)·lr_decay) · g/(√s + ε)                  State: "sum". */
typedef struct {
    double lr, lr_decay, weight_decay, initial_accumulator_value, eps;
    int maximize;
} ct_adagrad_opts;
#define CT_ADAGRAD(...) CT_WITH_DEFAULTS(ct_adagrad_opts, (.lr = 1e-2, .lr_decay = 0, .weight_decay = 0, \
    .initial_accumulator_value = 0, .eps = 1e-10, .maximize = 0), __VA_ARGS__)
ct_optim *ct_adagrad_new(ct_model *m, ct_adagrad_opts opts);

/* Adadelta (Zeiler 2012; torch.optim.Adadelta), with a learning rate (1.0 is the paper's):
 *   g ← ∇ + λθ;  s ← ρs + (1−ρ)g²;  δ = √(u + ε)/√(s + ε) · g;  u ← ρu + (1−ρ)δ²;  θ ← θ − lr·δ
 * State: "square_avg", "acc_delta". */
typedef struct {
    double lr, rho, eps, weight_decay;
    int maximize;
} ct_adadelta_opts;
#define CT_ADADELTA(...) CT_WITH_DEFAULTS(ct_adadelta_opts, (.lr = 1.0, .rho = 0.9, .eps = 1e-6, \
    .weight_decay = 0, .maximize = 0), __VA_ARGS__)
ct_optim *ct_adadelta_new(ct_model *m, ct_adadelta_opts opts);

/* ==== using an optimizer ===================================================================== */
/* Runs the guards, applies one update to every parameter that has a grad buffer, counts the
 * step and zeroes the grads. Returns CT_OK, or when a grad holds NaN or Inf: CT_ERR_VALUE
 * (the default guard: nothing applied, grads left for inspection) or, with CT_NONFINITE_SKIP,
 * CT_OPTIM_SKIPPED (nothing applied, grads zeroed, step not counted); ct_last_error() then
 * names the parameter, the index and the value. */
#define CT_OPTIM_SKIPPED 1
int ct_optim_step(ct_optim *opt);
void ct_optim_zero_grad(ct_optim *opt);
/* The base learning rate (what schedules set); each group's lr is this times its scale. */
double ct_optim_lr(const ct_optim *opt);
void ct_optim_set_lr(ct_optim *opt, double lr);
/* The momentum coefficient a schedule may move (PyTorch's OneCycleLR cycles the same one): μ of
 * SGD, RMSprop and LARS, β₁ of the Adam family, AdaBelief, Lion, LAMB and ADOPT; a wrapper's is
 * its base optimizer's. Fatal for an optimizer without one (Adagrad, Adadelta, Adafactor, and
 * SGD, RMSprop or LARS built with momentum 0, which keep no momentum buffer), and for a value
 * outside [0, 1). */
int ct_optim_has_momentum(const ct_optim *opt);
double ct_optim_momentum(const ct_optim *opt);
void ct_optim_set_momentum(ct_optim *opt, double momentum);
/* Number of steps applied so far (t of the last update). */
long ct_optim_steps(const ct_optim *opt);
const char *ct_optim_kind(const ct_optim *opt); /* "sgd", "adam", ... */
/* Frees the optimizer (and a wrapper's base). NULL does nothing; a second free of the same
 * optimizer is fatal with a message, as is any use after it (NULL too) in every ct_optim_*. */
void ct_optim_free(ct_optim *opt);

/* ---- parameter groups -----------------------------------------------------------------------
 * Every parameter starts in group 0 with the optimizer's lr and weight decay. ct_optim_add_group
 * moves the parameters for which pred(param, ctx) is nonzero into a new group (from whichever
 * group they were in) and returns its index. A group's lr is given in absolute terms and kept
 * as a scale of the base lr, so a schedule (ct_optim_set_lr) moves every group together, as
 * PyTorch's schedulers scale each group's initial lr. NAN keeps the optimizer's value.
 *     ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.weight_decay = 0));
 *     ct_optim_add_group(opt, ct_param_name_contains, "head.", CT_GROUP(.lr = 1e-2)); */
typedef struct {
    double lr;            /* NAN: the optimizer's (base) lr */
    double weight_decay;  /* NAN: the optimizer's weight decay */
} ct_group_opts;
#define CT_GROUP(...) CT_WITH_DEFAULTS(ct_group_opts, (.lr = __builtin_nan(""), .weight_decay = __builtin_nan("")), __VA_ARGS__)
typedef int (*ct_param_pred)(const ct_tensor *param, void *ctx);
int ct_optim_add_group(ct_optim *opt, ct_param_pred pred, void *ctx, ct_group_opts g);
/* Predicates: ndim <= 1 (biases, norm weights, scalars); the name contains the string ctx. */
int ct_param_is_vector(const ct_tensor *param, void *ctx);
int ct_param_name_contains(const ct_tensor *param, void *ctx);
int ct_optim_group_count(const ct_optim *opt);
int ct_optim_param_group(const ct_optim *opt, int k);          /* group of parameter k */
double ct_optim_group_lr(const ct_optim *opt, int g);          /* base lr × the group's scale */
double ct_optim_group_weight_decay(const ct_optim *opt, int g);
int ct_optim_group_size(const ct_optim *opt, int g);           /* parameters in group g */

/* ---- guards (optim/guards.c), run by ct_optim_step before the update, in this order ---------
 * 1. non-finite check: any NaN/Inf in a grad → skip the step or stop (return CT_ERR_VALUE).
 *    On by default, stopping: an optimizer never steps its weights into NaN unless told to
 *    (CT_NONFINITE_OFF, PyTorch's behaviour). Stop, not skip, because in float32 a NaN or Inf
 *    gradient is a bug or a divergence (log(0), an lr too large) that recurs, as Keras's
 *    TerminateOnNaN and Lightning treat it; PyTorch's GradScaler skips because fp16 loss scaling
 *    overflows by design and lowers the scale, which ctape does not do. CT_NONFINITE_SKIP is for
 *    data with rare bad batches. A stopped step applies nothing and leaves the grads for
 *    inspection (ct_optim_zero_grad to go on): check ct_optim_step's return. The check costs one
 *    read of the grads per step, none with clip_norm and no ⊥Grad (the norm's pass is the check);
 * 2. ⊥Grad (Prieto et al. 2025, "Grokking at the Edge of Numerical Stability"): per parameter
 *    tensor, g ← g − (g·w / ‖w‖²)·w, the gradient orthogonal to the weights (unchanged when
 *    w = 0), so the update cannot just scale the weights up (naive loss minimisation).
 *    CT_ORTHO_GRAD is the paper's projection; CT_ORTHO_GRAD_RESCALED then rescales g⊥ to the
 *    norm of g, as the authors' orthograd.py does;
 * 3. clip_norm: if the global L2 norm ‖g‖ over all parameters exceeds c, g ← g·c/‖g‖ (PyTorch's
 *    clip_grad_norm_ divides by ‖g‖ + 1e-6; this divides by ‖g‖, so the result has norm c);
 * 4. clip_value: g ← clamp(g, −v, v). */
typedef enum { CT_NONFINITE_OFF, CT_NONFINITE_SKIP, CT_NONFINITE_STOP } ct_nonfinite_policy;
enum { CT_ORTHO_GRAD = 1, CT_ORTHO_GRAD_RESCALED = 2 };
typedef struct {
    double clip_norm;              /* > 0 to clip by global norm */
    double clip_value;             /* > 0 to clip by value */
    ct_nonfinite_policy nonfinite;
    int ortho_grad;                /* 0, CT_ORTHO_GRAD or CT_ORTHO_GRAD_RESCALED */
} ct_guard_opts;
#define CT_GUARDS(...) CT_WITH_DEFAULTS(ct_guard_opts, (.clip_norm = 0, .clip_value = 0, \
    .nonfinite = CT_NONFINITE_STOP, .ortho_grad = 0), __VA_ARGS__)
void ct_optim_set_guards(ct_optim *opt, ct_guard_opts g);
/* The global grad norm of the last step, before clipping (NAN when no guard computed it). */
double ct_optim_last_grad_norm(const ct_optim *opt);
long ct_optim_skipped_steps(const ct_optim *opt);
/* The same operations on any list of tensors' grads (tensors without a grad are ignored).
 * ct_clip_grad_norm returns the norm before clipping (max_norm > 0). ct_grads_check_finite
 * returns CT_OK or CT_ERR_VALUE naming the first tensor, index and value. */
double ct_clip_grad_norm(ct_tensor *const tensors[], int n, double max_norm);
void ct_clip_grad_value(ct_tensor *const tensors[], int n, double clip_value);
double ct_grad_norm(ct_tensor *const tensors[], int n);
int ct_grads_check_finite(ct_tensor *const tensors[], int n);
void ct_ortho_grad(ct_tensor *const tensors[], int n);

/* ---- state on disk ---------------------------------------------------------------------------
 * Safetensors (nn/nn.h): each state tensor under "<param>.<state>" ("fc1.weight.exp_avg"),
 * metadata "ctape.optimizer" (the kind), "ctape.step", "ctape.lr", each group's
 * "ctape.group.<g>.lr_scale" / ".weight_decay", and the optimizer's scalars as
 * "ctape.scalar.<name>", all exact (%.17g, with a "." in every locale). Saving refuses a
 * non-finite state tensor, parameter or buffer (CT_ERR_VALUE naming it and the index; nothing
 * written), as ct_model_save. Writes are atomic. Loading checks the kind, the names and shapes
 * (strict) and every value before changing anything, with the ranges the setters check: the lr,
 * each group's lr_scale and weight_decay finite and >= 0; the step and every count a whole
 * number >= 0; NAdam's mu_product in [0, 1]; a plateau tracker's lr finite and >= 0 and its best
 * not NaN (any other scalar: not NaN); every state tensor finite, and the sums and averages of
 * squares (exp_avg_sq, max_exp_avg_sq, exp_inf, exp_avg_var, square_avg, sum, acc_delta,
 * exp_avg_sq_row/_col) >= 0. Errors: CT_ERR_IO (cannot open or read), CT_ERR_FORMAT (malformed:
 * not safetensors, a missing field, not a number), CT_ERR_VALUE (another kind of optimizer,
 * other groups, a value out of range), with ct_last_error() naming the file and the field; the
 * optimizer (and model) are then unchanged.
 * ct_checkpoint_* store the model's parameters and buffers (under their names, as
 * ct_model_save) and the optimizer's state in one file, so a run resumes exactly. */
int ct_optim_save(const ct_optim *opt, const char *path);
int ct_optim_load(ct_optim *opt, const char *path);
int ct_checkpoint_save(const ct_optim *opt, const char *path);
int ct_checkpoint_load(ct_optim *opt, const char *path);

/* ==== writing an optimizer ===================================================================
 * In optim/<name>.c: a struct whose first member is a ct_optim, a class and a constructor.
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

/* ---- schedules (optim/schedule.c) ---- */
/* A learning-rate schedule is a value: ct_schedule_lr(&s, step) is the lr for optimizer step
 * `step` (0-based), a pure function of the step, so resuming at step k needs nothing saved.
 * ct_optim_schedule(opt, &s) sets the lr for the optimizer's next step. The values match
 * torch.optim.lr_scheduler stepped once per optimizer step (tests/test_schedule.c compares
 * them). Any schedule takes a linear warmup in front (ct_schedule_with_warmup); the schedule
 * then starts at step 0 once the warmup is over, as torch's SequentialLR([LinearLR, ...]).
 * Fatal on a negative lr or a period < 1, naming the constructor and the value. */
typedef enum {
    CT_SCHEDULE_CONSTANT,    /* lr */
    CT_SCHEDULE_STEP,        /* lr·γ^⌊t/step_size⌋                                   StepLR */
    CT_SCHEDULE_MULTISTEP,   /* lr·γ^(number of milestones <= t)                     MultiStepLR */
    CT_SCHEDULE_EXPONENTIAL, /* lr·γ^t                                               ExponentialLR */
    CT_SCHEDULE_POLYNOMIAL,  /* lr·(1 − min(t, T)/T)^power                           PolynomialLR */
    CT_SCHEDULE_COSINE,      /* min + (lr − min)·(1 + cos(πt/T))/2                   CosineAnnealingLR */
    CT_SCHEDULE_SGDR,        /* the cosine over T_0, T_0·T_mult, ... restarting      CosineAnnealingWarmRestarts */
    CT_SCHEDULE_ONE_CYCLE,   /* up from max/div, down to max/(div·final_div)         OneCycleLR */
    CT_SCHEDULE_WSD,         /* warmup, stable at lr, decay over the last steps      (MiniCPM; Hägele et al.) */
} ct_schedule_kind;

typedef enum { CT_ANNEAL_COS, CT_ANNEAL_LINEAR } ct_anneal;
/* WSD's decay from lr to min_lr as its progress p goes 0 → 1. */
typedef enum {
    CT_WSD_SQRT,   /* 1 − √p (Hägele et al. 2024's best cooldown) */
    CT_WSD_LINEAR, /* 1 − p */
    CT_WSD_COSINE, /* (1 + cos πp)/2 */
} ct_wsd_decay;

#define CT_SCHEDULE_MAX_MILESTONES 16

typedef struct {
    ct_schedule_kind kind;
    double lr;                  /* base lr; the peak (max_lr) for one-cycle */
    long warmup_steps;          /* linear warmup in front; 0: none */
    double warmup_start;        /* the warmup's first lr is lr·warmup_start */
    long period;                /* step: step_size; polynomial, cosine: T; SGDR: T_0; one-cycle, WSD: total steps */
    double gamma;               /* step, multistep, exponential */
    long milestones[CT_SCHEDULE_MAX_MILESTONES]; /* multistep, sorted */
    int n_milestones;
    double power;               /* polynomial */
    double min_lr;              /* cosine, SGDR (eta_min), WSD */
    long t_mult;                /* SGDR */
    double pct_start, div_factor, final_div_factor; /* one-cycle */
    ct_anneal anneal;           /* one-cycle */
    int three_phase;            /* one-cycle */
    int cycle_momentum;         /* one-cycle: ct_schedule_momentum moves between these two */
    double base_momentum, max_momentum;
    long decay_steps;           /* WSD */
    ct_wsd_decay decay;         /* WSD */
} ct_schedule;

ct_schedule ct_schedule_constant(double lr);
/* γ = 0.1 is PyTorch's default for both. Milestones are step counts in increasing order
 * (repeats allowed: a milestone listed twice multiplies by γ²), at most CT_SCHEDULE_MAX_MILESTONES. */
ct_schedule ct_schedule_step(double lr, long step_size, double gamma);
ct_schedule ct_schedule_multistep(double lr, const long *milestones, int n_milestones, double gamma);
ct_schedule ct_schedule_exponential(double lr, double gamma);
/* Reaches 0 at total_steps and stays there. */
ct_schedule ct_schedule_polynomial(double lr, long total_steps, double power);
/* Cosine annealing (Loshchilov & Hutter 2017) from lr at t = 0 to min_lr at t = t_max. As in
 * PyTorch, the cosine goes on past t_max (rising again over the next t_max steps): stop at t_max,
 * or use SGDR for restarts. */
ct_schedule ct_schedule_cosine(double lr, long t_max, double min_lr);
/* SGDR: cosine annealing restarted at lr after t_0 steps, then t_0·t_mult, t_0·t_mult², ... */
ct_schedule ct_schedule_sgdr(double lr, long t_0, long t_mult, double min_lr);

/* One-cycle (Smith & Topin 2019, "Super-Convergence"), PyTorch's OneCycleLR: from
 * max_lr/div_factor up to max_lr over the first pct_start of total_steps, then down to
 * max_lr/(div_factor·final_div_factor) at step total_steps − 1; three_phase goes back down to
 * max_lr/div_factor first (symmetric) and anneals to the minimum in a third phase. Steps past
 * total_steps − 1 stay at the minimum (PyTorch raises).
 * With cycle_momentum (the default, as in PyTorch), the momentum moves against the lr with the
 * same annealing: max_momentum → base_momentum while the lr rises, back to max_momentum while it
 * falls (three_phase: and stays there in the third phase). ct_optim_schedule sets it with
 * ct_optim_set_momentum: SGD's μ, Adam's β₁ (see there; an optimizer without one is a fatal
 * error naming it, where PyTorch raises too, except that PyTorch also turns on the momentum of
 * an SGD built without: build it with momentum > 0, or set cycle_momentum = 0). */
typedef struct {
    double pct_start, div_factor, final_div_factor;
    ct_anneal anneal;
    int three_phase;
    int cycle_momentum;
    double base_momentum, max_momentum;
} ct_one_cycle_opts;
#define CT_ONE_CYCLE(...) CT_WITH_DEFAULTS(ct_one_cycle_opts, (.pct_start = 0.3, .div_factor = 25, \
    .final_div_factor = 1e4, .anneal = CT_ANNEAL_COS, .three_phase = 0, .cycle_momentum = 1, \
    .base_momentum = 0.85, .max_momentum = 0.95), __VA_ARGS__)
ct_schedule ct_schedule_one_cycle(double max_lr, long total_steps, ct_one_cycle_opts opts);

/* Warmup-stable-decay (MiniCPM, Hu et al. 2024; Hägele et al. 2024, "Scaling Laws and
 * Compute-Optimal Training Beyond Fixed Training Durations"): a linear warmup from 0 over
 * warmup_steps (lr·t/warmup_steps), lr until the last decay_steps of total_steps, then the decay
 * to min_lr at total_steps (and min_lr after). decay_steps = 0 means 20% of total_steps. */
typedef struct {
    long warmup_steps, decay_steps;
    double min_lr;
    ct_wsd_decay decay;
} ct_wsd_opts;
#define CT_WSD(...) CT_WITH_DEFAULTS(ct_wsd_opts, (.warmup_steps = 0, .decay_steps = 0, .min_lr = 0, \
    .decay = CT_WSD_SQRT), __VA_ARGS__)
ct_schedule ct_schedule_wsd(double lr, long total_steps, ct_wsd_opts opts);

/* s with a linear warmup of `steps` steps in front: lr·(start + (1 − start)·t/steps) for
 * t < steps, then s at step t − steps. start_factor in [0, 1]; torch's LinearLR defaults to 1/3,
 * Goyal et al. (2017) start near 0. */
ct_schedule ct_schedule_with_warmup(ct_schedule s, long steps, double start_factor);
/* The lr for optimizer step `step` >= 0. */
double ct_schedule_lr(const ct_schedule *s, long step);
/* The momentum for optimizer step `step` >= 0, or NAN for a schedule that leaves the momentum
 * alone (every one but a one-cycle with cycle_momentum; during a warmup in front of one, its
 * first value). */
double ct_schedule_momentum(const ct_schedule *s, long step);
/* ct_optim_set_lr(opt, ct_schedule_lr(s, ct_optim_steps(opt))), and the same for the momentum
 * when the schedule sets one: call before each step. */
void ct_optim_schedule(ct_optim *opt, const ct_schedule *s);

/* Reduce-on-plateau (torch.optim.lr_scheduler.ReduceLROnPlateau): stateful, driven by a metric
 * reported once per evaluation. When the metric has not improved on the best one by more than
 * `threshold` (relative: best·(1 ∓ threshold); absolute: best ∓ threshold) for more than
 * `patience` reports, lr ← max(lr·factor, min_lr), then `cooldown` reports are ignored.
 * Reductions smaller than eps are skipped. Defaults are PyTorch's. */
typedef enum { CT_PLATEAU_MIN, CT_PLATEAU_MAX } ct_plateau_mode;
typedef enum { CT_PLATEAU_REL, CT_PLATEAU_ABS } ct_plateau_threshold;
typedef struct {
    ct_plateau_mode mode;
    double factor;
    int patience;
    double threshold;
    ct_plateau_threshold threshold_mode;
    int cooldown;
    double min_lr, eps;
} ct_plateau_opts;
#define CT_PLATEAU(...) CT_WITH_DEFAULTS(ct_plateau_opts, (.mode = CT_PLATEAU_MIN, .factor = 0.1, \
    .patience = 10, .threshold = 1e-4, .threshold_mode = CT_PLATEAU_REL, .cooldown = 0, \
    .min_lr = 0, .eps = 1e-8), __VA_ARGS__)
typedef struct {
    ct_plateau_opts opts;
    double lr;          /* the current learning rate */
    double best;        /* best metric so far (±inf before the first) */
    long bad_reports;   /* reports since the last improvement */
    long cooldown_left;
    long reports;
} ct_plateau;
/* A plateau tracker starting at lr; fatal on factor outside [0, 1), negative patience,
 * threshold, cooldown or min_lr. */
ct_plateau ct_plateau_new(double lr, ct_plateau_opts opts);
/* Reports a metric; returns the lr to use from now on. A NaN metric counts as no improvement
 * (as in PyTorch). */
double ct_plateau_step(ct_plateau *p, double metric);
/* Saves p's state (lr, best, the counters) with opt's, in ct_optim_save and ct_checkpoint_save
 * ("ctape.scalar.plateau.*"), and restores it in the loads, so a run resumes with the tracker
 * where it was (PyTorch keeps it in the scheduler's state_dict). p must stay at this address
 * while opt lives; make it with the same options before loading. Once per optimizer. */
void ct_plateau_attach(ct_plateau *p, ct_optim *opt);

/* ---- optimizers from the literature (optim/literature.c) ---- */
/* PyTorch 1.13 has none of these: each follows its paper's algorithm box (tests compare them
 * with tests/reference/ref_literature.py, a NumPy transcription of those boxes), with the
 * paper's defaults. t is the step (1, 2, ...); norms and RMS are per parameter tensor ("per
 * layer"); weight decay is each parameter's group's. optim/README.md has them side by side.
 *
 * AdaBelief (Zhuang et al. 2020, Algorithm 2): Adam with the variance of g around its EMA:
 *   m ← β₁m + (1−β₁)g;  s ← β₂s + (1−β₂)(g − m)² + ε
 *   θ ← θ − lr · m/(1−β₁ᵗ) / (√(s/(1−β₂ᵗ)) + ε)
 * decoupled (default, as the authors' package): θ ← θ(1 − lr·λ) first; else g ← g + λθ.
 * ε = 1e-16 as the authors' package ≥ 0.1 (its optional rectification is not included).
 * State: "exp_avg", "exp_avg_var". */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int decoupled;
} ct_adabelief_opts;
#define CT_ADABELIEF(...) CT_WITH_DEFAULTS(ct_adabelief_opts, (.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, \
    .eps = 1e-16, .weight_decay = 0, .decoupled = 1), __VA_ARGS__)
ct_optim *ct_adabelief_new(ct_model *m, ct_adabelief_opts opts);

/* Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):
 *   c = β₁m + (1−β₁)g;  θ ← θ(1 − lr·λ) − lr·sign(c);  m ← β₂m + (1−β₂)g
 * Every coordinate moves by exactly lr (sign(0) = 0), so lr is typically 3-10x smaller than
 * AdamW's and λ 3-10x larger. State: "exp_avg". */
typedef struct {
    double lr, beta1, beta2, weight_decay;
} ct_lion_opts;
#define CT_LION(...) CT_WITH_DEFAULTS(ct_lion_opts, (.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.99, \
    .weight_decay = 0), __VA_ARGS__)
ct_optim *ct_lion_new(ct_model *m, ct_lion_opts opts);

/* LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2, φ(z) = z):
 *   m, v as Adam;  u = m/(1−β₁ᵗ) / (√(v/(1−β₂ᵗ)) + ε) + λθ
 *   θ ← θ − lr · ‖θ‖/‖u‖ · u          (trust ratio 1 when ‖θ‖ or ‖u‖ is 0)
 * State: "exp_avg", "exp_avg_sq". */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} ct_lamb_opts;
#define CT_LAMB(...) CT_WITH_DEFAULTS(ct_lamb_opts, (.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, \
    .eps = 1e-6, .weight_decay = 0.01), __VA_ARGS__)
ct_optim *ct_lamb_new(ct_model *m, ct_lamb_opts opts);

/* LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks",
 * Algorithm 1), layer-wise adaptive rate with momentum:
 *   local = η·‖θ‖ / (‖∇‖ + λ‖θ‖)       (1 when ‖θ‖ or ‖∇‖ is 0: zero-initialised biases move)
 *   b ← μb + lr·local·(∇ + λθ);  θ ← θ − b
 * η (trust_coefficient) 0.001, μ 0.9, λ 5e-4 as the paper's AlexNet runs; the paper has no single
 * lr (it scales with the batch, with warmup): with lr = 1 each layer moves by about η of its norm.
 * State: "momentum_buffer" (μ ≠ 0). */
typedef struct {
    double lr, momentum, weight_decay, trust_coefficient;
} ct_lars_opts;
#define CT_LARS(...) CT_WITH_DEFAULTS(ct_lars_opts, (.lr = 1.0, .momentum = 0.9, .weight_decay = 5e-4, \
    .trust_coefficient = 1e-3), __VA_ARGS__)
ct_optim *ct_lars_new(ct_model *m, ct_lars_opts opts);

/* Adafactor (Shazeer & Stern 2018, Algorithms 4-5 with sections 5-8): a factored second moment
 * (a row and a column statistic per matrix: O(n + m) memory instead of O(nm)), a relative step
 * size and update clipping.
 *   ρ = min(1e-2, 1/√t) (relative_step) or lr;  α = max(ε₂, RMS(θ))·ρ (scale_parameter) or ρ
 *   β̂₂ = 1 − t^decay_rate
 *   matrix G (n×m):  R ← β̂₂R + (1−β̂₂)·rowsum(G² + ε₁);  C ← β̂₂C + (1−β̂₂)·colsum(G² + ε₁)
 *                    V̂ = R·Cᵀ / ΣR
 *   vector:          V̂ ← β̂₂V̂ + (1−β̂₂)(G² + ε₁)
 *   U = G/√V̂;  Û = U / max(1, RMS(U)/d);  θ ← θ − α·Û   (β₁ > 0: through M ← β₁M + (1−β₁)αÛ)
 *   weight decay θ ← θ − α·λ·θ (as the Hugging Face implementation)
 * A tensor of rank > 2 is factored as the matrix (size(0), rest) (Hugging Face factors the
 * last two dimensions instead). With relative_step, lr must be 0 and schedules do not apply (the
 * relative step is the schedule); relative_step = 0 uses lr (as ρ). State: "exp_avg_sq_row",
 * "exp_avg_sq_col" (matrices), "exp_avg_sq" (vectors), "exp_avg" (β₁ > 0). */
typedef struct {
    double lr;
    int relative_step, scale_parameter;
    double eps1, eps2, clip_threshold, decay_rate, beta1, weight_decay;
} ct_adafactor_opts;
#define CT_ADAFACTOR(...) CT_WITH_DEFAULTS(ct_adafactor_opts, (.lr = 0, .relative_step = 1, \
    .scale_parameter = 1, .eps1 = 1e-30, .eps2 = 1e-3, .clip_threshold = 1, .decay_rate = -0.8, \
    .beta1 = 0, .weight_decay = 0), __VA_ARGS__)
ct_optim *ct_adafactor_new(ct_model *m, ct_adafactor_opts opts);

/* ADOPT (Taniguchi et al. 2024, "ADOPT: Modified Adam Can Converge with Any β₂ with the Optimal
 * Rate", Algorithm 1, clipped as its revised version and the authors' code): the second moment
 * used at step t excludes g_t, and g is normalised before the momentum:
 *   t = 1:  v ← g²  (θ does not move)
 *   t > 1:  m ← β₁m + (1−β₁)·clip(g / max(√v, ε), (t−1)^¼);  θ ← θ − lr·m;  v ← β₂v + (1−β₂)g²
 * clip = 0 is the original unclipped version. Weight decay: L2 g ← g + λθ (the authors'
 * default), or decoupled θ ← θ(1 − lr·λ) (from t = 2). State: "exp_avg", "exp_avg_sq". */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int decoupled, clip;
} ct_adopt_opts;
#define CT_ADOPT(...) CT_WITH_DEFAULTS(ct_adopt_opts, (.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.9999, \
    .eps = 1e-6, .weight_decay = 0, .decoupled = 0, .clip = 1), __VA_ARGS__)
ct_optim *ct_adopt_new(ct_model *m, ct_adopt_opts opts);

/* ---- wrappers: Lookahead, SAM, weight EMA (optim/wrappers.c) ---- */
/* Lookahead and SAM wrap a base optimizer and own it (ct_optim_free on the wrapper frees both).
 * Set the lr (and schedules) on the wrapper: it hands its lr to the base optimizer before each
 * step. Parameter groups and guards belong on the base optimizer. ct_optim_save on a wrapper
 * stores the wrapper's own state (slow weights, step); save the base optimizer beside it
 * (ct_lookahead_base) to resume both. */

/* Lookahead (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step
 * back", Algorithm 1): the base optimizer takes k fast steps, then the slow weights φ (θ at the
 * first step) move toward the fast ones and the fast ones restart from them:
 *   every k-th step:  φ ← φ + α(θ − φ);  θ ← φ                   State: "slow_weights". */
typedef struct {
    int k;
    double alpha;
} ct_lookahead_opts;
#define CT_LOOKAHEAD(...) CT_WITH_DEFAULTS(ct_lookahead_opts, (.k = 5, .alpha = 0.5), __VA_ARGS__)
ct_optim *ct_lookahead_new(ct_optim *base, ct_lookahead_opts opts);
ct_optim *ct_lookahead_base(ct_optim *lookahead);

/* SAM (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently Improving
 * Generalization", Algorithm 1): the gradient is taken at the worst point of a ρ-ball:
 *   g = ∇L(θ);  ε = ρ·g/‖g‖ (global norm over all parameters);  g' = ∇L(θ + ε);
 *   base step from θ with g'
 * adaptive (ASAM, Kwon et al. 2021): ε = ρ·T²g/‖Tg‖ with T = |θ| elementwise (use ρ ≈ 0.5-2).
 * The two gradients come from a closure that runs the forward and backward pass (grads are zero
 * when it is called) and returns the loss: ct_sam_step returns the loss at θ (the first call).
 * The closure must build its forward from the current parameters each time (no tape tensor kept
 * from an earlier call) and copy the loss value out before returning. It may call
 * ct_tape_reset first, which frees the previous call's activations; without it both passes stay
 * on the tape until the caller resets it, with the same gradients (autograd/ops.h).
 * ct_optim_step on a SAM optimizer is fatal (it needs the closure). */
typedef struct {
    double rho;
    int adaptive;
} ct_sam_opts;
#define CT_SAM(...) CT_WITH_DEFAULTS(ct_sam_opts, (.rho = 0.05, .adaptive = 0), __VA_ARGS__)
typedef double (*ct_closure)(void *ctx);
ct_optim *ct_sam_new(ct_optim *base, ct_sam_opts opts);
double ct_sam_step(ct_optim *sam, ct_closure closure, void *ctx);
ct_optim *ct_sam_base(ct_optim *sam);

/* An exponential moving average of the model's parameters, for evaluation (Polyak averaging;
 * the "EMA of weights" of TensorFlow's ExponentialMovingAverage and timm's ModelEma):
 *   after each optimizer step:  s ← d·s + (1 − d)·θ       (s starts as θ at ct_ema_new)
 * with warmup, d_n = min(decay, (1 + n)/(10 + n)) at the n-th update (TensorFlow's num_updates),
 * so early averages do not remember the random init for long. ct_ema_swap exchanges the model's
 * parameters and the averages (evaluate, then swap back); buffers (batch-norm statistics) are
 * used as they are. ct_ema_save/load store the averages under the parameters' names (a file
 * ct_model_load can read as a model) with the update count in the metadata. ct_ema_load returns
 * CT_ERR_IO when the file cannot be opened or read, CT_ERR_FORMAT when it is malformed (no or a
 * non-integer "ctape.ema.updates"), CT_ERR_VALUE for a negative count or a non-finite average,
 * and then changes nothing. */
typedef struct {
    double decay;
    int warmup;
} ct_ema_opts;
#define CT_EMA(...) CT_WITH_DEFAULTS(ct_ema_opts, (.decay = 0.999, .warmup = 0), __VA_ARGS__)
typedef struct ct_ema ct_ema;
ct_ema *ct_ema_new(ct_model *m, ct_ema_opts opts);
void ct_ema_update(ct_ema *ema);
void ct_ema_swap(ct_ema *ema);
int ct_ema_swapped(const ct_ema *ema);                 /* 1 while the averages are in the model */
long ct_ema_updates(const ct_ema *ema);
ct_tensor *ct_ema_average(const ct_ema *ema, int k);   /* the average of parameter k */
int ct_ema_save(const ct_ema *ema, const char *path);
int ct_ema_load(ct_ema *ema, const char *path);
/* NULL does nothing; a second free, and any ct_ema_* call on NULL or a freed EMA, is fatal with a
 * message naming the function. */
void ct_ema_free(ct_ema *ema);

/* The user's call site for error messages (core/tensor.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_sgd_new(...) CT_SITE_CALL(ct_sgd_new, __VA_ARGS__)
#define ct_adam_new(...) CT_SITE_CALL(ct_adam_new, __VA_ARGS__)
#define ct_adamw_new(...) CT_SITE_CALL(ct_adamw_new, __VA_ARGS__)
#define ct_adamax_new(...) CT_SITE_CALL(ct_adamax_new, __VA_ARGS__)
#define ct_nadam_new(...) CT_SITE_CALL(ct_nadam_new, __VA_ARGS__)
#define ct_radam_new(...) CT_SITE_CALL(ct_radam_new, __VA_ARGS__)
#define ct_rmsprop_new(...) CT_SITE_CALL(ct_rmsprop_new, __VA_ARGS__)
#define ct_adagrad_new(...) CT_SITE_CALL(ct_adagrad_new, __VA_ARGS__)
#define ct_adadelta_new(...) CT_SITE_CALL(ct_adadelta_new, __VA_ARGS__)
#define ct_optim_step(...) CT_SITE_CALL_CLEARING(ct_optim_step, __VA_ARGS__)
#define ct_optim_zero_grad(...) CT_SITE_CALL_VOID(ct_optim_zero_grad, __VA_ARGS__)
#define ct_optim_lr(...) CT_SITE_CALL(ct_optim_lr, __VA_ARGS__)
#define ct_optim_set_lr(...) CT_SITE_CALL_VOID(ct_optim_set_lr, __VA_ARGS__)
#define ct_optim_has_momentum(...) CT_SITE_CALL(ct_optim_has_momentum, __VA_ARGS__)
#define ct_optim_momentum(...) CT_SITE_CALL(ct_optim_momentum, __VA_ARGS__)
#define ct_optim_set_momentum(...) CT_SITE_CALL_VOID(ct_optim_set_momentum, __VA_ARGS__)
#define ct_optim_steps(...) CT_SITE_CALL(ct_optim_steps, __VA_ARGS__)
#define ct_optim_kind(...) CT_SITE_CALL(ct_optim_kind, __VA_ARGS__)
#define ct_optim_free(...) CT_SITE_CALL_VOID(ct_optim_free, __VA_ARGS__)
#define ct_optim_add_group(...) CT_SITE_CALL_CLEARING(ct_optim_add_group, __VA_ARGS__)
#define ct_param_is_vector(...) CT_SITE_CALL(ct_param_is_vector, __VA_ARGS__)
#define ct_param_name_contains(...) CT_SITE_CALL(ct_param_name_contains, __VA_ARGS__)
#define ct_optim_group_count(...) CT_SITE_CALL(ct_optim_group_count, __VA_ARGS__)
#define ct_optim_param_group(...) CT_SITE_CALL(ct_optim_param_group, __VA_ARGS__)
#define ct_optim_group_lr(...) CT_SITE_CALL(ct_optim_group_lr, __VA_ARGS__)
#define ct_optim_group_weight_decay(...) CT_SITE_CALL(ct_optim_group_weight_decay, __VA_ARGS__)
#define ct_optim_group_size(...) CT_SITE_CALL(ct_optim_group_size, __VA_ARGS__)
#define ct_optim_set_guards(...) CT_SITE_CALL_VOID(ct_optim_set_guards, __VA_ARGS__)
#define ct_optim_last_grad_norm(...) CT_SITE_CALL(ct_optim_last_grad_norm, __VA_ARGS__)
#define ct_optim_skipped_steps(...) CT_SITE_CALL(ct_optim_skipped_steps, __VA_ARGS__)
#define ct_clip_grad_norm(...) CT_SITE_CALL(ct_clip_grad_norm, __VA_ARGS__)
#define ct_clip_grad_value(...) CT_SITE_CALL_VOID(ct_clip_grad_value, __VA_ARGS__)
#define ct_grad_norm(...) CT_SITE_CALL(ct_grad_norm, __VA_ARGS__)
#define ct_grads_check_finite(...) CT_SITE_CALL_CLEARING(ct_grads_check_finite, __VA_ARGS__)
#define ct_ortho_grad(...) CT_SITE_CALL_VOID(ct_ortho_grad, __VA_ARGS__)
#define ct_optim_save(...) CT_SITE_CALL_CLEARING(ct_optim_save, __VA_ARGS__)
#define ct_optim_load(...) CT_SITE_CALL_CLEARING(ct_optim_load, __VA_ARGS__)
#define ct_checkpoint_save(...) CT_SITE_CALL_CLEARING(ct_checkpoint_save, __VA_ARGS__)
#define ct_checkpoint_load(...) CT_SITE_CALL_CLEARING(ct_checkpoint_load, __VA_ARGS__)
#define ct_optim_create(...) CT_SITE_CALL(ct_optim_create, __VA_ARGS__)
#define ct_optim_add_state(...) CT_SITE_CALL_CLEARING(ct_optim_add_state, __VA_ARGS__)
#define ct_optim_add_state_shaped(...) CT_SITE_CALL_CLEARING(ct_optim_add_state_shaped, __VA_ARGS__)
#define ct_optim_state_tensor(...) CT_SITE_CALL(ct_optim_state_tensor, __VA_ARGS__)
#define ct_optim_find_state(...) CT_SITE_CALL(ct_optim_find_state, __VA_ARGS__)
#define ct_optim_add_scalar(...) CT_SITE_CALL_VOID(ct_optim_add_scalar, __VA_ARGS__)
#define ct_optim_add_count(...) CT_SITE_CALL_VOID(ct_optim_add_count, __VA_ARGS__)
#define ct_schedule_constant(...) CT_SITE_CALL(ct_schedule_constant, __VA_ARGS__)
#define ct_schedule_step(...) CT_SITE_CALL(ct_schedule_step, __VA_ARGS__)
#define ct_schedule_multistep(...) CT_SITE_CALL(ct_schedule_multistep, __VA_ARGS__)
#define ct_schedule_exponential(...) CT_SITE_CALL(ct_schedule_exponential, __VA_ARGS__)
#define ct_schedule_polynomial(...) CT_SITE_CALL(ct_schedule_polynomial, __VA_ARGS__)
#define ct_schedule_cosine(...) CT_SITE_CALL(ct_schedule_cosine, __VA_ARGS__)
#define ct_schedule_sgdr(...) CT_SITE_CALL(ct_schedule_sgdr, __VA_ARGS__)
#define ct_schedule_one_cycle(...) CT_SITE_CALL(ct_schedule_one_cycle, __VA_ARGS__)
#define ct_schedule_wsd(...) CT_SITE_CALL(ct_schedule_wsd, __VA_ARGS__)
#define ct_schedule_with_warmup(...) CT_SITE_CALL(ct_schedule_with_warmup, __VA_ARGS__)
#define ct_schedule_lr(...) CT_SITE_CALL(ct_schedule_lr, __VA_ARGS__)
#define ct_schedule_momentum(...) CT_SITE_CALL(ct_schedule_momentum, __VA_ARGS__)
#define ct_optim_schedule(...) CT_SITE_CALL_VOID(ct_optim_schedule, __VA_ARGS__)
#define ct_plateau_new(...) CT_SITE_CALL(ct_plateau_new, __VA_ARGS__)
#define ct_plateau_step(...) CT_SITE_CALL(ct_plateau_step, __VA_ARGS__)
#define ct_plateau_attach(...) CT_SITE_CALL_VOID(ct_plateau_attach, __VA_ARGS__)
#define ct_adabelief_new(...) CT_SITE_CALL(ct_adabelief_new, __VA_ARGS__)
#define ct_lion_new(...) CT_SITE_CALL(ct_lion_new, __VA_ARGS__)
#define ct_lamb_new(...) CT_SITE_CALL(ct_lamb_new, __VA_ARGS__)
#define ct_lars_new(...) CT_SITE_CALL(ct_lars_new, __VA_ARGS__)
#define ct_adafactor_new(...) CT_SITE_CALL(ct_adafactor_new, __VA_ARGS__)
#define ct_adopt_new(...) CT_SITE_CALL(ct_adopt_new, __VA_ARGS__)
#define ct_lookahead_new(...) CT_SITE_CALL(ct_lookahead_new, __VA_ARGS__)
#define ct_lookahead_base(...) CT_SITE_CALL(ct_lookahead_base, __VA_ARGS__)
#define ct_sam_new(...) CT_SITE_CALL(ct_sam_new, __VA_ARGS__)
#define ct_sam_step(...) CT_SITE_CALL_CLEARING(ct_sam_step, __VA_ARGS__)
#define ct_sam_base(...) CT_SITE_CALL(ct_sam_base, __VA_ARGS__)
#define ct_ema_new(...) CT_SITE_CALL(ct_ema_new, __VA_ARGS__)
#define ct_ema_update(...) CT_SITE_CALL_VOID(ct_ema_update, __VA_ARGS__)
#define ct_ema_swap(...) CT_SITE_CALL_VOID(ct_ema_swap, __VA_ARGS__)
#define ct_ema_swapped(...) CT_SITE_CALL(ct_ema_swapped, __VA_ARGS__)
#define ct_ema_updates(...) CT_SITE_CALL(ct_ema_updates, __VA_ARGS__)
#define ct_ema_average(...) CT_SITE_CALL(ct_ema_average, __VA_ARGS__)
#define ct_ema_save(...) CT_SITE_CALL_CLEARING(ct_ema_save, __VA_ARGS__)
#define ct_ema_load(...) CT_SITE_CALL_CLEARING(ct_ema_load, __VA_ARGS__)
#define ct_ema_free(...) CT_SITE_CALL_VOID(ct_ema_free, __VA_ARGS__)
#endif

#endif
