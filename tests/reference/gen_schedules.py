#!/usr/bin/python3
"""Reference learning rates (and OneCycleLR's momentum) for ctape's schedules, from
torch.optim.lr_scheduler.

Each case drives a real torch scheduler the way a training loop does (optimizer.step(), then
scheduler.step()) and records the learning rate used by each of the first STEPS optimizer
steps, so what is compared is what PyTorch actually produces: its chainable (recursive) forms
for StepLR, ExponentialLR, PolynomialLR, CosineAnnealingLR and LinearLR, SequentialLR's
hand-over at the warmup milestone, and ReduceLROnPlateau driven by a fixed metric sequence.

    /usr/bin/python3 tests/reference/gen_schedules.py > tests/reference/schedules_ref.h

The C test (tests/optim/test_schedule.c) builds the matching ct_schedule for each case by name; the
torch arguments are printed beside each case. `make test` never runs this script.
"""
import math

import torch
from torch.optim import lr_scheduler as S

STEPS = 64
LR = 0.1


def make_opt(lr=LR):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    return torch.optim.SGD([p], lr=lr)


def run(build, lr=LR):
    opt = make_opt(lr)
    sched = build(opt)
    out = []
    for _ in range(STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def warm(inner, steps, start):
    """Linear warmup of `steps` steps from lr*start, then `inner` (SequentialLR)."""
    def build(opt):
        w = S.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=steps)
        return S.SequentialLR(opt, [w, inner(opt)], milestones=[steps])
    return build


CASES = [
    ("step", "StepLR(step_size=7, gamma=0.5)", lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
    ("step_default_gamma", "StepLR(step_size=10)", lambda o: S.StepLR(o, step_size=10)),
    ("multistep", "MultiStepLR(milestones=[5, 12, 30], gamma=0.3)",
     lambda o: S.MultiStepLR(o, milestones=[5, 12, 30], gamma=0.3)),
    ("multistep_repeated", "MultiStepLR(milestones=[4, 4, 20])",
     lambda o: S.MultiStepLR(o, milestones=[4, 4, 20])),
    ("exponential", "ExponentialLR(gamma=0.95)", lambda o: S.ExponentialLR(o, gamma=0.95)),
    ("polynomial", "PolynomialLR(total_iters=40, power=2.0)",
     lambda o: S.PolynomialLR(o, total_iters=40, power=2.0)),
    ("polynomial_linear", "PolynomialLR(total_iters=25, power=1.0)",
     lambda o: S.PolynomialLR(o, total_iters=25, power=1.0)),
    ("polynomial_sqrt", "PolynomialLR(total_iters=70, power=0.5)",
     lambda o: S.PolynomialLR(o, total_iters=70, power=0.5)),
    ("cosine", "CosineAnnealingLR(T_max=64)", lambda o: S.CosineAnnealingLR(o, T_max=64)),
    ("cosine_past_t_max", "CosineAnnealingLR(T_max=25, eta_min=0.001)",
     lambda o: S.CosineAnnealingLR(o, T_max=25, eta_min=0.001)),
    ("sgdr", "CosineAnnealingWarmRestarts(T_0=5, T_mult=2, eta_min=0.01)",
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.01)),
    ("sgdr_fixed", "CosineAnnealingWarmRestarts(T_0=7)",
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=7)),
    ("sgdr_mult3", "CosineAnnealingWarmRestarts(T_0=3, T_mult=3)",
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=3)),
    ("one_cycle", "OneCycleLR(max_lr=0.5, total_steps=64)",
     lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=64)),
    ("one_cycle_three_phase", "OneCycleLR(max_lr=0.5, total_steps=64, three_phase=True)",
     lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=64, three_phase=True)),
    ("one_cycle_linear", "OneCycleLR(max_lr=0.2, total_steps=80, pct_start=0.25, anneal_strategy='linear', "
     "div_factor=10, final_div_factor=100)",
     lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=80, pct_start=0.25, anneal_strategy="linear",
                            div_factor=10.0, final_div_factor=100.0)),
    ("warmup_only", "LinearLR(start_factor=0.1, total_iters=10)",
     lambda o: S.LinearLR(o, start_factor=0.1, total_iters=10)),
    ("warmup_default", "LinearLR()  (start_factor=1/3, total_iters=5)", lambda o: S.LinearLR(o)),
    ("warmup_cosine", "SequentialLR([LinearLR(start_factor=0.01, total_iters=8), CosineAnnealingLR(T_max=40)], [8])",
     warm(lambda o: S.CosineAnnealingLR(o, T_max=40), 8, 0.01)),
    ("warmup_step", "SequentialLR([LinearLR(start_factor=0.25, total_iters=6), StepLR(step_size=9, gamma=0.5)], [6])",
     warm(lambda o: S.StepLR(o, step_size=9, gamma=0.5), 6, 0.25)),
    ("warmup_multistep", "SequentialLR([LinearLR(start_factor=0.5, total_iters=4), MultiStepLR([10, 20])], [4])",
     warm(lambda o: S.MultiStepLR(o, milestones=[10, 20]), 4, 0.5)),
    ("warmup_exponential", "SequentialLR([LinearLR(start_factor=0.2, total_iters=5), ExponentialLR(0.9)], [5])",
     warm(lambda o: S.ExponentialLR(o, gamma=0.9), 5, 0.2)),
    ("warmup_polynomial", "SequentialLR([LinearLR(start_factor=0.1, total_iters=10), PolynomialLR(total_iters=30, power=1.5)], [10])",
     warm(lambda o: S.PolynomialLR(o, total_iters=30, power=1.5), 10, 0.1)),
    ("warmup_sgdr", "SequentialLR([LinearLR(start_factor=0.1, total_iters=5), CosineAnnealingWarmRestarts(T_0=6, T_mult=2)], [5])",
     warm(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2), 5, 0.1)),
]


# ReduceLROnPlateau: a loss that falls, then stalls with noise, then falls again and stalls
# (and its negation for mode="max"); the lr used for each of the STEPS steps, the metric of step
# s being reported after it.
def metric_sequence():
    g = torch.Generator().manual_seed(11)
    out = []
    for s in range(STEPS):
        if s < 12:
            v = 1.0 / (1 + s)
        elif s < 40:
            v = 1.0 / 12 + 1e-6 * float(torch.rand(1, generator=g, dtype=torch.float64))
        else:
            v = 1.0 / 12 - 0.01 * (s - 39) ** 0.5
        out.append(float(torch.tensor(v, dtype=torch.float32)))  # exact in float32 as well
    return out


METRICS = metric_sequence()

PLATEAU_CASES = [
    ("plateau_default", "ReduceLROnPlateau()", dict(), 1),
    ("plateau_patience", "ReduceLROnPlateau(factor=0.5, patience=3)", dict(factor=0.5, patience=3), 1),
    ("plateau_cooldown", "ReduceLROnPlateau(factor=0.5, patience=2, cooldown=4, min_lr=0.02)",
     dict(factor=0.5, patience=2, cooldown=4, min_lr=0.02), 1),
    ("plateau_abs", "ReduceLROnPlateau(patience=2, threshold=0.01, threshold_mode='abs')",
     dict(patience=2, threshold=0.01, threshold_mode="abs"), 1),
    ("plateau_max", "ReduceLROnPlateau(mode='max', factor=0.3, patience=4)  (metric negated)",
     dict(mode="max", factor=0.3, patience=4), -1),
    ("plateau_max_abs", "ReduceLROnPlateau(mode='max', patience=1, threshold=0.02, threshold_mode='abs', cooldown=1)",
     dict(mode="max", patience=1, threshold=0.02, threshold_mode="abs", cooldown=1), -1),
]


def run_plateau(kw, sign):
    opt = make_opt()
    sched = S.ReduceLROnPlateau(opt, **kw)
    out = []
    for s in range(STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(sign * METRICS[s])
    return out


# OneCycleLR's momentum (cycle_momentum=True, its default): the momentum of SGD's group, or
# beta1 of Adam's, used by each of the first STEPS optimizer steps.
MOMENTUM_CASES = [
    ("one_cycle", "OneCycleLR(max_lr=0.5, total_steps=64) on SGD(momentum=0.9)", "sgd",
     dict(max_lr=0.5, total_steps=64)),
    ("one_cycle_three_phase", "OneCycleLR(max_lr=0.5, total_steps=64, three_phase=True) on SGD(momentum=0.9)", "sgd",
     dict(max_lr=0.5, total_steps=64, three_phase=True)),
    ("one_cycle_linear_adam", "OneCycleLR(max_lr=0.2, total_steps=80, pct_start=0.25, anneal_strategy='linear', "
     "div_factor=10, final_div_factor=100, base_momentum=0.8, max_momentum=0.9) on Adam (betas[0])", "adam",
     dict(max_lr=0.2, total_steps=80, pct_start=0.25, anneal_strategy="linear", div_factor=10.0,
          final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9)),
]


def run_momentum(kind, kw):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=LR, momentum=0.9) if kind == "sgd" else torch.optim.Adam([p], lr=LR)
    sched = S.OneCycleLR(opt, **kw)
    out = []
    for _ in range(STEPS):
        group = opt.param_groups[0]
        out.append(group["momentum"] if kind == "sgd" else group["betas"][0])
        opt.step()
        sched.step()
    return out


def reals(xs, indent="        "):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 4]) for i in range(0, len(vals), 4)]
    return "{\n" + indent + (",\n" + indent).join(rows) + "}"


print("/* tests/reference/schedules_ref.h — GENERATED by tests/reference/gen_schedules.py with PyTorch %s" % torch.__version__)
print(" * (torch.optim.lr_scheduler, float64). Do not edit; regenerate:")
print(" *     /usr/bin/python3 tests/reference/gen_schedules.py > tests/reference/schedules_ref.h")
print(" * The learning rate used by each of the first %d optimizer steps; base lr %r (optimizer's lr). */" % (STEPS, LR))
print("#ifndef CTAPE_TESTS_SCHEDULES_REF_H")
print("#define CTAPE_TESTS_SCHEDULES_REF_H\n")
print("#define SCHEDULE_REF_STEPS %d" % STEPS)
print("#define SCHEDULE_REF_LR %r\n" % LR)
print("typedef struct {")
print("    const char *name;")
print("    const char *torch; /* the PyTorch scheduler that produced it */")
print("    double lr[SCHEDULE_REF_STEPS];")
print("} schedule_ref_case;\n")
print("static const schedule_ref_case schedule_ref_cases[] = {")
for name, desc, build in CASES:
    print('    {"%s", "%s", %s},' % (name, desc.replace('"', "'"), reals(run(build))))
print("};")
print("#define SCHEDULE_REF_COUNT %d\n" % len(CASES))
print("/* ReduceLROnPlateau: metric[s] is reported after step s (negated for the mode='max' cases). */")
print("static const double plateau_ref_metric[SCHEDULE_REF_STEPS] = %s;" % reals(METRICS, "    "))
print("static const schedule_ref_case plateau_ref_cases[] = {")
for name, desc, kw, sign in PLATEAU_CASES:
    print('    {"%s", "%s", %s},' % (name, desc.replace('"', "'"), reals(run_plateau(kw, sign))))
print("};")
print("#define PLATEAU_REF_COUNT %d\n" % len(PLATEAU_CASES))
print("/* OneCycleLR's momentum (cycle_momentum=True): the group's momentum (SGD) or betas[0] (Adam) used")
print(" * by each of the first %d optimizer steps. */" % STEPS)
print("typedef struct {")
print("    const char *name;")
print("    const char *torch;")
print("    const char *optimizer; /* \"sgd\" or \"adam\" */")
print("    double momentum[SCHEDULE_REF_STEPS];")
print("} momentum_ref_case;\n")
print("static const momentum_ref_case momentum_ref_cases[] = {")
for name, desc, kind, kw in MOMENTUM_CASES:
    print('    {"%s", "%s", "%s", %s},' % (name, desc.replace('"', "'"), kind, reals(run_momentum(kind, kw))))
print("};")
print("#define MOMENTUM_REF_COUNT %d\n" % len(MOMENTUM_CASES))
print("#endif")
