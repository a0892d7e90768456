#!/usr/bin/env bash
# Mobius benchmark: bulk import, DORA query latency (HTTP and CLI), server RSS, and a
# Four Keys-style "views over the raw event table" peer on the same data.
#
#   bench/run.sh            # ~1M records (seed 42)
#   bench/run.sh --small    # ~20k records, for a quick try
#
# Environment: MOBIUS_BENCH_DIR (work dir, default ${TMPDIR:-/tmp}/mobius-bench),
# BENCH_SEED (42), BENCH_EVENTS (1000000), BENCH_HTTP_N (200), BENCH_HTTP_ALL_N (50),
# BENCH_CLI_RUNS (20), BENCH_FK_RUNS (5), BENCH_FK_BUDGET (seconds, 900), BENCH_SKIP_FK (1 to skip),
# BENCH_SKIP_REIMPORT (1 to skip the duplicate re-import), BENCH_HTTP_INGEST (records posted to a
# second, fresh server before measuring its idle RSS: 100000; 0 to skip).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SMALL=0
for arg in "$@"; do
  case "$arg" in
    --small) SMALL=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

SEED=${BENCH_SEED:-42}
EVENTS=${BENCH_EVENTS:-1000000}
[ "$SMALL" = 1 ] && EVENTS=20000
HTTP_N=${BENCH_HTTP_N:-200}
HTTP_ALL_N=${BENCH_HTTP_ALL_N:-50}
CLI_RUNS=${BENCH_CLI_RUNS:-20}
FK_RUNS=${BENCH_FK_RUNS:-5}
FK_BUDGET=${BENCH_FK_BUDGET:-900}
SERVICE=svc-07
ENVIRONMENT=production
FROM=2026-10-01
TO=2026-11-01
TOKEN=bench-admin-token
WORK=${MOBIUS_BENCH_DIR:-${TMPDIR:-/tmp}/mobius-bench}
mkdir -p "$WORK"
DATA="$WORK/history-seed$SEED-$EVENTS.ndjson"
TRUTH="$WORK/history-seed$SEED-$EVENTS.truth.json"
DIR="$WORK/data-$EVENTS"
OUT="$WORK/run-$EVENTS"
FKDB="$WORK/fourkeys-seed$SEED-$EVENTS.sqlite"
rm -rf "$OUT" && mkdir -p "$OUT"
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------------------------------------
log "building: cargo build --release -p mobius"
(cd "$ROOT" && cargo build --release -p mobius) >&2
BIN="$ROOT/target/release/mobius"
[ -x /usr/bin/time ] || { log "installing GNU time"; (apt-get update -qq && apt-get install -y -qq time) >&2; }

if [ ! -s "$DATA" ] || [ ! -s "$TRUTH" ]; then
  log "generating $DATA"
  python3 "$HERE/generate.py" --seed "$SEED" --services 50 --years 2 --target-events "$EVENTS" \
    --out "$DATA.tmp" --truth "$TRUTH" 2> "$OUT/generate.log"
  mv "$DATA.tmp" "$DATA"
else
  log "reusing $DATA"
fi
RECORDS=$(wc -l < "$DATA")
DATA_BYTES=$(stat -c %s "$DATA")

# ---------------------------------------------------------------------------------------------
log "import: $RECORDS records into a fresh $DIR"
rm -rf "$DIR"
T0=$(date +%s.%N)
set +e
/usr/bin/time -v -o "$OUT/import.time" "$BIN" --data-dir "$DIR" --json events import "$DATA" > "$OUT/import.json" 2> "$OUT/import.stderr"
IMPORT_RC=$?
set -e
T1=$(date +%s.%N)
IMPORT_S=$(python3 -c "print(f'{$T1 - $T0:.3f}')")
IMPORT_RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/import.time")
IMPORT_USER=$(awk -F': ' '/User time/ {print $2}' "$OUT/import.time")
IMPORT_SYS=$(awk -F': ' '/System time/ {print $2}' "$OUT/import.time")
DB_BYTES=$(du -sb "$DIR" | cut -f1)
read -r STORED DUPS REJECTED < <(python3 -c "
import json,sys
try:
    r=json.load(open('$OUT/import.json')); print(r['stored'], r['duplicates'], r['rejected'])
except Exception as e:
    print('?', '?', '?')")
log "import: ${IMPORT_S}s rc=$IMPORT_RC stored=$STORED duplicates=$DUPS rejected=$REJECTED peak RSS ${IMPORT_RSS_KB} kB"

# ---------------------------------------------------------------------------------------------
log "correctness: mobius dora (all services) against the generator's expected figures"
"$BIN" --data-dir "$DIR" --json dora --environment "$ENVIRONMENT" --from "$FROM" --to "$TO" > "$OUT/dora-all.json" 2> "$OUT/dora-all.stderr" || true
set +e
python3 "$HERE/check_truth.py" "$TRUTH" "$OUT/dora-all.json" > "$OUT/check.txt" 2>&1
set -e
CHECK=$(tail -1 "$OUT/check.txt")
log "check: $CHECK"

# ---------------------------------------------------------------------------------------------
REIMPORT_S=0
REIMPORT_SAME=skipped
if [ "${BENCH_SKIP_REIMPORT:-0}" != 1 ]; then
  log "re-import: the same file again must store nothing"
  T0=$(date +%s.%N)
  "$BIN" --data-dir "$DIR" --json events import "$DATA" > "$OUT/reimport.json" 2> "$OUT/reimport.stderr" || true
  T1=$(date +%s.%N)
  REIMPORT_S=$(python3 -c "print(f'{$T1 - $T0:.3f}')")
  "$BIN" --data-dir "$DIR" --json dora --environment "$ENVIRONMENT" --from "$FROM" --to "$TO" > "$OUT/dora-all-after-reimport.json" 2>&1 || true
  if cmp -s "$OUT/dora-all.json" "$OUT/dora-all-after-reimport.json"; then REIMPORT_SAME=yes; else REIMPORT_SAME=no; fi
  log "re-import: ${REIMPORT_S}s, DORA unchanged: $REIMPORT_SAME"
fi

# ---------------------------------------------------------------------------------------------
log "CLI latency: $CLI_RUNS runs of mobius dora --service $SERVICE"
CLI_CMD="$BIN --data-dir $DIR --json dora --service $SERVICE --environment $ENVIRONMENT --from $FROM --to $TO"
CLI_ALL_CMD="$BIN --data-dir $DIR --json dora --environment $ENVIRONMENT --from $FROM --to $TO"
if command -v hyperfine >/dev/null; then
  hyperfine --style none --warmup 3 --runs "$CLI_RUNS" --export-json "$OUT/cli-one.json" "$CLI_CMD" > "$OUT/cli-one.txt" 2>&1
  hyperfine --style none --warmup 1 --runs 5 --export-json "$OUT/cli-all.json" "$CLI_ALL_CMD" > "$OUT/cli-all.txt" 2>&1
  CLI_TOOL=hyperfine
else
  CLI_TOOL="python (subprocess)"
  python3 - "$OUT/cli-one.json" "$CLI_RUNS" $CLI_CMD <<'EOF'
import json, subprocess, sys, time
out, n, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for _ in range(3): subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
ts = []
for _ in range(n):
    t0 = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True); ts.append(time.perf_counter() - t0)
json.dump({"results": [{"times": ts}]}, open(out, "w"))
EOF
  cp "$OUT/cli-one.json" "$OUT/cli-all.json"
fi
CLI_STATS() { python3 -c "
import json,statistics
t=sorted(json.load(open('$1'))['results'][0]['times']); ms=[x*1000 for x in t]
k=max(0,min(len(ms)-1,int(round(0.99*len(ms)+0.5))-1))
print(f'{statistics.median(ms):.1f} {ms[k]:.1f} {len(ms)}')"; }
read -r CLI_P50 CLI_P99 CLI_N < <(CLI_STATS "$OUT/cli-one.json")
read -r CLI_ALL_P50 CLI_ALL_P99 CLI_ALL_N < <(CLI_STATS "$OUT/cli-all.json")

# ---------------------------------------------------------------------------------------------
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
log "server: mobius serve on 127.0.0.1:$PORT"
MOBIUS_ADMIN_TOKEN=$TOKEN "$BIN" --data-dir "$DIR" serve --listen "127.0.0.1:$PORT" > "$OUT/serve.log" 2>&1 &
SERVER_PID=$!
READY=0
for _ in $(seq 1 300); do
  if python3 -c "
import http.client,sys
c=http.client.HTTPConnection('127.0.0.1',$PORT,timeout=1)
try:
    c.request('GET','/readyz'); sys.exit(0 if c.getresponse().status==200 else 1)
except Exception: sys.exit(1)" 2>/dev/null; then READY=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.2
done
if [ "$READY" != 1 ]; then
  log "server did not become ready; log:"; cat "$OUT/serve.log" >&2; exit 1
fi
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
sleep 2
RSS_IDLE_START=$(rss_kb)
log "idle RSS after start-up: ${RSS_IDLE_START} kB"

Q="service=$SERVICE&environment=$ENVIRONMENT&from=$FROM&to=$TO"
log "HTTP: $HTTP_N x GET /api/v1/dora?$Q"
python3 "$HERE/http_bench.py" --port "$PORT" --token "$TOKEN" --n "$HTTP_N" \
  --path "/api/v1/dora?$Q" > "$OUT/http-one.json" || log "some requests failed: $(cat "$OUT/http-one.json")"
RSS_AFTER_ONE=$(rss_kb)
log "HTTP: $HTTP_ALL_N x GET /api/v1/dora (all services)"
python3 "$HERE/http_bench.py" --port "$PORT" --token "$TOKEN" --n "$HTTP_ALL_N" --warmup 2 \
  --path "/api/v1/dora?environment=$ENVIRONMENT&from=$FROM&to=$TO" > "$OUT/http-all.json" || log "some requests failed: $(cat "$OUT/http-all.json")"
sleep 2
RSS_IDLE_AFTER=$(rss_kb)
RSS_PEAK=$(hwm_kb)
log "idle RSS after the queries: ${RSS_IDLE_AFTER} kB (peak ${RSS_PEAK} kB)"
cleanup
SERVER_PID=""

# A server that has ingested: idle memory after taking records over the API.
start_server() {  # data dir, log file
  PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
  MOBIUS_ADMIN_TOKEN=$TOKEN "$BIN" --data-dir "$1" serve --listen "127.0.0.1:$PORT" > "$2" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if python3 -c "
import http.client,sys
c=http.client.HTTPConnection('127.0.0.1',$PORT,timeout=1)
try:
    c.request('GET','/readyz'); sys.exit(0 if c.getresponse().status==200 else 1)
except Exception: sys.exit(1)" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  log "server did not become ready; log:"; cat "$2" >&2; return 1
}
HTTP_INGEST=${BENCH_HTTP_INGEST:-100000}
[ "$SMALL" = 1 ] && HTTP_INGEST=20000
RSS_INGEST_START=""; RSS_INGEST_AFTER=""; RSS_INGEST_PEAK=""
if [ "$HTTP_INGEST" -gt 0 ]; then
  rm -rf "$DIR-http"
  start_server "$DIR-http" "$OUT/serve-ingest.log"
  sleep 2
  RSS_INGEST_START=$(rss_kb)
  log "HTTP ingest: first $HTTP_INGEST records, POST /api/v1/events in NDJSON batches of 5000, into a fresh store"
  python3 "$HERE/http_ingest.py" --port "$PORT" --token "$TOKEN" --file "$DATA" --records "$HTTP_INGEST" \
    > "$OUT/http-ingest.json" || log "ingest over HTTP reported errors: $(cat "$OUT/http-ingest.json")"
  sleep 2
  RSS_INGEST_AFTER=$(rss_kb)
  RSS_INGEST_PEAK=$(hwm_kb)
  log "idle RSS after ingesting over HTTP: ${RSS_INGEST_AFTER} kB (peak ${RSS_INGEST_PEAK} kB)"
  cleanup
  SERVER_PID=""
  rm -rf "$DIR-http"
fi

# ---------------------------------------------------------------------------------------------
FK_SUMMARY="skipped"
if [ "${BENCH_SKIP_FK:-0}" != 1 ]; then
  if [ ! -s "$FKDB" ] || [ "$FKDB" -ot "$DATA" ] || [ "$FKDB" -ot "$HERE/fourkeys_model.py" ]; then
    log "peer model: loading events_raw into $FKDB"
    python3 "$HERE/fourkeys_model.py" load "$DATA" "$FKDB" > "$OUT/fk-load.json"
  else
    log "peer model: reusing $FKDB"
    echo '{"reused": true}' > "$OUT/fk-load.json"
  fi
  log "peer model: $FK_RUNS runs of the four queries (budget ${FK_BUDGET}s)"
  python3 "$HERE/fourkeys_model.py" query "$FKDB" --service "$SERVICE" --environment "$ENVIRONMENT" \
    --from "$FROM" --to "$TO" --runs "$FK_RUNS" --budget "$FK_BUDGET" > "$OUT/fk-query.json"
  FK_SUMMARY="done"
fi

# ---------------------------------------------------------------------------------------------
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(free -h | awk '/^Mem:/ {print $2}')
export OUT RECORDS DATA_BYTES IMPORT_S IMPORT_RC IMPORT_RSS_KB IMPORT_USER IMPORT_SYS DB_BYTES STORED DUPS REJECTED \
  CHECK CLI_P50 CLI_P99 CLI_N CLI_ALL_P50 CLI_ALL_P99 CLI_ALL_N CLI_TOOL RSS_IDLE_START RSS_AFTER_ONE RSS_IDLE_AFTER RSS_PEAK \
  FK_SUMMARY SEED SERVICE FROM TO CPU MEM SMALL REIMPORT_S REIMPORT_SAME LOAD_START \
  HTTP_INGEST RSS_INGEST_START RSS_INGEST_AFTER RSS_INGEST_PEAK
export LOAD_END=$(cut -d" " -f1-3 /proc/loadavg) NPROC=$(nproc) KERNEL=$(uname -r) DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
export DIRTY=$(cd "$ROOT" && if [ -z "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then echo "clean tree"; else echo "with uncommitted changes in crates/"; fi)
python3 "$HERE/summary.py" | tee "$HERE/last-run.md"
