#!/usr/bin/env python3
"""Diagnostic: how long SQLite, configured as Mobius configures it, takes to append the raw
events alone — no validation, no facts.

    store_probe.py FILE.ndjson [--batch 5000] [--synchronous FULL] [--cache-kib 65536]

Builds, before the clock starts, one `events` row per record the way Mobius keys it (CDEvents:
context source and id; GitHub deliveries: `github:<repo>` and a content-derived id) with the
raw text Mobius keeps, then times only the INSERTs and COMMITs into a fresh database with
Mobius's `events` table (UNIQUE (source, id)), WAL, 8 KiB pages, the given page cache and
`synchronous`. Compared with the real import's wall time, it splits the import into "storing
the log" and "everything else" (parsing, validation, facts). Prints one JSON object.
"""

import argparse
import json
import os
import sqlite3
import tempfile
import time

SCHEMA = """
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    source   TEXT NOT NULL,
    id       TEXT NOT NULL,
    type     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    ts       INTEGER NOT NULL,
    received INTEGER NOT NULL,
    origin   TEXT NOT NULL,
    raw      TEXT NOT NULL,
    UNIQUE (source, id)
);
"""


def row(line: str, received: int):
    rec = json.loads(line)
    if "webhook" in rec:
        event, p = rec["event"], rec["payload"]
        repo = p["repository"]["full_name"]
        if event == "push":
            ident = f"push:{p['ref']}:{p['after']}"
        elif event == "pull_request":
            ident = f"pull_request:{p['pull_request']['id']}:{p['action']}:{p['pull_request']['updated_at']}"
        elif event == "deployment_status":
            ident = f"deployment_status:{p['deployment_status']['id']}"
        elif event == "workflow_run":
            ident = f"workflow_run:{p['workflow_run']['id']}:1:{p['action']}"
        else:
            ident = f"{event}:{p[event.rstrip('s')]['id']}:{p['action']}:{p[event.rstrip('s')]['updated_at']}"
        raw = json.dumps(p, separators=(",", ":"))
        return (f"github:{repo}", ident, f"dev.cdeventsx.github-{event}.received.0.1.0", repo, received, received, "github", raw)
    ctx = rec["context"]
    return (ctx["source"], ctx["id"], ctx["type"], rec["subject"]["id"], received, received, "api", line)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--synchronous", default="FULL")
    ap.add_argument("--cache-kib", type=int, default=64 * 1024)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()

    now = int(time.time() * 1e6)
    with open(args.file, encoding="utf-8") as f:
        rows = [row(line.rstrip("\n"), now) for line in f if line.strip()]

    d = tempfile.mkdtemp(prefix="store-probe-", dir=args.dir)
    path = os.path.join(d, "probe.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA synchronous={args.synchronous}")
    db.execute(f"PRAGMA cache_size=-{args.cache_kib}")
    db.execute("PRAGMA page_size=8192")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    sql = "INSERT INTO events (source, id, type, subject, ts, received, origin, raw) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (source, id) DO NOTHING"
    t0 = time.perf_counter()
    for i in range(0, len(rows), args.batch):
        db.execute("BEGIN")
        db.executemany(sql, rows[i:i + args.batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
    for n in os.listdir(d):
        os.remove(os.path.join(d, n))
    os.rmdir(d)
    print(json.dumps({"rows": len(rows), "seconds": round(elapsed, 3), "rows_per_s": round(len(rows) / elapsed),
                      "bytes": size, "batch": args.batch, "synchronous": args.synchronous, "cache_kib": args.cache_kib}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
