"""bench/recipes_torch.py — the `ctape train` recipes of the README's accuracy table, in PyTorch, for
comparison: LeNet-5 (ReLU, max pool; the torch twin of ctape's lenet5 in tests/reference/gen_zoo.py)
with SGD momentum 0.9, lr 0.05, a per-step cosine schedule to 0, batch 128, inputs normalised by the
training set's mean and std, evaluated on the test set after the last epoch.

usage: python3 bench/recipes_torch.py fashion-mnist|mnist DIR EPOCHS CROP_PADDING SEED [THREADS [OPTIM]]
OPTIM: sgd (the default: lr 0.05, momentum 0.9) or adamw:LR (torch.optim.AdamW, weight decay 0.01 as
ctape's adamw). Prints one line: recipe, test accuracy, seconds."""
import gzip, math, os, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic, = struct.unpack(">I", data[:4])
    dims = [struct.unpack(">I", data[4 + 4 * i:8 + 4 * i])[0] for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise FileNotFoundError(os.path.join(d, stem))


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))


def main():
    name, d, epochs, pad, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    train_stem = "train" if os.path.exists(find_or_none(d, "train-images-idx3-ubyte")) else "train10k"
    xtr = idx(find(d, train_stem + "-images-idx3-ubyte")).astype(np.float32) / 255
    ytr = idx(find(d, train_stem + "-labels-idx1-ubyte")).astype(np.int64)
    xte = idx(find(d, "t10k-images-idx3-ubyte")).astype(np.float32) / 255
    yte = idx(find(d, "t10k-labels-idx1-ubyte")).astype(np.int64)
    mean, std = xtr.mean(), xtr.std()
    xtr = torch.from_numpy((xtr - mean) / std).unsqueeze(1)
    xte = torch.from_numpy((xte - mean) / std).unsqueeze(1)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    model = LeNet5()
    optim = sys.argv[7] if len(sys.argv) > 7 else "sgd"
    if optim.startswith("adamw:"):
        opt = torch.optim.AdamW(model.parameters(), lr=float(optim[6:]), weight_decay=0.01)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    steps = epochs * math.ceil(len(xtr) / 128)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    zero = (0 - mean) / std  # padding of raw zeros, as ctape pads before normalising
    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(xtr))
        for b in range(0, len(xtr), 128):
            i = order[b:b + 128]
            x = xtr[i]
            if pad:
                x = F.pad(x, (pad, pad, pad, pad), value=zero)
                offsets = np.random.randint(0, 2 * pad + 1, size=(len(i), 2))  # one crop per sample
                x = torch.stack([x[k, :, dy:dy + 28, dx:dx + 28] for k, (dy, dx) in enumerate(offsets)])
            loss = F.cross_entropy(model(x), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.time() - start
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    print("recipe=%s epochs=%d crop=%d seed=%d optim=%s test_accuracy=%.4f seconds=%.1f threads=%d"
          % (name, epochs, pad, seed, optim, acc, seconds, torch.get_num_threads()))


def find_or_none(d, stem):
    try:
        return find(d, stem)
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    main()
