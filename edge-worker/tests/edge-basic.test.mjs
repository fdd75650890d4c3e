// The Worker on its own (real workerd via wrangler dev, no origins needed): clock, health,
// regions, CORS, correlation headers, static assets vs /edge/*, bad input and bad config.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { assertError, call, freePort, startEdge } from './harness.mjs';

const INDEX_HTML = '<!doctype html><title>seedsync test page</title>';

describe('edge without origins', () => {
  let edge;
  let deadPort;
  before(async () => {
    // Origins on ports nothing listens on: every origin call fails fast with a connect error.
    deadPort = await freePort();
    const assets = fs.mkdtempSync(path.join(os.tmpdir(), 'seedsync-assets-'));
    fs.writeFileSync(path.join(assets, 'index.html'), INDEX_HTML);
    edge = await startEdge({
      assetsDir: assets,
      vars: {
        REGION_ORIGINS: JSON.stringify({
          eu: `http://127.0.0.1:${deadPort}`,
          us: `http://127.0.0.1:${deadPort}`,
        }),
        FAILOVER_ORDER: 'eu,us',
        DEFAULT_REGION: 'eu',
        ORIGIN_TIMEOUT_MS: '1000',
      },
    });
  });
  after(async () => edge?.stop());

  test('GET /edge/time answers the server clock in ms, uncached', async () => {
    const before = Date.now();
    const r = await call(`${edge.url}/edge/time`);
    const afterTs = Date.now();
    assert.equal(r.status, 200);
    assert.equal(typeof r.body.now, 'number');
    assert.ok(r.body.now >= before - 1000 && r.body.now <= afterTs + 1000, `${r.body.now} not in [${before}, ${afterTs}]`);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.match(r.headers.get('content-type'), /^application\/json/);
    const r2 = await call(`${edge.url}/edge/time`);
    assert.ok(r2.body.now >= r.body.now);
  });

  test('GET /edge/health and /edge/regions describe the configuration', async () => {
    const h = await call(`${edge.url}/edge/health`);
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.regions, 2);
    const r = await call(`${edge.url}/edge/regions`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.failoverOrder, ['eu', 'us']);
    assert.equal(r.body.defaultRegion, 'eu');
    assert.equal(r.body.cacheTtlSeconds, 30);
    assert.equal(r.body.originTimeoutMs, 1000);
    assert.deepEqual(
      r.body.regions.map((x) => [x.name, x.origin, x.breaker]),
      [
        ['eu', `http://127.0.0.1:${deadPort}`, 'closed'],
        ['us', `http://127.0.0.1:${deadPort}`, 'closed'],
      ],
    );
  });

  test('every response carries CORS headers; preflight lists methods and headers', async () => {
    const r = await call(`${edge.url}/edge/time`);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.match(r.headers.get('access-control-expose-headers'), /x-edge-cache/);
    const p = await call(`${edge.url}/edge/game/start`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' },
    });
    assert.equal(p.status, 204);
    assert.equal(p.headers.get('access-control-allow-origin'), '*');
    assert.match(p.headers.get('access-control-allow-methods'), /POST/);
    for (const h of ['content-type', 'idempotency-key', 'x-request-id', 'traceparent', 'x-user-region']) {
      assert.match(p.headers.get('access-control-allow-headers'), new RegExp(h));
    }
    assert.equal(p.headers.get('access-control-max-age'), '86400');
    for (const h of ['x-edge-cache', 'x-edge-engine', 'x-edge-region', 'x-request-id', 'traceparent', 'idempotency-key', 'age']) {
      assert.match(p.headers.get('access-control-expose-headers'), new RegExp(h));
    }
    const e = await call(`${edge.url}/edge/nope`);
    assert.equal(e.headers.get('access-control-allow-origin'), '*');
    assert.match(e.headers.get('access-control-expose-headers'), /x-edge-region/);
    assert.equal(e.headers.get('access-control-allow-methods'), null, 'methods only on preflights');
  });

  test('x-request-id is echoed and the client trace continued, or both minted when absent or invalid', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await call(`${edge.url}/edge/time`, { headers: { 'x-request-id': 'basic-req-1', traceparent: tp } });
    assert.equal(r.headers.get('x-request-id'), 'basic-req-1');
    // The client's trace, continued with the edge's own span (the origin's parent).
    assert.match(r.headers.get('traceparent'), /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    assert.notEqual(r.headers.get('traceparent'), tp);
    const m = await call(`${edge.url}/edge/time`, { headers: { traceparent: 'garbage' } });
    assert.match(m.headers.get('x-request-id'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(m.headers.get('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  test('/ serves the frontend index.html; /edge/* always reaches the Worker', async () => {
    const page = await fetch(`${edge.url}/`);
    assert.equal(page.status, 200);
    assert.equal(await page.text(), INDEX_HTML);
    const t = await call(`${edge.url}/edge/time`);
    assert.equal(t.status, 200);
    assert.equal(typeof t.body.now, 'number');
  });

  test('unknown routes are JSON 404s, wrong methods 405 with Allow', async () => {
    for (const p of ['/edge/nope', '/edge/game', '/edge/game/a/b/c', '/no-such-file.js']) {
      const r = await call(`${edge.url}${p}`);
      assertError(assert, r, 404, 'not_found', undefined, p);
      assert.match(r.body.error.message, /no route/);
    }
    const r = await call(`${edge.url}/edge/game/start`);
    assertError(assert, r, 405, 'method_not_allowed', undefined, 'GET start');
    assert.equal(r.headers.get('allow'), 'POST');
  });

  test('bad bodies: malformed 400 bad_request, wrong shape or value 422 validation_failed naming the field', async () => {
    const GAME = '3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b';
    const cases = [
      ['/edge/game/start', '{', 400, 'bad_request', undefined],
      ['/edge/game/start', '', 400, 'bad_request', undefined],
      ['/edge/game/start', '{"userId":"u"} x', 400, 'bad_request', undefined],
      ['/edge/game/start', '[1]', 422, 'validation_failed', 'body'],
      ['/edge/game/start', '"u1"', 422, 'validation_failed', 'body'],
      ['/edge/game/start', '{"userId": 5}', 422, 'validation_failed', 'userId'],
      ['/edge/game/start', '{"userId": " u1 "}', 422, 'validation_failed', 'userId'],
      ['/edge/game/start', '{"preferredRegion": "eu"}', 422, 'validation_failed', 'body'],
      ['/edge/game/start', '{"userId": "u", "preferredRegion": "EU_1"}', 422, 'validation_failed', 'preferredRegion'],
      ['/edge/game/start', '{"userId": "u", "tickMs": 0}', 422, 'validation_failed', 'tickMs'],
      ['/edge/game/start', '{"userId": "u", "algorithm": "md5"}', 422, 'validation_failed', 'algorithm'],
      ['/edge/game/exit', '{"userId": "u"}', 422, 'validation_failed', 'body'],
      ['/edge/game/exit', '{"gameId": "../etc", "userId": "u"}', 422, 'validation_failed', 'gameId'],
      ['/edge/game/exit', `{"gameId": "${GAME}", "userId": "u", "backendRegion": "e u"}`, 422, 'validation_failed', 'backendRegion'],
      ['/edge/game/exit', 'not json', 400, 'bad_request', undefined],
    ];
    for (const [p, raw, status, code, field] of cases) {
      const r = await call(`${edge.url}${p}`, { method: 'POST', raw, headers: { 'content-type': 'application/json' } });
      assertError(assert, r, status, code, field, `${p} ${raw}`);
    }
    const bad = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: 'u1' },
      headers: { 'idempotency-key': 'x'.repeat(129) },
    });
    assertError(assert, bad, 422, 'validation_failed', 'Idempotency-Key', 'long key');
    for (const [p, field] of [
      [`/edge/game/${GAME}/state?at=soon`, 'at'],
      [`/edge/game/${GAME}/state?at=-5`, 'at'],
      [`/edge/game/${GAME}/state?at=253402300800000`, 'at'],
      ['/edge/game/abc/state?at=5', 'gameId'],
      ['/edge/game/a%20b', 'gameId'],
      ['/edge/game/sess_1', 'gameId'],
    ]) {
      assertError(assert, await call(`${edge.url}${p}`), 422, 'validation_failed', field, p);
    }
  });

  test('POST bodies must be declared application/json: else 415', async () => {
    for (const headers of [{}, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }]) {
      for (const p of ['/edge/game/start', '/edge/game/exit']) {
        const r = await call(`${edge.url}${p}`, { method: 'POST', raw: '{"userId":"u1"}', headers });
        assertError(assert, r, 415, 'unsupported_media_type', undefined, `${p} ${JSON.stringify(headers)}`);
      }
    }
    // Parameters and case do not matter; the body then reaches the (dead) origins.
    const ok = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      raw: '{"userId":"u1"}',
      headers: { 'content-type': 'Application/JSON; charset=utf-8' },
    });
    assert.equal(ok.status, 503, ok.text);
  });

  test('a body over 16 KiB is 413, with or without Content-Length', async () => {
    const big = JSON.stringify({ userId: 'u1', metadata: { pad: 'x'.repeat(17 * 1024) } });
    const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', raw: big, headers: { 'content-type': 'application/json' } });
    assertError(assert, r, 413, 'payload_too_large', undefined, 'declared');
    // Chunked upload: no Content-Length, so the edge has to count.
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const res = await fetch(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, 'payload_too_large');
    // Just under the limit is accepted as far as size goes (unknown fields are ignored), then
    // fails on the dead origins.
    const ok = JSON.stringify({ userId: 'u1', pad: 'x'.repeat(15 * 1024) });
    const r2 = await call(`${edge.url}/edge/game/start`, { method: 'POST', raw: ok, headers: { 'content-type': 'application/json' } });
    assert.equal(r2.status, 503, r2.text);
  });

  test('all origins down: 503 origins_unavailable naming each region, breakers open', async () => {
    const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: 'u-down' } });
    assertError(assert, r, 503, 'origins_unavailable', undefined, 'all down');
    assert.equal(r.headers.get('retry-after'), '1');
    // Both regions, in attempt order (the placeholder request.cf of wrangler dev may put us first).
    assert.match(r.body.error.message, /eu: unreachable/);
    assert.match(r.body.error.message, /us: unreachable/);
    assert.doesNotMatch(r.body.error.message, /127\.0\.0\.1/, 'no hosts in messages');
    // Threshold 3 (wrangler.toml): two more failing requests open both breakers.
    await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: 'u-down' } });
    await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: 'u-down' } });
    const regions = await call(`${edge.url}/edge/regions`);
    assert.deepEqual(regions.body.regions.map((x) => x.breaker), ['open', 'open']);
    const t0 = performance.now();
    const fast = await call(`${edge.url}/edge/game/3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b`, { headers: { 'x-user-region': 'eu' } });
    assert.ok(performance.now() - t0 < 500, 'an open circuit answers without waiting');
    assertError(assert, fast, 503, 'origins_unavailable', undefined, 'open circuits');
    assert.match(fast.body.error.message, /eu: circuit open; us: circuit open/);
  });
});

describe('edge with bad configuration', () => {
  let edge;
  before(async () => {
    edge = await startEdge({ vars: { DEFAULT_REGION: 'mars', CACHE_TTL_SECONDS: 'soon' } });
  });
  after(async () => edge?.stop());

  test('answers a JSON 500 internal naming the variable instead of crashing', async () => {
    for (const p of ['/edge/health', '/edge/regions', '/edge/game/abc']) {
      const r = await call(`${edge.url}${p}`);
      assertError(assert, r, 500, 'internal', undefined, p);
      assert.match(r.body.error.message, /DEFAULT_REGION/);
      assert.match(r.body.error.message, /"mars" is not a region/);
    }
    const s = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: 'u1' } });
    assertError(assert, s, 500, 'internal', undefined, 'start');
    // The clock does not depend on configuration.
    const t = await call(`${edge.url}/edge/time`);
    assert.equal(t.status, 200);
  });
});

describe('edge with a region name the contract refuses', () => {
  let edge;
  before(async () => {
    edge = await startEdge({
      vars: {
        REGION_ORIGINS: JSON.stringify({ eu_west: 'http://127.0.0.1:9' }),
        FAILOVER_ORDER: 'eu_west',
        DEFAULT_REGION: 'eu_west',
      },
    });
  });
  after(async () => edge?.stop());

  test('an underscore in a region name is a 500 naming REGION_ORIGINS', async () => {
    const r = await call(`${edge.url}/edge/health`);
    assertError(assert, r, 500, 'internal', undefined, 'health');
    assert.match(r.body.error.message, /REGION_ORIGINS/);
    assert.match(r.body.error.message, /"eu_west" is not a region name/);
  });
});
