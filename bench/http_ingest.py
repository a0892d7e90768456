#!/usr/bin/env python3
"""Posts the first N records of an NDJSON file to `POST /api/v1/events` (loopback only), in
NDJSON batches on one keep-alive connection, and prints one JSON object: records sent,
stored / duplicates / rejected as the server reported them, seconds, records per second.

    http_ingest.py --port P --token T --file history.ndjson --records 100000 [--batch 5000]
"""

import argparse
import http.client
import itertools
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()

    with open(args.file, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in itertools.islice(f, args.records)]
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=300)
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/x-ndjson"}
    totals = {"stored": 0, "duplicates": 0, "rejected": 0}
    errors = []
    t0 = time.perf_counter()
    for i in range(0, len(lines), args.batch):
        body = "\n".join(lines[i:i + args.batch]).encode()
        try:
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"batch at record {i}: {type(e).__name__}: {e}")
            break
        try:
            report = json.loads(data)
        except ValueError:
            report = {}
        for k in totals:
            totals[k] += int(report.get(k, 0) or 0)
        if resp.status not in (200, 207) and len(errors) < 3:
            errors.append(f"HTTP {resp.status}: {data[:300].decode('utf-8', 'replace')}")
    elapsed = time.perf_counter() - t0
    conn.close()
    print(json.dumps({"records": len(lines), **totals, "seconds": round(elapsed, 3),
                      "records_per_s": round(len(lines) / elapsed) if elapsed else None,
                      "batch": args.batch, "errors": errors}))
    return 0 if not errors and totals["rejected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
