#!/usr/bin/env node
// Makes the shared engine's wasm bindings available to the page: runs
// scripts/build-engine-wasm.sh when its output is missing or older than the engine's sources,
// then copies the browser build into src/engine/generated/ (git-ignored, never committed).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, '..');
const root = resolve(frontend, '..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, 'target');
const webDir = join(targetDir, 'engine-wasm', 'web');
const outDir = join(frontend, 'src', 'engine', 'generated');
const files = ['shared_engine.js', 'shared_engine.d.ts', 'shared_engine_bg.wasm', 'shared_engine_bg.wasm.d.ts'];

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

const sources = [
  join(root, 'shared-engine', 'src'),
  join(root, 'shared-engine', 'Cargo.toml'),
  join(root, 'shared-engine', 'wasm', 'src'),
  join(root, 'shared-engine', 'wasm', 'Cargo.toml'),
  join(root, 'Cargo.lock'),
];
const sourceTime = Math.max(...sources.map(newestMtime));
const builtTime = Math.min(...files.map((f) => (existsSync(join(webDir, f)) ? statSync(join(webDir, f)).mtimeMs : 0)));

if (builtTime === 0 || builtTime < sourceTime || process.env.SEEDSYNC_REBUILD_ENGINE === '1') {
  console.log(`prepare-engine: building the engine wasm (${builtTime === 0 ? 'missing' : 'stale'})`);
  execFileSync('bash', [join(root, 'scripts', 'build-engine-wasm.sh')], { cwd: root, stdio: 'inherit' });
}

mkdirSync(outDir, { recursive: true });
let copied = 0;
for (const f of files) {
  const from = join(webDir, f);
  const to = join(outDir, f);
  if (!existsSync(from)) {
    console.error(`prepare-engine: ${from} is missing after the build`);
    process.exit(1);
  }
  if (!existsSync(to) || !readFileSync(to).equals(readFileSync(from))) {
    copyFileSync(from, to);
    copied++;
  }
}
console.log(`prepare-engine: engine wasm ready in src/engine/generated/ (${copied} file(s) updated)`);
