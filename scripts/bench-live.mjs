// Live rooms benchmark: N viewers (1, 10, 100 by default) watch a game (tickMs 100) through its
// room for --seconds (default 60), then the player exits through the edge. Measures what the
// server sends to the viewers (messages and bytes, per viewer-minute) against a tick-streaming
// baseline (one message per tick: 600 per viewer-minute at tickMs 100), and the
// exit-to-viewer latency (viewer receive time minus the origin's committed exitedAt; same
// machine, same clock), p50/p99 over every viewer.
//
//   node scripts/bench-live.mjs [--seconds 60] [--viewers 1,10,100] [--pings 1]
// --pings: clock-sync pings each viewer sends right after joining (the page sends a few,
// then one every pingMs; each is answered by a pong, counted here).

import { once } from 'node:events';

import { call, originVars, startEdge, startOrigins, uid } from '../edge-worker/tests/harness.mjs';

const WS = globalThis.WebSocket ?? (await import('ws')).default;
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const SECONDS = Number(arg('seconds', process.env.LIVE_BENCH_SECONDS ?? 60));
const VIEWERS = String(arg('viewers', '1,10,100')).split(',').map(Number);
const PINGS = Number(arg('pings', 1));
const TICK_MS = 100;
// A tick a streaming server would push: as small as such a message gets.
const SAMPLE_TICK = JSON.stringify({ type: 'tick', gameId: '0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e', step: 600, value: 2147483647, round: 3 });
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

async function viewer(url) {
  const ws = new WS(url);
  const v = { ws, msgs: 0, bytes: 0, types: {}, exitedAt: null, receivedAt: null };
  ws.addEventListener('message', (ev) => {
    const text = typeof ev.data === 'string' ? ev.data : ev.data.toString();
    v.msgs += 1;
    v.bytes += Buffer.byteLength(text);
    const m = JSON.parse(text);
    v.types[m.type] = (v.types[m.type] ?? 0) + 1;
    if (m.type === 'exited') {
      v.receivedAt = Date.now();
      v.exitedAt = m.exitedAt;
    }
  });
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'hello', role: 'viewer' }));
  for (let i = 0; i < PINGS; i++) ws.send(JSON.stringify({ type: 'ping', clientTime: Date.now() }));
  return v;
}

const origins = await startOrigins(['eu'], 'livebench');
// Every bench viewer is 127.0.0.1: lift the per-address and per-room socket caps.
const edge = await startEdge({
  vars: { ...originVars(origins), LIVE_MAX_SOCKETS_PER_ADDRESS: '100000', LIVE_MAX_SOCKETS_PER_ROOM: '100000' },
});
const rows = [];
try {
  for (const n of VIEWERS) {
    const user = uid('bench-live');
    const start = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId: user, tickMs: TICK_MS } });
    if (start.status !== 201) throw new Error(`start: ${start.status} ${start.text}`);
    const url = `${edge.url.replace(/^http/, 'ws')}/edge/game/${start.body.gameId}/live`;
    const vs = [];
    for (let i = 0; i < n; i++) vs.push(await viewer(url));
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const exit = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId: start.body.gameId, userId: user },
      headers: { authorization: `Bearer ${start.body.ownerToken}` },
    });
    if (exit.status !== 200) throw new Error(`exit: ${exit.status} ${exit.text}`);
    const deadline = Date.now() + 5000;
    while (vs.some((v) => v.receivedAt === null) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const minutes = (Date.now() - t0) / 60_000;
    const lat = vs.filter((v) => v.receivedAt !== null).map((v) => v.receivedAt - v.exitedAt);
    const msgs = vs.reduce((a, v) => a + v.msgs, 0);
    const bytes = vs.reduce((a, v) => a + v.bytes, 0);
    const perVmMsgs = msgs / n / minutes;
    const perVmBytes = bytes / n / minutes;
    const baseMsgs = 60_000 / TICK_MS;
    const baseBytes = baseMsgs * Buffer.byteLength(SAMPLE_TICK);
    const types = {};
    for (const v of vs) for (const [k, c] of Object.entries(v.types)) types[k] = (types[k] ?? 0) + c;
    rows.push({
      viewers: n,
      seconds: SECONDS,
      pings: PINGS,
      msgsPerViewerMinute: +perVmMsgs.toFixed(2),
      bytesPerViewerMinute: Math.round(perVmBytes),
      baselineMsgs: baseMsgs,
      baselineBytes: baseBytes,
      fewerMsgs: +(baseMsgs / perVmMsgs).toFixed(1),
      fewerBytes: +(baseBytes / perVmBytes).toFixed(1),
      exitP50Ms: pct(lat, 50),
      exitP99Ms: pct(lat, 99),
      gotExit: `${lat.length}/${n}`,
      types,
    });
    for (const v of vs) v.ws.close();
    console.error(JSON.stringify(rows.at(-1)));
  }
} finally {
  await edge.stop();
  for (const o of Object.values(origins)) await o.stop();
}
console.log('\nlive rooms: server -> viewer traffic per viewer-minute vs tick streaming (tickMs 100)');
console.log('viewers | msgs/vmin | bytes/vmin | baseline msgs/bytes | fewer msgs | fewer bytes | exit p50/p99 ms | got exit');
for (const r of rows) {
  console.log(
    `${String(r.viewers).padStart(7)} | ${String(r.msgsPerViewerMinute).padStart(9)} | ${String(r.bytesPerViewerMinute).padStart(10)} | ${r.baselineMsgs}/${r.baselineBytes} | ${String(r.fewerMsgs).padStart(9)}x | ${String(r.fewerBytes).padStart(10)}x | ${r.exitP50Ms}/${r.exitP99Ms} | ${r.gotExit}`,
  );
}
