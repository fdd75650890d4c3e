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
