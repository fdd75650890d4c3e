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
# A local three-node JetStream cluster (nodes 1-3, names seedsync-n1..n3, all on 127.0.0.1,
# routes on loopback ports, each node its own config, store dir, log and PID file under
# NATS_CLUSTER_RUN_DIR/nN; stopped by PID). The origins take its `urls` as NATS_URL and create
# the stream with NATS_STREAM_REPLICAS=3.
#   scripts/nats.sh start-cluster   start every node that is not running; return once all three
#                                   are healthy with a JetStream meta leader. Idempotent.
#   scripts/nats.sh stop-cluster    SIGTERM each node by its PID file (SIGKILL after 15 s)
#   scripts/nats.sh status-cluster  one line a node; exit 0 only if all three are healthy
#   scripts/nats.sh wipe-cluster    stop, then delete every node's store and log
#   scripts/nats.sh urls            the client URLs, comma-separated (NATS_URL for the origins)
#   scripts/nats.sh kill NODE       SIGKILL node NODE (1-3) by its PID: a crash, nothing flushed
#   scripts/nats.sh restart NODE    start node NODE again (same ports and store); return once its
#                                   JetStream is up (it may still be catching up)
#   scripts/nats.sh leader          the node (1-3) that leads the GAME_EVENTS stream (/jsz)
#   scripts/nats.sh power-cut MS    for tests: freeze every node (SIGSTOP), copy its store (the
#                                   last fsync), resume, SIGKILL all MS ms later and put the copies
#                                   back: a power cut of the whole cluster MS ms after its last
#                                   fsync. start-cluster brings it back.
#
# Environment:
#   NATS_PORT             client port (default 4222), on 127.0.0.1 only
#   NATS_MONITOR_PORT     HTTP monitoring port (default 8222: /healthz, /jsz), on 127.0.0.1 only
#   NATS_RUN_DIR          absolute; config, JetStream store, log, PID file (default .run/nats)
#   NATS_BIN              the nats-server binary (default .cache/bin/nats-server, built if missing)
#   NATS_SERVER_VERSION   the version `build` installs (default v2.15.2)
#   NATS_START_TIMEOUT    seconds before start gives up (default 30)
#   NATS_CLUSTER_RUN_DIR  absolute; the cluster's node dirs n1..n3 (default .run/nats-cluster)
#   NATS_CLUSTER_PORT     the cluster: node N's client port is this + N-1 (default NATS_PORT)
#   NATS_CLUSTER_MONITOR_PORT  node N's monitoring port is this + N-1 (default NATS_MONITOR_PORT)
#   NATS_ROUTE_PORT       node N's cluster route port is this + N-1 (default 6222)
#   NATS_SYNC             JetStream sync_interval: 1s (default), a duration like 500ms or 2m, or
#                         always (an fsync before every ack). The origins read the same variable:
#                         their relays keep an event's outbox row for twice this interval after
#                         the ack, so an ack the broker loses in a power cut is published again
#   GO                    the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=scripts/lib/supervise.sh
. "$SCRIPT_DIR/lib/supervise.sh"
SV_NAME=nats

PORT=${NATS_PORT:-4222}
MONITOR_PORT=${NATS_MONITOR_PORT:-8222}
RUN_DIR=${NATS_RUN_DIR:-$REPO_DIR/.run/nats}
CLUSTER_DIR=${NATS_CLUSTER_RUN_DIR:-$REPO_DIR/.run/nats-cluster}
ROUTE_PORT=${NATS_ROUTE_PORT:-6222}
readonly NODES=3
# Set by use_node for the cluster's nodes: the server name and the routes block of the config.
SERVER_NAME=seedsync-local
CLUSTER_BLOCK=""
BIN_DIR=$REPO_DIR/.cache/bin
BIN=${NATS_BIN:-$BIN_DIR/nats-server}
VERSION=${NATS_SERVER_VERSION:-v2.15.2}
START_TIMEOUT=${NATS_START_TIMEOUT:-30}
SYNC=${NATS_SYNC:-1s}
readonly STOP_GRACE=15
readonly MIN_GO=1.26.0 # the go line of nats-server v2.15's go.mod

say() { sv_say "$@"; }
warn() { sv_warn "$@"; }
die() { sv_die "$@"; }

check_settings() {
  case $RUN_DIR in /?*) ;; *) die "NATS_RUN_DIR must be an absolute path (got '$RUN_DIR')" ;; esac
  RUN_DIR=${RUN_DIR%/}
  [[ $RUN_DIR != *[\'\"$'\n']* ]] || die "NATS_RUN_DIR must not contain quotes or newlines"
  sv_check_port NATS_PORT "$PORT"
  sv_check_port NATS_MONITOR_PORT "$MONITOR_PORT"
  ((PORT != MONITOR_PORT)) || die "NATS_PORT and NATS_MONITOR_PORT must differ"
  [[ $VERSION =~ ^v2\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
    die "NATS_SERVER_VERSION must look like v2.15.2 (got '$VERSION')"
  [[ $START_TIMEOUT =~ ^[0-9]+$ ]] || die "NATS_START_TIMEOUT must be a number of seconds"
  case $CLUSTER_DIR in /?*) ;; *) die "NATS_CLUSTER_RUN_DIR must be an absolute path (got '$CLUSTER_DIR')" ;; esac
  CLUSTER_DIR=${CLUSTER_DIR%/}
  [[ $CLUSTER_DIR != *[\'\"$'\n']* ]] || die "NATS_CLUSTER_RUN_DIR must not contain quotes or newlines"
  [[ ${NATS_CLUSTER_PORT:-0} =~ ^[0-9]+$ && ${NATS_CLUSTER_MONITOR_PORT:-0} =~ ^[0-9]+$ ]] ||
    die "NATS_CLUSTER_PORT and NATS_CLUSTER_MONITOR_PORT must be port numbers"
  [[ $ROUTE_PORT =~ ^[0-9]+$ ]] && ((ROUTE_PORT > 0 && ROUTE_PORT + NODES < 65536)) ||
    die "NATS_ROUTE_PORT must be a port number"
  [[ $SYNC == always || $SYNC =~ ^[0-9]+(ms|s|m|h)$ ]] ||
    die "NATS_SYNC must be 'always' or a duration like 2m (got '$SYNC')"
}

pid_file() { printf '%s/nats-server.pid' "$RUN_DIR"; }
conf_file() { printf '%s/nats-server.conf' "$RUN_DIR"; }
log_file() { printf '%s/nats-server.log' "$RUN_DIR"; }

# The PID if the PID file names a live nats-server of this run dir.
server_pid() { sv_live_pid "$(pid_file)" nats-server "$(conf_file)"; }

# JetStream-aware health: 200 only once JetStream is up.
healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MONITOR_PORT/healthz?js-enabled-only=true" 2>/dev/null
}

cmd_build() {
  if [[ -x $BIN ]]; then
    return 0
  fi
  [[ $BIN == "$BIN_DIR/nats-server" ]] || die "NATS_BIN=$BIN does not exist (build only fills $BIN_DIR)"
  local go started=$SECONDS
  go=$(sv_find_go) || die "go is required to build nats-server (https://go.dev/dl/, or set GO=)"
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
server_name: $SERVER_NAME
listen: 127.0.0.1:$PORT
http: 127.0.0.1:$MONITOR_PORT
max_payload: 1MB
jetstream {
  store_dir: "$RUN_DIR"
  max_memory_store: 256MB
  max_file_store: 4GB
  sync_interval: $SYNC
}
$CLUSTER_BLOCK
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
    sv_port_open "$PORT" && die "127.0.0.1:$PORT is already taken by a process this run dir does not know"
    sv_port_open "$MONITOR_PORT" && die "127.0.0.1:$MONITOR_PORT is already taken (NATS_MONITOR_PORT)"
    cmd_build
    write_config
    printf '==== %s starting nats-server\n' "$(date -Is)" >>"$(log_file)"
    # setsid + exec keep the subshell's PID, so $! is the server's PID. fd 9 (our lock) is
    # closed so the server does not hold it.
    sv_launch "$(pid_file)" "$(log_file)" "$BIN" -js -c "$(conf_file)"
    read -r pid <"$(pid_file)"
  fi
  sv_wait_healthy "$pid" "$START_TIMEOUT" "$(log_file)" healthy || {
    sv_stop_pid "$pid" "$STOP_GRACE"
    rm -f "$(pid_file)"
    exit 1
  }
  say "up (pid $pid): nats://127.0.0.1:$PORT, JetStream store $RUN_DIR/jetstream, monitoring http://127.0.0.1:$MONITOR_PORT"
}

stop_server() {
  local pid waited
  if ! pid=$(server_pid); then
    rm -f "$(pid_file)"
    say "not running"
    return 0
  fi
  sv_stop_pid "$pid" "$STOP_GRACE"
  rm -f "$(pid_file)"
  # So that a server started right after finds its ports free.
  for ((waited = 0; waited < 50; waited++)); do
    sv_port_open "$PORT" || sv_port_open "$MONITOR_PORT" || break
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

# ---- the three-node cluster ------------------------------------------------------------------

BASE_PORT=${NATS_CLUSTER_PORT:-$PORT}
BASE_MONITOR_PORT=${NATS_CLUSTER_MONITOR_PORT:-$MONITOR_PORT}

# Points the single-server functions (pid_file, write_config, healthy, ...) at node $1.
use_node() {
  local n=$1 i routes=""
  [[ $n =~ ^[1-9]$ ]] && ((n <= NODES)) || die "NODE must be 1..$NODES (got '$n')"
  RUN_DIR=$CLUSTER_DIR/n$n
  PORT=$((BASE_PORT + n - 1))
  MONITOR_PORT=$((BASE_MONITOR_PORT + n - 1))
  SERVER_NAME=seedsync-n$n
  for ((i = 1; i <= NODES; i++)); do
    routes+="    nats-route://127.0.0.1:$((ROUTE_PORT + i - 1))"$'\n'
  done
  CLUSTER_BLOCK="cluster {
  name: seedsync-local
  listen: 127.0.0.1:$((ROUTE_PORT + n - 1))
  routes: [
${routes}  ]
}"
}

check_cluster_ports() {
  local -a ports=()
  local i p q
  for ((i = 0; i < NODES; i++)); do
    ports+=($((BASE_PORT + i)) $((BASE_MONITOR_PORT + i)) $((ROUTE_PORT + i)))
  done
  for p in "${ports[@]}"; do
    ((p < 65536)) || die "port $p is out of range"
    local seen=0
    for q in "${ports[@]}"; do ((p == q)) && seen=$((seen + 1)); done
    ((seen == 1)) || die "NATS_PORT, NATS_MONITOR_PORT and NATS_ROUTE_PORT ranges overlap (port $p)"
  done
}

cluster_lock() {
  mkdir -p "$CLUSTER_DIR"
  exec 9>"$CLUSTER_DIR/.lock"
  flock -w 120 9 || die "another scripts/nats.sh is busy with $CLUSTER_DIR"
}

# Starts node $n (use_node first) unless it runs; prints nothing. The caller waits.
launch_node() {
  local pid
  mkdir -p "$RUN_DIR"
  if pid=$(server_pid); then
    return 0
  fi
  sv_port_open "$PORT" && die "127.0.0.1:$PORT is already taken by a process $RUN_DIR does not know"
  sv_port_open "$MONITOR_PORT" && die "127.0.0.1:$MONITOR_PORT is already taken (monitoring of $SERVER_NAME)"
  write_config
  printf '==== %s starting nats-server %s\n' "$(date -Is)" "$SERVER_NAME" >>"$(log_file)"
  sv_launch "$(pid_file)" "$(log_file)" "$BIN" -js -c "$(conf_file)"
}

# Full health: JetStream up and current with the cluster's meta leader.
cluster_healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MONITOR_PORT/healthz" 2>/dev/null
}

# Waits until node $1 passes check $2 (healthy or cluster_healthy); exits on failure.
wait_node() {
  local n=$1 check=$2 pid
  use_node "$n"
  # The PID file, not server_pid: right after the launch the process may not have exec'd
  # nats-server yet (its command line is still this script's).
  read -r pid <"$(pid_file)" 2>/dev/null || die "$SERVER_NAME is not running"
  SV_NAME="nats $SERVER_NAME" sv_wait_healthy "$pid" "$START_TIMEOUT" "$(log_file)" "$check" || {
    # A node that died is forgotten; one that is merely slow keeps running for the next try.
    kill -0 "$pid" 2>/dev/null || rm -f "$(pid_file)"
    exit 1
  }
}

cmd_start_cluster() {
  (($# == 0)) || die "start-cluster takes no arguments"
  check_cluster_ports
  cluster_lock
  cmd_build
  local n
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    launch_node
  done
  for ((n = 1; n <= NODES; n++)); do
    wait_node "$n" cluster_healthy
  done
  say "cluster up: $(cluster_urls) (stores under $CLUSTER_DIR/n1..n$NODES, sync_interval $SYNC)"
}

cmd_stop_cluster() {
  (($# == 0)) || die "stop-cluster takes no arguments"
  cluster_lock
  local n
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    stop_server
  done
}

cmd_status_cluster() {
  (($# == 0)) || die "status-cluster takes no arguments"
  local n pid ok=0
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    if pid=$(server_pid); then
      if cluster_healthy; then
        say "node $n up pid=$pid nats://127.0.0.1:$PORT (JetStream current)"
      else
        say "node $n unhealthy pid=$pid nats://127.0.0.1:$PORT"
        ok=1
      fi
    else
      say "node $n down pid=- nats://127.0.0.1:$PORT"
      ok=1
    fi
  done
  return "$ok"
}

cmd_wipe_cluster() {
  (($# == 0)) || die "wipe-cluster takes no arguments"
  [[ $CLUSTER_DIR != / ]] || die "refusing to wipe /"
  cmd_stop_cluster
  local n
  for ((n = 1; n <= NODES; n++)); do
    rm -rf -- "$CLUSTER_DIR/n$n"
  done
  say "wiped $CLUSTER_DIR (binary kept in $BIN_DIR)"
}

cluster_urls() {
  local n urls=""
  for ((n = 0; n < NODES; n++)); do
    urls+="${urls:+,}nats://127.0.0.1:$((BASE_PORT + n))"
  done
  printf '%s' "$urls"
}

cmd_kill() {
  (($# == 1)) || die "kill takes a node number (1-$NODES)"
  cluster_lock
  use_node "$1"
  local pid waited
  if ! pid=$(server_pid); then
    say "node $1 is not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  for ((waited = 0; waited < 100; waited++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  rm -f "$(pid_file)"
  say "killed node $1 (pid $pid, SIGKILL)"
}

cmd_restart() {
  (($# == 1)) || die "restart takes a node number (1-$NODES)"
  check_cluster_ports
  cluster_lock
  use_node "$1"
  launch_node
  # JetStream on: without a quorum (another node still down) the node cannot be current yet.
  wait_node "$1" healthy
  say "node $1 up again (pid $(server_pid)) on nats://127.0.0.1:$PORT"
}

cmd_leader() {
  (($# == 0)) || die "leader takes no arguments"
  local n leader
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    server_pid >/dev/null || continue
    leader=$(curl -fsS --max-time 2 "http://127.0.0.1:$MONITOR_PORT/jsz?streams=true" 2>/dev/null |
      jq -r '[.account_details[]?.stream_detail[]? | select(.name == "GAME_EVENTS") | .cluster.leader // empty][0] // empty' 2>/dev/null) || continue
    if [[ $leader =~ ^seedsync-n([0-9]+)$ ]]; then
      printf '%s\n' "${BASH_REMATCH[1]}"
      return 0
    fi
  done
  warn "no node reports a leader of GAME_EVENTS"
  return 1
}

# All nodes' PIDs (running ones).
cluster_pids() {
  local n pid
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    if pid=$(server_pid); then printf '%s ' "$pid"; fi
  done
}

# Freezes every node (SIGSTOP), copies each store as it is on disk then (the simulated last
# fsync), resumes them, lets them run $1 ms, then SIGKILLs them all and puts the copies back:
# what a power cut of the whole cluster leaves if the last fsync was at the copy.
cmd_power_cut() {
  (($# == 1)) && [[ $1 =~ ^[0-9]+$ ]] || die "power-cut takes the milliseconds between the last fsync and the cut"
  cluster_lock
  local pids n pid resumed cut
  pids=$(cluster_pids)
  [[ -n $pids ]] || die "no node is running"
  # shellcheck disable=SC2086 # a list of PIDs
  kill -STOP $pids
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    rm -rf -- "$RUN_DIR/checkpoint"
    mkdir -p "$RUN_DIR/checkpoint"
    if [[ -d $RUN_DIR/jetstream ]]; then cp -a "$RUN_DIR/jetstream" "$RUN_DIR/checkpoint/"; fi
  done
  # shellcheck disable=SC2086
  kill -CONT $pids
  resumed=$(date +%s%N)
  sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
  # shellcheck disable=SC2086
  kill -KILL $pids
  cut=$(date +%s%N)
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  for ((n = 1; n <= NODES; n++)); do
    use_node "$n"
    rm -f "$(pid_file)"
    rm -rf -- "$RUN_DIR/jetstream"
    if [[ -d $RUN_DIR/checkpoint/jetstream ]]; then mv "$RUN_DIR/checkpoint/jetstream" "$RUN_DIR/"; fi
    rm -rf -- "$RUN_DIR/checkpoint"
  done
  say "power cut: every node SIGKILLed $(((cut - resumed) / 1000000)) ms after its last fsync, its store put back as it was then"
}

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  case $cmd in
    build | start | stop | status | wipe | url | start-cluster | stop-cluster | status-cluster | \
      wipe-cluster | urls | kill | restart | leader | power-cut) check_settings ;;
  esac
  case $cmd in
    build) cmd_build "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    wipe) cmd_wipe "$@" ;;
    url) printf 'nats://127.0.0.1:%s\n' "$PORT" ;;
    start-cluster) cmd_start_cluster "$@" ;;
    stop-cluster) cmd_stop_cluster "$@" ;;
    status-cluster) cmd_status_cluster "$@" ;;
    wipe-cluster) cmd_wipe_cluster "$@" ;;
    urls) printf '%s\n' "$(cluster_urls)" ;;
    kill) cmd_kill "$@" ;;
    restart) cmd_restart "$@" ;;
    leader) cmd_leader "$@" ;;
    power-cut) cmd_power_cut "$@" ;;
    -h | --help | help) sv_usage "${BASH_SOURCE[0]}" ;;
    *)
      sv_usage "${BASH_SOURCE[0]}" >&2
      exit 2
      ;;
  esac
}

main "$@"
