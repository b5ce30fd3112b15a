/* optim/literature.h — optimizers from the literature that PyTorch 1.13 does not have
 * (optim/literature.c). Included by optim/optim.h. */
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

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_adabelief_new(...) CT_SITE_CALL(ct_adabelief_new, __VA_ARGS__)
#define ct_lion_new(...) CT_SITE_CALL(ct_lion_new, __VA_ARGS__)
#define ct_lamb_new(...) CT_SITE_CALL(ct_lamb_new, __VA_ARGS__)
#define ct_lars_new(...) CT_SITE_CALL(ct_lars_new, __VA_ARGS__)
#define ct_adafactor_new(...) CT_SITE_CALL(ct_adafactor_new, __VA_ARGS__)
#define ct_adopt_new(...) CT_SITE_CALL(ct_adopt_new, __VA_ARGS__)
#endif

#endif
