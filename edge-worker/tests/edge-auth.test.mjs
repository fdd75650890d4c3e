// Owner tokens and abuse limits through the real Worker (workerd) and real origins on
// Cassandra: a viewer who knows the userId cannot exit, the owner can, a token only opens its
// own game, expired and foreign-key tokens are refused; the edge's per-isolate budgets (per
// client IP and per userId for starts, per IP for reads) answer 429 + Retry-After, and the
// origins' own budgets see the client address the edge forwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { call, originVars, ownerToken, startEdge, startOrigins, uid } from './harness.mjs';

let nextIp = 1;
/** A client address of its own (miniflare keeps a `cf-connecting-ip` the client sends). */
const client = () => ({ 'cf-connecting-ip': `10.77.${Math.floor(nextIp / 250)}.${nextIp++ % 250}` });

describe('owner tokens and limits at the edge', () => {
  let origins;
  let edge;
  before(async () => {
    // The origins' start budget (3/min per client) is below the edge's (10/min per IP), so
    // the 4th start of one client is refused by the origin: proof that it sees the client's
    // address, not the edge's.
    origins = await startOrigins(['eu', 'us'], 'auth', { RATE_LIMIT_START: '3/60' });
    edge = await startEdge({
      vars: {
        ...originVars(origins, ['eu', 'us']),
        START_RATE_LIMIT_PER_IP: '10/60',
        START_RATE_LIMIT_PER_USER: '2/60',
        READ_RATE_LIMIT_PER_IP: '30/60',
      },
    });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  const start = async (userId = uid('auth'), headers = client()) =>
    call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId }, headers });
  const exit = (game, authorization, headers = client()) =>
    call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.gameId, userId: game.userId },
      headers: authorization === undefined ? headers : { ...headers, authorization },
      ownerAuth: false,
    });

  test('a viewer with the real userId cannot exit; the owner can', async () => {
    const started = await start();
    assert.equal(started.status, 201, started.text);
    const game = started.body;
    assert.match(game.ownerToken, /^st1\./);
    // The viewer's view: userId yes, token no (also from the edge cache).
    for (let i = 0; i < 2; i++) {
      const seen = await call(`${edge.url}/edge/game/${game.gameId}`, { headers: client() });
      assert.equal(seen.body.userId, game.userId);
      assert.equal(seen.body.ownerToken, undefined, seen.text);
    }
    // Starting "again" as that user finds the game, without the token.
    const again = await start(game.userId);
    assert.equal(again.status, 200);
    assert.equal(again.body.ownerToken, undefined);

    const missing = await exit(game);
    assert.equal(missing.status, 401, missing.text);
    assert.equal(missing.body.error.code, 'unauthorized');
    const malformed = await exit(game, 'Token abc');
    assert.equal(malformed.status, 401);
    const forged = await exit(game, `Bearer ${ownerToken(game.gameId, game.userId, { secret: 'another-deployments-secret-0123456789abcdef' })}`);
    assert.equal(forged.status, 403, forged.text);
    assert.equal(forged.body.error.code, 'forbidden');
    const expired = await exit(game, `Bearer ${ownerToken(game.gameId, game.userId, { issuedAt: Date.now() - 10_000, ttlMs: 1_000 })}`);
    assert.equal(expired.status, 403, expired.text);
    assert.match(expired.body.error.message, /expired/);
    const still = await call(`${edge.url}/edge/game/${game.gameId}`, { headers: client() });
    assert.equal(still.body.status, 'active');

    const owner = await exit(game, `Bearer ${game.ownerToken}`);
    assert.equal(owner.status, 200, owner.text);
    assert.equal(owner.body.status, 'exited');
  });

  test("a token for game A cannot exit game B, in any region", async () => {
    const a = (await start()).body;
    const b = (await start(uid('b'), { ...client(), 'x-user-region': 'us' })).body;
    assert.equal(b.backendRegion, 'us');
    const crossed = await exit(b, `Bearer ${a.ownerToken}`);
    assert.equal(crossed.status, 403, crossed.text);
    // B's own token works at B's region, A's at A's.
    assert.equal((await exit(b, `Bearer ${b.ownerToken}`)).status, 200);
    assert.equal((await exit(a, `Bearer ${a.ownerToken}`)).status, 200);
  });

  test('the Idempotency-Key the edge answered gets the same token back', async () => {
    const first = await start();
    const key = first.headers.get('idempotency-key');
    const replay = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: first.body.userId },
      headers: { ...client(), 'idempotency-key': key },
    });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.ownerToken, first.body.ownerToken);
  });

  test('starts: per-IP and per-user budgets answer 429 with Retry-After; other clients go on', async () => {
    // One address, fresh users: 3 pass the origin's per-client budget, the 4th is the
    // origin's 429 (passed through), and after 10 the edge's own.
    const ip = client();
    const statuses = [];
    let edge429;
    for (let i = 0; i < 12; i++) {
      const r = await start(uid('burst'), ip);
      statuses.push(r.status);
      if (r.status === 429) {
        assert.equal(r.body.error.code, 'rate_limited', r.text);
        assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After');
        if (!r.headers.get('x-edge-region')) edge429 ??= r;
      }
    }
    assert.deepEqual(statuses.slice(0, 4), [201, 201, 201, 429], statuses.join());
    assert.ok(edge429, `the edge refused by itself after its budget: ${statuses.join()}`);
    assert.ok(Number(edge429.headers.get('retry-after')) <= 6, edge429.headers.get('retry-after'));
    // Another client still starts.
    assert.equal((await start()).status, 201);
    // One user from many addresses: 2 starts per minute at the edge.
    const user = uid('many-ips');
    const first = await start(user);
    assert.equal(first.status, 201);
    assert.equal((await exit(first.body, `Bearer ${first.body.ownerToken}`)).status, 200);
    assert.equal((await start(user)).status, 201);
    const third = await start(user);
    assert.equal(third.status, 429, third.text);
    assert.match(third.body.error.message, /user/);
  });

  test('reads have a looser budget of their own', async () => {
    const game = (await start()).body;
    const ip = client();
    const statuses = [];
    for (let i = 0; i < 32; i++) {
      statuses.push((await call(`${edge.url}/edge/game/${game.gameId}`, { headers: ip })).status);
    }
    assert.deepEqual(statuses.slice(0, 30), Array(30).fill(200), statuses.join());
    assert.equal(statuses[31], 429);
    const cors = await call(`${edge.url}/edge/game/start`, { method: 'OPTIONS', headers: { origin: 'https://x.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
    assert.match(cors.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  });
});
