import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Game } from '../src/api/edge';
import { LiveRoom, liveUrl } from '../src/game/live';
import { GameSession, type LiveFactory } from '../src/game/session';
import { loadEngineForTests } from './helpers';

beforeAll(loadEngineForTests);

/** A WebSocket double: records what the page sends; the test plays the room. */
class FakeSocket {
  static last: FakeSocket | null = null;
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  push(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

const T0 = 1_760_000_000_000;
const game: Game = {
  gameId: 'g-1',
  userId: 'alice',
  region: 'us',
  seed: 42,
  startAt: T0 + 1_000,
  tickMs: 100,
  breakEvery: 5,
  algorithm: 'mix32-v1',
  status: 'active',
  backendRegion: 'us',
  createdAt: T0,
};
const presence = { players: [{ connId: 'c1', role: 'player' as const, userId: 'alice' }], viewers: 2 };

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

describe('LiveRoom', () => {
  it('builds the ws URL from the edge base', () => {
    expect(liveUrl('http://x.example', 'g 1')).toBe('ws://x.example/edge/game/g%201/live');
    expect(liveUrl('https://x.example', 'g')).toBe('wss://x.example/edge/game/g/live');
  });

  it('says hello, measures latency from pong timestamps, reports presence and the exit', () => {
    const events = { onPresence: vi.fn(), onStatus: vi.fn(), onExited: vi.fn(), onLatency: vi.fn() };
    const room = new LiveRoom('g-1', { role: 'player', userId: 'alice', ownerToken: 'st1.k.p.m' }, events, {
      baseUrl: 'http://edge',
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    room.start();
    const ws = FakeSocket.last!;
    ws.open();
    expect(ws.sent[0]).toEqual({ type: 'hello', role: 'player', userId: 'alice', ownerToken: 'st1.k.p.m' });
    expect(ws.sent[1]).toMatchObject({ type: 'ping', clientTime: T0 });
    vi.setSystemTime(T0 + 40);
    // Server clock 5 s ahead; 40 ms round trip.
    ws.push({ type: 'pong', clientTime: T0, serverReceived: T0 + 5_020, serverSent: T0 + 5_020 });
    expect(events.onLatency).toHaveBeenLastCalledWith({ rttMs: 40, jitterMs: 0, offsetMs: 5_000, boundMs: 20 });
    ws.push({ type: 'welcome', connId: 'c1', role: 'player', gameId: 'g-1', status: 'active', serverTime: T0, presence });
    expect(events.onPresence).toHaveBeenCalledWith(presence);
    ws.push({ type: 'exited', gameId: 'g-1', exitedAt: T0 + 3_000, source: 'edge' });
    expect(events.onExited).toHaveBeenCalledWith(T0 + 3_000);
    room.close();
  });

  it('hands a sealed game’s round push to the session, and drops malformed ones', () => {
    const onRound = vi.fn();
    const room = new LiveRoom('g-1', { role: 'viewer' }, { onRound }, {
      baseUrl: 'http://edge',
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    room.start();
    const ws = FakeSocket.last!;
    ws.open();
    ws.push({ type: 'round', round: 3, key: 'ab'.repeat(32) });
    expect(onRound).toHaveBeenCalledWith(3, 'ab'.repeat(32));
    ws.push({ type: 'round', round: '3', key: 'ab'.repeat(32) });
    ws.push({ type: 'round', round: 4 });
    expect(onRound).toHaveBeenCalledTimes(1);
    room.close();
  });

  it('carries on as viewer when the room refuses the owner proof', () => {
    const onRefused = vi.fn();
    const room = new LiveRoom('g-1', { role: 'player', userId: 'alice', ownerToken: 'stale' }, { onRefused }, {
      baseUrl: 'http://edge',
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    room.start();
    const ws = FakeSocket.last!;
    ws.open();
    ws.push({ type: 'error', error: { code: 'forbidden', message: 'the owner token has expired' } });
    expect(onRefused).toHaveBeenCalledWith('the owner token has expired');
    expect(ws.sent.at(-1)).toEqual({ type: 'hello', role: 'viewer' });
    // Once welcomed, later errors (a bad ping, say) change nothing.
    ws.push({ type: 'welcome', connId: 'c1', role: 'viewer', gameId: 'g-1', status: 'active', serverTime: T0, presence });
    const sent = ws.sent.length;
    ws.push({ type: 'error', error: { code: 'forbidden', message: 'only the owner may end it' } });
    expect(ws.sent.length).toBe(sent);
    expect(onRefused).toHaveBeenCalledTimes(1);
    room.close();
  });

  it('reconnects with backoff and reports down after repeated failures', () => {
    const onStatus = vi.fn();
    const room = new LiveRoom('g-1', { role: 'viewer' }, { onStatus }, {
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
      baseUrl: 'http://edge',
      maxFailures: 2,
    });
    room.start();
    FakeSocket.last!.close();
    vi.advanceTimersByTime(10_000);
    FakeSocket.last!.close();
    expect(onStatus).toHaveBeenCalledWith('down');
    vi.advanceTimersByTime(10_000);
    FakeSocket.last!.open();
    expect(onStatus).toHaveBeenLastCalledWith('open');
    room.close();
  });
});

describe('GameSession with a live room', () => {
  it('joins as player with the owner token it holds, else as viewer', () => {
    const hellos: unknown[] = [];
    const live: LiveFactory = (_id, hello, ev) => {
      hellos.push(hello);
      return { start: () => ev.onStatus?.('open'), close: vi.fn() };
    };
    const api = { getGame: vi.fn(async () => game), exitGame: vi.fn() };
    const deps = { clock: { serverNow: () => Date.now() }, api, live };
    const owned = new GameSession({ ...game, ownerToken: 'st1.k.p.m' }, 'player', deps);
    owned.run();
    const tokenless = new GameSession(game, 'player', deps);
    tokenless.run();
    expect(hellos).toEqual([{ role: 'player', userId: 'alice', ownerToken: 'st1.k.p.m' }, { role: 'viewer' }]);
    owned.dispose();
    tokenless.dispose();
  });

  it('freezes at the pushed exit without polling while the room is open', () => {
    let events: Parameters<LiveFactory>[2] | null = null;
    const live: LiveFactory = (_id, hello, ev) => {
      expect(hello).toEqual({ role: 'viewer' });
      events = ev;
      return { start: () => ev.onStatus?.('open'), close: vi.fn() };
    };
    const api = { getGame: vi.fn(async () => game), exitGame: vi.fn() };
    const s = new GameSession(game, 'viewer', { clock: { serverNow: () => Date.now() }, api, live });
    s.run();
    expect(s.getSnapshot().liveStatus).toBe('open');
    vi.advanceTimersByTime(3_500);
    expect(s.getSnapshot().state.phase).toBe('running');
    // The poll timer fired, but the room is open: no request.
    expect(api.getGame).not.toHaveBeenCalled();
    events!.onPresence?.(presence);
    expect(s.getSnapshot().presence).toEqual(presence);
    events!.onExited?.(T0 + 3_000);
    const snap = s.getSnapshot();
    expect(snap.stopped).toBe(true);
    expect(snap.endedAt).toBe(T0 + 3_000);
    expect(snap.state.phase).toBe('ended');
    s.dispose();
  });
});
