#!/usr/bin/env bash
# Installs what building and testing seedsync needs on a fresh machine of this project's kind
# (Rust, Java 17 + Maven, Node 20 + npm, Python 3 present). Idempotent and quiet when done.
#   - rust: the wasm32 target, wasm-bindgen-cli and worker-build from crates.io (scripts/setup-edge.sh)
#   - npm: the root tooling (wrangler, Node 22 for it, esbuild, binaryen) and the frontend's deps
#   - Debian: chromium (browser tests), curl (readiness checks), python3-venv (the fuzzer's venv),
#     when running as root
#   - PyPI: Schemathesis into .cache/fuzz-venv (scripts/fuzz-api.sh --setup), podman-compose into
#     .cache/podman-compose-venv (scripts/compose-test.sh --setup; podman itself comes from apt
#     when the deploy stage first needs it, scripts/container.sh)
#   - Cassandra jars from Maven Central are fetched by scripts/cassandra.sh on first start
#   - nats-server (the game-event broker), built from source with go install (Go module proxy)
#     into .cache/bin by scripts/nats.sh build; Debian's golang-go when no Go is installed
#   - promtool (Prometheus rules and dashboard checks), go install from the Go module proxy into
#     .cache/bin by scripts/prometheus.sh build-promtool; the Prometheus server is built on first
#     `make dev` (scripts/prometheus.sh build), not here
#   - Jaeger (traces) is built by `make dev` (scripts/stack.sh up, scripts/jaeger.sh build) and by
#     the test stage that needs it, not here: 13 min of CPU that only those use
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v chromium >/dev/null || missing+=(chromium)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [[ ! -x .cache/bin/nats-server ]] && ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]]; then
  missing+=(golang-go)
fi
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]]; then
    echo "setup: apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install with your package manager: ${missing[*]}" >&2
    exit 1
  fi
fi

bash scripts/setup-edge.sh
if [[ -f frontend/package.json ]] && [[ ! -d frontend/node_modules || frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]]; then
  echo "setup: npm ci (frontend)" >&2
  npm --prefix frontend ci --no-audit --no-fund
fi
bash scripts/fuzz-api.sh --setup
bash scripts/compose-test.sh --setup
bash scripts/nats.sh build
bash scripts/prometheus.sh build-promtool
