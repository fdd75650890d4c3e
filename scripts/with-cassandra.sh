#!/usr/bin/env bash
# Runs a command with a local Cassandra up: reuses a running one, else starts one for the
# duration and stops it (by PID) afterwards. Used by the benchmarks.
#   scripts/with-cassandra.sh CMD [ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=""
# `answers` also finds a Cassandra another checkout started (its PID files live there).
if ! "$ROOT/scripts/cassandra.sh" answers; then
  "$ROOT/scripts/cassandra.sh" start
  started=1
fi
trap '[[ -n "$started" ]] && "$ROOT/scripts/cassandra.sh" stop' EXIT
"$@"
