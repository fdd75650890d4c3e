// One trace across the edge and an origin, in a real Jaeger (scripts/jaeger.sh, built from the
// Go module proxy by the traces stage of make test or by make dev): a start and an exit through the Worker in workerd, sent with
// one client traceparent, become one trace holding the edge spans, the origin request spans
// (their children), the service steps and the Cassandra statements (the service steps'
// children), each with its consistency and LWT flag. No span, and no log line of the edge or
// the origin, holds a token or a secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT, TEST_SECRET, call, freePort, originVars, ownerToken, sleep, startEdge, startOrigins, uid } from '../tests/harness.mjs';

const EDGE_ORIGIN_SECRET = 'edge-origin-secret-of-the-trace-tests-0123456789';
const TRACE_ID = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
const CLIENT_SPAN = '00f067aa0ba902b7';

function jaeger(command, env) {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'jaeger.sh'), command], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`scripts/jaeger.sh ${command} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

/** Polls Jaeger's query API until the trace satisfies `ready` (spans arrive in batches). */
async function traceOf(ui, traceId, ready) {
  let last;
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${ui}/api/traces/${traceId}`);
    if (res.status === 200) {
      last = (await res.json()).data?.[0];
      if (last && ready(last)) return last;
    }
    await sleep(200);
  }
  throw new Error(`trace ${traceId} incomplete in Jaeger: ${JSON.stringify(last)?.slice(0, 2000)}`);
}

const tag = (span, key) => span.tags.find((t) => t.key === key)?.value;
const parentOf = (span) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;

describe('traces: edge -> origin -> Cassandra in Jaeger', () => {
  let env;
  let origins;
  let edge;
  let otlp;
  let ui;

  before(async () => {
    const [otlpPort, uiPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
    env = {
      JAEGER_RUN_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'seedsync-jaeger-')),
      JAEGER_OTLP_PORT: String(otlpPort),
      JAEGER_UI_PORT: String(uiPort),
      JAEGER_GRPC_PORT: String(grpcPort),
    };
    jaeger('start', env);
    otlp = jaeger('otlp', env);
    ui = jaeger('ui', env);
    origins = await startOrigins(['eu'], 'traces', {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      EDGE_ORIGIN_SECRET,
    });
    edge = await startEdge({
      vars: { ...originVars(origins), OTEL_EXPORTER_OTLP_ENDPOINT: otlp },
      secrets: { EDGE_ORIGIN_SECRET },
      logLevel: 'log',
    });
  });

  after(async () => {
    await edge?.stop();
    for (const o of Object.values(origins ?? {})) await o.stop();
    if (env) jaeger('stop', env);
  });

  test('a start and an exit are one trace with the edge, origin and Cassandra spans in order', async () => {
    const traceparent = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;
    const userId = uid('traced');
    const started = await call(`${edge.url}/edge/game/start`, { method: 'POST', body: { userId }, headers: { traceparent } });
    assert.equal(started.status, 201, started.text);
    const gameId = started.body.gameId ?? started.body.game?.gameId ?? started.body.id;
    const token = started.body.ownerToken ?? ownerToken(gameId, userId);
    const exited = await call(`${edge.url}/edge/game/exit`, {
      method: 'POST',
      body: { gameId, userId },
      headers: { traceparent, authorization: `Bearer ${token}` },
      ownerAuth: false,
    });
    assert.equal(exited.status, 200, exited.text);

    const services = (t) => (span) => t.processes[span.processID].serviceName;
    const trace = await traceOf(ui, TRACE_ID, (t) => {
      const names = t.spans.map((s) => s.operationName);
      return (
        ['POST /edge/game/start', 'POST /edge/game/exit', 'POST /game/start', 'POST /game/exit'].every((n) => names.includes(n)) &&
        t.spans.some((s) => tag(s, 'db.cassandra.lwt') === true)
      );
    });
    const service = services(trace);
    const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
    const one = (name) => {
      const found = trace.spans.filter((s) => s.operationName === name);
      assert.equal(found.length, 1, `${name}: ${found.length} spans`);
      return found[0];
    };
    for (const op of ['start', 'exit']) {
      const edgeSpan = one(`POST /edge/game/${op}`);
      assert.equal(service(edgeSpan), 'seedsync-edge');
      assert.equal(parentOf(edgeSpan), CLIENT_SPAN, 'the edge span is the client span\'s child');
      assert.equal(tag(edgeSpan, 'span.kind'), 'server');
      const originSpan = one(`POST /game/${op}`);
      assert.equal(service(originSpan), 'seedsync-origin');
      assert.equal(parentOf(originSpan), edgeSpan.spanID, 'the origin request span is the edge span\'s child');
      const step = one(`service.${op}`);
      assert.equal(parentOf(step), originSpan.spanID);
      const statements = trace.spans.filter((s) => parentOf(s) === step.spanID && tag(s, 'db.system.name') === 'cassandra');
      assert.ok(statements.length >= 1, `no Cassandra span under service.${op}`);
      for (const s of statements) {
        assert.equal(tag(s, 'db.operation.name'), s.operationName);
        assert.match(tag(s, 'db.cassandra.consistency_level'), /^[A-Z_]+$/);
        assert.equal(typeof tag(s, 'db.cassandra.lwt'), 'boolean');
      }
      // Every start and exit takes a Paxos round (the active-game claim, the exit itself).
      const lwt = statements.filter((s) => tag(s, 'db.cassandra.lwt') === true);
      assert.ok(lwt.length >= 1, `no LWT under service.${op}`);
      for (const s of lwt) assert.match(tag(s, 'db.cassandra.serial_consistency_level'), /SERIAL/);
    }
    // Every span of the trace hangs off the client's span (no orphan, no second root).
    for (const s of trace.spans) {
      let at = s;
      for (let depth = 0; depth < 10 && byId.has(parentOf(at)); depth++) at = byId.get(parentOf(at));
      assert.equal(parentOf(at), CLIENT_SPAN, `${s.operationName} is not under the client span`);
    }

    // No span, and no log line, holds a token or a secret.
    const secrets = { ownerToken: token, TEST_SECRET, EDGE_ORIGIN_SECRET };
    const texts = {
      'the trace': JSON.stringify(trace),
      "the edge's log": edge.proc.log(),
      "the origin's log": origins.eu.proc.log(),
    };
    for (const [where, text] of Object.entries(texts)) {
      for (const [name, secret] of Object.entries(secrets)) {
        assert.ok(!text.includes(secret), `${where} holds ${name}`);
      }
      assert.ok(!/Bearer /i.test(text), `${where} holds an authorization header`);
    }
    // The edge logged one JSON line per request of the trace.
    const edgeLines = edge.proc
      .log()
      .split('\n')
      .filter((l) => l.includes(TRACE_ID) && l.includes('"route"'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'))));
    assert.deepEqual(
      edgeLines.map((l) => [l.route, l.status, l.region]).sort(),
      [
        ['/edge/game/exit', 200, 'eu'],
        ['/edge/game/start', 201, 'eu'],
      ],
    );
  });
});
