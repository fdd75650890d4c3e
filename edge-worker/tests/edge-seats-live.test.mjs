// Per-seat pushes of a shared game through its live room, in real workerd on a real origin
// (shared Cassandra): 3 players and 3 viewer sockets; each player exits at a different time
// with their own seat's token at an origin configured with EDGE_NOTIFY_URL; every socket
// receives every seat's `seat` message, equal to GET /edge/game/{id}/results; the game goes on
// until its last seat (then `exited`); a seat's token cannot exit another seat (403), and a
// client frame claiming a seat result is refused and reaches nobody. A socket that connects
// after some seats exited gets their results from the room, right after its `welcome`, in
// the order they were pushed.
//
// Seats as players and joins pushed: a seat's owner token says `hello` as that seat's player
// (presence lists players by seat), and exits that seat from the socket; a token of another
// game, another seat, a forged, expired or not-this-seat's one is refused. Every committed join
// reaches every socket as `seated` (the origin's notice), and a socket that connects later gets
// them right after its `welcome`, before the seat results. A join the room never heard of (its
// origin sends no notices) is read from the origin when its player says hello.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  call,
  freePort,
  openRoom,
  originVars,
  ownerToken,
  sleep,
  startEdge,
  startOrigin,
  uid,
  uniqueKeyspace,
} from './harness.mjs';

const SECRET = 'test-notify-secret-seats-0123456789';

describe('per-seat pushes', () => {
  let origins;
  let edge;
  let direct;
  before(async () => {
    // The edge's own origin tells it of every committed join and exit: its port is chosen
    // first, so the edge can be started pointing at it and it at the edge.
    const port = await freePort();
    const keyspace = uniqueKeyspace('seatpush');
    edge = await startEdge({
      vars: { ...originVars({ eu: { url: `http://127.0.0.1:${port}` } }), EDGE_NOTIFY_SECRET: SECRET },
    });
    origins = {
      eu: await startOrigin({ region: 'eu', keyspace, port, env: { EDGE_NOTIFY_URL: edge.url, EDGE_NOTIFY_SECRET: SECRET } }),
    };
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
    // Nothing before the welcome, then the two joins, and the two results right after them, as
    // pushed.
    const kinds = late.inbox.map((m) => m.type);
    assert.deepEqual(kinds.slice(0, 5), ['welcome', 'seated', 'seated', 'seat', 'seat'], JSON.stringify(late.inbox));
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

  /** A shared game of `maxPlayers` started at the edge by a fresh host. */
  async function sharedGame(tag, maxPlayers) {
    const host = uid(`${tag}-host`);
    const start = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: host, preferredRegion: 'eu', maxPlayers, tickMs: 10, joinDeadline: Date.now() + 60_000 },
    });
    assert.equal(start.status, 201, start.text);
    return { game: start.body, host: { userId: host, token: start.body.ownerToken, seat: 0 } };
  }

  async function joinAt(base, gameId, tag) {
    const userId = uid(tag);
    const path = base === edge.url ? `/edge/game/${gameId}/join` : `/game/${gameId}/join`;
    const join = await call(`${base}${path}`, { method: 'POST', body: { userId } });
    assert.equal(join.status, 201, join.text);
    return { userId, token: join.body.ownerToken, seat: join.body.seat, joinedAt: join.body.joinedAt };
  }

  /** A socket's hello; resolves with the welcome or the error frame. */
  async function hello(gameId, msg) {
    const s = await openRoom(edge.url, gameId);
    s.send({ type: 'hello', ...msg });
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(10)) {
      const answer = s.inbox.find((m) => m.type === 'welcome' || m.type === 'error');
      if (answer) return { s, answer };
    }
    throw new Error('no answer to hello');
  }

  test("a seat's token is that seat's player; another game's, seat's, forged or expired token is refused", async () => {
    const { game, host } = await sharedGame('pl', 3);
    const bob = await joinAt(edge.url, game.gameId, 'pl-bob');
    const other = await sharedGame('pl-other', 2);
    const carol = await joinAt(edge.url, other.game.gameId, 'pl-carol');

    const viewer = (await hello(game.gameId, { role: 'viewer' })).s;
    const h = await hello(game.gameId, { role: 'player', ownerToken: host.token });
    assert.equal(h.answer.type, 'welcome', JSON.stringify(h.answer));
    assert.equal(h.answer.role, 'player');
    const b = await hello(game.gameId, { role: 'player', ownerToken: bob.token, userId: bob.userId, seat: bob.seat });
    assert.equal(b.answer.type, 'welcome', JSON.stringify(b.answer));
    assert.equal(b.answer.role, 'player');
    // Presence: both players, by seat, each with its seat and user; the viewer is counted.
    assert.deepEqual(
      b.answer.presence.players.map((m) => [m.seat, m.userId]),
      [
        [0, host.userId],
        [bob.seat, bob.userId],
      ],
    );
    assert.equal(b.answer.presence.viewers, 1);
    const heard = await viewer.next('joined');
    assert.equal(heard.member.role, 'player');
    assert.deepEqual([heard.member.seat, heard.member.userId], [0, host.userId]);
    const heardBob = await viewer.next('joined');
    assert.deepEqual([heardBob.member.seat, heardBob.member.userId], [bob.seat, bob.userId]);

    // Refused, each with an error frame and no welcome (the socket stays out of presence).
    const refusals = [
      ['another game', { ownerToken: carol.token }, 'forbidden', undefined],
      ['another seat', { ownerToken: bob.token, seat: bob.seat === 1 ? 2 : 1 }, 'forbidden', 'seat'],
      ['the creator seat', { ownerToken: bob.token, seat: 0 }, 'forbidden', 'seat'],
      ['another user', { ownerToken: bob.token, userId: host.userId }, 'forbidden', 'userId'],
      ['forged', { ownerToken: ownerToken(game.gameId, bob.userId, { secret: 'a-forger-secret-of-at-least-32-bytes!!', issuedAt: bob.joinedAt }) }, 'forbidden', undefined],
      ['expired', { ownerToken: ownerToken(game.gameId, bob.userId, { issuedAt: bob.joinedAt, ttlMs: 1 }) }, 'forbidden', undefined],
      ['not the seat token', { ownerToken: ownerToken(game.gameId, bob.userId, { issuedAt: bob.joinedAt - 1 }) }, 'forbidden', undefined],
      ['no seat', { ownerToken: ownerToken(game.gameId, uid('pl-nobody')) }, 'forbidden', undefined],
      ['malformed', { ownerToken: 'st1.nope' }, 'unauthorized', 'ownerToken'],
    ];
    for (const [what, msg, code, field] of refusals) {
      const r = await hello(game.gameId, { role: 'player', ...msg });
      assert.equal(r.answer.type, 'error', `${what}: ${JSON.stringify(r.answer)}`);
      assert.equal(r.answer.error.code, code, what);
      assert.equal(r.answer.error.field, field, `${what}: field`);
      await r.s.close();
    }
    // The game's own socket of B's seat is B's player, not A's.
    const c = await hello(other.game.gameId, { role: 'player', ownerToken: carol.token });
    assert.equal(c.answer.type, 'welcome', JSON.stringify(c.answer));
    assert.deepEqual(
      c.answer.presence.players.map((m) => [m.seat, m.userId]),
      [[carol.seat, carol.userId]],
    );

    // Bob's socket exits Bob's seat (and no other): every socket gets the seat's result.
    await sleep(Math.max(0, game.startAt + 50 - Date.now()));
    b.s.send({ type: 'exit' });
    for (const s of [viewer, h.s, b.s]) {
      const m = await s.next('seat');
      assert.deepEqual([m.seat, m.userId], [bob.seat, bob.userId]);
    }
    const results = await call(`${edge.url}/edge/game/${game.gameId}/results`);
    const row = results.body.seats.find((x) => x.seat === bob.seat);
    assert.ok(row.result, results.text);
    assert.equal(results.body.seats.find((x) => x.seat === 0).result, undefined, 'the creator still plays');
    assert.ok(h.s.inbox.every((m) => m.type !== 'exited'), 'the game goes on');
    for (const s of [viewer, h.s, b.s, c.s]) await s.close();
  });

  test('joins are pushed to every socket, and replayed to a late one before the seat results', async () => {
    const { game, host } = await sharedGame('jn', 4);
    const early = [];
    early.push((await hello(game.gameId, { role: 'viewer' })).s);
    early.push((await hello(game.gameId, { role: 'player', ownerToken: host.token })).s);
    const joined = [];
    for (const tag of ['jn-a', 'jn-b']) {
      const p = await joinAt(edge.url, game.gameId, tag);
      joined.push(p);
      for (const s of early) {
        const m = await s.next('seated');
        assert.deepEqual([m.seat, m.userId, m.joinedAt], [p.seat, p.userId, p.joinedAt]);
      }
    }
    // A seat exits, then a socket comes: every join, then the result, right after its welcome.
    await sleep(Math.max(0, game.startAt + 50 - Date.now()));
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.gameId, userId: joined[1].userId },
      headers: { authorization: `Bearer ${joined[1].token}` },
    });
    assert.equal(exit.status, 200, exit.text);
    for (const s of early) await s.next('seat');
    const late = (await hello(game.gameId, { role: 'viewer' })).s;
    await late.next('seated');
    await late.next('seated');
    await late.next('seat');
    assert.deepEqual(
      late.inbox.slice(0, 4).map((m) => m.type),
      ['welcome', 'seated', 'seated', 'seat'],
      JSON.stringify(late.inbox),
    );
    assert.deepEqual(
      late.inbox.filter((m) => m.type === 'seated').map((m) => [m.seat, m.userId, m.joinedAt]),
      joined.map((p) => [p.seat, p.userId, p.joinedAt]),
    );
    // Equal to what /results lists.
    const results = await call(`${edge.url}/edge/game/${game.gameId}/results`);
    for (const p of joined) {
      const row = results.body.seats.find((x) => x.seat === p.seat);
      assert.deepEqual([row.userId, row.joinedAt], [p.userId, p.joinedAt]);
    }
    // Each join once: nobody got a repeat.
    for (const s of [...early, late]) {
      assert.equal(s.inbox.filter((m) => m.type === 'seated').length, 2, JSON.stringify(s.inbox));
      await s.close();
    }
  });

  test('a join the room never heard of is read from the origin when its player says hello', async () => {
    // An origin on the same data that sends no notices.
    const quiet = await startOrigin({ region: 'eu', keyspace: origins.eu.keyspace });
    try {
      const { game } = await sharedGame('qt', 3);
      const watcher = (await hello(game.gameId, { role: 'viewer' })).s;
      const dan = await joinAt(quiet.url, game.gameId, 'qt-dan');
      await sleep(300);
      assert.ok(watcher.inbox.every((m) => m.type !== 'seated'), 'no notice, no push');
      const d = await hello(game.gameId, { role: 'player', ownerToken: dan.token });
      assert.equal(d.answer.type, 'welcome', JSON.stringify(d.answer));
      assert.deepEqual(
        d.answer.presence.players.map((m) => [m.seat, m.userId]),
        [[dan.seat, dan.userId]],
      );
      // The seat read from the origin is pushed to the others too.
      const m = await watcher.next('seated');
      assert.deepEqual([m.seat, m.userId, m.joinedAt], [dan.seat, dan.userId, dan.joinedAt]);
      for (const s of [watcher, d.s]) await s.close();
    } finally {
      await quiet.stop();
    }
  });
});
