/* optim/adam.c — the Adam family as torch.optim (1.13): Adam, AdamW (both with AMSGrad), Adamax,
 * NAdam, RAdam. The update rules, with their papers, are in optim.h above ct_adam_opts.
 *
 * Per parameter, each step is one pass over (θ, ∇, m, v[, v̂]): the scalars that depend only on
 * the step (bias corrections, NAdam's μₜ, RAdam's rectification) are computed once in double,
 * and the loop reads and writes each array once and zeroes ∇ while it is in cache. Loops with
 * an `if` on a loop-invariant flag (amsgrad, decoupled) are unswitched by the compiler. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>

typedef enum { ADAM, ADAMW, ADAMAX, NADAM, RADAM } adam_kind;

typedef struct {
    ct_optim base;
    adam_kind kind;
    ct_adam_opts o;
    int exp_avg, exp_avg_sq, max_exp_avg_sq; /* state slots (-1 when absent); Adamax: exp_avg_sq is "exp_inf" */
    double mu_product;                       /* NAdam: Πₜ = μ₁⋯μₜ */
} adam;

/* Adam / AdamW:  g ← s·∇ (+ λθ for Adam);  θ ← θ(1 − lr·λ) for AdamW;
 *   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  v̂ ← max(v̂, v) (AMSGrad) or v
 *   θ ← θ − lr/(1−β₁ᵗ) · m/(√v̂/√(1−β₂ᵗ) + ε) */
CT_KERNEL
static void adam_update(adam *s, int k, double t) {
    ct_tensor *p = s->base.params[k];
    const double lr = ct_optim_param_lr(&s->base, k), wd = ct_optim_param_weight_decay(&s->base, k);
    const double b1 = s->o.beta1, b2 = s->o.beta2;
    const int decoupled = s->kind == ADAMW, amsgrad = s->o.amsgrad;
    const ct_real sign = s->o.maximize ? -1 : 1;
    const ct_real l2 = decoupled ? 0 : (ct_real)wd, shrink = (ct_real)(decoupled ? 1 - lr * wd : 1);
    const ct_real c1 = (ct_real)(1 - b1), c2 = (ct_real)(1 - b2), rb1 = (ct_real)b1, rb2 = (ct_real)b2;
    const ct_real step_size = (ct_real)(lr / (1 - pow(b1, t)));
    const ct_real bc2_sqrt = (ct_real)sqrt(1 - pow(b2, t)), eps = (ct_real)s->o.eps;
    ct_real *restrict x = p->data, *restrict g = p->grad;
    ct_real *restrict m = ct_optim_state(&s->base, s->exp_avg, k);
    ct_real *restrict v = ct_optim_state(&s->base, s->exp_avg_sq, k);
    ct_real *restrict vmax = amsgrad ? ct_optim_state(&s->base, s->max_exp_avg_sq, k) : v;
    const long n = (long)p->size;
    if (amsgrad) {
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = sign * g[i] + l2 * x[i];
            const ct_real xi = x[i] * shrink;
            m[i] = rb1 * m[i] + c1 * gi;
            v[i] = rb2 * v[i] + c2 * gi * gi;
            vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];
            x[i] = xi - step_size * m[i] / (ct_real_sqrt(vmax[i]) / bc2_sqrt + eps);
            g[i] = 0;
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = sign * g[i] + l2 * x[i];
            const ct_real xi = x[i] * shrink;
            m[i] = rb1 * m[i] + c1 * gi;
            v[i] = rb2 * v[i] + c2 * gi * gi;
            x[i] = xi - step_size * m[i] / (ct_real_sqrt(v[i]) / bc2_sqrt + eps);
            g[i] = 0;
        }
    }
}

/* Adamax:  g ← s·∇ + λθ;  m ← β₁m + (1−β₁)g;  u ← max(β₂u, |g| + ε);  θ ← θ − lr/(1−β₁ᵗ)·m/u */
CT_KERNEL
static void adamax_update(adam *s, int k, double t) {
    ct_tensor *p = s->base.params[k];
    const double lr = ct_optim_param_lr(&s->base, k);
    const ct_real wd = (ct_real)ct_optim_param_weight_decay(&s->base, k), sign = s->o.maximize ? -1 : 1;
    const ct_real rb1 = (ct_real)s->o.beta1, c1 = (ct_real)(1 - s->o.beta1), rb2 = (ct_real)s->o.beta2;
    const ct_real clr = (ct_real)(lr / (1 - pow(s->o.beta1, t))), eps = (ct_real)s->o.eps;
    ct_real *restrict x = p->data, *restrict g = p->grad;
    ct_real *restrict m = ct_optim_state(&s->base, s->exp_avg, k);
    ct_real *restrict u = ct_optim_state(&s->base, s->exp_avg_sq, k);
    const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
    for (long i = 0; i < n; i++) {
        const ct_real gi = sign * g[i] + wd * x[i];
        m[i] = rb1 * m[i] + c1 * gi;
        const ct_real a = rb2 * u[i], b = ct_real_fabs(gi) + eps;
        u[i] = a > b ? a : b;
        x[i] -= clr * m[i] / u[i];
        g[i] = 0;
    }
}

/* NAdam:  g ← ∇ + λθ;  m, v as Adam;  d = √(v/(1−β₂ᵗ)) + ε
 *   θ ← θ − lr(1−μₜ)/(1−Πₜ)·g/d − lr·μₜ₊₁/(1−Πₜμₜ₊₁)·m/d   (μ, Π computed once per step) */
CT_KERNEL
static void nadam_update(adam *s, int k, double t, double mu, double mu_next) {
    ct_tensor *p = s->base.params[k];
    const double lr = ct_optim_param_lr(&s->base, k);
    const ct_real wd = (ct_real)ct_optim_param_weight_decay(&s->base, k);
    const ct_real rb1 = (ct_real)s->o.beta1, c1 = (ct_real)(1 - s->o.beta1);
    const ct_real rb2 = (ct_real)s->o.beta2, c2 = (ct_real)(1 - s->o.beta2);
    const ct_real bc2 = (ct_real)(1 - pow(s->o.beta2, t)), eps = (ct_real)s->o.eps;
    const ct_real a_g = (ct_real)(lr * (1 - mu) / (1 - s->mu_product));
    const ct_real a_m = (ct_real)(lr * mu_next / (1 - s->mu_product * mu_next));
    ct_real *restrict x = p->data, *restrict g = p->grad;
    ct_real *restrict m = ct_optim_state(&s->base, s->exp_avg, k);
    ct_real *restrict v = ct_optim_state(&s->base, s->exp_avg_sq, k);
    const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
    for (long i = 0; i < n; i++) {
        const ct_real gi = g[i] + wd * x[i];
        m[i] = rb1 * m[i] + c1 * gi;
        v[i] = rb2 * v[i] + c2 * gi * gi;
        const ct_real d = ct_real_sqrt(v[i] / bc2) + eps;
        x[i] = x[i] - a_g * gi / d - a_m * m[i] / d;
        g[i] = 0;
    }
}

/* RAdam:  g ← ∇ + λθ;  m, v as Adam;  m̂ = m/(1−β₁ᵗ)
 *   ρₜ > 5: θ ← θ − lr·r·m̂·√(1−β₂ᵗ)/(√v + ε);   else θ ← θ − lr·m̂ */
CT_KERNEL
static void radam_update(adam *s, int k, double t) {
    ct_tensor *p = s->base.params[k];
    const double lr = ct_optim_param_lr(&s->base, k), b1 = s->o.beta1, b2 = s->o.beta2;
    const ct_real wd = (ct_real)ct_optim_param_weight_decay(&s->base, k);
    const ct_real rb1 = (ct_real)b1, c1 = (ct_real)(1 - b1), rb2 = (ct_real)b2, c2 = (ct_real)(1 - b2);
    const double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    const double rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf - 2 * t * pow(b2, t) / bc2;
    const int rectified = rho_t > 5;
    const double rect = rectified ? sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : 0;
    /* θ ← θ − a·m/(√v + ε) with a = lr·r·√(1−β₂ᵗ)/(1−β₁ᵗ); or θ ← θ − (lr/(1−β₁ᵗ))·m */
    const ct_real a = (ct_real)(rectified ? lr * rect * sqrt(bc2) / bc1 : lr / bc1), eps = (ct_real)s->o.eps;
    ct_real *restrict x = p->data, *restrict g = p->grad;
    ct_real *restrict m = ct_optim_state(&s->base, s->exp_avg, k);
    ct_real *restrict v = ct_optim_state(&s->base, s->exp_avg_sq, k);
    const long n = (long)p->size;
    if (rectified) {
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = g[i] + wd * x[i];
            m[i] = rb1 * m[i] + c1 * gi;
            v[i] = rb2 * v[i] + c2 * gi * gi;
            x[i] -= a * m[i] / (ct_real_sqrt(v[i]) + eps);
            g[i] = 0;
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = g[i] + wd * x[i];
            m[i] = rb1 * m[i] + c1 * gi;
            v[i] = rb2 * v[i] + c2 * gi * gi;
            x[i] -= a * m[i];
            g[i] = 0;
        }
    }
}

static void adam_step(ct_optim *base) {
    adam *s = (adam *)base;
    const double t = (double)(base->steps + 1);
    double mu = 0, mu_next = 0;
    if (s->kind == NADAM) { /* μₜ = β₁(1 − ½·0.96^(tψ)) */
        mu = s->o.beta1 * (1 - 0.5 * pow(0.96, t * s->o.momentum_decay));
        mu_next = s->o.beta1 * (1 - 0.5 * pow(0.96, (t + 1) * s->o.momentum_decay));
        s->mu_product *= mu;
    }
    for (int k = 0; k < base->n_params; k++) {
        if (!base->params[k]->grad) continue; /* frozen */
        switch (s->kind) {
        case ADAM:
        case ADAMW: adam_update(s, k, t); break;
        case ADAMAX: adamax_update(s, k, t); break;
        case NADAM: nadam_update(s, k, t, mu, mu_next); break;
        case RADAM: radam_update(s, k, t); break;
        }
    }
    base->zeroed = 1;
}

static double *adam_beta1(ct_optim *base) { return &((adam *)base)->o.beta1; }

static const ct_optim_class adam_classes[] = {
    [ADAM] = {"adam", adam_step, NULL, adam_beta1},     [ADAMW] = {"adamw", adam_step, NULL, adam_beta1},
    [ADAMAX] = {"adamax", adam_step, NULL, adam_beta1}, [NADAM] = {"nadam", adam_step, NULL, adam_beta1},
    [RADAM] = {"radam", adam_step, NULL, adam_beta1},
};

static ct_optim *make(ct_model *m, ct_adam_opts o, adam_kind kind, const char *op) {
    CT_CHECK(o.lr >= 0 && isfinite(o.lr), op, "lr %g must be finite and >= 0", o.lr);
    CT_CHECK(o.beta1 >= 0 && o.beta1 < 1, op, "beta1 %g must be in [0, 1)", o.beta1);
    CT_CHECK(o.beta2 >= 0 && o.beta2 < 1, op, "beta2 %g must be in [0, 1)", o.beta2);
    CT_CHECK(o.eps >= 0 && isfinite(o.eps), op, "eps %g must be finite and >= 0", o.eps);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op, "weight_decay %g must be finite and >= 0",
             o.weight_decay);
    CT_CHECK(!o.amsgrad || kind == ADAM || kind == ADAMW, op, "amsgrad is an option of Adam and AdamW only");
    CT_CHECK(!o.maximize || kind == ADAM || kind == ADAMW || kind == ADAMAX, op,
             "maximize is an option of Adam, AdamW and Adamax only (as in PyTorch 1.13)");
    if (kind == NADAM)
        CT_CHECK(o.momentum_decay >= 0 && isfinite(o.momentum_decay), op, "momentum_decay %g must be finite and >= 0",
                 o.momentum_decay);
    else
        CT_CHECK(o.momentum_decay == 0, op, "momentum_decay %g is an option of NAdam only", o.momentum_decay);
    if (kind == RADAM) /* ρ∞ = 2/(1−β₂) − 1 must exceed 4 for the rectification to be defined */
        CT_CHECK(2 / (1 - o.beta2) - 1 > 4, op, "beta2 %g gives rho_inf <= 4; RAdam needs beta2 > 0.6", o.beta2);
    adam *s = ct_optim_create(sizeof *s, &adam_classes[kind], m, o.lr, o.weight_decay);
    s->kind = kind;
    s->o = o;
    s->max_exp_avg_sq = -1;
    s->exp_avg = ct_optim_add_state(&s->base, "exp_avg", 0);
    s->exp_avg_sq = ct_optim_add_state(&s->base, kind == ADAMAX ? "exp_inf" : "exp_avg_sq", 0);
    if (o.amsgrad) s->max_exp_avg_sq = ct_optim_add_state(&s->base, "max_exp_avg_sq", 0);
    if (kind == NADAM) {
        s->mu_product = 1;
        ct_optim_add_scalar(&s->base, "mu_product", &s->mu_product);
    }
    return &s->base;
}

ct_optim *ct_adam_new(ct_model *m, ct_adam_opts o) { return make(m, o, ADAM, "ct_adam_new"); }
ct_optim *ct_adamw_new(ct_model *m, ct_adam_opts o) { return make(m, o, ADAMW, "ct_adamw_new"); }
ct_optim *ct_adamax_new(ct_model *m, ct_adam_opts o) { return make(m, o, ADAMAX, "ct_adamax_new"); }
ct_optim *ct_nadam_new(ct_model *m, ct_adam_opts o) { return make(m, o, NADAM, "ct_nadam_new"); }
ct_optim *ct_radam_new(ct_model *m, ct_adam_opts o) { return make(m, o, RADAM, "ct_radam_new"); }
