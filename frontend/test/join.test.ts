// Taking a seat in a shared game from the page: the join answer's validation, every refusal as a
// sentence, the start's shared-game fields, the join link, and a joined seat's session (exits
// its own seat with its own token, shows its result, and is in the room as viewer).
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { EdgeClient, EdgeError, errorFromResponse, joinRefusal, parseExit, parseGame, parseJoin, type Game } from '../src/api/edge';
import { joinLinkFrom } from '../src/App';
import { JoinForm, StartForm, validateMaxPlayers } from '../src/components/Forms';
import { joinLink } from '../src/format';
import type { Hello } from '../src/game/live';
import { GameSession, playerOf, type LiveFactory } from '../src/game/session';
import { loadEngineForTests } from './helpers';

beforeAll(loadEngineForTests);

const T0 = 1_760_000_000_000;
const GAME_ID = '3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b';
/** The origin's game view of a shared game, as a join answer carries it (no backendRegion, no token). */
const gameView = {
  gameId: GAME_ID,
  userId: 'alice',
  region: 'eu',
  seed: 7,
  startAt: T0 + 3_000,
  tickMs: 100,
  breakEvery: 5,
  algorithm: 'mix32-v1',
  status: 'active',
  createdAt: T0,
  shared: { maxPlayers: 3, joinDeadline: T0 + 3_000 },
};
const answer = {
  seat: 1,
  userId: 'bob',
  joinedAt: T0 + 500,
  game: gameView,
  ownerToken: 'st1.k.bob.mac',
  backendRegion: 'us',
};
const sent = { gameId: GAME_ID, userId: 'bob' };

function bad(fn: () => unknown): EdgeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeError);
    expect((err as EdgeError).code).toBe('bad_response');
    return err as EdgeError;
  }
  throw new Error('expected a bad_response');
}

describe('the join answer', () => {
  it('is a seat, its token and the shared game, placed in the region that seated the player', () => {
    const joined = parseJoin(answer, sent, 'Joining the game');
    expect(joined).toEqual({
      game: { ...gameView, backendRegion: 'us' },
      seat: 1,
      userId: 'bob',
      joinedAt: T0 + 500,
      ownerToken: 'st1.k.bob.mac',
    });
    // A seat found again (200) without its token, and one already exited, with its result.
    const result = { exitedAt: T0 + 4_000, final: { step: 10, value: 3, round: 2, broken: false }, breakFirst: true };
    const again = parseJoin({ ...answer, ownerToken: undefined, result }, sent, 'j');
    expect(again.ownerToken).toBeUndefined();
    expect(again.result).toEqual(result);
    // Without a backendRegion, the game's own region.
    expect(parseJoin({ ...answer, backendRegion: undefined }, sent, 'j').game.backendRegion).toBe('eu');
    // A token inside the game view is never taken for the seat's.
    expect(parseJoin({ ...answer, game: { ...gameView, ownerToken: 'st1.k.alice.mac' } }, sent, 'j').game.ownerToken).toBeUndefined();
  });

  it('refuses answers the page cannot play: not shared, another game, another player, a seat out of range, a bad result', () => {
    expect(bad(() => parseJoin(null, sent, 'Joining the game')).message).toBe("Joining the game failed: the edge's answer is not a seat");
    expect(bad(() => parseJoin({ ...answer, game: { ...gameView, shared: undefined } }, sent, 'J')).message).toContain('"game.shared"');
    expect(bad(() => parseJoin({ ...answer, game: { ...gameView, shared: { maxPlayers: 3 } } }, sent, 'J')).message).toContain('"shared"');
    expect(bad(() => parseJoin(answer, { ...sent, gameId: 'other' }, 'J')).message).toContain('"game.gameId"');
    expect(bad(() => parseJoin(answer, { ...sent, userId: 'carol' }, 'J')).message).toContain('"userId"');
    for (const seat of [-1, 3, 1.5, '1']) expect(bad(() => parseJoin({ ...answer, seat }, sent, 'J')).message).toContain('"seat"');
    expect(bad(() => parseJoin({ ...answer, joinedAt: 'soon' }, sent, 'J')).message).toContain('"joinedAt"');
    expect(bad(() => parseJoin({ ...answer, game: { ...gameView, algorithm: 'dice' } }, sent, 'J')).message).toContain('"algorithm"');
    const broken = { exitedAt: T0, final: { step: 'x', value: 1, round: 0, broken: false }, breakFirst: false };
    expect(bad(() => parseJoin({ ...answer, result: broken }, sent, 'J')).message).toContain('"result"');
    expect(bad(() => parseJoin({ ...answer, result: { exitedAt: T0 } }, sent, 'J')).message).toContain('"result"');
  });

  it('a game view keeps its shared facts; an exit answer keeps the seat result', () => {
    expect(parseGame({ ...gameView, backendRegion: 'eu' }, 'g').shared).toEqual({ maxPlayers: 3, joinDeadline: T0 + 3_000 });
    expect(parseGame({ ...gameView, shared: undefined }, 'g').shared).toBeUndefined();
    bad(() => parseGame({ ...gameView, shared: { maxPlayers: '3', joinDeadline: 1 } }, 'g'));
    const result = { exitedAt: T0 + 4_000, final: { step: 10, value: 3, round: 2, broken: false }, breakFirst: true };
    const sentExit = { gameId: GAME_ID, userId: 'bob' };
    expect(parseExit({ ok: true, gameId: GAME_ID, userId: 'bob', exitedAt: T0 + 4_000, status: 'exited', result }, sentExit, 'x').result).toEqual(result);
    expect(parseExit({ exitedAt: 5 }, sentExit, 'x').result).toBeUndefined();
    bad(() => parseExit({ exitedAt: 5, result: { exitedAt: 5, breakFirst: 'no' } }, sentExit, 'x'));
  });
});

describe('join refusals', () => {
  const cases: [string, number, RegExp][] = [
    ['game_full', 409, /every seat of this game is taken/],
    ['already_playing', 409, /you already play another game .*exit it first/],
    ['not_joinable', 409, /one-player game.*watched, not joined/],
    ['join_closed', 410, /no longer takes players/],
    ['game_ended', 410, /has ended.*results/],
    ['unauthorized', 401, /did not accept this browser's identity/],
  ];

  it.each(cases)('%s (HTTP %i) reads as a sentence naming the code', (code, status, pattern) => {
    const body = JSON.stringify({ error: { code, message: `server words for ${code}` } });
    const err = errorFromResponse(status, body, 'Joining the game');
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toMatch(pattern);
    expect(err.message).toMatch(new RegExp(`^Joining the game failed: .+ \\(${code}, HTTP ${status}\\)$`));
    // The page's sentence, not the server's wording.
    expect(err.message).not.toContain('server words');
  });

  it('a 401 without a body, a 404 and a 429 are explained too; other answers keep the server message', () => {
    expect(errorFromResponse(401, '', 'Joining the game').message).toMatch(/identity/);
    expect(joinRefusal(404, 'not_found')).toMatch(/no game has this id/);
    const limited = errorFromResponse(429, JSON.stringify({ error: { code: 'rate_limited', message: 'slow' } }), 'Joining the game', 3);
    expect(limited.message).toContain('try again in 3 s');
    const invalid = errorFromResponse(400, JSON.stringify({ error: { code: 'validation_failed', message: 'userId is too long', field: 'userId' } }), 'Joining the game');
    expect(invalid.message).toBe('Joining the game failed: userId is too long (validation_failed, HTTP 400)');
    expect(invalid.field).toBe('userId');
    // A start's 409 is not a join's.
    expect(joinRefusal(409, 'conflict')).toBeUndefined();
  });
});

describe('EdgeClient joins and shared starts', () => {
  it('joins with the user, the region hint and the user token; a refusal rejects with its sentence', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    let next = () => new Response(JSON.stringify(answer), { status: 201 });
    const fetch = (async (url: RequestInfo | URL, init?: RequestInit) => {
      calls.push({ url: String(url), init: init ?? {} });
      return next();
    }) as typeof globalThis.fetch;
    const api = new EdgeClient({ fetch });
    const joined = await api.joinGame(GAME_ID, 'bob', 'us', 'gt1.user.token');
    expect(joined.seat).toBe(1);
    expect(calls[0].url).toBe(`/edge/game/${GAME_ID}/join`);
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ userId: 'bob', backendRegion: 'us' });
    expect((calls[0].init.headers as Record<string, string>).authorization).toBe('Bearer gt1.user.token');
    await api.joinGame(GAME_ID, 'bob');
    expect(JSON.parse(String(calls[1].init.body))).toEqual({ userId: 'bob' });
    expect((calls[1].init.headers as Record<string, string>).authorization).toBeUndefined();

    next = () => new Response(JSON.stringify({ error: { code: 'game_full', message: 'no free seat' } }), { status: 409 });
    const err = await api.joinGame(GAME_ID, 'carol').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EdgeError);
    expect((err as EdgeError).message).toBe('Joining the game failed: every seat of this game is taken; you can still watch it (game_full, HTTP 409)');
  });

  it('starts a shared game with its seats and join deadline', async () => {
    const bodies: unknown[] = [];
    const fetch = (async (_url: RequestInfo | URL, init?: RequestInit) => {
      bodies.push(JSON.parse(String(init?.body)));
      return new Response(JSON.stringify({ ...gameView, ownerToken: 'st1.a' }), { status: 201 });
    }) as typeof globalThis.fetch;
    const api = new EdgeClient({ fetch });
    const g = await api.startGame('alice', 'eu', undefined, undefined, { maxPlayers: 3, joinDeadline: T0 + 60_000 });
    expect(g.shared).toEqual(gameView.shared);
    await api.startGame('alice', undefined, undefined, undefined, { maxPlayers: 100 });
    expect(bodies).toEqual([
      { userId: 'alice', preferredRegion: 'eu', maxPlayers: 3, joinDeadline: T0 + 60_000 },
      { userId: 'alice', maxPlayers: 100 },
    ]);
  });
});

describe('the forms and the join link', () => {
  it('checks the number of players (2 to 100, the creator included)', () => {
    expect(validateMaxPlayers('2')).toBeNull();
    expect(validateMaxPlayers(' 100 ')).toBeNull();
    expect(validateMaxPlayers('1')).toMatch(/2 to 100 players/);
    expect(validateMaxPlayers('101')).toMatch(/2 to 100 players/);
    expect(validateMaxPlayers('2.5')).toMatch(/whole number/);
    expect(validateMaxPlayers('')).toMatch(/whole number/);
  });

  it('a join link carries the game and its region, and is read back', () => {
    const link = joinLink(GAME_ID, 'http://127.0.0.1:8787', 'us');
    expect(link).toBe(`http://127.0.0.1:8787/?join=${GAME_ID}&region=us`);
    expect(joinLinkFrom(new URL(link).search)).toEqual({ gameId: GAME_ID, region: 'us' });
    expect(joinLinkFrom(`?join=${GAME_ID}`)).toEqual({ gameId: GAME_ID });
    expect(joinLinkFrom(`?game=${GAME_ID}`)).toBeNull();
    expect(joinLinkFrom('?join=%20')).toBeNull();
  });

  it('the join form offers a seat and watching; the start form keeps its keyboard order', () => {
    const join = renderToStaticMarkup(createElement(JoinForm, { busy: false, onJoin: () => {}, onTakeSeat: () => {}, initialGameId: GAME_ID, joinLink: true }));
    expect(join).toContain('Join this game');
    expect(join).toContain('Take a seat');
    expect(join).toContain('Play as');
    expect(join).toContain(`value="${GAME_ID}"`);
    const start = renderToStaticMarkup(createElement(StartForm, { busy: false, onStart: () => {} }));
    // User id, region, Start, then the options (sync.e2e tabs from the region to Start).
    expect(start.indexOf('type="submit"')).toBeLessThan(start.indexOf('data-testid="shared-option"'));
  });
});

describe('a joined seat on the page', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  const game: Game = { ...(gameView as Game), backendRegion: 'us', ownerToken: 'st1.k.bob.mac' };
  const bobResult = { exitedAt: T0 + 4_000, final: { step: 10, value: 3, round: 2, broken: false }, breakFirst: true };

  it("is in the room as its seat's player, exits as its own player with its own token, and shows its result", async () => {
    let hello: Hello | null = null;
    let events: Parameters<LiveFactory>[2] | null = null;
    const close = vi.fn();
    const live: LiveFactory = (_id, h, ev) => {
      hello = h;
      events = ev;
      return { start: () => ev.onStatus?.('open'), close };
    };
    const exitGame = vi.fn(async () => ({
      ok: true as const,
      gameId: GAME_ID,
      userId: 'bob',
      exitedAt: bobResult.exitedAt,
      status: 'exited' as const,
      backendRegion: 'us',
      result: bobResult,
    }));
    const getResults = vi.fn(async () => ({ gameId: GAME_ID, status: 'active' as const, maxPlayers: 3, seats: [{ seat: 0, userId: 'alice', joinedAt: T0 }, { seat: 1, userId: 'bob', joinedAt: T0 + 500 }] }));
    const api = { getGame: vi.fn(async () => game), exitGame, getResults };
    const s = new GameSession(game, 'player', { clock: { serverNow: () => Date.now() }, api, live }, { seat: 1, userId: 'bob' });
    expect(playerOf(s.getSnapshot())).toBe('bob');
    s.run();
    expect(hello).toEqual({ role: 'player', userId: 'bob', ownerToken: 'st1.k.bob.mac', seat: 1 });
    vi.setSystemTime(bobResult.exitedAt + 20);
    await s.exit();
    expect(exitGame).toHaveBeenCalledWith(GAME_ID, 'bob', 'us', 'st1.k.bob.mac');
    const snap = s.getSnapshot();
    expect(snap.myResult).toEqual(bobResult);
    expect(snap.stopped).toBe(true);
    expect(snap.endedAt).toBe(bobResult.exitedAt);
    // The others' exits still arrive; the creator's does not replace this player's result.
    expect(close).not.toHaveBeenCalled();
    events!.onSeat?.({ seat: 0, userId: 'alice', result: { exitedAt: T0 + 5_000, breakFirst: true } });
    expect(s.getSnapshot().myResult).toEqual(bobResult);
    expect(s.getSnapshot().seats!.find((r) => r.seat === 0)?.result?.exitedAt).toBe(T0 + 5_000);
    s.dispose();
  });

  it('reads the seats once; later joins come from the room, never by polling /results', async () => {
    let events: Parameters<LiveFactory>[2] | null = null;
    const live: LiveFactory = (_id, _h, ev) => {
      events = ev;
      return { start: () => ev.onStatus?.('open'), close: vi.fn() };
    };
    const seats = [{ seat: 0, userId: 'alice', joinedAt: T0 }];
    const getResults = vi.fn(async () => ({ gameId: GAME_ID, status: 'active' as const, maxPlayers: 3, seats: [...seats] }));
    const api = { getGame: vi.fn(async () => game), exitGame: vi.fn(), getResults };
    // Joins open until T0 + 10 s; polls every 2 s.
    const open = { ...game, shared: { maxPlayers: 3, joinDeadline: T0 + 10_000 } };
    const s = new GameSession(open, 'viewer', { clock: { serverNow: () => Date.now() }, api, live, pollMs: 2_000 });
    s.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.getSnapshot().seats!.map((r) => r.userId)).toEqual(['alice']);
    seats.push({ seat: 1, userId: 'bob', joinedAt: T0 + 1_000 });
    await vi.advanceTimersByTimeAsync(2_000);
    // Not polled: the page does not know of bob until the room pushes his join.
    expect(s.getSnapshot().seats!.map((r) => r.userId)).toEqual(['alice']);
    events!.onSeated?.({ seat: 1, userId: 'bob', joinedAt: T0 + 1_000 });
    expect(s.getSnapshot().seats!.map((r) => [r.userId, r.joinedAt])).toEqual([
      ['alice', T0],
      ['bob', T0 + 1_000],
    ]);
    await vi.advanceTimersByTimeAsync(20_000);
    // The load only, while joins were open and after.
    expect(getResults).toHaveBeenCalledTimes(1);
    s.dispose();
  });

  it("learns its result from its seat's row when the exit answer has none; the creator still says hello as player", async () => {
    let hello: Hello | null = null;
    let events: Parameters<LiveFactory>[2] | null = null;
    const live: LiveFactory = (_id, h, ev) => {
      hello = h;
      events = ev;
      return { start: () => ev.onStatus?.('open'), close: vi.fn() };
    };
    const exitGame = vi.fn(async () => ({ ok: true as const, gameId: GAME_ID, userId: 'bob', exitedAt: bobResult.exitedAt, status: 'exited' as const, backendRegion: 'us' }));
    const api = { getGame: vi.fn(async () => game), exitGame, getResults: vi.fn(async () => ({ gameId: GAME_ID, status: 'active' as const, seats: [] })) };
    const s = new GameSession(game, 'player', { clock: { serverNow: () => Date.now() }, api, live }, { seat: 1, userId: 'bob' });
    s.run();
    await s.exit();
    expect(s.getSnapshot().myResult).toBeNull();
    events!.onSeat?.({ seat: 1, userId: 'bob', result: bobResult });
    expect(s.getSnapshot().myResult).toEqual(bobResult);
    s.dispose();

    const creator = new GameSession({ ...game, ownerToken: 'st1.k.alice.mac' }, 'player', { clock: { serverNow: () => Date.now() }, api, live });
    creator.run();
    expect(playerOf(creator.getSnapshot())).toBe('alice');
    expect(hello).toEqual({ role: 'player', userId: 'alice', ownerToken: 'st1.k.alice.mac' });
    creator.dispose();
    // A viewer plays no one.
    const viewer = new GameSession(game, 'viewer', { clock: { serverNow: () => Date.now() }, api, live }, { seat: 1, userId: 'bob' });
    expect(playerOf(viewer.getSnapshot())).toBeNull();
    expect(viewer.getSnapshot().mySeat).toBeNull();
    viewer.dispose();
  });
});
