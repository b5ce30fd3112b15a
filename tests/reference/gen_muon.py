#!/usr/bin/python3
"""Reference values for ctape's Muon (optim/muon.c), computed with PyTorch in float64.

Written from the published algorithm (Jordan et al. 2024; the KellerJordan/Muon repository's
muon_update and airbench94_muon.py's Muon class), in float64 where the references iterate in
bfloat16:

1. Newton-Schulz orthogonalisation (5 steps, (a, b, c) = (3.4445, -4.7750, 2.0315), eps 1e-7)
   of a tall, a wide, a square and a conv-shaped matrix.
2. Trajectories of four steps on three parameters, a conv weight (4, 2, 3, 3), a tall matrix
   (6, 3) (Muon) and a bias (6,) (an SGD "aux" optimizer), from fixed gradients (data in the
   header, not a model), under three settings:
   - repo:     the Muon repository's update: m <- lerp(m, g, 1 - beta), Nesterov u = lerp(g, m, beta),
               5 steps, scale sqrt(max(1, rows/cols)), decoupled weight decay; bias by SGD Nesterov;
   - airbench: airbench94_muon.py's Muon: b <- mu*b + g, u = g + mu*b, weights renormalised to
               ||W||_F = sqrt(rows) before each step, 3 steps, no scale; bias by SGD Nesterov with
               L2 decay; every lr scaled by (1 - t/8) before step t as its schedule does;
   - plain:    b <- mu*b + g, u = b (no Nesterov), 5 steps, scale; the bias by SGD without momentum.

    /usr/bin/python3 tests/reference/gen_muon.py > tests/reference/muon_ref.h

Inputs are rounded to float32 values so the float32 build starts from exactly the same numbers.
`make test` never runs this script.
"""
import torch

torch.manual_seed(17)
A, B, C = 3.4445, -4.7750, 2.0315
EPS = 1e-7
SHAPES = [(4, 2, 3, 3), (6, 3), (6,)]
NAMES = ["conv.weight", "fc.weight", "fc.bias"]
STEPS = 4


def f32(t):
    return t.float().double()


def newton_schulz(g, steps):
    x = g / (g.norm() + EPS)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        a = x @ x.T
        b = B * a + C * a @ a
        x = A * x + b @ x
    return x.T if tall else x


NS_SHAPES = [(7, 3), (3, 8), (5, 5), (4, 18)]
ns_inputs = [f32(torch.randn(*s, dtype=torch.float64)) for s in NS_SHAPES]
ns_outputs = [newton_schulz(g, 5) for g in ns_inputs]

initial = [f32(torch.randn(*s, dtype=torch.float64)) for s in SHAPES]
grads = [[f32(torch.randn(*s, dtype=torch.float64)) for s in SHAPES] for _ in range(STEPS)]


def muon_repo(opts):
    ws = [p.clone() for p in initial]
    m = [torch.zeros_like(w) for w in ws[:2]]
    bias_opt_param = torch.nn.Parameter(ws[2].clone())
    sgd = torch.optim.SGD([bias_opt_param], lr=opts["aux_lr"], momentum=0.9, nesterov=True)
    out = []
    for step in range(STEPS):
        for k in range(2):
            g = grads[step][k].clone()
            m[k].lerp_(g, 1 - opts["momentum"])
            u = g.lerp(m[k], opts["momentum"])
            rows = u.size(0)
            u2 = u.reshape(rows, -1)
            o = newton_schulz(u2, 5) * max(1, u2.size(0) / u2.size(1)) ** 0.5
            ws[k].mul_(1 - opts["lr"] * opts["weight_decay"])
            ws[k].add_(o.view(ws[k].shape), alpha=-opts["lr"])
        bias_opt_param.grad = grads[step][2].clone()
        sgd.step()
        out.append(torch.cat([ws[0].flatten(), ws[1].flatten(), bias_opt_param.detach().flatten()]).tolist())
    return out


def muon_airbench(opts):
    ws = [p.clone() for p in initial]
    bufs = [torch.zeros_like(w) for w in ws[:2]]
    bias_opt_param = torch.nn.Parameter(ws[2].clone())
    sgd = torch.optim.SGD([bias_opt_param], lr=opts["aux_lr"], momentum=0.85, nesterov=True,
                          weight_decay=opts["aux_weight_decay"])
    out = []
    for step in range(STEPS):
        factor = 1 - step / 8
        lr = opts["lr"] * factor
        sgd.param_groups[0]["lr"] = opts["aux_lr"] * factor
        for k in range(2):
            g = grads[step][k].clone()
            bufs[k].mul_(opts["momentum"]).add_(g)
            g = g.add(bufs[k], alpha=opts["momentum"])
            ws[k].mul_(len(ws[k]) ** 0.5 / ws[k].norm())
            update = newton_schulz(g.reshape(len(g), -1), 3).view(g.shape)
            ws[k].add_(update, alpha=-lr)
        bias_opt_param.grad = grads[step][2].clone()
        sgd.step()
        out.append(torch.cat([ws[0].flatten(), ws[1].flatten(), bias_opt_param.detach().flatten()]).tolist())
    return out


def muon_plain(opts):
    ws = [p.clone() for p in initial]
    bufs = [torch.zeros_like(w) for w in ws[:2]]
    out = []
    for step in range(STEPS):
        for k in range(2):
            g = grads[step][k].clone()
            bufs[k].mul_(opts["momentum"]).add_(g)
            u2 = bufs[k].reshape(len(g), -1)
            o = newton_schulz(u2, 5) * max(1, u2.size(0) / u2.size(1)) ** 0.5
            ws[k].add_(o.view(ws[k].shape), alpha=-opts["lr"])
        ws[2].add_(grads[step][2], alpha=-opts["aux_lr"])
        out.append(torch.cat([w.flatten() for w in ws]).tolist())
    return out


CASES = [
    ("repo", muon_repo, dict(lr=0.02, momentum=0.95, weight_decay=0.1, aux_lr=0.1, aux_weight_decay=0)),
    ("airbench", muon_airbench, dict(lr=0.24, momentum=0.6, weight_decay=0, aux_lr=0.05, aux_weight_decay=0.01)),
    ("plain", muon_plain, dict(lr=0.05, momentum=0.9, weight_decay=0, aux_lr=0.1, aux_weight_decay=0)),
]


def reals(xs, indent="    "):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 5]) for i in range(0, len(vals), 5)]
    return "{\n" + indent + (",\n" + indent).join(rows) + "}"


def flat(ts):
    return torch.cat([t.flatten() for t in ts]).tolist()


total = sum(torch.Size(s).numel() for s in SHAPES)
ns_total = sum(r * c for r, c in NS_SHAPES)
print(f"""/* tests/reference/muon_ref.h — GENERATED by tests/reference/gen_muon.py with PyTorch {torch.__version__}
 * (float64). Do not edit; regenerate:
 *     /usr/bin/python3 tests/reference/gen_muon.py > tests/reference/muon_ref.h
 * Newton-Schulz outputs of {len(NS_SHAPES)} matrices, and Muon trajectories on the parameters
 * {", ".join(f"{n} {s}" for n, s in zip(NAMES, SHAPES))}, concatenated flat ({total} values). */
#ifndef CTAPE_TESTS_MUON_REF_H
#define CTAPE_TESTS_MUON_REF_H

#define MUON_REF_NS {len(NS_SHAPES)}
static const int muon_ref_ns_shape[MUON_REF_NS][2] = {{{", ".join(f"{{{r}, {c}}}" for r, c in NS_SHAPES)}}};
/* the matrices, then NS5 of each (eps 1e-7), concatenated row-major */
static const double muon_ref_ns_in[{ns_total}] = {reals(flat(ns_inputs))};
static const double muon_ref_ns_out[{ns_total}] = {reals(flat(ns_outputs))};

#define MUON_REF_PARAMS {len(SHAPES)}
#define MUON_REF_STEPS {STEPS}
#define MUON_REF_TOTAL {total}
static const char *const muon_ref_names[MUON_REF_PARAMS] = {{{", ".join(f'"{n}"' for n in NAMES)}}};
static const int muon_ref_ndim[MUON_REF_PARAMS] = {{{", ".join(str(len(s)) for s in SHAPES)}}};
static const int muon_ref_shape[MUON_REF_PARAMS][4] = {{{", ".join("{" + ", ".join(map(str, s)) + "}" for s in SHAPES)}}};
static const double muon_ref_initial[MUON_REF_TOTAL] = {reals(flat(initial))};
/* the gradient fed before each step */
static const double muon_ref_grads[MUON_REF_STEPS][MUON_REF_TOTAL] = {{""")
print(",\n".join("    " + reals(flat(g), "        ") for g in grads))
print("""};

typedef struct {
    const char *name;
    double lr, momentum, weight_decay, aux_lr, aux_weight_decay;
    double after[MUON_REF_STEPS][MUON_REF_TOTAL]; /* every parameter after each step */
} muon_ref_case;

static const muon_ref_case muon_ref_cases[] = {""")
for name, fn, opts in CASES:
    traj = fn(opts)
    print(f'    {{"{name}", {opts["lr"]!r}, {opts["momentum"]!r}, {opts["weight_decay"]!r}, {opts["aux_lr"]!r}, '
          f'{opts["aux_weight_decay"]!r},\n     {{')
    print(",\n".join("         " + reals(row, "          ") for row in traj))
    print("     }},")
print("""};
#define MUON_REF_COUNT ((int)(sizeof muon_ref_cases / sizeof *muon_ref_cases))

#endif""")
