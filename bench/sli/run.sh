#!/usr/bin/env bash
# SLI recording cost per proxied request: times the calls the proxy makes for every request
# (`VersionCounters::request()` + `response(status, latency)`, and the two clock reads of the
# latency) in a tight loop, on one thread, with cold caches, and with two threads on one
# version's counters; relates the figures to the proxy's time per request measured by
# bench/proxy/run.sh. Pure CPU, no I/O. See bench/README.md ("SLI recording cost").
#
#   bench/sli/run.sh                                  # 20M requests per case, 7 rounds
#   ITERATIONS=50000000 ROUNDS=11 bench/sli/run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
cargo build --release -p mobius-proxy --example sli_cost >&2
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)" >&2
"$ROOT/target/release/examples/sli_cost" --iterations "${ITERATIONS:-20000000}" --rounds "${ROUNDS:-7}"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
