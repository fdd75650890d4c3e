// Failover: a stopped origin (connect errors) and a hung one (timeouts). A failed-over or retried
// start never creates a second game for one Idempotency-Key; the circuit breaker then skips the
// dead region without calling it, and probes it again (half-open) after the cooldown.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { call, originMetric, sleep, startEdge, startOrigins, uid } from './harness.mjs';

/** A TCP server that accepts connections and never answers: an origin that hangs. */
async function hungServer() {
  const sockets = new Set();
  let connections = 0;
  const srv = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    connections: () => connections,
    async close() {
      for (const s of sockets) s.destroy();
      srv.close();
      await once(srv, 'close');
    },
  };
}

describe('failover between regions', () => {
  let origins;
  let hung;
  let edge;
  const TIMEOUT_MS = 800;
  const COOLDOWN_MS = 3_000;
  before(async () => {
    origins = await startOrigins(['eu', 'us'], 'failover');
    hung = await hungServer();
    edge = await startEdge({
      vars: {
        REGION_ORIGINS: JSON.stringify({ eu: origins.eu.url, us: origins.us.url, asia: hung.url }),
        FAILOVER_ORDER: 'eu,us,asia',
        DEFAULT_REGION: 'eu',
        ORIGIN_TIMEOUT_MS: String(TIMEOUT_MS),
        BREAKER_FAILURE_THRESHOLD: '2',
        BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
        // The static list under test (the hung region is in no registry), routed by rule.
        REGISTRY_REFRESH_MS: '0',
        ROUTING_POLICY: 'preference,header,geo,default',
      },
    });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
    await hung?.close();
  });

  const start = (body, headers = {}) => call(`${edge.url}/edge/game/start`, { method: 'POST', body, headers });
  const breaker = async (region) =>
    (await call(`${edge.url}/edge/regions`)).body.regions.find((r) => r.name === region).breaker;

  test('a hung region times out, the start fails over, and its breaker opens', async () => {
    const userId = uid('hung');
    const key = uid('key');
    const first = await start({ userId, preferredRegion: 'asia' }, { 'idempotency-key': key });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.routedBy, 'failover');
    assert.equal(first.body.backendRegion, 'eu', 'next in failover order after asia');
    assert.ok(first.ms >= TIMEOUT_MS, `waited for the timeout (${first.ms} ms)`);
    assert.equal(hung.connections(), 1);
    assert.equal(await breaker('asia'), 'closed', 'one failure is below the threshold');

    // The client retries with the same key: same game, not a second one.
    const retry = await start({ userId, preferredRegion: 'asia' }, { 'idempotency-key': key });
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.body.gameId, first.body.gameId);
    assert.equal(retry.body.routedBy, 'failover');
    assert.equal(hung.connections(), 2);
    assert.equal(await breaker('asia'), 'open');

    // Open: asia is skipped without a connection and without waiting.
    const skipped = await start({ userId: uid('skip'), preferredRegion: 'asia' });
    assert.equal(skipped.status, 201, skipped.text);
    assert.equal(skipped.body.routedBy, 'failover');
    assert.ok(skipped.ms < TIMEOUT_MS / 2, `open circuit skipped quickly (${skipped.ms} ms)`);
    assert.equal(hung.connections(), 2, 'no call reached the dead region');

    // After the cooldown exactly one probe goes out (half-open); it fails and re-opens.
    await sleep(COOLDOWN_MS + 200);
    assert.equal(await breaker('asia'), 'half-open');
    const [p1, p2] = await Promise.all([
      start({ userId: uid('probe'), preferredRegion: 'asia' }),
      start({ userId: uid('probe'), preferredRegion: 'asia' }),
    ]);
    assert.equal(p1.status, 201, p1.text);
    assert.equal(p2.status, 201, p2.text);
    assert.equal(hung.connections(), 3, 'one probe for two concurrent requests');
    assert.equal(await breaker('asia'), 'open');
  });

  test('a stopped origin: the start fails over with the same key, exactly one game per key', async () => {
    const userId = uid('stop');
    const key = uid('key');
    const started = () => originMetric(origins, 'seedsync_sessions_started_total');
    const before0 = await started();

    // Created in eu while eu is up.
    const a = await start({ userId, preferredRegion: 'eu' }, { 'idempotency-key': key });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.backendRegion, 'eu');
    assert.equal(a.body.routedBy, 'preference');
    const eu = origins.eu;
    const startedAfterFirst = await started();
    assert.equal(startedAfterFirst, before0 + 1);

    await eu.stop();
    const usStarted = () => originMetric({ us: origins.us }, 'seedsync_sessions_started_total');
    const usBefore = await usStarted();

    // The client did not see the answer and retries: eu is down, us answers with the same game.
    const b = await start({ userId, preferredRegion: 'eu' }, { 'idempotency-key': key });
    assert.equal(b.status, 200, b.text);
    assert.equal(b.body.gameId, a.body.gameId);
    assert.equal(b.body.routedBy, 'failover');
    assert.equal(b.headers.get('x-edge-region'), 'us');
    assert.equal(b.body.backendRegion, 'eu', 'the game still lives in eu');
    assert.equal(await usStarted(), usBefore, 'the failed-over retry created nothing');

    // Concurrent retries of one new key while eu is down: one game among all of them.
    const key2 = uid('key');
    const user2 = uid('stop2');
    const results = await Promise.all(
      Array.from({ length: 4 }, () => start({ userId: user2, preferredRegion: 'eu' }, { 'idempotency-key': key2 })),
    );
    for (const r of results) assert.ok(r.status === 201 || r.status === 200, r.text);
    const ids = new Set(results.map((r) => r.body.gameId));
    assert.equal(ids.size, 1, `one game for one key, got ${[...ids]}`);
    assert.ok(results.every((r) => r.body.backendRegion === 'us' && r.body.routedBy === 'failover'));
    assert.equal(results.filter((r) => r.status === 201).length, 1, 'exactly one creation');

    assert.equal(await usStarted(), usBefore + 1, 'four concurrent starts, one game created');
    const active = await call(`${origins.us.url}/users/${user2}/game`);
    assert.equal(active.status, 200, active.text);
    assert.equal(active.body.gameId, [...ids][0]);

    // Reads and exits of a game whose region is down are served by the next region.
    const read = await call(`${edge.url}/edge/game/${a.body.gameId}`, { headers: { 'x-user-region': 'eu' } });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.headers.get('x-edge-region'), 'us');
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: a.body.gameId, userId, backendRegion: 'eu' },
    });
    assert.equal(exit.status, 200, exit.text);
    assert.equal(exit.headers.get('x-edge-region'), 'us');
    assert.equal(exit.body.backendRegion, 'eu');
    assert.equal(exit.body.ok, true);
  });
});
