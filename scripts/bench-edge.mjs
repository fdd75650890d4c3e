#!/usr/bin/env node
// Edge benchmark: starts three real origins (Cassandra at CASSANDRA_HOSTS) and the real Worker
// under `wrangler dev`, then measures, in one run:
//   1. the edge's added latency: the same uncached origin call (GET /game/{id}/state, no `at`)
//      made directly and through the edge, interleaved, p50/p99 of each and of the difference,
//      plus the floor of the dev server itself (GET /edge/time, no origin call);
//   2. a join workload (GET /edge/game/{id} over many games, skewed popularity): the share served
//      from the edge cache, latency of hits and misses, and the origins' request counters proving
//      that only the misses reached them.
// Requests are sequential (one in flight), bounded in count and by BENCH_DEADLINE_S.
//
// Usage: node scripts/bench-edge.mjs   (after scripts/setup-edge.sh and cargo build -p origin)
// Env: BENCH_SAMPLES (400), BENCH_GAMES (25), BENCH_JOINS (1000), BENCH_DEADLINE_S (240),
//      ORIGIN_BIN (default target/release/origin if built, else target/debug/origin).

import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
if (!process.env.ORIGIN_BIN) {
  const release = path.join(ROOT, 'target', 'release', 'origin');
  process.env.ORIGIN_BIN = fs.existsSync(release) ? release : path.join(ROOT, 'target', 'debug', 'origin');
}
const { GAME_READS, call, originMetric, originVars, startEdge, startOrigins } = await import(
  '../edge-worker/tests/harness.mjs'
);

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 400);
const GAMES = Number(process.env.BENCH_GAMES ?? 25);
const JOINS = Number(process.env.BENCH_JOINS ?? 1000);
const DEADLINE = Date.now() + Number(process.env.BENCH_DEADLINE_S ?? 240) * 1000;

function quantile(values, q) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const fmt = (ms) => `${ms.toFixed(2)} ms`;
function row(label, values) {
  return `${label.padEnd(34)} n=${String(values.length).padStart(5)}  p50 ${fmt(quantile(values, 0.5)).padStart(10)}  p99 ${fmt(quantile(values, 0.99)).padStart(10)}`;
}
function timedOut() {
  return Date.now() > DEADLINE;
}

/** Zipf-ish popularity: game i is drawn with weight 1/(i+1), like a few popular streams. */
function zipfPicker(n, seed = 42) {
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let state = seed;
  const rand = () => {
    // xorshift32: deterministic workload across runs.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  return () => {
    let r = rand() * total;
    for (let i = 0; i < n; i++) {
      r -= weights[i];
      if (r <= 0) return i;
    }
    return n - 1;
  };
}

let origins;
let edge;
try {
  console.log(`bench-edge: origin binary ${process.env.ORIGIN_BIN}`);
  origins = await startOrigins(['eu', 'us', 'asia'], 'bench');
  edge = await startEdge({ vars: originVars(origins, ['eu', 'us', 'asia']) });
  const near = { 'x-user-region': 'eu' }; // the edge reads from eu, the origin we compare with

  const games = [];
  for (let i = 0; i < GAMES; i++) {
    const r = await call(`${edge.url}/edge/game/start`, {
      method: 'POST',
      body: { userId: `bench-${process.pid}-${i}`, preferredRegion: 'eu' },
    });
    if (r.status !== 201 && r.status !== 200) throw new Error(`start failed: ${r.status} ${r.text}`);
    games.push(r.body.gameId);
  }

  // Warm both paths (connections, JIT, the origin's prepared statements).
  for (let i = 0; i < 20; i++) {
    await call(`${origins.eu.url}/game/${games[0]}/state`);
    await call(`${edge.url}/edge/game/${games[0]}/state`, { headers: near });
  }

  // 1. Added latency of the edge on an uncached call: interleaved, same origin, same request.
  const direct = [];
  const viaEdge = [];
  for (let i = 0; i < SAMPLES && !timedOut(); i++) {
    const id = games[i % games.length];
    const order = i % 2 === 0;
    const a = order
      ? await call(`${origins.eu.url}/game/${id}/state`)
      : await call(`${edge.url}/edge/game/${id}/state`, { headers: near });
    const b = order
      ? await call(`${edge.url}/edge/game/${id}/state`, { headers: near })
      : await call(`${origins.eu.url}/game/${id}/state`);
    const [d, e] = order ? [a, b] : [b, a];
    if (d.status !== 200 || e.status !== 200) throw new Error(`state failed: ${d.status} ${e.status} ${e.text}`);
    if (e.headers.get('x-edge-cache') !== 'miss') throw new Error('state without at must not be cached');
    direct.push(d.ms);
    viaEdge.push(e.ms);
  }
  const added = viaEdge.map((v, i) => v - direct[i]);
  // The floor of `wrangler dev` itself: a Worker route that calls no origin.
  const floor = [];
  for (let i = 0; i < Math.min(SAMPLES, 200) && !timedOut(); i++) floor.push((await call(`${edge.url}/edge/time`)).ms);

  // 2. Join workload through the edge cache.
  const pick = zipfPicker(games.length);
  const readsBefore = await originMetric(origins, 'seedsync_http_requests_total', GAME_READS);
  const hits = [];
  const misses = [];
  const joinDirect = [];
  for (let i = 0; i < JOINS && !timedOut(); i++) {
    const id = games[pick()];
    const r = await call(`${edge.url}/edge/game/${id}`, { headers: near });
    if (r.status !== 200) throw new Error(`join failed: ${r.status} ${r.text}`);
    (r.headers.get('x-edge-cache') === 'hit' ? hits : misses).push(r.ms);
    if (i % 4 === 0) joinDirect.push((await call(`${origins.eu.url}/game/${id}`)).ms);
  }
  const joinsDone = hits.length + misses.length;
  const readsAfter = await originMetric(origins, 'seedsync_http_requests_total', GAME_READS);
  const originReads = readsAfter - readsBefore - joinDirect.length;

  console.log('');
  console.log('== edge added latency (uncached GET state, same origin, interleaved) ==');
  console.log(row('origin direct', direct));
  console.log(row('edge -> origin', viaEdge));
  console.log(row('added by the edge (paired diff)', added));
  console.log(row('edge floor: GET /edge/time', floor));
  console.log('');
  console.log(`== join workload: ${joinsDone} GET /edge/game/{id} over ${games.length} games (zipf) ==`);
  console.log(`cache hit share: ${((100 * hits.length) / joinsDone).toFixed(1)}% (${hits.length} hits, ${misses.length} misses)`);
  console.log(`origin GET /game/{id} during the workload (excluding direct samples): ${originReads} (= misses: ${originReads === misses.length})`);
  console.log(row('edge join, cache hit', hits));
  console.log(row('edge join, cache miss', misses));
  console.log(row('origin direct join (sampled)', joinDirect));
  const summary = {
    samples: direct.length,
    directP50: quantile(direct, 0.5),
    directP99: quantile(direct, 0.99),
    edgeP50: quantile(viaEdge, 0.5),
    edgeP99: quantile(viaEdge, 0.99),
    addedP50: quantile(added, 0.5),
    addedP99: quantile(added, 0.99),
    floorP50: quantile(floor, 0.5),
    floorP99: quantile(floor, 0.99),
    joins: joinsDone,
    hitShare: hits.length / joinsDone,
    hitP50: quantile(hits, 0.5),
    hitP99: quantile(hits, 0.99),
    originReadsEqualMisses: originReads === misses.length,
  };
  console.log('');
  console.log(`BENCH_EDGE ${JSON.stringify(summary)}`);
  if (originReads !== misses.length) process.exitCode = 1;
} finally {
  await edge?.stop();
  for (const o of Object.values(origins ?? {})) await o.stop();
}
