#!/usr/bin/env bash
# Live rooms benchmark (scripts/bench-live.mjs) against a real origin, the real Worker under
# wrangler dev and a local Cassandra (started here if none runs): server -> viewer messages and
# bytes per viewer-minute vs tick streaming, and exit-to-viewer latency p50/p99.
#   scripts/bench-live.sh [--seconds 60] [--viewers 1,10,100] [--pings 1]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build -p origin 2> >(grep -v -E '^\s+(Compiling|Finished)' >&2)
bash scripts/build-worker.sh
ORIGIN_BIN="$CARGO_TARGET_DIR/debug/origin" scripts/with-cassandra.sh node scripts/bench-live.mjs "$@"
