/* optim/registry.h — optimizers and learning-rate schedules by name, as the loss registry does for
 * losses: ct_optim_parse(model, "adamw:lr=1e-3,weight_decay=0.05"),
 * ct_schedule_parse("cosine:warmup=500", lr, total_steps, &s). The defaults are the published ones
 * (those of the CT_SGD(), CT_ADAM(), ... macros); ct_optim_list and ct_schedule_list print every name
 * with its parameters, defaults and ranges. Errors as core/spec.h describes (CT_ERR_VALUE and a
 * message naming the mistake; an unknown name suggests the nearest). */
#ifndef CTAPE_OPTIM_REGISTRY_H
#define CTAPE_OPTIM_REGISTRY_H

#include "optim.h"
#include "../core/spec.h"

/* An optimizer over the model's parameters, or NULL (ct_last_error) for a bad spec. Names: sgd,
 * adam, adamw, adamax, nadam, radam, rmsprop, adagrad, adadelta, adabelief, lion, lamb, lars,
 * adafactor, adopt, muon. Flags (nesterov, amsgrad, centered, ...) are integers 0 or 1. */
ct_optim *ct_optim_parse(ct_model *m, const char *spec);
void ct_optim_list(FILE *out);

/* A schedule for `total_steps` optimizer steps from base lr `lr` (the optimizer's). Names: constant,
 * step, multistep, exponential, polynomial, cosine, sgdr, one_cycle, wsd. Every schedule takes
 * warmup=STEPS (a linear warmup in front, from warmup_start·lr); the cosine and polynomial decays
 * then run over the steps after the warmup. CT_OK or CT_ERR_VALUE. */
int ct_schedule_parse(const char *spec, double lr, long total_steps, ct_schedule *out);
void ct_schedule_list(FILE *out);

#ifndef CT_BUILDING_LIBRARY
#define ct_optim_parse(...) CT_SITE_CALL_CLEARING(ct_optim_parse, __VA_ARGS__)
#define ct_schedule_parse(...) CT_SITE_CALL_CLEARING(ct_schedule_parse, __VA_ARGS__)
#endif

#endif
