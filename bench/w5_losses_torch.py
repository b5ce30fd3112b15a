"""W5 in PyTorch: the zoo's losses written in plain torch (F.* where PyTorch has the loss, the
formula otherwise, as tests/reference/gen_loss_zoo.py and gen_loss_embedding.py write them), timed
forward + backward on the same shapes as bench/w5_losses.c.

usage: w5_losses_torch.py TORCH_THREADS [LOSSES [SHAPE]]
LOSSES: comma-separated names (default all); SHAPE: 1024x10, 1024x1000 or 256x128 (default all).
One step: x.grad = None, loss, backward. Best over 5 rounds of >= 50 ms of the mean step time.
Prints "loss=NAME shape=NxC us=T" lines for bench/run.sh.
"""
import sys
import time

import torch
import torch.nn.functional as F


def onehot(z, y):
    return F.one_hot(y, z.shape[1]).to(z.dtype)


def logp_y(z, y):
    return F.log_softmax(z, 1).gather(1, y[:, None])[:, 0]


def focal(z, y, gamma=2.0, alpha=1.0):
    lp = logp_y(z, y)
    return (-alpha * (1 - lp.exp()) ** gamma * lp).mean()


def sigmoid_focal(x, y, alpha=0.25, gamma=2.0):  # torchvision.ops.sigmoid_focal_loss, mean
    t = onehot(x, y)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    return ((alpha * t + (1 - alpha) * (1 - t)) * ce * (1 - p_t) ** gamma).mean()


def poly1(z, y, eps=1.0):
    return (F.cross_entropy(z, y, reduction="none") + eps * (1 - logp_y(z, y).exp())).mean()


def poly1_focal(z, y, eps=1.0, gamma=2.0):
    lp = logp_y(z, y)
    p = lp.exp()
    return (-(1 - p) ** gamma * lp + eps * (1 - p) ** (gamma + 1)).mean()


def squentropy(z, y):
    mask = 1 - onehot(z, y)
    return (F.cross_entropy(z, y, reduction="none") + ((z * mask) ** 2).sum(1) / (z.shape[1] - 1)).mean()


def comp_sum(z, y, tau=1.7):
    return ((torch.exp((tau - 1) * logp_y(z, y)) - 1) / (1 - tau)).mean()


def nce_rce(z, y, alpha=1.0, beta=1.0, A=-4.0):
    lp = F.log_softmax(z, 1)
    nce = lp.gather(1, y[:, None])[:, 0] / lp.sum(1)
    rce = -A * (1 - lp.exp().gather(1, y[:, None])[:, 0])
    return (alpha * nce + beta * rce).mean()


def stablemax(z, y):
    s = torch.where(z >= 0, z + 1, 1 / (1 - z))
    return (torch.log(s.sum(1)) - torch.log(s.gather(1, y[:, None])[:, 0])).mean()


def supcon(f, y, temperature=0.07, base_temperature=0.07):  # SupContrast's loss, V = 1
    f = F.normalize(f, dim=-1)
    n = f.shape[0]
    mask = torch.eq(y[:, None], y[None, :]).to(f.dtype)
    logits = f @ f.T / temperature
    logits = logits - logits.max(1, keepdim=True)[0].detach()
    logits_mask = 1 - torch.eye(n, dtype=f.dtype)
    mask = mask * logits_mask
    log_prob = logits - torch.log((torch.exp(logits) * logits_mask).sum(1, keepdim=True))
    pos = mask.sum(1)
    has_pos = pos > 0
    mean_log_prob_pos = (mask * log_prob).sum(1) / torch.where(has_pos, pos, torch.ones_like(pos))
    return (-(temperature / base_temperature) * mean_log_prob_pos)[has_pos].mean()


def circle(x, y, m=0.4, gamma=80.0):  # pair form, as tests/reference/gen_loss_embedding.py
    e = F.normalize(x, dim=1)
    s = e @ e.T
    same = y[:, None] == y[None, :]
    eye = torch.eye(x.shape[0], dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    valid = pos.any(1) & neg.any(1)
    s, pos, neg = s[valid], pos[valid], neg[valid]
    ap = torch.clamp_min(1 + m - s.detach(), 0)
    an = torch.clamp_min(s.detach() + m, 0)
    neg_inf = torch.full_like(s, float("-inf"))
    lse_p = torch.logsumexp(torch.where(pos, -gamma * ap * (s - (1 - m)), neg_inf), dim=1)
    lse_n = torch.logsumexp(torch.where(neg, gamma * an * (s - m), neg_inf), dim=1)
    return F.softplus(lse_p + lse_n).mean()


LOSSES = {
    "cross_entropy": F.cross_entropy,
    "nll": F.nll_loss,
    "bce_with_logits": lambda z, y: F.binary_cross_entropy_with_logits(z, onehot(z, y)),
    "mse": lambda z, y: F.mse_loss(z, onehot(z, y)),
    "l1": lambda z, y: F.l1_loss(z, onehot(z, y)),
    "smooth_l1": lambda z, y: F.smooth_l1_loss(z, onehot(z, y)),
    "huber": lambda z, y: F.huber_loss(z, onehot(z, y)),
    "focal": focal,
    "sigmoid_focal": sigmoid_focal,
    "poly1": poly1,
    "poly_n": poly1,  # ε = [1]: Poly-1
    "poly1_focal": poly1_focal,
    "squentropy": squentropy,
    "comp_sum": comp_sum,
    "gce": comp_sum,  # q = 0.7 is τ = 1.7
    "nce_rce": nce_rce,
    "stablemax": stablemax,
}


def step_us(fn, x, y):
    best = float("inf")
    for r in range(6):
        reps, start = 0, time.perf_counter()
        while True:
            x.grad = None
            fn(x, y).backward()
            reps += 1
            now = time.perf_counter()
            if now - start >= 0.05:
                break
        if r > 0:
            best = min(best, (now - start) / reps)
    return best * 1e6


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 and sys.argv[2] != "all" else None
    only_shape = sys.argv[3] if len(sys.argv) > 3 else None

    def selected(name, n, c):
        return (only is None or name in only) and (only_shape is None or only_shape == f"{n}x{c}")

    torch.manual_seed(1)
    for n, c in ((1024, 10), (1024, 1000)):
        for name, fn in LOSSES.items():
            if not selected(name, n, c):
                continue
            x = (torch.randn(n, c) * 2).requires_grad_()
            y = torch.randint(0, c, (n,))
            print(f"loss={name} shape={n}x{c} us={step_us(fn, x, y):.2f}", flush=True)
    for name, fn in (("supcon", supcon), ("circle", circle)):
        if not selected(name, 256, 128):
            continue
        x = (torch.randn(256, 128) * 2).requires_grad_()
        y = torch.randint(0, 10, (256,))
        print(f"loss={name} shape=256x128 us={step_us(fn, x, y):.2f}", flush=True)


if __name__ == "__main__":
    main()
