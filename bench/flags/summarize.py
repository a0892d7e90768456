#!/usr/bin/env python3
"""Turns the side_by_side divan output (stdin) into Markdown: ns/eval and evals/s per engine
and entry point, and mobius's speed relative to yggdrasil (yggdrasil ns / mobius ns, so > 1.0
means mobius is faster). Each divan iteration evaluates one flag for POOL contexts (ALL_POOL
for the all-flags group), as benches/side_by_side.rs sets them."""

import re
import sys

POOL = 256
ALL_POOL = 16
UNIT = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
TIME = re.compile(r"([0-9.]+) (ns|µs|us|ms|s)\b")

PAIRS = {
    "p1_static": "1. static flag",
    "p2_targeting": "2. targeting, 3 conditions (≈ half match)",
    "p2_targeting_all_match": "2. targeting, 3 conditions (all match)",
    "p3_split": "3. three-way split",
    "p4_all_flags": "all 75 flags, one context",
}
# (answer, mobius entry point, yggdrasil entry points: the first is the faster, lower-level one)
COMPARISONS = [
    ("variant", "mobius_evaluate", ["yggdrasil_check_variant", "yggdrasil_get_variant"]),
    ("boolean", "mobius_boolean", ["yggdrasil_check_enabled", "yggdrasil_is_enabled"]),
    ("all flags", "mobius_evaluate_all", ["yggdrasil_resolve_all"]),
]


def parse(text):
    medians, group = {}, None
    for line in text.splitlines():
        m = re.match(r"^[│ ]*[├╰]─ (\S+)(.*)$", line)
        if not m:
            continue
        name, rest = m.groups()
        times = TIME.findall(rest)
        if not times:
            group = name
            continue
        value, unit = times[2]  # fastest, slowest, median, mean
        pool = ALL_POOL if group == "p4_all_flags" else POOL
        medians[(group, name)] = float(value) * UNIT[unit] / pool
    return medians


def per_second(ns):
    rate = 1e9 / ns
    return f"{rate / 1e6:.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:.1f} k/s"


def main():
    text = sys.stdin.read()
    medians = parse(text)
    if not medians:
        sys.exit("no divan results in the input")
    print("| case | answer | mobius: ns/eval | evals/s/core | yggdrasil: ns/eval | evals/s/core | mobius ÷ yggdrasil |")
    print("|---|---|---|---|---|---|---|")
    for group, label in PAIRS.items():
        for answer, ours, theirs in COMPARISONS:
            if (group, ours) not in medians:
                continue
            m = medians[(group, ours)]
            for entry in theirs:
                if (group, entry) not in medians:
                    continue
                y = medians[(group, entry)]
                unit = "µs/set" if group == "p4_all_flags" else ""
                fmt = (lambda ns: f"{ns / 1e3:.2f} µs") if unit else (lambda ns: f"{ns:.1f} ns")
                print(
                    f"| {label} | {answer} | `{ours.removeprefix('mobius_')}` {fmt(m)} | {per_second(m)} "
                    f"| `{entry.removeprefix('yggdrasil_')}` {fmt(y)} | {per_second(y)} | **{y / m:.2f}×** |"
                )


if __name__ == "__main__":
    main()
