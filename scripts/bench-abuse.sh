#!/usr/bin/env bash
# The abuse benchmark (issue 19): a steady honest client (a game every 200 ms: start, read,
# exit) against a real origin (release build) on a real Cassandra (started here if none runs),
# first alone, then while each origin-side attack runs at full speed from one other client
# (CPU-heavy state reads at the engine horizon, slow bodies, slow headers, 64 reads in flight,
# probe floods with made-up methods). Prints the honest client's p99 start latency per attack
# and its ratio to the unloaded p99, and fails if the honest client saw any failure or a ratio
# is above ABUSE_MAX_RATIO (default 3). ABUSE_PHASE_SECONDS (default 15) per phase.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export ABUSE_PHASE_SECONDS="${ABUSE_PHASE_SECONDS:-15}"
export ABUSE_MAX_RATIO="${ABUSE_MAX_RATIO:-3}"
echo "=== bench-abuse: ${ABUSE_PHASE_SECONDS} s per phase, p99 ratio must be <= ${ABUSE_MAX_RATIO}"
set +e
scripts/with-cassandra.sh cargo test --release -p origin --test it -- \
  abuse::the_steady_honest_client_never_fails_under_any_attack --exact --nocapture 2>&1 |
  grep --line-buffered -v -E '^\s+(Compiling|Finished|Running)'
status=${PIPESTATUS[0]}
set -e
exit "$status"
