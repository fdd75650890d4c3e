// Live-room cost as the room grows (issue 19): in one room, N viewers join one by one (each
// `hello` answered by a `welcome`; a player is there, so each viewer's join is also pushed to
// the player), then the player's game exits through the edge and the room pushes `exited` to
// all N + 1 sockets. Prints, per N, the hello -> welcome time of the last joins (what the
// N-th viewer's hello costs) and the exit push p50/p99 over every socket. A figure, not an
// assertion: run it before and after a change to compare (same machine, one client).
//
//   node scripts/bench-room.mjs [--sizes 50,200] [--last 20]

import { once } from 'node:events';

import { call, originVars, startEdge, startOrigins, uid } from '../edge-worker/tests/harness.mjs';

const WS = (await import('ws')).default;
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SIZES = String(arg('sizes', '50,200')).split(',').map(Number);
const LAST = Number(arg('last', 20));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

/** Opens a socket, says hello, resolves {ws, helloMs, exited} once welcomed. */
async function join(url, hello) {
  const ws = new WS(url);
  const s = { ws, helloMs: null, exitedAt: null, receivedAt: null };
  let welcomed;
  const welcome = new Promise((r) => (welcomed = r));
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.type === 'welcome') welcomed();
    if (m.type === 'exited') {
      s.receivedAt = Date.now();
      s.exitedAt = m.exitedAt;
    }
  });
  await once(ws, 'open');
  const t0 = performance.now();
  ws.send(JSON.stringify(hello));
  await welcome;
  s.helloMs = performance.now() - t0;
  return s;
}

const origins = await startOrigins(['eu'], 'roombench');
const edge = await startEdge({
  vars: {
    ...originVars(origins),
    // One client address for every socket: lift the caps (an older Worker ignores them).
    LIVE_MAX_SOCKETS_PER_ADDRESS: '100000',
    LIVE_MAX_SOCKETS_PER_ROOM: '100000',
  },
});
const rows = [];
try {
  for (const n of SIZES) {
    const user = uid('bench-room');
    const start = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: user } });
    if (start.status !== 201) throw new Error(`start: ${start.status} ${start.text}`);
    const url = `${edge.url.replace(/^http/, 'ws')}/edge/game/${start.body.gameId}/live`;
    const socks = [await join(url, { type: 'hello', role: 'player', ownerToken: start.body.ownerToken })];
    for (let i = 0; i < n; i++) socks.push(await join(url, { type: 'hello', role: 'viewer' }));
    const hellos = socks.slice(-LAST).map((s) => s.helloMs);
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: start.body.gameId, userId: user },
      headers: { authorization: `Bearer ${start.body.ownerToken}` },
    });
    if (exit.status !== 200) throw new Error(`exit: ${exit.status} ${exit.text}`);
    const deadline = Date.now() + 15_000;
    while (socks.some((s) => s.receivedAt === null) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const lat = socks.filter((s) => s.receivedAt !== null).map((s) => s.receivedAt - s.exitedAt);
    rows.push({
      sockets: n + 1,
      helloMean: +(hellos.reduce((a, b) => a + b, 0) / hellos.length).toFixed(1),
      helloP50: +pct(hellos, 50).toFixed(1),
      exitP50: pct(lat, 50),
      exitP99: pct(lat, 99),
      gotExit: `${lat.length}/${socks.length}`,
    });
    for (const s of socks) s.ws.close();
    console.error(JSON.stringify(rows.at(-1)));
    await new Promise((r) => setTimeout(r, 500));
  }
} finally {
  await edge.stop();
  for (const o of Object.values(origins)) await o.stop();
}
console.log(`\nlive room cost by size (one client; hello -> welcome of the last ${LAST} joins; exit push to every socket)`);
console.log('sockets | hello mean ms | hello p50 ms | exit p50 ms | exit p99 ms | got exit');
for (const r of rows) {
  console.log(
    `${String(r.sockets).padStart(7)} | ${String(r.helloMean).padStart(13)} | ${String(r.helloP50).padStart(12)} | ${String(r.exitP50).padStart(11)} | ${String(r.exitP99).padStart(11)} | ${r.gotExit}`,
  );
}
