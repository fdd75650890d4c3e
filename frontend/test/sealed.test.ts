// sealed-v1 in the browser engine (the wasm the page loads) against the vectors every runtime
// is checked with: the chain from each root, the round lengths and the ticks with 0 to 12
// keys revealed, and the chain checks a page runs on revealed keys.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  sealedBreaks,
  sealedChainRounds,
  sealedCommitment,
  sealedHash,
  sealedRoundLength,
  sealedTickAt,
  sealedVerifyChain,
  sealedVerifyLatest,
} from '../src/engine/generated/shared_engine.js';
import { loadEngineForTests, repoRoot } from './helpers';

interface Chain {
  chain: number;
  root: string;
  tickMs: number;
  rounds: number;
  commitment: string;
  keys: string[];
}
interface LengthRow {
  tickMs: number;
  breakEvery: number;
  key: string;
  length: number;
}
interface TickRow {
  chain: number;
  tickMs: number;
  breakEvery: number;
  revealed: number;
  step: number;
  value: number;
  round: number;
  broken: boolean;
  settled: boolean;
}
const vectors = JSON.parse(readFileSync(join(repoRoot, 'shared-engine', 'vectors', 'sealed-v1.json'), 'utf8')) as {
  algorithm: string;
  chains: Chain[];
  lengths: LengthRow[];
  ticks: TickRow[];
};

beforeAll(loadEngineForTests);

describe('sealed-v1 in the wasm engine vs the shared vectors', () => {
  it('derives every chain: commitment from the root, keys that hash down to it', () => {
    expect(vectors.algorithm).toBe('sealed-v1');
    expect(vectors.chains.length).toBe(3);
    for (const c of vectors.chains) {
      expect(sealedChainRounds(c.tickMs)).toBe(c.rounds);
      expect(sealedCommitment(c.root, c.tickMs)).toBe(c.commitment);
      expect(sealedHash(c.keys[0])).toBe(c.commitment);
      for (let i = 1; i < c.keys.length; i++) expect(sealedHash(c.keys[i])).toBe(c.keys[i - 1]);
      expect(sealedVerifyChain(c.commitment, c.keys.join(''))).toBe(0);
      expect(sealedVerifyLatest(c.commitment, c.keys.length, c.keys[c.keys.length - 1])).toBe(true);
    }
  });

  it('rejects a tampered key, swapped rounds and a wrong commitment', () => {
    const c = vectors.chains[0];
    const tampered = [...c.keys];
    tampered[4] = (tampered[4][0] === '0' ? '1' : '0') + tampered[4].slice(1);
    expect(sealedVerifyChain(c.commitment, tampered.join(''))).toBe(5);
    const swapped = [...c.keys];
    [swapped[2], swapped[3]] = [swapped[3], swapped[2]];
    expect(sealedVerifyChain(c.commitment, swapped.join(''))).toBe(3);
    expect(sealedVerifyChain(vectors.chains[1].commitment, c.keys.join(''))).toBe(1);
    expect(sealedVerifyLatest(c.commitment, 11, c.keys[11])).toBe(false);
    expect(() => sealedVerifyChain(c.commitment, 'xyz')).toThrow(/64-hex-digit/);
  });

  it('draws every golden round length', () => {
    expect(vectors.lengths.length).toBeGreaterThan(100);
    for (const r of vectors.lengths) expect(sealedRoundLength(r.key, r.tickMs, r.breakEvery), JSON.stringify(r)).toBe(r.length);
    expect(() => sealedRoundLength(vectors.lengths[0].key, 100, 19)).toThrow(/breakEvery must be at least 20/);
  });

  it('gives every golden tick, settled or not, and the breaks', () => {
    for (const r of vectors.ticks) {
      const keys = vectors.chains[r.chain].keys.slice(0, r.revealed).join('');
      const t = sealedTickAt(r.tickMs, r.breakEvery, keys, r.step);
      const got = { step: t.tick.step, value: t.tick.value, round: t.tick.round, broken: t.tick.broken, settled: t.settled };
      expect(got, JSON.stringify(r)).toEqual({ step: r.step, value: r.value, round: r.round, broken: r.broken, settled: r.settled });
      t.free();
    }
    const c = vectors.chains[0];
    const breaks = Array.from(sealedBreaks(100, 50, c.keys.join('')));
    expect(breaks.length).toBe(12);
    for (const at of breaks) {
      const t = sealedTickAt(100, 50, c.keys.join(''), at);
      expect(t.tick.broken).toBe(true);
      t.free();
    }
  });
});
