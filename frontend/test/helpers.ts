import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineReady, initEngineSync } from '../src/engine/engine';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');

/** Loads the engine wasm that `npm test` prepared (scripts/prepare-engine.mjs). */
export function loadEngineForTests(): void {
  if (engineReady()) return;
  initEngineSync(readFileSync(join(here, '..', 'src', 'engine', 'generated', 'shared_engine_bg.wasm')));
}

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
