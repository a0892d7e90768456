#!/usr/bin/env bash
# Push webhook → first step started, for a remote with 10,000 commits, and the server's mirror
# against a fresh `git clone` (see webhook.py), with the remote served over git:// and over smart
# HTTP.
#
#   bench/server/webhook.sh
#
# Knobs: BENCH_HISTORY (10000), BENCH_PUSHES (50), BENCH_WEBHOOK_DIR (default: mktemp -d),
# MOBIUS (a binary; default: build target/release/mobius).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ -z "${MOBIUS:-}" ]]; then
  (cd "$root" && cargo build --release -q -p mobius)
  MOBIUS="$root/target/release/mobius"
fi
work="${BENCH_WEBHOOK_DIR:-$(mktemp -d)}"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The same pushes with the remote served over git:// (`git daemon`) and over smart HTTP
# (`git http-backend`), one after the other.
for transport in git http; do
  python3 "$here/webhook.py" --mobius "$MOBIUS" --work "$work/$transport" --history "${BENCH_HISTORY:-10000}" \
    --pushes "${BENCH_PUSHES:-50}" --transport "$transport" \
    --payload "$root/../shared/corpus/github-webhooks/push/payload.json"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
