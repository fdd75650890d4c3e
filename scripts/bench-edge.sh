#!/usr/bin/env bash
# Edge benchmark (scripts/bench-edge.mjs) against real origins and a real local Cassandra (started
# here if none is running, then stopped again): the edge's added latency (edge -> origin vs origin
# direct, p50/p99, same run) and the share of join requests served from the edge cache.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -p origin 2> >(grep -v -E '^\s+(Compiling|Finished)' >&2)
bash scripts/build-worker.sh
ORIGIN_BIN="$CARGO_TARGET_DIR/release/origin" scripts/with-cassandra.sh node scripts/bench-edge.mjs
