/**
 * End to end, a sealed game (`sealed-v1`, issue 24) in two real headless Chromiums against the
 * full local stack: A starts a sealed game from the page; B, whose clock is 5 s fast, joins
 * by link after a few rounds (a late joiner: one key gives it every earlier round). Both show
 * the commitment from the start, settle each round when the room pushes its key (never before
 * its break, with at most a tick or two shown past it), and show the same settled rounds, which
 * are the origin's (read through the edge and checked here with the engine). A exits; both
 * pages stop at the same final step and show "verified against the commitment".
 * Started by run.sh (`npm run e2e -- sealed` for this file alone).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealedBreaks, sealedTickAt, sealedVerifyChain } from '../src/engine/generated/shared_engine.js';
import { loadEngineForTests, repoRoot } from '../test/helpers';

const BASE = (process.env.E2E_BASE_URL ?? 'http://127.0.0.1:18787').replace(/\/$/, '');
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? join(repoRoot, 'artifacts', 'e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHIFT_MS = 5_000;
/** Rounds B must see settle live (after it joined) before A exits. */
const LIVE_ROUNDS = 3;

interface SealedGameView {
  gameId: string;
  userId: string;
  startAt: number;
  tickMs: number;
  breakEvery: number;
  algorithm: string;
  commitment: string;
  rounds: number;
  root?: string;
  exitedAt?: number;
  status: string;
}

/** What a page shows of the sealed game (data attributes of the counter and SealedPanel). */
interface Shown {
  phase: string;
  step: number | null;
  value: number | null;
  round: number | null;
  settled: boolean;
  stopped: boolean;
  commitment: string | null;
  revealed: number;
  verification: string | null;
  rejected: number;
  maxRollback: number;
  /** The settled rounds listed, newest first: [round, break step, ticks rolled back]. */
  rounds: [number, number, number][];
}

const report: {
  baseUrl: string;
  game?: SealedGameView;
  offsets: Record<string, number>;
  /** Each round as a page first listed it while watched; `live`: not yet listed at the first look. */
  settles: { page: string; round: number; breakStep: number; breakAtMs: number; seenAtMs: number; rolledBack: number; live: boolean }[];
  tooEarly?: { status: number; retryAfter: string | null; body: unknown };
  final?: { a: Shown; b: Shown; exitedAt: number; keys: number };
  pageErrors: string[];
} = { baseUrl: BASE, offsets: {}, settles: [], pageErrors: [] };

let browser: Browser;
let ctxA: BrowserContext;
let ctxB: BrowserContext;
let pageA: Page;
let pageB: Page;
let game: SealedGameView | null = null;

function shot(page: Page, name: string) {
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

async function edge(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(BASE + path, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, headers: res.headers, body };
}

function read(page: Page): Promise<Shown> {
  return page.evaluate(`(() => {
    const c = document.querySelector('[data-testid="counter"]');
    const s = document.querySelector('[data-testid="sealed"]');
    const num = (el, k) => (el && el.getAttribute(k) !== null && el.getAttribute(k) !== '' ? Number(el.getAttribute(k)) : null);
    const commitment = document.querySelector('[data-testid="sealed-commitment"]');
    return {
      phase: c ? c.getAttribute('data-phase') : 'none',
      step: num(c, 'data-step'),
      value: num(c, 'data-value'),
      round: num(c, 'data-round'),
      settled: c ? c.getAttribute('data-settled') === 'true' : false,
      stopped: c ? c.getAttribute('data-stopped') === 'true' : false,
      commitment: commitment ? commitment.textContent.trim() : null,
      revealed: num(s, 'data-revealed') ?? -1,
      verification: s ? s.getAttribute('data-verification') : null,
      rejected: num(s, 'data-rejected') ?? -1,
      maxRollback: num(s, 'data-max-rollback') ?? -1,
      rounds: Array.from(document.querySelectorAll('[data-testid="sealed-rounds"] li')).map((li) => [
        Number(li.getAttribute('data-round')),
        Number(li.getAttribute('data-step')),
        Number(li.getAttribute('data-rolled-back')),
      ]),
    };
  })()`);
}

/** Every public key of the game from round 1, through the edge (all pages). */
async function publicKeys(g: SealedGameView): Promise<string[]> {
  const keys: string[] = [];
  for (;;) {
    const r = await edge(`/edge/game/${encodeURIComponent(g.gameId)}/rounds?from=${keys.length + 1}`);
    if (r.status === 425) return keys;
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.commitment).toBe(g.commitment);
    for (const k of r.body.rounds as { round: number; key: string }[]) {
      expect(k.round).toBe(keys.length + 1);
      keys.push(k.key);
    }
    if ((r.body.rounds as unknown[]).length < 1_000) return keys;
  }
}

/**
 * Watches both pages until each has `target` rounds settled, recording when each round first
 * appeared on each page, and checking at every look that no page shows a round settled before
 * its break instant (real time: the pages' clocks are the server's, whatever the machine's).
 */
async function watchUntil(g: SealedGameView, target: number, timeoutMs: number) {
  const seen = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  for (let look = 0; ; look++) {
    const [a, b] = await Promise.all([read(pageA), read(pageB)]);
    const now = Date.now();
    for (const [name, s] of [
      ['A', a],
      ['B', b],
    ] as const) {
      for (const [round, breakStep, rolledBack] of s.rounds) {
        const breakAtMs = g.startAt + breakStep * g.tickMs;
        // A settled round's break is in the past (the key is never out before it).
        expect(breakAtMs, `${name} round ${round}`).toBeLessThanOrEqual(now);
        const id = `${name}:${round}`;
        if (!seen.has(id)) {
          seen.set(id, now);
          report.settles.push({ page: name, round, breakStep, breakAtMs, seenAtMs: now, rolledBack, live: look > 0 });
        }
      }
    }
    if (a.revealed >= target && b.revealed >= target) return { a, b };
    if (now > deadline) throw new Error(`rounds settled: A ${a.revealed}, B ${b.revealed}; wanted ${target}`);
    await sleep(40);
  }
}

beforeAll(async () => {
  loadEngineForTests();
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
  });
  ctxA = await browser.newContext({ viewport: { width: 1180, height: 1100 } });
  // Browser B's clock runs 5 s fast: Date.now() and new Date() both, before any page script.
  ctxB = await browser.newContext({ viewport: { width: 1180, height: 1100 } });
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
  pageA = await ctxA.newPage();
  pageB = await ctxB.newPage();
});

afterAll(async () => {
  try {
    writeFileSync(join(ARTIFACTS, 'sealed-report.json'), JSON.stringify(report, null, 2));
  } finally {
    await browser?.close();
  }
});

describe('a sealed game, two browsers (one clock 5 s fast)', () => {
  it('A starts a sealed game from the page and shows its commitment from the countdown on', async () => {
    const res = await pageA.goto(BASE + '/', { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    const offset = pageA.getByTestId('clock-offset');
    await expect.poll(async () => (await offset.getAttribute('data-offset')) ?? '', { timeout: 15_000 }).not.toBe('');
    const userId = `e2e-sealed-${Date.now().toString(36)}`;
    await pageA.getByLabel('User id').fill(userId);
    await pageA.getByTestId('sealed-option').check();
    await pageA.getByRole('button', { name: 'Start' }).click();
    await expect.poll(async () => (await read(pageA)).phase, { timeout: 15_000 }).toMatch(/countdown|running/);
    const gameId = (await pageA.getByTestId('game-id').textContent())!.trim();
    const { status, body } = await edge(`/edge/game/${encodeURIComponent(gameId)}`);
    expect(status).toBe(200);
    expect(body.algorithm).toBe('sealed-v1');
    expect(body.commitment).toMatch(/^[0-9a-f]{64}$/);
    expect(body.root).toBeUndefined();
    game = body as SealedGameView;
    report.game = game;
    const shown = await read(pageA);
    expect(shown.commitment).toBe(body.commitment);
    expect(shown.verification).toBe('running');
    await shot(pageA, 'sealed-01-start');
  });

  it('A settles the first rounds as their keys arrive, never before the break, rolling back at most a couple of ticks', async () => {
    const g = game!;
    await expect.poll(async () => (await read(pageA)).phase, { timeout: g.startAt - Date.now() + 5_000 }).toBe('running');
    // A round not over yet: 425 with when to ask again, from the edge.
    const early = await edge(`/edge/game/${encodeURIComponent(g.gameId)}/rounds?from=${g.rounds}`);
    report.tooEarly = { status: early.status, retryAfter: early.headers.get('retry-after'), body: early.body };
    expect(early.status).toBe(425);
    expect(early.body.error.code).toBe('too_early');
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThanOrEqual(0);
    const deadline = Date.now() + 40_000;
    let a = await read(pageA);
    while (a.revealed < 2 && Date.now() < deadline) {
      await sleep(50);
      a = await read(pageA);
      for (const [round, breakStep] of a.rounds) expect(g.startAt + breakStep * g.tickMs, `round ${round}`).toBeLessThanOrEqual(Date.now());
    }
    expect(a.revealed).toBeGreaterThanOrEqual(2);
    expect(a.rejected).toBe(0);
    expect(a.maxRollback).toBeLessThanOrEqual(3);
    await shot(pageA, 'sealed-02-A-rounds');
  });

  it('B, clock 5 s fast, joins late by link and shows every round so far from one key', async () => {
    const g = game!;
    const res = await pageB.goto(`${BASE}/?game=${encodeURIComponent(g.gameId)}`, { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    const shifted = Number(await pageB.evaluate('Date.now()')) - Date.now();
    expect(Math.abs(shifted - SHIFT_MS)).toBeLessThan(1_000);
    const offsetEl = pageB.getByTestId('clock-offset');
    await expect.poll(async () => (await offsetEl.getAttribute('data-offset')) ?? '', { timeout: 15_000 }).not.toBe('');
    report.offsets.B = Number(await offsetEl.getAttribute('data-offset'));
    await expect.poll(async () => (await read(pageB)).phase, { timeout: 15_000 }).toBe('running');
    const before = (await read(pageA)).revealed;
    await expect.poll(async () => (await read(pageB)).revealed, { timeout: 10_000 }).toBeGreaterThanOrEqual(before);
    const b = await read(pageB);
    expect(b.commitment).toBe(g.commitment);
    expect(b.rejected).toBe(0);
    // Its first keys rolled nothing back (it had not shown those rounds).
    for (const [round, , rolledBack] of b.rounds) if (round <= before) expect(rolledBack, `B round ${round}`).toBe(0);
  });

  it(`both settle the next ${LIVE_ROUNDS} rounds live and show the same rounds, the origin's`, async () => {
    const g = game!;
    const start = Math.max((await read(pageA)).revealed, (await read(pageB)).revealed);
    const { a, b } = await watchUntil(g, start + LIVE_ROUNDS, 50_000);
    // Same rounds on both pages (the ones both list), and the origin's: the public keys chain
    // to the commitment and put every break where the pages do.
    const keys = await publicKeys(g);
    expect(keys.length).toBeGreaterThanOrEqual(start + LIVE_ROUNDS);
    expect(sealedVerifyChain(g.commitment, keys.join(''))).toBe(0);
    const breaks = Array.from(sealedBreaks(g.tickMs, g.breakEvery, keys.join('')));
    const common = Math.min(a.revealed, b.revealed);
    const listA = a.rounds.filter(([r]) => r <= common).map(([r, s]) => [r, s]);
    const listB = b.rounds.filter(([r]) => r <= common).map(([r, s]) => [r, s]);
    const n = Math.min(listA.length, listB.length);
    expect(n).toBeGreaterThanOrEqual(LIVE_ROUNDS);
    expect(listA.slice(0, n)).toEqual(listB.slice(0, n));
    for (const [r, s] of listA) expect(s, `round ${r}`).toBe(breaks[r - 1]);
    // Settled live, close to the break: pushed at the reveal instant, so a page shows at most a
    // couple of ticks past it (rolled back), whatever its machine clock says.
    for (const s of [a, b]) {
      expect(s.rejected).toBe(0);
      expect(s.maxRollback).toBeLessThanOrEqual(3);
    }
    const live = report.settles.filter((x) => x.page === 'B' && x.live);
    expect(live.length).toBeGreaterThanOrEqual(LIVE_ROUNDS - 1);
    for (const x of live) expect(x.seenAtMs - x.breakAtMs, `B round ${x.round}`).toBeLessThan(1_500);
    await Promise.all([shot(pageA, 'sealed-03-A'), shot(pageB, 'sealed-03-B-clock+5s')]);
  });

  it('A exits: both stop at the same final step and show the game verified against the commitment', async () => {
    const g = game!;
    await pageA.getByRole('button', { name: 'Exit game' }).click();
    await Promise.all([
      expect.poll(async () => (await read(pageA)).phase, { timeout: 10_000 }).toBe('ended'),
      expect.poll(async () => (await read(pageB)).phase, { timeout: 15_000 }).toBe('ended'),
    ]);
    await Promise.all([
      expect.poll(async () => (await read(pageA)).verification, { timeout: 20_000 }).toBe('verified'),
      expect.poll(async () => (await read(pageB)).verification, { timeout: 20_000 }).toBe('verified'),
    ]);
    const [a, b] = await Promise.all([read(pageA), read(pageB)]);
    const { body } = await edge(`/edge/game/${encodeURIComponent(g.gameId)}`);
    expect(body.status).toBe('exited');
    const exitedAt = body.exitedAt as number;
    const keys = await publicKeys({ ...g, exitedAt });
    expect(sealedVerifyChain(g.commitment, keys.join(''))).toBe(0);
    const finalStep = Math.floor((exitedAt - 1 - g.startAt) / g.tickMs);
    const t = sealedTickAt(g.tickMs, g.breakEvery, keys.join(''), finalStep);
    expect(t.settled).toBe(true);
    for (const s of [a, b]) {
      expect(s.stopped).toBe(true);
      expect(s.settled).toBe(true);
      expect([s.step, s.value, s.round]).toEqual([finalStep, t.tick.value, t.tick.round]);
      expect(s.revealed).toBe(keys.length);
      expect(s.rejected).toBe(0);
    }
    t.free();
    expect(a.rounds.map(([r, s]) => [r, s])).toEqual(b.rounds.map(([r, s]) => [r, s]));
    await expect.poll(() => pageB.getByTestId('sealed-verified').textContent()).toMatch(/Verified against the commitment/);
    // The root is public now, and both pages checked it.
    expect(body.root).toMatch(/^[0-9a-f]{64}$/);
    await expect.poll(() => pageA.getByTestId('sealed-verified').textContent()).toMatch(/root hashes down to them/);
    report.final = { a, b, exitedAt, keys: keys.length };
    await Promise.all([shot(pageA, 'sealed-04-A-verified'), shot(pageB, 'sealed-04-B-verified')]);
    expect(report.pageErrors).toEqual([]);
  });
});
