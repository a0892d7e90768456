#!/usr/bin/env bash
# Issue 15's side-by-side benchmark: mobius-flags against unleash-yggdrasil on equivalent flags
# (a static flag, a three-condition targeting rule, a three-way split), one thread, one run.
# See bench/README.md and the "side by side with unleash-yggdrasil" section of bench/RESULTS.md.
# Knobs (environment): CARGO_TARGET_DIR (default bench/flags/target), BENCH_FLAGS_OUT (where
# the raw divan output goes; default a temporary file, printed at the end).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
out="${BENCH_FLAGS_OUT:-$(mktemp /tmp/mobius-flags-bench.XXXXXX)}"

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== uptime: $(uptime)"
echo "== versions (Cargo.lock):"
for crate in mobius-flags unleash-yggdrasil unleash-types divan; do
  printf '   %s %s\n' "$crate" "$(grep -A1 "^name = \"$crate\"$" "$here/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
done
echo "== $(rustc --version)"

# Build first, so the build's load is over before anything is timed.
(cd "$here" && cargo bench --locked --no-run >&2)
# The agreement check runs first inside the bench binary and aborts it on any disagreement.
(cd "$here" && cargo bench --locked --bench side_by_side) | tee "$out"

echo "== uptime: $(uptime)"
echo
python3 "$here/summarize.py" <"$out"
echo
echo "raw divan output: $out"
