/**
 * The engine's golden vectors, computed by the page's own wasm build inside a real headless
 * Chromium (not node): the browser must agree bit for bit with the origin (native) and the edge
 * (wasm in workerd). The page's module loader fetches the engine glue and the `.wasm` from a
 * path this test serves itself (`page.route`), so exactly the files the page ships are
 * exercised, with no hook added to the app.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../test/helpers';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ORIGIN = 'http://golden.seedsync.test';
const generated = join(repoRoot, 'frontend', 'src', 'engine', 'generated');

interface TickVector {
  algorithm: string;
  seed: number;
  tickMs: number;
  breakEvery: number;
  step: number;
  value: number;
  round: number;
  broken: boolean;
}

const golden = JSON.parse(readFileSync(join(repoRoot, 'shared-engine', 'vectors', 'golden.json'), 'utf8')) as {
  ticks: TickVector[];
};

// Runs in the page: imports the engine's web build and recomputes every vector.
const PAGE = `<!doctype html><meta charset="utf-8"><title>golden</title>
<script type="module">
  import init, { tickAt } from '/engine/shared_engine.js';
  try {
    await init({ module_or_path: '/engine/shared_engine_bg.wasm' });
    const vectors = await (await fetch('/golden.json')).json();
    const mismatches = [];
    for (const v of vectors) {
      const t = tickAt(v.seed, v.tickMs, v.breakEvery, v.algorithm, v.step);
      const got = { step: t.step, value: t.value, round: t.round, broken: t.broken };
      t.free();
      if (got.step !== v.step || got.value !== v.value || got.round !== v.round || got.broken !== v.broken) {
        mismatches.push({ vector: v, got });
      }
    }
    window.__golden = { checked: vectors.length, mismatches, userAgent: navigator.userAgent };
  } catch (e) {
    window.__golden = { error: String(e && e.stack || e) };
  }
</script>`;

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
});

describe('golden vectors in the browser', () => {
  it('Chromium computes every golden tick with the page wasm, all three algorithms', async () => {
    const page = await browser.newPage();
    await page.route(`${ORIGIN}/**`, async (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/') return route.fulfill({ contentType: 'text/html', body: PAGE });
      if (path === '/golden.json') return route.fulfill({ contentType: 'application/json', body: JSON.stringify(golden.ticks) });
      if (path === '/engine/shared_engine.js') {
        return route.fulfill({ contentType: 'text/javascript', body: readFileSync(join(generated, 'shared_engine.js')) });
      }
      if (path === '/engine/shared_engine_bg.wasm') {
        return route.fulfill({ contentType: 'application/wasm', body: readFileSync(join(generated, 'shared_engine_bg.wasm')) });
      }
      return route.fulfill({ status: 404, body: 'not found' });
    });
    await page.goto(`${ORIGIN}/`);
    await page.waitForFunction(() => (window as unknown as { __golden?: unknown }).__golden !== undefined, null, {
      timeout: 30_000,
    });
    const result = (await page.evaluate(() => (window as unknown as { __golden: unknown }).__golden)) as {
      checked?: number;
      mismatches?: unknown[];
      userAgent?: string;
      error?: string;
    };
    await page.close();
    expect(result.error).toBeUndefined();
    expect(result.userAgent).toMatch(/Chrome/);
    expect(result.checked).toBe(golden.ticks.length);
    expect(new Set(golden.ticks.map((t) => t.algorithm))).toEqual(new Set(['mix32-v1', 'lcg32', 'interval-v0']));
    expect(result.mismatches).toEqual([]);
  });
});
