#!/usr/bin/env python3
"""Latency of one GET endpoint over a single keep-alive HTTP/1.1 connection (loopback only).

    http_bench.py --port P --token T --path '/api/v1/dora?...' --n 200 [--warmup 5]

Requests are sequential (one in flight), so each figure is the server's latency for one
request plus loopback and client overhead. Prints one JSON object: n, p50/p90/p99/mean/min/
max in milliseconds, status counts, and the size of the last body. Any non-200 answer is
counted and its first body kept in `first_error`.
"""

import argparse
import http.client
import json
import statistics
import sys
import time


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        ap.error("loopback only")

    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    headers = {"Authorization": f"Bearer {args.token}", "Accept": "application/json"}
    statuses: dict[int, int] = {}
    first_error = None
    times = []
    body = b""
    for i in range(args.warmup + args.n):
        t0 = time.perf_counter()
        conn.request("GET", args.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        dt = (time.perf_counter() - t0) * 1000
        if resp.status != 200 and first_error is None:
            first_error = body[:500].decode("utf-8", "replace")
        if i >= args.warmup:
            times.append(dt)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.getheader("connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    conn.close()
    out = {
        "n": len(times),
        "p50_ms": statistics.median(times),
        "p90_ms": pct(times, 90),
        "p99_ms": pct(times, 99),
        "mean_ms": statistics.fmean(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "statuses": {str(k): v for k, v in statuses.items()},
        "body_bytes": len(body),
        "first_error": first_error,
    }
    try:
        parsed = json.loads(body)
        out["body_items"] = len(parsed) if isinstance(parsed, list) else 1
    except ValueError:
        out["body_items"] = None
    print(json.dumps(out))
    return 0 if statuses.get(200, 0) == len(times) else 1


if __name__ == "__main__":
    sys.exit(main())
