"""The MNIST CNN of examples/mnist_cnn.c in PyTorch: same model, optimizer, batch and data.

usage: cnn_torch.py DATA_DIR TORCH_THREADS [--epochs N] [--seed N] [--train NAME] [--batch N] [--cosine]
    conv 1->32 3x3, ReLU, maxpool 2, conv 32->64 3x3, ReLU, maxpool 2, flatten,
    linear 1600->128, ReLU, linear 128->10; SGD momentum 0.9, lr 0.05, batch 64.
--train is the IDX file prefix (default train10k, as in ../shared/data/mnist); --cosine anneals
the learning rate to 0 over the run, per step, as mnist_cnn --cosine does. Batches are
drawn from uint8 tensors held in memory and converted per batch (no DataLoader workers), the
fastest way PyTorch can feed this model. Prints one line of key=value figures per epoch, the
shape bench/run.sh reads: samples_per_s and seconds of training only (evaluation excluded).
Run it as bench/run.sh does, e.g. OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 ... 2.
"""
import argparse
import gzip
import resource
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
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("threads", type=int)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train", default="train10k")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cosine", action="store_true")
    a = ap.parse_args()
    data_dir, threads, epochs, seed, split, batch = a.data_dir, a.threads, a.epochs, a.seed, a.train, a.batch
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_x = torch.from_numpy(read_idx(f"{data_dir}/{split}-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    train_y = torch.from_numpy(read_idx(f"{data_dir}/{split}-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = torch.from_numpy(read_idx(f"{data_dir}/t10k-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    test_y = torch.from_numpy(read_idx(f"{data_dir}/t10k-labels-idx1-ubyte.gz").astype(np.int64))

    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n = train_x.shape[0]
    steps_per_epoch = (n + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch) if a.cosine else None
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n)
        start = time.perf_counter()
        loss_sum, steps = 0.0, 0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            x = train_x[idx].float().div_(255)
            loss = F.cross_entropy(model(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            loss_sum += loss.item()
            steps += 1
        seconds = time.perf_counter() - start

        model.eval()
        with torch.no_grad():
            correct = 0
            for i in range(0, test_x.shape[0], 1000):
                pred = model(test_x[i:i + 1000].float() / 255).argmax(1)
                correct += (pred == test_y[i:i + 1000]).sum().item()
        acc = correct / test_x.shape[0]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"epoch={epoch} samples_per_s={n / seconds:.0f} seconds={seconds:.3f} "
              f"loss={loss_sum / steps:.4f} peak_rss_mib={rss:.1f} test_accuracy={acc:.4f} "
              f"threads={threads}", flush=True)


if __name__ == "__main__":
    main()
