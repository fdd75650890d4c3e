#!/usr/bin/env bash
# Prometheus and promtool for seedsync's ops checks and `make dev`, built from source with
# `go install` (Go module proxy) into .cache/bin, once, like nats-server and helm.
#   scripts/prometheus.sh build-promtool   promtool only (what `make test`'s ops stage needs)
#   scripts/prometheus.sh build            prometheus and promtool (what `make dev` needs)
# The binaries land as .cache/bin/promtool-VERSION and prometheus-VERSION. scripts/setup.sh
# builds promtool (make test's ops stage and it::ops need it); scripts/stack.sh builds the
# server on the first `make up`/`make dev` and runs it (started and stopped by PID there).
# Env: PROMETHEUS_VERSION (v0.316.0: the module tag of Prometheus 3.x, ../shared/TOOLCHAIN.md),
#      GO (the go command; default go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE="$ROOT/.cache"
BIN_DIR="$CACHE/bin"
PROMTOOL="$BIN_DIR/promtool-$VERSION"
PROMETHEUS="$BIN_DIR/prometheus-$VERSION"
MODULE=github.com/prometheus/prometheus

say() { printf 'prometheus: %s\n' "$*"; }
die() {
  printf 'prometheus: error: %s\n' "$*" >&2
  exit 1
}

[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "PROMETHEUS_VERSION must look like v0.316.0 (got '$VERSION')"

# go install of the named commands (all from one module, so they share one compilation) into
# .cache/bin, suffixed with the version so a version change rebuilds. `remove_all_sd` (Prometheus
# >= 3.10) leaves out every service-discovery provider (Kubernetes, the clouds, Consul...): we
# scrape static targets and test rules only, and those providers are most of the build's
# modules and compile time.
go_build() {
  local go tmpbin started cmd
  go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
  [[ -x "$go" ]] || die "go is required to build Prometheus (or set GO=)"
  mkdir -p "$BIN_DIR" "$CACHE/go"
  tmpbin="$(mktemp -d)"
  started=$SECONDS
  local pkgs=()
  for cmd in "$@"; do pkgs+=("$MODULE/cmd/$cmd@$VERSION"); done
  say "building $* $VERSION (go install from the Go module proxy, once)"
  GOBIN="$tmpbin" GOPATH="$CACHE/go" GOCACHE="$CACHE/go/build" GOMODCACHE="$CACHE/go/pkg/mod" \
    GOFLAGS="-trimpath -modcacherw -tags=remove_all_sd" CGO_ENABLED=0 nice "$go" install "${pkgs[@]}"
  for cmd in "$@"; do mv "$tmpbin/$cmd" "$BIN_DIR/$cmd-$VERSION"; done
  rmdir "$tmpbin"
  say "built $* in $((SECONDS - started)) s"
}

build_promtool() {
  [[ -x $PROMTOOL ]] || go_build promtool
}

build_all() {
  local want=()
  [[ -x $PROMTOOL ]] || want+=(promtool)
  [[ -x $PROMETHEUS ]] || want+=(prometheus)
  ((${#want[@]} == 0)) || go_build "${want[@]}"
}

case "${1:-}" in
  build-promtool) build_promtool ;;
  build) build_all ;;
  *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
