#!/usr/bin/env bash
# `make test`: every test of seedsync, against real components, starting and stopping what it
# needs. Stages run in order and stop at the first failure; whatever this script started is
# stopped on exit (by PID). Logs and browser screenshots land in artifacts/.
#
#   1 lint        cargo fmt --check, every shell script parsed (bash -n), clippy (native and
#                 wasm32) with -D warnings
#   1b ops        Prometheus rules and their unit tests (promtool test rules), every Grafana
#                 dashboard expression parsed by promtool (scripts/ops-check.sh; seconds, with
#                 promtool built once into .cache/bin by scripts/prometheus.sh); a real
#                 origin's /metrics against them is it::ops, in the rust stage
#   2 no_std      the engine built for wasm32 without std
#   3 cassandra   a real Cassandra node (reused if one is already up)
#   4 rust        unit, property, statistical and integration tests (origin on real Cassandra,
#                 game events on real nats-servers)
#   5 events      game events end to end: origins with the outbox and relay on the real
#                 Cassandra and one nats-server started for the stage (scripts/nats.sh, its own
#                 port and store dir): 1,000 starts + exits, a 20 s broker outage under load, an
#                 origin killed mid-relay; and a three-node JetStream cluster (R3, started once
#                 for the stage) losing its stream leader, a follower, its quorum and, last,
#                 its power under load, with no event lost
#   5b tls        the origin -> Cassandra hop over TLS: one TLS-only node started for the stage
#                 (scripts/cassandra.sh start-tls: 127.0.0.1:9142, its own run dir and a keytool
#                 test CA), `tls_cassandra::`, the node stopped by PID. (The HTTPS listener and
#                 https notice tests, `tls::`, run in the rust stage.)
#   6 edge        the real Worker in workerd (wrangler dev) against real origins (including the
#                 origin/edge parity of bad inputs), and a dry-run deploy
#   6b deploy     the origin image built (podman) and run against the test Cassandra, stopped by
#                 id; make deploy-check (and its failure without the page build); the Helm chart
#   6c compose    docker-compose.yml brought up with podman-compose (local stand-in Cassandra and
#                 NATS images, secrets as files), a signed game start/read/exit through the
#                 origins, the region registry checked, torn down by id (make compose-test; about
#                 2 min, reusing the deploy stage's origin image)
#   7 contract    Schemathesis fuzzing of a running origin and edge from docs/openapi.yaml and
#                 docs/openapi-edge.yaml (scripts/fuzz-api.sh); the documents themselves are
#                 checked against the api crate by the rust stage (origin/tests/it/openapi.rs)
#   8 frontend    vitest unit tests, then the page in headless Chromium against the full stack
#   8b traces     one start and one exit through the real Worker and an origin, sent with one
#                 client traceparent, become one trace in a real Jaeger (edge span -> origin
#                 request -> service step -> Cassandra statements), queried through its API;
#                 no span or log holds a token or a secret (edge-worker/trace-tests/). Jaeger
#                 (13 min of CPU to build once) is built in the background at low priority from
#                 the start of the run into .cache/bin, so the build overlaps the I/O-bound
#                 stages instead of adding to the run
#   9 multidc     three regions on a three-datacenter Cassandra (eu, us, asia): the one-active-game
#                 and idempotency guarantees across regions (needs 127.0.0.1-3:9042 to itself)
#
# TEST_STAGES="rust edge" runs a subset (lint and no_std are cheap; cassandra comes with
# rust/events/edge/contract/frontend).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"
export CASSANDRA_HOSTS="${CASSANDRA_HOSTS:-127.0.0.1:9042}"
# Plain logs: the counts below are read from them.
export NO_COLOR=1 FORCE_COLOR=0 CARGO_TERM_COLOR=never
LOGS="$ROOT/artifacts/test-logs"
mkdir -p "$LOGS"
STAGES="${TEST_STAGES:-lint ops no_std rust events tls edge deploy compose contract frontend traces multidc}"
started_cassandra=""
# The events stage's broker: its own port, monitoring port and store dir, so a `make up`
# broker on 4222 is left alone.
EVENTS_NATS_ENV=(NATS_PORT=14222 NATS_MONITOR_PORT=18222 "NATS_RUN_DIR=$ROOT/.run/nats-test")
started_nats=""
# Its three-node cluster (scripts/nats.sh start-cluster), started once for the stage.
EVENTS_CLUSTER_ENV=(NATS_CLUSTER_PORT=14231 NATS_CLUSTER_MONITOR_PORT=18231 NATS_ROUTE_PORT=16231
  "NATS_CLUSTER_RUN_DIR=$ROOT/.run/nats-test-cluster")
started_cluster=""
MULTIDC_RUN_DIR="$ROOT/.run/cassandra-multidc"
started_multidc=""
started_tls_node=""
jaeger_build_pid=""
passed=0
failed=0

cleanup() {
  if [[ -n "$jaeger_build_pid" ]] && kill -0 "$jaeger_build_pid" 2>/dev/null; then
    echo "test: stopping the background Jaeger build" >&2
    kill -TERM -- "-$jaeger_build_pid" 2>/dev/null || true
  fi
  if [[ -n "$started_cluster" ]]; then
    echo "test: stopping the events stage's nats-server cluster" >&2
    env "${EVENTS_CLUSTER_ENV[@]}" scripts/nats.sh wipe-cluster || true
  fi
  if [[ -n "$started_nats" ]]; then
    echo "test: stopping the events stage's nats-server" >&2
    env "${EVENTS_NATS_ENV[@]}" scripts/nats.sh wipe || true
  fi
  if [[ -n "$started_tls_node" ]]; then
    echo "test: stopping the TLS Cassandra node" >&2
    scripts/cassandra.sh stop-tls || true
  fi
  if [[ -n "$started_multidc" ]]; then
    echo "test: stopping the three-datacenter cluster" >&2
    CASSANDRA_RUN_DIR="$MULTIDC_RUN_DIR" scripts/cassandra.sh wipe || true
  fi
  if [[ -n "$started_cassandra" ]]; then
    echo "test: stopping the Cassandra this run started" >&2
    scripts/cassandra.sh stop || true
  fi
}
trap cleanup EXIT

# Adds the counts a runner printed (cargo, node --test, vitest) to the totals.
count() {
  local counts
  counts=$(awk '
    match($0, /test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed/) {
      split(substr($0, RSTART, RLENGTH), w, " "); p += w[4]; f += w[6]
    }
    /^(# |ℹ )pass [0-9]+$/ { p += $NF }
    /^(# |ℹ )fail [0-9]+$/ { f += $NF }
    /^fuzz: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
    /^ *Tests +[0-9]/ {
      line = $0
      while (match(line, /[0-9]+ (passed|failed)/)) {
        split(substr(line, RSTART, RLENGTH), w, " ")
        if (w[2] == "passed") p += w[1]; else f += w[1]
        line = substr(line, RSTART + RLENGTH)
      }
    }
    END { print p + 0, f + 0 }' < <(sed 's/\x1b\[[0-9;]*m//g' "$1"))
  passed=$((passed + ${counts% *}))
  failed=$((failed + ${counts#* }))
}

# run NAME CMD...: runs a step, keeps its log, counts its tests, stops everything on failure.
run() {
  local name="$1"; shift
  local log="$LOGS/$name.log" start=$SECONDS
  echo "=== $name: $*"
  if "$@" 2>&1 | tee "$log"; then
    count "$log"
    echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    count "$log"
    echo "=== $name: FAILED ($((SECONDS - start)) s); log: $log"
    echo "make-test: $passed passed, $((failed > 0 ? failed : 1)) failed"
    exit 1
  fi
}

wants() { [[ " $STAGES " == *" $1 "* ]]; }

# Jaeger for the traces stage: built once into .cache/bin, in the background at the lowest
# priority (its own process group, stopped with the run), so a fresh machine's 13 min of Go
# compilation fills the cores the Cassandra-, broker- and browser-bound stages leave idle.
if wants traces && ! bash scripts/jaeger.sh built >/dev/null 2>&1; then
  setsid nice -n 19 bash scripts/jaeger.sh build >"$LOGS/jaeger-build.log" 2>&1 &
  jaeger_build_pid=$!
  echo "test: building Jaeger in the background (pid $jaeger_build_pid; log: $LOGS/jaeger-build.log)"
fi

ensure_cassandra() {
  [[ -n "$started_cassandra" ]] && return 0
  # `answers` also finds a Cassandra another checkout started (its PID files live there).
  if scripts/cassandra.sh answers; then
    echo "test: using the Cassandra that is already running (tests use their own keyspaces)"
  else
    # Test-only speed-ups (no fsync); `make up` keeps durable defaults.
    export CASSANDRA_FAST=1
    run cassandra scripts/cassandra.sh start
    started_cassandra=1
  fi
}

if wants lint; then
  run fmt cargo fmt --all -- --check
  # shellcheck disable=SC2016 # expanded by the inner bash
  run shell-syntax bash -c 'for f in scripts/*.sh scripts/lib/*.sh .ci/run; do bash -n "$f" || exit 1; done'
  run config-docs python3 scripts/check-config-docs.py
  run secret-leaks-self-test bash scripts/check-secret-leaks.sh --self-test
  run clippy cargo clippy --workspace --all-targets -- -D warnings
  run clippy-wasm cargo clippy -p edge-worker -p shared-engine-wasm --target wasm32-unknown-unknown -- -D warnings
fi
if wants ops; then
  run promtool-build bash scripts/prometheus.sh build-promtool
  run ops-check bash scripts/ops-check.sh
fi
if wants no_std; then
  run no-std cargo build -p shared-engine --no-default-features --target wasm32-unknown-unknown
fi
if wants rust; then
  run build-tests cargo test --workspace --no-run
  # The events crate's tests start their own nats-servers (free ports, stopped by PID).
  run nats-build bash scripts/nats.sh build
  # it::ops runs promtool check metrics on a real origin's /metrics.
  run promtool-build bash scripts/prometheus.sh build-promtool
  ensure_cassandra
  run rust-tests cargo test --workspace
fi
if wants events; then
  ensure_cassandra
  run nats-start env "${EVENTS_NATS_ENV[@]}" scripts/nats.sh start
  started_nats=1
  started_cluster=1
  run nats-cluster-start env "${EVENTS_CLUSTER_ENV[@]}" scripts/nats.sh start-cluster
  # The tests share this server (EVENTS_TEST_NATS=script) and this cluster
  # (EVENTS_TEST_CLUSTER=script), and stop/kill/start them through the script, by PID.
  run events-tests env "${EVENTS_NATS_ENV[@]}" "${EVENTS_CLUSTER_ENV[@]}" EVENTS_TEST_NATS=script \
    EVENTS_TEST_CLUSTER=script \
    cargo test -p origin --test it -- --ignored --test-threads=1 --nocapture events::
  env "${EVENTS_CLUSTER_ENV[@]}" scripts/nats.sh wipe-cluster
  started_cluster=""
  env "${EVENTS_NATS_ENV[@]}" scripts/nats.sh wipe
  started_nats=""
fi
if wants tls; then
  # Its own node (own ports and run dir), started once for the stage; the 9042 node is unused.
  started_tls_node=1
  run cassandra-tls env CASSANDRA_FAST=1 scripts/cassandra.sh start-tls
  run tls-cassandra-tests cargo test -p origin --test it -- --ignored tls_cassandra::
  scripts/cassandra.sh stop-tls
  started_tls_node=""
fi
if wants edge; then
  ensure_cassandra
  run origin-build cargo build -p origin
  run worker-build bash scripts/build-worker.sh
  run edge-tests node --test --test-concurrency=1 --test-reporter=tap edge-worker/tests/
  run edge-dry-run npm run --silent edge:dry-run
fi
if wants deploy; then
  # The origin image (podman, offline base) against this run's Cassandra; the production Worker
  # bundle checked (make deploy-check), and shown to fail without the page build; the Helm chart.
  ensure_cassandra
  # The debug origin the edge stage built (stripped in the image), not another release build.
  run container env CONTAINER_PROFILE="${CONTAINER_PROFILE:-debug}" bash scripts/container.sh test
  run deploy-check bash scripts/deploy-check.sh --self-test
  run helm bash scripts/helm.sh
fi
if wants compose; then
  # docker-compose.yml up with podman-compose on local stand-in images, a signed game start/exit
  # through the origins, torn down (scripts/compose-test.sh). Its own Cassandra runs in a
  # container; the test Cassandra is left alone. The origin image is the one the deploy stage
  # just built (never a second build); without that stage the script builds its own.
  if wants deploy; then
    run compose-test env COMPOSE_TEST_ORIGIN_IMAGE="${IMAGE:-localhost/seedsync-origin:test}" \
      COMPOSE_TEST_ORIGIN_PREBUILT=1 bash scripts/compose-test.sh
  else
    run compose-test bash scripts/compose-test.sh
  fi
fi
if wants contract; then
  ensure_cassandra
  run contract-fuzz bash scripts/fuzz-api.sh
fi
if wants frontend; then
  ensure_cassandra
  # The e2e stack reuses the debug origin the earlier stages built instead of a release build.
  export STACK_PROFILE="${STACK_PROFILE:-debug}"
  run frontend-typecheck npm --prefix frontend run typecheck
  run frontend-unit npm --prefix frontend test
  run frontend-e2e npm --prefix frontend run e2e
fi
if wants traces; then
  ensure_cassandra
  if [[ -n "$jaeger_build_pid" ]]; then
    echo "=== jaeger-build: waiting for the background build (log: $LOGS/jaeger-build.log)"
    if ! wait "$jaeger_build_pid"; then
      jaeger_build_pid=""
      echo "=== jaeger-build: FAILED; log: $LOGS/jaeger-build.log"
      tail -20 "$LOGS/jaeger-build.log"
      echo "make-test: $passed passed, $((failed > 0 ? failed : 1)) failed"
      exit 1
    fi
    jaeger_build_pid=""
  fi
  run jaeger-build bash scripts/jaeger.sh build
  run origin-build cargo build -p origin
  run worker-build bash scripts/build-worker.sh
  run trace-tests node --test --test-concurrency=1 --test-reporter=tap edge-worker/trace-tests/
fi
if wants multidc; then
  # Every cluster listens on 127.0.0.x:9042, so the single node this run started makes way.
  if [[ -n "$started_cassandra" ]]; then
    scripts/cassandra.sh stop
    started_cassandra=""
  fi
  if scripts/cassandra.sh status >/dev/null 2>&1; then
    echo "=== multidc: SKIPPED: a Cassandra this run did not start holds 127.0.0.1:9042 (make down, then rerun)"
  else
    export CASSANDRA_FAST=1
    started_multidc=1
    run cassandra-multidc env CASSANDRA_RUN_DIR="$MULTIDC_RUN_DIR" scripts/cassandra.sh start --nodes 3 --dcs eu,us,asia
    run multidc-tests cargo test -p origin --test it -- --ignored multi_dc::
    CASSANDRA_RUN_DIR="$MULTIDC_RUN_DIR" scripts/cassandra.sh wipe
    started_multidc=""
  fi
fi
echo "make-test: $passed passed, $failed failed"
((failed == 0))
