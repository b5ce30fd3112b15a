"""One torch.optim step over 10 M parameters, the twin of bench/optim_step.c.

usage: optim_torch.py TORCH_THREADS [REPEATS]
Ten 1000x1000 float32 parameters; SGD(momentum=0.9), Adam(foreach=True), AdamW(foreach=True)
and, as PyTorch has no Lion, nothing for Lion. Fresh gradients are written before each step
and a 64 MB buffer swept (untimed; as bench/optim_step.c, so a step starts from main memory);
the best of REPEATS steps (default 10, after 3 warm-up steps) counts. Adam is also timed with
foreach=False (the per-tensor loop) for reference. Two figures per optimizer:
step_ms (optimizer.step() alone) and step_zero_ms (step plus zero_grad(set_to_none=False), the
memset ctape's step does in its own pass). Prints one key=value line per optimizer.
"""
import sys
import time

import torch


def main():
    threads = int(sys.argv[1])
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    junk = torch.zeros(16 << 20)
    torch.set_num_threads(threads)
    cases = [
        ("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9)),
        ("adam", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True)),
        ("adamw", lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=True)),
        ("adam_single_tensor", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False)),
    ]
    for name, make in cases:
        params = [torch.nn.Parameter(torch.linspace(-0.5, 0.5, 1000 * 1000).reshape(1000, 1000)) for _ in range(10)]
        for p in params:
            p.grad = torch.zeros_like(p)
        opt = make(params)
        best_step = best_zero = float("inf")
        for r in range(repeats + 3):
            with torch.no_grad():
                for p in params:
                    p.grad.uniform_(-0.5, 0.5)
                junk.add_(1)
            t0 = time.perf_counter()
            opt.step()
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            t2 = time.perf_counter()
            if r >= 3:
                best_step = min(best_step, t1 - t0)
                best_zero = min(best_zero, t2 - t0)
        print("optimizer=%s params=%d threads=%d step_ms=%.3f step_zero_ms=%.3f" %
              (name, sum(p.numel() for p in params), threads, 1e3 * best_step, 1e3 * best_zero))


if __name__ == "__main__":
    main()
