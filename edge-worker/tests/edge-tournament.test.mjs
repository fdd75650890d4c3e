// Tournaments through the edge, in real workerd on two real origins (eu, us) sharing one
// keyspace of the real Cassandra: the schedule and standings are served and cached a few
// seconds; a round's join is user-authenticated like a game join (401 without a credential,
// 403 with another user's), seats three guests at two tables of two seats playing the same
// game, answers the same seat again, and the seat's token exits it through the edge; the
// standings count that exit's value; every bad input is a clear error (422 tournamentId, 400
// round, 404 unknown tournament or round, 405, 410 after the round's start).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError, call, originVars, sleep, startEdge, startOrigins, uid } from './harness.mjs';

const ADMIN_TOKEN = 'edge-tournament-admin-token-0123456789abcdef';
const USER_TOKEN_SECRET = 'seedsync-edge-tests-user-token-secret-tournament-0123';

let nextIp = 1;
/** A client address of its own per request, so the per-address budgets never interfere. */
const client = () => ({ 'cf-connecting-ip': `10.91.${Math.floor(nextIp / 250)}.${nextIp++ % 250}` });

describe('tournaments at the edge', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu', 'us'], 'tourney', { ADMIN_TOKEN });
    edge = await startEdge({
      vars: { ...originVars(origins), USER_AUTH: 'guest', USER_TOKEN_SECRET },
    });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  const guest = async () => {
    const r = await call(`${edge.url}/edge/auth/guest`, { method: 'POST', headers: client() });
    assert.equal(r.status, 201, r.text);
    return r.body;
  };
  const join = (id, round, userId, authorization, headers = {}) =>
    call(`${edge.url}/edge/tournament/${id}/rounds/${round}/join`, {
      method: 'POST',
      body: { userId },
      headers: authorization ? { ...client(), ...headers, authorization } : { ...client(), ...headers },
    });

  test('schedule, authenticated joins at shared tables, an exit, standings, refusals', async () => {
    const firstStartAt = Date.now() + 8_000;
    const created = await call(`${origins.eu.url}/admin/tournaments`, {
      method: 'POST',
      body: { name: 'Edge cup', rounds: 2, firstStartAt, intervalMs: 8_000, tickMs: 50, breakEvery: 30, algorithm: 'mix32-v1', seatsPerTable: 2 },
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(created.status, 201, created.text);
    const id = created.body.tournamentId;

    // The schedule: from an origin, then from the cache; never a seed.
    const first = await call(`${edge.url}/edge/tournament/${id}`, { headers: client() });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-edge-cache'), 'miss');
    assert.equal(first.headers.get('cache-control'), 'public, max-age=5');
    assert.equal(first.body.name, 'Edge cup');
    assert.deepEqual(first.body.schedule.map((r) => r.startAt), [firstStartAt, firstStartAt + 8_000]);
    assert.ok(!first.text.includes('seed'), first.text);
    const again = await call(`${edge.url}/edge/tournament/${id}`, { headers: client() });
    assert.equal(again.headers.get('x-edge-cache'), 'hit');
    assert.deepEqual(again.body, first.body);

    // Bad inputs, answered at the edge or passed on from the origin.
    assertError(assert, await call(`${edge.url}/edge/tournament/not-a-uuid`, { headers: client() }), 422, 'validation_failed', 'tournamentId');
    const unknown = crypto.randomUUID();
    assertError(assert, await call(`${edge.url}/edge/tournament/${unknown}`, { headers: client() }), 404, 'not_found', undefined);
    assertError(assert, await call(`${edge.url}/edge/tournament/${unknown}/standings`, { headers: client() }), 404, 'not_found', undefined);
    const alice = await guest();
    const bob = await guest();
    const carol = await guest();
    const auth = (g) => `Bearer ${g.userToken}`;
    assertError(assert, await join(id, 'x', alice.userId, auth(alice)), 400, 'bad_request', 'round');
    assertError(assert, await join(id, 2, alice.userId, auth(alice)), 404, 'not_found', undefined);
    assertError(assert, await join(unknown, 0, alice.userId, auth(alice)), 404, 'not_found', undefined);
    const wrongMethod = await call(`${edge.url}/edge/tournament/${id}/rounds/0/join`, { headers: client() });
    assert.equal(wrongMethod.status, 405, wrongMethod.text);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    // Round 1 opens when round 0 starts.
    assertError(assert, await join(id, 1, alice.userId, auth(alice)), 425, 'too_early', undefined);

    // A join proves its user: 401 without a credential, 403 with someone else's.
    const anonymous = await join(id, 0, alice.userId);
    assertError(assert, anonymous, 401, 'unauthorized', undefined);
    const impostor = await join(id, 0, alice.userId, auth(bob));
    assertError(assert, impostor, 403, 'forbidden', 'userId');

    // Three guests at once: two tables of two seats, one game.
    const seated = await Promise.all([alice, bob, carol].map((g) => join(id, 0, g.userId, auth(g))));
    for (const r of seated) {
      assert.equal(r.status, 201, r.text);
      assert.match(r.body.ownerToken, /^st1\./);
      assert.ok(['eu', 'us'].includes(r.body.backendRegion), r.text);
      assert.equal(r.body.game.metadata.tournamentId, id);
      assert.equal(r.body.game.startAt, firstStartAt);
      assert.equal(r.body.game.seed, seated[0].body.game.seed, 'every table plays the round seed');
    }
    const tables = new Map();
    for (const r of seated) tables.set(r.body.game.gameId, (tables.get(r.body.game.gameId) ?? 0) + 1);
    assert.deepEqual([...tables.values()].sort(), [1, 2], JSON.stringify([...tables]));
    // A table is taken only through the round's join, even with a free seat (issue 22).
    const lone = [...tables].find(([, n]) => n === 1)[0];
    const dave = await guest();
    const directJoin = await call(`${edge.url}/edge/game/${lone}/join`, {
      method: 'POST',
      body: { userId: dave.userId },
      headers: { ...client(), authorization: auth(dave) },
    });
    assertError(assert, directJoin, 409, 'not_joinable', undefined);
    assert.ok(directJoin.body.error.message.includes(id), directJoin.text);
    // A repeat answers the same seat; the edge mints the seat's token for its own user.
    const repeat = await join(id, 0, alice.userId, auth(alice));
    assert.equal(repeat.status, 200, repeat.text);
    assert.equal(repeat.body.game.gameId, seated[0].body.game.gameId);
    assert.equal(repeat.body.seat, seated[0].body.seat);

    // Round 0 runs: alice exits with her seat's token through the edge.
    await sleep(Math.max(0, firstStartAt + 400 - Date.now()));
    assertError(assert, await join(id, 0, (await guest()).userId, null), 401, 'unauthorized', undefined);
    const late = await guest();
    assertError(assert, await join(id, 0, late.userId, auth(late)), 410, 'join_closed', undefined);
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: seated[0].body.game.gameId, userId: alice.userId },
      headers: { ...client(), authorization: `Bearer ${seated[0].body.ownerToken}` },
      ownerAuth: false,
    });
    assert.equal(exit.status, 200, exit.text);
    const value = exit.body.result.final?.value ?? 0;

    const standings = await call(`${edge.url}/edge/tournament/${id}/standings`, { headers: client() });
    assert.equal(standings.status, 200, standings.text);
    assert.equal(standings.headers.get('x-edge-cache'), 'miss');
    assert.equal(standings.headers.get('cache-control'), 'public, max-age=5');
    assert.equal(standings.body.players, 1, standings.text);
    assert.deepEqual(standings.body.entries, [{ rank: 1, userId: alice.userId, total: value, roundsPlayed: 1 }]);
    const direct = await call(`${origins.us.url}/tournaments/${id}/standings`);
    assert.deepEqual(direct.body.entries, standings.body.entries);
    const cached = await call(`${edge.url}/edge/tournament/${id}/standings`, { headers: client() });
    assert.equal(cached.headers.get('x-edge-cache'), 'hit');
    assert.deepEqual(cached.body, standings.body);
    // Clients were told max-age=5: the edge keeps its copy no longer, whatever its own
    // CACHE_TTL_SECONDS (30 here).
    await new Promise((resolve) => setTimeout(resolve, 5_100));
    const expired = await call(`${edge.url}/edge/tournament/${id}/standings`, { headers: client() });
    assert.equal(expired.status, 200, expired.text);
    assert.equal(expired.headers.get('x-edge-cache'), 'miss', 'a standings copy older than its max-age=5 was served');
  });
});
