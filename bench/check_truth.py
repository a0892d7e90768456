#!/usr/bin/env python3
"""Compares `mobius dora --json` (all services) with the generator's --truth file.

Usage: check_truth.py TRUTH.json DORA.json
Prints one line per service that differs and a final `mismatches N of M` line; exit 1 when
any service differs. Times are compared to the millisecond.
"""

import json
import sys


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 0.0015 * max(1.0, 1e-9 * abs(b))


def main() -> int:
    truth = json.load(open(sys.argv[1]))
    got = json.load(open(sys.argv[2]))
    if isinstance(got, dict):
        got = [got]
    by = {x["service"]: x for x in got}
    bad = 0
    for s in truth["services"]:
        x = by.get(s["service"])
        exp = (s["deployments"], s["failed_attempts"], s["lead_time_changes"], s["lead_time_median_seconds"],
               s["cfr_failed"], s["incidents_resolved"], s["recovery_median_seconds"])
        if x is None:
            if any(exp[i] for i in (0, 1, 5)):
                print(f"{s['service']}: missing from mobius output; expected {exp}")
                bad += 1
            continue
        df, lt, cfr, rt = x["deployment_frequency"], x["lead_time"], x["change_failure_rate"], x["recovery_time"]
        g = (df["deployments"], df["failed_attempts"], lt["changes"], lt["median_seconds"],
             cfr["failed"], rt["incidents"], rt["median_seconds"])
        same = all(close(a, b) if isinstance(b, float) or isinstance(a, float) else a == b for a, b in zip(g, exp))
        if not same:
            print(f"{s['service']}: (deployments, failed_attempts, changes, lead_median_s, cfr_failed, incidents, mttr_median_s)\n"
                  f"    mobius   {g}\n    expected {exp}")
            bad += 1
    print(f"mismatches {bad} of {len(truth['services'])}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
