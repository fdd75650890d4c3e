import { describe, expect, it } from 'vitest';
import { EdgeClient, EdgeError, errorFromResponse, parseExit, parseGame, parseRounds, retryDelayMs, type Game } from '../src/api/edge';
import { ALGORITHMS, ERROR_STATUS, type ErrorBody } from '../src/api/generated/contract';

const game: Game = {
  gameId: '3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b',
  userId: 'alice',
  region: 'eu',
  seed: 42,
  startAt: 1_750_000_003_000,
  tickMs: 100,
  breakEvery: 50,
  algorithm: 'mix32-v1',
  status: 'active',
  createdAt: 1_750_000_000_000,
  backendRegion: 'eu',
  routedBy: 'preference',
};

function fakeFetch(handler: (url: string, init: RequestInit) => Promise<Response> | Response) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), init: init ?? {} });
    return handler(String(input), init ?? {});
  }) as typeof fetch;
  return { fn, calls };
}

async function caught(p: Promise<unknown>): Promise<EdgeError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeError);
    return err as EdgeError;
  }
  throw new Error('expected a rejection');
}

describe('EdgeClient', () => {
  it('starts a game, sending the region only when one was picked', async () => {
    const { fn, calls } = fakeFetch(() => new Response(JSON.stringify(game), { status: 201 }));
    const api = new EdgeClient({ fetch: fn });
    const g = await api.startGame('alice', 'asia');
    expect(g.seed).toBe(42);
    expect(g.routedBy).toBe('preference');
    await api.startGame('alice');
    expect(calls.map((c) => [c.url, c.init.method, JSON.parse(String(c.init.body))])).toEqual([
      ['/edge/game/start', 'POST', { userId: 'alice', preferredRegion: 'asia' }],
      ['/edge/game/start', 'POST', { userId: 'alice' }],
    ]);
  });

  it('gets a guest identity, or null from an edge that issues none, and starts with it', async () => {
    const issued = { userId: 'guest-0123456789abcdef0123456789abcdef', userToken: 'gt1.1.guest-x.mac', expiresAt: 1_900_000_000_000 };
    const { fn, calls } = fakeFetch((url) =>
      url === '/edge/auth/guest' ? new Response(JSON.stringify(issued), { status: 201 }) : new Response(JSON.stringify(game), { status: 201 }),
    );
    const api = new EdgeClient({ fetch: fn });
    expect(await api.guestIdentity()).toEqual(issued);
    await api.startGame(issued.userId, undefined, issued.userToken);
    expect(calls.map((c) => [c.url, c.init.method])).toEqual([
      ['/edge/auth/guest', 'POST'],
      ['/edge/game/start', 'POST'],
    ]);
    expect((calls[1].init.headers as Record<string, string>).authorization).toBe(`Bearer ${issued.userToken}`);
    const off = fakeFetch(
      () => new Response(JSON.stringify({ error: { code: 'not_found', message: 'no guests here' } } satisfies ErrorBody), { status: 404 }),
    );
    expect(await new EdgeClient({ fetch: off.fn }).guestIdentity()).toBeNull();
    // A start refused for its identity says so (not the owner-token text of exits).
    const refused = fakeFetch(
      () => new Response(JSON.stringify({ error: { code: 'unauthorized', message: 'expired' } } satisfies ErrorBody), { status: 401 }),
    );
    const err = await caught(new EdgeClient({ fetch: refused.fn }).startGame('alice', undefined, 'gt1.x'));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/identity/);
  });

  it('turns the edge’s JSON errors into readable messages', async () => {
    const { fn } = fakeFetch(
      () => new Response(JSON.stringify({ error: { code: 'not_found', message: 'no game g-404' } } satisfies ErrorBody), { status: 404 }),
    );
    const err = await caught(new EdgeClient({ fetch: fn }).getGame('g-404'));
    expect(err.code).toBe('not_found');
    expect(err.status).toBe(404);
    expect(err.message).toBe('Loading the game failed: no game g-404 (not_found, HTTP 404)');
  });

  it('describes non-JSON failures (a proxy’s HTML page) without dumping them whole', () => {
    const err = errorFromResponse(502, '<html>\n  <body>Bad gateway</body></html>' + 'x'.repeat(500), 'Starting the game');
    expect(err.message.startsWith('Starting the game failed: server error (HTTP 502): <html> <body>Bad gateway')).toBe(true);
    expect(err.message.length).toBeLessThan(260);
  });

  it('gives up after the timeout instead of hanging', async () => {
    const { fn } = fakeFetch(
      (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    );
    const t0 = Date.now();
    const err = await caught(new EdgeClient({ fetch: fn, timeoutMs: 60 }).getTime());
    expect(err.code).toBe('timeout');
    expect(err.message).toMatch(/did not answer within 0\.1 s/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('reports an unreachable edge', async () => {
    const { fn } = fakeFetch(() => {
      throw new TypeError('fetch failed');
    });
    const err = await caught(new EdgeClient({ fetch: fn }).exitGame('g-1', 'alice'));
    expect(err.code).toBe('network');
    expect(err.message).toMatch(/could not reach the edge/);
  });

  it('rejects answers that lack what the engine needs', async () => {
    const { fn } = fakeFetch(() => new Response(JSON.stringify({ ...game, seed: 'x' }), { status: 200 }));
    const err = await caught(new EdgeClient({ fetch: fn }).getGame('g-1'));
    expect(err.code).toBe('bad_response');
    expect(err.message).toMatch(/"seed"/);
    const notJson = fakeFetch(() => new Response('ok', { status: 200 }));
    expect((await caught(new EdgeClient({ fetch: notJson.fn }).getTime())).code).toBe('bad_response');
  });

  it('keeps exitedAt only when the game has one', () => {
    expect(parseGame({ ...game, exitedAt: 5 }, 'x').exitedAt).toBe(5);
    expect('exitedAt' in parseGame({ ...game, exitedAt: null }, 'x')).toBe(false);
  });
  it('keeps the field of a validation error and maps unknown codes to the status', () => {
    const body: ErrorBody = { error: { code: 'validation_failed', message: 'userId: must be 1 to 64 characters', field: 'userId' } };
    const err = errorFromResponse(422, JSON.stringify(body), 'Starting the game');
    expect([err.code, err.status, err.field]).toEqual(['validation_failed', 422, 'userId']);
    expect(ERROR_STATUS[body.error.code]).toBe(422);
    const odd = errorFromResponse(418, JSON.stringify({ error: { code: 'teapot', message: 'short and stout' } }), 'x');
    expect(odd.code).toBe('http_418');
    expect(odd.message).toBe('x failed: short and stout (teapot, HTTP 418)');
  });

  it('refuses games this page cannot compute, and fills what the contract implies', () => {
    expect(() => parseGame({ ...game, algorithm: 'md5' }, 'x')).toThrow(/"algorithm"/);
    expect(() => parseGame({ ...game, status: 'paused' }, 'x')).toThrow(/"status"/);
    expect(() => parseGame({ ...game, userId: 7 }, 'x')).toThrow(/"userId"/);
    for (const algorithm of ALGORITHMS) expect(parseGame({ ...game, algorithm }, 'x').algorithm).toBe(algorithm);
    const { backendRegion: _, routedBy: __, ...origin } = game;
    const g = parseGame({ ...origin, routedBy: 'astrology' }, 'x');
    expect(g.backendRegion).toBe('eu');
    expect('routedBy' in g).toBe(false);
  });

  it('reads an exit answer', async () => {
    const answer = { ok: true, gameId: game.gameId, userId: 'alice', exitedAt: 5, status: 'exited', backendRegion: 'us' };
    const { fn, calls } = fakeFetch(() => new Response(JSON.stringify(answer), { status: 200 }));
    expect(await new EdgeClient({ fetch: fn }).exitGame(game.gameId, 'alice', 'us')).toEqual(answer);
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ gameId: game.gameId, userId: 'alice', backendRegion: 'us' });
    expect(() => parseExit({ ok: true }, { gameId: game.gameId, userId: 'alice' }, 'x')).toThrow(/"exitedAt"/);
  });

  it('sends the owner token on exit, and keeps it from a start answer only', async () => {
    const answer = { ok: true, gameId: game.gameId, userId: 'alice', exitedAt: 5, status: 'exited', backendRegion: 'eu' };
    const { fn, calls } = fakeFetch(() => new Response(JSON.stringify(answer), { status: 200 }));
    await new EdgeClient({ fetch: fn }).exitGame(game.gameId, 'alice', 'eu', 'st1.k.p.m');
    expect((calls[0].init.headers as Record<string, string>).authorization).toBe('Bearer st1.k.p.m');
    await new EdgeClient({ fetch: fn }).exitGame(game.gameId, 'alice', 'eu');
    expect('authorization' in (calls[1].init.headers as Record<string, string>)).toBe(false);
    expect(parseGame({ ...game, ownerToken: 'st1.k.p.m' }, 'x').ownerToken).toBe('st1.k.p.m');
    expect('ownerToken' in parseGame(game, 'x')).toBe(false);
  });

  it('explains 401, 403 and 429 in plain words, with the wait', async () => {
    const body = (code: string) => JSON.stringify({ error: { code, message: 'raw' } });
    const e401 = errorFromResponse(401, body('unauthorized'), 'Exiting the game');
    expect(e401.message).toMatch(/only the tab that started this game can end it/);
    expect(e401.message).toMatch(/Take control/);
    const e403 = errorFromResponse(403, body('forbidden'), 'Exiting the game');
    expect(e403.message).toMatch(/owner token does not allow that/);
    const { fn } = fakeFetch(
      () => new Response(body('rate_limited'), { status: 429, headers: { 'retry-after': '7' } }),
    );
    const e429 = await caught(new EdgeClient({ fetch: fn }).startGame('alice'));
    expect([e429.code, e429.status, e429.retryAfterSeconds]).toEqual(['rate_limited', 429, 7]);
    expect(e429.message).toMatch(/too many requests .* try again in 7 s/);
  });

  it('reads a sealed game: its commitment is required, the root kept once published', () => {
    const commitment = 'AB'.repeat(32);
    const g = parseGame({ ...game, seed: 0, algorithm: 'sealed-v1', commitment, rounds: 86_400 }, 'x');
    expect([g.algorithm, g.commitment, g.rounds, 'root' in g]).toEqual(['sealed-v1', 'ab'.repeat(32), 86_400, false]);
    expect(parseGame({ ...game, algorithm: 'sealed-v1', commitment, root: 'cd'.repeat(32) }, 'x').root).toBe('cd'.repeat(32));
    expect(() => parseGame({ ...game, algorithm: 'sealed-v1' }, 'x')).toThrow(/"commitment"/);
    expect(() => parseGame({ ...game, algorithm: 'sealed-v1', commitment: 'abc' }, 'x')).toThrow(/"commitment"/);
  });

  it('reads rounds pages, and a 425 with when to ask again', async () => {
    const page = { gameId: game.gameId, commitment: 'ab'.repeat(32), from: 3, rounds: [{ round: 3, key: 'CD'.repeat(32) }] };
    const tooEarly = { error: { code: 'too_early', message: 'round 4 of game g has not broken yet', retryAt: 1_750_000_010_500 } };
    const { fn, calls } = fakeFetch((url) =>
      url.endsWith('from=3')
        ? new Response(JSON.stringify(page), { status: 200 })
        : new Response(JSON.stringify(tooEarly), { status: 425, headers: { 'retry-after': '1' } }),
    );
    const api = new EdgeClient({ fetch: fn });
    expect(await api.getRounds(game.gameId, 3)).toEqual({ ...page, rounds: [{ round: 3, key: 'cd'.repeat(32) }] });
    const err = await caught(api.getRounds(game.gameId, 4));
    expect([err.code, err.status, err.retryAfterSeconds, err.retryAt]).toEqual(['too_early', 425, 1, 1_750_000_010_500]);
    expect(err.message).toBe(
      'Reading the keys of round 4 on failed: round 4 of game g has not broken yet (too_early, HTTP 425)',
    );
    expect(calls.map((c) => c.url)).toEqual([
      `/edge/game/${game.gameId}/rounds?from=3`,
      `/edge/game/${game.gameId}/rounds?from=4`,
    ]);
    // When to ask again: retryAt on the server's clock, else Retry-After, within bounds.
    expect(retryDelayMs(err, 1_750_000_010_000)).toBe(500);
    expect(retryDelayMs(err, 1_750_000_011_000)).toBe(50);
    const noAt = new EdgeError('too_early', 'x', 425, undefined, 2);
    expect(retryDelayMs(noAt, 0)).toBe(2_000);
    expect(retryDelayMs(new EdgeError('too_early', 'x', 425), 0)).toBe(1_000);
    // Malformed pages are refused (the keys themselves are checked by the page, not here).
    expect(() => parseRounds({ ...page, rounds: [{ round: 3, key: 'zz' }] }, 'x')).toThrow(/"rounds"/);
    expect(() => parseRounds({ ...page, rounds: [{ round: 1.5, key: 'cd'.repeat(32) }] }, 'x')).toThrow(/"rounds"/);
    expect(() => parseRounds({ ...page, commitment: 7 }, 'x')).toThrow(/"commitment"/);
  });

  it('starts a sealed game when asked to', async () => {
    const { fn, calls } = fakeFetch(
      () => new Response(JSON.stringify({ ...game, algorithm: 'sealed-v1', commitment: 'ab'.repeat(32) }), { status: 201 }),
    );
    await new EdgeClient({ fetch: fn }).startGame('alice', 'us', undefined, 'sealed-v1');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ userId: 'alice', preferredRegion: 'us', algorithm: 'sealed-v1' });
  });
});
