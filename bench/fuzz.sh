#!/usr/bin/env bash
# The property tests of the parsers that take untrusted input, run much longer than CI runs
# them: PROPTEST_CASES cases per property (CI uses each property's own default, 16 to 512), in
# release mode, one crate at a time. Prints, per crate, the tests run, the cases per property,
# the wall time and how many failed; the full output is kept in target/fuzz/.
#
#   bench/fuzz.sh                                  # every crate, 20000 cases per property
#   PROPTEST_CASES=100000 bench/fuzz.sh mobius-deploy
#
# A failure prints proptest's minimal failing input; keep it as a plain regression test beside
# the code it broke once it is fixed. Run from anywhere: the script moves to the repository root.
set -euo pipefail

cd "$(dirname "$0")/.."

cases="${PROPTEST_CASES:-20000}"
if [ "$#" -gt 0 ]; then
  crates=("$@")
else
  crates=(mobius-events mobius-pipelines mobius-deploy)
fi
logs=target/fuzz
mkdir -p "$logs"

printf '%-18s %6s %15s %9s %7s\n' crate tests cases/property seconds failed
status=0
for crate in "${crates[@]}"; do
  log="$logs/$crate.log"
  # Built on its own before it is timed, so that the time is the tests' alone (several crates
  # built together unify features differently from one crate built for its test run).
  cargo test --release --locked --no-run -p "$crate" --test it >"$log" 2>&1 || { cat "$log"; exit 1; }
  start=$(date +%s%N)
  # Every property lives in a `props` module of the crate's one integration binary.
  if PROPTEST_CASES="$cases" cargo test --release --locked -p "$crate" --test it props >"$log" 2>&1; then
    :
  else
    status=1
  fi
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  passed=$(grep -c '^test props::.* ok$' "$log" || true)
  failed=$(grep -c '^test props::.* FAILED$' "$log" || true)
  # `tests` counts the few plain #[test]s of the `props` modules too (they check that the
  # generators reach what the properties are about); they run once.
  printf '%-18s %6s %15s %5d.%d %7s\n' "$crate" "$((passed + failed))" "$cases" \
    "$((elapsed_ms / 1000))" "$((elapsed_ms % 1000 / 100))" "$failed"
  if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then
    grep -E '^(test props::.* FAILED|minimal failing input|Test failed)' "$log" || tail -n 20 "$log"
  fi
done
exit "$status"
