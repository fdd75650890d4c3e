#!/usr/bin/env bash
# Game events benchmark against a real local Cassandra (started here if none is running, then
# stopped again) and a nats-server the benchmark starts on a free port (stopped by PID). Prints
# start throughput with publishing on vs off (same run) and the lag from commit to consumer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
bash scripts/nats.sh build
# Same run, side by side: one nats-server (R1) with each JetStream fsync policy of
# BENCH_NATS_SYNC (default `1s`, what this project ships: the relays hold each published row
# until the broker has surely fsynced it, and `always`: an fsync before every acknowledgement),
# then a local three-node JetStream cluster (scripts/nats.sh start-cluster on free ports, stopped
# by PID) with the stream on three replicas (R3, `1s`), unless BENCH_NATS_R3=0. On one machine
# the brokers' fsyncs share the disk (and the cluster's three servers the 2 cores) with Cassandra.
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
bench() {
  local label=$1
  shift
  echo "=== bench-events: $label"
  env "$@" scripts/with-cassandra.sh cargo bench -p origin --bench events \
    2> >(grep -v -E '^\s+(Compiling|Finished|Running)' >&2) |
    tee >(sed -n "s/^BENCH /$label: /p" >>"$summary")
}
for sync in ${BENCH_NATS_SYNC:-1s always}; do
  bench "R1 sync $sync" NATS_SYNC="$sync"
done
if [[ ${BENCH_NATS_R3:-1} != 0 ]]; then
  bench "R3 cluster sync 1s" NATS_SYNC=1s BENCH_NATS_CLUSTER=1
fi
sleep 0.2
echo "=== bench-events summary (events on vs off, lag commit -> consumer)"
cat "$summary"
