#!/usr/bin/env bash
# Engine benchmark: native (cargo bench) and the wasm build run in node, same machine, same run;
# prints state_at at step 864,000 (24 h of 100 ms ticks) for both and their ratio, for the default
# algorithm and for interval-v0 (also at step 86,400,000: 24 h of 1 ms ticks).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
native_log="$(mktemp)"
trap 'rm -f "$native_log"' EXIT
cargo bench -p shared-engine --bench engine 2>/dev/null | tee "$native_log"
native_us="$(sed -n 's/^BENCH native_state_at_864000_us=\([0-9.]*\).*/\1/p' "$native_log")"
native_interval_us="$(sed -n 's/^BENCH native_interval_v0_state_at_864000_us=\([0-9.]*\).*/\1/p' "$native_log")"
bash scripts/build-engine-wasm.sh >/dev/null
node scripts/bench-engine-wasm.mjs "$native_us" "$native_interval_us"
