/* optim/schedule.h — learning-rate (and momentum) schedules, and reduce-on-plateau
 * (optim/schedule.c). Included by optim/optim.h. */
#ifndef CTAPE_OPTIM_SCHEDULE_H
#define CTAPE_OPTIM_SCHEDULE_H

#include "../core/core.h"

typedef struct ct_optim ct_optim;

/* A learning-rate schedule is a value: ct_schedule_lr(&s, step) is the lr for optimizer step
 * `step` (0-based), a pure function of the step, so resuming at step k needs nothing saved.
 * ct_optim_schedule(opt, &s) sets the lr for the optimizer's next step. The values match
 * torch.optim.lr_scheduler stepped once per optimizer step (tests/optim/test_schedule.c compares
 * them). Any schedule takes a linear warmup in front (ct_schedule_with_warmup); the schedule
 * then starts at step 0 once the warmup is over, as torch's SequentialLR([LinearLR, ...]).
 * Fatal on a negative lr or a period < 1, naming the constructor and the value. */
typedef enum {
    CT_SCHEDULE_CONSTANT,    /* lr */
    CT_SCHEDULE_STEP,        /* lr·γ^⌊t/step_size⌋                                   StepLR */
    CT_SCHEDULE_MULTISTEP,   /* lr·γ^(number of milestones <= t)                     MultiStepLR */
    CT_SCHEDULE_EXPONENTIAL, /* lr·γ^t                                               ExponentialLR */
    CT_SCHEDULE_POLYNOMIAL,  /* lr·(1 − min(t, T)/T)^power                           PolynomialLR */
    CT_SCHEDULE_COSINE,      /* min + (lr − min)·(1 + cos(πt/T))/2                   CosineAnnealingLR */
    CT_SCHEDULE_SGDR,        /* the cosine over T_0, T_0·T_mult, ... restarting      CosineAnnealingWarmRestarts */
    CT_SCHEDULE_ONE_CYCLE,   /* up from max/div, down to max/(div·final_div)         OneCycleLR */
    CT_SCHEDULE_WSD,         /* warmup, stable at lr, decay over the last steps      (MiniCPM; Hägele et al.) */
} ct_schedule_kind;

typedef enum { CT_ANNEAL_COS, CT_ANNEAL_LINEAR } ct_anneal;
/* WSD's decay from lr to min_lr as its progress p goes 0 → 1. */
typedef enum {
    CT_WSD_SQRT,   /* 1 − √p (Hägele et al. 2024's best cooldown) */
    CT_WSD_LINEAR, /* 1 − p */
    CT_WSD_COSINE, /* (1 + cos πp)/2 */
} ct_wsd_decay;

#define CT_SCHEDULE_MAX_MILESTONES 16

typedef struct {
    ct_schedule_kind kind;
    double lr;                  /* base lr; the peak (max_lr) for one-cycle */
    long warmup_steps;          /* linear warmup in front; 0: none */
    double warmup_start;        /* the warmup's first lr is lr·warmup_start */
    long period;                /* step: step_size; polynomial, cosine: T; SGDR: T_0; one-cycle, WSD: total steps */
    double gamma;               /* step, multistep, exponential */
    long milestones[CT_SCHEDULE_MAX_MILESTONES]; /* multistep, sorted */
    int n_milestones;
    double power;               /* polynomial */
    double min_lr;              /* cosine, SGDR (eta_min), WSD */
    long t_mult;                /* SGDR */
    double pct_start, div_factor, final_div_factor; /* one-cycle */
    ct_anneal anneal;           /* one-cycle */
    int three_phase;            /* one-cycle */
    int cycle_momentum;         /* one-cycle: ct_schedule_momentum moves between these two */
    double base_momentum, max_momentum;
    long decay_steps;           /* WSD */
    ct_wsd_decay decay;         /* WSD */
} ct_schedule;

ct_schedule ct_schedule_constant(double lr);
/* γ = 0.1 is PyTorch's default for both. Milestones are step counts in increasing order
 * (repeats allowed: a milestone listed twice multiplies by γ²), at most CT_SCHEDULE_MAX_MILESTONES. */
ct_schedule ct_schedule_step(double lr, long step_size, double gamma);
ct_schedule ct_schedule_multistep(double lr, const long *milestones, int n_milestones, double gamma);
ct_schedule ct_schedule_exponential(double lr, double gamma);
/* Reaches 0 at total_steps and stays there. */
ct_schedule ct_schedule_polynomial(double lr, long total_steps, double power);
/* Cosine annealing (Loshchilov & Hutter 2017) from lr at t = 0 to min_lr at t = t_max. As in
 * PyTorch, the cosine goes on past t_max (rising again over the next t_max steps): stop at t_max,
 * or use SGDR for restarts. */
ct_schedule ct_schedule_cosine(double lr, long t_max, double min_lr);
/* SGDR: cosine annealing restarted at lr after t_0 steps, then t_0·t_mult, t_0·t_mult², ... */
ct_schedule ct_schedule_sgdr(double lr, long t_0, long t_mult, double min_lr);

/* One-cycle (Smith & Topin 2019, "Super-Convergence"), PyTorch's OneCycleLR: from
 * max_lr/div_factor up to max_lr over the first pct_start of total_steps, then down to
 * max_lr/(div_factor·final_div_factor) at step total_steps − 1; three_phase goes back down to
 * max_lr/div_factor first (symmetric) and anneals to the minimum in a third phase. Steps past
 * total_steps − 1 stay at the minimum (PyTorch raises).
 * With cycle_momentum (the default, as in PyTorch), the momentum moves against the lr with the
 * same annealing: max_momentum → base_momentum while the lr rises, back to max_momentum while it
 * falls (three_phase: and stays there in the third phase). ct_optim_schedule sets it with
 * ct_optim_set_momentum: SGD's μ, Adam's β₁ (see there; an optimizer without one is a fatal
 * error naming it, where PyTorch raises too, except that PyTorch also turns on the momentum of
 * an SGD built without: build it with momentum > 0, or set cycle_momentum = 0). */
typedef struct {
    double pct_start, div_factor, final_div_factor;
    ct_anneal anneal;
    int three_phase;
    int cycle_momentum;
    double base_momentum, max_momentum;
} ct_one_cycle_opts;
#define CT_ONE_CYCLE(...) CT_WITH_DEFAULTS(ct_one_cycle_opts, (.pct_start = 0.3, .div_factor = 25, \
    .final_div_factor = 1e4, .anneal = CT_ANNEAL_COS, .three_phase = 0, .cycle_momentum = 1, \
    .base_momentum = 0.85, .max_momentum = 0.95), __VA_ARGS__)
ct_schedule ct_schedule_one_cycle(double max_lr, long total_steps, ct_one_cycle_opts opts);

/* Warmup-stable-decay (MiniCPM, Hu et al. 2024; Hägele et al. 2024, "Scaling Laws and
 * Compute-Optimal Training Beyond Fixed Training Durations"): a linear warmup from 0 over
 * warmup_steps (lr·t/warmup_steps), lr until the last decay_steps of total_steps, then the decay
 * to min_lr at total_steps (and min_lr after). decay_steps = 0 means 20% of total_steps. */
typedef struct {
    long warmup_steps, decay_steps;
    double min_lr;
    ct_wsd_decay decay;
} ct_wsd_opts;
#define CT_WSD(...) CT_WITH_DEFAULTS(ct_wsd_opts, (.warmup_steps = 0, .decay_steps = 0, .min_lr = 0, \
    .decay = CT_WSD_SQRT), __VA_ARGS__)
ct_schedule ct_schedule_wsd(double lr, long total_steps, ct_wsd_opts opts);

/* s with a linear warmup of `steps` steps in front: lr·(start + (1 − start)·t/steps) for
 * t < steps, then s at step t − steps. start_factor in [0, 1]; torch's LinearLR defaults to 1/3,
 * Goyal et al. (2017) start near 0. */
ct_schedule ct_schedule_with_warmup(ct_schedule s, long steps, double start_factor);
/* The lr for optimizer step `step` >= 0. */
double ct_schedule_lr(const ct_schedule *s, long step);
/* The momentum for optimizer step `step` >= 0, or NAN for a schedule that leaves the momentum
 * alone (every one but a one-cycle with cycle_momentum; during a warmup in front of one, its
 * first value). */
double ct_schedule_momentum(const ct_schedule *s, long step);
/* ct_optim_set_lr(opt, ct_schedule_lr(s, ct_optim_steps(opt))), and the same for the momentum
 * when the schedule sets one: call before each step. */
void ct_optim_schedule(ct_optim *opt, const ct_schedule *s);

/* Reduce-on-plateau (torch.optim.lr_scheduler.ReduceLROnPlateau): stateful, driven by a metric
 * reported once per evaluation. When the metric has not improved on the best one by more than
 * `threshold` (relative: best·(1 ∓ threshold); absolute: best ∓ threshold) for more than
 * `patience` reports, lr ← max(lr·factor, min_lr), then `cooldown` reports are ignored.
 * Reductions smaller than eps are skipped. Defaults are PyTorch's. */
typedef enum { CT_PLATEAU_MIN, CT_PLATEAU_MAX } ct_plateau_mode;
typedef enum { CT_PLATEAU_REL, CT_PLATEAU_ABS } ct_plateau_threshold;
typedef struct {
    ct_plateau_mode mode;
    double factor;
    int patience;
    double threshold;
    ct_plateau_threshold threshold_mode;
    int cooldown;
    double min_lr, eps;
} ct_plateau_opts;
#define CT_PLATEAU(...) CT_WITH_DEFAULTS(ct_plateau_opts, (.mode = CT_PLATEAU_MIN, .factor = 0.1, \
    .patience = 10, .threshold = 1e-4, .threshold_mode = CT_PLATEAU_REL, .cooldown = 0, \
    .min_lr = 0, .eps = 1e-8), __VA_ARGS__)
typedef struct {
    ct_plateau_opts opts;
    double lr;          /* the current learning rate */
    double best;        /* best metric so far (±inf before the first) */
    long bad_reports;   /* reports since the last improvement */
    long cooldown_left;
    long reports;
} ct_plateau;
/* A plateau tracker starting at lr; fatal on factor outside [0, 1), negative patience,
 * threshold, cooldown or min_lr. */
ct_plateau ct_plateau_new(double lr, ct_plateau_opts opts);
/* Reports a metric; returns the lr to use from now on. A NaN metric counts as no improvement
 * (as in PyTorch). */
double ct_plateau_step(ct_plateau *p, double metric);
/* Saves p's state (lr, best, the counters) with opt's, in ct_optim_save and ct_checkpoint_save
 * ("ctape.scalar.plateau.*"), and restores it in the loads, so a run resumes with the tracker
 * where it was (PyTorch keeps it in the scheduler's state_dict). p must stay at this address
 * while opt lives; make it with the same options before loading. Once per optimizer. */
void ct_plateau_attach(ct_plateau *p, ct_optim *opt);

/* The user's call site for error messages (core/core.h, CT_SITE_CALL); a call made from user
 * code to a function that can fail (a status or a NULL handle) also clears ct_last_error() on entry. */
#ifndef CT_BUILDING_LIBRARY
#define ct_schedule_constant(...) CT_SITE_CALL(ct_schedule_constant, __VA_ARGS__)
#define ct_schedule_step(...) CT_SITE_CALL(ct_schedule_step, __VA_ARGS__)
#define ct_schedule_multistep(...) CT_SITE_CALL(ct_schedule_multistep, __VA_ARGS__)
#define ct_schedule_exponential(...) CT_SITE_CALL(ct_schedule_exponential, __VA_ARGS__)
#define ct_schedule_polynomial(...) CT_SITE_CALL(ct_schedule_polynomial, __VA_ARGS__)
#define ct_schedule_cosine(...) CT_SITE_CALL(ct_schedule_cosine, __VA_ARGS__)
#define ct_schedule_sgdr(...) CT_SITE_CALL(ct_schedule_sgdr, __VA_ARGS__)
#define ct_schedule_one_cycle(...) CT_SITE_CALL(ct_schedule_one_cycle, __VA_ARGS__)
#define ct_schedule_wsd(...) CT_SITE_CALL(ct_schedule_wsd, __VA_ARGS__)
#define ct_schedule_with_warmup(...) CT_SITE_CALL(ct_schedule_with_warmup, __VA_ARGS__)
#define ct_schedule_lr(...) CT_SITE_CALL(ct_schedule_lr, __VA_ARGS__)
#define ct_schedule_momentum(...) CT_SITE_CALL(ct_schedule_momentum, __VA_ARGS__)
#define ct_optim_schedule(...) CT_SITE_CALL_VOID(ct_optim_schedule, __VA_ARGS__)
#define ct_plateau_new(...) CT_SITE_CALL(ct_plateau_new, __VA_ARGS__)
#define ct_plateau_step(...) CT_SITE_CALL(ct_plateau_step, __VA_ARGS__)
#define ct_plateau_attach(...) CT_SITE_CALL_VOID(ct_plateau_attach, __VA_ARGS__)
#endif

#endif
