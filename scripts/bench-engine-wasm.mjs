// Times the engine's wasm build (the one the browser runs) in node: state_at at step 864,000,
// median of 15 batches, and prints the ratio to the native figure passed as argv[2] (in us).
// Then the same for interval-v0 (native figure in argv[3]), and interval-v0 at step 86,400,000.
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";

const require = createRequire(import.meta.url);
// Built by scripts/build-engine-wasm.sh into $CARGO_TARGET_DIR (default: target/).
const targetDir = resolve(process.env.CARGO_TARGET_DIR ?? new URL("../target", import.meta.url).pathname);
const engine = require(resolve(targetDir, "engine-wasm/node/shared_engine.js"));
const STEP = 864_000;
const nativeUs = Number(process.argv[2]);
const nativeIntervalUs = Number(process.argv[3]);

/** Median time of one state_at at `step`, in us, over 15 batches of `iterations` calls. */
function median(step, iterations, algorithm) {
  engine.benchStateAt(0x5eedcafe, step, 3, algorithm); // warm-up (compile tiers)
  const samples = [];
  for (let batch = 0; batch < 15; batch++) {
    const t0 = performance.now();
    engine.benchStateAt(0x5eedcafe, step, iterations, algorithm);
    samples.push(((performance.now() - t0) * 1000) / iterations);
  }
  samples.sort((a, b) => a - b);
  return samples[7];
}

function ratio(wasm, native) {
  return Number.isFinite(native) && native > 0 ? (wasm / native).toFixed(2) : "n/a";
}

const wasmUs = median(STEP, 5); // the default algorithm
console.log(`wasm (node ${process.version}) state_at(step 864000) = ${wasmUs.toFixed(1)} us   ${((wasmUs * 1000) / STEP).toFixed(3)} ns/step`);
console.log(`BENCH wasm_state_at_864000_us=${wasmUs.toFixed(1)} native_us=${nativeUs} wasm_over_native=${ratio(wasmUs, nativeUs)}`);

const intervalUs = median(STEP, 200, "interval-v0");
console.log(`wasm (node ${process.version}) interval-v0 state_at(step 864000) = ${intervalUs.toFixed(2)} us`);
console.log(
  `BENCH wasm_interval_v0_state_at_864000_us=${intervalUs.toFixed(2)} native_us=${nativeIntervalUs} wasm_over_native=${ratio(intervalUs, nativeIntervalUs)}`,
);
// benchStateAt uses 100 ms ticks, but a tick's step does not depend on the tick length.
const dayOfMsUs = median(86_400_000, 3, "interval-v0");
console.log(`BENCH wasm_interval_v0_state_at_86400000_us=${dayOfMsUs.toFixed(1)}`);
