/* optim/literature.c — optimizers from the literature that PyTorch 1.13 does not have:
 * AdaBelief, Lion, LAMB, LARS, Adafactor, ADOPT. Each follows its paper's algorithm box (the
 * update rules are in optim/optim.h beside the options, and again above each step function).
 *
 * Every step is one or two passes over each parameter. The per-tensor quantities (LAMB's and
 * LARS's norms, Adafactor's RMS and factored statistics) are sums in double over a first pass;
 * the update is a second pass that recomputes what it needs instead of storing it, so no step
 * allocates. Each update zeroes the grad in its last pass, while it is in cache. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>
#include <stdlib.h>

#ifdef CT_PRECISION_64
#define rsqrt_(x) __builtin_sqrt(x)
#else
#define rsqrt_(x) __builtin_sqrtf(x)
#endif

#define PARALLEL_MIN CT_OPTIM_PARALLEL_MIN

static void check_unit(const char *op, const char *what, double b) {
    CT_CHECK(b >= 0 && b < 1, op, "%s %g must be in [0, 1)", what, b);
}

static void check_nonneg(const char *op, const char *what, double x) {
    CT_CHECK(isfinite(x) && x >= 0, op, "%s %g must be finite and >= 0", what, x);
}

/* Σ x² over n values, in double. */
CT_KERNEL
static double sum_squares(const ct_real *x, long n) {
    double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static) if (n >= PARALLEL_MIN)
    for (long i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

/* ==== AdaBelief ===============================================================================
 *   m ← β₁m + (1−β₁)g;  s ← β₂s + (1−β₂)(g − m)² + ε
 *   θ ← θ − lr · m/(1−β₁ᵗ) / (√(s/(1−β₂ᵗ)) + ε)
 * written as θ ← θ − step·m / (√s·c₂ + ε) with step = lr/(1−β₁ᵗ), c₂ = 1/√(1−β₂ᵗ). */
typedef struct {
    ct_optim base;
    ct_adabelief_opts o;
    int exp_avg, exp_avg_var;
} adabelief;

CT_KERNEL
static void adabelief_step(ct_optim *base) {
    adabelief *s = (adabelief *)base;
    const double t = (double)(base->steps + 1);
    const ct_real b1 = (ct_real)s->o.beta1, b2 = (ct_real)s->o.beta2, eps = (ct_real)s->o.eps;
    const ct_real c2 = (ct_real)(1 / sqrt(1 - pow(s->o.beta2, t)));
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const double lr = ct_optim_param_lr(base, k), wd = ct_optim_param_weight_decay(base, k);
        const ct_real step = (ct_real)(lr / (1 - pow(s->o.beta1, t)));
        const ct_real keep = (ct_real)(s->o.decoupled ? 1 - lr * wd : 1), l2 = (ct_real)(s->o.decoupled ? 0 : wd);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        ct_real *restrict m = ct_optim_state(base, s->exp_avg, k), *restrict v = ct_optim_state(base, s->exp_avg_var, k);
        const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            ct_real gi = g[i] + l2 * x[i];
            ct_real mi = b1 * m[i] + (1 - b1) * gi, d = gi - mi;
            ct_real vi = b2 * v[i] + (1 - b2) * d * d + eps;
            m[i] = mi;
            v[i] = vi;
            x[i] = keep * x[i] - step * mi / (rsqrt_(vi) * c2 + eps);
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static double *adabelief_beta1(ct_optim *base) { return &((adabelief *)base)->o.beta1; }

static const ct_optim_class adabelief_class = {"adabelief", adabelief_step, NULL, adabelief_beta1};

ct_optim *ct_adabelief_new(ct_model *m, ct_adabelief_opts o) {
    static const char *op = "ct_adabelief_new";
    check_unit(op, "beta1", o.beta1);
    check_unit(op, "beta2", o.beta2);
    check_nonneg(op, "eps", o.eps);
    check_nonneg(op, "weight_decay", o.weight_decay);
    check_nonneg(op, "lr", o.lr);
    adabelief *s = ct_optim_create(sizeof *s, &adabelief_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->exp_avg = ct_optim_add_state(&s->base, "exp_avg", 0);
    s->exp_avg_var = ct_optim_add_state(&s->base, "exp_avg_var", 0);
    return &s->base;
}

/* ==== Lion ====================================================================================
 *   c = β₁m + (1−β₁)g;  θ ← θ(1 − lr·λ) − lr·sign(c);  m ← β₂m + (1−β₂)g
 * sign(c) is (c > 0) − (c < 0): 0 at 0, as torch.sign; with λ = 0 the factor is exactly 1, so
 * every coordinate moves by exactly lr or not at all. */
typedef struct {
    ct_optim base;
    ct_lion_opts o;
    int exp_avg;
} lion;

CT_KERNEL
static void lion_step(ct_optim *base) {
    lion *s = (lion *)base;
    const ct_real b1 = (ct_real)s->o.beta1, b2 = (ct_real)s->o.beta2;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const double lr_d = ct_optim_param_lr(base, k), wd = ct_optim_param_weight_decay(base, k);
        const ct_real lr = (ct_real)lr_d, keep = (ct_real)(1 - lr_d * wd);
        ct_real *restrict x = p->data, *restrict g = p->grad, *restrict m = ct_optim_state(base, s->exp_avg, k);
        const long n = (long)p->size;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            ct_real c = b1 * m[i] + (1 - b1) * g[i];
            ct_real sign = (ct_real)(c > 0) - (ct_real)(c < 0);
            x[i] = keep * x[i] - lr * sign;
            m[i] = b2 * m[i] + (1 - b2) * g[i];
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static double *lion_beta1(ct_optim *base) { return &((lion *)base)->o.beta1; }

static const ct_optim_class lion_class = {"lion", lion_step, NULL, lion_beta1};

ct_optim *ct_lion_new(ct_model *m, ct_lion_opts o) {
    static const char *op = "ct_lion_new";
    CT_CHECK(o.beta1 >= 0 && o.beta1 <= 1, op, "beta1 %g must be in [0, 1]", o.beta1);
    CT_CHECK(o.beta2 >= 0 && o.beta2 <= 1, op, "beta2 %g must be in [0, 1]", o.beta2);
    check_nonneg(op, "weight_decay", o.weight_decay);
    check_nonneg(op, "lr", o.lr);
    lion *s = ct_optim_create(sizeof *s, &lion_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->exp_avg = ct_optim_add_state(&s->base, "exp_avg", 0);
    return &s->base;
}

/* ==== LAMB ====================================================================================
 *   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  u = m/(1−β₁ᵗ) / (√(v/(1−β₂ᵗ)) + ε) + λθ
 *   θ ← θ − lr·(‖θ‖/‖u‖)·u        (trust ratio 1 when either norm is 0)
 * Pass 1 updates m and v and sums ‖θ‖² and ‖u‖²; pass 2 recomputes u and applies it. */
typedef struct {
    ct_optim base;
    ct_lamb_opts o;
    int exp_avg, exp_avg_sq;
} lamb;

CT_KERNEL
static void lamb_step(ct_optim *base) {
    lamb *s = (lamb *)base;
    const double t = (double)(base->steps + 1);
    const ct_real b1 = (ct_real)s->o.beta1, b2 = (ct_real)s->o.beta2, eps = (ct_real)s->o.eps;
    const ct_real c1 = (ct_real)(1 / (1 - pow(s->o.beta1, t))), c2 = (ct_real)(1 / sqrt(1 - pow(s->o.beta2, t)));
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const double lr = ct_optim_param_lr(base, k);
        const ct_real wd = (ct_real)ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        ct_real *restrict m = ct_optim_state(base, s->exp_avg, k), *restrict v = ct_optim_state(base, s->exp_avg_sq, k);
        const long n = (long)p->size;
        double xx = 0, uu = 0;
#pragma omp parallel for simd reduction(+ : xx, uu) schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            ct_real mi = b1 * m[i] + (1 - b1) * g[i], vi = b2 * v[i] + (1 - b2) * g[i] * g[i];
            m[i] = mi;
            v[i] = vi;
            ct_real u = c1 * mi / (rsqrt_(vi) * c2 + eps) + wd * x[i];
            xx += (double)x[i] * (double)x[i];
            uu += (double)u * (double)u;
            g[i] = 0;
        }
        const double trust = xx > 0 && uu > 0 ? sqrt(xx) / sqrt(uu) : 1.0;
        const ct_real step = (ct_real)(lr * trust);
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            ct_real u = c1 * m[i] / (rsqrt_(v[i]) * c2 + eps) + wd * x[i];
            x[i] -= step * u;
        }
    }
    base->zeroed = 1;
}

static double *lamb_beta1(ct_optim *base) { return &((lamb *)base)->o.beta1; }

static const ct_optim_class lamb_class = {"lamb", lamb_step, NULL, lamb_beta1};

ct_optim *ct_lamb_new(ct_model *m, ct_lamb_opts o) {
    static const char *op = "ct_lamb_new";
    check_unit(op, "beta1", o.beta1);
    check_unit(op, "beta2", o.beta2);
    check_nonneg(op, "eps", o.eps);
    check_nonneg(op, "weight_decay", o.weight_decay);
    check_nonneg(op, "lr", o.lr);
    lamb *s = ct_optim_create(sizeof *s, &lamb_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->exp_avg = ct_optim_add_state(&s->base, "exp_avg", 0);
    s->exp_avg_sq = ct_optim_add_state(&s->base, "exp_avg_sq", 0);
    return &s->base;
}

/* ==== LARS ====================================================================================
 *   local = η‖θ‖ / (‖∇‖ + λ‖θ‖)   (1 when ‖θ‖ or ‖∇‖ is 0)
 *   b ← μb + lr·local·(∇ + λθ);  θ ← θ − b       (without momentum: θ ← θ − lr·local·(∇ + λθ)) */
typedef struct {
    ct_optim base;
    ct_lars_opts o;
    int momentum; /* state slot, or -1 without momentum */
} lars;

CT_KERNEL
static void lars_step(ct_optim *base) {
    lars *s = (lars *)base;
    const ct_real mu = (ct_real)s->o.momentum;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const double lr = ct_optim_param_lr(base, k), wd = ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        const long n = (long)p->size;
        const double wn = sqrt(sum_squares(x, n)), gn = sqrt(sum_squares(g, n));
        const double local = wn > 0 && gn > 0 ? s->o.trust_coefficient * wn / (gn + wd * wn) : 1.0;
        const ct_real step = (ct_real)(lr * local), l2 = (ct_real)wd;
        if (s->momentum < 0) {
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                x[i] -= step * (g[i] + l2 * x[i]);
                g[i] = 0;
            }
            continue;
        }
        ct_real *restrict b = ct_optim_state(base, s->momentum, k);
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            b[i] = mu * b[i] + step * (g[i] + l2 * x[i]);
            x[i] -= b[i];
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static double *lars_momentum(ct_optim *base) {
    lars *s = (lars *)base;
    return s->momentum >= 0 ? &s->o.momentum : NULL;
}

static const ct_optim_class lars_class = {"lars", lars_step, NULL, lars_momentum};

ct_optim *ct_lars_new(ct_model *m, ct_lars_opts o) {
    static const char *op = "ct_lars_new";
    check_nonneg(op, "momentum", o.momentum);
    check_nonneg(op, "weight_decay", o.weight_decay);
    CT_CHECK(isfinite(o.trust_coefficient) && o.trust_coefficient > 0, op,
             "trust_coefficient %g must be finite and > 0", o.trust_coefficient);
    check_nonneg(op, "lr", o.lr);
    lars *s = ct_optim_create(sizeof *s, &lars_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->momentum = o.momentum != 0 ? ct_optim_add_state(&s->base, "momentum_buffer", 0) : -1;
    return &s->base;
}

/* ==== Adafactor ===============================================================================
 *   ρ = min(1e-2, 1/√t) or lr;  α = max(ε₂, RMS(θ))·ρ or ρ;  β̂₂ = 1 − t^c
 *   matrix (rows × cols):  R ← β̂₂R + (1−β̂₂)·rowsum(G² + ε₁);  C ← β̂₂C + (1−β̂₂)·colsum(G² + ε₁)
 *                          V̂ᵢⱼ = RᵢCⱼ / ΣR,  so  Uᵢⱼ = Gᵢⱼ · √(ΣR) / √(Rᵢ·Cⱼ)
 *   vector:                V̂ ← β̂₂V̂ + (1−β̂₂)(G² + ε₁),  U = G/√V̂
 *   Û = U / max(1, RMS(U)/d);  update α·Û (through M with β₁);  θ ← θ − αλθ − update
 * Pass 1 collects the statistics (and RMS(θ)); pass 2 sums U² for RMS(U); pass 3 updates. */
typedef struct {
    ct_optim base;
    ct_adafactor_opts o;
    int row, col, full, exp_avg; /* state slots (-1: none) */
} adafactor;

/* A parameter of rank >= 2 is the matrix (size(0), rest). */
static int adafactor_factored(const ct_tensor *p) { return p->ndim >= 2; }

static int row_shape(const ct_tensor *p, ct_shape *s, void *ctx) {
    (void)ctx;
    if (!adafactor_factored(p)) return 0;
    *s = CT_SHAPE(p->shape[0]);
    return 1;
}

static int col_shape(const ct_tensor *p, ct_shape *s, void *ctx) {
    (void)ctx;
    if (!adafactor_factored(p)) return 0;
    *s = CT_SHAPE((int)(p->size / (size_t)p->shape[0]));
    return 1;
}

static int full_shape(const ct_tensor *p, ct_shape *s, void *ctx) {
    (void)ctx;
    if (adafactor_factored(p)) return 0;
    *s = ct_tensor_shape(p);
    return 1;
}

CT_KERNEL
static void adafactor_step(ct_optim *base) {
    adafactor *s = (adafactor *)base;
    const ct_adafactor_opts *o = &s->o;
    const double t = (double)(base->steps + 1);
    const double beta2 = 1 - pow(t, o->decay_rate);
    const ct_real b2 = (ct_real)beta2, eps1 = (ct_real)o->eps1, b1 = (ct_real)o->beta1;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        ct_real *restrict x = p->data, *restrict g = p->grad;
        const long n = (long)p->size;
        const double rho = o->relative_step ? fmin(1e-2, 1 / sqrt(t)) : ct_optim_param_lr(base, k);
        const double alpha = o->scale_parameter ? fmax(o->eps2, sqrt(sum_squares(x, n) / (double)n)) * rho : rho;
        double uu = 0; /* Σ U² */
        if (adafactor_factored(p)) {
            const long rows = p->shape[0], cols = n / rows;
            ct_real *restrict R = ct_optim_state(base, s->row, k), *restrict C = ct_optim_state(base, s->col, k);
            /* R and C from G² + ε₁: rows in parallel, then columns (each thread its own columns) */
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < rows; i++) {
                double r = 0;
                for (long j = 0; j < cols; j++) r += (double)g[i * cols + j] * (double)g[i * cols + j] + (double)eps1;
                R[i] = b2 * R[i] + (1 - b2) * (ct_real)r;
            }
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
            for (long j = 0; j < cols; j++) {
                double c = 0;
                for (long i = 0; i < rows; i++) c += (double)g[i * cols + j] * (double)g[i * cols + j] + (double)eps1;
                C[j] = b2 * C[j] + (1 - b2) * (ct_real)c;
            }
            double sum_r = 0;
            for (long i = 0; i < rows; i++) sum_r += R[i];
            const ct_real root_sum = (ct_real)sqrt(sum_r);
#pragma omp parallel for reduction(+ : uu) schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < rows; i++) {
                const ct_real ri = root_sum / rsqrt_(R[i]);
                for (long j = 0; j < cols; j++) {
                    ct_real u = g[i * cols + j] * ri / rsqrt_(C[j]);
                    uu += (double)u * (double)u;
                }
            }
            const double clip = fmax(1.0, sqrt(uu / (double)n) / o->clip_threshold);
            const ct_real a = (ct_real)(alpha / clip), decay = (ct_real)(alpha * ct_optim_param_weight_decay(base, k));
            ct_real *restrict M = s->exp_avg >= 0 ? ct_optim_state(base, s->exp_avg, k) : NULL;
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < rows; i++) {
                const ct_real ri = root_sum / rsqrt_(R[i]);
                for (long j = 0; j < cols; j++) {
                    const long e = i * cols + j;
                    ct_real upd = a * g[e] * ri / rsqrt_(C[j]);
                    if (M) upd = M[e] = b1 * M[e] + (1 - b1) * upd;
                    x[e] -= decay * x[e] + upd;
                    g[e] = 0;
                }
            }
        } else {
            ct_real *restrict V = ct_optim_state(base, s->full, k);
#pragma omp parallel for simd reduction(+ : uu) schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                V[i] = b2 * V[i] + (1 - b2) * (g[i] * g[i] + eps1);
                ct_real u = g[i] / rsqrt_(V[i]);
                uu += (double)u * (double)u;
            }
            const double clip = fmax(1.0, sqrt(uu / (double)n) / o->clip_threshold);
            const ct_real a = (ct_real)(alpha / clip), decay = (ct_real)(alpha * ct_optim_param_weight_decay(base, k));
            ct_real *restrict M = s->exp_avg >= 0 ? ct_optim_state(base, s->exp_avg, k) : NULL;
            for (long i = 0; i < n; i++) {
                ct_real upd = a * g[i] / rsqrt_(V[i]);
                if (M) upd = M[i] = b1 * M[i] + (1 - b1) * upd;
                x[i] -= decay * x[i] + upd;
                g[i] = 0;
            }
        }
    }
    base->zeroed = 1;
}

static const ct_optim_class adafactor_class = {"adafactor", adafactor_step, NULL, NULL};

ct_optim *ct_adafactor_new(ct_model *m, ct_adafactor_opts o) {
    static const char *op = "ct_adafactor_new";
    check_nonneg(op, "lr", o.lr);
    CT_CHECK(!o.relative_step || o.lr == 0, op, "lr %g with relative_step: the relative step min(1e-2, 1/sqrt(t)) "
             "is the step size; set .relative_step = 0 to use lr", o.lr);
    CT_CHECK(o.relative_step || o.lr > 0, op, "lr 0 without relative_step: nothing would move");
    CT_CHECK(isfinite(o.eps1) && o.eps1 > 0, op, "eps1 %g must be finite and > 0", o.eps1);
    check_nonneg(op, "eps2", o.eps2);
    CT_CHECK(isfinite(o.clip_threshold) && o.clip_threshold > 0, op, "clip_threshold %g must be finite and > 0",
             o.clip_threshold);
    CT_CHECK(isfinite(o.decay_rate) && o.decay_rate < 0, op, "decay_rate %g must be < 0 (beta2 = 1 - t^decay_rate)",
             o.decay_rate);
    check_unit(op, "beta1", o.beta1);
    check_nonneg(op, "weight_decay", o.weight_decay);
    adafactor *s = ct_optim_create(sizeof *s, &adafactor_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->row = ct_optim_add_state_shaped(&s->base, "exp_avg_sq_row", row_shape, NULL);
    s->col = ct_optim_add_state_shaped(&s->base, "exp_avg_sq_col", col_shape, NULL);
    s->full = ct_optim_add_state_shaped(&s->base, "exp_avg_sq", full_shape, NULL);
    s->exp_avg = o.beta1 > 0 ? ct_optim_add_state(&s->base, "exp_avg", 0) : -1;
    return &s->base;
}

/* ==== ADOPT ===================================================================================
 *   t = 1:  v ← g²
 *   t > 1:  m ← β₁m + (1−β₁)·clip(g / max(√v, ε), (t−1)^¼);  θ ← θ − lr·m;  v ← β₂v + (1−β₂)g²
 * with g ← g + λθ (L2) or θ ← θ(1 − lr·λ) (decoupled, from t = 2). */
typedef struct {
    ct_optim base;
    ct_adopt_opts o;
    int exp_avg, exp_avg_sq;
} adopt;

CT_KERNEL
static void adopt_step(ct_optim *base) {
    adopt *s = (adopt *)base;
    const long t = base->steps + 1;
    const ct_real b1 = (ct_real)s->o.beta1, b2 = (ct_real)s->o.beta2, eps = (ct_real)s->o.eps;
    const ct_real clip = s->o.clip ? (ct_real)pow((double)(t - 1), 0.25) : (ct_real)INFINITY;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue;
        const double lr = ct_optim_param_lr(base, k), wd = ct_optim_param_weight_decay(base, k);
        const ct_real l2 = (ct_real)(s->o.decoupled ? 0 : wd), keep = (ct_real)(s->o.decoupled ? 1 - lr * wd : 1);
        const ct_real step = (ct_real)lr;
        ct_real *restrict x = p->data, *restrict g = p->grad;
        ct_real *restrict m = ct_optim_state(base, s->exp_avg, k), *restrict v = ct_optim_state(base, s->exp_avg_sq, k);
        const long n = (long)p->size;
        if (t == 1) {
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                ct_real gi = g[i] + l2 * x[i];
                v[i] = gi * gi;
                g[i] = 0;
            }
            continue;
        }
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN)
        for (long i = 0; i < n; i++) {
            ct_real gi = g[i] + l2 * x[i];
            ct_real root = rsqrt_(v[i]);
            ct_real u = gi / (root > eps ? root : eps);
            u = u > clip ? clip : u < -clip ? -clip : u;
            ct_real mi = b1 * m[i] + (1 - b1) * u;
            m[i] = mi;
            x[i] = keep * x[i] - step * mi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            g[i] = 0;
        }
    }
    base->zeroed = 1;
}

static double *adopt_beta1(ct_optim *base) { return &((adopt *)base)->o.beta1; }

static const ct_optim_class adopt_class = {"adopt", adopt_step, NULL, adopt_beta1};

ct_optim *ct_adopt_new(ct_model *m, ct_adopt_opts o) {
    static const char *op = "ct_adopt_new";
    check_unit(op, "beta1", o.beta1);
    check_unit(op, "beta2", o.beta2);
    check_nonneg(op, "eps", o.eps);
    check_nonneg(op, "weight_decay", o.weight_decay);
    check_nonneg(op, "lr", o.lr);
    adopt *s = ct_optim_create(sizeof *s, &adopt_class, m, o.lr, o.weight_decay);
    s->o = o;
    s->exp_avg = ct_optim_add_state(&s->base, "exp_avg", 0);
    s->exp_avg_sq = ct_optim_add_state(&s->base, "exp_avg_sq", 0);
    return &s->base;
}
