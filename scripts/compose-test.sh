#!/usr/bin/env bash
# `make compose-test` (make test's `compose` stage): docker-compose.yml brought up for real with
# podman-compose, offline, a game started and exited through an origin, everything torn down.
#   1. podman-compose (pinned, a venv under .cache/); podman, runc and the debootstrap base image
#      from scripts/container.sh (sourced: its functions, not a copy)
#   2. images under the names docker-compose.yml uses, so the file runs unchanged:
#      docker.io/library/cassandra:5.0 and docker.io/library/nats:2.15-alpine as local stand-ins
#      (deploy/podman/cassandra, deploy/podman/nats: the Maven Central jars scripts/cassandra.sh
#      fetches, the nats-server scripts/nats.sh builds; an image of that name that is not our
#      stand-in, e.g. the real one pulled from Docker Hub, is used as it is), and the origin from
#      container.sh's build (the debug binary by default; make test reuses its deploy stage's image)
#   3. the three required secrets generated fresh into files under .run/compose-test/secrets/ (a
#      mode-700 directory; SEEDSYNC_SECRETS_DIR), which compose mounts as `secrets:` and the origins
#      read through NAME_FILE; checked absent from every container's environment
#   4. up with deploy/podman/compose.test.yml (no host ports, smaller heap, the image above), in
#      depends_on order: cassandra + nats until their compose healthchecks pass, `migrate` until it
#      exits 0, then the three origins until /ready answers 200
#   5. through origin-eu, signed as the edge signs (scripts/edge-sign.py; production mode refuses
#      unsigned calls, which is checked too): POST /game/start, GET /game/{id} from origin-us,
#      POST /game/exit with the owner token
#   6. GET /regions: every origin registered its own PUBLIC_URL (http://origin-<region>:8080)
#   7. `podman-compose down -v` in an EXIT trap, then anything of the project left removed by id
# Why the script runs the healthchecks and the ordering itself: podman 4.3 (Debian bookworm) runs
# healthchecks from systemd timers, which these machines do not have, and podman-compose ignores
# `condition: service_healthy` before podman 4.6. `podman healthcheck run` runs the compose file's
# own healthcheck command in the container.
# Usage: scripts/compose-test.sh [--setup] (--setup: only install podman-compose; scripts/setup.sh).
# Env: COMPOSE_TEST_PROJECT (seedsync-composetest), COMPOSE_TEST_ORIGIN_IMAGE
#      (localhost/seedsync-origin:compose-test), COMPOSE_TEST_ORIGIN_PREBUILT=1 (use that image as
#      it is if it exists: make test's deploy stage built it this run), CONTAINER_PROFILE (debug),
#      COMPOSE_TEST_TIMEOUT (seconds for the whole stack to come up, 420), COMPOSE_TEST_KEEP=1
#      (leave the stack up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export IMAGE="${COMPOSE_TEST_ORIGIN_IMAGE:-localhost/seedsync-origin:compose-test}"
# deploy/podman/compose.test.yml reads the origin image from this name.
export COMPOSE_TEST_ORIGIN_IMAGE="$IMAGE"
export CONTAINER_PROFILE="${CONTAINER_PROFILE:-debug}"
# shellcheck source=scripts/container.sh
source "$ROOT/scripts/container.sh"

PROJECT="${COMPOSE_TEST_PROJECT:-seedsync-composetest}"
UP_TIMEOUT="${COMPOSE_TEST_TIMEOUT:-420}"
WORK="$ROOT/.run/compose-test"
VENV="$ROOT/.cache/podman-compose-venv"
PODMAN_COMPOSE_VERSION=1.6.0
CASSANDRA_IMAGE=docker.io/library/cassandra:5.0
NATS_IMAGE=docker.io/library/nats:2.15-alpine
STANDIN_LABEL=org.seedsync.standin
INPUTS_LABEL=org.seedsync.inputs
mkdir -p "$WORK"
TIMINGS=()

say() { echo "compose-test: $*"; }
fail() { echo "compose-test: FAIL: $*" >&2; exit 1; }
timed() { # label command... : runs it, records its duration
  local label=$1 start=$SECONDS
  shift
  "$@"
  TIMINGS+=("$label $((SECONDS - start)) s")
}

install_compose() {
  if "$VENV/bin/podman-compose" --version 2>/dev/null | grep -q "podman-compose version $PODMAN_COMPOSE_VERSION"; then
    return 0
  fi
  say "installing podman-compose $PODMAN_COMPOSE_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION"
}

# True if $1 exists locally and is not one of our stand-ins (then it is the real image: keep it).
foreign_image() {
  podman image exists "$1" &&
    [[ "$(podman image inspect --format "{{index .Labels \"$STANDIN_LABEL\"}}" "$1")" != 1 ]]
}

# The hash of a stand-in's build context and base image: an image labelled with the same hash is
# up to date and is not rebuilt (podman's layer cache would still re-read every COPY).
inputs_hash() { # context
  {
    podman image inspect --format '{{.Id}}' docker.io/library/debian:bookworm-slim
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

standin_build() { # image context
  local hash
  hash="$(inputs_hash "$2")"
  if podman image exists "$1" &&
    [[ "$(podman image inspect --format "{{index .Labels \"$INPUTS_LABEL\"}}" "$1")" == "$hash" ]]; then
    say "$1 (stand-in) up to date ($hash)"
    return 0
  fi
  timeout 900 podman build -q --pull=never --network host --label "$STANDIN_LABEL=1" \
    --label "$INPUTS_LABEL=$hash" -t "$1" "$2" >/dev/null
  say "$1 (stand-in) built ($hash), $(podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1/1e6}')"
}

# The host's JDK (the one scripts/cassandra.sh runs) and the directory its config symlinks point
# into (Debian: /etc/java-17-openjdk), both bind-mounted into the Cassandra stand-in.
find_java() {
  local java home etc
  java="$(readlink -f "${JAVA_HOME:+$JAVA_HOME/bin/}$(command -v java || echo java)")"
  [[ -x "$java" ]] || fail "no java on PATH (scripts/cassandra.sh needs one too)"
  home="$(dirname "$(dirname "$java")")"
  etc="$(dirname "$(readlink -f "$home/lib/jvm.cfg")")"
  "$java" -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])' || fail "$java is not Java 17+"
  export COMPOSE_TEST_JAVA_HOME="$home" COMPOSE_TEST_JAVA_ETC="$etc"
}

build_cassandra() {
  find_java
  # The jars the test Cassandra already uses (make test's cassandra stage fetched them); only a
  # machine without a complete 5.0.x set asks Maven Central (`fetch` always re-resolves, ~15 s).
  local versions="$ROOT/.cache/cassandra/versions" version
  newest() { ls "$versions" 2>/dev/null | grep '^5\.0\.' | sort -V | tail -n 1; }
  version="${CASSANDRA_VERSION:-$(newest)}"
  if [[ -z "$version" || ! -f "$versions/$version/COMPLETE" ]]; then
    timeout 900 scripts/cassandra.sh fetch >/dev/null
    version="${CASSANDRA_VERSION:-$(newest)}"
  fi
  [[ -f "$versions/$version/COMPLETE" ]] || fail "no Cassandra jars for '$version'"
  export COMPOSE_TEST_CASSANDRA_LIB="$versions/$version/lib"
  if foreign_image "$CASSANDRA_IMAGE"; then say "using the existing $CASSANDRA_IMAGE"; return 0; fi
  local ctx="$WORK/ctx-cassandra"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp -r deploy/podman/cassandra/. "$ctx/"
  cp scripts/cassandra/cassandra.yaml.in "$ctx/"
  # The Java 17 module flags, taken from scripts/cassandra.sh so both run Cassandra alike.
  sed -n '/^readonly MODULE_FLAGS=(/,/^)/p' scripts/cassandra.sh | sed '1d;$d;s/^ *//' >"$ctx/jvm.flags"
  [[ $(wc -l <"$ctx/jvm.flags") -gt 10 ]] || fail "could not read MODULE_FLAGS from scripts/cassandra.sh"
  standin_build "$CASSANDRA_IMAGE" "$ctx"
}

build_nats() {
  if foreign_image "$NATS_IMAGE"; then say "using the existing $NATS_IMAGE"; return 0; fi
  timeout 900 scripts/nats.sh build >/dev/null
  local ctx="$WORK/ctx-nats"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp deploy/podman/nats/Dockerfile deploy/podman/nats/wget "$ctx/"
  cp "$ROOT/.cache/bin/nats-server" "$ctx/"
  standin_build "$NATS_IMAGE" "$ctx"
}

# The origin image: reused as it is when the caller built it this run (make test's deploy stage
# sets COMPOSE_TEST_ORIGIN_PREBUILT=1), else scripts/container.sh's build.
build_origin() {
  if [[ -n "${COMPOSE_TEST_ORIGIN_PREBUILT:-}" ]] && podman image exists "$IMAGE"; then
    say "reusing $IMAGE"
    return 0
  fi
  build
}

# The three required secrets as compose `secrets:` files (SEEDSYNC_SECRETS_DIR): a fresh value
# each run, in a mode-700 directory; the files themselves are readable by the containers' non-root
# users (a bind-mounted file keeps its host owner and mode). No secret enters an environment.
write_secrets() {
  local dir="$WORK/secrets" name
  rm -rf "$dir"
  install -d -m 700 "$dir"
  for name in owner_token_secret registry_secret edge_origin_secret; do
    (umask 022; head -c 48 /dev/urandom | base64 | tr -d '\n' >"$dir/$name")
  done
  export SEEDSYNC_SECRETS_DIR="$dir"
}

compose() {
  timeout 600 "$VENV/bin/podman-compose" -p "$PROJECT" \
    -f docker-compose.yml -f deploy/podman/compose.test.yml "$@"
}

project_containers() {
  podman ps -aq --filter "label=io.podman.compose.project=$PROJECT"
}

container_of() { # service
  podman ps -aq --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=io.podman.compose.service=$1" | head -n 1
}

address_of() { # service
  podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' \
    "$(container_of "$1")" | awk '{print $1}'
}

# Everything of the project still present, one "kind id" a line: containers, podman-compose's pod,
# volumes and the network.
project_leftovers() {
  local id
  for id in $(project_containers); do echo "container $id"; done
  for id in $(podman pod ls -q --filter "name=^pod_${PROJECT}\$"); do echo "pod $id"; done
  for id in $(podman volume ls -q --filter "label=io.podman.compose.project=$PROJECT"); do echo "volume $id"; done
  for id in $(podman volume ls -q | grep "^${PROJECT}_" || true); do echo "volume $id"; done
  for id in $(podman network ls -q --filter "name=^${PROJECT}_default\$"); do echo "network $id"; done
}

# Removes whatever project_leftovers lists, by id.
remove_leftovers() {
  local kind id
  while read -r kind id; do
    case "$kind" in
      container) podman rm -f -t 0 "$id" ;;
      pod) podman pod rm -f -t 0 "$id" ;;
      volume) podman volume rm -f "$id" ;;
      network) podman network rm -f "$id" ;;
    esac >/dev/null 2>&1 || true
  done < <(project_leftovers | sort -u)
}

# The EXIT trap: logs on failure, the containers stopped by id (SIGTERM, 10 s), then
# `podman-compose down -v` as a user would run it; anything it left fails the test (and is removed).
teardown() {
  local rc=$? start=$SECONDS ids left
  if [[ -n "${COMPOSE_TEST_KEEP:-}" ]]; then say "COMPOSE_TEST_KEEP set: stack $PROJECT left up"; return; fi
  ids="$(project_containers)"
  if ((rc != 0)) && [[ -n "$ids" ]]; then
    mkdir -p "$ROOT/artifacts/compose-test"
    for id in $ids; do
      podman logs "$id" >"$ROOT/artifacts/compose-test/$(podman inspect --format '{{.Name}}' "$id").log" 2>&1 || true
    done
    say "container logs in artifacts/compose-test/"
  fi
  # shellcheck disable=SC2086 # ids, one word each
  if [[ -n "$ids" ]]; then timeout 60 podman stop -t 10 $ids >/dev/null 2>&1 || say "podman stop failed"; fi
  compose down -v -t 10 >"$WORK/down.log" 2>&1 || say "podman-compose down failed (see $WORK/down.log)"
  left="$(project_leftovers | sort -u)"
  if [[ -n "$left" ]]; then
    say "FAIL: podman-compose down left: $(tr '\n' ' ' <<<"$left")(removed by id now)"
    remove_leftovers
    rc=1
  fi
  if [[ -n "$(project_leftovers)" ]]; then
    say "FAIL: could not remove: $(project_leftovers | tr '\n' ' ')"
    rc=1
  else
    say "torn down in $((SECONDS - start)) s: no container, pod, volume or network of $PROJECT left"
  fi
  if ((${#TIMINGS[@]})); then say "timings: $(IFS=,; echo "${TIMINGS[*]}" | sed 's/,/, /g'), teardown $((SECONDS - start)) s"; fi
  exit "$rc"
}

# Runs the service's own compose healthcheck until it passes (see the header for why).
wait_healthy() { # service timeout
  local id deadline=$((SECONDS + $2))
  id="$(container_of "$1")"
  [[ -n "$id" ]] || fail "no container for $1"
  while ((SECONDS < deadline)); do
    [[ "$(podman inspect --format '{{.State.Running}}' "$id")" == true ]] ||
      fail "$1 exited: $(podman logs "$id" 2>&1 | tail -n 5)"
    if timeout 30 podman healthcheck run "$id" >/dev/null 2>&1; then return 0; fi
    sleep 3
  done
  fail "$1 not healthy within $2 s: $(podman logs "$id" 2>&1 | tail -n 5)"
}

up_stack() {
  local deadline=$((SECONDS + UP_TIMEOUT)) left
  compose up -d --no-build cassandra nats >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "up cassandra nats"; }
  wait_healthy nats 60
  left=$((deadline - SECONDS))
  wait_healthy cassandra "$left"
  say "cassandra and nats healthy after $((SECONDS - deadline + UP_TIMEOUT)) s"
  local phase=$SECONDS
  compose up -d --no-build --no-deps migrate >>"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "up migrate"; }
  local id status
  id="$(container_of migrate)"
  status="$(timeout $((deadline - SECONDS)) podman wait "$id")" || fail "migrate did not finish in time"
  [[ "$status" == 0 ]] || fail "migrate exited $status: $(podman logs "$id" 2>&1 | tail -n 10)"
  say "migrate exited 0 in $((SECONDS - phase)) s: $(podman logs "$id" 2>&1 | tail -n 1)"
  phase=$SECONDS
  compose up -d --no-build --no-deps origin-eu origin-us origin-asia >>"$WORK/up.log" 2>&1 ||
    { cat "$WORK/up.log" >&2; fail "up origins"; }
  for region in eu us asia; do
    local ip
    ip="$(address_of "origin-$region")"
    [[ -n "$ip" ]] || fail "origin-$region has no address"
    wait_http "http://$ip:8080/ready" 200 $((deadline - SECONDS > 5 ? deadline - SECONDS : 5)) ||
      fail "origin-$region ($ip) not ready: $(podman logs "$(container_of "origin-$region")" 2>&1 | tail -n 5)"
  done
  say "origins eu, us, asia ready (/ready 200) in $((SECONDS - phase)) s"
}

# Secrets from files: each origin's environment names the mounted files and holds no secret value
# (the signed calls below then show the origins read the files).
check_secret_files() {
  local region env name value
  for region in eu us asia; do
    env="$(podman inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$(container_of "origin-$region")")"
    for name in owner_token_secret registry_secret edge_origin_secret; do
      value="$(<"$SEEDSYNC_SECRETS_DIR/$name")"
      grep -qxF "${name^^}_FILE=/run/secrets/$name" <<<"$env" || fail "origin-$region: ${name^^}_FILE is not /run/secrets/$name"
      ! grep -qF "$value" <<<"$env" || fail "origin-$region: the value of $name is in its environment"
    done
  done
  say "secrets: files under /run/secrets in every origin, no value in any environment"
}

signed() { # method url [body] [--bearer token]
  timeout 30 python3 scripts/edge-sign.py call --secret-file "$WORK/secrets/edge_origin_secret" "$@"
}

json_field() { # field  (reads JSON on stdin)
  python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"
}

game_round_trip() {
  local eu us user out code body game token
  eu="http://$(address_of origin-eu):8080"
  us="http://$(address_of origin-us):8080"
  user="compose-$$-$RANDOM"
  # Production mode: a call the edge did not sign is refused.
  code="$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d "{\"userId\":\"$user\"}" "$eu/game/start")"
  [[ "$code" == 403 ]] || fail "an unsigned POST /game/start answered $code, not 403 (is SEEDSYNC_ENV=production in effect?)"
  out="$(signed POST "$eu/game/start" "{\"userId\":\"$user\"}")"
  code="${out%%$'\n'*}"; body="${out#*$'\n'}"
  [[ "$code" == 201 ]] || fail "signed POST /game/start answered $code: $body"
  game="$(json_field gameId <<<"$body")"; token="$(json_field ownerToken <<<"$body")"
  [[ -n "$game" && -n "$token" ]] || fail "start answered no gameId/ownerToken: $body"
  say "POST /game/start (origin-eu) -> 201 game $game"
  out="$(signed GET "$us/game/$game")"
  code="${out%%$'\n'*}"; body="${out#*$'\n'}"
  [[ "$code" == 200 && "$(json_field gameId <<<"$body")" == "$game" ]] || fail "GET /game/$game on origin-us answered $code: $body"
  say "GET /game/{id} (origin-us) -> 200"
  out="$(signed POST "$eu/game/exit" "{\"gameId\":\"$game\",\"userId\":\"$user\"}" --bearer "$token")"
  code="${out%%$'\n'*}"; body="${out#*$'\n'}"
  [[ "$code" == 200 && "$(json_field status <<<"$body")" == exited ]] || fail "POST /game/exit answered $code: $body"
  say "POST /game/exit (origin-eu) -> 200 exited"
}

check_regions() {
  local eu deadline=$((SECONDS + 60)) body=""
  eu="http://$(address_of origin-eu):8080"
  while ((SECONDS < deadline)); do
    body="$(curl -s -m 10 "$eu/regions" || true)"
    if python3 - "$body" <<'PY'
import json, sys
try:
    doc = json.loads(sys.argv[1])
except ValueError:
    sys.exit(1)
rows = doc.get("regions", doc) if isinstance(doc, dict) else doc
urls = {r.get("name"): r.get("url") for r in rows}
want = {r: f"http://origin-{r}:8080" for r in ("eu", "us", "asia")}
sys.exit(0 if all(urls.get(r) == u for r, u in want.items()) else 1)
PY
    then
      say "GET /regions: eu, us, asia each at its own http://origin-<region>:8080"
      return 0
    fi
    sleep 2
  done
  fail "GET /regions did not list every origin at its own PUBLIC_URL within 60 s: $body"
}

main() {
  local total=$SECONDS
  case "${1:-}" in
    --setup) install_compose; return 0 ;; # scripts/setup.sh: podman-compose only
    "") ;;
    *) echo "usage: $0 [--setup]" >&2; exit 2 ;;
  esac
  python3 scripts/edge-sign.py --self-test >/dev/null || fail "scripts/edge-sign.py disagrees with trust's golden vector"
  install_tools
  write_conf
  timed compose-install install_compose
  timed base-image base_image
  timed cassandra-image build_cassandra
  timed nats-image build_nats
  timed origin-image build_origin
  write_secrets
  if [[ -n "$(project_leftovers)" ]]; then say "removing the leftovers of an earlier run"; remove_leftovers; fi
  trap teardown EXIT
  timed stack-up up_stack
  check_secret_files
  timed game-round-trip game_round_trip
  timed regions check_regions
  say "ok in $((SECONDS - total)) s (before teardown)"
}

main "$@"
