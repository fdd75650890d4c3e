#!/usr/bin/env bash
# The origin image built and run with podman, offline (no registry is reachable on CI machines):
#   1. podman, runc, debootstrap from apt if missing; a project containers.conf (runc: crun refuses
#      hybrid cgroups; ulimits root may not raise) written to .run/podman/
#   2. a local debian:bookworm-slim (debootstrap minbase, tarball cached in .cache/images/) so the
#      Dockerfile's unchanged `FROM debian:bookworm-slim` resolves without Docker Hub
#   3. the image from origin/Dockerfile's `runtime-prebuilt` target around the host's release binary
#   4. one container against the test Cassandra (its own keyspace and region): /health, /ready,
#      one POST /game/start, then `podman stop` by id must end it within a few seconds (SIGTERM as
#      PID 1), `podman rm` by id.
# Usage: scripts/container.sh [base|build|test|run] (default test = build + run). Sourcing it defines
# the functions without running anything.
# Env: CASSANDRA_HOSTS (127.0.0.1:9042), IMAGE (localhost/seedsync-origin:test), CONTAINER_PORT (18480),
#      CONTAINER_PROFILE (release|debug, default release; make test uses the debug build its edge
#      stage already made, stripped), ORIGIN_BINARY (any prebuilt glibc origin binary instead).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"
IMAGE="${IMAGE:-localhost/seedsync-origin:test}"
PORT="${CONTAINER_PORT:-18480}"
CACHE="$ROOT/.cache/images"
RUN_DIR="$ROOT/.run/podman"
mkdir -p "$CACHE" "$RUN_DIR"

need_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

install_tools() {
  local missing=()
  for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]})); then
    echo "container: installing ${missing[*]} from apt"
    need_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq podman runc debootstrap >/dev/null
  fi
}

write_conf() {
  local hard
  hard="$(ulimit -Hn)"
  cat > "$RUN_DIR/containers.conf" <<CONF
# Written by scripts/container.sh (see deploy/podman/containers.conf for the reasons).
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$RUN_DIR/containers.conf"
}

# A Debian mirror from the host's apt sources (the machines have no route to other mirrors).
debian_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)"
  [[ -n "$uri" ]] || uri="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

prune_rootfs() {
  need_root rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old \
    "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/* \
    "$1"/var/log/*.log "$1"/var/log/apt/*
}

base_image() {
  local ref=docker.io/library/debian:bookworm-slim tarball="$CACHE/debian-bookworm-minbase-v2.tar"
  if podman image exists "$ref"; then return 0; fi
  if [[ ! -s "$tarball" ]]; then
    local start=$SECONDS rootfs
    rootfs="$(mktemp -d "$RUN_DIR/rootfs.XXXXXX")"
    echo "container: debootstrap bookworm minbase from $(debian_mirror) (once; cached in $tarball)"
    need_root debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$RUN_DIR/debootstrap.log" 2>&1
    # What the official slim image also leaves out: apt lists and caches, docs, man pages, locales.
    prune_rootfs "$rootfs"
    need_root tar -C "$rootfs" -cf "$tarball.tmp" .
    need_root rm -rf "$rootfs"
    mv "$tarball.tmp" "$tarball"
    echo "container: base rootfs in $((SECONDS - start)) s"
  fi
  podman import -q "$tarball" "$ref" >/dev/null
}

# The public multi-stage build copies the workspace member by member (cargo loads the whole
# workspace even for `-p origin`); one missing COPY breaks it for everyone with Docker Hub, and
# the offline path below would never notice. So every member must have its COPY line.
check_dockerfile_members() {
  python3 - <<'PY'
import re, sys, tomllib
members = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["members"]
copied = set(re.findall(r"^COPY\s+(\S+)\s+\1\s*$", open("origin/Dockerfile").read(), re.M))
missing = sorted({m.split("/")[0] for m in members} - copied)
if missing:
    sys.exit(f"container: origin/Dockerfile does not COPY workspace member(s) {missing}")
PY
}

build() {
  check_dockerfile_members
  install_tools
  write_conf
  base_image
  local start=$SECONDS ctx="$RUN_DIR/context"
  local profile="${CONTAINER_PROFILE:-release}"
  local binary="${ORIGIN_BINARY:-$CARGO_TARGET_DIR/$profile/origin}"
  if [[ -z "${ORIGIN_BINARY:-}" ]]; then
    if [[ "$profile" == release ]]; then cargo build --release -p origin; else cargo build -p origin; fi
  fi
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$binary" "$ctx/origin"
  strip "$ctx/origin" 2>/dev/null || true
  podman build -q --pull=never -f origin/Dockerfile --target runtime-prebuilt -t "$IMAGE" "$ctx" >/dev/null
  echo "container: image $IMAGE built in $((SECONDS - start)) s (incl. cargo), size $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
}

wait_http() { # url status-regex timeout
  local deadline=$((SECONDS + $3)) code
  while ((SECONDS < deadline)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)"
    [[ "$code" =~ ^($2)$ ]] && return 0
    sleep 0.5
  done
  echo "container: $1 did not answer $2 within $3 s (last $code)" >&2
  return 1
}

run_test() {
  write_conf
  CID=""
  # Something already answering on the port would make every check below meaningless.
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then
    echo "container: 127.0.0.1:$PORT is taken; set CONTAINER_PORT" >&2; return 1
  fi
  local keyspace="container_$$_$RANDOM" secret
  secret="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
  cleanup() { if [[ -n "${CID:-}" ]]; then podman rm -f -t 0 "$CID" >/dev/null 2>&1 || true; fi; }
  trap cleanup EXIT
  CID="$(podman run -d --network host \
    -e HOST=127.0.0.1 -e PORT="$PORT" -e REGION=eu -e PUBLIC_URL="http://127.0.0.1:$PORT" \
    -e CASSANDRA_HOSTS="${CASSANDRA_HOSTS:-127.0.0.1:9042}" -e CASSANDRA_KEYSPACE="$keyspace" \
    -e CASSANDRA_REPLICATION=SimpleStrategy:1 -e OWNER_TOKEN_SECRET="$secret" \
    -e TRUSTED_PROXIES=127.0.0.1 "$IMAGE")"
  local id="$CID"
  echo "container: started ${id:0:12} (keyspace $keyspace, port $PORT)"
  wait_http "http://127.0.0.1:$PORT/health" 200 60 || { podman logs "$id" | tail -30; return 1; }
  wait_http "http://127.0.0.1:$PORT/ready" 200 90 || { podman logs "$id" | tail -30; return 1; }
  # Non-root: the owner of PID 1 as the host sees it (rootful podman maps uids 1:1).
  local uid
  uid="$(ps -o uid= -p "$(podman inspect --format '{{.State.Pid}}' "$id")" | tr -d ' ')"
  [[ -n "$uid" && "$uid" != 0 ]] || { echo "container: PID 1 runs as uid '${uid}'" >&2; return 1; }
  echo "container: PID 1 runs as uid $uid"
  local body code
  body="$(curl -s -w '\n%{http_code}' -X POST -H 'content-type: application/json' \
    -d "{\"userId\":\"container-$$\"}" "http://127.0.0.1:$PORT/game/start")"
  code="${body##*$'\n'}"; body="${body%$'\n'*}"
  if [[ ! "$code" =~ ^20[01]$ ]] || ! grep -q '"seed"' <<<"$body"; then
    echo "container: POST /game/start answered $code: $body" >&2; podman logs "$id" | tail -30; return 1
  fi
  echo "container: POST /game/start -> $code $(grep -o '"seed":[0-9]*' <<<"$body")"
  local t0=$SECONDS
  podman stop -t 10 "$id" >/dev/null
  local took=$((SECONDS - t0)) status
  status="$(podman inspect --format '{{.State.ExitCode}}' "$id")"
  echo "container: podman stop took ${took} s, exit code $status; last log line: $(podman logs "$id" 2>&1 | tail -n 1)"
  ((took <= 5)) || { echo "container: SIGTERM not handled promptly (${took} s)" >&2; return 1; }
  [[ "$status" == 0 ]] || { echo "container: exit code $status after SIGTERM" >&2; return 1; }
  podman rm "$id" >/dev/null && CID=""
  echo "container: removed; ok"
}

# Sourced (scripts/compose-test.sh reuses install_tools, write_conf, base_image, build, wait_http):
# define the functions only.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi

case "${1:-test}" in
  base) install_tools; write_conf; base_image ;;
  build) build ;;
  test) build; run_test ;;
  run) run_test ;;
  *) echo "usage: $0 [base|build|test|run]" >&2; exit 2 ;;
esac
