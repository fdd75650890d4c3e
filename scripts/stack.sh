#!/usr/bin/env bash
# The local seedsync stack without Docker: Cassandra (from Maven Central jars), the NATS
# JetStream broker for game events (nats-server built with go install), three origins
# (eu, us, asia), the edge Worker in wrangler dev, which also serves the frontend, and a
# Prometheus scraping the origins with deploy/prometheus's rules (built with go install on the
# first `up`, a few minutes; STACK_PROMETHEUS=0 skips it) and Jaeger collecting the origins'
# and the edge's spans over OTLP/HTTP (built from the Go module proxy by scripts/jaeger.sh on the
# first `up`; STACK_TRACING=0 skips it); their UI URLs are printed.
#
#   scripts/stack.sh up       build what is missing, start everything, return when all is healthy
#   scripts/stack.sh down     stop what `up` started, by PID (process groups), newest first
#   scripts/stack.sh status   one line per component
#   scripts/stack.sh logs     follow every log (Ctrl-C to stop following)
#
# Env: EDGE_PORT (8787), EDGE_INSPECTOR_PORT (EDGE_PORT + 1000: wrangler's devtools port, so
# two stacks on one machine do not fight over its default 9229),
# ORIGIN_PORT_BASE (8081: eu, +1 us, +2 asia), STACK_RUN_DIR (.run/stack),
# NATS_PORT (4222) and NATS_MONITOR_PORT (8222) for scripts/nats.sh, JAEGER_OTLP_PORT (4318)
# and JAEGER_UI_PORT (16686) for scripts/jaeger.sh, STACK_TRACING=0 (no Jaeger, no export),
# NATS_CLUSTER=1 (a local
# three-node JetStream cluster, `scripts/nats.sh start-cluster`, instead of one server: the
# origins get its three URLs and NATS_STREAM_REPLICAS=3),
# CASSANDRA_KEYSPACE (seedsync), STACK_PROFILE (release|debug, default release),
# STACK_SKIP_FRONTEND=1 (serve whatever frontend/dist holds), STACK_TIMEOUT (seconds per wait, 180),
# PROMETHEUS_PORT (9090), STACK_PROMETHEUS (1).
# Everything listens on 127.0.0.1 only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"

EDGE_PORT="${EDGE_PORT:-8787}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
STACK_PROMETHEUS="${STACK_PROMETHEUS:-1}"
[[ $STACK_PROMETHEUS == 0 || $STACK_PROMETHEUS == 1 ]] || { echo "stack: STACK_PROMETHEUS must be 0 or 1" >&2; exit 2; }
[[ $PROMETHEUS_PORT =~ ^[0-9]+$ ]] && ((PROMETHEUS_PORT > 0 && PROMETHEUS_PORT < 65536)) ||
  { echo "stack: PROMETHEUS_PORT must be a port number" >&2; exit 2; }
EDGE_INSPECTOR_PORT="${EDGE_INSPECTOR_PORT:-$((EDGE_PORT + 1000))}"
ORIGIN_PORT_BASE="${ORIGIN_PORT_BASE:-8081}"
RUN_DIR="${STACK_RUN_DIR:-$ROOT/.run/stack}"
KEYSPACE="${CASSANDRA_KEYSPACE:-seedsync}"
PROFILE="${STACK_PROFILE:-release}"
TIMEOUT="${STACK_TIMEOUT:-180}"
REGIONS=(eu us asia)
NATS_CLUSTER="${NATS_CLUSTER:-0}"
TRACING="${STACK_TRACING:-1}"
[[ $TRACING == 0 || $TRACING == 1 ]] || { echo "stack: STACK_TRACING must be 0 or 1" >&2; exit 2; }
[[ $NATS_CLUSTER == 0 || $NATS_CLUSTER == 1 ]] || { echo "stack: NATS_CLUSTER must be 0 or 1" >&2; exit 2; }

log() { printf 'stack: %s\n' "$*" >&2; }

origin_port() {
  local i
  for i in "${!REGIONS[@]}"; do
    [[ "${REGIONS[$i]}" == "$1" ]] && { echo $((ORIGIN_PORT_BASE + i)); return; }
  done
  return 1
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits until `curl URL` answers 2xx, or the process behind PIDFILE dies, or TIMEOUT passes.
wait_http() {
  local name="$1" url="$2" pidfile="$3" logfile="$4" deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
      log "$name ready at $url"
      return 0
    fi
    if ! alive "$pidfile"; then
      log "$name exited during start-up; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  log "$name not ready after ${TIMEOUT}s; last lines of $logfile:"
  tail -n 30 "$logfile" >&2 || true
  return 1
}

# Starts a command in its own session (so `down` can stop its whole process group).
spawn() {
  local name="$1"; shift
  local logfile="$RUN_DIR/$name.log" pidfile="$RUN_DIR/$name.pid"
  if alive "$pidfile"; then
    log "$name already running (pid $(cat "$pidfile"))"
    return 0
  fi
  setsid "$@" >"$logfile" 2>&1 < /dev/null &
  echo $! >"$pidfile"
}

stop_pidfile() {
  local name="$1" pidfile="$RUN_DIR/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    # Negative PID: the process group that setsid created for it (wrangler's workerd too).
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop within 20 s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

build() {
  local cargo_flags=()
  [[ "$PROFILE" == release ]] && cargo_flags=(--release)
  log "building the origin ($PROFILE)"
  cargo build "${cargo_flags[@]}" -p origin
  if [[ -z "${STACK_SKIP_FRONTEND:-}" && -f frontend/package.json ]]; then
    log "building the frontend"
    [[ -d frontend/node_modules ]] || npm --prefix frontend ci --no-audit --no-fund
    npm --prefix frontend run build
  fi
  log "building the edge Worker"
  [[ -d node_modules ]] || bash scripts/setup-edge.sh
  bash scripts/build-worker.sh
}

# The path of the mode-600 file holding secret NAME: the environment's value if set, else the
# file's, else BYTES random bytes (base64) made now.
secret_file() {
  local name="$1" bytes="$2" file="$RUN_DIR/secret-${1,,}"
  (
    umask 077
    if [[ -n "${!name:-}" ]]; then
      printf '%s' "${!name}" > "$file"
    elif [[ ! -s "$file" ]]; then
      head -c "$bytes" /dev/urandom | base64 | tr -d '\n' > "$file"
    fi
  )
  echo "$file"
}

up() {
  mkdir -p "$RUN_DIR"
  build
  if scripts/cassandra.sh answers; then
    # Maybe one another checkout started (its PID files live there): used, never stopped here.
    log "a Cassandra answers on ${CASSANDRA_HOSTS:-127.0.0.1:9042}; using it"
  else
    scripts/cassandra.sh start
    touch "$RUN_DIR/cassandra.started-here"
  fi
  # The event broker. The origins never wait for it (their outbox holds events while it is
  # down), so it starts alongside them.
  local nats_url replicas=""
  if [[ $NATS_CLUSTER == 1 ]]; then
    if scripts/nats.sh status-cluster >/dev/null 2>&1; then
      log "the NATS cluster is already running; using it"
    else
      scripts/nats.sh start-cluster
      touch "$RUN_DIR/nats-cluster.started-here"
    fi
    nats_url="$(scripts/nats.sh urls)"
    replicas=3
  else
    if scripts/nats.sh status >/dev/null 2>&1; then
      log "NATS already running; using it"
    else
      scripts/nats.sh start
      touch "$RUN_DIR/nats.started-here"
    fi
    nats_url="$(scripts/nats.sh url)"
  fi
  # The trace collector: spans of the origins and the edge (OTLP/HTTP), its UI on 127.0.0.1.
  local otlp=""
  if [[ $TRACING == 1 ]]; then
    if scripts/jaeger.sh status >/dev/null 2>&1; then
      log "Jaeger already running; using it"
    else
      scripts/jaeger.sh start
      touch "$RUN_DIR/jaeger.started-here"
    fi
    otlp="$(scripts/jaeger.sh otlp)"
  fi
  local binary="$CARGO_TARGET_DIR/$PROFILE/origin" region port
  # The stack's secrets, each in its own mode-600 file under .run/ (made once per checkout,
  # so owner tokens and guest identities survive `make down` / `make up`; a value in the
  # environment wins and is written there). Origins read them through NAME_FILE and wrangler
  # through an env file, so no secret is ever on a command line (`ps`).
  local owner_file notify_file user_token_file registry_file edge_origin_file admin_file
  owner_file="$(secret_file OWNER_TOKEN_SECRET 48)"
  notify_file="$(secret_file EDGE_NOTIFY_SECRET 32)"
  user_token_file="$(secret_file USER_TOKEN_SECRET 48)"
  registry_file="$(secret_file REGISTRY_SECRET 48)"
  edge_origin_file="$(secret_file EDGE_ORIGIN_SECRET 48)"
  # The operator's bearer token of the origins' /admin/* routes (tournaments, settings, drains).
  admin_file="$(secret_file ADMIN_TOKEN 48)"
  local edge_env="$RUN_DIR/edge.dev.vars"
  (
    umask 077
    {
      printf 'OWNER_TOKEN_SECRET=%s\n' "$(cat "$owner_file")"
      printf 'EDGE_NOTIFY_SECRET=%s\n' "$(cat "$notify_file")"
      printf 'USER_TOKEN_SECRET=%s\n' "$(cat "$user_token_file")"
      printf 'REGISTRY_SECRET=%s\n' "$(cat "$registry_file")"
      # The edge signs every origin request with it; origins believe the client address it signs.
      printf 'EDGE_ORIGIN_SECRET=%s\n' "$(cat "$edge_origin_file")"
      # Registry rows must point at this machine's origins.
      printf 'REGION_URL_PATTERN=%s\n' 'http://127.0.0.1:*'
      # USER_AUTH in the environment overrides wrangler.toml's (the e2e test runs `off`).
      if [[ -n "${USER_AUTH:-}" ]]; then printf 'USER_AUTH=%s\n' "$USER_AUTH"; fi
    } > "$edge_env"
  )
  for region in "${REGIONS[@]}"; do
    port="$(origin_port "$region")"
    # The edge (wrangler dev on 127.0.0.1) forwards each client's address; trust it for the
    # per-client limits.
    spawn "origin-$region" env HOST=127.0.0.1 PORT="$port" REGION="$region" \
      CASSANDRA_HOSTS="${CASSANDRA_HOSTS:-127.0.0.1:9042}" CASSANDRA_KEYSPACE="$KEYSPACE" \
      CASSANDRA_REPLICATION="${CASSANDRA_REPLICATION:-SimpleStrategy:1}" NATS_URL="$nats_url" \
      ${replicas:+NATS_STREAM_REPLICAS="$replicas"} \
      OWNER_TOKEN_SECRET_FILE="$owner_file" TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1,::1}" \
      REGISTRY_SECRET_FILE="$registry_file" EDGE_ORIGIN_SECRET_FILE="$edge_origin_file" \
      EDGE_NOTIFY_URL="http://127.0.0.1:$EDGE_PORT" EDGE_NOTIFY_SECRET_FILE="$notify_file" \
      ADMIN_TOKEN_FILE="$admin_file" \
      OTEL_EXPORTER_OTLP_ENDPOINT="$otlp" OTEL_SERVICE_NAME="seedsync-origin-$region" \
      OWNER_TOKEN_SECRET= EDGE_NOTIFY_SECRET= REGISTRY_SECRET= EDGE_ORIGIN_SECRET= ADMIN_TOKEN= "$binary"
  done
  for region in "${REGIONS[@]}"; do
    port="$(origin_port "$region")"
    wait_http "origin-$region" "http://127.0.0.1:$port/ready" "$RUN_DIR/origin-$region.pid" "$RUN_DIR/origin-$region.log"
  done
  local origins
  origins="{\"eu\":\"http://127.0.0.1:$(origin_port eu)\",\"us\":\"http://127.0.0.1:$(origin_port us)\",\"asia\":\"http://127.0.0.1:$(origin_port asia)\"}"
  spawn edge env WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false DO_NOT_TRACK=1 \
    CLOUDFLARE_CF_FETCH_ENABLED=false \
    bash edge-worker/scripts/wrangler.sh dev --local --ip 127.0.0.1 --port "$EDGE_PORT" \
    --inspector-port "$EDGE_INSPECTOR_PORT" \
    --persist-to "$RUN_DIR/wrangler-state" --var "REGION_ORIGINS:$origins" \
    ${otlp:+--var "OTEL_EXPORTER_OTLP_ENDPOINT:$otlp"} \
    --env-file "$edge_env"
  wait_http edge "http://127.0.0.1:$EDGE_PORT/edge/health" "$RUN_DIR/edge.pid" "$RUN_DIR/edge.log"
  if [[ $STACK_PROMETHEUS == 1 ]]; then
    start_prometheus
  fi
  log "up: page and API at http://127.0.0.1:$EDGE_PORT/ (origins on 127.0.0.1:$(origin_port eu)-$(origin_port asia))"
  log "game events: cargo run -p events --bin tail -- --nats $nats_url"
  if [[ $TRACING == 1 ]]; then log "traces: Jaeger query API at $(scripts/jaeger.sh ui)/api/traces; scripts/jaeger.sh traces prints the last ones"; fi
}

# A real Prometheus (built once from the Go module proxy by scripts/prometheus.sh) scraping
# the three origins every 5 s with deploy/prometheus's rules loaded; its data in the run dir.
start_prometheus() {
  bash scripts/prometheus.sh build
  local config="$RUN_DIR/prometheus.yml" region targets=""
  for region in "${REGIONS[@]}"; do targets+="'127.0.0.1:$(origin_port "$region")', "; done
  cat >"$config" <<YAML
# Written by scripts/stack.sh up.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - '$ROOT/deploy/prometheus/seedsync.rules.yml'
scrape_configs:
  - job_name: seedsync-origin
    static_configs:
      - targets: [${targets%, }]
YAML
  spawn prometheus "$ROOT/.cache/bin/prometheus-${PROMETHEUS_VERSION:-v0.316.0}" \
    --config.file="$config" --storage.tsdb.path="$RUN_DIR/prometheus-data" \
    --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_http prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" "$RUN_DIR/prometheus.pid" "$RUN_DIR/prometheus.log"
  log "prometheus: http://127.0.0.1:$PROMETHEUS_PORT/ (targets /targets, alerts /alerts; rules from deploy/prometheus)"
}

down() {
  [[ -d "$RUN_DIR" ]] || { log "nothing to stop"; return 0; }
  stop_pidfile prometheus
  stop_pidfile edge
  local region
  for region in "${REGIONS[@]}"; do stop_pidfile "origin-$region"; done
  # After the origins: their relays get to publish what they hold while draining.
  if [[ -f "$RUN_DIR/nats.started-here" ]]; then
    scripts/nats.sh stop
    rm -f "$RUN_DIR/nats.started-here"
  fi
  if [[ -f "$RUN_DIR/nats-cluster.started-here" ]]; then
    scripts/nats.sh stop-cluster
    rm -f "$RUN_DIR/nats-cluster.started-here"
  fi
  # After the origins and the edge: their last spans are flushed as they stop.
  if [[ -f "$RUN_DIR/jaeger.started-here" ]]; then
    scripts/jaeger.sh stop
    rm -f "$RUN_DIR/jaeger.started-here"
  fi
  if [[ -f "$RUN_DIR/cassandra.started-here" ]]; then
    scripts/cassandra.sh stop
    rm -f "$RUN_DIR/cassandra.started-here"
  fi
}

status() {
  local name ok=0
  for name in edge origin-eu origin-us origin-asia $([[ $STACK_PROMETHEUS == 1 ]] && echo prometheus); do
    if alive "$RUN_DIR/$name.pid"; then
      echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"))"
    else
      echo "$name: stopped"; ok=1
    fi
  done
  if [[ $NATS_CLUSTER == 1 ]]; then
    scripts/nats.sh status-cluster || ok=1
  else
    scripts/nats.sh status || ok=1
  fi
  if [[ $TRACING == 1 ]]; then scripts/jaeger.sh status || ok=1; fi
  scripts/cassandra.sh status || ok=1
  return "$ok"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs)
    if [[ $NATS_CLUSTER == 1 ]]; then
      exec tail -n 20 -F "$RUN_DIR"/*.log "${NATS_CLUSTER_RUN_DIR:-$ROOT/.run/nats-cluster}"/n*/nats-server.log
    fi
    exec tail -n 20 -F "$RUN_DIR"/*.log "${NATS_RUN_DIR:-$ROOT/.run/nats}/nats-server.log"
    ;;
  *) echo "usage: scripts/stack.sh up|down|status|logs" >&2; exit 2 ;;
esac
