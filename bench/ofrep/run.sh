#!/usr/bin/env bash
# OFREP over loopback (issue 15): wrk against `mobius serve` evaluating one flag (a targeting
# rule with three conditions) and every flag of a 50-flag set (bulk), with a `flags` client
# key; requests per second and latency percentiles; then the server's RSS with 10,000 flags
# loaded. Target: ≥ 50,000 single evaluations/s on 2 cores.
#
#   bench/ofrep/run.sh                         # wrk -t2 -c64 -d10s
#   DURATION=20s CONNECTIONS=128 bench/ofrep/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
WORK="$(mktemp -d /tmp/mobius-ofrep-bench.XXXXXX)"
TOKEN=bench-admin-token-of-at-least-32-chars
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
if ! command -v wrk >/dev/null 2>&1; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
echo "uptime: $(uptime)"
(cd "$ROOT" && cargo build --release -p mobius) >&2
BIN="$ROOT/target/release/mobius"
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
BASE="http://127.0.0.1:$PORT"

# n flags: flag-0 … flag-(n-1), each a targeting rule with three conditions (email domain,
# country, app version), every fifth a three-way fractional split instead.
flags() {
python3 - "$1" <<'PY'
import json, sys
n = int(sys.argv[1]); flags = {}
for i in range(n):
    if i % 5 == 4:
        targeting = {"fractional": [["a", 33], ["b", 33], ["c", 34]]}
        variants = {"a": "a", "b": "b", "c": "c"}; default = "a"
    else:
        targeting = {"if": [{"and": [
            {"ends_with": [{"var": "email"}, "@example.com"]},
            {"in": [{"var": "country"}, ["CA", "FR", "DE"]]},
            {"sem_ver": [{"var": "appVersion"}, ">=", "2.0.0"]}]}, "on", "off"]}
        variants = {"on": True, "off": False}; default = "off"
    flags[f"flag-{i}"] = {"state": "ENABLED", "variants": variants, "defaultVariant": default, "targeting": targeting}
print(json.dumps({"flags": flags}))
PY
}

MOBIUS_ADMIN_TOKEN=$TOKEN MOBIUS_LOG=warn MOBIUS_OFREP_RATE=0 "$BIN" --data-dir "$WORK/data" serve --listen "127.0.0.1:$PORT" \
    > "$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
flags 50 > "$WORK/web.json"
curl -sf -X PUT "$BASE/api/v1/flags/web" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    --data-binary @"$WORK/web.json" >/dev/null
KEY=$("$BIN" --json token create --scope flags --set web --name bench --server "$BASE" --token "$TOKEN" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
CONTEXT='{"context":{"targetingKey":"user-42","email":"ana@example.com","country":"FR","appVersion":"2.3.1"}}'
curl -sf -X POST "$BASE/ofrep/v1/evaluate/flags/flag-0" -H "X-API-Key: $KEY" -H 'content-type: application/json' \
    -d "$CONTEXT" | grep -q '"value":true' || { echo "the single evaluation is not what it should be" >&2; exit 1; }

cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$CONTEXT'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$KEY"
LUA
run() {  # name, path
    echo "## $1 ($2), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$BASE$2" \
        | grep -E "Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors"
}
run "single evaluation" /ofrep/v1/evaluate/flags/flag-0
run "bulk, 50 flags" /ofrep/v1/evaluate/flags
echo "server RSS after the runs: $(( $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status) / 1024 )) MB"

flags 10000 > "$WORK/big.json"
curl -sf -X PUT "$BASE/api/v1/flags/big" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    --data-binary @"$WORK/big.json" >/dev/null
sleep 1
echo "server RSS with 10,000 more flags loaded ($(( $(stat -c %s "$WORK/big.json") / 1024 )) KiB of JSON): $(( $(awk '/VmRSS/ {print $2}' /proc/$SERVER/status) / 1024 )) MB"
echo "uptime: $(uptime)"
