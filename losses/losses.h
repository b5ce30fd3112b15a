/* losses/losses.h — the loss zoo. Every loss takes tape tensors and returns a tape tensor, has a
 * config struct whose defaults are the published ones, and an explicit reduction.
 *
 * Two ways in:
 *   - call a loss function:  ct_focal_loss(tape, logits, labels, CT_FOCAL(.gamma = 1))
 *   - or pick one by name:   ct_loss *l = ct_loss_parse("focal:gamma=1");
 *                            ct_tensor *loss = ct_loss_apply(tape, l, logits, labels);
 * losses/README.md has the table of every loss: formula, defaults, paper, differences from
 * PyTorch. A programmer error (a label out of range, a wrong label count or shape, a bad option)
 * stops with a message naming the loss and the index, like every programmer error in ctape. NaN or
 * ±inf in the input is data: the loss returns a non-finite value (and gradient) as PyTorch does,
 * so a training loop or an optimizer's non-finite guard can act on it; for the softmax losses −inf
 * is a masked class, as in PyTorch. */
#ifndef CTAPE_LOSSES_LOSSES_H
#define CTAPE_LOSSES_LOSSES_H

#include "../autograd/ops.h"
#include "metrics.h" /* ct_eval_transform */

typedef enum {
    CT_REDUCTION_MEAN = 0, /* PyTorch's default */
    CT_REDUCTION_SUM,
    CT_REDUCTION_NONE,      /* one value per sample (per element for the element-wise losses) */
    CT_REDUCTION_BATCHMEAN, /* kl_div and distillation only: Σ / N, the true KL per sample */
} ct_reduction;

/* ======================================================================================== */
/* ---- the registry (losses/registry.c) ----------------------------------------------------- */
/* A loss selected by name with its parameters, as a command line gives it:
 *     "focal:gamma=2,alpha=0.25"   "cross_entropy:label_smoothing=0.1,reduction=sum"
 *     "cross_entropy:weight=[1,0.5,2]"   (a vector: numbers in brackets, or plain n1,n2,...)
 * Every parameter has a published default and a checked range (each value of a vector is checked);
 * ct_loss_list prints them. The syntax and the messages are those of every spec in ctape
 * (core/spec.h: models, optimizers, schedules). */
typedef struct ct_loss ct_loss;
typedef struct ct_model ct_model; /* nn/nn.h: where losses with learnable state keep it */

/* NULL on a bad spec, with ct_last_error() naming the problem: an unknown loss (the message lists
 * the known names and suggests the nearest), an unknown or repeated key (it lists the loss's keys),
 * a malformed number, an out-of-range value (of a vector: its index). Nothing is guessed. Free with
 * ct_loss_free. */
ct_loss *ct_loss_parse(const char *spec);
void ct_loss_free(ct_loss *loss);
/* input: logits (N, C) for the classification losses; features (N, D) or (N, V, D) for the
 * embedding losses. labels: N class labels (n = 0 / data NULL for the unsupervised ones).
 * Returns what the loss function returns (a scalar for mean/sum). A per-class vector (a class
 * weight, LDAM's counts) must hold C values: C is the classes given to ct_loss_bind for a loss with
 * learnable state, the input's last dimension for the others; another length is fatal, naming the
 * loss, the key and both lengths. */
ct_tensor *ct_loss_apply(ct_tape *tape, ct_loss *loss, ct_tensor *input, ct_labels labels);
/* Losses with learnable state (center loss centres, class-level Circle proxies, a registered loss
 * with a bind hook) create their parameters in m, named "<name>.<what>", for `classes` classes of
 * `dim`-dimensional features (0 for a loss on logits whose state does not need it): the optimizer
 * then updates them and checkpoints save them.
 * ct_loss_apply before ct_loss_bind is fatal for them; a second ct_loss_bind is refused. For every
 * loss, with classes > 0, a per-class vector of another length is refused here (CT_ERR_VALUE naming
 * the loss, the key and both lengths): a program can check a spec against its data before training
 * (m and name may be NULL for a loss without state). CT_OK, or an error code with ct_last_error(). */
int ct_loss_bind(ct_loss *loss, ct_model *m, const char *name, int classes, int dim);
/* How this loss's outputs become probabilities for the metrics (losses/metrics.h): softmax for the
 * cross-entropy family (focal, Poly, squentropy, comp-sum, NCE+RCE; nll's log-probabilities too),
 * sigmoid for the one-vs-rest losses (bce_with_logits, sigmoid_focal), StableMax for stablemax, and
 * what a registered loss declares. Never CT_EVAL_AUTO. The regression losses on one-hot targets
 * (mse, l1, smooth_l1, huber) take softmax; the embedding losses output features, not logits: their
 * softmax means nothing (evaluate them with ct_knn_accuracy or ct_linear_probe_accuracy). */
ct_eval_transform ct_loss_eval_transform(const ct_loss *loss);
/* Tells the loss how far training is: p = the fraction of the run done, in [0, 1] (fatal outside),
 * which a schedule-dependent loss reads (tsla: label smoothing for the first part of training only;
 * a registered loss sees it as ct_loss_args.progress). ct_fit sets p = step / total steps before
 * every step; a hand-written loop calls it the same way. The other losses ignore it. */
void ct_loss_set_progress(ct_loss *loss, double p);
/* A per-class parameter named counts (logit_adjusted's, a registered LDAM's) may be given as
 * "counts=auto" in a spec: the training set's class counts, which the program fills in here once it
 * knows the data (the arena does it for each data condition: a long-tailed subset has its own
 * counts). counts: `classes` values, each checked against the parameter's range; afterwards the
 * loss is the one "counts=[n_0,...]" would give. ct_loss_describe shows "counts=auto" until then,
 * and ct_loss_apply before it is fatal. A loss without an auto parameter is left as it is. CT_OK, or
 * CT_ERR_VALUE with ct_last_error() naming the loss and the value out of range. */
int ct_loss_set_counts(ct_loss *loss, const double *counts, int classes);
/* 1 when the spec left a parameter as "auto" that ct_loss_set_counts has not filled yet. */
int ct_loss_needs_counts(const ct_loss *loss);
const char *ct_loss_name(const ct_loss *loss);
/* The resolved config with every value, in the spec syntax ("focal:gamma=2,alpha=[1],..."; vectors
 * in brackets): ct_loss_parse of it gives the same loss. Truncated to len (always terminated). */
void ct_loss_describe(const ct_loss *loss, char *buf, size_t len);
/* Every registered loss: name, one-line formula, input, eval transform (or "features"), each
 * parameter with its kind, default and range, and whether it has learnable state. */
void ct_loss_list(FILE *out);
/* The number of registered losses and the i-th name (for tools and tests). */
int ct_loss_count(void);
const char *ct_loss_name_at(int i);
/* The fused loss ops (losses/op_table.c), beside autograd's ct_op_table: the gradient-check test
 * walks both. */
extern const ct_op *const ct_loss_op_table[];
extern const int ct_loss_op_count;

/* Adding a loss at run time (examples/custom_loss.c): a researcher's loss, written from tape ops,
 * becomes selectable by name next to the zoo ("soft_margin:m=0.5"), parsed, range-checked, listed
 * and described like the built-in ones, with the same means:
 *   - parameters of every kind: numbers, integers, choices ("mean|sum"), vectors, and per-class
 *     vectors ("ldam:counts=[5000,2997,...]") whose length ct_loss_apply and ct_loss_bind check;
 *   - learnable state: a `bind` hook that adds parameters to the model (ct_model_add_param), which
 *     the optimizer then trains and checkpoints save, as center loss's centres;
 *   - an eval transform: how the metrics turn its outputs into probabilities.
 * A parameter's kind is the first word of its range:
 *     "[0, inf)", "(0, 1]"       a finite number in the range: ( ) open, [ ] closed, inf allowed
 *     "integer [1, 10]"          an integer in the range
 *     "mean|sum|none"            one of the words; its value is the word's index
 *     "list [0, inf)"            numbers, "[v,...]" or "v,..." (or one), each in the range; a
 *                                default of "" (or "[]") lets a spec give "[]" (none), a default
 *                                with values needs at least one
 *     "per class [1, inf)"       a list of one value per class (default ""): C values, checked at
 *                                ct_loss_apply and ct_loss_bind (CT_LOSS_MAX_VALUES at most)
 * Two forms of the function: `fn` gets the numbers only (a loss without lists); `apply` gets a
 * ct_loss_args with the lists and the bound state. Give one.
 * The strings and functions are borrowed: give literals or keep them alive while the registry is
 * used. Returns CT_OK, or CT_ERR_VALUE with ct_last_error() set when the name is taken or malformed
 * (letters, digits, '_'), neither or both of fn and apply are given, fn is given with a list
 * parameter, a key is repeated or malformed, a range is malformed, a default is outside its range,
 * the transform is unknown, or CT_LOSS_MAX_REGISTERED losses have been added. Not thread-safe:
 * register before training. */
#define CT_LOSS_MAX_REGISTERED 32
#define CT_LOSS_MAX_PARAMS 8    /* a ct_loss_def's params[]: at most 7, then {NULL} */
#define CT_LOSS_MAX_STATE 4     /* tensors a bind hook may create */
#define CT_LOSS_MAX_VALUES 1024 /* values of one list parameter */
typedef struct {
    const char *key;   /* "m" */
    const char *def;   /* default in spec syntax: "0.5", "mean", "[1,2]", "" (an empty list) */
    const char *range; /* its kind and range, above: "[0, inf)", "per class [1, inf)", "mean|sum" */
    const char *help;  /* one line for ct_loss_list */
} ct_loss_param;
/* What `apply` and `bind` see: the parameters in declaration order, and the state. */
typedef struct {
    const char *name;                       /* the loss's name, for messages */
    double value[CT_LOSS_MAX_PARAMS];       /* a number, an integer, a choice's index (0 for a list) */
    const double *list[CT_LOSS_MAX_PARAMS]; /* a list's values (NULL when empty, and for the others) */
    const ct_real *list_real[CT_LOSS_MAX_PARAMS]; /* the same in ct_real (what CT_CE's .weight takes) */
    int length[CT_LOSS_MAX_PARAMS];         /* a list's length (0 for the others) */
    ct_tensor *state[CT_LOSS_MAX_STATE];    /* what bind created, in its order (NULL before ct_loss_bind) */
    int classes, dim;                       /* what ct_loss_bind got (0 before) */
    double progress;                        /* the fraction of training done, in [0, 1]: ct_loss_set_progress
                                               (ct_fit sets it before every step; 0 until someone does) */
} ct_loss_args;
typedef ct_tensor *(*ct_loss_fn)(ct_tape *tape, ct_tensor *input, ct_labels labels, const double *params);
typedef ct_tensor *(*ct_loss_apply_fn)(ct_tape *tape, ct_tensor *input, ct_labels labels, const ct_loss_args *args);
/* Creates the loss's parameters for args->classes classes of args->dim features: each with
 * ct_model_add_param(m, "<name>.<what>", shape), initialised, and stored in args->state[0..]. CT_OK,
 * or an error code with ct_set_error (classes or dim it cannot work with). */
typedef int (*ct_loss_bind_fn)(ct_model *m, const char *name, ct_loss_args *args);
typedef struct {
    const char *name;    /* "soft_margin" */
    const char *formula; /* one line for ct_loss_list */
    const char *input;   /* "logits (N, C)" */
    ct_loss_param params[CT_LOSS_MAX_PARAMS]; /* ends at the first {NULL}: at most 7 parameters */
    ct_loss_fn fn;       /* numbers only: their values in declaration order (defaults filled in) */
    ct_loss_apply_fn apply; /* or every kind, and the state */
    ct_loss_bind_fn bind;   /* NULL: no learnable state */
    ct_eval_transform transform; /* CT_EVAL_AUTO (0): softmax */
} ct_loss_def;
int ct_loss_register(const ct_loss_def *def);

/* ======================================================================================== */
/* ---- softmax cross-entropy (losses/cross_entropy.c) -------------------------------------- */
/* Softmax cross-entropy with torch.nn.functional.cross_entropy semantics. Per sample, with
 * p_i = softmax(z_i), class weights w (w ≡ 1 without) and label smoothing ε:
 *   ℓ_i = −(1−ε)·w_{y_i}·log p_{i,y_i} − (ε/C)·Σ_c w_c·log p_{i,c}     (0 when y_i = ignore_index)
 *   mean = Σ_i ℓ_i / Σ_i w_{y_i} over the samples not ignored (NaN when all are, as PyTorch).
 * Fused: log-softmax and its gradient (p − target, scaled) in one op ("cross_entropy"), stable
 * for any finite logits. */
typedef struct {
    ct_reduction reduction;
    double label_smoothing;   /* ε in [0, 1] */
    int ignore_index;         /* label value that contributes nothing (PyTorch: −100) */
    const ct_real *weight;    /* per-class weights (C values) or NULL */
} ct_ce_opts;
#define CT_CE(...) CT_WITH_DEFAULTS(ct_ce_opts, (.reduction = CT_REDUCTION_MEAN, .label_smoothing = 0, \
                                                .ignore_index = -100, .weight = NULL), __VA_ARGS__)

/* logits (N, C), labels N values in [0, C) (or ignore_index). Fatal, naming the index, on a
 * label out of range or a wrong label count. A row with a NaN or +inf logit has a NaN loss and
 * gradient; a −inf logit is a class of probability 0 (an infinite loss when it is the label's). */
ct_tensor *ct_cross_entropy(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_ce_opts opts);

/* ======================================================================================== */
/* ---- classification and regression losses ------------------------------------------------ *
 * losses/nll_stablemax.c (nll, StableMax), losses/pointwise.c (bce, mse, l1, smooth_l1, huber,
 * kl_div, distillation, sigmoid focal), losses/softmax_family.c (focal, Poly, squentropy,
 * comp-sum, NCE + RCE). Shapes: logits / log_probs (N, C) with N labels; element-wise losses take
 * input and target of the same shape. "none" is per sample for the label losses (N) and per
 * element for the element-wise ones (PyTorch). Each is a fused op with a closed-form backward
 * except distillation (composed); its composed form is ct_*_reference (below). */

/* Negative log-likelihood on log-probabilities (torch.nn.functional.nll_loss):
 *   ℓ_i = −w_{y_i}·x_{i,y_i}  (0 at ignore_index);  mean = Σ ℓ_i / Σ w_{y_i} (kept samples). */
typedef struct {
    ct_reduction reduction;
    int ignore_index;      /* PyTorch: −100 */
    const ct_real *weight; /* C values or NULL */
} ct_nll_opts;
#define CT_NLL(...) CT_WITH_DEFAULTS(ct_nll_opts, (.reduction = CT_REDUCTION_MEAN, .ignore_index = -100, \
                                                  .weight = NULL), __VA_ARGS__)
ct_tensor *ct_nll_loss(ct_tape *tape, ct_tensor *log_probs, ct_labels labels, ct_nll_opts opts);

/* Binary cross-entropy on logits x with targets t ∈ [0, 1] of the same shape (N, C)
 * (F.binary_cross_entropy_with_logits), stable for any x: with l = 1 + (pw_c − 1)·t,
 *   ℓ = w_c·[(1 − t)·x + l·softplus(−x)]   = −w_c·[pw_c·t·log σ(x) + (1 − t)·log(1 − σ(x))]. */
typedef struct {
    ct_reduction reduction;
    const ct_real *pos_weight; /* pw: C values (last dimension) or NULL */
    const ct_real *weight;     /* w: C values (last dimension) or NULL */
} ct_bce_opts;
#define CT_BCE(...) CT_WITH_DEFAULTS(ct_bce_opts, (.reduction = CT_REDUCTION_MEAN, .pos_weight = NULL, \
                                                  .weight = NULL), __VA_ARGS__)
ct_tensor *ct_bce_with_logits(ct_tape *tape, ct_tensor *logits, ct_tensor *targets, ct_bce_opts opts);

/* Regression losses on d = input − target, element-wise (F.mse_loss, l1_loss, smooth_l1_loss,
 * huber_loss):
 *   mse d²;  l1 |d|;
 *   smooth_l1 (β = 1):  ½d²/β if |d| < β, else |d| − ½β   (β = 0 is l1);
 *   huber     (δ = 1):  ½d²   if |d| ≤ δ, else δ·(|d| − ½δ)  (= δ·smooth_l1 with β = δ). */
typedef struct {
    ct_reduction reduction;
    double beta;  /* smooth_l1 only, >= 0 */
    double delta; /* huber only, > 0 */
} ct_regression_opts;
#define CT_REGRESSION(...) CT_WITH_DEFAULTS(ct_regression_opts, (.reduction = CT_REDUCTION_MEAN, .beta = 1.0, \
                                                                .delta = 1.0), __VA_ARGS__)
ct_tensor *ct_mse_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_smooth_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_huber_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);

/* KL divergence with PyTorch's argument order (F.kl_div): input = log q (log-probabilities),
 * target = p (probabilities, or log p with log_target), element-wise
 *   ℓ = p·(log p − input)   (0 where p = 0);
 * mean is over all elements (PyTorch's default), batchmean = Σ/N is the true KL per sample. */
typedef struct {
    ct_reduction reduction;
    int log_target;
} ct_kl_div_opts;
#define CT_KL_DIV(...) CT_WITH_DEFAULTS(ct_kl_div_opts, (.reduction = CT_REDUCTION_MEAN, .log_target = 0), \
                                        __VA_ARGS__)
ct_tensor *ct_kl_div(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts);

/* Knowledge distillation (Hinton, Vinyals, Dean 2015): with teacher t detached,
 *   ℓ_i = T²·KL(softmax(t_i/T) ‖ softmax(s_i/T)),  reduction batchmean by default. */
typedef struct {
    ct_reduction reduction;
    double temperature; /* T > 0; 4 is the common choice (Hinton et al. leave it open) */
} ct_kd_opts;
#define CT_KD(...) CT_WITH_DEFAULTS(ct_kd_opts, (.reduction = CT_REDUCTION_BATCHMEAN, .temperature = 4.0), \
                                    __VA_ARGS__)
ct_tensor *ct_distillation_loss(ct_tape *tape, ct_tensor *student_logits, ct_tensor *teacher_logits,
                                ct_kd_opts opts);

/* Focal loss, softmax form (Lin et al. 2017): ℓ_i = −α_{y_i}·(1 − p_{i,y_i})^γ·log p_{i,y_i}.
 * α is a scalar (alpha, default 1) or per class (alpha_per_class, C values), with
 * log p_y = −CE, 1 − p_y = 1 − exp(−CE). */
typedef struct {
    ct_reduction reduction;
    double gamma;                   /* γ >= 0; 0 is (α-weighted) cross-entropy */
    double alpha;                   /* scalar α, used when alpha_per_class is NULL */
    const ct_real *alpha_per_class; /* C values or NULL */
} ct_focal_opts;
#define CT_FOCAL(...) CT_WITH_DEFAULTS(ct_focal_opts, (.reduction = CT_REDUCTION_MEAN, .gamma = 2.0, .alpha = 1.0, \
                                                      .alpha_per_class = NULL), __VA_ARGS__)
ct_tensor *ct_focal_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_focal_opts opts);

/* Sigmoid focal loss (torchvision.ops.sigmoid_focal_loss), element-wise on logits x, targets t:
 *   p_t = σ(x)·t + (1 − σ(x))·(1 − t),  α_t = α·t + (1 − α)·(1 − t)  (α < 0: α_t = 1)
 *   ℓ = α_t·(1 − p_t)^γ·bce_with_logits(x, t).
 * torchvision's default reduction is none; ours is mean like every other loss here. */
typedef struct {
    ct_reduction reduction;
    double alpha; /* 0.25; negative disables the weighting */
    double gamma; /* 2, >= 0 */
} ct_sigmoid_focal_opts;
#define CT_SIGMOID_FOCAL(...) CT_WITH_DEFAULTS(ct_sigmoid_focal_opts, (.reduction = CT_REDUCTION_MEAN, .alpha = 0.25, \
                                                                      .gamma = 2.0), __VA_ARGS__)
ct_tensor *ct_sigmoid_focal_loss(ct_tape *tape, ct_tensor *logits, ct_tensor *targets, ct_sigmoid_focal_opts opts);

/* PolyLoss (Leng et al. 2022), on p_y = softmax(z)_y:
 *   Poly-1        CE + ε·(1 − p_y)                     ε = 1, ε >= −1
 *   Poly-N        CE + Σ_{j=1..N} ε_j·(1 − p_y)^j      epsilon[0..N−1] = ε_1..ε_N
 *   Poly-1 focal  FL_γ,α + ε·(1 − p_y)^(γ+1)           softmax focal loss as ct_focal_loss */
typedef struct {
    ct_reduction reduction;
    double epsilon;         /* Poly-1 and Poly-1 focal: ε >= −1 */
    const double *epsilons; /* Poly-N: ε_1..ε_N */
    int n_epsilons;         /* N >= 1 for Poly-N */
    double gamma;           /* Poly-1 focal: γ >= 0 */
    double alpha;           /* Poly-1 focal: scalar α */
} ct_poly_opts;
#define CT_POLY(...) CT_WITH_DEFAULTS(ct_poly_opts, (.reduction = CT_REDUCTION_MEAN, .epsilon = 1.0, .epsilons = NULL, \
                                                    .n_epsilons = 0, .gamma = 2.0, .alpha = 1.0), __VA_ARGS__)
ct_tensor *ct_poly1_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_poly_opts opts);
ct_tensor *ct_poly_n_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_poly_opts opts);
ct_tensor *ct_poly1_focal_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_poly_opts opts);

/* Squentropy (Hui, Belkin, Wright 2023): ℓ_i = CE_i + (1/(C−1))·Σ_{j≠y_i} z_ij²  (C >= 2). */
typedef struct {
    ct_reduction reduction;
} ct_squentropy_opts;
#define CT_SQUENTROPY(...) CT_WITH_DEFAULTS(ct_squentropy_opts, (.reduction = CT_REDUCTION_MEAN), __VA_ARGS__)
ct_tensor *ct_squentropy_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_squentropy_opts opts);

/* Comp-sum losses (Mao, Mohri, Zhong 2023), τ >= 0, on p_y = softmax(z)_y:
 *   ℓ^τ = (p_y^(τ−1) − 1)/(1 − τ)   (τ ≠ 1),   −log p_y   (τ = 1)
 * τ = 0 sum-exponential Σ_{k≠y} e^(z_k − z_y); τ = 1 CE; 1 < τ < 2 generalized CE
 * (1 − p_y^q)/q with q = τ − 1 (Zhang & Sabuncu 2018; q = 0.7 → τ = 1.7, the default); τ = 2 MAE
 * 1 − p_y. For τ < 1 the loss grows like p_y^−(1−τ): it overflows to +inf when p_y underflows. */
typedef struct {
    ct_reduction reduction;
    double tau;
} ct_comp_sum_opts;
#define CT_COMP_SUM(...) CT_WITH_DEFAULTS(ct_comp_sum_opts, (.reduction = CT_REDUCTION_MEAN, .tau = 1.7), __VA_ARGS__)
ct_tensor *ct_comp_sum_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_comp_sum_opts opts);

/* NCE + RCE (Ma et al. 2020, active-passive losses): with log p = log_softmax(z),
 *   NCE_i = log p_{i,y} / Σ_k log p_{ik}        RCE_i = −A·(1 − p_{i,y})   (log 0 := A = −4)
 *   ℓ_i = α·NCE_i + β·RCE_i                    α = β = 1 (the paper's CIFAR-10 setting). */
typedef struct {
    ct_reduction reduction;
    double alpha, beta;
    double log_zero; /* A < 0: the paper's −4 (the authors' code clamps at 1e-4, A = log 1e-4) */
} ct_nce_rce_opts;
#define CT_NCE_RCE(...) CT_WITH_DEFAULTS(ct_nce_rce_opts, (.reduction = CT_REDUCTION_MEAN, .alpha = 1.0, .beta = 1.0, \
                                                          .log_zero = -4.0), __VA_ARGS__)
ct_tensor *ct_nce_rce_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_nce_rce_opts opts);

/* StableMax cross-entropy (Prieto et al. 2025): softmax with s in place of exp,
 *   s(x) = x + 1 (x >= 0),  1/(1 − x) (x < 0);   ℓ_i = −log(s(z_iy) / Σ_k s(z_ik)). */
typedef struct {
    ct_reduction reduction;
} ct_stablemax_opts;
#define CT_STABLEMAX(...) CT_WITH_DEFAULTS(ct_stablemax_opts, (.reduction = CT_REDUCTION_MEAN), __VA_ARGS__)
ct_tensor *ct_stablemax_cross_entropy(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_stablemax_opts opts);

/* Logit-adjusted cross-entropy (Menon et al. 2021, "Long-tail learning via logit adjustment", the
 * loss of their eq. 10): with class priors π_c = n_c / Σ_k n_k from the training counts n,
 *   ℓ_i = CE(z_i + τ·log π, y_i) = −log( e^(z_iy + τ log π_y) / Σ_c e^(z_ic + τ log π_c) ).
 * Only training is adjusted: at test time the prediction is argmax z and its probabilities softmax(z)
 * (the registry's eval transform), so the metrics read the plain logits, as the paper's. τ = 1 is
 * the paper's default. Without counts the priors are uniform and the loss is cross_entropy's.
 * Composed (an add of τ·log π, broadcast over the rows, then the fused cross-entropy). */
typedef struct {
    ct_reduction reduction;
    double tau;            /* τ >= 0 (1) */
    const double *counts;  /* n_c > 0, C values; NULL: uniform priors */
    int n_counts;
} ct_logit_adjusted_opts;
#define CT_LOGIT_ADJUSTED(...) CT_WITH_DEFAULTS(ct_logit_adjusted_opts, (.reduction = CT_REDUCTION_MEAN, .tau = 1.0, \
                                                                         .counts = NULL, .n_counts = 0), __VA_ARGS__)
ct_tensor *ct_logit_adjusted_loss(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_logit_adjusted_opts opts);

/* ======================================================================================== */
/* ---- embedding losses (losses/embedding_similarity.c, losses/embedding_distance.c) ---- */
/* Losses on embeddings (rows of features) and integer labels. Labels only group samples (any
 * int; equal labels = same class), except where a loss indexes class parameters (the class form
 * of Circle loss, center loss: labels in [0, C)). SupCon/NT-Xent, both Circle forms and the
 * mined triplet loss's batch-all form and L2 distances are fused ops (one GEMM for the
 * similarities, one pass per row for the loss and its gradient) with their composed forms as
 * ct_*_reference (below); the rest is composed from tape ops. Fatal,
 * naming the loss and the index, on a wrong label count, a wrong shape or an out-of-range option.
 * A NaN or ±inf feature (or proxy, centre) gives a NaN loss and NaN gradients (center loss: in
 * that sample's row). Formulas, defaults and the differences from the authors' code are in
 * losses/README.md. */

/* SupCon (Khosla et al. 2020, L_out; the authors' "contrast_mode all"). features (N, V, D) — N
 * samples, V views each — or (N, D) for V = 1; every one of the N·V views is an anchor a:
 *   s_ak = ⟨f_a, f_k⟩ (f L2-normalised when .normalize),   P(a) = the other views with a's label
 *   ℓ_a = −(τ/τ_base) · 1/|P(a)| · Σ_{p∈P(a)} log( exp(s_ap/τ) / Σ_{k≠a} exp(s_ak/τ) )
 * Without labels (labels.data == NULL) P(a) is the other views of a's own sample: SimCLR's
 * NT-Xent. An anchor with no positive is left out (the authors' code gives NaN, or a 0 that still
 * counts in the mean); a batch with no positive pair gives 0 with a zero gradient.
 * mean: Σ ℓ_a / #anchors with a positive; sum: Σ ℓ_a; none: (N, V) (or (N) for 2-D features),
 * 0 at anchors without a positive. */
typedef struct {
    ct_reduction reduction;
    double temperature;      /* τ > 0 (0.07) */
    double base_temperature; /* τ_base > 0 (0.07): the loss is scaled by τ/τ_base */
    int normalize;           /* L2-normalise the features first (1) */
} ct_supcon_opts;
#define CT_SUPCON(...) CT_WITH_DEFAULTS(ct_supcon_opts, (.reduction = CT_REDUCTION_MEAN, \
    .temperature = 0.07, .base_temperature = 0.07, .normalize = 1), __VA_ARGS__)
ct_tensor *ct_supcon_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_supcon_opts opts);

/* Circle loss (Sun et al. 2020), on cosine similarities. With the stop-gradient weights
 *   α_p = [1 + m − s_p]₊,  α_n = [s_n + m]₊   (detached),   Δ_p = 1 − m,  Δ_n = m,
 * the loss of anchor i is
 *   ℓ_i = softplus( logsumexp_p(−γ·α_p·(s_p − Δ_p)) + logsumexp_n(γ·α_n·(s_n − Δ_n)) ).
 * Pair form (ct_circle_loss): features (N, D); s are the cosines between anchor i and the other
 * samples, positives share i's label, negatives do not; mean over anchors with at least one
 * positive and one negative (the others give 0 and are left out); none: (N).
 * Class form (ct_circle_class_loss): s are the cosines between feature i and learnable class
 * proxies (C, D): the one positive is the proxy of label y_i, the C − 1 others are negatives;
 * mean over N. Defaults m = 0.4, γ = 80 (pytorch-metric-learning's); the paper's face
 * recognition setting is m = 0.25, γ = 256. */
typedef struct {
    ct_reduction reduction;
    double m;      /* relaxation margin in [0, 1] (0.4) */
    double gamma;  /* scale γ > 0 (80) */
    int detach_weights; /* stop the gradient through α_p, α_n as the paper does (1); 0 also
                           differentiates them (an ablation, and what a gradient check verifies) */
} ct_circle_opts;
#define CT_CIRCLE(...) CT_WITH_DEFAULTS(ct_circle_opts, (.reduction = CT_REDUCTION_MEAN, .m = 0.4, \
    .gamma = 80, .detach_weights = 1), __VA_ARGS__)
ct_tensor *ct_circle_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_circle_opts opts);
ct_tensor *ct_circle_class_loss(ct_tape *tape, ct_tensor *features, ct_tensor *proxies,
                                ct_labels labels, ct_circle_opts opts);

/* Triplet margin loss, ℓ = [d(a, p) − d(a, n) + margin]₊ with
 *   L2:     d(x, y) = ‖x − y + eps‖₂   (F.pairwise_distance, p = 2, eps = 1e-6)
 *   cosine: d(x, y) = 1 − ⟨x, y⟩/(‖x‖·‖y‖).
 * ct_triplet_margin_loss: explicit anchor, positive, negative (N, D) each, with
 * torch.nn.TripletMarginLoss's semantics (swap: d(a, n) ← min(d(a, n), d(p, n))); none: (N).
 * ct_triplet_mined_loss: features (N, D) and labels, triplets mined in the batch (a ≠ p same
 * label, n another label):
 *   CT_MINING_BATCH_ALL: every valid triplet; mean = Σ ℓ_apn / #(ℓ_apn > 0) (0 when none), the
 *     "batch all" average of Hermans et al. 2017; sum = Σ ℓ_apn; none: (N), each anchor's Σ.
 *     Fused: no (N, N, N) tensor is built.
 *   CT_MINING_BATCH_HARD (Hermans et al. 2017): per anchor the farthest positive and the nearest
 *     negative, ℓ_a = [max_p d_ap − min_n d_an + margin]₊; mean over anchors with a positive and
 *     a negative; none: (N), 0 for the others. */
typedef enum { CT_DISTANCE_L2 = 0, CT_DISTANCE_COSINE } ct_distance;
typedef enum { CT_MINING_BATCH_ALL = 0, CT_MINING_BATCH_HARD } ct_mining;
typedef struct {
    ct_reduction reduction;
    double margin;        /* >= 0 (1.0) */
    ct_distance distance; /* L2 */
    double eps;           /* added to x − y in the L2 distance (1e-6, as PyTorch) */
    int swap;             /* explicit form only: the distance swap of Balntas et al. (0) */
    ct_mining mining;     /* mined form only (batch all) */
} ct_triplet_opts;
#define CT_TRIPLET(...) CT_WITH_DEFAULTS(ct_triplet_opts, (.reduction = CT_REDUCTION_MEAN, .margin = 1.0, \
    .distance = CT_DISTANCE_L2, .eps = 1e-6, .swap = 0, .mining = CT_MINING_BATCH_ALL), __VA_ARGS__)
ct_tensor *ct_triplet_margin_loss(ct_tape *tape, ct_tensor *anchor, ct_tensor *positive,
                                  ct_tensor *negative, ct_triplet_opts opts);
ct_tensor *ct_triplet_mined_loss(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_triplet_opts opts);

/* Center loss (Wen et al. 2016), weighted: features (N, D), centres (C, D), labels in [0, C),
 *   ℓ_i = (λ/2)·‖x_i − c_{y_i}‖²,   mean = Σ ℓ_i / N (the authors' Caffe layer divides by the
 *   batch), sum, none: (N).
 * λ = 0.003 is the paper's face-recognition weight in L = L_softmax + λ·L_C, so the result adds
 * straight to a cross-entropy. The centres are an ordinary parameter here (the paper moves them
 * with its own rule c_j ← c_j − α·Σ_i [y_i = j](c_j − x_i)/(1 + n_j)); see losses/README.md. */
typedef struct {
    ct_reduction reduction;
    double lambda; /* >= 0 (0.003) */
} ct_center_opts;
#define CT_CENTER(...) CT_WITH_DEFAULTS(ct_center_opts, (.reduction = CT_REDUCTION_MEAN, .lambda = 0.003), __VA_ARGS__)
ct_tensor *ct_center_loss(ct_tape *tape, ct_tensor *features, ct_tensor *centers, ct_labels labels,
                          ct_center_opts opts);

/* ======================================================================================== */
/* ---- the references: each fused loss in its readable form ---------------------------------- */
/* Every fused loss has a composed twin with the same signature and options, ct_<loss>_reference,
 * built from the public tape ops of autograd/ops.h only (log_softmax, gather_rows, exp, where,
 * matmul_t, logsumexp, ...): the formula above written as code, with no backward of its own (the
 * tape differentiates it). It is the definition the fused op must match — tests/losses/test_loss_fused.c
 * and tests/losses/test_loss_embedding_fused.c compare the two, values and gradients, and gradient-check
 * the references in the float64 build — and it is the path an element-wise loss takes when its
 * target requires grad. Slower (a node per op and (N, C) or (N, N) temporaries); the same input
 * checks, with errors naming the _reference function. It sits beside the fused kernel in the
 * same file (losses/README.md lists which). The softmax family's references build on the
 * per-sample ct_cross_entropy_reference and 1 − p_y = 1 − e^(−CE), which loses digits where p_y is
 * near 1 in float32: compare in float64 there. */
ct_tensor *ct_cross_entropy_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_ce_opts opts);
ct_tensor *ct_nll_loss_reference(ct_tape *tape, ct_tensor *log_probs, ct_labels labels, ct_nll_opts opts);
ct_tensor *ct_bce_with_logits_reference(ct_tape *tape, ct_tensor *logits, ct_tensor *targets, ct_bce_opts opts);
ct_tensor *ct_mse_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_l1_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_smooth_l1_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_huber_loss_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts);
ct_tensor *ct_kl_div_reference(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts);
ct_tensor *ct_focal_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_focal_opts opts);
ct_tensor *ct_sigmoid_focal_loss_reference(ct_tape *tape, ct_tensor *logits, ct_tensor *targets,
                                           ct_sigmoid_focal_opts opts);
ct_tensor *ct_poly1_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_poly_opts opts);
ct_tensor *ct_poly_n_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_poly_opts opts);
ct_tensor *ct_poly1_focal_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_poly_opts opts);
ct_tensor *ct_squentropy_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_squentropy_opts opts);
ct_tensor *ct_comp_sum_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_comp_sum_opts opts);
ct_tensor *ct_nce_rce_loss_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels, ct_nce_rce_opts opts);
ct_tensor *ct_stablemax_cross_entropy_reference(ct_tape *tape, ct_tensor *logits, ct_labels labels,
                                                ct_stablemax_opts opts);
ct_tensor *ct_supcon_loss_reference(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_supcon_opts opts);
ct_tensor *ct_circle_loss_reference(ct_tape *tape, ct_tensor *features, ct_labels labels, ct_circle_opts opts);
ct_tensor *ct_circle_class_loss_reference(ct_tape *tape, ct_tensor *features, ct_tensor *proxies,
                                          ct_labels labels, ct_circle_opts opts);
ct_tensor *ct_triplet_mined_loss_reference(ct_tape *tape, ct_tensor *features, ct_labels labels,
                                           ct_triplet_opts opts);

#ifndef CT_BUILDING_LIBRARY
#define ct_cross_entropy_reference(...) CT_SITE_CALL(ct_cross_entropy_reference, __VA_ARGS__)
#define ct_nll_loss_reference(...) CT_SITE_CALL(ct_nll_loss_reference, __VA_ARGS__)
#define ct_bce_with_logits_reference(...) CT_SITE_CALL(ct_bce_with_logits_reference, __VA_ARGS__)
#define ct_mse_loss_reference(...) CT_SITE_CALL(ct_mse_loss_reference, __VA_ARGS__)
#define ct_l1_loss_reference(...) CT_SITE_CALL(ct_l1_loss_reference, __VA_ARGS__)
#define ct_smooth_l1_loss_reference(...) CT_SITE_CALL(ct_smooth_l1_loss_reference, __VA_ARGS__)
#define ct_huber_loss_reference(...) CT_SITE_CALL(ct_huber_loss_reference, __VA_ARGS__)
#define ct_kl_div_reference(...) CT_SITE_CALL(ct_kl_div_reference, __VA_ARGS__)
#define ct_focal_loss_reference(...) CT_SITE_CALL(ct_focal_loss_reference, __VA_ARGS__)
#define ct_sigmoid_focal_loss_reference(...) CT_SITE_CALL(ct_sigmoid_focal_loss_reference, __VA_ARGS__)
#define ct_poly1_loss_reference(...) CT_SITE_CALL(ct_poly1_loss_reference, __VA_ARGS__)
#define ct_poly_n_loss_reference(...) CT_SITE_CALL(ct_poly_n_loss_reference, __VA_ARGS__)
#define ct_poly1_focal_loss_reference(...) CT_SITE_CALL(ct_poly1_focal_loss_reference, __VA_ARGS__)
#define ct_squentropy_loss_reference(...) CT_SITE_CALL(ct_squentropy_loss_reference, __VA_ARGS__)
#define ct_comp_sum_loss_reference(...) CT_SITE_CALL(ct_comp_sum_loss_reference, __VA_ARGS__)
#define ct_nce_rce_loss_reference(...) CT_SITE_CALL(ct_nce_rce_loss_reference, __VA_ARGS__)
#define ct_stablemax_cross_entropy_reference(...) CT_SITE_CALL(ct_stablemax_cross_entropy_reference, __VA_ARGS__)
#define ct_supcon_loss_reference(...) CT_SITE_CALL(ct_supcon_loss_reference, __VA_ARGS__)
#define ct_circle_loss_reference(...) CT_SITE_CALL(ct_circle_loss_reference, __VA_ARGS__)
#define ct_circle_class_loss_reference(...) CT_SITE_CALL(ct_circle_class_loss_reference, __VA_ARGS__)
#define ct_triplet_mined_loss_reference(...) CT_SITE_CALL(ct_triplet_mined_loss_reference, __VA_ARGS__)
#endif

/* ---- metrics ---------------------------------------------------------------------------- */
/* The number of rows of logits (N, C) whose largest value (the first, on ties) is the label. */
int ct_count_correct(const ct_tensor *logits, ct_labels labels);

#ifndef CT_BUILDING_LIBRARY
#define ct_supcon_loss(...) CT_SITE_CALL(ct_supcon_loss, __VA_ARGS__)
#define ct_circle_loss(...) CT_SITE_CALL(ct_circle_loss, __VA_ARGS__)
#define ct_circle_class_loss(...) CT_SITE_CALL(ct_circle_class_loss, __VA_ARGS__)
#define ct_triplet_margin_loss(...) CT_SITE_CALL(ct_triplet_margin_loss, __VA_ARGS__)
#define ct_triplet_mined_loss(...) CT_SITE_CALL(ct_triplet_mined_loss, __VA_ARGS__)
#define ct_center_loss(...) CT_SITE_CALL(ct_center_loss, __VA_ARGS__)
#endif
/* ---- end of embedding losses ---- */

#ifndef CT_BUILDING_LIBRARY
#define ct_cross_entropy(...) CT_SITE_CALL(ct_cross_entropy, __VA_ARGS__)
#define ct_nll_loss(...) CT_SITE_CALL(ct_nll_loss, __VA_ARGS__)
#define ct_bce_with_logits(...) CT_SITE_CALL(ct_bce_with_logits, __VA_ARGS__)
#define ct_mse_loss(...) CT_SITE_CALL(ct_mse_loss, __VA_ARGS__)
#define ct_l1_loss(...) CT_SITE_CALL(ct_l1_loss, __VA_ARGS__)
#define ct_smooth_l1_loss(...) CT_SITE_CALL(ct_smooth_l1_loss, __VA_ARGS__)
#define ct_huber_loss(...) CT_SITE_CALL(ct_huber_loss, __VA_ARGS__)
#define ct_kl_div(...) CT_SITE_CALL(ct_kl_div, __VA_ARGS__)
#define ct_distillation_loss(...) CT_SITE_CALL(ct_distillation_loss, __VA_ARGS__)
#define ct_focal_loss(...) CT_SITE_CALL(ct_focal_loss, __VA_ARGS__)
#define ct_sigmoid_focal_loss(...) CT_SITE_CALL(ct_sigmoid_focal_loss, __VA_ARGS__)
#define ct_poly1_loss(...) CT_SITE_CALL(ct_poly1_loss, __VA_ARGS__)
#define ct_poly_n_loss(...) CT_SITE_CALL(ct_poly_n_loss, __VA_ARGS__)
#define ct_poly1_focal_loss(...) CT_SITE_CALL(ct_poly1_focal_loss, __VA_ARGS__)
#define ct_squentropy_loss(...) CT_SITE_CALL(ct_squentropy_loss, __VA_ARGS__)
#define ct_comp_sum_loss(...) CT_SITE_CALL(ct_comp_sum_loss, __VA_ARGS__)
#define ct_nce_rce_loss(...) CT_SITE_CALL(ct_nce_rce_loss, __VA_ARGS__)
#define ct_stablemax_cross_entropy(...) CT_SITE_CALL(ct_stablemax_cross_entropy, __VA_ARGS__)
#define ct_logit_adjusted_loss(...) CT_SITE_CALL(ct_logit_adjusted_loss, __VA_ARGS__)
#define ct_loss_apply(...) CT_SITE_CALL(ct_loss_apply, __VA_ARGS__)
#endif

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_loss_parse(...) CT_SITE_CALL_CLEARING(ct_loss_parse, __VA_ARGS__)
#define ct_loss_free(...) CT_SITE_CALL_VOID(ct_loss_free, __VA_ARGS__)
#define ct_loss_bind(...) CT_SITE_CALL_CLEARING(ct_loss_bind, __VA_ARGS__)
#define ct_loss_eval_transform(...) CT_SITE_CALL(ct_loss_eval_transform, __VA_ARGS__)
#define ct_loss_name(...) CT_SITE_CALL(ct_loss_name, __VA_ARGS__)
#define ct_loss_set_progress(...) CT_SITE_CALL_VOID(ct_loss_set_progress, __VA_ARGS__)
#define ct_loss_set_counts(...) CT_SITE_CALL_CLEARING(ct_loss_set_counts, __VA_ARGS__)
#define ct_loss_needs_counts(...) CT_SITE_CALL(ct_loss_needs_counts, __VA_ARGS__)
#define ct_loss_describe(...) CT_SITE_CALL_VOID(ct_loss_describe, __VA_ARGS__)
#define ct_loss_list(...) CT_SITE_CALL_VOID(ct_loss_list, __VA_ARGS__)
#define ct_loss_count(...) CT_SITE_CALL(ct_loss_count, __VA_ARGS__)
#define ct_loss_name_at(...) CT_SITE_CALL(ct_loss_name_at, __VA_ARGS__)
#define ct_loss_register(...) CT_SITE_CALL_CLEARING(ct_loss_register, __VA_ARGS__)
#define ct_count_correct(...) CT_SITE_CALL(ct_count_correct, __VA_ARGS__)
#endif

#endif
