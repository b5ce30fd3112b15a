#!/usr/bin/env bash
# tests/mpi/run.sh MPI_CHECK [--counts FILE] — the data-parallel tests under mpirun (make test MPI=1):
# tests/mpi/mpi_check.c's modes on 1, 2 and 3 ranks (3 on this 2-core machine: --oversubscribe),
# one thread per rank, each run under a time limit (a rank waiting for a stopped one is a failure).
#   shards     the ranks' loader shards rebuild the global batches (samples and pixels) on 1, 2, 3 ranks
#   train      ct_fit on 2 and 3 ranks against 1: the weights within TOL relative to 1e-3 + |w| (float
#              sums in another order; Adam amplifies them), the same on every rank
#   train K=6  with .dist_shards = 6: bit-identical weights on 1, 2 and 3 ranks
#   buckets    a hand-written loop, 4 buckets started during the backward (the tape's hook), within TOL of 1 rank
#   batch_norm a net with batch norm: the same parameters and running statistics on every rank
#   resume     a run interrupted by the last rank (Ctrl-C agreed by all) and resumed: the uninterrupted weights
#   fail       a rank's error reaches every rank ("rank R of N: ..."), non-zero exit
#   fail-fit   rank 0's ct_fit error (an unwritable log) stops every rank's ct_fit, non-zero exit
#   batches    a rank whose loader has another batch size: every rank's ct_fit refuses to start
#   exit       a rank that exits while the others wait: mpirun ends the job, non-zero exit
set -uo pipefail
bin=$1
shift
counts=""
[ "${1:-}" = --counts ] && counts=$2
TOL=1e-3
LIMIT=120
export OMP_NUM_THREADS=1 CTAPE_THREADS=1
# Open MPI refuses to run as root unless told to (CI runs as root).
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0 start=$SECONDS

run() { # run NAME NP ARGS...: mpirun's output in $work/NAME.out, its status in $rc
  local name=$1 np=$2
  shift 2
  timeout $LIMIT mpirun -np "$np" --oversubscribe --bind-to none "$bin" "$@" >"$work/$name.out" 2>&1
  rc=$?
}
report() { # report NAME OK DETAIL
  if [ "$2" = 1 ]; then
    printf 'ok   mpi/%-28s %s\n' "$1" "$3"
    passed=$((passed + 1))
  else
    printf 'FAIL mpi/%-28s %s\n' "$1" "$3"
    sed 's/^/    /' "$work/$1.out" | head -n 30
    failed=$((failed + 1))
  fi
}
last_ok() { grep '^ok' "$work/$1.out" | tail -n 1; }

for np in 1 2 3; do
  run shards_np$np $np shards
  report shards_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok shards_np$np)"
done
for np in 1 2 3; do
  run train_np$np $np train "$work/w$np"
  report train_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok train_np$np)"
  run train_det_np$np $np train "$work/d$np" 6
  report train_det_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok train_det_np$np)"
done
for np in 1 2 3; do
  run buckets_np$np $np buckets "$work/b$np"
  report buckets_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok buckets_np$np)"
  run batch_norm_np$np $np batch_norm
  report batch_norm_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok batch_norm_np$np)"
  mkdir -p "$work/resume$np"
  run resume_np$np $np resume "$work/resume$np"
  report resume_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok resume_np$np)"
done
for np in 2 3; do
  run buckets_as_one_np$np 1 compare "$work/b1" "$work/b$np" $TOL
  report buckets_as_one_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok buckets_as_one_np$np)"
  run same_as_one_np$np 1 compare "$work/w1" "$work/w$np" $TOL
  report same_as_one_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok same_as_one_np$np)"
  run bit_identical_np$np 1 compare "$work/d1" "$work/d$np" 0
  report bit_identical_np$np "$([ $rc = 0 ] && echo 1)" "$(last_ok bit_identical_np$np)"
done
for np in 2 3; do
  last=$((np - 1))
  run fail_np$np $np fail
  n=$(grep -c "rank $last of $np: /nonexistent/mpi_check" "$work/fail_np$np.out")
  report fail_np$np "$([ $rc != 0 ] && [ $rc != 124 ] && [ "$n" = $np ] && echo 1)" \
    "exit $rc, rank $last's error reported by $n of $np ranks"
  run fail_fit_np$np $np fail-fit "$work"
  n=$(grep -c "ct_fit returned -1: rank 0 of $np: ct_fit: cannot write the log" "$work/fail_fit_np$np.out")
  report fail_fit_np$np "$([ $rc != 0 ] && [ $rc != 124 ] && [ "$n" = $np ] && echo 1)" \
    "exit $rc, rank 0's ct_fit error returned by $n of $np ranks"
  run batches_np$np $np batches
  n=$(grep -c "ct_fit returned -4: rank $last of $np: ct_fit: the training source has 4 batches per epoch on rank $last, 2 on rank 0" "$work/batches_np$np.out")
  report batches_np$np "$([ $rc != 0 ] && [ $rc != 124 ] && [ "$n" = $np ] && echo 1)" \
    "exit $rc, rank $last's batch count refused by $n of $np ranks"
  run exit_np$np $np exit
  report exit_np$np "$([ $rc != 0 ] && [ $rc != 124 ] && grep -q "rank $last of $np stops" "$work/exit_np$np.out" && echo 1)" \
    "exit $rc (124 would be the time limit)"
done
echo "$passed passed, $failed failed ($((SECONDS - start)) s)"
[ -n "$counts" ] && echo "passed=$passed failed=$failed skipped=0" >"$counts"
[ $failed = 0 ]
