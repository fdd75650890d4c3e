/**
 * End to end, in a real headless Chromium against the full local stack (Cassandra, three origins,
 * the edge Worker serving this page): one browser starts a game; a second browser, whose clock is
 * 5 s fast, joins it by link; at several instants both show the same step and value, and the
 * values are the engine's and the server's; the player exits and both pages stop at the same
 * final step. Started by run.sh (which brings the stack up and down); E2E_BASE_URL points at it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateAt, tickAt, type GameParams } from '../src/engine/engine';
import { loadEngineForTests, repoRoot } from '../test/helpers';

const BASE = (process.env.E2E_BASE_URL ?? 'http://127.0.0.1:18787').replace(/\/$/, '');
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? join(repoRoot, 'artifacts', 'e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHIFT_MS = 5_000;
const INSTANTS = 6;

interface Counter {
  phase: string;
  step: number | null;
  value: number | null;
  round: number | null;
  serverNow: number;
  stopped: boolean;
}

interface InstantRecord {
  instant: number;
  realMs: [number, number];
  expectedSteps: [number, number];
  a: Counter;
  b: Counter;
  server: { step: number; value: number; round: number } | null;
  attempts: number;
}

const report: {
  baseUrl: string;
  game?: Record<string, unknown>;
  offsets: Record<string, { offset: number; bound: number; shiftApplied?: number }>;
  instants: InstantRecord[];
  breakChecked?: { step: number; round: number };
  final?: { a: Counter; b: Counter; exitedAt: number; engine: unknown; viewerLagMs: number };
  errorMessage?: string;
  pageErrors: string[];
} = { baseUrl: BASE, offsets: {}, instants: [], pageErrors: [] };

let browser: Browser;
let ctxA: BrowserContext;
let ctxB: BrowserContext;
let pageA: Page;
let pageB: Page;
let game: (GameParams & { gameId: string; userId: string; region: string }) | null = null;

function shot(page: Page, name: string) {
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function edgeJson(path: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(BASE + path, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, body };
}

/** Reads the counter's data attributes (set by GamePanel) in one evaluation. */
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

async function readOffset(page: Page): Promise<{ offset: number; bound: number }> {
  const el = page.getByTestId('clock-offset');
  await expect.poll(async () => (await el.getAttribute('data-offset')) ?? '', { timeout: 15_000 }).not.toBe('');
  return {
    offset: Number(await el.getAttribute('data-offset')),
    bound: Number(await el.getAttribute('data-bound')),
  };
}

async function waitPhase(page: Page, phase: string, timeout: number): Promise<Counter> {
  await expect.poll(async () => (await readCounter(page)).phase, { timeout, interval: 50 }).toBe(phase);
  return readCounter(page);
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

beforeAll(async () => {
  loadEngineForTests();
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  ctxA = await browser.newContext({ viewport: { width: 1180, height: 900 } });
  // Browser B's clock runs 5 s fast: Date.now() and new Date() both, before any page script.
  ctxB = await browser.newContext({ viewport: { width: 1180, height: 900 } });
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
    writeFileSync(join(ARTIFACTS, 'report.json'), JSON.stringify(report, null, 2));
  } finally {
    await browser?.close();
  }
});

describe('seedsync page, two browsers, one game', () => {
  it('A loads the page from the edge and syncs its clock (offset ~0 on this machine)', async () => {
    const res = await pageA.goto(BASE + '/', { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    await expect.poll(() => pageA.getByRole('heading', { name: 'Start a game' }).count()).toBe(1);
    const { offset, bound } = await readOffset(pageA);
    report.offsets.A = { offset, bound };
    expect(bound).toBeGreaterThan(0);
    expect(bound).toBeLessThan(250);
    // Same machine as the edge: the true offset is ~0 (workerd's clock is the machine's).
    expect(Math.abs(offset)).toBeLessThanOrEqual(bound + 5);
  });

  it('A starts a game with the keyboard only and sees its id, region, routing reason and countdown', async () => {
    const userId = `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
    await pageA.getByLabel('User id').focus();
    await pageA.keyboard.type(userId);
    await pageA.keyboard.press('Tab'); // into the region radio group (on "Auto")
    await pageA.keyboard.press('ArrowRight'); // EU
    await pageA.keyboard.press('ArrowRight'); // US
    expect(await pageA.getByRole('radio', { name: 'US' }).isChecked()).toBe(true);
    await pageA.keyboard.press('Tab'); // the Start button
    expect(await pageA.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Start');
    await pageA.keyboard.press('Enter');

    const counter = await waitPhase(pageA, 'countdown', 15_000);
    expect(counter.step).toBeNull();
    const gameId = (await pageA.getByTestId('game-id').textContent())!.trim();
    expect(gameId.length).toBeGreaterThan(0);
    await expect.poll(() => pageA.getByTestId('countdown').textContent()).toMatch(/^\d+\.\d s$/);
    await shot(pageA, '01-player-countdown');

    const { status, body } = await edgeJson(`/edge/game/${encodeURIComponent(gameId)}`);
    expect(status).toBe(200);
    expect(body.gameId).toBe(gameId);
    expect(body.userId).toBe(userId);
    game = { ...body, gameId, userId };
    report.game = body;
    expect(body.startAt).toBeGreaterThan(Date.now() - 1_000); // still counting down a moment ago
    // The player asked for US; with every origin healthy the edge honours it and says so.
    expect(await pageA.getByTestId('backend-region').textContent()).toBe('United States (us)');
    expect(await pageA.getByTestId('routed-by').textContent()).toBe('you picked this region');
    expect(pageA.url()).toBe(`${BASE}/?game=${encodeURIComponent(gameId)}`);
  });

  it('A’s counter starts at startAt and runs tick by tick', async () => {
    expect(game).not.toBeNull();
    const g = game!;
    const running = await waitPhase(pageA, 'running', g.startAt - Date.now() + 5_000);
    const lateBy = Date.now() - g.startAt;
    expect(lateBy).toBeGreaterThanOrEqual(-50);
    expect(running.step).toBeGreaterThanOrEqual(0);
    await sleep(3 * g.tickMs);
    const later = await readCounter(pageA);
    expect(later.step! - running.step!).toBeGreaterThanOrEqual(2);
    await shot(pageA, '02-player-running');
  });

  it('B, with its clock 5 s fast, joins by the shared link and estimates the offset', async () => {
    const g = game!;
    const res = await pageB.goto(`${BASE}/?game=${encodeURIComponent(g.gameId)}`, { waitUntil: 'domcontentloaded' });
    expect(res?.status()).toBe(200);
    const shifted = Number(await pageB.evaluate('Date.now()')) - Date.now();
    expect(Math.abs(shifted - SHIFT_MS)).toBeLessThan(1_000);
    const { offset, bound } = await readOffset(pageB);
    report.offsets.B = { offset, bound, shiftApplied: shifted };
    expect(Math.abs(offset - -SHIFT_MS)).toBeLessThanOrEqual(bound + 5);
    await waitPhase(pageB, 'running', 15_000);
    await expect.poll(() => pageB.getByRole('heading', { name: 'Watching a game' }).count()).toBe(1);
    expect((await pageB.getByTestId('game-id').textContent())!.trim()).toBe(g.gameId);
  });

  it(`A and B show the same step and value at ${INSTANTS} instants, equal to the engine's and the server's`, async () => {
    const g = game!;
    /** Both pages read at once; the lockstep criteria, or why they failed. */
    async function readBoth() {
      const before = Date.now();
      const [a, b] = await Promise.all([readCounter(pageA), readCounter(pageB)]);
      const after = Date.now();
      const expectedSteps: [number, number] = [
        Math.floor((before - g.startAt) / g.tickMs),
        Math.floor((after - g.startAt) / g.tickMs),
      ];
      const problems: string[] = [];
      if (a.phase !== 'running' || b.phase !== 'running') problems.push(`phases ${a.phase}/${b.phase}`);
      // Lockstep: within one tick of each other, and the same value whenever on the same step.
      if (Math.abs(a.step! - b.step!) > 1) problems.push(`steps ${a.step} vs ${b.step}`);
      if (a.step === b.step && (a.value !== b.value || a.round !== b.round)) problems.push('same step, different value');
      // On the real (server) clock: within a tick of the instant of reading, not 50 ticks ahead.
      for (const c of [a, b]) {
        if (c.step! < expectedSteps[0] - 1 || c.step! > expectedSteps[1] + 1) {
          problems.push(`step ${c.step} outside ${expectedSteps[0]}..${expectedSteps[1]} ±1`);
        }
      }
      return { before, after, a, b, expectedSteps, problems };
    }

    for (let i = 0; i < INSTANTS; i++) {
      await sleep(350 + Math.floor(Math.random() * 500));
      // A renderer starved for a tick by a busy machine is re-read (at most twice); a wrong
      // clock or engine is wrong every time.
      let read = await readBoth();
      let attempts = 1;
      while (read.problems.length > 0 && attempts < 3) {
        await sleep(30);
        read = await readBoth();
        attempts++;
      }
      const { a, b, expectedSteps } = read;
      expect(read.problems, `instant ${i + 1}`).toEqual([]);
      for (const c of [a, b]) {
        // The values are the engine's at that step.
        const t = tickAt(g, c.step!);
        expect([c.value, c.round]).toEqual([t.value, t.round]);
      }
      // And the server (origin, through the edge) computes the same tick at A's step.
      const at = g.startAt + a.step! * g.tickMs + Math.floor(g.tickMs / 2);
      const st = await edgeJson(`/edge/game/${encodeURIComponent(g.gameId)}/state?at=${at}`);
      expect(st.status).toBe(200);
      expect(st.body.phase).toBe('running');
      const server = { step: st.body.step, value: st.body.value, round: st.body.round };
      expect(server).toEqual({ step: a.step, value: a.value, round: a.round });
      report.instants.push({ instant: i + 1, realMs: [read.before, read.after], expectedSteps, a, b, server, attempts });
      if (i === 2) await Promise.all([shot(pageA, '03-lockstep-A'), shot(pageB, '03-lockstep-B-clock+5s')]);
    }
  });

  it('both log the next break at the same step, with a visible flash', async () => {
    const g = game!;
    const now = await readCounter(pageA);
    let next = now.step! + 2;
    while (!tickAt(g, next).broken && next < now.step! + 400) next++;
    expect(tickAt(g, next).broken).toBe(true);
    const breakAt = g.startAt + next * g.tickMs;
    expect(breakAt - Date.now()).toBeLessThan(45_000);
    const flashesBefore = await Promise.all([pageA, pageB].map((p) => p.getByTestId('counter').getAttribute('data-flashes')));
    await sleep(Math.max(0, breakAt - Date.now()) + 60);
    const t = tickAt(g, next);
    // The flash is on screen on both pages right after the break (it fades over 0.9 s).
    const opacities = await Promise.all(
      [pageA, pageB].map((p) =>
        p.evaluate(`(() => { const f = document.querySelector('.flash'); return f ? Number(getComputedStyle(f).opacity) : 0; })()`),
      ),
    );
    for (const o of opacities) expect(Number(o)).toBeGreaterThan(0.2);
    for (const [i, page] of [pageA, pageB].entries()) {
      const line = page.getByTestId('break-log').locator('li', { hasText: `break at step ${next} → round ${t.round}` });
      await expect.poll(() => line.count(), { timeout: 2_000 }).toBe(1);
      expect(Number(await page.getByTestId('counter').getAttribute('data-flashes'))).toBeGreaterThan(Number(flashesBefore[i]));
    }
    report.breakChecked = { step: next, round: t.round };
    await shot(pageA, '04-break-A');
  });

  it('A exits; both pages stop at the same final step, the engine’s step at exitedAt', async () => {
    const g = game!;
    // Both pages are in the game's live room: the player sees its viewer, the viewer the player.
    await expect.poll(() => pageA.getByTestId('live-status').textContent(), { timeout: 10_000 }).toContain('live: open');
    await expect.poll(() => pageB.getByTestId('live-status').textContent(), { timeout: 10_000 }).toContain('live: open');
    await expect.poll(() => pageA.getByTestId('viewer-count').textContent(), { timeout: 5_000 }).toContain('1 viewer');
    await expect.poll(() => pageB.getByTestId('presence').textContent(), { timeout: 5_000 }).toContain(`player ${g.userId}`);
    // The player's page joined as player with its owner token (the room verified it); had the
    // room refused it, the page would show why and watch instead.
    await expect.poll(() => pageA.getByTestId('presence').textContent(), { timeout: 5_000 }).toContain(`player ${g.userId}`);
    expect(await pageA.getByTestId('live-notice').count()).toBe(0);
    await pageA.getByRole('button', { name: 'Exit game' }).focus();
    await pageA.keyboard.press('Enter');
    const exitClickAt = Date.now();
    // The viewer learns it from the room's push (`exited`), not from a poll.
    let viewerLagMs = Number.NaN;
    const [a, b] = await Promise.all([
      waitPhase(pageA, 'ended', 10_000),
      waitPhase(pageB, 'ended', 15_000).then((c) => {
        viewerLagMs = Date.now() - exitClickAt;
        return c;
      }),
    ]);
    expect(viewerLagMs).toBeLessThan(300);
    const { body } = await edgeJson(`/edge/game/${encodeURIComponent(g.gameId)}`);
    expect(body.status).toBe('exited');
    expect(typeof body.exitedAt).toBe('number');
    const engine = stateAt(g, body.exitedAt + 1, body.exitedAt);
    expect(engine.phase).toBe('ended');
    const finalTick = engine.phase === 'ended' ? engine.tick : null;
    expect(finalTick).not.toBeNull();
    for (const c of [a, b]) {
      expect(c.stopped).toBe(true);
      expect({ step: c.step, value: c.value, round: c.round }).toEqual({
        step: finalTick!.step,
        value: finalTick!.value,
        round: finalTick!.round,
      });
    }
    report.final = { a, b, exitedAt: body.exitedAt, engine, viewerLagMs };
    await expect.poll(() => pageA.getByTestId('final').textContent()).toContain(`final step ${finalTick!.step}`);
    await expect.poll(() => pageB.getByTestId('final').textContent()).toContain(`final step ${finalTick!.step}`);
    // Stopped: nothing changes any more (no timer re-renders the counter).
    const [a1, b1] = await Promise.all([readCounter(pageA), readCounter(pageB)]);
    await sleep(1_500);
    const [a2, b2] = await Promise.all([readCounter(pageA), readCounter(pageB)]);
    expect(a2).toEqual(a1);
    expect(b2).toEqual(b1);
    await Promise.all([shot(pageA, '05-ended-A'), shot(pageB, '05-ended-B')]);
  });

  it('edge errors read as sentences, quickly (unknown game, malformed id, empty user id)', async () => {
    const page = await ctxA.newPage();
    const alert = page.getByTestId('page-error');
    const cases = [
      // A well-formed id that no game has: the edge's 404.
      { id: crypto.randomUUID(), pattern: /^Loading the game failed: .+ \(not_found, HTTP 404\)$/ },
      // Not an id at all: the edge refuses it.
      { id: 'no-such-game', pattern: /^Loading the game failed: .+ \(\w+, HTTP 4\d\d\)$/ },
    ];
    const messages: string[] = [];
    for (const c of cases) {
      const t0 = Date.now();
      await page.goto(`${BASE}/?game=${c.id}`, { waitUntil: 'domcontentloaded' });
      await expect.poll(() => alert.count(), { timeout: 12_000 }).toBe(1);
      const message = (await alert.locator('p').textContent())!;
      messages.push(message);
      expect(Date.now() - t0).toBeLessThan(12_000);
      expect(message).toMatch(c.pattern);
      expect(message).not.toContain('{');
    }
    report.errorMessage = messages.join(' / ');
    // The forms are back, usable: an empty user id is refused before any request.
    await page.getByRole('button', { name: 'Start' }).click();
    await expect.poll(() => page.getByText('Enter a user id.').count()).toBe(1);
    await shot(page, '06-error');
    await page.close();
  });

  it('made a side-by-side picture of the two browsers, and no page threw', async () => {
    const page = await ctxA.newPage();
    const img = (name: string) => `data:image/png;base64,${readFileSync(join(ARTIFACTS, `${name}.png`)).toString('base64')}`;
    await page.setViewportSize({ width: 1600, height: 400 });
    await page.setContent(`<!doctype html><html><body style="margin:0;font:600 18px system-ui;background:#dfe4ee">
      <div style="display:grid;grid-template-columns:1fr 1fr;gap:16px;padding:16px">
        <figure style="margin:0"><figcaption style="padding:0 0 8px">Browser A — the player (clock correct)</figcaption>
          <img style="width:100%;border-radius:8px;box-shadow:0 2px 10px #0003" src="${img('03-lockstep-A')}"></figure>
        <figure style="margin:0"><figcaption style="padding:0 0 8px">Browser B — joined by link (clock 5 s fast)</figcaption>
          <img style="width:100%;border-radius:8px;box-shadow:0 2px 10px #0003" src="${img('03-lockstep-B-clock+5s')}"></figure>
      </div></body></html>`);
    await page.screenshot({ path: join(ARTIFACTS, '00-side-by-side.png'), fullPage: true });
    await page.close();
    expect(report.pageErrors).toEqual([]);
  });
});
