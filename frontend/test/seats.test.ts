// A shared game's seats table on the page: /results merged with the room's seat pushes, the
// room's `seat` message shape-checked, the session keeping the table live, and its rendering.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Game } from '../src/api/edge';
import { parseResults } from '../src/api/edge';
import { SeatsTable } from '../src/components/SeatsTable';
import { LiveRoom } from '../src/game/live';
import { applyJoin, applySeat, exitedCount, isSeatExit, isSeatJoin, mergeResults, type ResultsView, type SeatExit } from '../src/game/seats';
import { GameSession, type LiveFactory } from '../src/game/session';
import { loadEngineForTests } from './helpers';

beforeAll(loadEngineForTests);

const T0 = 1_760_000_000_000;
const game: Game = {
  gameId: 'g-s',
  userId: 'alice',
  region: 'eu',
  seed: 7,
  startAt: T0 + 1_000,
  tickMs: 100,
  breakEvery: 5,
  algorithm: 'mix32-v1',
  status: 'active',
  backendRegion: 'eu',
  createdAt: T0,
  shared: { maxPlayers: 3, joinDeadline: T0 + 1_000 },
};
const bobExit: SeatExit = {
  seat: 2,
  userId: 'bob',
  result: { exitedAt: T0 + 2_000, final: { step: 10, value: 1234, round: 2, broken: false }, breakFirst: true },
};
const results: ResultsView = {
  gameId: 'g-s',
  status: 'active',
  maxPlayers: 3,
  seats: [
    { seat: 0, userId: 'alice', joinedAt: T0 },
    { seat: 2, userId: 'bob', joinedAt: T0 + 10 },
  ],
};

describe('seat rows', () => {
  it('merges /results and pushes in seat order; a held result survives an older read', () => {
    let rows = mergeResults([], results);
    expect(rows.map((r) => [r.seat, r.userId, r.result])).toEqual([
      [0, 'alice', null],
      [2, 'bob', null],
    ]);
    rows = applySeat(rows, bobExit);
    expect(rows[1].result).toEqual(bobExit.result);
    expect(rows[1].joinedAt).toBe(T0 + 10);
    expect(exitedCount(rows)).toBe(1);
    // A stale (cached) read without bob's result keeps the pushed one.
    rows = mergeResults(rows, results);
    expect(rows[1].result).toEqual(bobExit.result);
    // A push for a seat not read yet (a later join) adds it.
    rows = applySeat(rows, { seat: 1, userId: 'cy', result: { exitedAt: T0 + 3_000, breakFirst: false } });
    expect(rows.map((r) => r.seat)).toEqual([0, 1, 2]);
    expect(rows[1].joinedAt).toBeNull();
    // Results are final: a repeat changes nothing.
    expect(applySeat(rows, { ...bobExit, result: { exitedAt: 1, breakFirst: false } })).toBe(rows);
  });

  it('adds a pushed join as a seat without a result, once', () => {
    let rows = mergeResults([], results);
    rows = applyJoin(rows, { seat: 1, userId: 'cy', joinedAt: T0 + 20 });
    expect(rows.map((r) => [r.seat, r.userId, r.joinedAt, r.result])).toEqual([
      [0, 'alice', T0, null],
      [1, 'cy', T0 + 20, null],
      [2, 'bob', T0 + 10, null],
    ]);
    // A repeat (the replay after a reconnect), or a join of a seat held, changes nothing.
    expect(applyJoin(rows, { seat: 1, userId: 'cy', joinedAt: T0 + 20 })).toBe(rows);
    expect(applyJoin(rows, { seat: 2, userId: 'mallory', joinedAt: T0 + 30 })).toBe(rows);
    // A seat learned from its result push first gets its join time; its result stays.
    const pushedFirst = applySeat([], { ...bobExit });
    const joined = applyJoin(pushedFirst, { seat: 2, userId: 'bob', joinedAt: T0 + 10 });
    expect([joined[0].joinedAt, joined[0].result]).toEqual([T0 + 10, bobExit.result]);
    expect(isSeatJoin({ seat: 1, userId: 'cy', joinedAt: 5 })).toBe(true);
    expect(isSeatJoin({ seat: 1, userId: 'cy', joinedAt: '5' })).toBe(false);
    expect(isSeatJoin({ seat: -1, userId: 'cy', joinedAt: 5 })).toBe(false);
    expect(isSeatJoin({ seat: 1, joinedAt: 5 })).toBe(false);
  });

  it('checks the shape of a push and of a results answer', () => {
    expect(isSeatExit(bobExit)).toBe(true);
    expect(isSeatExit({ seat: -1, userId: 'x', result: { exitedAt: 1, breakFirst: false } })).toBe(false);
    expect(isSeatExit({ seat: 1, userId: 'x', result: { exitedAt: '1', breakFirst: false } })).toBe(false);
    expect(isSeatExit({ seat: 1, userId: 'x' })).toBe(false);
    const parsed = parseResults({ ...results, seats: [...results.seats, { seat: 1, userId: 'cy', joinedAt: T0, result: bobExit.result }] }, 'r');
    expect(parsed.seats[2].result).toEqual(bobExit.result);
    expect(() => parseResults({ gameId: 'g', status: 'active', seats: [{ seat: 0, userId: 'a', joinedAt: 1, result: { exitedAt: 'x' } }] }, 'r')).toThrow();
    expect(() => parseResults({ gameId: 'g' }, 'r')).toThrow();
  });
});

class FakeSocket {
  static last: FakeSocket | null = null;
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send() {}
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
}

describe('live seat pushes', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it('the room reports well-formed seat pushes only', () => {
    const onSeat = vi.fn();
    const room = new LiveRoom('g-s', { role: 'viewer' }, { onSeat }, { WebSocketImpl: FakeSocket as unknown as typeof WebSocket, baseUrl: 'http://e' });
    room.start();
    const ws = FakeSocket.last!;
    ws.readyState = 1;
    ws.onopen?.();
    ws.onmessage?.({ data: JSON.stringify({ type: 'seat', ...bobExit }) });
    ws.onmessage?.({ data: JSON.stringify({ type: 'seat', seat: 'x', userId: 'bob', result: bobExit.result }) });
    expect(onSeat).toHaveBeenCalledTimes(1);
    expect(onSeat).toHaveBeenCalledWith(bobExit);
    room.close();
  });

  it('the room reports well-formed join pushes only, and a seat says hello with its seat', () => {
    const onSeated = vi.fn();
    const sent: string[] = [];
    const room = new LiveRoom(
      'g-s',
      { role: 'player', userId: 'cy', ownerToken: 'st1.k.p.m', seat: 1 },
      { onSeated },
      { WebSocketImpl: FakeSocket as unknown as typeof WebSocket, baseUrl: 'http://e' },
    );
    room.start();
    const ws = FakeSocket.last!;
    (ws as unknown as { send: (text: string) => void }).send = (text) => void sent.push(text);
    ws.readyState = 1;
    ws.onopen?.();
    expect(JSON.parse(sent[0])).toEqual({ type: 'hello', role: 'player', userId: 'cy', ownerToken: 'st1.k.p.m', seat: 1 });
    ws.onmessage?.({ data: JSON.stringify({ type: 'seated', seat: 1, userId: 'cy', joinedAt: T0 + 20 }) });
    ws.onmessage?.({ data: JSON.stringify({ type: 'seated', seat: 1, userId: 'cy' }) });
    expect(onSeated).toHaveBeenCalledTimes(1);
    expect(onSeated).toHaveBeenCalledWith({ seat: 1, userId: 'cy', joinedAt: T0 + 20 });
    room.close();
  });

  it('a joined seat plays in the room as its player; joins arrive by push, never by re-reading /results', async () => {
    let events: Parameters<LiveFactory>[2] | null = null;
    let hello: Parameters<LiveFactory>[1] | null = null;
    const live: LiveFactory = (_id, h, ev) => {
      events = ev;
      hello = h;
      return { start: () => ev.onStatus?.('open'), close: vi.fn() };
    };
    const getResults = vi.fn(async () => results);
    const api = { getGame: vi.fn(async () => game), exitGame: vi.fn(), getResults };
    const open = { ...game, shared: { maxPlayers: 3, joinDeadline: T0 + 60_000 }, ownerToken: 'st1.seat.p.m' };
    const s = new GameSession(open, 'player', { clock: { serverNow: () => Date.now() }, api, live, pollMs: 1_000 }, { seat: 2, userId: 'bob' });
    s.run();
    expect(hello).toEqual({ role: 'player', userId: 'bob', ownerToken: 'st1.seat.p.m', seat: 2 });
    await vi.advanceTimersByTimeAsync(0);
    expect(getResults).toHaveBeenCalledTimes(1);
    events!.onSeated?.({ seat: 1, userId: 'cy', joinedAt: T0 + 30 });
    expect(s.getSnapshot().seats!.map((r) => [r.seat, r.userId])).toEqual([
      [0, 'alice'],
      [1, 'cy'],
      [2, 'bob'],
    ]);
    // Polls while joins are open read the game's status at most, never the seats again.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(getResults).toHaveBeenCalledTimes(1);
    s.dispose();
  });

  it('a session of a shared game loads /results, then updates the table from each push', async () => {
    let events: Parameters<LiveFactory>[2] | null = null;
    const live: LiveFactory = (_id, _hello, ev) => {
      events = ev;
      return { start: () => ev.onStatus?.('open'), close: vi.fn() };
    };
    const getResults = vi.fn(async () => results);
    const api = { getGame: vi.fn(async () => game), exitGame: vi.fn(), getResults };
    const s = new GameSession(game, 'viewer', { clock: { serverNow: () => Date.now() }, api, live });
    expect(s.getSnapshot().seats).toEqual([]);
    s.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(getResults).toHaveBeenCalledWith('g-s', expect.anything());
    expect(s.getSnapshot().seats!.map((r) => r.userId)).toEqual(['alice', 'bob']);
    events!.onSeat?.(bobExit);
    const rows = s.getSnapshot().seats!;
    expect(rows[1].result).toEqual(bobExit.result);
    expect(s.getSnapshot().stopped).toBe(false);
    // The last seat's exit ends the game: the final results are read again.
    events!.onExited?.(T0 + 4_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(getResults).toHaveBeenCalledTimes(2);
    s.dispose();

    // A one-player game has no table and reads no results.
    const solo = new GameSession({ ...game, shared: undefined }, 'viewer', { clock: { serverNow: () => Date.now() }, api, live });
    solo.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(solo.getSnapshot().seats).toBeNull();
    expect(getResults).toHaveBeenCalledTimes(2);
    solo.dispose();
  });

  it("a player's own exit keeps the room open until the last seat's, so the others' results still arrive", async () => {
    let events: Parameters<LiveFactory>[2] | null = null;
    const close = vi.fn();
    const live: LiveFactory = (_id, _hello, ev) => {
      events = ev;
      return { start: () => ev.onStatus?.('open'), close };
    };
    const getResults = vi.fn(async () => results);
    const exitGame = vi.fn(async () => ({ ok: true as const, gameId: 'g-s', userId: 'alice', exitedAt: T0 + 1_500, status: 'exited' as const, backendRegion: 'eu' }));
    const api = { getGame: vi.fn(async () => game), exitGame, getResults };
    const s = new GameSession({ ...game, ownerToken: 'st1.k.p.m' }, 'player', { clock: { serverNow: () => Date.now() }, api, live });
    s.run();
    vi.setSystemTime(T0 + 1_600);
    await s.exit();
    expect(s.getSnapshot().stopped).toBe(true);
    expect(close).not.toHaveBeenCalled();
    events!.onSeat?.(bobExit);
    expect(s.getSnapshot().seats![1].result).toEqual(bobExit.result);
    events!.onExited?.(T0 + 2_000);
    expect(close).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(0);
    // On load, at the own exit, at the game's end.
    expect(getResults).toHaveBeenCalledTimes(3);
    s.dispose();
  });

  it('renders one row per seat with its result', () => {
    const rows = applySeat(mergeResults([], results), bobExit);
    const html = renderToStaticMarkup(createElement(SeatsTable, { seats: rows, maxPlayers: 3, you: 'alice' }));
    expect(html).toContain('Seats: 2 of 3 taken, 1 exited');
    expect(html).toContain('alice (you)');
    expect(html).toMatch(/data-testid="seat-0"[^>]*>.*playing/);
    expect(html).toMatch(/data-testid="seat-2".*<td>10<\/td><td>1234<\/td><td>yes<\/td>/);
  });
});
