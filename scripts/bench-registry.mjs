// Benchmark: what the live registry costs the edge per request. One origin (heartbeat every
// 1 s), two Workers against it: one with the registry off (REGISTRY_REFRESH_MS=0, static list)
// and one refreshing every 250 ms (far more often than the 5 s default). Uncached state reads
// (no `at`: always forwarded) alternate between the two; the paired p50/p99 show what the
// registry adds on the hot path (target: nothing measurable; refreshes run after responses).
// Run: cargo build -p origin && bash scripts/build-worker.sh && node scripts/bench-registry.mjs

import { call, originVars, startEdge, startOrigin, uid } from '../edge-worker/tests/harness.mjs';

const N = Number(process.env.BENCH_N ?? 300);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const origin = await startOrigin({ region: 'eu', keyspace: `bench_registry_${process.pid}`, env: { REGISTER_INTERVAL_SECONDS: '1' } });
const edges = [];
try {
  const vars = originVars({ eu: origin }, ['eu']);
  edges.push(await startEdge({ vars: { ...vars, REGISTRY_REFRESH_MS: '0' } }));
  edges.push(await startEdge({ vars: { ...vars, REGISTRY_REFRESH_MS: '250' } }));
  const game = await call(`${edges[0].url}/edge/game/start`, { method: 'POST', body: { userId: uid('bench') } });
  const id = game.body.gameId;
  const times = [[], []];
  for (let i = 0; i < 40; i++) for (const e of edges) await call(`${e.url}/edge/game/${id}/state`);
  for (let i = 0; i < N; i++) {
    for (const [k, e] of edges.entries()) {
      const r = await call(`${e.url}/edge/game/${id}/state`);
      if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
      times[k].push(r.ms);
    }
  }
  const diff = times[1].map((t, i) => t - times[0][i]);
  const line = (name, xs) => console.log(`${name.padEnd(36)} n=${String(xs.length).padStart(5)}  p50 ${pct(xs, 50).toFixed(2).padStart(7)} ms  p99 ${pct(xs, 99).toFixed(2).padStart(7)} ms`);
  line('registry off (static list)', times[0]);
  line('registry on (refresh every 250 ms)', times[1]);
  line('added by the registry (paired diff)', diff);
  const regions = await call(`${edges[1].url}/edge/regions`);
  console.log(`edge table source: ${regions.body.source}; heartbeat writes per origin: 1 INSERT per REGISTER_INTERVAL_SECONDS`);
} finally {
  for (const e of edges) await e.stop();
  await origin.stop();
}
