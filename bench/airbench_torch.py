"""The airbench94 CIFAR-10 recipe (Jordan 2024, arXiv 2404.00498) in PyTorch on the CPU, float32:
the twin of ctape's examples/cifar10_airbench.c, written for this project from the paper's recipe.

usage: airbench_torch.py DATA_DIR [--threads T] [--time-steps N] [--epochs E] [--seed S] [--batch B]
                         [--subset N] [--test-subset N]
    DATA_DIR      the official binary CIFAR-10 (data_batch_1..5.bin, test_batch.bin)
    --time-steps  time N training steps of batch 1024 (after one untimed step) and stop
    --epochs      train this many epochs (default 9.9, the paper's) and evaluate, with and
                  without test-time augmentation
    --batch, --subset, --test-subset   as examples/cifar10_airbench (a short run on the first N
                  training and test images checks the whole code path in seconds)

Prints key=value lines (the shape bench/ scripts read): step_seconds, images_per_s and
train_gflop_per_s (counted forward multiply-adds x 2 x 3 for forward + backward) for --time-steps;
per epoch the train loss and accuracy, the test accuracy and the time; at the end the test
accuracy with TTA and the total time.

The recipe: a frozen 2x2 patch-whitening convolution (24 channels) + GELU, three groups of
[conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU] of widths 64, 256, 256, maxpool 3,
linear 256->10 without bias, logits x 1/9. Convolutions without bias, Dirac-initialised on their
first in-channels; BN with its scale fixed at 1, eps 1e-12, PyTorch momentum 0.4. SGD Nesterov,
momentum 0.85, lr 11.5 and weight decay 0.0153 per 1024 examples in decoupled form, BN biases at 64x
the lr, label smoothing 0.2 on a summed loss, a triangular lr schedule (0.2 -> 1 at 23% -> 0.07),
weight averaging copied back into the network every 5 steps from epoch 3, the whitening bias
trained for the first 3 epochs. Data: per-channel normalisation, translation by 2 with reflect
padding, the alternating flip (one random choice per image, every image the other way in odd
epochs). TTA: mirror + one-pixel translations, weighted as the paper's level 2.
"""
import argparse
import math
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
WIDTHS = (64, 256, 256)


def read_cifar10(paths):
    raw = np.concatenate([np.fromfile(p, dtype=np.uint8).reshape(-1, 3073) for p in paths])
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (images - mean) / std, torch.from_numpy(raw[:, 0].astype(np.int64))


class BatchNorm(nn.BatchNorm2d):
    """Scale fixed at 1 (not trained), only the bias learns."""

    def __init__(self, channels):
        super().__init__(channels, eps=1e-12, momentum=1 - 0.6)
        self.weight.requires_grad = False


def conv(cin, cout, k=3, bias=False):
    c = nn.Conv2d(cin, cout, k, padding='same' if k == 3 else 0, bias=bias)
    with torch.no_grad():
        if bias:
            c.bias.zero_()
        nn.init.dirac_(c.weight[:min(cin, cout)])  # identity on the first in-channels
    return c


class Group(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.norm1 = conv(cin, cout), BatchNorm(cout)
        self.conv2, self.norm2 = conv(cout, cout), BatchNorm(cout)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad = False
        with torch.no_grad():
            self.whiten.bias.zero_()
        self.groups = nn.Sequential(Group(24, WIDTHS[0]), Group(WIDTHS[0], WIDTHS[1]), Group(WIDTHS[1], WIDTHS[2]))
        self.head = nn.Linear(WIDTHS[2], 10, bias=False)

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        return self.head(F.max_pool2d(x, 3).flatten(1)) / 9


def init_whitening(layer, images, eps=5e-4):
    # covariance of all 2x2x3 patches; filters: eigenvectors / sqrt(lambda + eps), largest first, and their negatives
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
    cov = patches.T @ patches / len(patches)
    values, vectors = torch.linalg.eigh(cov)
    values, vectors = values.flip(0), vectors.T.flip(0)
    scaled = (vectors / torch.sqrt(values + eps).view(-1, 1)).reshape(12, 3, 2, 2).float()
    with torch.no_grad():
        layer.weight.copy_(torch.cat((scaled, -scaled)))


def forward_macs(net):
    """Multiply-adds of one image's forward pass (convolutions and the linear layer)."""
    macs, hw = 3 * 24 * 4 * 31 * 31, 31
    cin = 24
    for w in WIDTHS:
        macs += hw * hw * cin * w * 9      # conv1 at the input resolution
        hw //= 2
        macs += hw * hw * w * w * 9        # conv2 after the pool
        cin = w
    return macs + WIDTHS[2] * 10


def tta_logits(net, x):
    def mirror(v):
        return 0.5 * net(v) + 0.5 * net(v.flip(-1))
    padded = F.pad(x, (1, 1, 1, 1), mode='reflect')
    shifted = 0.5 * mirror(padded[:, :, 0:32, 0:32]) + 0.5 * mirror(padded[:, :, 2:34, 2:34])
    return 0.5 * mirror(x) + 0.5 * shifted


def evaluate(net, images, labels, tta):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), 1000):
            x = images[i:i + 1000]
            logits = tta_logits(net, x) if tta else net(x)
            correct += (logits.argmax(1) == labels[i:i + 1000]).sum().item()
    net.train()
    return correct / len(images)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--time-steps', type=int, default=0)
    ap.add_argument('--epochs', type=float, default=9.9)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--batch', type=int, default=1024)
    ap.add_argument('--subset', type=int, default=0, help='train on the first N training images')
    ap.add_argument('--test-subset', type=int, default=0, help='evaluate on the first N test images')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_x, train_y = read_cifar10([f'{a.data}/data_batch_{k}.bin' for k in range(1, 6)])
    test_x, test_y = read_cifar10([f'{a.data}/test_batch.bin'])
    if a.subset:
        train_x, train_y = train_x[:a.subset], train_y[:a.subset]
    if a.test_subset:
        test_x, test_y = test_x[:a.test_subset], test_y[:a.test_subset]
    started = time.time()

    batch, momentum = a.batch, 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))  # Nesterov's step gain for constant gradients, per 1024 examples
    lr, wd = 11.5 / kilostep, 0.0153 * batch / kilostep
    lr_bias = 64 * lr
    steps_per_epoch = len(train_x) // batch
    total = math.ceil(steps_per_epoch * a.epochs)

    net = Net()
    init_whitening(net.whiten, train_x[:5000])
    norm_biases = [p for n, p in net.named_parameters() if 'norm' in n and p.requires_grad]
    others = [p for n, p in net.named_parameters() if 'norm' not in n and p.requires_grad]
    opt = torch.optim.SGD([dict(params=norm_biases, lr=lr_bias, weight_decay=wd / lr_bias),
                           dict(params=others, lr=lr, weight_decay=wd / lr)], momentum=momentum, nesterov=True)
    base = [g['lr'] for g in opt.param_groups]
    peak = int(0.23 * total)

    def schedule(step):  # triangular: 0.2 -> 1 at 23% of the steps -> 0.07
        if step < peak:
            return 0.2 + 0.8 * step / peak
        return 1 + (0.07 - 1) * (step - peak) / (total - peak)

    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2, reduction='sum')
    gen = torch.Generator().manual_seed(a.seed)
    flip_bits = torch.rand(len(train_x), generator=gen) < 0.5
    padded = F.pad(train_x, (2, 2, 2, 2), mode='reflect')
    ema, step = None, 0

    def batches(epoch):
        flip = flip_bits ^ (epoch % 2 == 1)
        order = torch.randperm(len(train_x), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            shifts = torch.randint(0, 5, (len(idx), 2), generator=gen)
            x = torch.empty(len(idx), 3, 32, 32)
            for sy in range(5):
                for sx in range(5):
                    m = (shifts[:, 0] == sy) & (shifts[:, 1] == sx)
                    if m.any():
                        x[m] = padded[idx[m], :, sy:sy + 32, sx:sx + 32]
            f = flip[idx]
            x[f] = x[f].flip(-1)
            yield x, train_y[idx]

    if a.time_steps:
        gen_batches = batches(0)
        x, y = next(gen_batches)
        timed = []
        for s in range(a.time_steps + 1):
            t = time.time()
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if s:
                timed.append(time.time() - t)
        sec = min(timed)
        flops = forward_macs(net) * 2 * 3 * batch
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f'step_seconds={sec:.3f} images_per_s={batch / sec:.0f} train_gflop_per_s={flops / sec / 1e9:.1f} '
              f'train_gflop_per_image={forward_macs(net) * 6 / 1e9:.3f} threads={a.threads} peak_rss_mib={rss:.0f}')
        return

    for epoch in range(math.ceil(a.epochs)):
        net.whiten.bias.requires_grad = epoch < 3
        t0 = time.time()
        seen = correct = 0
        loss_sum = 0.0
        for x, y in batches(epoch):
            for g, b in zip(opt.param_groups, base):
                g['lr'] = b * schedule(step)
            out = net(x)
            loss = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item()
            seen += len(y)
            correct += (out.argmax(1) == y).sum().item()
            if epoch >= 3 and step % 5 == 0:
                if ema is None:
                    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    decay = 0.95 ** 5 * (step / total) ** 3
                    for k, v in net.state_dict().items():
                        if v.dtype.is_floating_point:
                            ema[k].lerp_(v, 1 - decay)
                            v.copy_(ema[k])
            if step >= total:
                break
        if ema is not None:
            for k, v in net.state_dict().items():
                if v.dtype.is_floating_point:
                    v.copy_(ema[k])
        acc = evaluate(net, test_x, test_y, tta=False)
        print(f'epoch={epoch + 1} train_loss={loss_sum / seen:.4f} train_accuracy={correct / seen:.4f} '
              f'test_accuracy={acc:.4f} epoch_seconds={time.time() - t0:.1f} total_seconds={time.time() - started:.1f}',
              flush=True)
    tta = evaluate(net, test_x, test_y, tta=True)
    print(f'test_accuracy_tta={tta:.4f} total_seconds={time.time() - started:.1f} reached_94={int(tta >= 0.94)}')


if __name__ == '__main__':
    sys.exit(main())
