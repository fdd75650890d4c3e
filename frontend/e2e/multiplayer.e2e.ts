/**
 * End to end, a shared game (issue 22) in three real headless Chromiums against the full local
 * stack (Cassandra, three origins, the edge Worker serving this page): A starts a shared game
 * for two players from the page and gets a join link; B, whose clock is 5 s fast, opens the link
 * and takes the second seat; a third page asking for a seat is told the game is full; V watches
 * by the game's link. At several instants all three show the same step and value (the engine's,
 * on the real clock). B exits its own seat: its result is the engine's state at its exitedAt,
 * pushed to A and V while the game goes on. A exits last: its result is the engine's at its
 * exitedAt, the game ends, and all three show the same final seats table, the origin's
 * `/results`. Started by run.sh (`npm run e2e -- multiplayer` for this file alone).
 *
 * Each page reads `/results` once, on load: A sees B's seat the moment the room pushes the join
 * (no `/results` request after A's load while joins are open), and B's page is in the room as
 * its seat's player (presence, by seat, on every page).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateAt, tickAt, type GameParams } from '../src/engine/engine';
import { loadEngineForTests, repoRoot } from '../test/helpers';

const BASE = (process.env.E2E_BASE_URL ?? 'http://127.0.0.1:18787').replace(/\/$/, '');
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? join(repoRoot, 'artifacts', 'e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHIFT_MS = 5_000;
const INSTANTS = 5;

interface Counter {
  phase: string;
  step: number | null;
  value: number | null;
  round: number | null;
  serverNow: number;
  stopped: boolean;
}

/** One row of a page's seats table (data attributes of SeatsTable). */
interface Row {
  seat: string;
  userId: string;
  exitedAt: number | null;
  step: number | null;
  value: number | null;
}

interface SharedGame extends GameParams {
  gameId: string;
  userId: string;
  region: string;
  backendRegion?: string;
  shared: { maxPlayers: number; joinDeadline: number };
}

/** When each page asked for `/edge/game/{id}/results` (Unix ms). */
const resultsReads: Record<string, number[]> = { A: [], B: [], V: [] };

const report: {
  resultsReads: Record<string, number[]>;
  seatPushMs?: number;
  baseUrl: string;
  game?: SharedGame;
  joinLink?: string;
  offsets: Record<string, number>;
  refusal?: string;
  instants: { instant: number; realMs: [number, number]; a: Counter; b: Counter; v: Counter; attempts: number }[];
  exits: Record<string, { exitedAt: number; shown: Counter; result: Record<string, string | null>; engine: unknown; pushLagMs?: Record<string, number> }>;
  finalTables?: Record<string, Row[]>;
  results?: unknown;
  pageErrors: string[];
} = { resultsReads, baseUrl: BASE, offsets: {}, instants: [], exits: {}, pageErrors: [] };

let browser: Browser;
let ctxA: BrowserContext;
let ctxB: BrowserContext;
let ctxV: BrowserContext;
let pageA: Page;
let pageB: Page;
let pageV: Page;
let game: SharedGame | null = null;
const userA = `e2e-mp-a-${Date.now().toString(36)}`;
const userB = `e2e-mp-b-${Date.now().toString(36)}`;

function shot(page: Page, name: string) {
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

async function edgeJson(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(BASE + path, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, body };
}

function readCounter(page: Page): Promise<Counter> {
  return page.evaluate(`(() => {
    const el = document.querySelector('[data-testid="counter"]');
    if (!el) return { phase: 'none', step: null, value: null, round: null, serverNow: 0, stopped: false };
    const num = (k) => (el.getAttribute(k) === '' || el.getAttribute(k) === null ? null : Number(el.getAttribute(k)));
    return {
      phase: el.getAttribute('data-phase'),
      step: num('data-step'),
      value: num('data-value'),
      round: num('data-round'),
      serverNow: Number(el.getAttribute('data-server-now')),
      stopped: el.getAttribute('data-stopped') === 'true',
    };
  })()`);
}

/** The seats table as a page shows it, row by row. */
function readTable(page: Page): Promise<{ final: boolean; rows: Row[] }> {
  return page.evaluate(`(() => {
    const table = document.querySelector('[data-testid="seats"]');
    if (!table) return { final: false, rows: [] };
    const num = (el, k) => (el.getAttribute(k) === '' || el.getAttribute(k) === null ? null : Number(el.getAttribute(k)));
    const rows = [...table.querySelectorAll('tbody tr')].map((tr) => ({
      seat: tr.getAttribute('data-testid'),
      userId: tr.getAttribute('data-user'),
      exitedAt: num(tr, 'data-exited-at'),
      step: num(tr, 'data-step'),
      value: num(tr, 'data-value'),
    }));
    return { final: table.getAttribute('data-final') === 'true', rows };
  })()`);
}

/** "Your result" as a page shows it. */
function readResult(page: Page): Promise<Record<string, string | null>> {
  return page.evaluate(`(() => {
    const el = document.querySelector('[data-testid="my-result"]');
    if (!el) return {};
    return {
      exitedAt: el.getAttribute('data-exited-at'),
      step: el.getAttribute('data-step'),
      value: el.getAttribute('data-value'),
      breakFirst: el.getAttribute('data-break-first'),
      text: el.textContent,
    };
  })()`);
}

async function offsetOf(page: Page): Promise<number> {
  const el = page.getByTestId('clock-offset');
  await expect.poll(async () => (await el.getAttribute('data-offset')) ?? '', { timeout: 15_000 }).not.toBe('');
  return Number(await el.getAttribute('data-offset'));
}

/** The engine's final tick for an exit at `exitedAt` (what the page's engine computes). */
function engineAt(g: GameParams, exitedAt: number) {
  const s = stateAt(g, exitedAt + 1, exitedAt);
  expect(s.phase).toBe('ended');
  return s.phase === 'ended' ? s.tick : null;
}

beforeAll(async () => {
  loadEngineForTests();
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctxA = await browser.newContext({ viewport: { width: 1180, height: 1000 } });
  ctxB = await browser.newContext({ viewport: { width: 1180, height: 1000 } });
  ctxV = await browser.newContext({ viewport: { width: 1180, height: 1000 } });
  // Player B's clock runs 5 s fast: Date.now() and new Date() both, before any page script.
  await ctxB.addInitScript(`(() => {
    const SHIFT = ${SHIFT_MS};
    const RealDate = Date;
    const realNow = RealDate.now.bind(RealDate);
    class ShiftedDate extends RealDate {
      constructor(...args) { if (args.length === 0) { super(realNow() + SHIFT); } else { super(...args); } }
      static now() { return realNow() + SHIFT; }
    }
    globalThis.Date = ShiftedDate;
  })();`);
  for (const ctx of [ctxA, ctxB, ctxV]) {
    ctx.setDefaultTimeout(15_000);
    ctx.on('page', (p) => p.on('pageerror', (e) => report.pageErrors.push(`${p.url()}: ${e.message}`)));
  }
  [pageA, pageB, pageV] = await Promise.all([ctxA.newPage(), ctxB.newPage(), ctxV.newPage()]);
  for (const [name, page] of [
    ['A', pageA],
    ['B', pageB],
    ['V', pageV],
  ] as const) {
    page.on('request', (r) => {
      if (/\/edge\/game\/[^/]+\/results(\?|$)/.test(new URL(r.url()).pathname)) resultsReads[name].push(Date.now());
    });
  }
});

afterAll(async () => {
  try {
    writeFileSync(join(ARTIFACTS, 'multiplayer-report.json'), JSON.stringify(report, null, 2));
  } finally {
    await browser?.close();
  }
});

describe('a shared game: two players in two browsers (one clock 5 s fast) and a viewer', () => {
  it('A starts a shared game for two from the page and gets a join link', async () => {
    const res = await pageA.goto(BASE + '/', { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    report.offsets.A = await offsetOf(pageA);
    await pageA.getByLabel('User id').fill(userA);
    await pageA.getByTestId('shared-option').check();
    await pageA.getByTestId('max-players').fill('2');
    await pageA.getByTestId('join-window').selectOption({ label: 'for 1 minute' });
    await pageA.getByRole('button', { name: 'Start' }).click();
    await expect.poll(async () => (await readCounter(pageA)).phase, { timeout: 15_000 }).toMatch(/countdown|running/);
    const gameId = (await pageA.getByTestId('game-id').textContent())!.trim();
    const { status, body } = await edgeJson(`/edge/game/${encodeURIComponent(gameId)}`);
    expect(status).toBe(200);
    expect(body.userId).toBe(userA);
    expect(body.shared.maxPlayers).toBe(2);
    // "for 1 minute": the deadline is about a minute after the request, by the server's clock.
    expect(Math.abs(body.shared.joinDeadline - (body.createdAt + 60_000))).toBeLessThan(2_000);
    game = body as SharedGame;
    report.game = game;
    const link = (await pageA.getByTestId('join-link').getAttribute('href'))!;
    report.joinLink = link;
    const url = new URL(link);
    expect(url.searchParams.get('join')).toBe(gameId);
    expect(url.searchParams.get('region')).toBe(body.backendRegion ?? body.region);
    await expect.poll(() => pageA.getByRole('heading', { name: 'Your game' }).count()).toBe(1);
    await expect.poll(async () => (await readTable(pageA)).rows.map((r) => r.userId)).toEqual([userA]);
    await shot(pageA, 'mp-01-A-started');
  });

  it('B, clock 5 s fast, opens the join link and takes the second seat', async () => {
    const g = game!;
    const res = await pageB.goto(report.joinLink!, { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    const shifted = Number(await pageB.evaluate('Date.now()')) - Date.now();
    expect(Math.abs(shifted - SHIFT_MS)).toBeLessThan(1_000);
    report.offsets.B = await offsetOf(pageB);
    expect(Math.abs(report.offsets.B + SHIFT_MS)).toBeLessThan(250);
    await expect.poll(() => pageB.getByRole('heading', { name: 'Join this game' }).count()).toBe(1);
    expect(await pageB.getByTestId('join-game-id').inputValue()).toBe(g.gameId);
    await pageB.getByLabel('Play as').fill(userB);
    await pageB.getByTestId('take-seat').click();
    await expect.poll(() => pageB.getByRole('heading', { name: 'Your seat (seat 1)' }).count(), { timeout: 15_000 }).toBe(1);
    expect((await pageB.getByTestId('game-id').textContent())!.trim()).toBe(g.gameId);
    expect(await pageB.getByTestId('creator').textContent()).toBe(userA);
    expect(await pageB.getByTestId('shared-facts').textContent()).toContain(`you play as ${userB}`);
    // A reload of B's tab plays its seat again (?game= + the seat's token in sessionStorage).
    expect(pageB.url()).toBe(`${BASE}/?game=${encodeURIComponent(g.gameId)}`);
    await expect.poll(() => pageB.getByRole('button', { name: 'Exit my seat' }).count()).toBe(1);
    // Both seats in both players' tables: B reads them on load; A learns B's seat from the room's
    // push of the join, without asking /results again (it read them once, on load).
    const tookSeatAt = Date.now();
    for (const page of [pageB, pageA]) {
      await expect.poll(async () => (await readTable(page)).rows.map((r) => r.userId), { timeout: 10_000, interval: 25 }).toEqual([userA, userB]);
    }
    report.seatPushMs = Date.now() - tookSeatAt;
    expect(resultsReads.A.length, `A's /results reads: ${JSON.stringify(resultsReads)}`).toBe(1);
    expect(resultsReads.B.length, `B's /results reads: ${JSON.stringify(resultsReads)}`).toBe(1);
    await shot(pageB, 'mp-02-B-seated');
  });

  it('a third page asking for a seat is told the game is full, in a sentence', async () => {
    const g = game!;
    const page = await ctxV.newPage();
    await page.goto(report.joinLink!, { waitUntil: 'domcontentloaded' });
    await offsetOf(page);
    await page.getByLabel('Play as').fill(`e2e-mp-c-${Date.now().toString(36)}`);
    await page.getByTestId('take-seat').click();
    const alert = page.getByTestId('page-error');
    await expect.poll(() => alert.count(), { timeout: 12_000 }).toBe(1);
    const message = (await alert.locator('p').textContent())!;
    report.refusal = message;
    expect(message).toBe('Joining the game failed: every seat of this game is taken; you can still watch it (game_full, HTTP 409)');
    expect(await page.getByTestId('game-id').count()).toBe(0);
    await page.close();
    expect(g.shared.maxPlayers).toBe(2);
  });

  it('V watches by the game link', async () => {
    const g = game!;
    const res = await pageV.goto(`${BASE}/?game=${encodeURIComponent(g.gameId)}`, { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    report.offsets.V = await offsetOf(pageV);
    await expect.poll(() => pageV.getByRole('heading', { name: 'Watching a game' }).count(), { timeout: 15_000 }).toBe(1);
    await expect.poll(async () => (await readTable(pageV)).rows.map((r) => r.userId), { timeout: 10_000 }).toEqual([userA, userB]);
    for (const page of [pageA, pageB, pageV]) {
      await expect.poll(() => page.getByTestId('live-status').textContent(), { timeout: 10_000 }).toContain('live: open');
    }
    // Both players are players of the room, by seat (B's seat token made B's socket seat 1's).
    const players = (page: Page) =>
      page.evaluate(
        `[...document.querySelectorAll('[data-testid="presence-player"]')].map((li) => [li.getAttribute('data-seat'), li.textContent.replace(/\\s*\\d+ ms$/, '')])`,
      );
    for (const page of [pageA, pageB, pageV]) {
      await expect
        .poll(() => players(page), { timeout: 10_000 })
        .toEqual([
          ['0', `player ${userA} (seat 0)`],
          ['1', `player ${userB} (seat 1)`],
        ]);
    }
    expect(await pageB.getByTestId('live-notice').count()).toBe(0);
  });

  it(`all three show the same step and value at ${INSTANTS} instants, the engine's on the real clock`, async () => {
    const g = game!;
    await expect.poll(async () => (await readCounter(pageA)).phase, { timeout: g.startAt - Date.now() + 5_000 }).toBe('running');
    async function readAll() {
      const before = Date.now();
      const [a, b, v] = await Promise.all([readCounter(pageA), readCounter(pageB), readCounter(pageV)]);
      const after = Date.now();
      const lo = Math.floor((before - g.startAt) / g.tickMs);
      const hi = Math.floor((after - g.startAt) / g.tickMs);
      const problems: string[] = [];
      const all = [a, b, v];
      if (all.some((c) => c.phase !== 'running')) problems.push(`phases ${all.map((c) => c.phase).join('/')}`);
      for (const [i, c] of all.entries()) {
        for (const d of all.slice(i + 1)) {
          if (Math.abs(c.step! - d.step!) > 1) problems.push(`steps ${c.step} vs ${d.step}`);
          if (c.step === d.step && (c.value !== d.value || c.round !== d.round)) problems.push('same step, different value');
        }
        if (c.step! < lo - 1 || c.step! > hi + 1) problems.push(`step ${c.step} outside ${lo}..${hi} ±1`);
      }
      return { before, after, a, b, v, problems };
    }
    for (let i = 0; i < INSTANTS; i++) {
      await sleep(300 + Math.floor(Math.random() * 400));
      // A renderer starved for a tick by a busy machine is re-read (at most twice).
      let read = await readAll();
      let attempts = 1;
      while (read.problems.length > 0 && attempts < 3) {
        await sleep(30);
        read = await readAll();
        attempts++;
      }
      expect(read.problems, `instant ${i + 1}`).toEqual([]);
      for (const c of [read.a, read.b, read.v]) {
        const t = tickAt(g, c.step!);
        expect([c.value, c.round]).toEqual([t.value, t.round]);
      }
      report.instants.push({ instant: i + 1, realMs: [read.before, read.after], a: read.a, b: read.b, v: read.v, attempts });
    }
    await Promise.all([shot(pageA, 'mp-03-A'), shot(pageB, 'mp-03-B-clock+5s'), shot(pageV, 'mp-03-V')]);
    // Seconds later (the join window is a minute): still one /results read per page, no polling.
    expect(resultsReads, JSON.stringify(resultsReads)).toEqual({ A: [resultsReads.A[0]], B: [resultsReads.B[0]], V: [resultsReads.V[0]] });
  });

  it("B exits its own seat: its result is the engine's at its exitedAt, pushed to A and V while the game goes on", async () => {
    const g = game!;
    await pageB.getByRole('button', { name: 'Exit my seat' }).click();
    const clickAt = Date.now();
    await expect.poll(async () => (await readResult(pageB)).exitedAt ?? null, { timeout: 10_000 }).not.toBeNull();
    await expect.poll(async () => (await readCounter(pageB)).phase, { timeout: 5_000 }).toBe('ended');
    const result = await readResult(pageB);
    const exitedAt = Number(result.exitedAt);
    const tick = engineAt(g, exitedAt)!;
    expect({ step: Number(result.step), value: Number(result.value) }).toEqual({ step: tick.step, value: tick.value });
    // B's own counter froze at that step.
    const shown = await readCounter(pageB);
    expect(shown.phase).toBe('ended');
    expect(shown.stopped).toBe(true);
    expect({ step: shown.step, value: shown.value, round: shown.round }).toEqual({ step: tick.step, value: tick.value, round: tick.round });
    await expect.poll(() => pageB.getByTestId('final').textContent()).toContain('The game goes on for the other seats.');
    // The room pushes B's result to A and V; the game goes on for them.
    const pushLagMs: Record<string, number> = {};
    await Promise.all(
      (
        [
          ['A', pageA],
          ['V', pageV],
          ['B', pageB],
        ] as const
      ).map(async ([name, page]) => {
        await expect
          .poll(async () => (await readTable(page)).rows.find((r) => r.userId === userB)?.exitedAt ?? null, { timeout: 10_000, interval: 25 })
          .toBe(exitedAt);
        pushLagMs[name] = Date.now() - clickAt;
      }),
    );
    for (const page of [pageA, pageV]) {
      const c = await readCounter(page);
      expect(c.phase).toBe('running');
      const row = (await readTable(page)).rows.find((r) => r.userId === userB)!;
      expect({ step: row.step, value: row.value }).toEqual({ step: tick.step, value: tick.value });
    }
    report.exits.B = { exitedAt, shown, result, engine: tick, pushLagMs };
    await Promise.all([shot(pageB, 'mp-04-B-exited'), shot(pageA, 'mp-04-A-still-playing')]);
  });

  it("A exits last: its result is the engine's at its exitedAt; the game ends and all three show the same final table", async () => {
    const g = game!;
    await sleep(700);
    await pageA.getByRole('button', { name: 'Exit my seat' }).click();
    await expect.poll(async () => (await readResult(pageA)).exitedAt ?? null, { timeout: 10_000 }).not.toBeNull();
    await expect.poll(async () => (await readCounter(pageA)).phase, { timeout: 5_000 }).toBe('ended');
    const result = await readResult(pageA);
    const exitedAt = Number(result.exitedAt);
    const tick = engineAt(g, exitedAt)!;
    expect({ step: Number(result.step), value: Number(result.value) }).toEqual({ step: tick.step, value: tick.value });
    const shown = await readCounter(pageA);
    expect({ phase: shown.phase, step: shown.step, value: shown.value }).toEqual({ phase: 'ended', step: tick.step, value: tick.value });
    report.exits.A = { exitedAt, shown, result, engine: tick };
    expect(exitedAt).toBeGreaterThan(report.exits.B.exitedAt);

    // The last seat out ends the game: V stops at A's exit, the engine's final step.
    await expect.poll(async () => (await readCounter(pageV)).phase, { timeout: 10_000 }).toBe('ended');
    const v = await readCounter(pageV);
    expect({ step: v.step, value: v.value, stopped: v.stopped }).toEqual({ step: tick.step, value: tick.value, stopped: true });

    // The origin's results: final, both seats, each the engine's state at its exitedAt.
    const { status, body } = await edgeJson(`/edge/game/${encodeURIComponent(g.gameId)}/results`);
    expect(status).toBe(200);
    expect(body.status).toBe('exited');
    report.results = body;
    const expected: Row[] = body.seats.map((s: { seat: number; userId: string; result: { exitedAt: number; final: { step: number; value: number } } }) => ({
      seat: `seat-${s.seat}`,
      userId: s.userId,
      exitedAt: s.result.exitedAt,
      step: s.result.final.step,
      value: s.result.final.value,
    }));
    expect(expected).toEqual([
      { seat: 'seat-0', userId: userA, exitedAt, step: tick.step, value: tick.value },
      { seat: 'seat-1', userId: userB, exitedAt: report.exits.B.exitedAt, step: (report.exits.B.engine as { step: number }).step, value: (report.exits.B.engine as { value: number }).value },
    ]);
    report.finalTables = {};
    for (const [name, page] of [
      ['A', pageA],
      ['B', pageB],
      ['V', pageV],
    ] as const) {
      await expect.poll(async () => (await readTable(page)).final, { timeout: 10_000 }).toBe(true);
      const table = await readTable(page);
      report.finalTables[name] = table.rows;
      expect(table.rows, `${name}'s final table`).toEqual(expected);
      // The chart marks both exits.
      await expect.poll(() => page.locator('[data-testid="value-chart"] circle[data-exit]').count()).toBe(2);
    }
    await Promise.all([shot(pageA, 'mp-05-A-final'), shot(pageB, 'mp-05-B-final'), shot(pageV, 'mp-05-V-final')]);
  });

  it('no page threw', () => {
    expect(report.pageErrors).toEqual([]);
  });
});
