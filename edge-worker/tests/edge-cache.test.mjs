// Join/spectate reads through the edge cache, and exit (with and without a region) dropping the
// cached record. The origins' own request counters prove which reads reached them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  GAME_READS,
  assertError,
  call,
  cfLocation,
  originMetric,
  originVars,
  sleep,
  startEdge,
  startOrigins,
  uid,
} from './harness.mjs';

describe('edge cache and exit', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu', 'us', 'asia'], 'cache');
    edge = await startEdge({ vars: originVars(origins, ['eu', 'us', 'asia']) });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  async function startGame(preferredRegion = 'eu') {
    const userId = uid('cache');
    const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId, preferredRegion } });
    assert.equal(r.status, 201, r.text);
    return r.body;
  }
  const reads = () => originMetric(origins, 'seedsync_http_requests_total', GAME_READS);

  test('a join is a miss once, then hits never reach an origin', async () => {
    const game = await startGame();
    const before = await reads();
    const first = await call(`${edge.url}/edge/game/${game.gameId}`, { headers: cfLocation('DE', 'EU') });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-edge-cache'), 'miss');
    assert.equal(first.body.gameId, game.gameId);
    assert.equal(first.body.status, 'active');
    assert.equal(first.body.seed, game.seed);
    assert.equal(first.body.backendRegion, 'eu');
    assert.equal(first.body.routedBy, undefined, 'routedBy is for starts only');
    assert.equal(await reads(), before + 1, 'the miss reached an origin');

    for (let i = 0; i < 5; i++) {
      const hit = await call(`${edge.url}/edge/game/${game.gameId}`, { headers: i % 2 ? cfLocation('JP', 'AS') : cfLocation('US', 'NA') });
      assert.equal(hit.status, 200);
      assert.equal(hit.headers.get('x-edge-cache'), 'hit');
      assert.deepEqual(hit.body, first.body);
      assert.ok(Number(hit.headers.get('age')) <= 30);
      assert.equal(hit.headers.get('access-control-allow-origin'), '*');
    }
    assert.equal(await reads(), before + 1, 'no hit reached an origin');
  });

  test('exit without backendRegion uses the region the edge already knows, then drops the cached record', async () => {
    const game = await startGame('us');
    const warm = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(warm.headers.get('x-edge-cache'), 'miss');
    assert.equal((await call(`${edge.url}/edge/game/${game.gameId}`)).headers.get('x-edge-cache'), 'hit');

    const exit = await call(`${edge.url}/edge/game/exit`, { method: 'POST', body: { gameId: game.gameId, userId: game.userId } });
    assert.equal(exit.status, 200, exit.text);
    assert.deepEqual(Object.keys(exit.body).sort(), ['backendRegion', 'exitedAt', 'gameId', 'ok', 'status', 'userId']);
    assert.equal(exit.body.ok, true);
    assert.equal(exit.body.status, 'exited');
    assert.equal(exit.body.gameId, game.gameId);
    assert.equal(exit.body.userId, game.userId);
    assert.equal(exit.body.backendRegion, 'us');

    const before = await reads();
    const after = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(after.status, 200);
    assert.equal(after.headers.get('x-edge-cache'), 'miss', 'the cached active record was dropped');
    assert.equal(after.body.status, 'exited');
    assert.equal(await reads(), before + 1);
  });

  test('exit of a game the edge never saw asks the nearest origin, then exits at the game\'s region', async () => {
    // Created straight at the asia origin, so this edge has no memo or cache entry for it.
    const userId = uid('direct');
    const created = await call(`${origins.asia.url}/game/start`, { method: 'POST', body: { userId } });
    assert.equal(created.status, 201, created.text);
    const gameId = created.body.gameId;
    const exitsAt = async (o) =>
      originMetric({ o }, 'seedsync_http_requests_total', { method: 'POST', route: '/game/exit', status: '200' });
    const lookupsAtEu = async () => originMetric({ eu: origins.eu }, 'seedsync_http_requests_total', GAME_READS);

    const [asiaExits, euExits, euLookups] = [await exitsAt(origins.asia), await exitsAt(origins.eu), await lookupsAtEu()];
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId, userId },
      headers: cfLocation('FR', 'EU'),
    });
    assert.equal(exit.status, 200, exit.text);
    assert.equal(exit.body.ok, true);
    assert.equal(exit.body.status, 'exited');
    assert.equal(exit.body.backendRegion, 'asia');
    assert.equal(exit.headers.get('x-edge-region'), 'asia');
    assert.equal(await lookupsAtEu(), euLookups + 1, 'looked the game up at the nearest origin (eu for FR)');
    assert.equal(await exitsAt(origins.asia), asiaExits + 1, 'exited at the game\'s region');
    assert.equal(await exitsAt(origins.eu), euExits);
  });

  test('exit with backendRegion goes straight there', async () => {
    const game = await startGame('eu');
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.gameId, userId: game.userId, backendRegion: 'eu' },
    });
    assert.equal(exit.status, 200, exit.text);
    assert.equal(exit.headers.get('x-edge-region'), 'eu');
  });

  test('unknown game: exit and reads are 404 not_found, and not cached', async () => {
    const gameId = '00000000-0000-4000-8000-000000000000';
    const exit = await call(`${edge.url}/edge/game/exit`, { method: 'POST', body: { gameId, userId: 'nobody' } });
    assertError(assert, exit, 404, 'not_found', undefined, 'exit');
    for (let i = 0; i < 2; i++) {
      const r = await call(`${edge.url}/edge/game/${gameId}`);
      assertError(assert, r, 404, 'not_found', undefined, 'read');
      assert.equal(r.headers.get('x-edge-cache'), 'miss');
    }
    const state = await call(`${edge.url}/edge/game/${gameId}/state?at=5`);
    assertError(assert, state, 404, 'not_found', undefined, 'state');
  });

  test('exit by the wrong user is refused by the origin and keeps the cache', async () => {
    const game = await startGame('eu');
    await call(`${edge.url}/edge/game/${game.gameId}`);
    const r = await call(`${edge.url}/edge/game/exit`, { method: 'POST', body: { gameId: game.gameId, userId: 'someone-else' } });
    assertError(assert, r, 403, 'forbidden', undefined, 'wrong user');
    const still = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(still.headers.get('x-edge-cache'), 'hit');
    assert.equal(still.body.status, 'active');
  });

  test('final states are computed at the edge by the shared engine, exactly as the origin does', async () => {
    const STATE_READS = { method: 'GET', route: '/game/{id}/state', status: '200' };
    const stateReads = () => originMetric(origins, 'seedsync_http_requests_total', STATE_READS);
    const game = await startGame('us');
    const wait = game.startAt + 700 - Date.now();
    if (wait > 0) await sleep(wait);
    const exit = await call(`${edge.url}/edge/game/exit`, { method: 'POST', body: { gameId: game.gameId, userId: game.userId } });
    assert.equal(exit.status, 200, exit.text);
    const joined = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(joined.body.status, 'exited');
    const exitedAt = joined.body.exitedAt;
    const before = await stateReads();
    // An exited game's timeline is frozen: every instant, even "now" and the future, is final.
    const instants = [game.startAt - 1_500, game.startAt, game.startAt + 250, exitedAt - 1, exitedAt + 5, Date.now() + 3_600_000];
    const local = [];
    for (const at of instants) {
      const r = await call(`${edge.url}/edge/game/${game.gameId}/state?at=${at}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-edge-engine'), 'local', `at=${at}`);
      assert.equal(r.headers.get('x-edge-cache'), 'hit');
      local.push(r.body);
    }
    const now = await call(`${edge.url}/edge/game/${game.gameId}/state`);
    assert.equal(now.headers.get('x-edge-engine'), 'local');
    assert.equal(now.body.phase, 'ended');
    assert.equal(await stateReads(), before, 'no state read reached an origin');
    assert.deepEqual(local.map((s) => s.phase), ['countdown', 'running', 'running', 'running', 'ended', 'ended']);
    // The origin, asked directly, computes the same states with the same engine.
    for (const [i, at] of instants.entries()) {
      const direct = await call(`${origins.us.url}/game/${game.gameId}/state?at=${at}`);
      assert.equal(direct.status, 200, direct.text);
      assert.deepEqual(local[i], direct.body, `at=${at}`);
    }
    assert.deepEqual({ ...now.body, at: 0 }, { ...local[5], at: 0 });
  });

  test('an active game is computed at the edge only for instants settled before the record was fetched', async () => {
    const game = await startGame('eu');
    const wait = game.startAt + 2_600 - Date.now();
    if (wait > 0) await sleep(wait);
    const joined = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(joined.body.status, 'active');
    const settled = await call(`${edge.url}/edge/game/${game.gameId}/state?at=${game.startAt + 100}`);
    assert.equal(settled.headers.get('x-edge-engine'), 'local');
    const direct = await call(`${origins.eu.url}/game/${game.gameId}/state?at=${game.startAt + 100}`);
    assert.deepEqual(settled.body, direct.body);
    // The present of an active game may change (an exit elsewhere): the origin answers.
    const present = await call(`${edge.url}/edge/game/${game.gameId}/state?at=${Date.now()}`);
    assert.equal(present.status, 200, present.text);
    assert.equal(present.headers.get('x-edge-engine'), null);
    assert.equal(present.headers.get('x-edge-cache'), 'miss');
  });

  test('settled states are cached per instant; future and "now" states are not', async () => {
    const game = await startGame('eu');
    // Wait until the game runs and the instant is settled (2 s in the past).
    const at = game.startAt + 500;
    const wait = at + 2_100 - Date.now();
    if (wait > 0) await sleep(wait);
    const url = `${edge.url}/edge/game/${game.gameId}/state?at=${at}`;
    const first = await call(url);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-edge-cache'), 'miss');
    assert.equal(first.body.phase, 'running');
    assert.equal(first.body.at, at);
    const second = await call(url);
    assert.equal(second.headers.get('x-edge-cache'), 'hit');
    assert.deepEqual(second.body, first.body);
    // Another instant is another entry.
    const other = await call(`${edge.url}/edge/game/${game.gameId}/state?at=${at + 100}`);
    assert.equal(other.headers.get('x-edge-cache'), 'miss');
    assert.notEqual(other.body.step, first.body.step);
    // The future can still change (an exit), and "now" is the origin's: never cached.
    for (const u of [`${url.split('?')[0]}?at=${Date.now() + 60_000}`, url.split('?')[0]]) {
      for (let i = 0; i < 2; i++) {
        const r = await call(u);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('x-edge-cache'), 'miss', u);
      }
    }
  });
});

describe('edge cache TTL', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu'], 'ttl');
    edge = await startEdge({ vars: { ...originVars(origins, ['eu']), CACHE_TTL_SECONDS: '2' } });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  test('an entry expires after the TTL and is fetched again', async () => {
    const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: uid('ttl') } });
    assert.equal(r.status, 201, r.text);
    const url = `${edge.url}/edge/game/${r.body.gameId}`;
    assert.equal((await call(url)).headers.get('x-edge-cache'), 'miss');
    assert.equal((await call(url)).headers.get('x-edge-cache'), 'hit');
    await sleep(2_200);
    const before = await originMetric(origins, 'seedsync_http_requests_total', GAME_READS);
    assert.equal((await call(url)).headers.get('x-edge-cache'), 'miss');
    assert.equal(await originMetric(origins, 'seedsync_http_requests_total', GAME_READS), before + 1);
  });
});
