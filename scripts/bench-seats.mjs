// Shared games benchmark (issue 22), on the real stack: one origin on Cassandra behind the real
// Worker under wrangler dev, plus a second origin on the same keyspace that tells the edge of
// every committed exit (EDGE_NOTIFY_URL, as a region's origin configured with the edge's URL
// does; edge-worker/tests/edge-seats-live.test.mjs does the same). Everything on this machine,
// one clock.
//
// 1. Joins through the edge (`POST /edge/game/{id}/join`), all at once:
//    - into one game: a game of maxPlayers 100 (99 seats free), --one-joiners (110) concurrent
//      joiners; exactly 99 seated, the rest refused 409 `game_full` (counted apart), 0 errors;
//    - into many games: --games (50) games of maxPlayers 3, 2 joiners each, all joins at once;
//      every join seated, 0 errors.
//    Prints joins/s (seated joins over the batch's wall time) and per-join latency p50/p99.
// 2. Seat result push: --viewers (100) viewer sockets in the one game's room (`/live`); --exits
//    (10) of its players exit one after another at the notifying origin; for each exit, the
//    time from the exit's response (and from its committed `exitedAt`) to each socket's
//    `{"type":"seat"}` message, p50/p99 over every (exit, socket). Every socket must get every
//    seat's result, equal to the exit's.
//
//   node scripts/bench-seats.mjs [--one-joiners 110] [--games 50] [--viewers 100] [--exits 10]

import { call, openRoom, originVars, sleep, startEdge, startOrigin, startOrigins, uid } from '../edge-worker/tests/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const ONE_JOINERS = Number(arg('one-joiners', 110));
const GAMES = Number(arg('games', 50));
const VIEWERS = Number(arg('viewers', 100));
const EXITS = Number(arg('exits', 10));
const MAX_PLAYERS = 100;
const NOTIFY_SECRET = 'edge-notify-secret-of-the-seats-bench-0123456789';
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const ms = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : x);

async function startShared(edge, maxPlayers) {
  const r = await call(`${edge.url}/edge/game/start`, {
    method: 'POST',
    body: { userId: uid('seats-host'), preferredRegion: 'eu', maxPlayers, joinDeadline: Date.now() + 10 * 60_000 },
  });
  if (r.status !== 201) throw new Error(`start: ${r.status} ${r.text}`);
  return r.body;
}

/** All `joins` ([gameId, userId]) at once; the seated, the full-game refusals, the errors. */
async function joinAll(edge, joins) {
  const t0 = performance.now();
  const answers = await Promise.all(
    joins.map(async ([gameId, userId]) => {
      try {
        const r = await call(`${edge.url}/edge/game/${gameId}/join`, { method: 'POST', body: { userId } });
        return { gameId, userId, ...r };
      } catch (e) {
        return { gameId, userId, status: 0, text: String(e), ms: NaN };
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const seated = answers.filter((a) => a.status === 201);
  const full = answers.filter((a) => a.status === 409 && a.body?.error?.code === 'game_full');
  const errors = answers.filter((a) => !seated.includes(a) && !full.includes(a));
  return { answers, seated, full, errors, wallMs };
}

function joinFigures(name, r) {
  const lat = r.seated.map((a) => a.ms);
  const refusedLat = r.full.map((a) => a.ms);
  return {
    name,
    joins: r.answers.length,
    seated: r.seated.length,
    fullRefusals: r.full.length,
    errors: r.errors.length,
    wallMs: Math.round(r.wallMs),
    joinsPerSecond: +((r.seated.length / r.wallMs) * 1000).toFixed(1),
    joinMs: { p50: ms(pct(lat, 50)), p99: ms(pct(lat, 99)), max: ms(pct(lat, 100)) },
    refusalMs: refusedLat.length ? { p50: ms(pct(refusedLat, 50)), p99: ms(pct(refusedLat, 99)) } : undefined,
  };
}

/** The origin's per-statement Cassandra figures ({statement: {count, sum}}, seconds) and its
 * HTTP request time ({count, sum}) from its /metrics. */
async function originFigures(origin) {
  const text = await (await fetch(`${origin.url}/metrics`)).text();
  const statements = {};
  const http = { count: 0, sum: 0 };
  for (const line of text.split('\n')) {
    let m = line.match(/^seedsync_cassandra_statement_duration_seconds_(count|sum)\{.*statement="([^"]+)".*\} (\S+)$/);
    if (m) {
      statements[m[2]] ??= { count: 0, sum: 0 };
      statements[m[2]][m[1]] += Number(m[3]);
      continue;
    }
    m = line.match(/^seedsync_http_request_duration_seconds_(count|sum)\{(.*)\} (\S+)$/);
    if (m && m[2].includes('route="/game/{id}/join"')) http[m[1]] += Number(m[3]);
  }
  return { statements, http };
}

/** Where a join's time went: per join, each statement's count and mean latency, and the
 * origin's own request time (from the difference of two /metrics readings). */
function profile(before, after, joins) {
  const rows = [];
  for (const [name, a] of Object.entries(after.statements)) {
    const b = before.statements[name] ?? { count: 0, sum: 0 };
    const count = a.count - b.count;
    if (count <= 0) continue;
    rows.push({
      statement: name,
      perJoin: +(count / joins).toFixed(2),
      meanMs: +(((a.sum - b.sum) / count) * 1000).toFixed(1),
      msPerJoin: +((((a.sum - b.sum) / joins) * 1000).toFixed(1)),
    });
  }
  rows.sort((x, y) => y.msPerJoin - x.msPerJoin);
  const requests = after.http.count - before.http.count;
  const originMs = requests > 0 ? +(((after.http.sum - before.http.sum) / requests) * 1000).toFixed(1) : NaN;
  return { rows, originMs };
}

function printProfile(label, p) {
  console.log(`\n${label}: origin time per join request ${p.originMs} ms (mean); Cassandra statements per join:`);
  console.log('statement                     | per join | mean ms | ms per join');
  for (const r of p.rows) {
    console.log(`${r.statement.padEnd(29)} | ${String(r.perJoin).padStart(8)} | ${String(r.meanMs).padStart(7)} | ${r.msPerJoin}`);
  }
}

const origins = await startOrigins(['eu'], 'seatsbench');
let edge;
let notifier;
const failures = [];
let one;
let many;
let oneProfile;
let manyProfile;
const fromResponse = [];
const fromCommit = [];
try {
  edge = await startEdge({
    vars: {
      ...originVars(origins),
      EDGE_NOTIFY_SECRET: NOTIFY_SECRET,
      LIVE_MAX_SOCKETS_PER_ADDRESS: '100000',
      LIVE_MAX_SOCKETS_PER_ROOM: '100000',
    },
  });
  notifier = await startOrigin({
    region: 'eu',
    keyspace: origins.eu.keyspace,
    env: { EDGE_NOTIFY_URL: edge.url, EDGE_NOTIFY_SECRET: NOTIFY_SECRET },
  });

  // 1a. One game, maxPlayers 100, every joiner at once.
  const game = await startShared(edge, MAX_PLAYERS);
  const beforeOne = await originFigures(origins.eu);
  const oneRun = await joinAll(
    edge,
    Array.from({ length: ONE_JOINERS }, () => [game.gameId, uid('seats-one')]),
  );
  one = joinFigures('one game', oneRun);
  oneProfile = profile(beforeOne, await originFigures(origins.eu), oneRun.answers.length);
  const seats = new Set(oneRun.seated.map((a) => a.body.seat));
  if (seats.size !== oneRun.seated.length) failures.push(`one game: ${oneRun.seated.length} seated on ${seats.size} seats`);
  const expectSeated = Math.min(ONE_JOINERS, MAX_PLAYERS - 1);
  if (oneRun.seated.length !== expectSeated) failures.push(`one game: ${oneRun.seated.length} seated, expected ${expectSeated}`);
  if (oneRun.full.length !== ONE_JOINERS - expectSeated) failures.push(`one game: ${oneRun.full.length} game_full refusals`);
  for (const e of oneRun.errors.slice(0, 3)) failures.push(`one game join: ${e.status} ${e.text}`);
  console.error(`one game: ${JSON.stringify(one)}`);

  // 1b. Many games, 2 joiners each, every join at once.
  const games = [];
  for (let i = 0; i < GAMES; i++) games.push(await startShared(edge, 3));
  const beforeMany = await originFigures(origins.eu);
  const manyRun = await joinAll(
    edge,
    games.flatMap((g) => [
      [g.gameId, uid('seats-many')],
      [g.gameId, uid('seats-many')],
    ]),
  );
  many = joinFigures('many games', manyRun);
  manyProfile = profile(beforeMany, await originFigures(origins.eu), manyRun.answers.length);
  if (manyRun.seated.length !== 2 * GAMES) failures.push(`many games: ${manyRun.seated.length} of ${2 * GAMES} seated`);
  for (const e of manyRun.errors.slice(0, 3)) failures.push(`many games join: ${e.status} ${e.text}`);
  console.error(`many games: ${JSON.stringify(many)}`);

  // 2. Seat results pushed to VIEWERS sockets of the one game's room.
  const socks = [];
  for (let i = 0; i < VIEWERS; i++) {
    const s = await openRoom(edge.url, game.gameId);
    s.send({ type: 'hello', role: 'viewer' });
    socks.push(s);
  }
  await Promise.all(socks.map((s) => s.next('welcome', 30_000)));
  await sleep(Math.max(0, game.startAt + 200 - Date.now()));
  const players = oneRun.seated.slice(0, EXITS);
  for (const p of players) {
    const r = await call(`${notifier.url}/game/exit`, {
      method: 'POST',
      body: { gameId: game.gameId, userId: p.userId },
      headers: { authorization: `Bearer ${p.body.ownerToken}` },
    });
    const answeredAt = Date.now();
    if (r.status !== 200) {
      failures.push(`exit: ${r.status} ${r.text}`);
      continue;
    }
    const { exitedAt } = r.body.result;
    for (const [n, s] of socks.entries()) {
      let m;
      try {
        m = await s.next('seat', 10_000);
      } catch {
        failures.push(`socket ${n}: no seat message for seat ${p.body.seat}`);
        continue;
      }
      if (m.seat !== p.body.seat || m.userId !== p.userId || JSON.stringify(m.result) !== JSON.stringify(r.body.result)) {
        failures.push(`socket ${n}: seat message ${JSON.stringify(m)} is not the exit's ${r.text}`);
      }
      fromResponse.push(m.receivedAt - answeredAt);
      fromCommit.push(m.receivedAt - exitedAt);
    }
    await sleep(100);
  }
  for (const s of socks) s.ws.close();
} finally {
  await edge?.stop();
  await notifier?.stop();
  for (const o of Object.values(origins)) await o.stop();
}

const push = {
  viewers: VIEWERS,
  exits: EXITS,
  pushes: fromCommit.length,
  fromExitResponseMs: { p50: pct(fromResponse, 50), p99: pct(fromResponse, 99), min: pct(fromResponse, 0), max: pct(fromResponse, 100) },
  fromExitedAtMs: { p50: pct(fromCommit, 50), p99: pct(fromCommit, 99), max: pct(fromCommit, 100) },
};
console.error(JSON.stringify({ one, many, push }));
console.log(`\nshared games: joins through the edge (all at once), one origin on Cassandra, real Worker`);
console.log('case                          | joins | seated | game_full | errors | joins/s | join p50 ms | p99 ms');
for (const [label, f] of [
  [`one game, maxPlayers ${MAX_PLAYERS}`, one],
  [`${GAMES} games x 2 joiners`, many],
]) {
  console.log(
    `${label.padEnd(29)} | ${String(f.joins).padStart(5)} | ${String(f.seated).padStart(6)} | ${String(f.fullRefusals).padStart(9)} | ${String(f.errors).padStart(6)} | ${String(f.joinsPerSecond).padStart(7)} | ${String(f.joinMs.p50).padStart(11)} | ${f.joinMs.p99}`,
  );
}
printProfile('one game', oneProfile);
printProfile(`${GAMES} games`, manyProfile);
if (one.refusalMs) console.log(`one game: a game_full refusal took p50 ${one.refusalMs.p50} ms, p99 ${one.refusalMs.p99} ms`);
console.log(
  `seat result -> ${VIEWERS} sockets: ${push.pushes} pushes over ${EXITS} exits; from the exit's response p50 ${push.fromExitResponseMs.p50} ms, p99 ${push.fromExitResponseMs.p99} ms (min ${push.fromExitResponseMs.min}); from its committed exitedAt p50 ${push.fromExitedAtMs.p50} ms, p99 ${push.fromExitedAtMs.p99} ms, max ${push.fromExitedAtMs.max} ms`,
);
console.log(`BENCH seats.join.one_game joins_per_s=${one.joinsPerSecond} p50_ms=${one.joinMs.p50} p99_ms=${one.joinMs.p99} seated=${one.seated} full=${one.fullRefusals} errors=${one.errors}`);
console.log(`BENCH seats.join.many_games joins_per_s=${many.joinsPerSecond} p50_ms=${many.joinMs.p50} p99_ms=${many.joinMs.p99} seated=${many.seated} errors=${many.errors}`);
console.log(
  `BENCH seats.push viewers=${VIEWERS} pushes=${push.pushes} from_response_p50_ms=${push.fromExitResponseMs.p50} from_response_p99_ms=${push.fromExitResponseMs.p99} from_exited_at_p50_ms=${push.fromExitedAtMs.p50} from_exited_at_p99_ms=${push.fromExitedAtMs.p99}`,
);
if (failures.length) {
  console.error(`FAILED (${failures.length}):\n${failures.slice(0, 20).join('\n')}`);
  process.exit(1);
}
