"""W1 in PyTorch: the same MLP, optimizer, batch and data as bench/w1_mlp.c.

usage: w1_mlp_torch.py DATA_DIR TORCH_THREADS
Batches are drawn from uint8 tensors held in memory and converted per batch, which is the
fastest way PyTorch can feed this model (no DataLoader worker overhead). Prints one line of
key=value figures for bench/run.sh.
"""
import gzip
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    data_dir, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    train_x = torch.from_numpy(read_idx(f"{data_dir}/train-images-idx3-ubyte.gz").reshape(-1, 784).copy())
    train_y = torch.from_numpy(read_idx(f"{data_dir}/train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = torch.from_numpy(read_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).copy())
    test_y = torch.from_numpy(read_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz").astype(np.int64))

    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n = train_x.shape[0]
    perm = torch.randperm(n)
    start = time.perf_counter()
    for i in range(0, n, 128):
        idx = perm[i:i + 128]
        x = train_x[idx].float().div_(255)
        loss = F.cross_entropy(model(x), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start

    with torch.no_grad():
        pred = model(test_x.float() / 255).argmax(1)
        acc = (pred == test_y).float().mean().item()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"samples_per_s={n / seconds:.0f} seconds={seconds:.3f} peak_rss_mib={rss:.1f} "
          f"test_accuracy={acc:.4f} threads={threads}")


if __name__ == "__main__":
    main()
