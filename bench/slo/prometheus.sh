#!/usr/bin/env bash
# A Prometheus SLO's evaluation time against a slow Prometheus: a real Prometheus (Debian's
# package) with 3 days of backfilled request counters, reached directly and through a small
# HTTP proxy that holds every request for DELAY_MS first (a loaded or distant Prometheus).
# `mobius slo status --json` is timed against `mobius serve` with one Prometheus SLO of each.
# See bench/README.md ("SLOs").
#
#   bench/slo/prometheus.sh                 # DELAY_MS=50, RUNS=10
#   DELAY_MS=200 RUNS=5 bench/slo/prometheus.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DELAY_MS="${DELAY_MS:-50}"
RUNS="${RUNS:-10}"
WORK="$(mktemp -d /tmp/mobius-prometheus-bench.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v prometheus >/dev/null || { echo "needs prometheus and promtool (apt-get install prometheus)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p mobius >&2)
MOBIUS="$ROOT/target/release/mobius"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
    for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "nothing answers $1" >&2; return 1
}

# 3 days of counters a minute apart: 2,000 requests a minute, 0.05% failing, 2% in the last hour.
python3 - "$WORK/metrics.om" <<'PY'
import sys, time
now = int(time.time()); last = now - now % 60 - 60; first = last - 3 * 86400 - 3600
good = bad = 0; ok = []; ko = []
for t in range(first, last + 1, 60):
    failed = 40 if t > last - 3600 else 1
    good += 2000 - failed; bad += failed
    ok.append(f'http_requests_total{{code="200"}} {good} {t}'); ko.append(f'http_requests_total{{code="500"}} {bad} {t}')
open(sys.argv[1], "w").write("# TYPE http_requests counter\n" + "\n".join(ok + ko) + "\n# EOF\n")
PY
promtool tsdb create-blocks-from openmetrics "$WORK/metrics.om" "$WORK/tsdb" >/dev/null
printf 'global:\n  scrape_interval: 1h\n' >"$WORK/prometheus.yml"
PROM_PORT="$(free_port)"
prometheus --storage.tsdb.path="$WORK/tsdb" --config.file="$WORK/prometheus.yml" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >/dev/null 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready"

# The slow path: every request waits DELAY_MS, then is forwarded (threads, so requests sent at
# once wait at once, as they would for a slow server).
SLOW_PORT="$(free_port)"
python3 - "$SLOW_PORT" "$PROM_PORT" "$DELAY_MS" <<'PY' & PIDS+=($!)
import sys, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, upstream, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000
class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(delay)
        with urllib.request.urlopen(f"http://127.0.0.1:{upstream}{self.path}") as r:
            body = r.read(); code = r.status
        self.send_response(code); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), Slow).serve_forever()
PY
wait_http "http://127.0.0.1:$SLOW_PORT/api/v1/query?query=1"

DATA="$WORK/data"; TOKEN="bench-admin-token-0123456789"
MOBIUS_ADMIN_TOKEN="$TOKEN" MOBIUS_LOG=warn "$MOBIUS" --data-dir "$DATA" serve --listen 127.0.0.1:0 \
    2>"$WORK/serve.log" & PIDS+=($!)
for _ in $(seq 1 100); do grep -q "^mobius listening on " "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
SERVER="$(sed -n 's/^mobius listening on //p' "$WORK/serve.log" | head -1)"
export MOBIUS_SERVER="$SERVER" MOBIUS_TOKEN="$TOKEN"

slo() { # name url
    cat <<YAML
  - name: $1
    objective: 99.9
    window: 3d
    sli:
      prometheus:
        url: $2
        error_query: 'sum(increase(http_requests_total{code="500"}[{{window}}]))'
        total_query: 'sum(increase(http_requests_total[{{window}}]))'
YAML
}
mkdir -p "$WORK/release"
cat >"$WORK/release/mobius.yaml" <<YAML
service: shop
run:
  command: $MOBIUS
  args: [sample-app]
  instances: 1
environments:
  - name: production
    listen: 127.0.0.1:$(free_port)
slos:
$(slo direct "http://127.0.0.1:$PROM_PORT")
YAML
# Deploys the release as version $1 and waits until its rollout is over.
deploy() {
    "$MOBIUS" deploy shop production --dir "$WORK/release" --as "$1" >/dev/null
    for _ in $(seq 1 300); do
        curl -fsS -H "authorization: Bearer $TOKEN" "$SERVER/api/v1/rollouts/shop/production" \
            | grep -q '"phase":"succeeded"' && return 0
        sleep 0.1
    done
    echo "the rollout of $1 did not succeed" >&2; return 1
}
deploy v1

# Times `mobius slo status --json` RUNS times; prints the median and the min–max in ms.
measure() {
    python3 - "$MOBIUS" "$RUNS" <<'PY'
import json, statistics, subprocess, sys, time
mobius, runs = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(runs):
    t = time.perf_counter()
    out = subprocess.run([mobius, "slo", "status", "--json"], capture_output=True, check=True).stdout
    times.append((time.perf_counter() - t) * 1000)
    assert all(s["unknown"] is None for s in json.loads(out)), out
print(f"{statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f})")
PY
}
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
direct="$(measure)"
# The same SLO through the slow path (a new release of the service: the latest definition wins).
sed -i "s|url: http://127.0.0.1:$PROM_PORT|url: http://127.0.0.1:$SLOW_PORT|" "$WORK/release/mobius.yaml"
deploy v2
slow="$(measure)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo
echo "| Prometheus | \`mobius slo status\` (one Prometheus SLO, $RUNS runs): median (min, max) |"
echo "|---|---|"
echo "| direct, loopback | $direct |"
echo "| every request held ${DELAY_MS} ms | $slow |"
