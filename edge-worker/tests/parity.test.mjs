// One contract, two servers: every bad input of the table below is sent to an origin directly
// and through the edge (the real Worker in workerd) in front of it, and both must answer the
// status, `error.code` and `error.field` the `api` crate prescribes. The edge parses with the
// same crate as the origin, so a difference here is a bug in one of them, not a dialect.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { call, originVars, startEdge, startOrigins, uid } from './harness.mjs';

const MAX_BODY_BYTES = 16 * 1024;
const UNKNOWN_GAME = '00000000-0000-4000-8000-000000000000';
const JSON_HEADERS = { 'content-type': 'application/json' };

/** A POST with a raw body declared as JSON (or with `headers` replacing that declaration). */
const post = (path, raw, headers = JSON_HEADERS) => ({ method: 'POST', path, raw, headers });
const get = (path) => ({ method: 'GET', path, headers: {} });
const start = (body) => post('/game/start', typeof body === 'string' ? body : JSON.stringify(body));
const exit = (body) => post('/game/exit', typeof body === 'string' ? body : JSON.stringify(body));

/**
 * [name, request (origin path; the edge's is /edge + path), status, code, field]. `GAME` in a
 * path is replaced by a game that exists.
 */
const CASES = [
  // Bodies: not JSON is 400, JSON of the wrong shape is 422 naming the field.
  ['malformed JSON', start('{"userId": '), 400, 'bad_request', undefined],
  ['trailing garbage after JSON', start('{"userId": "alice"} x'), 400, 'bad_request', undefined],
  ['empty body', start(''), 400, 'bad_request', undefined],
  ['JSON array instead of an object', start('[1, 2]'), 422, 'validation_failed', 'body'],
  ['JSON string instead of an object', start('"alice"'), 422, 'validation_failed', 'body'],
  ['missing userId', start({}), 422, 'validation_failed', 'body'],
  ['userId of the wrong type', start({ userId: 7 }), 422, 'validation_failed', 'userId'],
  ['userId null', start({ userId: null }), 422, 'validation_failed', 'userId'],
  ['empty userId', start({ userId: '' }), 422, 'validation_failed', 'userId'],
  ['userId of 65 characters', start({ userId: 'x'.repeat(65) }), 422, 'validation_failed', 'userId'],
  ['userId of 10,000 characters', start({ userId: 'x'.repeat(10_000) }), 422, 'validation_failed', 'userId'],
  ['userId with a space', start({ userId: 'bob smith' }), 422, 'validation_failed', 'userId'],
  ['userId with a leading space (never trimmed)', start({ userId: ' alice' }), 422, 'validation_failed', 'userId'],
  ['userId with non-ASCII letters', start({ userId: 'zoë' }), 422, 'validation_failed', 'userId'],
  ['userId with markup', start({ userId: '<script>' }), 422, 'validation_failed', 'userId'],
  ['bad preferredRegion', start({ userId: 'alice', preferredRegion: 'EU_1' }), 422, 'validation_failed', 'preferredRegion'],
  ['preferredRegion of the wrong type', start({ userId: 'alice', preferredRegion: 1 }), 422, 'validation_failed', 'preferredRegion'],
  ['tickMs as a string', start({ userId: 'alice', tickMs: '100' }), 422, 'validation_failed', 'tickMs'],
  ['tickMs 0', start({ userId: 'alice', tickMs: 0 }), 422, 'validation_failed', 'tickMs'],
  ['tickMs fractional', start({ userId: 'alice', tickMs: 1.5 }), 422, 'validation_failed', 'tickMs'],
  ['breakEvery 1', start({ userId: 'alice', breakEvery: 1 }), 422, 'validation_failed', 'breakEvery'],
  ['unknown algorithm', start({ userId: 'alice', algorithm: 'md5' }), 422, 'validation_failed', 'algorithm'],
  ['metadata not an object', start({ userId: 'alice', metadata: [1] }), 422, 'validation_failed', 'metadata'],
  ['metadata over 4 KiB', start({ userId: 'alice', metadata: { k: 'x'.repeat(5_000) } }), 422, 'validation_failed', 'metadata'],
  // Size and media type.
  ['body over 16 KiB', start(`{"userId":"alice","pad":"${'x'.repeat(MAX_BODY_BYTES)}"}`), 413, 'payload_too_large', undefined],
  ['body without content-type', post('/game/start', Buffer.from('{"userId":"alice"}'), {}), 415, 'unsupported_media_type', undefined],
  ['body declared text/plain', post('/game/start', '{"userId":"alice"}', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', undefined],
  // Headers.
  [
    'Idempotency-Key of 129 characters',
    post('/game/start', '{"userId":"alice"}', { ...JSON_HEADERS, 'idempotency-key': 'k'.repeat(129) }),
    422,
    'validation_failed',
    'Idempotency-Key',
  ],
  // Game ids: in a path and in an exit body.
  ['malformed game id in the path', get('/game/not-a-game'), 422, 'validation_failed', 'gameId'],
  ['malformed game id in a state path', get('/game/not-a-game/state'), 422, 'validation_failed', 'gameId'],
  ['session-style game id in the path', get(`/game/sess_${UNKNOWN_GAME}`), 422, 'validation_failed', 'gameId'],
  ['malformed gameId in the exit body', exit({ gameId: 'nope', userId: 'alice' }), 422, 'validation_failed', 'gameId'],
  ['gameId of the wrong type in the exit body', exit({ gameId: 1, userId: 'alice' }), 422, 'validation_failed', 'gameId'],
  ['exit without userId', exit({ gameId: UNKNOWN_GAME }), 422, 'validation_failed', 'body'],
  ['exit with a bad backendRegion', exit({ gameId: UNKNOWN_GAME, userId: 'alice', backendRegion: 'EU_1' }), 422, 'validation_failed', 'backendRegion'],
  ['exit with malformed JSON', exit('{"gameId"'), 400, 'bad_request', undefined],
  // Unknown games.
  ['unknown game', get(`/game/${UNKNOWN_GAME}`), 404, 'not_found', undefined],
  ['state of an unknown game', get(`/game/${UNKNOWN_GAME}/state`), 404, 'not_found', undefined],
  // Exits need the owner token before anything is looked up, so an unknown game is
  // indistinguishable from a known one without it.
  ['exit of an unknown game without a token', exit({ gameId: UNKNOWN_GAME, userId: 'alice' }), 401, 'unauthorized', undefined],
  // `at` (on a game that exists, so `at` is the only fault).
  ['at not a number', get('/game/GAME/state?at=abc'), 422, 'validation_failed', 'at'],
  ['at empty', get('/game/GAME/state?at='), 422, 'validation_failed', 'at'],
  ['at negative', get('/game/GAME/state?at=-1'), 422, 'validation_failed', 'at'],
  ['at with a plus sign', get('/game/GAME/state?at=%2B5'), 422, 'validation_failed', 'at'],
  ['at fractional', get('/game/GAME/state?at=1.5'), 422, 'validation_failed', 'at'],
  ['at after year 9999', get('/game/GAME/state?at=253402300800000'), 422, 'validation_failed', 'at'],
  ['at beyond int64', get('/game/GAME/state?at=99999999999999999999999'), 422, 'validation_failed', 'at'],
  // Methods.
  ['GET on a POST route', get('/game/start'), 405, 'method_not_allowed', undefined],
];

describe('origin and edge answer bad input alike', () => {
  let origins;
  let edge;
  let game;

  before(async () => {
    origins = await startOrigins(['eu'], 'parity');
    edge = await startEdge({ vars: { ...originVars(origins), CACHE_TTL_SECONDS: '0' } });
    const r = await call(`${origins.eu.url}/game/start`, { method: 'POST', body: { userId: uid('parity') } });
    assert.ok(r.status === 201 || r.status === 200, `creating the test game: ${r.status} ${r.text}`);
    game = r.body.gameId;
  });

  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
  });

  /** {status, code, field, allow} of one request to `base` + `prefix` + its path. */
  async function answer(base, prefix, request) {
    const res = await fetch(`${base}${prefix}${request.path.replace('GAME', game)}`, {
      method: request.method,
      headers: request.headers,
      body: request.raw,
    });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return {
      status: res.status,
      code: body?.error?.code,
      field: body?.error?.field,
      allow: res.headers.get('allow') ?? undefined,
      text: text.slice(0, 300),
    };
  }

  for (const [name, request, status, code, field] of CASES) {
    test(`${name}: ${status} ${code}${field ? ` (${field})` : ''}`, async () => {
      const [origin, viaEdge] = [
        await answer(origins.eu.url, '', request),
        await answer(edge.url, '/edge', request),
      ];
      const expected = { status, code, field };
      const got = (a) => ({ status: a.status, code: a.code, field: a.field });
      assert.deepEqual(
        { origin: got(origin), edge: got(viaEdge) },
        { origin: expected, edge: expected },
        `origin answered ${origin.text}\nedge answered ${viaEdge.text}`,
      );
      if (status === 405) assert.equal(viaEdge.allow, origin.allow, 'the same Allow header');
    });
  }
});
