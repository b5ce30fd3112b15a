/* optim/rmsprop.c — per-coordinate step sizes from a running sum of squared gradients, as
 * torch.optim (1.13): RMSprop (α, centered, momentum), Adagrad (lr decay, initial accumulator),
 * Adadelta (ρ, ε, lr = 1.0). The update rules are in optim.h above each options struct.
 * One pass per parameter over (θ, ∇, state), ∇ zeroed in the same pass. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>

/* ---- RMSprop ----------------------------------------------------------------------------
 *   g ← s·∇ + λθ;  q ← αq + (1−α)g²
 *   d = √(q − a²) + ε with a ← αa + (1−α)g (centered), else √q + ε
 *   b ← μb + g/d, θ ← θ − lr·b (μ > 0);  else θ ← θ − lr·g/d */
typedef struct {
    ct_optim base;
    ct_rmsprop_opts o;
    int square_avg, grad_avg, momentum_buffer; /* slots, -1 when absent */
} rmsprop;

CT_KERNEL
static void rmsprop_step(ct_optim *base) {
    rmsprop *s = (rmsprop *)base;
    const ct_real alpha = (ct_real)s->o.alpha, c = (ct_real)(1 - s->o.alpha), eps = (ct_real)s->o.eps;
    const ct_real mu = (ct_real)s->o.momentum, sign = s->o.maximize ? -1 : 1;
    const int centered = s->o.centered, use_momentum = s->o.momentum > 0;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const ct_real lr = (ct_real)ct_optim_param_lr(base, k), wd = (ct_real)ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        ct_real *restrict q = ct_optim_state(base, s->square_avg, k);
        /* absent state points at q: never written in that branch, restrict holds */
        ct_real *restrict a = centered ? ct_optim_state(base, s->grad_avg, k) : q;
        ct_real *restrict b = use_momentum ? ct_optim_state(base, s->momentum_buffer, k) : q;
        const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = sign * g[i] + wd * x[i];
            q[i] = alpha * q[i] + c * gi * gi;
            ct_real d;
            if (centered) {
                a[i] = alpha * a[i] + c * gi;
                d = ct_real_sqrt(q[i] - a[i] * a[i]) + eps;
            } else {
                d = ct_real_sqrt(q[i]) + eps;
            }
            if (use_momentum) {
                b[i] = mu * b[i] + gi / d;
                x[i] -= lr * b[i];
            } else {
                x[i] -= lr * gi / d;
            }
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static double *rmsprop_momentum(ct_optim *base) {
    rmsprop *s = (rmsprop *)base;
    return s->momentum_buffer >= 0 ? &s->o.momentum : NULL;
}

static const ct_optim_class rmsprop_class = {"rmsprop", rmsprop_step, NULL, rmsprop_momentum};

ct_optim *ct_rmsprop_new(ct_model *m, ct_rmsprop_opts o) {
    static const char *op = "ct_rmsprop_new";
    CT_CHECK(o.lr >= 0 && isfinite(o.lr), op, "lr %g must be finite and >= 0", o.lr);
    CT_CHECK(o.alpha >= 0 && o.alpha <= 1, op, "alpha %g must be in [0, 1]", o.alpha);
    CT_CHECK(o.eps >= 0 && isfinite(o.eps), op, "eps %g must be finite and >= 0", o.eps);
    CT_CHECK(o.momentum >= 0 && isfinite(o.momentum), op, "momentum %g must be finite and >= 0", o.momentum);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op, "weight_decay %g must be finite and >= 0",
             o.weight_decay);
    rmsprop *s = ct_optim_create(sizeof *s, &rmsprop_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->square_avg = ct_optim_add_state(&s->base, "square_avg", 0);
    s->grad_avg = o.centered ? ct_optim_add_state(&s->base, "grad_avg", 0) : -1;
    s->momentum_buffer = o.momentum > 0 ? ct_optim_add_state(&s->base, "momentum_buffer", 0) : -1;
    return &s->base;
}

/* ---- Adagrad ----------------------------------------------------------------------------
 *   g ← s·∇ + λθ;  S ← S + g²;  θ ← θ − lr/(1 + (t−1)·lr_decay) · g/(√S + ε) */
typedef struct {
    ct_optim base;
    ct_adagrad_opts o;
    int sum;
} adagrad;

CT_KERNEL
static void adagrad_step(ct_optim *base) {
    adagrad *s = (adagrad *)base;
    const double t = (double)(base->steps + 1);
    const ct_real eps = (ct_real)s->o.eps, sign = s->o.maximize ? -1 : 1;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const ct_real clr = (ct_real)(ct_optim_param_lr(base, k) / (1 + (t - 1) * s->o.lr_decay));
        const ct_real wd = (ct_real)ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        ct_real *restrict S = ct_optim_state(base, s->sum, k);
        const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = sign * g[i] + wd * x[i];
            S[i] += gi * gi;
            x[i] -= clr * gi / (ct_real_sqrt(S[i]) + eps);
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static const ct_optim_class adagrad_class = {"adagrad", adagrad_step, NULL, NULL};

ct_optim *ct_adagrad_new(ct_model *m, ct_adagrad_opts o) {
    static const char *op = "ct_adagrad_new";
    CT_CHECK(o.lr >= 0 && isfinite(o.lr), op, "lr %g must be finite and >= 0", o.lr);
    CT_CHECK(o.lr_decay >= 0 && isfinite(o.lr_decay), op, "lr_decay %g must be finite and >= 0", o.lr_decay);
    CT_CHECK(o.initial_accumulator_value >= 0 && isfinite(o.initial_accumulator_value), op,
             "initial_accumulator_value %g must be finite and >= 0", o.initial_accumulator_value);
    CT_CHECK(o.eps >= 0 && isfinite(o.eps), op, "eps %g must be finite and >= 0", o.eps);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op, "weight_decay %g must be finite and >= 0",
             o.weight_decay);
    adagrad *s = ct_optim_create(sizeof *s, &adagrad_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->sum = ct_optim_add_state(&s->base, "sum", o.initial_accumulator_value);
    return &s->base;
}

/* ---- Adadelta ---------------------------------------------------------------------------
 *   g ← s·∇ + λθ;  q ← ρq + (1−ρ)g²;  δ = √(u + ε)/√(q + ε)·g;  u ← ρu + (1−ρ)δ²;  θ ← θ − lr·δ */
typedef struct {
    ct_optim base;
    ct_adadelta_opts o;
    int square_avg, acc_delta;
} adadelta;

CT_KERNEL
static void adadelta_step(ct_optim *base) {
    adadelta *s = (adadelta *)base;
    const ct_real rho = (ct_real)s->o.rho, c = (ct_real)(1 - s->o.rho), eps = (ct_real)s->o.eps;
    const ct_real sign = s->o.maximize ? -1 : 1;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const ct_real lr = (ct_real)ct_optim_param_lr(base, k), wd = (ct_real)ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        ct_real *restrict q = ct_optim_state(base, s->square_avg, k);
        ct_real *restrict u = ct_optim_state(base, s->acc_delta, k);
        const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            const ct_real gi = sign * g[i] + wd * x[i];
            q[i] = rho * q[i] + c * gi * gi;
            const ct_real delta = ct_real_sqrt(u[i] + eps) / ct_real_sqrt(q[i] + eps) * gi;
            u[i] = rho * u[i] + c * delta * delta;
            x[i] -= lr * delta;
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static const ct_optim_class adadelta_class = {"adadelta", adadelta_step, NULL, NULL};

ct_optim *ct_adadelta_new(ct_model *m, ct_adadelta_opts o) {
    static const char *op = "ct_adadelta_new";
    CT_CHECK(o.lr >= 0 && isfinite(o.lr), op, "lr %g must be finite and >= 0", o.lr);
    CT_CHECK(o.rho >= 0 && o.rho <= 1, op, "rho %g must be in [0, 1]", o.rho);
    CT_CHECK(o.eps >= 0 && isfinite(o.eps), op, "eps %g must be finite and >= 0", o.eps);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op, "weight_decay %g must be finite and >= 0",
             o.weight_decay);
    adadelta *s = ct_optim_create(sizeof *s, &adadelta_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->square_avg = ct_optim_add_state(&s->base, "square_avg", 0);
    s->acc_delta = ct_optim_add_state(&s->base, "acc_delta", 0);
    return &s->base;
}
