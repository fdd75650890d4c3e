#!/usr/bin/env bash
# Runs Jaeger (all-in-one `cmd/jaeger`, in-memory storage) on this machine, without Docker: the
# trace collector of `make dev` and of the tests' trace check. Built from source on first use.
#
# Usage:
#   scripts/jaeger.sh build    build cmd/jaeger@$JAEGER_VERSION into .cache/bin (if missing)
#   scripts/jaeger.sh built    exit 0 if the binary is there (nothing is built)
#   scripts/jaeger.sh start    build if missing, start one Jaeger (OTLP/HTTP receiver and the
#                              query API/UI, both on 127.0.0.1), return once both answer. Idempotent.
#   scripts/jaeger.sh stop     SIGTERM by its PID file, SIGKILL after 10 s
#   scripts/jaeger.sh status   one line; exit 0 only if the query API answers
#   scripts/jaeger.sh otlp     print the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT)
#   scripts/jaeger.sh ui       print the query API URL (see below: no UI assets)
#   scripts/jaeger.sh traces [SERVICE] [LIMIT]
#                              the last LIMIT (5) traces through SERVICE (seedsync-edge) in the
#                              past hour, each as an indented span tree: offset, duration,
#                              service, operation (read from the query API with curl and jq)
#
# Why not `go install module/cmd@version`: Jaeger's go.mod has a `replace` directive, which
# `go install pkg@version` refuses. So the module is fetched from the Go module proxy
# (`go mod download`) and built in place with its own go.mod and go.sum: the same sources and
# checksums, under the project's GOPATH/GOCACHE (.cache/go, .cache/go-build).
#
# The Go module carries no UI assets (the Jaeger UI is a separate JavaScript project that is not
# on any registry reachable here), so JAEGER_UI_PORT serves a placeholder page and the query
# API (/api/services, /api/traces); `traces` prints what the UI would show as text.
#
# Environment:
#   JAEGER_OTLP_PORT     OTLP/HTTP receiver port (default 4318), 127.0.0.1 only
#   JAEGER_UI_PORT       query API and UI port (default 16686), 127.0.0.1 only
#   JAEGER_GRPC_PORT     the query gRPC port (default JAEGER_UI_PORT - 1), 127.0.0.1 only
#   JAEGER_RUN_DIR       absolute; config, log and PID file (default .run/jaeger)
#   JAEGER_BIN           the binary (default .cache/bin/jaeger, built if missing)
#   JAEGER_VERSION       the version `build` builds (default v1.75.0)
#   JAEGER_START_TIMEOUT seconds before start gives up (default 60)
#   GO                   the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib/supervise.sh
. "$SCRIPT_DIR/lib/supervise.sh"
SV_NAME=jaeger

OTLP_PORT=${JAEGER_OTLP_PORT:-4318}
UI_PORT=${JAEGER_UI_PORT:-16686}
GRPC_PORT=${JAEGER_GRPC_PORT:-$((UI_PORT - 1))}
RUN_DIR=${JAEGER_RUN_DIR:-$REPO_DIR/.run/jaeger}
BIN_DIR=$REPO_DIR/.cache/bin
BIN=${JAEGER_BIN:-$BIN_DIR/jaeger}
VERSION=${JAEGER_VERSION:-v1.75.0}
START_TIMEOUT=${JAEGER_START_TIMEOUT:-60}
readonly MODULE=github.com/jaegertracing/jaeger
readonly STOP_GRACE=10

say() { sv_say "$@"; }
die() { sv_die "$@"; }

check_settings() {
  case $RUN_DIR in /?*) ;; *) die "JAEGER_RUN_DIR must be an absolute path (got '$RUN_DIR')" ;; esac
  RUN_DIR=${RUN_DIR%/}
  local name
  for name in OTLP_PORT UI_PORT GRPC_PORT; do
    sv_check_port "JAEGER_$name" "${!name}"
  done
  ((OTLP_PORT != UI_PORT && OTLP_PORT != GRPC_PORT && UI_PORT != GRPC_PORT)) ||
    die "JAEGER_OTLP_PORT, JAEGER_UI_PORT and JAEGER_GRPC_PORT must differ"
  [[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "JAEGER_VERSION must look like v1.75.0 (got '$VERSION')"
  [[ $START_TIMEOUT =~ ^[0-9]+$ ]] || die "JAEGER_START_TIMEOUT must be a number of seconds"
}

pid_file() { printf '%s/jaeger.pid' "$RUN_DIR"; }
conf_file() { printf '%s/jaeger.yaml' "$RUN_DIR"; }
log_file() { printf '%s/jaeger.log' "$RUN_DIR"; }

# The PID if the PID file names a live Jaeger of this run dir.
server_pid() { sv_live_pid "$(pid_file)" jaeger "$(conf_file)"; }

healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$UI_PORT/api/services" 2>/dev/null &&
    sv_port_open "$OTLP_PORT"
}

cmd_build() {
  [[ -x $BIN ]] && return 0
  [[ $BIN == "$BIN_DIR/jaeger" ]] || die "JAEGER_BIN=$BIN does not exist (build only fills $BIN_DIR)"
  local go started=$SECONDS dir
  go=$(sv_find_go) || die "go is required to build Jaeger (https://go.dev/dl/, or set GO=)"
  mkdir -p "$BIN_DIR"
  exec 8>"$BIN_DIR/.jaeger-build.lock"
  flock -w 1800 8 || die "another build holds $BIN_DIR/.jaeger-build.lock"
  if [[ ! -x $BIN ]]; then
    export GOPATH=$REPO_DIR/.cache/go GOCACHE=$REPO_DIR/.cache/go-build GOFLAGS=-trimpath CGO_ENABLED=0
    # Jaeger 1.75 asks for Go 1.24+ (its go.mod); an older local Go fetches that toolchain.
    export GOTOOLCHAIN=auto
    say "building $MODULE/cmd/jaeger@$VERSION with $("$go" env GOVERSION) (Go module proxy; takes minutes)"
    dir=$("$go" mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $dir && -f $dir/go.mod ]] || die "go mod download $MODULE@$VERSION failed"
    (cd "$dir" && "$go" build -ldflags='-s -w' -o "$BIN.tmp" ./cmd/jaeger) || die "building $MODULE/cmd/jaeger@$VERSION failed"
    mv -f "$BIN.tmp" "$BIN"
    say "built $BIN ($((SECONDS - started)) s)"
  fi
  exec 8>&-
}

write_config() {
  # Loopback only, in-memory storage, only the OTLP/HTTP receiver (the origins and the edge
  # speak it), no self-telemetry listener.
  cat >"$(conf_file).tmp" <<EOF
# Written by scripts/jaeger.sh; edits are overwritten on the next start.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    # Its own tracing exports to localhost:4317, which nobody serves here: its retries fill the
    # log and its flush on SIGTERM outlasts the stop grace.
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$UI_PORT
    grpc:
      endpoint: 127.0.0.1:$GRPC_PORT
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$OTLP_PORT
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
  mv -f "$(conf_file).tmp" "$(conf_file)"
}

stop_server() {
  local pid
  if pid=$(server_pid); then
    sv_stop_pid "$pid" "$STOP_GRACE"
    say "stopped (pid $pid)"
  else
    say "not running"
  fi
  rm -f "$(pid_file)"
}

cmd_start() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 120 9 || die "another scripts/jaeger.sh is busy with $RUN_DIR"
  local pid
  if pid=$(server_pid); then
    if healthy; then
      say "already running (pid $pid): OTLP http://127.0.0.1:$OTLP_PORT, UI http://127.0.0.1:$UI_PORT"
      return 0
    fi
  else
    local p
    for p in "$OTLP_PORT" "$UI_PORT" "$GRPC_PORT"; do
      sv_port_open "$p" && die "127.0.0.1:$p is already taken by a process this run dir does not know"
    done
    cmd_build
    write_config
    printf '==== %s starting jaeger\n' "$(date -Is)" >>"$(log_file)"
    sv_launch "$(pid_file)" "$(log_file)" "$BIN" --config "$(conf_file)"
    read -r pid <"$(pid_file)"
  fi
  sv_wait_healthy "$pid" "$START_TIMEOUT" "$(log_file)" healthy || {
    sv_stop_pid "$pid" "$STOP_GRACE"
    rm -f "$(pid_file)"
    exit 1
  }
  say "up (pid $pid): OTLP http://127.0.0.1:$OTLP_PORT, UI http://127.0.0.1:$UI_PORT"
}

cmd_status() {
  local pid
  if pid=$(server_pid) && healthy; then
    say "up pid=$pid UI http://127.0.0.1:$UI_PORT OTLP http://127.0.0.1:$OTLP_PORT"
    return 0
  fi
  say "down UI http://127.0.0.1:$UI_PORT"
  return 1
}

cmd_traces() {
  local service=${1:-seedsync-edge} limit=${2:-5}
  [[ $service =~ ^[A-Za-z0-9._-]+$ ]] || die "SERVICE must be a service name like seedsync-edge (got '$service')"
  [[ $limit =~ ^[0-9]+$ ]] && ((limit > 0 && limit <= 100)) || die "LIMIT must be 1..100 (got '$limit')"
  command -v jq >/dev/null || die "traces needs jq"
  local answer
  answer=$(curl -fsS --max-time 10 "http://127.0.0.1:$UI_PORT/api/traces?service=$service&limit=$limit&lookback=1h") ||
    die "the query API at http://127.0.0.1:$UI_PORT does not answer (scripts/jaeger.sh status)"
  if [[ $(jq '.data | length' <<<"$answer") == 0 ]]; then
    say "no trace through $service in the past hour (services: $(curl -fsS --max-time 5 "http://127.0.0.1:$UI_PORT/api/services" | jq -r '.data // [] | join(", ")'))"
    return 0
  fi
  jq -r -f "$SCRIPT_DIR/lib/trace-tree.jq" <<<"$answer"
}

main() {
  check_settings
  case ${1:-} in
    build) cmd_build ;;
    built) [[ -x $BIN ]] ;;
    start) cmd_start ;;
    stop)
      mkdir -p "$RUN_DIR"
      exec 9>"$RUN_DIR/.lock"
      flock -w 120 9 || die "another scripts/jaeger.sh is busy with $RUN_DIR"
      stop_server
      ;;
    status) cmd_status ;;
    otlp) printf 'http://127.0.0.1:%s\n' "$OTLP_PORT" ;;
    ui) printf 'http://127.0.0.1:%s\n' "$UI_PORT" ;;
    traces) cmd_traces "${@:2}" ;;
    -h | --help | help) sv_usage "${BASH_SOURCE[0]}" ;;
    *)
      sv_usage "${BASH_SOURCE[0]}" >&2
      exit 2
      ;;
  esac
}

main "$@"
