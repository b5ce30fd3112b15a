#!/usr/bin/python3
"""Reference values for ctape's embedding losses (losses/embedding.c), from PyTorch.

    /usr/bin/python3 tests/reference/gen_loss_embedding.py > tests/reference/loss_embedding_ref.h

Each loss is written here in plain torch (float64) from its paper or from PyTorch itself:
  - SupCon / NT-Xent: the authors' SupConLoss (HobbitLong/SupContrast, losses.py, contrast_mode
    "all") line by line, except that anchors without a positive are left out of the mean (the
    authors' code divides 0 by 0 there; ctape leaves them out, see losses/README.md);
  - Circle loss, pair and class forms: eq. (4)/(6) of Sun et al. 2020 with detached α, per anchor,
    averaged over anchors with a positive and a negative;
  - triplet, explicit: torch.nn.TripletMarginLoss and TripletMarginWithDistanceLoss (cosine);
  - triplet, batch all / batch hard (Hermans et al. 2017) on F.pairwise_distance distances;
  - center loss (Wen et al. 2016): lambda/2 * ||x_i - c_{y_i}||^2, averaged over the batch.
Inputs are rounded to float32 values first so the float32 build reads exactly what torch saw.
`make test` never runs this script.
"""
import torch
import torch.nn.functional as F

torch.manual_seed(20240612)
RED = {"mean": 0, "sum": 1, "none": 2}
KIND = {"supcon": 0, "circle": 1, "circle_class": 2, "triplet": 3, "triplet_mined": 4, "center": 5}


def f32(t):
    return t.float().double()


def reduce(per, reduction, count):
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / max(count, 1)


# ---- SupCon: the authors' code (contrast_mode "all"), anchors without positives left out ----
def supcon(features, labels, reduction, temperature=0.07, base_temperature=0.07, normalize=True):
    if normalize:
        features = F.normalize(features, dim=-1)
    bsz, n_views = features.shape[0], features.shape[1]
    if labels is None:
        mask = torch.eye(bsz, dtype=torch.float64)
    else:
        labels = labels.contiguous().view(-1, 1)
        mask = torch.eq(labels, labels.T).double()
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)   # (V*N, D), a = v*N + i
    anchor_feature, anchor_count = contrast_feature, n_views
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, n_views)
    logits_mask = torch.scatter(torch.ones_like(mask), 1,
                                torch.arange(bsz * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    pos = mask.sum(1)
    has_pos = pos > 0                                                   # ours: leave these out
    mean_log_prob_pos = (mask * log_prob).sum(1) / torch.where(has_pos, pos, torch.ones_like(pos))
    loss = -(temperature / base_temperature) * mean_log_prob_pos * has_pos
    per = loss.view(anchor_count, bsz).T                                  # (N, V): ctape's order
    return reduce(per, reduction, int(has_pos.sum()))


# ---- Circle loss (Sun et al. 2020) ---------------------------------------------------------------
def circle_core(s, pos, neg, m, gamma):
    ap = torch.clamp_min(1 + m - s.detach(), 0)
    an = torch.clamp_min(s.detach() + m, 0)
    logit_p = -gamma * ap * (s - (1 - m))
    logit_n = gamma * an * (s - m)
    neg_inf = torch.full_like(s, float("-inf"))
    lse_p = torch.logsumexp(torch.where(pos, logit_p, neg_inf), dim=1)
    lse_n = torch.logsumexp(torch.where(neg, logit_n, neg_inf), dim=1)
    return F.softplus(lse_p + lse_n)


def circle_pair(x, labels, reduction, m=0.4, gamma=80.0):
    e = F.normalize(x, dim=1)
    s = e @ e.T
    n = x.shape[0]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    valid = pos.any(1) & neg.any(1)
    per = torch.zeros(n, dtype=torch.float64)
    per_valid = circle_core(s[valid], pos[valid], neg[valid], m, gamma)
    per = per.index_put((valid.nonzero().flatten(),), per_valid)
    return reduce(per, reduction, int(valid.sum()))


def circle_class(x, proxies, labels, reduction, m=0.4, gamma=80.0):
    s = F.normalize(x, dim=1) @ F.normalize(proxies, dim=1).T
    pos = F.one_hot(labels, proxies.shape[0]).bool()
    return reduce(circle_core(s, pos, ~pos, m, gamma), reduction, x.shape[0])


# ---- triplet -------------------------------------------------------------------------------------
def cosine_distance(a, b):
    return 1 - F.cosine_similarity(a, b, dim=-1)


def triplet(a, p, n, reduction, margin=1.0, cosine=False, swap=False, eps=1e-6):
    if cosine:
        fn = torch.nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance, margin=margin,
                                                    swap=swap, reduction=reduction)
    else:
        fn = torch.nn.TripletMarginLoss(margin=margin, p=2, eps=eps, swap=swap, reduction=reduction)
    return fn(a, p, n)


def pairwise(x, cosine, eps=1e-6):
    if cosine:
        return 1 - F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    return F.pairwise_distance(x[:, None, :], x[None, :, :], p=2, eps=eps)   # D_ij = ||x_i - x_j + eps||


def triplet_mined(x, labels, reduction, margin=1.0, cosine=False, hard=False):
    d = pairwise(x, cosine)
    n = x.shape[0]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    if hard:   # Hermans et al. 2017: farthest positive, nearest negative
        valid = pos.any(1) & neg.any(1)
        hp = torch.where(pos, d, torch.full_like(d, float("-inf"))).max(1).values
        hn = torch.where(neg, d, torch.full_like(d, float("inf"))).min(1).values
        per = torch.where(valid, torch.clamp_min(hp - hn + margin, 0), torch.zeros_like(hp))
        return reduce(per, reduction, int(valid.sum()))
    valid = pos[:, :, None] & neg[:, None, :]                     # (a, p, n)
    t = torch.clamp_min(d[:, :, None] - d[:, None, :] + margin, 0) * valid
    return reduce(t.sum((1, 2)), reduction, int((t > 0).sum()))


# ---- center loss -----------------------------------------------------------------------------------
def center(x, centers, labels, reduction, lam=0.003):
    per = lam / 2 * ((x - centers[labels]) ** 2).sum(1)
    return reduce(per, reduction, x.shape[0])


# ---- cases ---------------------------------------------------------------------------------------
def rnd(*shape, scale=1.0):
    return f32(torch.randn(*shape, dtype=torch.float64) * scale)


cases = []


def add(name, kind, reduction, fn, inputs, labels=None, p1=0.0, p2=0.0, flag1=0, flag2=0, n=0, v=1, d=0, c=0):
    xs = [t.clone().requires_grad_(True) for t in inputs]
    loss = fn(*xs)
    cot = f32(torch.randn(loss.shape, dtype=torch.float64)) if reduction == "none" else torch.ones((), dtype=torch.float64)
    (loss * cot).sum().backward()
    cases.append(dict(name=name, kind=KIND[kind], reduction=RED[reduction], n=n, v=v, d=d, c=c,
                      p1=p1, p2=p2, flag1=flag1, flag2=flag2,
                      inputs=[t.flatten().tolist() for t in inputs],
                      grads=[t.grad.flatten().tolist() for t in xs],
                      labels=None if labels is None else labels.tolist(),
                      cot=cot.flatten().tolist(), loss=loss.detach().flatten().tolist()))


# SupCon: V = 2 with a singleton class (its other view is its only positive), V = 1 with an anchor
# without positive, NT-Xent, no normalisation with another temperature.
lab6 = torch.tensor([0, 1, 0, 2, 1, 3])
f62 = rnd(6, 2, 5)
for red in ("mean", "sum", "none"):
    add("supcon_v2_" + red, "supcon", red, lambda f, r=red: supcon(f, lab6, r), [f62], lab6,
        p1=0.07, p2=0.07, flag1=1, n=6, v=2, d=5)
lab6b = torch.tensor([0, 1, 0, 2, 1, 0])
f61 = rnd(6, 1, 4)
add("supcon_v1_lonely_mean", "supcon", "mean", lambda f: supcon(f, lab6b, "mean"), [f61], lab6b,
    p1=0.07, p2=0.07, flag1=1, n=6, v=1, d=4)
add("supcon_v1_lonely_none", "supcon", "none", lambda f: supcon(f, lab6b, "none"), [f61], lab6b,
    p1=0.07, p2=0.07, flag1=1, n=6, v=1, d=4)
f42 = rnd(4, 2, 6)
add("ntxent_v2_mean", "supcon", "mean", lambda f: supcon(f, None, "mean"), [f42], None,
    p1=0.07, p2=0.07, flag1=1, n=4, v=2, d=6)
f43 = rnd(4, 3, 3)
add("ntxent_v3_t05_none", "supcon", "none", lambda f: supcon(f, None, "none", 0.5, 0.07), [f43], None,
    p1=0.5, p2=0.07, flag1=1, n=4, v=3, d=3)
f52 = rnd(5, 2, 4, scale=0.3)
lab5 = torch.tensor([1, 1, 2, 2, 7])
add("supcon_raw_t1_mean", "supcon", "mean", lambda f: supcon(f, lab5, "mean", 1.0, 1.0, normalize=False),
    [f52], lab5, p1=1.0, p2=1.0, flag1=0, n=5, v=2, d=4)

# Circle, pair form: classes 2 and 3 are singletons (those anchors have no positive).
lab8 = torch.tensor([0, 0, 1, 1, 2, 0, 1, 3])
x8 = rnd(8, 5)
for red in ("mean", "sum", "none"):
    add("circle_" + red, "circle", red, lambda x, r=red: circle_pair(x, lab8, r), [x8], lab8,
        p1=0.4, p2=80.0, n=8, d=5)
add("circle_paper_m025_g256", "circle", "mean", lambda x: circle_pair(x, lab8, "mean", 0.25, 256.0), [x8], lab8,
    p1=0.25, p2=256.0, n=8, d=5)
add("circle_m0_g1", "circle", "mean", lambda x: circle_pair(x, lab8, "mean", 0.0, 1.0), [x8], lab8,
    p1=0.0, p2=1.0, n=8, d=5)
# Circle, class form
x6 = rnd(6, 5)
prox = rnd(4, 5)
lab6c = torch.tensor([0, 3, 1, 1, 2, 0])
for red in ("mean", "none"):
    add("circle_class_" + red, "circle_class", red, lambda x, w, r=red: circle_class(x, w, lab6c, r),
        [x6, prox], lab6c, p1=0.4, p2=80.0, n=6, d=5, c=4)
add("circle_class_m025_g16", "circle_class", "sum", lambda x, w: circle_class(x, w, lab6c, "sum", 0.25, 16.0),
    [x6, prox], lab6c, p1=0.25, p2=16.0, n=6, d=5, c=4)

# Triplet, explicit: some triplets active, some not (scale 0.6 puts distances near the margin).
a, p, n_ = rnd(7, 4, scale=0.6), rnd(7, 4, scale=0.6), rnd(7, 4, scale=0.6)
for red in ("mean", "sum", "none"):
    add("triplet_l2_" + red, "triplet", red, lambda x, y, z, r=red: triplet(x, y, z, r), [a, p, n_],
        p1=1.0, p2=1e-6, n=7, d=4)
add("triplet_l2_swap_mean", "triplet", "mean", lambda x, y, z: triplet(x, y, z, "mean", swap=True), [a, p, n_],
    p1=1.0, p2=1e-6, flag2=1, n=7, d=4)
add("triplet_l2_margin03_none", "triplet", "none", lambda x, y, z: triplet(x, y, z, "none", margin=0.3),
    [a, p, n_], p1=0.3, p2=1e-6, n=7, d=4)
add("triplet_cos_none", "triplet", "none", lambda x, y, z: triplet(x, y, z, "none", margin=0.5, cosine=True),
    [a, p, n_], p1=0.5, p2=1e-6, flag1=1, n=7, d=4)

# Triplet, mined: class 3 is a singleton (no positive for that anchor).
lab9 = torch.tensor([0, 1, 0, 2, 1, 2, 0, 3, 1])
x9 = rnd(9, 3, scale=0.7)
for red in ("mean", "sum", "none"):
    add("batch_all_l2_" + red, "triplet_mined", red, lambda x, r=red: triplet_mined(x, lab9, r), [x9], lab9,
        p1=1.0, p2=1e-6, n=9, d=3)
    add("batch_hard_l2_" + red, "triplet_mined", red, lambda x, r=red: triplet_mined(x, lab9, r, hard=True),
        [x9], lab9, p1=1.0, p2=1e-6, flag2=1, n=9, d=3)
add("batch_all_cos_mean", "triplet_mined", "mean", lambda x: triplet_mined(x, lab9, "mean", 0.3, cosine=True),
    [x9], lab9, p1=0.3, p2=1e-6, flag1=1, n=9, d=3)
add("batch_hard_cos_mean", "triplet_mined", "mean",
    lambda x: triplet_mined(x, lab9, "mean", 0.3, cosine=True, hard=True), [x9], lab9,
    p1=0.3, p2=1e-6, flag1=1, flag2=1, n=9, d=3)

# Center loss
x7 = rnd(7, 3)
cent = rnd(4, 3)
lab7 = torch.tensor([0, 2, 2, 1, 0, 3, 2])
for red in ("mean", "sum", "none"):
    add("center_" + red, "center", red, lambda x, cc, r=red: center(x, cc, lab7, r), [x7, cent], lab7,
        p1=0.003, n=7, d=3, c=4)
add("center_lambda1_mean", "center", "mean", lambda x, cc: center(x, cc, lab7, "mean", 1.0), [x7, cent], lab7,
    p1=1.0, n=7, d=3, c=4)


# ---- the header ----------------------------------------------------------------------------------
def reals(xs):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 4]) for i in range(0, len(vals), 4)]
    return "{\n    " + ",\n    ".join(rows) + "}" if len(rows) > 1 else "{" + ", ".join(vals) + "}"


def ints(xs):
    return "{" + ", ".join(str(int(x)) for x in xs) + "}"


print("/* tests/reference/loss_embedding_ref.h — GENERATED by tests/reference/gen_loss_embedding.py")
print(" * with PyTorch %s (float64). Do not edit; regenerate:" % torch.__version__)
print(" *     /usr/bin/python3 tests/reference/gen_loss_embedding.py > tests/reference/loss_embedding_ref.h")
print(" * Per case: inputs x[0..2] (flattened), the loss (1 value, or the none shape), a cotangent,")
print(" * and d<cotangent, loss>/d x[k]. */")
print("#ifndef CTAPE_TESTS_LOSS_EMBEDDING_REF_H")
print("#define CTAPE_TESTS_LOSS_EMBEDDING_REF_H\n")
print("enum { EMB_SUPCON, EMB_CIRCLE, EMB_CIRCLE_CLASS, EMB_TRIPLET, EMB_TRIPLET_MINED, EMB_CENTER };\n")
print("typedef struct {")
print("    const char *name;")
print("    int kind;      /* EMB_* */")
print("    int reduction; /* 0 mean, 1 sum, 2 none: the order of ct_reduction */")
print("    int n, v, d, c;")
print("    double p1, p2; /* supcon τ, τ_base; circle m, γ; triplet margin, eps; center λ */")
print("    int flag1;     /* supcon normalize; triplet 1 = cosine distance */")
print("    int flag2;     /* triplet: swap (explicit) or 1 = batch hard (mined) */")
print("    int n_inputs;")
print("    const double *x[3];   /* features | anchor, positive, negative | features, proxies/centres */")
print("    const int *labels;    /* n, or NULL (NT-Xent, explicit triplets) */")
print("    int n_loss;")
print("    const double *cotangent, *loss;")
print("    const double *grad[3];")
print("} emb_ref_case;\n")
for k, c in enumerate(cases):
    for j, xs in enumerate(c["inputs"]):
        print("static const double emb_ref_%d_x%d[] = %s;" % (k, j, reals(xs)))
        print("static const double emb_ref_%d_g%d[] = %s;" % (k, j, reals(c["grads"][j])))
    if c["labels"] is not None:
        print("static const int emb_ref_%d_labels[] = %s;" % (k, ints(c["labels"])))
    print("static const double emb_ref_%d_cot[] = %s;" % (k, reals(c["cot"])))
    print("static const double emb_ref_%d_loss[] = %s;\n" % (k, reals(c["loss"])))
print("static const emb_ref_case emb_ref_cases[] = {")
for k, c in enumerate(cases):
    ni = len(c["inputs"])
    xs = ", ".join("emb_ref_%d_x%d" % (k, j) if j < ni else "NULL" for j in range(3))
    gs = ", ".join("emb_ref_%d_g%d" % (k, j) if j < ni else "NULL" for j in range(3))
    lab = "emb_ref_%d_labels" % k if c["labels"] is not None else "NULL"
    print('    {"%s", %d, %d, %d, %d, %d, %d, %r, %r, %d, %d, %d, {%s}, %s, %d, emb_ref_%d_cot, emb_ref_%d_loss, {%s}},'
          % (c["name"], c["kind"], c["reduction"], c["n"], c["v"], c["d"], c["c"], c["p1"], c["p2"],
             c["flag1"], c["flag2"], ni, xs, lab, len(c["loss"]), k, k, gs))
print("};")
print("#define EMB_REF_COUNT %d\n" % len(cases))
print("#endif")
