/* optim/schedule.c — learning-rate schedules: pure functions lr = f(step), and reduce-on-plateau.
 *
 * t is the 0-based optimizer step, lr the base learning rate. Every schedule here is the closed
 * form of its torch.optim.lr_scheduler twin; PyTorch computes several of them recursively
 * (lr_t = lr_{t−1}·ratio), which agrees with the closed form to rounding (tests/optim/test_schedule.c
 * compares 64 steps of each against what torch produced).
 *
 *   constant        lr
 *   step            lr·γ^⌊t/step_size⌋
 *   multistep       lr·γ^|{m ∈ milestones : m <= t}|
 *   exponential     lr·γ^t
 *   polynomial      lr·(1 − min(t, T)/T)^power
 *   cosine          η_min + (lr − η_min)·(1 + cos(πt/T))/2             (Loshchilov & Hutter 2017)
 *   SGDR            the cosine with t → t_cur and T → T_i: the period restarts at lr after
 *                   T_0, then T_0·T_mult, T_0·T_mult², ... steps
 *   one-cycle       piecewise anneal (cos or linear) between max/div, max and
 *                   max/(div·final_div), phase ends at pct·T − 1 (and 2·pct·T − 2) and T − 1
 *                   (Smith & Topin 2019; PyTorch's OneCycleLR phase boundaries)
 *   WSD             lr·t/W while t < W, lr until T − D, then η_min + (lr − η_min)·d((t − T + D)/D)
 *                   with d(p) = 1 − √p, 1 − p or (1 + cos πp)/2
 *   warmup + s      lr·(start + (1 − start)·t/W) while t < W, then s(t − W)
 */
#define CT_BUILDING_LIBRARY
#include "optimizer.h"

#include <limits.h>
#include <math.h>
#include <string.h>

static void check_lr(const char *op, double lr) {
    CT_CHECK(isfinite(lr) && lr >= 0, op, "lr %g must be finite and >= 0", lr);
}

static void check_period(const char *op, const char *what, long n) {
    CT_CHECK(n >= 1, op, "%s %ld must be >= 1", what, n);
}

static ct_schedule base_schedule(ct_schedule_kind kind, double lr) {
    ct_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.lr = lr;
    s.gamma = 1;
    s.warmup_start = 1;
    return s;
}

ct_schedule ct_schedule_constant(double lr) {
    check_lr("ct_schedule_constant", lr);
    return base_schedule(CT_SCHEDULE_CONSTANT, lr);
}

ct_schedule ct_schedule_step(double lr, long step_size, double gamma) {
    static const char *op = "ct_schedule_step";
    check_lr(op, lr);
    check_period(op, "step_size", step_size);
    CT_CHECK(isfinite(gamma) && gamma >= 0, op, "gamma %g must be finite and >= 0", gamma);
    ct_schedule s = base_schedule(CT_SCHEDULE_STEP, lr);
    s.period = step_size;
    s.gamma = gamma;
    return s;
}

ct_schedule ct_schedule_multistep(double lr, const long *milestones, int n, double gamma) {
    static const char *op = "ct_schedule_multistep";
    check_lr(op, lr);
    CT_CHECK(n >= 0 && n <= CT_SCHEDULE_MAX_MILESTONES, op, "%d milestones: at most %d", n,
             CT_SCHEDULE_MAX_MILESTONES);
    CT_CHECK(n == 0 || milestones, op, "milestones is NULL with n_milestones %d", n);
    CT_CHECK(isfinite(gamma) && gamma >= 0, op, "gamma %g must be finite and >= 0", gamma);
    ct_schedule s = base_schedule(CT_SCHEDULE_MULTISTEP, lr);
    for (int i = 0; i < n; i++) {
        CT_CHECK(milestones[i] >= 0, op, "milestones[%d] = %ld must be >= 0", i, milestones[i]);
        CT_CHECK(i == 0 || milestones[i] >= milestones[i - 1], op,
                 "milestones must not decrease: milestones[%d] = %ld after %ld", i, milestones[i], milestones[i - 1]);
        s.milestones[i] = milestones[i];
    }
    s.n_milestones = n;
    s.gamma = gamma;
    return s;
}

ct_schedule ct_schedule_exponential(double lr, double gamma) {
    static const char *op = "ct_schedule_exponential";
    check_lr(op, lr);
    CT_CHECK(isfinite(gamma) && gamma >= 0, op, "gamma %g must be finite and >= 0", gamma);
    ct_schedule s = base_schedule(CT_SCHEDULE_EXPONENTIAL, lr);
    s.gamma = gamma;
    return s;
}

ct_schedule ct_schedule_polynomial(double lr, long total_steps, double power) {
    static const char *op = "ct_schedule_polynomial";
    check_lr(op, lr);
    check_period(op, "total_steps", total_steps);
    CT_CHECK(isfinite(power) && power >= 0, op, "power %g must be finite and >= 0", power);
    ct_schedule s = base_schedule(CT_SCHEDULE_POLYNOMIAL, lr);
    s.period = total_steps;
    s.power = power;
    return s;
}

ct_schedule ct_schedule_cosine(double lr, long t_max, double min_lr) {
    static const char *op = "ct_schedule_cosine";
    check_lr(op, lr);
    check_period(op, "t_max", t_max);
    CT_CHECK(isfinite(min_lr) && min_lr >= 0, op, "min_lr %g must be finite and >= 0", min_lr);
    ct_schedule s = base_schedule(CT_SCHEDULE_COSINE, lr);
    s.period = t_max;
    s.min_lr = min_lr;
    return s;
}

ct_schedule ct_schedule_sgdr(double lr, long t_0, long t_mult, double min_lr) {
    static const char *op = "ct_schedule_sgdr";
    check_lr(op, lr);
    check_period(op, "t_0", t_0);
    CT_CHECK(t_mult >= 1, op, "t_mult %ld must be >= 1", t_mult);
    CT_CHECK(isfinite(min_lr) && min_lr >= 0, op, "min_lr %g must be finite and >= 0", min_lr);
    ct_schedule s = base_schedule(CT_SCHEDULE_SGDR, lr);
    s.period = t_0;
    s.t_mult = t_mult;
    s.min_lr = min_lr;
    return s;
}

/* One-cycle's phase ends as PyTorch places them (floats: pct_start·T need not be whole). */
static int one_cycle_phases(const ct_schedule *s, double end[3]) {
    double T = (double)s->period;
    if (s->three_phase) {
        end[0] = s->pct_start * T - 1;
        end[1] = 2 * s->pct_start * T - 2;
        end[2] = T - 1;
        return 3;
    }
    end[0] = s->pct_start * T - 1;
    end[1] = T - 1;
    return 2;
}

ct_schedule ct_schedule_one_cycle(double max_lr, long total_steps, ct_one_cycle_opts o) {
    static const char *op = "ct_schedule_one_cycle";
    check_lr(op, max_lr);
    check_period(op, "total_steps", total_steps);
    CT_CHECK(o.pct_start >= 0 && o.pct_start <= 1, op, "pct_start %g must be in [0, 1]", o.pct_start);
    CT_CHECK(isfinite(o.div_factor) && o.div_factor > 0, op, "div_factor %g must be finite and > 0", o.div_factor);
    CT_CHECK(isfinite(o.final_div_factor) && o.final_div_factor > 0, op,
             "final_div_factor %g must be finite and > 0", o.final_div_factor);
    CT_CHECK(o.anneal == CT_ANNEAL_COS || o.anneal == CT_ANNEAL_LINEAR, op, "anneal %d is not CT_ANNEAL_COS or "
             "CT_ANNEAL_LINEAR", (int)o.anneal);
    ct_schedule s = base_schedule(CT_SCHEDULE_ONE_CYCLE, max_lr);
    s.period = total_steps;
    s.pct_start = o.pct_start;
    s.div_factor = o.div_factor;
    s.final_div_factor = o.final_div_factor;
    s.anneal = o.anneal;
    s.three_phase = o.three_phase != 0;
    s.cycle_momentum = o.cycle_momentum != 0;
    if (s.cycle_momentum) {
        CT_CHECK(o.base_momentum >= 0 && o.base_momentum < 1, op, "base_momentum %g must be in [0, 1)",
                 o.base_momentum);
        CT_CHECK(o.max_momentum >= 0 && o.max_momentum < 1, op, "max_momentum %g must be in [0, 1)", o.max_momentum);
        s.base_momentum = o.base_momentum;
        s.max_momentum = o.max_momentum;
    }
    double end[3];
    int n = one_cycle_phases(&s, end);
    for (int i = 0; i < n; i++)
        CT_CHECK(end[i] > (i ? end[i - 1] : 0), op, "phase %d of %d is empty with total_steps %ld and pct_start %g "
                 "(it ends at step %g)", i + 1, n, total_steps, o.pct_start, end[i]);
    return s;
}

ct_schedule ct_schedule_wsd(double lr, long total_steps, ct_wsd_opts o) {
    static const char *op = "ct_schedule_wsd";
    check_lr(op, lr);
    check_period(op, "total_steps", total_steps);
    CT_CHECK(o.warmup_steps >= 0, op, "warmup_steps %ld must be >= 0", o.warmup_steps);
    CT_CHECK(o.decay_steps >= 0, op, "decay_steps %ld must be >= 0", o.decay_steps);
    CT_CHECK(isfinite(o.min_lr) && o.min_lr >= 0, op, "min_lr %g must be finite and >= 0", o.min_lr);
    CT_CHECK(o.decay == CT_WSD_SQRT || o.decay == CT_WSD_LINEAR || o.decay == CT_WSD_COSINE, op,
             "decay %d is not CT_WSD_SQRT, CT_WSD_LINEAR or CT_WSD_COSINE", (int)o.decay);
    long decay = o.decay_steps ? o.decay_steps : (long)llround(0.2 * (double)total_steps);
    if (decay < 1) decay = 1;
    CT_CHECK(o.warmup_steps + decay <= total_steps, op, "warmup_steps %ld + decay_steps %ld exceed total_steps %ld",
             o.warmup_steps, decay, total_steps);
    ct_schedule s = base_schedule(CT_SCHEDULE_WSD, lr);
    s.period = total_steps - o.warmup_steps; /* the stable and decay phases, after the warmup */
    s.decay_steps = decay;
    s.min_lr = o.min_lr;
    s.decay = o.decay;
    if (o.warmup_steps > 0) s = ct_schedule_with_warmup(s, o.warmup_steps, 0);
    return s;
}

ct_schedule ct_schedule_with_warmup(ct_schedule s, long steps, double start_factor) {
    static const char *op = "ct_schedule_with_warmup";
    CT_CHECK(steps >= 0, op, "steps %ld must be >= 0", steps);
    CT_CHECK(start_factor >= 0 && start_factor <= 1, op, "start_factor %g must be in [0, 1]", start_factor);
    CT_CHECK(s.warmup_steps == 0, op, "the schedule already has a warmup of %ld steps", s.warmup_steps);
    s.warmup_steps = steps;
    s.warmup_start = start_factor;
    return s;
}

/* cos anneal from a to b as pct goes 0 → 1, or linear: OneCycleLR's two strategies. */
static double anneal(ct_anneal how, double a, double b, double pct) {
    if (how == CT_ANNEAL_LINEAR) return (b - a) * pct + a;
    return b + (a - b) / 2 * (cos(M_PI * pct) + 1);
}

/* A one-cycle quantity at `step`: it anneals from[i] → to[i] over phase i (two phases, or three
 * with three_phase), and stays at its last value after total_steps − 1. */
static double one_cycle_value(const ct_schedule *s, long step, const double from[3], const double to[3]) {
    double end[3];
    int n = one_cycle_phases(s, end);
    double t = (double)(step < s->period - 1 ? step : s->period - 1), start = 0;
    for (int i = 0; i < n; i++) {
        if (t <= end[i] || i == n - 1) return anneal(s->anneal, from[i], to[i], (t - start) / (end[i] - start));
        start = end[i];
    }
    return to[n - 1]; /* not reached */
}

/* lr: initial → max (→ initial) → min */
static double one_cycle_lr(const ct_schedule *s, long step) {
    const double max_lr = s->lr, initial = max_lr / s->div_factor, min_lr = initial / s->final_div_factor;
    const double from3[3] = {initial, max_lr, initial}, to3[3] = {max_lr, initial, min_lr};
    const double from2[3] = {initial, max_lr, 0}, to2[3] = {max_lr, min_lr, 0};
    return s->three_phase ? one_cycle_value(s, step, from3, to3) : one_cycle_value(s, step, from2, to2);
}

/* OneCycleLR's momentum, against the lr: max → base → max (three-phase: then max → max). */
static double one_cycle_momentum(const ct_schedule *s, long step) {
    const double lo = s->base_momentum, hi = s->max_momentum;
    const double from3[3] = {hi, lo, hi}, to3[3] = {lo, hi, hi};
    const double from2[3] = {hi, lo, 0}, to2[3] = {lo, hi, 0};
    return s->three_phase ? one_cycle_value(s, step, from3, to3) : one_cycle_value(s, step, from2, to2);
}

static double wsd_lr(const ct_schedule *s, long t) {
    long total = s->period, stable_end = total - s->decay_steps;
    if (t < stable_end) return s->lr;
    if (t >= total) return s->min_lr;
    double p = (double)(t - stable_end) / (double)s->decay_steps, d;
    switch (s->decay) {
    case CT_WSD_LINEAR: d = 1 - p; break;
    case CT_WSD_COSINE: d = (1 + cos(M_PI * p)) / 2; break;
    default: d = 1 - sqrt(p); break;
    }
    return s->min_lr + (s->lr - s->min_lr) * d;
}

double ct_schedule_lr(const ct_schedule *s, long step) {
    CT_CHECK(s, "ct_schedule_lr", "schedule is NULL");
    CT_CHECK(step >= 0, "ct_schedule_lr", "step %ld must be >= 0", step);
    if (step < s->warmup_steps)
        return s->lr * (s->warmup_start + (1 - s->warmup_start) * (double)step / (double)s->warmup_steps);
    long t = step - s->warmup_steps;
    switch (s->kind) {
    case CT_SCHEDULE_CONSTANT: return s->lr;
    case CT_SCHEDULE_STEP: return s->lr * pow(s->gamma, (double)(t / s->period));
    case CT_SCHEDULE_MULTISTEP: {
        int passed = 0;
        while (passed < s->n_milestones && s->milestones[passed] <= t) passed++;
        return s->lr * pow(s->gamma, passed);
    }
    case CT_SCHEDULE_EXPONENTIAL: return s->lr * pow(s->gamma, (double)t);
    case CT_SCHEDULE_POLYNOMIAL: {
        double left = 1 - (double)(t < s->period ? t : s->period) / (double)s->period;
        return s->lr * pow(left, s->power);
    }
    case CT_SCHEDULE_COSINE:
        return s->min_lr + (s->lr - s->min_lr) * (1 + cos(M_PI * (double)t / (double)s->period)) / 2;
    case CT_SCHEDULE_SGDR: {
        long t_i = s->period; /* the current period T_i and the position t_cur in it */
        while (t >= t_i) {
            t -= t_i;
            if (s->t_mult > 1 && t_i > LONG_MAX / s->t_mult) break; /* t is inside this (huge) period */
            t_i *= s->t_mult;
        }
        return s->min_lr + (s->lr - s->min_lr) * (1 + cos(M_PI * (double)t / (double)t_i)) / 2;
    }
    case CT_SCHEDULE_ONE_CYCLE: return one_cycle_lr(s, t);
    case CT_SCHEDULE_WSD: return wsd_lr(s, t);
    }
    ct_fatal("ct_schedule_lr", "unknown schedule kind %d", (int)s->kind);
}

double ct_schedule_momentum(const ct_schedule *s, long step) {
    CT_CHECK(s, "ct_schedule_momentum", "schedule is NULL");
    CT_CHECK(step >= 0, "ct_schedule_momentum", "step %ld must be >= 0", step);
    if (s->kind != CT_SCHEDULE_ONE_CYCLE || !s->cycle_momentum) return NAN;
    return one_cycle_momentum(s, step < s->warmup_steps ? 0 : step - s->warmup_steps);
}

void ct_optim_schedule(ct_optim *opt, const ct_schedule *s) {
    static const char *op = "ct_optim_schedule";
    CT_CHECK(opt, op, "optimizer is NULL");
    const long t = ct_optim_steps(opt);
    ct_optim_set_lr(opt, ct_schedule_lr(s, t));
    const double momentum = ct_schedule_momentum(s, t);
    if (isnan(momentum)) return;
    CT_CHECK(ct_optim_has_momentum(opt), op,
             "the one-cycle schedule cycles the momentum (cycle_momentum, on by default as in PyTorch's "
             "OneCycleLR) but this %s optimizer has none: build it with momentum > 0, or set "
             ".cycle_momentum = 0", ct_optim_kind(opt));
    ct_optim_set_momentum(opt, momentum);
}

/* ---- reduce-on-plateau ---------------------------------------------------------------------
 * PyTorch's ReduceLROnPlateau.step(metric), line for line:
 *   better:  min/rel  m < best·(1 − thr)   min/abs  m < best − thr
 *            max/rel  m > best·(1 + thr)   max/abs  m > best + thr
 *   if better: best ← m, bad ← 0   else bad ← bad + 1
 *   in cooldown: cooldown ← cooldown − 1, bad ← 0
 *   if bad > patience: lr ← max(lr·factor, min_lr) when that changes lr by more than eps;
 *                      cooldown ← cooldown steps, bad ← 0 */
ct_plateau ct_plateau_new(double lr, ct_plateau_opts o) {
    static const char *op = "ct_plateau_new";
    check_lr(op, lr);
    CT_CHECK(o.mode == CT_PLATEAU_MIN || o.mode == CT_PLATEAU_MAX, op, "mode %d is not CT_PLATEAU_MIN or "
             "CT_PLATEAU_MAX", (int)o.mode);
    CT_CHECK(o.threshold_mode == CT_PLATEAU_REL || o.threshold_mode == CT_PLATEAU_ABS, op,
             "threshold_mode %d is not CT_PLATEAU_REL or CT_PLATEAU_ABS", (int)o.threshold_mode);
    CT_CHECK(o.factor >= 0 && o.factor < 1, op, "factor %g must be in [0, 1)", o.factor);
    CT_CHECK(o.patience >= 0, op, "patience %d must be >= 0", o.patience);
    CT_CHECK(o.cooldown >= 0, op, "cooldown %d must be >= 0", o.cooldown);
    CT_CHECK(isfinite(o.threshold) && o.threshold >= 0, op, "threshold %g must be finite and >= 0", o.threshold);
    CT_CHECK(isfinite(o.min_lr) && o.min_lr >= 0, op, "min_lr %g must be finite and >= 0", o.min_lr);
    CT_CHECK(o.eps >= 0, op, "eps %g must be >= 0", o.eps);
    ct_plateau p = {.opts = o, .lr = lr, .best = o.mode == CT_PLATEAU_MIN ? INFINITY : -INFINITY};
    return p;
}

void ct_plateau_attach(ct_plateau *p, ct_optim *opt) {
    CT_CHECK(p && opt, "ct_plateau_attach", "plateau or optimizer is NULL");
    ct_optim_add_scalar(opt, "plateau.lr", &p->lr);
    ct_optim_add_scalar(opt, "plateau.best", &p->best);
    ct_optim_add_count(opt, "plateau.bad_reports", &p->bad_reports);
    ct_optim_add_count(opt, "plateau.cooldown_left", &p->cooldown_left);
    ct_optim_add_count(opt, "plateau.reports", &p->reports);
}

static int plateau_better(const ct_plateau_opts *o, double m, double best) {
    if (o->mode == CT_PLATEAU_MIN)
        return o->threshold_mode == CT_PLATEAU_REL ? m < best * (1 - o->threshold) : m < best - o->threshold;
    return o->threshold_mode == CT_PLATEAU_REL ? m > best * (1 + o->threshold) : m > best + o->threshold;
}

double ct_plateau_step(ct_plateau *p, double metric) {
    CT_CHECK(p, "ct_plateau_step", "plateau is NULL");
    const ct_plateau_opts *o = &p->opts;
    p->reports++;
    if (plateau_better(o, metric, p->best)) {
        p->best = metric;
        p->bad_reports = 0;
    } else {
        p->bad_reports++;
    }
    if (p->cooldown_left > 0) {
        p->cooldown_left--;
        p->bad_reports = 0; /* bad reports during the cooldown do not count */
    }
    if (p->bad_reports > o->patience) {
        double reduced = fmax(p->lr * o->factor, o->min_lr);
        if (p->lr - reduced > o->eps) p->lr = reduced;
        p->cooldown_left = o->cooldown;
        p->bad_reports = 0;
    }
    return p->lr;
}
