// The live chart of a shared game: the value over the steps from the page's engine (no server
// data), breaks and each seat's exit marked, a long game windowed; and its SVG.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeAll, describe, expect, it } from 'vitest';
import { ValueChart } from '../src/components/ValueChart';
import { tickAt } from '../src/engine/engine';
import { chartModel } from '../src/game/chart';
import type { SeatRow } from '../src/game/seats';
import { loadEngineForTests } from './helpers';

beforeAll(loadEngineForTests);

const params = { seed: 42, tickMs: 100, breakEvery: 5, algorithm: 'mix32-v1' };

describe('value chart', () => {
  it('follows the engine step by step, with its breaks and the exits in view', () => {
    expect(chartModel(params, null, [])).toBeNull();
    const at = (step: number) => tickAt(params, step);
    const exitAt = (seat: number, step: number): SeatRow => ({
      seat,
      userId: `p${seat}`,
      joinedAt: 0,
      result: { exitedAt: 1, final: at(step), breakFirst: at(step).round > 0 },
    });
    const seats = [exitAt(0, 30), exitAt(1, 70), { seat: 2, userId: 'p2', joinedAt: 0, result: null }, exitAt(3, 90)];
    const m = chartModel(params, 80, seats)!;
    expect(m.from).toBe(0);
    expect(m.points).toHaveLength(81);
    for (const [step, value] of m.points) expect(value).toBe(at(step).value);
    const expected = m.points.map(([s]) => s).filter((s) => at(s).broken);
    expect(expected.length).toBeGreaterThan(0);
    expect(m.breaks).toEqual(expected);
    // Exits at steps shown: seats 0 and 1 (seat 3's step 90 is not reached yet).
    expect(m.exits.map((e) => [e.seat, e.step, e.value])).toEqual([
      [0, 30, at(30).value],
      [1, 70, at(70).value],
    ]);
    expect(m.maxValue).toBe(Math.max(1, ...m.points.map(([, v]) => v)));
    // A long game: the last window only.
    const w = chartModel(params, 1_000, seats, 100)!;
    expect([w.from, w.to, w.points.length]).toEqual([901, 1_000, 100]);
    expect(w.exits).toEqual([]);
    // A page whose player exited at step 30 draws on to the others' later exits.
    const mine = chartModel(params, 30, seats, undefined, true)!;
    expect([mine.from, mine.to]).toEqual([0, 90]);
    expect(mine.exits.map((e) => e.seat)).toEqual([0, 1, 3]);
  });

  it('draws the curve, a line per break and a dot per exit', () => {
    const seats: SeatRow[] = [{ seat: 0, userId: 'ann', joinedAt: 0, result: { exitedAt: 1, final: tickAt(params, 20), breakFirst: true } }];
    const m = chartModel(params, 40, seats)!;
    const html = renderToStaticMarkup(createElement(ValueChart, { model: m }));
    expect(html).toContain('<polyline');
    expect(html.match(/data-break=/g)?.length).toBe(m.breaks.length);
    expect(html).toContain('data-exit="0"');
    expect(html).toContain(`seat 0 (ann) exited at step 20, value ${tickAt(params, 20).value}`);
  });
});
