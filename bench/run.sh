#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — runs the benchmark workloads and, when Debian's python3-torch is
# installed, the identical PyTorch programs in the same invocation, then prints the ratios.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
fashion=/usr/share/datasets/fashion-mnist

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# best_of N command...: runs the command N times and prints the output line with the most
# samples/s (a shared machine's noise only ever slows a run down).
best_of() {
  local n=$1 best="" line; shift
  for ((i = 0; i < n; i++)); do
    line=$("$@")
    if [ -z "$best" ] || [ "$(field samples_per_s "$line")" -gt "$(field samples_per_s "$best")" ]; then best=$line; fi
  done
  echo "$best"
}
runs=${BENCH_RUNS:-3}

echo "== W1: MLP 784-512-256-10, SGD momentum, batch 128, one epoch of Fashion-MNIST (60k), 2 threads; best of $runs runs each =="
ct=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w1_mlp" "$fashion" 2)
echo "ctape:   $ct"

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  # PyTorch's best on 2 cores is not its default (both pools on 2 threads oversubscribe):
  # take the faster of torch on 2 threads with OpenBLAS on 1, and torch on 1 with OpenBLAS on 2.
  a=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 best_of "$runs" /usr/bin/python3 "$here/w1_mlp_torch.py" "$fashion" 2)
  echo "pytorch (torch 2 threads, OpenBLAS 1): $a"
  b=$(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 best_of "$runs" /usr/bin/python3 "$here/w1_mlp_torch.py" "$fashion" 1)
  echo "pytorch (torch 1 thread, OpenBLAS 2):  $b"
  best=$(field samples_per_s "$a")
  rss=$(field peak_rss_mib "$a")
  if [ "$(field samples_per_s "$b")" -gt "$best" ]; then best=$(field samples_per_s "$b"); rss=$(field peak_rss_mib "$b"); fi
  awk -v c="$(field samples_per_s "$ct")" -v p="$best" -v cr="$(field peak_rss_mib "$ct")" -v pr="$rss" 'BEGIN {
    printf "W1 ctape/pytorch-best samples/s: %.2fx (%d vs %d); peak RSS: %.1f MiB vs %.1f MiB (%.2f of PyTorch)\n",
           c / p, c, p, cr, pr, cr / pr }'
else
  echo "(PyTorch not installed: apt-get install python3-torch to compare in the same run)"
fi
