// Sealed games (sealed-v1, issue 24) through the real Worker in workerd and a real origin on
// Cassandra: the game's room pushes `{"type":"round","round":R,"key":"<hex>"}` to every socket
// at each round's break, each key chains (SHA-256 of k_r is k_(r-1), k_1 hashes to the
// commitment) and arrives no earlier than its break instant; meanwhile every edge path (the
// rounds, the game, its state, the room's counters) is polled and no key shows anywhere before
// its break; GET /edge/game/{id}/rounds passes the origin's 425 (Retry-After, never stored) and
// caches revealed pages for good; and the origin's private schedule headers (which say when
// the next break is) reach only the edge's signed requests, never a public client.
//
// Break instants come from the origin's own replay after the game (origin: no production
// mode here, so it answers direct reads).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { call, openRoom as openLive, originMetric, originVars, sleep, startEdge, startOrigins, uid } from './harness.mjs';

const EDGE_ORIGIN_SECRET = 'edge-origin-secret-of-the-sealed-tests-0123456789';
const SCHEDULE_HEADERS = ['x-seedsync-public-rounds', 'x-seedsync-next-reveal-at', 'x-seedsync-next-round'];
const TICK_MS = 100;
// The least a sealed game allows at 100 ms (rounds of at least 10 steps): about 2 s a round.
const BREAK_EVERY = 20;
const LIVE_MS = 12_000;

const sha256hex = (hex) => crypto.createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');
const HEX64 = /[0-9a-f]{64}/g;

describe('sealed games at the edge', () => {
  let origins;
  let edge;
  // Every socket a test opened, closed in `after` even when an assertion failed first.
  const opened = [];
  const open = async (gameId) => {
    const live = await openLive(edge.url, gameId);
    opened.push(live);
    return live;
  };
  before(async () => {
    origins = await startOrigins(['eu'], 'sealed', { EDGE_ORIGIN_SECRET, START_DELAY_MS: '2000' });
    edge = await startEdge({ vars: { ...originVars(origins) }, secrets: { EDGE_ORIGIN_SECRET }, logLevel: 'log' });
  });
  after(async () => {
    for (const live of opened) live.ws.close();
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  test('round keys are pushed at their breaks, chain, and show nowhere before', async () => {
    const user = uid('sealed');
    const started = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: user, algorithm: 'sealed-v1', tickMs: TICK_MS, breakEvery: BREAK_EVERY },
    });
    assert.equal(started.status, 201, started.text);
    const game = started.body;
    assert.equal(game.algorithm, 'sealed-v1');
    assert.match(game.commitment, /^[0-9a-f]{64}$/);
    assert.equal(game.root, undefined, 'no root while the game runs');
    const id = game.gameId;

    const roundsAsked = () => originMetric(origins, 'seedsync_http_requests_total', { route: '/game/{id}/rounds' });
    const askedBefore = await roundsAsked();

    // Three sockets: the player and two viewers, all in before the first break.
    const sockets = [];
    for (const hello of [
      { type: 'hello', role: 'player', ownerToken: game.ownerToken },
      { type: 'hello', role: 'viewer' },
      { type: 'hello', role: 'viewer' },
    ]) {
      const live = await open(id);
      live.send(hello);
      const welcome = await live.next('welcome');
      assert.equal(welcome.role, hello.role);
      sockets.push(live);
    }

    // Poll every edge path while the game runs; remember what came back and when.
    const seen = [];
    const observe = async (what, url, init) => {
      const r = await call(url, init);
      const headers = [...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      seen.push({ what, at: Date.now(), text: `${r.text}\n${headers}` });
      return r;
    };
    let tooEarly = 0;
    let revealedPages = 0;
    const pollUntil = Date.now() + LIVE_MS;
    while (Date.now() < pollUntil) {
      const page = await observe('rounds', `${edge.url}/edge/game/${id}/rounds?from=1`);
      if (page.status === 200) {
        revealedPages += 1;
        assert.equal(page.headers.get('cache-control'), 'no-cache', 'a live page grows');
        assert.equal(page.body.commitment, game.commitment);
      } else {
        assert.equal(page.status, 425, page.text);
      }
      const next = (page.status === 200 ? page.body.rounds.length : 0) + 1;
      const early = await observe('rounds-next', `${edge.url}/edge/game/${id}/rounds?from=${next}`);
      if (early.status === 425) {
        tooEarly += 1;
        assert.equal(early.body.error.code, 'too_early', early.text);
        assert.equal(typeof early.body.error.retryAt, 'number', early.text);
        assert.ok(Number(early.headers.get('retry-after')) >= 1, 'Retry-After passed on');
        assert.equal(early.headers.get('cache-control'), 'no-store', 'a 425 is never stored');
      }
      await observe('game', `${edge.url}/edge/game/${id}`);
      await observe('state', `${edge.url}/edge/game/${id}/state`);
      await observe('state-at', `${edge.url}/edge/game/${id}/state?at=${Date.now() - 2_500}`);
      await observe('stats', `${edge.url}/edge/game/${id}/live/stats`);
      // A public client asking for the schedule, at the edge and at the origin: never told.
      for (const url of [
        `${edge.url}/edge/game/${id}/rounds?from=1`,
        `${origins.eu.url}/game/${id}/rounds?from=1`,
        `${origins.eu.url}/game/${id}/rounds?from=${next}`,
      ]) {
        const asked = await observe('schedule?', url, { headers: { 'x-seedsync-schedule': '1' } });
        for (const h of SCHEDULE_HEADERS) assert.equal(asked.headers.get(h), null, `${url}: ${h}`);
      }
      await sleep(100);
    }
    assert.ok(tooEarly > 0, 'the next round was asked for before its break');
    assert.ok(revealedPages > 0, 'some rounds were revealed while polling');

    // The room asked the origin about once a round (its alarm rings at each reveal instant,
    // from the private schedule), not at every public retry time.
    const ours = seen.filter((s) => ['rounds', 'rounds-next', 'schedule?'].includes(s.what)).length;
    const roomAsks = (await roundsAsked()) - askedBefore - ours;
    const pushedLive = sockets[0].inbox.filter((m) => m.type === 'round').length;

    // End the game; the room pushes the keys up to the end.
    const exitSentAt = Date.now();
    const exited = await call(`${edge.url}/edge/game/exit`, { method: 'POST', body: { gameId: id, userId: user } });
    assert.equal(exited.status, 200, exited.text);
    for (const live of sockets) await live.next('exited');
    await sleep(1_500);

    // The public record after the end: every key, the root, and the breaks (origin replay).
    const all = await call(`${edge.url}/edge/game/${id}/rounds?from=1`);
    assert.equal(all.status, 200, all.text);
    assert.equal(all.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const again = await call(`${edge.url}/edge/game/${id}/rounds?from=1`);
    assert.equal(again.headers.get('x-edge-cache'), 'hit', 'an ended game\'s page is cached for good');
    assert.deepEqual(again.body, all.body);
    const keys = all.body.rounds.map((k) => k.key);
    assert.ok(keys.length >= 3, `${keys.length} rounds`);
    let previous = game.commitment;
    for (const [i, k] of all.body.rounds.entries()) {
      assert.equal(k.round, i + 1);
      assert.equal(sha256hex(k.key), previous, `round ${k.round} chains`);
      previous = k.key;
    }
    const ended = await call(`${edge.url}/edge/game/${id}`);
    assert.equal(ended.body.status, 'exited');
    assert.match(ended.body.root, /^[0-9a-f]{64}$/, 'the root is public after the end');
    let down = ended.body.root;
    for (let r = ended.body.rounds; r > keys.length; r--) down = sha256hex(down);
    assert.equal(down, keys[keys.length - 1], 'the root hashes down to the last key');
    const replay = await call(`${origins.eu.url}/game/${id}/replay?from=0&to=9999`);
    assert.equal(replay.status, 200, replay.text);
    assert.ok(replay.body.ticks.length < 9_999, 'the whole game in one replay');
    const breakSteps = replay.body.ticks.filter((t) => t.broken).map((t) => t.step);
    // The break instant of round r: its break step's start; rounds breaking after the end
    // (the one under way at the exit) are public only from the exit on.
    const breakAt = (round) =>
      round <= breakSteps.length ? game.startAt + breakSteps[round - 1] * TICK_MS : exitSentAt;
    assert.ok(breakSteps.length >= 2, `${breakSteps.length} breaks before the end`);

    // No key anywhere before its break (an answer received before the instant held none).
    const roundOf = new Map(keys.map((k, i) => [k, i + 1]));
    let checked = 0;
    for (const s of seen) {
      for (const hex of s.text.match(HEX64) ?? []) {
        const round = roundOf.get(hex);
        if (round === undefined) continue;
        checked += 1;
        assert.ok(
          s.at >= breakAt(round),
          `${s.what}: round ${round}'s key ${s.at - breakAt(round)} ms before its break`,
        );
      }
    }
    assert.ok(checked > 0, 'revealed keys were seen while polling');

    // Every socket: round 1 on, consecutive, chaining, each at or after its break.
    const latencies = [];
    for (const [n, live] of sockets.entries()) {
      const rounds = live.inbox.filter((m) => m.type === 'round');
      assert.ok(rounds.length >= breakSteps.length, `socket ${n}: ${rounds.length} round messages`);
      let prev = game.commitment;
      for (const [i, m] of rounds.entries()) {
        assert.deepEqual(Object.keys(m).filter((k) => k !== 'receivedAt').sort(), ['key', 'round', 'type']);
        assert.equal(m.round, i + 1, `socket ${n}: rounds in order`);
        assert.equal(sha256hex(m.key), prev, `socket ${n}: round ${m.round} chains`);
        assert.equal(m.key, keys[i]);
        prev = m.key;
        assert.ok(
          m.receivedAt >= breakAt(m.round),
          `socket ${n}: round ${m.round} pushed ${breakAt(m.round) - m.receivedAt} ms before its break`,
        );
        if (m.round <= breakSteps.length) latencies.push(m.receivedAt - breakAt(m.round));
      }
    }
    latencies.sort((a, b) => a - b);
    console.log(`# break to key at the sockets: ${latencies.length} pushes, p50 ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms`);
    // Pushed at the break, not at some later poll: the alarm rings at the reveal instant.
    assert.ok(latencies[Math.floor(latencies.length / 2)] < 500, `median ${latencies[Math.floor(latencies.length / 2)]} ms`);

    console.log(`# the room asked its origin ${roomAsks} times for ${pushedLive} rounds`);
    assert.ok(pushedLive >= 2 && roomAsks <= 2 * pushedLive + 2, `${roomAsks} asks for ${pushedLive} rounds`);

    // A socket that joins now gets the latest key after its welcome.
    const late = await open(id);
    late.send({ type: 'hello', role: 'viewer' });
    await late.next('welcome');
    const latest = await late.next('round');
    assert.equal(latest.key, keys[latest.round - 1]);

    // Logs are read by operators while games run: no key of the chain, nor the root, in any
    // line of the edge or the origin.
    for (const [where, text] of [
      ["the edge's log", edge.proc.log()],
      ["the origin's log", origins.eu.proc.log()],
    ]) {
      assert.ok(text.length > 0, `${where} is empty`);
      for (const [i, key] of keys.entries()) assert.ok(!text.includes(key), `${where} holds round ${i + 1}'s key`);
      assert.ok(!text.includes(ended.body.root), `${where} holds the root`);
    }
  });

  test('the rounds route refuses bad input as the contract says', async () => {
    const bad = await call(`${edge.url}/edge/game/not-a-uuid/rounds`);
    assert.equal(bad.status, 422, bad.text);
    assert.equal(bad.body.error.field, 'gameId');
    const unknown = await call(`${edge.url}/edge/game/${crypto.randomUUID()}/rounds`);
    assert.equal(unknown.status, 404, unknown.text);
    const seeded = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: uid('seeded') } });
    assert.equal(seeded.status, 201, seeded.text);
    const notSealed = await call(`${edge.url}/edge/game/${seeded.body.gameId}/rounds`);
    assert.equal(notSealed.status, 422, notSealed.text);
    assert.equal(notSealed.body.error.field, 'gameId');
    const from = await call(`${edge.url}/edge/game/${seeded.body.gameId}/rounds?from=x`);
    assert.equal(from.status, 422, from.text);
    assert.equal(from.body.error.field, 'from');
    const post = await call(`${edge.url}/edge/game/${seeded.body.gameId}/rounds`, { method: 'POST', body: {} });
    assert.equal(post.status, 405, post.text);
  });
});
