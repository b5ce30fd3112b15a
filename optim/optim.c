/* optim/optim.c — what every optimizer shares: the flat parameter list, lr, step counting and
 * zeroing the grads. The update rules live in one file each (sgd.c). */
#define CT_BUILDING_LIBRARY
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ct_optim_init(ct_optim *opt, const ct_optim_class *cls, ct_model *m, double lr) {
    CT_CHECK(m, cls->name, "model is NULL");
    CT_CHECK(lr >= 0 && isfinite(lr), cls->name, "lr %g must be finite and >= 0", lr);
    opt->cls = cls;
    opt->model = m;
    opt->n_params = ct_model_param_count(m);
    opt->params = malloc((size_t)(opt->n_params ? opt->n_params : 1) * sizeof *opt->params);
    if (!opt->params) ct_fatal(cls->name, "out of memory");
    for (int i = 0; i < opt->n_params; i++) opt->params[i] = ct_model_param(m, i);
    opt->lr = lr;
    opt->steps = 0;
    opt->zeroed = 0;
}

void ct_optim_release(ct_optim *opt) {
    free(opt->params);
    opt->params = NULL;
}

void ct_optim_step(ct_optim *opt) {
    CT_CHECK(opt, "ct_optim_step", "optimizer is NULL");
    CT_CHECK(ct_model_param_count(opt->model) == opt->n_params, "ct_optim_step",
             "%s was made for %d parameters but the model now has %d; make the optimizer after "
             "the last layer", opt->cls->name, opt->n_params, ct_model_param_count(opt->model));
    opt->zeroed = 0;
    opt->cls->step(opt);
    opt->steps++;
    if (!opt->zeroed) ct_optim_zero_grad(opt);
}

void ct_optim_zero_grad(ct_optim *opt) {
    if (opt->cls->zero_grad) {
        opt->cls->zero_grad(opt);
        return;
    }
    for (int i = 0; i < opt->n_params; i++)
        if (opt->params[i]->grad) memset(opt->params[i]->grad, 0, opt->params[i]->size * sizeof(ct_real));
}

double ct_optim_lr(const ct_optim *opt) { return opt->lr; }

void ct_optim_set_lr(ct_optim *opt, double lr) {
    CT_CHECK(lr >= 0 && isfinite(lr), "ct_optim_set_lr", "lr %g must be finite and >= 0", lr);
    opt->lr = lr;
}

long ct_optim_steps(const ct_optim *opt) { return opt->steps; }

void ct_optim_free(ct_optim *opt) {
    if (!opt) return;
    if (opt->cls->free) {
        opt->cls->free(opt);
        return;
    }
    ct_optim_release(opt);
    free(opt);
}
