// Times the engine's wasm build (the one the browser runs) in node: state_at at step 864,000,
// median of 15 batches, and prints the ratio to the native figure passed as argv[2] (in us).
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const require = createRequire(import.meta.url);
const engine = require("../target/engine-wasm/node/shared_engine.js");
const STEP = 864_000;
const nativeUs = Number(process.argv[2]);

engine.benchStateAt(0x5eedcafe, STEP, 3); // warm-up (compile tiers)
const samples = [];
for (let batch = 0; batch < 15; batch++) {
  const iterations = 5;
  const t0 = performance.now();
  engine.benchStateAt(0x5eedcafe, STEP, iterations);
  samples.push(((performance.now() - t0) * 1000) / iterations);
}
samples.sort((a, b) => a - b);
const wasmUs = samples[7];
console.log(`wasm (node ${process.version}) state_at(step 864000) = ${wasmUs.toFixed(1)} us   ${((wasmUs * 1000) / STEP).toFixed(3)} ns/step`);
const ratio = Number.isFinite(nativeUs) && nativeUs > 0 ? (wasmUs / nativeUs).toFixed(2) : "n/a";
console.log(`BENCH wasm_state_at_864000_us=${wasmUs.toFixed(1)} native_us=${nativeUs} wasm_over_native=${ratio}`);
