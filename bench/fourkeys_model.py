#!/usr/bin/env python3
"""A model of Google Four Keys' query path on SQLite, for the peer comparison.

Four Keys keeps every webhook body in one table, `four_keys.events_raw(event_type, id,
metadata, time_created, signature, msg_id, source)`, and defines `changes`, `deployments` and
`incidents` as BigQuery *views* over it (terraform/modules/fourkeys-bigquery/main.tf); the
dashboard's DORA queries read those views, so every query re-parses the raw JSON of the whole
table. This script reproduces that shape with Python's sqlite3 and `json_extract` /
`json_each`, on the same records the Mobius benchmark imports.

    fourkeys_model.py load  FILE.ndjson DB         # build events_raw (timed)
    fourkeys_model.py query DB --service svc-07 --environment production \
        --from 2026-10-01 --to 2026-11-01 --runs 10 [--json]

What the model includes and leaves out is written down in bench/README.md. In short:
* `events_raw` rows are derived from each record the way Four Keys' parsers do (GitHub
  `id`/`time_created` rules; a CloudEvent is stored like Four Keys' Tekton parser stores one:
  event_type = the CloudEvent type, id = its id, time = its time, metadata = whole body).
* `deployments`: Four Keys' GitHub branch (deployment_status success, main_commit =
  deployment.sha) plus a CDEvents `service.deployed` branch added in the style of its
  Tekton/ArgoCD branches (main_commit through the `artifact.packaged` event of the deployed
  artifact). Changes of a deployment = the commits of the push whose id is main_commit
  (Four Keys' rule). Service and environment columns are added (Four Keys has neither).
* `changes`: every commit of every push, commit timestamp truncated to the second.
* Queries: deployments in the window, changes in the window, lead time (median of
  deploy - commit minutes, values <= 0 dropped, as the dashboard does) and deployment
  frequency (deployments per day, and the median of deploy-days per ISO week).
* No index on the JSON, as BigQuery has none; SQLite may build automatic indexes for joins
  inside a query, and that time is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import time

SCHEMA = """
CREATE TABLE events_raw (
  event_type   TEXT,
  id           TEXT,
  metadata     TEXT,   -- the whole body, as JSON text
  time_created TEXT,   -- 'YYYY-MM-DD HH:MM:SS[.SSS]' UTC
  source       TEXT
);
"""

VIEWS = """
CREATE VIEW deploys AS
  -- Added for CDEvents, in the style of Four Keys' Tekton / ArgoCD branches: the deployed
  -- artifact's commit comes from the artifact.packaged event that names it. Both sides are
  -- extracted first (MATERIALIZED) so that SQLite hash-joins them through an automatic index,
  -- as BigQuery would, instead of a nested loop of json_extract calls.
  WITH cd_deployed AS MATERIALIZED (
    SELECT source, id AS deploy_id, time_created,
           json_extract(metadata, '$.subject.id') AS service,
           json_extract(metadata, '$.subject.content.environment.id') AS environment,
           json_extract(metadata, '$.subject.content.artifactId') AS artifact
    FROM events_raw
    WHERE event_type = 'dev.cdevents.service.deployed.0.3.0'
  ),
  cd_packaged AS MATERIALIZED (
    SELECT json_extract(metadata, '$.subject.id') AS purl,
           json_extract(metadata, '$.subject.content.change.id') AS sha
    FROM events_raw
    WHERE event_type = 'dev.cdevents.artifact.packaged.0.3.0'
  )
  -- Four Keys' GitHub branch.
  SELECT source,
         id AS deploy_id,
         time_created,
         json_extract(metadata, '$.deployment.sha') AS main_commit,
         json_extract(metadata, '$.repository.name') AS service,
         json_extract(metadata, '$.deployment_status.environment') AS environment
  FROM events_raw
  WHERE source LIKE 'github%'
    AND event_type = 'deployment_status'
    AND json_extract(metadata, '$.deployment_status.state') = 'success'
  UNION ALL
  SELECT d.source, d.deploy_id, d.time_created, a.sha, d.service, d.environment
  FROM cd_deployed d JOIN cd_packaged a ON a.purl = d.artifact;

-- Four Keys' deployments view: the changes of a deployment are the commits of the raw event
-- whose id is the deployed commit (the push that brought it).
CREATE VIEW deployments AS
  SELECT dp.source, dp.deploy_id, dp.time_created, dp.main_commit, dp.service, dp.environment,
         json_group_array(DISTINCT json_extract(c.value, '$.id')) AS changes
  FROM deploys dp
  JOIN events_raw cr ON cr.id = dp.main_commit,
       json_each(cr.metadata, '$.commits') c
  GROUP BY 1, 2, 3, 4, 5, 6;

-- Four Keys' changes view: every commit of every push.
CREATE VIEW changes AS
  SELECT e.source, e.event_type,
         json_extract(c.value, '$.id') AS change_id,
         strftime('%Y-%m-%d %H:%M:%S', json_extract(c.value, '$.timestamp')) AS time_created,
         json_extract(e.metadata, '$.repository.full_name') AS repository
  FROM events_raw e, json_each(e.metadata, '$.commits') c
  WHERE e.event_type = 'push'
  GROUP BY 1, 2, 3, 4, 5;
"""

QUERIES = {
    "deployments": """
        SELECT count(DISTINCT deploy_id)
        FROM deployments
        WHERE service = :service AND environment = :environment
          AND time_created >= :lo AND time_created < :hi
    """,
    "changes": """
        SELECT count(*)
        FROM changes
        WHERE repository = :repository AND time_created >= :lo AND time_created < :hi
    """,
    "lead_time": """
        WITH d AS (
          SELECT * FROM deployments
          WHERE service = :service AND environment = :environment
            AND time_created >= :lo AND time_created < :hi
        ),
        lt AS (
          SELECT (CAST(strftime('%s', d.time_created) AS INTEGER)
                  - CAST(strftime('%s', c.time_created) AS INTEGER)) / 60 AS minutes
          FROM d, json_each(d.changes) ch
          LEFT JOIN changes c ON ch.value = c.change_id
        ),
        pos AS (
          SELECT minutes, row_number() OVER (ORDER BY minutes) AS rn, count(*) OVER () AS n
          FROM lt WHERE minutes > 0
        )
        SELECT avg(minutes), max(n) FROM pos WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
    """,
    "deployment_frequency": """
        WITH RECURSIVE days(day) AS (
          SELECT date(:lo) UNION ALL SELECT date(day, '+1 day') FROM days WHERE day < date(:hi, '-1 day')
        ),
        daily AS (
          SELECT date(time_created) AS day, count(DISTINCT deploy_id) AS deploys
          FROM deployments
          WHERE service = :service AND environment = :environment
            AND time_created >= :lo AND time_created < :hi
          GROUP BY 1
        ),
        weeks AS (
          SELECT strftime('%Y-%W', days.day) AS week, sum(daily.deploys IS NOT NULL) AS days_deployed,
                 sum(coalesce(daily.deploys, 0)) AS deploys
          FROM days LEFT JOIN daily ON daily.day = days.day
          GROUP BY 1
        ),
        pos AS (
          SELECT days_deployed, deploys, row_number() OVER (ORDER BY days_deployed) AS rn, count(*) OVER () AS n
          FROM weeks
        )
        SELECT (SELECT sum(deploys) FROM weeks) * 1.0 / (SELECT count(*) FROM days),
               avg(days_deployed)
        FROM pos WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
    """,
}


def sql_time(rfc3339: str) -> str:
    """'2026-10-01T12:00:00.123Z' -> '2026-10-01 12:00:00.123' (UTC, sorts as text)."""
    s = rfc3339.replace("T", " ")
    if s.endswith("Z"):
        s = s[:-1]
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
        if s[-6:] != "+00:00":
            raise ValueError(f"non-UTC timestamp {rfc3339}")
        s = s[:-6]
    return s


def row_of(line: str):
    """One events_raw row from one import record, the way Four Keys' parsers build it."""
    rec = json.loads(line)
    if "webhook" in rec:
        event, payload = rec["event"], rec["payload"]
        repo = payload.get("repository") or {}
        if event == "push":
            ident, at = payload["head_commit"]["id"], payload["head_commit"]["timestamp"]
        elif event == "pull_request":
            ident, at = f"{repo.get('name')}/{payload['pull_request']['number']}", payload["pull_request"]["updated_at"]
        elif event == "issues":
            ident, at = f"{repo.get('name')}/{payload['issue']['number']}", payload["issue"]["updated_at"]
        elif event == "deployment_status":
            ident, at = str(payload["deployment_status"]["id"]), payload["deployment_status"]["updated_at"]
        else:
            # Four Keys' GitHub parser drops workflow_run; kept here so the table holds the
            # same records Mobius holds (they only add rows the views skip).
            obj = payload.get(event) or {}
            ident, at = str(obj.get("id")), obj.get("updated_at") or obj.get("created_at")
        return (event, ident, json.dumps(payload, separators=(",", ":")), sql_time(at), "github")
    ctx = rec["context"]
    return (ctx["type"], ctx["id"], line, sql_time(ctx["timestamp"]), "cdevents")


def load(args) -> int:
    if os.path.exists(args.db):
        os.remove(args.db)
    t0 = time.perf_counter()
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(SCHEMA)
    n = 0
    with open(args.file, encoding="utf-8") as f:
        batch = []
        for line in f:
            line = line.strip()
            if not line:
                continue
            batch.append(row_of(line))
            if len(batch) >= 10000:
                db.executemany("INSERT INTO events_raw VALUES (?, ?, ?, ?, ?)", batch)
                n += len(batch)
                batch = []
        if batch:
            db.executemany("INSERT INTO events_raw VALUES (?, ?, ?, ?, ?)", batch)
            n += len(batch)
    db.executescript(VIEWS)
    db.commit()
    db.close()
    elapsed = time.perf_counter() - t0
    out = {"rows": n, "seconds": round(elapsed, 3), "bytes": os.path.getsize(args.db)}
    print(json.dumps(out))
    return 0


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def query(args) -> int:
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    # Same page cache as SQLite's default; no other tuning.
    params = {
        "service": args.service,
        "environment": args.environment,
        "repository": f"{args.org}/{args.service}",
        "lo": sql_time(args.lo + "T00:00:00Z" if len(args.lo) == 10 else args.lo),
        "hi": sql_time(args.hi + "T00:00:00Z" if len(args.hi) == 10 else args.hi),
    }
    timings = {name: [] for name in QUERIES}
    totals = []
    results = {}
    deadline = time.perf_counter() + args.budget
    runs = 0
    for _ in range(args.runs):
        total = 0.0
        for name, sql in QUERIES.items():
            t0 = time.perf_counter()
            results[name] = db.execute(sql, params).fetchall()
            dt = (time.perf_counter() - t0) * 1000
            timings[name].append(dt)
            total += dt
        totals.append(total)
        runs += 1
        if time.perf_counter() > deadline:
            break
    summary = {
        "runs": runs,
        "service": args.service,
        "total_ms": {"p50": statistics.median(totals), "p99": pct(totals, 99), "min": min(totals), "max": max(totals)},
        "queries_ms": {k: {"p50": statistics.median(v), "p99": pct(v, 99)} for k, v in timings.items()},
        "results": {
            "deployments": results["deployments"][0][0],
            "changes_committed_in_window": results["changes"][0][0],
            "lead_time_median_minutes": results["lead_time"][0][0],
            "lead_time_pairs": results["lead_time"][0][1],
            "deploys_per_day": results["deployment_frequency"][0][0],
            "deploy_days_per_week_median": results["deployment_frequency"][0][1],
        },
    }
    print(json.dumps(summary))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("file")
    lp.add_argument("db")
    qp = sub.add_parser("query")
    qp.add_argument("db")
    qp.add_argument("--service", default="svc-07")
    qp.add_argument("--environment", default="production")
    qp.add_argument("--org", default="org")
    qp.add_argument("--from", dest="lo", default="2026-10-01")
    qp.add_argument("--to", dest="hi", default="2026-11-01")
    qp.add_argument("--runs", type=int, default=10)
    qp.add_argument("--budget", type=float, default=600, help="stop repeating after this many seconds")
    args = ap.parse_args()
    return load(args) if args.cmd == "load" else query(args)


if __name__ == "__main__":
    sys.exit(main())
