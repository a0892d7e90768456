#!/usr/bin/env bash
# SLO evaluation benchmark: 1,000 SLOs, each with its own Series holding 30 days of per-minute
# counts (downsampled as Mobius keeps them); times the budget + all burn-rate rules for all of
# them and reports the memory of that history. Pure CPU, no I/O. See bench/README.md ("SLOs").
#
#   bench/slo/run.sh                        # 1,000 SLOs, 30 days, 30 rounds
#   SLOS=5000 DAYS=35 ROUNDS=10 bench/slo/run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
cargo build --release -p mobius-slo --example bench_eval >&2
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$ROOT/target/release/examples/bench_eval"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
