/* nn/dropout.c — the dropout layer on the op of autograd/dropout.c: in training each element is
 * zeroed with probability p and the rest scaled by 1/(1 − p) (torch.nn.Dropout); identity in
 * evaluation. */
#define CT_BUILDING_LIBRARY
#include "layer.h"

#include <stdio.h>

typedef struct {
    ct_module base;
    double p;
    ct_rng rng; /* its own stream, seeded from the model's RNG at creation */
} dropout_module;

static ct_tensor *dropout_forward(ct_tape *tape, ct_module *self, ct_tensor *x) {
    dropout_module *d = (dropout_module *)self;
    return ct_dropout(tape, x, d->p, d->base.training, &d->rng);
}

ct_module *ct_dropout_new(ct_model *m, const char *name, double p) {
    static const char *op = "ct_dropout_new";
    CT_CHECK(p >= 0 && p <= 1, op, "%s: probability p = %g is outside [0, 1]", name ? name : "(null)", p);
    dropout_module *d = ct_module_new(m, sizeof *d, "dropout", name, dropout_forward);
    d->p = p;
    ct_rng_seed(&d->rng, ct_rng_u64(ct_model_rng(m)));
    char stream[128];
    snprintf(stream, sizeof stream, "%s.rng", d->base.name);
    ct_model_add_rng(m, stream, &d->rng);
    return &d->base;
}
