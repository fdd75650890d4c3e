// Test harness for the edge Worker's integration tests and benchmark: starts real regional
// origins (target/debug/origin against Cassandra) and the real Worker under `wrangler dev`
// (workerd), each on a free 127.0.0.1 port with a bounded lifetime, and stops them by PID.
//
// Environment:
//   ORIGIN_BIN         origin binary (default $CARGO_TARGET_DIR/debug/origin, else <repo>/target/debug/origin)
//   CASSANDRA_HOSTS    default 127.0.0.1:9042 (started by the caller, e.g. scripts/cassandra.sh)
//   EDGE_TEST_LIFETIME seconds any server may live (default 900)

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LIFETIME_S = Number(process.env.EDGE_TEST_LIFETIME ?? 900);
const ORIGIN_BIN = process.env.ORIGIN_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', 'origin');
const CASSANDRA_HOSTS = process.env.CASSANDRA_HOSTS ?? '127.0.0.1:9042';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A keyspace name unique to this run (Cassandra: letters, digits, _; at most 48 chars). */
export function uniqueKeyspace(tag) {
  const rnd = Math.random().toString(36).slice(2, 8);
  return `edge_${tag}_${process.pid}_${rnd}`.slice(0, 48);
}

function tmpDir(tag) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `seedsync-edge-${tag}-`));
}

/**
 * Spawns `cmd` in its own process group under `timeout` (so it dies on its own even if the
 * test process is killed), logging to a file. Returns a handle whose stop() signals the group.
 */
function spawnBounded(name, cmd, args, { env, cwd } = {}) {
  const logPath = path.join(tmpDir(name), 'output.log');
  const log = fs.openSync(logPath, 'a');
  const child = spawn('timeout', ['--kill-after=5', String(LIFETIME_S), cmd, ...args], {
    cwd: cwd ?? ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const exited = once(child, 'exit');
  let stopped = false;
  return {
    name,
    pid: child.pid,
    logPath,
    get exitCode() {
      return child.exitCode;
    },
    log() {
      return fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '';
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      const timer = sleep(10_000).then(() => 'timeout');
      if ((await Promise.race([exited, timer])) === 'timeout') {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        await exited;
      }
    },
  };
}

async function waitFor(url, { timeoutMs, proc, okStatus = 200 }) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) {
      throw new Error(`${proc.name} exited (${proc.exitCode}) before ${url} was ready:\n${proc.log().slice(-3000)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === okStatus) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await sleep(250);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})${proc ? `:\n${proc.log().slice(-3000)}` : ''}`);
}

/** Starts one origin of `region`; resolves once GET /ready is 200. */
/** The owner-token secret every test origin shares (as a deployment's regions do). */
export const TEST_SECRET = 'seedsync-edge-tests-owner-token-secret-0123456789';

/**
 * Starts one origin of `region`; resolves once GET /ready is 200. It trusts the edge on
 * 127.0.0.1 for the client address, shares TEST_SECRET, and has no per-client budgets unless
 * `env` sets some (all test clients are 127.0.0.1 to it otherwise).
 */
export async function startOrigin({ region, keyspace, port, env = {} }) {
  if (!fs.existsSync(ORIGIN_BIN)) {
    throw new Error(`origin binary ${ORIGIN_BIN} is missing: run \`cargo build -p origin\` first`);
  }
  port ??= await freePort();
  const proc = spawnBounded(`origin-${region}`, ORIGIN_BIN, [], {
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      REGION: region,
      TRUSTED_PROXIES: '127.0.0.1,::1',
      RATE_LIMIT_START: 'off',
      RATE_LIMIT_READ: 'off',
      // Every test client is 127.0.0.1: the load tests keep more than 32 requests in flight.
      MAX_IN_FLIGHT_PER_CLIENT: 'off',
      ...storageEnv(keyspace, env),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${url}/ready`, { timeoutMs: 90_000, proc });
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { region, port, url, keyspace, proc, stop: () => proc.stop() };
}

/** What every test origin process (serving or migrating) shares, then `env` on top. */
function storageEnv(keyspace, env) {
  return {
    CASSANDRA_HOSTS,
    CASSANDRA_KEYSPACE: keyspace,
    CASSANDRA_REPLICATION: 'SimpleStrategy:1',
    OWNER_TOKEN_SECRET: TEST_SECRET,
    ...env,
  };
}

/** Runs `origin migrate` on `keyspace` with the origins' `env` (throws with its output on failure). */
export function migrateKeyspace(keyspace, env = {}) {
  const run = spawnSync(ORIGIN_BIN, ['migrate'], {
    env: storageEnv(keyspace, env),
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (run.status !== 0) {
    throw new Error(`origin migrate (${keyspace}) exited ${run.status}:\n${run.stdout}${run.stderr}`);
  }
}

/** Starts origins for every region in `regions`, sharing one keyspace (as regions share data). */
export async function startOrigins(regions, tag, env = {}) {
  const keyspace = uniqueKeyspace(tag);
  const origins = {};
  // Production origins only check the schema version: migrate first, as a deploy's one-off
  // `origin migrate` job does.
  if (env.SEEDSYNC_ENV === 'production') migrateKeyspace(keyspace, env);
  // The first origin creates the keyspace and tables; the others then only connect.
  for (const region of regions) {
    origins[region] = await startOrigin({ region, keyspace, env });
  }
  return origins;
}

/** Builds the Worker (a no-op when edge-worker/build is current). */
export function buildWorker() {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'build-worker.sh')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (r.status !== 0) {
    throw new Error(`scripts/build-worker.sh failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Config vars pointing the edge at `origins` ({region: {url}}), in `order`. */
export function originVars(origins, order = Object.keys(origins)) {
  const map = {};
  for (const [region, o] of Object.entries(origins)) map[region] = o.url;
  return {
    REGION_ORIGINS: JSON.stringify(map),
    FAILOVER_ORDER: order.join(','),
    DEFAULT_REGION: order[0],
    // The rule-based order these tests were written for; the live policies (latency, load)
    // have their own tests (edge-regions.test.mjs), which set ROUTING_POLICY themselves.
    ROUTING_POLICY: 'preference,header,geo,default',
  };
}

/**
 * Starts the Worker under `wrangler dev --local` with `vars` overriding wrangler.toml's [vars]
 * (`--var NAME:VALUE`; `secrets` and any secret-named var go in a mode-600 env file instead), its
 * own state dir and inspector port, wrangler logging at `logLevel` (`log` to read the Worker's
 * request lines). Resolves once /edge/time is 200.
 */
export async function startEdge({ vars = {}, secrets = {}, assetsDir, logLevel = 'warn' } = {}) {
  buildWorker();
  const port = await freePort();
  const inspector = await freePort();
  const state = tmpDir('wrangler-state');
  const args = [
    path.join(ROOT, 'edge-worker', 'scripts', 'wrangler.sh'),
    'dev',
    '--local',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspector),
    '--persist-to',
    state,
    '--show-interactive-dev-session=false',
    '--log-level',
    // `log` shows the Worker's console.log lines (its JSON request log); `warn` only problems.
    logLevel,
  ];
  if (assetsDir) args.push('--assets', assetsDir);
  // Every test client is 127.0.0.1: budgets are generous unless a test sets its own.
  const limits = {
    START_RATE_LIMIT_PER_IP: '100000/60',
    START_RATE_LIMIT_PER_USER: '100000/60',
    READ_RATE_LIMIT_PER_IP: '100000/60',
  };
  // The edge verifies owner tokens itself in live rooms (a `hello` as player), with the secret
  // every test origin holds.
  // USER_AUTH=off unless a test asks for users to be authenticated (edge-users.test.mjs): the
  // other tests start games as whatever userId they name, as /v1-era clients did.
  vars = { ...limits, USER_AUTH: 'off', OWNER_TOKEN_SECRET: TEST_SECRET, ...vars, ...secrets };
  // Secrets go to wrangler the way it expects them, in a mode-600 env file, never on its
  // command line (where `ps` shows them); everything else stays a `--var`.
  const secretVars = Object.entries(vars).filter(([k]) => isSecret(k));
  if (secretVars.length) {
    const envFile = path.join(tmpDir('wrangler-secrets'), '.dev.vars');
    const lines = secretVars.map(([k, v]) => {
      if (/[\n'\\]/.test(v)) throw new Error(`secret ${k}: no newline, quote or backslash`);
      return `${k}='${v}'\n`;
    });
    fs.writeFileSync(envFile, lines.join(''), { mode: 0o600 });
    args.push('--env-file', envFile);
  }
  for (const [k, v] of Object.entries(vars)) if (!isSecret(k)) args.push('--var', `${k}:${v}`);
  const proc = spawnBounded('wrangler', 'bash', args);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${url}/edge/time`, { timeoutMs: 120_000, proc });
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { port, url, proc, stop: () => proc.stop() };
}

/** Whether Worker variable `name` holds a secret (never passed on a command line). */
export function isSecret(name) {
  return /SECRET|PASSWORD|ADMIN_TOKEN/.test(name);
}

/** Prometheus text -> value of the first sample of `name` whose labels include `labels`. */
export function metricValue(text, name, labels = {}) {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      total += Number(m[3]);
      found = true;
    }
  }
  return found ? total : 0;
}

/** Sum of a metric across origins. */
export async function originMetric(origins, name, labels = {}) {
  let sum = 0;
  for (const o of Object.values(origins)) {
    if (o.proc.exitCode !== null) continue;
    const res = await fetch(`${o.url}/metrics`);
    sum += metricValue(await res.text(), name, labels);
  }
  return sum;
}

export const GAME_READS = { method: 'GET', route: '/game/{id}', status: '200' };

/**
 * An owner token as the test origins issue them: an independent transcription of the format
 * in owner-token/src/lib.rs (`st1.<kid>.<payload>.<mac>`, HMAC-SHA256), so the origin
 * accepting these also cross-checks the Rust implementation.
 */
export function ownerToken(gameId, userId, { secret = TEST_SECRET, issuedAt = Date.now(), ttlMs = 7 * 86_400_000 } = {}) {
  const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
  const kid = hmac(secret, 'seedsync owner-token v1 kid').subarray(0, 6).toString('base64url');
  const macKey = hmac(secret, 'seedsync owner-token v1 mac');
  const payload = Buffer.from(JSON.stringify({ gid: gameId, uid: userId, iat: issuedAt, exp: issuedAt + ttlMs })).toString('base64url');
  const signingInput = `st1.${kid}.${payload}`;
  return `${signingInput}.${hmac(macKey, signingInput).toString('base64url')}`;
}

/**
 * JSON request helper: returns {status, headers, body (parsed JSON or text), ms}. An exit
 * without an `authorization` header carries its player's owner token (tests about other
 * things exit as the owner); `ownerAuth: false` sends exactly the given headers.
 */
export async function call(url, { method = 'GET', body, headers = {}, raw, ownerAuth = true } = {}) {
  const init = { method, headers: { ...headers } };
  if (ownerAuth && url.endsWith('/edge/game/exit') && body && !('authorization' in init.headers)) {
    init.headers.authorization = `Bearer ${ownerToken(body.gameId, body.userId)}`;
  }
  if (raw !== undefined) init.body = raw;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const t0 = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  const ms = performance.now() - t0;
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: leave the text for the assertion message */
  }
  return { status: res.status, headers: res.headers, body: parsed, text, ms };
}

/**
 * The MF-CF-Blob header that makes miniflare set request.cf for one request. The blob replaces
 * the whole cf object, so it carries what geo routing reads (country for COUNTRY_REGIONS
 * overrides, continent for the continent map) and clientAcceptEncoding: '' (without it the
 * answer comes back brotli-encoded).
 */
export function cfLocation(country, continent) {
  const cf = { clientAcceptEncoding: '' };
  if (country !== undefined) cf.country = country;
  if (continent !== undefined) cf.continent = continent;
  return { 'mf-cf-blob': JSON.stringify(cf) };
}

/** Asserts a contract error body: `{"error": {"code", "message", "field"?}}` with its status. */
export function assertError(assert, r, status, code, field, what = '') {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.body?.error?.code, code, `${what}: ${r.text}`);
  assert.equal(typeof r.body.error.message, 'string', what);
  assert.equal(r.body.error.field, field, `${what}: field`);
  assert.deepEqual(Object.keys(r.body), ['error'], what);
}

export function uid(tag) {
  return `${tag}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * A WebSocket on a game's live room (`/edge/game/{id}/live`) that queues what it receives,
 * each message stamped with `receivedAt` (Date.now()); `next(type)` waits for the next message
 * of a type. Node's global WebSocket (Node >= 22), else the `ws` package wrangler brings.
 */
export async function openRoom(base, gameId) {
  const WS = globalThis.WebSocket ?? (await import('ws')).default;
  const ws = new WS(`${base.replace(/^http/, 'ws')}/edge/game/${gameId}/live`);
  const inbox = [];
  let bytes = 0;
  ws.addEventListener('message', (ev) => {
    const text = typeof ev.data === 'string' ? ev.data : ev.data.toString();
    bytes += Buffer.byteLength(text);
    const msg = JSON.parse(text);
    msg.receivedAt = Date.now();
    // Its size on the wire, not enumerable (a message's own fields stay as sent).
    Object.defineProperty(msg, 'wireBytes', { value: Buffer.byteLength(text) });
    inbox.push(msg);
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true });
    ws.addEventListener('error', (e) => reject(new Error(`socket error: ${e.message ?? e}`)), { once: true });
  });
  const closed = new Promise((r) => ws.addEventListener('close', r, { once: true }));
  return {
    ws,
    inbox,
    get bytes() {
      return bytes;
    },
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)),
    async next(type, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type && !m.taken);
        if (i >= 0) {
          inbox[i].taken = true;
          return inbox[i];
        }
        if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms; got ${JSON.stringify(inbox)}`);
        await sleep(20);
      }
    },
    close() {
      ws.close();
      return closed;
    },
  };
}
