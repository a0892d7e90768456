#!/usr/bin/env bash
# A job of three JavaScript actions from repositories against the same job written as three
# `run:` steps doing the same work (`node -e` with the same script), with `mobius run`.
# Rows: actions by tag, cached (each run still resolves the tag with `git ls-remote`); actions
# pinned by SHA, cached (no git at all); the first run, which fetches (empty cache); the run:
# steps. Actions are served from bare repositories on this machine (`--actions-url file://…`).
# Knobs (environment):
#   BENCH_ACTIONS_RUNS (9)   timed repetitions of each row (after one untimed warm-up)
#   MOBIUS_BIN               a mobius binary to use instead of building target/release/mobius
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs="${BENCH_ACTIONS_RUNS:-9}"
if [[ -z "${MOBIUS_BIN:-}" ]]; then
  (cd "$root" && cargo build --release -p mobius >&2)
  MOBIUS_BIN="$root/target/release/mobius"
fi
command -v node >/dev/null || { echo "node is required" >&2; exit 1; }

dir="$(mktemp -d /tmp/mobius-actions-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
forge="$dir/forge"
script='const fs=require("fs");fs.appendFileSync(process.env.GITHUB_OUTPUT,"out="+(process.env.INPUT_N||"x")+"\n");'
declare -A sha
for name in one two three; do
  work="$dir/src-$name"
  mkdir -p "$work"
  printf 'inputs:\n  n:\n    default: x\nruns:\n  using: node20\n  main: index.js\n' >"$work/action.yml"
  printf '%s\n' "$script" >"$work/index.js"
  (cd "$work" && git init -q && git add -A && git -c user.name=b -c user.email=b@localhost commit -qm v1 && git tag v1)
  git init -q --bare "$forge/bench/$name"
  (cd "$work" && git push -q "$forge/bench/$name" HEAD:refs/heads/main v1)
  sha[$name]="$(git -C "$work" rev-parse HEAD)"
done

repo="$dir/repo"
mkdir -p "$repo/.github/workflows"
{
  printf 'on: push\njobs:\n  tagged:\n    runs-on: x\n    steps:\n'
  for name in one two three; do printf '      - uses: bench/%s@v1\n        with: { n: %s }\n' "$name" "$name"; done
} >"$repo/.github/workflows/tagged.yml"
{
  printf 'on: push\njobs:\n  pinned:\n    runs-on: x\n    steps:\n'
  for name in one two three; do printf '      - uses: bench/%s@%s\n        with: { n: %s }\n' "$name" "${sha[$name]}" "$name"; done
} >"$repo/.github/workflows/pinned.yml"
{
  printf 'on: push\njobs:\n  steps:\n    runs-on: x\n    steps:\n'
  for name in one two three; do
    printf "      - run: node -e '%s'\n        env: { INPUT_N: %s }\n" "$script" "$name"
  done
} >"$repo/.github/workflows/steps.yml"
(cd "$repo" && git init -q && git add -A && git -c user.name=b -c user.email=b@localhost commit -qm w)
export MOBIUS_DATA_DIR="$dir/data" NO_COLOR=1 MOBIUS_ACTIONS_URL="file://$forge"

timed() {
  local start end
  start=$(date +%s%N)
  (cd "$repo" && "$MOBIUS_BIN" run --no-events "$@" >"$dir/last.out" 2>&1) || {
    echo "failed: $*" >&2; tail -20 "$dir/last.out" >&2; exit 1; }
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
}
source "$here/../lib.sh"   # stats

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: >"$dir/fetch.t"; : >"$dir/tagged.t"; : >"$dir/pinned.t"; : >"$dir/steps.t"
for ((i = 0; i <= runs; i++)); do
  rm -rf "$MOBIUS_DATA_DIR/actions"
  f=$(timed tagged.yml)
  grep -q "fetched bench/one" "$dir/last.out" || { echo "first run did not fetch" >&2; exit 1; }
  t=$(timed tagged.yml)
  grep -q "using cached bench/one" "$dir/last.out" || { echo "second run did not use the cache" >&2; exit 1; }
  p=$(timed pinned.yml)
  s=$(timed steps.yml)
  if ((i > 0)); then   # the first round warms the page cache, node and git
    echo "$f" >>"$dir/fetch.t"; echo "$t" >>"$dir/tagged.t"; echo "$p" >>"$dir/pinned.t"; echo "$s" >>"$dir/steps.t"
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

read -r fm fn < <(stats <"$dir/fetch.t")
read -r tm tn < <(stats <"$dir/tagged.t")
read -r pm pn < <(stats <"$dir/pinned.t")
read -r sm sn < <(stats <"$dir/steps.t")
printf '| job of 3 steps (`mobius run --no-events`, %s runs) | median | min |\n|---|---|---|\n' "$runs"
printf '| `run:` steps, `node -e` the same script | %.3f s | %.3f s |\n' "$sm" "$sn"
printf '| actions pinned by SHA, cached | %.3f s | %.3f s |\n' "$pm" "$pn"
printf '| actions by tag, cached (3 × `git ls-remote`) | %.3f s | %.3f s |\n' "$tm" "$tn"
printf '| actions by tag, first run (fetch 3 repositories) | %.3f s | %.3f s |\n' "$fm" "$fn"
awk -v s="$sm" -v p="$pm" -v t="$tm" -v f="$fm" 'BEGIN {
  printf "\npinned/steps %.2fx, tagged/steps %.2fx, first run/steps %.2fx (target <= 1.5x)\n", p/s, t/s, f/s }'
