// Per-seat pushes of a shared game through its live room, in real workerd on a real origin
// (shared Cassandra): 3 players and 3 viewer sockets; each player exits at a different time
// with their own seat's token at an origin configured with EDGE_NOTIFY_URL; every socket
// receives every seat's `seat` message, equal to GET /edge/game/{id}/results; the game goes on
// until its last seat (then `exited`); a seat's token cannot exit another seat (403), and a
// client frame claiming a seat result is refused and reaches nobody. A socket that connects
// after some seats exited gets their results from the room, right after its `welcome`, in
// the order they were pushed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { call, openRoom, originVars, sleep, startEdge, startOrigin, startOrigins, uid } from './harness.mjs';

const SECRET = 'test-notify-secret-seats-0123456789';

describe('per-seat pushes', () => {
  let origins;
  let edge;
  let direct;
  before(async () => {
    origins = await startOrigins(['eu'], 'seatpush');
    edge = await startEdge({ vars: { ...originVars(origins), EDGE_NOTIFY_SECRET: SECRET } });
    // An origin on the same data that tells the edge of every committed exit (as a region's
    // origin configured with the edge's URL does).
    direct = await startOrigin({
      region: 'eu',
      keyspace: origins.eu.keyspace,
      env: { EDGE_NOTIFY_URL: edge.url, EDGE_NOTIFY_SECRET: SECRET },
    });
  });
  after(async () => {
    await edge?.stop();
    await direct?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  test('3 players exit one by one: every socket gets each seat result, equal to /results', async () => {
    const host = uid('seat-host');
    const start = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: host, preferredRegion: 'eu', maxPlayers: 3, tickMs: 10, joinDeadline: Date.now() + 60_000 },
    });
    assert.equal(start.status, 201, start.text);
    const game = start.body;
    const players = [{ userId: host, token: game.ownerToken }];
    for (const tag of ['seat-a', 'seat-b']) {
      const userId = uid(tag);
      const join = await call(`${edge.url}/edge/game/${game.gameId}/join`, { method: 'POST', body: { userId } });
      assert.equal(join.status, 201, join.text);
      players.push({ userId, token: join.body.ownerToken, seat: join.body.seat });
    }
    players[0].seat = 0;

    const sockets = [];
    for (let i = 0; i < 3; i++) {
      const s = await openRoom(edge.url, game.gameId);
      s.send({ type: 'hello', role: 'viewer' });
      await s.next('welcome');
      sockets.push(s);
    }
    // A client cannot claim a seat's result: refused, and nobody receives it.
    sockets[0].send({ type: 'seat', seat: 0, userId: host, result: { exitedAt: 1, breakFirst: false } });
    const refused = await sockets[0].next('error');
    assert.equal(refused.error.code, 'validation_failed');
    assert.equal(refused.error.field, 'type');

    await sleep(Math.max(0, game.startAt + 100 - Date.now()));
    const exitAt = (player, token) =>
      call(`${direct.url}/game/exit`, {
        method: 'POST',
        body: { gameId: game.gameId, userId: player.userId },
        headers: { authorization: `Bearer ${token}` },
      });
    // A seat's token exits that seat only.
    const stolen = await exitAt(players[1], players[2].token);
    assert.equal(stolen.status, 403, stolen.text);
    const viaEdge = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.gameId, userId: players[0].userId },
      headers: { authorization: `Bearer ${players[1].token}` },
    });
    assert.equal(viaEdge.status, 403, viaEdge.text);

    const exits = [];
    for (const [i, p] of [players[1], players[0], players[2]].entries()) {
      if (i > 0) await sleep(150);
      const r = await exitAt(p, p.token);
      assert.equal(r.status, 200, r.text);
      exits.push(r.body);
      for (const s of sockets) {
        const m = await s.next('seat');
        assert.equal(m.seat, p.seat);
        assert.equal(m.userId, p.userId);
        assert.deepEqual(m.result, r.body.result);
      }
      if (i < 2) {
        // The game goes on for the others: no `exited` yet.
        assert.ok(sockets.every((s) => !s.inbox.some((m) => m.type === 'exited')), 'exited too early');
      }
    }
    const times = exits.map((e) => e.result.exitedAt);
    assert.equal(new Set(times).size, 3, `distinct exit times: ${times}`);
    for (const s of sockets) {
      const ex = await s.next('exited');
      assert.equal(ex.exitedAt, Math.max(...times));
    }

    const results = await call(`${edge.url}/edge/game/${game.gameId}/results`);
    assert.equal(results.status, 200, results.text);
    assert.equal(results.body.status, 'exited');
    assert.equal(results.body.seats.length, 3);
    for (const s of sockets) {
      const pushed = s.inbox.filter((m) => m.type === 'seat');
      assert.equal(pushed.length, 3, JSON.stringify(pushed));
      for (const seat of results.body.seats) {
        const m = pushed.find((p) => p.seat === seat.seat);
        assert.ok(m, `seat ${seat.seat} pushed`);
        assert.equal(m.userId, seat.userId);
        assert.deepEqual(m.result, seat.result);
      }
      await s.close();
    }
  });

  test('a socket that connects after 2 exits gets both results right after its welcome, in order', async () => {
    const host = uid('late-host');
    const start = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: host, preferredRegion: 'eu', maxPlayers: 3, tickMs: 10, joinDeadline: Date.now() + 60_000 },
    });
    assert.equal(start.status, 201, start.text);
    const game = start.body;
    const players = [{ userId: host, token: game.ownerToken, seat: 0 }];
    for (const tag of ['late-a', 'late-b']) {
      const userId = uid(tag);
      const join = await call(`${edge.url}/edge/game/${game.gameId}/join`, { method: 'POST', body: { userId } });
      assert.equal(join.status, 201, join.text);
      players.push({ userId, token: join.body.ownerToken, seat: join.body.seat });
    }
    const early = await openRoom(edge.url, game.gameId);
    early.send({ type: 'hello', role: 'viewer' });
    await early.next('welcome');
    await sleep(Math.max(0, game.startAt + 100 - Date.now()));
    const exit = (p) =>
      call(`${direct.url}/game/exit`, {
        method: 'POST',
        body: { gameId: game.gameId, userId: p.userId },
        headers: { authorization: `Bearer ${p.token}` },
      });
    // Seats 2, then 0 exit (not in seat order), while only the early socket watches.
    const order = [players[2], players[0]];
    const pushed = [];
    for (const p of order) {
      const r = await exit(p);
      assert.equal(r.status, 200, r.text);
      const m = await early.next('seat');
      assert.equal(m.seat, p.seat);
      pushed.push(m);
      await sleep(50);
    }

    const late = await openRoom(edge.url, game.gameId);
    late.send({ type: 'hello', role: 'viewer' });
    await late.next('welcome');
    await late.next('seat');
    await late.next('seat');
    // Nothing before the welcome, and the two results right after it, as pushed.
    const kinds = late.inbox.map((m) => m.type);
    assert.deepEqual(kinds.slice(0, 3), ['welcome', 'seat', 'seat'], JSON.stringify(late.inbox));
    const replayed = late.inbox.filter((m) => m.type === 'seat');
    assert.deepEqual(
      replayed.map((m) => [m.seat, m.userId, m.result]),
      pushed.map((m) => [m.seat, m.userId, m.result]),
    );
    const results = await call(`${edge.url}/edge/game/${game.gameId}/results`);
    for (const m of replayed) {
      assert.deepEqual(m.result, results.body.seats.find((s) => s.seat === m.seat).result);
    }

    // The last seat reaches both sockets once, then the game's end.
    const r = await exit(players[1]);
    assert.equal(r.status, 200, r.text);
    for (const s of [early, late]) {
      const m = await s.next('seat');
      assert.equal(m.seat, players[1].seat);
      assert.deepEqual(m.result, r.body.result);
      await s.next('exited');
      assert.equal(s.inbox.filter((x) => x.type === 'seat').length, 3, JSON.stringify(s.inbox));
    }
    // A socket after the end: the whole table, in push order.
    const after = await openRoom(edge.url, game.gameId);
    after.send({ type: 'hello', role: 'viewer' });
    const welcome = await after.next('welcome');
    assert.equal(welcome.status, 'exited');
    for (let i = 0; i < 3; i++) await after.next('seat');
    assert.deepEqual(
      after.inbox.filter((m) => m.type === 'seat').map((m) => m.seat),
      [players[2].seat, 0, players[1].seat],
    );
    for (const s of [early, late, after]) await s.close();
  });
});
