/* tests/test_optim_torch.c — every optimizer and option against torch.optim (1.13) trajectories
 * (tests/reference/optim_torch_ref.h, from gen_optim_torch.py), and each optimizer training the
 * MNIST MLP (784-512-256-10) for one epoch of train10k to >= 90% test accuracy. */
#include "test.h"
#include "reference/optim_torch_ref.h"

#include <string.h>

#ifdef CT_PRECISION_64
#define REF_RTOL 1e-11
#define REF_ATOL 1e-12
#else
#define REF_RTOL 2e-5
#define REF_ATOL 1e-5
#endif

static ct_model *reference_model(void) {
    ct_model *m = ct_model_new();
    size_t at = 0;
    for (int k = 0; k < OPT_REF_PARAMS; k++) {
        ct_shape s = {.ndim = opt_ref_ndim[k]};
        for (int d = 0; d < s.ndim; d++) s.d[d] = opt_ref_shape[k][d];
        char name[16];
        snprintf(name, sizeof name, "p%d", k);
        ct_tensor *p = ct_model_add_param(m, name, s);
        for (size_t i = 0; i < p->size; i++) p->data[i] = (ct_real)opt_ref_initial[at + i];
        at += p->size;
    }
    return m;
}

/* The ctape optimizer for a reference case: same class, same options. */
static ct_optim *optimizer_for(ct_model *m, const opt_ref_case *c) {
    const char *k = c->torch_class;
    ct_adam_opts a = {.lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .weight_decay = c->weight_decay,
                      .amsgrad = c->amsgrad, .maximize = c->maximize, .momentum_decay = c->momentum_decay};
    ct_optim *opt = NULL;
    if (!strcmp(k, "Adam")) opt = ct_adam_new(m, a);
    else if (!strcmp(k, "AdamW")) opt = ct_adamw_new(m, a);
    else if (!strcmp(k, "Adamax")) opt = ct_adamax_new(m, a);
    else if (!strcmp(k, "NAdam")) opt = ct_nadam_new(m, a);
    else if (!strcmp(k, "RAdam")) opt = ct_radam_new(m, a);
    else if (!strcmp(k, "RMSprop"))
        opt = ct_rmsprop_new(m, CT_RMSPROP(.lr = c->lr, .alpha = c->alpha, .eps = c->eps, .weight_decay = c->weight_decay,
                                           .momentum = c->momentum, .centered = c->centered, .maximize = c->maximize));
    else if (!strcmp(k, "Adagrad"))
        opt = ct_adagrad_new(m, CT_ADAGRAD(.lr = c->lr, .lr_decay = c->lr_decay, .weight_decay = c->weight_decay,
                                           .initial_accumulator_value = c->initial_accumulator_value, .eps = c->eps,
                                           .maximize = c->maximize));
    else if (!strcmp(k, "Adadelta"))
        opt = ct_adadelta_new(m, CT_ADADELTA(.lr = c->lr, .rho = c->rho, .eps = c->eps, .weight_decay = c->weight_decay,
                                             .maximize = c->maximize));
    else if (!strcmp(k, "SGD"))
        opt = ct_sgd_new(m, CT_SGD(.lr = c->lr, .momentum = c->momentum, .dampening = c->dampening,
                                   .weight_decay = c->weight_decay, .maximize = c->maximize));
    if (opt && c->groups)
        ct_optim_add_group(opt, ct_param_is_vector, NULL, CT_GROUP(.lr = c->group_lr, .weight_decay = c->group_weight_decay));
    return opt;
}

CT_TEST(optim_torch, every_optimizer_matches_pytorch) {
    double worst = 0;
    for (int c = 0; c < OPT_REF_COUNT; c++) {
        const opt_ref_case *rc = &opt_ref_cases[c];
        ct_model *m = reference_model();
        ct_optim *opt = optimizer_for(m, rc);
        CHECK(opt, "%s: no ctape optimizer for torch.optim.%s", rc->name, rc->torch_class);
        for (int step = 0; step < OPT_REF_STEPS; step++) {
            size_t at = 0;
            for (int k = 0; k < OPT_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++) p->grad[i] = (ct_real)opt_ref_grads[step][at + i];
                at += p->size;
            }
            CHECK(ct_optim_step(opt) == CT_OK);
            at = 0;
            for (int k = 0; k < OPT_REF_PARAMS; k++) {
                ct_tensor *p = ct_model_param(m, k);
                for (size_t i = 0; i < p->size; i++, at++) {
                    double got = p->data[i], want = rc->after[step][at];
                    CHECK(fabs(got - want) <= REF_ATOL + REF_RTOL * fabs(want),
                          "%s step %d: %s[%zu] = %.12g, PyTorch %.12g", rc->name, step + 1, p->name, i, got, want);
                    CHECK(p->grad[i] == 0, "%s step %d: %s.grad[%zu] not zeroed", rc->name, step + 1, p->name, i);
                    worst = fmax(worst, fabs(got - want));
                }
            }
        }
        ct_optim_free(opt);
        ct_model_free(m);
    }
    ct_test_note("%d settings x %d steps, worst abs err %.1e", OPT_REF_COUNT, OPT_REF_STEPS, worst);
}
