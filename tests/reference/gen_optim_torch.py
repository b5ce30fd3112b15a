#!/usr/bin/python3
"""Reference trajectories for ctape's optimizers, from torch.optim (PyTorch 1.13).

Three parameter tensors start from fixed values; the same fixed sequence of gradients (data in
the header, not a model) is fed to torch.optim.<Optimizer> under every option PyTorch has for
Adam, AdamW, Adamax, NAdam, RAdam, RMSprop, Adagrad, Adadelta and SGD's maximize, plus parameter
groups, and the parameters after every step are recorded in float64. STEPS is 8 so RAdam passes
its rectification threshold (rho_t > 5 from step 6 with beta2 = 0.999) inside the trajectory.

    /usr/bin/python3 tests/reference/gen_optim_torch.py > tests/reference/optim_torch_ref.h

One deliberate difference: PyTorch 1.13's NAdam computes the product for the next step as
mu_product * mu * mu_next, multiplying by mu twice (fixed in PyTorch 2.0 to mu_product *
mu_next, which is Dozat's algorithm). ctape follows the fix, so this script runs 1.13's own
_single_tensor_nadam with that one line corrected (checked below to be present and replaced).

Inputs are rounded to float32 values so the float32 build starts from exactly the same numbers.
`make test` never runs this script.
"""
import inspect

import torch
import torch.optim.nadam as nadam_module

torch.set_default_dtype(torch.float64)
torch.manual_seed(11)
SHAPES = [(3, 4), (4,), (2, 3)]
STEPS = 8

# NAdam: the PyTorch 2.0 fix of the mu_product_next line, in 1.13's own code.
_src = inspect.getsource(nadam_module._single_tensor_nadam)
_bug = "mu_product_next = mu_product * mu * mu_next"
assert _src.count(_bug) == 1, "this PyTorch's NAdam differs from 1.13; check the fix"
exec(_src.replace(_bug, "mu_product_next = mu_product * mu_next"), nadam_module.__dict__)


def f32(t):
    return t.float().double()


initial = [f32(torch.randn(*s)) for s in SHAPES]
# gradients of mixed scale, so eps and the max in Adamax/AMSGrad matter
grads = [[f32(torch.randn(*s) * (0.05 if step % 3 == 2 else 1.0)) for s in SHAPES] for step in range(STEPS)]

# (name, torch class, kwargs, group): group = (lr, weight_decay) for the 1-D parameter, or None
CONFIGS = [
    ("adam", "Adam", dict(lr=0.01), None),
    ("adam_weight_decay", "Adam", dict(lr=0.01, weight_decay=0.1), None),
    ("adam_amsgrad", "Adam", dict(lr=0.01, amsgrad=True), None),
    ("adam_amsgrad_wd_betas", "Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.05, amsgrad=True), None),
    ("adam_maximize", "Adam", dict(lr=0.01, maximize=True), None),
    ("adamw", "AdamW", dict(lr=0.01), None),
    ("adamw_wd", "AdamW", dict(lr=0.01, weight_decay=0.5), None),
    ("adamw_amsgrad", "AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True), None),
    ("adamw_maximize", "AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True), None),
    ("adamw_groups", "AdamW", dict(lr=0.01, weight_decay=0.2), (0.05, 0.0)),
    ("adamax", "Adamax", dict(lr=0.02), None),
    ("adamax_wd_betas", "Adamax", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-2, weight_decay=0.1), None),
    ("adamax_maximize", "Adamax", dict(lr=0.02, maximize=True), None),
    ("nadam", "NAdam", dict(lr=0.02), None),
    ("nadam_wd_decay", "NAdam", dict(lr=0.02, betas=(0.85, 0.99), eps=1e-4, weight_decay=0.1, momentum_decay=0.01), None),
    ("radam", "RAdam", dict(lr=0.01), None),
    ("radam_wd_betas", "RAdam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-4, weight_decay=0.1), None),
    ("rmsprop", "RMSprop", dict(lr=0.01), None),
    ("rmsprop_alpha_wd", "RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4, weight_decay=0.1), None),
    ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True), None),
    ("rmsprop_momentum", "RMSprop", dict(lr=0.01, momentum=0.9), None),
    ("rmsprop_centered_momentum_max", "RMSprop", dict(lr=0.01, momentum=0.5, centered=True, maximize=True), None),
    ("rmsprop_groups", "RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1), (0.001, 0.0)),
    ("adagrad", "Adagrad", dict(lr=0.1), None),
    ("adagrad_decay_init_wd", "Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.5, weight_decay=0.1, eps=1e-6), None),
    ("adagrad_maximize", "Adagrad", dict(lr=0.1, maximize=True), None),
    ("adadelta", "Adadelta", dict(), None),
    ("adadelta_rho_eps_lr_wd", "Adadelta", dict(lr=0.5, rho=0.8, eps=1e-3, weight_decay=0.1), None),
    ("adadelta_maximize", "Adadelta", dict(maximize=True), None),
    ("sgd_maximize", "SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01, maximize=True), None),
    ("sgd_groups", "SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), (0.3, 0.0)),
]

# field order of the C struct (ctape option names; PyTorch's defaults where not given)
DEFAULTS = {
    "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
    "Adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "NAdam": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3),
    "RAdam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0),
    "Adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10),
    "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0),
    "SGD": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0),
}


def run(cls, kwargs, group):
    params = [torch.nn.Parameter(p.clone()) for p in initial]
    extra = {"foreach": False} if cls != "SGD" else {}
    if group is None:
        opt = getattr(torch.optim, cls)(params, **kwargs, **extra)
    else:
        vec = [p for p in params if p.dim() <= 1]
        rest = [p for p in params if p.dim() > 1]
        opt = getattr(torch.optim, cls)([{"params": rest}, {"params": vec, "lr": group[0], "weight_decay": group[1]}],
                                        **kwargs, **extra)
    out = []
    for step in range(STEPS):
        for p, g in zip(params, grads[step]):
            p.grad = g.clone()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in params]).tolist())
    return out


def flat(ts):
    return torch.cat([t.flatten() for t in ts]).tolist()


def reals(xs, indent="    "):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 5]) for i in range(0, len(vals), 5)]
    return "{\n" + indent + (",\n" + indent).join(rows) + "}"


total = sum(torch.Size(s).numel() for s in SHAPES)
print("/* tests/reference/optim_torch_ref.h — GENERATED by tests/reference/gen_optim_torch.py with PyTorch %s"
      % torch.__version__)
print(" * (torch.optim, float64; NAdam with PyTorch 2.0's mu_product fix, see the script). Do not edit; regenerate:")
print(" *     /usr/bin/python3 tests/reference/gen_optim_torch.py > tests/reference/optim_torch_ref.h")
print(" * Parameters %s, concatenated flat (%d values). */" % (", ".join(str(s) for s in SHAPES), total))
print("#ifndef CTAPE_TESTS_OPTIM_TORCH_REF_H")
print("#define CTAPE_TESTS_OPTIM_TORCH_REF_H\n")
print("#define OPT_REF_PARAMS %d" % len(SHAPES))
print("#define OPT_REF_STEPS %d" % STEPS)
print("#define OPT_REF_TOTAL %d" % total)
print("static const int opt_ref_ndim[OPT_REF_PARAMS] = {%s};" % ", ".join(str(len(s)) for s in SHAPES))
print("static const int opt_ref_shape[OPT_REF_PARAMS][3] = {%s};" %
      ", ".join("{" + ", ".join(str(d) for d in s) + "}" for s in SHAPES))
print("static const double opt_ref_initial[OPT_REF_TOTAL] = %s;" % reals(flat(initial)))
print("/* the gradient fed before each step */")
print("static const double opt_ref_grads[OPT_REF_STEPS][OPT_REF_TOTAL] = {")
for step in range(STEPS):
    print("    %s," % reals(flat(grads[step]), "        "))
print("};\n")
print("typedef struct {")
print("    const char *name, *torch_class;")
print("    double lr, beta1, beta2, eps, weight_decay, momentum_decay;")
print("    double alpha, momentum, dampening, lr_decay, initial_accumulator_value, rho;")
print("    int amsgrad, maximize, centered;")
print("    int groups;                     /* 1: the 1-D parameter in a group of its own */")
print("    double group_lr, group_weight_decay;")
print("    double after[OPT_REF_STEPS][OPT_REF_TOTAL]; /* parameters after each step */")
print("} opt_ref_case;\n")
print("static const opt_ref_case opt_ref_cases[] = {")
for name, cls, kw, group in CONFIGS:
    o = dict(DEFAULTS[cls])
    o.update(kw)
    b1, b2 = o.get("betas", (0.0, 0.0))
    traj = run(cls, kw, group)
    fields = [o["lr"], b1, b2, o.get("eps", 0.0), o.get("weight_decay", 0.0), o.get("momentum_decay", 0.0),
              o.get("alpha", 0.0), o.get("momentum", 0.0), o.get("dampening", 0.0), o.get("lr_decay", 0.0),
              o.get("initial_accumulator_value", 0.0), o.get("rho", 0.0)]
    flags = [int(o.get("amsgrad", False)), int(o.get("maximize", False)), int(o.get("centered", False))]
    g = group or (0.0, 0.0)
    print('    {"%s", "%s", %s, %s, %d, %r, %r, {' % (name, cls, ", ".join(repr(float(v)) for v in fields),
                                                    ", ".join(str(v) for v in flags), int(group is not None),
                                                    float(g[0]), float(g[1])))
    for row in traj:
        print("        %s," % reals(row, "        "))
    print("    }},")
print("};")
print("#define OPT_REF_COUNT %d\n" % len(CONFIGS))
print("#endif")
