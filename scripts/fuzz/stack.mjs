#!/usr/bin/env node
// The stack scripts/fuzz-api.sh fuzzes: one origin (REGION=eu, a keyspace of its own) and the
// edge Worker under `wrangler dev` in front of it, both on free 127.0.0.1 ports with a bounded
// lifetime (edge-worker/tests/harness.mjs). Writes {"origin": URL, "edge": URL, "keyspace"} to
// the file named by its argument once both answer, then runs until SIGTERM/SIGINT and stops both by PID
// before exiting.
//
// Environment: as the harness (ORIGIN_BIN, CASSANDRA_HOSTS, EDGE_TEST_LIFETIME).

import fs from 'node:fs';

import { originVars, startEdge, startOrigins } from '../../edge-worker/tests/harness.mjs';

const out = process.argv[2];
if (!out) {
  console.error('usage: stack.mjs URLS_FILE');
  process.exit(2);
}

const running = [];
let stopping = null;

function stop(code) {
  stopping ??= (async () => {
    // Edge first: it would only fail over to nothing once the origin is gone.
    for (const server of running.reverse()) {
      try {
        await server.stop();
      } catch (e) {
        console.error(`fuzz-stack: stopping a server failed: ${e.message}`);
      }
    }
    process.exit(code);
  })();
  return stopping;
}

process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
// Stay alive until signalled (the caller's `timeout` bounds this process too).
setInterval(() => {}, 60_000);

try {
  const origins = await startOrigins(['eu'], 'fuzz');
  running.push(origins.eu);
  // No edge cache: every read reaches the origin, so the edge's answers are the origin's.
  const edge = await startEdge({ vars: { ...originVars(origins), CACHE_TTL_SECONDS: '0' } });
  running.push(edge);
  const urls = { origin: origins.eu.url, edge: edge.url, keyspace: origins.eu.keyspace };
  fs.writeFileSync(`${out}.tmp`, JSON.stringify(urls));
  fs.renameSync(`${out}.tmp`, out);
  console.error(`fuzz-stack: origin ${urls.origin} (pid ${origins.eu.proc.pid}), edge ${urls.edge} (pid ${edge.proc.pid})`);
} catch (e) {
  console.error(`fuzz-stack: could not start the stack: ${e.message}`);
  await stop(1);
}
