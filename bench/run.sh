#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — runs the benchmark workloads and, when Debian's python3-torch is
# installed, the identical PyTorch programs in the same invocation, then prints the ratios.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
fashion=/usr/share/datasets/fashion-mnist
. "$here/lib.sh"
runs=${BENCH_RUNS:-3}

echo "== W1: MLP 784-512-256-10, SGD momentum, batch 128, one epoch of Fashion-MNIST (60k), 2 threads; best of $runs runs each =="
ct=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w1_mlp" "$fashion" 2)
echo "ctape:   $ct"
ctt=$(CTAPE_THREADS=2 best_of "$runs" "$build/bench/w1_mlp" "$fashion" 2 trainer)
echo "ctape (ct_fit): $ctt"
awk -v h="$(field samples_per_s "$ct")" -v t="$(field samples_per_s "$ctt")" 'BEGIN {
  printf "W1 trainer overhead: ct_fit %d vs the hand-written loop %d samples/s (%+.1f%%)\n", t, h, 100 * (h - t) / h }'

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

# ---- optimizer step over 10 M parameters (bench/optim_step.c, bench/optim_torch.py) -----------
# Each program runs $runs times; per optimizer the fastest step counts. ctape's step includes
# zeroing the grads; PyTorch's figure is optimizer.step() alone (its zero_grad is extra).
echo
echo "== optimizer step, 10 M float32 parameters (10 x 1000x1000), 2 threads; best of $runs runs =="
best_lines() { # best_lines N command...: the line with the smallest step_ms per optimizer
  local n=$1; shift
  for ((i = 0; i < n; i++)); do "$@"; done | awk '{
    split("", f); for (k = 1; k <= NF; k++) { split($k, kv, "="); f[kv[1]] = kv[2] }
    o = f["optimizer"]; if (!(o in best) || f["step_ms"] + 0 < best_ms[o]) { best[o] = $0; best_ms[o] = f["step_ms"] + 0; order[++n] = o }
  } END { for (i = 1; i <= n; i++) if (!(order[i] in done)) { print best[order[i]]; done[order[i]] = 1 } }'
}
ct_opt=$(CTAPE_THREADS=2 best_lines "$runs" "$build/bench/optim_step" 2)
echo "$ct_opt" | sed 's/^/ctape:   /'
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  pt_opt=$(OMP_NUM_THREADS=2 best_lines "$runs" /usr/bin/python3 "$here/optim_torch.py" 2)
  echo "$pt_opt" | sed 's/^/pytorch: /'
  for o in sgd_momentum adam adamw; do
    c=$(grep "optimizer=$o " <<<"$ct_opt"); p=$(grep "optimizer=$o " <<<"$pt_opt")
    awk -v o="$o" -v c="$(field step_ms "$c")" -v p="$(field step_ms "$p")" -v b="$(field bound_ms "$c")" 'BEGIN {
      printf "%-13s ctape %.1f ms, torch.optim %.1f ms (%s): %.2fx faster; ctape at %.2fx the copy-bandwidth bound (%.1f ms)\n",
             o, c, p, o == "sgd_momentum" ? "SGD" : "foreach=True", p / c, c / b, b }'
  done
  c=$(grep "optimizer=lion " <<<"$ct_opt")
  awk -v c="$(field step_ms "$c")" -v b="$(field bound_ms "$c")" 'BEGIN {
    printf "%-13s ctape %.1f ms (PyTorch 1.13 has no Lion); at %.2fx the copy-bandwidth bound (%.1f ms)\n", "lion", c, c / b, b }'
else
  echo "(PyTorch not installed: apt-get install python3-torch to compare in the same run)"
fi

echo "== W5: forward + backward of each zoo loss (one step: zero grad, loss, backward), logits (1024,10) and (1024,1000), SupCon and Circle on embeddings (256,128), 10 classes; ctape 2 threads =="
w5_ct=$(CTAPE_THREADS=2 "$build/bench/w5_losses" 2)
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  # PyTorch's best of torch on 1 and on 2 threads (OpenBLAS on 1), per loss and shape.
  w5_t1=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 "$here/w5_losses_torch.py" 1 2>/dev/null)
  w5_t2=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 /usr/bin/python3 "$here/w5_losses_torch.py" 2 2>/dev/null)
  printf '%s\n' "$w5_ct" | awk -v t1="$w5_t1" -v t2="$w5_t2" '
    function us(line) { sub(/.*us=/, "", line); return line + 0 }
    function key(line) { sub(/ us=.*/, "", line); return line }
    BEGIN {
      n = split(t1 "\n" t2, lines, "\n")
      for (i = 1; i <= n; i++) if (lines[i] != "") { k = key(lines[i]); v = us(lines[i]); if (!(k in torch) || v < torch[k]) torch[k] = v }
      printf "%-16s %-12s %12s %12s %8s  %s\n", "loss", "shape", "ctape us", "torch us", "ratio", "target"
    }
    {
      k = key($0); split(k, f, /[ =]/); c = us($0); t = torch[k]
      target = (f[4] == "1024x10") ? 5 : 1.2
      verdict = (t / c >= target) ? "ok (>= " target "x)" : "MISSED (< " target "x)"
      printf "%-16s %-12s %12.1f %12.1f %7.2fx  %s\n", f[2], f[4], c, t, t / c, verdict
    }'
else
  printf '%s\n' "$w5_ct"
  echo "(PyTorch not installed: apt-get install python3-torch to compare in the same run)"
fi

echo
# W2: the MNIST CNN, when the real MNIST files of ../shared/data are beside this checkout.
mnist="$here/../../shared/data/mnist"
if [ -f "$mnist/train10k-images-idx3-ubyte.gz" ]; then
  bash "$here/cnn.sh" "$build" "$mnist"
else
  echo "== W2 skipped: $mnist (../shared/data/mnist) is absent =="
fi

# W3: the CIFAR-10 CNN with augmentation, when the CIFAR-10 subset of ../shared/data is there.
echo
cifar_dir="$here/../../shared/data/cifar10"
if [ -f "$cifar_dir/data_batch_sub.bin" ]; then
  bash "$here/cifar.sh" "$build" "$cifar_dir"
else
  echo "== W3 skipped: $cifar_dir (../shared/data/cifar10) is absent =="
fi

# ---- the CIFAR-10 input pipeline (bench/loader.c, bench/loader_torch.py) ----------------------
# Batches of 128 through RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize, shuffled,
# nothing else in the loop. Every setting in its own process, best of $runs; the comparison is
# ctape's best setting against PyTorch's best (PIL images as torchvision's CIFAR10 gives them, or
# uint8 tensors with the tensor transforms; DataLoader with 0 or 2 workers).
echo
cifar="$here/../../shared/data/cifar10/data_batch_sub.bin"
echo "== loader: CIFAR-10 batches of 128, random crop 32 (padding 4) + flip + normalise, shuffled; best of $runs runs each =="
[ -f "$cifar" ] || echo "($cifar absent: both sides use 10000 random images of 3x32x32)"
ld_best=""
for setting in "0 1" "0 2" "1 1" "1 2"; do
  line=$(best_of "$runs" "$build/bench/loader" "$cifar" 10 $setting)
  echo "ctape:   $line"
  if [ -z "$ld_best" ] || [ "$(field samples_per_s "$line")" -gt "$(field samples_per_s "$ld_best")" ]; then ld_best=$line; fi
done
if /usr/bin/python3 -c 'import torchvision' 2>/dev/null; then
  pt_best=""
  for setting in "pil 0" "pil 2" "tensor 0" "tensor 2"; do
    line=$(best_of "$runs" /usr/bin/python3 "$here/loader_torch.py" "$cifar" 1 $setting)
    echo "pytorch: $line"
    if [ -z "$pt_best" ] || [ "$(field samples_per_s "$line")" -gt "$(field samples_per_s "$pt_best")" ]; then pt_best=$line; fi
  done
  awk -v c="$(field batches_per_s "$ld_best")" -v p="$(field batches_per_s "$pt_best")" \
      -v cs="prefetch=$(field prefetch "$ld_best") threads=$(field threads "$ld_best")" \
      -v ps="$(field variant "$pt_best"), num_workers=$(field num_workers "$pt_best")" 'BEGIN {
    printf "loader ctape/pytorch-best batches/s: %.1fx (%.1f [%s] vs %.1f [%s]); target 3x: %s\n",
           c / p, c, cs, p, ps, (c / p >= 3) ? "ok" : "MISSED" }'
else
  echo "(torchvision not installed: apt-get install python3-torchvision to compare in the same run)"
fi
