#!/usr/bin/env bash
# Jobs on agents, end to end (issue 14): three `mobius agent` processes on loopback take
# trivial jobs (`run: 'true'`) from a server — claim, workspace and store sync, the step, the
# progress shipped, the report — on SQLite and on PostgreSQL; then the failover time from
# kill -9 of the replica holding a lease to the other holding it; and the idle RSS of a
# replica and of an agent.
#
#   bench/agents/run.sh               # 4 runs × 200 jobs per store
#   BENCH_RUNS=1 bench/agents/run.sh  # 200 jobs
#
# Target: ≥ 500 jobs claimed and finished per second with three agents; failover ≤ 20 s.
# PostgreSQL is Debian's 15, a throwaway cluster (initdb in a temp directory, loopback, fsync
# on), stopped at exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${BENCH_RUNS:-4}
JOBS_PER_AGENT=${BENCH_AGENT_JOBS:-8}
WORK=$(mktemp -d /tmp/mobius-bench-agents-XXXXXX)
TOKEN=bench-admin-token-of-at-least-32-chars
KEY=$(printf '5ec%.0s' $(seq 1 22) | cut -c1-64)
PG=/usr/lib/postgresql/15/bin
log() { printf '[agents bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  # Servers are started in a subshell (`read … < <(start_server …)`): find them by their data.
  pkill -9 -f -- "--data-dir $WORK/" 2>/dev/null || true
  as_pg "$PG/pg_ctl" -D "$WORK/pg/data" stop -m fast > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

log "building: cargo build --release -p mobius"
(cd "$ROOT" && cargo build --release -p mobius) >&2
BIN="$ROOT/target/release/mobius"
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU ticks a process used: "own children" (its own, and its waited-for children's: an agent's
# step shells).
cpu_ticks() { awk '{print $14 + $15, $16 + $17}' "/proc/$1/stat"; }
# CPU ticks of the PostgreSQL cluster's processes (0 without one).
pg_ticks() {
  local master
  master=$(head -1 "$WORK/pg/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  { echo "$master"; pgrep -P "$master"; } | while read -r p; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done \
    | awk '{s += $1} END {print s + 0}'
}

# A repository whose workflow is a 200-instance matrix of `true`, run on agents.
REPO="$WORK/repo"
mkdir -p "$REPO/.github/workflows"
git -C "$REPO" init -q -b main
N=$(seq -s, 1 200)
cat > "$REPO/.github/workflows/many.yml" <<EOF
on: workflow_dispatch
jobs:
  many:
    runs-on: self-hosted
    strategy:
      matrix:
        n: [$N]
    steps:
      - run: 'true'
EOF
git -C "$REPO" -c user.name=b -c user.email=b@example.com add -A
git -C "$REPO" -c user.name=b -c user.email=b@example.com commit -qm bench

start_server() {  # name, data dir, [database url] → prints "pid port"
  local name=$1 dir=$2 url=${3:-} port
  port=$(free_port)
  MOBIUS_ADMIN_TOKEN=$TOKEN MOBIUS_SECRET_KEY=$KEY MOBIUS_DATABASE_URL=$url MOBIUS_LOG=warn \
    "$BIN" --data-dir "$dir" serve --listen "127.0.0.1:$port" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && break
    sleep 0.05
  done
  echo "$pid $port"
}

api() { curl -sf -H "Authorization: Bearer $TOKEN" "$@"; }

measure() {  # name, [database url]
  local name=$1 url=${2:-} dir="$WORK/$1"
  read -r pid port < <(start_server "$name" "$dir" "$url")
  local base="http://127.0.0.1:$port"
  MOBIUS_DATABASE_URL=$url "$BIN" --data-dir "$dir" repo add "$REPO" --name bench/many > /dev/null
  local agent_token
  agent_token=$(MOBIUS_DATABASE_URL=$url "$BIN" --data-dir "$dir" --json token create --scope agent --name bench \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local agents=()
  for a in 1 2 3; do
    MOBIUS_AGENT_TOKEN=$agent_token "$BIN" agent --server "$base" --name "agent-$a" --jobs "$JOBS_PER_AGENT" \
      --work-dir "$WORK/$name-agent-$a" > /dev/null 2> "$WORK/$name-agent-$a.err" &
    agents+=("$!")
    PIDS+=("$!")
  done
  sleep 1
  local t0 t1 ids=() cpu_before=()
  for p in "$pid" "${agents[@]}"; do cpu_before+=("$(cpu_ticks "$p")"); done
  local pg0
  pg0=$(pg_ticks)
  t0=$(date +%s.%N)
  for _ in $(seq 1 "$RUNS"); do
    ids+=("$(api -X POST "$base/api/v1/runs" -H 'content-type: application/json' \
      -d '{"repository":"bench/many","workflow":"many.yml"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
  done
  # The harness must not eat the CPU it measures: one look a second at all the runs, and the
  # time taken from the server's own timestamps (first run started → last run finished).
  local verdict
  while :; do
    sleep 1
    verdict=$(api "$base/api/v1/runs?limit=100" | python3 -c '
import json, sys
from datetime import datetime
ids = set(int(i) for i in sys.argv[1:])
runs = json.load(sys.stdin)
runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
mine = [r for r in runs if r["id"] in ids]
if len(mine) < len(ids) or any(r["state"] in ("queued", "running") for r in mine):
    print("wait"); sys.exit()
bad = [r for r in mine if r["state"] != "success"]
if bad:
    print("failed", bad[0]["id"], bad[0]["state"]); sys.exit()
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
print("done", max(t(r["finished_at"]) for r in mine) - min(t(r["started_at"]) for r in mine))
' "${ids[@]}")
    case $verdict in
      wait) ;;
      done*) break ;;
      *) log "runs ended badly: $verdict"; tail -5 "$WORK/$name-agent-1.err" >&2; exit 1 ;;
    esac
  done
  t1=$(date +%s.%N)
  local jobs=$((RUNS * 200)) took=${verdict#done }
  python3 -c "t=$took; print(f'$name: {$jobs} jobs on 3 agents × $JOBS_PER_AGENT in {t:.2f} s (server timestamps) = {$jobs/t:.0f} jobs/s; harness wall clock {$t1-$t0:.1f} s at 1 look/s')"
  # CPU per job by process, from /proc (ticks of 1/100 s): where the time goes without a
  # profiler's own cost.
  local i=0 report=""
  for p in "$pid" "${agents[@]}"; do
    read -r own kids <<< "$(cpu_ticks "$p")"
    read -r own0 kids0 <<< "${cpu_before[$i]}"
    report+=" $( [ "$i" = 0 ] && echo server || echo "agent-$i"): $(python3 -c "print(f'{($own-$own0)*10/$jobs:.2f}')") ms"
    [ "$i" = 0 ] || report+=" (+ its steps' shells $(python3 -c "print(f'{($kids-$kids0)*10/$jobs:.2f}')") ms)"
    i=$((i + 1))
  done
  [ -n "$url" ] && report+=" PostgreSQL: $(python3 -c "print(f'{($(pg_ticks)-$pg0)*10/$jobs:.2f}')") ms"
  echo "$name: CPU per job:$report"
  sleep 2
  echo "$name: idle RSS server $(( $(rss_kb "$pid") / 1024 )) MB, agent $(( $(rss_kb "${agents[0]}") / 1024 )) MB"
  for a in "${agents[@]}"; do kill -9 "$a" 2>/dev/null || true; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

log "uptime: $(uptime)"
measure sqlite
log "uptime: $(uptime)"

log "PostgreSQL 15: a throwaway cluster"
mkdir -p "$WORK/pg"
chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK/pg"
PGPORT=$(free_port)
as_pg "$PG/initdb" -D "$WORK/pg/data" --auth=trust -U postgres > /dev/null
as_pg "$PG/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1" -w start > /dev/null
as_pg "$PG/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres mobius
URL="postgres://postgres@127.0.0.1:$PGPORT/mobius"
measure postgres "$URL"
log "uptime: $(uptime)"

log "failover: two replicas on PostgreSQL, kill -9 the holder of repository-polling"
read -r a_pid a_port < <(start_server replica-a "$WORK/replica-a" "$URL")
sleep 1
read -r b_pid b_port < <(start_server replica-b "$WORK/replica-b" "$URL")
holds() { curl -s "http://127.0.0.1:$1/readyz" | python3 -c 'import json,sys; print("repository-polling" in json.load(sys.stdin)["leases"]["held"])'; }
for _ in $(seq 1 100); do [ "$(holds "$a_port")" = True ] && break; sleep 0.1; done
t0=$(date +%s.%N)
kill -9 "$a_pid"
while [ "$(holds "$b_port")" != True ]; do sleep 0.1; done
t1=$(date +%s.%N)
python3 -c "print(f'failover: replica b holds the lease {$t1-$t0:.1f} s after kill -9 of replica a (lease 15 s, renewed every 5 s)')"
kill "$b_pid" 2>/dev/null || true
