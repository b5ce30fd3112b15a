"""The CIFAR-10 input pipeline of bench/loader.c in PyTorch: RandomCrop(32, padding=4),
RandomHorizontalFlip(), ToTensor(), Normalize(CIFAR-10 mean, std), DataLoader(batch_size=128,
shuffle=True), over the same data.

usage: loader_torch.py [CIFAR_BIN] [EPOCHS] [VARIANT NUM_WORKERS]
Data: the CIFAR-10 binary file when it exists, else 10,000 random images of 3x32x32 (as the C
benchmark). Two ways to feed the same transforms:
  pil    a Dataset returning PIL images, as torchvision.datasets.CIFAR10 does, through
         transforms.Compose([RandomCrop, RandomHorizontalFlip, ToTensor, Normalize]);
  tensor a Dataset of uint8 CHW tensors through torchvision's tensor transforms
         (RandomCrop, RandomHorizontalFlip, ConvertImageDtype(float32), Normalize).
Each with num_workers 0 and 2 (persistent workers). A few warm-up batches (worker start-up),
then EPOCHS timed epochs (default 1). One key=value line per setting; VARIANT and NUM_WORKERS pick
one setting.
"""
import os
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def load(path):
    """(images N x 3 x 32 x 32 uint8, labels N int64, name) from 3073-byte records, or random."""
    if os.path.exists(path):
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073 == 0 and raw.size > 0:
            rec = raw.reshape(-1, 3073)
            return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), rec[:, 0].astype(np.int64), "cifar10"
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (10000, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 10000), "random"


class PilDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: an HWC array to a PIL image, then the transform."""

    def __init__(self, images, labels):
        self.hwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.labels = labels
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                                    T.Normalize(MEAN, STD)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.hwc[i])), int(self.labels[i])


class TensorDataset(torch.utils.data.Dataset):
    """uint8 CHW tensors through torchvision's tensor transforms."""

    def __init__(self, images, labels):
        self.images = torch.from_numpy(images)
        self.labels = labels
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                                    T.ConvertImageDtype(torch.float32), T.Normalize(MEAN, STD)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def run(dataset, workers, epochs):
    loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    for k, _ in enumerate(loader):  # warm-up: worker start-up and first batches
        if k == 8:
            break
    batches = samples = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            batches += 1
            samples += x.shape[0]
    seconds = time.perf_counter() - start
    del loader
    return batches, samples, seconds


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cifar10/data_batch_sub.bin"
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    settings = [("pil", 0), ("pil", 2), ("tensor", 0), ("tensor", 2)]
    if len(sys.argv) > 4:
        settings = [(sys.argv[3], int(sys.argv[4]))]
    torch.manual_seed(1)
    images, labels, name = load(path)
    for variant, workers in settings:
        dataset = (PilDataset if variant == "pil" else TensorDataset)(images, labels)
        batches, samples, seconds = run(dataset, workers, epochs)
        print(f"workload=loader_torch data={name} n={len(labels)} variant={variant} num_workers={workers} "
              f"torch_threads={torch.get_num_threads()} batches_per_s={batches / seconds:.1f} "
              f"samples_per_s={samples / seconds:.0f} seconds={seconds:.3f} epochs={epochs}", flush=True)


if __name__ == "__main__":
    main()
