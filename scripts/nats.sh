#!/usr/bin/env bash
# Runs a NATS server with JetStream on this machine, without Docker: the game-event broker.
# The binary is built from source with `go install` (Go module proxy) on first use.
#
# Usage:
#   scripts/nats.sh build    go install nats-server@$NATS_SERVER_VERSION into .cache/bin (if missing)
#   scripts/nats.sh start    build if missing, start one server (JetStream on, file storage under
#                            the run dir), return once it is healthy. Idempotent.
#   scripts/nats.sh stop     SIGTERM by its PID file, SIGKILL after 15 s; waits for the port to free
#   scripts/nats.sh status   one line; exit 0 only if the server answers its health check
#   scripts/nats.sh wipe     stop, then delete the run dir's JetStream store and logs
#   scripts/nats.sh url      print the client URL (nats://127.0.0.1:PORT)
#
# Environment:
#   NATS_PORT             client port (default 4222), on 127.0.0.1 only
#   NATS_MONITOR_PORT     HTTP monitoring port (default 8222: /healthz, /jsz), on 127.0.0.1 only
#   NATS_RUN_DIR          absolute; config, JetStream store, log, PID file (default .run/nats)
#   NATS_BIN              the nats-server binary (default .cache/bin/nats-server, built if missing)
#   NATS_SERVER_VERSION   the version `build` installs (default v2.15.2)
#   NATS_START_TIMEOUT    seconds before start gives up (default 30)
#   NATS_SYNC             JetStream sync_interval: 1s (default), a duration like 500ms or 2m, or
#                         always (an fsync before every ack). The origins read the same variable:
#                         their relays keep an event's outbox row for twice this interval after
#                         the ack, so an ack the broker loses in a power cut is published again
#   GO                    the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

PORT=${NATS_PORT:-4222}
MONITOR_PORT=${NATS_MONITOR_PORT:-8222}
RUN_DIR=${NATS_RUN_DIR:-$REPO_DIR/.run/nats}
BIN_DIR=$REPO_DIR/.cache/bin
BIN=${NATS_BIN:-$BIN_DIR/nats-server}
VERSION=${NATS_SERVER_VERSION:-v2.15.2}
START_TIMEOUT=${NATS_START_TIMEOUT:-30}
SYNC=${NATS_SYNC:-1s}
readonly STOP_GRACE=15
readonly MIN_GO=1.26.0 # the go line of nats-server v2.15's go.mod

say() { printf 'nats: %s\n' "$*"; }
warn() { printf 'nats: %s\n' "$*" >&2; }
die() {
  warn "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

check_settings() {
  case $RUN_DIR in /?*) ;; *) die "NATS_RUN_DIR must be an absolute path (got '$RUN_DIR')" ;; esac
  RUN_DIR=${RUN_DIR%/}
  [[ $RUN_DIR != *[\'\"$'\n']* ]] || die "NATS_RUN_DIR must not contain quotes or newlines"
  [[ $PORT =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || die "NATS_PORT must be a port number"
  [[ $MONITOR_PORT =~ ^[0-9]+$ ]] && ((MONITOR_PORT > 0 && MONITOR_PORT < 65536)) ||
    die "NATS_MONITOR_PORT must be a port number"
  ((PORT != MONITOR_PORT)) || die "NATS_PORT and NATS_MONITOR_PORT must differ"
  [[ $VERSION =~ ^v2\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
    die "NATS_SERVER_VERSION must look like v2.15.2 (got '$VERSION')"
  [[ $START_TIMEOUT =~ ^[0-9]+$ ]] || die "NATS_START_TIMEOUT must be a number of seconds"
  [[ $SYNC == always || $SYNC =~ ^[0-9]+(ms|s|m|h)$ ]] ||
    die "NATS_SYNC must be 'always' or a duration like 2m (got '$SYNC')"
}

pid_file() { printf '%s/nats-server.pid' "$RUN_DIR"; }
conf_file() { printf '%s/nats-server.conf' "$RUN_DIR"; }
log_file() { printf '%s/nats-server.log' "$RUN_DIR"; }

# Prints the PID if the PID file names a live nats-server of this run dir. Checks the command
# line, so a recycled PID is never taken for the server.
server_pid() {
  local file pid cmdline
  file=$(pid_file)
  [[ -f $file ]] || return 1
  read -r pid <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  { cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline"); } 2>/dev/null || return 1
  [[ $cmdline == *nats-server* && $cmdline == *"$(conf_file)"* ]] || return 1
  printf '%s' "$pid"
}

port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ 127.0.0.1 "$1" 2>/dev/null
}

# JetStream-aware health: 200 only once JetStream is up.
healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MONITOR_PORT/healthz?js-enabled-only=true" 2>/dev/null
}

find_go() {
  if [[ -n ${GO:-} ]]; then
    printf '%s' "$GO"
  elif command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '%s' /usr/local/go/bin/go
  else
    return 1
  fi
}

cmd_build() {
  if [[ -x $BIN ]]; then
    return 0
  fi
  [[ $BIN == "$BIN_DIR/nats-server" ]] || die "NATS_BIN=$BIN does not exist (build only fills $BIN_DIR)"
  local go started=$SECONDS
  go=$(find_go) || die "go is required to build nats-server (https://go.dev/dl/, or set GO=)"
  mkdir -p "$BIN_DIR"
  exec 8>"$BIN_DIR/.nats-build.lock"
  flock -w 600 8 || die "another build holds $BIN_DIR/.nats-build.lock"
  if [[ ! -x $BIN ]]; then
    local have toolchain=local
    have=$("$go" env GOVERSION 2>/dev/null || true)
    # nats-server 2.15 needs Go 1.26. A recent Go builds it as it is; an older one (Debian's
    # golang-go) fetches the toolchain nats-server asks for, itself a module on the proxy.
    if ! printf '%s\n%s\n' "$MIN_GO" "${have#go}" | sort -V -C; then
      toolchain=auto
    fi
    say "building nats-server $VERSION with ${have:-go} (go install, Go module proxy, GOTOOLCHAIN=$toolchain)"
    GOBIN="$BIN_DIR" GOTOOLCHAIN=$toolchain GOFLAGS=-trimpath CGO_ENABLED=0 \
      "$go" install "github.com/nats-io/nats-server/v2@$VERSION" ||
      die "go install github.com/nats-io/nats-server/v2@$VERSION failed"
    say "built $BIN ($((SECONDS - started)) s)"
  fi
  exec 8>&-
}

write_config() {
  # Loopback only; file storage (nats-server keeps it in store_dir/jetstream) so events survive
  # a restart of the broker. nats-server's default sync_interval is 2 minutes; the origins'
  # relays hold published rows for twice this interval (NATS_SYNC), so keep it short.
  cat >"$(conf_file).tmp" <<EOF
# Written by scripts/nats.sh; edits are overwritten on the next start.
server_name: seedsync-local
listen: 127.0.0.1:$PORT
http: 127.0.0.1:$MONITOR_PORT
max_payload: 1MB
jetstream {
  store_dir: "$RUN_DIR"
  max_memory_store: 256MB
  max_file_store: 4GB
  sync_interval: $SYNC
}
EOF
  mv -f "$(conf_file).tmp" "$(conf_file)"
}

cmd_start() {
  (($# == 0)) || die "start takes no arguments"
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 120 9 || die "another scripts/nats.sh is busy with $RUN_DIR"
  local pid
  if pid=$(server_pid); then
    if healthy; then
      say "already running (pid $pid) on nats://127.0.0.1:$PORT"
      return 0
    fi
  else
    port_open "$PORT" && die "127.0.0.1:$PORT is already taken by a process this run dir does not know"
    port_open "$MONITOR_PORT" && die "127.0.0.1:$MONITOR_PORT is already taken (NATS_MONITOR_PORT)"
    cmd_build
    write_config
    printf '==== %s starting nats-server\n' "$(date -Is)" >>"$(log_file)"
    # setsid + exec keep the subshell's PID, so $! is the server's PID. fd 9 (our lock) is
    # closed so the server does not hold it.
    (
      exec 9>&-
      exec setsid "$BIN" -js -c "$(conf_file)" </dev/null >>"$(log_file)" 2>&1
    ) &
    pid=$!
    printf '%s\n' "$pid" >"$(pid_file)"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      warn "nats-server exited during start-up; last lines of $(log_file):"
      tail -n 20 "$(log_file)" >&2 || true
      rm -f "$(pid_file)"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      warn "not healthy after ${START_TIMEOUT}s; stopping it. Last lines of $(log_file):"
      tail -n 20 "$(log_file)" >&2 || true
      stop_server
      exit 1
    fi
    sleep 0.1
  done
  say "up (pid $pid): nats://127.0.0.1:$PORT, JetStream store $RUN_DIR/jetstream, monitoring http://127.0.0.1:$MONITOR_PORT"
}

stop_server() {
  local pid waited
  if ! pid=$(server_pid); then
    rm -f "$(pid_file)"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((waited = 0; waited < STOP_GRACE * 10; waited++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "pid $pid did not stop within ${STOP_GRACE}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((waited = 0; waited < 50; waited++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$(pid_file)"
  # So that a server started right after finds its ports free.
  for ((waited = 0; waited < 50; waited++)); do
    port_open "$PORT" || port_open "$MONITOR_PORT" || break
    sleep 0.1
  done
  say "stopped (pid $pid)"
}

cmd_stop() {
  (($# == 0)) || die "stop takes no arguments"
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 120 9 || die "another scripts/nats.sh is busy with $RUN_DIR"
  stop_server
}

cmd_status() {
  (($# == 0)) || die "status takes no arguments"
  local pid
  if pid=$(server_pid); then
    if healthy; then
      say "up pid=$pid nats://127.0.0.1:$PORT (JetStream ok)"
      return 0
    fi
    say "down pid=$pid (process running, health check failing) nats://127.0.0.1:$PORT"
    return 1
  fi
  say "down pid=- nats://127.0.0.1:$PORT"
  return 1
}

cmd_wipe() {
  (($# == 0)) || die "wipe takes no arguments"
  [[ $RUN_DIR != / ]] || die "refusing to wipe /"
  cmd_stop
  rm -rf -- "$RUN_DIR/jetstream"
  rm -f -- "$(conf_file)" "$(log_file)"
  say "wiped $RUN_DIR (binary kept in $BIN_DIR)"
}

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  case $cmd in
    build | start | stop | status | wipe | url) check_settings ;;
  esac
  case $cmd in
    build) cmd_build "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    wipe) cmd_wipe "$@" ;;
    url) printf 'nats://127.0.0.1:%s\n' "$PORT" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
