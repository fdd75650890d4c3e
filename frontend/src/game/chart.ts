/**
 * The live chart of a seeded game: the value over the steps, computed by this page's engine
 * (no server data), with the breaks and each seat's exit marked. A long game shows its last
 * `window` steps. Sealed games have no chart (their steps cannot be computed ahead of the keys).
 */
import { tickAt, type GameParams } from '../engine/engine';
import type { SeatRow } from './seats';

export interface ChartExit {
  readonly seat: number;
  readonly userId: string;
  readonly step: number;
  readonly value: number;
}

export interface ChartModel {
  /** First and last step shown. */
  readonly from: number;
  readonly to: number;
  /** `[step, value]` for every step shown. */
  readonly points: readonly (readonly [number, number])[];
  /** Steps that broke. */
  readonly breaks: readonly number[];
  /** Exits at a step shown (an exit in the countdown has no step). */
  readonly exits: readonly ChartExit[];
  /** The largest value shown (at least 1). */
  readonly maxValue: number;
}

export const CHART_WINDOW = 600;

/**
 * The chart up to step `shownStep` (inclusive), or null before step 0. With `drawOn` (this page's
 * counter stopped at its own player's exit while the others played on), it extends to the latest
 * seat exit, so every exit is marked.
 */
export function chartModel(
  params: Omit<GameParams, 'startAt'>,
  shownStep: number | null,
  seats: readonly SeatRow[],
  window = CHART_WINDOW,
  drawOn = false,
): ChartModel | null {
  if (shownStep === null || shownStep < 0) return null;
  const upTo = drawOn ? seats.reduce((last, s) => Math.max(last, s.result?.final?.step ?? -1), shownStep) : shownStep;
  const from = Math.max(0, upTo - window + 1);
  const points: [number, number][] = [];
  const breaks: number[] = [];
  let maxValue = 1;
  for (let step = from; step <= upTo; step++) {
    const t = tickAt(params, step);
    points.push([step, t.value]);
    if (t.broken) breaks.push(step);
    if (t.value > maxValue) maxValue = t.value;
  }
  const exits: ChartExit[] = [];
  for (const s of seats) {
    const f = s.result?.final;
    if (f && f.step >= from && f.step <= upTo) exits.push({ seat: s.seat, userId: s.userId, step: f.step, value: f.value });
  }
  return { from, to: upTo, points, breaks, exits, maxValue };
}
