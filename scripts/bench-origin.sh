#!/usr/bin/env bash
# Origin load benchmark against a real local Cassandra (started here if none is running, then
# stopped again). Prints starts/s, p50/p99 and the ratios to raw driver writes of the same run;
# then, with a Jaeger built (.cache/bin/jaeger, make setup), starts with span export off vs on
# (a Jaeger started here on free loopback ports, stopped after) and their ratio (target 0.9).
# BENCH_TRACING=0 skips the tracing phases.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ ${BENCH_TRACING:-1} == 1 && -x .cache/bin/jaeger ]]; then
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  export JAEGER_RUN_DIR JAEGER_OTLP_PORT JAEGER_UI_PORT JAEGER_GRPC_PORT
  JAEGER_RUN_DIR="$(mktemp -d)"
  JAEGER_OTLP_PORT="$(free_port)" JAEGER_UI_PORT="$(free_port)" JAEGER_GRPC_PORT="$(free_port)"
  trap 'scripts/jaeger.sh stop >/dev/null; rm -rf "$JAEGER_RUN_DIR"' EXIT
  scripts/jaeger.sh start >/dev/null
  OTEL_EXPORTER_OTLP_ENDPOINT="$(scripts/jaeger.sh otlp)"
  export OTEL_EXPORTER_OTLP_ENDPOINT
fi
scripts/with-cassandra.sh cargo bench -p origin --bench start_load 2> >(grep -v -E '^\s+(Compiling|Finished|Running)' >&2)
