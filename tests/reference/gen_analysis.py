"""Reference values for losses/analysis.h (tests/losses/test_analysis.c): temperature scaling fitted
by SciPy (Brent's root finder on the NLL's derivative in beta = 1/T, checked against a bounded
minimisation of the NLL over log T), neural collapse NC1-NC4 with NumPy's D x D pseudo-inverse, and
the margin quantiles and softmax-collapse fractions of the logit statistics.

    /usr/bin/python3 tests/reference/gen_analysis.py > tests/reference/analysis_ref.h
"""
import numpy as np
import scipy
from scipy.optimize import brentq, minimize_scalar
from scipy.special import logsumexp, softmax

BINS = 15


def f32(x):
    return np.asarray(x, dtype=np.float32)


# ---- calibration: ct_metrics' definitions ----------------------------------------------------
def ece(p, y, bins, equal_mass):
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    n = len(y)
    if equal_mass:
        order = np.argsort(conf, kind="stable")
        conf, correct = conf[order], correct[order]
        total = 0.0
        for b in range(bins):
            lo, hi = int(b * n / bins), int((b + 1) * n / bins)
            if hi > lo:
                total += abs(correct[lo:hi].sum() - conf[lo:hi].sum()) / n
        return total
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / n * abs(correct[m].mean() - conf[m].mean())
    return total


def nll(z, y, beta):
    zb = beta * z
    return np.mean(logsumexp(zb, axis=1) - zb[np.arange(len(y)), y])


def dnll(z, y, beta):
    p = softmax(beta * z, axis=1)
    return np.mean((p * z).sum(axis=1) - z[np.arange(len(y)), y])


def temperature_case(name, seed, n, c, scale):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    z = rng.normal(0, 1, (n, c))
    z[np.arange(n), y] += rng.uniform(0, 2.5, n)
    z = f32(z * scale).astype(np.float64)
    beta = brentq(lambda b: dnll(z, y, b), 1e-2, 1e2, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    check = minimize_scalar(lambda s: nll(z, y, np.exp(-s)), bounds=(-4, 4), method="bounded",
                            options=dict(xatol=1e-10))
    assert abs(np.exp(check.x) - 1 / beta) < 1e-6 * (1 / beta), (np.exp(check.x), 1 / beta)
    p1, pt = softmax(z, axis=1), softmax(beta * z, axis=1)
    return dict(name=name, z=z, y=y, n=n, c=c, t=1 / beta, nll_before=nll(z, y, 1), nll_after=nll(z, y, beta),
                ece_before=ece(p1, y, BINS, False), ece_after=ece(pt, y, BINS, False),
                ecem_before=ece(p1, y, BINS, True), ecem_after=ece(pt, y, BINS, True))


# ---- neural collapse, as Papyan et al. write it, with D x D matrices --------------------------
def collapse_case(name, seed, counts, d, spread):
    rng = np.random.default_rng(seed)
    c = len(counts)
    centres = rng.normal(0, 1, (c, d))
    y = np.concatenate([np.full(k, j) for j, k in enumerate(counts)])
    rng.shuffle(y)
    n = len(y)
    h = f32(centres[y] + spread * rng.normal(0, 1, (n, d))).astype(np.float64)
    w = f32(rng.normal(0, 1, (c, d))).astype(np.float64)
    b = f32(rng.normal(0, 0.5, c)).astype(np.float64)
    mu_g = h.mean(axis=0)
    mu = np.stack([h[y == j].mean(axis=0) for j in range(c)])
    M = mu - mu_g
    sb = M.T @ M / c
    hc = h - mu[y]
    sw = hc.T @ hc / n
    nc1 = np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10, hermitian=True)) / c
    norms = np.linalg.norm(M, axis=1)
    cos = (M @ M.T) / np.outer(norms, norms)
    iu = np.triu_indices(c, 1)
    pairs = cos[iu]
    wn = np.linalg.norm(w, axis=1)
    wcos = ((w @ w.T) / np.outer(wn, wn))[iu]
    nc3 = np.sum((w / np.linalg.norm(w) - M / np.linalg.norm(M)) ** 2)
    near = np.argmin(((h[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2), axis=1)
    pred = np.argmax(h @ w.T + b, axis=1)
    return dict(name=name, n=n, d=d, c=c, h=h, y=y, w=w, b=b, nc1=nc1, equinorm=norms.std() / norms.mean(),
                cos_std=pairs.std(), cos_mean=pairs.mean(), max_angle=np.mean(np.abs(pairs + 1 / (c - 1))),
                w_equinorm=wn.std() / wn.mean(), w_cos_std=wcos.std(), nc3=nc3, nc4=np.mean(near == pred))


# ---- logit statistics -------------------------------------------------------------------------
def softmax_one(z, y, dtype):
    """p_y == 1 with every operation in dtype, summed in class order (analysis.h's definition)."""
    z = z.astype(dtype)
    m = z.max()
    s = dtype(0)
    e = [np.exp(dtype(v - m)) for v in z]
    for v in e:
        s = dtype(s + v)
    return dtype(e[y] / s) == dtype(1)


def logit_case(name, seed, n, c, scale):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    z = rng.normal(0, 1, (n, c))
    z[np.arange(n), y] += rng.uniform(-1, 1, n) * scale + scale
    z = f32(z).astype(np.float64)
    others = np.where(np.eye(c, dtype=bool)[y], -np.inf, z)
    margin = z[np.arange(n), y] - others.max(axis=1)
    q = np.quantile(margin, [0.1, 0.25, 0.5, 0.75, 0.9])
    c32 = np.mean([softmax_one(z[i], y[i], np.float32) for i in range(n)])
    c64 = np.mean([softmax_one(z[i], y[i], np.float64) for i in range(n)])
    return dict(name=name, n=n, c=c, z=z, y=y, mean=margin.mean(), std=margin.std(), min=margin.min(),
                max=margin.max(), q=q, c32=c32, c64=c64)


def arr(xs, fmt):
    return ", ".join(fmt % x for x in np.ravel(xs))


T = [temperature_case("overconfident", 21, 120, 5, 3.0), temperature_case("underconfident", 22, 90, 4, 0.4)]
NC = [collapse_case("imbalanced", 31, [14, 9, 11, 6], 7, 0.6), collapse_case("narrow", 32, [8, 8, 8, 8, 8, 8], 3, 0.3)]
L = [logit_case("spread", 41, 41, 4, 20.0), logit_case("wide", 42, 50, 5, 30.0)]

print("/* tests/reference/analysis_ref.h — GENERATED by tests/reference/gen_analysis.py with numpy %s, scipy %s."
      % (np.__version__, scipy.__version__))
print(" * Do not edit; regenerate:\n *     /usr/bin/python3 tests/reference/gen_analysis.py > tests/reference/analysis_ref.h */")
print("#ifndef CTAPE_TESTS_ANALYSIS_REF_H\n#define CTAPE_TESTS_ANALYSIS_REF_H\n")
print("typedef struct {\n    const char *name;\n    int n, c;\n    const float *logits;\n    const int *labels;")
print("    double temperature, nll_before, nll_after, ece_before, ece_after, ece_mass_before, ece_mass_after;")
print("} temperature_ref_case;\n")
for k, t in enumerate(T):
    print("static const float temperature_ref_logits_%d[] = {%s};" % (k, arr(t["z"], "%.9gf")))
    print("static const int temperature_ref_labels_%d[] = {%s};" % (k, arr(t["y"], "%d")))
print("static const temperature_ref_case temperature_ref_cases[] = {")
for k, t in enumerate(T):
    print('    {"%s", %d, %d, temperature_ref_logits_%d, temperature_ref_labels_%d, %s},'
          % (t["name"], t["n"], t["c"], k, k, arr([t[x] for x in ("t", "nll_before", "nll_after", "ece_before",
                                                                   "ece_after", "ecem_before", "ecem_after")], "%.17g")))
print("};\n")
print("typedef struct {\n    const char *name;\n    int n, d, c;\n    const float *features, *weight, *bias;\n"
      "    const int *labels;")
print("    double nc1, equinorm, cos_std, cos_mean, max_angle, w_equinorm, w_cos_std, nc3, nc4;\n} collapse_ref_case;\n")
for k, t in enumerate(NC):
    print("static const float collapse_ref_features_%d[] = {%s};" % (k, arr(t["h"], "%.9gf")))
    print("static const float collapse_ref_weight_%d[] = {%s};" % (k, arr(t["w"], "%.9gf")))
    print("static const float collapse_ref_bias_%d[] = {%s};" % (k, arr(t["b"], "%.9gf")))
    print("static const int collapse_ref_labels_%d[] = {%s};" % (k, arr(t["y"], "%d")))
print("static const collapse_ref_case collapse_ref_cases[] = {")
for k, t in enumerate(NC):
    print('    {"%s", %d, %d, %d, collapse_ref_features_%d, collapse_ref_weight_%d, collapse_ref_bias_%d, '
          'collapse_ref_labels_%d,\n     %s},'
          % (t["name"], t["n"], t["d"], t["c"], k, k, k, k,
             arr([t[x] for x in ("nc1", "equinorm", "cos_std", "cos_mean", "max_angle", "w_equinorm", "w_cos_std",
                                 "nc3", "nc4")], "%.17g")))
print("};\n")
print("typedef struct {\n    const char *name;\n    int n, c;\n    const float *logits;\n    const int *labels;")
print("    double mean, std, min, max, quantiles[5], collapsed_f32, collapsed_f64;\n} logit_ref_case;\n")
for k, t in enumerate(L):
    print("static const float logit_ref_logits_%d[] = {%s};" % (k, arr(t["z"], "%.9gf")))
    print("static const int logit_ref_labels_%d[] = {%s};" % (k, arr(t["y"], "%d")))
print("static const logit_ref_case logit_ref_cases[] = {")
for k, t in enumerate(L):
    print('    {"%s", %d, %d, logit_ref_logits_%d, logit_ref_labels_%d, %s, {%s}, %s},'
          % (t["name"], t["n"], t["c"], k, k, arr([t[x] for x in ("mean", "std", "min", "max")], "%.17g"),
             arr(t["q"], "%.17g"), arr([t["c32"], t["c64"]], "%.17g")))
print("};\n\n#endif")
