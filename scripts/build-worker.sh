#!/usr/bin/env bash
# Builds the edge Worker (edge-worker/) to edge-worker/build/{index.js,index_bg.wasm}, offline:
# worker-build gets wasm-bindgen, esbuild and wasm-opt from local paths (WASM_BINDGEN_BIN,
# ESBUILD_BIN, WASM_OPT_BIN) instead of downloading them from GitHub. Run scripts/setup-edge.sh
# once first. Also wrangler's [build] command, so it is a no-op when nothing changed
# (FORCE=1 rebuilds anyway).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"

# The page is the Worker's [assets] directory: build it when missing (a deploy must never ship an
# empty site; wrangler also refuses to start without the directory). FRONTEND_DIST overrides the
# checked directory (scripts/deploy-check.sh's self-test).
DIST="${FRONTEND_DIST:-frontend/dist}"
if [[ ! -s "$DIST/index.html" && -z "${FRONTEND_DIST:-}" ]]; then
  echo "build-worker: $DIST/index.html missing; building the frontend (npm --prefix frontend run build)"
  npm --prefix frontend run build >&2 || { echo "build-worker: the frontend build failed" >&2; exit 1; }
fi
if [[ ! -s "$DIST/index.html" ]]; then
  echo "build-worker: $DIST/index.html missing or empty; run: npm --prefix frontend ci && npm --prefix frontend run build" >&2
  exit 1
fi

OUT=edge-worker/build
if [[ -z "${FORCE:-}" && -f "$OUT/index.js" && -f "$OUT/index_bg.wasm" ]]; then
  # The Worker's own sources and the workspace crates it is built from (contract, engine, kernel,
  # owner tokens); kept in step with wrangler.toml's watch_dir.
  newer="$(find edge-worker/src edge-worker/Cargo.toml api/src api/Cargo.toml shared-engine/src \
    shared-engine/Cargo.toml kernel/src kernel/Cargo.toml owner-token/src owner-token/Cargo.toml \
    Cargo.lock Cargo.toml scripts/build-worker.sh \
    -newer "$OUT/index_bg.wasm" -print -quit)"
  if [[ -z "$newer" ]]; then
    echo "build-worker: $OUT is up to date"
    exit 0
  fi
fi

WANT_BINDGEN="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || true)}"
have="$("${WASM_BINDGEN_BIN:-false}" --version 2>/dev/null | awk '{print $2}' || true)"
if [[ -z "$have" || "$have" != "$WANT_BINDGEN" ]]; then
  echo "build-worker: need wasm-bindgen $WANT_BINDGEN (found '${have:-none}'); run scripts/setup-edge.sh" >&2
  exit 1
fi
if ! command -v worker-build >/dev/null; then
  echo "build-worker: worker-build missing; run scripts/setup-edge.sh" >&2
  exit 1
fi
# esbuild: the native binary of the platform package if npm installed it, else the JS launcher.
esbuild_native="$(ls "$ROOT"/node_modules/@esbuild/*/bin/esbuild 2>/dev/null | head -n1 || true)"
export ESBUILD_BIN="${ESBUILD_BIN:-${esbuild_native:-$ROOT/node_modules/.bin/esbuild}}"
# wasm-opt from npm binaryen (Debian's is too old to read current wasm).
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
for bin in "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  [[ -x "$bin" ]] || { echo "build-worker: $bin missing; run scripts/setup-edge.sh" >&2; exit 1; }
done

# Size matters for the upload limit and cold starts: optimise the release build for size. Set
# through the environment because profiles are workspace-wide in Cargo.toml.
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}"
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-true}"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}"
export CARGO_PROFILE_RELEASE_PANIC="${CARGO_PROFILE_RELEASE_PANIC:-abort}"

cd edge-worker
worker-build --release
cd "$ROOT"

# worker-build appends `--debuginfo` to the wasm-opt arguments, which keeps the wasm "name"
# section (function names, ~120 KB) in spite of `--strip-debug`. Strip it here: names only
# serve stack traces, and they would cost about a fifth of the upload. No optimisation pass
# runs, so the features must simply be the ones worker-build enables. KEEP_WASM_NAMES=1 keeps
# them (readable traces under `wrangler dev`).
if [[ -z "${KEEP_WASM_NAMES:-}" ]]; then
  "$WASM_OPT_BIN" "$OUT/index_bg.wasm" -o "$OUT/index_bg.wasm" --strip-debug --strip-producers \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
fi
ls -l "$OUT/index.js" "$OUT/index_bg.wasm"
printf 'build-worker: wasm %s bytes, gzip %s bytes\n' \
  "$(wc -c < "$OUT/index_bg.wasm")" "$(gzip -9c "$OUT/index_bg.wasm" | wc -c)"
