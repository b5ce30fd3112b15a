/* tests/optim/test_optim_literature.c — AdaBelief, Lion, LAMB, LARS, Adafactor and ADOPT against the
 * NumPy transcriptions of their papers' algorithm boxes (tests/reference/ref_literature.py →
 * literature_ref.h), then behaviour: each decreases a convex quadratic and reaches Rosenbrock's
 * minimum region within a budget; Lion's update is exactly lr·sign(·) (+ decay); Adafactor's
 * state is factored; ADOPT's first step only measures; state save/load resumes bit for bit;
 * bad options name the value. */
#include "../test.h"
#include "../../optim/optimizer.h" /* the optimizer's internals, as optimizer authors see them */
#include "../reference/literature_ref.h"

#include <stdlib.h>
#include <string.h>

#ifdef CT_PRECISION_64
#define REF_RTOL 1e-11
#define REF_ATOL 1e-12
#else
#define REF_RTOL 2e-5
#define REF_ATOL 5e-6
#endif

/* A model holding the reference's parameters, at their initial values. */
static ct_model *reference_model(void) {
    ct_model *m = ct_model_new();
    size_t at = 0;
    for (int k = 0; k < LIT_REF_PARAMS; k++) {
        ct_shape s = {.ndim = lit_ref_ndim[k]};
        for (int d = 0; d < s.ndim; d++) s.d[d] = lit_ref_shape[k][d];
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        ct_tensor *p = ct_model_add_param(m, name, s);
        for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)lit_ref_initial[at + i];
        at += p->size;
    }
    return m;
}

/* The optimizer of each reference case (same names and options as ref_literature.py's CASES). */
static ct_optim *optimizer_for(const char *name, ct_model *m) {
    if (!strcmp(name, "adabelief")) return ct_adabelief_new(m, CT_ADABELIEF(.lr = 0.01));
    if (!strcmp(name, "adabelief_decoupled")) return ct_adabelief_new(m, CT_ADABELIEF(.lr = 0.01, .weight_decay = 0.1));
    if (!strcmp(name, "adabelief_l2"))
        return ct_adabelief_new(m, CT_ADABELIEF(.lr = 0.01, .weight_decay = 0.1, .decoupled = 0));
    if (!strcmp(name, "adabelief_betas_eps"))
        return ct_adabelief_new(m, CT_ADABELIEF(.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-8));
    if (!strcmp(name, "lion")) return ct_lion_new(m, CT_LION(.lr = 0.01));
    if (!strcmp(name, "lion_decay")) return ct_lion_new(m, CT_LION(.lr = 0.01, .weight_decay = 0.5));
    if (!strcmp(name, "lion_betas")) return ct_lion_new(m, CT_LION(.lr = 0.003, .beta1 = 0.95, .beta2 = 0.98));
    if (!strcmp(name, "lamb")) return ct_lamb_new(m, CT_LAMB(.lr = 0.01));
    if (!strcmp(name, "lamb_no_decay")) return ct_lamb_new(m, CT_LAMB(.lr = 0.02, .weight_decay = 0));
    if (!strcmp(name, "lamb_betas"))
        return ct_lamb_new(m, CT_LAMB(.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1, .eps = 1e-8));
    if (!strcmp(name, "lars")) return ct_lars_new(m, CT_LARS());
    if (!strcmp(name, "lars_no_momentum")) return ct_lars_new(m, CT_LARS(.lr = 5, .momentum = 0, .weight_decay = 0));
    if (!strcmp(name, "lars_trust"))
        return ct_lars_new(m, CT_LARS(.lr = 2, .momentum = 0.5, .weight_decay = 0.01, .trust_coefficient = 0.02));
    if (!strcmp(name, "adafactor")) return ct_adafactor_new(m, CT_ADAFACTOR());
    if (!strcmp(name, "adafactor_lr")) return ct_adafactor_new(m, CT_ADAFACTOR(.lr = 0.05, .relative_step = 0));
    if (!strcmp(name, "adafactor_momentum_decay"))
        return ct_adafactor_new(m, CT_ADAFACTOR(.beta1 = 0.9, .weight_decay = 0.1));
    if (!strcmp(name, "adafactor_unscaled_clip"))
        return ct_adafactor_new(m, CT_ADAFACTOR(.lr = 0.1, .relative_step = 0, .scale_parameter = 0,
                                                .clip_threshold = 0.5, .decay_rate = -0.5));
    if (!strcmp(name, "adopt")) return ct_adopt_new(m, CT_ADOPT(.lr = 0.01));
    if (!strcmp(name, "adopt_l2")) return ct_adopt_new(m, CT_ADOPT(.lr = 0.01, .weight_decay = 0.1));
    if (!strcmp(name, "adopt_decoupled")) return ct_adopt_new(m, CT_ADOPT(.lr = 0.01, .weight_decay = 0.1, .decoupled = 1));
    if (!strcmp(name, "adopt_unclipped"))
        return ct_adopt_new(m, CT_ADOPT(.lr = 0.02, .beta1 = 0.5, .beta2 = 0.9, .clip = 0));
    return NULL;
}

static void feed_reference_grads(ct_model *m, int step) {
    size_t at = 0;
    for (int k = 0; k < LIT_REF_PARAMS; k++) {
        ct_tensor *p = ct_model_param(m, k);
        for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)lit_ref_grads[step][at + i];
        at += p->size;
    }
}

CT_TEST(optim_literature, trajectories_match_paper_references) {
    double worst = 0;
    for (int c = 0; c < LIT_REF_COUNT; c++) {
        const lit_ref_case *rc = &lit_ref_cases[c];
        ct_model *m = reference_model();
        ct_optim *opt = optimizer_for(rc->name, m);
        CHECK(opt, "no optimizer for the reference case %s (%s)", rc->name, rc->options);
        for (int step = 0; step < LIT_REF_STEPS; step++) {
            feed_reference_grads(m, step);
            CHECK(ct_optim_step(opt) == CT_OK);
            size_t at = 0;
            for (int k = 0; k < LIT_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++, at++) {
                    double got = p->data[i], want = rc->after[step][at];
                    CHECK(fabs(got - want) <= REF_ATOL + REF_RTOL * fabs(want),
                          "%s = %s step %d: %s[%zu] = %.10g, reference %.10g", rc->name, rc->options, step + 1,
                          p->name, i, got, want);
                    CHECK(p->grad[i] == 0, "%s step %d: %s.grad[%zu] not zeroed", rc->name, step + 1, p->name, i);
                    worst = fmax(worst, fabs(got - want) / (1e-3 + fabs(want)));
                }
            }
        }
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("%d settings x %d steps x %d values, worst rel err %.1e", LIT_REF_COUNT, LIT_REF_STEPS, LIT_REF_TOTAL,
                 worst);
}

/* ---- behaviour on test functions ---------------------------------------------------------- */
typedef struct {
    const char *name;
    ct_optim *(*make)(ct_model *m, double lr);
    double quad_lr, rosen_lr; /* "the usual" lr for each problem */
    long rosen_steps;
} lit_entry;

static ct_optim *make_adabelief(ct_model *m, double lr) { return ct_adabelief_new(m, CT_ADABELIEF(.lr = lr)); }
static ct_optim *make_lion(ct_model *m, double lr) { return ct_lion_new(m, CT_LION(.lr = lr)); }
static ct_optim *make_lamb(ct_model *m, double lr) { return ct_lamb_new(m, CT_LAMB(.lr = lr, .weight_decay = 0)); }
static ct_optim *make_lars(ct_model *m, double lr) { return ct_lars_new(m, CT_LARS(.lr = lr, .weight_decay = 0)); }
static ct_optim *make_adafactor(ct_model *m, double lr) {
    /* lr 0: the paper's relative step; else a fixed lr with momentum (sign-like steps need it in
     * Rosenbrock's curved valley) */
    return lr > 0 ? ct_adafactor_new(m, CT_ADAFACTOR(.lr = lr, .relative_step = 0, .beta1 = 0.9))
                  : ct_adafactor_new(m, CT_ADAFACTOR());
}
static ct_optim *make_adopt(ct_model *m, double lr) { return ct_adopt_new(m, CT_ADOPT(.lr = lr)); }

static const lit_entry lit_optimizers[] = {
    {"adabelief", make_adabelief, 0.05, 0.05, 4000},
    {"lion", make_lion, 0.02, 0.005, 4000},
    {"lamb", make_lamb, 0.02, 0.05, 4000},
    {"lars", make_lars, 5, 10, 4000},
    {"adafactor", make_adafactor, 0, 0.05, 4000},
    {"adopt", make_adopt, 0.05, 0.5, 4000},
};
#define N_LIT (int)(sizeof lit_optimizers / sizeof lit_optimizers[0])

/* f(x) = ½ Σ aᵢ(xᵢ − cᵢ)², aᵢ from 1 to 10 (condition number 10), over a matrix and a vector. */
static double quadratic(ct_model *m, int with_grad) {
    double f = 0;
    for (int k = 0; k < ct_model_param_count(m); k++) {
        ct_tensor *p = ct_model_param(m, k);
        for (size_t i = 0; i < p->size; i++) {
            double a = 1 + 9.0 * (double)((i * 7 + (size_t)k) % 10) / 9, c = 0.5 + 0.1 * (double)(i % 5);
            double d = p->data[i] - c;
            f += 0.5 * a * d * d;
            if (with_grad) p->grad[i] = (ct_real)(a * d);
        }
    }
    return f;
}

CT_TEST(optim_literature, each_decreases_a_convex_quadratic) {
    char notes[512] = "";
    for (int e = 0; e < N_LIT; e++) {
        ct_model *m = ct_model_new();
        ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(6, 5));
        ct_tensor *b = ct_model_add_param(m, "b", CT_SHAPE(5));
        for (size_t i = 0; i < w->size; i++) w->data[i] = (ct_real)(1.5 - 0.1 * (double)(i % 7));
        for (size_t i = 0; i < b->size; i++) b->data[i] = (ct_real)(-1.0 + 0.2 * (double)i);
        ct_optim *opt = lit_optimizers[e].make(m, lit_optimizers[e].quad_lr);
        ct_schedule sched = ct_schedule_cosine(lit_optimizers[e].quad_lr, 1000, 0);
        const double f0 = quadratic(m, 0);
        for (int step = 0; step < 1000; step++) {
            if (lit_optimizers[e].quad_lr > 0) ct_optim_schedule(opt, &sched);
            quadratic(m, 1);
            ct_optim_step(opt);
        }
        const double f1 = quadratic(m, 0);
        CHECK(f1 < 1e-2 * f0, "%s: f %.4g -> %.4g in 1000 steps", lit_optimizers[e].name, f0, f1);
        size_t used = strlen(notes);
        snprintf(notes + used, sizeof notes - used, "%s%s %.0e", used ? ", " : "", lit_optimizers[e].name, f1 / f0);
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("f/f0 after 1000 steps: %s", notes);
}

/* Rosenbrock f(x, y) = (1 − x)² + 100(y − x²)² from (−1.2, 1), with a cosine schedule over the
 * budget: every method must end within 0.05 of the minimum (1, 1). */
static double rosenbrock(const ct_real *p, ct_real *g) {
    double x = p[0], y = p[1];
    if (g) {
        g[0] = (ct_real)(-2 * (1 - x) - 400 * x * (y - x * x));
        g[1] = (ct_real)(200 * (y - x * x));
    }
    return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
}

CT_TEST(optim_literature, each_reaches_rosenbrock_minimum) {
    char notes[512] = "";
    for (int e = 0; e < N_LIT; e++) {
        const lit_entry *le = &lit_optimizers[e];
        ct_model *m = ct_model_new();
        ct_tensor *p = ct_model_add_param(m, "xy", CT_SHAPE(2));
        p->data[0] = (ct_real)-1.2;
        p->data[1] = 1;
        ct_optim *opt = le->make(m, le->rosen_lr);
        ct_schedule sched = ct_schedule_cosine(le->rosen_lr, le->rosen_steps, 0);
        long reached = -1;
        for (long step = 0; step < le->rosen_steps; step++) {
            if (le->rosen_lr > 0) ct_optim_schedule(opt, &sched);
            rosenbrock(p->data, p->grad);
            ct_optim_step(opt);
            double dist = hypot(p->data[0] - 1.0, p->data[1] - 1.0);
            if (dist < 0.05 && reached < 0) reached = step + 1;
        }
        double dist = hypot(p->data[0] - 1.0, p->data[1] - 1.0);
        CHECK(dist < 0.05, "%s (lr %g, %ld steps): ends at (%.4f, %.4f), f = %.3g", le->name, le->rosen_lr,
              le->rosen_steps, (double)p->data[0], (double)p->data[1], rosenbrock(p->data, NULL));
        size_t used = strlen(notes);
        snprintf(notes + used, sizeof notes - used, "%s%s %ld", used ? ", " : "", le->name, reached);
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("steps to within 0.05 of (1, 1): %s", notes);
}

/* ---- exact properties ------------------------------------------------------------------------ */
/* Lion: every coordinate moves by exactly lr·sign(β₁m + (1−β₁)g), or 0; with decay, the
 * parameter is first scaled by exactly (1 − lr·λ) in ct_real. A group without decay (biases)
 * moves by the pure sign step. */
CT_TEST(optim_literature, lion_update_is_exactly_lr_sign) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(40, 50));
    ct_tensor *b = ct_model_add_param(m, "b", CT_SHAPE(50));
    const double lr = 0.0078125, wd = 0.25;
    ct_optim *opt = ct_lion_new(m, CT_LION(.lr = lr, .weight_decay = wd));
    ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.weight_decay = 0));
    ct_rng rng;
    ct_rng_seed(&rng, 9);
    ct_tensor_fill_normal(w, &rng, 0, 1);
    ct_tensor_fill_normal(b, &rng, 0, 1);
    ct_real *mw = calloc(w->size, sizeof *mw), *mb = calloc(b->size, sizeof *mb);
    ct_real *xw = malloc(w->size * sizeof *xw), *xb = malloc(b->size * sizeof *xb);
    const ct_real b1 = (ct_real)0.9, b2 = (ct_real)0.99, lr_r = (ct_real)lr, keep = (ct_real)(1 - lr * wd);
    long moved = 0, still = 0;
    for (int step = 0; step < 5; step++) {
        for (size_t i = 0; i < w->size; i++) w->grad[i] = (ct_real)ct_rng_normal(&rng, 0, 1);
        for (size_t i = 0; i < b->size; i++) b->grad[i] = step == 2 && i < 5 ? 0 : (ct_real)ct_rng_normal(&rng, 0, 1);
        if (step == 0)
            for (size_t i = 0; i < 5; i++) b->grad[i] = 0; /* c = 0: sign 0, no move */
        memcpy(xw, w->data, w->size * sizeof *xw);
        memcpy(xb, b->data, b->size * sizeof *xb);
        ct_real gw[2000], gb[50];
        memcpy(gw, w->grad, sizeof gw);
        memcpy(gb, b->grad, sizeof gb);
        CHECK(ct_optim_step(opt) == CT_OK);
        for (size_t i = 0; i < w->size; i++) {
            ct_real c = b1 * mw[i] + (1 - b1) * gw[i], sign = (ct_real)(c > 0) - (ct_real)(c < 0);
            ct_real want = keep * xw[i] - lr_r * sign;
            /* within one rounding: the library's kernel may fuse keep·x − lr·sign into one FMA,
             * depending on the CPU it runs on; the exact move by lr is checked on b (λ = 0) */
            const double one_rounding =
                (fabs((double)(keep * xw[i])) + lr) * (sizeof(ct_real) == 4 ? 0x1p-23 : 0x1p-52);
            CHECK(fabs((double)w->data[i] - (double)want) <= one_rounding,
                  "step %d: w[%zu] = %.9g, want (1 − lr·λ)·%.9g − lr·%g = %.9g", step + 1, i, (double)w->data[i],
                  (double)xw[i], (double)sign, (double)want);
            mw[i] = b2 * mw[i] + (1 - b2) * gw[i];
        }
        for (size_t i = 0; i < b->size; i++) {
            ct_real c = b1 * mb[i] + (1 - b1) * gb[i], sign = (ct_real)(c > 0) - (ct_real)(c < 0);
            ct_real delta = b->data[i] - xb[i];
            CHECK(b->data[i] == xb[i] - lr_r * sign, "step %d: b[%zu] moved by %.9g, sign %g", step + 1, i,
                  (double)delta, (double)sign);
            moved += sign != 0;
            still += sign == 0;
            mb[i] = b2 * mb[i] + (1 - b2) * gb[i];
        }
    }
    CHECK(still >= 5, "the zero-gradient coordinates at step 1 did not stay still (%ld)", still);
    ct_test_note("%ld bias moves of exactly ±lr, %ld exact zeros; weights (1 − lr·λ)·θ − lr·sign", moved, still);
    free(mw);
    free(mb);
    free(xw);
    free(xb);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* Adafactor keeps rows + columns for a matrix (the view (size(0), rest) for rank > 2), and the
 * full second moment only for vectors. */
CT_TEST(optim_literature, adafactor_state_is_factored) {
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "fc.weight", CT_SHAPE(64, 32));
    ct_model_add_param(m, "conv.weight", CT_SHAPE(8, 4, 3, 3));
    ct_model_add_param(m, "fc.bias", CT_SHAPE(64));
    ct_optim *opt = ct_adafactor_new(m, CT_ADAFACTOR());
    int row = ct_optim_find_state(opt, "exp_avg_sq_row"), col = ct_optim_find_state(opt, "exp_avg_sq_col");
    int full = ct_optim_find_state(opt, "exp_avg_sq");
    CHECK(row >= 0 && col >= 0 && full >= 0 && ct_optim_find_state(opt, "exp_avg") < 0);
    CHECK(ct_optim_state_tensor(opt, row, 0)->size == 64 && ct_optim_state_tensor(opt, col, 0)->size == 32);
    CHECK(ct_optim_state_tensor(opt, full, 0) == NULL && ct_optim_state_tensor(opt, row, 2) == NULL);
    CHECK(ct_optim_state_tensor(opt, row, 1)->size == 8 && ct_optim_state_tensor(opt, col, 1)->size == 36);
    CHECK(ct_optim_state_tensor(opt, full, 2)->size == 64);
    ct_test_note("state for 2048 + 288 + 64 parameters: %d values", 64 + 32 + 8 + 36 + 64);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* ADOPT's first step only measures v = g²: the parameters do not move. */
CT_TEST(optim_literature, adopt_first_step_only_measures) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(4));
    ct_optim *opt = ct_adopt_new(m, CT_ADOPT(.lr = 0.1, .weight_decay = 0.1, .decoupled = 1));
    for (int i = 0; i < 4; i++) w->data[i] = (ct_real)(i + 1), w->grad[i] = (ct_real)(2 - i);
    ct_optim_step(opt);
    const ct_real *v = ct_optim_state(opt, ct_optim_find_state(opt, "exp_avg_sq"), 0);
    for (int i = 0; i < 4; i++) {
        CHECK(w->data[i] == (ct_real)(i + 1), "w[%d] moved on the first step", i);
        CHECK(v[i] == (ct_real)((2 - i) * (2 - i)), "v[%d] = %g", i, (double)v[i]);
    }
    ct_optim_free(opt);
    ct_model_free(m);
}

/* Save after 3 steps, load into a fresh optimizer on a fresh model at the saved parameters, and
 * continue: the parameters are bit for bit those of the uninterrupted run. */
CT_TEST(optim_literature, resume_from_saved_state_is_exact) {
    const char *names[] = {"adabelief", "lion_decay", "lamb", "lars", "adafactor_momentum_decay", "adopt"};
    char path[600];
    snprintf(path, sizeof path, "%s/opt.safetensors", ct_test_tmpdir());
    for (size_t c = 0; c < sizeof names / sizeof names[0]; c++) {
        ct_model *a = reference_model();
        ct_optim *oa = optimizer_for(names[c], a);
        for (int step = 0; step < 3; step++) {
            feed_reference_grads(a, step);
            ct_optim_step(oa);
        }
        CHECK(ct_optim_save(oa, path) == CT_OK, "%s: save: %s", names[c], ct_last_error());
        ct_model *b = reference_model();
        for (int k = 0; k < LIT_REF_PARAMS; k++)
            memcpy(ct_model_param(b, k)->data, ct_model_param(a, k)->data, ct_model_param(a, k)->size * sizeof(ct_real));
        ct_optim *ob = optimizer_for(names[c], b);
        CHECK(ct_optim_load(ob, path) == CT_OK, "%s: load: %s", names[c], ct_last_error());
        CHECK(ct_optim_steps(ob) == 3, "%s: %ld steps after load", names[c], ct_optim_steps(ob));
        for (int step = 3; step < LIT_REF_STEPS; step++) {
            feed_reference_grads(a, step);
            feed_reference_grads(b, step);
            ct_optim_step(oa);
            ct_optim_step(ob);
        }
        for (int k = 0; k < LIT_REF_PARAMS; k++)
            CHECK(memcmp(ct_model_param(a, k)->data, ct_model_param(b, k)->data,
                         ct_model_param(a, k)->size * sizeof(ct_real)) == 0,
                  "%s: parameter %d differs after resuming", names[c], k);
        ct_optim_free(oa);
        ct_optim_free(ob);
        ct_model_free(a);
        ct_model_free(b);
    }
}

/* ---- errors ------------------------------------------------------------------------------- */
static ct_model *one_param_model(void) {
    ct_model *m = ct_model_new();
    ct_model_add_param(m, "w", CT_SHAPE(2));
    return m;
}
static void bad_lion(void *arg) { (void)arg; ct_lion_new(one_param_model(), CT_LION(.beta2 = 1.5)); }
static void bad_adabelief(void *arg) { (void)arg; ct_adabelief_new(one_param_model(), CT_ADABELIEF(.beta1 = 1)); }
static void bad_lamb(void *arg) { (void)arg; ct_lamb_new(one_param_model(), CT_LAMB(.weight_decay = -0.1)); }
static void bad_lars(void *arg) { (void)arg; ct_lars_new(one_param_model(), CT_LARS(.trust_coefficient = 0)); }
static void bad_adafactor_lr(void *arg) { (void)arg; ct_adafactor_new(one_param_model(), CT_ADAFACTOR(.lr = 0.01)); }
static void bad_adafactor_decay(void *arg) {
    (void)arg;
    ct_adafactor_new(one_param_model(), CT_ADAFACTOR(.decay_rate = 0.8));
}
static void bad_adopt(void *arg) { (void)arg; ct_adopt_new(one_param_model(), CT_ADOPT(.lr = -1)); }

CT_TEST(optim_literature, bad_options_name_the_value) {
    struct {
        void (*body)(void *);
        const char *want;
    } cases[] = {
        {bad_lion, "ct_lion_new: beta2 1.5 must be in [0, 1]"},
        {bad_adabelief, "ct_adabelief_new: beta1 1 must be in [0, 1)"},
        {bad_lamb, "ct_lamb_new: weight_decay -0.1 must be finite and >= 0"},
        {bad_lars, "ct_lars_new: trust_coefficient 0 must be finite and > 0"},
        {bad_adafactor_lr, "ct_adafactor_new: lr 0.01 with relative_step"},
        {bad_adafactor_decay, "ct_adafactor_new: decay_rate 0.8 must be < 0"},
        {bad_adopt, "ct_adopt_new: lr -1 must be finite and >= 0"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(ct_test_expect_fatal(cases[i].body, NULL, cases[i].want, got, sizeof got), "want \"%s\", got: %s",
              cases[i].want, got);
}

/* ---- wrappers: Lookahead, SAM, EMA against ref_literature.py ---------------------------------- */
/* ∇f for f(θ) = Σᵢ ½aᵢ(θᵢ − cᵢ)² + θᵢ⁴/40 over the model's parameters, flat index i. */
static double wrap_objective(ct_model *m) {
    double f = 0;
    size_t i = 0;
    for (int k = 0; k < ct_model_param_count(m); k++) {
        ct_tensor *p = ct_model_param(m, k);
        for (size_t j = 0; j < p->size; j++, i++) {
            double a = 1.0 + (double)(i % 5), c = 0.3 * ((double)(i % 7) - 3), x = p->data[j];
            f += 0.5 * a * (x - c) * (x - c) + x * x * x * x / 40;
            p->grad[j] += (ct_real)(a * (x - c) + 0.1 * x * x * x);
        }
    }
    return f;
}

static double wrap_closure(void *ctx) { return wrap_objective(ctx); }

/* (not inlined: GCC 12 at -O3 misreads strcmp on the inlined table as a size mismatch) */
__attribute__((noinline)) static const lit_wrap_case *wrap_case(const char *name) {
    for (int c = 0; c < LIT_WRAP_COUNT; c++)
        if (!strcmp(lit_wrap_cases[c].name, name)) return &lit_wrap_cases[c];
    return NULL;
}

/* Compares the model's parameters (or the given tensors) with a reference row. */
static int wrap_matches(const lit_wrap_case *rc, int step, ct_tensor *const *ts, int n, double *worst) {
    size_t at = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < ts[k]->size; i++, at++) {
            double got = ts[k]->data[i], want = rc->after[step][at];
            if (!(fabs(got - want) <= REF_ATOL + REF_RTOL * fabs(want))) {
                ct_test_fail(__FILE__, __LINE__, "%s step %d: value %zu = %.10g, reference %.10g", rc->options,
                             step + 1, at, got, want);
                return 0;
            }
            *worst = fmax(*worst, fabs(got - want) / (1e-3 + fabs(want)));
        }
    return 1;
}

CT_TEST(optim_literature, wrappers_match_paper_references) {
    double worst = 0;
    const char *optim_cases[] = {"lookahead_sgd_momentum", "lookahead_lion", "sam_sgd", "sam_adaptive_momentum"};
    for (int c = 0; c < 4; c++) {
        const lit_wrap_case *rc = wrap_case(optim_cases[c]);
        CHECK(rc, "no reference case %s", optim_cases[c]);
        ct_model *m = reference_model();
        ct_optim *opt;
        if (c == 0) opt = ct_lookahead_new(ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9)), CT_LOOKAHEAD());
        else if (c == 1) opt = ct_lookahead_new(ct_lion_new(m, CT_LION(.lr = 0.01)), CT_LOOKAHEAD(.k = 3, .alpha = 0.8));
        else if (c == 2) opt = ct_sam_new(ct_sgd_new(m, CT_SGD(.lr = 0.05)), CT_SAM());
        else opt = ct_sam_new(ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = 0.9)), CT_SAM(.rho = 0.5, .adaptive = 1));
        ct_tensor *ps[LIT_REF_PARAMS];
        for (int k = 0; k < LIT_REF_PARAMS; k++) ps[k] = ct_model_param(m, k);
        for (int step = 0; step < LIT_WRAP_STEPS; step++) {
            if (c < 2) {
                wrap_objective(m);
                CHECK(ct_optim_step(opt) == CT_OK);
            } else {
                double before = 0;
                for (int k = 0; k < LIT_REF_PARAMS; k++) ct_tensor_zero_grad(ps[k]);
                before = wrap_objective(m);
                ct_optim_zero_grad(opt);
                double loss = ct_sam_step(opt, wrap_closure, m);
                CHECK(fabs(loss - before) <= 1e-6 * fabs(before), "ct_sam_step returned %g, the loss at θ is %g", loss,
                      before);
            }
            if (!wrap_matches(rc, step, ps, LIT_REF_PARAMS, &worst)) return;
            for (int k = 0; k < LIT_REF_PARAMS; k++)
                for (size_t i = 0; i < ps[k]->size; i++) CHECK(ps[k]->grad[i] == 0, "grad not zeroed");
        }
        CHECK(ct_optim_steps(opt) == LIT_WRAP_STEPS);
        ct_optim *inner = c < 2 ? ct_lookahead_base(opt) : ct_sam_base(opt);
        CHECK(ct_optim_steps(inner) == LIT_WRAP_STEPS, "%s: the base optimizer took %ld steps", rc->name,
              ct_optim_steps(inner));
        ct_optim_free(opt); /* frees the base too (LeakSanitizer checks) */
        ct_model_free(m);
    }
    /* EMA of an SGD trajectory */
    for (int c = 0; c < 2; c++) {
        const lit_wrap_case *rc = wrap_case(c == 0 ? "ema" : "ema_warmup");
        CHECK(rc);
        ct_model *m = reference_model();
        ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05, .momentum = c == 0 ? 0 : 0.5));
        ct_ema *ema = ct_ema_new(m, c == 0 ? CT_EMA(.decay = 0.9) : CT_EMA(.decay = 0.999, .warmup = 1));
        ct_tensor *avg[LIT_REF_PARAMS];
        for (int k = 0; k < LIT_REF_PARAMS; k++) avg[k] = ct_ema_average(ema, k);
        for (int step = 0; step < LIT_WRAP_STEPS; step++) {
            wrap_objective(m);
            ct_optim_step(opt);
            ct_ema_update(ema);
            if (!wrap_matches(rc, step, avg, LIT_REF_PARAMS, &worst)) return;
        }
        CHECK(ct_ema_updates(ema) == LIT_WRAP_STEPS);
        ct_ema_free(ema);
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("%d settings x %d steps, worst rel err %.1e", LIT_WRAP_COUNT, LIT_WRAP_STEPS, worst);
}

/* Swap in the averages for evaluation and back: exact exchange, twice is the identity; the EMA
 * saves as a file the model can load, and loads back with its update count. */
CT_TEST(optim_literature, ema_swap_and_save) {
    ct_model *m = reference_model();
    ct_optim *opt = ct_sgd_new(m, CT_SGD(.lr = 0.05));
    ct_ema *ema = ct_ema_new(m, CT_EMA(.decay = 0.5));
    for (int step = 0; step < 3; step++) {
        wrap_objective(m);
        ct_optim_step(opt);
        ct_ema_update(ema);
    }
    ct_tensor *p = ct_model_param(m, 0);
    ct_real train0 = p->data[0], avg0 = ct_ema_average(ema, 0)->data[0];
    CHECK(train0 != avg0);
    ct_ema_swap(ema);
    CHECK(ct_ema_swapped(ema) && p->data[0] == avg0 && ct_ema_average(ema, 0)->data[0] == avg0);
    char path[600];
    snprintf(path, sizeof path, "%s/ema.safetensors", ct_test_tmpdir());
    CHECK(ct_ema_save(ema, path) == CT_OK, "%s", ct_last_error());
    ct_ema_swap(ema);
    CHECK(!ct_ema_swapped(ema) && p->data[0] == train0 && ct_ema_average(ema, 0)->data[0] == avg0);
    /* the file is a model checkpoint of the averages */
    ct_model *m2 = reference_model();
    CHECK(ct_model_load(m2, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_model_param(m2, 0)->data[0] == avg0);
    ct_ema *ema2 = ct_ema_new(m2, CT_EMA(.decay = 0.5));
    CHECK(ct_ema_load(ema2, path) == CT_OK, "%s", ct_last_error());
    CHECK(ct_ema_updates(ema2) == 3 && ct_ema_average(ema2, 0)->data[0] == avg0);
    CHECK(ct_ema_load(ema2, "/nonexistent/ema.safetensors") != CT_OK);
    ct_ema_free(ema2);
    ct_model_free(m2);
    ct_ema_free(ema);
    ct_optim_free(opt);
    ct_model_free(m);
}

/* A schedule set on a wrapper reaches the base optimizer. */
CT_TEST(optim_literature, wrapper_lr_reaches_base) {
    ct_model *m = ct_model_new();
    ct_tensor *w = ct_model_add_param(m, "w", CT_SHAPE(1));
    ct_optim *opt = ct_lookahead_new(ct_sgd_new(m, CT_SGD(.lr = 1)), CT_LOOKAHEAD(.k = 1000));
    ct_schedule s = ct_schedule_step(0.5, 1, 0.5);
    double x = 0;
    for (int t = 0; t < 4; t++) {
        ct_optim_schedule(opt, &s);
        w->grad[0] = 1;
        ct_optim_step(opt);
        x -= 0.5 / (1 << t);
        CHECK(w->data[0] == (ct_real)x, "step %d: w = %g, want %g", t, (double)w->data[0], x);
    }
    CHECK(ct_optim_lr(ct_lookahead_base(opt)) == 0.0625);
    ct_optim_free(opt);
    ct_model_free(m);
}

static void sam_without_closure(void *arg) {
    (void)arg;
    ct_model *m = one_param_model();
    ct_optim_step(ct_sam_new(ct_sgd_new(m, CT_SGD()), CT_SAM()));
}
static void bad_lookahead(void *arg) {
    (void)arg;
    ct_lookahead_new(ct_sgd_new(one_param_model(), CT_SGD()), CT_LOOKAHEAD(.k = 0));
}
static void bad_ema(void *arg) { (void)arg; ct_ema_new(one_param_model(), CT_EMA(.decay = 1.5)); }
static void ema_update_while_swapped(void *arg) {
    (void)arg;
    ct_ema *e = ct_ema_new(one_param_model(), CT_EMA());
    ct_ema_swap(e);
    ct_ema_update(e);
}

CT_TEST(optim_literature, wrapper_errors) {
    struct {
        void (*body)(void *);
        const char *want;
    } cases[] = {
        {sam_without_closure, "SAM needs its closure for the second gradient: call ct_sam_step"},
        {bad_lookahead, "ct_lookahead_new: k 0 must be >= 1"},
        {bad_ema, "ct_ema_new: decay 1.5 must be in [0, 1]"},
        {ema_update_while_swapped, "ct_ema_update: the averages are swapped into the model"},
    };
    char got[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(ct_test_expect_fatal(cases[i].body, NULL, cases[i].want, got, sizeof got), "want \"%s\", got: %s",
              cases[i].want, got);
}

/* ---- real data: one epoch of MNIST train10k per optimizer ------------------------------------ */
/* A 784-128-10 ReLU MLP (kept small: six runs must stay within a few seconds), batch 32, one
 * epoch (313 steps) with a cosine schedule at each
 * optimizer's usual lr; every one must reach 90% test accuracy. */
static double mnist_epoch(const ct_dataset *train, const ct_dataset *test, int which) {
    ct_model *m = ct_model_new();
    ct_model_set_seed(m, 3);
    ct_module *fc1 = ct_linear_new(m, "fc1", 784, 128), *fc3 = ct_linear_new(m, "fc3", 128, 10);
    static const double lrs[] = {2e-3, 1e-3, 2e-2, 10.0, 3e-3, 2e-3};
    ct_optim *opt;
    switch (which) {
    case 0: opt = ct_adabelief_new(m, CT_ADABELIEF(.lr = lrs[0])); break;
    case 1: opt = ct_lion_new(m, CT_LION(.lr = lrs[1])); break;
    case 2: opt = ct_lamb_new(m, CT_LAMB(.lr = lrs[2])); break;
    case 3: opt = ct_lars_new(m, CT_LARS(.lr = lrs[3])); break;
    /* Adafactor with an external lr, as Hugging Face recommends outside pre-training (the relative
     * step, 0.01·RMS(θ) for these small initial weights, reaches about 89% in one epoch) */
    case 4: opt = ct_adafactor_new(m, CT_ADAFACTOR(.lr = lrs[4], .relative_step = 0, .scale_parameter = 0)); break;
    default: opt = ct_adopt_new(m, CT_ADOPT(.lr = lrs[5])); break;
    }
    ct_tape *tape = ct_tape_new();
    ct_loader *l = ct_loader_new(train, CT_LOADER(.batch = 32, .seed = 5, .flatten = 1));
    ct_schedule sched = ct_schedule_cosine(lrs[which], ct_loader_batches_per_epoch(l), 0);
    ct_batch b;
    while (ct_loader_next(l, &b)) {
        ct_optim_schedule(opt, &sched);
        ct_tensor *h = ct_relu(tape, ct_forward(tape, fc1, b.x));
        ct_backward(tape, ct_cross_entropy(tape, ct_forward(tape, fc3, h), b.y, CT_CE()));
        ct_optim_step(opt);
        ct_tape_reset(tape);
    }
    ct_loader_free(l);
    l = ct_loader_new(test, CT_LOADER(.batch = 1000, .shuffle = 0, .flatten = 1));
    ct_tape_grad_enabled(tape, 0);
    long correct = 0;
    while (ct_loader_next(l, &b)) {
        ct_tensor *h = ct_relu(tape, ct_forward(tape, fc1, b.x));
        ct_tensor *z = ct_forward(tape, fc3, h);
        for (int i = 0; i < b.n; i++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (z->data[i * 10 + k] > z->data[i * 10 + best]) best = k;
            correct += best == b.y.data[i];
        }
        ct_tape_reset(tape);
    }
    ct_loader_free(l);
    ct_tape_free(tape);
    ct_optim_free(opt);
    ct_model_free(m);
    return (double)correct / test->n;
}

CT_TEST(optim_literature, mnist_one_epoch_each_reaches_90) {
    const char *shared = ct_test_shared_data();
    if (!shared) CT_SKIP_NO_SHARED_DATA();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/mnist", shared);
    ct_dataset *train = ct_idx_load(dir, "train10k"), *test = train ? ct_idx_load(dir, "t10k") : NULL;
    if (!train || !test) {
        ct_dataset_free(train);
        CT_SKIP("MNIST train10k/t10k not readable: %s", ct_last_error());
    }
    const char *names[] = {"adabelief", "lion", "lamb", "lars", "adafactor", "adopt"};
    char notes[512] = "";
    int failed = -1;
    double acc[6];
    for (int k = 0; k < 6; k++) {
        acc[k] = mnist_epoch(train, test, k);
        if (acc[k] < 0.90 && failed < 0) failed = k;
        size_t used = strlen(notes);
        snprintf(notes + used, sizeof notes - used, "%s%s %.1f%%", k ? ", " : "", names[k], 100 * acc[k]);
    }
    ct_dataset_free(test);
    ct_dataset_free(train);
    CHECK(failed < 0, "%s: %.2f%% after one epoch (%s)", failed >= 0 ? names[failed] : "", failed >= 0 ? 100 * acc[failed] : 0.0,
          notes);
    ct_test_note("%s", notes);
}
