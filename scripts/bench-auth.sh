#!/usr/bin/env bash
# Cost of owner tokens and abuse limits: ns per token sign / verify (owner-token crate), then
# `POST /game/start` throughput with limits on vs off in the same run, against a real local
# Cassandra (started here if none is running, then stopped again).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
quiet() { grep -v -E '^\s+(Compiling|Finished|Running|Downloaded|Downloading)' >&2; }
cargo bench -p owner-token --bench sign_verify 2> >(quiet)
scripts/with-cassandra.sh cargo bench -p origin --bench auth_load 2> >(quiet)
# The burst load test with its latency bound enforced: one client bursting 2,000 starts must not
# push another client's p99 over 2x its unloaded p99.
SEEDSYNC_STRICT_TIMING=1 scripts/with-cassandra.sh cargo test -p origin --test it auth::a_burst_from_one_client -- --nocapture 2> >(quiet)
