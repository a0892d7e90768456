#!/usr/bin/env bash
# Two builds of `mobius` side by side on one history: the import into a fresh SQLite store
# (wall, events/s, user + sys, peak RSS), then the same answers from both stores — `mobius
# --json dora` for every service over three windows and `GET /api/v1/dora` — compared byte for
# byte, a re-import of the file by the second build (must store nothing), and the second build
# opening the first build's store (its migrations run; the answers must not change).
#
#   bench/import/compare.sh BEFORE_BIN AFTER_BIN HISTORY.ndjson [WORK_DIR]
#
# BENCH_ROUNDS (1): imports per build, alternating. BENCH_SKIP_MIGRATE=1 skips the last step.
set -euo pipefail
BEFORE=$1 AFTER=$2 DATA=$3
WORK=${4:-${MOBIUS_BENCH_DIR:-${TMPDIR:-/tmp}/mobius-bench}/compare}
ROUNDS=${BENCH_ROUNDS:-1}
TOKEN=$(printf "b%.0s" $(seq 1 40))
KEY=$(printf '5ec%.0s' $(seq 1 22) | cut -c1-64)
mkdir -p "$WORK"
log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

import() {  # name, binary, data dir
  local name=$1 bin=$2 dir=$3 start end load
  rm -rf "$dir"
  load=$(cut -d" " -f1 /proc/loadavg)
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/import-$name.time" "$bin" --data-dir "$dir" --json events import "$DATA" \
    > "$WORK/import-$name.json" 2> "$WORK/import-$name.stderr"
  end=$(date +%s.%N)
  python3 - "$WORK/import-$name.json" "$WORK/import-$name.time" "$start" "$end" "$load" "$(cut -d' ' -f1 /proc/loadavg)" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read()
field = lambda k: next(l.split(': ')[1] for l in t.splitlines() if k in l)
s = float(sys.argv[4]) - float(sys.argv[3])
print(f"| {sys.argv[7]} | {sys.argv[5]} → {sys.argv[6]} | {s:.1f} s | {r['stored'] / s:,.0f} | "
      f"{float(field('User time')):.1f} + {float(field('System time')):.1f} s | "
      f"{int(field('Maximum resident set size')) / 1024:.0f} MB | {r['stored']} stored, {r['duplicates']} duplicates |")
PY
}

answers() {  # binary, data dir, output prefix
  local bin=$1 dir=$2 out=$3
  for window in "2026-10-01 2026-11-01" "2025-01-01 2026-11-01" "2024-11-01 2025-02-01"; do
    set -- $window
    for env in production staging; do
      "$bin" --data-dir "$dir" --json dora --environment "$env" --from "$1" --to "$2" > "$out-dora-$env-$1.json"
    done
  done
  "$bin" --data-dir "$dir" --json dora --service svc-07 --environment production --from 2025-06-01 --to 2026-11-01 \
    > "$out-dora-svc07.json"
  local port pid
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
  MOBIUS_SECRET_KEY=$KEY MOBIUS_ADMIN_TOKEN=$TOKEN "$bin" --data-dir "$dir" serve --listen "127.0.0.1:$port" \
    > "$out-serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break; sleep 0.2; done
  for q in "environment=production&from=2026-10-01&to=2026-11-01" "service=svc-07&environment=production&from=2025-01-01&to=2026-11-01"; do
    curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/v1/dora?$q" > "$out-api-${q%%&*}.json"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

same() {  # prefix a, prefix b
  local a=$1 b=$2 n=0 differ=0
  for f in "$a"-dora-*.json "$a"-api-*.json; do
    n=$((n + 1))
    [ -s "$f" ] || { echo "empty: $f" >&2; differ=$((differ + 1)); continue; }
    cmp -s "$f" "$b${f#"$a"}" || { echo "differs: $f" >&2; differ=$((differ + 1)); }
  done
  echo "$n answers compared, $differ differ"
}

echo "| build | load (1 min) start → end | wall | events/s | user + sys | peak RSS | result |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  import before "$BEFORE" "$WORK/before"
  import after "$AFTER" "$WORK/after"
done
log "answers"
answers "$BEFORE" "$WORK/before" "$WORK/a-before"
answers "$AFTER" "$WORK/after" "$WORK/a-after"
echo
echo "- before vs after: $(same "$WORK/a-before" "$WORK/a-after")"
log "re-import by the second build"
start=$(date +%s.%N)
"$AFTER" --data-dir "$WORK/after" --json events import "$DATA" > "$WORK/reimport.json" 2> "$WORK/reimport.stderr"
end=$(date +%s.%N)
answers "$AFTER" "$WORK/after" "$WORK/a-reimport"
echo "- re-import: $(python3 -c "import json; r=json.load(open('$WORK/reimport.json')); print(f\"{$end-$start:.1f} s, {r['stored']} stored, {r['duplicates']} duplicates\")"); $(same "$WORK/a-after" "$WORK/a-reimport")"
if [ "${BENCH_SKIP_MIGRATE:-0}" != 1 ]; then
  log "the second build opens the first build's store"
  start=$(date +%s.%N)
  "$AFTER" --data-dir "$WORK/before" --json events list --limit 1 > /dev/null
  end=$(date +%s.%N)
  answers "$AFTER" "$WORK/before" "$WORK/a-migrated"
  echo "- first build's store opened by the second: $(python3 -c "print(f'{$end-$start:.1f}')") s (migrations); $(same "$WORK/a-before" "$WORK/a-migrated")"
fi
