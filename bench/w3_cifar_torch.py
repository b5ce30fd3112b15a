"""Workload W3 in PyTorch: bench/w3_cifar.c's network, optimizer, batch and augmentation.

usage: w3_cifar_torch.py TRAIN.bin TEST.bin TORCH_THREADS WORKERS
    3 x [conv 3x3 pad 1 (no bias), BatchNorm2d, ReLU, MaxPool2d 2] with 32/64/128 channels,
    flatten, linear 2048->10; SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128.
Training images go through torchvision's usual CIFAR pipeline, the way its users write it:
a Dataset handing out PIL images (as torchvision.datasets.CIFAR10 does), transforms
RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std), and a
DataLoader(batch_size=128, shuffle=True, num_workers=WORKERS). Prints one line of key=value
figures, the shape bench/run.sh reads: training samples/s, the fraction of the epoch spent
waiting for the DataLoader (wait_fraction), and the test accuracy.
"""
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def read_cifar10(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


class Cifar(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # HWC, as torchvision keeps them
        self.labels = labels
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def stage(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


def main():
    train_path, test_path, threads, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    train_x, train_y = read_cifar10(train_path)
    test_x, test_y = read_cifar10(test_path)
    augment = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                  transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    loader = torch.utils.data.DataLoader(Cifar(train_x, train_y, augment), batch_size=128, shuffle=True,
                                         num_workers=workers, persistent_workers=False)
    model = nn.Sequential(*stage(3, 32), *stage(32, 64), *stage(64, 128), nn.Flatten(), nn.Linear(2048, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    model.train()
    seen, waited = 0, 0.0
    start = time.perf_counter()
    batches = iter(loader)
    while True:
        t = time.perf_counter()
        try:
            x, y = next(batches)
        except StopIteration:
            break
        waited += time.perf_counter() - t
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
    seconds = time.perf_counter() - start

    model.eval()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test_y), 200):
            x = (torch.from_numpy(test_x[i:i + 200]).float() / 255 - mean) / std
            correct += (model(x).argmax(1) == torch.from_numpy(test_y[i:i + 200])).sum().item()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"samples_per_s={seen / seconds:.0f} seconds={seconds:.3f} wait_fraction={waited / seconds:.4f} "
          f"workers={workers} peak_rss_mib={rss:.1f} test_accuracy={correct / len(test_y):.4f} threads={threads}",
          flush=True)


if __name__ == "__main__":
    main()
