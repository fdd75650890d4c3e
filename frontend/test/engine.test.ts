import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GameFollower, stateAt, tickAt, defaultAlgorithm, engineMemoryBytes, type GameParams, type Tick } from '../src/engine/engine';
import { mix32v1 } from '../src/engine/generated/shared_engine.js';
import { loadEngineForTests, prng, repoRoot } from './helpers';

interface TickVector {
  algorithm: string;
  seed: number;
  tickMs: number;
  breakEvery: number;
  step: number;
  value: number;
  round: number;
  broken: boolean;
}
interface HashVector {
  seed: number;
  step: number;
  mix32v1: number;
  lcg32: number;
}
const golden = JSON.parse(readFileSync(join(repoRoot, 'shared-engine', 'vectors', 'golden.json'), 'utf8')) as {
  ticks: TickVector[];
  hashes: HashVector[];
};

beforeAll(loadEngineForTests);

describe('engine wrapper vs the shared golden vectors', () => {
  it('has vectors for every algorithm', () => {
    expect(golden.ticks.length).toBeGreaterThan(100);
    expect(new Set(golden.ticks.map((t) => t.algorithm))).toEqual(new Set(['mix32-v1', 'lcg32', 'interval-v0']));
    expect(golden.ticks.filter((t) => t.algorithm === 'interval-v0' && t.broken).length).toBeGreaterThan(20);
    expect(defaultAlgorithm()).toBe('mix32-v1');
  });

  it('interval-v0: hand-computed first breaks of seed 0 (rounds of 100 then 235 steps)', () => {
    const p = { seed: 0, tickMs: 100, breakEvery: 50, algorithm: 'interval-v0' };
    expect(tickAt(p, 99)).toEqual({ step: 99, value: 100, round: 0, broken: false });
    expect(tickAt(p, 100)).toEqual({ step: 100, value: 0, round: 1, broken: true });
    expect(tickAt(p, 335)).toEqual({ step: 335, value: 235, round: 1, broken: false });
    expect(tickAt(p, 336)).toEqual({ step: 336, value: 0, round: 2, broken: true });
    // breakEvery plays no part.
    expect(tickAt({ ...p, breakEvery: 2 }, 336)).toEqual(tickAt(p, 336));
  });

  it('tickAt reproduces every golden tick', () => {
    for (const v of golden.ticks) {
      const tick = tickAt(v, v.step);
      expect(tick, JSON.stringify(v)).toEqual({ step: v.step, value: v.value, round: v.round, broken: v.broken });
    }
  });

  it('stateAt gives the golden tick anywhere inside its step, on any start time', () => {
    const startAt = 1_750_000_000_123;
    for (const v of golden.ticks.filter((_, i) => i % 3 === 0)) {
      const params: GameParams = { ...v, startAt };
      const expected = { step: v.step, value: v.value, round: v.round, broken: v.broken };
      for (const into of [0, v.tickMs - 1]) {
        expect(stateAt(params, startAt + v.step * v.tickMs + into)).toEqual({ phase: 'running', tick: expected });
      }
    }
  });

  it('the raw mix32-v1 hash matches the golden hashes', () => {
    for (const h of golden.hashes) expect(mix32v1(h.seed, h.step)).toBe(h.mix32v1);
  });

  it('reports the countdown and freezes an ended game', () => {
    const p: GameParams = { seed: 42, startAt: 10_000, tickMs: 100, breakEvery: 50, algorithm: 'mix32-v1' };
    expect(stateAt(p, 9_000)).toEqual({ phase: 'countdown', msUntilStart: 1000 });
    expect(stateAt(p, 9_999)).toEqual({ phase: 'countdown', msUntilStart: 1 });
    // Ended at 10_250: frozen at step 2 (the last step begun before the end), forever after.
    const frozen = { phase: 'ended', tick: tickAt(p, 2) };
    expect(stateAt(p, 10_250, 10_250)).toEqual(frozen);
    expect(stateAt(p, 99_999, 10_250)).toEqual(frozen);
    expect(stateAt(p, 10_249, 10_250)).toEqual({ phase: 'running', tick: tickAt(p, 2) });
    // Ended during the countdown: no step at all.
    expect(stateAt(p, 12_000, 9_500)).toEqual({ phase: 'ended', tick: null });
  });

  it('rejects invalid parameters with readable errors', () => {
    const p: GameParams = { seed: 1, startAt: 0, tickMs: 100, breakEvery: 50, algorithm: 'mix32-v1' };
    expect(() => stateAt({ ...p, tickMs: 0 }, 5)).toThrow(/tickMs/);
    expect(() => stateAt({ ...p, algorithm: 'nope' }, 5)).toThrow(/"mix32-v1", "lcg32" or "interval-v0"/);
    expect(() => stateAt({ ...p, seed: -1 }, 5)).toThrow(/seed/);
    expect(() => new GameFollower({ ...p, breakEvery: 1 })).toThrow(/breakEvery/);
  });
});

describe('GameFollower', () => {
  const cases: GameParams[] = [
    { seed: 42, startAt: 1_750_000_000_000, tickMs: 100, breakEvery: 50, algorithm: 'mix32-v1' },
    { seed: 7, startAt: 1_750_000_000_000, tickMs: 37, breakEvery: 3, algorithm: 'lcg32' },
    { seed: 4_294_967_295, startAt: -5_000, tickMs: 1, breakEvery: 2, algorithm: 'mix32-v1' },
    { seed: 42, startAt: 1_750_000_000_000, tickMs: 1, breakEvery: 50, algorithm: 'interval-v0' },
  ];

  for (const params of cases) {
    it(`matches stateAt step by step and lists every break (${params.algorithm}, tick ${params.tickMs} ms)`, () => {
      const rand = prng(params.seed);
      const f = new GameFollower(params, null, 1_000_000);
      let now = params.startAt - 3 * params.tickMs - 5;
      let lastStep = -1;
      const logged: number[] = [];
      for (let i = 0; i < 1500; i++) {
        const { state, breaks } = f.at(now);
        expect(state).toEqual(stateAt(params, now));
        for (const b of breaks) logged.push(b.step);
        if (state.phase === 'running') lastStep = Math.max(lastStep, state.tick.step);
        // Mostly forward, sometimes several ticks at once, sometimes a little back (re-sync).
        const r = rand();
        now += r < 0.1 ? -Math.floor(rand() * params.tickMs) : Math.floor(rand() * params.tickMs * (r < 0.2 ? 7 : 1.5));
      }
      f.free();
      const expected: number[] = [];
      for (let s = 0; s <= lastStep; s++) if (tickAt(params, s).broken) expected.push(s);
      expect(expected.length).toBeGreaterThan(0);
      expect([...new Set(logged)].sort((a, b) => a - b)).toEqual(expected);
    });
  }

  it('freezes at the engine’s final step when the game ends, even after running past it', () => {
    const p = cases[0];
    const f = new GameFollower(p);
    const running = f.at(p.startAt + 5_000).state as { phase: 'running'; tick: Tick };
    expect(running.tick.step).toBe(50);
    f.end(p.startAt + 3_210); // learned late (a viewer's poll): the game ended at step 32
    const ended = f.at(p.startAt + 5_100).state;
    expect(ended).toEqual({ phase: 'ended', tick: tickAt(p, 32) });
    expect(ended).toEqual(stateAt(p, p.startAt + 5_100, p.startAt + 3_210));
    f.free();
  });

  it('backfills at most maxBackfill steps of breaks after a long sleep', () => {
    const p = { ...cases[1] };
    const f = new GameFollower(p, null, 50);
    f.at(p.startAt);
    const { state, breaks } = f.at(p.startAt + 10_000 * p.tickMs);
    expect(state).toEqual(stateAt(p, p.startAt + 10_000 * p.tickMs));
    expect(breaks.length).toBeGreaterThan(0);
    expect(breaks.every((b) => b.step > 10_000 - 50 && b.broken)).toBe(true);
    f.free();
  });

  it('frees the engine’s objects (wasm memory does not grow over many calls)', () => {
    const p = cases[0];
    const f = new GameFollower(p);
    // Warm up, then measure: a leak of even one small object per call would grow the heap.
    for (let i = 0; i < 1000; i++) stateAt(p, p.startAt + i);
    const before = engineMemoryBytes();
    for (let i = 0; i < 200_000; i++) {
      stateAt(p, p.startAt - 1 - i);
      tickAt(p, i % 1000);
    }
    for (let i = 0; i < 20_000; i++) f.at(p.startAt + i * 10);
    const after = engineMemoryBytes();
    expect(before).toBeGreaterThan(0);
    expect(after).toBe(before);
    f.free();
  });
});
