// Users are authenticated at the edge (USER_AUTH=guest and =jwt), through the real Worker
// (workerd) and real origins on Cassandra: a start as another user's id without that user's
// identity is refused (401 without a credential, 403 with someone else's), and the owner gets
// the owner token of their active game back on a "second device" (a start with the same
// identity and no stored token), which then exits it. JWTs are signed here with keys made for
// this run (RS256, ES256, EdDSA in a JWKS passed to the Worker; HS256 with a shared secret).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { call, originVars, startEdge, startOrigins, uid } from './harness.mjs';

const USER_TOKEN_SECRET = 'seedsync-edge-tests-user-token-secret-0123456789';
const JWT_SECRET = 'seedsync-edge-tests-jwt-hs256-secret-0123456789abc';
const ISSUER = 'https://id.seedsync.test/';
const AUDIENCE = 'seedsync-edge-tests';

let nextIp = 1;
/** A client address of its own per request, so the per-address budgets never interfere. */
const client = () => ({ 'cf-connecting-ip': `10.78.${Math.floor(nextIp / 250)}.${nextIp++ % 250}` });

const b64url = (data) => Buffer.from(data).toString('base64url');

/** A compact JWS of `claims` with `header`, signed by `sign(signingInput) -> Buffer`. */
function jws(header, claims, sign) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign(Buffer.from(input)))}`;
}

const now = () => Math.floor(Date.now() / 1000);
const claimsFor = (sub, extra = {}) => ({ sub, iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600, ...extra });

/** The signing keys of this run, and their public JWKS. */
function makeKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = crypto.generateKeyPairSync('ed25519');
  const jwk = (pair, kid, alg) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
  const signers = {
    RS256: { kid: 'rsa-1', sign: (m) => crypto.sign('sha256', m, rsa.privateKey) },
    ES256: { kid: 'ec-1', sign: (m) => crypto.sign('sha256', m, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }) },
    EdDSA: { kid: 'ed-1', sign: (m) => crypto.sign(null, m, ed.privateKey) },
  };
  const jwks = { keys: [jwk(rsa, 'rsa-1', 'RS256'), jwk(ec, 'ec-1', 'ES256'), jwk(ed, 'ed-1', 'EdDSA')] };
  const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
  return { signers, jwks, rsaPublicPem };
}

function jwt(signers, alg, claims, header = {}) {
  const { kid, sign } = signers[alg];
  return jws({ alg, typ: 'JWT', kid, ...header }, claims, sign);
}

const hs256 = (claims, secret = JWT_SECRET) =>
  jws({ alg: 'HS256', typ: 'JWT' }, claims, (m) => crypto.createHmac('sha256', secret).update(m).digest());

let origins;
before(async () => {
  origins = await startOrigins(['eu'], 'users');
});
after(async () => {
  for (const o of Object.values(origins ?? {})) await o.stop();
});

function starter(edge) {
  return (userId, authorization) =>
    call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId },
      headers: authorization === undefined ? client() : { ...client(), authorization },
    });
}

function exiter(edge) {
  return (game, ownerToken) =>
    call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: game.gameId, userId: game.userId },
      headers: { ...client(), authorization: `Bearer ${ownerToken}` },
      ownerAuth: false,
    });
}

/** The owner's second device: same identity, no stored token, gets the token and exits. */
async function secondDeviceGetsTheToken(start, exit, userId, authorization) {
  const first = await start(userId, authorization);
  assert.equal(first.status, 201, first.text);
  assert.match(first.body.ownerToken, /^st1\./);
  const second = await start(userId, authorization);
  assert.equal(second.status, 200, second.text);
  assert.equal(second.body.gameId, first.body.gameId);
  // Minted at the edge: the very token the origin issued at the creation.
  assert.equal(second.body.ownerToken, first.body.ownerToken);
  const exited = await exit(second.body, second.body.ownerToken);
  assert.equal(exited.status, 200, exited.text);
  assert.equal(exited.body.status, 'exited');
}

describe('USER_AUTH=guest', () => {
  let edge;
  let start;
  let exit;
  before(async () => {
    edge = await startEdge({
      vars: { ...originVars(origins, ['eu']), USER_AUTH: 'guest', USER_TOKEN_SECRET },
    });
    start = starter(edge);
    exit = exiter(edge);
  });
  after(async () => {
    await edge?.stop();
  });

  const guest = async () => {
    const r = await call(`${edge.url}/edge/auth/guest`, { method: 'POST', headers: client() });
    assert.equal(r.status, 201, r.text);
    assert.match(r.body.userId, /^guest-[0-9a-f]{32}$/);
    assert.match(r.body.userToken, /^gt1\./);
    assert.ok(r.body.expiresAt > Date.now());
    return r.body;
  };

  test('a start needs the identity of its userId', async () => {
    const alice = await guest();
    const mallory = await guest();
    assert.notEqual(alice.userId, mallory.userId);
    // No credential: 401 with a Bearer challenge.
    const anonymous = await start(alice.userId);
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal(anonymous.body.error.code, 'unauthorized');
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    // Someone else's identity: 403.
    const impostor = await start(alice.userId, `Bearer ${mallory.userToken}`);
    assert.equal(impostor.status, 403, impostor.text);
    assert.equal(impostor.body.error.code, 'forbidden');
    assert.equal(impostor.body.error.field, 'userId');
    // A forged or altered token: 401.
    const altered = alice.userToken.replace(alice.userId, mallory.userId);
    assert.equal((await start(mallory.userId, `Bearer ${altered}`)).status, 401);
    const foreign = `gt1.${now() + 600}.${alice.userId}.${b64url(crypto.createHmac('sha256', 'x'.repeat(40)).update('x').digest())}`;
    assert.equal((await start(alice.userId, `Bearer ${foreign}`)).status, 401);
    // Nothing of the above started a game for alice: her own start creates it.
    const own = await start(alice.userId, `Bearer ${alice.userToken}`);
    assert.equal(own.status, 201, own.text);
    assert.equal(own.body.userId, alice.userId);
    // An impostor's start after that still learns nothing (no game, no token).
    const late = await start(alice.userId, `Bearer ${mallory.userToken}`);
    assert.equal(late.status, 403, late.text);
    assert.equal(late.body.ownerToken, undefined);
  });

  test('the owner gets the owner token back on a second device', async () => {
    const me = await guest();
    await secondDeviceGetsTheToken(start, exit, me.userId, `Bearer ${me.userToken}`);
  });
});

describe('USER_AUTH=jwt with a JWKS', () => {
  let edge;
  let start;
  let exit;
  let keys;
  before(async () => {
    keys = makeKeys();
    edge = await startEdge({
      vars: {
        ...originVars(origins, ['eu']),
        USER_AUTH: 'jwt',
        USER_JWT_JWKS: JSON.stringify(keys.jwks),
        USER_JWT_ISSUER: ISSUER,
        USER_JWT_AUDIENCE: AUDIENCE,
        USER_JWT_LEEWAY_SECONDS: '5',
      },
    });
    start = starter(edge);
    exit = exiter(edge);
  });
  after(async () => {
    await edge?.stop();
  });

  test('RS256, ES256 and EdDSA tokens start games as their sub, and only as it', async () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA']) {
      const sub = uid(`jwt-${alg.toLowerCase()}`);
      const token = jwt(keys.signers, alg, claimsFor(sub));
      const other = await start(uid('victim'), `Bearer ${token}`);
      assert.equal(other.status, 403, `${alg}: ${other.text}`);
      const own = await start(sub, `Bearer ${token}`);
      assert.equal(own.status, 201, `${alg}: ${own.text}`);
      assert.equal(own.body.userId, sub);
    }
  });

  test('tokens that prove nobody are 401', async () => {
    const victim = uid('jwt-victim');
    const refused = {
      none: `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claimsFor(victim)))}.`,
      // Algorithm confusion: HS256 "signed" with the published RSA public key.
      confusion: jws({ alg: 'HS256', typ: 'JWT', kid: 'rsa-1' }, claimsFor(victim), (m) =>
        crypto.createHmac('sha256', keys.rsaPublicPem).update(m).digest(),
      ),
      expired: jwt(keys.signers, 'RS256', claimsFor(victim, { exp: now() - 60 })),
      future: jwt(keys.signers, 'ES256', claimsFor(victim, { nbf: now() + 600 })),
      audience: jwt(keys.signers, 'EdDSA', claimsFor(victim, { aud: 'another-app' })),
      issuer: jwt(keys.signers, 'RS256', claimsFor(victim, { iss: 'https://evil.test/' })),
      unknownKey: jwt(keys.signers, 'RS256', claimsFor(victim), { kid: 'rsa-9' }),
      otherKey: (() => {
        const stranger = makeKeys();
        return jwt(stranger.signers, 'RS256', claimsFor(victim));
      })(),
      hs256: hs256(claimsFor(victim)),
    };
    for (const [what, token] of Object.entries(refused)) {
      const r = await start(victim, `Bearer ${token}`);
      assert.equal(r.status, 401, `${what}: ${r.text}`);
      assert.equal(r.body.error.code, 'unauthorized', what);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/, what);
    }
    const none = await start(victim);
    assert.equal(none.status, 401, none.text);
    // No guest identities in jwt mode.
    const guest = await call(`${edge.url}/edge/auth/guest`, { method: 'POST', headers: client() });
    assert.equal(guest.status, 404, guest.text);
  });

  test('the owner gets the owner token back on a second device', async () => {
    const sub = uid('jwt-owner');
    await secondDeviceGetsTheToken(start, exit, sub, `Bearer ${jwt(keys.signers, 'ES256', claimsFor(sub))}`);
  });
});

describe('USER_AUTH=jwt with an HS256 secret', () => {
  let edge;
  let start;
  let exit;
  before(async () => {
    edge = await startEdge({
      vars: {
        ...originVars(origins, ['eu']),
        USER_AUTH: 'jwt',
        USER_JWT_SECRET: JWT_SECRET,
        USER_JWT_ISSUER: ISSUER,
        USER_JWT_AUDIENCE: AUDIENCE,
      },
    });
    start = starter(edge);
    exit = exiter(edge);
  });
  after(async () => {
    await edge?.stop();
  });

  test("a start as another user's id is refused; the owner's token comes back", async () => {
    const sub = uid('hs-owner');
    const victim = uid('hs-victim');
    assert.equal((await start(victim, `Bearer ${hs256(claimsFor(sub))}`)).status, 403);
    assert.equal((await start(victim, `Bearer ${hs256(claimsFor(victim), 'not-the-secret-not-the-secret-0123')}`)).status, 401);
    assert.equal((await start(victim)).status, 401);
    await secondDeviceGetsTheToken(start, exit, sub, `Bearer ${hs256(claimsFor(sub))}`);
  });
});
