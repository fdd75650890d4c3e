// Live game rooms in real workerd: one Durable Object per game at /edge/game/{id}/live
// (WebSockets with the hibernation API). Presence on join/leave, exit pushed to every socket
// (edge exit, origin notice, socket exit by the owner only), reconnects, bad messages, and the
// owner's proof: a `hello` as player needs the game's owner token (the edge holds the origins'
// OWNER_TOKEN_SECRET, see harness.mjs), and a socket's exit carries it to the origin.
//
// WebSocket client: Node's global one (Node >= 22), else the `ws` package wrangler already
// brings into node_modules.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TEST_SECRET, call, metricValue, originVars, ownerToken, sleep, startEdge, startOrigin, startOrigins, uid } from './harness.mjs';

const WS = globalThis.WebSocket ?? (await import('ws')).default;
const SECRET = 'test-notify-secret-0123456789';

/** A socket that queues what it receives; `next(type)` waits for the next message of a type. */
export async function openLive(base, gameId) {
  const url = `${base.replace(/^http/, 'ws')}/edge/game/${gameId}/live`;
  const ws = new WS(url);
  const inbox = [];
  const waiters = [];
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(typeof ev.data === 'string' ? ev.data : ev.data.toString());
    msg.receivedAt = Date.now();
    inbox.push(msg);
    for (const w of [...waiters]) w();
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true });
    ws.addEventListener('error', (e) => reject(new Error(`socket error: ${e.message ?? e}`)), { once: true });
  });
  const closed = new Promise((r) => ws.addEventListener('close', r, { once: true }));
  return {
    ws,
    inbox,
    closed,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    async next(type, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms; got ${JSON.stringify(inbox)}`);
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
        waiters.length = 0;
      }
    },
    close() {
      ws.close();
      return closed;
    },
  };
}

describe('live rooms', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu'], 'live');
    edge = await startEdge({ vars: { ...originVars(origins), EDGE_NOTIFY_SECRET: SECRET, LIVE_WARN_RTT_MS: '200' } });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  async function startGame(user) {
    const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: user } });
    assert.equal(r.status, 201, r.text);
    assert.ok(r.body.ownerToken, 'the start answers the owner token');
    return r.body;
  }

  /** The owner's bearer header, for exits at an origin directly. */
  const bearer = (game) => ({ authorization: `Bearer ${game.ownerToken}` });

  test('presence updates on join and leave; welcome carries status at once', async () => {
    const user = uid('live-p');
    const game = await startGame(user);
    const player = await openLive(edge.url, game.gameId);
    player.send({ type: 'hello', role: 'player', userId: user, ownerToken: game.ownerToken });
    const w = await player.next('welcome');
    assert.equal(w.role, 'player');
    assert.equal(w.status, 'active');
    assert.equal(w.gameId, game.gameId);
    assert.equal(w.presence.players.length, 1);
    assert.equal(w.presence.players[0].userId, user);
    assert.equal(w.presence.viewers, 0);

    const viewer = await openLive(edge.url, game.gameId);
    viewer.send({ type: 'hello', role: 'viewer' });
    const vw = await viewer.next('welcome');
    assert.equal(vw.presence.viewers, 1);
    const joined = await player.next('joined');
    assert.equal(joined.member.role, 'viewer');
    assert.equal(joined.member.userId, undefined);
    assert.equal(joined.presence.viewers, 1);

    await viewer.close();
    const left = await player.next('left');
    assert.equal(left.presence.viewers, 0);
    assert.equal(left.presence.players.length, 1);
    await player.close();
  });

  test('the edge exit is pushed to 3 sockets; no per-tick messages', async () => {
    const user = uid('live-x');
    const game = await startGame(user);
    const socks = [];
    for (let i = 0; i < 3; i++) {
      const s = await openLive(edge.url, game.gameId);
      s.send({ type: 'hello', role: 'viewer' });
      await s.next('welcome');
      socks.push(s);
    }
    await sleep(600);
    const t0 = Date.now();
    const r = await call(`${edge.url}/edge/game/exit`, { method: 'POST', body: { gameId: game.gameId, userId: user } });
    assert.equal(r.status, 200, r.text);
    for (const s of socks) {
      const ex = await s.next('exited');
      assert.equal(ex.exitedAt, r.body.exitedAt);
      assert.equal(ex.gameId, game.gameId);
      assert.ok(ex.receivedAt - t0 < 3000);
      // Nothing but presence traffic and the exit: never a tick.
      assert.ok(s.inbox.every((m) => ['joined', 'left', 'presence'].includes(m.type)), JSON.stringify(s.inbox));
    }
    // Reconnect after the exit: status at once.
    const late = await openLive(edge.url, game.gameId);
    late.send({ type: 'hello', role: 'viewer' });
    const w = await late.next('welcome');
    assert.equal(w.status, 'exited');
    assert.equal(w.exitedAt, r.body.exitedAt);
    await late.close();
    for (const s of socks) await s.close();
  });

  test('an exit that bypasses the edge reaches the room through the origin notice', async () => {
    const user = uid('live-o');
    const game = await startGame(user);
    const s = await openLive(edge.url, game.gameId);
    s.send({ type: 'hello', role: 'viewer' });
    await s.next('welcome');
    const url = `${edge.url}/edge/internal/game/${game.gameId}/exited`;
    // Without or with a wrong secret: refused.
    let r = await call(url, { method: 'POST', body: { exitedAt: 1 } });
    assert.equal(r.status, 401, r.text);
    r = await call(url, { method: 'POST', body: { exitedAt: 1 }, headers: { 'x-edge-notify-secret': 'nope' } });
    assert.equal(r.status, 401, r.text);
    // Exit at the origin directly, then notify as the origin does.
    const o = await call(`${origins.eu.url}/game/exit`, { method: 'POST', body: { gameId: game.gameId, userId: user }, headers: bearer(game) });
    assert.equal(o.status, 200, o.text);
    r = await call(url, { method: 'POST', body: { exitedAt: o.body.exitedAt }, headers: { 'x-edge-notify-secret': SECRET } });
    assert.equal(r.status, 200, r.text);
    const ex = await s.next('exited');
    assert.equal(ex.source, 'origin');
    assert.equal(ex.exitedAt, o.body.exitedAt);
    await s.close();
  });

  test('an origin with EDGE_NOTIFY_URL pushes exits that bypass the edge (/game/exit, /v1 stop)', async () => {
    // A second origin on the same data (as another region's would be), configured to notify.
    const direct = await startOrigin({
      region: 'eu',
      keyspace: origins.eu.keyspace,
      env: { EDGE_NOTIFY_URL: edge.url, EDGE_NOTIFY_SECRET: SECRET },
    });
    try {
      const user = uid('live-n');
      const game = await startGame(user);
      const s = await openLive(edge.url, game.gameId);
      s.send({ type: 'hello', role: 'viewer' });
      await s.next('welcome');
      const t0 = Date.now();
      const o = await call(`${direct.url}/game/exit`, { method: 'POST', body: { gameId: game.gameId, userId: user }, headers: bearer(game) });
      assert.equal(o.status, 200, o.text);
      const ex = await s.next('exited');
      assert.equal(ex.source, 'origin');
      assert.equal(ex.exitedAt, o.body.exitedAt);
      assert.ok(ex.receivedAt - t0 < 2000, `${ex.receivedAt - t0} ms`);
      await s.close();

      // The /v1 dialect's stop, with the session's owner token.
      const other = await startGame(uid('live-v1'));
      const v = await openLive(edge.url, other.gameId);
      v.send({ type: 'hello', role: 'viewer' });
      await v.next('welcome');
      const stop = await call(`${direct.url}/v1/sessions/${other.gameId}/stop`, { method: 'POST', headers: bearer(other) });
      assert.equal(stop.status, 200, stop.text);
      const vx = await v.next('exited');
      assert.equal(vx.source, 'origin');
      await v.close();
      // Counted at the origin.
      const metrics = await (await fetch(`${direct.url}/metrics`)).text();
      assert.equal(metricValue(metrics, 'seedsync_edge_notices_total', { outcome: 'sent' }), 2);
    } finally {
      await direct.stop();
    }
  });

  test('reconnect restores presence; the room outlives a dropped socket', async () => {
    const user = uid('live-r');
    const game = await startGame(user);
    const a = await openLive(edge.url, game.gameId);
    a.send({ type: 'hello', role: 'player', ownerToken: game.ownerToken });
    await a.next('welcome');
    const b = await openLive(edge.url, game.gameId);
    b.send({ type: 'hello', role: 'viewer' });
    await b.next('welcome');
    b.ws.terminate ? b.ws.terminate() : b.ws.close();
    await a.next('left');
    const b2 = await openLive(edge.url, game.gameId);
    b2.send({ type: 'hello', role: 'viewer' });
    const w = await b2.next('welcome');
    assert.equal(w.status, 'active');
    assert.equal(w.presence.players.length, 1);
    assert.equal(w.presence.viewers, 1);
    const st = await call(`${edge.url}/edge/game/${game.gameId}/live/stats`);
    assert.equal(st.status, 200, st.text);
    assert.equal(st.body.websocketApi, 'hibernation');
    assert.equal(st.body.sockets, 2);
    assert.ok(st.body.stats.messagesIn.some((c) => c.type === 'hello'));
    await a.close();
    await b2.close();
  });

  test('hibernation: presence and the game live in socket attachments and survive an idle room', async (t) => {
    const user = uid('live-h');
    const game = await startGame(user);
    const p = await openLive(edge.url, game.gameId);
    p.send({ type: 'hello', role: 'player', ownerToken: game.ownerToken });
    await p.next('welcome');
    const s1 = (await call(`${edge.url}/edge/game/${game.gameId}/live/stats`)).body;
    assert.equal(s1.websocketApi, 'hibernation');
    // Idle long enough for workerd to evict the room object (its sockets stay open).
    await sleep(Number(process.env.LIVE_IDLE_MS ?? 15_000));
    const s2 = (await call(`${edge.url}/edge/game/${game.gameId}/live/stats`)).body;
    t.diagnostic(
      s2.stats.since > s1.stats.since
        ? `room evicted while idle and rebuilt (since ${s1.stats.since} -> ${s2.stats.since})`
        : 'room not evicted within the idle wait (state still checked through attachments)',
    );
    // Presence comes from the sockets' attachments, whether or not the room was rebuilt.
    assert.equal(s2.presence.players.length, 1);
    assert.equal(s2.presence.players[0].userId, user);
    assert.equal(s2.loaded, true);
    const v = await openLive(edge.url, game.gameId);
    v.send({ type: 'hello', role: 'viewer' });
    const w = await v.next('welcome');
    assert.equal(w.presence.players[0].userId, user);
    p.send({ type: 'ping', clientTime: Date.now() });
    await p.next('pong');
    assert.equal((await p.next('joined')).member.role, 'viewer');
    await v.close();
    await p.close();
  });

  test('ping/pong carries server timestamps; latency over the threshold warns', async () => {
    const game = await startGame(uid('live-t'));
    const s = await openLive(edge.url, game.gameId);
    const t0 = Date.now();
    s.send({ type: 'ping', clientTime: t0 });
    const p = await s.next('pong');
    const t3 = Date.now();
    assert.equal(p.clientTime, t0);
    assert.ok(p.serverSent >= p.serverReceived);
    const offset = (p.serverReceived - t0 + (p.serverSent - t3)) / 2;
    assert.ok(Math.abs(offset) <= (t3 - t0) / 2 + 50, `offset ${offset}`);
    s.send({ type: 'ping', clientTime: Date.now(), rttMs: 500, jitterMs: 5 });
    const w = await s.next('warning');
    assert.equal(w.metric, 'rtt');
    assert.equal(w.thresholdMs, 200);
    await s.close();
  });

  test('bad messages get an error frame and never crash the room; no exit without proof', async () => {
    const user = uid('live-b');
    const game = await startGame(user);
    const other = await startGame(uid('live-b2'));
    const s = await openLive(edge.url, game.gameId);
    const forged = ownerToken(game.gameId, user, { secret: `not ${TEST_SECRET}` });
    const cases = [
      ['not json', 'bad_request'],
      [JSON.stringify({ type: 'shout' }), 'validation_failed'],
      [JSON.stringify({ type: 'ping', clientTime: 1, pad: 'x'.repeat(8000) }), 'payload_too_large'],
      [JSON.stringify({ type: 'hello', role: 'admin' }), 'validation_failed'],
      // Spoofed player roles: the user id alone, garbage, forged, another game's token.
      [JSON.stringify({ type: 'hello', role: 'player', userId: user }), 'unauthorized'],
      [JSON.stringify({ type: 'hello', role: 'player', ownerToken: 'st1.nope' }), 'unauthorized'],
      [JSON.stringify({ type: 'hello', role: 'player', ownerToken: forged }), 'forbidden'],
      [JSON.stringify({ type: 'hello', role: 'player', ownerToken: other.ownerToken }), 'forbidden'],
      // An exit from a socket that proved nothing, even carrying the real token.
      [JSON.stringify({ type: 'exit', ownerToken: game.ownerToken }), 'forbidden'],
    ];
    for (const [raw, code] of cases) {
      s.send(raw);
      const e = await s.next('error');
      assert.equal(e.error.code, code, raw.slice(0, 60));
    }
    // Binary frames too.
    s.ws.send(new Uint8Array([1, 2, 3]));
    assert.equal((await s.next('error')).error.code, 'bad_request');
    // The refused hellos left the socket open and not joined: it is in no presence.
    let st = await call(`${edge.url}/edge/game/${game.gameId}/live/stats`);
    assert.deepEqual(st.body.presence, { players: [], viewers: 0 });
    assert.equal(st.body.sockets, 1);
    // It may join as viewer; a viewer cannot end the game either.
    s.send({ type: 'hello', role: 'viewer' });
    assert.equal((await s.next('welcome')).role, 'viewer');
    s.send({ type: 'exit' });
    assert.equal((await s.next('error')).error.code, 'forbidden');
    let g = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(g.body.status, 'active');
    // A proved player whose exit names a forged token: the origin checks the token the
    // socket's exit carries, and refuses it.
    const owner = await openLive(edge.url, game.gameId);
    owner.send({ type: 'hello', role: 'player', ownerToken: game.ownerToken });
    assert.equal((await owner.next('welcome')).role, 'player');
    owner.send({ type: 'exit', ownerToken: forged });
    assert.equal((await owner.next('error', 8000)).error.code, 'forbidden');
    g = await call(`${edge.url}/edge/game/${game.gameId}`);
    assert.equal(g.body.status, 'active');
    // The room still works, and the owner ends the game over the socket with its proved token.
    owner.send({ type: 'exit' });
    const ex = await s.next('exited', 8000);
    assert.equal(ex.gameId, game.gameId);
    await owner.next('exited');
    const origin = await call(`${origins.eu.url}/game/${game.gameId}`);
    assert.equal(origin.body.status, 'exited');
    assert.equal(origin.body.exitedAt, ex.exitedAt);
    st = await call(`${edge.url}/edge/game/${game.gameId}/live/stats`);
    assert.ok(st.body.stats.messagesIn.some((c) => c.type === 'invalid'));
    await s.close();
    await owner.close();
  });

  test('a flooding socket is refused once, then closed; the room keeps serving', async () => {
    const game = await startGame(uid('live-f'));
    // The player hears about viewers joining and leaving (viewers hear only about players).
    const calm = await openLive(edge.url, game.gameId);
    calm.send({ type: 'hello', role: 'player', ownerToken: game.ownerToken });
    assert.equal((await calm.next('welcome')).role, 'player');
    const flood = await openLive(edge.url, game.gameId);
    flood.send({ type: 'hello', role: 'viewer' });
    await flood.next('welcome');
    for (let i = 0; i < 200; i++) flood.send({ type: 'ping', clientTime: i });
    const refused = await flood.next('error');
    assert.equal(refused.error.code, 'rate_limited');
    const code = await Promise.race([flood.closed.then((ev) => ev.code), sleep(5000).then(() => 'still open')]);
    assert.equal(code, 1008);
    // The burst was answered (30 messages including the hello), the rest dropped without a
    // frame each.
    const pongs = flood.inbox.filter((m) => m.type === 'pong').length;
    assert.ok(pongs >= 25 && pongs <= 35, `${pongs} pongs`);
    assert.equal(flood.inbox.filter((m) => m.type === 'error').length, 0, 'one error frame per run');
    // The other socket saw the flooder leave once, and is still answered.
    await calm.next('left');
    calm.send({ type: 'ping', clientTime: 1 });
    assert.equal((await calm.next('pong')).clientTime, 1);
    await sleep(300);
    assert.equal(calm.inbox.filter((m) => m.type === 'left').length, 0, 'left only once');
    const st = await call(`${edge.url}/edge/game/${game.gameId}/live/stats`);
    assert.equal(st.body.presence.viewers, 0);
    assert.equal(st.body.presence.players.length, 1);
    assert.ok(st.body.stats.messagesIn.some((c) => c.type === 'refused'));
    await calm.close();
  });

  test('bad upgrades and ids are HTTP errors', async () => {
    let r = await call(`${edge.url}/edge/game/not-a-uuid/live`);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.field, 'gameId');
    r = await call(`${edge.url}/edge/game/0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e/live`);
    assert.equal(r.status, 400);
    await assert.rejects(openLive(edge.url, '0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e'));
  });
});
