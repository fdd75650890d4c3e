// Sealed games benchmark (issue 24): V viewers (100 by default) watch a game through its live
// room for --seconds (default 60) at tickMs 100 and breakEvery 50, once as `sealed-v1` (the room
// pushes each round's key at its break) and once as `mix32-v1` (clients compute every break;
// the room pushes nothing per round), against tick streaming (one message per tick, 600 per
// viewer-minute, each the size of the game's real state message, GET /edge/game/{id}/state).
// Prints messages and bytes per viewer-minute for the three, and for sealed-v1 the time from
// each break instant (startAt + B_r * tickMs, B_r from the origin's replay after the game) to
// the key's arrival at each socket, p50/p99 over every (round, socket). Each viewer says hello
// and sends one clock-sync ping (answered by a pong), as bench-live does.
//
// Real stack: one origin on Cassandra that knows the edge (EDGE_ORIGIN_SECRET, so the room gets
// the reveal schedule), the real Worker under wrangler dev; everything on this machine, one
// clock. A figure, not an assertion, except that every socket must get every round.
//
//   node scripts/bench-sealed.mjs [--seconds 60] [--viewers 100] [--break-every 50]

import { call, openRoom, originVars, startEdge, startOrigins, uid } from '../edge-worker/tests/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SECONDS = Number(arg('seconds', 60));
const VIEWERS = Number(arg('viewers', 100));
const BREAK_EVERY = Number(arg('break-every', 50));
const TICK_MS = 100;
const EDGE_ORIGIN_SECRET = 'edge-origin-secret-of-the-sealed-bench-0123456789';
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function watch(edge, algorithm) {
  const user = uid(`bench-${algorithm}`);
  const start = await call(`${edge.url}/edge/game/start`, {
    method: 'POST',
    body: { userId: user, algorithm, tickMs: TICK_MS, breakEvery: BREAK_EVERY },
  });
  if (start.status !== 201) throw new Error(`start ${algorithm}: ${start.status} ${start.text}`);
  const game = start.body;
  const socks = [];
  for (let i = 0; i < VIEWERS; i++) {
    const s = await openRoom(edge.url, game.gameId);
    s.send({ type: 'hello', role: 'viewer' });
    s.send({ type: 'ping', clientTime: Date.now() });
    socks.push(s);
  }
  await Promise.all(socks.map((s) => s.next('welcome', 30_000)));
  const joinedAt = Date.now();
  const t0 = joinedAt;
  await sleep(SECONDS * 1000);
  // The state message a streaming server would push each tick: this game's, as the edge
  // answers it (sealed: the instant just past; mix32: now).
  const state = await call(`${edge.url}/edge/game/${game.gameId}/state`);
  const minutes = (Date.now() - t0) / 60_000;
  const exit = await call(`${edge.url}/edge/game/exit`, {
    method: 'POST',
    body: { gameId: game.gameId, userId: user },
    headers: { authorization: `Bearer ${game.ownerToken}` },
  });
  if (exit.status !== 200) throw new Error(`exit: ${exit.status} ${exit.text}`);
  // Counted over the watching minutes only: the exit and what follows it are left out.
  const counted = socks.map((s) => {
    const before = s.inbox.filter((m) => m.receivedAt < exit.body.exitedAt);
    return {
      msgs: before.length,
      rounds: before.filter((m) => m.type === 'round'),
      bytes: before.reduce((a, m) => a + m.wireBytes, 0),
    };
  });
  const latencies = [];
  const breaks = 0;
  for (const s of socks) s.ws.close();
  return { game, state, minutes, counted, joinedAt, latencies, breaks };
}

const origins = await startOrigins(['eu'], 'sealedbench', { EDGE_ORIGIN_SECRET });
const edge = await startEdge({
  vars: { ...originVars(origins), LIVE_MAX_SOCKETS_PER_ADDRESS: '100000', LIVE_MAX_SOCKETS_PER_ROOM: '100000' },
  secrets: { EDGE_ORIGIN_SECRET },
});
const results = {};
try {
  for (const algorithm of ['sealed-v1', 'mix32-v1']) {
    const r = await watch(edge, algorithm);
    if (algorithm === 'sealed-v1') {
      // Break instants from the origin's public replay after the end.
      const replay = await call(`${origins.eu.url}/game/${r.game.gameId}/replay?from=0&to=9999`);
      if (replay.status !== 200) throw new Error(`replay: ${replay.status} ${replay.text}`);
      const steps = replay.body.ticks.filter((t) => t.broken).map((t) => t.step);
      r.breaks = steps.length;
      const breakAt = (round) => r.game.startAt + steps[round - 1] * TICK_MS;
      for (const [n, c] of r.counted.entries()) {
        const got = new Set(c.rounds.map((m) => m.round));
        for (let round = 1; round <= steps.length; round++) {
          if (breakAt(round) > r.joinedAt && !got.has(round)) throw new Error(`socket ${n} missed round ${round}`);
        }
        for (const m of c.rounds) {
          if (m.round > steps.length) continue;
          const late = m.receivedAt - breakAt(m.round);
          if (late < 0) throw new Error(`socket ${n}: round ${m.round} ${-late} ms before its break`);
          // Pushes at the break (not the latest key a joining socket is sent).
          if (breakAt(m.round) > r.joinedAt) r.latencies.push(late);
        }
      }
    }
    results[algorithm] = r;
    console.error(`${algorithm}: done (${r.minutes.toFixed(2)} min)`);
  }
} finally {
  await edge.stop();
  for (const o of Object.values(origins)) await o.stop();
}

const stateBytes = Buffer.byteLength(results['mix32-v1'].state.text);
const streamMsgs = 60_000 / TICK_MS;
const streamBytes = streamMsgs * stateBytes;
const row = (name, r) => {
  const n = r.counted.length;
  const msgs = r.counted.reduce((a, c) => a + c.msgs, 0) / n / r.minutes;
  const rounds = r.counted.reduce((a, c) => a + c.rounds.length, 0) / n / r.minutes;
  const bytes = r.counted.reduce((a, c) => a + c.bytes, 0) / n / r.minutes;
  return { name, msgs, rounds, bytes, fewerMsgs: streamMsgs / msgs, fewerBytes: streamBytes / bytes };
};
const rows = [row('sealed-v1', results['sealed-v1']), row('mix32-v1', results['mix32-v1'])];
const lat = results['sealed-v1'].latencies;
const summary = {
  viewers: VIEWERS,
  seconds: SECONDS,
  tickMs: TICK_MS,
  breakEvery: BREAK_EVERY,
  stateMessageBytes: stateBytes,
  streaming: { msgsPerViewerMinute: streamMsgs, bytesPerViewerMinute: streamBytes },
  rows: rows.map((r) => ({
    algorithm: r.name,
    msgsPerViewerMinute: +r.msgs.toFixed(2),
    roundMsgsPerViewerMinute: +r.rounds.toFixed(2),
    bytesPerViewerMinute: Math.round(r.bytes),
    fewerMsgsThanStreaming: +r.fewerMsgs.toFixed(1),
    fewerBytesThanStreaming: +r.fewerBytes.toFixed(1),
  })),
  sealedBreaks: results['sealed-v1'].breaks,
  breakToKeyMs: { pushes: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100) },
};
console.error(JSON.stringify(summary));
console.log(
  `\nsealed games: server -> viewer traffic per viewer-minute, ${VIEWERS} viewers, ${SECONDS} s, tickMs ${TICK_MS}, breakEvery ${BREAK_EVERY}`,
);
console.log('algorithm       | msgs/vmin | of them round | bytes/vmin | fewer msgs than streaming | fewer bytes');
console.log(`100 ms streaming | ${String(streamMsgs).padStart(9)} | ${'-'.padStart(13)} | ${String(streamBytes).padStart(10)} | ${'1x'.padStart(25)} | 1x  (one ${stateBytes}-byte state message per tick)`);
for (const r of rows) {
  console.log(
    `${r.name.padEnd(16)} | ${r.msgs.toFixed(2).padStart(9)} | ${r.rounds.toFixed(2).padStart(13)} | ${String(Math.round(r.bytes)).padStart(10)} | ${`${r.fewerMsgs.toFixed(1)}x`.padStart(25)} | ${r.fewerBytes.toFixed(1)}x`,
  );
}
const expected = 60_000 / (BREAK_EVERY * TICK_MS);
const roundBytes = results['sealed-v1'].counted.flatMap((c) => c.rounds).map((m) => m.wireBytes);
console.log(
  `expected in the long run: ${expected} round messages per viewer-minute (mean round ${BREAK_EVERY} x ${TICK_MS} ms), ${(streamMsgs / expected).toFixed(1)}x fewer than streaming; a round message is ${pct(roundBytes, 50)} bytes (${(streamBytes / (expected * pct(roundBytes, 50))).toFixed(1)}x fewer bytes); welcome and pong are once per join`,
);
console.log(
  `sealed-v1 break -> key at the sockets: ${lat.length} pushes over ${results['sealed-v1'].breaks} breaks, p50 ${summary.breakToKeyMs.p50} ms, p99 ${summary.breakToKeyMs.p99} ms, max ${summary.breakToKeyMs.max} ms`,
);
