#!/usr/bin/env bash
# Sealed games benchmark (scripts/bench-sealed.mjs) against a real origin, the real Worker under
# wrangler dev and a local Cassandra (started here if none runs): messages and bytes per
# viewer-minute for sealed-v1 vs 100 ms tick streaming vs mix32-v1, and break-to-key latency
# p50/p99 at 100 viewers.
#   scripts/bench-sealed.sh [--seconds 60] [--viewers 100] [--break-every 50]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build -p origin 2> >(grep -v -E '^\s+(Compiling|Finished)' >&2)
bash scripts/build-worker.sh
ORIGIN_BIN="$CARGO_TARGET_DIR/debug/origin" scripts/with-cassandra.sh node scripts/bench-sealed.mjs "$@"
