#!/usr/bin/env bash
# Limits under connection and upload floods: `mobius serve` (fresh data directory, default
# limits) holding 2,000 idle connections and 200 slow 10 MiB uploads — unauthenticated (to the
# GitHub webhook with a wrong signature, and to /api/v1/events without a token), then with a
# valid `ingest` token — while /healthz latency and the server's RSS are measured.
#
#   bench/server/limits.sh
#
# Knobs: BENCH_IDLE (2000), BENCH_UPLOADS (200), BENCH_UPLOAD_CHUNK (bytes per write, 65536),
# BENCH_UPLOAD_EVERY_MS (100), BENCH_HEALTHZ_N (200 per phase, one every 150 ms: about 30 s),
# BENCH_LIMITS_DIR (default: a fresh mktemp -d), MOBIUS (a binary; default: cargo build
# --release, in $CARGO_TARGET_DIR or target/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ -z "${MOBIUS:-}" ]]; then
  (cd "$root" && cargo build --release -q --locked -p mobius)
  MOBIUS="${CARGO_TARGET_DIR:-$root/target}/release/mobius"
fi
work="${BENCH_LIMITS_DIR:-$(mktemp -d)}"
echo "load before: $(uptime)"
python3 "$here/limits.py" --mobius "$MOBIUS" --work "$work" \
  --idle "${BENCH_IDLE:-2000}" --uploads "${BENCH_UPLOADS:-200}" \
  --chunk "${BENCH_UPLOAD_CHUNK:-65536}" --every "${BENCH_UPLOAD_EVERY_MS:-100}" \
  --healthz "${BENCH_HEALTHZ_N:-200}"
echo "load after: $(uptime)"
echo "figures: $work/limits.json"
