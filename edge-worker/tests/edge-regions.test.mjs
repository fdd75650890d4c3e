// Live regions through the real Worker (wrangler dev) and real origins on Cassandra: origins
// heartbeat into the registry (REGISTER_INTERVAL_SECONDS=1, TTL 3 s), the edge follows it
// without a redeploy (a new region, a dead one, a drained one), falls back to its static list
// when no registry answers, and routes unpinned starts by measured latency, with geo deciding
// among equally fast regions.

import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';

import { call, cfLocation, freePort, originMetric, originVars, sleep, startEdge, startOrigin, startOrigins, uid } from './harness.mjs';

const INTERVAL_S = 1;
const TTL_MS = 3 * INTERVAL_S * 1000;
const ADMIN = 'admin-secret-for-tests';
const ORIGIN_ENV = { REGISTER_INTERVAL_SECONDS: String(INTERVAL_S), ADMIN_TOKEN: ADMIN, TEST_MODE: '1' };

/** Polls `check` (async, truthy = done) every 100 ms for up to `ms`; returns the elapsed ms. */
async function until(what, ms, check) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await check();
    if (last) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

async function edgeRegions(edge) {
  const r = await call(`${edge.url}/edge/regions`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

async function start(edge, body, headers = {}) {
  const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', body, headers });
  assert.ok(r.status === 201 || r.status === 200, `start: ${r.status} ${r.text}`);
  return r;
}

describe('registry-driven region table', () => {
  let origins;
  let edge;
  let sa;
  before(async () => {
    origins = await startOrigins(['eu', 'us', 'asia'], 'regions', ORIGIN_ENV);
    edge = await startEdge({
      vars: {
        ...originVars(origins, ['eu', 'us', 'asia']),
        REGISTRY_REFRESH_MS: '250',
        BREAKER_FAILURE_THRESHOLD: '3',
      },
    });
  });
  after(async () => {
    await edge?.stop();
    await sa?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  test('the edge table comes from the registry, with status and load', async () => {
    await until('source registry', 5_000, async () => (await edgeRegions(edge)).source === 'registry');
    const v = await edgeRegions(edge);
    assert.deepEqual(v.regions.map((r) => r.name).sort(), ['asia', 'eu', 'us']);
    for (const r of v.regions) {
      assert.equal(r.status, 'active');
      assert.equal(typeof r.load?.inFlight, 'number', JSON.stringify(r));
    }
    const direct = await call(`${origins.us.url}/regions`);
    assert.equal(direct.status, 200);
    assert.equal(direct.body.servedBy, 'us');
    assert.deepEqual(direct.body.regions.map((r) => r.name), ['asia', 'eu', 'us']);
    assert.equal(direct.body.regions[0].url, origins.asia.url, 'PUBLIC_URL defaults to HOST:PORT');
  });

  test('a 4th origin started mid-test takes preferredRegion starts within 2 heartbeat intervals', async () => {
    sa = await startOrigin({ region: 'sa', keyspace: origins.eu.keyspace, env: ORIGIN_ENV });
    const readyAt = Date.now();
    let served;
    await until('a start routed to sa', 4 * INTERVAL_S * 1000, async () => {
      const r = await start(edge, { userId: uid('sa'), preferredRegion: 'sa' });
      served = r;
      return r.body.backendRegion === 'sa' && r.body.routedBy === 'preference';
    });
    const elapsed = Date.now() - readyAt;
    assert.ok(elapsed <= 2 * INTERVAL_S * 1000, `sa took ${elapsed} ms`);
    assert.equal(served.body.region, 'sa', 'created by the sa origin');
    assert.equal(served.headers.get('x-edge-region'), 'sa');
    const v = await edgeRegions(edge);
    assert.ok(v.regions.some((r) => r.name === 'sa' && r.origin === sa.url));
  });

  test('a killed origin leaves /regions within its TTL; the edge stops routing to it before its breaker opens', async () => {
    await origins.us.stop();
    const stoppedAt = Date.now();
    await until('us gone from /regions', TTL_MS + 1_500, async () => {
      const r = await call(`${origins.eu.url}/regions`);
      return r.status === 200 && !r.body.regions.some((x) => x.name === 'us');
    });
    assert.ok(Date.now() - stoppedAt <= TTL_MS + 1_500);
    await until('us gone from the edge table', 2_000, async () => !(await edgeRegions(edge)).regions.some((r) => r.name === 'us'));
    for (let i = 0; i < 5; i++) {
      const r = await start(edge, { userId: uid('dead'), preferredRegion: 'us' });
      assert.notEqual(r.body.backendRegion, 'us');
      assert.notEqual(r.body.routedBy, 'preference', 'us is no longer a region');
      assert.notEqual(r.body.routedBy, 'failover', 'never tried: no failed call');
    }
    // The breaker never counted a failure: the registry took us out first.
    const v = await edgeRegions(edge);
    assert.ok(!v.regions.some((r) => r.name === 'us'));
  });

  test('drain: 401/403 without the admin token; a draining region gets 0 new starts; its games exit elsewhere; undrain', async () => {
    const userId = uid('drained');
    const game = await start(edge, { userId, preferredRegion: 'eu' });
    assert.equal(game.body.backendRegion, 'eu');

    const drainUrl = `${origins.asia.url}/regions/eu/drain`;
    const noToken = await call(drainUrl, { method: 'POST' });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.error.code, 'unauthorized');
    const wrong = await call(drainUrl, { method: 'POST', headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error.code, 'forbidden');
    const ok = await call(drainUrl, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { region: 'eu', status: 'draining' });

    await until('eu draining at the edge', 3_000, async () =>
      (await edgeRegions(edge)).regions.some((r) => r.name === 'eu' && r.status === 'draining'),
    );
    const before = await originMetric({ eu: origins.eu }, 'seedsync_sessions_started_total');
    for (let i = 0; i < 10; i++) {
      const r = await start(edge, { userId: uid('after-drain'), preferredRegion: 'eu' });
      assert.notEqual(r.body.backendRegion, 'eu');
      assert.notEqual(r.headers.get('x-edge-region'), 'eu');
    }
    assert.equal(await originMetric({ eu: origins.eu }, 'seedsync_sessions_started_total'), before, '0 new starts at eu');

    // The active game stays readable and exits through a live region.
    const read = await call(`${edge.url}/edge/game/${game.body.gameId}`);
    assert.equal(read.status, 200);
    assert.notEqual(read.body.backendRegion, 'eu', 'home moved to a live region');
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.body.gameId, userId, backendRegion: 'eu' },
    });
    assert.equal(exit.status, 200, exit.text);
    assert.notEqual(exit.headers.get('x-edge-region'), 'eu');
    assert.notEqual(exit.body.backendRegion, 'eu');
    assert.equal(exit.body.ok, true);

    const undo = await call(`${sa.url}/regions/eu/undrain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(undo.status, 200, undo.text);
    await until('eu takes starts again', 3_000, async () => {
      const r = await start(edge, { userId: uid('undrained'), preferredRegion: 'eu' });
      return r.body.backendRegion === 'eu';
    });
  });
});

describe('a signed registry: only origins speak for regions', () => {
  const REGISTRY_SECRET = 'seedsync-edge-tests-registry-secret-0123456789';
  const SIGNED_ENV = { ...ORIGIN_ENV, REGISTRY_SECRET };
  let origins;
  let rogue;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu', 'us'], 'signed', SIGNED_ENV);
    edge = await startEdge({
      vars: {
        ...originVars(origins, ['eu', 'us']),
        REGISTRY_REFRESH_MS: '250',
        REGISTRY_SECRET,
        REGION_URL_PATTERN: 'http://127.0.0.1:*',
      },
    });
    await until('source registry', 5_000, async () => (await edgeRegions(edge)).source === 'registry');
  });
  after(async () => {
    await edge?.stop();
    await rogue?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  const table = async () => Object.fromEntries((await edgeRegions(edge)).regions.map((r) => [r.name, r.origin]));

  test('anonymous or wrongly keyed registration of eu or of a new name: 401/403, nothing changes', async () => {
    const before = await table();
    assert.deepEqual(before, { eu: origins.eu.url, us: origins.us.url });
    const attacker = 'http://127.0.0.1:9';
    for (const region of ['eu', 'zz']) {
      for (const headers of [{}, { authorization: 'Bearer not-the-registry-secret' }]) {
        const r = await call(`${origins.us.url}/api/regions/register`, {
          method: 'POST',
          body: { region, base_url: attacker },
          headers,
        });
        assert.ok(r.status === 401 || r.status === 403, `${region}: ${r.status} ${r.text}`);
      }
    }
    // Several refreshes later the table, starts and exits are as before.
    await sleep(1_000);
    assert.deepEqual(await table(), before);
    const userId = uid('signed');
    const game = await start(edge, { userId, preferredRegion: 'eu' });
    assert.equal(game.body.backendRegion, 'eu');
    const zz = await start(edge, { userId: uid('zz'), preferredRegion: 'zz' });
    assert.notEqual(zz.body.backendRegion, 'zz');
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.body.gameId, userId, backendRegion: 'eu' },
    });
    assert.equal(exit.status, 200, exit.text);
    assert.equal(exit.headers.get('x-edge-region'), 'eu');
  });

  test('rows written into Cassandra without the secret are ignored by the origins and the edge', async () => {
    // A process with write access to Cassandra but not the registry secret heartbeats its
    // own rows (signed with another key) for a new region, every second.
    rogue = await startOrigin({
      region: 'zz',
      keyspace: origins.eu.keyspace,
      env: { ...ORIGIN_ENV, REGISTRY_SECRET: 'a-rogue-processes-own-registry-secret-000000' },
    });
    // The rogue lists its own row (it trusts its own key); the real origins never do.
    await until('the rogue row is in Cassandra', 5_000, async () => {
      const r = await call(`${rogue.url}/regions`);
      return r.status === 200 && r.body.regions.some((x) => x.name === 'zz');
    });
    for (let i = 0; i < 3; i++) {
      const direct = await call(`${origins.eu.url}/regions`);
      assert.equal(direct.status, 200);
      assert.deepEqual(direct.body.regions.map((r) => r.name), ['eu', 'us']);
      assert.deepEqual(Object.keys(await table()).sort(), ['eu', 'us']);
      const r = await start(edge, { userId: uid('rogue'), preferredRegion: 'zz' });
      assert.notEqual(r.body.backendRegion, 'zz');
      assert.notEqual(r.headers.get('x-edge-region'), 'zz');
      await sleep(500);
    }
    const rogueStarts = await originMetric({ zz: rogue }, 'seedsync_sessions_started_total');
    assert.equal(rogueStarts, 0, 'the edge sent the rogue nothing');
  });
});

describe('registry unreachable', () => {
  let origin;
  let proxy;
  let edge;
  before(async () => {
    origin = await startOrigin({ region: 'eu', keyspace: `edge_fallback_${process.pid}`, env: ORIGIN_ENV });
    // An origin whose registry route is down: /regions answers 503, the rest is forwarded.
    proxy = http.createServer(async (req, res) => {
      if (req.url.startsWith('/regions')) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
        res.end('{"error":{"code":"storage_unavailable","message":"down"}}');
        return;
      }
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const headers = { ...req.headers };
      delete headers.host;
      delete headers['content-length'];
      const upstream = await fetch(`${origin.url}${req.url}`, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    proxy.listen(await freePort(), '127.0.0.1');
    await once(proxy, 'listening');
    const url = `http://127.0.0.1:${proxy.address().port}`;
    edge = await startEdge({
      vars: { ...originVars({ eu: { url } }, ['eu']), REGISTRY_REFRESH_MS: '250' },
    });
  });
  after(async () => {
    await edge?.stop();
    proxy?.close();
    await origin?.stop();
  });

  test('the static list still routes', async () => {
    const r = await start(edge, { userId: uid('fallback') });
    assert.equal(r.status, 201);
    assert.equal(r.body.backendRegion, 'eu');
    await sleep(600); // a refresh has been tried meanwhile
    await start(edge, { userId: uid('fallback') });
    const v = await edgeRegions(edge);
    assert.equal(v.source, 'fallback');
    assert.deepEqual(v.regions.map((x) => x.name), ['eu']);
  });
});

describe('latency policy', () => {
  let origins = {};
  let edge;
  before(async () => {
    const keyspace = `edge_latency_${process.pid}`;
    // eu is fast; us and asia are slowed alike (within 10 % of each other).
    origins.eu = await startOrigin({ region: 'eu', keyspace, env: ORIGIN_ENV });
    origins.us = await startOrigin({ region: 'us', keyspace, env: { ...ORIGIN_ENV, TEST_ARTIFICIAL_DELAY_MS: '150' } });
    origins.asia = await startOrigin({ region: 'asia', keyspace, env: { ...ORIGIN_ENV, TEST_ARTIFICIAL_DELAY_MS: '160' } });
    edge = await startEdge({
      vars: {
        ...originVars(origins, ['us', 'asia', 'eu']),
        ROUTING_POLICY: 'preference,header,latency,load,geo,default',
        REGISTRY_REFRESH_MS: '300',
      },
    });
    await until('round trips measured', 10_000, async () => {
      const v = await edgeRegions(edge);
      return v.regions.length === 3 && v.regions.every((r) => typeof r.rttMs === 'number');
    });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins)) await o.stop();
  });

  test('>= 95 % of unpinned starts go to the fastest healthy region', async () => {
    const counts = {};
    const n = 40;
    for (let i = 0; i < n; i++) {
      const r = await start(edge, { userId: uid('lat') });
      counts[r.body.backendRegion] = (counts[r.body.backendRegion] ?? 0) + 1;
      if (r.body.backendRegion === 'eu') assert.equal(r.body.routedBy, 'latency');
    }
    assert.ok((counts.eu ?? 0) >= 0.95 * n, `eu got ${JSON.stringify(counts)}`);
  });

  test('no flapping between two regions within 10 % of each other', async () => {
    await origins.eu.stop();
    await until('eu gone', TTL_MS + 3_000, async () => !(await edgeRegions(edge)).regions.some((r) => r.name === 'eu'));
    const picks = [];
    for (let i = 0; i < 20; i++) {
      const r = await start(edge, { userId: uid('flap') });
      picks.push(r.body.backendRegion);
    }
    let switches = 0;
    for (let i = 1; i < picks.length; i++) if (picks[i] !== picks[i - 1]) switches++;
    assert.ok(switches <= 1, `picks ${picks.join(',')}`);
    assert.ok(picks.every((p) => p === 'us' || p === 'asia'));
  });
});

describe('geo among equally fast regions (the default ROUTING_POLICY)', () => {
  let origins;
  let edge;
  before(async () => {
    // Three origins on one machine: their round trips differ by noise only.
    origins = await startOrigins(['eu', 'us', 'asia'], 'geoeq', ORIGIN_ENV);
    const vars = { ...originVars(origins, ['eu', 'us', 'asia']), REGISTRY_REFRESH_MS: '300' };
    // wrangler.toml's order: latency before geo.
    delete vars.ROUTING_POLICY;
    edge = await startEdge({ vars });
    await until('live regions measured', 10_000, async () => {
      const v = await edgeRegions(edge);
      return v.source === 'registry' && v.regions.length === 3 && v.regions.every((r) => typeof r.rttMs === 'number');
    });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  test('a start from Japan without x-user-region lands in asia, routed by geo', async () => {
    // The premise: round trips that differ by noise only (a busy machine can make one origin
    // answer a probe late for a while; its average recovers within a few probes).
    let v;
    await until('round trips within 10 ms of each other', 15_000, async () => {
      v = await edgeRegions(edge);
      const rtts = v.regions.map((r) => r.rttMs);
      return Math.max(...rtts) - Math.min(...rtts) < 10;
    });
    assert.deepEqual(v.routingPolicy, ['preference', 'header', 'latency', 'load', 'geo', 'default']);
    const r = await start(edge, { userId: uid('jp') }, cfLocation('JP', 'AS'));
    assert.equal(r.body.backendRegion, 'asia', `${r.text} (round trips ${JSON.stringify(v.regions.map((x) => [x.name, x.rttMs]))})`);
    assert.equal(r.body.routedBy, 'geo');
    assert.equal(r.headers.get('x-edge-region'), 'asia');
    const de = await start(edge, { userId: uid('de') }, cfLocation('DE', 'EU'));
    assert.equal(de.body.backendRegion, 'eu', de.text);
    assert.equal(de.body.routedBy, 'geo');
  });
});
