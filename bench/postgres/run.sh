#!/usr/bin/env bash
# SQLite and PostgreSQL side by side on the same 1M-event history: the import rate into each,
# and DORA query latency for one service and for all 50 through `GET /api/v1/dora` on a
# server over each (issue 14: import ≥ 100,000 events/s on SQLite, DORA p99 ≤ 50 ms on both).
#
#   bench/postgres/run.sh            # the 1M-event history of bench/run.sh (generated if missing)
#   bench/postgres/run.sh --small    # ~20k records
#
# PostgreSQL is Debian's 15, started here as a throwaway cluster (initdb in a temp directory,
# a loopback port, fsync on: the durability the store promises), stopped at exit.
# Environment: MOBIUS_BENCH_DIR, BENCH_SEED (42), BENCH_EVENTS (1000000), BENCH_HTTP_N (200).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SEED=${BENCH_SEED:-42}
EVENTS=${BENCH_EVENTS:-1000000}
[ "${1:-}" = "--small" ] && EVENTS=20000
N=${BENCH_HTTP_N:-200}
WORK=${MOBIUS_BENCH_DIR:-${TMPDIR:-/tmp}/mobius-bench}
DATA="$WORK/history-seed$SEED-$EVENTS.ndjson"
OUT="$WORK/postgres-$EVENTS"
TOKEN=bench-admin-token-of-at-least-32-chars
KEY=$(printf '5ec%.0s' $(seq 1 22) | cut -c1-64)
PG=/usr/lib/postgresql/15/bin
rm -rf "$OUT" && mkdir -p "$OUT"
log() { printf '[postgres bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

CLUSTER=$(mktemp -d /tmp/mobius-bench-pg-XXXXXX)
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  as_pg "$PG/pg_ctl" -D "$CLUSTER/data" stop -m fast > /dev/null 2>&1 || true
  rm -rf "$CLUSTER"
}
trap cleanup EXIT INT TERM

log "building: cargo build --release -p mobius"
(cd "$ROOT" && cargo build --release -p mobius) >&2
BIN="$ROOT/target/release/mobius"
if [ ! -s "$DATA" ]; then
  log "generating $DATA"
  mkdir -p "$WORK"
  python3 "$ROOT/bench/generate.py" --seed "$SEED" --services 50 --years 2 --target-events "$EVENTS" \
    --out "$DATA.tmp" --truth "$DATA.truth.json" 2> "$OUT/generate.log"
  mv "$DATA.tmp" "$DATA"
fi

log "PostgreSQL 15: a throwaway cluster on 127.0.0.1:$PORT"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$CLUSTER"
as_pg "$PG/initdb" -D "$CLUSTER/data" --auth=trust -U postgres > "$OUT/initdb.log"
as_pg "$PG/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/log" -o "-p $PORT -k $CLUSTER -c listen_addresses=127.0.0.1" -w start > /dev/null
as_pg "$PG/createdb" -h 127.0.0.1 -p "$PORT" -U postgres mobius
URL="postgres://postgres@127.0.0.1:$PORT/mobius"

import() {  # name, data dir, [database url]
  local name=$1 dir=$2 url=${3:-}
  rm -rf "$dir"
  local start end
  start=$(date +%s.%N)
  MOBIUS_DATABASE_URL=$url MOBIUS_SECRET_KEY=$KEY "$BIN" --data-dir "$dir" --json events import "$DATA" > "$OUT/import-$name.json"
  end=$(date +%s.%N)
  python3 -c "
import json; r=json.load(open('$OUT/import-$name.json')); s=$end-$start
print(f'{s:.1f} {r[\"stored\"]} {r[\"stored\"]/s:.0f}')"
}
log "import into SQLite"
read -r SQ_S SQ_N SQ_RATE < <(import sqlite "$OUT/sqlite")
log "SQLite: $SQ_N stored in ${SQ_S}s ($SQ_RATE/s)"
log "import into PostgreSQL"
read -r PG_S PG_N PG_RATE < <(import postgres "$OUT/pg-data" "$URL")
log "PostgreSQL: $PG_N stored in ${PG_S}s ($PG_RATE/s)"

serve_and_measure() {  # name, data dir, [database url]
  local name=$1 dir=$2 url=${3:-}
  local port
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
  MOBIUS_DATABASE_URL=$url MOBIUS_SECRET_KEY=$KEY MOBIUS_ADMIN_TOKEN=$TOKEN "$BIN" --data-dir "$dir" serve --listen "127.0.0.1:$port" > "$OUT/serve-$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break; sleep 0.2; done
  local q="environment=production&from=2026-10-01&to=2026-11-01"
  python3 "$ROOT/bench/http_bench.py" --port "$port" --token "$TOKEN" --n "$N" --path "/api/v1/dora?service=svc-07&$q" > "$OUT/dora-one-$name.json"
  python3 "$ROOT/bench/http_bench.py" --port "$port" --token "$TOKEN" --n 50 --warmup 2 --path "/api/v1/dora?$q" > "$OUT/dora-all-$name.json"
  curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/v1/dora?$q" > "$OUT/dora-all-body-$name.json"
  local rss
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  python3 -c "
import json; o=json.load(open('$OUT/dora-one-$name.json')); a=json.load(open('$OUT/dora-all-$name.json'))
print(*(f'{v:.2f}' for v in (o['p50_ms'], o['p99_ms'], a['p50_ms'], a['p99_ms'])), $rss)"
}
log "DORA over HTTP on SQLite"
read -r SQ_P50 SQ_P99 SQ_ALL50 SQ_ALL99 SQ_RSS < <(serve_and_measure sqlite "$OUT/sqlite")
log "DORA over HTTP on PostgreSQL"
read -r PG_P50 PG_P99 PG_ALL50 PG_ALL99 PG_RSS < <(serve_and_measure postgres "$OUT/pg-data" "$URL")
cmp -s "$OUT/dora-all-body-sqlite.json" "$OUT/dora-all-body-postgres.json" && SAME=yes || SAME=no
LOAD=$(cut -d" " -f1-3 /proc/loadavg)
cat <<MD
## SQLite and PostgreSQL side by side, $EVENTS-event history

| | SQLite | PostgreSQL 15 | PostgreSQL / SQLite |
|---|---|---|---|
| import (\`mobius events import\`) | ${SQ_S} s, **${SQ_RATE}/s** | ${PG_S} s, **${PG_RATE}/s** | $(python3 -c "print(f'{$PG_RATE/$SQ_RATE:.2f}×')") |
| \`GET /api/v1/dora\`, svc-07 (n=$N) | p50 ${SQ_P50} ms, p99 **${SQ_P99} ms** | p50 ${PG_P50} ms, p99 **${PG_P99} ms** | p99 $(python3 -c "print(f'{$PG_P99/$SQ_P99:.2f}×')") |
| \`GET /api/v1/dora\`, all 50 services (n=50) | p50 ${SQ_ALL50} ms, p99 ${SQ_ALL99} ms | p50 ${PG_ALL50} ms, p99 ${PG_ALL99} ms | p99 $(python3 -c "print(f'{$PG_ALL99/$SQ_ALL99:.2f}×')") |
| server RSS after the queries | $((SQ_RSS / 1024)) MB | $((PG_RSS / 1024)) MB | |

stored: SQLite $SQ_N, PostgreSQL $PG_N; every service's DORA answer byte-identical on both: $SAME; load average at the end: $LOAD
MD
