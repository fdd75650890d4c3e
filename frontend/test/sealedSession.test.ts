// A sealed game followed by GameSession, with fake timers, a fake edge that reveals keys by the
// origin's rule (round r at startAt + B_r * tickMs + 1; 425 with retryAt before) and a fake live
// room: settling by push and by the rounds endpoint, the rollback bound, a tampered push, a late
// joiner's reads, and the verification after the end.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { EdgeError, type ExitResult, type Game, type RoundsView } from '../src/api/edge';
import { sealedBreaks, sealedHash } from '../src/engine/generated/shared_engine.js';
import type { LiveEvents } from '../src/game/live';
import { GameSession, type LiveFactory, type SessionSnapshot } from '../src/game/session';
import { loadEngineForTests, repoRoot } from './helpers';

const vectors = JSON.parse(readFileSync(join(repoRoot, 'shared-engine', 'vectors', 'sealed-v1.json'), 'utf8')) as {
  chains: { root: string; tickMs: number; rounds: number; commitment: string; keys: string[] }[];
};
const C0 = vectors.chains[0]; // 100 ms ticks, N = 86,400
const ROUNDS = 60;
let keys: string[] = [];
let breaks: number[] = [];

beforeAll(() => {
  loadEngineForTests();
  // k_r = H^(N - r)(root): the first ROUNDS keys of chain 0.
  let k = C0.root;
  for (let i = 0; i < C0.rounds - ROUNDS; i++) k = sealedHash(k);
  keys = new Array<string>(ROUNDS);
  for (let r = ROUNDS; r >= 1; r--) {
    keys[r - 1] = k;
    k = sealedHash(k);
  }
  expect(k).toBe(C0.commitment);
  expect(keys.slice(0, 12)).toEqual(C0.keys);
  breaks = Array.from(sealedBreaks(100, 50, keys.join('')));
});

const T0 = 1_760_000_000_000;
const game: Game = {
  gameId: 'g-s',
  userId: 'alice',
  region: 'us',
  seed: 0,
  startAt: T0 + 3_000,
  tickMs: 100,
  breakEvery: 50,
  algorithm: 'sealed-v1',
  status: 'active',
  backendRegion: 'us',
  createdAt: T0,
  commitment: C0.commitment,
  rounds: C0.rounds,
};
const revealAt = (round: number) => game.startAt + breaks[round - 1] * game.tickMs + 1;

/** Server time = the (fake) system clock + 5 s. */
const clock = { serverNow: () => Date.now() + 5_000 };

/** A fake edge revealing keys by the origin's rule. */
function fakeEdge(opts: { exitedAt?: () => number | null; root?: boolean } = {}) {
  const exitedAt = opts.exitedAt ?? (() => null);
  const reads: number[] = [];
  const publicRounds = (now: number) => {
    const end = exitedAt();
    if (end !== null) {
      const finalStep = Math.floor((end - 1 - game.startAt) / game.tickMs);
      return breaks.filter((b) => b <= finalStep).length + 1;
    }
    return breaks.filter((_, i) => revealAt(i + 1) <= now).length;
  };
  const api = {
    getGame: vi.fn(async (): Promise<Game> => {
      const end = exitedAt();
      if (end === null) return game;
      return { ...game, status: 'exited', exitedAt: end, ...(opts.root === false ? {} : { root: C0.root }) };
    }),
    exitGame: vi.fn(async (): Promise<ExitResult> => ({ ok: true, gameId: game.gameId, userId: 'alice', exitedAt: clock.serverNow(), status: 'exited', backendRegion: 'us' })),
    getRounds: vi.fn(async (_id: string, from: number): Promise<RoundsView> => {
      reads.push(from);
      const now = clock.serverNow();
      const pub = publicRounds(now);
      if (from > pub) {
        if (exitedAt() !== null) return { gameId: game.gameId, commitment: C0.commitment, from, rounds: [] };
        const last = pub === 0 ? -1 : breaks[pub - 1];
        const err = new EdgeError('too_early', `round ${from} has not broken yet`, 425, undefined, 1);
        err.retryAt = Math.max(game.startAt + (last + 10) * game.tickMs + 1, now + 100);
        throw err;
      }
      const rounds = [];
      for (let r = from; r <= Math.min(pub, from + 999); r++) rounds.push({ round: r, key: keys[r - 1] });
      return { gameId: game.gameId, commitment: C0.commitment, from, rounds };
    }),
  };
  return { api, reads };
}

/** A fake live room: the test calls its events. */
function fakeLive() {
  const rooms: LiveEvents[] = [];
  const factory: LiveFactory = (_id, _hello, events) => {
    rooms.push(events);
    return { start: () => events.onStatus?.('open'), close: () => {} };
  };
  return { factory, room: () => rooms[rooms.length - 1] };
}

/** Every snapshot the session publishes, to check the step never goes back. */
function record(s: GameSession): SessionSnapshot[] {
  const seen: SessionSnapshot[] = [];
  s.subscribe(() => seen.push(s.getSnapshot()));
  return seen;
}

function stepsNeverGoBack(seen: SessionSnapshot[]) {
  let last = -1;
  for (const snap of seen) {
    const tick = snap.state.phase === 'countdown' ? null : snap.state.tick;
    if (!tick) continue;
    expect(tick.step).toBeGreaterThanOrEqual(last);
    last = tick.step;
  }
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0 - 5_000); // server time T0
});
afterEach(() => vi.useRealTimers());

describe('GameSession with a sealed game', () => {
  it('settles each round when the room pushes its key, rolling back only the ticks shown past the break', async () => {
    const { api } = fakeEdge();
    const live = fakeLive();
    const s = new GameSession(game, 'viewer', { clock, api, live: live.factory });
    const seen = record(s);
    s.run();
    expect(s.getSnapshot().sealed).toMatchObject({ commitment: C0.commitment, revealed: 0, verification: { status: 'running' } });
    // The room pushes each key 40 ms after its reveal instant (network).
    for (let r = 1; r <= 5; r++) {
      await vi.advanceTimersByTimeAsync(revealAt(r) + 40 - clock.serverNow());
      // Just before the push: still round r - 1, counting up provisionally past the break.
      const before = s.getSnapshot();
      expect(before.state.phase).toBe('running');
      expect(before.state.phase === 'running' && before.state.tick.round).toBe(r - 1);
      live.room().onRound?.(r, keys[r - 1]);
      const after = s.getSnapshot();
      if (after.state.phase !== 'running') throw new Error('running');
      expect(after.state.tick.round).toBe(r);
      expect(after.state.tick.value).toBe(after.state.tick.step - breaks[r - 1]);
      expect(after.sealed?.revealed).toBe(r);
      expect(after.breaks[0]).toEqual({ step: breaks[r - 1], round: r, at: game.startAt + breaks[r - 1] * 100 });
      // Smooth: the rollback is exactly the ticks shown past the break, here at most one.
      const shownPast = before.state.phase === 'running' ? before.state.tick.step - breaks[r - 1] : NaN;
      expect(after.sealed?.lastRollback).toBe(Math.max(0, shownPast));
      expect(after.sealed?.lastRollback).toBeLessThanOrEqual(1);
    }
    expect(s.getSnapshot().flashKey).toBe(5);
    expect(s.getSnapshot().sealed?.recent.map((x) => x.round)).toEqual([5, 4, 3, 2, 1]);
    stepsNeverGoBack(seen);
    // A tampered push is rejected, visibly, and changes nothing else.
    const tampered = keys[5].slice(0, 20) + (keys[5][20] === 'a' ? 'b' : 'a') + keys[5].slice(21);
    live.room().onRound?.(6, tampered);
    expect(s.getSnapshot().sealed).toMatchObject({ revealed: 5, rejected: 1 });
    expect(s.getSnapshot().sealed?.error).toMatch(/round 6's key does not chain/);
    // A swapped one too.
    live.room().onRound?.(6, keys[6]);
    expect(s.getSnapshot().sealed).toMatchObject({ revealed: 5, rejected: 2 });
    live.room().onRound?.(6, keys[5]);
    expect(s.getSnapshot().sealed?.revealed).toBe(6);
    s.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without the room, reads the rounds endpoint when a 425 says to, and settles on time', async () => {
    const { api, reads } = fakeEdge();
    const s = new GameSession(game, 'viewer', { clock, api });
    const seen = record(s);
    s.run();
    await vi.advanceTimersByTimeAsync(revealAt(8) + 400 - clock.serverNow());
    const snap = s.getSnapshot();
    expect(snap.sealed?.revealed).toBe(8);
    expect(snap.sealed?.error).toBeNull();
    expect(snap.sealed?.maxRollback).toBeLessThanOrEqual(2);
    expect(snap.breaks.map((b) => b.round)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    stepsNeverGoBack(seen);
    // As the 425s say: none before the shortest round is over, then about one read per tick
    // (the origin's retryAt), never a busy loop. (The room's push is the cheap path.)
    const ticks = breaks[7];
    expect(reads.length).toBeLessThanOrEqual(ticks + 8);
    expect(reads.length).toBeGreaterThan(8);
    s.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a late joiner reads from a guess, checks only the latest key, and rolls nothing back', async () => {
    vi.setSystemTime(revealAt(40) + 250 - 5_000);
    const { api, reads } = fakeEdge();
    const live = fakeLive();
    const s = new GameSession(game, 'viewer', { clock, api, live: live.factory });
    s.run();
    await vi.advanceTimersByTimeAsync(10);
    const snap = s.getSnapshot();
    expect(snap.sealed?.revealed).toBe(40);
    expect(reads[0]).toBeGreaterThan(1); // not from round 1
    expect(reads[0]).toBeLessThanOrEqual(40);
    expect(snap.sealed?.lastRollback).toBeNull();
    expect(snap.settled).toBe(true);
    expect(snap.state.phase === 'running' && snap.state.tick.round).toBe(40);
    // Too far a guess (425) is lowered.
    vi.setSystemTime(revealAt(3) + 10 - 5_000);
    const late = fakeEdge();
    const t = new GameSession({ ...game }, 'viewer', { clock, api: late.api });
    t.run();
    await vi.advanceTimersByTimeAsync(10);
    expect(t.getSnapshot().sealed?.revealed).toBe(3);
    s.dispose();
    t.dispose();
  });

  it('after the exit: reads the final keys and the root, then shows the game verified against the commitment', async () => {
    let exitedAt: number | null = null;
    const { api } = fakeEdge({ exitedAt: () => exitedAt });
    const live = fakeLive();
    const s = new GameSession(game, 'viewer', { clock, api, live: live.factory });
    s.run();
    for (let r = 1; r <= 3; r++) {
      await vi.advanceTimersByTimeAsync(revealAt(r) + 20 - clock.serverNow());
      live.room().onRound?.(r, keys[r - 1]);
    }
    // Exit a few steps into round 4, then past where a later break could be.
    await vi.advanceTimersByTimeAsync(300);
    exitedAt = clock.serverNow();
    live.room().onExited?.(exitedAt);
    expect(s.getSnapshot().stopped).toBe(true);
    // Not verified before the page has read what the end made public.
    expect(s.getSnapshot().sealed?.verification.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(5);
    const snap = s.getSnapshot();
    const finalStep = Math.floor((exitedAt - 1 - game.startAt) / 100);
    expect(snap.state).toEqual({
      phase: 'ended',
      tick: { step: finalStep, value: finalStep - breaks[2], round: 3, broken: finalStep === breaks[2] },
    });
    expect(snap.settled).toBe(true);
    expect(snap.sealed?.revealed).toBe(4); // the round under way at the end, public after it
    expect(snap.sealed?.verification).toEqual({ status: 'verified', rounds: 4, root: true });
    expect(vi.getTimerCount()).toBe(0);
    s.dispose();
  });

  it('a published root that does not match fails the verification', async () => {
    const exitedAt = revealAt(2) + 150;
    vi.setSystemTime(exitedAt + 10_000 - 5_000);
    const { api } = fakeEdge({ exitedAt: () => exitedAt });
    const bad = { ...game, status: 'exited' as const, exitedAt, root: keys[0] };
    const s = new GameSession(bad, 'viewer', { clock, api });
    s.run();
    await vi.advanceTimersByTimeAsync(5);
    expect(s.getSnapshot().sealed?.revealed).toBe(3);
    expect(s.getSnapshot().sealed?.verification.status).toBe('failed');
    s.dispose();
  });
});
