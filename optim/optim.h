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
 * semantics (version 1.13) where PyTorch has it; the differences are documented beside it.
 *
 * What a training loop calls is here and in the two headers it includes: optim/schedule.h
 * (schedules, reduce-on-plateau) and optim/literature.h (AdaBelief, Lion, LAMB, LARS, Adafactor,
 * ADOPT). Writing an optimizer of your own: optim/optimizer.h. */
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
 * Safetensors (core/safetensors.h; written by optim/checkpoint.c): each state tensor under
 * "<param>.<state>" ("fc1.weight.exp_avg"), metadata "ctape.optimizer" (the kind), "ctape.step",
 * "ctape.lr", each group's "ctape.group.<g>.lr_scale" / ".weight_decay", and the optimizer's
 * scalars as "ctape.scalar.<name>", all exact (%.17g, with a "." in every locale). Saving refuses a
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
 * ct_checkpoint_* store the model's parameters and buffers (ct_model_tensors, under their names
 * and with ct_model_metadata, as ct_model_save) and the optimizer's state in one file, so a run
 * resumes exactly. */
int ct_optim_save(const ct_optim *opt, const char *path);
int ct_optim_load(ct_optim *opt, const char *path);
int ct_checkpoint_save(const ct_optim *opt, const char *path);
int ct_checkpoint_load(ct_optim *opt, const char *path);
/* The model's random streams (ct_model_rng_stream: its own, dropout's) are saved with it as
 * "ctape.rng.<stream>" and restored by ct_checkpoint_load (a stream the file does not hold is left
 * as it is; one the model does not have is CT_ERR_VALUE). What a training loop adds to a checkpoint
 * so that it resumes exactly (ct_fit: its position, its EMA, its best epoch): more tensors, saved
 * and loaded by name with the rest (finite values only), and metadata pairs (key, value, ...,
 * NULL; a key the checkpoint writes itself is a fatal error). On load, check (may be NULL) reads
 * the file's metadata first and returns CT_OK or an error code set with ct_set_error; nothing
 * changes unless it and every other check pass. */
typedef struct {
    int n_tensors;
    const char *const *names;
    ct_tensor *const *tensors;
    const char *const *metadata;
    int (*check)(const ct_safetensors *file, const char *path, void *user);
    void *user;
} ct_checkpoint_extra;
int ct_checkpoint_save_extra(const ct_optim *opt, const char *path, ct_checkpoint_extra extra);
int ct_checkpoint_load_extra(ct_optim *opt, const char *path, ct_checkpoint_extra extra);

/* ---- schedules (optim/schedule.h) and the optimizers from the literature (optim/literature.h) ---- */
#include "schedule.h"
#include "literature.h"

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
/* The count a resumed run restores with the averages it loads into ct_ema_average's tensors
 * (warmup decays depend on it). */
void ct_ema_set_updates(ct_ema *ema, long updates);
ct_tensor *ct_ema_average(const ct_ema *ema, int k);   /* the average of parameter k */
int ct_ema_save(const ct_ema *ema, const char *path);
int ct_ema_load(ct_ema *ema, const char *path);
/* NULL does nothing; a second free, and any ct_ema_* call on NULL or a freed EMA, is fatal with a
 * message naming the function. */
void ct_ema_free(ct_ema *ema);

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
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
#define ct_checkpoint_save_extra(...) CT_SITE_CALL_CLEARING(ct_checkpoint_save_extra, __VA_ARGS__)
#define ct_checkpoint_load_extra(...) CT_SITE_CALL_CLEARING(ct_checkpoint_load_extra, __VA_ARGS__)
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
#define ct_ema_set_updates(...) CT_SITE_CALL_VOID(ct_ema_set_updates, __VA_ARGS__)
#define ct_ema_average(...) CT_SITE_CALL(ct_ema_average, __VA_ARGS__)
#define ct_ema_save(...) CT_SITE_CALL_CLEARING(ct_ema_save, __VA_ARGS__)
#define ct_ema_load(...) CT_SITE_CALL_CLEARING(ct_ema_load, __VA_ARGS__)
#define ct_ema_free(...) CT_SITE_CALL_VOID(ct_ema_free, __VA_ARGS__)
#endif

#endif
