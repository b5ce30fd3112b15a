#!/usr/bin/env bash
# bench/cifar.sh BUILD_DIR [CIFAR10_DIR] — workload W3, the CIFAR-10 CNN of examples/cifar10_cnn.c
# with crop + flip + normalise augmentation (one epoch of the 10k-image subset, batch 128,
# 2 threads), in ctape (bench/w3_cifar, with and without the prefetch thread) and, when Debian's
# python3-torch and python3-torchvision are installed, in PyTorch with torchvision's transforms
# and a DataLoader (bench/w3_cifar_torch.py, 0 and 2 workers); best of BENCH_RUNS (3) each.
# wait_fraction is the share of the epoch the training loop spent waiting for its next batch.
set -euo pipefail
build=${1:-build}
data=${2:-$(cd "$(dirname "$0")/.." && pwd)/../shared/data/cifar10}
here=$(cd "$(dirname "$0")" && pwd)
runs=${BENCH_RUNS:-3}
train=$data/data_batch_sub.bin
test=$data/test_batch_sub.bin

. "$here/lib.sh"

echo "== W3: CIFAR-10 CNN 3x[conv-bn-relu-pool] 32/64/128 + linear, crop+flip+normalise, SGD momentum, batch 128, one epoch of the 10k subset, 2 threads; best of $runs runs each =="
c0=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w3_cifar" "$train" "$test" 2 0)
echo "ctape (no prefetch):  $c0"
c1=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w3_cifar" "$train" "$test" 2 1)
echo "ctape (prefetch):     $c1"
t1=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w3_cifar" "$train" "$test" 2 1 trainer)
echo "ctape (prefetch, ct_fit): $t1"
awk -v h="$(field samples_per_s "$c1")" -v t="$(field samples_per_s "$t1")" 'BEGIN {
  printf "W3 trainer overhead: ct_fit %d vs the hand-written loop %d samples/s (%+.1f%%)\n", t, h, 100 * (h - t) / h }'
best=$c0
if [ "$(field samples_per_s "$c1")" -gt "$(field samples_per_s "$c0")" ]; then best=$c1; fi
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  p0=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 best_of "$runs" /usr/bin/python3 "$here/w3_cifar_torch.py" "$train" "$test" 2 0)
  echo "pytorch (0 workers):  $p0"
  p2=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 best_of "$runs" /usr/bin/python3 "$here/w3_cifar_torch.py" "$train" "$test" 2 2)
  echo "pytorch (2 workers):  $p2"
  pbest=$p0
  if [ "$(field samples_per_s "$p2")" -gt "$(field samples_per_s "$p0")" ]; then pbest=$p2; fi
  awk -v c="$(field samples_per_s "$best")" -v p="$(field samples_per_s "$pbest")" \
      -v cw="$(field wait_fraction "$best")" -v pw="$(field wait_fraction "$pbest")" 'BEGIN {
    printf "W3 ctape/pytorch-best samples/s: %.2fx (%d vs %d); waiting for data: ctape %.1f%%, PyTorch %.1f%% of the epoch\n",
           c / p, c, p, 100 * cw, 100 * pw }'
else
  echo "(PyTorch/torchvision not installed: apt-get install python3-torchvision to compare in the same run)"
  awk -v cw="$(field wait_fraction "$best")" 'BEGIN { printf "W3 ctape waiting for data: %.1f%% of the epoch\n", 100 * cw }'
fi
