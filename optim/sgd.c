/* optim/sgd.c — stochastic gradient descent with momentum, as torch.optim.SGD.
 *
 * Per element, with gradient ∇, weight decay λ, momentum μ, dampening τ, learning rate lr:
 *     g ← ∇ + λ·θ                                   (L2 weight decay folded into the gradient)
 *     b ← g                       on the first step  (PyTorch starts the buffer at g, not 0)
 *     b ← μ·b + (1 − τ)·g         afterwards
 *     g ← g + μ·b  (Nesterov)     or   g ← b        (when μ ≠ 0)
 *     θ ← θ − lr·g
 * The momentum buffer is the core's state "momentum_buffer" (optim.h). Each case has its own loop so
 * the compiler vectorises it without branches inside, and the grad is zeroed in the same pass
 * while it is in cache (no second sweep over ~500k values). */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    ct_optim base;
    ct_sgd_opts opts;
    int momentum; /* state slot "momentum_buffer" when μ ≠ 0, else -1 */
} sgd;

CT_KERNEL
static void sgd_step(ct_optim *base) {
    sgd *s = (sgd *)base;
    const ct_real mu = (ct_real)s->opts.momentum, keep = (ct_real)(1 - s->opts.dampening);
    const ct_real sign = s->opts.maximize ? -1 : 1;
    const int first = base->steps == 0, nesterov = s->opts.nesterov;
    for (int k = 0; k < base->n_params; k++) {
        ct_tensor *p = base->params[k];
        if (!p->grad) continue; /* a parameter without a grad buffer is frozen */
        const ct_real lr = (ct_real)ct_optim_param_lr(base, k), wd = (ct_real)ct_optim_param_weight_decay(base, k);
        ct_real *restrict x = p->data, *restrict g = p->grad;
        const long n = (long)p->size;
        if (mu == 0) { /* plain SGD: θ ← θ − lr·(∇ + λθ) */
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                ct_real d = sign * g[i] + wd * x[i];
                x[i] -= lr * d;
                g[i] = 0;
            }
            continue;
        }
        ct_real *restrict b = ct_optim_state(base, s->momentum, k);
        if (first) { /* b ← g */
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                ct_real d = sign * g[i] + wd * x[i];
                b[i] = d;
                x[i] -= lr * (nesterov ? d + mu * d : d);
                g[i] = 0;
            }
        } else if (nesterov) { /* b ← μb + (1−τ)g;  θ ← θ − lr·(g + μb) */
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                ct_real d = sign * g[i] + wd * x[i];
                b[i] = mu * b[i] + keep * d;
                x[i] -= lr * (d + mu * b[i]);
                g[i] = 0;
            }
        } else { /* b ← μb + (1−τ)g;  θ ← θ − lr·b */
#pragma omp parallel for simd schedule(static) if (n >= CT_OPTIM_PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                ct_real d = sign * g[i] + wd * x[i];
                b[i] = mu * b[i] + keep * d;
                x[i] -= lr * b[i];
                g[i] = 0;
            }
        }
    }
    base->zeroed = 1;
}

static double *sgd_momentum(ct_optim *base) {
    sgd *s = (sgd *)base;
    return s->momentum >= 0 ? &s->opts.momentum : NULL; /* no buffer: no momentum to move */
}

static const ct_optim_class sgd_class = {"sgd", sgd_step, NULL, sgd_momentum};

ct_optim *ct_sgd_new(ct_model *m, ct_sgd_opts o) {
    static const char *op = "ct_sgd_new";
    CT_CHECK(o.lr >= 0 && isfinite(o.lr), op, "lr %g must be finite and >= 0", o.lr);
    CT_CHECK(o.momentum >= 0 && isfinite(o.momentum), op, "momentum %g must be finite and >= 0", o.momentum);
    CT_CHECK(isfinite(o.dampening), op, "dampening %g must be finite", o.dampening);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op,
             "weight_decay %g must be finite and >= 0", o.weight_decay);
    CT_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), op,
             "nesterov needs momentum > 0 and dampening = 0, got momentum %g, dampening %g",
             o.momentum, o.dampening);
    sgd *s = ct_optim_create(sizeof *s, &sgd_class, m, o.lr, o.weight_decay);
    s->opts = o;
    s->momentum = o.momentum != 0 ? ct_optim_add_state(&s->base, "momentum_buffer", 0) : -1;
    return &s->base;
}
