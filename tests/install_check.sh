#!/usr/bin/env bash
# tests/install_check.sh [--counts FILE] — what a user does after reading the README, checked:
# make install into a temporary prefix, the README's training loop (the ```c block after the
# "<!-- train.c" marker, taken from README.md itself so the two cannot drift) built with the
# README's own gcc lines (pkg-config ctape: libctape.so; ctape-static: libctape.a), both programs
# run with EPOCHS=1 as the README documents: progress lines and a test accuracy of at least 0.75.
# Run by make test (make test-install); MAKE names the make to call (default make).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
counts=""
if [ "${1:-}" = --counts ]; then counts=$2; fi
floor=0.75
passed=0 failed=0

ok() { passed=$((passed + 1)); printf 'ok   %-40s %s\n' "install/$1" "${2:-}"; }
fail() { failed=$((failed + 1)); printf 'FAIL %-40s %s\n' "install/$1" "$2"; }
finish() {
  echo "$passed passed, $failed failed"
  if [ -n "$counts" ]; then echo "passed=$passed failed=$failed skipped=0" > "$counts"; fi
  [ "$failed" = 0 ]
  exit
}

tmp=$(mktemp -d /tmp/ctape-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# ---- make install ------------------------------------------------------------------------
if ${MAKE:-make} --no-print-directory -C "$repo" install PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
  ok make_install "PREFIX=$prefix"
else
  fail make_install "make install PREFIX=$prefix failed: $(tail -n 3 "$tmp/install.log" | tr '\n' ' ')"
  finish
fi
lib=$prefix/lib
sover=$(sed -n 's/^SOVERSION := //p' "$repo/Makefile")
soname=$(readelf -d "$lib/libctape.so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ -n "$sover" ] && [ "$soname" = "libctape.so.$sover" ] && [ -L "$lib/libctape.so" ] && [ -L "$lib/libctape.so.$sover" ] &&
   [ "$(readlink "$lib/libctape.so")" = "libctape.so.$sover" ] && [ -f "$lib/libctape.a" ] &&
   [ -f "$prefix/include/ctape/ctape.h" ] && [ -f "$lib/pkgconfig/ctape.pc" ] && [ -f "$lib/pkgconfig/ctape-static.pc" ]; then
  ok installed_files "SONAME $soname; libctape.so -> $(readlink "$lib/libctape.so") -> $(readlink "$lib/libctape.so.$sover")"
else
  fail installed_files "SONAME '$soname'; $(ls -l "$lib" | tr '\n' ' ')"
fi
if grep -q "PKG_CONFIG_PATH=$lib/pkgconfig" "$tmp/install.log"; then
  ok install_says_pkg_config_path
else
  fail install_says_pkg_config_path "make install did not print the PKG_CONFIG_PATH to export: $(tr '\n' ' ' <"$tmp/install.log")"
fi

# ---- the README's program and build lines --------------------------------------------------
# The first ```c block after the marker, and the gcc lines of the first ```sh block after that.
awk '/^<!-- train.c/ { m = 1; next } m == 1 && /^```c$/ { m = 2; next } m == 2 && /^```$/ { exit } m == 2 { print }' \
  README.md >"$tmp/train.c"
awk '/^<!-- train.c/ { m = 1; next } m == 1 && /^```c$/ { m = 2; next } m == 2 && /^```$/ { m = 3; next }
     m == 3 && /^```sh$/ { m = 4; next } m == 4 && /^```$/ { exit } m == 4 && /^gcc / { print }' \
  README.md >"$tmp/build-lines"
if grep -q 'int main' "$tmp/train.c" && [ "$(grep -c . "$tmp/build-lines")" = 2 ]; then
  ok readme_snippet "$(wc -l <"$tmp/train.c") lines of C, 2 gcc lines"
else
  fail readme_snippet "README.md has no program after '<!-- train.c' or not two gcc lines after it"
  finish
fi

export PKG_CONFIG_PATH=$lib/pkgconfig
cd "$tmp"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  exe=train$n
  # the README's line as printed, with its -o train renamed to keep both programs
  cmd=${line/-o train /-o $exe }
  if bash -c "$cmd" >"$tmp/gcc$n.log" 2>&1 && [ -x "$exe" ]; then
    ok "build_$n" "$line"
  else
    fail "build_$n" "$line: $(head -n 5 "$tmp/gcc$n.log" | tr '\n' ' ')"
    continue
  fi
  needed=$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  if [[ $line == *ctape-static* ]]; then
    if [[ $needed == *libctape* ]]; then fail "static_$n" "ctape-static linked the shared library: NEEDED $needed"
    else ok "static_$n" "no libctape in NEEDED: $needed"; fi
  else
    resolved=$(ldd "$exe" | awk -v want="libctape.so.$sover" '$1 == want && $2 == "=>" { print $3 }')
    if [ "$resolved" = "$lib/libctape.so.$sover" ]; then ok "dynamic_$n" "libctape.so.$sover => $resolved (no ldconfig, no LD_LIBRARY_PATH)"
    else fail "dynamic_$n" "libctape.so.$sover resolved to '$resolved', want $lib/libctape.so.$sover: $(ldd "$exe" | tr '\n' ' ')"; fi
  fi
  start=$(date +%s.%N)
  # one thread: on a busy machine two spinning OpenMP threads can take ten times as long
  CTAPE_THREADS=1 EPOCHS=1 "./$exe" >"$tmp/run$n.log" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  progress=$(grep -c '^epoch 1/1 step [0-9]*/[0-9]*' "$tmp/run$n.log")
  acc=$(sed -n 's/^test accuracy: \([0-9.]*\)$/\1/p' "$tmp/run$n.log")
  if [ "$rc" = 0 ] && [ "$progress" -ge 5 ] && [ -n "$acc" ] && awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a >= f) }'; then
    ok "run_$n" "CTAPE_THREADS=1 EPOCHS=1 ./$exe: $progress progress lines, test accuracy $acc, ${secs}s"
  else
    fail "run_$n" "CTAPE_THREADS=1 EPOCHS=1 ./$exe exited $rc, $progress progress lines, test accuracy '${acc}' (floor $floor): $(tail -n 3 "$tmp/run$n.log" | tr '\n' ' ')"
  fi
done <"$tmp/build-lines"
finish
