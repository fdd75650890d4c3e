/**
 * End to end, a tournament (issue 22) in two real headless Chromiums against the full local stack
 * (Cassandra, three origins, the edge Worker serving this page). The operator creates a 2-round
 * tournament (rounds of 12 s, tables of 2 seats) with the stack's ADMIN_TOKEN at an origin's
 * `POST /admin/tournaments`. A and B (B's clock 5 s fast) open `/?tournament=<id>`: both show the
 * schedule, and the "Join round 0" button appears on both when the round's joins open by the
 * server's clock. A then B join round 0 and sit at the same table, playing it as a shared game.
 * B, still seated, is refused round 1 with a sentence (already_playing). Each exits at a
 * different time (results the engine's at each exitedAt); both join round 1 and sit at one table
 * again; A exits, B stays to the round's end (scoring the engine's value then). After the last
 * round both pages show the same final standings, equal to the origin's
 * `/tournaments/{id}/standings` and to the totals recomputed here from the engine.
 * Started by run.sh (`npm run e2e -- tournament` for this file alone).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateAt, type GameParams } from '../src/engine/engine';
import { loadEngineForTests, repoRoot } from '../test/helpers';

const BASE = (process.env.E2E_BASE_URL ?? 'http://127.0.0.1:18787').replace(/\/$/, '');
const ORIGIN = (process.env.E2E_ORIGIN_URL ?? 'http://127.0.0.1:18081').replace(/\/$/, '');
const ADMIN_TOKEN_FILE = process.env.E2E_ADMIN_TOKEN_FILE ?? join(repoRoot, '.run', 'e2e', 'secret-admin_token');
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? join(repoRoot, 'artifacts', 'e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHIFT_MS = 5_000;
/** From the creation to round 0's joins opening: both pages load and sync their clocks first. */
const LEAD_MS = 12_000;
const INTERVAL_MS = 12_000;
const TICK_MS = 100;

interface Counter {
  phase: string;
  step: number | null;
  value: number | null;
  serverNow: number;
  stopped: boolean;
}

interface Standing {
  rank: number;
  userId: string;
  total: number;
  roundsPlayed: number;
}

interface RoundView {
  round: number;
  joinsOpenAt: number;
  startAt: number;
  endAt: number;
  state: string;
}

interface Table extends GameParams {
  gameId: string;
  userId: string;
}

const report: {
  baseUrl: string;
  tournament?: { tournamentId: string; schedule: RoundView[] };
  offsets: Record<string, number>;
  buttonShownAt: Record<string, number>;
  tables: Record<string, Table>;
  refusal?: string;
  scores: Record<string, { round: number; exitedAt: number | null; engine: number; page: number }>;
  standings: Record<string, Standing[]>;
  origin?: unknown;
  pageErrors: string[];
} = { baseUrl: BASE, offsets: {}, buttonShownAt: {}, tables: {}, scores: {}, standings: {}, pageErrors: [] };

let browser: Browser;
let ctxA: BrowserContext;
let ctxB: BrowserContext;
let pageA: Page;
let pageB: Page;
let tournamentId = '';
let schedule: RoundView[] = [];
const stamp = Date.now().toString(36);
const userA = `e2e-t-a-${stamp}`;
const userB = `e2e-t-b-${stamp}`;

function shot(page: Page, name: string) {
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until the real clock (the servers', on this machine) reaches `at`. */
function sleepUntil(at: number) {
  return sleep(Math.max(0, at - Date.now()));
}

async function http(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
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
    if (!el) return { phase: 'none', step: null, value: null, serverNow: 0, stopped: false };
    const num = (k) => (el.getAttribute(k) === '' || el.getAttribute(k) === null ? null : Number(el.getAttribute(k)));
    return { phase: el.getAttribute('data-phase'), step: num('data-step'), value: num('data-value'), serverNow: Number(el.getAttribute('data-server-now')), stopped: el.getAttribute('data-stopped') === 'true' };
  })()`);
}

/** "Your result" as a page shows it. */
function readResult(page: Page): Promise<{ exitedAt: number | null; step: number | null; value: number | null }> {
  return page.evaluate(`(() => {
    const el = document.querySelector('[data-testid="my-result"]');
    const num = (k) => (!el || el.getAttribute(k) === '' || el.getAttribute(k) === null ? null : Number(el.getAttribute(k)));
    return { exitedAt: num('data-exited-at'), step: num('data-step'), value: num('data-value') };
  })()`);
}

/** The players of the seats table, in seat order. */
function seatedUsers(page: Page): Promise<string[]> {
  return page.evaluate(`[...document.querySelectorAll('[data-testid="seats"] tbody tr')].map((tr) => tr.getAttribute('data-user'))`);
}

/** The standings as a page shows them, and whether it says they are final. */
function readStandings(page: Page): Promise<{ final: boolean; asOf: number | null; rows: Standing[] }> {
  return page.evaluate(`(() => {
    const table = document.querySelector('[data-testid="standings"]');
    if (!table) return { final: false, asOf: null, rows: [] };
    const rows = [...table.querySelectorAll('tr[data-testid="standing"]')].map((tr) => ({
      rank: Number(tr.getAttribute('data-rank')),
      userId: tr.getAttribute('data-user'),
      total: Number(tr.getAttribute('data-total')),
      roundsPlayed: Number(tr.getAttribute('data-rounds')),
    }));
    const asOf = table.getAttribute('data-as-of');
    return { final: table.getAttribute('data-final') === 'true', asOf: asOf ? Number(asOf) : null, rows };
  })()`);
}

async function offsetOf(page: Page): Promise<number> {
  const el = page.getByTestId('clock-offset');
  await expect.poll(async () => (await el.getAttribute('data-offset')) ?? '', { timeout: 15_000 }).not.toBe('');
  return Number(await el.getAttribute('data-offset'));
}

/** The game a page plays (its id, then the edge's view of it). */
async function tableOf(page: Page): Promise<Table> {
  const gameId = (await page.getByTestId('game-id').textContent())!.trim();
  const { status, body } = await http(`${BASE}/edge/game/${encodeURIComponent(gameId)}`);
  expect(status).toBe(200);
  return body as Table;
}

/** The engine's value for a seat that left at `at` (its exitedAt, or the round's end). */
function engineValue(g: GameParams, at: number): number {
  const s = stateAt(g, at + 1, at);
  return s.phase === 'ended' && s.tick ? s.tick.value : 0;
}

/** Clicks "Join round `round`" on a page and waits for its seat at a table. */
async function joinRound(page: Page, round: number, user: string): Promise<Table> {
  const field = page.getByTestId('tournament-user-id');
  if ((await field.inputValue()) !== user) await field.fill(user);
  await page.getByTestId(`join-round-${round}`).click();
  await expect.poll(() => page.getByRole('button', { name: 'Exit my seat' }).count(), { timeout: 15_000 }).toBe(1);
  await expect.poll(async () => (await page.getByTestId('table-round').getAttribute('data-round')) ?? '', { timeout: 10_000 }).toBe(String(round));
  expect(new URL(page.url()).searchParams.get('tournament')).toBe(tournamentId);
  return tableOf(page);
}

/** Exits a page's seat; returns its result, checked against the engine at its exitedAt. */
async function exitSeat(page: Page, table: Table): Promise<{ exitedAt: number; value: number }> {
  await page.getByRole('button', { name: 'Exit my seat' }).click();
  await expect.poll(async () => (await readResult(page)).exitedAt, { timeout: 10_000 }).not.toBeNull();
  await expect.poll(async () => (await readCounter(page)).phase, { timeout: 5_000 }).toBe('ended');
  const result = await readResult(page);
  const engine = engineValue(table, result.exitedAt!);
  expect(result.value).toBe(engine);
  const counter = await readCounter(page);
  expect({ phase: counter.phase, value: counter.value }).toEqual({ phase: 'ended', value: engine });
  return { exitedAt: result.exitedAt!, value: engine };
}

async function backToTournament(page: Page) {
  await page.getByTestId('back-to-tournament').click();
  await expect.poll(() => page.getByTestId('schedule').count(), { timeout: 10_000 }).toBe(1);
}

beforeAll(async () => {
  loadEngineForTests();
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctxA = await browser.newContext({ viewport: { width: 1180, height: 1100 } });
  ctxB = await browser.newContext({ viewport: { width: 1180, height: 1100 } });
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
  for (const ctx of [ctxA, ctxB]) {
    ctx.setDefaultTimeout(15_000);
    ctx.on('page', (p) => p.on('pageerror', (e) => report.pageErrors.push(`${p.url()}: ${e.message}`)));
  }
  [pageA, pageB] = await Promise.all([ctxA.newPage(), ctxB.newPage()]);
});

afterAll(async () => {
  try {
    writeFileSync(join(ARTIFACTS, 'tournament-report.json'), JSON.stringify(report, null, 2));
  } finally {
    await browser?.close();
  }
});

describe('a tournament: two browsers (one clock 5 s fast) play two rounds and see the same standings', () => {
  it("the operator creates a 2-round tournament with the stack's ADMIN_TOKEN", async () => {
    const token = readFileSync(ADMIN_TOKEN_FILE, 'utf8').trim();
    const firstStartAt = Date.now() + LEAD_MS + INTERVAL_MS;
    const body = {
      name: `E2E cup ${stamp}`,
      rounds: 2,
      firstStartAt,
      intervalMs: INTERVAL_MS,
      tickMs: TICK_MS,
      breakEvery: 20,
      algorithm: 'mix32-v1',
      seatsPerTable: 2,
    };
    // Operator only.
    const refused = await http(`${ORIGIN}/admin/tournaments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(refused.status).toBe(401);
    const { status, body: t } = await http(`${ORIGIN}/admin/tournaments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    expect(status, JSON.stringify(t)).toBe(201);
    tournamentId = t.tournamentId;
    schedule = t.schedule;
    expect(schedule.map((r) => r.startAt)).toEqual([firstStartAt, firstStartAt + INTERVAL_MS]);
    report.tournament = { tournamentId, schedule };
  });

  it('both pages show the schedule; "Join round 0" appears on both when its joins open by the server clock', async () => {
    const link = `${BASE}/?tournament=${encodeURIComponent(tournamentId)}`;
    for (const [name, page] of [
      ['A', pageA],
      ['B', pageB],
    ] as const) {
      const res = await page.goto(link, { waitUntil: 'domcontentloaded' });
      expect(res?.status()).toBe(200);
      report.offsets[name] = await offsetOf(page);
      await expect.poll(() => page.getByTestId('tournament-name').textContent(), { timeout: 10_000 }).toBe(`E2E cup ${stamp}`);
    }
    const shifted = Number(await pageB.evaluate('Date.now()')) - Date.now();
    expect(Math.abs(shifted - SHIFT_MS)).toBeLessThan(1_000);
    expect(Math.abs(report.offsets.B + SHIFT_MS)).toBeLessThan(250);
    const r0 = schedule[0];
    expect(Date.now()).toBeLessThan(r0.joinsOpenAt - 500);
    for (const page of [pageA, pageB]) {
      expect(await page.getByTestId('round-0').getAttribute('data-state')).toBe('upcoming');
      expect(await page.getByTestId('join-round-0').count()).toBe(0);
      // The countdown is to round 0's joins.
      expect(await page.getByTestId('next-moment').getAttribute('data-at')).toBe(String(r0.joinsOpenAt));
      expect(await page.getByTestId('tournament-countdown').textContent()).toMatch(/^\d+\.\d s$/);
    }
    await Promise.all([shot(pageA, 't-01-A-schedule'), shot(pageB, 't-01-B-schedule-clock+5s')]);
    // The button appears at the server's joinsOpenAt on both (B's own clock would say 5 s early).
    await Promise.all(
      (
        [
          ['A', pageA],
          ['B', pageB],
        ] as const
      ).map(async ([name, page]) => {
        await expect.poll(() => page.getByTestId('join-round-0').count(), { timeout: r0.joinsOpenAt - Date.now() + 5_000, interval: 50 }).toBe(1);
        report.buttonShownAt[name] = Date.now() - r0.joinsOpenAt;
      }),
    );
    for (const lag of Object.values(report.buttonShownAt)) {
      expect(lag).toBeGreaterThan(-300);
      expect(lag).toBeLessThan(1_500);
    }
  });

  it('A then B join round 0 and sit at the same table, played as a shared game', async () => {
    const tableA = await joinRound(pageA, 0, userA);
    const tableB = await joinRound(pageB, 0, userB);
    expect(tableB.gameId).toBe(tableA.gameId);
    expect(tableA.startAt).toBe(schedule[0].startAt);
    report.tables.round0 = tableA;
    expect(await pageB.getByRole('heading', { name: 'Your seat (seat 1)' }).count()).toBe(1);
    for (const page of [pageA, pageB]) {
      await expect.poll(() => seatedUsers(page), { timeout: 10_000 }).toEqual([userA, userB]);
      expect(await page.getByTestId('table-round').getAttribute('data-end-at')).toBe(String(schedule[0].endAt));
    }
    await Promise.all([shot(pageA, 't-02-A-table'), shot(pageB, 't-02-B-table')]);
  });

  it('B, still seated, is refused round 1 in a sentence, and goes back to its table', async () => {
    await sleepUntil(schedule[0].startAt + 300);
    await backToTournament(pageB);
    expect(await pageB.getByTestId('my-table').textContent()).toContain('have a seat in round 0');
    await expect.poll(() => pageB.getByTestId('join-round-1').count(), { timeout: 5_000 }).toBe(1);
    expect(await pageB.getByTestId('round-0').getAttribute('data-state')).toBe('playing');
    await pageB.getByTestId('join-round-1').click();
    const alert = pageB.getByTestId('page-error');
    await expect.poll(() => alert.count(), { timeout: 12_000 }).toBe(1);
    report.refusal = (await alert.locator('p').textContent())!;
    expect(report.refusal).toBe(
      'Joining round 1 failed: you are still seated in another game (a table of an earlier round, or a game of your own): exit it first, then join (already_playing, HTTP 409)',
    );
    await shot(pageB, 't-03-B-refused');
    await pageB.getByTestId('open-table').click();
    await expect.poll(() => pageB.getByRole('button', { name: 'Exit my seat' }).count()).toBe(1);
    expect(await readCounter(pageB)).toMatchObject({ phase: 'running' });
  });

  it('each exits round 0 at a different time, with the engine’s value at its exitedAt', async () => {
    const table = report.tables.round0;
    await sleepUntil(schedule[0].startAt + 2_000);
    const a = await exitSeat(pageA, table);
    await sleep(1_700);
    const b = await exitSeat(pageB, table);
    expect(b.exitedAt - a.exitedAt).toBeGreaterThan(1_000);
    report.scores['A0'] = { round: 0, exitedAt: a.exitedAt, engine: a.value, page: a.value };
    report.scores['B0'] = { round: 0, exitedAt: b.exitedAt, engine: b.value, page: b.value };
    // Both see both exits in the table.
    for (const page of [pageA, pageB]) {
      await expect
        .poll(() => page.evaluate(`[...document.querySelectorAll('[data-testid="seats"] tbody tr')].map((tr) => tr.getAttribute('data-value'))`), { timeout: 10_000 })
        .toEqual([String(a.value), String(b.value)]);
    }
  });

  it('both join round 1 at one table; A exits, B stays to the end and scores the engine’s value then', async () => {
    await backToTournament(pageA);
    const tableA = await joinRound(pageA, 1, userA);
    await backToTournament(pageB);
    const tableB = await joinRound(pageB, 1, userB);
    expect(tableB.gameId).toBe(tableA.gameId);
    expect(tableA.gameId).not.toBe(report.tables.round0.gameId);
    expect(tableA.startAt).toBe(schedule[1].startAt);
    report.tables.round1 = tableA;
    await sleepUntil(schedule[1].startAt + 2_500);
    const a = await exitSeat(pageA, tableA);
    report.scores['A1'] = { round: 1, exitedAt: a.exitedAt, engine: a.value, page: a.value };
    // B is still in at the round's end: the page shows the engine's value then as its score.
    const end = schedule[1].endAt;
    await sleepUntil(end + 200);
    const engine = engineValue(tableB, end);
    await expect.poll(async () => (await pageB.getByTestId('table-round').getAttribute('data-end-score')) ?? '', { timeout: 5_000 }).toBe(String(engine));
    expect(await pageB.getByTestId('end-score').textContent()).toBe(String(engine));
    report.scores['B1'] = { round: 1, exitedAt: null, engine, page: engine };
    await shot(pageB, 't-04-B-round-over');
  });

  it("after the last round both pages show the same final standings: the origin's, and the engine's totals", { timeout: 90_000 }, async () => {
    await backToTournament(pageB);
    await backToTournament(pageA);
    for (const [name, page] of [
      ['A', pageA],
      ['B', pageB],
    ] as const) {
      // The edge may keep a copy from before the end for its CACHE_TTL_SECONDS (30 s by default).
      await expect.poll(async () => (await readStandings(page)).final, { timeout: 45_000, interval: 250 }).toBe(true);
      report.standings[name] = (await readStandings(page)).rows;
    }
    const { status, body } = await http(`${ORIGIN}/tournaments/${encodeURIComponent(tournamentId)}/standings`);
    expect(status).toBe(200);
    report.origin = body;
    expect(body.roundsFinished).toBe(2);
    const totalA = report.scores.A0.engine + report.scores.A1.engine;
    const totalB = report.scores.B0.engine + report.scores.B1.engine;
    const lines = [
      { userId: userA, total: totalA, roundsPlayed: 2 },
      { userId: userB, total: totalB, roundsPlayed: 2 },
    ].sort((x, y) => y.total - x.total || x.userId.localeCompare(y.userId));
    const expected: Standing[] = lines.map((l) => ({ rank: lines.filter((o) => o.total > l.total).length + 1, ...l }));
    expect(body.entries).toEqual(expected);
    expect(report.standings.A).toEqual(expected);
    expect(report.standings.B).toEqual(expected);
    for (const page of [pageA, pageB]) {
      expect(await page.getByTestId('next-moment').getAttribute('data-at')).toBe('');
      expect(await page.getByTestId('round-1').getAttribute('data-state')).toBe('finished');
    }
    await Promise.all([shot(pageA, 't-05-A-final-standings'), shot(pageB, 't-05-B-final-standings')]);
  });

  it('no page threw', () => {
    expect(report.pageErrors).toEqual([]);
  });
});
