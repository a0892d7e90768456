#!/usr/bin/env bash
# The console on the benchmark's 1M-event store (50 services): render latency of every page
# (p50/p99 over repeated requests, signed in, one keep-alive connection on loopback), the
# bytes a first visit to each page transfers (page + assets, headers included), and the
# server's RSS after browsing every page. Targets (issue 13): services page and a service
# page p99 ≤ 50 ms; a first visit ≤ 200 KB.
#
#   bench/console/run.sh            # the 1M-event store of bench/run.sh (built if missing)
#   bench/console/run.sh --small    # ~20k records, for a quick try
#
# Environment: MOBIUS_BENCH_DIR (default ${TMPDIR:-/tmp}/mobius-bench, shared with
# bench/run.sh), BENCH_SEED (42), BENCH_EVENTS (1000000), BENCH_N (200 requests per page).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SEED=${BENCH_SEED:-42}
EVENTS=${BENCH_EVENTS:-1000000}
[ "${1:-}" = "--small" ] && EVENTS=20000
N=${BENCH_N:-200}
WORK=${MOBIUS_BENCH_DIR:-${TMPDIR:-/tmp}/mobius-bench}
DATA="$WORK/history-seed$SEED-$EVENTS.ndjson"
DIR="$WORK/data-$EVENTS"
OUT="$WORK/console-$EVENTS"
TOKEN=bench-admin-token-of-at-least-32-chars
mkdir -p "$WORK" && rm -rf "$OUT" && mkdir -p "$OUT"
log() { printf '[console bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

log "building: cargo build --release -p mobius"
(cd "$ROOT" && cargo build --release -p mobius) >&2
BIN="$ROOT/target/release/mobius"

if [ ! -s "$DIR/mobius.db" ]; then
  if [ ! -s "$DATA" ]; then
    log "generating $DATA"
    python3 "$ROOT/bench/generate.py" --seed "$SEED" --services 50 --years 2 --target-events "$EVENTS" \
      --out "$DATA.tmp" --truth "$DATA.truth.json" 2> "$OUT/generate.log"
    mv "$DATA.tmp" "$DATA"
  fi
  log "importing $DATA into $DIR"
  "$BIN" --data-dir "$DIR" --json events import "$DATA" > "$OUT/import.json"
else
  log "reusing the store in $DIR"
fi

PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
log "server: mobius serve on 127.0.0.1:$PORT"
MOBIUS_ADMIN_TOKEN=$TOKEN "$BIN" --data-dir "$DIR" serve --listen "127.0.0.1:$PORT" > "$OUT/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" > /dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
  sleep 0.2
done
rss_kb() { awk "/^$1/ {print \$2}" "/proc/$SERVER_PID/status"; }
sleep 1
RSS_START=$(rss_kb VmRSS)
READ=$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"scope":"read","name":"console-bench"}' "http://127.0.0.1:$PORT/api/v1/tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# The data ends 2026-11-01: every page looks at the month before, as bench/run.sh's queries.
W="environment=production&from=2026-10-01&to=2026-11-01"
PAGES=(
  "/services?$W"
  "/services/svc-07?$W"
  "/services/svc-07/flow?$W"
  "/runs"
  "/rollouts"
  "/slos"
  "/incidents"
  "/events"
  "/events?type=dev.cdevents.service.deployed.0.2.0"
)
log "browsing ${#PAGES[@]} pages, $N requests each"
python3 "$HERE/browse.py" --port "$PORT" --token "$READ" --n "$N" "${PAGES[@]}" | tee "$OUT/pages.ndjson" >&2
sleep 1
RSS_AFTER=$(rss_kb VmRSS)
HWM=$(rss_kb VmHWM)
LOAD=$(cut -d" " -f1-3 /proc/loadavg)
python3 - "$OUT/pages.ndjson" "$RSS_START" "$RSS_AFTER" "$HWM" "$LOAD" "$EVENTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
start, after, hwm, load, events = sys.argv[2:7]
print(f"## Console, {events}-event store\n")
print("| page | status | p50 ms | p99 ms | first visit (page + assets) |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| `{r['path']}` | {r['status']} | {r['p50_ms']} | {r['p99_ms']} | {r['first_visit_bytes']/1024:.1f} KB ({r['assets']} assets) |")
print(f"\nserver RSS: {int(start)/1024:.1f} MB after start-up, {int(after)/1024:.1f} MB after browsing every page "
      f"(peak {int(hwm)/1024:.1f} MB); load average at the end: {load}")
PY
