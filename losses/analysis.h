/* losses/analysis.h — what the loss papers measure besides accuracy: temperature scaling (and the
 * calibration it buys), neural collapse of the penultimate features, and the logit statistics of
 * softmax collapse. Each works on tensors a program already has (validation logits, features,
 * the last layer's weight) and computes in double whatever the build's precision.
 *
 * Errors follow losses/metrics.h: a NULL, a wrong shape or a label out of range is a programmer
 * error (fatal, naming the function and the mistake); a NaN or infinite value is data: the
 * functions that return a status give CT_ERR_VALUE with ct_last_error() naming the row, and the
 * figures they could not compute are NaN. */
#ifndef CTAPE_LOSSES_ANALYSIS_H
#define CTAPE_LOSSES_ANALYSIS_H

#include "metrics.h"

/* ---- temperature scaling (Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern Neural
 * Networks", sec. 4.2) ---------------------------------------------------------------------------
 * One scalar T > 0 divides every logit, p = softmax(z / T); T is fitted on a validation split by
 * minimising the NLL, so the argmax (and the accuracy) never changes, only the confidence.
 *
 * Method. With β = 1/T and z_i the logits of sample i (label y_i), the NLL
 *   f(β)   = (1/N) Σ_i [log Σ_c e^(β z_ic) − β z_iy]
 *   f'(β)  = (1/N) Σ_i [E_p[z_i] − z_iy]                 (p = softmax(β z_i))
 *   f''(β) = (1/N) Σ_i Var_p[z_i]  ≥ 0
 * is convex in β, so its minimum is the one root of f' (or an end of the range when f' keeps its
 * sign there). The fit is Newton's method on f'(β) = 0 inside a bracket [1/t_max, 1/t_min] that
 * each step shrinks, falling back to bisection when a Newton step leaves the bracket; it starts
 * at T = 1 and stops when a step moves β by at most tol·β (so T is found to a relative tol).
 * Guo et al. fit log T with L-BFGS; the convex form in β makes a bracketed 1-D Newton exact and
 * deterministic. */
typedef struct {
    double t_min, t_max; /* the range of T searched (0.01, 100) */
    double tol;          /* relative tolerance on T (1e-10) */
    int max_iter;        /* Newton/bisection steps at most (100) */
    int bins;            /* ECE bins, as ct_metrics (15) */
} ct_temperature_opts;
#define CT_TEMPERATURE(...) CT_WITH_DEFAULTS(ct_temperature_opts, (.t_min = 0.01, .t_max = 100, .tol = 1e-10, \
                                                                   .max_iter = 100, .bins = 15), __VA_ARGS__)

typedef struct {
    double temperature;  /* the fitted T */
    int iterations;      /* steps taken */
    int at_bound;        /* 1 when the NLL still falls at t_min or t_max: T is that end of the range */
    /* on the fitting split, at T = 1 and at the fitted T (ct_metrics' definitions, softmax) */
    double nll_before, nll_after;
    double ece_before, ece_after;                       /* equal-width bins */
    double ece_equal_mass_before, ece_equal_mass_after; /* equal-mass bins */
} ct_temperature_result;

/* Fits T on logits (N, C), C >= 2, and N labels in [0, C). CT_OK; CT_ERR_VALUE when N = 0 or a logit is
 * NaN or infinite (ct_last_error() names the row; every field of *out NaN); CT_ERR_MEMORY. Fatal on
 * NULL, a shape that is not (N, C), a label out of range, or options out of range
 * (0 < t_min < t_max finite, tol > 0, max_iter >= 1, bins >= 1). To report a test split
 * afterwards, as the paper does:
 *     ct_temperature_fit(val_logits, val_labels, CT_TEMPERATURE(), &fit);
 *     ct_temperature_apply(test_logits, fit.temperature);   then ct_metrics on test_logits */
int ct_temperature_fit(const ct_tensor *logits, ct_labels labels, ct_temperature_opts opts,
                       ct_temperature_result *out);
/* z ← z / T, in place (T finite and > 0, fatal otherwise). */
void ct_temperature_apply(ct_tensor *logits, double temperature);

/* ---- neural collapse (Papyan, Han & Donoho 2020, "Prevalence of neural collapse during the
 * terminal phase of deep learning training", PNAS) --------------------------------------------
 * Notation of the paper: h_i the penultimate feature of sample i (a row of H, (N, D)), y_i its
 * class, C classes, n_c samples in class c;
 *   μ_G = Ave_i h_i                                   the global mean (over all N samples)
 *   μ_c = Ave_{i: y_i = c} h_i                        the class means
 *   M   = [μ_c − μ_G]_c                               the centred class means, (C, D), a row each
 *   Σ_B = Ave_c (μ_c − μ_G)(μ_c − μ_G)ᵀ               between-class covariance, (D, D)
 *   Σ_W = Ave_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ       within-class covariance, (D, D)
 *   w_c the rows of the last layer's weight W (C, D), b its bias.
 * The measures (each → 0, or → the value named, as training enters the terminal phase):
 *   NC1  variability collapse:  Tr(Σ_W Σ_B^†) / C   (Σ_B^† the Moore-Penrose pseudo-inverse)
 *   NC2  convergence to a simplex ETF, on the centred means:
 *          equinorm       Std_c ‖μ_c − μ_G‖ / Avg_c ‖μ_c − μ_G‖
 *          cos_std        Std_{c≠c'} cos(μ_c − μ_G, μ_c' − μ_G)                 (equiangularity)
 *          cos_mean       Avg_{c≠c'} cos(...), → −1/(C−1); cos_gap = |cos_mean + 1/(C−1)|
 *          max_angle      Avg_{c≠c'} |cos(...) + 1/(C−1)|                       (the paper's Fig. 5)
 *        and the same norms and cosines of the classifier's rows w_c (not centred): w_equinorm,
 *        w_cos_std
 *   NC3  self-duality:  ‖W/‖W‖_F − M/‖M‖_F‖²_F
 *   NC4  the nearest class centre agrees with the classifier: the fraction of samples with
 *        argmin_c ‖h_i − μ_c‖ = argmax_c (w_c·h_i + b_c)   (first index on ties); → 1
 * Std and Avg are over the C classes or the C(C−1)/2 pairs, Std the population one (ddof = 0).
 *
 * How NC1 is computed without a D × D pseudo-inverse: Σ_B = MᵀM / C, and with G = MMᵀ (C × C)
 * (MᵀM)^† = Mᵀ (G^†)² M, so NC1 = Tr((G^†)² K) with K = M Σ_W Mᵀ = Ave_i r_i r_iᵀ,
 * r_i = M (h_i − μ_{y_i}). G's eigenvalues below 1e-10 × the largest count as zero (G always has
 * one: Σ_c n_c (μ_c − μ_G) = 0). Cost: O(N·C·D + C³). */
typedef struct {
    int classes;
    double nc1;
    double equinorm, cos_std, cos_mean, cos_gap, max_angle;
    double w_equinorm, w_cos_std; /* NaN without W */
    double nc3, nc4;              /* NaN without W */
} ct_collapse_result;

/* features (N, D), N labels in [0, classes), classes >= 2; weight (classes, D) and bias (classes)
 * may be NULL (then NC3, NC4 and the w_ figures are NaN). CT_OK; CT_ERR_VALUE when a class has no
 * sample or a feature, weight or bias is not finite (ct_last_error() names it; every figure NaN);
 * CT_ERR_MEMORY. A class whose centred mean is 0 makes the cosines NaN. */
int ct_neural_collapse(const ct_tensor *features, ct_labels labels, int classes, const ct_tensor *weight,
                       const ct_tensor *bias, ct_collapse_result *out);

/* ---- logit statistics of softmax collapse (Prieto, Barsbey, Mediano & Birdal 2025, "Grokking at
 * the Edge of Numerical Stability") ----------------------------------------------------------
 * For logits z (N, C), C >= 2, labels y:
 *   margin_i = z_iy − max_{c≠y} z_ic     (> 0 when the sample is classified right)
 * its mean, standard deviation (ddof = 0), minimum, quantiles 0.1, 0.25, 0.5, 0.75, 0.9 (linear
 * interpolation between order statistics, NumPy's default) and maximum; and the fraction of samples
 * whose softmax gives p_y == 1 exactly, computed as a float32 and as a float64 program computes it:
 *   m = max_c z_c;  e_c = exp(z_c − m);  s = Σ_c e_c (in class order);  p_y = e_y / s
 * every operation rounded to that precision (the logits rounded to it first). There the
 * cross-entropy −log p_y is 0 and its gradient with respect to z_y, p_y − 1, is exactly zero: the
 * sample no longer pulls its own logit (softmax collapse, SC). In float32 that happens once every
 * other class trails by about 16.6 or more (e^−16.6 < 2^−24), in float64 by about 36.7.
 * zero_gradient_f32 counts the rows where, in float32, every p_c (c ≠ y) has underflowed to 0 too
 * (a margin past ~104): the whole row of the gradient softmax − onehot is zero.
 * A row with a NaN or infinite logit is counted in nonfinite and makes every other figure NaN (as
 * ct_metrics' NLL and ECE). With N = 0 every figure is NaN. When memory for the margins runs out
 * their std and quantiles are NaN and ct_last_error() says so. */
typedef struct {
    long n, nonfinite;
    double margin_mean, margin_std, margin_min, margin_max;
    double margin_q10, margin_q25, margin_median, margin_q75, margin_q90;
    double collapsed_f32, collapsed_f64; /* fractions of the N samples with p_y == 1 */
    double zero_gradient_f32;
} ct_logit_stats;

/* logits (N, C) with C >= 2 and N labels in [0, C) (fatal otherwise). */
ct_logit_stats ct_logit_stats_compute(const ct_tensor *logits, ct_labels labels);

#ifndef CT_BUILDING_LIBRARY
#define ct_temperature_fit(...) CT_SITE_CALL_CLEARING(ct_temperature_fit, __VA_ARGS__)
#define ct_temperature_apply(...) CT_SITE_CALL_VOID(ct_temperature_apply, __VA_ARGS__)
#define ct_neural_collapse(...) CT_SITE_CALL_CLEARING(ct_neural_collapse, __VA_ARGS__)
#define ct_logit_stats_compute(...) CT_SITE_CALL(ct_logit_stats_compute, __VA_ARGS__)
#endif

#endif
