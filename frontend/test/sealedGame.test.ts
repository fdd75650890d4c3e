// The page's sealed-game state (src/game/sealed.ts) against the shared vectors and the wasm
// engine: counting up between breaks, settling a round when its key arrives (with the rollback
// of the ticks shown past the break), rejecting keys that do not chain, a late joiner's single
// key, and the verification after the end.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sealedBreaks, sealedHash, sealedTickAt } from '../src/engine/generated/shared_engine.js';
import { SealedGame, minRoundSteps } from '../src/game/sealed';
import { loadEngineForTests, repoRoot } from './helpers';

interface Chain {
  chain: number;
  root: string;
  tickMs: number;
  rounds: number;
  commitment: string;
  keys: string[];
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
  chains: Chain[];
  ticks: TickRow[];
};

beforeAll(loadEngineForTests);

const START = 1_760_000_000_000;
/** Chain 0: 100 ms ticks, N = 86,400, m = 10; breakEvery 50 as the stack's default. */
const C0 = vectors.chains[0];
const P0 = { startAt: START, tickMs: 100, breakEvery: 50, commitment: C0.commitment };
/** The server instant `ms` into step `step`. */
const at = (step: number, ms = 50) => START + step * P0.tickMs + ms;

function flip(key: string, i = 10): string {
  return key.slice(0, i) + (key[i] === '0' ? '1' : '0') + key.slice(i + 1);
}

describe('SealedGame', () => {
  it('computes every golden tick (settled or not) exactly as the engine does', () => {
    let checked = 0;
    for (const r of vectors.ticks) {
      const c = vectors.chains[r.chain];
      const g = new SealedGame({ startAt: 0, tickMs: r.tickMs, breakEvery: r.breakEvery, commitment: c.commitment });
      for (let i = 0; i < r.revealed; i++) expect(g.offer(i + 1, c.keys[i]).kind).toBe('settled');
      const t = g.tickAt(r.step);
      expect({ ...t.tick, settled: t.settled }, JSON.stringify(r)).toEqual({
        step: r.step,
        value: r.value,
        round: r.round,
        broken: r.broken,
        settled: r.settled,
      });
      const w = sealedTickAt(r.tickMs, r.breakEvery, c.keys.slice(0, r.revealed).join(''), r.step);
      expect(t.settled).toBe(w.settled);
      w.free();
      checked++;
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('counts up provisionally, then settles the round when its key arrives, rolling back only the ticks shown past the break', () => {
    const g = new SealedGame(P0);
    g.markSynced();
    const breaks = Array.from(sealedBreaks(100, 50, C0.keys.join('')));
    const b1 = breaks[0];
    expect(b1).toBeGreaterThanOrEqual(minRoundSteps(100) - 1);
    expect(g.at(START - 500).state).toEqual({ phase: 'countdown', msUntilStart: 500 });
    // Before the shortest round is over, the tick is settled (no round breaks sooner).
    let r = g.at(at(minRoundSteps(100) - 2));
    expect(r.settled).toBe(true);
    // Count up past the (unknown) break: provisional, round 0, no break reported.
    const shown: number[] = [];
    for (let s = 0; s <= b1 + 2; s++) {
      r = g.at(at(s));
      expect(r.breaks).toEqual([]);
      if (r.state.phase !== 'running') throw new Error('running');
      expect(r.state.tick).toEqual({ step: s, value: s + 1, round: 0, broken: false });
      shown.push(r.state.tick.step);
    }
    expect(r.settled).toBe(false);
    // The key arrives 2 ticks late: the round settles, 2 ticks rolled back.
    const offered = g.offer(1, C0.keys[0]);
    expect(offered).toEqual({
      kind: 'settled',
      rounds: [{ round: 1, breakStep: b1, at: START + b1 * 100, rolledBack: 2, direct: true }],
    });
    r = g.at(at(b1 + 2, 60));
    if (r.state.phase !== 'running') throw new Error('running');
    // The step never goes back; the value is the ticks since the break (the rollback), the round 1.
    expect(r.state.tick).toEqual({ step: b1 + 2, value: 2, round: 1, broken: false });
    expect(r.breaks).toEqual([{ step: b1, value: 0, round: 1, broken: true }]);
    expect(r.settled).toBe(true);
    expect(g.view().lastRollback).toBe(2);
    expect(g.view().maxRollback).toBe(2);
    // Reported once.
    expect(g.at(at(b1 + 3)).breaks).toEqual([]);
    // A key arriving before the page's clock reaches its break (this page runs behind): no
    // rollback, and the break is reported when the step reaches it.
    const b2 = breaks[1];
    g.at(at(b2 - 1));
    expect(g.offer(2, C0.keys[1])).toMatchObject({ kind: 'settled', rounds: [{ round: 2, breakStep: b2, rolledBack: 0 }] });
    expect(g.at(at(b2 - 1, 99)).breaks).toEqual([]);
    r = g.at(at(b2));
    expect(r.breaks).toEqual([{ step: b2, value: 0, round: 2, broken: true }]);
    expect(r.state).toEqual({ phase: 'running', tick: { step: b2, value: 0, round: 2, broken: true } });
    expect(g.view().lastRollback).toBe(0);
    expect(g.view().revealed).toBe(2);
    expect(g.view().recent.map((x) => x.round)).toEqual([2, 1]);
  });

  it('rejects a tampered key with a readable error, and goes on with the real one', () => {
    const g = new SealedGame(P0);
    expect(g.offer(1, C0.keys[0]).kind).toBe('settled');
    const bad = g.offer(2, flip(C0.keys[1]));
    expect(bad.kind).toBe('rejected');
    expect(bad.kind === 'rejected' && bad.message).toMatch(/^round 2's key does not chain: its hash is not round 1's key/);
    expect(g.revealed).toBe(1);
    expect(g.view()).toMatchObject({ rejected: 1, revealed: 1 });
    expect(g.view().error).toMatch(/round 2/);
    // The genuine key still settles the round.
    expect(g.offer(2, C0.keys[1]).kind).toBe('settled');
    expect(g.revealed).toBe(2);
    // A tampered copy of a round already settled is refused too (not silently ignored).
    const again = g.offer(1, flip(C0.keys[0], 63));
    expect(again.kind === 'rejected' && again.message).toMatch(/differs from the one already verified/);
    expect(g.offer(1, C0.keys[0].toUpperCase()).kind).toBe('known');
    // Not a key at all.
    expect(g.offer(3, 'xyz').kind).toBe('rejected');
    expect(g.offer(0, C0.keys[0]).kind).toBe('rejected');
    expect(g.offer(86_401, C0.keys[0]).kind).toBe('rejected');
    expect(g.revealed).toBe(2);
    expect(g.view().rejected).toBe(5);
  });

  it('rejects swapped rounds (either way round)', () => {
    const g = new SealedGame(P0);
    expect(g.offer(1, C0.keys[0]).kind).toBe('settled');
    // Round 3's key sent as round 2's.
    expect(g.offer(2, C0.keys[2]).kind).toBe('rejected');
    // Round 2's key sent as round 3's (a gap: hashed twice it is the commitment, not k_1).
    const r = g.offer(3, C0.keys[1]);
    expect(r.kind === 'rejected' && r.message).toMatch(/hashed 2 times it is not round 1's key/);
    expect(g.revealed).toBe(1);
    expect(g.offer(2, C0.keys[1]).kind).toBe('settled');
    expect(g.offer(3, C0.keys[2]).kind).toBe('settled');
  });

  it('rejects keys against a wrong commitment (another game’s)', () => {
    const g = new SealedGame({ ...P0, commitment: vectors.chains[2].commitment });
    const r = g.offer(1, C0.keys[0]);
    expect(r.kind === 'rejected' && r.message).toMatch(/its hash is not the commitment/);
    // A late joiner's single key is checked against the commitment as well.
    expect(g.offer(12, C0.keys[11]).kind).toBe('rejected');
    expect(g.revealed).toBe(0);
    expect(() => new SealedGame({ ...P0, commitment: 'abc' })).toThrow(/commitment/);
    expect(() => new SealedGame({ ...P0, breakEvery: 19 })).toThrow(/breakEvery must be at least 20/);
  });

  it('a late joiner needs only the latest key: the earlier ones are its hashes, nothing rolled back', () => {
    const g = new SealedGame(P0);
    // Shown (provisionally) before its first rounds read answered: not counted as shown.
    const breaks = Array.from(sealedBreaks(100, 50, C0.keys.join('')));
    const now = breaks[11] + 3;
    expect(g.at(at(now)).settled).toBe(false);
    const r = g.offer(12, C0.keys[11]);
    expect(r.kind).toBe('settled');
    if (r.kind !== 'settled') return;
    expect(r.rounds.map((x) => x.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(r.rounds.map((x) => x.breakStep)).toEqual(breaks);
    expect(r.rounds.every((x) => x.rolledBack === 0)).toBe(true);
    expect(r.rounds.map((x) => x.direct)).toEqual([...Array(11).fill(false), true]);
    for (let i = 0; i < 12; i++) expect(g.keyOf(i + 1)).toBe(C0.keys[i]);
    g.markSynced();
    const s = g.at(at(now));
    expect(s.state).toEqual({ phase: 'running', tick: { step: now, value: 3, round: 12, broken: false } });
    // The log gets the recent breaks (within the backfill), not a replay of the whole game.
    expect(s.breaks.map((b) => b.round)).toEqual(breaks.map((_, i) => i + 1).filter((_, i) => breaks[i] > now - 600));
    expect(g.view().lastRollback).toBeNull();
    // A gap later on (a missed push) is filled the same way.
    const chain = vectors.chains[1]; // one-minute ticks, N = 1,440: any key from the root
    const h = new SealedGame({ startAt: 0, tickMs: 60_000, breakEvery: 5, commitment: chain.commitment });
    let k = chain.root;
    const keys: string[] = [];
    for (let round = chain.rounds; round >= 1; round--) {
      keys[round - 1] = k;
      k = sealedHash(k);
    }
    expect(k).toBe(chain.commitment);
    expect(h.offer(3, keys[2]).kind).toBe('settled');
    expect(h.offer(700, keys[699]).kind).toBe('settled');
    expect(h.revealed).toBe(700);
    expect(h.keyOf(350)).toBe(keys[349]);
    expect(Array.from(h.breakSteps())).toEqual(Array.from(sealedBreaks(60_000, 5, keys.slice(0, 700).join(''))));
  });

  it('after the end: pending until the keys cover the final step, then verified (with the root), failed for a wrong root', () => {
    const chain = vectors.chains[1];
    const keys: string[] = [];
    let k = chain.root;
    for (let round = chain.rounds; round >= 1; round--) {
      keys[round - 1] = k;
      k = sealedHash(k);
    }
    const params = { startAt: 0, tickMs: 60_000, breakEvery: 5, commitment: chain.commitment };
    const breaks = Array.from(sealedBreaks(60_000, 5, keys.slice(0, 40).join('')));
    // The end comes 1 ms into the step after round j's break, inside round j + 1 (which lasts
    // longer than one step): the round under way at the end is j + 1.
    let j = 6;
    while (breaks[j] <= breaks[j - 1] + 1) j++;
    const endStep = breaks[j - 1] + 1;
    const endedAt = endStep * 60_000 + 1;
    const g = new SealedGame(params);
    g.markSynced();
    for (let i = 0; i < j; i++) g.offer(i + 1, keys[i]);
    expect(g.view().verification).toEqual({ status: 'running' });
    g.end(endedAt);
    expect(g.finalStep()).toBe(endStep);
    const frozen = g.at(endedAt + 5_000);
    expect(frozen.state.phase).toBe('ended');
    // The round under way at the end is not known yet: the final tick is unsettled (m = 1).
    expect(frozen.settled).toBe(false);
    expect(g.finalSettled()).toBe(false);
    expect(g.view().verification).toEqual({ status: 'pending', reason: 'waiting for the keys up to the final step' });
    // After the end, its key is public: the final tick settles (and does not show its break).
    expect(g.offer(j + 1, keys[j]).kind).toBe('settled');
    expect(g.finalSettled()).toBe(true);
    const end = g.at(endedAt + 6_000);
    expect(end.settled).toBe(true);
    const w = sealedTickAt(60_000, 5, keys.slice(0, j + 1).join(''), endStep);
    expect(end.state).toEqual({ phase: 'ended', tick: { step: endStep, value: w.tick.value, round: w.tick.round, broken: w.tick.broken } });
    w.free();
    expect(end.state.phase === 'ended' && end.state.tick?.round).toBe(j);
    // Not called verified before the page has read what is public after the end.
    expect(g.view().verification).toEqual({ status: 'pending', reason: 'reading the last keys and the root' });
    g.markFinal();
    expect(g.view().verification).toEqual({ status: 'verified', rounds: j + 1, root: false });
    expect(g.checkRoot(chain.root)).toBe(true);
    expect(g.view().verification).toEqual({ status: 'verified', rounds: j + 1, root: true });
    expect(g.checkRoot(flip(chain.root))).toBe(false);
    expect(g.view().verification.status).toBe('failed');
  });
});
