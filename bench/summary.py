#!/usr/bin/env python3
"""Prints the Markdown summary of one bench/run.sh run (reads its environment and $OUT files)."""

import json
import os

E = os.environ
OUT = E["OUT"]


def load(name):
    try:
        with open(os.path.join(OUT, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def f(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def mark(ok):
    return "met" if ok else "**MISSED**"


records = int(E["RECORDS"])
import_s = float(E["IMPORT_S"])
rate = records / import_s if import_s > 0 else None
import_rss_mb = int(E["IMPORT_RSS_KB"]) / 1024 if E.get("IMPORT_RSS_KB", "").isdigit() else None
one, allsvc = load("http-one.json"), load("http-all.json")
fk_load, fk = load("fk-load.json"), load("fk-query.json")
kb = lambda k: int(E[k]) / 1024 if E.get(k, "").isdigit() else None  # noqa: E731
rss_start, rss_after, rss_peak = kb("RSS_IDLE_START"), kb("RSS_AFTER_ONE"), kb("RSS_PEAK")
rss_idle_after = kb("RSS_IDLE_AFTER")

lines = []
w = lines.append
w(f"## Mobius benchmark — {E['DATE']}")
w("")
w(f"- machine: {E['NPROC']} CPUs ({E['CPU']}), {E['MEM']} RAM, Linux {E['KERNEL']}")
w(f"- load average (1/5/15 min) at start {E.get('LOAD_START', '?')}, at end {E.get('LOAD_END', '?')} "
  f"(anything else running on the machine shows up in the figures)")
w(f"- build: `cargo build --release -p mobius` at {E['COMMIT']} ({E['DIRTY']})")
w(f"- data: seed {E['SEED']}, 50 services, 2 years ending 2026-11-01T00:00:00Z: {records:,} records, "
  f"{int(E['DATA_BYTES']) / 1e6:,.0f} MB NDJSON{' (--small)' if E['SMALL'] == '1' else ''}")
w(f"- DORA window: `{E['SERVICE']}` / production, {E['FROM']} .. {E['TO']}")
w("")
w("| measure | result | target | |")
w("|---|---|---|---|")
w(f"| bulk import (`mobius events import`, embedded store) | **{f(rate, 0)} events/s** ({records:,} in {import_s:.2f} s; "
  f"user {E['IMPORT_USER']} s, sys {E['IMPORT_SYS']} s) | ≥ 100,000 events/s | {mark(rate is not None and rate >= 100_000)} |")
w(f"| import peak RSS | {f(import_rss_mb)} MB | — | |")
w(f"| import outcome | exit {E['IMPORT_RC']}: {E['STORED']} stored, {E['DUPS']} duplicates, {E['REJECTED']} rejected; "
  f"store {int(E['DB_BYTES']) / 1e6:,.0f} MB on disk | 0 rejected | {mark(E['REJECTED'] == '0' and E['IMPORT_RC'] == '0')} |")
if one:
    w(f"| `GET /api/v1/dora` one service, p50 / p99 (n={one['n']}) | {f(one['p50_ms'], 2)} / **{f(one['p99_ms'], 2)} ms** "
      f"| p99 ≤ 50 ms | {mark(one['p99_ms'] <= 50 and one['statuses'].get('200') == one['n'])} |")
if allsvc:
    w(f"| `GET /api/v1/dora` all services, p50 / p99 (n={allsvc['n']}, {allsvc.get('body_items')} services) "
      f"| {f(allsvc['p50_ms'], 2)} / {f(allsvc['p99_ms'], 2)} ms | — | |")
w(f"| CLI `mobius dora --service {E['SERVICE']} --json` (process start to exit), p50 / p99 (n={E['CLI_N']}, {E['CLI_TOOL']}) "
  f"| {E['CLI_P50']} / {E['CLI_P99']} ms | — | |")
w(f"| CLI `mobius dora --json` all services, p50 / p99 (n={E['CLI_ALL_N']}) | {E['CLI_ALL_P50']} / {E['CLI_ALL_P99']} ms | — | |")
w(f"| server RSS idle after start-up | **{f(rss_start)} MB** | ≤ 30 MB | {mark(rss_start is not None and rss_start <= 30)} |")
w(f"| server RSS idle after the queries | **{f(rss_idle_after)} MB** (after the one-service queries {f(rss_after)} MB; "
  f"peak VmHWM {f(rss_peak)} MB) | ≤ 30 MB | {mark(rss_idle_after is not None and rss_idle_after <= 30)} |")
ingest = load("http-ingest.json")
if ingest:
    w(f"| `POST /api/v1/events` ({ingest['records']:,} records, NDJSON batches of {ingest['batch']}, fresh store) "
      f"| {ingest['records_per_s']:,} records/s ({ingest['stored']:,} stored, {ingest['rejected']} rejected, {ingest['seconds']:.1f} s) | — | |")
    w(f"| server RSS idle after that ingest | **{f(kb('RSS_INGEST_AFTER'))} MB** (at start-up {f(kb('RSS_INGEST_START'))} MB; "
      f"peak VmHWM {f(kb('RSS_INGEST_PEAK'))} MB) | ≤ 30 MB | {mark((kb('RSS_INGEST_AFTER') or 1e9) <= 30)} |")
reimport = load("reimport.json")
if reimport:
    same = E.get("REIMPORT_SAME", "?")
    w(f"| re-import of the same file (dedup by source+id) | {reimport.get('stored')} stored, {reimport.get('duplicates')} duplicates, "
      f"{reimport.get('rejected')} rejected in {float(E['REIMPORT_S']):.2f} s ({records / float(E['REIMPORT_S']):,.0f} records/s); "
      f"DORA output unchanged: {same} | 0 stored | {mark(reimport.get('stored') == 0 and same == 'yes')} |")
w(f"| numbers check (`mobius dora` vs generator's expected figures, all services) | {E['CHECK']} | 0 mismatches | "
  f"{mark(E['CHECK'].startswith('mismatches 0 '))} |")
w("")
if fk and one:
    ratio = one["p50_ms"] / fk["total_ms"]["p50"] if fk["total_ms"]["p50"] else None
    w("### Peer: Four Keys' views over the raw event table (SQLite model)")
    w("")
    q = fk["queries_ms"]
    load_txt = (f"loaded {fk_load['rows']:,} rows in {fk_load['seconds']:.1f} s, {fk_load['bytes'] / 1e6:,.0f} MB"
                if fk_load and "rows" in fk_load else "events_raw reused from an earlier run")
    w(f"- {load_txt}; {fk['runs']} runs of the four queries for `{fk['service']}`")
    w(f"- per run p50 / p99: {f(fk['total_ms']['p50'], 0)} / {f(fk['total_ms']['p99'], 0)} ms "
      f"(deployments {f(q['deployments']['p50'], 0)}, changes {f(q['changes']['p50'], 0)}, "
      f"lead time {f(q['lead_time']['p50'], 0)}, deployment frequency {f(q['deployment_frequency']['p50'], 0)} ms p50)")
    r = fk["results"]
    w(f"- its answers: {r['deployments']} deployments, lead time median {f(r['lead_time_median_minutes'], 0)} min over "
      f"{r['lead_time_pairs']} (deployment, change) pairs, {f(r['deploys_per_day'], 3)} deployments/day")
    w(f"- **Mobius p50 ÷ view-over-raw p50 = {f(one['p50_ms'], 2)} ms ÷ {f(fk['total_ms']['p50'], 0)} ms = "
      f"{ratio:.2e}** (the view-over-raw model takes {1 / ratio:,.0f}× as long; Mobius's request also computes change "
      f"failure rate and recovery time, which the model does not)")
    w("")
print("\n".join(lines))
