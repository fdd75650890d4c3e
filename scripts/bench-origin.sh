#!/usr/bin/env bash
# Origin load benchmark against a real local Cassandra (started here if none is running, then
# stopped again). Prints starts/s, p50/p99 and the ratios to raw driver writes of the same run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
scripts/with-cassandra.sh cargo bench -p origin --bench start_load 2> >(grep -v -E '^\s+(Compiling|Finished|Running)' >&2)
