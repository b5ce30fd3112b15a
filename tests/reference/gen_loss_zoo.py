#!/usr/bin/python3
"""Reference values for ctape's loss zoo (losses/classification.c), from PyTorch in float64.

Where PyTorch has the loss, its function is used (F.nll_loss, F.binary_cross_entropy_with_logits,
F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.kl_div). The others are written here in
plain torch from their papers' formulas:
  sigmoid focal  torchvision.ops.sigmoid_focal_loss (its source, restated)
  focal          Lin et al. 2017, softmax form  -a_y (1-p_y)^g log p_y
  poly-1 / N     Leng et al. 2022 (PolyLoss)    CE + sum_j eps_j (1-p_y)^j
  poly-1 focal   Leng et al. 2022               FL + eps (1-p_y)^(g+1)  (softmax focal)
  squentropy     Hui, Belkin, Wright 2023       CE + 1/(C-1) sum_{j!=y} z_j^2
  distillation   Hinton et al. 2015             T^2 KL(softmax(t/T) || softmax(s/T))
  comp-sum       Mao, Mohri, Zhong 2023         (p_y^(tau-1) - 1)/(1 - tau), CE at tau = 1
  NCE+RCE        Ma et al. 2020                 a log p_y / sum_k log p_k - b A (1 - p_y)
  StableMax CE   Prieto et al. 2025             s(x) = x+1 (x>=0), 1/(1-x) (x<0) in place of exp

Per case: inputs (rounded to float32 values so the float32 build reads exactly what PyTorch saw),
the loss and d<cotangent, loss>/d input.

    /usr/bin/python3 tests/reference/gen_loss_zoo.py > tests/reference/loss_zoo_ref.h

`make test` never runs this script.
"""
import torch
import torch.nn.functional as F

torch.manual_seed(20250301)
RED = {"mean": 0, "sum": 1, "none": 2, "batchmean": 3}


def f32(t):
    return t.float().double()


def reduce(per, reduction):
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.mean()


# ---- the losses written from their formulas --------------------------------------------------
def focal(z, y, gamma, alpha, reduction):
    logp = F.log_softmax(z, 1).gather(1, y[:, None])[:, 0]
    p = logp.exp()
    a = alpha[y] if torch.is_tensor(alpha) else alpha
    return reduce(-a * (1 - p) ** gamma * logp, reduction)


def sigmoid_focal(x, t, alpha, gamma, reduction):
    # torchvision.ops.sigmoid_focal_loss
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return reduce(loss, reduction)


def poly_n(z, y, eps, reduction):
    ce = F.cross_entropy(z, y, reduction="none")
    p = F.softmax(z, 1).gather(1, y[:, None])[:, 0]
    per = ce
    for j, e in enumerate(eps, start=1):
        per = per + e * (1 - p) ** j
    return reduce(per, reduction)


def poly1_focal(z, y, eps, gamma, alpha, reduction):
    p = F.softmax(z, 1).gather(1, y[:, None])[:, 0]
    fl = focal(z, y, gamma, alpha, "none")
    return reduce(fl + eps * (1 - p) ** (gamma + 1), reduction)


def squentropy(z, y, reduction):
    ce = F.cross_entropy(z, y, reduction="none")
    mask = 1 - F.one_hot(y, z.shape[1]).double()
    return reduce(ce + ((z * mask) ** 2).sum(1) / (z.shape[1] - 1), reduction)


def distillation(s, t, T, reduction):
    q = F.softmax(t.detach() / T, 1)
    per = (q * (F.log_softmax(t.detach() / T, 1) - F.log_softmax(s / T, 1))).sum(1) * T * T
    return per.mean() if reduction == "batchmean" else reduce(per, reduction)


def comp_sum(z, y, tau, reduction):
    logp = F.log_softmax(z, 1).gather(1, y[:, None])[:, 0]
    if tau == 1:
        per = -logp
    else:
        per = (torch.exp((tau - 1) * logp) - 1) / (1 - tau)
    return reduce(per, reduction)


def nce_rce(z, y, alpha, beta, A, reduction):
    logp = F.log_softmax(z, 1)
    nce = logp.gather(1, y[:, None])[:, 0] / logp.sum(1)
    p = logp.exp().gather(1, y[:, None])[:, 0]
    rce = -A * (1 - p)
    return reduce(alpha * nce + beta * rce, reduction)


def stablemax_ce(z, y, reduction):
    s = torch.where(z >= 0, z + 1, 1 / (1 - z))
    per = torch.log(s.sum(1)) - torch.log(s.gather(1, y[:, None])[:, 0])
    return reduce(per, reduction)


# ---- cases -------------------------------------------------------------------------------------
cases = []


def extreme(n, c):
    z = torch.randn(n, c, dtype=torch.float64) * 3
    z[0, 0], z[0, 1] = 1e4, -1e4
    z[1, :] = 1e4
    z[2, :] = -1e4
    z[2, 1] = 1e4
    return z


def add(name, loss, reduction, fn, n=5, c=4, p=(), vec=None, other_kind=None, labels=None, z=None,
        ignore=None):
    z = f32(torch.randn(n, c, dtype=torch.float64) * 2.5 if z is None else z)
    if labels is None:
        labels = torch.randint(0, c, (n,))
    if ignore is not None:
        labels[ignore[1]] = ignore[0]
    other = None
    if other_kind == "probs":
        other = f32(torch.softmax(torch.randn(n, c, dtype=torch.float64) * 2, 1))
        other[0, 1] = 0.0  # a zero probability: 0·log 0 = 0
        other[0] = other[0] / other[0].sum()
        other = f32(other)
    elif other_kind == "logprobs":
        other = f32(torch.log_softmax(torch.randn(n, c, dtype=torch.float64) * 2, 1))
    elif other_kind == "unit":
        other = f32(torch.rand(n, c, dtype=torch.float64))
    elif other_kind == "onehot":
        other = F.one_hot(labels.clamp(min=0), c).double()
    elif other_kind == "normal":
        other = f32(torch.randn(n, c, dtype=torch.float64) * 2)
    x = z.clone().requires_grad_(True)
    loss_key = loss
    loss = fn(x, labels, other)
    cot = f32(torch.randn(loss.shape, dtype=torch.float64)) if loss.dim() > 0 else torch.ones((), dtype=torch.float64)
    (loss * cot).sum().backward()
    cases.append(dict(name=name, loss=loss_key, n=n, c=c, reduction=RED[reduction], p=list(p) + [0] * (4 - len(p)),
                     vec=vec, input=z.flatten().tolist(), other=None if other is None else other.flatten().tolist(),
                     labels=labels.tolist(), cot=cot.flatten().tolist(), out=loss.detach().flatten().tolist(),
                     grad=x.grad.flatten().tolist()))


# vec: class weights / pos_weight / per-class alpha / poly-N epsilons, as float32 values
def vec32(values):
    return f32(torch.tensor(values, dtype=torch.float64))


for r in ["mean", "sum", "none"]:
    add(f"nll_{r}", "nll", r, lambda x, y, o, r=r: F.nll_loss(x, y, reduction=r),
        z=torch.log_softmax(torch.randn(5, 4, dtype=torch.float64), 1))
w = vec32([0.5, 1.5, 1.0, 2.0])
for r in ["mean", "none"]:
    add(f"nll_weight_ignore_{r}", "nll", r,
        lambda x, y, o, r=r: F.nll_loss(x, y, weight=w, ignore_index=-100, reduction=r),
        z=torch.log_softmax(torch.randn(6, 4, dtype=torch.float64), 1), n=6, vec=w.tolist(), ignore=(-100, 2))

pw = vec32([0.5, 2.0, 3.0, 1.0])
for r in ["mean", "sum", "none"]:
    add(f"bce_{r}", "bce", r, lambda x, y, o, r=r: F.binary_cross_entropy_with_logits(x, o, reduction=r),
        other_kind="unit")
    add(f"bce_pos_weight_{r}", "bce", r,
        lambda x, y, o, r=r: F.binary_cross_entropy_with_logits(x, o, pos_weight=pw, reduction=r),
        other_kind="unit", vec=pw.tolist())
add("bce_extreme", "bce", "sum", lambda x, y, o: F.binary_cross_entropy_with_logits(x, o, pos_weight=pw,
    reduction="sum"), z=extreme(5, 4), other_kind="onehot", vec=pw.tolist())

for r in ["mean", "sum", "none"]:
    add(f"mse_{r}", "mse", r, lambda x, y, o, r=r: F.mse_loss(x, o, reduction=r), other_kind="normal")
    add(f"l1_{r}", "l1", r, lambda x, y, o, r=r: F.l1_loss(x, o, reduction=r), other_kind="normal")
for beta in [1.0, 0.5, 0.0]:
    for r in ["mean", "none"]:
        add(f"smooth_l1_b{beta}_{r}", "smooth_l1", r,
            lambda x, y, o, r=r, beta=beta: F.smooth_l1_loss(x, o, beta=beta, reduction=r), p=[beta],
            other_kind="normal")
for delta in [1.0, 2.0]:
    for r in ["mean", "sum"]:
        add(f"huber_d{delta}_{r}", "huber", r,
            lambda x, y, o, r=r, delta=delta: F.huber_loss(x, o, delta=delta, reduction=r), p=[delta],
            other_kind="normal")

for r in ["mean", "sum", "none", "batchmean"]:
    add(f"kl_div_{r}", "kl_div", r, lambda x, y, o, r=r: F.kl_div(x, o, reduction=r),
        z=torch.log_softmax(torch.randn(5, 4, dtype=torch.float64), 1), other_kind="probs")
    add(f"kl_div_log_target_{r}", "kl_div_log_target", r,
        lambda x, y, o, r=r: F.kl_div(x, o, reduction=r, log_target=True),
        z=torch.log_softmax(torch.randn(5, 4, dtype=torch.float64), 1), other_kind="logprobs")

for T in [4.0, 1.0]:
    for r in ["batchmean", "sum", "none"]:
        add(f"kd_T{T}_{r}", "kd", r, lambda x, y, o, r=r, T=T: distillation(x, o, T, r), p=[T],
            other_kind="normal")

alpha_c = vec32([0.25, 0.5, 1.0, 2.0])
for r in ["mean", "sum", "none"]:
    add(f"focal_{r}", "focal", r, lambda x, y, o, r=r: focal(x, y, 2.0, 1.0, r), p=[2.0, 1.0])
add("focal_gamma_half", "focal", "mean", lambda x, y, o: focal(x, y, 0.5, 0.25, "mean"), p=[0.5, 0.25])
add("focal_gamma0", "focal", "mean", lambda x, y, o: focal(x, y, 0.0, 1.0, "mean"), p=[0.0, 1.0])
add("focal_alpha_per_class", "focal", "none", lambda x, y, o: focal(x, y, 2.0, alpha_c, "none"), p=[2.0, 1.0],
    vec=alpha_c.tolist())
add("focal_extreme", "focal", "none", lambda x, y, o: focal(x, y, 2.0, 1.0, "none"), p=[2.0, 1.0],
    z=extreme(5, 4), labels=torch.tensor([1, 0, 1, 2, 3]))

for r in ["mean", "sum", "none"]:
    add(f"sigmoid_focal_{r}", "sigmoid_focal", r, lambda x, y, o, r=r: sigmoid_focal(x, o, 0.25, 2.0, r),
        p=[0.25, 2.0], other_kind="unit")
add("sigmoid_focal_no_alpha", "sigmoid_focal", "mean", lambda x, y, o: sigmoid_focal(x, o, -1.0, 2.0, "mean"),
    p=[-1.0, 2.0], other_kind="onehot")
add("sigmoid_focal_gamma0", "sigmoid_focal", "sum", lambda x, y, o: sigmoid_focal(x, o, 0.25, 0.0, "sum"),
    p=[0.25, 0.0], other_kind="onehot")

for eps in [1.0, -1.0, 2.5]:
    for r in ["mean", "none"]:
        add(f"poly1_e{eps}_{r}", "poly1", r, lambda x, y, o, r=r, eps=eps: poly_n(x, y, [eps], r), p=[eps])
eps_n = [1.0, 0.5, -0.25]
for r in ["mean", "sum"]:
    add(f"poly_n_{r}", "poly_n", r, lambda x, y, o, r=r: poly_n(x, y, eps_n, r), vec=eps_n)
for r in ["mean", "none"]:
    add(f"poly1_focal_{r}", "poly1_focal", r, lambda x, y, o, r=r: poly1_focal(x, y, 1.0, 2.0, 0.25, r),
        p=[1.0, 2.0, 0.25])
add("poly1_focal_extreme", "poly1_focal", "none", lambda x, y, o: poly1_focal(x, y, 1.0, 2.0, 1.0, "none"),
    p=[1.0, 2.0, 1.0], z=extreme(5, 4), labels=torch.tensor([1, 0, 1, 2, 3]))

for r in ["mean", "sum", "none"]:
    add(f"squentropy_{r}", "squentropy", r, lambda x, y, o, r=r: squentropy(x, y, r))
add("squentropy_c10", "squentropy", "mean", lambda x, y, o: squentropy(x, y, "mean"), n=8, c=10)

for tau in [0.0, 0.5, 1.0, 1.7, 2.0, 3.0]:
    for r in ["mean", "none"]:
        add(f"comp_sum_t{tau}_{r}", "comp_sum", r, lambda x, y, o, r=r, tau=tau: comp_sum(x, y, tau, r), p=[tau])
add("comp_sum_extreme_gce", "comp_sum", "none", lambda x, y, o: comp_sum(x, y, 1.7, "none"), p=[1.7],
    z=extreme(5, 4), labels=torch.tensor([1, 0, 1, 2, 3]))

for (a, b) in [(1.0, 1.0), (10.0, 0.1)]:
    for r in ["mean", "none"]:
        add(f"nce_rce_a{a}_b{b}_{r}", "nce_rce", r, lambda x, y, o, r=r, a=a, b=b: nce_rce(x, y, a, b, -4.0, r),
            p=[a, b, -4.0])

for r in ["mean", "sum", "none"]:
    add(f"stablemax_{r}", "stablemax", r, lambda x, y, o, r=r: stablemax_ce(x, y, r))
add("stablemax_extreme", "stablemax", "none", lambda x, y, o: stablemax_ce(x, y, "none"), z=extreme(5, 4),
    labels=torch.tensor([1, 0, 1, 2, 3]))


# ---- the header --------------------------------------------------------------------------------
def reals(xs):
    return ", ".join(repr(float(x)) for x in xs)


print("""/* tests/reference/loss_zoo_ref.h — GENERATED by tests/reference/gen_loss_zoo.py
 * with PyTorch %s (float64). Do not edit; regenerate:
 *     /usr/bin/python3 tests/reference/gen_loss_zoo.py > tests/reference/loss_zoo_ref.h
 * out: 1 value (mean, sum, batchmean) or the unreduced values; grad: d<cotangent, out>/d input. */
#ifndef CTAPE_TESTS_LOSS_ZOO_REF_H
#define CTAPE_TESTS_LOSS_ZOO_REF_H

typedef struct {
    const char *name;
    const char *loss;      /* which loss: the test dispatches on it */
    int n, c;
    int reduction;         /* 0 mean, 1 sum, 2 none, 3 batchmean: the order of ct_reduction */
    double p[4];           /* the loss's scalar parameters, in the order the test reads them */
    const double *vec;     /* weights / pos_weight / per-class alpha / Poly-N epsilons, or NULL */
    int n_vec;
    const double *input;   /* n·c */
    const double *other;   /* n·c target / teacher, or NULL */
    const int *labels;     /* n */
    int n_out;
    const double *cotangent, *out, *grad;
} zoo_ref_case;
""" % torch.__version__)
for k, cs in enumerate(cases):
    print(f"static const double zoo_{k}_input[] = {{{reals(cs['input'])}}};")
    if cs["other"] is not None:
        print(f"static const double zoo_{k}_other[] = {{{reals(cs['other'])}}};")
    if cs["vec"] is not None:
        print(f"static const double zoo_{k}_vec[] = {{{reals(cs['vec'])}}};")
    print(f"static const int zoo_{k}_labels[] = {{{', '.join(str(v) for v in cs['labels'])}}};")
    print(f"static const double zoo_{k}_cot[] = {{{reals(cs['cot'])}}};")
    print(f"static const double zoo_{k}_out[] = {{{reals(cs['out'])}}};")
    print(f"static const double zoo_{k}_grad[] = {{{reals(cs['grad'])}}};")
print("\nstatic const zoo_ref_case zoo_ref_cases[] = {")
for k, cs in enumerate(cases):
    other = f"zoo_{k}_other" if cs["other"] is not None else "NULL"
    vec = f"zoo_{k}_vec" if cs["vec"] is not None else "NULL"
    n_vec = len(cs["vec"]) if cs["vec"] is not None else 0
    print(f'    {{"{cs["name"]}", "{cs["loss"]}", {cs["n"]}, {cs["c"]}, {cs["reduction"]}, {{{reals(cs["p"])}}}, '
          f'{vec}, {n_vec}, zoo_{k}_input, {other}, zoo_{k}_labels, {len(cs["out"])}, zoo_{k}_cot, zoo_{k}_out, '
          f'zoo_{k}_grad}},')
print("};")
print("#define ZOO_REF_COUNT ((int)(sizeof zoo_ref_cases / sizeof zoo_ref_cases[0]))")
print("\n#endif")
