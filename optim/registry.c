/* optim/registry.c — the tables behind ct_optim_parse and ct_schedule_parse. Each default here is
 * the one of the optimizer's CT_* macro (tests/optim/test_optim_registry.c checks that they agree). */
#define CT_BUILDING_LIBRARY
#include "registry.h"

#include <string.h>

#define LR(def) {"lr", CT_SPEC_REAL, def, "[0, inf)", "learning rate"}
#define WD(def) {"weight_decay", CT_SPEC_REAL, def, "[0, inf)", "weight decay λ"}
#define BETAS(b1, b2) {"beta1", CT_SPEC_REAL, b1, "[0, 1)", "β₁"}, {"beta2", CT_SPEC_REAL, b2, "[0, 1)", "β₂"}
#define EPS(def) {"eps", CT_SPEC_REAL, def, "[0, inf)", "ε"}
#define FLAG(key, help) {key, CT_SPEC_INT, "0", "[0, 1]", help}

static const ct_spec_entry optimizers[] = {
    {"sgd", "SGD with momentum (torch.optim.SGD)",
     {LR("1e-3"), {"momentum", CT_SPEC_REAL, "0", "[0, 1)", "momentum μ"},
      {"dampening", CT_SPEC_REAL, "0", "[0, 1]", "dampening τ"}, WD("0"), FLAG("nesterov", "Nesterov momentum")}},
    {"adam", "Adam (Kingma & Ba 2015), L2 decay", {LR("1e-3"), BETAS("0.9", "0.999"), EPS("1e-8"), WD("0"), FLAG("amsgrad", "AMSGrad")}},
    {"adamw", "AdamW (Loshchilov & Hutter 2019), decoupled decay",
     {LR("1e-3"), BETAS("0.9", "0.999"), EPS("1e-8"), WD("0.01"), FLAG("amsgrad", "AMSGrad")}},
    {"adamax", "Adamax (Kingma & Ba, sec. 7.1)", {LR("2e-3"), BETAS("0.9", "0.999"), EPS("1e-8"), WD("0")}},
    {"nadam", "NAdam (Dozat 2016)",
     {LR("2e-3"), BETAS("0.9", "0.999"), EPS("1e-8"), WD("0"),
      {"momentum_decay", CT_SPEC_REAL, "4e-3", "[0, inf)", "ψ"}}},
    {"radam", "RAdam (Liu et al. 2020)", {LR("1e-3"), BETAS("0.9", "0.999"), EPS("1e-8"), WD("0")}},
    {"rmsprop", "RMSprop (torch.optim.RMSprop)",
     {LR("1e-2"), {"alpha", CT_SPEC_REAL, "0.99", "[0, 1)", "smoothing α"}, EPS("1e-8"), WD("0"),
      {"momentum", CT_SPEC_REAL, "0", "[0, 1)", "momentum μ"}, FLAG("centered", "centred variance")}},
    {"adagrad", "Adagrad (Duchi et al. 2011)",
     {LR("1e-2"), {"lr_decay", CT_SPEC_REAL, "0", "[0, inf)", "lr decay"}, WD("0"),
      {"initial_accumulator_value", CT_SPEC_REAL, "0", "[0, inf)", "starting sum"}, EPS("1e-10")}},
    {"adadelta", "Adadelta (Zeiler 2012)", {LR("1"), {"rho", CT_SPEC_REAL, "0.9", "[0, 1)", "ρ"}, EPS("1e-6"), WD("0")}},
    {"adabelief", "AdaBelief (Zhuang et al. 2020)",
     {LR("1e-3"), BETAS("0.9", "0.999"), EPS("1e-16"), WD("0"), {"decoupled", CT_SPEC_INT, "1", "[0, 1]", "decoupled decay"}}},
    {"lion", "Lion (Chen et al. 2023)", {LR("1e-4"), BETAS("0.9", "0.99"), WD("0")}},
    {"lamb", "LAMB (You et al. 2020)", {LR("1e-3"), BETAS("0.9", "0.999"), EPS("1e-6"), WD("0.01")}},
    {"lars", "LARS (You et al. 2017)",
     {LR("1"), {"momentum", CT_SPEC_REAL, "0.9", "[0, 1)", "momentum μ"}, WD("5e-4"),
      {"trust_coefficient", CT_SPEC_REAL, "1e-3", "(0, inf)", "η"}}},
    {"adafactor", "Adafactor (Shazeer & Stern 2018); relative_step=1 needs lr=0",
     {LR("0"), {"relative_step", CT_SPEC_INT, "1", "[0, 1]", "relative step size"},
      {"scale_parameter", CT_SPEC_INT, "1", "[0, 1]", "scale by RMS(θ)"}, {"beta1", CT_SPEC_REAL, "0", "[0, 1)", "β₁"},
      WD("0"), {"decay_rate", CT_SPEC_REAL, "-0.8", "[-1, 0]", "β̂₂ = 1 − t^decay_rate"},
      {"clip_threshold", CT_SPEC_REAL, "1", "(0, inf)", "update clipping d"}}},
    {"muon", "Muon (Jordan et al. 2024); the others by an SGD aux (aux_lr > 0)",
     {LR("0.02"), {"momentum", CT_SPEC_REAL, "0.95", "[0, 1)", "momentum μ"},
      {"nesterov", CT_SPEC_INT, "1", "[0, 1]", "Nesterov momentum"},
      {"ns_steps", CT_SPEC_INT, "5", "[1, 100]", "Newton-Schulz iterations"}, WD("0"),
      {"scale", CT_SPEC_CHOICE, "shape", "shape|none", "update × √max(1, rows/cols), or 1"},
      FLAG("normalize_weights", "θ ← θ·√rows/‖θ‖ each step (airbench94_muon)"),
      {"select", CT_SPEC_CHOICE, "all", "all|matrices|filters", "Muon's parameters: all, ndim >= 2, ndim == 4"},
      {"aux_lr", CT_SPEC_REAL, "0", "[0, inf)", "lr of the SGD that trains the others (0: none)"},
      {"aux_momentum", CT_SPEC_REAL, "0.9", "[0, 1)", "its momentum (Nesterov when > 0)"},
      {"aux_weight_decay", CT_SPEC_REAL, "0", "[0, inf)", "its weight decay λ"}}},
    {"adopt", "ADOPT (Taniguchi et al. 2024)",
     {LR("1e-3"), BETAS("0.9", "0.9999"), EPS("1e-6"), WD("0"), FLAG("decoupled", "decoupled decay"),
      {"clip", CT_SPEC_INT, "1", "[0, 1]", "clipped (revised) version"}}},
};
enum { N_OPTIMIZERS = sizeof optimizers / sizeof *optimizers };

#define V(key) ct_spec_num(&s, key)

static ct_optim *build_optimizer(ct_model *m, const ct_spec *s_) {
    const ct_spec s = *s_;
    const char *name = s.entry->name;
    if (!strcmp(name, "sgd"))
        return ct_sgd_new(m, CT_SGD(.lr = V("lr"), .momentum = V("momentum"), .dampening = V("dampening"),
                                    .weight_decay = V("weight_decay"), .nesterov = (int)V("nesterov")));
    if (!strcmp(name, "adam") || !strcmp(name, "adamw")) {
        const ct_adam_opts o = CT_ADAM(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"), .eps = V("eps"),
                                       .weight_decay = V("weight_decay"), .amsgrad = (int)V("amsgrad"));
        return name[4] ? ct_adamw_new(m, o) : ct_adam_new(m, o);
    }
    if (!strcmp(name, "adamax") || !strcmp(name, "radam"))
        return (name[0] == 'a' ? ct_adamax_new : ct_radam_new)(
            m, CT_ADAM(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"), .eps = V("eps"),
                       .weight_decay = V("weight_decay")));
    if (!strcmp(name, "nadam"))
        return ct_nadam_new(m, CT_NADAM(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"), .eps = V("eps"),
                                        .weight_decay = V("weight_decay"), .momentum_decay = V("momentum_decay")));
    if (!strcmp(name, "rmsprop"))
        return ct_rmsprop_new(m, CT_RMSPROP(.lr = V("lr"), .alpha = V("alpha"), .eps = V("eps"),
                                            .weight_decay = V("weight_decay"), .momentum = V("momentum"),
                                            .centered = (int)V("centered")));
    if (!strcmp(name, "adagrad"))
        return ct_adagrad_new(m, CT_ADAGRAD(.lr = V("lr"), .lr_decay = V("lr_decay"), .weight_decay = V("weight_decay"),
                                            .initial_accumulator_value = V("initial_accumulator_value"),
                                            .eps = V("eps")));
    if (!strcmp(name, "adadelta"))
        return ct_adadelta_new(m, CT_ADADELTA(.lr = V("lr"), .rho = V("rho"), .eps = V("eps"),
                                              .weight_decay = V("weight_decay")));
    if (!strcmp(name, "adabelief"))
        return ct_adabelief_new(m, CT_ADABELIEF(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"), .eps = V("eps"),
                                                .weight_decay = V("weight_decay"), .decoupled = (int)V("decoupled")));
    if (!strcmp(name, "lion"))
        return ct_lion_new(m, CT_LION(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"),
                                      .weight_decay = V("weight_decay")));
    if (!strcmp(name, "lamb"))
        return ct_lamb_new(m, CT_LAMB(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"), .eps = V("eps"),
                                      .weight_decay = V("weight_decay")));
    if (!strcmp(name, "lars"))
        return ct_lars_new(m, CT_LARS(.lr = V("lr"), .momentum = V("momentum"), .weight_decay = V("weight_decay"),
                                      .trust_coefficient = V("trust_coefficient")));
    if (!strcmp(name, "adafactor"))
        return ct_adafactor_new(m, CT_ADAFACTOR(.lr = V("lr"), .relative_step = (int)V("relative_step"),
                                                .scale_parameter = (int)V("scale_parameter"), .beta1 = V("beta1"),
                                                .weight_decay = V("weight_decay"), .decay_rate = V("decay_rate"),
                                                .clip_threshold = V("clip_threshold")));
    if (!strcmp(name, "muon")) {
        static int (*const select[])(const ct_tensor *, void *) = {NULL, ct_param_is_matrix, ct_param_is_filter};
        ct_optim *aux = NULL;
        if (V("aux_lr") > 0)
            aux = ct_sgd_new(m, CT_SGD(.lr = V("aux_lr"), .momentum = V("aux_momentum"), .nesterov = V("aux_momentum") > 0,
                                       .weight_decay = V("aux_weight_decay")));
        return ct_muon_new(m, CT_MUON(.lr = V("lr"), .momentum = V("momentum"), .nesterov = (int)V("nesterov"),
                                      .ns_steps = (int)V("ns_steps"), .weight_decay = V("weight_decay"),
                                      .scale = (ct_muon_scale)V("scale"), .normalize_weights = (int)V("normalize_weights"),
                                      .select = select[(int)V("select")], .aux = aux));
    }
    return ct_adopt_new(m, CT_ADOPT(.lr = V("lr"), .beta1 = V("beta1"), .beta2 = V("beta2"), .eps = V("eps"),
                                    .weight_decay = V("weight_decay"), .decoupled = (int)V("decoupled"),
                                    .clip = (int)V("clip")));
}

/* Muon's parameters: a selected one that is not a matrix, or one nothing would train, is refused. */
static int check_muon(const ct_spec *s_, ct_model *m) {
    const ct_spec s = *s_;
    const int select = (int)V("select");
    if (V("nesterov") && V("momentum") <= 0) return ct_set_error(CT_ERR_VALUE, "optimizer muon: nesterov=1 needs momentum > 0");
    for (int k = 0; k < ct_model_param_count(m); k++) {
        const ct_tensor *p = ct_model_param(m, k);
        if (!p->grad) continue;
        const int chosen = select == 0 || (select == 1 ? p->ndim >= 2 : p->ndim == 4);
        char shape[64];
        if (chosen && p->ndim < 2)
            return ct_set_error(CT_ERR_VALUE, "optimizer muon: parameter \"%s\" %s is not a matrix; give "
                                "select=matrices (or filters) and aux_lr > 0 for the others", p->name ? p->name : "?",
                                ct_tensor_shape_str(p, shape, sizeof shape));
        if (!chosen && V("aux_lr") <= 0)
            return ct_set_error(CT_ERR_VALUE, "optimizer muon: parameter \"%s\" %s is not selected (select=%s) and "
                                "aux_lr=0: nothing would train it; give aux_lr > 0", p->name ? p->name : "?",
                                ct_tensor_shape_str(p, shape, sizeof shape), select == 1 ? "matrices" : "filters");
    }
    return CT_OK;
}

/* Combinations the constructors would stop on (they are programmer errors there) are data here. */
static int check_optimizer(const ct_spec *s_, ct_model *m) {
    const ct_spec s = *s_;
    const char *name = s.entry->name;
    if (!strcmp(name, "muon")) return check_muon(s_, m);
    if (!strcmp(name, "sgd") && V("nesterov") && (V("momentum") <= 0 || V("dampening") != 0))
        return ct_set_error(CT_ERR_VALUE, "optimizer sgd: nesterov=1 needs momentum > 0 and dampening=0");
    if (!strcmp(name, "adafactor") && V("relative_step") && V("lr") != 0)
        return ct_set_error(CT_ERR_VALUE, "optimizer adafactor: relative_step=1 computes its own step size: give "
                                          "lr=0, or relative_step=0 with lr > 0");
    if (!strcmp(name, "adafactor") && !V("relative_step") && V("lr") <= 0)
        return ct_set_error(CT_ERR_VALUE, "optimizer adafactor: relative_step=0 needs lr > 0");
    return CT_OK;
}

ct_optim *ct_optim_parse(ct_model *m, const char *spec) {
    CT_CHECK(m, "ct_optim_parse", "model is NULL");
    ct_spec s;
    if (ct_spec_parse("optimizer", spec, optimizers, N_OPTIMIZERS, &s) || check_optimizer(&s, m)) return NULL;
    return build_optimizer(m, &s);
}

void ct_optim_list(FILE *out) { ct_spec_print_table("optimizer", optimizers, N_OPTIMIZERS, out); }

/* ---- schedules -------------------------------------------------------------------------------- */
#define WARMUP {"warmup", CT_SPEC_INT, "0", "[0, 1e12]", "linear warmup steps in front"}, \
    {"warmup_start", CT_SPEC_REAL, "0", "[0, 1]", "the warmup's first lr, as a fraction of lr"}

static const ct_spec_entry schedules[] = {
    {"constant", "lr throughout", {WARMUP}},
    {"step", "lr·γ^⌊t/step_size⌋ (StepLR)",
     {WARMUP, {"step_size", CT_SPEC_INT, "1000", "[1, 1e12]", "steps between decays"},
      {"gamma", CT_SPEC_REAL, "0.1", "(0, 1]", "γ"}}},
    {"multistep", "lr·γ^(milestones passed) (MultiStepLR)",
     {WARMUP, {"milestones", CT_SPEC_LIST, "[1000]", "[1, 1e12]", "steps, increasing"},
      {"gamma", CT_SPEC_REAL, "0.1", "(0, 1]", "γ"}}},
    {"exponential", "lr·γ^t (ExponentialLR)", {WARMUP, {"gamma", CT_SPEC_REAL, "0.999", "(0, 1]", "γ per step"}}},
    {"polynomial", "lr·(1 − t/T)^power to the end (PolynomialLR)",
     {WARMUP, {"power", CT_SPEC_REAL, "1", "(0, inf)", "power"}}},
    {"cosine", "cosine from lr to min_lr at the end (CosineAnnealingLR)",
     {WARMUP, {"min_lr", CT_SPEC_REAL, "0", "[0, inf)", "final lr"}}},
    {"sgdr", "cosine with warm restarts (SGDR)",
     {WARMUP, {"t_0", CT_SPEC_INT, "1000", "[1, 1e12]", "first period"}, {"t_mult", CT_SPEC_INT, "1", "[1, 1000]", "period factor"},
      {"min_lr", CT_SPEC_REAL, "0", "[0, inf)", "lowest lr"}}},
    {"one_cycle", "one-cycle to lr and down (OneCycleLR; lr is the peak)",
     {WARMUP, {"pct_start", CT_SPEC_REAL, "0.3", "(0, 1)", "fraction of steps rising"},
      {"div_factor", CT_SPEC_REAL, "25", "(0, inf)", "start at lr/div_factor"},
      {"final_div_factor", CT_SPEC_REAL, "1e4", "(0, inf)", "end at start/final_div_factor"},
      {"anneal", CT_SPEC_CHOICE, "cos", "cos|linear", "shape"}, FLAG("three_phase", "three phases"),
      {"cycle_momentum", CT_SPEC_INT, "1", "[0, 1]", "cycle the momentum against the lr"}}},
    {"wsd", "warmup, stable, decay over the last steps (MiniCPM)",
     {WARMUP, {"decay_steps", CT_SPEC_INT, "0", "[0, 1e12]", "0: 20% of the steps"},
      {"min_lr", CT_SPEC_REAL, "0", "[0, inf)", "final lr"}, {"decay", CT_SPEC_CHOICE, "sqrt", "sqrt|linear|cosine", "shape"}}},
};
enum { N_SCHEDULES = sizeof schedules / sizeof *schedules };

int ct_schedule_parse(const char *spec, double lr, long total_steps, ct_schedule *out) {
    CT_CHECK(out && total_steps >= 1 && lr >= 0, "ct_schedule_parse", "out %p, lr %g (>= 0), total_steps %ld (>= 1)",
             (void *)out, lr, total_steps);
    ct_spec s;
    const int status = ct_spec_parse("schedule", spec, schedules, N_SCHEDULES, &s);
    if (status) return status;
    const long warmup = (long)V("warmup"), steps = total_steps - warmup;
    if (steps < 1)
        return ct_set_error(CT_ERR_VALUE, "schedule %s: warmup=%ld leaves no steps of the %ld", s.entry->name, warmup,
                            total_steps);
    const char *name = s.entry->name;
    if (!strcmp(name, "constant")) *out = ct_schedule_constant(lr);
    else if (!strcmp(name, "step")) *out = ct_schedule_step(lr, (long)V("step_size"), V("gamma"));
    else if (!strcmp(name, "multistep")) {
        const double *at;
        const int n = ct_spec_list(&s, "milestones", &at);
        long milestones[CT_SPEC_MAX_VALUES];
        for (int i = 0; i < n; i++) {
            milestones[i] = (long)at[i];
            if (at[i] != (double)milestones[i] || (i && milestones[i] <= milestones[i - 1]))
                return ct_set_error(CT_ERR_VALUE, "schedule multistep: milestones must be increasing integers");
        }
        *out = ct_schedule_multistep(lr, milestones, n, V("gamma"));
    } else if (!strcmp(name, "exponential")) *out = ct_schedule_exponential(lr, V("gamma"));
    else if (!strcmp(name, "polynomial")) *out = ct_schedule_polynomial(lr, steps, V("power"));
    else if (!strcmp(name, "cosine")) *out = ct_schedule_cosine(lr, steps, V("min_lr"));
    else if (!strcmp(name, "sgdr")) *out = ct_schedule_sgdr(lr, (long)V("t_0"), (long)V("t_mult"), V("min_lr"));
    else if (!strcmp(name, "one_cycle"))
        *out = ct_schedule_one_cycle(lr, steps, CT_ONE_CYCLE(.pct_start = V("pct_start"), .div_factor = V("div_factor"),
                                                             .final_div_factor = V("final_div_factor"),
                                                             .anneal = (ct_anneal)V("anneal"),
                                                             .three_phase = (int)V("three_phase"),
                                                             .cycle_momentum = (int)V("cycle_momentum")));
    else {
        if ((long)V("decay_steps") > steps)
            return ct_set_error(CT_ERR_VALUE, "schedule wsd: decay_steps=%ld is more than the %ld steps", (long)V("decay_steps"),
                                steps);
        *out = ct_schedule_wsd(lr, steps, CT_WSD(.decay_steps = (long)V("decay_steps"), .min_lr = V("min_lr"),
                                                 .decay = (ct_wsd_decay)V("decay")));
    }
    if (warmup) *out = ct_schedule_with_warmup(*out, warmup, V("warmup_start"));
    return CT_OK;
}

void ct_schedule_list(FILE *out) { ct_spec_print_table("schedule", schedules, N_SCHEDULES, out); }
