/* tests/optim/test_schedule.c — learning-rate schedules against torch.optim.lr_scheduler
 * (tests/reference/schedules_ref.h: 64 steps of each, as PyTorch produced them), WSD against its
 * formula, reduce-on-plateau against ReduceLROnPlateau, warmup composition, purity, the optimizer
 * hook, and errors. */
#include "../test.h"
#include "../reference/schedules_ref.h"

#include <limits.h>
#include <string.h>

/* PyTorch computes several schedules recursively; the closed forms agree to rounding. */
#define SCHED_RTOL 1e-12
#define SCHED_ATOL 1e-15

static ct_schedule schedule_for(const char *name) {
    const double lr = SCHEDULE_REF_LR;
    static const long ms[] = {5, 12, 30}, ms_repeated[] = {4, 4, 20}, ms_warm[] = {10, 20};
    if (!strcmp(name, "step")) return ct_schedule_step(lr, 7, 0.5);
    if (!strcmp(name, "step_default_gamma")) return ct_schedule_step(lr, 10, 0.1);
    if (!strcmp(name, "multistep")) return ct_schedule_multistep(lr, ms, 3, 0.3);
    if (!strcmp(name, "multistep_repeated")) return ct_schedule_multistep(lr, ms_repeated, 3, 0.1);
    if (!strcmp(name, "exponential")) return ct_schedule_exponential(lr, 0.95);
    if (!strcmp(name, "polynomial")) return ct_schedule_polynomial(lr, 40, 2.0);
    if (!strcmp(name, "polynomial_linear")) return ct_schedule_polynomial(lr, 25, 1.0);
    if (!strcmp(name, "polynomial_sqrt")) return ct_schedule_polynomial(lr, 70, 0.5);
    if (!strcmp(name, "cosine")) return ct_schedule_cosine(lr, 64, 0);
    if (!strcmp(name, "cosine_past_t_max")) return ct_schedule_cosine(lr, 25, 0.001);
    if (!strcmp(name, "sgdr")) return ct_schedule_sgdr(lr, 5, 2, 0.01);
    if (!strcmp(name, "sgdr_fixed")) return ct_schedule_sgdr(lr, 7, 1, 0);
    if (!strcmp(name, "sgdr_mult3")) return ct_schedule_sgdr(lr, 3, 3, 0);
    if (!strcmp(name, "one_cycle")) return ct_schedule_one_cycle(0.5, 64, CT_ONE_CYCLE());
    if (!strcmp(name, "one_cycle_three_phase")) return ct_schedule_one_cycle(0.5, 64, CT_ONE_CYCLE(.three_phase = 1));
    if (!strcmp(name, "one_cycle_linear"))
        return ct_schedule_one_cycle(0.2, 80, CT_ONE_CYCLE(.pct_start = 0.25, .anneal = CT_ANNEAL_LINEAR,
                                                           .div_factor = 10, .final_div_factor = 100));
    if (!strcmp(name, "warmup_only")) return ct_schedule_with_warmup(ct_schedule_constant(lr), 10, 0.1);
    if (!strcmp(name, "warmup_default")) return ct_schedule_with_warmup(ct_schedule_constant(lr), 5, 1.0 / 3);
    if (!strcmp(name, "warmup_cosine")) return ct_schedule_with_warmup(ct_schedule_cosine(lr, 40, 0), 8, 0.01);
    if (!strcmp(name, "warmup_step")) return ct_schedule_with_warmup(ct_schedule_step(lr, 9, 0.5), 6, 0.25);
    if (!strcmp(name, "warmup_multistep"))
        return ct_schedule_with_warmup(ct_schedule_multistep(lr, ms_warm, 2, 0.1), 4, 0.5);
    if (!strcmp(name, "warmup_exponential")) return ct_schedule_with_warmup(ct_schedule_exponential(lr, 0.9), 5, 0.2);
    if (!strcmp(name, "warmup_polynomial"))
        return ct_schedule_with_warmup(ct_schedule_polynomial(lr, 30, 1.5), 10, 0.1);
    if (!strcmp(name, "warmup_sgdr")) return ct_schedule_with_warmup(ct_schedule_sgdr(lr, 6, 2, 0), 5, 0.1);
    return (ct_schedule){.kind = (ct_schedule_kind)-1};
}

CT_TEST(schedule, matches_pytorch) {
    double worst = 0;
    for (int c = 0; c < SCHEDULE_REF_COUNT; c++) {
        const schedule_ref_case *rc = &schedule_ref_cases[c];
        ct_schedule s = schedule_for(rc->name);
        CHECK((int)s.kind >= 0, "no ct_schedule for the reference case %s (%s)", rc->name, rc->torch);
        for (int t = 0; t < SCHEDULE_REF_STEPS; t++) {
            double got = ct_schedule_lr(&s, t), want = rc->lr[t];
            CHECK(fabs(got - want) <= SCHED_ATOL + SCHED_RTOL * fabs(want), "%s (torch %s) step %d: lr %.17g, PyTorch %.17g",
                  rc->name, rc->torch, t, got, want);
            if (want != 0) worst = fmax(worst, fabs(got - want) / fabs(want));
        }
    }
    ct_test_note("%d schedules x %d steps, worst rel err %.1e", SCHEDULE_REF_COUNT, SCHEDULE_REF_STEPS, worst);
}

static ct_plateau plateau_for(const char *name) {
    const double lr = SCHEDULE_REF_LR;
    if (!strcmp(name, "plateau_default")) return ct_plateau_new(lr, CT_PLATEAU());
    if (!strcmp(name, "plateau_patience")) return ct_plateau_new(lr, CT_PLATEAU(.factor = 0.5, .patience = 3));
    if (!strcmp(name, "plateau_cooldown"))
        return ct_plateau_new(lr, CT_PLATEAU(.factor = 0.5, .patience = 2, .cooldown = 4, .min_lr = 0.02));
    if (!strcmp(name, "plateau_abs"))
        return ct_plateau_new(lr, CT_PLATEAU(.patience = 2, .threshold = 0.01, .threshold_mode = CT_PLATEAU_ABS));
    if (!strcmp(name, "plateau_max")) return ct_plateau_new(lr, CT_PLATEAU(.mode = CT_PLATEAU_MAX, .factor = 0.3, .patience = 4));
    if (!strcmp(name, "plateau_max_abs"))
        return ct_plateau_new(lr, CT_PLATEAU(.mode = CT_PLATEAU_MAX, .patience = 1, .threshold = 0.02,
                                             .threshold_mode = CT_PLATEAU_ABS, .cooldown = 1));
    return (ct_plateau){.lr = -1};
}

CT_TEST(schedule, plateau_matches_pytorch) {
    int reductions = 0;
    for (int c = 0; c < PLATEAU_REF_COUNT; c++) {
        const schedule_ref_case *rc = &plateau_ref_cases[c];
        ct_plateau p = plateau_for(rc->name);
        CHECK(p.lr >= 0, "no ct_plateau for the reference case %s (%s)", rc->name, rc->torch);
        double sign = p.opts.mode == CT_PLATEAU_MAX ? -1 : 1, lr = p.lr;
        for (int t = 0; t < SCHEDULE_REF_STEPS; t++) {
            CHECK(fabs(lr - rc->lr[t]) <= 1e-15 + 1e-12 * rc->lr[t], "%s (torch %s) step %d: lr %.17g, PyTorch %.17g",
                  rc->name, rc->torch, t, lr, rc->lr[t]);
            if (t && rc->lr[t] < rc->lr[t - 1]) reductions++;
            lr = ct_plateau_step(&p, sign * plateau_ref_metric[t]);
        }
        CHECK(p.reports == SCHEDULE_REF_STEPS);
    }
    CHECK(reductions >= 2 * PLATEAU_REF_COUNT, "the reference exercises only %d reductions", reductions);
    ct_test_note("%d settings x %d reports, %d reductions", PLATEAU_REF_COUNT, SCHEDULE_REF_STEPS, reductions);
}

/* WSD has no torch scheduler: its formula, step by step, for each decay shape. */
CT_TEST(schedule, wsd_formula) {
    const ct_wsd_decay shapes[] = {CT_WSD_SQRT, CT_WSD_LINEAR, CT_WSD_COSINE};
    for (int k = 0; k < 3; k++) {
        ct_schedule s = ct_schedule_wsd(0.4, 100, CT_WSD(.warmup_steps = 10, .decay_steps = 30, .min_lr = 0.01,
                                                         .decay = shapes[k]));
        for (long t = 0; t < 110; t++) {
            double want;
            if (t < 10) want = 0.4 * (double)t / 10;
            else if (t < 70) want = 0.4;
            else if (t >= 100) want = 0.01;
            else {
                double p = (double)(t - 70) / 30;
                double d = shapes[k] == CT_WSD_SQRT ? 1 - sqrt(p) : shapes[k] == CT_WSD_LINEAR ? 1 - p : (1 + cos(M_PI * p)) / 2;
                want = 0.01 + (0.4 - 0.01) * d;
            }
            CHECK_NEAR(ct_schedule_lr(&s, t), want, 1e-15, 1e-13);
        }
    }
    /* defaults: no warmup, the last 20% decays (1 − √p) to 0 */
    ct_schedule s = ct_schedule_wsd(1.0, 50, CT_WSD());
    CHECK(ct_schedule_lr(&s, 0) == 1.0 && ct_schedule_lr(&s, 39) == 1.0);
    CHECK_NEAR(ct_schedule_lr(&s, 40), 1.0, 0, 0);
    CHECK_NEAR(ct_schedule_lr(&s, 45), 1 - sqrt(0.5), 1e-15, 1e-13);
    CHECK(ct_schedule_lr(&s, 50) == 0 && ct_schedule_lr(&s, 1000) == 0);
}

/* Warmup in front of anything: the warmup ramp, then the schedule from its own step 0; and the
 * schedule itself is untouched (a value, not a reference). */
CT_TEST(schedule, warmup_composes) {
    ct_schedule inner = ct_schedule_sgdr(0.3, 4, 2, 0.03);
    ct_schedule w = ct_schedule_with_warmup(inner, 7, 0);
    for (long t = 0; t < 7; t++) CHECK_NEAR(ct_schedule_lr(&w, t), 0.3 * (double)t / 7, 1e-16, 1e-14);
    for (long t = 0; t < 40; t++) CHECK(ct_schedule_lr(&w, t + 7) == ct_schedule_lr(&inner, t), "step %ld", t);
    CHECK(inner.warmup_steps == 0);
    ct_schedule none = ct_schedule_with_warmup(ct_schedule_exponential(0.1, 0.5), 0, 0.1);
    CHECK(ct_schedule_lr(&none, 0) == 0.1 && ct_schedule_lr(&none, 2) == 0.025);
}

/* Pure: asking in any order, or twice, gives the same value; late steps stay finite and sane. */
CT_TEST(schedule, pure_and_long_runs) {
    ct_schedule s = ct_schedule_with_warmup(ct_schedule_cosine(1.0, 1000, 0.1), 100, 0.0);
    double a = ct_schedule_lr(&s, 700), b = ct_schedule_lr(&s, 3);
    CHECK(ct_schedule_lr(&s, 700) == a && ct_schedule_lr(&s, 3) == b);
    ct_schedule sgdr = ct_schedule_sgdr(1.0, 10, 2, 0);
    double lr = ct_schedule_lr(&sgdr, 10L * ((1L << 40) - 1)); /* the first step of the 41st period */
    CHECK(lr == 1.0, "restart at 10·(2⁴⁰ − 1): lr %g", lr);
    CHECK(ct_schedule_lr(&sgdr, LONG_MAX) >= 0 && ct_schedule_lr(&sgdr, LONG_MAX) <= 1);
    ct_schedule oc = ct_schedule_one_cycle(1.0, 100, CT_ONE_CYCLE());
    CHECK_NEAR(ct_schedule_lr(&oc, 0), 1.0 / 25, 1e-16, 1e-14);
    CHECK_NEAR(ct_schedule_lr(&oc, 99), 1.0 / 25 / 1e4, 1e-16, 1e-12);
    CHECK(ct_schedule_lr(&oc, 5000) == ct_schedule_lr(&oc, 99), "one-cycle stays at its minimum after the end");
    ct_schedule poly = ct_schedule_polynomial(1.0, 10, 2);
    CHECK(ct_schedule_lr(&poly, 10) == 0 && ct_schedule_lr(&poly, 11) == 0);
}

/* ct_optim_schedule sets the lr of the optimizer's next step from its step count. */
CT_TEST(schedule, drives_an_optimizer) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 1));
    ct_schedule s = ct_schedule_with_warmup(ct_schedule_step(0.5, 2, 0.1), 2, 0.5);
    const double want[] = {0.25, 0.375, 0.5, 0.5, 0.05, 0.05};
    double x = 0;
    for (int t = 0; t < 6; t++) {
        ct_optim_schedule(opt, &s);
        CHECK_NEAR(ct_optim_lr(opt), want[t], 1e-16, 1e-14);
        w->grad[0] = 1;
        ct_optim_step(opt);
        x -= want[t];
        CHECK_NEAR(w->data[0], x, 1e-6, 1e-6);
    }
    ct_optim_free(opt);
    ct_model_free(m);
}

/* OneCycleLR's momentum: ct_schedule_momentum against PyTorch's group momentum (SGD) and
 * betas[0] (Adam) for 64 steps, and ct_optim_schedule setting it on the optimizer before each
 * step, as OneCycleLR does; the other schedules and cycle_momentum = 0 leave it alone. */
CT_TEST(schedule, one_cycle_momentum_matches_pytorch) {
    double worst = 0;
    for (int c = 0; c < MOMENTUM_REF_COUNT; c++) {
        const momentum_ref_case *rc = &momentum_ref_cases[c];
        const int adam = !strcmp(rc->optimizer, "adam");
        ct_schedule s = adam ? ct_schedule_one_cycle(0.2, 80, CT_ONE_CYCLE(.pct_start = 0.25, .anneal = CT_ANNEAL_LINEAR,
                                                                           .div_factor = 10, .final_div_factor = 100,
                                                                           .base_momentum = 0.8, .max_momentum = 0.9))
                             : schedule_for(rc->name);
        ct_model *m = ct_model_new();
        ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(1));
        ct_optim *opt = adam ? ct_adam_new(m, CT_ADAM(.lr = 0.1)) : ct_sgd_new(m, CT_SGD(.lr = 0.1, .momentum = 0.9));
        for (int t = 0; t < SCHEDULE_REF_STEPS; t++) {
            const double want = rc->momentum[t], got = ct_schedule_momentum(&s, t);
            CHECK(fabs(got - want) <= SCHED_ATOL + SCHED_RTOL * want, "%s step %d: momentum %.17g, PyTorch %.17g",
                  rc->name, t, got, want);
            ct_optim_schedule(opt, &s);
            CHECK(ct_optim_momentum(opt) == got, "%s step %d: the optimizer's momentum %.17g, the schedule's %.17g",
                  rc->name, t, ct_optim_momentum(opt), got);
            w->grad[0] = 1;
            ct_optim_step(opt);
            worst = fmax(worst, fabs(got - want) / want);
        }
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_schedule plain = ct_schedule_one_cycle(0.5, 64, CT_ONE_CYCLE(.cycle_momentum = 0)), cosine = ct_schedule_cosine(0.1, 10, 0);
    CHECK(isnan(ct_schedule_momentum(&plain, 3)) && isnan(ct_schedule_momentum(&cosine, 3)));
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1, .momentum = 0.7));
    ct_optim_schedule(opt, &plain);
    ct_optim_schedule(opt, &cosine);
    CHECK(ct_optim_momentum(opt) == 0.7, "momentum %g after schedules that leave it alone", ct_optim_momentum(opt));
    ct_optim *look = ct_lookahead_new(opt, CT_LOOKAHEAD()); /* a wrapper's is its base optimizer's */
    ct_optim_set_momentum(look, 0.5);
    CHECK(ct_optim_momentum(opt) == 0.5 && ct_optim_momentum(look) == 0.5);
    ct_optim_free(look);
    ct_model_free(m);
    /* a one-cycle with a warmup in front keeps its first momentum through the warmup */
    ct_schedule one = ct_schedule_one_cycle(0.5, 64, CT_ONE_CYCLE()), warm = ct_schedule_with_warmup(one, 5, 0.1);
    CHECK(ct_schedule_momentum(&warm, 0) == 0.95 && ct_schedule_momentum(&warm, 4) == 0.95);
    CHECK(ct_schedule_momentum(&warm, 5 + 7) == ct_schedule_momentum(&one, 7) && ct_schedule_momentum(&one, 7) < 0.95);
    ct_test_note("%d cases x %d steps, worst rel err %.1e", MOMENTUM_REF_COUNT, SCHEDULE_REF_STEPS, worst);
}

/* ct_plateau_attach: the tracker's state goes into the optimizer's file and comes back, so a run
 * resumed from a checkpoint after report 24 (mid-patience, after a cooldown) reduces the lr at
 * the same reports as one that ran through; a file saved without that state is refused and
 * changes nothing. */
static void attach_twice(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1));
    static ct_plateau p, q;
    p = ct_plateau_new(0.1, CT_PLATEAU()), q = p;
    ct_plateau_attach(&p, opt);
    ct_plateau_attach(&q, opt);
}

CT_TEST(schedule, plateau_state_resumes_from_a_checkpoint) {
    char path[512], plain_path[512];
    const char *dir = ct_test_tmpdir();
    snprintf(path, sizeof path, "%s/run.safetensors", dir);
    snprintf(plain_path, sizeof plain_path, "%s/plain.safetensors", dir);
    const ct_plateau_opts o = CT_PLATEAU(.factor = 0.5, .patience = 2, .cooldown = 1);
    double through[SCHEDULE_REF_STEPS];
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.1));
    ct_plateau p = ct_plateau_new(0.1, o);
    ct_plateau_attach(&p, opt);
    for (int s = 0; s < SCHEDULE_REF_STEPS; s++) {
        through[s] = ct_plateau_step(&p, plateau_ref_metric[s]);
        if (s == 24) CHECK(ct_checkpoint_save(opt, path) == CT_OK, "%s", ct_last_error());
    }
    int reductions = 0, after = 0;
    for (int s = 1; s < SCHEDULE_REF_STEPS; s++) reductions += through[s] < through[s - 1];
    for (int s = 26; s < SCHEDULE_REF_STEPS; s++) after += through[s] < through[s - 1];
    CHECK(after > 0, "no reduction after the checkpoint: the resumed part would show nothing");

    ct_model *m2 = ct_model_new();
    ct_model_add_param(m2, "w", CT_SHAPE(1));
    ct_optim *opt2 = ct_sgd_new(m2, CT_SGD(.lr = 0.1));
    ct_plateau q = ct_plateau_new(0.1, o);
    ct_plateau_attach(&q, opt2);
    CHECK(ct_checkpoint_load(opt2, path) == CT_OK, "%s", ct_last_error());
    CHECK(q.reports == 25, "reports %ld after loading", q.reports);
    for (int s = 25; s < SCHEDULE_REF_STEPS; s++) {
        const double lr = ct_plateau_step(&q, plateau_ref_metric[s]);
        CHECK(lr == through[s], "report %d: resumed lr %.17g, uninterrupted %.17g", s, lr, through[s]);
    }
    CHECK(q.best == p.best && q.bad_reports == p.bad_reports && q.cooldown_left == p.cooldown_left);

    /* saved without a tracker, loaded with one: refused, the tracker and the optimizer as they were */
    ct_model *m3 = ct_model_new();
    ct_model_add_param(m3, "w", CT_SHAPE(1));
    ct_optim *plain = ct_sgd_new(m3, CT_SGD(.lr = 0.3));
    CHECK(ct_checkpoint_save(plain, plain_path) == CT_OK, "%s", ct_last_error());
    const ct_plateau before = q;
    CHECK(ct_checkpoint_load(opt2, plain_path) == CT_ERR_FORMAT && strstr(ct_last_error(), "plateau.lr"), "got %s",
          ct_last_error());
    CHECK(q.lr == before.lr && q.reports == before.reports && ct_optim_lr(opt2) != 0.3);
    char got[512];
    CHECK(ct_test_expect_fatal(attach_twice, NULL, "ct_optim_add_scalar: sgd already has a scalar named \"plateau.lr\"",
                               got, sizeof got), "got %s", got);
    ct_optim_free(opt), ct_optim_free(opt2), ct_optim_free(plain);
    ct_model_free(m), ct_model_free(m2), ct_model_free(m3);
    ct_test_note("%d lr reductions over %d reports (%d after report 25), the same after resuming there", reductions,
                 SCHEDULE_REF_STEPS, after);
}

/* ---- errors ------------------------------------------------------------------------------- */
static void bad_step_size(void *arg) { (void)arg; ct_schedule_step(0.1, 0, 0.1); }
static void bad_lr(void *arg) { (void)arg; ct_schedule_cosine(-1, 10, 0); }
static void bad_milestones(void *arg) {
    (void)arg;
    const long ms[] = {10, 5};
    ct_schedule_multistep(0.1, ms, 2, 0.1);
}
static void bad_one_cycle(void *arg) { (void)arg; ct_schedule_one_cycle(0.1, 3, CT_ONE_CYCLE(.pct_start = 0.1)); }
static void bad_wsd(void *arg) { (void)arg; ct_schedule_wsd(0.1, 10, CT_WSD(.warmup_steps = 5, .decay_steps = 6)); }
static void bad_max_momentum(void *arg) { (void)arg; ct_schedule_one_cycle(0.1, 100, CT_ONE_CYCLE(.max_momentum = 1)); }
/* a one-cycle that cycles momentum on an optimizer without one: Adagrad, or SGD built with 0 */
static void cycle_momentum_on(void *arg) {
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = arg ? ct_adagrad_new(m, CT_ADAGRAD()) : ct_sgd_new(m, CT_SGD(.lr = 0.1));
    ct_schedule s = ct_schedule_one_cycle(0.1, 100, CT_ONE_CYCLE());
    ct_optim_schedule(opt, &s);
}
static void momentum_of_adagrad(void *arg) {
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = ct_adagrad_new(m, CT_ADAGRAD());
    if (arg) ct_optim_set_momentum(opt, 0.9);
    else ct_optim_momentum(opt);
}
static void bad_set_momentum(void *arg) {
    (void)arg;
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim_set_momentum(ct_adam_new(m, CT_ADAM()), 1.0);
}
static void double_warmup(void *arg) {
    (void)arg;
    ct_schedule_with_warmup(ct_schedule_wsd(0.1, 100, CT_WSD(.warmup_steps = 5)), 3, 0);
}
static void negative_step(void *arg) {
    (void)arg;
    ct_schedule s = ct_schedule_constant(1);
    ct_schedule_lr(&s, -1);
}
static void bad_plateau(void *arg) { (void)arg; ct_plateau_new(0.1, CT_PLATEAU(.factor = 1.0)); }
static void bad_sgdr(void *arg) { (void)arg; ct_schedule_sgdr(0.1, 10, 0, 0); }

CT_TEST(schedule, errors_name_the_value) {
    struct {
        void (*body)(void *);
        const char *want;
    } cases[] = {
        {bad_step_size, "ct_schedule_step: step_size 0 must be >= 1"},
        {bad_lr, "ct_schedule_cosine: lr -1 must be finite and >= 0"},
        {bad_milestones, "ct_schedule_multistep: milestones must not decrease: milestones[1] = 5 after 10"},
        {bad_one_cycle, "ct_schedule_one_cycle: phase 1 of 2 is empty with total_steps 3 and pct_start 0.1"},
        {bad_wsd, "ct_schedule_wsd: warmup_steps 5 + decay_steps 6 exceed total_steps 10"},
        {bad_max_momentum, "ct_schedule_one_cycle: max_momentum 1 must be in [0, 1)"},
        {bad_set_momentum, "ct_optim_set_momentum: momentum 1 must be in [0, 1)"},
        {double_warmup, "ct_schedule_with_warmup: the schedule already has a warmup of 5 steps"},
        {negative_step, "ct_schedule_lr: step -1 must be >= 0"},
        {bad_plateau, "ct_plateau_new: factor 1 must be in [0, 1)"},
        {bad_sgdr, "ct_schedule_sgdr: t_mult 0 must be >= 1"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(ct_test_expect_fatal(cases[i].body, NULL, cases[i].want, got, sizeof got), "want \"%s\", got: %s",
              cases[i].want, got);
    static int set = 1;
    CHECK(ct_test_expect_fatal(momentum_of_adagrad, &set, "ct_optim_set_momentum: adagrad has no momentum or beta1 to set",
                               got, sizeof got), "got: %s", got);
    CHECK(ct_test_expect_fatal(momentum_of_adagrad, NULL, "ct_optim_momentum: adagrad has no momentum or beta1", got,
                               sizeof got), "got: %s", got);
    static int adagrad = 1;
    CHECK(ct_test_expect_fatal(cycle_momentum_on, &adagrad, "ct_optim_schedule: the one-cycle schedule cycles the "
                               "momentum", got, sizeof got) && strstr(got, "this adagrad optimizer has none"), "got: %s", got);
    CHECK(ct_test_expect_fatal(cycle_momentum_on, NULL, "this sgd optimizer has none: build it with momentum > 0, or "
                               "set .cycle_momentum = 0", got, sizeof got), "got: %s", got);
}
