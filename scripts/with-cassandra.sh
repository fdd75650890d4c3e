#!/usr/bin/env bash
# Runs a command with a local Cassandra up: reuses a running one, else starts one for the
# duration and stops it (by PID) afterwards. Used by the benchmarks.
#   scripts/with-cassandra.sh CMD [ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=""
first="${CASSANDRA_HOSTS:-127.0.0.1:9042}"
first="${first%%,*}"
# The CQL probe finds a Cassandra another checkout started (its PID files live there).
if ! "$ROOT/scripts/cassandra.sh" status >/dev/null 2>&1 &&
  ! python3 "$ROOT/scripts/cassandra/cqlprobe.py" ping "${first%:*}" "${first##*:}" >/dev/null 2>&1; then
  "$ROOT/scripts/cassandra.sh" start
  started=1
fi
trap '[[ -n "$started" ]] && "$ROOT/scripts/cassandra.sh" stop' EXIT
"$@"
