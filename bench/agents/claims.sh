#!/usr/bin/env bash
# The agent job queue alone (no HTTP, no jobs): jobs claimed and finished per second by 3 and
# 24 threads on SQLite and on a throwaway PostgreSQL 15 (initdb in a temp directory, loopback,
# fsync on), the figure published PostgreSQL queues report. See
# crates/mobius-store/benches/claims.rs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PG=/usr/lib/postgresql/15/bin
CLUSTER=$(mktemp -d /tmp/mobius-bench-claims-XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_pg "$PG/pg_ctl" -D "$CLUSTER/data" stop -m fast > /dev/null 2>&1 || true; rm -rf "$CLUSTER"; }
trap cleanup EXIT INT TERM
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
[ "$(id -u)" = 0 ] && chown postgres:postgres "$CLUSTER"
as_pg "$PG/initdb" -D "$CLUSTER/data" --auth=trust -U postgres > /dev/null
as_pg "$PG/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/log" -o "-p $PORT -k $CLUSTER -c listen_addresses=127.0.0.1" -w start > /dev/null
as_pg "$PG/createdb" -h 127.0.0.1 -p "$PORT" -U postgres mobius
echo "uptime: $(uptime)"
cd "$ROOT"
MOBIUS_BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/mobius" cargo bench -p mobius-store --bench claims
