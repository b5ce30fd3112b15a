#!/usr/bin/env bash
# bench/cnn.sh BUILD_DIR [DATA_DIR] — workload W2, the MNIST CNN (one epoch of train10k, batch 64,
# 2 threads), in ctape (bench/w2_cnn) and, when Debian's python3-torch is installed, in PyTorch
# (bench/cnn_torch.py) with the thread configurations bench/run.sh uses; best of BENCH_RUNS (3).
set -euo pipefail
build=${1:-build}
data=${2:-$(cd "$(dirname "$0")/.." && pwd)/../shared/data/mnist}
here=$(cd "$(dirname "$0")" && pwd)
runs=${BENCH_RUNS:-3}

. "$here/lib.sh"

echo "== W2: CNN conv32-pool-conv64-pool-fc128-fc10, SGD momentum, batch 64, one epoch of MNIST train10k, 2 threads; best of $runs runs each =="
ct=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w2_cnn" "$data" 2)
echo "ctape:   $ct"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  a=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 best_of "$runs" /usr/bin/python3 "$here/cnn_torch.py" "$data" 2)
  echo "pytorch (torch 2 threads, OpenBLAS 1): $a"
  b=$(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 best_of "$runs" /usr/bin/python3 "$here/cnn_torch.py" "$data" 1)
  echo "pytorch (torch 1 thread, OpenBLAS 2):  $b"
  best=$(field samples_per_s "$a")
  if [ "$(field samples_per_s "$b")" -gt "$best" ]; then best=$(field samples_per_s "$b"); fi
  awk -v c="$(field samples_per_s "$ct")" -v p="$best" 'BEGIN {
    printf "W2 ctape/pytorch-best samples/s: %.2fx (%d vs %d)\n", c / p, c, p }'
else
  echo "(PyTorch not installed: apt-get install python3-torch to compare in the same run)"
fi
