#!/usr/bin/env bash
# Game events benchmark against a real local Cassandra (started here if none is running, then
# stopped again) and a nats-server the benchmark starts on a free port (stopped by PID). Prints
# start throughput with publishing on vs off (same run) and the lag from commit to consumer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
bash scripts/nats.sh build
# Two JetStream fsync policies, same run: `1s` (what this project ships: the relays hold each
# published row until the broker has surely fsynced it) and `always` (an fsync before every
# acknowledgement). On one machine the broker's fsyncs share the disk with Cassandra.
# BENCH_NATS_SYNC picks others (e.g. "1s always 2m").
for sync in ${BENCH_NATS_SYNC:-1s always}; do
  NATS_SYNC=$sync scripts/with-cassandra.sh cargo bench -p origin --bench events \
    2> >(grep -v -E '^\s+(Compiling|Finished|Running)' >&2)
done
