#!/usr/bin/env bash
# Builds the engine's wasm bindings with cargo + the wasm-bindgen CLI (from crates.io, version
# pinned to Cargo.lock's wasm-bindgen), for the browser page and for node tools/benchmarks.
#   target/engine-wasm/web/   ES module for browsers (the frontend imports it)
#   target/engine-wasm/node/  CommonJS module for node (vector checks, benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "build-engine-wasm: installing wasm-bindgen-cli $want (found: ${have:-none})" >&2
  cargo install wasm-bindgen-cli --version "$want"
fi
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

cargo build --release --target wasm32-unknown-unknown -p shared-engine-wasm
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/shared_engine_wasm.wasm"
out="$CARGO_TARGET_DIR/engine-wasm"
rm -rf "$out/web" "$out/node"
wasm-bindgen --target web --out-dir "$out/web" --out-name shared_engine "$wasm"
wasm-bindgen --target nodejs --out-dir "$out/node" --out-name shared_engine "$wasm"
echo "build-engine-wasm: $(wc -c <"$out/web/shared_engine_bg.wasm") bytes -> $out/{web,node}"
