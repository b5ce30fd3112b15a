/* optim/optim.h — optimizers over a model's parameter registry.
 * ct_optim_step applies one update from the gradients on the parameters, then zeroes them. */
#ifndef CTAPE_OPTIM_OPTIM_H
#define CTAPE_OPTIM_OPTIM_H

#include "../nn/nn.h"


typedef struct ct_optim ct_optim;

/* SGD with PyTorch's semantics (torch.optim.SGD):
 *   g ← ∇ + λ·θ
 *   b ← g on the first step, else μ·b + (1 − τ)·g          (momentum μ, dampening τ)
 *   g ← g + μ·b with Nesterov, else b                      (when μ ≠ 0)
 *   θ ← θ − lr·g */
typedef struct {
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    int nesterov;        /* needs momentum > 0 and dampening = 0 */
} ct_sgd_opts;
#define CT_SGD(...) CT_WITH_DEFAULTS(ct_sgd_opts, (.lr = 1e-3, .momentum = 0, .dampening = 0, \
                                                  .weight_decay = 0, .nesterov = 0), __VA_ARGS__)

/* The parameters are those of the model when the optimizer is made (as PyTorch's param list);
 * stepping after adding parameters to the model is fatal. Fatal on lr < 0, momentum < 0,
 * weight_decay < 0, or nesterov without momentum > 0 and dampening = 0. */
ct_optim *ct_sgd_new(ct_model *m, ct_sgd_opts opts);
/* One update of every parameter from its grad, then the grads are zeroed. */
void ct_optim_step(ct_optim *opt);
void ct_optim_zero_grad(ct_optim *opt);
double ct_optim_lr(const ct_optim *opt);
void ct_optim_set_lr(ct_optim *opt, double lr);
/* Number of steps taken so far. */
long ct_optim_steps(const ct_optim *opt);
void ct_optim_free(ct_optim *opt);

/* ---- writing an optimizer ------------------------------------------------------------------
 * An optimizer is a struct whose first member is a ct_optim, and a class: its name and three
 * functions. ct_optim_init fills the common part (the model's parameters as a flat list, lr);
 * ct_optim_step calls class->step, counts the step, and zeroes the grads (unless step did it
 * while it had each grad in cache: then it sets `zeroed`). zero_grad and free may be NULL
 * (zero every parameter's grad; free(opt)). See optim/sgd.c. */
typedef struct ct_optim_class {
    const char *name;                  /* "sgd" */
    void (*step)(ct_optim *opt);       /* one update from the grads on opt->params */
    void (*zero_grad)(ct_optim *opt);
    void (*free)(ct_optim *opt);       /* frees the state, then calls ct_optim_release */
} ct_optim_class;

struct ct_optim {
    const ct_optim_class *cls;
    ct_model *model;
    ct_tensor **params;  /* the model's parameters when the optimizer was made */
    int n_params;
    double lr;
    long steps;          /* completed steps */
    int zeroed;          /* set by a step that zeroed the grads itself */
};

void ct_optim_init(ct_optim *opt, const ct_optim_class *cls, ct_model *m, double lr);
/* Frees what ct_optim_init allocated (not opt itself). */
void ct_optim_release(ct_optim *opt);

#endif
