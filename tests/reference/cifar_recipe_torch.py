"""The recipe of tests/examples/test_e2e_cifar.c in PyTorch, to show what accuracy the bar should expect.

usage: /usr/bin/python3 tests/reference/cifar_recipe_torch.py SEED [SHARED_DATA_DIR]
    examples/cifar10_cnn --width 16 --epochs 2 --cosine: 3 x [conv 3x3 pad 1 (no bias),
    BatchNorm2d, ReLU, MaxPool2d 2] with 16/32/64 channels, linear 1024->10; SGD lr 0.01,
    momentum 0.9, weight decay 5e-4, cosine annealing per step, batch 128; random crop
    (padding 4, zeros) + horizontal flip, normalised by the training set's per-channel mean and
    population std. Prints the test accuracy on the 2,000-image subset.
Measured (1 thread, torch 1.13): seeds 1, 2, 3 -> 0.5035, 0.5010, 0.5000.
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_cifar10(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float() / 255
    return images, torch.from_numpy(raw[:, 0].astype(np.int64))


def stage(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


def main():
    seed = int(sys.argv[1])
    data = sys.argv[2] if len(sys.argv) > 2 else "../shared/data"
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = read_cifar10(f"{data}/cifar10/data_batch_sub.bin")
    test_x, test_y = read_cifar10(f"{data}/cifar10/test_batch_sub.bin")
    mean = x.mean((0, 2, 3)).view(1, 3, 1, 1)
    std = x.std((0, 2, 3), unbiased=False).view(1, 3, 1, 1)
    w, epochs, batch = 16, 2, 128
    model = nn.Sequential(*stage(3, w), *stage(w, 2 * w), *stage(2 * w, 4 * w), nn.Flatten(), nn.Linear(64 * w, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    steps = (len(y) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            padded = F.pad(x[idx], (4, 4, 4, 4))
            out = torch.empty(len(idx), 3, 32, 32)
            for k in range(len(idx)):
                top, left = rng.integers(0, 9, 2)
                image = padded[k, :, top:top + 32, left:left + 32]
                out[k] = image.flip(2) if rng.random() < 0.5 else image
            loss = F.cross_entropy(model((out - mean) / std), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model((test_x - mean) / std).argmax(1) == test_y).float().mean().item()
    print(f"seed={seed} test_accuracy={acc:.4f}")


if __name__ == "__main__":
    main()
