#!/usr/bin/env bash
# bench/ab.sh BUILD_A BUILD_B [RUNS] — the same workloads from two builds of ctape (for example the
# portable default against `make NATIVE=1`), runs interleaved A, B, A, B, ... so that a change in the
# machine's load hits both alike. For each figure: the best of RUNS (default 5) for A and for B and
# B relative to A (above 1: B is faster). The load average is printed before and after.
# Workloads: W1 (MLP, Fashion-MNIST), W2 (MNIST CNN), W3 (CIFAR-10 CNN, no prefetch), the optimizer
# step (W4) and W5 (every loss); W2 and W3 when ../shared/data is there. Threads: 2, as make bench.
# AB_CPU=1: one thread and CPU time (W1-W3: the process's user + system seconds for the epoch; W4,
# W5: BENCH_CPU_TIME=1), which leaves out the time other programs held the CPU: on a busy machine
# (load average far above the cores) the wall-clock figures of two runs of one build differ by 2x.
set -euo pipefail
a=$1 b=$2 runs=${3:-5}
threads=2
if [ "${AB_CPU:-0}" = 1 ]; then threads=1; export BENCH_CPU_TIME=1; fi
here=$(cd "$(dirname "$0")" && pwd)
shared=$here/../../shared/data
fashion=/usr/share/datasets/fashion-mnist
out=$(mktemp -d /tmp/ctape-ab-XXXXXX)
trap 'rm -rf "$out"' EXIT
export CTAPE_THREADS=$threads

# one run of every workload from build $1, as "key value higher_is_better" lines
# epoch NAME command...: samples/s from its last line, or with AB_CPU=1 its CPU seconds
epoch() {
  local name=$1; shift
  if [ "${AB_CPU:-0}" = 1 ]; then
    local TIMEFORMAT='%U %S'
    { time "$@" >/dev/null; } 2>&1 | tail -n 1 | awk -v n="$name" '{ print n "_cpu_s", $1 + $2, 0 }'
  else
    "$@" | tail -n 1 | sed -n "s/.*samples_per_s=\([0-9.]*\).*/${name}_samples_per_s \1 1/p"
  fi
}
one_run() {
  local build=$1
  epoch W1 "$build/bench/w1_mlp" "$fashion" $threads
  if [ -d "$shared/mnist" ]; then epoch W2 "$build/bench/w2_cnn" "$shared/mnist" $threads; fi
  if [ -f "$shared/cifar10/data_batch_sub.bin" ]; then
    epoch W3 "$build/bench/w3_cifar" "$shared/cifar10/data_batch_sub.bin" "$shared/cifar10/test_batch_sub.bin" $threads 0
  fi
  "$build/bench/optim_step" $threads | sed -n 's/.*optimizer=\([^ ]*\) .*step_ms=\([0-9.]*\).*/W4_\1_ms \2 0/p'
  "$build/bench/w5_losses" $threads | sed -n 's/^loss=\([^ ]*\) shape=\([^ ]*\) us=\([0-9.]*\)$/W5_\1_\2_us \3 0/p'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= runs; r++)); do
  one_run "$a" >>"$out/a"
  one_run "$b" >>"$out/b"
  echo "run $r of $runs done; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-40s %14s %14s %8s\n' figure "A: $(basename "$a")" "B: $(basename "$b")" "B/A"
awk '
  FNR == 1 { file++ }
  { k = $1; v = $2 + 0; hi[k] = $3
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    if (file == 1) { if (!(k in A) || (hi[k] ? v > A[k] : v < A[k])) A[k] = v }
    else           { if (!(k in B) || (hi[k] ? v > B[k] : v < B[k])) B[k] = v } }
  END {
    for (i = 1; i <= n; i++) { k = order[i]
      speed = hi[k] ? B[k] / A[k] : A[k] / B[k]
      printf "%-40s %14.2f %14.2f %7.3fx%s\n", k, A[k], B[k], speed, speed < 0.97 ? "  <- B more than 3% slower" : "" } }
' "$out/a" "$out/b"
