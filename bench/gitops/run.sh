#!/usr/bin/env bash
# GitOps reconcile latency: a commit to a deploy repository to the rollout it asks for
# starting (p50 target <= 1 s). See run.py.
#
#   bench/gitops/run.sh            # 12 samples
#   SAMPLES=30 bench/gitops/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
echo "uptime: $(uptime)"
(cd "$ROOT" && cargo build --release -p mobius) >&2
python3 "$ROOT/bench/gitops/run.py"
echo "uptime: $(uptime)"
