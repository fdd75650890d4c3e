// Routing rules through the real Worker (wrangler dev) to three real origins (eu, us, asia) on
// Cassandra: preference, header, geo (miniflare's per-request cf), default; idempotency; and the
// correlation headers reaching the origin.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError, call, cfLocation, originMetric, originVars, startEdge, startOrigins, uid } from './harness.mjs';

describe('routing to regional origins', () => {
  let origins;
  let edge;
  before(async () => {
    origins = await startOrigins(['eu', 'us', 'asia'], 'routing');
    // NZ is overridden per country; the rest of Oceania goes by the continent default (asia).
    edge = await startEdge({ vars: { ...originVars(origins, ['eu', 'us', 'asia']), COUNTRY_REGIONS: '{"NZ":"us"}' }, logLevel: 'log' });
  });
  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  async function start(body, headers = {}) {
    const r = await call(`${edge.url}/edge/game/start`, { method: 'POST', body, headers });
    assert.ok(r.status === 201 || r.status === 200, `start: ${r.status} ${r.text}`);
    return r;
  }

  const cases = [
    // [name, preferredRegion, x-user-region, cf country, cf continent, expected region, routedBy]
    ['preference wins over header and geo', 'asia', 'us', 'DE', 'EU', 'asia', 'preference'],
    ['unknown preference falls to the header', 'mars', 'us', 'DE', 'EU', 'us', 'header'],
    ['header wins over geo', undefined, 'asia', 'US', 'NA', 'asia', 'header'],
    ['geo: continent AS -> asia', undefined, undefined, 'JP', 'AS', 'asia', 'geo'],
    ['geo: continent SA -> us', undefined, undefined, 'BR', 'SA', 'us', 'geo'],
    ['geo: continent EU -> eu (unknown header ignored)', undefined, 'mars', 'FR', 'EU', 'eu', 'geo'],
    ['geo: continent OC -> asia', undefined, undefined, 'AU', 'OC', 'asia', 'geo'],
    ['geo: COUNTRY_REGIONS override NZ -> us', undefined, undefined, 'NZ', 'OC', 'us', 'geo'],
    ['no usable hint -> default region', undefined, undefined, 'XX', undefined, 'eu', 'default'],
  ];
  for (const [name, preferred, header, country, continent, region, routedBy] of cases) {
    test(name, async () => {
      const userId = uid('route');
      const headers = { ...cfLocation(country, continent) };
      if (header) headers['x-user-region'] = header;
      const body = { userId };
      if (preferred) body.preferredRegion = preferred;
      const r = await start(body, headers);
      assert.equal(r.status, 201);
      assert.equal(r.body.backendRegion, region);
      assert.equal(r.body.routedBy, routedBy);
      assert.equal(r.body.region, region, 'the game was created by that region\'s origin');
      assert.equal(r.body.userId, userId);
      assert.equal(r.headers.get('x-edge-region'), region);
      for (const k of ['gameId', 'seed', 'startAt', 'tickMs']) assert.ok(r.body[k] !== undefined, `missing ${k}`);
      assert.equal(r.body.status, 'active');
      assert.equal(r.body.preferredRegion, undefined, 'not part of the game view');
    });
  }

  test('the same Idempotency-Key returns the same game, from any region', async () => {
    const userId = uid('idem');
    const key = uid('key');
    const startedBefore = await originMetric(origins, 'seedsync_sessions_started_total');
    const a = await start({ userId, preferredRegion: 'us' }, { 'idempotency-key': key });
    assert.equal(a.status, 201);
    assert.equal(a.headers.get('idempotency-key'), key);
    const b = await start({ userId, preferredRegion: 'asia' }, { 'idempotency-key': key });
    assert.equal(b.status, 200);
    assert.equal(b.body.gameId, a.body.gameId);
    assert.equal(b.body.backendRegion, 'us', 'backendRegion is where the game lives');
    assert.equal(b.headers.get('x-edge-region'), 'asia', 'served by the preferred origin');
    assert.equal(await originMetric(origins, 'seedsync_sessions_started_total'), startedBefore + 1);
  });

  test('without a client key the edge mints one and returns it', async () => {
    const r = await start({ userId: uid('mint') }, cfLocation('DE', 'EU'));
    assert.match(r.headers.get('idempotency-key'), /^[0-9a-f-]{36}$/);
  });

  test('x-request-id and traceparent reach the origin and come back', async () => {
    const requestId = uid('rid');
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const tp = `00-${traceId}-00f067aa0ba902b7-01`;
    const r = await start({ userId: uid('trace'), preferredRegion: 'us' }, { 'x-request-id': requestId, traceparent: tp });
    assert.equal(r.headers.get('x-request-id'), requestId);
    // The edge answers with its own hop of our trace; the origin's span is that hop's child.
    const [, echoedTrace, edgeSpan] = r.headers.get('traceparent').split('-');
    assert.equal(echoedTrace, traceId);
    assert.notEqual(edgeSpan, '00f067aa0ba902b7');
    // The edge logged one JSON line for it: ids, route template, region, status, duration.
    const edgeLine = edge.proc
      .log()
      .split('\n')
      .filter((l) => l.includes(requestId) && l.includes('"route"'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'))))[0];
    assert.ok(edgeLine, `request id ${requestId} not in the edge's log`);
    assert.equal(edgeLine.trace_id, traceId);
    assert.equal(edgeLine.span_id, edgeSpan);
    assert.equal(edgeLine.route, '/edge/game/start');
    assert.equal(edgeLine.region, 'us');
    assert.equal(edgeLine.status, r.status);
    assert.equal(typeof edgeLine.duration_ms, 'number');
    // The us origin logged the request under our id and trace.
    const line = origins.us.proc
      .log()
      .split('\n')
      .find((l) => l.includes(requestId));
    assert.ok(line, `request id ${requestId} not in the us origin's log`);
    const entry = JSON.parse(line);
    assert.equal(entry.span.request_id, requestId);
    assert.equal(entry.span.trace_id, traceId);
    assert.equal(entry.span.route, '/game/start');
  });

  test('origin 4xx answers pass through as JSON', async () => {
    // Same key, different user: the origin refuses (the key belongs to someone else).
    const key = uid('key');
    await start({ userId: uid('owner') }, { 'idempotency-key': key });
    const r = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: uid('thief') },
      headers: { 'idempotency-key': key },
    });
    assertError(assert, r, 409, 'conflict', undefined, 'key of another user');
    // A 4xx is an answer, not an origin failure: no failover, breaker stays closed.
    const regions = await call(`${edge.url}/edge/regions`);
    assert.ok(regions.body.regions.every((x) => x.breaker === 'closed'));
  });

  test('a bad body gets the same answer from the edge as from the origin', async () => {
    const bodies = [
      '{',
      '[1]',
      '{"userId": 5}',
      '{"userId": " padded "}',
      '{"userId": "u", "tickMs": 0}',
      '{"userId": "u", "preferredRegion": "EU_1"}',
      '{"userId": "u", "metadata": [1]}',
    ];
    for (const raw of bodies) {
      const init = { method: 'POST', raw, headers: { 'content-type': 'application/json' } };
      const viaEdge = await call(`${edge.url}/edge/game/start`, init);
      const direct = await call(`${origins.eu.url}/game/start`, init);
      // Same status, code and field (messages are for people and may be worded apart).
      const shape = (r) => [r.status, r.body?.error?.code, r.body?.error?.field];
      assert.deepEqual(shape(viaEdge), shape(direct), `${raw}: edge ${viaEdge.text} origin ${direct.text}`);
    }
    const noType = await call(`${edge.url}/edge/game/start`, { method: 'POST', raw: '{"userId":"u"}' });
    const noTypeDirect = await call(`${origins.eu.url}/game/start`, { method: 'POST', raw: '{"userId":"u"}' });
    assert.equal(noType.status, 415);
    assert.equal(noTypeDirect.status, 415);
    assert.equal(noType.body.error.code, noTypeDirect.body.error.code);
  });
});
