#!/usr/bin/env bash
# Secret scanning throughput, whole program: mobius-scan's example binary against trufflehog3
# (PyPI) on the same generated tree, then mobius-scan over this repository's whole git history.
# See bench/README.md and the "secret scanning" section of bench/RESULTS.md.
#
# Knobs (environment): BENCH_SCAN_DIR (work directory; default /tmp/mobius-scan-bench),
# BENCH_SCAN_MB (size of the generated tree; default 200), BENCH_SCAN_REPO (the repository whose
# history is scanned; default this checkout), CARGO_TARGET_DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
work="${BENCH_SCAN_DIR:-/tmp/mobius-scan-bench}"
megabytes="${BENCH_SCAN_MB:-200}"
history_repo="${BENCH_SCAN_REPO:-$repo_root}"
tree="$work/tree"
venv="$here/.venv"

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== uptime: $(uptime)"

# The peer, in a venv beside this script (pinned: the figures are for this version).
if ! [ -x "$venv/bin/trufflehog3" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check trufflehog3==3.0.10
fi
echo "== $("$venv/bin/trufflehog3" --version 2>&1 | tail -1), $(rustc --version)"

# Build first, so that the build's load is over before anything is timed.
(cd "$repo_root" && cargo build --release --locked -p mobius-scan --example scan >&2)
scan="${CARGO_TARGET_DIR:-$repo_root/target}/release/examples/scan"

# The input, generated once (deterministic: same size, same bytes).
if ! [ -f "$work/PLANTED.tsv" ] || [ "$(cat "$work/SIZE" 2>/dev/null)" != "$megabytes" ]; then
  rm -rf "$tree" && mkdir -p "$work"
  python3 "$here/generate.py" "$tree" "$megabytes"
  echo "$megabytes" >"$work/SIZE"
fi
bytes=$(du -sb "$tree" | cut -f1)
planted=$(wc -l <"$work/PLANTED.tsv")
echo "== input: $tree, $((bytes / 1000000)) MB, $planted planted secrets"
# Warm the page cache so that both tools read from memory.
find "$tree" -type f -exec cat {} + >/dev/null

now() { date +%s.%N; }

start=$(now)
"$scan" --json "$tree" >"$work/mobius.json" 2>"$work/mobius.log"
mobius_s=$(awk "BEGIN { print $(now) - $start }")
echo "== mobius-scan: $(cat "$work/mobius.log")"

start=$(now)
"$venv/bin/trufflehog3" --no-history -z -f JSON -o "$work/trufflehog3.json" "$tree" 2>"$work/trufflehog3.log"
peer_s=$(awk "BEGIN { print $(now) - $start }")

python3 - "$bytes" "$mobius_s" "$peer_s" "$work" <<'PY'
import json, sys
size, ours, peer, work = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
planted = [line.rstrip("\n").split("\t") for line in open(f"{work}/PLANTED.tsv")]
mobius = json.load(open(f"{work}/mobius.json"))
peer_findings = json.load(open(f"{work}/trufflehog3.json"))
def found(findings, key):
    return sum(any(secret in str(f.get(key, "")) for f in findings) for _, _, secret in planted)
def found_anywhere(findings):
    # trufflehog3 reports the high-entropy part of a token and the line as context.
    return sum(any(secret in json.dumps(f) for f in findings) for _, _, secret in planted)
mb = size / 1e6
print(f"{'':14} {'wall s':>8} {'MB/s':>8} {'findings':>9} {'planted found':>14}")
print(f"{'mobius-scan':14} {ours:8.2f} {mb / ours:8.1f} {len(mobius):9d} {found(mobius, 'Secret'):>8}/{len(planted)}")
print(f"{'trufflehog3':14} {peer:8.2f} {mb / peer:8.1f} {len(peer_findings):9d} {found_anywhere(peer_findings):>8}/{len(planted)}")
print(f"ratio (trufflehog3 wall / mobius-scan wall): {peer / ours:.1f}x  (target >= 10x)")
PY

echo "== git history: $history_repo ($(git -C "$history_repo" rev-list --all | wc -l) commits)"
start=$(now)
"$scan" --git "$history_repo" 2>&1 >/dev/null | sed 's/^/   /'
echo "   wall $(awk "BEGIN { print $(now) - $start }") s"
echo "== uptime: $(uptime)"
