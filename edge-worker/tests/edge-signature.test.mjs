// The edge proves itself to the origins: real origins in production mode (SEEDSYNC_ENV=
// production, EDGE_ORIGIN_SECRET) behind the real Worker holding the same secret (handed to
// wrangler in a mode-600 env file, never on its command line). Starts through the edge work,
// and the origins key their per-client limits on the address the edge signed (TRUSTED_PROXIES
// is blank here, so nothing else could carry it); a start sent straight to an origin, without a
// signature or with a forged one, is 403.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { call, metricValue, originVars, startEdge, startOrigins, uid } from './harness.mjs';

const EDGE_ORIGIN_SECRET = 'edge-origin-secret-of-the-workerd-tests-0123456789';
const REGISTRY_SECRET = 'registry-secret-of-the-workerd-tests-0123456789';

let nextIp = 1;
const client = () => ({ 'cf-connecting-ip': `10.88.${Math.floor(nextIp / 250)}.${nextIp++ % 250}` });

describe('edge -> origin signatures', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu', 'us'], 'edgesig', {
      SEEDSYNC_ENV: 'production',
      EDGE_ORIGIN_SECRET,
      REGISTRY_SECRET,
      // No proxy is trusted by IP: only the edge's signature can name the client.
      TRUSTED_PROXIES: '',
      RATE_LIMIT_START: '2/60',
    });
    edge = await startEdge({
      vars: { ...originVars(origins, ['eu', 'us']) },
      secrets: { EDGE_ORIGIN_SECRET, REGISTRY_SECRET },
    });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  const start = (headers) =>
    call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: uid('sig') }, headers });

  test('starts through the edge work, each client with its own origin budget', async () => {
    const [a, b] = [client(), client()];
    for (const who of [a, b]) {
      for (let i = 0; i < 2; i++) {
        const started = await start(who);
        assert.equal(started.status, 201, started.text);
      }
    }
    // The third start of one client is the origin's 429: it counted this client, not the edge.
    const third = await start(a);
    assert.equal(third.status, 429, third.text);
    assert.equal(third.body.error.code, 'rate_limited', third.text);
    // Reads go through signed too.
    const fresh = await start(client());
    assert.equal(fresh.status, 201, fresh.text);
    const read = await call(`${edge.url}/edge/game/${fresh.body.gameId}`, { headers: client() });
    assert.equal(read.status, 200, read.text);
    // Every origin call was signed and verified (whichever region served it).
    let ok = 0;
    for (const o of Object.values(origins)) {
      const metrics = await (await fetch(`${o.url}/metrics`)).text();
      ok += metricValue(metrics, 'seedsync_edge_auth_total', { outcome: 'ok' });
      assert.equal(metricValue(metrics, 'seedsync_edge_auth_total', { outcome: 'missing' }), 0);
      assert.ok(!metrics.includes(EDGE_ORIGIN_SECRET));
    }
    assert.ok(ok >= 7, `${ok} verified requests`);
  });

  test('a start sent straight to an origin is refused without a valid signature', async () => {
    const direct = (headers = {}) =>
      call(`${origins.eu.url}/game/start`, {
        method: 'POST',
        body: { userId: uid('direct') },
        headers,
      });
    const unsigned = await direct();
    assert.equal(unsigned.status, 403, unsigned.text);
    assert.equal(unsigned.body.error.code, 'forbidden');
    assert.match(unsigned.body.error.message, /edge/);
    const forged = await direct({
      'x-seedsync-edge-signature': `v1 t=${Date.now()} n=AAAAAAAAAAAAAAAAAAAAAA s=${'A'.repeat(43)}`,
      'x-seedsync-client-address': '203.0.113.1',
      'x-seedsync-user-id': '-',
      'x-forwarded-for': '203.0.113.1',
    });
    assert.equal(forged.status, 403, forged.text);
    const metrics = await (await fetch(`${origins.eu.url}/metrics`)).text();
    assert.ok(metricValue(metrics, 'seedsync_edge_auth_total', { outcome: 'missing' }) >= 1, metrics);
    assert.ok(
      metricValue(metrics, 'seedsync_edge_auth_total', { outcome: 'bad_signature' }) >= 1,
      metrics,
    );
    // Operations stay open to their own credentials.
    assert.equal((await fetch(`${origins.eu.url}/ready`)).status, 200);
  });
});
