/* tests/optim/test_optim_registry.c — optimizers and schedules by name (optim/registry.h): each name's
 * defaults are its macro's (three steps bit for bit against the optimizer built from the macro),
 * given values take effect, schedules equal their constructors, and bad specs name the mistake. */
#include "../test.h"

#include <string.h>

static ct_optim *from_macro(const char *name, ct_model *m) {
    if (!strcmp(name, "sgd")) return ct_sgd_new(m, CT_SGD());
    if (!strcmp(name, "adam")) return ct_adam_new(m, CT_ADAM());
    if (!strcmp(name, "adamw")) return ct_adamw_new(m, CT_ADAMW());
    if (!strcmp(name, "adamax")) return ct_adamax_new(m, CT_ADAMAX());
    if (!strcmp(name, "nadam")) return ct_nadam_new(m, CT_NADAM());
    if (!strcmp(name, "radam")) return ct_radam_new(m, CT_RADAM());
    if (!strcmp(name, "rmsprop")) return ct_rmsprop_new(m, CT_RMSPROP());
    if (!strcmp(name, "adagrad")) return ct_adagrad_new(m, CT_ADAGRAD());
    if (!strcmp(name, "adadelta")) return ct_adadelta_new(m, CT_ADADELTA());
    if (!strcmp(name, "adabelief")) return ct_adabelief_new(m, CT_ADABELIEF());
    if (!strcmp(name, "lion")) return ct_lion_new(m, CT_LION());
    if (!strcmp(name, "lamb")) return ct_lamb_new(m, CT_LAMB());
    if (!strcmp(name, "lars")) return ct_lars_new(m, CT_LARS());
    if (!strcmp(name, "adafactor")) return ct_adafactor_new(m, CT_ADAFACTOR());
    if (!strcmp(name, "adopt")) return ct_adopt_new(m, CT_ADOPT());
    return NULL;
}

static ct_model *small_model(void) {
    ct_model *m = ct_model_new();
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    ct_tensor_fill_normal(ct_model_add_param(m, "w", CT_SHAPE(6, 4)), &rng, 0, 1);
    ct_tensor_fill_normal(ct_model_add_param(m, "b", CT_SHAPE(4)), &rng, 0, 1);
    return m;
}

/* Three steps with the same seeded gradients. */
static void three_steps(ct_model *m, ct_optim *opt) {
    ct_rng rng;
    ct_rng_seed(&rng, 77);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < ct_model_param_count(m); i++) {
            ct_tensor *p = ct_model_param(m, i);
            for (size_t k = 0; k < p->size; k++) p->grad[k] = (ct_real)ct_rng_normal(&rng, 0, 1);
        }
        CHECK(ct_optim_step(opt) == CT_OK, "%s", ct_last_error());
    }
}

CT_TEST(optim_registry, every_name_defaults_to_its_macro) {
    static const char *names[] = {"sgd", "adam", "adamw", "adamax", "nadam", "radam", "rmsprop", "adagrad",
                                  "adadelta", "adabelief", "lion", "lamb", "lars", "adafactor", "adopt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        ct_model *a = small_model(), *b = small_model();
        ct_optim *by_name = ct_optim_parse(a, names[i]), *by_macro = from_macro(names[i], b);
        CHECK(by_name && by_macro, "%s: %s", names[i], ct_last_error());
        three_steps(a, by_name);
        three_steps(b, by_macro);
        for (int p = 0; p < ct_model_param_count(a); p++)
            CHECK(!memcmp(ct_model_param(a, p)->data, ct_model_param(b, p)->data, ct_model_param(a, p)->size * sizeof(ct_real)),
                  "%s: the spec's defaults and the macro's give different weights", names[i]);
        ct_optim_free(by_name), ct_optim_free(by_macro);
        ct_model_free(a), ct_model_free(b);
    }
}

CT_TEST(optim_registry, given_values_take_effect) {
    ct_model *a = small_model(), *b = small_model();
    ct_optim *by_name = ct_optim_parse(a, "sgd:lr=0.05,momentum=0.9,nesterov=1,weight_decay=5e-4");
    ct_optim *by_macro = ct_sgd_new(b, CT_SGD(.lr = 0.05, .momentum = 0.9, .nesterov = 1, .weight_decay = 5e-4));
    CHECK(by_name && by_macro, "%s", ct_last_error());
    three_steps(a, by_name), three_steps(b, by_macro);
    CHECK(!memcmp(ct_model_param(a, 0)->data, ct_model_param(b, 0)->data, 24 * sizeof(ct_real)), "sgd with values");
    ct_optim_free(by_name), ct_optim_free(by_macro);
    by_name = ct_optim_parse(a, "adamw:lr=3e-4,beta2=0.95,weight_decay=0.1");
    by_macro = ct_adamw_new(b, CT_ADAMW(.lr = 3e-4, .beta2 = 0.95, .weight_decay = 0.1));
    three_steps(a, by_name), three_steps(b, by_macro);
    CHECK(!memcmp(ct_model_param(a, 1)->data, ct_model_param(b, 1)->data, 4 * sizeof(ct_real)), "adamw with values");
    ct_optim_free(by_name), ct_optim_free(by_macro);
    ct_model_free(a), ct_model_free(b);
}

CT_TEST(optim_registry, bad_specs_name_the_mistake) {
    ct_model *m = small_model();
    const struct {
        const char *spec, *expect;
    } bad[] = {
        {"adamm", "unknown optimizer 'adamm' (did you mean adam"},
        {"sgd:momentun=0.9", "sgd has no parameter 'momentun' (did you mean momentum?)"},
        {"sgd:nesterov=1", "nesterov=1 needs momentum > 0"},
        {"adam:beta1=1", "beta1=1 is out of range [0, 1)"},
        {"adafactor:lr=0.01", "relative_step=1 computes its own step size"},
        {"adamw:lr=-1", "lr=-1 is out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(ct_optim_parse(m, bad[i].spec) == NULL, "%s was accepted", bad[i].spec);
        CHECK(strstr(ct_last_error(), bad[i].expect), "%s: \"%s\", want \"%s\"", bad[i].spec, ct_last_error(),
              bad[i].expect);
    }
    ct_model_free(m);
}

static int same_lrs(const ct_schedule *a, const ct_schedule *b, long steps) {
    for (long t = 0; t < steps; t++)
        if (ct_schedule_lr(a, t) != ct_schedule_lr(b, t)) return 0;
    return 1;
}

CT_TEST(optim_registry, schedules_equal_their_constructors) {
    ct_schedule s;
    const long milestones[2] = {30, 80};
    const struct {
        const char *spec;
        ct_schedule want;
    } cases[] = {
        {"constant", ct_schedule_constant(0.1)},
        {"cosine", ct_schedule_cosine(0.1, 110, 0)},
        {"cosine:warmup=10,min_lr=1e-3", ct_schedule_with_warmup(ct_schedule_cosine(0.1, 100, 1e-3), 10, 0)},
        {"step:step_size=30,gamma=0.5", ct_schedule_step(0.1, 30, 0.5)},
        {"multistep:milestones=30,80", ct_schedule_multistep(0.1, milestones, 2, 0.1)},
        {"exponential:gamma=0.97", ct_schedule_exponential(0.1, 0.97)},
        {"polynomial:power=2,warmup=5,warmup_start=0.1", ct_schedule_with_warmup(ct_schedule_polynomial(0.1, 105, 2), 5, 0.1)},
        {"sgdr:t_0=20,t_mult=2", ct_schedule_sgdr(0.1, 20, 2, 0)},
        {"one_cycle", ct_schedule_one_cycle(0.1, 110, CT_ONE_CYCLE())},
        {"one_cycle:anneal=linear,pct_start=0.25", ct_schedule_one_cycle(0.1, 110, CT_ONE_CYCLE(.anneal = CT_ANNEAL_LINEAR, .pct_start = 0.25))},
        {"wsd:decay=linear,decay_steps=20", ct_schedule_wsd(0.1, 110, CT_WSD(.decay = CT_WSD_LINEAR, .decay_steps = 20))},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK(ct_schedule_parse(cases[i].spec, 0.1, 110, &s) == CT_OK, "%s: %s", cases[i].spec, ct_last_error());
        CHECK(same_lrs(&s, &cases[i].want, 130), "%s: learning rates differ from the constructor's", cases[i].spec);
    }
    CHECK(ct_schedule_parse("cosine:warmup=200", 0.1, 110, &s) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "warmup=200 leaves no steps"),
          "%s", ct_last_error());
    CHECK(ct_schedule_parse("cosin", 0.1, 110, &s) == CT_ERR_VALUE && strstr(ct_last_error(), "did you mean cosine"),
          "%s", ct_last_error());
    CHECK(ct_schedule_parse("multistep:milestones=[50,20]", 0.1, 110, &s) == CT_ERR_VALUE &&
              strstr(ct_last_error(), "increasing"),
          "%s", ct_last_error());
}
