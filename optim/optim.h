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
#define CT_SGD(...) ((ct_sgd_opts){.lr = 1e-3, .momentum = 0, .dampening = 0, .weight_decay = 0, .nesterov = 0, __VA_ARGS__})

ct_optim *ct_sgd_new(ct_model *m, ct_sgd_opts opts);
void ct_optim_step(ct_optim *opt);
void ct_optim_zero_grad(ct_optim *opt);
double ct_optim_lr(const ct_optim *opt);
void ct_optim_set_lr(ct_optim *opt, double lr);
void ct_optim_free(ct_optim *opt);

#endif
