/* optim/airbench.c — the training pieces of Keller Jordan's airbench CIFAR-10 recipe (arXiv
 * 2404.00498, airbench94.py) that are not an update rule: Lookahead-style weight averaging copied
 * back into the network, and the decoupled "per 1024 examples" hyper-parameters turned into
 * SGD's. The rules are in optim/literature.h beside the options. */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==== Lookahead-style weight averaging ========================================================= */

#define LA_MAGIC 0x6c61656du

struct ct_lookahead_ema {
    uint32_t magic;            /* LA_MAGIC from ct_lookahead_ema_new until ct_lookahead_ema_free */
    ct_lookahead_ema_opts o;
    ct_model *m;
    int n;                     /* ct_model_tensor_count(m) */
    ct_tensor **w;             /* the model's parameters and buffers */
    ct_tensor **avg;           /* their averages (NULL: not averaged) */
    int started;
    long last_t;               /* the last step seen, so a step reported twice averages once */
};

static void check_la(const ct_lookahead_ema *la, const char *op) {
    CT_CHECK(la, op, "lookahead EMA is NULL");
    CT_CHECK(la->magic == LA_MAGIC, op, "%p is not a live lookahead EMA: freed already, or not made by "
             "ct_lookahead_ema_new", (const void *)la);
}

static void check_opts(ct_lookahead_ema_opts o, const char *op) {
    CT_CHECK(o.every >= 1, op, "every %d must be >= 1", o.every);
    CT_CHECK(o.decay_base >= 0 && o.decay_base <= 1, op, "decay_base %g must be in [0, 1]", o.decay_base);
    CT_CHECK(o.decay_pow >= 0 && isfinite(o.decay_pow), op, "decay_pow %g must be finite and >= 0", o.decay_pow);
    CT_CHECK(o.total_steps >= 1 && o.start_step >= 0 && o.steps_per_epoch >= 0, op,
             "total_steps %ld must be >= 1, start_step %ld and steps_per_epoch %ld >= 0", o.total_steps, o.start_step,
             o.steps_per_epoch);
}

/* The integer count of batch norm is not a weight (airbench's loop skips the integer tensors). */
static int averaged(const ct_tensor *t) {
    static const char count[] = "num_batches_tracked";
    const size_t n = t->name ? strlen(t->name) : 0, c = sizeof count - 1;
    return !(n >= c && strcmp(t->name + n - c, count) == 0);
}

ct_lookahead_ema *ct_lookahead_ema_new(ct_model *m, ct_lookahead_ema_opts o) {
    static const char *op = "ct_lookahead_ema_new";
    CT_CHECK(m, op, "model is NULL");
    check_opts(o, op);
    ct_lookahead_ema *la = calloc(1, sizeof *la);
    CT_CHECK(la, op, "out of memory");
    la->magic = LA_MAGIC;
    la->o = o;
    la->m = m;
    la->n = ct_model_tensor_count(m);
    la->w = calloc((size_t)(la->n ? la->n : 1), sizeof *la->w);
    la->avg = calloc((size_t)(la->n ? la->n : 1), sizeof *la->avg);
    CT_CHECK(la->w && la->avg, op, "out of memory");
    ct_model_tensors(m, la->w);
    for (int i = 0; i < la->n; i++)
        if (averaged(la->w[i])) la->avg[i] = ct_tensor_new(ct_tensor_shape(la->w[i]));
    la->last_t = -1;
    return la;
}

/* ρ = decay_base^every · (t/T)^decay_pow, t clamped to T */
double ct_lookahead_ema_decay(ct_lookahead_ema_opts o, long t) {
    check_opts(o, "ct_lookahead_ema_decay");
    const double f = (double)(t < o.total_steps ? (t > 0 ? t : 0) : o.total_steps) / (double)o.total_steps;
    return pow(o.decay_base, o.every) * pow(f, o.decay_pow);
}

int ct_lookahead_ema_update(ct_lookahead_ema *la, long t) {
    static const char *op = "ct_lookahead_ema_update";
    check_la(la, op);
    CT_CHECK(ct_model_tensor_count(la->m) == la->n, op, "the model had %d tensors at ct_lookahead_ema_new and has %d "
             "now; make the average after the last layer", la->n, ct_model_tensor_count(la->m));
    if (t == la->last_t || t <= la->o.start_step || t % la->o.every != 0) return 0;
    la->last_t = t;
    if (!la->started) { /* e ← w */
        for (int i = 0; i < la->n; i++)
            if (la->avg[i]) memcpy(la->avg[i]->data, la->w[i]->data, la->w[i]->size * sizeof(ct_real));
        la->started = 1;
        return 1;
    }
    /* e ← e + (1 − ρ)(w − e);  w ← e */
    const ct_real r = (ct_real)(1 - ct_lookahead_ema_decay(la->o, t));
    for (int i = 0; i < la->n; i++) {
        if (!la->avg[i]) continue;
        ct_real *restrict e = la->avg[i]->data, *restrict w = la->w[i]->data;
        const long n = (long)la->w[i]->size;
        for (long j = 0; j < n; j++) {
            e[j] += r * (w[j] - e[j]);
            w[j] = e[j];
        }
    }
    return 1;
}

void ct_lookahead_ema_finish(ct_lookahead_ema *la) {
    check_la(la, "ct_lookahead_ema_finish");
    if (!la->started) return;
    for (int i = 0; i < la->n; i++) /* w ← e: an update with ρ = 1 */
        if (la->avg[i]) memcpy(la->w[i]->data, la->avg[i]->data, la->w[i]->size * sizeof(ct_real));
}

int ct_lookahead_ema_started(const ct_lookahead_ema *la) {
    check_la(la, "ct_lookahead_ema_started");
    return la->started;
}

const ct_tensor *ct_lookahead_ema_average(const ct_lookahead_ema *la, int i) {
    check_la(la, "ct_lookahead_ema_average");
    CT_CHECK(i >= 0 && i < la->n, "ct_lookahead_ema_average", "tensor %d out of range [0, %d)", i, la->n);
    return la->started ? la->avg[i] : NULL;
}

void ct_lookahead_ema_on_step(const ct_fit_step *step, void *user) {
    ct_lookahead_ema *la = user;
    check_la(la, "ct_lookahead_ema_on_step");
    CT_CHECK(step, "ct_lookahead_ema_on_step", "step is NULL");
    ct_lookahead_ema_update(la, step->step);
    const long per = la->o.steps_per_epoch;
    if (per > 0 && step->step > 0 && (step->step % per == 0 || step->step == la->o.total_steps))
        ct_lookahead_ema_finish(la);
}

void ct_lookahead_ema_free(ct_lookahead_ema *la) {
    if (!la) return;
    check_la(la, "ct_lookahead_ema_free");
    la->magic = 0;
    for (int i = 0; i < la->n; i++) ct_tensor_free(la->avg[i]);
    free(la->avg);
    free(la->w);
    free(la);
}

/* ==== decoupled hyper-parameters ================================================================ */

ct_decoupled_sgd ct_decoupled_to_sgd(ct_decoupled_opts o) {
    static const char *op = "ct_decoupled_to_sgd";
    CT_CHECK(o.lr > 0 && isfinite(o.lr), op, "lr %g must be finite and > 0", o.lr);
    CT_CHECK(o.weight_decay >= 0 && isfinite(o.weight_decay), op, "weight_decay %g must be finite and >= 0",
             o.weight_decay);
    CT_CHECK(o.momentum >= 0 && o.momentum < 1, op, "momentum %g must be in [0, 1)", o.momentum);
    CT_CHECK(o.batch >= 1, op, "batch %d must be >= 1", o.batch);
    CT_CHECK(o.bias_scaler > 0 && isfinite(o.bias_scaler), op, "bias_scaler %g must be finite and > 0", o.bias_scaler);
    CT_CHECK(o.label_smoothing >= 0 && o.label_smoothing <= 1, op, "label_smoothing %g must be in [0, 1]",
             o.label_smoothing);
    /* k = 1024·(1 + 1/(1 − μ)); lr = lr₁₀₂₄/k; decay per step = wd₁₀₂₄·batch/k */
    const double k = 1024 * (1 + 1 / (1 - o.momentum));
    const double lr = o.lr / k * (o.mean_loss ? o.batch : 1), decay = o.weight_decay * o.batch / k;
    ct_decoupled_sgd r = {.lr = lr, .weight_decay = decay / lr, .bias_lr = lr * o.bias_scaler,
                          .momentum = o.momentum, .decay_per_step = decay, .label_smoothing = o.label_smoothing};
    r.bias_weight_decay = decay / r.bias_lr;
    return r;
}

ct_optim *ct_sgd_decoupled_new(ct_model *m, ct_decoupled_opts o, int (*is_bias)(const ct_tensor *, void *), void *ctx) {
    const ct_decoupled_sgd h = ct_decoupled_to_sgd(o);
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = h.lr, .momentum = h.momentum, .nesterov = h.momentum > 0,
                                         .weight_decay = h.weight_decay));
    if (is_bias) ct_optim_add_group(opt, is_bias, ctx, CT_GROUP(.lr = h.bias_lr, .weight_decay = h.bias_weight_decay));
    return opt;
}
