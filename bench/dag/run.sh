#!/usr/bin/env bash
# 200-job DAG: `mobius run --no-events --jobs 2` against `make -j2` on the same DAG.
# See bench/README.md ("Pipelines: 200-job DAG"). Knobs (environment):
#   BENCH_DAG_RUNS (5)     timed repetitions of each command (after one untimed warm-up)
#   BENCH_DAG_JOBS (2)     --jobs / -j
#   BENCH_DAG_LEVELS (10), BENCH_DAG_WIDTH (20), BENCH_DAG_FANIN (2)
#   MOBIUS_BIN             a mobius binary to use instead of building target/release/mobius
#   BENCH_DAG_DIR          where the repository is generated (default: a fresh mktemp -d)
#   BENCH_DAG_KEEP=1       keep that directory
#   BENCH_DAG_TMPFS        a tmpfs directory for a second mobius row with TMPDIR there
#                          (default /dev/shm when it is tmpfs; "" skips the row)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs="${BENCH_DAG_RUNS:-5}"
jobs="${BENCH_DAG_JOBS:-2}"

if [[ -z "${MOBIUS_BIN:-}" ]]; then
  (cd "$root" && cargo build --release -p mobius >&2)
  MOBIUS_BIN="$root/target/release/mobius"
fi
[[ -x "$MOBIUS_BIN" ]] || { echo "no mobius binary at $MOBIUS_BIN" >&2; exit 1; }
MOBIUS_BIN="$(cd "$(dirname "$MOBIUS_BIN")" && pwd)/$(basename "$MOBIUS_BIN")"
command -v make >/dev/null || { echo "make is required" >&2; exit 1; }

dir="${BENCH_DAG_DIR:-$(mktemp -d /tmp/mobius-dag.XXXXXX)}"
mkdir -p "$dir"
[[ "${BENCH_DAG_KEEP:-0}" == 1 ]] || trap 'rm -rf "$dir"' EXIT
repo="$dir/repo"
rm -rf "$repo"
mkdir -p "$repo"
python3 "$here/generate.py" "$repo" --levels "${BENCH_DAG_LEVELS:-10}" \
  --width "${BENCH_DAG_WIDTH:-20}" --fanin "${BENCH_DAG_FANIN:-2}" >&2
(cd "$repo" && git init -q && git add -A &&
  git -c user.name=bench -c user.email=bench@localhost commit -qm dag)
export MOBIUS_DATA_DIR="$dir/data"   # untouched with --no-events, but never the user's store
export NO_COLOR=1

mobius_cmd=("$MOBIUS_BIN" run --no-events --jobs "$jobs")
make_cmd=(make -s -j"$jobs" -f Makefile)
make_bash_cmd=(make -s -j"$jobs" -f Makefile.bash)
njobs=$(( ${BENCH_DAG_LEVELS:-10} * ${BENCH_DAG_WIDTH:-20} ))
# `mobius run` puts every job's workspace/home/temp under $TMPDIR (default /tmp); a second row
# runs it with TMPDIR on tmpfs, to separate the filesystem's cost from Mobius's own.
tmpfs="${BENCH_DAG_TMPFS-/dev/shm}"
if [[ -n "$tmpfs" ]] && ! { [[ -d "$tmpfs" ]] && [[ "$(stat -f -c %T "$tmpfs")" == tmpfs ]]; }; then
  tmpfs=""
fi

# Runs "$@" in the repository once, prints its wall time in seconds; fails if it fails.
timed() {
  local start end
  start=$(date +%s%N)
  (cd "$repo" && "$@" >"$dir/last.out" 2>&1) || {
    echo "failed: $*" >&2; tail -20 "$dir/last.out" >&2; exit 1; }
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
}

source "$here/../lib.sh"   # stats

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# Warm-up: page cache, binary, bash.
timed "${mobius_cmd[@]}" >/dev/null
grep -q "$njobs jobs: $njobs passed" "$dir/last.out" || {
  echo "mobius did not pass all $njobs jobs:" >&2; tail -5 "$dir/last.out" >&2; exit 1; }
timed "${make_cmd[@]}" >/dev/null
timed "${make_bash_cmd[@]}" >/dev/null

: >"$dir/mobius.t"; : >"$dir/mobius_tmpfs.t"; : >"$dir/make.t"; : >"$dir/make_bash.t"
[[ -n "$tmpfs" ]] && TMPDIR="$tmpfs" timed "${mobius_cmd[@]}" >/dev/null
for ((i = 1; i <= runs; i++)); do   # interleaved, so background noise hits all of them alike
  timed "${mobius_cmd[@]}" >>"$dir/mobius.t"
  [[ -n "$tmpfs" ]] && TMPDIR="$tmpfs" timed "${mobius_cmd[@]}" >>"$dir/mobius_tmpfs.t"
  timed "${make_cmd[@]}" >>"$dir/make.t"
  timed "${make_bash_cmd[@]}" >>"$dir/make_bash.t"
done

rss="n/a"
if [[ -x /usr/bin/time ]]; then
  (cd "$repo" && /usr/bin/time -v "${mobius_cmd[@]}" >/dev/null 2>"$dir/time-v.txt") || true
  kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$dir/time-v.txt")
  [[ -n "$kb" ]] && rss=$(awk -v k="$kb" 'BEGIN { printf "%.1f MB", k / 1024 }')
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "user %.2f s, sys %.2f s", u, s }' "$dir/time-v.txt")
  rss="$rss ($cpu, including the step shells)"
fi

read -r mob_med mob_min < <(stats <"$dir/mobius.t")
read -r mk_med mk_min < <(stats <"$dir/make.t")
read -r mkb_med mkb_min < <(stats <"$dir/make_bash.t")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r <= 1.2) ? "met" : "MISSED" }'; }
r1=$(ratio "$mob_med" "$mk_med"); r1min=$(ratio "$mob_min" "$mk_min")
r2=$(ratio "$mob_med" "$mkb_med"); r2min=$(ratio "$mob_min" "$mkb_min")
tmpfs_row=""; tmpfs_ratio=""
if [[ -n "$tmpfs" ]]; then
  read -r mt_med mt_min < <(stats <"$dir/mobius_tmpfs.t")
  tmpfs_row="| \`TMPDIR=$tmpfs mobius run --no-events --jobs $jobs\` (diagnostic) | $mt_med | $mt_min | $(paste -sd' ' "$dir/mobius_tmpfs.t") |"$'\n'
  tmpfs_ratio="- diagnostic, TMPDIR on tmpfs: mobius / make $(ratio "$mt_med" "$mk_med"), mobius / make with bash recipes $(ratio "$mt_med" "$mkb_med") (medians)"$'\n'
fi

cat <<OUT
## ${njobs}-job DAG: mobius run vs make

- $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average at end $(cut -d' ' -f1-3 /proc/loadavg)
- $("$MOBIUS_BIN" --version), $(make --version | head -1), $(bash --version | head -1 | sed 's/ (.*//')
- mobius's work dirs in \$TMPDIR (${TMPDIR:-/tmp}): $(stat -f -c %T "${TMPDIR:-/tmp}") filesystem
- DAG: ${BENCH_DAG_LEVELS:-10} levels x ${BENCH_DAG_WIDTH:-20} jobs, fan-in ${BENCH_DAG_FANIN:-2}; $runs timed runs each, interleaved, after one warm-up

| command | median s | min s | runs (s) |
|---|---|---|---|
| \`mobius run --no-events --jobs $jobs\` | $mob_med | $mob_min | $(paste -sd' ' "$dir/mobius.t") |
$tmpfs_row| \`make -j$jobs\` (recipes exec'd directly) | $mk_med | $mk_min | $(paste -sd' ' "$dir/make.t") |
| \`make -j$jobs\`, recipes via \`bash --noprofile --norc -eo pipefail -c\` | $mkb_med | $mkb_min | $(paste -sd' ' "$dir/make_bash.t") |

- mobius / make: **$r1** (median), $r1min (min) — target <= 1.2: $(verdict "$r1")
- mobius / make with bash recipes: **$r2** (median), $r2min (min) — target <= 1.2: $(verdict "$r2")
$tmpfs_ratio- mobius peak RSS (/usr/bin/time -v, one run): $rss
OUT
