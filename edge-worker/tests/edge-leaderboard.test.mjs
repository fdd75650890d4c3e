// GET /edge/leaderboard (validated at the edge, cached a few seconds under the query's canonical
// form) and GET /edge/game/{id}/results (cached only once final), through real workerd and real
// origins. The origins' request counters prove which reads reached them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError, call, originMetric, originVars, sleep, startEdge, startOrigins, uid } from './harness.mjs';

const LEADERBOARD_READS = { method: 'GET', route: '/leaderboard', status: '200' };
const RESULTS_READS = { method: 'GET', route: '/game/{id}/results', status: '200' };

describe('edge leaderboard and results', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu', 'us'], 'board');
    edge = await startEdge({ vars: originVars(origins, ['eu', 'us']) });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  test('bad leaderboard queries are clear 400s and never reach an origin', async () => {
    const before = await originMetric(origins, 'seedsync_http_requests_total', { route: '/leaderboard' });
    for (const [query, field] of [
      ['period=week', 'period'],
      ['algorithm=fastest', 'algorithm'],
      ['limit=0', 'limit'],
      ['limit=1000', 'limit'],
      ['period=day&day=2025-02-29', 'day'],
      ['day=2025-01-01', 'day'],
    ]) {
      const r = await call(`${edge.url}/edge/leaderboard?${query}`);
      assertError(assert, r, 400, 'bad_request', field, query);
    }
    assert.equal(await originMetric(origins, 'seedsync_http_requests_total', { route: '/leaderboard' }), before);
    const post = await call(`${edge.url}/edge/leaderboard`, { method: 'POST', body: {} });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });

  test('a leaderboard read is a miss once, then one canonical entry answers every spelling', async () => {
    const reads = () => originMetric(origins, 'seedsync_http_requests_total', LEADERBOARD_READS);
    const before = await reads();
    // A day nobody plays on: its own cache entry, an empty board.
    const first = await call(`${edge.url}/edge/leaderboard?period=day&day=2001-02-03&limit=7`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-edge-cache'), 'miss');
    assert.equal(first.headers.get('cache-control'), 'public, max-age=5');
    assert.deepEqual(first.body, { period: 'day', day: '2001-02-03', algorithm: 'mix32-v1', entries: [] });
    assert.equal(await reads(), before + 1);
    const again = await call(`${edge.url}/edge/leaderboard?limit=7&algorithm=mix32-v1&day=2001-02-03&period=day`);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('x-edge-cache'), 'hit');
    assert.equal(again.headers.get('cache-control'), 'public, max-age=5');
    assert.deepEqual(again.body, first.body);
    assert.equal(await reads(), before + 1, 'the hit stayed at the edge');
    // Another query is another entry.
    const all = await call(`${edge.url}/edge/leaderboard?period=all&algorithm=lcg32`);
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('x-edge-cache'), 'miss');
    assert.equal(all.body.period, 'all');
    assert.equal(all.body.day, undefined);
  });

  test('results are read through while the game runs and cached once it ended', async () => {
    const host = uid('host');
    const start = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: host, preferredRegion: 'eu', maxPlayers: 2, tickMs: 10, joinDeadline: Date.now() + 60_000 },
    });
    assert.equal(start.status, 201, start.text);
    const game = start.body;
    const guest = uid('guest');
    const join = await call(`${edge.url}/edge/game/${game.gameId}/join`, { method: 'POST', body: { userId: guest } });
    assert.equal(join.status, 201, join.text);
    const reads = () => originMetric(origins, 'seedsync_http_requests_total', RESULTS_READS);
    const before = await reads();
    for (let i = 0; i < 2; i++) {
      const live = await call(`${edge.url}/edge/game/${game.gameId}/results`);
      assert.equal(live.status, 200, live.text);
      assert.equal(live.body.status, 'active');
      assert.equal(live.headers.get('x-edge-cache'), 'miss');
    }
    assert.equal(await reads(), before + 2, 'live results always come from an origin');
    await sleep(Math.max(0, game.startAt + 100 - Date.now()));
    for (const [userId, token] of [
      [guest, join.body.ownerToken],
      [host, game.ownerToken],
    ]) {
      const exit = await call(`${edge.url}/edge/game/exit`, {
        method: 'POST',
        body: { gameId: game.gameId, userId },
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(exit.status, 200, exit.text);
    }
    const ended = await call(`${edge.url}/edge/game/${game.gameId}/results`);
    assert.equal(ended.status, 200);
    assert.equal(ended.body.status, 'exited');
    assert.equal(ended.body.seats.length, 2);
    assert.ok(ended.body.seats.every((s) => s.result && s.result.final), ended.text);
    const cached = await call(`${edge.url}/edge/game/${game.gameId}/results`);
    assert.equal(cached.headers.get('x-edge-cache'), 'hit');
    assert.deepEqual(cached.body, ended.body);
    assert.equal(await reads(), before + 3, 'final results are answered by the edge');
  });
});
