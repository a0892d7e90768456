#!/usr/bin/env bash
# The server's SLO evaluation over a real SQLite store: 1,000 services with 30 days of SLI
# counters each (as the recorder keeps them), evaluated whole and with kept series, as the
# alert loop does every 30 s. See bench/README.md ("SLOs").
#
#   bench/slo/store.sh                      # 1,000 SLOs, 5 rounds
#   SLOS=200 ROUNDS=10 bench/slo/store.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
cargo build --release -p mobius-reliability --example bench_statuses >&2
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$ROOT/target/release/examples/bench_statuses"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
