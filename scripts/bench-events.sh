#!/usr/bin/env bash
# Game events benchmark against a real local Cassandra (started here if none is running, then
# stopped again) and a nats-server the benchmark starts on a free port (stopped by PID). Prints
# start throughput with publishing on vs off (same run) and the lag from commit to consumer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
bash scripts/nats.sh build
scripts/with-cassandra.sh cargo bench -p origin --bench events 2> >(grep -v -E '^\s+(Compiling|Finished|Running)' >&2)
