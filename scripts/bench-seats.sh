#!/usr/bin/env bash
# Shared games benchmark (scripts/bench-seats.mjs) against real origins, the real Worker under
# wrangler dev and a local Cassandra (started here if none runs): joins/s and join latency into
# one game (maxPlayers 100) and into many games, and the push latency of a seat's result to 100
# viewer sockets, p50/p99.
#   scripts/bench-seats.sh [--one-joiners 110] [--games 50] [--viewers 100] [--exits 10]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build -p origin 2> >(grep -v -E '^\s+(Compiling|Finished)' >&2)
bash scripts/build-worker.sh
ORIGIN_BIN="$CARGO_TARGET_DIR/debug/origin" scripts/with-cassandra.sh node scripts/bench-seats.mjs "$@"
