# bench/lib.sh — sourced by the bench scripts (run.sh, cnn.sh, cifar.sh).
# shellcheck shell=bash

# field KEY LINE: the value of KEY=value in a line of key=value figures.
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# best_of N command...: runs the command N times and prints, of the last line of each run, the
# one with the most samples/s (a shared machine's noise only ever slows a run down).
best_of() {
  local n=$1 best="" line; shift
  for ((i = 0; i < n; i++)); do
    line=$("$@" | tail -n 1)
    if [ -z "$best" ] || [ "$(field samples_per_s "$line")" -gt "$(field samples_per_s "$best")" ]; then best=$line; fi
  done
  echo "$best"
}
