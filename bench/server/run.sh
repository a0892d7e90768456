#!/usr/bin/env bash
# Pipelines under `mobius serve`: commit → first step latency through the installed git hook,
# and the server's resident memory idle and while it runs the 200-job DAG.
#
#   bench/server/run.sh            # 50 commits, then the DAG
#
# Knobs: BENCH_COMMITS (50), BENCH_SERVER_DIR (default: a fresh mktemp -d), MOBIUS (a binary;
# default: build target/release/mobius).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ -z "${MOBIUS:-}" ]]; then
  (cd "$root" && cargo build --release -q -p mobius)
  MOBIUS="$root/target/release/mobius"
fi
work="${BENCH_SERVER_DIR:-$(mktemp -d)}"
exec python3 "$here/latency.py" --mobius "$MOBIUS" --work "$work" --commits "${BENCH_COMMITS:-50}" \
  --dag-generator "$root/bench/dag/generate.py"
