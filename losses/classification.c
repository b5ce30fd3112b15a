/* losses/classification.c — the classification and regression losses of the zoo, written from
 * primitive ops (so their backward is the tape's) except where a fused op already does the work:
 * every softmax-based loss starts from the fused, stable per-sample cross-entropy
 *     CE_i = −log p_{i,y_i}   (ct_cross_entropy, reduction none)
 * and gets p_y = exp(−CE_i) and 1 − p_y from it, so the extra cost over CE is a few (N) vectors.
 * The math of each loss is in losses/losses.h and losses/README.md; here it is next to the code. */
#define CT_BUILDING_LIBRARY
#include "losses.h"
#include "../autograd/internal.h"

#include <math.h>
#include <string.h>

/* ---- shared checks and helpers ------------------------------------------------------------- */
/* logits (N, C) with N labels in [0, C): fatal naming the loss and the index otherwise; every
 * value finite (a NaN would otherwise become a wrong number). */
static void check_logits(const char *op, const ct_tensor *z, ct_labels y) {
    CT_CHECK(z && z->ndim == 2, op, "logits must be 2-D (N, C), got %s", z ? ct_shp(z) : "NULL");
    const int N = z->shape[0], C = z->shape[1];
    CT_CHECK(C > 0, op, "logits %s have no classes", ct_shp(z));
    CT_CHECK(y.n == N, op, "%d labels for logits %s with N = %d rows", y.n, ct_shp(z), N);
    CT_CHECK(y.data || N == 0, op, "labels are NULL for logits %s", ct_shp(z));
    for (int i = 0; i < N; i++)
        CT_CHECK(y.data[i] >= 0 && y.data[i] < C, op, "label %d of sample %d is out of range for C = %d classes",
                 y.data[i], i, C);
    for (size_t k = 0; k < z->size; k++)
        CT_CHECK(isfinite(z->data[k]), op, "logits row %zu has a non-finite value %g at class %zu", k / (size_t)C,
                 (double)z->data[k], k % (size_t)C);
}

static void check_finite(const char *op, const char *what, const ct_tensor *x) {
    for (size_t k = 0; k < x->size; k++)
        CT_CHECK(isfinite(x->data[k]), op, "%s %s has a non-finite value %g at flat index %zu", what, ct_shp(x),
                 (double)x->data[k], k);
}

static void check_same_shape(const char *op, const ct_tensor *a, const ct_tensor *b, const char *an, const char *bn) {
    CT_CHECK(a && b, op, "%s or %s is NULL", an, bn);
    int same = a->ndim == b->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
    CT_CHECK(same, op, "%s %s and %s %s must have the same shape", an, ct_shp(a), bn, ct_shp(b));
}

static void check_reduction(const char *op, ct_reduction r, int allow_batchmean) {
    CT_CHECK(r == CT_REDUCTION_MEAN || r == CT_REDUCTION_SUM || r == CT_REDUCTION_NONE ||
                 (allow_batchmean && r == CT_REDUCTION_BATCHMEAN),
             op, "reduction %d is not %s", (int)r, allow_batchmean ? "mean, sum, none or batchmean" : "mean, sum or none");
}

/* mean / sum over every element, or the tensor itself for none. */
static ct_tensor *reduce(ct_tape *tape, ct_tensor *per, ct_reduction r) {
    if (r == CT_REDUCTION_NONE) return per;
    if (r == CT_REDUCTION_SUM) return ct_sum_all(tape, per);
    return ct_mean_all(tape, per);
}

/* A constant (no gradient) arena tensor. */
static ct_tensor *constant(ct_tape *tape, ct_shape shape, double value) {
    ct_tensor *t = ct_tape_zeros(tape, shape);
    if (value != 0) ct_tensor_fill(t, (ct_real)value);
    return t;
}

/* Per-sample cross-entropy CE_i = −log p_{i,y_i} (N), from the fused op. */
static ct_tensor *per_sample_ce(ct_tape *tape, ct_tensor *z, ct_labels y) {
    return ct_cross_entropy(tape, z, y, CT_CE(.reduction = CT_REDUCTION_NONE));
}

/* 1 − p_y = 1 − exp(−CE) (N). */
static ct_tensor *one_minus_p(ct_tape *tape, ct_tensor *ce) {
    return ct_add_scalar(tape, ct_neg(tape, ct_exp(tape, ct_neg(tape, ce))), 1.0);
}

/* (1 − p_y)^γ. For 0 < γ < 1 the derivative γ·x^(γ−1) is infinite at x = 0 (p_y = 1 exactly,
 * logits far apart): x is clamped to [1e-30, 1] there, so the gradient is 0 instead of 0·∞ = NaN
 * and the value changes by less than 1e-30^γ·|log p_y| ≈ 0. */
static ct_tensor *focal_modulator(ct_tape *tape, ct_tensor *one_minus, double gamma) {
    if (gamma == 0) return NULL;
    if (gamma == 1) return one_minus;
    if (gamma == 2) return ct_mul(tape, one_minus, one_minus);
    if (gamma < 1) one_minus = ct_clamp(tape, one_minus, 1e-30, 1.0);
    return ct_pow_scalar(tape, one_minus, gamma);
}

/* ---- nll: log-probabilities x (N, C) ---------------------------------------------------------
 *   ℓ_i = −w_{y_i}·x_{i,y_i}, 0 for y_i = ignore_index;  mean = Σ_i ℓ_i / Σ_i w_{y_i} (kept).
 * Composed: gather x_{i,y_i} (ignored rows gather class 0 and weigh it 0), multiply by the
 * constant weights. All ignored: mean is 0/0 = NaN with a zero gradient, as in PyTorch. */
ct_tensor *ct_nll_loss(ct_tape *tape, ct_tensor *x, ct_labels y, ct_nll_opts opts) {
    static const char *op = "ct_nll_loss";
    CT_CHECK(x && x->ndim == 2, op, "log_probs must be 2-D (N, C), got %s", x ? ct_shp(x) : "NULL");
    check_reduction(op, opts.reduction, 0);
    const int N = x->shape[0], C = x->shape[1];
    CT_CHECK(y.n == N, op, "%d labels for log_probs %s with N = %d rows", y.n, ct_shp(x), N);
    CT_CHECK(y.data || N == 0, op, "labels are NULL for log_probs %s", ct_shp(x));
    int *index = ct_arena_alloc(ct_tape_arena(tape), (size_t)(N ? N : 1) * sizeof *index);
    ct_tensor *w = ct_tape_zeros(tape, CT_SHAPE(N));
    double denom = 0;
    for (int i = 0; i < N; i++) {
        const int yi = y.data[i];
        CT_CHECK(yi == opts.ignore_index || (yi >= 0 && yi < C), op,
                 "label %d of sample %d is out of range for C = %d classes (ignore_index is %d)", yi, i, C,
                 opts.ignore_index);
        const int kept = yi != opts.ignore_index;
        index[i] = kept ? yi : 0;
        w->data[i] = kept ? (opts.weight ? opts.weight[yi] : 1) : 0;
        CT_CHECK(isfinite(w->data[i]), op, "weight[%d] = %g is not finite", yi, (double)w->data[i]);
        denom += w->data[i];
    }
    for (int i = 0; i < N; i++)
        if (w->data[i] != 0)
            CT_CHECK(!isnan(x->data[(size_t)i * C + index[i]]), op, "log_probs row %d has NaN at class %d", i,
                     index[i]);
    ct_tensor *per = ct_neg(tape, ct_mul(tape, ct_gather_rows(tape, x, index, N), w));
    if (opts.reduction == CT_REDUCTION_NONE) return per;
    ct_tensor *total = ct_sum_all(tape, per);
    if (opts.reduction == CT_REDUCTION_SUM) return total;
    if (denom == 0) return ct_add(tape, ct_mul_scalar(tape, total, 0), constant(tape, CT_SHAPE_SCALAR, NAN));
    return ct_mul_scalar(tape, total, 1.0 / denom);
}

/* ---- binary cross-entropy with logits: x, t of the same shape, C = last dimension ------------
 *   ℓ = w_c·[(1 − t)·x + l·softplus(−x)],  l = 1 + (pw_c − 1)·t
 * which is −w·[pw·t·log σ(x) + (1 − t)·log(1 − σ(x))] rewritten with log σ(x) = −softplus(−x)
 * and log(1 − σ(x)) = −x − softplus(−x): no exp of a large number, finite for any finite x.
 * softplus runs without PyTorch's linear threshold (∞), so it stays exact in float64. */
ct_tensor *ct_bce_with_logits(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_bce_opts opts) {
    static const char *op = "ct_bce_with_logits";
    check_same_shape(op, x, t, "logits", "targets");
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(x->ndim >= 1, op, "logits must have at least one dimension, got %s", ct_shp(x));
    check_finite(op, "logits", x);
    check_finite(op, "targets", t);
    const int C = x->shape[x->ndim - 1];
    ct_tensor *per = ct_mul(tape, ct_add_scalar(tape, ct_neg(tape, t), 1.0), x); /* (1 − t)·x */
    ct_tensor *sp = ct_softplus(tape, ct_neg(tape, x), 1.0, INFINITY);         /* softplus(−x) */
    if (opts.pos_weight) {
        ct_tensor *pw_minus_1 = ct_tape_zeros(tape, CT_SHAPE(C));
        for (int c = 0; c < C; c++) {
            CT_CHECK(isfinite(opts.pos_weight[c]), op, "pos_weight[%d] = %g is not finite", c,
                     (double)opts.pos_weight[c]);
            pw_minus_1->data[c] = opts.pos_weight[c] - 1;
        }
        ct_tensor *l = ct_add_scalar(tape, ct_mul(tape, t, pw_minus_1), 1.0);
        sp = ct_mul(tape, l, sp);
    }
    per = ct_add(tape, per, sp);
    if (opts.weight) {
        ct_tensor *w = ct_tape_tensor_from(tape, CT_SHAPE(C), opts.weight);
        check_finite(op, "weight", w);
        per = ct_mul(tape, per, w);
    }
    return reduce(tape, per, opts.reduction);
}

/* ---- regression losses on d = input − target, element-wise ---------------------------------- */
static ct_tensor *difference(const char *op, ct_tape *tape, ct_tensor *input, ct_tensor *target,
                             ct_regression_opts opts) {
    check_same_shape(op, input, target, "input", "target");
    check_reduction(op, opts.reduction, 0);
    check_finite(op, "input", input);
    check_finite(op, "target", target);
    return ct_sub(tape, input, target);
}

/* mse: d² */
ct_tensor *ct_mse_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    ct_tensor *d = difference("ct_mse_loss", tape, input, target, opts);
    return reduce(tape, ct_mul(tape, d, d), opts.reduction);
}

/* l1: |d| (gradient sign(d), 0 at d = 0 as PyTorch) */
ct_tensor *ct_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    ct_tensor *d = difference("ct_l1_loss", tape, input, target, opts);
    return reduce(tape, ct_abs(tape, d), opts.reduction);
}

/* Piecewise quadratic / linear: where |d| < knee (or <= for huber) take quad_scale·½d², else
 * lin_scale·(|d| − ½·knee). smooth_l1: quad_scale = 1/β, lin_scale = 1, knee β; huber: 1, δ, δ. */
static ct_tensor *quadratic_then_linear(ct_tape *tape, ct_tensor *d, double knee, double quad_scale,
                                        double lin_scale, int closed) {
    ct_tensor *a = ct_abs(tape, d);
    ct_tensor *inside = ct_tape_zeros(tape, ct_tensor_shape(d));
    for (size_t k = 0; k < d->size; k++) {
        const double v = fabs((double)d->data[k]);
        inside->data[k] = closed ? v <= knee : v < knee;
    }
    ct_tensor *quad = ct_mul_scalar(tape, ct_mul(tape, d, d), 0.5 * quad_scale);
    ct_tensor *lin = ct_mul_scalar(tape, ct_add_scalar(tape, a, -0.5 * knee), lin_scale);
    return ct_where(tape, inside, quad, lin);
}

/* smooth_l1 (β >= 0): ½d²/β if |d| < β, else |d| − ½β; β = 0 is l1 (PyTorch) */
ct_tensor *ct_smooth_l1_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    static const char *op = "ct_smooth_l1_loss";
    CT_CHECK(opts.beta >= 0 && isfinite(opts.beta), op, "beta %g must be finite and >= 0", opts.beta);
    ct_tensor *d = difference(op, tape, input, target, opts);
    if (opts.beta == 0) return reduce(tape, ct_abs(tape, d), opts.reduction);
    return reduce(tape, quadratic_then_linear(tape, d, opts.beta, 1.0 / opts.beta, 1.0, 0), opts.reduction);
}

/* huber (δ > 0): ½d² if |d| <= δ, else δ·(|d| − ½δ) */
ct_tensor *ct_huber_loss(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_regression_opts opts) {
    static const char *op = "ct_huber_loss";
    CT_CHECK(opts.delta > 0 && isfinite(opts.delta), op, "delta %g must be finite and > 0", opts.delta);
    ct_tensor *d = difference(op, tape, input, target, opts);
    return reduce(tape, quadratic_then_linear(tape, d, opts.delta, 1.0, opts.delta, 1), opts.reduction);
}

/* ---- kl_div: input = log q, target = p (or log p), element-wise -------------------------------
 *   ℓ = p·(log p − input), with p·log p = 0 where p = 0 (xlogy): log is taken of where(p > 0, p, 1)
 *   log_target: ℓ = e^t·(t − input)
 * mean: over all elements (PyTorch's default, which is not the KL); batchmean: Σ / N. */
ct_tensor *ct_kl_div(ct_tape *tape, ct_tensor *input, ct_tensor *target, ct_kl_div_opts opts) {
    static const char *op = "ct_kl_div";
    check_same_shape(op, input, target, "input", "target");
    check_reduction(op, opts.reduction, 1);
    CT_CHECK(input->ndim >= 1, op, "input must have at least one dimension, got %s", ct_shp(input));
    check_finite(op, "input", input);
    ct_tensor *per;
    if (opts.log_target) {
        for (size_t k = 0; k < target->size; k++)
            CT_CHECK(!isnan(target->data[k]) && target->data[k] != INFINITY, op,
                     "log-target %s has %g at flat index %zu", ct_shp(target), (double)target->data[k], k);
        per = ct_mul(tape, ct_exp(tape, target), ct_sub(tape, target, input));
    } else {
        ct_tensor *positive = ct_tape_zeros(tape, ct_tensor_shape(target));
        for (size_t k = 0; k < target->size; k++) {
            CT_CHECK(target->data[k] >= 0 && isfinite(target->data[k]), op,
                     "target %s has %g at flat index %zu (probabilities must be finite and >= 0)", ct_shp(target),
                     (double)target->data[k], k);
            positive->data[k] = target->data[k] > 0;
        }
        ct_tensor *safe = ct_where(tape, positive, target, constant(tape, CT_SHAPE(1), 1.0));
        per = ct_mul(tape, target, ct_sub(tape, ct_log(tape, safe), input));
    }
    if (opts.reduction == CT_REDUCTION_BATCHMEAN)
        return ct_mul_scalar(tape, ct_sum_all(tape, per), 1.0 / (input->shape[0] ? input->shape[0] : 1));
    return reduce(tape, per, opts.reduction);
}

/* ---- knowledge distillation: student s, teacher t (N, C) ------------------------------------
 *   q = softmax(t/T) (teacher, detached),  ℓ_i = T²·Σ_c q_ic·(log q_ic − log softmax(s_i/T)_c)
 * per sample (N) for none; mean and batchmean both average over the N samples. */
ct_tensor *ct_distillation_loss(ct_tape *tape, ct_tensor *s, ct_tensor *t, ct_kd_opts opts) {
    static const char *op = "ct_distillation_loss";
    check_same_shape(op, s, t, "student_logits", "teacher_logits");
    CT_CHECK(s->ndim == 2, op, "logits must be 2-D (N, C), got %s", ct_shp(s));
    check_reduction(op, opts.reduction, 1);
    CT_CHECK(opts.temperature > 0 && isfinite(opts.temperature), op, "temperature %g must be > 0",
             opts.temperature);
    check_finite(op, "student_logits", s);
    check_finite(op, "teacher_logits", t);
    const double inv_T = 1.0 / opts.temperature;
    ct_tensor *tt = ct_mul_scalar(tape, ct_detach(tape, t), inv_T);
    ct_tensor *log_q = ct_log_softmax(tape, tt, 1);
    ct_tensor *q = ct_exp(tape, log_q);
    ct_tensor *log_p = ct_log_softmax(tape, ct_mul_scalar(tape, s, inv_T), 1);
    ct_tensor *per = ct_sum(tape, ct_mul(tape, q, ct_sub(tape, log_q, log_p)), 1, 0);
    per = ct_mul_scalar(tape, per, opts.temperature * opts.temperature);
    return reduce(tape, per, opts.reduction == CT_REDUCTION_BATCHMEAN ? CT_REDUCTION_MEAN : opts.reduction);
}

/* ---- focal loss, softmax form: ℓ_i = −α_{y_i}·(1 − p_y)^γ·log p_y = α_{y_i}·(1 − p_y)^γ·CE_i --- */
static ct_tensor *alpha_of_labels(const char *op, ct_tape *tape, ct_labels y, int C, double alpha,
                                  const ct_real *per_class) {
    if (!per_class && alpha == 1) return NULL;
    CT_CHECK(isfinite(alpha), op, "alpha %g is not finite", alpha);
    ct_tensor *a = constant(tape, CT_SHAPE(y.n), alpha);
    if (per_class) {
        for (int c = 0; c < C; c++)
            CT_CHECK(isfinite(per_class[c]), op, "alpha_per_class[%d] = %g is not finite", c, (double)per_class[c]);
        for (int i = 0; i < y.n; i++) a->data[i] = per_class[y.data[i]];
    }
    return a;
}

static ct_tensor *focal_per_sample(const char *op, ct_tape *tape, ct_tensor *z, ct_labels y, double gamma,
                                   double alpha, const ct_real *alpha_per_class, ct_tensor **ce_out,
                                   ct_tensor **one_minus_out) {
    check_logits(op, z, y);
    CT_CHECK(gamma >= 0 && isfinite(gamma), op, "gamma %g must be finite and >= 0", gamma);
    ct_tensor *ce = per_sample_ce(tape, z, y);
    ct_tensor *one_minus = one_minus_p(tape, ce);
    ct_tensor *mod = focal_modulator(tape, one_minus, gamma);
    ct_tensor *per = mod ? ct_mul(tape, mod, ce) : ce;
    ct_tensor *a = alpha_of_labels(op, tape, y, z->shape[1], alpha, alpha_per_class);
    if (a) per = ct_mul(tape, per, a);
    if (ce_out) *ce_out = ce;
    if (one_minus_out) *one_minus_out = one_minus;
    return per;
}

ct_tensor *ct_focal_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_focal_opts opts) {
    static const char *op = "ct_focal_loss";
    check_reduction(op, opts.reduction, 0);
    return reduce(tape, focal_per_sample(op, tape, z, y, opts.gamma, opts.alpha, opts.alpha_per_class, NULL, NULL),
                  opts.reduction);
}

/* ---- sigmoid focal loss (torchvision.ops.sigmoid_focal_loss), element-wise -------------------
 *   p = σ(x), p_t = p·t + (1 − p)·(1 − t),  ℓ = α_t·(1 − p_t)^γ·bce_with_logits(x, t),
 *   α_t = α·t + (1 − α)·(1 − t) when α >= 0. */
ct_tensor *ct_sigmoid_focal_loss(ct_tape *tape, ct_tensor *x, ct_tensor *t, ct_sigmoid_focal_opts opts) {
    static const char *op = "ct_sigmoid_focal_loss";
    check_same_shape(op, x, t, "logits", "targets");
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.gamma >= 0 && isfinite(opts.gamma), op, "gamma %g must be finite and >= 0", opts.gamma);
    CT_CHECK(isfinite(opts.alpha), op, "alpha %g is not finite", opts.alpha);
    ct_tensor *ce = ct_bce_with_logits(tape, x, t, CT_BCE(.reduction = CT_REDUCTION_NONE));
    ct_tensor *p = ct_sigmoid(tape, x);
    /* 1 − p_t = p + t − 2·p·t */
    ct_tensor *one_minus_pt = ct_sub(tape, ct_add(tape, p, t), ct_mul_scalar(tape, ct_mul(tape, p, t), 2.0));
    ct_tensor *mod = focal_modulator(tape, one_minus_pt, opts.gamma);
    ct_tensor *per = mod ? ct_mul(tape, ce, mod) : ce;
    if (opts.alpha >= 0) /* α_t = (1 − α) + (2α − 1)·t */
        per = ct_mul(tape, per, ct_add_scalar(tape, ct_mul_scalar(tape, t, 2 * opts.alpha - 1), 1 - opts.alpha));
    return reduce(tape, per, opts.reduction);
}

/* ---- PolyLoss (Leng et al. 2022) -------------------------------------------------------------- */
/* Poly-1: CE + ε·(1 − p_y), ε >= −1 */
ct_tensor *ct_poly1_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    static const char *op = "ct_poly1_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.epsilon >= -1 && isfinite(opts.epsilon), op, "epsilon %g must be finite and >= -1", opts.epsilon);
    check_logits(op, z, y);
    ct_tensor *ce = per_sample_ce(tape, z, y);
    ct_tensor *per = ct_add(tape, ce, ct_mul_scalar(tape, one_minus_p(tape, ce), opts.epsilon));
    return reduce(tape, per, opts.reduction);
}

/* Poly-N: CE + Σ_{j=1..N} ε_j·(1 − p_y)^j, the powers by repeated products (exact at p_y = 1) */
ct_tensor *ct_poly_n_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    static const char *op = "ct_poly_n_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.n_epsilons >= 1 && opts.epsilons, op, "needs n_epsilons >= 1 coefficients, got %d",
             opts.n_epsilons);
    for (int j = 0; j < opts.n_epsilons; j++)
        CT_CHECK(isfinite(opts.epsilons[j]), op, "epsilons[%d] = %g is not finite", j, opts.epsilons[j]);
    check_logits(op, z, y);
    ct_tensor *ce = per_sample_ce(tape, z, y);
    ct_tensor *one_minus = one_minus_p(tape, ce), *power = one_minus, *per = ce;
    for (int j = 0; j < opts.n_epsilons; j++) {
        if (j) power = ct_mul(tape, power, one_minus);
        if (opts.epsilons[j] != 0) per = ct_add(tape, per, ct_mul_scalar(tape, power, opts.epsilons[j]));
    }
    return reduce(tape, per, opts.reduction);
}

/* Poly-1 focal: FL_γ,α + ε·(1 − p_y)^(γ+1), softmax focal loss, ε >= −1 */
ct_tensor *ct_poly1_focal_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_poly_opts opts) {
    static const char *op = "ct_poly1_focal_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.epsilon >= -1 && isfinite(opts.epsilon), op, "epsilon %g must be finite and >= -1", opts.epsilon);
    ct_tensor *one_minus;
    ct_tensor *per = focal_per_sample(op, tape, z, y, opts.gamma, opts.alpha, NULL, NULL, &one_minus);
    ct_tensor *poly = focal_modulator(tape, one_minus, opts.gamma + 1);
    per = ct_add(tape, per, ct_mul_scalar(tape, poly, opts.epsilon));
    return reduce(tape, per, opts.reduction);
}

/* ---- squentropy (Hui, Belkin, Wright 2023): CE_i + (1/(C−1))·Σ_{j≠y_i} z_ij² ----------------
 * The sum is over the logits with the label's masked out (not Σ_j z² − z_y², which cancels when
 * z_y is large). */
ct_tensor *ct_squentropy_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_squentropy_opts opts) {
    static const char *op = "ct_squentropy_loss";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    const int N = z->shape[0], C = z->shape[1];
    CT_CHECK(C >= 2, op, "needs C >= 2 classes (the square term divides by C − 1), got logits %s", ct_shp(z));
    ct_tensor *others = constant(tape, CT_SHAPE(N, C), 1.0);
    for (int i = 0; i < N; i++) others->data[(size_t)i * C + y.data[i]] = 0;
    ct_tensor *masked = ct_mul(tape, z, others);
    ct_tensor *square = ct_sum(tape, ct_mul(tape, masked, masked), 1, 0);
    ct_tensor *per = ct_add(tape, per_sample_ce(tape, z, y), ct_mul_scalar(tape, square, 1.0 / (C - 1)));
    return reduce(tape, per, opts.reduction);
}

/* ---- comp-sum (Mao, Mohri, Zhong 2023): ℓ^τ = (p_y^(τ−1) − 1)/(1 − τ), −log p_y at τ = 1 --------
 * p_y^(τ−1) = exp((1 − τ)·CE). */
ct_tensor *ct_comp_sum_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_comp_sum_opts opts) {
    static const char *op = "ct_comp_sum_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(opts.tau >= 0 && isfinite(opts.tau), op, "tau %g must be finite and >= 0", opts.tau);
    check_logits(op, z, y);
    ct_tensor *ce = per_sample_ce(tape, z, y);
    if (opts.tau == 1) return reduce(tape, ce, opts.reduction);
    const double k = 1 - opts.tau;
    ct_tensor *per = ct_mul_scalar(tape, ct_add_scalar(tape, ct_exp(tape, ct_mul_scalar(tape, ce, k)), -1.0), 1.0 / k);
    return reduce(tape, per, opts.reduction);
}

/* ---- NCE + RCE (Ma et al. 2020) ---------------------------------------------------------------
 *   NCE_i = log p_y / Σ_k log p_k,   RCE_i = −A·(1 − p_y),   ℓ_i = α·NCE_i + β·RCE_i */
ct_tensor *ct_nce_rce_loss(ct_tape *tape, ct_tensor *z, ct_labels y, ct_nce_rce_opts opts) {
    static const char *op = "ct_nce_rce_loss";
    check_reduction(op, opts.reduction, 0);
    CT_CHECK(isfinite(opts.alpha) && isfinite(opts.beta) && opts.alpha >= 0 && opts.beta >= 0, op,
             "alpha %g and beta %g must be finite and >= 0", opts.alpha, opts.beta);
    CT_CHECK(opts.log_zero < 0 && isfinite(opts.log_zero), op, "log_zero %g must be finite and < 0", opts.log_zero);
    check_logits(op, z, y);
    CT_CHECK(z->shape[1] >= 2, op, "needs C >= 2 classes (NCE divides by Σ_k log p_k), got logits %s", ct_shp(z));
    ct_tensor *ce = per_sample_ce(tape, z, y);
    ct_tensor *log_p = ct_log_softmax(tape, z, 1);
    ct_tensor *nce = ct_div(tape, ce, ct_neg(tape, ct_sum(tape, log_p, 1, 0)));
    ct_tensor *rce = ct_mul_scalar(tape, one_minus_p(tape, ce), -opts.log_zero);
    ct_tensor *per = ct_add(tape, ct_mul_scalar(tape, nce, opts.alpha), ct_mul_scalar(tape, rce, opts.beta));
    return reduce(tape, per, opts.reduction);
}

/* ---- StableMax cross-entropy (Prieto et al. 2025) ---------------------------------------------
 *   s(x) = x + 1 (x >= 0), 1/(1 − x) (x < 0);   ℓ_i = log Σ_k s(z_ik) − log s(z_iy)
 * Both branches are evaluated everywhere, so the negative one is 1/(1 − min(x, 0)) — never a
 * division by zero — and where() sends the gradient to the branch it took. s is C¹ at 0. */
ct_tensor *ct_stablemax_cross_entropy(ct_tape *tape, ct_tensor *z, ct_labels y, ct_stablemax_opts opts) {
    static const char *op = "ct_stablemax_cross_entropy";
    check_reduction(op, opts.reduction, 0);
    check_logits(op, z, y);
    const int N = z->shape[0];
    ct_tensor *nonneg = ct_tape_zeros(tape, ct_tensor_shape(z));
    for (size_t k = 0; k < z->size; k++) nonneg->data[k] = z->data[k] >= 0;
    ct_tensor *pos = ct_add_scalar(tape, z, 1.0);
    ct_tensor *neg_part = ct_minimum(tape, z, constant(tape, CT_SHAPE(1), 0.0));
    ct_tensor *negb = ct_pow_scalar(tape, ct_add_scalar(tape, ct_neg(tape, neg_part), 1.0), -1.0);
    ct_tensor *s = ct_where(tape, nonneg, pos, negb);
    ct_tensor *log_total = ct_log(tape, ct_sum(tape, s, 1, 0));
    ct_tensor *log_sy = ct_log(tape, ct_gather_rows(tape, s, y.data, N));
    return reduce(tape, ct_sub(tape, log_total, log_sy), opts.reduction);
}
