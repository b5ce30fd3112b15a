#!/usr/bin/python3
"""Reference trajectories for ctape's optimizers from the literature (optim/literature.c),
written from each paper's algorithm box in plain NumPy (PyTorch 1.13 has none of them).

    /usr/bin/python3 tests/reference/ref_literature.py > tests/reference/literature_ref.h

Four parameter tensors start from fixed values (one of them all zeros, which exercises the
trust-ratio conventions of LAMB and LARS); the same fixed sequence of gradients (data, not a
model) is fed to each optimizer under several settings, and the parameters after every step
are recorded in float64. Every input is rounded to a float32 value first, so the float32 build
starts from exactly the same numbers. Per-tensor quantities (norms, RMS, trust ratios,
Adafactor's factored statistics) are per parameter tensor, as in the papers' "per layer".

The papers, one function each below:
  AdaBelief  Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
             Gradients", NeurIPS 2020, Algorithm 2.
  Lion       Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
             Algorithm 2 (Program 1).
  LAMB       You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
             minutes", ICLR 2020, Algorithm 2, with φ(z) = z.
  LARS       You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", 2017,
             Algorithm 1.
  Adafactor  Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
             ICML 2018, Algorithms 4 (factored, matrices) and 5 (vectors), with the relative
             step size and update clipping of sections 5-8.
  ADOPT      Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any β2 with the Optimal
             Rate", NeurIPS 2024, Algorithm 1 with the clipping of its revised version (clip
             value t^(1/4), as the authors' code).
Wrappers, on the objective f(θ) = Σᵢ ½aᵢ(θᵢ − cᵢ)² + θᵢ⁴/40 over the flat parameters (its
gradient is computed here and in the C test, so SAM's second gradient is a real one):
  Lookahead  Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
             NeurIPS 2019, Algorithm 1.
  SAM        Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
             Generalization", ICLR 2021, Algorithm 1; adaptive: Kwon et al., "ASAM", ICML 2021.
  EMA        s ← d·s + (1 − d)·θ after each step; warmup d = min(d, (1 + n)/(10 + n)) as
             TensorFlow's ExponentialMovingAverage(num_updates).
The inner optimizers are SGD with torch.optim.SGD's momentum convention (buffer starts at g)
and Lion above.
`make test` never runs this script.
"""
import numpy as np

rng = np.random.default_rng(20240607)
SHAPES = [(3, 4), (4,), (2, 3, 2), (3,)]
STEPS = 6


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


initial = [f32(rng.standard_normal(s)) for s in SHAPES]
initial[3] = np.zeros(SHAPES[3])  # a zero-initialised tensor (a bias)
grads = [[f32(rng.standard_normal(s)) for s in SHAPES] for _ in range(STEPS)]


def norm(x):
    return float(np.sqrt(np.sum(x * x)))


def rms(x):
    return float(np.sqrt(np.mean(x * x)))


# ---- AdaBelief (Algorithm 2) -------------------------------------------------------------------
#   m ← β1 m + (1−β1) g;  s ← β2 s + (1−β2)(g − m)² + ε
#   θ ← θ − lr · (m/(1−β1^t)) / (√(s/(1−β2^t)) + ε)
# weight decay: decoupled θ ← θ(1 − lr λ) (the authors' package default), or L2 g ← g + λθ.
def adabelief(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-16, weight_decay=0.0, decoupled=1):
    def init(p):
        return dict(m=np.zeros_like(p), s=np.zeros_like(p))

    def step(p, g, st, t):
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        st["m"] = beta1 * st["m"] + (1 - beta1) * g
        st["s"] = beta2 * st["s"] + (1 - beta2) * (g - st["m"]) ** 2 + eps
        mhat = st["m"] / (1 - beta1 ** t)
        shat = st["s"] / (1 - beta2 ** t)
        return p - lr * mhat / (np.sqrt(shat) + eps)
    return init, step


# ---- Lion (Algorithm 2) ------------------------------------------------------------------------
#   c ← β1 m + (1−β1) g;  θ ← θ − lr (sign(c) + λθ);  m ← β2 m + (1−β2) g
def lion(lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
    def init(p):
        return dict(m=np.zeros_like(p))

    def step(p, g, st, t):
        c = beta1 * st["m"] + (1 - beta1) * g
        p = p - lr * (np.sign(c) + weight_decay * p)
        st["m"] = beta2 * st["m"] + (1 - beta2) * g
        return p
    return init, step


# ---- LAMB (Algorithm 2) ------------------------------------------------------------------------
#   m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  r = (m/(1−β1^t)) / (√(v/(1−β2^t)) + ε)
#   u = r + λθ;  θ ← θ − lr · (‖θ‖/‖u‖) · u        (trust ratio 1 when ‖θ‖ or ‖u‖ is 0)
def lamb(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01):
    def init(p):
        return dict(m=np.zeros_like(p), v=np.zeros_like(p))

    def step(p, g, st, t):
        st["m"] = beta1 * st["m"] + (1 - beta1) * g
        st["v"] = beta2 * st["v"] + (1 - beta2) * g * g
        r = (st["m"] / (1 - beta1 ** t)) / (np.sqrt(st["v"] / (1 - beta2 ** t)) + eps)
        u = r + weight_decay * p
        wn, un = norm(p), norm(u)
        trust = wn / un if wn > 0 and un > 0 else 1.0
        return p - lr * trust * u
    return init, step


# ---- LARS (Algorithm 1) ------------------------------------------------------------------------
#   local lr  λˡ = η ‖w‖ / (‖∇‖ + β‖w‖)       (1 when ‖w‖ or ‖∇‖ is 0)
#   v ← m v + lr · λˡ · (∇ + βw);  w ← w − v
def lars(lr=1.0, momentum=0.9, weight_decay=5e-4, trust_coefficient=1e-3):
    def init(p):
        return dict(v=np.zeros_like(p))

    def step(p, g, st, t):
        wn, gn = norm(p), norm(g)
        local = trust_coefficient * wn / (gn + weight_decay * wn) if wn > 0 and gn > 0 else 1.0
        st["v"] = momentum * st["v"] + lr * local * (g + weight_decay * p)
        return p - st["v"]
    return init, step


# ---- Adafactor (Algorithms 4 and 5, sections 5-8) ----------------------------------------------
#   ρ_t = min(1e-2, 1/√t) (relative step) or lr;  α_t = max(ε2, RMS(θ_{t−1}))·ρ_t (scale_parameter)
#   β̂2_t = 1 − t^c  (c = −0.8)
#   matrix (n×m; a tensor of rank > 2 is viewed as (size(0), rest)):
#     R ← β̂2 R + (1−β̂2)(G² + ε1)·1_m;  C ← β̂2 C + (1−β̂2)·1_nᵀ(G² + ε1);  V̂ = R C / (1_nᵀR)
#   vector:  V̂ ← β̂2 V̂ + (1−β̂2)(G² + ε1)
#   U = G/√V̂;  Û = U / max(1, RMS(U)/d);  with β1: M ← β1 M + (1−β1)·α_t Û, step M (else α_t Û)
#   decoupled weight decay θ ← θ − α_t λ θ (as the Hugging Face implementation)
def adafactor(lr=0.0, eps1=1e-30, eps2=1e-3, clip_threshold=1.0, decay_rate=-0.8, beta1=0.0,
              weight_decay=0.0, relative_step=1, scale_parameter=1):
    def init(p):
        st = dict(m=np.zeros_like(p))
        if p.ndim >= 2:
            st["R"] = np.zeros(p.shape[0])
            st["C"] = np.zeros(p.size // p.shape[0])
        else:
            st["V"] = np.zeros_like(p)
        return st

    def step(p, g, st, t):
        rho = min(1e-2, 1 / np.sqrt(t)) if relative_step else lr
        alpha = max(eps2, rms(p)) * rho if scale_parameter else rho
        beta2 = 1 - t ** decay_rate
        g2 = g * g + eps1
        if p.ndim >= 2:
            G2 = g2.reshape(p.shape[0], -1)
            st["R"] = beta2 * st["R"] + (1 - beta2) * G2.sum(axis=1)
            st["C"] = beta2 * st["C"] + (1 - beta2) * G2.sum(axis=0)
            V = np.outer(st["R"], st["C"]) / st["R"].sum()
            U = g.reshape(p.shape[0], -1) / np.sqrt(V)
            U = U.reshape(p.shape)
        else:
            st["V"] = beta2 * st["V"] + (1 - beta2) * g2
            U = g / np.sqrt(st["V"])
        U = U / max(1.0, rms(U) / clip_threshold)
        upd = alpha * U
        if beta1:
            st["m"] = beta1 * st["m"] + (1 - beta1) * upd
            upd = st["m"]
        if weight_decay:
            p = p - alpha * weight_decay * p
        return p - upd
    return init, step


# ---- ADOPT (Algorithm 1, clipped) ---------------------------------------------------------------
#   step 1:   v ← g²  (θ does not move)
#   step t>1: m ← β1 m + (1−β1)·clip(g / max(√v, ε), (t−1)^¼);  θ ← θ − lr m;  v ← β2 v + (1−β2) g²
# weight decay: L2 (g ← g + λθ, the default of the authors' code) or decoupled θ ← θ(1 − lr λ).
def adopt(lr=1e-3, beta1=0.9, beta2=0.9999, eps=1e-6, weight_decay=0.0, decoupled=0, clip=1):
    def init(p):
        return dict(m=np.zeros_like(p), v=np.zeros_like(p))

    def step(p, g, st, t):
        if weight_decay and not decoupled:
            g = g + weight_decay * p
        if t == 1:
            st["v"] = g * g
            return p
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        n = g / np.maximum(np.sqrt(st["v"]), eps)
        if clip:
            c = (t - 1) ** 0.25
            n = np.clip(n, -c, c)
        st["m"] = beta1 * st["m"] + (1 - beta1) * n
        p = p - lr * st["m"]
        st["v"] = beta2 * st["v"] + (1 - beta2) * g * g
        return p
    return init, step


OPTIMIZERS = dict(adabelief=adabelief, lion=lion, lamb=lamb, lars=lars, adafactor=adafactor, adopt=adopt)

# (case name, optimizer, options): the C test builds the same optimizer for each case name.
CASES = [
    ("adabelief", "adabelief", dict(lr=0.01)),
    ("adabelief_decoupled", "adabelief", dict(lr=0.01, weight_decay=0.1)),
    ("adabelief_l2", "adabelief", dict(lr=0.01, weight_decay=0.1, decoupled=0)),
    ("adabelief_betas_eps", "adabelief", dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-8)),
    ("lion", "lion", dict(lr=0.01)),
    ("lion_decay", "lion", dict(lr=0.01, weight_decay=0.5)),
    ("lion_betas", "lion", dict(lr=0.003, beta1=0.95, beta2=0.98)),
    ("lamb", "lamb", dict(lr=0.01)),
    ("lamb_no_decay", "lamb", dict(lr=0.02, weight_decay=0.0)),
    ("lamb_betas", "lamb", dict(lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.1, eps=1e-8)),
    ("lars", "lars", dict()),
    ("lars_no_momentum", "lars", dict(lr=5.0, momentum=0.0, weight_decay=0.0)),
    ("lars_trust", "lars", dict(lr=2.0, momentum=0.5, weight_decay=0.01, trust_coefficient=0.02)),
    ("adafactor", "adafactor", dict()),
    ("adafactor_lr", "adafactor", dict(lr=0.05, relative_step=0)),
    ("adafactor_momentum_decay", "adafactor", dict(beta1=0.9, weight_decay=0.1)),
    ("adafactor_unscaled_clip", "adafactor", dict(lr=0.1, relative_step=0, scale_parameter=0,
                                                   clip_threshold=0.5, decay_rate=-0.5)),
    ("adopt", "adopt", dict(lr=0.01)),
    ("adopt_l2", "adopt", dict(lr=0.01, weight_decay=0.1)),
    ("adopt_decoupled", "adopt", dict(lr=0.01, weight_decay=0.1, decoupled=1)),
    ("adopt_unclipped", "adopt", dict(lr=0.02, beta1=0.5, beta2=0.9, clip=0)),
]


def run(kind, opts):
    init, step = OPTIMIZERS[kind](**opts)
    params = [p.copy() for p in initial]
    states = [init(p) for p in params]
    out = []
    for t in range(1, STEPS + 1):
        params = [step(p, g, st, t) for p, g, st in zip(params, grads[t - 1], states)]
        out.append(np.concatenate([p.ravel() for p in params]))
    return out



# ---- wrappers -----------------------------------------------------------------------------------
TOTAL = sum(int(np.prod(s)) for s in SHAPES)
IDX = np.arange(TOTAL)
A = 1.0 + (IDX % 5)
C = 0.3 * ((IDX % 7) - 3)
WRAP_STEPS = 12


def objective_grad(x):
    return A * (x - C) + 0.1 * x ** 3


def sgd(lr, momentum=0.0):
    """torch.optim.SGD on the flat vector: b ← g (first step), else μb + g;  θ ← θ − lr·b."""
    st = {}

    def step(x, g):
        if momentum:
            st["b"] = g.copy() if "b" not in st else momentum * st["b"] + g
            g = st["b"]
        return x - lr * g
    return step


def lion_flat(lr, beta1=0.9, beta2=0.99):
    st = {"m": np.zeros(TOTAL)}

    def step(x, g):
        c = beta1 * st["m"] + (1 - beta1) * g
        st["m"] = beta2 * st["m"] + (1 - beta2) * g
        return x - lr * np.sign(c)
    return step


def lookahead(inner, k=5, alpha=0.5):
    """Algorithm 1: φ = θ₀; k inner steps; φ ← φ + α(θ − φ); θ ← φ."""
    st = {"t": 0}

    def step(x, g):
        if st["t"] == 0:
            st["phi"] = x.copy()
        x = inner(x, g)
        st["t"] += 1
        if st["t"] % k == 0:
            st["phi"] = st["phi"] + alpha * (x - st["phi"])
            x = st["phi"].copy()
        return x
    return step


def sam(inner, rho=0.05, adaptive=False):
    """Algorithm 1: ε = ρ·T²g/(‖Tg‖ + 1e-12) (T = |θ| adaptive, else 1); g' = ∇f(θ + ε); inner step."""
    def step(x, g):
        t = np.abs(x) if adaptive else np.ones_like(x)
        e = rho * t * t * g / (norm(t * g) + 1e-12)
        return inner(x, objective_grad(x + e))
    return step


def run_wrapper(step):
    x = np.concatenate([p.ravel() for p in initial])
    out = []
    for _ in range(WRAP_STEPS):
        x = step(x, objective_grad(x))
        out.append(x.copy())
    return out


def run_ema(inner, decay, warmup=False):
    """The averages after each update, for the trajectory of `inner`."""
    x = np.concatenate([p.ravel() for p in initial])
    s = x.copy()
    out = []
    for n in range(WRAP_STEPS):
        x = inner(x, objective_grad(x))
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        s = d * s + (1 - d) * x
        out.append(s.copy())
    return out


WRAP_CASES = [
    ("lookahead_sgd_momentum", "Lookahead(SGD(lr=0.05, momentum=0.9), k=5, alpha=0.5)",
     lambda: run_wrapper(lookahead(sgd(0.05, 0.9)))),
    ("lookahead_lion", "Lookahead(Lion(lr=0.01), k=3, alpha=0.8)",
     lambda: run_wrapper(lookahead(lion_flat(0.01), k=3, alpha=0.8))),
    ("sam_sgd", "SAM(SGD(lr=0.05), rho=0.05)", lambda: run_wrapper(sam(sgd(0.05)))),
    ("sam_adaptive_momentum", "SAM(SGD(lr=0.05, momentum=0.9), rho=0.5, adaptive=True)",
     lambda: run_wrapper(sam(sgd(0.05, 0.9), rho=0.5, adaptive=True))),
    ("ema", "EMA(decay=0.9) of SGD(lr=0.05)", lambda: run_ema(sgd(0.05), 0.9)),
    ("ema_warmup", "EMA(decay=0.999, warmup) of SGD(lr=0.05, momentum=0.5)",
     lambda: run_ema(sgd(0.05, 0.5), 0.999, warmup=True)),
]


def flat(ts):
    return np.concatenate([t.ravel() for t in ts])


def reals(xs, indent="    "):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 5]) for i in range(0, len(vals), 5)]
    return "{\n" + indent + (",\n" + indent).join(rows) + "}"


total = sum(int(np.prod(s)) for s in SHAPES)
print("/* tests/reference/literature_ref.h — GENERATED by tests/reference/ref_literature.py (NumPy %s," % np.__version__)
print(" * float64), from the papers' algorithm boxes cited there. Do not edit; regenerate:")
print(" *     /usr/bin/python3 tests/reference/ref_literature.py > tests/reference/literature_ref.h")
print(" * Parameters %s, concatenated flat (%d values); the last starts at zero. */" %
      (", ".join(str(s) for s in SHAPES), total))
print("#ifndef CTAPE_TESTS_LITERATURE_REF_H")
print("#define CTAPE_TESTS_LITERATURE_REF_H\n")
print("#define LIT_REF_PARAMS %d" % len(SHAPES))
print("#define LIT_REF_STEPS %d" % STEPS)
print("#define LIT_REF_TOTAL %d" % total)
print("static const int lit_ref_ndim[LIT_REF_PARAMS] = {%s};" % ", ".join(str(len(s)) for s in SHAPES))
print("static const int lit_ref_shape[LIT_REF_PARAMS][3] = {%s};" %
      ", ".join("{" + ", ".join(str(d) for d in s) + "}" for s in SHAPES))
print("static const double lit_ref_initial[LIT_REF_TOTAL] = %s;" % reals(flat(initial)))
print("/* the gradient fed before each step */")
print("static const double lit_ref_grads[LIT_REF_STEPS][LIT_REF_TOTAL] = {")
for step in range(STEPS):
    print("    %s," % reals(flat(grads[step]), "        "))
print("};\n")
print("typedef struct {")
print("    const char *name;")
print("    const char *options; /* the reference's arguments */")
print("    double after[LIT_REF_STEPS][LIT_REF_TOTAL]; /* parameters after each step */")
print("} lit_ref_case;\n")
print("static const lit_ref_case lit_ref_cases[] = {")
for name, kind, opts in CASES:
    desc = "%s(%s)" % (kind, ", ".join("%s=%r" % kv for kv in opts.items()))
    print('    {"%s", "%s", {' % (name, desc))
    for row in run(kind, opts):
        print("        %s," % reals(row, "        "))
    print("    }},")
print("};")
print("#define LIT_REF_COUNT %d\n" % len(CASES))
print("/* Wrappers on f(θ) = Σᵢ ½aᵢ(θᵢ − cᵢ)² + θᵢ⁴/40, aᵢ = 1 + (i mod 5), cᵢ = 0.3·((i mod 7) − 3), i the flat")
print(" * index: the parameters after each step (EMA: the averages after each update). */")
print("#define LIT_WRAP_STEPS %d" % WRAP_STEPS)
print("typedef struct {")
print("    const char *name;")
print("    const char *options;")
print("    double after[LIT_WRAP_STEPS][LIT_REF_TOTAL];")
print("} lit_wrap_case;\n")
print("static const lit_wrap_case lit_wrap_cases[] = {")
for name, desc, fn in WRAP_CASES:
    print('    {"%s", "%s", {' % (name, desc))
    for row in fn():
        print("        %s," % reals(row, "        "))
    print("    }},")
print("};")
print("#define LIT_WRAP_COUNT %d\n" % len(WRAP_CASES))
print("#endif")
