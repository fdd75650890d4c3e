import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { EdgeError, type ExitResult, type Game } from '../src/api/edge';
import { stateAt, tickAt } from '../src/engine/engine';
import { GameSession } from '../src/game/session';
import { loadEngineForTests } from './helpers';

beforeAll(loadEngineForTests);

const T0 = 1_760_000_000_000;
const game: Game = {
  gameId: 'g-1',
  userId: 'alice',
  region: 'us',
  seed: 42,
  startAt: T0 + 3_000,
  tickMs: 100,
  breakEvery: 5,
  algorithm: 'mix32-v1',
  status: 'active',
  backendRegion: 'us',
  routedBy: 'preference',
  createdAt: T0,
};

/** Server time = the (fake) system clock + 5 s: the page's clock is 5 s slow. */
const clock = { serverNow: () => Date.now() + 5_000 };

function fakeApi(overrides: Partial<{ getGame: () => Promise<Game>; exitGame: () => Promise<ExitResult> }> = {}) {
  const api = {
    getGame: vi.fn(overrides.getGame ?? (async () => game)),
    exitGame: vi.fn(overrides.exitGame ?? (async (): Promise<ExitResult> => ({ ok: true, gameId: 'g-1', userId: 'alice', exitedAt: clock.serverNow(), status: 'exited', backendRegion: 'us' }))),
  };
  return api;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0 - 5_000); // server time T0
});
afterEach(() => {
  vi.useRealTimers();
});

describe('GameSession', () => {
  it('counts down, then runs tick by tick on server time, logging every break', () => {
    const s = new GameSession(game, 'player', { clock, api: fakeApi() });
    s.run();
    expect(s.getSnapshot().state).toEqual({ phase: 'countdown', msUntilStart: 3_000 });
    vi.advanceTimersByTime(2_950);
    expect(s.getSnapshot().state.phase).toBe('countdown');
    vi.advanceTimersByTime(50 + 2_000 + 5); // 2 s into the game: step 20
    const snap = s.getSnapshot();
    expect(snap.state).toEqual(stateAt(game, clock.serverNow()));
    expect(snap.state).toEqual({ phase: 'running', tick: tickAt(game, 20) });
    const expectedBreaks: number[] = [];
    for (let step = 20; step >= 0; step--) if (tickAt(game, step).broken) expectedBreaks.push(step);
    expect(expectedBreaks.length).toBeGreaterThan(0);
    expect(snap.breaks.map((b) => b.step)).toEqual(expectedBreaks);
    expect(snap.breaks[0].at).toBe(game.startAt + expectedBreaks[0] * game.tickMs);
    expect(snap.flashKey).toBe(expectedBreaks.length);
    s.dispose();
  });

  it('exit freezes the player at the engine’s final step and stops the timers', async () => {
    const api = fakeApi();
    const s = new GameSession(game, 'player', { clock, api });
    s.run();
    vi.advanceTimersByTime(3_000 + 1_234);
    await s.exit();
    expect(api.exitGame).toHaveBeenCalledWith('g-1', 'alice', 'us');
    const exitedAt = T0 + 3_000 + 1_234;
    const snap = s.getSnapshot();
    expect(snap.stopped).toBe(true);
    expect(snap.endedAt).toBe(exitedAt);
    expect(snap.state).toEqual({ phase: 'ended', tick: tickAt(game, 12) });
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(s.getSnapshot()).toBe(snap);
    s.dispose();
  });

  it('a failed exit is shown and the game keeps running', async () => {
    const api = fakeApi({
      exitGame: async () => {
        throw new EdgeError('http_503', 'Exiting the game failed: server error (HTTP 503)', 503);
      },
    });
    const s = new GameSession(game, 'player', { clock, api });
    s.run();
    vi.advanceTimersByTime(3_500);
    await s.exit();
    expect(s.getSnapshot().error).toBe('Exiting the game failed: server error (HTTP 503)');
    expect(s.getSnapshot().stopped).toBe(false);
    vi.advanceTimersByTime(1_005); // the display updates just after each tick boundary
    expect(s.getSnapshot().state).toEqual({ phase: 'running', tick: tickAt(game, 15) });
    s.dispose();
  });

  it('a viewer learns from the poll that the game ended, and freezes at the same final step', async () => {
    const exitedAt = T0 + 3_000 + 777;
    let exited = false;
    const api = fakeApi({ getGame: async () => (exited ? { ...game, status: 'exited', exitedAt } : game) });
    const s = new GameSession(game, 'viewer', { clock, api, pollMs: 2_000 });
    s.run();
    vi.advanceTimersByTime(3_800);
    exited = true;
    await vi.advanceTimersByTimeAsync(2_000); // next poll
    const snap = s.getSnapshot();
    expect(snap.stopped).toBe(true);
    expect(snap.state).toEqual(stateAt(game, clock.serverNow(), exitedAt));
    expect(snap.state).toEqual({ phase: 'ended', tick: tickAt(game, 7) });
    expect(vi.getTimerCount()).toBe(0);
    s.dispose();
  });

  it('a failed poll shows a warning that the next good poll clears', async () => {
    let fail = true;
    const api = fakeApi({
      getGame: async () => {
        if (fail) throw new EdgeError('timeout', 'Loading the game failed: the edge did not answer within 5.0 s');
        return game;
      },
    });
    const s = new GameSession(game, 'viewer', { clock, api, pollMs: 1_000 });
    s.run();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.getSnapshot().pollWarning).toMatch(/did not answer within 5.0 s/);
    fail = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.getSnapshot().pollWarning).toBeNull();
    s.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('opens an already ended game frozen, with no timers', () => {
    const ended: Game = { ...game, status: 'exited', exitedAt: T0 + 3_000 + 450 };
    vi.setSystemTime(T0 + 60_000); // a minute after it ended
    const s = new GameSession(ended, 'viewer', { clock, api: fakeApi() });
    s.run();
    expect(s.getSnapshot().stopped).toBe(true);
    expect(s.getSnapshot().state).toEqual({ phase: 'ended', tick: tickAt(game, 4) });
    expect(vi.getTimerCount()).toBe(0);
    s.dispose();
  });

  it('a viewer who stops watching keeps the last state and stops its timers', () => {
    const s = new GameSession(game, 'viewer', { clock, api: fakeApi() });
    s.run();
    vi.advanceTimersByTime(3_000 + 555);
    s.leave();
    const snap = s.getSnapshot();
    expect(snap.leftEarly).toBe(true);
    expect(snap.state).toEqual({ phase: 'running', tick: tickAt(game, 5) });
    expect(vi.getTimerCount()).toBe(0);
    s.dispose();
  });
});
