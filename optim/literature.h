/* optim/literature.h — optimizers from the literature that PyTorch 1.13 does not have
 * (optim/literature.c, optim/muon.c), and the training pieces of the airbench CIFAR-10 recipe
 * (optim/airbench.c: Lookahead-style weight averaging, decoupled hyper-parameters). Included by
 * optim/optim.h. */
#ifndef CTAPE_OPTIM_LITERATURE_H
#define CTAPE_OPTIM_LITERATURE_H

#include "../nn/nn.h"

typedef struct ct_optim ct_optim;

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

/* ==== Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers"; KellerJordan/Muon) ====
 * Per parameter, with its 2-D view G (rows = the first dimension, cols = the rest: a conv weight
 * (out, in, kh, kw) is (out, in·kh·kw)):
 *   b ← μ·b + g;   u = g + μ·b (Nesterov) or b                   (state "momentum_buffer")
 *   θ ← θ·√rows/‖θ‖_F                                           (normalize_weights only)
 *   O = NS(u): X ← u/(‖u‖_F + ε), transposed when rows > cols; then ns_steps times
 *       A = X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X      (a, b, c) = (3.4445, −4.7750, 2.0315)
 *   θ ← θ·(1 − lr·λ) − lr·s·O       s = √max(1, rows/cols) (CT_MUON_SCALE_SHAPE) or 1 (_NONE)
 * NS maps each singular value σ of u to p(p(...p(σ/‖u‖_F))), p(x) = ax + bx³ + cx⁵, which does not
 * converge to 1 but, from σ/‖u‖_F >= 0.01, lands in [0.68, 1.14] after 5 steps (the quintic
 * trades exact convergence for a steep slope at 0); so O ≈ U·Vᵀ of u = U·S·Vᵀ. The momentum is
 * torch.optim.SGD's (airbench94_muon's); the Muon repository's b ← μb + (1−μ)g gives u times
 * (1 − μ), the same O after the normalisation up to ε. ε = 1e-7 as both references; they iterate
 * in bfloat16, ctape in ct_real. λ is decoupled (the Muon repository's AdamW-style decay).
 * Presets:
 *   CT_MUON()          the Muon repository: lr 0.02, μ 0.95, Nesterov, 5 steps, scale SHAPE
 *                      (it takes rows/cols from the last two dimensions of the unreshaped
 *                      gradient, 1 for a square conv kernel; here from the 2-D view: the same
 *                      whenever rows <= cols, as in every conv of airbench)
 *   CT_MUON_AIRBENCH() airbench94_muon.py: lr 0.24, μ 0.6, Nesterov, 3 steps (its default), no
 *                      scale (s = 1) and the weights renormalised to ‖θ‖_F = √rows before every
 *                      step, so the lr is a step relative to the weight's size; .select =
 *                      ct_param_is_filter (its filter_params: the 4-D weights).
 * Which parameters get Muon: .select (NULL: all). A selected parameter must have >= 2 dimensions
 * (fatal otherwise, naming it). The parameters not selected are trained by .aux, an optimizer the
 * caller made over the same model (airbench94_muon: SGD Nesterov 0.85 for the biases and the
 * head; the Muon repository's MuonWithAuxAdam: AdamW), which Muon owns (ct_optim_free frees it),
 * steps after its own update (with the Muon parameters left out), and whose lr follows Muon's:
 * aux lr = (its lr when given) · (Muon's lr / .lr), so one schedule on Muon moves both, as
 * airbench94_muon scales every group by the same factor. A parameter with a grad that is neither
 * selected nor has an .aux is fatal: nothing would train it. A frozen parameter (no grad) is left
 * alone. Guards go on Muon (they see every gradient before either update). ct_optim_save and
 * ct_checkpoint_save on Muon hold Muon's state (its step and the selected parameters' buffers);
 * save the aux's beside it (ct_optim_save(ct_muon_aux(opt), ...)) to resume both: ct_fit's
 * checkpoint does not, so a run it resumes restarts the aux's momentum. */
typedef enum { CT_MUON_SCALE_SHAPE, CT_MUON_SCALE_NONE } ct_muon_scale;
typedef struct {
    double lr, momentum;
    int nesterov;
    int ns_steps;             /* Newton–Schulz iterations */
    double eps;               /* added to ‖u‖_F */
    double weight_decay;      /* decoupled: θ ← θ(1 − lr·λ) */
    ct_muon_scale scale;
    int normalize_weights;    /* θ ← θ·√rows/‖θ‖_F before each step (airbench94_muon); a zero θ is left */
    int (*select)(const ct_tensor *param, void *ctx); /* the parameters Muon trains (a ct_param_pred; NULL: all) */
    void *select_ctx;
    ct_optim *aux;            /* trains the others (NULL: none); owned by Muon from here on */
} ct_muon_opts;
#define CT_MUON(...) CT_WITH_DEFAULTS(ct_muon_opts, (.lr = 0.02, .momentum = 0.95, .nesterov = 1, .ns_steps = 5, \
    .eps = 1e-7, .weight_decay = 0, .scale = CT_MUON_SCALE_SHAPE, .normalize_weights = 0, .select = NULL, \
    .select_ctx = NULL, .aux = NULL), __VA_ARGS__)
#define CT_MUON_AIRBENCH(...) CT_WITH_DEFAULTS(ct_muon_opts, (.lr = 0.24, .momentum = 0.6, .nesterov = 1, \
    .ns_steps = 3, .eps = 1e-7, .weight_decay = 0, .scale = CT_MUON_SCALE_NONE, .normalize_weights = 1, \
    .select = ct_param_is_filter, .select_ctx = NULL, .aux = NULL), __VA_ARGS__)
ct_optim *ct_muon_new(ct_model *m, ct_muon_opts opts);
ct_optim *ct_muon_aux(ct_optim *muon);          /* the .aux optimizer, or NULL */
/* Predicates for .select: ndim >= 2 (every weight matrix and filter); ndim == 4 (conv filters). */
int ct_param_is_matrix(const ct_tensor *param, void *ctx);
int ct_param_is_filter(const ct_tensor *param, void *ctx);
/* NS(g) of a rows × cols matrix (row-major) into out (may be g): the orthogonalisation above,
 * without the scale s. */
void ct_muon_orthogonalise(const ct_real *g, int rows, int cols, int ns_steps, double eps, ct_real *out);

/* ==== Lookahead-style weight averaging as airbench does it (airbench94.py, LookaheadState) ======
 * An average of the network's weights that is copied back into the network each time it is
 * updated, so training continues from the average (as Lookahead's slow weights):
 *   at step t (completed optimizer steps) when t > start_step and t % every == 0:
 *     the first time:  e ← w                       (the average starts from the weights)
 *     after:           ρ = decay_base^every · (t/total_steps)^decay_pow
 *                      e ← e + (1 − ρ)·(w − e);  w ← e
 *   ct_lookahead_ema_finish:  w ← e (an update with ρ = 1), airbench's copy after every epoch
 * w is every parameter and every buffer (batch norm's running mean and variance are averaged and
 * copied back too, as airbench's state_dict loop does; the integer count num_batches_tracked is
 * not, as there). airbench94: every 5, 0.95, 3, from epoch 3 (start_step = 3·steps per epoch),
 * total_steps the run's. With .steps_per_epoch > 0, ct_lookahead_ema_on_step (a ct_fit on_step
 * callback, user = the ct_lookahead_ema) also calls finish after each epoch's last step and the
 * run's last step (declared in optim/trainer.h); ct_fit's checkpoints do not hold the average (a
 * resumed run starts it again). */
typedef struct {
    int every;
    double decay_base, decay_pow;
    long start_step, total_steps;
    long steps_per_epoch;     /* for ct_lookahead_ema_on_step's end-of-epoch copy (0: none) */
} ct_lookahead_ema_opts;
#define CT_LOOKAHEAD_EMA(...) CT_WITH_DEFAULTS(ct_lookahead_ema_opts, (.every = 5, .decay_base = 0.95, \
    .decay_pow = 3, .start_step = 0, .total_steps = 1, .steps_per_epoch = 0), __VA_ARGS__)
typedef struct ct_lookahead_ema ct_lookahead_ema;
ct_lookahead_ema *ct_lookahead_ema_new(ct_model *m, ct_lookahead_ema_opts opts);
/* ρ at step t (the schedule alone; ct_lookahead_ema_update uses it when it averages). */
double ct_lookahead_ema_decay(ct_lookahead_ema_opts opts, long t);
/* Call after optimizer step t (1, 2, ...); returns 1 when it started or updated the average. */
int ct_lookahead_ema_update(ct_lookahead_ema *la, long t);
void ct_lookahead_ema_finish(ct_lookahead_ema *la);     /* w ← e; nothing before the first update */
int ct_lookahead_ema_started(const ct_lookahead_ema *la);
/* The average of ct_model_tensors(m)[i] (NULL for one that is not averaged, or before the start). */
const ct_tensor *ct_lookahead_ema_average(const ct_lookahead_ema *la, int i);
void ct_lookahead_ema_free(ct_lookahead_ema *la);

/* ==== decoupled hyper-parameters "per 1024 examples" (airbench94.py) ============================
 * airbench states lr and weight decay per 1024 examples, independent of the momentum and of each
 * other, and turns them into torch.optim.SGD's (Nesterov) values for a loss summed over the batch:
 *   k = 1024·(1 + 1/(1 − μ))            (a Nesterov step's gain for a constant gradient, per 1024)
 *   lr = lr₁₀₂₄/k;   wd = wd₁₀₂₄·batch/k  (the decay per step, lr·λ)
 *   λ = wd/lr;  bias_lr = bias_scaler·lr;  bias λ = wd/bias_lr  (BN biases: 64x the lr, same decay)
 * airbench94: lr₁₀₂₄ 11.5, wd₁₀₂₄ 0.0153, μ 0.85, batch 1024, bias_scaler 64, with
 * cross-entropy label smoothing 0.2 summed over the batch (CT_CE(.label_smoothing = 0.2,
 * .reduction = CT_REDUCTION_SUM)). For a mean-reduced loss (.mean_loss = 1) the gradient is
 * 1/batch of the sum's, and lr·batch with λ/batch gives the same steps. */
typedef struct {
    double lr, weight_decay, momentum;
    int batch;
    double bias_scaler, label_smoothing;
    int mean_loss;
} ct_decoupled_opts;
#define CT_DECOUPLED_AIRBENCH94(...) CT_WITH_DEFAULTS(ct_decoupled_opts, (.lr = 11.5, .weight_decay = 0.0153, \
    .momentum = 0.85, .batch = 1024, .bias_scaler = 64, .label_smoothing = 0.2, .mean_loss = 0), __VA_ARGS__)
typedef struct {
    double lr, weight_decay;             /* SGD's lr and L2 λ (torch.optim.SGD's weight_decay) */
    double bias_lr, bias_weight_decay;   /* the same for the BN biases */
    double momentum;                     /* μ, Nesterov */
    double decay_per_step;               /* lr·λ = bias_lr·bias λ */
    double label_smoothing;              /* passed through, for the loss */
} ct_decoupled_sgd;
ct_decoupled_sgd ct_decoupled_to_sgd(ct_decoupled_opts opts);
/* ct_sgd_new with those values (Nesterov) and a group for the parameters is_bias selects (e.g.
 * ct_param_name_contains with "norm"; NULL: no group) at bias_lr and bias λ. */
ct_optim *ct_sgd_decoupled_new(ct_model *m, ct_decoupled_opts opts, int (*is_bias)(const ct_tensor *, void *), void *ctx);

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_adabelief_new(...) CT_SITE_CALL(ct_adabelief_new, __VA_ARGS__)
#define ct_lion_new(...) CT_SITE_CALL(ct_lion_new, __VA_ARGS__)
#define ct_lamb_new(...) CT_SITE_CALL(ct_lamb_new, __VA_ARGS__)
#define ct_lars_new(...) CT_SITE_CALL(ct_lars_new, __VA_ARGS__)
#define ct_adafactor_new(...) CT_SITE_CALL(ct_adafactor_new, __VA_ARGS__)
#define ct_adopt_new(...) CT_SITE_CALL(ct_adopt_new, __VA_ARGS__)
#define ct_muon_new(...) CT_SITE_CALL(ct_muon_new, __VA_ARGS__)
#define ct_muon_aux(...) CT_SITE_CALL(ct_muon_aux, __VA_ARGS__)
#define ct_muon_orthogonalise(...) CT_SITE_CALL_VOID(ct_muon_orthogonalise, __VA_ARGS__)
#define ct_lookahead_ema_new(...) CT_SITE_CALL(ct_lookahead_ema_new, __VA_ARGS__)
#define ct_lookahead_ema_update(...) CT_SITE_CALL(ct_lookahead_ema_update, __VA_ARGS__)
#define ct_lookahead_ema_finish(...) CT_SITE_CALL_VOID(ct_lookahead_ema_finish, __VA_ARGS__)
#define ct_lookahead_ema_free(...) CT_SITE_CALL_VOID(ct_lookahead_ema_free, __VA_ARGS__)
#define ct_decoupled_to_sgd(...) CT_SITE_CALL(ct_decoupled_to_sgd, __VA_ARGS__)
#define ct_sgd_decoupled_new(...) CT_SITE_CALL(ct_sgd_decoupled_new, __VA_ARGS__)
#endif

#endif
