/* optim/guards.c — what runs on the gradients before any update rule: the non-finite check,
 * ⊥Grad, clipping by global norm and by value. Each is also a function on a list of tensors.
 *
 * Sums of squares and dot products accumulate in double whatever ct_real is: a float32 gradient
 * of 1e20 squares to 1e40, which would overflow a float to Inf and make a finite gradient look
 * non-finite (and would make the norm wrong long before that). */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>
#include <stdio.h>

/* Σ aᵢ·bᵢ in double, one pass; threads above the usual size. */
CT_KERNEL
static double dot(const ct_real *restrict a, const ct_real *restrict b, long n) {
    double acc = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : acc) if (n >= CT_OPTIM_PARALLEL_MIN)
    for (long i = 0; i < n; i++) acc += (double)a[i] * (double)b[i];
    return acc;
}

CT_KERNEL
static void scale(ct_real *restrict g, long n, ct_real c) {
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
    for (long i = 0; i < n; i++) g[i] *= c;
}

/* ‖g‖₂ over every tensor's grad together: √(Σₖ Σᵢ gₖᵢ²). NaN or Inf when a grad has one. */
double ct_grad_norm(ct_tensor *const tensors[], int n) {
    double sumsq = 0;
    for (int k = 0; k < n; k++)
        if (tensors[k] && tensors[k]->grad) sumsq += dot(tensors[k]->grad, tensors[k]->grad, (long)tensors[k]->size);
    return sqrt(sumsq);
}

/* If ‖g‖ > c: g ← g · c/‖g‖, so the clipped gradient has norm c (up to rounding). Returns ‖g‖
 * before clipping. A non-finite norm is returned and the grads are left alone: rescaling by
 * c/Inf = 0 or by NaN would hide the problem (the non-finite guard is for that case). */
static double clip_to(ct_tensor *const tensors[], int n, double max_norm, double norm) {
    if (isfinite(norm) && norm > max_norm) {
        const ct_real c = (ct_real)(max_norm / norm);
        for (int k = 0; k < n; k++)
            if (tensors[k] && tensors[k]->grad) scale(tensors[k]->grad, (long)tensors[k]->size, c);
    }
    return norm;
}

double ct_clip_grad_norm(ct_tensor *const tensors[], int n, double max_norm) {
    CT_CHECK(max_norm > 0 && isfinite(max_norm), "ct_clip_grad_norm", "max_norm %g must be finite and > 0", max_norm);
    return clip_to(tensors, n, max_norm, ct_grad_norm(tensors, n));
}

/* g ← clamp(g, −v, v) elementwise (NaN stays NaN). */
CT_KERNEL
void ct_clip_grad_value(ct_tensor *const tensors[], int n, double clip_value) {
    CT_CHECK(clip_value > 0 && isfinite(clip_value), "ct_clip_grad_value", "clip_value %g must be finite and > 0",
             clip_value);
    const ct_real v = (ct_real)clip_value;
    for (int k = 0; k < n; k++) {
        if (!tensors[k] || !tensors[k]->grad) continue;
        ct_real *restrict g = tensors[k]->grad;
        const long len = (long)tensors[k]->size;
#pragma omp parallel for simd schedule(static) if (len >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < len; i++) g[i] = g[i] > v ? v : g[i] < -v ? -v : g[i];
    }
}

/* CT_OK, or CT_ERR_VALUE naming the first tensor and element that is NaN or ±Inf. One fast pass
 * (the sum of squares is finite exactly when every element is: double cannot overflow on
 * squares of finite float32 values, and in the float64 build a huge finite value is named as
 * well, since Inf would follow from it in the update anyway); the element search runs only for
 * the tensor that failed. */
int ct_grads_check_finite(ct_tensor *const tensors[], int n) {
    for (int k = 0; k < n; k++) {
        const ct_tensor *t = tensors[k];
        if (!t || !t->grad) continue;
        if (isfinite(dot(t->grad, t->grad, (long)t->size))) continue;
        for (size_t i = 0; i < t->size; i++)
            if (!isfinite((double)t->grad[i]))
                return ct_set_error(CT_ERR_VALUE, "non-finite gradient: %s.grad[%zu] = %g",
                                    t->name ? t->name : "(unnamed)", i, (double)t->grad[i]);
        return ct_set_error(CT_ERR_VALUE, "gradient of %s too large: its sum of squares overflows",
                            t->name ? t->name : "(unnamed)");
    }
    return CT_OK;
}

/* ⊥Grad (Prieto et al. 2025, eq. for ∇⊥L): per tensor, the gradient minus its component along
 * the weights,  g ← g − (g·w / w·w)·w,  so that g·w = 0 afterwards. A zero tensor is left alone.
 * With rescale (the authors' orthograd.py), g is then scaled back to its original norm. */
CT_KERNEL
static void ortho_grad(ct_tensor *const tensors[], int n, int rescale) {
    for (int k = 0; k < n; k++) {
        ct_tensor *t = tensors[k];
        if (!t || !t->grad) continue;
        const long len = (long)t->size;
        const double ww = dot(t->data, t->data, len);
        if (!(ww > 0)) continue;
        const double gw = dot(t->grad, t->data, len);
        const double g2 = rescale ? dot(t->grad, t->grad, len) : 0;
        const ct_real c = (ct_real)(gw / ww);
        ct_real *restrict g = t->grad;
        const ct_real *restrict w = t->data;
#pragma omp parallel for simd schedule(static) if (len >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < len; i++) g[i] -= c * w[i];
        if (rescale) {
            /* ‖g⊥‖² = ‖g‖² − (g·w)²/‖w‖² analytically; measured, to be exact after rounding */
            const double o2 = dot(g, g, len);
            if (o2 > 0) scale(g, len, (ct_real)sqrt(g2 / o2));
        }
    }
}

void ct_ortho_grad(ct_tensor *const tensors[], int n) { ortho_grad(tensors, n, 0); }

void ct_optim_set_guards(ct_optim *opt, ct_guard_opts g) {
    static const char *op = "ct_optim_set_guards";
    ct_optim_check(opt, op);
    CT_CHECK(g.clip_norm >= 0 && isfinite(g.clip_norm), op, "clip_norm %g must be finite and >= 0 (0 = off)",
             g.clip_norm);
    CT_CHECK(g.clip_value >= 0 && isfinite(g.clip_value), op, "clip_value %g must be finite and >= 0 (0 = off)",
             g.clip_value);
    CT_CHECK(g.nonfinite == CT_NONFINITE_OFF || g.nonfinite == CT_NONFINITE_SKIP || g.nonfinite == CT_NONFINITE_STOP,
             op, "nonfinite %d is not a ct_nonfinite_policy", (int)g.nonfinite);
    CT_CHECK(g.ortho_grad >= 0 && g.ortho_grad <= CT_ORTHO_GRAD_RESCALED, op,
             "ortho_grad %d must be 0, CT_ORTHO_GRAD (1) or CT_ORTHO_GRAD_RESCALED (2)", g.ortho_grad);
    opt->guards = g;
}

double ct_optim_last_grad_norm(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_last_grad_norm");
    return opt->last_grad_norm;
}

long ct_optim_skipped_steps(const ct_optim *opt) {
    ct_optim_check(opt, "ct_optim_skipped_steps");
    return opt->skipped;
}

/* Called by ct_optim_step before the update: CT_OK to go on, CT_OPTIM_SKIPPED or CT_ERR_VALUE. */
int ct_optim_run_guards(ct_optim *opt) {
    const ct_guard_opts *g = &opt->guards;
    opt->last_grad_norm = NAN;
    /* Clipping by norm with no ⊥Grad before it: the norm's pass is also the finiteness check
     * (the norm is finite exactly when the check passes), so the grads are read once. */
    const int norm_first = g->clip_norm > 0 && !g->ortho_grad;
    const double norm = norm_first ? ct_grad_norm(opt->params, opt->n_params) : NAN;
    if (g->nonfinite != CT_NONFINITE_OFF && (!norm_first || !isfinite(norm)) &&
        ct_grads_check_finite(opt->params, opt->n_params) != CT_OK) {
        char what[512];
        snprintf(what, sizeof what, "%s", ct_last_error());
        if (g->nonfinite == CT_NONFINITE_SKIP) {
            ct_set_error(CT_ERR_VALUE, "ct_optim_step: %s at step %ld; step skipped, gradients zeroed", what,
                         opt->steps + 1);
            return CT_OPTIM_SKIPPED;
        }
        return ct_set_error(CT_ERR_VALUE, "ct_optim_step: %s at step %ld; nothing applied, training stopped", what,
                            opt->steps + 1);
    }
    if (g->ortho_grad) ortho_grad(opt->params, opt->n_params, g->ortho_grad == CT_ORTHO_GRAD_RESCALED);
    if (g->clip_norm > 0)
        opt->last_grad_norm = norm_first ? clip_to(opt->params, opt->n_params, g->clip_norm, norm)
                                         : ct_clip_grad_norm(opt->params, opt->n_params, g->clip_norm);
    if (g->clip_value > 0) ct_clip_grad_value(opt->params, opt->n_params, g->clip_value);
    return CT_OK;
}
